/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  Every SQL statement jobq runs against its own tables.
 *
 * Each function here connects to SPI, runs prepared statements (prepared
 * once per backend and kept), and disconnects.  It runs them as the
 * bootstrap superuser with a search path of pg_catalog alone (an override
 * search path: cheaper than a GUC change, and no temporary schema), whatever
 * the caller's role and path: callers check the caller's rights first and
 * pass the caller's role where a statement filters by it.  Callers must be in a
 * transaction; values returned are allocated in the caller's memory context.
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
#include "access/xlog.h"
#include "common/pg_prng.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "qrel.h"
#include "queue.h"
#include "superuser.h"

/* The columns copied from jobq._queue to jobq._done, in both tables' terms. */
#define MOVED_COLUMNS \
	"id, kind, queue, payload, priority, attempts, max_attempts, run_at, " \
	"timeout, job_key, owner, created_at, started_at"

/* The error recorded for a job whose worker went away. */
#define ORPHAN_MESSAGE "the worker process ended while the job was running"
#define ORPHAN_SQLSTATE "57P02"

/* The final state of a job that will not be tried again. */
#define DEAD_OR_CANCELLED "CASE WHEN cancel_requested THEN 'cancelled' ELSE 'dead' END"

/* kept plans */
static SPIPlanPtr plan_insert = NULL;
static SPIPlanPtr plan_find_key = NULL;
static SPIPlanPtr plan_insert_many = NULL;
static SPIPlanPtr plan_insert_many_keys = NULL;
static SPIPlanPtr plan_succeed_keep = NULL;
static SPIPlanPtr plan_succeed_drop = NULL;
static SPIPlanPtr plan_fail_retry = NULL;
static SPIPlanPtr plan_fail_final = NULL;
static SPIPlanPtr plan_release = NULL;
static SPIPlanPtr plan_release_all = NULL;
static SPIPlanPtr plan_release_after = NULL;
static SPIPlanPtr plan_reap_final = NULL;
static SPIPlanPtr plan_reap_retry = NULL;
static SPIPlanPtr plan_next_due = NULL;
static SPIPlanPtr plan_prune = NULL;
static SPIPlanPtr plan_prune_deliveries = NULL;
static SPIPlanPtr plan_net_request = NULL;
static SPIPlanPtr plan_log_delivery = NULL;
static SPIPlanPtr plan_cancel_pending = NULL;
static SPIPlanPtr plan_cancel_running = NULL;
static SPIPlanPtr plan_visible = NULL;
static SPIPlanPtr plan_retry = NULL;
static SPIPlanPtr plan_key_taken = NULL;
static SPIPlanPtr plan_register = NULL;
static SPIPlanPtr plan_unregister = NULL;
static SPIPlanPtr plan_kind_exists = NULL;
static SPIPlanPtr plan_kinds = NULL;

/* the kind cache: kind name -> JobqKind, flushed on relcache invalidation */
static HTAB *kind_cache = NULL;
static Oid	kind_cache_relid = InvalidOid;
static bool kind_callback_registered = false;

static void kinds_changed(void);
static void kind_not_owned(const char *kind);

/*
 * Whether the role whose OID is the parameter may replace or remove the
 * kind row k: it has the privileges of the role that registered it (a
 * superuser has every role's), or it is a superuser (a kind whose
 * registrar role is gone).
 */
#define KIND_OWNED_BY(param) \
	"(pg_has_role(" param ", k.registered_by, 'USAGE') IS TRUE " \
	"OR (SELECT rolsuper FROM pg_authid WHERE oid = " param "))"

/* A bigint[] datum of n values. */
static Datum
int8_array(const int64 *values, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

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
			   const char *error_columns, const char *join)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 "WITH d AS (DELETE FROM jobq._queue WHERE %s RETURNING *) "
					 "INSERT INTO jobq._done (" MOVED_COLUMNS ", status, finished_at, result, "
					 "last_error, last_error_sqlstate, last_error_context, last_error_at) "
					 "SELECT " MOVED_COLUMNS ", %s, clock_timestamp(), %s, %s FROM d %s",
					 cond, status, result, error_columns, join);
	return buf.data;
}

/* jobq_superuser_prepare() for a move_statement, built only the first time */
static SPIPlanPtr
prepare_move(SPIPlanPtr *cache, const char *cond, const char *status,
			 const char *result, const char *error_columns, const char *join,
			 int nargs, Oid *argtypes)
{
	if (*cache == NULL)
		return jobq_superuser_prepare(cache, move_statement(cond, status, result, error_columns, join),
					   nargs, argtypes);
	return *cache;
}

/* The error columns of a job whose error stays as it was. */
#define KEEP_ERROR "last_error, last_error_sqlstate, last_error_context, last_error_at"

/* ---------------------------------------------------------------------
 * Kinds
 * ------------------------------------------------------------------- */

static void
kind_cache_invalidate(Datum arg, Oid relid)
{
	if (kind_cache != NULL &&
		(relid == InvalidOid || relid == kind_cache_relid))
	{
		hash_destroy(kind_cache);
		kind_cache = NULL;
	}
}

static void
kind_cache_load(void)
{
	JobqSpiCall	qc;
	HASHCTL		ctl;
	HTAB	   *cache;
	uint64		i;
	Oid			nsp;

	if (!kind_callback_registered)
	{
		CacheRegisterRelcacheCallback(kind_cache_invalidate, (Datum) 0);
		kind_callback_registered = true;
	}

	nsp = get_namespace_oid("jobq", false);
	kind_cache_relid = get_relname_relid("_kinds", nsp);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(JobqKind);
	ctl.hcxt = CacheMemoryContext;
	cache = hash_create("jobq kinds", 32, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	jobq_superuser_spi_begin(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_kinds,
					"SELECT k.kind, k.builtin, p.oid, p.prorettype = 'void'::regtype, "
					"k.queue, k.priority, k.max_attempts, "
					"k.timeout, k.net "
					"FROM jobq._kinds k "
					"LEFT JOIN pg_proc p ON p.oid = to_regprocedure(k.handler)",
					0, NULL),
			NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *name = SPI_getvalue(tup, desc, 1);
		char	   *queue = SPI_getvalue(tup, desc, 5);
		JobqKind   *k;
		bool		isnull;
		bool		found;
		Datum		d;

		if (strlen(name) >= NAMEDATALEN)
			continue;
		k = hash_search(cache, name, HASH_ENTER, &found);
		k->builtin = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		k->handler = isnull ? InvalidOid : DatumGetObjectId(d);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		k->handler_returns_void = isnull ? false : DatumGetBool(d);
		strlcpy(k->queue, queue, sizeof(k->queue));
		k->priority = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		d = SPI_getbinval(tup, desc, 7, &isnull);
		k->max_attempts = isnull ? 0 : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 8, &isnull);
		/* read as a job's own timeout is (a month as 30 days) */
		k->timeout_ms = isnull ? 0 : jobq_interval_ms(DatumGetIntervalP(d));
		k->net = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));
	}
	jobq_superuser_spi_end(&qc);
	kind_cache = cache;
}

/* The kind of that name, or NULL.  The result stays valid until the next call. */
JobqKind *
jobq_queue_lookup_kind(const char *name)
{
	if (strlen(name) >= NAMEDATALEN)
		return NULL;
	if (kind_cache == NULL)
		kind_cache_load();
	return hash_search(kind_cache, name, HASH_FIND, NULL);
}

void
jobq_queue_register_kind(const char *kind, const char *handler,
						 const char *queue, int32 max_attempts,
						 bool max_attempts_null, Interval *timeout,
						 int32 priority, Oid registrar)
{
	JobqSpiCall	qc;
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID,
	INTERVALOID, OIDOID};
	Datum		values[7];
	char		nulls[7] = "       ";
	uint64		n;

	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(handler);
	values[2] = CStringGetTextDatum(queue);
	values[3] = Int32GetDatum(priority);
	values[4] = Int32GetDatum(max_attempts);
	if (max_attempts_null)
		nulls[4] = 'n';
	values[5] = PointerGetDatum(timeout);
	if (timeout == NULL)
		nulls[5] = 'n';
	values[6] = ObjectIdGetDatum(registrar);

	/*
	 * A kind is replaced only by a role with the privileges of the role that
	 * registered it (its members, superusers), which stays its owner: the
	 * test is part of the statement, so a kind registered concurrently by
	 * another role is not replaced either.
	 */
	jobq_superuser_spi_begin(&qc);
	n = jobq_superuser_execute(jobq_superuser_prepare(&plan_register,
						"INSERT INTO jobq._kinds AS k (kind, handler, queue, priority, "
						"max_attempts, timeout, registered_by) "
						"VALUES ($1, $2, $3, $4, $5, $6, $7::regrole) "
						"ON CONFLICT (kind) DO UPDATE SET handler = EXCLUDED.handler, "
						"queue = EXCLUDED.queue, priority = EXCLUDED.priority, "
						"max_attempts = EXCLUDED.max_attempts, timeout = EXCLUDED.timeout, "
						"registered_at = now() "
						"WHERE NOT k.builtin AND " KIND_OWNED_BY("$7"),
						7, types),
				values, nulls, SPI_OK_INSERT);
	jobq_superuser_spi_end(&qc);
	if (n == 0)
		kind_not_owned(kind);
	kinds_changed();
}

bool
jobq_queue_unregister_kind(const char *kind)
{
	JobqSpiCall	qc;
	Oid			types[2] = {TEXTOID, OIDOID};
	Datum		values[2];
	uint64		n;
	bool		exists = false;

	values[0] = CStringGetTextDatum(kind);
	values[1] = ObjectIdGetDatum(GetUserId());
	jobq_superuser_spi_begin(&qc);
	n = jobq_superuser_execute(jobq_superuser_prepare(&plan_unregister,
						"DELETE FROM jobq._kinds k WHERE kind = $1 AND NOT builtin AND "
						KIND_OWNED_BY("$2"),
						2, types),
				values, NULL, SPI_OK_DELETE);
	if (n == 0)
		exists = jobq_superuser_execute(jobq_superuser_prepare(&plan_kind_exists,
								 "SELECT FROM jobq._kinds WHERE kind = $1",
								 1, types),
						 values, NULL, SPI_OK_SELECT) > 0;
	jobq_superuser_spi_end(&qc);
	if (exists)
		kind_not_owned(kind);
	kinds_changed();
	return n > 0;
}

/*
 * The error for a kind that exists and that the current role may not
 * replace or remove (registrable_kind_arg in api.c has refused built-in
 * kinds already).
 */
static void
kind_not_owned(const char *kind)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("job kind \"%s\" was registered by another role", kind),
			 errdetail("Only a role with the privileges of the role that registered a kind, or a superuser, may replace or remove it."),
			 errhint("The view jobq.kinds shows the role in registered_by.")));
}

/*
 * Make every backend reload its kind cache when this transaction commits.
 */
static void
kinds_changed(void)
{
	Oid			nsp = get_namespace_oid("jobq", false);

	CacheInvalidateRelcacheByRelid(get_relname_relid("_kinds", nsp));
}

/* ---------------------------------------------------------------------
 * Enqueue
 * ------------------------------------------------------------------- */

static void
new_job_values(const JobqNewJob *job, Datum *values, char *nulls)
{
	values[0] = CStringGetTextDatum(job->kind);
	values[1] = CStringGetTextDatum(job->queue);
	values[3] = Int32GetDatum(job->priority);
	values[4] = TimestampTzGetDatum(job->run_at);
	values[5] = Int32GetDatum(job->max_attempts);
	values[6] = Int64GetDatum(job->timeout_ms);
	if (job->timeout_ms <= 0)
		nulls[6] = 'n';
	values[8] = ObjectIdGetDatum(job->owner);
	values[9] = BoolGetDatum(job->net);
}

#define NEW_JOB_INSERT \
	"INSERT INTO jobq._queue (kind, queue, payload, priority, run_at, " \
	"max_attempts, timeout, job_key, owner, net) "
#define NEW_JOB_VALUES \
	"VALUES ($1, $2, $3, $4, $5, $6, $7 * interval '1 ms', $8, $9::regrole, $10)"
#define NEW_JOB_CONFLICT \
	" ON CONFLICT (owner, job_key) WHERE job_key IS NOT NULL DO NOTHING RETURNING id"

/* The bigint in the first column of the first row SPI returned. */
static int64
first_id(void)
{
	bool		isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Insert one job; with a job_key that a live job of the same owner holds,
 * return that job's id instead.
 */
int64
jobq_queue_insert(const JobqNewJob *job, Jsonb *payload, const char *job_key)
{
	JobqSpiCall	qc;
	Oid			types[10] = {TEXTOID, TEXTOID, JSONBOID, INT4OID, TIMESTAMPTZOID,
	INT4OID, INT8OID, TEXTOID, OIDOID, BOOLOID};
	Datum		values[10];
	char		nulls[10] = "          ";
	int64		id = 0;
	int			tries;

	/*
	 * A job without a key cannot conflict: it is written without a
	 * statement (qrel.c), which also spares it the speculative insertion of
	 * ON CONFLICT (the conflict check and a second WAL record), unless the
	 * table has something only the executor would honour (a trigger, a
	 * constraint someone added): then the statement below writes it, its key
	 * NULL.
	 */
	if (job_key == NULL && (id = jobq_qrel_insert(job, payload)) != 0)
		return id;

	new_job_values(job, values, nulls);
	values[2] = JsonbPGetDatum(payload);
	if (job_key)
		values[7] = CStringGetTextDatum(job_key);
	else
		nulls[7] = 'n';

	jobq_superuser_spi_begin(&qc);
	for (tries = 0; id == 0 && tries < 10; tries++)
	{
		Oid			ktypes[2] = {OIDOID, TEXTOID};
		Datum		kvalues[2];

		jobq_superuser_execute(jobq_superuser_prepare(&plan_insert,
						NEW_JOB_INSERT NEW_JOB_VALUES NEW_JOB_CONFLICT,
						10, types),
				values, nulls, SPI_OK_INSERT_RETURNING);
		if (SPI_processed == 1)
		{
			id = first_id();
			break;
		}

		/* the key is taken: find the live job that holds it */
		kvalues[0] = values[8];
		kvalues[1] = values[7];
		jobq_superuser_execute(jobq_superuser_prepare(&plan_find_key,
						"SELECT id FROM jobq._queue WHERE owner = $1::regrole AND job_key = $2",
						2, ktypes),
				kvalues, NULL, SPI_OK_SELECT);
		if (SPI_processed == 1)
			id = first_id();
		/* else it finished in between: try the insert again */
	}
	jobq_superuser_spi_end(&qc);

	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not enqueue the job with key \"%s\"", job_key),
				 errdetail("Concurrent transactions kept adding and finishing jobs with that key.")));
	return id;
}

/*
 * Insert one job per element of payloads (a jsonb[] datum), with the
 * matching element of job_keys (text[]) when have_keys.  Returns the ids
 * of the jobs added, in array order.
 */
void
jobq_queue_insert_many(const JobqNewJob *job, Datum payloads, Datum job_keys,
					   bool have_keys, int64 **ids, int *nids)
{
	JobqSpiCall	qc;
	Oid			types[10] = {TEXTOID, TEXTOID, JSONBARRAYOID, INT4OID, TIMESTAMPTZOID,
	INT4OID, INT8OID, TEXTARRAYOID, OIDOID, BOOLOID};
	Datum		values[10];
	char		nulls[10] = "          ";
	SPIPlanPtr	plan;
	uint64		i;

	new_job_values(job, values, nulls);
	values[2] = payloads;
	values[7] = job_keys;
	if (!have_keys)
		nulls[7] = 'n';

	jobq_superuser_spi_begin(&qc);
	if (have_keys)
		plan = jobq_superuser_prepare(&plan_insert_many_keys,
					   NEW_JOB_INSERT
					   "SELECT $1, $2, u.p, $4, $5, $6, $7 * interval '1 ms', u.k, $9::regrole, $10 "
					   "FROM unnest($3, $8) WITH ORDINALITY AS u(p, k, n) ORDER BY u.n"
					   NEW_JOB_CONFLICT,
					   10, types);
	else
		plan = jobq_superuser_prepare(&plan_insert_many,
					   NEW_JOB_INSERT
					   "SELECT $1, $2, u.p, $4, $5, $6, $7 * interval '1 ms', $8[1], $9::regrole, $10 "
					   "FROM unnest($3) WITH ORDINALITY AS u(p, n) ORDER BY u.n "
					   "RETURNING id",
					   10, types);
	jobq_superuser_execute(plan, values, nulls, SPI_OK_INSERT_RETURNING);

	*nids = (int) SPI_processed;
	*ids = MemoryContextAlloc(qc.caller_cxt, sizeof(int64) * Max(*nids, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		(*ids)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1, &isnull));
	}
	jobq_superuser_spi_end(&qc);
}

/* ---------------------------------------------------------------------
 * The worker's statements
 * ------------------------------------------------------------------- */

/*
 * Record the success of n jobs: they leave jobq._queue in one statement and
 * are kept in jobq._done, with their results, unless jobq.retention is 0.
 * results[i] may be NULL.
 */
void
jobq_queue_succeed_many(const int64 *ids, Jsonb *const *results, int n)
{
	JobqSpiCall	qc;
	Oid			types[2] = {INT8ARRAYOID, JSONBARRAYOID};
	Datum		values[2];
	Datum	   *result_datums;
	bool	   *result_nulls;
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int			i;

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
		jobq_superuser_execute(jobq_superuser_prepare(&plan_succeed_drop,
						"DELETE FROM jobq._queue WHERE id = ANY ($1)", 1, types),
				values, NULL, SPI_OK_DELETE);
	else
		jobq_superuser_execute(prepare_move(&plan_succeed_keep,
							 "id = ANY ($1)", "'succeeded'", "r.result", KEEP_ERROR,
							 "JOIN unnest($1, $2) AS r(id, result) USING (id)",
							 2, types),
				values, NULL, SPI_OK_INSERT);
	jobq_superuser_spi_end(&qc);
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
	JobqSpiCall	qc;
	Oid			types[6] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, FLOAT8OID, BOOLOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	double		delay_ms;

	/* delay = base * 2^(attempts-1), capped, then jittered by +-25% */
	delay_ms = (double) jobq_retry_base_delay *
		pow(2.0, (double) Max(job->attempts - 1, 0));
	if (delay_ms > jobq_retry_max_delay)
		delay_ms = jobq_retry_max_delay;
	delay_ms *= 0.75 + 0.5 * pg_prng_double(&pg_global_prng_state);
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
	jobq_superuser_execute(jobq_superuser_prepare(&plan_fail_retry,
					"UPDATE jobq._queue SET status = 'pending', "
					"run_at = clock_timestamp() + $5 * interval '1 ms', "
					"locked_by = NULL, worker_pid = NULL, last_error = $2, "
					"last_error_sqlstate = $3, last_error_context = $4, "
					"last_error_at = clock_timestamp() "
					"WHERE id = $1 AND NOT $6 AND NOT cancel_requested "
					"AND attempts < max_attempts",
					6, types),
			values, nulls, SPI_OK_UPDATE);
	if (SPI_processed == 0)
		jobq_superuser_execute(prepare_move(&plan_fail_final, "id = $1", DEAD_OR_CANCELLED, "NULL",
							 "$2, $3, $4, clock_timestamp()", "", 4, types),
				values, nulls, SPI_OK_INSERT);
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
	JobqSpiCall	qc;
	Oid			types[2] = {INT8OID, INT8ARRAYOID};
	Datum		values[2];

#define RELEASE_STATEMENT(which) \
	"UPDATE jobq._queue SET status = 'pending', " \
	"attempts = greatest(attempts - 1, 0), locked_by = NULL, " \
	"worker_pid = NULL WHERE " which " AND status = 'running' AND locked_by = $1"

	/* two plans: by id through the primary key, or all of the token's */
	values[0] = Int64GetDatum(token);
	if (ids != NULL)
	{
		values[1] = int8_array(ids, nids);
		jobq_superuser_spi_begin_indexed(&qc);
		jobq_superuser_execute(jobq_superuser_prepare(&plan_release, RELEASE_STATEMENT("id = ANY ($2)"), 2, types),
				values, NULL, SPI_OK_UPDATE);
	}
	else
	{
		jobq_superuser_spi_begin(&qc);
		jobq_superuser_execute(jobq_superuser_prepare(&plan_release_all, RELEASE_STATEMENT("true"), 1, types),
				values, NULL, SPI_OK_UPDATE);
	}
	jobq_superuser_spi_end(&qc);
}

/*
 * Return to pending, attempt not counted, the jobs of a worker's batch (its
 * token, claimed at claimed_at) that come after key "after" and up to its
 * last job "last" in the claim order: the jobs waiting behind a slow job,
 * which that worker will not start (see "Taking over" in worker.c).  The
 * claim time keeps the worker's next batch, under the same token, out of
 * reach; the two keys bound the scan of the claim index to the batch.
 * Returns how many.
 */
int64
jobq_queue_release_after(int64 token, TimestampTz claimed_at,
						 const JobqClaimKey *after, const JobqClaimKey *last)
{
	JobqSpiCall	qc;
	Oid			types[8] = {INT8OID, TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID, INT8OID,
	INT4OID, TIMESTAMPTZOID, INT8OID};
	Datum		values[8];
	uint64		n;

	values[0] = Int64GetDatum(token);
	values[1] = TimestampTzGetDatum(claimed_at);
	values[2] = Int32GetDatum(after->priority);
	values[3] = TimestampTzGetDatum(after->run_at);
	values[4] = Int64GetDatum(after->id);
	values[5] = Int32GetDatum(last->priority);
	values[6] = TimestampTzGetDatum(last->run_at);
	values[7] = Int64GetDatum(last->id);
	jobq_superuser_spi_begin_indexed(&qc);
	n = jobq_superuser_execute(jobq_superuser_prepare(&plan_release_after,
						RELEASE_STATEMENT("NOT net AND started_at = $2 "
										  "AND (priority, run_at, id) > ($3, $4, $5) "
										  "AND (priority, run_at, id) <= ($6, $7, $8)"),
						8, types),
				values, NULL, SPI_OK_UPDATE);
	jobq_superuser_spi_end(&qc);
	return (int64) n;
}

/*
 * Give back the jobs left running by workers that no longer exist.  A job
 * is orphaned when its token is not among the live tokens and was issued
 * before the live list was read (a token of another boot, or of this boot
 * up to max_counter).  The attempt stays counted: the job may be what
 * killed its worker.
 */
int64
jobq_queue_reap(int64 *live_tokens, int nlive, int32 boot_id, uint32 max_counter)
{
	JobqSpiCall	qc;
	Oid			types[3] = {INT8ARRAYOID, INT4OID, INT8OID};
	Datum		values[3];
	uint64		n;

#define ORPHANED \
	"status = 'running' AND locked_by <> ALL ($1) " \
	"AND NOT (locked_by >> 32 = $2 AND (locked_by & 4294967295) > $3)"

	values[0] = int8_array(live_tokens, nlive);
	values[1] = Int32GetDatum(boot_id);
	values[2] = Int64GetDatum((int64) max_counter);

	jobq_superuser_spi_begin(&qc);
	n = jobq_superuser_execute(prepare_move(&plan_reap_final,
							 ORPHANED " AND (attempts >= max_attempts OR cancel_requested)",
							 DEAD_OR_CANCELLED, "NULL",
							 "'" ORPHAN_MESSAGE "', '" ORPHAN_SQLSTATE "', NULL, clock_timestamp()",
							 "", 3, types),
				values, NULL, SPI_OK_INSERT);
	n += jobq_superuser_execute(jobq_superuser_prepare(&plan_reap_retry,
						 "UPDATE jobq._queue SET status = 'pending', run_at = now(), "
						 "locked_by = NULL, worker_pid = NULL, "
						 "last_error = '" ORPHAN_MESSAGE "', "
						 "last_error_sqlstate = '" ORPHAN_SQLSTATE "', "
						 "last_error_context = NULL, last_error_at = clock_timestamp() "
						 "WHERE " ORPHANED,
						 3, types),
				 values, NULL, SPI_OK_UPDATE);
	jobq_superuser_spi_end(&qc);
	return (int64) n;
}

/* When the next pending job of a lane is due, or DT_NOEND when there is none. */
TimestampTz
jobq_queue_next_due(bool net)
{
	JobqSpiCall	qc;
	TimestampTz due = DT_NOEND;
	Oid			types[1] = {BOOLOID};
	Datum		values[1];
	bool		isnull;
	Datum		d;

	values[0] = BoolGetDatum(net);
	jobq_superuser_spi_begin_indexed(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_next_due,
					"SELECT min(run_at) FROM jobq._queue "
					"WHERE status = 'pending' AND net = $1 AND run_at > '-infinity'",
					1, types),
			values, NULL, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		due = DatumGetTimestampTz(d);
	jobq_superuser_spi_end(&qc);
	return due;
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
	JobqSpiCall	qc;
	Oid			types[2] = {INT4OID, INT4OID};
	Datum		values[2];
	uint64		n;

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

/* ---------------------------------------------------------------------
 * Network jobs
 * ------------------------------------------------------------------- */

/*
 * The request a network job makes (jobq._net_request), checked as its
 * owner's: the grants, the channel and the payload.  With job_id 0, the
 * check of a job being enqueued.  Raises the error the job dies of.
 */
Jsonb *
jobq_queue_net_request(int64 job_id, const char *kind, Jsonb *payload,
					   Oid owner, TimestampTz created_at)
{
	JobqSpiCall	qc;
	Oid			types[6] = {INT8OID, TEXTOID, JSONBOID, OIDOID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";
	bool		isnull;
	Jsonb	   *request;

	values[0] = Int64GetDatum(job_id);
	if (job_id == 0)
		nulls[0] = 'n';
	values[1] = CStringGetTextDatum(kind);
	values[2] = JsonbPGetDatum(payload);
	values[3] = ObjectIdGetDatum(owner);
	values[4] = TimestampTzGetDatum(created_at);
	/* unique across clusters, databases and jobs; the same for every attempt */
	values[5] = CStringGetTextDatum(psprintf("jobq-" UINT64_FORMAT "-%u-" INT64_FORMAT,
											 GetSystemIdentifier(), MyDatabaseId, job_id));

	jobq_superuser_spi_begin(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_net_request,
					"SELECT jobq._net_request($1, $2, $3, $4, $5, $6)", 6, types),
			values, nulls, SPI_OK_SELECT);
	MemoryContextSwitchTo(qc.caller_cxt);
	request = DatumGetJsonbPCopy(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	jobq_superuser_spi_end(&qc);
	return request;
}

/* values[i] = the text, or a null */
static void
text_or_null(Datum *values, char *nulls, int i, const char *text)
{
	if (text != NULL)
		values[i] = CStringGetTextDatum(text);
	else
		nulls[i] = 'n';
}

/* Add one attempt of a network job to the delivery log. */
void
jobq_queue_log_delivery(const JobqDelivery *dl)
{
	JobqSpiCall	qc;
	Oid			types[15] = {INT8OID, INT4OID, TEXTOID, OIDOID, TEXTOID, TEXTOID,
		TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, FLOAT8OID,
	TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[15];
	char		nulls[15] = "               ";

	values[0] = Int64GetDatum(dl->job_id);
	values[1] = Int32GetDatum(dl->attempt);
	values[2] = CStringGetTextDatum(dl->kind);
	values[3] = ObjectIdGetDatum(dl->owner);
	text_or_null(values, nulls, 4, dl->channel);
	text_or_null(values, nulls, 5, dl->recipient);
	text_or_null(values, nulls, 6, dl->url);
	values[7] = Int32GetDatum(dl->status_code);
	if (dl->status_code <= 0)
		nulls[7] = 'n';
	values[8] = CStringGetTextDatum(dl->outcome);
	text_or_null(values, nulls, 9, dl->error);
	text_or_null(values, nulls, 10, dl->error_sqlstate);
	text_or_null(values, nulls, 11, dl->response);
	values[12] = Float8GetDatum(dl->duration_ms);
	values[13] = TimestampTzGetDatum(dl->started_at);
	values[14] = TimestampTzGetDatum(dl->finished_at);

	jobq_superuser_spi_begin(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_log_delivery,
					"INSERT INTO jobq._deliveries (job_id, attempt, kind, owner, channel, "
					"recipient, url, status_code, outcome, error, error_sqlstate, response, "
					"duration_ms, started_at, finished_at) "
					"VALUES ($1, $2, $3, $4::regrole, $5, $6, $7, $8, $9, $10, $11, $12, "
					"$13, $14, $15)",
					15, types),
			values, nulls, SPI_OK_INSERT);
	jobq_superuser_spi_end(&qc);
}

/* ---------------------------------------------------------------------
 * cancel and retry, on behalf of a caller
 * ------------------------------------------------------------------- */

#define VISIBLE_TO_CALLER "pg_has_role($2, owner::oid, 'MEMBER')"

/*
 * Whether the caller may see a job of that id, in either table.  Must be
 * called between queue_begin and queue_end.
 */
static bool
visible_to_caller(Datum *values)
{
	Oid			types[2] = {INT8OID, OIDOID};

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
	JobqSpiCall	qc;
	Oid			types[2] = {INT8OID, OIDOID};
	Datum		values[2];
	int			result;

	values[0] = Int64GetDatum(job_id);
	values[1] = ObjectIdGetDatum(caller);

	jobq_superuser_spi_begin(&qc);
	/* a pending job is cancelled at once, a running one is asked to stop */
	if (jobq_superuser_execute(prepare_move(&plan_cancel_pending,
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
	JobqSpiCall	qc;
	Oid			types[2] = {INT8OID, OIDOID};
	Datum		values[2];
	int			result;

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
		char	   *key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

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
