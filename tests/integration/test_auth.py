"""Password files: made by flockctl or by Mosquitto's mosquitto_passwd, both accepted."""

import os
import subprocess
import tempfile

import pytest

from conftest import BROKER_PATH, IS_MOSQUITTO, Broker, running
from mqtt_raw import *  # noqa: F401,F403

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="flockd password file flags")
FLOCKCTL = os.path.join(os.path.dirname(BROKER_PATH), "flockctl")


class PasswordBroker(Broker):
    """A broker whose only listener refuses anonymous clients and knows two users."""

    def __init__(self, workers, tmpdir, password_file):
        super().__init__(workers, {}, tmpdir)
        self.password_file = password_file

    def _command(self):
        return super()._command() + ["--password-file", self.password_file, "--allow-anonymous", "false"]


@pytest.fixture(params=[1, 4], ids=["workers1", "workers4"])
def broker(request):
    with tempfile.TemporaryDirectory(prefix="flock-auth-") as tmpdir:
        path = os.path.join(tmpdir, "passwd")
        subprocess.run([FLOCKCTL, "passwd", path, "alice", "wonderland"], check=True)
        subprocess.run(["mosquitto_passwd", "-b", path, "bob", "builder"], check=True)
        yield from running(PasswordBroker(request.param, tmpdir, path), request)


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("user,password,v3_code,v5_code", [
    ("alice", b"wonderland", 0, 0x00),   # written by flockctl passwd
    ("bob", b"builder", 0, 0x00),        # written by mosquitto_passwd
    ("alice", b"builder", 4, 0x86),      # wrong password
    ("carol", b"x", 4, 0x86),            # unknown user
    (None, None, 5, 0x87),               # anonymous on a listener that refuses it
])
def test_connack_reflects_credentials(broker, version, user, password, v3_code, v5_code):
    c = broker.client(version)
    ack = c.connect("auth-%s" % user, username=user, password=password)
    assert ack.reason == (v5_code if version == 5 else v3_code)
    if ack.reason == 0:
        assert c.ping().type == PINGRESP


def test_flockctl_passwd_delete_removes_the_user(broker):
    subprocess.run([FLOCKCTL, "passwd", "-D", broker.password_file, "bob"], check=True)
    with open(broker.password_file) as f:
        text = f.read()
    assert "bob:" not in text and "alice:" in text
