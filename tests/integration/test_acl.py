"""ACL files (Mosquitto's acl_file format): who may subscribe, publish and receive what."""

import os
import tempfile

import pytest

from conftest import IS_MOSQUITTO, Broker, marker_sync, running, persistent
from mqtt_raw import *  # noqa: F401,F403

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="flockd --acl-file; Mosquitto does not check SUBSCRIBE")

ACL = """\
# Clients without a user name.
topic readwrite test/#
topic deny test/nosubscribe

user alice
topic readwrite alice/#
topic write public/#

# Everyone.
pattern read public/#
pattern readwrite clients/%c/#
"""


class AclBroker(Broker):
    def __init__(self, workers, tmpdir, acl_file):
        super().__init__(workers, {}, tmpdir)
        self.acl_file = acl_file

    def _command(self):
        return super()._command() + ["--acl-file", self.acl_file]


@pytest.fixture(params=[1, 4], ids=["workers1", "workers4"])
def broker(request):
    with tempfile.TemporaryDirectory(prefix="flock-acl-") as tmpdir:
        path = os.path.join(tmpdir, "acl")
        with open(path, "w") as f:
            f.write(ACL)
        yield from running(AclBroker(request.param, tmpdir, path), request)


def denied(version):
    return 0x87 if version == 5 else 0x80


def test_subscribe_is_granted_only_where_a_read_rule_covers_the_filter(broker, version):
    no = denied(version)
    anon = broker.connect("anon-sub", version=version)
    ack = anon.subscribe([("test/nosubscribe", 1), ("test/other", 1), ("public/#", 1), ("alice/#", 1),
                          ("test/#", 1)])
    # test/# is granted: the deny covers only test/nosubscribe, which is
    # filtered out per delivery instead.
    assert ack.codes == [no, 1, 1, no, 1]

    alice = broker.connect("alice-sub", version=version, username="alice")
    ack = alice.subscribe([("alice/#", 1), ("public/+", 1), ("test/other", 1), ("clients/alice-sub/#", 1),
                           ("clients/someone-else/#", 1), ("$share/g/alice/x", 1)])
    assert ack.codes == [1, 1, no, 1, no, 1]


def test_publish_without_write_access_is_not_routed(broker, version):
    watcher = broker.connect("watcher", version=version, username="alice")
    assert watcher.subscribe([("alice/#", 1), ("public/#", 1)]).codes == [1, 1]
    alice = broker.connect("alice-pub", version=version, username="alice")
    anon = broker.connect("anon-pub", version=version)

    # MQTT 5 hears "not authorized"; 3.1.1 gets the normal ack (as from Mosquitto).
    expected = 0x87 if version == 5 else 0
    for topic in ("alice/x", "public/news"):  # anon may write neither (public/# is read only)
        assert anon.publish_flow(topic, b"nope", qos=1).reason == expected
        ack = anon.publish_flow(topic, b"nope", qos=2)
        assert (ack.type, ack.reason) == ((PUBREC, 0x87) if version == 5 else (PUBCOMP, 0))
        anon.publish(topic, b"nope", qos=0)
    anon.ping()  # the QoS 0 ones were read before this

    # alice may write both; the first PUBLISH the watcher gets is hers.
    assert alice.publish_flow("public/news", b"yes", qos=1).reason == 0
    p = watcher.recv_publish()
    assert (p.topic, p.payload) == ("public/news", b"yes")
    marker_sync(watcher, alice, "alice/marker")


def test_denied_retained_publish_is_not_stored(broker, version):
    anon = broker.connect("anon-ret", version=version)
    anon.publish_flow("public/retained", b"nope", qos=1, retain=True)
    alice = broker.connect("alice-ret", version=version, username="alice")
    alice.publish_flow("public/ok", b"kept", qos=1, retain=True)
    reader = broker.connect("reader", version=version)
    assert reader.subscribe([("public/#", 1)]).codes == [1]
    p = reader.recv_publish()
    assert (p.topic, p.payload, p.retain) == ("public/ok", b"kept", True)
    marker_sync(reader, alice, "public/marker")


def test_session_resumed_under_another_user_gets_nothing_it_may_not_read(broker, version):
    # Subscribed as alice, resumed without a user name: the subscription is
    # still in the session, but every message is checked on delivery.
    dev = broker.connect("dev", version=version, username="alice", **persistent(version))
    assert dev.subscribe([("alice/#", 1), ("public/#", 1)]).codes == [1, 1]
    dev.disconnect()
    alice = broker.connect("alice-w", version=version, username="alice")
    alice.publish_flow("alice/private", b"queued", qos=1)
    dev = broker.client(version)
    assert dev.connect("dev", **persistent(version)).session_present
    alice.publish_flow("alice/private", b"live", qos=1)
    # Readable by anyone: arrives, and nothing of alice's came before it.
    marker_sync(dev, alice, "public/marker")


def test_will_on_a_topic_the_client_may_not_write_is_not_published(broker, version):
    watcher = broker.connect("will-watcher", version=version, username="alice")
    assert watcher.subscribe([("alice/#", 0)]).codes == [0]

    bad = broker.connect("will-bad", version=version, will=Will("alice/will", b"bad"))
    bad.abort()
    # Reconnecting with the same id returns only after the old connection
    # ended (and any will of it was routed).
    broker.connect("will-bad", version=version)

    good = broker.connect("will-good", version=version, username="alice", will=Will("alice/will", b"good"))
    good.abort()
    p = watcher.recv_publish()
    assert (p.topic, p.payload) == ("alice/will", b"good")
