/*
 * 50_schedule: recurring jobs with pg_cron (src/schedule.c talks to
 * pg_cron; these functions keep jobq._schedules).  Re-creatable (see
 * 20_api.sql).
 */

CREATE OR REPLACE VIEW jobq.schedules WITH (security_barrier) AS
	SELECT s.name, s.schedule, s.kind, s.payload, s.queue, s.priority, s.owner,
		   s.cron_job_name, s.cron_job_id, s.created_at, s.updated_at,
		   s.last_enqueue_at, s.last_job_id,
		   j.status AS last_job_status, j.finished_at AS last_job_finished_at,
		   j.last_error AS last_job_error, s.paused
	  FROM jobq._schedules s
	  LEFT JOIN LATERAL (
		SELECT q.status, NULL::timestamptz AS finished_at, q.last_error
		  FROM jobq._queue q WHERE q.id = s.last_job_id
		UNION ALL
		SELECT d.status, d.finished_at, d.last_error
		  FROM jobq._done d WHERE d.id = s.last_job_id
		 LIMIT 1) j ON true
	 WHERE pg_catalog.pg_has_role(s.owner, 'MEMBER');
COMMENT ON VIEW jobq.schedules
	IS 'the schedules of roles the current role is a member of, with their latest job';
GRANT SELECT ON jobq.schedules TO PUBLIC;

CREATE OR REPLACE FUNCTION jobq.schedule(
	name text,
	schedule text,
	kind text,
	payload jsonb DEFAULT '{}',
	queue text DEFAULT NULL,
	priority integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'jobq_schedule'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.schedule(text, text, text, jsonb, text, integer)
	IS 'create or replace a recurring job: a pg_cron job that enqueues it as the current role; returns the pg_cron job id';

CREATE OR REPLACE FUNCTION jobq.unschedule(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jobq_unschedule'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.unschedule(text)
	IS 'remove a schedule and its pg_cron job; its pending job stays';

CREATE OR REPLACE FUNCTION jobq.pause_schedule(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jobq_pause_schedule'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.pause_schedule(text)
	IS 'stop a schedule from enqueuing its job until jobq.resume_schedule; false if it was paused already';

CREATE OR REPLACE FUNCTION jobq.resume_schedule(name text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jobq_resume_schedule'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.resume_schedule(text)
	IS 'let a paused schedule enqueue its job again at its next tick; false if it was not paused';

/*
 * What pg_cron runs, as the schedule's owner: enqueue the schedule's job
 * unless its previous run is still pending or running, or the schedule is
 * paused.  Returns the job id (NULL while paused).
 */
CREATE OR REPLACE FUNCTION jobq.run_schedule(name text)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s record;
	id bigint;
	old_role text;
BEGIN
	SELECT * INTO s FROM jobq.schedules v WHERE v.name = run_schedule.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'schedule "%" does not exist', name USING ERRCODE = 'undefined_object',
			HINT = 'jobq.schedules lists the schedules of the roles you are a member of.';
	END IF;
	/* the owner, or a role with its rights (a superuser, say) */
	IF NOT pg_has_role(s.owner, 'USAGE') THEN
		RAISE EXCEPTION 'schedule "%" belongs to role %', name, s.owner USING ERRCODE = 'insufficient_privilege';
	END IF;
	IF s.paused THEN
		RETURN NULL;
	END IF;
	/* the job is the owner's, whoever runs the schedule */
	IF s.owner::oid <> (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN
		old_role := current_setting('role');
		PERFORM set_config('role', (SELECT rolname FROM pg_roles WHERE oid = s.owner), true);
	END IF;
	id := jobq.enqueue(s.kind, s.payload, queue => s.queue, priority => s.priority,
					   job_key => 'schedule:' || s.name);
	IF old_role IS NOT NULL THEN
		PERFORM set_config('role', old_role, true);
	END IF;
	PERFORM jobq._schedule_ran(s.name, id);
	RETURN id;
END $$;
COMMENT ON FUNCTION jobq.run_schedule(text)
	IS 'enqueue a schedule''s job now, as its owner, unless the previous one is still pending or running or the schedule is paused (pg_cron calls this)';


/*
 * jobq._schedule_ran runs as its owner (it writes jobq._schedules) and is
 * executable by every role: it records a run only for a caller whose
 * session may act as the schedule's owner (pg_cron connects as the owner;
 * jobq.run_schedule by hand is the owner's, a member's or a superuser's),
 * so no role moves another role's last_enqueue_at.
 */
CREATE OR REPLACE FUNCTION jobq._schedule_ran(name text, job_id bigint)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
	UPDATE jobq._schedules s SET last_enqueue_at = pg_catalog.now(), last_job_id = q.id
	  FROM jobq._queue q
	 WHERE s.name = _schedule_ran.name AND q.id = _schedule_ran.job_id
	   AND q.owner = s.owner AND q.job_key = 'schedule:' || s.name
	   AND pg_catalog.pg_has_role(session_user, s.owner, 'MEMBER')
$$;
COMMENT ON FUNCTION jobq._schedule_ran(text, bigint)
	IS 'note the job a schedule enqueued (it must be the live job with the schedule''s key)';

/* Would this job be accepted from the current role?  Enqueue it, then roll back. */
CREATE OR REPLACE FUNCTION jobq._schedule_check(kind text, payload jsonb, queue text, priority integer)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM jobq.enqueue(kind, payload, queue => queue, priority => priority);
	RAISE EXCEPTION USING ERRCODE = 'JQ000';
EXCEPTION WHEN SQLSTATE 'JQ000' THEN
	NULL;
END $$;
COMMENT ON FUNCTION jobq._schedule_check(text, jsonb, text, integer)
	IS 'raise the error jobq.enqueue would raise for such a job, else nothing (nothing is enqueued)';

/*
 * Called by jobq.schedule as a superuser, for the caller: store the
 * schedule; return the name a new pg_cron job gets, its command and user,
 * and the pg_cron job the schedule had (id, name, user), if any.
 */
CREATE OR REPLACE FUNCTION jobq._schedule_save(name text, schedule text, kind text, payload jsonb,
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
CREATE OR REPLACE FUNCTION jobq._schedule_delete(name text, caller oid,
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

CREATE OR REPLACE FUNCTION jobq._schedule_set_cron_id(name text, cron_job_id bigint, cron_job_name text)
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

/*
 * Called by jobq.pause_schedule and jobq.resume_schedule as a superuser:
 * set the schedule's paused flag if the caller is a member of its owner.
 * Returns NULL when there is no such schedule for the caller, else whether
 * the flag changed.
 */
CREATE OR REPLACE FUNCTION jobq._schedule_pause(name text, caller oid, paused boolean)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s jobq._schedules;
BEGIN
	SELECT * INTO s FROM jobq._schedules v WHERE v.name = _schedule_pause.name FOR UPDATE;
	IF NOT FOUND OR NOT pg_catalog.pg_has_role(caller, s.owner, 'MEMBER') THEN
		RETURN NULL;
	END IF;
	IF s.paused = _schedule_pause.paused THEN
		RETURN false;
	END IF;
	UPDATE jobq._schedules v SET paused = _schedule_pause.paused
	 WHERE v.name = _schedule_pause.name;
	RETURN true;
END $$;
REVOKE ALL ON FUNCTION jobq._schedule_pause(text, oid, boolean) FROM PUBLIC;
COMMENT ON FUNCTION jobq._schedule_pause(text, oid, boolean)
	IS 'pause or resume a schedule if the caller is a member of its owner (jobq.pause_schedule and jobq.resume_schedule call this)';
