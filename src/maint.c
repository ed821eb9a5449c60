/*-------------------------------------------------------------------------
 *
 * maint.c
 *	  Worker 0 of each database keeps jobq's tables small: it prunes
 *	  finished jobs past their retention, vacuums jobq._queue as jobs
 *	  finish, and gives its empty tail back once the queue is idle.  An
 *	  idle SQL worker about to leave the pool does the pruning and the
 *	  giving back whatever its number.
 *
 * Each step runs in transactions of its own between two rounds of the SQL
 * worker's loop (worker.c), never while the worker holds jobs.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "guc.h"
#include "maint.h"
#include "queue.h"
#include "shmem.h"

static TimestampTz last_prune = 0;
static TimestampTz last_vacuum = 0;
static uint64 finished_at_vacuum = 0;
static bool truncate_due = false;	  /* vacuums ran, the table's tail was kept */
static TimestampTz idle_since = 0;	  /* worker 0: idle since, or 0 */
static uint64 finished_when_idle = 0; /* jobs finished in the db then */

/* Delete every finished job past its retention, 10,000 per transaction. */
static void
prune_all(void)
{
	int64 n;

	do
	{
		jobq_bgw_begin_xact();
		n = jobq_queue_prune();
		jobq_bgw_commit_xact();
		CHECK_FOR_INTERRUPTS();
	} while (n >= 10000);
}

/* Worker 0 of each database deletes finished jobs past their retention. */
void
jobq_maint_prune(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (jobq_bgw_slot()->number != 0 ||
		!TimestampDifferenceExceeds(last_prune, now, jobq_prune_interval * 1000))
		return;
	last_prune = now;
	prune_all();
}

/*
 * VACUUM jobq._queue as a top-level command would: it commits the
 * transaction it is given, runs its own, and leaves a new one open for us
 * to commit.  With truncate, the empty pages at the end of the table go back
 * to the file system; without, the table's vacuum_truncate = false holds.
 */
static void
vacuum_queue(bool truncate)
{
	VacuumStmt *stmt;

	jobq_shmem_set_state(JOBQ_WORKER_VACUUMING, 0);
	pgstat_report_activity(STATE_RUNNING,
						   truncate ? "VACUUM (TRUNCATE) jobq._queue" : "VACUUM jobq._queue");
	jobq_bgw_begin_xact();
	stmt = makeNode(VacuumStmt);
	stmt->options = truncate ? list_make1(makeDefElem("truncate", NULL, -1)) : NIL;
	stmt->is_vacuumcmd = true;
	stmt->rels = list_make1(makeVacuumRelation(makeRangeVar("jobq", "_queue", -1),
											   InvalidOid, NIL));
	PushActiveSnapshot(GetTransactionSnapshot());
	ExecVacuum(make_parsestate(NULL), stmt, true);
	jobq_bgw_commit_xact();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Worker 0 of each database vacuums jobq._queue once jobq.vacuum_threshold
 * jobs have finished since its last vacuum, at most once a second.  Each
 * job leaves two dead rows there (its claim's old version and, when it
 * finishes, the row itself); autovacuum looks at most once a
 * autovacuum_naptime, long enough for a busy queue to grow by millions of
 * dead rows that every claim then steps over.  Vacuuming a table that holds
 * little but the backlog takes milliseconds.
 *
 * These vacuums leave the empty pages at the end of the table alone (see
 * jobq_maint_truncate).  Returns how long until a vacuum that waits only for
 * that second is due (the worker sleeps no longer: the last jobs of a burst
 * leave their dead rows too), else -1.
 */
long
jobq_maint_vacuum(void)
{
	TimestampTz now;
	TimestampTz due;
	uint64 finished;

	if (jobq_bgw_slot()->number != 0 || jobq_vacuum_threshold == 0)
		return -1;
	finished = jobq_shmem_finished_in_database(jobq_bgw_slot()->dboid);
	if (finished < finished_at_vacuum)
		finished_at_vacuum = 0; /* a worker restarted: its count did too */
	if (finished - finished_at_vacuum < (uint64) jobq_vacuum_threshold)
		return -1;
	now = GetCurrentTimestamp();
	due = TimestampTzPlusMilliseconds(last_vacuum, 1000);
	if (now < due)
		return TimestampDifferenceMilliseconds(now, due); /* not yet */
	last_vacuum = now;
	finished_at_vacuum = finished;

	vacuum_queue(false);
	truncate_due = true;
	return -1;
}

/*
 * Once the queue has been idle for a second after a busy spell (no job
 * ready, none finished in the database meanwhile), worker 0 gives the
 * empty pages at the end of jobq._queue back with one more vacuum.  Not
 * before: truncating takes an ACCESS EXCLUSIVE lock, which a vacuum under
 * load tries for over seconds (with the worker doing nothing else) and,
 * when it gets it, makes every claim and enqueue wait, again and again;
 * meanwhile the table grows, as the space the vacuums free is not reused
 * while they last.  jobq._queue is created with vacuum_truncate = false so
 * that autovacuum leaves the tail alone too.  idle: the worker's last claim
 * found no job ready.  *sleep_ms is cut short to look again when the
 * second is up.
 */
void
jobq_maint_truncate(bool idle, long *sleep_ms)
{
	TimestampTz now;
	TimestampTz due;
	uint64 finished;

	if (!idle)
		idle_since = 0;
	if (!idle || jobq_bgw_slot()->number != 0 || !truncate_due || jobq_vacuum_threshold == 0)
		return;
	now = GetCurrentTimestamp();
	finished = jobq_shmem_finished_in_database(jobq_bgw_slot()->dboid);
	if (idle_since == 0 || finished != finished_when_idle)
	{
		idle_since = now;
		finished_when_idle = finished;
	}
	due = TimestampTzPlusMilliseconds(idle_since, 1000);
	if (now < due)
	{
		*sleep_ms = Min(*sleep_ms, TimestampDifferenceMilliseconds(now, due));
		return;
	}
	truncate_due = false;
	idle_since = 0;
	vacuum_queue(true);
}

/*
 * Before an idle SQL worker leaves the pool: prune what is past its
 * retention and give back the empty tail of jobq._queue, whatever the
 * worker's number, as no worker may come to the database for a while.
 */
void
jobq_maint_before_leaving(void)
{
	last_prune = GetCurrentTimestamp();
	prune_all();
	if (truncate_due && jobq_vacuum_threshold > 0)
	{
		truncate_due = false;
		vacuum_queue(true);
	}
}
