/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  jobq's shared memory, reached only through these functions.
 *
 * The struct itself (JobqShared) is private to shmem.c; every function here
 * takes and releases its one LWLock itself, for one short scan or update,
 * and sets latches after releasing it (see shmem.c).  A worker's own slot
 * is the one jobq_shmem_attach_worker gave it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_SHMEM_H
#define JOBQ_SHMEM_H

#include "jobq.h"

#define JOBQ_PROBE_REQUESTS 16
#define JOBQ_PAUSES 8

typedef enum JobqWorkerState
{
	JOBQ_WORKER_FREE = 0,
	JOBQ_WORKER_STARTING,
	JOBQ_WORKER_IDLE,
	JOBQ_WORKER_CLAIMING,
	JOBQ_WORKER_RUNNING,
	JOBQ_WORKER_VACUUMING
} JobqWorkerState;

/* Why a worker ended, as it tells the launcher. */
typedef enum JobqWorkerExit
{
	JOBQ_EXIT_UNKNOWN = 0, /* died, or never said */
	JOBQ_EXIT_ABSENT,	   /* jobq is not installed in the database */
	JOBQ_EXIT_ASKED,	   /* told to stop (pause, fewer workers) */
	JOBQ_EXIT_IDLE,		   /* found nothing due for jobq.worker_idle_timeout */
	JOBQ_EXIT_YIELD		   /* gave its slot to a database waiting for one */
} JobqWorkerExit;

/* The two lanes of a database: SQL jobs, and network jobs. */
#define JOBQ_LANE_SQL 0
#define JOBQ_LANE_NET 1
#define JOBQ_LANES 2
#define JOBQ_LANE(net) ((net) ? JOBQ_LANE_NET : JOBQ_LANE_SQL)

/* What the launcher knows of a database (jobq.databases). */
typedef enum JobqDbState
{
	JOBQ_DB_UNKNOWN = 0, /* not probed yet */
	JOBQ_DB_PRESENT,	 /* jobq is installed */
	JOBQ_DB_ABSENT		 /* jobq is not installed */
} JobqDbState;

/*
 * A database's entry in the shared table of databases (jobq.max_databases
 * entries): when each lane next has work that no worker of the lane is on
 * (due, DT_NOEND: none known), and whether a lane's workers have more work
 * than they take (more: the launcher may add a worker).  Only shmem.c and
 * shmem_worker.c write it; jobq_shmem_copy_databases gives a copy.
 */
typedef struct JobqDatabase
{
	Oid dboid; /* InvalidOid: a free entry */
	JobqDbState state;
	TimestampTz due[JOBQ_LANES];
	bool more[JOBQ_LANES];
	uint64 workers_started; /* by the launcher, since the entry was made */
	TimestampTz served_at;	/* the launcher last started a worker here */
} JobqDatabase;

/*
 * A worker slot.  Only shmem.c reads or writes the slots in shared memory;
 * jobq_shmem_copy_slots gives a copy (jobq.workers).
 */
typedef struct JobqWorker
{
	bool in_use;	   /* slot allocated by the launcher */
	uint32 generation; /* bumped at each allocation */
	Oid dboid;
	bool net;	/* the net worker: network jobs only */
	int number; /* worker number within its database and lane */
	pid_t pid;	/* 0 until the worker has attached */
	Latch *latch;
	int64 token;   /* written to locked_by of claimed jobs */
	bool sleeping; /* waiting on its latch for work */
	bool stop_requested;
	bool leaving;  /* gone for good: wake-ups are for the launcher now */
	bool has_jobq; /* the worker found the extension */
	JobqWorkerExit exit_reason;
	uint64 wake_seq; /* bumped by each wake-up for its database */
	JobqWorkerState state;
	int64 job_id;

	/*
	 * Hard cancel (jobq.cancel of a running job): the job an SQL worker was
	 * signalled to stop (the signal handler compares it with the job whose
	 * handler runs), and for the net worker a count of cancellations that
	 * may concern its transfers.
	 */
	int64 cancel_job;
	uint64 cancel_seq;
	int in_flight; /* the net worker's requests under way */
	uint64 jobs_succeeded;
	uint64 jobs_failed;
	uint64 claims; /* claim calls, empty ones too */
	uint64 jobs_claimed;
	double claim_ms;	  /* time spent in them */
	uint64 claim_buffers; /* shared buffers they hit or read */
	TimestampTz started_at;
	TimestampTz state_since;

	/*
	 * An SQL worker's batch, for a peer that takes over the jobs waiting
	 * behind a slow one (batch.c): when the batch's time is up, when it was
	 * claimed (its jobs' started_at: the token alone would also match the
	 * worker's next batch), the key (precedence, priority, run_at, id) of the job it
	 * runs and of its last job, and whether a peer has taken the jobs
	 * between those keys.
	 */
	TimestampTz batch_deadline;	  /* 0: no job of the batch waits to start */
	TimestampTz batch_claimed_at; /* the batch's jobs' started_at */
	bool taken_over;
	JobqClaimKey run_key;
	JobqClaimKey last_key; /* the key of the batch's last job */

	/*
	 * The progress the job progress_job (of role progress_owner) reported
	 * last (jobq.set_progress), shown while the slot runs that job.
	 */
	int64 progress_job;
	Oid progress_owner;
	bool progress_null; /* reported a message without a percentage */
	float4 progress;
	char progress_message[JOBQ_MAX_PROGRESS_MESSAGE + 1];
	TimestampTz progress_at;
} JobqWorker;

/* What the launcher learns from a slot whose worker stopped. */
typedef struct JobqSlotEnd
{
	Oid dboid;
	bool net;
	bool has_jobq;
	JobqWorkerExit reason;
	TimestampTz started_at;
} JobqSlotEnd;

/* A worker's own slot, as it attached. */
typedef struct JobqSlotInfo
{
	int64 token;
	Oid dboid;
	int number;
	bool net;
} JobqSlotInfo;

/*
 * A worker token: the boot id in the high half, a counter in the low half
 * (jobq_queue_reap decodes it the same way in SQL).
 */
#define JOBQ_TOKEN(boot_id, counter) (((int64) (boot_id) << 32) | (uint32) (counter))

/* set-up, any backend */
extern void jobq_shmem_request(void);
extern bool jobq_shmem_available(void);
extern int jobq_shmem_nworkers(void);
extern int32 jobq_shmem_boot_id(void);
extern int64 jobq_shmem_next_token(void);
extern bool jobq_shmem_durable_claims(void);

/* wake-ups and requests, any backend */
extern void jobq_shmem_wake_on_commit(bool net, TimestampTz due);
extern void jobq_shmem_wake_all_on_commit(void);
extern void jobq_shmem_wake_external_on_commit(void);
extern void jobq_shmem_cancel_on_commit(int64 job_id);
extern void jobq_shmem_wake_database(Oid dboid, bool net, int how_many,
									 TimestampTz due);
extern void jobq_shmem_wake_launcher(void);
extern void jobq_shmem_request_probe_on_commit(void);
extern bool jobq_shmem_paused(Oid dboid);
extern void jobq_shmem_pause_database(Oid dboid, int seconds);
extern int jobq_shmem_connected_workers(Oid dboid);
extern int jobq_shmem_copy_slots(JobqWorker **copy);
extern int jobq_shmem_copy_databases(JobqDatabase **copy);
extern int jobq_shmem_lane_max(bool net);

/* the launcher */
extern void jobq_shmem_start_durable_claims(void);
extern void jobq_shmem_launcher_attach(void);
extern int jobq_shmem_take_probe_requests(Oid *requests, bool *all);
extern bool jobq_shmem_collect_slot(int slot, bool stopped, bool unhandled,
									TimestampTz now, int stale_ms,
									JobqSlotEnd *end);
extern int jobq_shmem_allocate_slot(Oid dboid, bool net, int *number,
									uint32 *generation);
extern void jobq_shmem_free_slot(int slot);
extern void jobq_shmem_trim_workers(Oid dboid, bool net, int keep);
extern int jobq_shmem_count_workers(Oid dboid, int *live, bool *has_jobq);
extern int jobq_shmem_ndatabases(void);
extern int jobq_shmem_db_register(Oid dboid);
extern void jobq_shmem_db_forget(Oid dboid);
extern void jobq_shmem_db_set_state(Oid dboid, JobqDbState state);
extern void jobq_shmem_db_due(Oid dboid, int lane, TimestampTz due);
extern void jobq_shmem_db_served(Oid dboid, int lane, TimestampTz now);
extern bool jobq_shmem_take_overflow(void);
extern void jobq_shmem_set_pool_waiting(int waiting);

/* a worker, on its own slot */
extern bool jobq_shmem_attach_worker(int slot, uint32 generation,
									 JobqSlotInfo *info);
extern void jobq_shmem_found_jobq(void);
extern void jobq_shmem_set_exit_reason(JobqWorkerExit reason);
extern void jobq_shmem_set_state(JobqWorkerState state, int64 job_id);
extern void jobq_shmem_set_progress(int64 job_id, Oid owner, bool progress_null, float4 progress,
									const char *message);
extern bool jobq_shmem_stop_requested(void);
extern int64 jobq_shmem_cancel_target(void);
extern uint64 jobq_shmem_cancel_seq(void);
extern int jobq_shmem_pool_waiting(void);
extern bool jobq_shmem_leave(uint64 seq, JobqWorkerExit reason, TimestampTz due,
							 TimestampTz sql_due);
extern uint64 jobq_shmem_wake_seq(void);
extern bool jobq_shmem_sleep_begin(uint64 seq);
extern void jobq_shmem_sleep_end(void);
extern void jobq_shmem_count_claim(int n, double ms, int64 buffers);
extern void jobq_shmem_count_jobs(uint64 succeeded, uint64 failed);
extern void jobq_shmem_report_net(int in_flight, uint64 succeeded, uint64 failed);
extern int jobq_shmem_live_tokens(bool self_too, int64 *live, uint32 *max_counter);
extern uint64 jobq_shmem_finished_in_database(Oid dboid);

/* a worker's batch and the peers that take over its waiting jobs */
extern void jobq_shmem_batch_publish(TimestampTz deadline, TimestampTz claimed_at,
									 const JobqClaimKey *last);
extern bool jobq_shmem_start_job(const JobqClaimKey *key, bool last_of_batch);
extern void jobq_shmem_batch_close(void);
extern bool jobq_shmem_round_begin(uint64 *seq);
extern TimestampTz jobq_shmem_next_take_over(void);
extern bool jobq_shmem_take_over(int64 *token, TimestampTz *claimed_at,
								 JobqClaimKey *after, JobqClaimKey *last);

#endif /* JOBQ_SHMEM_H */
