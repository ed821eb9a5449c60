# 002_retry.pl: failing jobs, retries, backoff, timeouts and isolation of jobs.
#
# A failing job is retried with growing delays, capped at
# jobq.retry_max_delay, each attempt starting no earlier than the run_at its
# failure set, and ends dead with its error (message, SQLSTATE, context);
# jobq.retry() runs it again with a fresh count of attempts; a job over its
# timeout fails with 57014, and the timeout of a job that finished in time
# does not cancel the job after it; a failed job's effects are rolled back
# while the rest of its batch commits, and the jobs a failure rolled back
# run again (in subtransactions, as does the next batch); settings a job
# changes do not leak into the next job run by the same worker.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'retry', q{
jobq.workers = 1
jobq.poll_interval = '1s'
jobq.retry_base_delay = '200ms'
jobq.retry_max_delay = '400ms'
});
$node->safe_psql('postgres', 'CREATE EXTENSION jobq');

# Run $sql and return (psql exit code, stderr).
sub psql_err
{
	my ($sql) = @_;
	my ($out, $err);
	my $ret = $node->psql('postgres', $sql, stdout => \$out, stderr => \$err);
	return ($ret, $err);
}

# ---------------------------------------------------------------------
# A handler failing with a custom SQLSTATE: retries with growing delays
# ---------------------------------------------------------------------

# The handler fails until public.flag says ok.  watch_delays() follows one
# job from a single session, taking a fresh snapshot every few
# milliseconds, and returns for each failed attempt the delay the job was
# given (run_at - last_error_at) while it waits to be tried again, and how
# long after that run_at the next attempt started (its started_at, kept
# while it waits again or once it is dead).
$node->safe_psql(
	'postgres', q{
CREATE TABLE flag (ok boolean NOT NULL);
INSERT INTO flag VALUES (false);
CREATE TABLE flaky_done (name text);

CREATE FUNCTION flaky(p jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	IF NOT (SELECT ok FROM public.flag) THEN
		RAISE EXCEPTION 'flaky job % is not ready', p->>'name'
			USING ERRCODE = 'JQ001';
	END IF;
	INSERT INTO public.flaky_done VALUES (p->>'name');
	RETURN jsonb_build_object('done', p->>'name');
END
$$;
SELECT jobq.register_kind('test.flaky', 'flaky(jsonb)');

CREATE FUNCTION watch_delays(job bigint)
RETURNS TABLE (attempt integer, delay_ms numeric, next_start_ms numeric)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
	seen integer := 0;
	started integer := 0;
	run_ats timestamptz[] := '{}';
	starts timestamptz[] := '{}';
	deadline timestamptz := clock_timestamp() + interval '120 seconds';
BEGIN
	LOOP
		SELECT j.status, j.attempts, j.run_at, j.last_error_at, j.started_at INTO r
		  FROM jobq.jobs j WHERE j.id = job;
		IF r.attempts > started THEN
			started := r.attempts;
			starts[started] := r.started_at;
		END IF;
		IF r.status = 'pending' AND r.attempts > seen THEN
			seen := r.attempts;
			run_ats[seen] := r.run_at;
			attempt := r.attempts;
			delay_ms := round(extract(epoch FROM r.run_at - r.last_error_at) * 1000);
			next_start_ms := NULL;
			RETURN NEXT;
		END IF;
		EXIT WHEN r.status IS NULL OR r.status NOT IN ('pending', 'running')
			OR clock_timestamp() > deadline;
		PERFORM pg_sleep(0.005);
	END LOOP;
	-- the start of attempt n + 1 against the run_at attempt n's failure set
	FOR n IN 1 .. seen LOOP
		attempt := n;
		delay_ms := NULL;
		next_start_ms := round(extract(epoch FROM starts[n + 1] - run_ats[n]) * 1000);
		RETURN NEXT;
	END LOOP;
END
$$;
});

my $out = $node->safe_psql(
	'postgres', q{
SELECT jobq.enqueue('test.flaky', '{"name": "one"}', max_attempts => 4) AS id \gset
SELECT :id;
SELECT attempt, coalesce(delay_ms::text, 'start'), coalesce(next_start_ms::text, '')
  FROM watch_delays(:id) ORDER BY delay_ms IS NULL, attempt;
});
my ($flaky_id, @watched) = split /\n/, $out;
my (%delay, %next_start);
for (@watched)
{
	my ($attempt, $delay, $start) = split /\|/, $_, -1;
	if ($delay eq 'start') { $next_start{$attempt} = $start }
	else { $delay{$attempt} = $delay }
}
note 'delays after each failed attempt (attempt: ms): '
  . join(', ', map { "$_: $delay{$_}" } sort keys %delay);
note 'the next attempt started after that run_at (attempt: ms): '
  . join(', ', map { "$_: $next_start{$_}" } sort keys %next_start);

is(join(',', sort keys %delay), '1,2,3',
	'the job waited three times before being tried again, after attempts 1 to 3');
# retry_base_delay = 200ms doubling, capped by retry_max_delay = 400ms, then
# +-25% jitter: about 150..250 ms, 300..500 ms, and 300..500 ms again where
# 800 ms uncapped would be 600..1000.  The bounds of the first two are
# wider; what matters is the growth, and the cap.
ok(defined $delay{1} && $delay{1} >= 100 && $delay{1} <= 300,
	'the first delay is about jobq.retry_base_delay');
ok(defined $delay{2} && $delay{2} >= 200 && $delay{2} <= 600,
	'the second delay is about twice jobq.retry_base_delay');
ok(defined $delay{1} && defined $delay{2} && $delay{2} > $delay{1},
	'the delays grow');
ok(defined $delay{3} && $delay{3} >= 290 && $delay{3} <= 510,
	'the third delay (800 ms uncapped) is capped by jobq.retry_max_delay (400 ms +-25%)');
is( join(',', map { defined $next_start{$_} && $next_start{$_} ne '' && $next_start{$_} >= 0 ? 'after' : 'before' } 1 .. 3),
	'after,after,after',
	'each attempt after a failure starts at or after the run_at that failure set');

jobq_wait_finished($node, $flaky_id, 'flaky job');
is( $node->safe_psql(
		'postgres', qq{
SELECT status, attempts, last_error_sqlstate, finished_at IS NOT NULL
  FROM jobq.jobs WHERE id = $flaky_id}),
	'dead|4|JQ001|t',
	'after max_attempts failures the job is dead with the custom SQLSTATE');
like(
	$node->safe_psql(
		'postgres', "SELECT last_error FROM jobq.jobs WHERE id = $flaky_id"),
	qr/flaky job one is not ready/,
	'last_error holds the error message');
like(
	$node->safe_psql(
		'postgres',
		"SELECT last_error_context FROM jobq.jobs WHERE id = $flaky_id"),
	qr/flaky/,
	'last_error_context holds the error context');

# jobq.retry() makes it pending again with a fresh count of attempts.  The
# handler still fails, so it dies again after four new attempts.
is( $node->safe_psql(
		'postgres', qq{
BEGIN;
SELECT jobq.retry($flaky_id);
SELECT status, attempts FROM jobq.jobs WHERE id = $flaky_id;
COMMIT;}),
	"t\npending|0",
	'jobq.retry makes a dead job pending with no attempts');
jobq_wait_finished($node, $flaky_id, 'retried flaky job');
is( $node->safe_psql(
		'postgres',
		"SELECT status, attempts FROM jobq.jobs WHERE id = $flaky_id"),
	'dead|4',
	'the retried job was tried max_attempts times again');

# Once the cause is fixed, a retry succeeds.
$node->safe_psql('postgres', 'UPDATE flag SET ok = true');
is($node->safe_psql('postgres', "SELECT jobq.retry($flaky_id)"),
	't', 'jobq.retry of a dead job returns true');
jobq_wait_finished($node, $flaky_id, 'fixed flaky job');
is( $node->safe_psql(
		'postgres',
		"SELECT status, attempts, result FROM jobq.jobs WHERE id = $flaky_id"),
	'succeeded|1|{"done": "one"}',
	'after the fix the same job succeeds');
is($node->safe_psql('postgres', 'SELECT name FROM flaky_done'),
	'one', 'the successful attempt committed its effects once');

my ($ret, $err) =
  psql_err("\\set VERBOSITY verbose\nSELECT jobq.retry($flaky_id)");
ok($ret != 0, 'jobq.retry of a succeeded job fails');
like($err, qr/55000/, 'jobq.retry of a succeeded job raises 55000');
($ret, $err) =
  psql_err("\\set VERBOSITY verbose\nSELECT jobq.retry(987654321)");
ok($ret != 0, 'jobq.retry of an unknown job fails');
like($err, qr/42704.*job 987654321 does not exist/,
	'jobq.retry of an unknown job raises 42704');

# ---------------------------------------------------------------------
# sql kind: an error of the statement
# ---------------------------------------------------------------------

my $div_id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('sql', '{"sql": "SELECT 1/0"}', max_attempts => 2)}
);
jobq_wait_finished($node, $div_id, 'division by zero');
is( $node->safe_psql(
		'postgres', qq{
SELECT status, attempts, last_error_sqlstate, last_error_context IS NOT NULL
  FROM jobq.jobs WHERE id = $div_id}),
	'dead|2|22012|t',
	'a sql job dividing by zero ends dead with 22012 and a context');
like(
	$node->safe_psql(
		'postgres', "SELECT last_error FROM jobq.jobs WHERE id = $div_id"),
	qr/division by zero/,
	'last_error holds the message of the sql job');

# ---------------------------------------------------------------------
# Timeouts
# ---------------------------------------------------------------------

my $slow_id = $node->safe_psql(
	'postgres', q{
SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_sleep(30)"}',
					max_attempts => 1, timeout => '300ms')});
jobq_wait_finished($node, $slow_id, 'job over its timeout');
is( $node->safe_psql(
		'postgres', qq{
SELECT status, attempts, last_error_sqlstate FROM jobq.jobs WHERE id = $slow_id}
	),
	'dead|1|57014',
	'a job over its timeout is cancelled with 57014 and, out of attempts, dead'
);
like(
	$node->safe_psql(
		'postgres', "SELECT last_error FROM jobq.jobs WHERE id = $slow_id"),
	qr/timeout/,
	'last_error says the job ran into its timeout');

# A kind's timeout applies to its jobs.
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION nap(p jsonb) RETURNS void LANGUAGE sql
	AS $$ SELECT pg_sleep((p->>'s')::float8) $$;
SELECT jobq.register_kind('test.nap', 'nap(jsonb)', timeout => '300ms',
						  max_attempts => 1);
});
my $nap_id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('test.nap', '{"s": 30}')});
jobq_wait_finished($node, $nap_id, 'job over its kind timeout');
is( $node->safe_psql(
		'postgres', qq{
SELECT status, attempts, last_error_sqlstate FROM jobq.jobs WHERE id = $nap_id}
	),
	'dead|1|57014',
	'the timeout of a kind cancels its jobs with 57014');

# ---------------------------------------------------------------------
# Settings do not leak from one job to the next of the same worker
# ---------------------------------------------------------------------

# One worker, one transaction: b0, evil, b1, evil2 (fails), b2 and slow are
# claimed in this order in one batch by the only worker.  The five first
# have a timeout of 300 ms; slow has none and runs 600 ms, so a timeout of
# an earlier job left armed would cancel it.
$node->safe_psql(
	'postgres', q{
CREATE TABLE seen (label text, work_mem text, search_path text,
				   statement_timeout text, application_name text);
BEGIN;
SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY[
	jsonb_build_object('sql', $s$INSERT INTO public.seen SELECT 'b0', current_setting('work_mem'), current_setting('search_path'), current_setting('statement_timeout'), current_setting('application_name')$s$),
	jsonb_build_object('sql', $s$SET search_path = evil; SET work_mem = '77MB'; SET statement_timeout = '77s'; SET application_name = 'evil'$s$),
	jsonb_build_object('sql', $s$INSERT INTO public.seen SELECT 'b1', current_setting('work_mem'), current_setting('search_path'), current_setting('statement_timeout'), current_setting('application_name')$s$),
	jsonb_build_object('sql', $s$SET work_mem = '99MB'; SET search_path = evil2; SELECT 1/0$s$),
	jsonb_build_object('sql', $s$INSERT INTO public.seen SELECT 'b2', current_setting('work_mem'), current_setting('search_path'), current_setting('statement_timeout'), current_setting('application_name')$s$)
	], max_attempts => 1, timeout => '300ms');
SELECT jobq.enqueue('sql', jsonb_build_object('sql', $s$SELECT pg_sleep(0.6); INSERT INTO public.seen VALUES ('slow')$s$),
					max_attempts => 1) IS NOT NULL;
COMMIT;
});
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.jobs WHERE status IN ('pending', 'running')},
		'0'),
	'the settings jobs have finished');

is( $node->safe_psql(
		'postgres', q{
SELECT payload->>'sql' LIKE 'SET work_mem%', status FROM jobq.jobs
 WHERE id > (SELECT max(id) FROM jobq.jobs WHERE kind = 'test.nap')
 ORDER BY id}),
	"f|succeeded\nf|succeeded\nf|succeeded\nt|dead\nf|succeeded\nf|succeeded",
	'only the job dividing by zero failed');

# The next job in a new batch must see the defaults too.
my $b3_id = $node->safe_psql(
	'postgres', q{
SELECT jobq.enqueue('sql', jsonb_build_object('sql', $s$INSERT INTO public.seen SELECT 'b3', current_setting('work_mem'), current_setting('search_path'), current_setting('statement_timeout'), current_setting('application_name')$s$))});
jobq_wait_finished($node, $b3_id, 'settings job in a later batch');

my $defaults = $node->safe_psql('postgres',
	q{SELECT current_setting('work_mem'), current_setting('search_path'), current_setting('statement_timeout')}
);
unlike($defaults, qr/evil|77MB|77s/,
	'the settings the jobs change differ from the defaults');
my $b0 = $node->safe_psql('postgres',
	q{SELECT work_mem, search_path, statement_timeout, application_name FROM seen WHERE label = 'b0'}
);
is($b0, "$defaults|jobq worker",
	'a job sees the default settings and the worker application name');
for my $label ('b1', 'b2', 'b3')
{
	is( $node->safe_psql(
			'postgres',
			qq{SELECT work_mem, search_path, statement_timeout, application_name FROM seen WHERE label = '$label'}
		),
		$b0,
		"job $label sees the same settings as the first job: nothing leaked");
}
is( $node->safe_psql(
		'postgres', q{
SELECT string_agg(coalesce(timeout::text, 'none'), ',' ORDER BY id) FROM jobq.jobs
 WHERE id > (SELECT max(id) FROM jobq.jobs WHERE kind = 'test.nap') AND id < (SELECT max(id) FROM jobq.jobs)}),
	'00:00:00.3,00:00:00.3,00:00:00.3,00:00:00.3,00:00:00.3,none',
	'the five jobs before slow have a timeout of 300 ms, slow has none');
is($node->safe_psql('postgres', q{SELECT count(*) FROM seen WHERE label = 'slow'}),
	'1', 'a timeout of an earlier job does not cancel a later job');

# ---------------------------------------------------------------------
# A failed job's effects are rolled back, the rest of its batch commits
# ---------------------------------------------------------------------

# Pass once $n jobs of queue $queue have finished.
sub wait_queue_finished
{
	my ($queue, $n, $what) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) FROM jobq.jobs
 WHERE queue = '$queue' AND status NOT IN ('pending', 'running')},
			$n),
		$what);
	return;
}

$node->safe_psql(
	'postgres', q{
CREATE TABLE rb (n integer);
SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY[
	'{"sql": "INSERT INTO public.rb VALUES (1); SELECT 1/0"}'::jsonb,
	'{"sql": "INSERT INTO public.rb VALUES (2)"}'::jsonb,
	'{"sql": "INSERT INTO public.rb VALUES (3); SELECT * FROM public.no_such_table"}'::jsonb,
	'{"sql": "INSERT INTO public.rb VALUES (4)"}'::jsonb
	], queue => 'rb', max_attempts => 1);
});
wait_queue_finished('rb', 4, 'the rollback jobs have finished');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(status, ',' ORDER BY id) FROM jobq.jobs WHERE queue = 'rb'}
	),
	'dead,succeeded,dead,succeeded',
	'the failing jobs are dead, the others succeeded');
is($node->safe_psql('postgres', 'SELECT string_agg(n::text, \',\' ORDER BY n) FROM rb'),
	'2,4', 'a failed job leaves no row behind, its neighbours commit');

# ---------------------------------------------------------------------
# Jobs run in the batch's transaction; a failure rolls back those before
# it, which run again, each in a subtransaction, as does the next batch
# ---------------------------------------------------------------------

# Each ok job inserts its row and takes a number from a sequence, which no
# rollback gives back: the sequence counts the runs, the table the runs
# that committed.  One worker claims each enqueue_many's jobs in one batch,
# in id order, once its claims have grown past 4 jobs: a claim after a
# batch that finished doubles, and four single jobs first see to it (and
# end the isolation that the failures above began).
$node->safe_psql(
	'postgres', q{
CREATE SEQUENCE runs;
CREATE TABLE once (n integer, run bigint);
});
for my $i (1 .. 4)
{
	my $id = $node->safe_psql('postgres',
		q{SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}')});
	jobq_wait_finished($node, $id, "warm-up job $i");
}

# Run ok jobs $from .. $from + 1, a job dividing by zero, and ok job
# $from + 2, all in one enqueue_many into queue $queue; wait for them.
sub run_batch_with_failure
{
	my ($queue, $from) = @_;
	my @sql = (
		(map { "INSERT INTO public.once VALUES ($_, nextval('public.runs'))" } $from, $from + 1),
		'SELECT 1/0',
		"INSERT INTO public.once VALUES (@{[ $from + 2 ]}, nextval('public.runs'))");
	my $array = join(', ', map { "jsonb_build_object('sql', \$s\$$_\$s\$)" } @sql);
	$node->safe_psql('postgres',
		"SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY[$array], queue => '$queue', max_attempts => 1)");
	wait_queue_finished($queue, 4, "the jobs of queue $queue have finished");
	is( $node->safe_psql(
			'postgres', qq{
SELECT string_agg(status || '/' || attempts || '/' || coalesce(last_error_sqlstate, ''), ',' ORDER BY id)
  FROM jobq.jobs WHERE queue = '$queue'}),
		'succeeded/1/,succeeded/1/,dead/1/22012,succeeded/1/',
		"queue $queue: the failing job is dead with its error, at its first attempt; the others succeeded");
	return;
}

run_batch_with_failure('together', 1);
is($node->safe_psql('postgres', 'SELECT string_agg(n::text, \',\' ORDER BY n) FROM once'),
	'1,2,3', 'each ok job of the batch committed its row once');
is($node->safe_psql('postgres', 'SELECT last_value FROM runs'),
	'5', 'the two jobs before the failing one ran twice: their first run was rolled back with it');

run_batch_with_failure('isolated', 4);
is($node->safe_psql('postgres', 'SELECT string_agg(n::text, \',\' ORDER BY n) FROM once WHERE n > 3'),
	'4,5,6', 'in the next batch too, each ok job committed its row once');
is($node->safe_psql('postgres', 'SELECT last_value FROM runs'),
	'8', 'the batch after a failure runs each job in a subtransaction: none ran twice');

$node->stop;

done_testing();
