"""Retained messages at scale: one wildcard subscribe that matches 100,000 retained messages
gets every one of them, paced by the subscriber, while the worker keeps serving others."""

import time

import pytest

from conftest import IS_MOSQUITTO
from mqtt_raw import *  # noqa: F401,F403

COUNT = 100_000


def fill(broker, count, prefix, qos=0):
    """Publish `count` retained messages prefix/<i>, pipelined in batches, and wait until the
    broker has processed them all (QoS 1: every PUBACK; QoS 0: a QoS 1 round trip after)."""
    pub = broker.connect(prefix + "-filler", version=4)
    for start in range(0, count, 500):
        n = min(500, count - start)
        pub.send(b"".join(build_publish(4, "%s/%d" % (prefix, i), b"v%d" % i, qos=qos, retain=True,
                                        pid=(i % 60000) + 1 if qos else None)
                          for i in range(start, start + n)))
        if qos:
            for _ in range(n):
                pub.expect(PUBACK)
    pub.publish_flow(prefix + "-done", b"", qos=1)
    pub.disconnect()


@pytest.mark.skipif(IS_MOSQUITTO, reason="flock's pacing; mosquitto sends them all too, but it is not under test")
@pytest.mark.broker(max_queued_messages=10)
def test_wildcard_subscribe_gets_100k_retained_messages_and_the_worker_stays_responsive(broker):
    fill(broker, COUNT, "big")
    # Another client, checked for responsiveness while the big delivery is under way. With
    # --workers 1 it shares the worker with the subscriber.
    other = broker.connect("other")
    sub = broker.client(5, rcvbuf=64 * 1024)  # a small window: the broker must pace, not buffer
    sub.connect("big-sub")
    sub.subscribe([("big/#", 0)])
    seen = set()
    slowest_ping = 0.0
    next_ping = 0
    while len(seen) < COUNT:
        p = sub.recv_publish(timeout=10)
        assert p.retain
        seen.add(p.topic)
        if len(seen) >= next_ping:
            start = time.monotonic()
            other.ping(timeout=5)
            slowest_ping = max(slowest_ping, time.monotonic() - start)
            next_ping += 10_000
    assert len(seen) == COUNT
    # Not a speed test: a stalled worker shows up as seconds, an busy one as milliseconds.
    assert slowest_ping < 1.0, "a PINGREQ waited %.2fs while retained messages were sent" % slowest_ping
    sub.expect_nothing(0.2)


def test_qos1_retained_messages_are_paced_by_the_clients_receive_maximum(broker):
    fill(broker, 2000, "paced", qos=1)
    sub = broker.client(5)
    sub.connect("paced-sub", props={RECEIVE_MAXIMUM: 5})
    sub.subscribe([("paced/#", 1)])
    topics = set()
    for _ in range(3):
        window = [sub.expect(PUBLISH) for _ in range(5)]
        assert all(p.qos == 1 for p in window)
        sub.expect_nothing(0.3)  # five unacknowledged: the window is full
        for p in window:
            sub.ack(p)
            topics.add(p.topic)
    while len(topics) < 2000:
        topics.add(sub.recv_publish().topic)
    sub.expect_nothing(0.2)
