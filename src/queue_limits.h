/*-------------------------------------------------------------------------
 *
 * queue_limits.h
 *	  Queues' limits, pauses and running counts, kept at claim time in
 *	  shared memory (queue_limits.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_QUEUE_LIMITS_H
#define JOBQ_QUEUE_LIMITS_H

#include "jobq.h"

/* One queue of a database as jobq._queue_state() shows it. */
typedef struct JobqQueueState
{
	char name[JOBQ_MAX_QUEUE_NAME + 1];
	char ckey[JOBQ_MAX_JOB_KEY + 1]; /* a concurrency key of the queue, or "" */
	int32 running;					 /* jobs claimed and not finished or given back */
	TimestampTz next_start;			 /* a rate-limited queue's next start, or 0 */
} JobqQueueState;

/* set-up, from _PG_init while preloading */
extern void jobq_limits_request(void);

/* jobq._queues changed: every backend reads it again once this commits */
extern void jobq_limits_changed_on_commit(void);

/* the precedence of a queue's jobs, for their rows */
extern int32 jobq_limits_precedence(const char *queue);

/* a claim (claim.c) by one of workers claiming alike: begin, admit each row before taking it, end */
extern void jobq_limits_claim_begin(int workers);
extern bool jobq_limits_admit(const char *queue, int len, const char *ckey, int clen,
							  TimestampTz now);
extern void jobq_limits_unadmit(void);
extern void jobq_limits_claim_end(void);
extern TimestampTz jobq_limits_due(TimestampTz due);
extern bool jobq_limits_left_share(void);

/* jobs that left the running state in this transaction (queue.c) */
extern void jobq_limits_release(const char *queue, int len, text *ckey);

/* the leases of external jobs taken before this boot (queue_external.c) */
extern bool jobq_limits_leases_adopted(void);
extern void jobq_limits_adopt_leases(char *const *queues, char *const *ckeys, int n);

/* jobq._queue_state() */
extern int jobq_limits_copy(Oid dboid, JobqQueueState **copy);

#endif /* JOBQ_QUEUE_LIMITS_H */
