"""Prometheus metrics of a cluster node: peers, routes, forwarded copies, outbox, readiness."""

import http.client
import shutil
import subprocess
import tempfile

import pytest

from cluster_fixture import Cluster, collect, free_port, ic, running, wait_for


def exposition(node):
    conn = http.client.HTTPConnection("127.0.0.1", node.metrics_port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        r = conn.getresponse()
        assert r.status == 200
        return r.read().decode()
    finally:
        conn.close()


def scrape(node):
    out = {}
    for line in exposition(node).splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


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
    first = scrape(a)
    before = first["flock_cluster_forwarded_total"]
    to_c = 'flock_cluster_peer_forwarded_total{peer="%s"}' % metered.c.name
    from_peer = 'flock_delivery_latency_seconds_count{origin="peer"}'
    timed_on_b = scrape(b)[from_peer]  # converge()'s probes count too
    pub = a.connect("metrics-pub")
    for i in range(10):
        pub.publish_flow("cm/t", b"%d" % i, qos=1)
    assert len(collect(sub, 10)) == 10
    m = scrape(a)
    assert m["flock_cluster_forwarded_total"] - before >= 10
    assert m['flock_cluster_routes{origin="remote"}'] >= 1
    assert m["flock_cluster_forward_dropped_total"] == 0
    wait_for(lambda: scrape(a)["flock_cluster_outbox_messages"] == 0, 5.0, message="outbox empty once confirmed")
    # Per peer: everything went to b, nothing to c (no route there).
    m = scrape(a)
    assert m['flock_cluster_peer_forwarded_total{peer="%s"}' % b.name] >= 10
    assert m[to_c] == first[to_c], "c has no route for cm/t"
    assert m['flock_cluster_peer_outbox_messages{peer="%s"}' % b.name] == 0
    # a applied b's route change for cm/t (and c's probe routes) and timed it.
    lag = 'flock_cluster_route_lag_seconds_count{peer="%s"}' % b.name
    assert m[lag] >= 1
    assert m['flock_cluster_route_lag_seconds_sum{peer="%s"}' % b.name] < 5 * m[lag]
    # b timed the forwarded deliveries from a's arrival (cross-node latency).
    mb = scrape(b)
    assert mb[from_peer] - timed_on_b == 10
    assert mb['flock_delivery_latency_seconds_count{origin="local"}'] == 0
    assert 0 < mb['flock_delivery_latency_seconds_sum{origin="peer"}'] < 10

    # The cluster series (per-peer histograms included) pass Prometheus' linter.
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    r = subprocess.run([promtool, "check", "metrics"], input=exposition(a).encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, "promtool check metrics:\n%s%s" % (r.stdout.decode(), r.stderr.decode())

    # A peer that goes away is no longer up.
    metered.c.kill()
    wait_for(lambda: scrape(a)['flock_cluster_peers{state="up"}'] == 1, 15.0, message="c down in a's metrics")
