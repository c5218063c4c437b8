"""MQTT 5 features: No Local, subscription identifiers, topic aliases, message expiry,
forwarded properties, problem information."""

import time

import pytest

from conftest import marker_sync, wait_until
from mqtt_raw import *  # noqa: F401,F403


# ---------------------------------------------------------------- No Local


def test_no_local_suppresses_own_messages(broker):
    c = broker.connect("nl")
    c.subscribe([("nl/t", sub_options(1, no_local=True)), ("nl/m", 1)])
    other = broker.connect("nl-o")
    other.subscribe([("nl/t", 1)])
    c.publish_flow("nl/t", b"mine", qos=1)
    assert other.recv_publish().payload == b"mine"  # it was routed
    marker_sync(c, other, "nl/m")
    other.publish_flow("nl/t", b"theirs", qos=1)
    assert c.recv_publish().payload == b"theirs"


def test_no_local_0_delivers_own_messages(broker):
    c = broker.connect("nl0")
    c.subscribe([("nl0/t", sub_options(1, no_local=False))])
    c.publish_flow("nl0/t", b"mine", qos=1)
    assert c.recv_publish().payload == b"mine"


# ---------------------------------------------------------------- subscription identifiers


def test_subscription_identifier_forwarded(broker):
    c = broker.connect("sid")
    c.subscribe([("sid/+", 1)], props={SUBSCRIPTION_ID: 42})
    c.subscribe([("sidn/none", 1)])  # no identifier; does not overlap sid/+
    pub = broker.connect("sid-p")
    pub.publish_flow("sid/x", b"x", qos=1)
    p = c.recv_publish()
    assert p.props.all(SUBSCRIPTION_ID) == [42]
    pub.publish_flow("sidn/none", b"y", qos=1)
    p = c.recv_publish()
    assert p.props.all(SUBSCRIPTION_ID) == []


def test_subscription_identifier_large_value(broker):
    c = broker.connect("sidl")
    c.subscribe([("sidl/t", 0)], props={SUBSCRIPTION_ID: 268435455})
    pub = broker.connect("sidl-p")
    pub.publish_flow("sidl/t", b"x")
    assert c.recv_publish().props.all(SUBSCRIPTION_ID) == [268435455]


@pytest.mark.mosquitto_wrong("sends one copy per overlapping subscription")
def test_overlapping_subscriptions_one_copy_with_all_identifiers_at_highest_qos(broker):
    c = broker.connect("ovl")
    c.subscribe([("ovl/+", 0)], props={SUBSCRIPTION_ID: 1})
    c.subscribe([("ovl/#", 1)], props={SUBSCRIPTION_ID: 2})
    c.subscribe([("ovl/a", 0)])  # no identifier
    c.subscribe([("ovl/m", 1)], props={SUBSCRIPTION_ID: 9})
    pub = broker.connect("ovl-p")
    pub.publish_flow("ovl/a", b"x", qos=2)
    p = c.recv_publish()
    assert p.qos == 1, "the highest granted QoS among matching subscriptions"
    assert sorted(p.props.all(SUBSCRIPTION_ID)) == [1, 2]
    marker_sync(c, pub, "ovl/m")


def test_subscription_identifier_0_is_protocol_error(broker):
    c = broker.connect("sid0")
    pid = c.alloc_pid()
    c.send(build_subscribe(5, pid, [("sid0/t", 0)], props={SUBSCRIPTION_ID: 0}))
    got = c.wait_closed()
    for p in got:
        assert p.type == DISCONNECT and p.reason in (RC_MALFORMED, RC_PROTOCOL_ERROR), got
    broker.check_serving(5)


# ---------------------------------------------------------------- topic aliases


@pytest.mark.broker(topic_alias_maximum=5)
def test_topic_alias_from_client(broker):
    sub = broker.connect("ta-s")
    sub.subscribe([("ta/t", 1)])
    c = broker.connect("ta")
    assert c.connack.props.get(TOPIC_ALIAS_MAXIMUM) == 5
    c.publish_flow("ta/t", b"1", qos=1, props={TOPIC_ALIAS: 3})
    c.publish_flow("", b"2", qos=1, props={TOPIC_ALIAS: 3})
    # re-map alias 3 to another topic
    sub.subscribe([("ta/u", 1)])
    c.publish_flow("ta/u", b"3", qos=1, props={TOPIC_ALIAS: 3})
    c.publish_flow("", b"4", qos=1, props={TOPIC_ALIAS: 3})
    got = [sub.recv_publish() for _ in range(4)]
    assert [(p.topic, p.payload) for p in got] == [("ta/t", b"1"), ("ta/t", b"2"),
                                                   ("ta/u", b"3"), ("ta/u", b"4")]
    for p in got:
        assert TOPIC_ALIAS not in p.props, "the client's alias must not be forwarded"


@pytest.mark.broker(topic_alias_maximum=5)
@pytest.mark.parametrize("alias", [6, 1000])
def test_topic_alias_above_maximum_is_0x94(broker, alias):
    c = broker.connect("tao")
    c.publish("ta/x", b"x", props={TOPIC_ALIAS: alias})
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == DISCONNECT, got
    assert got[0].reason == RC_TOPIC_ALIAS_INVALID
    broker.check_serving(5)


@pytest.mark.mosquitto_wrong("answers alias 0 with 0x81 instead of 0x94")
@pytest.mark.broker(topic_alias_maximum=5)
def test_topic_alias_0_is_0x94(broker):
    c = broker.connect("ta0")
    c.publish("ta/x", b"x", props={TOPIC_ALIAS: 0})
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == DISCONNECT, got
    assert got[0].reason == RC_TOPIC_ALIAS_INVALID
    broker.check_serving(5)


@pytest.mark.broker(topic_alias_maximum=5)
def test_unknown_topic_alias_with_empty_topic_is_protocol_error(broker):
    c = broker.connect("tau")
    c.publish("", b"x", props={TOPIC_ALIAS: 2})
    got = c.wait_closed()
    assert len(got) == 1 and got[0].type == DISCONNECT, got
    assert got[0].reason == RC_PROTOCOL_ERROR
    broker.check_serving(5)


@pytest.mark.mosquitto_wrong("never assigns outgoing topic aliases")
def test_broker_assigns_outgoing_topic_alias(broker):
    sub = broker.client(5)
    sub.connect("tab", props={TOPIC_ALIAS_MAXIMUM: 5})
    sub.subscribe([("tab/topic/with/a/long/name", 1)])
    pub = broker.connect("tab-p")
    pub.publish_flow("tab/topic/with/a/long/name", b"1", qos=1)
    pub.publish_flow("tab/topic/with/a/long/name", b"2", qos=1)
    first, second = sub.recv_publish(), sub.recv_publish()
    assert first.topic == "tab/topic/with/a/long/name"
    alias = first.props.get(TOPIC_ALIAS)
    assert alias is not None and 1 <= alias <= 5, "first message must set an alias: %r" % first
    assert second.topic == "", "second message must use the alias alone: %r" % second
    assert second.props.get(TOPIC_ALIAS) == alias
    assert second.payload == b"2"


def test_no_outgoing_alias_when_client_does_not_allow_them(broker):
    sub = broker.connect("tan")  # no Topic Alias Maximum: 0
    sub.subscribe([("tan/t", 1)])
    pub = broker.connect("tan-p")
    for i in range(3):
        pub.publish_flow("tan/t", b"%d" % i, qos=1)
    for p in (sub.recv_publish() for _ in range(3)):
        assert p.topic == "tan/t" and TOPIC_ALIAS not in p.props


# ---------------------------------------------------------------- message expiry


def test_message_expiry_drops_expired_and_lowers_remaining(broker):
    sub = broker.connect("me", props={SESSION_EXPIRY: 300})
    sub.subscribe([("me/t", 1)])
    sub.disconnect()
    pub = broker.connect("me-p")
    pub.publish_flow("me/t", b"short", qos=1, props={MESSAGE_EXPIRY: 1})
    pub.publish_flow("me/t", b"long", qos=1, props={MESSAGE_EXPIRY: 100})
    wait_until(time.monotonic() + 2.2)  # the short one expires while the session is offline
    sub = broker.client(5)
    assert sub.connect("me", clean=False, props={SESSION_EXPIRY: 300}).session_present is True
    p = sub.recv_publish()
    assert p.payload == b"long", "the expired message must not be delivered: %r" % p
    remaining = p.props.get(MESSAGE_EXPIRY)
    assert remaining is not None and remaining <= 99, "remaining interval not lowered: %r" % p
    marker_sync(sub, pub, "me/t")


def test_message_expiry_forwarded_online(broker):
    sub = broker.connect("meo")
    sub.subscribe([("meo/t", 1)])
    pub = broker.connect("meo-p")
    pub.publish_flow("meo/t", b"x", qos=1, props={MESSAGE_EXPIRY: 60})
    p = sub.recv_publish()
    assert 0 < p.props.get(MESSAGE_EXPIRY, 0) <= 60


def test_retained_message_expires(broker):
    pub = broker.connect("mer-p")
    pub.publish_flow("mer/t", b"gone", qos=1, retain=True, props={MESSAGE_EXPIRY: 1})
    wait_until(time.monotonic() + 2.2)
    sub = broker.connect("mer")
    sub.subscribe([("mer/#", 1)])
    marker_sync(sub, pub, "mer/m")


# ---------------------------------------------------------------- forwarded properties


def test_application_properties_forwarded_unchanged(broker):
    sub = broker.connect("fw", version=5)
    sub.subscribe([("fw/t", 1)])
    pub = broker.connect("fw-p")
    props = [(PAYLOAD_FORMAT, 1), (CONTENT_TYPE, "application/json; charset=utf-8"),
             (RESPONSE_TOPIC, "fw/reply/ü"), (CORRELATION_DATA, bytes(range(256))),
             (USER_PROPERTY, ("z", "1")), (USER_PROPERTY, ("a", "2")),
             (USER_PROPERTY, ("z", "3")), (USER_PROPERTY, ("", ""))]
    pub.publish_flow("fw/t", b'{"k": 1}', qos=1, props=props)
    p = sub.recv_publish()
    assert p.payload == b'{"k": 1}'
    assert p.props.get(PAYLOAD_FORMAT) == 1
    assert p.props.get(CONTENT_TYPE) == "application/json; charset=utf-8"
    assert p.props.get(RESPONSE_TOPIC) == "fw/reply/ü"
    assert p.props.get(CORRELATION_DATA) == bytes(range(256))
    assert p.props.all(USER_PROPERTY) == [("z", "1"), ("a", "2"), ("z", "3"), ("", "")]


def test_properties_dropped_for_v311_subscriber(broker):
    sub = broker.connect("fw4", version=4)
    sub.subscribe([("fw4/t", 1)])
    pub = broker.connect("fw4-p")
    pub.publish_flow("fw4/t", b"plain", qos=1, props={USER_PROPERTY: [("k", "v")], CONTENT_TYPE: "x"})
    p = sub.recv_publish()
    assert p.payload == b"plain" and p.topic == "fw4/t"


# ---------------------------------------------------------------- problem information


def test_request_problem_information_0_suppresses_reason_strings(broker):
    c = broker.client(5)
    ack = c.connect("rpi0", props={REQUEST_PROBLEM_INFO: 0})
    assert ack.reason == 0
    seen = []
    # PUBACK for a message nobody receives (a broker may say 0x10 and explain why)
    seen.append(c.publish_flow("rpi/nobody", b"x", qos=1))
    seen.append(c.publish_flow("rpi/nobody", b"x", qos=2))
    # UNSUBACK for a filter never subscribed (0x11)
    seen.append(c.unsubscribe("rpi/never"))
    seen.append(c.subscribe([("rpi/t", 2)]))
    for p in seen:
        assert REASON_STRING not in p.props, "reason string despite RPI=0: %r" % p
        assert USER_PROPERTY not in p.props, "user property despite RPI=0: %r" % p


def test_reason_strings_allowed_by_default(broker):
    c = broker.client(5)
    c.connect("rpi1")
    for p in (c.publish_flow("rpi/nobody", b"x", qos=1), c.unsubscribe("rpi/never")):
        rs = p.props.get(REASON_STRING)
        assert rs is None or isinstance(rs, str)
    # a reason string on an error must still decode (the parser checks UTF-8)


def test_puback_reason_is_success_or_no_matching_subscribers(broker):
    c = broker.connect("pm")
    ack = c.publish_flow("pm/nobody", b"x", qos=1)
    assert ack.reason in (RC_SUCCESS, RC_NO_MATCHING_SUBSCRIBERS)
    c.subscribe([("pm/t", 0)])
    assert c.publish_flow("pm/t", b"x", qos=1).reason == RC_SUCCESS
