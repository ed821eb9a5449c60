/*-------------------------------------------------------------------------
 *
 * guc.h
 *	  The jobq.* settings (guc.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_GUC_H
#define JOBQ_GUC_H


extern int jobq_workers;
extern int jobq_max_workers;
extern int jobq_max_databases;
extern int jobq_max_queues;
extern int jobq_worker_idle_timeout;
extern int jobq_worker_yield_after;
extern int jobq_poll_interval;
extern int jobq_batch_size;
extern bool jobq_durable_claims;
extern int jobq_default_max_attempts;
extern int jobq_default_timeout;
extern int jobq_max_payload_size;
extern int jobq_retry_base_delay;
extern int jobq_retry_max_delay;
extern int jobq_retention;
extern int jobq_dead_retention;
extern int jobq_prune_interval;
extern int jobq_vacuum_threshold;
extern int jobq_http_max_in_flight;
extern int jobq_http_timeout;
extern int jobq_http_connect_timeout;
extern int jobq_http_max_response_size;
extern char *jobq_http_allowed_hosts;
extern char *jobq_webhook_signing_key;
extern int jobq_delivery_retention;

extern void jobq_guc_define(void);

#endif /* JOBQ_GUC_H */
