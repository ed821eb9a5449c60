/*-------------------------------------------------------------------------
 *
 * http.h
 *	  A network job's transfer: what http.c builds and net.c drives.
 *
 * Only http.c and net.c include libcurl's header.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_HTTP_H
#define JOBQ_HTTP_H

#include <curl/curl.h>

#include "lib/stringinfo.h"
#include "portability/instr_time.h"

#include "jobq.h"

struct JobqTransfer
{
	MemoryContext cxt;			/* everything below lives here */
	JobqJob		job;			/* kind copied, payload not kept */
	CURL	   *easy;
	struct curl_slist *headers;
	struct curl_slist *rcpt;
	bool		smtp;
	bool		http_kind;		/* keep the response body in the result */
	char	   *body;			/* the request body, or the mail */
	size_t		body_len;
	size_t		body_sent;		/* SMTP upload position */
	StringInfoData response;	/* up to response_cap bytes */
	size_t		response_cap;
	char		errbuf[CURL_ERROR_SIZE];
	char	   *channel;
	char	   *recipient;
	char	   *log_url;		/* scheme://host[:port]/path */
	TimestampTz started_at;
	instr_time	start;
};

/* What a finished transfer comes to. */
typedef struct JobqTransferResult
{
	JobqOutcome outcome;
	bool		final;			/* no point in another attempt */
	double		min_delay_ms;	/* Retry-After */
	JobqDelivery delivery;
} JobqTransferResult;

extern JobqTransfer *jobq_http_prepare(const JobqJob *job, Jsonb *request,
									   MemoryContext parent);
extern void jobq_http_finish(JobqTransfer *t, CURLcode rc, JobqTransferResult *res);
extern void jobq_http_failed_before_start(const JobqJob *job, const JobqOutcome *out,
										  JobqDelivery *dl);
extern void jobq_http_free(JobqTransfer *t);

#endif							/* JOBQ_HTTP_H */
