#!/usr/bin/env bash
# flockd versus Mosquitto on this machine, same load generator, same run.
#
#   tools/flock-bench/compare.sh [--flockd PATH] [--bench PATH] [--mosquitto PATH]
#                                [--duration S] [--out DIR] [--only CASE[,CASE...]]
#
# For every case each broker is started fresh (flockd: temp data dir, a free
# loopback port, --workers 2; Mosquitto: temp config with `listener PORT
# 127.0.0.1` and `allow_anonymous true`), measured with flock-bench, and
# stopped by its PID. Prints a table with the ratio flock/mosquitto; the raw
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

# case name | flock-bench arguments
cases=(
  "qos0-fanin|pubsub --qos 0 --publishers 4 --subscribers 1 --topics 1"
  "qos0-fanin-50k|pubsub --qos 0 --publishers 4 --subscribers 1 --topics 1 --rate 50000"
  "qos1|pubsub --qos 1 --publishers 4 --subscribers 4 --topics 4 --inflight 16"
  "qos1-20k|pubsub --qos 1 --publishers 4 --subscribers 4 --topics 4 --inflight 16 --rate 20000"
  "idle-10k|connections --connections 10000 --connect-concurrency 256"
)

echo "flock-bench compare: $(nproc) cores, flockd $("$work/flockd" --version | awk '{print $2}') (sha256 $flockd_sha), $("$mosquitto" -h 2>/dev/null | head -1 | sed 's/^mosquitto version /mosquitto /')"
for c in "${cases[@]}"; do
  name="${c%%|*}"
  args="${c#*|}"
  if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
  for broker in flock mosquitto; do
    start_broker "$broker"
    extra=(--duration "$duration" --warmup 1)
    [[ "$args" == connections* ]] && extra=(--duration "$duration" --broker-pid "$broker_pid")
    echo "  $name on $broker (port $port) ..." >&2
    rc=0
    # shellcheck disable=SC2086
    timeout $((duration + 120)) "$bench" $args --port "$port" --json --quiet "${extra[@]}" \
      >"$out/$name-$broker.json" 2>"$out/$name-$broker.err" || rc=$?
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
    ("qos0-fanin", "QoS 0, 4 pub -> 1 sub, max rate", [
        ("received msg/s", "rates.received", "hi"),
        ("not delivered %", "@undelivered", "lo"),
        ("latency p50 ms", "@latency.p50", "lo"),
        ("latency p99 ms", "@latency.p99", "lo")]),
    ("qos0-fanin-50k", "QoS 0, 4 pub -> 1 sub, 50k msg/s", [
        ("received msg/s", "rates.received", "hi"),
        ("latency p50 ms", "@latency.p50", "lo"),
        ("latency p99 ms", "@latency.p99", "lo")]),
    ("qos1", "QoS 1, 4 pub -> 4 sub (4 topics), max rate", [
        ("acknowledged msg/s", "rates.acknowledged", "hi"),
        ("received msg/s", "rates.received", "hi"),
        ("lost", "totals.lost", "lo"),
        ("latency p50 ms", "@latency.p50", "lo"),
        ("latency p99 ms", "@latency.p99", "lo")]),
    ("qos1-20k", "QoS 1, 4 pub -> 4 sub, 20k msg/s", [
        ("received msg/s", "rates.received", "hi"),
        ("lost", "totals.lost", "lo"),
        ("latency p50 ms", "@latency.p50", "lo"),
        ("latency p99 ms", "@latency.p99", "lo"),
        ("latency p99.9 ms", "@latency.p99.9", "lo")]),
    ("idle-10k", "10,000 idle connections", [
        ("connected", "connections.connected", "hi"),
        ("connect rate conn/s", "connections.connect_rate", "hi"),
        ("broker RSS held MiB", "broker_memory.rss_held", "lo"),
        ("bytes per connection", "broker_memory.bytes_per_connection", "lo")]),
]

def value(d, path):
    if d is None:
        return None
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
        fv, mv = value(f, path), value(m, path)
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
