"""Durable state: what survives a crash (SIGKILL) or a restart of flockd on the same data
directory, and what durability "memory" forgets."""

import time

import pytest

from conftest import IS_MOSQUITTO, marker_sync, persistent, wait_for, wait_until
from mqtt_raw import *  # noqa: F401,F403

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="flock's store (mosquitto runs without persistence here)")


def resume(broker, client_id, version, **kw):
    """Reconnect a persistent session; assert it was still there."""
    c = broker.client(version)
    ack = c.connect(client_id, **persistent(version, **kw))
    assert ack.reason == 0, "CONNACK refused: %r" % ack
    assert ack.session_present, "the session did not survive the restart"
    return c


def test_queued_messages_survive_a_crash(broker, version):
    sub = broker.connect("dq-sub", version=version, **persistent(version))
    sub.subscribe([("dq/#", 1)])
    sub.disconnect()
    pub = broker.connect("dq-pub", version=version)
    for i in range(5):
        assert pub.publish_flow("dq/%d" % i, b"m%d" % i, qos=1) is not None  # PUBACKed: must survive
    broker.restart(kill=True)
    sub = resume(broker, "dq-sub", version)
    got = [sub.recv_publish() for _ in range(5)]
    assert [(p.topic, p.payload) for p in got] == [("dq/%d" % i, b"m%d" % i) for i in range(5)]
    pub = broker.connect("dq-pub2", version=version)
    marker_sync(sub, pub, "dq/marker")  # nothing more: acked messages are gone from the store


def test_subscriptions_of_an_online_session_survive_a_crash(broker):
    sub = broker.connect("ds-sub", **persistent(5))
    sub.subscribe([("ds/+", sub_options(qos=2, retain_as_published=True))], props={SUBSCRIPTION_ID: 7})
    broker.restart(kill=True)
    sub = resume(broker, "ds-sub", 5)
    pub = broker.connect("ds-pub")
    pub.publish_flow("ds/x", b"after", qos=2, retain=True)
    p = sub.recv_publish()
    assert (p.topic, p.payload, p.qos, p.retain) == ("ds/x", b"after", 2, True)
    assert p.props.all(SUBSCRIPTION_ID) == [7]


def test_unacked_qos1_is_resent_with_dup_and_the_same_id_after_a_crash(broker, version):
    sub = broker.connect("di-sub", version=version, **persistent(version))
    sub.subscribe([("di/t", 1)])
    pub = broker.connect("di-pub", version=version)
    pub.publish_flow("di/t", b"unacked", qos=1)
    first = sub.recv_publish(ack=False)
    sync_store(broker, version)  # QoS 1 sends do not wait for their in-flight record: let it land
    broker.restart(kill=True)
    sub = resume(broker, "di-sub", version)
    again = sub.expect(PUBLISH)
    assert (again.payload, again.pid, again.dup) == (b"unacked", first.pid, True)
    sub.ack(again)


def sync_store(broker, version):
    """Wait until everything the broker changed so far is on disk: the store commits its log in
    order, so the PUBACK of a message stored for a persistent session comes after all of it."""
    s = broker.connect("sync-sub-%d" % time.monotonic_ns(), version=version, **persistent(version))
    s.subscribe([("sync/store", 1)])
    broker.connect("sync-pub-%d" % time.monotonic_ns(), version=version).publish_flow("sync/store", b"", qos=1)


def test_qos2_pubrel_is_resent_after_a_crash(broker, version):
    sub = broker.connect("d2-sub", version=version, **persistent(version))
    sub.subscribe([("d2/t", 2)])
    pub = broker.connect("d2-pub", version=version)
    pub.publish_flow("d2/t", b"half", qos=2)
    p = sub.expect(PUBLISH)
    sub.send(build_ack(version, PUBREC, p.pid))
    assert sub.expect(PUBREL).pid == p.pid  # sent only once the pubcomp-pending state is durable
    broker.restart(kill=True)
    sub = resume(broker, "d2-sub", version)
    rel = sub.expect(PUBREL)
    assert rel.pid == p.pid, "expected the PUBREL again, not the message: %r" % rel
    sub.send(build_ack(version, PUBCOMP, p.pid))
    pub = broker.connect("d2-pub2", version=version)
    marker_sync(sub, pub, "d2/t")


def test_incoming_qos2_is_not_delivered_twice_across_a_crash(broker, version):
    sub = broker.connect("dx-sub", version=version, **persistent(version))
    sub.subscribe([("dx/t", 2)])
    pub = broker.connect("dx-pub", version=version, **persistent(version))
    pub.publish("dx/t", b"once", qos=2, pid=31)
    assert pub.expect(PUBREC).pid == 31
    assert sub.recv_publish().payload == b"once"
    broker.restart(kill=True)
    pub = resume(broker, "dx-pub", version)
    pub.publish("dx/t", b"once", qos=2, pid=31, dup=True)  # the publisher never saw PUBCOMP: resends
    assert pub.expect(PUBREC).pid == 31
    pub.send(build_ack(version, PUBREL, 31))
    assert pub.expect(PUBCOMP).pid == 31
    sub = resume(broker, "dx-sub", version)
    marker = broker.connect("dx-m", version=version)
    marker.publish_flow("dx/t", b"marker", qos=1)
    while True:  # the resend was not routed again: the next PUBLISH is the marker
        p = sub.recv()
        if p.type == PUBREL:  # our PUBCOMP may not have reached the disk before the kill
            sub.send(build_ack(version, PUBCOMP, p.pid))
            continue
        assert (p.type, p.payload) == (PUBLISH, b"marker"), "delivered again: %r" % p
        break


def test_retained_messages_survive_a_crash_and_clearing_them_too(broker):
    pub = broker.connect("dr-pub")
    props = {CONTENT_TYPE: "text/plain", USER_PROPERTY: [("k", "v1"), ("k", "v2")], MESSAGE_EXPIRY: 600}
    pub.publish_flow("dr/keep", b"kept", qos=1, retain=True, props=props)
    pub.publish_flow("dr/gone", b"soon cleared", qos=1, retain=True)
    pub.publish_flow("dr/gone", b"", qos=1, retain=True)
    pub.publish("dr/qos0", b"qos0 retained", qos=0, retain=True)
    # QoS 0 has no ack to wait for; the store's log is committed in order, so the PUBACK of
    # a later retained QoS 1 message says the QoS 0 one is on disk too.
    pub.publish_flow("dr/sync", b"sync", qos=1, retain=True)
    broker.restart(kill=True)
    sub = broker.connect("dr-sub")
    sub.subscribe([("dr/#", 1)])
    got = {p.topic: p for p in drain_all(sub, 3)}
    assert set(got) == {"dr/keep", "dr/qos0", "dr/sync"}
    keep = got["dr/keep"]
    assert keep.payload == b"kept" and keep.retain
    assert keep.props.get(CONTENT_TYPE) == "text/plain"
    assert keep.props.all(USER_PROPERTY) == [("k", "v1"), ("k", "v2")]
    assert 0 < keep.props.get(MESSAGE_EXPIRY) <= 600


def drain_all(client, n):
    return [client.recv_publish() for _ in range(n)]


def test_everything_survives_a_clean_restart(broker, version):
    sub = broker.connect("dt-sub", version=version, **persistent(version))
    sub.subscribe([("dt/t", 1)])
    sub.disconnect()
    pub = broker.connect("dt-pub", version=version)
    pub.publish_flow("dt/t", b"queued", qos=1)
    pub.publish_flow("dt/r", b"retained", qos=1, retain=True)
    broker.restart(kill=False)
    sub = resume(broker, "dt-sub", version)
    assert sub.recv_publish().payload == b"queued"
    sub.subscribe([("dt/r", 0)])
    assert sub.recv_publish().payload == b"retained"


def test_session_expiry_keeps_counting_while_the_broker_is_down(broker):
    c = broker.connect("de-short", **persistent(5, expiry=1))
    c.subscribe([("de/t", 1)])
    c.disconnect()
    keep = broker.connect("de-long", **persistent(5, expiry=600))
    keep.disconnect()
    broker.kill()
    wait_until(time.monotonic() + 1.5)  # past the 1 s expiry, with flockd down
    broker.log.close()
    broker.start(port=broker.port)
    gone = broker.client(5)
    assert gone.connect("de-short", **persistent(5)).session_present is False
    assert resume(broker, "de-long", 5)


def test_message_expiry_keeps_counting_while_the_broker_is_down(broker):
    sub = broker.connect("dm-sub", **persistent(5))
    sub.subscribe([("dm/t", 1)])
    sub.disconnect()
    pub = broker.connect("dm-pub")
    pub.publish_flow("dm/t", b"short", qos=1, props={MESSAGE_EXPIRY: 1})
    pub.publish_flow("dm/t", b"long", qos=1, props={MESSAGE_EXPIRY: 600})
    broker.kill()
    wait_until(time.monotonic() + 1.5)
    broker.log.close()
    broker.start(port=broker.port)
    sub = resume(broker, "dm-sub", 5)
    p = sub.recv_publish()
    assert p.payload == b"long", "an expired message was delivered after the restart"
    assert 595 <= p.props.get(MESSAGE_EXPIRY) <= 600


@pytest.mark.broker(log_level="debug")
def test_a_delayed_will_survives_a_crash(broker):
    w = broker.connect("dw-watch", **persistent(5))
    w.subscribe([("dw/will", 1), ("dw/sync", 1)])
    c = broker.connect("dw", props={SESSION_EXPIRY: 60},
                       will=Will("dw/will", b"late", qos=1, props={WILL_DELAY: 2}))
    closed = b"connection 127.0.0.1:%d closed" % c.sock.getsockname()[1]
    c.abort()
    wait_for(lambda: closed in broker._log_bytes(), 5, message="flockd to detach the session")
    # The store commits its log in order: once this PUBACK (of a message stored for the
    # persistent watcher) is back, the session record with its pending will is on disk too.
    broker.connect("dw-sync").publish_flow("dw/sync", b"sync", qos=1)
    broker.restart(kill=True)
    w = resume(broker, "dw-watch", 5)
    assert w.recv_publish().payload == b"sync"
    p = w.recv_publish(timeout=6)
    assert p.payload == b"late"


@pytest.mark.broker(durability="memory")
def test_durability_memory_keeps_nothing(broker, version):
    sub = broker.connect("dn-sub", version=version, **persistent(version))
    sub.subscribe([("dn/t", 1)])
    pub = broker.connect("dn-pub", version=version)
    pub.publish_flow("dn/r", b"retained", qos=1, retain=True)
    broker.restart(kill=False)
    c = broker.client(version)
    assert c.connect("dn-sub", **persistent(version)).session_present is False
    c.subscribe([("dn/r", 0)])
    c.expect_nothing(0.3)


@pytest.mark.broker(durability="sync")
def test_durability_sync_survives_a_crash(broker, version):
    sub = broker.connect("dy-sub", version=version, **persistent(version))
    sub.subscribe([("dy/t", 2)])
    sub.disconnect()
    pub = broker.connect("dy-pub", version=version)
    for i in range(3):
        pub.publish_flow("dy/t", b"s%d" % i, qos=2)
    broker.restart(kill=True)
    sub = resume(broker, "dy-sub", version)
    assert [sub.recv_publish().payload for _ in range(3)] == [b"s0", b"s1", b"s2"]
