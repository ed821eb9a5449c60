/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  jobq.schedule and jobq.unschedule: recurring jobs through pg_cron.
 *
 * pg_cron keeps its jobs in one database (cron.database_name) while jobq
 * serves many.  A schedule is a row of jobq._schedules in its own database
 * and a pg_cron job that runs "SELECT jobq.run_schedule('<name>')" there,
 * as the schedule's owner (cron.schedule_in_database with a username).
 *
 * In pg_cron's own database the pg_cron call is a statement of the
 * caller's transaction.  In any other database jobq connects to pg_cron's
 * database with libpq, over the server's Unix socket, as the bootstrap
 * superuser (which pg_hba.conf must let in locally: Debian's default
 * "local all postgres peer" does), and calls pg_cron there.  That call
 * commits on its own: if the caller's transaction then aborts, the
 * pg_cron job stays and its runs fail with "schedule does not exist"
 * until jobq.schedule or jobq.unschedule is called again with that name.
 *
 * The caller's rights are checked as the caller: the job must be one the
 * caller could enqueue (jobq._schedule_check enqueues it in a
 * subtransaction and rolls it back).  The rest runs as the bootstrap
 * superuser: schedule_in_database with another username needs it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "jobq.h"

PG_FUNCTION_INFO_V1(jobq_schedule);
PG_FUNCTION_INFO_V1(jobq_unschedule);

/*
 * pg_cron's database; an error when pg_cron is not loaded.  Loaded means
 * that pg_cron defined cron.database_name: a placeholder of that name is
 * any session's to SET, and must not send jobq elsewhere.
 */
static const char *
cron_database(void)
{
	const char *db = GetConfigOption("cron.database_name", true, false);

	if (db == NULL ||
		(GetConfigOptionFlags("cron.database_name", true) & GUC_CUSTOM_PLACEHOLDER) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_cron is not loaded"),
				 errhint("Add pg_cron to shared_preload_libraries (shared_preload_libraries = 'jobq,pg_cron'), "
						 "set cron.database_name to the database where pg_cron is installed, restart, "
						 "and run CREATE EXTENSION pg_cron in that database.")));
	return db;
}

/*
 * Run a statement through SPI: as the caller, or else as the bootstrap
 * superuser with a search path of pg_catalog alone.
 */
static void
run_spi(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls,
		bool as_caller, int expected)
{
	JobqSuperuser su;
	int			rc;

	if (!as_caller)
		jobq_superuser_begin(&su);
	PG_TRY();
	{
		rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
		if (rc != expected)
			elog(ERROR, "jobq statement failed: %s", SPI_result_code_string(rc));
	}
	PG_FINALLY();
	{
		if (!as_caller)
			jobq_superuser_end(&su);
	}
	PG_END_TRY();
}

/*
 * Whether schema cron is pg_cron's own (a member of the extension, which
 * only a superuser can create): nobody else's function of that name is
 * ever called as the superuser.
 */
#define CRON_IS_PG_CRON \
	"SELECT EXISTS (SELECT FROM pg_catalog.pg_depend d " \
	"JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid " \
	"JOIN pg_catalog.pg_namespace n ON n.oid = d.objid " \
	"WHERE e.extname = 'pg_cron' AND d.deptype = 'e' AND n.nspname = 'cron' " \
	"AND d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass)"

static void
not_installed(const char *cron_db)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pg_cron is not installed in database \"%s\"", cron_db),
			 errhint("Run CREATE EXTENSION pg_cron in database \"%s\" (cron.database_name).", cron_db)));
}

/* A text column of the first row of the last SPI result, or NULL. */
static char *
spi_text(int col)
{
	if (SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
}

/*
 * Run a pg_cron statement (parameters $1.. as text) in pg_cron's
 * database; returns the first column of the first row, or NULL.
 */
static char *
cron_exec(const char *cron_db, const char *sql, int nparams, const char *const *params)
{
	char	   *here = get_database_name(MyDatabaseId);

	if (strcmp(cron_db, here) == 0)
	{
		Oid		   *types = palloc(sizeof(Oid) * Max(nparams, 1));
		Datum	   *values = palloc(sizeof(Datum) * Max(nparams, 1));
		char	   *nulls = palloc(Max(nparams, 1) + 1);
		int			i;

		run_spi(CRON_IS_PG_CRON, 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
		if (strcmp(spi_text(1), "t") != 0)
			not_installed(cron_db);
		for (i = 0; i < nparams; i++)
		{
			types[i] = TEXTOID;
			values[i] = params[i] ? CStringGetTextDatum(params[i]) : (Datum) 0;
			nulls[i] = params[i] ? ' ' : 'n';
		}
		nulls[nparams] = '\0';
		run_spi(sql, nparams, types, values, nulls, false, SPI_OK_SELECT);
		return spi_text(1);
	}
	else
	{
		const char *socket_dirs = GetConfigOption("unix_socket_directories", false, false);
		char	   *dirs = pstrdup(socket_dirs ? socket_dirs : "");
		List	   *dir_list = NIL;
		const char *keys[9];
		const char *vals[9];
		char		port[16];
		PGconn	   *conn;
		PGresult   *res;
		char	   *result = NULL;

		(void) SplitDirectoriesString(dirs, ',', &dir_list);
		snprintf(port, sizeof(port), "%d", PostPortNumber);
		keys[0] = "host";
		vals[0] = dir_list != NIL ? (char *) linitial(dir_list) : "127.0.0.1";
		keys[1] = "port";
		vals[1] = port;
		keys[2] = "dbname";
		vals[2] = cron_db;
		keys[3] = "user";
		vals[3] = GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false);
		keys[4] = "application_name";
		vals[4] = "jobq schedule";
		keys[5] = "connect_timeout";
		vals[5] = "10";
		keys[6] = "sslmode";
		vals[6] = "disable";
		keys[7] = "options";
		vals[7] = "-c search_path=pg_catalog";
		keys[8] = NULL;
		vals[8] = NULL;

		conn = PQconnectdbParams(keys, vals, false);
		if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
		{
			char	   *msg = pstrdup(conn ? PQerrorMessage(conn) : "out of memory");

			PQfinish(conn);
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("could not connect to pg_cron's database \"%s\": %s", cron_db, msg),
					 errhint("jobq connects over the local socket as \"%s\"; pg_hba.conf must let it in "
							 "(peer or trust), or call jobq.schedule in database \"%s\".",
							 vals[3], cron_db)));
		}
		res = PQexec(conn, CRON_IS_PG_CRON);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
			strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		{
			PQclear(res);
			PQfinish(conn);
			not_installed(cron_db);
		}
		PQclear(res);
		res = PQexecParams(conn, sql, nparams, NULL, (const char *const *) params, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			char	   *msg = pstrdup(primary ? primary : PQerrorMessage(conn));
			int			code = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;

			if (state && strlen(state) == 5)
				code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
			PQclear(res);
			PQfinish(conn);
			ereport(ERROR,
					(errcode(code),
					 errmsg("%s", msg),
					 errcontext("pg_cron in database \"%s\"", cron_db)));
		}
		if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
			result = pstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
		PQfinish(conn);
		return result;
	}
}

static char *
text_arg(FunctionCallInfo fcinfo, int n, const char *what)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

Datum
jobq_schedule(PG_FUNCTION_ARGS)
{
	const char *cron_db = cron_database();
	char	   *name = text_arg(fcinfo, 0, "schedule name");
	char	   *schedule = text_arg(fcinfo, 1, "schedule");
	char	   *kind = text_arg(fcinfo, 2, "job kind");
	Oid			caller = GetUserId();
	Oid			types[7] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, INT4OID, OIDOID};
	Datum		values[7];
	char		nulls[8] = "       ";
	const char *params[5];
	char	   *job_id;
	int64		result;

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(schedule);
	values[2] = CStringGetTextDatum(kind);
	if (PG_ARGISNULL(3))
		values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	else
		values[3] = PG_GETARG_DATUM(3);
	values[4] = PG_ARGISNULL(4) ? (Datum) 0 : PG_GETARG_DATUM(4);
	nulls[4] = PG_ARGISNULL(4) ? 'n' : ' ';
	values[5] = PG_ARGISNULL(5) ? (Datum) 0 : PG_GETARG_DATUM(5);
	nulls[5] = PG_ARGISNULL(5) ? 'n' : ' ';
	values[6] = ObjectIdGetDatum(caller);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* the job must be one the caller may enqueue */
	run_spi("SELECT jobq._schedule_check($1, $2, $3, $4)", 4, types + 2, values + 2, nulls + 2,
			true, SPI_OK_SELECT);

	run_spi("SELECT cron_job_name, command, owner_name "
			"FROM jobq._schedule_save($1, $2, $3, $4, $5, $6, $7)",
			7, types, values, nulls, false, SPI_OK_SELECT);
	params[0] = spi_text(1);
	params[1] = schedule;
	params[2] = spi_text(2);
	params[3] = get_database_name(MyDatabaseId);
	params[4] = spi_text(3);

	/* a new owner: pg_cron keys jobs by name and user, so drop the old one */
	job_id = cron_exec(cron_db,
					   "SELECT cron.schedule_in_database($1, $2, $3, $4, $5) "
					   "FROM (SELECT count(cron.unschedule(jobid)) FROM cron.job "
					   "      WHERE jobname = $1 AND username <> $5) AS old_owner",
					   5, params);
	if (job_id == NULL)
		elog(ERROR, "cron.schedule_in_database returned no job id");
	result = pg_strtoint64(job_id);

	{
		Oid			idtypes[2] = {TEXTOID, INT8OID};
		Datum		idvalues[2];

		idvalues[0] = CStringGetTextDatum(name);
		idvalues[1] = Int64GetDatum(result);
		run_spi("SELECT jobq._schedule_set_cron_id($1, $2)", 2, idtypes, idvalues, NULL,
				false, SPI_OK_SELECT);
	}
	SPI_finish();
	PG_RETURN_INT64(result);
}

Datum
jobq_unschedule(PG_FUNCTION_ARGS)
{
	const char *cron_db = cron_database();
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid			types[2] = {TEXTOID, OIDOID};
	Datum		values[2];
	char	   *cron_job_name;
	const char *params[2];

	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(GetUserId());

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run_spi("SELECT jobq._schedule_delete($1, $2)", 2, types, values, NULL, false, SPI_OK_SELECT);
	cron_job_name = spi_text(1);
	if (cron_job_name != NULL)
	{
		/* the job of that name, whoever it runs as */
		params[0] = cron_job_name;
		(void) cron_exec(cron_db,
						 "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1",
						 1, params);
	}
	SPI_finish();
	PG_RETURN_BOOL(cron_job_name != NULL);
}
