#!/usr/bin/env bash
# Short load run against a running server, for CI: fan-out and channels for a few seconds each,
# failing (non-zero exit) if any message is lost, duplicated or out of order, or a publish fails.
#
#   bench/smoke.sh http://127.0.0.1:8080
#
# Environment:
#   BENCH_BIN         agentwire-bench to use (default: <repo>/build/bench/agentwire-bench if it
#                     exists, else one is built in BENCH_BUILD_DIR)
#   BENCH_BUILD_DIR   (default: bench/build)
#   SMOKE_SCENARIOS   default "fanout channels"; also available: resume latency
#   SMOKE_DURATION    publishing seconds per scenario (default 2)
set -uo pipefail

URL=${1:-}
if [[ -z $URL || $URL == -h || $URL == --help ]]; then
  echo "usage: $0 http://HOST:PORT" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCENARIOS=${SMOKE_SCENARIOS:-fanout channels}
DURATION=${SMOKE_DURATION:-2}

BENCH=${BENCH_BIN:-}
if [[ -z $BENCH && -x $ROOT/build/bench/agentwire-bench ]]; then
  BENCH=$ROOT/build/bench/agentwire-bench
fi
if [[ -z $BENCH ]]; then
  BUILD_DIR=${BENCH_BUILD_DIR:-$HERE/build}
  GEN=()
  command -v ninja >/dev/null && GEN=(-G Ninja)
  if ! cmake -S "$HERE" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null ||
     ! cmake --build "$BUILD_DIR" >/dev/null; then
    echo "smoke.sh: building agentwire-bench failed" >&2
    exit 2
  fi
  BENCH=$BUILD_DIR/agentwire-bench
fi

pass=0
fail=0
for sc in $SCENARIOS; do
  case $sc in
    fanout) args=(fanout --connections 200 --slow 2 --duration "$DURATION") ;;
    channels) args=(channels --channels 1000 --duration "$DURATION") ;;
    latency) args=(channels --channels 1000 --rate 500 --duration "$DURATION") ;;
    resume) args=(resume --connections 200 --missed 50) ;;
    *) echo "smoke.sh: unknown scenario '$sc'" >&2; exit 2 ;;
  esac
  echo "== smoke $sc: agentwire-bench ${args[*]} --url $URL"
  if "$BENCH" "${args[@]}" --url "$URL" --settle 0.2 --connect-timeout 20 --drain-timeout 10; then
    pass=$((pass + 1))
  else
    echo "== smoke $sc FAILED"
    fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
