# 009_pack.pl: the job pack run by real workers, as the role that owns the
# data: slots generated, reservations released, attendance aggregated and
# its thresholds notified through a registered kind whose jobs really run,
# a materialized view refreshed concurrently, and an archival backlog moved
# as a chain of jobs.  The pack is its own extension, jobq_pack: dropped
# while the workers run, its kinds go and a pending job of one dies with a
# clear error; created again, its kinds run.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'pack', q{
jobq.max_workers = 4
jobq.workers = 2
jobq.poll_interval = '60s'
timezone = 'UTC'
});

my $schema = slurp_file('examples/seed_schema.sql');
$node->safe_psql(
	'postgres', qq{
CREATE EXTENSION jobq_pack CASCADE;
CREATE ROLE clinic LOGIN;
GRANT CREATE ON SCHEMA public TO clinic;
SET ROLE clinic;
$schema
});

# Run a job as "clinic" and wait for it to finish; returns "status|result".
sub run_job
{
	my ($kind, $payload, $more) = @_;
	$more = $more ? ", $more" : '';
	my $id = $node->safe_psql('postgres',
		qq{SET ROLE clinic; SELECT jobq.enqueue('$kind', '$payload'$more)});
	$node->poll_query_until('postgres',
		qq{SELECT status IN ('succeeded', 'dead') FROM jobq.jobs WHERE id = $id})
	  or die "job $id of kind $kind did not finish";
	return $node->safe_psql('postgres',
		qq{SELECT status || '|' || coalesce(result::text, last_error) FROM jobq.jobs WHERE id = $id});
}

# slots.generate: 20 doctors, weekdays 08:00-12:00 in 30-minute slots
$node->safe_psql(
	'postgres', q{
SET ROLE clinic;
INSERT INTO availability_rules (facility_id, doctor_id, day_of_week, start_time, end_time,
								slot_minutes, valid_from)
SELECT d % 3, d, dow, '08:00', '12:00', 30, '2026-01-01'
  FROM generate_series(1, 20) d, generate_series(1, 5) dow;
});
is( run_job(
		'slots.generate',
		'{"start_date": "2026-11-02", "end_date": "2026-11-15", "timezone": "Asia/Kabul"}'),
	'succeeded|{"created": 1600, "skipped": 0}',
	'slots.generate creates 20 doctors x 10 weekdays x 8 slots');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), min((starts_at AT TIME ZONE 'Asia/Kabul')::time),
	   max((ends_at AT TIME ZONE 'Asia/Kabul')::time)
  FROM availability_slots}),
	'1600|08:00:00|12:00:00',
	'the slots are in the requested time zone');
is( run_job(
		'slots.generate',
		'{"start_date": "2026-11-02", "end_date": "2026-11-15", "timezone": "Asia/Kabul"}'),
	'succeeded|{"created": 0, "skipped": 1600}',
	'a rerun creates nothing');

# reservations.release
$node->safe_psql(
	'postgres', q{
UPDATE availability_slots SET status = 'reserved', reserved_until = now() - interval '1 s'
 WHERE doctor_id <= 5;
UPDATE availability_slots SET status = 'reserved', reserved_until = now() + interval '1 h'
 WHERE doctor_id = 6;
});
is(run_job('reservations.release', '{}'),
	'succeeded|{"released": 400}', 'expired reservations are released');
is( $node->safe_psql(
		'postgres',
		q{SELECT status, count(*) FROM availability_slots GROUP BY 1 ORDER BY 1}),
	"open|1520\nreserved|80",
	'reservations that have not expired stay');

# attendance: 100 students; every tenth at 70 % (mahroom); every other fifth at
# 80 % with 20 % sick hours (tasdiq only: 80 % is not under the warning line)
$node->safe_psql(
	'postgres', q{
SET ROLE clinic;
INSERT INTO attendance (student_id, campus_id, day, status)
SELECT s, 1, date '2026-10-01' + g,
	   CASE WHEN s % 10 = 0 AND g < 6 THEN 'absent'
			WHEN s % 5 = 0 AND g < 4 THEN 'sick'
			ELSE 'present' END
  FROM generate_series(1, 100) s, generate_series(0, 19) g;
CREATE TABLE outbox (student_id bigint, threshold text, sent_by text);
CREATE FUNCTION send_notice(p jsonb) RETURNS jsonb LANGUAGE sql AS $$
	INSERT INTO outbox VALUES ((p->>'student_id')::bigint, p->>'threshold', current_user)
	RETURNING jsonb_build_object('sent', true) $$;
RESET ROLE;
SELECT jobq.register_kind('notify.outbox', 'send_notice(jsonb)');
});
is( run_job(
		'attendance.thresholds',
		'{"month": "2026-10-01", "notify_kind": "notify.outbox"}'),
	'succeeded|{"month": "2026-10-01", "tasdiq": 10, "mahroom": 10, "warning": 0, "notified": 20, "no_contact": 0}',
	'attendance.thresholds aggregates and flags the students');
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) FROM outbox}, '20'),
	'the notification jobs run');
is( $node->safe_psql(
		'postgres',
		q{SELECT threshold, count(*), min(sent_by) FROM outbox GROUP BY 1 ORDER BY 1}),
	"mahroom|10|clinic\ntasdiq|10|clinic",
	'each flagged student is notified once, by jobs of the owner');
is( run_job(
		'attendance.thresholds',
		'{"month": "2026-10-01", "notify_kind": "notify.outbox"}'),
	'succeeded|{"month": "2026-10-01", "tasdiq": 10, "mahroom": 10, "warning": 0, "notified": 0, "no_contact": 0}',
	'the next run notifies nobody again');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM attendance_monthly}),
	'100', 'attendance_monthly has every student');

# matview.refresh, concurrently, inside a worker
$node->safe_psql(
	'postgres', q{
SET ROLE clinic;
CREATE MATERIALIZED VIEW open_slots AS
	SELECT doctor_id, count(*) AS n FROM availability_slots WHERE status = 'open' GROUP BY doctor_id;
CREATE UNIQUE INDEX ON open_slots (doctor_id);
UPDATE availability_slots SET status = 'booked' WHERE doctor_id = 7;
});
is( run_job('matview.refresh', '{"view": "open_slots"}'),
	'succeeded|{"view": "public.open_slots", "concurrently": true}',
	'the view is refreshed concurrently by a worker');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM open_slots WHERE doctor_id = 7}),
	'0', 'the refresh sees the bookings');

# table.archive: 2,500 old rows in batches of 1,000 become a chain of 3 jobs
$node->safe_psql(
	'postgres', q{
SET ROLE clinic;
CREATE TABLE audit_log (id int, at timestamptz, note text);
CREATE TABLE audit_archive (LIKE audit_log);
INSERT INTO audit_log SELECT g, now() - interval '100 days' + g * interval '1 s', 'x'
  FROM generate_series(1, 2500) g;
INSERT INTO audit_log SELECT g, now(), 'recent' FROM generate_series(2501, 2600) g;
});
like(
	run_job(
		'table.archive',
		'{"source": "audit_log", "target": "audit_archive", "timestamp_column": "at", "older_than": "90 days", "batch_size": 1000}',
		q{queue => 'archive', priority => 5, max_attempts => 2}),
	qr/^succeeded\|\{"moved": 1000, "next_job": \d+\}$/,
	'the first job moves one batch and continues');
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.jobs WHERE kind = 'table.archive' AND status = 'succeeded'},
		'3'),
	'the chain ends after three jobs');
is( $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM audit_log), (SELECT count(DISTINCT id) FROM audit_archive),
	   (SELECT max(result->>'moved') FROM jobq.jobs WHERE kind = 'table.archive'
		   AND result->>'next_job' IS NULL)}),
	'100|2500|500',
	'every old row moved once; the recent ones stayed');
is( $node->safe_psql(
		'postgres', q{
SELECT count(DISTINCT owner) || ':' || min(owner::text) FROM jobq.jobs WHERE kind = 'table.archive'}),
	'1:clinic',
	'the continuations run as the owner of the first job');
is( $node->safe_psql(
		'postgres', q{
SELECT DISTINCT queue || '|' || priority || '|' || max_attempts FROM jobq.jobs WHERE kind = 'table.archive'}),
	'archive|5|2',
	'and keep its queue, priority and attempts');

# jobq.current_job() tells a handler which job it runs
$node->safe_psql('postgres',
	q{CREATE TABLE whoami (job bigint); GRANT INSERT ON whoami TO clinic;});
my $me = $node->safe_psql('postgres',
	q{SET ROLE clinic; SELECT jobq.enqueue('sql', '{"sql": "INSERT INTO public.whoami SELECT jobq.current_job()"}')});
ok($node->poll_query_until('postgres', 'SELECT count(*) FROM whoami', '1'),
	'the job ran');
is($node->safe_psql('postgres', 'SELECT job FROM whoami'),
	$me, 'jobq.current_job() is the id of the running job');
is($node->safe_psql('postgres', 'SELECT jobq.current_job() IS NULL'),
	't', 'and NULL outside a job');

# A concurrent refresh leaves the worker with a temporary schema; nothing a
# job puts there may reach the next job.  One worker, so the jobs share it.
$node->append_conf('postgresql.conf', "jobq.workers = 1\njobq.worker_idle_timeout = '1h'");
$node->reload;
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) <= 1 FROM pg_stat_activity WHERE backend_type = 'jobq worker'}),
	'one worker at most');
is( run_job('matview.refresh', '{"view": "open_slots"}'),
	'succeeded|{"view": "public.open_slots", "concurrently": true}',
	'a concurrent refresh on the only worker');
$node->safe_psql('postgres',
	q{CREATE TABLE temp_seen (seen boolean); GRANT INSERT ON temp_seen TO clinic;});
# a type in pg_temp would be found before pg_catalog's: jobq empties the
# schema after each job.  Debian 12's PostgreSQL 15 also refuses the type
# in a restricted job ("cannot create a type in a temporary schema within
# security-restricted operation", a check upstream's 18.6 does not have):
# where it is made, only jobq's emptying keeps it from the next job.
like(
	run_job(
		'sql', '{"sql": "CREATE DOMAIN pg_temp.planted AS int"}',
		'max_attempts => 1'),
	qr/^(?:dead\|cannot create a type in a temporary schema|succeeded\|\{"rows": 0\}$)/,
	'a job\'s type in the temporary schema is refused by the server, or made');
is( run_job(
		'sql',
		q{{"sql": "INSERT INTO public.temp_seen SELECT to_regtype(''pg_temp.planted'') IS NOT NULL"}}),
	'succeeded|{"rows": 1}',
	'the next job runs');
is($node->safe_psql('postgres', 'SELECT seen FROM temp_seen'),
	'f', 'the next job does not see what the previous one left in pg_temp');


# ---------------------------------------------------------------------
# A search_path hijack: a role with CREATE on public plants functions and
# an operator that match the unqualified calls of the pack's code and of
# its statements (format with the argument types the pack passes,
# jsonb_build_object, unnest, integer * numeric).  Each one, when it runs
# as a superuser, makes mallory a superuser.  The superuser's pack jobs,
# and a direct call, must run none of them, and still succeed.
# ---------------------------------------------------------------------
$node->safe_psql(
	'postgres', q{
CREATE ROLE mallory;
GRANT CREATE ON SCHEMA public TO mallory;
CREATE TABLE hijacked (what text, who text);
GRANT INSERT ON hijacked TO PUBLIC;
SET ROLE mallory;
CREATE FUNCTION public.jobq_hijack(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.hijacked VALUES (what, current_user);
	IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
		ALTER ROLE mallory SUPERUSER;
	END IF;
END $$;
CREATE FUNCTION public.format(f text, a text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('format(text, text)'); RETURN pg_catalog.format(f, a); END $$;
CREATE FUNCTION public.format(f text, a text, b regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('format(text, text, regclass)'); RETURN pg_catalog.format(f, a, b); END $$;
CREATE FUNCTION public.format(f text, a regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('format(text, regclass)'); RETURN pg_catalog.format(f, a); END $$;
CREATE FUNCTION public.format(f text, a regclass, b regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('format(text, regclass, regclass)'); RETURN pg_catalog.format(f, a, b); END $$;
CREATE FUNCTION public.format(f text, a regclass, b regclass, c regclass) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('format(text, regclass x 3)'); RETURN pg_catalog.format(f, a, b, c); END $$;
CREATE FUNCTION public.format(f text, a regclass, b regclass, c text, d text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('format(text, regclass, regclass, text, text)'); RETURN pg_catalog.format(f, a, b, c, d); END $$;
CREATE FUNCTION public.format(f text, a regclass, b regclass, c text, d text, e text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('format(text, regclass, regclass, text, text, text)'); RETURN pg_catalog.format(f, a, b, c, d, e); END $$;
CREATE FUNCTION public.jsonb_build_object(a text, b text, c text, d text, e text, f text) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('jsonb_build_object(text x 6)'); RETURN pg_catalog.jsonb_build_object(a, b, c, d, e, f); END $$;
CREATE FUNCTION public.unnest(a text[]) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('unnest(text[])'); RETURN QUERY SELECT pg_catalog.unnest(a); END $$;
CREATE FUNCTION public.int_times_numeric(a integer, b numeric) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN PERFORM public.jobq_hijack('integer * numeric'); RETURN a::numeric OPERATOR(pg_catalog.*) b; END $$;
CREATE OPERATOR public.* (LEFTARG = integer, RIGHTARG = numeric, FUNCTION = public.int_times_numeric);
});
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND proowner = 'mallory'::regrole}),
	'11', 'mallory planted her functions in public');

# Run a job as the superuser; returns its status.
sub run_job_su
{
	my ($kind, $payload) = @_;
	my $id = $node->safe_psql('postgres', qq{SELECT jobq.enqueue('$kind', '$payload')});
	$node->poll_query_until('postgres',
		qq{SELECT status IN ('succeeded', 'dead') FROM jobq.jobs WHERE id = $id})
	  or die "job $id of kind $kind did not finish";
	return $node->safe_psql('postgres',
		qq{SELECT status || coalesce(' ' || last_error, '') FROM jobq.jobs WHERE id = $id});
}

for my $job (
	[ 'matview.refresh', '{"view": "open_slots"}' ],
	[ 'attendance.aggregate', '{"month": "2026-10-01"}' ],
	[ 'attendance.thresholds', '{"month": "2026-10-01", "notify_kind": "notify.outbox"}' ],
	[ 'slots.generate', '{"start_date": "2026-11-02", "end_date": "2026-11-03"}' ],
	[ 'reservations.release', '{}' ],
	[   'table.archive',
		'{"source": "audit_log", "target": "audit_archive", "timestamp_column": "at", "older_than": "90 days"}'
	],
	[ 'jobq.prune', '{}' ])
{
	is(run_job_su(@$job), 'succeeded', "the superuser's $job->[0] job succeeds beside mallory's functions");
}
is( $node->safe_psql(
		'postgres', q{SELECT jobq.matview_refresh('{"view": "open_slots", "concurrently": false}') ->> 'view'}),
	'public.open_slots',
	'a direct call by the superuser succeeds too, and names the view with its schema');
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}),
	'f', 'mallory is not a superuser');
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT what || ' as ' || who, ', ') FROM hijacked}),
	'', "none of mallory's functions ran");

# Every function of jobq in PL/pgSQL, SECURITY DEFINER, or of the job pack
# (a built-in kind's handler or a _pack_ helper) pins search_path to
# pg_catalog (and pg_temp), except the handlers of the pack's kinds: those
# are one SQL statement that only calls schema-qualified functions.
my @wrappers = qw(slots_generate reservations_release attendance_aggregate
  attendance_thresholds matview_refresh table_archive);
my $wrapper_list = join(', ', map { "'$_'" } @wrappers);
is( $node->safe_psql(
		'postgres', qq{
SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1)
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'jobq'::regnamespace
   AND (l.lanname = 'plpgsql' OR p.prosecdef OR p.proname LIKE '\\_pack\\_%'
		OR p.oid IN (SELECT handler::regprocedure FROM jobq._kinds WHERE builtin AND handler IS NOT NULL))
   AND NOT coalesce(p.proconfig && ARRAY['search_path=pg_catalog', 'search_path=pg_catalog, pg_temp'], false)
   AND NOT (p.proname IN ($wrapper_list) AND p.pronargs = 1 AND l.lanname = 'sql')}),
	'',
	'every PL/pgSQL, SECURITY DEFINER and job pack function of jobq pins search_path');
is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(k.kind, ', ' ORDER BY k.kind)
  FROM jobq._kinds k JOIN pg_proc p ON p.oid = k.handler::regprocedure
 WHERE k.builtin AND p.proconfig IS NULL}),
	'attendance.aggregate, attendance.thresholds, matview.refresh, reservations.release, slots.generate, table.archive',
	'the handlers without a pinned search_path are the six wrappers');
for my $w (@wrappers)
{
	is( $node->safe_psql(
			'postgres', qq{
SELECT l.lanname, p.prosecdef, p.proconfig IS NULL,
	   p.prosrc ~ ('^\\s*SELECT jobq\\._$w\\(payload, pg_catalog\\.current_setting\\(''search_path''\\)\\)\\s*\$')
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.oid = 'jobq.$w(jsonb)'::regprocedure}),
		'sql|f|t|t',
		"jobq.$w only passes the caller's search_path to jobq._$w");
}

# DROP EXTENSION jobq_pack while the workers run: its kinds go with it, a
# pending job of one of them dies when it is claimed, jobq's own kinds stay
my $pending = $node->safe_psql('postgres',
	q{SET ROLE clinic; SELECT jobq.enqueue('reservations.release', '{}', run_at => now() + interval '1 hour')});
$node->safe_psql('postgres', 'DROP EXTENSION jobq_pack');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(kind, ' ' ORDER BY kind) FROM jobq.kinds WHERE builtin AND handler IS NOT NULL}),
	'jobq.prune matview.refresh table.archive',
	'DROP EXTENSION jobq_pack removes its kinds, not jobq\'s');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_proc WHERE proname = 'slots_generate'}),
	'0', '... and its functions');
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT jobq.enqueue('slots.generate', '{}')});
like($err, qr/job kind "slots.generate" does not exist/, 'a kind of the dropped pack cannot be enqueued');
jobq_run_now($node, 'postgres', "id = $pending");
$node->poll_query_until('postgres', qq{SELECT status = 'dead' FROM jobq.jobs WHERE id = $pending})
  or die "job $pending did not die";
is($node->safe_psql('postgres', qq{SELECT last_error FROM jobq.jobs WHERE id = $pending}),
	'job kind "reservations.release" does not exist',
	'a pending job of the dropped pack dies with a clear error');

# CREATE EXTENSION jobq_pack again: the workers see its kinds
$node->safe_psql('postgres', 'CREATE EXTENSION jobq_pack');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(kind || ' ' || extension, ', ' ORDER BY kind) FROM jobq.kinds WHERE extension IS NOT NULL}),
	'attendance.aggregate jobq_pack, attendance.thresholds jobq_pack, reservations.release jobq_pack, slots.generate jobq_pack',
	'CREATE EXTENSION jobq_pack brings its kinds back, named as its own');
like(run_job('reservations.release', '{}'), qr/^succeeded\|\{"released": \d+\}$/,
	'a job of the pack created again runs');

$node->stop;
done_testing();
