"""A netsplit: n3 is cut off from n1 and n2, both sides keep serving, and after the link comes
back routes, retained messages and a client id used on both sides converge.

Every client lives in the namespace of the node it talks to, so it keeps its node during the
split (see netns.py for the network).
"""

import time

import mqtt_raw
from flock_nodes import wait_for, wait_peers
from mqtt_checks import deliver_everywhere, read_until, retained_view

DUP_ID = "dup-client"
PERSISTENT = {"props": {mqtt_raw.SESSION_EXPIRY: 300}}  # the session outlives its connection
SPLIT_SEEN_S = 20     # the failure timeout is 1 s; generous for a loaded machine
CONVERGE_S = 30


def wall_ms():
    return time.time_ns() // 1_000_000


def after_wall_ms(t):
    """Wait until the wall clock is past millisecond t: the nodes' hybrid clocks (wall
    milliseconds, one per node, not synchronised during the split) then stamp a later write
    with a later time, so 'the later write wins' is well defined."""
    wait_for(lambda: wall_ms() > t + 1, 1.0, interval=0.001, message="the clock to advance")


def timed_publish(client, topic, payload, retain=False):
    start = time.monotonic()
    ack = client.publish_flow(topic, payload, qos=1, retain=retain)
    assert ack.reason < 0x80, "PUBACK refused %s: %r" % (topic, ack)
    return time.monotonic() - start


def test_netsplit_both_sides_serve_then_converge(cluster3):
    net, n1, n2, n3 = cluster3.net, cluster3[1], cluster3[2], cluster3[3]
    nodes = cluster3.nodes

    # 1. Three nodes join; subscribers to t/# on every node; routes replicate everywhere.
    wait_peers(nodes, "up", 20)
    sub1, sub2, sub3 = (n.connect("sub-" + n.name) for n in (n1, n2, n3))
    for s in (sub1, sub2, sub3):
        assert s.subscribe([("t/#", 1)]).codes == [1]
    pub1, pub2, pub3 = (n.connect("pub-" + n.name) for n in (n1, n2, n3))
    subs = {"sub1": sub1, "sub2": sub2, "sub3": sub3}
    deliver_everywhere(pub1, subs, "t/joined-n1", CONVERGE_S)
    deliver_everywhere(pub3, subs, "t/joined-n3", CONVERGE_S)
    # Retained messages every node has before the split, for each side to clear during it.
    timed_publish(pub2, "r/v", b"v-before", retain=True)
    timed_publish(pub2, "r/w", b"w-before", retain=True)
    before = {"r/v": b"v-before", "r/w": b"w-before"}
    last = {}

    def views_are(expected, tag):
        for k, want in expected.items():
            last[k] = retained_view(nodes[k], tag)
        return all(last[k] == want for k, want in expected.items())
    try:
        wait_for(lambda: views_are({1: before, 2: before, 3: before}, "joined"), CONVERGE_S,
                 interval=0.1)
    except AssertionError as e:
        raise AssertionError("%s: retained before the split: %r" % (e, last)) from None

    # 2. Cut n3 off. Each side declares the other down, and only the other.
    marks = cluster3.marks()
    cut_at = time.monotonic()
    net.cut(3)
    for k in (1, 2):
        nodes[k].wait_log(r"cluster: peer n3 down: ", SPLIT_SEEN_S, since=marks[k])
        n3.wait_log(r"cluster: peer n%d down: " % k, SPLIT_SEEN_S, since=marks[3])
    split_s = time.monotonic() - cut_at

    # Both sides serve: the majority side among itself, n3 on its own. PUBACKs do not wait for
    # the unreachable node (its routes are gone): well under the 2 s cluster ack timeout.
    deliver_everywhere(pub1, {"sub1": sub1, "sub2": sub2}, "t/split-n1", CONVERGE_S)
    deliver_everywhere(pub2, {"sub1": sub1, "sub2": sub2}, "t/split-n2", CONVERGE_S)
    deliver_everywhere(pub3, {"sub3": sub3}, "t/split-n3", CONVERGE_S)
    for client, name, local in ((pub1, "n1", (sub1, sub2)), (pub3, "n3", (sub3,))):
        took = timed_publish(client, "t/split-ack-" + name, b"quick")
        assert took < 1.5, "PUBACK on %s took %.2fs during the split" % (name, took)
        for s in local:
            read_until(s, "t/split-ack-" + name)

    # 3. During the split: retained writes on each side, r/z on both (n3 later), a clear on
    # each side (r/w on n1, r/v on n3), and one client id connected on both sides (n3 later).
    timed_publish(pub1, "r/x", b"x-from-n1", retain=True)
    timed_publish(pub1, "r/w", b"", retain=True)
    timed_publish(pub3, "r/v", b"", retain=True)
    timed_publish(pub1, "r/z", b"z-from-n1", retain=True)
    z_n1_written = wall_ms()
    timed_publish(pub3, "r/y", b"y-from-n3", retain=True)

    dup1 = n1.connect(DUP_ID, **PERSISTENT)
    assert dup1.subscribe([("dup/#", 1)]).codes == [1]
    after_wall_ms(wall_ms())
    dup3 = n3.connect(DUP_ID, **PERSISTENT)
    assert dup3.subscribe([("dup/#", 1), ("only-n3/#", 1)]).codes == [1, 1]
    dup1.ping()  # n3's connect cannot reach n1: both are connected while split
    dup3.ping()

    after_wall_ms(z_n1_written)
    timed_publish(pub3, "r/z", b"z-from-n3", retain=True)

    # The split is real: each side sees only its own retained writes.
    majority = {"r/v": b"v-before", "r/x": b"x-from-n1", "r/z": b"z-from-n1"}
    split_views = {1: majority, 2: majority,
                   3: {"r/w": b"w-before", "r/y": b"y-from-n3", "r/z": b"z-from-n3"}}
    try:
        wait_for(lambda: views_are(split_views, "split"), CONVERGE_S, interval=0.1)
    except AssertionError as e:
        raise AssertionError("%s: retained during the split: %r" % (e, last)) from None

    # Nobody on the majority side gave up on its neighbour.
    for k, other in ((1, 2), (2, 1)):
        assert b"cluster: peer n%d down" % other not in nodes[k].log_bytes()[marks[k]:], \
            "n%d declared n%d down during a split that did not separate them" % (k, other)

    # 4. Heal: every node sees the others up again.
    marks = cluster3.marks()
    net.heal(3)
    healed_at = time.monotonic()
    for k in (1, 2):
        nodes[k].wait_log(r"cluster: peer n3 up ", CONVERGE_S, since=marks[k])
        n3.wait_log(r"cluster: peer n%d up " % k, CONVERGE_S, since=marks[3])
    rejoin_s = time.monotonic() - healed_at

    # The duplicate client id: the older connection (n1) is kicked with 0x8E (session taken
    # over); the newer one on n3 stays.
    got = dup1.wait_closed(timeout=CONVERGE_S)
    reasons = [p.reason for p in got if p.type == mqtt_raw.DISCONNECT]
    assert reasons == [0x8E], "n1's older %s: expected DISCONNECT 0x8E, got %r" % (DUP_ID, got)
    dup3.ping()

    # Routes converge: a publish on any node reaches every subscriber once, the winner of the
    # client id included (its route now on every node, the loser's gone).
    healed = [deliver_everywhere(pub1, subs, "t/healed-n1", CONVERGE_S),
              deliver_everywhere(pub3, subs, "t/healed-n3", CONVERGE_S),
              deliver_everywhere(pub2, subs, "t/healed-n2", CONVERGE_S),
              deliver_everywhere(pub1, {DUP_ID: dup3}, "dup/healed-n1", CONVERGE_S),
              deliver_everywhere(pub2, {DUP_ID: dup3}, "dup/healed-n2", CONVERGE_S),
              deliver_everywhere(pub2, {DUP_ID: dup3}, "only-n3/healed-n2", CONVERGE_S)]
    routes_s = max(took for _, took in healed)
    # Messages published once the sides had given up on each other stay on their side: the
    # new streams bring none across (they would come before the first probe), and their own
    # side, which already got them, gets none again.
    late = [(name, p.topic) for got, _ in healed[:3] for name, msgs in got.items()
            for p in msgs if p.topic.startswith("t/split-")]
    assert not late, "split-time messages delivered after healing: %r" % late

    # Retained converge: every node has both sides' writes, r/z the later one (n3's), and
    # neither cleared topic came back from the side that still had it.
    merged = {"r/x": b"x-from-n1", "r/y": b"y-from-n3", "r/z": b"z-from-n3"}
    try:
        wait_for(lambda: views_are({1: merged, 2: merged, 3: merged}, "healed"), CONVERGE_S,
                 interval=0.1)
    except AssertionError as e:
        raise AssertionError("%s: retained after healing: %r" % (e, last)) from None
    retained_s = time.monotonic() - healed_at

    # Still exactly one connection with the id: n3's, which nothing kicked meanwhile.
    dup3.ping()
    assert not dup1.is_open()

    # The loser's session went with its connection: resumed on n1 now, the client gets the
    # winner's session (moved from n3: its subscription only-n3/# and a message queued in it
    # while offline), not n1's stale copy.
    dup3.disconnect()
    timed_publish(pub2, "only-n3/queued", b"queued on n3")
    back = n1.connect(DUP_ID, clean=False, **PERSISTENT)
    assert back.connack.session_present, "the winner's session did not come to n1"
    timed_publish(pub1, "only-n3/marker", b"marker")
    got = [(p.topic, p.payload) for p in read_until(back, "only-n3/marker")]
    assert got == [("only-n3/queued", b"queued on n3"), ("only-n3/marker", b"marker")], got
    print("split seen %.2fs after the cut; after healing: peers up %.2fs, routes %.2fs, "
          "retained %.2fs" % (split_s, rejoin_s, routes_s, retained_s))


def test_copies_sent_as_the_split_begins_arrive_after_healing(cluster3):
    """docs/clustering.md, Netsplit: QoS 1/2 copies sent shortly before the split are resent
    after it heals, and messages published once the split is noticed stay on their side."""
    net, n1, n3 = cluster3.net, cluster3[1], cluster3[3]
    wait_peers(cluster3.nodes, "up", 20)
    sub1, sub3 = n1.connect("sub-n1"), n3.connect("sub-n3")
    for s in (sub1, sub3):
        assert s.subscribe([("t/#", 2)]).codes == [2]
    pub1 = n1.connect("pub-n1")
    deliver_everywhere(pub1, {"sub1": sub1, "sub3": sub3}, "t/joined", CONVERGE_S)

    # Cut, then publish at once, all packets before any ack: n1 still counts n3 as up (it
    # notices after the 1 s failure timeout), so it sends n3 a copy of each, which the dead
    # link swallows. The acks come when n1 gives up on n3.
    marks = cluster3.marks()
    net.cut(3)
    in_flight = [("t/in-flight/0", 1), ("t/in-flight/1", 1), ("t/in-flight/2", 2)]
    pids = [pub1.publish(topic, b"before the split is noticed", qos=qos)
            for topic, qos in in_flight]
    last_sent_ms = wall_ms()
    # A resume meanwhile asks the peers for the session; n3 cannot answer, and the connect waits
    # only until n3 is declared down, not the whole 3 s claim timeout.
    resumer = n1.client()
    resume_sent = time.monotonic()
    resumer.send_connect("resumed-at-the-split", clean=False, **PERSISTENT)
    for (topic, qos), pid in zip(in_flight, pids):
        ack = pub1.expect_ack(mqtt_raw.PUBACK if qos == 1 else mqtt_raw.PUBREC, pid, timeout=10)
        assert ack.reason < 0x80, "%s refused: %r" % (topic, ack)
        if qos == 2:
            pub1.send(mqtt_raw.build_ack(5, mqtt_raw.PUBREL, pid))
            pub1.expect_ack(mqtt_raw.PUBCOMP, pid, timeout=10)
    connack = resumer.expect(mqtt_raw.CONNACK, timeout=10)
    resume_s = time.monotonic() - resume_sent
    assert (connack.reason, connack.session_present) == (0, False), connack
    assert resume_s < 2.5, "a resume on n1 waited %.2fs for unreachable n3" % resume_s
    print("resume at the split waited %.2fs" % resume_s)
    down = n1.wait_log(r"cluster: peer n3 down: ", SPLIT_SEEN_S, since=marks[1])
    n3.wait_log(r"cluster: peer n1 down: ", SPLIT_SEEN_S, since=marks[3])
    margin = n1.logged_at_ms(down) - last_sent_ms
    assert margin > 100, ("n1 declared n3 down only %d ms after the publishes were sent: too "
                          "close to tell whether copies went out" % margin)
    read_until(sub1, in_flight[-1][0])

    # Published with the split noticed: n1 has no route to n3 now; this one stays here.
    timed_publish(pub1, "t/after-down", b"stays on n1")
    read_until(sub1, "t/after-down")

    marks = cluster3.marks()
    net.heal(3)
    n1.wait_log(r"cluster: peer n3 up ", CONVERGE_S, since=marks[1])
    n3.wait_log(r"cluster: peer n1 up ", CONVERGE_S, since=marks[3])
    # The resent copies travel ahead of the probes on n1's new stream to n3.
    got, _ = deliver_everywhere(pub1, {"sub1": sub1, "sub3": sub3}, "t/healed", CONVERGE_S)
    at_n3 = [p.topic for p in got["sub3"]]
    for topic, qos in in_flight:
        assert at_n3.count(topic) == 1, "n3's subscriber got %s %d times after healing: %r" % (
            topic, at_n3.count(topic), at_n3)
    assert [p.qos for p in got["sub3"] if p.topic == in_flight[2][0]] == [2]
    assert "t/after-down" not in at_n3, "a message published during the split crossed over"
    assert not [p for p in got["sub1"] if p.topic.startswith(("t/in-flight", "t/after-down"))], \
        "n1's subscriber got a message again after healing: %r" % got["sub1"]
