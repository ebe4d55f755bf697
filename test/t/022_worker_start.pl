# The database's worker runs within a second of CREATE EXTENSION committing,
# and the first commits after it are announced.
#
# The launcher probes every database when the server starts; a worker sent
# to one without eventlog leaves at once.  CREATE EXTENSION right after used
# to wait out the launcher's restart delay (5 s) meant for failing workers.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $node = EventlogNode::new('start', undef, extension => 0);

# The launcher's first probe of database postgres: a worker came and went.
ok( EventlogNode::wait_until(10, sub {
			EventlogNode::query($node, q{SELECT count(*) FROM pg_stat_activity
			                              WHERE backend_type = 'eventlog launcher'}) eq '1' }),
	'the launcher runs');
sleep(1);
is(EventlogNode::query($node,
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'eventlog worker'}),
	'0', 'no worker stays in a database without eventlog');

# A session listens before the extension exists: channels need no extension.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN "eventlog.first"');

# CREATE EXTENSION, then at once a topic and a committed record, before the
# worker can have started.
EventlogNode::query($node, 'CREATE EXTENSION eventlog');
my $committed = EventlogNode::query($node, 'SELECT clock_timestamp()');
EventlogNode::query($node, q{
	SELECT eventlog.create_topic('first', 1);
	SELECT eventlog.produce('first', 'one'::text);
});

my $started;
ok( EventlogNode::wait_until(10, sub {
			$started = EventlogNode::query($node, qq{
				SELECT extract(epoch FROM backend_start - '$committed'::timestamptz)
				  FROM pg_stat_activity
				 WHERE backend_type = 'eventlog worker' AND datname = 'postgres'});
			$started ne '' }),
	'a worker serves the database after CREATE EXTENSION');
cmp_ok($started, '<', 1,
	"the worker started within 1 s of CREATE EXTENSION committing ($started s)");

# The record committed right after CREATE EXTENSION is announced.
my $heard = '';
EventlogNode::wait_until(10, sub {
		$heard .= $listener->query('SELECT 1');
		$heard =~ /Asynchronous notification "eventlog\.first" with payload "([^"]*)"/ });
like($heard, qr/Asynchronous notification "eventlog\.first" with payload "\{"topic": "first", "partitions": \{"0": 1\}\}"/,
	'the first commit after CREATE EXTENSION is announced');

# And the next one too, from the running worker.
EventlogNode::query($node, q{SELECT eventlog.produce('first', 'two'::text)});
$heard = '';
EventlogNode::wait_until(10, sub {
		$heard .= $listener->query('SELECT 1');
		$heard =~ /"0": 2/ });
like($heard, qr/"partitions": \{"0": 2\}/, 'the next commit is announced');

# DROP EXTENSION and CREATE EXTENSION again: the worker that leaves and the
# request of the new one do not lose each other.
EventlogNode::query($node, 'DROP EXTENSION eventlog CASCADE');
ok( EventlogNode::wait_until(10, sub {
			EventlogNode::query($node, q{SELECT count(*) FROM pg_stat_activity
			                              WHERE backend_type = 'eventlog worker'}) eq '0' }),
	'the worker leaves after DROP EXTENSION');
EventlogNode::query($node, 'CREATE EXTENSION eventlog');
$committed = EventlogNode::query($node, 'SELECT clock_timestamp()');
$started = '';
EventlogNode::wait_until(10, sub {
		$started = EventlogNode::query($node, qq{
			SELECT extract(epoch FROM backend_start - '$committed'::timestamptz)
			  FROM pg_stat_activity
			 WHERE backend_type = 'eventlog worker' AND datname = 'postgres'});
		$started ne '' });
ok($started ne '' && $started < 1,
	"after DROP and CREATE EXTENSION, a worker within 1 s again ($started s)");

$listener->quit;
$node->stop;
done_testing();
