
# Extension upgrade: ALTER EXTENSION eventlog UPDATE from 0.1.0 to 0.7.0
# (through 0.2.0, which added alter_topic(), 0.3.0, which stores each
# partition in segments: every old partition becomes its first segment,
# 0.4.0, whose committed offsets have no foreign key, 0.5.0, whose
# produce() and produce_batch() return the named row type
# eventlog.record_metadata, 0.6.0, whose group functions carry no
# planner settings, and 0.7.0, whose partitions view names the transaction
# holding readers back).
#
# A database that has used eventlog 0.1.0 (topics with committed, aborted,
# batched, keyed, headed and TOASTed records, consumer groups with committed
# offsets, a captured table) is updated in place.  The update must not
# change what anybody reads: every partition fetches the same records, the
# partitions and lag views show the same offsets.  Afterwards the new
# function alter_topic() works, producing continues at the next offsets, the
# groups consume on from their committed offsets and capture still produces
# events.  And an installation made directly at 0.7.0 has exactly the
# objects of 0.1.0 plus the updates.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

# The extension is created below, at version 0.1.0.
my $node = EventlogNode::new('upgrade', "autovacuum = off", extension => 0);

my $db = 'postgres';

sub q1
{
	my ($sql, $dbname) = @_;
	return EventlogNode::query($node, $sql, db => $dbname // $db);
}

# ---------------------------------------------------------------------------
# Version 0.1.0
# ---------------------------------------------------------------------------

is( q1(q{SELECT string_agg(version, ',' ORDER BY version)
           FROM pg_available_extension_versions WHERE name = 'eventlog'}),
	'0.1.0,0.2.0,0.3.0,0.4.0,0.5.0,0.6.0,0.7.0',
	'versions 0.1.0 to 0.7.0 are installed');
is( q1(q{SELECT path FROM pg_extension_update_paths('eventlog')
          WHERE source = '0.1.0' AND target = '0.7.0'}),
	'0.1.0--0.2.0--0.3.0--0.4.0--0.5.0--0.6.0--0.7.0',
	'there is an update path from 0.1.0 to 0.7.0');

q1(q{CREATE EXTENSION eventlog VERSION '0.1.0'});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'eventlog'}),
	'0.1.0', 'CREATE EXTENSION ... VERSION 0.1.0 installs 0.1.0');
is(q1(q{SELECT count(*) FROM pg_proc WHERE proname = 'alter_topic'
          AND pronamespace = 'eventlog'::regnamespace}),
	'0', '0.1.0 has no alter_topic()');

# Topics: several partitions, a single-partition topic for large values,
# and the topic of a captured table.
q1(q{
	SELECT eventlog.create_topic('orders', 3);
	SELECT eventlog.create_topic('blobs', 1);
	SELECT eventlog.create_topic('cdc', 2);
});

# Keyed records with headers, aborted transactions between them (gaps), a
# rolled-back subtransaction, and an aborted record at the end of a
# partition.
my $sql = '';
for my $i (1 .. 45)
{
	my $p = $i % 3;
	if ($i % 8 == 0)
	{
		$sql .= qq{BEGIN; SELECT eventlog.produce('orders', 'aborted-$i'::text, key => 'k$i', partition => $p); ROLLBACK;\n};
	}
	else
	{
		$sql .= qq{SELECT eventlog.produce('orders', '{"order": $i, "amount": ${i}.5}'::jsonb, key => 'customer-} . ($i % 5)
		  . qq{', headers => '{"trace": "t$i", "source": "upgrade"}');\n};
	}
}
$sql .= q{
	BEGIN;
	SELECT eventlog.produce('orders', 'sub-kept-1'::text, partition => 2);
	SAVEPOINT s;
	SELECT eventlog.produce('orders', 'sub-dropped'::text, partition => 2);
	ROLLBACK TO SAVEPOINT s;
	SELECT eventlog.produce('orders', 'sub-kept-2'::text, partition => 2);
	COMMIT;
	SELECT eventlog.produce('orders', '\x00ff00fe'::bytea, key => 'binary', partition => 0);
	BEGIN;
	SELECT eventlog.produce('orders', 'aborted-tail'::text, partition => 0);
	ROLLBACK;
};
q1($sql);

# A batch spanning many pages, and an aborted batch after it.
q1(q{
	SELECT count(*) FROM eventlog.produce_batch('orders',
	    array(SELECT 'batch-' || g || '-' || repeat('x', 200) FROM generate_series(1, 500) g),
	    keys => array(SELECT 'bk' || g FROM generate_series(1, 500) g),
	    headers => array(SELECT jsonb_build_object('n', g::text) FROM generate_series(1, 500) g),
	    partition => 1);
	BEGIN;
	SELECT count(*) FROM eventlog.produce_batch('orders',
	    array(SELECT 'aborted-batch-' || g FROM generate_series(1, 300) g), partition => 1);
	ROLLBACK;
	SELECT eventlog.produce('orders', 'after-aborted-batch'::text, partition => 1);
});
cmp_ok(
	q1(q{SELECT pg_relation_size('eventlog_topics."orders$1"') / current_setting('block_size')::int}),
	'>', 5, 'the batch spans several pages');

# Large values: one that does not compress (stored out of line), one that
# compresses well, each with headers.
q1(q{
	SELECT eventlog.produce('blobs',
	    (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g),
	    key => 'big-random', headers => '{"kind": "random"}');
	SELECT eventlog.produce('blobs', repeat('compressible ', 20000),
	    key => 'big-repeat', headers => '{"kind": "repeat"}');
	SELECT eventlog.produce('blobs', 'small'::text);
});
cmp_ok(q1(q{SELECT max(length(value)) FROM eventlog_topics.blobs}),
	'>', 100_000, 'a value of more than 100 kB was produced');
cmp_ok(
	q1(q{SELECT pg_relation_size(reltoastrelid) FROM pg_class
          WHERE oid = 'eventlog_topics."blobs$0"'::regclass}),
	'>', 0, 'the large value went to the TOAST relation');

# A captured table.
q1(q{
	CREATE TABLE accounts (id int PRIMARY KEY, name text, balance numeric);
	SELECT eventlog.capture('accounts', 'cdc');
	INSERT INTO accounts VALUES (1, 'Ann', 10), (2, 'Bob', 20), (3, 'Cy', 30);
	UPDATE accounts SET balance = 15 WHERE id = 1;
	DELETE FROM accounts WHERE id = 3;
});
is(q1(q{SELECT count(*) FROM eventlog_topics.cdc}), '5',
	'0.1.0: capture produced one event per change');

# Consumer groups: one with a member, one without; both commit part way.
q1(q{
	SELECT count(*) FROM eventlog.consume('g-member', 'orders', 20, member => 'm1', commit => true);
	SELECT eventlog.alter_group('g-member', interval '1 hour');
	SELECT count(*) FROM eventlog.consume('g-member', 'orders', 30, member => 'm1', commit => true);
	SELECT count(*) FROM eventlog.consume('g-plain', 'orders', 7, commit => true);
	SELECT count(*) FROM eventlog.consume('g-plain', 'blobs', 1, commit => true);
	SELECT count(*) FROM eventlog.consume('g-cdc', 'cdc', 2, commit => true);
});
cmp_ok(q1(q{SELECT count(*) FROM eventlog.lag WHERE committed_offset > 0}),
	'>=', 4, 'the groups have committed offsets');

# ---------------------------------------------------------------------------
# What must not change
# ---------------------------------------------------------------------------

my @topics = ('orders', 'blobs', 'cdc');

# Everything fetch returns for one partition, read in chunks.
sub fetch_text
{
	my ($topic, $part) = @_;
	return join("\n",
		EventlogNode::fetch_lines($node, $topic, $part, db => $db, chunk => 97,
			columns => q{"offset", topic, partition, key,
			             CASE WHEN length(value) > 256
			                  THEN 'len=' || length(value) || ' md5=' || md5(value)
			                  ELSE encode(value, 'hex') END,
			             headers, ts}));
}

sub snapshot
{
	my %s;
	for my $topic (@topics)
	{
		my $n = q1(qq{SELECT partitions FROM eventlog.topic WHERE topic = '$topic'});
		$s{"fetch $topic/$_"} = fetch_text($topic, $_) for 0 .. $n - 1;
	}
	# The columns of 0.1.0 (later versions add some at the end).
	$s{partitions} = q1(q{SELECT topic, partition, relation, earliest_offset, high_watermark,
	                             last_stable_offset, unstable_records, held_by, size_bytes
	                        FROM eventlog.partitions ORDER BY topic, partition});
	$s{lag}        = q1(q{SELECT * FROM eventlog.lag ORDER BY 1, 2, 3});
	$s{topics}     = q1(q{SELECT topic, partitions, relation, owner, retention, retention_bytes, created_at
	                        FROM eventlog.topics ORDER BY topic});
	$s{groups}     = q1(q{SELECT "group", owner, generation, session_timeout, created_at
	                        FROM eventlog.groups ORDER BY 1});
	$s{captures}   = q1(q{SELECT * FROM eventlog.captures ORDER BY 1});
	$s{scan}       = q1(q{SELECT partition, count(*), md5(string_agg(md5(value), ',' ORDER BY partition, "offset"))
	                        FROM eventlog_topics.orders GROUP BY partition ORDER BY partition});
	return \%s;
}

my $before = snapshot();
like($before->{'fetch orders/0'}, qr/\|\{"trace": "t\d+", "source": "upgrade"\}\|/,
	'the recorded fetch output holds headers');
like($before->{'fetch blobs/0'}, qr/len=128000 md5=/,
	'the recorded fetch output holds the large value');
like($before->{partitions}, qr/^orders\|0\|/m, 'eventlog.partitions was recorded');

# Offsets of aborted records are gaps in the fetch output.
my @offs0 = map { /^(\d+)\|/ ? $1 : () } split /\n/, $before->{'fetch orders/0'};
my %hw;
for my $line (split /\n/, $before->{partitions})
{
	my @f = split /\|/, $line;
	$hw{"$f[0]/$f[1]"} = $f[4];
}
cmp_ok($hw{'orders/0'}, '>', $offs0[-1] + 1,
	'0.1.0: the aborted record at the end of orders/0 is below the high watermark');
cmp_ok(scalar(@offs0), '<', $offs0[-1] + 1, '0.1.0: orders/0 has gaps');

# ---------------------------------------------------------------------------
# The update
# ---------------------------------------------------------------------------

q1(q{ALTER EXTENSION eventlog UPDATE});
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'eventlog'}),
	'0.7.0', 'ALTER EXTENSION eventlog UPDATE brings it to 0.7.0');
is( q1(q{SELECT count(*) FILTER (WHERE proconfig IS NOT NULL) || ' of ' || count(*) FROM pg_proc
          WHERE pronamespace = 'eventlog'::regnamespace
            AND proname IN ('consume', 'commit', 'leave', 'reset_offsets', 'delete_group', 'alter_group')}),
	'0 of 8', 'after the update: no group function carries settings');
is( q1(q{SELECT string_agg(DISTINCT proname || ': ' || pg_get_function_result(oid), ', ')
           FROM pg_proc WHERE proname IN ('produce', 'produce_batch') AND pronamespace = 'eventlog'::regnamespace}),
	'produce: eventlog.record_metadata, produce_batch: SETOF eventlog.record_metadata',
	'after the update: produce() and produce_batch() return eventlog.record_metadata');
is( q1(q{SELECT count(*) FROM pg_constraint
          WHERE conrelid = 'eventlog.group_offset'::regclass AND contype = 'f'}),
	'0', 'after the update: committed offsets have no foreign key');
is( q1(q{SELECT string_agg(c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname)
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = 'eventlog_topics.orders'::regclass}),
	'orders$0:p,orders$1:p,orders$2:p', 'after the update: each partition is partitioned by offset');
is( q1(q{SELECT string_agg(segment::text || ' ' || base_offset || ' ' || end_offset, ',' ORDER BY partition)
           FROM eventlog.segments WHERE topic = 'orders'}),
	'eventlog_topics."orders$0$0" 0 1000000,eventlog_topics."orders$1$0" 0 1000000,eventlog_topics."orders$2$0" 0 1000000',
	'after the update: the old partitions are their first segments');

my $after = snapshot();
for my $k (sort keys %$before)
{
	is($after->{$k}, $before->{$k}, "after the update: $k is unchanged");
}

# The new function.
q1(q{SELECT eventlog.alter_topic('orders', interval '7 days', 1000000000)});
is(q1(q{SELECT retention, retention_bytes FROM eventlog.topics WHERE topic = 'orders'}),
	'7 days|1000000000', 'alter_topic() sets the retention of a topic');
q1(q{SELECT eventlog.alter_topic('orders', NULL, NULL)});
is(q1(q{SELECT coalesce(retention::text, 'none') || '|' || coalesce(retention_bytes::text, 'none')
          FROM eventlog.topics WHERE topic = 'orders'}),
	'none|none', 'alter_topic() with NULLs removes the limits');

# Producing continues at the high watermarks (past the aborted records).
for my $p (0 .. 2)
{
	is( q1(qq{SELECT partition || ':' || "offset" FROM eventlog.produce('orders', 'after-update-$p'::text,
	            key => 'u$p', headers => '{"v": "0.2.0"}', partition => $p)}),
		"$p:$hw{\"orders/$p\"}",
		"after the update: orders/$p produces at its high watermark $hw{\"orders/$p\"}");
}
is( q1(q{SELECT "offset" FROM eventlog.produce('blobs', 'after-update'::text)}),
	$hw{'blobs/0'}, 'after the update: blobs/0 produces at its high watermark');

# Groups consume on from their committed offsets.
sub committed
{
	my ($grp, $topic) = @_;
	my %c;
	for my $line (split /\n/,
		q1(qq{SELECT partition, committed_offset FROM eventlog.lag
		       WHERE "group" = '$grp' AND topic = '$topic'}))
	{
		my ($p, $o) = split /\|/, $line;
		$c{$p} = $o;
	}
	return \%c;
}

sub expected_from
{
	my ($topic, $nparts, $committed) = @_;
	my @rows;
	for my $p (0 .. $nparts - 1)
	{
		my $from = $committed->{$p} // 0;
		my $res = q1(qq{SELECT partition || ':' || "offset" FROM eventlog.fetch('$topic', $p, $from, 100000)});
		push @rows, split /\n/, $res;
	}
	return join(',', sort @rows);
}

for my $case (['g-member', 'orders', 3, q{member => 'm1'}], ['g-plain', 'orders', 3, ''],
	['g-plain', 'blobs', 1, ''], ['g-cdc', 'cdc', 2, ''])
{
	my ($grp, $topic, $n, $member) = @$case;
	my $c = committed($grp, $topic);
	my $want = expected_from($topic, $n, $c);
	$member = ", $member" if $member;
	my $got = join(',', sort split /\n/,
		q1(qq{SELECT partition || ':' || "offset" FROM eventlog.consume('$grp', '$topic', 100000$member, commit => true)}));
	is($got, $want, "after the update: $grp consumes $topic on from its committed offsets");
	ok(length($got) > 0, "after the update: $grp has records left to consume in $topic");
	is( q1(qq{SELECT count(*) FROM eventlog.lag WHERE "group" = '$grp' AND topic = '$topic'
	           AND committed_offset IS DISTINCT FROM last_stable_offset}),
		'0', "after the update: $grp has committed all of $topic");
}

# Capture still produces events.
my $cdc_count = q1(q{SELECT count(*) FROM eventlog_topics.cdc});
q1(q{
	INSERT INTO accounts VALUES (4, 'Dee', 40);
	UPDATE accounts SET name = 'Bobby' WHERE id = 2;
});
is(q1(q{SELECT count(*) FROM eventlog_topics.cdc}), $cdc_count + 2,
	'after the update: capture produces an event per change');
is( q1(q{SELECT string_agg((convert_from(value, 'UTF8')::jsonb ->> 'op') || ':'
                           || (convert_from(value, 'UTF8')::jsonb -> 'after' ->> 'name'), ','
                           ORDER BY (convert_from(value, 'UTF8')::jsonb -> 'after' ->> 'id'))
           FROM eventlog.consume('g-cdc', 'cdc', 100, commit => true)}),
	'u:Bobby,c:Dee', 'after the update: the group reads the new capture events');

# ---------------------------------------------------------------------------
# A fresh 0.7.0 installation has the same objects as 0.1.0 + updates
# ---------------------------------------------------------------------------

q1(q{CREATE DATABASE fresh});
q1(q{CREATE EXTENSION eventlog}, 'fresh');
is(q1(q{SELECT extversion FROM pg_extension WHERE extname = 'eventlog'}, 'fresh'),
	'0.7.0', 'CREATE EXTENSION installs 0.7.0 by default');

my %catalog = (
	'member objects' => q{
		SELECT pg_describe_object(classid, objid, objsubid)
		  FROM pg_depend
		 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
		   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'eventlog')
		 ORDER BY 1},
	'functions' => q{
		SELECT p.oid::regprocedure, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
		       p.prokind, p.provolatile, p.proisstrict, p.prosecdef, p.proparallel, p.proconfig,
		       p.prosrc, p.probin, p.proacl, obj_description(p.oid, 'pg_proc')
		  FROM pg_proc p
		 WHERE p.pronamespace = 'eventlog'::regnamespace
		 ORDER BY p.oid::regprocedure::text},
	'relations' => q{
		SELECT c.relname, c.relkind, c.relpersistence, c.reloptions, c.relacl,
		       obj_description(c.oid, 'pg_class')
		  FROM pg_class c
		 WHERE c.relnamespace = 'eventlog'::regnamespace
		 ORDER BY 1},
	'columns' => q{
		SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       pg_get_expr(d.adbin, d.adrelid)
		  FROM pg_class c
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
		 WHERE c.relnamespace = 'eventlog'::regnamespace
		 ORDER BY 1, 2},
	'constraints and indexes' => q{
		SELECT conrelid::regclass, conname, pg_get_constraintdef(oid)
		  FROM pg_constraint WHERE connamespace = 'eventlog'::regnamespace
		UNION ALL
		SELECT indrelid::regclass, indexrelid::regclass::text, pg_get_indexdef(indexrelid)
		  FROM pg_index WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'eventlog'::regnamespace)
		 ORDER BY 1, 2},
	'types' => q{
		SELECT t.typname, t.typtype, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
		       obj_description(t.oid, 'pg_type')
		  FROM pg_type t
		  JOIN pg_class c ON c.oid = t.typrelid AND c.relkind = 'c'
		  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
		 WHERE t.typnamespace = 'eventlog'::regnamespace
		 ORDER BY 1, 3},
	'views' => q{
		SELECT viewname, definition FROM pg_views WHERE schemaname = 'eventlog' ORDER BY 1},
	'schemas, access method, config tables' => q{
		SELECT n.nspname, n.nspacl::text, obj_description(n.oid, 'pg_namespace')
		  FROM pg_namespace n WHERE n.nspname IN ('eventlog', 'eventlog_topics')
		UNION ALL
		SELECT amname, amhandler::text, obj_description(oid, 'pg_am') FROM pg_am WHERE amname = 'eventlog'
		UNION ALL
		SELECT 'config', array_agg(c::regclass::text ORDER BY c::regclass::text)::text, e.extcondition::text
		  FROM pg_extension e, unnest(e.extconfig) c WHERE e.extname = 'eventlog' GROUP BY e.extcondition
		 ORDER BY 1},
);
for my $what (sort keys %catalog)
{
	my $updated = q1($catalog{$what});
	my $direct  = q1($catalog{$what}, 'fresh');
	isnt($direct, '', "fresh 0.7.0: $what listed");
	is($updated, $direct, "0.1.0 + updates and fresh 0.7.0 have the same $what");
}
like(q1($catalog{'member objects'}, 'fresh'),
	qr/^function eventlog\.alter_topic\(text,interval,bigint,bigint\)$/m,
	'fresh 0.7.0 has alter_topic(text, interval, bigint, bigint)');
unlike(q1($catalog{'member objects'}), qr/eventlog_topics\./,
	'topic relations are not members of the extension');

$node->stop;
done_testing();
