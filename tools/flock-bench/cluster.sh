#!/usr/bin/env bash
# The flock cluster on this machine: 3 nodes (A, B, C) against one single node,
# the same load generator, the same run.
#
#   tools/flock-bench/cluster.sh [--flockd PATH] [--bench PATH] [--duration S]
#                                [--out DIR] [--only CASE[,CASE...]] [--plaintext]
#
# Starts 3 flockd nodes meshed over gRPC and one flockd without a cluster
# (free loopback ports, temp data dirs, --workers 1 each), then runs every
# case three ways: on the single node, publisher on A and subscriber on B
# (one forwarding hop), and both on A (a cluster node, no hop). Prints a
# table with the ratio cross-node/single-node; the raw JSON of every run is
# kept in --out (default: a temp dir, printed at the end). Nodes are stopped
# by PID. Bounded: each run by `timeout`, the whole script by a 280 s budget
# (cases that no longer fit are skipped and say so). The nodes talk over
# mutual TLS, as flockd does by default; --plaintext turns it off.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
flockd="$root/build/bin/flockd"
bench="$root/build/bin/flock-bench"
duration=5
out=""
only=""
cluster_args=""  # extra flockd flags for the cluster nodes, e.g. "--cluster-ack-timeout-ms 0"
plaintext=0      # --plaintext: nodes talk without TLS (cluster_tls false), to measure what TLS costs
budget=280

while [[ $# -gt 0 ]]; do
  case "$1" in
    --flockd) flockd="$2"; shift 2 ;;
    --bench) bench="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --cluster-args) cluster_args="$2"; shift 2 ;;
    --plaintext) plaintext=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
for f in "$flockd" "$bench"; do
  [[ -x "$f" ]] || { echo "cluster.sh: $f is not an executable (run make build?)" >&2; exit 2; }
done
py=/usr/bin/python3
[[ -x "$py" ]] || py=python3

work="$(mktemp -d /tmp/flock-cluster.XXXXXX)"
[[ -n "$out" ]] || out="$work/results"
mkdir -p "$out"
# The build may be rebuilt while we run: measure private copies.
cp "$flockd" "$work/flockd"
cp "$bench" "$work/flock-bench"
flockd_sha="$(sha256sum "$work/flockd" | cut -c1-12)"

# 4 MQTT ports (A, B, C, single) and 3 cluster ports, all free at once.
read -r mqtt_a mqtt_b mqtt_c mqtt_s grpc_a grpc_b grpc_c < <("$py" -c '
import socket
socks = []
for _ in range(7):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))')

declare -A pid=()
stop_node() {
  local p="${pid[$1]:-}"
  [[ -n "$p" ]] || return 0
  if kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || true
  unset "pid[$1]"
}
cleanup() {
  for n in a b c s; do stop_node "$n"; done
  rm -rf "$work/data" "$work/flockd" "$work/flock-bench" "$work/certs"
  rmdir "$work" 2>/dev/null || true  # empty unless the results are kept in it
}
trap cleanup EXIT
# The nodes talk over mutual TLS, flockd's default (docs/clustering.md).
/usr/bin/python3 "$here/../../tests/fixtures/cluster_certs.py" "$work/certs"
trap 'exit 130' INT TERM

# start_node NAME MQTT_PORT [GRPC_PORT SEED,SEED]
start_node() {
  local name="$1" port="$2" cluster=()
  if [[ $# -gt 2 ]]; then
    cluster=(--node-name "$name" --cluster-listen "127.0.0.1:$3" --seeds "$4")
    if [[ $plaintext == 1 ]]; then
      cluster+=(--cluster-tls false)
    else
      cluster+=(--cluster-certfile "$work/certs/node.pem" --cluster-keyfile "$work/certs/node.key"
                --cluster-cafile "$work/certs/ca.pem")
    fi
    # shellcheck disable=SC2206  # word splitting of the extra flags is meant
    cluster+=($cluster_args)
  fi
  mkdir -p "$work/data/$name"
  ( ulimit -n 20000 2>/dev/null || true
    exec "$work/flockd" --listen "127.0.0.1:$port" --data-dir "$work/data/$name" --workers 1 \
      --log-level info "${cluster[@]}"
  ) >"$out/flockd-$name.log" 2>&1 &
  pid[$name]=$!
}

# wait_log NAME PATTERN COUNT: COUNT lines matching PATTERN in NAME's log, 30 s at most.
wait_log() {
  local log="$out/flockd-$1.log"
  for _ in $(seq 300); do
    kill -0 "${pid[$1]}" 2>/dev/null || { echo "cluster.sh: node $1 exited (see $log)" >&2; exit 1; }
    [[ "$(grep -c -- "$2" "$log" 2>/dev/null || true)" -ge "$3" ]] && return 0
    sleep 0.1
  done
  echo "cluster.sh: node $1: no '$2' within 30 s (see $log)" >&2
  exit 1
}

start_node a "$mqtt_a" "$grpc_a" "127.0.0.1:$grpc_b,127.0.0.1:$grpc_c"
start_node b "$mqtt_b" "$grpc_b" "127.0.0.1:$grpc_a,127.0.0.1:$grpc_c"
start_node c "$mqtt_c" "$grpc_c" "127.0.0.1:$grpc_a,127.0.0.1:$grpc_b"
start_node s "$mqtt_s"
for n in a b c s; do wait_log "$n" "flockd .* started" 1; done
for n in a b c; do wait_log "$n" "cluster: peer .* up" 2; done

# Where each layout points the publishers (--port) and the subscribers (--sub-port).
declare -A layout=(
  [single]="--port $mqtt_s"
  [cross]="--port $mqtt_a --sub-port $mqtt_b"
  [local]="--port $mqtt_a"
)
pubsub="pubsub --publishers 4 --subscribers 4 --topics 4 --payload 64 --inflight 16 --duration $duration --warmup 1"
# case name | flock-bench arguments
cases=(
  "qos0-max|$pubsub --qos 0"
  "qos0-400k|$pubsub --qos 0 --rate 400000"
  "qos0-800k|$pubsub --qos 0 --rate 800000"
  "qos1-max|$pubsub --qos 1"
  "qos1-max-w64|$pubsub --qos 1 --inflight 64"
  "qos0-10k|$pubsub --qos 0 --rate 10000"
  "qos1-10k|$pubsub --qos 1 --rate 10000"
  "converge-1ms|converge --repeat 200 --probe-interval-ms 1"
  "converge-0.1ms|converge --repeat 200 --probe-interval-ms 0.1"
  "move-100|move --repeat 20 --queued 100"
  "move-1000|move --repeat 20 --queued 1000"
)

echo "flock-bench cluster: $(nproc) cores, flockd $("$work/flockd" --version | awk '{print $2}') (sha256 $flockd_sha), 3 nodes + 1 single node, --workers 1 each"
for c in "${cases[@]}"; do
  name="${c%%|*}"
  args="${c#*|}"
  if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
  # pubsub: duration + warm-up + set-up + at most 10 s of drain; the others finish in seconds.
  limit=$((duration + 40))
  for l in single cross local; do
    left=$((budget - SECONDS))
    if [[ $left -lt 20 ]]; then
      echo "  $name on $l: skipped (the ${budget} s budget is spent)" >&2
      continue
    fi
    [[ $limit -le $left ]] || limit=$left
    echo "  $name $l ..." >&2
    rc=0
    # shellcheck disable=SC2086
    timeout "$limit" "$work/flock-bench" $args ${layout[$l]} --client-prefix "cl-$name" --json --quiet \
      >"$out/$name-$l.json" 2>"$out/$name-$l.err" || rc=$?
    [[ $rc -eq 0 ]] || echo "  $name $l: flock-bench exited $rc: $(tail -n 1 "$out/$name-$l.err")" >&2
  done
done
for n in a b c s; do stop_node "$n"; done

"$py" - "$out" <<'EOF'
import json, os, sys
out = sys.argv[1]

def load(name, layout):
    try:
        with open(os.path.join(out, f"{name}-{layout}.json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except Exception:
        return None

def get(d, path):  # "a/b/c"; "ms:" divides microseconds by 1000
    if d is None:
        return None
    if path == "@undelivered":
        t = d.get("totals", {})
        exp = t.get("expected") or 0
        return 100.0 * t.get("not_delivered", 0) / exp if exp else None
    ms = path.startswith("ms:")
    for k in (path[3:] if ms else path).split("/"):
        if not isinstance(d, dict) or k not in d:
            return None
        if d.get("count") == 0 and k != "count":
            return None  # an empty histogram: nothing was measured
        d = d[k]
    return d / 1000.0 if ms and isinstance(d, (int, float)) else d

lat = lambda key: [(f"{key} p50 ms", f"ms:{key}/p50"), (f"{key} p99 ms", f"ms:{key}/p99")]
rows = [
    ("qos0-max", "(a) QoS 0, 4 pub -> 4 sub (4 topics), max rate", [
        ("received msg/s", "rates/received"), ("not delivered %", "@undelivered")]),
    ("qos0-400k", "(a) QoS 0, 4 -> 4, 400,000 msg/s offered", [
        ("received msg/s", "rates/received"), ("not delivered %", "@undelivered")] + lat("latency")),
    ("qos0-800k", "(a) QoS 0, 4 -> 4, 800,000 msg/s offered", [
        ("received msg/s", "rates/received"), ("not delivered %", "@undelivered")] + lat("latency")),
    ("qos1-max", "(a) QoS 1, 4 -> 4, max rate (--inflight 16)", [
        ("acknowledged msg/s", "rates/acknowledged"), ("received msg/s", "rates/received"),
        ("lost (acked, dropped)", "totals/lost", False)] + lat("latency") + lat("ack_latency")),
    ("qos1-max-w64", "(a) QoS 1, 4 -> 4, max rate (--inflight 64)", [
        ("acknowledged msg/s", "rates/acknowledged"), ("received msg/s", "rates/received"),
        ("lost (acked, dropped)", "totals/lost", False)] + lat("latency") + lat("ack_latency")),
    ("qos0-10k", "(b) QoS 0, 4 -> 4, 10,000 msg/s", [("received msg/s", "rates/received")] + lat("latency") +
        [("latency p99.9 ms", "ms:latency/p99.9")]),
    ("qos1-10k", "(b) QoS 1, 4 -> 4, 10,000 msg/s", [("received msg/s", "rates/received")] + lat("latency") +
        [("latency p99.9 ms", "ms:latency/p99.9")] + lat("ack_latency")),
    ("converge-1ms", "(c) route convergence, 200 fresh topics, probes every 1 ms", [
        ("converged / 200", "attempts/converged", False),
        ("SUBACK -> first probe p50 ms", "ms:suback_to_first_probe/p50", False),
        ("SUBACK -> first probe p99 ms", "ms:suback_to_first_probe/p99", False),
        ("SUBACK -> first probe max ms", "ms:suback_to_first_probe/max", False),
        ("probes until one arrived (mean)", "attempts/probes_to_first_arrival_mean", False)]),
    ("converge-0.1ms", "(c) route convergence, probes every 0.1 ms", [
        ("converged / 200", "attempts/converged", False),
        ("SUBACK -> first probe p50 ms", "ms:suback_to_first_probe/p50", False),
        ("SUBACK -> first probe p99 ms", "ms:suback_to_first_probe/p99", False),
        ("SUBACK -> first probe max ms", "ms:suback_to_first_probe/max", False),
        ("lower bound p50 ms", "ms:lower_bound/p50", False),
        ("probe delivery p50 ms", "ms:probe_delivery/p50")]),
    ("move-100", "(d) session with 100 queued QoS 1 messages resumed (20x)", [
        ("moved / 20", "attempts/moved", False), ("missing", "attempts/missing", False), ("duplicates", "attempts/duplicates", False)] +
        lat("connack") + lat("all_messages")),
    ("move-1000", "(d) session with 1000 queued QoS 1 messages resumed (20x)", [
        ("moved / 20", "attempts/moved", False), ("missing", "attempts/missing", False), ("duplicates", "attempts/duplicates", False)] +
        lat("connack") + lat("all_messages")),
]

def fmt(v):
    if v is None:
        return "error"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v != int(v) and abs(v) < 100:
        return f"{v:,.3f}" if abs(v) < 1 else f"{v:,.2f}"
    return f"{int(round(v)):,}"

lines = [("case / metric", "single node", "cross A->B", "same node A->A", "cross/single")]
for name, title, metrics in rows:
    ds = {l: load(name, l) for l in ("single", "cross", "local")}
    if all(d is None for d in ds.values()):
        continue
    lines.append((title, "", "", "", ""))
    for label, path, *with_ratio in metrics:
        vs = {l: get(d, path) for l, d in ds.items()}
        ratio = "-"
        s, x = vs["single"], vs["cross"]
        # No ratio for counts, nor where the single node is ~0 by construction (convergence).
        if (with_ratio or [True])[0] and isinstance(s, (int, float)) and isinstance(x, (int, float)) and s:
            ratio = f"{x / s:.2f}"
        lines.append(("  " + label, fmt(vs["single"]), fmt(vs["cross"]), fmt(vs["local"]), ratio))
    for l, d in ds.items():
        if d is not None and not d.get("ok", True):
            first = get(d, "connections/first_error") or "errors: see the .err file"
            lines.append((f"  ({l}: {first})", "", "", "", ""))
w = [max(len(r[i]) for r in lines) for i in range(5)]
for i, r in enumerate(lines):
    print(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:>{w[3]}}  {r[4]:>{w[4]}}")
    if i == 0:
        print("-" * (sum(w) + 8))
print("(latency: publish to receive in one process, one steady clock; convergence: upper bound, SUBACK on the")
print(" subscriber's node to the first probe published on A arriving; move: resume TCP connect to CONNACK / to the")
print(" K-th message; the single-node and A->A columns resume where the session already is)")
EOF
echo "raw results: $out (total $SECONDS s)"
