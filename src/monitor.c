/*-------------------------------------------------------------------------
 *
 * monitor.c
 *	  jobq.workers: what every worker of the cluster is doing, read from
 *	  shared memory.
 *
 * The slots are copied under the shared lock and reported after it is
 * released, so a reader never holds up the workers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "shmem.h"

PG_FUNCTION_INFO_V1(jobq__worker_status);

static const char *
state_name(JobqWorkerState state)
{
	switch (state)
	{
		case JOBQ_WORKER_FREE:
			return "stopped";
		case JOBQ_WORKER_STARTING:
			return "starting";
		case JOBQ_WORKER_IDLE:
			return "idle";
		case JOBQ_WORKER_CLAIMING:
			return "claiming";
		case JOBQ_WORKER_RUNNING:
			return "running";
		case JOBQ_WORKER_VACUUMING:
			return "vacuuming";
	}
	return "unknown";
}

Datum
jobq__worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JobqWorker *copy;
	int n;
	int i;

	InitMaterializedSRF(fcinfo, 0);
	if (!jobq_shmem_available())
		return (Datum) 0;

	n = jobq_shmem_copy_slots(&copy);

	for (i = 0; i < n; i++)
	{
		JobqWorker *w = &copy[i];
		Datum values[15];
		bool nulls[15];
		char *datname;

		if (!w->in_use)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(w->pid);
		nulls[0] = (w->pid == 0);
		datname = get_database_name(w->dboid);
		nulls[1] = (datname == NULL);
		if (datname)
		{
			Name nm = palloc0(NAMEDATALEN);

			namestrcpy(nm, datname);
			values[1] = NameGetDatum(nm);
		}
		values[2] = Int32GetDatum(w->number);
		values[3] = CStringGetTextDatum(w->net ? "net" : "sql");
		values[4] = CStringGetTextDatum(state_name(w->state));
		values[5] = Int64GetDatum(w->job_id);
		nulls[5] = (w->job_id == 0);
		values[6] = Int64GetDatum((int64) w->jobs_succeeded);
		values[7] = Int64GetDatum((int64) w->jobs_failed);
		values[8] = TimestampTzGetDatum(w->started_at);
		nulls[8] = (w->started_at == 0);
		values[9] = TimestampTzGetDatum(w->state_since);
		nulls[9] = (w->state_since == 0);
		values[10] = Int32GetDatum(w->in_flight);
		nulls[10] = !w->net;
		values[11] = Int64GetDatum((int64) w->claims);
		values[12] = Int64GetDatum((int64) w->jobs_claimed);
		values[13] = Float8GetDatum(w->claim_ms);
		values[14] = Int64GetDatum((int64) w->claim_buffers);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
