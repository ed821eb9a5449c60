/*-------------------------------------------------------------------------
 *
 * handlers.c
 *	  What a job of each kind does: the built-in kinds and the calls to
 *	  handler functions registered with jobq.register_kind.
 *
 * jobq_handler_run is called by a worker inside the job's subtransaction,
 * with the job's owner as current user and its timeout armed: everything
 * here runs with the owner's privileges and may throw.  The SQL kind (the
 * built-in kind with no handler that is not a network kind: "sql") runs the
 * owner's statements through SPI; that is the job itself, not queue
 * bookkeeping, which stays in the queue layer.  What a kind does is decided
 * by its attributes in jobq._kinds (builtin, handler, net, restricted),
 * which only an install script can set for a built-in kind, never by its
 * name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "parser/parser.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "compat.h"
#include "handlers.h"

/*
 * Check that a function can be a handler: a plain function taking one
 * jsonb and returning jsonb or void.
 */
void
jobq_handler_check(Oid handler, bool *returns_void)
{
	HeapTuple tup;
	Form_pg_proc proc;
	char *name;

	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(handler));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function with OID %u does not exist", handler)));
	proc = (Form_pg_proc) GETSTRUCT(tup);
	name = format_procedure(handler);

	if (proc->prokind != PROKIND_FUNCTION || proc->proretset ||
		proc->pronargs != 1 || proc->proargtypes.values[0] != JSONBOID ||
		(proc->prorettype != JSONBOID && proc->prorettype != VOIDOID))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_FUNCTION_DEFINITION),
				 errmsg("function %s cannot be a job handler", name),
				 errdetail("A job handler takes one argument of type jsonb and returns jsonb or void, one row.")));
	if (returns_void)
		*returns_void = (proc->prorettype == VOIDOID);
	ReleaseSysCache(tup);
}

/* The "sql" member of a payload, or NULL. */
static char *
payload_sql(Jsonb *payload)
{
	JsonbValue v;

	if (!JB_ROOT_IS_OBJECT(payload))
		return NULL;
	if (getKeyJsonValueFromContainer(&payload->root, "sql", 3, &v) == NULL ||
		v.type != jbvString)
		return NULL;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/*
 * Error context while parsing a job's SQL: report a syntax error's position
 * within that SQL, not within the statement that enqueues it.
 */
static void
payload_sql_error_callback(void *arg)
{
	const char *sql = (const char *) arg;
	int position = geterrposition();

	if (position > 0)
	{
		errposition(0);
		internalerrposition(position);
		internalerrquery(sql);
	}
	errcontext("SQL of the job's payload");
}

/*
 * Check a payload for a built-in kind before the job is added, so that a
 * job that cannot run is refused at once.
 */
void
jobq_handler_check_payload(const char *kind, bool runs_sql, Jsonb *payload)
{
	if (runs_sql)
	{
		char *sql = payload_sql(payload);

		if (sql == NULL || sql[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("payload of a job of kind \"%s\" must have a non-empty string member \"sql\"", kind),
					 errhint("For example: jobq.enqueue('sql', '{\"sql\": \"REFRESH MATERIALIZED VIEW stats\"}').")));
		/* a syntax error is reported now, not at every attempt */
		{
			ErrorContextCallback callback;

			callback.callback = payload_sql_error_callback;
			callback.arg = sql;
			callback.previous = error_context_stack;
			error_context_stack = &callback;
			(void) raw_parser(sql, RAW_PARSE_DEFAULT);
			error_context_stack = callback.previous;
		}
		pfree(sql);
	}
}

static Jsonb *
run_sql(const JobqJob *job)
{
	char *sql = payload_sql(job->payload);
	int rc;
	uint64 rows;

	if (sql == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payload of job " INT64_FORMAT " has no string member \"sql\"", job->id)));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	rc = SPI_execute(sql, false, 0);
	PopActiveSnapshot();
	if (rc == SPI_ERROR_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("a job cannot start, commit or roll back transactions"),
				 errdetail("Each job runs in a transaction of its own that jobq commits.")));
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not run the job's statements: %s", SPI_result_code_string(rc))));
	rows = SPI_processed;
	SPI_finish();

	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											  CStringGetDatum(psprintf("{\"rows\": " UINT64_FORMAT "}", rows))));
}

/*
 * Handler functions looked up in the current transaction, kept for the jobs
 * that follow: SQL-language handlers keep their plans in the FmgrInfo.
 * Reset whenever a new transaction starts, so a replaced function is seen.
 */
#define HANDLER_CACHE_SIZE 8

typedef struct HandlerCacheEntry
{
	Oid handler;
	bool returns_void;
	FmgrInfo flinfo;
} HandlerCacheEntry;

static HandlerCacheEntry handler_cache[HANDLER_CACHE_SIZE];
static int handler_cache_used = 0;
static LocalTransactionId handler_cache_lxid = InvalidLocalTransactionId;

static HandlerCacheEntry *
handler_lookup(Oid handler)
{
	HandlerCacheEntry *entry;
	int i;

	if (handler_cache_lxid != jobq_compat_my_lxid())
	{
		handler_cache_used = 0;
		handler_cache_lxid = jobq_compat_my_lxid();
	}
	for (i = 0; i < handler_cache_used; i++)
		if (handler_cache[i].handler == handler)
			return &handler_cache[i];

	/* a new entry, the last one reused when full; filled in before use */
	i = Min(handler_cache_used, HANDLER_CACHE_SIZE - 1);
	entry = &handler_cache[i];
	entry->handler = InvalidOid;
	jobq_handler_check(handler, &entry->returns_void);
	fmgr_info_cxt(handler, &entry->flinfo, TopTransactionContext);
	entry->handler = handler;
	handler_cache_used = i + 1;
	return entry;
}

static Jsonb *
run_function(const JobqJob *job, const JobqKind *kind)
{
	HandlerCacheEntry *entry;
	LOCAL_FCINFO(fcinfo, 1);
	AclResult aclresult;
	Datum result;

	if (!OidIsValid(kind->handler))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the handler function of job kind \"%s\" does not exist", kind->name),
				 errhint("Register the kind again with jobq.register_kind().")));

	/* checked again at each transaction: it may have been replaced */
	entry = handler_lookup(kind->handler);

	aclresult = object_aclcheck(ProcedureRelationId, kind->handler, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(kind->handler));

	InitFunctionCallInfoData(*fcinfo, &entry->flinfo, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = JsonbPGetDatum(job->payload);
	fcinfo->args[0].isnull = false;

	PushActiveSnapshot(GetTransactionSnapshot());
	result = FunctionCallInvoke(fcinfo);
	PopActiveSnapshot();

	if (entry->returns_void || fcinfo->isnull)
		return NULL;
	return DatumGetJsonbPCopy(result);
}

/*
 * Whether a job of this kind runs as a security-restricted operation: all
 * do but the built-in kinds the install script made unrestricted
 * (jobq._kinds.restricted, which jobq.register_kind never sets and a
 * CHECK keeps true for every other kind).  That is matview.refresh alone:
 * REFRESH ... CONCURRENTLY builds its diff in a temporary table, which
 * PostgreSQL refuses inside a restricted operation.  Its code is jobq's own
 * and runs REFRESH only, which checks ownership and restricts the view's
 * query itself; the worker empties its temporary schema after every job.
 */
bool
jobq_handler_restricted(const JobqKind *kind)
{
	return kind->restricted;
}

/*
 * Run one job.  Returns the result to keep with the job, or NULL.
 */
Jsonb *
jobq_handler_run(const JobqJob *job, const JobqKind *kind)
{
	CommandCounterIncrement();
	if (kind->runs_sql)
		return run_sql(job);
	/* the job pack's built-in kinds are functions of the extension */
	return run_function(job, kind);
}
