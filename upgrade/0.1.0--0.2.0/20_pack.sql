
/* ---------------------------------------------------------------------
 * The job pack leaves jobq for its own extension, jobq_pack (pack/): the
 * kinds slots.generate, reservations.release, attendance.aggregate and
 * attendance.thresholds, their functions and jobq.schedule_timetable are
 * removed here; CREATE EXTENSION jobq_pack creates them again, with the
 * same names in schema jobq.  A pending job of one of these kinds dies
 * when a worker claims it before jobq_pack is created ("job kind ... does
 * not exist"); run ALTER EXTENSION jobq UPDATE and CREATE EXTENSION
 * jobq_pack in one transaction to keep such jobs (pack/README.md).
 * A built-in kind now names the extension that added it (NULL: jobq).
 * jobq's own kinds (matview.refresh, table.archive, jobq.prune) stay; their
 * functions are created again by src/sql/60_kinds.sql, with table names
 * looked up in the job owner's search_path by a function with a pinned one
 * (jobq._pack_table gains that path as an argument).
 * ------------------------------------------------------------------- */

ALTER TABLE jobq._kinds
	ADD COLUMN extension text,
	ADD CONSTRAINT _kinds_extension_check CHECK (extension IS NULL OR builtin);

DELETE FROM jobq._kinds
 WHERE builtin AND kind IN ('slots.generate', 'reservations.release',
							'attendance.aggregate', 'attendance.thresholds');
DROP FUNCTION jobq.slots_generate(jsonb), jobq.reservations_release(jsonb),
	jobq.attendance_aggregate(jsonb), jobq.attendance_thresholds(jsonb),
	jobq._pack_month(jsonb), jobq.schedule_timetable(jsonb);

DROP FUNCTION jobq._pack_table(jsonb, text, text);
