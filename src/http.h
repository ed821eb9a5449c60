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

/* An address or range a transfer may connect to although it is not public. */
typedef struct JobqAddrRange
{
	int family;				/* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network order, masked to bits */
	int bits;
	long port; /* -1: any */
} JobqAddrRange;

typedef struct JobqTransfer
{
	MemoryContext cxt; /* everything below lives here */
	JobqJob job;	   /* kind copied, payload not kept */
	CURL *easy;
	struct curl_slist *headers;
	struct curl_slist *rcpt;
	bool smtp;
	bool keep_response; /* keep the response body in the result */
	char *body;			/* the request body, or the mail */
	size_t body_len;
	size_t body_sent;		 /* SMTP upload position */
	StringInfoData response; /* up to response_cap bytes */
	size_t response_cap;
	char errbuf[CURL_ERROR_SIZE];
	char *channel;
	char *recipient;
	char *log_url; /* scheme://host[:port]/path */
	TimestampTz started_at;
	instr_time start;

	/* the addresses allowed although not public (see addr_allowed) */
	JobqAddrRange *allowed;
	int nallowed;

	/* redirects, followed one hop at a time by jobq_http_redirect */
	bool follow;					  /* the channel allows them */
	int redirects;					  /* hops so far */
	char *scheme;					  /* of the first URL; every hop keeps it */
	char *origin;					  /* scheme://host:port of the first URL */
	bool cross_origin;				  /* a hop has left the origin: no secrets */
	char *method;					  /* NULL: GET */
	char *content_type;				  /* of the body, for a hop to another origin */
	struct curl_slist *plain_headers; /* what a hop to another origin gets */
	long timeout_ms;				  /* for all hops together */
	long connect_timeout_ms;

	/* a refusal by jobq rather than by curl or the server: final */
	char refused[256];
	char refused_state[6];
	bool hop_refused;	/* a redirect was refused */
	int sockets_opened; /* in this hop */
} JobqTransfer;

/* What a finished transfer comes to. */
typedef struct JobqTransferResult
{
	JobqOutcome outcome;
	bool final;			 /* no point in another attempt */
	double min_delay_ms; /* Retry-After */
	JobqDelivery delivery;
} JobqTransferResult;

extern JobqTransfer *jobq_http_prepare(const JobqJob *job, Jsonb *request,
									   bool keep_response, MemoryContext parent);
extern bool jobq_http_redirect(JobqTransfer *t);
extern void jobq_http_finish(JobqTransfer *t, CURLcode rc, JobqTransferResult *res);
extern void jobq_http_failed_before_start(const JobqJob *job, const JobqOutcome *out,
										  JobqDelivery *dl);
extern void jobq_http_free(JobqTransfer *t);

#endif /* JOBQ_HTTP_H */
