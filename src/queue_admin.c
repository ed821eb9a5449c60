/*-------------------------------------------------------------------------
 *
 * queue_admin.c
 *	  Cancel and retry, on behalf of a caller: only the jobs of roles the
 *	  caller is a member of.
 *
 * Each function connects to SPI as the bootstrap superuser with a search
 * path of pg_catalog alone (superuser.c), runs prepared statements
 * (prepared once per backend and kept), and disconnects: callers check the
 * caller's rights first and pass the caller's role where a statement
 * filters by it.  Callers must be in a transaction; values returned are
 * allocated in the caller's memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "queue.h"
#include "queue_int.h"
#include "superuser.h"

/* kept plans */
static SPIPlanPtr plan_cancel_pending = NULL;
static SPIPlanPtr plan_cancel_running = NULL;
static SPIPlanPtr plan_visible = NULL;
static SPIPlanPtr plan_retry = NULL;
static SPIPlanPtr plan_key_taken = NULL;

#define VISIBLE_TO_CALLER "pg_has_role($2, owner::oid, 'MEMBER')"

/*
 * Whether the caller may see a job of that id, in either table.  Must be
 * called between queue_begin and queue_end.
 */
static bool
visible_to_caller(Datum *values)
{
	Oid types[2] = {INT8OID, OIDOID};

	jobq_superuser_execute(jobq_superuser_prepare(&plan_visible,
												  "SELECT FROM jobq._queue WHERE id = $1 AND " VISIBLE_TO_CALLER
												  " UNION ALL "
												  "SELECT FROM jobq._done WHERE id = $1 AND " VISIBLE_TO_CALLER,
												  2, types),
						   values, NULL, SPI_OK_SELECT);
	return SPI_processed > 0;
}

int
jobq_queue_cancel(int64 job_id, Oid caller)
{
	JobqSpiCall qc;
	Oid types[2] = {INT8OID, OIDOID};
	Datum values[2];
	int result;

	values[0] = Int64GetDatum(job_id);
	values[1] = ObjectIdGetDatum(caller);

	jobq_superuser_spi_begin(&qc);
	/* a pending job is cancelled at once, a running one is asked to stop */
	if (jobq_superuser_execute(jobq_queue_prepare_move(&plan_cancel_pending,
													   "id = $1 AND status = 'pending' AND " VISIBLE_TO_CALLER,
													   "'cancelled'", "NULL", KEEP_ERROR, "", 2, types),
							   values, NULL, SPI_OK_INSERT) == 1 ||
		jobq_superuser_execute(jobq_superuser_prepare(&plan_cancel_running,
													  "UPDATE jobq._queue SET cancel_requested = true "
													  "WHERE id = $1 AND status = 'running' AND " VISIBLE_TO_CALLER,
													  2, types),
							   values, NULL, SPI_OK_UPDATE) == 1)
		result = JOBQ_DONE;
	else if (visible_to_caller(values))
		result = JOBQ_WRONG_STATE;
	else
		result = JOBQ_NOT_FOUND;
	jobq_superuser_spi_end(&qc);
	return result;
}

int
jobq_queue_retry(int64 job_id, Oid caller)
{
	JobqSpiCall qc;
	Oid types[2] = {INT8OID, OIDOID};
	Datum values[2];
	int result;

	values[0] = Int64GetDatum(job_id);
	values[1] = ObjectIdGetDatum(caller);

	jobq_superuser_spi_begin(&qc);

	/* a live job holding the same key makes the retry impossible */
	jobq_superuser_execute(jobq_superuser_prepare(&plan_key_taken,
												  "SELECT d.job_key FROM jobq._done d JOIN jobq._queue q "
												  "ON q.owner = d.owner AND q.job_key = d.job_key "
												  "WHERE d.id = $1 AND d.status IN ('dead', 'cancelled') "
												  "AND pg_has_role($2, d.owner::oid, 'MEMBER')",
												  2, types),
						   values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		char *key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("cannot retry job " INT64_FORMAT " while another job with key \"%s\" is pending or running",
						job_id, key)));
	}

	if (jobq_superuser_execute(jobq_superuser_prepare(&plan_retry,
													  "WITH d AS (DELETE FROM jobq._done WHERE id = $1 "
													  "AND status IN ('dead', 'cancelled') AND " VISIBLE_TO_CALLER
													  " RETURNING *) "
													  "INSERT INTO jobq._queue (id, kind, queue, payload, priority, "
													  "status, attempts, max_attempts, run_at, timeout, job_key, owner, "
													  "net, created_at, last_error, last_error_sqlstate, last_error_context, "
													  "last_error_at) "
													  "SELECT id, kind, queue, payload, priority, 'pending', 0, "
													  "max_attempts, now(), timeout, job_key, owner, "
													  "EXISTS (SELECT FROM jobq._kinds k WHERE k.kind = d.kind AND k.net), "
													  "created_at, last_error, last_error_sqlstate, last_error_context, last_error_at "
													  "FROM d",
													  2, types),
							   values, NULL, SPI_OK_INSERT) == 1)
		result = JOBQ_DONE;
	else if (visible_to_caller(values))
		result = JOBQ_WRONG_STATE;
	else
		result = JOBQ_NOT_FOUND;
	jobq_superuser_spi_end(&qc);
	return result;
}
