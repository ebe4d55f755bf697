
# Release metadata: META.json, eventlog.control and the SQL scripts agree.
#
# META.json must be valid against the PGXN Meta Spec 1.0.0 (what PGXN
# checks when a release is uploaded): the required keys, semantic versions,
# a license the spec knows, provides entries whose files exist, and
# well-formed optional keys.  The versions must agree: META.json's version
# (which the Makefile reads), eventlog.control's default_version and the
# version in provides.  The upgrade scripts must lead from 0.1.0 (the
# version with the full install script) to the default version, and every
# install and upgrade script must start with the \echo ... \quit guard
# that keeps psql from running it by hand.
#
# No cluster needed: this reads files only.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use JSON::PP;
use Test::More;

# The repository root, from this file's own path (test/t/030_meta.pl).
my $root = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)), '..', '..'));
ok(-f "$root/eventlog.control", "repository root found: $root");

sub slurp
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "cannot read $path: $!";
	local $/;
	my $text = <$fh>;
	close($fh);
	return $text;
}

# ---------------------------------------------------------------------------
# Value types of the spec
# ---------------------------------------------------------------------------

# Semantic Versioning 2.0.0 (PGXN requires semantic versions).
my $SEMVER = qr/(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)
                (?:-(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?
                (?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?/x;

sub is_string { my ($v) = @_; return defined($v) && !ref($v) }
sub is_nonempty_string { my ($v) = @_; return is_string($v) && length($v) > 0 }
sub is_semver { my ($v) = @_; return is_string($v) && $v =~ /^$SEMVER$/ }
sub is_object { my ($v) = @_; return ref($v) eq 'HASH' }
sub is_array { my ($v) = @_; return ref($v) eq 'ARRAY' }
# A Term: at least two characters, no slash, backslash, space or control character.
sub is_term { my ($v) = @_; return is_string($v) && $v =~ /^[^\/\\\s\p{Cntrl}]{2,}$/ }
sub is_uri { my ($v) = @_; return is_string($v) && $v =~ /^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/ }
sub is_email { my ($v) = @_; return is_string($v) && $v =~ /^[^@\s]+@[^@\s]+\.[^@\s]+$/ }
sub is_custom_key { my ($k) = @_; return $k =~ /^[xX]_./ }

# A version range: 0, or comma-separated versions with optional operators.
sub is_version_range
{
	my ($v) = @_;
	return 0 unless defined $v && !ref $v;
	return 1 if $v eq '0';
	for my $part (split /,\s*/, $v, -1)
	{
		return 0 unless $part =~ /^(?:(?:[=!]=|[<>]=?)\s*)?$SEMVER$/;
	}
	return 1;
}

# Keys of an object outside the allowed ones (custom x_ keys are allowed).
sub unknown_keys
{
	my ($obj, @allowed) = @_;
	my %ok = map { $_ => 1 } @allowed;
	return sort grep { !$ok{$_} && !is_custom_key($_) } keys %$obj;
}

my @LICENSES = qw(agpl_3 apache_1_1 apache_2_0 artistic_1 artistic_2 bsd freebsd
  gfdl_1_2 gfdl_1_3 gpl_1 gpl_2 gpl_3 lgpl_2_1 lgpl_3_0 mit mozilla_1_0 mozilla_1_1
  openssl perl_5 postgresql qpl_1_0 ssleay sun zlib open_source restricted
  unrestricted unknown);
my %LICENSE = map { $_ => 1 } @LICENSES;

# ---------------------------------------------------------------------------
# META.json against the PGXN Meta Spec 1.0.0
# ---------------------------------------------------------------------------

my $meta_text = slurp("$root/META.json");
my $meta = eval { JSON::PP->new->utf8->decode($meta_text) };
is($@, '', 'META.json is valid JSON');
BAIL_OUT('META.json cannot be parsed') unless is_object($meta);

for my $key (qw(name abstract version maintainer license provides meta-spec))
{
	ok(exists $meta->{$key}, "META.json has the required key \"$key\"");
}
is_deeply(
	[
		unknown_keys($meta,
			qw(name abstract version maintainer license provides meta-spec
			  description generated_by tags no_index prereqs release_status resources))
	],
	[],
	'META.json has no keys outside the spec (other than x_ custom keys)');

# meta-spec
ok(is_object($meta->{'meta-spec'}), 'meta-spec is an object');
is($meta->{'meta-spec'}{version}, '1.0.0', 'meta-spec version is 1.0.0');
if (exists $meta->{'meta-spec'}{url})
{
	like($meta->{'meta-spec'}{url}, qr{^https?://pgxn\.org/meta/spec\.txt$},
		'meta-spec url is the spec\'s own');
}
is_deeply([ unknown_keys($meta->{'meta-spec'}, qw(version url)) ], [],
	'meta-spec has only version and url');

# name, abstract, version, maintainer
ok(is_term($meta->{name}),
	'name is a term (two or more characters, no slash, backslash, space or control character)');
is($meta->{name}, 'eventlog', 'name is eventlog');
ok(is_nonempty_string($meta->{abstract}), 'abstract is a non-empty string');
ok(is_semver($meta->{version}), "version \"$meta->{version}\" is a semantic version");
my $maint = $meta->{maintainer};
ok( is_nonempty_string($maint)
	  || (is_array($maint) && @$maint > 0 && !grep { !is_nonempty_string($_) } @$maint),
	'maintainer is a non-empty string or a non-empty array of non-empty strings');

# license
my $lic = $meta->{license};
if (is_string($lic))
{
	ok($LICENSE{$lic}, "license \"$lic\" is one of the spec's license strings");
}
elsif (is_array($lic))
{
	ok(@$lic > 0 && !grep { !is_string($_) || !$LICENSE{$_} } @$lic,
		'license is a non-empty list of the spec\'s license strings');
}
elsif (is_object($lic))
{
	ok(%$lic && !grep { !is_uri($lic->{$_}) } keys %$lic,
		'license is an object mapping license names to URIs');
}
else
{
	fail('license is a string, a list or an object');
}

# provides
my $provides = $meta->{provides};
ok(is_object($provides) && %$provides, 'provides is a non-empty object');
for my $ext (sort keys %{ $provides // {} })
{
	my $e = $provides->{$ext};
	ok(is_term($ext), "provides: \"$ext\" is a term");
	ok(is_object($e), "provides: $ext is an object");
	next unless is_object($e);
	ok(is_nonempty_string($e->{file}), "provides: $ext has a file");
	ok(is_semver($e->{version}), "provides: $ext has a semantic version");
	is_deeply([ unknown_keys($e, qw(file version abstract docfile docpath)) ], [],
		"provides: $ext has no keys outside the spec");
	ok(-f "$root/$e->{file}", "provides: $ext file $e->{file} exists in the repository")
	  if defined $e->{file};
	unlike($e->{file} // '', qr{^/|\\}, "provides: $ext file is a relative path with unix separators");
	if (exists $e->{abstract})
	{
		ok(is_nonempty_string($e->{abstract}), "provides: $ext abstract is a non-empty string");
	}
	if (exists $e->{docfile})
	{
		ok(is_nonempty_string($e->{docfile}) && -f "$root/$e->{docfile}",
			"provides: $ext docfile $e->{docfile} exists in the repository");
	}
}

# Optional keys
for my $key (qw(description generated_by))
{
	ok(is_nonempty_string($meta->{$key}), "$key is a non-empty string") if exists $meta->{$key};
}
if (exists $meta->{tags})
{
	my $tags = $meta->{tags};
	ok(is_array($tags) && @$tags > 0, 'tags is a non-empty array');
	for my $tag (is_array($tags) ? @$tags : ())
	{
		ok(is_string($tag) && length($tag) >= 2 && length($tag) <= 255 && $tag !~ /[\/\\\p{Cntrl}]/,
			"tag \"$tag\" is 2 to 255 characters without slash, backslash or control character");
	}
}
if (exists $meta->{release_status})
{
	like($meta->{release_status}, qr/^(?:stable|testing|unstable)$/,
		'release_status is stable, testing or unstable');
}
if (exists $meta->{no_index})
{
	my $ni = $meta->{no_index};
	ok(is_object($ni), 'no_index is an object');
	is_deeply([ unknown_keys($ni, qw(file directory)) ], [], 'no_index has only file and directory');
	for my $k (grep { exists $ni->{$_} } qw(file directory))
	{
		my $v = $ni->{$k};
		ok(is_nonempty_string($v) || (is_array($v) && @$v && !grep { !is_nonempty_string($_) } @$v),
			"no_index $k is a path or a list of paths");
	}
}
if (exists $meta->{prereqs})
{
	my $pr = $meta->{prereqs};
	ok(is_object($pr) && %$pr, 'prereqs is a non-empty object');
	is_deeply([ unknown_keys($pr, qw(configure build test runtime develop)) ], [],
		'prereqs has only the phases configure, build, test, runtime, develop');
	for my $phase (sort grep { !is_custom_key($_) } keys %$pr)
	{
		my $ph = $pr->{$phase};
		ok(is_object($ph) && %$ph, "prereqs $phase is a non-empty object");
		next unless is_object($ph);
		is_deeply([ unknown_keys($ph, qw(requires recommends suggests conflicts)) ], [],
			"prereqs $phase has only requires, recommends, suggests, conflicts");
		for my $rel (sort grep { !is_custom_key($_) } keys %$ph)
		{
			my $r = $ph->{$rel};
			ok(is_object($r), "prereqs $phase $rel is an object");
			for my $dep (sort keys %{ is_object($r) ? $r : {} })
			{
				ok(is_term($dep), "prereqs $phase $rel: \"$dep\" is a term");
				ok(is_version_range($r->{$dep}),
					"prereqs $phase $rel: $dep needs a valid version range (" . ($r->{$dep} // 'null') . ')');
			}
		}
	}
}
if (exists $meta->{resources})
{
	my $res = $meta->{resources};
	ok(is_object($res) && %$res, 'resources is a non-empty object');
	is_deeply([ unknown_keys($res, qw(homepage bugtracker repository)) ], [],
		'resources has only homepage, bugtracker and repository');
	ok(is_uri($res->{homepage}), 'resources homepage is a URI') if exists $res->{homepage};
	if (exists $res->{bugtracker})
	{
		my $bt = $res->{bugtracker};
		ok(is_object($bt) && (exists $bt->{web} || exists $bt->{mailto}),
			'resources bugtracker has web or mailto');
		is_deeply([ unknown_keys($bt, qw(web mailto)) ], [], 'resources bugtracker has only web and mailto');
		ok(is_uri($bt->{web}), 'resources bugtracker web is a URI') if exists $bt->{web};
		ok(is_email($bt->{mailto}), 'resources bugtracker mailto is an email address') if exists $bt->{mailto};
	}
	if (exists $res->{repository})
	{
		my $repo = $res->{repository};
		ok(is_object($repo) && (exists $repo->{web} || (exists $repo->{url} && exists $repo->{type})),
			'resources repository has web, or url and type');
		is_deeply([ unknown_keys($repo, qw(url web type)) ], [], 'resources repository has only url, web and type');
		ok(is_uri($repo->{url}), 'resources repository url is a URI') if exists $repo->{url};
		ok(is_uri($repo->{web}), 'resources repository web is a URI') if exists $repo->{web};
		like($repo->{type}, qr/^[a-z]+$/, 'resources repository type is a lowercase VCS name')
		  if exists $repo->{type};
	}
}

# ---------------------------------------------------------------------------
# The versions agree
# ---------------------------------------------------------------------------

my $control = slurp("$root/eventlog.control");
my ($default_version) = $control =~ /^\s*default_version\s*=\s*'([^']*)'/m;
ok(defined $default_version, 'eventlog.control has a default_version');
$default_version //= '';
is($meta->{version}, $default_version, 'META.json version equals eventlog.control default_version');
is($provides->{eventlog}{version}, $default_version,
	'META.json provides eventlog version equals eventlog.control default_version');

# The Makefile takes the first "version" line of META.json: it must be the
# distribution's version.
my ($first_version_line) = grep { /"version"/ } split /\n/, $meta_text;
(my $make_version = $first_version_line // '') =~ s/[^0-9.]//g;
is($make_version, $meta->{version},
	'the first "version" line of META.json (what the Makefile reads) is the distribution version');

# ---------------------------------------------------------------------------
# The install and upgrade scripts
# ---------------------------------------------------------------------------

opendir(my $dh, "$root/sql") or die "cannot read $root/sql: $!";
my @scripts = sort grep { /^eventlog--.*\.sql$/ } readdir($dh);
closedir($dh);

my (%install, @upgrades);
for my $f (@scripts)
{
	if ($f =~ /^eventlog--(.+?)--(.+)\.sql$/)
	{
		push @upgrades, [ $1, $2, $f ];
	}
	elsif ($f =~ /^eventlog--(.+)\.sql$/)
	{
		$install{$1} = $f;
	}
}

ok(exists $install{'0.1.0'}, 'sql/eventlog--0.1.0.sql, the full install script, exists');
is($provides->{eventlog}{file}, 'sql/eventlog--0.1.0.sql',
	'META.json provides eventlog file is the full install script');
ok(@upgrades > 0 || $default_version eq '0.1.0', 'there are upgrade scripts up to the default version');

# Compare two semantic versions (prerelease and build parts not used here).
sub vcmp
{
	my ($a, $b) = @_;
	my @a = split /\./, ($a =~ s/[-+].*//r);
	my @b = split /\./, ($b =~ s/[-+].*//r);
	for my $i (0 .. 2)
	{
		my $c = ($a[$i] // 0) <=> ($b[$i] // 0);
		return $c if $c;
	}
	return 0;
}

my %next;
for my $u (@upgrades)
{
	my ($from, $to, $f) = @$u;
	ok(is_semver($from) && is_semver($to), "$f: both versions are semantic versions");
	cmp_ok(vcmp($from, $to), '<', 0, "$f: upgrades to a later version");
	cmp_ok(vcmp($to, $default_version), '<=', 0, "$f: goes no further than the default version $default_version");
	push @{ $next{$from} }, $to;
}

# Versions reachable from 0.1.0 through upgrade scripts.
my %reach = ('0.1.0' => 1);
my @todo  = ('0.1.0');
while (@todo)
{
	my $v = shift @todo;
	for my $w (@{ $next{$v} // [] })
	{
		push @todo, $w unless $reach{$w}++;
	}
}
ok($reach{$default_version}, "the upgrade scripts lead from 0.1.0 to the default version $default_version");
for my $u (@upgrades)
{
	my ($from, $to, $f) = @$u;
	ok($reach{$from}, "$f: starts at a version reachable from 0.1.0");

	# And leads on to the default version.
	my %seen = ($to => 1);
	my @q    = ($to);
	while (@q)
	{
		my $v = shift @q;
		push @q, grep { !$seen{$_}++ } @{ $next{$v} // [] };
	}
	ok($seen{$default_version}, "$f: leads on to the default version $default_version");
}

# The Makefile installs the full script and every upgrade script.
my $makefile = slurp("$root/Makefile");
like($makefile, qr/^DATA\s*=.*sql\/eventlog--0\.1\.0\.sql/m, 'the Makefile installs sql/eventlog--0.1.0.sql');
like($makefile, qr/^DATA\s*=.*\$\(wildcard sql\/eventlog--\*--\*\.sql\)/m,
	'the Makefile installs every upgrade script');

# The guard: the first line that is not blank or a comment is
# \echo Use "..." to load this file. \quit
for my $f (@scripts)
{
	my $text = slurp("$root/sql/$f");
	(my $stripped = $text) =~ s{/\*.*?\*/}{}gs;
	my ($first) = grep { !/^\s*$/ && !/^\s*--/ } split /\n/, $stripped;
	$first //= '';
	like($first, qr/^\\echo\s+Use\s+".*"\s+to\s+load\s+this\s+file\.\s*\\quit\s*$/,
		"$f: starts with the \\echo ... \\quit guard");
	if ($f =~ /^eventlog--(.+?)--(.+)\.sql$/)
	{
		my $to = $2;
		like($first, qr/"ALTER EXTENSION eventlog UPDATE TO '\Q$to\E'"/,
			"$f: the guard tells to run ALTER EXTENSION eventlog UPDATE TO '$to'");
	}
	else
	{
		like($first, qr/"CREATE EXTENSION eventlog"/, "$f: the guard tells to run CREATE EXTENSION eventlog");
	}
}

done_testing();
