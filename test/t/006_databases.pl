# 006_databases.pl: one launcher serves every database that has jobq.
#
# jobq installed with CREATE EXTENSION in two databases of a running
# cluster is served without a restart, each database runs its own jobs, a
# database without jobq gets no workers; DROP DATABASE and CREATE DATABASE
# ... TEMPLATE work while the database's workers run, and the other
# databases keep running jobs; DROP EXTENSION stops a database's workers
# and CREATE EXTENSION starts them again.  The database without jobq is
# probed once: through the whole test no worker stays there and none
# connects again (its transaction count does not move), until jobq is
# installed in it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

# autovacuum is off so that only jobq connects to the database "plain".
my $node = jobq_node(
	'databases', q{
jobq.workers = 2
jobq.poll_interval = '1s'
jobq.worker_idle_timeout = '1h'
autovacuum = off
});

$node->safe_psql(
	'postgres', q{
CREATE DATABASE school;
CREATE DATABASE clinic;
CREATE DATABASE plain;
});

# Workers start on demand (the first one when jobq is found, more while
# jobs wait) and, with the long jobq.worker_idle_timeout, stay: a served
# database has "some" workers, at most jobq.workers.
sub workers_of
{
	my ($db, $count, $what) = @_;
	my $cond = $count eq 'some' ? 'BETWEEN 1 AND 2' : "= $count";
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) $cond FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = '$db'}),
		$what);
	return;
}

# Enqueue $n jobs in $db that each record the database they ran in, and
# wait until they have succeeded.
sub run_jobs
{
	my ($db, $n, $tag) = @_;
	$node->safe_psql(
		$db, qq{
SELECT count(*) FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql',
			format(\$s\$INSERT INTO public.log VALUES (%s, current_database(), '$tag')\$s\$, g)))
	   FROM generate_series(1, $n) g), queue => '$tag')});
	ok( $node->poll_query_until(
			$db, qq{
SELECT count(*) FROM jobq.jobs WHERE queue = '$tag' AND status = 'succeeded'},
			$n),
		"the $tag jobs of $db have run");
	return;
}

for my $db ('school', 'clinic')
{
	$node->safe_psql(
		$db, q{
CREATE EXTENSION jobq;
CREATE TABLE log (n integer, db text, tag text);
});
}

workers_of('school', 'some', 'school is served without a restart');
workers_of('clinic', 'some', 'clinic is served without a restart');

run_jobs('school', 50, 'first');
run_jobs('clinic', 30, 'first');
is( $node->safe_psql(
		'school', 'SELECT db, count(*), count(DISTINCT n) FROM log GROUP BY db'),
	'school|50|50',
	"school ran exactly its own jobs");
is( $node->safe_psql(
		'clinic', 'SELECT db, count(*), count(DISTINCT n) FROM log GROUP BY db'),
	'clinic|30|30',
	"clinic ran exactly its own jobs");

# ---------------------------------------------------------------------
# A database without jobq
# ---------------------------------------------------------------------

# The launcher probes "plain" with a worker that finds no jobq and exits;
# nothing else connects there, so its transactions are the probe's.  Once
# the probe has left, their count is kept; it must not move until jobq is
# installed there at the end.
ok( $node->poll_query_until(
		'postgres', q{
SELECT xact_commit + xact_rollback > 0 FROM pg_stat_database
 WHERE datname = 'plain'}),
	'the launcher has probed the database without jobq');
workers_of('plain', 0, 'the database without jobq has no worker');
is( $node->safe_psql(
		'school', q{
SELECT count(*) FROM jobq.workers WHERE datname = 'plain'}),
	'0',
	'jobq.workers lists no worker for the database without jobq');
my $plain_xacts_sql = q{
SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'plain'};
my $plain_xacts = $node->safe_psql('postgres', $plain_xacts_sql);

# No worker in "plain", now or since the probe: none in jobq.workers or
# pg_stat_activity, and no transaction there since.
sub plain_unserved
{
	my ($when) = @_;
	is( $node->safe_psql(
			'postgres', q{
SELECT count(*) FROM pg_stat_activity WHERE datname = 'plain'})
		  . '|' . $node->safe_psql('school', q{
SELECT count(*) FROM jobq.workers WHERE datname = 'plain'})
		  . '|' . $node->safe_psql('postgres', $plain_xacts_sql),
		"0|0|$plain_xacts",
		"$when: no worker in the database without jobq, and none connected since the probe");
	return;
}

# ---------------------------------------------------------------------
# DROP DATABASE while its workers run
# ---------------------------------------------------------------------

# One clinic worker is busy with a long job.
$node->safe_psql('clinic',
	q{SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_sleep(300)"}')});
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type = 'jobq worker' AND datname = 'clinic'
   AND wait_event = 'PgSleep'},
		'1'),
	'a clinic worker runs a long job');
workers_of('clinic', 'some', 'clinic has its workers');

my ($out, $err);
my $ret = $node->psql(
	'postgres', 'DROP DATABASE clinic',
	stdout => \$out,
	stderr => \$err);
is($ret, 0, 'DROP DATABASE succeeds while the workers of the database run')
  or diag($err);
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'clinic'}),
	'0',
	'clinic is gone');
workers_of('clinic', 0, 'clinic has no workers left');

workers_of('school', 'some', 'school still has its workers');
run_jobs('school', 20, 'after_drop');
plain_unserved('after DROP DATABASE');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'jobq launcher'}),
	'1',
	'the launcher is still there');

# ---------------------------------------------------------------------
# CREATE DATABASE ... TEMPLATE a database with jobq
# ---------------------------------------------------------------------

$ret = $node->psql(
	'postgres', 'CREATE DATABASE school_copy TEMPLATE school',
	stdout => \$out,
	stderr => \$err);
is($ret, 0, 'CREATE DATABASE ... TEMPLATE school succeeds while school runs')
  or diag($err);
workers_of('school', 'some', 'school gets its workers back');
workers_of('school_copy', 'some', 'the copy of school is served too');
run_jobs('school_copy', 10, 'copy');
run_jobs('school', 10, 'after_copy');
is( $node->safe_psql(
		'school_copy', q{SELECT count(*) FROM log WHERE tag = 'copy'}),
	'10',
	'the copy runs its own jobs');
is( $node->safe_psql(
		'school', q{SELECT count(*) FROM log WHERE tag = 'copy'}),
	'0',
	"the copy's jobs did not run in school");

# ---------------------------------------------------------------------
# DROP EXTENSION and CREATE EXTENSION
# ---------------------------------------------------------------------

$node->safe_psql('school', 'DROP EXTENSION jobq');
workers_of('school', 0, 'DROP EXTENSION stops the workers of school');
workers_of('school_copy', 'some', 'the copy keeps its workers');

$node->safe_psql('school', 'CREATE EXTENSION jobq');
workers_of('school', 'some', 'CREATE EXTENSION starts the workers of school again');
run_jobs('school', 15, 'recreated');
is( $node->safe_psql(
		'school', q{SELECT count(*), min(db), max(db) FROM log WHERE tag = 'recreated'}),
	'15|school|school',
	'after CREATE EXTENSION the jobs of school run');

# The launcher looks for new databases every 10 s: by now it has done so
# more than once since the probe of "plain".
plain_unserved('at the end');
$node->safe_psql('plain', 'CREATE EXTENSION jobq');
workers_of('plain', 'some', 'once jobq is installed there, the database gets its workers');

$node->stop;

done_testing();
