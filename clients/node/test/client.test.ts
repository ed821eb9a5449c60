/*
 * The client against a real server with jobq (clients/node/test.sh starts
 * it and sets PGHOST, PGPORT, PGUSER, PGDATABASE): enqueue in a transaction
 * that commits or rolls back, a Worker running external jobs (results,
 * retries, final failures, snoozes, a concurrency of 4, a cancel), a job
 * completed in the transaction of its write, a stale completion refused, a
 * graceful stop (stop(), and SIGTERM to a worker process), and a worker
 * process killed with SIGKILL in the middle of a job: with the completion
 * in the job's transaction, its write and its completion are there once,
 * never twice.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CompiledQuery, Kysely, PostgresDialect } from 'kysely';

import { enqueue, enqueueMany, enqueueStatement, JobqError, PermanentError, SnoozeError, Worker, type Job } from '../src/index.js';

const pool = new pg.Pool({ max: 12 });

async function one(sql: string, values: unknown[] = []): Promise<any> {
  return (await pool.query(sql, values)).rows[0];
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

const done = (id: string) => async () =>
  (await one("SELECT status FROM jobq.jobs WHERE id = $1", [id]))?.status !== 'pending' &&
  (await one("SELECT status FROM jobq.jobs WHERE id = $1", [id]))?.status !== 'running';

before(async () => {
  await pool.query(`
    SELECT jobq.register_external_kind('ts.echo', 'ts');
    SELECT jobq.register_external_kind('ts.flaky', 'ts', max_attempts => 2);
    SELECT jobq.register_external_kind('ts.slow', 'ts');
    SELECT jobq.register_external_kind('ts.write', 'tsw');
    SELECT jobq.register_external_kind('ts.kill', 'tsk');
    CREATE TABLE IF NOT EXISTS ts_writes (job bigint, n int);`);
});

after(async () => {
  await pool.end();
});

test('enqueue in a transaction that rolls back adds nothing; one that commits adds the job', async () => {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const id = await enqueue(c, 'ts.echo', { n: 1 }, { queue: 'tsnone' });
    await c.query('ROLLBACK');
    assert.equal((await one('SELECT count(*)::int AS n FROM jobq.jobs WHERE id = $1', [id])).n, 0);
    await c.query('BEGIN');
    const id2 = await enqueue(c, 'ts.echo', { n: 2 }, { queue: 'tsnone', priority: 3, jobKey: 'k1', maxAttempts: 7, timeout: '1 minute' });
    await c.query('COMMIT');
    const row = await one('SELECT payload, priority, job_key, max_attempts, timeout::text FROM jobq.jobs WHERE id = $1', [id2]);
    assert.deepEqual(row, { payload: { n: 2 }, priority: 3, job_key: 'k1', max_attempts: 7, timeout: '00:01:00' });
    // the same key again: the live job's id
    assert.equal(await enqueue(pool, 'ts.echo', { n: 3 }, { queue: 'tsnone', jobKey: 'k1' }), id2);
  } finally {
    c.release();
  }
  const ids = await enqueueMany(pool, 'ts.echo', [{ a: 1 }, { a: 2 }, { a: 3 }], { queue: 'tsnone', concurrencyKeys: ['x', 'y', null] });
  assert.equal(ids.length, 3);
  assert.deepEqual(
    (await pool.query('SELECT concurrency_key FROM jobq.jobs WHERE id = ANY($1::bigint[]) ORDER BY id', [ids])).rows.map((r) => r.concurrency_key),
    ['x', 'y', null],
  );
  await pool.query("SELECT jobq.cancel_jobs(queue => 'tsnone')");
});

test('with Kysely: a job enqueued in a transaction that throws is not there; in one that commits it is', async () => {
  const db = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ max: 2 }) }) });
  try {
    const st = enqueueStatement('ts.echo', { via: 'kysely' }, { queue: 'tskysely' });
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx.executeQuery(CompiledQuery.raw(st.text, st.values));
        throw new Error('the application failed');
      }),
      /the application failed/,
    );
    assert.equal((await one("SELECT count(*)::int AS n FROM jobq.jobs WHERE queue = 'tskysely'")).n, 0);
    const id = await db.transaction().execute(async (trx) => {
      const r = await trx.executeQuery<{ id: string }>(CompiledQuery.raw(st.text, st.values));
      return r.rows[0].id;
    });
    assert.deepEqual(await one('SELECT queue, payload FROM jobq.jobs WHERE id = $1', [id]), { queue: 'tskysely', payload: { via: 'kysely' } });
    await pool.query('SELECT jobq.cancel($1)', [id]);
  } finally {
    await db.destroy();
  }
});

test('a bad enqueue is refused with its SQLSTATE', async () => {
  await assert.rejects(enqueue(pool, 'no.such.kind', {}), (e: unknown) => e instanceof JobqError && e.code === '42704');
  await assert.rejects(enqueue(pool, 'ts.echo', {}, { maxAttempts: 0 }), (e: unknown) => e instanceof JobqError && e.code === '22023');
});

test('a worker runs the jobs: results, retries, final failures, snoozes, at most its concurrency at once', async () => {
  let running = 0;
  let most = 0;
  let flakyCalls = 0;
  const snoozed = new Set<string>();
  const worker = new Worker({
    pool,
    queues: ['ts'],
    concurrency: 4,
    leaseMs: 10_000,
    waitMs: 2_000,
    retryAfter: () => 0,
    handlers: {
      'ts.echo': async (job: Job<{ n: number; snooze?: boolean; permanent?: boolean }>) => {
        if (job.payload.permanent) throw new PermanentError('cannot ever work');
        if (job.payload.snooze && !snoozed.has(job.id)) {
          snoozed.add(job.id);
          throw new SnoozeError(100);
        }
        return { doubled: job.payload.n * 2, attempt: job.attempt };
      },
      'ts.flaky': async () => {
        flakyCalls++;
        throw new Error('flaky failed');
      },
      'ts.slow': async () => {
        running++;
        most = Math.max(most, running);
        await new Promise((r) => setTimeout(r, 150));
        running--;
      },
    },
  });
  worker.start();
  try {
    const echo = await enqueue(pool, 'ts.echo', { n: 21 });
    const perm = await enqueue(pool, 'ts.echo', { n: 1, permanent: true });
    const snooze = await enqueue(pool, 'ts.echo', { n: 2, snooze: true });
    const flaky = await enqueue(pool, 'ts.flaky', {});
    const slow = await enqueueMany(pool, 'ts.slow', Array.from({ length: 16 }, (_, i) => ({ i })));
    for (const id of [echo, perm, snooze, flaky, ...slow]) await waitFor(`job ${id}`, done(id));

    assert.deepEqual(await one('SELECT status, result, attempts FROM jobq.jobs WHERE id = $1', [echo]), {
      status: 'succeeded',
      result: { doubled: 42, attempt: 1 },
      attempts: 1,
    });
    assert.deepEqual(await one('SELECT status, attempts, last_error, last_error_sqlstate FROM jobq.jobs WHERE id = $1', [perm]), {
      status: 'dead',
      attempts: 1,
      last_error: 'cannot ever work',
      last_error_sqlstate: '38000',
    });
    assert.deepEqual(await one('SELECT status, attempts FROM jobq.jobs WHERE id = $1', [snooze]), { status: 'succeeded', attempts: 1 });
    const f = await one('SELECT status, attempts, last_error, last_error_context FROM jobq.jobs WHERE id = $1', [flaky]);
    assert.equal(f.status, 'dead');
    assert.equal(f.attempts, 2);
    assert.equal(flakyCalls, 2);
    assert.equal(f.last_error, 'flaky failed');
    assert.match(f.last_error_context, /flaky failed/);
    assert.ok(most <= 4, `at most 4 ran at once (saw ${most})`);
    assert.ok(most > 1, `several ran side by side (saw ${most})`);
  } finally {
    await worker.stop();
  }
});

test('a cancel reaches the running handler through its signal', async () => {
  let aborted = false;
  const worker = new Worker({
    pool,
    queues: ['ts'],
    leaseMs: 3_000,
    heartbeatMs: 200,
    waitMs: 2_000,
    handlers: {
      'ts.slow': (_job, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            reject(ctx.signal.reason);
          });
        }),
    },
  });
  worker.start();
  try {
    const id = await enqueue(pool, 'ts.slow', {});
    await waitFor('the job to run', async () => (await one('SELECT status FROM jobq.jobs WHERE id = $1', [id])).status === 'running');
    await pool.query('SELECT jobq.cancel($1)', [id]);
    await waitFor('the job to end', done(id));
    assert.equal(aborted, true);
    assert.equal((await one('SELECT status FROM jobq.jobs WHERE id = $1', [id])).status, 'cancelled');
  } finally {
    await worker.stop();
  }
});

test('completeInTransaction: the write and the completion commit together; a stale lease is refused', async () => {
  const worker = new Worker({
    pool,
    queues: ['tsw'],
    waitMs: 2_000,
    handlers: {
      'ts.write': (job: Job<{ n: number }>, ctx) =>
        ctx.completeInTransaction(async (tx) => {
          await tx.query('INSERT INTO ts_writes VALUES ($1, $2)', [job.id, job.payload.n]);
          return job.payload.n;
        }, (n) => ({ wrote: n })),
    },
  });
  worker.start();
  let id: string;
  try {
    id = await enqueue(pool, 'ts.write', { n: 5 });
    await waitFor('the write job', done(id));
  } finally {
    await worker.stop();
  }
  assert.deepEqual(await one('SELECT status, result FROM jobq.jobs WHERE id = $1', [id]), { status: 'succeeded', result: { wrote: 5 } });
  assert.equal((await one('SELECT count(*)::int AS n FROM ts_writes WHERE job = $1', [id])).n, 1);

  // a lease that ended, and the job claimed again by another: the late completion is refused
  const late = await enqueue(pool, 'ts.write', { n: 6 });
  const first = await one("SELECT id, lease_id FROM jobq.claim(ARRAY['tsw'], 1, '1 second')");
  assert.equal(String(first.id), late);
  await new Promise((r) => setTimeout(r, 1200));
  const second = await one("SELECT id, lease_id, attempt FROM jobq.claim(ARRAY['tsw'], 1, '1 minute')");
  assert.equal(second.attempt, 2);
  await assert.rejects(pool.query('SELECT jobq.complete($1, $2)', [late, first.lease_id]), (e: any) => e.code === '55000');
  await pool.query('SELECT jobq.complete($1, $2)', [late, second.lease_id]);
});

test('stop() finishes the running job and gives back the claimed ones not started, their attempt not counted', async () => {
  await pool.query("SELECT jobq.register_external_kind('ts.stop', 'tsstop')");
  const ids = await enqueueMany(pool, 'ts.stop', Array.from({ length: 6 }, (_, i) => ({ i })));
  let started = 0;
  const worker = new Worker({
    pool,
    queues: ['tsstop'],
    concurrency: 1,
    prefetch: 5,
    waitMs: 2_000,
    handlers: {
      'ts.stop': async () => {
        started++;
        await new Promise((r) => setTimeout(r, 500));
      },
    },
  });
  worker.start();
  await waitFor('all six claimed', async () =>
    (await one("SELECT count(*)::int AS n FROM jobq._queue WHERE queue = 'tsstop' AND status = 'running'")).n === 6);
  await worker.stop();
  const rows = (await pool.query('SELECT status, attempts FROM jobq.jobs WHERE id = ANY($1::bigint[]) ORDER BY id', [ids])).rows;
  assert.equal(started, 1, 'one job started');
  assert.deepEqual(rows[0], { status: 'succeeded', attempts: 1 });
  assert.deepEqual(rows.slice(1), Array(5).fill({ status: 'pending', attempts: 0 }));
  await pool.query("SELECT jobq.cancel_jobs(queue => 'tsstop')");
});

test('stop() ends a wait at once and leaves no job running', async () => {
  const worker = new Worker({ pool, queues: ['tsempty'], waitMs: 30_000, handlers: {} });
  worker.start();
  await new Promise((r) => setTimeout(r, 300));
  const t0 = Date.now();
  await worker.stop();
  assert.ok(Date.now() - t0 < 10_000, 'stop did not wait for the 30 s wait to end');
  assert.equal((await one("SELECT count(*)::int AS n FROM jobq._queue WHERE status = 'running' AND external")).n, 0);
});

test('SIGTERM: the worker process finishes its running job, gives back the claimed ones not started, and exits', async () => {
  await pool.query("SELECT jobq.register_external_kind('ts.term', 'tsterm')");
  const ids = await enqueueMany(pool, 'ts.term', [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }]);
  const script = fileURLToPath(new URL('./sigterm-worker.js', import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await waitFor('the first job to start', async () => out.includes('started'));
  await waitFor('all four claimed', async () =>
    (await one("SELECT count(*)::int AS n FROM jobq._queue WHERE queue = 'tsterm' AND status = 'running'")).n === 4);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, 'the process exits with 0');
  assert.equal(out.split('started').length - 1, 1, 'no job started after SIGTERM');
  const rows = (await pool.query('SELECT status, attempts FROM jobq.jobs WHERE id = ANY($1::bigint[]) ORDER BY id', [ids])).rows;
  assert.deepEqual(rows, [
    { status: 'succeeded', attempts: 1 },
    { status: 'pending', attempts: 0 },
    { status: 'pending', attempts: 0 },
    { status: 'pending', attempts: 0 },
  ]);
  await pool.query("SELECT jobq.cancel_jobs(queue => 'tsterm')");
});

test('a worker process killed with SIGKILL in the middle of a job: the job runs again after its lease, its write and completion exactly once', async () => {
  const id = await enqueue(pool, 'ts.kill', {});
  const script = fileURLToPath(new URL('./kill-worker.js', import.meta.url));
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  await waitFor('the child to write and pause', async () => out.includes('wrote'));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  // the write of the killed worker's transaction did not commit
  assert.equal((await one('SELECT count(*)::int AS n FROM ts_writes WHERE job = $1', [id])).n, 0);
  assert.equal((await one('SELECT status FROM jobq.jobs WHERE id = $1', [id])).status, 'running');

  const worker = new Worker({
    pool,
    queues: ['tsk'],
    waitMs: 1_000,
    handlers: {
      'ts.kill': (job, ctx) =>
        ctx.completeInTransaction(async (tx) => {
          await tx.query('INSERT INTO ts_writes VALUES ($1, $2)', [job.id, job.attempt]);
        }),
    },
  });
  worker.start();
  try {
    await waitFor('the job to run again after its lease', done(id), 20_000);
  } finally {
    await worker.stop();
  }
  assert.deepEqual(await one('SELECT status, attempts FROM jobq.jobs WHERE id = $1', [id]), { status: 'succeeded', attempts: 2 });
  assert.deepEqual((await pool.query('SELECT n FROM ts_writes WHERE job = $1', [id])).rows, [{ n: 2 }]);
});
