"""Publishes cross the cluster: published on one node, delivered to subscribers on others.

Topics and wildcards, QoS, order, one copy per node, no forwarding back or onward,
unsubscribe, MQTT 5 properties, $SYS staying per node, retained messages everywhere
(set, clear, late joiners, concurrent writers), shared subscriptions cluster-wide, wills.
"""

import threading
import time

import pytest

from cluster_fixture import (collect, publish_pipelined, publish_then_marker,
                             read_until_marker, retained_on, wait_for, wait_retained, wait_until)
from mqtt_raw import *  # noqa: F401,F403


# ---------------------------------------------------------------- topics


def test_exact_topic_published_on_a_reaches_subscriber_on_c(cluster, version):
    sub = cluster.c.connect("sub-c", version=version)
    sub.subscribe([("plant/1/temp", 1)])
    cluster.converge(cluster.c)
    pub = cluster.a.connect("pub-a", version=version)
    pub.publish_flow("plant/1/temp", b"21.5", qos=1)
    p = sub.recv_publish()
    assert (p.topic, p.payload, p.qos, p.retain, p.dup) == ("plant/1/temp", b"21.5", 1, False, False)
    # a topic next to it is not delivered: the marker is the very next message
    marker = publish_then_marker(pub, "plant/1/tempx", [b"no"], marker_topic="plant/1/temp")
    assert read_until_marker(sub, marker) == []


@pytest.mark.parametrize("filt,matching,other", [
    ("f/+/x", ["f/a/x", "f/b/x", "f//x"], ["f/a/y", "f/a/b/x", "f/x"]),
    ("f/#", ["f", "f/a", "f/a/b/c", "f/"], ["g/a", "ff/a"]),
    ("+/+", ["f/a", "g/b", "/a"], ["f", "f/a/b"]),
    ("#", ["f/a", "x", "a/b/c/d"], ["$other/a"]),
])
def test_wildcard_filter_on_c_matches_publishes_on_a(cluster, filt, matching, other):
    sub = cluster.c.connect("wild-c")
    sub.subscribe([(filt, 1), ("$mark/wild", 1)])
    cluster.converge(cluster.c)
    pub = cluster.a.connect("wild-a")
    for topic in other + matching:
        pub.publish_flow(topic, topic.encode(), qos=1)
    marker = publish_then_marker(pub, "$mark/wild", [])
    got = [p.topic for p in read_until_marker(sub, marker)]
    assert got == matching


def test_delivered_qos_is_minimum_of_publish_and_remote_subscription(cluster, version):
    subs = {}
    for qos in (0, 1, 2):
        subs[qos] = cluster.c.connect("qos-c%d" % qos, version=version)
        assert subs[qos].subscribe([("q/min", qos)]).codes == [qos]
    cluster.converge(cluster.c)
    pub = cluster.a.connect("qos-a", version=version)
    for pub_qos in (0, 1, 2):
        pub.publish_flow("q/min", b"pub%d" % pub_qos, qos=pub_qos)
    for sub_qos, sub in subs.items():
        # MQTT orders messages of one QoS only, so compare as a set
        got = sorted((p.payload, p.qos) for p in collect(sub, 3))
        assert got == [(b"pub%d" % q, min(q, sub_qos)) for q in (0, 1, 2)], "subscription QoS %d" % sub_qos


def test_qos2_exactly_once_across_nodes_despite_publisher_resend(cluster, version):
    sub = cluster.c.connect("eo-c", version=version)
    sub.subscribe([("q/eo", 2)])
    cluster.converge(cluster.c)
    pub = cluster.a.connect("eo-a", version=version)
    for i in range(20):
        pid = pub.publish("q/eo", b"m%d" % i, qos=2)
        assert pub.expect(PUBREC).pid == pid
        pub.publish("q/eo", b"m%d" % i, qos=2, pid=pid, dup=True)  # a resend before PUBREL
        assert pub.expect(PUBREC).pid == pid
        pub.send(build_ack(version, PUBREL, pid))
        assert pub.expect(PUBCOMP).pid == pid
    marker = publish_then_marker(pub, "q/eo", [], qos=2)
    got = read_until_marker(sub, marker)
    assert [(p.payload, p.qos) for p in got] == [(b"m%d" % i, 2) for i in range(20)]


def test_order_of_each_publisher_kept_across_nodes(cluster):
    sub = cluster.c.connect("ord-c")
    sub.subscribe([("ord/#", 1)])
    cluster.converge(cluster.c)
    pub_a = cluster.a.connect("ord-a")
    pub_b = cluster.b.connect("ord-b")
    n = 500
    got, acks = [], {}
    # the subscriber reads while a and b publish, so its session queue never fills
    reader = threading.Thread(target=lambda: got.extend(collect(sub, 2 * n, timeout=60)))
    reader.start()
    writer = threading.Thread(target=lambda: acks.update(
        b=publish_pipelined(pub_b, "ord/b", [b"%d" % i for i in range(n)])))
    writer.start()
    acks["a"] = publish_pipelined(pub_a, "ord/a", [b"%d" % i for i in range(n)])
    writer.join(60)
    reader.join(60)
    assert not writer.is_alive() and not reader.is_alive()
    assert set(acks["a"]) == {0} and set(acks["b"]) == {0}
    assert len(got) == 2 * n
    for topic in ("ord/a", "ord/b"):
        seq = [int(p.payload) for p in got if p.topic == topic]
        assert seq == list(range(n)), "%s out of order or incomplete: %r..." % (topic, seq[:20])


# ---------------------------------------------------------------- one copy


def test_one_copy_per_client_when_several_filters_match_on_the_remote_node(cluster):
    c = cluster.c
    exact = c.connect("dup-exact")
    exact.subscribe([("m/x/y", 1)])
    plus = c.connect("dup-plus")
    plus.subscribe([("m/+/y", 1)])
    hash_ = c.connect("dup-hash")
    hash_.subscribe([("m/#", 1)])
    overlapping = c.connect("dup-both")  # one client, three matching filters: one copy (as on one node)
    overlapping.subscribe([("m/x/y", 1)], props={SUBSCRIPTION_ID: 1})
    overlapping.subscribe([("m/+/y", 1)], props={SUBSCRIPTION_ID: 2})
    overlapping.subscribe([("m/#", 1)], props={SUBSCRIPTION_ID: 3})
    cluster.converge(c)
    forwarded = cluster.a.sys_watch("$SYS/broker/cluster/forwarded")
    before = int(forwarded.fresh())
    pub = cluster.a.connect("dup-a")
    marker = publish_then_marker(pub, "m/x/y", [b"%d" % i for i in range(20)])
    for client in (exact, plus, hash_, overlapping):
        got = read_until_marker(client, marker)
        assert [p.payload for p in got] == [b"%d" % i for i in range(20)], client.client_id
    assert sorted(got[0].props.all(SUBSCRIPTION_ID)) == [1, 2, 3]
    # node a sent node c one copy of each message, however many filters matched there
    assert int(forwarded.fresh()) - before == 21


def test_message_not_forwarded_back_or_onward(cluster):
    subs = {}
    for n in cluster:
        subs[n.name] = n.connect("echo-" + n.name)
        subs[n.name].subscribe([("echo/t", 1)])
    for n in cluster:
        cluster.converge(n)
    watches = {n.name: n.sys_watch("$SYS/broker/cluster/forwarded") for n in cluster}
    before = {name: int(w.fresh()) for name, w in watches.items()}
    pub = cluster.a.connect("echo-a-pub")
    marker = publish_then_marker(pub, "echo/t", [b"%d" % i for i in range(30)])
    for name, sub in subs.items():
        got = read_until_marker(sub, marker)
        assert [p.payload for p in got] == [b"%d" % i for i in range(30)], "subscriber on %s" % name
    after = {name: int(w.fresh()) for name, w in watches.items()}
    # a sent one copy to b and one to c; b and c delivered locally and sent nothing on
    assert after["a"] - before["a"] == 2 * 31
    assert after["b"] == before["b"] and after["c"] == before["c"], (before, after)


def test_unsubscribe_on_c_stops_delivery_from_a(cluster):
    sub = cluster.c.connect("uns-c")
    sub.subscribe([("uns/t", 1), ("uns/marker", 1)])
    cluster.converge(cluster.c)
    pub = cluster.a.connect("uns-a")
    assert pub.publish_flow("uns/t", b"before", qos=1).reason == RC_SUCCESS
    assert sub.recv_publish().payload == b"before"
    sub.unsubscribe("uns/t")
    cluster.converge(cluster.c)
    # no subscriber anywhere now: node a says so in the PUBACK (MQTT 5)
    assert pub.publish_flow("uns/t", b"after", qos=1).reason == RC_NO_MATCHING_SUBSCRIBERS
    marker = publish_then_marker(pub, "uns/t", [b"after2"], marker_topic="uns/marker")
    assert read_until_marker(sub, marker) == []


# ---------------------------------------------------------------- properties and $SYS


def test_v5_properties_survive_the_hop(cluster):
    sub = cluster.c.connect("props-c")
    sub.subscribe([("props/t", 1)], props={SUBSCRIPTION_ID: 77})
    cluster.converge(cluster.c)
    pub = cluster.a.connect("props-a")
    props = [(PAYLOAD_FORMAT, 1), (CONTENT_TYPE, "application/json; charset=utf-8"),
             (RESPONSE_TOPIC, "props/reply/ü"), (CORRELATION_DATA, bytes(range(256))),
             (MESSAGE_EXPIRY, 60),
             (USER_PROPERTY, ("z", "1")), (USER_PROPERTY, ("a", "2")),
             (USER_PROPERTY, ("z", "3")), (USER_PROPERTY, ("", ""))]
    pub.publish_flow("props/t", b'{"k": 1}', qos=1, props=props)
    p = sub.recv_publish()
    assert p.payload == b'{"k": 1}'
    assert p.props.get(PAYLOAD_FORMAT) == 1
    assert p.props.get(CONTENT_TYPE) == "application/json; charset=utf-8"
    assert p.props.get(RESPONSE_TOPIC) == "props/reply/ü"
    assert p.props.get(CORRELATION_DATA) == bytes(range(256))
    assert p.props.all(USER_PROPERTY) == [("z", "1"), ("a", "2"), ("z", "3"), ("", "")]
    assert 0 < p.props.get(MESSAGE_EXPIRY, 0) <= 60
    assert p.props.all(SUBSCRIPTION_ID) == [77], "the subscriber's own node adds its identifier"


def test_message_expiry_counts_on_the_remote_node(cluster):
    # Spec timer: a message expiring while queued on c for an offline session is dropped there.
    sub = cluster.c.connect("exp-c", props={SESSION_EXPIRY: 300})
    sub.subscribe([("exp/t", 1)])
    sub.disconnect()
    cluster.converge(cluster.c)
    pub = cluster.a.connect("exp-a")
    pub.publish_flow("exp/t", b"short", qos=1, props={MESSAGE_EXPIRY: 1})
    pub.publish_flow("exp/t", b"long", qos=1, props={MESSAGE_EXPIRY: 100})
    wait_until(time.monotonic() + 2.2)
    sub = cluster.c.client(5)
    assert sub.connect("exp-c", clean=False, props={SESSION_EXPIRY: 300}).session_present
    p = sub.recv_publish()
    assert p.payload == b"long", "the expired message must not be delivered: %r" % p
    assert p.props.get(MESSAGE_EXPIRY, 0) <= 99


def test_sys_topics_stay_on_their_node(cluster):
    # Five clients on a make a's $SYS/broker/clients/connected differ from c's.
    extra = [cluster.a.connect("sys-extra-%d" % i) for i in range(5)]
    sub = cluster.c.connect("sys-c")
    sub.subscribe([("$SYS/broker/clients/connected", 0), ("$SYS/custom/t", 1), ("sys/marker", 1)])
    cluster.converge(cluster.c)
    local = cluster.a.connect("sys-a-local")
    local.subscribe([("$SYS/custom/t", 1)])
    pub = cluster.a.connect("sys-a-pub")
    pub.publish_flow("$SYS/custom/t", b"node a only", qos=1)
    assert local.recv_publish().payload == b"node a only"  # delivered on its own node...
    marker = publish_then_marker(pub, "sys/marker", [])
    got = read_until_marker(sub, marker)
    assert all(p.topic == "$SYS/broker/clients/connected" for p in got), got  # ...not on c
    # three $SYS updates on c: each is c's own count (at most the subscriber and a probe),
    # never a's (at least the five extra clients)
    values = [int(p.payload) for p in got + collect(sub, 3, timeout=6)]
    assert max(values) < len(extra), values


# ---------------------------------------------------------------- retained


def test_retained_set_on_a_seen_by_new_subscribers_on_b_and_c(cluster):
    pub = cluster.a.connect("ret-a")
    pub.publish_flow("ret/one", b"v1", qos=1, retain=True)
    for n in (cluster.b, cluster.c):
        wait_retained(n, "ret/one", b"v1")
    p = retained_on(cluster.c, "ret/one")
    assert p.retain and p.qos == 1 and p.topic == "ret/one"
    pub.publish_flow("ret/one", b"v2", qos=1, retain=True)
    for n in cluster:
        wait_retained(n, "ret/one", b"v2")


def test_retained_cleared_on_b_gone_everywhere(cluster):
    cluster.a.connect("clr-a").publish_flow("ret/clr", b"keep?", qos=1, retain=True)
    for n in cluster:
        wait_retained(n, "ret/clr", b"keep?")
    cluster.b.connect("clr-b").publish_flow("ret/clr", b"", qos=1, retain=True)
    for n in cluster:
        wait_retained(n, "ret/clr", None)


def test_retained_reaches_a_node_that_joins_late(cluster):
    pub = cluster.a.connect("late-a")
    for i in range(50):
        pub.publish_flow("late/%d" % i, b"v%d" % i, qos=1, retain=True)
    pub.publish_flow("late/0", b"", qos=1, retain=True)  # cleared before d exists
    d = cluster.add_node("d")
    wait_retained(d, "late/49", b"v49")
    sub = d.connect("late-d")
    sub.subscribe([("late/#", 1)])
    got = collect(sub, 49)
    assert sorted(p.topic for p in got) == sorted("late/%d" % i for i in range(1, 50))
    assert all(p.retain and p.payload == b"v" + p.topic[5:].encode() for p in got)
    assert retained_on(d, "late/0") is None


def test_retained_catch_up_after_restart_with_empty_data_dir(cluster):
    pub = cluster.a.connect("wipe-a")
    pub.publish_flow("wipe/before", b"old", qos=1, retain=True)
    wait_retained(cluster.c, "wipe/before", b"old")
    cluster.c.terminate()
    pub.publish_flow("wipe/during", b"new", qos=1, retain=True)
    cluster.restart(cluster.c, wipe=True)
    wait_retained(cluster.c, "wipe/before", b"old")
    wait_retained(cluster.c, "wipe/during", b"new")


def test_retained_changes_missed_while_down_applied_on_restart(cluster):
    pub = cluster.a.connect("miss-a")
    pub.publish_flow("miss/cleared", b"x", qos=1, retain=True)
    pub.publish_flow("miss/replaced", b"old", qos=1, retain=True)
    for t, v in (("miss/cleared", b"x"), ("miss/replaced", b"old")):
        wait_retained(cluster.c, t, v)
    cluster.c.kill()
    pub.publish_flow("miss/cleared", b"", qos=1, retain=True)
    pub.publish_flow("miss/replaced", b"new", qos=1, retain=True)
    pub.publish_flow("miss/added", b"added", qos=1, retain=True)
    cluster.restart(cluster.c)  # on its data directory: it still has the old values
    for n in cluster:  # ...which must not win over the newer writes
        wait_retained(n, "miss/cleared", None)
        wait_retained(n, "miss/replaced", b"new")
        wait_retained(n, "miss/added", b"added")


def test_concurrent_retained_writes_from_a_and_b_converge(cluster):
    writers = {"a": cluster.a.connect("cw-a"), "b": cluster.b.connect("cw-b")}
    n = 200
    barrier = threading.Barrier(2)
    errors = []

    def write(name):
        try:
            barrier.wait(5)
            for i in range(n):
                writers[name].publish_flow("cw/t", b"%s-%d" % (name.encode(), i), qos=1, retain=True)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(name,)) for name in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads), errors
    # last writer wins: every node ends with the same value, the last write of a or of b
    finals = {b"a-%d" % (n - 1), b"b-%d" % (n - 1)}
    values = {}

    def converged():
        for node in cluster:
            p = retained_on(node, "cw/t")
            values[node.name] = p.payload if p else None
        return len(set(values.values())) == 1

    wait_for(converged, 10, interval=0.1, message="one retained value on all nodes")
    assert set(values.values()) <= finals, values


# ---------------------------------------------------------------- shared subscriptions


def test_shared_subscription_members_on_a_and_c_publishes_on_b(cluster, version):
    members = {}
    for n in (cluster.a, cluster.c):
        members[n.name] = n.connect("share-" + n.name, version=version)
        members[n.name].subscribe([("$share/g/sh/t", 1), ("sh/marker", 1)])
        cluster.converge(n)
    pub = cluster.b.connect("share-pub", version=version)
    n_msgs = 40
    marker = publish_then_marker(pub, "sh/t", [b"%d" % i for i in range(n_msgs)], marker_topic="sh/marker")
    got = {name: [int(p.payload) for p in read_until_marker(m, marker)] for name, m in members.items()}
    everything = sorted(got["a"] + got["c"])
    assert everything == list(range(n_msgs)), "each message to exactly one member: %r" % got
    for name, seq in got.items():
        assert seq == sorted(seq), "member on %s out of order" % name
        assert len(seq) >= n_msgs // 4, "round robin should give member on %s a share: %r" % (name, got)


# ---------------------------------------------------------------- wills


def test_will_of_client_on_a_reaches_subscriber_on_c(cluster, version):
    sub = cluster.c.connect("will-sub", version=version)
    sub.subscribe([("will/#", 1)])
    cluster.converge(cluster.c)
    dying = cluster.a.connect("will-a", version=version,
                              will=Will("will/a", b"a is gone", qos=1))
    dying.close()  # socket closed without DISCONNECT
    p = sub.recv_publish(timeout=5)
    assert (p.topic, p.payload, p.qos) == ("will/a", b"a is gone", 1)
