/*-------------------------------------------------------------------------
 *
 * http_check.h
 *	  A network job's request checked before anything is sent: at enqueue
 *	  and in the net worker (http_check.c).  No libcurl here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_HTTP_CHECK_H
#define JOBQ_HTTP_CHECK_H

#include "jobq.h"

extern void jobq_http_check_request(Jsonb *request);

#endif /* JOBQ_HTTP_CHECK_H */
