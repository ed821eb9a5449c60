#!/bin/bash
# bench/external/run.sh: jobq's TypeScript worker (clients/node, running jobs
# of external kinds) against graphile-worker, side by side on one throwaway
# cluster: no-op drains and pickup latency (bench/external/bench.mjs).
#
# Run as root, with jobq installed (make install, or bash bench/run.sh
# once): bash bench/external/run.sh
# Installs the peers as bench/run.sh does (into /tmp/jobq-bench/peers),
# builds the client into /tmp/jobq-bench/client (npm ci, tsc), starts a
# cluster in /tmp/jobq-bench/external on a free port from 5480, and writes
# the table to bench/external/results.md (OUT overrides).  Sizes: JOBS,
# WORKERS, PICKUP, RATE, PICKUP_WORKERS (see bench.mjs).  Never run by the
# tests.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# common.sh (build_node_client) first: bench/lib.sh sets PG_BIN for JOBQ_PG
. "$ROOT/tools/common.sh"
. "$ROOT/bench/lib.sh"
SCRATCH=/tmp/jobq-bench
PEERS=$SCRATCH/peers
CLIENT=$SCRATCH/client
DIR=$SCRATCH/external
OUT=${OUT:-$HERE/results.md}

require_root "it starts a server as postgres"
require_jobq "$ROOT"
install_peers "$ROOT/bench/peers" "$PEERS"

echo "== the client: npm ci and tsc in $CLIENT"
build_node_client "$CLIENT"

remove_stale_cluster "$DIR"
PORT=$(free_port 5480 "$DIR")
trap 'stop_cluster "$DIR"; rm -rf "$DIR"' EXIT
mkdir -p "$DIR"
chown postgres: "$DIR"
as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
cat >>"$DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
max_connections = 100
shared_buffers = 1GB
max_wal_size = 8GB
jit = off
synchronous_commit = on
shared_preload_libraries = 'jobq'
# external jobs only: jobq's own workers would have nothing to do
jobq.workers = 0
log_min_messages = warning
CONF
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null

cp "$HERE/bench.mjs" "$ROOT/bench/peers/peer-worker.mjs" "$ROOT/bench/peers/clock.mjs" "$PEERS/"
echo "== running (server log: $DIR/server.log)"
(cd "$PEERS" && PGHOST="$DIR" PGPORT="$PORT" PEERS="$PEERS" RESULTS="$PEERS/external-results.md" \
	JOBQ_CLIENT="$CLIENT/dist/src/index.js" "$NODE" bench.mjs)
cp "$PEERS/external-results.md" "$OUT"
echo "== table written to $OUT"
