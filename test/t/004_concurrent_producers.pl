
# Commit-order safety (guarantee 2) with several producers on one partition.
#
# Producers commit in any order, some roll back.  A reader that advances by
# fetch (next offset = last fetched + 1) must see exactly the committed
# records: never an uncommitted or aborted one, never skipping one that
# commits later, never the same one twice.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $node = EventlogNode::new('concurrent', "max_prepared_transactions = 10");

# "offset:value,..." of what fetch returns from $from, in a new transaction
# (each statement of this session runs in its own).
my $fetcher = $node->background_psql('postgres');
sub fetched
{
	my ($topic, $from) = @_;
	return $fetcher->query_safe(
		qq{SELECT string_agg("offset" || ':' || convert_from(value, 'UTF8'), ',' ORDER BY "offset")
		     FROM eventlog.fetch('$topic', 0, $from, 1000)});
}

sub produce_in
{
	my ($session, $topic, $value) = @_;
	return $session->query_safe(
		qq{SELECT "offset" FROM eventlog.produce('$topic', '$value'::text, partition => 0)});
}

sub lso
{
	my ($topic) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT last_stable_offset || '|' || high_watermark || '|' || coalesce(held_by::text, '')
		     FROM eventlog.partitions WHERE topic = '$topic' AND partition = 0});
}

# ---------------------------------------------------------------------------
# Part 1: the scripted scenarios
# ---------------------------------------------------------------------------

$node->safe_psql('postgres', "SELECT eventlog.create_topic('cp')");
my $sa = $node->background_psql('postgres');
my $sb = $node->background_psql('postgres');
my $sc = $node->background_psql('postgres');

# Offset 0 held open while offset 1 commits.
$sa->query_safe('BEGIN');
is(produce_in($sa, 'cp', 'a0'), '0', 'first record of a partition gets offset 0');
my $xid_a = $sa->query_safe('SELECT pg_current_xact_id()::xid');
$sb->query_safe('BEGIN');
is(produce_in($sb, 'cp', 'b1'), '1', 'second producer gets offset 1');
$sb->query_safe('COMMIT');

is(fetched('cp', 0), '', 'offset 0 open, offset 1 committed: fetch from 0 returns nothing');
is(lso('cp'), "0|2|$xid_a",
	'partitions view: last stable offset 0, high watermark 2, held by the open producer');

$sa->query_safe('COMMIT');
is(fetched('cp', 0), '0:a0,1:b1', 'after offset 0 commits, fetch from 0 returns both');
is(lso('cp'), '2|2|', 'partitions view: nothing held back any more');

# Abort variant: offset 2 open while 3 commits, then 2 rolls back.
$sa->query_safe('BEGIN');
is(produce_in($sa, 'cp', 'a2'), '2', 'open producer gets offset 2');
$sb->query_safe('BEGIN');
is(produce_in($sb, 'cp', 'b3'), '3', 'second producer gets offset 3');
$sb->query_safe('COMMIT');
is(fetched('cp', 2), '', 'offset 2 open, 3 committed: fetch from 2 returns nothing');
is(fetched('cp', 0), '0:a0,1:b1', 'fetch from 0 stops before the open offset 2');
$sa->query_safe('ROLLBACK');
is(fetched('cp', 2), '3:b3', 'after offset 2 rolls back, fetch from 2 returns only 3');
is(fetched('cp', 0), '0:a0,1:b1,3:b3', 'fetch from 0 skips the aborted offset');

# Three producers, the earliest commits last.
$sa->query_safe('BEGIN');
my $o4 = produce_in($sa, 'cp', 'x4');
$sb->query_safe('BEGIN');
my $o5 = produce_in($sb, 'cp', 'x5');
my $o6 = produce_in($sc, 'cp', 'x6');    # autocommit
$sb->query_safe('COMMIT');
is(fetched('cp', $o4), '', 'earliest producer open: nothing after it is fetched');
$sa->query_safe('COMMIT');
is(fetched('cp', $o4), "$o4:x4,$o5:x5,$o6:x6", 'earliest commits last: all three in offset order');

# Earliest commits first while the middle one is open, then the middle aborts.
$sa->query_safe('BEGIN');
my $o7 = produce_in($sa, 'cp', 'x7');
$sb->query_safe('BEGIN');
my $o8 = produce_in($sb, 'cp', 'x8');
my $o9 = produce_in($sc, 'cp', 'x9');
$sa->query_safe('COMMIT');
is(fetched('cp', $o7), "$o7:x7", 'fetch returns the committed record and stops at the open one');
is(fetched('cp', $o7 + 1), '', 'and nothing from the open offset on');
$sb->query_safe('ROLLBACK');
is(fetched('cp', $o7), "$o7:x7,$o9:x9", 'after the abort, the later committed record follows');

# Several records per transaction, interleaved with another producer.
$sa->query_safe('BEGIN');
my $m1 = produce_in($sa, 'cp', 'm1');
my $n1 = produce_in($sc, 'cp', 'n1');
my $m2 = produce_in($sa, 'cp', 'm2');
my $n2 = produce_in($sc, 'cp', 'n2');
is(fetched('cp', $m1), '', 'multi-record transaction open: fetch stops at its first record');
$sa->query_safe('COMMIT');
is(fetched('cp', $m1), "$m1:m1,$n1:n1,$m2:m2,$n2:n2",
	'interleaved records come back in offset order');

# Subtransactions: a rolled-back savepoint's record is skipped, a released
# one is kept, and the open parent holds readers back.
$sa->query_safe('BEGIN');
my $s0 = produce_in($sa, 'cp', 's0');
$sa->query_safe('SAVEPOINT sp');
my $s1 = produce_in($sa, 'cp', 's1-dropped');
$sa->query_safe('ROLLBACK TO SAVEPOINT sp');
$sa->query_safe('SAVEPOINT sp2');
my $s2 = produce_in($sa, 'cp', 's2');
$sa->query_safe('RELEASE SAVEPOINT sp2');
my $s3 = produce_in($sc, 'cp', 's3');
is(fetched('cp', $s0), '', 'parent with subtransactions open: nothing fetched');
$sa->query_safe('COMMIT');
is(fetched('cp', $s0), "$s0:s0,$s2:s2,$s3:s3",
	'rolled-back subtransaction skipped, released one kept');

# More subtransactions than a snapshot can list (64): readers must resolve
# the subtransaction ids of the open producer through pg_subtrans.
$sa->query_safe('BEGIN');
my @sub_expect;
my $sub_first;
for my $k (1 .. 80)
{
	$sa->query_safe("SAVEPOINT q$k");
	my $o = produce_in($sa, 'cp', "sub$k");
	$sub_first //= $o;
	if ($k % 9 == 0)
	{
		$sa->query_safe("ROLLBACK TO SAVEPOINT q$k");
	}
	else
	{
		$sa->query_safe("RELEASE SAVEPOINT q$k");
		push @sub_expect, "$o:sub$k";
	}
}
my $sub_after = produce_in($sc, 'cp', 'after-subs');
is(fetched('cp', $sub_first), '', 'producer with 80 subtransactions open: nothing fetched');
my $overflow_reader = $node->background_psql('postgres');
$overflow_reader->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is( $overflow_reader->query_safe(
		qq{SELECT count(*) FROM eventlog.fetch('cp', 0, $sub_first, 1000)}),
	'0', 'repeatable read reader with an overflowed snapshot: nothing fetched');
$sa->query_safe('COMMIT');
is( $overflow_reader->query_safe(
		qq{SELECT count(*) FROM eventlog.fetch('cp', 0, $sub_first, 1000)}),
	'0', 'same overflowed snapshot after the commit: still nothing');
$overflow_reader->query_safe('COMMIT');
$overflow_reader->quit;
is(fetched('cp', $sub_first), join(',', @sub_expect, "$sub_after:after-subs"),
	'after the commit: released subtransactions kept, rolled-back ones skipped');

# A reader whose snapshot predates a commit must stop at that record, not
# skip it (it is in progress for that snapshot), even once it has committed.
$sa->query_safe('BEGIN');
my $r0 = produce_in($sa, 'cp', 'late');
my $r1 = produce_in($sc, 'cp', 'after-late');
my $reader = $node->background_psql('postgres');
$reader->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is( $reader->query_safe(
		qq{SELECT count(*) FROM eventlog.fetch('cp', 0, $r0, 100)}),
	'0', 'repeatable read reader: nothing while the producer is open');
$sa->query_safe('COMMIT');
is( $reader->query_safe(
		qq{SELECT count(*) FROM eventlog.fetch('cp', 0, $r0, 100)}),
	'0',
	'same snapshot after the commit: still nothing (the record is not skipped)');
my $r2 = produce_in($sc, 'cp', 'after-snapshot');
is( $reader->query_safe(
		qq{SELECT count(*) FROM eventlog.fetch('cp', 0, $r1, 100)}),
	'1',
	'same snapshot: the record committed before it is seen');
is( $reader->query_safe(
		qq{SELECT count(*) FROM eventlog.fetch('cp', 0, $r2, 100)}),
	'0',
	'same snapshot: a record committed after it is not seen');
$reader->query_safe('COMMIT');
is(fetched('cp', $r0), "$r0:late,$r1:after-late,$r2:after-snapshot",
	'a new snapshot sees the late commit and what follows');
$reader->quit;

# Everything committed, in offset order, nothing aborted.
is( fetched('cp', 0),
	join(',',
		'0:a0', '1:b1', '3:b3', "$o4:x4", "$o5:x5", "$o6:x6", "$o7:x7", "$o9:x9",
		"$m1:m1", "$n1:n1", "$m2:m2", "$n2:n2", "$s0:s0", "$s2:s2", "$s3:s3",
		@sub_expect, "$sub_after:after-subs",
		"$r0:late", "$r1:after-late", "$r2:after-snapshot"),
	'the whole partition holds exactly the committed records');

# ---------------------------------------------------------------------------
# Part 2: random interleaving of four producers, checked step by step
# against a model, with a reader advancing by fetch after every step.
# ---------------------------------------------------------------------------

# Segments of 7 offsets: producers roll over to new segments all the time.
$node->safe_psql('postgres', "SELECT eventlog.create_topic('rnd', segment_records => 7)");
srand(20240515);
my @sessions = map { $node->background_psql('postgres') } 1 .. 4;
my @open_offsets = map { [] } 1 .. 4;    # per session, offsets of its open transaction
my %state;     # offset => 'open' | 'committed' | 'aborted'
my %value;     # offset => value
my $pos = 0;   # reader position
my @seen;      # what the reader saw, "offset:value"
my $last_assigned = -1;
my @step_errors;

for my $step (1 .. 300)
{
	my $i = int(rand(4));
	my $s = $sessions[$i];
	my $open = $open_offsets[$i];
	my $r = rand();
	if (!@$open || $r < 0.4)
	{
		$s->query_safe('BEGIN') unless @$open;
		my $val = "s${i}p$step";
		my $off = produce_in($s, 'rnd', $val);
		push @step_errors, "step $step: offset $off not above $last_assigned"
		  unless $off > $last_assigned;
		$last_assigned = $off;
		$state{$off} = 'open';
		$value{$off} = $val;
		push @$open, $off;
	}
	elsif ($r < 0.8)
	{
		$s->query_safe('COMMIT');
		$state{$_} = 'committed' for @$open;
		@$open = ();
	}
	else
	{
		$s->query_safe('ROLLBACK');
		$state{$_} = 'aborted' for @$open;
		@$open = ();
	}

	# What fetch from the reader's position must return.
	my @expect;
	for my $off (sort { $a <=> $b } grep { $_ >= $pos } keys %state)
	{
		last if $state{$off} eq 'open';
		push @expect, "$off:$value{$off}" if $state{$off} eq 'committed';
	}
	my $got = fetched('rnd', $pos);
	my $want = join(',', @expect);
	if ($got ne $want)
	{
		push @step_errors, "step $step: fetch from $pos returned '$got', expected '$want'";
		last;
	}
	if (@expect)
	{
		push @seen, @expect;
		($pos) = $expect[-1] =~ /^(\d+):/;
		$pos++;
	}
}

# Finish every open transaction, alternately committing and aborting.
for my $i (0 .. 3)
{
	next unless @{ $open_offsets[$i] };
	my $commit = $i % 2 == 0;
	$sessions[$i]->query_safe($commit ? 'COMMIT' : 'ROLLBACK');
	$state{$_} = $commit ? 'committed' : 'aborted' for @{ $open_offsets[$i] };
}
$_->quit for @sessions;

for (my $i = 0; $i < 100; $i++)
{
	my $got = fetched('rnd', $pos);
	last if $got eq '';
	my @recs = split /,/, $got;
	push @seen, @recs;
	($pos) = $recs[-1] =~ /^(\d+):/;
	$pos++;
}

is_deeply(\@step_errors, [], 'every fetch during the random interleaving matched the model');
my @committed = map { "$_:$value{$_}" }
  sort { $a <=> $b } grep { $state{$_} eq 'committed' } keys %state;
my $naborted = grep { $state{$_} eq 'aborted' } keys %state;
cmp_ok(scalar(@committed), '>', 50, scalar(@committed) . " records committed, $naborted aborted");
cmp_ok($naborted, '>', 10, 'some transactions rolled back');
is_deeply(\@seen, \@committed,
	'the advancing reader saw exactly the committed records, in order, once each');

# ---------------------------------------------------------------------------
# Part 3: truly concurrent producers (pgbench) and a concurrent reader.
# Each producing transaction also writes its (offset, value) to a heap
# ledger in the same transaction, so the ledger is the truth about what
# committed.
# ---------------------------------------------------------------------------

$node->safe_psql('postgres', q{
	SELECT eventlog.create_topic('cc', segment_records => 7);
	CREATE TABLE ledger (off bigint PRIMARY KEY, val text NOT NULL);
	CREATE SEQUENCE vals;
});

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $ins = q{INSERT INTO ledger (off, val) SELECT p."offset", v.val FROM (SELECT 'c' || :client_id || '-' || nextval('vals') AS val) v, LATERAL eventlog.produce('cc', v.val, partition => 0) p;};
my $ins_batch = q{WITH v AS (SELECT array(SELECT 'c' || :client_id || '-' || nextval('vals') FROM generate_series(1, 5)) AS vals) INSERT INTO ledger (off, val) SELECT b."offset", v.vals[b.o] FROM v, LATERAL eventlog.produce_batch('cc', v.vals, partition => 0) WITH ORDINALITY AS b(partition, "offset", o);};
append_to_file("$tmp/produce.sql", <<"EOS");
\\set abort random(1, 100)
\\set more random(1, 3)
\\set pause random(0, 4)
BEGIN;
$ins
\\if :more >= 2
$ins
\\endif
\\sleep :pause ms
\\if :more = 3
$ins_batch
\\endif
\\if :abort <= 25
ROLLBACK;
\\else
COMMIT;
\\endif
EOS

my ($pgb_out, $pgb_err) = ('', '');
my $pgbench = IPC::Run::start(
	[
		'pgbench', '-n', '-c', '4', '-j', '2', '-t', '300',
		'-f', "$tmp/produce.sql",
		'-h', $node->host, '-p', $node->port, 'postgres'
	],
	'<', '/dev/null', '>', \$pgb_out, '2>', \$pgb_err);

my $rd = $node->background_psql('postgres');
my @cseen;
my @read_errors;
my $cpos = 0;
my $reads = 0;
my $deadline = time() + 90;
my $read_once = sub {
	my $res = $rd->query_safe(qq{
		WITH f AS MATERIALIZED (
		    SELECT "offset" AS off, convert_from(value, 'UTF8') AS val
		      FROM eventlog.fetch('cc', 0, $cpos, 500))
		SELECT 'F', f.off, f.val, coalesce(l.val = f.val, false)
		  FROM f LEFT JOIN ledger l ON l.off = f.off
		UNION ALL
		SELECT 'M', l.off, l.val, false
		  FROM ledger l
		 WHERE l.off >= $cpos AND l.off <= (SELECT max(off) FROM f)
		   AND NOT EXISTS (SELECT 1 FROM f WHERE f.off = l.off)
		UNION ALL
		SELECT 'L', last_stable_offset, '', (SELECT coalesce(max(off), -1) FROM f) < last_stable_offset
		  FROM eventlog.partitions WHERE topic = 'cc' AND partition = 0});
	$reads++;
	my @f;
	for my $line (split /\n/, $res)
	{
		my ($kind, $off, $val, $ok) = split /\|/, $line;
		if ($kind eq 'F')
		{
			push @read_errors, "fetched $off:$val which is not committed in the same snapshot"
			  unless $ok eq 't';
			push @f, "$off:$val";
		}
		elsif ($kind eq 'M')
		{
			push @read_errors, "fetch from $cpos skipped committed record $off:$val";
		}
		elsif ($kind eq 'L')
		{
			push @read_errors, "fetch from $cpos went past the last stable offset $off"
			  unless $ok eq 't';
		}
	}
	if (@f)
	{
		push @cseen, @f;
		($cpos) = $f[-1] =~ /^(\d+):/;
		$cpos++;
	}
	return scalar(@f);
};

while (time() < $deadline)
{
	$pgbench->pump_nb;
	last unless $pgbench->pumpable;
	if ($reads % 10 == 9)
	{
		# a few reads inside one repeatable-read transaction
		$rd->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
		$read_once->() for 1 .. 3;
		$rd->query_safe('COMMIT');
	}
	else
	{
		$read_once->();
	}
	last if @read_errors;
}
ok($pgbench->finish, 'pgbench ran to completion') or diag($pgb_err);
note "reader made $reads fetches while producers ran";

# Drain what is left.
for (my $i = 0; $i < 1000; $i++)
{
	last unless $read_once->();
}
$rd->quit;

is_deeply(\@read_errors, [], 'no fetch returned an uncommitted record, skipped one, or passed the last stable offset');
my $ledger = $node->safe_psql('postgres',
	q{SELECT string_agg(off || ':' || val, ',' ORDER BY off) FROM ledger});
my @ledger = split /,/, $ledger;
my $hw = $node->safe_psql('postgres',
	q{SELECT high_watermark FROM eventlog.partitions WHERE topic = 'cc'});
cmp_ok(scalar(@ledger), '>', 300, scalar(@ledger) . ' records committed concurrently');
cmp_ok($hw, '>', scalar(@ledger), "high watermark $hw: some offsets belong to rolled-back transactions");
is_deeply(\@cseen, \@ledger,
	'the concurrent reader saw exactly the committed records, in offset order, once each');
my @refetch;
for (my ($i, $from) = (0, 0); $i < 1000; $i++)
{
	my $got = fetched('cc', $from);
	last if $got eq '';
	my @recs = split /,/, $got;
	push @refetch, @recs;
	($from) = $recs[-1] =~ /^(\d+):/;
	$from++;
}
is_deeply(\@refetch, \@ledger, 'fetching again from 0 returns exactly the committed records');
is( $node->safe_psql('postgres',
		q{SELECT string_agg("offset" || ':' || convert_from(value, 'UTF8'), ',' ORDER BY "offset")
		    FROM eventlog_topics.cc}),
	$ledger,
	'a scan of the topic relation returns exactly the committed records');

$sa->quit;
$sb->quit;
$sc->quit;
$fetcher->quit;
$node->stop;
done_testing();
