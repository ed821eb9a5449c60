# 020_holes.pl: holes of the red-team pass, each kept closed.
#
# 1. A role allowed to register kinds cannot replace or remove another
#    role's kind (it would run its handler as that role's jobs' owner).
# 3. A slow job does not hold the jobs claimed with it: a peer worker takes
#    over the jobs waiting behind it once the batch's time is up.
# 4. A job that terminates its own worker has its attempt counted: it dies
#    after max_attempts, and the jobs claimed with it run.
# 5. A job starts from a clean session: no session advisory lock, lastval()
#    or currval() of the job before it.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'holes', q{
jobq.workers = 2
jobq.poll_interval = '1s'
jobq.retry_base_delay = '100ms'
});

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE alice_team LOGIN IN ROLE alice;
GRANT CREATE ON SCHEMA public TO alice, bob;
GRANT EXECUTE ON FUNCTION jobq.register_kind(text, regprocedure, text, integer, interval, integer),
					  jobq.unregister_kind(text) TO alice, alice_team;
CREATE TABLE report_log (who text);
GRANT INSERT ON report_log TO PUBLIC;
CREATE FUNCTION su_report(p jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO report_log VALUES (current_user) $$;
SELECT jobq.register_kind('report', 'su_report(jsonb)');
});

sub psql_as { return jobq_psql_as($node, @_) }
sub safe_as { return jobq_safe_as($node, @_) }

# ---------------------------------------------------------------------
# 1. Kinds belong to the role that registered them
# ---------------------------------------------------------------------

my $report_id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('report', run_at => now() + interval '1 hour')});

safe_as(
	'alice', q{
CREATE FUNCTION public.alice_evil(p jsonb) RETURNS void LANGUAGE plpgsql
	AS $$ BEGIN EXECUTE 'ALTER ROLE alice SUPERUSER'; END $$;
GRANT EXECUTE ON FUNCTION public.alice_evil(jsonb) TO PUBLIC;
});

my ($ret, $out, $err) =
  psql_as('alice', q{SELECT jobq.register_kind('report', 'public.alice_evil(jsonb)')});
isnt($ret, 0, "alice cannot replace the superuser's kind");
like($err, qr/42501.*job kind "report" was registered by another role/,
	'the refusal says why, with SQLSTATE 42501');
($ret, $out, $err) = psql_as('alice', q{SELECT jobq.unregister_kind('report')});
like($err, qr/42501/, "alice cannot remove the superuser's kind either");
is($node->safe_psql('postgres', q{SELECT handler FROM jobq.kinds WHERE kind = 'report'}),
	'public.su_report(pg_catalog.jsonb)', 'the kind still has its handler');

jobq_run_now($node, 'postgres', "id = $report_id");
jobq_wait_finished($node, $report_id, "the superuser's report job");
is($node->safe_psql('postgres', "SELECT status FROM jobq.jobs WHERE id = $report_id"),
	'succeeded', "the superuser's job ran its own handler");
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'alice'}),
	'f', 'alice is not a superuser');

# alice's own kind: she and the members of her role may replace it; the
# owner stays alice, whoever replaces it; bob's registration is refused.
safe_as(
	'alice', q{
CREATE FUNCTION public.alice_h(p jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION public.alice_h2(p jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
GRANT EXECUTE ON FUNCTION public.alice_h(jsonb), public.alice_h2(jsonb) TO PUBLIC;
SELECT jobq.register_kind('alice_kind', 'public.alice_h(jsonb)');
SELECT jobq.register_kind('alice_kind', 'public.alice_h2(jsonb)');
});
safe_as('alice_team', q{SELECT jobq.register_kind('alice_kind', 'public.alice_h(jsonb)')});
$node->safe_psql('postgres',
	q{SELECT jobq.register_kind('alice_kind', 'public.alice_h2(jsonb)', queue => 'su')});
is( $node->safe_psql(
		'postgres', q{SELECT registered_by, handler, queue FROM jobq.kinds WHERE kind = 'alice_kind'}),
	'alice|public.alice_h2(pg_catalog.jsonb)|su',
	'a member of alice and a superuser replace her kind; it stays hers');
$node->safe_psql('postgres',
	'GRANT EXECUTE ON FUNCTION jobq.register_kind(text, regprocedure, text, integer, interval, integer), jobq.unregister_kind(text) TO bob'
);
($ret, $out, $err) =
  psql_as('bob', q{SELECT jobq.register_kind('alice_kind', 'public.alice_h(jsonb)')});
like($err, qr/42501/, "bob cannot replace alice's kind");
($ret, $out, $err) = psql_as('bob', q{SELECT jobq.unregister_kind('alice_kind')});
like($err, qr/42501/, "bob cannot remove alice's kind");
is(safe_as('bob', q{SELECT jobq.unregister_kind('no_such_kind')}),
	'f', 'removing a kind that does not exist is no error');
is(safe_as('alice', q{SELECT jobq.unregister_kind('alice_kind')}),
	't', 'alice removes her own kind');

# ---------------------------------------------------------------------
# 5. A clean session for every job (one worker runs them all)
# ---------------------------------------------------------------------

$node->safe_psql('postgres', q{ALTER SYSTEM SET jobq.workers = 1; SELECT pg_reload_conf();});
$node->poll_query_until('postgres',
	q{SELECT count(*) <= 1 FROM jobq.workers WHERE lane = 'sql' AND datname = 'postgres'})
  or die 'jobq.workers = 1 did not take effect';

safe_as(
	'alice', q{
CREATE SEQUENCE public.alice_seq START 4242;
GRANT USAGE, SELECT ON SEQUENCE public.alice_seq TO bob;
});
safe_as('bob', q{CREATE TABLE public.bob_saw (what text, v text)});

my $alice_job = safe_as(
	'alice', q{
SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_advisory_lock(777); SELECT nextval(''public.alice_seq'')"}', max_attempts => 1)
});
jobq_wait_finished($node, $alice_job, "alice's job taking session state");
is($node->safe_psql('postgres', "SELECT status FROM jobq.jobs WHERE id = $alice_job"),
	'succeeded', "alice's job took an advisory lock and a sequence value");
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 777}),
	'0', "the job's session advisory lock was released after it");
is($node->safe_psql('postgres', 'SELECT pg_try_advisory_lock(777)'),
	't', 'another session takes the advisory lock');

my %bob_job;
for my $probe (
	[ 'lastval', q{INSERT INTO public.bob_saw SELECT 'lastval', lastval()::text} ],
	[ 'currval', q{INSERT INTO public.bob_saw SELECT 'currval', currval('public.alice_seq')::text} ])
{
	my ($name, $sql) = @$probe;
	$sql =~ s/'/''/g;
	$bob_job{$name} = safe_as('bob',
		"SELECT jobq.enqueue('sql', jsonb_build_object('sql', '$sql'), max_attempts => 1)");
	jobq_wait_finished($node, $bob_job{$name}, "bob's $name probe");
}
is( $node->safe_psql(
		'postgres', "SELECT status, last_error_sqlstate FROM jobq.jobs WHERE id = $bob_job{lastval}"),
	'dead|55000', "lastval() in bob's job is not alice's sequence value");
is( $node->safe_psql(
		'postgres', "SELECT status, last_error_sqlstate FROM jobq.jobs WHERE id = $bob_job{currval}"),
	'dead|55000', "currval() in bob's job is not alice's sequence value either");

$node->safe_psql('postgres', q{ALTER SYSTEM RESET jobq.workers; SELECT pg_reload_conf();});
$node->poll_query_until('postgres', q{SELECT current_setting('jobq.workers') = '2'})
  or die 'jobq.workers = 2 did not take effect';

# ---------------------------------------------------------------------
# 3. A slow job does not hold the jobs claimed with it
# ---------------------------------------------------------------------

# One transaction: the slow job first in the claim order, three quick
# ones behind it; one worker claims all four.
my $ids = $node->safe_psql(
	'postgres', q{
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_sleep(10)"}', priority => -1);
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', priority => 0) FROM generate_series(1, 3);
COMMIT;
});
my ($slow, @quick) = split /\n/, $ids;
my $quick = join(',', @quick);
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 3 FROM jobq.jobs WHERE id IN ($quick) AND status = 'succeeded'"),
	'the quick jobs succeed');
is($node->safe_psql('postgres', "SELECT status FROM jobq.jobs WHERE id = $slow"),
	'running', 'they succeeded while the slow job claimed with them still ran');
is( $node->safe_psql(
		'postgres', "SELECT string_agg(attempts::text, ',') FROM jobq.jobs WHERE id IN ($quick)"),
	'1,1,1', 'the quick jobs were tried once each');
jobq_wait_finished($node, $slow, 'the slow job');
is($node->safe_psql('postgres', "SELECT status, attempts FROM jobq.jobs WHERE id = $slow"),
	'succeeded|1', 'the slow job succeeds, once');

# ---------------------------------------------------------------------
# 4. A job that terminates its own worker
# ---------------------------------------------------------------------

$ids = $node->safe_psql(
	'postgres', q{
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "SELECT pg_terminate_backend(pg_backend_pid())"}',
					priority => -1, max_attempts => 3);
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}') FROM generate_series(1, 15);
COMMIT;
});
my ($killer, @others) = split /\n/, $ids;
my $others = join(',', @others);
jobq_wait_finished($node, $killer, 'the job that terminates its worker');
is( $node->safe_psql(
		'postgres', "SELECT status, attempts, last_error_sqlstate FROM jobq.jobs WHERE id = $killer"),
	'dead|3|57P01', 'it is dead after its three attempts, each counted');
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) = 15 FROM jobq.jobs WHERE id IN ($others) AND status = 'succeeded'"),
	'the jobs claimed with it run');

$node->stop;
done_testing();
