/*-------------------------------------------------------------------------
 *
 * http.c
 *	  A network job's request: checked, made into a libcurl transfer, and
 *	  its outcome classified.
 *
 * jobq._net_request (SQL) turns a job into a request, a jsonb object with
 * url, type (http or smtp), method, headers, body or form, username and
 * password, mail_from and mail_rcpt, starttls, sign and sign_key,
 * payload_url, follow_redirects, timeout_ms, connect_timeout_ms, channel and
 * recipient.  This file checks the URL (jobq_http_check_request, also at
 * enqueue), builds the curl easy handle (jobq_http_prepare) and reads the
 * outcome (jobq_http_finish).  net.c drives the transfers.
 *
 * Rules every transfer follows:
 *	- only http and https (smtp and smtps for smtp channels), parsed by
 *	  curl's own URL parser, the one the transfer uses;
 *	- a URL taken from a payload must name a host of jobq.http_allowed_hosts
 *	  and is never redirected; a channel's redirects, when its config allows
 *	  them, keep the protocol of the channel's URL;
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

#include "http.h"

#define JOBQ_USER_AGENT "jobq/" JOBQ_VERSION
#define MAX_REDIRECTS 5
#define RESPONSE_IN_LOG 1000	/* characters of a response in the delivery log */
#define RETRY_AFTER_MAX_S 86400

/* ---------------------------------------------------------------------
 * Reading the request
 * ------------------------------------------------------------------- */

static JsonbValue *
req_get(Jsonb *req, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(&req->root, key, strlen(key), buf);
}

/* A scalar as text (palloc'd), or NULL for null and containers. */
static char *
scalar_text(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

static char *
req_text(Jsonb *req, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = req_get(req, key, &buf);

	return v ? scalar_text(v) : NULL;
}

static bool
req_bool(Jsonb *req, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = req_get(req, key, &buf);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/* A positive number of milliseconds, or the fallback. */
static long
req_ms(Jsonb *req, const char *key, long fallback)
{
	char	   *text = req_text(req, key);
	long		ms;

	if (text == NULL)
		return fallback;
	ms = strtol(text, NULL, 10);
	return ms > 0 ? ms : fallback;
}

/*
 * Call fn for each member of an object (key, value as text; arrays give one
 * call per element), or each element of an array (key NULL).
 */
typedef void (*member_fn) (const char *key, const char *value, void *arg);

static void
req_each(Jsonb *req, const char *key, member_fn fn, void *arg)
{
	JsonbValue	buf;
	JsonbValue *v = req_get(req, key, &buf);
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	item;
	char	   *name = NULL;

	if (v == NULL || v->type != jbvBinary)
		return;
	it = JsonbIteratorInit(v->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &item, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			name = pnstrdup(item.val.string.val, item.val.string.len);
		else if (tok == WJB_VALUE || tok == WJB_ELEM)
		{
			const char *owner_key = (tok == WJB_VALUE) ? name : NULL;

			if (item.type == jbvBinary)
			{
				JsonbIterator *inner = JsonbIteratorInit(item.val.binary.data);
				JsonbValue	elem;
				JsonbIteratorToken t;

				while ((t = JsonbIteratorNext(&inner, &elem, true)) != WJB_DONE)
				{
					char	   *text;

					if (t == WJB_ELEM && (text = scalar_text(&elem)) != NULL)
						fn(owner_key, text, arg);
				}
			}
			else
			{
				char	   *text = scalar_text(&item);

				if (text != NULL)
					fn(owner_key, text, arg);
			}
		}
	}
}

/* ---------------------------------------------------------------------
 * Checking a URL
 * ------------------------------------------------------------------- */

/* Whether host (lower case) and port match an entry of the allow-list. */
static bool
host_allowed(const char *host, long port)
{
	char	   *raw = pstrdup(jobq_http_allowed_hosts ? jobq_http_allowed_hosts : "");
	List	   *entries;
	ListCell   *lc;

	if (!SplitGUCList(raw, ',', &entries))
		return false;
	foreach(lc, entries)
	{
		char	   *entry = asc_tolower(lfirst(lc), strlen(lfirst(lc)));
		char	   *colon;
		long		entry_port = -1;
		size_t		hlen;
		size_t		elen;

		if (strcmp(entry, "*") == 0)
			return true;
		/* host:port, [v6]:port */
		colon = strrchr(entry, ':');
		if (colon && (entry[0] != '[' || (colon > entry && colon[-1] == ']')))
		{
			entry_port = strtol(colon + 1, NULL, 10);
			*colon = '\0';
		}
		if (entry_port >= 0 && entry_port != port)
			continue;
		if (strncmp(entry, "*.", 2) == 0)
		{
			hlen = strlen(host);
			elen = strlen(entry + 1);
			if (hlen > elen && strcmp(host + hlen - elen, entry + 1) == 0)
				return true;
		}
		else if (strcmp(entry, host) == 0)
			return true;
	}
	return false;
}

/*
 * Parse a URL with curl's parser.  Returns the handle; *scheme, *host
 * (lower case) and *port are set.  An error names what is wrong.
 */
static CURLU *
parse_url(const char *url, char **scheme, char **host, long *port)
{
	CURLU	   *u = curl_url();
	char	   *part;

	if (u == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
	{
		curl_url_cleanup(u);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid URL \"%s\"", url)));
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &part, 0) != CURLUE_OK)
		part = NULL;
	*scheme = part ? asc_tolower(part, strlen(part)) : pstrdup("");
	curl_free(part);
	if (curl_url_get(u, CURLUPART_HOST, &part, 0) != CURLUE_OK)
		part = NULL;
	*host = part ? asc_tolower(part, strlen(part)) : pstrdup("");
	curl_free(part);
	*port = 0;
	if (curl_url_get(u, CURLUPART_PORT, &part, CURLU_DEFAULT_PORT) == CURLUE_OK)
	{
		*port = strtol(part, NULL, 10);
		curl_free(part);
	}
	return u;
}

/*
 * The URL for errors and the log, from a parse_url handle and its scheme and
 * host: scheme://host[:port]/path, nothing else.
 */
static char *
url_for_log(CURLU *u, const char *scheme, const char *host)
{
	char	   *explicit_port = NULL;
	char	   *path = NULL;
	char	   *result;

	(void) curl_url_get(u, CURLUPART_PORT, &explicit_port, 0);
	(void) curl_url_get(u, CURLUPART_PATH, &path, 0);
	result = psprintf("%s://%s%s%s%s", scheme, host,
					  explicit_port ? ":" : "", explicit_port ? explicit_port : "",
					  path ? path : "/");
	curl_free(explicit_port);
	curl_free(path);
	return result;
}

static void
check_header(const char *key, const char *value, void *arg)
{
	const char *p;

	if (key == NULL || key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a header name must not be empty")));
	for (p = key; *p; p++)
		if (!(isalnum((unsigned char) *p) || strchr("!#$%&'*+-.^_`|~", *p)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid header name \"%s\"", key)));
	if (strpbrk(value, "\r\n") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the value of header \"%s\" must not contain line breaks", key)));
}

/*
 * Check a request: its URL's protocol, the allow-list for a URL of the
 * payload's own, and its headers.  Used when a network job is enqueued and
 * again before it runs.
 */
void
jobq_http_check_request(Jsonb *request)
{
	char	   *url = req_text(request, "url");
	char	   *type = req_text(request, "type");
	bool		smtp = type && strcmp(type, "smtp") == 0;
	char	   *scheme;
	char	   *host;
	long		port;
	CURLU	   *u;
	char	   *hostless = NULL;	/* the URL to show when it names no host */

	if (url == NULL || type == NULL)
		elog(ERROR, "jobq._net_request returned a request without url or type");
	u = parse_url(url, &scheme, &host, &port);
	if (host[0] == '\0')
		hostless = url_for_log(u, scheme, host);
	curl_url_cleanup(u);

	if (smtp ? (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0)
		: (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("only %s URLs may be requested, not \"%s\"",
						smtp ? "smtp and smtps" : "http and https", scheme)));
	if (hostless != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the URL \"%s\" names no host", hostless)));
	if (req_bool(request, "payload_url") && !host_allowed(host, port))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("host \"%s\" (port %ld) is not in jobq.http_allowed_hosts", host, port),
				 errhint("A superuser can add it to jobq.http_allowed_hosts, or create a channel for it.")));
	req_each(request, "headers", check_header, NULL);
}

/* ---------------------------------------------------------------------
 * Building the transfer
 * ------------------------------------------------------------------- */

static size_t
write_response(char *data, size_t size, size_t nmemb, void *arg)
{
	JobqTransfer *t = arg;
	size_t		n = size * nmemb;

	if (t->response.len < t->response_cap)
		appendBinaryStringInfo(&t->response, data,
							   Min(n, t->response_cap - t->response.len));
	return n;					/* the rest is read and dropped */
}

static size_t
read_mail(char *buffer, size_t size, size_t nitems, void *arg)
{
	JobqTransfer *t = arg;
	size_t		n = Min(size * nitems, t->body_len - t->body_sent);

	memcpy(buffer, t->body + t->body_sent, n);
	t->body_sent += n;
	return n;
}

static void
add_header(const char *key, const char *value, void *arg)
{
	JobqTransfer *t = arg;
	char	   *line = psprintf("%s: %s", key, value);
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

typedef struct FormBuf
{
	CURL	   *easy;
	StringInfoData buf;
} FormBuf;

static void
add_form_field(const char *key, const char *value, void *arg)
{
	FormBuf    *f = arg;
	char	   *k = curl_easy_escape(f->easy, key, 0);
	char	   *v = curl_easy_escape(f->easy, value, 0);

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
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	char	   *stamp = psprintf(INT64_FORMAT, (int64) time(NULL));
	int			i;

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
	do { \
		if (curl_easy_setopt((t)->easy, (opt), (val)) != CURLE_OK) \
			elog(ERROR, "could not set curl option %s", #opt); \
	} while (0)

/*
 * Make a checked request into a transfer, not started yet, in a memory
 * context of its own under parent.
 */
JobqTransfer *
jobq_http_prepare(const JobqJob *job, Jsonb *req, MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "jobq transfer",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	JobqTransfer *t = palloc0(sizeof(JobqTransfer));
	char	   *url = req_text(req, "url");
	char	   *type = req_text(req, "type");
	char	   *method = req_text(req, "method");
	char	   *username = req_text(req, "username");
	char	   *password = req_text(req, "password");
	char	   *scheme;
	char	   *host;
	long		port;
	CURLU	   *u;
	JsonbValue	buf;

	t->cxt = cxt;
	t->job = *job;
	t->job.kind = pstrdup(job->kind);
	t->job.payload = NULL;
	t->smtp = strcmp(type, "smtp") == 0;
	t->http_kind = strcmp(job->kind, "http") == 0;
	t->channel = req_text(req, "channel");
	t->recipient = req_text(req, "recipient");
	u = parse_url(url, &scheme, &host, &port);
	t->log_url = url_for_log(u, scheme, host);
	curl_url_cleanup(u);
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
		long		timeout = req_ms(req, "timeout_ms",
									 job->timeout_ms > 0 ? (long) job->timeout_ms : jobq_http_timeout);
		char	   *sign_key = req_text(req, "sign_key");

		SETOPT(t, CURLOPT_PRIVATE, t);
		SETOPT(t, CURLOPT_URL, url);
		SETOPT(t, CURLOPT_NOSIGNAL, 1L);
		SETOPT(t, CURLOPT_PROXY, "");
		SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf);
		SETOPT(t, CURLOPT_PROTOCOLS_STR, t->smtp ? "smtp,smtps" : "http,https");
		SETOPT(t, CURLOPT_REDIR_PROTOCOLS_STR, scheme);
		if (req_bool(req, "follow_redirects") && !req_bool(req, "payload_url"))
		{
			SETOPT(t, CURLOPT_FOLLOWLOCATION, 1L);
			SETOPT(t, CURLOPT_MAXREDIRS, (long) MAX_REDIRECTS);
		}
		SETOPT(t, CURLOPT_TIMEOUT_MS, timeout);
		SETOPT(t, CURLOPT_CONNECTTIMEOUT_MS,
			   Min(timeout, req_ms(req, "connect_timeout_ms", jobq_http_connect_timeout)));
		SETOPT(t, CURLOPT_WRITEFUNCTION, write_response);
		SETOPT(t, CURLOPT_WRITEDATA, t);
		if (username)
			SETOPT(t, CURLOPT_USERNAME, username);
		if (password)
			SETOPT(t, CURLOPT_PASSWORD, password);

		if (req_get(req, "form", &buf) != NULL)
		{
			FormBuf		form;

			form.easy = t->easy;
			initStringInfo(&form.buf);
			req_each(req, "form", add_form_field, &form);
			t->body = form.buf.data;
			t->body_len = form.buf.len;
			add_header("Content-Type", "application/x-www-form-urlencoded", t);
		}
		else if ((t->body = req_text(req, "body")) != NULL)
			t->body_len = strlen(t->body);

		if (t->smtp)
		{
			char	   *starttls = req_text(req, "starttls");
			char	   *from = req_text(req, "mail_from");

			SETOPT(t, CURLOPT_MAIL_FROM, psprintf("<%s>", from ? from : ""));
			req_each(req, "mail_rcpt", add_rcpt, t);
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
			req_each(req, "headers", add_header, t);
			add_header("Expect", "", t);	/* no 100-continue round trip */
			if (req_bool(req, "sign"))
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
	MemoryContextDelete(t->cxt);
}

/* ---------------------------------------------------------------------
 * Outcome
 * ------------------------------------------------------------------- */

/* The text of bytes from elsewhere: invalid or NUL bytes become '?'. */
static char *
clean_text(const char *data, size_t len, size_t max_chars)
{
	int			enc = GetDatabaseEncoding();
	StringInfoData out;
	size_t		i = 0;
	size_t		chars = 0;

	initStringInfo(&out);
	while (i < len && chars < max_chars)
	{
		int			l = pg_encoding_verifymbchar(enc, data + i, (int) (len - i));

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
	long		code = 0;
	instr_time	elapsed;
	char	   *response = NULL;

	memset(res, 0, sizeof(*res));
	(void) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
	if (t->response.len > 0)
		response = clean_text(t->response.data, t->response.len, t->response.len);

	if (rc != CURLE_OK && !(t->smtp && code >= 400))
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
			curl_off_t	wait_s = 0;

			if (curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &wait_s) == CURLE_OK && wait_s > 0)
				res->min_delay_ms = 1000.0 * Min(wait_s, RETRY_AFTER_MAX_S);
		}
	}

	if (out->ok)
	{
		JsonbParseState *state = NULL;
		JsonbValue	k;
		JsonbValue	v;
		JsonbValue *r;

		(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		k.type = jbvString;
		k.val.string.val = "status";
		k.val.string.len = 6;
		(void) pushJsonbValue(&state, WJB_KEY, &k);
		v.type = jbvNumeric;
		v.val.numeric = int64_to_numeric(code);
		(void) pushJsonbValue(&state, WJB_VALUE, &v);
		if (t->http_kind && response)
		{
			k.val.string.val = "body";
			k.val.string.len = 4;
			(void) pushJsonbValue(&state, WJB_KEY, &k);
			v.type = jbvString;
			v.val.string.val = response;
			v.val.string.len = strlen(response);
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
	dl->outcome = out->ok ? "delivered" :
		(res->final || t->job.attempts >= t->job.max_attempts) ? "failed" : "retry";
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
