"""A cluster of real flockd nodes on 127.0.0.1 for the tests in this directory.

The single-node helpers (RawClient, Broker, wait_for, free_port, ...) come from
tests/integration: that conftest is loaded here under its own module name, so its
fixtures are not registered twice and nothing is copied.

Each Node is an integration Broker with cluster flags: its own MQTT port, cluster
port, data directory and log (one log across restarts; reads look at the current
process's part). Cluster starts the nodes together, waits until each logged
"cluster: peer X up" for every other, and then until publishes cross every ordered
pair of nodes (see Cluster.converge), so a test starts on a cluster that routes.
"""

import collections
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.normpath(os.path.join(HERE, "..", "integration"))


def _load_integration_conftest():
    if "integration_conftest" in sys.modules:
        return sys.modules["integration_conftest"]
    spec = importlib.util.spec_from_file_location("integration_conftest",
                                                  os.path.join(INTEGRATION, "conftest.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["integration_conftest"] = module
    spec.loader.exec_module(module)  # puts tests/integration on sys.path for mqtt_raw
    return module


ic = _load_integration_conftest()
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "fixtures")))
import cluster_certs  # noqa: E402
import mqtt_raw  # noqa: E402  (from tests/integration, on sys.path now)

wait_for = ic.wait_for
wait_until = ic.wait_until
free_port = ic.free_port
persistent = ic.persistent
drain_publishes = ic.drain_publishes
BROKER_PATH = ic.BROKER_PATH

# Short cluster timings so failures and claims resolve within a test's patience.
DEFAULT_OPTIONS = {
    "cluster_heartbeat_ms": 100,
    "cluster_failure_timeout_ms": 1000,
    "cluster_claim_timeout_ms": 1000,
    "sys_interval": 1,
}


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class Node(ic.Broker):
    """One flockd of the cluster. connect()/client()/check_serving() as in tests/integration."""

    def __init__(self, name, tmpdir, workers, options):
        super().__init__(workers, options, os.path.join(tmpdir, name))
        self.name = name
        self.port = free_port()
        self.cluster_port = free_port()
        self.seeds = []          # cluster ports of the other nodes
        self.down = False        # stopped by the test (kill/terminate) and not started again
        self.log_mark = 0        # where the current process's part of the log begins
        self.log = None

    def __repr__(self):
        return "<node %s mqtt=%d cluster=%d>" % (self.name, self.port, self.cluster_port)

    @property
    def cluster_address(self):
        return "127.0.0.1:%d" % self.cluster_port

    def _command(self):
        cmd = [BROKER_PATH, "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data_dir,
               "--workers", str(self.workers), "--node-name", self.name, "--log-level", "info",
               "--cluster-listen", self.cluster_address]
        if self.seeds:
            cmd += ["--seeds", ",".join("127.0.0.1:%d" % p for p in self.seeds)]
        for key, value in self.options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            cmd += ["--" + key.replace("_", "-"), str(value)]
        return cmd + ic.EXTRA_ARGS

    # -- process
    def spawn(self):
        """Start flockd without waiting (Cluster.start starts all nodes, then waits)."""
        os.makedirs(self.data_dir, exist_ok=True)
        self.log_mark = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._command(), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.tmpdir)
        self.down = False

    def wait_started(self, timeout=15.0, new_ports=False):
        """Wait until the node accepts MQTT connections. With `new_ports` (a first start, whose
        ports nobody relies on yet), a start that failed because another test's process took
        one of its ports between free_port() and flockd's bind or listen is retried on fresh
        ports; the other nodes learn the new cluster address when this node dials them."""
        for attempt in range(3):
            try:
                wait_for(self._accepting, timeout, message="node %s to accept connections" % self.name)
                return
            except AssertionError:
                log = self.current_log()
                port_taken = b"in use" in log or b"cannot listen for the cluster" in log
                if not new_ports or attempt == 2 or self.proc.poll() is None or not port_taken:
                    raise
                self.log.close()
                self.port, self.cluster_port = free_port(), free_port()
                self.spawn()

    def start(self, timeout=15.0, new_ports=False):
        self.spawn()
        self.wait_started(timeout, new_ports)

    def _accepting(self):
        if self.proc.poll() is not None:
            raise AssertionError("node %s exited with %r at start-up\n%s"
                                 % (self.name, self.proc.returncode, self.log_text()))
        if b" started: " not in self.current_log():
            return False  # flockd logs this once every listener is bound
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def kill(self):
        """SIGKILL: a crash. Its clients are closed."""
        assert self.proc.poll() is None, ("node %s died (exit %r) before the test killed it\n%s"
                                          % (self.name, self.proc.returncode, self.log_text()))
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._forget_clients()
        self.log.close()
        self.down = True

    def terminate(self):
        """SIGTERM and wait for a clean exit (asserted)."""
        os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.proc.wait(timeout=15)
        self._forget_clients()
        self.log.close()
        self.down = True
        assert rc == 0, "node %s exited with %r on SIGTERM\n%s" % (self.name, rc, self.log_text())

    def restart(self, kill=True):
        raise NotImplementedError("use cluster.restart(node): it waits until the node rejoined")

    def wipe(self):
        """Remove the data directory (the node must be down): it comes back knowing nothing."""
        assert self.down, "wipe a running node"
        shutil.rmtree(self.data_dir)

    def stop(self):
        """Teardown: SIGTERM; returns a message if the node crashed during the test or on exit."""
        for c in self.clients:
            c.close()
        self.clients = []
        if self.proc is None or self.down:
            return None
        crashed = None
        if self.proc.poll() is not None:
            crashed = "node %s died during the test with exit code %r" % (self.name, self.proc.returncode)
        else:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=15)
                if rc != 0:
                    crashed = "node %s exited with %r on SIGTERM" % (self.name, rc)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                crashed = "node %s did not exit within 15s of SIGTERM" % self.name
        self.log.close()
        self.down = True
        return crashed

    # -- log
    def current_log(self):
        """The log of the running (or last) process: bytes since its start."""
        data = self._log_bytes()
        return data[self.log_mark:]

    def log_count(self, pattern):
        return len(re.findall(pattern.encode() if isinstance(pattern, str) else pattern,
                              self.current_log()))

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Wait until `pattern` (a regex) occurs `count` times in the current process's log."""
        def found():
            if self.proc.poll() is not None:
                raise AssertionError("node %s exited with %r while waiting for %r\n%s"
                                     % (self.name, self.proc.returncode, pattern, self.log_text()))
            return self.log_count(pattern) >= count
        wait_for(found, timeout,
                 message="%r in node %s's log\n%s" % (pattern, self.name, self.log_text(4000)))

    def log_text(self, limit=20000):
        data = self._log_bytes()
        return ("---- node %s log (tail) ----\n" % self.name) + data[-limit:].decode("utf-8", "replace")

    def sys_watch(self, topic):
        return SysWatch(self, topic)

    def wait_sys(self, topic, predicate, timeout=10.0):
        """Wait until this node's $SYS `topic` satisfies predicate(value as str), e.g.
        node.wait_sys("$SYS/broker/cluster/routes/remote", lambda v: int(v) >= 3)."""
        w = SysWatch(self, topic)
        try:
            return w.wait(predicate, timeout, what="a value on node %s" % self.name)
        finally:
            w.close()


class SysWatch:
    """A subscriber to one $SYS topic of one node (updates every --sys-interval second)."""

    def __init__(self, node, topic):
        self.topic = topic
        self.client = node.connect(unique("sys-" + node.name), version=5)
        self.client.subscribe([(topic, 0)])

    def next_value(self, timeout=5.0):
        p = self.client.recv_publish(timeout)
        assert p.topic == self.topic, p
        return p.payload.decode()

    def fresh(self, timeout=5.0):
        """A value computed after this call: buffered updates are skipped, then the first
        update to arrive is skipped too (it may have been computed before the call)."""
        drain_publishes(self.client, quiet=0.0)
        self.next_value(timeout)
        return self.next_value(timeout)

    def wait(self, predicate, timeout=10.0, what="value"):
        """Wait until an update satisfies predicate(value as str); returns that value."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %s of %s; saw %r" % (what, self.topic, seen[-10:]))
            try:
                value = self.next_value(left)
            except mqtt_raw.Timeout:
                continue
            seen.append(value)
            if predicate(value):
                return value

    def close(self):
        self.client.disconnect()


def running(c, request):
    """Starts cluster `c` for one test (a generator for fixtures: `yield from`); at teardown
    stops it, prints the logs if the test failed, and fails the test if a node crashed."""
    try:
        c.start()
        yield c
    finally:
        crashed = c.stop()
        rep = getattr(request.node, "rep_call", None)
        if (rep is not None and rep.failed) or crashed:
            sys.stderr.write(c.log_text() + "\n")
        if crashed:
            pytest.fail("; ".join(crashed))


class Cluster:
    """Nodes a, b, c (or `names`), each seeded with all the others."""

    def __init__(self, tmpdir, names=("a", "b", "c"), workers=2, options=None):
        self.tmpdir = tmpdir
        self.workers = workers
        self.options = dict(DEFAULT_OPTIONS)
        self.options.update(options or {})
        # Mutual TLS between the nodes, as flockd requires unless told otherwise.
        self.certs = None
        if self.options.get("cluster_tls", True) and "cluster_certfile" not in self.options:
            self.certs = cluster_certs.ClusterCerts(os.path.join(tmpdir, "certs"))
            for key in ("certfile", "keyfile", "cafile"):
                self.options["cluster_" + key] = self.certs.node[key]
        self.nodes = {}
        for name in names:
            self.nodes[name] = Node(name, tmpdir, workers, self.options)
        for n in self.nodes.values():
            n.seeds = [o.cluster_port for o in self.nodes.values() if o is not n]
        self._probe_no = 0

    def __getitem__(self, name):
        return self.nodes[name]

    def __iter__(self):
        return iter(list(self.nodes.values()))

    @property
    def a(self):
        return self.nodes["a"]

    @property
    def b(self):
        return self.nodes["b"]

    @property
    def c(self):
        return self.nodes["c"]

    def running(self):
        return [n for n in self.nodes.values() if not n.down]

    # -- lifecycle
    def start(self, timeout=20.0):
        for n in self.nodes.values():
            n.spawn()
        for n in self.nodes.values():
            n.wait_started(timeout, new_ports=True)
        for n in self.nodes.values():
            self.wait_peers_up(n, timeout=timeout)
        self.converge_all()

    def wait_peers_up(self, node, peers=None, timeout=15.0):
        """Wait until `node` (its current process) logged "peer X up" for each of `peers`
        (default: every other running node)."""
        peers = peers if peers is not None else [p for p in self.running() if p is not node]
        for p in peers:
            node.wait_log(r"cluster: peer %s up " % re.escape(p.name), timeout)

    def restart(self, node, kill=True, wipe=False, timeout=20.0):
        """Crash (SIGKILL) or stop (SIGTERM) `node`, optionally wipe its data directory, and
        start it again on the same ports; returns once it routes both ways again."""
        if not node.down:
            node.kill() if kill else node.terminate()
        if wipe:
            node.wipe()
        self.start_again(node, timeout)

    def start_again(self, node, timeout=20.0):
        """Start a node the test stopped, on its data directory and ports, and wait until it
        is part of the cluster again."""
        node.start(timeout)
        self.wait_peers_up(node, timeout=timeout)
        self.converge_all(timeout=timeout)

    def add_node(self, name, timeout=20.0):
        """A node that joins late, seeded with every current node."""
        n = Node(name, self.tmpdir, self.workers, self.options)
        n.seeds = [o.cluster_port for o in self.nodes.values()]
        self.nodes[name] = n
        n.start(timeout, new_ports=True)
        self.wait_peers_up(n, timeout=timeout)
        for other in self.running():
            if other is not n:
                self.wait_peers_up(other, [n], timeout=timeout)
        self.converge_all(timeout=timeout)
        return n

    def stop(self):
        """Teardown: stop every node; returns the crash messages."""
        return [m for m in (n.stop() for n in self.nodes.values()) if m]

    def log_text(self):
        return "\n".join(n.log_text() for n in self.nodes.values())

    # -- convergence
    def converge(self, dst, srcs=None, timeout=10.0):
        """Wait until the routes `dst` announced so far are in effect on each node of `srcs`
        (default: every other running node), without sleeping.

        A node announces its route changes in order (under its subscription-index lock), so
        once a route subscribed on `dst` after them works from a source, so do they. A probe
        client subscribes a unique topic on `dst` (a "$" topic: no test's + or # matches it)
        and each source publishes QoS 0 probes until one arrives. Lost probes (a stream not
        up yet) are simply retried."""
        srcs = srcs if srcs is not None else [n for n in self.running() if n is not dst]
        self._probe_no += 1
        topic = "$probe/%s/%d/%s" % (dst.name, self._probe_no, uuid.uuid4().hex[:8])
        sink = dst.connect(unique("probe-sink"), version=5)
        try:
            sink.subscribe([(topic, 0)])
            for src in srcs:
                self._probe_from(src, dst, sink, topic, timeout)
            sink.disconnect()
        finally:
            sink.close()

    def _probe_from(self, src, dst, sink, topic, timeout):
        pub = src.connect(unique("probe-src"), version=5)
        try:
            payload = ("from-" + src.name).encode()
            deadline = time.monotonic() + timeout
            while True:
                pub.publish(topic, payload, qos=0)
                try:
                    while True:
                        p = sink.recv_publish(0.05)
                        if p.payload == payload:
                            pub.disconnect()
                            return
                except mqtt_raw.Timeout:
                    pass
                if time.monotonic() >= deadline:
                    raise AssertionError("routes of node %s not in effect on node %s within %.0fs\n%s"
                                         % (dst.name, src.name, timeout, self.log_text()))
        finally:
            pub.close()

    def converge_all(self, timeout=10.0):
        """Every running node's routes in effect on every other running node."""
        for dst in self.running():
            self.converge(dst, timeout=timeout)


# ---------------------------------------------------------------- test helpers


def collect(client, n, timeout=10.0, ack=True):
    """Exactly the next n PUBLISH packets (each within the overall deadline)."""
    deadline = time.monotonic() + timeout
    out = []
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("got %d of %d messages within %.0fs: last %r" % (len(out), n, timeout, out[-3:]))
        try:
            out.append(client.recv_publish(left, ack=ack))
        except mqtt_raw.Timeout:
            continue
    return out


def publish_then_marker(pub, topic, payloads, qos=1, marker_topic=None, props=None):
    """Publish payloads on topic, then a marker (same QoS, so it keeps their order); returns
    the marker payload. A subscriber that reads up to the marker has seen everything."""
    for payload in payloads:
        pub.publish_flow(topic, payload, qos=qos, props=props)
    marker = b"marker-%d" % time.monotonic_ns()
    pub.publish_flow(marker_topic or topic, marker, qos=qos)
    return marker


def read_until_marker(client, marker, timeout=10.0):
    """PUBLISH packets before the one carrying `marker` (which ends the read)."""
    deadline = time.monotonic() + timeout
    out = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("marker %r not received within %.0fs; got %d before it: %r"
                                 % (marker, timeout, len(out), out[-3:]))
        try:
            p = client.recv_publish(left)
        except mqtt_raw.Timeout:
            continue
        if p.payload == marker:
            return out
        out.append(p)


def retained_on(node, topic, timeout=3.0):
    """The retained message a new subscriber on `node` gets for `topic`, or None.

    Absence is proven by a marker: the retained message (if any) is queued behind the
    SUBACK, before a publish that is sent after it."""
    c = node.connect(unique("ret-" + node.name), version=5)
    try:
        marker_topic = "$retcheck/" + uuid.uuid4().hex[:8]
        c.subscribe([(marker_topic, 0)])
        c.subscribe([(topic, 1)])
        c.publish(marker_topic, b"end", qos=0)
        got = None
        deadline = time.monotonic() + timeout
        while True:
            p = c.recv_publish(max(0.01, deadline - time.monotonic()))
            if p.topic == marker_topic:
                return got
            assert p.retain, "expected only retained messages, got %r" % p
            got = p
    finally:
        c.disconnect()


def wait_retained(node, topic, want, timeout=10.0):
    """Wait until a new subscriber on `node` gets `want` (bytes, or None for no retained
    message) as the retained message of `topic`."""
    last = []

    def check():
        p = retained_on(node, topic)
        value = p.payload if p is not None else None
        last[:] = [value]
        return value == want

    try:
        wait_for(check, timeout, interval=0.05, message="retained %r on %s" % (want, node.name))
    except AssertionError as e:
        raise AssertionError("%s: last seen %r" % (e, last[0] if last else None))


def publish_pipelined(pub, topic, payloads, qos=1, window=50, timeout=10.0):
    """Publish QoS 1 messages with up to `window` unacknowledged (the publisher must not be
    subscribed to anything); returns the PUBACK reason codes in order."""
    assert qos == 1
    pending = collections.deque()
    reasons = []
    for payload in payloads:
        if len(pending) >= window:
            reasons.append(_expect_puback(pub, pending.popleft(), timeout))
        pending.append(pub.publish(topic, payload, qos=1))
    while pending:
        reasons.append(_expect_puback(pub, pending.popleft(), timeout))
    return reasons


def _expect_puback(pub, pid, timeout):
    ack = pub.expect(mqtt_raw.PUBACK, timeout)
    assert ack.pid == pid, "PUBACKs out of order: expected %d, got %r" % (pid, ack)
    return ack.reason
