# 010_batches.pl: how workers batch.  Slow jobs claimed in one batch are
# given back when the batch has run 100 ms and taken by the idle worker
# (without counting the attempt); a large batch of jobs that write runs in
# several transactions, each job exactly once; workers report their table
# statistics while they run, so that autovacuum keeps jobq._queue small.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'batches', q{
jobq.workers = 2
jobq.batch_size = 500
jobq.poll_interval = '60s'
});
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE ran (n int, pid int, attempts int);
CREATE TABLE hits (n int PRIMARY KEY);
});
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.workers WHERE lane = 'sql' AND state = 'idle'}, '2'),
	'two idle workers');

# Twelve jobs of 300 ms, committed together: one worker is woken and claims
# them all; after 100 ms it gives back those it has not started.
$node->safe_psql(
	'postgres', q{
SELECT count(*) FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql', format(
		'SELECT pg_sleep(0.3); INSERT INTO public.ran SELECT %s, pg_backend_pid(), attempts FROM jobq.jobs WHERE job_key = %L',
		g, 'slow-' || g)) ORDER BY g)
	   FROM generate_series(1, 12) g),
	job_keys => (SELECT array_agg('slow-' || g ORDER BY g) FROM generate_series(1, 12) g));
});
ok($node->poll_query_until('postgres', 'SELECT count(*) FROM ran', '12'),
	'the slow jobs ran');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT pid) FROM ran'),
	'2', 'both workers ran slow jobs of the one batch');
is( $node->safe_psql(
		'postgres', 'SELECT count(*), count(DISTINCT n), max(attempts) FROM ran'),
	'12|12|1',
	'each slow job ran once, and giving it back did not count an attempt');

# 500 jobs that each insert a row, claimed in one batch of 500: more writing
# subtransactions than a transaction should carry, so several commits.
$node->safe_psql(
	'postgres', q{
SELECT count(*) FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql', format('INSERT INTO public.hits VALUES (%s)', g)) ORDER BY g)
	   FROM generate_series(1, 500) g), queue => 'writers');
});
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.jobs WHERE queue = 'writers' AND status = 'succeeded'}, '500'),
	'the 500 writing jobs succeeded');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT n), (SELECT max(attempts) FROM jobq.jobs WHERE queue = 'writers')
  FROM hits}),
	'500|500|1',
	'each inserted its row once, at the first attempt');

# Autovacuum learns of the dead rows that claims and completions leave in
# jobq._queue only if the workers report their table statistics: they do
# after their transactions (at most about once a second) and before they
# sleep, not only when they exit.
ok( $node->poll_query_until(
		'postgres', q{
SELECT n_tup_upd >= 512 AND n_tup_del >= 512 FROM pg_stat_user_tables
 WHERE relid = 'jobq._queue'::regclass}),
	'the running workers have reported their claims and deletions');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'jobq worker'}),
	'2', 'with both workers still running');

$node->stop;
done_testing();
