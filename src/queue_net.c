/*-------------------------------------------------------------------------
 *
 * queue_net.c
 *	  Network jobs: the request a job makes (jobq._net_request, as its
 *	  owner's rights allow) and the delivery log rows.
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
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "queue.h"
#include "superuser.h"

/* kept plans */
static SPIPlanPtr plan_net_request = NULL;
static SPIPlanPtr plan_log_delivery = NULL;

/*
 * The request a network job makes (jobq._net_request), checked as its
 * owner's: the grants, the channel and the payload.  With job_id 0, the
 * check of a job being enqueued.  Raises the error the job dies of.
 */
Jsonb *
jobq_queue_net_request(int64 job_id, const char *kind, Jsonb *payload,
					   Oid owner, TimestampTz created_at)
{
	JobqSpiCall qc;
	Oid types[6] = {INT8OID, TEXTOID, JSONBOID, OIDOID, TIMESTAMPTZOID, TEXTOID};
	Datum values[6];
	char nulls[6] = "      ";
	bool isnull;
	Jsonb *request;

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
	JobqSpiCall qc;
	Oid types[15] = {INT8OID, INT4OID, TEXTOID, OIDOID, TEXTOID, TEXTOID,
					 TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, FLOAT8OID,
					 TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum values[15];
	char nulls[15] = "               ";

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

/*
 * Which of the n jobs ids (the net worker's transfers under way) were
 * cancelled while they ran (jobq.cancel): written to cancelled, in no
 * order; returns how many.  The caller is in a transaction.
 */
int
jobq_queue_net_cancelled(const int64 *ids, int n, int64 *cancelled)
{
	static SPIPlanPtr plan_cancelled = NULL;
	JobqSpiCall qc;
	Oid types[1] = {INT8ARRAYOID};
	Datum values[1];
	Datum *elems = palloc(sizeof(Datum) * Max(n, 1));
	uint64 i;

	for (i = 0; i < (uint64) n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	values[0] = PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	jobq_superuser_spi_begin_indexed(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan_cancelled,
												  "SELECT id FROM jobq._queue "
												  "WHERE id = ANY ($1) AND status = 'running' AND cancel_requested",
												  1, types),
						   values, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		bool isnull;

		cancelled[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	jobq_superuser_spi_end(&qc);
	return (int) i;
}
