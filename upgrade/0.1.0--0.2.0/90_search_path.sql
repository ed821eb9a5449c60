
/*
 * Every SQL and PL/pgSQL function of jobq runs with search_path pinned to
 * pg_catalog, then pg_temp: with pg_catalog alone, the temporary schema is
 * searched first for tables, and a caller's temporary table could stand in
 * for pg_roles or another catalog a function reads.  The job pack's
 * handlers are the exception: each is one qualified statement that passes
 * the caller's search_path on (see 20_pack.sql).  Last of the fragments,
 * since CREATE OR REPLACE FUNCTION in the others resets a function's
 * settings.
 */
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid::regprocedure
		  FROM pg_catalog.pg_proc p
		  JOIN pg_catalog.pg_language l ON l.oid = p.prolang
		 WHERE p.pronamespace = 'jobq'::regnamespace
		   AND l.lanname IN ('sql', 'plpgsql')
		   AND NOT EXISTS (SELECT FROM jobq._kinds k
							WHERE k.builtin AND k.handler::regprocedure = p.oid)
		   AND coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'] IS NOT TRUE
	LOOP
		EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f);
	END LOOP;
END $$;
