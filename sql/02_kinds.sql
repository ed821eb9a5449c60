-- 02_kinds: jobq.register_kind / jobq.unregister_kind, handler checks, and
-- the defaults a kind gives its jobs.
SET client_min_messages = warning;

CREATE FUNCTION good_handler(payload jsonb) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT payload $$;
CREATE FUNCTION void_handler(payload jsonb) RETURNS void
    LANGUAGE sql AS $$ SELECT $$;
CREATE FUNCTION int_handler(payload jsonb) RETURNS integer
    LANGUAGE sql AS $$ SELECT 1 $$;
CREATE FUNCTION two_args(payload jsonb, n int) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT payload $$;
CREATE FUNCTION text_arg(payload text) RETURNS jsonb
    LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION set_handler(payload jsonb) RETURNS SETOF jsonb
    LANGUAGE sql AS $$ SELECT payload $$;
CREATE PROCEDURE proc_handler(payload jsonb) LANGUAGE sql AS $$ SELECT 1 $$;

SELECT jobq.register_kind('school.report', 'good_handler(jsonb)',
                          queue => 'reports', max_attempts => 4,
                          timeout => '10 min', priority => 3);
SELECT jobq.register_kind('school.cleanup', 'void_handler(jsonb)');
SELECT kind, builtin, handler, queue, priority, max_attempts, timeout, registered_by
  FROM jobq.kinds WHERE NOT builtin OR kind = 'sql' ORDER BY kind;

-- the kind's defaults apply; the job's own values win
SELECT jobq.enqueue('school.report', '{"class": "7B"}') AS r1 \gset
SELECT jobq.enqueue('school.report', '{}', queue => 'now', priority => 0,
                    max_attempts => 1, timeout => '1 s') AS r2 \gset
SELECT queue, priority, max_attempts, timeout FROM jobq.jobs
 WHERE id IN (:r1, :r2) ORDER BY id;

-- a kind's timeout counts as a job's own does: a month is 30 days either way (20 days here)
SELECT jobq.register_kind('school.monthly', 'void_handler(jsonb)', timeout => '1 mon -10 days');
SELECT jobq.enqueue('school.monthly', '{}') AS m1 \gset
SELECT jobq.enqueue('school.cleanup', '{}', timeout => '1 mon -10 days') AS m2 \gset
SELECT id = :m1 AS from_kind, timeout FROM jobq.jobs WHERE id IN (:m1, :m2) ORDER BY id;
SELECT jobq.unregister_kind('school.monthly');

-- registering again replaces
SELECT jobq.register_kind('school.report', 'void_handler(jsonb)', queue => 'other');
SELECT handler, queue, max_attempts FROM jobq.kinds WHERE kind = 'school.report';

-- handlers that cannot be: a clear error, nothing registered
SELECT jobq.register_kind('bad', 'int_handler(jsonb)');
SELECT jobq.register_kind('bad', 'two_args(jsonb, integer)');
SELECT jobq.register_kind('bad', 'text_arg(text)');
SELECT jobq.register_kind('bad', 'set_handler(jsonb)');
SELECT jobq.register_kind('bad', 'proc_handler(jsonb)');
SELECT jobq.register_kind('bad', 'no_such_function(jsonb)');
SELECT jobq.register_kind('bad', NULL);
SELECT jobq.register_kind(NULL, 'good_handler(jsonb)');
SELECT jobq.register_kind('', 'good_handler(jsonb)');
SELECT jobq.register_kind('bad', 'good_handler(jsonb)', queue => '');
SELECT jobq.register_kind('bad', 'good_handler(jsonb)', max_attempts => 0);
SELECT jobq.register_kind('bad', 'good_handler(jsonb)', timeout => '0');
SELECT jobq.register_kind('sql', 'good_handler(jsonb)');
SELECT count(*) FROM jobq.kinds WHERE kind = 'bad';

-- unregistering
SELECT jobq.unregister_kind('school.cleanup');
SELECT jobq.unregister_kind('school.cleanup');
SELECT jobq.unregister_kind('sql');
SELECT jobq.enqueue('school.cleanup');

-- the handler is stored schema-qualified, so search_path does not change it
CREATE SCHEMA app;
CREATE FUNCTION app.h(payload jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT payload $$;
SET search_path = app, public;
SELECT jobq.register_kind('app.h', 'h(jsonb)');
RESET search_path;
SELECT handler FROM jobq.kinds WHERE kind = 'app.h';
SELECT jobq.enqueue('app.h', '{}') IS NOT NULL AS enqueued;

-- a role may enqueue a kind only if it may execute its handler
CREATE ROLE kind_user;
GRANT USAGE ON SCHEMA app TO kind_user;
REVOKE EXECUTE ON FUNCTION app.h(jsonb) FROM PUBLIC;
SET ROLE kind_user;
SELECT jobq.enqueue('app.h', '{}');
SELECT jobq.register_kind('mine', 'good_handler(jsonb)');
SELECT jobq.unregister_kind('app.h');
RESET ROLE;
GRANT EXECUTE ON FUNCTION app.h(jsonb) TO kind_user;
SET ROLE kind_user;
SELECT jobq.enqueue('app.h', '{}') IS NOT NULL AS enqueued;
RESET ROLE;

-- a kind's name and timeout are checked as a job's are
SELECT jobq.register_kind(E'bad\nkind', 'good_handler(jsonb)');
SELECT jobq.register_kind('bad', 'good_handler(jsonb)', queue => E'q\u0001');
SELECT jobq.register_kind('bad', 'good_handler(jsonb)', timeout => '178000000 years');
SELECT jobq.register_kind('bad', 'good_handler(jsonb)', timeout => '-1 s');
SELECT count(*) FROM jobq.kinds WHERE kind = 'bad';
