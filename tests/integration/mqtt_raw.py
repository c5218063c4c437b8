"""A small raw-socket MQTT client for integration tests.

Packets are built from bytes so a test can send exactly what it wants (including malformed
input) and parse exactly what the broker answered (reason codes, properties, flags).
Every read has a deadline; nothing here sleeps.

Protocol versions: 3 (MQTT 3.1, "MQIsdp"), 4 (3.1.1), 5 (5.0).
"""

import collections
import socket
import struct
import time

# Packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP = 8, 9, 10, 11, 12, 13
DISCONNECT, AUTH = 14, 15

TYPE_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
    7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
    12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

# MQTT 5 property identifiers
PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_ID = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTH_METHOD = 0x15
AUTH_DATA = 0x16
REQUEST_PROBLEM_INFO = 0x17
WILL_DELAY = 0x18
REQUEST_RESPONSE_INFO = 0x19
RESPONSE_INFO = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUB_AVAILABLE = 0x28
SUB_ID_AVAILABLE = 0x29
SHARED_SUB_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROPERTY_TYPES = {
    PAYLOAD_FORMAT: _BYTE, MESSAGE_EXPIRY: _U32, CONTENT_TYPE: _STR, RESPONSE_TOPIC: _STR,
    CORRELATION_DATA: _BIN, SUBSCRIPTION_ID: _VARINT, SESSION_EXPIRY: _U32,
    ASSIGNED_CLIENT_ID: _STR, SERVER_KEEP_ALIVE: _U16, AUTH_METHOD: _STR, AUTH_DATA: _BIN,
    REQUEST_PROBLEM_INFO: _BYTE, WILL_DELAY: _U32, REQUEST_RESPONSE_INFO: _BYTE,
    RESPONSE_INFO: _STR, SERVER_REFERENCE: _STR, REASON_STRING: _STR,
    RECEIVE_MAXIMUM: _U16, TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16, MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE, USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_SUB_AVAILABLE: _BYTE, SUB_ID_AVAILABLE: _BYTE, SHARED_SUB_AVAILABLE: _BYTE,
}

# Reason codes used by the tests (MQTT 5)
RC_SUCCESS = 0x00
RC_DISCONNECT_WITH_WILL = 0x04
RC_NO_MATCHING_SUBSCRIBERS = 0x10
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84
RC_CLIENT_ID_NOT_VALID = 0x85
RC_BAD_AUTH_METHOD = 0x8C
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_SHARED_SUB_NOT_SUPPORTED = 0x9E


class ConnectionClosed(Exception):
    """The broker closed the connection (EOF or reset)."""


class Timeout(AssertionError):
    """No (complete) packet arrived before the deadline."""


# ---------------------------------------------------------------- encoding


def varint(n):
    if n < 0 or n > 268435455:
        raise ValueError("varint out of range: %d" % n)
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def utf8(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return u16(len(b)) + b


def binary(b):
    b = b.encode() if isinstance(b, str) else bytes(b)
    return u16(len(b)) + b


def encode_properties(props):
    """props: None, a dict {id: value} or a list of (id, value) pairs.

    In a dict, USER_PROPERTY takes a list of (key, value) pairs and SUBSCRIPTION_ID may take a
    list of ints; both expand to repeated properties in the given order.
    """
    if not props:
        return varint(0)
    pairs = []
    items = props.items() if isinstance(props, dict) else props
    for pid, value in items:
        if isinstance(props, dict) and pid in (USER_PROPERTY, SUBSCRIPTION_ID) and isinstance(value, list):
            pairs.extend((pid, v) for v in value)
        else:
            pairs.append((pid, value))
    out = bytearray()
    for pid, value in pairs:
        out += varint(pid)
        t = PROPERTY_TYPES[pid]
        if t == _BYTE:
            out.append(value)
        elif t == _U16:
            out += u16(value)
        elif t == _U32:
            out += u32(value)
        elif t == _VARINT:
            out += varint(value)
        elif t == _STR:
            out += utf8(value)
        elif t == _BIN:
            out += binary(value)
        else:
            out += utf8(value[0]) + utf8(value[1])
    return varint(len(out)) + bytes(out)


def packet(ptype, flags, body):
    body = bytes(body)
    return bytes([(ptype << 4) | flags]) + varint(len(body)) + body


class Will:
    def __init__(self, topic, payload=b"", qos=0, retain=False, props=None):
        self.topic = topic
        self.payload = payload.encode() if isinstance(payload, str) else payload
        self.qos = qos
        self.retain = retain
        self.props = props


def build_connect(version, client_id="", clean=True, keepalive=60, props=None, will=None,
                  username=None, password=None, proto_name=None, level=None, extra_flags=0):
    if proto_name is None:
        proto_name = "MQIsdp" if version == 3 else "MQTT"
    if level is None:
        level = version
    flags = extra_flags
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = utf8(proto_name) + bytes([level, flags]) + u16(keepalive)
    if version == 5:
        body += encode_properties(props)
    body += utf8(client_id)
    if will is not None:
        if version == 5:
            body += encode_properties(will.props)
        body += utf8(will.topic) + binary(will.payload)
    if username is not None:
        body += utf8(username)
    if password is not None:
        body += binary(password)
    return packet(CONNECT, 0, body)


def build_publish(version, topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
                  props=None):
    payload = payload.encode() if isinstance(payload, str) else bytes(payload)
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = utf8(topic)
    if qos > 0:
        body += u16(pid)
    if version == 5:
        body += encode_properties(props)
    return packet(PUBLISH, flags, body + payload)


def build_ack(version, ptype, pid, reason=None, props=None):
    """PUBACK / PUBREC / PUBREL / PUBCOMP."""
    flags = 0x02 if ptype == PUBREL else 0
    body = u16(pid)
    if version == 5 and (reason not in (None, 0) or props):
        body += bytes([reason or 0])
        if props:
            body += encode_properties(props)
    return packet(ptype, flags, body)


def sub_options(qos=0, no_local=False, retain_as_published=False, retain_handling=0):
    return qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0) | (retain_handling << 4)


def build_subscribe(version, pid, topics, props=None):
    """topics: list of (filter, options_byte). For v3/v4 the options byte is the QoS."""
    body = u16(pid)
    if version == 5:
        body += encode_properties(props)
    for topic, opts in topics:
        body += utf8(topic) + bytes([opts])
    return packet(SUBSCRIBE, 0x02, body)


def build_unsubscribe(version, pid, topics, props=None):
    body = u16(pid)
    if version == 5:
        body += encode_properties(props)
    for topic in topics:
        body += utf8(topic)
    return packet(UNSUBSCRIBE, 0x02, body)


def build_disconnect(version, reason=0, props=None):
    if version < 5 or (reason == 0 and not props):
        return packet(DISCONNECT, 0, b"")
    body = bytes([reason])
    if props:
        body += encode_properties(props)
    return packet(DISCONNECT, 0, body)


def build_auth(reason=0, props=None):
    return packet(AUTH, 0, bytes([reason]) + encode_properties(props))


PINGREQ_BYTES = packet(PINGREQ, 0, b"")


# ---------------------------------------------------------------- decoding


class Props:
    """Decoded properties: ordered (id, value) pairs."""

    def __init__(self, pairs=()):
        self.pairs = list(pairs)

    def get(self, pid, default=None):
        for k, v in self.pairs:
            if k == pid:
                return v
        return default

    def all(self, pid):
        return [v for k, v in self.pairs if k == pid]

    def __contains__(self, pid):
        return any(k == pid for k, _ in self.pairs)

    def __getitem__(self, pid):
        for k, v in self.pairs:
            if k == pid:
                return v
        raise KeyError("property 0x%02X not present in %r" % (pid, self))

    def __repr__(self):
        return "Props(%s)" % ", ".join("0x%02X=%r" % (k, v) for k, v in self.pairs)


class Reader:
    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("packet truncated")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def byte(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack("!H", self.take(2))[0]

    def u32(self):
        return struct.unpack("!I", self.take(4))[0]

    def varint(self):
        mult, value = 1, 0
        for _ in range(4):
            b = self.byte()
            value += (b & 0x7F) * mult
            if not b & 0x80:
                return value
            mult *= 128
        raise ValueError("malformed variable byte integer")

    def binary(self):
        return self.take(self.u16())

    def utf8(self):
        return self.binary().decode("utf-8")

    def properties(self):
        n = self.varint()
        r = Reader(self.take(n))
        pairs = []
        while r.left():
            pid = r.varint()
            t = PROPERTY_TYPES.get(pid)
            if t is None:
                raise ValueError("unknown property id 0x%02X" % pid)
            if t == _BYTE:
                v = r.byte()
            elif t == _U16:
                v = r.u16()
            elif t == _U32:
                v = r.u32()
            elif t == _VARINT:
                v = r.varint()
            elif t == _STR:
                v = r.utf8()
            elif t == _BIN:
                v = r.binary()
            else:
                v = (r.utf8(), r.utf8())
            pairs.append((pid, v))
        return Props(pairs)


class Packet:
    """A parsed packet from the broker. Fields present depend on the type."""

    def __init__(self, ptype, flags, body, wire_size):
        self.type = ptype
        self.flags = flags
        self.body = body
        self.wire_size = wire_size
        self.props = Props()
        self.reason = 0
        self.pid = None

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, "TYPE%d" % self.type)

    def __repr__(self):
        fields = {k: v for k, v in self.__dict__.items()
                  if k not in ("type", "flags", "body", "wire_size") and v not in (None, [])}
        if self.type == PUBLISH and len(self.payload) > 64:
            fields["payload"] = self.payload[:64] + b"..."
        return "<%s flags=0x%X %s>" % (self.name, self.flags, fields)


def parse_packet(version, first, body, wire_size):
    ptype, flags = first >> 4, first & 0x0F
    p = Packet(ptype, flags, body, wire_size)
    r = Reader(body)
    v5 = version == 5
    if ptype == CONNACK:
        p.session_present = bool(r.byte() & 0x01)
        p.reason = r.byte()
        if v5 and r.left():
            p.props = r.properties()
    elif ptype == PUBLISH:
        p.dup = bool(flags & 0x08)
        p.qos = (flags >> 1) & 0x03
        p.retain = bool(flags & 0x01)
        p.topic = r.utf8()
        if p.qos:
            p.pid = r.u16()
        if v5:
            p.props = r.properties()
        p.payload = r.take(r.left())
    elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
        p.pid = r.u16()
        if r.left():
            p.reason = r.byte()
        if v5 and r.left():
            p.props = r.properties()
    elif ptype in (SUBACK, UNSUBACK):
        p.pid = r.u16()
        if v5:
            p.props = r.properties()
        p.codes = list(r.take(r.left()))
    elif ptype in (DISCONNECT, AUTH):
        if r.left():
            p.reason = r.byte()
        if r.left():
            p.props = r.properties()
    return p


# ---------------------------------------------------------------- client


class RawClient:
    def __init__(self, port, version=5, host="127.0.0.1", timeout=5.0, rcvbuf=None, sock=None):
        """`sock`: a connected socket to use instead (e.g. one wrapped in TLS); port is then unused."""
        self.version = version
        self.default_timeout = timeout
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
        self.sock = sock
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.backlog = collections.deque()
        self.closed = False
        self.next_pid = 1
        self.client_id = None

    # -- raw I/O
    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def abort(self):
        """Close abruptly with a TCP reset (no DISCONNECT, no FIN handshake)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def _try_parse(self):
        """Return a Packet if a complete one is buffered, else None."""
        if len(self.buf) < 2:
            return None
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                raise AssertionError("broker sent a malformed remaining length")
        if len(self.buf) < i + length:
            return None
        first = self.buf[0]
        body = bytes(self.buf[i:i + length])
        del self.buf[:i + length]
        return parse_packet(self.version, first, body, i + length)

    def recv(self, timeout=None):
        """The next packet (from the backlog first). Raises Timeout or ConnectionClosed."""
        if self.backlog:
            return self.backlog.popleft()
        timeout = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            p = self._try_parse()
            if p is not None:
                return p
            if self.closed:
                raise ConnectionClosed("connection already closed")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("no packet within %.1fs" % timeout)
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Timeout("no packet within %.1fs" % timeout)
            except (ConnectionResetError, BrokenPipeError, OSError) as e:
                self.close()
                raise ConnectionClosed(str(e))
            if not data:
                self.close()
                raise ConnectionClosed("EOF")
            self.buf += data

    def expect(self, ptype, timeout=None, skip=()):
        """Read until a packet of type ptype; packet types in skip are dropped, anything else fails."""
        timeout = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            p = self.recv(max(0.0, deadline - time.monotonic()))
            if p.type == ptype:
                return p
            if p.type in skip:
                continue
            raise AssertionError("expected %s, got %r" % (TYPE_NAMES[ptype], p))

    def expect_nothing(self, seconds):
        """Assert no packet arrives for `seconds` (an observation window for absence checks)."""
        try:
            p = self.recv(seconds)
        except Timeout:
            return
        raise AssertionError("expected no packet, got %r" % p)

    def wait_closed(self, timeout=5.0):
        """Wait until the broker closes the connection; return the packets it sent before."""
        got = list(self.backlog)
        self.backlog.clear()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("broker did not close the connection within %.1fs "
                                     "(received %r)" % (timeout, got))
            try:
                got.append(self.recv(left))
            except ConnectionClosed:
                return got
            except Timeout:
                pass

    def is_open(self):
        return not self.closed

    # -- helpers
    def alloc_pid(self):
        pid = self.next_pid
        self.next_pid = self.next_pid % 65535 + 1
        return pid

    def send_connect(self, client_id="", **kw):
        self.client_id = client_id
        self.send(build_connect(self.version, client_id, **kw))

    def connect(self, client_id="", timeout=None, **kw):
        """Send CONNECT and return the CONNACK packet."""
        self.send_connect(client_id, **kw)
        return self.expect(CONNACK, timeout)

    def publish(self, topic, payload=b"", qos=0, retain=False, dup=False, pid=None, props=None):
        """Send a PUBLISH; return its packet id (None for QoS 0)."""
        if qos and pid is None:
            pid = self.alloc_pid()
        self.send(build_publish(self.version, topic, payload, qos, retain, dup, pid, props))
        return pid

    def publish_flow(self, topic, payload=b"", qos=0, retain=False, props=None, timeout=None):
        """Publish and complete the QoS flow; return the final ack (None for QoS 0)."""
        pid = self.publish(topic, payload, qos, retain, props=props)
        if qos == 0:
            return None
        if qos == 1:
            ack = self.expect_ack(PUBACK, pid, timeout)
            return ack
        rec = self.expect_ack(PUBREC, pid, timeout)
        if rec.reason >= 0x80:
            return rec
        self.send(build_ack(self.version, PUBREL, pid))
        return self.expect_ack(PUBCOMP, pid, timeout)

    def expect_ack(self, ptype, pid, timeout=None):
        """Wait for an ack of type ptype for pid; PUBLISHes arriving meanwhile are kept."""
        timeout = self.default_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        kept = []
        try:
            while True:
                p = self._recv_fresh(max(0.0, deadline - time.monotonic()))
                if p.type == ptype and p.pid == pid:
                    return p
                if p.type == PUBLISH:
                    kept.append(p)
                    continue
                raise AssertionError("expected %s for pid %d, got %r" % (TYPE_NAMES[ptype], pid, p))
        finally:
            self.backlog.extend(kept)

    def _recv_fresh(self, timeout):
        """Like recv but ignoring the backlog (used while collecting acks)."""
        saved = self.backlog
        self.backlog = collections.deque()
        try:
            return self.recv(timeout)
        finally:
            self.backlog = saved

    def subscribe(self, topics, props=None, timeout=None):
        """topics: list of (filter, options) or a single filter string (QoS 0). Returns SUBACK."""
        if isinstance(topics, str):
            topics = [(topics, 0)]
        pid = self.alloc_pid()
        self.send(build_subscribe(self.version, pid, topics, props))
        # retained messages may arrive right behind the SUBACK; PUBLISHes before it are kept
        return self.expect_ack(SUBACK, pid, timeout)

    def unsubscribe(self, topics, props=None, timeout=None):
        if isinstance(topics, str):
            topics = [topics]
        pid = self.alloc_pid()
        self.send(build_unsubscribe(self.version, pid, topics, props))
        return self.expect_ack(UNSUBACK, pid, timeout)

    def ack(self, p):
        """Acknowledge a received PUBLISH (QoS 1: PUBACK; QoS 2: PUBREC, PUBREL, PUBCOMP)."""
        if p.qos == 1:
            self.send(build_ack(self.version, PUBACK, p.pid))
        elif p.qos == 2:
            self.send(build_ack(self.version, PUBREC, p.pid))
            self.expect_ack(PUBREL, p.pid)
            self.send(build_ack(self.version, PUBCOMP, p.pid))

    def recv_publish(self, timeout=None, ack=True):
        p = self.expect(PUBLISH, timeout)
        if ack:
            self.ack(p)
        return p

    def ping(self, timeout=None):
        self.send(PINGREQ_BYTES)
        return self.expect(PINGRESP, timeout)

    def disconnect(self, reason=0, props=None, timeout=5.0):
        """Send DISCONNECT and wait until the broker closes the socket.

        The broker detaches the session before it closes, so once this
        returns a publish is queued for the session (or dropped), never
        delivered to this connection while its DISCONNECT is on the way.
        """
        try:
            self.send(build_disconnect(self.version, reason, props))
            self.wait_closed(timeout)
        except (ConnectionClosed, OSError):
            pass
        self.close()
