// demo_worker.mjs: the demo's application worker, in TypeScript's runtime
// with jobq's client (clients/node, built by tools/demo.sh beside this
// file).  It runs the clinic's card.render jobs (an external kind): each
// renders an appointment card from the clinic's tables and writes it in
// the transaction that completes the job.  It stops once no such job is
// left, and prints what it did.  Connection: PGHOST, PGPORT, PGDATABASE.
import pg from 'pg';
import { Worker } from './dist/src/index.js';

const pool = new pg.Pool({ max: 8 });
const t0 = Date.now();
let rendered = 0;
const worker = new Worker({
	pool,
	queues: ['documents'],
	concurrency: 4,
	waitMs: 1000,
	handlers: {
		'card.render': (job, ctx) =>
			ctx.completeInTransaction(async (tx) => {
				const { rows } = await tx.query(
					`SELECT p.name, s.starts_at, s.doctor_id
					   FROM appointments a JOIN patients p ON p.id = a.patient_id
					   JOIN availability_slots s ON s.id = a.slot_id
					  WHERE a.slot_id = $1`,
					[job.payload.slot_id]);
				if (rows.length === 0)
					throw new Error(`no appointment for slot ${job.payload.slot_id}`);
				const r = rows[0];
				const card = `${r.name}: doctor ${r.doctor_id}, ${r.starts_at.toISOString().slice(0, 16).replace('T', ' ')}`;
				await tx.query('INSERT INTO appointment_cards (slot_id, card, job) VALUES ($1, $2, $3)',
					[job.payload.slot_id, card, job.id]);
				rendered++;
				return card;
			}, (card) => ({ card })),
	},
	onError: (e) => console.error('worker:', e.message),
});
worker.start();
for (;;) {
	await new Promise((r) => setTimeout(r, 200));
	const { rows } = await pool.query(
		"SELECT count(*)::int AS n FROM jobq.jobs WHERE kind = 'card.render' AND status IN ('pending', 'running')");
	if (rows[0].n === 0)
		break;
}
await worker.stop();
console.log(`${rendered} appointment cards rendered by a TypeScript worker (concurrency 4) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
await pool.end();
