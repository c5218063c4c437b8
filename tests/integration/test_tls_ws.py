"""TLS (mqtts), mutual TLS, WebSocket (ws) and WebSocket on TLS (wss) listeners.

A throwaway CA, server and client certificates are made with the openssl command in a temporary
directory; the broker gets one plain listener (for the fixture's readiness check) plus one
listener per protocol. Clients: paho (tls_set, transport="websockets"), Python's ssl module, and
a raw WebSocket client that splits MQTT packets across frames.
"""

import base64
import os
import queue
import socket
import ssl
import struct
import subprocess
import tempfile
import threading

import pytest

import mqtt_raw
from conftest import BROKER_PATH, IS_MOSQUITTO, Broker, free_port, running, wait_for

paho = pytest.importorskip("paho.mqtt.client")

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="flockd listener flags")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def certs():
    """ca.pem signs server.pem (SAN 127.0.0.1) and client.pem (CN device-42); rogue.pem is
    self-signed."""
    with tempfile.TemporaryDirectory(prefix="flock-certs-") as d:
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
                 "ca.pem", "-days", "2", "-subj", "/CN=flock test CA", cwd=d)
        with open(os.path.join(d, "server.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        for name, cn in (("server", "127.0.0.1"), ("client", "device-42")):
            _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                     name + ".csr", "-subj", "/CN=" + cn, cwd=d)
            extra = ["-extfile", "server.ext"] if name == "server" else []
            _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-out", name + ".pem", "-days", "2", *extra, cwd=d)
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out",
                 "rogue.pem", "-days", "2", "-subj", "/CN=rogue", cwd=d)
        yield {k: os.path.join(d, k) for k in
               ("ca.pem", "server.pem", "server.key", "client.pem", "client.key", "rogue.pem",
                "rogue.key")}


class TlsBroker(Broker):
    """The fixture's broker plus mqtts, mqtts with mTLS, ws and wss listeners."""

    def __init__(self, workers, options, tmpdir, certs):
        super().__init__(workers, options, tmpdir)
        self.certs = certs

    def _command(self):
        cmd = super()._command()
        c = self.certs
        tls = ",certfile=%s,keyfile=%s" % (c["server.pem"], c["server.key"])
        # Fresh ports on every (re)start attempt.
        self.ports = {k: free_port() for k in ("mqtts", "mtls", "ws", "wss", "identity")}
        cmd += ["--listen", "mqtts://127.0.0.1:%d%s" % (self.ports["mqtts"], tls),
                "--listen", "mqtts://127.0.0.1:%d%s,cafile=%s,require_certificate=true"
                % (self.ports["mtls"], tls, c["ca.pem"]),
                "--listen", "ws://127.0.0.1:%d/mqtt" % self.ports["ws"],
                "--listen", "wss://127.0.0.1:%d/mqtt%s" % (self.ports["wss"], tls),
                "--listen", "mqtts://127.0.0.1:%d%s,cafile=%s,require_certificate=true,"
                "use_identity_as_username=true,allow_anonymous=false"
                % (self.ports["identity"], tls, c["ca.pem"])]
        return cmd


@pytest.fixture(params=[1, 4], ids=["workers1", "workers4"])
def broker(request, certs):
    if not os.access(BROKER_PATH, os.X_OK):
        pytest.fail("broker binary %s not found" % BROKER_PATH)
    m = request.node.get_closest_marker("broker")
    options = dict(m.kwargs) if m else {}
    with tempfile.TemporaryDirectory(prefix="flock-itest-") as tmpdir:
        yield from running(TlsBroker(request.param, options, tmpdir, certs), request)


# ---------------------------------------------------------------- paho


class Paho:
    def __init__(self, port, client_id, transport="tcp", ca=None, cert=None, key=None):
        self.c = paho.Client(client_id=client_id, protocol=paho.MQTTv311, transport=transport)
        if transport == "websockets":
            self.c.ws_set_options(path="/mqtt")
        if ca:
            self.c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.rc = None
        self.c.on_connect = self._on_connect
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()
        assert self.connected.wait(10), "paho did not connect"
        assert self.rc == 0, "CONNACK refused: %r" % self.rc

    def _on_connect(self, client, userdata, flags, rc):
        self.rc = rc
        self.connected.set()

    def round_trip(self, topic, payload):
        self.subscribed.clear()
        self.c.subscribe(topic, 1)
        assert self.subscribed.wait(10), "no SUBACK"
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published(), "no PUBACK"
        try:
            m = self.messages.get(timeout=10)
        except queue.Empty:
            raise AssertionError("message did not come back")
        assert (m.topic, m.qos, m.payload) == (topic, 1, payload)

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


def test_paho_over_mqtts_qos1_round_trip(broker, certs):
    c = Paho(broker.ports["mqtts"], "tls-1", ca=certs["ca.pem"])
    try:
        c.round_trip("tls/a", b"over tls")
    finally:
        c.stop()
    broker.check_serving()


def test_paho_over_ws_round_trip_and_200k_payload(broker):
    c = Paho(broker.ports["ws"], "ws-1", transport="websockets")
    try:
        c.round_trip("ws/a", b"over websocket")
        c.round_trip("ws/big", os.urandom(200 * 1024))
    finally:
        c.stop()


def test_paho_over_wss_round_trip_and_200k_payload(broker, certs):
    c = Paho(broker.ports["wss"], "wss-1", transport="websockets", ca=certs["ca.pem"])
    try:
        c.round_trip("wss/a", b"over secure websocket")
        c.round_trip("wss/big", os.urandom(200 * 1024))
    finally:
        c.stop()


def test_transports_share_one_broker(broker, certs):
    """A ws subscriber gets what an mqtts publisher sends."""
    sub = Paho(broker.ports["ws"], "ws-sub", transport="websockets")
    pub = Paho(broker.ports["mqtts"], "tls-pub", ca=certs["ca.pem"])
    try:
        sub.subscribed.clear()
        sub.c.subscribe("mix/t", 1)
        assert sub.subscribed.wait(10)
        pub.c.publish("mix/t", b"cross", qos=1).wait_for_publish(10)
        m = sub.messages.get(timeout=10)
        assert m.payload == b"cross"
    finally:
        sub.stop()
        pub.stop()


# ---------------------------------------------------------------- raw TLS


def tls_client(port, certs, cert=None, key=None):
    """A RawClient whose socket is TLS (handshake done, or ssl.SSLError raised)."""
    c = mqtt_raw.RawClient(port, version=4)
    ctx = ssl.create_default_context(cafile=certs["ca.pem"])
    if cert:
        ctx.load_cert_chain(cert, key)
    c.sock = ctx.wrap_socket(c.sock, server_hostname="127.0.0.1")
    return c


def refused(port, certs, cert=None, key=None):
    """True if the broker refuses the TLS session: at the handshake (TLS 1.2) or right after it
    (TLS 1.3 reports a missing client certificate once the client reads)."""
    try:
        c = tls_client(port, certs, cert, key)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True
    try:
        c.send_connect("mtls-probe")
        c.recv(10)
    except (mqtt_raw.ConnectionClosed, ssl.SSLError):
        return True
    finally:
        c.close()
    return False


def test_mtls_refuses_client_without_certificate(broker, certs):
    assert refused(broker.ports["mtls"], certs)
    broker.check_serving()


def test_mtls_refuses_certificate_from_another_ca(broker, certs):
    assert refused(broker.ports["mtls"], certs, certs["rogue.pem"], certs["rogue.key"])


def test_mtls_accepts_ca_signed_client_certificate(broker, certs):
    c = tls_client(broker.ports["mtls"], certs, certs["client.pem"], certs["client.key"])
    ack = c.connect("mtls-ok")
    assert ack.reason == 0
    c.subscribe([("m/t", 1)])
    c.publish_flow("m/t", b"mutual", qos=1)
    p = c.recv_publish()
    assert p.payload == b"mutual"
    c.close()
    # ...and paho with its certificate does a QoS 1 round trip.
    pc = Paho(broker.ports["mtls"], "mtls-paho", ca=certs["ca.pem"], cert=certs["client.pem"],
              key=certs["client.key"])
    try:
        pc.round_trip("m/paho", b"mutual paho")
    finally:
        pc.stop()


def closed_by_broker(sock, timeout):
    """Wait (up to timeout) for the broker to close a socket we never write to."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


@pytest.mark.broker(connect_timeout=1)
@pytest.mark.parametrize("listener", ["mqtts", "ws", "wss"])
def test_client_that_never_handshakes_is_closed(broker, listener):
    idle = socket.create_connection(("127.0.0.1", broker.ports[listener]))
    try:
        assert closed_by_broker(idle, 10), "broker kept a silent %s socket open" % listener
    finally:
        idle.close()
    broker.check_serving()


# ---------------------------------------------------------------- raw WebSocket


class WsSocket:
    """Just enough of a client WebSocket to drive the broker byte by byte: masked binary frames
    out, frame payloads in as a byte stream (what RawClient expects of a socket)."""

    def __init__(self, port, path="/mqtt", protocols="mqtt"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n" % (path, key))
        if protocols:
            request += "Sec-WebSocket-Protocol: %s\r\n" % protocols
        self.sock.sendall((request + "\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            head += chunk
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0] else 0
        self.headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        self.pending = b""

    def frame(self, payload, opcode=2, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    def sendall(self, data):
        self.sock.sendall(self.frame(data))

    def _read_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionResetError("EOF inside a frame")
            out += chunk
        return out

    def recv(self, _n):
        while True:
            try:
                first = self.sock.recv(1)
            except socket.timeout:
                raise
            if not first:
                return b""
            b1 = self._read_exact(1)[0]
            assert not b1 & 0x80, "server frames must not be masked"
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read_exact(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read_exact(8))[0]
            payload = self._read_exact(n) if n else b""
            opcode = first[0] & 0x0F
            if opcode == 8:
                return b""
            if opcode in (0, 2) and payload:
                return payload
            assert opcode in (0, 2, 9, 10), "unexpected opcode %d" % opcode

    def settimeout(self, t):
        self.sock.settimeout(t)

    def setsockopt(self, *a):
        self.sock.setsockopt(*a)

    def close(self):
        self.sock.close()


def ws_client(port, **kw):
    c = mqtt_raw.RawClient(port, version=4)  # its TCP socket is replaced by the WebSocket
    c.sock.close()
    c.sock = WsSocket(port, **kw)
    assert c.sock.status == 101, "upgrade refused: %d" % c.sock.status
    return c


def test_ws_upgrade_echoes_mqtt_subprotocol(broker):
    s = WsSocket(broker.ports["ws"], protocols="mqttv3.1, mqtt")
    assert s.status == 101
    assert s.headers.get("sec-websocket-protocol") == "mqtt"
    s.close()


def test_ws_wrong_path_is_refused(broker):
    s = WsSocket(broker.ports["ws"], path="/other")
    assert s.status == 404
    s.close()


def test_ws_packets_span_frames_and_frames_hold_several_packets(broker):
    c = ws_client(broker.ports["ws"])
    ws = c.sock
    connect = mqtt_raw.build_connect(4, "ws-frames", clean=True)
    # CONNECT in three frames of one message (binary, continuation, final continuation).
    ws.sock.sendall(ws.frame(connect[:3], opcode=2, fin=False) + ws.frame(connect[3:9], opcode=0,
                    fin=False) + ws.frame(connect[9:], opcode=0, fin=True))
    assert c.recv().type == mqtt_raw.CONNACK
    # SUBSCRIBE and two PUBLISHes in one frame, then a PUBLISH split over two messages.
    sub = mqtt_raw.build_subscribe(4, 1, [("f/t", 1)])
    p1 = mqtt_raw.build_publish(4, "f/t", b"one", qos=1, pid=2)
    p2 = mqtt_raw.build_publish(4, "f/t", b"two", qos=1, pid=3)
    ws.sendall(sub + p1 + p2)
    big = mqtt_raw.build_publish(4, "f/t", os.urandom(70000), qos=1, pid=4)
    ws.sendall(big[:40000])
    ws.sendall(big[40000:])
    got, acks = [], set()
    while len(got) < 3 or len(acks) < 3:
        p = c.recv(10)
        if p.type == mqtt_raw.PUBLISH:
            got.append(p.payload)
            if p.qos:
                c.send(mqtt_raw.build_ack(4, mqtt_raw.PUBACK, p.pid))
        elif p.type == mqtt_raw.PUBACK:
            acks.add(p.pid)
    assert got[:2] == [b"one", b"two"] and len(got[2]) == 70000
    assert acks == {2, 3, 4}
    c.close()


# ---------------------------------------------------------------- start-up errors


def run_flockd(*args, timeout=20):
    with tempfile.TemporaryDirectory(prefix="flock-tls-cli-") as d:
        return subprocess.run([BROKER_PATH, "--data-dir", os.path.join(d, "data"), *args],
                              capture_output=True, text=True, timeout=timeout, cwd=d)


def test_bad_certfile_exits_2_with_one_line(certs, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cases = [
        ("mqtts://127.0.0.1:0,certfile=%s,keyfile=%s" % (tmp_path / "missing.pem",
                                                          certs["server.key"]), "missing.pem"),
        ("mqtts://127.0.0.1:0,certfile=%s,keyfile=%s" % (garbage, certs["server.key"]),
         "garbage.pem"),
        ("wss://127.0.0.1:0,certfile=%s,keyfile=%s" % (certs["server.pem"], certs["client.key"]),
         "client.key"),
        ("mqtts://127.0.0.1:0,certfile=%s" % certs["server.pem"], "keyfile"),
    ]
    for listen, needle in cases:
        r = run_flockd("--listen", listen)
        assert r.returncode == 2, (listen, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("flockd: config: "), r.stderr
        assert needle in lines[0], r.stderr


def test_certificate_identity_is_the_user_name(broker, certs):
    # The listener refuses anonymous clients; a client that sends no user name
    # gets in because its certificate's CN (device-42) is its user name.
    c = tls_client(broker.ports["identity"], certs, certs["client.pem"], certs["client.key"])
    ack = c.connect("cn-user")
    assert ack.reason == 0
    c.close()
