/*-------------------------------------------------------------------------
 *
 * bgworker.h
 *	  What the SQL worker and the net worker share (bgworker.c): attaching
 *	  to the slot, connecting, transactions, stop checks, claims counted
 *	  for jobq.workers, giving jobs back at exit, reaping.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_BGWORKER_H
#define JOBQ_BGWORKER_H

#include "compat.h"
#include "jobq.h"

#include "shmem.h"

extern void jobq_bgw_connect(Datum main_arg);
extern void jobq_bgw_serve(void);
extern JobqWorkerExit jobq_bgw_should_leave(bool idle, long *sleep_ms);
extern void jobq_bgw_leave(JobqWorkerExit reason, uint64 seq, TimestampTz due);
extern const JobqSlotInfo *jobq_bgw_slot(void);
extern void jobq_bgw_begin_xact(void);
extern void jobq_bgw_commit_xact(void);
pg_noreturn extern void jobq_bgw_exit(JobqWorkerExit reason);
extern void jobq_bgw_exit_unless_installed(void);
extern void jobq_bgw_check_stop(void);
extern void jobq_bgw_holding_jobs(bool holding);
extern bool jobq_bgw_is_holding_jobs(void);
extern void jobq_bgw_running_job(const JobqJob *job);
extern void jobq_bgw_reap_orphans(bool self_too);
extern int jobq_bgw_claim(bool net, int batch_size, JobqJob **jobs);

#endif /* JOBQ_BGWORKER_H */
