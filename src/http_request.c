/*-------------------------------------------------------------------------
 *
 * http_request.c
 *	  Reading a network job's request: the jsonb object jobq._net_request
 *	  builds (see http.c for its members), read by http_check.c and http.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "http_int.h"

JsonbValue *
jobq_http_req_get(Jsonb *req, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(&req->root, key, (int) strlen(key), buf);
}

/* A scalar as text (palloc'd), or NULL for null and containers. */
char *
jobq_http_scalar_text(const JsonbValue *v)
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

char *
jobq_http_req_text(Jsonb *req, const char *key)
{
	JsonbValue buf;
	JsonbValue *v = jobq_http_req_get(req, key, &buf);

	return v ? jobq_http_scalar_text(v) : NULL;
}

bool
jobq_http_req_bool(Jsonb *req, const char *key)
{
	JsonbValue buf;
	JsonbValue *v = jobq_http_req_get(req, key, &buf);

	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/* A number of milliseconds (checked by check_ms), or the fallback. */
long
jobq_http_req_ms(Jsonb *req, const char *key, long fallback)
{
	char *text = jobq_http_req_text(req, key);

	return text == NULL ? fallback : strtol(text, NULL, 10);
}

/*
 * Call fn for each member of an object (key, value as text; arrays give one
 * call per element), or each element of an array (key NULL).
 */
void
jobq_http_req_each(Jsonb *req, const char *key, JobqHttpMemberFn fn, void *arg)
{
	JsonbValue buf;
	JsonbValue *v = jobq_http_req_get(req, key, &buf);
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue item;
	char *name = NULL;

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
				JsonbValue elem;
				JsonbIteratorToken t;

				while ((t = JsonbIteratorNext(&inner, &elem, true)) != WJB_DONE)
				{
					char *text;

					if (t == WJB_ELEM && (text = jobq_http_scalar_text(&elem)) != NULL)
						fn(owner_key, text, arg);
				}
			}
			else
			{
				char *text = jobq_http_scalar_text(&item);

				if (text != NULL)
					fn(owner_key, text, arg);
			}
		}
	}
}
