#!/usr/bin/env bash
# Group commits while a snapshot is held open: eventlog's committed offsets
# against a naive one-row-per-partition UPDATE table, in the same run.
#
#   bash bench/held_snapshot.sh            # hold the snapshot 300 s (as the target says)
#   HOLD=30 bash bench/held_snapshot.sh    # shorter
#
# Runs as root (like test/run): a throwaway cluster owned by postgres, with
# fsync = on and synchronous_commit = on.  Needs the extension installed
# (bash test/run test, or make install).  Prints the throughput of each
# 10-second interval and the worst ratio to the baseline.
set -euo pipefail

HOLD=${HOLD:-300}
STEP=10
CLIENTS=2
BIN=/usr/lib/postgresql/15/bin
WORK=$(mktemp -d /tmp/eventlog-bench.XXXXXX)
chmod 755 "$WORK"
chown postgres "$WORK"
trap 'runuser -u postgres -- $BIN/pg_ctl -D $WORK/data -m fast -w stop >/dev/null 2>&1 || true; rm -rf $WORK' EXIT

as_pg() { runuser -u postgres -- "$@"; }
as_pg $BIN/initdb -D "$WORK/data" -A trust -U postgres >/dev/null
cat >>"$WORK/data/postgresql.conf" <<CONF
shared_preload_libraries = 'eventlog'
listen_addresses = ''
unix_socket_directories = '$WORK'
fsync = on
synchronous_commit = on
shared_buffers = 256MB
CONF
as_pg $BIN/pg_ctl -D "$WORK/data" -l "$WORK/log" -w start >/dev/null
PSQL="$BIN/psql -X -q -h $WORK -U postgres -d postgres -v ON_ERROR_STOP=1"
PGBENCH="$BIN/pgbench -h $WORK -U postgres -n"

as_pg $PSQL <<'SQL'
CREATE EXTENSION eventlog;
SELECT eventlog.create_topic('bench', 4);
SELECT count(*) FROM eventlog.produce_batch('bench', array(SELECT 'x' FROM generate_series(1, 2000000)),
                                             keys => array(SELECT 'k' || i FROM generate_series(1, 2000000) i));
SELECT count(*) FROM eventlog.consume('bench-group', 'bench', 1, member => 'm1');
SELECT count(*) FROM eventlog.consume('bench-group', 'bench', 1, member => 'm2');
-- the naive design: one row per partition, updated on every commit
CREATE TABLE naive_offset (grp text, topic text, partition int, committed_offset bigint,
                           PRIMARY KEY (grp, topic, partition)) WITH (fillfactor = 20);
INSERT INTO naive_offset SELECT 'g', 'bench', p, 0 FROM generate_series(0, 3) p;
SQL
cat >"$WORK/eventlog.sql" <<'SQL'
SELECT count(*) FROM eventlog.consume('bench-group', 'bench', 1, member => 'm' || :client_id + 1, commit => true);
SQL
cat >"$WORK/naive.sql" <<'SQL'
UPDATE naive_offset SET committed_offset = committed_offset + 1 WHERE grp = 'g' AND topic = 'bench' AND partition = :client_id;
SQL
chown postgres "$WORK"/*.sql

tps() { as_pg $PGBENCH -f "$WORK/$1.sql" -T $STEP -c $CLIENTS postgres 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }

run() {
	local name=$1 base worst t i
	base=$( (tps "$name"; tps "$name"; tps "$name") | sort -n | sed -n 2p)
	echo "$name: baseline (median of 3 x ${STEP}s, $CLIENTS clients): $base commits/s"
	as_pg $PSQL -c "VACUUM"
	( echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class; SELECT pg_sleep($HOLD); COMMIT;" | as_pg $PSQL >/dev/null ) &
	local holder=$!
	sleep 1
	worst=$base
	for ((i = STEP; i <= HOLD - STEP; i += STEP)); do
		t=$(tps "$name")
		echo "  snapshot held ${i}s: $t commits/s"
		worst=$(echo "$t $worst" | awk '{print ($1 < $2) ? $1 : $2}')
	done
	wait $holder
	echo "$name: worst interval $worst commits/s, degradation $(echo "$base $worst" | awk '{printf "%.2f", $1 / $2}')x"
}

echo "settings: fsync=on synchronous_commit=on shared_buffers=256MB, $CLIENTS clients, snapshot held ${HOLD}s"
run eventlog
run naive
