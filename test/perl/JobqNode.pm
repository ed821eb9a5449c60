# JobqNode: what the TAP tests share.  jobq_node() starts a node that
# preloads jobq with room for ten workers; the test's own settings come
# after the common ones in postgresql.conf, so they win.

package JobqNode;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;

our @EXPORT = qw(jobq_node);

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

1;
