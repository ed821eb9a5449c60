/*-------------------------------------------------------------------------
 *
 * shmem_int.h
 *	  The shared memory struct, private to shmem.c and shmem_worker.c.
 *
 * Every field is read and written under lock, except boot_id and
 * nworkers, which are fixed once shared memory is initialised.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_SHMEM_INT_H
#define JOBQ_SHMEM_INT_H

#include "storage/lwlock.h"

#include "shmem.h"

typedef struct JobqPause
{
	Oid dboid;
	TimestampTz until;
} JobqPause;

typedef struct JobqShared
{
	LWLock *lock;
	pid_t launcher_pid;
	Latch *launcher_latch;
	int32 boot_id;					  /* differs at each shared memory reset */
	bool after_crash;				  /* this shared memory replaced a crashed one */
	TimestampTz durable_claims_until; /* set by the launcher after a crash */
	uint32 next_token;
	bool rescan_all; /* probe every database again */
	int nprobe_requests;
	Oid probe_requests[JOBQ_PROBE_REQUESTS];
	JobqPause pauses[JOBQ_PAUSES];
	int nworkers; /* = jobq.max_workers */
	JobqWorker workers[FLEXIBLE_ARRAY_MEMBER];
} JobqShared;

extern JobqShared *jobq_shared;

#endif /* JOBQ_SHMEM_INT_H */
