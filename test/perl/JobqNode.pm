# JobqNode: what the TAP tests share.  jobq_node() starts a node that
# preloads jobq with room for ten workers; the test's own settings come
# after the common ones in postgresql.conf, so they win.
# jobq_wait_finished() waits for a job to finish.  jobq_run_now() makes
# pending jobs due now.  jobq_wait_restarted() waits for the server to be
# back after a crash.  jobq_flush_wal() makes
# what has committed durable.  jobq_psql_as() and jobq_safe_as() run SQL as
# another role.  jobq_skip_without_pg_cron() skips a test that needs
# pg_cron where it is not installed; jobq_pg_cron_missing() says why a test
# must skip its parts that need pg_cron, or returns nothing.
# jobq_start_server() starts a test server of test/net/ on loopback;
# jobq_stop_servers() stops them.

package JobqNode;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

use Test::More;

our @EXPORT =
  qw(jobq_node jobq_wait_finished jobq_run_now jobq_wait_restarted jobq_flush_wal jobq_psql_as jobq_safe_as
  jobq_skip_without_pg_cron jobq_pg_cron_missing jobq_start_server
  jobq_stop_servers);

# jobq_skip_without_pg_cron(): the whole test is skipped, with the reason,
# when pg_cron is not installed for the PostgreSQL under test.  pg_cron is a
# package of its own, installed for PostgreSQL 15 only here (Debian does not
# serve its sources for 18).
sub jobq_skip_without_pg_cron
{
	my $sharedir = `pg_config --sharedir`;
	my $pg_version = `pg_config --version`;
	chomp($sharedir, $pg_version);
	plan skip_all => "pg_cron is not installed for $pg_version: "
	  . "no $sharedir/extension/pg_cron.control (Debian does not serve pg_cron's sources for it)"
	  unless -f "$sharedir/extension/pg_cron.control";
	return;
}

# jobq_pg_cron_missing(): why pg_cron cannot be used with the PostgreSQL
# under test (for the skip of a test's parts that need it), or undef when
# it is installed.
sub jobq_pg_cron_missing
{
	my $sharedir = `pg_config --sharedir`;
	my $pg_version = `pg_config --version`;
	chomp($sharedir, $pg_version);
	return undef if -f "$sharedir/extension/pg_cron.control";
	return "pg_cron is not installed for $pg_version: "
	  . "no $sharedir/extension/pg_cron.control (Debian does not serve pg_cron's sources for it)";
}

# jobq_node($name, $settings, %init_options): a started node.
sub jobq_node
{
	my ($name, $settings, %init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%init);
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'jobq'
max_worker_processes = 20
jobq.max_workers = 10
log_min_messages = info
$settings
});
	$node->start;
	return $node;
}

# jobq_wait_finished($node, $id, $what): one passing test once the job has
# finished (succeeded, dead or cancelled), a failing one if it does not.
sub jobq_wait_finished
{
	my ($node, $id, $what) = @_;
	ok( $node->poll_query_until(
			'postgres', qq{
SELECT status NOT IN ('pending', 'running') FROM jobq.jobs WHERE id = $id}),
		"$what: the job has finished");
	return;
}

# jobq_run_now($node, $db, $where): the pending jobs of database $db that
# match $where (an SQL condition on jobq.jobs) run now, through the API:
# cancelled and retried in one transaction, whose commit wakes a worker.
# An UPDATE of run_at in jobq._queue wakes nothing: a database whose
# workers have left (jobq.worker_idle_timeout) would not see those jobs
# before the run time it last reported.
sub jobq_run_now
{
	my ($node, $db, $where) = @_;
	$node->safe_psql(
		$db, qq{
BEGIN;
CREATE TEMP TABLE run_now ON COMMIT DROP AS
	SELECT id FROM jobq.jobs WHERE status = 'pending' AND ($where);
SELECT count(jobq.cancel(id)) FROM run_now;
SELECT count(jobq.retry(id)) FROM run_now;
COMMIT;
});
	return;
}

# jobq_wait_restarted($node, $offset): after a process of $node was
# killed (the log was $offset bytes long before), wait until the postmaster
# has restarted everything and the server accepts connections again.  In
# between, a connection is refused ("the database system is in recovery
# mode") and psql exits before it reads its input, which IPC::Run reports
# by dying ("ack Broken pipe"): here each try is in an eval.
sub jobq_wait_restarted
{
	my ($node, $offset) = @_;
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $offset);
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		my $ret = eval { $node->psql('postgres', 'SELECT 1') };
		return if defined $ret && $ret == 0;
		select(undef, undef, undef, 0.1);
	}
	die 'the server did not accept connections after the crash';
}

# jobq_flush_wal($node): flush the WAL of every transaction committed so
# far, such as the claims a worker commits without waiting for the flush.
# A later commit does not do it when its transaction wrote no WAL before its
# commit record (SELECT txid_current() is such a commit: asynchronous), so
# this asks for a checkpoint, whose record is always flushed.
sub jobq_flush_wal
{
	my ($node) = @_;
	$node->safe_psql('postgres', 'CHECKPOINT');
	return;
}

# jobq_psql_as($node, $user, $sql, $db): run $sql in database $db (default
# postgres) as $user (undef: the superuser), errors verbose; returns (exit
# code, stdout, stderr).
sub jobq_psql_as
{
	my ($node, $user, $sql, $db) = @_;
	my ($out, $err);
	$db //= 'postgres';
	my $connstr = $node->connstr($db);
	$connstr .= " user=$user" if defined $user;
	my $ret = $node->psql(
		$db, "\\set VERBOSITY verbose\n$sql",
		connstr => $connstr,
		stdout => \$out,
		stderr => \$err);
	return ($ret, $out, $err);
}

# jobq_safe_as($node, $user, $sql, $db): the output of $sql run as $user;
# one test that passes when it ran without error.
sub jobq_safe_as
{
	my ($node, $user, $sql, $db) = @_;
	my ($ret, $out, $err) = jobq_psql_as($node, $user, $sql, $db);
	(my $what = $sql) =~ s/\s+/ /g;
	$what =~ s/^ | $//g;
	is($ret, 0,
		($user // 'the superuser') . ' can run' . (defined $db ? " in $db" : '') . ": $what")
	  or diag($err);
	return $out;
}

# The servers jobq_start_server started and jobq_stop_servers did not stop.
my @servers;

# jobq_start_server($dir, $name, $script, @args): runs the server script
# (test/net/http_server.py, smtp_sink.py) with python3, its output in
# $dir/$name.out and .err; waits up to 15 s for the port it writes to
# $dir/$name.port and returns it.  aiosmtpd is Debian's python3-aiosmtpd,
# so the system's interpreter is taken (JOBQ_TEST_PYTHON overrides it).
sub jobq_start_server
{
	my ($dir, $name, @cmd) = @_;
	my $python = $ENV{JOBQ_TEST_PYTHON}
	  // (-x '/usr/bin/python3' ? '/usr/bin/python3' : 'python3');
	my $port_file = "$dir/$name.port";
	push @servers,
	  IPC::Run::start([ $python, @cmd, '--port-file', $port_file ],
		'>', "$dir/$name.out", '2>', "$dir/$name.err");
	for (1 .. 150)
	{
		last if -s $port_file;
		usleep(100_000);
	}
	die "$name did not start: " . slurp_file("$dir/$name.err")
	  unless -s $port_file;
	chomp(my $port = slurp_file($port_file));
	return $port;
}

# jobq_stop_servers(): stops every server jobq_start_server started; the
# test's end does it for those still running.
sub jobq_stop_servers
{
	$_->kill_kill for @servers;
	@servers = ();
	return;
}

END
{
	local $?;
	jobq_stop_servers();
}

1;
