-- Shared by the demo databases: demo_wait() waits until no job is running
-- and none is pending and due (at most timeout_s seconds); returns the
-- seconds waited.
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
