"""Shared subscriptions: $share/group/filter and $queue/filter."""


import pytest

from conftest import drain_publishes, marker_sync
from mqtt_raw import *  # noqa: F401,F403


def members(broker, version, filt, n, prefix):
    out = []
    for i in range(n):
        c = broker.connect("%s%d" % (prefix, i), version=version)
        assert c.subscribe([(filt, 1)]).codes == [1]
        out.append(c)
    return out


def collect(clients, total):
    """Receive until `total` messages have arrived across clients, then check nothing more comes."""
    got = {id(c): [] for c in clients}
    count = 0
    while count < total:
        progressed = False
        for c in clients:
            for p in drain_publishes(c, quiet=0.2, limit=total - count):
                got[id(c)].append(p.payload)
                count += 1
                progressed = True
        assert progressed, "only %d of %d messages arrived" % (count, total)
    for c in clients:
        c.expect_nothing(0.5)
    return [got[id(c)] for c in clients]


def assert_each_once_round_robin(per_member, n):
    flat = [x for m in per_member for x in m]
    assert sorted(flat) == sorted(b"%d" % i for i in range(n)), "each message to exactly one member"
    counts = [len(m) for m in per_member]
    assert max(counts) - min(counts) <= 1, "round robin expected, got counts %r" % counts


@pytest.mark.parametrize("size", [2, 3])
def test_share_each_message_to_exactly_one_member_round_robin(broker, version, size):
    group = members(broker, version, "$share/g1/sh/t", size, "shm")
    pub = broker.connect("sh-p", version=version)
    n = 10 * size
    for i in range(n):
        pub.publish_flow("sh/t", b"%d" % i, qos=1)
    assert_each_once_round_robin(collect(group, n), n)


def test_share_with_wildcard_filter(broker, version):
    group = members(broker, version, "$share/gw/shw/+", 2, "shw")
    pub = broker.connect("shw-p", version=version)
    for i in range(10):
        pub.publish_flow("shw/%d" % (i % 3), b"%d" % i, qos=1)
    assert_each_once_round_robin(collect(group, 10), 10)


def test_two_groups_each_get_every_message(broker, version):
    g1 = members(broker, version, "$share/a/sh2/t", 2, "ga")
    g2 = members(broker, version, "$share/b/sh2/t", 2, "gb")
    plain = broker.connect("plain", version=version)
    plain.subscribe([("sh2/t", 1)])
    pub = broker.connect("sh2-p", version=version)
    for i in range(8):
        pub.publish_flow("sh2/t", b"%d" % i, qos=1)
    for group in (g1, g2):
        per = collect(group, 8)
        assert sorted(x for m in per for x in m) == sorted(b"%d" % i for i in range(8))
    assert [p.payload for p in drain_publishes(plain)] == [b"%d" % i for i in range(8)]


def test_member_leaving_sends_everything_to_the_rest(broker, version):
    a, b = members(broker, version, "$share/gl/shl/t", 2, "gl")
    a.disconnect()
    pub = broker.connect("shl-p", version=version)
    for i in range(6):
        pub.publish_flow("shl/t", b"%d" % i, qos=1)
    assert [p.payload for p in (b.recv_publish() for _ in range(6))] == [b"%d" % i for i in range(6)]


def test_unsubscribe_from_share_group(broker, version):
    a, b = members(broker, version, "$share/gu/shu/t", 2, "gu")
    a.unsubscribe("$share/gu/shu/t")
    a.subscribe([("shu/m", 1)])
    pub = broker.connect("shu-p", version=version)
    for i in range(4):
        pub.publish_flow("shu/t", b"%d" % i, qos=1)
    assert len([b.recv_publish() for _ in range(4)]) == 4
    marker_sync(a, pub, "shu/m")


@pytest.mark.mosquitto_wrong("sends retained messages to new shared subscriptions")
def test_shared_subscription_gets_no_retained_messages(broker, version):
    pub = broker.connect("shr-p", version=version)
    pub.publish_flow("shr/t", b"retained", qos=1, retain=True)
    c = broker.connect("shr", version=version)
    c.subscribe([("$share/gr/shr/t", 1), ("shr/m", 1)])
    marker_sync(c, pub, "shr/m")


@pytest.mark.mosquitto_wrong("has no $queue/ subscriptions")
def test_queue_prefix_is_a_shared_group(broker, version):
    group = members(broker, version, "$queue/q/t", 2, "qm")
    pub = broker.connect("q-p", version=version)
    for i in range(10):
        pub.publish_flow("q/t", b"%d" % i, qos=1)
    assert_each_once_round_robin(collect(group, 10), 10)


@pytest.mark.mosquitto_wrong("accepts malformed $share filters as plain topics")
@pytest.mark.parametrize("filt", ["$share/g", "$share//t", "$share/g+/t", "$share/g#/t", "$share/g/"])
def test_v5_invalid_share_filter_rejected(broker, filt):
    c = broker.connect("shbad")
    ack = c.subscribe([(filt, 1)])
    assert ack.codes == [RC_TOPIC_FILTER_INVALID]


@pytest.mark.mosquitto_wrong("allows No Local on shared subscriptions")
def test_v5_no_local_on_shared_subscription_is_protocol_error(broker):
    c = broker.connect("shnl")
    pid = c.alloc_pid()
    c.send(build_subscribe(5, pid, [("$share/g/nl", sub_options(1, no_local=True))]))
    got = c.wait_closed()
    assert got and got[-1].type == DISCONNECT and got[-1].reason == RC_PROTOCOL_ERROR, got
