-- bench/seed/gen.sql: deterministic data for the job-pack benchmark.
--
-- Load after examples/seed_schema.sql, into an empty database:
--   psql -v ON_ERROR_STOP=1 -d bench -f examples/seed_schema.sql -f bench/seed/gen.sql
--
-- Clinic (time zone Europe/Berlin; the 60 days bench.py generates,
-- 2025-03-05 .. 2025-05-03, cross the switch to summer time on 2025-03-30):
--   200 doctors at 10 facilities, about 2,000 weekday rules (08:00-12:00 and
--   13:00-17:00, mostly 20-minute slots, some 15, 25 or 30), with rule
--   changes, inactive rules, rules not yet valid, duplicated rules and
--   doctors who work one day at a second facility; 457 exceptions
--   (holidays for everybody, facilities closed, doctors' vacations and
--   blocked days, emergencies of a few hours, and some outside the range).
--   About 173k slots for the 60 days (186k candidates).
--   bench.release_slots: 192k slots of January and February 2025 with
--   5,000 expired reservations, 1,000 reservations still running and 30 %
--   booked; bench.py copies it into availability_slots before each release run.
-- School: 20,000 students at 5 campuses, 195 school days from 2024-09-02 to
--   2025-06-13 (weekdays, without the winter break), one lesson block a day
--   (2 hours, 3 on Fridays): 3.9 million attendance rows.  Students have one
--   of four profiles: regular (78 %), about 77 % attendance (9 %), about
--   64 % (6 %) and many sick or leave hours (7 %).
--
-- Everything random comes from random() after setseed(), with parallel query
-- off, so two loads give the same rows.  The extra index on attendance
-- (student_id, day) is the one an application that reads one student at a
-- time would have; the loops in loops.py need it, jobq's kinds do not.

\set ON_ERROR_STOP on
SET max_parallel_workers_per_gather = 0;
SET work_mem = '256MB';
SET TimeZone = 'Europe/Berlin';
SELECT setseed(0.20250305);

CREATE SCHEMA bench;

------------------------------------------------------------------------------
-- Clinic
------------------------------------------------------------------------------

CREATE TABLE bench.doctors AS
SELECT d AS doctor_id,
	   1 + (d - 1) % 10 AS facility_id,
	   random() AS r_slot,
	   random() AS r_parttime,
	   random() AS r_afternoon,
	   random() AS r_change,
	   random() AS r_second,
	   random() AS r_later
  FROM generate_series(1, 200) AS d
 ORDER BY d;

-- Morning and afternoon rules on the doctor's weekdays.  10 % work Monday,
-- Wednesday and Friday only; 15 % work 14:00-18:30 in the afternoon; 10 %
-- work Fridays at a second facility; 2 % start only in June (nothing in the
-- range).  Slot length per doctor: 20 (70 %), 15 (15 %), 30 (10 %) or 25
-- minutes (5 %; the last slot of 08:00-12:00 then ends at 11:45).
INSERT INTO availability_rules
	(facility_id, doctor_id, service_id, day_of_week, start_time, end_time,
	 slot_minutes, valid_from, valid_until, active)
SELECT CASE WHEN dow = 5 AND r_second < 0.10 THEN 1 + facility_id % 10
			ELSE facility_id END,
	   doctor_id,
	   CASE WHEN random() < 0.3 THEN 1 + floor(random() * 20)::int END,
	   dow,
	   CASE WHEN b.block = 2 AND r_afternoon < 0.15 THEN time '14:00'
			ELSE b.start_time END,
	   CASE WHEN b.block = 2 AND r_afternoon < 0.15 THEN time '18:30'
			ELSE b.end_time END,
	   CASE WHEN r_slot < 0.70 THEN 20 WHEN r_slot < 0.85 THEN 15
			WHEN r_slot < 0.95 THEN 30 ELSE 25 END,
	   CASE WHEN r_later < 0.02 THEN date '2025-06-01' ELSE date '2024-09-01' END,
	   -- 10 % changed their mornings on 1 April (new rule below)
	   CASE WHEN b.block = 1 AND r_change < 0.10 THEN date '2025-03-31' END,
	   random() >= 0.03
  FROM bench.doctors
 CROSS JOIN generate_series(1, 5) AS dow
 CROSS JOIN (VALUES (1, time '08:00', time '12:00'),
					(2, time '13:00', time '17:00')) AS b(block, start_time, end_time)
 WHERE r_parttime >= 0.10 OR dow IN (1, 3, 5)
 ORDER BY doctor_id, dow, b.block;

-- From 1 April these doctors work 09:00-13:00 in 30-minute slots.
INSERT INTO availability_rules
	(facility_id, doctor_id, service_id, day_of_week, start_time, end_time,
	 slot_minutes, valid_from, valid_until, active)
SELECT r.facility_id, r.doctor_id, r.service_id, r.day_of_week, time '09:00',
	   time '13:00', 30, date '2025-04-01', NULL, true
  FROM availability_rules r
  JOIN bench.doctors d USING (doctor_id)
 WHERE d.r_change < 0.10 AND r.valid_until = date '2025-03-31'
 ORDER BY r.id;

-- A rule entered twice (same facility, times and slot length, another
-- service): the second copy creates nothing (ON CONFLICT DO NOTHING).
INSERT INTO availability_rules
	(facility_id, doctor_id, service_id, day_of_week, start_time, end_time,
	 slot_minutes, valid_from, valid_until, active)
SELECT facility_id, doctor_id, 99, day_of_week, start_time, end_time,
	   slot_minutes, valid_from, valid_until, true
  FROM availability_rules
 WHERE doctor_id IN (7, 42, 77, 123, 180) AND day_of_week = 1
   AND start_time = time '08:00' AND active
 ORDER BY id;

-- Exceptions.  Local times of Europe/Berlin (the session time zone).
CREATE FUNCTION bench.local_ts(d date, t time) RETURNS timestamptz
LANGUAGE sql IMMUTABLE AS $$ SELECT (d + t) AT TIME ZONE 'Europe/Berlin' $$;

-- public holidays for everybody: Good Friday and Easter Monday
INSERT INTO availability_exceptions (facility_id, doctor_id, starts_at, ends_at, kind)
VALUES (NULL, NULL, bench.local_ts('2025-04-18', '00:00'), bench.local_ts('2025-04-19', '00:00'), 'blocked'),
	   (NULL, NULL, bench.local_ts('2025-04-21', '00:00'), bench.local_ts('2025-04-22', '00:00'), 'blocked'),
	   -- a facility closed for a day, one closed in an afternoon, one
	   -- evacuated for 100 minutes (all doctors of the facility)
	   (4, NULL, bench.local_ts('2025-03-19', '00:00'), bench.local_ts('2025-03-20', '00:00'), 'blocked'),
	   (7, NULL, bench.local_ts('2025-04-09', '13:00'), bench.local_ts('2025-04-09', '17:00'), 'blocked'),
	   (2, NULL, bench.local_ts('2025-04-24', '10:10'), bench.local_ts('2025-04-24', '11:50'), 'emergency');

-- vacations: 10 % of the doctors, 7 days, wherever they work
INSERT INTO availability_exceptions (facility_id, doctor_id, starts_at, ends_at, kind)
SELECT NULL, doctor_id, bench.local_ts(s, '00:00'), bench.local_ts(s + 7, '00:00'), 'blocked'
  FROM (SELECT doctor_id, date '2025-03-05' + floor(random() * 55)::int AS s, random() AS r
		  FROM bench.doctors ORDER BY doctor_id) AS v
 WHERE r < 0.10;

-- single blocked days at the doctor's facility: 25 % of the doctors
INSERT INTO availability_exceptions (facility_id, doctor_id, starts_at, ends_at, kind)
SELECT facility_id, doctor_id, bench.local_ts(s, '00:00'), bench.local_ts(s + 1, '00:00'), 'blocked'
  FROM (SELECT facility_id, doctor_id, date '2025-03-05' + floor(random() * 60)::int AS s,
			   random() AS r
		  FROM bench.doctors ORDER BY doctor_id) AS v
 WHERE r < 0.25;

-- 80 emergencies of 30 to 180 minutes starting between 08:00 and 15:55, on
-- 5-minute marks (so some begin or end exactly at a slot boundary)
INSERT INTO availability_exceptions (facility_id, doctor_id, starts_at, ends_at, kind)
SELECT d.facility_id, d.doctor_id, bench.local_ts(e.day, e.t),
	   bench.local_ts(e.day, e.t) + e.minutes * interval '1 minute', 'emergency'
  FROM (SELECT i, 1 + floor(random() * 200)::int AS doctor_id,
			   date '2025-03-05' + floor(random() * 60)::int AS day,
			   time '08:00' + floor(random() * 96)::int * interval '5 minutes' AS t,
			   30 + floor(random() * 151)::int AS minutes
		  FROM generate_series(1, 80) AS i ORDER BY i) AS e
  JOIN bench.doctors d USING (doctor_id);

-- 300 exceptions outside the range (January, February, June)
INSERT INTO availability_exceptions (facility_id, doctor_id, starts_at, ends_at, kind)
SELECT d.facility_id, d.doctor_id, bench.local_ts(e.day, '00:00'), bench.local_ts(e.day + 1, '00:00'),
	   'blocked'
  FROM (SELECT i, 1 + floor(random() * 200)::int AS doctor_id,
			   CASE WHEN random() < 0.7 THEN date '2025-01-02' + floor(random() * 60)::int
					ELSE date '2025-06-01' + floor(random() * 30)::int END AS day
		  FROM generate_series(1, 300) AS i ORDER BY i) AS e
  JOIN bench.doctors d USING (doctor_id);

-- The reservation-release data set: every doctor, weekdays 2025-01-06 ..
-- 2025-02-28, 20-minute slots 08:00-12:00 and 13:00-17:00.
CREATE TABLE bench.release_slots (LIKE availability_slots);
INSERT INTO bench.release_slots
	(id, rule_id, facility_id, doctor_id, service_id, starts_at, ends_at, status, reserved_until)
SELECT row_number() OVER (ORDER BY d.doctor_id, day, t), NULL, d.facility_id, d.doctor_id, NULL,
	   bench.local_ts(day, t), bench.local_ts(day, t) + interval '20 minutes', 'open', NULL
  FROM bench.doctors d
 CROSS JOIN generate_series(date '2025-01-06', date '2025-02-28', interval '1 day') AS g(g)
 CROSS JOIN LATERAL (SELECT g::date AS day) AS x
 CROSS JOIN (SELECT time '08:00' + i * interval '20 minutes' AS t FROM generate_series(0, 11) AS i
			 UNION ALL
			 SELECT time '13:00' + i * interval '20 minutes' FROM generate_series(0, 11) AS i) AS s
 WHERE extract(isodow FROM day) < 6;
ALTER TABLE bench.release_slots ADD PRIMARY KEY (id);

WITH pick AS (SELECT id FROM bench.release_slots ORDER BY random() LIMIT 5000)
UPDATE bench.release_slots r
   SET status = 'reserved',
	   reserved_until = now() - (1 + floor(random() * 600)) * interval '1 minute'
  FROM pick WHERE r.id = pick.id;
WITH pick AS (SELECT id FROM bench.release_slots WHERE status = 'open'
			   ORDER BY random() LIMIT 1000)
UPDATE bench.release_slots r
   SET status = 'reserved',
	   reserved_until = now() + interval '1 day' + floor(random() * 600) * interval '1 minute'
  FROM pick WHERE r.id = pick.id;
WITH pick AS (SELECT id FROM bench.release_slots WHERE status = 'open'
			   ORDER BY random() LIMIT 57600)
UPDATE bench.release_slots r SET status = 'booked' FROM pick WHERE r.id = pick.id;

------------------------------------------------------------------------------
-- School
------------------------------------------------------------------------------

-- Profiles: probabilities of present, late, absent, sick (leave: the rest),
-- shifted per student by up to +-3 points between present and absent.
CREATE TABLE bench.students AS
SELECT student_id, campus_id,
	   p_present + shift AS p_present,
	   p_present + shift + p_late AS c_late,
	   p_present + p_late + p_absent AS c_absent,
	   p_present + p_late + p_absent + p_sick AS c_sick
  FROM (SELECT s AS student_id, 1 + (s - 1) % 5 AS campus_id, random() AS r,
			   (random() - 0.5) * 0.06 AS shift
		  FROM generate_series(1, 20000) AS s ORDER BY s) AS st
 CROSS JOIN LATERAL (
	   SELECT * FROM (VALUES
			  (0.00, 0.78, 0.92, 0.03, 0.02, 0.02),	-- regular
			  (0.78, 0.87, 0.72, 0.05, 0.15, 0.05),	-- around 77 %
			  (0.87, 0.93, 0.58, 0.06, 0.28, 0.05),	-- around 64 %
			  (0.93, 1.01, 0.76, 0.04, 0.01, 0.13))	-- sick and leave
			  AS p(lo, hi, p_present, p_late, p_absent, p_sick)
		WHERE st.r >= p.lo AND st.r < p.hi) AS p;

CREATE TABLE bench.school_days AS
SELECT g::date AS day
  FROM generate_series(date '2024-09-02', date '2025-06-13', interval '1 day') AS g
 WHERE extract(isodow FROM g) < 6
   AND NOT g BETWEEN date '2024-12-23' AND date '2025-01-03'
 ORDER BY 1;

-- Rows in the order a school writes them: day by day.
INSERT INTO attendance (student_id, campus_id, day, status, hours)
SELECT student_id, campus_id, day,
	   CASE WHEN x < p_present THEN 'present' WHEN x < c_late THEN 'late'
			WHEN x < c_absent THEN 'absent' WHEN x < c_sick THEN 'sick'
			ELSE 'leave' END,
	   CASE WHEN extract(isodow FROM day) = 5 THEN 3 ELSE 2 END
  FROM (SELECT s.*, d.day, random() AS x
		  FROM bench.school_days d
		 CROSS JOIN bench.students s
		 ORDER BY d.day, s.student_id) AS q;

CREATE INDEX attendance_student_day ON attendance (student_id, day);

SELECT (SELECT count(*) FROM availability_rules) AS rules,
	   (SELECT count(*) FROM availability_exceptions) AS exceptions,
	   (SELECT count(*) FROM bench.release_slots) AS release_slots,
	   (SELECT count(*) FROM attendance) AS attendance_rows;
