-- 07_schedule: recurring jobs without pg_cron.  This instance does not
-- preload pg_cron, so jobq.schedule and jobq.unschedule fail with a clear
-- error and a hint (jobq_pack's timetable: pack/sql/timetable.sql).  What
-- pg_cron runs, jobq.run_schedule, works on a schedule row stored by hand:
-- it enqueues as the schedule's owner with job_key 'schedule:<name>', never
-- doubles a pending job, and only the owner's members see and run it.
-- No worker runs here (jobq.workers = 0): jobs stay pending.
-- test/t/012_cron.pl runs schedules with pg_cron firing them.
SET client_min_messages = warning;
TRUNCATE jobq._queue, jobq._done, jobq._schedules RESTART IDENTITY;
\set VERBOSITY terse
\set SHOW_CONTEXT never

CREATE ROLE sched_alice;
CREATE ROLE sched_bob;
CREATE ROLE sched_carol IN ROLE sched_alice;
CREATE ROLE sched_dave NOINHERIT IN ROLE sched_alice;

-- without pg_cron: an error that says what to do, and nothing stored
\set VERBOSITY default
SELECT jobq.schedule('nightly', '0 1 * * *', 'sql', '{"sql": "SELECT 1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT jobq.unschedule('nightly');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT count(*) FROM jobq._schedules;
-- a session may SET a placeholder cron.database_name when pg_cron is not
-- loaded: jobq still calls pg_cron "not loaded" (it never calls a function
-- of a schema cron that is not pg_cron's, as a superuser)
CREATE SCHEMA cron;
SET cron.database_name = 'contrib_regression';
SELECT jobq.schedule('nightly', '0 1 * * *', 'sql', '{"sql": "SELECT 1"}');
\echo :LAST_ERROR_SQLSTATE
RESET cron.database_name;
DROP SCHEMA cron;

-- a schedule as jobq.schedule stores it, here put in by hand
INSERT INTO jobq._schedules (name, schedule, kind, payload, queue, priority, owner, cron_job_name)
VALUES ('tick', '* * * * *', 'sql', '{"sql": "SELECT 1"}', 'cron', 3, 'sched_alice',
		'jobq regression tick');

-- run by its owner: a job of the owner's with the schedule's key, queue and priority
SET ROLE sched_alice;
SELECT name, schedule, kind, payload, queue, priority, owner, cron_job_name,
	   last_enqueue_at, last_job_id, last_job_status
  FROM jobq.schedules;
SELECT jobq.run_schedule('tick') AS first \gset
SELECT kind, payload, queue, priority, status, owner, job_key FROM jobq.jobs WHERE id = :first;
SELECT last_job_id = :first AS last_is_first, last_job_status, last_enqueue_at IS NOT NULL AS enqueued
  FROM jobq.schedules WHERE name = 'tick';
-- run again while that job is pending: the same job, never a second one
SELECT jobq.run_schedule('tick') = :first AS same_job;
SELECT count(*) FROM jobq.jobs WHERE job_key = 'schedule:tick';

-- once the job is finished (cancelled here), the next run makes a new job
SELECT jobq.cancel(:first);
SELECT last_job_id = :first AS last_is_first, last_job_status FROM jobq.schedules WHERE name = 'tick';
SELECT jobq.run_schedule('tick') AS second \gset
SELECT :second > :first AS new_job;
SELECT id = :second AS is_second, status, owner FROM jobq.jobs
 WHERE job_key = 'schedule:tick' ORDER BY id;
SELECT last_job_id = :second AS last_is_second, last_job_status FROM jobq.schedules WHERE name = 'tick';

-- an unknown schedule
SELECT jobq.run_schedule('no_such_schedule');
\echo :LAST_ERROR_SQLSTATE

-- the table itself is not for PUBLIC
SELECT * FROM jobq._schedules;
\echo :LAST_ERROR_SQLSTATE

-- a member of the owner sees the schedule and runs it as the owner
SET ROLE sched_carol;
SELECT name, owner FROM jobq.schedules;
SELECT jobq.run_schedule('tick') = :second AS same_job;

-- a member that does not inherit the owner's rights sees it but cannot run it
SET ROLE sched_dave;
SELECT name, owner FROM jobq.schedules;
SELECT jobq.run_schedule('tick');
\echo :LAST_ERROR_SQLSTATE

-- a role that is not a member of the owner neither sees it nor runs it
SET ROLE sched_bob;
SELECT count(*) FROM jobq.schedules;
SELECT jobq.run_schedule('tick');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM jobq.jobs;
RESET ROLE;

-- the superuser runs it as the owner, and is itself again afterwards
SELECT jobq.cancel(:second);
SELECT current_user = session_user AS superuser_before, current_setting('role') AS role_before;
SELECT jobq.run_schedule('tick') AS third \gset
SELECT current_user = session_user AS superuser_after, current_setting('role') AS role_after;
SELECT :third > :second AS new_job, status, owner, job_key FROM jobq.jobs WHERE id = :third;
SELECT last_job_id = :third AS last_is_third, last_job_status FROM jobq.schedules WHERE name = 'tick';
-- from a role set with SET ROLE, too
SET ROLE sched_carol;
SELECT jobq.run_schedule('tick') = :third AS same_job;
SELECT current_user, current_setting('role') AS role_after;
RESET ROLE;
-- a job the owner may not enqueue fails, and leaves the superuser as it was
INSERT INTO jobq._schedules (name, schedule, kind, owner, cron_job_name)
VALUES ('broken', '* * * * *', 'no.such.kind', 'sched_alice', 'jobq regression broken');
SELECT jobq.run_schedule('broken');
\echo :LAST_ERROR_SQLSTATE
SELECT current_user = session_user AS superuser_after, current_setting('role') AS role_after;
SELECT name, last_job_id, last_job_status FROM jobq.schedules WHERE name = 'broken';

-- pause and resume: while paused, a run enqueues nothing, records nothing
-- and returns NULL; the owner's members may pause, others see no schedule
SELECT jobq.cancel(:third);
SET ROLE sched_dave;
SELECT jobq.pause_schedule('tick');
SELECT jobq.pause_schedule('tick');
SELECT name, paused FROM jobq.schedules WHERE name = 'tick';
RESET ROLE;
SELECT jobq.run_schedule('tick') IS NULL AS nothing_enqueued;
SELECT count(*) FROM jobq.jobs WHERE job_key = 'schedule:tick' AND status = 'pending';
SELECT last_job_id = :third AS last_is_third FROM jobq.schedules WHERE name = 'tick';
SET ROLE sched_alice;
SELECT jobq.run_schedule('tick') IS NULL AS nothing_enqueued;
SET ROLE sched_bob;
SELECT jobq.pause_schedule('tick');
\echo :LAST_ERROR_SQLSTATE
SELECT jobq.resume_schedule('tick');
\echo :LAST_ERROR_SQLSTATE
SELECT jobq.pause_schedule('no_such_schedule');
\echo :LAST_ERROR_SQLSTATE
SELECT jobq.pause_schedule(NULL) IS NULL AS null_name;
SET ROLE sched_carol;
SELECT jobq.resume_schedule('tick');
SELECT jobq.resume_schedule('tick');
SELECT jobq.run_schedule('tick') AS fourth \gset
SELECT :fourth > :third AS new_job, status FROM jobq.jobs WHERE id = :fourth;
RESET ROLE;
SELECT name, paused FROM jobq.schedules WHERE name = 'tick';

SELECT name FROM jobq._schedules ORDER BY name;

-- an owner whose name needs quoting runs its schedule (pg_cron runs it so)
CREATE ROLE "Sched Mixed";
INSERT INTO jobq._schedules (name, schedule, kind, payload, owner, cron_job_name)
VALUES ('mixed', '* * * * *', 'sql', '{"sql": "SELECT 1"}', '"Sched Mixed"', 'jobq regression mixed');
SET ROLE "Sched Mixed";
SELECT jobq.run_schedule('mixed') AS mixed_job \gset
RESET ROLE;
SELECT owner, job_key FROM jobq.jobs WHERE id = :mixed_job;

\set VERBOSITY default
TRUNCATE jobq._queue, jobq._done, jobq._schedules RESTART IDENTITY;
DROP ROLE sched_alice, sched_bob, sched_carol, sched_dave, "Sched Mixed";
