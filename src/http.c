/*-------------------------------------------------------------------------
 *
 * http.c
 *	  A network job's request: checked, made into a libcurl transfer, and
 *	  its outcome classified.
 *
 * jobq._net_request (SQL) turns a job into a request, a jsonb object with
 * url, type (http or smtp), method, headers, body or form, username and
 * password, mail_from and mail_rcpt, starttls, sign and sign_key,
 * payload_url, follow_redirects, timeout_ms, connect_timeout_ms, channel,
 * recipient, and for channels ca_cert, allowed_addresses, and path with
 * base_url.  http_request.c reads it; http_check.c checks it
 * (jobq_http_check_request, also at enqueue) and every address a transfer
 * connects to; this file builds the curl easy handle (jobq_http_prepare),
 * follows a channel's redirects one hop at a time (jobq_http_redirect,
 * called by net.c when a transfer ends) and reads the outcome
 * (jobq_http_finish).  net.c drives the transfers.
 *
 * Rules every transfer follows:
 *	- only http and https (smtp and smtps for smtp channels), parsed by
 *	  curl's own URL parser, the one the transfer uses;
 *	- a URL taken from a payload must name a host of jobq.http_allowed_hosts
 *	  and is never redirected; a channel's path stays under the channel's
 *	  URL; a channel's redirects, when its config allows them, keep the
 *	  protocol of the channel's URL, and a hop to another origin carries no
 *	  credentials and no header of the channel or the job;
 *	- every connection goes to a public address or to one allowed
 *	  explicitly (see addr_allowed), checked on the address curl connects
 *	  to, whatever the name resolved to;
 *	- a channel's ca_cert, if any, is the CA that https and STARTTLS trust;
 *	- no proxy from the server's environment, no signals (CURLOPT_NOSIGNAL);
 *	- response bodies are kept up to jobq.http_max_response_size;
 *	- secrets (passwords, tokens, signing keys, secret headers) go to curl
 *	  and nowhere else: errors and the delivery log carry curl's message
 *	  and the URL without user info or query string.
 *
 * Outcomes: 2xx (or an accepted mail) succeeds.  408, 429, 5xx, and curl's
 * errors but a few (bad URL, protocol refused, login denied, redirect loop)
 * are retried, not sooner than Retry-After; other statuses are final.  An
 * SMTP reply of 4xx is retried, 5xx is final.  The SQLSTATE of a failure is
 * JQ<status> or JQC<curl error number>.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/hmac.h"
#include "common/sha2.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "guc.h"
#include "http.h"
#include "http_int.h"

#define JOBQ_USER_AGENT "jobq/" JOBQ_VERSION
#define MAX_REDIRECTS 5
#define RESPONSE_IN_LOG 1000 /* characters of a response in the delivery log */
#define RETRY_AFTER_MAX_S 86400

/* ---------------------------------------------------------------------
 * Building the transfer
 * ------------------------------------------------------------------- */

static size_t
write_response(char *data, size_t size, size_t nmemb, void *arg)
{
	JobqTransfer *t = arg;
	size_t n = size * nmemb;

	if ((size_t) t->response.len < t->response_cap)
		appendBinaryStringInfo(&t->response, data,
							   Min(n, t->response_cap - t->response.len));
	return n; /* the rest is read and dropped */
}

static size_t
read_mail(char *buffer, size_t size, size_t nitems, void *arg)
{
	JobqTransfer *t = arg;
	size_t n = Min(size * nitems, t->body_len - t->body_sent);

	memcpy(buffer, t->body + t->body_sent, n);
	t->body_sent += n;
	return n;
}

static void
add_header(const char *key, const char *value, void *arg)
{
	JobqTransfer *t = arg;
	char *line = psprintf("%s: %s", key, value);
	struct curl_slist *l = curl_slist_append(t->headers, line);

	if (l == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	t->headers = l;
}

static void
add_rcpt(const char *key, const char *value, void *arg)
{
	JobqTransfer *t = arg;
	struct curl_slist *l = curl_slist_append(t->rcpt, psprintf("<%s>", value));

	if (l == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	t->rcpt = l;
}

/*
 * What a hop to another origin keeps of the request's headers:
 * Idempotency-Key, and Content-Type when the body goes along (added by
 * jobq_http_redirect).
 */
static void
keep_plain_header(const char *key, const char *value, void *arg)
{
	JobqTransfer *t = arg;
	struct curl_slist *l;

	if (pg_strcasecmp(key, "Content-Type") == 0)
		t->content_type = psprintf("Content-Type: %s", value);
	else if (pg_strcasecmp(key, "Idempotency-Key") == 0)
	{
		l = curl_slist_append(t->plain_headers, psprintf("%s: %s", key, value));
		if (l == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		t->plain_headers = l;
	}
}

typedef struct FormBuf
{
	CURL *easy;
	StringInfoData buf;
} FormBuf;

static void
add_form_field(const char *key, const char *value, void *arg)
{
	FormBuf *f = arg;
	char *k = curl_easy_escape(f->easy, key, 0);
	char *v = curl_easy_escape(f->easy, value, 0);

	if (k == NULL || v == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	appendStringInfo(&f->buf, "%s%s=%s", f->buf.len > 0 ? "&" : "", k, v);
	curl_free(k);
	curl_free(v);
}

/*
 * Jobq-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>
 */
static void
sign_body(JobqTransfer *t, const char *key)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	uint8 digest[PG_SHA256_DIGEST_LENGTH];
	char hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	char *stamp = psprintf(INT64_FORMAT, (int64) time(NULL));
	int i;

	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (pg_hmac_init(ctx, (const uint8 *) key, strlen(key)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) stamp, strlen(stamp)) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) ".", 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) t->body, t->body_len) < 0 ||
		pg_hmac_final(ctx, digest, sizeof(digest)) < 0)
	{
		pg_hmac_free(ctx);
		elog(ERROR, "could not compute the webhook signature");
	}
	pg_hmac_free(ctx);
	for (i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	add_header("Jobq-Signature", psprintf("t=%s,v1=%s", stamp, hex), t);
}

#define SETOPT(t, opt, val) \
	do \
	{ \
		if (curl_easy_setopt((t)->easy, (opt), (val)) != CURLE_OK) \
			elog(ERROR, "could not set curl option %s", #opt); \
	} while (0)

/*
 * Make a checked request into a transfer, not started yet, in a memory
 * context of its own under parent.
 */
JobqTransfer *
jobq_http_prepare(const JobqJob *job, Jsonb *req, bool keep_response,
				  MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "jobq transfer",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	JobqTransfer *t = palloc0(sizeof(JobqTransfer));
	char *url = jobq_http_req_text(req, "url");
	char *type = jobq_http_req_text(req, "type");
	char *method = jobq_http_req_text(req, "method");
	char *username = jobq_http_req_text(req, "username");
	char *password = jobq_http_req_text(req, "password");
	char *scheme;
	char *host;
	long port;
	CURLU *u;
	JsonbValue buf;

	t->cxt = cxt;
	t->job = *job;
	t->job.kind = pstrdup(job->kind);
	t->job.payload = NULL;
	t->smtp = strcmp(type, "smtp") == 0;
	t->keep_response = keep_response;
	t->channel = jobq_http_req_text(req, "channel");
	t->recipient = jobq_http_req_text(req, "recipient");
	u = jobq_http_parse_url(url, &scheme, &host, &port);
	t->log_url = jobq_http_url_for_log(u, scheme, host);
	curl_url_cleanup(u);
	t->scheme = scheme;
	t->origin = psprintf("%s://%s:%ld", scheme, host, port);
	t->nallowed = jobq_http_allowed_addresses(req, host, &t->allowed);
	t->follow = jobq_http_req_bool(req, "follow_redirects") && !jobq_http_req_bool(req, "payload_url") && !t->smtp;
	t->method = method;
	t->response_cap = (size_t) jobq_http_max_response_size * 1024;
	initStringInfo(&t->response);

	t->easy = curl_easy_init();
	if (t->easy == NULL)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not start a curl transfer")));
	}

	PG_TRY();
	{
		long timeout = jobq_http_req_ms(req, "timeout_ms",
										job->timeout_ms > 0 ? (long) job->timeout_ms : jobq_http_timeout);
		char *sign_key = jobq_http_req_text(req, "sign_key");
		char *ca_cert = jobq_http_req_text(req, "ca_cert");

		t->timeout_ms = timeout;
		t->connect_timeout_ms = Min(timeout, jobq_http_req_ms(req, "connect_timeout_ms",
															  jobq_http_connect_timeout));
		SETOPT(t, CURLOPT_PRIVATE, t);
		SETOPT(t, CURLOPT_URL, url);
		SETOPT(t, CURLOPT_NOSIGNAL, 1L);
		SETOPT(t, CURLOPT_PROXY, "");
		SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf);
		SETOPT(t, CURLOPT_PROTOCOLS_STR, t->smtp ? "smtp,smtps" : "http,https");
		SETOPT(t, CURLOPT_FOLLOWLOCATION, 0L); /* see jobq_http_redirect */
		SETOPT(t, CURLOPT_OPENSOCKETFUNCTION, jobq_http_open_socket);
		SETOPT(t, CURLOPT_OPENSOCKETDATA, t);
		SETOPT(t, CURLOPT_PREREQFUNCTION, jobq_http_before_request);
		SETOPT(t, CURLOPT_PREREQDATA, t);
		if (ca_cert)
		{
			struct curl_blob blob;

			blob.data = ca_cert;
			blob.len = strlen(ca_cert);
			blob.flags = CURL_BLOB_COPY;
			SETOPT(t, CURLOPT_CAINFO_BLOB, &blob);
		}
		SETOPT(t, CURLOPT_TIMEOUT_MS, timeout);
		SETOPT(t, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
		SETOPT(t, CURLOPT_WRITEFUNCTION, write_response);
		SETOPT(t, CURLOPT_WRITEDATA, t);
		if (username)
			SETOPT(t, CURLOPT_USERNAME, username);
		if (password)
			SETOPT(t, CURLOPT_PASSWORD, password);

		if (jobq_http_req_get(req, "form", &buf) != NULL)
		{
			FormBuf form;

			form.easy = t->easy;
			initStringInfo(&form.buf);
			jobq_http_req_each(req, "form", add_form_field, &form);
			t->body = form.buf.data;
			t->body_len = form.buf.len;
			add_header("Content-Type", "application/x-www-form-urlencoded", t);
			t->content_type = "Content-Type: application/x-www-form-urlencoded";
		}
		else if ((t->body = jobq_http_req_text(req, "body")) != NULL)
			t->body_len = strlen(t->body);

		if (t->smtp)
		{
			char *starttls = jobq_http_req_text(req, "starttls");
			char *from = jobq_http_req_text(req, "mail_from");

			/*
			 * A connection of its own: curl 7.88 reuses a smtp:// session
			 * that another channel switched to TLS with its own ca_cert, so
			 * a channel without it would skip the certificate check.
			 */
			SETOPT(t, CURLOPT_FRESH_CONNECT, 1L);
			SETOPT(t, CURLOPT_FORBID_REUSE, 1L);
			SETOPT(t, CURLOPT_MAIL_FROM, psprintf("<%s>", from ? from : ""));
			jobq_http_req_each(req, "mail_rcpt", add_rcpt, t);
			SETOPT(t, CURLOPT_MAIL_RCPT, t->rcpt);
			SETOPT(t, CURLOPT_UPLOAD, 1L);
			SETOPT(t, CURLOPT_READFUNCTION, read_mail);
			SETOPT(t, CURLOPT_READDATA, t);
			SETOPT(t, CURLOPT_INFILESIZE_LARGE, (curl_off_t) t->body_len);
			if (starttls && strcmp(starttls, "required") == 0)
				SETOPT(t, CURLOPT_USE_SSL, (long) CURLUSESSL_ALL);
			else if (starttls && strcmp(starttls, "never") == 0)
				SETOPT(t, CURLOPT_USE_SSL, (long) CURLUSESSL_NONE);
			else
				SETOPT(t, CURLOPT_USE_SSL, (long) CURLUSESSL_TRY);
		}
		else
		{
			SETOPT(t, CURLOPT_USERAGENT, JOBQ_USER_AGENT);
			if (username || password)
				SETOPT(t, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
			jobq_http_req_each(req, "headers", add_header, t);
			add_header("Expect", "", t); /* no 100-continue round trip */
			if (t->follow)
				jobq_http_req_each(req, "headers", keep_plain_header, t);
			if (jobq_http_req_bool(req, "sign"))
			{
				if (sign_key == NULL && jobq_webhook_signing_key && jobq_webhook_signing_key[0])
					sign_key = jobq_webhook_signing_key;
				if (sign_key)
					sign_body(t, sign_key);
			}
			if (t->body)
			{
				SETOPT(t, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) t->body_len);
				SETOPT(t, CURLOPT_POSTFIELDS, t->body);
			}
			if (method == NULL || strcmp(method, "GET") == 0)
			{
				if (t->body == NULL)
					SETOPT(t, CURLOPT_HTTPGET, 1L);
				else
					SETOPT(t, CURLOPT_CUSTOMREQUEST, "GET");
			}
			else if (strcmp(method, "HEAD") == 0)
				SETOPT(t, CURLOPT_NOBODY, 1L);
			else if (strcmp(method, "POST") != 0 || t->body == NULL)
			{
				if (t->body == NULL)
				{
					SETOPT(t, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0);
					SETOPT(t, CURLOPT_POSTFIELDS, "");
				}
				if (strcmp(method, "POST") != 0)
					SETOPT(t, CURLOPT_CUSTOMREQUEST, method);
			}
			SETOPT(t, CURLOPT_HTTPHEADER, t->headers);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		jobq_http_free(t);
		PG_RE_THROW();
	}
	PG_END_TRY();

	t->started_at = GetCurrentTimestamp();
	INSTR_TIME_SET_CURRENT(t->start);
	MemoryContextSwitchTo(old);
	return t;
}

void
jobq_http_free(JobqTransfer *t)
{
	if (t->easy)
		curl_easy_cleanup(t->easy);
	if (t->headers)
		curl_slist_free_all(t->headers);
	if (t->rcpt)
		curl_slist_free_all(t->rcpt);
	if (t->plain_headers)
		curl_slist_free_all(t->plain_headers);
	MemoryContextDelete(t->cxt);
}

/* Refuse the next hop of a transfer: it ends with this error. */
static bool
refuse_hop(JobqTransfer *t, const char *sqlstate, const char *message)
{
	strlcpy(t->refused, message, sizeof(t->refused));
	strlcpy(t->refused_state, sqlstate, sizeof(t->refused_state));
	t->hop_refused = true;
	return false;
}

#define HOP_SETOPT(t, opt, val) \
	do \
	{ \
		if (curl_easy_setopt((t)->easy, (opt), (val)) != CURLE_OK) \
			return refuse_hop((t), "JQC43", "could not follow the redirect"); \
	} while (0)

/*
 * After a transfer has finished without a curl error: if it is a channel's
 * that follows redirects and the answer is a redirect, make the transfer
 * the next hop and return true (the caller adds it to the multi handle
 * again).  Every hop keeps the scheme of the first URL and connects only to
 * allowed addresses (jobq_http_open_socket).  A hop to another origin (scheme, host,
 * port) carries no credentials and no header of the channel or the job, so
 * no secret and no signature: only Idempotency-Key, and Content-Type when
 * the body goes along; later hops neither, even back at the origin.
 * 303, and 301 and 302 after a POST, become a GET without body.  False when
 * the transfer is done; a refused hop sets t->refused (a final failure).
 * Called outside any transaction.
 */
bool
jobq_http_redirect(JobqTransfer *t)
{
	long code = 0;
	char *location = NULL;
	char *scheme;
	char *host;
	long port;
	CURLU *u;
	instr_time elapsed;
	long left;
	bool to_get;
	bool same_scheme;
	bool leaves;
	MemoryContext old;

	if (!t->follow || t->refused[0] ||
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
		!(code == 301 || code == 302 || code == 303 || code == 307 || code == 308) ||
		curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &location) != CURLE_OK ||
		location == NULL)
		return false;
	if (++t->redirects > MAX_REDIRECTS)
		return refuse_hop(t, "JQC47", "more than " CppAsString2(MAX_REDIRECTS) " redirects");
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, t->start);
	left = t->timeout_ms - (long) INSTR_TIME_GET_MILLISEC(elapsed);
	if (left <= 0)
		return refuse_hop(t, "JQC28", "timed out while following redirects");

	u = curl_url();
	if (u == NULL || curl_url_set(u, CURLUPART_URL, location, 0) != CURLUE_OK)
	{
		curl_url_cleanup(u);
		return refuse_hop(t, "JQC03", "redirected to an invalid URL");
	}
	old = MemoryContextSwitchTo(t->cxt);
	jobq_http_url_parts(u, &scheme, &host, &port);
	curl_url_cleanup(u);
	same_scheme = strcmp(scheme, t->scheme) == 0;
	leaves = !t->cross_origin &&
			 strcmp(psprintf("%s://%s:%ld", scheme, host, port), t->origin) != 0;
	MemoryContextSwitchTo(old);
	if (!same_scheme)
		return refuse_hop(t, "JQC01", "a redirect to another scheme is not followed");

	to_get = code == 303 ? (t->method == NULL || strcmp(t->method, "HEAD") != 0)
						 : ((code == 301 || code == 302) && t->method && strcmp(t->method, "POST") == 0);
	if (to_get)
	{
		HOP_SETOPT(t, CURLOPT_CUSTOMREQUEST, (char *) NULL);
		HOP_SETOPT(t, CURLOPT_HTTPGET, 1L);
		t->method = NULL;
		t->body = NULL;
	}
	if (leaves)
	{
		struct curl_slist *l = curl_slist_append(t->plain_headers, "Expect:");

		if (l != NULL)
			t->plain_headers = l;
		if (l != NULL && t->body != NULL && t->content_type != NULL &&
			(l = curl_slist_append(t->plain_headers, t->content_type)) != NULL)
			t->plain_headers = l;
		if (l == NULL)
			return refuse_hop(t, "JQC27", "out of memory");
		t->cross_origin = true;
		HOP_SETOPT(t, CURLOPT_USERNAME, (char *) NULL);
		HOP_SETOPT(t, CURLOPT_PASSWORD, (char *) NULL);
		HOP_SETOPT(t, CURLOPT_HTTPHEADER, t->plain_headers);
	}
	HOP_SETOPT(t, CURLOPT_URL, location);
	HOP_SETOPT(t, CURLOPT_TIMEOUT_MS, left);
	HOP_SETOPT(t, CURLOPT_CONNECTTIMEOUT_MS, Min(left, t->connect_timeout_ms));
	resetStringInfo(&t->response);
	t->refused[0] = '\0';
	t->sockets_opened = 0;
	return true;
}

/* ---------------------------------------------------------------------
 * Outcome
 * ------------------------------------------------------------------- */

/* The text of bytes from elsewhere: invalid or NUL bytes become '?'. */
static char *
clean_text(const char *data, size_t len, size_t max_chars)
{
	int enc = GetDatabaseEncoding();
	StringInfoData out;
	size_t i = 0;
	size_t chars = 0;

	initStringInfo(&out);
	while (i < len && chars < max_chars)
	{
		int l = pg_encoding_verifymbchar(enc, data + i, (int) (len - i));

		if (l <= 0)
		{
			appendStringInfoChar(&out, '?');
			i++;
		}
		else
		{
			appendBinaryStringInfo(&out, data + i, l);
			i += l;
		}
		chars++;
	}
	return out.data;
}

/* A delivery log row of an attempt of job, with the error of out if any. */
static void
delivery_of(JobqDelivery *dl, const JobqJob *job, const JobqOutcome *out)
{
	memset(dl, 0, sizeof(*dl));
	dl->job_id = job->id;
	dl->attempt = job->attempts;
	dl->kind = job->kind;
	dl->owner = job->owner;
	dl->error = out->message;
	dl->error_sqlstate = out->sqlstate;
}

/* curl errors that another attempt cannot cure */
static bool
curl_error_final(CURLcode rc)
{
	return rc == CURLE_UNSUPPORTED_PROTOCOL || rc == CURLE_URL_MALFORMAT ||
		   rc == CURLE_LOGIN_DENIED || rc == CURLE_TOO_MANY_REDIRECTS;
}

/*
 * Classify a finished transfer: fills res with the job's outcome and its
 * delivery log row.  Allocates in the transfer's context.
 */
void
jobq_http_finish(JobqTransfer *t, CURLcode rc, JobqTransferResult *res)
{
	MemoryContext old = MemoryContextSwitchTo(t->cxt);
	JobqOutcome *out = &res->outcome;
	JobqDelivery *dl = &res->delivery;
	long code = 0;
	instr_time elapsed;
	char *response = NULL;

	memset(res, 0, sizeof(*res));
	(void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
	if (t->response.len > 0)
		response = clean_text(t->response.data, t->response.len, t->response.len);

	if (t->hop_refused ||
		(t->refused[0] && (rc == CURLE_ABORTED_BY_CALLBACK ||
						   (rc == CURLE_COULDNT_CONNECT && t->sockets_opened == 0))))
	{
		/* refused by jobq: a redirect, or every address curl tried */
		out->sqlstate = pstrdup(t->refused_state);
		out->message = psprintf("%s %s: %s", t->smtp ? "mail to" : "request to", t->log_url,
								t->refused);
		res->final = true;
	}
	else if (rc != CURLE_OK && !(t->smtp && code >= 400))
	{
		out->sqlstate = psprintf("JQC%02d", (int) rc % 100);
		out->message = psprintf("%s %s: %s", t->smtp ? "mail to" : "request to", t->log_url,
								t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
		res->final = curl_error_final(rc);
		code = 0;
	}
	else if (t->smtp)
	{
		if (rc != CURLE_OK)
		{
			out->sqlstate = psprintf("JQ%03ld", code % 1000);
			out->message = psprintf("mail to %s refused with reply %ld: %s", t->log_url, code,
									t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc));
			res->final = code >= 500;
		}
		else
			out->ok = true;
	}
	else if (code >= 200 && code < 300)
		out->ok = true;
	else
	{
		out->sqlstate = psprintf("JQ%03ld", code % 1000);
		out->message = psprintf("request to %s answered %ld%s%s", t->log_url, code,
								response ? ": " : "",
								response ? clean_text(response, strlen(response), 200) : "");
		res->final = !(code == 408 || code == 429 || code >= 500);
		if (code == 429 || code == 503)
		{
			curl_off_t wait_s = 0;

			if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &wait_s) == CURLE_OK && wait_s > 0)
				res->min_delay_ms = 1000.0 * Min(wait_s, RETRY_AFTER_MAX_S);
		}
	}

	if (out->ok)
	{
		JsonbParseState *state = NULL;
		JsonbValue k;
		JsonbValue v;
		JsonbValue *r;

		(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "status";
		k.val.string.len = 6;
		(void) pushJsonbValue(&state, WJB_KEY, &k);
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(code);
		(void) pushJsonbValue(&state, WJB_VALUE, &v);
		if (t->keep_response && response)
		{
			k.val.string.val = "body";
			k.val.string.len = 4;
			(void) pushJsonbValue(&state, WJB_KEY, &k);
			v.type = jbvString;
			v.val.string.val = response;
			v.val.string.len = (int) strlen(response);
			(void) pushJsonbValue(&state, WJB_VALUE, &v);
		}
		r = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
		out->result = JsonbValueToJsonb(r);
	}

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, t->start);
	delivery_of(dl, &t->job, out);
	dl->channel = t->channel;
	dl->recipient = t->recipient;
	dl->url = t->log_url;
	dl->status_code = (int32) code;
	dl->outcome = out->ok ? "delivered" : (res->final || t->job.attempts >= t->job.max_attempts) ? "failed"
																								 : "retry";
	dl->response = response ? clean_text(response, strlen(response), RESPONSE_IN_LOG) : NULL;
	dl->duration_ms = INSTR_TIME_GET_MILLISEC(elapsed);
	dl->started_at = t->started_at;
	dl->finished_at = GetCurrentTimestamp();
	MemoryContextSwitchTo(old);
}

/* The delivery log row of a job that failed before its request started. */
void
jobq_http_failed_before_start(const JobqJob *job, const JobqOutcome *out, JobqDelivery *dl)
{
	delivery_of(dl, job, out);
	dl->outcome = "failed";
	dl->started_at = GetCurrentTimestamp();
	dl->finished_at = dl->started_at;
}
