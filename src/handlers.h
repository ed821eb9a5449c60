/*-------------------------------------------------------------------------
 *
 * handlers.h
 *	  What a job does: the built-in sql kind and handler calls (handlers.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_HANDLERS_H
#define JOBQ_HANDLERS_H

#include "jobq.h"

extern void jobq_handler_check(Oid handler, bool *returns_void);
extern void jobq_handler_check_payload(const char *kind, bool runs_sql,
									   Jsonb *payload);
extern Jsonb *jobq_handler_run(const JobqJob *job, const JobqKind *kind);
extern bool jobq_handler_restricted(const JobqKind *kind);

#endif /* JOBQ_HANDLERS_H */
