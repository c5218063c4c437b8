"""The alert rules and the Grafana dashboard of the Helm chart, checked without a cluster.

- `promtool check rules` and `promtool test rules` (Debian's prometheus package) pass.
- Every alert has a severity, a summary and a description naming the node, and a `for:`.
- Every alert has a unit test where it fires and one where it must not, and each bites:
  an alert that never fires, one without its threshold and `for:`, and one without its
  `for:` alone (when it has one) each make `promtool test rules` fail for that alert.
- The dashboard: stable uid and title, a `${datasource}` variable of type prometheus and
  `job`/`instance` variables, every panel on that datasource with at least one query,
  unique ids, panels inside the 24-column grid and not overlapping.
- The PromQL splitter the live test relies on (promql.py) splits what it should.

The expressions themselves are evaluated against real nodes in test_live.py.
"""

import copy
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
import yaml

import promql

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.normpath(os.path.join(HERE, "..", "..", "..", "helm", "flock", "files"))
ALERTS = os.path.join(FILES, "alerts.yaml")
ALERTS_TEST = os.path.join(FILES, "alerts-test.yaml")
DASHBOARD = os.path.join(FILES, "dashboard.json")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def rules():
    with open(ALERTS) as f:
        doc = yaml.safe_load(f)
    return [r for g in doc["groups"] for r in g["rules"]]


def alerts():
    return [r for r in rules() if "alert" in r]


def promtool(*args, cwd=None):
    assert os.access(PROMTOOL, os.X_OK), "promtool not found: install Debian's prometheus package"
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def test_promtool_check_rules():
    r = promtool("check", "rules", ALERTS)
    print(r.stdout.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: %d rules found" % len(rules()) in r.stdout


def test_promtool_unit_tests_pass():
    r = promtool("test", "rules", os.path.basename(ALERTS_TEST), cwd=FILES)
    print(r.stdout.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_every_alert_is_labelled_and_explained():
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names: %r" % names
    required = {"FlockNodeDown", "FlockClusterPeerLost", "FlockClusterOutboxGrowing", "FlockStoreUnhealthy",
                "FlockMessagesDropped", "FlockClusterForwardsDropped", "FlockConnectionsRejected",
                "FlockClusterPeerRefused", "FlockSessionQueuesBacklogged", "FlockStoreWriteFailures",
                "FlockStoreWritesSlow", "FlockCertificateExpiresSoon", "FlockCertificateExpiresVerySoon",
                "FlockCertificateReloadFailed"}
    assert required <= set(names), "missing alerts: %s" % sorted(required - set(names))
    for a in alerts():
        name = a["alert"]
        print("%-32s severity=%-8s for=%-4s %s" % (name, a["labels"].get("severity"), a.get("for"), a["expr"]))
        assert a["labels"].get("severity") in ("warning", "critical"), name
        assert "for" in a, "%s: no explicit for:" % name
        ann = a.get("annotations", {})
        assert ann.get("summary") and ann.get("description"), "%s: summary and description needed" % name
        assert "$labels.instance" in ann["summary"], "%s: the summary should name the node" % name
        assert 'job="flock"' in a["expr"], "%s: the chart substitutes the job in job=\"flock\"" % name
        assert promql.has_comparison(a["expr"]), "%s: an alert expression is a condition" % name

    with open(os.path.join(HERE, "..", "..", "..", "docs", "monitoring.md")) as f:
        doc = f.read()
    undocumented = [n for n in names if "### %s" % n not in doc]
    assert not undocumented, "docs/monitoring.md has no section for %s" % undocumented


def unit_cases():
    """{alertname: (evaluations where it fires, evaluations where it must not)}."""
    with open(ALERTS_TEST) as f:
        doc = yaml.safe_load(f)
    cases = {}
    for t in doc["tests"]:
        for c in t.get("alert_rule_test", []):
            fire, quiet = cases.setdefault(c["alertname"], ([], []))
            (fire if c.get("exp_alerts") else quiet).append(c["eval_time"])
    return cases


def test_every_alert_has_a_firing_and_a_silent_case():
    cases = unit_cases()
    names = {a["alert"] for a in alerts()}
    assert set(cases) <= names, "unit tests for unknown alerts: %s" % sorted(set(cases) - names)
    for name in sorted(names):
        fire, quiet = cases.get(name, ([], []))
        print("%-32s fires at %-16s silent at %s" % (name, ",".join(fire), ",".join(quiet)))
        assert fire, "%s: no unit test where it fires" % name
        assert quiet, "%s: no unit test where it must stay silent" % name
    with open(ALERTS_TEST) as f:
        doc = yaml.safe_load(f)
    for t in doc["tests"]:
        for c in t.get("alert_rule_test", []):
            for e in c.get("exp_alerts") or []:
                assert e.get("exp_annotations"), "%s at %s: assert the annotations" % (c["alertname"], c["eval_time"])
                assert "severity" in e.get("exp_labels", {}), "%s: assert the labels" % c["alertname"]


def _run_alone(tmp, name, mutate=None):
    """promtool test rules on alert `name` alone (its rule, changed by mutate(rule), and its
    unit tests); returns (exit code, output)."""
    rule = copy.deepcopy(next(a for a in alerts() if a["alert"] == name))
    if mutate:
        mutate(rule)
    with open(ALERTS_TEST) as f:
        tests = yaml.safe_load(f)
    kept = []
    for t in tests["tests"]:
        mine = [c for c in t.get("alert_rule_test", []) if c["alertname"] == name]
        if mine:
            kept.append(dict(t, alert_rule_test=mine))
    tests["tests"] = kept
    d = tempfile.mkdtemp(dir=tmp)
    with open(os.path.join(d, "alerts.yaml"), "w") as f:
        yaml.safe_dump({"groups": [{"name": "mutant", "rules": [rule]}]}, f, sort_keys=False)
    with open(os.path.join(d, "alerts-test.yaml"), "w") as f:
        yaml.safe_dump(tests, f, sort_keys=False)
    r = promtool("test", "rules", "alerts-test.yaml", cwd=d)
    return r.returncode, r.stdout + r.stderr


def _duration_seconds(d):
    m = re.fullmatch(r"(\d+)([smhd])", str(d))
    assert m, "unexpected duration %r" % d
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def test_each_unit_test_bites(tmp_path):
    """Break each alert three ways; its unit tests must notice every time."""
    checked = 0
    for a in alerts():
        name = a["alert"]
        rc, out = _run_alone(str(tmp_path), name)  # the alert and its tests alone pass as they are
        assert rc == 0, "%s alone: %s" % (name, out)
        mutants = [("never fires", lambda r: r.update(expr="vector(0) > 1")),
                   ("no threshold, no for", lambda r: r.update(expr=promql.data_parts(r["expr"])[0], **{"for": "0s"}))]
        if _duration_seconds(a["for"]) > 0:
            mutants.append(("no for", lambda r: r.update(**{"for": "0s"})))
        for what, mutate in mutants:
            rc, out = _run_alone(str(tmp_path), name, mutate)
            print("%-32s %-22s -> promtool test rules %s" % (name, what, "fails (good)" if rc else "PASSES"))
            assert rc != 0, "%s %s: the unit tests still pass\n%s" % (name, what, out)
            assert "alertname: %s," % name in out, "%s %s: failed for another reason\n%s" % (name, what, out)
            checked += 1
    assert checked >= 2 * len(alerts())


# ---------------------------------------------------------------------------- dashboard

def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(d):
    for p in d["panels"]:
        yield p
        for q in p.get("panels", []):
            yield q


def test_dashboard_structure():
    d = dashboard()
    assert d["uid"] == "flock-overview" and d["title"] == "flock MQTT cluster"
    assert 36 <= d["schemaVersion"] <= 39, d["schemaVersion"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance"):
        v = variables[name]
        assert v["type"] == "query" and v["datasource"]["uid"] == "${datasource}", name
        assert v["query"]["query"].startswith("label_values("), name
    assert variables["instance"]["multi"] and variables["instance"]["includeAll"]
    assert "$job" in variables["instance"]["query"]["query"]

    ids = set()
    cells = {}
    n_queries = 0
    for p in all_panels(d):
        assert p["id"] not in ids, "duplicate panel id %d" % p["id"]
        ids.add(p["id"])
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, (p["title"], g)
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, "panels %r and %r overlap" % (cells[(x, y)], p["title"])
                cells[(x, y)] = p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        targets = [t for t in p.get("targets", []) if t.get("expr", "").strip()]
        assert targets, "panel %r has no query" % p["title"]
        assert p.get("description"), "panel %r: say what it shows" % p["title"]
        for t in targets:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            assert 'job="$job"' in t["expr"] and 'instance=~"$instance"' in t["expr"], \
                "panel %r: %s does not follow the job/instance variables" % (p["title"], t["expr"])
            n_queries += 1
    titles = [p["title"] for p in all_panels(d)]
    print("dashboard %s: %d panels, %d queries" % (d["uid"], len(titles), n_queries))
    # What the issue asks the dashboard to show.
    for needle in ("flock_connections", "flock_sessions", "flock_messages_received_total",
                   "flock_messages_sent_total", "flock_messages_dropped_total", "flock_delivery_latency_seconds_bucket",
                   "flock_session_queue_depth_bucket", "flock_store_write_duration_seconds_bucket",
                   "flock_store_healthy", "flock_cluster_peers", "flock_cluster_peer_forwarded_total",
                   "flock_cluster_peer_forward_dropped_total", "flock_cluster_peer_outbox_messages",
                   "flock_cluster_route_lag_seconds_bucket", "flock_cluster_peers_refused_total",
                   "flock_tls_certificate_expiry_timestamp_seconds"):
        assert any(needle in t["expr"] for p in all_panels(d) for t in p.get("targets", [])), needle


# ---------------------------------------------------------------------------- the splitter

@pytest.mark.parametrize("expr,parts,skeleton", [
    ('up{job="flock"} == 0', ['up{job="flock"}'], 'up{job="flock"}'),
    ("a - time() < 14 * 86400", ["a - time()"], "a - time()"),
    ("x > 1000 and deriv(x[10m]) > 0", ["x", "deriv(x[10m])"], "(x) and (deriv(x[10m]))"),
    ("a < ignoring(state) group_left b", ["a", "b"], "(a) < bool ignoring(state) group_left (b)"),
    ("(a > bool 1) or on(x) (b unless c)", ["a", "b", "c"], "(a) or on(x) (b)"),
    ('rate(x{a="b>c",d!="e"}[5m:1m]) >= 1', ['rate(x{a="b>c",d!="e"}[5m:1m])'], 'rate(x{a="b>c",d!="e"}[5m:1m])'),
    ("sum by (le) (a) / ignoring(le) b", ["sum by (le) (a) / ignoring(le) b"], "sum by (le) (a) / ignoring(le) b"),
    ("0 < sort_desc(android_things)", ["sort_desc(android_things)"], "sort_desc(android_things)"),
])
def test_splitter(expr, parts, skeleton):
    assert promql.data_parts(expr) == parts
    assert promql.skeleton(expr) == skeleton


def test_grafana_substitution():
    v = {"job": "flock", "instance": "a|b", "__rate_interval": "10s"}
    assert (promql.substitute_grafana('rate(x{job="$job",instance=~"${instance}"}[$__rate_interval])', v)
            == 'rate(x{job="flock",instance=~"a|b"}[10s])')
    with pytest.raises(KeyError):
        promql.substitute_grafana("x[$__range]", v)
