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

#endif /* JOBQ_CLAIM_H */
