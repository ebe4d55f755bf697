
# Retention by the worker: whole segments dropped by time and by size,
# their files gone from disk, never the tail; the next segment created
# ahead of the producers; a reader holding an old segment delays its drop
# without holding up producers or other consumers; a group left behind
# reads from the earliest retained record.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $node = EventlogNode::new('retention',
	"eventlog.launcher_naptime = '500ms'\n"
	  . "eventlog.retention_check_interval = '200ms'\n");

sub poll_until
{
	my ($sql, $want, $secs) = @_;
	return EventlogNode::poll_until($node, $sql, $want, $secs);
}

sub produce
{
	my ($topic, $n, $tag) = @_;
	$node->safe_psql('postgres',
		qq{SELECT count(*) FROM eventlog.produce_batch('$topic',
		     array(SELECT '$tag' || g FROM generate_series(1, $n) g), partition => 0)});
}

sub segments
{
	my ($topic) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT string_agg(base_offset::text, ',' ORDER BY base_offset)
		     FROM eventlog.segments WHERE topic = '$topic' AND partition = 0});
}

# --- The next segment is made ahead ---------------------------------------

$node->safe_psql('postgres',
	q{SELECT eventlog.create_topic('ahead', 1, segment_records => 100)});
produce('ahead', 40, 'a');
sleep 1;
is(segments('ahead'), '0', 'no segment ahead while the tail is less than half full');
produce('ahead', 20, 'a');
ok(poll_until(q{SELECT count(*) FROM eventlog.segments WHERE topic = 'ahead'}, '2', 10),
	'the worker creates the next segment once the tail is half full');
is($node->safe_psql('postgres',
		q{SELECT pg_get_userbyid(c.relowner) FROM eventlog.segments s JOIN pg_class c ON c.oid = s.segment
		   WHERE s.topic = 'ahead' AND s.base_offset = 100}),
	$node->safe_psql('postgres', 'SELECT current_user'),
	'a segment made by the worker belongs to the topic owner');
produce('ahead', 60, 'a');
is($node->safe_psql('postgres',
		q{SELECT string_agg(base_offset || ':' || next_offset, ',' ORDER BY base_offset)
		    FROM eventlog.segments WHERE topic = 'ahead' AND earliest_offset IS NOT NULL}),
	'0:100,100:120', 'producers fill the tail, then the segment made ahead');

# --- Retention by size, with files gone -----------------------------------

$node->safe_psql('postgres',
	q{SELECT eventlog.create_topic('sized', 1, segment_records => 1000)});
for my $i (1 .. 6)
{
	produce('sized', 1000, "s$i-" . ('x' x 100));
}
my $first_file = $node->safe_psql('postgres',
	q{SELECT pg_relation_filepath(segment) FROM eventlog.segments WHERE topic = 'sized' AND base_offset = 0});
my $datadir = $node->data_dir;
ok(-e "$datadir/$first_file", "the first segment has a file ($first_file)");
$node->safe_psql('postgres', q{SELECT count(*) FROM eventlog.consume('behind', 'sized', 10, commit => true)});
my $seg_bytes = $node->safe_psql('postgres',
	q{SELECT size_bytes FROM eventlog.segments WHERE topic = 'sized' AND base_offset = 0});
my $before = $node->safe_psql('postgres', q{SELECT size_bytes FROM eventlog.partitions WHERE topic = 'sized'});

# Keep about two segments.
$node->safe_psql('postgres',
	"SELECT eventlog.alter_topic('sized', NULL, " . (2 * $seg_bytes) . ")");
ok(poll_until(q{SELECT earliest_offset FROM eventlog.partitions WHERE topic = 'sized'}, '4000', 15),
	'retention by size drops the oldest segments down to the limit');
is(segments('sized') =~ s/,6000$//r, '4000,5000', 'the two newest segments stay');
my $after = $node->safe_psql('postgres', q{SELECT size_bytes FROM eventlog.partitions WHERE topic = 'sized'});
cmp_ok($after, '<', $before / 2, "the partition shrank ($before -> $after bytes)");
$node->safe_psql('postgres', 'CHECKPOINT');
ok(!-e "$datadir/$first_file", 'the dropped segment\'s file is gone from disk after a checkpoint');

is($node->safe_psql('postgres',
		q{SELECT committed_offset || ' ' || earliest_offset || ' ' || lag FROM eventlog.lag WHERE "group" = 'behind'}),
	'10 4000 2000', 'the lag of a group left behind counts from the earliest retained offset');
is($node->safe_psql('postgres',
		q{SELECT min("offset") || ' ' || count(*) FROM eventlog.consume('behind', 'sized', 5, commit => true)}),
	'4000 5', 'the group reads on from the earliest retained record');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog_topics.sized}), '2000', 'SQL sees the retained records only');

# --- Retention by time, never the tail -----------------------------------

$node->safe_psql('postgres',
	q{SELECT eventlog.create_topic('timed', 1, segment_records => 50)});
produce('timed', 120, 't');
$node->safe_psql('postgres', q{SELECT eventlog.alter_topic('timed', interval '1 second', NULL)});
ok(poll_until(q{SELECT earliest_offset FROM eventlog.partitions WHERE topic = 'timed'}, '100', 15),
	'retention by time drops every segment older than the retention but the tail');
sleep 2;
is($node->safe_psql('postgres',
		q{SELECT earliest_offset || ' ' || high_watermark FROM eventlog.partitions WHERE topic = 'timed'}),
	'100 120', 'the tail stays, however old its records');
is($node->safe_psql('postgres', q{SELECT "offset" FROM eventlog.produce('timed', 'next'::text)}),
	'120', 'producing continues at the next offset');

# --- A reader of an old segment delays its drop, and holds up nobody -------

$node->safe_psql('postgres',
	q{SELECT eventlog.create_topic('held', 1, segment_records => 50)});
produce('held', 120, 'h');
my $reader = $node->background_psql('postgres');
$reader->query_safe('BEGIN');
is($reader->query_safe(q{SELECT count(*) FROM eventlog_topics.held WHERE "offset" < 50}), '50',
	'a transaction reads the oldest segment and stays open');
$node->safe_psql('postgres', q{SELECT eventlog.alter_topic('held', interval '1 second', NULL)});
sleep 3;
is($node->safe_psql('postgres', q{SELECT earliest_offset FROM eventlog.partitions WHERE topic = 'held'}),
	'0', 'the segment being read is not dropped under its reader');
my $t0 = time();
for my $i (1 .. 20)
{
	$node->safe_psql('postgres', q{SET statement_timeout = '5s'; SELECT eventlog.produce('held', 'during'::text)});
	$node->safe_psql('postgres',
		q{SET statement_timeout = '5s'; SELECT count(*) FROM eventlog.fetch('held', 0, 100, 100)});
}
pass(sprintf('producers and other readers go on meanwhile (40 calls in %.1f s)', time() - $t0));
$reader->query_safe('COMMIT');
$reader->quit;
ok(poll_until(q{SELECT earliest_offset >= 100 FROM eventlog.partitions WHERE topic = 'held'}, 't', 15),
	'the segment goes once its reader is done');

# --- enforce_retention() without the worker's help -----------------------

$node->safe_psql('postgres', q{SELECT eventlog.create_topic('manual', 1, segment_records => 10)});
produce('manual', 35, 'm');
$node->safe_psql('postgres', q{ALTER SYSTEM SET eventlog.retention_check_interval = '1h'; SELECT pg_reload_conf()});
sleep 1;
$node->safe_psql('postgres', q{SELECT eventlog.alter_topic('manual', interval '1 millisecond', NULL)});
is($node->safe_psql('postgres',
		q{SELECT string_agg(base_offset::text, ',' ORDER BY base_offset) FROM eventlog.enforce_retention('manual')}),
	'0,10,20', 'enforce_retention() drops the expired segments at once');

$node->stop;
done_testing();
