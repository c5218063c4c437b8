"""Malformed and illegal input from raw bytes.

Each case: the broker answers with the reason code the spec gives (if it answers at all where
the spec makes that optional), closes the connection, and still serves another client."""

import pytest

from mqtt_raw import *  # noqa: F401,F403


def assert_rejected(c, version, allowed, require_disconnect=False):
    """The broker closes c; a v5 DISCONNECT, if sent, carries one of `allowed`."""
    got = c.wait_closed()
    assert all(p.type == DISCONNECT for p in got), "only a DISCONNECT may precede the close: %r" % got
    if version == 5:
        for p in got:
            assert p.reason in allowed, "DISCONNECT reason 0x%02X not in %r" % (
                p.reason, ["0x%02X" % a for a in allowed])
        if require_disconnect:
            assert got, "a DISCONNECT with %r is required" % allowed
    else:
        assert got == [], "v3.1.1 servers never send DISCONNECT: %r" % got


MALFORMED = (RC_MALFORMED,)
PROTOCOL = (RC_PROTOCOL_ERROR,)
EITHER = (RC_MALFORMED, RC_PROTOCOL_ERROR)


def test_remaining_length_of_five_bytes(broker, version):
    c = broker.connect("m-rl", version=version)
    c.send(bytes([0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]) + b"\x00" * 16)
    assert_rejected(c, version, MALFORMED)
    broker.check_serving(version)


def test_remaining_length_of_five_bytes_before_connect(broker):
    c = broker.client(5)
    c.send(bytes([0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]))
    got = c.wait_closed()
    assert all(p.type != CONNACK or p.reason >= 0x80 for p in got), got
    broker.check_serving()


@pytest.mark.parametrize("first,body", [
    (0x80, b"\x00\x01\x00\x01a\x00"),   # SUBSCRIBE with flags 0000 instead of 0010
    (0xA0, b"\x00\x01\x00\x01a"),       # UNSUBSCRIBE with flags 0000
    (0x60, b"\x00\x01"),                # PUBREL with flags 0000
    pytest.param(0xC1, b"",             # PINGREQ with flags 0001
                 marks=pytest.mark.mosquitto_wrong("ignores PINGREQ flags")),
    (0xE2, b""),                        # DISCONNECT with flags 0010
], ids=["subscribe", "unsubscribe", "pubrel", "pingreq", "disconnect"])
def test_bad_fixed_header_flags(broker, version, first, body):
    c = broker.connect("m-flags", version=version)
    if version == 5 and first >> 4 in (SUBSCRIBE, UNSUBSCRIBE):
        body = body[:2] + b"\x00" + body[2:]  # empty properties
    c.send(bytes([first, len(body)]) + body)
    assert_rejected(c, version, MALFORMED)
    broker.check_serving(version)


def test_reserved_connect_flag(broker, version):
    c = broker.client(version)
    c.send_connect("m-res", extra_flags=0x01)
    got = c.wait_closed()
    for p in got:
        assert p.type == CONNACK and p.reason != 0, got
        if version == 5:
            assert p.reason in EITHER
    broker.check_serving(version)


def test_will_qos_without_will_flag(broker, version):
    c = broker.client(version)
    c.send_connect("m-wq", extra_flags=0x08)  # will QoS 1, will flag 0
    got = c.wait_closed()
    assert all(p.type == CONNACK and p.reason != 0 for p in got), got
    broker.check_serving(version)


@pytest.mark.parametrize("name", ["MQTX", "mqtt", "MQ", "MQIsdpX"])
def test_wrong_protocol_name(broker, name):
    c = broker.client(4)
    c.send_connect("m-name", proto_name=name, level=4)
    got = c.wait_closed()
    assert all(p.type == CONNACK and p.reason != 0 for p in got), got
    broker.check_serving()


@pytest.mark.parametrize("pkt", [
    build_publish(4, "x", b"early"),
    build_subscribe(4, 1, [("x", 0)]),
    PINGREQ_BYTES,
    build_disconnect(4),
], ids=["publish", "subscribe", "pingreq", "disconnect"])
def test_packet_before_connect(broker, pkt):
    c = broker.client(4)
    c.send(pkt)
    assert c.wait_closed() == [], "nothing may be sent before a CONNECT"
    broker.check_serving()


def test_second_connect(broker, version):
    c = broker.connect("m-2nd", version=version)
    c.send_connect("m-2nd")
    assert_rejected(c, version, PROTOCOL)
    broker.check_serving(version)


@pytest.mark.parametrize("topic", [b"\xff\xfe", b"a/\xc0\x80", b"\xed\xa0\x80", b"a/\xe2\x82"],
                         ids=["ff-fe", "overlong-nul", "surrogate", "truncated"])
def test_invalid_utf8_in_publish_topic(broker, version, topic):
    c = broker.connect("m-utf", version=version)
    body = u16(len(topic)) + topic + (b"\x00" if version == 5 else b"") + b"payload"
    c.send(packet(PUBLISH, 0, body))
    assert_rejected(c, version, MALFORMED + (RC_TOPIC_NAME_INVALID,))
    broker.check_serving(version)


def test_invalid_utf8_in_subscribe_filter(broker, version):
    c = broker.connect("m-utfs", version=version)
    topic = b"a/\xff"
    body = u16(1) + (b"\x00" if version == 5 else b"") + u16(len(topic)) + topic + b"\x00"
    c.send(packet(SUBSCRIBE, 2, body))
    assert_rejected(c, version, MALFORMED)
    broker.check_serving(version)


def test_nul_character_in_topic(broker, version):
    c = broker.connect("m-nul", version=version)
    topic = b"a/\x00/b"
    body = u16(len(topic)) + topic + (b"\x00" if version == 5 else b"") + b"payload"
    c.send(packet(PUBLISH, 0, body))
    assert_rejected(c, version, MALFORMED + (RC_TOPIC_NAME_INVALID,))
    broker.check_serving(version)


def test_wildcard_in_publish_topic(broker, version):
    c = broker.connect("m-wild", version=version)
    c.publish("a/+/b", b"x")
    assert_rejected(c, version, EITHER + (RC_TOPIC_NAME_INVALID,))
    broker.check_serving(version)


@pytest.mark.parametrize("qos", [1, 2])
def test_packet_id_0_in_publish(broker, version, qos):
    c = broker.connect("m-pid0", version=version)
    c.publish("a/b", b"x", qos=qos, pid=0)
    assert_rejected(c, version, EITHER)
    broker.check_serving(version)


def test_packet_id_0_in_subscribe(broker, version):
    c = broker.connect("m-spid0", version=version)
    c.send(build_subscribe(version, 0, [("a/b", 0)]))
    assert_rejected(c, version, EITHER)
    broker.check_serving(version)


def test_subscribe_without_filters(broker, version):
    c = broker.connect("m-nofilt", version=version)
    c.send(build_subscribe(version, 1, []))
    assert_rejected(c, version, EITHER)
    broker.check_serving(version)


def test_subscribe_options_reserved_bits(broker, version):
    c = broker.connect("m-opts", version=version)
    c.send(build_subscribe(version, 1, [("a/b", 0xC0 | 1)]))
    assert_rejected(c, version, EITHER)
    broker.check_serving(version)


def test_subscribe_qos_3(broker, version):
    c = broker.connect("m-sq3", version=version)
    c.send(build_subscribe(version, 1, [("a/b", 3)]))
    assert_rejected(c, version, EITHER)
    broker.check_serving(version)


def test_publish_qos_3(broker, version):
    c = broker.connect("m-q3", version=version)
    body = utf8("a/b") + u16(1) + (b"\x00" if version == 5 else b"") + b"x"
    c.send(packet(PUBLISH, 0x06, body))
    assert_rejected(c, version, MALFORMED)
    broker.check_serving(version)


@pytest.mark.broker(max_packet_size=1024)
def test_oversized_packet(broker, version):
    c = broker.connect("m-big", version=version)
    c.publish("a/b", b"x" * 4000)
    assert_rejected(c, version, (RC_PACKET_TOO_LARGE,), require_disconnect=True)
    broker.check_serving(version)


@pytest.mark.broker(max_packet_size=1024)
def test_oversized_packet_header_only(broker, version):
    # the broker must refuse on the announced length, without waiting for the body
    c = broker.connect("m-bighdr", version=version)
    c.send(bytes([0x30]) + varint(10 * 1024 * 1024) + utf8("a/b"))
    assert_rejected(c, version, (RC_PACKET_TOO_LARGE,), require_disconnect=True)
    broker.check_serving(version)


@pytest.mark.mosquitto_wrong("answers alias 0 with 0x81 instead of 0x94")
def test_topic_alias_0(broker):
    c = broker.connect("m-ta0")
    c.publish("a/b", b"x", props={TOPIC_ALIAS: 0})
    assert_rejected(c, 5, (RC_TOPIC_ALIAS_INVALID,), require_disconnect=True)
    broker.check_serving(5)


@pytest.mark.broker(topic_alias_maximum=4)
def test_topic_alias_out_of_range(broker):
    c = broker.connect("m-tar")
    c.publish("a/b", b"x", props={TOPIC_ALIAS: 5})
    assert_rejected(c, 5, (RC_TOPIC_ALIAS_INVALID,), require_disconnect=True)
    broker.check_serving(5)


def test_duplicate_property(broker):
    c = broker.connect("m-dupprop")
    c.publish("a/b", b"x", props=[(MESSAGE_EXPIRY, 10), (MESSAGE_EXPIRY, 20)])
    assert_rejected(c, 5, EITHER)
    broker.check_serving(5)


def test_unknown_packet_type_0(broker, version):
    c = broker.connect("m-type0", version=version)
    c.send(b"\x00\x00")
    assert_rejected(c, version, EITHER)
    broker.check_serving(version)


def test_truncated_string_in_publish(broker, version):
    c = broker.connect("m-trunc", version=version)
    c.send(packet(PUBLISH, 0, u16(50) + b"a/b"))  # topic length larger than the packet
    assert_rejected(c, version, MALFORMED)
    broker.check_serving(version)


def test_garbage_connect(broker):
    c = broker.client(5)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    got = c.wait_closed()
    assert all(p.type == CONNACK and p.reason != 0 for p in got), got
    broker.check_serving()
