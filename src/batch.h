/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  A SQL worker's batch of claimed jobs, run and recorded (batch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_BATCH_H
#define JOBQ_BATCH_H

#include "jobq.h"

extern void jobq_batch_init(MemoryContext cxt);
extern void jobq_batch_start(JobqJob *jobs, int n);
extern int jobq_batch_run(JobqJob *jobs, int n);
extern void jobq_batch_take_over(void);
extern void jobq_batch_forget(void);
extern int64 jobq_batch_current_job(void);
extern void jobq_batch_report_progress(bool percent_null, float4 percent, const char *message);

#endif /* JOBQ_BATCH_H */
