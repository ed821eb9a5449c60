/*-------------------------------------------------------------------------
 *
 * external_wait.h
 *	  Backends that wait for jobs of external kinds (CALL jobq.claim_wait),
 *	  and the wake-ups sent to them when such jobs may be claimed
 *	  (external_wait.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_EXTERNAL_WAIT_H
#define JOBQ_EXTERNAL_WAIT_H

#include "jobq.h"

/* set-up, from _PG_init while preloading */
extern void jobq_external_wait_request(void);

/* whether waiting is possible (the library was preloaded) */
extern bool jobq_external_can_wait(void);

/* this backend waits for the current database's external jobs, or stops */
extern void jobq_external_wait_begin(void);
extern void jobq_external_wait_end(void);

/* wake the waiters of a database now (at commit: jobq_shmem_wake_external_on_commit) */
extern void jobq_external_wake(Oid dboid);

#endif /* JOBQ_EXTERNAL_WAIT_H */
