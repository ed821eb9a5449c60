/*-------------------------------------------------------------------------
 *
 * jobq.h
 *	  Declarations shared by the files of jobq.
 *
 * Shared memory holds one JobqShared struct: a slot per worker, a slot per
 * database being served, and the launcher's identity.  One LWLock
 * (JobqShared->lock) guards all of it; hold it only for short scans and
 * updates, never across I/O or a transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_H
#define JOBQ_H

#include "postgres.h"

#include "access/htup.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"

/*
 * An interval in milliseconds, a month counted as 30 days: how jobq reads
 * the timeouts it is given (api.c) and the ones it stored (claim.c).  It
 * cannot overflow: an interval's fields give at most about 5.8e18 ms.
 */
static inline int64
jobq_interval_ms(const Interval *iv)
{
	return iv->time / 1000 +
		(int64) iv->day * 86400000 +
		(int64) iv->month * 30 * 86400000;
}

/* ---- guc.c ---- */
extern int	jobq_workers;
extern int	jobq_max_workers;
extern int	jobq_poll_interval;
extern int	jobq_batch_size;
extern int	jobq_default_max_attempts;
extern int	jobq_default_timeout;
extern int	jobq_max_payload_size;
extern int	jobq_retry_base_delay;
extern int	jobq_retry_max_delay;
extern int	jobq_retention;
extern int	jobq_dead_retention;
extern int	jobq_prune_interval;
extern int	jobq_vacuum_threshold;
extern int	jobq_http_max_in_flight;
extern int	jobq_http_timeout;
extern int	jobq_http_connect_timeout;
extern int	jobq_http_max_response_size;
extern char *jobq_http_allowed_hosts;
extern char *jobq_webhook_signing_key;
extern int	jobq_delivery_retention;

extern void jobq_guc_define(void);

/* ---- shmem.c ---- */
#define JOBQ_MAX_QUEUE_NAME 63	/* bytes of a queue or kind name */
#define JOBQ_MAX_JOB_KEY 255		/* bytes of a job_key */
/* a job's or a kind's timeout: what STATEMENT_TIMEOUT can arm (~24.8 days) */
#define JOBQ_MAX_TIMEOUT_MS INT_MAX
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
	JOBQ_EXIT_UNKNOWN = 0,		/* died, or never said */
	JOBQ_EXIT_ABSENT,			/* jobq is not installed in the database */
	JOBQ_EXIT_ASKED				/* told to stop (pause, fewer workers) */
} JobqWorkerExit;

typedef struct JobqWorker
{
	bool		in_use;			/* slot allocated by the launcher */
	uint32		generation;		/* bumped at each allocation */
	Oid			dboid;
	bool		net;			/* the net worker: network jobs only */
	int			number;			/* worker number within its database and lane */
	pid_t		pid;			/* 0 until the worker has attached */
	Latch	   *latch;
	int64		token;			/* written to locked_by of claimed jobs */
	bool		sleeping;		/* waiting on its latch for work */
	bool		stop_requested;
	bool		has_jobq;		/* the worker found the extension */
	JobqWorkerExit exit_reason;
	uint64		wake_seq;		/* bumped by each wake-up for its database */
	JobqWorkerState state;
	int64		job_id;
	int			in_flight;		/* the net worker's requests under way */
	uint64		jobs_succeeded;
	uint64		jobs_failed;
	uint64		claims;			/* claim calls, empty ones too */
	uint64		jobs_claimed;
	double		claim_ms;		/* time spent in them */
	uint64		claim_buffers;	/* shared buffers they hit or read */
	TimestampTz started_at;
	TimestampTz state_since;

	/*
	 * An SQL worker's batch, for a peer that takes over the jobs waiting
	 * behind a slow one (worker.c): when the batch's time is up, when it was
	 * claimed (its jobs' started_at: the token alone would also match the
	 * worker's next batch), the key (priority, run_at, id) of the job it
	 * runs and of its last job, and whether a peer has taken the jobs
	 * between those keys.
	 */
	TimestampTz batch_deadline; /* 0: no job of the batch waits to start */
	TimestampTz batch_claimed_at;	/* the batch's jobs' started_at */
	bool		taken_over;
	int32		run_priority;
	TimestampTz run_run_at;
	int64		run_id;
	int32		last_priority;	/* the key of the batch's last job */
	TimestampTz last_run_at;
	int64		last_id;
} JobqWorker;

typedef struct JobqPause
{
	Oid			dboid;
	TimestampTz until;
} JobqPause;

typedef struct JobqShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	int32		boot_id;		/* differs at each shared memory reset */
	bool		after_crash;	/* this shared memory replaced a crashed one */
	TimestampTz durable_claims_until;	/* set by the launcher after a crash */
	uint32		next_token;
	bool		rescan_all;		/* probe every database again */
	int			nprobe_requests;
	Oid			probe_requests[JOBQ_PROBE_REQUESTS];
	JobqPause	pauses[JOBQ_PAUSES];
	int			nworkers;		/* = jobq.max_workers */
	JobqWorker	workers[FLEXIBLE_ARRAY_MEMBER];
} JobqShared;

extern JobqShared *jobq_shared;

/*
 * A worker token: the boot id in the high half, a counter in the low half
 * (jobq_queue_reap decodes it the same way in SQL).
 */
#define JOBQ_TOKEN(boot_id, counter) (((int64) (boot_id) << 32) | (uint32) (counter))

extern void jobq_shmem_request(void);
extern bool jobq_shmem_durable_claims(void);
extern void jobq_shmem_start_durable_claims(void);
extern bool jobq_shmem_available(void);
extern int64 jobq_shmem_next_token(void);
extern void jobq_shmem_wake_on_commit(bool net);
extern void jobq_shmem_wake_all_on_commit(void);
extern void jobq_shmem_wake_database(Oid dboid, bool net, int how_many);
extern void jobq_shmem_wake_launcher(void);
extern void jobq_shmem_request_probe_on_commit(void);
extern bool jobq_shmem_paused(Oid dboid);
extern void jobq_shmem_pause_database(Oid dboid, int seconds);

/* ---- launcher.c / worker.c ---- */
extern void jobq_launcher_register(void);
extern PGDLLEXPORT void jobq_launcher_main(Datum main_arg);
extern PGDLLEXPORT void jobq_worker_main(Datum main_arg);
extern int64 jobq_worker_current_job(void);

/* what worker.c shares with the net worker's loop in net.c */
extern void jobq_worker_begin_xact(void);
extern void jobq_worker_commit_xact(void);
extern void jobq_worker_exit_unless_installed(void);
extern void jobq_worker_check_stop(void);
extern void jobq_worker_holding_jobs(bool holding);
extern void jobq_worker_reap_own(void);
extern void jobq_worker_report(int in_flight, uint64 succeeded, uint64 failed);
extern uint64 jobq_worker_wake_seq(void);
extern void jobq_net_main(JobqWorker *me);

/* ---- utility.c ---- */
extern void jobq_utility_install(void);

/* ---- queue.c: every SPI statement of jobq ---- */

/* The caller's identity while jobq runs a statement as the bootstrap superuser. */
typedef struct JobqSuperuser
{
	Oid			save_userid;
	int			save_sec_context;
} JobqSuperuser;

extern void jobq_superuser_begin(JobqSuperuser *su);
extern void jobq_superuser_end(const JobqSuperuser *su);

/* A kind as stored in jobq._kinds. */
typedef struct JobqKind
{
	char		name[NAMEDATALEN];
	bool		builtin;
	Oid			handler;		/* InvalidOid for built-in kinds */
	bool		handler_returns_void;
	char		queue[JOBQ_MAX_QUEUE_NAME + 1];
	int32		priority;
	int32		max_attempts;	/* 0 = not set */
	int64		timeout_ms;		/* 0 = not set */
	bool		net;			/* run by the net worker */
} JobqKind;

/* A claimed job, as a worker runs it. */
typedef struct JobqJob
{
	int64		id;
	char	   *kind;
	Jsonb	   *payload;
	Oid			owner;
	int32		priority;
	TimestampTz run_at;
	int32		attempts;
	int32		max_attempts;
	int64		timeout_ms;
	TimestampTz created_at;
	TimestampTz claimed_at;		/* the claim's time, written to started_at */
} JobqJob;

/* What a handler left behind. */
typedef struct JobqOutcome
{
	bool		ok;
	Jsonb	   *result;			/* may be NULL */
	char	   *message;		/* on error */
	char	   *sqlstate;
	char	   *context;
} JobqOutcome;

/* Values for a new job, already checked. */
typedef struct JobqNewJob
{
	const char *kind;
	const char *queue;
	int32		priority;
	TimestampTz run_at;
	int32		max_attempts;
	int64		timeout_ms;		/* 0 = none */
	Oid			owner;
	bool		net;			/* a network kind */
} JobqNewJob;

extern JobqKind *jobq_queue_lookup_kind(const char *name);
extern int64 jobq_queue_insert(const JobqNewJob *job, Jsonb *payload,
							   const char *job_key);
extern void jobq_queue_insert_many(const JobqNewJob *job, Datum payloads,
								   Datum job_keys, bool have_keys,
								   int64 **ids, int *nids);
extern void jobq_queue_succeed_many(const int64 *ids, Jsonb *const *results, int n);
extern void jobq_queue_fail(const JobqJob *job, const JobqOutcome *outcome,
							bool final, double min_delay_ms);
extern void jobq_queue_release_uncounted(int64 token, const int64 *ids, int nids);
/* A job's place in the claim order. */
typedef struct JobqClaimKey
{
	int32		priority;
	TimestampTz run_at;
	int64		id;
} JobqClaimKey;

extern int64 jobq_queue_release_after(int64 token, TimestampTz claimed_at,
									  const JobqClaimKey *after,
									  const JobqClaimKey *last);
extern int64 jobq_queue_reap(int64 *live_tokens, int nlive, int32 boot_id,
							 uint32 max_counter);
extern TimestampTz jobq_queue_next_due(bool net);
extern int64 jobq_queue_prune(void);
extern int	jobq_queue_cancel(int64 job_id, Oid caller);
extern int	jobq_queue_retry(int64 job_id, Oid caller);
extern void jobq_queue_register_kind(const char *kind, const char *handler,
									 const char *queue, int32 max_attempts,
									 bool max_attempts_null, Interval *timeout,
									 int32 priority, Oid registrar);
extern bool jobq_queue_unregister_kind(const char *kind);

/* One attempt of a network job, for the delivery log. */
typedef struct JobqDelivery
{
	int64		job_id;
	int32		attempt;
	const char *kind;
	Oid			owner;
	const char *channel;		/* may be NULL */
	const char *recipient;		/* may be NULL */
	const char *url;			/* without user info or query */
	int32		status_code;	/* 0: no response */
	const char *outcome;		/* delivered, retry or failed */
	const char *error;			/* may be NULL */
	const char *error_sqlstate; /* may be NULL */
	const char *response;		/* may be NULL */
	double		duration_ms;
	TimestampTz started_at;
	TimestampTz finished_at;
} JobqDelivery;

extern Jsonb *jobq_queue_net_request(int64 job_id, const char *kind, Jsonb *payload,
									 Oid owner, TimestampTz created_at);
extern void jobq_queue_log_delivery(const JobqDelivery *d);

/* results of jobq_queue_cancel / jobq_queue_retry */
#define JOBQ_NOT_FOUND		0
#define JOBQ_DONE			1
#define JOBQ_WRONG_STATE	2

/* ---- qrel.c: jobq._queue written without the executor ---- */
typedef struct JobqQueueColumns
{
	AttrNumber	id;
	AttrNumber	kind;
	AttrNumber	queue;
	AttrNumber	payload;
	AttrNumber	priority;
	AttrNumber	status;
	AttrNumber	attempts;
	AttrNumber	max_attempts;
	AttrNumber	run_at;
	AttrNumber	timeout;
	AttrNumber	owner;
	AttrNumber	net;
	AttrNumber	created_at;
	AttrNumber	started_at;
	AttrNumber	locked_by;
	AttrNumber	worker_pid;
	AttrNumber	cancel_requested;
	Oid			id_sequence;	/* the identity sequence of id */
} JobqQueueColumns;

/* where the index entries of rows written without the executor go */
typedef struct JobqIndexer
{
	struct EState *estate;		/* NULL until the first row */
	struct ResultRelInfo *rri;
	struct TupleTableSlot *slot;
} JobqIndexer;

extern const JobqQueueColumns *jobq_qrel_columns(Relation rel);
extern Oid	jobq_qrel_relid(const char *name);
extern struct List *jobq_qrel_index_row(JobqIndexer *ix, Relation rel,
										HeapTuple tuple, bool update);
extern void jobq_qrel_index_end(JobqIndexer *ix);
extern int64 jobq_qrel_insert(const JobqNewJob *job, Jsonb *payload);

/* ---- claim.c: taking ready jobs, without SPI ---- */
extern int	jobq_queue_claim(int64 token, bool net, int batch_size, JobqJob **jobs);
/* worker.c: a claim for this worker, counted in jobq.workers */
extern int	jobq_worker_claim(bool net, int batch_size, JobqJob **jobs);

/* ---- handlers.c ---- */
extern void jobq_handler_check(Oid handler, bool *returns_void);
extern void jobq_handler_check_payload(const char *kind, Jsonb *payload);
extern Jsonb *jobq_handler_run(const JobqJob *job, const JobqKind *kind);
extern bool jobq_handler_restricted(const JobqKind *kind);

/* ---- http.c: a network job's request, checked and made into a transfer ---- */
typedef struct JobqTransfer JobqTransfer;

extern void jobq_http_check_request(Jsonb *request);

#endif							/* JOBQ_H */
