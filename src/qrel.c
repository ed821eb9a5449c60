/*-------------------------------------------------------------------------
 *
 * qrel.c
 *	  jobq._queue written without the executor: its columns by attribute
 *	  number, the index entries of the row versions written here, and the
 *	  insert of a job without a key.
 *
 * A claim (claim.c) and the enqueue of one job without a key are the two
 * writes every job goes through.  Done as statements, each paid for a plan
 * to revalidate and an executor to start (the five indexes opened, the
 * CHECK constraints read back from the catalog and compiled, the RETURNING
 * list projected), several times the cost of the row itself.  Here the row
 * is built in C and written with heap_insert or heap_update, and its index
 * entries are added as the executor would add them.  What the statement
 * checked is checked by the callers: the values are valid by construction
 * (api.c validates what a caller passes), and the table's CHECK
 * constraints stay for every other write.  A job with a key still goes
 * through INSERT ... ON CONFLICT (queue.c), as do jobq.enqueue_many's
 * batches, where one statement serves many rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "jobq.h"

static AttrNumber
column_number(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	elog(ERROR, "column \"%s\" of jobq._queue does not exist", name);
	return InvalidAttrNumber;	/* keep the compiler quiet */
}

/*
 * The attribute numbers of jobq._queue's columns and the sequence behind
 * its id, looked up once per table (a reinstalled extension has a new one;
 * a column added or dropped changes relnatts) rather than at every write.
 */
const JobqQueueColumns *
jobq_qrel_columns(Relation rel)
{
	static JobqQueueColumns cached;
	static Oid	cached_relid = InvalidOid;
	static int	cached_natts = 0;
	TupleDesc	desc = RelationGetDescr(rel);
	JobqQueueColumns *c = &cached;

	if (RelationGetRelid(rel) == cached_relid && rel->rd_rel->relnatts == cached_natts)
		return c;
	cached_relid = InvalidOid;	/* until every column is found */
	c->id = column_number(desc, "id");
	c->kind = column_number(desc, "kind");
	c->queue = column_number(desc, "queue");
	c->payload = column_number(desc, "payload");
	c->priority = column_number(desc, "priority");
	c->status = column_number(desc, "status");
	c->attempts = column_number(desc, "attempts");
	c->max_attempts = column_number(desc, "max_attempts");
	c->run_at = column_number(desc, "run_at");
	c->timeout = column_number(desc, "timeout");
	c->owner = column_number(desc, "owner");
	c->net = column_number(desc, "net");
	c->created_at = column_number(desc, "created_at");
	c->started_at = column_number(desc, "started_at");
	c->locked_by = column_number(desc, "locked_by");
	c->worker_pid = column_number(desc, "worker_pid");
	c->cancel_requested = column_number(desc, "cancel_requested");
	c->id_sequence = getIdentitySequence(RelationGetRelid(rel), c->id, false);
	cached_relid = RelationGetRelid(rel);
	cached_natts = rel->rd_rel->relnatts;
	return c;
}

/* A timeout as stored: ms * interval '1 ms', all of it in the time field. */
static Interval *
ms_interval(int64 ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = ms * 1000;
	return iv;
}

/* The OID of relation jobq.<name>; an error when it does not exist. */
Oid
jobq_qrel_relid(const char *name)
{
	Oid			relid = get_relname_relid(name, get_namespace_oid("jobq", false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"jobq.%s\" does not exist", name),
				 errhint("Install jobq again: DROP EXTENSION jobq; CREATE EXTENSION jobq;")));
	return relid;
}

/*
 * Give a row version written with heap_insert, or with heap_update when it
 * is not heap-only, its index entries; the executor state is made at the
 * first call and kept until jobq_qrel_index_end.  The result relation has
 * no range table entry, so after an update the executor takes no column as
 * updated: true of every index of jobq._queue for a claim (none depends on
 * a column it changes), and each entry gets the hint that its index is
 * logically unchanged, with which a B-tree deletes the older versions of
 * the row bottom-up before splitting a page.  Unique indexes are checked.
 */
void
jobq_qrel_index_row(JobqIndexer *ix, Relation rel, HeapTuple tuple, bool update)
{
	if (ix->estate == NULL)
	{
		ix->estate = CreateExecutorState();
		ix->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(ix->rri, rel, 0, NULL, 0);
		ExecOpenIndices(ix->rri, false);
		ix->slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	}
	ExecStoreHeapTuple(tuple, ix->slot, false);
	(void) ExecInsertIndexTuples(ix->rri, ix->slot, ix->estate, update, false, NULL, NIL);
	ExecClearTuple(ix->slot);
	ResetPerTupleExprContext(ix->estate);
}

void
jobq_qrel_index_end(JobqIndexer *ix)
{
	if (ix->estate == NULL)
		return;
	ExecDropSingleTupleTableSlot(ix->slot);
	ExecCloseIndices(ix->rri);
	FreeExecutorState(ix->estate);
	ix->estate = NULL;
}

/*
 * Insert one job without a key, pending, and return its id: the row the
 * INSERT of queue.c would write, with the column defaults of
 * jobq--*.sql (status 'pending', no attempt, created_at now(), not
 * cancelled) and every other column NULL.  Its values are valid (see
 * new_job_from_args); a column this file does not know must be nullable
 * without a default, or the insert refuses to guess.
 */
int64
jobq_qrel_insert(const JobqNewJob *job, Jsonb *payload)
{
	Relation	rel;
	TupleDesc	desc;
	const JobqQueueColumns *c;
	JobqIndexer ix = {0};
	HeapTuple	tuple;
	Datum	   *values;
	bool	   *nulls;
	int64		id;

	rel = table_open(jobq_qrel_relid("_queue"), RowExclusiveLock);
	desc = RelationGetDescr(rel);
	c = jobq_qrel_columns(rel);

	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		nulls[i] = true;
		if (!att->attisdropped && (att->attnotnull || att->atthasdef) &&
			att->attnum != c->id && att->attnum != c->kind &&
			att->attnum != c->queue && att->attnum != c->payload &&
			att->attnum != c->priority && att->attnum != c->status &&
			att->attnum != c->attempts && att->attnum != c->max_attempts &&
			att->attnum != c->run_at && att->attnum != c->owner &&
			att->attnum != c->net && att->attnum != c->created_at &&
			att->attnum != c->cancel_requested)
			elog(ERROR, "column \"%s\" of jobq._queue has a default or is NOT NULL, which this build of jobq does not know",
				 NameStr(att->attname));
	}

#define SET(col, datum) (values[(col) - 1] = (datum), nulls[(col) - 1] = false)
	id = nextval_internal(c->id_sequence, false);
	SET(c->id, Int64GetDatum(id));
	SET(c->kind, CStringGetTextDatum(job->kind));
	SET(c->queue, CStringGetTextDatum(job->queue));
	SET(c->payload, JsonbPGetDatum(payload));
	SET(c->priority, Int32GetDatum(job->priority));
	SET(c->status, CStringGetTextDatum("pending"));
	SET(c->attempts, Int32GetDatum(0));
	SET(c->max_attempts, Int32GetDatum(job->max_attempts));
	SET(c->run_at, TimestampTzGetDatum(job->run_at));
	if (job->timeout_ms > 0)
		SET(c->timeout, IntervalPGetDatum(ms_interval(job->timeout_ms)));
	SET(c->owner, ObjectIdGetDatum(job->owner));
	SET(c->net, BoolGetDatum(job->net));
	SET(c->created_at, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
	SET(c->cancel_requested, BoolGetDatum(false));
#undef SET

	tuple = heap_form_tuple(desc, values, nulls);
	heap_insert(rel, tuple, GetCurrentCommandId(true), 0, NULL);
	jobq_qrel_index_row(&ix, rel, tuple, false);
	jobq_qrel_index_end(&ix);
	heap_freetuple(tuple);
	table_close(rel, NoLock);

	/* later statements of the transaction see the job */
	CommandCounterIncrement();
	return id;
}
