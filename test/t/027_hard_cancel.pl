# 027_hard_cancel.pl: jobq.cancel stops a running job.
#  - SQL: the one worker claims a batch of three jobs, b (quick), a
#    (pg_sleep(60)) and c (quick), run in that order in one transaction.
#    jobq.cancel(a) while it sleeps: a ends cancelled with 57014 in far less
#    than its 60 s, and nothing it wrote stays; b and c succeed, each run
#    once (b's first run was rolled back with a, and ran again alone).
#  - A job waiting for a lock is stopped by jobq.cancel; one whose timeout
#    passes while it waits for a lock dies of the timeout's 57014.
#  - A cancel rolled back with its savepoint stops nothing.
#  - Network: an http job whose server never answers (/hang) is aborted and
#    ends cancelled, its delivery logged with 57014, while another request
#    of the net worker succeeds.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $dir = PostgreSQL::Test::Utils::tempdir;
my $hp = jobq_start_server($dir, 'http', "$FindBin::RealBin/../net/http_server.py");

my $node = jobq_node(
	'hard_cancel', q{
jobq.workers = 1
jobq.poll_interval = '1s'
jobq.http_allowed_hosts = '127.0.0.1'
});
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE ran (tag text);
CREATE TABLE locked (x integer);
SELECT jobq.grant_http('PUBLIC');
});

sub sql { return $node->safe_psql('postgres', $_[0]) }

sub job
{
	my ($sql, %opt) = @_;
	my $extra = join '', map { ", $_ => $opt{$_}" } sort keys %opt;
	return sql("SELECT jobq.enqueue('sql', jsonb_build_object('sql', \$q\$$sql\$q\$)$extra)");
}

sub wait_status
{
	my ($id, $status, $what) = @_;
	ok($node->poll_query_until('postgres', "SELECT status = '$status' FROM jobq.jobs WHERE id = $id"),
		"$what: $status");
}

# ---- a sleeping job in the middle of a batch -------------------------------

my ($b, $a, $c) = split /\n/, sql(q{
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "INSERT INTO ran VALUES (''b'')"}', priority => -3);
SELECT jobq.enqueue('sql', '{"sql": "INSERT INTO ran VALUES (''a''); SELECT pg_sleep(60)"}', priority => -2);
SELECT jobq.enqueue('sql', '{"sql": "INSERT INTO ran VALUES (''c'')"}', priority => -1);
COMMIT;
});
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) = 3 FROM jobq.jobs
 WHERE id IN ($b, $a, $c) AND status = 'running' AND started_at IS NOT NULL}),
	'the worker claimed the three jobs as one batch');
$node->poll_query_until('postgres', q{
SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND backend_type = 'jobq worker')})
  or die 'job a does not sleep';
my $t0 = time;
is(sql("SELECT jobq.cancel($a)"), 't', 'jobq.cancel of the sleeping job returns true');
wait_status($a, 'cancelled', 'the sleeping job');
my $took = time - $t0;
cmp_ok($took, '<', 30, sprintf('... stopped, not slept out (%.1f s of its 60)', $took));
diag(sprintf('the sleeping job ended %.2f s after jobq.cancel returned', $took));
is(sql("SELECT last_error_sqlstate || ': ' || last_error FROM jobq.jobs WHERE id = $a"),
	'57014: canceling statement due to user request', '... with the cancel\'s error');
wait_status($b, 'succeeded', 'the job before it in the batch');
wait_status($c, 'succeeded', 'the job after it');
is(sql(q{SELECT string_agg(tag, ',' ORDER BY tag) FROM ran}),
	'b,c', 'b and c ran once each, nothing of a stays');
is(sql("SELECT string_agg(attempts::text, ',' ORDER BY id) FROM jobq.jobs WHERE id IN ($b, $c)"),
	'1,1', 'the batch mates\' attempts are not counted twice');

# ---- waiting for a lock -------------------------------------------------------

my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE locked');
my $d = job('INSERT INTO locked VALUES (1)');
$node->poll_query_until('postgres', q{
SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND backend_type = 'jobq worker')})
  or die 'job d does not wait for the lock';
sql("SELECT jobq.cancel($d)");
wait_status($d, 'cancelled', 'a job waiting for a lock, cancelled');
my $e = job('INSERT INTO locked VALUES (2)', timeout => q{'1 s'}, max_attempts => 1);
wait_status($e, 'dead', 'a job whose timeout passes while it waits for a lock');
is(sql("SELECT last_error_sqlstate || ': ' || last_error FROM jobq.jobs WHERE id = $e"),
	'57014: canceling statement due to statement timeout', '... dies of its timeout');
$holder->query_safe('COMMIT');
$holder->quit;
is(sql('SELECT count(*) FROM locked'), '0', 'neither wrote its row');

# ---- a cancel rolled back stops nothing -------------------------------------

my $f = job(q{SELECT pg_sleep(2); INSERT INTO ran VALUES ('f')});
$node->poll_query_until('postgres', "SELECT status = 'running' FROM jobq.jobs WHERE id = $f")
  or die 'job f does not start';
sql("BEGIN; SAVEPOINT s; SELECT jobq.cancel($f); ROLLBACK TO SAVEPOINT s; COMMIT;");
wait_status($f, 'succeeded', 'a job whose cancel was rolled back with its savepoint');
is(sql(q{SELECT count(*) FROM ran WHERE tag = 'f'}), '1', '... ran to its end');

# ---- a network job's transfer ---------------------------------------------------

my $hang = sql(qq{SELECT jobq.enqueue('http', '{"url": "http://127.0.0.1:$hp/hang"}', max_attempts => 1)});
$node->poll_query_until('postgres', "SELECT status = 'running' FROM jobq.jobs WHERE id = $hang")
  or die 'the http job does not start';
my $ok = sql(qq{SELECT jobq.enqueue('http', '{"url": "http://127.0.0.1:$hp/ok"}')});
$t0 = time;
sql("SELECT jobq.cancel($hang)");
wait_status($hang, 'cancelled', 'an http job whose server does not answer');
$took = time - $t0;
cmp_ok($took, '<', 25, sprintf('... aborted, not waited out (%.1f s of the server\'s 30)', $took));
diag(sprintf('the hanging request ended %.2f s after jobq.cancel returned', $took));
is( sql("SELECT last_error_sqlstate FROM jobq.jobs WHERE id = $hang")
	  . '|' . sql("SELECT error_sqlstate || ':' || outcome FROM jobq.deliveries WHERE job_id = $hang"),
	'57014|57014:failed', '... with 57014, in its delivery log too');
wait_status($ok, 'succeeded', 'another request of the net worker');

$node->stop;
done_testing();
