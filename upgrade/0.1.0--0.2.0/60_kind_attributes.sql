
/*
 * What the C code used to decide by a kind's name is an attribute of the
 * kind, which only an install script can set for a built-in kind:
 *  - restricted: a job of the kind runs as a security-restricted operation.
 *    Every kind is, but matview.refresh (REFRESH ... CONCURRENTLY builds its
 *    diff in a temporary table); jobq.register_kind never sets the column,
 *    and the CHECK keeps it true for every kind that is not built-in.
 *  - keep_response: a network kind whose response body is kept as the
 *    job's result (http).
 * The SQL kind is the built-in kind with no handler that is not a network
 * kind ('sql'): no column is needed for it.
 */
ALTER TABLE jobq._kinds
	ADD COLUMN restricted boolean NOT NULL DEFAULT true,
	ADD COLUMN keep_response boolean NOT NULL DEFAULT false,
	ADD CONSTRAINT _kinds_restricted_check CHECK (restricted OR builtin),
	ADD CONSTRAINT _kinds_keep_response_check CHECK (NOT keep_response OR net);
COMMENT ON COLUMN jobq._kinds.restricted
	IS 'jobs of the kind run as a security-restricted operation; false only for built-in kinds an install script made so';
COMMENT ON COLUMN jobq._kinds.keep_response
	IS 'a network kind whose response body is kept as the job''s result';

UPDATE jobq._kinds SET restricted = false WHERE kind = 'matview.refresh' AND builtin;
UPDATE jobq._kinds SET keep_response = true WHERE kind = 'http' AND builtin AND net;

/* jobq.kinds shows both: src/sql/30_views.sql */
