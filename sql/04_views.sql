-- 04_views: who sees what.  jobq.jobs and jobq.queue_stats show a role only
-- the jobs of roles it is a member of; the tables, jobq.workers and the
-- administrative functions are not granted to PUBLIC.  Also jobq.prune.
SET client_min_messages = warning;
TRUNCATE jobq._queue, jobq._done RESTART IDENTITY;

CREATE ROLE alice;
CREATE ROLE bob;
CREATE ROLE carol IN ROLE alice;
CREATE ROLE watcher IN ROLE pg_monitor;

SET ROLE alice;
SELECT jobq.enqueue('sql', '{"sql": "SELECT ''secret of alice''"}', queue => 'a') AS alice_job \gset
SELECT owner, queue FROM jobq.jobs;
SET ROLE bob;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', queue => 'b') AS bob_job \gset
-- bob sees his job only, and cannot touch alice's
SELECT owner, queue FROM jobq.jobs;
SELECT queue, status, jobs FROM jobq.queue_stats;
SELECT jobq.cancel(:alice_job);
SELECT jobq.retry(:alice_job);
SELECT count(*) FROM jobq._queue;
SELECT count(*) FROM jobq._done;
SELECT count(*) FROM jobq.workers;
SELECT jobq.prune();
UPDATE jobq._queue SET owner = 'bob' WHERE id = :alice_job;
-- carol is a member of alice: she sees and may cancel alice's job
SET ROLE carol;
SELECT owner, queue FROM jobq.jobs ORDER BY id;
SELECT jobq.cancel(:alice_job);
-- the monitoring role sees the workers (none run here), not the jobs
SET ROLE watcher;
SELECT count(*) FROM jobq.workers;
SELECT count(*) FROM jobq.jobs;
RESET ROLE;
-- a superuser sees everything
SELECT owner::text, status FROM jobq.jobs ORDER BY id;
SELECT queue, status, jobs FROM jobq.queue_stats ORDER BY queue, status;

-- jobq.prune: succeeded and cancelled jobs go after jobq.retention (1 day),
-- dead ones after jobq.dead_retention (30 days)
INSERT INTO jobq._done (id, kind, queue, payload, priority, status, attempts, max_attempts,
                        run_at, owner, created_at, finished_at)
SELECT 2000000 + g, 'sql', 'default', '{}', 0, s, 1, 1, now(), 'alice', now(), now() - age
  FROM (VALUES (1, 'succeeded', interval '2 days'), (2, 'succeeded', interval '1 hour'),
               (3, 'cancelled', interval '2 days'), (4, 'dead', interval '2 days'),
               (5, 'dead', interval '31 days')) v(g, s, age);
SELECT jobq.prune();
SELECT id - 2000000 AS kept, status FROM jobq._done WHERE id > 2000000 ORDER BY id;
SHOW jobq.retention;
SHOW jobq.dead_retention;

-- the settings, with their defaults
SELECT name, setting, unit, context FROM pg_settings WHERE name LIKE 'jobq.%' ORDER BY name;
-- the prefix is reserved
SET jobq.no_such_setting = 1;
