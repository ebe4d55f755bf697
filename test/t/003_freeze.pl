
# Freezing: VACUUM on a partition freezes its records and advances
# pg_class.relfrozenxid, or a long-lived log runs into transaction id
# wraparound.  Freezing must not change what readers see: committed records
# stay, aborted ones stay invisible, records of open transactions are not
# frozen (relfrozenxid never passes an open producer), and frozen records
# survive a crash.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

# Only the VACUUMs of this test may freeze: autovacuum off.
my $node = EventlogNode::new('freeze', "max_prepared_transactions = 10\nautovacuum = off");

# The first segment of each partition: VACUUM of a topic reaches them all.
my $leaf0 = q{eventlog_topics."fz$0$0"};
my $leaf1 = q{eventlog_topics."fz$1$0"};

# Full text of fetch over one partition from an offset, read in chunks.
sub fetch_text
{
	my ($part, $from) = @_;
	return join("\n",
		EventlogNode::fetch_lines($node, 'fz', $part, from => $from // 0,
			columns => q{"offset", key, convert_from(value, 'UTF8'), headers, ts}));
}

sub scan_text
{
	my ($part) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT "offset", key, convert_from(value, 'UTF8'), headers, ts
		     FROM eventlog_topics.fz WHERE partition = $part ORDER BY "offset"});
}

sub relfrozenxid
{
	my ($rel) = @_;
	return $node->safe_psql('postgres',
		"SELECT relfrozenxid FROM pg_class WHERE oid = '$rel'::regclass");
}

sub frozen_age
{
	my ($rel) = @_;
	return $node->safe_psql('postgres',
		"SELECT age(relfrozenxid) FROM pg_class WHERE oid = '$rel'::regclass");
}

# Is xid $x older than xid $y (modulo-2^32 comparison via age())?
sub xid_older
{
	my ($x, $y) = @_;
	return $node->safe_psql('postgres',
		"SELECT age('$x'::xid) > age('$y'::xid)") eq 't';
}

sub burn_xids
{
	my ($n) = @_;
	$node->safe_psql('postgres', "SELECT txid_current();\n" x $n);
	return;
}

$node->safe_psql('postgres', "SELECT eventlog.create_topic('fz', 2)");

# Many producing transactions, a few aborted, plus a batch of many pages.
my $sql = '';
for my $i (1 .. 400)
{
	my $p = $i % 2;
	if ($i % 25 == 0)
	{
		$sql .= "BEGIN; SELECT eventlog.produce('fz', 'aborted-$i'::text, partition => $p); ROLLBACK;\n";
	}
	else
	{
		$sql .= "SELECT eventlog.produce('fz', 'v$i'::text, key => 'k$i', partition => $p);\n";
	}
}
$node->safe_psql('postgres', $sql);
$node->safe_psql('postgres', q{
	SELECT count(*) FROM eventlog.produce_batch('fz',
	    array(SELECT 'batch-' || g FROM generate_series(1, 10000) g), partition => 0);
});

my $content0 = fetch_text(0);
my $content1 = fetch_text(1);
is(scalar(my @l0 = split /\n/, $content0), 192 + 10000, 'partition 0 holds the committed records');
is(scalar(my @l1 = split /\n/, $content1), 192, 'partition 1 holds the committed records');
is($content0, scan_text(0), 'fetch and a scan agree before freezing');

my $BURN = 1000;
my $fx0 = relfrozenxid($leaf0);
burn_xids($BURN);
my $age_before = frozen_age($leaf0);
cmp_ok($age_before, '>=', $BURN + 400,
	"age(relfrozenxid) of the leaf grew with the transactions ($age_before)");

# ---------------------------------------------------------------------------
# VACUUM (FREEZE) on a leaf advances its relfrozenxid
# ---------------------------------------------------------------------------

$node->safe_psql('postgres', "VACUUM (FREEZE) $leaf0");
my $fx1 = relfrozenxid($leaf0);
my $age_after = frozen_age($leaf0);
isnt($fx1, $fx0, "VACUUM (FREEZE) changed relfrozenxid ($fx0 -> $fx1)");
ok(xid_older($fx0, $fx1), 'the new relfrozenxid is newer than the old one');
cmp_ok($age_after, '<', $BURN,
	"age(relfrozenxid) after VACUUM (FREEZE) is small ($age_after < $BURN xids burnt)");
is(fetch_text(0), $content0, 'frozen records are fetched unchanged');
is(scan_text(0), $content0, 'frozen records are scanned unchanged');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog_topics.fz WHERE convert_from(value, 'UTF8') LIKE 'aborted%'}),
	'0',
	'aborted records stay invisible after freezing');

# An aggressive plain VACUUM (what anti-wraparound autovacuum runs) on the
# other leaf advances it too.
burn_xids($BURN);
my $fx1_leaf1 = relfrozenxid($leaf1);
$node->safe_psql('postgres', "SET vacuum_freeze_table_age = 0; SET vacuum_freeze_min_age = 0; VACUUM $leaf1");
cmp_ok(frozen_age($leaf1), '<', $BURN,
	'aggressive VACUUM advances relfrozenxid of the other leaf');
ok(xid_older($fx1_leaf1, relfrozenxid($leaf1)), 'relfrozenxid of partition 1 moved forward');
is(fetch_text(1), $content1, 'partition 1 unchanged by VACUUM');

# ---------------------------------------------------------------------------
# Freezing with open producers: relfrozenxid must not pass them, their
# records must not be frozen as committed, aborted records stay aborted.
# ---------------------------------------------------------------------------

my $sa = $node->background_psql('postgres');
my $sb = $node->background_psql('postgres');
$sa->query_safe('BEGIN');
my $off_a = $sa->query_safe(
	q{SELECT "offset" FROM eventlog.produce('fz', 'open-then-commit'::text, partition => 0)});
my $xid_a = $sa->query_safe('SELECT pg_current_xact_id()::xid');
$sb->query_safe('BEGIN');
my $off_b = $sb->query_safe(
	q{SELECT "offset" FROM eventlog.produce('fz', 'open-then-abort'::text, partition => 0)});
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT eventlog.produce('fz', 'aborted-before-freeze'::text, partition => 0);
	ROLLBACK;
});
my $off_c = $node->safe_psql('postgres',
	q{SELECT "offset" FROM eventlog.produce('fz', 'committed-after-open'::text, partition => 0)});
burn_xids(200);

$node->safe_psql('postgres', "VACUUM (FREEZE) $leaf0");
my $fx2 = relfrozenxid($leaf0);
ok(!xid_older($xid_a, $fx2),
	"relfrozenxid ($fx2) does not pass the open producer's transaction ($xid_a)");
is(fetch_text(0), $content0,
	'while a producer is open, fetch still stops before its record after freezing');

$sa->query_safe('COMMIT');
$sb->query_safe('ROLLBACK');
$sa->quit;
$sb->quit;

my $tail = $node->safe_psql('postgres',
	qq{SELECT string_agg("offset" || ':' || convert_from(value, 'UTF8'), ',' ORDER BY "offset")
	     FROM eventlog.fetch('fz', 0, $off_a, 100)});
is($tail, "$off_a:open-then-commit,$off_c:committed-after-open",
	'after commit and abort: the committed open record and the later one, nothing aborted');

my $tail_rows = $node->safe_psql('postgres',
	qq{SELECT "offset", key, convert_from(value, 'UTF8'), headers, ts
	     FROM eventlog.fetch('fz', 0, $off_a, 100)});
burn_xids($BURN);
$node->safe_psql('postgres', "VACUUM (FREEZE) $leaf0");
cmp_ok(frozen_age($leaf0), '<', $BURN,
	'once the producers ended, VACUUM (FREEZE) advances relfrozenxid again');
my $content0_final = fetch_text(0);
is($content0_final, "$content0\n$tail_rows",
	'after the second freeze the partition holds exactly the earlier records plus the two committed ones');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog_topics.fz
		   WHERE convert_from(value, 'UTF8') IN ('open-then-abort', 'aborted-before-freeze')}),
	'0',
	'aborted records are still invisible to a scan after freezing');
is(scan_text(0), $content0_final, 'fetch and a scan agree after freezing');

# Database-wide freeze: datfrozenxid advances, so no relation of the
# extension holds it back.
burn_xids($BURN);
$node->safe_psql('postgres', 'VACUUM (FREEZE)');
cmp_ok($node->safe_psql('postgres',
		"SELECT age(datfrozenxid) FROM pg_database WHERE datname = 'postgres'"),
	'<', $BURN, 'database-wide VACUUM (FREEZE) advances datfrozenxid');
is( $node->safe_psql('postgres',
		qq{SELECT c.oid::regclass FROM pg_class c
		    WHERE c.relkind IN ('r', 'm', 't') AND age(c.relfrozenxid) >= $BURN}),
	'',
	'no relation (topic leaves and their TOAST included) keeps an old relfrozenxid');

# ---------------------------------------------------------------------------
# Frozen records survive a crash.
# ---------------------------------------------------------------------------

my $fx_before_crash = relfrozenxid($leaf0);
$node->stop('immediate');
$node->start;
is(relfrozenxid($leaf0), $fx_before_crash, 'relfrozenxid survives the crash');
is(fetch_text(0), $content0_final, 'frozen records of partition 0 are fetched after the crash');
is(fetch_text(1), $content1, 'frozen records of partition 1 are fetched after the crash');
is(scan_text(0), $content0_final, 'and scanned after the crash');

# Producing continues above the frozen records.
my $next = $node->safe_psql('postgres',
	q{SELECT "offset" FROM eventlog.produce('fz', 'after-crash'::text, partition => 0)});
my ($last_old) = (split /\n/, $content0_final)[-1] =~ /^(\d+)\|/;
cmp_ok($next, '>', $last_old, 'a new record after the crash gets an offset above the frozen ones');
is( $node->safe_psql('postgres',
		qq{SELECT string_agg(convert_from(value, 'UTF8'), ',') FROM eventlog.fetch('fz', 0, $last_old + 1, 100)}),
	'after-crash',
	'and is fetched after them');

# ---------------------------------------------------------------------------
# Wraparound: move the transaction counter so far ahead that the records'
# original transaction ids lie more than 2^31 transactions back, with the
# commit log of those ids truncated.  Records that were really frozen stay
# visible; a record still carrying its xmin would look like it came from the
# future (or its commit status would be gone).
# ---------------------------------------------------------------------------

my $pgdata = $node->data_dir;

# Freeze every database, so that the commit log can be truncated up to the
# new horizon.
sub freeze_all_databases
{
	for my $db ('template0', 'template1', 'postgres')
	{
		$node->safe_psql($db, 'VACUUM (FREEZE)');
	}
	return;
}

# Jump the next transaction id to $xid (a multiple of 2^20, the start of a
# pg_xact segment, which the server creates itself).
sub jump_xid
{
	my ($xid) = @_;
	$node->stop;
	command_ok([ 'pg_resetwal', '-x', $xid, '-D', $pgdata ],
		sprintf('pg_resetwal moves the next transaction id to %u', $xid));
	$node->start;
	return;
}

$node->safe_psql('postgres', 'ALTER DATABASE template0 WITH ALLOW_CONNECTIONS true');
$node->safe_psql('postgres', "VACUUM (FREEZE) $leaf0; VACUUM (FREEZE) $leaf1");
my $content0_wrap = fetch_text(0);
my $first_xid = $node->safe_psql('postgres', 'SELECT pg_current_xact_id()::xid');

my $J1 = 0x40000000;
jump_xid($J1);
my $w1 = $node->safe_psql('postgres',
	q{SELECT "offset" FROM eventlog.produce('fz', 'at-1G'::text, partition => 0)});
freeze_all_databases();
ok(!-e "$pgdata/pg_xact/0000",
	'the commit log segment of the original transactions has been truncated');
is(fetch_text(0), $content0_wrap . "\n" . $node->safe_psql('postgres',
		qq{SELECT "offset", key, convert_from(value, 'UTF8'), headers, ts FROM eventlog.fetch('fz', 0, $w1, 1)}),
	'frozen records are readable without their commit log');
my $content0_j1 = fetch_text(0);
is(fetch_text(1), $content1, 'partition 1 likewise');

my $J2 = 0x90000000;
jump_xid($J2);
ok( $node->safe_psql('postgres',
		"SELECT age('$first_xid'::xid) < 0"),
	'transaction ids of the original records are now more than 2^31 back');
is(fetch_text(0), $content0_j1,
	'after wraparound of the original transaction ids, every record is still fetched');
is(fetch_text(1), $content1, 'partition 1 likewise');
is(scan_text(0), $content0_j1, 'and scanned');
my $w2 = $node->safe_psql('postgres',
	q{SELECT "offset" FROM eventlog.produce('fz', 'at-2.4G'::text, partition => 0)});
cmp_ok($w2, '>', $w1, 'producing continues with higher offsets');
is( $node->safe_psql('postgres',
		qq{SELECT string_agg(convert_from(value, 'UTF8'), ',') FROM eventlog.fetch('fz', 0, $w1, 100)}),
	'at-1G,at-2.4G',
	'records produced at both horizons are fetched');
$node->safe_psql('postgres', "VACUUM (FREEZE) $leaf0");
cmp_ok(frozen_age($leaf0), '<', $BURN, 'VACUUM (FREEZE) still advances relfrozenxid past the wraparound');

$node->stop;
done_testing();
