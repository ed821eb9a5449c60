/*
 * 45_external: the external worker API (src/external.c).  Re-creatable
 * (see 20_api.sql).
 *
 * A kind registered with jobq.register_external_kind has no handler in
 * the database: its jobs are run by the application's own workers (the
 * Laravel driver, the TypeScript client, or any program with a
 * connection), which take them with jobq.claim (or CALL jobq.claim_wait,
 * which waits for one without holding a snapshot), keep them with
 * jobq.heartbeat, and end them with jobq.complete, jobq.fail or
 * jobq.snooze.  A claim gives the jobs a lease: the lease_id it returns
 * names it in every later call, so a worker whose lease ran out (and whose
 * job another worker claimed since) cannot end the job any more.  A
 * worker takes and ends only the jobs of roles whose privileges its own
 * role has (the owner itself, or a role it inherits), as a job never runs
 * with more than its owner's rights.  Granted to PUBLIC for that reason.
 */

CREATE OR REPLACE FUNCTION jobq.register_external_kind(
	kind text,
	queue text DEFAULT 'default',
	max_attempts integer DEFAULT NULL,
	timeout interval DEFAULT NULL,
	priority integer DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'jobq_register_external_kind'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.register_external_kind(text, text, integer, interval, integer)
	IS 'create or replace a job kind that the application''s own workers run (jobq.claim), not jobq''s';
REVOKE ALL ON FUNCTION jobq.register_external_kind(text, text, integer, interval, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.claim(
	queues text[] DEFAULT NULL,
	max_jobs integer DEFAULT 1,
	lease interval DEFAULT '5 minutes',
	OUT id bigint,
	OUT lease_id bigint,
	OUT lease_until timestamptz,
	OUT kind text,
	OUT queue text,
	OUT payload jsonb,
	OUT attempt integer,
	OUT max_attempts integer,
	OUT priority integer,
	OUT run_at timestamptz,
	OUT created_at timestamptz,
	OUT timeout interval,
	OUT job_key text,
	OUT concurrency_key text,
	OUT owner regrole)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'jobq_claim'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10;
COMMENT ON FUNCTION jobq.claim(text[], integer, interval)
	IS 'take up to max_jobs due jobs of external kinds (of the queues named, or all) with a lease; never waits';

CREATE OR REPLACE PROCEDURE jobq.claim_wait(
	queues text[] DEFAULT NULL,
	max_jobs integer DEFAULT 1,
	lease interval DEFAULT '5 minutes',
	wait interval DEFAULT '30 seconds',
	INOUT jobs jsonb DEFAULT NULL)
AS 'MODULE_PATHNAME', 'jobq_claim_wait'
LANGUAGE C;
COMMENT ON PROCEDURE jobq.claim_wait(text[], integer, interval, interval, jsonb)
	IS 'jobq.claim, waiting up to wait for a job without holding a snapshot (CALL it outside a transaction block); jobs as a jsonb array';

CREATE OR REPLACE FUNCTION jobq.heartbeat(
	ids bigint[],
	lease_id bigint,
	lease interval DEFAULT '5 minutes',
	OUT id bigint,
	OUT lease_until timestamptz,
	OUT cancel_requested boolean)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'jobq_heartbeat'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 10;
COMMENT ON FUNCTION jobq.heartbeat(bigint[], bigint, interval)
	IS 'extend the lease of running external jobs to now + lease; returns those still held, and whether a cancel was asked for';

CREATE OR REPLACE FUNCTION jobq.complete(job_id bigint, lease_id bigint, result jsonb DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'jobq_complete'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.complete(bigint, bigint, jsonb)
	IS 'record the success of a leased external job, once: an error if the lease is not held any more';

CREATE OR REPLACE FUNCTION jobq.fail(
	job_id bigint,
	lease_id bigint,
	error text,
	retry_after interval DEFAULT NULL,
	final boolean DEFAULT false,
	context text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'jobq_fail'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.fail(bigint, bigint, text, interval, boolean, text)
	IS 'record a failed attempt of a leased external job: pending again after retry_after (or the backoff), or dead; returns the new state';

CREATE OR REPLACE FUNCTION jobq.snooze(job_id bigint, lease_id bigint, delay interval)
RETURNS text
AS 'MODULE_PATHNAME', 'jobq_snooze'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq.snooze(bigint, bigint, interval)
	IS 'give a leased external job back, to run again after delay, its attempt not counted; returns the new state';
