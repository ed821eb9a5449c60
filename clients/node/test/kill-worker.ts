/*
 * A worker process for client.test.ts: takes the ts.kill job with a lease
 * of 2 s, writes its row in the transaction that is to complete the job,
 * says so on stdout, and waits there to be killed.
 */
import pg from 'pg';

import { Worker } from '../src/index.js';

const pool = new pg.Pool({ max: 4 });
const worker = new Worker({
  pool,
  queues: ['tsk'],
  leaseMs: 2_000,
  heartbeatMs: 60_000,
  waitMs: 10_000,
  handlers: {
    'ts.kill': (job, ctx) =>
      ctx.completeInTransaction(async (tx) => {
        await tx.query('INSERT INTO ts_writes VALUES ($1, $2)', [job.id, job.attempt]);
        process.stdout.write('wrote\n');
        await new Promise(() => undefined); // until SIGKILL
      }),
  },
});
worker.start();
