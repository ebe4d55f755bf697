# A psql session that runs SQL without blocking the test: send() queues a
# script, poll() tells whether it finished, wait_done() waits for it and
# query() does both.  The output and the messages of the last script are in
# {result} and {errors} (psql's verbose messages, with their SQLSTATE).
# wait_done() and query() die on an error, unless the session was made with
# errors_ok => 1 (the caller looks at {errors} itself).
#
#   use FindBin;
#   use lib "$FindBin::RealBin/../perl";
#   use AsyncSession;
#   my $s = AsyncSession->new($node, 'consumer');
#   my $w = AsyncSession->new($node, 'worker', errors_ok => 1);
#   ok(AsyncSession::waits_for_lock($node, $pid), 'waits');
package AsyncSession;

use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(time usleep);

use EventlogNode;

sub new
{
	my ($class, $node, $name, %opts) = @_;
	my $self = bless {
		name => $name, in => '', out => '', err => '', n => 0,
		busy => 0, banner => undef, result => '', errors => '',
		errors_ok => $opts{errors_ok} // 0,
	}, $class;
	$self->{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq',
			'-v', 'ON_ERROR_STOP=0', '-v', 'VERBOSITY=verbose',
			'-d', $node->connstr('postgres'), '-f', '-'
		],
		'<', \$self->{in}, '>', \$self->{out}, '2>', \$self->{err});
	return $self;
}

# Queues a script; a banner on both outputs marks its end.
sub send
{
	my ($self, $sql) = @_;
	die "$self->{name} is busy" if $self->{busy};
	$self->{n}++;
	$self->{banner} = "async $self->{name} done $self->{n}";
	$self->{sql} = $sql;
	$self->{in} .= "$sql\n;\n\\echo '$self->{banner}'\n\\warn '$self->{banner}'\n";
	$self->{busy} = 1;
	$self->{h}->pump_nb;
	return;
}

# True once the last script finished.
sub poll
{
	my ($self) = @_;
	return 1 unless $self->{busy};
	$self->{h}->pump_nb;
	my $b = $self->{banner};
	if ($self->{out} =~ /^\Q$b\E$/m && $self->{err} =~ /^\Q$b\E$/m)
	{
		($self->{result}) = $self->{out} =~ /^(.*?)\n?^\Q$b\E$/ms;
		($self->{errors}) = $self->{err} =~ /^(.*?)^\Q$b\E$/ms;
		$self->{out} = $self->{err} = '';
		$self->{busy} = 0;
		return 1;
	}
	die "$self->{name}: psql exited" unless $self->{h}->pumpable;
	return 0;
}

sub wait_done
{
	my ($self, $timeout) = @_;
	my $until = time() + ($timeout // 60);
	until ($self->poll)
	{
		die "$self->{name}: timed out running $self->{sql}" if time() > $until;
		usleep(2000);
	}
	die "$self->{name}: $self->{errors}" if !$self->{errors_ok} && $self->{errors} =~ /ERROR/;
	return $self->{result};
}

sub query
{
	my ($self, $sql) = @_;
	$self->send($sql);
	return $self->wait_done;
}

# True once the backend $pid waits for a heavyweight lock (a row lock
# waits on the holder's transaction), within 10 s.  A function:
# AsyncSession::waits_for_lock($node, $pid).
sub waits_for_lock
{
	my ($node, $pid) = @_;
	return EventlogNode::poll_until($node,
		qq{SELECT count(*) FROM pg_stat_activity WHERE pid = $pid AND wait_event_type = 'Lock'},
		'1', 10, interval => 0.01);
}

sub quit
{
	my ($self) = @_;
	$self->{in} .= "\\q\n";
	$self->{h}->finish;
	return;
}

1;
