#!/usr/bin/python3
"""The container image (deploy/Containerfile, deploy/build-image.sh), built and run for real.

Builds the image with podman from the binaries of the build under test
(deploy/build-image.sh --prebuilt DIR) into a temporary storage, then checks:
  - metadata: user 10001, entrypoint flockd, cmd, the six ports, /data volume,
    labels, stop signal, size;
  - contents: stripped binaries, no compiler or -dev package, no apt lists,
    /data owned by 10001, the default config as in deploy/flock.yaml;
  - `--version` of flockd and flockctl inside (--network none);
  - flockd from the image with --network host, a read-only root file system,
    tmpfs /tmp and a host directory for /data: /readyz, a QoS 1 retained
    message published and read back, `podman stop` ends it with exit 0 in
    seconds, RocksDB's files in the volume are owned by 10001, and a second
    container on the same /data still has the retained message;
  - the image's own CMD and default config (--network none): it listens on
    0.0.0.0:1883 and :9464, /readyz answers 200 and an anonymous client is
    refused (probed from inside the container's network namespace);
  - a /data the user 10001 cannot write stops flockd with exit 1 and a message;
  - the OCI archive written by --save holds the same image.
Everything is removed afterwards: the podman storage (podman system reset),
the temporary directory, and what podman leaves on the host.

  /usr/bin/python3 tests/deploy/image/image_test.py --bin-dir build/bin
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import queue
import threading

import paho.mqtt.client as mqtt

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BUILD_IMAGE = os.path.join(REPO, "deploy", "build-image.sh")
TAG = "localhost/flock:image-test"
PORTS = {"1883/tcp", "8883/tcp", "8080/tcp", "8443/tcp", "7000/tcp", "9464/tcp"}
MAX_SIZE = 250e6
PACKAGES = ["podman", "runc", "debootstrap"]
TMP_PREFIX = "flock-image-test."
# What rootful podman may leave on the host outside its storage.
HOST_PATHS = ["/var/lib/containers", "/var/lib/containers/cache", "/etc/containers/networks",
              "/run/containers", "/run/containers/networks", "/run/runc"]

T0 = time.monotonic()
failures = []


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def check(cond, what, detail=""):
    """Records and prints one assertion; the test fails at the end if any failed."""
    if cond:
        log(f"ok   {what}")
    else:
        log(f"FAIL {what}" + (f": {detail}" if detail else ""))
        failures.append(what)
    return cond


class Fatal(Exception):
    pass


def run(args, timeout=120, check_rc=True, env=None, quiet=False):
    if not quiet:
        log("$ " + " ".join(a if len(a) < 200 else a[:40].strip() + "..." for a in args))
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise Fatal(f"{args[0]} did not finish in {timeout} s: {' '.join(args)}") from e
    if check_rc and p.returncode != 0:
        raise Fatal(f"exit {p.returncode}: {' '.join(args)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def wait_for(what, cond, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fatal(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return None, ""


def ensure_packages():
    missing = [p for p in PACKAGES
               if "ok installed" not in subprocess.run(
                   ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True).stdout]
    if missing:
        log(f"installing missing Debian packages: {' '.join(missing)}")
        run(["apt-get", "update", "-qq"], timeout=300)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], timeout=600,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def host_snapshot():
    snap = {}
    for p in HOST_PATHS:
        snap[p] = set(os.listdir(p)) if os.path.isdir(p) else None
    return snap


def restore_host(before, container_ids):
    """Removes what podman created outside its storage during this test, and only that."""
    for cid in container_ids:  # runc's state of our containers, if it outlived them
        d = os.path.join("/run/runc", cid)
        if os.path.isdir(d):
            shutil.rmtree(d, ignore_errors=True)
    for p in reversed(HOST_PATHS):  # children before parents
        if before[p] is None and os.path.isdir(p):
            if p in ("/var/lib/containers", "/run/containers", "/run/runc"):
                try:
                    os.rmdir(p)  # only if nothing else is in it
                except OSError:
                    pass
            else:
                shutil.rmtree(p, ignore_errors=True)
            if not os.path.exists(p):
                log(f"removed {p} (made by podman during the test)")


def remove_stale_runs():
    """A run killed by ctest's timeout cannot clean up: do it for runs whose process is gone."""
    for name in os.listdir("/var/tmp"):
        m = re.fullmatch(re.escape(TMP_PREFIX) + r"(\d+)\..*", name)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        d = os.path.join("/var/tmp", name)
        log(f"removing {d} left by an earlier run (pid {m.group(1)} is gone)")
        if os.path.isdir(os.path.join(d, "podman")):
            subprocess.run([BUILD_IMAGE, "--storage", os.path.join(d, "podman"), "--reset"],
                           capture_output=True, timeout=300)
        shutil.rmtree(d, ignore_errors=True)


class Podman:
    def __init__(self, storage):
        self.env = dict(os.environ)
        with open(os.path.join(storage, "podman.env")) as f:  # written by build-image.sh
            for line in f:
                m = re.match(r'export (\w+)="(.*)"$', line.strip())
                if m:
                    self.env[m.group(1)] = m.group(2)
        self.containers = []  # names of the containers this test started
        self.ids = []

    def __call__(self, *args, **kw):
        return run(["podman", *args], env=self.env, **kw)

    def start(self, name, *args):
        self.containers.append(name)
        cid = self("run", "-d", "--name", name, *args).stdout.strip()
        self.ids.append(cid)
        return cid

    def run_rm(self, *args, timeout=60):
        """`podman run --rm ARGS`: (exit code, output, seconds)."""
        t = time.monotonic()
        p = self("run", "--rm", *args, timeout=timeout, check_rc=False)
        return p.returncode, p.stdout + p.stderr, time.monotonic() - t

    def state(self, name):
        p = self("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}", name,
                 quiet=True, check_rc=False)
        if p.returncode != 0:
            return None, None, None
        status, code, pid = p.stdout.split()
        return status, int(code), int(pid)

    def logs(self, name):
        p = self("logs", name, quiet=True, check_rc=False)
        return p.stdout + p.stderr

    def wait_ready(self, name, mport, timeout=30):
        def ready():
            status, code, _ = self.state(name)
            if status != "running":
                raise Fatal(f"container {name} is {status} (exit {code}):\n{self.logs(name)}")
            return http_status(f"http://127.0.0.1:{mport}/readyz")[0] == 200
        t = time.monotonic()
        wait_for(f"/readyz of {name}", ready, timeout)
        return time.monotonic() - t

    def stop(self, name, timeout=30):
        t = time.monotonic()
        self("stop", "-t", str(timeout), name, timeout=timeout + 30)
        elapsed = time.monotonic() - t
        status, code, _ = self.state(name)
        return elapsed, code

    def remove_all(self):
        for name in self.containers:
            self("rm", "-f", "-v", name, quiet=True, check_rc=False, timeout=60)


def mqtt_client(cid):
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho 2
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=cid, protocol=mqtt.MQTTv311)
    return mqtt.Client(client_id=cid, protocol=mqtt.MQTTv311)


def connected_client(port, cid, on_connect_extra=None):
    c = mqtt_client(cid)
    ev = threading.Event()
    result = {}

    def on_connect(client, userdata, flags, rc):
        result["rc"] = rc
        if rc == 0 and on_connect_extra:
            on_connect_extra(client)
        ev.set()
    c.on_connect = on_connect
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    if not ev.wait(10) or result.get("rc") != 0:
        c.loop_stop()
        raise Fatal(f"MQTT connect to 127.0.0.1:{port} failed: {result}")
    return c


def publish_retained(port, topic, payload):
    c = connected_client(port, "image-test-pub")
    try:
        info = c.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(timeout=10)
        return info.is_published()
    finally:
        c.disconnect()
        c.loop_stop()


def read_retained(port, topic, timeout=10):
    q = queue.Queue()
    c = mqtt_client("image-test-sub-" + uuid.uuid4().hex[:8])
    c.on_message = lambda client, userdata, msg: q.put((msg.payload, msg.retain, msg.qos))
    ev = threading.Event()

    def on_connect(client, userdata, flags, rc):
        if rc == 0:
            client.subscribe(topic, qos=1)
        ev.set()
    c.on_connect = on_connect
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    try:
        if not ev.wait(10):
            raise Fatal("MQTT subscriber did not connect")
        try:
            return q.get(timeout=timeout)
        except queue.Empty:
            return None
    finally:
        c.disconnect()
        c.loop_stop()


def files_owned(root):
    owners, names = set(), []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            st = os.lstat(os.path.join(d, n))
            owners.add((st.st_uid, st.st_gid))
            names.append(n)
    return owners, names


# Runs inside the default-config container's network namespace (nsenter -n):
# /readyz on 9464 and an anonymous MQTT 3.1.1 CONNECT on 1883; prints both.
NETNS_PROBE = r"""
import json, socket, urllib.request, urllib.error, time
out = {}
try:
    out["readyz"] = urllib.request.urlopen("http://127.0.0.1:9464/readyz", timeout=3).status
except urllib.error.HTTPError as e:
    out["readyz"] = e.code
s = socket.create_connection(("127.0.0.1", 1883), timeout=5)
cid = b"anon-probe"
var = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
s.sendall(bytes([0x10, len(var)]) + var)
connack = b""
deadline = time.monotonic() + 5
while len(connack) < 4 and time.monotonic() < deadline:
    chunk = s.recv(4 - len(connack))
    if not chunk:
        break
    connack += chunk
out["connack"] = connack.hex()
print(json.dumps(out))
"""


def cmake_version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        return re.search(r"project\(flock VERSION ([0-9.]+)", f.read()).group(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", required=True, help="directory with flockd and flockctl (the build under test)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory and storage (debugging)")
    a = ap.parse_args()
    bin_dir = os.path.abspath(a.bin_dir)
    if os.geteuid() != 0:
        print("image test: needs root (rootful podman); skipped")
        return 77
    for b in ("flockd", "flockctl"):
        if not os.access(os.path.join(bin_dir, b), os.X_OK):
            raise Fatal(f"no {b} in {bin_dir}")

    remove_stale_runs()
    ensure_packages()
    before = host_snapshot()
    tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}.", dir="/var/tmp")
    storage = os.path.join(tmp, "podman")
    pm = None
    log(f"work dir {tmp}")
    try:
        # ------------------------------------------------------------ build
        archive = os.path.join(tmp, "flock-image.oci.tar")
        t = time.monotonic()
        p = subprocess.run([BUILD_IMAGE, "--storage", storage, "--prebuilt", bin_dir, "--tag", TAG,
                            "--save", archive], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=900)
        for line in p.stdout.splitlines():
            if line.startswith("build-image:") or "STEP" in line or "rror" in line:
                print("    " + line)
        if p.returncode != 0:
            print(p.stdout[-4000:])
            raise Fatal(f"deploy/build-image.sh failed (exit {p.returncode})")
        log(f"image built in {time.monotonic() - t:.0f} s")
        pm = Podman(storage)

        # ------------------------------------------------------------ metadata
        info = json.loads(pm("image", "inspect", TAG).stdout)[0]
        cfg = info["Config"]
        version = cmake_version()
        check(cfg.get("User") == "10001:10001", "User is 10001:10001", cfg.get("User"))
        check(cfg.get("Entrypoint") == ["/usr/bin/flockd"], "Entrypoint is /usr/bin/flockd", cfg.get("Entrypoint"))
        check(cfg.get("Cmd") == ["--config", "/etc/flock/flock.yaml"], "Cmd is --config /etc/flock/flock.yaml",
              cfg.get("Cmd"))
        check(set(cfg.get("ExposedPorts") or {}) == PORTS, f"ExposedPorts are {sorted(PORTS)}",
              sorted(cfg.get("ExposedPorts") or {}))
        check(set(cfg.get("Volumes") or {}) == {"/data"}, "Volumes is /data", cfg.get("Volumes"))
        check(cfg.get("StopSignal") == "SIGTERM", "StopSignal is SIGTERM", cfg.get("StopSignal"))
        labels = cfg.get("Labels") or {}
        check(labels.get("org.opencontainers.image.title") == "flock", "label title flock", labels)
        check(labels.get("org.opencontainers.image.version") == version, f"label version {version}", labels)
        for k in ("source", "licenses", "revision"):
            check(labels.get(f"org.opencontainers.image.{k}"), f"label org.opencontainers.image.{k} set", labels)
        size = info["Size"]
        log(f"image size {size / 1e6:.0f} MB")
        check(size < MAX_SIZE, f"image smaller than {MAX_SIZE / 1e6:.0f} MB", f"{size / 1e6:.0f} MB")

        # ------------------------------------------------------------ contents
        root = pm("image", "mount", TAG).stdout.strip()
        try:
            for b in ("flockd", "flockctl"):
                path = os.path.join(root, "usr/bin", b)
                check(os.access(path, os.X_OK) and os.stat(path).st_mode & 0o005 == 0o005,
                      f"/usr/bin/{b} executable by everyone")
                sections = run(["readelf", "-S", "--wide", path], quiet=True).stdout
                check(".symtab" not in sections and ".debug_info" not in sections, f"/usr/bin/{b} stripped")
            with open(os.path.join(root, "var/lib/dpkg/status")) as f:
                installed = re.findall(r"^Package: (\S+)\nStatus: install ok installed", f.read(), re.M)
            build_pkgs = [p for p in installed if p.endswith("-dev") or p in
                          ("cmake", "g++", "g++-12", "gcc", "gcc-12", "ninja-build", "protobuf-compiler", "make")]
            check(not build_pkgs, "no compiler or -dev package in the runtime image", build_pkgs)
            log(f"{len(installed)} Debian packages in the image")
            lists = [n for n in os.listdir(os.path.join(root, "var/lib/apt/lists")) if n not in ("lock", "partial", "auxfiles")]
            check(not lists, "no apt lists in the image", lists[:5])
            st = os.stat(os.path.join(root, "data"))
            check((st.st_uid, st.st_gid) == (10001, 10001), "/data owned by 10001:10001", (st.st_uid, st.st_gid))
            with open(os.path.join(root, "etc/passwd")) as f:
                check(re.search(r"^flock:x:10001:10001:", f.read(), re.M), "user flock is 10001:10001 in /etc/passwd")
            with open(os.path.join(root, "etc/flock/flock.yaml")) as f, \
                    open(os.path.join(REPO, "deploy/flock.yaml")) as g:
                check(f.read() == g.read(), "/etc/flock/flock.yaml is deploy/flock.yaml")
            st = os.stat(root)
            check(st.st_mode & 0o755 == 0o755, "/ of the image is 0755", oct(st.st_mode))
        finally:
            pm("image", "unmount", TAG, quiet=True, check_rc=False)

        # podman's exit command (conmon runs it when the container ends) refuses a
        # runroot longer than 50 characters: the exit is then noticed only after
        # conmon's 20 s timeout. build-image.sh keeps the runroot short.
        code, out, secs = pm.run_rm("--network", "none", TAG, "--version")
        check(code == 0 and out.strip() == f"flockd {version}",
              f"`podman run --rm --network none IMAGE --version` prints flockd {version}", (code, out))
        check(secs < 15, "podman noticed the exit at once (no 20 s conmon timeout)", f"{secs:.1f} s")
        code, out, secs = pm.run_rm("--network", "none", "--entrypoint", "/usr/bin/flockctl", TAG, "version")
        check(code == 0 and out.strip() == f"flockctl {version}", f"flockctl in the image prints flockctl {version}",
              (code, out))

        # ------------------------------------------------------------ flockd serving, read-only
        data = os.path.join(tmp, "data")
        os.mkdir(data)
        os.chown(data, 10001, 10001)
        port, mport = free_port(), free_port()
        run_args = ["--network", "host", "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp",
                    "--user", "10001", "-v", f"{data}:/data", TAG,
                    "--config", "/etc/flock/flock.yaml", "--listen", f"127.0.0.1:{port}",
                    "--metrics-listen", f"127.0.0.1:{mport}"]
        name1 = f"flock-image-test-{os.getpid()}-1"
        t = time.monotonic()
        pm.start(name1, *run_args)
        pm.wait_ready(name1, mport)
        log(f"/readyz 200 {time.monotonic() - t:.1f} s after podman run (127.0.0.1:{mport}, MQTT 127.0.0.1:{port})")
        _, _, pid = pm.state(name1)
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
        uid = re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)
        nspid = re.search(r"^NSpid:\s+(.*)$", status, re.M).group(1).split()
        check(uid == "10001", "flockd runs as uid 10001", uid)
        check(nspid[-1] == "1", "flockd is PID 1 in the container", nspid)
        code, body = http_status(f"http://127.0.0.1:{mport}/metrics")
        check(code == 200 and "flock_" in body, "/metrics serves flock_ metrics", code)

        topic = f"flock/image-test/{uuid.uuid4().hex[:8]}"
        payload = f"retained-{uuid.uuid4().hex}".encode()
        check(publish_retained(port, topic, payload), f"QoS 1 retained publish to {topic} acknowledged")
        got = read_retained(port, topic)
        check(got is not None and got[0] == payload and got[1], "a new subscriber gets the retained message", got)

        elapsed, code = pm.stop(name1)
        log(f"podman stop took {elapsed:.1f} s, exit code {code}")
        check(code == 0, "SIGTERM (podman stop) ends flockd with exit 0", code)
        check(elapsed < 10, "podman stop returns within 10 s (flockd handles SIGTERM as PID 1)", f"{elapsed:.1f} s")
        check("received SIGTERM" in pm.logs(name1), "flockd logged the SIGTERM")
        owners, names = files_owned(data)
        check("CURRENT" in names and owners == {(10001, 10001)},
              "RocksDB files in the /data volume, all owned by 10001:10001", (owners, names[:5]))

        name2 = f"flock-image-test-{os.getpid()}-2"
        pm.start(name2, *run_args)
        pm.wait_ready(name2, mport)
        got = read_retained(port, topic)
        check(got is not None and got[0] == payload, "after a restart on the same /data the retained message is there",
              got)
        elapsed, code = pm.stop(name2)
        check(code == 0 and elapsed < 10, "second container stops with exit 0 too", (code, f"{elapsed:.1f} s"))

        # ------------------------------------------------------------ the default config, network none
        data2 = os.path.join(tmp, "data2")
        os.mkdir(data2)
        os.chown(data2, 10001, 10001)
        name3 = f"flock-image-test-{os.getpid()}-3"
        pm.start(name3, "--network", "none", "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp",
                 "-v", f"{data2}:/data", TAG)

        def listening():
            status, code, _ = pm.state(name3)
            if status != "running":
                raise Fatal(f"default-config container is {status} (exit {code}):\n{pm.logs(name3)}")
            logs = pm.logs(name3)
            return ("listening on mqtt://0.0.0.0:1883" in logs and "metrics on http://0.0.0.0:9464" in logs
                    and "started" in logs)
        wait_for("the default config's listening lines", listening, 30)
        logs = pm.logs(name3)
        check(True, "default config: listens on 0.0.0.0:1883 and metrics on 0.0.0.0:9464")
        check("anonymous clients refused" in logs, "default config: 0.0.0.0:1883 refuses anonymous clients (log)",
              [l for l in logs.splitlines() if "listening" in l])
        _, _, pid = pm.state(name3)
        probe = json.loads(run(["nsenter", "-t", str(pid), "-n", sys.executable, "-c", NETNS_PROBE],
                               timeout=30).stdout)
        check(probe["readyz"] == 200, "default config: /readyz 200 inside the container's network namespace", probe)
        check(probe["connack"] == "20020005", "default config: anonymous CONNECT gets CONNACK 5 (not authorized)",
              probe)
        elapsed, code = pm.stop(name3)
        check(code == 0 and elapsed < 10, "default-config container stops with exit 0", (code, f"{elapsed:.1f} s"))
        owners, names = files_owned(data2)
        check("CURRENT" in names and owners == {(10001, 10001)}, "default config keeps its data in /data", owners)

        # ------------------------------------------------------------ a /data the user cannot write
        data3 = os.path.join(tmp, "data3")
        os.mkdir(data3, 0o755)  # root's, as a hostPath nobody chowned
        name4 = f"flock-image-test-{os.getpid()}-4"
        pm.start(name4, "--network", "none", "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp",
                 "-v", f"{data3}:/data", TAG)
        status = wait_for("flockd to give up on an unwritable /data",
                          lambda: (lambda s: s if s[0] in ("exited", "stopped") else None)(pm.state(name4)), 30)
        logs = pm.logs(name4)
        check(status[1] != 0 and "/data" in logs, "an unwritable /data stops flockd with an error naming it",
              (status, logs.strip().splitlines()[-1:] if logs.strip() else logs))
        log(f"  flockd said: {logs.strip().splitlines()[-1] if logs.strip() else '(nothing)'}")

        # ------------------------------------------------------------ the saved OCI archive
        with tarfile.open(archive) as tf:
            members = set(tf.getnames())
            index = json.load(tf.extractfile("index.json"))
            manifest_digest = index["manifests"][0]["digest"].split(":")[1]
            manifest = json.load(tf.extractfile(f"blobs/sha256/{manifest_digest}"))
        check("oci-layout" in members, "--save wrote an OCI archive (oci-layout, index.json)")
        check(manifest["config"]["digest"] == "sha256:" + info["Id"],
              "the archive's config is the built image's", (manifest["config"]["digest"], info["Id"]))
    finally:
        if pm:
            pm.remove_all()
        if a.keep:
            log(f"kept {tmp} (--keep); remove with {BUILD_IMAGE} --storage {storage} --reset")
        else:
            if os.path.isdir(storage):
                r = subprocess.run([BUILD_IMAGE, "--storage", storage, "--reset"], capture_output=True,
                                   text=True, timeout=300)
                if r.returncode != 0:
                    log(f"reset of {storage} failed: {r.stderr.strip()}")
            shutil.rmtree(tmp, ignore_errors=True)
            restore_host(before, pm.ids if pm else [])
            rundir = "/run/flock-podman-" + hashlib.sha256(storage.encode()).hexdigest()[:12]
            check(not os.path.exists(rundir), f"build-image.sh --reset removed {rundir}")
            log(f"removed {tmp}")
    if failures:
        log(f"{len(failures)} check(s) failed: {failures}")
        return 1
    log("all image checks passed")
    return 0


def on_signal(signum, frame):
    raise Fatal(f"signal {signum}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sys.exit(main())
    except Fatal as e:
        log(f"FAIL {e}")
        sys.exit(1)
