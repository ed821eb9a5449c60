// peer-worker.mjs: one worker process of a peer, started by harness.mjs.
//
//   node peer-worker.mjs graphile-worker|pg-boss|jobq-ts '<json settings>'
//
// Settings: { db, concurrency, localQueue, batch }: localQueue is
// graphile-worker's localQueue.size, batch pg-boss's batchSize.  The process serves three task names on the
// database db of the cluster in PGHOST/PGPORT:
//   noop    does nothing
//   row     inserts one row into public.bench_rows with its own pool
//   pickup  inserts (i, the handler's start time) into public.pickups
// It prints "ready" once it is serving and stops cleanly on SIGTERM or when
// its standard input closes, printing "stopped".  A line "stats" on its
// standard input makes it print "stats <json>": per task, the handlers that
// returned, the first handler's start and the last one's end (microseconds
// of the system clock), then start counting afresh.  graphile-worker deletes
// its jobs as they complete, so its drains are timed from these.

import pg from 'pg';
import { nowUs } from './clock.mjs';

const [peer, settingsJson] = process.argv.slice(2);
const settings = JSON.parse(settingsJson);
// application_name lets the harness find this process's server backends.
const conn = `postgres:///${settings.db}?host=${encodeURIComponent(process.env.PGHOST)}` +
	`&port=${process.env.PGPORT}&user=${process.env.PGUSER || 'postgres'}` +
	`&application_name=bench-${peer}`;

// The handlers' own pool (the application's pool, not the queue's).
const appPool = new pg.Pool({ connectionString: conn, max: settings.concurrency + 1 });

async function insertRow(i) {
	await appPool.query({ name: 'row', text: 'INSERT INTO public.bench_rows (i) VALUES ($1)', values: [i] });
}

async function insertPickup(i, startedUs) {
	await appPool.query({
		name: 'pickup',
		text: 'INSERT INTO public.pickups (i, started_at) VALUES ($1, to_timestamp($2::float8 / 1e6))',
		values: [i, startedUs],
	});
}

// Per task: handlers that returned, first start, last end (µs).
let counts = {};
function timed(task, fn) {
	return async (...args) => {
		const t0 = nowUs();
		await fn(...args);
		const t1 = nowUs();
		const c = (counts[task] ||= { n: 0, first: t0, last: t1 });
		c.n++;
		if (t0 < c.first)
			c.first = t0;
		if (t1 > c.last)
			c.last = t1;
	};
}
const noop = async () => {};

let stop;

if (peer === 'graphile-worker') {
	const { run, Logger } = await import('graphile-worker');
	const runner = await run({
		noHandleSignals: true,
		taskList: {
			noop: timed('noop', noop),
			row: timed('row', async (payload) => insertRow(payload.i)),
			pickup: async (payload) => insertPickup(payload.i, nowUs()),
		},
		// The settings of graphile-worker's performance page: a local queue
		// that fetches (and locks) jobs in batches, and batched completion.
		preset: {
			worker: {
				connectionString: conn,
				concurrentJobs: settings.concurrency,
				maxPoolSize: Math.max(10, settings.concurrency + 2),
				pollInterval: 2000,
				localQueue: { size: settings.localQueue },
				completeJobBatchDelay: 0,
				failJobBatchDelay: 0,
			},
		},
		logger: new Logger(() => (level, message) => {
			if (level === 'error')
				console.error(message);
		}),
	});
	stop = async () => runner.stop();
} else if (peer === 'pg-boss') {
	const { PgBoss } = await import('pg-boss');
	const boss = new PgBoss({
		connectionString: conn,
		application_name: `bench-${peer}`,
		max: settings.concurrency + 4,
		useListenNotify: true,   // wake workers at once on notify-enabled queues
		schedule: false,         // no cron in this process
		supervise: false,        // maintenance is done by the harness's instance
		migrate: false,
	});
	boss.on('error', (e) => console.error('pg-boss error:', e.message));
	await boss.start();
	const opts = {
		batchSize: settings.batch,
		localConcurrency: settings.concurrency,
		burstWhenBatchFull: true,       // fetch again at once while batches come back full
		pollingIntervalSeconds: 0.5,    // the smallest allowed
	};
	// pg-boss hands a batch to one call; the handlers run once per job in
	// it, as graphile-worker's and jobq's do.
	const noopJob = timed('noop', noop);
	const rowJob = timed('row', async (job) => insertRow(job.data.i));
	await boss.work('noop', opts, async (jobs) => {
		for (const job of jobs)
			await noopJob(job);
	});
	await boss.work('row', opts, async (jobs) => {
		for (const job of jobs)
			await rowJob(job);
	});
	await boss.work('pickup', opts, async (jobs) => {
		const t = nowUs();
		for (const job of jobs)
			await insertPickup(job.data.i, t);
	});
	stop = async () => boss.stop({ graceful: true, wait: true, timeout: 30000 });
} else if (peer === 'jobq-ts') {
	// jobq's TypeScript client (clients/node, built by bench/external/run.sh,
	// which passes its path in JOBQ_CLIENT): the jobs are of external kinds,
	// run here with its Worker: the concurrency, and as many claimed jobs
	// held beside the running ones as graphile-worker's local queue holds
	const { Worker } = await import(process.env.JOBQ_CLIENT);
	const pool = new pg.Pool({ connectionString: conn, max: settings.concurrency + 3 });
	const worker = new Worker({
		pool,
		concurrency: settings.concurrency,
		prefetch: settings.localQueue,
		handlers: {
			noop: timed('noop', noop),
			row: timed('row', async (job) => insertRow(job.payload.i)),
			pickup: async (job) => insertPickup(job.payload.i, nowUs()),
		},
		onError: (e) => console.error('jobq-ts:', e.message),
	});
	worker.start();
	stop = async () => {
		await worker.stop();
		await pool.end();
	};
} else {
	console.error(`unknown peer ${peer}`);
	process.exit(2);
}

let stopping = false;
async function shutdown() {
	if (stopping)
		return;
	stopping = true;
	await stop();
	await appPool.end();
	console.log('stopped');
	process.exit(0);
}
process.on('SIGTERM', shutdown);
process.stdin.on('end', shutdown);
let input = '';
process.stdin.on('data', (d) => {
	input += d;
	let nl;
	while ((nl = input.indexOf('\n')) >= 0) {
		const line = input.slice(0, nl).trim();
		input = input.slice(nl + 1);
		if (line === 'stats') {
			console.log(`stats ${JSON.stringify(counts)}`);
			counts = {};
		}
	}
});
console.log('ready');
