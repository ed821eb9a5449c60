/*-------------------------------------------------------------------------
 *
 * maint.h
 *	  Worker 0's pruning and vacuuming of jobq's tables (maint.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_MAINT_H
#define JOBQ_MAINT_H

extern void jobq_maint_prune(void);
extern long jobq_maint_vacuum(void);
extern void jobq_maint_truncate(bool idle, long *sleep_ms);
extern void jobq_maint_before_leaving(void);

#endif /* JOBQ_MAINT_H */
