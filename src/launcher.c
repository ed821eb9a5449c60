/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one background worker per cluster that gives the
 *	  workers of one pool (jobq.max_workers) to the databases that have
 *	  jobs due.
 *
 * The launcher connects to no database; it reads pg_database.  Whether jobq
 * is installed in a database can only be seen from inside it, so for a
 * database in state "unknown" the launcher starts one worker, which either
 * finds the extension, or reports it absent and leaves.  A database is
 * probed again when CREATE EXTENSION jobq commits there (the install script
 * asks for it), when it is new, and every few minutes.
 *
 * Workers on demand: a database holds workers only while it has work.  The
 * shared table of databases (shmem.c) says when each database's lanes next
 * have work that no worker is on: an enqueue writes its run_at there when
 * no worker of its lane is left, a worker that leaves writes when the
 * lane's next job (or pruning) is due, and the launcher writes "now" for a
 * worker that died.  When that time comes, the launcher starts a worker of
 * the lane; a lane whose workers all have more than they take (more) gets
 * another, up to jobq.workers (SQL) or one (net) per database.
 *
 * Fairness: when more lanes have work due than the pool has free slots,
 * the lanes waiting longest (earliest due) are served first, and the
 * launcher publishes how many wait: idle workers then leave at once, and a
 * worker that has served its database for jobq.worker_yield_after leaves
 * after its batch, its lane due again from that moment.  A waiting lane
 * thus gets a slot within jobq.worker_yield_after plus the longest job
 * running, for each round of jobq.max_workers lanes ahead of it.
 *
 * Databases beyond jobq.max_databases have no entry: an enqueue there wakes
 * the launcher, which then starts a worker for each of them, and each is
 * also looked at every jobq.poll_interval.
 *
 * The launcher owns the worker slots: it allocates a slot before
 * registering the worker, and frees it once the postmaster reports the
 * worker stopped.
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
#define WAITING_RECHECK_MS 1000	   /* work due, no worker started */

typedef struct LauncherDb
{
	Oid dboid;
	JobqDbState state;
	TimestampTz probed_at;
	TimestampTz unknown_since; /* when its state became unknown */
	TimestampTz restart_after;
	TimestampTz polled_at; /* without an entry: when a worker last came */
	int entry;			   /* its index in the shared table of databases, or -1 */
	bool overflow_due;	   /* without an entry: an enqueue may have come */
	bool seen;			   /* found by the latest scan */
} LauncherDb;

/* A lane that wants a worker. */
typedef struct Want
{
	LauncherDb *db;
	bool net;
	TimestampTz since; /* due since: the earliest first */
} Want;

static List *databases = NIL; /* of LauncherDb, in launcher_cxt */
static MemoryContext launcher_cxt = NULL;
static BackgroundWorkerHandle **handles = NULL;
static TimestampTz last_scan = 0;
static TimestampTz warned_no_slots = 0;
static bool warned_no_entry = false;

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

/* Set what the launcher knows of a database, in its entry too. */
static void
set_state(LauncherDb *db, JobqDbState state)
{
	if (state == db->state)
		return;
	if (state == JOBQ_DB_UNKNOWN)
		db->unknown_since = GetCurrentTimestamp();
	db->state = state;
	if (db->entry >= 0)
		jobq_shmem_db_set_state(db->dboid, state);
}

/* Give a database an entry in the shared table, if there is room. */
static void
register_db(LauncherDb *db)
{
	db->entry = jobq_shmem_db_register(db->dboid);
	if (db->entry >= 0)
		jobq_shmem_db_set_state(db->dboid, db->state);
	else if (!warned_no_entry)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("jobq tracks at most %d databases: the others are looked at every jobq.poll_interval",
						jobq_shmem_ndatabases()),
				 errhint("Raise jobq.max_databases and restart the server.")));
		warned_no_entry = true;
	}
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
			db->entry = -1;
			db->state = JOBQ_DB_UNKNOWN;
			db->unknown_since = GetCurrentTimestamp();
			databases = lappend(databases, db);
			MemoryContextSwitchTo(old);
		}
		db->seen = true;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	/* forget the dropped ones first: their entries make room */
	old = MemoryContextSwitchTo(launcher_cxt);
	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);

		if (db->seen)
			kept = lappend(kept, db);
		else
		{
			if (db->entry >= 0)
				jobq_shmem_db_forget(db->dboid);
			pfree(db);
		}
	}
	list_free(databases);
	databases = kept;
	MemoryContextSwitchTo(old);

	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);

		if (db->entry < 0)
			register_db(db);
	}
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
		else if (db->state == JOBQ_DB_ABSENT)
			set_state(db, JOBQ_DB_UNKNOWN);
	}
	if (all)
		foreach(lc, databases)
		{
			LauncherDb *db = lfirst(lc);

			if (db->state == JOBQ_DB_ABSENT)
				set_state(db, JOBQ_DB_UNKNOWN);
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
		LauncherDb *db;

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
		if (!OidIsValid(end.dboid) || (db = find_db(end.dboid)) == NULL)
			continue;
		if (end.reason == JOBQ_EXIT_ABSENT)
			set_state(db, JOBQ_DB_ABSENT);
		else if (end.has_jobq)
			set_state(db, JOBQ_DB_PRESENT);
		if (end.reason == JOBQ_EXIT_UNKNOWN || end.reason == JOBQ_EXIT_ASKED)
		{
			/*
			 * It died, or was stopped, perhaps with jobs left (running
			 * under its token, or pending): a worker is to look again.
			 */
			if (db->entry >= 0)
				jobq_shmem_db_due(db->dboid, JOBQ_LANE(end.net), now);
			else
				db->overflow_due = true;
		}
		if (end.reason == JOBQ_EXIT_UNKNOWN)
		{
			/* perhaps its database is gone; do not hurry back */
			rescan = true;
			if (!TimestampDifferenceExceeds(end.started_at, now, YOUNG_MS))
				db->restart_after = TimestampTzPlusMilliseconds(now, RESTART_DELAY_MS);
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

	/* the new worker looks for everything due in its lane */
	if (db->entry >= 0)
		jobq_shmem_db_served(db->dboid, JOBQ_LANE(net), GetCurrentTimestamp());
	else
	{
		db->overflow_due = false;
		db->polled_at = GetCurrentTimestamp();
	}
	return true;
}

/*
 * How many worker slots a database holds (leaving workers too), and its
 * workers per lane that are not leaving (live); a worker that found jobq
 * makes it present.
 */
static int
workers_of(LauncherDb *db, int *live)
{
	bool has_jobq;
	int count = jobq_shmem_count_workers(db->dboid, live, &has_jobq);

	if (has_jobq)
		set_state(db, JOBQ_DB_PRESENT);
	return count;
}

/* Whether databases with jobq get net workers. */
static bool
net_wanted(void)
{
	return jobq_workers > 0 && jobq_http_max_in_flight > 0;
}

/*
 * When a database's lane next has work no worker is on, as far as known:
 * from its entry in table (a copy of the shared table), or for a database
 * without one, now after an enqueue there, else at its next poll.
 */
static TimestampTz
lane_due(LauncherDb *db, const JobqDatabase *table, int lane)
{
	if (db->entry >= 0)
		return table[db->entry].due[lane];
	if (db->overflow_due)
		return 0;
	return TimestampTzPlusMilliseconds(db->polled_at, jobq_poll_interval);
}

static void
add_want(Want *wants, int *n, LauncherDb *db, bool net, TimestampTz since)
{
	wants[*n].db = db;
	wants[*n].net = net;
	wants[*n].since = since;
	(*n)++;
}

static int
want_cmp(const void *a, const void *b)
{
	const Want *wa = a;
	const Want *wb = b;

	if (wa->since != wb->since)
		return wa->since < wb->since ? -1 : 1;
	if (wa->db->dboid != wb->db->dboid)
		return wa->db->dboid < wb->db->dboid ? -1 : 1;
	return (int) wa->net - (int) wb->net;
}

/*
 * Start workers where work is due: first a worker for each lane that has
 * none, those due earliest first; then more workers for lanes whose workers
 * have more than they take.  Tell the pool how many lanes still wait.
 */
static void
balance(bool overflow)
{
	TimestampTz now = GetCurrentTimestamp();
	JobqDatabase *table;
	int total = 0;
	int nfirst = 0;
	int nmore = 0;
	int waiting = 0;
	Want *first;
	Want *more;
	ListCell *lc;
	int i;

	if (overflow)
		foreach(lc, databases)
			if (((LauncherDb *) lfirst(lc))->entry < 0)
				((LauncherDb *) lfirst(lc))->overflow_due = true;

	(void) jobq_shmem_copy_databases(&table);
	first = palloc(sizeof(Want) * (list_length(databases) * JOBQ_LANES + 1));
	more = palloc(sizeof(Want) * (list_length(databases) * JOBQ_LANES + 1));
	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);
		int live[JOBQ_LANES];
		int count = workers_of(db, live);
		int lane;

		total += count;

		if (db->state == JOBQ_DB_ABSENT &&
			TimestampDifferenceExceeds(db->probed_at, now, REPROBE_INTERVAL_MS))
			set_state(db, JOBQ_DB_UNKNOWN);
		if (db->state == JOBQ_DB_PRESENT && live[JOBQ_LANE_SQL] > jobq_workers)
			jobq_shmem_trim_workers(db->dboid, false, jobq_workers);
		if (db->state == JOBQ_DB_PRESENT && live[JOBQ_LANE_NET] > 0 && !net_wanted())
			jobq_shmem_trim_workers(db->dboid, true, 0);

		if (jobq_workers == 0 || db->restart_after > now || jobq_shmem_paused(db->dboid))
			continue;

		/* an unknown database gets one worker, which probes it */
		if (db->state == JOBQ_DB_UNKNOWN)
		{
			if (count == 0)
				add_want(first, &nfirst, db, false, db->unknown_since);
			continue;
		}
		if (db->state != JOBQ_DB_PRESENT)
			continue;

		for (lane = 0; lane < JOBQ_LANES; lane++)
		{
			bool net = (lane == JOBQ_LANE_NET);
			TimestampTz due = lane_due(db, table, lane);

			if (net && !net_wanted())
				continue;
			if (live[lane] == 0 && due <= now)
				add_want(first, &nfirst, db, net, due);
			else if (live[lane] > 0 && db->entry >= 0 && table[db->entry].more[lane] &&
					 live[lane] < jobq_shmem_lane_max(net))
				add_want(more, &nmore, db, net, now);
		}
	}

	qsort(first, nfirst, sizeof(Want), want_cmp);
	for (i = 0; i < nfirst; i++)
	{
		LauncherDb *db = first[i].db;

		if (total >= jobq_shmem_nworkers())
		{
			waiting++;
			continue;
		}
		if (db->state == JOBQ_DB_UNKNOWN)
			db->probed_at = now;
		if (start_worker(db, first[i].net))
			total++;
	}
	for (i = 0; i < nmore && total < jobq_shmem_nworkers(); i++)
		if (start_worker(more[i].db, more[i].net))
			total++;
	jobq_shmem_set_pool_waiting(waiting);

	pfree(first);
	pfree(more);
	pfree(table);
}

/*
 * How long to sleep: until the next scan, the next delayed restart, or the
 * next time work is due in a lane without a worker.
 */
static long
launcher_timeout(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = TimestampTzPlusMilliseconds(last_scan, RESCAN_INTERVAL_MS);
	JobqDatabase *table;
	int ntable = jobq_shmem_copy_databases(&table);
	ListCell *lc;
	int i;

	foreach(lc, databases)
	{
		LauncherDb *db = lfirst(lc);

		if (db->restart_after > now && db->restart_after < next)
			next = db->restart_after;
		if (db->state == JOBQ_DB_PRESENT && db->entry < 0)
			next = Min(next, Max(now, lane_due(db, table, JOBQ_LANE_SQL)));
	}
	for (i = 0; i < ntable; i++)
	{
		int lane;

		if (table[i].dboid == InvalidOid)
			continue;
		for (lane = 0; lane < JOBQ_LANES; lane++)
			next = Min(next, table[i].due[lane]);
	}
	pfree(table);

	/*
	 * Work due that got no worker (paused database, no slot, a restart
	 * delayed): look again in a second.  Slots that free up wake the
	 * launcher anyway.
	 */
	if (next <= now)
		return WAITING_RECHECK_MS;
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
		bool overflow;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		rescan = collect_stopped_workers();
		rescan |= take_probe_requests();
		overflow = jobq_shmem_take_overflow(); /* perhaps a new database */
		if (rescan || overflow || databases == NIL ||
			TimestampDifferenceExceeds(last_scan, GetCurrentTimestamp(), RESCAN_INTERVAL_MS))
			scan_databases();
		balance(overflow);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 launcher_timeout(), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
