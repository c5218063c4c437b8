"""Interop with the mosquitto command-line clients (mosquitto_pub / mosquitto_sub)."""

import queue
import shutil
import subprocess
import threading
import time

import pytest

from mqtt_raw import *  # noqa: F401,F403

PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
SUB = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
# mosquitto_sub's stdout is block-buffered into a pipe; line-buffer it so we see SUBACK at once
STDBUF = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []

pytestmark = pytest.mark.skipif(not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")),
                                reason="mosquitto-clients not installed")

VERSIONS = ["mqttv311", "mqttv5"]


class Sub:
    """mosquitto_sub in the background; lines read by a thread so waits have deadlines."""

    def __init__(self, broker, args, count):
        cmd = STDBUF + [SUB, "-h", broker.host, "-p", str(broker.port), "-d", "-C", str(count),
               "-W", "20"] + args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.messages = []
        self.debug = []

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    def _next(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("mosquitto_sub: timed out; debug %r messages %r"
                                 % (self.debug, self.messages))
        try:
            return self.lines.get(timeout=left)
        except queue.Empty:
            raise AssertionError("mosquitto_sub: timed out; debug %r messages %r"
                                 % (self.debug, self.messages))

    def _consume(self, line):
        if line.startswith("Client ") or line.startswith("Subscribed"):
            self.debug.append(line)
        else:
            self.messages.append(line)

    def wait_subscribed(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            line = self._next(deadline)
            assert line is not None, "mosquitto_sub exited early: %r" % self.debug
            self._consume(line)
            if "received SUBACK" in line:
                return

    def wait_exit(self, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            line = self._next(deadline)
            if line is None:
                break
            self._consume(line)
        rc = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        assert rc == 0, "mosquitto_sub exit code %d; debug %r" % (rc, self.debug)
        return self.messages

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def subs():
    started = []
    yield started
    for s in started:
        s.kill()


def pub(broker, args, stdin=None):
    cmd = [PUB, "-h", broker.host, "-p", str(broker.port)] + args
    r = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15)
    assert r.returncode == 0, "mosquitto_pub failed: %s" % r.stdout.decode("utf-8", "replace")


@pytest.mark.parametrize("qos", [0, 1, 2])
@pytest.mark.parametrize("proto", VERSIONS)
def test_pub_sub_round_trip(broker, subs, proto, qos):
    s = Sub(broker, ["-V", proto, "-q", str(qos), "-t", "cli/t", "-v"], count=1)
    subs.append(s)
    s.wait_subscribed()
    pub(broker, ["-V", proto, "-q", str(qos), "-t", "cli/t", "-m", "hello %d" % qos])
    assert s.wait_exit() == ["cli/t hello %d" % qos]


@pytest.mark.parametrize("proto", VERSIONS)
def test_retained_with_r(broker, proto):
    pub(broker, ["-V", proto, "-q", "1", "-r", "-t", "cli/ret", "-m", "kept"])
    s = Sub(broker, ["-V", proto, "-t", "cli/#", "-v"], count=1)
    try:
        assert s.wait_exit() == ["cli/ret kept"]
    finally:
        s.kill()


@pytest.mark.parametrize("proto", VERSIONS)
def test_count_C_with_line_mode_publisher(broker, subs, proto):
    s = Sub(broker, ["-V", proto, "-q", "1", "-t", "cli/lines"], count=3)
    subs.append(s)
    s.wait_subscribed()
    pub(broker, ["-V", proto, "-q", "1", "-t", "cli/lines", "-l"], stdin=b"one\ntwo\nthree\nfour\n")
    assert s.wait_exit() == ["one", "two", "three"]


def test_mqttv5_user_property_from_mosquitto_pub(broker):
    raw = broker.connect("cli-raw")
    raw.subscribe([("cli/props", 1)])
    pub(broker, ["-V", "mqttv5", "-q", "1", "-t", "cli/props", "-m", "p",
                 "-D", "publish", "user-property", "color", "blue",
                 "-D", "publish", "content-type", "text/plain"])
    p = raw.recv_publish()
    assert p.payload == b"p"
    assert p.props.all(USER_PROPERTY) == [("color", "blue")]
    assert p.props.get(CONTENT_TYPE) == "text/plain"


def test_raw_publisher_to_mosquitto_sub_v311_and_v5(broker, subs):
    s4 = Sub(broker, ["-V", "mqttv311", "-q", "2", "-t", "cli/mix"], count=1)
    s5 = Sub(broker, ["-V", "mqttv5", "-q", "2", "-t", "cli/mix"], count=1)
    subs.extend([s4, s5])
    s4.wait_subscribed()
    s5.wait_subscribed()
    raw = broker.connect("cli-rawpub")
    raw.publish_flow("cli/mix", b"both", qos=2)
    assert s4.wait_exit() == ["both"]
    assert s5.wait_exit() == ["both"]
