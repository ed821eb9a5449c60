/*
 * jobq-client: jobq from TypeScript.
 *
 * - enqueue / enqueueMany: add jobs through any node-postgres client, pool
 *   or pool client; given the client of an open transaction, the jobs are
 *   there if and only if it commits.
 * - Worker: runs the jobs of external kinds (jobq.register_external_kind)
 *   with typed handlers, a concurrency, leases kept by heartbeats, and a
 *   graceful stop that gives back what has not started.
 * - JobqError: a database error with its SQLSTATE, as jobq raised it.
 *
 * Everything goes through jobq's SQL functions (docs/reference/functions.md
 * and docs/guides/external-workers.md of the jobq repository).
 */

/** What runs a query: a pg.Client, pg.Pool or pg.PoolClient, or anything alike. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

/** A pool the worker takes its connections from (pg.Pool). */
export interface PoolLike extends Queryable {
  connect(): Promise<PoolClientLike>;
}

export interface PoolClientLike extends Queryable {
  release(err?: Error | boolean): void;
  processID?: number;
}

/** A job id: a bigint, as node-postgres returns it (a decimal string). */
export type JobId = string;

/** An error raised by the database, with its SQLSTATE. */
export class JobqError extends Error {
  /** the SQLSTATE, e.g. 22023 (invalid argument), 55000 (lease not held) */
  readonly code: string;
  readonly detail?: string;
  readonly hint?: string;

  constructor(message: string, code: string, detail?: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JobqError';
    this.code = code;
    this.detail = detail;
    this.hint = hint;
  }
}

/** Rethrow a node-postgres error as a JobqError (other errors as they are). */
function wrap(err: unknown): never {
  const e = err as { message?: string; code?: unknown; detail?: string; hint?: string };
  if (e && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code))
    throw new JobqError(e.message ?? 'database error', e.code, e.detail, e.hint, { cause: err });
  throw err;
}

async function run(db: Queryable, text: string, values: unknown[]): Promise<any[]> {
  try {
    return (await db.query(text, values)).rows;
  } catch (err) {
    wrap(err);
  }
}

/** An interval for PostgreSQL: milliseconds, or a string such as '5 minutes'. */
export type Duration = number | string;

function interval(d: Duration | undefined): string | null {
  if (d === undefined || d === null) return null;
  return typeof d === 'number' ? `${d} milliseconds` : d;
}

export interface EnqueueOptions {
  /** the queue (default: the kind's) */
  queue?: string;
  /** lower runs first (default: the kind's) */
  priority?: number;
  /** not before this time (default: now) */
  runAt?: Date;
  /** default: the kind's, or jobq.default_max_attempts */
  maxAttempts?: number;
  /** one live job per owner and key */
  jobKey?: string;
  /** what a second enqueue with the same jobKey does: keep (default), debounce, throttle */
  keyMode?: 'keep' | 'debounce' | 'throttle';
  /** default: the kind's, or jobq.default_timeout */
  timeout?: Duration;
  /** at most the queue's concurrency_per_key jobs with this key run at once */
  concurrencyKey?: string;
}

/** A statement and its parameters, for a query builder's raw query (Kysely: CompiledQuery.raw(text, values)). */
export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * The statement of enqueue(), to run with a query builder in its
 * transaction; it returns one row with the job's id in "id".
 */
export function enqueueStatement(kind: string, payload: unknown, options: EnqueueOptions = {}): Statement {
  return {
    text: `SELECT jobq.enqueue($1, $2::jsonb, queue => $3, priority => $4, run_at => $5,
                         max_attempts => $6, job_key => $7, timeout => $8::interval,
                         key_mode => coalesce($9, 'keep'), concurrency_key => $10) AS id`,
    values: [
      kind,
      JSON.stringify(payload ?? {}),
      options.queue ?? null,
      options.priority ?? null,
      options.runAt ?? null,
      options.maxAttempts ?? null,
      options.jobKey ?? null,
      interval(options.timeout),
      options.keyMode ?? null,
      options.concurrencyKey ?? null,
    ],
  };
}

/**
 * Add a job of a kind with its payload; returns its id (or, with a jobKey
 * held by a live job, that job's).  Pass the client of an open transaction
 * to enqueue in it.
 */
export async function enqueue(db: Queryable, kind: string, payload: unknown, options: EnqueueOptions = {}): Promise<JobId> {
  const st = enqueueStatement(kind, payload, options);
  const rows = await run(db, st.text, st.values);
  return String(rows[0].id);
}

export interface EnqueueManyOptions extends Omit<EnqueueOptions, 'jobKey' | 'keyMode' | 'concurrencyKey'> {
  /** one per payload (null for none) */
  jobKeys?: (string | null)[];
  /** one per payload (null for none) */
  concurrencyKeys?: (string | null)[];
}

/** Add one job per payload in one statement; returns the ids of the jobs added. */
export async function enqueueMany(
  db: Queryable,
  kind: string,
  payloads: unknown[],
  options: EnqueueManyOptions = {},
): Promise<JobId[]> {
  const rows = await run(
    db,
    `SELECT id FROM jobq.enqueue_many($1, $2::jsonb[], queue => $3, priority => $4, run_at => $5,
                                      max_attempts => $6, job_keys => $7, timeout => $8::interval,
                                      concurrency_keys => $9) AS id`,
    [
      kind,
      payloads.map((p) => JSON.stringify(p ?? {})),
      options.queue ?? null,
      options.priority ?? null,
      options.runAt ?? null,
      options.maxAttempts ?? null,
      options.jobKeys ?? null,
      interval(options.timeout),
      options.concurrencyKeys ?? null,
    ],
  );
  return rows.map((r) => String(r.id));
}

/** A claimed job, as the handler gets it. */
export interface Job<P = unknown> {
  id: JobId;
  kind: string;
  queue: string;
  payload: P;
  /** this attempt, from 1 */
  attempt: number;
  maxAttempts: number;
  priority: number;
  runAt: Date;
  createdAt: Date;
  /** the job's timeout as PostgreSQL writes an interval ('00:10:00'), or null: jobq does not enforce it for external jobs */
  timeout: string | null;
  jobKey: string | null;
  concurrencyKey: string | null;
  owner: string;
  leaseId: string;
  leaseUntil: Date;
}

/** What a handler gets beside its job. */
export interface JobContext {
  /** aborted when the job is cancelled (jobq.cancel), its lease is lost, or the worker stops hard */
  signal: AbortSignal;
  /**
   * Run fn in a transaction that also completes the job: its writes and the
   * completion commit together, or neither does (a worker killed before the
   * commit leaves neither; the job runs again after its lease).  The
   * handler's return value is then not recorded again.
   */
  completeInTransaction<R>(fn: (tx: Queryable) => Promise<R>, result?: (r: R) => unknown): Promise<R>;
}

export type Handler<P = any> = (job: Job<P>, ctx: JobContext) => Promise<unknown> | unknown;

/** Throw from a handler: the job cannot succeed, it ends dead without further attempts. */
export class PermanentError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
  }
}

/** Throw from a handler: give the job back, to run after delay, its attempt not counted. */
export class SnoozeError extends Error {
  readonly delay: Duration;
  constructor(delay: Duration, message = 'snoozed') {
    super(message);
    this.name = 'SnoozeError';
    this.delay = delay;
  }
}

export interface WorkerOptions {
  /** where the worker's connections come from */
  pool: PoolLike;
  /** handlers by kind; a job of another kind fails (final) */
  handlers: Record<string, Handler>;
  /** the queues to take jobs from (default: all) */
  queues?: string[];
  /** jobs run at once (default 4) */
  concurrency?: number;
  /**
   * claimed jobs held beside the running ones, started as handlers end
   * (default 4 x concurrency, at most 1000; 0: claim only for free slots).
   * Their leases run from the claim; stop() gives them back.
   */
  prefetch?: number;
  /** lease of each claim, in ms (default 5 minutes) */
  leaseMs?: number;
  /** how often running jobs' leases are renewed, in ms (default a third of the lease) */
  heartbeatMs?: number;
  /** how long one wait for jobs lasts, in ms (default 30 s) */
  waitMs?: number;
  /** retry_after of a failure (default: jobq's backoff) */
  retryAfter?: (job: Job, err: unknown) => Duration | undefined;
  /** called with errors of the worker itself (lost connections, ...) */
  onError?: (err: unknown) => void;
}

interface Running {
  job: Job;
  controller: AbortController;
  ended: boolean;
}

function toJob(row: any): Job {
  return {
    id: String(row.id),
    kind: row.kind,
    queue: row.queue,
    payload: row.payload,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    priority: row.priority,
    runAt: new Date(row.run_at),
    createdAt: new Date(row.created_at),
    timeout: row.timeout ?? null,
    jobKey: row.job_key ?? null,
    concurrencyKey: row.concurrency_key ?? null,
    owner: row.owner,
    leaseId: String(row.lease_id),
    leaseUntil: new Date(row.lease_until),
  };
}

/**
 * Runs jobs of external kinds: claims with CALL jobq.claim_wait (woken at
 * the enqueue's commit, no polling), runs up to concurrency handlers at
 * once, renews their leases, and records each outcome with jobq.complete,
 * jobq.fail or jobq.snooze.
 */
export class Worker {
  private readonly opts: Required<Omit<WorkerOptions, 'queues' | 'retryAfter' | 'onError'>> &
    Pick<WorkerOptions, 'queues' | 'retryAfter' | 'onError'>;
  private readonly running = new Map<string, Running>();
  /** claimed, not started yet */
  private readonly buffered: Job[] = [];
  /** successes waiting to be recorded (complete) */
  private readonly completions: { job: Job; result: string | null; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing = false;
  private stopping = false;
  private loop?: Promise<void>;
  private waiter?: PoolClientLike;
  private heartbeat?: NodeJS.Timeout;
  private slotFreed?: () => void;
  private readonly settled = new Set<Promise<void>>();

  constructor(options: WorkerOptions) {
    const leaseMs = options.leaseMs ?? 300_000;
    if (leaseMs < 1000 || leaseMs > 86_400_000) throw new RangeError('leaseMs must be between 1 s and 1 day');
    const concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000)
      throw new RangeError('concurrency must be an integer between 1 and 1000');
    const prefetch = options.prefetch ?? Math.min(4 * concurrency, 1000);
    if (!Number.isInteger(prefetch) || prefetch < 0 || prefetch > 1000)
      throw new RangeError('prefetch must be an integer between 0 and 1000');
    this.opts = {
      pool: options.pool,
      handlers: options.handlers,
      queues: options.queues,
      concurrency,
      prefetch,
      leaseMs,
      heartbeatMs: options.heartbeatMs ?? Math.floor(leaseMs / 3),
      waitMs: options.waitMs ?? 30_000,
      retryAfter: options.retryAfter,
      onError: options.onError,
    };
  }

  /** Start taking jobs; resolves at once. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.heartbeat = setInterval(() => void this.renew(), this.opts.heartbeatMs);
    this.loop = this.claimLoop();
  }

  /**
   * Stop: take no more jobs, give back the claimed ones that have not
   * started, and wait for the running ones to end (timeoutMs: then abort
   * them, and give them back too).
   */
  async stop(timeoutMs = 30_000): Promise<void> {
    this.stopping = true;
    this.slotFreed?.();
    // a wait in progress is cancelled (pg_cancel_backend): it claims nothing more
    const waiter = this.waiter;
    if (waiter?.processID) {
      try {
        await this.opts.pool.query('SELECT pg_cancel_backend($1)', [waiter.processID]);
      } catch (err) {
        this.report(err);
      }
    }
    await this.loop;
    // the running handlers, then the recording of their outcomes
    const deadline = Date.now() + timeoutMs;
    let aborted = false;
    while (this.settled.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0 && !aborted) {
        for (const r of this.running.values()) r.controller.abort(new Error('worker stopped'));
        aborted = true;
      }
      await Promise.race([
        Promise.all([...this.settled]),
        new Promise((r) => setTimeout(r, aborted ? 1000 : Math.max(left, 1)).unref()),
      ]);
    }
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.loop = undefined;
  }

  /**
   * Stop gracefully on SIGTERM and SIGINT (once): the running jobs finish,
   * the claimed ones not started are given back; then, unless exit is
   * false, the process exits (code 0).
   */
  handleSignals(exit = true): void {
    const onSignal = () =>
      void this.stop().then(() => {
        if (exit) process.exit(0);
      });
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  private report(err: unknown): void {
    if (this.opts.onError) this.opts.onError(err);
  }

  private async claimLoop(): Promise<void> {
    while (!this.stopping) {
      const want = this.opts.concurrency + this.opts.prefetch - this.running.size - this.buffered.length;
      if (want <= 0 || (this.buffered.length > 0 && this.running.size === this.opts.concurrency)) {
        await new Promise<void>((r) => (this.slotFreed = r));
        this.slotFreed = undefined;
        continue;
      }
      let jobs: Job[] = [];
      try {
        this.waiter = await this.opts.pool.connect();
        try {
          const rows = await run(this.waiter, 'CALL jobq.claim_wait($1, $2, $3::interval, $4::interval)', [
            this.opts.queues ?? null,
            want,
            interval(this.opts.leaseMs),
            // with jobs at hand, only what is there now
            interval(this.stopping || this.buffered.length > 0 ? 0 : this.opts.waitMs),
          ]);
          jobs = (rows[0]?.jobs ?? []).map(toJob);
        } finally {
          this.waiter.release();
          this.waiter = undefined;
        }
      } catch (err) {
        if (!(this.stopping && err instanceof JobqError && err.code === '57014')) {
          this.report(err);
          await new Promise((r) => setTimeout(r, 1000));
        }
        continue;
      }
      this.buffered.push(...jobs);
      if (this.stopping) break;
      this.pump();
    }
    // claimed and not started: given back, the attempt not counted
    const left = this.buffered.splice(0);
    await Promise.all(left.map((j) => this.giveBack(j)));
  }

  /** Start buffered jobs while slots are free. */
  private pump(): void {
    while (!this.stopping && this.running.size < this.opts.concurrency && this.buffered.length > 0)
      this.startJob(this.buffered.shift()!);
  }

  private async giveBack(job: Job): Promise<void> {
    try {
      await run(this.opts.pool, 'SELECT jobq.snooze($1, $2, $3::interval)', [job.id, job.leaseId, '0']);
    } catch (err) {
      this.report(err);
    }
  }

  private startJob(job: Job): void {
    const entry: Running = { job, controller: new AbortController(), ended: false };
    this.running.set(job.id, entry);
    const track = (p: Promise<void>) => {
      this.settled.add(p);
      void p.finally(() => this.settled.delete(p));
    };
    // the slot is free once the handler has ended; its outcome is recorded meanwhile
    track(
      this.runJob(entry, (finish) => {
        this.running.delete(job.id);
        track(finish);
        this.pump();
        this.slotFreed?.();
      }),
    );
  }

  /**
   * Run the job's handler; when it has ended, hand the recording of its
   * outcome (complete, fail, snooze) to ended, which frees its slot.
   */
  private async runJob(entry: Running, ended: (finish: Promise<void>) => void): Promise<void> {
    const { job, controller } = entry;
    const handler = this.opts.handlers[job.kind];
    let completedInTx = false;
    const ctx: JobContext = {
      signal: controller.signal,
      completeInTransaction: async <R>(fn: (tx: Queryable) => Promise<R>, result?: (r: R) => unknown) => {
        const client = await this.opts.pool.connect();
        try {
          await client.query('BEGIN');
          const r = await fn(client);
          await run(client, 'SELECT jobq.complete($1, $2, $3::jsonb)', [
            job.id,
            job.leaseId,
            result ? JSON.stringify(result(r) ?? null) : null,
          ]);
          await client.query('COMMIT');
          completedInTx = true;
          return r;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        } finally {
          client.release();
        }
      },
    };
    let outcome: () => Promise<unknown>;
    try {
      if (!handler) throw new PermanentError(`no handler for job kind "${job.kind}"`);
      const result = await handler(job, ctx);
      outcome = async () =>
        completedInTx ? undefined : this.complete(job, result === undefined ? null : JSON.stringify(result));
    } catch (err) {
      outcome = async () => {
        if (completedInTx) return;
        if (err instanceof SnoozeError)
          return run(this.opts.pool, 'SELECT jobq.snooze($1, $2, $3::interval)', [job.id, job.leaseId, interval(err.delay)]);
        const e = err as Error;
        return run(this.opts.pool, 'SELECT jobq.fail($1, $2, $3, $4::interval, $5, $6)', [
          job.id,
          job.leaseId,
          e?.message || String(err),
          interval(this.opts.retryAfter?.(job, err)),
          err instanceof PermanentError,
          e?.stack ?? null,
        ]);
      };
    }
    entry.ended = true;
    ended(
      outcome().then(
        () => undefined,
        (endErr) => {
          // 55000: the lease was lost (another worker has the job): nothing to record
          if (!(endErr instanceof JobqError && endErr.code === '55000')) this.report(endErr);
        },
      ),
    );
  }

  /**
   * Record a success: completions are sent together, one statement and one
   * transaction (one WAL flush) for those that came while the last batch
   * was on its way.  A batch that fails (a lease lost in it) is sent again
   * one by one.
   */
  private complete(job: Job, result: string | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.completions.push({ job, result, resolve, reject });
      if (!this.flushing) void this.flushCompletions();
    });
  }

  private async flushCompletions(): Promise<void> {
    this.flushing = true;
    try {
      while (this.completions.length > 0) {
        const batch = this.completions.splice(0, 1000);
        try {
          await run(
            this.opts.pool,
            `SELECT count(jobq.complete(c.id, c.lease_id, c.result))
               FROM unnest($1::bigint[], $2::bigint[], $3::jsonb[]) AS c(id, lease_id, result)`,
            [batch.map((c) => c.job.id), batch.map((c) => c.job.leaseId), batch.map((c) => c.result)],
          );
          for (const c of batch) c.resolve();
        } catch {
          for (const c of batch)
            await run(this.opts.pool, 'SELECT jobq.complete($1, $2, $3::jsonb)', [c.job.id, c.job.leaseId, c.result]).then(
              () => c.resolve(),
              (err) => c.reject(err),
            );
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Renew the leases of the running and the claimed jobs; abort the running ones cancelled or lost. */
  private async renew(): Promise<void> {
    const byLease = new Map<string, Running[]>();
    const waiting = this.buffered.map((job) => ({ job, controller: new AbortController(), ended: false }));
    for (const r of [...this.running.values(), ...waiting]) {
      if (r.ended) continue;
      const list = byLease.get(r.job.leaseId) ?? [];
      list.push(r);
      byLease.set(r.job.leaseId, list);
    }
    for (const [leaseId, list] of byLease) {
      try {
        const rows = await run(this.opts.pool, 'SELECT id, lease_until, cancel_requested FROM jobq.heartbeat($1::bigint[], $2, $3::interval)', [
          list.map((r) => r.job.id),
          leaseId,
          interval(this.opts.leaseMs),
        ]);
        const held = new Map(rows.map((row) => [String(row.id), row]));
        for (const r of list) {
          const row = held.get(r.job.id);
          if (!row) {
            if (!r.ended) r.controller.abort(new Error('the lease was lost'));
          } else {
            r.job.leaseUntil = new Date(row.lease_until);
            if (row.cancel_requested) r.controller.abort(new Error('the job was cancelled'));
          }
        }
        // claimed jobs not started: lost ones dropped, cancelled ones ended
        for (const r of waiting) {
          const i = this.buffered.indexOf(r.job);
          if (!r.controller.signal.aborted || i < 0) continue;
          this.buffered.splice(i, 1);
          if (held.has(r.job.id))
            await run(this.opts.pool, 'SELECT jobq.fail($1, $2, $3, final => true)', [r.job.id, r.job.leaseId, 'cancelled before it started']);
        }
      } catch (err) {
        this.report(err);
      }
    }
  }
}
