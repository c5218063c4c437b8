"""flock-bench against a real broker: its reports must match what the broker did.

The benchmarks (make bench, docs/benchmarks.md) trust these numbers, so each mode is checked
end to end on small, bounded runs: pubsub's loss accounting, pub in one process feeding sub in
another (cross-process latency and gaps), conn's connection count and the broker's RSS, and
that a broker which drops messages shows up as loss, not as success.
Runs against Mosquitto too (FLOCK_BROKER=mosquitto): flock-bench works with any broker.
"""

import json
import os
import selectors
import subprocess
import time

import pytest

from conftest import HERE, IS_MOSQUITTO

BENCH = os.environ.get("FLOCK_BENCH") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "bin", "flock-bench"))


def bench(broker, *args, timeout=60):
    """Runs flock-bench to completion; returns (exit code, report dict or None, stderr)."""
    r = subprocess.run([BENCH, *args, "--port", str(broker.port), "--json", "--quiet"],
                       capture_output=True, text=True, timeout=timeout)
    report = json.loads(r.stdout) if r.stdout.strip() else None
    return r.returncode, report, r.stderr


def start_sub(broker, *args):
    """Starts `flock-bench sub` and waits (bounded) for its "receiving" progress line, printed
    once every subscriber has its SUBACK; returns the process (stdout: the JSON report)."""
    sub = subprocess.Popen([BENCH, "sub", "--port", str(broker.port), "--warmup", "0", "--json", *args],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sel = selectors.DefaultSelector()
    sel.register(sub.stderr, selectors.EVENT_READ)
    deadline, seen = time.monotonic() + 20, ""
    while "receiving for" not in seen:
        if time.monotonic() >= deadline or sub.poll() is not None:
            sub.kill()
            sub.wait()
            raise AssertionError("sub never got ready: " + seen)
        if sel.select(timeout=0.5):
            seen += sub.stderr.readline()
    return sub


def finish_sub(sub):
    """The report of a sub started by start_sub (killed if it does not end in 30 s)."""
    try:
        out, _ = sub.communicate(timeout=30)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert sub.returncode == 0
    return json.loads(out)


def test_pubsub_qos1_accounts_for_every_message(broker):
    rc, r, err = bench(broker, "pubsub", "--qos", "1", "--publishers", "4", "--subscribers", "4",
                       "--topics", "2", "--rate", "2000", "--warmup", "0.2", "--duration", "1")
    assert rc == 0, err
    t = r["totals"]
    assert t["published"] > 0 and t["acknowledged"] == t["published"], t
    # 4 publishers on 2 topics, 2 subscribers per topic: every acknowledged message twice.
    assert t["expected"] == 2 * t["acknowledged"], t
    assert t["received"] == t["expected"] and t["lost"] == 0, t
    assert t["duplicates"] == 0 and t["misrouted"] == 0, t
    assert t["publishers_with_loss"] == 0 and "per_publisher" not in r, r
    assert r["latency"]["count"] > 0 and 0 < r["latency"]["p50"] <= r["latency"]["max"], r["latency"]
    assert r["ok"] is True


def test_qos2_flows_complete(broker):
    rc, r, err = bench(broker, "pubsub", "--qos", "2", "--publishers", "2", "--subscribers", "2",
                       "--rate", "500", "--warmup", "0", "--duration", "1", "--mqtt-version", "5")
    assert rc == 0, err
    t = r["totals"]
    assert t["acknowledged"] == t["published"] > 0 and t["lost"] == 0 and t["duplicates"] == 0, t


def test_pub_in_one_process_feeds_sub_in_another(broker):
    """sub counts what an independent pub sends: every acknowledged message, no gaps, and a
    latency measured across processes (both read CLOCK_MONOTONIC)."""
    sub = start_sub(broker, "--qos", "1", "--subscribers", "2", "--topics", "2", "--duration", "5")
    try:
        rc, p, err = bench(broker, "pub", "--qos", "1", "--publishers", "2", "--topics", "2",
                           "--rate", "1000", "--warmup", "0", "--duration", "1", "--run-id", "4242")
        assert rc == 0, err
    finally:
        s = finish_sub(sub)
    assert p["config"]["run_id"] == 4242
    assert p["totals"]["acknowledged"] == p["totals"]["published"] > 0, p["totals"]
    # Publisher p sends to topic p % 2 and subscriber s listens on s % 2: one copy each.
    assert s["totals"]["received"] == p["totals"]["acknowledged"], (s["totals"], p["totals"])
    assert s["totals"]["streams"] == 2 and s["totals"]["gaps"] == 0, s["totals"]
    assert s["totals"]["duplicates"] == 0 and s["totals"]["misrouted"] == 0, s["totals"]
    assert 0 < s["latency"]["p50"] < 1e6, s["latency"]  # microseconds: under a second


def test_sub_with_another_run_id_counts_nothing_as_received(broker):
    """--run-id on sub filters: a pub with another id is stale, not received."""
    sub = start_sub(broker, "--qos", "0", "--filter", "bench/t/#", "--run-id", "7", "--duration", "3")
    try:
        rc, p, err = bench(broker, "pub", "--qos", "1", "--rate", "200", "--warmup", "0",
                           "--duration", "0.5", "--run-id", "8")
        assert rc == 0, err
    finally:
        s = finish_sub(sub)
    assert s["totals"]["received"] == 0 and s["totals"]["streams"] == 0, s["totals"]
    assert s["totals"]["stale"] == p["totals"]["acknowledged"] > 0, (s["totals"], p["totals"])


@pytest.mark.broker(max_queued_messages=10)
def test_messages_a_broker_drops_are_reported_lost(broker):
    """A persistent subscriber dropped mid-run while QoS 1 flows: the broker keeps at most 10
    queued messages for it, so what it dropped must show as lost (the check can fail)."""
    rc, r, err = bench(broker, "pubsub", "--qos", "1", "--persistent", "--publishers", "2",
                       "--subscribers", "2", "--topics", "2", "--rate", "2000", "--warmup", "0",
                       "--duration", "2", "--kill-subscriber-after", "0.5", "--reconnect-delay", "1")
    assert r is not None, err
    t = r["totals"]
    assert r["connections"]["subscriber_reconnects"] == 1, r["connections"]
    assert t["lost"] > 0 and t["received"] + t["lost"] == t["expected"], t
    # Only subscriber 0 was away, and only publisher 0 sends to its topic: the report names it.
    assert t["publishers_with_loss"] == 1 and list(r["per_publisher"]) == ["bench-pub-0"], r
    p0 = r["per_publisher"]["bench-pub-0"]
    assert p0["lost"] == t["lost"] and p0["received"] + p0["lost"] == p0["expected"], p0


def test_conn_holds_connections_and_reports_broker_memory(broker):
    rc, r, err = bench(broker, "conn", "--connections", "200", "--subscribe", "--duration", "0.5",
                       "--broker-pid", str(broker.pid))
    assert rc == 0, err
    text = json.dumps(r)
    c, mem = r["connections"], r["broker_memory"]
    assert c["connected"] == 200 and c["failed"] == 0 and c["subscribed"] == 200, text
    assert c["dropped_while_held"] == 0, text
    assert mem["pid"] == broker.pid and mem["rss_held"] >= mem["rss_before"] > 0, text


def established_from(sources, port):
    """Counts ESTABLISHED IPv4 connections to 127.0.0.1:port by local address (/proc/net/tcp)."""
    counts = dict.fromkeys(sources, 0)
    hex_of = {a: "".join(f"{int(b):02X}" for b in reversed(a.split("."))) for a in sources}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, remote, state = line.split()[1:4]
            if state != "01" or remote != f"0100007F:{port:04X}":
                continue
            for a, h in hex_of.items():
                if local.startswith(h + ":"):
                    counts[a] += 1
    return counts


def test_conn_spreads_connections_over_source_addresses(broker):
    sources = ["127.0.0.2", "127.0.0.3"]
    proc = subprocess.Popen([BENCH, "conn", "--connections", "200", "--source-addresses", ",".join(sources),
                             "--duration", "30", "--port", str(broker.port), "--json", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, counts = time.monotonic() + 20, {}
        while time.monotonic() < deadline:
            counts = established_from(sources, broker.port)
            if all(n == 100 for n in counts.values()) or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert counts == {"127.0.0.2": 100, "127.0.0.3": 100}, counts
    finally:
        proc.terminate()  # ends the hold early; the report is not needed
        proc.communicate(timeout=30)


def test_bad_command_lines_exit_2_with_one_line():
    for args in (["sub", "--subscribers", "0"], ["pub", "--run-id", "0"], ["pubsub", "--qos", "3"],
                 ["nosuchmode"], ["sub", "--filter="]):
        r = subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (args, r)
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("flock-bench: "), (args, r.stderr)
