#!/usr/bin/env bash
# Builds everything and runs every test suite: unit tests (GoogleTest), black-box tests against the real
# binary (pytest), the Python and TypeScript clients' tests, the dashboard in headless Chromium, a short
# smoke run of the load generator, and the unit and black-box tests again under AddressSanitizer + UBSan.
# Installs missing Debian packages (and npm packages, from the lock files) first. Exits non-zero on the
# first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test

PY=/usr/bin/python3  # Debian's python3, which has python3-websockets and python3-pytest
JOBS=$(nproc)

echo "== build (RelWithDebInfo, warnings are errors)"
cmake -S . -B build -G Ninja -DAGENTWIRE_WERROR=ON >/dev/null
cmake --build build -j "$JOBS"

echo "== unit tests"
ctest --test-dir build --output-on-failure -j "$JOBS"

echo "== black-box tests"
AGENTWIRE_BIN="$PWD/build/agentwire" "$PY" -m pytest tests/e2e -q -p no:cacheprovider

echo "== Python client tests"
AGENTWIRE_BIN="$PWD/build/agentwire" "$PY" -m pytest clients/python/tests -q -p no:cacheprovider

echo "== TypeScript client (tests against the real server)"
(cd clients/ts && npm ci --no-audit --no-fund --loglevel=error && npm test)

echo "== dashboard build"
(cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build)

echo "== browser tests (headless Chromium)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error &&
  DASHBOARD_SCREENSHOT="$PWD/artifacts/dashboard.png" npm test)

echo "== load generator smoke run (asserts no loss, no timing)"
smoke_dir=$(mktemp -d)
build/agentwire --listen 127.0.0.1:0 --data-dir "$smoke_dir/data" 2>"$smoke_dir/log" &
smoke_pid=$!
port=""
for _ in $(seq 200); do
  port=$(sed -n 's/.*event=listening.* port=\([0-9]*\).*/\1/p' "$smoke_dir/log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$smoke_dir/log"; echo "server did not start" >&2; exit 1; }
BENCH_BIN=build/bench/agentwire-bench SMOKE_SCENARIOS="fanout channels resume" \
  bench/smoke.sh "http://127.0.0.1:$port"
kill -TERM "$smoke_pid"
wait "$smoke_pid"
rm -rf "$smoke_dir"

if [ "${AGENTWIRE_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAGENTWIRE_SANITIZE=address,undefined \
    -DAGENTWIRE_BENCH=OFF -DAGENTWIRE_WERROR=ON >/dev/null
  cmake --build build-asan -j "$JOBS"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  echo "== unit tests (sanitized)"
  ctest --test-dir build-asan --output-on-failure -j "$JOBS"
  echo "== black-box tests (sanitized server)"
  AGENTWIRE_SANITIZED=1 AGENTWIRE_BIN="$PWD/build-asan/agentwire" "$PY" -m pytest tests/e2e -q -p no:cacheprovider
fi
echo "== all tests passed"
