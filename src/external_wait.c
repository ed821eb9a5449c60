/*-------------------------------------------------------------------------
 *
 * external_wait.c
 *	  Backends waiting for jobs of external kinds, and their wake-ups.
 *
 * CALL jobq.claim_wait waits for a job without holding a snapshot and
 * without LISTEN (so it works behind a pooler in transaction mode): it
 * commits, sleeps on its own latch, and claims again when woken.  What may
 * make an external job claimable wakes the waiting backends of its
 * database when its transaction commits, as an enqueue wakes jobq's own
 * workers: an enqueue of an external job, a job given back or failed to
 * run again, a retry, a place freed in a limited queue, a change of the
 * queues' settings.  A waiter also wakes by itself when the next external
 * job is due or the next lease ends (external.c computes when).
 *
 * Shared memory holds one word per process slot (the process's number):
 * the database it waits in, or InvalidOid, written only by the process
 * itself; and a count of waiters, so that a wake-up with nobody waiting
 * costs one atomic read.  A waiter publishes its database before it looks
 * for jobs, and a waker commits before it reads the words, so a job
 * committed while the waiter looked is either seen by it or wakes it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"

#include "compat.h"
#include "external_wait.h"

typedef struct WaitShared
{
	pg_atomic_uint32 nwaiting;
	int nslots;
	pg_atomic_uint32 dboid[FLEXIBLE_ARRAY_MEMBER]; /* by process number */
} WaitShared;

static WaitShared *waits = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static bool waiting = false;
static bool exit_callback_registered = false;

static int
wait_slots(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS;
}

static Size
wait_size(void)
{
	return add_size(offsetof(WaitShared, dboid),
					mul_size(sizeof(pg_atomic_uint32), wait_slots()));
}

static void
wait_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(wait_size());
}

static void
wait_shmem_startup(void)
{
	bool found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	waits = ShmemInitStruct("jobq_external_waits", wait_size(), &found);
	if (!found)
	{
		waits->nslots = wait_slots();
		pg_atomic_init_u32(&waits->nwaiting, 0);
		for (int i = 0; i < waits->nslots; i++)
			pg_atomic_init_u32(&waits->dboid[i], InvalidOid);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
jobq_external_wait_request(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = wait_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = wait_shmem_startup;
}

bool
jobq_external_can_wait(void)
{
	return waits != NULL && jobq_compat_my_procno() < waits->nslots;
}

static void wait_at_exit(int code, Datum arg);

/*
 * From now on, wake-ups for the current database's external jobs set this
 * backend's latch.  The caller looks for jobs after this, then waits.
 */
void
jobq_external_wait_begin(void)
{
	if (waiting || !jobq_external_can_wait())
		return;
	if (!exit_callback_registered)
	{
		before_shmem_exit(wait_at_exit, (Datum) 0);
		exit_callback_registered = true;
	}
	pg_atomic_write_u32(&waits->dboid[jobq_compat_my_procno()], MyDatabaseId);
	pg_atomic_fetch_add_u32(&waits->nwaiting, 1);
	waiting = true;
	/* published before the caller's look for jobs */
	pg_memory_barrier();
}

void
jobq_external_wait_end(void)
{
	if (!waiting)
		return;
	pg_atomic_write_u32(&waits->dboid[jobq_compat_my_procno()], InvalidOid);
	pg_atomic_fetch_sub_u32(&waits->nwaiting, 1);
	waiting = false;
}

/* A backend that exits while it waits (an error, a terminated session). */
static void
wait_at_exit(int code, Datum arg)
{
	jobq_external_wait_end();
}

void
jobq_external_wake(Oid dboid)
{
	if (waits == NULL)
		return;
	/* after the caller's commit: a waiter published before it looked */
	pg_memory_barrier();
	if (pg_atomic_read_u32(&waits->nwaiting) == 0)
		return;
	for (int i = 0; i < waits->nslots; i++)
		if (pg_atomic_read_u32(&waits->dboid[i]) == dboid)
			SetLatch(&GetPGProcByNumber(i)->procLatch);
}
