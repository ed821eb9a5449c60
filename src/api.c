/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL-callable functions of schema jobq.
 *
 * Each function checks its arguments and the caller's rights with the
 * caller's identity (GetUserId()), then hands the work to the queue layer
 * (queue.h), which runs it as a superuser.  Nothing is written before every check passed, so
 * bad input changes nothing.  Enqueueing and retrying ask for a worker to
 * be woken when the transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "batch.h"
#include "claim.h"
#include "compat.h"
#include "api.h"
#include "guc.h"
#include "handlers.h"
#include "http_check.h"
#include "queue.h"
#include "queue_limits.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(jobq_enqueue);
PG_FUNCTION_INFO_V1(jobq_enqueue_many);
PG_FUNCTION_INFO_V1(jobq_cancel);
PG_FUNCTION_INFO_V1(jobq_retry);
PG_FUNCTION_INFO_V1(jobq_retry_jobs);
PG_FUNCTION_INFO_V1(jobq_cancel_jobs);
PG_FUNCTION_INFO_V1(jobq_purge_jobs);
PG_FUNCTION_INFO_V1(jobq_register_kind);
PG_FUNCTION_INFO_V1(jobq_register_external_kind);
PG_FUNCTION_INFO_V1(jobq_unregister_kind);
PG_FUNCTION_INFO_V1(jobq__kinds_changed);
PG_FUNCTION_INFO_V1(jobq__queues_changed);
PG_FUNCTION_INFO_V1(jobq_prune);
PG_FUNCTION_INFO_V1(jobq__claim);
PG_FUNCTION_INFO_V1(jobq__on_create);
PG_FUNCTION_INFO_V1(jobq_current_job);
PG_FUNCTION_INFO_V1(jobq_set_progress);

/* argument positions shared by enqueue and enqueue_many */
#define ARG_KIND 0
#define ARG_PAYLOAD 1
#define ARG_QUEUE 2
#define ARG_PRIORITY 3
#define ARG_RUN_AT 4
#define ARG_MAX_ATTEMPTS 5
#define ARG_JOB_KEY 6
#define ARG_TIMEOUT 7
#define ARG_KEY_MODE 8		   /* jobq.enqueue only */
#define ARG_CONCURRENCY_KEY 9  /* jobq.enqueue only */
#define ARG_CONCURRENCY_KEYS 8 /* jobq.enqueue_many only */

/*
 * A timeout argument in milliseconds (a month counts 30 days, as
 * jobq_interval_ms does): greater than zero and at most
 * JOBQ_MAX_TIMEOUT_MS, what a statement timeout can be armed with.
 */
static int64
timeout_arg_ms(Interval *iv, const char *what)
{
	int64 ms = jobq_interval_ms(iv);

	if (ms > JOBQ_MAX_TIMEOUT_MS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at most %d milliseconds", what, JOBQ_MAX_TIMEOUT_MS),
				 errdetail("That is about 24.8 days, the longest a statement timeout can be armed with.")));
	if (ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be greater than zero", what)));
	return ms;
}

/*
 * A name or key given to jobq: not empty, at most max_len bytes, no
 * control characters (they would reach log lines, pg_cron job names and
 * the dashboard as they are).
 */
static void
check_text(const char *name, const char *what, size_t max_len)
{
	size_t len = strlen(name);
	const unsigned char *c;

	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	if (len > max_len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is too long", what),
				 errdetail("It has %zu bytes; the limit is %zu.", len, max_len)));
	for (c = (const unsigned char *) name; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", what),
					 errdetail("Byte %d is 0x%02x.", (int) (c - (const unsigned char *) name) + 1, *c)));
}

static void
check_name(const char *name, const char *what)
{
	check_text(name, what, JOBQ_MAX_QUEUE_NAME);
}

/* A queue or kind name given to jobq, checked (external.c). */
void
jobq_check_name(const char *name, const char *what)
{
	check_name(name, what);
}

/*
 * The earliest and the latest run_at accepted: 1970-01-01 and the end of
 * 9999 (UTC).  Earlier or later times are mistakes, and far ones overflow
 * the arithmetic of retries and due times.
 */
#define MIN_RUN_AT (-INT64CONST(946684800) * USECS_PER_SEC)
#define END_RUN_AT (INT64CONST(252455616000) * USECS_PER_SEC)

static void
check_max_attempts(int32 max_attempts)
{
	if (max_attempts < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_attempts must be at least 1"),
				 errdetail("max_attempts was %d.", max_attempts)));
}

/*
 * Read the arguments common to enqueue and enqueue_many into *job, with
 * the kind's defaults and then the settings where they are NULL.
 */
static void
new_job_from_args(FunctionCallInfo fcinfo, JobqNewJob *job)
{
	JobqKind *kind;
	char *name;

	if (PG_ARGISNULL(ARG_KIND))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job kind must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(ARG_KIND));
	check_name(name, "job kind");
	kind = jobq_queue_lookup_kind(name);
	if (kind == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("job kind \"%s\" does not exist", name),
				 errhint("The view jobq.kinds lists the kinds; jobq.register_kind() adds one.")));

	memset(job, 0, sizeof(*job));
	job->kind = name;
	job->concurrency_key = NULL;
	job->owner = GetUserId();
	job->net = kind->net;
	job->runs_sql = kind->runs_sql;
	job->external = kind->external;

	if (PG_ARGISNULL(ARG_QUEUE))
		job->queue = pstrdup(kind->queue);
	else
		job->queue = text_to_cstring(PG_GETARG_TEXT_PP(ARG_QUEUE));
	check_name(job->queue, "queue name");

	job->priority = PG_ARGISNULL(ARG_PRIORITY) ? kind->priority : PG_GETARG_INT32(ARG_PRIORITY);

	if (PG_ARGISNULL(ARG_RUN_AT))
		job->run_at = GetCurrentTransactionStartTimestamp();
	else
	{
		job->run_at = PG_GETARG_TIMESTAMPTZ(ARG_RUN_AT);
		if (TIMESTAMP_NOT_FINITE(job->run_at))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("run_at must be a finite time")));
		if (job->run_at < MIN_RUN_AT || job->run_at >= END_RUN_AT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("run_at must lie between 1970-01-01 and 9999-12-31"),
					 errdetail("run_at was %s.", timestamptz_to_str(job->run_at))));
	}

	if (!PG_ARGISNULL(ARG_MAX_ATTEMPTS))
		job->max_attempts = PG_GETARG_INT32(ARG_MAX_ATTEMPTS);
	else if (kind->max_attempts > 0)
		job->max_attempts = kind->max_attempts;
	else
		job->max_attempts = jobq_default_max_attempts;
	check_max_attempts(job->max_attempts);

	if (!PG_ARGISNULL(ARG_TIMEOUT))
		job->timeout_ms = timeout_arg_ms(PG_GETARG_INTERVAL_P(ARG_TIMEOUT), "timeout");
	else if (kind->timeout_ms > 0)
		job->timeout_ms = kind->timeout_ms;
	else
		job->timeout_ms = jobq_default_timeout;

	/*
	 * A job the owner could not run is refused now (built-in kinds without a
	 * handler: the SQL and network kinds; external kinds have none here).
	 */
	if (!(kind->builtin && !OidIsValid(kind->handler)) && !kind->external)
	{
		AclResult aclresult;

		if (!OidIsValid(kind->handler))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("the handler function of job kind \"%s\" does not exist", name),
					 errhint("Register the kind again with jobq.register_kind().")));
		aclresult = object_aclcheck(ProcedureRelationId, kind->handler, job->owner, ACL_EXECUTE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(kind->handler));
	}
}

/* Wake, when this commits, whoever runs the new job: a lane's workers, or external ones. */
static void
wake_on_commit(const JobqNewJob *job)
{
	if (job->external)
		jobq_shmem_wake_external_on_commit();
	else
		jobq_shmem_wake_on_commit(job->net, job->run_at);
}

/*
 * Refuse a payload the job could not run with: an sql job's statement must
 * parse; a network job's owner must be allowed its channel or URL, and its
 * request must be complete and allowed (jobq._net_request, then the URL
 * checks of http_check.c).
 */
static void
check_payload(const JobqNewJob *job, Jsonb *payload)
{
	if (VARSIZE(payload) > (Size) jobq_max_payload_size * 1024)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("payload is too large"),
				 errdetail("It takes %zu bytes as jsonb; jobq.max_payload_size is %d kB.",
						   (size_t) VARSIZE(payload), jobq_max_payload_size),
				 errhint("Store large data in a table of your own and pass its key in the payload.")));
	if (job->net)
		jobq_http_check_request(jobq_queue_net_request(0, job->kind, payload, job->owner,
													   GetCurrentTransactionStartTimestamp()));
	else
		jobq_handler_check_payload(job->kind, job->runs_sql, payload);
}

/* The payload argument, '{}' when NULL. */
static Jsonb *
payload_arg(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(ARG_PAYLOAD))
		return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	return PG_GETARG_JSONB_P(ARG_PAYLOAD);
}

/*
 * The key_mode argument of jobq.enqueue, checked: keep when NULL, or absent
 * (the declaration of 0.1.0, before ALTER EXTENSION jobq UPDATE).
 */
static JobqKeyMode
key_mode_arg(FunctionCallInfo fcinfo, bool have_key)
{
	const char *mode;

	if (PG_NARGS() <= ARG_KEY_MODE || PG_ARGISNULL(ARG_KEY_MODE))
		return JOBQ_KEY_KEEP;
	mode = text_to_cstring(PG_GETARG_TEXT_PP(ARG_KEY_MODE));
	if (strcmp(mode, "keep") == 0)
		return JOBQ_KEY_KEEP;
	if (strcmp(mode, "debounce") != 0 && strcmp(mode, "throttle") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid key_mode \"%s\"", mode),
				 errhint("key_mode is keep, debounce or throttle.")));
	if (!have_key)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key_mode \"%s\" needs a job_key", mode)));
	return mode[0] == 'd' ? JOBQ_KEY_DEBOUNCE : JOBQ_KEY_THROTTLE;
}

/* A concurrency key, checked: 1 to 255 bytes without control characters. */
static const char *
concurrency_key_arg(text *t)
{
	char *key = text_to_cstring(t);

	if (key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("concurrency_key must not be empty"),
				 errhint("Pass NULL for a job without a concurrency key.")));
	check_text(key, "concurrency_key", JOBQ_MAX_JOB_KEY);
	return key;
}

Datum
jobq_enqueue(PG_FUNCTION_ARGS)
{
	JobqNewJob job;
	Jsonb *payload;
	char *job_key = NULL;
	int64 id;

	/* the job is written without a statement, which would check these */
	PreventCommandIfReadOnly("jobq.enqueue()");
	PreventCommandIfParallelMode("jobq.enqueue()");
	new_job_from_args(fcinfo, &job);
	payload = payload_arg(fcinfo);
	check_payload(&job, payload);
	if (!PG_ARGISNULL(ARG_JOB_KEY))
	{
		job_key = text_to_cstring(PG_GETARG_TEXT_PP(ARG_JOB_KEY));
		if (job_key[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("job_key must not be empty"),
					 errhint("Pass NULL for a job without a key.")));
		check_text(job_key, "job_key", JOBQ_MAX_JOB_KEY);
	}

	/* absent before ALTER EXTENSION jobq UPDATE: the 0.1.0 declaration */
	if (PG_NARGS() > ARG_CONCURRENCY_KEY && !PG_ARGISNULL(ARG_CONCURRENCY_KEY))
		job.concurrency_key = concurrency_key_arg(PG_GETARG_TEXT_PP(ARG_CONCURRENCY_KEY));

	id = jobq_queue_insert(&job, payload, job_key, key_mode_arg(fcinfo, job_key != NULL));
	wake_on_commit(&job);
	PG_RETURN_INT64(id);
}

/*
 * The job_keys or concurrency_keys of enqueue_many (what: "job_key" or
 * "concurrency_key"), checked: one per payload, each NULL or a key as
 * enqueue takes it.
 */
static void
check_keys(ArrayType *keys, int nelems, const char *what)
{
	Datum *elems;
	bool *nulls;
	int n;
	int i;

	deconstruct_array(keys, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (ARR_NDIM(keys) > 1 || n != nelems)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%ss must have one element per payload", what),
				 errdetail("payloads has %d elements, %ss %d.", nelems, what, n)));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		if (VARSIZE_ANY_EXHDR(DatumGetPointer(elems[i])) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%ss must not contain empty strings", what),
					 errhint("Use NULL for a job without a key.")));
		check_text(TextDatumGetCString(elems[i]), what, JOBQ_MAX_JOB_KEY);
	}
}

Datum
jobq_enqueue_many(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JobqNewJob job;
	ArrayType *payloads;
	Datum *elems;
	bool *elem_nulls;
	int nelems;
	bool have_keys = !PG_ARGISNULL(ARG_JOB_KEY);
	bool have_ckeys = PG_NARGS() > ARG_CONCURRENCY_KEYS && !PG_ARGISNULL(ARG_CONCURRENCY_KEYS);
	int64 *ids;
	int nids;
	int i;

	new_job_from_args(fcinfo, &job);
	if (PG_ARGISNULL(ARG_PAYLOAD))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("payloads must not be null")));
	payloads = PG_GETARG_ARRAYTYPE_P(ARG_PAYLOAD);
	if (ARR_NDIM(payloads) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("payloads must be a one-dimensional array")));
	deconstruct_array(payloads, JSONBOID, -1, false, TYPALIGN_INT,
					  &elems, &elem_nulls, &nelems);
	for (i = 0; i < nelems; i++)
	{
		if (elem_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("payloads must not contain nulls"),
					 errdetail("Element %d is null.", i + 1)));
		check_payload(&job, DatumGetJsonbP(elems[i]));
	}
	if (have_keys)
		check_keys(PG_GETARG_ARRAYTYPE_P(ARG_JOB_KEY), nelems, "job_key");
	if (have_ckeys)
		check_keys(PG_GETARG_ARRAYTYPE_P(ARG_CONCURRENCY_KEYS), nelems, "concurrency_key");

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (nelems == 0)
		return (Datum) 0;
	PreventCommandIfReadOnly("jobq.enqueue_many()");
	PreventCommandIfParallelMode("jobq.enqueue_many()");

	jobq_queue_insert_many(&job, PG_GETARG_DATUM(ARG_PAYLOAD),
						   have_keys ? PG_GETARG_DATUM(ARG_JOB_KEY) : (Datum) 0, have_keys,
						   have_ckeys ? PG_GETARG_DATUM(ARG_CONCURRENCY_KEYS) : (Datum) 0, have_ckeys,
						   &ids, &nids);
	for (i = 0; i < nids; i++)
	{
		Datum value = Int64GetDatum(ids[i]);
		bool isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	if (nids > 0)
		wake_on_commit(&job);
	return (Datum) 0;
}

void
jobq_job_not_found(int64 job_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("job " INT64_FORMAT " does not exist", job_id),
			 errdetail("Either there is no such job, or it belongs to a role the current role is not a member of.")));
}

Datum
jobq_cancel(PG_FUNCTION_ARGS)
{
	int64 job_id = PG_GETARG_INT64(0);
	int r = jobq_queue_cancel(job_id, GetUserId());

	if (r == JOBQ_NOT_FOUND)
		jobq_job_not_found(job_id);
	/* a running job is stopped once the request commits */
	if (r == JOBQ_STOPPING)
		jobq_shmem_cancel_on_commit(job_id);
	PG_RETURN_BOOL(r == JOBQ_DONE || r == JOBQ_STOPPING);
}

/*
 * Jobs of any lane may be claimable now (retried jobs, whose kind decides
 * their lane; a changed queue's): wake the database's workers of both
 * lanes and its external workers when the transaction commits.
 */
static void
wake_lanes_on_commit(void)
{
	jobq_shmem_wake_on_commit(false, GetCurrentTimestamp());
	jobq_shmem_wake_on_commit(true, GetCurrentTimestamp());
	jobq_shmem_wake_external_on_commit();
}

Datum
jobq_retry(PG_FUNCTION_ARGS)
{
	int64 job_id = PG_GETARG_INT64(0);
	int r = jobq_queue_retry(job_id, GetUserId());

	if (r == JOBQ_NOT_FOUND)
		jobq_job_not_found(job_id);
	if (r == JOBQ_WRONG_STATE)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " is neither dead nor cancelled", job_id),
				 errdetail("Only dead and cancelled jobs can be retried.")));
	wake_lanes_on_commit();
	PG_RETURN_BOOL(true);
}

/* the argument n of a bulk function as a C string, or NULL */
static const char *
text_arg_or_null(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * The filter of jobq.retry_jobs, cancel_jobs and purge_jobs, from their
 * arguments (queue, kind, owner, sqlstate, since, until[, status]),
 * checked.
 */
static void
bulk_filter(FunctionCallInfo fcinfo, JobqJobFilter *f)
{
	const char *p;

	f->queue = text_arg_or_null(fcinfo, 0);
	f->kind = text_arg_or_null(fcinfo, 1);
	f->owner = PG_ARGISNULL(2) ? InvalidOid : PG_GETARG_OID(2);
	f->sqlstate = text_arg_or_null(fcinfo, 3);
	f->since = PG_ARGISNULL(4) ? DT_NOBEGIN : PG_GETARG_TIMESTAMPTZ(4);
	f->until = PG_ARGISNULL(5) ? DT_NOEND : PG_GETARG_TIMESTAMPTZ(5);
	f->status = PG_NARGS() > 6 ? text_arg_or_null(fcinfo, 6) : NULL;

	if (f->sqlstate != NULL)
	{
		for (p = f->sqlstate; *p != '\0'; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z')))
				break;
		if (*p != '\0' || p - f->sqlstate != 5)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid SQLSTATE \"%s\"", f->sqlstate),
					 errdetail("A SQLSTATE is five digits or upper-case letters, such as 57014.")));
	}
	if (f->since >= f->until)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the time range is empty: since must be earlier than until")));
	if (f->status != NULL && strcmp(f->status, "succeeded") != 0 &&
		strcmp(f->status, "dead") != 0 && strcmp(f->status, "cancelled") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot purge jobs of status \"%s\"", f->status),
				 errdetail("Only finished jobs are purged: succeeded, dead or cancelled.")));
}

Datum
jobq_retry_jobs(PG_FUNCTION_ARGS)
{
	JobqJobFilter f;
	int64 n;

	bulk_filter(fcinfo, &f);
	n = jobq_queue_retry_jobs(&f, GetUserId());
	if (n > 0)
		wake_lanes_on_commit();
	PG_RETURN_INT64(n);
}

Datum
jobq_cancel_jobs(PG_FUNCTION_ARGS)
{
	JobqJobFilter f;

	bulk_filter(fcinfo, &f);
	PG_RETURN_INT64(jobq_queue_cancel_jobs(&f, GetUserId()));
}

Datum
jobq_purge_jobs(PG_FUNCTION_ARGS)
{
	JobqJobFilter f;

	bulk_filter(fcinfo, &f);
	PG_RETURN_INT64(jobq_queue_purge_jobs(&f, GetUserId()));
}

/* The kind named by argument 0, checked, not built in. */
static char *
registrable_kind_arg(FunctionCallInfo fcinfo)
{
	char *kind;
	JobqKind *existing;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job kind must not be null")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	check_name(kind, "job kind");
	existing = jobq_queue_lookup_kind(kind);
	if (existing != NULL && existing->builtin)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("job kind \"%s\" is built in", kind),
				 errdetail("Built-in kinds cannot be registered, replaced or removed.")));
	return kind;
}

Datum
jobq_register_kind(PG_FUNCTION_ARGS)
{
	char *kind = registrable_kind_arg(fcinfo);
	Oid handler;
	char *queue;
	int32 max_attempts = 0;
	Interval *timeout = NULL;
	int32 priority;
	AclResult aclresult;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("handler must not be null")));
	handler = PG_GETARG_OID(1);
	jobq_handler_check(handler, NULL);
	aclresult = object_aclcheck(ProcedureRelationId, handler, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(handler));

	queue = PG_ARGISNULL(2) ? "default" : text_to_cstring(PG_GETARG_TEXT_PP(2));
	check_name(queue, "queue name");
	if (!PG_ARGISNULL(3))
	{
		max_attempts = PG_GETARG_INT32(3);
		check_max_attempts(max_attempts);
	}
	if (!PG_ARGISNULL(4))
	{
		timeout = PG_GETARG_INTERVAL_P(4);
		(void) timeout_arg_ms(timeout, "timeout");
	}
	priority = PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5);

	jobq_queue_register_kind(kind, format_procedure_qualified(handler), queue,
							 max_attempts, PG_ARGISNULL(3), timeout, priority,
							 GetUserId());
	PG_RETURN_VOID();
}

/*
 * jobq.register_external_kind(kind, queue, max_attempts, timeout,
 * priority): a kind whose jobs the application's workers claim.
 */
Datum
jobq_register_external_kind(PG_FUNCTION_ARGS)
{
	char *kind = registrable_kind_arg(fcinfo);
	char *queue;
	int32 max_attempts = 0;
	Interval *timeout = NULL;

	queue = PG_ARGISNULL(1) ? "default" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	check_name(queue, "queue name");
	if (!PG_ARGISNULL(2))
	{
		max_attempts = PG_GETARG_INT32(2);
		check_max_attempts(max_attempts);
	}
	if (!PG_ARGISNULL(3))
	{
		timeout = PG_GETARG_INTERVAL_P(3);
		(void) timeout_arg_ms(timeout, "timeout");
	}
	jobq_queue_register_kind(kind, NULL, queue, max_attempts, PG_ARGISNULL(2), timeout,
							 PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4), GetUserId());
	PG_RETURN_VOID();
}

Datum
jobq_unregister_kind(PG_FUNCTION_ARGS)
{
	char *kind = registrable_kind_arg(fcinfo);

	PG_RETURN_BOOL(jobq_queue_unregister_kind(kind));
}

/*
 * jobq._kinds_changed(): every backend, the workers too, reads the job kinds
 * again once this transaction commits.  For install scripts that add or
 * remove built-in kinds with INSERT or DELETE (the job pack's), and the
 * event trigger that removes a dropped extension's kinds.
 */
Datum
jobq__kinds_changed(PG_FUNCTION_ARGS)
{
	jobq_queue_kinds_changed();
	PG_RETURN_VOID();
}

/*
 * Trigger of jobq._queues: once the change commits, backends read the
 * table again at their next claim, and the database's workers look for
 * jobs (a resumed queue's, or a raised limit's).
 */
Datum
jobq__queues_changed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("jobq._queues_changed() must be called as a trigger")));
	jobq_limits_changed_on_commit();
	wake_lanes_on_commit();
	return PointerGetDatum(NULL);
}

Datum
jobq_prune(PG_FUNCTION_ARGS)
{
	int64 total = 0;
	int64 n;

	do
	{
		n = jobq_queue_prune();
		total += n;
		CHECK_FOR_INTERRUPTS();
	} while (n >= 10000);
	PG_RETURN_INT64(total);
}

/*
 * Claim jobs as a worker would, for tests of concurrent claiming.  The jobs
 * are marked running by this backend; workers reap them once it is gone.
 */
Datum
jobq__claim(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32 batch = PG_GETARG_INT32(0);
	JobqJob *jobs;
	int n;
	int i;

	if (batch < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be at least 1")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	n = jobq_queue_claim(jobq_shmem_next_token(), false, batch, &jobs);
	for (i = 0; i < n; i++)
	{
		Datum value = Int64GetDatum(jobs[i].id);
		bool isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	return (Datum) 0;
}

/* Called by the install script. */
Datum
jobq__on_create(PG_FUNCTION_ARGS)
{
	if (!jobq_shmem_available())
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("jobq is not in shared_preload_libraries, so no worker will run jobs"),
				 errdetail("Jobs can be enqueued; they stay pending."),
				 errhint("Add jobq to shared_preload_libraries in postgresql.conf and restart the server.")));
	else
		jobq_shmem_request_probe_on_commit();
	PG_RETURN_VOID();
}

/* The id of the job being run, for a handler; NULL outside a job. */
Datum
jobq_current_job(PG_FUNCTION_ARGS)
{
	int64 id = jobq_batch_current_job();

	if (id == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT64(id);
}

/*
 * jobq.set_progress(percent, message): the running job's progress, seen at
 * once in jobq.jobs and kept with the job.
 */
Datum
jobq_set_progress(PG_FUNCTION_ARGS)
{
	float4 percent = 0;
	char *message = NULL;

	if (jobq_batch_current_job() == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("jobq.set_progress() can only be called by a running job"),
				 errhint("Call it from the handler of a job kind or from the statements of an sql job.")));
	if (!PG_ARGISNULL(0))
	{
		percent = PG_GETARG_FLOAT4(0);
		if (isnan(percent) || percent < 0 || percent > 100)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("progress must be between 0 and 100, not %g", (double) percent)));
	}
	if (!PG_ARGISNULL(1))
	{
		size_t len;

		message = text_to_cstring(PG_GETARG_TEXT_PP(1));
		len = strlen(message);
		if (len > JOBQ_MAX_PROGRESS_MESSAGE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("progress message is too long"),
					 errdetail("It has %zu bytes; at most %d are kept.", len,
							   JOBQ_MAX_PROGRESS_MESSAGE)));
		if (message[0] == '\0')
			message = NULL;
	}
	jobq_batch_report_progress(PG_ARGISNULL(0), percent, message);
	PG_RETURN_VOID();
}
