/*-------------------------------------------------------------------------
 *
 * monitor.c
 *	  jobq.workers: what every worker of the cluster is doing, and
 *	  jobq.databases: what the launcher knows of each database, and the
 *	  progress running jobs report (jobq.jobs), read from shared memory.
 *
 * The slots are copied under the shared lock and reported after it is
 * released, so a reader never holds up the workers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "queue_limits.h"
#include "shmem.h"

PG_FUNCTION_INFO_V1(jobq__worker_status);
PG_FUNCTION_INFO_V1(jobq__database_status);
PG_FUNCTION_INFO_V1(jobq__progress);
PG_FUNCTION_INFO_V1(jobq__queue_state);

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

/* A database's name as a name Datum; false if it has none (dropped). */
static bool
database_name(Oid dboid, Datum *value)
{
	char *datname = get_database_name(dboid);
	Name nm;

	if (datname == NULL)
		return false;
	nm = palloc0(NAMEDATALEN);
	namestrcpy(nm, datname);
	*value = NameGetDatum(nm);
	return true;
}

/*
 * Set up a materialized set-returning call and copy the worker slots into
 * *copy; returns how many (none when jobq is not preloaded).
 */
static int
srf_slots(FunctionCallInfo fcinfo, JobqWorker **copy)
{
	InitMaterializedSRF(fcinfo, 0);
	if (!jobq_shmem_available())
		return 0;
	return jobq_shmem_copy_slots(copy);
}

Datum
jobq__worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JobqWorker *copy = NULL;
	int n;
	int i;

	n = srf_slots(fcinfo, &copy);
	for (i = 0; i < n; i++)
	{
		JobqWorker *w = &copy[i];
		Datum values[15];
		bool nulls[15];

		if (!w->in_use)
			continue;
		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(w->pid);
		nulls[0] = (w->pid == 0);
		nulls[1] = !database_name(w->dboid, &values[1]);
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

static const char *
db_state_name(JobqDbState state)
{
	switch (state)
	{
		case JOBQ_DB_UNKNOWN:
			return "unknown";
		case JOBQ_DB_PRESENT:
			return "present";
		case JOBQ_DB_ABSENT:
			return "absent";
	}
	return "unknown";
}

/*
 * Every database in the shared table: what the launcher knows, the workers
 * it holds per lane (not leaving), and when each lane next has work that no
 * worker of it is on.
 */
Datum
jobq__database_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JobqDatabase *dbs;
	JobqWorker *slots;
	int ndbs;
	int nslots;
	int i;

	InitMaterializedSRF(fcinfo, 0);
	if (!jobq_shmem_available())
		return (Datum) 0;

	ndbs = jobq_shmem_copy_databases(&dbs);
	nslots = jobq_shmem_copy_slots(&slots);

	for (i = 0; i < ndbs; i++)
	{
		JobqDatabase *db = &dbs[i];
		Datum values[8];
		bool nulls[8];
		int live[JOBQ_LANES] = {0, 0};
		int lane;
		int j;

		if (db->dboid == InvalidOid)
			continue;
		for (j = 0; j < nslots; j++)
			if (slots[j].in_use && slots[j].dboid == db->dboid && !slots[j].leaving)
				live[JOBQ_LANE(slots[j].net)]++;
		memset(nulls, 0, sizeof(nulls));
		if (!database_name(db->dboid, &values[0]))
			continue;
		values[1] = CStringGetTextDatum(db_state_name(db->state));
		for (lane = 0; lane < JOBQ_LANES; lane++)
		{
			values[2 + lane] = Int32GetDatum(live[lane]);
			values[4 + lane] = TimestampTzGetDatum(db->due[lane]);
			nulls[4 + lane] = (db->due[lane] == DT_NOEND);
		}
		values[6] = Int64GetDatum((int64) db->workers_started);
		values[7] = TimestampTzGetDatum(db->served_at);
		nulls[7] = (db->served_at == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * jobq._progress(): the progress each job running in this database last
 * reported (jobq.set_progress), for the jobs of roles the current role is
 * a member of.
 */
Datum
jobq__progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JobqWorker *copy = NULL;
	int n;
	int i;

	n = srf_slots(fcinfo, &copy);
	for (i = 0; i < n; i++)
	{
		JobqWorker *w = &copy[i];
		Datum values[4];
		bool nulls[4] = {false, false, false, false};

		if (!w->in_use || w->pid == 0 || w->dboid != MyDatabaseId || w->job_id == 0 ||
			w->progress_job != w->job_id || !is_member_of_role(GetUserId(), w->progress_owner))
			continue;
		values[0] = Int64GetDatum(w->job_id);
		values[1] = Float4GetDatum(w->progress);
		nulls[1] = w->progress_null;
		w->progress_message[JOBQ_MAX_PROGRESS_MESSAGE] = '\0';
		values[2] = CStringGetTextDatum(w->progress_message);
		nulls[2] = w->progress_message[0] == '\0';
		values[3] = TimestampTzGetDatum(w->progress_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * jobq._queue_state(): each queue and concurrency key of this database
 * that shared memory counts now, with its running jobs and a rate-limited
 * queue's next start.  The keys only for members of pg_monitor.
 */
Datum
jobq__queue_state(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	JobqQueueState *copy = NULL;
	int n;
	int i;

	bool monitor = has_privs_of_role(GetUserId(), ROLE_PG_MONITOR);

	InitMaterializedSRF(fcinfo, 0);
	n = jobq_limits_copy(MyDatabaseId, &copy);
	for (i = 0; i < n; i++)
	{
		Datum values[4];
		bool nulls[4] = {false, false, false, false};

		/* keys may name tenants ('patient:123'): pg_monitor's and superusers' */
		if (copy[i].ckey[0] != '\0' && !monitor)
			continue;

		values[0] = CStringGetTextDatum(copy[i].name);
		values[1] = CStringGetTextDatum(copy[i].ckey);
		nulls[1] = copy[i].ckey[0] == '\0';
		values[2] = Int32GetDatum(copy[i].running);
		values[3] = TimestampTzGetDatum(copy[i].next_start);
		nulls[3] = copy[i].next_start == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
