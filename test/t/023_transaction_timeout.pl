# eventlog.transaction_timeout: a transaction that produced records and stays
# open longer is ended by the worker, so readers move on; a transaction that
# produced nothing is never touched; a prepared one is never ended; 0 turns
# it off.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $node = EventlogNode::new('txtimeout',
	"eventlog.transaction_timeout = '2s'\nmax_prepared_transactions = 5");
EventlogNode::query($node, q{
	SELECT eventlog.create_topic('t', 1);
	SELECT eventlog.produce('t', 'before'::text);
	CREATE TABLE plain (i int);
});

sub values_from
{
	my ($from) = @_;
	return EventlogNode::query($node,
		qq{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY "offset")
		     FROM eventlog.fetch('t', 0, $from, 100)});
}

sub alive
{
	my ($pid) = @_;
	return EventlogNode::query($node, "SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") eq '1';
}

# A producer left open, a record committed after it, and a session whose
# transaction has written only to a plain table.
my $open = $node->background_psql('postgres', on_error_stop => 0);
my $open_pid = $open->query_safe('SELECT pg_backend_pid()');
$open->query_safe(q{BEGIN; SELECT eventlog.produce('t', 'left open'::text)});
my $quiet = $node->background_psql('postgres');
my $quiet_pid = $quiet->query_safe('SELECT pg_backend_pid()');
$quiet->query_safe('BEGIN; INSERT INTO plain VALUES (1)');
EventlogNode::query($node, q{SELECT eventlog.produce('t', 'after'::text)});

is(values_from(0), 'before', 'while the producer is open, readers stop before its record');
my $view = EventlogNode::query($node,
	qq{SELECT held_by_pid = $open_pid, held_since IS NOT NULL, held_until - held_since
	     FROM eventlog.partitions WHERE topic = 't'});
is($view, 't|t|00:00:02',
	'eventlog.partitions shows the holding process, since when, and when the timeout ends it');

ok(EventlogNode::wait_until(15, sub { !alive($open_pid) }),
	'the worker ends the producing transaction left open past eventlog.transaction_timeout');
is(values_from(0), 'before,after', 'readers move on: the committed record after it is read, its own is aborted');
ok($node->log_contains(qr/eventlog ended transaction \d+ of process $open_pid: it produced records and stayed open/),
	'the reason is logged');
is(EventlogNode::query($node, q{SELECT held_by FROM eventlog.partitions WHERE topic = 't'}), '',
	'nothing holds the partition any more');

# The quiet transaction produced nothing: never touched, however long.
sleep(3);
ok(alive($quiet_pid), 'a transaction that produced nothing is never ended');
$quiet->query_safe('COMMIT');
$quiet->quit;

# A prepared transaction is never ended: it holds readers until it is
# resolved, and the view says so (no process; since when it was prepared).
EventlogNode::query($node, q{
	BEGIN;
	SELECT eventlog.produce('t', 'prepared'::text);
	PREPARE TRANSACTION 'p1';
});
EventlogNode::query($node, q{SELECT eventlog.produce('t', 'after prepared'::text)});
sleep(4);
is(EventlogNode::query($node, q{SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'p1'}), '1',
	'a prepared transaction is never ended by the timeout');
is(EventlogNode::query($node,
		q{SELECT held_by IS NOT NULL, held_by_pid IS NULL, held_since IS NOT NULL, held_until IS NULL
		    FROM eventlog.partitions WHERE topic = 't'}),
	't|t|t|t', 'the view shows the prepared transaction holding, with no process and no end');
is(values_from(3), '', 'readers wait for the prepared transaction');
EventlogNode::query($node, q{COMMIT PREPARED 'p1'});
is(values_from(3), 'prepared,after prepared', 'COMMIT PREPARED lets readers on');

# 0 turns it off.
EventlogNode::query($node, q{ALTER SYSTEM SET eventlog.transaction_timeout = 0; SELECT pg_reload_conf()});
ok(EventlogNode::poll_until($node, 'SHOW eventlog.transaction_timeout', '0', 10), 'the setting is reloaded');
my $kept = $node->background_psql('postgres');
my $kept_pid = $kept->query_safe('SELECT pg_backend_pid()');
$kept->query_safe(q{BEGIN; SELECT eventlog.produce('t', 'kept open'::text)});
sleep(4);
ok(alive($kept_pid), 'with eventlog.transaction_timeout = 0 an open producer is left alone');
is(EventlogNode::query($node, q{SELECT held_until FROM eventlog.partitions WHERE topic = 't'}), '',
	'and the view names no end');
$kept->query_safe('COMMIT');
$kept->quit;
is(values_from(4), 'after prepared,kept open', 'its record is read once it commits');

$node->stop;
done_testing();
