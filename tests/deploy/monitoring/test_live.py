"""Every PromQL expression of the alert rules and of the dashboard, evaluated by a real
Prometheus scraping a real 3-node flockd cluster.

Set-up (once for the module, about 15 s): a CA, a node certificate valid for 1 day (cluster
mutual TLS, as cert-manager would provide it), an MQTT listener certificate valid for a
year, and a shared cluster secret, all made with openssl in a temporary directory; three
flockd nodes on 127.0.0.1 (MQTT, MQTTS, metrics and cluster ports picked free), joined in
a TLS cluster; Debian's Prometheus on a free loopback port, scraping the three /metrics
every second as job "flock" with helm/flock/files/alerts.yaml loaded as its rule file;
traffic from paho clients (QoS 0 and 1, within a node and across nodes, a persistent
session left offline with messages queued for it, a client over TLS).

Then:
- every alerting rule is loaded and evaluates without error in Prometheus;
- every alert's series exist: each operand of its conditions, and its skeleton (the
  condition with thresholds taken out, vector matching kept: promql.skeleton) return data;
- every dashboard query, with $job, $instance and $__rate_interval substituted, returns
  data, and so does each template variable's label_values() query;
- the alerts see the real series as they should: a process presenting a certificate
  from another CA makes FlockClusterPeerRefused fire for that node with reason
  "certificate", the 1-day cluster certificate makes both expiry alerts pending on every
  node, and nothing else is active;
- a misspelt metric returns no data (so the checks above can fail).
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import paho.mqtt.client as mqtt
import pytest
import yaml

import promql

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
# FLOCK_MONITORING_FILES: another directory with alerts.yaml and dashboard.json (to check
# that this test fails on broken copies).
FILES = os.environ.get("FLOCK_MONITORING_FILES") or os.path.join(ROOT, "helm", "flock", "files")
ALERTS = os.path.join(FILES, "alerts.yaml")
DASHBOARD = os.path.join(FILES, "dashboard.json")
FLOCKD = os.environ.get("FLOCK_BROKER") or os.path.join(ROOT, "build", "bin", "flockd")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
RATE_INTERVAL = "10s"  # what $__rate_interval stands for at a 1 s scrape interval


def wait_for(cond, timeout, what, interval=0.2):
    """Poll cond() until it returns something truthy; fail naming `what` after timeout s."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = cond()
            if value:
                return value
        except (OSError, ValueError) as e:  # not listening yet, partial answer
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0fs waiting for %s (last error: %r)" % (timeout, what, last))
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode()


def openssl(*args, cwd):
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_certificates(d):
    """ca.crt; cluster tls.crt/tls.key valid 1 day; listener server.crt/server.key valid
    365 days; rogue.crt/rogue.key self-signed (another CA); secret."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "30",
            "-subj", "/CN=flock-test-ca", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n"
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n")
    for name, days in (("tls", "1"), ("server", "365")):
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=flock-" + name, cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", name + ".crt", "-days", days, "-extfile", "ext.cnf", cwd=d)
    openssl("req", "-x509", *ec, "-keyout", "rogue.key", "-out", "rogue.crt", "-days", "30",
            "-subj", "/CN=flock-rogue", cwd=d)
    with open(os.path.join(d, "secret"), "w") as f:
        f.write(secrets.token_hex(32) + "\n")


def stop_process(proc, log):
    """SIGTERM a process this test started (SIGKILL after 15 s), close its log; returns the
    exit code (0 if it never started)."""
    if proc is None:
        return 0
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        rc = "killed after 15s"
    log.close()
    return rc


class Node:
    def __init__(self, index, d):
        self.name = "flock-%d" % index
        self.dir = d
        self.data_dir = os.path.join(d, self.name)
        self.log_path = os.path.join(d, self.name + ".log")
        self.proc = None
        self.new_ports()

    def new_ports(self):
        self.mqtt, self.mqtts, self.metrics, self.cluster = (free_port() for _ in range(4))

    @property
    def instance(self):
        return "127.0.0.1:%d" % self.metrics

    def start(self, seeds):
        d = self.dir
        cmd = [FLOCKD, "--node-name", self.name, "--data-dir", self.data_dir, "--workers", "1",
               "--listen", "127.0.0.1:%d" % self.mqtt,
               "--listen", "mqtts://127.0.0.1:%d,certfile=%s/server.crt,keyfile=%s/server.key" % (self.mqtts, d, d),
               "--metrics-listen", self.instance,
               "--cluster-listen", "127.0.0.1:%d" % self.cluster,
               "--seeds", ",".join("127.0.0.1:%d" % p for p in seeds),
               "--cluster-tls", "true", "--cluster-certfile", d + "/tls.crt", "--cluster-keyfile", d + "/tls.key",
               "--cluster-cafile", d + "/ca.crt", "--cluster-secret-file", d + "/secret",
               "--cluster-drain-timeout-ms", "1000", "--sys-interval", "1"]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=d)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read()[-6000:].decode("utf-8", "replace")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("%s exited with %r\n%s" % (self.name, self.proc.returncode, self.log_text()))
        try:
            return http_get("http://%s/readyz" % self.instance, timeout=2)[0] == 200
        except urllib.error.HTTPError:
            return False

    def scrape(self):
        out = {}
        for line in http_get("http://%s/metrics" % self.instance)[1].splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out

    def stop(self):
        """SIGTERM (SIGKILL after 15 s); returns the exit code."""
        return stop_process(self.proc, self.log)


def start_nodes(d, count=3):
    """Starts `count` nodes seeded with each other; a node whose port another process took
    meanwhile is started again on fresh ports (its peers learn them when it dials)."""
    nodes = [Node(i, d) for i in range(count)]
    for n in nodes:
        n.start([o.cluster for o in nodes if o is not n])
    for n in nodes:
        for attempt in range(3):
            try:
                wait_for(n.ready, 20, "%s ready (/readyz 200)" % n.name)
                break
            except AssertionError:
                log = n.log_text()
                if attempt == 2 or n.proc.poll() is None or "in use" not in log:
                    raise
                n.log.close()
                n.new_ports()
                n.start([o.cluster for o in nodes if o is not n])
    for n in nodes:
        wait_for(lambda: n.scrape().get('flock_cluster_peers{state="up"}') == count - 1, 20,
                 "%s to see its %d peers up" % (n.name, count - 1))
    return nodes


class Prometheus:
    def __init__(self, d, targets):
        self.dir = d
        self.config = os.path.join(d, "prometheus.yml")
        with open(self.config, "w") as f:
            yaml.safe_dump({
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
                "rule_files": [ALERTS],
                "scrape_configs": [{"job_name": "flock", "static_configs": [{"targets": targets}]}],
            }, f)
        self.proc = None

    def start(self):
        for attempt in range(3):
            self.port = free_port()
            self.log = open(os.path.join(self.dir, "prometheus.log"), "ab")
            self.proc = subprocess.Popen(
                [PROMETHEUS, "--config.file", self.config, "--storage.tsdb.path", os.path.join(self.dir, "tsdb"),
                 "--web.listen-address", "127.0.0.1:%d" % self.port, "--log.level", "warn"],
                stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.dir)
            try:
                wait_for(self.ready, 20, "Prometheus ready")
                return
            except AssertionError:
                if attempt == 2 or self.proc.poll() is None or "address already in use" not in self.log_text():
                    raise
                self.log.close()

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited with %r\n%s" % (self.proc.returncode, self.log_text()))
        try:
            return http_get("http://127.0.0.1:%d/-/ready" % self.port, timeout=2)[0] == 200
        except urllib.error.HTTPError:
            return False

    def log_text(self):
        with open(os.path.join(self.dir, "prometheus.log"), "rb") as f:
            return f.read()[-6000:].decode("utf-8", "replace")

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            status, body = http_get(url, timeout=10)
        except urllib.error.HTTPError as e:  # 400 bad_data: the answer says why
            body = e.read().decode()
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise QueryError("%s %s: %s" % (path, params, answer.get("error")))
        return answer["data"]

    def query(self, expr):
        """The instant query's result (a list of samples; a scalar as a one-element list)."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def stop(self):
        """SIGTERM (SIGKILL after 15 s); returns the exit code."""
        return stop_process(self.proc, self.log)


class QueryError(Exception):
    pass


class Traffic:
    """paho clients: subscribers on flock-0 (local) and flock-1 (persistent, across nodes),
    a persistent session on flock-2 left offline with messages queued, a TLS publisher."""

    def __init__(self, nodes, d):
        self.clients = []
        self.received = {}
        self.nodes = nodes
        self.dir = d

    def client(self, node, client_id, clean=True, tls=False):
        c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=mqtt.MQTTv311)
        got = self.received.setdefault(client_id, [])
        c.on_message = lambda _c, _u, m: got.append(m.payload)
        connected = []
        c.on_connect = lambda _c, _u, _f, rc: connected.append(rc)
        port = node.mqtts if tls else node.mqtt
        if tls:
            c.tls_set_context(ssl.create_default_context(cafile=os.path.join(self.dir, "ca.crt")))
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        self.clients.append(c)
        wait_for(lambda: connected, 10, "%s connected to %s" % (client_id, node.name))
        assert connected[0] == 0, "%s: CONNACK %r" % (client_id, connected[0])
        return c

    def subscribe(self, c, topic, qos=1):
        done = []
        c.on_subscribe = lambda *_a: done.append(True)
        c.subscribe(topic, qos)
        wait_for(lambda: done, 10, "SUBACK for %s" % topic)

    def run(self):
        a, b, c = self.nodes
        local = self.client(a, "live-sub-local")
        self.subscribe(local, "live/#")
        remote = self.client(b, "live-sub-remote", clean=False)
        self.subscribe(remote, "live/#")
        offline = self.client(c, "live-sub-offline", clean=False)
        self.subscribe(offline, "live/#")
        offline.disconnect()
        offline.loop_stop()
        self.clients.remove(offline)
        pub = self.client(a, "live-pub")
        tls_pub = self.client(c, "live-pub-tls", tls=True)
        # The routes of flock-1's and flock-2's subscriptions reach flock-0 asynchronously:
        # publish QoS 1 probes until one crosses to flock-1.
        def crossed():
            pub.publish("live/probe", b"probe", qos=1).wait_for_publish(5)
            return b"probe" in self.received["live-sub-remote"]
        wait_for(crossed, 10, "a publish to cross from flock-0 to flock-1")
        sent = []
        for i in range(20):
            for qos in (0, 1):
                payload = b"%d-%d" % (qos, i)
                pub.publish("live/a", payload, qos=qos).wait_for_publish(5)
                sent.append(payload)
        tls_pub.publish("live/tls", b"over-tls", qos=1).wait_for_publish(5)
        want = set(sent) | {b"over-tls"}
        for cid in ("live-sub-local", "live-sub-remote"):
            wait_for(lambda: want <= set(self.received[cid]), 10, "%s to receive every message" % cid)
        print("traffic: %d publishes (QoS 0 and 1) from flock-0, 1 over TLS on flock-2, received on flock-0 "
              "and flock-1; a session offline on flock-2" % (len(sent) + 1))

    def close(self):
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


def tool(path, package):
    assert os.access(path, os.X_OK), "%s not found: install Debian's %s package" % (path, package)


@pytest.fixture(scope="module")
def stack():
    tool(PROMETHEUS, "prometheus")
    tool(OPENSSL, "openssl")
    assert os.access(FLOCKD, os.X_OK), "flockd %s not found: build it or set FLOCK_BROKER" % FLOCKD
    t0 = time.monotonic()
    d = tempfile.mkdtemp(prefix="flock-monitoring-")
    nodes, prom, traffic = [], None, None
    try:
        make_certificates(d)
        nodes = start_nodes(d)
        prom = Prometheus(d, [n.instance for n in nodes])
        prom.start()
        traffic = Traffic(nodes, d)
        traffic.run()

        def all_up():
            r = prom.query('up{job="flock"}')
            return len(r) == 3 and all(s["value"][1] == "1" for s in r)
        wait_for(all_up, 20, "up == 1 for the 3 flockd targets")
        print("set-up: 3 TLS flockd nodes and Prometheus on 127.0.0.1:%d, all targets up after %.1fs"
              % (prom.port, time.monotonic() - t0))
        yield nodes, prom, d
    finally:
        if traffic:
            traffic.close()
        results = [(n.name, n.stop()) for n in nodes]
        prom_rc = prom.stop() if prom else 0
        logs = "".join("---- %s\n%s\n" % (n.name, n.log_text()) for n in nodes)
        shutil.rmtree(d, ignore_errors=True)
        bad = [(name, rc) for name, rc in results if rc != 0]
        assert not bad, "flockd nodes did not exit cleanly on SIGTERM: %r\n%s" % (bad, logs)
        assert prom_rc == 0, "prometheus exited with %r" % prom_rc


def alert_rules():
    with open(ALERTS) as f:
        return [r for g in yaml.safe_load(f)["groups"] for r in g["rules"] if "alert" in r]


def test_rules_loaded_and_healthy(stack):
    nodes, prom, _ = stack
    want = {r["alert"] for r in alert_rules()}

    def evaluated():
        got = {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"] if r["type"] == "alerting"}
        return got if set(got) == want and all(r.get("lastEvaluation", "").startswith("20") for r in got.values()) \
            else None
    got = wait_for(evaluated, 15, "every alerting rule loaded and evaluated once")
    for name, r in sorted(got.items()):
        print("rule %-32s health=%s" % (name, r["health"]))
    bad = {n: r.get("lastError") for n, r in got.items() if r["health"] != "ok"}
    assert not bad, "rules that do not evaluate: %r" % bad


def evaluate_until_data(prom, checks, timeout=25):
    """checks: [(what, expr)]. Polls until every expr returns data (rate() needs two
    scrapes, a histogram_quantile its buckets); returns [(what, expr, samples)] with the
    ones still empty at the deadline or in error (samples None) for the caller to report."""
    pending = list(checks)
    results = {}
    deadline = time.monotonic() + timeout
    while True:
        still = []
        for what, expr in pending:
            try:
                r = prom.query(expr)
            except QueryError as e:
                results[(what, expr)] = e
                continue
            results[(what, expr)] = r
            if not r:
                still.append((what, expr))
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    return [(what, expr, results[(what, expr)]) for what, expr in checks]


def report(results):
    failures = []
    for what, expr, r in results:
        if isinstance(r, Exception):
            failures.append("%s: %s -> query error %s" % (what, expr, r))
            print("ERROR  %-44s %s" % (what, expr))
        elif not r:
            failures.append("%s: %s -> no data" % (what, expr))
            print("EMPTY  %-44s %s" % (what, expr))
        else:
            print("%3d    %-44s %s" % (len(r), what, expr))
    return failures


def test_every_alert_expression_returns_data(stack):
    _, prom, _ = stack
    checks = []
    for rule in alert_rules():
        expr = rule["expr"]
        # The condition itself must evaluate (it returns nothing while all is well).
        prom.query(expr)
        parts = promql.data_parts(expr)
        assert parts, "%s: no series in %s" % (rule["alert"], expr)
        for p in parts:
            checks.append(("alert %s operand" % rule["alert"], p))
        skeleton = promql.skeleton(expr)
        if skeleton not in parts:
            checks.append(("alert %s skeleton" % rule["alert"], skeleton))
    failures = report(evaluate_until_data(prom, checks))
    assert not failures, "alert expressions without data:\n" + "\n".join(failures)


def dashboard_checks(nodes):
    with open(DASHBOARD) as f:
        d = json.load(f)
    # A multi-value variable becomes a regex alternation, escaped for a PromQL string as
    # Grafana does: 127\\.0\\.0\\.1:9464 inside "...".
    variables = {"job": "flock",
                 "instance": "(%s)" % "|".join(re.escape(n.instance).replace("\\", "\\\\") for n in nodes),
                 "__rate_interval": RATE_INTERVAL,
                 "datasource": "prometheus"}
    checks = []
    for v in d["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"]["query"].strip())
        assert m, "variable %s: expected label_values(QUERY, LABEL)" % v["name"]
        checks.append(("variable $%s (label %s)" % (v["name"], m.group(2)),
                       promql.substitute_grafana(m.group(1), variables)))
    panels = [p for top in d["panels"] for p in [top] + top.get("panels", [])]
    for p in panels:
        for t in p.get("targets", []):
            expr = promql.substitute_grafana(t["expr"], variables)
            what = "panel %r %s" % (p["title"][:30], t["refId"])
            checks.append((what, expr))
            for part in promql.data_parts(expr):
                if part != expr:
                    checks.append((what + " operand", part))
    return checks


def test_every_dashboard_expression_returns_data(stack):
    nodes, prom, _ = stack
    checks = dashboard_checks(nodes)
    results = evaluate_until_data(prom, checks)
    failures = report(results)
    for what, expr, r in results:
        m = re.match(r"variable \$\w+ \(label (\w+)\)", what)
        if m and r and not isinstance(r, Exception):
            values = sorted({s["metric"].get(m.group(1)) for s in r})
            print("       %s values: %s" % (what, values))
            if None in values:
                failures.append("%s: series without label %s" % (what, m.group(1)))
    assert not failures, "dashboard expressions without data:\n" + "\n".join(failures)
    assert len(checks) >= 40


def test_a_misspelt_metric_finds_nothing(stack):
    """The checks above can fail: a name that does not exist, or a label value that does
    not, returns no data from the same Prometheus."""
    _, prom, _ = stack
    assert prom.query('flock_cluster_peer{job="flock"}') == []
    assert prom.query('flock_cluster_peers{job="flock",state="gone"}') == []
    # an `and` whose sides have different labels can never fire: its skeleton is empty
    assert prom.query(promql.skeleton('flock_cluster_peers > 0 and flock_cluster_peer_outbox_messages > 0')) == []
    assert prom.query('up{job="flock"}'), "but the real series are there"


def active_alerts(prom):
    out = set()
    for a in prom.api("alerts")["alerts"]:
        lab = a["labels"]
        out.add((lab["alertname"], lab.get("instance"), lab.get("listener") or lab.get("reason"), a["state"]))
    return out


def test_alerts_follow_the_real_series(stack):
    nodes, prom, d = stack
    a = nodes[0]
    # Prometheus must have a sample from before the refusal for increase() to see it.
    wait_for(lambda: prom.query('flock_cluster_peers_refused_total{reason="certificate",instance="%s"} == 0'
                                % a.instance), 15, "a scrape of flock-0 before the rogue peer")
    rogue = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % a.cluster, "-cert",
                            os.path.join(d, "rogue.crt"), "-key", os.path.join(d, "rogue.key"), "-alpn", "h2"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    print("rogue peer (a certificate of another CA) on %s's cluster port: openssl exit %d"
          % (a.name, rogue.returncode))
    wait_for(lambda: a.scrape()['flock_cluster_peers_refused_total{reason="certificate"}'] >= 1, 10,
             "flock-0 to count the refusal")

    expected = {("FlockClusterPeerRefused", a.instance, "certificate", "firing")}
    for n in nodes:  # the cluster certificate is valid for 1 day: under 2 and 14 days, not yet for long
        expected.add(("FlockCertificateExpiresSoon", n.instance, "cluster", "pending"))
        expected.add(("FlockCertificateExpiresVerySoon", n.instance, "cluster", "pending"))
    seen = []

    def as_expected():
        got = active_alerts(prom)
        seen[:] = [got]
        return got == expected
    try:
        wait_for(as_expected, 20, "the active alerts to be exactly the expected ones")
    except AssertionError:
        got = seen[0] if seen else set()
        raise AssertionError("active alerts differ:\n missing %s\n unexpected %s"
                             % (sorted(expected - got), sorted(got - expected)))
    for alert in sorted(expected):
        print("active: %s on %s (%s), %s" % alert)
    refused = next(x for x in prom.api("alerts")["alerts"] if x["labels"]["alertname"] == "FlockClusterPeerRefused")
    assert refused["labels"]["severity"] == "warning"
    assert refused["annotations"]["summary"] == \
        "flock node %s refused a would-be cluster peer (certificate)" % a.instance, refused["annotations"]
    # The listener certificate (a year) raises nothing, but its expiry is exported.
    listeners = prom.query('flock_tls_certificate_expiry_timestamp_seconds{job="flock"}')
    names = sorted({s["metric"]["listener"] for s in listeners})
    print("certificate expiry series by listener: %s" % names)
    assert "cluster" in names
    assert any(n.startswith("mqtts://") for n in names), \
        "no flock_tls_certificate_expiry_timestamp_seconds for the mqtts listener: %s" % names
