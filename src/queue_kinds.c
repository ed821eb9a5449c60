/*-------------------------------------------------------------------------
 *
 * queue_kinds.c
 *	  Kinds: the kind cache (every backend's copy of jobq._kinds, flushed on
 *	  a relcache invalidation of the table), register and unregister.
 *
 * Each function connects to SPI as the bootstrap superuser with a search
 * path of pg_catalog alone (superuser.c), runs prepared statements
 * (prepared once per backend and kept), and disconnects: callers check the
 * caller's rights first and pass the caller's role where a statement
 * filters by it.  Callers must be in a transaction; values returned are
 * allocated in the caller's memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "qrel.h"
#include "queue.h"
#include "superuser.h"

/* kept plans */
static SPIPlanPtr plan_register = NULL;
static SPIPlanPtr plan_register_0_1 = NULL;
static SPIPlanPtr plan_unregister = NULL;
static SPIPlanPtr plan_kind_exists = NULL;
static SPIPlanPtr plan_kinds = NULL;
static SPIPlanPtr plan_kinds_0_1 = NULL;

/* the kind cache: kind name -> JobqKind, flushed on relcache invalidation */
static HTAB *kind_cache = NULL;
static Oid kind_cache_relid = InvalidOid;
static bool kind_callback_registered = false;

static void kind_not_owned(const char *kind);

/*
 * Whether the role whose OID is the parameter may replace or remove the
 * kind row k: it has the privileges of the role that registered it (a
 * superuser has every role's), or it is a superuser (a kind whose
 * registrar role is gone).
 */
#define KIND_OWNED_BY(param) \
	"(pg_has_role(" param ", k.registered_by, 'USAGE') IS TRUE " \
	"OR (SELECT rolsuper FROM pg_authid WHERE oid = " param "))"

static void
kind_cache_invalidate(Datum arg, Oid relid)
{
	if (kind_cache != NULL &&
		(relid == InvalidOid || relid == kind_cache_relid))
	{
		hash_destroy(kind_cache);
		kind_cache = NULL;
	}
}

/*
 * The kinds with their attributes; the SQL kind is the built-in kind with
 * no handler that is not a network kind.
 */
#define KINDS_SELECT \
	"SELECT k.kind, k.builtin, p.oid, p.prorettype = 'void'::regtype, " \
	"k.queue, k.priority, k.max_attempts, k.timeout, k.net, " \
	"k.builtin AND k.handler IS NULL AND NOT k.net, "
#define KINDS_FROM \
	"FROM jobq._kinds k LEFT JOIN pg_proc p ON p.oid = to_regprocedure(k.handler)"

static void
kind_cache_load(void)
{
	JobqSpiCall qc;
	SPIPlanPtr plan;
	HASHCTL ctl;
	HTAB *cache;
	uint64 i;
	Oid nsp;

	if (!kind_callback_registered)
	{
		CacheRegisterRelcacheCallback(kind_cache_invalidate, (Datum) 0);
		kind_callback_registered = true;
	}

	nsp = get_namespace_oid("jobq", false);
	kind_cache_relid = get_relname_relid("_kinds", nsp);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(JobqKind);
	ctl.hcxt = CacheMemoryContext;
	cache = hash_create("jobq kinds", 32, &ctl,
						HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	jobq_superuser_spi_begin(&qc);
	if (get_attnum(kind_cache_relid, "restricted") != InvalidAttrNumber)
		plan = jobq_superuser_prepare(&plan_kinds,
									  KINDS_SELECT "k.restricted, k.keep_response, k.external " KINDS_FROM,
									  0, NULL);
	else
	{
		/*
		 * The table of 0.1.0, before ALTER EXTENSION jobq UPDATE: no column
		 * for what 0.1.0's library decided by the two names, so decide as it
		 * did until the update adds them.
		 */
		plan = jobq_superuser_prepare(&plan_kinds_0_1,
									  KINDS_SELECT
									  "NOT (k.builtin AND k.kind = 'matview.refresh'), "
									  "k.builtin AND k.net AND k.kind = 'http', false " KINDS_FROM,
									  0, NULL);
	}
	jobq_superuser_execute(plan, NULL, NULL, SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		char *name = SPI_getvalue(tup, desc, 1);
		char *queue = SPI_getvalue(tup, desc, 5);
		JobqKind *k;
		bool isnull;
		bool found;
		Datum d;

		if (strlen(name) >= NAMEDATALEN)
			continue;
		k = hash_search(cache, name, HASH_ENTER, &found);
		k->builtin = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		k->handler = isnull ? InvalidOid : DatumGetObjectId(d);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		k->handler_returns_void = isnull ? false : DatumGetBool(d);
		strlcpy(k->queue, queue, sizeof(k->queue));
		k->priority = DatumGetInt32(SPI_getbinval(tup, desc, 6, &isnull));
		d = SPI_getbinval(tup, desc, 7, &isnull);
		k->max_attempts = isnull ? 0 : DatumGetInt32(d);
		d = SPI_getbinval(tup, desc, 8, &isnull);
		/* read as a job's own timeout is (a month as 30 days) */
		k->timeout_ms = isnull ? 0 : jobq_interval_ms(DatumGetIntervalP(d));
		k->net = DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull));
		k->runs_sql = DatumGetBool(SPI_getbinval(tup, desc, 10, &isnull));
		k->restricted = DatumGetBool(SPI_getbinval(tup, desc, 11, &isnull));
		k->keep_response = DatumGetBool(SPI_getbinval(tup, desc, 12, &isnull));
		k->external = DatumGetBool(SPI_getbinval(tup, desc, 13, &isnull));
	}
	jobq_superuser_spi_end(&qc);
	kind_cache = cache;
}

/* The kind of that name, or NULL.  The result stays valid until the next call. */
JobqKind *
jobq_queue_lookup_kind(const char *name)
{
	if (strlen(name) >= NAMEDATALEN)
		return NULL;
	if (kind_cache == NULL)
		kind_cache_load();
	return hash_search(kind_cache, name, HASH_FIND, NULL);
}

/*
 * Register (or replace) a kind: run by handler, a function's qualified
 * signature, or by the application's workers when handler is NULL (an
 * external kind; the tables of 0.1.0 have none).  %s: the column external,
 * its value and its update, in the tables of 0.2.0.
 */
#define REGISTER_STATEMENT(column, value, update) \
	"INSERT INTO jobq._kinds AS k (kind, handler, queue, priority, " \
	"max_attempts, timeout, registered_by" column ") " \
	"VALUES ($1, $2, $3, $4, $5, $6, $7::regrole" value ") " \
	"ON CONFLICT (kind) DO UPDATE SET handler = EXCLUDED.handler, " \
	"queue = EXCLUDED.queue, priority = EXCLUDED.priority, " \
	"max_attempts = EXCLUDED.max_attempts, timeout = EXCLUDED.timeout, " \
	"registered_at = now()" update " " \
	"WHERE NOT k.builtin AND " KIND_OWNED_BY("$7")

void
jobq_queue_register_kind(const char *kind, const char *handler,
						 const char *queue, int32 max_attempts,
						 bool max_attempts_null, Interval *timeout,
						 int32 priority, Oid registrar)
{
	JobqSpiCall qc;
	Oid types[7] = {TEXTOID, TEXTOID, TEXTOID, INT4OID, INT4OID,
					INTERVALOID, OIDOID};
	Datum values[7];
	char nulls[7] = "       ";
	uint64 n;
	SPIPlanPtr plan;

	values[0] = CStringGetTextDatum(kind);
	if (handler != NULL)
		values[1] = CStringGetTextDatum(handler);
	else
		nulls[1] = 'n';
	values[2] = CStringGetTextDatum(queue);
	values[3] = Int32GetDatum(priority);
	values[4] = Int32GetDatum(max_attempts);
	if (max_attempts_null)
		nulls[4] = 'n';
	values[5] = PointerGetDatum(timeout);
	if (timeout == NULL)
		nulls[5] = 'n';
	values[6] = ObjectIdGetDatum(registrar);

	/*
	 * A kind is replaced only by a role with the privileges of the role that
	 * registered it (its members, superusers), which stays its owner: the
	 * test is part of the statement, so a kind registered concurrently by
	 * another role is not replaced either.
	 */
	jobq_superuser_spi_begin(&qc);
	if (get_attnum(jobq_qrel_relid("_kinds"), "external") != InvalidAttrNumber)
		plan = plan_register != NULL
				   ? plan_register
				   : jobq_superuser_prepare(&plan_register,
											REGISTER_STATEMENT(", external", ", $2 IS NULL",
															   ", external = EXCLUDED.external"),
											7, types);
	else
		plan = plan_register_0_1 != NULL
				   ? plan_register_0_1
				   : jobq_superuser_prepare(&plan_register_0_1, REGISTER_STATEMENT("", "", ""),
											7, types);
	n = jobq_superuser_execute(plan,
							   values, nulls, SPI_OK_INSERT);
	jobq_superuser_spi_end(&qc);
	if (n == 0)
		kind_not_owned(kind);
	jobq_queue_kinds_changed();
}

bool
jobq_queue_unregister_kind(const char *kind)
{
	JobqSpiCall qc;
	Oid types[2] = {TEXTOID, OIDOID};
	Datum values[2];
	uint64 n;
	bool exists = false;

	values[0] = CStringGetTextDatum(kind);
	values[1] = ObjectIdGetDatum(GetUserId());
	jobq_superuser_spi_begin(&qc);
	n = jobq_superuser_execute(jobq_superuser_prepare(&plan_unregister,
													  "DELETE FROM jobq._kinds k WHERE kind = $1 AND NOT builtin AND " KIND_OWNED_BY("$2"),
													  2, types),
							   values, NULL, SPI_OK_DELETE);
	if (n == 0)
		exists = jobq_superuser_execute(jobq_superuser_prepare(&plan_kind_exists,
															   "SELECT FROM jobq._kinds WHERE kind = $1",
															   1, types),
										values, NULL, SPI_OK_SELECT) > 0;
	jobq_superuser_spi_end(&qc);
	if (exists)
		kind_not_owned(kind);
	jobq_queue_kinds_changed();
	return n > 0;
}

/*
 * The error for a kind that exists and that the current role may not
 * replace or remove (registrable_kind_arg in api.c has refused built-in
 * kinds already).
 */
static void
kind_not_owned(const char *kind)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("job kind \"%s\" was registered by another role", kind),
			 errdetail("Only a role with the privileges of the role that registered a kind, or a superuser, may replace or remove it."),
			 errhint("The view jobq.kinds shows the role in registered_by.")));
}

/*
 * Make every backend reload its kind cache when this transaction commits
 * (also jobq._kinds_changed(), for install scripts that add built-in kinds
 * by INSERT: a row change does not invalidate the table's relcache entry).
 */
void
jobq_queue_kinds_changed(void)
{
	Oid nsp = get_namespace_oid("jobq", false);

	CacheInvalidateRelcacheByRelid(get_relname_relid("_kinds", nsp));
}
