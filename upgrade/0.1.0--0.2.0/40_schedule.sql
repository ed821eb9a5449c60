
/* ---------------------------------------------------------------------
 * Schedules act on their own pg_cron job only.  In 0.1.0 a pg_cron job was
 * named 'jobq <database> <name>' and found by that name, so database
 * "t1 x" with schedule y and database t1 with schedule "x y" shared one
 * name, and a call in one removed or replaced the other's job.  A new
 * pg_cron job is now named 'jobq <database oid> <name>' (the oid has no
 * space, so the name is never another database's), and a schedule acts
 * on the job whose id it stored (cron_job_id) only if that job still has
 * the stored name, this database and the owner's name as its user
 * (src/schedule.c).  Rows of 0.1.0 keep their job, its id and its name.
 * Schedule names with control characters are refused.  The three
 * functions whose results change are dropped here and created by
 * src/sql/50_schedule.sql.
 * ------------------------------------------------------------------- */

DROP FUNCTION jobq._schedule_save(text, text, text, jsonb, text, integer, oid);
DROP FUNCTION jobq._schedule_delete(text, oid);
DROP FUNCTION jobq._schedule_set_cron_id(text, bigint);
