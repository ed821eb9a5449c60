# 003_crash.pl: crashes, immediate restarts and fast shutdown.
#
# (a) kill -9 of a worker running a job: the postmaster restarts, the job
#     that was running is dead (57P02) when it has no attempts left, and a
#     job with attempts left runs again and succeeds; what the killed jobs
#     wrote before they were killed (WAL flushed, never committed) is gone.
# (b) 1,000 jobs survive two immediate restarts while they run: each stop
#     interrupts running jobs (the restarted workers return them), and every
#     job succeeds once and its effects are committed once.
# (a2) after a crash restart claims are durable before their jobs run (for
#     a minute): a job killed at once still has its attempt counted; on a
#     node that never crashed, the same kill loses the claim (the negative
#     control).  On both nodes the WAL writer waits 10 s between rounds
#     (wal_writer_delay) and has just done one, and no asynchronous commit
#     wakes it early (wal_writer_flush_after), so that it does not write
#     the claim first; autovacuum, whose commits would, is off.
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

my $crash_settings = q{
jobq.workers = 1
jobq.poll_interval = '1s'
jobq.retry_base_delay = '100ms'
restart_after_crash = on
wal_writer_delay = '10s'
wal_writer_flush_after = '1GB'
autovacuum = off
jobq.worker_idle_timeout = '1h'
};
my $node = jobq_node('crash', $crash_settings);
$node->safe_psql('postgres', 'CREATE EXTENSION jobq');

# Make the WAL writer do a round now, then sleep wal_writer_delay (10 s)
# before its next one.  What survives a kill -9 of a backend is the WAL
# written to the kernel, flushed or not: a claim's asynchronous commit is
# lost only if nothing writes it before the kill.  On PostgreSQL 15 an
# asynchronous commit wakes the WAL writer when it completes a page of WAL,
# and the WAL writer writes the completed pages only.  On 18 (XLogSet-
# AsyncXactLSN changed in between) it wakes the WAL writer once
# wal_writer_flush_after of WAL is unflushed, at once when that is 0, and
# the WAL writer then writes the commit too: with 0, the control node's
# claim was written within milliseconds of its commit (pg_walinspect and
# pg_stat_io on 18: the write position already past the claim's COMMIT
# record before the kill, one more write by the walwriter) and survived.
# So wal_writer_flush_after is more than this test ever writes, and on 18
# the WAL writer keeps to its timer: the commit below wakes it at once on
# 15, on 18 its timed round comes within 10 s.  Nothing else on the node
# writes WAL past what it flushes itself (autovacuum is off), so an
# asynchronous commit made in the next seconds stays in shared memory only.
# The write position reaching the last completed page shows the round done.
sub wal_writer_round
{
	my ($n) = @_;
	my $page = $n->safe_psql(
		'postgres', q{
SET synchronous_commit = off;
CREATE TABLE IF NOT EXISTS wal_pad (x text);
INSERT INTO wal_pad SELECT repeat('x', 100) FROM generate_series(1, 300);
SELECT pg_current_wal_insert_lsn() - (pg_current_wal_insert_lsn() - '0/0') % 8192;
});
	ok( $n->poll_query_until(
			'postgres', "SELECT pg_current_wal_lsn() >= '$page'"),
		'the WAL writer has done a round');
	return;
}

# ---------------------------------------------------------------------
# (a) kill -9 of a worker
# ---------------------------------------------------------------------

# Both jobs are committed together, so the only worker claims them in one
# batch, in id order: "a" writes a row of partial work, then sleeps; "b"
# writes one too, sleeps only at its first attempt and then records what it
# sees of itself.
$node->safe_psql('postgres', q{
CREATE TABLE marks (tag text, attempts integer, seen_sqlstate text);
CREATE TABLE partial (tag text, attempts integer);
});
my ($a_id, $b_id) = split /\n/, $node->safe_psql(
	'postgres', q{
BEGIN;
SELECT jobq.enqueue('sql', jsonb_build_object('sql', $s$
	INSERT INTO public.partial VALUES ('a', 1);
	SELECT pg_sleep(300)$s$),
	max_attempts => 1) AS a \gset
SELECT jobq.enqueue('sql', jsonb_build_object('sql', $s$
	INSERT INTO public.partial
		SELECT 'b', attempts FROM jobq.jobs WHERE job_key = 'crash-b';
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
# Make it durable before the crash, so that the attempt is counted; the
# rows the two jobs wrote are flushed too, uncommitted.
jobq_flush_wal($node);

my $log_offset = -s $node->logfile;
ok(kill('KILL', $pid), "kill -9 the worker $pid");
jobq_wait_restarted($node, $log_offset);

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
is($node->safe_psql('postgres', 'SELECT tag, attempts FROM partial ORDER BY tag, attempts'),
	'b|2',
	'what the killed attempts wrote before the kill is gone; only the second attempt of b committed');

# ---------------------------------------------------------------------
# (a2) for a minute after a crash restart, claims are durable at once
# ---------------------------------------------------------------------

ok( $node->log_contains(
		qr/jobq: the server restarted after a crash; claims commit synchronously until/,
		$log_offset),
	'after the crash the launcher says claims commit synchronously for a while');

# Killed as soon as it is seen running, with nothing else committed in
# between and the WAL writer asleep: the attempt is counted only because
# the claim was flushed before the job started.  A job that crashes the
# server each time it runs ends dead instead of running for ever.  The
# state the job is in once the restarted worker has dealt with it: dead
# (the claim survived the crash), or running again (it did not, and the
# job was claimed anew).
sub kill_at_once
{
	my ($n, $what) = @_;
	# the node's workers (they start on demand; the long idle timeout keeps
	# them, so that no worker leaves, pruning, meanwhile) are idle: what
	# they do as they start is over
	ok( $n->poll_query_until(
			'postgres', q{
SELECT count(*) FROM jobq.workers WHERE datname = 'postgres' AND state <> 'idle'}, '0'),
		"$what: no worker of the node is starting or busy");
	# What is read below, read once before: a first read may prune pages or
	# set hint bits, writing WAL (a full-page image after a checkpoint, and
	# with data checksums, PostgreSQL 18's default) whose commit wakes the
	# WAL writer, which would then write the claim too.  The worker runs a
	# job first, for the same reason.
	my $warm = $n->safe_psql('postgres',
		q{SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_sleep(0)"}')});
	jobq_wait_finished($n, $warm, "$what: a first job");
	$n->safe_psql(
		'postgres', q{
SELECT count(*) FROM jobq.jobs j JOIN pg_stat_activity a ON a.pid = j.worker_pid
 WHERE j.id = 0 AND a.wait_event = 'PgSleep';
SELECT worker_pid FROM jobq.jobs WHERE id = 0;
SELECT status = 'dead' OR (status = 'running' AND worker_pid <> 0) FROM jobq.jobs WHERE id = 0;});
	wal_writer_round($n);
	my $id = $n->safe_psql('postgres',
		q{SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_sleep(300)"}', max_attempts => 1)});
	ok( $n->poll_query_until(
			'postgres', qq{
SELECT count(*) FROM jobq.jobs j JOIN pg_stat_activity a ON a.pid = j.worker_pid
 WHERE j.id = $id AND a.wait_event = 'PgSleep'}, '1'),
		"$what: the job runs");
	my $killed = $n->safe_psql('postgres',
		"SELECT worker_pid FROM jobq.jobs WHERE id = $id");
	my $offset = -s $n->logfile;
	ok(kill('KILL', $killed), "$what: kill -9 the worker $killed at once");
	jobq_wait_restarted($n, $offset);
	ok( $n->poll_query_until(
			'postgres', qq{
SELECT status = 'dead' OR (status = 'running' AND worker_pid <> $killed)
  FROM jobq.jobs WHERE id = $id}),
		"$what: the restarted worker has dealt with the job");
	ok( $n->log_contains(
			qr/all server processes terminated; reinitializing/, $offset),
		"$what: the postmaster restarted after the crash");
	return $n->safe_psql('postgres',
		"SELECT status || '|' || attempts || '|' || coalesce(last_error_sqlstate, 'none') FROM jobq.jobs WHERE id = $id");
}

is(kill_at_once($node, 'after a crash'),
	'dead|1|57P02',
	'the claim was durable: the attempt counted, the job is dead with 57P02');

# The negative control: a node that never crashed commits claims without
# waiting for the flush, and the same kill loses the claim.  It shows that
# the check above can fail: with claims committed asynchronously there too,
# the job would run again instead.
my $control = jobq_node('nocrash', $crash_settings);
$control->safe_psql('postgres', 'CREATE EXTENSION jobq');
is(kill_at_once($control, 'no crash before'),
	'running|1|none',
	'without a crash before, the claim was not durable: the killed attempt left no trace, the job runs again');
$control->stop('immediate');

# ---------------------------------------------------------------------
# (b) 1,000 jobs and two immediate restarts
# ---------------------------------------------------------------------

$node->append_conf('postgresql.conf', 'jobq.workers = 4');
$node->reload;
ok( $node->poll_query_until(
		'postgres', q{SELECT current_setting('jobq.workers')}, '4'),
	'up to four workers after the reload (they start as the jobs come)');

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

# A restarted worker returns the jobs the stopped ones left running (and
# logs how many): so many jobs were interrupted by the stop.
for my $threshold (150, 500)
{
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) >= $threshold FROM hits"),
		"at least $threshold jobs done");
	my $left = $node->safe_psql('postgres', q{
SELECT count(*) FROM jobq.jobs
 WHERE queue = 'bulk' AND status IN ('pending', 'running')});
	note "$left jobs pending or running at the immediate stop";
	my $offset = -s $node->logfile;
	$node->stop('immediate');
	$node->start;
	my $returned = eval {
		local $PostgreSQL::Test::Utils::timeout_default = 60;
		$node->wait_for_log(qr/jobq returned \d+ jobs left running by workers that ended/, $offset);
		(slurp_file($node->logfile, $offset) =~ /jobq returned (\d+) jobs left running/)[0];
	};
	note 'jobs returned after the stop: ' . ($returned // 'none');
	ok(defined $returned && $returned > 0,
		"the immediate stop at $threshold interrupted jobs: the restarted workers returned them");
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
