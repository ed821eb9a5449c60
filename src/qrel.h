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
	Oid id_sequence; /* the identity sequence of id */
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
extern struct List *jobq_qrel_index_row(JobqIndexer *ix, Relation rel,
										HeapTuple tuple, bool update,
										bool only_summarizing);
extern void jobq_qrel_index_end(JobqIndexer *ix);
extern int64 jobq_qrel_insert(const JobqNewJob *job, Jsonb *payload);

#endif /* JOBQ_QREL_H */
