# 025_progress.pl: jobq.set_progress.  A job that reports its progress and
# then waits (for a row of table gate) is seen from other sessions at its
# latest report while its transaction has not committed: in jobq.jobs, by
# its owner and a superuser, never by another role (jobq._progress called
# directly shows it nothing either), while its row in jobq._queue has no
# progress yet.  Once it succeeds its last report is kept with it.  A job
# that fails keeps none; the next job the worker runs starts without the
# previous one's report.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'progress', q{
jobq.workers = 1
jobq.poll_interval = '1s'
});

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE ROLE importer LOGIN;
CREATE ROLE importer_team LOGIN IN ROLE importer;
CREATE ROLE other LOGIN;
CREATE TABLE gate (opened boolean);
GRANT SELECT ON gate TO PUBLIC;
CREATE FUNCTION import(payload jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	IF NOT payload ? 'silent' THEN
		PERFORM jobq.set_progress(10, 'reading the file');
		PERFORM jobq.set_progress(50, 'half of the students');
	END IF;
	WHILE NOT EXISTS (SELECT FROM public.gate) LOOP
		PERFORM pg_sleep(0.02);
	END LOOP;
	IF payload ? 'fail' THEN
		RAISE EXCEPTION 'the import failed';
	END IF;
	IF NOT payload ? 'silent' THEN
		PERFORM jobq.set_progress(100, 'all students imported');
	END IF;
	RETURN '{}';
END $$;
SELECT jobq.register_kind('import', 'import(jsonb)');
});

sub as_role { return jobq_safe_as($node, @_) }

my $id = as_role('importer', q{SELECT jobq.enqueue('import', '{}')});
ok( $node->poll_query_until(
		'postgres', qq{
SELECT progress || '|' || progress_message FROM jobq.jobs WHERE id = $id AND status = 'running'},
		'50|half of the students'),
	'the latest report is seen from another session while the job runs');
is($node->safe_psql('postgres', "SELECT progress IS NULL FROM jobq._queue WHERE id = $id"),
	't', '... from shared memory: the job\'s row has no progress yet (its transaction has not committed)');
is(as_role('importer', "SELECT progress || '|' || progress_message FROM jobq.jobs WHERE id = $id"),
	'50|half of the students', 'the owner sees it');
is(as_role('importer_team', "SELECT progress FROM jobq.jobs WHERE id = $id"),
	'50', 'a member of the owner sees it');
is(as_role('other', "SELECT count(*) FROM jobq.jobs WHERE id = $id"),
	'0', 'another role sees no such job');
is(as_role('other', 'SELECT count(*) FROM jobq._progress()'),
	'0', 'and jobq._progress() shows it no progress');
is(as_role('importer', "SELECT job_id || '|' || progress FROM jobq._progress()"),
	"$id|50", 'jobq._progress() shows the owner its running job');

$node->safe_psql('postgres', 'INSERT INTO gate VALUES (true)');
jobq_wait_finished($node, $id, 'the import');
is( $node->safe_psql(
		'postgres', "SELECT status || '|' || progress || '|' || progress_message FROM jobq.jobs WHERE id = $id"),
	'succeeded|100|all students imported',
	'the last report is kept with the job that succeeded');
is($node->safe_psql('postgres', "SELECT progress FROM jobq._done WHERE id = $id"),
	'100', '... in its row of jobq._done');

# a failed attempt keeps no report
my $failing = as_role('importer', q{SELECT jobq.enqueue('import', '{"fail": true}', max_attempts => 1)});
jobq_wait_finished($node, $failing, 'the failing import');
is( $node->safe_psql(
		'postgres', "SELECT status || '|' || coalesce(progress::text, 'none') FROM jobq.jobs WHERE id = $failing"),
	'dead|none', 'a job that failed keeps no report (its transaction rolled back)');

# the next job the worker runs starts without the previous one's report
my ($first, $second) = split /\n/, as_role(
	'importer', q{
SELECT jobq.enqueue('import', '{}');
SELECT jobq.enqueue('import', '{"silent": true}');});
jobq_wait_finished($node, $second, 'the second import');
jobq_wait_finished($node, $first, 'the first import');
is( $node->safe_psql(
		'postgres', qq{
SELECT string_agg(id || ':' || status || ':' || coalesce(progress::text, 'none'), ',' ORDER BY id)
  FROM jobq.jobs WHERE id IN ($first, $second)}),
	"$first:succeeded:100,$second:succeeded:none",
	'each job keeps its own last report');

# outside a job
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT jobq.set_progress(50)');
like($err, qr/jobq.set_progress\(\) can only be called by a running job/,
	'set_progress outside a job is refused, saying why');

$node->stop;
done_testing();
