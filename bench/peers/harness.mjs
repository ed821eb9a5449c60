// harness.mjs: runs every scenario of bench/run.sh for jobq and its peers
// on one cluster, prints one table and writes it (with the settings, the
// versions and the machine) to $RESULTS.
//
// Started by bench/run.sh, which builds jobq, installs the peers, starts the
// cluster and passes PGHOST, PGPORT, PGUSER, PGDATA, PG_BIN, JOBQ_ROOT,
// RESULTS and the sizes and subsets (JOBS, STEADY, PICKUP, RATE, SINGLE,
// WORKERS, PICKUP_WORKERS, SYNC, BATCH, LOCAL_QUEUE, ONLY, SYSTEMS; see
// bench/README.md).  Scenarios (ONLY takes a comma-separated subset):
//   enqueue   single-call enqueues from one connection (workers stopped)
//   drain     JOBS no-op jobs enqueued in bulk, then the time to finish them
//   rows      the same with jobs that each insert one row
//   pickup    PICKUP jobs enqueued one by one at RATE/s into idle workers
//   ceiling   raw DELETE ... FOR UPDATE SKIP LOCKED LIMIT 100 with pgbench
//   steady    STEADY jobs through each system: claim cost, table size, memory
// Each system has its own database and a warm-up (ANALYZE with a backlog,
// see warmUp).  Between runs the finished jobs a system keeps are deleted
// and its tables vacuumed (not analyzed), and every timed run starts after
// a CHECKPOINT.

import pg from 'pg';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nowUs } from './clock.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const CFG = {
	jobs: num(env.JOBS, 100000),
	steady: num(env.STEADY, 1000000),
	pickup: num(env.PICKUP, 1000),
	rate: num(env.RATE, 50),
	single: num(env.SINGLE, 3000),
	workers: (env.WORKERS || '2 4').trim().split(/\s+/).map(Number),
	sync: (env.SYNC || 'on off').trim().split(/\s+/),
	batch: num(env.BATCH, 500),            // jobq.batch_size and pg-boss's batchSize
	localQueue: num(env.LOCAL_QUEUE, 500), // graphile-worker's localQueue.size (its performance page)
	pickupWorkers: num(env.PICKUP_WORKERS, 2),
	only: env.ONLY ? new Set(env.ONLY.split(',')) : null,
};
const want = (s) => !CFG.only || CFG.only.has(s);
const ALL_SYSTEMS = ['jobq', 'graphile-worker', 'pg-boss'];
// SYSTEMS narrows a run to some of them (for trying settings; the table of
// BENCHMARKS.md always has all three).
const SYSTEMS = env.SYSTEMS ? env.SYSTEMS.trim().split(/[\s,]+/) : ALL_SYSTEMS;
const DB = { 'jobq': 'bench_jobq', 'graphile-worker': 'bench_graphile', 'pg-boss': 'bench_pgboss' };
const START = Date.now();

function log(msg) {
	const s = ((Date.now() - START) / 1000).toFixed(0).padStart(5);
	process.stderr.write(`[${s}s] ${msg}\n`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const connString = (db, app) =>
	`postgres:///${db}?host=${encodeURIComponent(env.PGHOST)}&port=${env.PGPORT}` +
	`&user=${env.PGUSER || 'postgres'}` + (app ? `&application_name=${app}` : '');

// ---------------------------------------------------------------- clients

const clients = new Map();
async function client(db) {
	if (!clients.has(db)) {
		const c = new pg.Client({ connectionString: connString(db, 'bench-harness') });
		await c.connect();
		clients.set(db, c);
	}
	return clients.get(db);
}
async function q(db, text, values) {
	return (await client(db)).query(text, values);
}
async function one(db, text, values) {
	const r = await q(db, text, values);
	return r.rows[0] ? Object.values(r.rows[0])[0] : undefined;
}
async function setConf(name, value) {
	if (name === 'jobq.retention')
		jobq.retention = String(value);
	await q('postgres', `ALTER SYSTEM SET ${name} = '${value}'`);
	await q('postgres', 'SELECT pg_reload_conf()');
	await sleep(300);
}
async function checkpoint() {
	await q('postgres', 'CHECKPOINT');
}

// ------------------------------------------------------------ /proc memory

function memOf(pid) {
	try {
		const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
		const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
		const kb = (txt, key) => Number((txt.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm')) || [])[1] || NaN);
		return { rss: kb(status, 'VmRSS'), anon: kb(status, 'RssAnon'), pss: kb(rollup, 'Pss') };
	} catch {
		return null;
	}
}
function sumMem(pids) {
	const m = pids.map(memOf).filter(Boolean);
	return {
		n: m.length,
		rss: m.reduce((a, x) => a + x.rss, 0),
		pss: m.reduce((a, x) => a + x.pss, 0),
		anon: m.reduce((a, x) => a + x.anon, 0),
	};
}

// ------------------------------------------------------------- the systems

// What every system offers the scenarios:
//   setup()             install its schema and the benchmark tables
//   start(n) / stop()   run n workers (jobq.workers, or the peer's concurrency)
//   bulk(kind, from, n) enqueue jobs from..from+n-1 of a kind in one call
//   single(kind, i)     enqueue one job in one call
//   backlog()           jobs not finished yet
//   empty()             whether no job is left unfinished
//   mark()              what span() and verify() count from (before a drain)
//   span(kind, m)       { first, last } in µs: the first job's start and the
//                       last one's finish since the mark, from the database
//                       (jobq's jobq._done when it keeps history, pg-boss's
//                       job table), or from the worker process's handlers
//                       (graphile-worker deletes its jobs); null if unknown
//   verify(kind, n, m)  throws unless n jobs of the kind succeeded since the
//                       mark and none failed
//   clean()             delete the finished jobs it keeps; vacuum its tables
//   memory()            { n, rss, pss } of the processes serving its workers
const jobq = {
	name: 'jobq',
	db: DB.jobq,
	retention: '1d',   // jobq.retention as setConf last set it (the default at first)
	async setup() {
		const db = this.db;
		await q(db, 'CREATE EXTENSION jobq');
		await q(db, `CREATE FUNCTION public.noop(p jsonb) RETURNS void LANGUAGE sql AS 'SELECT'`);
		await q(db, `CREATE FUNCTION public.bench_row(p jsonb) RETURNS void LANGUAGE plpgsql AS
			$$BEGIN INSERT INTO public.bench_rows (i) VALUES ((p->>'i')::bigint); END$$`);
		await q(db, `SELECT jobq.register_kind('noop', 'public.noop(jsonb)')`);
		await q(db, `SELECT jobq.register_kind('bench_row', 'public.bench_row(jsonb)')`);
		await q(db, `CREATE FUNCTION public.pickup(p jsonb) RETURNS void LANGUAGE plpgsql AS
			$$BEGIN INSERT INTO public.pickups (i, started_at) VALUES ((p->>'i')::bigint, clock_timestamp()); END$$`);
		await q(db, `SELECT jobq.register_kind('bench_pickup', 'public.pickup(jsonb)')`);
		// JOBQ_SETUP: SQL run once after the set-up, to measure jobq with
		// settings of its own (queues created, limits that do not bind ...)
		if (env.JOBQ_SETUP)
			await q(db, env.JOBQ_SETUP);
		this.version = await one(db, `SELECT extversion FROM pg_extension WHERE extname = 'jobq'`);
	},
	payloads(kind, from, n) {
		const out = new Array(n);
		for (let k = 0; k < n; k++) {
			const i = from + k;
			out[k] = kind === 'row'
				? JSON.stringify({ sql: `INSERT INTO public.bench_rows (i) VALUES (${i})` })
				: kind === 'pickup'
					? JSON.stringify({ sql: `INSERT INTO public.pickups (i, started_at) VALUES (${i}, clock_timestamp())` })
					: JSON.stringify({ i });
		}
		return out;
	},
	kindName: (kind) => ({ noop: 'noop', fnrow: 'bench_row', fnpickup: 'bench_pickup' })[kind] ?? 'sql',
	async bulk(kind, from, n) {
		const payloads = this.payloads(kind.startsWith('fn') ? 'noop' : kind, from, n);
		await q(this.db, {
			name: 'jobq-bulk',
			text: 'SELECT count(*) FROM jobq.enqueue_many($1, $2::jsonb[])',
			values: [this.kindName(kind), payloads],
		});
	},
	async single(kind, i) {
		await q(this.db, {
			name: 'jobq-single',
			text: 'SELECT jobq.enqueue($1, $2::jsonb)',
			values: [this.kindName(kind), this.payloads(kind.startsWith('fn') ? 'noop' : kind, i, 1)[0]],
		});
	},
	async backlog() {
		return Number(await one(this.db, 'SELECT count(*) FROM jobq._queue'));
	},
	async empty() {
		return one(this.db, 'SELECT NOT EXISTS (SELECT 1 FROM jobq._queue)');
	},
	async pids() {
		return (await q(this.db, `SELECT pid FROM jobq.workers WHERE datname = current_database() AND lane = 'sql'`)).rows.map((r) => r.pid);
	},
	// the workers' counters (jobq.workers, since each worker started)
	async mark() {
		return (await q(this.db, `SELECT coalesce(sum(jobs_succeeded), 0)::float8 AS ok, coalesce(sum(jobs_failed), 0)::float8 AS failed
			FROM jobq.workers WHERE datname = current_database() AND lane = 'sql'`)).rows[0];
	},
	// jobq._done keeps started_at (the claim) and finished_at (the move to
	// jobq._done, clock_timestamp()) unless jobq.retention = 0 deleted them
	async span() {
		const r = (await q(this.db, `SELECT (extract(epoch FROM min(started_at)) * 1e6)::float8 AS first,
			(extract(epoch FROM max(finished_at)) * 1e6)::float8 AS last, count(*)::float8 AS n
			FROM jobq._done WHERE status = 'succeeded'`)).rows[0];
		return r.n > 0 ? { first: r.first, last: r.last } : null;
	},
	async verify(kind, n, m) {
		const now = await this.mark();
		const ok = now.ok - m.ok;
		const failed = now.failed - m.failed;
		const left = Number(await one(this.db, 'SELECT count(*) FROM jobq._queue'));
		const notOk = Number(await one(this.db, `SELECT count(*) FROM jobq._done WHERE status <> 'succeeded'`));
		if (ok !== n || failed !== 0 || left !== 0 || notOk !== 0)
			throw new Error(`jobq: ${kind}: ${ok} of ${n} jobs succeeded (${failed} failed attempts, ${left} left in jobq._queue, ${notOk} dead or cancelled)`);
		return ok;
	},
	async start(n) {
		await setConf('jobq.workers', n);
		// With a pool of workers started on demand (jobq.databases exists),
		// workers come when jobs are due: nothing to wait for here.
		this.pool ??= await one(this.db, `SELECT to_regclass('jobq.databases') IS NOT NULL`);
		if (this.pool)
			return;
		for (let t = 0; t < 200; t++) {
			const ready = Number(await one(this.db,
				`SELECT count(*) FROM jobq.workers WHERE datname = current_database() AND lane = 'sql' AND state <> 'starting'`));
			if (ready === n)
				return;
			await sleep(50);
		}
		throw new Error(`jobq: ${n} workers did not start`);
	},
	async stop() {
		await setConf('jobq.workers', 0);
		for (let t = 0; t < 400; t++) {
			if ((await this.pids()).length === 0)
				return;
			await sleep(50);
		}
		throw new Error('jobq: workers did not stop');
	},
	async clean() {
		await q(this.db, 'DELETE FROM jobq._done');
		await q(this.db, 'VACUUM jobq._queue, jobq._done');
	},
	async memory() {
		return sumMem(await this.pids());
	},
};

class Peer {
	constructor(name) {
		this.name = name;
		this.db = DB[name];
		this.proc = null;
		this.statsWaiter = null;
	}
	// The worker process's handler counts since the last call (see
	// peer-worker.mjs): { task: { n, first, last } }.
	async handlerStats() {
		const p = new Promise((resolve) => { this.statsWaiter = resolve; });
		this.proc.stdin.write('stats\n');
		return p;
	}
	async mark() {
		await this.handlerStats();   // start counting afresh
		return {};
	}
	async start(n) {
		const settings = { db: this.db, concurrency: n, localQueue: CFG.localQueue, batch: CFG.batch };
		const child = spawn(env.NODE || process.execPath, [path.join(HERE, 'peer-worker.mjs'), this.name, JSON.stringify(settings)], {
			stdio: ['pipe', 'pipe', 'inherit'],
		});
		this.proc = child;
		this.exited = new Promise((r) => child.on('exit', r));
		await new Promise((resolve, reject) => {
			let buf = '';
			child.stdout.on('data', (d) => {
				buf += d;
				let nl;
				while ((nl = buf.indexOf('\n')) >= 0) {
					const line = buf.slice(0, nl);
					buf = buf.slice(nl + 1);
					if (line === 'ready')
						resolve();
					else if (line.startsWith('stats ') && this.statsWaiter) {
						const w = this.statsWaiter;
						this.statsWaiter = null;
						w(JSON.parse(line.slice(6)));
					}
				}
			});
			child.on('exit', (code) => reject(new Error(`${this.name} worker exited with ${code}`)));
		});
		await sleep(500);   // let its pools connect and its first polls settle
	}
	async stop() {
		if (!this.proc)
			return;
		this.proc.kill('SIGTERM');
		await this.exited;
		this.proc = null;
	}
	async memory() {
		// the node process and the server backends of its connections
		const backends = (await q('postgres',
			`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [`bench-${this.name}`])).rows.map((r) => r.pid);
		const node = memOf(this.proc.pid);
		const be = sumMem(backends);
		return { node, backends: be, n: 1 + be.n, rss: node.rss + be.rss, pss: node.pss + be.pss, anon: node.anon + be.anon };
	}
}

const graphile = new Peer('graphile-worker');
Object.assign(graphile, {
	async setup() {
		const gw = await import('graphile-worker');
		this.lib = gw;
		await gw.runMigrations({ connectionString: connString(this.db), logger: quietGraphileLogger(gw) });
		this.utils = await gw.makeWorkerUtils({ connectionString: connString(this.db, 'bench-harness'), logger: quietGraphileLogger(gw) });
		this.version = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules/graphile-worker/package.json'))).version;
	},
	async bulk(kind, from, n) {
		const specs = new Array(n);
		for (let k = 0; k < n; k++)
			specs[k] = { identifier: kind, payload: { i: from + k } };
		await this.utils.addJobs(specs);
	},
	async single(kind, i) {
		await this.utils.addJob(kind, { i });
	},
	async backlog() {
		return Number(await one(this.db, 'SELECT count(*) FROM graphile_worker._private_jobs'));
	},
	async empty() {
		return one(this.db, 'SELECT NOT EXISTS (SELECT 1 FROM graphile_worker._private_jobs)');
	},
	// graphile-worker deletes a job once it succeeded and keeps a failed
	// one (to retry it): none left and n handlers returned is n successes.
	async span(kind) {
		this.lastStats = await this.handlerStats();
		const c = this.lastStats[kind];
		return c ? { first: c.first, last: c.last } : null;
	},
	async verify(kind, n) {
		const c = this.lastStats?.[kind] ?? (await this.handlerStats())[kind];
		this.lastStats = null;
		const done = c ? c.n : 0;
		const left = Number(await one(this.db, 'SELECT count(*) FROM graphile_worker._private_jobs'));
		if (done !== n || left !== 0)
			throw new Error(`graphile-worker: ${kind}: ${done} of ${n} handlers returned, ${left} jobs left`);
		return done;
	},
	async clean() {
		await q(this.db, 'VACUUM graphile_worker._private_jobs');
	},
});

const pgboss = new Peer('pg-boss');
Object.assign(pgboss, {
	async setup() {
		const { PgBoss } = await import('pg-boss');
		// The harness's instance: migrations, queues, producing.  No
		// maintenance (supervise): its index-bloat pass ran REINDEX INDEX
		// CONCURRENTLY during timed runs; the harness cleans up between runs.
		this.boss = new PgBoss({ connectionString: connString(this.db, 'bench-harness'), max: 4, schedule: false, supervise: false });
		this.boss.on('error', (e) => log(`pg-boss error: ${e.message}`));
		await this.boss.start();
		for (const name of ['noop', 'row', 'pickup'])
			await this.boss.createQueue(name, { notify: true });
		this.version = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules/pg-boss/package.json'))).version;
	},
	async bulk(kind, from, n) {
		const jobs = new Array(n);
		for (let k = 0; k < n; k++)
			jobs[k] = { data: { i: from + k } };
		await this.boss.insert(kind, jobs);
	},
	async single(kind, i) {
		await this.boss.send(kind, { i });
	},
	// pg-boss's fetch is an UPDATE ... FROM (CTE of the next jobs): when the
	// statistics of its job table miss the queue (an autoanalyze that ran
	// while only another queue had jobs), the planner expects one row and
	// loops over the CTE once per job of the queue: 13 s per fetch of 500
	// jobs with 100,000 queued.  So the harness keeps the statistics of the
	// warm-up (every queue with a backlog) by turning autoanalyze off on
	// pg-boss's job tables; autovacuum's VACUUM still runs.
	async freezeStats() {
		const tables = (await q(this.db, `
			SELECT c.oid::regclass::text AS t FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			 WHERE i.inhparent = 'pgboss.job'::regclass`)).rows.map((r) => r.t);
		for (const t of tables)
			await q(this.db, `ALTER TABLE ${t} SET (autovacuum_analyze_threshold = 2000000000, autovacuum_analyze_scale_factor = 100)`);
		notes.push(`pg-boss: autoanalyze turned off on ${tables.join(', ')} after the warm-up's ANALYZE (see harness.mjs, freezeStats)`);
	},
	async backlog() {
		return Number(await one(this.db, `SELECT count(*) FROM pgboss.job WHERE state < 'completed'`));
	},
	async empty() {
		return one(this.db, `SELECT NOT EXISTS (SELECT 1 FROM pgboss.job WHERE state < 'completed')`);
	},
	// empty() counts failed (and cancelled) jobs as finished: count the
	// completed ones.  Its job table keeps started_on and completed_on.
	async span(kind) {
		const r = (await q(this.db, `SELECT (extract(epoch FROM min(started_on)) * 1e6)::float8 AS first,
			(extract(epoch FROM max(completed_on)) * 1e6)::float8 AS last, count(*)::float8 AS n
			FROM pgboss.job WHERE name = $1 AND state = 'completed'`, [kind])).rows[0];
		return r.n > 0 ? { first: r.first, last: r.last } : null;
	},
	async verify(kind, n) {
		const r = (await q(this.db, `SELECT count(*) FILTER (WHERE state = 'completed')::float8 AS ok, count(*)::float8 AS total
			FROM pgboss.job WHERE name = $1`, [kind])).rows[0];
		if (r.ok !== n || r.total !== n)
			throw new Error(`pg-boss: ${kind}: ${r.ok} of ${n} jobs completed (${r.total} jobs of the queue in all)`);
		return r.ok;
	},
	async clean() {
		for (const name of ['noop', 'row', 'pickup'])
			await this.boss.deleteStoredJobs(name);
		await q(this.db, 'VACUUM');
	},
});

function quietGraphileLogger(gw) {
	return new gw.Logger(() => (level, message) => {
		if (level === 'error')
			log(`graphile-worker: ${message}`);
	});
}

const SYS = { 'jobq': jobq, 'graphile-worker': graphile, 'pg-boss': pgboss };

// --------------------------------------------------------------- results

const results = [];   // { scenario, sync, workers, unit, values: {system: number}, better }
function record(row) {
	results.push(row);
	const v = SYSTEMS.map((s) => (row.values[s] === undefined ? '' : `${s}=${fmt(row.values[s], row.unit)}`)).join(' ');
	log(`  ${row.scenario} [sync ${row.sync}, ${row.workers}]: ${v}`);
}
const notes = [];

function fmt(v, unit) {
	if (v === undefined || v === null || Number.isNaN(v))
		return '—';
	if (typeof v === 'string')
		return v;
	if (unit === 'ms')
		return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
	if (unit === '%')
		return `${v.toFixed(0)} %`;
	if (unit === 'MiB')
		return v.toFixed(1);
	if (unit === '×')
		return `${v.toFixed(2)}×`;
	if (unit === 'flushes')
		return v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US');
	if (unit === 'buffers' || unit === 'jobs' || unit === 'rows' || unit === 'runs')
		return Math.round(v).toLocaleString('en-US');
	return Math.round(v).toLocaleString('en-US');
}

// -------------------------------------------------------------- scenarios

// Poll every `every` ms (20 by default) with NOT EXISTS (a count(*) of a
// 100,000-row table costs about 15 ms, which on 2 cores is taken from the
// workers).
async function waitEmpty(sys, timeoutMs = 900000, every = 20) {
	const t0 = Date.now();
	for (;;) {
		if (await sys.empty())
			return;
		if (Date.now() - t0 > timeoutMs)
			throw new Error(`${sys.name}: backlog not empty after ${timeoutMs / 1000} s`);
		await sleep(every);
	}
}

// WAL flushes (fsync or fdatasync of WAL files) of the whole cluster so far,
// as the statistics system has them: pg_stat_wal.wal_sync up to
// PostgreSQL 17, pg_stat_io's fsyncs of object wal from 18.  A process
// reports its counts at most once a second, and at exit: read this once
// the workers being measured have stopped.
let PG_MAJOR = 0;
async function walSyncs() {
	await q('postgres', 'SELECT pg_stat_clear_snapshot()');
	return Number(await one('postgres', PG_MAJOR >= 18
		? `SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal'`
		: 'SELECT wal_sync FROM pg_stat_wal'));
}

// Once per system, before its first measurement: JOBS jobs of the kinds the
// scenarios use, enqueued with no worker running, ANALYZE of its tables while they hold that
// backlog, then drained.  The planner statistics then describe a backlog
// rather than an empty queue: an ANALYZE of pg-boss's empty job table made
// its fetch take seconds per batch once 100,000 jobs arrived.  Between runs
// the harness only VACUUMs; autovacuum is left alone.
async function warmUp(sys) {
	const half = Math.ceil(CFG.jobs / 2);
	log(`${sys.name}: warm-up (${CFG.jobs} jobs of the benchmark's kinds, ANALYZE with the backlog)`);
	await sys.bulk('noop', 1, half);
	await sys.bulk('row', 1, half);
	await sys.bulk('pickup', 1, Math.min(CFG.pickup, half));
	await q(sys.db, 'ANALYZE');
	if (sys.freezeStats)
		await sys.freezeStats();
	await sys.start(CFG.workers[0]);
	await waitEmpty(sys, 1800000);
	await sys.stop();
	await sys.clean();
	await q(sys.db, 'TRUNCATE public.bench_rows, public.pickups');
}

// Start n workers, bulk-enqueue JOBS jobs into them, wait until none is
// left, check that every job succeeded (sys.verify), then stop them.  The
// drain is timed from the first job's start to the last one's finish as
// the database has them (sys.span); where nothing keeps them (jobq with
// jobq.retention = 0), from the enqueue's return (its commit) until the
// queue is empty, polled every 2 ms.  The WAL flushes are the cluster's,
// from the enqueue to the workers' exit.  onDrained(sys) runs before the
// workers stop (memory).
async function drainRun(sys, kind, n, onDrained) {
	await sys.clean();
	if (kind !== 'noop')
		await q(sys.db, 'TRUNCATE public.bench_rows');
	await sys.start(n);
	await checkpoint();
	const m = await sys.mark();
	const syncs0 = await walSyncs();
	const t0 = performance.now();
	await sys.bulk(kind, 1, CFG.jobs);
	const t1 = performance.now();
	await waitEmpty(sys, 900000, sys === jobq && jobq.retention === '0' ? 2 : 20);
	const t2 = performance.now();
	const span = await sys.span(kind);
	await sys.verify(kind === 'fnrow' ? 'row' : kind, CFG.jobs, m);
	if (kind !== 'noop') {
		const rows = Number(await one(sys.db, 'SELECT count(*) FROM public.bench_rows'));
		if (rows !== CFG.jobs)
			throw new Error(`${sys.name}: ${rows} rows inserted, expected ${CFG.jobs}`);
	}
	if (onDrained)
		await onDrained(sys);
	await sys.stop();
	await sleep(200);
	const flushes = (await walSyncs()) - syncs0;
	const polled = CFG.jobs / ((t2 - t1) / 1000);
	const timed = span ? CFG.jobs / ((span.last - span.first) / 1e6) : null;
	log(`    ${sys.name} ${kind}: ${fmt(timed ?? polled)} jobs/s (${timed ? 'first start to last finish' : 'polled'}; polled ${fmt(polled)}), ` +
		`${(1000 * flushes / CFG.jobs).toFixed(1)} WAL flushes per 1,000 jobs`);
	return { enqueue: CFG.jobs / ((t1 - t0) / 1000), drain: timed ?? polled, timed: !!timed, flushes: (1000 * flushes) / CFG.jobs };
}

// Single enqueues from one connection, in rounds that alternate with as
// many plain INSERTs of a job-like row (the floor, from another connection
// to the same cluster), so that the system and its floor share the moments
// of a machine whose WAL flushes speed up and slow down from one minute to
// the next.  The first of the two goes first in every other round.
async function singleRun(sys) {
	const ROUNDS = 6;
	const time = { sys: 0, floor: 0 };
	const calls = {
		sys: async (i) => sys.single('noop', i),
		floor: async (i) => q(DB.jobq, plainInsert(i)),
	};
	await sys.clean();
	await floorTable();
	let done = 0;
	for (let r = 0; r < ROUNDS; r++) {
		const n = Math.round((CFG.single * (r + 1)) / ROUNDS) - done;
		for (const which of r % 2 ? ['floor', 'sys'] : ['sys', 'floor']) {
			const t0 = performance.now();
			for (let k = 1; k <= n; k++)
				await calls[which](done + k);
			time[which] += performance.now() - t0;
		}
		done += n;
	}
	return { rate: done / (time.sys / 1000), floor: done / (time.floor / 1000) };
}

// The floors, measured in jobq's database on a table of its own: a plain
// INSERT of a job-like row, one statement per call from one connection, as
// fast as it goes (the floor of a single enqueue) and paced at RATE into an
// idle server (the part of a pickup latency that is the enqueue's own round
// trip and commit).
const FLOOR_TABLE = `CREATE TABLE IF NOT EXISTS public.plain_jobs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL,
	payload jsonb NOT NULL, run_at timestamptz NOT NULL DEFAULT now())`;
const plainInsert = (i) => ({
	name: 'plain-insert',
	text: 'INSERT INTO public.plain_jobs (kind, payload) VALUES ($1, $2::jsonb)',
	values: ['noop', JSON.stringify({ i })],
});

// Call fn(i) for i = 1..count at RATE per second, each at its due time.
async function paced(count, fn) {
	const period = 1000 / CFG.rate;
	const start = performance.now() + 100;
	for (let i = 1; i <= count; i++) {
		const wait = start + (i - 1) * period - performance.now();
		if (wait > 0)
			await sleep(wait);
		await fn(i);
	}
}

async function floorTable() {
	await q(DB.jobq, FLOOR_TABLE);
	await q(DB.jobq, 'TRUNCATE public.plain_jobs');
	await checkpoint();
}

async function floorPickupRun() {
	await floorTable();
	await sleep(1000);
	const lat = [];
	await paced(CFG.pickup, async (i) => {
		const a = performance.now();
		await q(DB.jobq, plainInsert(i));
		lat.push(performance.now() - a);
	});
	lat.sort((a, b) => a - b);
	return lat[Math.ceil(0.5 * lat.length) - 1];
}

async function pickupRun(sys, kind = 'pickup') {
	await sys.clean();
	await q(sys.db, 'TRUNCATE public.pickups');
	await checkpoint();
	await sleep(1000);
	const t0s = new Float64Array(CFG.pickup + 1);
	await paced(CFG.pickup, async (i) => {
		t0s[i] = nowUs();
		await sys.single(kind, i);
	});
	for (let t = 0; ; t++) {
		if (Number(await one(sys.db, 'SELECT count(*) FROM public.pickups')) >= CFG.pickup)
			break;
		if (t > 3000)
			throw new Error(`${sys.name}: pickups did not all arrive`);
		await sleep(20);
	}
	const rows = (await q(sys.db,
		`SELECT i, (extract(epoch FROM started_at) * 1e6)::float8 AS us FROM public.pickups`)).rows;
	const lat = rows.map((r) => (Number(r.us) - t0s[r.i]) / 1000).sort((a, b) => a - b);
	const pct = (p) => lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)];
	return { p50: pct(50), p99: pct(99), max: lat[lat.length - 1], min: lat[0] };
}

// How far nowUs() is from the database's clock_timestamp(): the pickup
// latencies mix the two.
async function clockCheck() {
	const offs = [];
	for (let k = 0; k < 21; k++) {
		const a = nowUs();
		const db = Number(await one('postgres', `SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::float8`));
		const b = nowUs();
		offs.push({ off: db - (a + b) / 2, rtt: b - a });
	}
	offs.sort((x, y) => x.rtt - y.rtt);
	return offs[0];
}

// pgbench's clients each delete BATCH rows per transaction, the batch of
// jobq's claim and of pg-boss's fetch.  Returns rows/s and the cluster's
// WAL flushes per 1,000 rows.
async function ceilingRun(clients_) {
	const db = DB.jobq;
	await q(db, 'DROP TABLE IF EXISTS public.ceiling');
	await q(db, `CREATE TABLE public.ceiling (
		id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload jsonb NOT NULL)`);
	await q(db, `INSERT INTO public.ceiling (payload)
		SELECT jsonb_build_object('i', g) FROM generate_series(1, $1) g`, [CFG.jobs]);
	await q(db, 'VACUUM ANALYZE public.ceiling');
	await checkpoint();
	const script = path.join(os.tmpdir(), 'jobq-bench-ceiling.sql');
	fs.writeFileSync(script, 'DELETE FROM public.ceiling WHERE id IN ' +
		`(SELECT id FROM public.ceiling ORDER BY id LIMIT ${CFG.batch} FOR UPDATE SKIP LOCKED);\n`);
	const txPerClient = Math.ceil(CFG.jobs / CFG.batch / clients_);
	const syncs0 = await walSyncs();
	const out = execFileSync(path.join(env.PG_BIN, 'pgbench'), [
		'-n', '-M', 'prepared', '-c', String(clients_), '-j', String(Math.min(clients_, os.cpus().length)),
		'-t', String(txPerClient), '-f', script, '-h', env.PGHOST, '-p', env.PGPORT, '-U', env.PGUSER || 'postgres', db,
	], { encoding: 'utf8' });
	const tps = Number((out.match(/tps = ([\d.]+) \(without initial connection time\)/) || [])[1]);
	await sleep(200);
	const flushes = (await walSyncs()) - syncs0;
	const left = Number(await one(db, 'SELECT count(*) FROM public.ceiling'));
	await q(db, 'DROP TABLE public.ceiling');
	if (left !== 0)
		notes.push(`ceiling with ${clients_} clients left ${left} rows (not a multiple of ${CFG.batch} per client)`);
	return { rate: tps * CFG.batch, flushes: (1000 * flushes) / CFG.jobs };
}

// STEADY no-op jobs through a system with n workers: fed in chunks of
// 10,000 whenever fewer than 20,000 are waiting.  Compares the start and the
// end: throughput, the claim (for the peers, from pg_stat_statements: the
// statements of its database with SKIP LOCKED; jobq claims without SQL and
// counts its claims in jobq.workers), the size of the table the
// workers claim from, what autovacuum knows of it, and memory.  jobq runs
// with jobq.retention = 1d (the default: history kept in jobq._done); pg-boss
// keeps its completed jobs in the table it claims from, as it does by
// default; graphile-worker deletes them.
const CLAIM_TABLE = { 'jobq': 'jobq._queue', 'graphile-worker': 'graphile_worker._private_jobs', 'pg-boss': 'pgboss.job_common' };

async function steadyRun(sys, n) {
	const db = sys.db;
	const table = CLAIM_TABLE[sys.name];
	const chunk = 10000;
	const window = Math.max(1000, Math.floor(CFG.steady / 10));
	await sys.clean();
	await q(db, `VACUUM FULL ${table}`);
	await setConf('pg_stat_statements.track', 'all');
	await q(db, 'SELECT pg_stat_statements_reset()');
	const size = async () => ({
		heap: Number(await one(db, `SELECT pg_relation_size('${table}')`)),
		total: Number(await one(db, `SELECT pg_total_relation_size('${table}')`)),
		history: sys === jobq ? Number(await one(db, `SELECT pg_total_relation_size('jobq._done')`)) : NaN,
	});
	const claimStats = async () => (await q(db, sys === jobq ? `
		SELECT coalesce(sum(claims), 0)::float8 AS calls, coalesce(sum(claim_time), 0)::float8 AS ms,
		       coalesce(sum(claim_buffers), 0)::float8 AS blks, coalesce(sum(jobs_claimed), 0)::float8 AS rows
		  FROM jobq.workers WHERE datname = current_database()` : `
		SELECT coalesce(sum(calls), 0)::float8 AS calls, coalesce(sum(total_exec_time), 0)::float8 AS ms,
		       coalesce(sum(shared_blks_hit + shared_blks_read), 0)::float8 AS blks, coalesce(sum(rows), 0)::float8 AS rows
		  FROM pg_stat_statements
		 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		   AND query ILIKE '%SKIP LOCKED%' AND query NOT ILIKE '%pg_stat_statements%'`)).rows[0];
	// What autovacuum knows of the table: counts reach the statistics system
	// only when the processes that made them report them.
	const vacStats = async () => (await q(db, `SELECT n_dead_tup::float8 AS dead, n_tup_del::float8 AS del,
		n_tup_upd::float8 AS upd, autovacuum_count::float8 AS autovacuums
		FROM pg_stat_user_tables WHERE relid = '${table}'::regclass`)).rows[0];
	const before = await size();
	const statsBefore = await vacStats();
	await checkpoint();
	await sys.start(n);
	const mark = await sys.mark();
	const memBefore = await sys.memory();
	const windows = [];
	let enq = 0;
	let winStart = performance.now();
	let winStats = await claimStats();
	let nextMark = window;
	const t0 = performance.now();
	for (;;) {
		const backlog = await sys.backlog();
		const done = enq - backlog;
		while (done >= nextMark) {
			const now = performance.now();
			const st = await claimStats();
			const calls = st.calls - winStats.calls;
			windows.push({
				upto: nextMark,
				rate: window / ((now - winStart) / 1000),
				claimMs: calls ? (st.ms - winStats.ms) / calls : NaN,
				claimBlks: calls ? (st.blks - winStats.blks) / calls : NaN,
				claimRows: calls ? (st.rows - winStats.rows) / calls : NaN,
				heap: Number(await one(db, `SELECT pg_relation_size('${table}')`)),
			});
			winStart = now;
			winStats = st;
			nextMark += window;
		}
		if (done >= CFG.steady)
			break;
		if (enq < CFG.steady && backlog < 2 * chunk) {
			const k = Math.min(chunk, CFG.steady - enq);
			await sys.bulk('noop', enq + 1, k);
			enq += k;
		} else {
			await sleep(50);
		}
	}
	const seconds = (performance.now() - t0) / 1000;
	if (sys !== jobq)
		await sys.span('noop');   // graphile-worker: the handler counts verify() checks
	await sys.verify('noop', CFG.steady, mark);
	const memAfter = await sys.memory();
	const after = await size();
	const statsRunning = await vacStats();
	await sys.stop();
	await sleep(1500);
	const statsStopped = await vacStats();
	await setConf('pg_stat_statements.track', 'none');
	await sys.clean();
	return { n, table, seconds, before, after, windows, memBefore, memAfter, statsBefore, statsRunning, statsStopped };
}

// ------------------------------------------------------------------ main

async function main() {
	log(`settings: ${JSON.stringify({ ...CFG, only: CFG.only ? [...CFG.only] : null })}`);
	const loadStart = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
	PG_MAJOR = Math.floor(Number(await one('postgres', 'SHOW server_version_num')) / 10000);
	for (const s of ALL_SYSTEMS)
		await q('postgres', `CREATE DATABASE ${DB[s]}`);
	for (const s of ALL_SYSTEMS) {
		await q(DB[s], 'CREATE TABLE public.bench_rows (i bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())');
		await q(DB[s], 'CREATE TABLE public.pickups (i bigint PRIMARY KEY, started_at timestamptz NOT NULL)');
	}
	for (const s of ALL_SYSTEMS)
		await q(DB[s], 'CREATE EXTENSION pg_stat_statements');
	await jobq.setup();
	await graphile.setup();
	await pgboss.setup();
	// jobq.retention is left at its default (1d: succeeded jobs kept in
	// jobq._done) but for the rows that name jobq.retention = 0
	await setConf('jobq.batch_size', CFG.batch);
	await setConf('jobq.durable_claims', 'off');
	const clk = await clockCheck();
	log(`clock check: node - database = ${(-clk.off).toFixed(0)} us (round trip ${clk.rtt.toFixed(0)} us)`);
	notes.push(`Clock check before the pickup runs: the harness's clock minus the database's clock_timestamp() ` +
		`= ${(-clk.off).toFixed(0)} µs, measured with a round trip of ${clk.rtt.toFixed(0)} µs.`);

	const memory = {};
	const steady = {};
	const warmed = new Set();
	for (const sync of CFG.sync) {
		await setConf('synchronous_commit', sync);
		log(`== synchronous_commit = ${sync}`);
		// At on, jobq's claims commit unflushed unless jobq.durable_claims
		// is on (the batch's commit flushes them); its rows say which.  At
		// off nothing waits for a flush and the setting changes nothing.
		const durable = sync === 'on';
		const SCJ = sync === 'on' ? 'on (jobq\'s claims: off)' : 'off';
		const SCD = 'on (jobq.durable_claims = on)';
		const single = {};
		const bulk = {};
		const drain = {};
		const rows = {};
		const pick = {};
		const fnrow = {};
		const dur = {};      // jobq with jobq.durable_claims = on: noop, row, fnrow
		const del = {};      // jobq with jobq.retention = 0: noop
		const flush = {};    // WAL flushes per 1,000 jobs: noop, row; jobq durable
		let pickFn = null;
		let pickDur = null;

		for (const s of SYSTEMS) {
			const sys = SYS[s];
			if (!warmed.has(s)) {
				await warmUp(sys);
				warmed.add(s);
			}
			if (want('enqueue')) {
				log(`${s}: ${CFG.single} single enqueues`);
				single[s] = await singleRun(sys);
				await sys.start(CFG.workers[0]);
				await waitEmpty(sys);
				await sys.stop();
			}
			for (const n of CFG.workers) {
				const f = ((flush[n] ||= {})[s] ||= {});
				if (want('drain')) {
					log(`${s}: drain of ${CFG.jobs} no-op jobs, ${n} workers`);
					const r = await drainRun(sys, 'noop', n, async () => { memory[`${sync}/${n}/${s}`] = await sys.memory(); });
					(bulk[s] ||= []).push(r.enqueue);
					(drain[n] ||= {})[s] = r.drain;
					f.noop = r.flushes;
					if (s === 'jobq') {
						if (durable) {
							log('jobq: the same with jobq.durable_claims = on');
							await setConf('jobq.durable_claims', 'on');
							const d = await drainRun(sys, 'noop', n);
							await setConf('jobq.durable_claims', 'off');
							(dur[n] ||= {}).noop = d.drain;
							f.noopDur = d.flushes;
						}
						log('jobq: the same with jobq.retention = 0 (succeeded jobs deleted as they finish)');
						await setConf('jobq.retention', '0');
						(del[n] ||= {}).noop = (await drainRun(sys, 'noop', n)).drain;
						await setConf('jobq.retention', '1d');
					}
				}
				if (want('rows')) {
					log(`${s}: drain of ${CFG.jobs} insert-one-row jobs, ${n} workers`);
					const r = await drainRun(sys, 'row', n);
					(rows[n] ||= {})[s] = r.drain;
					f.row = r.flushes;
					if (s === 'jobq') {
						(fnrow[n] ||= {}).jobq = (await drainRun(sys, 'fnrow', n)).drain;
						if (durable) {
							log('jobq: the insert-one-row drains with jobq.durable_claims = on');
							await setConf('jobq.durable_claims', 'on');
							const d = await drainRun(sys, 'row', n);
							(dur[n] ||= {}).row = d.drain;
							f.rowDur = d.flushes;
							dur[n].fnrow = (await drainRun(sys, 'fnrow', n)).drain;
							await setConf('jobq.durable_claims', 'off');
						}
					}
				}
				if (want('pickup') && n === CFG.pickupWorkers) {
					log(`${s}: pickup latency, ${CFG.pickup} jobs at ${CFG.rate}/s, ${n} idle workers`);
					await sys.start(n);
					pick[s] = await pickupRun(sys);
					await sys.stop();
					if (s === 'jobq') {
						log('jobq: pickup latency again, the jobs of a plpgsql handler kind');
						await sys.start(n);
						pickFn = await pickupRun(sys, 'fnpickup');
						await sys.stop();
						if (durable) {
							log('jobq: the plpgsql handler kind with jobq.durable_claims = on');
							await setConf('jobq.durable_claims', 'on');
							await sys.start(n);
							pickDur = await pickupRun(sys, 'fnpickup');
							await sys.stop();
							await setConf('jobq.durable_claims', 'off');
						}
					}
				}
			}
			await sys.clean();
		}

		const W = (n) => `${n} workers`;
		const J = CFG.jobs.toLocaleString('en-US');
		const peersOf = (v) => Object.fromEntries(SYSTEMS.filter((s) => s !== 'jobq').map((s) => [s, v[s]]));
		if (want('enqueue')) {
			const per = (f) => Object.fromEntries(SYSTEMS.map((s) => [s, single[s] ? f(single[s]) : undefined]));
			record({ scenario: 'enqueue, single calls from one connection', unit: 'jobs/s', sync, workers: 'workers stopped', values: per((r) => r.rate) });
			record({ scenario: 'floor: plain INSERT of a job-like row (kind, jsonb, identity key), single calls from one connection, in rounds alternating with each system\'s calls (under its column)', unit: 'rows/s', sync, workers: '—', values: per((r) => r.floor), noRatio: true });
			record({ scenario: 'single enqueue: time per call ÷ the plain INSERT\'s of the alternating rounds', unit: '×', sync, workers: 'workers stopped', values: per((r) => r.floor / r.rate), noRatio: true, lowerIsBetter: true });
		}
		if (want('drain')) {
			const avg = Object.fromEntries(Object.entries(bulk).map(([s, a]) => [s, a.reduce((x, y) => x + y, 0) / a.length]));
			record({ scenario: `enqueue, bulk (${J} jobs in one call)`, unit: 'jobs/s', sync, workers: 'idle workers', values: avg });
			for (const n of CFG.workers)
				record({ scenario: `drain, ${J} no-op jobs (jobq: jobq.retention = 1d, the default)`, unit: 'jobs/s', sync: SCJ, workers: W(n), values: drain[n] });
			if (durable) {
				for (const n of CFG.workers)
					if (dur[n]?.noop)
						record({ scenario: `drain, ${J} no-op jobs (jobq: jobq.retention = 1d, jobq.durable_claims = on)`, unit: 'jobs/s', sync: SCD, workers: W(n), values: { ...peersOf(drain[n]), jobq: dur[n].noop } });
			}
			for (const n of CFG.workers)
				if (del[n]?.noop)
					record({ scenario: `drain, ${J} no-op jobs (jobq: jobq.retention = 0, succeeded jobs deleted as they finish; timed by polling every 2 ms)`, unit: 'jobs/s', sync: SCJ, workers: W(n), values: { ...peersOf(drain[n]), jobq: del[n].noop } });
			for (const n of CFG.workers) {
				record({ scenario: 'WAL flushes of the cluster during the no-op drain, per 1,000 jobs', unit: 'flushes', sync: SCJ, workers: W(n), values: Object.fromEntries(SYSTEMS.map((s) => [s, flush[n][s]?.noop])), lowerIsBetter: true });
				if (durable && flush[n].jobq?.noopDur !== undefined)
					record({ scenario: 'WAL flushes of the cluster during the no-op drain, per 1,000 jobs', unit: 'flushes', sync: SCD, workers: W(n), values: { ...Object.fromEntries(SYSTEMS.map((s) => [s, flush[n][s]?.noop])), jobq: flush[n].jobq.noopDur }, lowerIsBetter: true });
			}
		}
		if (want('rows')) {
			const flushNote = sync === 'on' ? '; at on mostly a count of WAL flushes, see the flushes rows' : '';
			for (const n of CFG.workers)
				record({ scenario: `drain, jobs that insert one row (jobq: kind sql${flushNote})`, unit: 'jobs/s', sync: SCJ, workers: W(n), values: rows[n] });
			for (const n of CFG.workers)
				record({ scenario: `drain, jobs that insert one row (jobq: plpgsql kind${flushNote})`, unit: 'jobs/s', sync: SCJ, workers: W(n), values: { ...peersOf(rows[n]), jobq: fnrow[n]?.jobq } });
			if (durable) {
				for (const n of CFG.workers)
					if (dur[n]?.row)
						record({ scenario: `drain, jobs that insert one row (jobq: kind sql${flushNote})`, unit: 'jobs/s', sync: SCD, workers: W(n), values: { ...peersOf(rows[n]), jobq: dur[n].row } });
				for (const n of CFG.workers)
					if (dur[n]?.fnrow)
						record({ scenario: `drain, jobs that insert one row (jobq: plpgsql kind${flushNote})`, unit: 'jobs/s', sync: SCD, workers: W(n), values: { ...peersOf(rows[n]), jobq: dur[n].fnrow } });
			}
			for (const n of CFG.workers) {
				record({ scenario: 'WAL flushes of the cluster during the insert-one-row drain (jobq: kind sql), per 1,000 jobs', unit: 'flushes', sync: SCJ, workers: W(n), values: Object.fromEntries(SYSTEMS.map((s) => [s, flush[n][s]?.row])), lowerIsBetter: true });
				if (durable && flush[n].jobq?.rowDur !== undefined)
					record({ scenario: 'WAL flushes of the cluster during the insert-one-row drain (jobq: kind sql), per 1,000 jobs', unit: 'flushes', sync: SCD, workers: W(n), values: { ...Object.fromEntries(SYSTEMS.map((s) => [s, flush[n][s]?.row])), jobq: flush[n].jobq.rowDur }, lowerIsBetter: true });
			}
		}
		if (want('pickup')) {
			for (const p of ['p50', 'p99', 'max'])
				record({ scenario: `pickup latency ${p} (${CFG.pickup} jobs at ${CFG.rate}/s; jobq: kind sql)`, unit: 'ms', sync: SCJ, workers: W(CFG.pickupWorkers), values: Object.fromEntries(SYSTEMS.map((s) => [s, pick[s]?.[p]])), lowerIsBetter: true });
			if (pickFn) {
				for (const p of ['p50', 'p99', 'max'])
					record({ scenario: `pickup latency ${p} (${CFG.pickup} jobs at ${CFG.rate}/s; jobq: plpgsql handler kind)`, unit: 'ms', sync: SCJ, workers: W(CFG.pickupWorkers), values: { ...Object.fromEntries(SYSTEMS.map((s) => [s, pick[s]?.[p]])), jobq: pickFn[p] }, lowerIsBetter: true });
			}
			if (pickDur) {
				for (const p of ['p50', 'p99', 'max'])
					record({ scenario: `pickup latency ${p} (${CFG.pickup} jobs at ${CFG.rate}/s; jobq: plpgsql handler kind)`, unit: 'ms', sync: SCD, workers: W(CFG.pickupWorkers), values: { ...Object.fromEntries(SYSTEMS.map((s) => [s, pick[s]?.[p]])), jobq: pickDur[p] }, lowerIsBetter: true });
			}
			log(`floor: ${CFG.pickup} plain INSERTs at ${CFG.rate}/s`);
			record({ scenario: `floor: round trip of a plain INSERT of a job-like row at ${CFG.rate}/s into an idle server, p50 (the enqueue's own share of a pickup latency; one figure for the cluster)`, unit: 'ms', sync, workers: '—', values: { jobq: await floorPickupRun() }, lowerIsBetter: true });
		}
		if (want('ceiling')) {
			for (const n of CFG.workers) {
				log(`ceiling: raw DELETE batches of ${CFG.batch}, ${n} clients`);
				const c = await ceilingRun(n);
				record({ scenario: `ceiling: raw DELETE … FOR UPDATE SKIP LOCKED LIMIT ${CFG.batch}, the batch of jobq's claim (pgbench; one figure for the cluster)`, unit: 'rows/s', sync, workers: `${n} clients`, values: { jobq: c.rate } });
				record({ scenario: `ceiling: WAL flushes of the cluster per 1,000 rows deleted`, unit: 'flushes', sync, workers: `${n} clients`, values: { jobq: c.flushes }, lowerIsBetter: true });
				if (want('drain') && drain[n]) {
					record({ scenario: 'no-op drain as a fraction of the ceiling (jobq: jobq.retention = 1d)', unit: '%', sync: SCJ, workers: W(n), values: Object.fromEntries(SYSTEMS.map((s) => [s, (100 * drain[n][s]) / c.rate])), noRatio: true });
					if (durable && dur[n]?.noop)
						record({ scenario: 'no-op drain as a fraction of the ceiling (jobq: jobq.retention = 1d)', unit: '%', sync: SCD, workers: W(n), values: { ...Object.fromEntries(SYSTEMS.map((s) => [s, (100 * drain[n][s]) / c.rate])), jobq: (100 * dur[n].noop) / c.rate }, noRatio: true });
					if (del[n]?.noop)
						record({ scenario: 'no-op drain as a fraction of the ceiling (jobq: jobq.retention = 0, deleting as the ceiling does)', unit: '%', sync: SCJ, workers: W(n), values: { ...Object.fromEntries(SYSTEMS.map((s) => [s, (100 * drain[n][s]) / c.rate])), jobq: (100 * del[n].noop) / c.rate }, noRatio: true });
				}
			}
		}
		if (want('drain')) {
			for (const n of CFG.workers) {
				const m = Object.fromEntries(SYSTEMS.map((s) => [s, memory[`${sync}/${n}/${s}`]]));
				record({ scenario: 'memory: PSS of all processes serving the workers, after the drain (MiB)', unit: 'MiB', sync, workers: W(n), values: Object.fromEntries(SYSTEMS.map((s) => [s, m[s] ? m[s].pss / 1024 : undefined])), lowerIsBetter: true });
				record({ scenario: 'memory: private (RssAnon) of all processes serving the workers, after the drain (MiB)', unit: 'MiB', sync, workers: W(n), values: Object.fromEntries(SYSTEMS.map((s) => [s, m[s] ? m[s].anon / 1024 : undefined])), lowerIsBetter: true });
			}
		}
		if (want('steady') && sync === CFG.sync[0]) {
			const n = CFG.workers[CFG.workers.length - 1];
			steady.sync = SCJ;
			steady.runs = {};
			for (const s of SYSTEMS) {
				log(`${s}: steady state, ${CFG.steady} jobs, ${n} workers`);
				steady.runs[s] = await steadyRun(SYS[s], n);
			}
		}
	}
	const loadEnd = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
	notes.push(`Load average (1, 5, 15 min) at the start: ${loadStart}; at the end: ${loadEnd}. ` +
		'The benchmark itself keeps about 2 busy; more means other processes shared the machine.');
	await finish(memory, steady);
}

// ---------------------------------------------------------------- output

function ratio(row, peer) {
	const a = row.values.jobq;
	const b = row.values[peer];
	if (row.noRatio || typeof a !== 'number' || typeof b !== 'number' || !b)
		return '—';
	return `${(a / b).toFixed(2)}×`;
}

function mib(bytes) {
	return (bytes / 1048576).toFixed(1);
}

async function finish(memory, steady) {
	const lines = [];
	lines.push('| scenario | sync commit | workers | jobq | graphile-worker | pg-boss | jobq ÷ graphile-worker | jobq ÷ pg-boss |');
	lines.push('|---|---|---|--:|--:|--:|--:|--:|');
	for (const r of results) {
		lines.push(`| ${r.scenario} (${r.unit}${r.lowerIsBetter ? ', lower is better' : ''}) | ${r.sync} | ${r.workers} | ` +
			ALL_SYSTEMS.map((s) => fmt(r.values[s], r.unit)).join(' | ') + ` | ${ratio(r, 'graphile-worker')} | ${ratio(r, 'pg-boss')} |`);
	}
	if (steady.runs) {
		const runs = steady.runs;
		const n = Object.values(runs)[0].n;
		const row = (label, f, opts = {}) => {
			const values = Object.fromEntries(Object.entries(runs).map(([k, r]) => [k, f(r)]));
			const r = { scenario: `steady state, ${CFG.steady.toLocaleString('en-US')} jobs: ${label}`, sync: steady.sync, workers: `${n} workers`, values, ...opts };
			lines.push(`| ${r.scenario}${r.unit ? ` (${r.unit}${r.lowerIsBetter ? ', lower is better' : ''})` : ''} | ${r.sync} | ${r.workers} | ` +
				ALL_SYSTEMS.map((k) => fmt(r.values[k], r.unit)).join(' | ') + ` | ${ratio(r, 'graphile-worker')} | ${ratio(r, 'pg-boss')} |`);
		};
		// The last tenth ends with the final drain (no more feeding), so the
		// end of the run is compared through the ninth tenth.
		const ws = Object.values(runs)[0].windows;
		const li = Math.max(0, ws.length - 2);
		const first = (r) => r.windows[0];
		const last = (r) => r.windows[li];
		const fmtN = (x) => x.toLocaleString('en-US');
		const wFirst = ws[0] ? `jobs 1-${fmtN(ws[0].upto)}` : '';
		const wLast = ws[li] ? `jobs ${fmtN(ws[li].upto - (ws[0].upto) + 1)}-${fmtN(ws[li].upto)}` : '';
		row('throughput overall', (r) => CFG.steady / r.seconds, { unit: 'jobs/s' });
		row(`throughput, ${wFirst}`, (r) => first(r)?.rate, { unit: 'jobs/s' });
		row(`throughput, ${wLast}`, (r) => last(r)?.rate, { unit: 'jobs/s' });
		row(`claim, mean time per call, ${wFirst}`, (r) => first(r)?.claimMs, { unit: 'ms', lowerIsBetter: true });
		row(`claim, mean time per call, ${wLast}`, (r) => last(r)?.claimMs, { unit: 'ms', lowerIsBetter: true });
		row(`claim, buffers per call, ${wFirst}`, (r) => first(r)?.claimBlks, { unit: 'buffers', lowerIsBetter: true });
		row(`claim, buffers per call, ${wLast}`, (r) => last(r)?.claimBlks, { unit: 'buffers', lowerIsBetter: true });
		row(`claim, jobs per call, ${wLast}`, (r) => last(r)?.claimRows, { unit: 'jobs', noRatio: true });
		row('claim table pg_relation_size before', (r) => r.before.heap / 1048576, { unit: 'MiB', noRatio: true });
		row('claim table pg_relation_size after', (r) => r.after.heap / 1048576, { unit: 'MiB', lowerIsBetter: true });
		row('claim table pg_total_relation_size after', (r) => r.after.total / 1048576, { unit: 'MiB', lowerIsBetter: true });
		row('jobq._done pg_total_relation_size after (history, jobq.retention = 1d, the default)', (r) => r.after.history / 1048576, { unit: 'MiB', noRatio: true });
		row('autovacuum runs on the claim table during the run', (r) => r.statsRunning.autovacuums - r.statsBefore.autovacuums, { unit: 'runs', noRatio: true });
		row('dead rows autovacuum knew of at the end, workers still running', (r) => r.statsRunning.dead, { unit: 'rows', noRatio: true });
		row('dead rows autovacuum knew of 1.5 s after the workers stopped', (r) => r.statsStopped.dead, { unit: 'rows', noRatio: true });
		row('memory at the start: PSS of all processes serving the workers', (r) => r.memBefore.pss / 1024, { unit: 'MiB', lowerIsBetter: true });
		row('memory at the end: PSS of all processes serving the workers', (r) => r.memAfter.pss / 1024, { unit: 'MiB', lowerIsBetter: true });
		row('memory at the start: RssAnon (private) of all processes serving the workers', (r) => r.memBefore.anon / 1024, { unit: 'MiB', lowerIsBetter: true });
		row('memory at the end: RssAnon (private) of all processes serving the workers', (r) => r.memAfter.anon / 1024, { unit: 'MiB', lowerIsBetter: true });
		if (runs.jobq) {
			const j = runs.jobq;
			const per = (m, k) => (m.n ? m[k] / m.n / 1024 : NaN);
			row('jobq: VmRSS per worker process at the start', (r) => (r === j ? per(j.memBefore, 'rss') : undefined), { unit: 'MiB', noRatio: true });
			row('jobq: VmRSS per worker process at the end', (r) => (r === j ? per(j.memAfter, 'rss') : undefined), { unit: 'MiB', noRatio: true });
			row('jobq: PSS per worker process at the start', (r) => (r === j ? per(j.memBefore, 'pss') : undefined), { unit: 'MiB', noRatio: true });
			row('jobq: PSS per worker process at the end', (r) => (r === j ? per(j.memAfter, 'pss') : undefined), { unit: 'MiB', noRatio: true });
		}
	}
	const table = lines.join('\n');

	const gitRev = (() => {
		try {
			return execFileSync('git', ['-C', env.JOBQ_ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
		} catch {
			return '?';
		}
	})();
	const pgVersion = await one('postgres', 'SHOW server_version');
	const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m) || [])[1] || '?';
	const memTotal = Number((fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemTotal:\s+(\d+)/m) || [])[1]) / 1048576;
	const settings = (await q('postgres', `SELECT name, setting, unit FROM pg_settings WHERE name IN
		('shared_buffers','max_wal_size','checkpoint_timeout','wal_buffers','jit','fsync','full_page_writes',
		 'jobq.batch_size','jobq.max_workers','jobq.poll_interval','max_worker_processes','autovacuum')
		ORDER BY name`)).rows.map((r) => `${r.name}=${r.setting}${r.unit ? ' ' + r.unit : ''}`).join(', ');

	const memDetail = Object.entries(memory).map(([k, m]) => {
		const [sync, n, s] = k.split('/');
		if (!m)
			return null;
		if (s === 'jobq')
			return `- sync ${sync}, ${n} workers, jobq: ${m.n} worker processes, RSS ${mib(m.rss * 1024)} / PSS ${mib(m.pss * 1024)} / RssAnon ${mib(m.anon * 1024)} MiB in all`;
		return `- sync ${sync}, ${n} workers, ${s}: node process RSS ${mib(m.node.rss * 1024)} / PSS ${mib(m.node.pss * 1024)} / RssAnon ${mib(m.node.anon * 1024)} MiB, ` +
			`plus ${m.backends.n} server backends RSS ${mib(m.backends.rss * 1024)} / PSS ${mib(m.backends.pss * 1024)} / RssAnon ${mib(m.backends.anon * 1024)} MiB`;
	}).filter(Boolean);

	const out = [];
	out.push(`# jobq and its peers, ${new Date().toISOString().replace('T', ' ').slice(0, 16)} UTC`);
	out.push('');
	out.push(table);
	out.push('');
	out.push('Ratios are jobq\'s figure divided by the peer\'s: above 1 jobq is faster for jobs/s, ' +
		'below 1 jobq is faster (or smaller) for latencies and memory.');
	out.push('');
	out.push('## This run');
	out.push('');
	out.push(`- machine: ${os.cpus().length} CPUs (nproc ${execFileSync('nproc', { encoding: 'utf8' }).trim()}), ` +
		`${memTotal.toFixed(1)} GiB memory, ${cpu}, Linux ${os.release()}`);
	out.push(`- PostgreSQL ${pgVersion}; jobq ${jobq.version} built from ${gitRev} (git describe --dirty); graphile-worker ${graphile.version}; ` +
		`pg-boss ${pgboss.version}; node-postgres ${JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules/pg/package.json'))).version}; ` +
		`Node ${process.versions.node}`);
	out.push(`- sizes: JOBS=${CFG.jobs} STEADY=${CFG.steady} PICKUP=${CFG.pickup} RATE=${CFG.rate} SINGLE=${CFG.single} ` +
		`WORKERS="${CFG.workers.join(' ')}" SYNC="${CFG.sync.join(' ')}" BATCH=${CFG.batch} LOCAL_QUEUE=${CFG.localQueue}` +
		(env.SYSTEMS ? ` SYSTEMS="${env.SYSTEMS}"` : '') + (CFG.only ? ` ONLY=${[...CFG.only].join(',')}` : ''));
	out.push(`- cluster: ${settings}`);
	out.push(`- jobq: jobq.workers = the workers column; jobq.batch_size = ${CFG.batch}; jobq.retention = 1d (the default: ` +
		`succeeded jobs kept in jobq._done) except in the rows that say jobq.retention = 0; jobq.durable_claims = off (the default) ` +
		`except in the rows whose sync commit column says jobq.durable_claims = on. With it off, at synchronous_commit = on, ` +
		`a worker's claim commits without waiting for its WAL flush (the batch's commit flushes it): the column says ` +
		`"on (jobq's claims: off)"`);
	out.push('- drains: timed from the first job\'s start to the last one\'s finish as the database has them (jobq: jobq._done\'s ' +
		'started_at, the claim, and finished_at; pg-boss: its job table\'s started_on and completed_on) or, for graphile-worker, ' +
		'which deletes its jobs, as its process has them (the first handler\'s start, the last one\'s end); jobq with ' +
		'jobq.retention = 0 keeps nothing to time from: from the enqueue\'s commit until its queue is empty, polled every 2 ms. ' +
		'After every drain the harness checks that every job succeeded (jobq: its workers\' counters, nothing left or dead; ' +
		'graphile-worker: a handler returned per job and no job is left; pg-boss: every job of the queue completed) and fails otherwise. ' +
		'WAL flushes: the cluster\'s (pg_stat_wal.wal_sync up to PostgreSQL 17, pg_stat_io\'s fsyncs of object wal from 18), ' +
		'from the enqueue until the workers have stopped');
	out.push(`- graphile-worker: one process, concurrentJobs = the workers column, maxPoolSize = max(10, concurrency + 2), ` +
		`localQueue.size = ${CFG.localQueue}, completeJobBatchDelay = 0, failJobBatchDelay = 0, pollInterval = 2000 ms; ` +
		`finished jobs are deleted (its only behaviour)`);
	out.push(`- pg-boss: one process, work() with localConcurrency = the workers column, batchSize = ${CFG.batch} ` +
		`(its handler gets the batch and calls the task's function once per job, as the others do), ` +
		`burstWhenBatchFull, pollingIntervalSeconds = 0.5, queues with notify and useListenNotify; pool max = concurrency + 4; ` +
		`completed jobs kept (deleteAfterSeconds default, 7 days), deleted by the harness between runs with deleteStoredJobs()`);
	out.push('- handlers that insert a row: the peers use a pg.Pool of their own (concurrency + 1 connections), ' +
		'one INSERT per job, autocommit; jobq\'s kind sql runs the payload\'s INSERT, and the plpgsql kind ' +
		'runs a function that does the same INSERT, in the batch\'s transaction');
	out.push('- memory: jobq = its worker backends; a peer = its node process plus the server backends of its connections. ' +
		'PSS counts the shared_buffers pages a process has touched (divided among the processes that touched them), ' +
		'so it grows with the data a process has read; RssAnon is private memory');
	out.push('');
	if (memDetail.length) {
		out.push('Memory detail (after each no-op drain):');
		out.push('');
		out.push(...memDetail);
		out.push('');
	}
	if (steady.runs) {
		out.push('Steady state, every tenth of the jobs: jobs done, jobs/s, mean claim ms, buffers per claim, ' +
			'jobs per claim, claim table heap MiB');
		out.push('');
		out.push('```');
		for (const [name, r] of Object.entries(steady.runs)) {
			out.push(`${name} (${r.table}), ${r.n} workers, ${r.seconds.toFixed(1)} s`);
			for (const w of r.windows)
				out.push(`${String(w.upto).padStart(8)} ${fmt(w.rate).padStart(8)} ${w.claimMs.toFixed(3).padStart(7)} ` +
					`${w.claimBlks.toFixed(0).padStart(6)} ${w.claimRows.toFixed(0).padStart(5)} ${mib(w.heap).padStart(7)}`);
		}
		out.push('```');
		out.push('');
	}
	if (notes.length) {
		out.push('Notes:');
		out.push('');
		out.push(...notes.map((n) => `- ${n}`));
		out.push('');
	}
	const text = out.join('\n');
	fs.writeFileSync(env.RESULTS || path.join(HERE, 'results.md'), text);
	process.stdout.write('\n' + text + '\n');
	log('done');
}

main().then(async () => {
	for (const s of [graphile, pgboss])
		await s.stop().catch(() => {});
	await graphile.utils?.release();
	await pgboss.boss?.stop({ graceful: false, wait: false }).catch(() => {});
	for (const c of clients.values())
		await c.end().catch(() => {});
	process.exit(0);
}, async (e) => {
	log(`FAILED: ${e.stack || e}`);
	for (const s of [graphile, pgboss])
		await s.stop().catch(() => {});
	process.exit(1);
});
