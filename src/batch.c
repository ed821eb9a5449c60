/*-------------------------------------------------------------------------
 *
 * batch.c
 *	  A SQL worker's batch: the claimed jobs run, each as its owner, and
 *	  their outcomes recorded in the transactions they ran in.
 *
 * Transactions of a batch (the claim before it is worker.c's):
 *	 - run: one transaction for the batch, or several; each job as its
 *	   owner, with its timeout armed; its success or failure is recorded in
 *	   that transaction, so a job's effects and its completion commit
 *	   together.  The jobs run in the transaction itself, unless a job
 *	   failed in the worker's previous batch: then each job runs in a
 *	   subtransaction of its own, and a transaction ends after 60 jobs that
 *	   wrote (see run_chunk).  A job that fails outside a subtransaction
 *	   rolls back the jobs before it: its failure is recorded and they run
 *	   again, isolated (see run_claimed).  If a run transaction fails as a
 *	   whole (a commit-time error, say), each of its jobs runs again alone.
 *	 - after 100 ms, the jobs of the batch not started yet are given back
 *	   (attempt not counted) and the next claim is smaller (worker.c); while
 *	   one job runs past those 100 ms, another worker of the database takes
 *	   over the jobs waiting behind it (see "Taking over" below).
 *
 * A job runs with SECURITY_LOCAL_USERID_CHANGE and (every kind but those
 * the install script made unrestricted, see jobq_handler_restricted)
 * SECURITY_RESTRICTED_OPERATION: the worker's session user is a superuser,
 * so SET ROLE and SET SESSION AUTHORIZATION must stay out of reach, and
 * temporary objects must not outlive the job into another role's job (the
 * temporary schema is emptied after each job once it exists).
 * Deferrable constraints are checked at the end of each statement of a job
 * (deferred trigger events may not outlive a restricted operation).
 * Settings a job changes are undone after it, and what it left in the
 * session is cleared (after_job), so every job starts as after DISCARD ALL.
 *
 * Memory: the batch's jobs and results live in the worker's batch_cxt
 * (jobq_batch_init), reset by worker.c after each round; every transaction
 * command here is followed by a switch back to it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/async.h"
#include "commands/prepare.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "batch.h"
#include "bgworker.h"
#include "handlers.h"
#include "queue.h"
#include "shmem.h"

static MemoryContext batch_cxt = NULL;
static volatile int64 current_job_id = 0; /* the job whose handler runs, or 0 */
static Oid current_job_owner = InvalidOid;

/* what the running job last reported with jobq.set_progress, to keep with it */
static bool progress_reported = false;
static bool progress_null = true;
static float4 progress_value = 0;
static char progress_message[JOBQ_MAX_PROGRESS_MESSAGE + 1];

/* The id of the job this process is running, or 0: jobq.current_job(). */
int64
jobq_batch_current_job(void)
{
	return current_job_id;
}

/*
 * The running job reports its progress (jobq.set_progress): shown at once
 * in jobq.jobs from shared memory, and written into its row when its
 * handler returns, so that it commits with the job's effects and
 * completion.  message may be NULL.  The caller checked that a job runs.
 */
void
jobq_batch_report_progress(bool percent_null, float4 percent, const char *message)
{
	Assert(current_job_id != 0);
	progress_reported = true;
	progress_null = percent_null;
	progress_value = percent;
	strlcpy(progress_message, message ? message : "", sizeof(progress_message));
	jobq_shmem_set_progress(current_job_id, current_job_owner, percent_null, percent, message);
}

/* The context that holds a round's jobs and results (the worker's batch_cxt). */
/*
 * SIGUSR2: a hard cancel (jobq.cancel of a running job, see
 * cancel_running in shmem.c).  The job whose handler runs now is
 * interrupted as a statement is by a cancel request, but only if it is the
 * job the signal was sent for: a signal that arrives late, after that
 * job's handler returned, finds another job or none and does nothing.
 */
static void
cancel_handler(SIGNAL_ARGS)
{
	int save_errno = errno;
	int64 job = current_job_id;

	if (job != 0 && job == jobq_shmem_cancel_target())
	{
		InterruptPending = true;
		QueryCancelPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

void
jobq_batch_init(MemoryContext cxt)
{
	batch_cxt = cxt;
	pqsignal(SIGUSR2, cancel_handler);
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
	Oid save_userid;
	int save_sec_context;
	int nestlevel;
	Jsonb *result;

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
	current_job_owner = job->owner;
	progress_reported = false;
	result = jobq_handler_run(job, kind);
	current_job_id = 0;

	if (job->timeout_ms > 0)
		disable_timeout(STATEMENT_TIMEOUT, false);
	if (progress_reported)
		jobq_queue_save_progress(job->id, progress_null, progress_value,
								 progress_message[0] != '\0' ? progress_message : NULL);
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
		Oid temp_namespace;
		Oid temp_toast_namespace;

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
	JobqKind *cached;
	JobqKind kind;

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
	kind = *cached; /* the cache may be flushed while the job runs */

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
		Jsonb *result = run_as_owner(job, &kind);

		*wrote = TransactionIdIsValid(GetCurrentTransactionIdIfAny());
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		out->ok = true;
		out->result = result;
	}
	PG_CATCH();
	{
		ErrorData *edata;

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
 * taken_over, the key (precedence, priority, run_at, id) of the job running there
 * becoming the boundary, and then gives back that worker's jobs of that
 * batch (its token and claim time) after the key
 * (jobq_queue_release_after).  Once taken over, a worker starts no job
 * after the boundary (start_job), so no job is both given back and run; it
 * gives back the rest of its batch itself at the end (give_back), which
 * finds nothing where the peer has been.  A batch is taken over once.
 */
static JobqJob *batch_jobs = NULL; /* the batch being run, its size */
static int batch_n = 0;
static bool batch_taken = false; /* a job was not started: taken over */

/* Publish a new batch of n jobs (n = 0: the batch is over). */
static void
batch_publish(JobqJob *jobs, int n)
{
	JobqClaimKey last;

	if (n > 0)
	{
		last.precedence = jobs[n - 1].precedence;
		last.priority = jobs[n - 1].priority;
		last.run_at = jobs[n - 1].run_at;
		last.id = jobs[n - 1].id;
	}
	jobq_shmem_batch_publish(n > 1 ? TimestampTzPlusMilliseconds(batch_started, BATCH_TIME_MS) : 0,
							 n > 0 ? jobs[0].claimed_at : 0,
							 n > 0 ? &last : NULL);
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
	JobqClaimKey key;
	bool start;

	key.precedence = job->precedence;
	key.priority = job->priority;
	key.run_at = job->run_at;
	key.id = job->id;
	start = jobq_shmem_start_job(&key, batch_n > 0 && job == &batch_jobs[batch_n - 1]);
	if (!start)
		batch_taken = true;
	return start;
}

/* Take over the waiting jobs of a peer's batch whose time is up, if any. */
void
jobq_batch_take_over(void)
{
	int64 token;
	TimestampTz claimed_at = 0;
	JobqClaimKey after = {0};
	JobqClaimKey last = {0};
	int64 n;

	if (!jobq_shmem_take_over(&token, &claimed_at, &after, &last))
		return;

	jobq_bgw_begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	n = jobq_queue_release_after(token, claimed_at, &after, &last);
	jobq_bgw_commit_xact();
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
	jobq_shmem_batch_close();
}

static int
run_chunk(JobqJob *jobs, int n, bool isolated, volatile int *attempted,
		  volatile bool *in_job)
{
	int64 *ok_ids = palloc(sizeof(int64) * n);
	Jsonb **ok_results = palloc(sizeof(Jsonb *) * n);
	int nok = 0;
	int writers = 0;
	uint64 failed = 0;
	int i;

	*attempted = 0;
	*in_job = false;
	jobq_bgw_begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	for (i = 0; i < n && writers < MAX_WRITERS && !(i > 0 && batch_time_is_up()); i++)
	{
		JobqJob *job = &jobs[i];
		JobqOutcome out;
		bool final;
		bool wrote;

		if (!start_job(job))
			break;
		*attempted = i + 1;
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("jobq job " INT64_FORMAT " (%s)", job->id, job->kind));
		*in_job = true;
		jobq_bgw_running_job(job);
		run_one(job, &out, &final, &wrote, isolated);
		jobq_bgw_running_job(NULL);
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
	jobq_bgw_commit_xact();
	MemoryContextSwitchTo(batch_cxt);

	if (failed > 0)
		batch_had_failure = true;
	jobq_shmem_count_jobs(nok, failed);
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
	jobq_bgw_begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	jobq_queue_fail(job, &out, false, 0);
	jobq_bgw_commit_xact();
	MemoryContextSwitchTo(batch_cxt);

	batch_had_failure = true;
	jobq_shmem_count_jobs(0, 1);
}

/*
 * Give back the claimed jobs from "from" on, unstarted, so that idle workers
 * take them; the attempt is not counted.
 */
static void
give_back(JobqJob *jobs, int from, int n)
{
	int64 *ids = palloc(sizeof(int64) * (n - from));
	int i;

	for (i = from; i < n; i++)
		ids[i - from] = jobs[i].id;
	jobq_bgw_begin_xact();
	MemoryContextSwitchTo(batch_cxt);
	jobq_queue_release_uncounted(jobq_bgw_slot()->token, ids, n - from);
	jobq_bgw_commit_xact();
	MemoryContextSwitchTo(batch_cxt);
	jobq_shmem_wake_database(jobq_bgw_slot()->dboid, false, 1, GetCurrentTimestamp());
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
	int done = 0;

	while (done < n)
	{
		volatile int attempted = 0;
		volatile bool in_job = false;
		bool isolated = isolate_jobs;
		ErrorData *volatile edata = NULL;
		int ran = 0;

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
			jobq_bgw_running_job(NULL);
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
			int failed = attempted - 1;

			if (failed > 0)
				(void) run_claimed(&jobs[done], failed);
			fail_alone(&jobs[done + failed], edata, "on");
			done += failed + 1;
			continue;
		}
		if (attempted > 1 || n - done > 1)
		{
			int i;

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
 * Run a batch of n claimed jobs (see run_claimed), published for the peers
 * that may take over its waiting jobs, and unpublished at the end.
 * Returns how many jobs ran or failed.
 */
int
jobq_batch_run(JobqJob *jobs, int n)
{
	int ran;

	isolate_jobs = batch_had_failure;
	batch_had_failure = false;
	ran = run_claimed(jobs, n);
	batch_publish(NULL, 0);
	return ran;
}

/* Start a batch's clock and publish it. */
void
jobq_batch_start(JobqJob *jobs, int n)
{
	batch_started = GetCurrentTimestamp();
	batch_publish(jobs, n);
}

/*
 * After an error that ended a round: no timeout left armed, no job
 * running, and no batch for a peer to take over (its jobs are reaped).
 */
void
jobq_batch_forget(void)
{
	forget_job_timeout();
	jobq_bgw_running_job(NULL);
	batch_publish(NULL, 0);
}
