#!/usr/bin/env bash
# Fails when a C++ file under src, tests, bench or fuzz differs from what clang-format-14 makes of it with
# the committed .clang-format. Prints each difference. Fix with: scripts/check-format.sh --fix
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=${CLANG_FORMAT:-clang-format-14}
command -v "$fmt" >/dev/null || { echo "check-format: $fmt not found (Debian: clang-format-14)" >&2; exit 2; }

dirs=()
for d in src tests bench fuzz; do [ -d "$d" ] && dirs+=("$d"); done
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # The project's own files (tracked, or new and not ignored): not what a build directory generated.
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "${dirs[@]}" |
    grep -E '\.(cpp|hpp|h|cc)$' | while read -r f; do [ -f "$f" ] && echo "$f"; done | sort -u)
else
  mapfile -t files < <(find "${dirs[@]}" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' \) \
    -not -path '*/node_modules/*' -not -path '*/build/*' | sort)
fi

if [ "${1:-}" = "--fix" ]; then
  "$fmt" -i --style=file "${files[@]}"
  echo "format: rewrote ${#files[@]} files in place"
  exit 0
fi
"$fmt" --dry-run --Werror --style=file "${files[@]}"
echo "format: ${#files[@]} files match .clang-format"
