/*-------------------------------------------------------------------------
 *
 * net.c
 *	  The net worker: runs a database's network jobs (http, email, sms,
 *	  webhook) through libcurl's multi interface, many at once.
 *
 * At most one net worker per database, started by the launcher when
 * network jobs are due there (worker.c starts it as any worker, through
 * bgworker.c: attach, connect, reap orphans; then it calls jobq_net_main),
 * and leaving the pool as a SQL worker does (bgworker.c).  It claims only jobs whose kind is a network kind (the
 * column net of jobq._queue; the SQL workers claim the others), and keeps
 * up to jobq.http_max_in_flight requests in flight.  Requests stream: as
 * soon as some finish, one transaction records them and claims as many
 * new jobs as there are free places.
 *
 * Transactions, never open across network I/O:
 *	 1. record and claim: the delivery log rows and outcomes of the
 *		requests that finished since the last round (success moves the job
 *		to _done; failure retries it or kills it, see http.c), then claim
 *		jobs, count their attempt, and build each one's request (as the
 *		job's owner's rights allow, jobq._net_request) in a subtransaction:
 *		a job whose request cannot be built dies now.  Commit.
 *	 2. only then do the new requests start; the worker waits on its latch
 *		(enqueue wake-ups) and on curl's sockets in one WaitEventSet, and
 *		drives curl with curl_multi_socket_action.  A transfer that ends in a
 *		redirect its channel follows goes on at once as its next hop
 *		(jobq_http_redirect), with no transaction: it is still the same
 *		attempt.
 * A crash between 1 and the next record leaves the jobs running under a
 * dead token; the next worker reaps them and they are sent again, with the
 * same Idempotency-Key: at least once.  SIGTERM gives them back uncounted.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "bgworker.h"
#include "compat.h"
#include "guc.h"
#include "http.h"
#include "http_check.h"
#include "net.h"
#include "queue.h"
#include "queue_limits.h"
#include "shmem.h"

#define MAX_IN_FLIGHT 1000 /* the maximum of jobq.http_max_in_flight */

typedef struct NetSocket
{
	curl_socket_t fd;
	uint32 events; /* WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE */
} NetSocket;

static CURLM *multi = NULL;
static MemoryContext net_cxt = NULL;   /* transfers */
static MemoryContext round_cxt = NULL; /* one record-and-claim round */

static JobqTransfer *active[MAX_IN_FLIGHT];
static int nactive = 0;
static JobqTransfer *finished[MAX_IN_FLIGHT];
static CURLcode finished_rc[MAX_IN_FLIGHT];
static bool finished_cancelled[MAX_IN_FLIGHT]; /* aborted by jobq.cancel */
static int nfinished = 0;
static uint64 seen_cancel_seq = 0;

static NetSocket *sockets = NULL;
static int nsockets = 0;
static int max_sockets = 0;
static TimestampTz curl_timer_at = 0; /* 0: no timer */

/* ---------------------------------------------------------------------
 * curl's callbacks: which sockets to watch, and when to call back
 * ------------------------------------------------------------------- */

static int
socket_callback(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	int i;

	for (i = 0; i < nsockets; i++)
		if (sockets[i].fd == fd)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < nsockets)
			sockets[i] = sockets[--nsockets];
		return 0;
	}
	if (i == nsockets)
	{
		if (nsockets == max_sockets)
		{
			max_sockets = Max(16, max_sockets * 2);
			sockets = sockets ? repalloc(sockets, sizeof(NetSocket) * max_sockets)
							  : MemoryContextAlloc(TopMemoryContext, sizeof(NetSocket) * max_sockets);
		}
		nsockets++;
		sockets[i].fd = fd;
	}
	sockets[i].events = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		sockets[i].events |= WL_SOCKET_READABLE;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		sockets[i].events |= WL_SOCKET_WRITEABLE;
	return 0;
}

static int
timer_callback(CURLM *m, long timeout_ms, void *userp)
{
	if (timeout_ms < 0)
		curl_timer_at = 0;
	else
		curl_timer_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	return 0;
}

/* Move the transfers curl has finished from active to finished. */
static void
collect_finished(void)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		JobqTransfer *t = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode rc = msg->data.result; /* msg is gone after the removal */
		int i;

		if (msg->msg != CURLMSG_DONE)
			continue;
		(void) curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &t);
		curl_multi_remove_handle(multi, easy);
		/* a redirect of a channel that follows them: the next hop */
		if (rc == CURLE_OK && jobq_http_redirect(t))
		{
			CURLMcode mc = curl_multi_add_handle(multi, easy);

			if (mc != CURLM_OK)
				elog(ERROR, "curl_multi_add_handle failed: %s", curl_multi_strerror(mc));
			continue;
		}
		for (i = 0; i < nactive; i++)
			if (active[i] == t)
			{
				active[i] = active[--nactive];
				break;
			}
		finished[nfinished] = t;
		finished_rc[nfinished] = rc;
		finished_cancelled[nfinished] = false;
		nfinished++;
	}
}

/*
 * Hard cancel: when a running job of this database was cancelled since the
 * last look (jobq.cancel, see cancel_running in shmem.c), abort the
 * transfers of the jobs under way that were; they finish as cancelled.
 */
static void
abort_cancelled(void)
{
	static int64 ids[MAX_IN_FLIGHT];
	static int64 cancelled[MAX_IN_FLIGHT];
	uint64 seq = jobq_shmem_cancel_seq();
	int n;
	int i;
	int j;

	if (seq == seen_cancel_seq)
		return;
	seen_cancel_seq = seq;
	if (nactive == 0)
		return;
	for (i = 0; i < nactive; i++)
		ids[i] = active[i]->job.id;
	jobq_bgw_begin_xact();
	n = jobq_queue_net_cancelled(ids, nactive, cancelled);
	jobq_bgw_commit_xact();
	MemoryContextSwitchTo(TopMemoryContext);
	for (i = 0; i < n; i++)
		for (j = 0; j < nactive; j++)
			if (active[j]->job.id == cancelled[i])
			{
				JobqTransfer *t = active[j];

				curl_multi_remove_handle(multi, t->easy);
				active[j] = active[--nactive];
				finished[nfinished] = t;
				finished_rc[nfinished] = CURLE_ABORTED_BY_CALLBACK;
				finished_cancelled[nfinished] = true;
				nfinished++;
				break;
			}
}

static void
drive(curl_socket_t fd, int flags)
{
	int running;
	CURLMcode mc = curl_multi_socket_action(multi, fd, flags, &running);

	if (mc != CURLM_OK)
		elog(ERROR, "curl_multi_socket_action failed: %s", curl_multi_strerror(mc));
}

/* ---------------------------------------------------------------------
 * Record and claim
 * ------------------------------------------------------------------- */

/* Record the finished transfers; the caller is in a transaction. */
static void
record_finished(uint64 *succeeded, uint64 *failed)
{
	int64 *ok_ids = palloc(sizeof(int64) * Max(nfinished, 1));
	Jsonb **ok_results = palloc(sizeof(Jsonb *) * Max(nfinished, 1));
	int nok = 0;
	int i;

	for (i = 0; i < nfinished; i++)
	{
		JobqTransfer *t = finished[i];
		JobqTransferResult res;

		jobq_http_finish(t, finished_rc[i], &res);
		if (finished_cancelled[i])
		{
			res.outcome.ok = false;
			res.outcome.message = "the job was cancelled while its request was under way";
			res.outcome.sqlstate = "57014";
			res.final = true;
			res.delivery.outcome = "failed";
			res.delivery.error = res.outcome.message;
			res.delivery.error_sqlstate = res.outcome.sqlstate;
		}
		jobq_queue_log_delivery(&res.delivery);
		if (res.outcome.ok)
		{
			ok_ids[nok] = t->job.id;
			ok_results[nok] = res.outcome.result;
			nok++;
		}
		else
		{
			ereport(LOG,
					(errmsg("job " INT64_FORMAT " of kind \"%s\" failed on attempt %d of %d: %s",
							t->job.id, t->job.kind, t->job.attempts, t->job.max_attempts,
							res.outcome.message)));
			jobq_queue_fail(&t->job, &res.outcome, res.final, res.min_delay_ms);
			(*failed)++;
		}
	}
	jobq_queue_succeed_many(ok_ids, ok_results, nok);
	*succeeded += nok;
}

/*
 * Build a claimed job's transfer in a subtransaction.  Returns NULL, with
 * the failure recorded, when the job cannot be sent (its owner lost the
 * grant, the channel is gone, the payload is wrong): it dies.
 */
static JobqTransfer *
prepare_job(const JobqJob *job)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	JobqTransfer *volatile t = NULL;
	ErrorData *edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		Jsonb *req = jobq_queue_net_request(job->id, job->kind, job->payload,
											job->owner, job->created_at);
		JobqKind *kind = jobq_queue_lookup_kind(job->kind);

		jobq_http_check_request(req);
		t = jobq_http_prepare(job, req, kind != NULL && kind->keep_response, net_cxt);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();

	if (edata != NULL)
	{
		JobqOutcome out;
		JobqDelivery dl;

		memset(&out, 0, sizeof(out));
		out.message = edata->message;
		out.sqlstate = pstrdup(unpack_sql_state(edata->sqlerrcode));
		ereport(LOG,
				(errmsg("job " INT64_FORMAT " of kind \"%s\" cannot be sent: %s",
						job->id, job->kind, out.message)));
		jobq_http_failed_before_start(job, &out, &dl);
		jobq_queue_log_delivery(&dl);
		jobq_queue_fail(job, &out, true, 0);
		return NULL;
	}
	return t;
}

/*
 * One round: record what finished, claim up to nclaim jobs and build their
 * transfers, commit, then start them.  Returns how many were claimed.
 * *next_due is set when fewer were claimed than asked for.
 */
static int
net_round(int nclaim, TimestampTz *next_due)
{
	JobqJob *jobs = NULL;
	JobqTransfer **ready;
	int nready = 0;
	int n = 0;
	uint64 succeeded = 0;
	uint64 failed = 0;
	int i;

	MemoryContextSwitchTo(round_cxt);
	ready = palloc(sizeof(JobqTransfer *) * Max(nclaim, 1));

	jobq_bgw_begin_xact();
	MemoryContextSwitchTo(round_cxt);
	jobq_bgw_exit_unless_installed();
	if (nfinished > 0)
		record_finished(&succeeded, &failed);
	if (nclaim > 0)
	{
		jobq_bgw_holding_jobs(true);
		n = jobq_bgw_claim(true, nclaim, &jobs);
		if (n < nclaim)
			*next_due = jobq_limits_due(jobq_queue_next_due(true));
		for (i = 0; i < n; i++)
		{
			JobqTransfer *t = prepare_job(&jobs[i]);

			if (t != NULL)
				ready[nready++] = t;
			else
				failed++;
		}
	}
	PG_TRY();
	{
		jobq_bgw_commit_xact();
	}
	PG_CATCH();
	{
		/* nothing was claimed after all */
		for (i = 0; i < nready; i++)
			jobq_http_free(ready[i]);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(round_cxt);

	for (i = 0; i < nfinished; i++)
		jobq_http_free(finished[i]);
	nfinished = 0;

	for (i = 0; i < nready; i++)
	{
		CURLMcode mc = curl_multi_add_handle(multi, ready[i]->easy);

		if (mc != CURLM_OK)
			elog(ERROR, "curl_multi_add_handle failed: %s", curl_multi_strerror(mc));
		active[nactive++] = ready[i];
	}
	jobq_bgw_holding_jobs(nactive > 0);
	jobq_shmem_report_net(nactive, succeeded, failed);
	MemoryContextReset(round_cxt);
	return n;
}

/*
 * After an unexpected error: drop every transfer, and return this worker's
 * jobs to pending (attempt counted; they are sent again).
 */
static void
net_recover(void)
{
	int i;

	MemoryContextSwitchTo(TopMemoryContext);
	EmitErrorReport();
	FlushErrorState();
	AbortOutOfAnyTransaction();
	for (i = 0; i < nactive; i++)
	{
		curl_multi_remove_handle(multi, active[i]->easy);
		jobq_http_free(active[i]);
	}
	nactive = 0;
	for (i = 0; i < nfinished; i++)
		jobq_http_free(finished[i]);
	nfinished = 0;
	MemoryContextReset(round_cxt);

	jobq_bgw_begin_xact();
	jobq_bgw_exit_unless_installed();
	jobq_bgw_commit_xact();
	jobq_bgw_reap_orphans(true);
	jobq_bgw_holding_jobs(false);
	jobq_shmem_report_net(0, 0, 0);
}

/* Milliseconds from now until t, at least 0. */
static long
ms_until(TimestampTz t)
{
	TimestampTz now = GetCurrentTimestamp();

	if (t <= now)
		return 0;
	return (long) Min((t - now) / 1000 + 1, (TimestampTz) LONG_MAX);
}

/* Wait for the latch, curl's sockets or a timeout, and drive curl. */
static void
net_wait(long timeout_ms)
{
	WaitEventSet *set;
	WaitEvent *events;
	int nev;
	int i;
	bool timer_due;

	if (curl_timer_at != 0)
		timeout_ms = Min(timeout_ms, ms_until(curl_timer_at));

	set = jobq_compat_wait_event_set(2 + nsockets);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < nsockets; i++)
		if (sockets[i].events != 0)
			AddWaitEventToSet(set, sockets[i].events, sockets[i].fd, NULL, NULL);
	events = palloc(sizeof(WaitEvent) * (2 + nsockets));

	/* statistics at most once a second while busy, all of them before idling */
	pgstat_report_stat(nactive == 0);
	nev = WaitEventSetWait(set, timeout_ms, events, 2 + nsockets, PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);

	for (i = 0; i < nev; i++)
	{
		int flags = 0;

		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			continue;
		}
		if (events[i].events & WL_SOCKET_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events[i].events & WL_SOCKET_WRITEABLE)
			flags |= CURL_CSELECT_OUT;
		if (flags)
			drive(events[i].fd, flags);
	}
	pfree(events);

	timer_due = curl_timer_at != 0 && curl_timer_at <= GetCurrentTimestamp();
	if (timer_due)
	{
		curl_timer_at = 0;
		drive(CURL_SOCKET_TIMEOUT, 0);
	}
	collect_finished();
}

void
jobq_net_main(void)
{
	bool more = true; /* pending jobs may be ready */
	TimestampTz next_due = 0;
	uint64 seen_seq = 0;
	bool yielding = false; /* another database waits for this slot */

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		elog(ERROR, "curl_global_init failed");
	multi = curl_multi_init();
	if (multi == NULL)
		elog(ERROR, "curl_multi_init failed");
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_callback);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_callback);

	net_cxt = AllocSetContextCreate(TopMemoryContext, "jobq net transfers",
									ALLOCSET_DEFAULT_SIZES);
	round_cxt = AllocSetContextCreate(TopMemoryContext, "jobq net round",
									  ALLOCSET_DEFAULT_SIZES);
	jobq_shmem_report_net(0, 0, 0);

	for (;;)
	{
		uint64 seq;
		int room;
		long timeout_ms;

		jobq_bgw_check_stop();
		PG_TRY();
		{
			abort_cancelled();
		}
		PG_CATCH();
		{
			net_recover();
			pg_usleep(1000000L);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		seq = jobq_shmem_wake_seq();
		if (seq != seen_seq)
		{
			more = true; /* a job was enqueued */
			seen_seq = seq;
		}
		if (!more && next_due != DT_NOEND && next_due <= GetCurrentTimestamp())
			more = true;

		/*
		 * Finished requests free their places (collect_finished), and a
		 * retried one may be due soon: a round that records also claims.
		 */
		room = yielding ? 0 : Min(jobq_http_max_in_flight, MAX_IN_FLIGHT) - nactive;
		if ((room > 0 && more) || nfinished > 0)
		{
			PG_TRY();
			{
				int want = Max(0, Min(room, jobq_batch_size));

				next_due = DT_NOEND;
				more = (net_round(want, &next_due) == want);
			}
			PG_CATCH();
			{
				net_recover();
				more = true;
				pg_usleep(1000000L);
			}
			PG_END_TRY();
			MemoryContextSwitchTo(TopMemoryContext);
			continue; /* start the new transfers at once */
		}

		/* nothing to record, and no room or no work: wait */
		timeout_ms = jobq_poll_interval;
		if (!more && next_due != DT_NOEND)
			timeout_ms = Min(timeout_ms, ms_until(next_due));
		if (nactive == 0 && !more && jobq_shmem_wake_seq() != seen_seq)
			continue;

		/* leave the pool: idle, or after the last transfer when yielding */
		if (yielding && nactive == 0)
			jobq_bgw_leave(JOBQ_EXIT_YIELD, seen_seq, 0);
		switch (jobq_bgw_should_leave(nactive == 0 && !more, &timeout_ms))
		{
			case JOBQ_EXIT_IDLE:
				jobq_bgw_leave(JOBQ_EXIT_IDLE, seen_seq, next_due);
				continue; /* a wake-up came */
			case JOBQ_EXIT_YIELD:
				yielding = true;
				break;
			default:
				break;
		}
		PG_TRY();
		{
			net_wait(timeout_ms);
		}
		PG_CATCH();
		{
			net_recover();
			pg_usleep(1000000L);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		if (nactive == 0 && nfinished == 0 && !more && timeout_ms == jobq_poll_interval)
			more = true; /* poll: a job of a prepared transaction, say */
	}
}
