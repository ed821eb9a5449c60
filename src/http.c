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
 * base_url.  This file checks the request (jobq_http_check_request, also at
 * enqueue), builds the curl easy handle (jobq_http_prepare), follows a
 * channel's redirects one hop at a time (jobq_http_redirect, called by
 * net.c when a transfer ends) and reads the outcome (jobq_http_finish).
 * net.c drives the transfers.
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
#include "http_check.h"

#define JOBQ_USER_AGENT "jobq/" JOBQ_VERSION
#define MAX_REDIRECTS 5
#define RESPONSE_IN_LOG 1000	/* characters of a response in the delivery log */
#define RETRY_AFTER_MAX_S 86400
#define TIMEOUT_MIN_MS 100		/* bounds of timeout_ms and connect_timeout_ms */
#define TIMEOUT_MAX_MS 3600000

/* ---------------------------------------------------------------------
 * Reading the request
 * ------------------------------------------------------------------- */

static JsonbValue *
req_get(Jsonb *req, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(&req->root, key, (int) strlen(key), buf);
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

/* A number of milliseconds (checked by check_ms), or the fallback. */
static long
req_ms(Jsonb *req, const char *key, long fallback)
{
	char	   *text = req_text(req, key);

	return text == NULL ? fallback : strtol(text, NULL, 10);
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

/*
 * Addresses.  A transfer connects only to public addresses, and to the
 * addresses and ranges allowed explicitly: for a URL of the job's own, the
 * address entries of jobq.http_allowed_hosts; for a channel, the address its
 * URL names, if it names one, and its config's allowed_addresses.  A host
 * name that resolves to a loopback, private, link-local or other special
 * address is refused unless such an entry allows that address.  The check is
 * made on the address curl is about to connect to (open_socket) and on the
 * one a transfer is about to use, a reused connection's too (before_request).
 * Both run inside curl: they use no palloc and raise no error.
 */

/* Ranges that are not public (RFC 6890 and its successors) */
static const char *const special_ranges[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
	"192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
	"224.0.0.0/4", "240.0.0.0/4",
	"::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
	"3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
};

/*
 * Parse "address" or "address/bits" (an IPv6 address perhaps in brackets,
 * "[::1]", "[fd00::]/8") into r, port -1.  False if it is not one.
 */
static bool
addr_parse(const char *text, JobqAddrRange *r)
{
	char		buf[INET6_ADDRSTRLEN + 8];
	char	   *slash;
	size_t		n = strlen(text);
	int			max;
	int			i;

	if (n >= sizeof(buf))
		return false;
	if (text[0] == '[')
	{
		/* [address], [address/bits] or [address]/bits */
		const char *close = strchr(text, ']');

		if (close == NULL || (close[1] != '\0' && close[1] != '/'))
			return false;
		memcpy(buf, text + 1, close - text - 1);
		strlcpy(buf + (close - text - 1), close + 1, sizeof(buf) - (close - text - 1));
	}
	else
		strlcpy(buf, text, sizeof(buf));
	memset(r, 0, sizeof(*r));
	r->port = -1;
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, r->addr) == 1)
		r->family = AF_INET;
	else if (inet_pton(AF_INET6, buf, r->addr) == 1)
		r->family = AF_INET6;
	else
		return false;
	max = r->family == AF_INET ? 32 : 128;
	r->bits = max;
	if (slash)
	{
		char	   *end;
		long		bits;

		if (!isdigit((unsigned char) slash[1]))
			return false;
		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || bits > max)
			return false;
		r->bits = (int) bits;
	}
	/* keep the network part only */
	for (i = 0; i < 16; i++)
	{
		int			keep = Max(0, Min(8, r->bits - 8 * i));

		r->addr[i] &= (unsigned char) (0xff00 >> keep);
	}
	return true;
}

/* Whether the address (and port, unless negative) lies in r. */
static bool
addr_in(const JobqAddrRange *r, int family, const unsigned char *addr, long port)
{
	int			full = r->bits / 8;
	int			rest = r->bits % 8;

	if (family != r->family || (r->port >= 0 && port >= 0 && port != r->port))
		return false;
	if (memcmp(addr, r->addr, full) != 0)
		return false;
	return rest == 0 || ((addr[full] ^ r->addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* An IPv4 address in IPv6 clothes (::ffff:a.b.c.d) as the IPv4 address. */
static void
addr_unmap(int *family, const unsigned char **addr)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (*family == AF_INET6 && memcmp(*addr, mapped, 12) == 0)
	{
		*family = AF_INET;
		*addr += 12;
	}
}

/* Whether an address is public: in none of the special ranges. */
static bool
addr_public(int family, const unsigned char *addr)
{
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
	int			i;

	addr_unmap(&family, &addr);
	/* NAT64 and 6to4 addresses stand for the IPv4 address they hold */
	if (family == AF_INET6 && memcmp(addr, nat64, 12) == 0)
		return addr_public(AF_INET, addr + 12);
	if (family == AF_INET6 && addr[0] == 0x20 && addr[1] == 0x02)
		return addr_public(AF_INET, addr + 2);
	for (i = 0; i < (int) lengthof(special_ranges); i++)
	{
		JobqAddrRange r;

		if (addr_parse(special_ranges[i], &r) && addr_in(&r, family, addr, -1))
			return false;
	}
	return true;
}

/*
 * Whether a transfer may connect to an address; if not, says why in
 * t->refused.
 */
static bool
addr_allowed(JobqTransfer *t, int family, const unsigned char *addr, long port)
{
	char		text[INET6_ADDRSTRLEN];
	int			i;

	addr_unmap(&family, &addr);
	if (addr_public(family, addr))
		return true;
	for (i = 0; i < t->nallowed; i++)
		if (addr_in(&t->allowed[i], family, addr, port))
			return true;
	if (inet_ntop(family, addr, text, sizeof(text)) == NULL)
		strlcpy(text, "?", sizeof(text));
	snprintf(t->refused, sizeof(t->refused),
			 "address %s (port %ld) is not public and not allowed explicitly", text, port);
	strlcpy(t->refused_state, "42501", sizeof(t->refused_state));
	return false;
}

/* CURLOPT_OPENSOCKETFUNCTION: a socket only for an allowed address. */
static curl_socket_t
open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	JobqTransfer *t = arg;

	if (a->addr.sa_family == AF_INET)
	{
		struct sockaddr_in *in = (struct sockaddr_in *) &a->addr;

		if (!addr_allowed(t, AF_INET, (unsigned char *) &in->sin_addr, ntohs(in->sin_port)))
			return CURL_SOCKET_BAD;
	}
	else if (a->addr.sa_family == AF_INET6)
	{
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &a->addr;

		if (!addr_allowed(t, AF_INET6, (unsigned char *) &in6->sin6_addr, ntohs(in6->sin6_port)))
			return CURL_SOCKET_BAD;
	}
	else
	{
		snprintf(t->refused, sizeof(t->refused), "only IP addresses may be connected to");
		strlcpy(t->refused_state, "42501", sizeof(t->refused_state));
		return CURL_SOCKET_BAD;
	}
	t->sockets_opened++;
	return socket(a->family, a->socktype, a->protocol);
}

/*
 * CURLOPT_PREREQFUNCTION: the address of the connection a request is about
 * to use, a new or a reused one.
 */
static int
before_request(void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	JobqTransfer *t = arg;
	JobqAddrRange r;
	char		ip[INET6_ADDRSTRLEN];

	strlcpy(ip, primary_ip, sizeof(ip));
	ip[strcspn(ip, "%")] = '\0';	/* an IPv6 zone */
	if (!addr_parse(ip, &r))
	{
		snprintf(t->refused, sizeof(t->refused), "unknown address \"%s\"", ip);
		strlcpy(t->refused_state, "42501", sizeof(t->refused_state));
		return CURL_PREREQFUNC_ABORT;
	}
	return addr_allowed(t, r.family, r.addr, primary_port) ? CURL_PREREQFUNC_OK
		: CURL_PREREQFUNC_ABORT;
}

/* An entry of jobq.http_allowed_hosts */
typedef struct AllowEntry
{
	char	   *name;			/* lower case; NULL for an address or range */
	long		port;			/* -1: any */
	JobqAddrRange range;		/* when name is NULL */
} AllowEntry;

/*
 * The entries of jobq.http_allowed_hosts: an address or range ("10.0.0.0/8",
 * "[fd00::]/8", with a port or not), else a name (host, host:port, *.domain,
 * *).  NIL if the setting cannot be read.
 */
static List *
allow_list(void)
{
	char	   *raw = pstrdup(jobq_http_allowed_hosts ? jobq_http_allowed_hosts : "");
	List	   *items;
	List	   *result = NIL;
	ListCell   *lc;

	if (!SplitGUCList(raw, ',', &items))
		return NIL;
	foreach(lc, items)
	{
		AllowEntry *e = palloc0(sizeof(AllowEntry));
		char	   *text = asc_tolower(lfirst(lc), strlen(lfirst(lc)));
		char	   *colon;

		e->port = -1;
		if (!addr_parse(text, &e->range))
		{
			colon = strrchr(text, ':');
			if (colon && (text[0] != '[' || (colon > text && colon[-1] == ']')))
			{
				e->port = strtol(colon + 1, NULL, 10);
				*colon = '\0';
			}
			if (addr_parse(text, &e->range))
				e->range.port = e->port;
			else
				e->name = text;
		}
		result = lappend(result, e);
	}
	return result;
}

/*
 * Whether host (lower case) and port match an entry of the allow-list: a
 * name entry, or, for an address, an address or range entry.
 */
static bool
host_allowed(const char *host, long port)
{
	JobqAddrRange literal;
	bool		is_literal = addr_parse(host, &literal);
	ListCell   *lc;

	foreach(lc, allow_list())
	{
		AllowEntry *e = lfirst(lc);
		size_t		hlen;
		size_t		elen;

		if (e->name == NULL)
		{
			if (is_literal && addr_in(&e->range, literal.family, literal.addr, port))
				return true;
			continue;
		}
		if (e->port >= 0 && e->port != port)
			continue;
		if (strcmp(e->name, "*") == 0)
			return true;
		if (strncmp(e->name, "*.", 2) == 0)
		{
			hlen = strlen(host);
			elen = strlen(e->name + 1);
			if (hlen > elen && strcmp(host + hlen - elen, e->name + 1) == 0)
				return true;
		}
		else if (strcmp(e->name, host) == 0)
			return true;
	}
	return false;
}

/* The scheme and host (lower case) and the port of a parsed URL. */
static void
url_parts(CURLU *u, char **scheme, char **host, long *port)
{
	char	   *part;

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
}

/*
 * Parse a URL with curl's parser.  Returns the handle; *scheme, *host
 * (lower case) and *port are set.  An error names what is wrong.
 */
static CURLU *
parse_url(const char *url, char **scheme, char **host, long *port)
{
	CURLU	   *u = curl_url();

	if (u == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
	{
		curl_url_cleanup(u);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid URL \"%s\"", url)));
	}
	url_parts(u, scheme, host, port);
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
	for (p = value; *p; p++)
		if (((unsigned char) *p < 0x20 && *p != '\t') || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the value of header \"%s\" must not contain line breaks or other control characters",
							key)));
}

/*
 * A timeout of the request, if it has one, must be a whole number of
 * milliseconds from TIMEOUT_MIN_MS to TIMEOUT_MAX_MS.
 */
static void
check_ms(Jsonb *req, const char *key)
{
	JsonbValue	buf;
	JsonbValue *v = req_get(req, key, &buf);
	char	   *text;
	char	   *end;
	long		ms;

	if (v == NULL || v->type == jbvNull)
		return;
	text = scalar_text(v);
	errno = 0;
	ms = text ? strtol(text, &end, 10) : 0;
	if (text == NULL || v->type != jbvNumeric || errno != 0 || *end != '\0' ||
		ms < TIMEOUT_MIN_MS || ms > TIMEOUT_MAX_MS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a whole number of milliseconds from %d to %d", key,
						TIMEOUT_MIN_MS, TIMEOUT_MAX_MS)));
}

/*
 * Whether a path has a "." or ".." segment: segments end at "/", "\" or
 * ";" (a parameter), and %2e, %2f, %5c, %3b and %25 are decoded again and
 * again until none is left, so that no server's decoding finds one either.
 */
static bool
path_has_dot_segment(const char *path)
{
	char	   *p = pstrdup(path);
	bool		changed = true;
	char	   *seg;

	while (changed)
	{
		char	   *r = p;
		char	   *w = p;

		changed = false;
		while (*r)
		{
			char		c = 0;

			if (r[0] == '%' && r[1] && r[2])
			{
				char		hex[3] = {r[1], r[2], '\0'};

				c = (char) strtol(hex, NULL, 16);
				if (!isxdigit((unsigned char) r[1]) || !isxdigit((unsigned char) r[2]) ||
					strchr("./\\;%", c) == NULL)
					c = 0;
			}
			if (c)
			{
				*w++ = c;
				r += 3;
				changed = true;
			}
			else
				*w++ = *r++;
		}
		*w = '\0';
	}
	for (seg = p; seg != NULL;)
	{
		size_t		len = strcspn(seg, "/\\;");

		if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return true;
		seg = seg[len] ? seg + len + 1 : NULL;
	}
	return false;
}

/* A URL's path as curl sends it (dot segments removed), without a final "/". */
static char *
url_path(const char *url)
{
	char	   *scheme;
	char	   *host;
	long		port;
	CURLU	   *u = parse_url(url, &scheme, &host, &port);
	char	   *part = NULL;
	char	   *path;

	(void) curl_url_get(u, CURLUPART_PATH, &part, 0);
	path = pstrdup(part ? part : "");
	curl_free(part);
	curl_url_cleanup(u);
	while (path[0] && path[strlen(path) - 1] == '/')
		path[strlen(path) - 1] = '\0';
	return path;
}

/*
 * A channel's path (the http kind's "path") must stay under the path of the
 * channel's URL.
 */
static void
check_path(Jsonb *req, const char *url)
{
	char	   *path = req_text(req, "path");
	char	   *base_url = req_text(req, "base_url");
	char	   *base;
	char	   *full;
	size_t		len;

	if (path == NULL || base_url == NULL)
		return;
	base = url_path(base_url);
	full = url_path(url);
	len = strlen(base);
	if (path_has_dot_segment(path) || strncmp(full, base, len) != 0 ||
		(full[len] != '\0' && full[len] != '/'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("path \"%s\" leaves the base path \"%s/\" of channel \"%s\"",
						path, base, req_text(req, "channel")),
				 errdetail("A path must not have \".\" or \"..\" segments, also not percent-encoded.")));
}

/*
 * The addresses a request may connect to although they are not public: for
 * a URL of the job's own, the address entries of jobq.http_allowed_hosts;
 * for a channel, the address its URL names, if it names one, and the
 * channel's allowed_addresses.  Sets *ranges and returns how many.
 */
typedef struct RangeList
{
	JobqAddrRange *ranges;
	int			n;
	int			max;
} RangeList;

static void
range_add(RangeList *l, const JobqAddrRange *r)
{
	if (l->n == l->max)
	{
		l->max = Max(8, l->max * 2);
		l->ranges = l->ranges ? repalloc(l->ranges, sizeof(JobqAddrRange) * l->max)
			: palloc(sizeof(JobqAddrRange) * l->max);
	}
	l->ranges[l->n++] = *r;
}

static void
add_allowed_address(const char *key, const char *value, void *arg)
{
	JobqAddrRange r;

	if (!addr_parse(value, &r))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("allowed_addresses holds \"%s\", which is not an IP address or range", value)));
	range_add(arg, &r);
}

static int
request_allowed_addresses(Jsonb *req, const char *host, JobqAddrRange **ranges)
{
	RangeList	l = {NULL, 0, 0};
	JobqAddrRange r;

	if (req_bool(req, "payload_url"))
	{
		ListCell   *lc;

		foreach(lc, allow_list())
		{
			AllowEntry *e = lfirst(lc);

			if (e->name == NULL)
				range_add(&l, &e->range);
		}
	}
	else
	{
		if (addr_parse(host, &r))
			range_add(&l, &r);
		req_each(req, "allowed_addresses", add_allowed_address, &l);
	}
	*ranges = l.ranges;
	return l.n;
}

/*
 * Check a request: its URL's protocol, the allow-list for a URL of the
 * payload's own, a channel's path, the timeouts, the headers, and the
 * address a URL names, if it names one.  Used when a network job is
 * enqueued and again before it runs.
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
	JobqAddrRange literal;
	JobqTransfer probe;			/* for addr_allowed */

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
	check_path(request, url);
	check_ms(request, "timeout_ms");
	check_ms(request, "connect_timeout_ms");
	req_each(request, "headers", check_header, NULL);

	/* a URL that names an address: is it one the request may connect to? */
	memset(&probe, 0, sizeof(probe));
	probe.nallowed = request_allowed_addresses(request, host, &probe.allowed);
	if (addr_parse(host, &literal) &&
		!addr_allowed(&probe, literal.family, literal.addr, port))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("host \"%s\": %s", host, probe.refused),
				 errhint("A superuser can allow it with an address entry of jobq.http_allowed_hosts.")));
}

/* ---------------------------------------------------------------------
 * Building the transfer
 * ------------------------------------------------------------------- */

static size_t
write_response(char *data, size_t size, size_t nmemb, void *arg)
{
	JobqTransfer *t = arg;
	size_t		n = size * nmemb;

	if ((size_t) t->response.len < t->response_cap)
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
	t->scheme = scheme;
	t->origin = psprintf("%s://%s:%ld", scheme, host, port);
	t->nallowed = request_allowed_addresses(req, host, &t->allowed);
	t->follow = req_bool(req, "follow_redirects") && !req_bool(req, "payload_url") && !t->smtp;
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
		long		timeout = req_ms(req, "timeout_ms",
									 job->timeout_ms > 0 ? (long) job->timeout_ms : jobq_http_timeout);
		char	   *sign_key = req_text(req, "sign_key");
		char	   *ca_cert = req_text(req, "ca_cert");

		t->timeout_ms = timeout;
		t->connect_timeout_ms = Min(timeout, req_ms(req, "connect_timeout_ms",
													jobq_http_connect_timeout));
		SETOPT(t, CURLOPT_PRIVATE, t);
		SETOPT(t, CURLOPT_URL, url);
		SETOPT(t, CURLOPT_NOSIGNAL, 1L);
		SETOPT(t, CURLOPT_PROXY, "");
		SETOPT(t, CURLOPT_ERRORBUFFER, t->errbuf);
		SETOPT(t, CURLOPT_PROTOCOLS_STR, t->smtp ? "smtp,smtps" : "http,https");
		SETOPT(t, CURLOPT_FOLLOWLOCATION, 0L);	/* see jobq_http_redirect */
		SETOPT(t, CURLOPT_OPENSOCKETFUNCTION, open_socket);
		SETOPT(t, CURLOPT_OPENSOCKETDATA, t);
		SETOPT(t, CURLOPT_PREREQFUNCTION, before_request);
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

		if (req_get(req, "form", &buf) != NULL)
		{
			FormBuf		form;

			form.easy = t->easy;
			initStringInfo(&form.buf);
			req_each(req, "form", add_form_field, &form);
			t->body = form.buf.data;
			t->body_len = form.buf.len;
			add_header("Content-Type", "application/x-www-form-urlencoded", t);
			t->content_type = "Content-Type: application/x-www-form-urlencoded";
		}
		else if ((t->body = req_text(req, "body")) != NULL)
			t->body_len = strlen(t->body);

		if (t->smtp)
		{
			char	   *starttls = req_text(req, "starttls");
			char	   *from = req_text(req, "mail_from");

			/*
			 * A connection of its own: curl 7.88 reuses a smtp:// session
			 * that another channel switched to TLS with its own ca_cert, so
			 * a channel without it would skip the certificate check.
			 */
			SETOPT(t, CURLOPT_FRESH_CONNECT, 1L);
			SETOPT(t, CURLOPT_FORBID_REUSE, 1L);
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
			if (t->follow)
				req_each(req, "headers", keep_plain_header, t);
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
	do { \
		if (curl_easy_setopt((t)->easy, (opt), (val)) != CURLE_OK) \
			return refuse_hop((t), "JQC43", "could not follow the redirect"); \
	} while (0)

/*
 * After a transfer has finished without a curl error: if it is a channel's
 * that follows redirects and the answer is a redirect, make the transfer
 * the next hop and return true (the caller adds it to the multi handle
 * again).  Every hop keeps the scheme of the first URL and connects only to
 * allowed addresses (open_socket).  A hop to another origin (scheme, host,
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
	long		code = 0;
	char	   *location = NULL;
	char	   *scheme;
	char	   *host;
	long		port;
	CURLU	   *u;
	instr_time	elapsed;
	long		left;
	bool		to_get;
	bool		same_scheme;
	bool		leaves;
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
	url_parts(u, &scheme, &host, &port);
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
