# 005_security.pl: jobs run as their owner and roles see only their own jobs.
#
# alice's jobs run as alice (no access to the superuser's table, no SET
# ROLE, RESET ROLE or temporary tables inside a job); bob sees none of
# alice's jobs, cannot cancel or retry them, cannot read the private tables,
# register kinds or read jobq.workers; alice sees her own jobs; the
# superuser sees all.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $node = jobq_node(
	'security', q{
jobq.workers = 2
jobq.poll_interval = '1s'
});

my $su = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION jobq;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE TABLE secret (s text);
INSERT INTO secret VALUES ('the secret');
REVOKE ALL ON secret FROM PUBLIC;
CREATE TABLE alice_t (who text, note text);
ALTER TABLE alice_t OWNER TO alice;
CREATE FUNCTION bob_fn(p jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT p $$;
});

# Run $sql as $user: (exit code, stdout, stderr), or the output (a test).
sub psql_as { return jobq_psql_as($node, @_) }
sub safe_as { return jobq_safe_as($node, @_) }

sub enqueue_as
{
	my ($user, $sql, $max_attempts) = @_;
	$max_attempts //= 1;
	$sql =~ s/'/''/g;
	return safe_as($user,
		"SELECT jobq.enqueue('sql', jsonb_build_object('sql', '$sql'), max_attempts => $max_attempts)"
	);
}

# ---------------------------------------------------------------------
# alice's jobs run as alice
# ---------------------------------------------------------------------

my ($ret, $out, $err) = psql_as('alice', 'SELECT * FROM public.secret');
like($err, qr/42501/, 'alice herself cannot read the secret table');

my $read_id = enqueue_as('alice', 'SELECT * FROM public.secret');
jobq_wait_finished($node, $read_id, 'alice reads the secret table');
is( $node->safe_psql(
		'postgres', qq{
SELECT status, owner, last_error_sqlstate FROM jobq.jobs WHERE id = $read_id}
	),
	'dead|alice|42501',
	"alice's job cannot read the superuser's table: 42501");

my $su_read_id = $node->safe_psql('postgres',
	q{SELECT jobq.enqueue('sql', '{"sql": "SELECT * FROM public.secret"}')});
jobq_wait_finished($node, $su_read_id, 'the superuser reads the secret table');
is( $node->safe_psql(
		'postgres', qq{
SELECT status, owner, result FROM jobq.jobs WHERE id = $su_read_id}),
	qq{succeeded|$su|{"rows": 1}},
	"the superuser's job can read it");

my @escapes = (
	"SET ROLE $su",
	'RESET ROLE',
	'SET ROLE alice',
	"SET SESSION AUTHORIZATION $su",
	'CREATE TEMP TABLE t_tmp (x integer)',);
my %escape_id;
for my $sql (@escapes)
{
	$escape_id{$sql} = enqueue_as('alice', $sql);
}
my $insert_id = enqueue_as('alice',
	q{INSERT INTO public.alice_t SELECT current_user, 'from a job'});

for my $sql (@escapes)
{
	jobq_wait_finished($node, $escape_id{$sql}, "alice runs $sql");
	note "$sql: "
	  . $node->safe_psql('postgres',
		"SELECT last_error FROM jobq.jobs WHERE id = $escape_id{$sql}");
	is( $node->safe_psql(
			'postgres', qq{
SELECT status, last_error_sqlstate FROM jobq.jobs WHERE id = $escape_id{$sql}}
		),
		'dead|42501',
		"a job of alice cannot run $sql: 42501");
}

jobq_wait_finished($node, $insert_id, 'alice inserts into her table');
is( $node->safe_psql(
		'postgres', "SELECT status FROM jobq.jobs WHERE id = $insert_id"),
	'succeeded',
	"alice's job inserting into her own table succeeds");
is($node->safe_psql('postgres', 'SELECT who, note FROM alice_t'),
	'alice|from a job', 'inside the job current_user is alice');

# A pending job of alice, due later, for bob to try to cancel.
my $later_id = safe_as('alice',
	q{SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => now() + interval '1 hour')}
);

# bob has one job of his own.
my $bob_id = enqueue_as('bob', 'SELECT 2');
jobq_wait_finished($node, $bob_id, "bob's job");

# ---------------------------------------------------------------------
# What bob may not see or do
# ---------------------------------------------------------------------

is( safe_as(
		'bob', q{
SELECT count(*) FROM jobq.jobs WHERE owner = 'alice'::regrole;
SELECT count(*), min(id), max(id) FROM jobq.jobs;}),
	"0\n1|$bob_id|$bob_id",
	"bob sees none of alice's jobs, only his own");
is(safe_as('bob', 'SELECT coalesce(sum(jobs), 0) FROM jobq.queue_stats'),
	'1', 'jobq.queue_stats counts only the jobs bob may see');

($ret, $out, $err) = psql_as('bob', "SELECT jobq.cancel($later_id)");
isnt($ret, 0, "bob cannot cancel alice's job");
like($err, qr/42704.*job $later_id does not exist/,
	"cancelling alice's job tells bob it does not exist: 42704");
($ret, $out, $err) = psql_as('bob', "SELECT jobq.retry($read_id)");
isnt($ret, 0, "bob cannot retry alice's dead job");
like($err, qr/42704/, "retrying alice's job tells bob it does not exist: 42704");
is( $node->safe_psql(
		'postgres', "SELECT status FROM jobq.jobs WHERE id = $later_id"),
	'pending',
	"alice's job is still pending");

for my $table ('jobq._queue', 'jobq._done', 'jobq._kinds')
{
	($ret, $out, $err) = psql_as('bob', "SELECT count(*) FROM $table");
	isnt($ret, 0, "bob cannot read $table");
	like($err, qr/42501/, "reading $table: 42501");
}
($ret, $out, $err) = psql_as('bob', "UPDATE jobq._queue SET owner = 'bob'");
like($err, qr/42501/, 'bob cannot update jobq._queue: 42501');

($ret, $out, $err) =
  psql_as('bob', q{SELECT jobq.register_kind('bob.kind', 'bob_fn(jsonb)')});
isnt($ret, 0, 'bob cannot register a kind');
like($err, qr/42501/, 'registering a kind: 42501');
($ret, $out, $err) = psql_as('bob', q{SELECT jobq.unregister_kind('sql')});
like($err, qr/42501/, 'unregistering a kind: 42501');
($ret, $out, $err) = psql_as('bob', 'SELECT jobq.prune()');
like($err, qr/42501/, 'pruning: 42501');

($ret, $out, $err) = psql_as('bob', 'SELECT * FROM jobq.workers');
isnt($ret, 0, 'bob cannot read jobq.workers');
like($err, qr/42501/, 'reading jobq.workers: 42501');

# ---------------------------------------------------------------------
# What alice and the superuser see
# ---------------------------------------------------------------------

my $alice_jobs = 1 + scalar(@escapes) + 1 + 1;
is( safe_as(
		'alice', q{
SELECT count(*), count(*) FILTER (WHERE owner = 'alice'::regrole) FROM jobq.jobs}
	),
	"$alice_jobs|$alice_jobs",
	'alice sees exactly her own jobs');
($ret, $out, $err) = psql_as('alice', "SELECT jobq.cancel($later_id)");
is($out, 't', 'alice can cancel her own job');
is( $node->safe_psql(
		'postgres', "SELECT status FROM jobq.jobs WHERE id = $later_id"),
	'cancelled',
	"alice's job is cancelled");

is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FILTER (WHERE owner = 'alice'::regrole),
	   count(*) FILTER (WHERE owner = 'bob'::regrole),
	   count(*) FILTER (WHERE owner = current_user::regrole)
  FROM jobq.jobs}),
	"$alice_jobs|1|1",
	'the superuser sees every job');

$node->stop;

done_testing();
