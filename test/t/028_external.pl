# 028_external.pl: the external worker API (jobq.register_external_kind,
# jobq.claim, CALL jobq.claim_wait, jobq.heartbeat, jobq.complete,
# jobq.fail, jobq.snooze), with two SQL workers running beside it:
#  - jobs of an external kind are never run by jobq's workers, while the
#    SQL jobs enqueued with them are;
#  - a claim takes due jobs of the queues it names, in the claim order
#    (precedence, priority), at most max_jobs, leased; only jobs whose
#    owner's privileges the claiming role has;
#  - complete records the result once; a stale or wrong lease, a second
#    complete, an unknown job are refused with their SQLSTATE and change
#    nothing;
#  - fail retries after retry_after with the error (38000) and its context,
#    and ends dead when out of attempts or final; snooze gives the job
#    back without counting the attempt; a cancel asked for shows in the
#    heartbeat and ends the job cancelled;
#  - a lease that ends gives the job back with its attempt counted (57014):
#    another worker claims it, the first one's heartbeat and complete find
#    nothing; out of attempts it dies;
#  - CALL jobq.claim_wait is woken by the commit of an enqueue in another
#    session (not by a rolled-back one), and by a job becoming due; it
#    holds no snapshot (backend_xmin) while it waits; it is refused in a
#    transaction block;
#  - a queue's concurrency limit and pause hold for external claims, and
#    a lease taken before a crash still holds its place after the restart;
#    a worker waiting for the place is woken when it comes free;
#  - a dead external job retried goes back to the external lane;
#  - bad arguments are refused with their SQLSTATE.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'external', q{
jobq.workers = 2
jobq.poll_interval = '1s'
jobq.retry_base_delay = '100ms'
});

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE ROLE app LOGIN;
CREATE ROLE worker LOGIN IN ROLE app;
CREATE ROLE stranger LOGIN;
GRANT USAGE ON SCHEMA jobq TO app, stranger;
SELECT jobq.register_external_kind('pdf.receipt', 'reports', max_attempts => 3);
SELECT jobq.register_external_kind('import.sheet', 'imports', max_attempts => 2, timeout => '10 minutes', priority => 5);
CREATE TABLE ran (n int);
GRANT INSERT ON ran TO app;
});

sub sq { return $node->safe_psql('postgres', shift); }

# an error's SQLSTATE (verbose errors) from psql's stderr, or 'ok'
sub sqlstate
{
	my ($sql, $user) = @_;
	my ($ret, $out, $err) = jobq_psql_as($node, $user, $sql);
	return 'ok' if $ret == 0;
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : "no SQLSTATE in: $err";
}

is( sq("SELECT external, handler IS NULL, queue, max_attempts FROM jobq.kinds WHERE kind = 'pdf.receipt'"),
	't|t|reports|3', 'an external kind has no handler, its queue and max_attempts');

# ---------------------------------------------------------------------
# jobq's workers leave external jobs alone
# ---------------------------------------------------------------------
my $ids = jobq_safe_as(
	$node, 'app', q{
SELECT jobq.enqueue('pdf.receipt', '{"order": 1}');
SELECT jobq.enqueue('sql', '{"sql": "INSERT INTO ran VALUES (1)"}');
});
my ($pdf1, $sql1) = split /\n/, $ids;
jobq_wait_finished($node, $sql1);
sleep 1;
is(sq("SELECT status, attempts FROM jobq._queue WHERE id = $pdf1"),
	'pending|0', 'the SQL workers ran the SQL job and left the external one pending');
is(sq("SELECT count(*) FROM ran"), '1', 'the SQL job ran');

# ---------------------------------------------------------------------
# claim: queues, order, max_jobs, owners
# ---------------------------------------------------------------------
jobq_safe_as(
	$node, 'app', q{
SELECT jobq.enqueue('import.sheet', '{"file": "a.xlsx"}');
SELECT jobq.enqueue('import.sheet', '{"file": "b.xlsx"}', priority => 1);
SELECT jobq.enqueue('pdf.receipt', '{"order": 2}', run_at => now() + interval '1 hour');
});
is(jobq_safe_as($node, 'stranger', 'SELECT count(*) FROM jobq.claim()'),
	'0', 'a role without the owner\'s privileges claims nothing');
my $c = jobq_safe_as(
	$node, 'worker',
	q{SELECT id, kind, queue, payload ->> 'file', attempt, max_attempts, priority, timeout, owner,
	         lease_until > now() + interval '50 s' AND lease_until < now() + interval '70 s', lease_id
	    FROM jobq.claim(ARRAY['imports'], 1, '1 minute')});
like($c, qr/^\d+\|import\.sheet\|imports\|b\.xlsx\|1\|2\|1\|00:10:00\|app\|t\|-\d+$/,
	'a member of the owner claims the first job of the named queue in priority order, leased for the lease asked');
my ($imp_b) = split /\|/, $c;
my $lease_b1 = (split /\|/, $c)[-1];
$c = jobq_safe_as($node, 'worker', q{SELECT id, payload ->> 'file', lease_id FROM jobq.claim(ARRAY['imports', 'reports'], 10)});
my @rows = split /\n/, $c;
is(scalar @rows, 2, 'max_jobs 10 takes the two due jobs left of the queues named (not the one due in an hour)');
my ($imp_a, undef, $lease_a) = split /\|/, (grep { /a\.xlsx/ } @rows)[0];
my ($pdf1b, undef, $lease_p) = split /\|/, (grep { !/a\.xlsx/ } @rows)[0];
is($pdf1b, $pdf1, 'the external job the SQL workers left is claimed');
is(sq("SELECT count(*) FROM jobq._queue WHERE status = 'running' AND external AND lease_until IS NOT NULL"),
	'3', 'three external jobs run, each with a lease');

# ---------------------------------------------------------------------
# complete, once per lease
# ---------------------------------------------------------------------
is(sqlstate("SELECT jobq.complete($imp_a, 12345)", 'worker'), '55000', 'complete with a wrong lease is refused');
is(sqlstate("SELECT jobq.complete($imp_a, $lease_a)", 'stranger'), '42704',
	'a role that may not see the job is told it does not exist');
is(sqlstate("SELECT jobq.complete(999999, $lease_a)", 'worker'), '42704', 'an unknown job does not exist');
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($imp_a, $lease_a, '{"rows": 12}')});
is(sq("SELECT status, result ->> 'rows', attempts FROM jobq.jobs WHERE id = $imp_a"),
	'succeeded|12|1', 'complete records the success and the result');
is(sqlstate("SELECT jobq.complete($imp_a, $lease_a)", 'worker'), '55000', 'a second complete is refused');
is(sq("SELECT count(*) FROM jobq._done WHERE id = $imp_a"), '1', 'and changes nothing');

# ---------------------------------------------------------------------
# heartbeat, cancel, fail, snooze
# ---------------------------------------------------------------------
$c = jobq_safe_as($node, 'worker',
	qq{SELECT id, cancel_requested, lease_until > now() + interval '250 s' FROM jobq.heartbeat(ARRAY[$pdf1, $imp_a], $lease_p, '5 minutes')});
is($c, "$pdf1|f|t", 'a heartbeat extends the leases held and returns only those');
jobq_safe_as($node, 'app', "SELECT jobq.cancel($pdf1)");
is(jobq_safe_as($node, 'worker', qq{SELECT cancel_requested FROM jobq.heartbeat(ARRAY[$pdf1], $lease_p)}),
	't', 'the heartbeat tells the worker a cancel was asked for');
is(jobq_safe_as($node, 'worker', qq{SELECT jobq.fail($pdf1, $lease_p, 'stopped')}),
	'cancelled', 'failing a job asked to stop ends it cancelled');

$c = jobq_safe_as($node, 'worker', qq{SELECT jobq.fail($imp_b, $lease_b1, 'bad sheet', '0.3 s', context => 'ImportJob.php:42')});
is($c, 'pending', 'fail with attempts left: pending again');
is(sq("SELECT status, attempts, last_error, last_error_sqlstate, last_error_context, run_at > now() + interval '0.2 s' FROM jobq.jobs WHERE id = $imp_b"),
	'pending|1|bad sheet|38000|ImportJob.php:42|t',
	'the error, its SQLSTATE 38000 and context are kept, due after retry_after');
usleep(400_000);
$c = jobq_safe_as($node, 'worker', q{SELECT id, attempt, lease_id FROM jobq.claim(ARRAY['imports'])});
my (undef, $att, $lease_b) = split /\|/, $c;
is($att, '2', 'the failed job is claimed again, its second attempt');
is(jobq_safe_as($node, 'worker', qq{SELECT jobq.fail($imp_b, $lease_b, 'still bad')}),
	'dead', 'out of attempts: dead');

my $pdf3 = jobq_safe_as($node, 'app', q{SELECT jobq.enqueue('pdf.receipt', '{"order": 3}')});
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id FROM jobq.claim(ARRAY['reports'])});
my (undef, $lease3) = split /\|/, $c;
is(jobq_safe_as($node, 'worker', qq{SELECT jobq.snooze($pdf3, $lease3, '0.2 s')}), 'pending', 'snooze: pending');
is(sq("SELECT attempts, run_at > now() FROM jobq._queue WHERE id = $pdf3"), '0|t',
	'a snoozed job\'s attempt is not counted, and it is due later');
is(sqlstate("SELECT jobq.complete($pdf3, $lease3)", 'worker'), '55000', 'its lease is over');
usleep(300_000);
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id, attempt FROM jobq.claim(ARRAY['reports'])});
my (undef, $lease3b, $att3) = split /\|/, $c;
is($att3, '1', 'claimed again after the delay, still its first attempt');
is(jobq_safe_as($node, 'worker', qq{SELECT jobq.fail($pdf3, $lease3b, 'not fixable', final => true)}),
	'dead', 'a final failure ends the job dead with attempts left');

# ---------------------------------------------------------------------
# leases that end
# ---------------------------------------------------------------------
my $pdf4 = jobq_safe_as($node, 'app', q{SELECT jobq.enqueue('pdf.receipt', '{"order": 4}', max_attempts => 2)});
$c = jobq_safe_as($node, 'worker', q{SELECT lease_id FROM jobq.claim(ARRAY['reports'], 1, '1 second')});
my $lease4 = $c;
usleep(1_200_000);
$c = jobq_safe_as($node, 'worker', q{SELECT id, attempt, lease_id FROM jobq.claim(ARRAY['reports'], 1, '1 second')});
my ($id4b, $att4b, $lease4b) = split /\|/, $c;
is("$id4b|$att4b", "$pdf4|2", 'a job whose lease ended is claimed again, its attempt counted');
is(sq("SELECT last_error_sqlstate FROM jobq._queue WHERE id = $pdf4"), '57014', 'with the lease\'s end as its error');
is(jobq_safe_as($node, 'worker', qq{SELECT count(*) FROM jobq.heartbeat(ARRAY[$pdf4], $lease4)}),
	'0', 'the first worker\'s heartbeat finds nothing');
is(sqlstate("SELECT jobq.complete($pdf4, $lease4)", 'worker'), '55000', 'and its complete is refused');
usleep(1_200_000);
is(jobq_safe_as($node, 'worker', q{SELECT count(*) FROM jobq.claim(ARRAY['reports'])}),
	'0', 'out of attempts when its second lease ends, it is not claimed again');
is(sq("SELECT status, attempts, last_error_sqlstate FROM jobq.jobs WHERE id = $pdf4"),
	'dead|2|57014', 'it is dead');
is(sq("SELECT count(*) FROM jobq._queue WHERE status = 'running' AND external"), '0', 'no external job runs');

# a dead external job retried goes back to the external lane
jobq_safe_as($node, 'app', "SELECT jobq.retry($pdf4)");
sleep 1;
is(sq("SELECT status, external FROM jobq._queue WHERE id = $pdf4"), 'pending|t',
	'a retried external job is pending on the external lane, left alone by the SQL workers');
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id FROM jobq.claim(ARRAY['reports'])});
my (undef, $lease4c) = split /\|/, $c;
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($pdf4, $lease4c)});

# ---------------------------------------------------------------------
# CALL jobq.claim_wait
# ---------------------------------------------------------------------
is(sqlstate("BEGIN; CALL jobq.claim_wait(NULL, 1, '1 minute', '1 s'); COMMIT", 'worker'), '2D000',
	'claim_wait in a transaction block is refused');
is(jobq_safe_as($node, 'worker', q{CALL jobq.claim_wait(ARRAY['imports'], 1, '1 minute', '0.3 s')}),
	'', 'a wait that ends without a job returns NULL');

# start a waiting CALL; returns (handle, output ref, start time)
sub start_wait
{
	my ($queues, $wait) = @_;
	my $out = '';
	my $err = '';
	my $h = IPC::Run::start(
		[
			'psql', '-XAtq', '-d', $node->connstr('postgres') . ' user=worker',
			'-c', "CALL jobq.claim_wait($queues, 5, '1 minute', '$wait')"
		],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err, time());
}

# the pid of the backend waiting in claim_wait, once it waits
sub waiting_pid
{
	for (1 .. 200)
	{
		my $pid = sq("SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL jobq.claim_wait%' AND wait_event_type = 'Extension'");
		return $pid if $pid ne '';
		usleep(20_000);
	}
	return '';
}

my ($h, $out, $err, $t0) = start_wait("ARRAY['reports']", '30 s');
my $pid = waiting_pid();
isnt($pid, '', 'claim_wait waits');
is(sq("SELECT backend_xmin IS NULL AND backend_xid IS NULL FROM pg_stat_activity WHERE pid = $pid"),
	't', 'it holds no snapshot and no transaction id while it waits');
$node->safe_psql('postgres', q{BEGIN; SELECT jobq.enqueue('pdf.receipt', '{"order": 5}'); ROLLBACK;});
usleep(300_000);
ok($h->pumpable, 'an enqueue rolled back does not end the wait');
jobq_safe_as($node, 'app', q{SELECT jobq.enqueue('pdf.receipt', '{"order": 6}')});
$h->finish;
my $elapsed = time() - $t0;
like($$out, qr/"payload": \{"order": 6\}/, 'the enqueue that committed gives the waiting worker its job');
cmp_ok($elapsed, '<', 15, 'long before the 30 s wait ended');
like($$out, qr/"lease_id": -\d+/, 'with its lease');
my ($id6) = $$out =~ /"id": (\d+)/;
my ($lease6) = $$out =~ /"lease_id": (-\d+)/;
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($id6, $lease6)});

($h, $out, $err, $t0) = start_wait('NULL', '30 s');
waiting_pid();
jobq_safe_as($node, 'app', q{SELECT jobq.enqueue('pdf.receipt', '{"order": 7}', run_at => clock_timestamp() + interval '1.5 s')});
$h->finish;
$elapsed = time() - $t0;
like($$out, qr/"payload": \{"order": 7\}/, 'a job due later is returned once due');
cmp_ok($elapsed, '>=', 1.4, 'not before it is due');
($id6) = $$out =~ /"id": (\d+)/;
($lease6) = $$out =~ /"lease_id": (-\d+)/;
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($id6, $lease6)});

# ---------------------------------------------------------------------
# limits and pauses hold for external claims
# ---------------------------------------------------------------------
$node->safe_psql('postgres', q{SELECT jobq.create_queue('reports', '{"concurrency": 1}')});
jobq_safe_as($node, 'app',
	q{SELECT jobq.enqueue_many('pdf.receipt', ARRAY['{"n": 1}', '{"n": 2}', '{"n": 3}']::jsonb[])});
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id FROM jobq.claim(ARRAY['reports'], 5)});
is(scalar(split /\n/, $c), 1, 'a queue with a concurrency limit of 1 gives one job to a claim of five');
my ($l1, $ll1) = split /\|/, $c;
is(jobq_safe_as($node, 'worker', q{SELECT count(*) FROM jobq.claim(ARRAY['reports'], 5)}),
	'0', 'and none to another claim while it runs');
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($l1, $ll1)});
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id FROM jobq.claim(ARRAY['reports'], 5)});
is(scalar(split /\n/, $c), 1, 'its completion frees the place for the next');
($l1, $ll1) = split /\|/, $c;
jobq_safe_as($node, 'worker', qq{SELECT jobq.snooze($l1, $ll1, '0 s')});
$node->safe_psql('postgres', q{SELECT jobq.pause_queue('reports')});
is(jobq_safe_as($node, 'worker', q{SELECT count(*) FROM jobq.claim(ARRAY['reports'], 5)}),
	'0', 'a paused queue gives nothing (a snooze freed its place)');
$node->safe_psql('postgres', q{SELECT jobq.resume_queue('reports')});
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id FROM jobq.claim(ARRAY['reports'], 5)});
is(scalar(split /\n/, $c), 1, 'resumed, it gives one job again');
($l1, $ll1) = split /\|/, $c;
jobq_safe_as($node, 'worker', qq{SELECT jobq.fail($l1, $ll1, 'x', '0 s')});
is(sq("SELECT running FROM jobq.queues WHERE name = 'reports'"), '0', 'a failure frees the place too');

# a lease taken before a crash still holds its place after it
$node->safe_psql(
	'postgres', q{
SELECT jobq.create_queue('solo', '{"concurrency": 1}');
SELECT jobq.register_external_kind('solo.k', 'solo');
});
jobq_safe_as($node, 'app', q{SELECT jobq.enqueue_many('solo.k', ARRAY['{"n": 1}', '{"n": 2}']::jsonb[])});
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id FROM jobq.claim(ARRAY['solo'], 5, '10 minutes')});
my ($s1, $sl1) = split /\|/, $c;
$node->stop('immediate');
$node->start;
is(jobq_safe_as($node, 'worker', q{SELECT count(*) FROM jobq.claim(ARRAY['solo'], 5)}),
	'0', 'after a crash and restart, the lease taken before it still holds the one place of its queue');
is(sq("SELECT running FROM jobq.queues WHERE name = 'solo'"), '1', 'jobq.queues counts it');
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($s1, $sl1)});
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id FROM jobq.claim(ARRAY['solo'], 5)});
is(scalar(split /\n/, $c), 1, 'its end, by the worker that held it, frees the place');
my ($s2, $sl2) = split /\|/, $c;
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($s2, $sl2)});
is(sq("SELECT running FROM jobq.queues WHERE name = 'solo'"), '0', 'and the count is back to zero');

# a worker waiting for a limited queue's place is woken when it comes free
jobq_safe_as($node, 'app', q{SELECT jobq.enqueue_many('solo.k', ARRAY['{"n": 3}', '{"n": 4}']::jsonb[])});
$c = jobq_safe_as($node, 'worker', q{SELECT id, lease_id FROM jobq.claim(ARRAY['solo'], 5)});
my ($s3, $sl3) = split /\|/, $c;
($h, $out, $err, $t0) = start_wait("ARRAY['solo']", '30 s');
isnt(waiting_pid(), '', 'a worker waits while the one place of solo is taken');
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($s3, $sl3)});
$h->finish;
like($$out, qr/"payload": \{"n": 4\}/, 'the completion that frees the place gives it the next job');
cmp_ok(time() - $t0, '<', 15, 'long before its 30 s wait ended');
($id6) = $$out =~ /"id": (\d+)/;
($lease6) = $$out =~ /"lease_id": (-\d+)/;
jobq_safe_as($node, 'worker', qq{SELECT jobq.complete($id6, $lease6)});

# ---------------------------------------------------------------------
# bad arguments
# ---------------------------------------------------------------------
my %bad = (
	q{SELECT * FROM jobq.claim(ARRAY[]::text[])} => '22023',
	q{SELECT * FROM jobq.claim(ARRAY[NULL]::text[])} => '22004',
	q{SELECT * FROM jobq.claim(ARRAY[E'a\nb'])} => '22023',
	q{SELECT * FROM jobq.claim(NULL, 0)} => '22023',
	q{SELECT * FROM jobq.claim(NULL, 1001)} => '22023',
	q{SELECT * FROM jobq.claim(NULL, NULL)} => '22004',
	q{SELECT * FROM jobq.claim(NULL, 1, '0.5 s')} => '22023',
	q{SELECT * FROM jobq.claim(NULL, 1, '2 days')} => '22023',
	q{SELECT * FROM jobq.claim(NULL, 1, NULL)} => '22004',
	q{CALL jobq.claim_wait(NULL, 1, '1 min', '2 hours')} => '22023',
	q{CALL jobq.claim_wait(NULL, 1, '1 min', '-1 s')} => '22023',
	q{SELECT * FROM jobq.heartbeat(ARRAY[1], 1, '0 s')} => '22023',
	q{SELECT * FROM jobq.heartbeat(ARRAY[NULL]::bigint[], 1)} => '22004',
	q{SELECT * FROM jobq.heartbeat(NULL, 1)} => '22004',
	q{SELECT jobq.complete(NULL, 1)} => '22004',
	q{SELECT jobq.complete(1, NULL)} => '22004',
	q{SELECT jobq.fail(1, 1, NULL)} => '22004',
	q{SELECT jobq.fail(1, 1, 'x', '-1 s')} => '22023',
	q{SELECT jobq.fail(1, 1, 'x', '400 days')} => '22023',
	q{SELECT jobq.snooze(1, 1, NULL)} => '22004',
	q{SELECT jobq.snooze(1, 1, '-1 s')} => '22023',
	q{SELECT jobq.register_external_kind('sql')} => '22023',
	q{SELECT jobq.register_external_kind('x', max_attempts => 0)} => '22023',
	q{SELECT jobq.register_external_kind('x', timeout => '0 s')} => '22023',
	q{SELECT jobq.register_external_kind(NULL)} => '22004',
	q{SELECT jobq.register_external_kind('x', E'q\tq')} => '22023',);
for my $sql (sort keys %bad)
{
	is(sqlstate($sql, 'worker'), $bad{$sql}, "refused with $bad{$sql}: $sql")
	  unless $sql =~ /register_external_kind/;
	is(sqlstate($sql), $bad{$sql}, "refused with $bad{$sql}: $sql")
	  if $sql =~ /register_external_kind/;
}
is(sqlstate(q{SELECT jobq.register_external_kind('x')}, 'app'), '42501',
	'register_external_kind is not granted to PUBLIC');

# an external kind can be replaced by a kind with a handler, and back
$node->safe_psql(
	'postgres', q{
CREATE FUNCTION h(jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT jobq.register_kind('pdf.receipt', 'h(jsonb)', 'reports');
});
is(sq("SELECT external, handler FROM jobq.kinds WHERE kind = 'pdf.receipt'"), 'f|public.h(pg_catalog.jsonb)',
	'register_kind makes an external kind an in-server one');
$node->safe_psql('postgres', q{SELECT jobq.register_external_kind('pdf.receipt', 'reports')});
is(sq("SELECT external, handler IS NULL FROM jobq.kinds WHERE kind = 'pdf.receipt'"), 't|t',
	'and register_external_kind makes it external again');

$node->stop;
done_testing();
