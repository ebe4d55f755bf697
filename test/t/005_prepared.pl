
# Prepared transactions (guarantee 2 with two-phase commit): a PREPAREd
# producing transaction may still commit, so it holds readers back like any
# open transaction, also across a clean restart and a crash.  COMMIT
# PREPARED delivers its records and the later ones; ROLLBACK PREPARED
# delivers only the later ones.  Offsets of prepared records are never
# reused after a restart.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $node = EventlogNode::new('prepared', "max_prepared_transactions = 10");
$node->safe_psql('postgres', "SELECT eventlog.create_topic('pt')");

# List of "offset:value" fetched from $from on, in chunks.
sub fetch_list
{
	my ($from) = @_;
	return [
		EventlogNode::fetch_lines($node, 'pt', 0, from => $from,
			columns => q{"offset" || ':' || convert_from(value, 'UTF8')},
			offset_re => qr/^(\d+):/) ];
}

sub produce
{
	my ($value) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT "offset" FROM eventlog.produce('pt', '$value'::text, partition => 0)});
}

sub held_by_prepared
{
	my ($gid) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT p.last_stable_offset, p.held_by = x.transaction
		     FROM eventlog.partitions p, pg_prepared_xacts x
		    WHERE p.topic = 'pt' AND p.partition = 0 AND x.gid = '$gid'});
}

my %expect;    # offset => value of every record that must be fetched at the end

sub expected_from
{
	my ($from) = @_;
	return [ map { "$_:$expect{$_}" } sort { $a <=> $b } grep { $_ >= $from } keys %expect ];
}

# ---------------------------------------------------------------------------
# COMMIT PREPARED, across a clean restart and a crash
# ---------------------------------------------------------------------------

my $c0 = produce('c0');
$expect{$c0} = 'c0';

my $p1 = $node->safe_psql('postgres', q{
	BEGIN;
	SELECT "offset" FROM eventlog.produce('pt', 'prep1'::text, partition => 0);
	PREPARE TRANSACTION 'p1';
});
is($p1, $c0 + 1, 'prepared record got the next offset');

my $a1 = produce('after1');
my $a2 = produce('after2');
is_deeply(fetch_list(0), ["$c0:c0"], 'fetch stops before the prepared record');
is_deeply(fetch_list($p1), [], 'fetch from the prepared record returns nothing');
is(held_by_prepared('p1'), "$p1|t",
	'partitions view: last stable offset is the prepared record, held by the prepared transaction');

$node->restart;
is( $node->safe_psql('postgres', q{SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'p1'}),
	'1', 'the prepared transaction survived the restart');
is_deeply(fetch_list(0), ["$c0:c0"], 'after a clean restart, fetch still stops before the prepared record');
is(held_by_prepared('p1'), "$p1|t", 'and the view still names the prepared transaction');

my $a3 = produce('after-restart');
cmp_ok($a3, '>', $a2, 'offsets after the restart continue above the earlier ones');

$node->stop('immediate');
$node->start;
is_deeply(fetch_list(0), ["$c0:c0"], 'after a crash, fetch still stops before the prepared record');
is_deeply(fetch_list($a1), ["$a1:after1", "$a2:after2", "$a3:after-restart"],
	'records after the prepared one are intact (fetched from past it)');
my $a4 = produce('after-crash');
cmp_ok($a4, '>', $a3, 'offsets after the crash continue above the earlier ones');

$node->safe_psql('postgres', "COMMIT PREPARED 'p1'");
@expect{ $p1, $a1, $a2, $a3, $a4 } = ('prep1', 'after1', 'after2', 'after-restart', 'after-crash');
is_deeply(fetch_list(0), expected_from(0),
	'after COMMIT PREPARED: the prepared record and all later ones, in offset order');

# ---------------------------------------------------------------------------
# ROLLBACK PREPARED, with another prepared transaction behind it holding the
# highest offsets at the moment of the crash
# ---------------------------------------------------------------------------

my $p2_out = $node->safe_psql('postgres', q{
	BEGIN;
	SELECT "offset" FROM eventlog.produce('pt', 'prep2'::text, partition => 0);
	SELECT max("offset") FROM eventlog.produce_batch('pt',
	    array(SELECT 'prep2-batch-' || g FROM generate_series(1, 3000) g), partition => 0);
	PREPARE TRANSACTION 'p2';
});
my ($p2, $p2_max) = split /\n/, $p2_out;
my $a5 = produce('after-p2');

my $p3_out = $node->safe_psql('postgres', q{
	BEGIN;
	SELECT "offset" FROM eventlog.produce('pt', 'prep3'::text, partition => 0);
	SELECT b.o || ':' || b."offset" FROM eventlog.produce_batch('pt',
	    array(SELECT 'prep3-batch-' || g FROM generate_series(1, 2000) g), partition => 0)
	    WITH ORDINALITY AS b(partition, "offset", o);
	PREPARE TRANSACTION 'p3';
});
my ($p3, @p3_batch) = split /\n/, $p3_out;
my %p3_records = ($p3 => 'prep3');
for (@p3_batch)
{
	my ($i, $off) = split /:/;
	$p3_records{$off} = "prep3-batch-$i";
}
my $p3_max = (sort { $b <=> $a } keys %p3_records)[0];

is_deeply(fetch_list(0), expected_from(0), 'fetch from 0 stops before the second prepared transaction');
is_deeply(fetch_list($p2), [], 'fetch from its first record returns nothing');
is(held_by_prepared('p2'), "$p2|t", 'partitions view: held by p2');

$node->stop('immediate');
$node->start;
is( $node->safe_psql('postgres', q{SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts}),
	'p2,p3', 'both prepared transactions survived the crash');
is_deeply(fetch_list($p2), [], 'after the crash, fetch from p2 still returns nothing');

my $a6 = produce('after-crash-2');
cmp_ok($a6, '>', $p3_max,
	"a record produced after the crash ($a6) gets an offset above every prepared one ($p3_max)");

$node->safe_psql('postgres', "ROLLBACK PREPARED 'p2'");
is_deeply(fetch_list($p2), ["$a5:after-p2"],
	'after ROLLBACK PREPARED p2: only the later committed record, up to p3');
is(held_by_prepared('p3'), "$p3|t", 'partitions view: now held by p3');

$node->restart;
is_deeply(fetch_list($p2), ["$a5:after-p2"], 'the same after a clean restart');

$node->safe_psql('postgres', "COMMIT PREPARED 'p3'");
$expect{$a5} = 'after-p2';
$expect{$_} = $p3_records{$_} for keys %p3_records;
$expect{$a6} = 'after-crash-2';
is_deeply(fetch_list($p2), expected_from($p2),
	'after COMMIT PREPARED p3: p3 and the later record, nothing of p2');
is_deeply(fetch_list(0), expected_from(0),
	'the whole partition holds exactly the committed records');
# A prepared transaction whose records were produced in subtransactions:
# after a crash, readers must still see them as open (their subtransaction
# ids belong to the prepared transaction).
my $p4_out = $node->safe_psql('postgres', q{
	BEGIN;
	SAVEPOINT s1;
	SELECT "offset" FROM eventlog.produce('pt', 'prep4-sub'::text, partition => 0);
	RELEASE SAVEPOINT s1;
	SAVEPOINT s2;
	SELECT "offset" FROM eventlog.produce('pt', 'prep4-dropped'::text, partition => 0);
	ROLLBACK TO SAVEPOINT s2;
	SAVEPOINT s3;
	SELECT "offset" FROM eventlog.produce('pt', 'prep4-sub2'::text, partition => 0);
	PREPARE TRANSACTION 'p4';
});
my ($p4, $p4_dropped, $p4_sub2) = split /\n/, $p4_out;
my $a7 = produce('after-p4');
is_deeply(fetch_list($p4), [], 'prepared transaction with subtransactions holds readers back');
$node->stop('immediate');
$node->start;
is_deeply(fetch_list($p4), [], 'and still after a crash');
is_deeply(fetch_list($p4_dropped), [], 'also when fetching from its rolled-back subtransaction record');
my $a8 = produce('after-p4-crash');
cmp_ok($a8, '>', $a7, 'offsets continue above after the crash');
$node->safe_psql('postgres', "COMMIT PREPARED 'p4'");
@expect{ $p4, $p4_sub2, $a7, $a8 } = ('prep4-sub', 'prep4-sub2', 'after-p4', 'after-p4-crash');
is_deeply(fetch_list($p4), expected_from($p4),
	'after COMMIT PREPARED: its released subtransactions and the later records, not the rolled-back one');

is( $node->safe_psql('postgres',
		q{SELECT count(*), count(DISTINCT "offset") FROM eventlog_topics.pt}),
	scalar(keys %expect) . '|' . scalar(keys %expect),
	'a scan sees each committed record once');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog_topics.pt WHERE convert_from(value, 'UTF8') LIKE 'prep2%'}),
	'0', 'no record of the rolled-back prepared transaction is visible');
is( $node->safe_psql('postgres',
		q{SELECT last_stable_offset = high_watermark FROM eventlog.partitions WHERE topic = 'pt'}),
	't', 'nothing holds the partition back any more');

$node->stop;
done_testing();
