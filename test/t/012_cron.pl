# 012_cron.pl: recurring jobs fired by pg_cron.
#
# pg_cron is preloaded with jobq and lives in "postgres"; "school" has jobq
# only.  Three '* * * * *' schedules (one in postgres by the superuser, one
# in postgres and one in school by the non-superuser role app) fire at the
# same minute boundary: pg_cron runs jobq.run_schedule in the schedule's
# database as its owner (cron.job_run_details: succeeded, right database and
# username), the jobs really run, owned by the schedule's owner, and
# jobq.schedules shows them succeeded.  A job still running when its
# schedule runs again is not doubled.  The pg_cron job is named
# 'jobq <database oid> <name>'; replacing a schedule changes that same job;
# another role can neither replace nor remove it; a cron line pg_cron
# rejects is an error that stores nothing (in either database).
# jobq.unschedule removes the pg_cron job, from school too, and returns
# false the second time.  jobq.schedule_timetable in school, with
# overrides, makes the timetable's pg_cron jobs for school.  Names that
# met across databases in 0.1.0 ("t1 x" and y, t1 and "x y") get two
# jobs, and no schedule changes or removes a pg_cron job it did not make:
# another database's, one of a copied database, one made by hand with
# the name jobq would use.  A schedule of 0.1.0, whose job has the old
# name, keeps its job.  Schedule names with control characters: 22023.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

# needs pg_cron: skipped, saying why, where it is not installed (PostgreSQL 18)
jobq_skip_without_pg_cron();

my $node = jobq_node(
	'cron', q{
shared_preload_libraries = 'jobq,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 40
jobq.workers = 1
jobq.poll_interval = '1s'
});

my $su = $node->safe_psql('postgres', 'SELECT current_user');

# The oid of a database, which names its pg_cron jobs.
sub db_oid
{
	my ($db) = @_;
	return $node->safe_psql('postgres', "SELECT oid FROM pg_database WHERE datname = '$db'");
}

# Run $sql in $db as $user (undef: the superuser): (exit code, stdout,
# stderr), or the output (a test).
sub psql_as { my ($db, $user, $sql) = @_; return jobq_psql_as($node, $user, $sql, $db) }
sub safe_as { my ($db, $user, $sql) = @_; return jobq_safe_as($node, $user, $sql, $db) }

sub sql
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# The pg_cron jobs of jobq, one line each.
sub cron_jobs
{
	return sql(
		'postgres', q{
SELECT jobname, schedule, command, database, username, active FROM cron.job
 WHERE jobname LIKE 'jobq %' ORDER BY database, jobname});
}

# ---------------------------------------------------------------------
# Setup: pg_cron in postgres, jobq in postgres and school
# ---------------------------------------------------------------------

sql(
	'postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION jobq;
CREATE ROLE app LOGIN;
CREATE ROLE other LOGIN;
CREATE DATABASE school;
CREATE TABLE ticks (db text, who text, what text);
CREATE TABLE held (db text, who text, what text);
GRANT INSERT, SELECT ON ticks, held TO app;
});
sql(
	'school', q{
CREATE EXTENSION jobq_pack CASCADE;
CREATE TABLE ticks (db text, who text, what text);
GRANT INSERT, SELECT ON ticks TO app;
});

# The SQL job of a schedule: a row saying where, as whom and for what it ran.
sub tick_payload
{
	my ($table, $what) = @_;
	return qq{jsonb_build_object('sql', \$\$INSERT INTO public.$table SELECT current_database(), current_user, '$what'\$\$)};
}

# Every schedule of this test fires at the same minute boundary: do not
# create them in the last seconds of a minute, which pg_cron might miss.
my $second = sql('postgres', 'SELECT floor(extract(second FROM clock_timestamp()))::int');
if ($second >= 50)
{
	note "second $second of the minute: waiting for the next one";
	sleep(61 - $second);
}

# app's postgres job waits on a lock the test holds, so it is still
# running when its schedule is run again.
my $lock = $node->background_psql('postgres');
$lock->query_safe('BEGIN');
$lock->query_safe('LOCK TABLE held IN ACCESS EXCLUSIVE MODE');

# ---------------------------------------------------------------------
# Schedules and their pg_cron jobs
# ---------------------------------------------------------------------

my $pg_tick_cron = sql('postgres',
	"SELECT jobq.schedule('tick', '* * * * *', 'sql', "
	  . tick_payload('ticks', 'tick') . ')');
my $app_tick_cron = safe_as('postgres', 'app',
	"SELECT jobq.schedule('app_tick', '* * * * *', 'sql', "
	  . tick_payload('held', 'app_tick') . ')');

# school's schedule starts on another cron line, then is replaced
my $school_cron = safe_as('school', 'app',
	"SELECT jobq.schedule('tick', '0 0 1 1 *', 'sql', "
	  . tick_payload('ticks', 'school tick') . ')');
my $count_before = sql('postgres', 'SELECT count(*) FROM cron.job');
is( safe_as(
		'school', 'app',
		"SELECT jobq.schedule('tick', '* * * * *', 'sql', "
		  . tick_payload('ticks', 'school tick') . ')'),
	$school_cron,
	'replacing a schedule returns the same pg_cron job');
is(sql('postgres', 'SELECT count(*) FROM cron.job'),
	$count_before, 'replacing a schedule adds no pg_cron job');
is( sql('postgres', "SELECT schedule FROM cron.job WHERE jobid = $school_cron"),
	'* * * * *',
	"the pg_cron job has the new cron line");

my ($pg, $school) = (db_oid('postgres'), db_oid('school'));
is( cron_jobs(),
	qq{jobq $pg app_tick|* * * * *|SELECT jobq.run_schedule('app_tick')|postgres|app|t
jobq $pg tick|* * * * *|SELECT jobq.run_schedule('tick')|postgres|$su|t
jobq $school tick|* * * * *|SELECT jobq.run_schedule('tick')|school|app|t},
	'each schedule has a pg_cron job named for its database, run there as its owner');
is( sql('postgres',
		'SELECT name, cron_job_name, cron_job_id, owner FROM jobq.schedules ORDER BY name'),
	qq{app_tick|jobq $pg app_tick|$app_tick_cron|app
tick|jobq $pg tick|$pg_tick_cron|$su},
	'jobq.schedules in postgres: the pg_cron job ids and owners');
is( sql('school',
		'SELECT name, schedule, cron_job_name, cron_job_id, owner FROM jobq.schedules'),
	"tick|* * * * *|jobq $school tick|$school_cron|app",
	'jobq.schedules in school: the replaced schedule');

# another role may neither replace nor remove app's schedule
my ($ret, $out, $err) = psql_as('school', 'other',
	"SELECT jobq.schedule('tick', '* * * * *', 'sql', '{\"sql\": \"SELECT 1\"}')");
like($err, qr/42501.*schedule "tick" belongs to role app/,
	"another role cannot replace app's schedule: 42501");
is(safe_as('school', 'other', "SELECT jobq.unschedule('tick')"),
	'f', "another role's jobq.unschedule of app's schedule returns false");
is( sql('school', 'SELECT owner, kind FROM jobq._schedules'),
	'app|sql', "app's schedule is unchanged");

# a cron line pg_cron rejects: its error, and nothing stored, in pg_cron's
# database and in another one
for my $db ('postgres', 'school')
{
	($ret, $out, $err) = psql_as($db, 'app',
		"SELECT jobq.schedule('bad', 'every minute', 'sql', '{\"sql\": \"SELECT 1\"}')");
	isnt($ret, 0, "$db: a cron line pg_cron rejects is an error");
	like($err, qr/invalid schedule: every minute/,
		"$db: the error is pg_cron's");
	is(sql($db, "SELECT count(*) FROM jobq._schedules WHERE name = 'bad'"),
		'0', "$db: the rejected schedule is not stored");
}
like($err, qr/pg_cron in database "postgres"/,
	"school: the error says it came from pg_cron's database");
is(sql('postgres', "SELECT count(*) FROM cron.job WHERE jobname LIKE '% bad'"),
	'0', 'no pg_cron job for the rejected schedules');

# pg_cron keeps 63 bytes of a job name: a longer "jobq <db oid> <name>" is refused
# (two long names would otherwise share one pg_cron job)
my $long = 'x' x 60;
($ret, $out, $err) = psql_as('school', 'app',
	"SELECT jobq.schedule('$long', '* * * * *', 'sql', '{\"sql\": \"SELECT 1\"}')");
like($err, qr/42622.*is too long for pg_cron/, 'a schedule name too long for pg_cron: 42622');
is(sql('school', "SELECT count(*) FROM jobq._schedules WHERE name = '$long'"),
	'0', 'the long name is not stored');

# ---------------------------------------------------------------------
# pg_cron fires them
# ---------------------------------------------------------------------

{
	# the next minute boundary, and the worker's poll after it
	local $PostgreSQL::Test::Utils::timeout_default = 80;
	ok( $node->poll_query_until(
			'postgres', q{
SELECT last_job_status FROM jobq.schedules WHERE name = 'app_tick'},
			'running'),
		"pg_cron fires app's schedule in postgres and its job runs");
}

# its job waits on the lock: running it again returns that job
my $held_job =
  sql('postgres', "SELECT last_job_id FROM jobq.schedules WHERE name = 'app_tick'");
is(safe_as('postgres', 'app', "SELECT jobq.run_schedule('app_tick')"),
	$held_job, 'a schedule run while its job is running returns that job');
is( sql('postgres',
		"SELECT count(*), min(status) FROM jobq.jobs WHERE job_key = 'schedule:app_tick'"),
	'1|running',
	'the job is not doubled');
$lock->query_safe('COMMIT');
$lock->quit;

{
	local $PostgreSQL::Test::Utils::timeout_default = 80;
	ok( $node->poll_query_until(
			'postgres', q{
SELECT count(*) FROM cron.job j
 WHERE jobname LIKE 'jobq %'
   AND EXISTS (SELECT FROM cron.job_run_details d
				WHERE d.jobid = j.jobid AND d.status = 'succeeded')},
			'3'),
		'pg_cron has run the three schedules');
	for my $db ('postgres', 'school')
	{
		ok( $node->poll_query_until(
				$db, q{
SELECT bool_and(last_job_status = 'succeeded') FROM jobq.schedules}),
			"$db: the jobs of the schedules have succeeded");
	}
}

is( sql('postgres', q{
SELECT DISTINCT j.jobname, d.database, d.username, d.status,
	   d.command = j.command
  FROM cron.job_run_details d JOIN cron.job j USING (jobid)
 WHERE jobname LIKE 'jobq %' ORDER BY 2, 1}),
	qq{jobq $pg app_tick|postgres|app|succeeded|t
jobq $pg tick|postgres|$su|succeeded|t
jobq $school tick|school|app|succeeded|t},
	'cron.job_run_details: each run succeeded in its database as its owner');

is( sql('postgres', 'SELECT DISTINCT db, who, what FROM ticks'),
	"postgres|$su|tick",
	"the superuser's job ran in postgres as the superuser");
is( sql('postgres', 'SELECT DISTINCT db, who, what FROM held'),
	'postgres|app|app_tick',
	"app's job ran in postgres as app");
is( sql('school', 'SELECT DISTINCT db, who, what FROM ticks'),
	'school|app|school tick',
	"app's job ran in school as app");

is( sql('postgres', q{
SELECT s.name, j.owner, j.status, j.job_key, s.last_job_status
  FROM jobq.schedules s JOIN jobq.jobs j ON j.id = s.last_job_id ORDER BY 1}),
	qq{app_tick|app|succeeded|schedule:app_tick|succeeded
tick|$su|succeeded|schedule:tick|succeeded},
	'postgres: the jobs are the owners\', and jobq.schedules shows them succeeded');
is( sql('school', q{
SELECT s.name, j.owner, j.status, j.job_key, s.last_job_status
  FROM jobq.schedules s JOIN jobq.jobs j ON j.id = s.last_job_id}),
	'tick|app|succeeded|schedule:tick|succeeded',
	"school: the job is app's, and jobq.schedules shows it succeeded");
is(safe_as('school', 'app', q{SELECT count(*) FROM jobq.schedules WHERE last_job_status = 'succeeded'}),
	'1', 'app sees its schedule in school');
is(safe_as('school', 'other', 'SELECT count(*) FROM jobq.schedules'),
	'0', "another role does not see app's schedule");

# ---------------------------------------------------------------------
# jobq.unschedule
# ---------------------------------------------------------------------

is(safe_as('school', 'app', "SELECT jobq.unschedule('tick')"),
	't', 'app removes its schedule in school');
is(sql('postgres', "SELECT count(*) FROM cron.job WHERE jobname = 'jobq $school tick'"),
	'0', "school's pg_cron job is gone");
is(sql('school', 'SELECT count(*) FROM jobq._schedules'),
	'0', "school's schedule is gone");
is(safe_as('school', 'app', "SELECT jobq.unschedule('tick')"),
	'f', 'removing it again returns false');
is(safe_as('postgres', 'app', "SELECT jobq.unschedule('app_tick')"),
	't', 'app removes its schedule in postgres');
is(sql('postgres', "SELECT jobq.unschedule('tick')"),
	't', 'the superuser removes its schedule in postgres');
is(sql('postgres', "SELECT jobq.unschedule('tick')"),
	'f', 'and again: false');
is(cron_jobs(), '', 'no pg_cron job of jobq is left');
is(sql('postgres', 'SELECT count(*) FROM jobq._schedules'),
	'0', 'no schedule is left in postgres');

# ---------------------------------------------------------------------
# jobq.schedule_timetable in school
# ---------------------------------------------------------------------

sql(
	'school', q{
CREATE TABLE attendance (student_id bigint, present boolean);
CREATE MATERIALIZED VIEW attendance_summary AS
	SELECT student_id, avg(present::int) AS rate FROM attendance GROUP BY student_id;
CREATE FUNCTION notify_stub(payload jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT payload';
SELECT jobq.register_kind('school.notify', 'notify_stub(jsonb)');
});
is( sql(
		'school', q{
SELECT name, schedule, kind, payload FROM jobq.schedule_timetable('{
	"matview.refresh": {"schedule": "*/15 * * * *", "payload": {"view": "public.attendance_summary"}},
	"table.archive": false,
	"attendance.thresholds": {"payload": {"notify_kind": "school.notify"}}}')}),
	q{attendance.aggregate|*/10 * * * *|attendance.aggregate|{}
attendance.thresholds|0 * * * *|attendance.thresholds|{"notify_kind": "school.notify"}
jobq.prune|30 3 * * *|jobq.prune|{}
matview.refresh|*/15 * * * *|matview.refresh|{"view": "public.attendance_summary"}
reservations.release|*/5 * * * *|reservations.release|{}
slots.generate|0 1 * * *|slots.generate|{}},
	'jobq.schedule_timetable returns the entries it scheduled');
is( cron_jobs(),
	qq{jobq $school attendance.aggregate|*/10 * * * *|SELECT jobq.run_schedule('attendance.aggregate')|school|$su|t
jobq $school attendance.thresholds|0 * * * *|SELECT jobq.run_schedule('attendance.thresholds')|school|$su|t
jobq $school jobq.prune|30 3 * * *|SELECT jobq.run_schedule('jobq.prune')|school|$su|t
jobq $school matview.refresh|*/15 * * * *|SELECT jobq.run_schedule('matview.refresh')|school|$su|t
jobq $school reservations.release|*/5 * * * *|SELECT jobq.run_schedule('reservations.release')|school|$su|t
jobq $school slots.generate|0 1 * * *|SELECT jobq.run_schedule('slots.generate')|school|$su|t},
	'the timetable has a pg_cron job per entry, in school, and none for table.archive');
is( sql('school', 'SELECT string_agg(name, \',\' ORDER BY name) FROM jobq._schedules WHERE cron_job_id IS NOT NULL'),
	'attendance.aggregate,attendance.thresholds,jobq.prune,matview.refresh,reservations.release,slots.generate',
	'each timetable schedule has its pg_cron job id');

# A bad override is refused before anything is scheduled.
($ret, $out, $err) = psql_as('school', undef,
	q{SELECT * FROM jobq.schedule_timetable('{"no.such.entry": false}')});
like($err, qr/22023.*the timetable has no entry "no.such.entry"/,
	'an unknown timetable entry: 22023');


# ---------------------------------------------------------------------
# Names that met across databases, and pg_cron jobs a schedule did not make
# ---------------------------------------------------------------------

sql('postgres', q{CREATE DATABASE "t1 x"});
sql('postgres', q{CREATE DATABASE t1});
sql($_, 'CREATE EXTENSION jobq') for ('t1 x', 't1');
my ($t1x, $t1) = (db_oid('t1 x'), db_oid('t1'));
my $never = '0 0 1 1 *';
my $noop = q{'{"sql": "SELECT 1"}'};

# A pg_cron job by id: "name|database|user|cron line|command", or ''.
sub cron_job
{
	my ($id) = @_;
	return sql('postgres', qq{
SELECT concat_ws('|', jobname, database, username, schedule, command) FROM cron.job WHERE jobid = $id});
}

# the issue's collision: 0.1.0 named both "jobq t1 x y", and app's call
# removed the superuser's job of the other database
my $su_y = sql('t1 x', "SELECT jobq.schedule('y', '$never', 'sql', $noop)");
my $app_xy = safe_as('t1', 'app', "SELECT jobq.schedule('x y', '$never', 'sql', $noop)");
is(cron_job($su_y), qq{jobq $t1x y|t1 x|$su|$never|SELECT jobq.run_schedule('y')},
	qq{app's schedule "x y" in t1 leaves the superuser's job of y in "t1 x" alone});
is(cron_job($app_xy), qq{jobq $t1 x y|t1|app|$never|SELECT jobq.run_schedule('x y')},
	'and gets a pg_cron job of its own, named with the oid of t1');
is(safe_as('t1', 'app', "SELECT jobq.unschedule('x y')"), 't', 'app removes "x y" in t1');
is(cron_job($app_xy), '', "app's pg_cron job is gone");
is(cron_job($su_y), qq{jobq $t1x y|t1 x|$su|$never|SELECT jobq.run_schedule('y')},
	qq{the superuser's job of "t1 x" stays});

# the other way round: a schedule name in "t1 x" that would have named the
# superuser's job of t1
my $su_xz = sql('t1', "SELECT jobq.schedule('x z', '$never', 'sql', $noop)");
my $app_z = safe_as('t1 x', 'app', "SELECT jobq.schedule('z', '0 0 2 1 *', 'sql', $noop)");
is(cron_job($su_xz), qq{jobq $t1 x z|t1|$su|$never|SELECT jobq.run_schedule('x z')},
	qq{app's schedule z in "t1 x" leaves the superuser's job of "x z" in t1 alone});
is(safe_as('t1 x', 'app', "SELECT jobq.unschedule('z')"), 't', 'app removes z in "t1 x"');
is(cron_job($su_xz), qq{jobq $t1 x z|t1|$su|$never|SELECT jobq.run_schedule('x z')},
	"and the superuser's job of t1 stays");

# a copy of a database has its schedules' rows, with the original's job
# ids and names: nothing done in the copy reaches the original's jobs
my $app_w = safe_as('t1 x', 'app', "SELECT jobq.schedule('w', '$never', 'sql', $noop)");
sql('postgres', q{CREATE DATABASE t1copy TEMPLATE "t1 x"});
is(safe_as('t1copy', 'app', "SELECT jobq.unschedule('w')"), 't', 'app removes w in the copy');
is(cron_job($app_w), qq{jobq $t1x w|t1 x|app|$never|SELECT jobq.run_schedule('w')},
	"the original's pg_cron job of w stays");
my $copy_y = sql('t1copy', "SELECT jobq.schedule('y', '0 0 3 1 *', 'sql', $noop)");
isnt($copy_y, $su_y, 'y scheduled again in the copy gets a pg_cron job of its own');
is(cron_job($su_y), qq{jobq $t1x y|t1 x|$su|$never|SELECT jobq.run_schedule('y')},
	"and the original's pg_cron job of y is unchanged");

# a pg_cron job made by hand with the name a schedule would get
my $hand = sql('postgres', "SELECT cron.schedule('jobq $t1 handmade', '$never', 'SELECT 1')");
($ret, $out, $err) = psql_as('t1', 'app', "SELECT jobq.schedule('handmade', '* * * * *', 'sql', $noop)");
like($err, qr/42710.*a pg_cron job named "jobq $t1 handmade" already exists/,
	'a schedule whose pg_cron job name is taken by another job: 42710');
is(cron_job($hand), "jobq $t1 handmade|postgres|$su|$never|SELECT 1", 'that job is untouched');
is(sql('t1', q{SELECT count(*) FROM jobq._schedules WHERE name = 'handmade'}),
	'0', 'and the schedule is not stored');

# a schedule of 0.1.0: its pg_cron job has the old name, and stays its job
my $old = safe_as('t1', 'app', "SELECT jobq.schedule('old', '$never', 'sql', $noop)");
sql('postgres', "UPDATE cron.job SET jobname = 'jobq t1 old' WHERE jobid = $old");
sql('t1', q{UPDATE jobq._schedules SET cron_job_name = 'jobq t1 old' WHERE name = 'old'});
is(safe_as('t1', 'app', "SELECT jobq.schedule('old', '0 0 2 1 *', 'sql', $noop)"),
	$old, 'a schedule with a pg_cron job of the 0.1.0 name is replaced in that job');
is(cron_job($old), qq{jobq t1 old|t1|app|0 0 2 1 *|SELECT jobq.run_schedule('old')},
	'which keeps its name and gets the new cron line');
is(safe_as('t1', 'app', "SELECT jobq.unschedule('old')"), 't', 'app removes it');
is(cron_job($old), '', 'and its pg_cron job is gone');

# control characters in a schedule name
for my $bad (q{E'tab\there'}, q{E'new\nline'}, q{E'ctl\x01'}, q{E'cr\r'})
{
	($ret, $out, $err) = psql_as('t1', 'app', "SELECT jobq.schedule($bad, '$never', 'sql', $noop)");
	like($err, qr/22023.*schedule name must be 1 to 63 characters without control characters/,
		"a schedule name with a control character ($bad): 22023");
}
is(sql('t1', q{SELECT count(*) FROM jobq._schedules WHERE name ~ '[[:cntrl:]]'}),
	'0', 'no such name is stored');

done_testing();
