
# Durability (guarantee 6): kill -9 of the postmaster while producers commit.
#
# Every commit a client saw acknowledged must be there after restart, with
# the offset produce() returned and the same value; no offset may appear
# twice; a transaction is all there or not at all; rolled-back records never
# appear; and offsets are never reused after the restart.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $node = EventlogNode::new('crash', "max_prepared_transactions = 10");

# Small segments: crashes also hit producers that are creating one.
my $NPART = 3;
$node->safe_psql('postgres',
	"SELECT eventlog.create_topic('crash', $NPART, segment_records => 300)");

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# Pids of the processes whose parent is $ppid (Linux /proc).
sub child_pids
{
	my ($ppid) = @_;
	my @kids;
	opendir(my $dh, '/proc') or die "cannot read /proc: $!";
	for my $pid (grep { /^\d+$/ } readdir($dh))
	{
		open(my $fh, '<', "/proc/$pid/stat") or next;
		my $stat = <$fh>;
		close($fh);
		next unless defined $stat;
		push @kids, $pid if $stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $ppid;
	}
	closedir($dh);
	return @kids;
}

# kill -9 of the postmaster, then wait until every process it had started
# has noticed and exited, so that the restart does not meet the old shared
# memory.
sub crash_postmaster
{
	my ($node) = @_;
	my $pm = $node->{_pid};
	die "postmaster pid unknown" unless $pm;
	my @kids = child_pids($pm);
	$node->kill9;
	for (my $i = 0; $i < 600; $i++)
	{
		@kids = grep { kill(0, $_) } @kids;
		last unless @kids;
		usleep(100_000);
	}
	die "processes of the killed postmaster still alive: @kids" if @kids;
	return;
}

# All records of one partition read with fetch, from offset $from on, in
# chunks: a list of [offset, value-as-text].
sub fetch_all
{
	my ($node, $topic, $part, $from) = @_;
	return [ map { [ split /\|/, $_, 2 ] }
		  EventlogNode::fetch_lines($node, $topic, $part, from => $from // 0) ];
}

# The same records read by a plain scan of the topic relation.
sub scan_all
{
	my ($node, $topic, $part) = @_;
	my $out = $node->safe_psql('postgres',
		qq{SELECT "offset", convert_from(value, 'UTF8')
		     FROM eventlog_topics."$topic" WHERE partition = $part
		    ORDER BY "offset"});
	return [ map { [ split /\|/, $_, 2 ] } grep { $_ ne '' } split /\n/, $out ];
}

sub max_offset
{
	my ($recs) = @_;
	my $max = -1;
	$max = $_->[0] > $max ? $_->[0] : $max for @$recs;
	return $max;
}

# Offsets strictly increasing: no duplicates, offset order.
sub strictly_increasing
{
	my ($recs) = @_;
	for my $i (1 .. $#$recs)
	{
		return 0 unless $recs->[$i][0] > $recs->[ $i - 1 ][0];
	}
	return 1;
}

# ---------------------------------------------------------------------------
# Part 1: concurrent producers, kill -9 in the middle of the stream
# ---------------------------------------------------------------------------

my $NCLIENTS = 4;
my $NTXN     = 8000;     # far more than get done before the crash
my %planned;             # value => { client, txn, partition, rollback }
my %txn_values;          # "c.t" => [ values ]
my %txn_rollback;        # "c.t" => 1 if the script rolls it back

my $tmp = PostgreSQL::Test::Utils::tempdir;
my @clients;
for my $c (1 .. $NCLIENTS)
{
	my $script = '';
	for my $t (1 .. $NTXN)
	{
		my $rollback = ($t % 10 == 7);
		my $nrec     = 1 + ($t + $c) % 3;
		$script .= "BEGIN;\n";
		for my $r (0 .. $nrec - 1)
		{
			my $val  = "c${c}t${t}r${r}";
			my $part = ($c + $t + $r) % $NPART;
			$planned{$val} = { txn => "$c.$t", partition => $part };
			push @{ $txn_values{"$c.$t"} }, $val;
			$script .=
			  qq{SELECT p.partition, p."offset", '$val' FROM eventlog.produce('crash', '$val'::text, partition => $part) p;\n};
		}
		$txn_rollback{"$c.$t"} = 1 if $rollback;
		$script .= $rollback ? "ROLLBACK;\n" : "COMMIT;\n";
	}
	my $file = "$tmp/client$c.sql";
	append_to_file($file, $script);

	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'), '-f', $file
		],
		'<', '/dev/null', '>', "$tmp/client$c.out", '2>', "$tmp/client$c.err");
	push @clients, $h;
}

# Let the stream run until a good number of records is committed, with a
# checkpoint in the middle (so that recovery starts from pages already on
# disk), then crash.
my $committed = 0;
my $target = 300;
my $checkpointed = 0;
for (my $i = 0; $i < 600; $i++)
{
	$committed = $node->safe_psql('postgres',
		'SELECT count(*) FROM eventlog_topics.crash');
	if ($committed >= $target)
	{
		last if $checkpointed;
		$node->safe_psql('postgres', 'CHECKPOINT');
		$checkpointed = 1;
		$target = $committed + 1200;
	}
	usleep(50_000);
}
ok($checkpointed, 'a checkpoint ran while the producers were committing');
cmp_ok($committed, '>=', $target, "producers committed $committed records before the crash");
my $running = grep { $_->pumpable } @clients;
note "$running of $NCLIENTS clients still running at the crash";

crash_postmaster($node);

for my $h (@clients)
{
	eval { $h->finish; };
}

# What the clients saw acknowledged: rows of a transaction followed by its
# COMMIT tag.
my %acked;    # value => [partition, offset]
my %rolled_back_acked;
my $acked_txns = 0;
for my $c (1 .. $NCLIENTS)
{
	my @pending;
	my $out = slurp_file("$tmp/client$c.out");
	for my $line (split /\n/, $out)
	{
		if ($line eq 'BEGIN')
		{
			@pending = ();
		}
		elsif ($line eq 'COMMIT')
		{
			$acked{ $_->[2] } = [ $_->[0], $_->[1] ] for @pending;
			$acked_txns++;
			@pending = ();
		}
		elsif ($line eq 'ROLLBACK')
		{
			$rolled_back_acked{ $_->[2] } = 1 for @pending;
			@pending = ();
		}
		elsif ($line =~ /^(\d+)\|(\d+)\|(\S+)$/)
		{
			push @pending, [ $1, $2, $3 ];
		}
		else
		{
			fail("unexpected client output line: $line");
		}
	}
}
cmp_ok($acked_txns, '>', 100, "clients saw $acked_txns commits acknowledged");

# The clients stopped because the server went away, not because a statement
# failed before the crash.
for my $c (1 .. $NCLIENTS)
{
	my $err = slurp_file("$tmp/client$c.err");
	unlike($err, qr/ERROR:/, "client $c met no SQL error before the crash");
}

$node->start;

my %present;    # value => [partition, offset]
my %max_before;
for my $p (0 .. $NPART - 1)
{
	my $fetched = fetch_all($node, 'crash', $p, 0);
	my $scanned = scan_all($node, 'crash', $p);
	ok(strictly_increasing($fetched),
		"partition $p: fetch returns each offset once, in order");
	is_deeply($fetched, $scanned,
		"partition $p: fetch and a scan of the relation agree after recovery");

	my %seen_val;
	my @bad;
	for my $rec (@$fetched)
	{
		my ($off, $val) = @$rec;
		if (!exists $planned{$val})
		{
			push @bad, "unknown value '$val' at offset $off";
		}
		elsif ($planned{$val}{partition} != $p)
		{
			push @bad, "value $val in partition $p, produced into $planned{$val}{partition}";
		}
		elsif (exists $present{$val})
		{
			push @bad, "value $val present twice";
		}
		$present{$val} = [ $p, $off ];
	}
	is_deeply(\@bad, [], "partition $p: every record is one that was produced, once");
	$max_before{$p} = max_offset($fetched);
}

# Every acknowledged commit is there, with the same partition and offset.
my @missing;
for my $val (sort keys %acked)
{
	my $want = $acked{$val};
	my $got  = $present{$val};
	if (!defined $got)
	{
		push @missing, "$val (partition $want->[0] offset $want->[1]) lost";
	}
	elsif ($got->[0] != $want->[0] || $got->[1] != $want->[1])
	{
		push @missing,
		  "$val acknowledged at $want->[0]/$want->[1], found at $got->[0]/$got->[1]";
	}
}
is_deeply(\@missing, [], 'every acknowledged record survived the crash unchanged ('
	  . scalar(keys %acked) . ' records)');

# Rolled-back transactions never appear; the others are all there or absent.
my @atomicity;
for my $txn (sort keys %txn_values)
{
	my $vals = $txn_values{$txn};
	my $n    = grep { exists $present{$_} } @$vals;
	next if $n == 0;
	if ($txn_rollback{$txn})
	{
		push @atomicity, "rolled-back transaction $txn has $n records present";
	}
	elsif ($n != @$vals)
	{
		push @atomicity, "transaction $txn has $n of " . scalar(@$vals) . ' records';
	}
}
is_deeply(\@atomicity, [],
	'no rolled-back record, and each transaction is all there or absent');

# Offsets are never reused: new records go above everything seen before,
# including every offset a client was given for a commit it saw.
for my $val (keys %acked)
{
	my ($p, $off) = @{ $acked{$val} };
	$max_before{$p} = $off if $off > $max_before{$p};
}
for my $p (0 .. $NPART - 1)
{
	my $res = $node->safe_psql('postgres',
		qq{SELECT "offset" FROM eventlog.produce('crash', 'after-$p-a'::text, partition => $p);
		   SELECT "offset" FROM eventlog.produce('crash', 'after-$p-b'::text, partition => $p);});
	my ($o1, $o2) = split /\n/, $res;
	cmp_ok($o1, '>', $max_before{$p},
		"partition $p: first offset after the restart ($o1) is above every earlier one ($max_before{$p})");
	cmp_ok($o2, '>', $o1, "partition $p: offsets keep increasing after the restart");

	my $tail = fetch_all($node, 'crash', $p, $max_before{$p} + 1);
	is_deeply($tail, [ [ $o1, "after-$p-a" ], [ $o2, "after-$p-b" ] ],
		"partition $p: fetch after the old tail returns exactly the new records");
}

# ---------------------------------------------------------------------------
# Part 2: a 50k-record batch committed right before the crash, while another
# batch is still uncommitted; and a topic created and filled in the same
# transaction (no WAL for new relations under wal_level = minimal).
# ---------------------------------------------------------------------------

$node->safe_psql('postgres', "SELECT eventlog.create_topic('bulk', segment_records => 25000)");
my $head = $node->safe_psql('postgres',
	qq{SELECT "offset" FROM eventlog.produce('bulk', 'head1'::text, partition => 0);
	   SELECT "offset" FROM eventlog.produce('bulk', 'head2'::text, partition => 0);});
my @expect_bulk;
{
	my @o = split /\n/, $head;
	push @expect_bulk, [ $o[0], 'head1' ], [ $o[1], 'head2' ];
}

# An uncommitted batch, open across the crash.
my $open = $node->background_psql('postgres');
$open->query_safe('BEGIN');
my $open_n = $open->query_safe(
	q{SELECT count(*) FROM eventlog.produce_batch('bulk',
	     array(SELECT 'open' || g FROM generate_series(1, 20000) g), partition => 0)});
is($open_n, '20000', 'uncommitted batch of 20000 records produced');

# The committed batch: 50k records, many pages.
my $batch = $node->safe_psql('postgres',
	q{SELECT b.o, b."offset"
	    FROM eventlog.produce_batch('bulk',
	           array(SELECT 'b' || g FROM generate_series(1, 50000) g),
	           partition => 0) WITH ORDINALITY AS b(partition, "offset", o)});
my @batch_lines = split /\n/, $batch;
is(scalar(@batch_lines), 50000, 'produce_batch returned one row per record');
for my $line (@batch_lines)
{
	my ($i, $off) = split /\|/, $line;
	push @expect_bulk, [ $off, "b$i" ];
}
@expect_bulk = sort { $a->[0] <=> $b->[0] } @expect_bulk;

# Topic created and filled in one transaction.
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT eventlog.create_topic('fresh', 2);
	SELECT eventlog.produce('fresh', 'f0'::text, partition => 0);
	SELECT eventlog.produce('fresh', 'f1'::text, partition => 1);
	SELECT count(*) FROM eventlog.produce_batch('fresh',
	    array(SELECT 'fb' || g FROM generate_series(1, 5000) g), partition => 1);
	COMMIT;
});

crash_postmaster($node);
eval { $open->quit; };
$node->start;

my $bulk = fetch_all($node, 'bulk', 0, 0);
is(scalar(@$bulk), scalar(@expect_bulk),
	'bulk: the committed records, and only those, are there after the crash');
is_deeply($bulk, \@expect_bulk,
	'bulk: every record of the committed batch has its offset and value; the crashed batch is gone');
is_deeply(scan_all($node, 'bulk', 0), $bulk, 'bulk: a scan agrees with fetch');

my $bulk_max = max_offset(\@expect_bulk);
my $after = $node->safe_psql('postgres',
	q{SELECT "offset" FROM eventlog.produce('bulk', 'tail'::text, partition => 0)});
cmp_ok($after, '>', $bulk_max,
	'bulk: the next offset after the restart is above the committed batch');
is_deeply(fetch_all($node, 'bulk', 0, $bulk_max + 1), [ [ $after, 'tail' ] ],
	'bulk: the new record follows the batch');

my $fresh0 = fetch_all($node, 'fresh', 0, 0);
my $fresh1 = fetch_all($node, 'fresh', 1, 0);
is_deeply([ map { $_->[1] } @$fresh0 ], ['f0'],
	'fresh: partition 0 of a topic created in the producing transaction survived');
is_deeply(
	[ map { $_->[1] } @$fresh1 ],
	[ 'f1', map { "fb$_" } 1 .. 5000 ],
	'fresh: partition 1 (single record and batch) survived in order');
ok(strictly_increasing($fresh1), 'fresh: offsets strictly increasing');
is($fresh1->[0][0], 0, 'fresh: offsets start at 0');

$node->stop;
done_testing();
