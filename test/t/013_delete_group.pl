
# delete_group against transactions writing the group's committed offsets.
#
# Committed offsets have no foreign key to their group.  A delete_group
# that runs while another transaction commits a position of the group
# waits for that transaction and then deletes what it wrote: no offsets
# are left behind for a new group of the same name to take up.  A
# transaction that writes offsets after a delete_group began waits for it
# and then finds the group gone: it starts as a new group would, at the
# earliest offset.  The same holds for commit() and for members.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AsyncSession;
use EventlogNode;

my $node = EventlogNode::new('delete_group');
$node->safe_psql('postgres', q{
	SELECT eventlog.create_topic('t', 2);
	SELECT eventlog.produce_batch('t', ARRAY['a0', 'a1', 'a2', 'a3', 'a4'], partition => 0);
	SELECT eventlog.produce_batch('t', ARRAY['b0', 'b1', 'b2'], partition => 1);
});

sub waits_for_lock
{
	return AsyncSession::waits_for_lock($node, $_[0]);
}

sub offset_rows
{
	my ($grp) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT count(*) FROM eventlog.group_offset WHERE grp = '$grp'});
}

sub group_exists
{
	my ($grp) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT count(*) FROM eventlog.consumer_group WHERE grp = '$grp'});
}

# What a group's consume returns now, as 'value,...' in partition and
# offset order, committing.
sub consume_values
{
	my ($session, $grp, $n, $member) = @_;
	my $m = $member ? ", member => '$member'" : '';
	return $session->query(
		qq{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY partition, "offset")
		     FROM eventlog.consume('$grp', 't', $n$m, commit => true)});
}

my $a = AsyncSession->new($node, 'a');
my $b = AsyncSession->new($node, 'b');
my $b_pid = $b->query('SELECT pg_backend_pid()');

# With session a's transaction open (it wrote offsets of $grp), runs
# delete_group($grp) in session b: b waits for a's lock, a commits, b
# then deletes the group and every offset a wrote.
sub delete_while_written
{
	my ($grp, $writer) = @_;
	$b->send(qq{SELECT eventlog.delete_group('$grp')});
	ok(waits_for_lock($b_pid), "delete_group waits for $writer");
	$a->query('COMMIT');
	$b->wait_done;
	is($b->{errors}, '', 'delete_group then succeeds');
	is(offset_rows($grp), '0', "no committed offset of $grp is left behind");
}

# 1. A consumer's transaction commits a position while delete_group runs.
is(consume_values($a, 'g1', 2), 'a0,a1', 'g1 reads its first records');
$a->query('BEGIN');
is(consume_values($a, 'g1', 2), 'b0,b1', 'g1 reads on (the next partition) in an open transaction');
delete_while_written('g1', 'the transaction writing the offsets');
is(group_exists('g1'), '0', 'the group is gone');
is(consume_values($a, 'g1', 4), 'a0,a1,a2,a3', 'a group of the same name starts at the earliest offsets');

# 2. The same with commit().
$a->query(q{BEGIN; SELECT eventlog.commit('g1', 't', 0, 5)});
delete_while_written('g1', 'a transaction in commit()');

# 3. A consumer that comes while delete_group's transaction is open waits
# for it, and then starts as a new group.
is(consume_values($a, 'g2', 4), 'a0,a1,a2,a3', 'g2 reads its first records');
$b->query(q{BEGIN; SELECT eventlog.delete_group('g2')});
my $a_pid = $a->query('SELECT pg_backend_pid()');
$a->send(q{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY partition, "offset")
             FROM eventlog.consume('g2', 't', 2, commit => true)});
ok(waits_for_lock($a_pid), 'a consumer committing offsets waits for delete_group');
$b->query('COMMIT');
is($a->wait_done, 'a0,a1', 'and then reads from the earliest offsets, as a new group');
is(group_exists('g2'), '1', 'the group exists again, made by that consumer');
is($node->safe_psql('postgres',
	q{SELECT string_agg(partition || ':' || committed_offset, ',' ORDER BY partition)
	    FROM eventlog.lag WHERE "group" = 'g2'}),
	'0:2,1:0', 'with the positions that consumer committed');

# 4. A member's transaction (the group is deleted once the member left).
is(consume_values($a, 'g3', 4, 'm1'), 'a0,a1,a2,a3', 'member m1 of g3 reads its first records');
$a->query(q{SELECT eventlog.leave('g3', 'm1')});
$a->query('BEGIN');
is(consume_values($a, 'g3', 2), 'b0,b1', 'g3, with no member left, reads on in an open transaction');
delete_while_written('g3', 'that transaction');

# 5. Reading without committing takes no lock: delete_group does not wait.
is(consume_values($a, 'g4', 2), 'a0,a1', 'g4 reads its first records');
$a->query(q{BEGIN; SELECT count(*) FROM eventlog.consume('g4', 't', 2)});
$b->query(q{SELECT eventlog.delete_group('g4')});
is(group_exists('g4'), '0', 'delete_group does not wait for a consumer that does not commit');
$a->query('COMMIT');

# The lock is eventlog's own: SQL's advisory locks of any key never meet it.
is(consume_values($a, 'g5', 2), 'a0,a1', 'g5 reads its first records');
$a->query(q{BEGIN; SELECT eventlog.commit('g5', 't', 0, 3)});
is($node->safe_psql('postgres',
	q{SELECT locktype || ' ' || mode || ' ' || objsubid FROM pg_locks
	   WHERE locktype = 'advisory' AND pid <> pg_backend_pid()}),
	'advisory ShareLock 17740', 'offset writers hold a share lock of their own class (objsubid 0x454C)');
$a->query('COMMIT');

$a->quit;
$b->quit;
$node->stop;
done_testing();
