#!/usr/bin/env bash
# flockd versus Mosquitto on this machine, same load generator, same run.
#
#   tools/flock-bench/compare.sh [--flockd PATH] [--bench PATH] [--mosquitto PATH]
#                                [--duration S] [--out DIR] [--only CASE[,CASE...]]
#
# For every case each broker is started fresh (flockd: temp data dir, a free
# loopback port, --workers 2; Mosquitto: temp config with `listener PORT
# 127.0.0.1` and `allow_anonymous true`, plus `persistence true` for the
# persistent case), measured with flock-bench, and stopped by its PID. The
# broker's CPU time (user + system, /proc/PID/stat) around each run gives
# CPU per received message. Prints a table with the ratio flock/mosquitto; the raw
# JSON of every run is kept in --out (default: a temp dir, printed at the end).
# Every run is bounded: --duration (default 8) + 1 s warm-up + at most 10 s of
# drain, and a hard `timeout` around each flock-bench.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
flockd="$root/build/bin/flockd"
bench="$root/build/bin/flock-bench"
mosquitto="/usr/sbin/mosquitto"
duration=8
out=""
only=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --flockd) flockd="$2"; shift 2 ;;
    --bench) bench="$2"; shift 2 ;;
    --mosquitto) mosquitto="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for f in "$flockd" "$bench" "$mosquitto"; do
  [[ -x "$f" ]] || { echo "compare.sh: $f is not an executable (run make build?)" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "compare.sh: python3 is needed for the table" >&2; exit 2; }

work="$(mktemp -d /tmp/flock-compare.XXXXXX)"
[[ -n "$out" ]] || out="$work/results"
mkdir -p "$out"
# The build may be rebuilt while we run: measure a private copy.
cp "$flockd" "$work/flockd"
flockd_sha="$(sha256sum "$work/flockd" | cut -c1-12)"

broker_pid=""
stop_broker() {
  [[ -n "$broker_pid" ]] || return 0
  if kill -0 "$broker_pid" 2>/dev/null; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$broker_pid" 2>/dev/null && kill -KILL "$broker_pid" 2>/dev/null || true
  fi
  wait "$broker_pid" 2>/dev/null || true
  broker_pid=""
}
cleanup() {
  stop_broker
  rm -rf "$work/data" "$work/flockd"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_broker flock|mosquitto -> sets broker_pid and port
start_broker() {
  port="$(free_port)"
  case "$1" in
    flock)
      rm -rf "$work/data" && mkdir -p "$work/data"
      ( ulimit -n 20000 2>/dev/null || true
        exec "$work/flockd" --listen "127.0.0.1:$port" --data-dir "$work/data" --workers 2 --log-level warn
      ) >"$out/flockd-$port.log" 2>&1 &
      ;;
    mosquitto)
      printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$work/mosquitto.conf"
      if [[ "${2:-}" == persistent ]]; then
        # Its own directory, writable by the user Mosquitto drops to when started as root.
        rm -rf "$work/mdata" && mkdir -p "$work/mdata" && chmod 777 "$work/mdata"
        printf 'persistence true\npersistence_location %s/\n' "$work/mdata" >>"$work/mosquitto.conf"
      fi
      ( ulimit -n 20000 2>/dev/null || true
        exec "$mosquitto" -c "$work/mosquitto.conf"
      ) >"$out/mosquitto-$port.log" 2>&1 &
      ;;
  esac
  broker_pid=$!
  for _ in $(seq 100); do
    kill -0 "$broker_pid" 2>/dev/null || { echo "compare.sh: $1 did not start (see $out)" >&2; exit 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "compare.sh: $1 does not accept connections on $port" >&2
  exit 1
}

# case name | flock-bench arguments (the cases of issue 5)
cases=(
  "qos0-fanin|pubsub --qos 0 --publishers 8 --subscribers 1 --topics 1"
  "qos0-pairs|pubsub --qos 0 --publishers 50 --subscribers 50 --topics 50"
  "qos1-pairs|pubsub --qos 1 --publishers 50 --subscribers 50 --topics 50 --inflight 16"
  "fanout|pubsub --qos 0 --publishers 1 --subscribers 1000 --topics 1"
  "qos1-10k|pubsub --qos 1 --publishers 50 --subscribers 50 --topics 50 --inflight 16 --rate 10000"
  "persistent-qos1|pubsub --qos 1 --persistent --publishers 4 --subscribers 4 --topics 4 --inflight 16"
  "idle|connections --connections 19000 --subscribe --connect-concurrency 256 --source-addresses 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5"
)
# idle: from one source address, 19,000 connections fill two thirds of the
# ephemeral port range and the client's connect() spends its time searching
# it (4.6 s of system time against 1.1 s for 10,000): the connect rate then
# measured the client's kernel, not the broker. Four source addresses keep
# that search short for both brokers.

# CPU seconds (user + system) the broker has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

echo "flock-bench compare: $(nproc) cores, flockd $("$work/flockd" --version | awk '{print $2}') (sha256 $flockd_sha), $("$mosquitto" -h 2>/dev/null | head -1 | sed 's/^mosquitto version /mosquitto /')"
for c in "${cases[@]}"; do
  name="${c%%|*}"
  args="${c#*|}"
  if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
  for broker in flock mosquitto; do
    start_broker "$broker" "$([[ "$name" == persistent* ]] && echo persistent)"
    extra=(--duration "$duration" --warmup 1)
    [[ "$args" == connections* ]] && extra=(--duration "$duration" --broker-pid "$broker_pid")
    echo "  $name on $broker (port $port) ..." >&2
    rc=0
    cpu_before="$(cpu_seconds "$broker_pid")"
    # shellcheck disable=SC2086
    timeout $((duration + 120)) "$bench" $args --port "$port" --json --quiet "${extra[@]}" \
      >"$out/$name-$broker.json" 2>"$out/$name-$broker.err" || rc=$?
    echo "$cpu_before $(cpu_seconds "$broker_pid")" >"$out/$name-$broker.cpu"
    [[ $rc -eq 0 ]] || echo "  $name on $broker: flock-bench exited $rc: $(tail -1 "$out/$name-$broker.err")" >&2
    stop_broker
  done
done

python3 - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]

def load(name, broker):
    try:
        with open(os.path.join(out, f"{name}-{broker}.json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except Exception:
        return None

def get(d, path):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d

rows = [
    ("qos0-fanin", "QoS 0 fan-in, 8 pub -> 1 sub, max rate", [
        ("received msg/s", "rates.received", "hi"),
        ("broker CPU us per received msg", "@cpu_per_msg", "lo"),
        ("not delivered %", "@undelivered", "lo"),
        ("latency p50 ms", "@latency.p50", "lo")]),
    ("qos0-pairs", "QoS 0 pairs, 50 pub -> 50 sub (50 topics), max rate", [
        ("received msg/s", "rates.received", "hi"),
        ("broker CPU us per received msg", "@cpu_per_msg", "lo"),
        ("not delivered %", "@undelivered", "lo"),
        ("latency p50 ms", "@latency.p50", "lo")]),
    ("qos1-pairs", "QoS 1 pairs, 50 -> 50, --inflight 16, max rate", [
        ("acknowledged msg/s", "rates.acknowledged", "hi"),
        ("received msg/s", "rates.received", "hi"),
        ("broker CPU us per received msg", "@cpu_per_msg", "lo"),
        ("lost", "totals.lost", "lo"),
        ("latency p50 ms", "@latency.p50", "lo"),
        ("latency p99 ms", "@latency.p99", "lo")]),
    ("fanout", "QoS 0 fan-out, 1 pub -> 1000 sub, max rate", [
        ("received msg/s", "rates.received", "hi"),
        ("broker CPU us per received msg", "@cpu_per_msg", "lo"),
        ("not delivered %", "@undelivered", "lo"),
        ("latency p50 ms", "@latency.p50", "lo")]),
    ("qos1-10k", "QoS 1, 50 -> 50 at 10,000 msg/s", [
        ("received msg/s", "rates.received", "hi"),
        ("lost", "totals.lost", "lo"),
        ("latency p50 ms", "@latency.p50", "lo"),
        ("latency p99 ms", "@latency.p99", "lo"),
        ("latency p99.9 ms", "@latency.p99.9", "lo"),
        ("broker CPU us per received msg", "@cpu_per_msg", "lo")]),
    ("persistent-qos1", "QoS 1 to persistent sessions (flockd RocksDB async; Mosquitto persistence true), 4 -> 4", [
        ("acknowledged msg/s", "rates.acknowledged", "hi"),
        ("received msg/s", "rates.received", "hi"),
        ("lost", "totals.lost", "lo"),
        ("ack latency p50 ms", "@ack_latency.p50", "lo"),
        ("broker CPU us per received msg", "@cpu_per_msg", "lo")]),
    ("idle", "19,000 idle connections, one subscription each", [
        ("connected", "connections.connected", "hi"),
        ("connect rate conn/s", "connections.connect_rate", "hi"),
        ("broker RSS held MiB", "broker_memory.rss_held", "lo"),
        ("bytes per connection", "broker_memory.bytes_per_connection", "lo")]),
]

def cpu_per_msg(name, broker, d):
    try:
        with open(os.path.join(out, f"{name}-{broker}.cpu")) as f:
            before, after = (float(x) for x in f.read().split())
    except Exception:
        return None
    received = get(d, "totals.received") or 0
    return 1e6 * (after - before) / received if received else None

def value(d, path, name=None, broker=None):
    if d is None:
        return None
    if path == "@cpu_per_msg":
        return cpu_per_msg(name, broker, d)
    if path.startswith("@ack_latency."):
        lat = d.get("ack_latency", {})
        v = lat.get(path[len("@ack_latency."):])
        return None if v is None or not lat.get("count") else v / 1000.0
    if path == "@undelivered":
        t = d.get("totals", {})
        exp = t.get("expected") or 0
        return 100.0 * t.get("not_delivered", 0) / exp if exp else None
    if path.startswith("@latency."):
        lat = d.get("latency", {})
        v = lat.get(path[len("@latency."):])
        return None if v is None or not lat.get("count") else v / 1000.0
    return get(d, path)

def fmt(v):
    if v is None:
        return "error"
    if isinstance(v, float) and v != int(v) and abs(v) < 100:
        return f"{v:,.2f}"
    return f"{int(round(v)):,}"

lines = []
header = ("case / metric", "flock", "mosquitto", "flock/mosquitto")
lines.append(header)
for name, title, metrics in rows:
    f, m = load(name, "flock"), load(name, "mosquitto")
    if f is None and m is None:
        continue
    lines.append((title, "", "", ""))
    for label, path, _ in metrics:
        fv, mv = value(f, path, name, "flock"), value(m, path, name, "mosquitto")
        ratio = "-"
        if fv is not None and mv not in (None, 0):
            ratio = f"{fv / mv:.2f}"
        lines.append(("  " + label, fmt(fv), fmt(mv), ratio))
    for broker, d in (("flock", f), ("mosquitto", m)):
        if d is not None and not d.get("ok", True):
            lines.append((f"  ({broker}: {get(d, 'connections.first_error') or 'errors, see JSON'})", "", "", ""))
w = [max(len(r[i]) for r in lines) for i in range(4)]
for i, r in enumerate(lines):
    print(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}")
    if i == 0:
        print("-" * (sum(w) + 6))
print("(latency: publish to receive, same process, steady clock; ratios > 1 are better for flock on rates,")
print(" worse on latency, loss and memory)")
EOF
echo "raw results: $out"
