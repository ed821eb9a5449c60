# 019_hostile.pl: the hostile-input corpus.
#
# Generated cases (test/perl/JobqHostile.pm) for every public function of
# schema jobq and every built-in kind's payload: NULLs, wrong JSON types,
# huge and deeply nested values, extreme numbers, times and intervals,
# quotes, semicolons, control characters, unicode.  Each case expects a
# SQLSTATE or success.  The cases of a group run in one procedure, each in a
# subtransaction (a success is rolled back too), which records the SQLSTATE
# and whether a refused call changed anything: a fingerprint of every jobq
# table (row count and md5 of the rows) is taken before and after it.  The
# fingerprint is also taken between groups, in separate transactions.  The
# pack kinds check their payload only when the job runs: their cases are
# enqueued, run by the workers, and the job's last_error_sqlstate compared.
# One test per group lists the cases that did not end as expected; no case
# may end in an internal error (XX000) or crash the server.  Where pg_cron
# is not installed (PostgreSQL 18), the groups that call it (schedule,
# unschedule, schedule_timetable) are skipped, with the reason, and the
# schedules the other cases name are rows written into jobq._schedules.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;
use JobqHostile;

# why the groups that call pg_cron are skipped, or undef where it is installed
my $no_cron = jobq_pg_cron_missing();

my $node = jobq_node(
	'hostile', ($no_cron ? '' : q{
shared_preload_libraries = 'jobq,pg_cron'
cron.database_name = 'postgres'
}) . q{
max_worker_processes = 40
jobq.workers = 2
jobq.poll_interval = '1s'
jobq.http_allowed_hosts = '127.0.0.1'
synchronous_commit = off
timezone = 'UTC'
},
	extra => [ '--encoding=UTF8', '--locale=C' ]);

my $schema = slurp_file('examples/seed_schema.sql');
# the schedules of other and app: through pg_cron, or (without it) the rows
# jobq.schedule would have written, with no pg_cron job
my ($cron_ext, $their_schedule, $my_schedule, $schedule_rows) =
  $no_cron
  ? ('', '', '', q{
INSERT INTO jobq._schedules (name, schedule, kind, payload, owner, cron_job_name)
VALUES ('theirsched', '0 0 1 1 *', 'sql', '{"sql": "SELECT 1"}', 'other', 'none'),
	   ('mysched', '0 0 1 1 *', 'sql', '{"sql": "SELECT 1"}', 'app', 'none');})
  : ('CREATE EXTENSION pg_cron;',
	q{SELECT jobq.schedule('theirsched', '0 0 1 1 *', 'sql', '{"sql": "SELECT 1"}');},
	q{SELECT jobq.schedule('mysched', '0 0 1 1 *', 'sql', '{"sql": "SELECT 1"}');},
	'');
$node->safe_psql(
	'postgres', qq{
$cron_ext
CREATE EXTENSION jobq_pack CASCADE;
CREATE ROLE app LOGIN;
CREATE ROLE other LOGIN;
CREATE ROLE nobody LOGIN;
GRANT CREATE ON SCHEMA public TO app;
GRANT EXECUTE ON FUNCTION jobq.register_kind(text, regprocedure, text, integer, interval, integer),
	jobq.unregister_kind(text), jobq.prune() TO app, other;

CREATE SCHEMA corpus;
GRANT USAGE ON SCHEMA corpus TO PUBLIC;
CREATE FUNCTION corpus.h(jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT \$1';
CREATE FUNCTION corpus.hv(jsonb) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION corpus.bad(integer) RETURNS integer LANGUAGE sql AS 'SELECT \$1';
CREATE FUNCTION corpus.txt(jsonb) RETURNS text LANGUAGE sql AS 'SELECT \$1::text';
CREATE FUNCTION corpus.srf(jsonb) RETURNS SETOF jsonb LANGUAGE sql AS 'SELECT \$1';
CREATE PROCEDURE corpus.proc(jsonb) LANGUAGE sql AS '';
CREATE FUNCTION corpus.private(jsonb) RETURNS jsonb LANGUAGE sql AS 'SELECT \$1';
REVOKE EXECUTE ON FUNCTION corpus.private(jsonb) FROM PUBLIC;

SELECT jobq.register_kind('privk', 'corpus.private(jsonb)');
SELECT jobq.create_channel('hook', 'http', '{"url": "http://127.0.0.1:9/base"}');
SELECT jobq.create_channel('mail', 'smtp', '{"url": "smtp://127.0.0.1:9", "from": "jobq\@example.com"}');
SELECT jobq.create_channel('secret', 'http', '{"url": "http://127.0.0.1:9/"}');
SELECT jobq.grant_channel('hook', 'app');
SELECT jobq.grant_channel('mail', 'app');
SELECT jobq.grant_http('app');
SELECT jobq.create_queue('qexists', '{"concurrency": 2}');

SET ROLE other;
SELECT jobq.register_kind('theirs', 'corpus.h(jsonb)');
$their_schedule
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => '2100-01-01');
SET ROLE app;
SELECT jobq.register_kind('mine', 'corpus.h(jsonb)');
$my_schedule
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => '2100-01-01', job_key => 'fixture');
SELECT jobq.cancel(jobq.enqueue('sql', '{"sql": "SELECT 2"}', run_at => '2100-01-01'));
$schema
-- one rule, so that slots.generate has slots to make (over an endless range
-- it would never end: such ranges are refused)
INSERT INTO availability_rules (facility_id, doctor_id, day_of_week, start_time, end_time,
								slot_minutes, valid_from)
VALUES (1, 1, 1, '08:00', '09:00', 30, '2026-01-01');
CREATE TABLE arch_src (id int, ts timestamptz);
CREATE TABLE arch_dst (id int, ts timestamptz);
CREATE MATERIALIZED VIEW corpus_mv AS SELECT 1 AS a;
CREATE UNIQUE INDEX ON corpus_mv (a);
RESET ROLE;
$schedule_rows

CREATE TABLE corpus.cases (
	id integer PRIMARY KEY, grp text NOT NULL, role text, mode text NOT NULL,
	kind text, sql text NOT NULL, expected text NOT NULL, tag text NOT NULL);
CREATE TABLE corpus.results (
	id integer PRIMARY KEY, sqlstate text NOT NULL, message text,
	changed boolean NOT NULL DEFAULT false, job_id bigint);

-- every table of schema jobq: its row count and the md5 of its rows
CREATE FUNCTION corpus.fingerprint() RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE
	r regclass;
	part text;
	fp text := '';
BEGIN
	FOR r IN SELECT c.oid FROM pg_class c
			  WHERE c.relnamespace = 'jobq'::regnamespace AND c.relkind IN ('r', 'p')
			  ORDER BY c.relname LOOP
		EXECUTE format('SELECT count(*) || '':'' || coalesce(md5(string_agg(t::text, '','' ORDER BY t::text)), '''') FROM %s t', r)
			INTO part;
		fp := fp || r::text || '=' || part || ' ';
	END LOOP;
	RETURN fp;
END \$f\$;

-- run the cases of a group after case "after", committing each result
CREATE PROCEDURE corpus.run(g text, after integer) LANGUAGE plpgsql AS \$f\$
DECLARE
	c record;
	st text;
	msg text;
	before text;
	jid bigint;
BEGIN
	FOR c IN SELECT * FROM corpus.cases WHERE grp = g AND id > after ORDER BY id LOOP
		before := CASE WHEN c.mode = 'call' THEN corpus.fingerprint() END;
		jid := NULL;
		BEGIN
			IF c.role IS NOT NULL THEN
				PERFORM set_config('role', c.role, true);
			END IF;
			IF c.mode = 'job' THEN
				EXECUTE format('SELECT jobq.enqueue(%L, %s, max_attempts => 1, timeout => ''5 s'')', c.kind, c.sql)
					INTO jid;
				st := '00000';
				msg := NULL;
			ELSE
				EXECUTE c.sql;
				RAISE SQLSTATE 'QZ999';
			END IF;
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
			IF st = 'QZ999' THEN
				st := '00000';
				msg := NULL;
			END IF;
		END;
		RESET ROLE;
		INSERT INTO corpus.results (id, sqlstate, message, changed, job_id)
		VALUES (c.id, st, left(msg, 300), c.mode = 'call' AND st <> '00000' AND corpus.fingerprint() <> before, jid);
		COMMIT;
	END LOOP;
END \$f\$;
});

my %fixture = (
	pending => $node->safe_psql('postgres',
		q{SELECT id FROM jobq.jobs WHERE job_key = 'fixture'}),
	cancelled => $node->safe_psql('postgres',
		q{SELECT id FROM jobq.jobs WHERE status = 'cancelled'}),
	theirs => $node->safe_psql('postgres',
		q{SELECT id FROM jobq.jobs WHERE owner = 'other'::regrole}));

# load the cases
my @cases = hostile_cases();
my @groups;
my %seen;
my $id = 0;
my @rows;
for my $c (@cases)
{
	$c->{id} = ++$id;
	$c->{sql} =~ s/:(pending|cancelled|theirs)\b/$fixture{$1}/g
	  if $c->{grp} =~ /^(cancel|retry)$/;
	push @groups, $c->{grp} unless $seen{ $c->{grp} }++;
	push @rows, sprintf('(%d, %s, %s, %s, %s, %s, %s, %s)',
		$id, map { sql_literal($c->{$_}) } qw(grp role mode kind sql expected tag));
}
while (my @batch = splice(@rows, 0, 200))
{
	$node->safe_psql('postgres',
		'INSERT INTO corpus.cases VALUES ' . join(",\n", @batch));
}
cmp_ok(scalar(@cases), '>=', 2000, 'the corpus has at least 2000 cases');

# every public function (from the catalog) is called by some case, and
# every built-in kind (from jobq.kinds) has a group of payload cases
my @missing = grep {
	my $f = $_;
	!grep { $_->{sql} =~ /\bjobq\.\Q$f\E\(/ } @cases
} split /\n/, $node->safe_psql('postgres', q{
SELECT DISTINCT p.proname FROM pg_proc p
 WHERE p.pronamespace = 'jobq'::regnamespace AND p.proname !~ '^_' ORDER BY 1});
is(join(', ', @missing), '', 'every public function of schema jobq has cases');
@missing = grep {
	my $k = $_;
	!grep { $_ eq "payload $k" || $_ eq "pack $k (job)" } @groups
} split /\n/, $node->safe_psql('postgres', 'SELECT kind FROM jobq.kinds WHERE builtin ORDER BY 1');
is(join(', ', @missing), '', 'every built-in kind has payload cases');

sub fingerprint { return $node->safe_psql('postgres', 'SELECT corpus.fingerprint()') }

# Run a group; a case that ends the session (a crash, an uncatchable
# error) is recorded as such and the group goes on after it.
my @aborted;
sub run_group
{
	my ($g) = @_;
	my $after = 0;
	while (1)
	{
		my ($out, $err);
		my $ret = $node->psql(
			'postgres',
			'CALL corpus.run(' . sql_literal($g) . ", $after)",
			stdout => \$out,
			stderr => \$err,
			timeout => 300);
		return if $ret == 0;
		$node->poll_query_until('postgres', 'SELECT true')
		  or die "the server did not come back after group $g";
		my $next = $node->safe_psql(
			'postgres', qq{
SELECT min(c.id) FROM corpus.cases c
 WHERE c.grp = } . sql_literal($g) . qq{ AND c.id > $after
   AND NOT EXISTS (SELECT FROM corpus.results r WHERE r.id = c.id)});
		return if $next eq '';
		$err =~ s/\s+/ /g;
		push @aborted, "case $next: $err";
		$node->safe_psql('postgres',
			"INSERT INTO corpus.results (id, sqlstate, message) VALUES ($next, 'ABORT', "
			  . sql_literal(substr($err, 0, 300)) . ')');
		$after = $next;
	}
}

# the groups that call pg_cron, skipped without it
my %skipped = map { $_->{grp} => 1 } grep { $_->{pg_cron} && $no_cron } @cases;
my @job_groups = grep { /\(job\)$/ && !$skipped{$_} } @groups;
my @call_groups = grep { !/\(job\)$/ && !$skipped{$_} } @groups;
my @leaks;
use Time::HiRes qw(time);
for my $g (@call_groups)
{
	my $before = fingerprint();
	my $t0 = time;
	run_group($g);
	note(sprintf('group %s: %.1f s', $g, time - $t0));
	push @leaks, $g if fingerprint() ne $before;
}
is(join(', ', @leaks), '',
	'no group of calls (each rolled back or refused) changed a jobq table');

# the pack kinds' jobs, enqueued as app and run by the workers; they commit,
# and the fingerprint must see it (else the checks above prove nothing)
my $before_jobs = fingerprint();
run_group($_) for @job_groups;
isnt(fingerprint(), $before_jobs, 'the fingerprint sees the jobs enqueued');
ok( $node->poll_query_until(
		'postgres', q{
SELECT count(*) = 0 FROM corpus.results r JOIN jobq._queue q ON q.id = r.job_id}),
	'every job of the pack kinds has finished');
$node->safe_psql(
	'postgres', q{
UPDATE corpus.results r
   SET sqlstate = CASE d.status WHEN 'succeeded' THEN '00000' ELSE coalesce(d.last_error_sqlstate, d.status) END,
	   message = left(d.last_error, 300)
  FROM jobq._done d WHERE d.id = r.job_id});

# one test per group: the cases that did not end as expected
my %results = map { my @f = split /\|/, $_, 4; ($f[0] => [ @f[ 1 .. 3 ] ]) }
  split /\n/,
  $node->safe_psql('postgres',
	q{SELECT id, sqlstate, changed, replace(replace(coalesce(message, ''), E'\n', ' '), '|', '/') FROM corpus.results});
my (@changed, @internal, %lead_fail);
for my $g (@groups)
{
	if ($skipped{$g})
	{
	  SKIP:
		{
			skip "hostile cases of $g: $no_cron", 1;
		}
		next;
	}
	my @bad;
	for my $c (grep { $_->{grp} eq $g } @cases)
	{
		my $r = $results{ $c->{id} } // [ 'none', 'f', 'no result' ];
		my ($got, $changed, $msg) = @$r;
		(my $sql = $c->{sql}) =~ s/\s+/ /g;
		$sql = substr($sql, 0, 160) . '...' if length($sql) > 160;
		$sql = "$c->{kind} job: $sql" if $c->{mode} eq 'job';
		my $who = $c->{role} // 'superuser';
		push @changed, "case $c->{id} ($who): $sql" if $changed eq 't';
		push @internal, "case $c->{id} ($who): $sql: $msg" if $got eq 'XX000';
		next if $got eq $c->{expected};
		my $tag = $c->{tag} ? " [$c->{tag}]" : '';
		push @bad, "case $c->{id}$tag ($who): expected $c->{expected}, got $got: $sql"
		  . ($msg ne '' ? " -- $msg" : '');
		$lead_fail{ $c->{tag} }++ if $c->{tag};
	}
	is(join("\n", @bad), '', "hostile cases of $g: every case ends as expected");
}
is(join("\n", @changed), '', 'no refused call changed a jobq table');
is(join("\n", @internal), '', 'no case ends in an internal error (XX000)');
is(join("\n", @aborted), '', 'no case ended its session');
diag("cases failing that are marked $_: $lead_fail{$_}") for sort keys %lead_fail;

# 0 crashes: the server is up and no process died of a signal
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal/,
	'no server process crashed');

$node->stop;
done_testing();
