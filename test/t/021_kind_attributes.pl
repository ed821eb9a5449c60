# 021_kind_attributes.pl: what a kind does is decided by its attributes in
# jobq._kinds, which only an install script can set for a built-in kind,
# never by its name.  The SQL kind is the built-in kind with no handler that
# is not a network kind; "restricted" (false for matview.refresh alone)
# decides whether a job runs as a security-restricted operation;
# "keep_response" (http alone) whether a network job's response body is its
# result.  jobq.register_kind can set neither, even for a superuser, and a
# CHECK keeps a kind that is not built-in restricted.  A superuser changing
# the rows stands here for an install script (a pack's, say).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Path qw(rmtree);

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $dir = abs_path($PostgreSQL::Test::Utils::tmp_check) . '/kinds';
rmtree($dir);
mkdir $dir or die "cannot create $dir: $!";

# the recording HTTP server of 011_net.pl
my $hp = jobq_start_server($dir, 'http', "$FindBin::RealBin/../net/http_server.py",
	'--log', "$dir/http.log", '--stats', "$dir/http.stats");

my $node = jobq_node(
	'kinds', q{
jobq.workers = 1
jobq.poll_interval = '1s'
jobq.http_allowed_hosts = '127.0.0.1'
jobq.webhook_signing_key = 'whsec-test'
});

sub sql
{
	return $node->safe_psql('postgres', $_[0]);
}

# Enqueue as $role (undef: the superuser), one attempt, and wait;
# "status|result or error".
sub run_job
{
	my ($role, $kind, $payload) = @_;
	my $set = defined $role ? "SET ROLE $role; " : '';
	my $id = sql(
		"${set}SELECT jobq.enqueue('$kind', '$payload', max_attempts => 1)");
	jobq_wait_finished($node, $id, "a job of kind $kind");
	return sql(
		"SELECT status || '|' || coalesce(result::text, last_error) FROM jobq.jobs WHERE id = $id");
}

sql(q{
CREATE EXTENSION jobq;
CREATE ROLE app;
GRANT CREATE ON SCHEMA public TO app;
SET ROLE app;
CREATE TABLE ran (what text);
CREATE MATERIALIZED VIEW mv AS SELECT g AS id FROM generate_series(1, 3) g;
CREATE UNIQUE INDEX mv_id ON mv (id);
CREATE FUNCTION make_temp(payload jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
	CREATE TEMP TABLE scratch (x int);
	RETURN '{"temp": true}';
END $$;
});

# ---------------------------------------------------------------------
# The attributes as installed
# ---------------------------------------------------------------------

is( sql(q{SELECT kind, restricted, keep_response FROM jobq.kinds
		   WHERE NOT restricted OR keep_response ORDER BY kind}),
	"http|t|t\nmatview.refresh|f|f",
	'only matview.refresh is unrestricted, only http keeps its response');

# ---------------------------------------------------------------------
# jobq.register_kind cannot make a kind unrestricted
# ---------------------------------------------------------------------

sql(q{SELECT jobq.register_kind('app.temp', 'public.make_temp(jsonb)')});
is(sql(q{SELECT restricted FROM jobq.kinds WHERE kind = 'app.temp'}),
	't', 'a kind registered by a superuser through the API is restricted');
my ($ret, $out, $err) = $node->psql('postgres',
	q{UPDATE jobq._kinds SET restricted = false WHERE kind = 'app.temp'});
like($err, qr/_kinds_restricted_check/,
	'not even a superuser can make a registered kind unrestricted');
($ret, $out, $err) = $node->psql('postgres',
	q{UPDATE jobq._kinds SET keep_response = true WHERE kind = 'app.temp'});
like($err, qr/_kinds_keep_response_check/,
	'nor make it keep a response');

# ---------------------------------------------------------------------
# matview.refresh CONCURRENTLY, unrestricted
# ---------------------------------------------------------------------

like(
	run_job('app', 'matview.refresh', '{"view": "public.mv"}'),
	qr/^succeeded\|.*"concurrently": true/,
	'matview.refresh refreshes concurrently');

# ---------------------------------------------------------------------
# The attributes decide, not the names
# ---------------------------------------------------------------------

# What an install script could do: a built-in kind with no handler (an SQL
# kind by another name), an unrestricted built-in kind with a handler,
# matview.refresh restricted, the response kept by webhook and not by http.
sql(q{
INSERT INTO jobq._kinds (kind, builtin) VALUES ('test.sql', true);
INSERT INTO jobq._kinds (kind, builtin, handler, restricted)
	VALUES ('test.temp', true, 'public.make_temp(pg_catalog.jsonb)', false);
UPDATE jobq._kinds SET restricted = true WHERE kind = 'matview.refresh';
UPDATE jobq._kinds SET keep_response = false WHERE kind = 'http';
UPDATE jobq._kinds SET keep_response = true WHERE kind = 'webhook';
});
$node->restart;	# the workers read the kinds afresh

($ret, $out, $err) = $node->psql('postgres',
	q{SET ROLE app; SELECT jobq.enqueue('test.sql', '{"sql": ""}')});
like(
	$err,
	qr/payload of a job of kind "test.sql" must have a non-empty string member "sql"/,
	'the payload of a built-in kind without a handler is checked as SQL at enqueue');
is( run_job('app', 'test.sql', q{{"sql": "INSERT INTO public.ran VALUES (''test.sql'')"}}),
	'succeeded|{"rows": 1}',
	'and its job runs the SQL of its payload');
is(sql('SELECT what FROM ran'), 'test.sql', 'as its owner');

is( run_job('app', 'test.temp', '{}'),
	'succeeded|{"temp": true}',
	'an unrestricted built-in kind may create a temporary table');
like(
	run_job('app', 'app.temp', '{}'),
	qr/^dead\|cannot create temporary table within security-restricted operation/,
	'a registered kind with the same handler may not');
like(
	run_job('app', 'matview.refresh', '{"view": "public.mv"}'),
	qr/^dead\|cannot create temporary table within security-restricted operation/,
	'matview.refresh made restricted cannot refresh concurrently: its name does not matter');

is( run_job(undef, 'http', qq{{"url": "http://127.0.0.1:$hp/ok"}}),
	'succeeded|{"status": 200}',
	'http without keep_response keeps only the status');
is( run_job(undef, 'webhook',
		qq{{"url": "http://127.0.0.1:$hp/ok", "event": "e", "data": {}}}),
	'succeeded|{"body": "{\"ok\":true}", "status": 200}',
	'webhook with keep_response keeps the body');

done_testing();
