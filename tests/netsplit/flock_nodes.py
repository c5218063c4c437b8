"""flockd nodes inside network namespaces, and MQTT clients next to them.

Each node runs as `ip netns exec flk-nK-<tag> flockd ...`; ip execs flockd, so the Popen PID is
flockd's own and the only process this module ever signals.
"""

import datetime
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))

import cluster_certs  # noqa: E402
import mqtt_raw  # noqa: E402
import netns  # noqa: E402

BROKER_PATH = os.environ.get("FLOCK_BROKER") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "bin", "flockd"))
EXTRA_ARGS = os.environ.get("FLOCK_BROKER_ARGS", "").split()
MQTT_PORT, CLUSTER_PORT = 1883, 7000  # every node has its own address, so fixed ports are free

# Short timings so a split is noticed in about a second (flags of flockd --help).
TIMINGS = ["--cluster-heartbeat-ms", "100", "--cluster-failure-timeout-ms", "1000"]


_certs = {}  # tmpdir -> the cluster's CA and node certificate (mutual TLS, flockd's default)


def tls_flags(tmpdir):
    if tmpdir not in _certs:
        _certs[tmpdir] = cluster_certs.ClusterCerts(os.path.join(tmpdir, "certs"))
    return cluster_certs.flags(_certs[tmpdir].node)


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


class Node:
    def __init__(self, net, k, peers, tmpdir):
        self.net, self.k = net, k
        self.name = "n%d" % k
        self.ns = net.ns(k)
        self.host = net.address(k)
        self.data_dir = os.path.join(tmpdir, self.name)
        self.log_path = os.path.join(tmpdir, self.name + ".log")
        self.seeds = ",".join("%s:%d" % (net.address(j), CLUSTER_PORT) for j in peers)
        self.tls = tls_flags(tmpdir)
        self.proc = None
        self.clients = []

    def command(self):
        return ["ip", "netns", "exec", self.ns, BROKER_PATH,
                # not loopback: anonymous clients must be let in explicitly
                "--listen", "%s:%d,allow_anonymous=true" % (self.host, MQTT_PORT),
                "--cluster-listen", "%s:%d" % (self.host, CLUSTER_PORT),
                "--seeds", self.seeds, "--node-name", self.name,
                "--data-dir", self.data_dir, "--workers", "2", "--log-level", "info"
                ] + self.tls + TIMINGS + EXTRA_ARGS

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.data_dir)

    # -- the log

    def log_bytes(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def log_mark(self):
        """An offset: wait_log(..., since=mark) looks only at lines logged after it."""
        return len(self.log_bytes())

    def log_text(self, limit=30000):
        data = self.log_bytes()
        return "---- %s log (tail) ----\n%s" % (self.name, data[-limit:].decode("utf-8", "replace"))

    def wait_log(self, pattern, timeout, since=0):
        regex = re.compile(pattern.encode())

        def seen():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %r\n%s"
                                     % (self.name, self.proc.returncode, self.log_text()))
            return regex.search(self.log_bytes(), since)
        try:
            return wait_for(seen, timeout, message="%s to log /%s/" % (self.name, pattern))
        except AssertionError as e:
            raise AssertionError("%s\n%s" % (e, self.log_text())) from None

    def logged_at_ms(self, match):
        """The wall-clock time (Unix ms) of the log line holding `match` (from wait_log):
        lines start with an ISO 8601 UTC time, e.g. 2026-01-02T03:04:05.678Z."""
        data = self.log_bytes()
        start = data.rfind(b"\n", 0, match.start()) + 1
        stamp = data[start:data.index(b" ", start)].decode()
        t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- clients: sockets made inside the node's namespace, to the node's address

    def client(self, version=5, **kw):
        with netns.entered(self.ns):
            c = mqtt_raw.RawClient(MQTT_PORT, version=version, host=self.host, **kw)
        self.clients.append(c)
        return c

    def connect(self, client_id, version=5, **kw):
        c = self.client(version)
        ack = c.connect(client_id, **kw)
        assert ack.reason == 0, "%s refused CONNECT of %s: %r" % (self.name, client_id, ack)
        c.connack = ack
        return c

    def stop(self):
        """SIGTERM and wait; returns why it was not a clean exit, or None."""
        for c in self.clients:
            c.close()
        self.clients = []
        if self.proc is None:
            return None
        problem = None
        if self.proc.poll() is not None:
            problem = "%s died during the test with exit code %r" % (self.name,
                                                                    self.proc.returncode)
        else:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=15)
                if rc != 0:
                    problem = "%s exited with %r on SIGTERM" % (self.name, rc)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                problem = "%s did not exit within 15s of SIGTERM" % self.name
        self.log.close()
        return problem


def start_cluster(net, tmpdir, ks):
    """Start every node at once (each lists the others as seeds) and wait until each has
    logged every other node up."""
    nodes = {k: Node(net, k, [j for j in ks if j != k], tmpdir) for k in ks}
    for n in nodes.values():
        n.start()
    return nodes


def wait_peers(nodes, state, timeout, since=None, among=None):
    """Wait until every node in `among` (default all) has logged 'cluster: peer X <state>' for
    each other node in `among`, after the log offsets in `since` (node -> mark)."""
    among = among or list(nodes)
    for k in among:
        for j in among:
            if j != k:
                nodes[k].wait_log(r"cluster: peer n%d %s[ :]" % (j, state), timeout,
                                  since=(since or {}).get(k, 0))
