/*-------------------------------------------------------------------------
 *
 * queue_external.h
 *	  The statements of the external worker API (queue_external.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_QUEUE_EXTERNAL_H
#define JOBQ_QUEUE_EXTERNAL_H

#include "jobq.h"

/* a held job as a heartbeat found it */
typedef struct JobqLeaseState
{
	int64 id;
	bool cancel_requested;
} JobqLeaseState;

extern int64 jobq_queue_lease_token(void);
extern void jobq_queue_adopt_leases(void);
extern int64 jobq_queue_expire_leases(void);
extern TimestampTz jobq_queue_external_next(Datum queues, bool have_queues, Oid caller,
											TimestampTz *lease_end);
extern bool jobq_queue_external_complete(int64 job_id, int64 token, Oid caller,
										 Jsonb *result);
extern const char *jobq_queue_external_fail(int64 job_id, int64 token, Oid caller,
											const char *error, const char *context,
											double delay_ms, bool final);
extern const char *jobq_queue_external_snooze(int64 job_id, int64 token, Oid caller,
											  double delay_ms);
extern int jobq_queue_external_heartbeat(const int64 *ids, int n, int64 token, Oid caller,
										 TimestampTz until, JobqLeaseState **held);

#endif /* JOBQ_QUEUE_EXTERNAL_H */
