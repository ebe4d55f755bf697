
# Exactly-once processing with consume(..., commit => true) under churn
# (guarantees 4 and 5).
#
# Four worker sessions process a topic of 4 partitions, each transaction
# inserting what consume() returned into a table whose primary key is
# (partition, offset), while a producer keeps appending (some of its
# transactions roll back, some stay open a while).  The workers roll back
# now and then (also to a savepoint), consume twice in one transaction,
# stall inside a transaction past the group's session timeout, fall silent
# outside one past it, leave and come back; one member joins late, one
# leaves for good and one falls silent for good.  In the end the table
# must hold every committed record exactly once and nothing else, each
# partition processed in offset order, and the lag view must show 0.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use AsyncSession;
use EventlogNode;
use Time::HiRes qw(time usleep);

srand(1011);

my $node = EventlogNode::new('exactly_once',
	"max_prepared_transactions = 10\ndeadlock_timeout = 100ms\nlog_lock_waits = on");

my $timeout = 1;    # the group's session timeout, seconds
$node->safe_psql('postgres', qq{
	SELECT eventlog.create_topic('t', 4, segment_records => 37);
	SELECT eventlog.alter_group('g', '$timeout s');
	CREATE TABLE processed (
		topic     text NOT NULL,
		partition int NOT NULL,
		"offset"  bigint NOT NULL,
		value     text NOT NULL,
		worker    text NOT NULL,
		seq       bigserial,
		PRIMARY KEY (partition, "offset"));
});

# ---------------------------------------------------------------------------
# Producing.  Every record has a unique value; the ledger knows the
# partition and offset of each committed one, and the values of the aborted
# ones.
# ---------------------------------------------------------------------------

my %ledger;     # "p:o:value" => 1, committed records
my %aborted;    # value => 1
my $nbatch = 0;
my @errors;

# SQL producing a batch, and the values it holds.
sub batch_sql
{
	my ($n, $kind) = @_;
	$nbatch++;
	my @vals = map { "$kind$nbatch-$_" } 1 .. $n;
	my @keys = map { 'k' . int(rand(100000)) } 1 .. $n;
	my $sql = sprintf(
		q{SELECT partition || ':' || "offset" FROM eventlog.produce_batch('t', ARRAY[%s], ARRAY[%s]);},
		join(',', map { "'$_'" } @vals), join(',', map { "'$_'" } @keys));
	return ($sql, \@vals);
}

sub record_batch
{
	my ($vals, $out, $committed) = @_;
	my @po = grep { /^\d+:\d+$/ } split /\n/, $out;
	die "produce_batch returned " . scalar(@po) . " rows for " . scalar(@$vals) . " values"
	  unless @po == @$vals;
	for my $i (0 .. $#po)
	{
		if ($committed) { $ledger{"$po[$i]:$vals->[$i]"} = 1 }
		else { $aborted{ $vals->[$i] } = 1 }
	}
	return;
}

# Before consuming starts: 20 committed batches of 100, 4 aborted of 50.
{
	my $setup = AsyncSession->new($node, 'setup', errors_ok => 1);
	for my $i (1 .. 24)
	{
		my $commit = $i % 6 != 3;
		my ($sql, $vals) = batch_sql($commit ? 100 : 50, $commit ? 'c' : 'a');
		$setup->send("BEGIN; $sql " . ($commit ? 'COMMIT;' : 'ROLLBACK;'));
		my $out = $setup->wait_done;
		die "producing failed: $setup->{errors}" if $setup->{errors} =~ /ERROR/;
		record_batch($vals, $out, $commit);
	}
	$setup->quit;
}
note scalar(keys %ledger) . ' records committed, ' . scalar(keys %aborted)
  . ' aborted before consuming started';

# ---------------------------------------------------------------------------
# The run: a producer and four workers, driven by one loop.
# ---------------------------------------------------------------------------

sub consume_sql
{
	my ($w, $tag) = @_;
	return qq{WITH ins AS (INSERT INTO processed (topic, partition, "offset", value, worker)
	            SELECT topic, partition, "offset", convert_from(value, 'UTF8'), '$w'
	              FROM eventlog.consume('g', 't', 20, member => '$w', commit => true)
	            RETURNING 1)
	          SELECT '$tag=' || count(*) FROM ins;};
}

my %stats;
my $start = time();
my $main_end = $start + 10;    # churn and producing stop here
my $deadline = $start + 30;    # the drain must be over by then

my $producer = AsyncSession->new($node, 'producer', errors_ok => 1);
my $prod_pending;    # [values, committed?] of the batch being produced
my $prod_done = 0;   # the final batch was produced

my %w;
for my $i (1 .. 4)
{
	my $name = "w$i";
	$w{$name} = {
		s => AsyncSession->new($node, $name, errors_ok => 1),
		state => 'active',
		next_at => $start + ($i == 4 ? 3 : rand(0.3)),    # w4 joins late
		action => '',
	};
}

# What a worker does next.
sub worker_action
{
	my ($name, $wk, $now) = @_;
	my $churn = $now < $main_end;
	my $r = rand();
	my $ins = consume_sql($name, 'ok');
	my $ins_rb = consume_sql($name, 'rb');
	my $think = sprintf('SELECT FROM pg_sleep(%.3f);', rand(0.03));

	# Permanent departures: w3 leaves at 6 s, w2 goes silent at 7 s.
	if ($name eq 'w3' && $now > $start + 6)
	{
		$wk->{state} = 'gone';
		return ('leave-for-good', qq{SELECT 'left=' || eventlog.leave('g', '$name');});
	}
	if ($name eq 'w2' && $now > $start + 7)
	{
		$wk->{state} = 'gone';
		return ('silent-for-good', undef);
	}

	return ('commit', "BEGIN; $ins $think COMMIT;") if !$churn && $r < 0.85;
	return ('rollback', "BEGIN; $ins_rb $think ROLLBACK;") if !$churn;

	# After a stall, a silence or a leave, a worker stays for a second
	# before the next one: they are drawn per action, and with quick calls
	# a worker could otherwise spend the whole run away.
	$r *= 0.86 if $now < ($wk->{calm_until} // 0);
	$wk->{calm_until} = $now + $timeout + 1.5 if $r >= 0.86;

	return ('commit', "BEGIN; $ins $think COMMIT;") if $r < 0.58;
	return ('rollback', "BEGIN; $ins_rb $think ROLLBACK;") if $r < 0.72;
	return ('savepoint', "BEGIN; SAVEPOINT s; $ins_rb ROLLBACK TO SAVEPOINT s; $ins $think COMMIT;")
	  if $r < 0.79;
	return ('double', "BEGIN; $ins $think $ins COMMIT;") if $r < 0.86;
	# Stall inside the transaction past the session timeout: the others
	# take the partitions over, but the locked ones are theirs until commit.
	return ('stall', "BEGIN; $ins SELECT FROM pg_sleep($timeout + 0.3); COMMIT;") if $r < 0.89;
	# Fall silent past the session timeout, then come back.
	if ($r < 0.93)
	{
		$wk->{next_at} = $now + $timeout + 0.4;
		return ('silent', undef);
	}
	if ($r < 0.97)
	{
		$wk->{rejoin} = 1;
		return ('leave', qq{SELECT 'left=' || eventlog.leave('g', '$name');});
	}
	# Peek without committing: a heartbeat that reads, and changes nothing.
	return ('read-only', qq{SELECT count(*) FROM eventlog.consume('g', 't', 5, member => '$name');});
}

sub take_result
{
	my ($name, $wk) = @_;
	my $s = $wk->{s};
	if ($s->{errors} =~ /\S/)
	{
		push @errors, "$name ($wk->{action}): $s->{errors}";
	}
	for my $line (split /\n/, $s->{result})
	{
		$stats{committed_rows} += $1 if $line =~ /^ok=(\d+)$/;
		$stats{rolled_back_rows} += $1 if $line =~ /^rb=(\d+)$/;
		$stats{"rows_$name"} += $1 if $line =~ /^ok=(\d+)$/;
	}
	$stats{ $wk->{action} }++;
	return;
}

my $last_gen = -1;
my $gen_changes = 0;
my $drained = 0;
my $loops = 0;
my $gen_session = AsyncSession->new($node, 'monitor', errors_ok => 1);

while (time() < $deadline && $loops++ < 200_000)
{
	my $now = time();

	# Producer: batches of 10-30 every ~50 ms while the churn lasts, some
	# rolled back, some held open for a while; then one last committed
	# batch with a record in every partition.
	if ($producer->poll)
	{
		if ($prod_pending)
		{
			push @errors, "producer: $producer->{errors}" if $producer->{errors} =~ /\S/;
			record_batch($prod_pending->[0], $producer->{result}, $prod_pending->[1])
			  unless $producer->{errors} =~ /ERROR/;
			$prod_pending = undef;
		}
		if ($now < $main_end)
		{
			my $r = rand();
			my $commit = $r < 0.8;
			my ($sql, $vals) = batch_sql(10 + int(rand(21)), $commit ? 'c' : 'a');
			my $hold = $r < 0.2 ? 'SELECT FROM pg_sleep(0.3);' : 'SELECT FROM pg_sleep(0.05);';
			$producer->send("BEGIN; $sql $hold " . ($commit ? 'COMMIT;' : 'ROLLBACK;'));
			$prod_pending = [ $vals, $commit ];
		}
		elsif (!$prod_done)
		{
			$nbatch++;
			my @vals = map { "last-$_" } 0 .. 3;
			$producer->send('BEGIN; '
				  . join(' ',
					map { qq{SELECT partition || ':' || "offset" FROM eventlog.produce('t', 'last-$_'::text, partition => $_);} }
					  0 .. 3)
				  . ' COMMIT;');
			$prod_pending = [ \@vals, 1 ];
			$prod_done = 1;
		}
	}

	# Workers.
	for my $name (sort keys %w)
	{
		my $wk = $w{$name};
		my $s = $wk->{s};
		next unless $s->poll;
		if ($wk->{action} ne '')
		{
			take_result($name, $wk);
			$wk->{action} = '';
			$wk->{next_at} = $now + 0.2 + rand(0.8) if $wk->{rejoin};
			$wk->{rejoin} = 0;
		}
		next if $wk->{state} ne 'active' || $now < $wk->{next_at};
		my ($action, $sql) = worker_action($name, $wk, $now);
		$stats{$action}++ unless defined $sql;
		next unless defined $sql;
		$wk->{action} = $action;
		$s->send($sql);
	}

	# Watch the generation and, once producing is over, whether everything
	# was processed.
	if ($gen_session->poll)
	{
		my ($gen, $left) = split /\|/, $gen_session->{result} =~ s/\s+$//r;
		if (defined $gen && $gen ne '')
		{
			$gen_changes++ if $last_gen >= 0 && $gen != $last_gen;
			$last_gen = $gen;
			if ($prod_done && !$prod_pending && defined $left && $left eq '0')
			{
				$drained = 1;
				last;
			}
		}
		$gen_session->send(q{SELECT (SELECT generation FROM eventlog.groups WHERE "group" = 'g')
		                         || '|' || (SELECT coalesce(sum(lag), -1) FROM eventlog.lag WHERE "group" = 'g')
		                              + (SELECT count(*) FROM eventlog.partitions WHERE topic = 't' AND unstable_records > 0);});
	}
	usleep(2000);
}
my $elapsed = time() - $start;

# Let every session finish what it is doing.
for my $name (sort keys %w)
{
	my $wk = $w{$name};
	$wk->{s}->wait_done;
	take_result($name, $wk) if $wk->{action} ne '';
	$wk->{s}->quit;
}
$producer->wait_done;
if ($prod_pending)
{
	push @errors, "producer: $producer->{errors}" if $producer->{errors} =~ /\S/;
	record_batch($prod_pending->[0], $producer->{result}, $prod_pending->[1]);
}
$producer->quit;
$gen_session->wait_done;
$gen_session->quit;

note sprintf('run took %.1f s; %s', $elapsed,
	join(', ', map { "$_=$stats{$_}" } sort keys %stats));
note "generation changed $gen_changes times (last seen $last_gen)";

# ---------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------

ok($drained, sprintf('the remaining members consumed everything (lag 0) within %.1f s', $elapsed));
my @dup_errors = grep { /23505/ } @errors;
is_deeply(\@dup_errors, [], 'no worker hit the primary key: no record was processed twice');
is_deeply(\@errors, [], 'no session got an error');

# The churn really happened.
cmp_ok($stats{rolled_back_rows} // 0, '>', 0,
	($stats{rolled_back_rows} // 0) . ' consumed records were rolled back and had to come again');
cmp_ok(($stats{leave} // 0) + ($stats{'leave-for-good'} // 0), '>', 0, 'members left');
cmp_ok(($stats{silent} // 0) + ($stats{'silent-for-good'} // 0), '>', 0,
	'members fell silent past the session timeout');
cmp_ok($stats{stall} // 0, '>', 0, 'members stalled inside a transaction past the session timeout');
cmp_ok($gen_changes, '>=', 5, "the assignment changed $gen_changes times while it ran");
for my $name (sort keys %w)
{
	cmp_ok($stats{"rows_$name"} // 0, '>', 0, "$name processed records");
}

# Exactly the committed records, once each.
sub diff_sets
{
	my ($got, $want) = @_;
	my %g = map { $_ => 1 } @$got;
	my @missing = grep { !$g{$_} } sort keys %$want;
	my @extra = grep { !$want->{$_} } @$got;
	my @msg;
	push @msg, scalar(@missing) . ' missing: ' . join(' ', @missing[0 .. ($#missing < 9 ? $#missing : 9)])
	  if @missing;
	push @msg, scalar(@extra) . ' unexpected: ' . join(' ', @extra[0 .. ($#extra < 9 ? $#extra : 9)])
	  if @extra;
	return join('; ', @msg);
}

my @processed = split /\n/, $node->safe_psql('postgres',
	q{SELECT partition || ':' || "offset" || ':' || value FROM processed ORDER BY partition, "offset"});
my @in_topic = split /\n/, $node->safe_psql('postgres',
	q{SELECT partition || ':' || "offset" || ':' || convert_from(value, 'UTF8')
	    FROM eventlog_topics.t ORDER BY partition, "offset"});
my $ncommitted = scalar(keys %ledger);
cmp_ok($ncommitted, '>', 2500, "$ncommitted records committed, " . scalar(keys %aborted) . ' aborted');
is(diff_sets(\@in_topic, \%ledger), '', 'the topic holds exactly the records whose producers committed');
is(diff_sets(\@processed, \%ledger), '',
	'processed holds every committed record and nothing else');
is(scalar(@processed), $ncommitted, 'one row per committed record');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM processed WHERE value NOT LIKE 'c%' AND value NOT LIKE 'last-%'}),
	'0', 'no record of an aborted transaction was processed');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (
		    SELECT "offset", lag("offset") OVER (PARTITION BY partition ORDER BY seq) AS prev
		      FROM processed) s
		 WHERE prev >= "offset"}),
	'0', 'each partition was processed in offset order');
# Handovers happened with records on both sides.  Not every partition
# must see one: a partition whose backlog its owner drains between two
# rebalances can stay with it for the whole run.
cmp_ok( $node->safe_psql('postgres',
		q{SELECT count(*) FROM (SELECT partition FROM processed GROUP BY partition
		                        HAVING count(DISTINCT worker) >= 2) s}),
	'>=', 2, 'at least half of the partitions were processed by several members over the run');

is( $node->safe_psql('postgres', q{
		SELECT string_agg(l.partition || ':' || l.lag || ':' || (l.committed_offset = p.high_watermark),
		                  ',' ORDER BY l.partition)
		  FROM eventlog.lag l JOIN eventlog.partitions p USING (topic, partition)
		 WHERE l."group" = 'g' AND l.topic = 't'}),
	'0:0:true,1:0:true,2:0:true,3:0:true',
	'eventlog.lag: lag 0 and committed offset at the high watermark in every partition');

# A member that calls again, alone in the group once the others expired,
# gets nothing: nothing is delivered twice.
usleep(($timeout + 0.3) * 1_000_000);
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog.consume('g', 't', 1000, member => 'w1', commit => true)}),
	'0', 'consuming again returns nothing');
is( $node->safe_psql('postgres',
		q{SELECT array_to_string(partitions, ',') FROM eventlog.members WHERE "group" = 'g' AND live}),
	't:0,t:1,t:2,t:3', 'that member was alone and owned every partition');

# A trailing aborted record: once the group has read past it, it is no lag.
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT eventlog.produce('t', 'trailing-abort'::text, partition => 0);
	ROLLBACK;
});
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog.consume('g', 't', 1000, member => 'w1', commit => true)}),
	'0', 'a rolled-back record is not consumed');
is( $node->safe_psql('postgres',
		q{SELECT l.lag || ':' || l.committed_offset || ':' || p.last_stable_offset
		    FROM eventlog.lag l JOIN eventlog.partitions p USING (topic, partition)
		   WHERE l."group" = 'g' AND l.topic = 't' AND l.partition = 0}),
	do {
		my $lso = $node->safe_psql('postgres',
			q{SELECT last_stable_offset FROM eventlog.partitions WHERE topic = 't' AND partition = 0});
		"0:$lso:$lso";
	},
	'a consumer that read past a trailing aborted record has no lag (as in Kafka, its position moves past it)');

$node->stop;
done_testing();
