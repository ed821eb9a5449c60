-- The clinic half of the demo (database clinic): 300 doctors' weekly rules,
-- appointment slots generated for the next 30 days, reservations that
-- expire, reminder SMS through a gateway, a dashboard view; the seeds'
-- timetable installed with pg_cron.  psql variable: gateway (base URL).
\i tools/demo_common.sql
SELECT setseed(0.42) AS seed \gset

-- 300 doctors at 12 facilities: mornings and afternoons on weekdays, some
-- without Fridays, slots of 15, 20 or 30 minutes
INSERT INTO availability_rules (facility_id, doctor_id, day_of_week, start_time,
								 end_time, slot_minutes, valid_from)
SELECT 1 + d % 12, d, dow, t.s, t.e, (ARRAY[15, 20, 20, 30])[1 + d % 4], current_date - 30
  FROM generate_series(1, 300) d, generate_series(1, 5) dow,
	   (VALUES ('08:00'::time, '12:00'::time), ('13:00', '17:00')) t(s, e)
 WHERE NOT (d % 7 = 0 AND dow = 5);
-- holidays, a facility closed for a day, doctors on leave
INSERT INTO availability_exceptions (facility_id, doctor_id, starts_at, ends_at, kind)
VALUES (NULL, NULL, current_date + 10, current_date + 11, 'blocked'),
	   (3, NULL, current_date + 4, current_date + 5, 'blocked');
INSERT INTO availability_exceptions (facility_id, doctor_id, starts_at, ends_at, kind)
SELECT NULL, d, current_date + d % 20, current_date + d % 20 + 3, 'blocked'
  FROM generate_series(1, 300, 9) d;

CREATE TABLE patients (id bigint PRIMARY KEY, name text, phone text);
INSERT INTO patients SELECT p, 'Patient ' || p, '+9665' || lpad(p::text, 8, '0')
  FROM generate_series(1, 5000) p;
CREATE TABLE appointments (slot_id bigint PRIMARY KEY, patient_id bigint REFERENCES patients);

CREATE MATERIALIZED VIEW slots_per_doctor AS
	SELECT doctor_id, count(*) FILTER (WHERE status = 'open') AS open_slots,
		   count(*) FILTER (WHERE status = 'booked') AS booked_slots
	  FROM availability_slots GROUP BY doctor_id;
CREATE UNIQUE INDEX ON slots_per_doctor (doctor_id);


\echo
\echo '== clinic: the seeds'' timetable, as pg_cron jobs'
SELECT name, schedule, kind FROM jobq.schedule_timetable('{
	"attendance.thresholds": false, "attendance.aggregate": false, "table.archive": false,
	"matview.refresh": {"payload": {"view": "slots_per_doctor"}}}');

\echo
\echo '== clinic: the first run of slot generation (the next 30 days)'
SELECT jobq.run_schedule('slots.generate') AS slots_job \gset
SELECT demo_wait() AS waited \gset
SELECT status, result, round(extract(epoch FROM finished_at - started_at)::numeric, 2) AS seconds
  FROM jobq.jobs WHERE id = :slots_job;

-- patients book a third of the first week; some hold a reservation that has expired
WITH s AS (
	SELECT id, row_number() OVER (ORDER BY id) AS n FROM availability_slots
	 WHERE starts_at < current_date + 7 AND id % 3 = 0)
INSERT INTO appointments SELECT id, 1 + n % 5000 FROM s;
UPDATE availability_slots SET status = 'booked' WHERE id IN (SELECT slot_id FROM appointments);
UPDATE availability_slots SET status = 'reserved', reserved_until = now() - interval '3 minutes'
 WHERE status = 'open' AND id % 11 = 0 AND starts_at < current_date + 14;
UPDATE availability_slots SET status = 'reserved', reserved_until = now() + interval '10 minutes'
 WHERE status = 'open' AND id % 13 = 0 AND starts_at < current_date + 14;

\echo
\echo '== clinic: the first run of the reservation release and the dashboard refresh'
SELECT jobq.run_schedule('reservations.release') AS release_job,
	   jobq.run_schedule('matview.refresh') AS refresh_job \gset
SELECT demo_wait() AS waited \gset
SELECT kind, status, result FROM jobq.jobs WHERE id IN (:release_job, :refresh_job) ORDER BY id;

\echo
\echo '== clinic: a reminder SMS for each appointment of tomorrow, enqueued in one statement'
SELECT count(*) AS reminders FROM jobq.enqueue_many('sms',
	(SELECT array_agg(jsonb_build_object('channel', 'sms', 'to', p.phone,
		'message', format('Reminder: your appointment with doctor %s is tomorrow at %s.',
						  s.doctor_id, to_char(s.starts_at, 'HH24:MI'))))
	   FROM appointments a JOIN availability_slots s ON s.id = a.slot_id
	   JOIN patients p ON p.id = a.patient_id
	  WHERE s.starts_at >= current_date + 1 AND s.starts_at < current_date + 2));
SELECT demo_wait() AS waited \gset
SELECT outcome, count(*) AS deliveries, round(avg(duration_ms)::numeric, 1) AS avg_ms
  FROM jobq.deliveries WHERE kind = 'sms' GROUP BY outcome;
