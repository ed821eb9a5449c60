# 014_plans.pl: how workers find jobs in jobq._queue whatever the table's
# statistics say.
#
# A vacuum of jobq._queue when it holds few jobs (worker 0 vacuums it after a
# burst, autovacuum too) leaves statistics that call the table nearly empty,
# and it invalidates the workers' cached plans.  A claim has no plan to go
# wrong: it walks the claim index itself (claim.c), in claim order, and
# takes no job that is not due.  The completions are statements, planned
# with those statistics: they must still find their jobs through the
# primary key, not read the backlog.  auto_explain logs the plans the
# worker runs; pg_stat_statements counts how often they are planned.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'plans', q{
shared_preload_libraries = 'jobq, auto_explain, pg_stat_statements'
auto_explain.log_min_duration = 0
auto_explain.log_nested_statements = on
pg_stat_statements.track = all
pg_stat_statements.track_planning = on
log_min_messages = log
autovacuum = off
jobq.workers = 1
jobq.retention = 0
jobq.vacuum_threshold = 0
jobq.poll_interval = '60s'
});
$node->safe_psql('postgres',
	'CREATE EXTENSION jobq; CREATE EXTENSION pg_stat_statements');

# Jobs through the table, then a vacuum of the drained table: its statistics
# now say it holds no rows.
$node->safe_psql('postgres',
	q{SELECT count(*) FROM jobq.enqueue_many('sql', (SELECT array_agg('{"sql": "SELECT 1"}'::jsonb) FROM generate_series(1, 3000)))}
);
ok( $node->poll_query_until(
		'postgres', 'SELECT NOT EXISTS (SELECT 1 FROM jobq._queue)'),
	'the first jobs ran');
$node->safe_psql('postgres', 'VACUUM jobq._queue');
is( $node->safe_psql(
		'postgres', q{
SELECT reltuples FROM pg_class WHERE oid = 'jobq._queue'::regclass}),
	'0',
	'the statistics of jobq._queue say it is empty');

# A backlog arrives; the worker plans its statements again.
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	q{SELECT count(*) FROM jobq.enqueue_many('sql', (SELECT array_agg('{"sql": "SELECT 2"}'::jsonb) FROM generate_series(1, 20000)))}
);
ok( $node->poll_query_until(
		'postgres', 'SELECT NOT EXISTS (SELECT 1 FROM jobq._queue)'),
	'the backlog ran');

my $log = slurp_file($node->logfile, $log_offset);
my @plans = split /\n(?=\S)/, $log;
my @claims = grep { /jobq\._queue/ && /status = 'running'/ } @plans;
my @deletes = grep { /Query Text: DELETE FROM jobq\._queue WHERE id = ANY/ } @plans;
is(scalar(@claims), 0, 'no claim went through the executor');
cmp_ok(scalar(@deletes), '>=', 40, 'auto_explain logged the completions');
is( scalar(grep { !/Index Scan using _queue_pkey/ || /Seq Scan|Bitmap/ } @deletes),
	0, 'every completion found its jobs through the primary key');

# The plans are generic, made once: pg_stat_statements counts the planner's
# runs apart from the executions.  (A custom plan for each array of ids
# would be one planning per completion.)
my ($calls, $plans) = split /\|/, $node->safe_psql(
	'postgres', q{
SELECT sum(calls), sum(plans) FROM pg_stat_statements
 WHERE query LIKE 'DELETE FROM jobq._queue WHERE id = ANY%'});
note "completions: $calls executions, $plans plannings";
cmp_ok($calls, '>=', 40, 'pg_stat_statements counted the completions');
cmp_ok($plans, '<=', 3, 'the completion was planned once or so, not once per batch');

# The same with history kept: completions move the jobs to jobq._done.
$node->append_conf('postgresql.conf', "jobq.retention = '1d'");
$node->reload;
$node->safe_psql('postgres', 'VACUUM jobq._queue');
$log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	q{SELECT count(*) FROM jobq.enqueue_many('sql', (SELECT array_agg('{"sql": "SELECT 3"}'::jsonb) FROM generate_series(1, 20000)))}
);
ok( $node->poll_query_until(
		'postgres', 'SELECT NOT EXISTS (SELECT 1 FROM jobq._queue)'),
	'the backlog kept in history ran');
@plans = split /\n(?=\S)/, slurp_file($node->logfile, $log_offset);
my @moves = grep { /Query Text: WITH d AS \(DELETE FROM jobq\._queue WHERE id = ANY/ } @plans;
cmp_ok(scalar(@moves), '>=', 40, 'auto_explain logged the completions kept in history');
is( scalar(grep { !/Index Scan using _queue_pkey/ || /Seq Scan on _queue|Bitmap Heap Scan on _queue/ } @moves),
	0, 'every completion kept in history found its jobs through the primary key');
is($node->safe_psql('postgres', "SELECT count(*) FROM jobq._done WHERE status = 'succeeded'"),
	'20000', 'and kept them');

# The claim order: priority, then run_at, then id; a job not yet due waits.
# Committed together, the jobs are claimed by the only worker in one batch
# and run in the order claimed.
$node->safe_psql(
	'postgres', q{
CREATE TABLE ran_order (seq bigserial, tag text);
BEGIN;
SELECT count(jobq.enqueue('sql',
		jsonb_build_object('sql', format('INSERT INTO public.ran_order(tag) VALUES (%L)', tag)),
		priority => p, run_at => at))
  FROM (VALUES ('c', 1, now() - interval '10 s'),
			   ('a', 0, now() - interval '5 s'),
			   ('later', 0, now() + interval '1 h'),
			   ('e1', 2, timestamptz '2020-01-01'),
			   ('b', 0, now() - interval '1 s'),
			   ('e2', 2, timestamptz '2020-01-01'),
			   ('d', 1, now() - interval '20 s')) AS j(tag, p, at);
COMMIT;
});
ok($node->poll_query_until('postgres', 'SELECT count(*) FROM ran_order', '6'),
	'the due jobs ran');
is($node->safe_psql('postgres', q{SELECT string_agg(tag, ',' ORDER BY seq) FROM ran_order}),
	'a,b,d,c,e1,e2', 'in claim order: priority, run_at, id');
is( $node->safe_psql(
		'postgres', q{
SELECT status, attempts FROM jobq.jobs WHERE payload->>'sql' LIKE '%later%'}),
	'pending|0', 'the job not yet due was not claimed');

$node->stop;

done_testing();
