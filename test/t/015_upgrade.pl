# 015_upgrade.pl: ALTER EXTENSION jobq UPDATE from 0.1.0.
#
# One database gets jobq 0.1.0, with a registered kind and pending jobs,
# and is updated to the default version; another gets the default version
# fresh.  Every object of the extension must be the same in both (its
# definition, columns, constraints, indexes, rights and comments), and the
# jobs of the updated database must still be there and then run.

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

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE updated');
$node->safe_psql('fresh', 'CREATE EXTENSION jobq');
$node->safe_psql('updated', q{CREATE EXTENSION jobq VERSION '0.1.0'});

$node->safe_psql(
	'updated', q{
CREATE TABLE done_here (id bigint);
CREATE FUNCTION mark(payload jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO done_here VALUES ((payload ->> 'n')::bigint) $$;
SELECT jobq.register_kind('mark', 'mark(jsonb)');
SELECT jobq.enqueue('mark', jsonb_build_object('n', g),
					run_at => now() + interval '1 hour')
  FROM generate_series(1, 5) g;
});

$node->safe_psql('updated', 'ALTER EXTENSION jobq UPDATE');
is($node->safe_psql('updated', q{SELECT extversion FROM pg_extension WHERE extname = 'jobq'}),
	$default, 'the extension is at the default version after the update');

# Every member of the extension, described with its definition.
my $describe = q{
WITH member AS (
	SELECT classid, objid, objsubid
	  FROM pg_depend
	 WHERE refclassid = 'pg_extension'::regclass
	   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'jobq')
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
					coalesce((SELECT string_agg(regexp_replace(tgname, '_[0-9]+$', ''), ', ' ORDER BY tgname)
								FROM pg_trigger WHERE tgrelid = c.oid), '')
			   FROM pg_class c WHERE c.oid = m.objid)
		 WHEN 'pg_namespace'::regclass THEN
			(SELECT coalesce(nspacl::text, '') FROM pg_namespace WHERE oid = m.objid)
		 ELSE ''
	   END
  FROM member m
 ORDER BY 1
};
my $fresh = $node->safe_psql('fresh', $describe);
my $updated = $node->safe_psql('updated', $describe);
cmp_ok(length($fresh), '>', 10000, 'the description of a fresh install is not empty');
is($updated, $fresh, 'an updated install has the same objects as a fresh one');

is($node->safe_psql('updated', q{SELECT count(*) FROM jobq.jobs WHERE status = 'pending'}),
	'5', 'the pending jobs survived the update');
is($node->safe_psql('updated', q{SELECT handler FROM jobq.kinds WHERE kind = 'mark'}),
	'public.mark(pg_catalog.jsonb)', 'the registered kind survived the update');

$node->safe_psql('updated', q{UPDATE jobq._queue SET run_at = now()});
ok( $node->poll_query_until(
		'updated', q{SELECT count(*) = 5 FROM jobq.jobs WHERE status = 'succeeded'}),
	'the jobs enqueued before the update run after it');
is($node->safe_psql('updated', 'SELECT string_agg(id::text, \',\' ORDER BY id) FROM done_here'),
	'1,2,3,4,5', 'each job ran once');

$node->stop;
done_testing();
