/*-------------------------------------------------------------------------
 *
 * net.h
 *	  The net worker's loop (net.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_NET_H
#define JOBQ_NET_H


extern void jobq_net_main(void) pg_attribute_noreturn();

#endif /* JOBQ_NET_H */
