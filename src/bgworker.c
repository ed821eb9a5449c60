/*-------------------------------------------------------------------------
 *
 * bgworker.c
 *	  What a SQL worker (worker.c) and the net worker (net.c) share: the
 *	  attach to the slot the launcher gave, the connection, the check that
 *	  jobq is still installed, transactions, stop checks, claims counted for
 *	  jobq.workers, and giving jobs back or reaping them.
 *
 * Exit: on SIGTERM (fast shutdown, pg_terminate_backend, a database being
 * dropped) a before_shmem_exit callback gives back the jobs the worker
 * holds, attempt not counted, but for the job that was running, whose
 * attempt counts (it may have sent the signal itself).  On any other exit
 * the jobs stay running under a dead token and the next worker to start
 * reaps them, attempt counted.
 *
 * Leaving the pool: a worker that finds nothing due for
 * jobq.worker_idle_timeout leaves, at once if another database waits for a
 * slot; a busy one that has served its database for
 * jobq.worker_yield_after while another waits leaves after its batch
 * (jobq_bgw_should_leave).  Leaving, it tells the database's entry when
 * its lane next has work, and when finished jobs are next due for pruning
 * (jobq_bgw_leave); the launcher starts a worker then.
 *
 * Transactions: jobq_bgw_begin_xact starts one whose now() is the current
 * time; jobq_bgw_commit_xact commits it and passes on its table
 * statistics.  Both leave CurrentMemoryContext where the transaction
 * commands put it: callers switch back to their own context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "executor/instrument.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "claim.h"
#include "guc.h"
#include "queue.h"
#include "shmem.h"

static volatile sig_atomic_t got_sigterm = false;
static volatile bool holding_jobs = false;

static JobqSlotInfo slot_info;
static TimestampTz served_since = 0;	  /* this worker's start */
static TimestampTz idle_since = 0;		  /* nothing due since, or 0 */
static const JobqJob *running_job = NULL; /* the job running now, or NULL */

/* This worker's slot: token, database, number, lane. */
const JobqSlotInfo *
jobq_bgw_slot(void)
{
	return &slot_info;
}

/*
 * Start a transaction whose now() is the current time: nothing else sets
 * the statement start time in a background worker.
 */
void
jobq_bgw_begin_xact(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
}

/*
 * Commit, and pass on the table statistics the transaction gathered (at
 * most about once a second): without them autovacuum never learns of the
 * dead rows claims and completions leave in jobq._queue.
 */
void
jobq_bgw_commit_xact(void)
{
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

/* SIGTERM: note it, then die() as any backend would. */
static void
worker_sigterm(SIGNAL_ARGS)
{
	got_sigterm = true;
	die(postgres_signal_arg);
}

/*
 * Claim up to batch_size jobs of a lane for this worker (see
 * jobq_queue_claim), counting the call, the jobs, its time and the shared
 * buffers it touched in jobq.workers.
 */
int
jobq_bgw_claim(bool net, int batch_size, JobqJob **jobs)
{
	instr_time start;
	instr_time elapsed;
	int64 buffers = pgBufferUsage.shared_blks_hit + pgBufferUsage.shared_blks_read;
	int n;

	INSTR_TIME_SET_CURRENT(start);
	n = jobq_queue_claim(slot_info.token, net, batch_size, jobs);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	buffers = pgBufferUsage.shared_blks_hit + pgBufferUsage.shared_blks_read - buffers;

	jobq_shmem_count_claim(n, INSTR_TIME_GET_MILLISEC(elapsed), buffers);
	return n;
}

/*
 * Give back every job this worker holds, attempt not counted, but for the
 * job that was running: the worker was terminated while it ran, perhaps by
 * the job itself (pg_terminate_backend(pg_backend_pid())), so its attempt
 * counts and it fails as any job does, retried after the backoff delay or
 * dead once out of attempts.  The jobs its transaction rolled back and
 * those not started are not charged.
 */
static void
release_all(void)
{
	AbortOutOfAnyTransaction();
	jobq_bgw_begin_xact();
	if (running_job != NULL)
	{
		JobqOutcome out;

		memset(&out, 0, sizeof(out));
		out.message = "the worker was terminated while the job was running";
		out.sqlstate = "57P01";
		jobq_queue_fail(running_job, &out, false, 0);
		running_job = NULL;
	}
	jobq_queue_release_uncounted(slot_info.token, NULL, 0);
	CommitTransactionCommand();
	holding_jobs = false;
}

/*
 * Leave the process, telling the launcher why.  When asked to stop, jobs
 * still held (the net worker's requests in flight) go back to pending,
 * attempt not counted; when jobq is gone, so are they.
 */
void
jobq_bgw_exit(JobqWorkerExit reason)
{
	if (reason == JOBQ_EXIT_ASKED && holding_jobs)
		release_all();
	jobq_shmem_set_exit_reason(reason);
	proc_exit(0);
}

/*
 * Leave if jobq is no longer installed in this database (DROP EXTENSION).
 * The caller is in a transaction.
 */
void
jobq_bgw_exit_unless_installed(void)
{
	/*
	 * jobq._queue is a member of the extension: it exists exactly when jobq
	 * is installed.  Two syscache lookups, where get_extension_oid() would
	 * scan pg_extension (no syscache covers it) at each round.
	 */
	if (!OidIsValid(get_relname_relid("_queue", get_namespace_oid("jobq", true))))
		jobq_bgw_exit(JOBQ_EXIT_ABSENT);
}

/*
 * before_shmem_exit: on SIGTERM give the claimed jobs back without
 * counting the attempt (see the file header).
 */
static void
worker_release_at_exit(int code, Datum arg)
{
	if (!got_sigterm || !holding_jobs)
		return;
	release_all();
}

/*
 * Attach to the slot the launcher gave (main_arg, the generation in
 * bgw_extra), or leave if it has given it away or the database is paused;
 * then connect to the slot's database.
 */
void
jobq_bgw_connect(Datum main_arg)
{
	int slot = DatumGetInt32(main_arg);
	uint32 generation;

	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();

	if (!jobq_shmem_attach_worker(slot, generation, &slot_info))
		proc_exit(0);
	served_since = GetCurrentTimestamp();
	if (jobq_shmem_paused(slot_info.dboid))
		jobq_bgw_exit(JOBQ_EXIT_ASKED);

	BackgroundWorkerInitializeConnectionByOid(slot_info.dboid, InvalidOid, 0);
	SetConfigOption("application_name", "jobq worker", PGC_USERSET, PGC_S_SESSION);
}

/*
 * Once connected: leave unless jobq is installed; tell the launcher it is;
 * arrange for the jobs to be given back at SIGTERM; reap the jobs of
 * workers that ended; and tell the database's entry when the other lane
 * has work, in case no worker of that lane is there to find it (after a
 * server start the launcher starts one SQL worker to look).  The caller
 * switches back to its memory context.
 */
void
jobq_bgw_serve(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz other_due;

	jobq_bgw_begin_xact();
	jobq_bgw_exit_unless_installed();
	jobq_bgw_commit_xact();
	MemoryContextSwitchTo(cxt);

	jobq_shmem_found_jobq();
	jobq_shmem_wake_launcher(); /* it learns that jobq is installed here */

	before_shmem_exit(worker_release_at_exit, (Datum) 0);

	jobq_bgw_reap_orphans(false);

	jobq_bgw_begin_xact();
	other_due = jobq_queue_next_due(!slot_info.net);
	jobq_bgw_commit_xact();
	MemoryContextSwitchTo(cxt);
	if (other_due != DT_NOEND)
		jobq_shmem_db_due(slot_info.dboid, JOBQ_LANE(!slot_info.net), other_due);
}

/*
 * Whether to leave the pool now, and why (JOBQ_EXIT_UNKNOWN: stay).  idle:
 * the worker found nothing due; *sleep_ms, if given, is cut to when the
 * idle timeout ends.
 */
JobqWorkerExit
jobq_bgw_should_leave(bool idle, long *sleep_ms)
{
	TimestampTz now = GetCurrentTimestamp();
	bool waiting = jobq_shmem_pool_waiting() > 0;

	if (!idle)
	{
		idle_since = 0;
		if (waiting && TimestampDifferenceExceeds(served_since, now, jobq_worker_yield_after))
			return JOBQ_EXIT_YIELD;
		return JOBQ_EXIT_UNKNOWN;
	}
	if (idle_since == 0)
		idle_since = now;
	if (waiting || TimestampDifferenceExceeds(idle_since, now, jobq_worker_idle_timeout))
		return JOBQ_EXIT_IDLE;
	if (sleep_ms != NULL)
	{
		TimestampTz until = TimestampTzPlusMilliseconds(idle_since, jobq_worker_idle_timeout);

		*sleep_ms = Min(*sleep_ms, TimestampDifferenceMilliseconds(now, until) + 1);
	}
	return JOBQ_EXIT_UNKNOWN;
}

/*
 * Leave the pool (see jobq_shmem_leave), telling the database's entry when
 * this worker's lane next has work (due; after a yield, now) and when
 * finished jobs are due for pruning.  Returns only if a wake-up came since
 * seq was read: the worker must look again.
 */
void
jobq_bgw_leave(JobqWorkerExit reason, uint64 seq, TimestampTz due)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz prune_due;
	bool left;

	jobq_bgw_begin_xact();
	prune_due = jobq_queue_next_prune();
	jobq_bgw_commit_xact();
	MemoryContextSwitchTo(cxt);

	if (reason == JOBQ_EXIT_YIELD)
		due = GetCurrentTimestamp();
	if (slot_info.net)
		left = jobq_shmem_leave(seq, reason, due, prune_due);
	else
		left = jobq_shmem_leave(seq, reason, Min(due, prune_due), DT_NOEND);
	if (!left)
		return;
	ereport(DEBUG1,
			(errmsg("jobq worker leaves the pool: %s",
					reason == JOBQ_EXIT_YIELD ? "another database waits for a worker"
											  : "no job is due")));
	proc_exit(0);
}

/*
 * Return to pending the jobs of workers that no longer exist, e.g. after a
 * crash or an immediate restart; with self_too, this worker's jobs as well.
 * Runs in its own transaction.
 */
void
jobq_bgw_reap_orphans(bool self_too)
{
	int64 *live;
	int nlive;
	uint32 max_counter;
	int64 n;

	live = palloc(sizeof(int64) * jobq_shmem_nworkers());
	nlive = jobq_shmem_live_tokens(self_too, live, &max_counter);

	jobq_bgw_begin_xact();
	n = jobq_queue_reap(live, nlive, jobq_shmem_boot_id(), max_counter);
	jobq_bgw_commit_xact();
	if (n > 0)
		ereport(LOG,
				(errmsg("jobq returned " INT64_FORMAT " jobs left running by workers that ended", n)));
	pfree(live);
}

/* Reload the configuration on SIGHUP; leave when asked to stop. */
void
jobq_bgw_check_stop(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
	if (jobq_shmem_stop_requested())
		jobq_bgw_exit(JOBQ_EXIT_ASKED);
}

/* Whether SIGTERM must give back this worker's claimed jobs. */
void
jobq_bgw_holding_jobs(bool holding)
{
	holding_jobs = holding;
}

bool
jobq_bgw_is_holding_jobs(void)
{
	return holding_jobs;
}

/* The job running now (NULL: none), whose attempt counts at SIGTERM. */
void
jobq_bgw_running_job(const JobqJob *job)
{
	running_job = job;
}
