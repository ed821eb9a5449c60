/*
 * 40_net: network jobs (src/http.c, src/net.c): channels and the rights to
 * them, the views of channels and deliveries, and the request a job of
 * kind http, email, sms or webhook makes.  Re-creatable (see 20_api.sql).
 * Every SQL and PL/pgSQL function of jobq runs with search_path pinned to
 * pg_catalog, then pg_temp: with pg_catalog alone the temporary schema is
 * searched first for tables, and a caller's temporary table could stand
 * in for pg_roles or another catalog a function reads.
 */

/* The grantee oid of a role name, or 0 for PUBLIC. */
CREATE OR REPLACE FUNCTION jobq._grantee(role_name text)
RETURNS oid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r oid;
BEGIN
	IF role_name IS NULL THEN
		RAISE EXCEPTION 'role name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF upper(role_name) = 'PUBLIC' THEN
		RETURN 0;
	END IF;
	SELECT oid INTO r FROM pg_roles WHERE rolname = role_name;
	IF r IS NULL THEN
		RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = 'undefined_object';
	END IF;
	RETURN r;
END $$;
REVOKE ALL ON FUNCTION jobq._grantee(text) FROM PUBLIC;

/*
 * Whether a role is a superuser or a member of a grantee in the list.
 * (The SET clause keeps the SQL helpers from being inlined: the price of
 * the pinned search_path.)
 */
CREATE OR REPLACE FUNCTION jobq._granted(role oid, grantees oid[])
RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = role), false)
		OR EXISTS (SELECT FROM pg_catalog.unnest(grantees) AS g
					WHERE g OPERATOR(pg_catalog.=) 0 OR pg_catalog.pg_has_role(role, g, 'MEMBER'))
$$;
COMMENT ON FUNCTION jobq._granted(oid, oid[]) IS 'whether a role is a superuser or a member of one of the grantees (0 = PUBLIC)';

/*
 * Check a channel's type, config and secrets; an error names what is wrong.
 * 0.2.0: header names must be tokens and header values strings free of
 * control characters; timeouts from 100 ms to one hour; follow_redirects a
 * boolean; ca_cert (PEM) and allowed_addresses (IP addresses and ranges)
 * are new.
 */
CREATE OR REPLACE FUNCTION jobq._check_channel(type text, config jsonb, secrets jsonb)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	url text := config ->> 'url';
	bad text;
	member text;
BEGIN
	IF type IS NULL OR type NOT IN ('http', 'smtp') THEN
		RAISE EXCEPTION 'channel type must be "http" or "smtp"' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_typeof(config) IS DISTINCT FROM 'object' OR jsonb_typeof(secrets) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'channel config and secrets must be JSON objects' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF url IS NULL THEN
		RAISE EXCEPTION 'channel config must have a "url"' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF type = 'http' AND url !~* '^https?://[^/?#]' THEN
		RAISE EXCEPTION 'the url of an http channel must be an http:// or https:// URL'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF type = 'smtp' AND url !~* '^smtps?://[^/?#]' THEN
		RAISE EXCEPTION 'the url of an smtp channel must be an smtp:// or smtps:// URL'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF url ~ '^[a-zA-Z]+://[^/?#]*@' THEN
		RAISE EXCEPTION 'the url of a channel must not hold credentials'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Put them in the secrets: "username" and "password", "bearer_token" or "headers".';
	END IF;
	IF type = 'smtp' AND config ->> 'from' IS NULL THEN
		RAISE EXCEPTION 'an smtp channel needs a "from" address in its config' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF coalesce(config ->> 'format', 'json') NOT IN ('json', 'form') THEN
		RAISE EXCEPTION 'channel format must be "json" or "form"' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF coalesce(config ->> 'starttls', 'try') NOT IN ('try', 'required', 'never') THEN
		RAISE EXCEPTION 'channel starttls must be "try", "required" or "never"' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF coalesce(config ->> 'method', 'POST') !~ '^[A-Z]+$' THEN
		RAISE EXCEPTION 'channel method must be an HTTP method in capitals' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(config) AS k
	 WHERE k NOT IN ('url', 'method', 'format', 'headers', 'timeout_ms', 'connect_timeout_ms',
					 'follow_redirects', 'fields', 'from', 'starttls', 'ca_cert', 'allowed_addresses') LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'unknown channel config member "%"', bad USING ERRCODE = 'invalid_parameter_value',
			HINT = 'Secrets go in the secrets argument: bearer_token, username, password, headers, signing_key.';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(secrets) AS k
	 WHERE k NOT IN ('bearer_token', 'username', 'password', 'headers', 'signing_key') LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'unknown channel secret "%"', bad USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_typeof(coalesce(config -> 'headers', '{}')) <> 'object'
	   OR jsonb_typeof(coalesce(secrets -> 'headers', '{}')) <> 'object'
	   OR jsonb_typeof(coalesce(config -> 'fields', '{}')) <> 'object' THEN
		RAISE EXCEPTION 'channel headers and fields must be JSON objects' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT h.key INTO bad
	  FROM jsonb_each(coalesce(config -> 'headers', '{}') || coalesce(secrets -> 'headers', '{}')) AS h
	 WHERE h.key !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]+$' LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'invalid header name "%"', bad USING ERRCODE = 'invalid_parameter_value';
	END IF;
	SELECT h.key INTO bad
	  FROM jsonb_each(coalesce(config -> 'headers', '{}') || coalesce(secrets -> 'headers', '{}')) AS h
	 WHERE jsonb_typeof(h.value) <> 'string' OR (h.value #>> '{}') ~ '[\x01-\x08\x0a-\x1f\x7f]' LIMIT 1;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'the value of header "%" must be a string without line breaks or other control characters', bad
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOREACH member IN ARRAY ARRAY['timeout_ms', 'connect_timeout_ms'] LOOP
		/* digits only, as the request's C check reads them: not 100.0 */
		IF config ? member AND (jsonb_typeof(config -> member) <> 'number'
								OR (config ->> member) !~ '^[0-9]{3,7}$'
								OR (config ->> member)::integer NOT BETWEEN 100 AND 3600000) THEN
			RAISE EXCEPTION 'channel % must be a whole number of milliseconds from 100 to 3600000', member
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
	END LOOP;
	IF config ? 'follow_redirects' AND jsonb_typeof(config -> 'follow_redirects') <> 'boolean' THEN
		RAISE EXCEPTION 'channel follow_redirects must be true or false' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF config ? 'ca_cert' AND (jsonb_typeof(config -> 'ca_cert') <> 'string'
							   OR (config ->> 'ca_cert') !~ '-----BEGIN CERTIFICATE-----') THEN
		RAISE EXCEPTION 'channel ca_cert must be a string holding certificates in PEM'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF config ? 'allowed_addresses' THEN
		IF jsonb_typeof(config -> 'allowed_addresses') <> 'array'
		   OR EXISTS (SELECT FROM jsonb_array_elements(config -> 'allowed_addresses') AS a
					   WHERE jsonb_typeof(a) <> 'string') THEN
			RAISE EXCEPTION 'channel allowed_addresses must be an array of IP addresses and ranges'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'For example ["127.0.0.1", "10.0.0.0/8", "[::1]"].';
		END IF;
		FOR member IN SELECT jsonb_array_elements_text(config -> 'allowed_addresses') LOOP
			BEGIN
				IF member !~ '^\[?[0-9A-Fa-f:.]+\]?(/[0-9]{1,3})?$' THEN
					RAISE invalid_text_representation;
				END IF;
				PERFORM translate(member, '[]', '')::inet;
			EXCEPTION WHEN invalid_text_representation THEN
				RAISE EXCEPTION 'channel allowed_addresses holds "%", which is not an IP address or range', member
					USING ERRCODE = 'invalid_parameter_value',
						  HINT = 'For example ["127.0.0.1", "10.0.0.0/8", "[::1]"].';
			END;
		END LOOP;
	END IF;
END $$;
COMMENT ON FUNCTION jobq._check_channel(text, jsonb, jsonb)
	IS 'check a channel''s type, config and secrets; the error names what is wrong';
REVOKE ALL ON FUNCTION jobq._check_channel(text, jsonb, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.create_channel(name text, type text, config jsonb DEFAULT '{}', secrets jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'channel name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF name = '' OR octet_length(name) > 63 THEN
		RAISE EXCEPTION 'channel name must be 1 to 63 bytes long'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF name ~ '[\x01-\x1f\x7f]' THEN
		RAISE EXCEPTION 'channel name must not contain control characters'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	PERFORM jobq._check_channel(type, config, secrets);
	INSERT INTO jobq._channels (name, type, config, secrets) VALUES (name, type, config, secrets);
EXCEPTION WHEN unique_violation THEN
	RAISE EXCEPTION 'channel "%" already exists', name USING ERRCODE = 'duplicate_object',
		HINT = 'jobq.alter_channel() changes it.';
END $$;
COMMENT ON FUNCTION jobq.create_channel(text, text, jsonb, jsonb)
	IS 'create a notification channel: an http endpoint or an smtp server, with its secrets';
REVOKE ALL ON FUNCTION jobq.create_channel(text, text, jsonb, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.alter_channel(name text, config jsonb DEFAULT NULL, secrets jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ch jobq._channels;
BEGIN
	SELECT * INTO ch FROM jobq._channels c WHERE c.name = alter_channel.name FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'channel "%" does not exist', name USING ERRCODE = 'undefined_object';
	END IF;
	PERFORM jobq._check_channel(ch.type, coalesce(config, ch.config), coalesce(secrets, ch.secrets));
	UPDATE jobq._channels c SET config = coalesce(alter_channel.config, c.config),
		   secrets = coalesce(alter_channel.secrets, c.secrets), updated_at = now()
	 WHERE c.name = alter_channel.name;
END $$;
COMMENT ON FUNCTION jobq.alter_channel(text, jsonb, jsonb)
	IS 'replace the config or the secrets of a channel (NULL keeps them)';
REVOKE ALL ON FUNCTION jobq.alter_channel(text, jsonb, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.drop_channel(name text)
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	WITH d AS (DELETE FROM jobq._channels c WHERE c.name = drop_channel.name RETURNING 1)
	SELECT EXISTS (SELECT FROM d)
$$;
COMMENT ON FUNCTION jobq.drop_channel(text)
	IS 'remove a channel and its grants; its pending jobs die when they run';
REVOKE ALL ON FUNCTION jobq.drop_channel(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.grant_channel(channel text, role_name text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM jobq._channels c WHERE c.name = channel) THEN
		RAISE EXCEPTION 'channel "%" does not exist', channel USING ERRCODE = 'undefined_object';
	END IF;
	INSERT INTO jobq._channel_grants VALUES (channel, jobq._grantee(role_name)) ON CONFLICT DO NOTHING;
END $$;
COMMENT ON FUNCTION jobq.grant_channel(text, text)
	IS 'let a role (and its members), or PUBLIC, enqueue jobs to a channel';
REVOKE ALL ON FUNCTION jobq.grant_channel(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.revoke_channel(channel text, role_name text)
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	WITH d AS (DELETE FROM jobq._channel_grants g
				WHERE g.channel = revoke_channel.channel AND g.grantee = jobq._grantee(role_name)
			   RETURNING 1)
	SELECT EXISTS (SELECT FROM d)
$$;
COMMENT ON FUNCTION jobq.revoke_channel(text, text)
	IS 'take back a role''s right to a channel; its pending jobs die when they run';
REVOKE ALL ON FUNCTION jobq.revoke_channel(text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.grant_http(role_name text)
RETURNS void
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	INSERT INTO jobq._http_grants VALUES (jobq._grantee(role_name)) ON CONFLICT DO NOTHING
$$;
COMMENT ON FUNCTION jobq.grant_http(text)
	IS 'let a role (and its members), or PUBLIC, name URLs in http and webhook jobs (hosts still limited by jobq.http_allowed_hosts)';
REVOKE ALL ON FUNCTION jobq.grant_http(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION jobq.revoke_http(role_name text)
RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
	WITH d AS (DELETE FROM jobq._http_grants g WHERE g.grantee = jobq._grantee(role_name) RETURNING 1)
	SELECT EXISTS (SELECT FROM d)
$$;
COMMENT ON FUNCTION jobq.revoke_http(text)
	IS 'take back a role''s right to name URLs in http and webhook jobs';
REVOKE ALL ON FUNCTION jobq.revoke_http(text) FROM PUBLIC;

CREATE OR REPLACE VIEW jobq.channels WITH (security_barrier) AS
	SELECT c.name, c.type, c.config,
		   ARRAY(SELECT k FROM pg_catalog.jsonb_object_keys(c.secrets) AS k ORDER BY k) AS secret_names,
		   c.created_at, c.updated_at
	  FROM jobq._channels c
	 WHERE jobq._granted((SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user),
						 ARRAY(SELECT g.grantee FROM jobq._channel_grants g WHERE g.channel = c.name));
COMMENT ON VIEW jobq.channels
	IS 'the channels the current role may enqueue to: config and the names (never the values) of the secrets';
GRANT SELECT ON jobq.channels TO PUBLIC;

CREATE OR REPLACE VIEW jobq.deliveries WITH (security_barrier) AS
	SELECT id, job_id, attempt, kind, channel, recipient, url, status_code, outcome,
		   error, error_sqlstate, response, duration_ms, started_at, finished_at, owner
	  FROM jobq._deliveries
	 WHERE pg_catalog.pg_has_role(owner, 'MEMBER');
COMMENT ON VIEW jobq.deliveries
	IS 'one row per attempt of a network job, for the jobs of roles the current role is a member of';
GRANT SELECT ON jobq.deliveries TO PUBLIC;

/* RFC 2047 for a header value that is not plain ASCII. */
CREATE OR REPLACE FUNCTION jobq._mime_header(value text)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT CASE WHEN value OPERATOR(pg_catalog.~) '^[ -~]*$' THEN value
		   ELSE pg_catalog.concat('=?UTF-8?B?', pg_catalog.translate(pg_catalog.encode(
				pg_catalog.convert_to(value, 'UTF8'), 'base64'), E'\n', ''), '?=')
		   END
$$;

/* A text part, base64 in lines of 76 with CRLF. */
CREATE OR REPLACE FUNCTION jobq._mime_part(content_type text, body text)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT pg_catalog.concat('Content-Type: ', content_type, E'; charset=UTF-8\r\n',
		E'Content-Transfer-Encoding: base64\r\n\r\n',
		pg_catalog.replace(pg_catalog.encode(pg_catalog.convert_to(body, 'UTF8'), 'base64'), E'\n', E'\r\n'),
		E'\r\n')
$$;

/* The addresses of a member that is a string or an array of strings. */
CREATE OR REPLACE FUNCTION jobq._addresses(payload jsonb, member text, required boolean)
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v jsonb := payload -> member;
	list text[];
BEGIN
	IF v IS NULL OR v = 'null' THEN
		IF required THEN
			RAISE EXCEPTION 'payload must have a member "%"', member USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN '{}';
	END IF;
	IF jsonb_typeof(v) = 'string' THEN
		list := ARRAY[v #>> '{}'];
	ELSIF jsonb_typeof(v) = 'array' AND NOT EXISTS (SELECT FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
		list := ARRAY(SELECT jsonb_array_elements_text(v));
	ELSE
		RAISE EXCEPTION 'payload member "%" must be a string or an array of strings', member
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF required AND cardinality(list) = 0 THEN
		RAISE EXCEPTION 'payload member "%" must name at least one recipient', member
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF EXISTS (SELECT FROM unnest(list) a WHERE a = '' OR a ~ '[\r\n<>]' AND a !~ '^[^\r\n<>]*<[^\r\n<>@]+@[^\r\n<>]+>$') THEN
		RAISE EXCEPTION 'payload member "%" holds an invalid address', member USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN list;
END $$;

/* The bare address of "Name <address>" or of "address". */
CREATE OR REPLACE FUNCTION jobq._bare_address(address text)
RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT coalesce(pg_catalog.substring(address, '<([^<>]+)>\s*$'), pg_catalog.btrim(address))
$$;

/* A member that must be a non-empty string without line breaks. */
CREATE OR REPLACE FUNCTION jobq._payload_text(payload jsonb, member text, required boolean, one_line boolean)
RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	v jsonb := payload -> member;
BEGIN
	IF v IS NULL OR v = 'null' THEN
		IF required THEN
			RAISE EXCEPTION 'payload must have a member "%"', member USING ERRCODE = 'invalid_parameter_value';
		END IF;
		RETURN NULL;
	END IF;
	IF jsonb_typeof(v) <> 'string' THEN
		RAISE EXCEPTION 'payload member "%" must be a string', member USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF one_line AND (v #>> '{}') ~ '[\r\n]' THEN
		RAISE EXCEPTION 'payload member "%" must not contain line breaks', member USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN v #>> '{}';
END $$;

/*
 * The request a network job makes, as the net worker (src/http.c) reads
 * it: url, type (http or smtp), method, headers, body or form, username and
 * password, mail_from and mail_rcpt, starttls, sign and sign_key,
 * payload_url, follow_redirects, timeout_ms, connect_timeout_ms, channel,
 * recipient.  key is the job's Idempotency-Key.  Raises the error the job dies of when the owner may not use
 * the channel or the http kind, or the payload is wrong.  jobq.enqueue runs
 * it with job_id NULL to check a new job.
 * 0.2.0: a channel's ca_cert and allowed_addresses go into the request; an
 * http job's path through a channel comes with the channel's url as
 * base_url (src/http.c checks that it stays under it); timeout_ms of the
 * payload is a whole number of milliseconds from 100 to 3600000.
 */
CREATE OR REPLACE FUNCTION jobq._net_request(job_id bigint, kind text, payload jsonb, owner oid, created_at timestamptz,
								  key text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	chan text;
	ch jobq._channels;
	req jsonb;
	headers jsonb := '{}';
	fields jsonb;
	body_format text;
	to_list text[];
	cc_list text[];
	subject text;
	text_body text;
	html_body text;
	reply_to text;
	boundary text;
	message text;
	url text;
	path text;
BEGIN
	IF jsonb_typeof(payload) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'payload of a job of kind "%" must be a JSON object', kind
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	chan := jobq._payload_text(payload, 'channel', kind IN ('email', 'sms'), true);
	IF chan IS NOT NULL THEN
		IF payload ? 'url' THEN
			RAISE EXCEPTION 'payload must have either "channel" or "url", not both' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		SELECT * INTO ch FROM jobq._channels c WHERE c.name = chan;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'channel "%" does not exist', chan USING ERRCODE = 'undefined_object';
		END IF;
		IF NOT jobq._granted(owner, ARRAY(SELECT grantee FROM jobq._channel_grants g WHERE g.channel = chan)) THEN
			RAISE EXCEPTION 'permission denied for channel "%"', chan USING ERRCODE = 'insufficient_privilege',
				HINT = 'A superuser can allow it with jobq.grant_channel().';
		END IF;
		IF ch.type <> 'http' AND kind <> 'email' THEN
			RAISE EXCEPTION 'channel "%" is an smtp channel; jobs of kind "%" need an http channel', chan, kind
				USING ERRCODE = 'wrong_object_type';
		END IF;
		req := jsonb_build_object('type', ch.type, 'url', ch.config ->> 'url', 'channel', chan,
			'method', coalesce(ch.config ->> 'method', 'POST'),
			'follow_redirects', coalesce((ch.config ->> 'follow_redirects')::boolean, false),
			'timeout_ms', ch.config -> 'timeout_ms', 'connect_timeout_ms', ch.config -> 'connect_timeout_ms',
			'username', ch.secrets -> 'username', 'password', ch.secrets -> 'password',
			'sign_key', ch.secrets -> 'signing_key', 'payload_url', false,
			'ca_cert', ch.config -> 'ca_cert', 'allowed_addresses', ch.config -> 'allowed_addresses');
		headers := coalesce(ch.config -> 'headers', '{}') || coalesce(ch.secrets -> 'headers', '{}');
		IF ch.secrets ? 'bearer_token' THEN
			headers := headers || jsonb_build_object('Authorization', 'Bearer ' || (ch.secrets ->> 'bearer_token'));
			req := req - 'username' - 'password';
		END IF;
	ELSIF kind IN ('http', 'webhook') THEN
		url := jobq._payload_text(payload, 'url', true, true);
		IF url !~* '^https?://' THEN
			RAISE EXCEPTION 'only http and https URLs may be requested, not "%"', url
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF NOT jobq._granted(owner, ARRAY(SELECT grantee FROM jobq._http_grants)) THEN
			RAISE EXCEPTION 'permission denied to send % jobs to a URL', kind USING ERRCODE = 'insufficient_privilege',
				HINT = 'A superuser can allow it with jobq.grant_http(), or give a channel with jobq.grant_channel().';
		END IF;
		req := jsonb_build_object('type', 'http', 'url', url, 'method', 'POST', 'payload_url', true,
			'follow_redirects', false);
	END IF;

	body_format := coalesce(ch.config ->> 'format', 'json');

	IF kind = 'http' THEN
		IF chan IS NOT NULL THEN
			path := jobq._payload_text(payload, 'path', false, true);
			IF path IS NOT NULL THEN
				IF path ~ '\s' THEN
					RAISE EXCEPTION 'payload member "path" must not contain white space' USING ERRCODE = 'invalid_parameter_value';
				END IF;
				req := jsonb_set(req, '{url}', to_jsonb(rtrim(ch.config ->> 'url', '/') || '/' || ltrim(path, '/')))
					|| jsonb_build_object('path', path, 'base_url', ch.config ->> 'url');
			END IF;
		END IF;
		IF (payload ? 'body')::int + (payload ? 'json')::int + (payload ? 'form')::int > 1 THEN
			RAISE EXCEPTION 'payload may have only one of "body", "json" and "form"' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		IF payload ? 'headers' THEN
			IF jsonb_typeof(payload -> 'headers') <> 'object'
			   OR EXISTS (SELECT FROM jsonb_each(payload -> 'headers') h WHERE jsonb_typeof(h.value) <> 'string') THEN
				RAISE EXCEPTION 'payload member "headers" must be an object of strings' USING ERRCODE = 'invalid_parameter_value';
			END IF;
			headers := (payload -> 'headers') || headers;	/* a channel's own headers win */
		END IF;
		IF payload ? 'body' THEN
			req := req || jsonb_build_object('body', jobq._payload_text(payload, 'body', true, false));
		ELSIF payload ? 'json' THEN
			req := req || jsonb_build_object('body', (payload -> 'json')::text);
			headers := jsonb_build_object('Content-Type', 'application/json') || headers;
		ELSIF payload ? 'form' THEN
			IF jsonb_typeof(payload -> 'form') <> 'object' THEN
				RAISE EXCEPTION 'payload member "form" must be an object' USING ERRCODE = 'invalid_parameter_value';
			END IF;
			req := req || jsonb_build_object('form', payload -> 'form');
		END IF;
		IF payload ? 'method' THEN
			IF jobq._payload_text(payload, 'method', true, true) !~ '^[A-Z]+$' THEN
				RAISE EXCEPTION 'payload member "method" must be an HTTP method in capitals' USING ERRCODE = 'invalid_parameter_value';
			END IF;
			req := req || jsonb_build_object('method', payload ->> 'method');
		ELSIF chan IS NULL THEN
			req := req || jsonb_build_object('method',
				CASE WHEN req ? 'body' OR req ? 'form' THEN 'POST' ELSE 'GET' END);
		END IF;
		IF payload ? 'timeout_ms' THEN
			IF jsonb_typeof(payload -> 'timeout_ms') <> 'number'
			   OR (payload ->> 'timeout_ms') !~ '^[0-9]{3,7}$'
			   OR (payload ->> 'timeout_ms')::integer NOT BETWEEN 100 AND 3600000 THEN
				RAISE EXCEPTION 'payload member "timeout_ms" must be a whole number of milliseconds from 100 to 3600000'
					USING ERRCODE = 'invalid_parameter_value';
			END IF;
			req := req || jsonb_build_object('timeout_ms', (payload ->> 'timeout_ms')::integer);
		END IF;
	ELSIF kind = 'sms' THEN
		fields := jsonb_build_object('to', jobq._payload_text(payload, 'to', true, true),
									 'message', jobq._payload_text(payload, 'message', true, false));
		req := req || jsonb_build_object('recipient', payload ->> 'to');
	ELSIF kind = 'email' THEN
		to_list := jobq._addresses(payload, 'to', true);
		cc_list := jobq._addresses(payload, 'cc', false);
		subject := jobq._payload_text(payload, 'subject', true, true);
		text_body := jobq._payload_text(payload, 'text', true, false);
		html_body := jobq._payload_text(payload, 'html', false, false);
		reply_to := jobq._payload_text(payload, 'reply_to', false, true);
		req := req || jsonb_build_object('recipient', array_to_string(to_list, ', '));
		IF ch.type = 'smtp' THEN
			boundary := 'jobq=' || md5(key || clock_timestamp()::text);
			message := 'From: ' || (ch.config ->> 'from') || E'\r\n'
				|| 'To: ' || array_to_string(to_list, ', ') || E'\r\n'
				|| CASE WHEN cardinality(cc_list) > 0 THEN 'Cc: ' || array_to_string(cc_list, ', ') || E'\r\n' ELSE '' END
				|| CASE WHEN reply_to IS NOT NULL THEN 'Reply-To: ' || reply_to || E'\r\n' ELSE '' END
				|| 'Subject: ' || jobq._mime_header(subject) || E'\r\n'
				|| 'Date: ' || to_char(now() AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY HH24:MI:SS') || E' +0000\r\n'
				|| 'Message-ID: <' || key || '@jobq>' || E'\r\n'
				|| E'MIME-Version: 1.0\r\n';
			IF html_body IS NULL THEN
				message := message || jobq._mime_part('text/plain', text_body);
			ELSE
				message := message || 'Content-Type: multipart/alternative; boundary="' || boundary || E'"\r\n\r\n'
					|| '--' || boundary || E'\r\n' || jobq._mime_part('text/plain', text_body)
					|| '--' || boundary || E'\r\n' || jobq._mime_part('text/html', html_body)
					|| '--' || boundary || E'--\r\n';
			END IF;
			req := req || jsonb_build_object('body', message,
				'mail_from', jobq._bare_address(ch.config ->> 'from'),
				'mail_rcpt', ARRAY(SELECT jobq._bare_address(a) FROM unnest(to_list || cc_list) AS a),
				'starttls', coalesce(ch.config ->> 'starttls', 'try'));
		ELSE
			fields := jsonb_strip_nulls(jsonb_build_object('to', to_jsonb(to_list),
				'cc', CASE WHEN cardinality(cc_list) > 0 THEN to_jsonb(cc_list) END,
				'subject', subject, 'text', text_body, 'html', html_body, 'reply_to', reply_to));
		END IF;
	ELSIF kind = 'webhook' THEN
		IF jobq._payload_text(payload, 'event', true, true) = '' THEN
			RAISE EXCEPTION 'payload member "event" must not be empty' USING ERRCODE = 'invalid_parameter_value';
		END IF;
		req := req || jsonb_build_object('method', 'POST', 'sign', true,
			'body', jsonb_build_object('id', key, 'event', payload ->> 'event',
				'created_at', created_at, 'data', coalesce(payload -> 'data', 'null'))::text);
		headers := headers || jsonb_build_object('Content-Type', 'application/json',
												 'Jobq-Event', payload ->> 'event');
	ELSE
		RAISE EXCEPTION 'job kind "%" is not a network kind', kind USING ERRCODE = 'invalid_parameter_value';
	END IF;

	/* sms and email through an http channel: the fields, renamed, as JSON or a form */
	IF fields IS NOT NULL THEN
		IF ch.config ? 'from' THEN
			fields := fields || jsonb_build_object('from', ch.config ->> 'from');
		END IF;
		SELECT jsonb_object_agg(coalesce(ch.config -> 'fields' ->> f.key, f.key), f.value)
		  INTO fields FROM jsonb_each(fields) f;
		IF body_format = 'form' THEN
			req := req || jsonb_build_object('form', fields);
		ELSE
			req := req || jsonb_build_object('body', fields::text);
			headers := jsonb_build_object('Content-Type', 'application/json') || headers;
		END IF;
	END IF;

	RETURN req || jsonb_build_object('headers', headers || jsonb_build_object('Idempotency-Key', key));
END $$;
COMMENT ON FUNCTION jobq._net_request(bigint, text, jsonb, oid, timestamptz, text)
	IS 'the request a network job makes, or the error it dies of; for the net worker and jobq.enqueue';
REVOKE ALL ON FUNCTION jobq._net_request(bigint, text, jsonb, oid, timestamptz, text) FROM PUBLIC;

