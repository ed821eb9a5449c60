
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
