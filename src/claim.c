/*-------------------------------------------------------------------------
 *
 * claim.c
 *	  Claiming ready jobs from jobq._queue, without the executor.
 *
 * A claim walks the lane's claim index (precedence, priority, run_at, id)
 * in order with the transaction's snapshot, keeping the index entries whose run_at is
 * due.  For each row the snapshot sees as pending it updates the row in
 * place, without waiting: status running, the attempt counted, the
 * worker's token.  A row another transaction holds (locked, or being
 * claimed or finished) or has changed since the snapshot was taken is
 * skipped, as FOR UPDATE SKIP LOCKED skips it, and the walk goes on until
 * the batch is full or the index is exhausted.  So is a row of a paused
 * queue, or of a queue whose concurrency or rate limit does not admit it
 * now (queue_limits.c, which counts every row the claim takes).
 *
 * That is what the claim statement did (UPDATE ... WHERE ctid = ANY
 * (SELECT ... ORDER BY ... LIMIT n FOR UPDATE SKIP LOCKED)), less its cost:
 * no plan to revalidate, no executor to start (five indexes opened, the
 * CHECK constraints compiled, for every claim, which is most of the time a
 * lone job's pickup spends in the worker), and one WAL record per job where
 * the statement wrote two (the row lock, then the update).  No indexed
 * column changes, so the update is heap-only when the page has room
 * (fillfactor leaves it); when it is not, the new row version gets its
 * index entries here as the executor would give them.
 *
 * Callers must be in a transaction and commit it before running the jobs
 * (see jobq_shmem_durable_claims for how the commit is flushed).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "claim.h"
#include "compat.h"
#include "qrel.h"
#include "queue_limits.h"
#include "shmem.h"

/* Is the text datum 'pending'? */
static bool
claim_is_pending(Datum status)
{
	text *t = DatumGetTextPP(status);

	return VARSIZE_ANY_EXHDR(t) == 7 && memcmp(VARDATA_ANY(t), "pending", 7) == 0;
}

/* A claimed row as the job the worker runs, allocated in cxt. */
static void
claim_job(TupleTableSlot *slot, const JobqQueueColumns *c, MemoryContext cxt, JobqJob *job)
{
	MemoryContext old;
	bool isnull;
	Datum d;

	job->id = DatumGetInt64(slot_getattr(slot, c->id, &isnull));
	job->owner = DatumGetObjectId(slot_getattr(slot, c->owner, &isnull));
	job->precedence = c->precedence != InvalidAttrNumber
						  ? DatumGetInt32(slot_getattr(slot, c->precedence, &isnull))
						  : 0;
	job->priority = DatumGetInt32(slot_getattr(slot, c->priority, &isnull));
	job->run_at = DatumGetTimestampTz(slot_getattr(slot, c->run_at, &isnull));
	job->attempts = DatumGetInt32(slot_getattr(slot, c->attempts, &isnull)) + 1;
	job->max_attempts = DatumGetInt32(slot_getattr(slot, c->max_attempts, &isnull));
	d = slot_getattr(slot, c->timeout, &isnull);
	job->timeout_ms = isnull ? 0 : jobq_interval_ms(DatumGetIntervalP(d));
	job->created_at = DatumGetTimestampTz(slot_getattr(slot, c->created_at, &isnull));

	old = MemoryContextSwitchTo(cxt);
	job->kind = TextDatumGetCString(slot_getattr(slot, c->kind, &isnull));
	job->payload = DatumGetJsonbPCopy(slot_getattr(slot, c->payload, &isnull));
	MemoryContextSwitchTo(old);
}

/* Is the row's queue one of those an external claim names (all if none)? */
static bool
claim_queue_named(const JobqExternalClaim *ext, text *queue)
{
	int len = (int) VARSIZE_ANY_EXHDR(queue);

	if (ext->nqueues == 0)
		return true;
	for (int i = 0; i < ext->nqueues; i++)
	{
		text *name = DatumGetTextPP(ext->queues[i]);

		if ((int) VARSIZE_ANY_EXHDR(name) == len &&
			memcmp(VARDATA_ANY(name), VARDATA_ANY(queue), len) == 0)
			return true;
	}
	return false;
}

/* The text datum as a string in cxt, NULL for NULL. */
static char *
claim_string(TupleTableSlot *slot, AttrNumber att, MemoryContext cxt)
{
	bool isnull;
	Datum d = slot_getattr(slot, att, &isnull);
	MemoryContext old;
	char *s;

	if (isnull)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	s = TextDatumGetCString(d);
	MemoryContextSwitchTo(old);
	return s;
}

/*
 * Claim up to batch_size ready jobs of a lane (net: the net worker's, else
 * the SQL workers') for the worker holding token: mark them running and
 * count the attempt.  Returns the jobs in claim order (precedence,
 * priority, run_at, id), allocated in the caller's memory context.
 */
static int claim_lane(int64 token, bool net, const JobqExternalClaim *ext,
					  int batch_size, JobqJob **jobs);

int
jobq_queue_claim(int64 token, bool net, int batch_size, JobqJob **jobs)
{
	return claim_lane(token, net, NULL, batch_size, jobs);
}

/* The same for jobs of external kinds, with their lease. */
int
jobq_queue_claim_external(const JobqExternalClaim *spec, int max_jobs, JobqJob **jobs)
{
	return claim_lane(spec->token, false, spec, max_jobs, jobs);
}

static int
claim_lane(int64 token, bool net, const JobqExternalClaim *ext, int batch_size,
		   JobqJob **jobs)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	MemoryContext tmp_cxt;
	Relation rel;
	Relation index;
	TupleDesc desc;
	const JobqQueueColumns *c;
	JobqIndexer ix = {0};
	bool pushed_snapshot = false;
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot;
	CommandId cid;
	TimestampTz now = GetCurrentTimestamp();
	Datum *values;
	bool *nulls;
	bool *replace;
	int n = 0;
	AttrNumber run_at_key;

	/*
	 * Before the snapshot: a change of jobq._queues that committed is seen.
	 * A lane's workers share a limit among them; an external claim is one
	 * of an unknown number of the application's workers.
	 */
	jobq_limits_claim_begin(ext != NULL ? 1 : Max(jobq_shmem_lane_max(net), 1));

	rel = table_open(jobq_qrel_relid("_queue"), RowExclusiveLock);
	index = index_open(jobq_qrel_relid(ext != NULL ? "_queue_external_claim_idx"
									   : net	   ? "_queue_net_claim_idx"
												   : "_queue_claim_idx"),
					   AccessShareLock);
	desc = RelationGetDescr(rel);
	c = jobq_qrel_columns(rel);
	/* (precedence, priority, run_at, id), or before 0.2.0 (priority, run_at, id) */
	run_at_key = c->precedence != InvalidAttrNumber ? 3 : 2;
	if (index->rd_index->indnkeyatts < run_at_key ||
		index->rd_index->indkey.values[run_at_key - 1] != c->run_at)
		elog(ERROR, "index \"%s\" does not have run_at as its column %d",
			 RelationGetRelationName(index), run_at_key);

	*jobs = palloc0(sizeof(JobqJob) * Max(batch_size, 1));
	tmp_cxt = AllocSetContextCreate(CurrentMemoryContext, "jobq claim",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(tmp_cxt);

	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc0(sizeof(bool) * desc->natts);
	replace = palloc0(sizeof(bool) * desc->natts);
	replace[c->status - 1] = true;
	replace[c->attempts - 1] = true;
	replace[c->started_at - 1] = true;
	replace[c->locked_by - 1] = true;
	replace[c->worker_pid - 1] = true;
	values[c->status - 1] = CStringGetTextDatum("running");
	values[c->started_at - 1] = TimestampTzGetDatum(now);
	values[c->locked_by - 1] = Int64GetDatum(token);
	values[c->worker_pid - 1] = Int32GetDatum(MyProcPid);
	if (ext != NULL)
	{
		replace[c->lease_until - 1] = true;
		values[c->lease_until - 1] = TimestampTzGetDatum(ext->lease_until);
	}

	/* a worker's own transactions have no snapshot yet */
	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed_snapshot = true;
	}
	else if (ext != NULL)
	{
		/* the caller's statement's, seeing what it did before (leases it ended) */
		CommandCounterIncrement();
		PushCopiedSnapshot(GetActiveSnapshot());
		UpdateActiveSnapshotCommandId();
		pushed_snapshot = true;
	}

	cid = GetCurrentCommandId(true);

	/* due: run_at <= the transaction's start, as now() in SQL */
	ScanKeyInit(&key, run_at_key, BTLessEqualStrategyNumber, F_TIMESTAMPTZ_LE,
				TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
	slot = table_slot_create(rel, NULL);
	scan = jobq_compat_index_beginscan(rel, index, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);

	while (n < batch_size && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		HeapTuple oldtup;
		HeapTuple newtup;
		ItemPointerData tid = slot->tts_tid;
		TM_FailureData tmfd;
		LockTupleMode lockmode;
		TU_UpdateIndexes update_indexes;
		bool should_free;
		bool isnull;
		TM_Result result;
		text *queue;
		text *ckey = NULL;

		CHECK_FOR_INTERRUPTS();
		if (!claim_is_pending(slot_getattr(slot, c->status, &isnull)))
			continue;

		/* an external claim's: a queue it names, an owner whose rights it has */
		queue = DatumGetTextPP(slot_getattr(slot, c->queue, &isnull));
		if (ext != NULL &&
			(!claim_queue_named(ext, queue) ||
			 !has_privs_of_role(ext->caller,
								DatumGetObjectId(slot_getattr(slot, c->owner, &isnull)))))
			continue;

		/* a paused queue's row, or one its limits or its key's do not admit now */
		if (c->concurrency_key != InvalidAttrNumber)
		{
			Datum d = slot_getattr(slot, c->concurrency_key, &isnull);

			if (!isnull)
				ckey = DatumGetTextPP(d);
		}
		if (!jobq_limits_admit(VARDATA_ANY(queue), (int) VARSIZE_ANY_EXHDR(queue),
							   ckey ? VARDATA_ANY(ckey) : NULL, ckey ? (int) VARSIZE_ANY_EXHDR(ckey) : 0, now))
			continue;

		values[c->attempts - 1] =
			Int32GetDatum(DatumGetInt32(slot_getattr(slot, c->attempts, &isnull)) + 1);
		oldtup = ExecFetchSlotHeapTuple(slot, false, &should_free);
		newtup = heap_modify_tuple(oldtup, desc, values, nulls, replace);
		if (should_free)
			heap_freetuple(oldtup);

		/* never wait: a row someone holds or has changed is theirs */
		result = jobq_compat_heap_update(rel, &tid, newtup, cid, InvalidSnapshot, false,
										 &tmfd, &lockmode, &update_indexes);
		if (result != TM_Ok)
		{
			heap_freetuple(newtup);
			jobq_limits_unadmit();
			continue;
		}
		/* the index entries heap_update says the new version needs */
		if (update_indexes != TU_None)
			(void) jobq_qrel_index_row(&ix, rel, newtup, true,
									   update_indexes == TU_Summarizing);
		heap_freetuple(newtup);

		claim_job(slot, c, caller_cxt, &(*jobs)[n]);
		(*jobs)[n].claimed_at = now;
		if (ext != NULL)
		{
			(*jobs)[n].queue = claim_string(slot, c->queue, caller_cxt);
			(*jobs)[n].job_key = claim_string(slot, c->job_key, caller_cxt);
			(*jobs)[n].concurrency_key = claim_string(slot, c->concurrency_key, caller_cxt);
		}
		n++;
	}

	index_endscan(scan);
	jobq_limits_claim_end();
	ExecDropSingleTupleTableSlot(slot);
	jobq_qrel_index_end(&ix);
	if (pushed_snapshot)
		PopActiveSnapshot();
	index_close(index, NoLock);
	table_close(rel, NoLock);

	/* later statements of the transaction see the claimed rows */
	CommandCounterIncrement();

	MemoryContextSwitchTo(caller_cxt);
	MemoryContextDelete(tmp_cxt);
	return n;
}
