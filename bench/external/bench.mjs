// bench.mjs: jobq's TypeScript worker (clients/node) against graphile-worker,
// both Node processes running the same handlers (bench/peers/peer-worker.mjs)
// on one cluster, side by side in one run.  Started by bench/external/run.sh,
// which passes PGHOST, PGPORT, PEERS (the peers' folder: node_modules and
// peer-worker.mjs), JOBQ_CLIENT, RESULTS and the sizes:
//   JOBS=10000     no-op jobs per drain, enqueued in bulk into a stopped worker
//   WORKERS="1 4"  the workers' concurrency
//   PICKUP=300     jobs enqueued one at a time at RATE a second into an idle
//   RATE=20        worker of PICKUP_WORKERS (4): enqueue commit to handler start
// Drains are timed as the worker process sees them: from the first
// handler's start to the last one's end (graphile-worker deletes its jobs).

import pg from 'pg';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { nowUs } from './clock.mjs';

const env = process.env;
const num = (v, d) => (v === undefined || v === '' ? d : Number(v));
const CFG = {
	jobs: num(env.JOBS, 10000),
	workers: (env.WORKERS || '1 4').trim().split(/\s+/).map(Number),
	pickup: num(env.PICKUP, 300),
	rate: num(env.RATE, 20),
	pickupWorkers: num(env.PICKUP_WORKERS, 4),
};
const SYSTEMS = ['jobq-ts', 'graphile-worker'];
const DB = { 'jobq-ts': 'bench_ext_jobq', 'graphile-worker': 'bench_ext_graphile' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const conn = (db) => `postgres:///${db}?host=${encodeURIComponent(env.PGHOST)}&port=${env.PGPORT}&user=postgres`;
const pools = {};
const db = (name) => (pools[name] ||= new pg.Pool({ connectionString: conn(name), max: 2 }));
const log = (m) => process.stderr.write(`${m}\n`);

async function setup() {
	const admin = new pg.Client({ connectionString: conn('postgres') });
	await admin.connect();
	for (const name of Object.values(DB)) await admin.query(`CREATE DATABASE ${name}`);
	await admin.end();
	for (const s of SYSTEMS) {
		await db(DB[s]).query(`CREATE TABLE public.pickups (i int PRIMARY KEY, started_at timestamptz);
		                       CREATE TABLE public.bench_rows (i int)`);
	}
	await db(DB['jobq-ts']).query(`CREATE EXTENSION jobq;
		SELECT jobq.register_external_kind('noop');
		SELECT jobq.register_external_kind('row');
		SELECT jobq.register_external_kind('pickup');`);
	const gw = await import(path.join(env.PEERS, 'node_modules/graphile-worker/dist/index.js'));
	await gw.runMigrations({ connectionString: conn(DB['graphile-worker']) });
	return gw;
}

// a worker process of system s with concurrency n; resolves once it serves
function startWorker(s, n) {
	const settings = { db: DB[s], concurrency: n, localQueue: 500, batch: 500 };
	const child = spawn(process.execPath, [path.join(env.PEERS, 'peer-worker.mjs'), s, JSON.stringify(settings)], {
		stdio: ['pipe', 'pipe', 'inherit'],
		env,
	});
	const w = { child, waiters: [] };
	w.exited = new Promise((r) => child.on('exit', r));
	w.ready = new Promise((resolve) => {
		let buf = '';
		child.stdout.on('data', (d) => {
			buf += d;
			let nl;
			while ((nl = buf.indexOf('\n')) >= 0) {
				const line = buf.slice(0, nl);
				buf = buf.slice(nl + 1);
				if (line === 'ready') resolve();
				else if (line.startsWith('stats ')) w.waiters.shift()?.(JSON.parse(line.slice(6)));
			}
		});
	});
	w.stats = () => new Promise((r) => { w.waiters.push(r); child.stdin.write('stats\n'); });
	w.stop = async () => { child.kill('SIGTERM'); await w.exited; };
	return w;
}

async function enqueueBulk(s, gw, utils, n) {
	if (s === 'jobq-ts') {
		for (let from = 0; from < n; from += 10000) {
			const k = Math.min(10000, n - from);
			await db(DB[s]).query(
				"SELECT count(*) FROM jobq.enqueue_many('noop', (SELECT array_agg(jsonb_build_object('i', g)) FROM generate_series($1::int, $2::int) g))",
				[from, from + k - 1]);
		}
	} else {
		const specs = [];
		for (let i = 0; i < n; i++) specs.push({ identifier: 'noop', payload: { i } });
		for (let i = 0; i < n; i += 10000) await utils.addJobs(specs.slice(i, i + 10000));
	}
}

async function drain(s, gw, utils, n) {
	await enqueueBulk(s, gw, utils, CFG.jobs);
	const w = startWorker(s, n);
	await w.ready;
	let total = 0;
	let first = Infinity;
	let last = 0;
	const deadline = Date.now() + 600_000;
	while (total < CFG.jobs && Date.now() < deadline) {
		await sleep(50);
		const st = (await w.stats()).noop;
		if (st) {
			total += st.n;
			first = Math.min(first, st.first);
			last = Math.max(last, st.last);
		}
	}
	await w.stop();
	if (total !== CFG.jobs) throw new Error(`${s}: ${total} of ${CFG.jobs} handlers returned`);
	if (s === 'jobq-ts') {
		const left = (await db(DB[s]).query("SELECT count(*)::int AS n FROM jobq._queue")).rows[0].n;
		if (left) throw new Error(`jobq-ts: ${left} jobs left`);
		await db(DB[s]).query("DELETE FROM jobq._done");
		await db(DB[s]).query("VACUUM jobq._queue");
	}
	return CFG.jobs / ((last - first) / 1e6);
}

async function pickup(s, gw, utils) {
	const w = startWorker(s, CFG.pickupWorkers);
	await w.ready;
	await sleep(1000);
	const committed = new Map();
	for (let i = 0; i < CFG.pickup; i++) {
		if (s === 'jobq-ts') await db(DB[s]).query("SELECT jobq.enqueue('pickup', jsonb_build_object('i', $1::int))", [i]);
		else await utils.addJob('pickup', { i });
		committed.set(i, nowUs());
		await sleep(1000 / CFG.rate);
	}
	const deadline = Date.now() + 60_000;
	let rows = [];
	while (Date.now() < deadline) {
		rows = (await db(DB[s]).query('SELECT i, extract(epoch FROM started_at) * 1e6 AS us FROM public.pickups')).rows;
		if (rows.length >= CFG.pickup) break;
		await sleep(100);
	}
	await w.stop();
	if (rows.length !== CFG.pickup) throw new Error(`${s}: ${rows.length} of ${CFG.pickup} picked up`);
	await db(DB[s]).query('TRUNCATE public.pickups');
	const lat = rows.map((r) => (Number(r.us) - committed.get(r.i)) / 1000).sort((a, b) => a - b);
	return { p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)] };
}

const gw = await setup();
const utils = await gw.makeWorkerUtils({ connectionString: conn(DB['graphile-worker']) });
const res = { drain: {}, pickup: {} };
for (const n of CFG.workers)
	for (const s of SYSTEMS) {
		log(`${s}: drain of ${CFG.jobs} no-op jobs, concurrency ${n}`);
		(res.drain[n] ||= {})[s] = await drain(s, gw, utils, n);
	}
for (const s of SYSTEMS) {
	log(`${s}: pickup of ${CFG.pickup} jobs at ${CFG.rate}/s, concurrency ${CFG.pickupWorkers}`);
	res.pickup[s] = await pickup(s, gw, utils);
}
await utils.release();

const f0 = (x) => Math.round(x).toLocaleString('en-US');
const f2 = (x) => x.toFixed(2);
const lines = [
	`# jobq's TypeScript worker and graphile-worker, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
	'',
	'| scenario | jobq-ts | graphile-worker | jobq-ts ÷ graphile-worker |',
	'|---|--:|--:|--:|',
];
for (const n of CFG.workers) {
	const d = res.drain[n];
	lines.push(`| drain, ${f0(CFG.jobs)} no-op jobs, concurrency ${n} (jobs/s) | ${f0(d['jobq-ts'])} | ${f0(d['graphile-worker'])} | ${f2(d['jobq-ts'] / d['graphile-worker'])} |`);
}
for (const k of ['p50', 'p99']) {
	const p = res.pickup;
	lines.push(`| pickup ${k}, ${CFG.pickup} jobs at ${CFG.rate}/s, concurrency ${CFG.pickupWorkers} (ms, lower is better) | ${f2(p['jobq-ts'][k])} | ${f2(p['graphile-worker'][k])} | ${f2(p['jobq-ts'][k] / p['graphile-worker'][k])} |`);
}
lines.push('', `Sizes: JOBS=${CFG.jobs} WORKERS="${CFG.workers.join(' ')}" PICKUP=${CFG.pickup} RATE=${CFG.rate} PICKUP_WORKERS=${CFG.pickupWorkers}; ` +
	`Node ${process.version}; graphile-worker ${JSON.parse(fs.readFileSync(path.join(env.PEERS, 'node_modules/graphile-worker/package.json'))).version} ` +
	'with the settings of bench/peers (local queue of 500, batched completion); jobq-ts: the client\'s Worker with prefetch 500 ' +
	'(claimed jobs held beside the running ones, as that local queue), its completions sent in batches (one statement and transaction each).', '');
fs.writeFileSync(env.RESULTS, lines.join('\n'));
console.log(lines.join('\n'));
for (const p of Object.values(pools)) await p.end();
