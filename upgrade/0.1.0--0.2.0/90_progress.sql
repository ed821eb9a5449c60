
/* ---------------------------------------------------------------------
 * Progress (jobq.set_progress): a job's last reported percentage and
 * message, in both tables (moved with the job), shown by jobq.jobs; while
 * a job runs, jobq.jobs reads them from shared memory (jobq._progress).
 * ------------------------------------------------------------------- */

ALTER TABLE jobq._queue ADD COLUMN progress real, ADD COLUMN progress_message text;
COMMENT ON COLUMN jobq._queue.progress
	IS 'the percentage a job reported last (jobq.set_progress), written when its handler returns';
ALTER TABLE jobq._done ADD COLUMN progress real, ADD COLUMN progress_message text;
