"""Persistent sessions: offline queueing, queue bound, session expiry, clean start."""

import time

import pytest

from conftest import drain_publishes, marker_sync, wait_until, persistent
from mqtt_raw import *  # noqa: F401,F403


def go_offline(broker, version, client_id, filters):
    c = broker.connect(client_id, version=version, **persistent(version))
    c.subscribe(filters)
    # Wait for the broker to close the socket: it detached the session
    # first, so a publish sent after this is queued, never delivered to
    # this connection while its DISCONNECT is still on the way.
    c.send(build_disconnect(version, 0, None))
    c.wait_closed()


def test_messages_queued_while_offline_delivered_on_reconnect(broker, version):
    go_offline(broker, version, "off", [("sess/q", 1), ("sess/q2", 2)])
    pub = broker.connect("off-p", version=version)
    for i in range(5):
        pub.publish_flow("sess/q", b"m%d" % i, qos=1)
    pub.publish_flow("sess/q2", b"two", qos=2)
    sub = broker.client(version)
    ack = sub.connect("off", **persistent(version))
    assert ack.session_present is True
    got = [sub.recv_publish() for _ in range(6)]
    assert [p.payload for p in got] == [b"m0", b"m1", b"m2", b"m3", b"m4", b"two"]
    assert [p.qos for p in got] == [1] * 5 + [2]
    marker_sync(sub, pub, "sess/q")


@pytest.mark.broker(queue_qos0_messages=False)
def test_qos0_not_queued_for_offline_session_when_disabled(broker, version):
    go_offline(broker, version, "off0", [("sess/z", 1)])
    pub = broker.connect("off0-p", version=version)
    pub.publish("sess/z", b"qos0")
    pub.publish_flow("sess/z", b"qos1", qos=1)
    sub = broker.client(version)
    sub.connect("off0", **persistent(version))
    assert sub.recv_publish().payload == b"qos1"
    marker_sync(sub, pub, "sess/z")


@pytest.mark.broker(queue_qos0_messages=True)
def test_qos0_queued_when_enabled(broker, version):
    go_offline(broker, version, "offq0", [("sess/z0", 1)])
    pub = broker.connect("offq0-p", version=version)
    pub.publish("sess/z0", b"qos0")
    pub.publish_flow("sess/z0", b"qos1", qos=1)
    sub = broker.client(version)
    sub.connect("offq0", **persistent(version))
    got = [sub.recv_publish() for _ in range(2)]
    assert [(p.payload, p.qos) for p in got] == [(b"qos0", 0), (b"qos1", 1)]


@pytest.mark.broker(max_queued_messages=3)
def test_offline_queue_is_bounded(broker, version):
    go_offline(broker, version, "bound", [("sess/b", 1)])
    pub = broker.connect("bound-p", version=version)
    for i in range(10):
        ack = pub.publish_flow("sess/b", b"%d" % i, qos=1)
        assert ack.type == PUBACK  # the publisher is never refused for a full subscriber queue
    sub = broker.client(version)
    assert sub.connect("bound", **persistent(version)).session_present is True
    got = drain_publishes(sub, quiet=1.0)
    assert 1 <= len(got) <= 3, "max_queued_messages=3 but %d delivered" % len(got)
    payloads = [int(p.payload) for p in got]
    assert payloads == sorted(payloads)


def test_v5_session_expires_after_interval(broker):
    c = broker.connect("exp", props={SESSION_EXPIRY: 1})
    c.subscribe([("sess/exp", 1)])
    c.disconnect()
    pub = broker.connect("exp-p")
    pub.publish_flow("sess/exp", b"to nobody", qos=1)
    wait_until(time.monotonic() + 2.5)  # past the 1 s expiry
    c = broker.client(5)
    ack = c.connect("exp", clean=False, props={SESSION_EXPIRY: 60})
    assert ack.session_present is False
    c.subscribe([("sess/exp", 1)])
    marker_sync(c, pub, "sess/exp")


def test_v5_session_kept_before_expiry(broker):
    c = broker.connect("kept", props={SESSION_EXPIRY: 30})
    c.subscribe([("sess/kept", 1)])
    c.disconnect()
    pub = broker.connect("kept-p")
    pub.publish_flow("sess/kept", b"held", qos=1)
    c = broker.client(5)
    assert c.connect("kept", clean=False, props={SESSION_EXPIRY: 30}).session_present is True
    assert c.recv_publish().payload == b"held"


def test_v5_disconnect_lowers_session_expiry(broker):
    c = broker.connect("lower", props={SESSION_EXPIRY: 300})
    c.subscribe([("sess/lower", 1)])
    c.send(build_disconnect(5, 0, {SESSION_EXPIRY: 0}))
    assert c.wait_closed() == []
    c = broker.client(5)
    assert c.connect("lower", clean=False, props={SESSION_EXPIRY: 300}).session_present is False


def test_v5_disconnect_raising_expiry_from_zero_is_protocol_error(broker):
    c = broker.connect("raise", props={SESSION_EXPIRY: 0})
    c.subscribe([("sess/raise", 1)])
    c.send(build_disconnect(5, 0, {SESSION_EXPIRY: 60}))
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == DISCONNECT and got[0].reason == RC_PROTOCOL_ERROR, got
    c = broker.client(5)
    assert c.connect("raise", clean=False, props={SESSION_EXPIRY: 60}).session_present is False


def test_v5_clean_start_discards_session(broker):
    c = broker.connect("cs", props={SESSION_EXPIRY: 300})
    c.subscribe([("sess/cs", 1)])
    c.disconnect()
    pub = broker.connect("cs-p")
    pub.publish_flow("sess/cs", b"queued", qos=1)
    c = broker.client(5)
    ack = c.connect("cs", clean=True, props={SESSION_EXPIRY: 300})
    assert ack.session_present is False
    c.subscribe([("sess/other", 1)])
    # neither the queued message nor the old subscription survive
    pub.publish_flow("sess/cs", b"after", qos=1)
    marker_sync(c, pub, "sess/other")


def test_v311_clean_session_discards_session(broker):
    c = broker.connect("cs4", version=4, clean=False)
    c.subscribe([("sess/cs4", 1)])
    c.disconnect()
    pub = broker.connect("cs4-p", version=4)
    pub.publish_flow("sess/cs4", b"queued", qos=1)
    c = broker.client(4)
    assert c.connect("cs4", clean=True).session_present is False
    c.disconnect()
    c = broker.client(4)
    assert c.connect("cs4", clean=False).session_present is False
    c.subscribe([("sess/other4", 1)])
    pub.publish_flow("sess/cs4", b"after", qos=1)
    marker_sync(c, pub, "sess/other4")


def test_subscriptions_restored_with_session(broker, version):
    go_offline(broker, version, "restore", [("sess/r/+", 1)])
    sub = broker.client(version)
    assert sub.connect("restore", **persistent(version)).session_present is True
    pub = broker.connect("restore-p", version=version)
    pub.publish_flow("sess/r/x", b"live", qos=1)
    assert sub.recv_publish().payload == b"live"


def test_unsubscribed_filter_not_queued(broker, version):
    c = broker.connect("unsq", version=version, **persistent(version))
    c.subscribe([("sess/u", 1), ("sess/keep", 1)])
    c.unsubscribe("sess/u")
    c.disconnect()
    pub = broker.connect("unsq-p", version=version)
    pub.publish_flow("sess/u", b"no", qos=1)
    c = broker.client(version)
    c.connect("unsq", **persistent(version))
    marker_sync(c, pub, "sess/keep")
