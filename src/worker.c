/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  A job worker's entry point, and the SQL worker's main loop: claim a
 *	  batch of jobs in its database, run it (batch.c), sleep when there is
 *	  nothing to do; worker 0 also prunes and vacuums (maint.c).  The net
 *	  worker starts here too and goes on in net.c.
 *
 * The claim of a round: mark up to jobq.batch_size ready jobs running and
 * count their attempt; commit without waiting for the WAL flush
 * (synchronous_commit off for this transaction; see
 * jobq_shmem_durable_claims): the run transaction's commit flushes the
 * claim too.  For a minute after a crash restart, and always with
 * jobq.durable_claims, the claim is durable before a handler runs.  Fast jobs make the next claim grow back to
 * jobq.batch_size; a batch whose jobs were given back after its 100 ms
 * makes it smaller.
 *
 * A worker that finds nothing due for jobq.worker_idle_timeout, or serves
 * its database too long while another waits for a worker, leaves the pool
 * (bgworker.c); before it leaves idle it prunes and gives the table's
 * empty tail back (maint.c), as no worker may come for a while.
 *
 * An unexpected error in a round: the jobs the worker held are reaped as
 * orphans, the attempt counted, and the loop goes on after a second.
 *
 * Memory: worker_cxt lives as long as the process; batch_cxt holds one
 * round's jobs and results and is reset after each round.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "bgworker.h"
#include "guc.h"
#include "maint.h"
#include "net.h"
#include "queue.h"
#include "queue_limits.h"
#include "shmem.h"
#include "worker.h"

static MemoryContext worker_cxt = NULL;
static MemoryContext batch_cxt = NULL;
static int claim_size = INT_MAX; /* adapts to how long jobs take */

/*
 * One round: claim and run a batch.  Returns 0 when it ran jobs (look
 * again at once), else how long to sleep in milliseconds; *idle tells
 * whether no job was ready (none claimed, none due but locked).
 */
static long
worker_round(uint64 *seq, bool *idle, TimestampTz *next_due)
{
	JobqJob *jobs;
	int n;
	TimestampTz due = DT_NOEND;
	TimestampTz take_over_at;
	bool take_over_due;
	long sleep_ms;

	take_over_due = jobq_shmem_round_begin(seq);
	if (take_over_due)
		jobq_batch_take_over();

	jobq_shmem_set_state(JOBQ_WORKER_CLAIMING, 0);
	jobq_bgw_holding_jobs(true);
	jobq_bgw_begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	jobq_bgw_exit_unless_installed();
	claim_size = Min(claim_size, jobq_batch_size);
	n = jobq_bgw_claim(false, claim_size, &jobs);
	if (n == 0)
		due = jobq_limits_due(jobq_queue_next_due(false));
	else if (!jobq_durable_claims && !jobq_shmem_durable_claims())
		(void) set_config_option("synchronous_commit", "off", PGC_SUSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	jobq_bgw_commit_xact();
	MemoryContextSwitchTo(batch_cxt);

	*idle = false;
	if (n > 0)
	{
		int ran;

		/*
		 * There may be more (or a limited queue's jobs left for others):
		 * let another worker help.  Jobs that wait behind others: another
		 * worker watches for the batch's time being up.
		 */
		jobq_batch_start(jobs, n);
		if (n == claim_size || n > 1 || jobq_limits_left_share())
			jobq_shmem_wake_database(jobq_bgw_slot()->dboid, false, 1,
									 GetCurrentTimestamp());
		ran = jobq_batch_run(jobs, n);
		jobq_bgw_holding_jobs(false);
		MemoryContextReset(batch_cxt);

		/*
		 * Slow jobs: claim about as many as run in BATCH_TIME_MS next time;
		 * fast ones: grow back towards jobq.batch_size.
		 */
		if (ran < n)
			claim_size = Max(1, ran);
		else
			claim_size = Min(jobq_batch_size, Max(claim_size, 1) * 2);
		return 0;
	}
	jobq_bgw_holding_jobs(false);
	MemoryContextReset(batch_cxt);

	sleep_ms = jobq_poll_interval;
	*idle = true;
	*next_due = due;
	if (due != DT_NOEND)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (due <= now)
		{
			sleep_ms = 10; /* due but locked by someone: look again soon */
			*idle = false;
		}
		else
			sleep_ms = Min(sleep_ms, TimestampDifferenceMilliseconds(now, due));
	}

	/* wake when a peer's batch may be taken over */
	take_over_at = jobq_shmem_next_take_over();
	if (take_over_at != DT_NOEND)
	{
		sleep_ms = Min(sleep_ms, TimestampDifferenceMilliseconds(GetCurrentTimestamp(), take_over_at) + 1);
		*idle = false;
	}
	return sleep_ms;
}

/* Sleep unless a wake-up came since *seq was read. */
static void
worker_sleep(uint64 seq, long sleep_ms)
{
	if (!jobq_shmem_sleep_begin(seq))
		return;

	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(true);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 sleep_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);

	jobq_shmem_sleep_end();
}

/*
 * After an unexpected error in a round: give the jobs back (attempt
 * counted), or leave so that another worker reaps them.
 */
static void
recover_from_error(void)
{
	MemoryContextSwitchTo(worker_cxt);
	EmitErrorReport();
	FlushErrorState();
	AbortOutOfAnyTransaction();
	jobq_batch_forget(); /* no peer takes over what is reaped below */
	MemoryContextReset(batch_cxt);

	jobq_bgw_begin_xact();
	jobq_bgw_exit_unless_installed();
	jobq_bgw_commit_xact();
	if (jobq_bgw_is_holding_jobs())
	{
		/* treated as orphans: the attempt stays counted */
		jobq_bgw_reap_orphans(true);
		jobq_bgw_holding_jobs(false);
	}
}

void
jobq_worker_main(Datum main_arg)
{
	jobq_bgw_connect(main_arg);

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "jobq worker",
									   ALLOCSET_DEFAULT_SIZES);
	batch_cxt = AllocSetContextCreate(worker_cxt, "jobq batch",
									  ALLOCSET_DEFAULT_SIZES);
	jobq_batch_init(batch_cxt);
	MemoryContextSwitchTo(worker_cxt);

	jobq_bgw_serve();
	MemoryContextSwitchTo(worker_cxt);

	if (jobq_bgw_slot()->net)
	{
		SetConfigOption("application_name", "jobq net worker", PGC_USERSET, PGC_S_SESSION);
		jobq_net_main(); /* does not return */
	}

	for (;;)
	{
		uint64 seq = 0;
		long sleep_ms = 0;
		long vacuum_ms;
		bool idle = false;
		TimestampTz next_due = DT_NOEND;
		JobqWorkerExit leave;

		jobq_bgw_check_stop();

		PG_TRY();
		{
			jobq_maint_prune();
			vacuum_ms = jobq_maint_vacuum();
			MemoryContextSwitchTo(worker_cxt);
			sleep_ms = worker_round(&seq, &idle, &next_due);
			leave = jobq_bgw_should_leave(idle, &sleep_ms);
			if (leave != JOBQ_EXIT_UNKNOWN)
			{
				if (leave == JOBQ_EXIT_IDLE)
					jobq_maint_before_leaving();
				jobq_bgw_leave(leave, seq, next_due); /* returns if woken */
				sleep_ms = 0;
			}
			jobq_maint_truncate(idle, &sleep_ms);
			if (vacuum_ms >= 0 && sleep_ms > vacuum_ms)
				sleep_ms = vacuum_ms;
		}
		PG_CATCH();
		{
			recover_from_error();
			sleep_ms = 1000;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(worker_cxt);

		if (sleep_ms > 0)
			worker_sleep(seq, sleep_ms);
	}
}
