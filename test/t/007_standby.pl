# 007_standby.pl: nothing runs on a standby until it is promoted.
#
# A streaming standby of a primary with jobq has no jobq launcher or worker
# while in recovery; jobs enqueued on the primary run on the primary and
# their results replicate.  After promotion a launcher and workers appear,
# a job that was running on the old primary is taken over, and new jobs
# run on the promoted node.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $primary = jobq_node(
	'primary', q{
jobq.workers = 2
jobq.poll_interval = '1s'
jobq.retry_base_delay = '100ms'
}, allows_streaming => 1);
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE log (n integer, ran_on text);
CREATE TABLE marks (attempts integer, seen_sqlstate text);
});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

my $jobq_processes = q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type IN ('jobq launcher', 'jobq worker')};

ok( $primary->poll_query_until(
		'postgres', q{
SELECT count(*) >= 1 FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'postgres'}),
	'the primary has a worker (the one that found jobq installed)');

# ---------------------------------------------------------------------
# Jobs run on the primary, the standby only replays them
# ---------------------------------------------------------------------

$primary->safe_psql(
	'postgres', q{
SELECT count(*) FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql',
			format($s$INSERT INTO public.log VALUES (%s, (SELECT CASE WHEN pg_is_in_recovery() THEN 'standby' ELSE 'primary' END))$s$, g)))
	   FROM generate_series(1, 20) g), queue => 'before');
});
ok( $primary->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.jobs WHERE queue = 'before' AND status = 'succeeded'},
		'20'),
	'the jobs enqueued on the primary ran');
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');
is($standby->safe_psql('postgres', $jobq_processes),
	'0', 'no jobq launcher or worker runs on the standby');
is( $standby->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE status = 'succeeded') FROM jobq.jobs WHERE queue = 'before'}),
	'20',
	'the standby sees the jobs as succeeded');
is( $standby->safe_psql(
		'postgres', 'SELECT ran_on, count(*) FROM log GROUP BY ran_on'),
	'primary|20',
	'the jobs ran on the primary only');
my ($ret, $out, $err) = $standby->psql('postgres',
	q{SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}')});
isnt($ret, 0, 'a standby refuses an enqueue');
like($err, qr/cannot execute jobq\.enqueue\(\) in a read-only transaction/,
	'with the read-only error');

# A job running on the primary when the standby is promoted: it sleeps at
# its first attempt only, and records what it sees of itself at the next.
my $b_id = $primary->safe_psql(
	'postgres', q{
SELECT jobq.enqueue('sql', jsonb_build_object('sql', $s$
	SELECT pg_sleep(300) FROM jobq.jobs WHERE job_key = 'failover' AND attempts = 1;
	INSERT INTO public.marks
		SELECT attempts, last_error_sqlstate FROM jobq.jobs WHERE job_key = 'failover'$s$),
	max_attempts => 5, job_key => 'failover')});
ok( $primary->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM jobq.jobs j JOIN pg_stat_activity a ON a.pid = j.worker_pid
 WHERE j.id = $b_id AND j.status = 'running' AND a.wait_event = 'PgSleep'},
		'1'),
	'the job runs on the primary');
# its claim committed without waiting for the flush: the walsender sends
# only flushed WAL
jobq_flush_wal($primary);
$primary->wait_for_catchup($standby);
is( $standby->safe_psql(
		'postgres', "SELECT status, attempts FROM jobq.jobs WHERE id = $b_id"),
	'running|1',
	'the standby sees the job running');
is($standby->safe_psql('postgres', $jobq_processes),
	'0', 'still no jobq launcher or worker on the standby');

# ---------------------------------------------------------------------
# Promotion
# ---------------------------------------------------------------------

# The old primary goes away, as in a failover.
$primary->stop('immediate');
$standby->promote;
ok( $standby->poll_query_until(
		'postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the standby is promoted');
ok( $standby->poll_query_until(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'jobq launcher'},
		'1'),
	'a jobq launcher runs on the promoted node');
ok( $standby->poll_query_until(
		'postgres', q{
SELECT count(*) >= 1 FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'postgres'}),
	'jobq workers run on the promoted node');

ok( $standby->poll_query_until(
		'postgres', "SELECT status FROM jobq.jobs WHERE id = $b_id",
		'succeeded'),
	'the job that was running on the old primary ran again on the new one');
is( $standby->safe_psql(
		'postgres', "SELECT attempts FROM jobq.jobs WHERE id = $b_id"),
	'2', 'its interrupted attempt on the old primary was counted');
is($standby->safe_psql('postgres', 'SELECT * FROM marks'),
	'2|57P02', 'it was returned to pending with 57P02 first');

my $new_id = $standby->safe_psql(
	'postgres', q{
SELECT jobq.enqueue('sql', '{"sql": "INSERT INTO public.log VALUES (0, (SELECT CASE WHEN pg_is_in_recovery() THEN ''standby'' ELSE ''promoted'' END))"}')});
ok( $standby->poll_query_until(
		'postgres', "SELECT status FROM jobq.jobs WHERE id = $new_id",
		'succeeded'),
	'a job enqueued on the promoted node runs');
is( $standby->safe_psql(
		'postgres', 'SELECT ran_on FROM log WHERE n = 0'),
	'promoted',
	'it ran on the promoted node');

$standby->stop;

done_testing();
