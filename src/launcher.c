/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one background worker per cluster that keeps a set of
 *	  job workers running in every database where jobq is installed.
 *
 * The launcher connects to no database; it reads pg_database.  Whether jobq
 * is installed in a database can only be seen from inside it, so for a
 * database in state "unknown" the launcher starts one worker, which either
 * finds the extension and stays, or reports it absent and leaves.  A
 * database is probed again when CREATE EXTENSION jobq commits there (the
 * install script asks for it), when it is new, and every few minutes.
 *
 * Workers are given out round-robin across databases, jobq.workers each at
 * most, jobq.max_workers in all.  The launcher owns the worker slots: it
 * allocates a slot before registering the worker, and frees it once the
 * postmaster reports the worker stopped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "launcher.h"
#include "shmem.h"

#define RESCAN_INTERVAL_MS 10000   /* look for new databases */
#define REPROBE_INTERVAL_MS 300000 /* look again where jobq was absent */
#define RESTART_DELAY_MS 5000	   /* after a worker died young */
#define YOUNG_MS 10000			   /* a worker that lived less died young */
#define STALE_SLOT_MS 30000		   /* a slot whose worker never attached */

typedef enum DbState
{
	DB_UNKNOWN,
	DB_PRESENT,
	DB_ABSENT
} DbState;

typedef struct LauncherDb
{
	Oid dboid;
	DbState state;
	TimestampTz probed_at;
	TimestampTz restart_after;
	bool seen; /* found by the latest scan */
} LauncherDb;

static List *databases = NIL; /* of LauncherDb, in launcher_cxt */
static MemoryContext launcher_cxt = NULL;
static BackgroundWorkerHandle **handles = NULL;
static TimestampTz last_scan = 0;
static TimestampTz warned_no_slots = 0;

void
jobq_launcher_register(void)
{
	BackgroundWorker bgw;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = 5;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "jobq");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "jobq_launcher_main");
	snprintf(bgw.bgw_name, BGW_MAXLEN, "jobq launcher");
	snprintf(bgw.bgw_type, BGW_MAXLEN, "jobq launcher");
	RegisterBackgroundWorker(&bgw);
}

static LauncherDb *
find_db(Oid dboid)
{
	ListCell *lc;

	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);

		if (db->dboid == dboid)
			return db;
	}
	return NULL;
}

/* Read pg_database: add new databases, forget dropped ones. */
static void
scan_databases(void)
{
	Relation rel;
	TableScanDesc scan;
	HeapTuple tup;
	ListCell *lc;
	List *kept = NIL;
	MemoryContext old;

	foreach(lc, databases)
		((LauncherDb *) lfirst(lc))->seen = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tup = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database pgdb = (Form_pg_database) GETSTRUCT(tup);
		LauncherDb *db;

		if (!pgdb->datallowconn || pgdb->datistemplate ||
			pgdb->datconnlimit == DATCONNLIMIT_INVALID_DB)
			continue;
		db = find_db(pgdb->oid);
		if (db == NULL)
		{
			old = MemoryContextSwitchTo(launcher_cxt);
			db = palloc0(sizeof(LauncherDb));
			db->dboid = pgdb->oid;
			db->state = DB_UNKNOWN;
			databases = lappend(databases, db);
			MemoryContextSwitchTo(old);
		}
		db->seen = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	old = MemoryContextSwitchTo(launcher_cxt);
	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);

		if (db->seen)
			kept = lappend(kept, db);
		else
			pfree(db);
	}
	list_free(databases);
	databases = kept;
	MemoryContextSwitchTo(old);
	last_scan = GetCurrentTimestamp();
}

/* Take the probe requests left by CREATE EXTENSION. */
static bool
take_probe_requests(void)
{
	Oid requests[JOBQ_PROBE_REQUESTS];
	int n;
	bool all;
	bool unknown_db = false;
	int i;
	ListCell *lc;

	n = jobq_shmem_take_probe_requests(requests, &all);

	for (i = 0; i < n; i++)
	{
		LauncherDb *db = find_db(requests[i]);

		if (db == NULL)
			unknown_db = true;
		else if (db->state == DB_ABSENT)
			db->state = DB_UNKNOWN;
	}
	if (all)
		foreach(lc, databases)
		{
			LauncherDb *db = lfirst(lc);

			if (db->state == DB_ABSENT)
				db->state = DB_UNKNOWN;
		}
	return unknown_db || all;
}

/*
 * Free the slots of workers that stopped, and learn from how they ended.
 * Returns true if a database may have been dropped.
 */
static bool
collect_stopped_workers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool rescan = false;
	int i;

	for (i = 0; i < jobq_shmem_nworkers(); i++)
	{
		pid_t pid;
		bool stopped = false;
		JobqSlotEnd end;

		if (handles[i] != NULL)
			stopped = (GetBackgroundWorkerPid(handles[i], &pid) == BGWH_STOPPED);
		stopped = jobq_shmem_collect_slot(i, stopped, handles[i] == NULL, now,
										  STALE_SLOT_MS, &end);

		if (!stopped)
			continue;
		if (handles[i] != NULL)
		{
			pfree(handles[i]);
			handles[i] = NULL;
		}
		if (OidIsValid(end.dboid))
		{
			LauncherDb *db = find_db(end.dboid);

			if (db == NULL)
				continue;
			if (end.reason == JOBQ_EXIT_ABSENT)
				db->state = DB_ABSENT;
			else if (end.has_jobq)
				db->state = DB_PRESENT;
			if (end.reason == JOBQ_EXIT_UNKNOWN)
			{
				/* it died: perhaps its database is gone; do not hurry back */
				rescan = true;
				if (!TimestampDifferenceExceeds(end.started_at, now, YOUNG_MS))
					db->restart_after = TimestampTzPlusMilliseconds(now, RESTART_DELAY_MS);
			}
		}
	}
	return rescan;
}

/* Allocate a slot and start a worker for a database: a SQL worker, or its net worker. */
static bool
start_worker(LauncherDb *db, bool net)
{
	BackgroundWorker bgw;
	int slot = -1;
	int number = 0;
	uint32 generation = 0;

	slot = jobq_shmem_allocate_slot(db->dboid, net, &number, &generation);
	if (slot < 0)
		return false;

	memset(&bgw, 0, sizeof(bgw));
	bgw.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	bgw.bgw_start_time = BgWorkerStart_RecoveryFinished;
	bgw.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(bgw.bgw_library_name, BGW_MAXLEN, "jobq");
	snprintf(bgw.bgw_function_name, BGW_MAXLEN, "jobq_worker_main");
	if (net)
	{
		snprintf(bgw.bgw_name, BGW_MAXLEN, "jobq net worker for database %u", db->dboid);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "jobq net worker");
	}
	else
	{
		snprintf(bgw.bgw_name, BGW_MAXLEN, "jobq worker %d for database %u", number, db->dboid);
		snprintf(bgw.bgw_type, BGW_MAXLEN, "jobq worker");
	}
	bgw.bgw_main_arg = Int32GetDatum(slot);
	memcpy(bgw.bgw_extra, &generation, sizeof(generation));
	bgw.bgw_notify_pid = MyProcPid;

	if (!RegisterDynamicBackgroundWorker(&bgw, &handles[slot]))
	{
		TimestampTz now = GetCurrentTimestamp();

		jobq_shmem_free_slot(slot);
		handles[slot] = NULL;
		if (TimestampDifferenceExceeds(warned_no_slots, now, 60000))
		{
			ereport(WARNING,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("jobq could not start a worker: no background worker slot is free"),
					 errhint("Raise max_worker_processes to leave room for jobq.max_workers workers and the launcher.")));
			warned_no_slots = now;
		}
		db->restart_after = TimestampTzPlusMilliseconds(now, RESTART_DELAY_MS);
		return false;
	}
	return true;
}

/*
 * How many worker slots a database holds, and how many of them are net
 * workers (*net, may be NULL); a worker that found jobq makes it present.
 */
static int
workers_of(LauncherDb *db, int *net)
{
	int nnet;
	bool has_jobq;
	int count = jobq_shmem_count_workers(db->dboid, &nnet, &has_jobq);

	if (has_jobq)
		db->state = DB_PRESENT;
	if (net)
		*net = nnet;
	return count;
}

/* Whether each database with jobq gets a net worker. */
static bool
net_wanted(void)
{
	return jobq_workers > 0 && jobq_http_max_in_flight > 0;
}

/* Start and stop workers so that each database has its share. */
static void
balance(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int total = 0;
	bool progress;
	ListCell *lc;

	/* count what runs, per database; note probes due again */
	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);
		int net;
		int count = workers_of(db, &net);

		total += count;

		if (db->state == DB_ABSENT &&
			TimestampDifferenceExceeds(db->probed_at, now, REPROBE_INTERVAL_MS))
			db->state = DB_UNKNOWN;
		if (db->state == DB_PRESENT && count - net > jobq_workers)
			jobq_shmem_trim_workers(db->dboid, false, jobq_workers);
		if (db->state == DB_PRESENT && net > 0 && !net_wanted())
			jobq_shmem_trim_workers(db->dboid, true, 0);
	}

	/* every unknown database gets one worker, which probes it */
	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);

		if (db->state != DB_UNKNOWN || total >= jobq_shmem_nworkers() ||
			jobq_workers == 0 || db->restart_after > now ||
			jobq_shmem_paused(db->dboid))
			continue;
		if (workers_of(db, NULL) > 0)
			continue;
		db->probed_at = now;
		if (start_worker(db, false))
			total++;
	}

	/*
	 * then one more worker per database and round, while the budget lasts:
	 * a first SQL worker, the net worker, then the other SQL workers
	 */
	do
	{
		progress = false;
		foreach(lc, databases)
		{
			LauncherDb *db = lfirst(lc);
			int net;
			int sql;
			bool start_net;

			if (db->state != DB_PRESENT || total >= jobq_shmem_nworkers() ||
				db->restart_after > now || jobq_shmem_paused(db->dboid))
				continue;
			sql = workers_of(db, &net) - net;
			start_net = sql > 0 && net == 0 && net_wanted();
			if (!start_net && sql >= jobq_workers)
				continue;
			if (start_worker(db, start_net))
			{
				total++;
				progress = true;
			}
		}
	} while (progress);
}

/* How long to sleep: until the next scan or the next delayed restart. */
static long
launcher_timeout(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = TimestampTzPlusMilliseconds(last_scan, RESCAN_INTERVAL_MS);
	ListCell *lc;

	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);

		if (db->restart_after > now && db->restart_after < next)
			next = db->restart_after;
	}
	if (next <= now)
		return 1;
	return TimestampDifferenceMilliseconds(now, next);
}

void
jobq_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	SetConfigOption("application_name", "jobq launcher", PGC_USERSET, PGC_S_SESSION);

	launcher_cxt = AllocSetContextCreate(TopMemoryContext, "jobq launcher",
										 ALLOCSET_DEFAULT_SIZES);
	handles = MemoryContextAllocZero(launcher_cxt,
									 sizeof(BackgroundWorkerHandle *) * jobq_shmem_nworkers());

	jobq_shmem_launcher_attach();

	ereport(LOG, (errmsg("jobq launcher started")));
	jobq_shmem_start_durable_claims();

	for (;;)
	{
		bool rescan;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		rescan = collect_stopped_workers();
		rescan |= take_probe_requests();
		if (rescan || databases == NIL ||
			TimestampDifferenceExceeds(last_scan, GetCurrentTimestamp(), RESCAN_INTERVAL_MS))
			scan_databases();
		balance();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 launcher_timeout(), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
