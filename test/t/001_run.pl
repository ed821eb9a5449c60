# 001_run.pl: jobs really run in background workers.
#
# 10,000 sql jobs enqueued in one statement all run exactly once, the
# backlog bringing the database up to its four workers; a registered
# PL/pgSQL handler's jsonb result is kept as the job's result and a void
# handler's result is NULL; jobq.workers and pg_stat_activity show the
# launcher and the workers (no net worker: no network job was due).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'run', q{
jobq.workers = 4
jobq.poll_interval = '1s'
jobq.worker_idle_timeout = '1h'
});
$node->safe_psql('postgres', 'CREATE EXTENSION jobq');

# ---------------------------------------------------------------------
# 10,000 sql jobs in one statement
# ---------------------------------------------------------------------

$node->safe_psql('postgres', 'CREATE TABLE hits (n integer)');

my $added = $node->safe_psql(
	'postgres', q{
SELECT count(*)
  FROM jobq.enqueue_many('sql',
		(SELECT array_agg(jsonb_build_object('sql',
						format('INSERT INTO hits(n) VALUES (%s)', g)) ORDER BY g)
		   FROM generate_series(1, 10000) g))});
is($added, '10000', 'enqueue_many returns one id per payload');

ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.jobs WHERE status IN ('pending', 'running')},
		'0'),
	'every job has finished');

is( $node->safe_psql(
		'postgres',
		'SELECT count(*), count(DISTINCT n), min(n), max(n) FROM hits'),
	'10000|10000|1|10000',
	'each job inserted its row exactly once');

# Workers on demand: the backlog made the launcher add workers up to
# jobq.workers; with a long jobq.worker_idle_timeout they stay.
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'postgres'},
		'4'),
	'the backlog brought the database up to four workers');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*),
	   count(*) FILTER (WHERE status = 'succeeded'),
	   count(*) FILTER (WHERE attempts = 1),
	   count(*) FILTER (WHERE finished_at IS NOT NULL),
	   count(*) FILTER (WHERE last_error IS NULL)
  FROM jobq.jobs WHERE kind = 'sql'}),
	'10000|10000|10000|10000|10000',
	'all 10,000 jobs succeeded at their first attempt');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM jobq.jobs
 WHERE kind = 'sql' AND result = '{"rows": 1}'::jsonb}),
	'10000',
	'a sql job result holds the rows processed by its last statement');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM jobq.jobs j JOIN hits h
	ON j.payload->>'sql' = format('INSERT INTO hits(n) VALUES (%s)', h.n)}),
	'10000',
	'every job ran its own payload');

# ---------------------------------------------------------------------
# Registered handler kinds
# ---------------------------------------------------------------------

$node->safe_psql(
	'postgres', q{
CREATE TABLE adds (a integer, b integer, total integer);
CREATE TABLE notes (body text);

CREATE FUNCTION add_fn(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	t integer := (p->>'a')::integer + (p->>'b')::integer;
BEGIN
	INSERT INTO public.adds VALUES ((p->>'a')::integer, (p->>'b')::integer, t);
	RETURN jsonb_build_object('sum', t);
END
$$;

CREATE FUNCTION note_fn(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.notes VALUES (p->>'body');
END
$$;

SELECT jobq.register_kind('demo.add', 'add_fn(jsonb)');
SELECT jobq.register_kind('demo.note', 'note_fn(jsonb)');
});

is( $node->safe_psql(
		'postgres',
		q{SELECT kind, builtin, handler IS NOT NULL FROM jobq.kinds
		   WHERE kind LIKE 'demo.%' ORDER BY kind}),
	"demo.add|f|t\ndemo.note|f|t",
	'the registered kinds are listed in jobq.kinds');

my $add_id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('demo.add', '{"a": 2, "b": 40}')});
my $note_id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('demo.note', '{"body": "hello"}')});

ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM jobq.jobs
 WHERE id IN ($add_id, $note_id) AND status NOT IN ('pending', 'running')},
		'2'),
	'the handler jobs have finished');

is( $node->safe_psql(
		'postgres',
		"SELECT status, attempts, result FROM jobq.jobs WHERE id = $add_id"),
	'succeeded|1|{"sum": 42}',
	'a jsonb handler result is kept as the job result');
is($node->safe_psql('postgres', 'SELECT a, b, total FROM adds'),
	'2|40|42', 'the jsonb handler ran with the job payload');

is( $node->safe_psql(
		'postgres',
		"SELECT status, attempts, result IS NULL FROM jobq.jobs WHERE id = $note_id"
	),
	'succeeded|1|t',
	'a void handler leaves the result NULL');
is($node->safe_psql('postgres', 'SELECT body FROM notes'),
	'hello', 'the void handler ran with the job payload');

# ---------------------------------------------------------------------
# Monitoring: jobq.workers and pg_stat_activity
# ---------------------------------------------------------------------

is( $node->safe_psql(
		'postgres', q{
SELECT count(*),
	   count(*) FILTER (WHERE state IN ('starting', 'idle', 'claiming', 'running')),
	   count(DISTINCT pid),
	   count(DISTINCT worker)
  FROM jobq.workers WHERE datname = 'postgres' AND lane = 'sql'}),
	'4|4|4|4',
	'jobq.workers shows four workers of the database with their states');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM jobq.workers WHERE datname = 'postgres' AND lane = 'net'}),
	'0',
	'no net worker: no network job was due in the database');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM jobq.workers w JOIN pg_stat_activity a USING (pid)
 WHERE w.datname = 'postgres' AND a.backend_type = 'jobq worker'
   AND a.datname = 'postgres'}),
	'4',
	'the pids in jobq.workers are the jobq workers of pg_stat_activity');

cmp_ok(
	$node->safe_psql(
		'postgres', q{
SELECT sum(jobs_succeeded) FROM jobq.workers WHERE datname = 'postgres'}),
	'>=', 10002,
	'the workers counted the jobs they ran');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'postgres'
   AND application_name = 'jobq worker'}),
	'4',
	'pg_stat_activity shows the four workers with their application name');

is( $node->safe_psql(
		'postgres', q{
SELECT count(*), count(*) FILTER (WHERE datname IS NULL)
  FROM pg_stat_activity WHERE backend_type = 'jobq launcher'}),
	'1|1',
	'pg_stat_activity shows one launcher, connected to no database');

$node->stop;

done_testing();
