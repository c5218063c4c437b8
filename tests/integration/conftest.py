"""Fixtures: start the broker under test on a free 127.0.0.1 port, hand out clients, stop it.

FLOCK_BROKER selects the broker:
  unset            ../../build/bin/flockd relative to this directory
  /path/to/flockd  that binary (parametrized over --workers 1 and --workers 4)
  mosquitto        /usr/sbin/mosquitto with a generated config (the reference broker)

FLOCK_RUN_MOSQUITTO_WRONG=1 runs the tests marked mosquitto_wrong against mosquitto anyway
(they should fail: a check that the tests can fail).

Per-test broker settings: @pytest.mark.broker(max_queued_messages=3, ...). Keys are the flockd
config keys (underscores); each becomes --max-queued-messages 3 for flockd and the equivalent
mosquitto.conf line for mosquitto.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mqtt_raw  # noqa: E402

MOSQUITTO = "/usr/sbin/mosquitto"
_broker_env = os.environ.get("FLOCK_BROKER", "")
IS_MOSQUITTO = _broker_env == "mosquitto"
BROKER_PATH = (MOSQUITTO if IS_MOSQUITTO else
               _broker_env or os.path.normpath(os.path.join(HERE, "..", "..", "build", "bin", "flockd")))
EXTRA_ARGS = os.environ.get("FLOCK_BROKER_ARGS", "").split()


def wait_for(cond, timeout, interval=0.02, message="condition"):
    """Poll cond() until it returns a truthy value; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, message))
        time.sleep(interval)


def wait_until(deadline):
    """Let a broker timer run: block until time.monotonic() passes `deadline`.

    Only for timer-driven behaviour whose effect is an absence (an expired session, a will that
    must not be sent yet); everything observable is waited for with wait_for."""
    while time.monotonic() < deadline:
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Memory limits in the tests are for production builds: under ASan (make
# test-asan sets FLOCK_SANITIZED) shadow memory and the quarantine inflate RSS,
# so it is scaled back before comparing.
_RSS_SCALE = 2 if os.environ.get("FLOCK_SANITIZED") else 1
# Start-up takes a few hundred ms plain and up to a second or two sanitized,
# next to other tests' sanitized brokers. (A "stop" of over 10 s between two
# "listening on" lines, seen once, was a port another test took between
# free_port() and listen(): flockd hung instead of exiting; it exits now, and
# start() below retries on a fresh port.)
START_TIMEOUT = 30.0 if os.environ.get("FLOCK_SANITIZED") else 10.0


def read_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // _RSS_SCALE
    raise AssertionError("no VmRSS for pid %d" % pid)


_MOSQ_KEYS = {
    "max_packet_size": "max_packet_size",
    "receive_maximum": "max_inflight_messages",
    "max_queued_messages": "max_queued_messages",
    "max_keepalive": "max_keepalive",
    "sys_interval": "sys_interval",
    "topic_alias_maximum": "max_topic_alias",
    "queue_qos0_messages": "queue_qos0_messages",
}


class Broker:
    def __init__(self, workers, options, tmpdir):
        self.stopped_by_test = False  # set by tests that SIGTERM the broker themselves
        self.workers = workers
        self.options = dict(options)
        self.tmpdir = tmpdir
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        self.clients = []
        self.log_path = os.path.join(tmpdir, "broker.log")
        self.data_dir = os.path.join(tmpdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.wrapper = []  # a command flockd runs under, e.g. nsenter into a mount namespace

    @property
    def pid(self):
        return self.proc.pid

    def _command(self):
        if IS_MOSQUITTO:
            conf = os.path.join(self.tmpdir, "mosquitto.conf")
            lines = ["listener %d 127.0.0.1" % self.port, "allow_anonymous true",
                     "persistence false", "log_dest stderr", "log_type error",
                     "log_type warning"]
            # mosquitto has no receive-maximum key of its own: max_inflight_messages is what
            # it advertises as Receive Maximum and also its outgoing window.
            for key, value in self.options.items():
                if key in _MOSQ_KEYS:
                    if isinstance(value, bool):
                        value = "true" if value else "false"
                    lines.append("%s %s" % (_MOSQ_KEYS[key], value))
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            return [MOSQUITTO, "-c", conf]
        cmd = [BROKER_PATH, "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data_dir,
               "--workers", str(self.workers), "--node-name", "itest", "--log-level", "info"]
        for key, value in self.options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            cmd += ["--" + key.replace("_", "-"), str(value)]
        return self.wrapper + cmd + EXTRA_ARGS

    def start(self, timeout=None, port=None):
        """Start the broker; on a free port, or on `port` (a restart keeps its clients' port)."""
        if timeout is None:
            timeout = START_TIMEOUT
        for attempt in range(3):
            self.port = port or free_port()
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(self._command(), stdout=self.log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.tmpdir)
            try:
                wait_for(self._accepting, timeout, message="broker to accept connections")
                return
            except AssertionError:
                if self.proc.poll() is None:
                    raise AssertionError("broker did not accept connections on port %d within "
                                         "%.0fs\n%s" % (self.port, timeout, self.log_text()))
                # exited: maybe someone else took the port between free_port() and bind()
                if attempt == 2:
                    raise AssertionError("broker exited with %r at start-up\n%s"
                                         % (self.proc.returncode, self.log_text()))

    def _accepting(self):
        if self.proc.poll() is not None:
            raise AssertionError("broker exited with %r at start-up\n%s"
                                 % (self.proc.returncode, self.log_text()))
        if not IS_MOSQUITTO and b" started: " not in self._log_bytes():
            # flockd logs this once every listener is bound. Until then the port
            # may even belong to another test's broker that won a bind race.
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _log_bytes(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def log_text(self, limit=20000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return "---- broker log (tail) ----\n" + data[-limit:].decode("utf-8", "replace")

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL: the crash that durable state must survive. Clients are closed."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._forget_clients()

    def terminate(self):
        """SIGTERM and wait for a clean exit (asserted). Clients are closed."""
        os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.proc.wait(timeout=15)
        assert rc == 0, "flockd exited with %r on SIGTERM\n%s" % (rc, self.log_text())
        self._forget_clients()

    def restart(self, kill=True):
        """Crash (SIGKILL) or stop (SIGTERM) the broker and start it again on the same data
        directory and port."""
        if kill:
            self.kill()
        else:
            self.terminate()
        self.log.close()
        self.start(port=self.port)

    def _forget_clients(self):
        for c in self.clients:
            c.close()
        self.clients = []

    def stop(self):
        for c in self.clients:
            c.close()
        crashed = None
        if self.proc.poll() is not None and self.stopped_by_test and self.proc.returncode == 0:
            pass  # the test shut the broker down itself, cleanly
        elif self.proc.poll() is not None:
            crashed = "broker died during the test with exit code %r" % self.proc.returncode
        else:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=10)
                if rc < 0 and -rc in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS,
                                      signal.SIGILL, signal.SIGFPE):
                    crashed = "broker crashed at shutdown (signal %d)" % -rc
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                crashed = "broker did not exit within 10s of SIGTERM"
        self.log.close()
        return crashed

    # -- clients
    def client(self, version=5, **kw):
        c = mqtt_raw.RawClient(self.port, version=version, host=self.host, **kw)
        self.clients.append(c)
        return c

    def connect(self, client_id, version=5, **kw):
        """A connected client; asserts the CONNACK is a success. Returns the client; the CONNACK
        is on client.connack."""
        c = self.client(version)
        ack = c.connect(client_id, **kw)
        assert ack.reason == 0, "CONNACK refused: %r" % ack
        c.connack = ack
        return c

    def check_serving(self, version=4):
        """Assert the broker still serves: a fresh client does a QoS 1 round trip."""
        tag = "serving-%d" % time.monotonic_ns()
        c = self.connect(tag, version=version)
        c.subscribe([("check/" + tag, 1)])
        c.publish_flow("check/" + tag, b"ok", qos=1)
        p = c.recv_publish()
        assert p.topic == "check/" + tag and p.payload == b"ok"
        c.disconnect()


def _worker_params():
    """--workers for the broker fixture: 1 and 4; FLOCK_WORKERS="4" narrows it (make test-asan
    runs only 4, the cross-worker paths, to keep CI short; the plain run covers both)."""
    if IS_MOSQUITTO:
        return ["mosquitto"]
    return [int(w) for w in os.environ.get("FLOCK_WORKERS", "1 4").split()]


def pytest_configure(config):
    config.addinivalue_line("markers", "broker(**options): broker config for this test")
    config.addinivalue_line("markers", "mosquitto_wrong(reason): behaviour Mosquitto 2.0.11 gets "
                                       "wrong or lacks; skipped when FLOCK_BROKER=mosquitto")


def pytest_collection_modifyitems(config, items):
    for item in items:
        m = item.get_closest_marker("mosquitto_wrong")
        if m is not None and IS_MOSQUITTO and not os.environ.get("FLOCK_RUN_MOSQUITTO_WRONG"):
            reason = m.args[0] if m.args else "Mosquitto 2.0.11 is known to get this wrong"
            item.add_marker(pytest.mark.skip(reason="mosquitto: " + reason))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(params=_worker_params(), ids=lambda w: w if isinstance(w, str) else "workers%d" % w)
def broker(request):
    if not IS_MOSQUITTO and not os.access(BROKER_PATH, os.X_OK):
        pytest.fail("broker binary %s not found: build flockd or set FLOCK_BROKER" % BROKER_PATH)
    m = request.node.get_closest_marker("broker")
    options = dict(m.kwargs) if m else {}
    with tempfile.TemporaryDirectory(prefix="flock-itest-") as tmpdir:
        yield from running(Broker(request.param, options, tmpdir), request)


def running(b, request=None):
    """Starts broker `b` for one test (a generator for fixtures: `yield from`); at teardown
    stops it, prints its log if the test failed, and fails the test if the broker crashed."""
    b.start()
    try:
        yield b
    finally:
        crashed = b.stop()
        rep = getattr(request.node, "rep_call", None) if request else None
        if rep is not None and rep.failed:
            sys.stderr.write(b.log_text() + "\n")
        if crashed:
            pytest.fail("%s\n%s" % (crashed, b.log_text()))


@pytest.fixture(params=[4, 5], ids=["v311", "v5"])
def version(request):
    return request.param


# ---------------------------------------------------------------- test helpers


def persistent(version, expiry=300):
    """CONNECT kwargs for a session that survives the connection (3.1.1: clean session 0,
    which never expires; 5: clean start 0 with a session expiry in seconds)."""
    if version == 5:
        return {"clean": False, "props": {mqtt_raw.SESSION_EXPIRY: expiry}}
    return {"clean": False}


def marker_sync(sub, pub, topic):
    """Prove sub received nothing unexpected: pub sends a QoS 1 marker on `topic` (sub must be
    subscribed to it) and the very next PUBLISH sub gets must be that marker."""
    payload = b"marker-%d" % time.monotonic_ns()
    pub.publish_flow(topic, payload, qos=1)
    p = sub.recv_publish()
    assert (p.topic, p.payload) == (topic, payload), "expected only the marker, got %r" % p
    return p


def drain_publishes(client, quiet=0.5, limit=100000, ack=True):
    """Collect PUBLISH packets until none arrives for `quiet` seconds."""
    out = []
    while len(out) < limit:
        try:
            out.append(client.recv_publish(quiet, ack=ack))
        except mqtt_raw.Timeout:
            break
    return out
