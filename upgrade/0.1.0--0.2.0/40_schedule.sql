
/* ---------------------------------------------------------------------
 * Schedules act on their own pg_cron job only.  In 0.1.0 a pg_cron job was
 * named 'jobq <database> <name>' and found by that name, so database
 * "t1 x" with schedule y and database t1 with schedule "x y" shared one
 * name, and a call in one removed or replaced the other's job.  A new
 * pg_cron job is now named 'jobq <database oid> <name>' (the oid has no
 * space, so the name is never another database's), and a schedule acts
 * on the job whose id it stored (cron_job_id) only if that job still has
 * the stored name, this database and the owner's name as its user
 * (src/schedule.c).  Rows of 0.1.0 keep their job, its id and its name.
 * Schedule names with control characters are refused.
 * ------------------------------------------------------------------- */

DROP FUNCTION jobq._schedule_save(text, text, text, jsonb, text, integer, oid);
DROP FUNCTION jobq._schedule_delete(text, oid);
DROP FUNCTION jobq._schedule_set_cron_id(text, bigint);

/*
 * Called by jobq.schedule as a superuser, for the caller: store the
 * schedule; return the name a new pg_cron job gets, its command and user,
 * and the pg_cron job the schedule had (id, name, user), if any.
 */
CREATE FUNCTION jobq._schedule_save(name text, schedule text, kind text, payload jsonb,
									 queue text, priority integer, caller oid,
									 OUT cron_job_name text, OUT command text, OUT owner_name text,
									 OUT old_cron_job_id bigint, OUT old_cron_job_name text,
									 OUT old_owner_name text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	old jobq._schedules;
	prefix text := pg_catalog.format('jobq %s ',
		(SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()));
BEGIN
	IF name IS NULL OR name = '' OR pg_catalog.length(name) > 63 OR name ~ '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'schedule name must be 1 to 63 characters without control characters'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF schedule IS NULL OR pg_catalog.btrim(schedule) = '' THEN
		RAISE EXCEPTION 'schedule must be a cron line such as ''*/5 * * * *''' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT * INTO old FROM jobq._schedules s WHERE s.name = _schedule_save.name FOR UPDATE;
	IF FOUND AND NOT pg_catalog.pg_has_role(caller, old.owner, 'MEMBER') THEN
		RAISE EXCEPTION 'schedule "%" belongs to role %', name, old.owner USING ERRCODE = 'insufficient_privilege';
	END IF;
	cron_job_name := prefix || name;
	IF pg_catalog.octet_length(cron_job_name) > 63 THEN
		RAISE EXCEPTION 'schedule name "%" is too long for pg_cron', name
			USING ERRCODE = 'name_too_long',
				  DETAIL = pg_catalog.format('Its pg_cron job would be named "%s", over the 63 bytes pg_cron keeps.', cron_job_name),
				  HINT = pg_catalog.format('Use a name of at most %s bytes in this database.',
										   63 - pg_catalog.octet_length(prefix));
	END IF;
	command := pg_catalog.format('SELECT jobq.run_schedule(%L)', name);
	/* role names are identifiers for pg_cron: unquoted */
	owner_name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = caller);
	old_cron_job_id := old.cron_job_id;
	old_cron_job_name := old.cron_job_name;
	old_owner_name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = old.owner);
	INSERT INTO jobq._schedules AS s (name, schedule, kind, payload, queue, priority, owner, cron_job_name)
	VALUES (name, pg_catalog.btrim(schedule), kind, coalesce(payload, '{}'), queue, priority, caller, cron_job_name)
	ON CONFLICT ON CONSTRAINT _schedules_pkey DO UPDATE
	   SET schedule = excluded.schedule, kind = excluded.kind, payload = excluded.payload,
		   queue = excluded.queue, priority = excluded.priority, owner = excluded.owner,
		   updated_at = pg_catalog.now();
END $$;
REVOKE ALL ON FUNCTION jobq._schedule_save(text, text, text, jsonb, text, integer, oid) FROM PUBLIC;
COMMENT ON FUNCTION jobq._schedule_save(text, text, text, jsonb, text, integer, oid)
	IS 'store a schedule for a caller; the name, command and user of a new pg_cron job, and the pg_cron job it had (jobq.schedule calls this)';

/*
 * Called by jobq.unschedule as a superuser: remove the schedule if the
 * caller may; its pg_cron job's id, name and user.
 */
CREATE FUNCTION jobq._schedule_delete(name text, caller oid,
									   OUT deleted boolean, OUT cron_job_id bigint,
									   OUT cron_job_name text, OUT owner_name text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s jobq._schedules;
BEGIN
	SELECT * INTO s FROM jobq._schedules v WHERE v.name = _schedule_delete.name FOR UPDATE;
	deleted := FOUND AND pg_catalog.pg_has_role(caller, s.owner, 'MEMBER');
	IF NOT deleted THEN
		RETURN;
	END IF;
	DELETE FROM jobq._schedules v WHERE v.name = _schedule_delete.name;
	cron_job_id := s.cron_job_id;
	cron_job_name := s.cron_job_name;
	owner_name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = s.owner);
END $$;
REVOKE ALL ON FUNCTION jobq._schedule_delete(text, oid) FROM PUBLIC;
COMMENT ON FUNCTION jobq._schedule_delete(text, oid)
	IS 'remove a schedule if the caller is a member of its owner; its pg_cron job''s id, name and user (jobq.unschedule calls this)';

CREATE FUNCTION jobq._schedule_set_cron_id(name text, cron_job_id bigint, cron_job_name text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE jobq._schedules s
	   SET cron_job_id = _schedule_set_cron_id.cron_job_id,
		   cron_job_name = _schedule_set_cron_id.cron_job_name
	 WHERE s.name = _schedule_set_cron_id.name
$$;
REVOKE ALL ON FUNCTION jobq._schedule_set_cron_id(text, bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION jobq._schedule_set_cron_id(text, bigint, text)
	IS 'note the id and name of the pg_cron job of a schedule (jobq.schedule calls this)';
