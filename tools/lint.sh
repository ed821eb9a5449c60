#!/usr/bin/env bash
# Static analysis of jobq's C code, five passes, each must find nothing:
#  1. the build with -Wall -Wextra, warnings as errors (flags: Makefile);
#  2. no circle between the C files: the call graph between the objects
#     (each src/*.o's undefined symbols mapped to the src/*.o that defines
#     them, from nm), printed, must have no cycle;
#  3. the formatting: tools/format.sh --check (clang-format, .clang-format);
#  4. cppcheck, with the suppressions of tools/cppcheck-suppressions.txt;
#  5. clang-tidy, with the checks of .clang-tidy.
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

# The call graph between translation units: who calls (or reads a variable
# of) whom.  A file may call the files below it, never one that calls it
# back, directly or through others (src/README.md).
echo "== lint: call graph between src/*.o"
python3 - src/*.o <<'PY' || status=1
import subprocess, sys
objs = sys.argv[1:]
defined, undefined = {}, {}
for obj in objs:
    unit = obj[len("src/"):-len(".o")]
    undefined[unit] = set()
    out = subprocess.run(["nm", "-P", obj], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        if f[1] == "U":
            undefined[unit].add(f[0])
        elif f[1].isupper():
            defined[f[0]] = unit
graph = {u: {} for u in undefined}
for unit, syms in undefined.items():
    for sym in syms:
        to = defined.get(sym)
        if to is not None and to != unit:
            graph[unit].setdefault(to, []).append(sym)
for unit in sorted(graph):
    print("  %-10s -> %s" % (unit, " ".join(sorted(graph[unit])) or "-"))
# strongly connected components (Tarjan): any of more than one file is a circle
index, low, stack, on, circles = {}, {}, [], set(), []
def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in sorted(graph[v]):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            circles.append(sorted(comp))
for v in sorted(graph):
    if v not in index:
        visit(v)
for comp in circles:
    print("circle between %s:" % ", ".join(comp))
    for a in comp:
        for b in comp:
            if b in graph[a]:
                print("  %s -> %s: %s" % (a, b, " ".join(sorted(graph[a][b]))))
sys.exit(1 if circles else 0)
PY

echo "== lint: formatting"
bash tools/format.sh --check || status=1

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
