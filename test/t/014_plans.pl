# 014_plans.pl: the workers' statements on jobq._queue keep their index
# plans whatever the table's statistics say.
#
# A vacuum of jobq._queue when it holds few jobs (worker 0 vacuums it after a
# burst, autovacuum too) leaves statistics that call the table nearly empty,
# and it invalidates the workers' cached plans.  Planned with those
# statistics, the claim would read every ready job through a bitmap scan and
# sort them all to take the first batch: with a large backlog, each claim
# reads the whole backlog.  auto_explain logs the plans the worker runs;
# pg_stat_statements counts how often they are planned.

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
my @claims = grep { /Query Text: UPDATE jobq\._queue SET status = 'running'/ } @plans;
my @deletes = grep { /Query Text: DELETE FROM jobq\._queue WHERE id = ANY/ } @plans;
cmp_ok(scalar(@claims), '>=', 40, 'auto_explain logged the claims of the backlog');
is( scalar(grep { !/Index Scan using _queue_claim_idx/ || /Sort|Bitmap|Seq Scan/ } @claims),
	0, 'every claim read the claim index in order: no bitmap scan, no sort of the backlog');
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

$node->stop;

done_testing();
