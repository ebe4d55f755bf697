
# pg_dump and pg_restore of a database that uses eventlog.
#
# Topic relations are ordinary (non-member) tables in schema eventlog_topics
# whose leaves use the eventlog access method, so pg_dump dumps them with
# COPY, and the COPY that restores them keeps each record's explicit offset.
# The catalog tables (topics, groups, members, assignments, committed
# offsets and their sequence) are extension configuration tables, so pg_dump
# dumps their rows too.  After pg_restore into a new database, everything a
# reader sees must be the same: every partition fetches the same records
# (offsets with their gaps, keys, values, headers, timestamps), the high
# watermarks, earliest offsets and committed offsets are the same, producing
# continues above the restored offsets and the groups consume on where they
# were.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

# The extension is created below, in database src.
my $node = EventlogNode::new('dump', "autovacuum = off", extension => 0);

sub q1
{
	my ($dbname, $sql) = @_;
	return EventlogNode::query($node, $sql, db => $dbname);
}

# A query that may fail: its output and its error text.
sub try_q
{
	my ($dbname, $sql) = @_;
	return EventlogNode::try_query($node, $sql, db => $dbname);
}

$node->safe_psql('postgres', 'CREATE DATABASE src');
q1('src', 'CREATE EXTENSION eventlog');

# A topic name longer than a relation name gets a hashed relation name.
my $long = 'a-topic-name-that-is-much-longer-than-fifty-characters.and-then-some-more';

q1('src', qq{
	CREATE ROLE dump_reader LOGIN;
	SELECT eventlog.create_topic('orders', 4, segment_records => 10);
	SELECT eventlog.create_topic('blobs', 1);
	SELECT eventlog.create_topic('untouched', 2);
	SELECT eventlog.create_topic('aborted-only', 1);
	SELECT eventlog.create_topic('$long', 2, retention => interval '3 days', retention_bytes => 123456789);
	SELECT eventlog.create_topic('cdc', 2);
	GRANT SELECT ON eventlog_topics.orders TO dump_reader;
});

# orders: a leading gap in partition 3 (its first record aborted), gaps in
# the middle of every partition, a trailing gap in partition 0 (its last
# records aborted), a rolled-back subtransaction, keys, headers, binary.
my $sql = q{
	BEGIN;
	SELECT eventlog.produce('orders', 'aborted-first'::text, partition => 3);
	ROLLBACK;
};
for my $i (1 .. 60)
{
	my $p = $i % 4;
	if ($i % 7 == 0)
	{
		$sql .= qq{BEGIN; SELECT eventlog.produce('orders', 'aborted-$i'::text, key => 'k$i', partition => $p); ROLLBACK;\n};
	}
	else
	{
		$sql .= qq{SELECT eventlog.produce('orders', '{"order": $i}'::jsonb, key => 'customer-$i',
		               headers => '{"trace": "t$i", "content-type": "application/json"}', partition => $p);\n};
	}
}
$sql .= q{
	SELECT eventlog.produce('orders', 'no key, no headers'::text, partition => 1);
	SELECT eventlog.produce('orders', '\x00ff00fe0a7c5c'::bytea, key => 'binary|with\pipes', partition => 2);
	BEGIN;
	SELECT eventlog.produce('orders', 'sub-kept-1'::text, partition => 2);
	SAVEPOINT s;
	SELECT eventlog.produce('orders', 'sub-dropped'::text, partition => 2);
	ROLLBACK TO SAVEPOINT s;
	SELECT eventlog.produce('orders', 'sub-kept-2'::text, key => E'line\nbreak', partition => 2);
	COMMIT;
	SELECT count(*) FROM eventlog.produce_batch('orders',
	    array(SELECT 'batch-' || g || '-' || repeat('y', 150) FROM generate_series(1, 2000) g),
	    keys => array(SELECT 'bk' || (g % 17) FROM generate_series(1, 2000) g),
	    headers => array(SELECT jsonb_build_object('n', g::text) FROM generate_series(1, 2000) g),
	    partition => 1);
	BEGIN;
	SELECT count(*) FROM eventlog.produce_batch('orders',
	    array(SELECT 'aborted-batch-' || g FROM generate_series(1, 500) g), partition => 1);
	ROLLBACK;
	SELECT eventlog.produce('orders', 'after-aborted-batch'::text, partition => 1);
	BEGIN;
	SELECT eventlog.produce('orders', 'aborted-last-1'::text, partition => 0);
	SELECT eventlog.produce('orders', 'aborted-last-2'::text, partition => 0);
	ROLLBACK;
};
q1('src', $sql);

# Large values (one stored out of line, one compressed), a topic with only
# aborted records, and records in the topic with the long name.
q1('src', qq{
	SELECT eventlog.produce('blobs',
	    (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 6000) g),
	    key => 'big-random', headers => '{"kind": "random"}');
	SELECT eventlog.produce('blobs', repeat('compressible ', 30000),
	    key => 'big-repeat', headers => '{"kind": "repeat"}');
	SELECT eventlog.produce('blobs',
	    (SELECT string_agg(sha256(int4send(g)), '') FROM generate_series(1, 3000) g), key => 'big-binary');
	SELECT eventlog.produce('blobs', 'small'::text);
	BEGIN;
	SELECT eventlog.produce('aborted-only', 'never'::text);
	SELECT eventlog.produce('aborted-only', 'never again'::text);
	ROLLBACK;
	SELECT eventlog.produce('$long', 'long-' || g, key => 'lk' || g) FROM generate_series(1, 10) g;
});
cmp_ok(q1('src', q{SELECT max(length(value)) FROM eventlog_topics.blobs}),
	'>', 150_000, 'a value of more than 150 kB was produced');

# A captured table: its rows are restored before its trigger, so restoring
# must not produce the events a second time.
q1('src', q{
	CREATE TABLE accounts (id int PRIMARY KEY, name text, balance numeric);
	SELECT eventlog.capture('accounts', 'cdc');
	INSERT INTO accounts VALUES (1, 'Ann', 10), (2, 'Bob', 20), (3, 'Cy', 30);
	UPDATE accounts SET balance = 15 WHERE id = 1;
});

# Groups: one with two members (long session timeout, so they stay live),
# one without members, one reset to the latest offsets (at the high
# watermark, past the trailing aborted records), several commits each so
# that group_offset has history.
q1('src', q{
	SELECT count(*) FROM eventlog.consume('g-members', 'orders', 10, member => 'm1', commit => true);
	SELECT eventlog.alter_group('g-members', interval '1 hour');
	SELECT count(*) FROM eventlog.consume('g-members', 'orders', 10, member => 'm2', commit => true);
	SELECT count(*) FROM eventlog.consume('g-members', 'orders', 25, member => 'm1', commit => true);
	SELECT count(*) FROM eventlog.consume('g-members', 'orders', 25, member => 'm2', commit => true);
	SELECT count(*) FROM eventlog.consume('g-members', 'cdc', 2, member => 'm1', commit => true);
	SELECT count(*) FROM eventlog.consume('g-plain', 'orders', 15, commit => true);
	SELECT count(*) FROM eventlog.consume('g-plain', 'orders', 40, commit => true);
	SELECT count(*) FROM eventlog.consume('g-plain', 'blobs', 2, commit => true);
	SELECT count(*) FROM eventlog.consume('g-latest', 'orders', 1);
	SELECT count(*) FROM eventlog.reset_offsets('g-latest', 'orders', 'latest');
});
is(q1('src', q{SELECT count(*) FROM eventlog.members WHERE live}), '2',
	'source: group g-members has two live members');

# ---------------------------------------------------------------------------
# What a reader sees
# ---------------------------------------------------------------------------

my @topics = split /\n/, q1('src', q{SELECT topic FROM eventlog.topic ORDER BY topic});
is(scalar(@topics), 6, 'source: six topics');

# Everything fetch returns for one partition, read in chunks.
sub fetch_text
{
	my ($dbname, $topic, $part) = @_;
	return join("\n",
		EventlogNode::fetch_lines($node, $topic, $part, db => $dbname, chunk => 1000,
			columns => q{"offset", topic, partition, coalesce(to_json(key)::text, 'NULL'),
			             CASE WHEN length(value) > 256
			                  THEN 'len=' || length(value) || ' md5=' || md5(value)
			                  ELSE encode(value, 'hex') END,
			             headers, ts, to_char(ts, 'J SSSS US')}));
}

sub state_of
{
	my ($dbname) = @_;
	my %s;
	for my $topic (@topics)
	{
		my $n = q1($dbname, qq{SELECT partitions FROM eventlog.topic WHERE topic = '$topic'});
		$s{"fetch $topic/$_"} = fetch_text($dbname, $topic, $_) for 0 .. $n - 1;
	}
	$s{'topics view'} = q1($dbname, q{SELECT * FROM eventlog.topics ORDER BY topic});
	$s{'topic catalog'} = q1($dbname, q{SELECT * FROM eventlog.topic ORDER BY topic});
	$s{'committed offsets in lag'} = q1($dbname,
		q{SELECT "group", topic, partition, member, committed_offset FROM eventlog.lag ORDER BY 1, 2, 3});
	$s{'groups view'} = q1($dbname, q{SELECT "group", owner, generation, session_timeout, created_at
	                                   FROM eventlog.groups ORDER BY 1});
	$s{'members view'} = q1($dbname, q{SELECT "group", member, topics, partitions, generation, joined_at, last_heartbeat
	                                   FROM eventlog.members ORDER BY 1, 2});
	$s{'group_offset rows'} = q1($dbname, q{SELECT * FROM eventlog.group_offset ORDER BY 1, 2, 3, 4});
	$s{'group_assignment rows'} = q1($dbname, q{SELECT * FROM eventlog.group_assignment ORDER BY 1, 2, 3});
	$s{'group_offset_seq'} = q1($dbname, q{SELECT last_value FROM eventlog.group_offset_seq});
	$s{'captures view'} = q1($dbname, q{SELECT * FROM eventlog.captures ORDER BY 1});
	$s{'accounts rows'} = q1($dbname, q{SELECT * FROM accounts ORDER BY id});
	# The offsets of eventlog.partitions, one entry per column to say what differs.
	for my $col (qw(earliest_offset high_watermark last_stable_offset))
	{
		$s{"partitions view $col"} = q1($dbname,
			qq{SELECT topic, partition, $col FROM eventlog.partitions ORDER BY topic, partition});
	}
	$s{'lag view lag'} = q1($dbname,
		q{SELECT "group", topic, partition, lag FROM eventlog.lag ORDER BY 1, 2, 3});
	return \%s;
}

my $src = state_of('src');
like($src->{'fetch orders/1'}, qr/\|\{"n": "2000"\}\|/, 'source: the batch is in orders/1');
like($src->{'fetch blobs/0'}, qr/len=192000 md5=/, 'source: the large value is in blobs/0');
is($src->{'fetch aborted-only/0'}, '', 'source: aborted-only has no committed record');

# Per partition: list of offsets (for gaps) and the high watermark.
sub offsets_of
{
	my ($text) = @_;
	return [ map { /^(\d+)\|/ ? $1 : () } split /\n/, $text ];
}

sub hw_of
{
	my ($state) = @_;
	my %hw;
	for (split /\n/, $state->{'partitions view high_watermark'})
	{
		my ($t, $p, $h) = split /\|/;
		$hw{"$t/$p"} = $h;
	}
	return \%hw;
}
my $src_hw = hw_of($src);
is($src_hw->{'orders/0'}, offsets_of($src->{'fetch orders/0'})->[-1] + 3,
	'source: orders/0 ends with two aborted records (a trailing gap)');
is(offsets_of($src->{'fetch orders/3'})->[0], 1,
	'source: orders/3 starts with an aborted record (a leading gap)');
is($src_hw->{'aborted-only/0'}, 2, 'source: aborted-only/0 has high watermark 2');

# ---------------------------------------------------------------------------
# Dump and restore
# ---------------------------------------------------------------------------

# The documented procedure: save_offsets() before the dump records every
# partition's earliest offset and high watermark in a table the dump carries.
cmp_ok(q1('src', q{SELECT eventlog.save_offsets()}), '>', 0,
	'source: eventlog.save_offsets() records the offsets of every partition');
my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc of the source database');
$node->command_ok([ 'createdb', '-h', $node->host, '-p', $node->port, 'dst' ],
	'createdb of the target database');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('dst'), $dump ],
	'pg_restore into the target database, without errors');

is(q1('dst', q{SELECT extversion FROM pg_extension WHERE extname = 'eventlog'}),
	q1('src', q{SELECT extversion FROM pg_extension WHERE extname = 'eventlog'}),
	'restored: the extension is there, at the same version');
is( q1('dst', q{SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                 WHERE c.relnamespace = 'eventlog_topics'::regnamespace AND a.amname = 'eventlog'}),
	q1('src', q{SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                 WHERE c.relnamespace = 'eventlog_topics'::regnamespace AND a.amname = 'eventlog'}),
	'restored: every partition relation uses the eventlog access method');

# Before restore_offsets(), a group whose position lies beyond a partition's
# restored high watermark is stopped with an error, never left to skip
# records silently.
my (undef, $guard_err) = try_q('dst', q{SELECT count(*) FROM eventlog.consume('g-plain', 'orders', 100)});
like($guard_err, qr/committed offset \d+ of consumer group "g-plain" is beyond the high watermark/,
	'restored, before restore_offsets(): consuming past the restored log is an error, not a silent skip');

# ... and restore_offsets() puts the high watermarks back.
my $moved = q1('dst', q{SELECT string_agg(topic || '/' || partition || ':' || restored_high_watermark || '->' || high_watermark, ',' ORDER BY topic, partition)
                         FROM eventlog.restore_offsets()});
like($moved, qr{orders/0:15->17}, 'restored: restore_offsets() raises orders/0 back to its high watermark');
like($moved, qr{aborted-only/0:0->2}, 'restored: and aborted-only/0, which held only aborted records');
is(q1('dst', q{SELECT count(*) FROM eventlog.restore_offsets()}), '0',
	'restored: restore_offsets() a second time moves nothing');

my $dst = state_of('dst');

# Everything pg_dump carries over: records (with their offsets, so their
# gaps between committed records), catalog rows, group state.
for my $k (sort keys %$src)
{
	next if $k =~ /^partitions view|^lag view/;
	is($dst->{$k}, $src->{$k}, "restored: $k identical");
}
is($dst->{'partitions view last_stable_offset'}, $dst->{'partitions view high_watermark'},
	'restored: no partition is held back by an open transaction');

# Offsets of eventlog.partitions and the lag derived from them.  A COPY
# restores the committed records only: a partition whose first records were
# aborted, whose last records were aborted, or that holds nothing but
# aborted records, no longer says so after a restore unless the dump carries
# each partition's earliest offset and high watermark.
for my $col (qw(high_watermark last_stable_offset))
{
	is($dst->{"partitions view $col"}, $src->{"partitions view $col"},
		"restored: eventlog.partitions $col identical in every partition (trailing gaps of aborted records kept)");
}
# A partition that starts with aborted records starts at its first committed
# record after a restore: no record can be read below it either way.
is(q1('dst', q{SELECT earliest_offset FROM eventlog.partitions WHERE topic = 'orders' AND partition = 3}), '1',
	'restored: orders/3 starts at its first committed record');
is($dst->{'lag view lag'}, $src->{'lag view lag'},
	'restored: eventlog.lag lag identical in every group and partition');

# ---------------------------------------------------------------------------
# Life goes on in the restored database
# ---------------------------------------------------------------------------

my %new_off;

# Producing continues above the restored offsets, at the source's high
# watermark (Kafka never reuses an offset, not even an aborted one's).
for my $tp (sort keys %$src_hw)
{
	my ($t, $p) = $tp =~ m{^(.*)/(\d+)$};
	my $last = offsets_of($dst->{"fetch $tp"})->[-1] // -1;
	my $got = q1('dst', qq{SELECT "offset" FROM eventlog.produce('$t', 'after-restore'::text,
	                         key => 'r', headers => '{"restored": "yes"}', partition => $p)});
	$new_off{$tp} = $got;
	cmp_ok($got, '>', $last, "restored: $tp produces above its restored records");
	is($got, $src_hw->{$tp}, "restored: $tp produces at the source's high watermark $src_hw->{$tp}");
	is( q1('dst', qq{SELECT encode(value, 'escape') || '|' || headers::text
	                  FROM eventlog.fetch('$t', $p, $got, 1)}),
		'after-restore|{"restored": "yes"}', "restored: $tp returns the new record at its offset");
}

# A record produced after the restore must not land below a group's
# committed offset, or that group never reads it.
for my $line (split /\n/, q1('dst', q{SELECT "group", topic, partition, committed_offset
                                     FROM eventlog.lag WHERE committed_offset IS NOT NULL ORDER BY 1, 2, 3}))
{
	my ($g, $t, $p, $c) = split /\|/, $line;
	cmp_ok($new_off{"$t/$p"}, '>=', $c,
		"restored: the record produced after the restore in $t/$p is not below the committed offset of group $g, so $g will read it");
}

# The groups consume on where they were: from their committed offsets, the
# records a fetch from there returns (the ones just produced included).
sub committed
{
	my ($dbname, $grp, $topic) = @_;
	my %c;
	for my $line (split /\n/,
		q1($dbname, qq{SELECT partition, committed_offset FROM eventlog.lag
		               WHERE "group" = '$grp' AND topic = '$topic'}))
	{
		my ($p, $o) = split /\|/, $line;
		$c{$p} = $o;
	}
	return \%c;
}

sub expected_from
{
	my ($dbname, $topic, $parts, $committed) = @_;
	my @rows;
	for my $p (@$parts)
	{
		my $from = $committed->{$p} // 0;
		# (A committed offset above the high watermark has nothing to read
		# yet; the assertions above say whether that may happen.)
		push @rows, split /\n/, q1($dbname,
			qq{SELECT partition || ':' || "offset"
			     FROM eventlog.fetch('$topic', $p,
			              least($from, (SELECT high_watermark FROM eventlog.partitions
			                             WHERE topic = '$topic' AND partition = $p)), 100000)});
	}
	return join(',', sort @rows);
}

sub owned
{
	my ($dbname, $grp, $member, $topic) = @_;
	return [ split /\n/, q1($dbname, qq{SELECT partition FROM eventlog.group_assignment
	                                    WHERE grp = '$grp' AND member = '$member' AND topic = '$topic'
	                                    ORDER BY partition}) ];
}

for my $case (
	[ 'g-members', 'orders', 'm1' ],
	[ 'g-members', 'orders', 'm2' ],
	[ 'g-plain',   'orders', undef ],
	[ 'g-plain',   'blobs',  undef ])
{
	my ($grp, $topic, $member) = @$case;
	my $c = committed('dst', $grp, $topic);
	my $parts = defined $member ? owned('dst', $grp, $member, $topic)
	  : [ 0 .. q1('dst', qq{SELECT partitions - 1 FROM eventlog.topic WHERE topic = '$topic'}) ];
	ok(@$parts > 0, "restored: $grp " . ($member // '') . " reads partitions of $topic");
	my $want = expected_from('dst', $topic, $parts, $c);
	my $m = defined $member ? ", member => '$member'" : '';
	my ($out, $err) = try_q('dst', qq{SELECT partition || ':' || "offset"
	                                   FROM eventlog.consume('$grp', '$topic', 100000$m, commit => true)});
	is($err, '', "restored: $grp " . ($member // '') . " consumes $topic without error");
	my $got = join(',', sort split /\n/, $out);
	isnt($got, '', "restored: $grp " . ($member // '') . " has records to read in $topic");
	is($got, $want, "restored: $grp " . ($member // '') . " consumes $topic from its committed offsets");
}

# The commits just made are the current ones (the sequence of group_offset
# went on from where it was, so the new rows have the highest seq).
is( q1('dst', q{SELECT count(*) FROM eventlog.lag WHERE "group" IN ('g-members', 'g-plain')
                 AND topic IN ('orders', 'blobs') AND (committed_offset IS NULL OR committed_offset < last_stable_offset)}),
	'0', 'restored: the groups have committed all they read');
cmp_ok(q1('dst', q{SELECT count(*) FROM eventlog.group_offset WHERE seq > } . $src->{'group_offset_seq'}),
	'>', 0, 'restored: new commits take sequence numbers above the restored ones');

# The group reset to the latest offsets reads exactly the records produced
# after the restore.
my ($latest_out, $latest_err) = try_q('dst',
	q{SELECT string_agg(partition || ':' || encode(value, 'escape'), ',' ORDER BY partition)
	    FROM eventlog.consume('g-latest', 'orders', 1000, commit => true)});
is($latest_err, '', 'restored: g-latest consumes orders without error');
is($latest_out, '0:after-restore,1:after-restore,2:after-restore,3:after-restore',
	'restored: g-latest reads the records produced after the restore, and only them');

# Capture continues, and the restore did not produce the captured changes again.
is( q1('dst', q{SELECT count(*) FROM eventlog_topics.cdc WHERE key <> 'r' OR key IS NULL}),
	'4', 'restored: cdc holds the four source events, none produced again by the restore');
q1('dst', q{INSERT INTO accounts VALUES (9, 'Restored', 90)});
is( q1('dst', q{WITH c AS MATERIALIZED (
                   SELECT CASE WHEN key = 'r' THEN NULL ELSE convert_from(value, 'UTF8')::jsonb END AS ev
                     FROM eventlog.consume('g-members', 'cdc', 100, member => 'm1', commit => true))
                 SELECT ev -> 'after' ->> 'name' FROM c
                  WHERE ev ->> 'op' = 'c' AND ev -> 'after' ->> 'id' = '9'}),
	'Restored', 'restored: capture produces events for new changes');

# Privileges on topics are restored with the topic relations.
is( $node->safe_psql('dst', q{SELECT count(*) > 0 FROM eventlog.fetch('orders', 1, 0, 10)},
		extra_params => [ '-U', 'dump_reader' ]),
	't', 'restored: a role granted SELECT on a topic can still fetch it');
my ($ret, $out, $err) = $node->psql('dst', q{SELECT * FROM eventlog.fetch('blobs', 0, 0, 1)},
	extra_params => [ '-U', 'dump_reader' ]);
like($err, qr/permission denied to read topic "blobs"/,
	'restored: a role without SELECT on a topic still cannot fetch it');

$node->stop;
done_testing();
