-- The school half of the demo: the same cluster, another database, its own
-- workers; a job that only the role that enqueued it may run.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION jobq;

CREATE TABLE attendance (student_id int, day date, status text);
INSERT INTO attendance
SELECT s, d::date, CASE WHEN random() < 0.12 THEN 'absent' ELSE 'present' END
  FROM generate_series(1, 2000) s,
       generate_series(date '2026-09-01', date '2026-10-31', interval '1 day') d
 WHERE extract(isodow FROM d) < 6;
CREATE TABLE attendance_monthly (student_id int, month date, rate numeric,
                                 PRIMARY KEY (student_id, month));

CREATE ROLE school_app;
GRANT SELECT ON attendance TO school_app;
GRANT SELECT, INSERT, UPDATE ON attendance_monthly TO school_app;
CREATE TABLE payroll (teacher text, salary int);

\echo
\echo '== school: the attendance statistics of 2,000 students in one job'
SET ROLE school_app;
SELECT jobq.enqueue('sql', jsonb_build_object('sql', $q$
	INSERT INTO attendance_monthly
	SELECT student_id, date_trunc('month', day)::date,
	       round(100.0 * count(*) FILTER (WHERE status = 'present') / count(*), 1)
	  FROM attendance GROUP BY 1, 2
	ON CONFLICT (student_id, month) DO UPDATE SET rate = EXCLUDED.rate$q$)) AS stats_job \gset
\echo
\echo '== school: a job runs as the role that enqueued it, never more'
SELECT jobq.enqueue('sql', '{"sql": "SELECT * FROM payroll"}', max_attempts => 1) AS sneaky_job \gset
RESET ROLE;
SELECT pg_sleep(1);
SELECT id, owner, status, result, last_error, last_error_sqlstate
  FROM jobq.jobs WHERE id IN (:stats_job, :sneaky_job) ORDER BY id;
SELECT month, count(*) AS students, round(avg(rate), 1) AS average_rate,
       count(*) FILTER (WHERE rate < 80) AS below_80_percent
  FROM attendance_monthly GROUP BY month ORDER BY month;

\echo
\echo '== the workers of the cluster (each database has its own)'
SELECT datname, worker, state, jobs_succeeded, jobs_failed FROM jobq.workers ORDER BY datname, worker;
