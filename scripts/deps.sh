#!/usr/bin/env bash
# Installs the Debian packages agentwire needs to build and test, skipping those already present.
# Usage: scripts/deps.sh [build|test]   (test = build + what the test suites need)
set -euo pipefail

want=(g++ cmake ninja-build pkg-config libboost1.81-dev libboost-json1.81-dev libsqlite3-dev zlib1g-dev)
if [ "${1:-build}" = "test" ]; then
  want+=(libgtest-dev python3-websockets python3-pytest)
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
