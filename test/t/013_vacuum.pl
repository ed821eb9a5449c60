# 013_vacuum.pl: claims are heap-only updates of jobq._queue; worker 0 of a
# database vacuums jobq._queue once jobq.vacuum_threshold jobs have finished
# since its last vacuum, so that the table workers claim from does not grow
# with the jobs that went through it, and gives its empty tail back once
# the queue is idle; with jobq.vacuum_threshold = 0 it leaves the table
# alone.
# Autovacuum is off here, so every vacuum of the table is jobq's.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'vacuum', q{
autovacuum = off
jobq.workers = 2
jobq.retention = 0
jobq.vacuum_threshold = 0
jobq.poll_interval = '60s'
});
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE TABLE hits (n int PRIMARY KEY);
});

my $round = 0;

# Run $n jobs that each insert one row; wait until they are all done.
sub run_jobs
{
	my ($n) = @_;
	my $from = $round * $n + 1;
	my $to = ($round + 1) * $n;
	$round++;
	$node->safe_psql(
		'postgres', qq{
SELECT count(*) FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql',
			format('INSERT INTO public.hits VALUES (%s)', g)) ORDER BY g)
	   FROM generate_series($from, $to) g))});
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT count(*) = $to AND NOT EXISTS (SELECT 1 FROM jobq._queue) FROM hits}),
		"$n jobs ran (round $round)");
}

sub queue_stats
{
	return $node->safe_psql(
		'postgres', q{
SELECT vacuum_count, pg_relation_size('jobq._queue') / 8192
  FROM pg_stat_user_tables WHERE relid = 'jobq._queue'::regclass});
}

# ---------------------------------------------------------------------
# jobq.vacuum_threshold = 0: the table only grows
# ---------------------------------------------------------------------

run_jobs(4000) for 1 .. 3;
my ($vacuums_off, $pages_off) = split /\|/, queue_stats();

# A claim changes no indexed column, and fillfactor leaves room on the page:
# its new row version is a heap-only tuple, with no new index entry.  (Only
# a page without room makes one an ordinary update.)
ok( $node->poll_query_until(
		'postgres', q{
SELECT n_tup_upd >= 12000 FROM pg_stat_user_tables
 WHERE relid = 'jobq._queue'::regclass}),
	'the workers reported their 12,000 claims');
my ($updates, $hot) = split /\|/, $node->safe_psql(
	'postgres', q{
SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables
 WHERE relid = 'jobq._queue'::regclass});
note "updates of jobq._queue: $updates, of which heap-only: $hot";
cmp_ok($hot * 10, '>=', $updates * 9, 'at least 90 % of the claims were heap-only updates');
is($vacuums_off, 0, 'with jobq.vacuum_threshold = 0 nothing vacuums jobq._queue');
note "pages of jobq._queue after 12,000 jobs without vacuum: $pages_off";

# Start again from an empty, compact table.
$node->safe_psql('postgres', 'VACUUM FULL jobq._queue');
my ($vacuums_before) = split /\|/, queue_stats();

# ---------------------------------------------------------------------
# jobq.vacuum_threshold = 1000: worker 0 vacuums as jobs finish
# ---------------------------------------------------------------------

$node->append_conf('postgresql.conf', 'jobq.vacuum_threshold = 1000');
$node->reload;
for my $r (1 .. 6)
{
	run_jobs(4000);
	# worker 0 does not sleep through a vacuum that is due: the dead rows
	# of the round's last jobs go within about a second
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT vacuum_count >= $vacuums_before + $r FROM pg_stat_user_tables
 WHERE relid = 'jobq._queue'::regclass}),
		"worker 0 vacuumed jobq._queue after round $r");
}
my ($vacuums_on, $pages_on) = split /\|/, queue_stats();
note "vacuums: " . ($vacuums_on - $vacuums_before)
  . ", pages of jobq._queue after 24,000 more jobs: $pages_on";
cmp_ok($pages_on, '<', $pages_off,
	'vacuumed, jobq._queue holds fewer pages after twice the jobs than it grew to without');

# No vacuum gives the empty pages at the end of the table back while jobs
# flow (that takes a lock every claim would wait for); once the queue is
# idle, worker 0 does.
is( $node->safe_psql(
		'postgres', q{
SELECT 'vacuum_truncate=false' = ANY (reloptions) FROM pg_class
 WHERE oid = 'jobq._queue'::regclass}),
	't', 'jobq._queue is created with vacuum_truncate = false');
ok( $node->poll_query_until(
		'postgres', q{SELECT pg_relation_size('jobq._queue') = 0}),
	'once the queue is idle, worker 0 gives the empty pages of jobq._queue back');

is( $node->safe_psql(
		'postgres', 'SELECT count(*), count(DISTINCT n) FROM hits'),
	'36000|36000', 'every job ran once');

$node->stop;

done_testing();
