/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Every jobq.* setting, defined in one place.
 *
 * docs/reference/settings.md documents every setting of this file;
 * test/t/022_docs.pl checks it against pg_settings.
 * jobq.max_workers, jobq.max_databases and jobq.max_queues size shared
 * memory, so they can only be set at server start; the others take effect on reload (workers and the launcher handle
 * SIGHUP) or, for the per-enqueue defaults, in the enqueuing session.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "miscadmin.h"
#include "utils/guc.h"

#include "guc.h"

int jobq_workers = 2;
int jobq_max_workers = 4;
int jobq_max_databases = 1000;
int jobq_max_queues = 1000;
int jobq_worker_idle_timeout = 10000;
int jobq_worker_yield_after = 5000;
int jobq_poll_interval = 10000;
int jobq_batch_size = 100;
bool jobq_durable_claims = false;
int jobq_default_max_attempts = 20;
int jobq_default_timeout = 0;
int jobq_max_payload_size = 1024;
int jobq_retry_base_delay = 1000;
int jobq_retry_max_delay = 3600 * 1000;
int jobq_retention = 86400;
int jobq_dead_retention = 30 * 86400;
int jobq_prune_interval = 60;
int jobq_vacuum_threshold = 10000;
int jobq_http_max_in_flight = 50;
int jobq_http_timeout = 30000;
int jobq_http_connect_timeout = 10000;
int jobq_http_max_response_size = 64;
char *jobq_http_allowed_hosts = NULL;
char *jobq_webhook_signing_key = NULL;
int jobq_delivery_retention = 30 * 86400;

/*
 * Define the settings.  Called from _PG_init whether or not the library is
 * preloaded, so that SHOW and SET work in any session; jobq.max_workers,
 * which sizes shared memory, exists only when preloaded.
 */
void
jobq_guc_define(void)
{
	DefineCustomIntVariable("jobq.workers",
							"Most SQL job workers one database may hold at once.",
							"Workers start when jobs are due and leave when idle; zero stops them all and jobs stay pending.",
							&jobq_workers, 2, 0, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	/* a server-start setting can only be defined while preloading */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("jobq.max_workers",
								"Number of job workers in the whole cluster, across databases.",
								"Each worker is a background worker: max_worker_processes must leave room for these and the launcher.",
								&jobq_max_workers, 4, 1, 1000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("jobq.max_databases",
								"Number of databases whose due jobs the launcher tracks in shared memory.",
								"Databases beyond it are polled every jobq.poll_interval instead.",
								&jobq_max_databases, 1000, 1, 1000000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("jobq.max_queues",
								"Number of queues, across databases, whose running jobs shared memory counts at once.",
								"A queue is counted while it has running jobs or a rate-limited start to space; "
								"the jobs of a limited queue wait while the table is full.",
								&jobq_max_queues, 1000, 16, 1000000,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.worker_idle_timeout",
							"Time a worker that finds no job due waits before it leaves and frees its slot.",
							"Zero: it leaves as soon as nothing is due.",
							&jobq_worker_idle_timeout, 10000, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.worker_yield_after",
							"Time a worker serves one database before it gives its slot to a database waiting for one.",
							"Only while another database has jobs due and no worker can start for want of a slot.",
							&jobq_worker_yield_after, 5000, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.poll_interval",
							"Longest time an idle worker sleeps before looking for jobs.",
							"Workers are woken at once when a job is enqueued; polling is a fallback.",
							&jobq_poll_interval, 10000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.batch_size",
							"Number of jobs a worker claims and commits together.",
							"A job that fails rolls back the jobs before it in the batch, which run again; jobs not started after 100 ms are given back.",
							&jobq_batch_size, 100, 1, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("jobq.durable_claims",
							 "Whether a worker's claim of a batch waits for its WAL flush, as synchronous_commit says, before the jobs run.",
							 "Off, the claim commits with synchronous_commit off: a crash can lose the claim and its counted attempt before the batch's commit flushes it, and the job runs again as if never claimed.  On, the attempt is counted durably before the handler runs, at the cost of one flush per claimed batch.",
							 &jobq_durable_claims, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.default_max_attempts",
							"Attempts of a job when neither the job nor its kind sets them.",
							NULL,
							&jobq_default_max_attempts, 20, 1, 1000000,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.default_timeout",
							"Time limit of one attempt when neither the job nor its kind sets one.",
							"Zero means no limit.",
							&jobq_default_timeout, 0, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.max_payload_size",
							"Largest payload a job may be enqueued with, as stored (jsonb).",
							"Only superusers may change it, so that no role can fill the queue with huge jobs.",
							&jobq_max_payload_size, 1024, 1, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.retry_base_delay",
							"Delay before the second attempt of a failed job; it doubles with each further attempt.",
							NULL,
							&jobq_retry_base_delay, 1000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.retry_max_delay",
							"Longest delay between two attempts of a failed job.",
							NULL,
							&jobq_retry_max_delay, 3600 * 1000, 1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.retention",
							"How long succeeded and cancelled jobs are kept.",
							"Zero deletes succeeded jobs as they finish; -1 keeps them until deleted by hand.",
							&jobq_retention, 86400, -1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.dead_retention",
							"How long dead jobs are kept for inspection and retry.",
							"-1 keeps them until deleted by hand.",
							&jobq_dead_retention, 30 * 86400, -1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.prune_interval",
							"How often a worker of each database deletes finished jobs past their retention.",
							NULL,
							&jobq_prune_interval, 60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.vacuum_threshold",
							"Jobs finished in a database after which a worker vacuums jobq._queue.",
							"At most once a second.  Zero leaves the table to autovacuum.",
							&jobq_vacuum_threshold, 10000, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.http_max_in_flight",
							"Network requests (http, email, sms, webhook jobs) in flight at once in each database.",
							"Zero starts no net worker: network jobs stay pending.",
							&jobq_http_max_in_flight, 50, 0, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.http_timeout",
							"Time limit of one network request when neither its channel nor its job sets one.",
							NULL,
							&jobq_http_timeout, 30000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.http_connect_timeout",
							"Time limit for connecting to a server when the channel sets none.",
							NULL,
							&jobq_http_connect_timeout, 10000, 100, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.http_max_response_size",
							"Size of a response body kept by a network job; the rest is read and discarded.",
							NULL,
							&jobq_http_max_response_size, 64, 1, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);

	DefineCustomStringVariable("jobq.http_allowed_hosts",
							   "Hosts that http and webhook jobs may name in a URL of their own: host, host:port, *.domain, *, or an IP address or range (10.0.0.0/8, [fd00::]/8, with a port or not), comma-separated.",
							   "Channels are not limited by it.  A name that resolves to an address that is not public is reached only if an address entry allows it.  Empty allows no URL of a job's own.",
							   &jobq_http_allowed_hosts, "",
							   PGC_SUSET, GUC_LIST_INPUT, NULL, NULL, NULL);

	DefineCustomStringVariable("jobq.webhook_signing_key",
							   "Key that signs webhook jobs sent to a URL of their own (channels have their own signing_key).",
							   "Empty sends them unsigned.",
							   &jobq_webhook_signing_key, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL, NULL, NULL, NULL);

	DefineCustomIntVariable("jobq.delivery_retention",
							"How long the delivery log of network jobs is kept.",
							"-1 keeps it until deleted by hand.",
							&jobq_delivery_retention, 30 * 86400, -1, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	MarkGUCPrefixReserved("jobq");
}
