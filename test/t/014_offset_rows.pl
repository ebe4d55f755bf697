
# The committed-offset rows under concurrent transactions (el_offsetrows.c).
#
# consume(..., commit => true) locks the row of each partition it reads and
# skips a row another transaction holds, without waiting.  commit() waits
# for the holder, and when the holder committed a new position meanwhile it
# locks that one: a commit below it is refused, one above it is taken.
# Under REPEATABLE READ, a row replaced after the snapshot was taken is a
# serialization failure, as for any row lock.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AsyncSession;
use EventlogNode;
use Time::HiRes qw(time);

my $node = EventlogNode::new('offset_rows');
$node->safe_psql('postgres', q{
	SELECT eventlog.create_topic('t', 2);
	SELECT eventlog.produce_batch('t', array(SELECT 'a' || g FROM generate_series(0, 9) g), partition => 0);
	SELECT eventlog.produce_batch('t', array(SELECT 'b' || g FROM generate_series(0, 9) g), partition => 1);
});

sub committed
{
	my ($grp) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT string_agg(partition || ':' || committed_offset, ',' ORDER BY partition)
		     FROM eventlog.group_offset WHERE grp = '$grp'});
}

my $a = AsyncSession->new($node, 'a');
my $b = AsyncSession->new($node, 'b', errors_ok => 1);
my $b_pid = $b->query('SELECT pg_backend_pid()');

# Both partitions get their rows: the first call reads two records of
# partition 0 and gives partition 1 its row at the earliest offset.
$node->safe_psql('postgres', q{SELECT count(*) FROM eventlog.consume('g', 't', 2, commit => true)});
is(committed('g'), '0:2,1:0', 'the first call committed partition 0 and made the row of partition 1');

# a holds partition 0's row: b's consume, which reads partition 1 first (the
# group committed partition 0 last) and wants more than partition 1 has,
# skips partition 0 at once.
$a->query(q{BEGIN; SELECT count(*) FROM eventlog.commit('g', 't', 0, 3)});
my $t0 = time();
is( $b->query(
		q{SELECT string_agg(partition || ':' || "offset", ',' ORDER BY partition, "offset")
		    FROM eventlog.consume('g', 't', 12, commit => true)}),
	join(',', map { "1:$_" } 0 .. 9),
	'consume skips the partition whose row another transaction holds');
cmp_ok(time() - $t0, '<', 5, 'and does not wait for it');
is($b->{errors}, '', 'without an error');

# b's commit() of partition 0 waits for a; a commits offset 3 meanwhile.
# b then locks a's new row: 2 is below it and refused.
$b->send(q{SELECT eventlog.commit('g', 't', 0, 2)});
ok(AsyncSession::waits_for_lock($node, $b_pid), 'commit() waits for the transaction holding the row');
$a->query('COMMIT');
$b->wait_done;
like($b->{errors}, qr/22023: offset 2 is below the committed offset 3 of consumer group "g" in partition 0/,
	'after the wait, commit() sees the position the other transaction committed');

# The same with an offset above it: taken.
$a->query(q{BEGIN; SELECT count(*) FROM eventlog.commit('g', 't', 0, 5)});
$b->send(q{SELECT eventlog.commit('g', 't', 0, 6)});
ok(AsyncSession::waits_for_lock($node, $b_pid), 'commit() waits again');
$a->query('COMMIT');
$b->wait_done;
is($b->{errors}, '', 'and commits above the new position once the holder committed');
is(committed('g'), '0:6,1:10', 'one row per partition, at the last positions committed');

# REPEATABLE READ: a row replaced after the snapshot was taken.
$b->query(q{BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM eventlog.group_offset});
$a->query(q{SELECT eventlog.commit('g', 't', 0, 7)});
$b->query(q{SELECT eventlog.commit('g', 't', 0, 8)});
like($b->{errors}, qr/40001: could not serialize access due to concurrent delete/,
	'under REPEATABLE READ, committing over a row replaced since the snapshot is a serialization failure');
$b->query('ROLLBACK');
$b->query(q{BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM eventlog.group_offset});
$a->query(q{SELECT count(*) FROM eventlog.consume('g', 't', 1, commit => true)});
is( $b->query(q{SELECT count(*) FROM eventlog.consume('g', 't', 10, commit => true)}),
	'', 'consume under REPEATABLE READ over rows replaced since the snapshot');
like($b->{errors}, qr/40001: could not serialize access due to concurrent delete/,
	'is a serialization failure too');
$b->query('ROLLBACK');
is(committed('g'), '0:8,1:10', 'what a committed stays (its consume took offset 7 of partition 0)');

# A backend looks for a partition's row first where it saw it last.  When
# that row is gone (reset_offsets replaced it, VACUUM freed its place and
# rows of other groups took it), the consumer must still resume from the
# group's own position.
$node->safe_psql('postgres', q{
	SELECT eventlog.create_topic('u', 1);
	SELECT eventlog.produce_batch('u', array(SELECT 'u' || g FROM generate_series(0, 19) g));
	VACUUM eventlog.group_offset;
});
sub take
{
	my ($session, $grp, $n) = @_;
	return $session->query(
		qq{SELECT string_agg("offset"::text, ',' ORDER BY "offset") FROM eventlog.consume('$grp', 'u', $n, commit => true)});
}
is(take($a, 'h', 3), '0,1,2', 'group h reads from the start');
is(take($a, 'h', 3), '3,4,5', 'and on from its position');
$node->safe_psql('postgres', q{
	SELECT count(*) FROM eventlog.reset_offsets('h', 'u', '10');
	VACUUM eventlog.group_offset;
});
# Rows of groups that take every place VACUUM freed (and more).
$node->safe_psql('postgres', q{
	INSERT INTO eventlog.consumer_group (grp, owner) SELECT 'filler' || g, current_user FROM generate_series(1, 300) g;
	INSERT INTO eventlog.group_offset (grp, topic, partition, seq, committed_offset)
	SELECT 'filler' || g, 'u', 0, 1, 0 FROM generate_series(1, 300) g;
});
for my $g (1 .. 6)
{
	$node->safe_psql('postgres',
		qq{SELECT count(*) FROM eventlog.consume('o$g', 'u', $g, commit => true)});
}
is(take($a, 'h', 3), '10,11,12', 'after a reset, VACUUM and rows of other groups, h resumes from its reset position');
is(take($a, 'o3', 2), '3,4', 'and another group from its own');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(grp || ':' || committed_offset, ',' ORDER BY grp) FROM eventlog.group_offset
		   WHERE topic = 'u' AND grp NOT LIKE 'filler%'}),
	'h:13,o1:1,o2:2,o3:5,o4:4,o5:5,o6:6',
	'one row per group, at its position');

$a->quit;
$b->quit;
$node->stop;
done_testing();
