/*-------------------------------------------------------------------------
 *
 * superuser.h
 *	  The switch to the bootstrap superuser and the SPI plumbing of the
 *	  statements jobq runs on its own behalf (superuser.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_SUPERUSER_H
#define JOBQ_SUPERUSER_H

#include "postgres.h"

#include "executor/spi.h"

/* The caller's identity while jobq runs a statement as the bootstrap superuser. */
typedef struct JobqSuperuser
{
	Oid save_userid;
	int save_sec_context;
	int path_nestlevel; /* jobq_compat_pop_catalog_path's argument */
} JobqSuperuser;

/* An SPI connection as the bootstrap superuser (jobq_superuser_spi_begin). */
typedef struct JobqSpiCall
{
	JobqSuperuser su;
	bool pushed_snapshot;
	MemoryContext caller_cxt;
	int guc_nestlevel; /* jobq_superuser_spi_begin_indexed's settings, or 0 */
} JobqSpiCall;

extern void jobq_superuser_begin(JobqSuperuser *su);
extern void jobq_superuser_end(const JobqSuperuser *su);
extern void jobq_superuser_spi_begin(JobqSpiCall *qc);
extern void jobq_superuser_spi_begin_indexed(JobqSpiCall *qc);
extern void jobq_superuser_spi_end(JobqSpiCall *qc);
extern SPIPlanPtr jobq_superuser_prepare(SPIPlanPtr *cache, const char *sql,
										 int nargs, Oid *argtypes);
extern uint64 jobq_superuser_execute(SPIPlanPtr plan, Datum *values,
									 const char *nulls, int expected);

#endif /* JOBQ_SUPERUSER_H */
