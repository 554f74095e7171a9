#!/usr/bin/env bash
# Runs the same scenarios against agentwire and the Node.js (ws) peer in one go and prints a table
# with the ratio agentwire/node. Servers are pinned to CPU 0, the load generator to CPU 1, and each
# scenario gets a freshly started server.
#
#   bench/compare.sh
#   TARGETS="redis agentwire" ONLY="channels_10k fanout_1k" bench/compare.sh
#       the same node with --broker redis:// (a private redis-server, AOF everysec, on the generator's
#       CPU, started afresh per scenario) beside its embedded SQLite mode: the ratio is redis/embedded
#
# Environment:
#   AGENTWIRE_BIN    agentwire binary (default: <repo>/build/agentwire)
#   DURATION         publishing seconds per scenario (default 5)
#   AGENTWIRE_ARGS   extra arguments for agentwire (e.g. "--threads 1": it is pinned to one core)
#   AW_PORT, NODE_PORT   ports (default: the first free ones from 28080 / 28090 up)
#   TARGETS          which servers to run (default "agentwire node"; also "redis")
#   ONLY             which scenarios to run, by name (default: all)
#   RESULTS_DIR      where the JSON and logs go (default: a new temporary directory)
#   BENCH_BUILD_DIR  build directory for agentwire-bench (default: bench/build)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
AGENTWIRE_BIN=${AGENTWIRE_BIN:-$ROOT/build/agentwire}
DURATION=${DURATION:-5}
AGENTWIRE_ARGS=${AGENTWIRE_ARGS:-}
TARGETS=${TARGETS:-agentwire node}
BUILD_DIR=${BENCH_BUILD_DIR:-$HERE/build}
RESULTS_DIR=${RESULTS_DIR:-$(mktemp -d /tmp/agentwire-compare.XXXXXX)}
mkdir -p "$RESULTS_DIR"

log() { printf '%s\n' "$*" >&2; }

# --- prerequisites --------------------------------------------------------------------------
for t in $TARGETS; do
  case $t in
    agentwire)
      if [[ ! -x $AGENTWIRE_BIN ]]; then
        log "compare.sh: agentwire binary not found at $AGENTWIRE_BIN (build it, or set AGENTWIRE_BIN; TARGETS=node runs the peer alone)"
        exit 2
      fi ;;
    redis)
      if [[ ! -x $AGENTWIRE_BIN ]]; then
        log "compare.sh: agentwire binary not found at $AGENTWIRE_BIN"
        exit 2
      fi
      command -v redis-server >/dev/null || { log "compare.sh: redis-server not found (scripts/deps.sh test)"; exit 2; } ;;
    node) command -v node >/dev/null || { log "compare.sh: node not found"; exit 2; } ;;
    *) log "compare.sh: unknown target '$t'"; exit 2 ;;
  esac
done

log "== building agentwire-bench (Release) in $BUILD_DIR"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S "$HERE" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" >/dev/null
BENCH=$BUILD_DIR/agentwire-bench

if [[ " $TARGETS " == *" node "* && ! -d $HERE/peers/node-ws/node_modules/ws ]]; then
  log "== installing the Node peer's dependencies (npm ci)"
  (cd "$HERE/peers/node-ws" && npm ci --no-audit --no-fund >/dev/null)
fi

# Descriptors: 10k connections on each side. Raise the soft limit to the hard one (and the hard one
# too where permitted).
ulimit -HSn 1048576 2>/dev/null || ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
log "== open files limit: $(ulimit -n)"

SERVER_CPU=(taskset -c 0)
BENCH_CPU=(taskset -c 1)
if [[ $(nproc) -lt 2 ]] || ! command -v taskset >/dev/null; then
  log "== fewer than 2 CPUs or no taskset: running unpinned"
  SERVER_CPU=()
  BENCH_CPU=()
fi

# --- servers --------------------------------------------------------------------------------
SERVER_PID=
DATA_DIR=

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port given by the caller must be free (a server already there would be measured instead of
# ours); otherwise take the first free one from a base.
pick_port() {  # $1 = value from the environment (may be empty), $2 = base
  if [[ -n $1 ]]; then
    if port_in_use "$1"; then
      log "compare.sh: port $1 is already in use by another process"
      exit 2
    fi
    echo "$1"
    return
  fi
  local p
  for ((p = $2; p < $2 + 200; p++)); do
    if ! port_in_use "$p"; then echo "$p"; return; fi
  done
  log "compare.sh: no free port from $2 up"
  exit 2
}
AW_PORT=$(pick_port "${AW_PORT:-}" 28080) || exit 2
REDIS_PORT=$(pick_port "${REDIS_PORT:-}" 28100) || exit 2
REDIS_PID=
REDIS_DIR=
NODE_PORT=$(pick_port "${NODE_PORT:-}" 28090) || exit 2
if [[ $AW_PORT == "$NODE_PORT" ]]; then NODE_PORT=$(pick_port "" $((AW_PORT + 1))); fi

wait_port() {
  local port=$1 pid=$2
  for _ in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if port_in_use "$port"; then
      sleep 0.2  # still alive a moment later: the listener is ours
      kill -0 "$pid" 2>/dev/null
      return
    fi
    sleep 0.05
  done
  return 1
}

start_redis() {  # a private redis-server (never the system one), fresh for each scenario
  REDIS_DIR=$(mktemp -d /tmp/agentwire-compare-redis.XXXXXX)
  "${BENCH_CPU[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync everysec --dir "$REDIS_DIR" --daemonize no >"$REDIS_DIR/redis.log" 2>&1 &
  REDIS_PID=$!
  wait_port "$REDIS_PORT" "$REDIS_PID"
}

stop_redis() {
  if [[ -n $REDIS_PID ]]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
  fi
  REDIS_PID=
  if [[ -n $REDIS_DIR ]]; then rm -rf "$REDIS_DIR"; REDIS_DIR=; fi
}

start_server() {  # $1 = target, $2 = log file
  local target=$1 logf=$2
  local broker=()
  case $target in
    agentwire) PORT=$AW_PORT ;;
    redis)
      PORT=$AW_PORT
      if ! start_redis; then
        log "compare.sh: redis-server did not start on $REDIS_PORT"
        stop_redis
        return 1
      fi
      broker=(--broker "redis://127.0.0.1:$REDIS_PORT/0") ;;
    node) PORT=$NODE_PORT ;;
  esac
  if port_in_use "$PORT"; then
    log "compare.sh: port $PORT is in use before starting $target (a leftover or foreign server)"
    return 1
  fi
  case $target in
    agentwire | redis)
      DATA_DIR=$(mktemp -d /tmp/agentwire-compare-data.XXXXXX)
      # Every load-generator connection comes from 127.0.0.1: no per-address limit here.
      # shellcheck disable=SC2086
      "${SERVER_CPU[@]}" "$AGENTWIRE_BIN" --listen "127.0.0.1:$AW_PORT" --data-dir "$DATA_DIR" \
        --max-connections-per-ip 0 "${broker[@]}" $AGENTWIRE_ARGS \
        >"$logf" 2>&1 &
      SERVER_PID=$!
      PORT=$AW_PORT ;;
    node)
      "${SERVER_CPU[@]}" node "$HERE/peers/node-ws/server.js" --port "$NODE_PORT" >"$logf" 2>&1 &
      SERVER_PID=$!
      PORT=$NODE_PORT ;;
  esac
  if ! wait_port "$PORT" "$SERVER_PID"; then
    log "compare.sh: $target did not start listening on $PORT (log: $logf)"
    tail -n 20 "$logf" >&2 || true
    stop_server
    return 1
  fi
}

stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.05
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  [[ -n $SERVER_PID ]] && wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  if [[ -n $DATA_DIR ]]; then rm -rf "$DATA_DIR"; DATA_DIR=; fi
  stop_redis
}
trap stop_server EXIT INT TERM

# --- scenarios ------------------------------------------------------------------------------
SCENARIOS=(
  "idle_10k|idle --connections 10000"
  "fanout_1k|fanout --connections 1000 --rate 0 --duration $DURATION"
  "fanout_10k|fanout --connections 10000 --rate 0 --duration $DURATION"
  "fanout_slow|fanout --connections 1000 --slow 10 --payload-bytes 1000 --rate 0 --duration $DURATION"
  "channels_10k|channels --channels 10000 --rate 0 --duration $DURATION"
  "latency_10k|channels --channels 10000 --rate 1000 --duration $DURATION"
  "resume_1k|resume --connections 1000 --missed 100"
)

FAILED=0
for entry in "${SCENARIOS[@]}"; do
  name=${entry%%|*}
  args=${entry#*|}
  if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then continue; fi
  for target in $TARGETS; do
    out=$RESULTS_DIR/$name.$target
    if ! start_server "$target" "$out.server.log"; then
      FAILED=1
      continue
    fi
    log "== $name on $target: agentwire-bench $args"
    # shellcheck disable=SC2086
    if "${BENCH_CPU[@]}" "$BENCH" $args --url "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" --json \
        >"$out.json" 2>"$out.log"; then
      grep -E '^(connect|memory|publish|delivery|latency|resume|slow) ' "$out.log" | sed 's/^/   /' >&2 || true
    else
      FAILED=1
      log "   FAILED (exit $?): $(grep -E '^error' "$out.log" | head -n 3 | tr '\n' ' ')"
    fi
    stop_server
  done
done

# --- table ----------------------------------------------------------------------------------
node - "$RESULTS_DIR" "$TARGETS" <<'EOF_NODE'
const fs = require('fs');
const [dir, targets] = process.argv.slice(2);
const load = (name, t) => {
  try { return JSON.parse(fs.readFileSync(`${dir}/${name}.${t}.json`, 'utf8')); } catch { return null; }
};
const rows = [
  ['idle 10k: server memory per connection (B)', 'idle_10k', (j) => j.memory && j.memory.bytes_per_connection, 'lower'],
  ['idle 10k: time to connect all (s)', 'idle_10k', (j) => j.connect && j.connect.total_s, 'lower'],
  ['fan-out 1 x 1k subs: delivered msg/s', 'fanout_1k', (j) => j.delivery && j.delivery.per_s, 'higher'],
  ['fan-out 1 x 10k subs: delivered msg/s', 'fanout_10k', (j) => j.delivery && j.delivery.per_s, 'higher'],
  ['fan-out 1k + 10 that read nothing (1 KB events): delivered msg/s', 'fanout_slow', (j) => j.delivery && j.delivery.per_s, 'higher'],
  ['fan-out 1k + 10 that read nothing: p99 latency (ms)', 'fanout_slow', (j) => j.latency_ms && j.latency_ms.p99, 'lower'],
  ['fan-out 1k + 10 that read nothing: server RSS growth (kB)', 'fanout_slow', (j) => j.slow && j.slow.rss_after_kb - j.slow.rss_before_kb, 'lower'],
  ['10k channels x 1 sub: publishes/s (202)', 'channels_10k', (j) => j.publish && j.publish.per_s, 'higher'],
  ['10k channels x 1 sub: delivered msg/s', 'channels_10k', (j) => j.delivery && j.delivery.per_s, 'higher'],
  ['10k channels @1000/s: p50 latency (ms)', 'latency_10k', (j) => j.latency_ms && j.latency_ms.p50, 'lower'],
  ['10k channels @1000/s: p99 latency (ms)', 'latency_10k', (j) => j.latency_ms && j.latency_ms.p99, 'lower'],
  ['10k channels @1000/s: p99.9 latency (ms)', 'latency_10k', (j) => j.latency_ms && j.latency_ms.p999, 'lower'],
  ['resume 1k x 100 missed: all caught up (s)', 'resume_1k', (j) => j.resume && j.resume.all_complete_s, 'lower'],
];
const ts = targets.split(/\s+/).filter(Boolean);
const fmt = (v) => (v === undefined || v === null || Number.isNaN(v)) ? 'n/a'
  : Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : Number(v.toPrecision(3)).toString();
const header = ['scenario / metric', ...ts, ...(ts.length === 2 ? [`${ts[0]}/${ts[1]}`, 'better'] : [])];
const lines = [header];
for (const [label, name, get, better] of rows) {
  const vals = ts.map((t) => { const j = load(name, t); return j ? get(j) : undefined; });
  const cells = vals.map((v, i) => {
    const j = load(name, ts[i]);
    return fmt(v) + (j && j.ok === false ? ' (FAILED)' : '');
  });
  const row = [label, ...cells];
  if (ts.length === 2) {
    const [a, b] = vals;
    row.push(typeof a === 'number' && typeof b === 'number' && b !== 0 ? (a / b).toFixed(2) + 'x' : 'n/a');
    row.push(better);
  }
  lines.push(row);
}
const widths = header.map((_, i) => Math.max(...lines.map((r) => String(r[i]).length)));
const out = lines.map((r) => '| ' + r.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |');
out.splice(1, 0, '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
console.log(out.join('\n'));
const failed = [];
const only = (process.env.ONLY || '').split(/\s+/).filter(Boolean);
for (const [, name] of rows) {
  if (only.length && !only.includes(name)) continue;
  for (const t of ts) { const j = load(name, t); if (!j || j.ok === false) failed.push(`${name}.${t}`); }
}
if (failed.length) console.log(`\nfailed or missing runs: ${[...new Set(failed)].join(', ')}`);
EOF_NODE
log ""
log "results (JSON per run, bench and server logs): $RESULTS_DIR"
exit $FAILED
