#!/usr/bin/env bash
# The README's first command.  Installs what is missing, builds, starts a
# throwaway cluster with jobq and pg_cron preloaded (in /tmp/jobq-demo, port
# 5499) and a local HTTP server standing in for the SMS and e-mail gateways,
# then shows jobq at work in a clinic and a school database side by side:
# the seeds' timetable installed as pg_cron jobs, the first runs of each
# job, notifications delivered, jobs of an external kind run by a
# TypeScript worker (clients/node, built with npm and tsc), queue
# statistics.  The cluster and the gateway are left running.
# Usage: bash tools/demo.sh   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/common.sh

DEMO=/tmp/jobq-demo
PORT=5499
START=$(date +%s)

install_packages
build_and_install

echo "== starting a throwaway cluster in $DEMO on port $PORT (jobq and pg_cron preloaded)"
if [ -f "$DEMO/gateway.pid" ]; then
	kill "$(cat "$DEMO/gateway.pid")" 2>/dev/null || true
fi
if [ -f "$DEMO/data/postmaster.pid" ]; then
	as_postgres "$PG_BIN/pg_ctl" -D "$DEMO/data" stop -m fast >/dev/null || true
fi
rm -rf "$DEMO"
mkdir -p "$DEMO"
chown postgres: "$DEMO"
as_postgres "$PG_BIN/initdb" -D "$DEMO/data" -U postgres -A trust >/dev/null
cat >>"$DEMO/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DEMO'
shared_preload_libraries = 'jobq,pg_cron'
max_worker_processes = 32
jobq.max_workers = 8
jobq.workers = 2
jobq.poll_interval = '10s'
jobq.retry_base_delay = '200ms'
jobq.http_allowed_hosts = '127.0.0.1'
cron.database_name = 'postgres'
cron.use_background_workers = on
cron.max_running_jobs = 8
CONF
as_postgres "$PG_BIN/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" start -w >/dev/null

echo "== starting the stand-in SMS and e-mail gateway on 127.0.0.1 (log: $DEMO/gateway.log)"
setsid /usr/bin/python3 test/net/http_server.py --port-file "$DEMO/gateway.port" \
	--log "$DEMO/gateway.log" >"$DEMO/gateway.out" 2>&1 < /dev/null &
echo $! >"$DEMO/gateway.pid"
for _ in $(seq 50); do [ -s "$DEMO/gateway.port" ] && break; sleep 0.1; done
GATEWAY="http://127.0.0.1:$(cat "$DEMO/gateway.port")"

psql_demo() { as_postgres "$PG_BIN/psql" -h "$DEMO" -p "$PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_demo -d postgres -c "CREATE EXTENSION pg_cron" \
	-c "CREATE DATABASE clinic" -c "CREATE DATABASE school"
psql_demo -d clinic -v gateway="$GATEWAY" -f tools/demo_clinic.sql
psql_demo -d school -v gateway="$GATEWAY" -f tools/demo_school.sql

echo
echo "== clinic: appointment cards rendered by the application's own TypeScript worker, beside the SQL jobs"
psql_demo -d clinic -c "DO \$\$BEGIN PERFORM jobq.register_external_kind('card.render', 'documents'); END\$\$" \
	-c "CREATE TABLE appointment_cards (slot_id bigint PRIMARY KEY, card text, job bigint)" \
	-c "SELECT count(*) AS cards_enqueued FROM jobq.enqueue_many('card.render',
	      (SELECT array_agg(jsonb_build_object('slot_id', slot_id) ORDER BY slot_id)
	         FROM (SELECT slot_id FROM appointments ORDER BY slot_id LIMIT 200) a))"
build_node_client "$DEMO/client" >/dev/null
cp tools/demo_worker.mjs "$DEMO/client/"
(cd "$DEMO/client" && PGHOST="$DEMO" PGPORT="$PORT" PGUSER=postgres PGDATABASE=clinic node demo_worker.mjs)
psql_demo -d clinic -c "SELECT c.card, j.status, j.attempts FROM appointment_cards c JOIN jobq.jobs j ON j.id = c.job ORDER BY c.slot_id LIMIT 3"

echo
echo "== what the gateway received"
/usr/bin/python3 - "$DEMO/gateway.log" <<'PY'
import collections, json, sys
seen = collections.Counter()
keys = set()
for line in open(sys.argv[1]):
    r = json.loads(line)
    seen[r['path']] += 1
    keys.add(r['headers'].get('Idempotency-Key'))
for path, n in sorted(seen.items()):
    print(f"   {path:12} {n:5} requests")
print(f"   {len(keys)} distinct Idempotency-Keys: no message sent twice")
PY

echo
echo "== pg_cron's jobs (in database postgres), running jobq.run_schedule in each database"
psql_demo -d postgres -c "SELECT jobname, schedule, database, command FROM cron.job ORDER BY database, jobname"
echo "== the queues"
for db in clinic school; do
	psql_demo -d "$db" -c "SELECT current_database() AS db, queue, status, jobs FROM jobq.queue_stats ORDER BY queue, status"
done
echo "== the pool: the workers the databases hold now (they leave when idle), and each database's share"
psql_demo -d clinic -c "SELECT datname, worker, lane, state, jobs_succeeded, jobs_failed FROM jobq.workers ORDER BY datname, lane DESC, worker"
psql_demo -d clinic -c "SELECT datname, state, sql_workers, net_workers, sql_due, net_due, workers_started FROM jobq.databases ORDER BY datname"

echo "== in short"
clinic=$(psql_demo -d clinic -At -F ' ' -c "
	SELECT (SELECT result->>'created' FROM jobq.jobs WHERE kind = 'slots.generate' ORDER BY id LIMIT 1),
		   (SELECT result->>'released' FROM jobq.jobs WHERE kind = 'reservations.release' ORDER BY id LIMIT 1),
		   (SELECT count(*) FROM jobq.deliveries WHERE outcome = 'delivered'),
		   (SELECT count(*) FROM jobq.jobs WHERE kind = 'card.render' AND status = 'succeeded')")
school=$(psql_demo -d school -At -F ' ' -c "
	SELECT (SELECT (result->>'warning')::int + (result->>'mahroom')::int + (result->>'tasdiq')::int
			  FROM jobq.jobs WHERE kind = 'attendance.thresholds' ORDER BY id LIMIT 1),
		   (SELECT count(*) FROM jobq.deliveries WHERE outcome = 'delivered')")
read -r slots released reminders cards <<<"$clinic"
read -r flagged notices <<<"$school"
cat <<SUMMARY
   clinic: $slots appointment slots created for the next 30 days, $released expired reservations
           released, $reminders reminder SMS delivered through the gateway, $cards appointment
           cards rendered by a TypeScript worker from the same queue
   school: $flagged attendance flags (warning, mahroom, tasdiq) raised, $notices SMS and e-mails
           delivered through the gateways, each student notified once per month and threshold
SUMMARY

cat <<MSG

The demo took $(($(date +%s) - START)) s.  The cluster and the gateway are still running; pg_cron
runs the timetable from now on (reservations every 5 minutes, thresholds hourly, ...).
  connect:  runuser -u postgres -- psql -h $DEMO -p $PORT clinic     (or school)
  look:     SELECT * FROM jobq.schedules;  SELECT * FROM jobq.jobs ORDER BY id DESC LIMIT 10;
            SELECT * FROM jobq.deliveries ORDER BY id DESC LIMIT 10;  SELECT * FROM jobq.workers;
  pg_cron:  runuser -u postgres -- psql -h $DEMO -p $PORT postgres -c 'SELECT * FROM cron.job_run_details ORDER BY runid DESC LIMIT 10'
  stop:     kill \$(cat $DEMO/gateway.pid); runuser -u postgres -- $PG_BIN/pg_ctl -D $DEMO/data stop
  logs:     $DEMO/server.log, $DEMO/gateway.log
MSG
