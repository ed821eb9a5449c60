# 022_docs.pl: the documentation says what the extension is, and its links work.
#
# 1. docs/reference/settings.md has one table row per jobq.* row of
#    pg_settings (with shared_preload_libraries = jobq), with its default as
#    SHOW shows it (boot_val in the largest unit that divides it) and its
#    context, and no row for a setting that does not exist.  A setting that
#    pg_settings hides (GUC_NO_SHOW_ALL) may have a row if it exists.
# 2. Every function and view that is a member of extension jobq (pg_depend
#    deptype 'e', internal underscore functions too) is documented once in
#    docs/reference/, and nothing there documents one that does not exist.
#    The convention: a function is documented by its signature, a line in a
#    fenced code block that starts with schema.name( and whose argument list
#    (names, types, DEFAULTs; OUT arguments may be left out) is followed by
#    RETURNS on the same or the next line; a procedure by a line that
#    starts with CALL schema.name( and ends with its argument list; a view
#    by a heading "View schema.name".
# 3. The same for extension jobq_pack against pack/README.md, when jobq_pack
#    is available; when it is not, a diag says so and the rest runs.
# 4. Every relative link of every Markdown file of the tree points to a file
#    that exists and, for a #fragment into a Markdown file, to a heading
#    there (GitHub's anchors: lower case, punctuation dropped, spaces to
#    hyphens, -1, -2 ... for repeats).

use strict;
use warnings;

use File::Find;
use File::Basename qw(dirname);
use File::Spec;
use Cwd qw(abs_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib "$FindBin::RealBin/../perl";
use JobqNode;

my $root = abs_path("$FindBin::RealBin/../..");

sub slurp
{
	my ($path) = @_;
	open my $fh, '<:encoding(UTF-8)', $path or die "cannot read $path: $!";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

# The lines of a Markdown text, each with a flag: inside a fenced code block.
sub md_lines
{
	my ($text) = @_;
	my @out;
	my $fence;
	for my $line (split /\n/, $text)
	{
		if (defined $fence)
		{
			push @out, [ $line, 1 ];
			$fence = undef if $line =~ /^\s*\Q$fence\E\s*$/;
			next;
		}
		if ($line =~ /^\s*(```+|~~~+)/)
		{
			$fence = $1;
			push @out, [ $line, 1 ];
			next;
		}
		push @out, [ $line, 0 ];
	}
	return @out;
}

# ---------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------

my $node = jobq_node('docs', "jobq.workers = 0\n");
$node->safe_psql('postgres', 'CREATE EXTENSION jobq');

# ---------------------------------------------------------------------
# 1. settings
# ---------------------------------------------------------------------

# A value as SHOW shows it: an integer with a unit in the largest unit that
# divides it (guc.c's convert_int_from_base_unit), 0 and -1 without one.
my %units = (
	ms => [ [ 'd', 86400000 ], [ 'h', 3600000 ], [ 'min', 60000 ], [ 's', 1000 ], [ 'ms', 1 ] ],
	s => [ [ 'd', 86400 ], [ 'h', 3600 ], [ 'min', 60 ], [ 's', 1 ] ],
	min => [ [ 'd', 1440 ], [ 'h', 60 ], [ 'min', 1 ] ],
	kB => [ [ 'TB', 1024**3 ], [ 'GB', 1024**2 ], [ 'MB', 1024 ], [ 'kB', 1 ] ],
	MB => [ [ 'TB', 1024**2 ], [ 'GB', 1024 ], [ 'MB', 1 ] ],
	B => [ [ 'TB', 1024**4 ], [ 'GB', 1024**3 ], [ 'MB', 1024**2 ], [ 'kB', 1024 ], [ 'B', 1 ] ]);

sub shown
{
	my ($value, $unit, $vartype) = @_;
	return "''" if $vartype eq 'string' && $value eq '';
	return $value
	  if $unit eq '' || $vartype ne 'integer' || $value <= 0;
	die "unknown unit $unit" unless $units{$unit};
	for my $u (@{ $units{$unit} })
	{
		return ($value / $u->[1]) . $u->[0] if $value % $u->[1] == 0;
	}
	die "no unit for $value $unit";
}

my %catalog_settings;
for my $row (
	split /\n/,
	$node->safe_psql(
		'postgres', q{
SELECT name, boot_val, reset_val, unit, vartype, context, current_setting(name)
  FROM pg_settings WHERE name LIKE 'jobq.%' ORDER BY name}))
{
	my ($name, $boot, $reset, $unit, $vartype, $context, $current) =
	  split /\|/, $row, -1;
	$catalog_settings{$name} =
	  { default => shown($boot, $unit, $vartype), context => $context };

	# the formatting above is PostgreSQL's: where the value is the boot
	# value, SHOW agrees with it
	is(shown($reset, $unit, $vartype),
		$current eq '' ? "''" : $current,
		"$name: the default is shown in the unit SHOW uses")
	  if $boot eq $reset;
}
ok(scalar(keys %catalog_settings) > 0, 'pg_settings lists jobq settings');

my $settings_md = "$root/docs/reference/settings.md";
my (%doc_settings, @settings_twice);
for my $l (md_lines(slurp($settings_md)))
{
	my ($line, $in_code) = @$l;
	next if $in_code;
	next unless $line =~ /^\|\s*`(jobq\.[\w.]+)`\s*\|([^|]*)\|([^|]*)\|/;
	my ($name, $default, $context) = ($1, $2, $3);
	s/^\s+|\s+$//g for $default, $context;
	$default =~ s/^`(.*)`$/$1/;
	push @settings_twice, $name if $doc_settings{$name};
	$doc_settings{$name} = { default => $default, context => $context };
}
is_deeply(\@settings_twice, [], 'settings.md has one row per setting')
  or diag("twice: @settings_twice");

my @undocumented = grep { !$doc_settings{$_} } sort keys %catalog_settings;
is_deeply(\@undocumented, [],
	'every jobq setting of pg_settings has a row in settings.md')
  or diag("missing: @undocumented");

for my $name (sort keys %doc_settings)
{
	my $doc = $doc_settings{$name};
	if (my $cat = $catalog_settings{$name})
	{
		is($doc->{default}, $cat->{default}, "settings.md: default of $name");
		is($doc->{context}, $cat->{context}, "settings.md: context of $name");
		next;
	}

	# not in pg_settings: only a hidden setting that exists may be there
	my $value = $node->safe_psql('postgres',
		"SELECT coalesce(quote_literal(current_setting('$name', true)), 'NULL')");
	isnt($value, 'NULL',
		"settings.md: $name is a setting (hidden from pg_settings)");
	is($doc->{default}, $value eq "''" ? "''" : ($value =~ s/^'(.*)'$/$1/r),
		"settings.md: default of the hidden setting $name");
	diag("$name is hidden from pg_settings: its context is not checked");
}

# ---------------------------------------------------------------------
# 2. and 3. functions and views
# ---------------------------------------------------------------------

my %type_alias = (
	'timestamptz' => 'timestamp with time zone',
	'timestamp' => 'timestamp without time zone',
	'int' => 'integer',
	'int4' => 'integer',
	'int8' => 'bigint',
	'int2' => 'smallint',
	'bool' => 'boolean',
	'float8' => 'double precision',
	'varchar' => 'character varying');

# "name type" with the type as format_type() writes it; undef for OUT.
sub norm_arg
{
	my ($arg) = @_;
	$arg =~ s/^\s+|\s+$//g;
	$arg =~ s/\s+(DEFAULT\b|=).*$//is;
	return undef if $arg =~ /^OUT\s/i;
	$arg =~ s/^IN\s+//i;
	# an argument without a name is its type alone
	my ($name, $type) = $arg =~ /^(\w+)\s+(.+)$/s ? ("$1 ", $2) : ('', $arg);
	$type = lc $type;
	$type =~ s/\s+/ /g;
	my $array = $type =~ s/(\[\])+$// ? '[]' : '';
	$type = $type_alias{$type} // $type;
	return "$name$type$array";
}

# Split an argument list at its top-level commas.
sub split_args
{
	my ($list) = @_;
	my (@args, $cur, $depth, $quote);
	$cur = '';
	$depth = 0;
	for my $c (split //, $list)
	{
		if ($quote)
		{
			$quote = 0 if $c eq "'";
		}
		elsif ($c eq "'") { $quote = 1; }
		elsif ($c eq '(') { $depth++; }
		elsif ($c eq ')') { $depth--; }
		elsif ($c eq ',' && $depth == 0)
		{
			push @args, $cur;
			$cur = '';
			next;
		}
		$cur .= $c;
	}
	push @args, $cur if $cur =~ /\S/;
	return @args;
}

sub signature
{
	my ($name, @args) = @_;
	return "$name(" . join(', ', grep { defined } map { norm_arg($_) } @args) . ')';
}

# The functions and views documented in the given files: (\%functions,
# \%views), each name (with its signature for a function) mapped to the
# number of times it is documented.
sub documented
{
	my (@files) = @_;
	my (%functions, %views);
	for my $file (@files)
	{
		my @lines = md_lines(slurp($file));
		for my $i (0 .. $#lines)
		{
			my ($line, $in_code) = @{ $lines[$i] };
			if (!$in_code && $line =~ /^#{1,6}\s+View\s+`?([\w.]+)`?\s*$/)
			{
				$views{$1}++;
				next;
			}
			# a function's signature, or a procedure's, CALL before it
			next unless $in_code && $line =~ /^(CALL\s+)?(\w+\.\w+)\(/;
			my ($call, $name) = ($1, $2);

			# the argument list, up to its closing parenthesis
			my $text = substr($line, length($&));
			my $j = $i;
			my ($depth, $args, $rest) = (1, '', undef);
			my $quote = 0;
			while (1)
			{
				for my $k (0 .. length($text) - 1)
				{
					my $c = substr($text, $k, 1);
					if ($quote) { $quote = 0 if $c eq "'"; }
					elsif ($c eq "'") { $quote = 1; }
					elsif ($c eq '(') { $depth++; }
					elsif ($c eq ')' && --$depth == 0)
					{
						$rest = substr($text, $k + 1);
						last;
					}
					$args .= $c;
				}
				last if defined $rest;
				last if ++$j > $#lines || !$lines[$j][1];
				$args .= "\n";
				$text = $lines[$j][0];
			}
			next unless defined $rest;
			my $next = $j < $#lines ? $lines[ $j + 1 ][0] : '';
			next
			  unless ($call && $rest =~ /^\s*$/)
			  || $rest =~ /^\s*RETURNS\b/i
			  || ($rest =~ /^\s*$/ && $next =~ /^\s*RETURNS\b/i);
			$functions{ signature($name, split_args($args)) }++;
		}
	}
	return (\%functions, \%views);
}

# The members of an extension: (\%functions, \%views) as documented() gives.
sub members
{
	my ($ext) = @_;
	my (%functions, %views);
	for my $row (
		split /\n/,
		$node->safe_psql(
			'postgres', qq{
SELECT p.pronamespace::regnamespace || '.' || p.proname,
       pg_get_function_identity_arguments(p.oid)
  FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
 WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
   AND d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = '$ext')}))
	{
		my ($name, $args) = split /\|/, $row, 2;
		$functions{ signature($name, split /, /, $args) }++;
	}
	for my $name (
		split /\n/,
		$node->safe_psql(
			'postgres', qq{
SELECT c.relnamespace::regnamespace || '.' || c.relname
  FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
 WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e'
   AND c.relkind IN ('v', 'm')
   AND d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = '$ext')}))
	{
		$views{$name}++;
	}
	return (\%functions, \%views);
}

sub check_documented
{
	my ($ext, $where, @files) = @_;
	my ($mf, $mv) = members($ext);
	my ($df, $dv) = documented(@files);
	ok(scalar(keys %$mf) > 0, "$ext has member functions");

	my @missing = grep { !$df->{$_} } sort keys %$mf;
	is_deeply(\@missing, [], "every function of $ext is documented in $where")
	  or diag("not documented (or with other arguments):\n  "
		  . join("\n  ", @missing));

	my @extra = grep { !$mf->{$_} } sort keys %$df;
	is_deeply(\@extra, [], "$where documents no function $ext does not have")
	  or diag("documented but not members of $ext:\n  " . join("\n  ", @extra));
	my @twice = grep { $df->{$_} > 1 } sort keys %$df;
	is_deeply(\@twice, [], "$where documents each function of $ext once")
	  or diag("documented more than once: @twice");

	my @vmissing = grep { !$dv->{$_} } sort keys %$mv;
	is_deeply(\@vmissing, [], "every view of $ext is documented in $where")
	  or diag("views not documented: @vmissing");
	my @vextra = grep { !$mv->{$_} } sort keys %$dv;
	is_deeply(\@vextra, [], "$where documents no view $ext does not have")
	  or diag("documented views that are not members of $ext: @vextra");
	my @vtwice = grep { $dv->{$_} > 1 } sort keys %$dv;
	is_deeply(\@vtwice, [], "$where documents each view of $ext once")
	  or diag("views documented more than once: @vtwice");
	return;
}

my @reference = sort glob("$root/docs/reference/*.md");
ok(scalar(@reference) > 0, 'docs/reference/ has Markdown files');
check_documented('jobq', 'docs/reference/', @reference);

# the job pack, installed with jobq by the build, documents its own members
$node->safe_psql('postgres', 'CREATE EXTENSION jobq_pack CASCADE');
ok(-f "$root/pack/README.md", 'pack/README.md exists');
check_documented('jobq_pack', 'pack/README.md', "$root/pack/README.md");

# ---------------------------------------------------------------------
# 4. relative links
# ---------------------------------------------------------------------

# GitHub's anchor of a heading's text.
sub slug
{
	my ($text) = @_;
	$text =~ s/!?\[([^\]]*)\]\([^)]*\)/$1/g;    # links: their text
	$text =~ s/<[^>]+>//g;                      # HTML tags
	$text = lc $text;
	$text =~ s/[^\p{L}\p{N}\p{M}\p{Pc} -]//g;
	$text =~ s/ /-/g;
	return $text;
}

my %anchors_of;

sub anchors
{
	my ($file) = @_;
	return $anchors_of{$file} if $anchors_of{$file};
	my %anchors;
	my %seen;
	for my $l (md_lines(slurp($file)))
	{
		my ($line, $in_code) = @$l;
		next if $in_code;
		$anchors{$1} = 1 while $line =~ /<a\s+(?:name|id)="([^"]+)"/g;
		next unless $line =~ /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/;
		my $slug = slug($1);
		my $n = $seen{$slug}++;
		$anchors{ $n ? "$slug-$n" : $slug } = 1;
	}
	return $anchors_of{$file} = \%anchors;
}

my @markdown;
find(
	{
		wanted => sub {
			if (-d $_ && /^(\.git|tmp_check.*|results|output_iso|node_modules|log)$/)
			{
				$File::Find::prune = 1;
				return;
			}
			push @markdown, $File::Find::name if -f $_ && /\.md$/;
		},
		no_chdir => 0
	},
	$root);
@markdown = sort @markdown;
ok(scalar(grep { m{/README\.md$} } @markdown) > 0, 'the tree has Markdown files');

my @broken;
my $links = 0;
for my $file (@markdown)
{
	(my $rel_file = $file) =~ s{^\Q$root\E/}{};
	my $dir = dirname($file);
	for my $l (md_lines(slurp($file)))
	{
		my ($line, $in_code) = @$l;
		next if $in_code;
		$line =~ s/`[^`]*`//g;    # code spans
		my @targets;
		push @targets, $1 while $line =~ /\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g;
		push @targets, $1 if $line =~ /^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/;
		for my $target (@targets)
		{
			next if $target =~ /^[a-z][a-z0-9+.-]*:/i;    # http:, mailto: ...
			$links++;
			my ($path, $fragment) = $target =~ /^([^#]*)(?:#(.*))?$/;
			my $abs = $path eq '' ? $file : File::Spec->rel2abs($path, $dir);
			$abs = File::Spec->canonpath($abs);
			1 while $abs =~ s{/[^/]+/\.\.(/|$)}{$1};
			(my $rel = $abs) =~ s{^\Q$root\E/}{};
			if (!-e $abs)
			{
				push @broken, "$rel_file: $target (no such file)";
				next;
			}
			next unless defined $fragment && $fragment ne '';
			next unless -f $abs && $abs =~ /\.md$/;
			push @broken, "$rel_file: $target (no such anchor)"
			  unless anchors($abs)->{$fragment};
		}
	}
}
ok($links > 0, "relative links found ($links)");
is_deeply(\@broken, [], 'every relative link of the Markdown files resolves')
  or diag("broken links:\n  " . join("\n  ", @broken));

$node->stop;
done_testing();
