-- pack: the job pack's kinds on small fixtures, called as the functions
-- the workers call: slots across a daylight-saving change, exceptions,
-- idempotent reruns, reservations, attendance aggregation and thresholds
-- (never notified twice), materialized views, archival in a chain of jobs,
-- and payloads that name missing or hostile tables.
SET client_min_messages = warning;
CREATE EXTENSION jobq_pack CASCADE;
TRUNCATE jobq._queue, jobq._done RESTART IDENTITY;
\i ../examples/seed_schema.sql
SET TimeZone = 'UTC';

SELECT kind, handler, max_attempts FROM jobq.kinds WHERE builtin ORDER BY kind;

-- slots.generate ------------------------------------------------------
-- doctor 1: Sundays 08:00-10:00, 30-minute slots (the last ends at 10:00);
-- doctor 2: Sundays 09:00-10:10, 20-minute slots (10:00-10:20 does not fit);
-- doctor 3: an inactive rule; doctor 4: a rule valid only from 2026-04-01
INSERT INTO availability_rules (facility_id, doctor_id, day_of_week, start_time, end_time,
                                slot_minutes, valid_from, valid_until, active) VALUES
	(1, 1, 0, '08:00', '10:00', 30, '2026-01-01', NULL, true),
	(1, 2, 0, '09:00', '10:10', 20, '2026-01-01', NULL, true),
	(2, 3, 0, '08:00', '10:00', 30, '2026-01-01', NULL, false),
	(2, 4, 0, '08:00', '09:00', 30, '2026-04-01', '2026-12-31', true);

-- Berlin changes to summer time on Sunday 2026-03-29: 08:00 local is 07:00
-- UTC the week before and 06:00 UTC that day
SELECT jobq.slots_generate('{"start_date": "2026-03-22", "end_date": "2026-03-29",
                             "timezone": "Europe/Berlin"}');
SELECT doctor_id, starts_at AT TIME ZONE 'Europe/Berlin' AS local_start,
       starts_at AS utc_start, ends_at - starts_at AS length
  FROM availability_slots WHERE doctor_id = 1 ORDER BY starts_at;
SELECT doctor_id, count(*), max((ends_at AT TIME ZONE 'Europe/Berlin')::time) AS last_end
  FROM availability_slots GROUP BY doctor_id ORDER BY doctor_id;

-- a rerun creates nothing new
SELECT jobq.slots_generate('{"start_date": "2026-03-22", "end_date": "2026-03-29",
                             "timezone": "Europe/Berlin"}');

-- exceptions: a blocked hour for doctor 1, an emergency for all of facility
-- 1, overlapping each other, and one for another facility that matches nothing
INSERT INTO availability_exceptions (facility_id, doctor_id, starts_at, ends_at, kind) VALUES
	(NULL, 1, '2026-04-05 08:30 Europe/Berlin', '2026-04-05 09:15 Europe/Berlin', 'blocked'),
	(1, NULL, '2026-04-05 09:00 Europe/Berlin', '2026-04-05 09:40 Europe/Berlin', 'emergency'),
	(9, NULL, '2026-04-05 00:00 Europe/Berlin', '2026-04-06 00:00 Europe/Berlin', 'blocked');
SELECT jobq.slots_generate('{"start_date": "2026-04-05", "end_date": "2026-04-05",
                             "timezone": "Europe/Berlin"}');
SELECT doctor_id, (starts_at AT TIME ZONE 'Europe/Berlin')::time AS local_start
  FROM availability_slots WHERE starts_at >= '2026-04-05' ORDER BY doctor_id, starts_at;

-- one doctor at a time, and a facility filter
SELECT jobq.slots_generate('{"start_date": "2026-04-12", "end_date": "2026-04-12",
                             "timezone": "Europe/Berlin", "doctor_id": 4}');
SELECT jobq.slots_generate('{"start_date": "2026-04-12", "end_date": "2026-04-12",
                             "timezone": "Europe/Berlin", "facility_id": 1}');

-- bad payloads
SELECT jobq.slots_generate('{"timezone": "Mars/Olympus"}');
SELECT jobq.slots_generate('{"start_date": "2026-04-12", "end_date": "2026-04-01"}');
SELECT jobq.slots_generate('{"slots_table": "no_such_table"}');
SELECT jobq.slots_generate('{"slots_table": "availability_slots; DROP TABLE availability_rules"}');
SELECT jobq.slots_generate('{"slots_table": "\"availability_slots; DROP TABLE availability_rules\""}');
SELECT jobq.slots_generate('{"rules_table": "availability_exceptions"}');
CREATE VIEW slot_view AS SELECT * FROM availability_slots;
SELECT jobq.slots_generate('{"slots_table": "slot_view"}');
SELECT count(*) AS rules_still_there FROM availability_rules;

-- reservations.release ------------------------------------------------
UPDATE availability_slots SET status = 'reserved', reserved_until = now() - interval '1 minute'
 WHERE doctor_id = 1 AND starts_at < '2026-03-29';
UPDATE availability_slots SET status = 'reserved', reserved_until = now() + interval '1 hour'
 WHERE doctor_id = 2 AND starts_at < '2026-03-29';
SELECT jobq.reservations_release('{}');
SELECT doctor_id, status, count(*), count(reserved_until) AS with_deadline
  FROM availability_slots WHERE starts_at < '2026-03-29' GROUP BY 1, 2 ORDER BY 1, 2;
SELECT jobq.reservations_release('{}');

-- attendance.aggregate and attendance.thresholds ---------------------
-- student 1: 20 present hours; 2: 16 present, 4 absent (80 %: no warning);
-- 3: 15 present, 1 late, 4 absent (80 %); 4: 15 present, 5 absent (75 %:
-- mahroom); 5: 14 present, 6 sick (70 %, tasdiq and mahroom);
-- 6: 16 present, 1 late, 3 leave (85 %, excused 15 %: no tasdiq);
-- 7: campus 2, 10 present, 10 absent; 8: 15.5 present, 4.5 absent (77.5 %: warning)
INSERT INTO attendance (student_id, campus_id, day, status, hours)
SELECT s, CASE WHEN s = 7 THEN 2 ELSE 1 END, date '2026-10-01' + g,
       CASE WHEN g < p THEN 'present' WHEN g < p + l THEN 'late' ELSE o END, 1
  FROM (VALUES (1, 20, 0, 'absent'), (2, 16, 0, 'absent'), (3, 15, 1, 'absent'),
               (4, 15, 0, 'absent'), (5, 14, 0, 'sick'), (6, 16, 1, 'leave'),
               (7, 10, 0, 'absent')) v(s, p, l, o),
       generate_series(0, 19) g;
INSERT INTO attendance (student_id, campus_id, day, status, hours) VALUES
	(8, 1, '2026-10-01', 'present', 15.5), (8, 1, '2026-10-02', 'absent', 4.5),
	(1, 1, '2026-09-30', 'absent', 8);		-- another month
SELECT jobq.attendance_aggregate('{"month": "2026-10-01"}');
SELECT * FROM attendance_monthly ORDER BY student_id;
-- rerunning rewrites the same rows
SELECT jobq.attendance_aggregate('{"month": "2026-10-15"}');
SELECT jobq.attendance_aggregate('{"month": "2026-10-01", "campus_id": 2}');

CREATE FUNCTION notify_stub(payload jsonb) RETURNS void LANGUAGE sql AS $$ SELECT $$;
SELECT jobq.register_kind('notify.stub', 'notify_stub(jsonb)');
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "notify.stub"}');
SELECT student_id, threshold, rate, job_id IS NOT NULL AS has_job
  FROM attendance_notices ORDER BY student_id, threshold;
SELECT payload->>'student_id' AS student, payload->>'threshold' AS threshold, priority, job_key
  FROM jobq.jobs WHERE kind = 'notify.stub' ORDER BY priority, (payload->>'student_id')::int, 2;
-- the hourly rerun notifies nobody again, even once the jobs are gone
DELETE FROM jobq._queue WHERE kind = 'notify.stub';
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "notify.stub"}');
SELECT count(*) AS notification_jobs FROM jobq.jobs WHERE kind = 'notify.stub';
-- a student who drops further is notified of the new threshold only
INSERT INTO attendance VALUES (8, 1, '2026-10-03', 'absent', 2);
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "notify.stub"}');
SELECT student_id, threshold FROM attendance_notices WHERE student_id = 8 ORDER BY threshold;
-- other lines
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "notify.stub",
                                    "thresholds": {"warning": 90, "mahroom": 50, "tasdiq": 95}, "refresh": false}');
SELECT jobq.attendance_thresholds('{"month": "2026-10-01"}');
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "no.such.kind"}');
SELECT jobq.attendance_thresholds('{"notify_kind": "notify.stub", "thresholds": {"warning": 70, "mahroom": 75}}');
SELECT jobq.attendance_aggregate('{"monthly_table": "attendance_notices"}');
-- through an sms channel: one job per contact, the text of its threshold;
-- student 4 has no phone yet, and is notified once one is known
CREATE TABLE sms_notices (LIKE attendance_notices INCLUDING ALL);
INSERT INTO student_contacts (student_id, phone, email) VALUES
	(5, '+15550005', NULL), (5, '+15550055', 'mum5@example.org'), (8, '+15550008', NULL),
	(4, NULL, 'dad4@example.org');
SELECT jobq.create_channel('school-sms', 'http', '{"url": "https://sms.example.org/send"}');
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "sms", "channel": "school-sms",
	"notices_table": "sms_notices", "messages": {"tasdiq": "Please send the certificates for %student_id% (%rate%%)."}}');
SELECT payload->>'to' AS "to", payload->>'message' AS message, priority
  FROM jobq.jobs WHERE kind = 'sms' ORDER BY payload->>'to', payload->>'message';
SELECT student_id, threshold FROM sms_notices ORDER BY 1, 2;
UPDATE student_contacts SET phone = '+15550004' WHERE student_id = 4;
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "sms", "channel": "school-sms",
	"notices_table": "sms_notices"}') ->> 'notified' AS notified_later;
-- by email, and as webhooks
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "email", "channel": "school-sms",
	"notices_table": "sms_notices"}') ->> 'notified' AS nothing_new;
TRUNCATE sms_notices;
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "email", "channel": "school-sms",
	"notices_table": "sms_notices", "campus_id": 1}');
SELECT payload->>'to' AS "to", payload->>'subject' AS subject FROM jobq.jobs WHERE kind = 'email' ORDER BY 1, 2;
TRUNCATE sms_notices;
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "webhook", "channel": "school-sms",
	"notices_table": "sms_notices"}') ->> 'notified' AS webhooks;
SELECT payload->'data'->>'student_id' AS student, payload->>'event' AS event, payload->'data'->>'threshold' AS threshold
  FROM jobq.jobs WHERE kind = 'webhook' ORDER BY 1, 3;
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "sms"}');
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "sql"}');
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "email", "channel": "school-sms", "subjects": {"warning": 1}}');
SELECT jobq.attendance_thresholds('{"month": "2026-10-01", "notify_kind": "sms", "channel": "school-sms", "to_column": "mobile"}');
DELETE FROM jobq._queue WHERE net;
SELECT jobq.drop_channel('school-sms');

-- matview.refresh -----------------------------------------------------
CREATE MATERIALIZED VIEW slots_per_doctor AS
	SELECT doctor_id, count(*) AS slots FROM availability_slots GROUP BY doctor_id;
CREATE UNIQUE INDEX ON slots_per_doctor (doctor_id);
CREATE MATERIALIZED VIEW slots_total AS SELECT count(*) AS n FROM availability_slots WITH NO DATA;
INSERT INTO availability_slots (facility_id, doctor_id, starts_at, ends_at)
VALUES (5, 50, '2026-05-01 10:00', '2026-05-01 10:30');
SELECT jobq.matview_refresh('{"view": "slots_per_doctor"}');
SELECT slots FROM slots_per_doctor WHERE doctor_id = 50;
SELECT jobq.matview_refresh('{"view": "slots_total"}');
SELECT jobq.matview_refresh('{"view": "slots_total"}');
SELECT jobq.matview_refresh('{"view": "slots_total", "concurrently": false}');
SELECT n > 0 AS populated FROM slots_total;
SELECT jobq.matview_refresh('{"view": "availability_slots"}');
SELECT jobq.matview_refresh('{"view": "no_such_view"}');
SELECT jobq.matview_refresh('{}');

-- table.archive -------------------------------------------------------
CREATE TABLE audit_log (id int, at timestamptz, message text, extra int);
CREATE TABLE audit_archive (id int, at timestamptz, message text, extra int, archived_at timestamptz DEFAULT now());
INSERT INTO audit_log SELECT g, now() - make_interval(days => g), 'event ' || g, g % 3
  FROM generate_series(1, 100) g;
SELECT jobq.table_archive('{"source": "audit_log", "target": "audit_archive",
                            "timestamp_column": "at", "older_than": "30 days", "batch_size": 40}') AS r1 \gset
SELECT :'r1'::jsonb->'moved' AS moved, :'r1'::jsonb->'next_job' IS NOT NULL AS continued;
SELECT kind, payload->>'batch_size' AS batch_size, status FROM jobq.jobs
 WHERE id = (:'r1'::jsonb->>'next_job')::bigint;
SELECT jobq.table_archive(payload) FROM jobq.jobs WHERE id = (:'r1'::jsonb->>'next_job')::bigint;
SELECT count(*) AS left_in_log, min(id), max(id) FROM audit_log;
SELECT count(*) AS archived, min(id), max(id), count(DISTINCT id) FROM audit_archive;
CREATE TABLE thin_archive (id int, at timestamptz);
SELECT jobq.table_archive('{"source": "audit_log", "target": "thin_archive",
                            "timestamp_column": "at", "older_than": "1 day"}');
SELECT jobq.table_archive('{"source": "audit_log", "target": "audit_archive",
                            "timestamp_column": "when", "older_than": "1 day"}');
SELECT jobq.table_archive('{"source": "audit_log", "target": "audit_archive",
                            "timestamp_column": "at"}');
SELECT jobq.table_archive('{"source": "audit_log", "target": "audit_log",
                            "timestamp_column": "at", "older_than": "1 day"}');

-- jobq.prune as a job needs the right to call jobq.prune()
SELECT jobq._prune_kind('{}');
CREATE ROLE pack_user;
SET ROLE pack_user;
SELECT jobq._prune_kind('{}');
-- a role reaches only the tables it may read (terse: the statement text
-- would only repeat the function's)
\set VERBOSITY terse
SELECT jobq.slots_generate('{}');
\set VERBOSITY default
RESET ROLE;

-- an infinite or a huge span is refused, not generated until the job's timeout
SELECT jobq.slots_generate('{"start_date": "2026-04-12", "end_date": "infinity"}');
SELECT jobq.slots_generate('{"start_date": "-infinity", "end_date": "2026-04-12"}');
SELECT jobq.slots_generate('{"start_date": "2026-01-01", "end_date": "2027-01-03"}');
