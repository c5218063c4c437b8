#!/usr/bin/env bash
# ctest entry: installs MQTT.js (pinned by package-lock.json) if missing, then runs the tests.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules/mqtt ]; then npm ci --no-audit --no-fund --loglevel=error; fi
FLOCKD="$1" exec node --test --test-reporter=spec mqttjs_test.mjs
