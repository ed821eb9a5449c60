-- 01_enqueue: jobq.enqueue and jobq.enqueue_many, defaults, job keys, and
-- the errors bad input gets (each leaves the queue unchanged).
-- No worker runs in this instance (jobq.workers = 0): jobs stay pending.
CREATE EXTENSION jobq;
SET client_min_messages = warning;

-- the defaults: queue 'default', priority 0, run now, 20 attempts, no timeout
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}') AS id \gset
SELECT kind, queue, payload, priority, status, attempts, max_attempts,
       run_at <= now() AS due, timeout, job_key, owner, result
  FROM jobq.jobs WHERE id = :id;

-- every argument given
SELECT jobq.enqueue('sql', '{"sql": "SELECT 2"}', queue => 'mail', priority => -5,
                    run_at => now() + interval '1 hour', max_attempts => 3,
                    job_key => 'k1', timeout => '90 s') AS id2 \gset
SELECT queue, priority, run_at BETWEEN now() + interval '59 min' AND now() + interval '61 min' AS in_an_hour,
       max_attempts, timeout, job_key
  FROM jobq.jobs WHERE id = :id2;

-- jobq.default_max_attempts and jobq.default_timeout apply when nothing else says
SET jobq.default_max_attempts = 7;
SET jobq.default_timeout = '2min';
SELECT jobq.enqueue('sql', '{"sql": "SELECT 3"}') AS id3 \gset
SELECT max_attempts, timeout FROM jobq.jobs WHERE id = :id3;
RESET jobq.default_max_attempts;
RESET jobq.default_timeout;

-- a job key held by a live job returns that job's id and adds nothing
SELECT jobq.enqueue('sql', '{"sql": "SELECT 4"}', job_key => 'k1') = :id2 AS same_job;
SELECT count(*) FROM jobq.jobs WHERE job_key = 'k1';

-- bad input: a clear error, and nothing added
SELECT count(*) AS before FROM jobq.jobs \gset
SELECT jobq.enqueue(NULL);
SELECT jobq.enqueue('no.such.kind');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => '');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => repeat('q', 64));
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', max_attempts => 0);
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', timeout => '0 s');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', timeout => '-1 s');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', job_key => '');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => 'infinity');
SELECT jobq.enqueue('sql');
SELECT jobq.enqueue('sql', '{"query": "SELECT 1"}');
SELECT jobq.enqueue('sql', '{"sql": 42}');
SELECT jobq.enqueue('sql', '["SELECT 1"]');
SELECT jobq.enqueue('sql', '{"sql": "SELEC 1"}');
SELECT count(*) = :before AS unchanged FROM jobq.jobs;

-- a queue name of 63 bytes is fine
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => repeat('q', 63)) AS id4 \gset
SELECT length(queue) FROM jobq.jobs WHERE id = :id4;

-- enqueue_many: one job per payload, ids in payload order
SELECT count(*) FROM jobq.enqueue_many('sql',
    (SELECT array_agg(jsonb_build_object('sql', format('SELECT %s', g)) ORDER BY g)
       FROM generate_series(1, 10000) g));
SELECT array_agg(id ORDER BY ord) AS many_ids FROM jobq.enqueue_many('sql',
    ARRAY['{"sql": "SELECT ''a''"}', '{"sql": "SELECT ''b''"}']::jsonb[], queue => 'many')
    WITH ORDINALITY AS e(id, ord) \gset
SELECT array_agg(payload->>'sql' ORDER BY array_position(:'many_ids'::bigint[], id))
  FROM jobq.jobs WHERE queue = 'many';
SELECT (:'many_ids'::bigint[])[1] < (:'many_ids'::bigint[])[2] AS ids_ascend;

-- enqueue_many with keys: live keys and repeated keys are skipped
SELECT count(*) FROM jobq.enqueue_many('sql',
    ARRAY['{"sql": "SELECT 1"}', '{"sql": "SELECT 2"}', '{"sql": "SELECT 3"}']::jsonb[],
    job_keys => ARRAY['k1', 'k2', 'k2']);
SELECT job_key, count(*) FROM jobq.jobs WHERE job_key IS NOT NULL GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY[]::jsonb[]);

-- enqueue_many bad input
SELECT count(*) AS before FROM jobq.jobs \gset
SELECT jobq.enqueue_many('sql', NULL);
SELECT jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}', NULL]::jsonb[]);
SELECT jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}', '{}']::jsonb[]);
SELECT jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}']::jsonb[], job_keys => ARRAY['a', 'b']);
SELECT jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}']::jsonb[], job_keys => ARRAY['']);
SELECT jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}']::jsonb[], max_attempts => -1);
SELECT count(*) = :before AS unchanged FROM jobq.jobs;

-- a rolled-back enqueue leaves nothing
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', job_key => 'rolled back') IS NOT NULL AS added;
ROLLBACK;
SELECT count(*) FROM jobq.jobs WHERE job_key = 'rolled back';

-- a job without a key is written without a statement: every column as the
-- table's defaults would have it, the timeout as an interval of the time
-- field alone, the id from the identity sequence
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 5"}', timeout => '1 day') AS id5 \gset
SELECT id = currval('jobq._queue_id_seq') AS from_sequence, status, attempts,
       created_at = now() AS created_now, run_at = now() AS due_now, timeout,
       net, cancel_requested, started_at, locked_by, worker_pid, last_error
  FROM jobq._queue WHERE id = :id5;
COMMIT;
-- visible to the next statement of the transaction, gone with its rollback
BEGIN;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 6"}', queue => 'rollback') IS NOT NULL AS added;
SELECT count(*) FROM jobq.jobs WHERE queue = 'rollback';
ROLLBACK;
SELECT count(*) FROM jobq.jobs WHERE queue = 'rollback';
-- a payload too large for the page goes out of line and comes back whole
SELECT jobq.enqueue('sql', jsonb_build_object('sql', 'SELECT 7', 'pad', repeat('x', 300000)),
                    queue => 'toast') AS id7 \gset
SELECT length(payload->>'pad') FROM jobq.jobs WHERE id = :id7;
-- index entries: every row written this way is in every index of jobq._queue
DO $$BEGIN FOR i IN 1..300 LOOP PERFORM jobq.enqueue('sql', '{"sql": "SELECT 8"}', queue => 'indexed'); END LOOP; END$$;
CREATE EXTENSION amcheck;
SELECT count(*) AS checked FROM (
    SELECT bt_index_check(indexrelid, true) FROM pg_index
     WHERE indrelid = 'jobq._queue'::regclass) c;
DROP EXTENSION amcheck;
-- not in a read-only transaction (nor on a standby, which is read-only)
BEGIN READ ONLY;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}');
ROLLBACK;
BEGIN READ ONLY;
SELECT jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}']::jsonb[]);
ROLLBACK;
-- an empty enqueue_many writes nothing: fine in a read-only transaction
BEGIN READ ONLY;
SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY[]::jsonb[]);
ROLLBACK;

-- a timeout too large for an interval: the same error with or without a key
\set VERBOSITY terse
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', timeout => '1000000 years');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', timeout => '1000000 years', job_key => 'huge');
\set VERBOSITY default

-- what only the executor honours still applies to a job without a key: with
-- a trigger or a CHECK constraint of someone's on jobq._queue the job is
-- written by a statement
CREATE TABLE public.queue_log (id bigint, queue text);
CREATE FUNCTION public.log_queue() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN INSERT INTO public.queue_log VALUES (NEW.id, NEW.queue); RETURN NEW; END$$;
CREATE TRIGGER log_queue AFTER INSERT ON jobq._queue
    FOR EACH ROW EXECUTE FUNCTION public.log_queue();
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => 'triggered') AS idt \gset
SELECT id = :idt AS logged, queue FROM public.queue_log;
DROP TRIGGER log_queue ON jobq._queue;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => 'untriggered') IS NOT NULL AS added;
SELECT count(*) FROM public.queue_log;
ALTER TABLE jobq._queue ADD CONSTRAINT small_priority CHECK (priority < 100);
\set VERBOSITY terse
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', priority => 500);
\set VERBOSITY default
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', priority => 50, queue => 'checked') IS NOT NULL AS added;
ALTER TABLE jobq._queue DROP CONSTRAINT small_priority;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', priority => 500, queue => 'unchecked') IS NOT NULL AS added;
SELECT queue, priority FROM jobq.jobs WHERE queue IN ('checked', 'unchecked') ORDER BY queue;
ALTER TABLE jobq._queue ALTER COLUMN last_error SET DEFAULT 'a default of someone''s';
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => 'defaulted') AS idd \gset
ALTER TABLE jobq._queue ALTER COLUMN last_error DROP DEFAULT;
SELECT last_error FROM jobq._queue WHERE id = :idd;
DROP TABLE public.queue_log;
DROP FUNCTION public.log_queue();

-- the insert runs as the bootstrap superuser, as the statement did: an
-- index calling a function its caller may not execute does not stop it
CREATE FUNCTION public.priority_key(integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT $1';
REVOKE EXECUTE ON FUNCTION public.priority_key(integer) FROM PUBLIC;
CREATE INDEX priority_key_idx ON jobq._queue (public.priority_key(priority));
CREATE ROLE enqueue_user;
SET ROLE enqueue_user;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => 'by enqueue_user') IS NOT NULL AS added;
RESET ROLE;
SELECT owner FROM jobq.jobs WHERE queue = 'by enqueue_user';
DROP INDEX jobq.priority_key_idx;
DROP FUNCTION public.priority_key(integer);
DELETE FROM jobq._queue WHERE owner = 'enqueue_user'::regrole;
DROP ROLE enqueue_user;

-- what is refused at the call (issue 14: accepted before, failing later)
\set VERBOSITY default
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => E'two\nlines');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => E'tab\there');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => repeat('q', 64));
SELECT jobq.enqueue(E'sql\n', '{"sql": "SELECT 1"}');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', job_key => E'key\r\n');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', job_key => repeat('k', 256));
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', job_key => repeat('k', 255)) IS NOT NULL AS longest_key;
SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}'::jsonb], job_keys => ARRAY[E'a\u007fb']);
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => '4713-01-01 BC');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => '1969-12-31 23:59:59+00');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => '10000-01-01 00:00:00+00');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', run_at => '9999-12-31 23:59:59+00') IS NOT NULL AS latest_run_at;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', timeout => '178000000 years');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', timeout => '25 days');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', timeout => '2147483647 years');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', timeout => '24 days') IS NOT NULL AS longest_timeout;
SELECT jobq.enqueue('sql', jsonb_build_object('sql', 'SELECT 1', 'pad', repeat('x', 1100000)));
SET jobq.max_payload_size = '2MB';
SELECT jobq.enqueue('sql', jsonb_build_object('sql', 'SELECT 1', 'pad', repeat('x', 1100000))) IS NOT NULL AS large_payload;
RESET jobq.max_payload_size;
CREATE ROLE payload_user;
SET ROLE payload_user;
SET jobq.max_payload_size = '2MB';
RESET ROLE;
DROP ROLE payload_user;
DELETE FROM jobq._queue WHERE job_key = repeat('k', 255) OR run_at > '9000-01-01' OR queue = 'default' AND payload ? 'pad' OR timeout = '24 days';
