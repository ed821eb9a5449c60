/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher (launcher.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_LAUNCHER_H
#define JOBQ_LAUNCHER_H


#include "fmgr.h"

extern void jobq_launcher_register(void);
extern PGDLLEXPORT void jobq_launcher_main(Datum main_arg);

#endif /* JOBQ_LAUNCHER_H */
