
/* ---------------------------------------------------------------------
 * Queues as objects (jobq.create_queue, src/sql/35_queues.sql): a queue
 * named here has a precedence (its jobs' column precedence, first in the
 * claim order), may be paused, and may have a concurrency limit (running
 * jobs across the cluster), a limit per concurrency key (its jobs' column
 * concurrency_key; 1 when not set) and a rate limit (starts per
 * rate_period).
 * Jobs name queues freely; a queue not named here has none of these.
 * Workers read the table again after each change commits (a trigger,
 * src/queue_limits.c).
 * ------------------------------------------------------------------- */

CREATE TABLE jobq._queues (
	name text PRIMARY KEY CHECK (name <> '' AND octet_length(name) <= 63),
	precedence integer NOT NULL DEFAULT 0,
	concurrency integer CHECK (concurrency >= 1),
	concurrency_per_key integer CHECK (concurrency_per_key >= 1),
	rate integer CHECK (rate >= 1),
	rate_period interval NOT NULL DEFAULT '1 second'
		CHECK (rate_period >= '1 millisecond' AND rate_period <= '1 day'),
	paused boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE jobq._queues IS 'queues with limits or a pause; read jobq.queues instead';
REVOKE ALL ON jobq._queues FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jobq._queues', '');

/*
 * The jobs' copy of their queue's precedence, first in both claim orders:
 * the claim indexes are made again with it.
 */
ALTER TABLE jobq._queue ADD COLUMN precedence integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN jobq._queue.precedence
	IS 'its queue''s precedence (jobq._queues), first in the claim order: lower is claimed first';
DROP INDEX jobq._queue_claim_idx;
CREATE INDEX _queue_claim_idx ON jobq._queue (precedence, priority, run_at, id)
	WHERE NOT net;
COMMENT ON INDEX jobq._queue_claim_idx IS 'the claim order among jobs of the SQL workers (pending and running)';
DROP INDEX jobq._queue_net_claim_idx;
CREATE INDEX _queue_net_claim_idx ON jobq._queue (precedence, priority, run_at, id)
	WHERE net;
COMMENT ON INDEX jobq._queue_net_claim_idx IS 'the claim order among network jobs (http, email, sms, webhook; pending and running)';

/*
 * A job's concurrency key (jobq.enqueue(..., concurrency_key => ...)), in
 * both tables (moved with the job, kept by a retry); jobq.enqueue and
 * jobq.enqueue_many gain the argument, so the 0.1.0 enqueue_many goes (the
 * 0.1.0 enqueue went in fragment 80).
 */
ALTER TABLE jobq._queue ADD COLUMN concurrency_key text;
COMMENT ON COLUMN jobq._queue.concurrency_key
	IS 'at most its queue''s concurrency_per_key jobs (1 by default) with this key run at once';
ALTER TABLE jobq._done ADD COLUMN concurrency_key text;
DROP FUNCTION jobq.enqueue_many(text, jsonb[], text, integer, timestamptz, integer, text[], interval);
