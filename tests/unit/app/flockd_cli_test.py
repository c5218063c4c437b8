#!/usr/bin/env python3
"""flockd's start-up contract: exit codes, one-line errors, data_dir creation,
clean exit on SIGTERM. Usage: flockd_cli_test.py PATH/TO/flockd"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

FLOCKD = sys.argv[1]
failures = []


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else ": " + detail))
    if not condition:
        failures.append(name)


def run(*args):
    return subprocess.run([FLOCKD, *args], capture_output=True, text=True, timeout=30)


with tempfile.TemporaryDirectory() as tmp:
    r = run("--help")
    check("--help exits 0 and documents flags", r.returncode == 0 and "--max-packet-size" in r.stdout, r.stderr)
    r = run("--version")
    check("--version exits 0", r.returncode == 0 and r.stdout.startswith("flockd "), r.stdout)

    r = run("--workers", "many")
    check("bad flag value exits 2 with one line", r.returncode == 2 and r.stderr.count("\n") == 1
          and r.stderr.startswith("flockd: config: --workers:"), repr(r.stderr))

    cfg = os.path.join(tmp, "flock.yaml")
    with open(cfg, "w") as f:
        f.write("workers: 1\nfoo: 2\n")
    r = run("--config", cfg)
    check("unknown key exits 2 naming file and line", r.returncode == 2
          and r.stderr == f"flockd: config: {cfg}:2: unknown key 'foo'\n", repr(r.stderr))

    acl = os.path.join(tmp, "acl")
    with open(acl, "w") as f:
        f.write("user alice\ntopic rw alice/#\n")
    r = run("--acl-file", acl, "--data-dir", os.path.join(tmp, "d0"))
    check("bad ACL file exits 2 naming file and line", r.returncode == 2
          and r.stderr == f"flockd: config: acl_file: {acl}:2: unknown access 'rw' "
                          "(expected read, write, readwrite or deny)\n", repr(r.stderr))

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    r = run("--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(tmp, "d1"))
    check("port in use exits 1 with one line", r.returncode == 1 and r.stderr.count("\n") == 1
          and f"127.0.0.1:{port}" in r.stderr and "in use" in r.stderr, repr(r.stderr))
    taken.close()

    data_dir = os.path.join(tmp, "nested", "data")
    p = subprocess.Popen([FLOCKD, "--listen", "127.0.0.1:0", "--data-dir", data_dir, "--workers", "2"],
                         stderr=subprocess.PIPE, text=True)
    started = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        if " started" in line:
            started = True
            break
    check("starts and logs", started)
    check("data_dir is created", os.path.isdir(data_dir))
    p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    check("SIGTERM stops it with exit code 0", rc == 0, f"rc={rc}")

sys.exit(1 if failures else 0)
