/*-------------------------------------------------------------------------
 *
 * queue_limits.c
 *	  Queues' concurrency and rate limits and pauses, kept by the claim.
 *
 * A queue created with jobq.create_queue may be paused, may allow at most
 * so many running jobs across the cluster (concurrency), and may start at
 * most so many jobs a period (rate).  Jobs name queues freely: a queue that
 * was never created, or has none of these, is claimed as before.
 *
 * Counts.  Shared memory holds, for each database and queue name with
 * running jobs (or a rate to keep), how many of its jobs are running and
 * when the next may start.  The claim admits each row before it takes it
 * (jobq_limits_admit): a row of a paused queue, of a queue at its
 * concurrency limit or of a queue whose next start has not come is
 * skipped, as a row another worker holds is skipped.  An admitted row of a
 * limited queue is counted at once, under the lock, so two claims never
 * both take the last place; the rows of other queues are counted together
 * when the claim ends, before it commits.  A count is taken back when the
 * claim's transaction aborts, and a row leaves the count when the
 * statement that moves it out of the running state commits (a completion,
 * a failure, a give-back, a reap: jobq_limits_release, called by queue.c
 * with the rows the statement changed).  So the count is never below the
 * number of running rows anyone can see, and is above it only between a
 * claim and its commit, or a completion and its commit.  After a crash
 * restart the counts start from zero: the rows the last boot left running
 * are reaped, and not counted off, before a worker claims.
 *
 * Rates are kept by spacing: a rate-limited queue starts a job at most once
 * every period / rate (the generic cell rate algorithm with no burst), so
 * no window of one period ever holds more than rate starts.  A claim that
 * skipped a row for its rate tells the worker when to look again
 * (jobq_limits_refused); a claim that skipped one for concurrency leaves a
 * mark, and the completion that frees a place wakes the database.
 *
 * Configuration.  jobq._queues is read by each backend that claims, again
 * after any transaction that changed it commits (a counter in shared
 * memory), so a pause or a new limit holds from the next claim of each
 * worker.  Counting needs no configuration: it is the same for every queue
 * name, so a limit set on a queue with running jobs counts them.
 *
 * Concurrency keys.  A job may carry a concurrency key: at most its queue's
 * concurrency_per_key (1 unless set) jobs with the same queue and key run
 * at once.  Such a key has an entry of its own beside its queue's, counted
 * and counted off in the same way (the statements return the key with the
 * queue).
 *
 * Entries live in a shared hash table of jobq.max_queues entries; an entry
 * whose queue has no running job and no start to space is removed.  When
 * the table is full, the rows of a queue without an entry are taken
 * uncounted, and a limited queue's rows are skipped (with a warning).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "external_wait.h"
#include "guc.h"
#include "queue_limits.h"
#include "shmem.h"
#include "superuser.h"

/* An entry of the shared table: a queue of a database. */
typedef struct LimitsKey
{
	Oid dboid;
	char name[JOBQ_MAX_QUEUE_NAME + 1]; /* zero-padded: the key is hashed as bytes */
	char ckey[JOBQ_MAX_JOB_KEY + 1];	/* a concurrency key of the queue, or "" */
} LimitsKey;

typedef struct LimitsEntry
{
	LimitsKey key;
	int32 running;
	TimestampTz tat; /* a rate-limited queue's next start may come then */
	bool waiting;	 /* a claim skipped a row for the concurrency limit */
} LimitsEntry;

typedef struct LimitsShared
{
	LWLock *lock;
	pg_atomic_uint64 version; /* bumped when a change of jobq._queues commits */
} LimitsShared;

static LimitsShared *limits = NULL;

/* the name of a database's entry saying its leases of earlier boots are counted */
#define LEASES_MARK "\001leases"
static HTAB *limits_hash = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* A queue of jobq._queues as this backend read it last. */
typedef struct LocalQueue
{
	char name[JOBQ_MAX_QUEUE_NAME + 1];
	int32 precedence;
	bool paused;
	int32 concurrency; /* 0: no limit */
	int32 per_key;	   /* concurrency_per_key; 0: 1 */
	int64 interval_us; /* period / rate; 0: no rate */
} LocalQueue;

static HTAB *local_queues = NULL;
static uint64 local_version = 0; /* shared versions start at 1 */
static bool have_queues = false; /* some queue has a setting */

/* Counts this transaction took (reserved) or gave back (released). */
typedef struct PendingCount
{
	LimitsKey key;
	int32 n;
	int level; /* transaction nesting level */
	bool release;
} PendingCount;

static PendingCount *pending = NULL;
static int npending = 0;
static int maxpending = 0;
static bool callbacks_registered = false;
static bool changed_at_commit = false;
static bool warned_full = false;

/* The claim under way: counts of unlimited queues, and its last admission. */
#define CLAIM_QUEUES 32
typedef struct ClaimCount
{
	LimitsKey key;
	int32 n;
} ClaimCount;

static ClaimCount claim_counts[CLAIM_QUEUES];
static int nclaim_counts = 0;
static ClaimCount limited_counts[CLAIM_QUEUES]; /* admitted rows of limited queues */
static int nlimited_counts = 0;
static int claim_workers = 1;		/* the lane's workers in a database, at most */
static int last_count = -1;			/* claim_counts index, or -1 */
static bool last_limited = false;	/* the last admission was counted in shmem */
static int last_limited_count = -1; /* limited_counts index, or -1 */
static bool last_keyed = false;		/* the last admission counted a concurrency key */
static LimitsKey last_ckey;
static LimitsKey last_key;
static TimestampTz last_tat_before;
static TimestampTz last_tat_after;
static bool claim_refused = false;
static bool claim_left_share = false; /* left rows for the lane's other workers */
static TimestampTz claim_retry_at = 0;

/*
 * The hash of a key: its database and the names up to their ends, not the
 * zero padding (most of the key's 324 bytes), which hashing as a blob
 * would read for every row a claim admits.  Keys still match as bytes.
 */
static uint32
limits_key_hash(const void *key, Size keysize)
{
	const LimitsKey *k = key;
	uint32 h = hash_bytes_uint32((uint32) k->dboid);

	h = hash_combine(h, hash_bytes((const unsigned char *) k->name,
								   (int) strnlen(k->name, sizeof(k->name))));
	if (k->ckey[0] != '\0')
		h = hash_combine(h, hash_bytes((const unsigned char *) k->ckey,
									   (int) strnlen(k->ckey, sizeof(k->ckey))));
	return h;
}

static Size
limits_size(void)
{
	return add_size(MAXALIGN(sizeof(LimitsShared)),
					hash_estimate_size(jobq_max_queues, sizeof(LimitsEntry)));
}

static void
limits_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(limits_size());
	RequestNamedLWLockTranche("jobq_limits", 1);
}

static void
limits_shmem_startup(void)
{
	bool found;
	HASHCTL info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	limits = ShmemInitStruct("jobq_limits", sizeof(LimitsShared), &found);
	if (!found)
	{
		limits->lock = &(GetNamedLWLockTranche("jobq_limits"))->lock;
		pg_atomic_init_u64(&limits->version, 1);
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(LimitsKey);
	info.entrysize = sizeof(LimitsEntry);
	info.hash = limits_key_hash;
	limits_hash = ShmemInitHash("jobq_limits queues", jobq_max_queues, jobq_max_queues,
								&info, HASH_ELEM | HASH_FUNCTION);
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while preloading. */
void
jobq_limits_request(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = limits_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = limits_shmem_startup;
}

static void
make_key(LimitsKey *key, const char *queue, int len)
{
	memset(key, 0, sizeof(*key));
	key->dboid = MyDatabaseId;
	memcpy(key->name, queue, Min(len, JOBQ_MAX_QUEUE_NAME));
}

/* The entry of a concurrency key (ckey, clen bytes) of queue key. */
static void
make_ckey(LimitsKey *ckey, const LimitsKey *queue, const char *key, int clen)
{
	*ckey = *queue;
	memcpy(ckey->ckey, key, Min(clen, JOBQ_MAX_JOB_KEY));
}

/* The entry of key, made if need be; NULL when the table is full.  Under the lock. */
static LimitsEntry *
enter(const LimitsKey *key)
{
	bool found;
	LimitsEntry *e = hash_search(limits_hash, key, HASH_ENTER_NULL, &found);

	if (e == NULL)
		return NULL;
	if (!found)
	{
		e->running = 0;
		e->tat = 0;
		e->waiting = false;
	}
	return e;
}

/* Count n jobs of key off, removing an entry left with nothing to keep.  Under the lock. */
static bool
count_off(const LimitsKey *key, int n, TimestampTz now)
{
	LimitsEntry *e = hash_search(limits_hash, key, HASH_FIND, NULL);
	bool wake = false;

	if (e == NULL)
		return false;
	e->running = Max(e->running - n, 0);
	if (e->waiting)
	{
		wake = true;
		e->waiting = false;
	}
	if (e->running == 0 && e->tat <= now)
		(void) hash_search(limits_hash, key, HASH_REMOVE, NULL);
	return wake;
}

/* ----------------------------------------------------------------
 * What the current transaction counted and gave back
 * ---------------------------------------------------------------- */

static void
forget_pending(void)
{
	npending = 0;
}

/* Take back this transaction's counts from level on, and drop its releases there. */
static void
undo_pending(int level)
{
	TimestampTz now = GetCurrentTimestamp();
	int keep = 0;
	int i;
	bool locked = false;

	for (i = 0; i < npending; i++)
	{
		PendingCount *p = &pending[i];

		if (p->level < level)
		{
			pending[keep++] = *p;
			continue;
		}
		if (p->release || p->n == 0)
			continue;
		if (!locked)
		{
			LWLockAcquire(limits->lock, LW_EXCLUSIVE);
			locked = true;
		}
		(void) count_off(&p->key, p->n, now);
	}
	if (locked)
		LWLockRelease(limits->lock);
	npending = keep;
}

/* Give back the counts released by the transaction that commits. */
static void
apply_releases(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool wake = false;
	bool locked = false;
	int i;

	for (i = 0; i < npending; i++)
	{
		PendingCount *p = &pending[i];

		if (!p->release || p->n == 0)
			continue;
		if (!locked)
		{
			LWLockAcquire(limits->lock, LW_EXCLUSIVE);
			locked = true;
		}
		wake |= count_off(&p->key, p->n, now);
	}
	if (locked)
		LWLockRelease(limits->lock);
	npending = 0;

	/* a place came free where a claim found none: look again */
	if (wake)
	{
		jobq_shmem_wake_database(MyDatabaseId, false, 1, now);
		jobq_shmem_wake_database(MyDatabaseId, true, 1, now);
		jobq_external_wake(MyDatabaseId);
	}
}

static void
limits_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (limits != NULL)
			{
				apply_releases();
				if (changed_at_commit)
					pg_atomic_fetch_add_u64(&limits->version, 1);
			}
			changed_at_commit = false;
			forget_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (limits != NULL)
				undo_pending(0);
			changed_at_commit = false;
			forget_pending();
			break;
		case XACT_EVENT_PREPARE:

			/*
			 * Claims and completions run in the workers' own transactions,
			 * never in prepared ones.  A change of jobq._queues made in a
			 * prepared transaction bumps the version now: it is read again
			 * at the next claim, and once more after the next change.
			 */
			if (limits != NULL && changed_at_commit)
				pg_atomic_fetch_add_u64(&limits->version, 1);
			changed_at_commit = false;
			forget_pending();
			break;
		default:
			break;
	}
}

static void
limits_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int level = GetCurrentTransactionNestLevel();
	int i;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		if (limits != NULL)
			undo_pending(level);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0; i < npending; i++)
			if (pending[i].level >= level)
				pending[i].level = level - 1;
	}
}

static void
ensure_callbacks(void)
{
	if (callbacks_registered)
		return;
	RegisterXactCallback(limits_xact_callback, NULL);
	RegisterSubXactCallback(limits_subxact_callback, NULL);
	callbacks_registered = true;
}

/* Note n jobs of key counted (release false) or given back in this transaction. */
static void
add_pending(const LimitsKey *key, int n, bool release)
{
	int level = GetCurrentTransactionNestLevel();
	int i;

	ensure_callbacks();
	for (i = 0; i < npending; i++)
	{
		PendingCount *p = &pending[i];

		if (p->release == release && p->level == level &&
			memcmp(&p->key, key, sizeof(LimitsKey)) == 0)
		{
			p->n += n;
			return;
		}
	}
	if (npending == maxpending)
	{
		maxpending = Max(16, maxpending * 2);
		pending = pending == NULL
					  ? MemoryContextAlloc(TopMemoryContext, sizeof(PendingCount) * maxpending)
					  : repalloc(pending, sizeof(PendingCount) * maxpending);
	}
	pending[npending].key = *key;
	pending[npending].n = n;
	pending[npending].level = level;
	pending[npending].release = release;
	npending++;
}

/* Undo one count of key that add_pending noted last (an unadmitted row). */
static void
drop_pending(const LimitsKey *key)
{
	int i;

	for (i = npending - 1; i >= 0; i--)
		if (!pending[i].release && memcmp(&pending[i].key, key, sizeof(LimitsKey)) == 0)
		{
			pending[i].n--;
			return;
		}
}

/* ----------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------- */

void
jobq_limits_changed_on_commit(void)
{
	ensure_callbacks();
	changed_at_commit = true;
	local_version = 0; /* this transaction reads its own change */
}

/* Read jobq._queues (absent before ALTER EXTENSION jobq UPDATE: no queues). */
static void
load_queues(void)
{
	static SPIPlanPtr plan = NULL;
	HASHCTL info;
	JobqSpiCall qc;
	Oid nsp = get_namespace_oid("jobq", true);
	uint64 i;

	if (local_queues != NULL)
		hash_destroy(local_queues);
	memset(&info, 0, sizeof(info));
	info.keysize = JOBQ_MAX_QUEUE_NAME + 1;
	info.entrysize = sizeof(LocalQueue);
	info.hcxt = TopMemoryContext;
	local_queues = hash_create("jobq queues", 64, &info, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	have_queues = false;

	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("_queues", nsp)))
		return;

	jobq_superuser_spi_begin(&qc);
	jobq_superuser_execute(jobq_superuser_prepare(&plan,
												  "SELECT name, paused, coalesce(concurrency, 0), "
												  "CASE WHEN rate IS NULL THEN 0 ELSE "
												  "greatest((extract(epoch FROM rate_period) * 1000000 / rate)::bigint, 1) END, "
												  "precedence, coalesce(concurrency_per_key, 0) FROM jobq._queues "
												  "WHERE paused OR concurrency IS NOT NULL OR rate IS NOT NULL "
												  "OR precedence <> 0 OR concurrency_per_key IS NOT NULL",
												  0, NULL),
						   NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		char name[JOBQ_MAX_QUEUE_NAME + 1];
		LocalQueue *q;
		bool isnull;
		char *s = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));

		strlcpy(name, s, sizeof(name));
		q = hash_search(local_queues, name, HASH_ENTER, NULL);
		q->paused = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		q->concurrency = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		q->interval_us = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		q->precedence = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
		q->per_key = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		have_queues = true;
	}
	jobq_superuser_spi_end(&qc);
}

/* ----------------------------------------------------------------
 * The claim
 * ---------------------------------------------------------------- */

/*
 * Read jobq._queues again if a change committed since this backend last
 * did (or this transaction made one).  Without shared memory (jobq not
 * preloaded: no worker claims) it is read every time.
 */
static void
read_queues_if_changed(void)
{
	uint64 version = limits == NULL ? 0 : pg_atomic_read_u64(&limits->version);

	if (version == 0 || version != local_version)
	{
		load_queues();
		local_version = version;
	}
}

/* The precedence of queue's jobs (jobq.create_queue): 0 unless set. */
int32
jobq_limits_precedence(const char *queue)
{
	char name[JOBQ_MAX_QUEUE_NAME + 1];
	LocalQueue *q;

	read_queues_if_changed();
	if (!have_queues)
		return 0;
	strlcpy(name, queue, sizeof(name));
	q = hash_search(local_queues, name, HASH_FIND, NULL);
	return q != NULL ? q->precedence : 0;
}

/*
 * Before a claim walks the queue, and before it takes its snapshot: read
 * jobq._queues again if a change committed since this backend last did.
 * workers: how many claim the same jobs alike (a lane's workers; 1 for an
 * external claim), each taking at most its share of a concurrency limit.
 */
void
jobq_limits_claim_begin(int workers)
{
	nclaim_counts = 0;
	nlimited_counts = 0;
	claim_left_share = false;
	claim_workers = Max(workers, 1);
	last_count = -1;
	last_limited = false;
	claim_refused = false;
	claim_retry_at = 0;
	if (limits != NULL)
		read_queues_if_changed();
}

/* Count the rows of the claim's unlimited queues, before it commits. */
static void
flush_claim_counts(void)
{
	int i;

	if (nclaim_counts == 0)
		return;
	LWLockAcquire(limits->lock, LW_EXCLUSIVE);
	for (i = 0; i < nclaim_counts; i++)
	{
		LimitsEntry *e;

		if (claim_counts[i].n == 0)
			continue;
		e = enter(&claim_counts[i].key);
		if (e == NULL)
		{
			claim_counts[i].n = 0; /* taken uncounted */
			continue;
		}
		e->running += claim_counts[i].n;
	}
	LWLockRelease(limits->lock);
	for (i = 0; i < nclaim_counts; i++)
		if (claim_counts[i].n > 0)
			add_pending(&claim_counts[i].key, claim_counts[i].n, false);
	nclaim_counts = 0;
	last_count = -1;
}

/* The warning that the shared table is full, once per process. */
static void
warn_full(const char *name)
{
	if (!warned_full)
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("jobq cannot count the running jobs of queue \"%s\": jobq.max_queues (%d) queues and concurrency keys have running jobs",
						name, jobq_max_queues),
				 errdetail("Jobs of a limited queue, and jobs with a concurrency key, wait until there is room."),
				 errhint("Raise jobq.max_queues and restart the server.")));
	warned_full = true;
}

/*
 * May the claim take a row of queue key (q: its settings, or NULL) at now?
 * When true the row is counted in its queue.
 */
static bool
admit_queue(const LimitsKey *key_in, const LocalQueue *q, TimestampTz now)
{
	LimitsKey key = *key_in;
	LimitsEntry *e;
	int i;

	if (q == NULL || (q->concurrency == 0 && q->interval_us == 0 && !q->paused))
	{
		for (i = 0; i < nclaim_counts; i++)
			if (strcmp(claim_counts[i].key.name, key.name) == 0)
				break;
		if (i == nclaim_counts)
		{
			if (nclaim_counts == CLAIM_QUEUES)
			{
				flush_claim_counts();
				i = 0;
			}
			claim_counts[i].key = key;
			claim_counts[i].n = 0;
			nclaim_counts = i + 1;
		}
		claim_counts[i].n++;
		last_count = i;
		return true;
	}

	if (q->paused)
	{
		claim_refused = true;
		return false;
	}

	/*
	 * One claim takes at most its share of a concurrency limit, so that the
	 * lane's other workers run the rest at the same time rather than this
	 * one running them in turn.
	 */
	for (i = 0; i < nlimited_counts; i++)
		if (strcmp(limited_counts[i].key.name, key.name) == 0)
			break;
	if (q->concurrency > 0 && i < nlimited_counts &&
		limited_counts[i].n >= Max(q->concurrency / claim_workers, 1))
	{
		claim_left_share = true;
		return false;
	}

	LWLockAcquire(limits->lock, LW_EXCLUSIVE);
	e = enter(&key);
	if (e == NULL)
	{
		LWLockRelease(limits->lock);
		warn_full(key.name);
		claim_refused = true;
		return false;
	}
	if (q->concurrency > 0 && e->running >= q->concurrency)
	{
		e->waiting = true;
		LWLockRelease(limits->lock);
		claim_refused = true;
		return false;
	}
	if (q->interval_us > 0 && e->tat > now)
	{
		if (claim_retry_at == 0 || e->tat < claim_retry_at)
			claim_retry_at = e->tat;
		LWLockRelease(limits->lock);
		claim_refused = true;
		return false;
	}
	e->running++;
	last_tat_before = e->tat;
	if (q->interval_us > 0)
		e->tat = now + q->interval_us;
	last_tat_after = e->tat;
	LWLockRelease(limits->lock);

	add_pending(&key, 1, false);
	last_key = key;
	last_limited = true;
	if (i == nlimited_counts && i < CLAIM_QUEUES)
	{
		limited_counts[i].key = key;
		limited_counts[i].n = 0;
		nlimited_counts++;
	}
	if (i < nlimited_counts)
	{
		limited_counts[i].n++;
		last_limited_count = i;
	}
	return true;
}

/*
 * May the claim take one more row with concurrency key ckey (clen bytes)
 * of queue key (q: its settings, or NULL)?  At most concurrency_per_key
 * (1 when not set) run at once.  When true the row is counted.
 */
static bool
admit_key(const LimitsKey *queue, const LocalQueue *q, const char *ckey, int clen)
{
	LimitsKey key;
	LimitsEntry *e;
	int32 limit = (q != NULL && q->per_key > 0) ? q->per_key : 1;

	make_ckey(&key, queue, ckey, clen);
	LWLockAcquire(limits->lock, LW_EXCLUSIVE);
	e = enter(&key);
	if (e == NULL || e->running >= limit)
	{
		if (e != NULL)
			e->waiting = true;
		LWLockRelease(limits->lock);
		if (e == NULL)
			warn_full(key.name);
		claim_refused = true;
		return false;
	}
	e->running++;
	LWLockRelease(limits->lock);
	add_pending(&key, 1, false);
	last_ckey = key;
	last_keyed = true;
	return true;
}

/*
 * May the claim take a row of queue (len bytes, not terminated) with
 * concurrency key ckey (clen bytes; NULL: none) at now?  When true the row
 * is counted; jobq_limits_unadmit takes that back if the claim does not
 * get the row after all.
 */
bool
jobq_limits_admit(const char *queue, int len, const char *ckey, int clen, TimestampTz now)
{
	LimitsKey key;
	LocalQueue *q = NULL;

	last_count = -1;
	last_limited = false;
	last_limited_count = -1;
	last_keyed = false;
	if (limits == NULL)
		return true;
	make_key(&key, queue, len);
	if (have_queues)
		q = hash_search(local_queues, key.name, HASH_FIND, NULL);
	if (!admit_queue(&key, q, now))
		return false;
	if (ckey != NULL && !admit_key(&key, q, ckey, clen))
	{
		jobq_limits_unadmit();
		return false;
	}
	return true;
}

/* The row jobq_limits_admit admitted last was not taken after all. */
void
jobq_limits_unadmit(void)
{
	if (last_keyed)
	{
		LimitsEntry *e;

		LWLockAcquire(limits->lock, LW_EXCLUSIVE);
		e = hash_search(limits_hash, &last_ckey, HASH_FIND, NULL);
		if (e != NULL)
			e->running = Max(e->running - 1, 0);
		LWLockRelease(limits->lock);
		drop_pending(&last_ckey);
		last_keyed = false;
	}
	if (last_count >= 0)
		claim_counts[last_count].n--;
	else if (last_limited)
	{
		LimitsEntry *e;

		LWLockAcquire(limits->lock, LW_EXCLUSIVE);
		e = hash_search(limits_hash, &last_key, HASH_FIND, NULL);
		if (e != NULL)
		{
			e->running = Max(e->running - 1, 0);
			/* the start it spaced did not happen, unless another came since */
			if (e->tat == last_tat_after)
				e->tat = last_tat_before;
		}
		LWLockRelease(limits->lock);
		drop_pending(&last_key);
		if (last_limited_count >= 0)
			limited_counts[last_limited_count].n--;
	}
	last_count = -1;
	last_limited = false;
	last_limited_count = -1;
}

/* After the walk, before the claim commits. */
void
jobq_limits_claim_end(void)
{
	if (limits != NULL)
		flush_claim_counts();
}

/* Did the last claim leave rows of a limited queue to the lane's other workers? */
bool
jobq_limits_left_share(void)
{
	return claim_left_share;
}

/*
 * When a claim that took fewer jobs than it asked for should look again,
 * given when the next pending job is due: if that job is due already and
 * the claim skipped rows for a queue's limit or pause, they wait for a
 * rate's next start, or for the wake-up that a completion freeing a place
 * (apply_releases) or a resumed queue sends.
 */
TimestampTz
jobq_limits_due(TimestampTz due)
{
	if (!claim_refused || due > GetCurrentTimestamp())
		return due;
	return claim_retry_at != 0 ? claim_retry_at : DT_NOEND;
}

/* A job of queue with concurrency key ckey (NULL: none) left the running state in this transaction. */
void
jobq_limits_release(const char *queue, int len, text *ckey)
{
	LimitsKey key;
	LimitsKey keyed;

	if (limits == NULL)
		return;
	make_key(&key, queue, len);
	add_pending(&key, 1, true);
	if (ckey != NULL)
	{
		make_ckey(&keyed, &key, VARDATA_ANY(ckey), (int) VARSIZE_ANY_EXHDR(ckey));
		add_pending(&keyed, 1, true);
	}
}

/* The entries of a database, for jobq._queue_state(); returns how many. */
int
jobq_limits_copy(Oid dboid, JobqQueueState **copy)
{
	HASH_SEQ_STATUS status;
	LimitsEntry *e;
	int n = 0;
	int max;

	*copy = NULL;
	if (limits == NULL)
		return 0;
	LWLockAcquire(limits->lock, LW_SHARED);
	max = (int) hash_get_num_entries(limits_hash);
	*copy = palloc0(sizeof(JobqQueueState) * Max(max, 1));
	hash_seq_init(&status, limits_hash);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->key.dboid != dboid || n >= max || e->key.name[0] == LEASES_MARK[0])
			continue;
		strlcpy((*copy)[n].name, e->key.name, sizeof((*copy)[n].name));
		strlcpy((*copy)[n].ckey, e->key.ckey, sizeof((*copy)[n].ckey));
		(*copy)[n].running = e->running;
		(*copy)[n].next_start = e->tat;
		n++;
	}
	LWLockRelease(limits->lock);
	return n;
}

/* ----------------------------------------------------------------
 * Leases of an earlier boot
 * ---------------------------------------------------------------- */

/*
 * The external jobs that a lease taken before this boot still holds are
 * counted once per database and boot, before any external claim or end
 * (queue_external.c: jobq_queue_adopt_leases), so that a limit holds
 * after a restart and their ends count them off like any other.  The
 * database's entry under this name (no queue's: a queue name has no
 * control character) says it is done.
 */
static void
leases_key(LimitsKey *key)
{
	make_key(key, LEASES_MARK, (int) strlen(LEASES_MARK));
}

/* Are the current database's leases of earlier boots counted (or no count kept)? */
bool
jobq_limits_leases_adopted(void)
{
	LimitsKey key;
	bool found;

	if (limits == NULL)
		return true;
	leases_key(&key);
	LWLockAcquire(limits->lock, LW_SHARED);
	found = hash_search(limits_hash, &key, HASH_FIND, NULL) != NULL;
	LWLockRelease(limits->lock);
	return found;
}

/*
 * Count the n running jobs (their queues and keys, a key NULL for none)
 * that leases of earlier boots hold in the current database, unless
 * another backend did since it was asked.
 */
void
jobq_limits_adopt_leases(char *const *queues, char *const *ckeys, int n)
{
	LimitsKey mark;
	bool found;

	if (limits == NULL)
		return;
	leases_key(&mark);
	LWLockAcquire(limits->lock, LW_EXCLUSIVE);
	(void) hash_search(limits_hash, &mark, HASH_FIND, &found);
	if (!found && enter(&mark) == NULL)
	{
		/* nothing counted: the next call tries again */
		LWLockRelease(limits->lock);
		warn_full("(leases of an earlier boot)");
		return;
	}
	if (!found)
	{
		for (int i = 0; i < n; i++)
		{
			LimitsKey key;
			LimitsEntry *e;

			make_key(&key, queues[i], (int) strlen(queues[i]));
			if ((e = enter(&key)) != NULL)
				e->running++;
			if (ckeys[i] != NULL)
			{
				LimitsKey keyed;

				make_ckey(&keyed, &key, ckeys[i], (int) strlen(ckeys[i]));
				if ((e = enter(&keyed)) != NULL)
					e->running++;
			}
		}
	}
	LWLockRelease(limits->lock);
}
