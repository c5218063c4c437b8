"""The operator's HTTP endpoint: Prometheus /metrics, /healthz, /readyz (--metrics-listen).

Counters are checked against traffic the test made, the exposition against `promtool check
metrics`, and a real Prometheus server scrapes a running flockd.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import BROKER_PATH, IS_MOSQUITTO, Broker, free_port, running, wait_for
from mqtt_raw import *  # noqa: F401,F403

pytestmark = pytest.mark.skipif(IS_MOSQUITTO, reason="flockd --metrics-listen")

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class MetricsBroker(Broker):
    def __init__(self, workers, tmpdir, **options):
        self.metrics_port = free_port()
        options.setdefault("metrics_listen", "127.0.0.1:%d" % self.metrics_port)
        super().__init__(workers, options, tmpdir)

    def http(self, path, method="GET", timeout=5.0):
        """(status, body) of one request to the metrics endpoint."""
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=timeout)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def scrape(self):
        status, body = self.http("/metrics")
        assert status == 200, "GET /metrics: %d %s" % (status, body)
        return body


def samples(text):
    """{'name{labels}': value} of an exposition (labels as written, sorted by prometheus-cpp)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


@pytest.fixture(params=[1, 4], ids=["workers1", "workers4"])
def broker(request):
    with tempfile.TemporaryDirectory(prefix="flock-metrics-") as tmpdir:
        yield from running(MetricsBroker(request.param, tmpdir), request)


def wait_for_sample(b, key, want, timeout=5.0):
    """Counters are summed at scrape time, but a worker may still be handling the last packet."""
    seen = {}

    def ok():
        seen.update(samples(b.scrape()))
        return seen.get(key) == want
    try:
        wait_for(ok, timeout, message="%s == %r" % (key, want))
    except AssertionError as e:
        raise AssertionError("%s (last scrape: %r)" % (e, seen.get(key))) from None


def test_metrics_count_the_traffic(broker):
    sub = broker.connect("m-sub")
    sub.subscribe([("m/t", 1)])
    pub = broker.connect("m-pub", version=4)
    for i in range(3):
        pub.publish_flow("m/t", b"x%d" % i, qos=1)
    pub.publish_flow("m/r", b"kept", qos=0, retain=True)
    for _ in range(3):
        sub.recv_publish()
    # MQTT 3.1 has no empty client ids: refused (identifier rejected, 0x85 in MQTT 5 terms).
    refused = broker.client(3)
    assert refused.connect("").reason == 2

    wait_for_sample(broker, 'flock_messages_received_total{qos="1"}', 3)
    m = samples(broker.scrape())
    assert m['flock_messages_received_total{qos="0"}'] == 1
    assert m['flock_messages_sent_total{qos="1"}'] == 3
    assert m["flock_connections"] == 2
    assert m["flock_connections_total"] >= 2
    assert m['flock_connections_rejected_total{reason="client_identifier_not_valid"}'] == 1
    assert m['flock_sessions{state="online"}'] == 2
    assert m["flock_subscriptions"] == 1
    assert m["flock_retained_messages"] == 1
    assert m['flock_packets_received_total{type="subscribe"}'] == 1
    assert m['flock_packets_received_total{type="puback"}'] == 3
    assert m['flock_packets_sent_total{type="suback"}'] == 1
    assert m["flock_received_bytes_total"] > 0 and m["flock_sent_bytes_total"] > 0
    assert m["flock_store_healthy"] == 1
    assert "flock_cluster_peers" not in broker.scrape(), "a single node exports no cluster series"

    # Dropped by reason: a QoS 0 message for an offline persistent session.
    off = broker.connect("m-off", props={SESSION_EXPIRY: 300})
    off.subscribe([("m/off", 0)])
    off.disconnect()
    pub.publish_flow("m/off", b"lost", qos=0)
    wait_for_sample(broker, 'flock_messages_dropped_total{qos="0",reason="qos0_offline"}', 1)
    m = samples(broker.scrape())
    assert m['flock_messages_dropped_total{qos="1",reason="queue_full"}'] == 0  # every reason, by QoS
    wait_for_sample(broker, 'flock_sessions{state="offline"}', 1)


def test_histograms_of_latency_queue_depth_and_store_writes(broker):
    sub = broker.connect("h-sub")
    sub.subscribe([("h/t", 1)])
    pub = broker.connect("h-pub")
    for i in range(5):
        pub.publish_flow("h/t", b"x%d" % i, qos=1)
    for _ in range(5):
        sub.recv_publish()
    # A retained message sent on subscribe is not a live delivery: not timed.
    pub.publish_flow("h/r", b"kept", qos=1, retain=True)  # acked: stored before the subscribe
    sub.subscribe([("h/r", 0)])
    sub.recv_publish()
    # An offline persistent session with 3 queued messages, one with none.
    off = broker.connect("h-off", props={SESSION_EXPIRY: 300})
    off.subscribe([("h/off", 1)])
    off.disconnect()
    wait_for_sample(broker, 'flock_sessions{state="offline"}', 1)  # else the first one may still go out live
    for i in range(3):
        pub.publish_flow("h/off", b"q%d" % i, qos=1)

    local = 'flock_delivery_latency_seconds_count{origin="local"}'
    wait_for_sample(broker, local, 5)
    wait_for_sample(broker, 'flock_session_queue_depth_bucket{le="10"}', 3)
    m = samples(broker.scrape())
    assert m['flock_delivery_latency_seconds_bucket{origin="local",le="+Inf"}'] == 5
    assert 0 < m['flock_delivery_latency_seconds_sum{origin="local"}'] < 5
    assert m['flock_delivery_latency_seconds_count{origin="peer"}'] == 0, "a single node forwards nothing"
    # Three sessions: two with an empty queue (le="0"), h-off with 3 (le="10").
    assert m['flock_session_queue_depth_bucket{le="0"}'] == 2
    assert m['flock_session_queue_depth_bucket{le="1"}'] == 2
    assert m["flock_session_queue_depth_count"] == 3
    assert m["flock_session_queue_depth_sum"] == 3
    # h-off's subscription and queued messages went through the store.
    assert m["flock_store_write_duration_seconds_count"] > 0
    assert m["flock_store_write_batch_operations_count"] == m["flock_store_write_duration_seconds_count"]
    assert m["flock_store_write_batch_operations_sum"] >= 4
    assert m["flock_store_write_failures_total"] == 0
    # Bucket bounds in seconds are written as people type them in queries (le="0.0001"),
    # not as floating-point residue (le="9.999999999999999e-05").
    bounds = {k.split('le="')[1].rstrip('"}') for k in m if k.startswith("flock_delivery_latency_seconds_bucket")}
    assert "0.0001" in bounds and "0.1" in bounds, sorted(bounds)
    assert not [b for b in bounds if "9999" in b or "0000000" in b], sorted(bounds)


def test_promtool_accepts_the_exposition(broker):
    assert os.access(PROMTOOL, os.X_OK), "promtool (Debian package prometheus) missing: make deps installs it"
    c = broker.connect("lint")
    c.subscribe([("lint/#", 2)])
    c.publish_flow("lint/a", b"x", qos=2)
    c.recv_publish()
    text = broker.scrape()
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0, "promtool check metrics:\n%s%s" % (r.stdout.decode(), r.stderr.decode())
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name.startswith("flock_"), name


def test_health_ready_and_errors(broker):
    assert broker.http("/healthz") == (200, "ok\n")
    assert broker.http("/readyz") == (200, "ready\n")
    assert broker.http("/metrics?x=1")[0] == 200
    status, body = broker.http("/metrics", method="HEAD")
    assert status == 200 and body == ""
    assert broker.http("/nope")[0] == 404
    assert broker.http("/metrics", method="POST")[0] == 405


def raw_http(port, data, timeout=5.0):
    """Send raw bytes; return what the endpoint answered before closing."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got
                got += chunk
        except ConnectionResetError:
            return got


def test_bad_http_gets_400_and_harms_nothing(broker):
    assert raw_http(broker.metrics_port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400")
    # A header beyond the 8 KiB limit: 400, then closed, without reading it all.
    huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n"
    assert raw_http(broker.metrics_port, huge).startswith(b"HTTP/1.1 400")
    # A body on GET beyond the limit.
    body = b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"b" * 100000
    assert raw_http(broker.metrics_port, body).startswith(b"HTTP/1.1 400")
    # Keep-alive: two requests on one connection, both answered.
    two = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    assert raw_http(broker.metrics_port, two).count(b"HTTP/1.1 200") == 2
    broker.check_serving()
    assert broker.http("/healthz")[0] == 200


def test_more_connections_than_the_limit_are_closed_not_queued(broker):
    idle = [socket.create_connection(("127.0.0.1", broker.metrics_port)) for _ in range(40)]
    try:
        # The endpoint keeps at most 32 open; the others are closed at once.
        def closed_count():
            n = 0
            for s in idle:
                s.settimeout(0.01)
                try:
                    if s.recv(1) == b"":
                        n += 1
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    n += 1
            return n
        wait_for(lambda: closed_count() >= 8, 5.0, message="connections beyond 32 closed")
    finally:
        for s in idle:
            s.close()
    wait_for(lambda: broker.http("/healthz")[0] == 200, 5.0, message="endpoint serving again")


def test_ready_only_after_the_cluster_join():
    """/readyz is 503 while start-up waits for the seeds, /healthz 200. The seed here is a
    socket that takes the TCP connection and never speaks, so the join waits its timeout,
    and then the node is ready."""
    with socket.socket() as mute, tempfile.TemporaryDirectory(prefix="flock-metrics-") as tmpdir:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        b = MetricsBroker(1, tmpdir, cluster_listen="127.0.0.1:%d" % free_port(),
                          seeds="127.0.0.1:%d" % mute.getsockname()[1], cluster_join_timeout_ms=4000,
                          cluster_tls=False)  # the mute seed speaks neither TLS nor gRPC
        b.port = free_port()
        log = open(b.log_path, "ab")
        proc = subprocess.Popen(b._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=tmpdir)
        try:
            def healthy():
                try:
                    return b.http("/healthz", timeout=1)[0] == 200
                except OSError:
                    assert proc.poll() is None, b.log_text()
                    return False
            wait_for(healthy, 10.0, message="/healthz while joining")
            assert b.http("/readyz")[0] == 503
            assert b" started: " not in b._log_bytes(), "still joining: no MQTT yet"
            # The join gives up on the mute seed after 4 s; then the node serves and is ready.
            wait_for(lambda: b.http("/readyz")[0] == 200, 20.0, interval=0.1, message="/readyz after the join")
            assert b" started: " in b._log_bytes()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()


@pytest.mark.parametrize("value,code,message", [
    ("nonsense", 2, b"metrics_listen"),
    ("127.0.0.1:99999", 2, b"metrics_listen"),
])
def test_bad_metrics_listen_is_a_config_error(value, code, message):
    with tempfile.TemporaryDirectory(prefix="flock-metrics-") as tmpdir:
        r = subprocess.run([BROKER_PATH, "--listen", "127.0.0.1:%d" % free_port(), "--data-dir", tmpdir,
                            "--metrics-listen", value], capture_output=True, timeout=30)
        assert r.returncode == code and message in r.stderr, r.stderr


def test_metrics_port_in_use_fails_start_up():
    with socket.socket() as taken, tempfile.TemporaryDirectory(prefix="flock-metrics-") as tmpdir:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([BROKER_PATH, "--listen", "127.0.0.1:%d" % free_port(), "--data-dir", tmpdir,
                            "--metrics-listen", "127.0.0.1:%d" % port], capture_output=True, timeout=30)
        assert r.returncode == 1 and b"in use" in r.stderr, r.stderr


def prometheus_query(port, query):
    url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (port, urllib.request.quote(query))
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())["data"]["result"]


def test_a_real_prometheus_scrapes_flockd(broker):
    assert os.access(PROMETHEUS, os.X_OK), "Debian package prometheus missing: make deps installs it"
    c = broker.connect("scraped")
    c.subscribe([("p/#", 1)])
    with tempfile.TemporaryDirectory(prefix="flock-prom-") as tmpdir:
        conf = os.path.join(tmpdir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: flock\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % broker.metrics_port)
        web = free_port()
        log = open(os.path.join(tmpdir, "prometheus.log"), "wb")
        prom = subprocess.Popen([PROMETHEUS, "--config.file", conf, "--storage.tsdb.path",
                                 os.path.join(tmpdir, "data"), "--web.listen-address", "127.0.0.1:%d" % web],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            def scraped():
                assert prom.poll() is None, open(os.path.join(tmpdir, "prometheus.log")).read()
                try:
                    up = prometheus_query(web, 'up{job="flock"}')
                    subs = prometheus_query(web, "flock_subscriptions")
                except OSError:
                    return False
                return (up and up[0]["value"][1] == "1" and subs and subs[0]["value"][1] == "1")
            wait_for(scraped, 60.0, interval=0.2, message="Prometheus to scrape flockd")
            health = prometheus_query(web, 'scrape_samples_scraped{job="flock"}')
            assert float(health[0]["value"][1]) > 50
        finally:
            prom.terminate()
            prom.wait(timeout=30)
            log.close()
