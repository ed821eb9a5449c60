-- The school half of the demo (database school): 3,000 students' attendance
-- for a month, monthly statistics, students under the thresholds texted to
-- their guardians through the SMS gateway, a report mailed through the
-- e-mail gateway, and a job that tries to read what its role may not.
-- psql variable: gateway (base URL).
\i tools/demo_common.sql
SELECT setseed(0.17) AS seed \gset

-- 3,000 students at 3 campuses, the school days of last month, 2 hours a
-- day; most attend regularly, some miss a lot, some are often sick
CREATE TEMP TABLE profile AS
SELECT s AS student_id, 1 + s % 3 AS campus_id,
	   CASE WHEN s % 25 = 0 THEN 0.62 WHEN s % 11 = 0 THEN 0.78 ELSE 0.95 END AS p_present,
	   CASE WHEN s % 17 = 0 THEN 0.25 ELSE 0.02 END AS p_sick
  FROM generate_series(1, 3000) s;
INSERT INTO attendance (student_id, campus_id, day, status, hours)
SELECT student_id, campus_id, day,
	   CASE WHEN r < p_present THEN 'present'
			WHEN r < p_present + p_sick THEN 'sick'
			WHEN r < p_present + p_sick + 0.01 THEN 'late' ELSE 'absent' END, 2
  FROM (SELECT p.*, d::date AS day, random() AS r
		  FROM profile p,
			   generate_series(date_trunc('month', current_date) - interval '1 month',
							   date_trunc('month', current_date) - interval '1 day', interval '1 day') d
		 WHERE extract(isodow FROM d) < 6) x;
INSERT INTO student_contacts (student_id, phone, email)
SELECT student_id, '+9665' || lpad((10000000 + student_id)::text, 8, '0'),
	   'guardian' || student_id || '@example.org'
  FROM profile WHERE student_id % 40 <> 0;		-- a few without a contact yet

CREATE MATERIALIZED VIEW campus_dashboard AS
	SELECT campus_id, month, count(*) AS students, round(avg(attendance_rate), 1) AS average_rate
	  FROM attendance_monthly GROUP BY campus_id, month;
CREATE UNIQUE INDEX ON campus_dashboard (campus_id, month);

\o /dev/null
SELECT jobq.create_channel('mail', 'http',
	jsonb_build_object('url', :'gateway' || '/ok/email', 'from', 'School <noreply@school.example>'),
	'{"headers": {"X-Api-Key": "demo-mail-key"}}');
CREATE ROLE school_app;
SELECT jobq.grant_channel('sms', 'school_app'), jobq.grant_channel('mail', 'school_app');
GRANT SELECT ON attendance, campus_dashboard TO school_app;
\o
CREATE TABLE payroll (teacher text, salary int);

\echo
\echo '== school: the seeds'' timetable, as pg_cron jobs'
SELECT name, schedule, kind FROM jobq.schedule_timetable(jsonb_build_object(
	'reservations.release', false, 'slots.generate', false, 'table.archive', false,
	'attendance.aggregate', jsonb_build_object('payload',
		jsonb_build_object('month', date_trunc('month', current_date) - interval '1 month')),
	'attendance.thresholds', jsonb_build_object('payload', jsonb_build_object('notify_kind', 'sms',
		'channel', 'sms', 'month', date_trunc('month', current_date) - interval '1 month')),
	'matview.refresh', '{"payload": {"view": "campus_dashboard"}}'::jsonb));

\echo
\echo '== school: the first runs: statistics, thresholds (SMS to guardians), dashboard'
SELECT jobq.run_schedule('attendance.aggregate') AS aggregate_job \gset
SELECT demo_wait() AS waited \gset
SELECT jobq.run_schedule('attendance.thresholds') AS thresholds_job,
	   jobq.run_schedule('matview.refresh') AS refresh_job \gset
SELECT demo_wait() AS waited \gset
SELECT kind, status, result FROM jobq.jobs
 WHERE id IN (:aggregate_job, :thresholds_job, :refresh_job) ORDER BY id;
SELECT * FROM campus_dashboard ORDER BY campus_id;
SELECT n.threshold, count(*) AS students_notified, count(*) FILTER (WHERE j.status = 'succeeded') AS delivered
  FROM attendance_notices n JOIN jobq.jobs j ON j.id = n.job_id GROUP BY 1 ORDER BY 1;
\echo '   one of the texts, as the gateway received it:'
SELECT payload->>'message' AS text FROM jobq.jobs WHERE kind = 'sms' ORDER BY id LIMIT 1;

\echo
\echo '== school: the monthly report mailed to the principal, as the application role'
SET ROLE school_app;
SELECT jobq.enqueue('email', jsonb_build_object('channel', 'mail', 'to', 'principal@school.example',
	'subject', 'Attendance of ' || to_char(current_date - interval '1 month', 'FMMonth YYYY'),
	'text', (SELECT string_agg(format('Campus %s: %s students, %s%% attendance', campus_id, students, average_rate), E'\n')
			   FROM campus_dashboard))) AS mail_job \gset
\echo
\echo '== school: a job runs as the role that enqueued it, never more'
SELECT jobq.enqueue('sql', '{"sql": "SELECT * FROM payroll"}', max_attempts => 1) AS sneaky_job \gset
RESET ROLE;
SELECT demo_wait() AS waited \gset
SELECT id, kind, owner, status, result, last_error, last_error_sqlstate
  FROM jobq.jobs WHERE id IN (:mail_job, :sneaky_job) ORDER BY id;
