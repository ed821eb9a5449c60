-- Shared by the demo databases (psql variable gateway: the stand-in
-- gateway's base URL): jobq and the job pack's tables, the SMS gateway's
-- channel, and demo_wait(), which waits until no job is running and none is
-- pending and due (at most timeout_s seconds) and returns the seconds waited.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION jobq_pack CASCADE;
\i examples/seed_schema.sql

\o /dev/null
SELECT jobq.create_channel('sms', 'http',
	jsonb_build_object('url', :'gateway' || '/ok/sms', 'fields', '{"message": "text"}'::jsonb),
	'{"bearer_token": "demo-gateway-token"}');
\o

CREATE FUNCTION demo_wait(timeout_s integer DEFAULT 60) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz := clock_timestamp();
BEGIN
	LOOP
		EXIT WHEN NOT EXISTS (SELECT FROM jobq.jobs
							   WHERE status = 'running'
								  OR (status = 'pending' AND run_at <= clock_timestamp()));
		EXIT WHEN clock_timestamp() > t0 + make_interval(secs => timeout_s);
		PERFORM pg_sleep(0.05);
	END LOOP;
	RETURN round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
END $$;
