/*
 * The seeds' timetable: the pg_cron schedule of the school and clinic
 * systems' recurring jobs (jobq.schedule, which needs pg_cron).
 */

/*
 * The timetable in one call.  overrides maps an entry's name to
 * false (leave it out) or to {"schedule": ..., "payload": ..., "queue": ...,
 * "priority": ...}, merged over the defaults.  matview.refresh and
 * table.archive need a payload (the view; the tables) and are left out
 * without one.
 */
CREATE FUNCTION jobq.schedule_timetable(overrides jsonb DEFAULT '{}')
RETURNS TABLE (name text, schedule text, kind text, payload jsonb)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	defaults jsonb := '{
		"reservations.release": {"schedule": "*/5 * * * *", "kind": "reservations.release", "payload": {}},
		"slots.generate": {"schedule": "0 1 * * *", "kind": "slots.generate", "payload": {}},
		"attendance.thresholds": {"schedule": "0 * * * *", "kind": "attendance.thresholds",
								  "payload": {"notify_kind": "sms", "channel": "sms"}},
		"attendance.aggregate": {"schedule": "*/10 * * * *", "kind": "attendance.aggregate", "payload": {}},
		"matview.refresh": {"schedule": "*/10 * * * *", "kind": "matview.refresh", "payload": null},
		"table.archive": {"schedule": "0 2 * * *", "kind": "table.archive", "payload": null},
		"jobq.prune": {"schedule": "30 3 * * *", "kind": "jobq.prune", "payload": {}}
	}';
	entry record;
	e jsonb;
	o jsonb;
BEGIN
	IF jsonb_typeof(overrides) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'overrides must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT k INTO name FROM jsonb_object_keys(overrides) k WHERE NOT defaults ? k ORDER BY k LIMIT 1;
	IF name IS NOT NULL THEN
		RAISE EXCEPTION 'the timetable has no entry "%"', name USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Its entries: ' || (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(defaults) k) || '.';
	END IF;
	/* every override is checked before anything is scheduled */
	SELECT key INTO name FROM jsonb_each(overrides)
	 WHERE value <> 'false' AND jsonb_typeof(value) <> 'object' ORDER BY key LIMIT 1;
	IF name IS NOT NULL THEN
		RAISE EXCEPTION 'the override of "%" must be false or an object', name
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR entry IN SELECT key, value FROM jsonb_each(defaults) ORDER BY key LOOP
		o := overrides -> entry.key;
		CONTINUE WHEN o = 'false';
		e := entry.value || coalesce(o, '{}');
		IF e -> 'payload' = 'null' THEN
			RAISE NOTICE 'timetable entry "%" left out: it needs a payload', entry.key;
			CONTINUE;
		END IF;
		PERFORM jobq.schedule(entry.key, e ->> 'schedule', e ->> 'kind', e -> 'payload',
							  queue => e ->> 'queue', priority => (e ->> 'priority')::integer);
		name := entry.key;
		schedule := e ->> 'schedule';
		kind := e ->> 'kind';
		payload := e -> 'payload';
		RETURN NEXT;
	END LOOP;
END $$;
COMMENT ON FUNCTION jobq.schedule_timetable(jsonb)
	IS 'schedule the school and clinic systems'' recurring jobs (each entry changeable or left out)';
