# 016_net_security.pl: what a network job may reach, and what it carries there.
#
# Servers on 127.0.0.1 only: two recording HTTP servers (two origins), an
# HTTPS one and an SMTP server with STARTTLS and AUTH, both with a
# self-signed certificate the test makes with openssl.  Names under
# .localhost resolve to the loopback addresses inside libcurl, so no
# resolver is asked.
#  - A channel's path cannot leave the channel's base path (also with %2e);
#    a redirect to another origin carries no secret header, no config
#    header and no Authorization, one to the same origin does; a hop to
#    another scheme or to an address the channel does not allow is refused.
#  - A name that resolves to a loopback address is refused (42501, nothing
#    sent) unless that address is allowed explicitly: an address entry of
#    jobq.http_allowed_hosts for a URL of the job's own, allowed_addresses
#    for a channel.
#  - https and STARTTLS trust a channel's ca_cert; without it the
#    certificate is refused (JQC60).  SMTP AUTH after STARTTLS.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use Cwd qw(abs_path);
use File::Path qw(rmtree);
use IPC::Run;
use JSON::PP;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $net_dir = "$FindBin::RealBin/../net";
my $dir = abs_path($PostgreSQL::Test::Utils::tmp_check) . '/net_security';
rmtree($dir);
mkdir $dir or die "cannot create $dir: $!";
my $json = JSON::PP->new->ascii->canonical;

# ---------------------------------------------------------------------
# A certificate, and the servers
# ---------------------------------------------------------------------

my ($cert, $key) = ("$dir/cert.pem", "$dir/key.pem");
IPC::Run::run(
	[
		'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
		'-subj', '/CN=127.0.0.1', '-addext',
		'subjectAltName=IP:127.0.0.1,DNS:localhost',
		'-keyout', $key, '-out', $cert
	],
	'>', "$dir/openssl.out", '2>', "$dir/openssl.err")
  or die 'openssl could not make a certificate: ' . slurp_file("$dir/openssl.err");
my $ca_pem = slurp_file($cert);

my $pa = jobq_start_server($dir, 'a', "$net_dir/http_server.py", '--log', "$dir/a.log");
my $pb = jobq_start_server($dir, 'b', "$net_dir/http_server.py", '--log', "$dir/b.log");
my $pt = jobq_start_server($dir, 'tls', "$net_dir/http_server.py", '--log', "$dir/tls.log",
	'--tls-cert', $cert, '--tls-key', $key);
my $ps = jobq_start_server($dir, 'smtp', "$net_dir/smtp_sink.py", '--dir', "$dir/mail",
	'--tls-cert', $cert, '--tls-key', $key, '--auth', 'school:mail-pw-77');
note "HTTP $pa and $pb, HTTPS $pt, SMTP $ps";

# jobq.http_allowed_hosts: the name evil.localhost, and the loopback address
# on B's port only
my $node = jobq_node(
	'net_security', qq{
jobq.workers = 1
jobq.poll_interval = '1s'
jobq.http_allowed_hosts = 'evil.localhost, 127.0.0.1:$pb'
jobq.http_timeout = '10s'
});
$node->safe_psql('postgres', 'CREATE EXTENSION jobq');
$node->safe_psql('postgres', 'CREATE ROLE alice LOGIN');

sub sql { return $node->safe_psql('postgres', $_[0]) }

sub jsonb
{
	(my $text = $json->encode($_[0])) =~ s/'/''/g;
	return "'$text'::jsonb";
}

# Secrets as SQL read from a file: no statement (log_statement = all) shows
# them
my $nsecrets = 0;

sub secret_jsonb
{
	my $file = "$dir/secrets." . ++$nsecrets . '.json';
	open my $fh, '>', $file or die "cannot write $file: $!";
	print $fh $json->encode($_[0]);
	close $fh;
	return "pg_catalog.pg_read_file('$file')::jsonb";
}

# The requests a server has logged, oldest first.
sub logged
{
	my ($name) = @_;
	my $file = "$dir/$name.log";
	return () unless -e $file;
	(my $text = slurp_file($file)) =~ s/[^\n]*\z//;
	return map { decode_json($_) } grep { /\S/ } split /\n/, $text;
}

sub header
{
	my ($r, $name) = @_;
	my ($k) = grep { lc $_ eq lc $name } keys %{ $r->{headers} };
	return defined $k ? $r->{headers}{$k} : undef;
}

# Enqueue as alice; the job id, or dies with the error.
sub enqueue_as_alice
{
	my ($kind, $payload, @more) = @_;
	return jobq_safe_as($node, 'alice',
		    "SELECT jobq.enqueue('$kind', "
		  . jsonb($payload)
		  . join('', map { ", $_" } @more)
		  . ')');
}

sub finished
{
	my ($id, $what) = @_;
	jobq_wait_finished($node, $id, $what);
	return sql(
		"SELECT status || '|' || CASE status WHEN 'succeeded' THEN '' ELSE last_error_sqlstate END
		   FROM jobq.jobs WHERE id = $id");
}

sub last_error
{
	return sql("SELECT last_error FROM jobq.jobs WHERE id = $_[0]");
}

# ---------------------------------------------------------------------
# A channel's path and redirects (issue 14, hole 6)
# ---------------------------------------------------------------------

my $api_key = 'api-key-SECRET-5d1';
my $bearer = 'bearer-SECRET-90a';
sql(    "SELECT jobq.create_channel('ch', 'http', "
	  . jsonb({
			url => "http://127.0.0.1:$pa/api",
			follow_redirects => JSON::PP::true,
			headers => { 'X-Source' => 'config-header' } })
	  . ', '
	  . secret_jsonb({ headers => { 'X-Api-Key' => $api_key }, bearer_token => $bearer })
	  . ')');
sql(q{SELECT jobq.grant_channel('ch', 'alice')});

for my $path ('/../goto', '%2e%2e/goto', 'x/..%2F..%2Fgoto', '..;/goto')
{
	my ($ret, $out, $err) = jobq_psql_as($node, 'alice',
		"SELECT jobq.enqueue('http', " . jsonb({ channel => 'ch', path => $path }) . ')');
	isnt($ret, 0, "path \"$path\" is refused at enqueue");
	like($err, qr/22023: path .* leaves the base path "\/api\/" of channel "ch"/,
		"path \"$path\": 22023, the error names the base path");
}
is(scalar(logged('a')) + scalar(logged('b')), 0, 'no request was sent');

# A redirect to another origin (B): no header of the channel goes along
my $cross = enqueue_as_alice('http',
	{ channel => 'ch', path => "goto?to=http://127.0.0.1:$pb/ok/stolen" });
is(finished($cross, 'a redirect to another origin'),
	'succeeded|', 'the redirect to another origin is followed');
my @a = logged('a');
my @b = logged('b');
is(scalar(@a), 1, 'the channel host got one request');
is(header($a[0], 'X-Api-Key'), $api_key, 'with the secret header');
is(header($a[0], 'Authorization'), "Bearer $bearer", 'and the bearer token');
is(scalar(@b), 1, 'the other origin got one request');
is($b[0]{path}, '/ok/stolen', 'to the redirect target');
is($b[0]{method}, 'GET', 'a 302 after a POST is a GET');
is(header($b[0], 'X-Api-Key'), undef, 'without the secret header');
is(header($b[0], 'Authorization'), undef, 'without the bearer token');
is(header($b[0], 'X-Source'), undef, 'without the config header');
is(header($b[0], 'Idempotency-Key'), header($a[0], 'Idempotency-Key'),
	'with the same Idempotency-Key');

# To the same origin: the headers go along; a 307 keeps the method
my $same = enqueue_as_alice('http',
	{ channel => 'ch', path => 'goto?to=/ok/again&code=307' });
is(finished($same, 'a redirect to the same origin'),
	'succeeded|', 'the redirect to the same origin is followed');
@a = logged('a');
is(scalar(@a), 3, 'the channel host got two more requests');
is($a[2]{path}, '/ok/again', 'the second to the redirect target');
is($a[2]{method}, 'POST', 'a 307 keeps the method');
is(header($a[2], 'X-Api-Key'), $api_key, 'with the secret header');
is(scalar(logged('b')), 1, 'nothing more at the other origin');

# Another port is another origin; another scheme is not followed
my $scheme = enqueue_as_alice('http',
	{ channel => 'ch', path => "goto?to=https://127.0.0.1:$pb/ok/tls" },
	'max_attempts => 3');
is(finished($scheme, 'a redirect to https'),
	'dead|JQC01', 'a redirect to another scheme is dead at once: JQC01');

# Each hop connects only to allowed addresses: ::1 is not the channel's
my $hop = enqueue_as_alice('http',
	{ channel => 'ch', path => "goto?to=http://%5B::1%5D:$pb/ok/v6" },
	'max_attempts => 3');
is(finished($hop, 'a redirect to another loopback address'),
	'dead|42501', 'a hop to an address the channel does not allow is refused: dead, 42501');

# ---------------------------------------------------------------------
# SSRF by address
# ---------------------------------------------------------------------

sql(q{SELECT jobq.grant_http('alice')});
my $evil = enqueue_as_alice('http', { url => "http://evil.localhost:$pa/ok/evil" },
	'max_attempts => 3');
is(finished($evil, 'a name that resolves to a loopback address'),
	'dead|42501', 'a name on the allow-list that resolves to 127.0.0.1 is refused: dead, 42501');
like(last_error($evil), qr/address .* is not public and not allowed explicitly/,
	'the error says why');
is(scalar(grep { $_->{path} eq '/ok/evil' } logged('a')), 0, 'nothing was sent');

my $evil_b = enqueue_as_alice('http', { url => "http://evil.localhost:$pb/ok/evil-b" });
is(finished($evil_b, 'an address allowed explicitly'),
	'succeeded|', 'the address entry 127.0.0.1:port of the allow-list lets the name through');

sql(    "SELECT jobq.create_channel('named', 'http', "
	  . jsonb({ url => "http://evil.localhost:$pa/ok/named", method => 'GET' }) . ')');
sql(q{SELECT jobq.grant_channel('named', 'alice')});
my $named = enqueue_as_alice('http', { channel => 'named' }, 'max_attempts => 3');
is(finished($named, 'a channel named by a loopback name'),
	'dead|42501', 'a channel whose host resolves to 127.0.0.1 is refused: dead, 42501');
is(scalar(grep { $_->{path} eq '/ok/named' } logged('a')), 0, 'nothing was sent');
sql(    "SELECT jobq.alter_channel('named', "
	  . jsonb({
			url => "http://evil.localhost:$pa/ok/named",
			method => 'GET',
			allowed_addresses => ['127.0.0.0/8'] })
	  . ')');
sql("SELECT jobq.retry($named)");
is(finished($named, 'the channel with allowed_addresses'),
	'succeeded|', 'with allowed_addresses 127.0.0.0/8 the channel is served');
is(scalar(grep { $_->{path} eq '/ok/named' } logged('a')), 1, 'one request');

# ---------------------------------------------------------------------
# TLS: https and SMTP with STARTTLS and AUTH
# ---------------------------------------------------------------------

my $tls_config = { url => "https://127.0.0.1:$pt/ok/tls", method => 'GET' };
sql("SELECT jobq.create_channel('tls', 'http', " . jsonb($tls_config) . ')');
my $untrusted = sql(q{SELECT jobq.enqueue('http', '{"channel": "tls"}', max_attempts => 1)});
is(finished($untrusted, 'https without the channel CA'),
	'dead|JQC60', 'a self-signed certificate is refused without ca_cert: JQC60');
like(last_error($untrusted), qr/certificate/i, 'the error names the certificate');
sql(    "SELECT jobq.alter_channel('tls', "
	  . jsonb({ %$tls_config, ca_cert => $ca_pem }) . ')');
sql("SELECT jobq.retry($untrusted)");
is(finished($untrusted, 'https with the channel CA'),
	'succeeded|', 'with the certificate as the channel ca_cert, https succeeds');
is(scalar(logged('tls')), 1, 'the HTTPS server got the request');

my %mail_config = (
	url => "smtp://127.0.0.1:$ps",
	from => 'School <noreply@school.test>',
	starttls => 'required');
my $mail_secrets = { username => 'school', password => 'mail-pw-77' };
sql(    "SELECT jobq.create_channel('mail', 'smtp', "
	  . jsonb({ %mail_config, ca_cert => $ca_pem }) . ', '
	  . secret_jsonb($mail_secrets) . ')');
sql(    "SELECT jobq.create_channel('mail_nocert', 'smtp', "
	  . jsonb(\%mail_config) . ', '
	  . secret_jsonb($mail_secrets) . ')');
sql(    "SELECT jobq.create_channel('mail_badpw', 'smtp', "
	  . jsonb({ %mail_config, ca_cert => $ca_pem }) . ', '
	  . secret_jsonb({ username => 'school', password => 'wrong' }) . ')');
my $mail_payload = { to => 'parent@home.test', subject => 'Absence', text => 'Dear parent' };

my $mail = sql("SELECT jobq.enqueue('email', "
	  . jsonb({ channel => 'mail', %$mail_payload }) . ')');
is(finished($mail, 'mail with STARTTLS and AUTH'), 'succeeded|',
	'mail through STARTTLS and AUTH is delivered');
my $record = -e "$dir/mail/1.json" ? decode_json(slurp_file("$dir/mail/1.json")) : {};
ok($record->{tls}, 'the session had switched to TLS');
is($record->{login}, 'school', 'and authenticated as the channel user');
is_deeply($record->{rcpt_tos}, ['parent@home.test'], 'to the recipient');

my $nocert = sql("SELECT jobq.enqueue('email', "
	  . jsonb({ channel => 'mail_nocert', %$mail_payload }) . ', max_attempts => 1)');
is(finished($nocert, 'STARTTLS without the channel CA'),
	'dead|JQC60', 'STARTTLS refuses the certificate without ca_cert: JQC60');
my $badpw = sql("SELECT jobq.enqueue('email', "
	  . jsonb({ channel => 'mail_badpw', %$mail_payload }) . ', max_attempts => 3)');
is(finished($badpw, 'a wrong password'),
	'dead|JQ535', 'a wrong password is refused with 535, dead at once');
ok(!-e "$dir/mail/2.json", 'no other mail arrived');

# No secret in the server log, the jobs or the delivery log
my $log = slurp_file($node->logfile);
my $leaks = sql(q{SELECT count(*) FROM jobq.deliveries d JOIN jobq.jobs j ON j.id = d.job_id
 WHERE concat(d.error, d.response, d.url, j.last_error, j.payload::text) ~ 'SECRET|mail-pw'});
is($leaks, 0, 'no secret in jobq.jobs or jobq.deliveries');
unlike($log, qr/SECRET|mail-pw-77/, 'no secret in the server log');

$node->stop;
done_testing();
