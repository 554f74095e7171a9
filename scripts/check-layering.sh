#!/usr/bin/env bash
# Fails when a file under src/ includes a header from a folder its layer may not use, or when Boost.Beast
# is included outside the two folders that speak HTTP. The layers point one way:
#   core <- protocol, store, config, auth <- broker <- hub <- workflow, metrics <- api <- transport <- app
# (check is a standalone client on core). A folder may include the folders it depends on directly and,
# since CMake's links are transitive, whatever those depend on. A new dependency is a design decision:
# add it to DEPS below, the README's dependency table and the CMake target together.
# Usage: scripts/check-layering.sh [SRC_DIR]   (default: src)
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-src}

# Direct dependencies of each folder (the real graph; see README, "Architecture").
declare -A DEPS=(
  [core]=""
  [protocol]="core"
  [store]="core"
  [config]="core"
  [auth]="core"
  [broker]="core protocol store"
  [hub]="core protocol store broker"
  [workflow]="core hub"
  [metrics]="core hub protocol"
  [api]="core protocol hub workflow metrics config auth"
  [transport]="core protocol hub metrics config api auth"
  [check]="core"
  [app]="core protocol store broker config hub workflow metrics api transport check auth"
)
# Folders whose code may include Boost.Beast: the server's transport and the `agentwire check` client.
BEAST_OK="transport check"

# The folders a folder may include: itself, its dependencies and theirs.
allowed() {
  local todo=("$1") seen=" " f d
  while [ ${#todo[@]} -gt 0 ]; do
    f=${todo[0]}
    todo=("${todo[@]:1}")
    case "$seen" in *" $f "*) continue ;; esac
    seen+="$f "
    for d in ${DEPS[$f]}; do todo+=("$d"); done
  done
  echo "$seen"
}

status=0
for dir in "$src"/*/; do
  folder=$(basename "$dir")
  if [ -z "${DEPS[$folder]+set}" ]; then
    echo "check-layering: $dir is not in the layer graph: add it to DEPS in $0" >&2
    status=1
    continue
  fi
  ok=$(allowed "$folder")
  # file:line:#include "target/..."
  while IFS= read -r hit; do
    file=${hit%%:*}
    rest=${hit#*:}
    line=${rest%%:*}
    target=$(sed -E 's/^[^"]*"([^"]*)".*/\1/' <<<"${rest#*:}")
    if [[ "$target" == *..* ]]; then
      echo "$file:$line: relative include \"$target\": name the folder from src/" >&2
      status=1
      continue
    fi
    [[ "$target" == */* ]] || continue  # a header beside the file
    to=${target%%/*}
    case "$ok" in *" $to "*) ;; *)
      echo "$file:$line: $folder may not include \"$target\" ($folder may use:${ok% })" >&2
      status=1
      ;;
    esac
  done < <(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$dir" || true)
  case " $BEAST_OK " in *" $folder "*) ;; *)
    if grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<boost/beast' "$dir" >&2; then
      echo "check-layering: Boost.Beast is included in $dir (only in: $BEAST_OK)" >&2
      status=1
    fi
    ;;
  esac
done
[ "$status" -eq 0 ] && echo "layering: every include under $src/ points down the layers"
exit "$status"
