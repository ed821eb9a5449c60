# 015_upgrade.pl: ALTER EXTENSION jobq UPDATE from 0.1.0, and the job pack
# that leaves jobq for its own extension on the way.
#
# Database fresh gets the default version from its install script (built
# from src/sql/).  Database updated gets 0.1.0 with jobs of every state
# (pending and due later, one with a job_key, a dead one, one of a job pack
# kind) and is updated.  Every object of the extension must be the same in
# both (its definition, columns, constraints, indexes, rights and comments),
# and so must jobq's own built-in kinds; the jobs must survive and run, but
# the job pack's, whose kind is gone until jobq_pack is created: it dies
# when it is claimed.  Database packed gets 0.1.0 with a job of the pack, is
# updated and gets jobq_pack in one transaction: its job runs, and jobq and
# jobq_pack there are the same as after CREATE EXTENSION jobq_pack CASCADE
# (database fresh_pack).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node('upgrade', 'jobq.workers = 1');

my $default = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'jobq'});
isnt($default, '0.1.0', "the default version ($default) is newer than 0.1.0");

$node->safe_psql('postgres', "CREATE DATABASE $_")
  for qw(fresh updated packed fresh_pack);
$node->safe_psql('fresh', 'CREATE EXTENSION jobq');
$node->safe_psql('fresh_pack', 'CREATE EXTENSION jobq_pack CASCADE');
$node->safe_psql($_, q{CREATE EXTENSION jobq VERSION '0.1.0'}) for qw(updated packed);

# 0.1.0: a dead job (its kind fails until the gate opens); five pending
# jobs due in an hour, one of the job pack's kinds and one with a job_key
$node->safe_psql(
	'updated', q{
CREATE TABLE done_here (id bigint);
CREATE TABLE gate (open boolean);
CREATE FUNCTION mark(payload jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO done_here VALUES ((payload ->> 'n')::bigint) $$;
CREATE FUNCTION gated(payload jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM gate) THEN
		RAISE EXCEPTION 'the gate is closed';
	END IF;
	INSERT INTO done_here VALUES ((payload ->> 'n')::bigint);
END $$;
SELECT jobq.register_kind('mark', 'mark(jsonb)');
SELECT jobq.register_kind('gated', 'gated(jsonb)');
SELECT jobq.enqueue('gated', '{"n": 6}', max_attempts => 1);
});
ok( $node->poll_query_until(
		'updated', q{SELECT status = 'dead' FROM jobq.jobs WHERE kind = 'gated'}),
	'0.1.0: the gated job is dead');
my $keyed = $node->safe_psql(
	'updated', q{
SELECT jobq.enqueue('mark', jsonb_build_object('n', g),
					run_at => now() + interval '1 hour')
  FROM generate_series(1, 5) g;
SELECT jobq.enqueue('reservations.release', '{}', run_at => now() + interval '1 hour');
SELECT jobq.enqueue('mark', '{"n": 7}', run_at => now() + interval '1 hour', job_key => 'seven');
});
$keyed = (split /\n/, $keyed)[-1];

$node->safe_psql('updated', 'ALTER EXTENSION jobq UPDATE');
is($node->safe_psql('updated', q{SELECT extversion FROM pg_extension WHERE extname = 'jobq'}),
	$default, 'the extension is at the default version after the update');

# Every member of the extension, described with its definition.
sub describe
{
	my ($db, $extension) = @_;
	return $node->safe_psql($db, qq{
WITH member AS (
	SELECT classid, objid, objsubid
	  FROM pg_depend
	 WHERE refclassid = 'pg_extension'::regclass
	   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = '$extension')
	   AND deptype = 'e'
)
SELECT pg_describe_object(m.classid, m.objid, m.objsubid) || ' | ' ||
	   coalesce(obj_description(m.objid, (SELECT relname FROM pg_class WHERE oid = m.classid)), '') || ' | ' ||
	   CASE m.classid
		 WHEN 'pg_proc'::regclass THEN
			pg_get_functiondef(m.objid) || coalesce((SELECT proacl::text FROM pg_proc WHERE oid = m.objid), '')
		 WHEN 'pg_class'::regclass THEN
			(SELECT relkind::text || coalesce(reloptions::text, '') || coalesce(relacl::text, '') ||
					coalesce(pg_get_viewdef(c.oid), '') ||
					coalesce((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod) ||
										 CASE WHEN attnotnull THEN ' not null' ELSE '' END ||
										 coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), ''),
										 ', ' ORDER BY attnum)
								FROM pg_attribute a
								LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
							   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '') ||
					coalesce((SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), ', ' ORDER BY conname)
								FROM pg_constraint WHERE conrelid = c.oid), '') ||
					coalesce((SELECT string_agg(pg_get_indexdef(indexrelid), ', ' ORDER BY indexrelid::regclass::text)
								FROM pg_index WHERE indrelid = c.oid), '') ||
					coalesce((SELECT string_agg(regexp_replace(tgname, '_[0-9]+\$', ''), ', ' ORDER BY tgname)
								FROM pg_trigger WHERE tgrelid = c.oid), '')
			   FROM pg_class c WHERE c.oid = m.objid)
		 WHEN 'pg_namespace'::regclass THEN
			(SELECT coalesce(nspacl::text, '') FROM pg_namespace WHERE oid = m.objid)
		 WHEN 'pg_event_trigger'::regclass THEN
			(SELECT evtevent || ' ' || evtenabled::text || ' ' || coalesce(evttags::text, '') || ' ' ||
					evtfoid::regprocedure::text
			   FROM pg_event_trigger WHERE oid = m.objid)
		 ELSE ''
	   END
  FROM member m
 ORDER BY 1
});
}
my $fresh = describe('fresh', 'jobq');
cmp_ok(length($fresh), '>', 10000, 'the description of a fresh install is not empty');
is(describe('updated', 'jobq'), $fresh, 'an updated install has the same objects as a fresh one');
my $builtin = q{
SELECT string_agg(concat_ws(' ', kind, handler, queue, priority, max_attempts, timeout, net, extension,
							restricted, keep_response),
				  E'\n' ORDER BY kind)
  FROM jobq._kinds WHERE builtin};
is($node->safe_psql('updated', $builtin),
	$node->safe_psql('fresh', $builtin),
	'an updated install has the built-in kinds of a fresh one (none of the job pack)');

is($node->safe_psql('updated', q{SELECT status, count(*) FROM jobq.jobs GROUP BY 1 ORDER BY 1}),
	"dead|1\npending|7", 'the pending and dead jobs survived the update');
is($node->safe_psql('updated', q{SELECT handler FROM jobq.kinds WHERE kind = 'mark'}),
	'public.mark(pg_catalog.jsonb)', 'the registered kind survived the update');
is($node->safe_psql('updated', q{SELECT jobq.enqueue('mark', '{"n": 70}', job_key => 'seven')}),
	$keyed, 'the job_key of a pending job still holds after the update');

# one transaction: the retry's commit wakes a worker, which then sees every
# job due (an UPDATE of jobq._queue alone wakes nothing)
$node->safe_psql(
	'updated', q{
BEGIN;
INSERT INTO gate VALUES (true);
SELECT jobq.retry(id) FROM jobq.jobs WHERE kind = 'gated';
UPDATE jobq._queue SET run_at = now();
COMMIT;
});
ok( $node->poll_query_until(
		'updated', q{SELECT count(*) = 0 FROM jobq.jobs WHERE status IN ('pending', 'running')}),
	'the jobs enqueued before the update run after it');
is($node->safe_psql('updated', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM done_here'),
	'1,2,3,4,5,6,7', 'each job ran once, the dead one retried');
is( $node->safe_psql(
		'updated', q{
SELECT status || ': ' || last_error FROM jobq.jobs WHERE kind = 'reservations.release'}),
	'dead: job kind "reservations.release" does not exist',
	'a job of the job pack dies with a clear error when jobq_pack is not created');

# the update and jobq_pack in one transaction: the pack's job waits and runs
$node->safe_psql(
	'packed', q{
CREATE TABLE availability_slots (id int PRIMARY KEY, status text, reserved_until timestamptz);
INSERT INTO availability_slots VALUES (1, 'reserved', now() - interval '1 minute');
SELECT jobq.enqueue('reservations.release', '{}', run_at => now() + interval '1 hour');
});
$node->safe_psql(
	'packed', q{
BEGIN;
ALTER EXTENSION jobq UPDATE;
CREATE EXTENSION jobq_pack;
COMMIT;
});
is(describe('packed', 'jobq'), describe('fresh_pack', 'jobq'),
	'jobq updated, then jobq_pack: the objects of jobq are those of a fresh install');
is(describe('packed', 'jobq_pack'), describe('fresh_pack', 'jobq_pack'),
	'... and those of jobq_pack');
is($node->safe_psql('packed', $builtin),
	$node->safe_psql('fresh_pack', $builtin), '... and its built-in kinds');
jobq_run_now($node, 'packed', 'true');
ok( $node->poll_query_until(
		'packed', q{SELECT count(*) = 0 FROM jobq.jobs WHERE status IN ('pending', 'running')}),
	'the job pack\'s job enqueued before the update runs');
is( $node->safe_psql(
		'packed', q{SELECT status || ' ' || result FROM jobq.jobs WHERE kind = 'reservations.release'}),
	'succeeded {"released": 1}',
	'it ran the handler of jobq_pack');

$node->stop;
done_testing();
