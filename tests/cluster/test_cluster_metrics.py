"""Prometheus metrics of a cluster node: peers, routes, forwarded copies, outbox, readiness."""

import http.client
import tempfile

import pytest

from cluster_fixture import Cluster, collect, free_port, ic, running, wait_for


def scrape(node):
    conn = http.client.HTTPConnection("127.0.0.1", node.metrics_port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        assert r.status == 200
        out = {}
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out
    finally:
        conn.close()


def ready(node):
    conn = http.client.HTTPConnection("127.0.0.1", node.metrics_port, timeout=5)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def metered(request):
    if ic.IS_MOSQUITTO:
        pytest.skip("cluster tests need flockd")
    with tempfile.TemporaryDirectory(prefix="flock-ctest-") as tmpdir:
        c = Cluster(tmpdir)
        for n in c:
            n.metrics_port = free_port()
            n.options["metrics_listen"] = "127.0.0.1:%d" % n.metrics_port
        yield from running(c, request)


def test_cluster_series_follow_peers_routes_and_forwarding(metered):
    a, b = metered.a, metered.b
    for n in metered:
        assert ready(n) == 200
        m = scrape(n)
        assert m['flock_cluster_peers{state="up"}'] == 2 and m['flock_cluster_peers{state="known"}'] == 2

    sub = b.connect("metrics-sub")
    sub.subscribe([("cm/t", 1)])
    metered.converge(b)
    before = scrape(a)["flock_cluster_forwarded_total"]
    pub = a.connect("metrics-pub")
    for i in range(10):
        pub.publish_flow("cm/t", b"%d" % i, qos=1)
    assert len(collect(sub, 10)) == 10
    m = scrape(a)
    assert m["flock_cluster_forwarded_total"] - before >= 10
    assert m['flock_cluster_routes{origin="remote"}'] >= 1
    assert m["flock_cluster_forward_dropped_total"] == 0
    wait_for(lambda: scrape(a)["flock_cluster_outbox_messages"] == 0, 5.0, message="outbox empty once confirmed")

    # A peer that goes away is no longer up.
    metered.c.kill()
    wait_for(lambda: scrape(a)['flock_cluster_peers{state="up"}'] == 1, 15.0, message="c down in a's metrics")
