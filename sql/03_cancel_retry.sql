-- 03_cancel_retry: jobq.cancel and jobq.retry in every state a job can be
-- in, and the claim step (jobq._claim) that marks jobs running.
SET client_min_messages = warning;
TRUNCATE jobq._queue, jobq._done RESTART IDENTITY;

SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', job_key => 'c1', run_at => now() + interval '1 hour') AS pending_id \gset
SELECT jobq.enqueue('sql', '{"sql": "SELECT 2"}', priority => -1) AS running_id \gset

-- the claim takes ready jobs by priority, marks them running, counts the attempt
SELECT jobq._claim(1) = :running_id AS claimed_first;
SELECT status, attempts, worker_pid = pg_backend_pid() AS mine FROM jobq.jobs WHERE id = :running_id;
-- a job due later is not claimed
SELECT jobq.enqueue('sql', '{"sql": "SELECT 3"}', run_at => now() + interval '1 day') AS later_id \gset
SELECT count(*) FROM jobq._claim(10) WHERE _claim = :later_id;

-- cancel a pending job: it is cancelled at once and keeps its key no more
SELECT jobq.cancel(:later_id);
SELECT status, finished_at IS NOT NULL AS finished FROM jobq.jobs WHERE id = :later_id;
-- cancel a running job: not interrupted, but it will not be tried again
SELECT jobq.cancel(:running_id);
SELECT status, cancel_requested FROM jobq.jobs WHERE id = :running_id;
-- cancel a finished job: false
SELECT jobq.cancel(:later_id);
-- cancel a job that does not exist
SELECT jobq.cancel(-1);

-- retry a cancelled job: pending again, attempts start over, same id
SELECT jobq.retry(:later_id);
SELECT status, attempts, run_at <= now() AS due FROM jobq.jobs WHERE id = :later_id;
-- retry a pending or running job: refused
SELECT jobq.retry(:later_id);
SELECT jobq.retry(:running_id);
SELECT jobq.retry(-1);

-- a dead job, as a worker leaves it, can be retried
INSERT INTO jobq._done (id, kind, queue, payload, priority, status, attempts, max_attempts,
                        run_at, owner, created_at, started_at, finished_at,
                        last_error, last_error_sqlstate, job_key)
VALUES (1000001, 'sql', 'default', '{"sql": "SELECT 1/0"}', 0, 'dead', 3, 3,
        now(), current_user::regrole, now(), now(), now(),
        'division by zero', '22012', 'c1');
-- ... but not while a live job holds its key
SELECT jobq.retry(1000001);
SELECT jobq.cancel(:pending_id);
SELECT jobq.retry(1000001);
SELECT status, attempts, max_attempts, last_error, last_error_sqlstate
  FROM jobq.jobs WHERE id = 1000001;
-- a succeeded job cannot be retried
INSERT INTO jobq._done (id, kind, queue, payload, priority, status, attempts, max_attempts,
                        run_at, owner, created_at, finished_at)
VALUES (1000002, 'sql', 'default', '{"sql": "SELECT 1"}', 0, 'succeeded', 1, 3,
        now(), current_user::regrole, now(), now());
SELECT jobq.retry(1000002);
SELECT jobq.cancel(1000002);

-- the claim step is not for everyone
CREATE ROLE claim_user;
SET ROLE claim_user;
SELECT jobq._claim(1);
RESET ROLE;
SELECT jobq._claim(0);
