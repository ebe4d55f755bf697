# What the TAP tests share: throwaway clusters with eventlog (and a
# streaming standby of one), psql calls, polling, and reading a partition
# with fetch in chunks.  Functions, called with the package name; those that
# talk to a server take the node first.
#
#   use FindBin;
#   use lib "$FindBin::RealBin/../perl";
#   use EventlogNode;
#   my $node = EventlogNode::new('name', "max_prepared_transactions = 10");
#   my $one = EventlogNode::query($node, 'SELECT 1', db => 'postgres');
#   my ($out, $err) = EventlogNode::try_query($node, 'SELECT 1/0');
#   ok(EventlogNode::poll_until($node, 'SELECT count(*) FROM t', '3', 10), 'three rows');
#   my @lines = EventlogNode::fetch_lines($node, 'orders', 0, chunk => 1000);
package EventlogNode;

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use Time::HiRes qw(time usleep);

# ---------------------------------------------------------------------------
# Clusters
# ---------------------------------------------------------------------------

# A started cluster named $name with eventlog preloaded and the extension
# created in database postgres.  $conf (optional) is appended to
# postgresql.conf after the shared_preload_libraries line.  Options:
#   init => { ... }   passed to init (allows_streaming => 1 for a primary)
#   preload => 0      no shared_preload_libraries line
#   extension => 0    no CREATE EXTENSION (the test creates it itself)
sub new
{
	my ($name, $conf, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opt{init} // {} });
	my @lines;
	push @lines, "shared_preload_libraries = 'eventlog'" if $opt{preload} // 1;
	push @lines, $conf if defined $conf;
	$node->append_conf('postgresql.conf', join("\n", @lines)) if @lines;
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION eventlog') if $opt{extension} // 1;
	return $node;
}

# A started streaming standby named $name of $primary (made with
# init => { allows_streaming => 1 }), from a base backup taken now.
sub new_standby
{
	my ($primary, $name) = @_;
	my $backup = "${name}_base";
	$primary->backup($backup);
	my $standby = PostgreSQL::Test::Cluster->new($name);
	$standby->init_from_backup($primary, $backup, has_streaming => 1);
	$standby->start;
	return $standby;
}

# Waits until $standby has replayed everything $primary wrote so far.
sub catchup
{
	my ($primary, $standby) = @_;
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
	return;
}

# ---------------------------------------------------------------------------
# psql calls
# ---------------------------------------------------------------------------

# The output of $sql on $node (dies on an error, as safe_psql does).
# Options: db => database (default postgres); the others go to safe_psql
# (extra_params => [...]).
sub query
{
	my ($node, $sql, %opt) = @_;
	my $db = delete $opt{db} // 'postgres';
	return $node->safe_psql($db, $sql, %opt);
}

# $sql on $node, which may fail: (output, error).  The error is '' if psql
# succeeded, else what psql printed on stderr, without its "psql:<stdin>:N: "
# prefixes.  Options as for query.
sub try_query
{
	my ($node, $sql, %opt) = @_;
	my $db = delete $opt{db} // 'postgres';
	my ($ret, $out, $err) = $node->psql($db, $sql, %opt);
	$err =~ s/^psql:<stdin>:\d+: //mg;
	return ($out, $ret == 0 ? '' : $err);
}

# ---------------------------------------------------------------------------
# Polling
# ---------------------------------------------------------------------------

# Calls $cond until it returns true, $interval seconds apart (default 0.1),
# for $secs seconds: it is called at least once, and once more when the
# time is up.  Returns what $cond returned last, so true if it held in time.
sub wait_until
{
	my ($secs, $cond, $interval) = @_;
	my $until = time() + $secs;
	while (1)
	{
		my $got = $cond->();
		return $got if $got || time() > $until;
		usleep(($interval // 0.1) * 1_000_000);
	}
}

# Runs $sql on $node until it returns $want; true (1) if it did within
# $secs, else 0.  Options: db => database (default postgres), interval =>
# seconds between tries (default 0.1), errors_ok => 1: a query that fails
# counts as "not yet" (without it, a failing query dies, as safe_psql does).
sub poll_until
{
	my ($node, $sql, $want, $secs, %opt) = @_;
	my $db = $opt{db} // 'postgres';
	my $cond = sub {
		return $node->safe_psql($db, $sql) eq $want unless $opt{errors_ok};
		my ($ret, $out) = $node->psql($db, $sql);
		return $ret == 0 && $out eq $want;
	};
	return wait_until($secs, $cond, $opt{interval}) ? 1 : 0;
}

# ---------------------------------------------------------------------------
# Reading a partition
# ---------------------------------------------------------------------------

# Every row eventlog.fetch returns for partition $part of $topic, read in
# chunks until one comes back empty: a list of psql's lines, the columns
# being $opt{columns}.  Each chunk starts after the offset of the last line
# read, which $opt{offset_re} captures.  Options:
#   columns   => the select list over fetch's rows (default: "offset" and the value as text)
#   offset_re => a regexp capturing the offset in a line (default: the first column)
#   from      => the first offset to read (default 0)
#   chunk     => records per call (default 5000)
#   db        => database (default postgres)
sub fetch_lines
{
	my ($node, $topic, $part, %opt) = @_;
	my $columns = $opt{columns} // q{"offset", convert_from(value, 'UTF8')};
	my $offset_re = $opt{offset_re} // qr/^(\d+)\|/;
	my $chunk = $opt{chunk} // 5000;
	my $db = $opt{db} // 'postgres';
	my $next = $opt{from} // 0;
	my @lines;
	for (my $i = 0; $i < 10_000; $i++)
	{
		my $res = $node->safe_psql($db,
			qq{SELECT $columns FROM eventlog.fetch('$topic', $part, $next, $chunk)});
		last if $res eq '';
		my @got = split /\n/, $res;
		push @lines, @got;
		($next) = $got[-1] =~ $offset_re
		  or die "cannot read the offset of the last line fetched: $got[-1]";
		$next++;
	}
	return @lines;
}

1;
