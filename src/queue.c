/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  The workers' statements against jobq._queue and jobq._done: success,
 *	  failure, release, reap, next due time, prune; and the one statement
 *	  shape that moves a job out of jobq._queue.  The other statements of
 *	  the queue layer: queue_kinds.c, queue_enqueue.c, queue_net.c,
 *	  queue_admin.c (queue.h).
 *
 * Each function here connects to SPI, runs prepared statements (prepared
 * once per backend and kept), and disconnects.  It runs them as the
 * bootstrap superuser with a search path of pg_catalog alone (superuser.c),
 * whatever the caller's role and path: callers check the caller's rights
 * first and pass the caller's role where a statement filters by it.
 * Callers must be in a transaction; values returned are allocated in the
 * caller's memory context.
 *
 * Moving a job out of jobq._queue always goes through one statement shape
 * (see move_statement): DELETE ... RETURNING feeding INSERT INTO jobq._done,
 * so a finished job is never in both tables nor in neither.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "qrel.h"
#include "queue.h"
#include "queue_int.h"
#include "queue_limits.h"
#include "superuser.h"

/* The columns copied from jobq._queue to jobq._done, in both tables' terms. */
#define MOVED_COLUMNS \
	"id, kind, queue, payload, priority, attempts, max_attempts, run_at, " \
	"timeout, job_key, owner, created_at, started_at"
#define MOVED_0_2 ", progress, progress_message, concurrency_key"

/* The error recorded for a job whose worker went away. */
#define ORPHAN_MESSAGE "the worker process ended while the job was running"
#define ORPHAN_SQLSTATE "57P02"

/* The final state of a job that will not be tried again. */
#define DEAD_OR_CANCELLED "CASE WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END"

/* kept plans */
static SPIPlanPtr plan_succeed_keep = NULL;
static SPIPlanPtr plan_succeed_drop = NULL;
static SPIPlanPtr plan_fail_retry = NULL;
static SPIPlanPtr plan_fail_final = NULL;
static SPIPlanPtr plan_release = NULL;
static SPIPlanPtr plan_release_all = NULL;
static SPIPlanPtr plan_release_after = NULL;
static SPIPlanPtr plan_reap_final = NULL;
static SPIPlanPtr plan_reap_retry = NULL;
static SPIPlanPtr plan_next_prune = NULL;
static SPIPlanPtr plan_next_due = NULL;
static SPIPlanPtr plan_prune = NULL;
static SPIPlanPtr plan_prune_deliveries = NULL;
static SPIPlanPtr plan_save_progress = NULL;

/* A bigint[] datum of n values. */
static Datum
int8_array(const int64 *values, int n)
{
	Datum *elems = palloc(sizeof(Datum) * Max(n, 1));
	int i;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, 8,
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * The statement that moves the jobs of jobq._queue matching "cond" (as d)
 * to jobq._done with the given status, result and error expressions; "join"
 * may join d to more rows, USING (id).
 */
static char *
move_statement(const char *cond, const char *status, const char *result,
			   const char *error_columns, const char *join, bool returning)
{
	StringInfoData buf;
	/*
	 * The tables of 0.1.0, before ALTER EXTENSION jobq UPDATE, have neither
	 * the progress columns (jobq.set_progress comes with them) nor
	 * concurrency_key; the update adds them to both tables with precedence,
	 * so the one check of the statements that write jobq._queue serves here.
	 * A statement is built once per process: a worker started before the
	 * update moves neither until it is restarted.
	 */
	bool has = jobq_qrel_has_queue_columns();
	const char *more = has ? MOVED_0_2 : "";

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "WITH d AS (DELETE FROM jobq._queue WHERE %s RETURNING *) "
					 "INSERT INTO jobq._done (" MOVED_COLUMNS "%s, status, finished_at, result, "
					 "last_error, last_error_sqlstate, last_error_context, last_error_at) "
					 "SELECT " MOVED_COLUMNS "%s, %s, clock_timestamp(), %s, %s FROM d %s%s",
					 cond, more, more, status, result, error_columns, join,
					 !returning ? "" : has ? " RETURNING queue, concurrency_key"
										   : " RETURNING queue, NULL::text");
	return buf.data;
}

/* jobq_superuser_prepare() for a move_statement, built only the first time */
SPIPlanPtr
jobq_queue_prepare_move(SPIPlanPtr *cache, const char *cond, const char *status,
						const char *result, const char *error_columns, const char *join,
						int nargs, Oid *argtypes)
{
	if (*cache == NULL)
		return jobq_superuser_prepare(cache, move_statement(cond, status, result, error_columns, join, false),
									  nargs, argtypes);
	return *cache;
}

/*
 * The same for jobs that leave the running state: the statement returns
 * their queues and keys, for jobq_queue_running_left.
 */
SPIPlanPtr
jobq_queue_prepare_move_running(SPIPlanPtr *cache, const char *cond, const char *status,
								const char *result, const char *error_columns, const char *join,
								int nargs, Oid *argtypes)
{
	if (*cache == NULL)
		return jobq_superuser_prepare(cache, move_statement(cond, status, result, error_columns, join, true),
									  nargs, argtypes);
	return *cache;
}

/*
 * The rows the statement just run took out of the running state (it
 * returned their queues and concurrency keys): their places in the
 * queues' counts come free when the transaction commits (queue_limits.c).
 * Returns how many.
 */
uint64
jobq_queue_running_left(void)
{
	uint64 i;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		bool isnull;
		text *queue = DatumGetTextPP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		Datum key = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);

		jobq_limits_release(VARDATA_ANY(queue), (int) VARSIZE_ANY_EXHDR(queue),
							isnull ? NULL : DatumGetTextPP(key));
	}
	return SPI_processed;
}

/*
 * RETURNING_RUNNING is where a statement on jobq._queue that ends jobs'
 * running state returns what jobq_queue_running_left reads: the statement is a
 * format, prepared once by prepare_running.
 */
#define RETURNING_RUNNING " RETURNING queue, %s"

static SPIPlanPtr
prepare_running(SPIPlanPtr *cache, const char *format, int nargs, Oid *argtypes)
{
	if (*cache == NULL)
		return jobq_superuser_prepare(cache,
									  psprintf(format, jobq_qrel_has_queue_columns() ? "concurrency_key" : "NULL::text"),
									  nargs, argtypes);
	return *cache;
}

/*
 * Record the success of n jobs: they leave jobq._queue in one statement and
 * are kept in jobq._done, with their results, unless jobq.retention is 0.
 * results[i] may be NULL.
 */
void
jobq_queue_succeed_many(const int64 *ids, Jsonb *const *results, int n)
{
	JobqSpiCall qc;
	Oid types[2] = {INT8ARRAYOID, JSONBARRAYOID};
	Datum values[2];
	Datum *result_datums;
	bool *result_nulls;
	int dims[1] = {n};
	int lbs[1] = {1};
	int i;

	if (n == 0)
		return;
	result_datums = palloc(sizeof(Datum) * n);
	result_nulls = palloc(sizeof(bool) * n);
	for (i = 0; i < n; i++)
	{
		result_datums[i] = PointerGetDatum(results[i]);
		result_nulls[i] = (results[i] == NULL);
	}
	values[0] = int8_array(ids, n);
	values[1] = PointerGetDatum(construct_md_array(result_datums, result_nulls, 1,
												   dims, lbs, JSONBOID, -1,
												   false, TYPALIGN_INT));

	jobq_superuser_spi_begin_indexed(&qc);
	if (jobq_retention == 0)
		jobq_superuser_execute(prepare_running(&plan_succeed_drop,
											   "DELETE FROM jobq._queue WHERE id = ANY ($1)" RETURNING_RUNNING,
											   1, types),
							   values, NULL, SPI_OK_DELETE_RETURNING);
	else
		jobq_superuser_execute(jobq_queue_prepare_move_running(&plan_succeed_keep,
															   "id = ANY ($1)", "'succeeded'", "r.result", KEEP_ERROR,
															   "JOIN unnest($1, $2) AS r(id, result) USING (id)",
															   2, types),
							   values, NULL, SPI_OK_INSERT_RETURNING);
	jobq_queue_running_left();
	jobq_superuser_spi_end(&qc);
}

/*
 * The delay before the next attempt of a job that failed its attempts-th:
 * base * 2^(attempts-1), capped, then jittered by +-25%.
 */
double
jobq_queue_backoff_ms(int32 attempts)
{
	double delay_ms = (double) jobq_retry_base_delay * pow(2.0, (double) Max(attempts - 1, 0));

	if (delay_ms > jobq_retry_max_delay)
		delay_ms = jobq_retry_max_delay;
	return delay_ms * (0.75 + 0.5 * pg_prng_double(&pg_global_prng_state));
}

/*
 * Record a failed attempt.  The job goes back to pending after the backoff
 * delay (at least min_delay_ms), unless it is out of attempts, was cancelled while it ran, or
 * "final" says it cannot succeed: then it leaves for jobq._done as dead
 * (or cancelled).
 */
void
jobq_queue_fail(const JobqJob *job, const JobqOutcome *outcome, bool final,
				double min_delay_ms)
{
	JobqSpiCall qc;
	Oid types[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, FLOAT8OID, BOOLOID};
	Datum values[6];
	char nulls[6] = "      ";
	double delay_ms;

	delay_ms = jobq_queue_backoff_ms(job->attempts);
	if (delay_ms < min_delay_ms)
		delay_ms = min_delay_ms;

	values[0] = Int64GetDatum(job->id);
	values[1] = CStringGetTextDatum(outcome->message ? outcome->message : "unknown error");
	values[2] = CStringGetTextDatum(outcome->sqlstate ? outcome->sqlstate : "XX000");
	if (outcome->context)
		values[3] = CStringGetTextDatum(outcome->context);
	else
		nulls[3] = 'n';
	values[4] = Float8GetDatum(delay_ms);
	values[5] = BoolGetDatum(final);

	jobq_superuser_spi_begin_indexed(&qc);
	jobq_superuser_execute(prepare_running(&plan_fail_retry,
										   "UPDATE jobq._queue SET status = 'pending', "
										   "run_at = clock_timestamp() + $5 * interval '1 ms', "
										   "locked_by = NULL, worker_pid = NULL, last_error = $2, "
										   "last_error_sqlstate = $3, last_error_context = $4, "
										   "last_error_at = clock_timestamp() "
										   "WHERE id = $1 AND NOT $6 AND NOT cancel_requested "
										   "AND attempts < max_attempts" RETURNING_RUNNING,
										   6, types),
						   values, nulls, SPI_OK_UPDATE_RETURNING);
	if (jobq_queue_running_left() == 0)
	{
		jobq_superuser_execute(jobq_queue_prepare_move_running(&plan_fail_final, "id = $1", DEAD_OR_CANCELLED, "NULL",
															   "$2, $3, $4, clock_timestamp()", "", 4, types),
							   values, nulls, SPI_OK_INSERT_RETURNING);
		jobq_queue_running_left();
	}
	jobq_superuser_spi_end(&qc);
}

/*
 * Return jobs a worker holds to pending without counting the attempt: the
 * worker is being shut down, or gives back jobs it claimed but did not
 * start, through no fault of the jobs.  With ids NULL, all its jobs.
 */
void
jobq_queue_release_uncounted(int64 token, const int64 *ids, int nids)
{
	JobqSpiCall qc;
	Oid types[2] = {INT8OID, INT8ARRAYOID};
	Datum values[2];

#define RELEASE_STATEMENT(which) \
	"UPDATE jobq._queue SET status = 'pending', " \
	"attempts = greatest(attempts - 1, 0), locked_by = NULL, " \
	"worker_pid = NULL WHERE " which " AND status = 'running' AND locked_by = $1" RETURNING_RUNNING

	/* two plans: by id through the primary key, or all of the token's */
	values[0] = Int64GetDatum(token);
	if (ids != NULL)
	{
		values[1] = int8_array(ids, nids);
		jobq_superuser_spi_begin_indexed(&qc);
		jobq_superuser_execute(prepare_running(&plan_release, RELEASE_STATEMENT("id = ANY ($2)"), 2, types),
							   values, NULL, SPI_OK_UPDATE_RETURNING);
	}
	else
	{
		jobq_superuser_spi_begin(&qc);
		jobq_superuser_execute(prepare_running(&plan_release_all, RELEASE_STATEMENT("true"), 1, types),
							   values, NULL, SPI_OK_UPDATE_RETURNING);
	}
	jobq_queue_running_left();
	jobq_superuser_spi_end(&qc);
}

/*
 * Return to pending, attempt not counted, the jobs of a worker's batch (its
 * token, claimed at claimed_at) that come after key "after" and up to its
 * last job "last" in the claim order: the jobs waiting behind a slow job,
 * which that worker will not start (see "Taking over" in batch.c).  The
 * claim time keeps the worker's next batch, under the same token, out of
 * reach; the two keys bound the scan of the claim index to the batch.
 * Returns how many.
 */
int64
jobq_queue_release_after(int64 token, TimestampTz claimed_at,
						 const JobqClaimKey *after, const JobqClaimKey *last)
{
	JobqSpiCall qc;
	Oid types[10] = {INT8OID, TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID, INT8OID,
					 INT4OID, TIMESTAMPTZOID, INT8OID, INT4OID, INT4OID};
	Datum values[10];
	uint64 n;

	values[0] = Int64GetDatum(token);
	values[1] = TimestampTzGetDatum(claimed_at);
	values[2] = Int32GetDatum(after->priority);
	values[3] = TimestampTzGetDatum(after->run_at);
	values[4] = Int64GetDatum(after->id);
	values[5] = Int32GetDatum(last->priority);
	values[6] = TimestampTzGetDatum(last->run_at);
	values[7] = Int64GetDatum(last->id);
	values[8] = Int32GetDatum(after->precedence);
	values[9] = Int32GetDatum(last->precedence);
	jobq_superuser_spi_begin_indexed(&qc);
	/* the claim order; before 0.2.0 without precedence (all 0) */
	if (plan_release_after == NULL)
		(void) prepare_running(&plan_release_after,
							   jobq_qrel_has_queue_columns()
								   ? RELEASE_STATEMENT("NOT net AND started_at = $2 "
													   "AND (precedence, priority, run_at, id) > ($9, $3, $4, $5) "
													   "AND (precedence, priority, run_at, id) <= ($10, $6, $7, $8)")
								   : RELEASE_STATEMENT("NOT net AND started_at = $2 AND $9 = $10 "
													   "AND (priority, run_at, id) > ($3, $4, $5) "
													   "AND (priority, run_at, id) <= ($6, $7, $8)"),
							   10, types);
	n = jobq_superuser_execute(plan_release_after, values, NULL, SPI_OK_UPDATE_RETURNING);
	jobq_queue_running_left();
	jobq_superuser_spi_end(&qc);
	return (int64) n;
}

/*
 * Give back the jobs left running by workers that no longer exist.  A job
 * is orphaned when its token is not among the live tokens and was issued
 * before the live list was read (a token of another boot, or of this boot
 * up to max_counter).  The attempt stays counted: the job may be what
 * killed its worker.  External jobs hold a lease instead (a negative
 * token): they go back when it ends (queue_external.c).
 */
int64
jobq_queue_reap(int64 *live_tokens, int nlive, int32 boot_id, uint32 max_counter)
{
	JobqSpiCall qc;
	Oid types[4] = {INT8ARRAYOID, INT4OID, INT8OID, BOOLOID};
	Datum values[4];
	uint64 n = 0;
	int this_boot;

	/*
	 * $4: the tokens of this boot, whose jobs the queues' counts hold, or
	 * those of an earlier boot, which no count holds (see queue_limits.c).
	 */
#define ORPHANED \
	"status = 'running' AND locked_by > 0 AND locked_by <> ALL ($1) " \
	"AND NOT (locked_by >> 32 = $2 AND (locked_by & 4294967295) > $3) " \
	"AND (locked_by >> 32 = $2) = $4"

	values[0] = int8_array(live_tokens, nlive);
	values[1] = Int32GetDatum(boot_id);
	values[2] = Int64GetDatum((int64) max_counter);

	jobq_superuser_spi_begin(&qc);
	for (this_boot = 0; this_boot <= 1; this_boot++)
	{
		values[3] = BoolGetDatum(this_boot);
		n += jobq_superuser_execute(jobq_queue_prepare_move_running(&plan_reap_final,
																	ORPHANED " AND (attempts >= max_attempts OR cancel_requested)",
																	DEAD_OR_CANCELLED, "NULL",
																	"'" ORPHAN_MESSAGE "', '" ORPHAN_SQLSTATE "', NULL, clock_timestamp()",
																	"", 4, types),
									values, NULL, SPI_OK_INSERT_RETURNING);
		if (this_boot)
			jobq_queue_running_left();
		n += jobq_superuser_execute(prepare_running(&plan_reap_retry,
													"UPDATE jobq._queue SET status = 'pending', run_at = now(), "
													"locked_by = NULL, worker_pid = NULL, "
													"last_error = '" ORPHAN_MESSAGE "', "
													"last_error_sqlstate = '" ORPHAN_SQLSTATE "', "
													"last_error_context = NULL, last_error_at = clock_timestamp() "
													"WHERE " ORPHANED RETURNING_RUNNING,
													4, types),
									values, NULL, SPI_OK_UPDATE_RETURNING);
		if (this_boot)
			jobq_queue_running_left();
	}
	jobq_superuser_spi_end(&qc);
	return (int64) n;
}

/*
 * The one timestamp a prepared query of the indexed kind returns (its
 * plan in *plan), or DT_NOEND when it is NULL.
 */
static TimestampTz
query_time(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types, Datum *values)
{
	JobqSpiCall qc;
	TimestampTz t = DT_NOEND;
	bool isnull;
	Datum d;

	jobq_superuser_spi_begin_indexed(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(plan, sql, nargs, types),
						   values, NULL, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		t = DatumGetTimestampTz(d);
	jobq_superuser_spi_end(&qc);
	return t;
}

/* When the next pending job of a lane is due, or DT_NOEND when there is none. */
TimestampTz
jobq_queue_next_due(bool net)
{
	Oid types[1] = {BOOLOID};
	Datum values[1];

#define NEXT_DUE "SELECT min(run_at) FROM jobq._queue " \
				 "WHERE status = 'pending' AND net = $1 AND run_at > '-infinity'"

	/* external jobs (0.2.0 on) are not the lanes' */
	values[0] = BoolGetDatum(net);
	return query_time(&plan_next_due,
					  plan_next_due != NULL || !jobq_qrel_has_queue_columns()
						  ? NEXT_DUE
						  : NEXT_DUE " AND NOT external",
					  1, types, values);
}

/*
 * When jobq_queue_prune next has something to delete: the oldest finished
 * job or delivery plus its retention (a second later, as prune compares
 * strictly), DT_NOEND if nothing is kept or kept for good.  Three index
 * probes.
 */
TimestampTz
jobq_queue_next_prune(void)
{
	Oid types[3] = {INT4OID, INT4OID, INT4OID};
	Datum values[3];

	values[0] = Int32GetDatum(jobq_retention);
	values[1] = Int32GetDatum(jobq_dead_retention);
	values[2] = Int32GetDatum(jobq_delivery_retention);
	return query_time(&plan_next_prune,
					  "SELECT least("
					  " CASE WHEN $1 >= 0 THEN least("
					  "  (SELECT min(finished_at) FROM jobq._done WHERE status = 'succeeded'),"
					  "  (SELECT min(finished_at) FROM jobq._done WHERE status = 'cancelled'))"
					  "  + ($1 + 1) * interval '1 s' END,"
					  " CASE WHEN $2 >= 0 THEN"
					  "  (SELECT min(finished_at) FROM jobq._done WHERE status = 'dead')"
					  "  + ($2 + 1) * interval '1 s' END,"
					  " CASE WHEN $3 >= 0 THEN"
					  "  (SELECT min(finished_at) FROM jobq._deliveries)"
					  "  + ($3 + 1) * interval '1 s' END)",
					  3, types, values);
}

/*
 * Delete up to 10,000 finished jobs past their retention, and up to 10,000
 * rows of the delivery log past jobq.delivery_retention; returns how many
 * rows in all.  Callers that want everything gone call it until it returns
 * less than 10,000.
 */
int64
jobq_queue_prune(void)
{
	JobqSpiCall qc;
	Oid types[2] = {INT4OID, INT4OID};
	Datum values[2];
	uint64 n;

	values[0] = Int32GetDatum(jobq_retention);
	values[1] = Int32GetDatum(jobq_dead_retention);
	jobq_superuser_spi_begin(&qc);
	n = jobq_superuser_execute(jobq_superuser_prepare(&plan_prune,
													  "DELETE FROM jobq._done WHERE id IN ("
													  " SELECT id FROM jobq._done WHERE"
													  " (status IN ('succeeded', 'cancelled') AND $1 >= 0"
													  "  AND finished_at < now() - $1 * interval '1 s')"
													  " OR (status = 'dead' AND $2 >= 0"
													  "  AND finished_at < now() - $2 * interval '1 s')"
													  " LIMIT 10000)",
													  2, types),
							   values, NULL, SPI_OK_DELETE);
	if (jobq_delivery_retention >= 0)
	{
		values[0] = Int32GetDatum(jobq_delivery_retention);
		n += jobq_superuser_execute(jobq_superuser_prepare(&plan_prune_deliveries,
														   "DELETE FROM jobq._deliveries WHERE id IN ("
														   " SELECT id FROM jobq._deliveries"
														   "  WHERE finished_at < now() - $1 * interval '1 s'"
														   " LIMIT 10000)",
														   1, types),
									values, NULL, SPI_OK_DELETE);
	}
	jobq_superuser_spi_end(&qc);
	return (int64) n;
}

/*
 * Keep the progress a running job reported with it: an UPDATE of its row
 * in the job's own transaction, so that it commits (and moves to
 * jobq._done) with the job's effects and completion, or not at all.
 */
void
jobq_queue_save_progress(int64 job_id, bool percent_null, float4 percent, const char *message)
{
	JobqSpiCall qc;
	Oid types[3] = {INT8OID, FLOAT4OID, TEXTOID};
	Datum values[3];
	char nulls[3] = "   ";

	values[0] = Int64GetDatum(job_id);
	values[1] = Float4GetDatum(percent);
	if (percent_null)
		nulls[1] = 'n';
	if (message != NULL)
		values[2] = CStringGetTextDatum(message);
	else
		nulls[2] = 'n';
	jobq_superuser_spi_begin(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_save_progress,
												  "UPDATE jobq._queue SET progress = $2, progress_message = $3 "
												  "WHERE id = $1",
												  3, types),
						   values, nulls, SPI_OK_UPDATE);
	jobq_superuser_spi_end(&qc);
}
