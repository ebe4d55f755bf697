
# consume(..., wait => ...): blocking until records arrive.
#
# With shared_preload_libraries = 'eventlog', a waiting consumer sleeps on
# shared memory and is woken when a producer commits records to one of its
# partitions: it returns the records right after the commit, not at the end
# of the wait, and not at its next periodic check.  An open or rolled-back
# producer does not make it return; with nothing committed it returns empty
# once the wait is over; a member waits only for its own partitions; in
# REPEATABLE READ it does not wait (its snapshot could never see new
# records).  Without the preload, waiting still works by sleeping in short
# steps, and consuming without waiting works as ever.

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

# SQL of a waiting consume: returns 'records|elapsed|end', records as
# 'partition:value,...', elapsed the seconds consume took, end the epoch at
# which it returned (server clock).
sub wait_sql
{
	my ($grp, $topic, $wait, %opt) = @_;
	my $member = $opt{member} ? ", member => '$opt{member}'" : '';
	return qq{SELECT coalesce(string_agg(partition || ':' || convert_from(value, 'UTF8'), ','
	                                     ORDER BY partition, "offset"), '')
	                 || '|' || extract(epoch FROM clock_timestamp() - statement_timestamp())
	                 || '|' || extract(epoch FROM clock_timestamp())
	            FROM eventlog.consume('$grp', '$topic', 100$member, commit => true, wait => '$wait')};
}

# Waits until the backend $pid sleeps in consume (wait event of an
# extension); true if it did within 10 s.
sub sleeping
{
	my ($node, $pid) = @_;
	return EventlogNode::poll_until($node,
		qq{SELECT count(*) FROM pg_stat_activity
		    WHERE pid = $pid AND state = 'active' AND wait_event_type = 'Extension'},
		'1', 10, interval => 0.01);
}

# Produces a committed record; returns the server's clock just before the
# commit.
sub produce_at
{
	my ($node, $topic, $value, $p) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT extract(epoch FROM clock_timestamp())
		     FROM eventlog.produce('$topic', '$value'::text, partition => $p)});
}

sub run_wait_tests
{
	my ($node, $kind) = @_;
	my $w = AsyncSession->new($node, "waiter");
	my $pid = $w->query('SELECT pg_backend_pid()');

	$node->safe_psql('postgres', q{SELECT eventlog.create_topic('w', 2)});
	$node->safe_psql('postgres', q{SELECT eventlog.produce('w', 'old'::text, partition => 0)});

	# No wait: what is there, at once.
	my ($recs, $elapsed) = split /\|/, $w->query(wait_sql('gw', 'w', '0'));
	is($recs, '0:old', "$kind: consume without wait returns the committed record");
	cmp_ok($elapsed, '<', 1, "$kind: and does not wait");

	# A commit wakes the waiter at once.
	$w->send(wait_sql('gw', 'w', '10 s'));
	ok(sleeping($node, $pid), "$kind: consume with wait sleeps while there is nothing");
	my $produced = produce_at($node, 'w', 'hello', 1);
	my ($end);
	($recs, $elapsed, $end) = split /\|/, $w->wait_done(20);
	is($recs, '1:hello', "$kind: the waiter returns the record committed meanwhile");
	cmp_ok($elapsed, '<', 5, "$kind: well before the end of the wait (${elapsed} s of 10 s)");
	cmp_ok($end - $produced, '<', 0.5,
		sprintf('%s: within 0.5 s of the commit (%.3f s)', $kind, $end - $produced));

	# Nothing comes: empty once the wait is over.
	($recs, $elapsed) = split /\|/, $w->query(wait_sql('gw', 'w', '1 s'));
	is($recs, '', "$kind: nothing committed: the waiter returns nothing");
	cmp_ok($elapsed, '>=', 0.95, "$kind: after the whole wait (${elapsed} s of 1 s)");
	cmp_ok($elapsed, '<', 4, "$kind: and not much longer");

	# A producer that rolls back does not make it return.
	my $p = $node->background_psql('postgres');
	$w->send(wait_sql('gw', 'w', '2 s'));
	ok(sleeping($node, $pid), "$kind: waiting again");
	$p->query_safe(q{BEGIN; SELECT eventlog.produce('w', 'aborted'::text, partition => 0); ROLLBACK;});
	$p->query_safe(q{BEGIN; SELECT eventlog.produce_batch('w', ARRAY['a1', 'a2'], partition => 1); ROLLBACK;});
	($recs, $elapsed) = split /\|/, $w->wait_done(20);
	is($recs, '', "$kind: rolled-back records are not returned");
	cmp_ok($elapsed, '>=', 1.95, "$kind: the waiter waited the whole 2 s (${elapsed} s)");

	# An open producer does not make it return; its commit does.
	$p->query_safe(q{BEGIN; SELECT eventlog.produce('w', 'late'::text, partition => 0)});
	$w->send(wait_sql('gw', 'w', '10 s'));
	ok(sleeping($node, $pid), "$kind: waiting while a producer is open");
	usleep(1_500_000);
	ok(!$w->poll, "$kind: still waiting 1.5 s later: an open record is not delivered");
	my $before_commit = $p->query_safe('SELECT extract(epoch FROM clock_timestamp())');
	$p->query_safe('COMMIT');
	($recs, $elapsed, $end) = split /\|/, $w->wait_done(20);
	is($recs, '0:late', "$kind: the record is returned once its producer commits");
	cmp_ok($end - $before_commit, '<', 0.5,
		sprintf('%s: within 0.5 s of the commit (%.3f s)', $kind, $end - $before_commit));

	# A rollback and then a commit during one wait: only the committed one.
	$w->send(wait_sql('gw', 'w', '10 s'));
	ok(sleeping($node, $pid), "$kind: waiting once more");
	$p->query_safe(q{BEGIN; SELECT eventlog.produce('w', 'aborted-2'::text, partition => 0); ROLLBACK;});
	usleep(300_000);
	ok(!$w->poll, "$kind: a rollback does not end the wait");
	$produced = produce_at($node, 'w', 'kept', 0);
	($recs, $elapsed, $end) = split /\|/, $w->wait_done(20);
	is($recs, '0:kept', "$kind: after a rollback and a commit, only the committed record comes");
	cmp_ok($end - $produced, '<', 0.5,
		sprintf('%s: within 0.5 s of the commit (%.3f s)', $kind, $end - $produced));

	# Members wait for their own partitions only.
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM eventlog.consume('gm', 'w', 100, member => 'm0', commit => true);
		SELECT count(*) FROM eventlog.consume('gm', 'w', 100, member => 'm1', commit => true);
	});
	my %owner = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
		q{SELECT partition, member FROM eventlog.lag WHERE "group" = 'gm' AND topic = 'w'});
	is(join(',', sort keys %owner) . ' ' . join(',', sort values %owner), '0,1 m0,m1',
		"$kind: two members, one partition each");
	my $mine = $owner{0};
	my $other = $owner{1};
	$w->send(wait_sql('gm', 'w', '10 s', member => $mine));
	ok(sleeping($node, $pid), "$kind: member $mine waits for partition 0");
	produce_at($node, 'w', 'for-other', 1);
	usleep(1_200_000);
	ok(!$w->poll, "$kind: a record in the other member's partition does not end the wait");
	$produced = produce_at($node, 'w', 'for-me', 0);
	($recs, $elapsed, $end) = split /\|/, $w->wait_done(20);
	is($recs, '0:for-me', "$kind: the member gets the record of its partition, and only that one");
	cmp_ok($end - $produced, '<', 0.5,
		sprintf('%s: within 0.5 s of the commit (%.3f s)', $kind, $end - $produced));
	is( $node->safe_psql('postgres',
			q{SELECT string_agg(partition || ':' || convert_from(value, 'UTF8'), ',')
			    FROM eventlog.consume('gm', 'w', 100, member => '} . $other . q{', commit => true)}),
		'1:for-other', "$kind: the other member gets the other record");

	# REPEATABLE READ: a snapshot that cannot see new records does not wait.
	$w->query(wait_sql('gw', 'w', '0'));    # read what is there
	$w->query('BEGIN ISOLATION LEVEL REPEATABLE READ');
	($recs, $elapsed) = split /\|/, $w->query(wait_sql('gw', 'w', '3 s'));
	$w->query('COMMIT');
	is($recs, '', "$kind: nothing to read in REPEATABLE READ");
	cmp_ok($elapsed, '<', 1, "$kind: and consume does not wait in REPEATABLE READ (${elapsed} s)");

	# Sleeping, not polling: the catalog reads of a consume that does not
	# wait (one look at the partitions, with the set-up of the call) against
	# how they grow with the length of a wait for nothing.  Looking again
	# once a second or less often is sleeping; twice a second or more often
	# is polling.
	if ($kind eq 'preloaded')
	{
		my $reads_sql = q{SELECT coalesce(sum(seq_scan + coalesce(idx_scan, 0)), 0)
		                    FROM pg_stat_xact_user_tables WHERE schemaname = 'eventlog'};
		my %reads;
		for my $secs (0, 1, 4)
		{
			# (counts not yet flushed stay in the xact view: flush them)
			$w->query('SELECT pg_stat_force_next_flush()');
			$w->query('SELECT 1');
			is($w->query($reads_sql), '0', "$kind: no pending catalog reads before measuring")
			  if $secs == 0;
			$w->query('BEGIN');
			($recs, $elapsed) = split /\|/, $w->query(wait_sql('gw', 'w', "$secs s"));
			$reads{$secs} = $w->query($reads_sql);
			$w->query('COMMIT');
			die "records came while measuring" if $recs ne '';
		}
		my $per_second = ($reads{4} - $reads{1}) / 3;
		note sprintf('%s: catalog reads of consume: %d without waiting, %d waiting 1 s, %d waiting 4 s',
			$kind, $reads{0}, $reads{1}, $reads{4});
		cmp_ok($reads{0}, '>', 0, "$kind: consume reads the group catalog");
		my $looks = $reads{0} > 0 ? $per_second / $reads{0} : 99;
		cmp_ok($looks, '<', 1.5,
			sprintf('%s: waiting for nothing looks %.1f times a second (%.1f catalog reads, one look %d): it sleeps, it does not poll',
				$kind, $looks, $per_second, $reads{0}));
	}

	# A prepared producing transaction: COMMIT PREPARED delivers it during
	# the wait, not at its end.
	if ($kind eq 'preloaded')
	{
		$p->query_safe(q{BEGIN; SELECT eventlog.produce('w', 'two-phase'::text, partition => 0); PREPARE TRANSACTION 'tp'});
		$w->send(wait_sql('gw', 'w', '6 s'));
		ok(sleeping($node, $pid), "$kind: waiting while a prepared transaction holds a record");
		usleep(300_000);
		ok(!$w->poll, "$kind: a prepared record is not delivered");
		my $before = $p->query_safe('SELECT extract(epoch FROM clock_timestamp())');
		$p->query_safe(q{COMMIT PREPARED 'tp'});
		($recs, $elapsed, $end) = split /\|/, $w->wait_done(20);
		is($recs, '0:two-phase', "$kind: the record is returned once COMMIT PREPARED ran");
		cmp_ok($end - $before, '<', 2,
			sprintf('%s: within 2 s of COMMIT PREPARED (%.3f s; the wait was 6 s)', $kind, $end - $before));
	}

	$p->quit;
	$w->quit;
	return;
}

# --- With the preload: woken through shared memory -----------------------

my $node = EventlogNode::new('wait', "max_prepared_transactions = 10");
run_wait_tests($node, 'preloaded');
$node->stop;

# --- Without the preload: sleeping in short steps ------------------------

my $plain = EventlogNode::new('wait_plain', "max_prepared_transactions = 10",
	preload => 0, extension => 0);
is($plain->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'second cluster: eventlog is not preloaded');
$plain->safe_psql('postgres', 'CREATE EXTENSION eventlog');
run_wait_tests($plain, 'not preloaded');

# The group views work in a session that has not called eventlog yet.
for my $v (
	[ q{SELECT string_agg("group" || ':' || live_members, ',' ORDER BY "group") FROM eventlog.groups},
		'gm:2,gw:0', 'eventlog.groups' ],
	[ q{SELECT string_agg(member || ':' || live, ',' ORDER BY member) FROM eventlog.members},
		'm0:true,m1:true', 'eventlog.members' ],
	[ q{SELECT string_agg("group" || ':' || partition || ':' || lag, ',' ORDER BY "group", partition) FROM eventlog.lag},
		'gm:0:0,gm:1:0,gw:0:0,gw:1:0', 'eventlog.lag' ])
{
	my ($ret, $out, $err) = $plain->psql('postgres', $v->[0]);
	is("$out$err", $v->[1], "not preloaded: $v->[2] can be read in a new session");
}
$plain->stop;

done_testing();
