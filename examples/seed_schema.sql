-- examples/seed_schema.sql: the default tables of jobq's job pack, jobq_pack.
--
-- The kinds slots.generate, reservations.release, attendance.aggregate and
-- attendance.thresholds read and write these tables unless their payload
-- names others ("rules_table", "slots_table", ...).  Tables of your own need
-- the same column names and the unique keys marked below; extra columns are
-- fine.  Load with: psql -d clinic -f examples/seed_schema.sql

-- A doctor's weekly working hours: slots of slot_minutes from start_time
-- until end_time (same day, local time), on day_of_week (0 = Sunday).
CREATE TABLE availability_rules (
	id bigserial PRIMARY KEY,
	facility_id bigint NOT NULL,
	doctor_id bigint NOT NULL,
	service_id bigint,
	day_of_week smallint NOT NULL CHECK (day_of_week BETWEEN 0 AND 6),
	start_time time NOT NULL,
	end_time time NOT NULL CHECK (end_time > start_time),
	slot_minutes integer NOT NULL CHECK (slot_minutes > 0),
	valid_from date NOT NULL,
	valid_until date,
	active boolean NOT NULL DEFAULT true
);

-- Time when no slot may be offered; NULL facility or doctor matches all.
CREATE TABLE availability_exceptions (
	id bigserial PRIMARY KEY,
	facility_id bigint,
	doctor_id bigint,
	starts_at timestamptz NOT NULL,
	ends_at timestamptz NOT NULL CHECK (ends_at > starts_at),
	kind text NOT NULL CHECK (kind IN ('blocked', 'emergency'))
);

CREATE TABLE availability_slots (
	id bigserial PRIMARY KEY,
	rule_id bigint,
	facility_id bigint NOT NULL,
	doctor_id bigint NOT NULL,
	service_id bigint,
	starts_at timestamptz NOT NULL,
	ends_at timestamptz NOT NULL,
	status text NOT NULL DEFAULT 'open'
		CHECK (status IN ('open', 'reserved', 'booked', 'blocked')),
	reserved_until timestamptz,
	UNIQUE (doctor_id, starts_at)			-- required: reruns create nothing new
);
CREATE INDEX ON availability_slots (reserved_until) WHERE status = 'reserved';

-- One row per student, day and lesson block; hours default to 1.
CREATE TABLE attendance (
	student_id bigint NOT NULL,
	campus_id bigint NOT NULL,
	day date NOT NULL,
	status text NOT NULL
		CHECK (status IN ('present', 'absent', 'late', 'sick', 'leave')),
	hours numeric NOT NULL DEFAULT 1
);
CREATE INDEX ON attendance (day, campus_id);

-- Hours per status and month; the rates are percentages of total_hours:
-- attendance_rate counts present and late hours, excused_rate sick and leave.
CREATE TABLE attendance_monthly (
	student_id bigint NOT NULL,
	campus_id bigint NOT NULL,
	month date NOT NULL,
	present numeric NOT NULL,
	absent numeric NOT NULL,
	late numeric NOT NULL,
	sick numeric NOT NULL,
	leave numeric NOT NULL,
	total_hours numeric NOT NULL,
	attendance_rate numeric(5, 2),
	excused_rate numeric(5, 2),
	PRIMARY KEY (student_id, campus_id, month)	-- required: the upsert key
);

-- What attendance.thresholds has notified: one row per student, month and
-- threshold, kept after delivery so that nobody is notified twice.
CREATE TABLE attendance_notices (
	student_id bigint NOT NULL,
	campus_id bigint NOT NULL,
	month date NOT NULL,
	threshold text NOT NULL CHECK (threshold IN ('warning', 'mahroom', 'tasdiq')),
	rate numeric(5, 2),
	job_id bigint,
	notified_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (student_id, month, threshold)	-- required: at most once
);

-- Who attendance.thresholds notifies by sms or email: one row per contact
-- (a guardian, say); a student with several contacts gets one notification
-- for each.  Students without a row are not notified until they have one.
CREATE TABLE student_contacts (
	student_id bigint NOT NULL,
	phone text,
	email text
);
CREATE INDEX ON student_contacts (student_id);
