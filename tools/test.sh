#!/usr/bin/env bash
# Install what is missing, run the static analysis (tools/lint.sh), build,
# install, and run every test of jobq and of its job pack:
# pg_regress (sql/, pack/sql/), isolation (test/specs/) and TAP (test/t/),
# the servers and tests running as the postgres user in a scratch copy of
# the tree.
# Usage: bash tools/test.sh [test/t/00N_name.pl ...]   (as root)
# JOBQ_LINT=0 skips tools/lint.sh (for a quick rerun; CI always lints).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/common.sh

take_test_lock
install_packages
[ "${JOBQ_LINT:-1}" = 0 ] || bash tools/lint.sh
build_and_install

work=$(scratch_copy)
trap 'rm -rf "$work"' EXIT
echo "== running the tests in $work"
prove_tests=()
[ $# -gt 0 ] && prove_tests=("PROVE_TESTS=$*")
status=0
(cd "$work/pack" && as_postgres make -s PG_CONFIG="$PG_CONFIG" installcheck) || status=$?
(cd "$work" && as_postgres make -s PG_CONFIG="$PG_CONFIG" installcheck "${prove_tests[@]}") ||
	status=$?
if [ $status -ne 0 ]; then
	for f in "$work"/pack/regression.diffs "$work"/pack/output_iso/regression.diffs \
		"$work"/regression.diffs "$work"/output_iso/regression.diffs; do
		[ -f "$f" ] && { echo "== $f"; cat "$f"; }
	done
	for f in "$work"/pack/tmp_check/log/*.log "$work"/tmp_check/log/*.log; do
		[ -f "$f" ] && { echo "== $f (last 80 lines)"; tail -n 80 "$f"; }
	done
	echo "== tests failed" >&2
fi
exit $status
