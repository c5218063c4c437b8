"""Runs a rendered Helm chart the way Kubernetes would, on one machine, without Kubernetes.

What stands in for what (see README.md):

- API server: the objects of `helm template`, indexed by kind and name (`Cluster.objects`).
  An upgrade replaces them; the StatefulSet's immutable fields must not change.
- Pod sandbox: a network namespace per pod incarnation, `eth0` on a bridge in a "node"
  namespace (the hub), a new address each time a pod is created (as a CNI would give);
  /etc/netns/<ns>/resolv.conf (cluster DNS, search path, ndots:5) and hosts (the pod's
  FQDN, as the kubelet writes it).
- Container runtime: `ip netns exec NS unshare --mount --uts --propagation private
  pod_init.py SPEC` (pod_init.py: host name, volumes bind-mounted at their mountPaths,
  read-only root, user/group/fsGroup, no_new_privs, exec of the entrypoint).
- Kubelet: volumes laid out like its atomic writer (`..data` symlinks, defaultMode, fsGroup
  ownership), env from the downward API, `$(VAR)` expansion of command and args, the
  startup, liveness and readiness probes at their periods and thresholds (HTTP GET from the
  node namespace), restarts (liveness failure, crash), termination (preStop, SIGTERM, the
  grace period, SIGKILL).
- Endpoints + kube-proxy: HAProxy in the hub namespace on the client Service's address,
  round robin over the pods that are Ready and not terminating (runtime API updates).
- CoreDNS: dnsmasq in the hub namespace: the headless Service's name with one A record per
  pod (publishNotReadyAddresses: ready or not, from the pod's creation until it is gone), each
  pod's `<pod>.<headless>.<ns>.svc.<domain>`, the client Service's name.
- StatefulSet controller: stable names and ordinals, one volume per ordinal kept across pod
  deletion, Parallel or OrderedReady creation and scale-down (highest ordinal first),
  RollingUpdate in reverse ordinal order waiting for Ready, recreation of a deleted pod.

Nothing is added to the root network namespace. Root only (namespaces, mounts).
"""

import base64
import copy
import ctypes
import fcntl
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "fixtures"))
import haproxy_admin  # noqa: E402
POD_INIT = os.path.join(HERE, "pod_init.py")
PYTHON = "/usr/bin/python3"
SUBNET = "10.215.0"          # lives only inside our namespaces
DNS_IP = SUBNET + ".1"       # kube-dns
SERVICE_IP = SUBNET + ".2"   # the client Service's ClusterIP (HAProxy)
CLIENT_IP = SUBNET + ".3"    # the checker's pod
FIRST_POD_IP = 10
NS_PREFIX = "fk8s-"
STATE_DIR = "/run/flock-k8s-sim"   # which host mount points a run created (shared by runs)
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

T0 = time.monotonic()


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


class SimError(Exception):
    pass


def run(cmd, check=True, timeout=60, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise SimError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


def ip(*args, check=True):
    return run(["ip"] + list(args), check=check, timeout=30)


def wait_for(cond, timeout, what, step=0.1):
    """Poll cond() until truthy; raise naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except (OSError, ValueError, http.client.HTTPException) as e:
            last = e
        if time.monotonic() >= deadline:
            raise SimError("timed out after %.0f s waiting for %s (last error: %r)" % (timeout, what, last))
        time.sleep(step)


def enter_netns(name):
    """Move the calling thread into network namespace `name` for good (sockets it makes live there)."""
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (name, os.strerror(e)))
    finally:
        os.close(fd)


def http_get(host, port, path, timeout):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ----------------------------------------------------------------------------- DNS client
def dns_query_a(server, name, timeout=1.0):
    """A records of `name` from `server` (a minimal UDP DNS client): a sorted list, [] for none."""
    qid = int.from_bytes(os.urandom(2), "big")
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(q, (server, 53))
        while True:
            data, _ = s.recvfrom(4096)
            if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack("!HHHHHH", data[:12])
    rcode = flags & 0xF
    if rcode not in (0, 3):
        raise OSError("DNS rcode %d for %s" % (rcode, name))

    def skip_name(pos):
        while True:
            n = data[pos]
            if n == 0:
                return pos + 1
            if n & 0xC0 == 0xC0:
                return pos + 2
            pos += 1 + n

    pos = 12
    for _ in range(qd):
        pos = skip_name(pos) + 4
    out = []
    for _ in range(an):
        pos = skip_name(pos)
        rtype, _, _, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return sorted(out)


# ----------------------------------------------------------------------------- $(VAR) expansion
def expand(s, env):
    """Kubernetes' third_party/forked/golang/expansion.Expand with the kubelet's mapping:
    $(VAR) -> its value when VAR is defined, else left as written; $$ -> $."""
    out = []
    checkpoint = 0
    cursor = 0
    while cursor < len(s):
        if s[cursor] == "$" and cursor + 1 < len(s):
            out.append(s[checkpoint:cursor])
            rest = s[cursor + 1:]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:close]
                    out.append(env[name] if name in env else "$(" + name + ")")
                    advance = close + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + s[checkpoint:]


# ----------------------------------------------------------------------------- the image
def image_config(containerfile):
    """ENTRYPOINT, CMD, WORKDIR, USER and ENV of the runtime stage of deploy/Containerfile."""
    text = open(containerfile).read()
    text = re.sub(r"\\\n", " ", text)
    stage, cfg = None, {}
    stages = {}
    for line in text.splitlines():
        line = line.strip()
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            base, stage = m.group(1), (m.group(2) or "").lower()
            cfg = copy.deepcopy(stages.get(base.lower(), {"env": {}}))
            stages[stage] = cfg
            continue
        m = re.match(r"(ENTRYPOINT|CMD|WORKDIR|USER|ENV)\s+(.*)", line, re.I)
        if not m or stage is None:
            continue
        key, val = m.group(1).upper(), m.group(2).strip()
        if key in ("ENTRYPOINT", "CMD"):
            cfg[key] = json.loads(val)
        elif key == "ENV":
            for k, v in re.findall(r'(\w+)=("[^"]*"|\S+)', val):
                cfg["env"][k] = v.strip('"')
        else:
            cfg[key] = val
    if "runtime" not in stages:
        raise SimError("%s has no stage named runtime" % containerfile)
    return stages["runtime"]


# ----------------------------------------------------------------------------- rendering
def helm_template(helm, release, namespace, chart, values_files, workdir):
    env = dict(os.environ)
    for k in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        env[k] = os.path.join(workdir, "helm-home", k.lower())
    cmd = [helm, "template", release, chart, "--namespace", namespace]
    for f in values_files:
        cmd += ["-f", f]
    r = run(cmd, env=env, timeout=120)
    objects = {}
    for doc in yaml.safe_load_all(r.stdout):
        if not doc:
            continue
        key = (doc["kind"], doc["metadata"]["name"])
        if key in objects:
            raise SimError("rendered twice: %s/%s" % key)
        objects[key] = doc
    return objects


def only(objects, kind, pred=lambda o: True):
    found = [o for (k, _), o in objects.items() if k == kind and pred(o)]
    if len(found) != 1:
        raise SimError("expected one %s, rendered %d" % (kind, len(found)))
    return found[0]


def selector_matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def template_revision(sts):
    """Like a ControllerRevision's hash: changes exactly when the pod template changes."""
    return hashlib.sha256(json.dumps(sts["spec"]["template"], sort_keys=True).encode()).hexdigest()[:10]


IMMUTABLE_STS_FIELDS = ("selector", "serviceName", "volumeClaimTemplates", "podManagementPolicy")


# ----------------------------------------------------------------------------- infrastructure
class MountPoints:
    """Empty directories made on the host as mount points (e.g. /data, /etc/flock), shared by
    concurrent runs through a lock file: a run holds a shared lock while it lives and removes
    the directories the runs made only when it is the last one (exclusive lock)."""

    def __init__(self):
        os.makedirs(STATE_DIR, exist_ok=True)
        self.lock_fd = os.open(os.path.join(STATE_DIR, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        self.list_path = os.path.join(STATE_DIR, "created")
        fcntl.flock(self.lock_fd, fcntl.LOCK_SH)
        self.roots = set()

    def ensure(self, mounts):
        """mounts: [(path, "dir"|"file")]. For each path that does not exist, its highest missing
        ancestor is made (and recorded): a directory, or an empty file when that is the mount
        point of a file (subPath). Returns the directories pods cover with a tmpfs."""
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        try:
            tops = {}
            for p, kind in mounts:  # all of them first: making one must not hide another's top
                missing = None
                q = os.path.normpath(p)
                while q != "/" and not os.path.lexists(q):
                    missing = q
                    q = os.path.dirname(q)
                if missing is not None:
                    tops[missing] = kind if missing == os.path.normpath(p) else "dir"
            for missing, kind in sorted(tops.items()):
                with open(self.list_path, "a") as f:
                    f.write("%s %s\n" % (kind, missing))
                if kind == "file":
                    os.close(os.open(missing, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                else:
                    os.mkdir(missing, 0o755)
                    self.roots.add(missing)
            # Directories an earlier (concurrent) run made count too: pods mount a tmpfs there.
            for kind, line in self._listed():
                if kind == "dir" and any(os.path.normpath(p) == line or os.path.normpath(p).startswith(line + "/")
                                         for p, _ in mounts):
                    self.roots.add(line)
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_SH)
        return sorted(self.roots)

    def _listed(self):
        try:
            with open(self.list_path) as f:
                return [tuple(l.split(None, 1)) for l in (x.strip() for x in f) if l]
        except FileNotFoundError:
            return []

    def close(self):
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log("mount points: another run is still using them; it removes them")
            os.close(self.lock_fd)
            return
        for kind, d in sorted(self._listed(), key=lambda x: len(x[1]), reverse=True):
            try:
                if kind == "file":
                    if os.path.getsize(d) == 0:
                        os.unlink(d)
                else:
                    os.rmdir(d)
                log("removed mount point %s (made by a run)" % d)
            except FileNotFoundError:
                pass
            except OSError as e:
                log("could not remove %s: %s" % (d, e))
        for f in (self.list_path, os.path.join(STATE_DIR, "lock")):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass
        try:
            os.rmdir(STATE_DIR)
        except OSError:
            pass
        os.close(self.lock_fd)


def cleanup_stale():
    """Namespaces (and /etc/netns entries) of earlier runs whose process is gone."""
    r = ip("netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", name)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            log("removing stale namespace %s (its run, pid %s, is gone)" % (name, m.group(1)))
            for pid in ip("netns", "pids", name, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            ip("netns", "del", name, check=False)
            shutil.rmtree("/etc/netns/" + name, ignore_errors=True)
    if os.path.isdir("/etc/netns"):
        for name in os.listdir("/etc/netns"):
            m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", name)
            if m and not os.path.exists("/proc/%s" % m.group(1)):
                shutil.rmtree("/etc/netns/" + name, ignore_errors=True)


class Network:
    """The hub ("node") namespace with bridge br0 holding DNS_IP and SERVICE_IP; pod namespaces."""

    def __init__(self, tag):
        self.tag = tag
        self.hub = "%s%s-hub" % (NS_PREFIX, tag)
        self.namespaces = []
        self.etc_dirs = []
        self.veth_n = 0
        self.made_etc_netns = not os.path.isdir("/etc/netns")

    def open(self):
        self._add(self.hub)
        # A fixed MAC: a bridge without one takes the lowest of its ports' and
        # changes it when that pod's veth goes, and the checker's ARP entry
        # for the Service address then points nowhere for ~30 s (its
        # reconnects hung in connect()).
        ip("-n", self.hub, "link", "add", "br0", "address", "02:00:0a:d7:00:01", "type", "bridge")
        ip("-n", self.hub, "addr", "add", DNS_IP + "/24", "dev", "br0")
        ip("-n", self.hub, "addr", "add", SERVICE_IP + "/24", "dev", "br0")
        ip("-n", self.hub, "link", "set", "br0", "up")

    def _add(self, name):
        r = ip("netns", "add", name, check=False)
        if r.returncode != 0:
            raise SimError("ip netns add %s: %s" % (name, r.stderr.strip()))
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def add_endpoint(self, name, address, resolv_conf, hosts=None):
        """A namespace with eth0 = address/24 on the bridge and its /etc/netns files."""
        etc = "/etc/netns/" + name
        os.makedirs(etc, exist_ok=True)
        self.etc_dirs.append(etc)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write(resolv_conf)
        if hosts is not None:
            with open(os.path.join(etc, "hosts"), "w") as f:
                f.write(hosts)
        self._add(name)
        self.veth_n += 1
        hub_end = "v%d" % self.veth_n
        ip("-n", self.hub, "link", "add", hub_end, "type", "veth", "peer", "name", "eth0", "netns", name)
        ip("-n", self.hub, "link", "set", hub_end, "master", "br0")
        ip("-n", self.hub, "link", "set", hub_end, "up")
        ip("-n", name, "addr", "add", address + "/24", "dev", "eth0")
        run(["ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.conf.eth0.arp_notify=1"])
        ip("-n", name, "link", "set", "eth0", "up")

    def remove(self, name):
        """Delete a namespace (its veth pair goes with it) and its /etc/netns files."""
        pids = ip("netns", "pids", name, check=False).stdout.split()
        if pids:
            raise SimError("namespace %s still has processes %s" % (name, pids))
        ip("netns", "del", name, check=False)
        if name in self.namespaces:
            self.namespaces.remove(name)
        etc = "/etc/netns/" + name
        shutil.rmtree(etc, ignore_errors=True)
        if etc in self.etc_dirs:
            self.etc_dirs.remove(etc)

    def close(self):
        errors = []
        for name in reversed(list(self.namespaces)):
            for pid in ip("netns", "pids", name, check=False).stdout.split():
                errors.append("process %s left in %s: killed" % (pid, name))
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            r = ip("netns", "del", name, check=False)
            if r.returncode != 0:
                errors.append("ip netns del %s: %s" % (name, r.stderr.strip()))
        self.namespaces = []
        for etc in self.etc_dirs:
            shutil.rmtree(etc, ignore_errors=True)
        self.etc_dirs = []
        if self.made_etc_netns:
            try:
                os.rmdir("/etc/netns")  # only if empty: another run may be using it
            except OSError:
                pass
        return errors


class Daemon:
    """A process started by this run in a namespace, stopped by its PID."""

    def __init__(self, name, cmd, log_path):
        self.name = name
        self.log_path = log_path
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log_file.close()

    def tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""


def _die_with_parent():
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


class Dns:
    """dnsmasq in the hub namespace answering the cluster's names from a hosts file."""

    def __init__(self, sim):
        self.sim = sim
        self.path = os.path.join(sim.workdir, "dns-hosts")
        self.records = {}   # name -> sorted list of addresses
        self.daemon = None
        self.lock = threading.Lock()

    def start(self, records):
        self.records = {k: sorted(v) for k, v in records.items()}
        self._write()
        self.daemon = Daemon("dnsmasq", [
            "ip", "netns", "exec", self.sim.net.hub, "dnsmasq", "--keep-in-foreground",
            "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--addn-hosts=" + self.path,
            "--listen-address=" + DNS_IP, "--bind-interfaces", "--port=53", "--user=root",
            "--pid-file=", "--local=/%s/" % self.sim.domain, "--domain-needed",
            "--local-ttl=1", "--no-negcache", "--log-facility=-"],
            os.path.join(self.sim.workdir, "dnsmasq.log"))
        self.verify(list(self.records))

    def _write(self):
        lines = ["%s %s" % (a, name) for name, addrs in sorted(self.records.items()) for a in addrs]
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.path)

    def set(self, changes):
        """changes: name -> addresses ([] removes the name). Returns once dnsmasq answers so."""
        with self.lock:
            for name, addrs in changes.items():
                if addrs:
                    self.records[name] = sorted(addrs)
                else:
                    self.records.pop(name, None)
            self._write()
            self.daemon.proc.send_signal(signal.SIGHUP)
            self.verify(list(changes))

    def verify(self, names):
        for name in names:
            want = self.records.get(name, [])
            wait_for(lambda: self.sim.hub(dns_query_a, DNS_IP, name) == want, 10,
                     "dnsmasq to answer %s with %s" % (name, want))


class LoadBalancer:
    """HAProxy on the client Service's address: one frontend per Service port, a server slot
    per pod ordinal, enabled while the pod is Ready and not terminating (Endpoints)."""

    def __init__(self, sim, ports, max_pods, pod_name):
        self.sim = sim
        self.ports = ports           # [(service port name, port, target container port)]
        self.slots = [pod_name(i) for i in range(max_pods)]
        self.cfg = os.path.join(sim.workdir, "haproxy.cfg")
        self.sock = os.path.join(sim.workdir, "haproxy.sock")
        self.current = {}            # pod name -> address while enabled
        self.daemon = None
        self.lock = threading.Lock()

    def start(self):
        # One log line per connection once it reaches a pod: which pod a client landed on.
        parts = ["global", "    maxconn 2000", "    stats socket %s mode 600 level admin" % self.sock,
                 "    log stdout format raw local0", "",
                 "defaults", "    mode tcp", "    log global", "    option logasap",
                 '    log-format "conn %ci:%cp %s %Ts.%ms"',
                 "    timeout connect 3s", "    timeout client 2m", "    timeout server 2m", ""]
        for name, port, target in self.ports:
            parts += ["frontend %s" % name, "    bind %s:%d" % (SERVICE_IP, port),
                      "    default_backend %s" % name, "", "backend %s" % name, "    balance roundrobin"]
            parts += ["    server %s %s.254:%d disabled" % (s, SUBNET, target) for s in self.slots]
            parts.append("")
        with open(self.cfg, "w") as f:
            f.write("\n".join(parts))
        self.daemon = Daemon("haproxy", ["ip", "netns", "exec", self.sim.net.hub, "/usr/sbin/haproxy",
                                         "-db", "-f", self.cfg], os.path.join(self.sim.workdir, "haproxy.log"))
        wait_for(lambda: os.path.exists(self.sock) and self.command("show info"), 10, "haproxy's admin socket")

    def command(self, cmd):
        return haproxy_admin.command(self.sock, cmd)

    def set_endpoints(self, endpoints):
        """endpoints: pod name -> address of the pods that are Ready and not terminating."""
        with self.lock:
            for pod, addr in endpoints.items():
                if self.current.get(pod) == addr:
                    continue
                if pod not in self.slots:
                    raise SimError("no HAProxy slot for %s" % pod)
                for name, _, target in self.ports:
                    out = self.command("set server %s/%s addr %s port %d" % (name, pod, addr, target))
                    if "changed" not in out and "no need to change" not in out:
                        raise SimError("haproxy: set server addr %s: %s" % (pod, out.strip()))
                    self.command("set server %s/%s state ready" % (name, pod))
                self.current[pod] = addr
                log("endpoints: + %s (%s)" % (pod, addr))
            for pod in list(self.current):
                if pod not in endpoints:
                    for name, _, _ in self.ports:
                        self.command("set server %s/%s state maint" % (name, pod))
                    del self.current[pod]
                    log("endpoints: - %s" % pod)

    def connections(self):
        """[(unix time, client address, client port, pod name)] of every connection so far."""
        out = []
        try:
            with open(self.daemon.log_path) as f:
                for line in f:
                    m = re.match(r"conn (\S+):(\d+) (\S+) (\d+)\.(\d+)", line)
                    if m:
                        out.append((int(m.group(4)) + int(m.group(5)) / 1000.0, m.group(1), int(m.group(2)), m.group(3)))
        except OSError:
            pass
        return out

    def sessions(self):
        """pod name -> current connections through the balancer (all Service ports)."""
        out = {}
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("svname") in self.slots:
                out[row["svname"]] = out.get(row["svname"], 0) + int(row.get("scur") or 0)
        return out


# ----------------------------------------------------------------------------- pods
class Pod:
    """One pod object: sandbox (namespace, address), volumes, its container and its kubelet."""

    def __init__(self, sim, sts, ordinal, incarnation):
        self.sim = sim
        self.sts = sts
        self.ordinal = ordinal
        self.name = "%s-%d" % (sts.name, ordinal)
        self.sts_obj = sts.obj
        self.revision = template_revision(sts.obj)
        self.template = copy.deepcopy(sts.obj["spec"]["template"])
        self.spec = self.template["spec"]
        self.uid = "%s-%d" % (self.name, incarnation)
        self.netns = "%s%s-p%d" % (NS_PREFIX, sim.tag, incarnation)
        self.ip = sim.allocate_ip(sts.name, ordinal)
        self.dir = os.path.join(sim.workdir, "pods", self.uid)
        self.log_path = os.path.join(sim.workdir, "logs", "%s.log" % self.uid)
        self.hostname = self.spec.get("hostname") or self.name
        self.subdomain = self.spec.get("subdomain") or sts.obj["spec"]["serviceName"]
        self.fqdn = "%s.%s.%s.svc.%s" % (self.hostname, self.subdomain, sim.namespace, sim.domain)
        containers = self.spec["containers"]
        if len(containers) != 1 or self.spec.get("initContainers"):
            raise SimError("kubesim runs pods with one container and no init containers")
        self.container = containers[0]
        self.proc = None
        self.started = False     # startup probe passed (or none)
        self.ready = False
        self.terminating = False
        self.gone = False
        self.restarts = []       # (reason, time)
        self.terminations = []   # dicts, one per container stop
        self.events = []
        self.lock = threading.RLock()
        self.wake = threading.Event()
        self.kubelet = None
        self.stop_kubelet = False
        self.probe_failures = {"startup": 0, "liveness": 0, "readiness": 0}
        self.killing = False
        self.created_at = time.monotonic()

    # -- sandbox and volumes
    def create(self):
        os.makedirs(self.dir)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        resolv = "search %s.svc.%s svc.%s %s\nnameserver %s\noptions ndots:5\n" % (
            self.sim.namespace, self.sim.domain, self.sim.domain, self.sim.domain, DNS_IP)
        hosts = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost "
                 "ip6-loopback\n%s\t%s\t%s\n" % (self.ip, self.fqdn, self.hostname))
        self.sim.net.add_endpoint(self.netns, self.ip, resolv, hosts)
        self.run_spec = self._container_spec()
        with open(os.path.join(self.dir, "spec.json"), "w") as f:
            json.dump(self.run_spec, f, indent=1)
        self.event("created (%s, revision %s)" % (self.ip, self.revision))

    def event(self, what):
        self.events.append((time.monotonic(), what))
        log("pod %s: %s" % (self.name, what))

    def _security(self):
        psc = self.spec.get("securityContext") or {}
        csc = self.container.get("securityContext") or {}
        merged = dict(psc)
        merged.update({k: v for k, v in csc.items() if k in ("runAsUser", "runAsGroup", "runAsNonRoot",
                                                                "seccompProfile")})
        image_user = self.sim.image.get("USER", "0:0").split(":")
        uid = int(merged.get("runAsUser", image_user[0]))
        gid = int(merged.get("runAsGroup", image_user[1] if len(image_user) > 1 else uid))
        if merged.get("runAsNonRoot") and uid == 0:
            raise SimError("%s: runAsNonRoot and the user is root: the kubelet refuses to start it" % self.name)
        if uid == 0:
            raise SimError("kubesim does not run containers as root (no capability handling)")
        fs_group = psc.get("fsGroup")
        groups = sorted({gid} | ({int(fs_group)} if fs_group is not None else set())
                        | {int(g) for g in psc.get("supplementalGroups", [])})
        return uid, gid, fs_group, groups, csc

    def _atomic_dir(self, path, files, mode, fs_group):
        """The kubelet's atomic writer layout: ..<timestamp>/ with the files, ..data -> it, and
        one symlink per file through ..data (so a change swaps one symlink)."""
        ts = time.strftime("..%Y_%m_%d_%H_%M_%S.") + str(time.time_ns() % 10**9)
        os.makedirs(os.path.join(path, ts))
        for rel, content in files.items():
            target = os.path.join(path, ts, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(content)
            m = mode
            if fs_group is not None:
                os.chown(target, 0, int(fs_group))
                m |= 0o440  # SetVolumeOwnership on a read-only volume
            os.chmod(target, m)
        os.symlink(ts, os.path.join(path, "..data"))
        for rel in {r.split("/")[0] for r in files}:
            os.symlink(os.path.join("..data", rel), os.path.join(path, rel))
        if fs_group is not None:
            os.chown(path, 0, int(fs_group))
            os.chown(os.path.join(path, ts), 0, int(fs_group))
        os.chmod(path, 0o755)

    def _items(self, data, items):
        if not items:
            return data
        return {i["path"]: data[i["key"]] for i in items}

    def _volume_source(self, vol_name, fs_group):
        """Host path of the volume named vol_name for this pod (made on first use)."""
        for v in self.spec.get("volumes", []):
            if v["name"] != vol_name:
                continue
            path = os.path.join(self.dir, "volumes", vol_name)
            if os.path.exists(path):
                return path
            os.makedirs(path)
            if "configMap" in v:
                cm = self.sim.get("ConfigMap", v["configMap"]["name"])
                data = {k: s.encode() for k, s in (cm.get("data") or {}).items()}
                data.update({k: base64.b64decode(s) for k, s in (cm.get("binaryData") or {}).items()})
                self._atomic_dir(path, self._items(data, v["configMap"].get("items")),
                                 v["configMap"].get("defaultMode", 0o644), fs_group)
            elif "secret" in v:
                sec = self.sim.get("Secret", v["secret"]["secretName"])
                data = {k: base64.b64decode(s) for k, s in (sec.get("data") or {}).items()}
                data.update({k: s.encode() for k, s in (sec.get("stringData") or {}).items()})
                self._atomic_dir(path, self._items(data, v["secret"].get("items")),
                                 v["secret"].get("defaultMode", 0o644), fs_group)
            elif "emptyDir" in v:
                os.chmod(path, 0o777)
                if fs_group is not None:
                    os.chown(path, 0, int(fs_group))
                    os.chmod(path, 0o2777)
            else:
                raise SimError("%s: volume %s: kubesim knows configMap, secret, emptyDir and claims"
                               % (self.name, vol_name))
            return path
        for t in self.sts_obj["spec"].get("volumeClaimTemplates", []):
            if t["metadata"]["name"] == vol_name:
                return self.sim.pvc(self.sts, vol_name, self.ordinal, fs_group, self.spec.get("securityContext") or {})
        raise SimError("%s: volumeMount %s names no volume" % (self.name, vol_name))

    def _env(self):
        """The container's environment as the kubelet makes it, plus what the runtime adds."""
        env = {}
        if self.container.get("envFrom"):
            raise SimError("kubesim does not do envFrom")
        for e in self.container.get("env", []):
            if "value" in e:
                env[e["name"]] = expand(e["value"], env)
            elif "valueFrom" in e:
                env[e["name"]] = self._value_from(e["valueFrom"])
            else:
                env[e["name"]] = ""
        if self.spec.get("enableServiceLinks", True):
            env.update(self.sim.service_env())
        return env

    def _value_from(self, vf):
        if "fieldRef" in vf:
            path = vf["fieldRef"]["fieldPath"]
            meta = self.template["metadata"]
            simple = {"metadata.name": self.name, "metadata.namespace": self.sim.namespace,
                      "metadata.uid": self.uid, "spec.nodeName": "kubesim-node",
                      "spec.serviceAccountName": self.spec.get("serviceAccountName", "default"),
                      "status.hostIP": DNS_IP, "status.hostIPs": DNS_IP,
                      "status.podIP": self.ip, "status.podIPs": self.ip}
            if path in simple:
                return simple[path]
            m = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
            if m:
                return (meta.get(m.group(1)) or {}).get(m.group(2), "")
            raise SimError("kubesim: fieldRef %s" % path)
        if "secretKeyRef" in vf or "configMapKeyRef" in vf:
            ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
            kind = "Secret" if "secretKeyRef" in vf else "ConfigMap"
            obj = self.sim.get(kind, ref["name"])
            if kind == "Secret":
                return base64.b64decode(obj["data"][ref["key"]]).decode()
            return obj["data"][ref["key"]]
        raise SimError("kubesim: valueFrom %s" % list(vf))

    def _container_spec(self):
        uid, gid, fs_group, groups, csc = self._security()
        env = self._env()
        image = self.sim.image
        command = self.container.get("command")
        args = self.container.get("args")
        if command:
            argv = [expand(a, env) for a in command] + [expand(a, env) for a in (args or [])]
        else:
            argv = list(image["ENTRYPOINT"]) + ([expand(a, env) for a in args] if args is not None
                                                else list(image.get("CMD", [])))
        if argv[0] not in self.sim.executables:
            raise SimError("%s: kubesim can run %s, not %s" % (self.name, list(self.sim.executables), argv[0]))
        full_env = dict(image.get("env", {}))
        full_env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        full_env["HOSTNAME"] = self.hostname
        full_env.update(env)
        self.env = full_env
        mounts = []
        for vm in self.container.get("volumeMounts", []):
            src = self._volume_source(vm["name"], fs_group)
            if vm.get("subPath"):
                src = os.path.realpath(os.path.join(src, vm["subPath"]))
                if not src.startswith(os.path.realpath(os.path.join(self.dir)) + "/") and \
                        not src.startswith(self.sim.pvc_root + "/"):
                    raise SimError("%s: subPath %s leaves its volume" % (self.name, vm["subPath"]))
            kind = "file" if os.path.isfile(src) else "dir"
            mounts.append({"path": vm["mountPath"], "source": src, "kind": kind,
                           "readOnly": bool(vm.get("readOnly"))})
        self.mounts = mounts
        return {"hostname": self.hostname, "tmpfs_roots": self.sim.tmpfs_roots, "mounts": mounts,
                "readOnlyRootFilesystem": bool(csc.get("readOnlyRootFilesystem")),
                "workingDir": self.container.get("workingDir") or image.get("WORKDIR", "/"),
                "uid": uid, "gid": gid, "groups": groups,
                "noNewPrivs": csc.get("allowPrivilegeEscalation") is False,
                "exe": self.sim.executables[argv[0]], "argv": argv, "env": full_env,
                "parent_pid": os.getpid()}

    # -- the container
    def start_container(self):
        with self.lock:
            self.started = "startupProbe" not in self.container
            self.set_ready(False)
            self.probe_failures = {k: 0 for k in self.probe_failures}
            logf = open(self.log_path, "ab")
            logf.write(("---- container start %s (restart %d) ----\n" % (
                time.strftime("%H:%M:%S"), len(self.restarts))).encode())
            logf.flush()
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, "unshare", "--mount", "--uts", "--propagation",
                 "private", "--", PYTHON, POD_INIT, os.path.join(self.dir, "spec.json")],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
            logf.close()
            self.container_started_at = time.monotonic()
            self.event("container started (pid %d)" % self.proc.pid)

    def run_kubelet(self):
        self.kubelet = threading.Thread(target=self._kubelet, name="kubelet-" + self.name, daemon=True)
        self.kubelet.start()

    def _probe(self, kind):
        p = self.container.get(kind + "Probe")
        h = p.get("httpGet")
        if h is None:
            raise SimError("kubesim probes httpGet only (%s of %s)" % (kind, self.name))
        port = self.sim.container_port(self.container, h["port"])
        try:
            status, _ = http_get(self.ip, port, h.get("path", "/"), p.get("timeoutSeconds", 1))
            return 200 <= status < 400
        except (OSError, http.client.HTTPException):
            return False

    def _kubelet(self):
        enter_netns(self.sim.net.hub)  # the node's network: probes come from outside the pod
        due = {}
        crash_backoff = 10.0
        while not self.stop_kubelet:
            now = time.monotonic()
            with self.lock:
                proc = self.proc
                terminating = self.terminating
            if proc is not None and proc.poll() is not None and not terminating and not self.killing:
                code = proc.returncode
                self.event("container exited by itself with %s: restart in %.0f s (CrashLoopBackOff)"
                           % (code, crash_backoff))
                self.restarts.append(("exit %s" % code, time.time()))
                self.set_ready(False)
                if self._interruptible_wait(crash_backoff):
                    break
                crash_backoff = min(crash_backoff * 2, 300)
                self.start_container()
                due = {}
                continue
            if proc is None or terminating or self.killing:
                self.wake.wait(0.2)
                self.wake.clear()
                continue
            start = self.container_started_at
            kinds = ["startup"] if not self.started else ["liveness", "readiness"]
            for kind in kinds:
                p = self.container.get(kind + "Probe")
                if p is None:
                    if kind == "readiness" and not self.ready:
                        self.set_ready(True)
                    continue
                if kind not in due:
                    due[kind] = start + p.get("initialDelaySeconds", 0)
                if now < due[kind]:
                    continue
                due[kind] = now + p.get("periodSeconds", 10)
                ok = self._probe(kind)
                if self.terminating or self.killing or self.stop_kubelet:
                    break
                if ok:
                    self.probe_failures[kind] = 0
                    if kind == "startup":
                        self.started = True
                        self.event("startup probe passed (%.1f s after start)" % (time.monotonic() - start))
                        due["readiness"] = time.monotonic()
                        break
                    if kind == "readiness" and not self.ready:
                        self.set_ready(True)
                    continue
                self.probe_failures[kind] += 1
                if self.probe_failures[kind] < p.get("failureThreshold", 3):
                    continue
                if kind == "readiness":
                    if self.ready:
                        self.event("readiness probe failed %d times: not ready" % self.probe_failures[kind])
                        self.set_ready(False)
                    continue
                # startup or liveness failed: the kubelet kills the container and starts it again
                self.event("%s probe failed %d times: restarting the container" % (kind, self.probe_failures[kind]))
                self.restarts.append((kind, time.time()))
                self.set_ready(False)
                self.kill_container("%s probe failed" % kind)
                if self.stop_kubelet or self.terminating:
                    break
                self.start_container()
                due = {}
                break
            nxt = min(due.values()) if due else now + 0.2
            self.wake.wait(max(0.0, min(nxt - time.monotonic(), 0.2)))
            self.wake.clear()

    def _interruptible_wait(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.stop_kubelet or self.terminating:
                return True
            self.wake.wait(min(0.2, deadline - time.monotonic()))
        return False

    def set_ready(self, ready):
        with self.lock:
            if self.ready == ready:
                return
            self.ready = ready
        if ready:
            self.event("Ready")
        self.sim.endpoints_changed()

    def kill_container(self, reason):
        """The kubelet's killContainer: preStop (within the grace period), SIGTERM, the rest of
        the grace period (at least 2 s), SIGKILL. Records what happened."""
        with self.lock:
            self.killing = True
            proc = self.proc
        grace = self.spec.get("terminationGracePeriodSeconds", 30)
        t0 = time.monotonic()
        rec = {"pod": self.name, "reason": reason, "grace": grace, "killed": False}
        if proc.poll() is None:
            pre = (self.container.get("lifecycle") or {}).get("preStop")
            if pre:
                rec["preStop"] = self._run_pre_stop(pre, proc.pid, grace)
            rec["preStop_s"] = round(time.monotonic() - t0, 2)
            remaining = max(2.0, grace - (time.monotonic() - t0))
            if proc.poll() is None:
                t_term = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                self.event("SIGTERM (%.0f s of grace left)" % remaining)
                try:
                    proc.wait(remaining)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
                    rec["killed"] = True
                    self.event("SIGKILL: still running %.0f s after SIGTERM" % remaining)
                rec["sigterm_to_exit_s"] = round(time.monotonic() - t_term, 2)
        rec["exit_code"] = proc.returncode
        rec["total_s"] = round(time.monotonic() - t0, 2)
        self.terminations.append(rec)
        self.sim.terminations.append(rec)
        self.event("container exited with %s, %.1f s after the kill began%s" % (
            proc.returncode, rec["total_s"], " (SIGKILL)" if rec["killed"] else ""))
        with self.lock:
            self.killing = False

    def _run_pre_stop(self, hook, pid, grace):
        t0 = time.monotonic()
        if "exec" in hook:
            uid, gid, groups = self.run_spec["uid"], self.run_spec["gid"], self.run_spec["groups"]
            cmd = ["nsenter", "--target", str(pid), "--net", "--mount", "--uts", "--",
                   "setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                   "--groups=" + ",".join(map(str, groups)), "--no-new-privs", "--"] + hook["exec"]["command"]
            try:
                r = subprocess.run(cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=grace)
                out = "exit %d" % r.returncode
                if r.returncode != 0:
                    out += ": " + r.stdout.decode(errors="replace").strip()
            except subprocess.TimeoutExpired:
                out = "timed out after the grace period"
        elif "httpGet" in hook:
            h = hook["httpGet"]
            port = self.sim.container_port(self.container, h["port"])
            try:
                status, _ = self.sim.hub(http_get, self.ip, port, h.get("path", "/"), grace)
                out = "HTTP %d" % status
            except OSError as e:
                out = "error %s" % e
        elif "sleep" in hook:
            time.sleep(min(hook["sleep"]["seconds"], grace))  # the hook itself is a sleep
            out = "slept"
        else:
            raise SimError("kubesim: preStop %s" % list(hook))
        self.event("preStop %s: %s (%.1f s)" % (json.dumps(hook), out, time.monotonic() - t0))
        return out

    def delete(self):
        """kubectl delete pod: out of the Endpoints at once, then the container's termination;
        the pod object (DNS record, sandbox) is gone when the container is."""
        with self.lock:
            self.terminating = True
        self.event("deleted: terminating")
        self.sim.endpoints_changed()
        self.wake.set()
        self.kill_container("pod deleted")
        self.stop_kubelet = True
        self.wake.set()
        if self.kubelet is not None:
            self.kubelet.join(30)
            if self.kubelet.is_alive():
                raise SimError("kubelet thread of %s did not stop" % self.name)
        self.teardown()

    def teardown(self):
        self.gone = True
        self.sim.pod_gone(self)
        self.sim.net.remove(self.netns)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.event("gone")

    def force_stop(self):
        """Cleanup after a failure: no grace."""
        self.stop_kubelet = True
        self.wake.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.kubelet is not None:
            self.kubelet.join(15)


# ----------------------------------------------------------------------------- StatefulSet
class StatefulSet:
    def __init__(self, sim, obj):
        self.sim = sim
        self.obj = obj
        self.name = obj["metadata"]["name"]
        self.pods = {}     # ordinal -> Pod
        self.replicas = 0

    @property
    def policy(self):
        return self.obj["spec"].get("podManagementPolicy", "OrderedReady")

    def update(self, obj):
        """kubectl apply of a new StatefulSet: the API server refuses changes to immutable fields."""
        for f in IMMUTABLE_STS_FIELDS:
            if self.obj["spec"].get(f) != obj["spec"].get(f):
                raise SimError("the API server would refuse this upgrade: spec.%s of a StatefulSet "
                               "cannot change" % f)
        self.obj = obj

    def _create(self, ordinal):
        pod = self.sim.new_pod(self, ordinal)
        self.pods[ordinal] = pod
        pod.create()
        self.sim.pod_created(pod)
        pod.start_container()
        pod.run_kubelet()
        return pod

    def wait_ready(self, pods, timeout):
        min_ready = self.obj["spec"].get("minReadySeconds", 0)

        def all_ready():
            for p in pods:
                if p.restarts:
                    raise SimError("%s restarted (%s) while waiting for it to be ready\n%s"
                                   % (p.name, p.restarts, self.sim.pod_log_tail(p)))
            return all(p.ready for p in pods)

        try:
            wait_for(all_ready, timeout, "pods %s to be Ready" % [p.name for p in pods], step=0.1)
        except SimError as e:
            raise SimError("%s\n%s" % (e, "\n".join(self.sim.pod_log_tail(p) for p in pods if not p.ready)))
        if min_ready:
            time.sleep(min_ready)  # minReadySeconds is itself a wait the controller makes

    def scale(self, n, timeout=90):
        """Create missing ordinals (< n) or delete those >= n, as the controller does for the policy."""
        log("StatefulSet %s: scale %d -> %d (%s)" % (self.name, self.replicas, n, self.policy))
        self.replicas = n
        if self.policy == "Parallel":
            new = [self._create(i) for i in range(n) if i not in self.pods]
            doomed = [self.pods[i] for i in sorted(self.pods, reverse=True) if i >= n]
            if doomed:
                with ThreadPoolExecutor(max_workers=len(doomed)) as ex:
                    for f in [ex.submit(self._delete, p) for p in doomed]:
                        f.result(timeout)
            self.wait_ready(new, timeout)
        else:  # OrderedReady: one at a time, each waiting for the previous
            for i in range(n):
                if i not in self.pods:
                    self.wait_ready([self._create(i)], timeout)
            for i in sorted([i for i in self.pods if i >= n], reverse=True):
                self._delete(self.pods[i])
        left = [p.name for i, p in self.pods.items() if i >= n]
        if left:
            raise SimError("pods %s not deleted within %d s" % (left, timeout))

    def _delete(self, pod):
        pod.delete()
        self.pods.pop(pod.ordinal, None)

    def rolling_update(self, timeout=90):
        """RollingUpdate: from the highest ordinal down, each pod whose revision is not the update
        revision is deleted, recreated from the new template, and must be Ready before the next."""
        rev = template_revision(self.obj)
        partition = ((self.obj["spec"].get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition", 0)
        for i in sorted(self.pods, reverse=True):
            if i < partition or self.pods[i].revision == rev:
                continue
            log("StatefulSet %s: rolling update of ordinal %d to revision %s" % (self.name, i, rev))
            self._delete(self.pods[i])
            self.wait_ready([self._create(i)], timeout)

    def delete_pod(self, ordinal, timeout=90):
        """kubectl delete pod NAME: the controller recreates the ordinal once the old pod is gone."""
        self._delete(self.pods[ordinal])
        pod = self._create(ordinal)
        self.wait_ready([pod], timeout)
        return pod


# ----------------------------------------------------------------------------- the cluster
class Cluster:
    def __init__(self, workdir, namespace, flockd, containerfile, max_pods):
        self.workdir = workdir
        self.namespace = namespace
        self.tag = str(os.getpid())
        self.net = Network(self.tag)
        self.domain = "cluster.local"
        self.image = image_config(containerfile)
        if self.image.get("ENTRYPOINT") != ["/usr/bin/flockd"]:
            raise SimError("the image's ENTRYPOINT is %r; kubesim maps /usr/bin/flockd to the built flockd"
                           % self.image.get("ENTRYPOINT"))
        self.executables = {"/usr/bin/flockd": flockd}
        self.max_pods = max_pods
        self.objects = {}
        self.sts = None
        self.dns = None
        self.lb = None
        self.mountpoints = None
        self.pvc_root = os.path.join(workdir, "pvc")
        self.pvcs = {}
        self.ip_next = FIRST_POD_IP
        self.stable_ips = os.environ.get("FLOCK_K8S_STABLE_POD_IPS") == "1"
        self.incarnations = 0
        self.terminations = []
        self.all_pods = []
        self.hub_pool = None
        self.endpoint_lock = threading.Lock()
        self.client_daemons = []

    # -- set-up
    def open(self):
        if os.geteuid() != 0:
            raise SimError("kubesim needs root (network and mount namespaces)")
        cleanup_stale()
        self.mountpoints = MountPoints()
        self.net.open()
        self.hub_pool = ThreadPoolExecutor(max_workers=4, initializer=enter_netns, initargs=(self.net.hub,))
        os.makedirs(self.pvc_root)
        return self

    def hub(self, fn, *args):
        """Run fn(*args) in a thread that lives in the hub ("node") namespace."""
        return self.hub_pool.submit(fn, *args).result()

    def allocate_ip(self, sts_name, ordinal):
        """A new address for every pod, as a CNI gives (FLOCK_K8S_STABLE_POD_IPS=1: the same address
        for an ordinal each time, as some CNIs can be told to; for diagnosis)."""
        if self.stable_ips:
            return "%s.%d" % (SUBNET, 200 + ordinal)
        if self.ip_next >= 200:
            raise SimError("out of pod addresses")
        a = "%s.%d" % (SUBNET, self.ip_next)
        self.ip_next += 1
        return a

    def get(self, kind, name):
        try:
            return self.objects[(kind, name)]
        except KeyError:
            raise SimError("%s %s was not rendered (the pod would stay in ContainerCreating)" % (kind, name))

    def service_env(self):
        raise SimError("enableServiceLinks is on: kubesim does not make the Service environment variables")

    def container_port(self, container, port):
        if isinstance(port, int):
            return port
        for p in container.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
        raise SimError("container %s has no port named %s" % (container["name"], port))

    def pvc(self, sts, template_name, ordinal, fs_group, psc):
        """The claim <template>-<sts>-<ordinal>: made once, kept across pods (and scale-down)."""
        name = "%s-%s-%d" % (template_name, sts.name, ordinal)
        path = os.path.join(self.pvc_root, name)
        if name not in self.pvcs:
            os.makedirs(path, 0o755)
            self.pvcs[name] = path
        if fs_group is not None:
            st = os.stat(path)
            policy = psc.get("fsGroupChangePolicy", "Always")
            want = 0o2070
            if policy == "Always" or st.st_gid != int(fs_group) or (st.st_mode & want) != want:
                for d, dirs, files in os.walk(path):
                    os.chown(d, -1, int(fs_group))
                    os.chmod(d, os.stat(d).st_mode | 0o2070)
                    for f in files:
                        fp = os.path.join(d, f)
                        os.chown(fp, -1, int(fs_group), follow_symlinks=False)
                        if not os.path.islink(fp):
                            os.chmod(fp, os.stat(fp).st_mode | 0o060)
        return path

    # -- install / upgrade
    def install(self, objects):
        self.objects = objects
        sts = only(objects, "StatefulSet")
        tmpl_labels = sts["spec"]["template"]["metadata"]["labels"]
        if not selector_matches(sts["spec"]["selector"]["matchLabels"], tmpl_labels):
            raise SimError("the StatefulSet's selector does not match its template's labels")
        self.headless = self.get("Service", sts["spec"]["serviceName"])
        if self.headless["spec"].get("clusterIP") != "None":
            raise SimError("spec.serviceName %s is not a headless Service" % self.headless["metadata"]["name"])
        if not selector_matches(self.headless["spec"]["selector"], tmpl_labels):
            raise SimError("the headless Service selects none of the pods")
        self.publish_not_ready = bool(self.headless["spec"].get("publishNotReadyAddresses"))
        clients = [o for (k, _), o in objects.items() if k == "Service" and o["spec"].get("clusterIP") != "None"]
        if len(clients) != 1:
            raise SimError("expected one client Service, rendered %d" % len(clients))
        self.client_service = clients[0]
        if not selector_matches(self.client_service["spec"]["selector"], tmpl_labels):
            raise SimError("the client Service selects none of the pods")
        container = sts["spec"]["template"]["spec"]["containers"][0]
        ports = [(p["name"], p["port"], self.container_port(container, p.get("targetPort", p["port"])))
                 for p in self.client_service["spec"]["ports"]]
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"].get("volumes", [])}

        def kind(vm):  # a subPath of a ConfigMap or Secret key is a file
            v = volumes.get(vm["name"], {})
            return "file" if vm.get("subPath") and ("configMap" in v or "secret" in v) else "dir"
        self.tmpfs_roots = self.mountpoints.ensure([(vm["mountPath"], kind(vm))
                                                    for vm in container.get("volumeMounts", [])])
        self.sts = StatefulSet(self, sts)
        svc = self.client_service["metadata"]["name"]
        self.service_fqdn = "%s.%s.svc.%s" % (svc, self.namespace, self.domain)
        self.headless_fqdn = "%s.%s.svc.%s" % (self.headless["metadata"]["name"], self.namespace, self.domain)
        self.dns = Dns(self)
        self.dns.start({self.service_fqdn: [SERVICE_IP]})
        self.lb = LoadBalancer(self, ports, self.max_pods, lambda i: "%s-%d" % (self.sts.name, i))
        self.lb.start()
        self.sts.scale(sts["spec"]["replicas"])

    def upgrade(self, objects, keep):
        """helm upgrade: every object replaced by the new rendering, except `keep` (kind, name)
        pairs, which the chart takes from the running release through `lookup` (helm template
        cannot: it would make them anew)."""
        new = dict(objects)
        for key in keep:
            new[key] = self.objects[key]
        self.sts.update(only(new, "StatefulSet"))
        self.objects = new

    # -- pods, Endpoints, DNS
    def new_pod(self, sts, ordinal):
        self.incarnations += 1
        pod = Pod(self, sts, ordinal, self.incarnations)
        self.all_pods.append(pod)
        return pod

    def pod_created(self, pod):
        self._dns_update()

    def pod_gone(self, pod):
        self._dns_update()
        self.endpoints_changed()

    def _dns_update(self):
        pods = [p for p in self.sts.pods.values() if not p.gone]
        recs = {self.headless_fqdn: [p.ip for p in pods if self.publish_not_ready or p.ready]}
        for p in self.all_pods:
            recs[p.fqdn] = [] if p.gone else [p.ip]
        changed = {k: v for k, v in recs.items() if sorted(v) != self.dns.records.get(k, [])}
        if changed:
            self.dns.set(changed)
            log("dns: %s -> %s" % (self.headless_fqdn, ", ".join(sorted(recs[self.headless_fqdn])) or "(none)"))

    def endpoints_changed(self):
        with self.endpoint_lock:
            if self.lb is None or self.sts is None:
                return
            eps = {p.name: p.ip for p in list(self.sts.pods.values())
                   if p.ready and not p.terminating and not p.gone}
            self.lb.set_endpoints(eps)
            if not self.publish_not_ready:
                self._dns_update()

    # -- observing
    def metrics(self, pod):
        port = self.container_port(pod.container, "metrics")
        status, body = self.hub(http_get, pod.ip, port, "/metrics", 5)
        if status != 200:
            raise OSError("GET /metrics of %s: %d" % (pod.name, status))
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    def pod_log_tail(self, pod, n=30):
        try:
            with open(pod.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            lines = []
        return "---- %s (last %d lines) ----\n%s" % (pod.log_path, n, "\n".join(lines[-n:]))

    # -- tear-down
    def close(self):
        errors = []
        for pod in self.all_pods:
            try:
                pod.force_stop()
            except Exception as e:  # keep cleaning up
                errors.append("stopping %s: %r" % (pod.name, e))
        for d in self.client_daemons:
            d.stop()
        if self.lb is not None and self.lb.daemon is not None:
            self.lb.daemon.stop()
        if self.dns is not None and self.dns.daemon is not None:
            self.dns.daemon.stop()
        if self.hub_pool is not None:
            self.hub_pool.shutdown(wait=True)
        errors += self.net.close()
        if self.mountpoints is not None:
            self.mountpoints.close()
        return errors
