/*
 * 60_kinds: jobq's built-in kinds that run a function (matview.refresh,
 * table.archive, jobq.prune) and the helpers other extensions' kinds use
 * (jobq_pack, in pack/).  Re-creatable (see 20_api.sql).
 *
 * A kind's work runs as the job's owner, in a pinned search_path: each
 * kind's handler, jobq.<kind>(payload), is a LANGUAGE sql function without
 * SET whose one statement names only schema-qualified functions: it
 * passes the caller's search_path to jobq._<kind>(payload, search_path),
 * which runs with search_path pg_catalog, pg_temp and looks up the
 * payload's table names (and the default ones) in the caller's path
 * through jobq._pack_regclass.  Its statements name tables as regclass
 * prints them in the pinned path, with their schema.  (Without the pinned
 * path, a role with CREATE on public could put a format(text, text,
 * regclass) or an operator there that a kind's statements would call with
 * the owner's rights.)
 */

/*
 * The relation a name denotes in search_path (the job owner's), or NULL.
 * Only the name's lookup runs in that path: the function's own SET puts the
 * pinned one back when it returns.  A cast, not to_regclass: from
 * PostgreSQL 16 on, to_regclass returns NULL for a name it cannot parse
 * ("a; DROP TABLE b"), which must be refused as invalid name syntax
 * (42602) on every version, not reported as a missing table.
 */
CREATE OR REPLACE FUNCTION jobq._pack_regclass(name text, search_path text)
RETURNS regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM pg_catalog.set_config('search_path', search_path, true);
	RETURN name::pg_catalog.regclass;
EXCEPTION WHEN undefined_table OR invalid_schema_name THEN
	RETURN NULL;
END $$;
COMMENT ON FUNCTION jobq._pack_regclass(text, text)
	IS 'the relation a name denotes in a search_path, or NULL';

CREATE OR REPLACE FUNCTION jobq._pack_table(payload jsonb, member text, default_name text, search_path text)
RETURNS regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	name text := coalesce(payload ->> member, default_name);
	rel regclass;
BEGIN
	IF name IS NULL OR name = '' THEN
		RAISE EXCEPTION 'payload must name a table in "%"', member
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	rel := jobq._pack_regclass(name, search_path);
	IF rel IS NULL THEN
		RAISE EXCEPTION 'table "%" does not exist', name
			USING ERRCODE = 'undefined_table',
				  HINT = format('Create it (see examples/seed_schema.sql), or name another table in the payload member "%s".', member);
	END IF;
	IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = rel) NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '"%" is not a table', name USING ERRCODE = 'wrong_object_type';
	END IF;
	RETURN rel;
END $$;
COMMENT ON FUNCTION jobq._pack_table(jsonb, text, text, text)
	IS 'the table a job pack payload names in a member, or the default, looked up in a search_path; an error if there is none';

CREATE OR REPLACE FUNCTION jobq._pack_columns(rel regclass, columns text[])
RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	missing text;
BEGIN
	SELECT c INTO missing
	  FROM pg_catalog.unnest(columns) AS c
	 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
						WHERE a.attrelid = rel AND a.attname = c
						  AND a.attnum > 0 AND NOT a.attisdropped)
	 LIMIT 1;
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', missing, rel
			USING ERRCODE = 'undefined_column',
				  HINT = 'The job pack''s tables are described in examples/seed_schema.sql.';
	END IF;
END $$;
COMMENT ON FUNCTION jobq._pack_columns(regclass, text[])
	IS 'raise an error naming the first of the columns that the table lacks';

CREATE OR REPLACE FUNCTION jobq._matview_refresh(payload jsonb, search_path text)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	name text := payload ->> 'view';
	view regclass;
	use_concurrently boolean := coalesce((payload ->> 'concurrently')::boolean, true);
	populated boolean;
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'payload must name the materialized view in "view"'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	view := jobq._pack_regclass(name, search_path);
	IF view IS NULL THEN
		RAISE EXCEPTION 'materialized view "%" does not exist', name USING ERRCODE = 'undefined_table';
	END IF;
	IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = view) <> 'm' THEN
		RAISE EXCEPTION '"%" is not a materialized view', name USING ERRCODE = 'wrong_object_type';
	END IF;
	SELECT relispopulated INTO populated FROM pg_catalog.pg_class WHERE oid = view;
	IF use_concurrently AND populated AND NOT EXISTS (
		SELECT FROM pg_catalog.pg_index i
		 WHERE i.indrelid = view AND i.indisunique AND i.indisvalid
		   AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
		RAISE EXCEPTION 'cannot refresh materialized view % concurrently', view
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Create a unique index with no WHERE clause on one or more columns of the materialized view, or pass "concurrently": false.';
	END IF;
	/* a view never populated can only be refreshed plainly */
	use_concurrently := use_concurrently AND populated;
	EXECUTE format('REFRESH MATERIALIZED VIEW %s%s', CASE WHEN use_concurrently THEN 'CONCURRENTLY ' ELSE '' END, view);
	RAISE LOG 'jobq matview.refresh: % refreshed%', view, CASE WHEN use_concurrently THEN ' concurrently' ELSE '' END;
	RETURN pg_catalog.jsonb_build_object('view', view::text, 'concurrently', use_concurrently);
END $$;
COMMENT ON FUNCTION jobq._matview_refresh(jsonb, text)
	IS 'the work of jobq.matview_refresh, with table names looked up in search_path';

CREATE OR REPLACE FUNCTION jobq._table_archive(payload jsonb, search_path text)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	source regclass := jobq._pack_table(payload, 'source', NULL, search_path);
	target regclass := jobq._pack_table(payload, 'target', NULL, search_path);
	ts_column text := payload ->> 'timestamp_column';
	older_than interval := (payload ->> 'older_than')::interval;
	batch_size integer := coalesce((payload ->> 'batch_size')::integer, 10000);
	columns text;
	missing text;
	moved bigint;
	next_job bigint;
BEGIN
	IF ts_column IS NULL OR older_than IS NULL THEN
		RAISE EXCEPTION 'payload must give "timestamp_column" and "older_than"'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF batch_size < 1 THEN
		RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF source = target THEN
		RAISE EXCEPTION 'source and target are the same table' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM jobq._pack_columns(source, ARRAY[ts_column]);
	IF (SELECT relkind FROM pg_catalog.pg_class WHERE oid = source) <> 'r' THEN
		RAISE EXCEPTION 'source % must be a plain table', source USING ERRCODE = 'wrong_object_type';
	END IF;

	/* every column of the source goes to the column of the same name */
	SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
	  INTO columns
	  FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
	SELECT a.attname INTO missing
	  FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
	   AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute t
						WHERE t.attrelid = target AND t.attname = a.attname
						  AND t.attnum > 0 AND NOT t.attisdropped)
	 LIMIT 1;
	IF missing IS NOT NULL THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', missing, target
			USING ERRCODE = 'undefined_column',
				  DETAIL = format('Every column of %s must have a column of the same name in %s.', source, target);
	END IF;

	/* one batch per job, oldest first; rows locked by others wait for the next */
	EXECUTE format($sql$
		WITH moved AS (
			DELETE FROM %1$s
			 WHERE ctid = ANY (ARRAY(
				SELECT ctid FROM %1$s
				 WHERE %3$I < pg_catalog.now() - $1
				 ORDER BY %3$I
				 LIMIT $2
				   FOR UPDATE SKIP LOCKED))
			RETURNING %4$s)
		INSERT INTO %2$s (%4$s) SELECT %4$s FROM moved
		$sql$, source, target, ts_column, columns)
	USING older_than, batch_size;
	GET DIAGNOSTICS moved = ROW_COUNT;

	/*
	 * A full batch: the rest goes to a new job, never one endless transaction;
	 * it keeps this job's queue, priority, attempts and timeout.
	 */
	IF moved = batch_size THEN
		SELECT jobq.enqueue('table.archive', _table_archive.payload, queue => j.queue, priority => j.priority,
							max_attempts => j.max_attempts, timeout => j.timeout)
		  INTO next_job
		  FROM (SELECT NULL) AS dummy
		  LEFT JOIN jobq.jobs j ON j.id = jobq.current_job();
	END IF;
	RAISE LOG 'jobq table.archive % to %: % rows moved%', source, target, moved,
		CASE WHEN next_job IS NULL THEN '' ELSE ', continued in job ' || next_job END;
	RETURN pg_catalog.jsonb_build_object('moved', moved, 'next_job', next_job);
END $$;
COMMENT ON FUNCTION jobq._table_archive(jsonb, text)
	IS 'the work of jobq.table_archive, with table names looked up in search_path';

/*
 * The handlers the kinds name (jobq._kinds.handler): the caller's
 * search_path goes to the pinned function.  Nothing here may be looked up
 * in that path: every name is schema-qualified.
 */
CREATE OR REPLACE FUNCTION jobq.matview_refresh(payload jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jobq._matview_refresh(payload, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION jobq.matview_refresh(jsonb)
	IS 'job kind matview.refresh: refresh a materialized view, concurrently when it can be';

CREATE OR REPLACE FUNCTION jobq.table_archive(payload jsonb)
RETURNS jsonb
LANGUAGE sql AS $$
	SELECT jobq._table_archive(payload, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION jobq.table_archive(jsonb)
	IS 'job kind table.archive: move one batch of old rows to another table, and continue in a new job';

CREATE OR REPLACE FUNCTION jobq._prune_kind(payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	deleted bigint := jobq.prune();
BEGIN
	RAISE LOG 'jobq jobq.prune: % finished jobs deleted', deleted;
	RETURN pg_catalog.jsonb_build_object('deleted', deleted);
END $$;
COMMENT ON FUNCTION jobq._prune_kind(jsonb)
	IS 'job kind jobq.prune: jobq.prune() as a job, for roles allowed to call it';

/* ---------------------------------------------------------------------
 * Built-in kinds of other extensions.  jobq_pack's install script inserts
 * its kinds into jobq._kinds as built-in rows with its name in the column
 * extension (pg_dump leaves built-in rows out: CREATE EXTENSION brings
 * them back); DROP EXTENSION removes them through the event trigger
 * below.  A pending job of a kind that is gone dies when a worker claims
 * it ("job kind ... does not exist").
 * ------------------------------------------------------------------- */

/*
 * Make every backend read jobq._kinds again when the transaction commits:
 * the kind cache is dropped with the table's relcache entry, which a plain
 * INSERT or DELETE does not invalidate.
 */
CREATE OR REPLACE FUNCTION jobq._kinds_changed()
RETURNS void
AS 'MODULE_PATHNAME', 'jobq__kinds_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION jobq._kinds_changed()
	IS 'make every backend read the job kinds again (for install scripts that add built-in kinds)';
REVOKE ALL ON FUNCTION jobq._kinds_changed() FROM PUBLIC;

/*
 * After DROP EXTENSION: the built-in kinds of the dropped extensions go.
 * SECURITY DEFINER: the event trigger fires for every role's DROP
 * EXTENSION (of a trusted extension, say), which must not fail for want
 * of rights on jobq._kinds; it deletes only the kinds of the extensions
 * the command dropped.
 */
CREATE OR REPLACE FUNCTION jobq._drop_extension_kinds()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	DELETE FROM jobq._kinds k
	 USING pg_catalog.pg_event_trigger_dropped_objects() d
	 WHERE d.object_type = 'extension' AND d.object_identity = pg_catalog.quote_ident(k.extension);
	IF FOUND THEN
		PERFORM jobq._kinds_changed();
	END IF;
END $$;
COMMENT ON FUNCTION jobq._drop_extension_kinds()
	IS 'remove the built-in kinds of the extensions a DROP EXTENSION dropped (event trigger jobq_drop_extension_kinds)';
REVOKE ALL ON FUNCTION jobq._drop_extension_kinds() FROM PUBLIC;

/* CREATE EVENT TRIGGER has no OR REPLACE: created when it is missing */
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'jobq_drop_extension_kinds') THEN
		CREATE EVENT TRIGGER jobq_drop_extension_kinds ON sql_drop
			WHEN TAG IN ('DROP EXTENSION')
			EXECUTE FUNCTION jobq._drop_extension_kinds();
		COMMENT ON EVENT TRIGGER jobq_drop_extension_kinds
			IS 'removes the built-in job kinds of a dropped extension';
	END IF;
END $$;
