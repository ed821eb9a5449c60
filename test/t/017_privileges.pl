# 017_privileges.pl: who may do what with jobq, as a matrix of roles and
# actions, each cell run as that role.
#
# Roles: the superuser, a job owner (alice), a role with no grants (bob),
# two roles allowed to register kinds (kay, kim: EXECUTE on
# jobq.register_kind and jobq.unregister_kind), a member of kay (kmem), a
# role granted the channels hooks and mail (carol), a role granted URLs
# (hank, jobq.grant_http), the owner of the database (dora), a role with
# CREATE on schema public (cora) and a member of pg_monitor (mona).
# Actions: enqueue each kind, see jobs in jobq.jobs and each view, cancel
# and retry, register, replace and remove kinds, schedule and unschedule,
# use and manage channels, read secrets, change jobq's settings, read
# jobq.workers, call internal functions, and read or write jobq's tables
# and views directly.  An allowed cell checks its effect (the row changed,
# the job ran as that role); a refused one its SQLSTATE and that nothing
# changed.  Then the catalog: every SECURITY DEFINER, SQL and PL/pgSQL
# function of schema jobq pins search_path (the exceptions listed with
# their reason), and PUBLIC is granted exactly the listed views and
# functions, none of which shows another role's jobs or any secret.  The
# job pack, jobq_pack, is installed: its functions are in schema jobq too.
# Deliveries are not made here (no net worker): network jobs stay pending.
# Checked when a job runs, not only at enqueue: EXECUTE on a kind's handler
# revoked after the enqueue (the job is dead with 42501), and LISTEN,
# UNLISTEN and DISCARD, refused inside every job (42501: a job runs as a
# security-restricted operation; matview.refresh, the one kind that does
# not, runs only REFRESH, which restricts the view's query itself).
# Where pg_cron is not installed (PostgreSQL 18), the rows of the matrix
# that call it (schedule, replace or unschedule a schedule) are skipped,
# with the reason; alice's schedule, which two rows read, is then a row
# written into jobq._schedules directly.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

# why the rows that call pg_cron are skipped, or undef where it is installed
my $no_cron = jobq_pg_cron_missing();

my $node = jobq_node(
	'privileges', ($no_cron ? '' : q{
shared_preload_libraries = 'jobq,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
}) . q{
max_worker_processes = 40
jobq.workers = 2
jobq.poll_interval = '1s'
jobq.http_max_in_flight = 0
jobq.http_allowed_hosts = '127.0.0.1'
jobq.webhook_signing_key = 'secret-guc-signing-key'
});

my $su = $node->safe_psql('postgres', 'SELECT current_user');

sub sql { return $node->safe_psql('postgres', $_[0]) }

# ---------------------------------------------------------------------
# Roles, kinds, channels, schedules and alice's jobs
# ---------------------------------------------------------------------

my @roles = qw(su alice bob kay kim kmem carol hank dora cora mona);
my %role_name = map { $_ => $_ } @roles;
$role_name{su} = $su;

sql('CREATE EXTENSION pg_cron') unless $no_cron;
sql(q{
CREATE EXTENSION jobq_pack CASCADE;
SELECT jobq.create_queue('visible', '{"concurrency": 4}');
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE kay LOGIN;
CREATE ROLE kim LOGIN;
CREATE ROLE kmem LOGIN IN ROLE kay;
CREATE ROLE carol LOGIN;
CREATE ROLE hank LOGIN;
CREATE ROLE dora LOGIN;
CREATE ROLE cora LOGIN;
CREATE ROLE mona LOGIN IN ROLE pg_monitor;
CREATE ROLE nobody;
ALTER DATABASE postgres OWNER TO dora;
GRANT CREATE ON SCHEMA public TO cora;
GRANT EXECUTE ON FUNCTION
	jobq.register_kind(text, regprocedure, text, integer, interval, integer),
	jobq.register_external_kind(text, text, integer, interval, integer),
	jobq.unregister_kind(text) TO kay, kim;
SELECT jobq.register_external_kind('ext.k');
-- the leases of alice's external jobs, for the cells that end them
CREATE TABLE public.leases (tag text, lease bigint);
GRANT SELECT ON public.leases TO PUBLIC;

-- what the jobs of the matrix write: the cell's tag and who ran it
CREATE TABLE public.ran (tag text, who text);
GRANT INSERT ON public.ran TO PUBLIC;
CREATE FUNCTION public.rec(p jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO public.ran VALUES (p ->> 'tag', current_user) $$;
CREATE FUNCTION public.rec2(p jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO public.ran VALUES (p ->> 'tag', 'rec2 ' || current_user) $$;
CREATE FUNCTION public.rec_priv(p jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO public.ran VALUES (p ->> 'tag', current_user) $$;
REVOKE EXECUTE ON FUNCTION public.rec_priv(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.rec_priv(jsonb) TO kay;

SET ROLE kay;
SELECT jobq.register_kind('kay.pub', 'public.rec(jsonb)');
SELECT jobq.register_kind('kay.priv', 'public.rec_priv(jsonb)');
RESET ROLE;

SELECT jobq.create_channel('hooks', 'http', '{"url": "http://127.0.0.1:9/hooks"}',
	'{"bearer_token": "secret-hooks-bearer", "headers": {"X-Api-Key": "secret-hooks-header"}}');
SELECT jobq.create_channel('mail', 'smtp', '{"url": "smtp://127.0.0.1:9", "from": "jobq@example.test"}',
	'{"username": "jobq", "password": "secret-mail-password"}');
SELECT jobq.create_channel('open', 'http', '{"url": "http://127.0.0.1:9/open"}',
	'{"bearer_token": "secret-open-bearer"}');
SELECT jobq.grant_channel('hooks', 'carol');
SELECT jobq.grant_channel('mail', 'carol');
SELECT jobq.grant_channel('open', 'PUBLIC');
SELECT jobq.grant_http('hank');

-- a delivery of alice's
INSERT INTO jobq._deliveries (job_id, attempt, kind, owner, channel, outcome,
	duration_ms, started_at, finished_at)
VALUES (0, 1, 'http', 'alice', 'open', 'delivered', 1, now(), now());
});

# alice's schedule that no cell changes: a network job, which stays pending
# (without pg_cron, the row jobq.schedule would have written, with no
# pg_cron job)
sql($no_cron ? q{
INSERT INTO jobq._schedules (name, schedule, kind, payload, owner, cron_job_name)
VALUES ('alice.fixed', '0 0 1 1 *', 'http', '{"channel": "open"}', 'alice', 'none')} : q{
SET ROLE alice;
SELECT jobq.schedule('alice.fixed', '0 0 1 1 *', 'http', '{"channel": "open"}');
RESET ROLE;});

# alice's jobs in queue alice_q: one pending, one succeeded, one dead
my $alice_done = jobq_safe_as($node, 'alice', q{
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => 'alice_q', run_at => now() + interval '1 day');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => 'alice_q');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1/0"}', queue => 'alice_q', max_attempts => 1);
});
for my $id ((split /\n/, $alice_done)[ 1, 2 ])
{
	jobq_wait_finished($node, $id, "alice's job $id");
}
is( sql(q{
SELECT string_agg(status, ',' ORDER BY id) FROM jobq.jobs WHERE queue = 'alice_q'}),
	'pending,succeeded,dead',
	'alice has a pending, a succeeded and a dead job in queue alice_q');

# ---------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------

# SQL functions left without SET search_path, and why that is safe.
my %path_exceptions = (
	map {
		$_ =>
		  'a kind\'s handler (jobq\'s or jobq_pack\'s): one schema-qualified statement that passes the caller\'s search_path to its pinned function, for table names only'
	  } qw(jobq.attendance_aggregate(jsonb) jobq.attendance_thresholds(jsonb)
	  jobq.matview_refresh(jsonb) jobq.reservations_release(jsonb)
	  jobq.slots_generate(jsonb) jobq.table_archive(jsonb)));
is( sql(q{
SELECT string_agg(p.oid::regprocedure::text, ' ' ORDER BY p.oid::regprocedure::text)
  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
 WHERE p.pronamespace = 'jobq'::regnamespace
   AND (p.prosecdef OR l.lanname IN ('sql', 'plpgsql'))
   AND NOT EXISTS (SELECT FROM unnest(p.proconfig) c
					WHERE c ~ '^search_path=("?pg_catalog"?)(, ?"?pg_temp"?)?$')}),
	join(' ', sort keys %path_exceptions),
	'every SECURITY DEFINER, SQL and PL/pgSQL function of jobq pins search_path to pg_catalog, but the listed exceptions'
);
note "$_: $path_exceptions{$_}" for sort keys %path_exceptions;
is( sql(q{
SELECT string_agg(p.oid::regprocedure::text, ' ') FROM pg_proc p
 WHERE p.pronamespace = 'jobq'::regnamespace AND p.prosecdef
   AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)}),
	'', 'every SECURITY DEFINER function of jobq is owned by the superuser that installed it');

# What PUBLIC may read: views that show only the jobs, schedules and
# deliveries of roles the reader is a member of (security barriers), the
# channels it may use without their secret values, and the kinds.
is( sql(q{
SELECT string_agg(c.oid::regclass::text || ':' || a.privilege_type, ' '
				  ORDER BY c.oid::regclass::text, a.privilege_type)
  FROM pg_class c,
	   aclexplode(coalesce(c.relacl,
			acldefault((CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char", c.relowner))) a
 WHERE c.relnamespace = 'jobq'::regnamespace AND a.grantee = 0}),
	'jobq.channels:SELECT jobq.deliveries:SELECT jobq.jobs:SELECT jobq.kinds:SELECT '
	  . 'jobq.queue_stats:SELECT jobq.queues:SELECT jobq.schedules:SELECT',
	'PUBLIC may read seven views of jobq and nothing else: no table, no sequence');
is( sql(q{
SELECT string_agg(relname, ' ' ORDER BY relname) FROM pg_class
 WHERE relnamespace = 'jobq'::regnamespace
   AND relname IN ('jobs', 'channels', 'deliveries', 'schedules')
   AND coalesce(reloptions @> '{security_barrier=true}', false)}),
	'channels deliveries jobs schedules',
	'the views that filter rows by role are security barriers');
is( sql(q{
SELECT string_agg(a.privilege_type, ' ') FROM pg_namespace n, aclexplode(n.nspacl) a
 WHERE n.nspname = 'jobq' AND a.grantee = 0}),
	'USAGE', 'PUBLIC has USAGE on schema jobq, not CREATE');

# What PUBLIC may execute, and why none of it shows another role's jobs or
# a secret.
my %public_functions = (
	(   map { $_ => 'the interface: checks the caller\'s rights itself' }
		  qw(enqueue enqueue_many cancel retry retry_jobs cancel_jobs purge_jobs
		  current_job set_progress schedule unschedule run_schedule pause_schedule resume_schedule
		  schedule_timetable)
	),
	(   map { $_ => 'a kind of jobq or of jobq_pack: runs with the caller\'s rights' }
		  qw(slots_generate reservations_release attendance_aggregate
		  attendance_thresholds matview_refresh table_archive _prune_kind
		  _pack_table _pack_columns _pack_month _pack_regclass
		  _slots_generate _reservations_release _attendance_aggregate
		  _attendance_thresholds _matview_refresh _table_archive)
	),
	(   map { $_ => 'network helper: reads no table, runs with the caller\'s rights' }
		  qw(_granted _payload_text _addresses _bare_address _mime_header _mime_part)
	),
	(   map { $_ => 'the external worker API: takes and ends only jobs of roles whose privileges the caller has' }
		  qw(claim claim_wait heartbeat complete fail snooze)
	),
	_schedule_check => 'enqueues as the caller and rolls back',
	_progress => 'shows only the running jobs of roles the caller is a member of',
	_queue_state => 'shows the queues\' running counts, no job; concurrency keys to pg_monitor only',
	_schedule_ran =>
	  'SECURITY DEFINER: records only the live job that has the schedule\'s key and owner',);
is( sql(q{
SELECT string_agg(DISTINCT p.proname, ' ') FROM pg_proc p,
	   aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE p.pronamespace = 'jobq'::regnamespace AND a.grantee = 0}),
	join(' ', sort keys %public_functions),
	'PUBLIC may execute exactly the listed functions of jobq');

# ---------------------------------------------------------------------
# The matrix
# ---------------------------------------------------------------------
#
# ok        allowed: the action's effect is checked
# 5 chars   refused with this SQLSTATE, and nothing changed (55000: a view
#           that cannot be written, whoever tries)
# all/none  sees all of alice's rows, or none of them
# public    sees only the channel granted to PUBLIC
# names     sees the names of secrets, never their values
# f         returns false and changes nothing
# 0         returns 0 (matched none of alice's jobs) and changes nothing
# -         not tried (it would break the test's own set-up)
# A kind belongs to the role that registered it: kim, allowed to register
# kinds, may neither replace nor remove kay's (hole 1 of issue 14); kay, a
# member of kay (kmem) and superusers may.
my $matrix = q{
                               su    alice bob   kay   kim   kmem  carol hank  dora  cora  mona
enqueue sql                    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue_many sql               ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue kay.pub                ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue kay.priv               ok    42501 42501 ok    42501 ok    42501 42501 42501 42501 42501
enqueue slots.generate         ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue reservations.release   ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue attendance.aggregate   ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue attendance.thresholds  ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue matview.refresh        ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue table.archive          ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue jobq.prune             ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
enqueue http url               ok    42501 42501 42501 42501 42501 42501 ok    42501 42501 42501
enqueue_many http url          ok    42501 42501 42501 42501 42501 42501 ok    42501 42501 42501
enqueue webhook url            ok    42501 42501 42501 42501 42501 42501 ok    42501 42501 42501
enqueue http hooks             ok    42501 42501 42501 42501 42501 ok    42501 42501 42501 42501
enqueue sms hooks              ok    42501 42501 42501 42501 42501 ok    42501 42501 42501 42501
enqueue webhook hooks          ok    42501 42501 42501 42501 42501 ok    42501 42501 42501 42501
enqueue email mail             ok    42501 42501 42501 42501 42501 ok    42501 42501 42501 42501
enqueue sms open               ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
cancel own job                 ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
cancel alice's job             ok    ok    42704 42704 42704 42704 42704 42704 42704 42704 42704
retry alice's job              ok    ok    42704 42704 42704 42704 42704 42704 42704 42704 42704
retry_jobs alice's job         ok    ok    0     0     0     0     0     0     0     0     0
cancel_jobs alice's job        ok    ok    0     0     0     0     0     0     0     0     0
purge_jobs alice's job         ok    ok    0     0     0     0     0     0     0     0     0
claim alice's external job     ok    ok    0     0     0     0     0     0     0     0     0
complete alice's leased job    ok    ok    42704 42704 42704 42704 42704 42704 42704 42704 42704
see alice's jobs               all   all   none  none  none  none  none  none  none  none  none
see alice's queue_stats        all   all   none  none  none  none  none  none  none  none  none
see alice's deliveries         all   all   none  none  none  none  none  none  none  none  none
see alice's schedules          all   all   none  none  none  none  none  none  none  none  none
see kinds                      all   all   all   all   all   all   all   all   all   all   all
see channels                   all   public public public public public all  public public public public
see secret values              names names names names names names names names names names names
read jobq.workers              ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 ok
read jobq.databases            ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 ok
register own kind              ok    42501 42501 ok    ok    ok    42501 42501 42501 42501 42501
register own external kind     ok    42501 42501 ok    ok    ok    42501 42501 42501 42501 42501
register kind, private handler ok    42501 42501 ok    42501 ok    42501 42501 42501 42501 42501
register kind sql              22023 42501 42501 22023 22023 22023 42501 42501 42501 42501 42501
replace kay's kind             ok    42501 42501 ok    42501 ok    42501 42501 42501 42501 42501
unregister kay's kind          ok    42501 42501 ok    42501 ok    42501 42501 42501 42501 42501
unregister kind sql            22023 42501 42501 22023 22023 22023 42501 42501 42501 42501 42501
schedule own                   ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
replace alice's schedule       ok    ok    42501 42501 42501 42501 42501 42501 42501 42501 42501
unschedule alice's schedule    ok    ok    f     f     f     f     f     f     f     f     f
run alice's schedule           ok    ok    42704 42704 42704 42704 42704 42704 42704 42704 42704
pause alice's schedule         ok    ok    42704 42704 42704 42704 42704 42704 42704 42704 42704
resume alice's schedule        ok    ok    42704 42704 42704 42704 42704 42704 42704 42704 42704
call jobq._schedule_pause      ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
SET user setting               ok    ok    ok    ok    ok    ok    ok    ok    ok    ok    ok
SET superuser setting          ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
SET server setting             55P02 55P02 55P02 55P02 55P02 55P02 55P02 55P02 55P02 55P02 55P02
ALTER SYSTEM                   ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
ALTER DATABASE user setting    ok    42501 42501 42501 42501 42501 42501 42501 ok    42501 42501
ALTER DATABASE su setting      ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
ALTER ROLE self su setting     ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
SHOW webhook signing key       ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 ok
call jobq._worker_status       ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 ok
call jobq._database_status     ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 ok
call jobq._claim               ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
call jobq._net_request         ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
call jobq._schedule_delete     ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
call jobq._grantee             ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
call jobq._check_channel       ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
call jobq._on_create           ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
call jobq.prune                ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
create_channel                 ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
alter_channel                  ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
drop_channel                   ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
grant_channel                  ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
revoke_channel                 ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
grant_http                     ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
revoke_http                    ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
create_queue                   ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
alter_queue                    ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
pause_queue                    ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
resume_queue                   ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
drop_queue                     ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
call jobq._check_queue         ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
see queues                     all   all   all   all   all   all   all   all   all   all   all
read jobq._queue               ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
read jobq._done                ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
read jobq._kinds               ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
read jobq._channels            ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
read jobq._channel_grants      ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
read jobq._http_grants         ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
read jobq._deliveries          ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
read jobq._schedules           ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
read jobq._queues              ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._queue              ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._done               ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._kinds              ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._channels           ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._channel_grants     ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._http_grants        ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._deliveries         ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._schedules          ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq._queues             ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq.kinds               ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq.channels            ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq.deliveries          ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
write jobq.jobs                55000 55000 55000 55000 55000 55000 55000 55000 55000 55000 55000
write jobq.schedules           55000 55000 55000 55000 55000 55000 55000 55000 55000 55000 55000
write jobq.queues              55000 55000 55000 55000 55000 55000 55000 55000 55000 55000 55000
next jobq._queue_id_seq        ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
create in schema jobq          ok    42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
create in schema public        ok    42501 42501 42501 42501 42501 42501 42501 ok    ok    42501
alter table jobq._queue        -     42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
drop extension jobq            -     42501 42501 42501 42501 42501 42501 42501 42501 42501 42501
};

# The actions.  run: SQL run as the cell's role.  setup: SQL run first as
# the superuser; its last line of output is @ID@.  state: SQL run as the
# superuser after the cell (and polled for jobs that must run), whose output
# must be initial when refused and effect (a string, or a function of the
# role's name) when allowed.  label: the outcome of a run without error
# (default: ok).  cron: the action calls pg_cron (skipped without it).
# @ROLE@ is the role's name, @TAG@ a tag unique to the cell.
my $by_tag = q{
SELECT coalesce(string_agg(owner::text || ':' || status, ','), '') FROM jobq.jobs
 WHERE payload ->> 'tag' = '@TAG@'};
my $ran = q{SELECT coalesce(string_agg(who, ','), '') FROM public.ran WHERE tag = '@TAG@'};
my $pending = sub { "$_[0]:pending" };
my $same = sub { $_[0] };
my $sees = sub { my $all = shift; return sub { $_[0] eq $all ? 'all' : $_[0] eq '0' ? 'none' : "saw $_[0]" } };
my $true = sub { $_[0] eq 't' ? 'ok' : $_[0] };
my $one = sub { $_[0] eq '1' ? 'ok' : $_[0] };
# a finished job of alice's (status %s) in the cell's own queue, as a worker
# leaves it
my $alice_finished = q{
INSERT INTO jobq._done (id, kind, queue, payload, priority, status, attempts, max_attempts,
						run_at, owner, created_at, finished_at, last_error_sqlstate)
VALUES (nextval('jobq._queue_id_seq'), 'sql', 'q@TAG@', '{"sql": "SELECT 1"}', 0, '%s', 1, 1,
		now(), 'alice', now(), now(), '22012')
RETURNING id;};

my $sql_rec = q{jsonb_build_object('sql', 'INSERT INTO public.ran VALUES (''@TAG@'', current_user)')};
my $fresh_kay_kind = q{
SELECT jobq.unregister_kind('kay.k');
SET ROLE kay;
SELECT jobq.register_kind('kay.k', 'public.rec(jsonb)', queue => 'kq');
};
my $fresh_alice_schedule = q{
SELECT jobq.unschedule('alice.s');
SET ROLE alice;
SELECT jobq.schedule('alice.s', '0 0 1 1 *', 'sql', '{"sql": "SELECT 1"}');
};
my $alice_schedule_state = q{
SELECT coalesce((SELECT s.owner::text || '|' || s.schedule || '|' || j.username || '|' || j.schedule
				   FROM jobq._schedules s JOIN cron.job j ON j.jobid = s.cron_job_id
				  WHERE s.name = 'alice.s'), 'none')};
my $scratch = q{
SELECT jobq.drop_channel('scratch');
SELECT jobq.create_channel('scratch', 'http', '{"url": "http://127.0.0.1:9/"}', '{"bearer_token": "orig"}');
SELECT jobq.grant_channel('scratch', 'carol');
};
my $scratch_queue = q{
DELETE FROM jobq._queues WHERE name = 'scratch';
SELECT jobq.create_queue('scratch');
};
my $db_setting = q{
SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c
 WHERE s.setdatabase = (SELECT oid FROM pg_database WHERE datname = 'postgres') AND s.setrole = 0
   AND c LIKE '%s=%%'};

my %actions = (
	'enqueue sql' => {
		run => "SELECT jobq.enqueue('sql', $sql_rec)",
		state => $ran, initial => '', effect => $same, poll => 1 },
	'enqueue_many sql' => {
		run => "SELECT jobq.enqueue_many('sql', ARRAY[$sql_rec])",
		state => $ran, initial => '', effect => $same, poll => 1 },
	'enqueue kay.pub' => {
		run => q{SELECT jobq.enqueue('kay.pub', '{"tag": "@TAG@"}')},
		state => $ran, initial => '', effect => $same, poll => 1 },
	'enqueue kay.priv' => {
		run => q{SELECT jobq.enqueue('kay.priv', '{"tag": "@TAG@"}')},
		state => $ran, initial => '', effect => $same, poll => 1 },
	(   map {
			( "enqueue $_" => {
					run => "SELECT jobq.enqueue('$_', '{\"tag\": \"\@TAG\@\"}', run_at => now() + interval '1 day')",
					state => $by_tag, initial => '', effect => $pending })
		} qw(slots.generate reservations.release attendance.aggregate
		  attendance.thresholds matview.refresh table.archive jobq.prune)
	),
	'enqueue http url' => {
		run => q{SELECT jobq.enqueue('http', '{"url": "http://127.0.0.1:9/x", "tag": "@TAG@"}')},
		state => $by_tag, initial => '', effect => $pending },
	'enqueue_many http url' => {
		run => q{SELECT jobq.enqueue_many('http', ARRAY['{"url": "http://127.0.0.1:9/x", "tag": "@TAG@"}'::jsonb])},
		state => $by_tag, initial => '', effect => $pending },
	'enqueue webhook url' => {
		run => q{SELECT jobq.enqueue('webhook', '{"url": "http://127.0.0.1:9/x", "event": "e", "tag": "@TAG@"}')},
		state => $by_tag, initial => '', effect => $pending },
	'enqueue http hooks' => {
		run => q{SELECT jobq.enqueue('http', '{"channel": "hooks", "tag": "@TAG@"}')},
		state => $by_tag, initial => '', effect => $pending },
	'enqueue sms hooks' => {
		run => q{SELECT jobq.enqueue('sms', '{"channel": "hooks", "to": "+10", "message": "m", "tag": "@TAG@"}')},
		state => $by_tag, initial => '', effect => $pending },
	'enqueue webhook hooks' => {
		run => q{SELECT jobq.enqueue('webhook', '{"channel": "hooks", "event": "e", "tag": "@TAG@"}')},
		state => $by_tag, initial => '', effect => $pending },
	'enqueue email mail' => {
		run => q{SELECT jobq.enqueue('email', '{"channel": "mail", "to": "a@example.test", "subject": "s", "text": "t", "tag": "@TAG@"}')},
		state => $by_tag, initial => '', effect => $pending },
	'enqueue sms open' => {
		run => q{SELECT jobq.enqueue('sms', '{"channel": "open", "to": "+10", "message": "m", "tag": "@TAG@"}')},
		state => $by_tag, initial => '', effect => $pending },
	'cancel own job' => {
		run => q{SELECT jobq.cancel(jobq.enqueue('sql', '{"sql": "SELECT 1", "tag": "@TAG@"}', run_at => now() + interval '1 day'))},
		label => $true,
		state => $by_tag, initial => '', effect => sub { "$_[0]:cancelled" } },
	"cancel alice's job" => {
		setup => q{
SET ROLE alice;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => now() + interval '1 day');},
		run => 'SELECT jobq.cancel(@ID@)', label => $true,
		state => 'SELECT status FROM jobq.jobs WHERE id = @ID@',
		initial => 'pending', effect => 'cancelled' },
	"retry alice's job" => {
		setup => q{
SET ROLE alice;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => now() + interval '1 day') AS id \gset
SELECT jobq.cancel(:id) \gset
SELECT :id;},
		run => 'SELECT jobq.retry(@ID@)', label => $true,
		state => q{SELECT CASE status WHEN 'cancelled' THEN 'cancelled' ELSE 'retried' END FROM jobq.jobs WHERE id = @ID@},
		initial => 'cancelled', effect => 'retried' },
	"retry_jobs alice's job" => {
		setup => sprintf($alice_finished, 'dead'),
		run => q{SELECT jobq.retry_jobs(queue => 'q@TAG@', sqlstate => '22012')}, label => $one,
		state => 'SELECT status FROM jobq.jobs WHERE id = @ID@',
		initial => 'dead', effect => 'succeeded', poll => 1 },
	"claim alice's external job" => {
		setup => q{
SET ROLE alice;
SELECT jobq.enqueue('ext.k', '{"tag": "@TAG@"}', queue => 'q@TAG@');},
		run => q{SELECT count(*) FROM jobq.claim(ARRAY['q@TAG@'])}, label => $one,
		state => 'SELECT status FROM jobq.jobs WHERE id = @ID@',
		initial => 'pending', effect => 'running' },
	"complete alice's leased job" => {
		setup => q{
SET ROLE alice;
SELECT jobq.enqueue('ext.k', '{"tag": "@TAG@"}', queue => 'q@TAG@');
RESET ROLE;
INSERT INTO public.leases
	SELECT '@TAG@', lease_id FROM jobq.claim(ARRAY['q@TAG@']);
SELECT id FROM jobq._queue WHERE queue = 'q@TAG@';},
		run => q{SELECT jobq.complete(@ID@, (SELECT lease FROM public.leases WHERE tag = '@TAG@'))},
		state => 'SELECT status FROM jobq.jobs WHERE id = @ID@',
		initial => 'running', effect => 'succeeded' },
	"cancel_jobs alice's job" => {
		setup => q{
SET ROLE alice;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => 'q@TAG@', run_at => now() + interval '1 day');},
		run => q{SELECT jobq.cancel_jobs(queue => 'q@TAG@')}, label => $one,
		state => 'SELECT status FROM jobq.jobs WHERE id = @ID@',
		initial => 'pending', effect => 'cancelled' },
	"purge_jobs alice's job" => {
		setup => sprintf($alice_finished, 'succeeded'),
		run => q{SELECT jobq.purge_jobs(queue => 'q@TAG@')}, label => $one,
		state => 'SELECT count(*) FROM jobq.jobs WHERE id = @ID@',
		initial => '1', effect => '0' },
	"see alice's jobs" => {
		run => q{SELECT count(*) FROM jobq.jobs WHERE queue = 'alice_q'},
		label => $sees->('3') },
	"see alice's queue_stats" => {
		run => q{SELECT coalesce(sum(jobs), 0) FROM jobq.queue_stats WHERE queue = 'alice_q'},
		label => $sees->('3') },
	"see alice's deliveries" => {
		run => q{SELECT count(*) FROM jobq.deliveries WHERE owner = 'alice'::regrole},
		label => $sees->('1') },
	"see alice's schedules" => {
		run => q{SELECT count(*) FROM jobq.schedules WHERE name = 'alice.fixed'},
		label => $sees->('1') },
	'see kinds' => {
		run => q{SELECT count(*) FROM jobq.kinds WHERE kind IN ('sql', 'kay.pub', 'kay.priv')},
		label => $sees->('3') },
	'see channels' => {
		run => q{SELECT string_agg(name, ',' ORDER BY name) FROM jobq.channels},
		label => sub {
			$_[0] eq 'hooks,mail,open' ? 'all' : $_[0] eq 'open' ? 'public' : "saw $_[0]" } },
	'see secret values' => {
		run => q{SELECT c::text FROM jobq.channels c},
		label => sub {
			$_[0] =~ /secret-/ ? 'LEAKED' : $_[0] =~ /bearer_token/ ? 'names' : "saw $_[0]" } },
	'read jobq.workers' => { run => 'SELECT count(*) >= 0 FROM jobq.workers', label => $true },
	'read jobq.databases' => { run => 'SELECT count(*) >= 0 FROM jobq.databases', label => $true },
	'register own kind' => {
		run => q{SELECT jobq.register_kind('@ROLE@.own', 'public.rec(jsonb)')},
		state => q{SELECT coalesce((SELECT registered_by::text FROM jobq.kinds WHERE kind = '@ROLE@.own'), '')},
		initial => '', effect => $same },
	'register own external kind' => {
		run => q{SELECT jobq.register_external_kind('@ROLE@.ext')},
		state => q{SELECT coalesce((SELECT registered_by::text || ' ' || external FROM jobq.kinds WHERE kind = '@ROLE@.ext'), '')},
		initial => '', effect => sub { "$_[0] true" } },
	'register kind, private handler' => {
		run => q{SELECT jobq.register_kind('@ROLE@.priv', 'public.rec_priv(jsonb)')},
		state => q{SELECT coalesce((SELECT registered_by::text FROM jobq.kinds WHERE kind = '@ROLE@.priv'), '')},
		initial => '', effect => $same },
	'register kind sql' => {
		run => q{SELECT jobq.register_kind('sql', 'public.rec(jsonb)')},
		state => q{SELECT coalesce(handler, 'none') FROM jobq.kinds WHERE kind = 'sql'},
		initial => 'none' },
	"replace kay's kind" => {
		setup => $fresh_kay_kind,
		run => q{SELECT jobq.register_kind('kay.k', 'public.rec2(jsonb)', queue => 'taken')},
		state => q{SELECT coalesce((SELECT handler || '|' || queue FROM jobq.kinds WHERE kind = 'kay.k'), 'none')},
		initial => 'public.rec(pg_catalog.jsonb)|kq', effect => 'public.rec2(pg_catalog.jsonb)|taken' },
	"unregister kay's kind" => {
		setup => $fresh_kay_kind,
		run => q{SELECT jobq.unregister_kind('kay.k')}, label => $true,
		state => q{SELECT count(*) FROM jobq.kinds WHERE kind = 'kay.k'},
		initial => '1', effect => '0' },
	'unregister kind sql' => {
		run => q{SELECT jobq.unregister_kind('sql')},
		state => q{SELECT count(*) FROM jobq.kinds WHERE kind = 'sql'},
		initial => '1' },
	'schedule own' => {
		cron => 1,
		run => q{SELECT jobq.schedule('@ROLE@.own', '0 0 1 1 *', 'sql', '{"sql": "SELECT 1"}') > 0},
		label => $true,
		state => q{
SELECT coalesce((SELECT s.owner::text || '|' || j.username
				   FROM jobq._schedules s JOIN cron.job j ON j.jobid = s.cron_job_id
				  WHERE s.name = '@ROLE@.own'), '')},
		initial => '', effect => sub { "$_[0]|$_[0]" } },
	"replace alice's schedule" => {
		cron => 1,
		setup => $fresh_alice_schedule,
		run => q{SELECT jobq.schedule('alice.s', '0 0 2 1 *', 'sql', '{"sql": "SELECT 2"}') > 0},
		label => $true,
		state => $alice_schedule_state,
		initial => 'alice|0 0 1 1 *|alice|0 0 1 1 *',
		effect => sub { "$_[0]|0 0 2 1 *|$_[0]|0 0 2 1 *" } },
	"unschedule alice's schedule" => {
		cron => 1,
		setup => $fresh_alice_schedule,
		run => q{SELECT jobq.unschedule('alice.s')}, label => $true,
		state => $alice_schedule_state,
		initial => 'alice|0 0 1 1 *|alice|0 0 1 1 *', effect => 'none' },
	"run alice's schedule" => {
		setup => q{DELETE FROM jobq._queue WHERE job_key = 'schedule:alice.fixed'},
		run => q{SELECT jobq.run_schedule('alice.fixed') > 0}, label => $true,
		state => q{
SELECT coalesce(string_agg(owner::text || ':' || status, ','), '') FROM jobq.jobs
 WHERE job_key = 'schedule:alice.fixed'},
		initial => '', effect => 'alice:pending' },
	(   map {
			my ($verb, $from) = @$_;
			( "$verb alice's schedule" => {
					setup => qq{
INSERT INTO jobq._schedules (name, schedule, kind, owner, cron_job_name, paused)
VALUES ('\@TAG\@', '0 0 1 1 *', 'sql', 'alice', 'none', } . ($from ? 'true' : 'false') . ')',
					run => "SELECT jobq.${verb}_schedule('\@TAG\@')", label => $true,
					state => q{SELECT paused FROM jobq._schedules WHERE name = '@TAG@'},
					initial => $from ? 't' : 'f', effect => $from ? 'f' : 't' })
		} ([ 'pause', 0 ], [ 'resume', 1 ])
	),
	'call jobq._schedule_pause' => {
		setup => q{
INSERT INTO jobq._schedules (name, schedule, kind, owner, cron_job_name)
VALUES ('@TAG@', '0 0 1 1 *', 'sql', 'alice', 'none')},
		run => q{SELECT jobq._schedule_pause('@TAG@', 'alice'::regrole, true)}, label => $true,
		state => q{SELECT paused FROM jobq._schedules WHERE name = '@TAG@'},
		initial => 'f', effect => 't' },
	'SET user setting' => {
		run => q{SET jobq.default_max_attempts = 3; SHOW jobq.default_max_attempts},
		label => sub { $_[0] eq '3' ? 'ok' : "showed $_[0]" } },
	'SET superuser setting' => {
		run => q{SET jobq.http_allowed_hosts = '*'; SHOW jobq.http_allowed_hosts},
		label => sub { $_[0] eq '*' ? 'ok' : "showed $_[0]" } },
	'SET server setting' => { run => 'SET jobq.workers = 5' },
	'ALTER SYSTEM' => {
		setup => 'ALTER SYSTEM RESET jobq.workers',
		run => 'ALTER SYSTEM SET jobq.workers = 5',
		state => q{
SELECT count(*) FROM pg_file_settings
 WHERE name = 'jobq.workers' AND sourcefile LIKE '%postgresql.auto.conf'},
		initial => '0', effect => '1' },
	'ALTER DATABASE user setting' => {
		setup => 'ALTER DATABASE postgres RESET jobq.default_max_attempts',
		run => 'ALTER DATABASE postgres SET jobq.default_max_attempts = 3',
		state => sprintf($db_setting, 'jobq.default_max_attempts'),
		initial => '0', effect => '1' },
	'ALTER DATABASE su setting' => {
		setup => 'ALTER DATABASE postgres RESET jobq.http_allowed_hosts',
		run => q{ALTER DATABASE postgres SET jobq.http_allowed_hosts = '*'},
		state => sprintf($db_setting, 'jobq.http_allowed_hosts'),
		initial => '0', effect => '1' },
	'ALTER ROLE self su setting' => {
		setup => 'ALTER ROLE "@ROLE@" RESET jobq.http_allowed_hosts',
		run => q{ALTER ROLE CURRENT_USER SET jobq.http_allowed_hosts = '*'},
		state => q{
SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c
 WHERE s.setrole = '@ROLE@'::regrole AND c LIKE 'jobq.http_allowed_hosts=%'},
		initial => '0', effect => '1' },
	'SHOW webhook signing key' => {
		run => 'SHOW jobq.webhook_signing_key',
		label => sub { $_[0] eq 'secret-guc-signing-key' ? 'ok' : "showed $_[0]" } },
	'call jobq._worker_status' => {
		run => 'SELECT count(*) >= 0 FROM jobq._worker_status()', label => $true },
	'call jobq._database_status' => {
		run => 'SELECT count(*) >= 0 FROM jobq._database_status()', label => $true },
	# the function is checked when the plan starts, and claims nothing
	'call jobq._claim' => { run => 'SELECT jobq._claim(1) WHERE false' },
	'call jobq._net_request' => {
		run => q{
SELECT jobq._net_request(NULL, 'sms', '{"channel": "hooks", "to": "+10", "message": "m"}',
						 'carol'::regrole, now(), 'k') IS NOT NULL},
		label => $true },
	'call jobq._schedule_delete' => {
		setup => q{
INSERT INTO jobq._schedules (name, schedule, kind, owner, cron_job_name)
VALUES ('del.@ROLE@', '0 0 1 1 *', 'sql', 'alice', 'none')},
		run => q{SELECT cron_job_name FROM jobq._schedule_delete('del.@ROLE@', 'alice'::regrole)},
		label => sub { $_[0] eq 'none' ? 'ok' : "returned $_[0]" },
		state => q{SELECT count(*) FROM jobq._schedules WHERE name = 'del.@ROLE@'},
		initial => '1', effect => '0' },
	'call jobq._grantee' => {
		run => q{SELECT jobq._grantee('bob') = 'bob'::regrole}, label => $true },
	'call jobq._check_channel' => {
		run => q{SELECT jobq._check_channel('http', '{"url": "http://127.0.0.1/"}', '{}')} },
	'call jobq._on_create' => { run => 'SELECT jobq._on_create()' },
	'call jobq.prune' => { run => 'SELECT jobq.prune() >= 0', label => $true },
	'create_queue' => {
		run => q{SELECT jobq.create_queue('new.@ROLE@', '{"concurrency": 2}')},
		state => q{SELECT count(*) FROM jobq._queues WHERE name = 'new.@ROLE@'},
		initial => '0', effect => '1' },
	'alter_queue' => {
		setup => $scratch_queue,
		run => q{SELECT jobq.alter_queue('scratch', '{"rate": 5}')},
		state => q{SELECT coalesce(rate, 0) FROM jobq._queues WHERE name = 'scratch'},
		initial => '0', effect => '5' },
	'pause_queue' => {
		setup => $scratch_queue,
		run => q{SELECT jobq.pause_queue('scratch')},
		state => q{SELECT paused FROM jobq._queues WHERE name = 'scratch'},
		initial => 'f', effect => 't' },
	'resume_queue' => {
		setup => $scratch_queue . q{UPDATE jobq._queues SET paused = true WHERE name = 'scratch';},
		run => q{SELECT jobq.resume_queue('scratch')},
		state => q{SELECT paused FROM jobq._queues WHERE name = 'scratch'},
		initial => 't', effect => 'f' },
	'drop_queue' => {
		setup => $scratch_queue,
		run => q{SELECT jobq.drop_queue('scratch')},
		state => q{SELECT count(*) FROM jobq._queues WHERE name = 'scratch'},
		initial => '1', effect => '0' },
	'call jobq._check_queue' => { run => q{SELECT jobq._check_queue('q', '{}')} },
	'see queues' => {
		run => q{SELECT count(*) FROM jobq.queues WHERE name = 'visible' AND running = 0},
		label => sub { $_[0] eq '1' ? 'all' : "saw $_[0]" } },
	'create_channel' => {
		run => q{SELECT jobq.create_channel('new.@ROLE@', 'http', '{"url": "http://127.0.0.1:9/"}')},
		state => q{SELECT count(*) FROM jobq._channels WHERE name = 'new.@ROLE@'},
		initial => '0', effect => '1' },
	'alter_channel' => {
		setup => $scratch,
		run => q{SELECT jobq.alter_channel('scratch', secrets => '{"bearer_token": "changed"}')},
		state => q{SELECT secrets ->> 'bearer_token' FROM jobq._channels WHERE name = 'scratch'},
		initial => 'orig', effect => 'changed' },
	'drop_channel' => {
		setup => $scratch,
		run => q{SELECT jobq.drop_channel('scratch')}, label => $true,
		state => q{SELECT count(*) FROM jobq._channels WHERE name = 'scratch'},
		initial => '1', effect => '0' },
	'grant_channel' => {
		setup => $scratch,
		run => q{SELECT jobq.grant_channel('scratch', 'bob')},
		state => q{
SELECT count(*) FROM jobq._channel_grants WHERE channel = 'scratch' AND grantee = 'bob'::regrole},
		initial => '0', effect => '1' },
	'revoke_channel' => {
		setup => $scratch,
		run => q{SELECT jobq.revoke_channel('scratch', 'carol')}, label => $true,
		state => q{
SELECT count(*) FROM jobq._channel_grants WHERE channel = 'scratch' AND grantee = 'carol'::regrole},
		initial => '1', effect => '0' },
	'grant_http' => {
		setup => q{SELECT jobq.revoke_http('nobody')},
		run => q{SELECT jobq.grant_http('nobody')},
		state => q{SELECT count(*) FROM jobq._http_grants WHERE grantee = 'nobody'::regrole},
		initial => '0', effect => '1' },
	'revoke_http' => {
		setup => q{SELECT jobq.grant_http('nobody')},
		run => q{SELECT jobq.revoke_http('nobody')}, label => $true,
		state => q{SELECT count(*) FROM jobq._http_grants WHERE grantee = 'nobody'::regrole},
		initial => '1', effect => '0' },
	(   map {
			(   "read jobq.$_" => { run => "SELECT count(*) >= 0 FROM jobq.$_", label => $true },
				"write jobq.$_" => { run => "DELETE FROM jobq.$_ WHERE false" })
		} qw(_queue _done _kinds _channels _channel_grants _http_grants _deliveries _schedules _queues)
	),
	(   map { ("write jobq.$_" => { run => "DELETE FROM jobq.$_ WHERE false" }) }
		  qw(kinds channels deliveries jobs schedules queues)
	),
	'next jobq._queue_id_seq' => {
		run => q{SELECT nextval('jobq._queue_id_seq') > 0}, label => $true },
	'create in schema jobq' => {
		run => q{CREATE TABLE jobq."t.@ROLE@" (x integer)},
		state => q{SELECT count(*) FROM pg_class WHERE relname = 't.@ROLE@'},
		initial => '0', effect => '1' },
	'create in schema public' => {
		run => q{CREATE FUNCTION public."f.@ROLE@"() RETURNS integer LANGUAGE sql AS 'SELECT 1'},
		state => q{SELECT count(*) FROM pg_proc WHERE proname = 'f.@ROLE@'},
		initial => '0', effect => '1' },
	'alter table jobq._queue' => {
		run => 'ALTER TABLE jobq._queue ADD COLUMN x integer',
		state => q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'jobq._queue'::regclass AND attname = 'x'},
		initial => '0' },
	'drop extension jobq' => {
		run => 'DROP EXTENSION jobq',
		state => q{SELECT count(*) FROM pg_extension WHERE extname = 'jobq'},
		initial => '1' },);

sub fill
{
	my ($sql, %v) = @_;
	$sql =~ s/@(ROLE|TAG|ID)@/defined $v{$1} ? $v{$1} : die "no value for $1"/ge;
	return $sql;
}

# $state's output until it is $want (for jobs that must run first), at
# most 30 s.
sub poll_state
{
	my ($state, $want) = @_;
	my $got;
	for (1 .. 600)
	{
		$got = sql($state);
		last if $got eq $want;
		usleep(50_000);
	}
	return $got;
}

my (%want, @order);
my @lines = grep { /\S/ } split /\n/, $matrix;
my @columns = split ' ', shift @lines;
is_deeply(\@columns, \@roles, 'the matrix has a column per role');
for my $line (@lines)
{
	my @cells = split ' ', $line;
	my @values = splice(@cells, -scalar(@roles));
	my $name = join ' ', @cells;
	die "no action \"$name\"" unless $actions{$name};
	@{ $want{$name} }{@roles} = @values;
	push @order, $name;
}
is(join(', ', sort grep { !$want{$_} } keys %actions), '', 'every action has a row');

my $cell = 0;
for my $name (@order)
{
	my $act = $actions{$name};
	if ($act->{cron} && $no_cron)
	{
		my $tests = grep { $want{$name}{$_} ne '-' } @roles;
		$tests *= 2 if defined $act->{state};
	  SKIP:
		{
			skip "$name: $no_cron", $tests;
		}
		next;
	}
	for my $role (@roles)
	{
		my $want = $want{$name}{$role};
		next if $want eq '-';
		my %v = (ROLE => $role_name{$role}, TAG => 'cell' . ++$cell);
		if ($act->{setup})
		{
			my @out = split /\n/, sql(fill($act->{setup}, %v));
			$v{ID} = $out[-1];
		}
		my ($ret, $out, $err) =
		  jobq_psql_as($node, $role eq 'su' ? undef : $role, fill($act->{run}, %v));
		my $got;
		if ($ret != 0)
		{
			$got = $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : "failed: $err";
		}
		else
		{
			$got = $act->{label} ? $act->{label}->($out) : 'ok';
		}
		is($got, $want, "$role: $name") or diag("stdout: $out\nstderr: $err");
		next unless defined $act->{state};

		my $state = fill($act->{state}, %v);
		if ($got eq 'ok' && $want eq 'ok')
		{
			my $effect = ref $act->{effect} ? $act->{effect}->($v{ROLE}) : $act->{effect};
			is($act->{poll} ? poll_state($state, $effect) : sql($state),
				$effect, "$role: $name: done");
		}
		else
		{
			is(sql($state), $act->{initial}, "$role: $name: nothing changed");
		}
	}
}

# ---------------------------------------------------------------------
# Checked when the job runs
# ---------------------------------------------------------------------

# EXECUTE on a kind's handler, revoked from the job's owner after the
# enqueue, in the transaction that enqueued it: the job fails with 42501.
# The same job enqueued before the REVOKE ran.
sql(q{
CREATE FUNCTION public.rec_later(p jsonb) RETURNS void LANGUAGE sql
	AS $$ INSERT INTO public.ran VALUES (p ->> 'tag', current_user) $$;
REVOKE EXECUTE ON FUNCTION public.rec_later(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.rec_later(jsonb) TO kay;
SET ROLE kay;
SELECT jobq.register_kind('kay.later', 'public.rec_later(jsonb)');
});
my $granted_id = jobq_safe_as($node, 'kay',
	q{SELECT jobq.enqueue('kay.later', '{"tag": "later-granted"}', max_attempts => 1)});
jobq_wait_finished($node, $granted_id, 'a job of kay.later');
my $revoked_id = sql(q{
BEGIN;
SET ROLE kay;
SELECT jobq.enqueue('kay.later', '{"tag": "later-revoked"}', max_attempts => 1);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION public.rec_later(jsonb) FROM kay;
COMMIT;
});
jobq_wait_finished($node, $revoked_id, 'a job of kay.later enqueued before the REVOKE');
is( sql(qq{
SELECT string_agg(j.status || '|' || coalesce(j.last_error_sqlstate, '') || '|' || coalesce(r.who, 'nothing'),
				  ',' ORDER BY j.id)
  FROM jobq.jobs j LEFT JOIN public.ran r ON r.tag = j.payload ->> 'tag'
 WHERE j.id IN ($granted_id, $revoked_id)}),
	'succeeded||kay,dead|42501|nothing',
	'EXECUTE on the handler is checked when the job runs: revoked after the enqueue, the job is dead with 42501 and wrote nothing'
);

# LISTEN, UNLISTEN and DISCARD inside jobs: an SQL job of alice's and of the
# superuser, a handler function of kay's kind, and the query of a
# materialized view refreshed by matview.refresh (which runs unrestricted).
sql(q{
CREATE FUNCTION public.run_utility(p jsonb) RETURNS void LANGUAGE plpgsql
	AS $$ BEGIN EXECUTE p ->> 'sql'; END $$;
CREATE FUNCTION public.listen_now() RETURNS integer LANGUAGE plpgsql
	AS $$ BEGIN LISTEN jobq_mv; RETURN 1; END $$;
CREATE MATERIALIZED VIEW public.mv_listen AS SELECT public.listen_now() AS x WITH NO DATA;
ALTER MATERIALIZED VIEW public.mv_listen OWNER TO alice;
SET ROLE kay;
SELECT jobq.register_kind('kay.utility', 'public.run_utility(jsonb)');
});
my %utility_job;
for my $stmt ('LISTEN jobq_job', 'UNLISTEN *', 'UNLISTEN jobq_job', 'DISCARD ALL', 'DISCARD TEMP')
{
	(my $q = $stmt) =~ s/'/''/g;
	$utility_job{"alice: sql job: $stmt"} = jobq_safe_as($node, 'alice',
		"SELECT jobq.enqueue('sql', jsonb_build_object('sql', '$q'), max_attempts => 1)");
	$utility_job{"superuser: sql job: $stmt"} =
	  sql("SELECT jobq.enqueue('sql', jsonb_build_object('sql', '$q'), max_attempts => 1)");
	$utility_job{"kay: handler: $stmt"} = jobq_safe_as($node, 'kay',
		"SELECT jobq.enqueue('kay.utility', jsonb_build_object('sql', '$q'), max_attempts => 1)");
}
$utility_job{'alice: matview.refresh of a view whose query runs LISTEN'} = jobq_safe_as($node, 'alice',
	q{SELECT jobq.enqueue('matview.refresh', '{"view": "public.mv_listen"}', max_attempts => 1)});
for my $what (sort keys %utility_job)
{
	my $id = $utility_job{$what};
	jobq_wait_finished($node, $id, $what);
	is(sql("SELECT status || '|' || coalesce(last_error_sqlstate, '') FROM jobq.jobs WHERE id = $id"),
		'dead|42501', "$what: refused inside a job, 42501");
}

# what the superuser's cells left behind
sql(q{
ALTER SYSTEM RESET jobq.workers;
ALTER DATABASE postgres RESET jobq.http_allowed_hosts;
DROP TABLE jobq."t.} . $su . q{";
});

$node->stop;

done_testing();
