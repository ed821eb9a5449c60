/*-------------------------------------------------------------------------
 *
 * api.h
 *	  What the SQL functions of api.c share with those of external.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_API_H
#define JOBQ_API_H

#include "compat.h"
#include "jobq.h"

extern void jobq_check_name(const char *name, const char *what);
pg_noreturn extern void jobq_job_not_found(int64 job_id);

#endif /* JOBQ_API_H */
