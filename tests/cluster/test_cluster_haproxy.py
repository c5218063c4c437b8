"""The cluster behind HAProxy (TCP mode, round robin): clients do not know which node they
reach, and still get every message of their topics and keep their sessions."""

import time

import pytest

from cluster_fixture import collect, persistent, publish_pipelined, publish_then_marker, read_until_marker
from haproxy_fixture import HAProxy
from mqtt_raw import *  # noqa: F401,F403


@pytest.fixture
def lb(cluster):
    h = HAProxy(cluster.tmpdir, list(cluster))
    h.start()
    try:
        yield h
    finally:
        h.stop()


def test_thirty_subscribers_and_ten_publishers_through_haproxy_get_every_message(cluster, lb):
    n_topics, per_topic = 10, 20
    subs = []
    for i in range(30):
        version = 5 if i % 2 else 4
        sub = lb.connect("lb-sub-%d" % i, version=version)
        filters = ["lb/%d" % (i % n_topics)]
        if i % 3 == 0:
            filters.append("lb/+")  # overlapping: still one copy per message
        sub.subscribe([(f, 1) for f in filters])
        topics = set(range(n_topics)) if i % 3 == 0 else {i % n_topics}
        subs.append((sub, topics))
    landed = {lb.node_of(sub) for sub, _ in subs}
    assert landed == {"a", "b", "c"}, "round robin should spread the clients: %r" % landed
    cluster.converge_all()

    pubs = [lb.connect("lb-pub-%d" % j, version=5) for j in range(n_topics)]
    assert {lb.node_of(p) for p in pubs} == {"a", "b", "c"}
    markers = {}
    for j, pub in enumerate(pubs):
        reasons = publish_pipelined(pub, "lb/%d" % j, [b"%d:%d" % (j, k) for k in range(per_topic)])
        assert set(reasons) == {RC_SUCCESS}
        markers[j] = publish_then_marker(pub, "lb/%d" % j, [])

    for i, (sub, topics) in enumerate(subs):
        got = read_until_markers(sub, {markers[j] for j in topics})
        assert set(got) <= topics, "subscriber %d got topics it did not subscribe: %r" % (i, set(got))
        for j in topics:
            seq = [int(p.payload.split(b":")[1]) for p in got.get(j, [])]
            assert seq == list(range(per_topic)), "subscriber %d, topic lb/%d: %r" % (i, j, seq)


def read_until_markers(sub, markers, timeout=20.0):
    """Messages by topic number until every marker in `markers` arrived (each publisher's
    marker comes after its messages; other publishers' messages interleave)."""
    deadline = time.monotonic() + timeout
    left = set(markers)
    got = {}
    while left:
        if time.monotonic() >= deadline:
            raise AssertionError("markers %r not received within %.0fs" % (left, timeout))
        try:
            p = sub.recv_publish(max(0.01, deadline - time.monotonic()))
        except Timeout:
            continue
        if p.payload in left:
            left.discard(p.payload)
            continue
        got.setdefault(int(p.topic.split("/")[1]), []).append(p)
    return got


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_persistent_session_reconnecting_through_haproxy_to_another_node(cluster, lb, version):
    first = lb.connect("lb-persist", version=version, **persistent(version))
    home = lb.node_of(first)
    first.subscribe([("lbs/t", 1)])
    first.disconnect()
    cluster.converge(cluster[home])
    pub = cluster[home].connect("lbs-pub")  # any node would do; this one is where it lives
    publish_pipelined(pub, "lbs/t", [b"%d" % i for i in range(50)])

    # Round robin: after a connection that lands on `home`, the next one lands elsewhere.
    for i in range(3):
        spacer = lb.connect("lb-spacer-%d" % i)
        if lb.node_of(spacer) == home:
            break
    else:
        raise AssertionError("no connection landed on %s" % home)
    again = lb.client(version)
    ack = again.connect("lb-persist", **persistent(version))
    assert ack.reason == 0
    now_on = lb.node_of(again)
    assert now_on != home
    assert ack.session_present is True, "the session must follow the client to %s" % now_on
    got = collect(again, 50)
    assert [int(p.payload) for p in got] == list(range(50))
    cluster.converge(cluster[now_on])
    marker = publish_then_marker(pub, "lbs/t", [b"after"])
    assert [p.payload for p in read_until_marker(again, marker)] == [b"after"]
