#!/usr/bin/env bash
# Static analysis of jobq's C code, three passes, each must find nothing:
#  1. the build with -Wall -Wextra, warnings as errors (flags: Makefile);
#  2. cppcheck, with the suppressions of tools/cppcheck-suppressions.txt;
#  3. clang-tidy, with the checks of .clang-tidy.
# cppcheck and clang-tidy read compile_commands.json, written here from the
# compiler commands make runs (editors can use it too).  Exits non-zero on
# any finding.  tools/test.sh runs it before the tests; it installs nothing
# system-wide and starts no server, so it needs no test lock.
# Usage: bash tools/lint.sh   (as root if cppcheck or clang-tidy is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/common.sh

install_packages
jobs=$(nproc)
status=0
out=$(mktemp -d /tmp/jobq-lint-XXXXXX)
trap 'rm -rf "$out"' EXIT

echo "== lint: build with -Wextra"
make -s -B PG_CONFIG="$PG_CONFIG" >"$out/build" 2>&1 || { cat "$out/build"; status=1; }

# compile_commands.json: each src/*.c with the command make compiles its .o
# with (not the clang command that makes its LLVM bitcode)
make -s -n -B PG_CONFIG="$PG_CONFIG" | python3 -c '
import json, os, re, sys
db = []
for line in sys.stdin:
    line = line.strip()
    m = re.search(r" -c -o src/\w+\.o (src/\w+\.c)$", line)
    if m:
        db.append({"directory": os.getcwd(), "file": m.group(1), "command": line})
if not db:
    sys.exit("tools/lint.sh: make printed no compiler command for src/*.c")
with open("compile_commands.json", "w") as f:
    json.dump(db, f, indent=1)
    f.write("\n")
'

# cppcheck does not know the compiler's predefined macros: PostgreSQL's
# headers need __GNUC__ (c.h's attributes, pg_unreachable) and the
# architecture (s_lock.h's spinlocks).  Information messages (includes it
# did not look for, as <stdio.h>) are left out.
echo "== lint: cppcheck"
cppcheck --project=compile_commands.json -D__GNUC__=12 -D__x86_64__ \
	--std=c11 --platform=unix64 --library=posix \
	--enable=warning,style,performance,portability --inconclusive \
	--suppressions-list=tools/cppcheck-suppressions.txt \
	-j "$jobs" -q --error-exitcode=1 \
	--template='{file}:{line}:{column}: {severity}: {message} [{id}]' ||
	status=1

# clang-tidy compiles with gcc's command line: flags clang does not know
# (-Wno-clobbered, -fexcess-precision=standard, ...) are no finding.
echo "== lint: clang-tidy"
if ! ls src/*.c | xargs -P "$jobs" -n 1 clang-tidy -p . --quiet \
	--extra-arg=-Wno-unknown-warning-option \
	--extra-arg=-Wno-ignored-optimization-argument \
	>"$out/tidy" 2>"$out/tidy.err"; then
	cat "$out/tidy"
	grep -v -E '^[0-9]+ warnings? generated\.$' "$out/tidy.err" || true
	status=1
elif [ -s "$out/tidy" ]; then
	cat "$out/tidy"
	status=1
fi

if [ $status -ne 0 ]; then
	echo "== lint: findings above" >&2
else
	echo "== lint: no findings"
fi
exit $status
