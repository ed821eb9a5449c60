# 011_net.pl: network jobs delivered by the net worker to local servers.
#
# A recording HTTP server (test/net/http_server.py) and an SMTP sink
# (test/net/smtp_sink.py) run next to the node.  A webhook through a channel
# arrives signed with the channel's key and carries the channel's secret
# header and an Idempotency-Key; a webhook to a URL is signed with
# jobq.webhook_signing_key.  A 500 is retried with the same key, a 400 or a
# redirect is dead at once, a request over jobq.http_timeout fails with
# JQC28 and is retried until cancelled, a 429 with Retry-After waits that
# long.  500 sms jobs run at most jobq.http_max_in_flight at once, each sent
# once.  Email goes out as a UTF-8 MIME message (multipart/alternative with
# html).  A role needs jobq.grant_channel or jobq.grant_http; other schemes
# and hosts out of jobq.http_allowed_hosts are refused at enqueue.
# attendance.thresholds texts each student under a threshold once.  No
# secret shows in jobq.jobs, jobq.deliveries or the server log.  After a
# kill -9 with a request in flight, it is sent again with the same key.

use strict;
use warnings;
use utf8;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use Cwd qw(abs_path);
use Digest::SHA qw(hmac_sha256_hex);
use Encode qw(encode_utf8);
use File::Path qw(rmtree);
use JSON::PP;
use Time::HiRes qw(usleep);

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $net_dir = "$FindBin::RealBin/../net";

my $dir = abs_path($PostgreSQL::Test::Utils::tmp_check) . '/net';
rmtree($dir);
mkdir $dir or die "cannot create $dir: $!";
my $http_log = "$dir/http.log";
my $http_stats = "$dir/http.stats";
my $mail_dir = "$dir/mail";

# JSON that is plain ASCII, so that it can go into SQL as it is
my $json = JSON::PP->new->ascii->canonical;

# ---------------------------------------------------------------------
# The servers
# ---------------------------------------------------------------------

# The channel hooks signs with its own key; the server checks that one.
my $hook_key = 'whsec-channel-hooks-7c1d';
my $api_key = 's3cret-key';
my $guc_key = 'whsec-test';
my $bearer = 'tok-sms-bearer-2b9e41';
my @secrets = ($hook_key, $api_key, $guc_key, $bearer);

my $hp = jobq_start_server(
	$dir, 'http', "$net_dir/http_server.py",
	'--log' => $http_log,
	'--stats' => $http_stats,
	'--signing-key' => $hook_key);
my $sp = jobq_start_server($dir, 'smtp', "$net_dir/smtp_sink.py", '--dir' => $mail_dir);
note "HTTP server on port $hp, SMTP sink on port $sp";

# A 1 s poll keeps this test short; that the net worker is woken at
# COMMIT, and only then, is 004_wakeup.pl's, with a 60 s poll.
my $node = jobq_node(
	'net', q{
jobq.workers = 1
jobq.poll_interval = '1s'
jobq.retry_base_delay = '200ms'
jobq.http_allowed_hosts = '127.0.0.1'
jobq.http_timeout = '2s'
jobq.http_max_in_flight = 50
jobq.webhook_signing_key = 'whsec-test'
timezone = 'UTC'
restart_after_crash = on
},
	extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->safe_psql('postgres', 'CREATE EXTENSION jobq');

# ---------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------

sub sql
{
	return $node->safe_psql('postgres', $_[0]);
}

# Run $sql as $user: (exit code, stdout, stderr), or the output (a test).
sub psql_as { return jobq_psql_as($node, @_) }
sub safe_as { return jobq_safe_as($node, @_) }

# A JSON value as an SQL literal of type jsonb.
sub jsonb
{
	(my $text = $json->encode($_[0])) =~ s/'/''/g;
	return "'$text'::jsonb";
}

# The SQL of jobq.enqueue($kind, $payload, @more).
sub enqueue_sql
{
	my ($kind, $payload, @more) = @_;
	return "SELECT jobq.enqueue('$kind', " . jsonb($payload)
	  . join('', map { ", $_" } @more) . ')';
}

# Enqueue a job as the superuser; returns its id.
sub enqueue
{
	return sql(enqueue_sql(@_));
}

# Every request the HTTP server has logged, oldest first.
sub requests
{
	return () unless -e $http_log;
	my $text = slurp_file($http_log);
	$text =~ s/[^\n]*\z//;    # a line still being written
	return map { decode_json($_) } grep { /\S/ } split /\n/, $text;
}

# How many requests are logged so far, and those after such a mark.
sub log_mark
{
	return scalar(my @r = requests());
}

sub requests_since
{
	my ($mark, $path_re) = @_;
	my @r = requests();
	@r = @r[ $mark .. $#r ];
	@r = grep { $_->{path} =~ $path_re } @r if defined $path_re;
	return @r;
}

# A request header, whatever the case of its name.
sub header
{
	my ($r, $name) = @_;
	for my $k (keys %{ $r->{headers} })
	{
		return $r->{headers}{$k} if lc $k eq lc $name;
	}
	return undef;
}

# Whether a request carries a Jobq-Signature made with $key.
sub signed_with
{
	my ($r, $key) = @_;
	my $sig = header($r, 'Jobq-Signature') // return 0;
	my ($t) = $sig =~ /(?:^|,)\s*t=(\d+)/ or return 0;
	my @v1 = $sig =~ /(?:^|,)\s*v1=([0-9a-fA-F]+)/g;
	my $want = hmac_sha256_hex("$t." . encode_utf8($r->{body}), $key);
	return (grep { lc $_ eq $want } @v1) ? 1 : 0;
}

sub body_json
{
	my ($r) = @_;
	my $v = eval { decode_json(encode_utf8($r->{body})) };
	return $v;
}

# "status|attempts" and more columns of a job.
sub job
{
	my ($id, $cols) = @_;
	$cols //= 'status, attempts';
	return sql("SELECT $cols FROM jobq.jobs WHERE id = $id");
}

# The delivery rows of a job, one line per attempt.
sub deliveries
{
	my ($id, $cols) = @_;
	return sql(
		"SELECT $cols FROM jobq.deliveries WHERE job_id = $id ORDER BY attempt, id"
	);
}

my ($sysid, $dboid) = split /\|/,
  sql(q{SELECT (SELECT system_identifier FROM pg_control_system()),
			   (SELECT oid FROM pg_database WHERE datname = current_database())});

# The Idempotency-Key of a job
sub idem_key
{
	return "jobq-$sysid-$dboid-$_[0]";
}

# Secrets go in from a file, so that no statement text holds them
# (log_statement = all): the server log must show none.
sub secrets_sql
{
	my ($name, $secrets) = @_;
	my $file = "$dir/$name.secrets.json";
	open my $fh, '>', $file or die "cannot write $file: $!";
	print $fh $json->encode($secrets);
	close $fh;
	return "pg_catalog.pg_read_file('$file')::jsonb";
}

# ---------------------------------------------------------------------
# The net worker and the channels
# ---------------------------------------------------------------------

# Workers start on demand: no network job has been due yet, so no net
# worker (the launcher starts it with the first one).
is( $node->safe_psql(
		'postgres', q{
SELECT count(*) FROM jobq.workers WHERE datname = 'postgres' AND lane = 'net'}),
	'0',
	'no net worker before a network job is due');

my $hooks_config = {
	url => "http://127.0.0.1:$hp/ok/hooks",
	headers => { 'X-Source' => 'jobq-test' } };
my $sms_config = {
	url => "http://127.0.0.1:$hp/slow",
	fields => { message => 'Body' },
	from => 'SCHOOL' };
my $mail_config = {
	url => "smtp://127.0.0.1:$sp",
	from => 'School <noreply@school.test>',
	starttls => 'never' };
sql(    "SELECT jobq.create_channel('hooks', 'http', "
	  . jsonb($hooks_config) . ', '
	  . secrets_sql('hooks',
		{ signing_key => $hook_key, headers => { 'X-Api-Key' => $api_key } })
	  . ')');
sql(    "SELECT jobq.create_channel('sms', 'http', "
	  . jsonb($sms_config) . ', '
	  . secrets_sql('sms', { bearer_token => $bearer })
	  . ')');
sql("SELECT jobq.create_channel('mail', 'smtp', " . jsonb($mail_config) . ')');

is( sql(
		q{SELECT name, type, array_to_string(secret_names, ',') FROM jobq.channels ORDER BY name}
	),
	"hooks|http|headers,signing_key\nmail|smtp|\nsms|http|bearer_token",
	'jobq.channels lists the channels with the names of their secrets');

my ($ret, $out, $err) =
  psql_as(undef, "SELECT jobq.create_channel('hooks', 'http', "
	  . jsonb($hooks_config) . ')');
like($err, qr/42710/, 'a channel that exists cannot be created again: 42710');

# ---------------------------------------------------------------------
# A webhook through a channel
# ---------------------------------------------------------------------

my $mark = log_mark();
my $wh = enqueue('webhook',
	{ channel => 'hooks', event => 'student.enrolled', data => { student_id => 42, name => 'Zahra' } });
jobq_wait_finished($node, $wh, 'webhook through hooks');
is(job($wh), 'succeeded|1', 'the webhook succeeded at the first attempt');

my @reqs = requests_since($mark);
is(scalar(@reqs), 1, 'the server received one request');
my $r = $reqs[0] // { headers => {}, body => '' };
is($r->{method}, 'POST', 'the webhook is a POST');
is($r->{path}, '/ok/hooks', 'to the path of the channel url');
my $body = body_json($r) // {};
is($body->{event}, 'student.enrolled', 'the body names the event');
is_deeply($body->{data}, { student_id => 42, name => 'Zahra' },
	'the body holds the data');
is($body->{id}, idem_key($wh), 'the body id is the idempotency key of the job');
like($body->{created_at} // '', qr/^\d{4}-\d\d-\d\d/, 'the body has created_at');
is(header($r, 'Idempotency-Key'), idem_key($wh),
	'Idempotency-Key is jobq-<system id>-<database oid>-<job id>');
is(header($r, 'X-Api-Key'), $api_key, 'the secret header of the channel is sent');
is(header($r, 'X-Source'), 'jobq-test', 'the config header of the channel is sent');
is(header($r, 'Jobq-Event'), 'student.enrolled', 'Jobq-Event names the event');
like(header($r, 'Content-Type') // '', qr{^application/json}, 'the body is JSON');
is(header($r, 'User-Agent'), 'jobq/0.2.0', 'User-Agent is jobq/0.2.0');
ok($r->{signature_valid}, 'the server finds the signature valid');
ok(signed_with($r, $hook_key) && !signed_with($r, $guc_key),
	"signed with the channel's key, not jobq.webhook_signing_key");
like(header($r, 'Jobq-Signature') // '', qr/^t=(\d+),v1=[0-9a-f]{64}$/,
	'Jobq-Signature is t=<unix>,v1=<hex>');
if ((header($r, 'Jobq-Signature') // '') =~ /^t=(\d+)/)
{
	ok(abs($1 - $r->{time}) < 60, 'its time is the time of sending');
}
is( deliveries($wh, 'attempt, kind, channel, url, status_code, outcome'),
	"1|webhook|hooks|http://127.0.0.1:$hp/ok/hooks|200|delivered",
	'jobq.deliveries has the delivery: 200, delivered');

# A webhook to a URL of its own is signed with jobq.webhook_signing_key.
$mark = log_mark();
my $wu = enqueue('webhook',
	{ url => "http://127.0.0.1:$hp/ok/by-url?a=1", event => 'e.url', data => [ 1, 2 ] });
jobq_wait_finished($node, $wu, 'webhook to a url');
is(job($wu), 'succeeded|1', 'the webhook to a url succeeded');
@reqs = requests_since($mark);
is(scalar(@reqs), 1, 'one request');
$r = $reqs[0] // { headers => {}, body => '' };
is(($r->{path} // '') . '?' . ($r->{query} // ''), '/ok/by-url?a=1', 'to the url of the payload');
ok(signed_with($r, $guc_key), 'signed with jobq.webhook_signing_key');
is(header($r, 'X-Api-Key'), undef, 'without the headers of any channel');
is( deliveries($wu, 'url, outcome'),
	"http://127.0.0.1:$hp/ok/by-url|delivered",
	'the delivery log keeps the url without its query string');

# ---------------------------------------------------------------------
# http: retried on 500, dead on 400 and on a redirect
# ---------------------------------------------------------------------

$mark = log_mark();
my $flaky = enqueue('http',
	{ url => "http://127.0.0.1:$hp/flaky/x", json => { n => 1 } },
	'max_attempts => 5');
jobq_wait_finished($node, $flaky, 'flaky');
is( job($flaky, q{status, attempts, result->>'status'}),
	'succeeded|2|200',
	'500 then 200: the job succeeded at the second attempt');
is( deliveries($flaky, 'attempt, status_code, outcome, error_sqlstate'),
	"1|500|retry|JQ500\n2|200|delivered|",
	'two deliveries: 500 retried, then 200 delivered');
@reqs = requests_since($mark, qr{^/flaky/x$});
is(scalar(@reqs), 2, 'the server saw two requests');
is_deeply(
	[ map { header($_, 'Idempotency-Key') // 'none' } @reqs ],
	[ idem_key($flaky), idem_key($flaky) ],
	'both with the same Idempotency-Key');
is_deeply(
	[ map { [ $_->{method}, body_json($_) ] } @reqs ],
	[ [ 'POST', { n => 1 } ], [ 'POST', { n => 1 } ] ],
	'both POST the JSON of the payload');

my $bad = enqueue('http',
	{ url => "http://127.0.0.1:$hp/bad", json => {} },
	'max_attempts => 5');
jobq_wait_finished($node, $bad, 'bad request');
is( job($bad, 'status, attempts, last_error_sqlstate'),
	'dead|1|JQ400', '400: dead after one attempt with JQ400');
like(job($bad, 'last_error'), qr/bad request: missing field/,
	'last_error keeps the response');
is( deliveries($bad, 'status_code, outcome, error_sqlstate, response'),
	'400|failed|JQ400|bad request: missing field',
	'the delivery log keeps the response');

$mark = log_mark();
my $redir = enqueue('http', { url => "http://127.0.0.1:$hp/redirect" },
	'max_attempts => 5');
jobq_wait_finished($node, $redir, 'redirect');
is( job($redir, 'status, attempts, last_error_sqlstate'),
	'dead|1|JQ302', 'a redirect of a payload url is not followed: dead, JQ302');
is_deeply([ map { "$_->{method} $_->{path}" } requests_since($mark) ],
	['GET /redirect'], 'one GET, nothing after the redirect');

# ---------------------------------------------------------------------
# A request over jobq.http_timeout; a 429 with Retry-After
# ---------------------------------------------------------------------

$mark = log_mark();
my $hang = enqueue('http', { url => "http://127.0.0.1:$hp/hang" },
	'max_attempts => 10');
my $limited = enqueue('http',
	{ url => "http://127.0.0.1:$hp/limited/y", json => { n => 2 } },
	'max_attempts => 5');

ok( $node->poll_query_until(
		'postgres', qq{
SELECT attempts >= 2 AND last_error_sqlstate = 'JQC28' FROM jobq.jobs WHERE id = $hang}
	),
	'the hanging request timed out with JQC28 and was tried again');
is( deliveries($hang, q{status_code IS NULL, outcome, error_sqlstate,
		duration_ms BETWEEN 1500 AND 10000})
	  =~ s/\n.*//sr,
	't|retry|JQC28|t',
	'its first delivery: no response, retry, JQC28, after about jobq.http_timeout');
is(sql("SELECT jobq.cancel($hang)"), 't', 'jobq.cancel of the hanging job');
ok( $node->poll_query_until(
		'postgres', "SELECT status FROM jobq.jobs WHERE id = $hang",
		'cancelled'),
	'the hanging job ends cancelled');

jobq_wait_finished($node, $limited, '429');
is(job($limited), 'succeeded|2', '429 then 200: succeeded at the second attempt');
is( deliveries($limited, 'attempt, status_code, outcome, error_sqlstate'),
	"1|429|retry|JQ429\n2|200|delivered|",
	'the 429 is logged as a retry');
@reqs = requests_since($mark, qr{^/limited/y$});
is(scalar(@reqs), 2, 'two requests to /limited/y');
my $gap = @reqs == 2 ? $reqs[1]{time} - $reqs[0]{time} : 0;
note sprintf('second request %.2f s after the first', $gap);
ok($gap >= 2.5, 'the second request came after Retry-After: 3 (not the 200ms backoff)');

# ---------------------------------------------------------------------
# 500 sms at most jobq.http_max_in_flight at once
# ---------------------------------------------------------------------

$mark = log_mark();
my ($first, $last, $n) = split /\|/, sql(
	q{
SELECT min(id), max(id), count(*) FROM jobq.enqueue_many('sms', ARRAY(
	SELECT jsonb_build_object('channel', 'sms', 'to', '+93700' || lpad(g::text, 6, '0'),
							  'message', 'Bulk message ' || g)
	  FROM generate_series(1, 500) g)) AS id});
is($n, 500, '500 sms jobs enqueued');
ok( $node->poll_query_until(
		'postgres', qq{
SELECT count(*) FROM jobq.jobs
 WHERE id BETWEEN $first AND $last AND status NOT IN ('pending', 'running')},
		'500'),
	'the 500 sms jobs have finished');
is( sql(
		qq{
SELECT count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1) FROM jobq.jobs
 WHERE id BETWEEN $first AND $last}),
	'500', 'all 500 succeeded at their first attempt');

@reqs = requests_since($mark, qr{^/slow$});
is(scalar(@reqs), 500, 'the server received exactly 500 requests');
my %keys = map { (header($_, 'Idempotency-Key') // 'none') => 1 } @reqs;
is(scalar(keys %keys), 500, 'with 500 distinct Idempotency-Keys');
is( scalar(grep { $keys{ idem_key($_) } } $first .. $last),
	500, 'one for each job');
my $good = grep {
	my $sb = body_json($_);
	$sb
	  && defined $sb->{to}
	  && $sb->{to} =~ /^\+93700(\d{6})$/
	  && ($sb->{Body} // '') eq 'Bulk message ' . ($1 + 0)
	  && !exists $sb->{message}
	  && ($sb->{from} // '') eq 'SCHOOL'
	  && (header($_, 'Authorization') // '') eq "Bearer $bearer"
	  && $_->{method} eq 'POST'
} @reqs;
is($good, 500,
	'each a POST with to, the message renamed to Body, from, and the bearer token');
my $stats = eval { decode_json(slurp_file($http_stats)) } // {};
note "server stats: peak $stats->{peak}, count $stats->{count}";
ok(($stats->{peak} // 0) >= 25, 'requests really ran concurrently (peak >= 25)');
ok(($stats->{peak} // 99) <= 50, 'never more than jobq.http_max_in_flight = 50 at once');

# ---------------------------------------------------------------------
# Email through the SMTP sink
# ---------------------------------------------------------------------

# The message the sink received as its $n-th, once it is there.
sub mail
{
	my ($n) = @_;
	my $file = "$mail_dir/$n.json";
	for (1 .. 100)
	{
		last if -e $file;
		usleep(100_000);
	}
	return {} unless -e $file;
	return decode_json(slurp_file($file));
}

sub mail_count
{
	return scalar(my @f = glob("$mail_dir/*.json"));
}

# Line ends as LF, no trailing line break.
sub lf
{
	my ($s) = @_;
	return undef unless defined $s;
	$s =~ s/\r\n/\n/g;
	$s =~ s/\n+\z//;
	return $s;
}

my $subject = 'غياب الطالب — Résumé de présence';
my $text = "السلام عليكم،\nكان الطالب غائبًا اليوم.\nMerci, à bientôt.";
my $mails = mail_count();
my $em = enqueue('email',
	{ channel => 'mail', to => 'parent@example.test', subject => $subject, text => $text });
jobq_wait_finished($node, $em, 'email');
is(job($em), 'succeeded|1', 'the email job succeeded');
my $m = mail($mails + 1);
my $p = $m->{parsed} // {};
is($m->{mail_from}, 'noreply@school.test', 'envelope sender: the bare from address');
is_deeply($m->{rcpt_tos}, ['parent@example.test'], 'envelope recipient');
like($p->{from} // '', qr/^"?School"? <noreply\@school\.test>$/, 'From header');
is($p->{to}, 'parent@example.test', 'To header');
is($p->{subject}, $subject, 'the UTF-8 Subject decodes to what was sent');
is($p->{content_type}, 'text/plain', 'a text-only email is text/plain');
is($p->{parts}[0]{charset}, 'utf-8', 'in UTF-8');
is(lf($p->{parts}[0]{text}), $text, 'the body decodes to the text sent');
unlike($m->{data} // "\x{e9}", qr/[^\x00-\x7f]/,
	'the raw message is 7-bit: encoded header, base64 body');
is(deliveries($em, 'kind, channel, recipient, outcome'),
	'email|mail|parent@example.test|delivered', 'the delivery is logged');

$mails = mail_count();
my $html = '<p>السلام عليكم — <b>bonjour</b></p>';
my $em2 = enqueue('email',
	{ channel => 'mail', to => [ 'parent@example.test', 'Teacher <teacher@example.test>' ],
	  subject => 'Report', text => 'plain version', html => $html });
jobq_wait_finished($node, $em2, 'email with html');
is(job($em2), 'succeeded|1', 'the html email job succeeded');
$m = mail($mails + 1);
$p = $m->{parsed} // {};
is($p->{content_type}, 'multipart/alternative', 'with html: multipart/alternative');
is( join(',', map { $_->{content_type} } @{ $p->{parts} // [] }),
	'text/plain,text/html', 'a text part, then an html part');
is(lf($p->{parts}[1]{text}), $html, 'the html part decodes to the html sent');
is_deeply([ sort @{ $m->{rcpt_tos} // [] } ],
	[ 'parent@example.test', 'teacher@example.test' ],
	'sent to both recipients');

my $rejected = enqueue('email',
	{ channel => 'mail', to => 'reject@example.test', subject => 'x', text => 'x' },
	'max_attempts => 5');
jobq_wait_finished($node, $rejected, 'email refused by the server');
is( job($rejected, 'status, attempts, last_error_sqlstate'),
	'dead|1|JQ550', 'a 550 reply: dead at once with JQ550');

# ---------------------------------------------------------------------
# Grants
# ---------------------------------------------------------------------

sql('CREATE ROLE alice LOGIN');
my $alice_sms = enqueue_sql('sms',
	{ channel => 'sms', to => '+93799000001', message => 'from alice' });
($ret, $out, $err) = psql_as('alice', $alice_sms);
isnt($ret, 0, 'alice cannot enqueue to the sms channel without a grant');
like($err, qr/42501/, 'enqueueing to a channel not granted: 42501');
is(safe_as('alice', 'SELECT count(*) FROM jobq.channels'),
	'0', 'alice sees no channel');

sql(q{SELECT jobq.grant_channel('sms', 'alice')});
is(safe_as('alice', q{SELECT name, secret_names FROM jobq.channels}),
	'sms|{bearer_token}', 'once granted, alice sees the channel, not its secrets');
$mark = log_mark();
my $alice_id = safe_as('alice', $alice_sms);
jobq_wait_finished($node, $alice_id, "alice's sms");
is(job($alice_id, 'status, owner'), 'succeeded|alice',
	"after jobq.grant_channel alice's sms job runs as hers and succeeds");
is( safe_as('alice',
		"SELECT count(*), min(owner::text), min(outcome) FROM jobq.deliveries WHERE job_id = $alice_id"),
	'1|alice|delivered',
	'alice sees the delivery of her job');
is_deeply(
	[ map { (body_json($_) // {})->{to} // '' } requests_since($mark, qr{^/slow$}) ],
	['+93799000001'], 'her sms reached the server');

my $alice_http = enqueue_sql('http', { url => "http://127.0.0.1:$hp/ok/alice" });
($ret, $out, $err) = psql_as('alice', $alice_http);
isnt($ret, 0, 'alice cannot enqueue http to a url without jobq.grant_http');
like($err, qr/42501/, 'http to a url without the grant: 42501');
sql(q{SELECT jobq.grant_http('alice')});
my $alice_get = safe_as('alice', $alice_http);
jobq_wait_finished($node, $alice_get, "alice's http job");
is(job($alice_get, q{status, owner, result->>'status'}), 'succeeded|alice|200',
	'after jobq.grant_http it runs as alice and succeeds');

($ret, $out, $err) = psql_as('alice', 'SELECT count(*) FROM jobq._channels');
isnt($ret, 0, 'alice cannot read jobq._channels');
like($err, qr/42501/, 'reading jobq._channels: 42501');
($ret, $out, $err) = psql_as('alice',
	q{SELECT jobq.create_channel('mine', 'http', '{"url": "http://127.0.0.1/"}')});
like($err, qr/42501/, 'alice cannot create a channel: 42501');
($ret, $out, $err) = psql_as('alice',
	enqueue_sql('webhook', { channel => 'hooks', event => 'x', data => {} }));
like($err, qr/42501/, 'nor use a channel granted to nobody: 42501');

# ---------------------------------------------------------------------
# URLs refused at enqueue
# ---------------------------------------------------------------------

for my $url ('file:///etc/passwd', 'gopher://127.0.0.1/')
{
	($ret, $out, $err) = psql_as(undef, enqueue_sql('http', { url => $url }));
	isnt($ret, 0, "$url is refused at enqueue");
	like($err, qr/22023.*only http and https/s,
		"$url: 22023, only http and https URLs");
}
($ret, $out, $err) =
  psql_as(undef, enqueue_sql('http', { url => 'http://example.com/' }));
isnt($ret, 0, 'a host out of jobq.http_allowed_hosts is refused at enqueue');
like($err, qr/42501/, 'http://example.com/: 42501');
like($err, qr/jobq\.http_allowed_hosts/, 'the message names jobq.http_allowed_hosts');
($ret, $out, $err) = psql_as(undef,
	enqueue_sql('sms', { channel => 'nosuch', to => '+1', message => 'x' }));
like($err, qr/42704/, 'an unknown channel: 42704');
($ret, $out, $err) = psql_as(undef,
	enqueue_sql('sms', { channel => 'mail', to => '+1', message => 'x' }));
like($err, qr/42809/, 'sms through an smtp channel: 42809');
($ret, $out, $err) = psql_as(undef, enqueue_sql('sms', { channel => 'sms', to => '+1' }));
like($err, qr/22023/, 'an sms without a message: 22023');

# ---------------------------------------------------------------------
# attendance.thresholds texting through the sms channel
# ---------------------------------------------------------------------

# the job pack, created while the workers run: they see its kinds
sql('CREATE EXTENSION jobq_pack');
my $schema = slurp_file('examples/seed_schema.sql');
sql($schema);
# students 2 and 4 at 70 % (mahroom); student 4 has no phone yet
sql(q{
INSERT INTO attendance (student_id, campus_id, day, status)
SELECT s, 1, date '2026-10-01' + g,
	   CASE WHEN s IN (2, 4) AND g < 6 THEN 'absent' ELSE 'present' END
  FROM generate_series(1, 4) s, generate_series(0, 19) g;
INSERT INTO student_contacts (student_id, phone, email) VALUES
	(1, '+93701000001', 's1@example.test'),
	(2, '+93701000002', 's2@example.test'),
	(3, '+93701000003', 's3@example.test');
});

my $thresholds = {
	month => '2026-10-01',
	notify_kind => 'sms',
	channel => 'sms',
	messages => {
		mahroom => 'MAHROOM: student %student_id% attended %rate% percent in %month%',
		warning => 'WARNING: student %student_id% attended %rate% percent in %month%',
		tasdiq => 'TASDIQ: student %student_id% attended %rate% percent in %month%',
	} };

# Run attendance.thresholds; returns its result.
sub run_thresholds
{
	my $id = enqueue('attendance.thresholds', $thresholds);
	jobq_wait_finished($node, $id, 'attendance.thresholds');
	is(job($id, 'status'), 'succeeded', 'attendance.thresholds succeeded')
	  or diag(job($id, 'last_error'));
	return decode_json(job($id, 'result') || '{}');
}

# Wait for the sms jobs of the notices; returns how many there are.
sub wait_notice_jobs
{
	ok( $node->poll_query_until(
			'postgres', q{
SELECT count(*) FROM jobq.jobs
 WHERE id IN (SELECT job_id FROM attendance_notices) AND status IN ('pending', 'running')},
			'0'),
		'the sms jobs of the notices have finished');
	return;
}

$mark = log_mark();
my $sms_jobs = sql(q{SELECT count(*) FROM jobq.jobs WHERE kind = 'sms'});
my $res = run_thresholds();
is($res->{notified}, 1, 'first run: one student notified');
is($res->{no_contact}, 1, 'one student under the line without a contact');
is(sql('SELECT string_agg(student_id || threshold, \',\') FROM attendance_notices'),
	'2mahroom', 'a notice for student 2 only: none without a contact');
wait_notice_jobs();
is( sql(q{
SELECT j.kind, j.status FROM attendance_notices n JOIN jobq.jobs j ON j.id = n.job_id}),
	'sms|succeeded', 'the notice was an sms job, and it succeeded');
@reqs = requests_since($mark, qr{^/slow$});
is(scalar(@reqs), 1, 'the server received one sms');
my $sms = @reqs ? body_json($reqs[0]) // {} : {};
is($sms->{to}, '+93701000002', "to student 2's phone");
like($sms->{Body} // '',
	qr/^MAHROOM: student 2 attended 70(\.0+)? percent in 2026-10(-01)?$/,
	'with the mahroom text, its placeholders filled in');

$mark = log_mark();
$res = run_thresholds();
is($res->{notified}, 0, 'second run: nobody notified again');
is($res->{no_contact}, 1, 'student 4 still has no contact');
is(sql(q{SELECT count(*) FROM jobq.jobs WHERE kind = 'sms'}),
	$sms_jobs + 1, 'the second run enqueued no sms');

# once student 4 has a phone, the next run texts student 4 and nobody else
sql(q{INSERT INTO student_contacts (student_id, phone, email) VALUES (4, '+93701000004', NULL)});
$res = run_thresholds();
is($res->{notified}, 1, 'third run: the student with a new contact is notified');
wait_notice_jobs();
is_deeply(
	[ map { (body_json($_) // {})->{to} // '' } requests_since($mark, qr{^/slow$}) ],
	['+93701000004'],
	'since the first run the server received one sms, to student 4');

# ---------------------------------------------------------------------
# No secret shows anywhere
# ---------------------------------------------------------------------

my $jobs_text = sql(
	q{SELECT string_agg(concat_ws(' ', id, payload, result, last_error, last_error_context), E'\n') FROM jobq.jobs}
);
my $deliveries_text =
  sql(q{SELECT string_agg(d::text, E'\n') FROM jobq.deliveries d});
my $channels_text = sql(q{SELECT string_agg(c::text, E'\n') FROM jobq.channels c});
like($jobs_text, qr{/flaky/x}, 'jobq.jobs read (it has the flaky job)');
like($deliveries_text, qr/bad request: missing field/,
	'jobq.deliveries read (it has the 400 response)');
like($channels_text, qr/signing_key/, 'jobq.channels read');
my $server_log = slurp_file($node->logfile);
like($server_log, qr/create_channel/, 'the server log read (statements are logged)');
for my $secret (@secrets)
{
	unlike($jobs_text, qr/\Q$secret\E/, "no row of jobq.jobs holds $secret");
	unlike($deliveries_text, qr/\Q$secret\E/,
		"no row of jobq.deliveries holds $secret");
	unlike($channels_text, qr/\Q$secret\E/, "jobq.channels does not show $secret");
	unlike($server_log, qr/\Q$secret\E/, "the server log does not hold $secret");
}

# ---------------------------------------------------------------------
# kill -9 while a request is in flight: the request is sent again, with
# the same Idempotency-Key (at least once)
# ---------------------------------------------------------------------

# Wait up to $secs seconds for at least $n requests to $path_re since $mark.
sub wait_requests
{
	my ($mark, $path_re, $n, $secs) = @_;
	for (1 .. $secs * 10)
	{
		my @r = requests_since($mark, $path_re);
		return @r if @r >= $n;
		usleep(100_000);
	}
	return requests_since($mark, $path_re);
}

# The net worker's claims are counted in jobq.workers too.
is( sql(q{
SELECT jobs_succeeded > 0, jobs_claimed >= jobs_succeeded + jobs_failed,
	   claims > 0, claim_time > 0
  FROM jobq.workers WHERE lane = 'net'}),
	't|t|t|t', 'jobq.workers counts the net worker\'s claims');

$mark = log_mark();
my $inflight = enqueue('http',
	{ url => "http://127.0.0.1:$hp/hang", timeout_ms => 20000 },
	'max_attempts => 5');
@reqs = wait_requests($mark, qr{^/hang$}, 1, 30);
is(scalar(@reqs), 1, 'the request is in flight');
my $net_pid = sql(q{SELECT pid FROM jobq.workers WHERE lane = 'net'});
ok(kill('KILL', $net_pid), 'kill -9 of the net worker');
@reqs = wait_requests($mark, qr{^/hang$}, 2, 60);
is(scalar(@reqs), 2, 'after the restart the request is sent again');
is_deeply(
	[ map { header($_, 'Idempotency-Key') } @reqs ],
	[ idem_key($inflight), idem_key($inflight) ],
	'with the same Idempotency-Key');
is(job($inflight, 'status, attempts, last_error_sqlstate'),
	'running|2|57P02',
	'the first attempt counted, recorded as its worker ending (57P02)');
is(sql("SELECT jobq.cancel($inflight)"), 't', 'cancel it');

jobq_stop_servers();
$node->stop;

done_testing();
