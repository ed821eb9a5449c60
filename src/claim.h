/*-------------------------------------------------------------------------
 *
 * claim.h
 *	  Taking ready jobs, without SPI (claim.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_CLAIM_H
#define JOBQ_CLAIM_H

#include "jobq.h"

extern int jobq_queue_claim(int64 token, bool net, int batch_size, JobqJob **jobs);

/*
 * A claim of jobs of external kinds (jobq.claim): of the queues named (all
 * when nqueues is 0; text datums), of owners whose privileges caller has,
 * leased until lease_until under the lease's token.
 */
typedef struct JobqExternalClaim
{
	int64 token;
	Datum *queues;
	int nqueues;
	Oid caller;
	TimestampTz lease_until;
} JobqExternalClaim;

extern int jobq_queue_claim_external(const JobqExternalClaim *spec, int max_jobs,
									 JobqJob **jobs);

#endif /* JOBQ_CLAIM_H */
