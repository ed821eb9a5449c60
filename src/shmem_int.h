/*-------------------------------------------------------------------------
 *
 * shmem_int.h
 *	  The shared memory struct, private to shmem.c and shmem_worker.c.
 *
 * Every field is read and written under lock, except boot_id, nworkers,
 * ndatabases and databases_off, which are fixed once shared memory is
 * initialised.  The table of databases follows the worker slots.
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
	bool overflow_due;	/* work in a database without an entry */
	int pool_waiting;	/* lanes with due work and no worker, for want of a slot */
	int ndatabases;		/* = jobq.max_databases */
	Size databases_off; /* where the table of databases starts */
	int nworkers;		/* = jobq.max_workers */
	JobqWorker workers[FLEXIBLE_ARRAY_MEMBER];
} JobqShared;

extern JobqShared *jobq_shared;

#define JOBQ_DATABASES() \
	((JobqDatabase *) ((char *) jobq_shared + jobq_shared->databases_off))

extern JobqDatabase *jobq_shmem_db_entry(Oid dboid);
extern int jobq_shmem_lane_live(Oid dboid, bool net, const JobqWorker *except);

#endif /* JOBQ_SHMEM_INT_H */
