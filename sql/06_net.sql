-- 06_net: channels, grants and the checks a network job (http, email, sms,
-- webhook) passes when it is enqueued.  No worker runs here, so the jobs
-- stay pending; test/t/011_net.pl sends them to real servers.
SET client_min_messages = warning;
TRUNCATE jobq._queue, jobq._done, jobq._deliveries RESTART IDENTITY;
\set VERBOSITY terse

CREATE ROLE net_alice;
CREATE ROLE net_bob;
CREATE ROLE net_carol IN ROLE net_alice;

-- channels: checked when created
SELECT jobq.create_channel('gw', 'http',
	'{"url": "https://sms.example.org/send", "format": "form", "fields": {"message": "Body"}}',
	'{"bearer_token": "tok-SECRET", "headers": {"X-Api-Key": "key-SECRET"}}');
SELECT jobq.create_channel('mail', 'smtp',
	'{"url": "smtp://mail.example.org:587", "from": "School <noreply@school.example>", "starttls": "required"}',
	'{"username": "school", "password": "pw-SECRET"}');
SELECT jobq.create_channel('hooks', 'http', '{"url": "https://hooks.example.org/jobq"}',
	'{"signing_key": "sign-SECRET"}');
SELECT jobq.create_channel('gw', 'http', '{"url": "https://x.example.org"}');
SELECT jobq.create_channel('bad', 'ftp', '{"url": "ftp://x.example.org"}');
SELECT jobq.create_channel('bad', 'http', '{"url": "file:///etc/passwd"}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://user:pw@x.example.org"}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "password": "p"}');
SELECT jobq.create_channel('bad', 'smtp', '{"url": "smtp://x.example.org"}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "format": "xml"}');
SELECT jobq.alter_channel('gw', '{"url": "gopher://x.example.org"}');
SELECT jobq.alter_channel('nope', '{"url": "https://x.example.org"}');
SELECT name, type FROM jobq.channels ORDER BY name;

-- administration is not for PUBLIC; the table of secrets is not readable
SET ROLE net_alice;
SELECT jobq.create_channel('mine', 'http', '{"url": "https://x.example.org"}');
SELECT jobq.grant_channel('gw', 'net_alice');
SELECT jobq.grant_http('net_alice');
SELECT * FROM jobq._channels;
SELECT * FROM jobq._deliveries;
-- no grant: no channel in the view, and no job
SELECT name FROM jobq.channels;
SELECT jobq.enqueue('sms', '{"channel": "gw", "to": "+15550001", "message": "hi"}');
RESET ROLE;

SELECT jobq.grant_channel('gw', 'net_alice');
SELECT jobq.grant_channel('gw', 'net_alice');	-- twice is harmless
SELECT jobq.grant_channel('mail', 'PUBLIC');
SELECT jobq.grant_channel('gw', 'no_such_role');
SELECT jobq.grant_channel('no_such_channel', 'net_alice');

-- net_alice now sees the channels she may use, without any secret value
SET ROLE net_alice;
SELECT name, type, config, secret_names FROM jobq.channels ORDER BY name;
SELECT jobq.enqueue('sms', '{"channel": "gw", "to": "+15550001", "message": "your child was absent"}') AS sms_job \gset
SELECT kind, queue, status, owner FROM jobq.jobs WHERE id = :sms_job;
-- a member of net_alice inherits the grant
SET ROLE net_carol;
SELECT jobq.enqueue('sms', '{"channel": "gw", "to": "+15550002", "message": "hi"}') > 0 AS enqueued;
-- net_bob has PUBLIC's right to "mail" only
SET ROLE net_bob;
SELECT name FROM jobq.channels;
SELECT jobq.enqueue('email', '{"channel": "mail", "to": ["Parent <p@example.org>", "q@example.org"], "subject": "Absence", "text": "Dear parent", "html": "<p>Dear parent</p>"}') > 0 AS enqueued;
SELECT jobq.enqueue('sms', '{"channel": "gw", "to": "+15550003", "message": "hi"}');
RESET ROLE;

-- bad payloads, wrong channels
SELECT jobq.enqueue('sms', '{"channel": "gw", "to": "+15550001"}');
SELECT jobq.enqueue('sms', '{"channel": "gw", "to": 15550001, "message": "hi"}');
SELECT jobq.enqueue('sms', '{"to": "+15550001", "message": "hi"}');
SELECT jobq.enqueue('sms', '{"channel": "nope", "to": "+15550001", "message": "hi"}');
SELECT jobq.enqueue('sms', '{"channel": "mail", "to": "+15550001", "message": "hi"}');
SELECT jobq.enqueue('sms', '[1, 2]');
SELECT jobq.enqueue('email', '{"channel": "mail", "to": "p@example.org", "subject": "a\r\nBcc: x@evil.example", "text": "t"}');
SELECT jobq.enqueue('email', '{"channel": "mail", "to": "p@example.org\r\nBcc: x@evil.example", "subject": "s", "text": "t"}');
SELECT jobq.enqueue('email', '{"channel": "mail", "to": [], "subject": "s", "text": "t"}');
SELECT jobq.enqueue('webhook', '{"channel": "hooks", "data": {}}');
SELECT jobq.enqueue('webhook', '{"channel": "hooks", "url": "https://x.example.org", "event": "e"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "/status", "headers": {"X-Bad": "a\r\nInjected: 1"}}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "/status", "headers": {"Bad Name": "v"}}');
SELECT jobq.enqueue('http', '{"channel": "gw", "body": "a", "json": {}}');
SELECT jobq.enqueue('http', '{"channel": "gw", "method": "get"}');
SELECT jobq.enqueue_many('sms', ARRAY['{"channel": "gw", "to": "+1", "message": "ok"}',
	'{"channel": "gw", "to": "+2"}']::jsonb[]);

-- URLs of a job's own: the right to name one, the protocols, the allow-list
SET ROLE net_alice;
SELECT jobq.enqueue('http', '{"url": "https://api.example.org/v1"}');
SELECT jobq.enqueue('webhook', '{"url": "https://api.example.org/hook", "event": "e"}');
RESET ROLE;
SELECT jobq.grant_http('net_alice');
SET ROLE net_alice;
SELECT jobq.enqueue('http', '{"url": "https://api.example.org/v1"}');
RESET ROLE;
SET jobq.http_allowed_hosts = 'api.example.org, *.school.example, 127.0.0.1:8080';
SET ROLE net_alice;
SET jobq.http_allowed_hosts = '*';	-- a superuser's setting
SELECT jobq.enqueue('http', '{"url": "https://api.example.org/v1"}') > 0 AS allowed;
SELECT jobq.enqueue('http', '{"url": "HTTPS://API.EXAMPLE.ORG:8443/v1"}') > 0 AS any_port;
SELECT jobq.enqueue('webhook', '{"url": "https://hooks.school.example/in", "event": "e"}') > 0 AS wildcard;
SELECT jobq.enqueue('http', '{"url": "http://127.0.0.1:8080/x"}') > 0 AS host_and_port;
SELECT jobq.enqueue('http', '{"url": "http://127.0.0.1:8081/x"}');
SELECT jobq.enqueue('http', '{"url": "https://school.example/x"}');
SELECT jobq.enqueue('http', '{"url": "https://api.example.org.evil.example/x"}');
SELECT jobq.enqueue('http', '{"url": "https://evil.example/@api.example.org"}');
SELECT jobq.enqueue('http', '{"url": "file:///etc/passwd"}');
SELECT jobq.enqueue('http', '{"url": "gopher://api.example.org/"}');
SELECT jobq.enqueue('http', '{"url": "dict://api.example.org/"}');
SELECT jobq.enqueue('http', '{"url": "http://"}');
RESET ROLE;
RESET jobq.http_allowed_hosts;

-- a URL that names an address that is not public needs an address entry of
-- the allow-list ("*" and names are not enough); public addresses pass
SET jobq.http_allowed_hosts = '*';
SET ROLE net_alice;
SELECT jobq.enqueue('http', '{"url": "http://127.0.0.1/x"}');
SELECT jobq.enqueue('http', '{"url": "http://169.254.169.254/latest/meta-data/"}');
SELECT jobq.enqueue('http', '{"url": "http://10.1.2.3/"}');
SELECT jobq.enqueue('http', '{"url": "http://[::1]/"}');
SELECT jobq.enqueue('http', '{"url": "http://[::ffff:192.168.0.1]/"}');
SELECT jobq.enqueue('http', '{"url": "http://[fe80::1]/"}');
SELECT jobq.enqueue('http', '{"url": "http://0x7f000001/"}');
SELECT jobq.enqueue('http', '{"url": "http://2130706433/"}');
SELECT jobq.enqueue('http', '{"url": "https://93.184.215.14/"}') > 0 AS public_address;
RESET ROLE;
SET jobq.http_allowed_hosts = '*, 10.0.0.0/8, [::1]:8080';
SET ROLE net_alice;
SELECT jobq.enqueue('http', '{"url": "http://10.1.2.3/"}') > 0 AS in_range;
SELECT jobq.enqueue('http', '{"url": "http://[::1]:8080/"}') > 0 AS v6_and_port;
SELECT jobq.enqueue('http', '{"url": "http://[::1]:8081/"}');
SELECT jobq.enqueue('http', '{"url": "http://172.16.0.1/"}');
RESET ROLE;
SET jobq.http_allowed_hosts = '10.0.0.0/8';
SELECT jobq.enqueue('http', '{"url": "http://10.9.9.9:81/"}') > 0 AS range_allows_host;
SELECT jobq.enqueue('http', '{"url": "http://11.0.0.1/"}');
RESET jobq.http_allowed_hosts;

-- a path stays under the channel's url: no "." or ".." segment, also not
-- percent-encoded (once or more), nor before ";" or "\"
SET ROLE net_alice;
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "/../redir"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": ".."}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "a/../../x"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "a/./b"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "%2e%2e/x"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "%2E%2e%2Fx"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "a/..%2fx"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "%252e%252e/x"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "..;/x"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "a/..\\x"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "users/a%2Fb/.profile"}') > 0 AS stays_under;
SELECT jobq.enqueue('http', '{"channel": "gw", "path": "..x/...?q=1"}') > 0 AS not_dot_segments;
-- per-job headers without control characters; timeouts from 100 ms to one hour
SELECT jobq.enqueue('http', '{"channel": "gw", "headers": {"X-Bell": "a\u0007b"}}');
SELECT jobq.enqueue('http', '{"channel": "gw", "headers": {"X-Del": "a\u007fb"}}');
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": -1}');
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": 0}');
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": 99}');
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": 3600001}');
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": 1e20}');
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": "5000"}');
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": 150.5}');
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": 100, "headers": {"X-Tab": "a\tb"}}') > 0 AS shortest;
SELECT jobq.enqueue('http', '{"channel": "gw", "timeout_ms": 3600000}') > 0 AS longest;
RESET ROLE;

-- channels: header names and values, timeouts, follow_redirects, ca_cert and
-- allowed_addresses are checked when a channel is created or altered
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "headers": {"X-A": "a\r\nX-Injected: 1"}}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org"}', '{"headers": {"X-Key": "k\u0007"}}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "headers": {"Bad Name": "v"}}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "headers": {"X-N": {"a": 1}}}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "timeout_ms": -1}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "timeout_ms": 0}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "timeout_ms": 5616000000000000}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "connect_timeout_ms": "5000"}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "connect_timeout_ms": 150.5}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "follow_redirects": "yes"}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "ca_cert": "not a certificate"}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "allowed_addresses": "10.0.0.0/8"}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "allowed_addresses": ["10.0.0.0/33"]}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "allowed_addresses": ["intranet.example"]}');
SELECT jobq.create_channel('bad', 'http', '{"url": "https://x.example.org", "allowed_addresses": ["999.1.1.1"]}');
SELECT jobq.alter_channel('gw', '{"url": "https://sms.example.org/send", "headers": {"X-A": "\n"}}');
SELECT jobq.alter_channel('gw', secrets => '{"headers": {"X-Api-Key": "key\r\nX-Injected: 1"}}');
SELECT jobq.create_channel('api', 'http', '{"url": "https://api.example.org/v1/", "timeout_ms": 3600000,
	"connect_timeout_ms": 100, "follow_redirects": true, "headers": {"X-Tab": "a\tb"},
	"allowed_addresses": ["10.0.0.0/8", "[fd00::]/8", "127.0.0.1", "::1"],
	"ca_cert": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}');
SELECT jobq.grant_channel('api', 'net_alice');

SELECT jobq.drop_channel('api');

-- network jobs wait for the net worker: a SQL worker's claim skips them
SELECT count(*) AS net_jobs FROM jobq._queue WHERE net;
SELECT count(*) FROM jobq._queue WHERE NOT net;
SELECT count(*) AS claimed FROM jobq._claim(100);
SELECT kind, net FROM jobq.kinds WHERE net ORDER BY kind;

-- no secret in any job
SELECT count(*) AS secrets_in_jobs FROM jobq.jobs
 WHERE payload::text ~ 'SECRET' OR coalesce(last_error, '') ~ 'SECRET';

-- revoking and dropping
SELECT jobq.revoke_channel('gw', 'net_alice');
SELECT jobq.revoke_channel('gw', 'net_alice');
SELECT jobq.revoke_http('net_alice');
SET ROLE net_alice;
SELECT jobq.enqueue('sms', '{"channel": "gw", "to": "+15550001", "message": "hi"}');
SELECT name FROM jobq.channels;
RESET ROLE;
SELECT jobq.drop_channel('mail');
SELECT jobq.drop_channel('mail');
SELECT count(*) FROM jobq._channel_grants WHERE channel = 'mail';

-- the delivery log view is there for everyone, showing only their own
SET ROLE net_bob;
SELECT count(*) FROM jobq.deliveries;
RESET ROLE;

\set VERBOSITY default
TRUNCATE jobq._queue, jobq._done RESTART IDENTITY;
SELECT jobq.drop_channel(name) FROM jobq._channels;
DELETE FROM jobq._http_grants;
DROP ROLE net_alice, net_bob, net_carol;

-- channel names are checked as queue and kind names are
SELECT jobq.create_channel(E'line\nbreak', 'http', '{"url": "https://x.example.org"}');
SELECT jobq.create_channel(E'del\u007f', 'http', '{"url": "https://x.example.org"}');
SELECT jobq.create_channel(repeat('c', 64), 'http', '{"url": "https://x.example.org"}');
SELECT jobq.create_channel('', 'http', '{"url": "https://x.example.org"}');
SELECT count(*) FROM jobq._channels WHERE name ~ '[\x01-\x1f\x7f]' OR name = '' OR octet_length(name) > 63;
\set VERBOSITY terse
INSERT INTO jobq._channels (name, type) VALUES (E'by\thand', 'http');
\set VERBOSITY default
SELECT jobq.create_channel(NULL, 'http', '{"url": "https://x.example.org"}');
-- a timeout_ms is written as a whole number: 100.0 is refused as the request's check would
SELECT jobq.create_channel('c100', 'http', '{"url": "https://x.example.org", "timeout_ms": 100.0}');
SELECT jobq.enqueue('http', '{"url": "https://x.example.org/", "timeout_ms": 100.0}');
