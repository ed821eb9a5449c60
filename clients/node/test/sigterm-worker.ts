/*
 * A worker process for client.test.ts: runs ts.term jobs one at a time
 * (each 800 ms), holding three more claimed, and stops on SIGTERM through
 * handleSignals(); says "started" when a handler begins.
 */
import pg from 'pg';

import { Worker } from '../src/index.js';

const pool = new pg.Pool({ max: 4 });
const worker = new Worker({
  pool,
  queues: ['tsterm'],
  concurrency: 1,
  prefetch: 3,
  waitMs: 5_000,
  handlers: {
    'ts.term': async () => {
      process.stdout.write('started\n');
      await new Promise((r) => setTimeout(r, 800));
    },
  },
});
worker.handleSignals();
worker.start();
