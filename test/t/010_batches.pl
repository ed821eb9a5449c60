# 010_batches.pl: how workers batch.  Slow jobs claimed in one batch are
# given back when the batch has run 100 ms and taken by the idle worker
# (without counting the attempt); a large batch of jobs that write runs in
# several transactions, each job exactly once; workers report their table
# statistics while they run, so that autovacuum keeps jobq._queue small,
# and count their claims in jobq.workers.
# On full pages a claim cannot update a row heap-only: the new row versions
# get their index entries (amcheck finds every claimed row in every index).
# A payload stored out of line survives its claim.

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
jobq.worker_idle_timeout = '1h'
});
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE ran (n int, pid int, attempts int);
CREATE TABLE hits (n int PRIMARY KEY);
});

# Workers start on demand: a worker that claims two jobs at once has the
# launcher start the database's second one; the long idle timeout keeps both.
$node->safe_psql(
	'postgres', q{
SELECT count(*) FROM jobq.enqueue_many('sql',
	array_fill('{"sql": "SELECT pg_sleep(0.2)"}'::jsonb, ARRAY[2]))});
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

# jobq.workers counts the claims: every job that ran was claimed at least
# once (the slow jobs given back were claimed again).
is( $node->safe_psql(
		'postgres', q{
SELECT sum(jobs_claimed) >= (SELECT count(*) FROM jobq.jobs WHERE status = 'succeeded'),
	   sum(claims) >= 3, sum(claim_time) > 0, sum(claim_buffers) >= sum(claims)
  FROM jobq.workers WHERE lane = 'sql'}),
	't|t|t|t',
	'jobq.workers counts the claims, the jobs they took, their time and buffers');

# Restarted, the workers claim a whole batch at their first claim
# (jobq.batch_size) instead of what their last batches taught them.
$node->restart;

# Claims on full pages: with fillfactor 100 a bulk insert leaves no room on
# a page for a second version of one of its rows, so no claim is heap-only.
# Committed together, the jobs are claimed in one batch; its last job
# checks, in the batch's transaction, that every index of jobq._queue has
# an entry for every row version it should (the claimed rows, now running)
# and counts them.
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION amcheck;
CREATE TABLE checked (running bigint);
ALTER TABLE jobq._queue SET (fillfactor = 100);
BEGIN;
SELECT count(*) FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql', 'SELECT 1', 'pad', repeat('x', 400)))
	   FROM generate_series(1, 200)), queue => 'full');
SELECT jobq.enqueue('sql', jsonb_build_object('sql', $s$
	SELECT bt_index_check(indexrelid, true) FROM pg_index
	 WHERE indrelid = 'jobq._queue'::regclass;
	INSERT INTO public.checked
		SELECT count(*) FROM jobq._queue WHERE status = 'running'$s$),
	queue => 'full', priority => 10);
COMMIT;
});
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.jobs WHERE queue = 'full' AND status = 'succeeded'}, '201'),
	'the jobs on full pages succeeded');
cmp_ok($node->safe_psql('postgres', 'SELECT running FROM checked'),
	'>', 100,
	'amcheck found every claimed row version in every index of jobq._queue');
ok( $node->poll_query_until(
		'postgres', q{
SELECT n_tup_upd - n_tup_hot_upd >= 100 FROM pg_stat_user_tables
 WHERE relid = 'jobq._queue'::regclass}),
	'those claims were not heap-only');
is($node->safe_psql('postgres', 'SELECT count(*) FROM jobq._queue'),
	'0', 'and every job left jobq._queue');

# A payload stored out of line (TOAST) survives its claim: the claimed row
# version keeps it, and the worker reads it.
$node->safe_psql(
	'postgres', q{
CREATE TABLE big (pad_length int);
SELECT jobq.enqueue('sql', jsonb_build_object(
	'sql', $s$INSERT INTO public.big SELECT length(payload->>'pad') FROM jobq.jobs WHERE job_key = 'big'$s$,
	'pad', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3000) g)),
	job_key => 'big');
});
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) FROM big}, '1'),
	'the job with a payload in TOAST ran');
is($node->safe_psql('postgres', 'SELECT pad_length FROM big'),
	'96000', 'and its payload was whole after the claim');

$node->stop;
done_testing();
