
# Mirrors (issue 4, item 5): the worker of one server pulls topics from
# another eventlog server over libpq and appends them with the same
# partitions and offsets, progress in the same transaction as the records.
#
# Two clusters on unix sockets, both with shared_preload_libraries.
#  1. A topic with keys, headers, a large value, a NULL value and aborted
#     transactions (gaps) is copied identically: every record of fetch()
#     (offset, key, value, headers, ts) and every high watermark; an aborted
#     transaction at the end of a source partition leaves no lasting lag.
#  2. The source is stopped (immediate) while a producer runs: the mirror
#     shows the error, the target keeps a prefix of the source, and after the
#     restart it catches up exactly (no duplicate, nothing missing).
#  3. The target is stopped (immediate) in the middle of copying: after the
#     restart it resumes and ends identical, no offset twice.
#  4. groups => true: a source group's committed offsets show on the target
#     (never beyond what was copied), a consumer there continues after them,
#     and the mirror does not move the target group back afterwards.
#  5. Bad input: privileges, conninfo syntax, an unreachable source, a source
#     without eventlog, topics missing on either side or with too few
#     partitions (with the hint shown), a pass failing halfway (its aborted
#     records cut off on retry), a target topic with its own records, local
#     writes into a mirrored topic, duplicate and unknown names, pause and
#     resume, drop, and passwords (also sslpassword) kept out of the views.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $t_start = time();

my $conf = "eventlog.launcher_naptime = '500ms'\nfsync = off\nautovacuum = off";
my $source = EventlogNode::new('mirror_source', $conf);
my $target = EventlogNode::new('mirror_target', $conf);
# The source's connection string, quoted for an SQL literal.
sub sql_quoted { my ($s) = @_; $s =~ s/'/''/g; return $s; }
my $src_conn = sql_quoted($source->connstr('postgres'));
note "source: $src_conn";

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# Every record of partitions 0 .. $nparts-1 of $topic, as fetch() returns
# them, one line per record: partition|offset|key|md5(value)|length|headers|ts.
sub records
{
	my ($node, $topic, $nparts) = @_;
	return $node->safe_psql('postgres', qq{
		SET timezone = 'UTC';
		SELECT coalesce(string_agg(
		         concat_ws('|', f.partition, f."offset", coalesce(quote_literal(f.key), 'NULL'),
		                   coalesce(md5(f.value), 'NULL'), coalesce(length(f.value)::text, '-'),
		                   coalesce(f.headers::text, 'NULL'), f.ts::text),
		         E'\\n' ORDER BY f.partition, f."offset"), '')
		  FROM generate_series(0, $nparts - 1) p,
		       LATERAL eventlog.fetch('$topic', p, 0, 1000000) f});
}

# High watermarks of partitions 0 .. $nparts-1: "0:12,1:7,2:30".
sub watermarks
{
	my ($node, $topic, $nparts) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(partition || ':' || high_watermark, ',' ORDER BY partition)
		  FROM eventlog.partitions WHERE topic = '$topic' AND partition < $nparts});
}

# Compares two record listings; on a difference, says where.
sub same_records
{
	my ($got, $want, $what) = @_;
	return pass($what) if $got eq $want;
	fail($what);
	my @g = split /\n/, $got;
	my @w = split /\n/, $want;
	diag sprintf('target has %d records, source %d', scalar @g, scalar @w);
	for my $i (0 .. ($#g > $#w ? $#g : $#w))
	{
		my ($a, $b) = ($g[$i] // '(none)', $w[$i] // '(none)');
		next if $a eq $b;
		diag "first difference at line $i:\n  target: $a\n  source: $b";
		last;
	}
	return 0;
}

# True if, in every partition, the target's records are the first records
# of the source's (same lines), nothing else.
sub is_prefix
{
	my ($got, $want) = @_;
	my (%g, %w);
	push @{ $g{ (split /\|/, $_)[0] } }, $_ for split /\n/, $got;
	push @{ $w{ (split /\|/, $_)[0] } }, $_ for split /\n/, $want;
	for my $p (keys %g)
	{
		my @gp = @{ $g{$p} };
		my @wp = @{ $w{$p} // [] };
		return "partition $p: target has " . scalar(@gp) . " records, source " . scalar(@wp)
		  if @gp > @wp;
		for my $i (0 .. $#gp)
		{
			return "partition $p, record $i: target $gp[$i], source $wp[$i]"
			  if $gp[$i] ne $wp[$i];
		}
	}
	return '';
}

# Polls $sql on $node until it returns $want; true if so within $secs.  A
# query that fails counts as not yet.
sub poll_until
{
	my ($node, $sql, $want, $secs) = @_;
	return EventlogNode::poll_until($node, $sql, $want, $secs, errors_ok => 1);
}

# A mirror's row of eventlog.mirrors on the target: "state|lag|last_error".
sub mirror_row
{
	my ($name) = @_;
	return $target->safe_psql('postgres',
		qq{SELECT state || '|' || coalesce(lag::text, 'NULL') || '|' || coalesce(last_error, '')
		     FROM eventlog.mirrors WHERE name = '$name'});
}

# Waits until the target holds exactly the source's records of $topic and
# the mirror says running with lag 0; true if so within $secs.
sub wait_synced
{
	my ($name, $topic, $nparts, $secs) = @_;
	my $sql = qq{SELECT string_agg(partition || ':' || n || ':' || o, ',' ORDER BY partition)
	               FROM (SELECT p AS partition, count(f.*) AS n, coalesce(max(f."offset"), -1) AS o
	                       FROM generate_series(0, $nparts - 1) p
	                       LEFT JOIN LATERAL eventlog.fetch('$topic', p, 0, 1000000) f ON true
	                      GROUP BY p) s};
	my ($want, $ret, $got, $row);
	return 1 if EventlogNode::wait_until(
		$secs,
		sub {
			$want = $source->safe_psql('postgres', $sql);
			($ret, $got) = $target->psql('postgres', $sql);
			$row = mirror_row($name);
			return $ret == 0 && $got eq $want && $row =~ /^running\|0\|/;
		});
	diag "not synced after $secs s: source $want, target $got, mirror $row";
	return 0;
}

# Waits until the mirror's last_error matches $re; returns its row.
sub wait_error_like
{
	my ($name, $re, $secs) = @_;
	my $row;
	EventlogNode::wait_until($secs, sub { ($row = mirror_row($name)) =~ /^error\|[^|]*\|.*$re/s });
	return $row;
}

# Lets an erring mirror retry at once instead of after its backoff.
sub retry_now
{
	my ($name) = @_;
	$target->safe_psql('postgres',
		qq{UPDATE eventlog.mirror SET retry_at = NULL WHERE name = '$name'});
}

# Waits until the mirror $name shows state $state; returns its row.
sub wait_state
{
	my ($name, $state, $secs) = @_;
	my $row;
	EventlogNode::wait_until($secs, sub { ($row = mirror_row($name)) =~ /^\Q$state\E\|/ });
	return $row;
}

# ---------------------------------------------------------------------------
# 1. A topic with everything in it, copied identically
# ---------------------------------------------------------------------------

# Segments of other sizes on each side: offsets are kept, segments are not.
$source->safe_psql('postgres', q{
	SELECT eventlog.create_topic('orders', 3, segment_records => 1000);
	-- keyed records with headers (the key decides the partition)
	SELECT count(*) FROM eventlog.produce_batch('orders',
		(SELECT array_agg('order ' || i ORDER BY i) FROM generate_series(1, 60) i),
		(SELECT array_agg('customer-' || (i % 7) ORDER BY i) FROM generate_series(1, 60) i),
		(SELECT array_agg(jsonb_build_object('seq', i::text, 'src', 'shop') ORDER BY i) FROM generate_series(1, 60) i));
	-- an aborted transaction in every partition: gaps
	BEGIN;
	SELECT count(*) FROM eventlog.produce_batch('orders', ARRAY['lost a', 'lost b'], partition => 0);
	SELECT count(*) FROM eventlog.produce_batch('orders', ARRAY['lost c'], partition => 1);
	SELECT count(*) FROM eventlog.produce_batch('orders', ARRAY['lost d', 'lost e', 'lost f'], partition => 2);
	ROLLBACK;
	-- a large value (well past a page), binary, not compressible
	SELECT eventlog.produce('orders',
		(SELECT string_agg(sha256(int4send(i)), '' ORDER BY i) FROM generate_series(1, 1500) i),
		key => 'big', headers => '{"kind": "large"}');
	-- a NULL value (a tombstone), a NULL key, unicode and bytes 0
	SELECT eventlog.produce('orders', NULL::bytea, key => 'customer-1');
	SELECT eventlog.produce('orders', '\x00ff00'::bytea, partition => 1, headers => '{"ключ": "значение", "empty": null}');
	SELECT eventlog.produce('orders', 'über'::text, key => 'ключ-ü');
	-- an aborted subtransaction
	BEGIN;
	SELECT eventlog.produce('orders', 'kept 1'::text, partition => 2);
	SAVEPOINT s;
	SELECT eventlog.produce('orders', 'undone'::text, partition => 2);
	ROLLBACK TO s;
	SELECT eventlog.produce('orders', 'kept 2'::text, partition => 2);
	COMMIT;
	-- and one last committed record in every partition
	SELECT eventlog.produce('orders', 'last'::text, partition => p) FROM generate_series(0, 2) p;
});
my $big_len = $source->safe_psql('postgres',
	q{SELECT max(length(value)) FROM eventlog_topics.orders});
cmp_ok($big_len, '>', 8192, "the source holds a value of $big_len bytes");
like($source->safe_psql('postgres',
		q{SELECT count(*) FROM generate_series(0, 2) p,
		         LATERAL (SELECT "offset" - lag("offset") OVER (ORDER BY "offset") AS d
		                    FROM eventlog.fetch('orders', p, 0, 1000)) g WHERE d > 1}),
	qr/^[3-9]$/, 'the source has gaps in every partition');

$target->safe_psql('postgres', q{SELECT eventlog.create_topic('orders', 3, segment_records => 1300)});
$target->safe_psql('postgres',
	qq{SELECT eventlog.create_mirror('m1', '$src_conn', ARRAY['orders'])});
is($target->safe_psql('postgres', q{SELECT state FROM eventlog.mirrors WHERE name = 'm1'}) =~ /^(starting|running)$/ ? 1 : 0,
	1, 'a new mirror shows state starting (or running)');
ok(wait_synced('m1', 'orders', 3, 15), 'the mirror catches up: running, lag 0');
same_records(records($target, 'orders', 3), records($source, 'orders', 3),
	'every record of every partition is identical: offsets, keys, values, headers, ts');
is(watermarks($target, 'orders', 3), watermarks($source, 'orders', 3),
	'the high watermarks are identical');
is( $target->safe_psql('postgres',
		q{SELECT string_agg(partition || ':' || next_offset || ':' || source_high_watermark, ',' ORDER BY partition)
		    FROM eventlog.mirror_progress WHERE mirror = 'm1' AND topic = 'orders'}),
	$source->safe_psql('postgres',
		q{SELECT string_agg(partition || ':' || high_watermark || ':' || high_watermark, ',' ORDER BY partition)
		    FROM eventlog.partitions WHERE topic = 'orders'}),
	'eventlog.mirror_progress shows next offset = source high watermark in every partition');
is( $target->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog.mirrors WHERE name = 'm1' AND last_error IS NULL
		     AND errors = 0 AND last_progress IS NOT NULL AND topics = ARRAY['orders']}),
	'1', 'eventlog.mirrors: no error, a last progress time, the topics');

# An aborted transaction at the end of a partition: the source's high
# watermark moves past it; the mirror must not stay behind for ever.
$source->safe_psql('postgres', q{
	BEGIN;
	SELECT count(*) FROM eventlog.produce_batch('orders', ARRAY['tail 1', 'tail 2'], partition => 1);
	ROLLBACK;
});
# (first wait until a pass has seen the source's new high watermark)
my $src_hw1 = $source->safe_psql('postgres',
	q{SELECT high_watermark FROM eventlog.partitions WHERE topic = 'orders' AND partition = 1});
ok(poll_until($target,
		q{SELECT source_high_watermark FROM eventlog.mirror_progress WHERE mirror = 'm1' AND partition = 1},
		$src_hw1, 6),
	"the mirror learns the source's new high watermark ($src_hw1)");
my $tail_ok = poll_until($target,
	q{SELECT state || ' ' || lag FROM eventlog.mirrors WHERE name = 'm1'}, 'running 0', 4);
ok($tail_ok, 'after an aborted transaction at the end of a source partition the lag returns to 0')
  or diag 'mirror: ' . mirror_row('m1') . '; progress: '
  . $target->safe_psql('postgres',
	q{SELECT string_agg(partition || ':' || next_offset || '/' || source_high_watermark, ',' ORDER BY partition)
	    FROM eventlog.mirror_progress WHERE mirror = 'm1'});
is(watermarks($target, 'orders', 3), watermarks($source, 'orders', 3),
	'and the high watermarks stay identical');
# The next committed record lands at its own offset after the gap.
$source->safe_psql('postgres',
	q{SELECT eventlog.produce('orders', 'after tail'::text, partition => 1)});
ok(wait_synced('m1', 'orders', 3, 10), 'a record after the aborted tail is copied');
same_records(records($target, 'orders', 3), records($source, 'orders', 3),
	'at its own offset, after the gap');

# ---------------------------------------------------------------------------
# 2. The source stops (immediate) while a producer runs
# ---------------------------------------------------------------------------

# $ntx transactions of 8 keyed records with headers; every 7th rolls back.
sub start_producer
{
	my ($node, $topic, $tag, $ntx) = @_;
	my $sql = qq{DO \$\$
		BEGIN
		  FOR t IN 1 .. $ntx LOOP
		    PERFORM eventlog.produce_batch('$topic',
		      (SELECT array_agg('$tag ' || t || '.' || j ORDER BY j) FROM generate_series(1, 8) j),
		      (SELECT array_agg('key-' || ((t * 8 + j) % 50) ORDER BY j) FROM generate_series(1, 8) j),
		      (SELECT array_agg(jsonb_build_object('tx', t::text, 'tag', '$tag') ORDER BY j) FROM generate_series(1, 8) j));
		    IF t % 7 = 0 THEN ROLLBACK; ELSE COMMIT; END IF;
		    PERFORM pg_sleep(0.005);
		  END LOOP;
		END \$\$};
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', '/dev/null', '>', \$out, '2>', \$err);
	return ($h, \$err);
}

my $progress0 = $target->safe_psql('postgres',
	q{SELECT sum(next_offset) FROM eventlog.mirror_progress WHERE mirror = 'm1'});
my ($producer, $producer_err) = start_producer($source, 'orders', 'stream', 600);
# Let the target copy some of it, then stop the source in the middle.
my $mid = poll_until($target,
	qq{SELECT sum(next_offset) >= $progress0 + 300 FROM eventlog.mirror_progress WHERE mirror = 'm1'},
	't', 20);
ok($mid, 'the target copies while the source produces');
my $before_kill = $source->safe_psql('postgres', q{SELECT count(*) FROM eventlog_topics.orders});
ok($producer->pumpable, "the producer is still running when the source stops ($before_kill records)");
$source->stop('immediate');
eval { $producer->finish; };
note 'producer: ' . (${$producer_err} =~ s/\s+/ /gr);

my $row = wait_state('m1', 'error', 15);
like($row, qr/^error\|/, 'the mirror shows state error while the source is down');
like($row, qr/^error\|[^|]*\|.+/s, "with a last_error ($row)");
my $target_during = records($target, 'orders', 3);
$row = mirror_row('m1');
my $errors = $target->safe_psql('postgres', q{SELECT errors || ' ' || (retry_at IS NOT NULL) FROM eventlog.mirrors WHERE name = 'm1'});
like($errors, qr/^[1-9]\d* true$/, "it counts errors and sets a retry time ($errors)");

$source->start;
my $source_after = records($source, 'orders', 3);
my $bad = is_prefix($target_during, $source_after);
is($bad, '', 'while the source was down the target held a prefix of every source partition (no local damage)');
# (How far the target had got depends on timing: it may already have caught up.)
cmp_ok(scalar(split /\n/, $target_during), '<=', scalar(split /\n/, $source_after),
	'the target held no more records than the source');

# More on the restarted source, then let the mirror retry at once.
$source->safe_psql('postgres', q{
	SELECT count(*) FROM eventlog.produce_batch('orders',
		(SELECT array_agg('after restart ' || i ORDER BY i) FROM generate_series(1, 500) i),
		(SELECT array_agg('key-' || (i % 50) ORDER BY i) FROM generate_series(1, 500) i));
	BEGIN;
	SELECT count(*) FROM eventlog.produce_batch('orders', ARRAY['lost after restart'], partition => 0);
	ROLLBACK;
	SELECT eventlog.produce('orders', 'final'::text, partition => p) FROM generate_series(0, 2) p;
});
retry_now('m1');
ok(wait_synced('m1', 'orders', 3, 20), 'after the source restarts the mirror resumes and catches up');
my $src_all = records($source, 'orders', 3);
my $tgt_all = records($target, 'orders', 3);
same_records($tgt_all, $src_all, 'the target is identical to the source after the source restart');
is(watermarks($target, 'orders', 3), watermarks($source, 'orders', 3), 'high watermarks identical');
is( $target->safe_psql('postgres',
		q{SELECT count(*) - count(DISTINCT (partition, "offset")) || ' ' || count(*) - count(DISTINCT value)
		    FROM eventlog_topics.orders WHERE value LIKE 'stream %'::bytea OR value LIKE 'after restart %'::bytea}),
	'0 0', 'no offset and no streamed value appears twice on the target');
is(mirror_row('m1'), 'running|0|', 'the mirror is running with lag 0 and no last_error');

# ---------------------------------------------------------------------------
# 3. The target stops (immediate) in the middle of copying
# ---------------------------------------------------------------------------

$source->safe_psql('postgres', q{
	SELECT count(*) FROM generate_series(0, 2) p,
	       LATERAL eventlog.produce_batch('orders',
	         (SELECT array_agg('bulk ' || i ORDER BY i) FROM generate_series(1, 10000) i), partition => p);
});
my $hw_sum = $source->safe_psql('postgres',
	q{SELECT sum(high_watermark) FROM eventlog.partitions WHERE topic = 'orders'});
# Wait until the copy is under way but not done (1000 per partition per pass).
my $partial = poll_until($target,
	qq{SELECT sum(next_offset) > $hw_sum - 29500 FROM eventlog.mirror_progress WHERE mirror = 'm1'}, 't', 15);
my $progress_at_kill = $target->safe_psql('postgres',
	q{SELECT sum(next_offset) FROM eventlog.mirror_progress WHERE mirror = 'm1'});
# (Whether the copy is still under way when the target stops depends on
# timing: the mirror may already have caught up.)
ok($partial && $progress_at_kill <= $hw_sum,
	"the target is stopped while copying or just after ($progress_at_kill of $hw_sum offsets)");
$target->stop('immediate');
$target->start;
ok(wait_synced('m1', 'orders', 3, 25), 'after the target restarts the mirror resumes and catches up');
same_records(records($target, 'orders', 3), records($source, 'orders', 3),
	'the target is identical to the source after the target restart');
is(watermarks($target, 'orders', 3), watermarks($source, 'orders', 3), 'high watermarks identical');
is( $target->safe_psql('postgres',
		q{SELECT (count(*) - count(DISTINCT (partition, "offset"))) || ' ' ||
		         (count(*) FILTER (WHERE value LIKE 'bulk %'::bytea)
		          - count(DISTINCT (partition, value)) FILTER (WHERE value LIKE 'bulk %'::bytea))
		    FROM eventlog_topics.orders WHERE value IS NOT NULL}),
	'0 0', 'exactly once: no offset twice, no bulk record twice');
is( $target->safe_psql('postgres',
		q{SELECT string_agg(partition || ':' || next_offset, ',' ORDER BY partition)
		    FROM eventlog.mirror_progress WHERE mirror = 'm1'}),
	$source->safe_psql('postgres',
		q{SELECT string_agg(partition || ':' || high_watermark, ',' ORDER BY partition)
		    FROM eventlog.partitions WHERE topic = 'orders'}),
	'the stored progress is the source high watermark in every partition');

# ---------------------------------------------------------------------------
# 4. Group offsets (groups => true)
# ---------------------------------------------------------------------------

$source->safe_psql('postgres', q{
	SELECT eventlog.create_topic('payments', 2);
	SELECT count(*) FROM eventlog.produce_batch('payments',
		(SELECT array_agg('pay ' || i ORDER BY i) FROM generate_series(1, 2600) i), partition => 0);
	SELECT count(*) FROM eventlog.produce_batch('payments',
		(SELECT array_agg('pay b' || i ORDER BY i) FROM generate_series(1, 40) i), partition => 1);
});
# Partition 1: an open transaction at offset 40, committed records after it
# (41 .. 50).  The source's last stable offset is 40, its high watermark 51.
my $open = $source->background_psql('postgres');
$open->query_safe(q{BEGIN; SELECT eventlog.produce('payments', 'pay open'::text, partition => 1)});
$source->safe_psql('postgres', q{
	SELECT count(*) FROM eventlog.produce_batch('payments',
		(SELECT array_agg('pay c' || i ORDER BY i) FROM generate_series(1, 10) i), partition => 1);
});
# The group commits 2500 in partition 0 and 45 in partition 1 (past the
# open transaction: the mirror cannot have copied that far).
$source->safe_psql('postgres', q{
	SELECT count(*) FROM eventlog.consume('billing', 'payments', 10, member => 'b1', commit => true);
	SELECT eventlog.leave('billing', 'b1');
	SELECT eventlog.commit('billing', 'payments', 0, 2500);
	SELECT eventlog.commit('billing', 'payments', 1, 45);
});
my $src_committed = $source->safe_psql('postgres',
	q{SELECT string_agg(partition || ':' || committed_offset, ',' ORDER BY partition)
	    FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments'});
is($src_committed, '0:2500,1:45', 'the source group committed 2500 and 45');

$target->safe_psql('postgres', q{SELECT eventlog.create_topic('payments', 2)});
$target->safe_psql('postgres',
	qq{SELECT eventlog.create_mirror('mg', '$src_conn', ARRAY['payments'], groups => true)});
ok(poll_until($target,
		q{SELECT string_agg(partition || ':' || high_watermark, ',' ORDER BY partition)
		    FROM eventlog.partitions WHERE topic = 'payments'},
		'0:2600,1:40', 15),
	'the mirror copies up to the open transaction of the source (2600 and 40 records)');
ok(poll_until($target,
		q{SELECT count(*) FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments'}, '2', 5),
	'the group shows on the target');
usleep(1_200_000);    # one more pass
is( $target->safe_psql('postgres',
		q{SELECT string_agg(partition || ':' || committed_offset, ',' ORDER BY partition)
		    FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments'}),
	'0:2500,1:40',
	'the copied committed offsets never point past what the target holds (45 is held at 40)');
$open->query_safe('COMMIT');
$open->quit;
ok(wait_synced('mg', 'payments', 2, 15), 'the mirror with groups catches up');
is( $target->safe_psql('postgres',
		q{SELECT string_agg(partition || ':' || committed_offset, ',' ORDER BY partition)
		    FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments'}),
	$src_committed, "eventlog.lag on the target shows the source group's committed offsets ($src_committed)");
same_records(records($target, 'payments', 2), records($source, 'payments', 2),
	'the records of the group topic are identical');

# A consumer fails over to the target and continues after the commit.
my $expect_rest = $source->safe_psql('postgres', q{
	SELECT string_agg(l.partition || ':' || f."offset" || ':' || convert_from(f.value, 'UTF8'), ','
	                  ORDER BY l.partition, f."offset")
	  FROM eventlog.lag l, LATERAL eventlog.fetch('payments', l.partition, l.committed_offset, 10000) f
	 WHERE l."group" = 'billing' AND l.topic = 'payments'});
is( $target->safe_psql('postgres', q{
		SELECT string_agg(partition || ':' || "offset" || ':' || convert_from(value, 'UTF8'), ','
		                  ORDER BY partition, "offset")
		  FROM eventlog.consume('billing', 'payments', 1000, member => 't1', commit => true)}),
	$expect_rest, 'a consumer on the target gets exactly the records after the committed offsets');
my $tgt_committed = $target->safe_psql('postgres',
	q{SELECT string_agg(partition || ':' || committed_offset, ',' ORDER BY partition)
	    FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments'});
is($tgt_committed, '0:2600,1:51', 'and commits its progress on the target');
# The consumer leaves; the source group has not moved: the mirror must not
# move the target group back (that would hand the same records out again).
$target->safe_psql('postgres', q{SELECT eventlog.leave('billing', 't1')});
usleep(2_500_000);
is( $target->safe_psql('postgres',
		q{SELECT string_agg(partition || ':' || committed_offset, ',' ORDER BY partition)
		    FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments'}),
	$tgt_committed, 'the mirror does not move a group on the target back behind its own commits');
is( $target->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog.consume('billing', 'payments', 1000, member => 't2')}),
	'0', 'a later consumer on the target gets nothing twice');
$target->safe_psql('postgres', q{SELECT eventlog.leave('billing', 't2')});
# A newer commit on the source is copied to the target again.
$source->safe_psql('postgres', q{
	SELECT eventlog.produce('payments', 'pay new'::text, partition => 1);
	SELECT eventlog.commit('billing', 'payments', 1, 52);
});
ok(poll_until($target,
		q{SELECT committed_offset FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments' AND partition = 1},
		'52', 10),
	'a newer commit of the source group is copied to the target');
# While a member of the group is live on the target, its offsets stay put.
$target->safe_psql('postgres',
	q{SELECT count(*) FROM eventlog.consume('billing', 'payments', 1, member => 'live')});
my $live_off = $target->safe_psql('postgres',
	q{SELECT committed_offset FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments' AND partition = 0});
$source->safe_psql('postgres', q{SELECT eventlog.reset_offsets('billing', 'payments', 'earliest')});
usleep(2_500_000);
is( $target->safe_psql('postgres',
		q{SELECT committed_offset FROM eventlog.lag WHERE "group" = 'billing' AND topic = 'payments' AND partition = 0}),
	$live_off, 'a group with a live member on the target is left alone');
$target->safe_psql('postgres', q{SELECT eventlog.leave('billing', 'live')});
$target->safe_psql('postgres', q{SELECT eventlog.drop_mirror('mg')});

# ---------------------------------------------------------------------------
# 5. Bad input
# ---------------------------------------------------------------------------

$target->safe_psql('postgres', q{CREATE ROLE alice LOGIN});
my ($ret, $out, $err);

# Privileges.
($ret, $out, $err) = $target->psql('postgres',
	qq{SELECT eventlog.create_mirror('evil', '$src_conn', ARRAY['orders'])}, extra_params => [ '-U', 'alice' ]);
like($err, qr/ERROR:  must be superuser to create a mirror/, 'create_mirror by a non-superuser is refused');
($ret, $out, $err) = $target->psql('postgres', q{SELECT eventlog.drop_mirror('m1')},
	extra_params => [ '-U', 'alice' ]);
like($err, qr/ERROR:  must be superuser/, 'drop_mirror by a non-superuser is refused');
($ret, $out, $err) = $target->psql('postgres', q{SELECT eventlog.pause_mirror('m1')},
	extra_params => [ '-U', 'alice' ]);
like($err, qr/ERROR:  must be superuser/, 'pause_mirror by a non-superuser is refused');
($ret, $out, $err) = $target->psql('postgres', q{SELECT conninfo FROM eventlog.mirror},
	extra_params => [ '-U', 'alice' ]);
like($err, qr/ERROR:  permission denied for table mirror/, 'eventlog.mirror is not readable by a non-superuser');
($ret, $out, $err) = $target->psql('postgres', q{UPDATE eventlog.mirror SET retry_at = NULL},
	extra_params => [ '-U', 'alice' ]);
like($err, qr/ERROR:  permission denied for table mirror/, 'nor writable');
is($target->safe_psql('postgres', q{SELECT count(*) FROM eventlog.mirror WHERE name = 'evil'}),
	'0', 'no mirror was created');

# Conninfo syntax.
($ret, $out, $err) = $target->psql('postgres',
	q{SELECT eventlog.create_mirror('bad', 'this is = not a conninfo', ARRAY['orders'])});
like($err, qr/ERROR:  invalid connection string for mirror "bad"/,
	'an invalid connection string is refused at create time');
($ret, $out, $err) = $target->psql('postgres',
	q{SELECT eventlog.create_mirror('bad', 'nosuchoption=1', ARRAY['orders'])});
like($err, qr/ERROR:  invalid connection string/, 'an unknown connection option is refused at create time');
($ret, $out, $err) = $target->psql('postgres',
	q{SELECT eventlog.create_mirror('bad', 'postgresql://[::1', ARRAY['orders'])});
like($err, qr/ERROR:  invalid connection string/, 'a broken URI is refused at create time');
($ret, $out, $err) = $target->psql('postgres',
	qq{SELECT eventlog.create_mirror('bad', '$src_conn', ARRAY[]::text[])});
like($err, qr/ERROR/, 'an empty topic list is refused');
($ret, $out, $err) = $target->psql('postgres',
	qq{SELECT eventlog.create_mirror('bad', '$src_conn', NULL)});
like($err, qr/ERROR:  .*must not be null/, 'NULL topics are refused');
($ret, $out, $err) = $target->psql('postgres',
	qq{SELECT eventlog.create_mirror('', '$src_conn', ARRAY['orders'])});
like($err, qr/ERROR:  mirror name must not be empty/, 'an empty name is refused');
is($target->safe_psql('postgres', q{SELECT count(*) FROM eventlog.mirror WHERE name IN ('bad', '')}),
	'0', 'none of them was created');

# Duplicate and unknown names.
($ret, $out, $err) = $target->psql('postgres',
	qq{SELECT eventlog.create_mirror('m1', '$src_conn', ARRAY['orders'])});
like($err, qr/ERROR:  mirror "m1" already exists/, 'a duplicate mirror name is refused');
($ret, $out, $err) = $target->psql('postgres', q{SELECT eventlog.drop_mirror('nosuch')});
like($err, qr/ERROR:  mirror "nosuch" does not exist/, 'drop_mirror of an unknown mirror is refused');
($ret, $out, $err) = $target->psql('postgres', q{SELECT eventlog.pause_mirror('nosuch')});
like($err, qr/ERROR:  mirror "nosuch" does not exist/, 'pause_mirror of an unknown mirror is refused');
($ret, $out, $err) = $target->psql('postgres', q{SELECT eventlog.resume_mirror('nosuch')});
like($err, qr/ERROR:  mirror "nosuch" does not exist/, 'resume_mirror of an unknown mirror is refused');

# An unreachable source: a socket nothing listens on.
my $free_port = PostgreSQL::Test::Cluster::get_free_port();
my $host = $source->host;
$target->safe_psql('postgres', q{SELECT eventlog.create_topic('unreach', 1)});
$target->safe_psql('postgres',
	qq{SELECT eventlog.create_mirror('unreach', 'host=$host port=$free_port dbname=postgres', ARRAY['unreach'])});
$row = wait_state('unreach', 'error', 10);
like($row, qr/^error\|[^|]*\|could not connect to the source: .+/s, 'an unreachable source: state error, with the message');
my $e1 = $target->safe_psql('postgres', q{SELECT errors FROM eventlog.mirrors WHERE name = 'unreach'});
ok(poll_until($target, q{SELECT errors > } . $e1 . q{ FROM eventlog.mirrors WHERE name = 'unreach'}, 't', 8),
	'it is retried by itself after its backoff (errors counted)');
is( $target->safe_psql('postgres',
		q{SELECT retry_at > now() AND retry_at < now() + interval '61 s' FROM eventlog.mirrors WHERE name = 'unreach'}),
	't', 'with a retry time within the 60 s backoff bound');

# A source database without eventlog.
$source->safe_psql('postgres', 'CREATE DATABASE plain');
my $plain_conn = sql_quoted($source->connstr('plain'));
$target->safe_psql('postgres',
	qq{SELECT eventlog.create_mirror('plain', '$plain_conn', ARRAY['unreach'])});
$row = wait_state('plain', 'error', 10);
like($row, qr/^error\|[^|]*\|.*(?i:eventlog)/s, "a source without eventlog: state error naming eventlog ($row)");

# A topic missing on the target, one missing on the source.
$source->safe_psql('postgres', q{
	SELECT eventlog.create_topic('only_source', 2);
	SELECT eventlog.produce('only_source', 'x'::text, partition => 1);
});
$target->safe_psql('postgres',
	qq{SELECT eventlog.create_mirror('missing_here', '$src_conn', ARRAY['only_source'])});
$row = wait_state('missing_here', 'error', 10);
like($row, qr/^error\|[^|]*\|.*only_source/s, "a topic missing on the target: the error names it ($row)");
# The hint (create the topic with as many partitions) is shown where a
# user can see it: in last_error, or as a HINT in the server log.
my $hint_seen = sub {
	my ($re) = @_;
	my $err = $target->safe_psql('postgres', q{SELECT last_error FROM eventlog.mirrors WHERE name = 'missing_here'});
	return 1 if $err =~ $re;
	return scalar(grep { /HINT:/ && $_ =~ $re } split /\n/, slurp_file($target->logfile));
};
ok($hint_seen->(qr/create_topic\('only_source', 2\)/),
	'the hint to create it with 2 partitions is shown (in last_error or the log)');
$target->safe_psql('postgres', q{SELECT eventlog.create_topic('only_source', 1)});
retry_now('missing_here');
$row = wait_error_like('missing_here', qr/partitions/, 10);
like($row, qr/^error\|[^|]*\|.*only_source.*partitions/s,
	"with fewer partitions here than on the source: an error ($row)");
ok($hint_seen->(qr/add_partitions\('only_source', 2\)/),
	'the hint to grow it to 2 partitions is shown (in last_error or the log)');
$target->safe_psql('postgres', q{SELECT eventlog.add_partitions('only_source', 3)});
retry_now('missing_here');
ok(wait_synced('missing_here', 'only_source', 2, 10),
	'once the topic has enough partitions (more than the source is fine) the mirror runs');
same_records(records($target, 'only_source', 2), records($source, 'only_source', 2),
	'and copies it');

$target->safe_psql('postgres', q{SELECT eventlog.create_topic('only_target', 1)});
$target->safe_psql('postgres',
	qq{SELECT eventlog.create_mirror('missing_there', '$src_conn', ARRAY['only_target'])});
$row = wait_state('missing_there', 'error', 10);
like($row, qr/^error\|[^|]*\|.*only_target/s, "a topic missing on the source: the error names it ($row)");

# A pass that fails after appending: the mirror of rw_a and rw_b appends
# rw_a's records, then fails on rw_b (missing here), and the pass rolls
# back, leaving aborted records in rw_a.  Every retry must cut them off and
# append at the source's offsets again.
$source->safe_psql('postgres', q{
	SELECT eventlog.create_topic('rw_a', 1);
	SELECT eventlog.create_topic('rw_b', 1);
	SELECT count(*) FROM eventlog.produce_batch('rw_a', ARRAY['a0', 'a1', 'a2', 'a3']);
	SELECT count(*) FROM eventlog.produce_batch('rw_b', ARRAY['b0']);
});
$target->safe_psql('postgres', q{SELECT eventlog.create_topic('rw_a', 1)});
$target->safe_psql('postgres',
	qq{SELECT eventlog.create_mirror('rw', '$src_conn', ARRAY['rw_a', 'rw_b'])});
$row = wait_state('rw', 'error', 10);
like($row, qr/^error\|[^|]*\|.*rw_b/s, "a pass failing on its second topic: error ($row)");
retry_now('rw');
ok(poll_until($target, q{SELECT errors >= 2 FROM eventlog.mirrors WHERE name = 'rw'}, 't', 8),
	'and it failed again on retry');
retry_now('rw');
ok(poll_until($target, q{SELECT errors >= 3 FROM eventlog.mirrors WHERE name = 'rw'}, 't', 8),
	'and again');
like(mirror_row('rw'), qr/^error\|[^|]*\|topic "rw_b" does not exist here/s,
	'every retry fails for the same reason (no offset conflict with its own aborted records)');
is(records($target, 'rw_a', 1), '', 'the failed passes left no visible record in rw_a');
is($target->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog.mirror_progress WHERE mirror = 'rw'}),
	'0', 'and no progress');
note 'rw_a high watermark on the target after the failed passes: '
  . watermarks($target, 'rw_a', 1);
$target->safe_psql('postgres', q{SELECT eventlog.create_topic('rw_b', 1)});
retry_now('rw');
ok(wait_synced('rw', 'rw_a', 1, 10), 'once rw_b exists the mirror runs');
same_records(records($target, 'rw_a', 1), records($source, 'rw_a', 1),
	"rw_a's records land at the source's offsets, over the aborted ones");
is(watermarks($target, 'rw_a', 1), watermarks($source, 'rw_a', 1), 'with the same high watermark');
ok(wait_synced('rw', 'rw_b', 1, 5), 'and rw_b is copied');

# A target topic that already holds its own records.
$source->safe_psql('postgres', q{
	SELECT eventlog.create_topic('taken', 1);
	SELECT count(*) FROM eventlog.produce_batch('taken', ARRAY['s0', 's1', 's2']);
});
$target->safe_psql('postgres', q{
	SELECT eventlog.create_topic('taken', 1);
	SELECT count(*) FROM eventlog.produce_batch('taken', ARRAY['mine 0', 'mine 1']);
});
my $mine = records($target, 'taken', 1);
$target->safe_psql('postgres', qq{SELECT eventlog.create_mirror('taken', '$src_conn', ARRAY['taken'])});
$row = wait_state('taken', 'error', 10);
like($row, qr/^error\|[^|]*\|.*already holds records/s, "a target topic with its own records: error ($row)");
retry_now('taken');
usleep(1_500_000);
is(records($target, 'taken', 1), $mine, 'and its records are left alone');

# Records written locally into a mirrored topic stop the mirror.
$source->safe_psql('postgres', q{SELECT eventlog.create_topic('shared', 1);
	SELECT count(*) FROM eventlog.produce_batch('shared', ARRAY['a', 'b'])});
$target->safe_psql('postgres', q{SELECT eventlog.create_topic('shared', 1)});
$target->safe_psql('postgres', qq{SELECT eventlog.create_mirror('shared', '$src_conn', ARRAY['shared'])});
ok(wait_synced('shared', 'shared', 1, 10), 'a mirror of topic "shared" runs');
$target->safe_psql('postgres', q{SELECT eventlog.produce('shared', 'local intruder'::text)});
$source->safe_psql('postgres', q{SELECT eventlog.produce('shared', 'c'::text)});
$row = wait_state('shared', 'error', 10);
like($row, qr/^error\|[^|]*\|.*did not come from the mirror/s, "a local record in a mirrored topic stops it ($row)");
like(records($target, 'shared', 1), qr/^0\|0\|.*\n0\|1\|.*\n0\|2\|NULL\|[0-9a-f]+\|14\|/,
	'the local record stays at its offset, nothing overwritten');

# Pause and resume.
$source->safe_psql('postgres', q{SELECT eventlog.create_topic('pz', 1)});
$target->safe_psql('postgres', q{SELECT eventlog.create_topic('pz', 1)});
$target->safe_psql('postgres', qq{SELECT eventlog.create_mirror('pz', '$src_conn', ARRAY['pz'])});
$source->safe_psql('postgres', q{SELECT eventlog.produce('pz', 'one'::text)});
ok(wait_synced('pz', 'pz', 1, 10), 'mirror pz runs');
$target->safe_psql('postgres', q{SELECT eventlog.pause_mirror('pz')});
is($target->safe_psql('postgres', q{SELECT state FROM eventlog.mirrors WHERE name = 'pz'}),
	'paused', 'pause_mirror: state paused');
usleep(1_200_000);    # a pass that may have started before the pause ends
my $paused_progress = $target->safe_psql('postgres',
	q{SELECT next_offset || ' ' || updated_at FROM eventlog.mirror_progress WHERE mirror = 'pz'});
$source->safe_psql('postgres', q{SELECT count(*) FROM eventlog.produce_batch('pz', ARRAY['two', 'three'])});
usleep(2_500_000);
is(records($target, 'pz', 1) =~ tr/\n//, 0, 'nothing new is copied while paused');
is( $target->safe_psql('postgres',
		q{SELECT next_offset || ' ' || updated_at FROM eventlog.mirror_progress WHERE mirror = 'pz'}),
	$paused_progress, 'and its progress does not move');
$target->safe_psql('postgres', q{SELECT eventlog.resume_mirror('pz')});
ok(wait_synced('pz', 'pz', 1, 10), 'resume_mirror: it continues and catches up');
same_records(records($target, 'pz', 1), records($source, 'pz', 1), 'with every record');
$target->safe_psql('postgres', q{SELECT eventlog.pause_mirror('pz', false)});

# Passwords: never in eventlog.mirrors, for superusers or not.
for my $node ($source, $target)
{
	$node->safe_psql('postgres',
		q{SELECT eventlog.create_topic('sec1', 1); SELECT eventlog.create_topic('sec2', 1)});
}
$target->safe_psql('postgres', qq{SELECT eventlog.create_mirror('secret', '$src_conn password=Sup3rSecretPw sslpassword=Sup3rSslKeyPw', ARRAY['sec1'])});
my $sport = $source->port;
my $suser = $source->safe_psql('postgres', 'SELECT current_user');
$target->safe_psql('postgres',
	qq{SELECT eventlog.create_mirror('secret_uri', 'postgresql://$suser:Sup3rUriPw\@/postgres?host=$host&port=$sport', ARRAY['sec2'])});
usleep(1_500_000);
for my $user ('', 'alice')
{
	my @u = $user ? (extra_params => [ '-U', $user ]) : ();
	my $who = $user ? 'a non-superuser' : 'a superuser';
	($ret, $out, $err) = $target->psql('postgres',
		q{SELECT string_agg(name || ' ' || source || ' ' || coalesce(last_error, ''), E'\n' ORDER BY name) FROM eventlog.mirrors}, @u);
	is($ret, 0, "$who can read eventlog.mirrors");
	unlike($out, qr/Sup3rSecretPw|Sup3rUriPw/, "$who sees no password in eventlog.mirrors");
	unlike($out, qr/Sup3rSslKeyPw/, "$who sees no sslpassword in eventlog.mirrors");
	like($out, qr/^secret .*password=\*+/m, "$who sees the password masked");
	($ret, $out, $err) = $target->psql('postgres',
		q{SELECT string_agg(query, ' ') FROM pg_stat_activity WHERE backend_type = 'eventlog worker'}, @u);
	unlike($out, qr/Sup3r/, "$who sees no password in the worker's activity");
}
is( $target->safe_psql('postgres',
		q{SELECT count(*) FROM eventlog.mirror WHERE conninfo LIKE '%Sup3rSecretPw%'}),
	'1', '(the superuser-only table keeps the conninfo as given)');
ok(wait_state('secret', 'running', 10) =~ /^running/, 'a mirror whose conninfo has a password runs');
ok(wait_state('secret_uri', 'running', 10) =~ /^running/, 'and one given as a URI');

# drop_mirror: the mirror stops, the copied records stay.
$target->safe_psql('postgres', q{SELECT eventlog.drop_mirror('pz')});
is($target->safe_psql('postgres', q{SELECT count(*) FROM eventlog.mirror_progress WHERE mirror = 'pz'}),
	'0', 'drop_mirror forgets the progress');
$source->safe_psql('postgres', q{SELECT eventlog.produce('pz', 'four'::text)});
usleep(1_500_000);
is(records($target, 'pz', 1) =~ tr/\n//, 2, 'a dropped mirror copies nothing more, the copied records stay');

# No server crashed along the way.
for my $node ($source, $target)
{
	my $l = slurp_file($node->logfile);
	unlike($l, qr/terminated by signal|PANIC|TRAP:/, $node->name . ': no crash in the log');
}

my $secs = time() - $t_start;
note sprintf('050_mirror ran for %.1f s', $secs);
cmp_ok($secs, '<', 90, 'the test stays within 90 s');

$source->stop;
$target->stop;
done_testing();
