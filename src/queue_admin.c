/*-------------------------------------------------------------------------
 *
 * queue_admin.c
 *	  Cancel and retry a job, and retry, cancel or purge the jobs a filter
 *	  selects, on behalf of a caller: only the jobs of roles the caller is a
 *	  member of.
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
#include "utils/timestamp.h"

#include "qrel.h"
#include "queue.h"
#include "queue_int.h"
#include "superuser.h"

/* kept plans */
static SPIPlanPtr plan_cancel_pending = NULL;
static SPIPlanPtr plan_cancel_running = NULL;
static SPIPlanPtr plan_visible = NULL;
static SPIPlanPtr plan_retry = NULL;
static SPIPlanPtr plan_key_taken = NULL;
static SPIPlanPtr plan_retry_jobs = NULL;
static SPIPlanPtr plan_cancel_jobs = NULL;
static SPIPlanPtr plan_purge_jobs = NULL;

#define VISIBLE_TO_CALLER "pg_has_role($2, owner::oid, 'MEMBER')"

/*
 * A retried job goes back to jobq._queue from the rows d deleted from
 * jobq._done: pending, no attempts yet, due now, on the lane its kind has
 * now, with its last error kept until the next attempt.
 */
#define RETRY_INSERT \
	"INSERT INTO jobq._queue (id, kind, queue, payload, priority, " \
	"status, attempts, max_attempts, run_at, timeout, job_key, owner, " \
	"net, created_at, last_error, last_error_sqlstate, last_error_context, " \
	"last_error_at%s) " \
	"SELECT id, kind, queue, payload, priority, 'pending', 0, " \
	"max_attempts, now(), timeout, job_key, owner, " \
	"EXISTS (SELECT FROM jobq._kinds k WHERE k.kind = d.kind AND k.net), " \
	"created_at, last_error, last_error_sqlstate, last_error_context, last_error_at%s " \
	"FROM d"

/*
 * Prepare a statement that ends in RETRY_INSERT, once: its two %s are the
 * columns precedence (its queue's), concurrency_key (kept) and external
 * (its kind's lane now), or nothing in the tables of 0.1.0.
 */
static SPIPlanPtr
prepare_retry(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	bool has;

	if (*plan != NULL)
		return *plan;
	has = jobq_qrel_has_queue_columns();
	return jobq_superuser_prepare(plan,
								  psprintf(sql, has ? ", precedence, concurrency_key, external" : "",
										   has ? ", " JOBQ_PRECEDENCE_OF("d.queue") ", d.concurrency_key, " JOBQ_EXTERNAL_OF("d.kind") : ""),
								  nargs, types);
}

/*
 * The filter of the bulk functions, on column t for the time range; its
 * parameters are those bulk_values() fills: $1 status (purge only), $2 the
 * caller, $3 queue, $4 kind, $5 owner (0: any), $6 SQLSTATE, $7 and $8 the
 * time range.  A NULL parameter matches every job.
 */
#define BULK_FILTER(t) \
	VISIBLE_TO_CALLER " AND ($3 IS NULL OR queue = $3) AND ($4 IS NULL OR kind = $4) " \
					  "AND ($5 = 0::oid OR owner::oid = $5) " \
					  "AND ($6 IS NULL OR last_error_sqlstate = $6) " \
					  "AND " t " >= $7 AND " t " < $8"
#define BULK_NARGS 8

/*
 * The end of the filter of jobq_queue_retry_jobs, after the dead jobs it
 * selects (c): of those that share an owner and a key, the last to finish,
 * unless a live job holds the key.
 */
#define DEAD_FILTER \
	BULK_FILTER("finished_at") \
	"), p AS (SELECT id FROM c WHERE job_key IS NULL OR (n = 1 AND NOT EXISTS " \
	"(SELECT FROM jobq._queue q WHERE q.owner = c.owner AND q.job_key = c.job_key))), " \
	"d AS (DELETE FROM jobq._done WHERE id IN (SELECT id FROM p) RETURNING *) " RETRY_INSERT

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

/* Whether job job_id exists and caller may see it (a member of its owner). */
bool
jobq_queue_visible(int64 job_id, Oid caller)
{
	JobqSpiCall qc;
	Datum values[2];
	bool found;

	values[0] = Int64GetDatum(job_id);
	values[1] = ObjectIdGetDatum(caller);
	jobq_superuser_spi_begin(&qc);
	found = visible_to_caller(values);
	jobq_superuser_spi_end(&qc);
	return found;
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
							   values, NULL, SPI_OK_INSERT) == 1)
		result = JOBQ_DONE;
	else if (jobq_superuser_execute(jobq_superuser_prepare(&plan_cancel_running,
														   "UPDATE jobq._queue SET cancel_requested = true "
														   "WHERE id = $1 AND status = 'running' AND " VISIBLE_TO_CALLER,
														   2, types),
									values, NULL, SPI_OK_UPDATE) == 1)
		result = JOBQ_STOPPING;
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

	if (jobq_superuser_execute(prepare_retry(&plan_retry,
											 "WITH d AS (DELETE FROM jobq._done WHERE id = $1 "
											 "AND status IN ('dead', 'cancelled') AND " VISIBLE_TO_CALLER
											 " RETURNING *) " RETRY_INSERT,
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

static Oid bulk_types[BULK_NARGS] = {TEXTOID, OIDOID, TEXTOID, TEXTOID, OIDOID,
									 TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};

/* the parameters of BULK_FILTER, from a filter */
static void
bulk_values(const JobqJobFilter *f, Oid caller, Datum *values, char *nulls)
{
	const char *texts[BULK_NARGS] = {f->status, NULL, f->queue, f->kind, NULL, f->sqlstate};
	int i;

	memset(nulls, ' ', BULK_NARGS);
	for (i = 0; i < BULK_NARGS; i++)
	{
		if (texts[i] != NULL)
			values[i] = CStringGetTextDatum(texts[i]);
		else if (bulk_types[i] == TEXTOID)
			nulls[i] = 'n';
	}
	values[1] = ObjectIdGetDatum(caller);
	values[4] = ObjectIdGetDatum(f->owner);
	values[6] = TimestampTzGetDatum(f->since);
	values[7] = TimestampTzGetDatum(f->until);
}

/* run the statement prepare() returns with the filter; returns the rows it changed */
static int64
bulk_execute(SPIPlanPtr (*prepare)(void), const JobqJobFilter *f, Oid caller, int expected)
{
	JobqSpiCall qc;
	Datum values[BULK_NARGS];
	char nulls[BULK_NARGS];
	int64 n;

	bulk_values(f, caller, values, nulls);
	jobq_superuser_spi_begin(&qc);
	n = (int64) jobq_superuser_execute(prepare(), values, nulls, expected);
	jobq_superuser_spi_end(&qc);
	return n;
}

/*
 * Of the dead jobs the filter selects (finished_at in the range), retry
 * those jobq_queue_retry would: of dead jobs that share an owner and a
 * job_key only the one that finished last, and none while a live job holds
 * the key (those stay dead).
 */
static SPIPlanPtr
prepare_retry_jobs(void)
{
	return prepare_retry(&plan_retry_jobs,
						 "WITH c AS (SELECT id, owner, job_key, row_number() OVER "
						 "(PARTITION BY owner, job_key ORDER BY finished_at DESC, id DESC) AS n "
						 "FROM jobq._done WHERE status = 'dead' AND " DEAD_FILTER,
						 BULK_NARGS, bulk_types);
}

/* cancel the pending jobs the filter selects (created_at in the range) */
static SPIPlanPtr
prepare_cancel_jobs(void)
{
	return jobq_queue_prepare_move(&plan_cancel_jobs, "status = 'pending' AND " BULK_FILTER("created_at"),
								   "'cancelled'", "NULL", KEEP_ERROR, "", BULK_NARGS, bulk_types);
}

/* delete the finished jobs the filter selects (finished_at in the range) */
static SPIPlanPtr
prepare_purge_jobs(void)
{
	return jobq_superuser_prepare(&plan_purge_jobs,
								  "DELETE FROM jobq._done WHERE ($1 IS NULL OR status = $1) AND " BULK_FILTER("finished_at"),
								  BULK_NARGS, bulk_types);
}

/* Returns the jobs retried. */
int64
jobq_queue_retry_jobs(const JobqJobFilter *filter, Oid caller)
{
	return bulk_execute(prepare_retry_jobs, filter, caller, SPI_OK_INSERT);
}

/* Returns the jobs cancelled; running jobs are left alone. */
int64
jobq_queue_cancel_jobs(const JobqJobFilter *filter, Oid caller)
{
	return bulk_execute(prepare_cancel_jobs, filter, caller, SPI_OK_INSERT);
}

/* Returns the jobs deleted (of status filter->status only, when set). */
int64
jobq_queue_purge_jobs(const JobqJobFilter *filter, Oid caller)
{
	return bulk_execute(prepare_purge_jobs, filter, caller, SPI_OK_DELETE);
}
