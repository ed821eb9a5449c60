#!/usr/bin/env bash
# The tests of tools/test.sh (pg_regress, isolation, and the TAP files named,
# all of test/t/ if none) once under AddressSanitizer: jobq.so is built with
# -fsanitize=address and installed, and every program of the run, the
# servers included, starts with the ASan runtime preloaded (LD_PRELOAD), as
# PostgreSQL itself is not built with it.  Leak detection is off: the
# postmaster and its children exit without freeing what they keep for their
# lifetime.  Each report is a file asan.<pid> under a directory the script
# names; any report fails the run.  At the end, the normal build is
# installed again.  Not part of .ci/run: a little slower than the normal
# run (about four minutes for everything here).  Limits: ASan sees the
# stack and global variables of jobq's code and what malloc gives
# (libcurl's buffers, say), not overruns inside a palloc'd chunk
# (PostgreSQL's allocator hands out its own blocks).
# Usage: bash tools/asan.sh [test/t/0NN_name.pl ...]   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/common.sh

# no other run may see the ASan build of jobq.so
take_test_lock
install_packages
libasan=$(realpath "$(gcc -print-file-name=libasan.so)")
[ -f "$libasan" ] || { echo "no libasan.so next to gcc" >&2; exit 1; }
# Preloaded first, libasan initialises last of all the libraries, and its
# first malloc comes inside another library's constructor, under a libc
# lock (p11-kit's newlocale, via libldap and gnutls): that lock is left
# broken and the program hangs at its own setlocale.  So the libraries of
# postgres and psql (not libc and libm, whose functions ASan replaces) are
# preloaded ahead of libasan, which is then initialised before them; ASan
# is told that not being first is intended.
preload=$(for b in postgres psql; do ldd "$PG_BIN/$b"; done |
	awk '$3 ~ /^\// { print $3 }' |
	grep -vE '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64)\.so' | sort -u)
preload="$(echo $preload) $libasan"

reports=$(mktemp -d /tmp/jobq-asan-XXXXXX)
chown postgres: "$reports"
work=
restore() {
	echo "== installing the normal build again"
	make -s -B PG_CONFIG="$PG_CONFIG"
	make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
	[ -z "$work" ] || rm -rf "$work"
}
trap restore EXIT

echo "== building jobq with AddressSanitizer"
make -s -B PG_CONFIG="$PG_CONFIG" COPT='-fsanitize=address -fno-omit-frame-pointer'
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null

work=$(scratch_copy)
echo "== running the tests in $work, ASan reports in $reports"
prove_tests=()
[ $# -gt 0 ] && prove_tests=("PROVE_TESTS=$*")
status=0
(cd "$work" && as_postgres env LD_PRELOAD="$preload" \
	ASAN_OPTIONS="verify_asan_link_order=0:detect_leaks=0:log_path=$reports/asan" \
	make -s PG_CONFIG="$PG_CONFIG" installcheck "${prove_tests[@]}") || status=$?
if [ $status -ne 0 ]; then
	for f in "$work"/regression.diffs "$work"/output_iso/regression.diffs; do
		[ -f "$f" ] && { echo "== $f"; cat "$f"; }
	done
	echo "== tests failed (logs: $work/tmp_check/log, kept)" >&2
	work=
fi

if compgen -G "$reports/asan.*" >/dev/null; then
	for f in "$reports"/asan.*; do
		echo "== $f"
		cat "$f"
	done
	echo "== AddressSanitizer reported errors" >&2
	status=1
else
	echo "== AddressSanitizer: no reports"
	rmdir "$reports"
fi
exit $status
