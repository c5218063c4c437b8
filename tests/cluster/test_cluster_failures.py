"""A node dies (kill -9) under load: the others keep serving, its routes go after the failure
timeout, and restarted on its data directory it rejoins with its sessions."""

import threading
import time

import pytest

from cluster_fixture import collect, persistent, publish_pipelined, wait_for, wait_until
from mqtt_raw import *  # noqa: F401,F403

ACK_TIMEOUT_MS = 1000
FAILURE_TIMEOUT_MS = 1000


class Publisher(threading.Thread):
    """QoS 1 publishes at `rate` per second until stopped; records each acked sequence number
    with the time its PUBACK took."""

    def __init__(self, client, topic, rate):
        super().__init__(daemon=True)
        self.client, self.topic, self.period = client, topic, 1.0 / rate
        self.stop_flag = threading.Event()
        self.acked = []       # (seq, ack time, latency)
        self.error = None

    def run(self):
        seq = 0
        next_at = time.monotonic()
        deadline = next_at + 60  # bounded whatever happens
        try:
            while not self.stop_flag.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                ack = self.client.publish_flow(self.topic, b"%d" % seq, qos=1, timeout=10)
                now = time.monotonic()
                assert ack.reason == RC_SUCCESS, ack
                self.acked.append((seq, now, now - sent))
                seq += 1
                next_at += self.period
                wait_until(next_at)
        except Exception as e:  # reported by the test
            self.error = e

    def acks_after(self, t):
        return sum(1 for _, at, _ in self.acked if at > t)


class Subscriber(threading.Thread):
    """Reads and acks everything until stopped (or its node dies)."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.stop_flag = threading.Event()
        self.got = []
        self.error = None

    def run(self):
        deadline = time.monotonic() + 90
        while not self.stop_flag.is_set() and time.monotonic() < deadline:
            try:
                p = self.client.recv_publish(0.2)
            except Timeout:
                continue
            except (ConnectionClosed, OSError):
                return  # its node was killed
            except Exception as e:
                self.error = e
                return
            self.got.append((p.topic, int(p.payload)))

    def seqs(self, topic):
        return [s for t, s in self.got if t == topic]


@pytest.mark.cluster(cluster_ack_timeout_ms=ACK_TIMEOUT_MS, cluster_failure_timeout_ms=FAILURE_TIMEOUT_MS)
def test_kill_c_under_load_then_restart_it_with_its_sessions(cluster):
    a, b, c = cluster.a, cluster.b, cluster.c
    # Sessions that live on c, with queued messages, for after its restart.
    for cid in ("stay-on-c", "move-to-a"):
        s = c.connect(cid, **persistent(5))
        s.subscribe([("queued/" + cid, 1)])
        s.disconnect()
    only_c = c.connect("only-c")
    only_c.subscribe([("only/c", 0)])
    subs = {n.name: Subscriber(n.connect("load-sub-" + n.name)) for n in cluster}
    for s in subs.values():
        s.client.subscribe([("load/#", 1)])
    cluster.converge_all()

    probe = a.connect("probe-pub")
    assert probe.publish_flow("only/c", b"x", qos=1).reason == RC_SUCCESS
    for cid in ("stay-on-c", "move-to-a"):
        reasons = publish_pipelined(probe, "queued/" + cid, [b"%d" % i for i in range(20)])
        assert set(reasons) == {RC_SUCCESS}  # acked: durable on c
    routes = a.sys_watch("$SYS/broker/cluster/routes/remote")
    routes_with_c = int(routes.fresh())

    pubs = [Publisher(a.connect("load-pub-%d" % i), "load/p%d" % i, rate=100) for i in range(2)]
    for t in list(subs.values()) + pubs:
        t.start()
    try:
        wait_for(lambda: all(len(p.acked) >= 50 for p in pubs), 10, message="load to run")
        killed_at = time.monotonic()
        c.kill()
        # publishers are not held up: acks keep coming at their rate
        wait_for(lambda: all(p.acks_after(killed_at) >= 100 for p in pubs) or any(p.error for p in pubs),
                 10, message="acks after the kill")
        # c's routes go after the failure timeout: a publish only c wanted has no subscriber
        wait_for(lambda: probe.publish_flow("only/c", b"x", qos=1).reason == RC_NO_MATCHING_SUBSCRIBERS,
                 FAILURE_TIMEOUT_MS / 1000.0 + 5, interval=0.05, message="c's routes to go")
        gone_after = time.monotonic() - killed_at
        routes.wait(lambda v: int(v) < routes_with_c, 5, what="fewer remote routes on a")
        wait_for(lambda: all(p.acks_after(killed_at + gone_after) >= 20 for p in pubs), 10,
                 message="acks after c's routes went")
    finally:
        for p in pubs:
            p.stop_flag.set()
        for p in pubs:
            p.join(15)
    assert not any(p.error for p in pubs), [p.error for p in pubs]
    assert gone_after >= FAILURE_TIMEOUT_MS / 1000.0 * 0.9, "routes dropped before the failure timeout"

    # Every acked message reached the subscribers on the surviving nodes, once, in order.
    for i, p in enumerate(pubs):
        acked = [seq for seq, _, _ in p.acked]
        topic = "load/p%d" % i
        for name in ("a", "b"):
            wait_for(lambda: len(subs[name].seqs(topic)) >= len(acked), 15,
                     message="subscriber on %s to get %d messages of %s" % (name, len(acked), topic))
            assert subs[name].seqs(topic) == acked, "subscriber on %s, %s" % (name, topic)
        worst = max(lat for _, _, lat in p.acked)
        assert worst < ACK_TIMEOUT_MS / 1000.0 + 1.0, "a PUBACK took %.2fs" % worst
    for s in subs.values():
        s.stop_flag.set()
        s.join(5)
        assert s.error is None, s.error

    # c comes back on its data directory and is part of the cluster again
    cluster.start_again(c)
    for n in (a, b):
        n.wait_log(r"cluster: peer c up ", count=2)
    stay, present = _resume(c, "stay-on-c")
    assert present is True
    assert [int(p.payload) for p in collect(stay, 20)] == list(range(20))
    moved, present = _resume(a, "move-to-a")
    assert present is True, "the session on c must move to a"
    assert [int(p.payload) for p in collect(moved, 20)] == list(range(20))
    cluster.converge(a)
    probe.publish_flow("queued/move-to-a", b"live", qos=1)
    assert moved.recv_publish().payload == b"live"


def _resume(node, cid):
    cl = node.client(5)
    ack = cl.connect(cid, **persistent(5))
    assert ack.reason == 0, ack
    return cl, ack.session_present


@pytest.mark.cluster(cluster_failure_timeout_ms=5000)
def test_sigterm_of_c_hands_its_sessions_over_and_leaves_at_once(cluster):
    """A rolling restart of c: its offline session lives on another node while c is down,
    keeps queueing, and comes back to c when the client resumes there."""
    a, c = cluster.a, cluster.c
    sub = c.connect("roll-c", **persistent(5))
    sub.subscribe([("roll/t", 1)])
    sub.disconnect()
    only_c = c.connect("roll-only-c")  # a clean session: its route goes with c
    only_c.subscribe([("roll/only-c", 1)])
    live = RawClient(c.port, version=5)  # not c's client list: it is read after c stopped
    live.connect("roll-live")
    cluster.converge(c)
    pub = a.connect("roll-pub")
    assert pub.publish_flow("roll/t", b"1", qos=1).reason == RC_SUCCESS
    assert pub.publish_flow("roll/only-c", b"x", qos=1).reason == RC_SUCCESS

    stopped_at = time.monotonic()
    c.terminate()
    got = live.wait_closed()
    assert [(p.type, p.reason) for p in got] == [(DISCONNECT, 0x8B)], "server shutting down: %r" % got
    # c said goodbye: its routes go at once, well before the 5 s failure timeout
    wait_for(lambda: pub.publish_flow("roll/only-c", b"x", qos=1).reason == RC_NO_MATCHING_SUBSCRIBERS,
             3, interval=0.05, message="c's routes to go")
    assert time.monotonic() - stopped_at < 5
    # ...but its persistent session went to a or b first and keeps queueing there
    cluster.converge_all()
    assert pub.publish_flow("roll/t", b"2", qos=1).reason == RC_SUCCESS

    cluster.start_again(c)
    assert pub.publish_flow("roll/t", b"3", qos=1).reason == RC_SUCCESS
    back, present = _resume(c, "roll-c")
    assert present is True
    assert [p.payload for p in collect(back, 3)] == [b"1", b"2", b"3"]
    cluster.converge(c)
    marker = b"marker"
    pub.publish_flow("roll/t", marker, qos=1)
    assert back.recv_publish().payload == marker, "nothing twice"
