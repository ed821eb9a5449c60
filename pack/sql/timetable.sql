-- timetable: jobq.schedule_timetable, the seeds' timetable, without
-- pg_cron.  This instance does not preload pg_cron: bad overrides are
-- refused with a clear error before anything is scheduled, and a valid
-- timetable fails in jobq.schedule.  test/t/012_cron.pl runs it with
-- pg_cron.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS jobq_pack CASCADE;
\set VERBOSITY terse
\set SHOW_CONTEXT never

-- the timetable: an unknown entry or overrides that are not an object are
-- refused before anything is scheduled; an entry's override that is neither
-- false nor an object when that entry's turn comes (attendance.aggregate is
-- the first)
\set VERBOSITY default
SELECT * FROM jobq.schedule_timetable('{"no.such.entry": false}');
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT * FROM jobq.schedule_timetable('["matview.refresh"]');
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM jobq.schedule_timetable(NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT * FROM jobq.schedule_timetable('{"attendance.aggregate": 5}');
\echo :LAST_ERROR_SQLSTATE
-- every override is checked before the first entry is scheduled
SELECT * FROM jobq.schedule_timetable('{"table.archive": true}');
\echo :LAST_ERROR_SQLSTATE
-- a good one reaches jobq.schedule, which needs pg_cron
SELECT * FROM jobq.schedule_timetable('{"matview.refresh": false, "table.archive": false}');
\echo :LAST_ERROR_SQLSTATE
SELECT name FROM jobq._schedules ORDER BY name;
