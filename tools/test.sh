#!/usr/bin/env bash
# Install what is missing, run the static analysis (tools/lint.sh), build,
# install, and run every test of jobq and of its job pack:
# pg_regress (sql/, pack/sql/), isolation (test/specs/) and TAP (test/t/),
# the servers and tests running as the postgres user in a scratch copy of
# the tree.
# Usage: bash tools/test.sh [test/t/00N_name.pl ...]   (as root)
# With no test named, the clients' tests run too (clients/node/test.sh;
# JOBQ_CLIENTS=1 runs them with named tests as well).
#        JOBQ_PG=18 bash tools/test.sh [test/t/00N_name.pl ...]
# JOBQ_PG is the PostgreSQL major version to test on: 15 by default
# (Debian 12's packages); 18 is built from Debian's source package by
# tools/pg-build.sh the first time (about 5 minutes, then cached under
# /opt/jobq-pg) and jobq and jobq_pack are installed into it.  Tests that
# need pg_cron skip themselves, saying why, where it is not installed (18).
# JOBQ_LINT=0 skips tools/lint.sh (for a quick rerun; CI always lints).
# Lint runs on 15 only: with JOBQ_PG=18 the build's own -Werror is the
# check (the same sources; compat.h holds what differs).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/common.sh

take_test_lock
install_packages
if [ "$JOBQ_PG" = 15 ] && [ "${JOBQ_LINT:-1}" != 0 ]; then
	bash tools/lint.sh
fi
use_pg_version
build_and_install

work=$(scratch_copy)
trap 'rm -rf "$work"' EXIT
echo "== running the tests in $work"
prove_tests=()
[ $# -gt 0 ] && prove_tests=("PROVE_TESTS=$*")
status=0
(cd "$work/pack" && as_postgres make -s PG_CONFIG="$PG_CONFIG" installcheck) || status=$?
# The TAP part's output is kept: PGXS prints "TAP tests not enabled" and
# succeeds on a PostgreSQL built without them, so a run whose prove ran no
# test file (no "Files=N" with N > 0) fails here.
(cd "$work" && as_postgres make -s PG_CONFIG="$PG_CONFIG" installcheck "${prove_tests[@]}") 2>&1 |
	tee "$work/installcheck.log" || status=$?
tap_files=$(sed -n 's/^Files=\([0-9]*\), Tests=.*/\1/p' "$work/installcheck.log" | tail -n 1)
if [ $status -eq 0 ] && [ "${tap_files:-0}" -eq 0 ]; then
	echo "== the TAP harness ran no test file on PostgreSQL $JOBQ_PG ($PG_CONFIG):" >&2
	grep -i 'TAP tests not enabled' "$work/installcheck.log" >&2 ||
		echo "no \"Files=\" line from prove" >&2
	echo "== a build without --enable-tap-tests cannot test jobq" >&2
	status=1
fi
# The clients, when the whole suite runs: the TypeScript client's tests
# against a server of their own.
client_status=0
if [ $# -eq 0 ] || [ -n "${JOBQ_CLIENTS:-}" ]; then
	bash clients/node/test.sh 2>&1 | tee "$work/clients.log" || client_status=$?
fi
if [ $status -ne 0 ] || [ $client_status -ne 0 ]; then
	for f in "$work"/pack/regression.diffs "$work"/pack/output_iso/regression.diffs \
		"$work"/regression.diffs "$work"/output_iso/regression.diffs; do
		[ -f "$f" ] && { echo "== $f"; cat "$f"; }
	done
	# The logs of the TAP files that failed (all of them when prove's
	# summary names none, say when prove itself did not finish).
	failed=$(sed -n 's|^\(test/\)\?t/\([0-9A-Za-z_]*\)\.pl *(Wstat.*|\2|p' "$work/installcheck.log" | sort -u)
	logs=()
	if [ -n "$failed" ]; then
		for t in $failed; do
			logs+=("$work/tmp_check/log/regress_log_$t" "$work/tmp_check/log/${t}"_*.log)
		done
	else
		logs=("$work"/pack/tmp_check/log/*.log "$work"/tmp_check/log/*)
	fi
	for f in "${logs[@]}"; do
		[ -f "$f" ] && { echo "== $f (last 150 lines)"; tail -n 150 "$f"; }
	done
	# Last, so that it is what a truncated CI log still shows: what failed.
	echo "== FAILED on PostgreSQL $JOBQ_PG:" >&2
	for f in "$work"/pack/regression.diffs "$work"/pack/output_iso/regression.diffs \
		"$work"/regression.diffs "$work"/output_iso/regression.diffs; do
		[ -f "$f" ] && echo "== FAILED: pg_regress, see $f above" >&2
	done
	grep -E '^(test/)?t/.*\(Wstat|^ *Failed tests?:|^# +Failed test|^# +at (test/)?t/|^Dubious|^Bailout|TAP harness ran no' \
		"$work/installcheck.log" | sed 's/^/== FAILED: /' >&2 || true
	[ $client_status -eq 0 ] || {
		echo "== FAILED: the TypeScript client's tests (clients/node/test.sh):" >&2
		grep -E '^not ok|^# (fail|cancelled) [1-9]' "$work/clients.log" | sed 's/^/== FAILED: /' >&2 || true
	}
	echo "== tests failed" >&2
	status=1
fi
exit $status
