# JobqNode: what the TAP tests share.  jobq_node() starts a node that
# preloads jobq with room for ten workers; the test's own settings come
# after the common ones in postgresql.conf, so they win.
# jobq_wait_finished() waits for a job to finish.

package JobqNode;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;

use Test::More;

our @EXPORT = qw(jobq_node jobq_wait_finished);

# jobq_node($name, $settings, %init_options): a started node.
sub jobq_node
{
	my ($name, $settings, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'jobq'
max_worker_processes = 20
jobq.max_workers = 10
log_min_messages = info
$settings
});
	$node->start;
	return $node;
}

# jobq_wait_finished($node, $id, $what): one passing test once the job has
# finished (succeeded, dead or cancelled), a failing one if it does not.
sub jobq_wait_finished
{
	my ($node, $id, $what) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT status NOT IN ('pending', 'running') FROM jobq.jobs WHERE id = $id}),
		"$what: the job has finished");
	return;
}

1;
