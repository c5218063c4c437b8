"""The store under bad conditions: corrupt or foreign files, a read-only directory, a second
flockd on the same directory, a full disk. flockd stops with one clear line (exit 1) or refuses
what it cannot keep, never wipes data, and never loses what it acknowledged."""

import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import BROKER_PATH, IS_MOSQUITTO, Broker, free_port, persistent, running, wait_for
from mqtt_raw import *  # noqa: F401,F403

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="flock's store")


@pytest.fixture
def broker(request):
    with tempfile.TemporaryDirectory(prefix="flock-store-") as tmpdir:
        yield from running(Broker(2, {}, tmpdir), request)


def start_fails(data_dir, wrapper=()):
    """Run flockd on data_dir; it must exit 1 at start-up. Returns its stderr."""
    cmd = list(wrapper) + [BROKER_PATH, "--listen", "127.0.0.1:%d" % free_port(), "--data-dir", data_dir,
                           "--log-level", "warn"]
    p = subprocess.run(cmd, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    err = p.stderr.decode()
    assert p.returncode == 1, "expected exit 1, got %r: %s" % (p.returncode, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line on stderr, got %r" % err
    assert lines[0].startswith("flockd: "), lines[0]
    return lines[0]


def store_some_state(broker):
    sub = broker.connect("keep-sub", **persistent(5))
    sub.subscribe([("keep/#", 1)])
    sub.disconnect()
    pub = broker.connect("keep-pub")
    pub.publish_flow("keep/r", b"retained", qos=1, retain=True)
    pub.publish_flow("keep/q", b"queued", qos=1)
    broker.terminate()


def snapshot(data_dir):
    return {f: os.path.getsize(os.path.join(data_dir, f)) for f in os.listdir(data_dir)}


def test_a_corrupt_current_file_stops_start_up_and_is_left_alone(broker):
    store_some_state(broker)
    with open(os.path.join(broker.data_dir, "CURRENT"), "wb") as f:
        f.write(b"\x00garbage\xff")
    before = snapshot(broker.data_dir)
    line = start_fails(broker.data_dir)
    assert "corrupt" in line and broker.data_dir in line, line
    after = snapshot(broker.data_dir)
    assert {f: s for f, s in after.items() if f != "LOG" and not f.startswith("LOG.")} == \
           {f: s for f, s in before.items() if f != "LOG" and not f.startswith("LOG.")}, "files changed"
    broker.stopped_by_test = True


def test_a_corrupt_manifest_stops_start_up(broker):
    store_some_state(broker)
    manifest = [f for f in os.listdir(broker.data_dir) if f.startswith("MANIFEST-")][0]
    path = os.path.join(broker.data_dir, manifest)
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        for i in range(8, min(len(data), 64)):
            data[i] ^= 0x5A
        f.seek(0)
        f.write(data)
    line = start_fails(broker.data_dir)
    assert "corrupt" in line, line
    assert os.path.getsize(path) == len(data)
    broker.stopped_by_test = True


def test_a_torn_log_tail_keeps_everything_before_it(broker):
    """A write cut short (power loss with durability async) loses at most that last write:
    RocksDB replays the log up to it."""
    pub = broker.connect("torn-pub")
    for i in range(3):
        pub.publish_flow("torn/%d" % i, b"x" * 100, qos=1, retain=True)
    broker.kill()
    logs = sorted(f for f in os.listdir(broker.data_dir) if f.endswith(".log"))
    newest = os.path.join(broker.data_dir, logs[-1])
    size = os.path.getsize(newest)
    os.truncate(newest, size - 20)  # inside the last record
    broker.log.close()
    broker.start(port=broker.port)
    sub = broker.connect("torn-sub")
    sub.subscribe([("torn/#", 0)])
    got = sorted(sub.recv_publish().topic for _ in range(2))
    assert got == ["torn/0", "torn/1"]


def test_a_second_flockd_on_the_same_directory_is_refused(broker):
    line = start_fails(broker.data_dir)
    assert "in use by another flockd" in line, line
    broker.check_serving()


def test_a_directory_that_is_not_writable_stops_start_up(broker):
    store_some_state(broker)
    if not shutil.which("unshare"):
        pytest.skip("needs unshare(1) to mount the directory read-only")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("cannot create a mount namespace here: %s" % probe.stderr.decode().strip())
    d = broker.data_dir
    # In a private mount namespace: the directory bind-mounted read-only over itself, then flockd.
    script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'
    line = start_fails(d, wrapper=["unshare", "-m", "--propagation", "private", "sh", "-c", script, d])
    assert d in line and ("not readable/writable" in line or "cannot be opened" in line), line
    broker.stopped_by_test = True


class Tmpfs:
    """A small tmpfs in a mount namespace of its own, kept alive by a holder process; flockd
    runs inside it through nsenter, so the test can fill and free the disk under it."""

    def __init__(self, mountpoint, size):
        self.mountpoint = mountpoint
        os.makedirs(mountpoint, exist_ok=True)
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o size=%s tmpfs "$0" && echo ready && exec sleep 600' % size, mountpoint],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self.holder.stdout.readline()
        if line.strip() != b"ready":
            err = self.holder.stderr.read().decode().strip()
            self.holder.wait(timeout=5)
            pytest.skip("cannot mount a tmpfs in a mount namespace here: %s" % err)

    def run(self, *cmd):
        return subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", "--"] + list(cmd),
                              capture_output=True, timeout=30)

    def wrapper(self):
        return ["nsenter", "-t", str(self.holder.pid), "-m", "--"]

    def close(self):
        self.holder.kill()
        self.holder.wait(timeout=10)


@pytest.fixture
def full_disk_broker(request):
    if not shutil.which("unshare") or not shutil.which("nsenter"):
        pytest.skip("needs unshare(1) and nsenter(1)")
    with tempfile.TemporaryDirectory(prefix="flock-full-") as tmpdir:
        fs = Tmpfs(os.path.join(tmpdir, "disk"), "48m")
        try:
            b = Broker(2, {"max_queued_messages": 0, "disk_reserve_mb": 16, "sys_interval": 1}, tmpdir)
            b.data_dir = os.path.join(fs.mountpoint, "data")
            b.wrapper = fs.wrapper()
            b.disk = fs
            yield from running(b, request)
        finally:
            fs.close()


def test_a_full_disk_refuses_qos1_then_recovers_without_losing_acknowledged_messages(full_disk_broker):
    broker = full_disk_broker
    fs = broker.disk
    sub = broker.connect("full-sub", **persistent(5))
    sub.subscribe([("full/#", 1)])
    sub.disconnect()
    # Take every free byte of the file system (dd stops at ENOSPC).
    fs.run("dd", "if=/dev/zero", "of=" + os.path.join(fs.mountpoint, "filler"), "bs=1M")

    # One publisher sends QoS 1 messages until an ack stops coming: the disk is below the
    # reserve, so its group waits to be written.
    pub = broker.connect("full-pub")
    payload = b"p" * 32768
    acked = []
    pid = 1
    while True:
        pub.publish("full/t", payload + b"%06d" % pid, qos=1, pid=pid)
        try:
            ack = pub.expect(PUBACK, timeout=2.0)
        except Timeout:
            break
        assert ack.pid == pid and ack.reason in (0,), "unexpected ack %r" % ack
        acked.append(pid)
        pid += 1
        assert pid < 5000, "the disk never filled up"
    held = pid  # sent, not acknowledged: it waits for the disk

    # Meanwhile another MQTT 5 client is told at once that QoS 1 cannot be kept...
    other = broker.connect("full-other")
    assert other.publish_flow("full/t", b"refused", qos=1).reason == 0x97  # quota exceeded
    # ...a 3.1.1 client, which has no negative ack, is disconnected...
    v3 = broker.connect("full-v3", version=4)
    v3.publish("full/t", b"refused", qos=1, pid=1)
    v3.wait_closed()
    # ...and QoS 0 still flows.
    other.publish("full/qos0", b"fine", qos=0)
    assert "store:" in broker.log_text(), "the failure was not logged"
    # $SYS says so.
    watch = broker.connect("full-sys")
    watch.subscribe([("$SYS/broker/store/healthy", 0), ("$SYS/broker/publish/messages/refused", 0)])
    seen = {}
    def sys_reports_failure():
        p = watch.recv_publish(timeout=3)
        seen[p.topic] = p.payload
        return (seen.get("$SYS/broker/store/healthy") == b"0"
                and int(seen.get("$SYS/broker/publish/messages/refused", b"0")) >= 2)
    wait_for(sys_reports_failure, 5, message="$SYS to report the refusals: %r" % seen)

    # Free the disk: the store retries by itself, the held ack comes, publishes are accepted.
    fs.run("rm", "-f", os.path.join(fs.mountpoint, "filler"))
    ack = pub.expect(PUBACK, timeout=10)
    assert (ack.pid, ack.reason) == (held, 0)
    acked.append(held)
    wait_for(lambda: other.publish_flow("full/t", b"after", qos=1).reason == 0, 10,
             message="QoS 1 publishes to be accepted again")

    # Nothing acknowledged was lost, across a crash too.
    broker.restart(kill=True)
    sub = broker.client(5)
    assert sub.connect("full-sub", **persistent(5)).session_present
    got = []
    while len(got) < len(acked) + 1:
        p = sub.recv_publish(timeout=10)
        got.append(p.payload)
    expected = [payload + b"%06d" % i for i in acked] + [b"after"]
    assert got == expected[:len(got)] and len(got) == len(expected)
