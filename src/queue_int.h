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

/*
 * The same shape for jobs that leave the running state (queue.c): the
 * statement returns their queues and keys, which jobq_queue_running_left
 * reads after it ran to give their places back.
 */
extern SPIPlanPtr jobq_queue_prepare_move_running(SPIPlanPtr *cache, const char *cond,
												  const char *status, const char *result,
												  const char *error_columns, const char *join,
												  int nargs, Oid *argtypes);
extern uint64 jobq_queue_running_left(void);

/* the backoff before a failed job's next attempt (queue.c) */
extern double jobq_queue_backoff_ms(int32 attempts);

#endif /* JOBQ_QUEUE_INT_H */
