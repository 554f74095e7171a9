#!/usr/bin/env bash
# Builds agentwire (Release) and starts it on 127.0.0.1:8080 with the embedded SQLite store in ./data.
# Extra arguments go to the server, e.g. scripts/run.sh --listen 0.0.0.0:9000
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DAGENTWIRE_TESTS=OFF >/dev/null
cmake --build build --target agentwire
exec build/agentwire "$@"
