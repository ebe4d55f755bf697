
# The Kafka protocol listener, checked with an unmodified Kafka client
# (Debian's kcat, built on librdkafka) and with hand-made requests.
#
# kcat lists topics and partitions; records it produces (keys, headers,
# gzip-compressed batches) are read by eventlog.fetch with the same
# partitions, offsets, keys, values, headers and timestamps, and records
# produced by SQL are read by kcat the same way; a consumer waiting at the
# end of a partition gets new records as soon as they are committed; offsets
# are found by timestamp; keyed records produced with librdkafka's
# murmur2_random partitioner land where eventlog.produce puts them; the
# listener's role needs grants on a topic like any SQL caller; an
# idempotent kcat producer works, and the sequence checks of the idempotent
# producer (duplicates, gaps, epochs, unknown producers) hold for hand-made
# batches, also across a listener restart.  Garbage
# bytes, oversize and truncated frames, unknown API keys, abrupt
# disconnects and a fuzz of mutated valid requests leave the server and
# its other clients working.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use IPC::Run qw(run start finish timeout);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib "$FindBin::RealBin/../perl";
use EventlogNode;

my $kport = PostgreSQL::Test::Cluster::get_free_port();
my $broker = "127.0.0.1:$kport";

# The extension is created below, with the listener's role and topics.
my $node = EventlogNode::new('kafka', qq{eventlog.kafka_port = $kport
eventlog.kafka_role = 'kafka_client'
eventlog.kafka_database = 'postgres'}, extension => 0);
$node->safe_psql('postgres', q{
CREATE EXTENSION eventlog;
CREATE ROLE kafka_client LOGIN;
SELECT eventlog.create_topic('orders', 3);
SELECT eventlog.create_topic('fz', 1);
SELECT eventlog.create_topic('secret', 1);
GRANT SELECT, INSERT ON eventlog_topics.orders, eventlog_topics.fz TO kafka_client;
});
# The listener started before its role existed; a restart brings it at once.
$node->restart;
my $log_start = -s $node->logfile;

# Runs kcat with @args (stdin $in); returns (exit code, stdout, stderr).
sub kcat
{
	my ($in, @args) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		run([ 'kcat', '-b', $broker, @args ], '<', \$in, '>', \$out, '2>', \$err,
			timeout(30));
		1;
	};
	return ($ok ? $? >> 8 : -1, $out, $err);
}

sub sql
{
	return EventlogNode::query($node, $_[0]);
}

# The listener answers once it is up.
my $up = 0;
for (1 .. 100)
{
	my ($rc) = kcat('', '-L', '-m', '2');
	if ($rc == 0) { $up = 1; last; }
	usleep(200_000);
}
ok($up, 'the Kafka listener answers');

# ---- Metadata ----
my ($rc, $out, $err) = kcat('', '-L');
like($out, qr/topic "orders" with 3 partitions:/, 'kcat -L lists a topic and its partitions');
like($out, qr/partition 2, leader 1, replicas: 1, isrs: 1/, 'each partition is led by this broker');
unlike($out, qr/topic "secret"/, 'a topic the role may not read or write is not listed');
like($out, qr/broker 1 at 127\.0\.0\.1:$kport/, 'the advertised host and port');

# ---- kcat produces, SQL reads ----
my $before = sql(q{SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint});
($rc, $out, $err) = kcat("k1:v1\nk2:v2\n:nokey\n", '-P', '-t', 'orders', '-p', '0', '-K:',
	'-H', 'trace=abc', '-H', 'empty=');
is($rc, 0, 'kcat -P with keys and headers succeeds') or diag($err);
my $after = sql(q{SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint});
is( sql(q{SELECT string_agg(concat_ws('|', partition, "offset", coalesce(key, '<null>'),
				convert_from(value, 'UTF8'), headers::text), E'\n' ORDER BY "offset")
			FROM eventlog.fetch('orders', 0, 0)}),
	qq{0|0|k1|v1|{"empty": "", "trace": "abc"}\n0|1|k2|v2|{"empty": "", "trace": "abc"}\n0|2||nokey|{"empty": "", "trace": "abc"}},
	'records produced by kcat are fetched by SQL with their offsets, keys, values and headers');
my $ts = sql(q{SELECT min(floor(extract(epoch FROM ts) * 1000)::bigint) || ',' ||
				max(floor(extract(epoch FROM ts) * 1000)::bigint)
			FROM eventlog.fetch('orders', 0, 0)});
my ($tmin, $tmax) = split /,/, $ts;
ok($tmin >= $before - 1000 && $tmax <= $after + 1000,
	"the producer's timestamps are stored ($tmin..$tmax within $before..$after)");

($rc, $out, $err) = kcat("g1\ng2\ng3\n", '-P', '-t', 'orders', '-p', '1', '-z', 'gzip');
is($rc, 0, 'kcat -P -z gzip succeeds') or diag($err);
is( sql(q{SELECT string_agg("offset" || '=' || convert_from(value, 'UTF8'), ',' ORDER BY "offset")
			FROM eventlog.fetch('orders', 1, 0)}),
	'0=g1,1=g2,2=g3', 'a gzip-compressed batch is decompressed and stored');

# Every codec of Kafka's compression.type: a topic of its own each.
for my $codec (qw(snappy lz4 zstd))
{
	sql(qq{SELECT eventlog.create_topic('z_$codec', 1); GRANT SELECT, INSERT ON eventlog_topics.z_$codec TO kafka_client});
	my $lines = join('', map { "$codec-$_ " . ('x' x 200) . "\n" } 1 .. 50);
	($rc, $out, $err) = kcat($lines, '-P', '-t', "z_$codec", '-p', '0', '-z', $codec);
	is($rc, 0, "kcat -P -z $codec succeeds") or diag($err);
	is( sql(qq{SELECT count(*) || ':' || min(convert_from(value, 'UTF8')) || ':' || max("offset")
				FROM eventlog.fetch('z_$codec', 0, 0, 1000)}),
		"50:$codec-1 " . ('x' x 200) . ':49',
		"a $codec-compressed batch is decompressed and stored, record by record");
}

# ---- SQL produces, kcat reads ----
sql(q{SELECT eventlog.produce('orders', 'from sql'::text, 'sk', '{"a": "1", "b": null}', 2)});
sql(q{SELECT eventlog.produce('orders', '\x00ff'::bytea, NULL, NULL, 2)});
my $sqlts = sql(q{SELECT string_agg(floor(extract(epoch FROM ts) * 1000)::bigint::text, ',' ORDER BY "offset")
			FROM eventlog.fetch('orders', 2, 0)});
my @sqlts = split /,/, $sqlts;
($rc, $out, $err) = kcat('', '-C', '-t', 'orders', '-p', '2', '-o', 'beginning', '-e',
	'-f', '%p|%o|%k|%S|%h|%T\n');
is($rc, 0, 'kcat -C -o beginning -e succeeds') or diag($err);
is($out, "2|0|sk|8|a=1,b=NULL|$sqlts[0]\n2|1||2||$sqlts[1]\n",
	'records produced by SQL are read by kcat with their partition, offsets, keys, headers and timestamps');
($rc, $out, $err) = kcat('', '-C', '-t', 'orders', '-p', '2', '-o', 'beginning', '-e',
	'-f', '%s');
is($out, "from sql\x00\xff", 'values are the stored bytes');

($rc, $out, $err) = kcat('', '-C', '-t', 'orders', '-o', 'beginning', '-e', '-f', '%p:%o\n');
is(join(',', sort split /\n/, $out), '0:0,0:1,0:2,1:0,1:1,1:2,2:0,2:1',
	'kcat reads every partition of a topic');

# ---- waiting at the end ----
my ($wout, $werr) = ('', '');
my $waiter = start([ 'kcat', '-b', $broker, '-C', '-t', 'orders', '-p', '2', '-o', 'end',
		'-c', '2', '-f', '%o=%s\n' ], '<', \undef, '>', \$wout, '2>', \$werr, timeout(30));
sleep(2);
my $t0 = time();
sql(q{SELECT eventlog.produce('orders', 'late1'::text, NULL, NULL, 2)});
sql(q{BEGIN; SELECT eventlog.produce('orders', 'aborted'::text, NULL, NULL, 2); ROLLBACK});
sql(q{SELECT eventlog.produce('orders', 'late2'::text, NULL, NULL, 2)});
finish($waiter);
my $waited = time() - $t0;
is($wout, "2=late1\n4=late2\n",
	'kcat -o end gets records committed while it waits, not rolled-back ones');
ok($waited < 5, sprintf('the waiting fetch is answered at commit (%.2f s)', $waited));

# ---- offsets by timestamp ----
my $mid = sql(q{SELECT floor(extract(epoch FROM ts) * 1000)::bigint FROM eventlog.fetch('orders', 1, 1, 1)});
($rc, $out, $err) = kcat('', '-C', '-t', 'orders', '-p', '1', '-o', "s\@$mid", '-e', '-f', '%o\n');
like($out, qr/^[01]\n.*2\n$/s, "kcat -o s\@<timestamp> starts at the first record at that time");
($rc, $out, $err) = kcat('', '-C', '-t', 'orders', '-p', '1', '-o', 's@' . ($after + 3_600_000),
	'-e', '-f', '%o\n');
is($out, '', 'a timestamp after every record finds nothing');

# ---- keys land where eventlog.produce puts them ----
my $keys = join('', map { "key$_:v\n" } 1 .. 20);
($rc, $out, $err) = kcat($keys, '-P', '-t', 'fz', '-K:', '-X', 'partitioner=murmur2_random');
sql(q{SELECT eventlog.create_topic('keyed', 4)});
sql(q{GRANT SELECT, INSERT ON eventlog_topics.keyed TO kafka_client});
($rc, $out, $err) = kcat($keys, '-P', '-t', 'keyed', '-K:', '-X', 'partitioner=murmur2_random');
is($rc, 0, 'keyed records produced with murmur2_random') or diag($err);
is( sql(q{SELECT count(*) FROM generate_series(0, 3) p, eventlog.fetch('keyed', p, 0) f
			WHERE f.partition <> (SELECT partition FROM eventlog.produce('keyed', 'x'::text, f.key))}),
	'0', 'every key is in the partition eventlog.produce picks for it');

# ---- the idempotent producer ----
sql(q{SELECT eventlog.create_topic('idem', 1)});
sql(q{GRANT SELECT, INSERT ON eventlog_topics.idem TO kafka_client});
($rc, $out, $err) = kcat("i1:v1\ni2:v2\n:v3\n", '-P', '-t', 'idem', '-p', '0', '-K:',
	'-H', 'h=1', '-X', 'enable.idempotence=true', '-X', 'debug=eos');
is($rc, 0, 'kcat -P -X enable.idempotence=true succeeds') or diag($err);
like($err, qr/Acquired PID\{Id:\d+,Epoch:0\}/, 'kcat was given a producer id and epoch 0');
($rc, $out, $err) = kcat("i4:v4\n", '-P', '-t', 'idem', '-p', '0', '-K:',
	'-X', 'enable.idempotence=true');
is($rc, 0, 'a second idempotent kcat gets its own producer id and succeeds') or diag($err);
is( sql(q{SELECT string_agg(concat_ws('|', "offset", coalesce(key, '<null>'),
				convert_from(value, 'UTF8'), coalesce(headers::text, '-')), E'\n' ORDER BY "offset")
			FROM eventlog.fetch('idem', 0, 0)}),
	qq{0|i1|v1|{"h": "1"}\n1|i2|v2|{"h": "1"}\n2||v3|{"h": "1"}\n3|i4|v4|-},
	'records of idempotent producers are stored once, with their offsets, keys, values and headers');

# ---- privileges ----
($rc, $out, $err) = kcat("x\n", '-P', '-t', 'secret', '-p', '0');
isnt($rc, 0, 'producing to a topic the role may not write fails');
is(sql(q{SELECT count(*) FROM eventlog.fetch('secret', 0, 0)}), '0', 'and writes nothing');
($rc, $out, $err) = kcat('', '-C', '-t', 'nosuchtopic', '-p', '0', '-o', 'beginning', '-e');
isnt($rc, 0, 'consuming an unknown topic fails');

# ---- consumer groups: two kcat -G members share partitions and commit ----
sql(q{SELECT eventlog.create_topic('grouped', 4)});
sql(q{GRANT SELECT, INSERT ON eventlog_topics.grouped TO kafka_client});
sql(q{SELECT count(*) FROM eventlog.produce_batch('grouped',
		(SELECT array_agg('v' || i) FROM generate_series(1, 40) i)::text[],
		(SELECT array_agg('key' || i) FROM generate_series(1, 40) i))});

my %member;
for my $name ('A', 'B')
{
	my ($mo, $me) = ('', '');
	$member{$name} = { out => \$mo, err => \$me };
	$member{$name}{h} = start(
		[ 'kcat', '-b', $broker, '-G', 'tg', '-X', 'auto.offset.reset=earliest',
			'-X', 'auto.commit.interval.ms=200', '-f', '%p %o\n', 'grouped' ],
		'<', \undef, '>', \$mo, '2>', \$me, timeout(60));
	sleep(2) if $name eq 'A';
}

# Polls $cond (a sub) until true or $secs pass.
sub wait_for
{
	my ($cond, $secs) = @_;
	return EventlogNode::wait_until(
		$secs,
		sub {
			return 1 if $cond->();
			$member{$_}{h}->pump_nb for keys %member;
			return 0;
		},
		0.2);
}

# The partitions of a member's last assignment.
sub assigned
{
	my ($err) = @_;
	my @lines = grep { /rebalanced.*assigned:/ } split /\n/, $err;
	return () unless @lines;
	return sort map { /\[(\d+)\]/ ? $1 : () } split /,/, ($lines[-1] =~ s/.*assigned://r);
}

ok(wait_for(sub { my @a = assigned(${ $member{A}{err} }); my @b = assigned(${ $member{B}{err} });
		@a && @b && @a + @b == 4 }, 30),
	'two kcat -G members of one group both get partitions');
my @pa = assigned(${ $member{A}{err} });
my @pb = assigned(${ $member{B}{err} });
my %seen_part;
$seen_part{$_}++ for @pa, @pb;
is(join(',', sort keys %seen_part) . ' ' . scalar(@pa + @pb), '0,1,2,3 4',
	"they share the topic's partitions without overlap (A: @pa; B: @pb)");

sql(q{SELECT count(*) FROM eventlog.produce_batch('grouped',
		(SELECT array_agg('w' || i) FROM generate_series(1, 20) i)::text[],
		(SELECT array_agg('key' || i) FROM generate_series(1, 20) i))});
ok( wait_for(
		sub {
			sql(q{SELECT count(*) FROM eventlog.lag WHERE "group" = 'tg' AND lag = 0
				   AND committed_offset = high_watermark}) eq '4';
		},
		30),
	"the group's commits show in eventlog.lag, all caught up");
for my $name ('A', 'B')
{
	$member{$name}{h}->signal('TERM');
	eval { finish($member{$name}{h}); };
}
my %consumed;
for my $name ('A', 'B')
{
	$consumed{$_} = 1 for split /\n/, ${ $member{$name}{out} };
}
is(scalar(keys %consumed), 60, 'every record was consumed by a member of the group');
is(sql(q{SELECT sum(committed_offset) FROM eventlog.lag WHERE "group" = 'tg'}), '60',
	'the committed offsets add up to the records produced');
sql(q{SELECT eventlog.reset_offsets('tg', 'grouped', 'earliest'::text)});
is(sql(q{SELECT sum(committed_offset) FROM eventlog.lag WHERE "group" = 'tg'}), '0',
	'eventlog.reset_offsets moves a Kafka group');

# ---- hand-made requests and garbage ----

sub connect_broker
{
	my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $kport,
		Proto => 'tcp', Timeout => 5);
	die "connect: $!" unless $sock;
	return $sock;
}

# Bytes received on each socket and not yet taken as a frame.
my %pending;

# Reads one response frame within $secs: its body, '' at EOF, undef on timeout.
sub read_frame
{
	my ($sock, $secs) = @_;
	my $sel = IO::Select->new($sock);
	my $buf = \$pending{$sock};
	my $until = time() + $secs;
	$$buf //= '';
	while (1)
	{
		if (length($$buf) >= 4)
		{
			my $len = unpack('N', $$buf);
			if (length($$buf) >= 4 + $len)
			{
				my $body = substr($$buf, 4, $len);
				substr($$buf, 0, 4 + $len) = '';
				return $body;
			}
		}
		my $left = $until - time();
		return undef if $left <= 0;
		return undef unless $sel->can_read($left);
		my $n = sysread($sock, $$buf, 65536, length($$buf));
		return '' if !$n;
	}
}

sub frame
{
	my ($api, $ver, $corr, $body) = @_;
	my $req = pack('n n N n/a*', $api, $ver, $corr, 'tap') . $body;
	return pack('N', length($req)) . $req;
}

# CRC32C (Castagnoli), as record batches need.
my @crc_table = map {
	my $c = $_;
	$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
	$c
} 0 .. 255;

sub crc32c
{
	my $crc = 0xFFFFFFFF;
	$crc = $crc_table[($crc ^ $_) & 0xFF] ^ ($crc >> 8) for unpack('C*', $_[0]);
	return $crc ^ 0xFFFFFFFF;
}

sub varint
{
	my $v = shift;
	my $u = $v >= 0 ? 2 * $v : -2 * $v - 1;
	my $s = '';
	while ($u >= 0x80) { $s .= chr(($u & 0x7f) | 0x80); $u >>= 7; }
	return $s . chr($u);
}

# A Produce v3 request of one record to topic fz, partition 0.
sub produce_frame
{
	my ($corr, $value) = @_;
	my $rec = "\0" . varint(0) . varint(0) . varint(-1) . varint(length $value) . $value . varint(0);
	$rec = varint(length $rec) . $rec;
	my $now = int(time() * 1000);
	my $tail = pack('n N q> q> q> n N N', 0, 0, $now, $now, -1, 0xFFFF, 0xFFFFFFFF, 1) . $rec;
	my $batch_after_len = pack('N C N', 0, 2, crc32c($tail)) . $tail;
	my $batch = pack('q> N', 0, length $batch_after_len) . $batch_after_len;
	my $body = pack('n n N N n/a* N N N/a*', 0xFFFF, 1, 5000, 1, 'fz', 1, 0, $batch);
	return frame(0, 3, $corr, $body);
}

# A bystander connection, open all along, must still be served at the end.
my $bystander = connect_broker();
print $bystander frame(18, 0, 1, '');
my $resp = read_frame($bystander, 5);
ok(defined $resp && unpack('N n', $resp) == 1 && unpack('x4 n', $resp) == 0,
	'ApiVersions v0 is answered');

# ApiVersions v3 (flexible request) and an unsupported version.
my $s = connect_broker();
# header v2: the client id, then (empty) tagged fields; a compact body
my $v3 = pack('n n N n/a*', 18, 3, 7, 'tap') . "\x00" . "\x04tap\x021\x00";
print $s pack('N', length $v3) . $v3;
$resp = read_frame($s, 5);
ok(defined $resp && unpack('N', $resp) == 7 && unpack('x4 n', $resp) == 0,
	'ApiVersions v3 is answered, with no tagged fields in the response header');
print $s frame(18, 9, 8, '');
$resp = read_frame($s, 5);
ok(defined $resp && unpack('N', $resp) == 8 && unpack('x4 n', $resp) == 35
	  && unpack('x6 N', $resp) > 3,
	'an unknown ApiVersions version gets error 35 with the list in a v0 body');
close($s);

# A well-formed produce request, and the same with a bad CRC.
$s = connect_broker();
print $s produce_frame(11, 'handmade');
$resp = read_frame($s, 5);
my ($corr, $nt, $tname, $np, $pidx, $perr, $poff) =
  defined $resp ? unpack('N N n/a* N N n q>', $resp) : ();
is("$corr/$tname/$pidx/$perr", '11/fz/0/0', 'a hand-made Produce v3 request is accepted');
my $bad = produce_frame(12, 'corrupt');
substr($bad, -3, 1) = 'X';
print $s $bad;
$resp = read_frame($s, 5);
($corr, $nt, $tname, $np, $pidx, $perr) = defined $resp ? unpack('N N n/a* N N n', $resp) : ();
is("$corr/$perr", '12/2', 'a batch with a bad CRC gets error 2 (corrupt message)');
is(sql(q{SELECT count(*) FROM eventlog.fetch('fz', 0, 0) WHERE convert_from(value, 'UTF8') = 'corrupt'}),
	'0', 'and nothing of it is stored');

# Snappy in the xerial framing the Java client writes, by hand: snappy's
# format lets a block be one literal (its length, then a tag, then the
# bytes), so no compressor is needed here.
sub snappy_literal
{
	my ($bytes) = @_;
	my $n = length $bytes;
	die 'keep it short' if $n > 60;
	return varint_u($n) . chr(($n - 1) << 2) . $bytes;
}

sub varint_u
{
	my $u = shift;
	my $s = '';
	while ($u >= 0x80) { $s .= chr(($u & 0x7f) | 0x80); $u >>= 7; }
	return $s . chr($u);
}

# A Produce v3 request of one record to fz/0 whose records are compressed
# with codec $codec into $payload by $compress.
sub compressed_produce_frame
{
	my ($corr, $value, $codec, $compress) = @_;
	my $rec = "\0" . varint(0) . varint(0) . varint(-1) . varint(length $value) . $value . varint(0);
	$rec = varint(length $rec) . $rec;
	my $now = int(time() * 1000);
	my $tail = pack('n N q> q> q> n N N', $codec, 0, $now, $now, -1, 0xFFFF, 0xFFFFFFFF, 1)
	  . $compress->($rec);
	my $batch_after_len = pack('N C N', 0, 2, crc32c($tail)) . $tail;
	my $batch = pack('q> N', 0, length $batch_after_len) . $batch_after_len;
	my $body = pack('n n N N n/a* N N N/a*', 0xFFFF, 1, 5000, 1, 'fz', 1, 0, $batch);
	return frame(0, 3, $corr, $body);
}

my $xerial = sub {
	my $block = snappy_literal($_[0]);
	return "\x82SNAPPY\0" . pack('N N', 1, 1) . pack('N', length $block) . $block;
};
print $s compressed_produce_frame(14, 'xerial-framed', 2, $xerial);
$resp = read_frame($s, 5);
($corr, $nt, $tname, $np, $pidx, $perr) = defined $resp ? unpack('N N n/a* N N n', $resp) : ();
is("$corr/$perr", '14/0', 'a snappy batch in the xerial framing is accepted');
print $s compressed_produce_frame(15, 'raw-snappy', 2, sub { snappy_literal($_[0]) });
$resp = read_frame($s, 5);
($corr, $nt, $tname, $np, $pidx, $perr) = defined $resp ? unpack('N N n/a* N N n', $resp) : ();
is("$corr/$perr", '15/0', 'a raw snappy batch is accepted');
is(sql(q{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY "offset") FROM eventlog.fetch('fz', 0, 0)
		  WHERE convert_from(value, 'UTF8') IN ('xerial-framed', 'raw-snappy')}),
	'xerial-framed,raw-snappy', 'and both are stored');
# Garbage under each codec: error 2, nothing stored, the connection serves on.
for my $codec (1 .. 4)
{
	print $s compressed_produce_frame(20 + $codec, "garbage-$codec", $codec,
		sub { "\x82SNAPPY\0" . pack('N N N', 1, 1, 999) . 'not compressed at all' });
	$resp = read_frame($s, 5);
	($corr, $nt, $tname, $np, $pidx, $perr) = defined $resp ? unpack('N N n/a* N N n', $resp) : ();
	is("$corr/$perr", (20 + $codec) . '/2', "a batch that does not decompress with codec $codec gets error 2");
}
is(sql(q{SELECT count(*) FROM eventlog.fetch('fz', 0, 0) WHERE convert_from(value, 'UTF8') LIKE 'garbage-%'}),
	'0', 'and nothing of them is stored');

# An unknown API key gets an error response.
print $s frame(999, 0, 13, '');
$resp = read_frame($s, 5);
ok(defined $resp && length($resp) >= 6 && unpack('N n', $resp) == 13
	  && unpack('x4 n', $resp) == 35,
	'an unknown API key gets error 35');
close($s);

# ---- the idempotent producer, by hand ----

# A Produce v3 request (acks=all) of one batch of @values to partition 0
# of $topic, from producer $pid with $epoch, starting at sequence $seq.
sub idem_produce_frame
{
	my ($corr, $topic, $pid, $epoch, $seq, @values) = @_;
	my $batch = idem_batch($pid, $epoch, $seq, @values);
	my $body = pack('n n N N n/a* N N N/a*', 0xFFFF, 0xFFFF, 5000, 1, $topic, 1, 0, $batch);
	return frame(0, 3, $corr, $body);
}

# A record batch of @values from producer $pid with $epoch, at sequence $seq.
sub idem_batch
{
	my ($pid, $epoch, $seq, @values) = @_;
	my $recs = '';
	for my $i (0 .. $#values)
	{
		my $v = $values[$i];
		my $rec = "\0" . varint(0) . varint($i) . varint(-1) . varint(length $v) . $v . varint(0);
		$recs .= varint(length $rec) . $rec;
	}
	my $now = int(time() * 1000);
	my $tail = pack('n N q> q> q> n N N', 0, $#values, $now, $now, $pid, $epoch, $seq,
		scalar(@values)) . $recs;
	my $batch_after_len = pack('N C N', 0, 2, crc32c($tail)) . $tail;
	return pack('q> N', 0, length $batch_after_len) . $batch_after_len;
}

# Sends a request and returns its response's body after the correlation id.
sub roundtrip
{
	my ($sock, $req) = @_;
	print $sock $req;
	my $r = read_frame($sock, 5);
	return defined $r && length($r) >= 4 ? substr($r, 4) : undef;
}

# Error code and base offset of a one-partition Produce v3 response.
sub produce_result
{
	my ($body) = @_;
	return ('none', -1) unless defined $body;
	my ($nt, $tname, $np, $pidx, $perr, $poff) = unpack('N n/a* N N n q>', $body);
	return ($perr, $poff);
}

$s = connect_broker();
$resp = roundtrip($s, frame(18, 0, 30, ''));
my %apis;
if (defined $resp)
{
	my ($aerr, $n) = unpack('n N', $resp);
	for my $i (0 .. $n - 1)
	{
		my ($k, $lo, $hi) = unpack('n n n', substr($resp, 6 + 6 * $i, 6));
		$apis{$k} = "$lo-$hi";
	}
}
is($apis{22}, '0-1', 'ApiVersions advertises InitProducerId 0 to 1');

$resp = roundtrip($s, frame(22, 1, 31, pack('n N', 0xFFFF, 60000)));
my ($thr, $ierr, $pid, $epoch) = defined $resp ? unpack('N n q> n', $resp) : ();
ok(defined $ierr && $ierr == 0 && $pid >= 0 && $epoch == 0,
	'InitProducerId with a null transactional id gives a producer id and epoch 0');
$resp = roundtrip($s, frame(22, 0, 32, pack('n N', 0xFFFF, 60000)));
my (undef, undef, $pid2) = defined $resp ? unpack('N n q> n', $resp) : ();
ok(defined $pid2 && $pid2 != $pid, 'each InitProducerId gives a new producer id');
$resp = roundtrip($s, frame(22, 1, 33, pack('n/a* N', 'txn-1', 60000)));
($thr, $ierr, my $tpid) = defined $resp ? unpack('N n q>', $resp) : ();
is("$ierr/$tpid", '53/-1',
	'InitProducerId with a transactional id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53)');

sql(q{SELECT eventlog.create_topic('idem2', 1)});
sql(q{GRANT SELECT, INSERT ON eventlog_topics.idem2 TO kafka_client});
my ($e, $o) = produce_result(roundtrip($s, idem_produce_frame(40, 'idem2', $pid, 0, 0, 'a', 'b')));
is("$e/$o", '0/0', 'a first batch of a producer is written');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(41, 'idem2', $pid, 0, 0, 'a', 'b')));
is("$e/$o", '0/0', 'the same batch again is acknowledged with its first offset');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(42, 'idem2', $pid, 0, 2, 'c')));
is("$e/$o", '0/2', 'the next batch in sequence is written');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(43, 'idem2', $pid, 0, 0, 'a', 'b')));
is("$e/$o", '0/0', 'a duplicate of one of the last five batches is still recognised');
is(sql(q{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY "offset")
			FROM eventlog.fetch('idem2', 0, 0)}),
	'a,b,c', 'duplicates are not written twice');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(44, 'idem2', $pid, 0, 5, 'gap')));
is("$e/$o", '45/-1', 'a sequence gap gets OUT_OF_ORDER_SEQUENCE_NUMBER (45)');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(45, 'idem2', $pid2, 0, 7, 'unknown')));
is("$e/$o", '59/-1', 'an unknown producer not starting at sequence 0 gets UNKNOWN_PRODUCER_ID (59)');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(46, 'idem2', $pid, 1, 3, 'new epoch')));
is($e, 45, 'a new epoch must start at sequence 0');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(47, 'idem2', $pid, 1, 0, 'd')));
is("$e/$o", '0/3', 'a new epoch starting at sequence 0 is written');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(48, 'idem2', $pid, 0, 3, 'stale')));
is("$e/$o", '47/-1', 'a stale epoch gets INVALID_PRODUCER_EPOCH (47)');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(49, 'idem2', $pid, 0, 0, 'a', 'b')));
is($e, 47, 'and so does a batch of the old epoch sent again');
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(50, 'idem2', $pid, 1, 0, 'd')));
is("$e/$o", '0/3', 'the new epoch\'s batch sent again is acknowledged with its offset');
is(sql(q{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY "offset")
			FROM eventlog.fetch('idem2', 0, 0)}),
	'a,b,c,d', 'only accepted batches were written, each once');
# the same partition twice in one request, from one producer
$resp = roundtrip($s, frame(0, 3, 51,
		pack('n n N N n/a* N', 0xFFFF, 0xFFFF, 5000, 1, 'idem2', 2)
		  . pack('N N/a*', 0, idem_batch($pid, 1, 1, 'e'))
		  . pack('N N/a*', 0, idem_batch($pid, 1, 2, 'f'))));
my @twice = defined $resp ? unpack('N n/a* N N n q> q> N n q>', $resp) : ();
is(join('/', @twice[4, 5, 8, 9]), '0/4/42/-1',
	'the same partition twice in one request: the first is written, the second gets error 42');
is(sql(q{SELECT count(*) FROM eventlog.fetch('idem2', 0, 0)}), '5', 'and is not written');
close($s);

# Garbage, oversize frames, truncated frames, abrupt disconnects.
srand(60);
$s = connect_broker();
print $s join('', map { chr(int(rand(256))) } 1 .. 4096);
$resp = read_frame($s, 5);
ok(defined $resp, 'random bytes: the server answers or hangs up, and does not hang');
close($s);

$s = connect_broker();
print $s pack('N', 0x7FFFFFF0) . 'x' x 100;
$resp = read_frame($s, 5);
is($resp, '', 'a frame claiming 2 GB: the connection is closed');
close($s);

$s = connect_broker();
print $s substr(produce_frame(14, 'cut'), 0, 30);
close($s);

$s = connect_broker();
print $s pack('N', 3) . 'abc';
$resp = read_frame($s, 5);
is($resp, '', 'a frame too short for a request header: the connection is closed');
close($s);

# Mutated valid requests: each is followed by an ApiVersions request on the
# same connection, which must be answered unless the server hung up.
my @valid = (
	produce_frame(21, 'mutant'),
	frame(3, 1, 22, pack('N n/a*', 1, 'orders')),
	frame(3, 4, 22, pack('N C', 0xFFFFFFFF, 0)),
	frame(2, 1, 23, pack('N N n/a* N N q>', -1, 1, 'orders', 1, 0, -1)),
	frame(10, 1, 24, pack('n/a* C', 'grp', 0)),
	frame(12, 1, 25, pack('n/a* N n/a*', 'tg', 1, 'nobody')),
	frame(9, 1, 26, pack('n/a* N n/a* N N', 'tg', 1, 'grouped', 1, 0)),
);
my ($hangs, $answered, $closed) = (0, 0, 0);
for my $i (1 .. 300)
{
	my $m = $valid[ $i % @valid ];
	for (1 .. 1 + int(rand(4)))
	{
		my $at = 4 + int(rand(length($m) - 4));
		substr($m, $at, 1) = chr(int(rand(256)));
	}
	# a mutation into a Fetch may wait for records legitimately
	# (and a join or sync may wait for other members)
	next if grep { unpack('x4 n', $m) == $_ } (1, 11, 14);
	$s = connect_broker();
	print $s $m . frame(18, 0, 0x7777, '');
	my $ok;
	while (1)
	{
		my $r = read_frame($s, 5);
		if (!defined $r) { diag("no answer after " . unpack("H*", $m)) if $hangs++ < 3; last; }
		if ($r eq '') { $closed++; last; }
		if (unpack('N', $r) == 0x7777) { $answered++; last; }
	}
	delete $pending{$s};
	close($s);
}
is($hangs, 0, "mutated requests never hang ($answered answered, $closed closed)");

print $bystander frame(18, 0, 2, '');
$resp = read_frame($bystander, 5);
ok(defined $resp && $resp ne '' && unpack('N', $resp) == 2,
	'a connection open during all of this is still served');
close($bystander);

($rc, $out, $err) = kcat('', '-C', '-t', 'orders', '-p', '0', '-o', 'beginning', '-e', '-f', '%o\n');
is($out, "0\n1\n2\n", 'kcat still reads after the fuzz');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'eventlog kafka listener'}),
	'1', 'the listener is still running');
my $log = substr(slurp_file($node->logfile), $log_start);
unlike($log, qr/terminated by signal|exited with exit code/, 'the listener never crashed or restarted after the restart');

# ---- producer ids across a listener restart ----
# (after the check above: the listener is stopped on purpose here)
$s = connect_broker();
$resp = roundtrip($s, frame(22, 1, 60, pack('n N', 0xFFFF, 60000)));
my (undef, undef, $pid_before) = defined $resp ? unpack('N n q> n', $resp) : ();
close($s);
$node->safe_psql('postgres',
	q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'eventlog kafka listener'});
my $back = 0;
for (1 .. 100)
{
	my ($rc2) = kcat('', '-L', '-m', '2');
	if ($rc2 == 0) { $back = 1; last; }
	usleep(200_000);
}
ok($back, 'the listener is back after being stopped');
$s = connect_broker();
$resp = roundtrip($s, frame(22, 1, 61, pack('n N', 0xFFFF, 60000)));
my (undef, $err_after, $pid_after) = defined $resp ? unpack('N n q> n', $resp) : ();
ok(defined $pid_after && $err_after == 0 && $pid_after > $pid_before,
	"producer ids are not handed out again after a listener restart ($pid_before, then $pid_after)");
($e, $o) = produce_result(roundtrip($s, idem_produce_frame(62, 'idem2', $pid, 1, 1, 'after restart')));
is("$e/$o", '59/-1',
	'a producer the restarted listener does not know gets UNKNOWN_PRODUCER_ID for a later sequence');
close($s);
($rc, $out, $err) = kcat("i5:v5\n", '-P', '-t', 'idem', '-p', '0', '-K:',
	'-X', 'enable.idempotence=true');
is($rc, 0, 'kcat -X enable.idempotence=true produces after the restart') or diag($err);
is(sql(q{SELECT count(*) FROM eventlog.fetch('idem', 0, 0)}), '5', 'once');

$node->stop;
done_testing();
