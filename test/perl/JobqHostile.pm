# JobqHostile: the hostile-input corpus of test/t/019_hostile.pl.
#
# hostile_cases() returns the cases, each a hash:
#   grp       the group it is reported in (a function, or a kind's payload)
#   role      the role that makes the call (undef: the superuser)
#   mode      'call': the SQL is one statement, run and rolled back;
#             'job': the SQL is a jsonb expression, the payload of a job of
#             kind "kind" that a worker runs (the kinds checked only then)
#   sql       the statement, or the payload expression; printable ASCII
#             only (control characters and other letters as E'' escapes)
#   expected  the SQLSTATE it must end with, '00000' for success
#   tag       '' (today's behaviour, checked by hand), 'lead' (decided by
#             the lead for issue 14) or 'proposed' (what today's behaviour
#             should be, for the lead to confirm)
#   pg_cron   1 for the cases of a group that calls pg_cron (schedule,
#             unschedule, schedule_timetable): the test skips those groups
#             where pg_cron is not installed
#
# The fixtures the cases name (roles app, other and nobody, kinds mine,
# theirs and privk, channels hook, mail and secret, schedules mysched and
# theirsched, the jobs :pending, :cancelled and :theirs) are made by the test.

package JobqHostile;

use strict;
use warnings;

use Exporter 'import';

our @EXPORT = qw(hostile_cases sql_literal);

use constant {
	OK => '00000',
	INV => '22023',        # invalid_parameter_value
	NULLV => '22004',      # null_value_not_allowed
	NOOBJ => '42704',      # undefined_object
	PRIV => '42501',       # insufficient_privilege
	SYNTAX => '42601',     # syntax_error
	TEXTREP => '22P02',    # invalid_text_representation
	RANGE => '22003',      # numeric_value_out_of_range
	ARRSUB => '2202E',     # array_subscript_error
	NOFUNC => '42883',     # undefined_function
	BIG => '54000',        # program_limit_exceeded
};

my @cases;
my $grp;
my $role;

# the groups whose calls go to pg_cron
my %cron_groups = map { $_ => 1 } ('schedule', 'unschedule', 'schedule_timetable');

sub add
{
	my ($sql, $expected, $tag) = @_;
	push @cases,
	  {
		grp => $grp,
		role => $role,
		mode => 'call',
		sql => $sql,
		expected => $expected,
		tag => $tag // '',
		pg_cron => $cron_groups{$grp} ? 1 : 0
	  };
	return;
}

sub add_job
{
	my ($kind, $payload, $expected, $tag) = @_;
	push @cases,
	  {
		grp => $grp,
		role => $role,
		mode => 'job',
		kind => $kind,
		sql => $payload,
		expected => $expected,
		tag => $tag // '',
		pg_cron => $cron_groups{$grp} ? 1 : 0
	  };
	return;
}

# An SQL literal of a Perl string, printable ASCII only; undef is NULL.
sub sql_literal
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	my $o = '';
	for my $c (split //, $s)
	{
		my $n = ord $c;
		if    ($c eq "'")               { $o .= "\\'" }
		elsif ($c eq "\\")              { $o .= "\\\\" }
		elsif ($n < 0x20 || $n == 0x7f) { $o .= sprintf '\\x%02X', $n }
		elsif ($n > 0xffff)             { $o .= sprintf '\\U%08X', $n }
		elsif ($n > 0x7e)               { $o .= sprintf '\\u%04X', $n }
		else                            { $o .= $c }
	}
	return "E'$o'";
}
*L = \&sql_literal;

# a jsonb string of a Perl string
sub J { return 'to_jsonb(' . L($_[0]) . '::text)' }

# ---------------------------------------------------------------------
# Value pools
# ---------------------------------------------------------------------

my @controls = (1 .. 31, 127);
my $uni = "\x{416}\x{540d}\x{1F600}";

# Names (queues, kinds, channels, schedules): [label, value, class];
# classes: ok, empty, long (over 63 bytes), ctl (a control character).
sub names
{
	my ($maxok) = @_;
	$maxok //= 63;
	my @n = (
		[ 'plain', 'q1', 'ok' ],
		[ 'empty', '', 'empty' ],
		[ 'space', ' ', 'ok' ],
		[ 'quote', "a'b", 'ok' ],
		[ 'dquote', 'a"b', 'ok' ],
		[ 'semicolon', "x'); DROP TABLE jobq._queue; --", 'ok' ],
		[ 'backslash', 'a\\b', 'ok' ],
		[ 'percent', '%s %I %L', 'ok' ],
		[ 'dollar', '$$x$$', 'ok' ],
		[ 'unicode', $uni, 'ok' ],
		[ 'rtl', "a\x{202E}b", 'ok' ],
		[ 'nbsp', "a\x{a0}b", 'ok' ],
		[ 'max_ascii', 'n' x $maxok, 'ok' ],
		[ 'over_ascii', 'n' x ($maxok + 1), 'long' ],
		[ 'over_bytes', "\x{e9}" x int(($maxok + 2) / 2), 'long' ],
		[ 'emoji_ok', "\x{1F600}" x int($maxok / 4), 'ok' ],
		[ 'huge', 'h' x 100000, 'long' ]);
	push @n, [ sprintf('ctl_%02x', $_), 'a' . chr($_) . 'b', 'ctl' ] for @controls;
	return @n;
}

# JSON values: [label, jsonb expression, class].
my $deep_arr = q{(repeat('[', 3000) || repeat(']', 3000))::jsonb};
my $deep_obj = q{(repeat('{"a":', 3000) || '1' || repeat('}', 3000))::jsonb};
my @jvals = (
	[ 'null', q{'null'::jsonb}, 'null' ],
	[ 'true', q{'true'::jsonb}, 'bool' ],
	[ 'false', q{'false'::jsonb}, 'bool' ],
	[ 'zero', q{'0'::jsonb}, 'num' ],
	[ 'minus_one', q{'-1'::jsonb}, 'num' ],
	[ 'int_max', q{'2147483647'::jsonb}, 'num' ],
	[ 'int_over', q{'2147483648'::jsonb}, 'num' ],
	[ 'e308', q{'1e308'::jsonb}, 'num' ],
	[ 'neg_e308', q{'-1e308'::jsonb}, 'num' ],
	[ 'frac', q{'1.5'::jsonb}, 'num' ],
	[ 'tiny', q{'1e-300'::jsonb}, 'num' ],
	[ 'empty', J(''), 'empty' ],
	[ 'space', J(' '), 'str' ],
	[ 'word', J('x'), 'str' ],
	[ 'newline', J("a\nb"), 'nl' ],
	[ 'cr', J("a\rb"), 'nl' ],
	[ 'ctl_01', J("a\x01b"), 'ctl' ],
	[ 'ctl_7f', J("a\x7fb"), 'ctl' ],
	[ 'tab', J("a\tb"), 'ctl' ],
	[ 'quote', J("'; DROP TABLE jobq._queue; --"), 'str' ],
	[ 'dquote', J('"\\'), 'str' ],
	[ 'unicode', J($uni), 'str' ],
	[ 'big', q{to_jsonb(repeat('x', 100000))}, 'str' ],
	[ 'arr', q{'[]'::jsonb}, 'arr' ],
	[ 'arr_str', q{'["a"]'::jsonb}, 'arr' ],
	[ 'obj', q{'{}'::jsonb}, 'obj' ],
	[ 'obj_str', q{'{"a": "b"}'::jsonb}, 'obj' ],
	[ 'deep_arr', $deep_arr, 'deep' ],
	[ 'deep_obj', $deep_obj, 'deep' ]);

# A payload larger than the default jobq.max_payload_size (1MB), made of
# text that compresses badly.
my $over_1mb = q{to_jsonb((SELECT string_agg(md5(i::text), '') FROM generate_series(1, 70000) i))};

# Whole payloads that are not objects.
my @shapes = (
	[ 'sql_null', 'NULL' ],
	[ 'json_null', q{'null'::jsonb} ],
	[ 'array', q{'[]'::jsonb} ],
	[ 'string', q{'"x"'::jsonb} ],
	[ 'number', q{'1'::jsonb} ],
	[ 'bool', q{'true'::jsonb} ],
	[ 'empty_obj', q{'{}'::jsonb} ],
	[ 'deep_arr', $deep_arr ]);

# payload expression: a base payload with member set to a value
sub with_member
{
	my ($base, $member, $value) = @_;
	return "jsonb_set('$base'::jsonb, " . L("{$member}") . ", $value, true)";
}

# The cases of one member of a payload: each value of @jvals in turn, the
# expected SQLSTATE (and tag) given by $rule->(class, label).
sub member_cases
{
	my ($base, $member, $rule) = @_;
	my @p;
	for my $v (@jvals)
	{
		my ($label, $expr, $class) = @$v;
		my ($exp, $tag) = $rule->($class, $label);
		push @p, [ "$member=$label", with_member($base, $member, $expr), $exp, $tag // '' ];
	}
	return @p;
}

# ---------------------------------------------------------------------
# Functions' arguments
# ---------------------------------------------------------------------

# The common arguments of enqueue and enqueue_many: [label, named arg, expected, tag]
sub common_args
{
	my @a;
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		my ($exp, $tag) =
			$class eq 'ok'    ? (OK, '')
		  : $class eq 'empty' ? (INV, '')
		  : $class eq 'long'  ? (INV, '')
		  :                     (INV, 'lead');
		push @a, [ "queue $label", 'queue => ' . L($v), $exp, $tag ];
	}
	push @a, [ 'queue null', 'queue => NULL', OK, '' ];
	for my $p (qw(0 1 -1 2147483647 -2147483648))
	{
		push @a, [ "priority $p", "priority => $p", OK, '' ];
	}
	push @a, [ 'priority null', 'priority => NULL', OK, '' ];
	push @a, [ 'priority bigint', 'priority => 2147483648', NOFUNC, '' ];
	for my $m (qw(1 2147483647))
	{
		push @a, [ "max_attempts $m", "max_attempts => $m", OK, '' ];
	}
	for my $m (qw(0 -1 -2147483648))
	{
		push @a, [ "max_attempts $m", "max_attempts => $m", INV, '' ];
	}
	my @run_at = (
		[ 'now', 'now()', OK, '' ],
		[ 'null', 'NULL', OK, '' ],
		[ 'past', q{'2000-01-01 00:00:00+00'}, OK, '' ],
		[ 'epoch', q{'1970-01-01 00:00:00+00'}, OK, '' ],
		[ 'before_epoch', q{'1969-12-31 23:59:59+00'}, INV, 'lead' ],
		[ 'bc', q{'4713-01-01 00:00:00+00 BC'}, INV, 'lead' ],
		[ 'year_1', q{'0001-01-01 00:00:00+00'}, INV, 'lead' ],
		[ 'last_day', q{'9999-12-31 23:59:59+00'}, OK, '' ],
		[ 'year_10000', q{'10000-01-01 00:00:00+00'}, INV, 'lead' ],
		[ 'far_future', q{'294276-12-31 00:00:00+00'}, INV, 'lead' ],
		[ 'infinity', q{'infinity'}, INV, '' ],
		[ 'minus_infinity', q{'-infinity'}, INV, '' ],
		[ 'zone_text', q{'2030-01-01 12:00 Asia/Kabul'}, OK, '' ],
		[ 'bad_text', q{'yesterday-ish'}, '22007', '' ],
		[ 'out_of_range', q{'2030-13-01'}, '22008', '' ]);
	push @a, [ "run_at $_->[0]", "run_at => $_->[1]", $_->[2], $_->[3] ] for @run_at;
	my @timeout = (
		[ 'null', 'NULL', OK, '' ],
		[ '1ms', q{'1 ms'}, OK, '' ],
		[ 'second', q{'1 s'}, OK, '' ],
		[ 'zero', q{'0'}, INV, '' ],
		[ 'negative', q{'-1 s'}, INV, '' ],
		[ 'half_ms', q{'0.4 ms'}, INV, '' ],
		[ 'int_max_ms', q{'2147483647 ms'}, OK, '' ],
		[ 'over_int_ms', q{'2147483648 ms'}, INV, 'lead' ],
		[ '24_days', q{'24 days'}, OK, '' ],
		[ '25_days', q{'25 days'}, INV, 'lead' ],
		[ 'month', q{'1 mon'}, INV, 'lead' ],
		[ 'million_years', q{'178000000 years'}, INV, 'lead' ],
		[ 'hundred_million_years', q{'100000000 years'}, INV, 'lead' ],
		[ 'minus_million_years', q{'-178000000 years'}, INV, '' ],
		[ 'mixed_negative', q{'1 day -25 hours'}, INV, '' ],
		[ 'mixed_positive', q{'1 mon -29 days'}, OK, '' ],
		[ 'bad_text', q{'soon'}, '22007', '' ]);
	push @a, [ "timeout $_->[0]", "timeout => $_->[1]", $_->[2], $_->[3] ] for @timeout;
	return @a;
}

# job_key values: [label, literal, expected, tag]
sub job_keys
{
	my @k = (
		[ 'plain', L('k1'), OK, '' ],
		[ 'existing', L('fixture'), OK, '' ],
		[ 'empty', L(''), INV, '' ],
		[ 'quote', L("k'); DELETE FROM jobq._queue; --"), OK, '' ],
		[ 'unicode', L($uni), OK, '' ],
		[ 'max', L('k' x 255), OK, '' ],
		[ 'over', L('k' x 256), INV, 'lead' ],
		[ 'over_bytes', L("\x{e9}" x 128), INV, 'lead' ],
		[ 'huge', L('k' x 100000), INV, 'lead' ]);
	push @k, [ sprintf('ctl_%02x', $_), L('k' . chr($_)), INV, 'lead' ] for @controls;
	return @k;
}

# ---------------------------------------------------------------------
# Payloads of each kind: [label, payload expression, expected, tag]
# ---------------------------------------------------------------------

sub payload_cases
{
	my ($kind) = @_;
	my @p;
	my $m = sub { push @p, member_cases(@_) };
	my $s = sub { push @p, [ $_[0], $_[1], $_[2], $_[3] // '' ] };
	my $text_rule = sub {
		my ($required, $one_line, $string_rule) = @_;
		return sub {
			my ($class, $label) = @_;
			return $required ? INV : OK if $class eq 'null';
			return INV if $class =~ /^(bool|num|arr|obj|deep)$/;
			return INV if $one_line && $class eq 'nl';
			return $string_rule ? $string_rule->($class, $label) : OK;
		};
	};

	if ($kind eq 'sql')
	{
		my $b = '{"sql": "SELECT 1"}';
		$s->("shape $_->[0]", $_->[1], INV) for @shapes;
		$m->($b, 'sql', $text_rule->(1, 0, sub { $_[0] eq 'empty' ? INV : $_[1] eq 'space' ? OK : SYNTAX }));
		$m->($b, 'other', sub { OK });
		$s->('sql key upper', q{'{"SQL": "SELECT 1"}'}, INV);
		for my $q (
			[ 'two statements', 'SELECT 1; SELECT 2', OK ],
			[ 'commit', 'COMMIT', OK ],
			[ 'string with controls', "SELECT 'a\x01\x1f\x7fb'", OK ],
			[ 'unicode', "SELECT '$uni'", OK ],
			[ 'dollar quote', 'SELECT $q$;$q$', OK ],
			[ 'unterminated comment', 'SELECT 1 /*', SYNTAX ],
			[ 'unterminated string', "SELECT 'x", SYNTAX ],
			[ 'only semicolons', ';;;', OK ],
			[ 'only comment', '-- nothing', OK ],
			[ 'nul escape', "SELECT E'\\\\x00'", OK ],
			[ 'long chain', 'SELECT ' . ('1+' x 20000) . '1', OK ],
			[ 'deep parentheses', 'SELECT ' . ('(' x 5000) . '1' . (')' x 5000), OK ])
		{
			$s->("sql $q->[0]", 'jsonb_build_object(' . L('sql') . ', ' . L($q->[1]) . ')', $q->[2]);
		}
		$s->('sql big comment', q{jsonb_build_object('sql', 'SELECT 1 -- ' || repeat('x', 100000))}, OK);
		$s->('sql over 1MB', q{jsonb_build_object('sql', 'SELECT 1 -- ' || (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 70000) i))}, BIG, 'lead');
		$s->('extra over 1MB', "jsonb_build_object('sql', 'SELECT 1', 'pad', $over_1mb)", BIG, 'lead');
		return @p;
	}
	if ($kind eq 'http')
	{
		my $b = '{"url": "http://127.0.0.1:9/x"}';
		my $c = '{"channel": "hook"}';
		$s->("shape $_->[0]", $_->[1], INV) for @shapes;
		$m->($b, 'url', $text_rule->(1, 1, sub { INV }));
		for my $u (
			[ 'ftp', 'ftp://127.0.0.1/x', INV ],
			[ 'file', 'file:///etc/passwd', INV ],
			[ 'upper scheme', 'HTTP://127.0.0.1:9/x', OK ],
			[ 'other host', 'http://example.com/', PRIV ],
			[ 'suffix host', 'http://127.0.0.1.example.com/', PRIV ],
			[ 'ipv6 loopback', 'http://[::1]:9/', PRIV ],
			[ 'decimal ip', 'http://2130706433/', OK ],
			[ 'no host', 'http:///x', PRIV ],
			[ 'userinfo', 'http://u:p@127.0.0.1:9/', OK ],
			[ 'bad port', 'http://127.0.0.1:99999/', INV ],
			[ 'space', 'http://127.0.0.1:9/a b', INV ],
			[ 'control', "http://127.0.0.1:9/a\x01b", INV ],
			[ 'unicode path', "http://127.0.0.1:9/$uni", OK ],
			[ 'long path', 'http://127.0.0.1:9/' . ('p' x 100000), OK ])
		{
			$s->("url $u->[0]", 'jsonb_build_object(' . L('url') . ', ' . L($u->[1]) . ')', $u->[2]);
		}
		$m->($b, 'method', $text_rule->(1, 1, sub { INV }));
		$s->('method GET', with_member($b, 'method', J('GET')), OK);
		$s->('method huge', with_member($b, 'method', q{to_jsonb(repeat('A', 100000))}), OK);
		$m->($b, 'headers', sub { $_[0] eq 'obj' ? OK : INV });
		$s->('header value number', with_member($b, 'headers', q{'{"X-A": 1}'}), INV);
		$s->('header value crlf', with_member($b, 'headers', 'jsonb_build_object(' . L('X-A') . ', ' . L("v\r\nX-Evil: 1") . ')'), INV, 'lead');
		$s->('header name crlf', with_member($b, 'headers', 'jsonb_build_object(' . L("X-A\r\nX-Evil") . ', ' . L('v') . ')'), INV, 'lead');
		$s->('header value control', with_member($b, 'headers', 'jsonb_build_object(' . L('X-A') . ', ' . L("v\x01") . ')'), INV, 'lead');
		$m->($b, 'body', $text_rule->(1, 0));
		$m->($b, 'json', sub { OK });
		$m->($b, 'form', sub { $_[0] eq 'obj' || $_[1] eq 'deep_obj' ? OK : INV });
		$s->('body and json', q{'{"url": "http://127.0.0.1:9/x", "body": "a", "json": 1}'::jsonb}, INV);
		$s->('json and form', q{'{"url": "http://127.0.0.1:9/x", "form": {}, "json": 1}'::jsonb}, INV);
		# timeout_ms: a JSON number, whole, from 100 to 3600000 (README);
		# anything else, JSON null and numbers in strings too, is refused
		$m->($b, 'timeout_ms', sub { (INV, 'lead') });
		$s->('timeout_ms string number', with_member($b, 'timeout_ms', J('100')), INV, 'lead');
		$s->("timeout_ms $_->[0]", with_member($b, 'timeout_ms', "'$_->[0]'::jsonb"), $_->[1], $_->[2])
		  for ([ '100', OK, '' ], [ '3600000', OK, '' ], [ '1e2', OK, '' ],
			[ '99', INV, 'lead' ], [ '3600001', INV, 'lead' ], [ '100.0', INV, 'proposed' ]);
		# through a channel
		$s->('channel', "'$c'::jsonb", OK);
		$m->($c, 'channel', $text_rule->(1, 1, sub { NOOBJ }));
		$s->('channel not granted', q{'{"channel": "secret"}'::jsonb}, PRIV);
		$s->('channel smtp', q{'{"channel": "mail"}'::jsonb}, '42809');
		$s->('channel and url', q{'{"channel": "hook", "url": "http://127.0.0.1:9/"}'::jsonb}, INV);
		$m->($c, 'path', $text_rule->(0, 1, sub { $_[1] =~ /^(space|tab|quote|ctl_01|ctl_7f)$/ ? INV : OK }));
		return @p;
	}
	if ($kind eq 'webhook')
	{
		my $b = '{"url": "http://127.0.0.1:9/h", "event": "e"}';
		my $c = '{"channel": "hook", "event": "e"}';
		$s->("shape $_->[0]", $_->[1], INV) for @shapes;
		$s->('url', "'$b'::jsonb", OK);
		$s->('channel', "'$c'::jsonb", OK);
		$m->($b, 'url', $text_rule->(1, 1, sub { INV }));
		# the event is also the value of header Jobq-Event: no control
		# characters but the tab (as any header value)
		my $event = $text_rule->(1, 1, sub {
			my ($class, $label) = @_;
			return INV if $class eq 'empty';
			return (INV, 'lead') if $class eq 'ctl' && $label ne 'tab';
			return OK;
		});
		$m->($b, 'event', $event);
		$m->($c, 'event', $event);
		$m->($b, 'data', sub { OK });
		$m->($c, 'channel', $text_rule->(1, 1, sub { NOOBJ }));
		$s->('event over 1MB', with_member($b, 'data', $over_1mb), BIG, 'lead');
		return @p;
	}
	if ($kind eq 'sms')
	{
		my $b = '{"channel": "hook", "to": "+15550100", "message": "m"}';
		$s->("shape $_->[0]", $_->[1], INV) for @shapes;
		$s->('valid', "'$b'::jsonb", OK);
		$m->($b, 'channel', $text_rule->(1, 1, sub { NOOBJ }));
		$m->($b, 'to', $text_rule->(1, 1));
		$m->($b, 'message', $text_rule->(1, 0));
		$s->('smtp channel', with_member($b, 'channel', J('mail')), '42809');
		$s->('message over 1MB', with_member($b, 'message', $over_1mb), BIG, 'lead');
		return @p;
	}
	if ($kind eq 'email')
	{
		my $b = '{"channel": "mail", "to": "a@example.com", "subject": "s", "text": "t"}';
		my $h = '{"channel": "hook", "to": "a@example.com", "subject": "s", "text": "t"}';
		$s->("shape $_->[0]", $_->[1], INV) for @shapes;
		$s->('valid smtp', "'$b'::jsonb", OK);
		$s->('valid http', "'$h'::jsonb", OK);
		$m->($b, 'channel', $text_rule->(1, 1, sub { NOOBJ }));
		my $addr = sub {
			my ($required) = @_;
			return sub {
				my ($class, $label) = @_;
				return $required ? INV : OK if $class eq 'null';
				return INV if $class =~ /^(bool|num|obj|deep|nl|empty)$/;
				return $required ? INV : OK if $label eq 'arr';
				return OK;
			};
		};
		$m->($b, 'to', $addr->(1));
		$m->($b, 'cc', $addr->(0));
		$s->('to named', with_member($b, 'to', J('A <a@example.com>')), OK);
		$s->('to list with number', with_member($b, 'to', q{'["a@example.com", 1]'::jsonb}), INV);
		$s->('to injected', with_member($b, 'to', J("a\@example.com>\r\nBcc: <b\@example.com")), INV);
		$m->($b, 'subject', $text_rule->(1, 1));
		$m->($b, 'text', $text_rule->(1, 0));
		$m->($b, 'html', $text_rule->(0, 0));
		$m->($b, 'reply_to', $text_rule->(0, 1));
		$m->($h, 'subject', $text_rule->(1, 1));
		$s->('text over 1MB', with_member($b, 'text', $over_1mb), BIG, 'lead');
		return @p;
	}
	die "no payload cases for kind $kind";
}

# What PostgreSQL's casts of a JSON value's text (->>) give, by the
# value's label in @jvals: the pack kinds read their members that way.
sub cast_int
{
	my ($class, $label) = @_;
	return OK if $class eq 'null' || $label =~ /^(zero|minus_one|int_max)$/;
	return RANGE if $label =~ /^(int_over|e308|neg_e308)$/;
	return TEXTREP;
}

sub cast_bigint
{
	my ($class, $label) = @_;
	return OK if $class eq 'null' || $label =~ /^(zero|minus_one|int_max|int_over)$/;
	return RANGE if $label =~ /^(e308|neg_e308)$/;
	return TEXTREP;
}

sub cast_bool
{
	my ($class, $label) = @_;
	return OK if $class eq 'null' || $label =~ /^(true|false|zero)$/;
	return TEXTREP;
}

sub cast_date
{
	my ($class, $label) = @_;
	return OK if $class eq 'null';
	return '22008' if $label =~ /^(zero|int_max|int_over)$/;
	return '22007';
}

# to_regclass of the text: a syntax error, or no such table
sub regclass_of
{
	my ($label) = @_;
	return '42602' if $label =~ /^(empty|space|newline|cr|tab|quote|dquote|obj_str|deep_obj)$/;
	return '42P01';
}

# Pack kinds: [label, payload expression, expected, tag]; their payloads are
# read only when the job runs.
sub pack_cases
{
	my ($kind) = @_;
	my @p;
	my $m = sub { push @p, member_cases(@_) };
	my $s = sub { push @p, [ $_[0], $_[1], $_[2], $_[3] // '' ] };
	# a member naming a table: the default when null (or an error when
	# there is none), empty is refused, else whatever to_regclass makes
	# of the text
	my $table = sub {
		my ($default_ok) = @_;
		return sub {
			my ($class, $label) = @_;
			return $default_ok ? OK : INV if $class eq 'null';
			return INV if $class eq 'empty';
			return regclass_of($label);
		};
	};
	# payloads that are not objects read as empty ones
	my %shape = (
		'slots.generate' => OK,
		'reservations.release' => OK,
		'attendance.aggregate' => OK,
		'attendance.thresholds' => INV,
		'matview.refresh' => INV,
		'table.archive' => INV,
		'jobq.prune' => OK);
	$s->("shape $_->[0]", $_->[1], $shape{$kind}) for @shapes;
	if ($kind eq 'slots.generate')
	{
		my $b = '{}';
		$m->($b, $_, $table->(1)) for qw(rules_table exceptions_table slots_table);
		$m->($b, 'timezone', sub { $_[0] eq 'null' || $_[1] =~ /^(zero|minus_one|frac|tiny)$/ ? OK : INV });
		$m->($b, $_, \&cast_date) for qw(start_date end_date);
		$m->($b, $_, \&cast_bigint) for qw(facility_id doctor_id);
		$s->('start infinity', q{'{"start_date": "infinity"}'}, INV, 'lead');
		$s->('end infinity', q{'{"end_date": "infinity"}'}, INV, 'lead');
		$s->('start -infinity', q{'{"start_date": "-infinity", "end_date": "2026-01-01"}'}, INV, 'lead');
		$s->('end before start', q{'{"start_date": "2026-01-02", "end_date": "2026-01-01"}'}, INV);
		$s->('view as table', q{'{"slots_table": "jobq.kinds"}'}, '42809');
		$s->('catalog table', q{'{"slots_table": "pg_class"}'}, '42703');
	}
	elsif ($kind eq 'reservations.release')
	{
		$m->('{}', 'slots_table', $table->(1));
	}
	elsif ($kind eq 'attendance.aggregate')
	{
		$m->('{}', $_, $table->(1)) for qw(attendance_table monthly_table);
		$m->('{}', 'month', \&cast_date);
		$m->('{}', 'campus_id', \&cast_bigint);
	}
	elsif ($kind eq 'attendance.thresholds')
	{
		my $b = '{"notify_kind": "mine"}';
		$s->('valid', "'$b'", OK);
		$m->($b, 'notify_kind', sub { $_[0] eq 'null' ? INV : NOOBJ });
		$m->($b, $_, sub { OK }) for qw(thresholds channel);
		$m->($b, 'urgent_priority', \&cast_int);
		$m->($b, $_, sub { $_[0] eq 'obj' || $_[1] eq 'deep_obj' ? OK : INV }) for qw(messages subjects);
		$m->($b, 'refresh', \&cast_bool);
		$s->('notify sql', q{'{"notify_kind": "sql"}'}, INV);
		$s->('thresholds inverted', q{'{"notify_kind": "mine", "thresholds": {"warning": 10, "mahroom": 90}}'}, INV);
		$s->('thresholds huge', q{'{"notify_kind": "mine", "thresholds": {"warning": 1e308}}'}, INV);
		$s->('thresholds text', q{'{"notify_kind": "mine", "thresholds": {"tasdiq": "x"}}'}, TEXTREP);
		$s->('sms without channel', q{'{"notify_kind": "sms"}'}, INV);
	}
	elsif ($kind eq 'matview.refresh')
	{
		my $b = '{"view": "corpus_mv"}';
		$s->('valid', "'$b'", OK);
		$m->($b, 'view', sub { $_[0] eq 'null' ? INV : regclass_of($_[1]) });
		$m->($b, 'concurrently', \&cast_bool);
		$s->('a table', q{'{"view": "arch_src"}'}, '42809');
	}
	elsif ($kind eq 'table.archive')
	{
		my $b = '{"source": "arch_src", "target": "arch_dst", "timestamp_column": "ts", "older_than": "1 day"}';
		$s->('valid', "'$b'", OK);
		$m->($b, $_, $table->(0)) for qw(source target);
		$m->($b, 'timestamp_column', sub { $_[0] eq 'null' ? INV : '42703' });
		$m->($b, 'older_than', sub {
			my ($class, $label) = @_;
			return INV if $class eq 'null';
			return OK if $label =~ /^(zero|minus_one|int_max|int_over|frac)$/;
			return '22007';
		});
		$m->($b, 'batch_size', sub { $_[1] =~ /^(zero|minus_one)$/ ? INV : cast_int(@_) });
		$s->('same table', q{'{"source": "arch_src", "target": "arch_src", "timestamp_column": "ts", "older_than": "1 day"}'}, INV);
	}
	elsif ($kind eq 'jobq.prune')
	{
		$m->('{}', 'anything', sub { OK });
	}
	$s->('over 1MB', "jsonb_build_object('pad', $over_1mb)", BIG, 'lead');
	for (@p) { $_->[1] = "($_->[1])::jsonb" }
	return @p;
}

# ---------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------

sub hostile_cases
{
	@cases = ();

	# enqueue: each argument, then each kind's payloads
	$role = 'app';
	$grp = 'enqueue args';
	my $sqlp = q{'{"sql": "SELECT 1"}'};
	add('SELECT jobq.enqueue(NULL)', NULLV);
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		add('SELECT jobq.enqueue(' . L($v) . ", $sqlp)", $class eq 'ok' ? (NOOBJ, '') : (INV, 'lead'));
	}
	add("SELECT jobq.enqueue('mine')", OK);
	add("SELECT jobq.enqueue('theirs')", OK);
	add("SELECT jobq.enqueue('privk')", PRIV);
	add("SELECT jobq.enqueue('SQL', $sqlp)", NOOBJ);
	for my $a (common_args())
	{
		add("SELECT jobq.enqueue('sql', $sqlp, $a->[1])", $a->[2], $a->[3]);
	}
	for my $k (job_keys())
	{
		add("SELECT jobq.enqueue('sql', $sqlp, job_key => $k->[1])", $k->[2], $k->[3]);
		# a concurrency key is checked as a job_key is
		add("SELECT jobq.enqueue('sql', $sqlp, concurrency_key => $k->[1])", $k->[2], $k->[3]);
	}
	add("SELECT jobq.enqueue('sql', $sqlp, concurrency_key => NULL)", OK);
	add("SELECT jobq.enqueue('sql', $sqlp, job_key => 'ck', concurrency_key => 'ck', key_mode => 'debounce')", OK);
	# key_mode: three words, with a job_key for the two that change a job
	for my $n (names())
	{
		add("SELECT jobq.enqueue('sql', $sqlp, job_key => 'hk', key_mode => " . L($n->[1]) . ')', INV);
	}
	for my $m ([ 'keep', OK ], [ 'debounce', OK ], [ 'throttle', OK ], [ 'Debounce', INV ],
		[ 'debounce ', INV ], [ "debounce'; --", INV ])
	{
		add("SELECT jobq.enqueue('sql', $sqlp, job_key => 'hk', key_mode => " . L($m->[0]) . ')', $m->[1]);
	}
	add("SELECT jobq.enqueue('sql', $sqlp, job_key => 'hk', key_mode => NULL)", OK);
	add("SELECT jobq.enqueue('sql', $sqlp, key_mode => 'keep')", OK);
	add("SELECT jobq.enqueue('sql', $sqlp, key_mode => 'debounce')", INV);
	add("SELECT jobq.enqueue('sql', $sqlp, key_mode => 'throttle')", INV);
	add("SELECT jobq.enqueue('sql', $sqlp, job_key => NULL, key_mode => 'throttle')", INV);
	add(q{SELECT jobq.enqueue('sql', '{"sql": "SELEC 1"}', job_key => 'hk', key_mode => 'debounce')}, SYNTAX);
	add("SELECT jobq.enqueue('sql', $sqlp, key_mode => 'debounce', job_key => 'hk', run_at => 'infinity')", INV);
	$role = 'nobody';
	add("SELECT jobq.enqueue('sql', $sqlp)", OK);
	add(q{SELECT jobq.enqueue('http', '{"channel": "hook"}')}, PRIV);
	add(q{SELECT jobq.enqueue('http', '{"url": "http://127.0.0.1:9/"}')}, PRIV);
	$role = undef;
	add(q{SELECT jobq.enqueue('http', '{"channel": "secret"}')}, OK);
	add(q{SELECT jobq.enqueue('http', '{"url": "http://example.com/"}')}, PRIV);
	$role = 'app';

	for my $kind (qw(sql http webhook sms email))
	{
		$grp = "payload $kind";
		for my $p (payload_cases($kind))
		{
			add("SELECT jobq.enqueue('$kind', $p->[1])", $p->[2], $p->[3]);
		}
		$grp = "payload $kind (enqueue_many)";
		for my $p (payload_cases($kind))
		{
			next if $p->[1] eq 'NULL';
			add("SELECT count(*) FROM jobq.enqueue_many('$kind', ARRAY[($p->[1])::jsonb])", $p->[2], $p->[3]);
		}
	}

	# enqueue_many
	$grp = 'enqueue_many args';
	my $arr = q{ARRAY['{"sql": "SELECT 1"}', '{"sql": "SELECT 2"}']::jsonb[]};
	add("SELECT count(*) FROM jobq.enqueue_many(NULL, $arr)", NULLV);
	add("SELECT count(*) FROM jobq.enqueue_many('nope', $arr)", NOOBJ);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', NULL)", NULLV);
	add(q{SELECT count(*) FROM jobq.enqueue_many('sql', '{}')}, OK);
	add(q{SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY[NULL]::jsonb[])}, NULLV);
	add(q{SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}', NULL]::jsonb[])}, NULLV);
	add(q{SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY[['{"sql": "SELECT 1"}'], ['{"sql": "SELECT 1"}']]::jsonb[])}, ARRSUB);
	add(q{SELECT count(*) FROM jobq.enqueue_many('sql', '[5:6]={"{\"sql\": \"SELECT 1\"}","{\"sql\": \"SELECT 2\"}"}'::jsonb[])}, OK);
	add(q{SELECT count(*) FROM jobq.enqueue_many('sql', ARRAY['{"sql": "SELECT 1"}', '{"sql": "SELEC"}']::jsonb[])}, SYNTAX);
	add(q{SELECT count(*) FROM jobq.enqueue_many('sql', (SELECT array_agg(jsonb_build_object('sql', 'SELECT ' || i)) FROM generate_series(1, 5000) i))}, OK);
	add(q{SELECT count(*) FROM jobq.enqueue_many('sql', (SELECT array_agg(jsonb_build_object('sql', 'SELECT 1 -- ' || repeat('x', 10000))) FROM generate_series(1, 200) i))}, OK);
	for my $a (common_args())
	{
		add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, $a->[1])", $a->[2], $a->[3]);
	}
	for my $k (job_keys())
	{
		next if $k->[0] eq 'existing';
		add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, job_keys => ARRAY[$k->[1], NULL])", $k->[2], $k->[3]);
	}
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, job_keys => ARRAY['a'])", ARRSUB);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, job_keys => ARRAY['a', 'b', 'c'])", ARRSUB);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, job_keys => '{}')", ARRSUB);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, job_keys => ARRAY[NULL, NULL]::text[])", OK);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, job_keys => ARRAY['same', 'same'])", OK);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, job_keys => ARRAY[['a'], ['b']])", ARRSUB);
	for my $k (job_keys())
	{
		next if $k->[0] eq 'existing';
		add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, concurrency_keys => ARRAY[$k->[1], NULL])", $k->[2], $k->[3]);
	}
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, concurrency_keys => ARRAY['a'])", ARRSUB);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, concurrency_keys => '{}')", ARRSUB);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, concurrency_keys => ARRAY[['a'], ['b']])", ARRSUB);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, concurrency_keys => ARRAY[NULL, NULL]::text[])", OK);
	add("SELECT count(*) FROM jobq.enqueue_many('sql', $arr, job_keys => ARRAY['x', 'y'], concurrency_keys => ARRAY['same', 'same'])", OK);

	# cancel and retry
	for my $f (qw(cancel retry))
	{
		$grp = $f;
		for my $id (qw(0 -1 -9223372036854775808 9223372036854775807 :theirs))
		{
			add("SELECT jobq.$f($id)", NOOBJ);
		}
		add("SELECT jobq.$f(NULL)", OK);
		add("SELECT jobq.$f('abc')", TEXTREP);
		add("SELECT jobq.$f(1e30)", NOFUNC);
		add("SELECT jobq.$f(:pending)", $f eq 'cancel' ? OK : '55000');
		add("SELECT jobq.$f(:cancelled)", OK);
		$role = 'nobody';
		add("SELECT jobq.$f(:pending)", NOOBJ);
		$role = undef;
		add("SELECT jobq.$f(:theirs)", $f eq 'cancel' ? OK : '55000');
		$role = 'app';
	}

	# retry_jobs, cancel_jobs, purge_jobs: any name filters (and matches
	# nothing); a malformed SQLSTATE, an empty time range or a status that
	# is not finished is refused
	for my $f (qw(retry_jobs cancel_jobs purge_jobs))
	{
		$grp = $f;
		add("SELECT jobq.$f()", OK);
		add("SELECT jobq.$f(NULL, NULL, NULL, NULL, NULL, NULL)", OK);
		for my $n (names())
		{
			add("SELECT jobq.$f(queue => " . L($n->[1]) . ')', OK);
			add("SELECT jobq.$f(kind => " . L($n->[1]) . ')', OK);
		}
		for my $st (
			[ '22012', OK ], [ '57P01', OK ], [ '2201', INV ], [ '220123', INV ],
			[ '', INV ], [ 'abcde', INV ], [ "2201'", INV ], [ "2201\x{416}", INV ],
			[ "22 12", INV ], [ "2201\n", INV ])
		{
			add("SELECT jobq.$f(sqlstate => " . L($st->[0]) . ')', $st->[1]);
		}
		add("SELECT jobq.$f(owner => 'nobody')", OK);
		add("SELECT jobq.$f(owner => 'no_such_role')", NOOBJ);
		for my $t (
			[ q{since => '-infinity'}, OK ],
			[ q{since => 'infinity'}, INV ],
			[ q{until => '-infinity'}, INV ],
			[ q{until => 'infinity'}, OK ],
			[ q{since => '2026-01-02', until => '2026-01-01'}, INV ],
			[ q{since => '2026-01-01', until => '2026-01-01'}, INV ],
			[ q{since => '2026-01-01', until => '2026-01-01 00:00:00.000001'}, OK ],
			[ q{since => '4714-11-24 BC', until => '294276-12-31'}, OK ],
			[ q{since => 'yesterday'}, OK ],
			[ q{since => 'abc'}, '22007' ])
		{
			add("SELECT jobq.$f($t->[0])", $t->[1]);
		}
		$role = 'nobody';
		add("SELECT jobq.$f()", OK);
		$role = 'app';
	}
	$grp = 'purge_jobs';
	for my $st ([ 'succeeded', OK ], [ 'dead', OK ], [ 'cancelled', OK ], [ 'pending', INV ],
		[ 'running', INV ], [ 'SUCCEEDED', INV ], [ '', INV ], [ "dead'; --", INV ])
	{
		add('SELECT jobq.purge_jobs(status => ' . L($st->[0]) . ')', $st->[1]);
	}

	# register_kind and unregister_kind
	$grp = 'register_kind';
	my $h = q{'corpus.h(jsonb)'};
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		my ($exp, $tag) =
			$class eq 'ok' ? (OK, '')
		  : $class eq 'ctl' ? (INV, 'lead')
		  :                  (INV, '');
		add('SELECT jobq.register_kind(' . L($v) . ", $h)", $exp, $tag);
		add("SELECT jobq.register_kind('k', $h, queue => " . L($v) . ')', $exp, $tag);
	}
	add("SELECT jobq.register_kind(NULL, $h)", NULLV);
	add("SELECT jobq.register_kind('sql', $h)", INV);
	add("SELECT jobq.register_kind('http', $h)", INV);
	add("SELECT jobq.register_kind('slots.generate', $h)", INV);
	add("SELECT jobq.register_kind('theirs', $h)", PRIV, 'lead');
	add("SELECT jobq.register_kind('mine', $h)", OK);
	add("SELECT jobq.register_kind('k', $h, queue => NULL)", OK);
	add("SELECT jobq.register_kind('k', NULL)", NULLV);
	for my $hv (
		[ q{'corpus.hv(jsonb)'}, OK ],
		[ q{'corpus.bad(integer)'}, '42P13' ],
		[ q{'corpus.private(jsonb)'}, PRIV ],
		[ q{'corpus.proc(jsonb)'}, '42P13' ],
		[ q{'corpus.srf(jsonb)'}, '42P13' ],
		[ q{'corpus.txt(jsonb)'}, '42P13' ],
		[ q{'now()'}, '42P13' ],
		[ q{'jobq.slots_generate(jsonb)'}, OK ],
		[ q{'corpus.nope(jsonb)'}, NOFUNC ],
		[ q{'corpus.h'}, TEXTREP ],
		[ q{'corpus.h(jsonb); DROP TABLE x'}, TEXTREP ],
		[ q{0}, NOFUNC ],
		[ q{'-'}, NOFUNC ],
		[ q{4294967295}, NOFUNC ])
	{
		add("SELECT jobq.register_kind('k', $hv->[0])", $hv->[1]);
	}
	for my $a (common_args())
	{
		next unless $a->[0] =~ /^(priority|max_attempts|timeout) /;
		next if $a->[0] eq 'timeout bad_text' || $a->[0] eq 'priority bigint';
		add("SELECT jobq.register_kind('k', $h, $a->[1])", $a->[2], $a->[3]);
	}
	$role = 'nobody';
	add("SELECT jobq.register_kind('k', $h)", PRIV);
	$role = 'app';

	$grp = 'unregister_kind';
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		my ($exp, $tag) =
			$class eq 'ok' ? (OK, '')
		  : $class eq 'ctl' ? (INV, 'lead')
		  :                  (INV, '');
		add('SELECT jobq.unregister_kind(' . L($v) . ')', $exp, $tag);
	}
	add('SELECT jobq.unregister_kind(NULL)', OK);
	add("SELECT jobq.unregister_kind('mine')", OK);
	add("SELECT jobq.unregister_kind('sql')", INV);
	add("SELECT jobq.unregister_kind('email')", INV);
	add("SELECT jobq.unregister_kind('jobq.prune')", INV);
	add("SELECT jobq.unregister_kind('theirs')", PRIV, 'lead');
	$role = 'nobody';
	add("SELECT jobq.unregister_kind('mine')", PRIV);
	$role = 'app';

	# prune and current_job
	$grp = 'prune, current_job';
	add('SELECT jobq.prune()', OK);
	add('SELECT jobq.current_job()', OK);
	add('SELECT jobq.prune(1)', NOFUNC);
	$role = 'nobody';
	add('SELECT jobq.prune()', PRIV);
	add('SELECT jobq.current_job()', OK);
	$role = undef;
	add('SELECT jobq.prune()', OK);
	$role = 'app';

	# set_progress: outside a job, refused whatever the arguments; inside
	# one (an sql job run by a worker), its arguments are checked
	$grp = 'set_progress';
	for my $a ('', '50', "50, 'half'", 'NULL, NULL', "NULL, repeat('x', 100000)", "-1, 'x'")
	{
		add("SELECT jobq.set_progress($a)", '55000');
	}
	add("SELECT jobq.set_progress('abc')", TEXTREP);
	add("SELECT jobq.set_progress(1e40)", RANGE);
	add('SELECT count(*) FROM jobq._progress()', OK);
	$role = 'nobody';
	add('SELECT jobq.set_progress(1)', '55000');
	add('SELECT count(*) FROM jobq._progress()', OK);
	$role = 'app';
	$grp = 'set_progress (job)';
	for my $j (
		[ '0', OK ], [ '100', OK ], [ '33.3', OK ], [ 'NULL', OK ], [ '-0.001', INV ],
		[ '100.001', INV ], [ q{''NaN''}, INV ], [ q{''Infinity''}, INV ],
		[ q{50, ''''}, OK ], [ q{NULL, ''a message''}, OK ], [ q{50, repeat(''x'', 255)}, OK ],
		[ q{50, repeat(''x'', 256)}, INV ], [ q{50, repeat(''\u00e9'', 128)}, INV ],
		[ q{50, E''a\\nb''}, OK ])
	{
		add_job('sql', qq{'{"sql": "SELECT jobq.set_progress($j->[0])"}'}, $j->[1]);
	}

	# schedules
	$grp = 'schedule';
	for my $n (names(20))
	{
		my ($label, $v, $class) = @$n;
		next if $class eq 'long' && $label ne 'huge';
		my ($exp, $tag) =
			$class eq 'ok' ? (OK, '')
		  : $class eq 'ctl' && $v !~ /[\r\n]/ ? (INV, 'lead')
		  :                  (INV, '');
		add('SELECT jobq.schedule(' . L($v) . ", '0 0 1 1 *', 'sql', $sqlp)", $exp, $tag);
		($exp, $tag) = $class eq 'ok' ? (OK, '') : $class eq 'ctl' ? (INV, 'lead') : (INV, '');
		add("SELECT jobq.schedule('s', '0 0 1 1 *', 'sql', $sqlp, queue => " . L($v) . ')', $exp, $tag);
	}
	add(q{SELECT jobq.schedule('n' || repeat('x', 63), '0 0 1 1 *', 'sql', '{"sql": "SELECT 1"}')}, INV, '');
	add("SELECT jobq.schedule(NULL, '0 0 1 1 *', 'sql', $sqlp)", NULLV);
	add("SELECT jobq.schedule('s', '0 0 1 1 *', NULL, $sqlp)", NULLV);
	add("SELECT jobq.schedule('s', '0 0 1 1 *', 'nope', $sqlp)", NOOBJ);
	add(q{SELECT jobq.schedule('s', '0 0 1 1 *', 'sql', '{"sql": "SELEC"}')}, SYNTAX);
	add(q{SELECT jobq.schedule('s', '0 0 1 1 *', 'sql', '{}')}, INV);
	add("SELECT jobq.schedule('s', '0 0 1 1 *', 'sql', NULL)", INV);
	add("SELECT jobq.schedule('s', '0 0 1 1 *', 'mine', NULL)", OK);
	add("SELECT jobq.schedule('s', '0 0 1 1 *', 'privk', NULL)", PRIV);
	add("SELECT jobq.schedule('mysched', '0 0 1 1 *', 'sql', $sqlp)", OK);
	add("SELECT jobq.schedule('theirsched', '0 0 1 1 *', 'sql', $sqlp)", PRIV);
	add(q{SELECT jobq.schedule('s', '0 0 1 1 *', 'http', '{"channel": "secret"}')}, PRIV);
	for my $p (qw(0 -2147483648 2147483647))
	{
		add("SELECT jobq.schedule('s', '0 0 1 1 *', 'sql', $sqlp, priority => $p)", OK);
	}
	for my $c (
		[ 'null', undef, NULLV ],
		[ 'empty', '', INV ],
		[ 'blank', "  \t ", INV ],
		[ 'every minute', '* * * * *', OK ],
		[ 'seconds', '30 seconds', INV ],
		[ 'words', 'every day', INV ],
		[ 'minute 61', '61 * * * *', INV ],
		[ 'six fields', '* * * * * *', OK ],
		[ 'injection', "* * * * *'; DROP TABLE jobq._schedules; --", OK ],
		[ 'newline', "* * * * *\n* * * * *", OK ],
		[ 'control', "* * * * *\x01", OK ],
		[ 'unicode', "* * * * $uni", INV ],
		[ 'huge', '* ' x 50000, INV ])
	{
		add("SELECT jobq.schedule('s', " . L($c->[1]) . ", 'sql', $sqlp)", $c->[2]);
	}
	$grp = 'unschedule';
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		add('SELECT jobq.unschedule(' . L($v) . ')', OK);
	}
	add('SELECT jobq.unschedule(NULL)', OK);
	add("SELECT jobq.unschedule('mysched')", OK);
	add("SELECT jobq.unschedule('theirsched')", OK);
	$grp = 'run_schedule';
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		add('SELECT jobq.run_schedule(' . L($v) . ')', NOOBJ);
	}
	add('SELECT jobq.run_schedule(NULL)', NOOBJ);
	add("SELECT jobq.run_schedule('mysched')", OK);
	add("SELECT jobq.run_schedule('theirsched')", NOOBJ);
	$role = undef;
	add("SELECT jobq.run_schedule('theirsched')", OK);
	$role = 'nobody';
	add("SELECT jobq.run_schedule('mysched')", NOOBJ);
	$role = 'app';

	for my $f (qw(pause_schedule resume_schedule))
	{
		$grp = $f;
		for my $n (names())
		{
			add("SELECT jobq.$f(" . L($n->[1]) . ')', NOOBJ);
		}
		add("SELECT jobq.$f(NULL)", OK);
		add("SELECT jobq.$f('mysched')", OK);
		add("SELECT jobq.$f('theirsched')", NOOBJ);
		add("SELECT jobq.$f('MYSCHED')", NOOBJ);
		$role = undef;
		add("SELECT jobq.$f('theirsched')", OK);
		$role = 'nobody';
		add("SELECT jobq.$f('mysched')", NOOBJ);
		$role = 'app';
	}

	$grp = 'schedule_timetable';
	add('SELECT count(*) FROM jobq.schedule_timetable()', OK);
	add('SELECT count(*) FROM jobq.schedule_timetable(NULL)', INV);
	for my $v (@jvals)
	{
		my ($label, $expr, $class) = @$v;
		add("SELECT count(*) FROM jobq.schedule_timetable($expr)", $class eq 'obj' ? ($label eq 'obj' ? OK : INV) : INV);
		add("SELECT count(*) FROM jobq.schedule_timetable(jsonb_build_object('jobq.prune', $expr))",
			$label =~ /^(false|obj|obj_str|deep_obj)$/ ? OK : INV);
		for my $field (qw(schedule queue priority kind payload))
		{
			my ($exp, $tag) = (OK, '');
			if ($field eq 'schedule') { $exp = $class eq 'null' ? NULLV : INV }
			elsif ($field eq 'kind')
			{
				($exp, $tag) =
					$class eq 'null' ? (NULLV, '')
				  : $class =~ /^(nl|ctl|empty)$/ || $label =~ /^(e308|neg_e308|tiny|big|deep_arr|deep_obj)$/ ? (INV, 'lead')
				  : (NOOBJ, '');
			}
			elsif ($field eq 'priority') { $exp = cast_int($class, $label) }
			elsif ($field eq 'queue')
			{
				($exp, $tag) =
					$class =~ /^(nl|ctl)$/ ? (INV, 'lead')
				  : $label =~ /^(empty|e308|neg_e308|tiny|big|deep_arr|deep_obj)$/ ? (INV, '')
				  : (OK, '');
			}
			add("SELECT count(*) FROM jobq.schedule_timetable(jsonb_build_object('jobq.prune', jsonb_build_object('$field', $expr)))", $exp, $tag);
		}
	}
	add(q{SELECT count(*) FROM jobq.schedule_timetable('{"matview.refresh": {"payload": {"view": "corpus_mv"}}}')}, OK);
	add(q{SELECT count(*) FROM jobq.schedule_timetable('{"table.archive": {"payload": {}}}')}, OK);
	add(q{SELECT count(*) FROM jobq.schedule_timetable('{"jobq.prune": {"queue": "a\u0001b"}}')}, INV, 'lead');
	add(q{SELECT count(*) FROM jobq.schedule_timetable('{"jobq.prune": {"queue": "a\nb"}}')}, INV, 'lead');

	# queues, as the superuser (queue qexists is made by the test)
	$role = undef;
	for my $f (qw(create_queue alter_queue pause_queue resume_queue drop_queue))
	{
		$grp = $f;
		my $settings = $f =~ /^(create|alter)_queue$/ ? q{, '{}'} : '';
		for my $n (names())
		{
			my ($label, $v, $class) = @$n;
			my $exp =
				$f eq 'create_queue' ? ($class eq 'ok' ? OK : INV)
			  : $f eq 'drop_queue' ? NOOBJ
			  : $class eq 'ok' ? NOOBJ
			  : INV;
			add("SELECT jobq.$f(" . L($v) . "$settings)", $exp);
		}
		add("SELECT jobq.$f(NULL$settings)", NULLV);
		add("SELECT jobq.$f('QEXISTS'$settings)", $f eq 'create_queue' ? OK : NOOBJ);
		add("SELECT jobq.$f('qexists'$settings)", $f eq 'create_queue' ? '42710' : OK);
		next unless $settings;

		my $q = $f eq 'create_queue' ? q{'c'} : q{'qexists'};
		add("SELECT jobq.$f($q, NULL)", INV);
		for my $v (@jvals)
		{
			my ($label, $expr, $class) = @$v;
			add("SELECT jobq.$f($q, $expr)", $label eq 'obj' ? OK : INV);
			for my $field (qw(concurrency concurrency_per_key rate))
			{
				add("SELECT jobq.$f($q, jsonb_build_object('$field', $expr))",
					$class eq 'null' || $label eq 'int_max' ? OK : INV);
			}
			add("SELECT jobq.$f($q, jsonb_build_object('rate_period', $expr))",
				$class eq 'null' ? OK : INV);
			add("SELECT jobq.$f($q, jsonb_build_object('paused', $expr))", $class eq 'bool' ? OK : INV);
		}
		for my $p ('1 ms', '1 day', '1 second', '1 minute', '00:00:30')
		{
			add("SELECT jobq.$f($q, " . L(qq({"rate": 10, "rate_period": "$p"})) . ')', OK);
		}
		for my $p ('0', '-1 second', '0.5 ms', '1 day 1 ms', '1 month', 'infinity', '-infinity', 'P1Y')
		{
			add("SELECT jobq.$f($q, " . L(qq({"rate": 10, "rate_period": "$p"})) . ')', INV);
		}
		add("SELECT jobq.$f($q, '{\"concurrency\": 1, \"burst\": 2}')", INV);
		add("SELECT jobq.$f($q, '{\"Concurrency\": 1}')", INV);
	}

	# the external worker API, as the application's role: no job is
	# leased, so a call that passes its checks claims nothing or finds no
	# job (42704)
	$role = 'app';
	my @lease = (
		[ 'null', 'NULL', NULLV ],
		[ 'second', q{'1 s'}, OK ],
		[ 'day', q{'1 day'}, OK ],
		[ 'under_second', q{'999 ms'}, INV ],
		[ 'zero', q{'0'}, INV ],
		[ 'negative', q{'-1 min'}, INV ],
		[ 'day_and_ms', q{'1 day 1 ms'}, INV ],
		[ 'month', q{'1 mon'}, INV ],
		[ 'million_years', q{'178000000 years'}, INV ],
		[ 'minus_million_years', q{'-178000000 years'}, INV ],
		[ 'bad_text', q{'soon'}, '22007' ]);
	my @delay = (
		[ 'zero', q{'0'}, OK ],
		[ 'second', q{'1 s'}, OK ],
		[ '365_days', q{'365 days'}, OK ],
		[ '366_days', q{'366 days'}, INV ],
		[ 'negative', q{'-1 ms'}, INV ],
		[ 'million_years', q{'178000000 years'}, INV ],
		[ 'minus_million_years', q{'-178000000 years'}, INV ],
		[ 'bad_text', q{'later'}, '22007' ]);
	$grp = 'claim';
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		add('SELECT count(*) FROM jobq.claim(ARRAY[' . L($v) . '])', $class eq 'ok' ? OK : INV);
	}
	add('SELECT count(*) FROM jobq.claim()', OK);
	add('SELECT count(*) FROM jobq.claim(NULL)', OK);
	add('SELECT count(*) FROM jobq.claim(ARRAY[]::text[])', INV);
	add('SELECT count(*) FROM jobq.claim(ARRAY[NULL]::text[])', NULLV);
	add(q{SELECT count(*) FROM jobq.claim(ARRAY['a', NULL])}, NULLV);
	add(q{SELECT count(*) FROM jobq.claim(ARRAY[['a', 'b'], ['c', 'd']])}, OK);
	add('SELECT count(*) FROM jobq.claim(array_fill(' . L('q') . '::text, ARRAY[100000]))', OK);
	for my $m (qw(1 1000))
	{
		add("SELECT count(*) FROM jobq.claim(NULL, $m)", OK);
	}
	for my $m (qw(0 -1 1001 2147483647 -2147483648))
	{
		add("SELECT count(*) FROM jobq.claim(NULL, $m)", INV);
	}
	add('SELECT count(*) FROM jobq.claim(NULL, NULL)', NULLV);
	add("SELECT count(*) FROM jobq.claim(NULL, 1, $_->[1])", $_->[2]) for @lease;

	$grp = 'claim_wait';
	# from the corpus's procedure, a CALL is in a transaction block
	add("CALL jobq.claim_wait(NULL, 1, '1 min', '0 s')", '2D000');
	# (a literal that is no interval is refused before the call)
	add("CALL jobq.claim_wait(NULL, 1, $_->[1], '0 s')", $_->[2] eq '22007' ? '22007' : '2D000') for @lease;
	add("CALL jobq.claim_wait(NULL, 1, '1 min', $_->[1])", $_->[2] eq '22007' ? '22007' : '2D000') for @delay;

	$grp = 'heartbeat';
	add('SELECT count(*) FROM jobq.heartbeat(ARRAY[1, 2], -1)', OK);
	add('SELECT count(*) FROM jobq.heartbeat(ARRAY[]::bigint[], -1)', OK);
	add('SELECT count(*) FROM jobq.heartbeat(NULL, -1)', NULLV);
	add('SELECT count(*) FROM jobq.heartbeat(ARRAY[1], NULL)', NULLV);
	add('SELECT count(*) FROM jobq.heartbeat(ARRAY[1, NULL], -1)', NULLV);
	add('SELECT count(*) FROM jobq.heartbeat(ARRAY[[1, 2], [3, 4]], -1)', OK);
	add('SELECT count(*) FROM jobq.heartbeat(ARRAY[-9223372036854775808, 9223372036854775807], 0)', OK);
	add("SELECT count(*) FROM jobq.heartbeat(ARRAY[1], -1, $_->[1])", $_->[2]) for @lease;

	for my $f (qw(complete fail snooze))
	{
		$grp = $f;
		my $more = $f eq 'fail' ? q{, 'error'} : $f eq 'snooze' ? q{, '1 s'} : '';
		add("SELECT jobq.$f(1, -1$more)", NOOBJ);
		add("SELECT jobq.$f(-9223372036854775808, 9223372036854775807$more)", NOOBJ);
		add("SELECT jobq.$f(NULL, -1$more)", NULLV);
		add("SELECT jobq.$f(1, NULL$more)", NULLV);
	}
	$grp = 'complete';
	for my $v (@jvals)
	{
		add("SELECT jobq.complete(1, -1, $v->[1])", NOOBJ);
	}
	$grp = 'fail';
	add('SELECT jobq.fail(1, -1, NULL)', NULLV);
	add(q{SELECT jobq.fail(1, -1, 'x', final => NULL)}, NULLV);
	add(q{SELECT jobq.fail(1, -1, repeat('x', 1000000), context => repeat('y', 1000000))}, NOOBJ);
	add(q{SELECT jobq.fail(1, -1, E'a\x01b')}, NOOBJ);
	add("SELECT jobq.fail(1, -1, 'x', $_->[1])", $_->[2] eq OK ? NOOBJ : $_->[2]) for @delay;
	add(q{SELECT jobq.fail(1, -1, 'x', NULL)}, NOOBJ);
	$grp = 'snooze';
	add('SELECT jobq.snooze(1, -1, NULL)', NULLV);
	add("SELECT jobq.snooze(1, -1, $_->[1])", $_->[2] eq OK ? NOOBJ : $_->[2]) for @delay;

	# external kinds, as the superuser
	$role = undef;
	$grp = 'register_external_kind';
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		add('SELECT jobq.register_external_kind(' . L($v) . ')', $class eq 'ok' ? OK : INV);
		add(q{SELECT jobq.register_external_kind('ext.x', } . L($v) . ')', $class eq 'ok' ? OK : INV);
	}
	add('SELECT jobq.register_external_kind(NULL)', NULLV);
	add(q{SELECT jobq.register_external_kind('sql')}, INV);
	add(q{SELECT jobq.register_external_kind('http')}, INV);
	add(q{SELECT jobq.register_external_kind('ext.x', NULL)}, OK);
	add(q{SELECT jobq.register_external_kind('ext.x', max_attempts => 0)}, INV);
	add(q{SELECT jobq.register_external_kind('ext.x', max_attempts => 2147483647)}, OK);
	add(q{SELECT jobq.register_external_kind('ext.x', timeout => '0')}, INV);
	add(q{SELECT jobq.register_external_kind('ext.x', timeout => '25 days')}, INV);
	add(q{SELECT jobq.register_external_kind('ext.x', priority => -2147483648)}, OK);

	# channels, as the superuser
	$role = undef;
	$grp = 'create_channel';
	my $hc = q{'{"url": "http://127.0.0.1:9/"}'};
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		my ($exp, $tag) = $class eq 'ok' ? (OK, '') : (INV, 'lead');
		add('SELECT jobq.create_channel(' . L($v) . ", 'http', $hc)", $exp, $tag);
	}
	# as the other functions that create a named object (register_kind,
	# schedule): a NULL name is null_value_not_allowed
	add("SELECT jobq.create_channel(NULL, 'http', $hc)", NULLV, 'proposed');
	add("SELECT jobq.create_channel('hook', 'http', $hc)", '42710');
	for my $t (undef, '', 'ftp', 'HTTP', "http\n")
	{
		add("SELECT jobq.create_channel('c', " . L($t) . ", $hc)", INV);
	}
	add("SELECT jobq.create_channel('c', 'http', NULL)", INV);
	add("SELECT jobq.create_channel('c', 'http', $hc, NULL)", INV);
	for my $v (@jvals)
	{
		my ($label, $expr, $class) = @$v;
		add("SELECT jobq.create_channel('c', 'http', $expr)", INV);
		add("SELECT jobq.create_channel('c', 'http', $hc, $expr)", $label eq 'obj' ? OK : INV);
	}
	my @config = (
		[ 'url https', { url => 'https://127.0.0.1/' }, OK ],
		[ 'url ftp', { url => 'ftp://127.0.0.1/' }, INV ],
		[ 'url no host', { url => 'http://' }, INV ],
		[ 'url credentials', { url => 'http://u:p@127.0.0.1/' }, INV ],
		[ 'url number', 'jsonb_build_object(\'url\', 1)', INV ],
		[ 'url huge', q{jsonb_build_object('url', 'http://h/' || repeat('p', 100000))}, OK ],
		[ 'method lower', { method => 'post' }, INV ],
		[ 'method crlf', { method => "POST\r\n" }, INV ],
		[ 'method put', { method => 'PUT' }, OK ],
		[ 'format xml', { format => 'xml' }, INV ],
		[ 'format form', { format => 'form' }, OK ],
		[ 'starttls maybe', { starttls => 'maybe' }, INV ],
		[ 'unknown member', { password => 'x' }, INV ],
		[ 'headers array', q{'[]'}, INV, 'headers' ],
		[ 'headers ok', q{'{"X-A": "v"}'}, OK, 'headers' ],
		[ 'header value crlf', 'jsonb_build_object(' . L('X-A') . ', ' . L("v\r\nX-Evil: 1") . ')', INV, 'headers', 'lead' ],
		[ 'header value lf', 'jsonb_build_object(' . L('X-A') . ', ' . L("v\nX-Evil: 1") . ')', INV, 'headers', 'lead' ],
		[ 'header value control', 'jsonb_build_object(' . L('X-A') . ', ' . L("v\x01") . ')', INV, 'headers', 'lead' ],
		[ 'header value del', 'jsonb_build_object(' . L('X-A') . ', ' . L("v\x7f") . ')', INV, 'headers', 'lead' ],
		[ 'header name crlf', 'jsonb_build_object(' . L("X-A\r\nX-Evil") . ', ' . L('v') . ')', INV, 'headers', 'lead' ],
		[ 'header name control', 'jsonb_build_object(' . L("X-\x1fA") . ', ' . L('v') . ')', INV, 'headers', 'lead' ],
		[ 'fields array', q{'[1]'}, INV, 'fields' ],
	);
	for my $ms (qw(timeout_ms connect_timeout_ms))
	{
		push @config, [ "$ms 1000", q{'1000'}, OK, $ms ];
		push @config, [ "$ms $_", "'$_'", INV, $ms, 'lead' ] for qw(0 -1 -2147483648 2147483648 1e10 1e308);
		# accepted here but refused by every request through the channel
		push @config, [ "$ms 100.0", q{'100.0'}, INV, $ms, 'proposed' ];
	}
	for my $c (@config)
	{
		my ($label, $v, $exp, $member, $tag) = @$c;
		my $cfg;
		if (ref $v)
		{
			my ($k) = keys %$v;
			$cfg = "jsonb_build_object('url', 'http://127.0.0.1:9/') || jsonb_build_object('$k', " . L($v->{$k}) . ')';
		}
		elsif ($member)
		{
			$cfg = "jsonb_build_object('url', 'http://127.0.0.1:9/', '$member', $v\::jsonb)";
		}
		else
		{
			$cfg = "jsonb_build_object('url', 'http://127.0.0.1:9/') || $v";
		}
		add("SELECT jobq.create_channel('c', 'http', $cfg)", $exp, $tag);
		$grp = 'alter_channel';
		add("SELECT jobq.alter_channel('hook', $cfg)", $exp, $tag);
		if (($member // '') eq 'headers')
		{
			add("SELECT jobq.alter_channel('hook', NULL, jsonb_build_object('headers', $v\::jsonb))", $exp, $tag);
		}
		$grp = 'create_channel';
	}
	add(q{SELECT jobq.create_channel('c', 'smtp', '{"url": "smtp://127.0.0.1:9"}')}, INV);
	add(q{SELECT jobq.create_channel('c', 'smtp', '{"url": "http://127.0.0.1:9", "from": "a@b"}')}, INV);
	add(q{SELECT jobq.create_channel('c', 'smtp', '{"url": "smtp://127.0.0.1:9", "from": "a@b"}')}, OK);
	$role = 'app';
	add("SELECT jobq.create_channel('c', 'http', $hc)", PRIV);
	$role = undef;

	$grp = 'alter_channel';
	add("SELECT jobq.alter_channel(NULL, $hc)", NOOBJ);
	add("SELECT jobq.alter_channel('nope', $hc)", NOOBJ);
	add("SELECT jobq.alter_channel('hook')", OK);
	add("SELECT jobq.alter_channel('mail', $hc)", INV);
	for my $v (@jvals)
	{
		my ($label, $expr, $class) = @$v;
		add("SELECT jobq.alter_channel('hook', $expr)", INV);
		add("SELECT jobq.alter_channel('hook', NULL, $expr)", $label eq 'obj' ? OK : INV);
	}
	$role = 'app';
	add("SELECT jobq.alter_channel('hook', $hc)", PRIV);
	$role = undef;

	$grp = 'drop, grant and revoke';
	for my $n (names())
	{
		my ($label, $v, $class) = @$n;
		add('SELECT jobq.drop_channel(' . L($v) . ')', OK);
		add('SELECT jobq.grant_channel(' . L($v) . ", 'app')", NOOBJ);
		add("SELECT jobq.grant_channel('hook', " . L($v) . ')', NOOBJ);
		add("SELECT jobq.revoke_channel('hook', " . L($v) . ')', NOOBJ);
		add('SELECT jobq.grant_http(' . L($v) . ')', NOOBJ);
		add('SELECT jobq.revoke_http(' . L($v) . ')', NOOBJ);
	}
	add('SELECT jobq.drop_channel(NULL)', OK);
	add("SELECT jobq.drop_channel('hook')", OK);
	add("SELECT jobq.grant_channel(NULL, 'app')", NOOBJ);
	add("SELECT jobq.grant_channel('hook', NULL)", NULLV);
	add("SELECT jobq.revoke_channel('hook', NULL)", NULLV);
	add('SELECT jobq.grant_http(NULL)', NULLV);
	add('SELECT jobq.revoke_http(NULL)', NULLV);
	for my $r (qw(app public PUBLIC Public nobody))
	{
		add("SELECT jobq.grant_channel('hook', '$r')", OK);
		add("SELECT jobq.revoke_channel('hook', '$r')", OK);
		add("SELECT jobq.grant_http('$r')", OK);
		add("SELECT jobq.revoke_http('$r')", OK);
	}
	add(q{SELECT jobq.grant_http('"app"')}, NOOBJ);
	$role = 'app';
	add("SELECT jobq.grant_http('app')", PRIV);
	add("SELECT jobq.grant_channel('secret', 'app')", PRIV);
	add("SELECT jobq.drop_channel('hook')", PRIV);
	$role = 'app';

	# pack kinds: called directly, then as jobs run by the workers
	my %fn = (
		'slots.generate' => 'slots_generate',
		'reservations.release' => 'reservations_release',
		'attendance.aggregate' => 'attendance_aggregate',
		'attendance.thresholds' => 'attendance_thresholds',
		'matview.refresh' => 'matview_refresh',
		'table.archive' => 'table_archive',
		'jobq.prune' => '_prune_kind');
	for my $kind (sort keys %fn)
	{
		$grp = "pack $kind (called)";
		for my $p (pack_cases($kind))
		{
			next if $fn{$kind} =~ /^_/;
			next if $p->[0] =~ /^over 1MB/;
			add("SELECT jobq.$fn{$kind}($p->[1])", $p->[2], $p->[3]);
		}
		$grp = "pack $kind (job)";
		for my $p (pack_cases($kind))
		{
			add_job($kind, $p->[1], $p->[2], $p->[3]);
		}
	}
	return @cases;
}

1;
