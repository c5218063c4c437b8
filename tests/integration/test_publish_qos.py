"""QoS 0/1/2 in both directions, packet-id flows, exactly-once, redelivery on session resume."""

import pytest

from conftest import marker_sync, persistent
from mqtt_raw import *  # noqa: F401,F403


def test_qos0_round_trip(broker, version):
    sub = broker.connect("q0s", version=version)
    sub.subscribe([("q/0", 0)])
    pub = broker.connect("q0p", version=version)
    pub.publish("q/0", b"zero")
    p = sub.recv_publish()
    assert (p.topic, p.payload, p.qos, p.pid, p.dup, p.retain) == ("q/0", b"zero", 0, None, False, False)


def test_qos1_flow_both_directions(broker, version):
    sub = broker.connect("q1s", version=version)
    assert sub.subscribe([("q/1", 1)]).codes == [1]
    pub = broker.connect("q1p", version=version)
    pub.publish("q/1", b"one", qos=1, pid=4242)
    ack = pub.expect(PUBACK)
    assert ack.pid == 4242 and ack.reason == 0
    p = sub.expect(PUBLISH)
    assert (p.topic, p.payload, p.qos) == ("q/1", b"one", 1)
    assert p.pid and p.pid != 0
    sub.send(build_ack(version, PUBACK, p.pid))
    marker_sync(sub, pub, "q/1")


def test_qos2_flow_both_directions(broker, version):
    sub = broker.connect("q2s", version=version)
    assert sub.subscribe([("q/2", 2)]).codes == [2]
    pub = broker.connect("q2p", version=version)
    pub.publish("q/2", b"two", qos=2, pid=77)
    rec = pub.expect(PUBREC)
    assert rec.pid == 77 and rec.reason == 0
    pub.send(build_ack(version, PUBREL, 77))
    comp = pub.expect(PUBCOMP)
    assert comp.pid == 77 and comp.reason == 0

    p = sub.expect(PUBLISH)
    assert (p.topic, p.payload, p.qos) == ("q/2", b"two", 2)
    sub.send(build_ack(version, PUBREC, p.pid))
    rel = sub.expect(PUBREL)
    assert rel.pid == p.pid and rel.flags == 0x2, "PUBREL must have flags 0010: %r" % rel
    sub.send(build_ack(version, PUBCOMP, p.pid))
    marker_sync(sub, pub, "q/2")


@pytest.mark.parametrize("pub_qos,sub_qos", [(2, 0), (2, 1), (1, 0), (0, 2), (1, 2)])
def test_delivered_qos_is_minimum_of_publish_and_subscription(broker, version, pub_qos, sub_qos):
    sub = broker.connect("dg-s", version=version)
    sub.subscribe([("q/dg", sub_qos)])
    pub = broker.connect("dg-p", version=version)
    pub.publish_flow("q/dg", b"x", qos=pub_qos)
    p = sub.recv_publish()
    assert p.qos == min(pub_qos, sub_qos)


def test_qos2_duplicate_publish_before_pubrel_delivered_once(broker, version):
    sub = broker.connect("eo-s", version=version)
    sub.subscribe([("q/eo", 2)])
    pub = broker.connect("eo-p", version=version)
    pub.publish("q/eo", b"once", qos=2, pid=9)
    assert pub.expect(PUBREC).pid == 9
    pub.publish("q/eo", b"once", qos=2, pid=9, dup=True)
    assert pub.expect(PUBREC).pid == 9
    pub.send(build_ack(version, PUBREL, 9))
    assert pub.expect(PUBCOMP).pid == 9
    first = sub.recv_publish()
    assert first.payload == b"once"
    marker_sync(sub, pub, "q/eo")


def test_qos2_same_packet_id_after_pubcomp_is_a_new_message(broker, version):
    sub = broker.connect("eo2-s", version=version)
    sub.subscribe([("q/eo2", 2)])
    pub = broker.connect("eo2-p", version=version)
    for payload in (b"first", b"second"):
        pub.publish("q/eo2", payload, qos=2, pid=5)
        assert pub.expect(PUBREC).pid == 5
        pub.send(build_ack(version, PUBREL, 5))
        assert pub.expect(PUBCOMP).pid == 5
    assert sub.recv_publish().payload == b"first"
    assert sub.recv_publish().payload == b"second"


def test_qos1_redelivered_with_dup_on_session_resume(broker, version):
    sub = broker.connect("rd1", version=version, **persistent(version))
    sub.subscribe([("q/rd1", 1)])
    pub = broker.connect("rd1-p", version=version)
    pub.publish_flow("q/rd1", b"unacked", qos=1)
    first = sub.recv_publish(ack=False)
    assert first.dup is False
    sub.abort()

    sub = broker.client(version)
    ack = sub.connect("rd1", **persistent(version))
    assert ack.session_present is True
    again = sub.expect(PUBLISH)
    assert again.dup is True, "redelivery must set DUP: %r" % again
    assert (again.pid, again.payload, again.qos) == (first.pid, b"unacked", 1)
    sub.ack(again)
    marker_sync(sub, pub, "q/rd1")


def test_qos2_pubrel_resent_on_session_resume(broker, version):
    sub = broker.connect("rd2", version=version, **persistent(version))
    sub.subscribe([("q/rd2", 2)])
    pub = broker.connect("rd2-p", version=version)
    pub.publish_flow("q/rd2", b"half", qos=2)
    p = sub.expect(PUBLISH)
    sub.send(build_ack(version, PUBREC, p.pid))
    assert sub.expect(PUBREL).pid == p.pid
    sub.abort()

    sub = broker.client(version)
    assert sub.connect("rd2", **persistent(version)).session_present is True
    rel = sub.expect(PUBREL)
    assert rel.pid == p.pid, "the PUBREL must be resent, not the PUBLISH: %r" % rel
    sub.send(build_ack(version, PUBCOMP, p.pid))
    marker_sync(sub, pub, "q/rd2")


def test_qos2_publish_resent_with_dup_when_pubrec_missing(broker, version):
    sub = broker.connect("rd3", version=version, **persistent(version))
    sub.subscribe([("q/rd3", 2)])
    pub = broker.connect("rd3-p", version=version)
    pub.publish_flow("q/rd3", b"norec", qos=2)
    p = sub.expect(PUBLISH)
    sub.abort()
    sub = broker.client(version)
    assert sub.connect("rd3", **persistent(version)).session_present is True
    again = sub.expect(PUBLISH)
    assert again.dup is True and again.pid == p.pid and again.payload == b"norec"
    sub.ack(again)
    marker_sync(sub, pub, "q/rd3")


def test_inbound_qos2_state_survives_publisher_reconnect(broker, version):
    sub = broker.connect("in2-s", version=version)
    sub.subscribe([("q/in2", 2)])
    pub = broker.connect("in2-p", version=version, **persistent(version))
    pub.publish("q/in2", b"kept", qos=2, pid=31)
    assert pub.expect(PUBREC).pid == 31
    pub.abort()
    pub = broker.client(version)
    assert pub.connect("in2-p", **persistent(version)).session_present is True
    pub.send(build_ack(version, PUBREL, 31))
    comp = pub.expect(PUBCOMP)
    assert comp.pid == 31 and comp.reason == 0
    assert sub.recv_publish().payload == b"kept"
    marker_sync(sub, pub, "q/in2")


def test_no_redelivery_without_session_resume(broker, version):
    sub = broker.connect("nr", version=version)
    sub.subscribe([("q/nr", 1)])
    pub = broker.connect("nr-p", version=version)
    pub.publish_flow("q/nr", b"lost", qos=1)
    assert sub.recv_publish(ack=False).payload == b"lost"
    sub.abort()
    sub = broker.client(version)
    ack = sub.connect("nr", clean=True)
    assert ack.session_present is False
    sub.subscribe([("q/nr", 1)])
    marker_sync(sub, pub, "q/nr")


def test_order_preserved_per_topic(broker, version):
    sub = broker.connect("ord-s", version=version)
    sub.subscribe([("q/ord", 1)])
    pub = broker.connect("ord-p", version=version)
    for i in range(50):
        pub.publish("q/ord", b"%d" % i, qos=1)
    for i in range(50):
        pub.expect(PUBACK)
    got = [sub.recv_publish().payload for _ in range(50)]
    assert got == [b"%d" % i for i in range(50)]


def test_publisher_receives_own_message_when_subscribed(broker, version):
    c = broker.connect("self", version=version)
    c.subscribe([("q/self", 1)])
    c.publish_flow("q/self", b"me", qos=1)
    assert c.recv_publish().payload == b"me"


def test_large_payload_round_trip(broker, version):
    sub = broker.connect("big-s", version=version)
    sub.subscribe([("q/big", 1)])
    pub = broker.connect("big-p", version=version)
    payload = bytes(range(256)) * 1024  # 256 KiB, 3-byte remaining length
    pub.publish_flow("q/big", payload, qos=1)
    p = sub.recv_publish(timeout=10)
    assert p.payload == payload
