/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  Every SQL statement jobq runs against its job, kind, channel and
 *	  delivery tables (the queue_*.c files): callers must be in a
 *	  transaction; values come back in the caller's memory context.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_QUEUE_H
#define JOBQ_QUEUE_H

#include "jobq.h"

/* kinds and the kind cache */
extern JobqKind *jobq_queue_lookup_kind(const char *name);
extern void jobq_queue_register_kind(const char *kind, const char *handler,
									 const char *queue, int32 max_attempts,
									 bool max_attempts_null, Interval *timeout,
									 int32 priority, Oid registrar);
extern bool jobq_queue_unregister_kind(const char *kind);
extern void jobq_queue_kinds_changed(void);

/*
 * What an enqueue with a job_key does when a live job of the same owner
 * holds the key: keep that job as it is (keep), or, when it is pending and
 * of the same kind, give it the new payload and run time (debounce) or the
 * new payload only (throttle).  Its id is returned in each case.
 */
typedef enum JobqKeyMode
{
	JOBQ_KEY_KEEP,
	JOBQ_KEY_DEBOUNCE,
	JOBQ_KEY_THROTTLE
} JobqKeyMode;

#define JOBQ_KEY_MODES 3

/* enqueue */
extern int64 jobq_queue_insert(const JobqNewJob *job, Jsonb *payload,
							   const char *job_key, JobqKeyMode mode);
extern void jobq_queue_insert_many(const JobqNewJob *job, Datum payloads,
								   Datum job_keys, bool have_keys,
								   Datum concurrency_keys, bool have_concurrency_keys,
								   int64 **ids, int *nids);

/* the workers' statements */
extern void jobq_queue_succeed_many(const int64 *ids, Jsonb *const *results, int n);
extern void jobq_queue_save_progress(int64 job_id, bool percent_null, float4 percent,
									 const char *message);
extern void jobq_queue_fail(const JobqJob *job, const JobqOutcome *outcome,
							bool final, double min_delay_ms);
extern void jobq_queue_release_uncounted(int64 token, const int64 *ids, int nids);
extern int64 jobq_queue_release_after(int64 token, TimestampTz claimed_at,
									  const JobqClaimKey *after,
									  const JobqClaimKey *last);
extern int64 jobq_queue_reap(int64 *live_tokens, int nlive, int32 boot_id,
							 uint32 max_counter);
extern TimestampTz jobq_queue_next_due(bool net);
extern TimestampTz jobq_queue_next_prune(void);
extern int64 jobq_queue_prune(void);

/* network jobs */
extern Jsonb *jobq_queue_net_request(int64 job_id, const char *kind, Jsonb *payload,
									 Oid owner, TimestampTz created_at);
extern void jobq_queue_log_delivery(const JobqDelivery *d);
extern int jobq_queue_net_cancelled(const int64 *ids, int n, int64 *cancelled);

/* administration: whether a caller may see a job; cancel and retry one job */
extern bool jobq_queue_visible(int64 job_id, Oid caller);
extern int jobq_queue_cancel(int64 job_id, Oid caller);
extern int jobq_queue_retry(int64 job_id, Oid caller);

/*
 * Bulk administration: the jobs a filter selects, among those of roles the
 * caller is a member of.  A NULL member matches every job; since and until
 * bound the job's finished_at (created_at for pending jobs) as
 * [since, until).  status is used by jobq_queue_purge_jobs only.
 */
typedef struct JobqJobFilter
{
	const char *queue;
	const char *kind;
	Oid owner; /* InvalidOid: any */
	const char *sqlstate;
	TimestampTz since; /* DT_NOBEGIN: no lower bound */
	TimestampTz until; /* DT_NOEND: no upper bound */
	const char *status;
} JobqJobFilter;

extern int64 jobq_queue_retry_jobs(const JobqJobFilter *filter, Oid caller);
extern int64 jobq_queue_cancel_jobs(const JobqJobFilter *filter, Oid caller);
extern int64 jobq_queue_purge_jobs(const JobqJobFilter *filter, Oid caller);

/* results of jobq_queue_cancel / jobq_queue_retry */
#define JOBQ_NOT_FOUND 0
#define JOBQ_DONE 1
#define JOBQ_WRONG_STATE 2
#define JOBQ_STOPPING 3 /* jobq_queue_cancel: a running job, asked to stop */

#endif /* JOBQ_QUEUE_H */
