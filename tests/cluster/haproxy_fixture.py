"""HAProxy (Debian's /usr/sbin/haproxy) in TCP mode in front of the cluster's MQTT ports.

A generated config in a temp directory, haproxy in the foreground (-db), stopped by PID. The
admin socket tells which node a client's connection landed on (`show sess`).
"""

import os
import re
import signal
import socket
import subprocess

from cluster_fixture import free_port, mqtt_raw, wait_for

import haproxy_admin  # noqa: E402  (tests/fixtures, put on sys.path by cluster_fixture)

HAPROXY = "/usr/sbin/haproxy"


class HAProxy:
    def __init__(self, tmpdir, nodes):
        self.tmpdir = tmpdir
        self.nodes = list(nodes)
        self.port = free_port()
        self.admin = os.path.join(tmpdir, "haproxy.sock")
        self.cfg = os.path.join(tmpdir, "haproxy.cfg")
        self.log_path = os.path.join(tmpdir, "haproxy.log")
        self.proc = None
        self.clients = []

    def config(self):
        servers = "\n".join("    server %s 127.0.0.1:%d" % (n.name, n.port) for n in self.nodes)
        return """global
    maxconn 2000
    stats socket %s mode 600 level admin

defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s

frontend mqtt
    bind 127.0.0.1:%d
    default_backend flock

backend flock
    balance roundrobin
%s
""" % (self.admin, self.port, servers)

    def start(self):
        with open(self.cfg, "w") as f:
            f.write(self.config())
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._accepting, 10, message="haproxy to listen on %d\n%s" % (self.port, self.log_text()))

    def _accepting(self):
        if self.proc.poll() is not None:
            raise AssertionError("haproxy exited with %r\n%s" % (self.proc.returncode, self.log_text()))
        if not os.path.exists(self.admin):
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self):
        for c in self.clients:
            c.close()
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return "---- haproxy log ----\n" + f.read()[-5000:].decode("utf-8", "replace")
        except OSError:
            return ""

    # -- clients through the balancer
    def client(self, version=5):
        c = mqtt_raw.RawClient(self.port, version=version)
        self.clients.append(c)
        return c

    def connect(self, client_id, version=5, **kw):
        c = self.client(version)
        ack = c.connect(client_id, **kw)
        assert ack.reason == 0, "CONNACK refused: %r" % ack
        c.connack = ack
        return c

    def admin_command(self, command):
        return haproxy_admin.command(self.admin, command)

    def node_of(self, client):
        """The node name of the server the client's connection was balanced to."""
        port = client.sock.getsockname()[1]
        for line in self.admin_command("show sess").splitlines():
            if re.search(r"\bsrc=127\.0\.0\.1:%d\b" % port, line):
                m = re.search(r"\bsrv=(\S+)", line)
                if m:
                    return m.group(1)
        raise AssertionError("haproxy has no session from port %d" % port)
