#!/usr/bin/env bash
# Builds agentwire (Release) and starts it on 127.0.0.1:8080 with the embedded SQLite store in ./data.
# Extra arguments go to the server, e.g. scripts/run.sh --listen 0.0.0.0:9000 --api-keys-file keys.json
# (an address other than loopback needs a key, or --allow-anonymous: see docs/operations.md#secure-by-default)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
# The dashboard at / (skipped, with a note, where Node.js 20 is missing: the server runs without it).
if scripts/deps.sh web 2>/dev/null; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build) >/dev/null
else
  echo "note: Node.js 20+ not found, so the dashboard at / is not built (the server works without it)" >&2
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DAGENTWIRE_TESTS=OFF >/dev/null
cmake --build build --target agentwire
exec build/agentwire "$@"
