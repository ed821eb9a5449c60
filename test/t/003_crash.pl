# 003_crash.pl: crashes, immediate restarts and fast shutdown.
#
# (a) kill -9 of a worker running a job: the postmaster restarts, the job
#     that was running is dead (57P02) when it has no attempts left, and a
#     job with attempts left runs again and succeeds.
# (b) 1,000 jobs survive two immediate restarts while they run: every job
#     succeeds once and its effects are committed once.
# (a2) after a crash restart claims are durable before their jobs run (for
#     a minute): a job killed at once still has its attempt counted.
# (c) fast shutdown with a running job: the job is pending again, the
#     interrupted attempt counted (it may have terminated its worker itself)
#     and recorded with SQLSTATE 57P01.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'crash', q{
jobq.workers = 1
jobq.poll_interval = '1s'
jobq.retry_base_delay = '100ms'
restart_after_crash = on
});
$node->safe_psql('postgres', 'CREATE EXTENSION jobq');

# ---------------------------------------------------------------------
# (a) kill -9 of a worker
# ---------------------------------------------------------------------

# Both jobs are committed together, so the only worker claims them in one
# batch, in id order: "a" sleeps; "b" sleeps only at its first attempt and
# then records what it sees of itself.
$node->safe_psql('postgres',
	'CREATE TABLE marks (tag text, attempts integer, seen_sqlstate text)');
my ($a_id, $b_id) = split /\n/, $node->safe_psql(
	'postgres', q{
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_sleep(300)"}',
					max_attempts => 1) AS a \gset
SELECT jobq.enqueue('sql', jsonb_build_object('sql', $s$
	SELECT pg_sleep(300) FROM jobq.jobs WHERE job_key = 'crash-b' AND attempts = 1;
	INSERT INTO public.marks
		SELECT job_key, attempts, last_error_sqlstate FROM jobq.jobs
		 WHERE job_key = 'crash-b'$s$),
	max_attempts => 5, job_key => 'crash-b') AS b \gset
COMMIT;
SELECT :a;
SELECT :b;
});

ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM jobq.jobs
 WHERE id IN ($a_id, $b_id) AND status = 'running' AND attempts = 1
UNION ALL
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND wait_event = 'PgSleep'},
		"2\n1"),
	'both jobs are claimed and the first one sleeps');

my $pid = $node->safe_psql('postgres',
	"SELECT worker_pid FROM jobq.jobs WHERE id = $a_id");
is( $node->safe_psql(
		'postgres', qq{
SELECT backend_type, wait_event FROM pg_stat_activity WHERE pid = $pid}),
	'jobq worker|PgSleep',
	'jobq.jobs.worker_pid is the worker running the job');

# A claim commits without waiting for its WAL flush (see jobq_flush_wal).
# Make it durable before the crash, so that the attempt is counted.
jobq_flush_wal($node);

my $log_offset = -s $node->logfile;
ok(kill('KILL', $pid), "kill -9 the worker $pid");

# The postmaster kills everything and restarts; the new worker finds the
# jobs of the dead one.
ok( $node->poll_query_until(
		'postgres',
		"SELECT status FROM jobq.jobs WHERE id = $a_id", 'dead'),
	'the job that was running is dead after the crash');
ok( $node->log_contains(
		qr/was terminated by signal 9/, $log_offset),
	'the postmaster saw the worker die');
ok( $node->log_contains(
		qr/all server processes terminated; reinitializing/, $log_offset),
	'the postmaster restarted after the crash');
is( $node->safe_psql(
		'postgres', qq{
SELECT status, attempts, last_error_sqlstate FROM jobq.jobs WHERE id = $a_id}),
	'dead|1|57P02',
	'out of attempts, the job of the killed worker is dead with 57P02');
like(
	$node->safe_psql(
		'postgres', "SELECT last_error FROM jobq.jobs WHERE id = $a_id"),
	qr/ended while the job was running/,
	'last_error says the worker ended while the job was running');

ok( $node->poll_query_until(
		'postgres',
		"SELECT status FROM jobq.jobs WHERE id = $b_id", 'succeeded'),
	'the job with attempts left ran again and succeeded');
is( $node->safe_psql(
		'postgres', "SELECT attempts FROM jobq.jobs WHERE id = $b_id"),
	'2', 'the interrupted attempt was counted');
is($node->safe_psql('postgres', 'SELECT * FROM marks'),
	'crash-b|2|57P02',
	'the job went back to pending with 57P02, then ran once to completion');

# ---------------------------------------------------------------------
# (a2) for a minute after a crash restart, claims are durable at once
# ---------------------------------------------------------------------

ok( $node->log_contains(
		qr/jobq: the server restarted after a crash; claims commit synchronously until/,
		$log_offset),
	'after the crash the launcher says claims commit synchronously for a while');

# Killed as soon as it is seen running, with nothing else committed in
# between: the attempt is counted only because the claim was flushed before
# the job started.  A job that crashes the server each time it runs ends
# dead instead of running for ever.
my $d_id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_sleep(300)"}', max_attempts => 1)});
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM jobq.jobs j JOIN pg_stat_activity a ON a.pid = j.worker_pid
 WHERE j.id = $d_id AND a.wait_event = 'PgSleep'}, '1'),
	'the job runs');
$pid = $node->safe_psql('postgres',
	"SELECT worker_pid FROM jobq.jobs WHERE id = $d_id");
$log_offset = -s $node->logfile;
ok(kill('KILL', $pid), "kill -9 the worker $pid at once");
ok( $node->poll_query_until(
		'postgres',
		"SELECT status || '|' || attempts || '|' || last_error_sqlstate FROM jobq.jobs WHERE id = $d_id",
		'dead|1|57P02'),
	'the claim was durable: the attempt counted, the job is dead with 57P02');
ok( $node->log_contains(
		qr/all server processes terminated; reinitializing/, $log_offset),
	'the postmaster restarted after the second crash');

# ---------------------------------------------------------------------
# (b) 1,000 jobs and two immediate restarts
# ---------------------------------------------------------------------

$node->append_conf('postgresql.conf', 'jobq.workers = 4');
$node->reload;
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'postgres'},
		'4'),
	'four workers after the reload');

$node->safe_psql(
	'postgres', q{
CREATE TABLE hits (n integer PRIMARY KEY);
SELECT count(*) FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql',
			format('INSERT INTO public.hits VALUES (%s); SELECT pg_sleep(0.02)', g))
			ORDER BY g)
	   FROM generate_series(1, 1000) g),
	queue => 'bulk', max_attempts => 5);
});

for my $threshold (150, 500)
{
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) >= $threshold FROM hits"),
		"at least $threshold jobs done");
	my $left = $node->safe_psql('postgres', q{
SELECT count(*) FROM jobq.jobs
 WHERE queue = 'bulk' AND status IN ('pending', 'running')});
	note "$left jobs pending or running at the immediate stop";
	$node->stop('immediate');
	$node->start;
}

ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.jobs
 WHERE queue = 'bulk' AND status IN ('pending', 'running')},
		'0'),
	'no bulk job is left pending or running');
is( $node->safe_psql(
		'postgres', 'SELECT count(*), count(DISTINCT n), min(n), max(n) FROM hits'),
	'1000|1000|1|1000',
	'every job inserted its row');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'),
	   count(*) FILTER (WHERE last_error_sqlstate = '23505')
  FROM jobq.jobs WHERE queue = 'bulk'}),
	'1000|1000|0',
	'every job succeeded and none ran again after committing');
note 'jobs that needed more than one attempt: '
  . $node->safe_psql('postgres',
	q{SELECT count(*) FROM jobq.jobs WHERE queue = 'bulk' AND attempts > 1});

# ---------------------------------------------------------------------
# (c) fast shutdown while a job runs
# ---------------------------------------------------------------------

my $c_id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_sleep(300)"}', job_key => 'fast')});
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM jobq.jobs j JOIN pg_stat_activity a ON a.pid = j.worker_pid
 WHERE j.id = $c_id AND j.status = 'running' AND j.attempts = 1
   AND a.wait_event = 'PgSleep'}, '1'),
	'the job runs');

$node->stop('fast');
$node->append_conf('postgresql.conf', 'jobq.workers = 0');
$node->start;

is( $node->safe_psql(
		'postgres', qq{
SELECT status, attempts, last_error_sqlstate FROM jobq.jobs WHERE id = $c_id}),
	'pending|1|57P01',
	'after a fast shutdown the job that ran is pending, its attempt counted, with 57P01');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'postgres'}),
	'0',
	'no worker runs with jobq.workers = 0');

$node->stop;

done_testing();
