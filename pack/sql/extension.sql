-- extension: jobq_pack's kinds come and go with the extension.  Its install
-- script adds them as built-in kinds that name it; DROP EXTENSION removes
-- them (jobq's event trigger), also when another extension is dropped by
-- a role without rights on jobq's tables it leaves them alone.  A kind of
-- the same name that an application registered stops the install.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS jobq_pack CASCADE;
\set VERBOSITY terse
SELECT e.extname, n.nspname, e.extversion
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname LIKE 'jobq%' ORDER BY 1;
SELECT kind, handler, max_attempts, extension FROM jobq.kinds WHERE builtin ORDER BY kind;

-- built in: an application cannot replace or remove them
SELECT jobq.unregister_kind('slots.generate');

DROP EXTENSION jobq_pack;
SELECT kind, extension FROM jobq.kinds WHERE builtin ORDER BY kind;
SELECT jobq.enqueue('slots.generate');
SELECT count(*) FROM pg_proc WHERE proname IN ('slots_generate', '_slots_generate', 'schedule_timetable');

-- a registered kind of the same name: the install stops with a clear error
CREATE FUNCTION public.my_release(payload jsonb) RETURNS void LANGUAGE sql AS 'SELECT';
SELECT jobq.register_kind('reservations.release', 'public.my_release(jsonb)');
CREATE EXTENSION jobq_pack;
\echo :LAST_ERROR_SQLSTATE
SELECT jobq.unregister_kind('reservations.release');
CREATE EXTENSION jobq_pack;
SELECT kind, extension FROM jobq.kinds WHERE extension IS NOT NULL ORDER BY kind;

-- another extension dropped by a role that may not touch jobq._kinds
CREATE ROLE pack_ext_owner;
SELECT format('GRANT CREATE ON DATABASE %I TO pack_ext_owner', current_database()) \gexec
SET ROLE pack_ext_owner;
CREATE EXTENSION ltree;
DROP EXTENSION ltree;
RESET ROLE;
SELECT count(*) FROM jobq.kinds WHERE extension = 'jobq_pack';
SELECT format('REVOKE CREATE ON DATABASE %I FROM pack_ext_owner', current_database()) \gexec
DROP ROLE pack_ext_owner;
DROP FUNCTION public.my_release(jsonb);

-- jobq dropped with the pack (its event trigger goes too), both created again
DROP EXTENSION jobq CASCADE;
SELECT count(*) FROM pg_event_trigger WHERE evtname = 'jobq_drop_extension_kinds';
CREATE EXTENSION jobq_pack CASCADE;
SELECT count(*) FROM jobq.kinds WHERE extension = 'jobq_pack';
