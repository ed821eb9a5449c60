# 026_queues.pl: queues as objects (jobq.create_queue, alter_queue,
# drop_queue, pause_queue, resume_queue, jobq.queues), their precedence
# and the limits the claim keeps in shared memory, with four SQL workers:
#  - a concurrency limit of 1 and one of 3 hold under load: the running
#    jobs of each queue, sampled every 2 ms from another session, and the
#    jobs' own start and end times never exceed the limit; the limit of 3
#    does run jobs side by side;
#  - a rate limit of 20 a second gives 20 +- 1 starts a second over 10 s,
#    and never more than 20 in any second;
#  - a paused queue's jobs are not claimed while other queues' jobs run;
#    pausing a queue in full flow stops its claims within a claim cycle,
#    resuming it starts them again, and every job runs exactly once;
#  - a worker terminated while it runs the one job a queue of limit 1
#    allows frees its place: the next job runs; after a kill -9 and the
#    crash restart, the limit still holds;
#  - jobq.queues shows the running jobs, and every count is back to zero
#    (no entry left in shared memory) once the jobs are done;
#  - bad input is refused with its SQLSTATE and changes nothing;
#  - precedence: with no worker running, jobq._claim takes the jobs of
#    emails, photos, downloads and default in that order, whatever their
#    priority, for jobs enqueued before their queue was created or given
#    its precedence and after, by jobq.enqueue (with and without a key) and
#    jobq.enqueue_many.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'queues', q{
jobq.workers = 4
jobq.poll_interval = '1s'
jobq.retry_base_delay = '100ms'
restart_after_crash = on
});

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE runs (queue text, job bigint, started timestamptz, finished timestamptz);
CREATE FUNCTION work(payload jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	t timestamptz := clock_timestamp();
BEGIN
	PERFORM pg_sleep((payload ->> 'sleep')::float8);
	INSERT INTO runs VALUES (payload ->> 'queue', jobq.current_job(), t, clock_timestamp());
END $$;
SELECT jobq.register_kind('work', 'work(jsonb)');

-- the most running jobs of each queue seen, sampled until both are drained
CREATE FUNCTION sample_max(a text, b text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	ma int := 0;
	mb int := 0;
	c int;
	stop timestamptz := clock_timestamp() + interval '120 s';
BEGIN
	WHILE EXISTS (SELECT FROM jobq._queue WHERE queue IN (a, b)) AND clock_timestamp() < stop LOOP
		SELECT count(*) INTO c FROM jobq._queue WHERE queue = a AND status = 'running';
		ma := greatest(ma, c);
		SELECT count(*) INTO c FROM jobq._queue WHERE queue = b AND status = 'running';
		mb := greatest(mb, c);
		PERFORM pg_sleep(0.002);
	END LOOP;
	RETURN ma || '|' || mb;
END $$;

-- the most jobs of a queue that ran at the same moment, from their own times
CREATE FUNCTION overlap(q text) RETURNS bigint LANGUAGE sql AS $$
	SELECT max((SELECT count(*) FROM runs r2
				 WHERE r2.queue = q AND r2.started <= r.started AND r2.finished > r.started))
	  FROM runs r WHERE r.queue = q
$$;

CREATE FUNCTION enqueue_work(q text, n int, sleep float8) RETURNS void LANGUAGE sql AS $$
	SELECT jobq.enqueue_many('work',
		array(SELECT jsonb_build_object('queue', q, 'sleep', sleep) FROM generate_series(1, n)),
		queue => q)
$$;
});

# start_long($args): a job of kind work (the rest of jobq.enqueue's
# arguments: payload, queue ...) with one attempt, once it runs
sub start_long
{
	my ($args) = @_;
	my $id = $node->safe_psql('postgres', "SELECT jobq.enqueue('work', $args, max_attempts => 1)");
	$node->poll_query_until('postgres', "SELECT status = 'running' FROM jobq.jobs WHERE id = $id")
	  or die "job $id does not start";
	return $id;
}

sub all_done
{
	my ($queue, $what) = @_;
	ok( $node->poll_query_until(
			'postgres', "SELECT NOT EXISTS (SELECT FROM jobq._queue WHERE queue = '$queue')"),
		"$what: every job finished");
}

# ---- concurrency limits of 1 and 3 ---------------------------------------

$node->safe_psql(
	'postgres', q{
SELECT jobq.create_queue('archive', '{"concurrency": 1}');
SELECT jobq.create_queue('timetable', '{"concurrency": 3}');
});
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(name || ':' || concurrency || ':' || running, ',' ORDER BY name)
FROM jobq.queues}),
	'archive:1:0,timetable:3:0',
	'jobq.queues shows the queues and their limits');

$node->safe_psql(
	'postgres', q{
BEGIN;
SELECT enqueue_work('archive', 20, 0.05);
SELECT enqueue_work('timetable', 40, 0.05);
SELECT enqueue_work('free', 40, 0.05);
COMMIT;
});
my $max = $node->safe_psql('postgres', q{SELECT sample_max('archive', 'timetable')});
my ($max1, $max3) = split /\|/, $max;
cmp_ok($max1, '<=', 1, "concurrency 1: never more than one running job sampled (most: $max1)");
cmp_ok($max3, '<=', 3, "concurrency 3: never more than three running jobs sampled (most: $max3)");
all_done('archive', 'concurrency 1');
all_done('timetable', 'concurrency 3');
all_done('free', 'the queue without limits');
is($node->safe_psql('postgres', q{SELECT overlap('archive')}),
	'1', 'concurrency 1: no two jobs ran at the same moment');
my $overlap3 = $node->safe_psql('postgres', q{SELECT overlap('timetable')});
cmp_ok($overlap3, '<=', 3, "concurrency 3: never more than three at the same moment ($overlap3)");
cmp_ok($overlap3, '>=', 2, 'concurrency 3: jobs did run side by side');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT job) FROM runs}),
	'100|100', 'every job ran exactly once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq._queue_state() WHERE running > 0}),
	'0', 'no queue counts a running job once all are done');

# ---- concurrency keys -------------------------------------------------------

# one timetable rebuild per campus at a time, many campuses at once; two
# imports per school at a time (concurrency_per_key 2)
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION overlap_all(prefix text) RETURNS bigint LANGUAGE sql AS $$
	SELECT max((SELECT count(*) FROM runs r2
				 WHERE r2.queue LIKE prefix || '%' AND r2.started <= r.started AND r2.finished > r.started))
	  FROM runs r WHERE r.queue LIKE prefix || '%'
$$;
SELECT jobq.create_queue('imports', '{"concurrency_per_key": 2}');
BEGIN;
SELECT jobq.enqueue('work', jsonb_build_object('queue', 'campus:' || c, 'sleep', 0.05),
					queue => 'rebuilds', concurrency_key => 'campus:' || c)
  FROM generate_series(1, 4) c, generate_series(1, 6) i;
SELECT count(*) FROM jobq.enqueue_many('work',
	array(SELECT jsonb_build_object('queue', 'school:' || s, 'sleep', 0.05)
			FROM generate_series(1, 2) s, generate_series(1, 8) i ORDER BY i, s),
	queue => 'imports',
	concurrency_keys => array(SELECT 'school:' || s FROM generate_series(1, 2) s, generate_series(1, 8) i ORDER BY i, s));
COMMIT;
});
all_done('rebuilds', 'concurrency keys');
all_done('imports', 'concurrency keys of two');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(q || ':' || overlap(q), ',' ORDER BY q)
FROM (VALUES ('campus:1'), ('campus:2'), ('campus:3'), ('campus:4')) v(q)}),
	'campus:1:1,campus:2:1,campus:3:1,campus:4:1',
	'concurrency key, 1 per key: no two jobs of a campus ran at the same moment');
cmp_ok($node->safe_psql('postgres', q{SELECT overlap_all('campus:')}),
	'>=', 2, 'concurrency key: jobs of different campuses ran side by side');
my $schools = $node->safe_psql('postgres', q{SELECT max(overlap(q)) FROM (VALUES ('school:1'), ('school:2')) v(q)});
cmp_ok($schools, '<=', 2, "concurrency_per_key 2: never more than two jobs of a school at once ($schools)");
is( $node->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(*) FILTER (WHERE concurrency_key = payload ->> 'queue')
FROM jobq.jobs WHERE queue IN ('rebuilds', 'imports')}),
	'40|40', 'jobq.jobs keeps each job\'s concurrency key');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq._queue_state() WHERE running > 0}),
	'0', 'no queue or key counts a running job once all are done');

# a key held by a running job: the next job of the key waits; a retried job keeps its key
my $held = start_long(q{'{"queue": "held", "sleep": 600}', concurrency_key => 'k'});
my $waiting = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('work', '{"queue": "held", "sleep": 0}', concurrency_key => 'k')});
my $other = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('work', '{"queue": "held", "sleep": 0}', concurrency_key => 'other')});
jobq_wait_finished($node, $other, 'a job of another key');
is($node->safe_psql('postgres', "SELECT status FROM jobq.jobs WHERE id = $waiting"),
	'pending', 'a job of the held key waits');
is( $node->safe_psql(
		'postgres', q{
SELECT running FROM jobq._queue_state() WHERE concurrency_key = 'k';
CREATE ROLE plain;
SET ROLE plain;
SELECT count(*) FROM jobq._queue_state() WHERE concurrency_key IS NOT NULL;
RESET ROLE;}),
	"1\n0", 'jobq._queue_state() counts the held key, and shows keys to pg_monitor only');
$node->safe_psql('postgres', "SELECT jobq.cancel($held)");
$node->safe_psql('postgres', "SELECT pg_terminate_backend(worker_pid) FROM jobq._queue WHERE id = $held");
jobq_wait_finished($node, $waiting, 'the waiting job, once the key is free');
is( $node->safe_psql(
		'postgres', qq{
BEGIN;
SELECT count(*) FROM (SELECT jobq.retry($held)) r;
SELECT concurrency_key FROM jobq._queue WHERE id = $held;
ROLLBACK;}),
	"1\nk", 'a retried job keeps its concurrency key');

# ---- a rate of 20 a second -----------------------------------------------

$node->safe_psql('postgres', q{SELECT jobq.create_queue('sms', '{"rate": 20}')});
$node->safe_psql('postgres', q{SELECT enqueue_work('sms', 240, 0)});
all_done('sms', 'rate 20/s');
my $rate = $node->safe_psql(
	'postgres', q{
WITH s AS (SELECT started_at AS t FROM jobq.jobs WHERE queue = 'sms'),
	 t0 AS (SELECT min(t) AS t0 FROM s)
SELECT (SELECT count(*) FROM s, t0 WHERE t >= t0 + interval '1 s' AND t < t0 + interval '11 s')
	|| '|' || (SELECT max((SELECT count(*) FROM s s2 WHERE s2.t >= s1.t AND s2.t < s1.t + interval '1 s'))
				 FROM s s1)});
my ($in10, $per_second) = split /\|/, $rate;
ok($in10 >= 190 && $in10 <= 210, "rate 20/s: $in10 starts in 10 s (20 +- 1 a second)");
cmp_ok($per_second, '<=', 20, "rate 20/s: never more than 20 starts in any second ($per_second)");

# ---- pause and resume -----------------------------------------------------

$node->safe_psql(
	'postgres', q{
SELECT jobq.create_queue('photos');
SELECT jobq.pause_queue('photos');
});
$node->safe_psql('postgres', q{SELECT enqueue_work('photos', 5, 0)});
my $control = $node->safe_psql('postgres', q{SELECT jobq.enqueue('work', '{"queue": "control", "sleep": 0}', queue => 'control')});
jobq_wait_finished($node, $control, 'a job of another queue');
# a claim cycle later still
sleep 1;
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq._queue WHERE queue = 'photos' AND status = 'pending'}),
	'5', 'a paused queue\'s jobs stay pending while other jobs run');
is($node->safe_psql('postgres', q{SELECT paused FROM jobq.queues WHERE name = 'photos'}),
	't', 'jobq.queues shows it paused');
$node->safe_psql('postgres', q{SELECT jobq.resume_queue('photos')});
all_done('photos', 'resumed');

# in full flow: 300 jobs of 20 ms, paused after some have run
$node->safe_psql('postgres', q{SELECT enqueue_work('downloads', 300, 0.02)});
$node->poll_query_until('postgres', q{SELECT count(*) >= 20 FROM runs WHERE queue = 'downloads'})
  or die 'downloads do not run';
$node->safe_psql('postgres', q{CREATE TABLE paused_at AS SELECT clock_timestamp() AS t; SELECT jobq.create_queue('downloads', '{"paused": true}')});
ok( $node->poll_query_until(
		'postgres', q{SELECT NOT EXISTS (SELECT FROM jobq._queue WHERE queue = 'downloads' AND status = 'running')}),
	'paused in flow: the running jobs finish');
sleep 1;
my $late = $node->safe_psql(
	'postgres', q{
SELECT count(*) FROM jobq.jobs, paused_at
 WHERE queue = 'downloads' AND started_at > paused_at.t + interval '500 ms'});
is($late, '0', 'paused in flow: no job started more than a claim cycle after the pause');
my $left = $node->safe_psql('postgres', q{SELECT count(*) FROM jobq._queue WHERE queue = 'downloads'});
cmp_ok($left, '>', 0, "paused in flow: jobs are left pending ($left)");
$node->safe_psql('postgres', q{SELECT jobq.resume_queue('downloads')});
all_done('downloads', 'resumed in flow');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) || '|' || count(DISTINCT job) FROM runs WHERE queue = 'downloads'}),
	'300|300', 'paused and resumed in flow: every job ran exactly once');

# ---- a terminated worker frees its place ----------------------------------

my $slow = start_long(q{'{"queue": "archive", "sleep": 600}', queue => 'archive'});
my $next = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('work', '{"queue": "archive", "sleep": 0}', queue => 'archive')});
sleep 1;
is($node->safe_psql('postgres', "SELECT status FROM jobq.jobs WHERE id = $next"),
	'pending', 'limit 1: the next job waits while one runs');
is($node->safe_psql('postgres', q{SELECT running FROM jobq.queues WHERE name = 'archive'}),
	'1', 'jobq.queues shows the running job');
$node->safe_psql('postgres',
	"SELECT pg_terminate_backend(worker_pid) FROM jobq._queue WHERE id = $slow");
jobq_wait_finished($node, $next, 'the next job, once the running one\'s worker is terminated');
is($node->safe_psql('postgres', "SELECT status FROM jobq.jobs WHERE id = $slow"),
	'dead', 'the terminated job ended (one attempt)');

# ---- bad input -------------------------------------------------------------

my $before = $node->safe_psql('postgres', q{SELECT string_agg(to_jsonb(q)::text, ',' ORDER BY name) FROM jobq._queues q});
my @bad = (
	[q{SELECT jobq.create_queue('archive')}, '42710', 'a queue that exists'],
	[q{SELECT jobq.alter_queue('nope', '{"concurrency": 2}')}, '42704', 'altering an unknown queue'],
	[q{SELECT jobq.drop_queue('nope')}, '42704', 'dropping an unknown queue'],
	[q{SELECT jobq.pause_queue('nope')}, '42704', 'pausing an unknown queue'],
	[q{SELECT jobq.resume_queue('nope')}, '42704', 'resuming an unknown queue'],
	[q{SELECT jobq.alter_queue('archive', '{"concurrency": -1}')}, '22023', 'a negative limit'],
	[q{SELECT jobq.alter_queue('archive', '{"concurrency": 0}')}, '22023', 'a limit of 0'],
	[q{SELECT jobq.alter_queue('sms', '{"rate": 0}')}, '22023', 'a rate of 0'],
	[q{SELECT jobq.alter_queue('sms', '{"rate": 1.5}')}, '22023', 'a rate that is not whole'],
	[q{SELECT jobq.alter_queue('sms', '{"rate": "10"}')}, '22023', 'a rate as a string'],
	[q{SELECT jobq.alter_queue('sms', '{"rate_period": "0 s"}')}, '22023', 'a period of 0'],
	[q{SELECT jobq.alter_queue('sms', '{"rate_period": "2 days"}')}, '22023', 'a period over a day'],
	[q{SELECT jobq.alter_queue('sms', '{"rate_period": "soon"}')}, '22023', 'a period that is no interval'],
	[q{SELECT jobq.alter_queue('sms', '{"paused": "yes"}')}, '22023', 'paused that is no boolean'],
	[q{SELECT jobq.alter_queue('sms', '{"burst": 3}')}, '22023', 'an unknown setting'],
	[q{SELECT jobq.alter_queue('sms', '[]')}, '22023', 'settings that are no object'],
	[q{SELECT jobq.create_queue('', '{}')}, '22023', 'an empty name'],
	[q{SELECT jobq.create_queue(repeat('q', 64))}, '22023', 'a name over 63 bytes'],
	[q{SELECT jobq.create_queue(E'a\nb')}, '22023', 'a name with a line break'],
	[q{SELECT jobq.create_queue(NULL)}, '22004', 'a null name'],);
foreach my $case (@bad)
{
	my ($sql, $state, $what) = @$case;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	like($err, qr/ERROR:  $state:/, "refused with $state: $what");
}
is($node->safe_psql('postgres', q{SELECT string_agg(to_jsonb(q)::text, ',' ORDER BY name) FROM jobq._queues q}),
	$before, 'the refused calls changed nothing');

# ---- alter and drop --------------------------------------------------------

$node->safe_psql('postgres', q{SELECT jobq.alter_queue('sms', '{"rate": null, "concurrency": 2}')});
is( $node->safe_psql(
		'postgres', q{SELECT coalesce(rate::text, 'none') || '|' || concurrency FROM jobq.queues WHERE name = 'sms'}),
	'none|2', 'alter_queue removes a setting given as null and sets the others');
$node->safe_psql('postgres', q{SELECT jobq.drop_queue('photos')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq.queues WHERE name = 'photos'}),
	'0', 'drop_queue removes it');
$node->safe_psql('postgres', q{SELECT jobq.pause_queue('sms')});
$node->safe_psql('postgres', q{SELECT enqueue_work('sms', 3, 0)});
sleep 1;
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq._queue WHERE queue = 'sms'}),
	'3', 'paused again: its jobs wait');
$node->safe_psql('postgres', q{SELECT jobq.drop_queue('sms')});
all_done('sms', 'a dropped paused queue\'s jobs run as any queue\'s');
is($node->safe_psql('postgres', q{SELECT count(*) FROM jobq._queue_state() WHERE running > 0}),
	'0', 'no queue counts a running job at the end');

# ---- a crash restart ---------------------------------------------------------

# kill -9 of the worker running the one job queue solo allows: the counts
# start again from zero, and the job the last boot left running is reaped
# before any worker claims, so one job at a time still
$node->safe_psql('postgres', q{SELECT jobq.create_queue('solo', '{"concurrency": 1}')});
my $victim = start_long(q{'{"queue": "solo", "sleep": 600}', queue => 'solo'});
$node->safe_psql('postgres', q{SELECT enqueue_work('solo', 8, 0.1)});
my $victim_pid = $node->safe_psql('postgres', "SELECT worker_pid FROM jobq._queue WHERE id = $victim");
my $log_offset = -s $node->logfile;
ok(kill('KILL', $victim_pid), 'kill -9 of the worker running the job of solo');
jobq_wait_restarted($node, $log_offset);
my ($solo_max) = split /\|/, $node->safe_psql('postgres', q{SELECT sample_max('solo', 'solo')});
cmp_ok($solo_max, '<=', 1, "after the crash restart, never more than one running job sampled (most: $solo_max)");
all_done('solo', 'after the crash restart');
is($node->safe_psql('postgres', q{SELECT overlap('solo')}), '1', '... and no two ran at the same moment');
is($node->safe_psql('postgres', "SELECT status FROM jobq.jobs WHERE id = $victim"),
	'dead', 'the killed job was reaped (its one attempt spent)');

# ---- precedence ------------------------------------------------------------

# No worker, so that the claim order is read from jobq._claim (this
# session's claims, reaped by the workers once it is gone).
$node->safe_psql('postgres', q{ALTER SYSTEM SET jobq.workers = 0; SELECT pg_reload_conf()});
ok($node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM jobq.workers WHERE lane = 'sql'}),
	'no SQL worker left');
# jobs of downloads and photos wait before their queues exist; the seeds'
# order is made afterwards; new jobs come through each way of enqueuing
$node->safe_psql(
	'postgres', q{
SELECT jobq.enqueue('work', '{"queue": "default", "sleep": 0}') FROM generate_series(1, 3);
SELECT enqueue_work('downloads', 3, 0);
SELECT jobq.enqueue('work', '{"queue": "photos", "sleep": 0}', queue => 'photos') FROM generate_series(1, 3);
SELECT jobq.create_queue('emails', '{"precedence": -3}');
SELECT jobq.create_queue('photos', '{"precedence": -2}');
SELECT jobq.alter_queue('downloads', '{"precedence": 5}');  -- made by the pause test
SELECT jobq.alter_queue('downloads', '{"precedence": -1}');
SELECT jobq.enqueue('work', '{"queue": "emails", "sleep": 0}', queue => 'emails') FROM generate_series(1, 2);
SELECT enqueue_work('emails', 2, 0);
SELECT jobq.enqueue('work', '{"queue": "emails", "sleep": 0}', queue => 'emails', job_key => 'e' || i) FROM generate_series(1, 2) i;
SELECT enqueue_work('downloads', 2, 0);
SELECT jobq.enqueue('work', '{"queue": "default", "sleep": 0}', priority => -100);
});
is( $node->safe_psql(
		'postgres', q{
WITH c AS (SELECT id, n FROM jobq._claim(100) WITH ORDINALITY AS c(id, n)),
	 q AS (SELECT n, queue, lag(queue) OVER (ORDER BY n) AS prev FROM c JOIN jobq._queue USING (id))
SELECT string_agg(queue || ':' || (SELECT count(*) FROM q q2 WHERE q2.queue = q.queue), ',' ORDER BY n)
  FROM q WHERE prev IS DISTINCT FROM queue}),
	'emails:6,photos:3,downloads:5,default:4',
	'a claim takes emails, then photos, then downloads, then default, whatever the priority');
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(name || ':' || precedence, ',' ORDER BY precedence) FROM jobq.queues WHERE precedence <> 0}),
	'emails:-3,photos:-2,downloads:-1', 'jobq.queues shows the precedence');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET jobq.workers; SELECT pg_reload_conf()});
ok( $node->poll_query_until(
		'postgres', q{SELECT NOT EXISTS (SELECT FROM jobq._queue WHERE queue IN ('emails', 'photos', 'downloads', 'default'))}),
	'the claimed jobs, reaped once their claimer is gone, run');

$node->stop;
done_testing();
