/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  A worker's entry point and the SQL worker's main loop (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_WORKER_H
#define JOBQ_WORKER_H


#include "fmgr.h"

extern PGDLLEXPORT void jobq_worker_main(Datum main_arg);

#endif /* JOBQ_WORKER_H */
