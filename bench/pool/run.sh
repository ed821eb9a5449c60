#!/bin/bash
# bench/pool/run.sh: one worker pool for many databases.
#
# Run as root from anywhere: bash bench/pool/run.sh
# Needs jobq installed (make install).  Starts a throwaway cluster as
# postgres in /tmp/jobq-bench-pool on a free port (from 5520 up) with
# jobq.max_workers = 8, then measures, in one run:
#   - pickup: from the commit of an enqueue to the start of the job's
#     handler (its clock_timestamp()), COLD (a database with no worker: the
#     launcher starts one) and WARM (the database's worker sleeps on its
#     latch); SAMPLES of each, p50 / p99 / max;
#   - DBS databases (default 300) with one job each, enqueued one database
#     after the other by one client: the time from the first commit to the
#     last job's start and end, and the most jobq workers seen at once;
#   - the processes jobq runs once they are idle, and after a restart once
#     the launcher has probed every database.
# Writes results.md next to this file, then stops and deletes the cluster.

set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/bench/lib.sh"
DIR=/tmp/jobq-bench-pool
DBS=${DBS:-300}
SAMPLES=${SAMPLES:-100}

require_root "it starts a server as postgres"
require_jobq "$ROOT"

remove_stale_cluster "$DIR"
PORT=$(free_port 5520)

cleanup() {
	stop_cluster "$DIR"
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

mkdir -p "$DIR"
chown postgres: "$DIR"
as_pg "$PG_BIN/initdb" -D "$DIR/data" -A trust >/dev/null
cat >>"$DIR/data/postgresql.conf" <<EOF
port = $PORT
unix_socket_directories = '/tmp'
shared_preload_libraries = 'jobq'
max_worker_processes = 16
max_connections = 100
jobq.max_workers = 8
jobq.workers = 2
jobq.poll_interval = '60s'
jobq.worker_idle_timeout = '10s'
autovacuum = off
EOF
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w start >/dev/null

psql_db() { as_pg psql -X -q -At -h /tmp -p "$PORT" -d "$1" -c "$2"; }
psql_q() { psql_db postgres "$1"; }
reload() {
	psql_q "ALTER SYSTEM SET $1" >/dev/null
	psql_q "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}
workers_sql="SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('jobq worker', 'jobq net worker')"

psql_q "CREATE EXTENSION jobq"
psql_q "CREATE DATABASE tmpl"
psql_db tmpl "CREATE EXTENSION jobq; CREATE TABLE public.hit (at timestamptz, committed timestamptz)"

# ---------------------------------------------------------------------
# pickup, cold and warm
# ---------------------------------------------------------------------

for i in 1 2 3 4; do psql_q "CREATE DATABASE p$i TEMPLATE tmpl STRATEGY FILE_COPY"; done

# The enqueue and the client's timestamp are one statement, so the commit
# comes after both: the pickup is the handler's start less the statement's
# clock_timestamp(), an upper bound by the commit's own time (tens of µs).
measure() {
	local kind=$1 i db
	for i in $(seq 1 4); do psql_db "p$i" "TRUNCATE public.hit; TRUNCATE jobq._done" >/dev/null; done
	for i in $(seq 1 "$SAMPLES"); do
		db=p$((i % 4 + 1))
		if [ "$kind" = cold ]; then
			while [ "$(psql_q "$workers_sql AND datname = '$db'")" != 0 ]; do sleep 0.05; done
		else
			while [ "$(psql_q "SELECT count(*) FROM jobq.workers WHERE datname = '$db' AND lane = 'sql' AND state = 'idle'")" = 0 ]; do sleep 0.05; done
		fi
		psql_db "$db" "INSERT INTO public.hit(committed) SELECT clock_timestamp() FROM jobq.enqueue('sql', '{\"sql\": \"INSERT INTO public.hit(at) VALUES (clock_timestamp())\"}')" >/dev/null
		while [ "$(psql_db "$db" "SELECT count(*) FROM jobq._queue")" != 0 ]; do sleep 0.01; done
		psql_db "$db" "UPDATE public.hit SET committed = (SELECT committed FROM public.hit WHERE at IS NULL) WHERE at IS NOT NULL AND committed IS NULL; DELETE FROM public.hit WHERE at IS NULL" >/dev/null
	done
	for i in $(seq 1 4); do
		psql_db "p$i" "SELECT extract(epoch FROM at - committed) * 1000 FROM public.hit"
	done | sort -n | awk '{ v[NR] = $1 } END {
		printf "%.1f %.1f %.1f\n", v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.999)], v[NR] }'
}

reload "jobq.worker_idle_timeout = 0"
read -r cold50 cold99 coldmax < <(measure cold)
reload "jobq.worker_idle_timeout = '10min'"
for i in 1 2 3 4; do psql_db "p$i" "SELECT jobq.enqueue('sql', '{\"sql\": \"SELECT 1\"}')" >/dev/null; done
read -r warm50 warm99 warmmax < <(measure warm)
reload "jobq.worker_idle_timeout = '10s'"

# ---------------------------------------------------------------------
# DBS databases, one job each
# ---------------------------------------------------------------------

for i in $(seq 1 "$DBS"); do echo "CREATE DATABASE t$i TEMPLATE tmpl STRATEGY FILE_COPY;"; done |
	as_pg psql -X -q -h /tmp -p "$PORT" -d postgres >/dev/null
# the launcher probes the new databases; wait until it is done
while [ "$(psql_q "SELECT count(*) FROM jobq.databases WHERE state = 'present' AND datname ~ '^t[0-9]+\$'")" != "$DBS" ] ||
	[ "$(psql_q "$workers_sql")" != 0 ]; do sleep 0.5; done

# the jobs write their start and end as their database's comment
job='DO $d$ BEGIN EXECUTE format($f$COMMENT ON DATABASE %I IS %L$f$, current_database(), clock_timestamp()::text); END $d$'
first=$(psql_q "SELECT extract(epoch FROM clock_timestamp())")
{
	for i in $(seq 1 "$DBS"); do
		echo "\\c t$i"
		echo "SELECT jobq.enqueue('sql', jsonb_build_object('sql', \$j\$$job\$j\$));"
	done
	echo "\\o $DIR/enqueued"
	echo "SELECT extract(epoch FROM clock_timestamp());"
} | as_pg psql -X -q -At -h /tmp -p "$PORT" -d postgres >/dev/null &
ENQ=$!
peak=0
while :; do
	n=$(psql_q "$workers_sql")
	[ "$n" -gt "$peak" ] && peak=$n
	done_n=$(psql_q "SELECT count(*) FROM pg_shdescription c JOIN pg_database d ON d.oid = c.objoid WHERE d.datname ~ '^t[0-9]+\$'")
	[ "$done_n" = "$DBS" ] && break
	sleep 0.05
done
wait $ENQ
last=$(psql_q "SELECT max(extract(epoch FROM c.description::timestamptz)) FROM pg_shdescription c JOIN pg_database d ON d.oid = c.objoid WHERE d.datname ~ '^t[0-9]+\$'")
all_secs=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.2f", b - a }')
enq_secs=$(awk -v a="$first" -v b="$(cat "$DIR/enqueued")" 'BEGIN { printf "%.2f", b - a }')
after_secs=$(awk -v a="$(cat "$DIR/enqueued")" -v b="$last" 'BEGIN { printf "%.2f", b - a }')

# idle: once the idle timeout has passed
while [ "$(psql_q "$workers_sql")" != 0 ]; do sleep 0.5; done
idle_procs=$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'jobq%'")

# after a restart: the launcher probes every database within the pool
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w restart >/dev/null
start=$(date +%s.%N)
probe_peak=0
while :; do
	n=$(psql_q "$workers_sql")
	[ "$n" -gt "$probe_peak" ] && probe_peak=$n
	[ "$(psql_q "SELECT count(*) FROM jobq.databases WHERE state = 'present'")" -ge "$DBS" ] && break
	sleep 0.1
done
probe_secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
while [ "$(psql_q "$workers_sql")" != 0 ]; do sleep 0.5; done
after_restart=$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'jobq%'")

{
	echo "# bench/pool results"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL $(psql_q 'SHOW server_version'),"
	echo "jobq $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'); jobq.max_workers = 8, jobq.workers = 2."
	echo
	echo "| measure | figure |"
	echo "|---|---|"
	echo "| pickup, cold (no worker in the database: the launcher starts one), p50 / p99 / max of $SAMPLES | $cold50 / $cold99 / $coldmax ms |"
	echo "| pickup, warm (the database's worker sleeps), p50 / p99 / max of $SAMPLES | $warm50 / $warm99 / $warmmax ms |"
	echo "| $DBS databases, one job each, enqueued one after the other by one psql session connecting to each: first commit to last job | $all_secs s |"
	echo "| of which the client's enqueues took; the last job ran after the last enqueue | $enq_secs s; $after_secs s |"
	echo "| most jobq workers at once meanwhile | $peak |"
	echo "| jobq processes once idle ($DBS databases with jobq) | $idle_procs (the launcher) |"
	echo "| after a restart: time until the launcher has probed the $DBS databases | $probe_secs s |"
	echo "| most workers at once while probing; processes once done | $probe_peak; $after_restart |"
} | tee "$HERE/results.md"
