"""Flow control: Receive Maximum both ways, Maximum Packet Size both ways, slow consumers."""

import socket
import time

import pytest

from conftest import marker_sync, read_rss_kb
from mqtt_raw import *  # noqa: F401,F403


# ---------------------------------------------------------------- Receive Maximum


@pytest.mark.mosquitto_wrong("answers PUBREC 0x97 instead of DISCONNECT 0x93")
@pytest.mark.broker(receive_maximum=3)
def test_client_exceeding_broker_receive_maximum_gets_0x93(broker):
    c = broker.connect("rmx")
    assert c.connack.props.get(RECEIVE_MAXIMUM) == 3
    for pid in range(1, 5):  # four unacknowledged QoS 2 publishes, no PUBREL
        c.publish("rm/t", b"x", qos=2, pid=pid)
    got = c.wait_closed()
    assert [p.type for p in got] == [PUBREC] * 3 + [DISCONNECT], got
    assert got[-1].reason == RC_RECEIVE_MAXIMUM_EXCEEDED
    broker.check_serving(5)


@pytest.mark.broker(receive_maximum=3)
def test_client_within_broker_receive_maximum_is_fine(broker):
    c = broker.connect("rmok")
    for pid in range(1, 4):
        c.publish("rm/t", b"x", qos=2, pid=pid)
    for pid in range(1, 4):
        assert c.expect(PUBREC).pid == pid
    for pid in range(1, 4):
        c.send(build_ack(5, PUBREL, pid))
        assert c.expect(PUBCOMP).pid == pid
    # window free again
    for pid in range(4, 7):
        c.publish("rm/t", b"x", qos=2, pid=pid)
        assert c.expect(PUBREC).pid == pid
    assert c.ping().type == PINGRESP


def _window_client(broker, qos, n):
    sub = broker.client(5)
    sub.connect("crm", props={RECEIVE_MAXIMUM: 2})
    sub.subscribe([("crm/t", qos)])
    pub = broker.connect("crm-p")
    for i in range(n):
        pub.publish_flow("crm/t", b"%d" % i, qos=qos)
    return sub


@pytest.mark.parametrize("qos", [1, 2])
def test_broker_stops_at_client_receive_maximum(broker, qos):
    sub = _window_client(broker, qos, 4)
    first = [sub.expect(PUBLISH), sub.expect(PUBLISH)]
    sub.expect_nothing(1.0)  # a third one would exceed the window of 2
    for p in first:
        sub.ack(p)
    rest = [sub.recv_publish(), sub.recv_publish()]
    assert [p.payload for p in first + rest] == [b"0", b"1", b"2", b"3"]


@pytest.mark.mosquitto_wrong("sends two more after a single ack, exceeding the window")
@pytest.mark.parametrize("qos", [1, 2])
def test_broker_never_has_more_than_client_receive_maximum_in_flight(broker, qos):
    sub = _window_client(broker, qos, 6)
    inflight = [sub.expect(PUBLISH), sub.expect(PUBLISH)]
    sub.expect_nothing(1.0)
    got = []
    while inflight:
        p = inflight.pop(0)
        got.append(p.payload)
        sub.ack(p)  # frees exactly one slot
        if len(got) + len(inflight) < 6:
            inflight.append(sub.expect(PUBLISH))
            if len(got) + len(inflight) < 6:
                sub.expect_nothing(0.3)  # the window is full again
    assert got == [b"%d" % i for i in range(6)]


# ---------------------------------------------------------------- Maximum Packet Size


def test_broker_never_exceeds_client_maximum_packet_size(broker):
    sub = broker.client(5)
    sub.connect("mps", props={MAXIMUM_PACKET_SIZE: 128})
    sub.subscribe([("mps/t", 1)])
    pub = broker.connect("mps-p")
    pub.publish_flow("mps/t", b"x" * 200, qos=1)
    pub.publish_flow("mps/t", b"y" * 100, qos=1, props={USER_PROPERTY: [("k", "v" * 40)]})
    pub.publish_flow("mps/t", b"small", qos=1)
    p = sub.recv_publish()
    assert p.payload == b"small", "oversized messages must be skipped: %r" % p
    assert p.wire_size <= 128
    marker_sync(sub, pub, "mps/t")


def test_maximum_packet_size_applies_to_retained_on_subscribe(broker):
    pub = broker.connect("mpsr-p")
    pub.publish_flow("mpsr/big", b"x" * 500, qos=1, retain=True)
    pub.publish_flow("mpsr/small", b"s", qos=1, retain=True)
    sub = broker.client(5)
    sub.connect("mpsr", props={MAXIMUM_PACKET_SIZE: 100})
    sub.subscribe([("mpsr/#", 1)])
    p = sub.recv_publish()
    assert p.topic == "mpsr/small"
    marker_sync(sub, pub, "mpsr/m")


@pytest.mark.broker(max_packet_size=1024)
def test_client_packet_above_broker_limit_is_0x95(broker):
    c = broker.connect("big5")
    assert c.connack.props.get(MAXIMUM_PACKET_SIZE) == 1024
    c.publish("big/t", b"x" * 3000, qos=1)
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == DISCONNECT, got
    assert got[0].reason == RC_PACKET_TOO_LARGE
    broker.check_serving(5)


@pytest.mark.broker(max_packet_size=1024)
def test_v311_packet_above_broker_limit_closes(broker):
    c = broker.connect("big4", version=4)
    c.publish("big/t", b"x" * 3000, qos=1)
    assert c.wait_closed() == []
    broker.check_serving(4)


@pytest.mark.broker(max_packet_size=1024)
def test_packet_at_broker_limit_is_accepted(broker):
    sub = broker.connect("lim-s")
    sub.subscribe([("lim/t", 1)])
    c = broker.connect("lim")
    frame = build_publish(5, "lim/t", b"", qos=1, pid=1)
    payload = b"z" * (1024 - len(frame) - 1)  # remaining length stays 2 bytes
    c.publish("lim/t", payload, qos=1, pid=1)
    assert c.expect(PUBACK).pid == 1
    assert sub.recv_publish().payload == payload


# ---------------------------------------------------------------- slow consumers


def test_flood_to_non_reading_subscriber_keeps_broker_responsive_and_bounded(broker):
    slow = broker.client(4, rcvbuf=4096)
    slow.connect("slow")
    slow.subscribe([("flood/t", 0)])
    # from here on `slow` never reads

    pub = broker.client(4)
    pub.connect("flooder")
    payload = b"f" * 32 * 1024  # 10,000 x 32 KiB = 320 MiB offered
    frame = build_publish(4, "flood/t", payload)
    pub.sock.settimeout(60)
    start = time.monotonic()
    for i in range(10000):
        pub.send(frame)
        if i % 1000 == 999:
            assert broker.alive()
            assert read_rss_kb(broker.pid) < 200 * 1024, "broker RSS grew past 200 MB"
    assert pub.ping(timeout=30).type == PINGRESP
    elapsed = time.monotonic() - start
    assert elapsed < 60, "the publisher was throttled by a slow consumer"

    # everyone else is still served promptly
    other = broker.connect("bystander", version=4)
    other.subscribe([("flood/other", 1)])
    other.publish_flow("flood/other", b"hi", qos=1, timeout=5)
    assert other.recv_publish(timeout=5).payload == b"hi"
    rss_mb = read_rss_kb(broker.pid) / 1024
    assert rss_mb < 200, "broker RSS %.0f MB after the flood" % rss_mb
    slow.abort()
    broker.check_serving()


@pytest.mark.broker(max_outbound_bytes=65536, max_packet_size=4096)
def test_publisher_that_never_reads_its_acks_is_slowed_not_buffered(broker):
    # A client that floods QoS 1 and never reads its PUBACKs must not grow the
    # broker's memory: once its unread output passes the limit the broker stops
    # reading it, and TCP pushes back on the publisher.
    pub = broker.client(5, rcvbuf=4096)
    pub.connect("no-reader")
    batch = b"".join(build_publish(5, "acks/t", b"x", qos=1, pid=(i % 65535) + 1) for i in range(1000))
    pub.sock.settimeout(2.0)
    blocked = False
    deadline = time.monotonic() + 60
    sent = 0
    while time.monotonic() < deadline and sent < 2_000_000:
        try:
            pub.sock.sendall(batch)
        except (TimeoutError, socket.timeout):
            blocked = True
            break
        sent += 1000
    assert blocked, "the broker kept reading %d publishes whose acks were never read" % sent
    assert broker.alive()
    assert read_rss_kb(broker.pid) < 200 * 1024
    other = broker.connect("bystander2", version=4)
    other.subscribe([("acks/other", 1)])
    other.publish_flow("acks/other", b"hi", qos=1, timeout=5)
    assert other.recv_publish(timeout=5).payload == b"hi"
    pub.abort()
    broker.check_serving()
