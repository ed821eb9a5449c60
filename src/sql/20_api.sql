/*
 * 20_api: the SQL API and the worker's entry points, functions in C
 * (src/api.c, src/monitor.c).  This file and the others from 20 to 89 are
 * re-creatable: CREATE OR REPLACE, comments and rights, run both by
 * CREATE EXTENSION and by every upgrade script after its fragments (see
 * the Makefile).
 */

CREATE OR REPLACE FUNCTION jobq.enqueue(
	kind text,
	payload jsonb DEFAULT '{}',
	queue text DEFAULT NULL,
	priority integer DEFAULT NULL,
	run_at timestamptz DEFAULT NULL,
	max_attempts integer DEFAULT NULL,
	job_key text DEFAULT NULL,
	timeout interval DEFAULT NULL,
	key_mode text DEFAULT 'keep',
	concurrency_key text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'jobq_enqueue'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.enqueue(text, jsonb, text, integer, timestamptz, integer, text, interval, text, text)
	IS 'add a job that runs as the current role; returns its id, or the id of the live job with the same job_key (which key_mode debounce or throttle updates)';

CREATE OR REPLACE FUNCTION jobq.enqueue_many(
	kind text,
	payloads jsonb[],
	queue text DEFAULT NULL,
	priority integer DEFAULT NULL,
	run_at timestamptz DEFAULT NULL,
	max_attempts integer DEFAULT NULL,
	job_keys text[] DEFAULT NULL,
	timeout interval DEFAULT NULL,
	concurrency_keys text[] DEFAULT NULL)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'jobq_enqueue_many'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1000;
COMMENT ON FUNCTION jobq.enqueue_many(text, jsonb[], text, integer, timestamptz, integer, text[], interval, text[])
	IS 'add one job per payload in one statement; returns the ids of the jobs added';

CREATE OR REPLACE FUNCTION jobq.cancel(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jobq_cancel'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.cancel(bigint)
	IS 'cancel a pending job, or stop a running one from being tried again';

CREATE OR REPLACE FUNCTION jobq.retry(job_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jobq_retry'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.retry(bigint)
	IS 'run a dead or cancelled job again, with a fresh count of attempts';

CREATE OR REPLACE FUNCTION jobq.retry_jobs(queue text DEFAULT NULL, kind text DEFAULT NULL,
	owner regrole DEFAULT NULL, sqlstate text DEFAULT NULL,
	since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'jobq_retry_jobs'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.retry_jobs(text, text, regrole, text, timestamptz, timestamptz)
	IS 'run again the dead jobs the filter selects (finished in [since, until)); returns how many';

CREATE OR REPLACE FUNCTION jobq.cancel_jobs(queue text DEFAULT NULL, kind text DEFAULT NULL,
	owner regrole DEFAULT NULL, sqlstate text DEFAULT NULL,
	since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'jobq_cancel_jobs'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.cancel_jobs(text, text, regrole, text, timestamptz, timestamptz)
	IS 'cancel the pending jobs the filter selects (created in [since, until)); returns how many';

CREATE OR REPLACE FUNCTION jobq.purge_jobs(queue text DEFAULT NULL, kind text DEFAULT NULL,
	owner regrole DEFAULT NULL, sqlstate text DEFAULT NULL,
	since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL, status text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'jobq_purge_jobs'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.purge_jobs(text, text, regrole, text, timestamptz, timestamptz, text)
	IS 'delete the finished jobs the filter selects (finished in [since, until)); returns how many';

CREATE OR REPLACE FUNCTION jobq.register_kind(
	kind text,
	handler regprocedure,
	queue text DEFAULT 'default',
	max_attempts integer DEFAULT NULL,
	timeout interval DEFAULT NULL,
	priority integer DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'jobq_register_kind'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.register_kind(text, regprocedure, text, integer, interval, integer)
	IS 'create or replace a job kind run by a function (jsonb) returning jsonb or void';
REVOKE ALL ON FUNCTION jobq.register_kind(text, regprocedure, text, integer, interval, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.unregister_kind(kind text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'jobq_unregister_kind'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.unregister_kind(text)
	IS 'remove a registered job kind; its pending jobs die when they are claimed';
REVOKE ALL ON FUNCTION jobq.unregister_kind(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.current_job()
RETURNS bigint
AS 'MODULE_PATHNAME', 'jobq_current_job'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION jobq.current_job()
	IS 'the id of the job whose handler is running, or NULL outside a job';

CREATE OR REPLACE FUNCTION jobq.set_progress(percent real DEFAULT NULL, message text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'jobq_set_progress'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.set_progress(real, text)
	IS 'report the running job''s progress: seen at once in jobq.jobs, kept with the job when its handler returns';

CREATE OR REPLACE FUNCTION jobq._progress(OUT job_id bigint, OUT progress real,
										  OUT progress_message text, OUT progress_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'jobq__progress'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION jobq._progress()
	IS 'the progress the running jobs of this database reported last, of the roles the current role is a member of (jobq.jobs reads it)';

CREATE OR REPLACE FUNCTION jobq.prune()
RETURNS bigint
AS 'MODULE_PATHNAME', 'jobq_prune'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.prune()
	IS 'delete finished jobs older than jobq.retention (succeeded, cancelled) or jobq.dead_retention (dead)';
REVOKE ALL ON FUNCTION jobq.prune() FROM PUBLIC;

/* Internal: the claim step of a worker, callable for tests of concurrency. */
CREATE OR REPLACE FUNCTION jobq._claim(batch_size integer)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'jobq__claim'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq._claim(integer)
	IS 'claim pending jobs as a worker does, marking them running by this backend (testing only)';
REVOKE ALL ON FUNCTION jobq._claim(integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq._on_create()
RETURNS void
AS 'MODULE_PATHNAME', 'jobq__on_create'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq._on_create()
	IS 'tell the launcher that jobq was installed in this database, or warn when it is not preloaded';
REVOKE ALL ON FUNCTION jobq._on_create() FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq._worker_status(
	OUT pid integer,
	OUT datname name,
	OUT worker integer,
	OUT lane text,
	OUT state text,
	OUT job_id bigint,
	OUT jobs_succeeded bigint,
	OUT jobs_failed bigint,
	OUT started_at timestamptz,
	OUT state_since timestamptz,
	OUT in_flight integer,
	OUT claims bigint,
	OUT jobs_claimed bigint,
	OUT claim_time double precision,
	OUT claim_buffers bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'jobq__worker_status'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq._worker_status()
	IS 'the state of every jobq worker of the cluster, from shared memory';
REVOKE ALL ON FUNCTION jobq._worker_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobq._worker_status() TO pg_monitor;

CREATE OR REPLACE FUNCTION jobq._database_status(
	OUT datname name,
	OUT state text,
	OUT sql_workers integer,
	OUT net_workers integer,
	OUT sql_due timestamptz,
	OUT net_due timestamptz,
	OUT workers_started bigint,
	OUT last_started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'jobq__database_status'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq._database_status()
	IS 'what the launcher knows of every database of the cluster, from shared memory';
REVOKE ALL ON FUNCTION jobq._database_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobq._database_status() TO pg_monitor;
