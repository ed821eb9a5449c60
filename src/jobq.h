/*-------------------------------------------------------------------------
 *
 * jobq.h
 *	  What every module of jobq shares: the job, kind, outcome and claim key
 *	  types, and the limits of names and timeouts.  Each module's functions
 *	  are declared in its own header (see src/README.md).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_H
#define JOBQ_H

#include "postgres.h"

#include <limits.h>

#include "access/htup.h"
#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"

/*
 * An interval in milliseconds, a month counted as 30 days: how jobq reads
 * the timeouts it is given (api.c) and the ones it stored (claim.c).  It
 * cannot overflow: an interval's fields give at most about 5.8e18 ms.
 */
static inline int64
jobq_interval_ms(const Interval *iv)
{
	return iv->time / 1000 +
		   (int64) iv->day * 86400000 +
		   (int64) iv->month * 30 * 86400000;
}

/* limits */
#define JOBQ_MAX_QUEUE_NAME 63		  /* bytes of a queue or kind name */
#define JOBQ_MAX_JOB_KEY 255		  /* bytes of a job_key */
#define JOBQ_MAX_PROGRESS_MESSAGE 255 /* bytes of a jobq.set_progress message */
/* a job's or a kind's timeout: what STATEMENT_TIMEOUT can arm (~24.8 days) */
#define JOBQ_MAX_TIMEOUT_MS INT_MAX

/* A kind as stored in jobq._kinds. */
typedef struct JobqKind
{
	char name[NAMEDATALEN];
	bool builtin;
	Oid handler; /* InvalidOid for built-in kinds */
	bool handler_returns_void;
	char queue[JOBQ_MAX_QUEUE_NAME + 1];
	int32 priority;
	int32 max_attempts; /* 0 = not set */
	int64 timeout_ms;	/* 0 = not set */
	bool net;			/* run by the net worker */
	bool runs_sql;		/* built-in, no handler, not net: the payload's SQL */
	bool restricted;	/* runs as a security-restricted operation */
	bool keep_response; /* a network kind whose response is its result */
	bool external;		/* run by the application's workers (jobq.claim) */
} JobqKind;

/* A claimed job, as a worker runs it. */
typedef struct JobqJob
{
	int64 id;
	char *kind;
	Jsonb *payload;
	Oid owner;
	int32 precedence;
	int32 priority;
	TimestampTz run_at;
	int32 attempts;
	int32 max_attempts;
	int64 timeout_ms;
	TimestampTz created_at;
	TimestampTz claimed_at; /* the claim's time, written to started_at */
	/* external claims only (jobq.claim), else NULL */
	char *queue;
	char *job_key;
	char *concurrency_key;
} JobqJob;

/* What a handler left behind. */
typedef struct JobqOutcome
{
	bool ok;
	Jsonb *result; /* may be NULL */
	char *message; /* on error */
	char *sqlstate;
	char *context;
} JobqOutcome;

/* Values for a new job, already checked. */
typedef struct JobqNewJob
{
	const char *kind;
	const char *queue;
	int32 priority;
	TimestampTz run_at;
	int32 max_attempts;
	int64 timeout_ms; /* 0 = none */
	Oid owner;
	bool net;					 /* a network kind */
	bool runs_sql;				 /* its payload is SQL (JobqKind.runs_sql) */
	bool external;				 /* an external kind (JobqKind.external) */
	const char *concurrency_key; /* NULL: none */
} JobqNewJob;

/* A job's place in the claim order. */
typedef struct JobqClaimKey
{
	int32 precedence; /* its queue's (jobq.create_queue), 0 by default */
	int32 priority;
	TimestampTz run_at;
	int64 id;
} JobqClaimKey;

/* One attempt of a network job, for the delivery log. */
typedef struct JobqDelivery
{
	int64 job_id;
	int32 attempt;
	const char *kind;
	Oid owner;
	const char *channel;		/* may be NULL */
	const char *recipient;		/* may be NULL */
	const char *url;			/* without user info or query */
	int32 status_code;			/* 0: no response */
	const char *outcome;		/* delivered, retry or failed */
	const char *error;			/* may be NULL */
	const char *error_sqlstate; /* may be NULL */
	const char *response;		/* may be NULL */
	double duration_ms;
	TimestampTz started_at;
	TimestampTz finished_at;
} JobqDelivery;

#endif /* JOBQ_H */
