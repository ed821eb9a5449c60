/*-------------------------------------------------------------------------
 *
 * utility.h
 *	  The ProcessUtility hook (utility.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_UTILITY_H
#define JOBQ_UTILITY_H


extern void jobq_utility_install(void);

#endif /* JOBQ_UTILITY_H */
