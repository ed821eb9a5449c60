-- The clinic half of the demo: reservations that expire, released by a
-- job kind written in PL/pgSQL, and a thousand reminder jobs.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION jobq;

CREATE TABLE slots (
	id serial PRIMARY KEY,
	doctor_id int NOT NULL,
	starts_at timestamptz NOT NULL,
	status text NOT NULL DEFAULT 'open',
	reserved_until timestamptz
);
INSERT INTO slots (doctor_id, starts_at, status, reserved_until)
SELECT d, now() + make_interval(hours => h),
       CASE WHEN (d + h) % 3 = 0 THEN 'reserved' ELSE 'open' END,
       CASE WHEN (d + h) % 3 = 0 THEN now() - interval '5 min' END
  FROM generate_series(1, 200) d, generate_series(1, 40) h;
CREATE TABLE reminders_sent (slot_id int PRIMARY KEY, sent_at timestamptz DEFAULT now());

-- a job kind is a function (jsonb) returning jsonb: set-based, in the server
CREATE FUNCTION release_expired(payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
	UPDATE slots SET status = 'open', reserved_until = NULL
	 WHERE status = 'reserved' AND reserved_until < now();
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN jsonb_build_object('released', n);
END $$;
SELECT jobq.register_kind('clinic.release_expired', 'release_expired(jsonb)', queue => 'clinic');

\echo
\echo '== clinic: one job releases every expired reservation in one statement'
SELECT count(*) AS reserved_before FROM slots WHERE status = 'reserved';
SELECT jobq.enqueue('clinic.release_expired') AS release_job \gset
SELECT pg_sleep(0.5);
SELECT id, kind, status, attempts, result,
       round(extract(epoch FROM finished_at - created_at) * 1000, 1) AS ms_from_enqueue_to_done
  FROM jobq.jobs WHERE id = :release_job;
SELECT count(*) AS reserved_after FROM slots WHERE status = 'reserved';

\echo
\echo '== clinic: 1,000 reminder jobs enqueued in one statement, run by 3 workers'
SELECT count(*) AS enqueued FROM jobq.enqueue_many('sql',
	(SELECT array_agg(jsonb_build_object('sql',
		format('INSERT INTO reminders_sent (slot_id) VALUES (%s)', id)))
	   FROM (SELECT id FROM slots ORDER BY id LIMIT 1000) s),
	queue => 'reminders');
DO $$
BEGIN
	FOR i IN 1..100 LOOP
		EXIT WHEN NOT EXISTS (SELECT FROM jobq.jobs WHERE queue = 'reminders' AND status IN ('pending', 'running'));
		PERFORM pg_sleep(0.1);
	END LOOP;
END $$;
SELECT status, count(*) AS jobs,
       round(extract(epoch FROM max(finished_at) - min(created_at))::numeric, 2) AS seconds
  FROM jobq.jobs WHERE queue = 'reminders' GROUP BY status;
SELECT count(*) AS reminders_sent, count(DISTINCT slot_id) AS distinct_slots FROM reminders_sent;

\echo
\echo '== clinic: a failing job is retried with growing delays, then kept as dead'
SELECT jobq.enqueue('sql', '{"sql": "UPDATE slots SET doctor_id = doctor_id / 0"}',
                    max_attempts => 3) AS bad_job \gset
DO $$
BEGIN
	FOR i IN 1..50 LOOP
		EXIT WHEN EXISTS (SELECT FROM jobq.jobs WHERE status = 'dead');
		PERFORM pg_sleep(0.1);
	END LOOP;
END $$;
SELECT id, status, attempts, last_error, last_error_sqlstate FROM jobq.jobs WHERE id = :bad_job;
\echo '   (jobq.retry(id) would run it again; the server log shows each failed attempt)'
