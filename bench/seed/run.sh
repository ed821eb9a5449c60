#!/bin/bash
# bench/seed/run.sh: jobq's job-pack kinds against the seeds' row-by-row loops.
#
# Run as root from anywhere: bash bench/seed/run.sh
# Needs jobq and its job pack installed (make install; make -C pack
# install): the kinds slots.generate, reservations.release,
# attendance.aggregate and attendance.thresholds of jobq_pack.
# Starts a throwaway cluster as postgres in /tmp/jobq-bench-seed on a free
# port (from 5498 up), loads examples/seed_schema.sql and gen.sql, runs
# bench.py (which times both sides and writes results.md next to this file),
# then stops the cluster and deletes it, also on error or Ctrl-C.
#
# Environment: REPS (default 3) repetitions per kind and side;
# ONLY='slots.generate,attendance.aggregate' runs only those rows (and does
# not write results.md); KEEP=1 keeps the cluster running afterwards (for
# looking around; stop it with
# runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/jobq-bench-seed/data stop).

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/bench/lib.sh"
DIR=/tmp/jobq-bench-seed
PY=/usr/bin/python3
REPS=${REPS:-3}

require_root "it installs packages and starts a server as postgres"

if ! "$PY" -c 'import psycopg2' 2>/dev/null; then
	echo "== installing python3-psycopg2"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-psycopg2 >/dev/null
fi

require_jobq "$ROOT"

# A stale cluster of an earlier run that was killed hard: stop and remove it.
remove_stale_cluster "$DIR"
PORT=$(free_port 5498)

cleanup() {
	local rc=$?
	if [ "${KEEP:-0}" = 1 ] && [ $rc -eq 0 ]; then
		echo "== cluster kept: psql -h $DIR -p $PORT -U postgres bench"
		return
	fi
	stop_cluster "$DIR"
	if [ $rc -ne 0 ] && [ -f "$DIR/server.log" ]; then
		echo "== last lines of the server log" >&2
		tail -n 30 "$DIR/server.log" >&2 || true
	fi
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$DIR"
chown postgres: "$DIR"
echo "== initdb in $DIR/data, port $PORT"
as_pg "$PG_BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 \
	--no-sync >/dev/null
# synchronous_commit and fsync are on (the defaults), stated so that the
# results say what every commit of the loops costs.  Autovacuum stays on:
# jobq's queue table relies on it.  Checkpoints are spaced out so that the
# CHECKPOINT before each timed run is the only one.
cat >>"$DIR/data/postgresql.conf" <<EOF

# bench/seed/run.sh
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_preload_libraries = 'jobq'
jobq.workers = 2
shared_buffers = '1GB'
synchronous_commit = on
fsync = on
max_wal_size = '8GB'
checkpoint_timeout = '30min'
EOF
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null

PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres)
"${PSQL[@]}" -d postgres -c 'CREATE DATABASE bench'

echo "== loading schema and data"
t0=$(date +%s.%N)
"${PSQL[@]}" -d bench <<EOF
CREATE EXTENSION jobq_pack CASCADE;
\i $ROOT/examples/seed_schema.sql
\i $HERE/gen.sql
CREATE FUNCTION public.notify_noop(p jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT jobq.register_kind('notify.noop', 'public.notify_noop(jsonb)');
VACUUM ANALYZE;
CHECKPOINT;
EOF
t1=$(date +%s.%N)
LOAD_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
echo "== loaded in ${LOAD_S} s"

missing=$("${PSQL[@]}" -d bench -At -c "
	SELECT string_agg(k, ', ') FROM unnest(ARRAY['slots.generate', 'reservations.release',
		'attendance.aggregate', 'attendance.thresholds']) AS k
	 WHERE k NOT IN (SELECT kind FROM jobq.kinds)")
if [ -n "$missing" ]; then
	echo "run.sh: the installed jobq_pack lacks the kinds: $missing" >&2
	exit 1
fi

ARGS=(--host "$DIR" --port "$PORT" --dbname bench --reps "$REPS" --load-seconds "$LOAD_S")
if [ -n "${ONLY:-}" ]; then
	ARGS+=(--only "$ONLY")		# a partial run leaves results.md alone
else
	ARGS+=(--out "$HERE/results.md")
fi
"$PY" "$HERE/bench.py" "${ARGS[@]}"
