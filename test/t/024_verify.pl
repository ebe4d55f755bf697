# eventlog.verify(topic): pages corrupted on disk are reported, block by
# block, and the server goes on; a sound topic reports nothing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

# Pages are changed behind PostgreSQL's back: with data checksums (the
# default of initdb from 18) their checksums no longer match, and reading
# them would fail before verify() sees them.  ignore_checksum_failure lets
# the read through, so that verify() checks what is on the page.
my $node = EventlogNode::new('verify', "ignore_checksum_failure = on");
EventlogNode::query($node, q{
	SELECT eventlog.create_topic('v', 1, segment_records => 1000);
	SELECT count(*) FROM eventlog.produce_batch('v',
		array(SELECT repeat('x', 100) || g FROM generate_series(1, 600) g),
		array(SELECT 'key-' || g FROM generate_series(1, 600) g));
	SELECT eventlog.create_topic('w', 1);
	SELECT eventlog.produce('w', 'one'::text);
});
is(EventlogNode::query($node, q{SELECT count(*) FROM eventlog.verify('v')}), '0',
	'a sound topic: no problem');
is(EventlogNode::query($node, q{SELECT count(*) FROM eventlog.verify('w')}), '0',
	'a sound topic with one record: no problem');

my $pages = EventlogNode::query($node,
	q{SELECT pg_relation_size(segment) / current_setting('block_size')::int
	    FROM eventlog.topic_segments('v') ORDER BY base_offset LIMIT 1});
cmp_ok($pages, '>=', 6, "the segment has several data pages ($pages blocks)");
my $datadir = $node->data_dir;
my $file_v = $datadir . '/' . EventlogNode::query($node,
	q{SELECT pg_relation_filepath(segment) FROM eventlog.topic_segments('v') ORDER BY base_offset LIMIT 1});
my $file_w = $datadir . '/' . EventlogNode::query($node,
	q{SELECT pg_relation_filepath(segment) FROM eventlog.topic_segments('w') ORDER BY base_offset LIMIT 1});
my $blcksz = EventlogNode::query($node, q{SHOW block_size});
$node->stop;

# Writes $bytes at $pos of block $blk of $file.
sub poke
{
	my ($file, $blk, $pos, $bytes) = @_;
	open(my $fh, '+<', $file) or die "open $file: $!";
	binmode $fh;
	seek($fh, $blk * $blcksz + $pos, 0) or die;
	print $fh $bytes;
	close $fh;
}

# Block 2: the first record's length (after the page header, 24 bytes, and
# the run header, 12) made huge.
poke($file_v, 2, 36, pack('v', 0xFFF0));
# Block 3: the page id in the special space (its last two bytes).
poke($file_v, 3, $blcksz - 2, pack('v', 0x1234));
# Block 4: a page header PostgreSQL itself refuses (pd_upper past the page).
poke($file_v, 4, 14, pack('v', $blcksz + 100));
# Topic w: the metapage's magic.
poke($file_w, 0, 24, pack('V', 0xDEADBEEF));
$node->start;

my $report = EventlogNode::query($node,
	q{SELECT partition || '|' || block || '|' || problem FROM eventlog.verify('v') ORDER BY block, problem});
note $report;
like($report, qr/^0\|2\|record 0 at position 36 has length 65520, past the end of the records/m,
	'a record length running past the page is reported with its block');
like($report, qr/^0\|3\|page id is 1234, expected ee02$/m, 'a foreign page id is reported');
like($report, qr/^0\|4\|block cannot be read: invalid page in block 4/m,
	'a page PostgreSQL refuses to read is reported with the reason, and the check goes on');
unlike($report, qr/^0\|(1|5)\|/m, 'the sound blocks around them are not reported');
like(EventlogNode::query($node, q{SELECT block || '|' || problem FROM eventlog.verify('w')}),
	qr/^0\|metapage magic is deadbeef, expected 45564c47$/, 'a broken metapage is reported');
is(EventlogNode::query($node, q{SELECT 1}), '1', 'the server is still up');

my ($out, $err) = EventlogNode::try_query($node, q{SELECT count(*) FROM eventlog.fetch('v', 0, 0, 1000)});
like($err, qr/ERROR:  (corrupted record at block 2|invalid page in block)/,
	'reading the corrupted partition is an error, not a crash');

# Rights: verify needs SELECT on the topic, as fetch does.
EventlogNode::query($node, q{CREATE ROLE nobody LOGIN});
($out, $err) = EventlogNode::try_query($node, q{SET ROLE nobody; SELECT * FROM eventlog.verify('v')});
like($err, qr/permission denied/, 'a role without SELECT on the topic cannot verify it');

$node->stop;
done_testing();
