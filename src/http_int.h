/*-------------------------------------------------------------------------
 *
 * http_int.h
 *	  What the files of a network job's request share among themselves:
 *	  reading the request (http_request.c), URLs and the address checks
 *	  (http_check.c), used by http.c.  Includes libcurl's header.
 *
 *-------------------------------------------------------------------------
 */
#ifndef JOBQ_HTTP_INT_H
#define JOBQ_HTTP_INT_H

#include "http.h"

#define TIMEOUT_MIN_MS 100 /* bounds of timeout_ms and connect_timeout_ms */
#define TIMEOUT_MAX_MS 3600000

/* http_request.c */
typedef void (*JobqHttpMemberFn)(const char *key, const char *value, void *arg);

extern JsonbValue *jobq_http_req_get(Jsonb *req, const char *key, JsonbValue *buf);
extern char *jobq_http_scalar_text(const JsonbValue *v);
extern char *jobq_http_req_text(Jsonb *req, const char *key);
extern bool jobq_http_req_bool(Jsonb *req, const char *key);
extern long jobq_http_req_ms(Jsonb *req, const char *key, long fallback);
extern void jobq_http_req_each(Jsonb *req, const char *key, JobqHttpMemberFn fn,
							   void *arg);

/* http_check.c */
extern curl_socket_t jobq_http_open_socket(void *arg, curlsocktype purpose,
										   struct curl_sockaddr *a);
extern int jobq_http_before_request(void *arg, char *primary_ip, char *local_ip,
									int primary_port, int local_port);
extern void jobq_http_url_parts(CURLU *u, char **scheme, char **host, long *port);
extern CURLU *jobq_http_parse_url(const char *url, char **scheme, char **host,
								  long *port);
extern char *jobq_http_url_for_log(CURLU *u, const char *scheme, const char *host);
extern int jobq_http_allowed_addresses(Jsonb *req, const char *host,
									   JobqAddrRange **ranges);

#endif /* JOBQ_HTTP_INT_H */
