#!/usr/bin/env bash
# Builds everything and runs every test suite: unit tests (GoogleTest), black-box tests against the real
# binary (pytest), the same again under AddressSanitizer + UBSan, and a short smoke run of the load
# generator. Installs missing Debian packages first. Exits non-zero on the first failure.
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

if [ -x build/bench/agentwire-bench ] && [ -x bench/smoke.sh ]; then
  echo "== load generator smoke run"
  bench/smoke.sh build/agentwire build/bench/agentwire-bench
fi

if [ "${AGENTWIRE_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build with AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DAGENTWIRE_SANITIZE=address,undefined \
    -DAGENTWIRE_BENCH=OFF -DAGENTWIRE_WERROR=ON >/dev/null
  cmake --build build-asan -j "$JOBS"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
  echo "== unit tests (sanitized)"
  ctest --test-dir build-asan --output-on-failure -j "$JOBS"
  echo "== black-box tests (sanitized server)"
  AGENTWIRE_BIN="$PWD/build-asan/agentwire" "$PY" -m pytest tests/e2e -q -p no:cacheprovider
fi
echo "== all tests passed"
