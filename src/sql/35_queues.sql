/*
 * 35_queues: queues as objects.  jobq.create_queue, alter_queue and
 * drop_queue keep jobq._queues; pause_queue and resume_queue stop and
 * start a queue's claims; jobq.queues shows them with their running jobs
 * (counted in shared memory, src/queue_limits.c).  Like channels, queues
 * are the administrators' to change: the functions are not granted to
 * PUBLIC, and the caller needs the rights on jobq._queues.
 */

/*
 * Check a queue's name and settings; raises with the reason.  settings: a
 * JSON object of precedence (a whole number, lower first; null: 0),
 * concurrency (running jobs, at least 1, or null: no limit),
 * concurrency_per_key (running jobs with the same concurrency key, at least
 * 1, or null: 1), rate (starts per rate_period, at least 1, or null: no
 * limit), rate_period (an interval from 1 ms to 1 day, or null: 1 second)
 * and paused (a boolean).
 */
CREATE OR REPLACE FUNCTION jobq._check_queue(name text, settings jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	k text;
	v jsonb;
	period interval;
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'queue name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF name = '' OR octet_length(name) > 63 THEN
		RAISE EXCEPTION 'queue name must be 1 to 63 bytes long' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF name ~ '[\x01-\x1f\x7f]' THEN
		RAISE EXCEPTION 'queue name must not contain control characters'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF settings IS NULL OR jsonb_typeof(settings) <> 'object' THEN
		RAISE EXCEPTION 'queue settings must be a JSON object' USING ERRCODE = 'invalid_parameter_value',
			HINT = 'For example ''{"concurrency": 1}'' or ''{"rate": 10, "rate_period": "1 second"}''.';
	END IF;
	FOR k, v IN SELECT * FROM jsonb_each(settings) LOOP
		CASE k
		WHEN 'concurrency', 'concurrency_per_key', 'rate' THEN
			IF jsonb_typeof(v) = 'null' THEN
				CONTINUE;
			END IF;
			IF jsonb_typeof(v) <> 'number' OR v::text !~ '^-?[0-9]+$' OR length(v::text) > 11 THEN
				RAISE EXCEPTION 'queue setting "%" must be a whole number or null', k
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			IF v::text::bigint < 1 OR v::text::bigint > 2147483647 THEN
				RAISE EXCEPTION 'queue setting "%" must be at least 1, not %', k, v::text
					USING ERRCODE = 'invalid_parameter_value',
					HINT = 'null removes the limit; jobq.pause_queue() stops the queue.';
			END IF;
		WHEN 'precedence' THEN
			IF jsonb_typeof(v) = 'null' THEN
				CONTINUE;
			END IF;
			IF jsonb_typeof(v) <> 'number' OR v::text !~ '^-?[0-9]+$' OR length(v::text) > 11
			   OR v::text::bigint NOT BETWEEN -2147483648 AND 2147483647 THEN
				RAISE EXCEPTION 'queue setting "precedence" must be a whole number from -2147483648 to 2147483647 or null'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		WHEN 'rate_period' THEN
			IF jsonb_typeof(v) = 'null' THEN
				CONTINUE;
			END IF;
			IF jsonb_typeof(v) <> 'string' THEN
				RAISE EXCEPTION 'queue setting "rate_period" must be an interval as a string, such as "1 minute"'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			BEGIN
				period := v #>> '{}';
			EXCEPTION WHEN others THEN
				RAISE EXCEPTION 'queue setting "rate_period" is not an interval: %', v #>> '{}'
					USING ERRCODE = 'invalid_parameter_value';
			END;
			IF period < interval '1 millisecond' OR period > interval '1 day' THEN
				RAISE EXCEPTION 'queue setting "rate_period" must be from 1 millisecond to 1 day, not %', period
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		WHEN 'paused' THEN
			IF jsonb_typeof(v) <> 'boolean' THEN
				RAISE EXCEPTION 'queue setting "paused" must be true or false'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
		ELSE
			RAISE EXCEPTION 'unknown queue setting "%"', k USING ERRCODE = 'invalid_parameter_value',
				HINT = 'The settings are precedence, concurrency, concurrency_per_key, rate, rate_period and paused.';
		END CASE;
	END LOOP;
END $$;
COMMENT ON FUNCTION jobq._check_queue(text, jsonb)
	IS 'check a queue''s name and settings (jobq.create_queue and jobq.alter_queue call this)';
REVOKE ALL ON FUNCTION jobq._check_queue(text, jsonb) FROM PUBLIC;

/*
 * Give the queue's pending jobs its precedence (the jobs enqueued from now
 * on take it when they are written).  A running job keeps the one it was
 * claimed with: the key of its worker's batch (see batch.c).
 */
CREATE OR REPLACE FUNCTION jobq._set_precedence(queue text, precedence integer)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	UPDATE jobq._queue j SET precedence = _set_precedence.precedence
	 WHERE j.queue = _set_precedence.queue AND j.status = 'pending'
	   AND j.precedence <> _set_precedence.precedence
$$;
COMMENT ON FUNCTION jobq._set_precedence(text, integer)
	IS 'give the jobs of a queue in jobq._queue its precedence (jobq.create_queue, alter_queue and drop_queue call this)';
REVOKE ALL ON FUNCTION jobq._set_precedence(text, integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.create_queue(name text, settings jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM jobq._check_queue(name, settings);
	INSERT INTO jobq._queues (name, precedence, concurrency, concurrency_per_key, rate, rate_period, paused)
	VALUES (name, coalesce((settings ->> 'precedence')::integer, 0),
			(settings ->> 'concurrency')::integer, (settings ->> 'concurrency_per_key')::integer,
			(settings ->> 'rate')::integer,
			coalesce((settings ->> 'rate_period')::interval, interval '1 second'),
			coalesce((settings ->> 'paused')::boolean, false));
	PERFORM jobq._set_precedence(name, coalesce((settings ->> 'precedence')::integer, 0));
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'queue "%" already exists', name USING ERRCODE = 'duplicate_object',
		HINT = 'jobq.alter_queue() changes it.';
END $$;
COMMENT ON FUNCTION jobq.create_queue(text, jsonb)
	IS 'create a queue with limits (concurrency, rate, rate_period) or paused';
REVOKE ALL ON FUNCTION jobq.create_queue(text, jsonb) FROM PUBLIC;

/* A setting absent from settings is kept; a null one is removed. */
CREATE OR REPLACE FUNCTION jobq.alter_queue(name text, settings jsonb)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM jobq._check_queue(name, settings);
	UPDATE jobq._queues q
	   SET precedence = CASE WHEN settings ? 'precedence'
							 THEN coalesce((settings ->> 'precedence')::integer, 0) ELSE q.precedence END,
		   concurrency = CASE WHEN settings ? 'concurrency'
							  THEN (settings ->> 'concurrency')::integer ELSE q.concurrency END,
		   concurrency_per_key = CASE WHEN settings ? 'concurrency_per_key'
									  THEN (settings ->> 'concurrency_per_key')::integer
									  ELSE q.concurrency_per_key END,
		   rate = CASE WHEN settings ? 'rate' THEN (settings ->> 'rate')::integer ELSE q.rate END,
		   rate_period = CASE WHEN settings ? 'rate_period'
							  THEN coalesce((settings ->> 'rate_period')::interval, interval '1 second')
							  ELSE q.rate_period END,
		   paused = CASE WHEN settings ? 'paused'
						 THEN coalesce((settings ->> 'paused')::boolean, false) ELSE q.paused END,
		   updated_at = now()
	 WHERE q.name = alter_queue.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'queue "%" does not exist', name USING ERRCODE = 'undefined_object',
			HINT = 'jobq.create_queue() creates it.';
	END IF;
	IF settings ? 'precedence' THEN
		PERFORM jobq._set_precedence(name, coalesce((settings ->> 'precedence')::integer, 0));
	END IF;
END $$;
COMMENT ON FUNCTION jobq.alter_queue(text, jsonb)
	IS 'change a queue''s settings: a setting absent is kept, a null one removed';
REVOKE ALL ON FUNCTION jobq.alter_queue(text, jsonb) FROM PUBLIC;

/* Its jobs stay, and run as jobs of a queue never created do. */
CREATE OR REPLACE FUNCTION jobq.drop_queue(name text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'queue name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	DELETE FROM jobq._queues q WHERE q.name = drop_queue.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'queue "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM jobq._set_precedence(name, 0);
END $$;
COMMENT ON FUNCTION jobq.drop_queue(text)
	IS 'remove a queue''s limits and pause; its jobs stay and run as jobs of any queue';
REVOKE ALL ON FUNCTION jobq.drop_queue(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.pause_queue(name text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	SELECT jobq.alter_queue(name, '{"paused": true}')
$$;
COMMENT ON FUNCTION jobq.pause_queue(text)
	IS 'stop claims of a queue''s jobs from the next claim of each worker; running jobs finish';
REVOKE ALL ON FUNCTION jobq.pause_queue(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.resume_queue(name text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	SELECT jobq.alter_queue(name, '{"paused": false}')
$$;
COMMENT ON FUNCTION jobq.resume_queue(text)
	IS 'let workers claim a paused queue''s jobs again';
REVOKE ALL ON FUNCTION jobq.resume_queue(text) FROM PUBLIC;

/*
 * Any change of jobq._queues, by these functions or not: every backend
 * reads the table again at its next claim once the change commits, and
 * the database's workers are woken (a resumed queue's jobs are due).
 */
CREATE OR REPLACE FUNCTION jobq._queues_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'jobq__queues_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq._queues_changed()
	IS 'make workers read jobq._queues again when the change commits (trigger _queues_changed)';
REVOKE ALL ON FUNCTION jobq._queues_changed() FROM PUBLIC;

CREATE OR REPLACE TRIGGER _queues_changed
	AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jobq._queues
	FOR EACH STATEMENT EXECUTE FUNCTION jobq._queues_changed();

/* The queues and concurrency keys of this database that shared memory counts now. */
CREATE OR REPLACE FUNCTION jobq._queue_state(OUT name text, OUT concurrency_key text,
											 OUT running integer, OUT next_start timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'jobq__queue_state'
LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED ROWS 10;
COMMENT ON FUNCTION jobq._queue_state()
	IS 'running jobs and the next rate-limited start of each queue and concurrency key of this database, from shared memory (read jobq.queues instead)';

CREATE OR REPLACE VIEW jobq.queues AS
SELECT q.name, q.precedence, q.concurrency, q.concurrency_per_key, q.rate, q.rate_period, q.paused,
	   coalesce(s.running, 0) AS running,
	   CASE WHEN q.rate IS NOT NULL AND s.next_start > now() THEN s.next_start END AS next_start,
	   q.created_at, q.updated_at
  FROM jobq._queues q
  LEFT JOIN jobq._queue_state() s ON s.name = q.name AND s.concurrency_key IS NULL;
COMMENT ON VIEW jobq.queues
	IS 'queues created with jobq.create_queue: their limits, whether paused, and their running jobs across the cluster';
GRANT SELECT ON jobq.queues TO PUBLIC;
