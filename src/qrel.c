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
 * through INSERT ... ON CONFLICT (queue_enqueue.c), as do jobq.enqueue_many's
 * batches, where one statement serves many rows.  So does a job without a
 * key when jobq._queue has more than this file knows of: a trigger, a rule,
 * a CHECK constraint or a column default that jobq--*.sql did not create
 * (see executor_needed): the statement then does what the executor does.
 * Like the statement, the insert runs as the bootstrap superuser with a
 * search path of pg_catalog alone (jobq_superuser_begin).
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
#include "common/int.h"
#include "executor/executor.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "compat.h"
#include "qrel.h"
#include "queue_limits.h"
#include "superuser.h"

/* A column that the tables of an older version may lack: InvalidAttrNumber then. */
static AttrNumber
new_column_number(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

static AttrNumber
column_number(TupleDesc desc, const char *name)
{
	AttrNumber attnum = new_column_number(desc, name);

	if (attnum == InvalidAttrNumber)
		elog(ERROR, "column \"%s\" of jobq._queue does not exist", name);
	return attnum;
}

/*
 * Whether jobq._queue has the columns of queues as objects, precedence and
 * concurrency_key (0.2.0 on): the statements that write them name them only
 * then.
 */
bool
jobq_qrel_has_queue_columns(void)
{
	return get_attnum(jobq_qrel_relid("_queue"), "precedence") != InvalidAttrNumber;
}

/*
 * The attribute numbers of jobq._queue's columns and the sequence behind
 * its id, looked up once per table rather than at every write.  A
 * reinstalled extension has a new table; the extension's dependencies keep
 * these columns and the sequence from being dropped, and a column added
 * changes relnatts.
 */
const JobqQueueColumns *
jobq_qrel_columns(Relation rel)
{
	static JobqQueueColumns cached;
	static Oid cached_relid = InvalidOid;
	static int cached_natts = 0;
	TupleDesc desc = RelationGetDescr(rel);
	JobqQueueColumns *c = &cached;

	if (RelationGetRelid(rel) == cached_relid && rel->rd_rel->relnatts == cached_natts)
		return c;
	cached_relid = InvalidOid; /* until every column is found */
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
	c->precedence = new_column_number(desc, "precedence");
	c->concurrency_key = new_column_number(desc, "concurrency_key");
	c->job_key = column_number(desc, "job_key");
	c->external = new_column_number(desc, "external");
	c->lease_until = new_column_number(desc, "lease_until");
	c->id_sequence = jobq_compat_identity_sequence(rel, c->id);
	cached_relid = RelationGetRelid(rel);
	cached_natts = rel->rd_rel->relnatts;
	return c;
}

/*
 * A timeout as stored: ms * interval '1 ms', all of it in the time field,
 * and the same error as that product when it does not fit.
 */
static Interval *
ms_interval(int64 ms)
{
	Interval *iv = palloc0(sizeof(Interval));

	if (pg_mul_s64_overflow(ms, 1000, &iv->time))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("interval out of range")));
	return iv;
}

/* The CHECK constraints jobq--*.sql gives jobq._queue: status, max_attempts. */
#define QUEUE_CHECKS 2

/*
 * Whether jobq._queue has anything that only the executor would honour on
 * an insert: a trigger (foreign keys and constraint triggers included), a
 * rule, a generated column, or a CHECK constraint but its own two.
 * Checked at each call: these may come and go without the column cache
 * noticing.  (A default or NOT NULL on a column the insert leaves NULL is
 * checked where the row is built.)
 */
static bool
executor_needed(Relation rel)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;

	return rel->trigdesc != NULL || rel->rd_rules != NULL ||
		   (constr != NULL &&
			(constr->num_check != QUEUE_CHECKS || constr->has_generated_stored));
}

/* The OID of relation jobq.<name>; an error when it does not exist. */
Oid
jobq_qrel_relid(const char *name)
{
	Oid relid = get_relname_relid(name, get_namespace_oid("jobq", false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"jobq.%s\" does not exist", name),
				 errhint("Install jobq again: DROP EXTENSION jobq; CREATE EXTENSION jobq;")));
	return relid;
}

/*
 * Give a row version written with heap_insert, or with heap_update, its
 * index entries: after an update, those heap_update said it needs (its
 * TU_UpdateIndexes: all of them, none for a HOT update, or from PostgreSQL
 * 16 on those of the summarizing indexes alone, only_summarizing, for a
 * HOT update that changed a column a BRIN index covers; the caller skips
 * TU_None).  The executor state is made at the
 * first call and kept until jobq_qrel_index_end.  The result relation has
 * no range table entry, so after an update the executor takes no column as
 * updated: true of every index of jobq._queue for a claim (none depends on
 * a column it changes), and each entry gets the hint that its index is
 * logically unchanged, with which a B-tree deletes the older versions of
 * the row bottom-up before splitting a page.  Unique indexes are checked;
 * returns the deferrable ones whose check is left for later (none of
 * jobq._queue's indexes is deferrable).
 */
List *
jobq_qrel_index_row(JobqIndexer *ix, Relation rel, HeapTuple tuple, bool update,
					bool only_summarizing)
{
	List *recheck;

	if (ix->estate == NULL)
	{
		ix->estate = CreateExecutorState();
		ix->rri = makeNode(ResultRelInfo);
		InitResultRelInfo(ix->rri, rel, 0, NULL, 0);
		ExecOpenIndices(ix->rri, false);
		ix->slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
	}
	ExecStoreHeapTuple(tuple, ix->slot, false);
	recheck = jobq_compat_insert_index_tuples(ix->rri, ix->slot, ix->estate, update,
											  only_summarizing);
	ExecClearTuple(ix->slot);
	ResetPerTupleExprContext(ix->estate);
	return recheck;
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
 * INSERT of queue_enqueue.c would write, with the column defaults of
 * jobq--*.sql (status 'pending', no attempt, created_at now(), not
 * cancelled) and every other column NULL.  Its values are valid (see
 * new_job_from_args).  Returns 0, having written nothing, when the table
 * has more than this file knows of (executor_needed, or a default or NOT
 * NULL on a column left NULL): the caller inserts the job with a statement
 * instead.
 */
int64
jobq_qrel_insert(const JobqNewJob *job, Jsonb *payload)
{
	JobqSuperuser su;
	Relation rel;
	TupleDesc desc;
	const JobqQueueColumns *c;
	JobqIndexer ix = {0};
	HeapTuple tuple;
	Datum *values;
	bool *nulls;
	List *recheck;
	bool fallback = false;
	int64 id;
	int32 precedence = jobq_limits_precedence(job->queue);

	jobq_superuser_begin(&su);
	rel = table_open(jobq_qrel_relid("_queue"), RowExclusiveLock);
	desc = RelationGetDescr(rel);
	c = jobq_qrel_columns(rel);

	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	memset(nulls, true, sizeof(bool) * desc->natts);

#define SET(col, datum) (values[(col) -1] = (datum), nulls[(col) -1] = false)
	SET(c->id, (Datum) 0); /* taken from the sequence below */
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
	if (c->precedence != InvalidAttrNumber)
		SET(c->precedence, Int32GetDatum(precedence));
	if (c->concurrency_key != InvalidAttrNumber && job->concurrency_key != NULL)
		SET(c->concurrency_key, CStringGetTextDatum(job->concurrency_key));
	if (c->external != InvalidAttrNumber)
		SET(c->external, BoolGetDatum(job->external));
#undef SET

	/* a column left NULL must not have a default or be NOT NULL */
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (nulls[i] && !att->attisdropped && (att->attnotnull || att->atthasdef))
			fallback = true;
	}
	if (fallback || executor_needed(rel))
	{
		table_close(rel, NoLock);
		jobq_superuser_end(&su);
		return 0;
	}

	id = nextval_internal(c->id_sequence, false);
	values[c->id - 1] = Int64GetDatum(id);
	tuple = heap_form_tuple(desc, values, nulls);
	heap_insert(rel, tuple, GetCurrentCommandId(true), 0, NULL);
	recheck = jobq_qrel_index_row(&ix, rel, tuple, false, false);
	if (recheck != NIL) /* a deferrable unique index: executor_needed missed it */
		elog(ERROR, "jobq._queue has a deferrable unique index");
	jobq_qrel_index_end(&ix);
	heap_freetuple(tuple);
	table_close(rel, NoLock);
	jobq_superuser_end(&su);

	/* later statements of the transaction see the job */
	CommandCounterIncrement();
	return id;
}
