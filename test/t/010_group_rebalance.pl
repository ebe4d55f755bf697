
# Consumer groups (guarantees 4 and 5): membership, sticky balanced
# assignment, leave, session timeout and fencing.
#
# One member owns every partition; members that join get an even share
# while the others keep what they had as far as balance allows; members
# beyond the number of partitions stay idle; a member that leaves hands its
# partitions over at once; a member silent past the group's session timeout
# loses them at the next member's call.  The generation grows with every
# change of the assignment.  A commit by a member that does not own the
# partition now (another member's, an idle, a departed or an expired one)
# is refused with SQLSTATE 55000 and changes nothing, and so is a commit
# without a member while the group has live members.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $node = EventlogNode::new('groups', "max_prepared_transactions = 10");

# try_sql(sql): 'ok', or the SQLSTATE and message of the error it raised.
$node->safe_psql('postgres', q{
	CREATE FUNCTION try_sql(sql text) RETURNS text LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE sql;
		RETURN 'ok';
	EXCEPTION WHEN others THEN
		RETURN SQLSTATE || ': ' || SQLERRM;
	END $$;
});

# Topic t: 4 partitions, offsets 0..2 in each.
$node->safe_psql('postgres', q{
	SELECT eventlog.create_topic('t', 4);
	SELECT eventlog.produce('t', 'p' || p || '-' || i, partition => p)
	  FROM generate_series(0, 3) p, generate_series(0, 2) i;
});
my @all_parts = (0 .. 3);

# The group exists before its first member, with a session timeout long
# enough that nobody expires until we say so.
$node->safe_psql('postgres', q{SELECT eventlog.alter_group('g', '1 min')});

# A session for the members' calls (one psql per call is slow enough to
# make heartbeats late).
my $s = $node->background_psql('postgres');

sub q1
{
	my ($sql) = @_;
	return $s->query_safe($sql);
}

# member => 'p,p,...' (partition numbers, ascending) for every member row
# of group $grp in eventlog.members.
sub assignment
{
	my ($grp) = @_;
	$grp //= 'g';
	my %a;
	for my $line (split /\n/,
		q1(qq{SELECT member, coalesce(array_to_string(partitions, ','), '')
		        FROM eventlog.members WHERE "group" = '$grp' ORDER BY member}))
	{
		my ($m, $parts) = split /\|/, $line, -1;
		my @p = map { my ($t, $n) = split /:/; die "unexpected topic $t" unless $t eq 't'; $n }
		  grep { $_ ne '' } split /,/, $parts;
		$a{$m} = join(',', sort { $a <=> $b } @p);
	}
	return \%a;
}

sub live_members
{
	my ($grp) = @_;
	$grp //= 'g';
	return q1(qq{SELECT coalesce(string_agg(member, ',' ORDER BY member), '')
	               FROM eventlog.members WHERE "group" = '$grp' AND live});
}

sub generation
{
	my ($grp) = @_;
	$grp //= 'g';
	my $gen = q1(qq{SELECT generation FROM eventlog.groups WHERE "group" = '$grp'});
	my $bad = q1(qq{SELECT count(*) FROM eventlog.members
	                 WHERE "group" = '$grp' AND generation IS DISTINCT FROM $gen});
	die "eventlog.members disagrees with eventlog.groups on the generation" if $bad ne '0';
	return $gen;
}

# Records a member gets, as 'partition:offset' sorted; consume without commit.
sub consume_as
{
	my ($member, $grp) = @_;
	$grp //= 'g';
	return join(',', split /\n/,
		q1(qq{SELECT partition || ':' || "offset" FROM eventlog.consume('$grp', 't', 100, member => '$member')
		       ORDER BY partition, "offset"}));
}

# 'p:o,...' of every record of the partitions (a 'p,p' list) from offset
# $from[p] (default 0) up to offset 2.
sub records_of
{
	my ($parts, $from) = @_;
	$from //= {};
	return join(',',
		map { my $p = $_; map { "$p:$_" } (($from->{$p} // 0) .. 2) }
		sort { $a <=> $b } grep { $_ ne '' } split /,/, $parts);
}

sub committed
{
	my ($p, $grp) = @_;
	$grp //= 'g';
	return q1(qq{SELECT coalesce((SELECT committed_offset FROM eventlog.lag
	                               WHERE "group" = '$grp' AND topic = 't' AND partition = $p)::text, 'none')});
}

# Partitions that changed owner from $before to $after (member => parts).
sub moved
{
	my ($before, $after) = @_;
	my (%ob, %oa);
	for my $m (keys %$before) { $ob{$_} = $m for split /,/, $before->{$m} }
	for my $m (keys %$after)  { $oa{$_} = $m for split /,/, $after->{$m} }
	return scalar grep { ($ob{$_} // '') ne ($oa{$_} // '') } @all_parts;
}

# No partition is assigned to two members.
sub check_exclusive
{
	my ($a, $what) = @_;
	my %owner;
	my @dups;
	for my $m (sort keys %$a)
	{
		for my $p (split /,/, $a->{$m})
		{
			push @dups, "partition $p: $owner{$p} and $m" if defined $owner{$p};
			$owner{$p} = $m;
		}
	}
	is_deeply(\@dups, [], "$what: no partition assigned to two members");
	return \%owner;
}

sub is_subset
{
	my ($small, $big) = @_;
	my %b = map { $_ => 1 } split /,/, $big;
	return !grep { !$b{$_} } split /,/, $small;
}

# --- One member gets every partition -------------------------------------

my $gen0 = generation();
is(consume_as('a'), records_of('0,1,2,3'),
	'the only member reads every record of every partition (from earliest)');
my $a1 = assignment();
is_deeply($a1, { a => '0,1,2,3' }, 'the only member owns all four partitions');
my $gen1 = generation();
cmp_ok($gen1, '>', $gen0, "generation grows when the first member joins ($gen0 -> $gen1)");
is(consume_as('a'), records_of('0,1,2,3'), 'a heartbeat changes nothing');
is(generation(), $gen1, 'a heartbeat without a change keeps the generation');

# --- A second member: balanced and sticky --------------------------------

my $b_got = consume_as('b');
my $a2 = assignment();
check_exclusive($a2, 'two members');
is(join(' ', map { scalar(split /,/, $a2->{$_}) } qw(a b)), '2 2', 'two members share 4 partitions 2/2');
ok(is_subset($a2->{a}, $a1->{a}), "sticky: a keeps two of its partitions ($a2->{a})");
is($b_got, records_of($a2->{b}), "b reads exactly the records of its partitions ($a2->{b})");
is(consume_as('a'), records_of($a2->{a}), 'a now reads only its own partitions');
my $gen2 = generation();
cmp_ok($gen2, '>', $gen1, "generation grows when b joins ($gen1 -> $gen2)");

# --- Third and fourth member: one partition moves each time --------------

my $c_got = consume_as('c');
my $a3 = assignment();
check_exclusive($a3, 'three members');
is(join(' ', sort map { scalar(split /,/, $a3->{$_}) } qw(a b c)), '1 1 2',
	'three members share 4 partitions 2/1/1');
ok(is_subset($a3->{a}, $a2->{a}) && is_subset($a3->{b}, $a2->{b}),
	'sticky: a and b keep partitions they had');
is(moved($a2, $a3), 1, 'exactly one partition changes owner when c joins');
is($c_got, records_of($a3->{c}), "c reads exactly the records of its partition ($a3->{c})");
my $gen3 = generation();
cmp_ok($gen3, '>', $gen2, "generation grows when c joins ($gen2 -> $gen3)");

my $d_got = consume_as('d');
my $a4 = assignment();
check_exclusive($a4, 'four members');
is(join(' ', map { scalar(split /,/, $a4->{$_}) } qw(a b c d)), '1 1 1 1',
	'four members get one partition each');
ok(is_subset($a4->{a}, $a3->{a}) && is_subset($a4->{b}, $a3->{b}) && $a4->{c} eq $a3->{c},
	'sticky: a, b and c keep partitions they had');
is(moved($a3, $a4), 1, 'exactly one partition changes owner when d joins');
is($d_got, records_of($a4->{d}), "d reads exactly the records of its partition ($a4->{d})");
my $gen4 = generation();
cmp_ok($gen4, '>', $gen3, "generation grows when d joins ($gen3 -> $gen4)");

# --- Fifth member on four partitions: idle -------------------------------

is(consume_as('e'), '', 'a fifth member on four partitions reads nothing');
my $a5 = assignment();
check_exclusive($a5, 'five members');
is_deeply($a5, { %$a4, e => '' }, 'the fifth member is idle, the others keep their partitions');
is(live_members(), 'a,b,c,d,e', 'all five members are live');
my $gen5 = generation();
cmp_ok($gen5, '>=', $gen4, 'generation never goes back');
is(q1(q{SELECT live_members || ' ' || state FROM eventlog.groups WHERE "group" = 'g'}),
	'5 stable', 'eventlog.groups: 5 live members, stable');

# --- Different groups read independently ---------------------------------

is(consume_as('x', 'h'), records_of('0,1,2,3'),
	'a member of another group reads every partition, whatever group g does');
is_deeply(assignment('h'), { x => '0,1,2,3' }, 'the other group has its own assignment');

# --- Fencing while everyone is live --------------------------------------

my ($pa, $pb) = ($a5->{a}, $a5->{b});
my $pb_before = committed($pb);
is(try_commit($pa, 2, 'a'), 'ok', "the owner a commits offset 2 of partition $pa");
is(committed($pa), '2', 'committed offset of the owner is stored');
like(try_commit($pa, 3, 'b'), qr/^55000/, "b may not commit partition $pa, owned by a: 55000");
like(try_commit($pa, 3, 'e'), qr/^55000/, 'the idle member e may not commit it: 55000');
like(try_commit($pa, 3, 'zz'), qr/^55000/, 'a member that never joined may not commit it: 55000');
like(try_commit($pa, 3, undef), qr/^55000/,
	'a commit without member is refused while the group has live members: 55000');
like(try_commit($pb, 1, undef), qr/^55000/,
	'also for a partition without committed offset: 55000');
is(committed($pa), '2', 'refused commits left the committed offset alone');
is(committed($pb), $pb_before, 'nor that of a partition without commits');
like(
	q1(q{SELECT try_sql($$SELECT count(*) FROM eventlog.consume('g', 't')$$)}),
	qr/^55000/,
	'consume without member is refused while the group has live members: 55000');
is(consume_as('a'), records_of($pa, { $pa => 2 }),
	'a reads its partition from the committed offset');

sub try_commit
{
	my ($p, $off, $member) = @_;
	my $m = defined $member ? ", member => ''$member''" : '';
	return q1(qq{SELECT try_sql('SELECT eventlog.commit(''g'', ''t'', $p, $off$m)')});
}

# --- Leave: the partitions move at once ----------------------------------

is(q1(q{SELECT eventlog.leave('g', 'a')}), 't', 'leave returns true for a member');
my $a6 = assignment();
check_exclusive($a6, 'after a leaves');
is_deeply($a6, { b => $a5->{b}, c => $a5->{c}, d => $a5->{d}, e => $a5->{a} },
	"without any other call, a's partition $a5->{a} went to the idle member e");
my $gen6 = generation();
cmp_ok($gen6, '>', $gen5, "generation grows when a member leaves ($gen5 -> $gen6)");
is(q1(q{SELECT eventlog.leave('g', 'a')}), 'f', 'leaving twice returns false');
like(try_commit($pa, 3, 'a'), qr/^55000/, 'the departed member may not commit its former partition: 55000');
is(committed($pa), '2', 'committed offset unchanged');
is(consume_as('e'), records_of($pa, { $pa => 2 }),
	"e reads its new partition from a's committed offset");
is(try_commit($pa, 3, 'e'), 'ok', 'the new owner may commit it');
is(committed($pa), '3', 'the new owner\'s commit is stored');

# --- Session timeout: a silent member loses its partitions ---------------

# Everyone calls, then the group gets a short timeout; b, c and e keep
# calling, d does not.
my $timeout = 2;
consume_as($_) for qw(b c d e);
q1(qq{SELECT eventlog.alter_group('g', '$timeout s')});
is(q1(q{SELECT session_timeout FROM eventlog.groups WHERE "group" = 'g'}),
	"00:00:0$timeout", 'eventlog.groups shows the group\'s session timeout');
my $a7 = assignment();
my $pd = $a7->{d};
my $silent_since = time();

# Heartbeats of the three others, in separate transactions, for most of
# d's timeout: nothing may move while d is live.
for (my $i = 0; $i < 100 && time() - $silent_since < $timeout - 0.6; $i++)
{
	q1(qq{SELECT count(*) FROM eventlog.consume('g', 't', 1, member => '$_')}) for qw(b c e);
	usleep(100_000);
}
is(live_members(), 'b,c,d,e', 'within the session timeout all four are live');
is_deeply(assignment(), $a7, 'heartbeats alone moved nothing');

# Then nobody calls until d is no longer live (b, c and e called later, so
# they stay live a little longer).
my $expired = 0;
for (my $i = 0; $i < 200 && time() - $silent_since < 5 * $timeout; $i++)
{
	if (live_members() eq 'b,c,e')
	{
		$expired = 1;
		last;
	}
	usleep(20_000);
}
my $silent = time() - $silent_since;
ok($expired, sprintf('d is no longer live after %.1f s of silence', $silent));
cmp_ok($silent, '>=', $timeout - 0.3, 'and not before the session timeout');

# d still appears as the owner until some member's call rebalances; its
# commit is refused all the same, because it is no longer live.
is(assignment()->{d}, $pd, 'no call since: d is still listed as the owner of its partition');
my $pd_before = committed($pd);
like(try_commit($pd, 1, 'd'), qr/^55000/,
	"but the expired member d may not commit partition $pd: 55000");
is(committed($pd), $pd_before, 'its committed offset is unchanged');

my $gen7 = generation();
q1(q{SELECT count(*) FROM eventlog.consume('g', 't', 1, member => 'b')});
my $a8 = assignment();
check_exclusive($a8, 'after d expired');
is($a8->{d}, '', "after b's next call, d owns nothing");
is(join(' ', sort map { scalar(split /,/, $a8->{$_}) } qw(b c e)), '1 1 2',
	'b, c and e share the four partitions 2/1/1');
ok($a8->{b} =~ /\b$a7->{b}\b/ && $a8->{c} =~ /\b$a7->{c}\b/ && $a8->{e} =~ /\b$a7->{e}\b/,
	'sticky: b, c and e keep their partitions, one of them got d\'s');
my $gen8 = generation();
cmp_ok($gen8, '>', $gen7, "generation grows when d's partition moves ($gen7 -> $gen8)");
like(try_commit($pd, 1, 'd'), qr/^55000/, 'the expired member still may not commit: 55000');
my ($new_owner) = grep { $a8->{$_} =~ /\b$pd\b/ } qw(b c e);
is(try_commit($pd, 1, $new_owner), 'ok', "the new owner $new_owner may commit partition $pd");
is(committed($pd), '1', 'its commit is stored');

# d comes back: a new call is a new join.
my $d_again = consume_as('d');
my $a9 = assignment();
is($d_again, records_of($a9->{d}, { map { my $c = committed($_); $c eq 'none' ? () : ($_ => $c) } @all_parts }),
	"d rejoins and reads its new partition $a9->{d} from the committed offset");
check_exclusive($a9, 'after d rejoined');
is(join(' ', map { scalar(split /,/, $a9->{$_}) } qw(b c d e)), '1 1 1 1',
	'one partition each again');
is(moved($a8, $a9), 1, 'exactly one partition moved to the returning member');
cmp_ok(generation(), '>', $gen8, 'generation grows when d rejoins');

# --- An empty group: commits without member are accepted again -----------

q1(qq{SELECT eventlog.leave('g', '$_')}) for qw(b c d e);
is(q1(q{SELECT live_members || ' ' || state FROM eventlog.groups WHERE "group" = 'g'}),
	'0 empty', 'all members left: the group is empty');
is_deeply(assignment(), {}, 'no member, no assignment');
is(try_commit($pb, 2, undef), 'ok', 'commit without member is accepted in an empty group');
is(committed($pb), '2', 'and stored');
my %from = ($pa => 3, $pb => 2, $pd => 1);
is( join(',', split /\n/,
		q1(q{SELECT partition || ':' || "offset" FROM eventlog.consume('g', 't') ORDER BY 1})),
	records_of('0,1,2,3', \%from),
	'consume without member reads every partition from the committed offsets');
like(try_commit($pb, 1, undef), qr/^22023/, 'a committed offset does not move back');
like(try_commit($pb, 4, undef), qr/^22023/, 'nor beyond the high watermark');
is(committed($pb), '2', 'committed offset unchanged by refused commits');
is(q1(q{SELECT string_agg(partition || ':' || "offset", ',' ORDER BY partition, "offset")
          FROM eventlog.consume('h', 't', 100, member => 'x')}),
	records_of('0,1,2,3'), 'the other group still reads everything: groups are independent');

# --- Members that keep calling stay members ------------------------------

# With a short group timeout (shorter than the setting's), two members that
# call every 100 ms must never be taken for silent: no rebalance at all.
q1(q{SELECT eventlog.alter_group('hb', '1 s')});
consume_as($_, 'hb') for qw(p q);
my $hb_assignment = assignment('hb');
my $hb_gen = generation('hb');
is(join(' ', map { scalar(split /,/, $hb_assignment->{$_}) } qw(p q)), '2 2',
	'group hb (timeout 1 s): two members, two partitions each');
my @hb_flaps;
my $hb_start = time();
for (my $i = 0; $i < 40 && time() - $hb_start < 3; $i++)
{
	my $m = $i % 2 ? 'q' : 'p';
	q1(qq{SELECT count(*) FROM eventlog.consume('hb', 't', 1, member => '$m')});
	my $live = live_members('hb');
	my $gen = generation('hb');
	push @hb_flaps, sprintf('%.2f s: live %s, generation %s', time() - $hb_start, $live, $gen)
	  if $live ne 'p,q' || $gen ne $hb_gen;
	usleep(100_000);
}
is_deeply(\@hb_flaps, [],
	'members calling every 100 ms stay live for 3 s under a 1 s group timeout, and nothing is rebalanced');
is_deeply(assignment('hb'), $hb_assignment, 'their assignment is unchanged');

$s->quit;
$node->stop;
done_testing();
