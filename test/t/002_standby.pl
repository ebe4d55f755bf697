
# Physical replication (guarantee 6): a streaming standby made with
# pg_basebackup holds the same records as the primary and serves fetch,
# including the commit-order barrier of guarantee 2 (an open producing
# transaction on the primary holds readers back on the standby too).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $primary = EventlogNode::new('primary', "max_prepared_transactions = 10",
	init => { allows_streaming => 1 });

# A topic that exists before the base backup, with a few records.
$primary->safe_psql('postgres', q{
	SELECT eventlog.create_topic('repl', 3, segment_records => 20);
	SELECT eventlog.produce('repl', 'before-backup-0'::text, partition => 0);
	SELECT eventlog.produce('repl', 'before-backup-1'::text, partition => 1);
});

# Transactions open while the base backup is taken: one commits, one aborts
# after it, each followed by a committed record.
my $during_c = $primary->background_psql('postgres');
my $during_a = $primary->background_psql('postgres');
$during_c->query_safe('BEGIN');
my $off_during_c = $during_c->query_safe(
	q{SELECT "offset" FROM eventlog.produce('repl', 'during-backup-committed'::text, partition => 2)});
$during_a->query_safe('BEGIN');
my $off_during_a = $during_a->query_safe(
	q{SELECT "offset" FROM eventlog.produce('repl', 'during-backup-aborted'::text, partition => 2)});
my $off_during_x = $primary->safe_psql('postgres',
	q{SELECT "offset" FROM eventlog.produce('repl', 'during-backup-other'::text, partition => 2)});

my $standby = EventlogNode::new_standby($primary, 'standby');

$during_c->query_safe('COMMIT');
$during_a->query_safe('ROLLBACK');
$during_c->quit;
$during_a->quit;

my $NPART = 3;

# Full text of fetch over one partition, read in chunks.
sub fetch_text
{
	my ($node, $topic, $part) = @_;
	return join("\n",
		EventlogNode::fetch_lines($node, $topic, $part,
			columns => q{topic, partition, "offset", key, encode(value, 'hex'), headers, ts},
			offset_re => qr/^[^|]*\|[^|]*\|(\d+)\|/));
}

sub compare_nodes
{
	my ($label, @topics) = @_;
	for my $topic (@topics)
	{
		my $nparts = $primary->safe_psql('postgres',
			"SELECT partitions FROM eventlog.topic WHERE topic = '$topic'");
		for my $p (0 .. $nparts - 1)
		{
			my $on_primary = fetch_text($primary, $topic, $p);
			my $on_standby = fetch_text($standby, $topic, $p);
			ok($on_standby eq $on_primary,
				"$label: $topic partition $p: fetch on the standby returns what it returns on the primary"
			) or diag(
				"primary: " . length($on_primary) . " chars, standby: " . length($on_standby) . " chars");
		}
		my $agg = qq{SELECT partition, count(*), sum(length(value)), md5(string_agg(md5(value), ',' ORDER BY partition, "offset"))
		               FROM eventlog_topics."$topic" GROUP BY partition ORDER BY partition};
		is($standby->safe_psql('postgres', $agg),
			$primary->safe_psql('postgres', $agg),
			"$label: $topic: counts and content of a plain scan match");
	}
	my $view = q{SELECT topic, partition, earliest_offset, high_watermark, last_stable_offset
	               FROM eventlog.partitions ORDER BY topic, partition};
	is($standby->safe_psql('postgres', $view),
		$primary->safe_psql('postgres', $view),
		"$label: eventlog.partitions offsets match");
	return;
}

sub catchup
{
	EventlogNode::catchup($primary, $standby);
}

# ---------------------------------------------------------------------------
# Records of every kind, produced after the standby started streaming.
# ---------------------------------------------------------------------------

# Committed singles across partitions, some aborted transactions in between.
my $sql = '';
for my $i (1 .. 60)
{
	my $p = $i % $NPART;
	if ($i % 7 == 0)
	{
		$sql .= qq{BEGIN; SELECT eventlog.produce('repl', 'aborted-$i'::text, partition => $p); ROLLBACK;\n};
	}
	else
	{
		$sql .=
		  qq{SELECT eventlog.produce('repl', 'v-$i'::text, key => 'k$i', headers => '{"n": "$i"}', partition => $p);\n};
	}
}
$primary->safe_psql('postgres', $sql);

# A subtransaction rolled back inside a committed transaction.
$primary->safe_psql('postgres', q{
	BEGIN;
	SELECT eventlog.produce('repl', 'sub-kept-1'::text, partition => 2);
	SAVEPOINT s;
	SELECT eventlog.produce('repl', 'sub-dropped'::text, partition => 2);
	ROLLBACK TO SAVEPOINT s;
	SELECT eventlog.produce('repl', 'sub-kept-2'::text, partition => 2);
	COMMIT;
});

# A batch spanning many pages, and an aborted one.
$primary->safe_psql('postgres', q{
	SELECT count(*) FROM eventlog.produce_batch('repl',
	    array(SELECT 'batch-' || g FROM generate_series(1, 20000) g), partition => 1);
	BEGIN;
	SELECT count(*) FROM eventlog.produce_batch('repl',
	    array(SELECT 'aborted-batch-' || g FROM generate_series(1, 3000) g), partition => 1);
	ROLLBACK;
});

# Large values: one that compresses well and one that does not, both well
# over a page, and binary values.
$primary->safe_psql('postgres', q{
	SELECT eventlog.produce('repl', repeat('compressible ', 5000), partition => 0);
	SELECT eventlog.produce('repl',
	    (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 3000) g), partition => 0);
	SELECT eventlog.produce('repl',
	    (SELECT string_agg(sha256(int4send(g)), '') FROM generate_series(1, 2000) g), partition => 2);
	SELECT eventlog.produce('repl', '\x00ff00fe'::bytea, partition => 2);
});

my $big = $primary->safe_psql('postgres',
	q{SELECT max(length(value)) FROM eventlog_topics.repl});
cmp_ok($big, '>', 8192, 'a record larger than a page was produced');

# A second topic created while the standby streams.
$primary->safe_psql('postgres', q{
	SELECT eventlog.create_topic('later', 2);
	SELECT count(*) FROM eventlog.produce_batch('later',
	    array(SELECT 'l-' || g FROM generate_series(1, 1000) g), partition => 0);
	SELECT eventlog.produce('later', 'l1'::text, partition => 1);
});

# Appends of every length from 1 to 40 bytes, one transaction each, so that
# the end of the page's used part falls on every byte of a word: the WAL
# records carry a page's changes word by word (el_wal.c).
$sql = '';
for my $len (1 .. 40)
{
	my $key = $len % 3 == 0 ? 'NULL' : "'" . ('k' x ($len % 5 + 1)) . "'";
	$sql .= qq{SELECT eventlog.produce('later', repeat('w', $len), key => $key, partition => 1);\n};
}
$primary->safe_psql('postgres', $sql);

catchup();
compare_nodes('after catch-up', 'repl', 'later');

is( $standby->safe_psql(
		'postgres',
		qq{SELECT string_agg("offset" || ':' || encode(value, 'escape'), ',' ORDER BY "offset")
		     FROM eventlog.fetch('repl', 2, $off_during_c, 3)}),
	"$off_during_c:during-backup-committed,$off_during_x:during-backup-other,"
	  . ($off_during_x + 1) . ':v-2',
	'standby: transactions open during the base backup are resolved (commit kept, abort skipped)');

# Spot checks of the content itself on the standby.
is( $standby->safe_psql(
		'postgres',
		q{SELECT string_agg(encode(value, 'escape'), ',' ORDER BY "offset")
		    FROM eventlog.fetch('repl', 2, 0, 1000)
		   WHERE value LIKE 'sub-%'::bytea}),
	'sub-kept-1,sub-kept-2',
	'standby: the rolled-back subtransaction record is skipped');
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FROM eventlog_topics.repl
		   WHERE value LIKE 'aborted%'::bytea}),
	'0',
	'standby: no aborted record is visible to a scan');
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*), min("offset") < max("offset")
		    FROM eventlog.fetch('repl', 1, 0, 100000)
		   WHERE value LIKE 'batch-%'::bytea}),
	'20000|t',
	'standby: the whole batch is fetched');
is( $standby->safe_psql(
		'postgres',
		q{SELECT md5(value) FROM eventlog.fetch('repl', 0, 0, 1000)
		   WHERE length(value) > 90000}),
	$primary->safe_psql('postgres',
		q{SELECT md5(string_agg(md5(g::text), '')) FROM generate_series(1, 3000) g}),
	'standby: the large incompressible value is intact');

# ---------------------------------------------------------------------------
# The barrier on the standby: an open transaction on the primary.
# ---------------------------------------------------------------------------

my $open = $primary->background_psql('postgres');
$open->query_safe('BEGIN');
my $held = $open->query_safe(
	q{SELECT "offset" FROM eventlog.produce('repl', 'held'::text, partition => 0)});
$primary->safe_psql('postgres', q{
	SELECT eventlog.produce('repl', 'after-held-1'::text, partition => 0);
	SELECT count(*) FROM eventlog.produce_batch('repl',
	    array(SELECT 'after-held-batch-' || g FROM generate_series(1, 500) g), partition => 0);
});
catchup();

my $ahead = $standby->safe_psql('postgres',
	qq{SELECT count(*) FROM eventlog.fetch('repl', 0, 0, 100000) WHERE "offset" >= $held});
is($ahead, '0',
	'standby: fetch stops before the record of a transaction still open on the primary');
is( $standby->safe_psql(
		'postgres',
		q{SELECT last_stable_offset FROM eventlog.partitions
		   WHERE topic = 'repl' AND partition = 0}),
	$held,
	'standby: last stable offset is the open record');
compare_nodes('while a producer is open', 'repl');

$open->query_safe('COMMIT');
$open->quit;
catchup();

is( $standby->safe_psql(
		'postgres',
		qq{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY "offset")
		     FROM eventlog.fetch('repl', 0, $held, 3)}),
	'held,after-held-1,after-held-batch-1',
	'standby: after the commit, the held record and the later ones are fetched');
compare_nodes('after the open producer committed', 'repl');

# Same with an abort.
$open = $primary->background_psql('postgres');
$open->query_safe('BEGIN');
$held = $open->query_safe(
	q{SELECT "offset" FROM eventlog.produce('repl', 'held-then-aborted'::text, partition => 0)});
my $after = $primary->safe_psql('postgres',
	q{SELECT "offset" FROM eventlog.produce('repl', 'after-aborted'::text, partition => 0)});
catchup();
is( $standby->safe_psql(
		'postgres',
		qq{SELECT count(*) FROM eventlog.fetch('repl', 0, $held, 100)}),
	'0',
	'standby: nothing is fetched past a record whose transaction is open');
$open->query_safe('ROLLBACK');
$open->quit;
catchup();
is( $standby->safe_psql(
		'postgres',
		qq{SELECT string_agg("offset" || ':' || convert_from(value, 'UTF8'), ',')
		     FROM eventlog.fetch('repl', 0, $held, 100)}),
	"$after:after-aborted",
	'standby: after the abort, only the later record is fetched');
compare_nodes('after the open producer aborted', 'repl', 'later');

# The standby refuses to produce.
my ($ret, $stdout, $stderr) = $standby->psql('postgres',
	q{SELECT eventlog.produce('repl', 'on-standby'::text, partition => 0)});
isnt($ret, 0, 'producing on the standby is refused');
like($stderr, qr/read-only|recovery/, 'with a read-only error');

$standby->stop;
$primary->stop;
done_testing();
