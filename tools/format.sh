#!/usr/bin/env bash
# Format jobq's C code (src/*.c, src/*.h) with clang-format and .clang-format.
# Usage: bash tools/format.sh           reformat the files in place
#        bash tools/format.sh --check   change nothing; list the files that
#                                       differ from their formatted selves
#                                       and exit non-zero if there are any
# tools/lint.sh runs the check.
set -euo pipefail
cd "$(dirname "$0")/.."

CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
if ! command -v "$CLANG_FORMAT" >/dev/null; then
	for v in 14 15 16 17 18; do
		command -v "clang-format-$v" >/dev/null && { CLANG_FORMAT=clang-format-$v; break; }
	done
fi
command -v "$CLANG_FORMAT" >/dev/null || {
	echo "tools/format.sh: clang-format not found (Debian: apt-get install clang-format)" >&2
	exit 2
}

files=(src/*.c src/*.h)
case "${1:-}" in
--check)
	differ=()
	for f in "${files[@]}"; do
		"$CLANG_FORMAT" --style=file "$f" | cmp -s - "$f" || differ+=("$f")
	done
	if [ ${#differ[@]} -gt 0 ]; then
		echo "not formatted (run bash tools/format.sh):" >&2
		printf '  %s\n' "${differ[@]}" >&2
		exit 1
	fi
	;;
"")
	"$CLANG_FORMAT" --style=file -i "${files[@]}"
	;;
*)
	echo "usage: bash tools/format.sh [--check]" >&2
	exit 2
	;;
esac
