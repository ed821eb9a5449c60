-- 08_bulk: jobq.retry_jobs, jobq.cancel_jobs and jobq.purge_jobs: each
-- filter, the caller's own jobs only, keys, and bad input that changes
-- nothing.
SET client_min_messages = warning;
TRUNCATE jobq._queue, jobq._done RESTART IDENTITY;
CREATE ROLE bulk_a;
CREATE ROLE bulk_b;
CREATE ROLE bulk_team IN ROLE bulk_a;

-- finished jobs, as workers leave them: id, queue, owner, status, SQLSTATE,
-- key and when each finished
INSERT INTO jobq._done (id, kind, queue, payload, priority, status, attempts, max_attempts,
                        run_at, owner, created_at, finished_at, last_error_sqlstate, job_key)
SELECT id, 'sql', queue, '{"sql": "SELECT 1"}', 0, status, 1, 1,
       '2026-01-01', owner::regrole, '2026-01-01', finished_at, sqlstate, job_key
  FROM (VALUES
    (101, 'emails', 'bulk_a', 'dead', '22012', NULL, timestamptz '2026-03-01 10:00'),
    (102, 'emails', 'bulk_a', 'dead', '57014', NULL, '2026-03-01 11:00'),
    (103, 'photos', 'bulk_a', 'dead', '22012', NULL, '2026-03-02 10:00'),
    (104, 'emails', 'bulk_b', 'dead', '22012', NULL, '2026-03-01 10:00'),
    (105, 'emails', 'bulk_a', 'succeeded', NULL, NULL, '2026-03-01 10:00'),
    (106, 'emails', 'bulk_a', 'dead', '22012', 'k1', '2026-03-01 12:00'),
    (107, 'emails', 'bulk_a', 'dead', '22012', 'k1', '2026-03-01 13:00'),
    (108, 'emails', 'bulk_a', 'dead', '22012', 'k2', '2026-03-01 12:00'),
    (109, 'photos', 'bulk_b', 'cancelled', NULL, NULL, '2026-03-03 10:00'),
    (110, 'photos', 'bulk_b', 'succeeded', NULL, NULL, '2026-03-03 10:00')
  ) AS v(id, queue, owner, status, sqlstate, job_key, finished_at);
-- a live job of bulk_a holds key k2
SET ROLE bulk_a;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 2"}', queue => 'emails', job_key => 'k2',
                    run_at => now() + interval '1 day') AS k2_id \gset
RESET ROLE;
CREATE VIEW bulk_state AS
  SELECT id, queue, owner, status FROM jobq.jobs WHERE id > 100 ORDER BY id;

-- bad input is refused and changes nothing
SELECT jobq.retry_jobs(sqlstate => '2201');
SELECT jobq.retry_jobs(sqlstate => '22o12');
SELECT jobq.cancel_jobs(since => '2026-03-02', until => '2026-03-01');
SELECT jobq.cancel_jobs(since => '2026-03-02', until => '2026-03-02');
SELECT jobq.purge_jobs(status => 'running');
SELECT jobq.purge_jobs(status => 'pending');
SELECT jobq.purge_jobs(owner => 'no_such_role');
SELECT status, count(*) FROM jobq.jobs GROUP BY 1 ORDER BY 1;

-- retry: bulk_b sees only its own dead job of 22012
SET ROLE bulk_b;
SELECT jobq.retry_jobs(sqlstate => '22012');
RESET ROLE;
SELECT * FROM bulk_state WHERE id = 104;
-- a member of bulk_a retries bulk_a's dead jobs of queue emails, 22012,
-- finished on March 1st: 101, and of key k1 only the last one (107); 108's
-- key is held by a live job, 102 failed with another SQLSTATE, 103 is in
-- another queue
SET ROLE bulk_team;
SELECT jobq.retry_jobs(queue => 'emails', sqlstate => '22012',
                       since => '2026-03-01', until => '2026-03-02');
RESET ROLE;
SELECT * FROM bulk_state;
SELECT attempts, run_at <= now() AS due, last_error_sqlstate FROM jobq.jobs WHERE id = 107;
-- no match: 0, nothing changes
SELECT jobq.retry_jobs(kind => 'no.such.kind');
SELECT jobq.retry_jobs(owner => 'bulk_b', sqlstate => '57014');

-- cancel: pending jobs only; a running job is left alone
SELECT jobq.enqueue('sql', '{"sql": "SELECT 3"}', queue => 'photos', priority => -5) AS running_id \gset
SELECT jobq._claim(1) = :running_id AS claimed;
SET ROLE bulk_a;
SELECT jobq.cancel_jobs(queue => 'photos');
SELECT jobq.cancel_jobs(queue => 'emails', until => now() - interval '1 day');
SELECT jobq.cancel_jobs(queue => 'emails', since => now() - interval '1 hour');
RESET ROLE;
SELECT * FROM bulk_state;
SELECT status FROM jobq.jobs WHERE id = :running_id;
SELECT status FROM jobq.jobs WHERE id = :k2_id;
-- the superuser, for one owner
SELECT jobq.cancel_jobs(owner => 'bulk_b');

-- purge: finished jobs only, by status and time
SET ROLE bulk_b;
SELECT jobq.purge_jobs(status => 'cancelled');
SELECT jobq.purge_jobs(queue => 'emails');
RESET ROLE;
SELECT * FROM bulk_state;
SELECT jobq.purge_jobs(owner => 'bulk_a', since => '2026-03-01 10:30', until => '2026-03-01 12:30');
SELECT * FROM bulk_state;
SELECT jobq.purge_jobs();
SELECT status, count(*) FROM jobq.jobs GROUP BY 1 ORDER BY 1;

DROP VIEW bulk_state;
TRUNCATE jobq._queue, jobq._done;
DROP ROLE bulk_team, bulk_a, bulk_b;
