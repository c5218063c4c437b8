#!/usr/bin/env bash
# Fails when the pure modules (codec, protocol, core, clustering, ports)
# include Asio, gRPC, RocksDB or generated protobuf headers: they must stay
# testable without I/O and portable to other transports (ARCHITECTURE.md,
# section 1). And when the core reaches into its cluster half: the core
# knows only core::cluster_side, broker/clustering plugs into it.
set -euo pipefail
root="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
cd "$root"
pattern='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](boost/asio|asio|grpc|grpcpp|rocksdb|google/protobuf|[^>"]*\.pb\.h|broker/server/|storage/|cluster/)'
dirs=()
for d in broker/codec broker/core broker/protocol broker/ports broker/clustering; do
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
echo "check_layering: ok (${dirs[*]})"
