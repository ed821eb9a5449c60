# 008_preload.pl: jobq installed without shared_preload_libraries.
#
# CREATE EXTENSION succeeds but warns that jobq is not in
# shared_preload_libraries; jobq.enqueue still works and the jobs stay
# pending because no launcher or worker exists: still pending 3 s later
# (a preloaded server starts a job within 2 s of its COMMIT:
# 004_wakeup.pl), and run once the server is restarted with jobq preloaded.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('preload');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
max_worker_processes = 20
log_min_messages = info
});
$node->start;

my ($out, $err);
my $ret = $node->psql(
	'postgres', 'CREATE EXTENSION jobq',
	stdout => \$out,
	stderr => \$err);
is($ret, 0, 'CREATE EXTENSION jobq succeeds without preloading')
  or diag($err);
like($err, qr/WARNING/, 'CREATE EXTENSION emits a warning');
like($err, qr/shared_preload_libraries/,
	'the warning is about shared_preload_libraries');
note "stderr of CREATE EXTENSION: $err";

is( $node->safe_psql(
		'postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'jobq'}),
	'0.2.0',
	'the extension is installed');

my $id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}')});
like($id, qr/^\d+$/, 'jobq.enqueue returns a job id');
my $ids = $node->safe_psql('postgres',
	q{SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 2"}'::jsonb, '{"sql": "SELECT 3"}'::jsonb])}
);
is($ids, '2', 'jobq.enqueue_many works too');

is( $node->safe_psql(
		'postgres', "SELECT status, attempts FROM jobq.jobs WHERE id = $id"),
	'pending|0',
	'the job is pending');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM pg_stat_activity
 WHERE backend_type IN ('jobq launcher', 'jobq worker')}),
	'0',
	'no jobq launcher or worker runs');
# Nothing can happen here; the jobs must still be pending when a worker
# would long have run them.
note 'waiting 3 s for a job to start: the poll below is expected to time out';
{
	local $PostgreSQL::Test::Utils::timeout_default = 3;
	ok( !$node->poll_query_until(
			'postgres', q{
SELECT count(*) < 3 FROM jobq.jobs WHERE status = 'pending' AND attempts = 0}),
		'all jobs stay pending: none has started 3 s later');
}

# The same jobs run once jobq is preloaded: they could have run.
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'jobq'");
$node->restart;
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) FROM jobq.jobs WHERE status = 'succeeded'}, '3'),
	'with jobq preloaded, the same jobs run');

$node->stop;

done_testing();
