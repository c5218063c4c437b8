"""$SYS topics, published every --sys-interval seconds."""

import re
import time

import pytest

from mqtt_raw import *  # noqa: F401,F403

pytestmark = pytest.mark.broker(sys_interval=1)

REQUIRED = ["$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected",
            "$SYS/broker/messages/received"]


def collect_sys(client, want, timeout=5.0, pred=None):
    """Read $SYS publishes until every topic in `want` has a value satisfying pred."""
    values = {}
    deadline = time.monotonic() + timeout
    while True:
        if all(t in values and (pred is None or pred(t, values[t])) for t in want):
            return values
        left = deadline - time.monotonic()
        assert left > 0, "missing $SYS topics %r; got %r" % (
            [t for t in want if t not in values], sorted(values))
        try:
            p = client.recv_publish(left)
        except Timeout:
            continue
        values[p.topic] = p.payload.decode()


def first_int(text):
    m = re.search(r"\d+", text)
    assert m, "no number in %r" % text
    return int(m.group())


def test_sys_topics_published(broker, version):
    c = broker.connect("sys1", version=version)
    c.subscribe([("$SYS/#", 0)])
    # values may first arrive as retained start-up values; wait for this client to be counted
    values = collect_sys(c, REQUIRED, pred=lambda t, v: (
        first_int(v) >= 1 if t.endswith("clients/connected") else bool(v.strip())))
    assert values["$SYS/broker/version"].strip()
    first_int(values["$SYS/broker/uptime"])
    first_int(values["$SYS/broker/messages/received"])


def test_sys_uptime_advances(broker):
    c = broker.connect("sys2", version=4)
    c.subscribe([("$SYS/broker/uptime", 0)])
    first = first_int(collect_sys(c, ["$SYS/broker/uptime"])["$SYS/broker/uptime"])
    collect_sys(c, ["$SYS/broker/uptime"], timeout=5,
                pred=lambda t, v: first_int(v) > first)


def test_sys_clients_connected_counts_clients(broker):
    c = broker.connect("sys3", version=4)
    c.subscribe([("$SYS/broker/clients/connected", 0)])
    before = first_int(collect_sys(c, ["$SYS/broker/clients/connected"])["$SYS/broker/clients/connected"])
    extra = [broker.connect("sys3-%d" % i, version=4) for i in range(3)]
    collect_sys(c, ["$SYS/broker/clients/connected"], timeout=5,
                pred=lambda t, v: first_int(v) >= before + 3)
    assert extra


def test_sys_messages_received_counts_publishes(broker):
    c = broker.connect("sys4", version=4)
    c.subscribe([("$SYS/broker/messages/received", 0)])
    key = "$SYS/broker/messages/received"
    before = first_int(collect_sys(c, [key])[key])
    pub = broker.connect("sys4-p", version=4)
    for i in range(20):
        pub.publish_flow("sys/t", b"x", qos=1)
    collect_sys(c, [key], timeout=5, pred=lambda t, v: first_int(v) >= before + 20)
