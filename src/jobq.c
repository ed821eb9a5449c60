/*-------------------------------------------------------------------------
 *
 * jobq.c
 *	  Module entry point.
 *
 * _PG_init defines the settings always; shared memory, the launcher and the
 * utility hook only while the library is preloaded.  Without preloading the
 * SQL functions still work (jobs can be enqueued) but no worker runs them:
 * CREATE EXTENSION says so (see jobq__on_create).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "external_wait.h"
#include "guc.h"
#include "launcher.h"
#include "queue_limits.h"
#include "shmem.h"
#include "utility.h"

PG_MODULE_MAGIC;

void _PG_init(void);

void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	jobq_guc_define();

	if (!process_shared_preload_libraries_in_progress)
		return;

	jobq_shmem_request();
	jobq_limits_request();
	jobq_external_wait_request();
	jobq_launcher_register();
	jobq_utility_install();
}
