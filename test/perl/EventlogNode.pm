# A throwaway cluster for a TAP test, with eventlog preloaded and the
# extension created in database postgres.
#
#   use FindBin;
#   use lib "$FindBin::RealBin/../perl";
#   use EventlogNode;
#   my $node = EventlogNode::new('name', "max_prepared_transactions = 10");
package EventlogNode;

use strict;
use warnings;

use PostgreSQL::Test::Cluster;

sub new
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'eventlog'" . (defined $conf ? "\n$conf" : ''));
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION eventlog');
	return $node;
}

1;
