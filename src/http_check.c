/*-------------------------------------------------------------------------
 *
 * http_check.c
 *	  A network job's request checked: its URL (protocol, allow-list, a
 *	  channel's path kept under its URL), headers and timeouts, at enqueue
 *	  and in the net worker (jobq_http_check_request); and every address a
 *	  transfer connects to (jobq_http_open_socket, jobq_http_before_request,
 *	  called inside curl: no palloc, no error there).
 *
 * The rules (see http.c): only http and https (smtp and smtps for smtp
 * channels), parsed by curl's own URL parser, the one the transfer uses; a
 * URL taken from a payload must name a host of jobq.http_allowed_hosts; a
 * channel's path stays under the channel's URL; every connection goes to a
 * public address or to one allowed explicitly (see addr_allowed), checked
 * on the address curl connects to, whatever the name resolved to.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "guc.h"
#include "http_check.h"
#include "http_int.h"

/*
 * Addresses.  A transfer connects only to public addresses, and to the
 * addresses and ranges allowed explicitly: for a URL of the job's own, the
 * address entries of jobq.http_allowed_hosts; for a channel, the address its
 * URL names, if it names one, and its config's allowed_addresses.  A host
 * name that resolves to a loopback, private, link-local or other special
 * address is refused unless such an entry allows that address.  The check is
 * made on the address curl is about to connect to (jobq_http_open_socket) and on the
 * one a transfer is about to use, a reused connection's too (jobq_http_before_request).
 * Both run inside curl: they use no palloc and raise no error.
 */

/* Ranges that are not public (RFC 6890 and its successors) */
static const char *const special_ranges[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24",
	"192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
	"224.0.0.0/4", "240.0.0.0/4",
	"::/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
	"3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"};

/*
 * Parse "address" or "address/bits" (an IPv6 address perhaps in brackets,
 * "[::1]", "[fd00::]/8") into r, port -1.  False if it is not one.
 */
static bool
addr_parse(const char *text, JobqAddrRange *r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	size_t n = strlen(text);
	int max;
	int i;

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
		char *end;
		long bits;

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
		int keep = Max(0, Min(8, r->bits - 8 * i));

		r->addr[i] &= (unsigned char) (0xff00 >> keep);
	}
	return true;
}

/* Whether the address (and port, unless negative) lies in r. */
static bool
addr_in(const JobqAddrRange *r, int family, const unsigned char *addr, long port)
{
	int full = r->bits / 8;
	int rest = r->bits % 8;

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
	int i;

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
	char text[INET6_ADDRSTRLEN];
	int i;

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
curl_socket_t
jobq_http_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
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
int
jobq_http_before_request(void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	JobqTransfer *t = arg;
	JobqAddrRange r;
	char ip[INET6_ADDRSTRLEN];

	strlcpy(ip, primary_ip, sizeof(ip));
	ip[strcspn(ip, "%")] = '\0'; /* an IPv6 zone */
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
	char *name;			 /* lower case; NULL for an address or range */
	long port;			 /* -1: any */
	JobqAddrRange range; /* when name is NULL */
} AllowEntry;

/*
 * The entries of jobq.http_allowed_hosts: an address or range ("10.0.0.0/8",
 * "[fd00::]/8", with a port or not), else a name (host, host:port, *.domain,
 * *).  NIL if the setting cannot be read.
 */
static List *
allow_list(void)
{
	char *raw = pstrdup(jobq_http_allowed_hosts ? jobq_http_allowed_hosts : "");
	List *items;
	List *result = NIL;
	ListCell *lc;

	if (!SplitGUCList(raw, ',', &items))
		return NIL;
	foreach(lc, items)
	{
		AllowEntry *e = palloc0(sizeof(AllowEntry));
		char *text = asc_tolower(lfirst(lc), strlen(lfirst(lc)));
		char *colon;

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
	bool is_literal = addr_parse(host, &literal);
	ListCell *lc;

	foreach(lc, allow_list())
	{
		AllowEntry *e = lfirst(lc);
		size_t hlen;
		size_t elen;

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
void
jobq_http_url_parts(CURLU *u, char **scheme, char **host, long *port)
{
	char *part;

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
CURLU *
jobq_http_parse_url(const char *url, char **scheme, char **host, long *port)
{
	CURLU *u = curl_url();

	if (u == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
	{
		curl_url_cleanup(u);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid URL \"%s\"", url)));
	}
	jobq_http_url_parts(u, scheme, host, port);
	return u;
}

/*
 * The URL for errors and the log, from a jobq_http_parse_url handle and its scheme and
 * host: scheme://host[:port]/path, nothing else.
 */
char *
jobq_http_url_for_log(CURLU *u, const char *scheme, const char *host)
{
	char *explicit_port = NULL;
	char *path = NULL;
	char *result;

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
	JsonbValue buf;
	JsonbValue *v = jobq_http_req_get(req, key, &buf);
	char *text;
	char *end;
	long ms;

	if (v == NULL || v->type == jbvNull)
		return;
	text = jobq_http_scalar_text(v);
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
	char *p = pstrdup(path);
	bool changed = true;
	char *seg;

	while (changed)
	{
		char *r = p;
		char *w = p;

		changed = false;
		while (*r)
		{
			char c = 0;

			if (r[0] == '%' && r[1] && r[2])
			{
				char hex[3] = {r[1], r[2], '\0'};

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
		size_t len = strcspn(seg, "/\\;");

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
	char *scheme;
	char *host;
	long port;
	CURLU *u = jobq_http_parse_url(url, &scheme, &host, &port);
	char *part = NULL;
	char *path;

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
	char *path = jobq_http_req_text(req, "path");
	char *base_url = jobq_http_req_text(req, "base_url");
	char *base;
	char *full;
	size_t len;

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
						path, base, jobq_http_req_text(req, "channel")),
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
	int n;
	int max;
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

int
jobq_http_allowed_addresses(Jsonb *req, const char *host, JobqAddrRange **ranges)
{
	RangeList l = {NULL, 0, 0};
	JobqAddrRange r;

	if (jobq_http_req_bool(req, "payload_url"))
	{
		ListCell *lc;

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
		jobq_http_req_each(req, "allowed_addresses", add_allowed_address, &l);
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
	char *url = jobq_http_req_text(request, "url");
	char *type = jobq_http_req_text(request, "type");
	bool smtp = type && strcmp(type, "smtp") == 0;
	char *scheme;
	char *host;
	long port;
	CURLU *u;
	char *hostless = NULL; /* the URL to show when it names no host */
	JobqAddrRange literal;
	JobqTransfer probe; /* for addr_allowed */

	if (url == NULL || type == NULL)
		elog(ERROR, "jobq._net_request returned a request without url or type");
	u = jobq_http_parse_url(url, &scheme, &host, &port);
	if (host[0] == '\0')
		hostless = jobq_http_url_for_log(u, scheme, host);
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
	if (jobq_http_req_bool(request, "payload_url") && !host_allowed(host, port))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("host \"%s\" (port %ld) is not in jobq.http_allowed_hosts", host, port),
				 errhint("A superuser can add it to jobq.http_allowed_hosts, or create a channel for it.")));
	check_path(request, url);
	check_ms(request, "timeout_ms");
	check_ms(request, "connect_timeout_ms");
	jobq_http_req_each(request, "headers", check_header, NULL);

	/* a URL that names an address: is it one the request may connect to? */
	memset(&probe, 0, sizeof(probe));
	probe.nallowed = jobq_http_allowed_addresses(request, host, &probe.allowed);
	if (addr_parse(host, &literal) &&
		!addr_allowed(&probe, literal.family, literal.addr, port))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("host \"%s\": %s", host, probe.refused),
				 errhint("A superuser can allow it with an address entry of jobq.http_allowed_hosts.")));
}
