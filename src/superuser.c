/*-------------------------------------------------------------------------
 *
 * superuser.c
 *	  The switch to the bootstrap superuser, and the SPI plumbing of the
 *	  statements jobq runs on its own behalf (the queue_*.c files, qrel.c,
 *	  schedule.c).
 *
 * jobq_superuser_begin becomes the bootstrap superuser with a search path
 * of pg_catalog alone, whatever the caller's role and path;
 * jobq_superuser_end goes back.  The path: up to PostgreSQL 16 an override
 * search path (cheaper than a GUC change, and no temporary schema), from
 * 17 on, where those are gone, search_path "pg_catalog, pg_temp" at a GUC
 * nest level of its own (jobq_compat_push_catalog_path, compat.h).  jobq_superuser_spi_begin does that, pushes
 * a snapshot if the caller has none (a worker's own transactions) and
 * connects to SPI; jobq_superuser_spi_end undoes it all and switches back
 * to the caller's memory context.  The caller must be in a transaction.
 * Plans are prepared once per backend and kept (jobq_superuser_prepare).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "compat.h"
#include "superuser.h"

/*
 * Become the bootstrap superuser with a search path of pg_catalog alone,
 * whatever the caller's role and path; jobq_superuser_end goes back.  For
 * every statement jobq runs on its own behalf (the queue_*.c files, qrel.c and schedule.c).
 */
void
jobq_superuser_begin(JobqSuperuser *su)
{
	GetUserIdAndSecContext(&su->save_userid, &su->save_sec_context);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   su->save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	su->path_nestlevel = jobq_compat_push_catalog_path();
}

void
jobq_superuser_end(const JobqSuperuser *su)
{
	jobq_compat_pop_catalog_path(su->path_nestlevel);
	SetUserIdAndSecContext(su->save_userid, su->save_sec_context);
}

/*
 * Connect to SPI as the bootstrap superuser with a safe search_path.
 */
void
jobq_superuser_spi_begin(JobqSpiCall *qc)
{
	qc->caller_cxt = CurrentMemoryContext;
	qc->guc_nestlevel = 0;
	jobq_superuser_begin(&qc->su);
	/* a worker's own transactions have no snapshot yet */
	qc->pushed_snapshot = !ActiveSnapshotSet();
	if (qc->pushed_snapshot)
		PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

void
jobq_superuser_spi_end(JobqSpiCall *qc)
{
	if (SPI_finish() != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed");
	if (qc->guc_nestlevel > 0)
		AtEOXact_GUC(true, qc->guc_nestlevel);
	if (qc->pushed_snapshot)
		PopActiveSnapshot();
	jobq_superuser_end(&qc->su);
	MemoryContextSwitchTo(qc->caller_cxt);
}

/*
 * jobq_superuser_spi_begin for the workers' statements that find jobs in jobq._queue:
 * completions, failures, releases by id and the next due time (claims are
 * not statements: claim.c).  Their plans must read the indexes whatever the
 * table's statistics say.  A vacuum while the queue is nearly empty (worker
 * 0's after a burst, or autovacuum's) leaves statistics that call the table
 * empty and invalidates the cached plans; planned from those, a completion
 * scans the whole table, for as long as the next backlog lasts.
 * Sequential scans, bitmap scans and sorts are therefore off while these
 * statements are planned and run (the plan cache replans them only here),
 * and their plans are generic: with those paths off a custom plan could be
 * no better, and the completion's, chosen anew for each array of ids, cost
 * a planning per batch.  jobq_superuser_spi_end puts the settings back.
 */
void
jobq_superuser_spi_begin_indexed(JobqSpiCall *qc)
{
	static const char *const settings[][2] = {
		{"enable_seqscan", "off"},
		{"enable_bitmapscan", "off"},
		{"enable_sort", "off"},
		{"plan_cache_mode", "force_generic_plan"},
	};

	jobq_superuser_spi_begin(qc);
	qc->guc_nestlevel = NewGUCNestLevel();
	for (int i = 0; i < (int) lengthof(settings); i++)
		(void) set_config_option(settings[i][0], settings[i][1], PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

SPIPlanPtr
jobq_superuser_prepare(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	if (*cache == NULL)
	{
		SPIPlanPtr plan = SPI_prepare(sql, nargs, argtypes);

		if (plan == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*cache = plan;
	}
	return *cache;
}

/* Run a prepared statement and check that it did what was expected. */
uint64
jobq_superuser_execute(SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	int rc = SPI_execute_plan(plan, values, nulls, false, 0);

	if (rc != expected)
		elog(ERROR, "jobq statement failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}
