#!/usr/bin/env bash
# Fails when the pure modules (codec, protocol, core, clustering, ports,
# replication, controller) include Asio, gRPC, RocksDB or generated protobuf headers:
# they must stay testable without I/O and portable to other transports (ARCHITECTURE.md,
# section 1). And when the core reaches into its cluster half: the core
# knows only core::cluster_side, broker/clustering plugs into it. And when
# the protocol machine reaches past core::front_door into the core's insides.
# And when a module includes one it does not build on (the table below).
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"
pattern='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](boost/asio|asio|grpc|grpcpp|rocksdb|google/protobuf|[^>"]*\.pb\.h|broker/server/|storage/|cluster/)'
dirs=()
for d in broker/codec broker/core broker/protocol broker/ports broker/clustering broker/replication broker/controller; do
  [[ -d $d ]] && dirs+=("$d")
done
if [[ ${#dirs[@]} -eq 0 ]]; then
  echo "check_layering: no pure module directories found under $root" >&2
  exit 1
fi
if hits=$(grep -rnE "$pattern" "${dirs[@]}" --include='*.hpp' --include='*.cpp' --include='*.h' --include='*.cc'); then
  echo "check_layering: pure modules must not include I/O libraries:" >&2
  echo "$hits" >&2
  exit 1
fi
if hits=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"broker/clustering/' broker/codec broker/core broker/protocol broker/ports); then
  echo "check_layering: the core and its ports must not include its cluster half (broker/clustering):" >&2
  echo "$hits" >&2
  exit 1
fi
if hits=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"broker/core/broker_impl\.hpp"' broker/protocol); then
  echo "check_layering: the protocol machine reaches the core through core::front_door, not its insides:" >&2
  echo "$hits" >&2
  exit 1
fi
# Which broker/ modules each may include (its library links only those):
# codec is the bottom; core (with its interfaces in ports) uses codec;
# protocol and clustering sit on the core; auth reads files for the server.
allowed() {
  case "$1" in
    codec) echo "codec" ;;
    core | ports) echo "codec core ports replication" ;;
    protocol) echo "codec core ports protocol" ;;
    clustering) echo "codec core ports replication clustering" ;;
    auth) echo "codec ports auth" ;;
    replication) echo "replication" ;;
    controller) echo "core ports replication controller" ;;
  esac
}
for module in codec core ports protocol clustering auth replication controller; do
  [[ -d broker/$module ]] || continue
  ok=$(allowed "$module")
  while IFS= read -r hit; do
    [[ -z $hit ]] && continue
    used=$(sed -E 's|.*#[[:space:]]*include[[:space:]]*"broker/([a-z_]+)/.*|\1|' <<<"${hit#*:*:}")
    if [[ " $ok " != *" $used "* ]]; then
      echo "check_layering: broker/$module may include only broker/{${ok// /,}}:" >&2
      echo "$hit" >&2
      exit 1
    fi
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"broker/' "broker/$module" || true)
done
echo "check_layering: ok (${dirs[*]})"
