/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  A job worker: claims batches of jobs in its database and runs them.
 *
 * Transactions of one round:
 *	 1. claim: mark up to jobq.batch_size ready jobs running and count their
 *		attempt; commit without waiting for the WAL flush (synchronous_commit
 *		off for this transaction; see jobq_shmem_durable_claims): the run
 *		transaction's commit flushes the claim too.  For a minute after a
 *		crash restart the claim is durable before a handler runs.
 *	 2. run: one transaction for the batch, or several; each job as its
 *		owner, with its timeout armed; its success or failure is recorded in
 *		that transaction, so a job's effects and its completion commit
 *		together.  The jobs run in the transaction itself, unless a job
 *		failed in the worker's previous batch: then each job runs in a
 *		subtransaction of its own, and a transaction ends after 60 jobs
 *		that wrote (see run_chunk).  A job that fails outside a
 *		subtransaction rolls back the jobs before it: its failure is
 *		recorded and they run again, isolated (see run_claimed).  If a run
 *		transaction fails as a whole (a commit-time error, say), each of
 *		its jobs runs again alone.
 *	 3. after 100 ms, the jobs of the batch not started yet are given back
 *		(attempt not counted) and the next claim is smaller; fast jobs make it
 *		grow back to jobq.batch_size.  While one job runs past those 100 ms,
 *		another worker of the database takes over the jobs waiting behind it
 *		(see "Taking over" below).
 *
 * A job runs with SECURITY_LOCAL_USERID_CHANGE and (every kind but the
 * built-in matview.refresh, see jobq_handler_restricted)
 * SECURITY_RESTRICTED_OPERATION: the worker's session user is a superuser,
 * so SET ROLE and SET SESSION AUTHORIZATION must stay out of reach, and
 * temporary objects must not outlive the job into another role's job (the
 * temporary schema is emptied after each job once it exists).
 * Deferrable constraints are checked at the end of each statement of a job
 * (deferred trigger events may not outlive a restricted operation).
 * Settings a job changes are undone after it, and what it left in the
 * session is cleared (after_job), so every job starts as after DISCARD ALL.
 * On SIGTERM the running job's attempt counts (it may have sent the signal
 * itself); the other claimed jobs go back uncounted.
 *
 * Memory: worker_cxt lives as long as the process; batch_cxt holds one
 * round's jobs and results and is reset after each round.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/async.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "commands/vacuum.h"
#include "executor/instrument.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_node.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "access/transam.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "jobq.h"

static volatile sig_atomic_t got_sigterm = false;
static volatile bool holding_jobs = false;

static JobqWorker *me = NULL;
static int64 my_token = 0;
static Oid	my_dboid = InvalidOid;
static MemoryContext worker_cxt = NULL;
static MemoryContext batch_cxt = NULL;
static TimestampTz last_prune = 0;
static TimestampTz last_vacuum = 0;
static uint64 finished_at_vacuum = 0;
static bool truncate_due = false;	/* vacuums ran, the table's tail was kept */
static TimestampTz idle_since = 0;	/* worker 0: idle since, or 0 */
static uint64 finished_when_idle = 0;	/* jobs finished in the db then */
static int	claim_size = INT_MAX;	/* adapts to how long jobs take */
static int64 current_job_id = 0;	/* the job whose handler runs, or 0 */
static const JobqJob *running_job = NULL;	/* its claimed job, or NULL */

/* The id of the job this process is running, or 0: jobq.current_job(). */
int64
jobq_worker_current_job(void)
{
	return current_job_id;
}

/*
 * Start a transaction whose now() is the current time: nothing else sets
 * the statement start time in a background worker.
 */
static void
begin_xact(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
}

/*
 * Commit, and pass on the table statistics the transaction gathered (at
 * most about once a second): without them autovacuum never learns of the
 * dead rows claims and completions leave in jobq._queue.
 */
static void
commit_xact(void)
{
	CommitTransactionCommand();
	pgstat_report_stat(false);
}

/*
 * After an error: a job's timeout must neither fire later nor leave a
 * pending cancel behind for the statements that follow.
 */
static void
forget_job_timeout(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
	QueryCancelPending = false;
}

/* A failed outcome carrying an error's message, SQLSTATE and context. */
static void
outcome_from_error(JobqOutcome *out, ErrorData *edata)
{
	memset(out, 0, sizeof(*out));
	out->ok = false;
	out->message = edata->message;
	out->sqlstate = pstrdup(unpack_sql_state(edata->sqlerrcode));
	out->context = edata->context;
}

/* SIGTERM: note it, then die() as any backend would. */
static void
worker_sigterm(SIGNAL_ARGS)
{
	got_sigterm = true;
	die(postgres_signal_arg);
}

static void
set_state(JobqWorkerState state, int64 job_id)
{
	TimestampTz now = GetCurrentTimestamp();

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->state = state;
	me->job_id = job_id;
	me->state_since = now;
	LWLockRelease(jobq_shared->lock);
}

/*
 * Claim up to batch_size jobs of a lane for this worker (see
 * jobq_queue_claim), counting the call, the jobs, its time and the shared
 * buffers it touched in jobq.workers.
 */
int
jobq_worker_claim(bool net, int batch_size, JobqJob **jobs)
{
	instr_time	start;
	instr_time	elapsed;
	int64		buffers = pgBufferUsage.shared_blks_hit + pgBufferUsage.shared_blks_read;
	int			n;

	INSTR_TIME_SET_CURRENT(start);
	n = jobq_queue_claim(my_token, net, batch_size, jobs);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	buffers = pgBufferUsage.shared_blks_hit + pgBufferUsage.shared_blks_read - buffers;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->claims++;
	me->jobs_claimed += n;
	me->claim_ms += INSTR_TIME_GET_MILLISEC(elapsed);
	me->claim_buffers += buffers;
	LWLockRelease(jobq_shared->lock);
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
	begin_xact();
	if (running_job != NULL)
	{
		JobqOutcome out;

		memset(&out, 0, sizeof(out));
		out.message = "the worker was terminated while the job was running";
		out.sqlstate = "57P01";
		jobq_queue_fail(running_job, &out, false, 0);
		running_job = NULL;
	}
	jobq_queue_release_uncounted(my_token, NULL, 0);
	CommitTransactionCommand();
	holding_jobs = false;
}

/*
 * Leave the process, telling the launcher why.  When asked to stop, jobs
 * still held (the net worker's requests in flight) go back to pending,
 * attempt not counted; when jobq is gone, so are they.
 */
static void
worker_exit(JobqWorkerExit reason)
{
	if (reason == JOBQ_EXIT_ASKED && holding_jobs)
		release_all();
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->exit_reason = reason;
	LWLockRelease(jobq_shared->lock);
	proc_exit(0);
}

/*
 * Leave if jobq is no longer installed in this database (DROP EXTENSION).
 * The caller is in a transaction.
 */
static void
exit_unless_installed(void)
{
	/*
	 * jobq._queue is a member of the extension: it exists exactly when jobq
	 * is installed.  Two syscache lookups, where get_extension_oid() would
	 * scan pg_extension (no syscache covers it) at each round.
	 */
	if (!OidIsValid(get_relname_relid("_queue", get_namespace_oid("jobq", true))))
		worker_exit(JOBQ_EXIT_ABSENT);
}

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
 * before_shmem_exit: on SIGTERM (fast shutdown, pg_terminate_backend, a
 * database being dropped) give the claimed jobs back without counting the
 * attempt.  On any other exit the jobs stay running under a dead token and
 * the next worker to start reaps them, attempt counted.
 */
static void
worker_release_at_exit(int code, Datum arg)
{
	if (!got_sigterm || !holding_jobs)
		return;
	release_all();
}

/* Claim our slot, or leave if the launcher has given it away. */
static void
worker_attach(int slot, uint32 generation)
{
	TimestampTz now = GetCurrentTimestamp();

	if (slot < 0 || slot >= jobq_shared->nworkers)
		proc_exit(0);
	me = &jobq_shared->workers[slot];

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (!me->in_use || me->generation != generation || me->pid != 0)
	{
		LWLockRelease(jobq_shared->lock);
		me = NULL;
		proc_exit(0);
	}
	me->pid = MyProcPid;
	me->latch = MyLatch;
	me->token = JOBQ_TOKEN(jobq_shared->boot_id, jobq_shared->next_token++);
	me->state = JOBQ_WORKER_STARTING;
	me->state_since = now;
	me->started_at = now;
	my_token = me->token;
	my_dboid = me->dboid;
	LWLockRelease(jobq_shared->lock);

	on_shmem_exit(worker_detach, (Datum) 0);

	if (jobq_shmem_paused(my_dboid))
		worker_exit(JOBQ_EXIT_ASKED);
}

/*
 * Return to pending the jobs of workers that no longer exist, e.g. after a
 * crash or an immediate restart; with self_too, this worker's jobs as well.
 * Runs in its own transaction.
 */
static void
reap_orphans(bool self_too)
{
	int64	   *live;
	int			nlive = 0;
	uint32		max_counter;
	int64		n;
	int			i;

	live = palloc(sizeof(int64) * jobq_shared->nworkers);
	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	for (i = 0; i < jobq_shared->nworkers; i++)
		if (jobq_shared->workers[i].in_use && jobq_shared->workers[i].token != 0 &&
			!(self_too && jobq_shared->workers[i].token == my_token))
			live[nlive++] = jobq_shared->workers[i].token;
	max_counter = jobq_shared->next_token - 1;
	LWLockRelease(jobq_shared->lock);

	begin_xact();
	n = jobq_queue_reap(live, nlive, jobq_shared->boot_id, max_counter);
	commit_xact();
	if (n > 0)
		ereport(LOG,
				(errmsg("jobq returned " INT64_FORMAT " jobs left running by workers that ended", n)));
	pfree(live);
}

/* Worker 0 of each database deletes finished jobs past their retention. */
static void
maybe_prune(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		n;

	if (me->number != 0 ||
		!TimestampDifferenceExceeds(last_prune, now, jobq_prune_interval * 1000))
		return;
	last_prune = now;
	do
	{
		begin_xact();
		n = jobq_queue_prune();
		commit_xact();
		CHECK_FOR_INTERRUPTS();
	} while (n >= 10000);
}

/* Jobs the database's SQL workers have finished (succeeded or failed). */
static uint64
finished_in_database(void)
{
	uint64		n = 0;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	for (int i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (w->in_use && w->dboid == my_dboid && !w->net)
			n += w->jobs_succeeded + w->jobs_failed;
	}
	LWLockRelease(jobq_shared->lock);
	return n;
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

	set_state(JOBQ_WORKER_VACUUMING, 0);
	pgstat_report_activity(STATE_RUNNING,
						   truncate ? "VACUUM (TRUNCATE) jobq._queue" : "VACUUM jobq._queue");
	begin_xact();
	stmt = makeNode(VacuumStmt);
	stmt->options = truncate ? list_make1(makeDefElem("truncate", NULL, -1)) : NIL;
	stmt->is_vacuumcmd = true;
	stmt->rels = list_make1(makeVacuumRelation(makeRangeVar("jobq", "_queue", -1),
											   InvalidOid, NIL));
	PushActiveSnapshot(GetTransactionSnapshot());
	ExecVacuum(make_parsestate(NULL), stmt, true);
	commit_xact();
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
 * maybe_truncate).  Returns how long until a vacuum that waits only for
 * that second is due (the worker sleeps no longer: the last jobs of a burst
 * leave their dead rows too), else -1.
 */
static long
maybe_vacuum(void)
{
	TimestampTz now;
	TimestampTz due;
	uint64		finished;

	if (me->number != 0 || jobq_vacuum_threshold == 0)
		return -1;
	finished = finished_in_database();
	if (finished < finished_at_vacuum)
		finished_at_vacuum = 0; /* a worker restarted: its count did too */
	if (finished - finished_at_vacuum < (uint64) jobq_vacuum_threshold)
		return -1;
	now = GetCurrentTimestamp();
	due = TimestampTzPlusMilliseconds(last_vacuum, 1000);
	if (now < due)
		return TimestampDifferenceMilliseconds(now, due);	/* not yet */
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
static void
maybe_truncate(bool idle, long *sleep_ms)
{
	TimestampTz now;
	TimestampTz due;
	uint64		finished;

	if (!idle)
		idle_since = 0;
	if (!idle || me->number != 0 || !truncate_due || jobq_vacuum_threshold == 0)
		return;
	now = GetCurrentTimestamp();
	finished = finished_in_database();
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
 * How the jobs of a batch run.  Normally in the run transaction itself: a
 * subtransaction for each job costs, and a LANGUAGE sql handler plans its
 * statements again in each new subtransaction.  When a job fails there, the
 * transaction is rolled back, the failure recorded, and the jobs that had
 * run before it in that transaction run again, each in a subtransaction of
 * its own (isolated); so do the rest of the batch and the next batches,
 * until a batch runs without a failure.  Only the effects of a job's last
 * run commit, with its completion.
 */
static bool isolate_jobs = false;
static bool batch_had_failure = false;

/*
 * Call the job's handler as its owner, with its timeout armed and its
 * settings undone afterwards.  On error the caller's (sub)transaction
 * rollback restores the user, the settings and the trigger state.
 */
static Jsonb *
run_as_owner(const JobqJob *job, const JobqKind *kind)
{
	Oid			save_userid;
	int			save_sec_context;
	int			nestlevel;
	Jsonb	   *result;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(job->owner,
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   (jobq_handler_restricted(kind) ? SECURITY_RESTRICTED_OPERATION : 0));
	nestlevel = NewGUCNestLevel();

	/*
	 * A restricted operation may not leave deferred triggers behind (they
	 * would fire at commit, as the worker's superuser): check deferrable
	 * constraints at the end of each statement, as the owner.
	 */
	{
		ConstraintsSetStmt *immediate = makeNode(ConstraintsSetStmt);

		immediate->constraints = NIL;
		immediate->deferred = false;
		AfterTriggerSetState(immediate);
	}
	if (job->timeout_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(job->timeout_ms, INT_MAX));

	current_job_id = job->id;
	result = jobq_handler_run(job, kind);
	current_job_id = 0;

	if (job->timeout_ms > 0)
		disable_timeout(STATEMENT_TIMEOUT, false);
	CHECK_FOR_INTERRUPTS();
	AtEOXact_GUC(false, nestlevel);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}

/*
 * What a job may leave in the session is cleared after it, whether it
 * succeeded or not, as DISCARD ALL clears a pooled connection: the next
 * job, perhaps another role's, starts from a clean session.  Settings were
 * undone by run_as_owner (or the rollback).  Within one run transaction the
 * jobs still share what a transaction holds (locks, transaction-level
 * advisory locks), released at its commit.
 */
static void
after_job(void)
{
	/* prepared statements: not undone by a rollback */
	DropAllPreparedStatements();

	/* session-level advisory locks (transaction-level ones wait for the commit) */
	LockReleaseSession(USER_LOCKMETHOD);

	/* currval() and lastval() of the sequences the job used */
	ResetSequenceCaches();

	if (IsTransactionState())
	{
		Oid			temp_namespace;
		Oid			temp_toast_namespace;

		/* cursors WITH HOLD would outlive the commit */
		PortalHashTableDeleteAll();

		/* a LISTEN of the job's is undone at the commit */
		Async_UnlistenAll();

		/*
		 * Nothing a job leaves in this session's temporary schema may reach
		 * the next job, perhaps another role's: types there would be found
		 * before pg_catalog's.  Restricted jobs cannot create the schema, but
		 * once an unrestricted one has, empty it after every job.
		 */
		GetTempNamespaceState(&temp_namespace, &temp_toast_namespace);
		if (OidIsValid(temp_namespace))
			ResetTempTableNamespace();
	}
}

/*
 * Run one job as its owner.  Fills *out; sets *final when the job cannot
 * succeed on another attempt.  Isolated, the job runs in a subtransaction
 * of its own, *out carries its error if it fails, and *wrote tells whether
 * it wrote (its subtransaction had an XID); otherwise its error is thrown.
 */
static void
run_one(const JobqJob *job, JobqOutcome *out, bool *final, bool *wrote,
		bool isolated)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	JobqKind   *cached;
	JobqKind	kind;

	memset(out, 0, sizeof(*out));
	*final = false;
	*wrote = false;

	cached = jobq_queue_lookup_kind(job->kind);
	if (cached == NULL)
	{
		out->message = psprintf("job kind \"%s\" does not exist", job->kind);
		out->sqlstate = "42704";
		*final = true;
		return;
	}
	kind = *cached;				/* the cache may be flushed while the job runs */

	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(job->owner)))
	{
		out->message = psprintf("role with OID %u, the owner of the job, does not exist", job->owner);
		out->sqlstate = "42704";
		*final = true;
		return;
	}

	if (!isolated)
	{
		out->result = run_as_owner(job, &kind);
		out->ok = true;
		after_job();
		return;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);

	PG_TRY();
	{
		Jsonb	   *result = run_as_owner(job, &kind);

		*wrote = TransactionIdIsValid(GetCurrentTransactionIdIfAny());
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		out->ok = true;
		out->result = result;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		current_job_id = 0;
		/* a timeout that fired as the job failed must not hit the batch */
		forget_job_timeout();
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		outcome_from_error(out, edata);
	}
	PG_END_TRY();
	after_job();
}

/* Log a failed attempt. */
static void
log_failure(const JobqJob *job, const JobqOutcome *out, const char *when)
{
	ereport(LOG,
			(errmsg("job " INT64_FORMAT " of kind \"%s\" failed %s attempt %d of %d: %s",
					job->id, job->kind, when, job->attempts, job->max_attempts,
					out->message)));
}

/*
 * Run claimed jobs in one transaction, from the first on, until they are
 * all done, the batch's time is up, or (isolated) MAX_WRITERS of them
 * wrote: each isolated job that writes holds a subtransaction XID, and past
 * the 64 a backend advertises, every other backend's snapshots get slower.
 * Successes are recorded together before the commit; failures as they
 * happen.  Returns how many jobs it ran; if it throws, *attempted tells how
 * many it had begun and *in_job whether the last of them threw.
 */
#define MAX_WRITERS 60

/* A batch runs this long at most before its unstarted jobs are given back. */
#define BATCH_TIME_MS 100

static TimestampTz batch_started;

static bool
batch_time_is_up(void)
{
	return TimestampDifferenceExceeds(batch_started, GetCurrentTimestamp(), BATCH_TIME_MS);
}

/*
 * Taking over.  While a job runs, its worker cannot give back the jobs of
 * its batch waiting behind it, however long it runs.  So when the batch's
 * time is up, an SQL worker of the same database that starts a round (or
 * wakes for it) takes them over: under the lock it marks the slot
 * taken_over, the key (priority, run_at, id) of the job running there
 * becoming the boundary, and then gives back that worker's jobs of that
 * batch (its token and claim time) after the key
 * (jobq_queue_release_after).  Once taken over, a worker starts no job
 * after the boundary (start_job), so no job is both given back and run; it
 * gives back the rest of its batch itself at the end (give_back), which
 * finds nothing where the peer has been.  A batch is taken over once.
 */
static JobqJob *batch_jobs = NULL;	/* the batch being run, its size */
static int	batch_n = 0;
static bool batch_taken = false;	/* a job was not started: taken over */

/* Whether key (priority, run_at, id) a comes after b in the claim order. */
static bool
key_after(int32 a_priority, TimestampTz a_run_at, int64 a_id,
		  int32 b_priority, TimestampTz b_run_at, int64 b_id)
{
	if (a_priority != b_priority)
		return a_priority > b_priority;
	if (a_run_at != b_run_at)
		return a_run_at > b_run_at;
	return a_id > b_id;
}

/* Publish a new batch of n jobs (n = 0: the batch is over). */
static void
batch_publish(JobqJob *jobs, int n)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->taken_over = false;
	me->batch_deadline = n > 1 ? TimestampTzPlusMilliseconds(batch_started, BATCH_TIME_MS) : 0;
	me->batch_claimed_at = n > 0 ? jobs[0].claimed_at : 0;
	if (n > 0)
	{
		me->last_priority = jobs[n - 1].priority;
		me->last_run_at = jobs[n - 1].run_at;
		me->last_id = jobs[n - 1].id;
	}
	LWLockRelease(jobq_shared->lock);
	batch_jobs = jobs;
	batch_n = n;
	batch_taken = false;
}

/*
 * Mark job as the one this worker runs, unless its batch was taken over
 * and the job comes after the boundary: then false, and it must not start.
 */
static bool
start_job(const JobqJob *job)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		start = true;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (me->taken_over)
		start = !key_after(job->priority, job->run_at, job->id,
						   me->run_priority, me->run_run_at, me->run_id);
	else
	{
		me->run_priority = job->priority;
		me->run_run_at = job->run_at;
		me->run_id = job->id;
		if (batch_n > 0 && job == &batch_jobs[batch_n - 1])
			me->batch_deadline = 0; /* nothing waits behind the last job */
	}
	if (start)
	{
		me->state = JOBQ_WORKER_RUNNING;
		me->job_id = job->id;
		me->state_since = now;
	}
	LWLockRelease(jobq_shared->lock);
	if (!start)
		batch_taken = true;
	return start;
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
	if (w == me || !w->in_use || w->pid == 0 || w->net || w->dboid != my_dboid ||
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
	int			i;

	for (i = 0; i < jobq_shared->nworkers; i++)
		next = Min(next, take_over_time(&jobq_shared->workers[i]));
	return next;
}

/* Take over the waiting jobs of a peer's batch whose time is up, if any. */
static void
take_over(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		token = 0;
	TimestampTz claimed_at = 0;
	JobqClaimKey after = {0};
	JobqClaimKey last = {0};
	int64		n;
	int			i;

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < jobq_shared->nworkers; i++)
	{
		JobqWorker *w = &jobq_shared->workers[i];

		if (take_over_time(w) > now)
			continue;
		w->taken_over = true;
		token = w->token;
		claimed_at = w->batch_claimed_at;
		after.priority = w->run_priority;
		after.run_at = w->run_run_at;
		after.id = w->run_id;
		last.priority = w->last_priority;
		last.run_at = w->last_run_at;
		last.id = w->last_id;
		break;
	}
	LWLockRelease(jobq_shared->lock);
	if (token == 0)
		return;

	begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	n = jobq_queue_release_after(token, claimed_at, &after, &last);
	commit_xact();
	MemoryContextSwitchTo(batch_cxt);
	if (n > 0)
		ereport(DEBUG1,
				(errmsg("jobq gave back " INT64_FORMAT " jobs waiting behind job " INT64_FORMAT,
						n, after.id)));
}

/*
 * Past its time a batch starts no more jobs (run_claimed gives the rest
 * back): nothing for a peer to take over while its last chunk commits.
 */
static void
batch_close(void)
{
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->batch_deadline = 0;
	LWLockRelease(jobq_shared->lock);
}

static int
run_chunk(JobqJob *jobs, int n, bool isolated, volatile int *attempted,
		  volatile bool *in_job)
{
	int64	   *ok_ids = palloc(sizeof(int64) * n);
	Jsonb	  **ok_results = palloc(sizeof(Jsonb *) * n);
	int			nok = 0;
	int			writers = 0;
	uint64		failed = 0;
	int			i;

	*attempted = 0;
	*in_job = false;
	begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	for (i = 0; i < n && writers < MAX_WRITERS && !(i > 0 && batch_time_is_up()); i++)
	{
		JobqJob    *job = &jobs[i];
		JobqOutcome out;
		bool		final;
		bool		wrote;

		if (!start_job(job))
			break;
		*attempted = i + 1;
		pgstat_report_activity(STATE_RUNNING,
								psprintf("jobq job " INT64_FORMAT " (%s)", job->id, job->kind));
		*in_job = true;
		running_job = job;
		run_one(job, &out, &final, &wrote, isolated);
		running_job = NULL;
		*in_job = false;
		if (wrote)
			writers++;
		if (out.ok)
		{
			ok_ids[nok] = job->id;
			ok_results[nok] = out.result;
			nok++;
		}
		else
		{
			log_failure(job, &out, "on");
			jobq_queue_fail(job, &out, final, 0);
			failed++;
		}
	}
	if (i < n && batch_time_is_up())
		batch_close();
	jobq_queue_succeed_many(ok_ids, ok_results, nok);
	commit_xact();
	MemoryContextSwitchTo(batch_cxt);

	if (failed > 0)
		batch_had_failure = true;
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->jobs_succeeded += nok;
	me->jobs_failed += failed;
	LWLockRelease(jobq_shared->lock);
	return i;
}

/*
 * Record in a transaction of its own the failure of a job whose error
 * rolled back the transaction it ran in.
 */
static void
fail_alone(const JobqJob *job, ErrorData *edata, const char *when)
{
	JobqOutcome out;

	outcome_from_error(&out, edata);
	log_failure(job, &out, when);
	begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	jobq_queue_fail(job, &out, false, 0);
	commit_xact();
	MemoryContextSwitchTo(batch_cxt);

	batch_had_failure = true;
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->jobs_failed++;
	LWLockRelease(jobq_shared->lock);
}

/*
 * Give back the claimed jobs from "from" on, unstarted, so that idle workers
 * take them; the attempt is not counted.
 */
static void
give_back(JobqJob *jobs, int from, int n)
{
	int64	   *ids = palloc(sizeof(int64) * (n - from));
	int			i;

	for (i = from; i < n; i++)
		ids[i - from] = jobs[i].id;
	begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	jobq_queue_release_uncounted(my_token, ids, n - from);
	commit_xact();
	MemoryContextSwitchTo(batch_cxt);
	jobq_shmem_wake_database(my_dboid, false, 1);
}

/*
 * Run claimed jobs, in as many transactions as run_chunk needs, and give
 * back those not started when the batch has run for BATCH_TIME_MS.  When a
 * job fails outside a subtransaction, its failure is recorded and the jobs
 * its error rolled back run again, isolated.  When a transaction fails as a
 * whole (a commit-time error, say), each of its jobs runs again alone, and
 * a job that fails alone has the failure recorded.  Returns how many jobs
 * ran or failed.
 */
static int
run_claimed(JobqJob *jobs, int n)
{
	int			done = 0;

	while (done < n)
	{
		volatile int attempted = 0;
		volatile bool in_job = false;
		bool		isolated = isolate_jobs;
		ErrorData  *volatile edata = NULL;
		int			ran = 0;

		if (batch_taken || (done > 0 && batch_time_is_up()))
		{
			give_back(jobs, done, n);
			return done;
		}

		PG_TRY();
		{
			ran = run_chunk(jobs + done, n - done, isolated, &attempted, &in_job);
		}
		PG_CATCH();
		{
			current_job_id = 0;
			running_job = NULL;
			MemoryContextSwitchTo(batch_cxt);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			forget_job_timeout();
			after_job();
			MemoryContextSwitchTo(batch_cxt);
		}
		PG_END_TRY();

		if (edata == NULL)
		{
			done += ran;
			continue;
		}
		isolate_jobs = true;
		if (!isolated && in_job)
		{
			/* job "failed" threw: record it, and run again those it rolled back */
			int			failed = attempted - 1;

			if (failed > 0)
				(void) run_claimed(&jobs[done], failed);
			fail_alone(&jobs[done + failed], edata, "on");
			done += failed + 1;
			continue;
		}
		if (attempted > 1 || n - done > 1)
		{
			int			i;

			for (i = 0; i < Max(attempted, 1); i++)
				run_claimed(&jobs[done + i], 1);
			done += Max(attempted, 1);
			continue;
		}

		/* one job, failing outside its subtransaction */
		fail_alone(&jobs[done], edata, "at commit, on");
		done++;
	}
	return done;
}

/*
 * One round: claim and run a batch.  Returns 0 when it ran jobs (look
 * again at once), else how long to sleep in milliseconds; *idle tells
 * whether no job was ready (none claimed, none due but locked).
 */
static long
worker_round(uint64 *seq, bool *idle)
{
	JobqJob    *jobs;
	int			n;
	TimestampTz due = DT_NOEND;
	TimestampTz take_over_at;
	bool		take_over_due;
	long		sleep_ms;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	*seq = me->wake_seq;
	take_over_due = next_take_over() <= GetCurrentTimestamp();
	LWLockRelease(jobq_shared->lock);
	if (take_over_due)
		take_over();

	set_state(JOBQ_WORKER_CLAIMING, 0);
	holding_jobs = true;
	begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	exit_unless_installed();
	claim_size = Min(claim_size, jobq_batch_size);
	n = jobq_worker_claim(false, claim_size, &jobs);
	if (n == 0)
		due = jobq_queue_next_due(false);
	else if (!jobq_shmem_durable_claims())
		(void) set_config_option("synchronous_commit", "off", PGC_SUSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	commit_xact();
	MemoryContextSwitchTo(batch_cxt);

	*idle = false;
	if (n > 0)
	{
		int			ran;

		/*
		 * There may be more: let another worker help.  Jobs that wait behind
		 * others: another worker watches for the batch's time being up.
		 */
		batch_started = GetCurrentTimestamp();
		batch_publish(jobs, n);
		if (n == claim_size || n > 1)
			jobq_shmem_wake_database(my_dboid, false, 1);
		isolate_jobs = batch_had_failure;
		batch_had_failure = false;
		ran = run_claimed(jobs, n);
		batch_publish(NULL, 0);
		holding_jobs = false;
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
	holding_jobs = false;
	MemoryContextReset(batch_cxt);

	sleep_ms = jobq_poll_interval;
	*idle = true;
	if (due != DT_NOEND)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (due <= now)
		{
			sleep_ms = 10;		/* due but locked by someone: look again soon */
			*idle = false;
		}
		else
			sleep_ms = Min(sleep_ms, TimestampDifferenceMilliseconds(now, due));
	}

	/* wake when a peer's batch may be taken over */
	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	take_over_at = next_take_over();
	LWLockRelease(jobq_shared->lock);
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
	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	if (me->wake_seq != seq || me->stop_requested)
	{
		LWLockRelease(jobq_shared->lock);
		return;
	}
	me->sleeping = true;
	me->state = JOBQ_WORKER_IDLE;
	me->job_id = 0;
	me->state_since = GetCurrentTimestamp();
	LWLockRelease(jobq_shared->lock);

	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(true);
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 sleep_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->sleeping = false;
	LWLockRelease(jobq_shared->lock);
}

/* ---------------------------------------------------------------------
 * What the net worker's loop (net.c) shares with this file
 * ------------------------------------------------------------------- */

void
jobq_worker_begin_xact(void)
{
	begin_xact();
}

void
jobq_worker_commit_xact(void)
{
	commit_xact();
}

void
jobq_worker_exit_unless_installed(void)
{
	exit_unless_installed();
}

/* Reload the configuration on SIGHUP; leave when asked to stop. */
void
jobq_worker_check_stop(void)
{
	bool		stop;

	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	stop = me->stop_requested;
	LWLockRelease(jobq_shared->lock);
	if (stop)
		worker_exit(JOBQ_EXIT_ASKED);
}

/* Whether SIGTERM must give back this worker's claimed jobs. */
void
jobq_worker_holding_jobs(bool holding)
{
	holding_jobs = holding;
}

/* This worker's running jobs go back to pending, attempt counted. */
void
jobq_worker_reap_own(void)
{
	reap_orphans(true);
}

/* The net worker's state: requests in flight, and jobs finished since the last report. */
void
jobq_worker_report(int in_flight, uint64 succeeded, uint64 failed)
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

uint64
jobq_worker_wake_seq(void)
{
	uint64		seq;

	LWLockAcquire(jobq_shared->lock, LW_SHARED);
	seq = me->wake_seq;
	LWLockRelease(jobq_shared->lock);
	return seq;
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
	forget_job_timeout();
	running_job = NULL;
	batch_publish(NULL, 0);		/* no peer takes over what is reaped below */
	MemoryContextReset(batch_cxt);

	begin_xact();
	exit_unless_installed();
	commit_xact();
	if (holding_jobs)
	{
		/* treated as orphans: the attempt stays counted */
		reap_orphans(true);
		holding_jobs = false;
	}
}

void
jobq_worker_main(Datum main_arg)
{
	int			slot = DatumGetInt32(main_arg);
	uint32		generation;

	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	BackgroundWorkerUnblockSignals();

	worker_attach(slot, generation);

	BackgroundWorkerInitializeConnectionByOid(my_dboid, InvalidOid, 0);
	SetConfigOption("application_name", "jobq worker", PGC_USERSET, PGC_S_SESSION);

	worker_cxt = AllocSetContextCreate(TopMemoryContext, "jobq worker",
									   ALLOCSET_DEFAULT_SIZES);
	batch_cxt = AllocSetContextCreate(worker_cxt, "jobq batch",
									  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(worker_cxt);

	begin_xact();
	exit_unless_installed();
	commit_xact();
	MemoryContextSwitchTo(worker_cxt);

	LWLockAcquire(jobq_shared->lock, LW_EXCLUSIVE);
	me->has_jobq = true;
	LWLockRelease(jobq_shared->lock);
	jobq_shmem_wake_launcher();	/* it may start this database's other workers */

	before_shmem_exit(worker_release_at_exit, (Datum) 0);

	reap_orphans(false);
	MemoryContextSwitchTo(worker_cxt);

	if (me->net)
	{
		SetConfigOption("application_name", "jobq net worker", PGC_USERSET, PGC_S_SESSION);
		jobq_net_main(me);	/* does not return */
	}

	for (;;)
	{
		uint64		seq = 0;
		long		sleep_ms = 0;
		long		vacuum_ms;
		bool		idle = false;

		jobq_worker_check_stop();

		PG_TRY();
		{
			maybe_prune();
			vacuum_ms = maybe_vacuum();
			MemoryContextSwitchTo(worker_cxt);
			sleep_ms = worker_round(&seq, &idle);
			maybe_truncate(idle, &sleep_ms);
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
