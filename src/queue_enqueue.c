/*-------------------------------------------------------------------------
 *
 * queue_enqueue.c
 *	  Enqueue: a job with a job_key, or one that qrel.c cannot write without
 *	  the executor, and enqueue_many, as INSERT statements.
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
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "qrel.h"
#include "queue.h"
#include "superuser.h"

/* kept plans */
static SPIPlanPtr plan_insert[JOBQ_KEY_MODES];
static SPIPlanPtr plan_find_key = NULL;
static SPIPlanPtr plan_insert_many = NULL;
static SPIPlanPtr plan_insert_many_keys = NULL;

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

/*
 * %s: ", precedence, concurrency_key, external" and their values (the
 * queue's precedence, JOBQ_PRECEDENCE_OF, the job's key, and whether its
 * kind is external), or nothing in the tables of 0.1.0 (see
 * with_queue_columns).
 */
#define NEW_JOB_INSERT \
	"INSERT INTO jobq._queue (kind, queue, payload, priority, run_at, " \
	"max_attempts, timeout, job_key, owner, net%s) "
#define NEW_JOB_VALUES \
	"VALUES ($1, $2, $3, $4, $5, $6, $7 * interval '1 ms', $8, $9::regrole, $10%s)"
#define NEW_JOB_PRECEDENCE JOBQ_PRECEDENCE_OF("$2")
#define NEW_JOB_EXTERNAL JOBQ_EXTERNAL_OF("$1")
#define NEW_JOB_CONFLICT \
	" ON CONFLICT (owner, job_key) WHERE job_key IS NOT NULL DO NOTHING RETURNING id"
/* the key modes but keep: the live job that holds the key, if pending and of the kind, takes */
#define NEW_JOB_REPLACE(set) \
	" ON CONFLICT (owner, job_key) WHERE job_key IS NOT NULL DO UPDATE SET " set \
	" WHERE _queue.status = 'pending' AND _queue.kind = excluded.kind RETURNING id"

/* the statement of each key mode */
static const char *const insert_sql[JOBQ_KEY_MODES] = {
	[JOBQ_KEY_KEEP] = NEW_JOB_INSERT NEW_JOB_VALUES NEW_JOB_CONFLICT,
	[JOBQ_KEY_DEBOUNCE] = NEW_JOB_INSERT NEW_JOB_VALUES
		NEW_JOB_REPLACE("payload = excluded.payload, run_at = excluded.run_at"),
	[JOBQ_KEY_THROTTLE] = NEW_JOB_INSERT NEW_JOB_VALUES NEW_JOB_REPLACE("payload = excluded.payload"),
};

/*
 * A statement of this file, built once: with the columns precedence,
 * concurrency_key and external where the table has them (0.2.0), the
 * queue's precedence, key (an expression) and the kind's lane as their
 * values.
 */
static char *
with_queue_columns(const char *sql, const char *key)
{
	bool has = jobq_qrel_has_queue_columns();

	return psprintf(sql, has ? ", precedence, concurrency_key, external" : "",
					has ? psprintf(", %s, %s, %s", NEW_JOB_PRECEDENCE, key, NEW_JOB_EXTERNAL) : "");
}

/* The bigint in the first column of the first row SPI returned. */
static int64
first_id(void)
{
	bool isnull;

	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Insert one job; with a job_key that a live job of the same owner holds,
 * return that job's id instead, after giving it what mode says (keep
 * without a key: the caller refuses the others).  ON CONFLICT makes it
 * race-free: a concurrent holder is waited for, and one a claim made
 * running meanwhile is left alone.
 */
int64
jobq_queue_insert(const JobqNewJob *job, Jsonb *payload, const char *job_key,
				  JobqKeyMode mode)
{
	JobqSpiCall qc;
	Oid types[11] = {TEXTOID, TEXTOID, JSONBOID, INT4OID, TIMESTAMPTZOID,
					 INT4OID, INT8OID, TEXTOID, OIDOID, BOOLOID, TEXTOID};
	Datum values[11];
	char nulls[11] = "           ";
	int64 id = 0;
	int tries;

	Assert(job_key != NULL || mode == JOBQ_KEY_KEEP);

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
	if (job->concurrency_key)
		values[10] = CStringGetTextDatum(job->concurrency_key);
	else
		nulls[10] = 'n';

	jobq_superuser_spi_begin(&qc);
	for (tries = 0; id == 0 && tries < 10; tries++)
	{
		Oid ktypes[2] = {OIDOID, TEXTOID};
		Datum kvalues[2];

		if (plan_insert[mode] == NULL)
			(void) jobq_superuser_prepare(&plan_insert[mode], with_queue_columns(insert_sql[mode], "$11"), 11, types);
		jobq_superuser_execute(plan_insert[mode], values, nulls, SPI_OK_INSERT_RETURNING);
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
					   bool have_keys, Datum concurrency_keys, bool have_concurrency_keys,
					   int64 **ids, int *nids)
{
	JobqSpiCall qc;
	Oid types[11] = {TEXTOID, TEXTOID, JSONBARRAYOID, INT4OID, TIMESTAMPTZOID,
					 INT4OID, INT8OID, TEXTARRAYOID, OIDOID, BOOLOID, TEXTARRAYOID};
	Datum values[11];
	char nulls[11] = "           ";
	SPIPlanPtr plan;
	uint64 i;

	new_job_values(job, values, nulls);
	values[2] = payloads;
	values[7] = job_keys;
	if (!have_keys)
		nulls[7] = 'n';
	values[10] = concurrency_keys;
	if (!have_concurrency_keys)
		nulls[10] = 'n';

	jobq_superuser_spi_begin(&qc);
	if (have_keys)
		plan = plan_insert_many_keys != NULL
				   ? plan_insert_many_keys
				   : jobq_superuser_prepare(&plan_insert_many_keys,
											with_queue_columns(NEW_JOB_INSERT
															   "SELECT $1, $2, u.p, $4, $5, $6, $7 * interval '1 ms', u.k, $9::regrole, $10%s "
															   "FROM unnest($3, $8, $11) WITH ORDINALITY AS u(p, k, c, n) ORDER BY u.n" NEW_JOB_CONFLICT,
															   "u.c"),
											11, types);
	else
		plan = plan_insert_many != NULL
				   ? plan_insert_many
				   : jobq_superuser_prepare(&plan_insert_many,
											with_queue_columns(NEW_JOB_INSERT
															   "SELECT $1, $2, u.p, $4, $5, $6, $7 * interval '1 ms', $8[1], $9::regrole, $10%s "
															   "FROM unnest($3, $11) WITH ORDINALITY AS u(p, c, n) ORDER BY u.n "
															   "RETURNING id",
															   "u.c"),
											11, types);
	jobq_superuser_execute(plan, values, nulls, SPI_OK_INSERT_RETURNING);

	*nids = (int) SPI_processed;
	*ids = MemoryContextAlloc(qc.caller_cxt, sizeof(int64) * Max(*nids, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool isnull;

		(*ids)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1, &isnull));
	}
	jobq_superuser_spi_end(&qc);
}
