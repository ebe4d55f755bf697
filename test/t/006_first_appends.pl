# Concurrent first appends into empty partitions: the backends that create a
# partition's metapage race with the ones that already append to it.  This
# once deadlocked (the extension lock against the metapage buffer); every
# round must finish, with dense offsets.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $node = EventlogNode::new('first_appends');

my $script = $node->basedir . '/produce.sql';
for my $round (1 .. 10)
{
	my $topic = "fresh$round";
	$node->safe_psql('postgres', "SELECT eventlog.create_topic('$topic', 2)");
	open my $fh, '>', $script or die $!;
	print $fh "SELECT eventlog.produce('$topic', 'v'::text, partition => :client_id % 2);\n";
	close $fh;
	# A hang fails the round instead of hanging the suite.
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(
		[ 'timeout', '60', 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '25', '-f', $script,
		  '-h', $node->host, '-p', $node->port, 'postgres' ],
		'>', \$out, '2>', \$err);
	ok($ok, "round $round: 8 clients append into fresh partitions and all finish")
	  or diag($err);
	is($node->safe_psql('postgres',
			qq{SELECT sum(high_watermark) || ' ' || bool_and(high_watermark = last_stable_offset)
			     FROM eventlog.partitions WHERE topic = '$topic'}),
		'200 true', "round $round: 200 records, offsets dense in both partitions");
}

$node->stop;
done_testing();
