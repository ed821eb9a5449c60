#!/usr/bin/env bash
# clients/node/test.sh: the TypeScript client's tests against a real server.
# Run as root (tools/test.sh runs it after the TAP tests, holding the test
# lock, with jobq installed): installs the client's pinned dependencies
# from the npm registry (package-lock.json) into a scratch copy, builds it
# with tsc, starts a throwaway cluster as postgres with jobq preloaded, and
# runs the tests with Node's test runner (node --test).  JOBQ_PG as in
# tools/test.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# common.sh (build_node_client) first: bench/lib.sh sets PG_BIN for JOBQ_PG
. "$ROOT/tools/common.sh"
. "$ROOT/bench/lib.sh"

require_root "it starts a server as postgres"
require_jobq "$ROOT"
work=$(mktemp -d /tmp/jobq-node.XXXXXX)
chmod 755 "$work"
cleanup() {
	local rc=$?
	stop_cluster "$work/cluster"
	rm -rf "$work"
	return $rc
}
trap cleanup EXIT

echo "== the TypeScript client: npm ci, tsc"
build_node_client "$work/client"

mkdir -p "$work/cluster"
chown postgres: "$work/cluster"
port=$(free_port 5460 "$work/cluster")
as_pg "$PG_BIN/initdb" -D "$work/cluster/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
cat >>"$work/cluster/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$work/cluster'
shared_preload_libraries = 'jobq'
jobq.retry_base_delay = '100ms'
CONF
as_pg "$PG_BIN/pg_ctl" -D "$work/cluster/data" -l "$work/cluster/server.log" -w start >/dev/null
as_pg "$PG_BIN/psql" -qX -h "$work/cluster" -p "$port" -d postgres -c 'CREATE EXTENSION jobq' >/dev/null

echo "== node --test (server on port $port)"
status=0
(cd "$work/client" && PGHOST="$work/cluster" PGPORT=$port PGUSER=postgres PGDATABASE=postgres \
	timeout 900 node --test --test-concurrency=1 --test-timeout=180000 dist/test/client.test.js) || status=$?
if [ $status -ne 0 ]; then
	echo "== the server's log:"
	tail -n 50 "$work/cluster/server.log"
fi
exit $status
