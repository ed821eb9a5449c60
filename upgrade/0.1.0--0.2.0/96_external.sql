
/* ---------------------------------------------------------------------
 * External kinds (src/sql/45_external.sql): jobs the application's own
 * workers run, in PHP or TypeScript, through jobq.claim, jobq.heartbeat,
 * jobq.complete, jobq.fail and jobq.snooze.  A kind is external when
 * jobq.register_external_kind registered it; its jobs are on a lane of
 * their own (column external, claim index _queue_external_claim_idx), so
 * jobq's workers never claim them, and a running one holds a lease
 * (lease_until) instead of a worker's token.
 * ------------------------------------------------------------------- */

/* the check that wanted a handler of every kind not built in, named now */
ALTER TABLE jobq._kinds
	ADD COLUMN external boolean NOT NULL DEFAULT false,
	DROP CONSTRAINT _kinds_check,
	ADD CONSTRAINT _kinds_handler_check CHECK (builtin OR external OR handler IS NOT NULL),
	ADD CONSTRAINT _kinds_external_check CHECK (NOT external OR (handler IS NULL AND NOT builtin));
ALTER TABLE jobq._kinds RENAME CONSTRAINT _kinds_check1 TO _kinds_net_check;
COMMENT ON COLUMN jobq._kinds.external
	IS 'a kind the application''s own workers run (jobq.register_external_kind, jobq.claim): no handler in the database';

ALTER TABLE jobq._queue
	ADD COLUMN external boolean NOT NULL DEFAULT false,
	ADD COLUMN lease_until timestamptz;
COMMENT ON COLUMN jobq._queue.external
	IS 'a job of an external kind: claimed by the application''s workers (jobq.claim), never by jobq''s';
COMMENT ON COLUMN jobq._queue.lease_until
	IS 'when the lease of a running external job ends: then it goes back to pending, its attempt counted';

/* the SQL workers' claim order leaves the external jobs out; they have their own */
DROP INDEX jobq._queue_claim_idx;
CREATE INDEX _queue_claim_idx ON jobq._queue (precedence, priority, run_at, id)
	WHERE NOT net AND NOT external;
COMMENT ON INDEX jobq._queue_claim_idx IS 'the claim order among jobs of the SQL workers (pending and running)';
CREATE INDEX _queue_external_claim_idx ON jobq._queue (precedence, priority, run_at, id)
	WHERE external;
COMMENT ON INDEX jobq._queue_external_claim_idx IS 'the claim order among jobs of external kinds (jobq.claim; pending and running)';
CREATE INDEX _queue_lease_idx ON jobq._queue (lease_until)
	WHERE lease_until IS NOT NULL;
COMMENT ON INDEX jobq._queue_lease_idx IS 'when the next lease of an external job ends';
DROP INDEX jobq._queue_due_idx;
CREATE INDEX _queue_due_idx ON jobq._queue (net, external, run_at)
	WHERE run_at > '-infinity';
COMMENT ON INDEX jobq._queue_due_idx IS 'when the next pending job is due, for idle workers (not for claims)';

/* jobq.kinds and jobq.jobs show the new columns: src/sql/30_views.sql */
