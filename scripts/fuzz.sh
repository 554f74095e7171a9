#!/usr/bin/env bash
# Runs every libFuzzer target (build-fuzz, see fuzz/CMakeLists.txt) for SECONDS each, JOBS at a time, from
# the committed seed corpus (fuzz/corpus/<target>, only read: what the run discovers goes to a scratch
# dir). A crash, sanitizer report, leak, time-out or broken property fails the run; the input that did it
# is kept in fuzz/artifacts/ with the command that replays it. Make it a regression test by adding it to
# fuzz/corpus/<target>/ once fixed: the unit tests replay that directory.
# Usage: scripts/fuzz.sh [SECONDS] [JOBS] [TARGET...]    (build first: cmake --preset fuzz && cmake --build --preset fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
jobs=${2:-$(nproc)}
shift $(($# < 2 ? $# : 2))
bin=${FUZZ_BUILD_DIR:-build-fuzz}/fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$bin"/fuzz_*; do targets+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
[ ${#targets[@]} -gt 0 ] && [ -x "$bin/fuzz_${targets[0]}" ] || { echo "fuzz: no targets in $bin: build them first" >&2; exit 2; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p fuzz/artifacts

run_one() {
  local t=$1 seconds=$2 bin=$3 scratch=$4
  mkdir -p "$scratch/$t"
  if "$bin/fuzz_$t" "$scratch/$t" "fuzz/corpus/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -max_len=4096 -artifact_prefix="fuzz/artifacts/$t-" -print_final_stats=1 >"$scratch/$t.log" 2>&1; then
    printf '%-16s ok: %s runs, %s new inputs, %s edges\n' "$t" \
      "$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$t.log")" \
      "$(find "$scratch/$t" -type f | wc -l)" \
      "$(grep -o 'cov: [0-9]*' "$scratch/$t.log" | tail -1 | cut -d' ' -f2)"
  else
    echo "$t FAILED; its log ends:"
    tail -40 "$scratch/$t.log"
    sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$scratch/$t.log" | while read -r a; do
      echo "replay: $bin/fuzz_$t $a"
    done
    return 1
  fi
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$seconds" "$bin" "$scratch"
