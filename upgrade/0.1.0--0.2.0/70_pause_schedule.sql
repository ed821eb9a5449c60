
/* ---------------------------------------------------------------------
 * A schedule can be paused and resumed (jobq.pause_schedule,
 * jobq.resume_schedule): while paused, jobq.run_schedule, which its pg_cron
 * job still runs at each tick, enqueues nothing.  Existing schedules run.
 * jobq.schedules shows the column (src/sql/50_schedule.sql).
 * ------------------------------------------------------------------- */

ALTER TABLE jobq._schedules ADD COLUMN paused boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN jobq._schedules.paused
	IS 'jobq.run_schedule enqueues nothing while true (jobq.pause_schedule, jobq.resume_schedule)';
