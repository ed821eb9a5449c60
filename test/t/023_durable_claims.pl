# 023_durable_claims.pl: jobq.durable_claims.  With it on, a SQL worker's
# claim commits with the server's synchronous_commit: the claim's commit
# record (and so the job's counted attempt) is flushed to the WAL before the
# job's handler runs.  With it off (the default) the claim commits without
# waiting for the flush, and only a later flush makes it durable.
#
# The observable: while the job's handler is blocked (on an advisory lock
# this test holds), is the commit record of the claim's transaction (the
# xmin of the job's row) among the WAL records up to
# pg_current_wal_flush_lsn() (pg_walinspect)?  So that nothing else flushes
# the WAL meanwhile, the WAL writer is stopped (SIGSTOP) for the check, and
# the node runs without autovacuum, background writer pages or timed
# checkpoints.  Off is the negative control: the same sequence leaves the
# claim's commit unflushed, so the check tells the two apart.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'durable', q{
jobq.workers = 1
autovacuum = off
bgwriter_lru_maxpages = 0
checkpoint_timeout = '1h'
});
$node->safe_psql('postgres', 'CREATE EXTENSION jobq; CREATE EXTENSION pg_walinspect');

is($node->safe_psql('postgres', 'SHOW jobq.durable_claims'), 'off', 'jobq.durable_claims is off by default');

# claim_flushed($setting): whether, with jobq.durable_claims = $setting, the
# commit of a job's claim is flushed by the time its handler runs.  The job
# then finishes; one passing test each for the wait and the outcome.
sub claim_flushed
{
	my ($setting) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET jobq.durable_claims = $setting");
	$node->restart;

	my $holder = $node->background_psql('postgres');
	$holder->query_safe('SELECT pg_advisory_lock(23)');

	my $walwriter = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'});
	die 'no WAL writer' unless $walwriter =~ /^\d+$/;
	kill 'STOP', $walwriter or die "cannot stop the WAL writer: $!";

	my $start = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	my $id = $node->safe_psql('postgres',
		q{SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_advisory_xact_lock(23)"}', max_attempts => 1)});
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT EXISTS (SELECT 1 FROM jobq.jobs WHERE id = $id AND status = 'running')
   AND EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 23 AND NOT granted)}),
		"durable_claims = $setting: the job's handler runs, waiting for the test's lock");
	my $xid = $node->safe_psql('postgres', "SELECT xmin FROM jobq._queue WHERE id = $id");
	my $flushed = $node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM pg_get_wal_records_info('$start', pg_current_wal_flush_lsn())
 WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT' AND xid = '$xid'::xid});

	kill 'CONT', $walwriter;
	$holder->quit;
	jobq_wait_finished($node, $id, "durable_claims = $setting");
	is($node->safe_psql('postgres', "SELECT status || ' ' || attempts FROM jobq.jobs WHERE id = $id"),
		'succeeded 1', "durable_claims = $setting: the job succeeded at its first attempt");
	return $flushed;
}

is(claim_flushed('off'), '0',
	"durable_claims = off: the claim's commit is not flushed when the handler runs (the negative control)");
is(claim_flushed('on'), '1',
	"durable_claims = on: the claim's commit is flushed before the handler runs");

$node->stop;
done_testing();
