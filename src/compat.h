/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The differences between the PostgreSQL major versions jobq builds
 *	  against (15 to 18): the one place that tests PG_VERSION_NUM.
 *
 * jobq's files are written against the newest API; this header gives the
 * older versions what they lack, or a jobq_compat_ function where a
 * signature changed, each with the version it changed in.  Tested on 15 and
 * 18; the branches for 16 and 17 follow PostgreSQL's documented changes
 * (its release notes and headers) and are only compiled on 15 and 18.
 *
 *	16: object_aclcheck replaces pg_proc_aclcheck and its kin;
 *		heap_update says which indexes need entries for the new row version
 *		(TU_UpdateIndexes: none, all, or only the summarizing ones, such as
 *		BRIN, for a HOT update), and ExecInsertIndexTuples takes
 *		onlySummarizing to match.
 *	17: PushOverrideSearchPath is gone (a GUC nest level and search_path
 *		instead); PGPROC's lxid is in vxid; CreateWaitEventSet takes a
 *		resource owner instead of a memory context; getIdentitySequence
 *		takes the relation.
 *	18: pg_noreturn, before the declaration, replaces
 *		pg_attribute_noreturn(), after it; index_beginscan takes the
 *		instrumentation of the scan (NULL: none).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_COMPAT_H
#define JOBQ_COMPAT_H

#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#if PG_VERSION_NUM < 150000
#error "jobq needs PostgreSQL 15 or later"
#endif

/* 18: a function that does not return: pg_noreturn extern void f(void); */
#if PG_VERSION_NUM < 180000
#define pg_noreturn pg_attribute_noreturn()
#endif

/* 16: one privilege check for every kind of object (jobq checks functions) */
#if PG_VERSION_NUM < 160000
static inline AclResult
object_aclcheck(Oid classid, Oid objectid, Oid roleid, AclMode mode)
{
	if (classid != ProcedureRelationId)
		elog(ERROR, "object_aclcheck of class %u is not provided for PostgreSQL 15", classid);
	return pg_proc_aclcheck(objectid, roleid, mode);
}
#endif

/* 17: the local transaction id of this backend's top-level transaction */
#if PG_VERSION_NUM >= 170000
#define jobq_compat_my_lxid() (MyProc->vxid.lxid)
#else
#define jobq_compat_my_lxid() (MyProc->lxid)
#endif

/* 17: this process's number (its PGPROC's index) */
#if PG_VERSION_NUM >= 170000
#define jobq_compat_my_procno() ((int) MyProcNumber)
#else
#define jobq_compat_my_procno() (MyProc->pgprocno)
#endif

/*
 * 17: a search path of pg_catalog for the statements jobq runs on its own
 * behalf, until jobq_compat_pop_catalog_path(the result).  Up to 16 an
 * override search path (pg_catalog alone); from 17 on, search_path set to
 * "pg_catalog, pg_temp" at a new GUC nest level (RestrictSearchPath), where
 * the temporary schema comes after pg_catalog and holds no functions or
 * operators: jobq's statements name everything else with its schema, so
 * they resolve the same names either way.  Undone at the end of the
 * (sub)transaction if an error skips the pop.
 */
static inline int
jobq_compat_push_catalog_path(void)
{
#if PG_VERSION_NUM >= 170000
	int nestlevel = NewGUCNestLevel();

	RestrictSearchPath();
	return nestlevel;
#else
	OverrideSearchPath catalog_only = {NIL, true, false, 0};

	PushOverrideSearchPath(&catalog_only);
	return 0;
#endif
}

static inline void
jobq_compat_pop_catalog_path(int nestlevel)
{
#if PG_VERSION_NUM >= 170000
	AtEOXact_GUC(true, nestlevel);
#else
	PopOverrideSearchPath();
#endif
}

/*
 * 17: a wait event set of nevents, freed with FreeWaitEventSet; from 17 on
 * tracked by the current resource owner (as WaitLatchOrSocket does), up to
 * 16 allocated in the current memory context.
 */
static inline WaitEventSet *
jobq_compat_wait_event_set(int nevents)
{
#if PG_VERSION_NUM >= 170000
	return CreateWaitEventSet(CurrentResourceOwner, nevents);
#else
	return CreateWaitEventSet(CurrentMemoryContext, nevents);
#endif
}

/* 17: the sequence of an identity column */
static inline Oid
jobq_compat_identity_sequence(Relation rel, AttrNumber attnum)
{
#if PG_VERSION_NUM >= 170000
	return getIdentitySequence(rel, attnum, false);
#else
	return getIdentitySequence(RelationGetRelid(rel), attnum, false);
#endif
}

/*
 * 16: which indexes need an entry for the row version heap_update wrote.
 * Up to 15 a HOT update needs none and any other needs all; from 16 on a
 * HOT update may still need entries in the summarizing indexes (BRIN).
 */
#if PG_VERSION_NUM < 160000
typedef enum TU_UpdateIndexes
{
	TU_None,
	TU_All,
	TU_Summarizing,
} TU_UpdateIndexes;
#endif

static inline TM_Result
jobq_compat_heap_update(Relation rel, ItemPointer otid, HeapTuple newtup,
						CommandId cid, Snapshot crosscheck, bool wait,
						TM_FailureData *tmfd, LockTupleMode *lockmode,
						TU_UpdateIndexes *update_indexes)
{
#if PG_VERSION_NUM >= 160000
	return heap_update(rel, otid, newtup, cid, crosscheck, wait, tmfd, lockmode,
					   update_indexes);
#else
	TM_Result result = heap_update(rel, otid, newtup, cid, crosscheck, wait, tmfd,
								   lockmode);

	*update_indexes = (result == TM_Ok && !HeapTupleIsHeapOnly(newtup)) ? TU_All : TU_None;
	return result;
#endif
}

/*
 * 16: the index entries of a row version; only those of the summarizing
 * indexes when onlySummarizing (a HOT update: TU_Summarizing).  Up to 15
 * there are no such updates and onlySummarizing is always false.
 */
static inline List *
jobq_compat_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate,
								bool update, bool onlySummarizing)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, update, false, NULL, NIL,
								 onlySummarizing);
#else
	Assert(!onlySummarizing);
	return ExecInsertIndexTuples(rri, slot, estate, update, false, NULL, NIL);
#endif
}

/* 18: an index scan, without instrumentation */
static inline IndexScanDesc
jobq_compat_index_beginscan(Relation heap, Relation index, Snapshot snapshot,
							int nkeys, int norderbys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys);
#else
	return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

#endif /* JOBQ_COMPAT_H */
