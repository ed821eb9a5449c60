# 004_wakeup.pl: idle workers are woken at once, not by polling.
#
# With jobq.poll_interval = 60s, a job enqueued while the workers sleep
# starts within 2 seconds (jobq.enqueue and jobq.enqueue_many wake a worker
# at COMMIT), and a job with a future run_at starts neither before run_at
# nor much after it (idle workers sleep until the next job is due).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'wakeup', q{
jobq.workers = 2
jobq.poll_interval = '60s'
});
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE stamps (tag text, at timestamptz);
});

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

$node->stop;

done_testing();
