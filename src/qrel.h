/*-------------------------------------------------------------------------
 *
 * qrel.h
 *	  jobq._queue written without the executor (qrel.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_QREL_H
#define JOBQ_QREL_H

#include "jobq.h"

typedef struct JobqQueueColumns
{
	AttrNumber id;
	AttrNumber kind;
	AttrNumber queue;
	AttrNumber payload;
	AttrNumber priority;
	AttrNumber status;
	AttrNumber attempts;
	AttrNumber max_attempts;
	AttrNumber run_at;
	AttrNumber timeout;
	AttrNumber owner;
	AttrNumber net;
	AttrNumber created_at;
	AttrNumber started_at;
	AttrNumber locked_by;
	AttrNumber worker_pid;
	AttrNumber cancel_requested;
	AttrNumber precedence;		/* InvalidAttrNumber before ALTER EXTENSION jobq UPDATE to 0.2.0 */
	AttrNumber concurrency_key; /* the same */
	AttrNumber job_key;
	AttrNumber external;	/* the same */
	AttrNumber lease_until; /* the same */
	Oid id_sequence;		/* the identity sequence of id */
} JobqQueueColumns;

/* where the index entries of rows written without the executor go */
typedef struct JobqIndexer
{
	struct EState *estate; /* NULL until the first row */
	struct ResultRelInfo *rri;
	struct TupleTableSlot *slot;
} JobqIndexer;

extern const JobqQueueColumns *jobq_qrel_columns(Relation rel);
extern Oid jobq_qrel_relid(const char *name);
extern bool jobq_qrel_has_queue_columns(void);

/* a queue's precedence in SQL, for statements that write jobq._queue: queue is an expression */
#define JOBQ_PRECEDENCE_OF(queue) \
	"coalesce((SELECT p.precedence FROM jobq._queues p WHERE p.name = " queue "), 0)"
/* whether a kind (an expression) is external, for the same statements */
#define JOBQ_EXTERNAL_OF(kind) \
	"EXISTS (SELECT FROM jobq._kinds k WHERE k.kind = " kind " AND k.external)"
extern struct List *jobq_qrel_index_row(JobqIndexer *ix, Relation rel,
										HeapTuple tuple, bool update,
										bool only_summarizing);
extern void jobq_qrel_index_end(JobqIndexer *ix);
extern int64 jobq_qrel_insert(const JobqNewJob *job, Jsonb *payload);

#endif /* JOBQ_QREL_H */
