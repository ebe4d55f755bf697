
# The background workers: the launcher, one worker per database that has
# eventlog, coalesced notifications of new records, and expiry of silent
# group members without anybody calling.
#
# With shared_preload_libraries = 'eventlog' the launcher and a worker for
# a database with the extension show in pg_stat_activity; a database
# without it keeps no worker.  A commit of records is announced to
# LISTEN "eventlog.<topic>" by the worker (not by the producer) with the
# partitions whose last stable offset moved and the new last stable
# offset; rolled-back records and records behind an open transaction are
# not announced; a topic whose channel name would be too long is announced
# on channel "eventlog"; many quick commits are coalesced, and
# eventlog.notify_interval spaces the notifications.  A member silent past
# its session timeout loses its partitions although nobody calls.  A
# terminated worker comes back; DROP EXTENSION ends it and CREATE
# EXTENSION brings it back, also when CREATE EXTENSION runs in a longer
# transaction.  Without the preload, CREATE EXTENSION says there is no
# worker and producing, fetching and consuming work.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $json = JSON::PP->new->canonical;

# A short launcher nap, so that a new database is looked at soon.  The
# extension is created by the test.  No autovacuum: the tests below count
# the transaction ids that commits take, and an ANALYZE of its own now and
# then made them vary on a loaded machine.
my $node = EventlogNode::new('worker', "eventlog.launcher_naptime = '500ms'\nautovacuum = off",
	extension => 0);

# Polls $sql until it returns $want; true if it did within $secs.
sub poll_until
{
	my ($sql, $want, $secs, $db) = @_;
	return EventlogNode::poll_until($node, $sql, $want, $secs, db => $db);
}

sub launcher_pids
{
	return $node->safe_psql('postgres',
		q{SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '')
		    FROM pg_stat_activity WHERE backend_type = 'eventlog launcher'});
}

# Pids of the workers connected to database $db ('' if none).
sub worker_pids
{
	my ($db) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '')
		     FROM pg_stat_activity
		    WHERE backend_type = 'eventlog worker' AND datname = '$db'});
}

# Waits until database $db has exactly one worker; returns its pid, or ''
# if none came within $secs.
sub wait_worker
{
	my ($db, $secs) = @_;
	my $pids;
	return EventlogNode::wait_until($secs, sub { ($pids = worker_pids($db)) =~ /^\d+$/ }) ? $pids : '';
}

# After a CREATE EXTENSION in $db: waits (up to $secs) for its worker and
# checks it came.  If none did, asks for one with start_worker() so that
# the checks that follow still tell something; returns the worker's pid.
sub worker_after_create
{
	my ($db, $secs, $what) = @_;
	my $pid = wait_worker($db, $secs);
	like($pid, qr/^\d+$/, $what);
	if ($pid eq '')
	{
		note "no worker in $db after CREATE EXTENSION: asking for one with start_worker()";
		$node->safe_psql($db, 'SELECT eventlog.start_worker()');
		$pid = wait_worker($db, 5);
	}
	return $pid;
}

# Waits until database $db has no worker; true if so within $secs.
sub wait_no_worker
{
	my ($db, $secs) = @_;
	return EventlogNode::wait_until($secs, sub { worker_pids($db) eq '' }) ? 1 : 0;
}

# --- 1. The launcher and the workers -------------------------------------

my $launcher = '';
EventlogNode::wait_until(15, sub { ($launcher = launcher_pids()) =~ /^\d+$/ });
like($launcher, qr/^\d+$/, 'one eventlog launcher runs');
is( $node->safe_psql('postgres',
		q{SELECT coalesce(datname, '-') FROM pg_stat_activity WHERE backend_type = 'eventlog launcher'}),
	'-', 'the launcher is connected to no database');

# Before CREATE EXTENSION, "postgres" keeps no worker.
ok(wait_no_worker('postgres', 10), 'no worker for a database without eventlog');

my ($ret, $out, $err) = $node->psql('postgres', 'CREATE EXTENSION eventlog');
is($ret, 0, 'CREATE EXTENSION succeeds');
unlike($err, qr/not loaded by shared_preload_libraries/,
	'with the preload CREATE EXTENSION does not say the worker is missing');
# (the launcher is told at once; a worker normally shows within 0.1 s)
my $worker = worker_after_create('postgres', 8,
	'after CREATE EXTENSION a worker for the database appears');
is($node->safe_psql('postgres', 'SELECT eventlog.start_worker()'), 't',
	'start_worker() is true with the preload');
is(worker_pids('postgres'), $worker, 'start_worker() with a worker running does not add another');

# A database created later, without eventlog: the launcher tries it (it
# looks every 500 ms) and its worker does not stay.
$node->safe_psql('postgres', 'CREATE DATABASE other');
usleep(2_500_000);
ok(wait_no_worker('other', 5), 'a new database without eventlog keeps no worker');
usleep(1_000_000);
is(worker_pids('other'), '', 'and none comes back later');
is(worker_pids('postgres'), $worker, 'the worker of "postgres" is unchanged meanwhile');

# With the extension, the other database gets a worker of its own.
$node->safe_psql('other', 'CREATE EXTENSION eventlog');
my $other_worker = worker_after_create('other', 5,
	'CREATE EXTENSION in a second database starts its worker');
isnt($other_worker, $worker, 'one worker per database');
$node->safe_psql('other', 'DROP EXTENSION eventlog CASCADE');
ok(wait_no_worker('other', 10), 'DROP EXTENSION in the second database ends its worker');
is(worker_pids('postgres'), $worker, 'and leaves the worker of "postgres" alone');

# --- 2. Notifications -----------------------------------------------------

# Notifications psql printed in $out: list of { channel, payload, pid }.
sub parse_notifications
{
	my ($text) = @_;
	my @n;
	while ($text =~
		/^Asynchronous notification "([^"]*)" with payload "(.*)" received from server process with PID (\d+)\.$/mg)
	{
		push @n, { channel => $1, payload => $2, pid => $3 };
	}
	return @n;
}

# A listening session: LISTENs on the channels, and collects what arrives.
my $listener = $node->background_psql('postgres');
my @pending;

# Runs a query in the listening session to let psql print what arrived;
# returns the new notifications (and keeps none back).
sub drain
{
	my @n = (@pending, parse_notifications($listener->query('SELECT 1')));
	@pending = ();
	return @n;
}

# Collects notifications for $secs seconds, or until $done->(\@so_far)
# holds; returns them all.
sub collect
{
	my ($secs, $done) = @_;
	my @got;
	EventlogNode::wait_until($secs, sub { push @got, drain(); return $done && $done->(\@got) }, 0.05);
	return @got;
}

sub on_channel
{
	my ($channel, @n) = @_;
	return grep { $_->{channel} eq $channel } @n;
}

sub decode
{
	my ($n) = @_;
	my $d = eval { $json->decode($n->{payload}) };
	return $d // { bad_payload => $n->{payload} };
}

my $long = 'l' x 60;       # "eventlog." . $long is 69 bytes: too long
my $edge = 'e' x 54;       # "eventlog." . $edge is 63 bytes: fits

$node->safe_psql('postgres', qq{
	SELECT eventlog.create_topic('orders', 3);
	SELECT eventlog.create_topic('other_topic', 1);
	SELECT eventlog.create_topic('$long', 2);
	SELECT eventlog.create_topic('$edge', 1);
	SELECT eventlog.create_topic('burst', 1);
	SELECT eventlog.create_topic('spaced', 1);
});
# Nobody listens yet: the worker sends no notifications, so it takes no
# transaction id however many records are committed (a notification needs
# one).  Each commit here takes one, and txid_current() one more; a little
# slack is left for the system's own (an autovacuum ANALYZE).  A worker that
# notified would take about one per commit.
sub xids_of_quiet_commits
{
	my ($topic) = @_;
	my $x0 = $node->safe_psql('postgres', 'SELECT txid_current()');
	for my $i (1 .. 20)
	{
		$node->safe_psql('postgres', qq{SELECT eventlog.produce('$topic', 'quiet$i'::text)});
		usleep(20_000);
	}
	return $node->safe_psql('postgres', 'SELECT txid_current()') - $x0;
}
my $quiet = xids_of_quiet_commits('other_topic');
ok($quiet >= 21 && $quiet <= 23,
	"while no session listens, commits wake no notification pass (21 transaction ids expected, $quiet taken)");

$listener->query_safe(qq{LISTEN "eventlog.orders"; LISTEN "eventlog"; LISTEN "eventlog.$edge";
	LISTEN "eventlog.burst"; LISTEN "eventlog.spaced"; LISTEN "eventlog.fresh"});
# Let the worker look at the new topics once (it looks at least every second).
usleep(1_500_000);
is(scalar(drain()), 0, 'creating topics announces nothing');

# A committed produce.
my $producer = $node->background_psql('postgres');
my $producer_pid = $producer->query_safe('SELECT pg_backend_pid()');
$producer->query_safe(q{BEGIN;
	SELECT eventlog.produce('orders', ('a' || i)::text, partition => 1) FROM generate_series(1, 3) i;
	COMMIT});
my @n = collect(5, sub { scalar on_channel('eventlog.orders', @{ $_[0] }) });
my @orders = on_channel('eventlog.orders', @n);
is(scalar(@orders), 1, 'a committed produce is announced once on channel "eventlog.orders"');
is( $orders[0] ? $json->encode(decode($orders[0])) : 'none',
	'{"partitions":{"1":3},"topic":"orders"}',
	'the payload names the topic, the partition and its new last stable offset');
is($orders[0] ? $orders[0]{pid} : 'none', $worker,
	'the notification comes from the worker, not from the producer');
is(scalar(@n), scalar(@orders), 'nothing is announced on other channels');
like($orders[0] ? $orders[0]{payload} : '', qr/^\{"topic": "orders", "partitions": \{"1": 3\}\}$/,
	'the payload has the documented layout');

# Two partitions in one transaction: one notification with both.
$producer->query_safe(q{BEGIN;
	SELECT eventlog.produce('orders', 'b'::text, partition => 0);
	SELECT eventlog.produce('orders', 'c'::text, partition => 2);
	SELECT eventlog.produce('orders', 'd'::text, partition => 2);
	COMMIT});
@n = collect(5, sub { scalar on_channel('eventlog.orders', @{ $_[0] }) });
usleep(300_000);
push @n, drain();
@orders = on_channel('eventlog.orders', @n);
is(scalar(@orders), 1, 'a transaction writing two partitions is announced once');
is( $orders[0] ? $json->encode(decode($orders[0])) : 'none',
	'{"partitions":{"0":1,"2":2},"topic":"orders"}',
	'with both partitions and only those');

# A rolled-back produce is not announced.
$producer->query_safe(q{BEGIN;
	SELECT eventlog.produce('orders', 'aborted'::text, partition => 1);
	SELECT eventlog.produce_batch('orders', ARRAY['x', 'y'], partition => 0);
	ROLLBACK});
@n = collect(1.5);
is(scalar(@n), 0, 'a rolled-back produce is not announced (nothing within 1.5 s)');

# The next commit is announced with the offset past the aborted record.
$producer->query_safe(q{SELECT eventlog.produce('orders', 'e'::text, partition => 1)});
@n = collect(5, sub { scalar on_channel('eventlog.orders', @{ $_[0] }) });
@orders = on_channel('eventlog.orders', @n);
my $d = $orders[0] ? decode($orders[0]) : { partitions => {} };
is($d->{partitions}{1} // 'none', 5,
	'a commit after a rollback announces the last stable offset past the aborted offset');
ok(!exists $d->{partitions}{2}, 'a partition whose last stable offset did not move is not named');
# (partition 0, where only the rolled-back batch went, may be named: its
# last stable offset moved past the aborted records)
my $listed = join(',', map { "$_:$d->{partitions}{$_}" } sort keys %{ $d->{partitions} });
my $in_view = join(',', map {
		"$_:" . $node->safe_psql('postgres',
			qq{SELECT last_stable_offset FROM eventlog.partitions WHERE topic = 'orders' AND partition = $_})
	} sort keys %{ $d->{partitions} });
is($listed, $in_view, "every partition named carries the last stable offset eventlog.partitions shows ($listed)");

# A commit behind an open transaction does not move the last stable offset:
# nothing to announce until the open one commits.  Partition 0 holds 'b' at
# 0, the rolled-back batch at 1 and 2; 'open' takes 3 and 'behind' 4.
my $open = $node->background_psql('postgres');
$open->query_safe(q{BEGIN; SELECT eventlog.produce('orders', 'open'::text, partition => 0)});
$producer->query_safe(q{SELECT eventlog.produce('orders', 'behind'::text, partition => 0)});
@n = collect(1.5);
is(scalar(on_channel('eventlog.orders', @n)), 0,
	'a commit behind an open transaction is not announced (the last stable offset did not move)');
$open->query_safe('COMMIT');
@n = collect(5, sub { scalar on_channel('eventlog.orders', @{ $_[0] }) });
@orders = on_channel('eventlog.orders', @n);
is( $orders[0] ? $json->encode(decode($orders[0])) : 'none',
	'{"partitions":{"0":5},"topic":"orders"}',
	'once the open transaction commits, the last stable offset past both records is announced');
$open->quit;

# A topic not listened to is not heard on the topic channels.
$producer->query_safe(q{SELECT eventlog.produce('other_topic', 'z'::text)});
@n = collect(1.5);
is(scalar(@n), 0, 'records of a topic nobody listens to are not heard by the listener');

# A topic whose channel name would be too long: channel "eventlog".
$producer->query_safe(qq{SELECT eventlog.produce('$long', 'long'::text, partition => 1)});
@n = collect(5, sub { scalar on_channel('eventlog', @{ $_[0] }) });
my @fallback = on_channel('eventlog', @n);
is(scalar(@fallback), 1, 'a topic of 60 characters is announced on channel "eventlog"');
is( $fallback[0] ? $json->encode(decode($fallback[0])) : 'none',
	qq{{"partitions":{"1":1},"topic":"$long"}},
	'with the whole topic name in the payload');

# At the limit: "eventlog." and 54 characters make 63 bytes, a channel.
$producer->query_safe(qq{SELECT eventlog.produce('$edge', 'edge'::text)});
@n = collect(5, sub { scalar @{ $_[0] } });
usleep(200_000);
push @n, drain();
is(join(' ', map { $_->{channel} } @n), "eventlog.$edge",
	'a topic of 54 characters (a channel of 63 bytes) is announced on its own channel');

# A topic produced to right after it is created.
$node->safe_psql('postgres',
	q{SELECT eventlog.create_topic('fresh', 1); SELECT eventlog.produce('fresh', 'first'::text)});
@n = collect(3, sub { scalar on_channel('eventlog.fresh', @{ $_[0] }) });
my @fresh = on_channel('eventlog.fresh', @n);
is( $fresh[0] ? $json->encode(decode($fresh[0])) : 'none',
	'{"partitions":{"0":1},"topic":"fresh"}',
	'the first records of a topic, produced right after create_topic, are announced');

# New topics, a topic made again under the same name and a topic given
# more partitions are announced at once, not at the worker's
# once-a-second recheck: relations changing make it read the catalog
# again, and a topic whose relations changed is looked at afresh.
$listener->query_safe(q{LISTEN "eventlog.again_a"; LISTEN "eventlog.again_b"; LISTEN "eventlog.again_c"});

# Produces one record to partition $p of $topic; returns the notifications
# of its channel and the seconds they took to arrive.
sub produce_and_hear
{
	my ($topic, $p, $value) = @_;
	my $t = time();
	$node->safe_psql('postgres', qq{SELECT eventlog.produce('$topic', '$value'::text, partition => $p)});
	my @heard = on_channel("eventlog.$topic",
		collect(3, sub { scalar on_channel("eventlog.$topic", @{ $_[0] }) }));
	return (time() - $t, @heard);
}

for my $round (['again_a', 1], ['again_b', 1], ['again_c', 1], ['again_a', 2], ['again_a', 3])
{
	my ($topic, $partitions) = @$round;
	my $p = $partitions - 1;
	$node->safe_psql('postgres',
		qq{SELECT eventlog.drop_topic('$topic') FROM eventlog.topics WHERE topic = '$topic';
		   SELECT eventlog.create_topic('$topic', $partitions)});
	usleep(100_000);    # the worker's next pass after the commit
	my ($secs, @heard) = produce_and_hear($topic, $p, 'v');
	is(@heard ? $json->encode(decode($heard[-1])) : 'none',
		qq({"partitions":{"$p":1},"topic":"$topic"}),
		"$topic, made with $partitions partition(s), is announced with its own offsets");
	cmp_ok($secs, '<', 0.5, sprintf('at once (%.3f s)', $secs));
}
$node->safe_psql('postgres', q{SELECT eventlog.add_partitions('again_a', 5)});
usleep(100_000);
my ($grow_secs, @grown) = produce_and_hear('again_a', 4, 'w');
is(@grown ? $json->encode(decode($grown[-1])) : 'none', '{"partitions":{"4":1},"topic":"again_a"}',
	'a partition added to a topic is announced');
cmp_ok($grow_secs, '<', 0.5, sprintf('at once (%.3f s)', $grow_secs));

# 200 single-record commits in quick succession: coalesced into passes.
my $burst = join("\n",
	map { "SELECT eventlog.produce('burst', 'v$_'::text);" } 1 .. 200);
my $t0 = time();
$producer->query_safe($burst);
my $burst_secs = time() - $t0;
@n = collect(5, sub { grep { (decode($_)->{partitions}{0} // 0) == 200 } on_channel('eventlog.burst', @{ $_[0] }) });
usleep(500_000);
push @n, drain();
my @burst = on_channel('eventlog.burst', @n);
note sprintf('200 commits in %.3f s: %d notifications', $burst_secs, scalar @burst);
cmp_ok(scalar(@burst), '>=', 1, '200 quick commits are announced');
# At most one pass per notify_interval (1 ms by default) notifies, and a
# pass announces everything committed before it: the count is bounded by
# the burst's duration, whatever the machine's speed, and by the commits.
my $burst_bound = int($burst_secs / 0.001) + 2;
$burst_bound = 200 if $burst_bound > 200;
cmp_ok(scalar(@burst), '<=', $burst_bound,
	sprintf('at most one notification per millisecond of the burst: %d over %.3f s (at most %d)',
		scalar @burst, $burst_secs, $burst_bound));
is(@burst ? decode($burst[-1])->{partitions}{0} : 'none', 200,
	'the last notification carries the final last stable offset');
my @lsos = map { decode($_)->{partitions}{0} // -1 } @burst;
is(join(',', @lsos), join(',', sort { $a <=> $b } @lsos), 'the announced offsets grow');
my %seen;
is(scalar(grep { $seen{$_}++ } @lsos), 0, 'no offset is announced twice');

# eventlog.notify_interval (reloaded) spaces the notifications of a topic.
$node->safe_psql('postgres', q{ALTER SYSTEM SET eventlog.notify_interval = '400ms'; SELECT pg_reload_conf()});
usleep(1_200_000);    # the worker reloads at its next pass
my $spaced = join("\n",
	map { "SELECT eventlog.produce('spaced', 'v$_'::text); SELECT pg_sleep(0.01);" } 1 .. 150);
$t0 = time();
$producer->query_safe($spaced);
my $spaced_secs = time() - $t0;
@n = collect(5, sub { grep { (decode($_)->{partitions}{0} // 0) == 150 } on_channel('eventlog.spaced', @{ $_[0] }) });
usleep(600_000);
push @n, drain();
my @spaced = on_channel('eventlog.spaced', @n);
my $bound = int($spaced_secs / 0.4) + 2;
note sprintf('150 commits over %.3f s with notify_interval 400ms: %d notifications',
	$spaced_secs, scalar @spaced);
cmp_ok(scalar(@spaced), '>=', 2, 'commits spread over a while are announced more than once');
cmp_ok(scalar(@spaced), '<=', $bound,
	sprintf('with notify_interval = 400ms, %d notifications over %.1f s (at most %d)',
		scalar @spaced, $spaced_secs, $bound));
is(@spaced ? decode($spaced[-1])->{partitions}{0} : 'none', 150,
	'the last one carries the final last stable offset');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET eventlog.notify_interval; SELECT pg_reload_conf()});

# Topics created, written and dropped while the worker announces them: a
# topic that goes away in the middle of a pass is skipped, the worker
# carries on (it used to exit with "topic ... does not exist").
{
	my $before = worker_pids('postgres');
	my $churn_log = -s $node->logfile;
	$node->safe_psql('postgres', q{
		DO $$
		BEGIN
			FOR i IN 1 .. 300 LOOP
				PERFORM eventlog.create_topic('churn' || i, 16);
				COMMIT;
				PERFORM eventlog.produce_batch('churn' || i, array_fill('x'::text, ARRAY[64]));
				COMMIT;
				PERFORM eventlog.drop_topic('churn' || i);
				COMMIT;
			END LOOP;
		END $$;
	});
	is(worker_pids('postgres'), $before, 'the worker survives 300 topics dropped while it announces them');
	my $log = slurp_file($node->logfile, $churn_log);
	unlike($log, qr/"eventlog worker".*exited with exit code/, 'no worker exit in the server log');
	$node->safe_psql('postgres', q{SELECT eventlog.create_topic('after_churn', 1)});
	my $l = $node->background_psql('postgres');
	$l->query_safe('LISTEN "eventlog.after_churn"');
	$node->safe_psql('postgres', q{SELECT eventlog.produce('after_churn', 'x'::text)});
	my $heard = EventlogNode::wait_until(10,
		sub { $l->query_safe('SELECT 1') =~ /Asynchronous notification "eventlog.after_churn"/ ? 1 : 0 }, 0.05);
	ok($heard, 'and still announces new records');
	$l->quit;
}

# --- 3. Expiry of a silent member without calls ---------------------------

$node->safe_psql('postgres', q{
	SELECT eventlog.create_topic('exp', 2);
	SELECT eventlog.alter_group('ge', '1 s');
});
$node->safe_psql('postgres',
	q{SELECT count(*) FROM eventlog.consume('ge', 'exp', 10, member => 'm1')});
my $joined = time();
is( $node->safe_psql('postgres',
		q{SELECT live || ' ' || array_to_string(partitions, ',') FROM eventlog.members
		   WHERE "group" = 'ge' AND member = 'm1'}),
	'true exp:0,exp:1', 'the member owns both partitions after consuming');
my $gen0 = $node->safe_psql('postgres', q{SELECT generation FROM eventlog.groups WHERE "group" = 'ge'});
ok(poll_until(
		q{SELECT live || ' ' || coalesce(array_to_string(partitions, ','), '') FROM eventlog.members
		   WHERE "group" = 'ge' AND member = 'm1'},
		'false ', 6),
	'with nobody calling, the silent member is shown not live with no partitions');
my $expired_after = time() - $joined;
note sprintf('partitions taken away %.2f s after the last call (session timeout 1 s)', $expired_after);
cmp_ok($expired_after, '<', 4,
	sprintf('within a few seconds of its session timeout (%.2f s after its call)', $expired_after));
cmp_ok($expired_after, '>=', 0.9, 'and not before the session timeout');
cmp_ok($node->safe_psql('postgres', q{SELECT generation FROM eventlog.groups WHERE "group" = 'ge'}),
	'>', $gen0, 'the generation grew');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog.lag WHERE "group" = 'ge' AND member IS NOT NULL}),
	'0', 'eventlog.lag shows no owner for the partitions');

# --- 4. Restarts ----------------------------------------------------------

$node->safe_psql('postgres', "SELECT pg_terminate_backend($worker)");
ok(poll_until(qq{SELECT count(*) FROM pg_stat_activity WHERE pid = $worker}, '0', 10),
	'the terminated worker is gone');
my $restarted = wait_worker('postgres', 10);    # restarted 5 s after it ended
like($restarted, qr/^\d+$/, 'a new worker for the database appears after termination');
isnt($restarted, $worker, 'with a new pid');
is(launcher_pids(), $launcher, 'the launcher is the same');
usleep(1_500_000);    # let the new worker look at the topics once
drain();
$producer->query_safe(q{SELECT eventlog.produce('orders', 'again'::text, partition => 2)});
@n = collect(5, sub { scalar on_channel('eventlog.orders', @{ $_[0] }) });
@orders = on_channel('eventlog.orders', @n);
is( $orders[0] ? $json->encode(decode($orders[0])) : 'none',
	'{"partitions":{"2":3},"topic":"orders"}',
	'the restarted worker announces new records');
is($orders[0] ? $orders[0]{pid} : 'none', $restarted, 'from the new worker');

# Expiry works in the restarted worker too.
$node->safe_psql('postgres',
	q{SELECT count(*) FROM eventlog.consume('ge', 'exp', 10, member => 'm2')});
ok(poll_until(
		q{SELECT coalesce(array_to_string(partitions, ','), '') FROM eventlog.members
		   WHERE "group" = 'ge' AND member = 'm2'},
		'', 6),
	'the restarted worker expires a silent member');

$listener->quit;
$producer->quit;

# Once the listening sessions have exited, the passes stop again.
ok(poll_until(q{SELECT count(*) FROM pg_stat_activity
		   WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()}, '0', 10),
	'the listening sessions are gone');
$quiet = xids_of_quiet_commits('orders');
ok($quiet >= 21 && $quiet <= 23,
	"after the last listening session exits, commits wake no notification pass (21 expected, $quiet taken)");

# DROP EXTENSION ends the worker; CREATE EXTENSION brings it back.
$node->safe_psql('postgres', 'DROP EXTENSION eventlog CASCADE');
ok(wait_no_worker('postgres', 10), 'DROP EXTENSION ends the worker');
usleep(1_000_000);
is(worker_pids('postgres'), '', 'and it does not come back by itself');
$node->safe_psql('postgres', 'CREATE EXTENSION eventlog');
worker_after_create('postgres', 5, 'CREATE EXTENSION again brings a worker back');

# And it announces.
$listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN "eventlog.back"');
$node->safe_psql('postgres', q{SELECT eventlog.create_topic('back', 1)});
usleep(1_500_000);
$node->safe_psql('postgres', q{SELECT eventlog.produce('back', 'x'::text)});
@n = collect(5, sub { scalar on_channel('eventlog.back', @{ $_[0] }) });
my @back = on_channel('eventlog.back', @n);
is( $back[0] ? $json->encode(decode($back[0])) : 'none',
	'{"partitions":{"0":1},"topic":"back"}',
	'the worker of the re-created extension announces new records');
$listener->quit;

# CREATE EXTENSION in a transaction that commits a while later (as in a
# migration script).
$node->safe_psql('postgres', 'DROP EXTENSION eventlog CASCADE');
ok(wait_no_worker('postgres', 10), 'DROP EXTENSION again ends the worker');
$node->safe_psql('postgres', 'BEGIN; CREATE EXTENSION eventlog; SELECT pg_sleep(1); COMMIT');
like(wait_worker('postgres', 5), qr/^\d+$/,
	'CREATE EXTENSION in a transaction that commits 1 s later still gets a worker');

$node->stop;

# --- 5. Without the preload -----------------------------------------------

my $plain = EventlogNode::new('worker_plain', undef, preload => 0, extension => 0);
($ret, $out, $err) = $plain->psql('postgres', 'CREATE EXTENSION eventlog');
is($ret, 0, 'without the preload CREATE EXTENSION succeeds');
like($err, qr/(?:NOTICE|WARNING):  eventlog is not loaded by shared_preload_libraries: no background worker/,
	'with the warning that there is no background worker');
unlike($err, qr/ERROR/, 'and no error');
($ret, $out, $err) = $plain->psql('postgres', 'SELECT eventlog.start_worker()');
is($out, 'f', 'start_worker() is false without the preload');
like($err, qr/(?:NOTICE|WARNING):  eventlog is not loaded by shared_preload_libraries: no background worker/,
	'and says why');
is( $plain->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'eventlog%'}),
	'0', 'no eventlog processes run');
$plain->safe_psql('postgres', q{SELECT eventlog.create_topic('t', 2)});
is( $plain->safe_psql('postgres', q{
		SELECT string_agg(partition || ':' || "offset", ',' ORDER BY partition, "offset")
		  FROM eventlog.produce_batch('t', ARRAY['a', 'b', 'c'], partition => 1);
	}),
	'1:0,1:1,1:2', 'producing works');
is( $plain->safe_psql('postgres',
		q{SELECT string_agg("offset" || '=' || convert_from(value, 'UTF8'), ',' ORDER BY "offset")
		    FROM eventlog.fetch('t', 1, 1)}),
	'1=b,2=c', 'fetching works');
is( $plain->safe_psql('postgres',
		q{SELECT string_agg(partition || ':' || "offset", ',' ORDER BY partition, "offset")
		    FROM eventlog.consume('g', 't', 10, member => 'm', commit => true)}),
	'1:0,1:1,1:2', 'consuming works');
is( $plain->safe_psql('postgres',
		q{SELECT committed_offset FROM eventlog.lag WHERE "group" = 'g' AND partition = 1}),
	'3', 'and commits the group offset');
$plain->stop;

done_testing();
