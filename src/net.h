/*-------------------------------------------------------------------------
 *
 * net.h
 *	  The net worker's loop (net.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_NET_H
#define JOBQ_NET_H

#include "compat.h"

pg_noreturn extern void jobq_net_main(void);

#endif /* JOBQ_NET_H */
