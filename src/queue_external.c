/*-------------------------------------------------------------------------
 *
 * queue_external.c
 *	  The statements of the external worker API (external.c): leases of
 *	  jobs of external kinds, and how those jobs end.
 *
 * A claim (claim.c) gives each external job it takes a lease: the claim's
 * token in locked_by, negative so that it is never a worker's (the reaper
 * leaves such jobs alone, see jobq_queue_reap), and its end in
 * lease_until.  The token is the lease's id, which every later statement
 * of the worker names together with the job's id: a statement of a worker
 * whose lease ended, and whose job another worker has claimed since, finds
 * no row and changes nothing.  Every statement also requires the caller to
 * have the privileges of the job's owner.
 *
 * The tokens come from the same counter as the workers' (with the boot
 * id's low bits in the high half).  The queues' counts start empty at each
 * boot: the jobs that leases of an earlier boot still hold are counted in
 * before any external claim or end of this boot (jobq_queue_adopt_leases),
 * so the statements that end a job give its place back whichever boot its
 * lease is of, as the workers' statements do (jobq_queue_running_left).
 *
 * Functions here connect to SPI and run as the bootstrap superuser (see
 * queue.c); callers check the arguments and pass the caller's role.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "queue.h"
#include "queue_external.h"
#include "queue_int.h"
#include "queue_limits.h"
#include "shmem.h"
#include "superuser.h"

/* The error of a job whose lease ended before its worker ended it. */
#define EXPIRED_MESSAGE "the lease of the external worker ended before the job did"
#define EXPIRED_SQLSTATE "57014"

/* The error state of a job an external worker failed. */
#define FAILED_SQLSTATE "38000"

/* A running external job held under lease $2 by a role ($3) with its owner's privileges. */
#define HELD \
	"id = $1 AND locked_by = $2 AND status = 'running' AND external " \
	"AND pg_has_role($3, owner::oid, 'USAGE')"

/*
 * Running external jobs whose lease has ended.  Not locked first (FOR
 * UPDATE): the lock would stay on the new row version, where this
 * transaction's claim, which never waits, would take it for another's.
 */
#define EXPIRED "lease_until < clock_timestamp() AND status = 'running' AND external"

static SPIPlanPtr plan_expire_final = NULL;
static SPIPlanPtr plan_expire_retry = NULL;
static SPIPlanPtr plan_next = NULL;
static SPIPlanPtr plan_complete_keep = NULL;
static SPIPlanPtr plan_complete_drop = NULL;
static SPIPlanPtr plan_fail_retry = NULL;
static SPIPlanPtr plan_fail_final = NULL;
static SPIPlanPtr plan_snooze = NULL;
static SPIPlanPtr plan_attempts = NULL;
static SPIPlanPtr plan_snooze_cancel = NULL;
static SPIPlanPtr plan_done_state = NULL;
static SPIPlanPtr plan_heartbeat = NULL;
static SPIPlanPtr plan_adopt = NULL;

/*
 * A lease's token holds 21 bits of the boot id above the 32 of the
 * counter: at most 2^53, which JavaScript's numbers hold exactly (jobq.
 * claim_wait returns it in JSON).
 */
#define LEASE_BOOT_MASK 0x1FFFFF

/* A new lease's token: negative, the boot id's low bits in its high half when preloaded. */
int64
jobq_queue_lease_token(void)
{
	uint64 r;

	if (jobq_shmem_available())
	{
		int64 t = jobq_shmem_next_token();

		return -((((t >> 32) & LEASE_BOOT_MASK) << 32) | (t & INT64CONST(0xFFFFFFFF)));
	}
	/* not preloaded: no count to keep, and no counter either */
	r = pg_prng_uint64(&pg_global_prng_state) & ((UINT64CONST(1) << 53) - 1);
	return -(int64) Max(r, 1);
}

/*
 * Count the running external jobs whose lease was taken before this boot
 * in their queues' counts, once per database and boot (queue_limits.c):
 * the counts start empty at each boot, and those jobs still run.  Called
 * before every external claim and end, so no end is counted off before its
 * job was counted.
 */
void
jobq_queue_adopt_leases(void)
{
	JobqSpiCall qc;
	Oid types[1] = {INT8OID};
	Datum values[1];
	char **queues;
	char **keys;
	uint64 i;

	if (!jobq_shmem_available() || jobq_limits_leases_adopted())
		return;
	values[0] = Int64GetDatum(jobq_shmem_boot_id() & LEASE_BOOT_MASK);
	jobq_superuser_spi_begin(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_adopt,
												  "SELECT queue, concurrency_key FROM jobq._queue "
												  "WHERE status = 'running' AND external AND locked_by < 0 "
												  "AND (-locked_by) >> 32 <> $1",
												  1, types),
						   values, NULL, SPI_OK_SELECT);
	queues = palloc(sizeof(char *) * Max(SPI_processed, 1));
	keys = palloc(sizeof(char *) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		queues[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		keys[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}
	jobq_limits_adopt_leases(queues, keys, (int) SPI_processed);
	jobq_superuser_spi_end(&qc);
}

/*
 * Give back the external jobs whose lease has ended: pending again, due
 * now, the attempt counted (the job may be what stopped its worker), or
 * dead (cancelled) when it has no attempt left (was asked to stop).
 * Returns how many.
 */
int64
jobq_queue_expire_leases(void)
{
	JobqSpiCall qc;
	uint64 n;

	jobq_superuser_spi_begin_indexed(&qc);
	n = jobq_superuser_execute(jobq_queue_prepare_move_running(&plan_expire_final,
															   EXPIRED " AND (attempts >= max_attempts OR cancel_requested)",
															   "CASE WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END",
															   "NULL",
															   "'" EXPIRED_MESSAGE "', '" EXPIRED_SQLSTATE "', NULL, clock_timestamp()",
															   "", 0, NULL),
							   NULL, NULL, SPI_OK_INSERT_RETURNING);
	jobq_queue_running_left();
	n += jobq_superuser_execute(jobq_superuser_prepare(&plan_expire_retry,
													   "UPDATE jobq._queue SET status = 'pending', run_at = now(), "
													   "locked_by = NULL, worker_pid = NULL, lease_until = NULL, "
													   "last_error = '" EXPIRED_MESSAGE "', "
													   "last_error_sqlstate = '" EXPIRED_SQLSTATE "', "
													   "last_error_context = NULL, last_error_at = clock_timestamp() "
													   "WHERE " EXPIRED " RETURNING queue, concurrency_key",
													   0, NULL),
								NULL, NULL, SPI_OK_UPDATE_RETURNING);
	jobq_queue_running_left();
	jobq_superuser_spi_end(&qc);
	return (int64) n;
}

/*
 * When a waiting external worker should look again by itself: when the
 * next pending external job of the queues (a text[] datum, or all when
 * have_queues is false) that caller may take is due, returned, and when the
 * next lease of the database ends, in *lease_end.  DT_NOEND: never.
 */
TimestampTz
jobq_queue_external_next(Datum queues, bool have_queues, Oid caller, TimestampTz *lease_end)
{
	JobqSpiCall qc;
	Oid types[2] = {TEXTARRAYOID, OIDOID};
	Datum values[2];
	char nulls[2] = "  ";
	TimestampTz due = DT_NOEND;
	bool isnull;
	Datum d;

	values[0] = queues;
	if (!have_queues)
		nulls[0] = 'n';
	values[1] = ObjectIdGetDatum(caller);
	jobq_superuser_spi_begin_indexed(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_next,
												  "SELECT (SELECT min(run_at) FROM jobq._queue WHERE NOT net AND external "
												  "AND run_at > '-infinity' AND status = 'pending' "
												  "AND ($1 IS NULL OR queue = ANY ($1)) "
												  "AND pg_has_role($2, owner::oid, 'USAGE')), "
												  "(SELECT min(lease_until) FROM jobq._queue WHERE lease_until IS NOT NULL)",
												  2, types),
						   values, nulls, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		due = DatumGetTimestampTz(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*lease_end = isnull ? DT_NOEND : DatumGetTimestampTz(d);
	jobq_superuser_spi_end(&qc);
	return due;
}

/* The state of a job that has just moved to jobq._done. */
static const char *
finished_state(int64 job_id)
{
	Oid types[1] = {INT8OID};
	Datum values[1];

	values[0] = Int64GetDatum(job_id);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_done_state,
												  "SELECT status FROM jobq._done WHERE id = $1",
												  1, types),
						   values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0 &&
		strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "cancelled") == 0)
		return "cancelled";
	return "dead";
}

/* The values of HELD: the job, the lease, the caller. */
static void
held_values(Datum *values, int64 job_id, int64 token, Oid caller)
{
	values[0] = Int64GetDatum(job_id);
	values[1] = Int64GetDatum(token);
	values[2] = ObjectIdGetDatum(caller);
}

/*
 * Record the success of an external job held under lease token, with its
 * result (may be NULL); false when the caller does not hold it.
 */
bool
jobq_queue_external_complete(int64 job_id, int64 token, Oid caller, Jsonb *result)
{
	JobqSpiCall qc;
	Oid types[4] = {INT8OID, INT8OID, OIDOID, JSONBOID};
	Datum values[4];
	char nulls[4] = "    ";
	uint64 n;

	held_values(values, job_id, token, caller);
	values[3] = PointerGetDatum(result);
	if (result == NULL)
		nulls[3] = 'n';
	jobq_superuser_spi_begin_indexed(&qc);
	if (jobq_retention == 0)
		n = jobq_superuser_execute(jobq_superuser_prepare(&plan_complete_drop,
														  "DELETE FROM jobq._queue WHERE " HELD
														  " RETURNING queue, concurrency_key",
														  4, types),
								   values, nulls, SPI_OK_DELETE_RETURNING);
	else
		n = jobq_superuser_execute(jobq_queue_prepare_move_running(&plan_complete_keep, HELD,
																   "'succeeded'", "$4", KEEP_ERROR,
																   "", 4, types),
								   values, nulls, SPI_OK_INSERT_RETURNING);
	jobq_queue_running_left();
	jobq_superuser_spi_end(&qc);
	return n > 0;
}

/*
 * Record a failed attempt of an external job held under lease token: back
 * to pending after delay_ms (< 0: the backoff of jobq.retry_base_delay),
 * unless it is out of attempts, was asked to
 * stop, or final says it cannot succeed: then dead (cancelled).  Returns
 * the job's new state, or NULL when the caller does not hold it.
 */
const char *
jobq_queue_external_fail(int64 job_id, int64 token, Oid caller, const char *error,
						 const char *context, double delay_ms, bool final)
{
	JobqSpiCall qc;
	Oid types[7] = {INT8OID, INT8OID, OIDOID, TEXTOID, TEXTOID, FLOAT8OID, BOOLOID};
	Datum values[7];
	char nulls[7] = "       ";
	const char *state = NULL;

	held_values(values, job_id, token, caller);
	values[3] = CStringGetTextDatum(error);
	if (context != NULL)
		values[4] = CStringGetTextDatum(context);
	else
		nulls[4] = 'n';
	values[5] = Float8GetDatum(delay_ms);
	values[6] = BoolGetDatum(final);

	jobq_superuser_spi_begin_indexed(&qc);
	/* no delay given: the backoff after the attempts made */
	if (delay_ms < 0)
	{
		bool isnull;

		if (jobq_superuser_execute(jobq_superuser_prepare(&plan_attempts,
														  "SELECT attempts FROM jobq._queue WHERE " HELD,
														  3, types),
								   values, nulls, SPI_OK_SELECT) == 0)
		{
			jobq_superuser_spi_end(&qc);
			return NULL;
		}
		delay_ms = jobq_queue_backoff_ms(DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
																	 SPI_tuptable->tupdesc, 1, &isnull)));
		values[5] = Float8GetDatum(delay_ms);
	}
	if (jobq_superuser_execute(jobq_superuser_prepare(&plan_fail_retry,
													  "UPDATE jobq._queue SET status = 'pending', "
													  "run_at = clock_timestamp() + $6 * interval '1 ms', "
													  "locked_by = NULL, worker_pid = NULL, lease_until = NULL, "
													  "last_error = $4, last_error_sqlstate = '" FAILED_SQLSTATE "', "
													  "last_error_context = $5, last_error_at = clock_timestamp() "
													  "WHERE " HELD " AND NOT $7 AND NOT cancel_requested "
													  "AND attempts < max_attempts "
													  "RETURNING queue, concurrency_key",
													  7, types),
							   values, nulls, SPI_OK_UPDATE_RETURNING) > 0)
		state = "pending";
	else if (jobq_superuser_execute(jobq_queue_prepare_move_running(&plan_fail_final, HELD,
																	"CASE WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END",
																	"NULL",
																	"$4, '" FAILED_SQLSTATE "', $5, clock_timestamp()",
																	"", 5, types),
									values, nulls, SPI_OK_INSERT_RETURNING) > 0)
		state = "";
	jobq_queue_running_left();
	if (state != NULL && state[0] == '\0')
		state = finished_state(job_id);
	jobq_superuser_spi_end(&qc);
	return state;
}

/*
 * Give an external job held under lease token back, due after delay_ms,
 * its attempt not counted.  A job asked to stop ends cancelled instead.
 * Returns its new state (pending, cancelled), or NULL when the caller
 * does not hold it.
 */
const char *
jobq_queue_external_snooze(int64 job_id, int64 token, Oid caller, double delay_ms)
{
	JobqSpiCall qc;
	Oid types[4] = {INT8OID, INT8OID, OIDOID, FLOAT8OID};
	Datum values[4];
	const char *state = NULL;

	held_values(values, job_id, token, caller);
	values[3] = Float8GetDatum(delay_ms);
	jobq_superuser_spi_begin_indexed(&qc);
	if (jobq_superuser_execute(jobq_superuser_prepare(&plan_snooze,
													  "UPDATE jobq._queue SET status = 'pending', "
													  "run_at = clock_timestamp() + $4 * interval '1 ms', "
													  "attempts = greatest(attempts - 1, 0), "
													  "locked_by = NULL, worker_pid = NULL, lease_until = NULL "
													  "WHERE " HELD " AND NOT cancel_requested "
													  "RETURNING queue, concurrency_key",
													  4, types),
							   values, NULL, SPI_OK_UPDATE_RETURNING) > 0)
		state = "pending";
	else if (jobq_superuser_execute(jobq_queue_prepare_move_running(&plan_snooze_cancel,
																	HELD " AND cancel_requested",
																	"'cancelled'", "NULL", KEEP_ERROR,
																	"", 3, types),
									values, NULL, SPI_OK_INSERT_RETURNING) > 0)
		state = "cancelled";
	jobq_queue_running_left();
	jobq_superuser_spi_end(&qc);
	return state;
}

/*
 * Extend the leases of the external jobs of ids (n) that the caller holds
 * under lease token to until.  Returns how many it held, their ids, and
 * whether each was asked to stop (jobq.cancel), in the caller's context.
 */
int
jobq_queue_external_heartbeat(const int64 *ids, int n, int64 token, Oid caller,
							  TimestampTz until, JobqLeaseState **held)
{
	JobqSpiCall qc;
	Oid types[4] = {INT8ARRAYOID, INT8OID, OIDOID, TIMESTAMPTZOID};
	Datum values[4];
	Datum *elems = palloc(sizeof(Datum) * Max(n, 1));
	uint64 i;
	int nheld;

	for (i = 0; i < (uint64) n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	values[0] = PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = Int64GetDatum(token);
	values[2] = ObjectIdGetDatum(caller);
	values[3] = TimestampTzGetDatum(until);
	jobq_superuser_spi_begin_indexed(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_heartbeat,
												  "UPDATE jobq._queue SET lease_until = $4 "
												  "WHERE id = ANY ($1) AND locked_by = $2 AND status = 'running' "
												  "AND external AND pg_has_role($3, owner::oid, 'USAGE') "
												  "RETURNING id, cancel_requested",
												  4, types),
						   values, NULL, SPI_OK_UPDATE_RETURNING);
	nheld = (int) SPI_processed;
	*held = MemoryContextAlloc(qc.caller_cxt, sizeof(JobqLeaseState) * Max(nheld, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool isnull;

		(*held)[i].id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		(*held)[i].cancel_requested = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	jobq_superuser_spi_end(&qc);
	return nheld;
}
