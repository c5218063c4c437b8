"""Topic matching (+, #, $-topics), invalid filters, invalid topic names, unsubscribe."""

import pytest

from conftest import marker_sync
from mqtt_raw import *  # noqa: F401,F403

# (filter, topics that match, topics that do not)
MATCHING = [
    ("sport/tennis/+", ["sport/tennis/p1", "sport/tennis/"], ["sport/tennis", "sport/tennis/p1/x"]),
    ("sport/#", ["sport", "sport/tennis", "sport/tennis/p1/ranking"], ["sports", "spor"]),
    ("+/+", ["a/b", "/x", "a/"], ["a", "a/b/c"]),
    ("+", ["a", "x y"], ["a/b", "/a"]),
    ("/+", ["/a"], ["a", "a/b"]),
    ("a/+/c", ["a/b/c", "a//c"], ["a/b/c/d", "a/c"]),
    ("+/tennis/#", ["sport/tennis", "sport/tennis/x/y"], ["sport/tenni", "tennis"]),
    ("#", ["a", "a/b/c", "/"], []),
    ("exact/topic", ["exact/topic"], ["exact/topic/", "Exact/topic"]),
    ("ü/+/🐦", ["ü/x/🐦"], ["u/x/🐦"]),
]


@pytest.mark.parametrize("filt,yes,no", MATCHING, ids=[m[0] for m in MATCHING])
def test_filter_matching(broker, version, filt, yes, no):
    sub = broker.connect("match", version=version)
    sub.subscribe([(filt, 1), ("zz-marker/m", 1)])
    pub = broker.connect("match-p", version=version)
    for topic in no + yes:
        pub.publish_flow(topic, topic.encode(), qos=1)
    got = sorted(sub.recv_publish().topic for _ in yes)
    assert got == sorted(yes)
    if filt != "#":
        marker_sync(sub, pub, "zz-marker/m")


def test_dollar_topics_not_matched_by_leading_wildcards(broker, version):
    pub = broker.connect("dl-p", version=version)
    hash_sub = broker.connect("dl-hash", version=version)
    hash_sub.subscribe([("#", 1)])
    plus_sub = broker.connect("dl-plus", version=version)
    plus_sub.subscribe([("+/x", 1)])
    dollar_sub = broker.connect("dl-dollar", version=version)
    dollar_sub.subscribe([("$foo/#", 1)])

    pub.publish_flow("$foo/x", b"dollar", qos=1)
    p = dollar_sub.recv_publish()
    assert (p.topic, p.payload) == ("$foo/x", b"dollar")
    pub.publish_flow("ok/x", b"marker", qos=1)  # both wildcard subscribers match this one
    for sub in (hash_sub, plus_sub):
        p = sub.recv_publish()
        assert (p.topic, p.payload) == ("ok/x", b"marker"), "only the marker expected: %r" % p


def test_sys_topics_not_matched_by_hash(broker, version):
    sub = broker.connect("sys-hash", version=version)
    sub.subscribe([("#", 0)])
    pub = broker.connect("sys-hash-p", version=version)
    for p in [marker_sync(sub, pub, "m/%d" % i) for i in range(3)]:
        assert not p.topic.startswith("$")


INVALID_FILTERS = ["a/#/b", "a#", "a/b+", "+a", "#/a", "a/+b/c", "a/##"]


@pytest.mark.mosquitto_wrong("disconnects with 0x81 instead of a SUBACK failure")
@pytest.mark.parametrize("filt", INVALID_FILTERS)
def test_invalid_filter_gets_suback_failure(broker, version, filt):
    c = broker.connect("badf", version=version)
    ack = c.subscribe([("ok/f", 1), (filt, 1)])
    assert ack.codes == [1, RC_TOPIC_FILTER_INVALID if version == 5 else 0x80]
    # still connected, and the valid filter works
    pub = broker.connect("badf-p", version=version)
    marker_sync(c, pub, "ok/f")


@pytest.mark.parametrize("topic", ["a/+", "a/#", "+", "#", "a/b+"])
def test_wildcard_in_publish_topic_disconnects(broker, version, topic):
    c = broker.connect("wpub", version=version)
    c.publish(topic, b"x", qos=1)
    got = c.wait_closed()
    assert all(p.type == DISCONNECT for p in got), got
    if version == 5:
        for p in got:
            assert p.reason in (RC_MALFORMED, RC_PROTOCOL_ERROR, RC_TOPIC_NAME_INVALID), p
    broker.check_serving(version)


def test_empty_publish_topic_without_alias_disconnects(broker, version):
    c = broker.connect("emptyt", version=version)
    c.publish("", b"x", qos=0)
    got = c.wait_closed()
    assert all(p.type == DISCONNECT and p.reason >= 0x80 for p in got), got
    broker.check_serving(version)


def test_unsubscribe_stops_delivery(broker, version):
    sub = broker.connect("uns", version=version)
    sub.subscribe([("uns/a", 1), ("uns/m", 1)])
    ack = sub.unsubscribe("uns/a")
    if version == 5:
        assert ack.codes == [RC_SUCCESS]
    pub = broker.connect("uns-p", version=version)
    pub.publish_flow("uns/a", b"gone", qos=1)
    marker_sync(sub, pub, "uns/m")


def test_v5_unsubscribe_unknown_filter_reports_no_subscription_existed(broker):
    sub = broker.connect("uns5")
    sub.subscribe([("uns/x", 0)])
    ack = sub.unsubscribe(["uns/x", "uns/never"])
    assert ack.codes == [RC_SUCCESS, RC_NO_SUBSCRIPTION_EXISTED]


def test_resubscribe_replaces_qos(broker, version):
    sub = broker.connect("resub", version=version)
    sub.subscribe([("rs/t", 2)])
    assert sub.subscribe([("rs/t", 0)]).codes == [0]
    pub = broker.connect("resub-p", version=version)
    pub.publish_flow("rs/t", b"x", qos=2)
    p = sub.recv_publish()
    assert p.qos == 0
    pub.publish_flow("rs/t", b"y", qos=1)
    assert sub.recv_publish().payload == b"y"  # only one subscription exists, so no duplicate
    marker_sync(sub, pub, "rs/t")


def test_topic_is_case_sensitive_and_keeps_spaces(broker, version):
    sub = broker.connect("case", version=version)
    sub.subscribe([("Case/ T", 1)])
    pub = broker.connect("case-p", version=version)
    pub.publish_flow("case/ t", b"no", qos=1)
    pub.publish_flow("Case/ T", b"yes", qos=1)
    assert sub.recv_publish().payload == b"yes"


def test_multiple_filters_in_one_subscribe(broker, version):
    sub = broker.connect("multi", version=version)
    ack = sub.subscribe([("m/a", 0), ("m/b", 1), ("m/c", 2)])
    assert ack.codes == [0, 1, 2]
    pub = broker.connect("multi-p", version=version)
    for t in ("m/a", "m/b", "m/c"):
        pub.publish_flow(t, b"x", qos=2)
    got = {p.topic: p.qos for p in (sub.recv_publish() for _ in range(3))}
    assert got == {"m/a": 0, "m/b": 1, "m/c": 2}
