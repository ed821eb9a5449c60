/*-------------------------------------------------------------------------
 *
 * queue_int.h
 *	  What the files of the queue layer share among themselves (queue.c):
 *	  the one statement shape that moves jobs out of jobq._queue.
 *
 * Moving a job out of jobq._queue always goes through that shape:
 * DELETE ... RETURNING feeding INSERT INTO jobq._done, so a finished job is
 * never in both tables nor in neither.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_QUEUE_INT_H
#define JOBQ_QUEUE_INT_H

#include "executor/spi.h"

/* The error columns of a job whose error stays as it was. */
#define KEEP_ERROR "last_error, last_error_sqlstate, last_error_context, last_error_at"

extern SPIPlanPtr jobq_queue_prepare_move(SPIPlanPtr *cache, const char *cond,
										  const char *status, const char *result,
										  const char *error_columns,
										  const char *join, int nargs,
										  Oid *argtypes);

#endif /* JOBQ_QUEUE_INT_H */
