/*-------------------------------------------------------------------------
 *
 * external.c
 *	  The external worker API: jobq.claim, CALL jobq.claim_wait,
 *	  jobq.heartbeat, jobq.complete, jobq.fail, jobq.snooze.
 *
 * The application's own workers (the Laravel driver, the TypeScript
 * client) run the jobs of external kinds.  A claim takes due jobs in the
 * claim order, through the queues' pauses and limits (claim.c), and gives
 * them a lease: lease_id, which the later calls name with the job, and
 * lease_until, which a heartbeat moves on.  A job whose lease ends goes
 * back to pending, its attempt counted, at the next claim or wait of any
 * worker of the database (queue_external.c).  Ending a job (complete,
 * fail, snooze) needs its lease: a worker whose lease ended and whose job
 * was claimed again gets an error and changes nothing, so a job is
 * completed once per lease.
 *
 * CALL jobq.claim_wait waits for jobs without a snapshot: as a procedure
 * called outside a transaction block it commits before it sleeps on its
 * latch, so it holds back no vacuum while it waits, and it needs no
 * LISTEN (a pooler in transaction mode is fine).  external_wait.c wakes it
 * when a job may be claimed; it also wakes when the next job is due or
 * the next lease ends.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "api.h"
#include "claim.h"
#include "external_wait.h"
#include "queue.h"
#include "queue_external.h"
#include "queue_limits.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(jobq_claim);
PG_FUNCTION_INFO_V1(jobq_claim_wait);
PG_FUNCTION_INFO_V1(jobq_heartbeat);
PG_FUNCTION_INFO_V1(jobq_complete);
PG_FUNCTION_INFO_V1(jobq_fail);
PG_FUNCTION_INFO_V1(jobq_snooze);

/* bounds of the arguments */
#define MAX_CLAIM_JOBS 1000
#define MIN_LEASE_MS 1000					 /* 1 second */
#define MAX_LEASE_MS (86400 * 1000)			 /* 1 day */
#define MAX_WAIT_MS (3600 * 1000)			 /* 1 hour */
#define MAX_DELAY_MS INT64CONST(31536000000) /* 365 days */

/* The columns of jobq.claim's rows. */
#define CLAIM_COLUMNS 15

/* Argument n, which must not be NULL. */
static void
not_null(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/* An interval argument in milliseconds, between min_ms and max_ms. */
static int64
interval_arg_ms(FunctionCallInfo fcinfo, int n, const char *what, int64 min_ms, int64 max_ms,
				const char *bounds)
{
	int64 ms;

	not_null(fcinfo, n, what);
	ms = jobq_interval_ms(PG_GETARG_INTERVAL_P(n));
	if (ms < min_ms || ms > max_ms)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between %s", what, bounds),
				 errdetail("It was " INT64_FORMAT " milliseconds.", ms)));
	return ms;
}

/*
 * The queues argument (n): NULL for every queue, else a non-empty array of
 * queue names without NULLs.  Sets *queues to the names' datums.
 */
static int
queues_arg(FunctionCallInfo fcinfo, int n, Datum **queues)
{
	ArrayType *arr;
	bool *nulls;
	int count;

	*queues = NULL;
	if (PG_ARGISNULL(n))
		return 0;
	arr = PG_GETARG_ARRAYTYPE_P(n);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, queues, &nulls, &count);
	if (count == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("queues must name at least one queue"),
				 errhint("Pass NULL to take jobs of every queue.")));
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("queues must not contain null")));
		jobq_check_name(TextDatumGetCString((*queues)[i]), "queue name");
	}
	return count;
}

/* What a claim was asked for. */
typedef struct ClaimArgs
{
	Datum *queues;
	int nqueues;
	Datum queues_array; /* the argument, for the next-due query */
	int max_jobs;
	int64 lease_ms;
} ClaimArgs;

static void
claim_args(FunctionCallInfo fcinfo, ClaimArgs *args)
{
	args->nqueues = queues_arg(fcinfo, 0, &args->queues);
	args->queues_array = args->nqueues > 0 ? PG_GETARG_DATUM(0) : (Datum) 0;
	not_null(fcinfo, 1, "max_jobs");
	args->max_jobs = PG_GETARG_INT32(1);
	if (args->max_jobs < 1 || args->max_jobs > MAX_CLAIM_JOBS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_jobs must be between 1 and %d", MAX_CLAIM_JOBS),
				 errdetail("It was %d.", args->max_jobs)));
	args->lease_ms = interval_arg_ms(fcinfo, 2, "lease", MIN_LEASE_MS, MAX_LEASE_MS,
									 "1 second and 1 day");
}

/*
 * Give back the jobs whose lease ended, then claim: the jobs, allocated in
 * the current memory context, and their lease's token and end.
 */
static int
claim_now(const ClaimArgs *args, JobqJob **jobs, int64 *token, TimestampTz *lease_until)
{
	JobqExternalClaim spec;

	jobq_queue_adopt_leases();
	(void) jobq_queue_expire_leases();
	spec.token = jobq_queue_lease_token();
	spec.queues = args->queues;
	spec.nqueues = args->nqueues;
	spec.caller = GetUserId();
	spec.lease_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), args->lease_ms);
	*token = spec.token;
	*lease_until = spec.lease_until;
	return jobq_queue_claim_external(&spec, args->max_jobs, jobs);
}

/* The values of one claimed job, as jobq.claim's columns. */
static void
claim_row(const JobqJob *job, int64 token, TimestampTz lease_until, Datum *values, bool *nulls)
{
	memset(nulls, false, sizeof(bool) * CLAIM_COLUMNS);
	values[0] = Int64GetDatum(job->id);
	values[1] = Int64GetDatum(token);
	values[2] = TimestampTzGetDatum(lease_until);
	values[3] = CStringGetTextDatum(job->kind);
	values[4] = CStringGetTextDatum(job->queue);
	values[5] = JsonbPGetDatum(job->payload);
	values[6] = Int32GetDatum(job->attempts);
	values[7] = Int32GetDatum(job->max_attempts);
	values[8] = Int32GetDatum(job->priority);
	values[9] = TimestampTzGetDatum(job->run_at);
	values[10] = TimestampTzGetDatum(job->created_at);
	if (job->timeout_ms > 0)
	{
		Interval *iv = palloc0(sizeof(Interval));

		iv->time = job->timeout_ms * 1000;
		values[11] = IntervalPGetDatum(iv);
	}
	else
		nulls[11] = true;
	if (job->job_key != NULL)
		values[12] = CStringGetTextDatum(job->job_key);
	else
		nulls[12] = true;
	if (job->concurrency_key != NULL)
		values[13] = CStringGetTextDatum(job->concurrency_key);
	else
		nulls[13] = true;
	values[14] = ObjectIdGetDatum(job->owner);
}

/*
 * jobq.claim(queues, max_jobs, lease): up to max_jobs due jobs of external
 * kinds, leased to the caller until now + lease.  Never waits.
 */
Datum
jobq_claim(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ClaimArgs args;
	JobqJob *jobs;
	int64 token;
	TimestampTz lease_until;
	int n;

	claim_args(fcinfo, &args);
	InitMaterializedSRF(fcinfo, 0);
	n = claim_now(&args, &jobs, &token, &lease_until);
	for (int i = 0; i < n; i++)
	{
		Datum values[CLAIM_COLUMNS];
		bool nulls[CLAIM_COLUMNS];

		claim_row(&jobs[i], token, lease_until, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * CALL jobq.claim_wait(queues, max_jobs, lease, wait, jobs): jobq.claim,
 * and when it finds nothing, wait up to wait for a job, committing first
 * so that no snapshot is held while it waits.  The jobs come back in the
 * INOUT argument jobs, a jsonb array of jobq.claim's rows, NULL when the
 * wait ended without one.
 */
Datum
jobq_claim_wait(PG_FUNCTION_ARGS)
{
	ClaimArgs args;
	int64 wait_ms;
	TimestampTz deadline;
	Oid types[3] = {TEXTARRAYOID, INT4OID, INTERVALOID};
	Datum values[3];
	char nulls[3] = "   ";
	TupleDesc desc;
	Datum result = (Datum) 0;
	bool result_null = true;
	HeapTuple tuple;
	MemoryContext cxt = CurrentMemoryContext;

	if (fcinfo->context == NULL || !IsA(fcinfo->context, CallContext) ||
		((CallContext *) fcinfo->context)->atomic || IsSubTransaction())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("jobq.claim_wait must be called with CALL outside a transaction block"),
				 errdetail("It commits before it waits, so that it holds no snapshot while it waits."),
				 errhint("Use jobq.claim() inside a transaction.")));
	claim_args(fcinfo, &args);
	wait_ms = interval_arg_ms(fcinfo, 3, "wait", 0, MAX_WAIT_MS, "0 and 1 hour");
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait_ms);

	/* the arguments outlive the commits below */
	if (args.nqueues > 0)
		values[0] = PointerGetDatum(PG_DETOAST_DATUM_COPY(args.queues_array));
	else
		nulls[0] = 'n';
	values[1] = Int32GetDatum(args.max_jobs);
	values[2] = PointerGetDatum(DatumGetIntervalP(datumCopy(PG_GETARG_DATUM(2), false, sizeof(Interval))));

	SPI_connect_ext(SPI_OPT_NONATOMIC);
	PG_TRY();
	{
		for (;;)
		{
			TimestampTz next;
			TimestampTz lease_end;
			TimestampTz now;
			long sleep_ms;
			bool isnull;
			Datum d;

			/* published before the look, so that a job committed meanwhile wakes it */
			ResetLatch(MyLatch);
			jobq_external_wait_begin();
			if (SPI_execute_with_args("SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c)) "
									  "FROM jobq.claim($1, $2, $3) c",
									  3, types, values, nulls, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "jobq.claim_wait could not claim");
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
			{
				MemoryContext old = MemoryContextSwitchTo(cxt);

				result = PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
				result_null = false;
				MemoryContextSwitchTo(old);
				break;
			}
			if (GetCurrentTimestamp() >= deadline)
				break;
			/*
			 * The next look: when the next job is due, unless the claim
			 * left due jobs for a queue's limit or pause (then a rate's next
			 * start, or the wake-up of the place that comes free or the
			 * queue resumed: jobq_limits_due), or when the next lease ends.
			 */
			next = jobq_limits_due(jobq_queue_external_next(values[0], args.nqueues > 0,
															GetUserId(), &lease_end));
			next = Min(next, lease_end);

			/* the claim's changes (expired leases) and its snapshot go */
			SPI_commit();
			now = GetCurrentTimestamp();
			if (next <= now)
				sleep_ms = 10; /* due but held by another: look again soon */
			else if (next < deadline)
				sleep_ms = TimestampDifferenceMilliseconds(now, next) + 1;
			else
				sleep_ms = TimestampDifferenceMilliseconds(now, deadline);
			if (sleep_ms > 0)
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 sleep_ms, PG_WAIT_EXTENSION);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		jobq_external_wait_end();
	}
	PG_END_TRY();
	SPI_finish();

	/* the INOUT argument as the procedure's result row */
	MemoryContextSwitchTo(cxt);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "jobq.claim_wait must return a row");
	desc = BlessTupleDesc(desc);
	tuple = heap_form_tuple(desc, &result, &result_null);
	PG_RETURN_DATUM(HeapTupleGetDatum(tuple));
}

/* The error of a call that names a job its caller does not hold under that lease. */
static void
not_held(int64 job_id, int64 token)
{
	if (!jobq_queue_visible(job_id, GetUserId()))
		jobq_job_not_found(job_id);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("job " INT64_FORMAT " is not held under lease " INT64_FORMAT, job_id, token),
			 errdetail("Its lease ended and another claim took it, or it has ended, or it is not a job of an external kind, or the current role lacks the privileges of its owner."),
			 errhint("The job's state is in jobq.jobs; a heartbeat keeps a lease from ending.")));
}

/* jobq.heartbeat(ids, lease_id, lease) */
Datum
jobq_heartbeat(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType *arr;
	Datum *elems;
	bool *nulls;
	int n;
	int64 *ids;
	int64 token;
	int64 lease_ms;
	TimestampTz until;
	JobqLeaseState *held;
	int nheld;

	not_null(fcinfo, 0, "ids");
	not_null(fcinfo, 1, "lease_id");
	arr = PG_GETARG_ARRAYTYPE_P(0);
	token = PG_GETARG_INT64(1);
	lease_ms = interval_arg_ms(fcinfo, 2, "lease", MIN_LEASE_MS, MAX_LEASE_MS, "1 second and 1 day");
	deconstruct_array(arr, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &elems, &nulls, &n);
	ids = palloc(sizeof(int64) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("ids must not contain null")));
		ids[i] = DatumGetInt64(elems[i]);
	}
	InitMaterializedSRF(fcinfo, 0);
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), lease_ms);
	nheld = n > 0 ? jobq_queue_external_heartbeat(ids, n, token, GetUserId(), until, &held) : 0;
	for (int i = 0; i < nheld; i++)
	{
		Datum values[3];
		bool vnulls[3] = {false, false, false};

		values[0] = Int64GetDatum(held[i].id);
		values[1] = TimestampTzGetDatum(until);
		values[2] = BoolGetDatum(held[i].cancel_requested);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, vnulls);
	}
	return (Datum) 0;
}

/* jobq.complete(job_id, lease_id, result) */
Datum
jobq_complete(PG_FUNCTION_ARGS)
{
	int64 job_id;
	int64 token;

	not_null(fcinfo, 0, "job_id");
	not_null(fcinfo, 1, "lease_id");
	job_id = PG_GETARG_INT64(0);
	token = PG_GETARG_INT64(1);
	jobq_queue_adopt_leases();
	if (!jobq_queue_external_complete(job_id, token, GetUserId(),
									  PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2)))
		not_held(job_id, token);
	PG_RETURN_VOID();
}

/* jobq.fail(job_id, lease_id, error, retry_after, final, context) */
Datum
jobq_fail(PG_FUNCTION_ARGS)
{
	int64 job_id;
	int64 token;
	const char *state;
	double delay_ms = -1;

	not_null(fcinfo, 0, "job_id");
	not_null(fcinfo, 1, "lease_id");
	not_null(fcinfo, 2, "error");
	not_null(fcinfo, 4, "final");
	job_id = PG_GETARG_INT64(0);
	token = PG_GETARG_INT64(1);
	if (!PG_ARGISNULL(3))
		delay_ms = (double) interval_arg_ms(fcinfo, 3, "retry_after", 0, MAX_DELAY_MS,
											"0 and 365 days");
	jobq_queue_adopt_leases();
	state = jobq_queue_external_fail(job_id, token, GetUserId(),
									 text_to_cstring(PG_GETARG_TEXT_PP(2)),
									 PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5)),
									 delay_ms, PG_GETARG_BOOL(4));
	if (state == NULL)
		not_held(job_id, token);
	jobq_shmem_wake_external_on_commit();
	PG_RETURN_TEXT_P(cstring_to_text(state));
}

/* jobq.snooze(job_id, lease_id, delay) */
Datum
jobq_snooze(PG_FUNCTION_ARGS)
{
	int64 job_id;
	int64 token;
	const char *state;

	not_null(fcinfo, 0, "job_id");
	not_null(fcinfo, 1, "lease_id");
	job_id = PG_GETARG_INT64(0);
	token = PG_GETARG_INT64(1);
	jobq_queue_adopt_leases();
	state = jobq_queue_external_snooze(job_id, token, GetUserId(),
									   (double) interval_arg_ms(fcinfo, 2, "delay", 0, MAX_DELAY_MS,
																"0 and 365 days"));
	if (state == NULL)
		not_held(job_id, token);
	jobq_shmem_wake_external_on_commit();
	PG_RETURN_TEXT_P(cstring_to_text(state));
}
