"""MQTT observations for cluster tests: delivery counted per subscriber, retained seen per node."""

import collections
import time

import mqtt_raw


def read_until(sub, topic, timeout=10.0):
    """Every PUBLISH sub gets (acked) up to and including one on `topic`."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no message on %s within %.0fs (got %r)" % (topic, timeout, got))
        try:
            p = sub.recv_publish(left)
        except mqtt_raw.Timeout:
            continue
        got.append(p)
        if p.topic == topic:
            return got


def read_available(sub, wait):
    """The PUBLISHes that arrive within `wait` seconds of asking, plus any right behind them."""
    got = []
    try:
        while True:
            got.append(sub.recv_publish(wait if not got else 0.01))
    except mqtt_raw.Timeout:
        return got


def deliver_everywhere(pub, subs, prefix, timeout=30.0):
    """Prove pub's publishes reach every subscriber in `subs` (name -> client subscribed to
    prefix/#), each exactly once.

    Routes travel between nodes on their own, so first QoS 1 probes go out until every
    subscriber has seen one (that is when routes have converged); then one final message and a
    marker: each subscriber must get the final message once and nothing twice. Returns what
    each got ({name: [PUBLISH, ...]}, up to the marker) and the seconds the probes took."""
    probe, final, marker = prefix + "/probe", prefix + "/final", prefix + "/marker"
    got = {name: [] for name in subs}
    pending = set(subs)
    start = time.monotonic()
    i = 0
    while pending:
        if time.monotonic() - start > timeout:
            raise AssertionError("after %.0fs of probes on %s, %s got none (got: %r)"
                                 % (timeout, probe, sorted(pending), got))
        i += 1
        pub.publish_flow(probe, b"probe-%d" % i, qos=1)
        for name in sorted(pending):
            for p in read_available(subs[name], 0.1):
                got[name].append(p)
                if p.topic == probe:
                    pending.discard(name)
    took = time.monotonic() - start
    pub.publish_flow(final, b"final", qos=1)
    pub.publish_flow(marker, b"marker", qos=1)
    for name, sub in subs.items():
        got[name] += read_until(sub, marker)
        seen = collections.Counter((p.topic, p.payload) for p in got[name])
        assert seen[(final, b"final")] == 1, \
            "%s got %s %d times: %r" % (name, final, seen[(final, b"final")], got[name])
        twice = sorted(m for m, n in seen.items() if n > 1)
        assert not twice, "%s got messages more than once: %r" % (name, twice)
    return got, took


def retained_view(node, tag):
    """The retained messages under r/# a fresh subscriber on `node` gets: {topic: payload}.

    A marker published after the SUBACK arrives behind every retained message the subscribe
    sent, so reading up to it reads them all."""
    cid = "view-%s-%s-%d" % (node.name, tag, time.monotonic_ns())
    c = node.connect(cid)
    c.subscribe([("r/#", 1), ("m/" + cid, 1)])
    c.publish_flow("m/" + cid, b"end", qos=1)
    msgs = [p for p in read_until(c, "m/" + cid) if p.topic != "m/" + cid]
    c.disconnect()
    topics = [p.topic for p in msgs]
    assert len(topics) == len(set(topics)), "%s sent a retained topic twice: %r" % (node.name, msgs)
    assert all(p.retain for p in msgs), "%s: retained messages without the retain flag: %r" % (
        node.name, msgs)
    return {p.topic: p.payload for p in msgs}
