"""deploy.k8s.lifecycle: the Helm chart run as Kubernetes would run it, under QoS 1 load.

`helm template` renders helm/flock with values.yaml; kubesim.py starts the rendered
StatefulSet's pods (command, args, env, volumes, security context, probes, preStop and grace
period exactly as rendered) in network + mount + UTS namespaces, with dnsmasq as the cluster
DNS and HAProxy as the client Service (see README.md). An independent checker (checker.py,
paho-mqtt) runs persistent QoS 1 subscribers and QoS 1 publishers through the Service the
whole time, while the cluster is:

  installed (3 pods) -> scaled to 5 (clients rebalanced onto the new pods) -> scaled to 3
  -> upgraded (values-upgrade.yaml: rolling update 2, 1, 0) -> pod 1 deleted and recreated.

Asserted: no acknowledged message lost for any subscriber, every reconnect of a persistent
subscriber found its session, every client reconnected, every pod exited 0 on SIGTERM within
its grace period (none needed SIGKILL), no container restarted (liveness or crash), the nodes
formed one cluster through the headless Service with the chart's certificates and secret (no
peer refused), DNS and the balancer followed every change.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kubesim  # noqa: E402
from kubesim import log, wait_for  # noqa: E402

ROOT = kubesim.ROOT
CHART = os.path.join(ROOT, "helm", "flock")
CONTAINERFILE = os.path.join(ROOT, "deploy", "Containerfile")
VALUES = os.path.join(HERE, "values.yaml")
UPGRADE = os.path.join(HERE, "values-upgrade.yaml")
FLOCKD = os.environ.get("FLOCKD") or os.path.join(ROOT, "build", "bin", "flockd")
RELEASE = "flock"
NAMESPACE = "mqtt"
USER, PASSWORD = "alice", "secret"   # the user of values.yaml's password file
SUBSCRIBERS = 6
PUBLISHERS = 4
RATE = 30         # messages per second per publisher: 120 msg/s in, 720 deliveries/s out
MAX_PODS = 5
# For diagnosis: one more values file, applied to both renderings (e.g. logLevel: debug).
EXTRA_VALUES = [os.environ["FLOCK_K8S_VALUES"]] if os.environ.get("FLOCK_K8S_VALUES") else []


def helm_binary():
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    tools = os.environ.get("FLOCK_DEPLOY_TOOLS") or os.path.join(ROOT, "build", "deploy-tools")
    r = subprocess.run([os.path.join(ROOT, "tests", "deploy", "fetch-helm.sh"), tools],
                       stdout=subprocess.PIPE, text=True, timeout=600)
    assert r.returncode == 0, "fetch-helm.sh failed"
    return r.stdout.strip().splitlines()[-1]


class Checker:
    """checker.py in its own namespace (a client pod), talking JSON lines over stdin/stdout."""

    def __init__(self, cluster, workdir):
        self.cluster = cluster
        self.netns = "%s%s-client" % (kubesim.NS_PREFIX, cluster.tag)
        resolv = "search %s.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5\n" % (
            NAMESPACE, kubesim.DNS_IP)
        cluster.net.add_endpoint(self.netns, kubesim.CLIENT_IP, resolv)
        self.result_path = os.path.join(workdir, "checker-result.json")
        port = cluster.client_service["spec"]["ports"][0]["port"]
        cfg = {"host": cluster.service_fqdn, "port": port, "username": USER, "password": PASSWORD,
               "subscribers": SUBSCRIBERS, "publishers": PUBLISHERS, "rate": RATE, "window": 10,
               "probe_size": 6, "run": "k8s%d" % os.getpid(), "topic": "kubesim/%d" % os.getpid(),
               "result": self.result_path}
        cfg_path = os.path.join(workdir, "checker.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        self.stderr_path = os.path.join(workdir, "checker.stderr")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.netns, kubesim.PYTHON,
                                      os.path.join(HERE, "checker.py"), cfg_path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, preexec_fn=kubesim._die_with_parent)
        self.events = []
        self.stats = None
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                if ev.get("event") == "stats":
                    self.stats = ev
                else:
                    self.events.append(ev)
                    log("checker: %s" % json.dumps(ev))
                self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "exit"})
            self.cond.notify_all()

    def wait_event(self, name, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, ev in enumerate(self.events):
                    if ev["event"] == name:
                        return self.events.pop(i)
                    if ev["event"] in ("error", "exit"):
                        raise AssertionError("checker: %s\n%s" % (ev, self.stderr_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("checker: no %r within %.0f s\n%s" % (name, timeout, self.stderr_tail()))
                self.cond.wait(left)

    def stderr_tail(self):
        with open(self.stderr_path) as f:
            return "---- checker stderr ----\n" + f.read()[-12000:]

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def wait_flowing(self, what, timeout=40):
        """Every client connected, and acks and deliveries to every subscriber moving on."""
        with self.cond:
            self.cond.wait_for(lambda: self.stats is not None, 10)
            base = self.stats
        assert base is not None, "no stats from the checker"
        need = 2 * RATE

        def flowing():
            with self.cond:
                s = self.stats
            return (s is not None and s["t"] > base["t"]
                    and s["subs_connected"] == SUBSCRIBERS and s["pubs_connected"] == PUBLISHERS
                    and s["acked"] >= base["acked"] + need and s["received_min"] >= base["received_min"] + need)
        try:
            wait_for(flowing, timeout, "the load to flow again after %s (all %d clients connected, acks and "
                     "deliveries to every subscriber advancing); last stats %s" % (what, SUBSCRIBERS + PUBLISHERS, self.stats))
        except kubesim.SimError as e:
            pytest.fail("%s\n%s" % (e, self.diagnose()), pytrace=False)
        log("load flowing after %s: %s" % (what, {k: v for k, v in self.stats.items() if k not in ("event", "t")}))

    def diagnose(self):
        """What the clients that are not connected went through, which pods they reached, and the pods."""
        try:
            self.send("dump")
            clients = self.wait_event("dump", 10)["clients"]
        except (AssertionError, OSError) as e:
            clients, err = [], "no dump from the checker: %s" % e
        else:
            err = ""
        conns = self.cluster.lb.connections()
        out = [err, "pod events:", pod_timeline(self.cluster)]
        if self.proc.poll() is None:  # where the checker's threads are (faulthandler, to stderr)
            os.kill(self.proc.pid, signal.SIGUSR1)
            try:
                wait_for(lambda: "File " in self.stderr_tail(), 5, "the checker's stack dump")
            except kubesim.SimError as e:
                out.append(str(e))
            out.append(self.stderr_tail())
        out += [client_timeline(c, conns) for c in clients if not c["connected"]]
        out += [self.cluster.pod_log_tail(p, 25) for p in self.cluster.sts.pods.values()]
        return "\n".join(out)

    def stop(self):
        self.send("stop")
        self.wait_event("done", 90)
        self.proc.wait(30)
        with open(self.result_path) as f:
            return json.load(f)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.stderr.close()


TOOLS = {"ip": "iproute2", "unshare": "util-linux", "nsenter": "util-linux", "setpriv": "util-linux",
         "dnsmasq": "dnsmasq-base", "haproxy": "haproxy", "getent": "libc-bin"}


@pytest.fixture
def cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root (network and mount namespaces), as the netsplit test does")
    missing = sorted({pkg for tool, pkg in TOOLS.items()
                      if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")})
    assert not missing, "missing Debian packages: %s" % " ".join(missing)
    workdir = tempfile.mkdtemp(prefix="flock-k8s-")
    c = kubesim.Cluster(workdir, NAMESPACE, FLOCKD, CONTAINERFILE, MAX_PODS)
    c.workdir_keep = bool(os.environ.get("FLOCK_K8S_KEEP"))
    try:
        c.open()
        yield c
    finally:
        if getattr(c, "checker", None) is not None:
            c.checker.kill()
        errors = c.close()
        for e in errors:
            log("cleanup: %s" % e)
        if c.workdir_keep:
            log("kept %s (FLOCK_K8S_KEEP)" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        left = [n for n in kubesim.ip("netns", "list", check=False).stdout.split()
                if n.startswith("%s%s-" % (kubesim.NS_PREFIX, c.tag))]
        assert not left, "namespaces left behind: %s" % left
        assert not errors, "cleanup: %s" % errors


def render(cluster, helm, files):
    objs = kubesim.helm_template(helm, RELEASE, NAMESPACE, CHART, files, cluster.workdir)
    log("helm template %s: %s" % (" ".join(os.path.basename(f) for f in files),
                                  ", ".join("%s/%s" % k for k in sorted(objs))))
    return objs


def peers_up(cluster, pod):
    m = cluster.metrics(pod)
    up = [v for k, v in m.items() if k.startswith("flock_cluster_peers{") and 'state="up"' in k]
    refused = {re.search(r'reason="(\w+)"', k).group(1): v for k, v in m.items()
               if k.startswith("flock_cluster_peers_refused_total{")}
    return (int(up[0]) if up else None), refused


def wait_cluster(cluster, n, what):
    """Every pod sees the n-1 others up (they found each other through the headless Service's
    DNS name with the chart's certificates and secret), and nobody refused a peer's certificate
    or secret."""
    pods = sorted(cluster.sts.pods.values(), key=lambda p: p.ordinal)
    assert len(pods) == n

    def formed():
        states = {p.name: peers_up(cluster, p) for p in pods}
        for name, (_, refused) in states.items():
            bad = {r: v for r, v in refused.items() if r in ("certificate", "secret") and v > 0}
            assert not bad, "%s refused peers: %s" % (name, bad)
        return all(up == n - 1 for up, _ in states.values()) and states
    states = wait_for(formed, 30, "every pod to see its %d peers up after %s" % (n - 1, what), step=0.5)
    log("cluster after %s: %s" % (what, ", ".join("%s sees %d up" % (k, v[0]) for k, v in sorted(states.items()))))
    want = sorted(p.ip for p in pods)
    got = cluster.hub(kubesim.dns_query_a, kubesim.DNS_IP, cluster.headless_fqdn)
    assert got == want, "DNS %s = %s, pods are at %s" % (cluster.headless_fqdn, got, want)


def test_lifecycle(cluster):
    assert os.path.exists(FLOCKD), "no flockd at %s (build first, or set FLOCKD)" % FLOCKD
    helm = helm_binary()
    phases = []
    t_start = time.monotonic()

    def phase(name):
        phases.append((name, time.monotonic()))
        log("==== %s ====" % name)

    # ---- install ---------------------------------------------------------------------------
    phase("install (3 pods)")
    objs = render(cluster, helm, [VALUES] + EXTRA_VALUES)
    sts = kubesim.only(objs, "StatefulSet")
    tls_secret = [k for k, o in objs.items() if k[0] == "Secret" and o.get("type") == "kubernetes.io/tls"]
    assert len(tls_secret) == 1, "expected the chart's generated cluster TLS Secret, got %s" % tls_secret
    spec = sts["spec"]["template"]["spec"]
    c0 = spec["containers"][0]
    log("rendered: replicas %d, %s, grace %ss, preStop %s, args %s" % (
        sts["spec"]["replicas"], sts["spec"]["podManagementPolicy"], spec["terminationGracePeriodSeconds"],
        json.dumps(c0["lifecycle"]["preStop"]), c0.get("args")))
    cluster.install(objs)
    wait_cluster(cluster, 3, "install")
    pod0 = cluster.sts.pods[0]
    # Inside a pod, the short name resolves through the search path of its resolv.conf.
    short = cluster.headless["metadata"]["name"]
    r = kubesim.run(["ip", "netns", "exec", pod0.netns, "getent", "ahostsv4", short], check=False)
    got = sorted({l.split()[0] for l in r.stdout.splitlines()})
    assert got == sorted(p.ip for p in cluster.sts.pods.values()), "getent %s in %s: %s" % (short, pod0.name, r.stdout)
    r = kubesim.run(["nsenter", "--target", str(pod0.proc.pid), "--uts", "hostname"])
    assert r.stdout.strip() == pod0.name, "hostname in %s: %r" % (pod0.name, r.stdout)
    log("in %s: getent ahostsv4 %s -> %s; hostname %s" % (pod0.name, short, got, r.stdout.strip()))

    cluster.checker = checker = Checker(cluster, cluster.workdir)
    checker.wait_event("ready", 90)
    checker.wait_flowing("start")

    # ---- scale 3 -> 5 ------------------------------------------------------------------------
    phase("scale 3 -> 5")
    cluster.sts.scale(5)
    wait_cluster(cluster, 5, "scale-up")
    # Clients reconnect one by one: round robin puts some on the new pods, so that scaling
    # down has sessions to hand over.
    checker.send("reconnect")
    ev = checker.wait_event("reconnected", 120)
    assert not ev["failed"], "clients that did not reconnect: %s" % ev["failed"]
    held = cluster.lb.sessions()
    log("connections per pod after the rebalance: %s" % held)
    assert held.get("%s-3" % cluster.sts.name, 0) > 0 and held.get("%s-4" % cluster.sts.name, 0) > 0, \
        "no client on the new pods after reconnecting everyone: %s" % held
    checker.wait_flowing("scale-up")

    # ---- scale 5 -> 3 ------------------------------------------------------------------------
    phase("scale 5 -> 3")
    cluster.sts.scale(3)
    wait_cluster(cluster, 3, "scale-down")
    for i in (3, 4):
        claim = os.path.join(cluster.pvc_root, "data-%s-%d" % (cluster.sts.name, i))
        assert os.path.isdir(claim) and os.listdir(claim), "the volume of ordinal %d is gone: %s" % (i, claim)
    checker.wait_flowing("scale-down")

    # ---- rolling upgrade -----------------------------------------------------------------------
    phase("rolling upgrade (2, 1, 0)")
    new = render(cluster, helm, [VALUES] + EXTRA_VALUES + [UPGRADE])
    old_rev = kubesim.template_revision(cluster.sts.obj)
    cluster.upgrade(new, keep=tls_secret)
    new_rev = kubesim.template_revision(cluster.sts.obj)
    assert new_rev != old_rev, "the upgrade did not change the pod template: no rollout would happen"
    before = len(cluster.all_pods)
    cluster.sts.rolling_update()
    order = [p.ordinal for p in cluster.all_pods[before:]]
    assert order == [2, 1, 0], "rollout order %s" % order
    for p in cluster.sts.pods.values():
        assert p.revision == new_rev
        assert p.template["metadata"]["annotations"]["kubesim/revision"] == "2"
        conf = [m for m in p.mounts if m["path"] == "/etc/flock/flock.yaml"][0]["source"]
        assert "sys_interval: 5" in open(conf).read(), "%s runs the old ConfigMap" % p.name
    wait_cluster(cluster, 3, "the rolling upgrade")
    checker.wait_flowing("the rolling upgrade")

    # ---- delete pod 1 --------------------------------------------------------------------------
    phase("delete pod 1")
    pod1 = cluster.sts.pods[1]
    held = cluster.lb.sessions().get(pod1.name, 0)
    log("%s holds %d client connections" % (pod1.name, held))
    claim = [m for m in pod1.mounts if m["path"] == "/data"][0]["source"]
    cluster.sts.delete_pod(1)
    assert [m for m in cluster.sts.pods[1].mounts if m["path"] == "/data"][0]["source"] == claim
    wait_cluster(cluster, 3, "deleting pod 1")
    checker.wait_flowing("deleting pod 1")

    # ---- results ---------------------------------------------------------------------------------
    # (if the load stopped flowing at some point, wait_flowing has already failed with timelines)
    phase("drain the checker")
    result = checker.stop()
    phase("end")
    report(cluster, result, phases, t_start)
    assert_results(cluster, result, held)


def report(cluster, result, phases, t_start):
    print("\n================ deploy.k8s.lifecycle summary ================")
    for (name, t), (_, t_next) in zip(phases, phases[1:]):
        print("  %-28s %6.1f s" % (name, t_next - t))
    print("  %-28s %6.1f s" % ("total", time.monotonic() - t_start))
    pubs, subs = result["publishers"], result["subscribers"]
    published = sum(p["published"] for p in pubs)
    acked = sum(p["acked"] for p in pubs)
    print("messages: published %d, acknowledged %d (%d never acknowledged: not counted), over %.0f s" % (
        published, acked, published - acked, result["stopped"] - result["started"]))
    for s in subs:
        reconnects = len(s["connects"]) - 1
        print("  %-16s MQTT %-5s received %6d distinct, %4d duplicates, %d missing; %d reconnects "
              "(%d refused CONNACKs, %d failed attempts), sessions lost: %d" % (
                  s["client_id"].split("-")[-1], s["protocol"], s["received"], s["duplicates"],
                  len(s["missing"]), reconnects, len(s["refused"]), s["connect_failures"], len(s["lost_sessions"])))
    for p in pubs:
        print("  %-16s published %6d, acknowledged %6d; %d reconnects" % (
            p["client_id"].split("-")[-1], p["published"], p["acked"], len(p["connects"]) - 1))
    print("terminations:")
    for t in cluster.terminations:
        print("  %-10s %-18s preStop %5.1f s, SIGTERM->exit %5s s, exit %s%s" % (
            t["pod"], t["reason"], t.get("preStop_s", 0), t.get("sigterm_to_exit_s", "-"), t["exit_code"],
            " SIGKILL" if t["killed"] else ""))
    restarts = {p.uid: p.restarts for p in cluster.all_pods if p.restarts}
    print("container restarts: %s" % (restarts or "none"))
    print("==============================================================\n", flush=True)


def assert_results(cluster, result, held_by_deleted):
    subs, pubs = result["subscribers"], result["publishers"]
    problems = []
    # No acknowledged message lost for any persistent subscriber.
    for s in subs:
        if s["missing"]:
            problems.append("%s is missing %d acknowledged messages, first: %s" % (
                s["client_id"], len(s["missing"]),
                ["%s#%d sent %s acked %s" % (n, q, time.strftime("%H:%M:%S", time.localtime(ts)),
                                              time.strftime("%H:%M:%S", time.localtime(ta)))
                 for n, q, ts, ta in s["missing"][:10]]))
    # Every reconnect of a persistent subscriber came back with its session.
    for s in subs:
        if s["connects"][0][1] != 0:
            problems.append("%s: the first connect found a session (ids must be fresh)" % s["client_id"])
        bad = [c for c in s["connects"][1:] if c[1] != 1]
        if bad:
            problems.append("%s: %d reconnects without session present, at %s" % (
                s["client_id"], len(bad), [time.strftime("%H:%M:%S", time.localtime(c[0])) for c in bad]))
    # Every client reconnected after every disconnect and was connected at the end.
    for c in subs + pubs:
        last_connect = c["connects"][-1][0] if c["connects"] else 0
        last_disconnect = c["disconnects"][-1][0] if c["disconnects"] else 0
        if not c["connected"] or last_connect < last_disconnect:
            problems.append("%s: %d connects, %d disconnects, connected at the end: %s" % (
                c["client_id"], len(c["connects"]), len(c["disconnects"]), c["connected"]))
    if not result["all_connected_at_stop"]:
        problems.append("not every client was connected when the checker stopped")
    # The run did disturb the sessions: pods holding clients went away.
    forced = sum(1 for s in subs for d in s["disconnects"] if not d[2])
    if forced == 0:
        problems.append("no subscriber was ever disconnected by a pod going away: the scenario tested nothing")
    if held_by_deleted == 0:
        problems.append("the deleted pod held no client connection")
    # Pods: SIGTERM honoured within the grace period, exit 0, no restarts.
    for t in cluster.terminations:
        if t["killed"]:
            problems.append("%s needed SIGKILL (%s)" % (t["pod"], t["reason"]))
        elif t["exit_code"] != 0:
            problems.append("%s exited %s after SIGTERM (%s)" % (t["pod"], t["exit_code"], t["reason"]))
    for p in cluster.all_pods:
        for reason, _ in p.restarts:
            problems.append("%s restarted its container: %s" % (p.uid, reason))
    if problems:
        conns = cluster.lb.connections()
        timelines = [client_timeline(c, conns) for c in subs if c["lost_sessions"] or c["missing"]]
        late = {m[0] for c in subs for m in c["missing"]}  # publishers of missing messages
        timelines += [client_timeline(p, conns) for p in pubs if p["name"] in late]
        tails = "\n".join(cluster.pod_log_tail(p, 15) for p in cluster.all_pods)
        pytest.fail("\n".join(problems) + "\n\npod events:\n" + pod_timeline(cluster) + "\n"
                    + "\n".join(timelines) + "\n" + tails, pytrace=False)


def hms(t):
    return time.strftime("%H:%M:%S", time.localtime(t)) + ".%03d" % int((t % 1) * 1000)


def client_timeline(c, conns):
    """A client's connects (with the pod the balancer sent it to), refusals and disconnects."""
    def pod_of(port, t):
        cands = [x for x in conns if x[2] == port and x[0] <= t + 1]
        return cands[-1][3] if cands else "?"
    rows = [(x[0], "connect -> %s, session present %d" % (pod_of(x[3], x[0]), x[1])) for x in c["connects"]]
    acked_ports = {x[3] for x in c["connects"]} | {x[2] for x in c["refused"]}
    rows += [(x[0], "TCP connection through the balancer -> %s, no CONNACK" % pod_of(x[1], x[0]))
             for x in c.get("sockets", []) if x[1] not in acked_ports]
    rows += [(x[0], "CONNACK refused (%s) by %s" % (x[1], pod_of(x[2], x[0]))) for x in c["refused"]]
    rows += [(x[0], "disconnected (%s%s)" % (x[1], ", voluntary" if x[2] else "")) for x in c["disconnects"]]
    return "%s:\n%s" % (c["client_id"], "\n".join("  %s %s" % (hms(t), what) for t, what in sorted(rows)))


def pod_timeline(cluster):
    rows = []
    for p in cluster.all_pods:
        for t, what in p.events:
            rows.append((t, "%s %s" % (p.name, what)))
    # pod events carry monotonic times: shown as wall clock
    off = time.time() - time.monotonic()
    return "\n".join("  %s %s" % (hms(t + off), what) for t, what in sorted(rows))
