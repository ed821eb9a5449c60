/*-------------------------------------------------------------------------
 *
 * shmem_worker.c
 *	  A worker's own slot in shared memory: attach and detach, state,
 *	  counters, the wake-up check before sleeping, and the batch a peer may
 *	  take over (see batch.c).
 *
 * Locking as in shmem.c: every field under jobq_shared->lock, each
 * function one short critical section; latches set after releasing it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "shmem_int.h"

/* this process's worker slot (jobq_shmem_attach_worker), or NULL */
static JobqWorker *me = NULL;

/* ---------------------------------------------------------------------
 * A worker's own slot
 * ------------------------------------------------------------------- */

/* on_shmem_exit: the slot no longer has a process behind it. */
static void
worker_detach(int code, Datum arg)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->pid = 0;
	me->latch = NULL;
	me->token = 0;
	me->sleeping = false;
	me->state = JOBQ_WORKER_FREE;
	me->job_id = 0;
	LWLockRelease(jobq_shared->lock);
}

/*
 * Claim slot "slot" for this process, with a new token, unless the
 * launcher has given it away (another generation, or taken): then false.
 * The slot is released at exit.
 */
bool
jobq_shmem_attach_worker(int slot, uint32 generation, JobqSlotInfo *info)
{
	TimestampTz now = GetCurrentTimestamp();

	if (slot < 0 || slot >= jobq_shared->nworkers)
		return false;
	me = &jobq_shared->workers[slot];

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (!me->in_use || me->generation != generation || me->pid != 0)
	{
		LWLockRelease(jobq_shared->lock);
		me = NULL;
		return false;
	}
	me->pid = MyProcPid;
	me->latch = MyLatch;
	me->token = JOBQ_TOKEN(jobq_shared->boot_id, jobq_shared->next_token++);
	me->state = JOBQ_WORKER_STARTING;
	me->state_since = now;
	me->started_at = now;
	info->token = me->token;
	info->dboid = me->dboid;
	info->number = me->number;
	info->net = me->net;
	LWLockRelease(jobq_shared->lock);

	on_shmem_exit(worker_detach, (Datum) 0);
	return true;
}

/* The worker found the extension in its database (the launcher reads it). */
void
jobq_shmem_found_jobq(void)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->has_jobq = true;
	LWLockRelease(jobq_shared->lock);
}

void
jobq_shmem_set_exit_reason(JobqWorkerExit reason)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->exit_reason = reason;
	LWLockRelease(jobq_shared->lock);
}

void
jobq_shmem_set_state(JobqWorkerState state, int64 job_id)
{
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->state = state;
	me->job_id = job_id;
	me->state_since = now;
	LWLockRelease(jobq_shared->lock);
}

/*
 * The progress the running job reports (jobq.set_progress), for readers of
 * jobq.jobs; message may be NULL.
 */
void
jobq_shmem_set_progress(int64 job_id, Oid owner, bool progress_null, float4 progress,
						const char *message)
{
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->progress_job = job_id;
	me->progress_owner = owner;
	me->progress_null = progress_null;
	me->progress = progress;
	strlcpy(me->progress_message, message ? message : "", sizeof(me->progress_message));
	me->progress_at = now;
	LWLockRelease(jobq_shared->lock);
}

/* Whether the launcher or the utility hook asked this worker to stop. */
bool
jobq_shmem_stop_requested(void)
{
	bool stop;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	stop = me->stop_requested;
	LWLockRelease(jobq_shared->lock);
	return stop;
}

/*
 * How many lanes of other databases have due work and no worker for want of
 * a slot (the launcher counts them).
 */
int
jobq_shmem_pool_waiting(void)
{
	int waiting;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	waiting = jobq_shared->pool_waiting;
	LWLockRelease(jobq_shared->lock);
	return waiting;
}

/*
 * Leave the pool: from now on a wake-up for this database's lane goes to
 * the launcher (see shmem.c).  An idle worker leaves only if no wake-up
 * came since seq was read (else false: it must look again).  If it is the
 * last worker of its lane, the database's entry learns when the lane next
 * has work (due), and with sql_due when the SQL lane has (pruning, for the
 * net worker); DT_NOEND: nothing known.
 */
bool
jobq_shmem_leave(uint64 seq, JobqWorkerExit reason, TimestampTz due, TimestampTz sql_due)
{
	int lane = JOBQ_LANE(me->net);
	JobqDatabase *db;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (reason == JOBQ_EXIT_IDLE && (me->wake_seq != seq || me->stop_requested))
	{
		LWLockRelease(jobq_shared->lock);
		return false;
	}
	me->leaving = true;
	me->exit_reason = reason;
	db = jobq_shmem_db_entry(me->dboid);
	if (db != NULL)
	{
		if (jobq_shmem_lane_live(me->dboid, me->net, me) == 0)
		{
			db->due[lane] = Min(db->due[lane], due);
			db->more[lane] = false;
		}
		if (sql_due != DT_NOEND && jobq_shmem_lane_live(me->dboid, false, me) == 0)
			db->due[JOBQ_LANE_SQL] = Min(db->due[JOBQ_LANE_SQL], sql_due);
	}
	LWLockRelease(jobq_shared->lock);
	return true;
}

uint64
jobq_shmem_wake_seq(void)
{
	uint64 seq;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	seq = me->wake_seq;
	LWLockRelease(jobq_shared->lock);
	return seq;
}

/*
 * Mark this worker sleeping (idle), unless a wake-up came since seq was
 * read or it was asked to stop: then false, and it must not sleep.
 */
bool
jobq_shmem_sleep_begin(uint64 seq)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (me->wake_seq != seq || me->stop_requested)
	{
		LWLockRelease(jobq_shared->lock);
		return false;
	}
	me->sleeping = true;
	me->state = JOBQ_WORKER_IDLE;
	me->job_id = 0;
	me->state_since = GetCurrentTimestamp();
	LWLockRelease(jobq_shared->lock);
	return true;
}

void
jobq_shmem_sleep_end(void)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->sleeping = false;
	LWLockRelease(jobq_shared->lock);
}

/* Count a claim call: the jobs it claimed, its time, the buffers it touched. */
void
jobq_shmem_count_claim(int n, double ms, int64 buffers)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->claims++;
	me->jobs_claimed += n;
	me->claim_ms += ms;
	me->claim_buffers += buffers;
	LWLockRelease(jobq_shared->lock);
}

/* Count finished jobs. */
void
jobq_shmem_count_jobs(uint64 succeeded, uint64 failed)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->jobs_succeeded += succeeded;
	me->jobs_failed += failed;
	LWLockRelease(jobq_shared->lock);
}

/* The net worker's state: requests in flight, and jobs finished since the last report. */
void
jobq_shmem_report_net(int in_flight, uint64 succeeded, uint64 failed)
{
	JobqWorkerState state = in_flight > 0 ? JOBQ_WORKER_RUNNING : JOBQ_WORKER_IDLE;
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (me->state != state)
	{
		me->state = state;
		me->state_since = now;
	}
	me->in_flight = in_flight;
	me->jobs_succeeded += succeeded;
	me->jobs_failed += failed;
	LWLockRelease(jobq_shared->lock);
}

/*
 * The tokens of the workers alive (into live, jobq_shmem_nworkers() long;
 * returns how many), without this worker's with self_too, and the counter
 * of the last token issued (*max_counter).
 */
int
jobq_shmem_live_tokens(bool self_too, int64 *live, uint32 *max_counter)
{
	int nlive = 0;
	int i;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	for (i = 0; i < jobq_shared->nworkers; i++)
		if (jobq_shared->workers[i].in_use && jobq_shared->workers[i].token != 0 &&
			!(self_too && jobq_shared->workers[i].token == me->token))
			live[nlive++] = jobq_shared->workers[i].token;
	*max_counter = jobq_shared->next_token - 1;
	LWLockRelease(jobq_shared->lock);
	return nlive;
}

/* Jobs the database's SQL workers have finished (succeeded or failed). */
uint64
jobq_shmem_finished_in_database(Oid dboid)
{
	uint64 n = 0;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	for (int i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (w->in_use && w->dboid == dboid && !w->net)
			n += w->jobs_succeeded + w->jobs_failed;
	}
	LWLockRelease(jobq_shared->lock);
	return n;
}

/* ---------------------------------------------------------------------
 * Taking over (see batch.c): the slot's batch, and the peers' view of it
 * ------------------------------------------------------------------- */

/* Whether key a comes after key b in the claim order. */
static bool
key_after(const JobqClaimKey *a, const JobqClaimKey *b)
{
	if (a->precedence != b->precedence)
		return a->precedence > b->precedence;
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->run_at != b->run_at)
		return a->run_at > b->run_at;
	return a->id > b->id;
}

/*
 * Publish this worker's new batch: when its time is up (0: nothing waits),
 * when it was claimed, and the key of its last job (NULL: the batch is
 * over).
 */
void
jobq_shmem_batch_publish(TimestampTz deadline, TimestampTz claimed_at,
						 const JobqClaimKey *last)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->taken_over = false;
	me->batch_deadline = deadline;
	me->batch_claimed_at = claimed_at;
	if (last != NULL)
		me->last_key = *last;
	LWLockRelease(jobq_shared->lock);
}

/*
 * Mark the job of key "key" as the one this worker runs, unless its batch
 * was taken over and the job comes after the boundary: then false, and it
 * must not start.  last_of_batch: nothing waits behind it.
 */
bool
jobq_shmem_start_job(const JobqClaimKey *key, bool last_of_batch)
{
	TimestampTz now = GetCurrentTimestamp();
	bool start = true;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (me->taken_over)
		start = !key_after(key, &me->run_key);
	else
	{
		me->run_key = *key;
		if (last_of_batch)
			me->batch_deadline = 0; /* nothing waits behind the last job */
	}
	if (start)
	{
		me->state = JOBQ_WORKER_RUNNING;
		me->job_id = key->id;
		me->cancel_job = 0; /* a late signal for the job before is no longer this job's */
		me->state_since = now;
	}
	LWLockRelease(jobq_shared->lock);
	return start;
}

/*
 * The job this worker was signalled to stop (jobq.cancel), or 0.  Read
 * without the lock, by the signal handler: an aligned 8-byte read, and the
 * handler compares the value with the job it runs (see batch.c).
 */
int64
jobq_shmem_cancel_target(void)
{
	return me != NULL ? *((volatile int64 *) &me->cancel_job) : 0;
}

/* How many cancellations of running jobs the net worker was told of. */
uint64
jobq_shmem_cancel_seq(void)
{
	uint64 seq;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	seq = me->cancel_seq;
	LWLockRelease(jobq_shared->lock);
	return seq;
}

/* Nothing of this worker's batch is left for a peer to take over. */
void
jobq_shmem_batch_close(void)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->batch_deadline = 0;
	LWLockRelease(jobq_shared->lock);
}

/*
 * When peer w's batch may be taken over by another worker of its database
 * and lane: its time is up, and the job running there has run for
 * TAKE_OVER_GRACE_MS (a job that ends sooner lets the worker give the rest
 * back itself); DT_NOEND if it may not.  The caller holds the lock.
 */
#define TAKE_OVER_GRACE_MS 20

static TimestampTz
take_over_time(const JobqWorker *w)
{
	if (w == me || !w->in_use || w->pid == 0 || w->net || w->dboid != me->dboid ||
		w->state != JOBQ_WORKER_RUNNING || w->batch_deadline == 0 || w->taken_over)
		return DT_NOEND;
	return Max(w->batch_deadline,
			   TimestampTzPlusMilliseconds(w->state_since, TAKE_OVER_GRACE_MS));
}

/* The earliest time a peer's batch may be taken over, or DT_NOEND. */
static TimestampTz
next_take_over(void)
{
	TimestampTz next = DT_NOEND;
	int i;

	for (i = 0; i < jobq_shared->nworkers; i++)
		next = Min(next, take_over_time(&jobq_shared->workers[i]));
	return next;
}

/*
 * At the start of a round: this worker's wake_seq (*seq), and whether a
 * peer's batch may be taken over now.
 */
bool
jobq_shmem_round_begin(uint64 *seq)
{
	bool due;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	*seq = me->wake_seq;
	due = next_take_over() <= GetCurrentTimestamp();
	LWLockRelease(jobq_shared->lock);
	return due;
}

/* The earliest time a peer's batch may be taken over, or DT_NOEND. */
TimestampTz
jobq_shmem_next_take_over(void)
{
	TimestampTz next;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	next = next_take_over();
	LWLockRelease(jobq_shared->lock);
	return next;
}

/*
 * Mark taken over the first peer's batch whose time is up, if any, and
 * tell which jobs to give back: that worker's token, the batch's claim
 * time, the key of the job running there (the boundary) and of its last
 * job.  false: none.
 */
bool
jobq_shmem_take_over(int64 *token, TimestampTz *claimed_at,
					 JobqClaimKey *after, JobqClaimKey *last)
{
	TimestampTz now = GetCurrentTimestamp();
	int i;

	*token = 0;
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (take_over_time(w) > now)
			continue;
		w->taken_over = true;
		*token = w->token;
		*claimed_at = w->batch_claimed_at;
		*after = w->run_key;
		*last = w->last_key;
		break;
	}
	LWLockRelease(jobq_shared->lock);
	return *token != 0;
}
