#!/usr/bin/env bash
# Installs the Debian packages agentwire needs to build and test, skipping those already present.
# Usage: scripts/deps.sh [build|web|test]   (web: also checks Node.js; test: everything the suites need)
set -euo pipefail

want=(g++ cmake ninja-build pkg-config libboost1.81-dev libboost-json1.81-dev libsqlite3-dev zlib1g-dev libjemalloc-dev libssl-dev libjwt-dev libhiredis-dev)
if [ "${1:-build}" = "test" ]; then
  want+=(libgtest-dev python3-websockets python3-pytest python3-pytest-timeout python3-jsonschema chromium openssl)
  # The multi-node tests start their own redis-server processes (never the system service).
  want+=(redis-server)
  # The fuzz targets and the ThreadSanitizer build use clang 14 and its sanitizer runtimes (libFuzzer
  # among them); stress-ng is the CPU hog the black-box suite runs beside once.
  want+=(clang-14 libclang-rt-14-dev stress-ng)
  # clang-format-14 checks the tree's formatting against .clang-format.
  want+=(clang-format-14)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The TypeScript client, the dashboard and the browser tests need Node.js 20 or later with npm (Debian 12's
# own nodejs is 18): say so plainly rather than fail later.
if [ "${1:-build}" = "test" ] || [ "${1:-build}" = "web" ]; then
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$major" -lt 20 ] || ! command -v npm >/dev/null; then
    echo "Node.js 20+ with npm is needed for the TypeScript client, dashboard and browser tests (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
  fi
fi
