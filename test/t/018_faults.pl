# 018_faults.pl: fault loops while a large backlog drains; every job runs
# exactly once.
#
# (a) 20,000 SQL jobs of a few milliseconds each drain under four workers
#     while the test kills a random worker with SIGKILL at fixed points of
#     the drain (each kill restarts the whole server) and twice stops the
#     server with -m immediate and starts it again.
# (b) a primary with a synchronous standby is stopped -m immediate in the
#     middle of a drain; the standby is promoted and its workers finish the
#     rest.
#
# Each job inserts its own id and number into a table without constraints,
# so a job whose effects committed twice shows up as a double row instead
# of failing.  Why exactly once holds although claims commit asynchronously
# (see the header of src/worker.c): a job's effects and its move to
# jobq._done commit in one transaction, so a crash either keeps both or
# neither; a lost claim only leaves the job pending, and a claim that
# survived is reaped (57P02) and the job runs again with none of its
# earlier effects kept.  With synchronous replication the same transaction
# reaches the standby before any session sees it committed.
#
# The fault points are numbers of finished jobs, not times, so every fault
# lands while jobs remain; the loop ends after a fixed number of faults,
# at a point the drain does not reach, or after two minutes.
# Set JOBQ_FAULT_SEED to replay the choice of workers.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $seed = $ENV{JOBQ_FAULT_SEED} // int(time());
srand($seed);
note "random seed $seed (set JOBQ_FAULT_SEED=$seed to replay)";

my $settings = q{
jobq.workers = 4
jobq.max_workers = 6
jobq.poll_interval = '1s'
jobq.retry_base_delay = '100ms'
restart_after_crash = on
};

# The jobs: job $g inserts (its id, $g) and sleeps 5 ms.  Each may be
# interrupted by every fault, so it has attempts to spare.
sub enqueue_jobs
{
	my ($node, $queue, $count) = @_;
	$node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql',
			format('INSERT INTO public.hits VALUES (jobq.current_job(), %s); SELECT pg_sleep(0.005)', g))
			ORDER BY g)
	   FROM generate_series(1, $count) g),
	queue => '$queue', max_attempts => 100);
});
	return;
}

# Wait until at least $n jobs have committed their effects; returns how
# many jobs of $queue were still pending or running just after, or undef
# if that many never finished.
sub wait_hits
{
	my ($node, $queue, $n) = @_;
	ok($node->poll_query_until('postgres', "SELECT count(*) >= $n FROM hits"),
		"at least $n jobs done")
	  or return undef;
	return $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM jobq.jobs
 WHERE queue = '$queue' AND status IN ('pending', 'running')});
}

# The pids of the SQL workers of database postgres, once there is one
# (workers start on demand: while jobs are due, up to jobq.workers).
sub workers
{
	my ($node) = @_;
	my $query = q{
SELECT pid FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'postgres'};
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) >= 1 FROM ($query) w"),
		'workers run');
	return split /\n/, $node->safe_psql('postgres', $query);
}

# The checks of exactly once for the $count jobs of $queue.
sub check_exactly_once
{
	my ($node, $queue, $count, $what) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) FROM jobq.jobs
 WHERE queue = '$queue' AND status IN ('pending', 'running')}, '0'),
		"$what: no job is left pending or running");
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*), count(DISTINCT job_id), count(DISTINCT n), min(n), max(n)
  FROM hits}),
		"$count|$count|$count|1|$count",
		"$what: one row per job, none missing, none doubled");
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*), count(*) FILTER (WHERE status = 'succeeded')
  FROM jobq.jobs WHERE queue = '$queue'}),
		"$count|$count",
		"$what: every job succeeded");
	# as many distinct ids on each side: equal sets if one holds the other
	is( $node->safe_psql(
			'postgres', qq{
SELECT count(*) FROM (
	SELECT job_id FROM hits
	EXCEPT
	SELECT id FROM jobq.jobs WHERE queue = '$queue' AND status = 'succeeded') x}),
		'0',
		"$what: the rows were written by the succeeded jobs, one each");
	my $again = $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM jobq.jobs
 WHERE queue = '$queue' AND (attempts > 1 OR last_error_sqlstate = '57P02')});
	note "$what: $again jobs were interrupted and ran again";
	return $again;
}

# ---------------------------------------------------------------------
# (a) SIGKILL of random workers and immediate restarts during a drain
# ---------------------------------------------------------------------

my $node = jobq_node('faults', $settings);
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE hits (job_id bigint, n integer);
});

my $total = 20_000;
enqueue_jobs($node, 'drain', $total);
my $start = time();

# One fault every 1,500 jobs: a SIGKILL of a random worker, or at two of
# the points an immediate stop and start.
my $kills = 0;
my $restarts = 0;
for my $i (1 .. 11)
{
	# bounded in time too: no fault starts after two minutes
	if (time() - $start > 120)
	{
		note 'two minutes passed: no more faults';
		last;
	}
	my $left = wait_hits($node, 'drain', 1500 * $i);
	last unless defined $left;
	my $at = sprintf('%.1f s', time() - $start);
	if ($i == 4 || $i == 8)
	{
		note "$at: immediate restart with $left jobs pending or running";
		$node->stop('immediate');
		$node->start;
		$restarts++;
		next;
	}

	my @pids = workers($node);
	my $pid = $pids[ int(rand(@pids)) ];
	note "$at: kill -9 of worker $pid of (@pids), $left jobs pending or running";
	my $offset = -s $node->logfile;
	ok(kill('KILL', $pid), "kill -9 of worker $pid");
	jobq_wait_restarted($node, $offset);
	ok($node->log_contains(qr/\(PID $pid\) was terminated by signal 9/, $offset),
		"the postmaster saw worker $pid die and restarted");
	$kills++;
}
note "$kills kills and $restarts immediate restarts";

my $again = check_exactly_once($node, 'drain', $total, 'kills and restarts');
cmp_ok($again, '>', 0, 'the faults interrupted jobs that then ran again');
note sprintf('the drain took %.1f s', time() - $start);
my $returned = 0;
my $log = slurp_file($node->logfile);
$returned += $1 while $log =~ /jobq returned (\d+) jobs left running/g;
note "the workers returned $returned jobs left running by killed workers";

$node->stop;

# ---------------------------------------------------------------------
# (b) a synchronous standby promoted after an immediate stop mid-drain
# ---------------------------------------------------------------------

my $primary = jobq_node('faults_primary', $settings, allows_streaming => 1);
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE hits (job_id bigint, n integer);
});
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('faults_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;

# Only the primary waits for the standby (its application_name is its
# node name); the standby's configuration came from the backup, before this.
$primary->append_conf('postgresql.conf', q{
synchronous_standby_names = 'faults_standby'
synchronous_commit = on
});
$primary->reload;
ok( $primary->poll_query_until(
		'postgres', q{
SELECT sync_state FROM pg_stat_replication WHERE application_name = 'faults_standby'},
		'sync'),
	'the standby is synchronous');

my $failover_total = 10_000;
enqueue_jobs($primary, 'failover', $failover_total);
my $left = wait_hits($primary, 'failover', 4000);

# What the primary's sessions see as finished has reached the standby: each
# of these jobs must be finished there as it is here, not run again.
my %seen = map { $_ => 1 } split /\n/, $primary->safe_psql(
	'postgres', q{
SELECT id || ' ' || attempts || ' ' || finished_at FROM jobq.jobs
 WHERE queue = 'failover' AND status = 'succeeded'});
note scalar(keys %seen) . ' jobs seen succeeded on the primary';
cmp_ok($left // 0, '>', 0, 'jobs are left when the primary stops');
$primary->stop('immediate');

$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'the standby is promoted');
workers($standby);
check_exactly_once($standby, 'failover', $failover_total, 'promoted standby');

my %after = map { $_ => 1 } split /\n/, $standby->safe_psql(
	'postgres', q{
SELECT id || ' ' || attempts || ' ' || finished_at FROM jobq.jobs
 WHERE queue = 'failover' AND status = 'succeeded'});
my @missing = grep { !$after{$_} } sort keys %seen;
is(scalar(@missing), 0,
	'every job seen succeeded on the primary is unchanged on the promoted standby')
  or diag("first ones: @missing[0 .. ($#missing < 9 ? $#missing : 9)]");

$standby->stop;

done_testing();
