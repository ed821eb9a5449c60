#!/usr/bin/env bash
# Install what is missing, build, start a throwaway cluster with jobq
# preloaded (in /tmp/jobq-demo, port 5499), and show jobq at work in a
# clinic and a school database side by side.  The cluster is left running.
# Usage: bash tools/demo.sh   (as root)
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/common.sh

DEMO=/tmp/jobq-demo
PORT=5499

install_packages
build_and_install

echo "== starting a throwaway cluster in $DEMO on port $PORT"
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
shared_preload_libraries = 'jobq'
max_worker_processes = 16
jobq.max_workers = 6
jobq.workers = 3
jobq.poll_interval = '60s'
jobq.retry_base_delay = '200ms'
CONF
as_postgres "$PG_BIN/pg_ctl" -D "$DEMO/data" -l "$DEMO/server.log" start -w >/dev/null

psql_demo() { as_postgres "$PG_BIN/psql" -h "$DEMO" -p "$PORT" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_demo -d postgres -c "CREATE DATABASE clinic" -c "CREATE DATABASE school"
psql_demo -d clinic -f tools/demo_clinic.sql
psql_demo -d school -f tools/demo_school.sql

cat <<MSG

The cluster is still running, with jobq workers in both databases.
  connect:  runuser -u postgres -- psql -h $DEMO -p $PORT clinic
  look:     SELECT * FROM jobq.jobs ORDER BY id DESC LIMIT 10;  SELECT * FROM jobq.workers;
  stop:     runuser -u postgres -- $PG_BIN/pg_ctl -D $DEMO/data stop
  log:      $DEMO/server.log
MSG
