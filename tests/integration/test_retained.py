"""Retained messages: set, replace, clear, delivery on subscribe; v5 retain handling and RAP."""

from conftest import marker_sync
from mqtt_raw import *  # noqa: F401,F403


def test_retained_delivered_on_subscribe_with_retain_flag(broker, version):
    pub = broker.connect("r-p", version=version)
    pub.publish_flow("ret/a", b"kept", qos=1, retain=True)
    sub = broker.connect("r-s", version=version)
    sub.subscribe([("ret/a", 1)])
    p = sub.recv_publish()
    assert (p.topic, p.payload, p.retain, p.qos) == ("ret/a", b"kept", True, 1)


def test_retained_replaced_by_newer(broker, version):
    pub = broker.connect("rr-p", version=version)
    pub.publish_flow("ret/b", b"old", qos=1, retain=True)
    pub.publish_flow("ret/b", b"new", qos=1, retain=True)
    sub = broker.connect("rr-s", version=version)
    sub.subscribe([("ret/b", 1), ("ret/marker", 1)])
    assert sub.recv_publish().payload == b"new"
    marker_sync(sub, pub, "ret/marker")


def test_retained_cleared_by_empty_payload(broker, version):
    pub = broker.connect("rc-p", version=version)
    pub.publish_flow("ret/c", b"soon gone", qos=1, retain=True)
    pub.publish_flow("ret/c", b"", qos=1, retain=True)
    sub = broker.connect("rc-s", version=version)
    sub.subscribe([("ret/#", 1)])
    marker_sync(sub, pub, "ret/marker")


def test_live_delivery_to_existing_subscriber_has_retain_0(broker, version):
    sub = broker.connect("rl-s", version=version)
    sub.subscribe([("ret/live", 1)])
    pub = broker.connect("rl-p", version=version)
    pub.publish_flow("ret/live", b"x", qos=1, retain=True)
    p = sub.recv_publish()
    assert p.payload == b"x" and p.retain is False


def test_wildcard_subscribe_gets_every_retained_topic(broker, version):
    pub = broker.connect("rw-p", version=version)
    topics = ["ret/w/1", "ret/w/2", "ret/w/x/3"]
    for t in topics:
        pub.publish_flow(t, t.encode(), qos=1, retain=True)
    pub.publish_flow("ret/other", b"no", qos=1, retain=True)
    sub = broker.connect("rw-s", version=version)
    sub.subscribe([("ret/w/#", 0)])
    got = sorted(sub.recv_publish().topic for _ in topics)
    assert got == topics
    sub.subscribe([("ret/m", 1)])
    marker_sync(sub, pub, "ret/m")


def test_retained_qos_downgraded_to_subscription(broker, version):
    pub = broker.connect("rq-p", version=version)
    pub.publish_flow("ret/q", b"q2", qos=2, retain=True)
    sub = broker.connect("rq-s", version=version)
    sub.subscribe([("ret/q", 1)])
    p = sub.recv_publish()
    assert p.qos == 1 and p.retain is True


def test_retained_qos0_message_kept(broker, version):
    pub = broker.connect("r0-p", version=version)
    pub.publish("ret/zero", b"z", retain=True)
    pub.ping()  # the broker has processed the publish once the PINGRESP arrives
    sub = broker.connect("r0-s", version=version)
    sub.subscribe([("ret/zero", 2)])
    p = sub.recv_publish()
    assert (p.payload, p.qos, p.retain) == (b"z", 0, True)


def test_v5_retain_handling_0_sends_on_every_subscribe(broker):
    pub = broker.connect("rh0-p")
    pub.publish_flow("ret/rh0", b"r", qos=1, retain=True)
    sub = broker.connect("rh0-s")
    for _ in range(2):
        sub.subscribe([("ret/rh0", sub_options(1, retain_handling=0))])
        p = sub.recv_publish()
        assert p.payload == b"r" and p.retain is True


def test_v5_retain_handling_1_sends_only_for_new_subscription(broker):
    pub = broker.connect("rh1-p")
    pub.publish_flow("ret/rh1", b"r", qos=1, retain=True)
    sub = broker.connect("rh1-s")
    sub.subscribe([("ret/m1", 1)])
    sub.subscribe([("ret/rh1", sub_options(1, retain_handling=1))])
    assert sub.recv_publish().payload == b"r"
    sub.subscribe([("ret/rh1", sub_options(1, retain_handling=1))])
    marker_sync(sub, pub, "ret/m1")


def test_v5_retain_handling_2_never_sends(broker):
    pub = broker.connect("rh2-p")
    pub.publish_flow("ret/rh2", b"r", qos=1, retain=True)
    sub = broker.connect("rh2-s")
    sub.subscribe([("ret/m2", 1)])
    sub.subscribe([("ret/rh2", sub_options(1, retain_handling=2))])
    marker_sync(sub, pub, "ret/m2")
    # the subscription itself works
    pub.publish_flow("ret/rh2", b"live", qos=1)
    assert sub.recv_publish().payload == b"live"


def test_v5_retain_as_published(broker):
    sub = broker.connect("rap-s")
    sub.subscribe([("ret/rap1", sub_options(1, retain_as_published=True)),
                   ("ret/rap0", sub_options(1, retain_as_published=False))])
    pub = broker.connect("rap-p")
    pub.publish_flow("ret/rap1", b"a", qos=1, retain=True)
    p = sub.recv_publish()
    assert p.topic == "ret/rap1" and p.retain is True
    pub.publish_flow("ret/rap0", b"b", qos=1, retain=True)
    p = sub.recv_publish()
    assert p.topic == "ret/rap0" and p.retain is False
    pub.publish_flow("ret/rap1", b"c", qos=1, retain=False)
    p = sub.recv_publish()
    assert p.topic == "ret/rap1" and p.retain is False


def test_v5_retained_message_properties_kept(broker):
    pub = broker.connect("rp-p")
    props = {CONTENT_TYPE: "text/plain", USER_PROPERTY: [("k", "v")]}
    pub.publish_flow("ret/props", b"p", qos=1, retain=True, props=props)
    sub = broker.connect("rp-s")
    sub.subscribe([("ret/props", 1)])
    p = sub.recv_publish()
    assert p.props.get(CONTENT_TYPE) == "text/plain"
    assert p.props.all(USER_PROPERTY) == [("k", "v")]
