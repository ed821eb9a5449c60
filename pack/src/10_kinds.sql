CREATE FUNCTION jobq._pack_month(payload jsonb)
RETURNS date
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT pg_catalog.date_trunc('month', coalesce((payload ->> 'month')::date, pg_catalog.now()::date))::date
$$;
COMMENT ON FUNCTION jobq._pack_month(jsonb) IS 'the first day of the month a payload names, or of this month';

/*
 * jit off: the insert's cost estimate passes jit_above_cost, but compiling
 * takes longer (about 0.2 s here) than it saves in a statement that spends
 * its time inserting rows.
 */
CREATE FUNCTION jobq._slots_generate(payload jsonb, search_path text)
RETURNS jsonb
LANGUAGE plpgsql SET jit = off SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	rules regclass := jobq._pack_table(payload, 'rules_table', 'availability_rules', search_path);
	exceptions regclass := jobq._pack_table(payload, 'exceptions_table', 'availability_exceptions', search_path);
	slots regclass := jobq._pack_table(payload, 'slots_table', 'availability_slots', search_path);
	tz text := coalesce(payload ->> 'timezone', pg_catalog.current_setting('TimeZone'));
	first_day date;
	last_day date;
	too_long boolean;
	candidates bigint;
	created bigint;
BEGIN
	PERFORM pg_catalog.now() AT TIME ZONE tz;	/* an unknown zone fails here */
	first_day := coalesce((payload ->> 'start_date')::date, (pg_catalog.now() AT TIME ZONE tz)::date);
	last_day := coalesce((payload ->> 'end_date')::date, first_day + 30);
	/* an infinite or a huge span would generate days until the job's timeout */
	too_long := NOT (pg_catalog.isfinite(first_day) AND pg_catalog.isfinite(last_day));
	IF NOT too_long THEN
		too_long := last_day - first_day > 366;
	END IF;
	IF too_long THEN
		RAISE EXCEPTION 'start_date and end_date must be finite and at most 366 days apart'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('start_date is %s, end_date %s.', first_day, last_day),
				  HINT = 'Enqueue one job per year for longer spans.';
	END IF;
	IF last_day < first_day THEN
		RAISE EXCEPTION 'end_date % is before start_date %', last_day, first_day
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM jobq._pack_columns(rules, ARRAY['id', 'facility_id', 'doctor_id', 'service_id',
		'day_of_week', 'start_time', 'end_time', 'slot_minutes', 'valid_from', 'valid_until', 'active']);
	PERFORM jobq._pack_columns(exceptions, ARRAY['facility_id', 'doctor_id', 'starts_at', 'ends_at']);
	PERFORM jobq._pack_columns(slots, ARRAY['rule_id', 'facility_id', 'doctor_id', 'service_id',
		'starts_at', 'ends_at', 'status']);

	/*
	 * Local wall-clock times become timestamptz in the zone, so 08:00 stays
	 * 08:00 on both sides of a daylight-saving change; a slot lasts
	 * slot_minutes of real time.
	 */
	EXECUTE format($sql$
		WITH candidate AS (
			SELECT r.id AS rule_id, r.facility_id, r.doctor_id, r.service_id,
				   (d.day + r.start_time + i * pg_catalog.make_interval(mins => r.slot_minutes))
					   AT TIME ZONE $1 AS starts_at,
				   pg_catalog.make_interval(mins => r.slot_minutes) AS length
			  FROM %1$s r
			  JOIN pg_catalog.generate_series($2::timestamp, $3::timestamp, interval '1 day') AS d(day)
				ON pg_catalog.date_part('dow', d.day) = r.day_of_week
			   AND d.day::date >= r.valid_from
			   AND (r.valid_until IS NULL OR d.day::date <= r.valid_until)
			 CROSS JOIN LATERAL pg_catalog.generate_series(0,
				   (pg_catalog.date_part('epoch', r.end_time - r.start_time) / 60)::integer
					   / r.slot_minutes - 1) AS i
			 WHERE r.active
			   AND ($4::bigint IS NULL OR r.facility_id = $4)
			   AND ($5::bigint IS NULL OR r.doctor_id = $5)
		), exception AS MATERIALIZED (
			SELECT facility_id, doctor_id, starts_at, ends_at FROM %2$s
			 WHERE ends_at > ($2::timestamp - interval '1 day') AT TIME ZONE $1
			   AND starts_at < ($3::timestamp + interval '2 days') AT TIME ZONE $1
		), everywhere AS MATERIALIZED (
			SELECT starts_at, ends_at FROM exception
			 WHERE doctor_id IS NULL AND facility_id IS NULL
		), free AS (
			/*
			 * One test per kind of exception: a doctor's own and a facility's
			 * on an equality the planner can hash, the cluster-wide ones (few)
			 * on their own.  A single test with ORs would compare every
			 * candidate with every exception.
			 */
			SELECT c.* FROM candidate c
			 WHERE NOT EXISTS (
				SELECT FROM exception e
				 WHERE e.doctor_id = c.doctor_id
				   AND (e.facility_id IS NULL OR e.facility_id = c.facility_id)
				   AND e.starts_at < c.starts_at + c.length AND e.ends_at > c.starts_at)
			   AND NOT EXISTS (
				SELECT FROM exception e
				 WHERE e.doctor_id IS NULL AND e.facility_id = c.facility_id
				   AND e.starts_at < c.starts_at + c.length AND e.ends_at > c.starts_at)
			   AND NOT EXISTS (
				SELECT FROM everywhere e
				 WHERE e.starts_at < c.starts_at + c.length AND e.ends_at > c.starts_at)
		), inserted AS (
			INSERT INTO %3$s (rule_id, facility_id, doctor_id, service_id, starts_at, ends_at, status)
			SELECT rule_id, facility_id, doctor_id, service_id, starts_at, starts_at + length, 'open'
			  FROM free
			ON CONFLICT (doctor_id, starts_at) DO NOTHING
			RETURNING 1)
		SELECT (SELECT pg_catalog.count(*) FROM candidate), (SELECT pg_catalog.count(*) FROM inserted)
		$sql$, rules, exceptions, slots)
	INTO candidates, created
	USING tz, first_day, last_day, (payload ->> 'facility_id')::bigint, (payload ->> 'doctor_id')::bigint;

	RAISE LOG 'jobq slots.generate % to %: % slots created, % skipped', first_day, last_day, created, candidates - created;
	RETURN pg_catalog.jsonb_build_object('created', created, 'skipped', candidates - created);
END $$;
COMMENT ON FUNCTION jobq._slots_generate(jsonb, text)
	IS 'the work of jobq.slots_generate, with table names looked up in search_path';

CREATE FUNCTION jobq._reservations_release(payload jsonb, search_path text)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	slots regclass := jobq._pack_table(payload, 'slots_table', 'availability_slots', search_path);
	released bigint;
BEGIN
	PERFORM jobq._pack_columns(slots, ARRAY['id', 'status', 'reserved_until']);
	/* rows a booking holds are skipped, not waited for */
	EXECUTE format($sql$
		UPDATE %1$s s SET status = 'open', reserved_until = NULL
		 WHERE s.id IN (SELECT id FROM %1$s
						 WHERE status = 'reserved' AND reserved_until < pg_catalog.now()
						   FOR UPDATE SKIP LOCKED)
		   AND s.status = 'reserved'
		$sql$, slots);
	GET DIAGNOSTICS released = ROW_COUNT;
	RAISE LOG 'jobq reservations.release: % reservations released', released;
	RETURN pg_catalog.jsonb_build_object('released', released);
END $$;
COMMENT ON FUNCTION jobq._reservations_release(jsonb, text)
	IS 'the work of jobq.reservations_release, with table names looked up in search_path';

CREATE FUNCTION jobq._attendance_aggregate(payload jsonb, search_path text)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	attendance regclass := jobq._pack_table(payload, 'attendance_table', 'attendance', search_path);
	monthly regclass := jobq._pack_table(payload, 'monthly_table', 'attendance_monthly', search_path);
	month date := jobq._pack_month(payload);
	written bigint;
BEGIN
	PERFORM jobq._pack_columns(attendance, ARRAY['student_id', 'campus_id', 'day', 'status', 'hours']);
	PERFORM jobq._pack_columns(monthly, ARRAY['student_id', 'campus_id', 'month', 'present', 'absent',
		'late', 'sick', 'leave', 'total_hours', 'attendance_rate', 'excused_rate']);
	EXECUTE format($sql$
		INSERT INTO %2$s AS m (student_id, campus_id, month, present, absent, late, sick, "leave",
							   total_hours, attendance_rate, excused_rate)
		SELECT student_id, campus_id, $1,
			   coalesce(sum(hours) FILTER (WHERE status = 'present'), 0),
			   coalesce(sum(hours) FILTER (WHERE status = 'absent'), 0),
			   coalesce(sum(hours) FILTER (WHERE status = 'late'), 0),
			   coalesce(sum(hours) FILTER (WHERE status = 'sick'), 0),
			   coalesce(sum(hours) FILTER (WHERE status = 'leave'), 0),
			   sum(hours),
			   round(100 * coalesce(sum(hours) FILTER (WHERE status IN ('present', 'late')), 0)
					 / NULLIF(sum(hours), 0), 2),
			   round(100 * coalesce(sum(hours) FILTER (WHERE status IN ('sick', 'leave')), 0)
					 / NULLIF(sum(hours), 0), 2)
		  FROM %1$s
		 WHERE day >= $1 AND day < $1 + interval '1 month'
		   AND ($2::bigint IS NULL OR campus_id = $2)
		 GROUP BY student_id, campus_id
		ON CONFLICT (student_id, campus_id, month) DO UPDATE
		   SET present = EXCLUDED.present, absent = EXCLUDED.absent, late = EXCLUDED.late,
			   sick = EXCLUDED.sick, "leave" = EXCLUDED."leave", total_hours = EXCLUDED.total_hours,
			   attendance_rate = EXCLUDED.attendance_rate, excused_rate = EXCLUDED.excused_rate
		$sql$, attendance, monthly)
	USING month, (payload ->> 'campus_id')::bigint;
	GET DIAGNOSTICS written = ROW_COUNT;
	RAISE LOG 'jobq attendance.aggregate %: % rows written', month, written;
	RETURN pg_catalog.jsonb_build_object('rows', written, 'month', month);
END $$;
COMMENT ON FUNCTION jobq._attendance_aggregate(jsonb, text)
	IS 'the work of jobq.attendance_aggregate, with table names looked up in search_path';

CREATE FUNCTION jobq._attendance_thresholds(payload jsonb, search_path text)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	monthly regclass := jobq._pack_table(payload, 'monthly_table', 'attendance_monthly', search_path);
	notices regclass := jobq._pack_table(payload, 'notices_table', 'attendance_notices', search_path);
	month date := jobq._pack_month(payload);
	notify_kind text := payload ->> 'notify_kind';
	channel text := payload ->> 'channel';
	warning numeric := coalesce((payload #>> '{thresholds,warning}')::numeric, 80);
	mahroom numeric := coalesce((payload #>> '{thresholds,mahroom}')::numeric, 75);
	tasdiq numeric := coalesce((payload #>> '{thresholds,tasdiq}')::numeric, 85);
	urgent_priority integer := coalesce((payload ->> 'urgent_priority')::integer, -10);
	messages jsonb := jsonb_build_object(
		'warning', 'Attendance warning: student %student_id% attended %rate%% of classes in %month%.',
		'mahroom', 'URGENT: student %student_id% attended %rate%% of classes in %month% and may be barred from exams (mahroom).',
		'tasdiq', 'Student %student_id% was absent sick or on leave for %rate%% of classes in %month%: please send the certificates (tasdiq).')
		|| coalesce(payload -> 'messages', '{}');
	subjects jsonb := jsonb_build_object(
		'warning', 'Attendance warning',
		'mahroom', 'Urgent: attendance under the exam line',
		'tasdiq', 'Certificates needed for absences')
		|| coalesce(payload -> 'subjects', '{}');
	contacts regclass;
	to_column text;
	contact_join text := '';
	notification text;
	counts jsonb;
	links jsonb;
BEGIN
	IF notify_kind IS NULL THEN
		RAISE EXCEPTION 'payload must name the kind of the notification jobs in "notify_kind"'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM jobq.kinds WHERE kind = notify_kind) THEN
		RAISE EXCEPTION 'job kind "%" does not exist', notify_kind USING ERRCODE = 'undefined_object';
	END IF;
	IF notify_kind = 'sql' THEN
		RAISE EXCEPTION 'notify_kind cannot be "sql"' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Use sms, email, webhook or a registered kind.';
	END IF;
	IF NOT (mahroom < warning AND warning <= 100 AND mahroom >= 0 AND tasdiq BETWEEN 0 AND 100) THEN
		RAISE EXCEPTION 'thresholds must satisfy 0 <= mahroom < warning <= 100 and 0 <= tasdiq <= 100'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM unnest(ARRAY['warning', 'mahroom', 'tasdiq']) t
				WHERE jsonb_typeof(messages -> t) IS DISTINCT FROM 'string'
				   OR jsonb_typeof(subjects -> t) IS DISTINCT FROM 'string') THEN
		RAISE EXCEPTION 'payload members "messages" and "subjects" must map thresholds to strings'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM jobq._pack_columns(monthly, ARRAY['student_id', 'campus_id', 'month', 'total_hours',
		'attendance_rate', 'excused_rate']);
	PERFORM jobq._pack_columns(notices, ARRAY['student_id', 'campus_id', 'month', 'threshold', 'rate', 'job_id']);

	/*
	 * The payload of each notification job, over the columns of flagged
	 * (student_id, campus_id, threshold, rate), contact (c.to_value), $1
	 * month, $8 channel, the text of the message (m.text), $11 subjects.  sms and email need a contact: the
	 * students without one are left for a later run (no notice recorded).
	 */
	IF notify_kind IN ('sms', 'email') THEN
		IF channel IS NULL THEN
			RAISE EXCEPTION 'payload must name the channel of the % notifications in "channel"', notify_kind
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		contacts := jobq._pack_table(payload, 'contacts_table', 'student_contacts', search_path);
		to_column := coalesce(payload ->> 'to_column', CASE notify_kind WHEN 'sms' THEN 'phone' ELSE 'email' END);
		PERFORM jobq._pack_columns(contacts, ARRAY['student_id', to_column]);
		contact_join := format('JOIN (SELECT student_id, %I::text AS to_value FROM %s WHERE %I IS NOT NULL) c USING (student_id)',
							   to_column, contacts, to_column);
		notification := $n$pg_catalog.jsonb_build_object('channel', $8, 'to', c.to_value,
			CASE WHEN $5 = 'sms' THEN 'message' ELSE 'text' END, m.text)
			|| CASE WHEN $5 = 'email' THEN pg_catalog.jsonb_build_object('subject', $11 ->> f.threshold)
					ELSE '{}' END$n$;
	ELSIF notify_kind = 'webhook' THEN
		notification := $n$pg_catalog.jsonb_build_object('event', 'attendance.threshold',
			'data', pg_catalog.jsonb_build_object('student_id', f.student_id, 'campus_id', f.campus_id,
				'month', $1, 'threshold', f.threshold, 'rate', f.rate))
			|| CASE WHEN $8 IS NULL THEN pg_catalog.jsonb_build_object('url', $10)
					ELSE pg_catalog.jsonb_build_object('channel', $8) END$n$;
	ELSE
		notification := $n$pg_catalog.jsonb_build_object('student_id', f.student_id, 'campus_id', f.campus_id,
			'month', $1, 'threshold', f.threshold, 'rate', f.rate)
			|| CASE WHEN $8 IS NULL THEN '{}' ELSE pg_catalog.jsonb_build_object('channel', $8) END$n$;
	END IF;

	IF coalesce((payload ->> 'refresh')::boolean, true) THEN
		PERFORM jobq._attendance_aggregate(payload, search_path);
	END IF;

	/*
	 * warning: attendance under the warning line but above the mahroom line;
	 * mahroom: at or under the mahroom line (urgent: exams may be barred);
	 * tasdiq: sick and leave hours above (100 - tasdiq)% of all hours, so the
	 * student stays over the tasdiq line only with certified absences.
	 * A notice is recorded once per student, month and threshold, before its
	 * job is enqueued: a concurrent run waits on the key and adds nothing.
	 */
	EXECUTE format($sql$
		WITH flagged AS (
			SELECT student_id, campus_id, 'mahroom' AS threshold, attendance_rate AS rate
			  FROM %1$s WHERE month = $1 AND total_hours > 0 AND attendance_rate <= $3
			   AND ($7::bigint IS NULL OR campus_id = $7)
			UNION ALL
			SELECT student_id, campus_id, 'warning', attendance_rate
			  FROM %1$s WHERE month = $1 AND total_hours > 0
			   AND attendance_rate < $2 AND attendance_rate > $3
			   AND ($7::bigint IS NULL OR campus_id = $7)
			UNION ALL
			SELECT student_id, campus_id, 'tasdiq', excused_rate
			  FROM %1$s WHERE month = $1 AND total_hours > 0 AND excused_rate > 100 - $4
			   AND ($7::bigint IS NULL OR campus_id = $7)
		), reachable AS (
			SELECT f.* FROM flagged f %3$s
		), fresh AS (
			INSERT INTO %2$s (student_id, campus_id, month, threshold, rate)
			SELECT student_id, campus_id, $1, threshold, rate FROM reachable
			ON CONFLICT (student_id, month, threshold) DO NOTHING
			RETURNING student_id, campus_id, threshold, rate
		), queued AS (
			SELECT f.student_id, f.threshold,
				   jobq.enqueue($5, %4$s,
						priority => CASE WHEN f.threshold = 'mahroom' THEN $6 ELSE NULL END,
						job_key => pg_catalog.format('attendance:%%s:%%s:%%s:%%s', $5, f.student_id,
							pg_catalog.to_char($1, 'YYYY-MM'), f.threshold) %5$s) AS job_id
			  FROM fresh f %3$s
			  CROSS JOIN LATERAL (SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
						$9 ->> f.threshold, '%%student_id%%', f.student_id::text),
						'%%rate%%', pg_catalog.round(f.rate, 1)::text),
						'%%month%%', pg_catalog.to_char($1, 'YYYY-MM')),
						'%%threshold%%', f.threshold) AS text) m)
		SELECT pg_catalog.jsonb_build_object(
				'warning', (SELECT pg_catalog.count(*) FROM flagged WHERE threshold = 'warning'),
				'mahroom', (SELECT pg_catalog.count(*) FROM flagged WHERE threshold = 'mahroom'),
				'tasdiq', (SELECT pg_catalog.count(*) FROM flagged WHERE threshold = 'tasdiq'),
				'no_contact', (SELECT pg_catalog.count(*) FROM flagged f WHERE NOT EXISTS (
					SELECT FROM reachable r WHERE r.student_id = f.student_id AND r.threshold = f.threshold)),
				'notified', (SELECT pg_catalog.count(*) FROM queued)),
			   (SELECT coalesce(pg_catalog.jsonb_agg(q), '[]') FROM queued q)
		$sql$, monthly, notices, contact_join, notification,
		CASE WHEN contact_join <> '' THEN $k$|| ':' || c.to_value$k$ ELSE '' END)
	INTO counts, links
	USING month, warning, mahroom, tasdiq, notify_kind, urgent_priority, (payload ->> 'campus_id')::bigint,
		  channel, messages, payload ->> 'url', subjects;

	/* a WITH query cannot see rows its sibling inserted: link the jobs now */
	EXECUTE format($sql$
		UPDATE %1$s n SET job_id = (l ->> 'job_id')::bigint
		  FROM pg_catalog.jsonb_array_elements($2) AS l
		 WHERE n.student_id = (l ->> 'student_id')::bigint AND n.month = $1
		   AND n.threshold = l ->> 'threshold'
		$sql$, notices)
	USING month, links;

	RAISE LOG 'jobq attendance.thresholds %: %', month, counts;
	RETURN counts || pg_catalog.jsonb_build_object('month', month);
END $$;
COMMENT ON FUNCTION jobq._attendance_thresholds(jsonb, text)
	IS 'the work of jobq.attendance_thresholds, with table names looked up in search_path';

/*
 * The handlers the kinds name (jobq._kinds.handler): the caller's
 * search_path goes to the pinned function.  Nothing here may be looked up
 * in that path: every name is schema-qualified.
 */
CREATE FUNCTION jobq.slots_generate(payload jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jobq._slots_generate(payload, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION jobq.slots_generate(jsonb)
	IS 'job kind slots.generate: availability slots from weekly rules, minus exceptions, in one statement';

CREATE FUNCTION jobq.reservations_release(payload jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jobq._reservations_release(payload, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION jobq.reservations_release(jsonb)
	IS 'job kind reservations.release: expired reservations become open slots again';

CREATE FUNCTION jobq.attendance_aggregate(payload jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jobq._attendance_aggregate(payload, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION jobq.attendance_aggregate(jsonb)
	IS 'job kind attendance.aggregate: upsert every student''s month of attendance in one statement';

CREATE FUNCTION jobq.attendance_thresholds(payload jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jobq._attendance_thresholds(payload, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION jobq.attendance_thresholds(jsonb)
	IS 'job kind attendance.thresholds: notify each student under a threshold once per month and threshold';

/*
 * The kinds, built in: jobq.register_kind cannot replace or remove them,
 * and pg_dump leaves them out (CREATE EXTENSION jobq_pack brings them
 * back).  extension names this one: DROP EXTENSION jobq_pack removes them
 * (jobq's event trigger jobq_drop_extension_kinds).  A kind of the same
 * name that an application registered is not replaced.
 */
DO $$
DECLARE
	taken text;
BEGIN
	SELECT pg_catalog.string_agg(kind, ', ' ORDER BY kind) INTO taken
	  FROM jobq._kinds
	 WHERE kind IN ('slots.generate', 'reservations.release', 'attendance.aggregate', 'attendance.thresholds');
	IF taken IS NOT NULL THEN
		RAISE EXCEPTION 'job kinds of jobq_pack exist already: %', taken
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Remove them with jobq.unregister_kind() first.';
	END IF;
END $$;
INSERT INTO jobq._kinds (kind, builtin, handler, max_attempts, extension) VALUES
	('slots.generate', true, 'jobq.slots_generate(pg_catalog.jsonb)', 5, 'jobq_pack'),
	('reservations.release', true, 'jobq.reservations_release(pg_catalog.jsonb)', 5, 'jobq_pack'),
	('attendance.aggregate', true, 'jobq.attendance_aggregate(pg_catalog.jsonb)', 5, 'jobq_pack'),
	('attendance.thresholds', true, 'jobq.attendance_thresholds(pg_catalog.jsonb)', 5, 'jobq_pack');
/* every backend, the workers too, sees the new kinds from now on */
SELECT jobq._kinds_changed();
