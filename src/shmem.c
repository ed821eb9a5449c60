/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared memory: worker slots, wake-ups at commit, launcher requests.
 *
 * JobqShared is private to this file and shmem_worker.c (shmem_int.h): the
 * launcher, the workers, the monitor and the utility hook reach it through
 * the functions of shmem.h, each one short critical section.  This file:
 * set-up, tokens, wake-ups, probe requests, pauses, and the launcher's
 * slot management; shmem_worker.c: a worker's own slot and taking over.
 *
 * Locking: every field of JobqShared is read and written under
 * jobq_shared->lock, except boot_id and nworkers, which are fixed once
 * shared memory is initialised.  Latches are set after the lock is released.
 *
 * Wake-up protocol (no lost wake-ups): a worker reads its wake_seq, looks
 * for jobs, and before sleeping checks under the lock that wake_seq did not
 * move; only then does it mark itself sleeping.  A committing enqueuer bumps
 * wake_seq of every worker of its database and lane and sets the latch of
 * one sleeping worker, whom it marks awake.
 *
 * Workers on demand: a worker that leaves (idle, or yielding its slot)
 * checks the same way that no wake-up came, and marks itself leaving; the
 * last worker of a lane to leave writes when the lane next has work into
 * the database's entry.  An enqueuer that finds no worker of its lane
 * (none, or all leaving) writes its jobs' run_at there instead and wakes
 * the launcher, which starts a worker when that time comes.  So every due
 * job has either a worker of its lane that will look again, or a due time
 * in the entry.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "port.h"
#include <signal.h>
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "external_wait.h"
#include "guc.h"
#include "shmem.h"
#include "shmem_int.h"

JobqShared *jobq_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* per-backend state of the commit callback */
static bool xact_callback_registered = false;
static bool wake_at_commit = false;
static bool wake_net_at_commit = false;
static TimestampTz wake_due[JOBQ_LANES]; /* the earliest run_at of each lane */
static bool wake_all_at_commit = false;
static bool wake_external_at_commit = false; /* the waiters of jobq.claim_wait */
static bool probe_at_commit = false;
typedef struct CancelAtCommit
{
	int64 job_id;
	int level; /* the transaction nesting level of the jobq.cancel */
} CancelAtCommit;
static CancelAtCommit *cancel_at_commit = NULL; /* running jobs to stop, in TopMemoryContext */
static int ncancel_at_commit = 0;
static int maxcancel_at_commit = 0;

static Size
databases_offset(void)
{
	return MAXALIGN(add_size(offsetof(JobqShared, workers),
							 mul_size(jobq_max_workers, sizeof(JobqWorker))));
}

static Size
shmem_size(void)
{
	return add_size(databases_offset(),
					mul_size(jobq_max_databases, sizeof(JobqDatabase)));
}

static void
shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shmem_size());
	RequestNamedLWLockTranche("jobq", 1);
}

static void
shmem_startup(void)
{
	bool found;
	Size size = shmem_size();

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	jobq_shared = ShmemInitStruct("jobq", size, &found);
	if (!found)
	{
		uint32 r;

		memset(jobq_shared, 0, size);
		jobq_shared->lock = &(GetNamedLWLockTranche("jobq"))->lock;
		jobq_shared->nworkers = jobq_max_workers;
		jobq_shared->ndatabases = jobq_max_databases;
		jobq_shared->databases_off = databases_offset();
		if (!pg_strong_random(&r, sizeof(r)))
			r = (uint32) GetCurrentTimestamp();
		/* 31 bits, so that tokens stay positive */
		jobq_shared->boot_id = (int32) (r & 0x7fffffff);
		jobq_shared->next_token = 1;

		/*
		 * The postmaster notes its start time after it first creates shared
		 * memory: set already, it is re-creating it after a crash.
		 */
		jobq_shared->after_crash = (PgStartTime != 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
jobq_shmem_request(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}

/*
 * After a crash, the launcher makes claims commit synchronously for
 * DURABLE_CLAIMS_MS from its start (see jobq_shmem_durable_claims).
 */
#define DURABLE_CLAIMS_MS (60 * 1000)

void
jobq_shmem_start_durable_claims(void)
{
	TimestampTz until;

	if (!jobq_shared->after_crash)
		return;
	until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), DURABLE_CLAIMS_MS);
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (jobq_shared->durable_claims_until != 0)
		until = 0; /* a restarted launcher: the window is set */
	else
		jobq_shared->durable_claims_until = until;
	LWLockRelease(jobq_shared->lock);
	if (until != 0)
		ereport(LOG,
				(errmsg("jobq: the server restarted after a crash; claims commit synchronously until %s",
						timestamptz_to_str(until))));
}

/*
 * Whether a SQL worker's claim must be durable before its jobs run.
 *
 * Normally it need not be: the claim's commit record precedes the run
 * transaction's in the WAL, so the flush that makes a job's effects and
 * completion durable makes its claim durable too, and a claim lost in a
 * crash before that only leaves the job pending, as if never claimed.  What
 * a lost claim loses is the counted attempt, and a job that crashes the
 * server within the WAL writer's delay of its claim would run again and
 * again.  So for a minute after a crash restart claims are durable, and
 * such a job's attempts add up until it is dead.
 */
bool
jobq_shmem_durable_claims(void)
{
	TimestampTz until;

	if (!jobq_shared->after_crash)
		return false;
	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	until = jobq_shared->durable_claims_until;
	LWLockRelease(jobq_shared->lock);
	return until == 0 || GetCurrentTimestamp() < until;
}

/* Whether this backend has jobq's shared memory (the library was preloaded). */
bool
jobq_shmem_available(void)
{
	return jobq_shared != NULL;
}

/*
 * A token no other claimer of this shared memory's lifetime has: the boot id
 * in the high half, a counter in the low half.
 */
int64
jobq_shmem_next_token(void)
{
	int64 token;

	if (jobq_shared == NULL)
	{
		/* not preloaded: a token that no live worker can ever hold */
		return JOBQ_TOKEN(0x7fffffff, 0);
	}
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	token = JOBQ_TOKEN(jobq_shared->boot_id, jobq_shared->next_token++);
	LWLockRelease(jobq_shared->lock);
	return token;
}

/*
 * The entry of a database in the table of databases, or NULL.  Each backend
 * remembers where its own database's entry was.  The caller holds the lock.
 */
JobqDatabase *
jobq_shmem_db_entry(Oid dboid)
{
	static int cached = -1;
	JobqDatabase *dbs = JOBQ_DATABASES();
	int i;

	if (cached >= 0 && cached < jobq_shared->ndatabases && dbs[cached].dboid == dboid)
		return &dbs[cached];
	for (i = 0; i < jobq_shared->ndatabases; i++)
		if (dbs[i].dboid == dboid)
		{
			cached = i;
			return &dbs[i];
		}
	return NULL;
}

/* The slot number of a worker slot, or -1 for none. */
static int
except_slot(const JobqWorker *w)
{
	return w == NULL ? -1 : (int) (w - jobq_shared->workers);
}

/*
 * The workers of a database's lane that are not leaving, except one.  The
 * caller holds the lock.
 */
int
jobq_shmem_lane_live(Oid dboid, bool net, const JobqWorker *except)
{
	int skip = except_slot(except);
	int n = 0;
	int i;

	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		const JobqWorker *w = &jobq_shared->workers[i];

		if (i == skip)
			continue;
		if (w->in_use && w->dboid == dboid && w->net == net && !w->leaving)
			n++;
	}
	return n;
}

/*
 * Wake up to how_many sleeping workers of a database's lane (SQL workers,
 * or the net worker), and make every worker of that lane look again before
 * its next sleep.  The net worker waits on its latch with requests in
 * flight, so its latch is set whether or not it sleeps.
 *
 * due: when the work that wakes them is due (DT_NOEND: no new work).  With
 * no worker of the lane, it goes into the database's entry and the launcher
 * is woken; with workers all busy and fewer than a database may hold, the
 * launcher is asked for one more.
 */
void
jobq_shmem_wake_database(Oid dboid, bool net, int how_many, TimestampTz due)
{
	Latch *latches[64];
	int nlatches = 0;
	int live = 0;
	int lane = JOBQ_LANE(net);
	bool wake_launcher = false;
	Latch *launcher_latch;
	int i;

	if (jobq_shared == NULL)
		return;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (!w->in_use || w->dboid != dboid || w->net != net || w->leaving)
			continue;
		live++;
		w->wake_seq++;
		if (w->pid != 0 && (w->sleeping || net) && nlatches < how_many &&
			nlatches < (int) lengthof(latches))
		{
			w->sleeping = false;
			latches[nlatches++] = w->latch;
		}
	}
	if (due != DT_NOEND)
	{
		JobqDatabase *db = jobq_shmem_db_entry(dboid);

		if (db == NULL)
		{
			if (live == 0 && !jobq_shared->overflow_due)
			{
				jobq_shared->overflow_due = true;
				wake_launcher = true;
			}
		}
		else if (live == 0)
		{
			if (due < db->due[lane])
			{
				db->due[lane] = due;
				wake_launcher = true;
			}
		}
		else if (nlatches == 0 && !db->more[lane] &&
				 live < jobq_shmem_lane_max(net) && due <= GetCurrentTimestamp())
		{
			db->more[lane] = true;
			wake_launcher = true;
		}
	}
	launcher_latch = jobq_shared->launcher_latch;
	LWLockRelease(jobq_shared->lock);

	for (i = 0; i < nlatches; i++)
		SetLatch(latches[i]);
	if (wake_launcher && launcher_latch != NULL)
		SetLatch(launcher_latch);
}

void
jobq_shmem_wake_launcher(void)
{
	Latch *latch;

	if (jobq_shared == NULL)
		return;
	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	latch = jobq_shared->launcher_latch;
	LWLockRelease(jobq_shared->lock);
	if (latch)
		SetLatch(latch);
}

/* Ask the launcher to look at this database again (jobq was installed). */
static void
request_probe(Oid dboid)
{
	int i;
	bool known = false;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < jobq_shared->nprobe_requests; i++)
		if (jobq_shared->probe_requests[i] == dboid)
			known = true;
	if (!known)
	{
		if (jobq_shared->nprobe_requests < JOBQ_PROBE_REQUESTS)
			jobq_shared->probe_requests[jobq_shared->nprobe_requests++] = dboid;
		else
			jobq_shared->rescan_all = true;
	}
	LWLockRelease(jobq_shared->lock);
	jobq_shmem_wake_launcher();
}

static void
prepared_due(void)
{
	TimestampTz due = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), jobq_poll_interval);

	if (wake_at_commit)
		jobq_shmem_wake_database(MyDatabaseId, false, 0, due);
	if (wake_net_at_commit)
		jobq_shmem_wake_database(MyDatabaseId, true, 0, due);
}

/*
 * Stop the running job job_id of this database (jobq.cancel): the SQL
 * worker whose slot runs it is told so in its slot and sent SIGUSR2, under
 * the lock, so the job it marks is the one it runs at that moment (its
 * handler ignores the signal when another job runs by then, see batch.c);
 * when no SQL worker runs it, it may be a network job: the database's net
 * worker is told to look at its transfers.
 */
static void
cancel_running(int64 job_id)
{
	pid_t pid = 0;
	Latch *net_latch = NULL;
	int i;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (!w->in_use || w->dboid != MyDatabaseId || w->pid == 0)
			continue;
		if (!w->net && w->job_id == job_id && w->state == JOBQ_WORKER_RUNNING)
		{
			w->cancel_job = job_id;
			pid = w->pid;
			(void) kill(pid, SIGUSR2);
		}
		else if (w->net)
		{
			w->cancel_seq++;
			net_latch = w->latch;
		}
	}
	LWLockRelease(jobq_shared->lock);
	if (pid == 0 && net_latch != NULL)
		SetLatch(net_latch);
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_all_at_commit)
			{
				jobq_shmem_wake_database(MyDatabaseId, false, INT_MAX, DT_NOEND);
				jobq_shmem_wake_database(MyDatabaseId, true, INT_MAX, DT_NOEND);
			}
			if (wake_at_commit)
				jobq_shmem_wake_database(MyDatabaseId, false, 1, wake_due[JOBQ_LANE_SQL]);
			if (wake_net_at_commit)
				jobq_shmem_wake_database(MyDatabaseId, true, 1, wake_due[JOBQ_LANE_NET]);
			if (wake_external_at_commit)
				jobq_external_wake(MyDatabaseId);
			if (probe_at_commit)
				request_probe(MyDatabaseId);
			for (int i = 0; i < ncancel_at_commit; i++)
				cancel_running(cancel_at_commit[i].job_id);
			ncancel_at_commit = 0;
			wake_at_commit = false;
			wake_net_at_commit = false;
			wake_all_at_commit = false;
			wake_external_at_commit = false;
			probe_at_commit = false;
			break;
		case XACT_EVENT_PREPARE:

			/*
			 * The jobs are due when COMMIT PREPARED runs, in a session that
			 * knows nothing of them: have the database looked at after a
			 * poll interval, as a worker there would.
			 */
			if (wake_at_commit || wake_net_at_commit)
				prepared_due();
			wake_at_commit = false;
			wake_net_at_commit = false;
			wake_all_at_commit = false;
			wake_external_at_commit = false;
			probe_at_commit = false;
			ncancel_at_commit = 0; /* COMMIT PREPARED's session stops nothing */
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			ncancel_at_commit = 0;
			wake_at_commit = false;
			wake_net_at_commit = false;
			wake_all_at_commit = false;
			wake_external_at_commit = false;
			probe_at_commit = false;
			break;
		default:
			break;
	}
}

/* A rolled back savepoint takes its cancellations back. */
static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	int level = GetCurrentTransactionNestLevel();
	int keep = 0;

	if (event != SUBXACT_EVENT_ABORT_SUB && event != SUBXACT_EVENT_COMMIT_SUB)
		return;
	for (int i = 0; i < ncancel_at_commit; i++)
	{
		if (cancel_at_commit[i].level < level)
			cancel_at_commit[keep++] = cancel_at_commit[i];
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			cancel_at_commit[keep] = cancel_at_commit[i];
			cancel_at_commit[keep++].level = level - 1;
		}
	}
	ncancel_at_commit = keep;
}

static void
ensure_xact_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		xact_callback_registered = true;
	}
}

/*
 * Wake a worker of this database when the current transaction commits: a
 * SQL worker, or with net the net worker; due: when the jobs written are
 * due (their earliest run_at).
 */
void
jobq_shmem_wake_on_commit(bool net, TimestampTz due)
{
	int lane = JOBQ_LANE(net);
	bool *flag = net ? &wake_net_at_commit : &wake_at_commit;

	if (jobq_shared == NULL)
		return;
	ensure_xact_callback();
	if (!*flag || due < wake_due[lane])
		wake_due[lane] = due;
	*flag = true;
}

/* Wake every worker of this database when the current transaction commits. */
void
jobq_shmem_wake_all_on_commit(void)
{
	if (jobq_shared == NULL)
		return;
	ensure_xact_callback();
	wake_all_at_commit = true;
}

/* Stop the running job job_id when the current transaction commits (jobq.cancel). */
void
jobq_shmem_cancel_on_commit(int64 job_id)
{
	if (jobq_shared == NULL)
		return;
	ensure_xact_callback();
	if (ncancel_at_commit == maxcancel_at_commit)
	{
		maxcancel_at_commit = Max(8, maxcancel_at_commit * 2);
		cancel_at_commit = cancel_at_commit == NULL
							   ? MemoryContextAlloc(TopMemoryContext, sizeof(CancelAtCommit) * maxcancel_at_commit)
							   : repalloc(cancel_at_commit, sizeof(CancelAtCommit) * maxcancel_at_commit);
	}
	cancel_at_commit[ncancel_at_commit].job_id = job_id;
	cancel_at_commit[ncancel_at_commit++].level = GetCurrentTransactionNestLevel();
}

/*
 * Wake the backends of this database waiting in jobq.claim_wait when the
 * current transaction commits (external_wait.c).  A prepared transaction
 * wakes no one: their next look finds its jobs.
 */
void
jobq_shmem_wake_external_on_commit(void)
{
	if (jobq_shared == NULL)
		return;
	ensure_xact_callback();
	wake_external_at_commit = true;
}

/* Have the launcher probe this database when the current transaction commits. */
void
jobq_shmem_request_probe_on_commit(void)
{
	if (jobq_shared == NULL)
		return;
	ensure_xact_callback();
	probe_at_commit = true;
}

/* Whether workers of a database must stay away for now. */
bool
jobq_shmem_paused(Oid dboid)
{
	TimestampTz now = GetCurrentTimestamp();
	bool paused = false;
	int i;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	for (i = 0; i < JOBQ_PAUSES; i++)
		if (jobq_shared->pauses[i].dboid == dboid &&
			jobq_shared->pauses[i].until > now)
			paused = true;
	LWLockRelease(jobq_shared->lock);
	return paused;
}

/*
 * Keep workers away from a database for some seconds and stop those it has.
 * The caller waits for them to be gone.
 */
void
jobq_shmem_pause_database(Oid dboid, int seconds)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz until = TimestampTzPlusMilliseconds(now, seconds * 1000);
	pid_t pids[64];
	int npids = 0;
	int slot = -1;
	int i;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < JOBQ_PAUSES; i++)
	{
		JobqPause *p = &jobq_shared->pauses[i];

		if (p->dboid == dboid)
		{
			slot = i;
			break;
		}
		if (slot < 0 && (p->dboid == InvalidOid || p->until <= now))
			slot = i;
	}
	if (slot < 0)
	{
		/* all in use: take the one that ends first */
		slot = 0;
		for (i = 1; i < JOBQ_PAUSES; i++)
			if (jobq_shared->pauses[i].until < jobq_shared->pauses[slot].until)
				slot = i;
	}
	jobq_shared->pauses[slot].dboid = dboid;
	jobq_shared->pauses[slot].until = until;

	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (w->in_use && w->dboid == dboid)
		{
			w->stop_requested = true;
			if (w->pid != 0 && npids < (int) lengthof(pids))
				pids[npids++] = w->pid;
		}
	}
	LWLockRelease(jobq_shared->lock);

	/*
	 * SIGTERM interrupts a running job at once; the worker returns its jobs
	 * to pending without counting the attempt, as at a fast shutdown.
	 */
	for (i = 0; i < npids; i++)
		kill(pids[i], SIGTERM);
	jobq_shmem_wake_launcher();
}

/* The number of worker slots (jobq.max_workers at start), fixed. */
int
jobq_shmem_nworkers(void)
{
	return jobq_shared->nworkers;
}

/* The boot id of this shared memory, fixed. */
int32
jobq_shmem_boot_id(void)
{
	return jobq_shared->boot_id;
}

/* The number of workers of a database that have a process attached. */
int
jobq_shmem_connected_workers(Oid dboid)
{
	int n = 0;
	int i;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	for (i = 0; i < jobq_shared->nworkers; i++)
		if (jobq_shared->workers[i].in_use &&
			jobq_shared->workers[i].dboid == dboid &&
			jobq_shared->workers[i].pid != 0)
			n++;
	LWLockRelease(jobq_shared->lock);
	return n;
}

/* A copy of every worker slot, palloc'd; returns how many. */
int
jobq_shmem_copy_slots(JobqWorker **copy)
{
	int n = jobq_shared->nworkers;

	*copy = palloc(sizeof(JobqWorker) * n);
	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	memcpy(*copy, jobq_shared->workers, sizeof(JobqWorker) * n);
	LWLockRelease(jobq_shared->lock);
	return n;
}

/*
 * The most workers of a lane one database may hold at once: jobq.workers
 * SQL workers, one net worker.
 */
int
jobq_shmem_lane_max(bool net)
{
	return net ? 1 : jobq_workers;
}

/* A copy of the table of databases, palloc'd; returns how many entries. */
int
jobq_shmem_copy_databases(JobqDatabase **copy)
{
	int n = jobq_shared->ndatabases;

	*copy = palloc(sizeof(JobqDatabase) * n);
	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	memcpy(*copy, JOBQ_DATABASES(), sizeof(JobqDatabase) * n);
	LWLockRelease(jobq_shared->lock);
	return n;
}

/* ---------------------------------------------------------------------
 * The launcher
 * ------------------------------------------------------------------- */

/* on_shmem_exit: the launcher is gone. */
static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	jobq_shared->launcher_pid = 0;
	jobq_shared->launcher_latch = NULL;
	LWLockRelease(jobq_shared->lock);
}

/* Record this process as the launcher, until it exits. */
void
jobq_shmem_launcher_attach(void)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	jobq_shared->launcher_pid = MyProcPid;
	jobq_shared->launcher_latch = MyLatch;
	/* a restarted launcher probes every database again: forget them */
	memset(JOBQ_DATABASES(), 0, sizeof(JobqDatabase) * jobq_shared->ndatabases);
	jobq_shared->pool_waiting = 0;
	LWLockRelease(jobq_shared->lock);
	on_shmem_exit(launcher_detach, (Datum) 0);
}

/*
 * Take the probe requests left by CREATE EXTENSION (up to
 * JOBQ_PROBE_REQUESTS into requests; returns how many) and the flag that
 * asks to probe every database.
 */
int
jobq_shmem_take_probe_requests(Oid *requests, bool *all)
{
	int n;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	n = jobq_shared->nprobe_requests;
	memcpy(requests, jobq_shared->probe_requests, sizeof(Oid) * n);
	jobq_shared->nprobe_requests = 0;
	*all = jobq_shared->rescan_all;
	jobq_shared->rescan_all = false;
	LWLockRelease(jobq_shared->lock);
	return n;
}

/*
 * Free a slot whose worker stopped (stopped: its handle says so;
 * unhandled: no handle covers it, and it is stopped if its worker never
 * attached within stale_ms).  Returns whether it was stopped; *end tells
 * how the worker ended (dboid InvalidOid: the slot was free).
 */
bool
jobq_shmem_collect_slot(int slot, bool stopped, bool unhandled,
						TimestampTz now, int stale_ms, JobqSlotEnd *end)
{
	JobqWorker *w = &jobq_shared->workers[slot];

	memset(end, 0, sizeof(*end));
	end->dboid = InvalidOid;
	end->reason = JOBQ_EXIT_UNKNOWN;
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	/* a slot no handle of ours covers, whose worker never attached */
	if (unhandled && w->in_use && w->pid == 0 &&
		TimestampDifferenceExceeds(w->started_at, now, stale_ms))
		stopped = true;
	if (stopped && w->in_use)
	{
		uint32 generation = w->generation;

		end->dboid = w->dboid;
		end->net = w->net;
		end->has_jobq = w->has_jobq;
		end->reason = w->exit_reason;
		end->started_at = w->started_at;
		memset(w, 0, sizeof(JobqWorker));
		w->generation = generation;
	}
	LWLockRelease(jobq_shared->lock);
	return stopped;
}

/*
 * Allocate a free slot for a worker of a database and lane, with the
 * lowest worker number not taken; returns the slot or -1.
 */
int
jobq_shmem_allocate_slot(Oid dboid, bool net, int *number, uint32 *generation)
{
	int slot = -1;
	bool taken[1024];
	int i;

	*number = 0;
	*generation = 0;
	memset(taken, 0, sizeof(taken));
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (!w->in_use)
		{
			if (slot < 0)
				slot = i;
		}
		else if (w->dboid == dboid && w->net == net && !w->leaving &&
				 w->number < (int) lengthof(taken))
			taken[w->number] = true;
	}
	if (slot >= 0)
	{
		JobqWorker *w = &jobq_shared->workers[slot];

		while (*number < (int) lengthof(taken) - 1 && taken[*number])
			(*number)++;
		*generation = w->generation + 1;
		memset(w, 0, sizeof(JobqWorker));
		w->in_use = true;
		w->generation = *generation;
		w->dboid = dboid;
		w->net = net;
		w->number = *number;
		w->state = JOBQ_WORKER_STARTING;
		w->started_at = GetCurrentTimestamp();
		w->state_since = w->started_at;
	}
	LWLockRelease(jobq_shared->lock);
	return slot;
}

/* Give back a slot whose worker could not be registered. */
void
jobq_shmem_free_slot(int slot)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	jobq_shared->workers[slot].in_use = false;
	jobq_shared->workers[slot].dboid = InvalidOid;
	LWLockRelease(jobq_shared->lock);
}

/* Ask a database's workers of a lane numbered from "keep" on to stop. */
void
jobq_shmem_trim_workers(Oid dboid, bool net, int keep)
{
	Latch *latches[64];
	int nlatches = 0;
	int i;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (w->in_use && w->dboid == dboid && w->net == net && w->number >= keep &&
			!w->stop_requested)
		{
			w->stop_requested = true;
			if (w->latch && nlatches < (int) lengthof(latches))
				latches[nlatches++] = w->latch;
		}
	}
	LWLockRelease(jobq_shared->lock);
	for (i = 0; i < nlatches; i++)
		SetLatch(latches[i]);
}

/*
 * How many worker slots a database holds, how many workers of each lane
 * are there and not leaving (live, JOBQ_LANES long), and whether one of
 * them found jobq (*has_jobq).
 */
int
jobq_shmem_count_workers(Oid dboid, int *live, bool *has_jobq)
{
	int count = 0;
	int i;

	*has_jobq = false;
	live[JOBQ_LANE_SQL] = 0;
	live[JOBQ_LANE_NET] = 0;
	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (w->in_use && w->dboid == dboid)
		{
			count++;
			if (!w->leaving)
				live[JOBQ_LANE(w->net)]++;
			*has_jobq |= w->has_jobq;
		}
	}
	LWLockRelease(jobq_shared->lock);
	return count;
}

/* The number of entries of the table of databases (jobq.max_databases at start), fixed. */
int
jobq_shmem_ndatabases(void)
{
	return jobq_shared->ndatabases;
}

/* ---------------------------------------------------------------------
 * The launcher: the table of databases and the pool
 * ------------------------------------------------------------------- */

/*
 * Give a database an entry, nothing known due yet, or find the one it has;
 * returns its index in the table (fixed until jobq_shmem_db_forget), -1 if
 * the table is full (the launcher then polls it, see launcher.c).
 */
int
jobq_shmem_db_register(Oid dboid)
{
	JobqDatabase *dbs = JOBQ_DATABASES();
	JobqDatabase *db;
	int i;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	db = jobq_shmem_db_entry(dboid);
	for (i = 0; db == NULL && i < jobq_shared->ndatabases; i++)
		if (dbs[i].dboid == InvalidOid)
		{
			db = &dbs[i];
			memset(db, 0, sizeof(JobqDatabase));
			db->dboid = dboid;
			db->state = JOBQ_DB_UNKNOWN;
			db->due[JOBQ_LANE_SQL] = DT_NOEND;
			db->due[JOBQ_LANE_NET] = DT_NOEND;
		}
	LWLockRelease(jobq_shared->lock);
	return db == NULL ? -1 : (int) (db - dbs);
}

/* The database is gone: free its entry. */
void
jobq_shmem_db_forget(Oid dboid)
{
	JobqDatabase *db;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	db = jobq_shmem_db_entry(dboid);
	if (db != NULL)
		db->dboid = InvalidOid;
	LWLockRelease(jobq_shared->lock);
}

void
jobq_shmem_db_set_state(Oid dboid, JobqDbState state)
{
	JobqDatabase *db;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	db = jobq_shmem_db_entry(dboid);
	if (db != NULL)
		db->state = state;
	LWLockRelease(jobq_shared->lock);
}

/*
 * Work of a database's lane is due at "due": if no worker of the lane is
 * there to find it, the entry learns it and the launcher is woken (a worker
 * died or was stopped with jobs left, or found work of the other lane).
 */
void
jobq_shmem_db_due(Oid dboid, int lane, TimestampTz due)
{
	JobqDatabase *db;
	Latch *latch = NULL;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	db = jobq_shmem_db_entry(dboid);
	if (db != NULL && due < db->due[lane] &&
		jobq_shmem_lane_live(dboid, lane == JOBQ_LANE_NET, NULL) == 0)
	{
		db->due[lane] = due;
		latch = jobq_shared->launcher_latch;
	}
	LWLockRelease(jobq_shared->lock);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * The launcher started a worker for a database's lane: the worker looks
 * for everything due, so nothing is due without one any more.
 */
void
jobq_shmem_db_served(Oid dboid, int lane, TimestampTz now)
{
	JobqDatabase *db;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	db = jobq_shmem_db_entry(dboid);
	if (db != NULL)
	{
		db->due[lane] = DT_NOEND;
		db->more[lane] = false;
		db->workers_started++;
		db->served_at = now;
	}
	LWLockRelease(jobq_shared->lock);
}

/* Whether work came in a database without an entry since the last call. */
bool
jobq_shmem_take_overflow(void)
{
	bool due;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	due = jobq_shared->overflow_due;
	jobq_shared->overflow_due = false;
	LWLockRelease(jobq_shared->lock);
	return due;
}

/*
 * How many lanes have due work and no worker for want of a slot: workers
 * that have served their database for jobq.worker_yield_after, or are
 * idle, then leave (worker.c).
 */
void
jobq_shmem_set_pool_waiting(int waiting)
{
	Latch *latches[64];
	int nlatches = 0;
	int i;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (waiting > 0 && jobq_shared->pool_waiting == 0)
	{
		/* idle workers leave at once: wake them */
		for (i = 0; i < jobq_shared->nworkers; i++)
		{
			JobqWorker *w = &jobq_shared->workers[i];

			if (w->in_use && w->pid != 0 && (w->sleeping || w->net) &&
				nlatches < (int) lengthof(latches))
				latches[nlatches++] = w->latch;
		}
	}
	jobq_shared->pool_waiting = waiting;
	LWLockRelease(jobq_shared->lock);
	for (i = 0; i < nlatches; i++)
		SetLatch(latches[i]);
}
