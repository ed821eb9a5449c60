/*-------------------------------------------------------------------------
 *
 * schedule.c
 *	  jobq.schedule and jobq.unschedule: recurring jobs through pg_cron;
 *	  jobq.pause_schedule and jobq.resume_schedule.
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
 * A schedule touches no pg_cron job but its own.  A new one is named
 * "jobq <database oid> <name>" (never another database's name), and the
 * schedule keeps its id and name in jobq._schedules.  jobq.schedule
 * changes, with cron.alter_job, the job of that id only if it still has
 * that name, this database and the owner as its user (or, when there is
 * none, a job with the new job's name, database, user and command: one a
 * rolled-back call left); else it creates a job, and refuses if a job of
 * that name exists.  jobq.unschedule removes the job of the stored id
 * only under the same conditions.  In another database the look-up and
 * the change are one transaction there.
 *
 * Pausing does not touch pg_cron: the pg_cron job keeps running
 * jobq.run_schedule at each tick, which enqueues nothing while the
 * schedule is paused, so a paused schedule needs no pg_cron call to pause
 * or resume and no pg_cron job can be left out of step with it.
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

#include "compat.h"
#include "superuser.h"

PG_FUNCTION_INFO_V1(jobq_schedule);
PG_FUNCTION_INFO_V1(jobq_unschedule);
PG_FUNCTION_INFO_V1(jobq_pause_schedule);
PG_FUNCTION_INFO_V1(jobq_resume_schedule);

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
	int rc;

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
 * A session in pg_cron's database: SPI, as the bootstrap superuser, when
 * it is this database (the caller's transaction); else a libpq connection
 * with a transaction of its own, committed by cron_commit.
 */
typedef struct CronConn
{
	const char *db;
	PGconn *conn; /* NULL: pg_cron's database is this one */
} CronConn;

pg_noreturn static void cron_fail(CronConn *cc, PGresult *res);

static void
cron_connect(CronConn *cc, const char *cron_db)
{
	const char *socket_dirs;
	char *dirs;
	List *dir_list = NIL;
	const char *keys[9];
	const char *vals[9];
	char port[16];
	PGresult *res;

	cc->db = cron_db;
	cc->conn = NULL;
	if (strcmp(cron_db, get_database_name(MyDatabaseId)) == 0)
	{
		run_spi(CRON_IS_PG_CRON, 0, NULL, NULL, NULL, false, SPI_OK_SELECT);
		if (strcmp(spi_text(1), "t") != 0)
			not_installed(cron_db);
		return;
	}

	socket_dirs = GetConfigOption("unix_socket_directories", false, false);
	dirs = pstrdup(socket_dirs ? socket_dirs : "");
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

	cc->conn = PQconnectdbParams(keys, vals, false);
	if (cc->conn == NULL || PQstatus(cc->conn) != CONNECTION_OK)
	{
		char *msg = pstrdup(cc->conn ? PQerrorMessage(cc->conn) : "out of memory");

		PQfinish(cc->conn);
		cc->conn = NULL;
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to pg_cron's database \"%s\": %s", cron_db, msg),
				 errhint("jobq connects over the local socket as \"%s\"; pg_hba.conf must let it in "
						 "(peer or trust), or call jobq.schedule in database \"%s\".",
						 vals[3], cron_db)));
	}
	res = PQexec(cc->conn, CRON_IS_PG_CRON);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		strcmp(PQgetvalue(res, 0, 0), "t") != 0)
	{
		PQclear(res);
		PQfinish(cc->conn);
		cc->conn = NULL;
		not_installed(cron_db);
	}
	PQclear(res);
	res = PQexec(cc->conn, "BEGIN");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		cron_fail(cc, res);
	PQclear(res);
}

/*
 * Rethrow a libpq error with pg_cron's SQLSTATE (else 38000) and primary
 * message; the connection is closed first, which rolls its work back.
 */
static void
cron_fail(CronConn *cc, PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char *msg = pstrdup(primary ? primary : PQerrorMessage(cc->conn));
	int code = ERRCODE_EXTERNAL_ROUTINE_EXCEPTION;

	if (state && strlen(state) == 5)
		code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
	PQclear(res);
	PQfinish(cc->conn);
	cc->conn = NULL;
	ereport(ERROR,
			(errcode(code),
			 errmsg("%s", msg),
			 errcontext("pg_cron in database \"%s\"", cc->db)));
}

/*
 * Run a statement (parameters $1.. as text) in pg_cron's database; returns
 * the first ncols columns of its first row (NULL for a null), or NULL when
 * there is no row.
 */
static char **
cron_query(CronConn *cc, const char *sql, int nparams, const char *const *params, int ncols)
{
	char **row = palloc0(sizeof(char *) * ncols);
	int i;

	if (cc->conn == NULL)
	{
		Oid *types = palloc(sizeof(Oid) * Max(nparams, 1));
		Datum *values = palloc(sizeof(Datum) * Max(nparams, 1));
		char *nulls = palloc(Max(nparams, 1) + 1);

		for (i = 0; i < nparams; i++)
		{
			types[i] = TEXTOID;
			values[i] = params[i] ? CStringGetTextDatum(params[i]) : (Datum) 0;
			nulls[i] = params[i] ? ' ' : 'n';
		}
		nulls[nparams] = '\0';
		run_spi(sql, nparams, types, values, nulls, false, SPI_OK_SELECT);
		if (SPI_processed == 0)
			return NULL;
		for (i = 0; i < ncols; i++)
			row[i] = spi_text(i + 1);
	}
	else
	{
		PGresult *res = PQexecParams(cc->conn, sql, nparams, NULL, params, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			cron_fail(cc, res);
		if (PQntuples(res) == 0)
		{
			PQclear(res);
			return NULL;
		}
		for (i = 0; i < ncols; i++)
			if (!PQgetisnull(res, 0, i))
				row[i] = pstrdup(PQgetvalue(res, 0, i));
		PQclear(res);
	}
	return row;
}

/* Commit the work of a libpq session and close it (SPI: nothing to do). */
static void
cron_commit(CronConn *cc)
{
	PGresult *res;

	if (cc->conn == NULL)
		return;
	res = PQexec(cc->conn, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		cron_fail(cc, res);
	PQclear(res);
	PQfinish(cc->conn);
	cc->conn = NULL;
}

/* Close a libpq session without committing its work. */
static void
cron_abandon(CronConn *cc)
{
	if (cc->conn != NULL)
		PQfinish(cc->conn);
	cc->conn = NULL;
}

/*
 * The pg_cron job jobq.schedule may change: the one the schedule stored
 * ($2 id, $3 name, $4 its owner's name), if it still has that name, this
 * database ($1) and that user; else one with the name a new job would
 * get ($5), this database, the owner ($6) and the command ($7), left by a
 * call whose transaction rolled back after pg_cron's database committed.
 * No other job is touched: not another database's, not another user's.
 */
#define CRON_FIND_JOB \
	"SELECT j.jobid, j.jobname FROM cron.job j " \
	"WHERE j.database = $1 " \
	"AND ((j.jobid = $2::bigint AND j.jobname = $3 AND j.username = $4) " \
	"  OR (j.jobname = $5 AND j.username = $6 AND j.command = $7)) " \
	"ORDER BY (j.jobid = $2::bigint) IS TRUE DESC LIMIT 1"

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
	char *name = text_arg(fcinfo, 0, "schedule name");
	char *schedule = text_arg(fcinfo, 1, "schedule");
	char *kind = text_arg(fcinfo, 2, "job kind");
	char *database = get_database_name(MyDatabaseId);
	Oid caller = GetUserId();
	Oid types[7] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, INT4OID, OIDOID};
	Datum values[7];
	char nulls[8] = "       ";
	char *new_name;
	char *command;
	char *owner;
	const char *params[7];
	char **row;
	char *job_id;
	char *job_name;
	CronConn cc;
	int64 result;

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

	run_spi("SELECT cron_job_name, command, owner_name, "
			"old_cron_job_id, old_cron_job_name, old_owner_name "
			"FROM jobq._schedule_save($1, $2, $3, $4, $5, $6, $7)",
			7, types, values, nulls, false, SPI_OK_SELECT);
	new_name = spi_text(1);
	command = spi_text(2);
	owner = spi_text(3);
	params[0] = database;
	params[1] = spi_text(4);
	params[2] = spi_text(5);
	params[3] = spi_text(6);
	params[4] = new_name;
	params[5] = owner;
	params[6] = command;

	cron_connect(&cc, cron_db);
	row = cron_query(&cc, CRON_FIND_JOB, 7, params, 2);
	if (row != NULL)
	{
		/* the schedule's own job: same id, new cron line, command and user */
		job_id = row[0];
		job_name = row[1];
		params[0] = job_id;
		params[1] = schedule;
		params[2] = command;
		params[3] = database;
		params[4] = owner;
		(void) cron_query(&cc, "SELECT cron.alter_job($1::bigint, $2, $3, $4, $5)",
						  5, params, 1);
	}
	else
	{
		row = cron_query(&cc, "SELECT pg_catalog.count(*) FROM cron.job WHERE jobname = $1",
						 1, params + 4, 1);
		if (strcmp(row[0], "0") != 0)
		{
			cron_abandon(&cc);
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("a pg_cron job named \"%s\" already exists", new_name),
					 errdetail("It is not the pg_cron job of schedule \"%s\", and jobq.schedule changes no other.",
							   name),
					 errhint("Remove that job in database \"%s\" with cron.unschedule, or use another schedule name.",
							 cron_db)));
		}
		job_name = new_name;
		params[0] = new_name;
		params[1] = schedule;
		params[2] = command;
		params[3] = database;
		params[4] = owner;
		row = cron_query(&cc, "SELECT cron.schedule_in_database($1, $2, $3, $4, $5)",
						 5, params, 1);
		job_id = row ? row[0] : NULL;
		if (job_id == NULL)
		{
			cron_abandon(&cc);
			elog(ERROR, "cron.schedule_in_database returned no job id");
		}
	}
	cron_commit(&cc);
	result = pg_strtoint64(job_id);

	{
		Oid idtypes[3] = {TEXTOID, INT8OID, TEXTOID};
		Datum idvalues[3];

		idvalues[0] = CStringGetTextDatum(name);
		idvalues[1] = Int64GetDatum(result);
		idvalues[2] = CStringGetTextDatum(job_name);
		run_spi("SELECT jobq._schedule_set_cron_id($1, $2, $3)", 3, idtypes, idvalues, NULL,
				false, SPI_OK_SELECT);
	}
	SPI_finish();
	PG_RETURN_INT64(result);
}

Datum
jobq_unschedule(PG_FUNCTION_ARGS)
{
	const char *cron_db = cron_database();
	char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Oid types[2] = {TEXTOID, OIDOID};
	Datum values[2];
	bool deleted;
	const char *params[4];
	CronConn cc;

	values[0] = CStringGetTextDatum(name);
	values[1] = ObjectIdGetDatum(GetUserId());

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run_spi("SELECT deleted, cron_job_id, cron_job_name, owner_name "
			"FROM jobq._schedule_delete($1, $2)",
			2, types, values, NULL, false, SPI_OK_SELECT);
	deleted = strcmp(spi_text(1), "t") == 0;
	params[0] = spi_text(2);
	params[1] = spi_text(3);
	params[2] = get_database_name(MyDatabaseId);
	params[3] = spi_text(4);
	if (deleted && params[0] != NULL)
	{
		/* the schedule's own job only: its id, name, database and user */
		cron_connect(&cc, cron_db);
		(void) cron_query(&cc,
						  "SELECT pg_catalog.count(cron.unschedule(jobid)) FROM cron.job "
						  "WHERE jobid = $1::bigint AND jobname = $2 AND database = $3 AND username = $4",
						  4, params, 1);
		cron_commit(&cc);
	}
	SPI_finish();
	PG_RETURN_BOOL(deleted);
}

/*
 * Set the paused flag of the schedule name for the caller (as the
 * bootstrap superuser); whether it changed.  A schedule the caller is not
 * a member of the owner of does not exist for it.
 */
static bool
set_paused(text *name, bool paused)
{
	Oid types[3] = {TEXTOID, OIDOID, BOOLOID};
	Datum values[3];
	char *changed;

	values[0] = PointerGetDatum(name);
	values[1] = ObjectIdGetDatum(GetUserId());
	values[2] = BoolGetDatum(paused);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run_spi("SELECT jobq._schedule_pause($1, $2, $3)", 3, types, values, NULL, false, SPI_OK_SELECT);
	changed = spi_text(1);
	if (changed == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("schedule \"%s\" does not exist", text_to_cstring(name)),
				 errhint("jobq.schedules lists the schedules of the roles you are a member of.")));
	paused = strcmp(changed, "t") == 0;
	SPI_finish();
	return paused;
}

Datum
jobq_pause_schedule(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(set_paused(PG_GETARG_TEXT_PP(0), true));
}

Datum
jobq_resume_schedule(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(set_paused(PG_GETARG_TEXT_PP(0), false));
}
