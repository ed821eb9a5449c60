/*
 * 30_views: the views of jobs, kinds and workers (re-creatable: a view
 * may gain columns at its end; one that loses or changes a column is
 * dropped by an upgrade fragment first).  The views of channels,
 * deliveries and schedules are with their functions.
 */

CREATE OR REPLACE VIEW jobq.jobs WITH (security_barrier) AS
	SELECT q.id, q.kind, q.queue, q.payload, q.priority, q.status, q.attempts, q.max_attempts,
		   q.run_at, q.created_at, q.started_at, NULL::timestamptz AS finished_at,
		   NULL::jsonb AS result, q.last_error, q.last_error_sqlstate,
		   q.last_error_context, q.last_error_at, q.owner, q.job_key, q.timeout,
		   q.worker_pid, q.cancel_requested,
		   CASE WHEN p.job_id IS NULL THEN q.progress ELSE p.progress END AS progress,
		   CASE WHEN p.job_id IS NULL THEN q.progress_message ELSE p.progress_message END
			 AS progress_message,
		   q.concurrency_key, q.lease_until
	  FROM jobq._queue q
	  LEFT JOIN jobq._progress() p ON p.job_id = q.id AND q.status = 'running'
	 WHERE pg_catalog.pg_has_role(q.owner, 'MEMBER')
	UNION ALL
	SELECT id, kind, queue, payload, priority, status, attempts, max_attempts,
		   run_at, created_at, started_at, finished_at,
		   result, last_error, last_error_sqlstate,
		   last_error_context, last_error_at, owner, job_key, timeout,
		   NULL::integer, false, progress, progress_message, concurrency_key,
		   NULL::timestamptz
	  FROM jobq._done
	 WHERE pg_catalog.pg_has_role(owner, 'MEMBER');
COMMENT ON VIEW jobq.jobs
	IS 'every job not yet pruned that belongs to a role the current role is a member of';
GRANT SELECT ON jobq.jobs TO PUBLIC;

CREATE OR REPLACE VIEW jobq.kinds AS
	SELECT kind, builtin, handler, queue, priority, max_attempts, timeout,
		   registered_by, registered_at, net, extension, restricted,
		   keep_response, external
	  FROM jobq._kinds;
COMMENT ON VIEW jobq.kinds IS 'the job kinds that jobq.enqueue accepts';
GRANT SELECT ON jobq.kinds TO PUBLIC;

CREATE OR REPLACE VIEW jobq.queue_stats AS
	SELECT queue, status, count(*) AS jobs,
		   min(run_at) FILTER (WHERE status = 'pending') AS oldest_run_at,
		   max(finished_at) AS last_finished_at
	  FROM jobq.jobs
	 GROUP BY queue, status;
COMMENT ON VIEW jobq.queue_stats
	IS 'jobs per queue and state, among the jobs the current role may see';
GRANT SELECT ON jobq.queue_stats TO PUBLIC;

CREATE OR REPLACE VIEW jobq.workers AS
	SELECT * FROM jobq._worker_status();
COMMENT ON VIEW jobq.workers IS 'every jobq worker of the cluster and what it is doing';
REVOKE ALL ON jobq.workers FROM PUBLIC;
GRANT SELECT ON jobq.workers TO pg_monitor;


CREATE OR REPLACE VIEW jobq.databases AS
	WITH here AS (
		SELECT count(*) AS pending,
			   count(*) FILTER (WHERE run_at <= now()) AS due,
			   now() - min(run_at) FILTER (WHERE run_at <= now()) AS oldest_due_wait
		  FROM jobq._queue
		 WHERE status = 'pending')
	SELECT s.datname, s.state, s.sql_workers, s.net_workers,
		   s.sql_due, s.net_due,
		   now() - least(CASE WHEN s.sql_workers = 0 AND s.sql_due <= now() THEN s.sql_due END,
						 CASE WHEN s.net_workers = 0 AND s.net_due <= now() THEN s.net_due END)
			   AS waiting_for_worker,
		   CASE WHEN s.datname = current_database() THEN h.pending END AS pending,
		   CASE WHEN s.datname = current_database() THEN h.due END AS due,
		   CASE WHEN s.datname = current_database() THEN h.oldest_due_wait END AS oldest_due_wait,
		   s.workers_started, s.last_started_at
	  FROM jobq._database_status() s, here h;
COMMENT ON VIEW jobq.databases
	IS 'every database of the cluster: the workers it holds from the pool, when work is due there without a worker, and its jobs pending and due (current database only)';
REVOKE ALL ON jobq.databases FROM PUBLIC;
GRANT SELECT ON jobq.databases TO pg_monitor;
