-- 09_key_mode: jobq.enqueue's key_mode, what an enqueue does to the live
-- job that holds its job_key: keep it (the default), give it the new
-- payload and run time (debounce) or the new payload only (throttle);
-- running jobs, jobs of another kind and other roles' jobs are left alone.
-- No worker runs here (jobq.workers = 0).
SET client_min_messages = warning;
TRUNCATE jobq._queue, jobq._done RESTART IDENTITY;

-- keep: the first job stays as it is, named or not
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', job_key => 'stats', run_at => '2030-01-01 00:00+00') AS first \gset
SELECT jobq.enqueue('sql', '{"sql": "SELECT 2"}', job_key => 'stats', run_at => '2030-01-02 00:00+00') = :first AS same;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 2"}', job_key => 'stats', key_mode => 'keep') = :first AS same;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 2"}', job_key => 'stats', key_mode => NULL) = :first AS same;
SELECT payload->>'sql' AS sql, run_at = '2030-01-01 00:00+00' AS first_run_at FROM jobq.jobs WHERE id = :first;

-- debounce: the new payload and run time; queue and priority stay
SELECT jobq.enqueue('sql', '{"sql": "SELECT 3"}', job_key => 'stats', run_at => '2030-01-03 00:00+00',
                    queue => 'other', priority => 9, key_mode => 'debounce') = :first AS same;
SELECT payload->>'sql' AS sql, run_at = '2030-01-03 00:00+00' AS new_run_at, queue, priority
  FROM jobq.jobs WHERE id = :first;
-- debounce without run_at: due now
SELECT jobq.enqueue('sql', '{"sql": "SELECT 4"}', job_key => 'stats', key_mode => 'debounce') = :first AS same;
SELECT payload->>'sql' AS sql, run_at <= now() AS due FROM jobq.jobs WHERE id = :first;

-- throttle: the new payload, the run time kept
SELECT jobq.enqueue('sql', '{"sql": "SELECT 1"}', job_key => 'digest', run_at => '2030-02-01 00:00+00') AS digest \gset
SELECT jobq.enqueue('sql', '{"sql": "SELECT 5"}', job_key => 'digest', key_mode => 'throttle') = :digest AS same;
SELECT payload->>'sql' AS sql, run_at = '2030-02-01 00:00+00' AS run_at_kept FROM jobq.jobs WHERE id = :digest;

-- a key nobody holds: each mode adds a job
SELECT jobq.enqueue('sql', '{"sql": "SELECT 6"}', job_key => 'fresh1', key_mode => 'debounce') NOT IN (:first, :digest) AS new_job;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 6"}', job_key => 'fresh2', key_mode => 'throttle') NOT IN (:first, :digest) AS new_job;
SELECT count(*) FROM jobq.jobs WHERE job_key LIKE 'fresh%';

-- a running holder is left alone in every mode
SELECT jobq.enqueue('sql', '{"sql": "SELECT 7"}', job_key => 'busy', priority => -100) AS busy \gset
SELECT jobq._claim(1) = :busy AS claimed;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 8"}', job_key => 'busy', key_mode => 'debounce') = :busy AS same;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 8"}', job_key => 'busy', key_mode => 'throttle') = :busy AS same;
SELECT status, payload->>'sql' AS sql FROM jobq.jobs WHERE id = :busy;

-- a holder of another kind is left alone
SELECT jobq.enqueue('jobq.prune', '{}', job_key => 'mixed', run_at => '2030-01-01 00:00+00') AS mixed \gset
SELECT jobq.enqueue('sql', '{"sql": "SELECT 9"}', job_key => 'mixed', key_mode => 'debounce') = :mixed AS same;
SELECT kind, payload, run_at = '2030-01-01 00:00+00' AS run_at_kept FROM jobq.jobs WHERE id = :mixed;

-- keys are per owner: another role's debounce adds its own job
CREATE ROLE key_other;
SET ROLE key_other;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 10"}', job_key => 'stats', key_mode => 'debounce') <> :first AS own_job;
RESET ROLE;
SELECT payload->>'sql' AS sql FROM jobq.jobs WHERE id = :first;

-- bad input is refused before the holder changes
SELECT jobq.enqueue('sql', '{"sql": "SELEC 1"}', job_key => 'stats', key_mode => 'debounce');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 11"}', job_key => 'stats', key_mode => 'replace');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 11"}', job_key => 'stats', key_mode => 'DEBOUNCE');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 11"}', key_mode => 'debounce');
SELECT jobq.enqueue('sql', '{"sql": "SELECT 11"}', key_mode => 'throttle');
SELECT payload->>'sql' AS sql FROM jobq.jobs WHERE id = :first;
SELECT jobq.enqueue('sql', '{"sql": "SELECT 11"}', key_mode => 'keep') IS NOT NULL AS keep_without_key;

TRUNCATE jobq._queue, jobq._done;
DROP ROLE key_other;
