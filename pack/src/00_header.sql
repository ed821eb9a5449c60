/*
 * jobq_pack--X.Y.Z.sql: the install script of the version in
 * jobq_pack.control, built from pack/src/ by pack/Makefile
 */

\echo Use "CREATE EXTENSION jobq_pack" to load this file. \quit

/* ---------------------------------------------------------------------
 * The job pack: built-in kinds for the work of school and clinic systems,
 * each one set-based SQL, and the seeds' timetable.  Its objects are in
 * schema jobq, next to jobq's own (jobq_pack.control: schema = jobq), and
 * are members of jobq_pack: DROP EXTENSION jobq_pack removes them and its
 * kinds.  They run as the job's owner (no SECURITY DEFINER); table names
 * come from the payload, are looked up in the owner's search_path with
 * jobq._pack_table (src/sql/60_kinds.sql: the handler passes that path on
 * to a function with a pinned one) and their columns checked before any
 * statement is built.  The default tables are in examples/seed_schema.sql.
 * ------------------------------------------------------------------- */

