# 024_pool.pl: one worker pool for the whole cluster, workers on demand.
#
# 1. Sixty databases with jobq, a pool of six (jobq.max_workers = 6), one
#    job enqueued in each: every job runs, never more than six workers run
#    (sampled by the jobs themselves and from outside), and once they are
#    idle for jobq.worker_idle_timeout only the launcher is left.
# 2. A job with run_at five seconds ahead and a failed job's retry, in a
#    database that has no worker when they come due, start within a second
#    of it; again after an immediate restart.
# 3. Starvation: with a backlog of 200,000 jobs in one database holding the
#    whole pool, twenty databases with ten jobs each all finish while the
#    big one still has jobs left, and the big one keeps draining meanwhile.
# 4. Databases dropped, created and renamed while the pool serves others:
#    no job is lost, none stuck, jobq.databases follows.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'pool', q{
jobq.max_workers = 6
jobq.workers = 2
jobq.worker_idle_timeout = '2s'
jobq.worker_yield_after = '1s'
jobq.poll_interval = '60s'
max_connections = 120
autovacuum = off
});

$node->safe_psql('postgres', 'CREATE EXTENSION jobq');

# The number of jobq workers (SQL and net) running in the cluster.
my $count_workers = q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type IN ('jobq worker', 'jobq net worker')};

# A template with jobq and a table for the jobs to write to.
$node->safe_psql('postgres', 'CREATE DATABASE tmpl');
$node->safe_psql('tmpl',
	'CREATE EXTENSION jobq; CREATE TABLE public.log (at timestamptz, n int)');

sub new_database
{
	my ($name) = @_;
	$node->safe_psql('postgres',
		"CREATE DATABASE $name TEMPLATE tmpl STRATEGY FILE_COPY");
	return;
}

# ---------------------------------------------------------------------
# 1. sixty databases, a pool of six
# ---------------------------------------------------------------------

new_database("t$_") for 1 .. 60;

# Each job sleeps a little, so that the pool fills, and records how many
# jobq workers the cluster ran at that moment as its database's comment
# (pg_shdescription is shared: one query sees them all).
my $job = q{DO $d$ BEGIN PERFORM pg_sleep(0.3); EXECUTE format('COMMENT ON DATABASE %I IS %L', current_database(), (SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('jobq worker', 'jobq net worker'))::text); END $d$};
$job =~ s/'/''/g;
$node->safe_psql("t$_",
	qq{SELECT jobq.enqueue('sql', jsonb_build_object('sql', '$job'))})
  for 1 .. 60;

my $ran_sql = q{
SELECT count(*) FROM pg_shdescription c JOIN pg_database d ON d.oid = c.objoid
 WHERE d.datname ~ '^t[0-9]+$'};
my $max_seen = 0;
my $all_ran = 0;
for (1 .. 1200)
{
	my $n = $node->safe_psql('postgres', $count_workers);
	$max_seen = $n if $n > $max_seen;
	if ($node->safe_psql('postgres', $ran_sql) == 60)
	{
		$all_ran = 1;
		last;
	}
	usleep(50_000);
}
ok($all_ran, 'the job of each of the sixty databases ran');
cmp_ok($max_seen, '<=', 6,
	'never more than jobq.max_workers workers, sampled from outside');
my $max_in_jobs = $node->safe_psql(
	'postgres', q{
SELECT max(c.description::int) FROM pg_shdescription c
  JOIN pg_database d ON d.oid = c.objoid WHERE d.datname ~ '^t[0-9]+$'});
is($max_in_jobs, '6',
	'the jobs saw the pool full, and never more than its six workers');

ok($node->poll_query_until('postgres', $count_workers, '0'),
	'after the idle timeout no worker is left');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'jobq launcher'}),
	'1',
	'only the launcher runs');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), sum(sql_workers + net_workers), count(*) FILTER (WHERE state = 'present')
  FROM jobq.databases WHERE datname ~ '^t[0-9]+$'}),
	'60|0|60',
	'jobq.databases lists the sixty databases, jobq present, no worker held');

$node->safe_psql('postgres', "DROP DATABASE t$_") for 1 .. 60;

# ---------------------------------------------------------------------
# 2. due jobs in a database without a worker
# ---------------------------------------------------------------------

$node->safe_psql('postgres',
	q{ALTER SYSTEM SET jobq.retry_base_delay = '5s'; SELECT pg_reload_conf()});
new_database('timed');

sub no_worker_in
{
	my ($db) = @_;
	return $node->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type IN ('jobq worker', 'jobq net worker') AND datname = '$db'},
		'0');
}

# The start of a job's last attempt, less the time it was due, in seconds;
# the due time is what the test read while the job was pending.
sub started_late
{
	my ($id, $due) = @_;
	return $node->safe_psql(
		'timed', qq{
SELECT extract(epoch FROM started_at - '$due'::timestamptz)
  FROM jobq.jobs WHERE id = $id AND status = 'succeeded'});
}

# A job due five seconds from now: its id and run_at.
sub enqueue_ahead
{
	my ($n) = @_;
	my $id = $node->safe_psql(
		'timed', qq{
SELECT jobq.enqueue('sql', '{"sql": "INSERT INTO public.log VALUES (clock_timestamp(), $n)"}',
					run_at => now() + interval '5 s')});
	return ($id,
		$node->safe_psql('timed', "SELECT run_at FROM jobq.jobs WHERE id = $id"));
}

sub due_on_time
{
	my ($when) = @_;

	# the database's worker has left
	ok(no_worker_in('timed'), "$when: no worker in the database");

	# a job five seconds ahead
	my ($id, $due) = enqueue_ahead(1);
	jobq_wait_finished_in('timed', $id, "$when: the job due in five seconds");
	my $late = started_late($id, $due);
	ok($late >= 0 && $late < 1,
		"$when: it started within a second of its run_at (${late}s)");

	# a job that fails once, retried five seconds later (jittered)
	$node->safe_psql('timed', 'DROP TABLE IF EXISTS public.later');
	my $fail = $node->safe_psql(
		'timed', q{
SELECT jobq.enqueue('sql', '{"sql": "INSERT INTO public.later VALUES (1)"}')});
	ok( $node->poll_query_until(
			'timed',
			"SELECT attempts = 1 AND status = 'pending' FROM jobq.jobs WHERE id = $fail"),
		"$when: the failing job failed once and waits for its retry");
	my $retry_at = $node->safe_psql('timed',
		"SELECT run_at FROM jobq.jobs WHERE id = $fail");
	$node->safe_psql('timed', 'CREATE TABLE public.later (n int)');
	ok(no_worker_in('timed'), "$when: the worker left before the retry was due");
	jobq_wait_finished_in('timed', $fail, "$when: the retry");
	$late = started_late($fail, $retry_at);
	ok($late >= 0 && $late < 1,
		"$when: the retry started within a second of its run_at (${late}s)");
	return;
}

sub jobq_wait_finished_in
{
	my ($db, $id, $what) = @_;
	ok( $node->poll_query_until(
			$db,
			"SELECT status NOT IN ('pending', 'running') FROM jobq.jobs WHERE id = $id"
		),
		"$what has finished");
	return;
}

due_on_time('running server');

# With no worker in the database, an enqueue rolled back starts none, and
# neither does one whose transaction has not committed yet (the launcher
# counts the workers it starts for each database in jobq.databases).
ok(no_worker_in('timed'), 'the worker has left again');
my $started = q{SELECT workers_started FROM jobq.databases WHERE datname = 'timed'};
my ($w0, $w1, $w2, $pending_id) = split /\|/, $node->safe_psql(
	'timed', qq{
$started \\gset w0_
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}') \\gset
ROLLBACK;
SELECT pg_sleep(1) \\gset
$started \\gset w1_
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 2"}') AS id \\gset
SELECT pg_sleep(2) \\gset
$started \\gset w2_
COMMIT;
SELECT :w0_workers_started, :w1_workers_started, :w2_workers_started, :id;
});
is("$w1|$w2", "$w0|$w0",
	'no worker starts for an enqueue rolled back, nor before its COMMIT');
jobq_wait_finished_in('timed', $pending_id, 'the job committed after 2 s');
cmp_ok($node->safe_psql('timed', $started), '>', $w0,
	'its COMMIT started a worker');

# After an immediate restart: the launcher knows nothing, probes the
# database, and its worker leaves telling when the job is due.
my ($late_id, $late_due) = enqueue_ahead(2);
$node->stop('immediate');
$node->start;
jobq_wait_finished_in('timed', $late_id, 'after an immediate restart, the job due in five seconds');
my $late = started_late($late_id, $late_due);
ok($late >= 0 && $late < 1,
	"after an immediate restart, it started within a second of its run_at (${late}s)");
due_on_time('after an immediate restart');

$node->safe_psql('postgres', 'DROP DATABASE timed');

# ---------------------------------------------------------------------
# 3. no database starves behind another's backlog
# ---------------------------------------------------------------------

$node->append_conf('postgresql.conf', "jobq.max_workers = 4\njobq.workers = 4\n");
$node->safe_psql('postgres', 'ALTER SYSTEM RESET jobq.retry_base_delay');
$node->restart;

new_database('big');
new_database("s$_") for 1 .. 20;

$node->safe_psql(
	'big', q{
SELECT count(*) FROM jobq.enqueue_many('sql',
	array_fill('{"sql": "SELECT pg_sleep(0.001)"}'::jsonb, ARRAY[200000]))});
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'big'},
		'4'),
	'the big database holds the whole pool');

$node->safe_psql("s$_",
	q{SELECT count(*) FROM jobq.enqueue_many('sql',
		array_fill('{"sql": "INSERT INTO public.log VALUES (clock_timestamp(), 1)"}'::jsonb, ARRAY[10]))}
) for 1 .. 20;

my $small_done = 1;
for my $i (1 .. 20)
{
	$small_done &&= $node->poll_query_until('s' . $i,
		q{SELECT count(*) = 10 FROM jobq.jobs WHERE status = 'succeeded'});
}
ok($small_done, 'the jobs of the twenty small databases all ran');

# when the small ones were enqueued and when their last job ended
my ($first_enqueued, $last_finished, $max_wait) = (undef, undef, 0);
for my $i (1 .. 20)
{
	my ($created, $finished, $wait) = split /\|/, $node->safe_psql(
		's' . $i, q{
SELECT min(created_at), max(finished_at),
	   extract(epoch FROM max(finished_at) - min(created_at))
  FROM jobq.jobs});
	$first_enqueued = $created
	  if !defined $first_enqueued || $created lt $first_enqueued;
	$last_finished = $finished
	  if !defined $last_finished || $finished gt $last_finished;
	$max_wait = $wait if $wait > $max_wait;
}
note("the slowest small database was done ${max_wait}s after its enqueue");

my ($during, $left) = split /\|/, $node->safe_psql(
	'big', qq{
SELECT count(*) FILTER (WHERE finished_at BETWEEN '$first_enqueued' AND '$last_finished'),
	   count(*) FILTER (WHERE status IN ('pending', 'running') OR finished_at > '$last_finished')
  FROM jobq.jobs});
cmp_ok($left, '>', 0,
	'the big database still had jobs left when the last small one was done');
cmp_ok($during, '>', 0,
	'the big database kept draining while the small ones ran');

# stop the backlog before going on
$node->safe_psql('postgres', "DROP DATABASE big WITH (FORCE)");
$node->safe_psql('postgres', "DROP DATABASE s$_") for 1 .. 20;

# ---------------------------------------------------------------------
# 4. dropping, creating and renaming databases while the pool serves others
# ---------------------------------------------------------------------

new_database($_) for qw(steady doomed renamed);

my $slow = q{SELECT count(*) FROM jobq.enqueue_many('sql',
	array_fill('{"sql": "INSERT INTO public.log SELECT clock_timestamp(), 1 FROM pg_sleep(0.2)"}'::jsonb, ARRAY[%d]))};
$node->safe_psql('steady', sprintf($slow, 40));
$node->safe_psql('doomed', sprintf($slow, 20));
$node->safe_psql('renamed', sprintf($slow, 20));

ok( $node->poll_query_until(
		'postgres', q{
SELECT count(DISTINCT datname) = 3 FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname IN ('steady', 'doomed', 'renamed')}),
	'the three databases have workers');

$node->safe_psql('postgres', 'DROP DATABASE doomed');
$node->safe_psql('postgres', 'ALTER DATABASE renamed RENAME TO moved');
new_database('fresh');
$node->safe_psql('fresh', sprintf($slow, 5));

for my $db (qw(steady moved fresh))
{
	my $n = $db eq 'steady' ? 40 : $db eq 'moved' ? 20 : 5;
	ok( $node->poll_query_until(
			$db, qq{
SELECT count(*) = $n FROM jobq.jobs WHERE status = 'succeeded'}),
		"$db: every job ran");
	is($node->safe_psql($db, 'SELECT count(*) FROM public.log'),
		$n, "$db: each job's row, once");
}

ok($node->poll_query_until('postgres', $count_workers, '0'),
	'no worker is left once the databases are idle');
is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(datname, ',' ORDER BY datname) FROM jobq.databases
 WHERE datname IN ('steady', 'doomed', 'renamed', 'moved', 'fresh')}),
	'fresh,moved,steady',
	'jobq.databases follows the drop, the rename and the new database');

$node->stop;
done_testing();
