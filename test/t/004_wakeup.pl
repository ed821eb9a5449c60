# 004_wakeup.pl: idle workers are woken at once, not by polling.
#
# With jobq.poll_interval = 60s, a job enqueued while the workers sleep
# starts within 2 seconds (jobq.enqueue and jobq.enqueue_many wake a worker
# at COMMIT), and a job with a future run_at starts neither before run_at
# nor much after it (idle workers sleep until the next job is due).  For
# both lanes (an SQL job, and an http job to a local server for the net
# worker): an enqueue that is rolled back wakes no worker, an enqueue in a
# transaction that sleeps 3 s before its COMMIT wakes none before the
# COMMIT (the lane's claims counter in jobq.workers does not move), and its
# job starts after the COMMIT and within 2 s of it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use Cwd qw(abs_path);
use File::Path qw(rmtree);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $dir = abs_path($PostgreSQL::Test::Utils::tmp_check) . '/wakeup';
rmtree($dir);
mkdir $dir or die "cannot create $dir: $!";
my $hp = jobq_start_server($dir, 'http', "$FindBin::RealBin/../net/http_server.py",
	'--log' => "$dir/http.log");

my $node = jobq_node(
	'wakeup', q{
jobq.workers = 2
jobq.poll_interval = '60s'
jobq.worker_idle_timeout = '1h'
jobq.http_allowed_hosts = '127.0.0.1'
});
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE stamps (tag text, at timestamptz);
});

# Workers start on demand; this test is about waking the ones that sleep.
# Two jobs claimed together bring the database's second SQL worker, and the
# long jobq.worker_idle_timeout keeps both.  (Starting workers where none
# is: 024_pool.pl.)
$node->safe_psql(
	'postgres', q{
SELECT count(*) FROM jobq.enqueue_many('sql',
	array_fill('{"sql": "SELECT pg_sleep(0.2)"}'::jsonb, ARRAY[2]))});

# Wait until both workers have been idle for $secs seconds: they sleep on
# their latch with a 60 s poll interval.
sub wait_idle
{
	my ($secs) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) FROM jobq.workers
 WHERE datname = 'postgres' AND lane = 'sql' AND state = 'idle'
   AND state_since < now() - interval '$secs seconds'},
			'2'),
		"both workers have been idle for $secs seconds");
	return;
}

# Wait at most $secs seconds until the jobs of tag $tag have finished.
sub wait_done_within
{
	my ($tag, $count, $secs) = @_;
	local $PostgreSQL::Test::Utils::timeout_default = $secs;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) FROM jobq.jobs
 WHERE payload->>'sql' LIKE '%''$tag''%' AND status = 'succeeded'},
			$count),
		"the $tag jobs finished within about $secs seconds");
	return;
}

sub stamp_job
{
	my ($tag) = @_;
	return qq{jsonb_build_object('sql',
		\$s\$INSERT INTO public.stamps VALUES ('$tag', clock_timestamp())\$s\$)};
}

# ---------------------------------------------------------------------
# jobq.enqueue wakes a sleeping worker
# ---------------------------------------------------------------------

wait_idle(3);
my $job = stamp_job('one');
my $one_id = $node->safe_psql('postgres', "SELECT jobq.enqueue('sql', $job)");
wait_done_within('one', 1, 10);

my $pickup = $node->safe_psql(
	'postgres', qq{
SELECT round(extract(epoch FROM j.started_at - j.created_at) * 1000),
	   round(extract(epoch FROM s.at - j.created_at) * 1000)
  FROM jobq.jobs j, stamps s WHERE j.id = $one_id AND s.tag = 'one'});
note "enqueue: pickup and stamp after creation, in ms: $pickup";
is( $node->safe_psql(
		'postgres', qq{
SELECT j.started_at - j.created_at < interval '2 seconds',
	   s.at - j.created_at < interval '2 seconds'
  FROM jobq.jobs j, stamps s WHERE j.id = $one_id AND s.tag = 'one'}),
	't|t',
	'a job enqueued while the workers sleep starts within 2 seconds');

# A second time, to see that the worker went back to sleep and is woken
# again.
wait_idle(2);
$job = stamp_job('two');
my $two_id = $node->safe_psql('postgres', "SELECT jobq.enqueue('sql', $job)");
wait_done_within('two', 1, 10);
is( $node->safe_psql(
		'postgres', qq{
SELECT j.started_at - j.created_at < interval '2 seconds',
	   s.at - j.created_at < interval '2 seconds'
  FROM jobq.jobs j, stamps s WHERE j.id = $two_id AND s.tag = 'two'}),
	't|t',
	'the next job enqueued while the workers sleep starts within 2 seconds');

# ---------------------------------------------------------------------
# jobq.enqueue_many wakes a sleeping worker
# ---------------------------------------------------------------------

wait_idle(2);
$job = stamp_job('many');
$node->safe_psql('postgres',
	"SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY[$job, $job, $job])");
wait_done_within('many', 3, 10);
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE started_at - created_at < interval '2 seconds')
  FROM jobq.jobs WHERE payload->>'sql' LIKE '%''many''%'}),
	'3',
	'jobs added by enqueue_many while the workers sleep start within 2 seconds'
);

# ---------------------------------------------------------------------
# A job due later is started when it is due
# ---------------------------------------------------------------------

wait_idle(2);
$job = stamp_job('later');
my $later_id = $node->safe_psql('postgres',
	"SELECT jobq.enqueue('sql', $job, run_at => now() + interval '3 seconds')");
is( $node->safe_psql(
		'postgres', "SELECT status FROM jobq.jobs WHERE id = $later_id"),
	'pending',
	'the job due later is pending');
wait_done_within('later', 1, 20);

my $timing = $node->safe_psql(
	'postgres', qq{
SELECT round(extract(epoch FROM j.started_at - j.run_at) * 1000),
	   round(extract(epoch FROM s.at - j.run_at) * 1000)
  FROM jobq.jobs j, stamps s WHERE j.id = $later_id AND s.tag = 'later'});
note "run_at job: start and stamp after run_at, in ms: $timing";
is( $node->safe_psql(
		'postgres', qq{
SELECT j.started_at >= j.run_at, s.at >= j.run_at
  FROM jobq.jobs j, stamps s WHERE j.id = $later_id AND s.tag = 'later'}),
	't|t',
	'a job is not started before its run_at');
is( $node->safe_psql(
		'postgres', qq{
SELECT j.started_at < j.run_at + interval '2 seconds',
	   s.at < j.run_at + interval '2 seconds'
  FROM jobq.jobs j, stamps s WHERE j.id = $later_id AND s.tag = 'later'}),
	't|t',
	'a job due later starts within 2 seconds of its run_at despite the 60 s poll interval'
);

# ---------------------------------------------------------------------
# At COMMIT, and only then: both lanes
# ---------------------------------------------------------------------

# In one session, with the lane's workers asleep (60 s poll): the lane's
# claims counter, an enqueue rolled back, the counter 1 s later, then an
# enqueue in a transaction that sleeps 3 s, the counter and the job's
# status at the end of that sleep, and the time just before its COMMIT.
# A worker woken by the rolled-back or the uncommitted enqueue would claim
# (and count the claim) at once, find nothing it may see, and sleep for
# 60 s: the job would then start long after the COMMIT.
sub enqueue_at_commit
{
	my ($lane, $kind, $payload) = @_;
	my $claims = qq{SELECT sum(claims) FROM jobq.workers
 WHERE datname = current_database() AND lane = '$lane'};
	my $out = $node->safe_psql(
		'postgres', qq{
$claims \\gset c0_
BEGIN;
SELECT jobq.enqueue('$kind', $payload) AS rolled_back \\gset
ROLLBACK;
SELECT pg_sleep(1) \\gset
$claims \\gset c1_
BEGIN;
SELECT jobq.enqueue('$kind', $payload) AS id \\gset
SELECT pg_sleep(3) \\gset
$claims \\gset c2_
SELECT status FROM jobq.jobs WHERE id = :id \\gset
SELECT clock_timestamp() AS before_commit \\gset
COMMIT;
SELECT :c0_sum, :c1_sum, :c2_sum, :'status', :id, :'before_commit';
});
	my ($c0, $c1, $c2, $status, $id, $before_commit) = split /\|/, $out;
	note "$lane lane: claims $c0 before, $c1 after the ROLLBACK, $c2 before the COMMIT";
	is($c1, $c0, "$lane lane: an enqueue rolled back wakes no worker (no claim in the next second)");
	is("$c2|$status", "$c1|pending",
		"$lane lane: an enqueue wakes no worker before its COMMIT (no claim in 3 s)");
	jobq_wait_finished($node, $id, "$lane lane: the job enqueued before a 3 s sleep");
	my $timing = $node->safe_psql('postgres', qq{
SELECT round(extract(epoch FROM started_at - '$before_commit') * 1000)
  FROM jobq.jobs WHERE id = $id});
	note "$lane lane: the job started $timing ms after the moment before its COMMIT";
	is( $node->safe_psql(
			'postgres', qq{
SELECT status, started_at >= '$before_commit', started_at < timestamptz '$before_commit' + interval '2 seconds'
  FROM jobq.jobs WHERE id = $id}),
		'succeeded|t|t',
		"$lane lane: the job starts after its COMMIT, within 2 s of it despite the 60 s poll");
	return;
}

wait_idle(2);
enqueue_at_commit('sql', 'sql', stamp_job('commit'));

# The net worker: one request first, after which it waits for the poll
# interval (60 s) with nothing in flight.
my $warm = $node->safe_psql('postgres',
	"SELECT jobq.enqueue('http', '{\"url\": \"http://127.0.0.1:$hp/ok/warm\"}')");
jobq_wait_finished($node, $warm, 'a first http job');
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.workers
 WHERE datname = 'postgres' AND lane = 'net' AND in_flight = 0}, '1'),
	'the net worker has nothing in flight');
enqueue_at_commit('net', 'http', qq{'{"url": "http://127.0.0.1:$hp/ok/commit"}'});

$node->stop;

done_testing();
