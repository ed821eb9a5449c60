/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  A ProcessUtility hook that moves jobq's workers out of the way of
 *	  commands that need a database to themselves.
 *
 * DROP DATABASE, ALTER DATABASE (RENAME, SET TABLESPACE ...) and CREATE
 * DATABASE ... TEMPLATE refuse to run while other sessions are connected
 * to the database.  Before they run, the hook stops the database's workers
 * (SIGTERM: their jobs go back to pending, attempt not counted), keeps the
 * launcher from restarting them for a few seconds, and waits until they
 * are gone.  DROP EXTENSION jobq wakes the database's workers at commit so
 * that they notice and leave.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"

#include "shmem.h"
#include "utility.h"

#define PAUSE_SECONDS 10
#define WAIT_MS 5000

static ProcessUtility_hook_type prev_process_utility = NULL;

/* Stop the workers of a database and wait (a while) until they are gone. */
static void
clear_database(const char *dbname)
{
	Oid dboid;
	TimestampTz start = GetCurrentTimestamp();

	if (dbname == NULL || !jobq_shmem_available())
		return;
	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid) || dboid == MyDatabaseId)
		return;

	jobq_shmem_pause_database(dboid, PAUSE_SECONDS);
	while (jobq_shmem_connected_workers(dboid) > 0 &&
		   !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), WAIT_MS))
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static bool
names_jobq(List *objects)
{
	ListCell *lc;

	foreach(lc, objects)
		if (strcmp(strVal(lfirst(lc)), "jobq") == 0)
			return true;
	return false;
}

static void
jobq_process_utility(PlannedStmt *pstmt, const char *queryString,
					 bool readOnlyTree, ProcessUtilityContext context,
					 ParamListInfo params, QueryEnvironment *queryEnv,
					 DestReceiver *dest, QueryCompletion *qc)
{
	Node *parsetree = pstmt->utilityStmt;

	switch (nodeTag(parsetree))
	{
		case T_DropdbStmt:
			clear_database(((DropdbStmt *) parsetree)->dbname);
			break;
		case T_AlterDatabaseStmt:
			clear_database(((AlterDatabaseStmt *) parsetree)->dbname);
			break;
		case T_RenameStmt:
			if (((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
				clear_database(((RenameStmt *) parsetree)->subname);
			break;
		case T_CreatedbStmt:
			{
				ListCell *lc;

				foreach(lc, ((CreatedbStmt *) parsetree)->options)
				{
					DefElem *opt = lfirst(lc);

					if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
						clear_database(defGetString(opt));
				}
			}
			break;
		case T_DropStmt:
			if (((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION &&
				names_jobq(((DropStmt *) parsetree)->objects))
				jobq_shmem_wake_all_on_commit();
			break;
		default:
			break;
	}

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context,
							 params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

void
jobq_utility_install(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = jobq_process_utility;
}
