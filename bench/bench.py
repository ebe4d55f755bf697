#!/usr/bin/python3
"""eventlog benchmark: every workload of issue 6 against eventlog, a heap table
without index, a heap table with a bigint primary key and PgQ, on one cluster,
in one run.  Started by bench/run (which makes the cluster); reads its
connection from the environment (BENCH_HOST, BENCH_PORT, BENCH_PGDATA,
BENCH_BIN, BENCH_WORK).  SMOKE=1: tiny sizes, one repetition.

Every measurement starts after a CHECKPOINT and checks its own result: what was
produced is read back (count, no duplicates, per-client sequence complete,
every value equal to the value produced for its key), and what readers
received is compared with checksums computed from the generator.  A check that
fails is printed and makes the run exit with status 1.

Records: key 'k' || 10 digits (11 bytes); value a JSON object of exactly 110
bytes (or 1,000 for the 1 KB run) that names its key.  The key of a record is
'k' || (1e9 + client * 1e8 + seq), seq counting from 1 per client, so a
client's records can be checked for loss and duplicates.
"""
import json
import multiprocessing as mp
import os
import platform
import select
import statistics
import subprocess
import sys
import time

import psycopg2

HOST = os.environ.get("BENCH_HOST", "/tmp")
PORT = int(os.environ.get("BENCH_PORT", "5432"))
PGDATA = os.environ.get("BENCH_PGDATA", "")
BIN = os.environ.get("BENCH_BIN", "/usr/lib/postgresql/15/bin")
WORK = os.environ.get("BENCH_WORK", "/tmp")
OUT = os.path.join(WORK, "out")
SMOKE = os.environ.get("SMOKE", "0") == "1"
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").split(",") if w]

if SMOKE:
    REPS = 1
    N_TX = 4000            # records of the one-transaction workload
    N_TX_1K = 1000         # the same with 1 KB values
    CHUNK = 1000           # records per produce_batch call / per PgQ batch
    N_READ = 20000         # records read back
    READ_CALL, READ_BIG = 100, 1000   # records per read call (per PgQ tick); the larger batch
    SEEK_BIG, SEEK_SMALL = 50000, 1000
    PGBENCH_T = 1          # seconds per pgbench measurement
    BATCHES = [1, 100]
    LAT_SECONDS = 1.0
    LAT_RATES = [1000]
    HOLD, STEP, BASE_STEP = 4, 1, 1
    N_HELD = 20000
else:
    REPS = 3
    N_TX = 1000000
    N_TX_1K = 250000       # 1 KB values: a quarter of the records (time budget)
    CHUNK = 10000
    N_READ = 1000000
    READ_CALL, READ_BIG = 1000, 10000
    SEEK_BIG, SEEK_SMALL = 10000000, 10000
    PGBENCH_T = 10         # seconds per pgbench measurement (5 s runs varied by ±5%)
    BATCHES = [1, 10, 100, 1000]
    LAT_SECONDS = 6
    HOLD, STEP, BASE_STEP = 300, 10, 5
    N_HELD = 2000000
# Bytes of values per produce_batch call of the one-transaction workload,
# whose arrays are built in SQL with array_agg.  Arrays of 1.1 MB (10,000
# records) land above malloc's mmap threshold: their building alone
# page-faulted 122 k times per 1,000,000 records (0.5 s).  Arrays of 110 kB
# stay below it (1,000 values of 110 bytes, 110 of 1 KB).
TX_CHUNK_BYTES = 110000
CLIENTS = 8
TOPIC_PARTITIONS = 8
if not SMOKE:
    LAT_RATES = [1000, 10000]  # records per second
LAT_TX_RATE = 1000             # transactions per second (1 or 10 records each)
LAT_PRODUCERS = 4

SYSTEMS = ["eventlog", "heap", "heap_pk", "pgq"]
SWEEP_SYSTEMS = SYSTEMS + ["eventlog_p1"]   # the batch sweep also writes to a 1-partition topic
SYSTEM_NAMES = {"eventlog": "eventlog", "eventlog_p1": "eventlog, 1 partition", "heap": "heap (no index)",
                "heap_pk": "heap + bigint PK", "pgq": "PgQ"}

FAILURES = []
RESULTS = {}          # workload id -> {series: [values]}
T0 = time.monotonic()


# ---------------------------------------------------------------- helpers

def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


def check(ok, what):
    if not ok:
        FAILURES.append(what)
        print("CHECK FAILED: " + what, flush=True)
    return ok


def connect(autocommit=True):
    conn = psycopg2.connect(host=HOST, port=PORT, dbname="postgres", user="postgres")
    conn.autocommit = autocommit
    return conn


MAIN = None


def db():
    global MAIN
    if MAIN is None or MAIN.closed:
        MAIN = connect()
    return MAIN


def q(sql, args=None):
    cur = db().cursor()
    cur.execute(sql, args)
    rows = cur.fetchall() if cur.description else None
    cur.close()
    return rows


def q1(sql, args=None):
    return q(sql, args)[0]


def checkpoint():
    q("CHECKPOINT")


def record(wid, series, value):
    RESULTS.setdefault(wid, {}).setdefault(series, []).append(value)


def med(values):
    return statistics.median(values) if values else None


def key_sql(client, seq):
    """SQL expression of a record's key (11 bytes)."""
    return "('k' || (1000000000::bigint + %s::bigint * 100000000 + (%s)))" % (client, seq)


def value_tail(size):
    """The constant part of a value, so that the whole value is size bytes."""
    head = '{"key":"k0000000000'
    body = '","type":"order_created","customer":"cust-4711","amount":42.50,"currency":"EUR","pad":"'
    end = '"}'
    pad = size - len(head) - len(body) - len(end)
    alphabet = "q8Zx3vBn0mLk5JhG7fDs2aPo9iUy4tRe6wQ1"
    return body + (alphabet * (pad // len(alphabet) + 1))[:pad] + end


def val_sql(kexpr, size):
    """SQL expression of the value of the record with key kexpr."""
    return "('{\"key\":\"' || %s || '%s')" % (kexpr, value_tail(size))


def val_py(key, size):
    return '{"key":"' + key + value_tail(size)


def key_py(client, seq):
    return "k%d" % (1000000000 + client * 100000000 + seq)


assert len(val_py(key_py(0, 1), 110)) == 110 and len(val_py(key_py(0, 1), 1000)) == 1000


def pgbench(script, clients, seconds, defines=(), name="script"):
    """Runs pgbench; returns (transactions, tps, mean latency ms)."""
    path = os.path.join(WORK, name + ".sql")
    with open(path, "w") as f:
        f.write(script)
    cmd = [os.path.join(BIN, "pgbench"), "-n", "-h", HOST, "-p", str(PORT), "-U", "postgres",
           "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds), "-f", path]
    for d in defines:
        cmd += ["-D", d]
    cmd.append("postgres")
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    n = tps = lat = None
    failed = 0
    for line in out.splitlines():
        if line.startswith("number of transactions actually processed:"):
            n = int(line.split(":")[1].split()[0])
        elif line.startswith("number of failed transactions:"):
            failed = int(line.split(":")[1].split()[0])
        elif line.startswith("tps = "):
            tps = float(line.split()[2])
        elif line.startswith("latency average = "):
            lat = float(line.split()[3])
    if not check(p.returncode == 0 and n is not None and failed == 0,
                 "pgbench %s: exit %d, failed %s\n%s" % (name, p.returncode, failed, out[-2000:])):
        return 0, 0.0, 0.0
    return n, tps, lat


# ---------------------------------------------------------------- objects per system

def reset_system(system, name="t", partitions=TOPIC_PARTITIONS):
    """Drops and creates the object a system writes to, empty."""
    if system == "eventlog_p1":
        system, partitions = "eventlog", 1
    if system == "eventlog":
        if q1("SELECT count(*) FROM eventlog.topic WHERE topic = %s", (name,))[0]:
            q("SELECT eventlog.drop_topic(%s)", (name,))
        q("SELECT eventlog.create_topic(%s, %s)", (name, partitions))
    elif system == "heap":
        q("DROP TABLE IF EXISTS bench.%s" % name)
        q("CREATE TABLE bench.%s (key text, value text, headers jsonb, ts timestamptz NOT NULL DEFAULT now())" % name)
    elif system == "heap_pk":
        q("DROP TABLE IF EXISTS bench.%s" % name)
        q("CREATE TABLE bench.%s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key text, value text,"
          " headers jsonb, ts timestamptz NOT NULL DEFAULT now())" % name)
    elif system == "pgq":
        if q1("SELECT count(*) FROM pgq.queue WHERE queue_name = %s", (name,))[0]:
            q("SELECT pgq.drop_queue(%s, true)", (name,))
        q("SELECT pgq.create_queue(%s)", (name,))
        q("SELECT pgq.set_queue_config(%s, 'ticker_max_count', '1')", (name,))


def drop_system(system, name="t"):
    if system in ("eventlog", "eventlog_p1"):
        if q1("SELECT count(*) FROM eventlog.topic WHERE topic = %s", (name,))[0]:
            q("SELECT eventlog.drop_topic(%s)", (name,))
    elif system in ("heap", "heap_pk"):
        q("DROP TABLE IF EXISTS bench.%s" % name)
    elif system == "pgq":
        if q1("SELECT count(*) FROM pgq.queue WHERE queue_name = %s", (name,))[0]:
            q("SELECT pgq.drop_queue(%s, true)", (name,))


def pgq_tables_sql(name):
    return ("SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pgq.queue qq ON qq.queue_name = '%s'"
            " WHERE n.nspname = 'pgq' AND c.relkind = 'r'"
            " AND c.relname ~ ('^event_' || qq.queue_id || '(_[0-9]+)?$')" % name)


def disk_bytes(system, name="t"):
    if system == "eventlog":
        return int(q1("SELECT sum(size_bytes) FROM eventlog.partitions WHERE topic = %s", (name,))[0])
    if system in ("heap", "heap_pk"):
        return int(q1("SELECT pg_total_relation_size('bench.%s')" % name)[0])
    return int(q1("SELECT sum(pg_total_relation_size(oid)) FROM (%s) x" % pgq_tables_sql(name))[0])


def source_sql(system, name="t"):
    """(key, value text) of every record a system holds."""
    if system == "eventlog":
        return ("SELECT key, convert_from(value, 'UTF8') AS value, partition, \"offset\""
                " FROM eventlog_topics.\"%s\"" % name)
    if system in ("heap", "heap_pk"):
        return "SELECT key, value FROM bench.%s" % name
    return ("SELECT ev_extra1 AS key, ev_data AS value FROM pgq.event_%d"
            % q1("SELECT queue_id FROM pgq.queue WHERE queue_name = %s", (name,))[0])


def verify_written(system, expected, size, what, name="t", partitions=TOPIC_PARTITIONS, keyed=True):
    """Reads back what a system holds: count, exact values, every client's
    sequence complete without duplicates; for eventlog also the partition of
    every key (Kafka's partitioner) and dense offsets per partition."""
    if system == "eventlog_p1":
        system, partitions = "eventlog", 1
    src = source_sql(system, name)
    n, bad = q1("SELECT count(*), count(*) FILTER (WHERE value IS DISTINCT FROM %s) FROM (%s) s"
                % (val_sql("key", size), src))
    check(n == expected, "%s %s: %d records read back, %d produced" % (what, system, n, expected))
    check(bad == 0, "%s %s: %d values differ from what was produced" % (what, system, bad))
    rows = q("SELECT c, count(*), min(s), max(s), sum(s), sum(s * s) FROM"
             " (SELECT (substr(key, 2)::bigint - 1000000000) / 100000000 AS c,"
             "         (substr(key, 2)::bigint - 1000000000) %% 100000000 AS s FROM (%s) src) x"
             " GROUP BY c" % src)
    for c, cnt, mn, mx, sm, sq in rows:
        ok = mn == 1 and mx == cnt and sm == cnt * (cnt + 1) // 2 and sq == cnt * (cnt + 1) * (2 * cnt + 1) // 6
        check(ok, "%s %s: client %d's records are not exactly 1..%d (lost or duplicated records)"
              % (what, system, c, cnt))
    if system == "eventlog":
        if keyed:
            wrong = q1("SELECT count(*) FROM (%s) s WHERE partition <> eventlog.partition_for_key(key, %d)"
                       % (src, partitions))[0]
            check(wrong == 0, "%s eventlog: %d records in the wrong partition for their key" % (what, wrong))
        gaps = q1("SELECT count(*) FROM (SELECT partition, count(*) n, min(\"offset\") lo, max(\"offset\") hi"
                  " FROM (%s) s GROUP BY partition) x WHERE lo <> 0 OR hi <> n - 1" % src)[0]
        check(gaps == 0, "%s eventlog: offsets of %d partitions are not 0..n-1" % (what, gaps))
        hw = q1("SELECT sum(high_watermark) FROM eventlog.partitions WHERE topic = %s", (name,))[0]
        check(hw == expected, "%s eventlog: high watermarks add up to %s, %d produced" % (what, hw, expected))


def measure_systems(rep, cases, measure, reset=True, prepare=None):
    """The per-system measurement loop of the workloads, for repetition rep:
    each case in turn (a system name, or a tuple whose first item is one)
    is measured alike.  prepare(case) runs first when given; then the object
    the system writes to is dropped and created empty (reset_system; not
    with reset=False: readers of records loaded before, runs that make their
    own objects in prepare), and a CHECKPOINT is taken so that no
    checkpoint's writes fall in the measurement.  measure(rep, case) then
    measures, records and logs; when it returns (records written, value
    size, what), what the system holds is read back and checked
    (verify_written)."""
    for case in cases:
        system = case[0] if isinstance(case, tuple) else case
        if prepare:
            prepare(case)
        if reset:
            reset_system(system)
        checkpoint()
        written = measure(rep, case)
        if written:
            verify_written(system, *written)


# ---------------------------------------------------------------- 1. one big transaction

def one_transaction(system, n, size, client=0):
    """Writes n records in one transaction; returns (seconds, WAL bytes)."""
    conn = connect(autocommit=False)
    cur = conn.cursor()
    cur.execute("SELECT pg_current_wal_insert_lsn()")
    lsn0 = cur.fetchone()[0]
    conn.commit()
    t0 = time.monotonic()
    k = key_sql(client, "i")
    if system == "eventlog":
        # One statement, as on the other sides: produce_batch called once per
        # chunk of generate_series, the chunk's arrays built by array_agg.
        chunk = max(1, TX_CHUNK_BYTES // size)
        cur.execute("SELECT coalesce(sum(x.n), 0) FROM generate_series(0, %d) c, LATERAL"
                    " (SELECT count(*) AS n FROM (SELECT array_agg(%s) v, array_agg(k) ks FROM"
                    " (SELECT %s AS k FROM generate_series(c * %d + 1, least(c * %d + %d, %d)) i) s) a,"
                    " eventlog.produce_batch('t', a.v, a.ks) p) x"
                    % ((n - 1) // chunk, val_sql("k", size), k, chunk, chunk, chunk, n))
        done = cur.fetchone()[0]
        check(done == n, "one transaction eventlog: produce_batch returned %d rows for %d records" % (done, n))
    elif system in ("heap", "heap_pk"):
        cur.execute("INSERT INTO bench.t (key, value) SELECT k, %s FROM"
                    " (SELECT %s AS k FROM generate_series(1, %d) i) s" % (val_sql("k", size), k, n))
    else:
        cur.execute("SELECT count(pgq.insert_event('t', 'e', %s, k, NULL, NULL, NULL)) FROM"
                    " (SELECT %s AS k FROM generate_series(1, %d) i) s" % (val_sql("k", size), k, n))
    conn.commit()
    secs = time.monotonic() - t0
    cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", (lsn0,))
    wal = float(cur.fetchone()[0])
    conn.close()
    return secs, wal


def w_one_transaction():
    for size, n, wid in ((110, N_TX, "tx1m"), (1000, N_TX_1K, "tx1m_1k")):
        log("one transaction of %d records of %d bytes" % (n, size))

        def measure(rep, system):
            secs, wal = one_transaction(system, n, size)
            disk = disk_bytes(system)
            record(wid, system, n / secs)
            record(wid + "_wal", system, wal / n)
            record(wid + "_disk", system, disk / n)
            log("  rep %d %-8s %9.0f rec/s  WAL %6.1f B/rec  disk %6.1f B/rec"
                % (rep + 1, system, n / secs, wal / n, disk / n))
            return n, size, "one transaction (%d B)" % size

        for rep in range(REPS):
            measure_systems(rep, SYSTEMS, measure)
        for system in SYSTEMS:
            drop_system(system)


# ---------------------------------------------------------------- 2-3. transactions from 8 clients

def batch_script(system, batch):
    seq = ":n" if batch == 1 else "(:n - 1) * %d + i" % batch
    keys = "SELECT %s AS k%s" % (key_sql(":client_id", seq),
                                 "" if batch == 1 else " FROM generate_series(1, %d) i" % batch)
    arrays = "(SELECT array_agg(k) ks, array_agg(%s) vs FROM (%s) s) a" % (val_sql("k", 110), keys)
    head = "\\set n :n + 1\n"
    if system in ("eventlog", "eventlog_p1"):
        if batch == 1:
            return head + "SELECT p.* FROM (%s) s, eventlog.produce('t', %s, s.k) p;\n" % (keys, val_sql("s.k", 110))
        return head + "SELECT count(*) FROM %s, eventlog.produce_batch('t', a.vs, a.ks) p;\n" % arrays
    if system in ("heap", "heap_pk"):
        if batch == 1:
            return head + "INSERT INTO bench.t (key, value) SELECT k, %s FROM (%s) s;\n" % (val_sql("k", 110), keys)
        return head + ("INSERT INTO bench.t (key, value) SELECT u.k, u.v FROM %s, unnest(a.ks, a.vs) u(k, v);\n"
                       % arrays)
    if batch == 1:
        return head + "SELECT pgq.insert_event('t', 'e', %s, k, NULL, NULL, NULL) FROM (%s) s;\n" % (
            val_sql("k", 110), keys)
    return head + ("SELECT count(pgq.insert_event('t', 'e', u.v, u.k, NULL, NULL, NULL))"
                   " FROM %s, unnest(a.ks, a.vs) u(k, v);\n" % arrays)


def w_clients():
    for batch in BATCHES:
        log("%d-record transactions from %d clients, %d s each" % (batch, CLIENTS, PGBENCH_T))

        def measure(rep, system):
            n, tps, lat = pgbench(batch_script(system, batch), CLIENTS, PGBENCH_T, ["n=0"],
                                  "produce_%s_%d" % (system, batch))
            record("batch%d" % batch, system, tps * batch)
            log("  rep %d %-11s %9.0f rec/s (%d transactions)" % (rep + 1, system, tps * batch, n))
            return n * batch, 110, "%d-record transactions" % batch

        for rep in range(REPS):
            measure_systems(rep, SWEEP_SYSTEMS, measure)
    for system in SYSTEMS:
        drop_system(system)


# ---------------------------------------------------------------- 4. reading 1M records

def read_client(kind, idx, nclients, arg, batch, barrier, out):
    conn = connect()
    cur = conn.cursor()
    tally = [0, 0, 0, 0]   # records, key hash sum, value bytes, calls

    def took(n, h, l):
        """Adds one call's (count, key hash sum, value bytes); false if it read nothing."""
        tally[3] += 1
        tally[0] += n
        tally[1] += h
        tally[2] += l
        return n > 0

    if kind == "consume_nosync":
        # diagnostic, not durable: the same calls without waiting for the
        # commit's WAL flush, to show the flush's share of a call
        cur.execute("SET synchronous_commit = off")
        kind = "consume"
    # One call before the clock starts: a service's sessions are long-lived,
    # so the measured calls find the session's caches (relations, catalog
    # rows) warm, as they would.  consume's call commits its record, which counts
    # with the others; the other readers' reads write nothing.  PgQ's
    # consumer is not warmed: its calls move its batch.
    lo = idx * N_READ // nclients
    hi = (idx + 1) * N_READ // nclients
    if kind in ("fetch", "fetch_flush"):
        cur.execute("SELECT count(*) FROM eventlog.fetch('r', %s, 0, 1)", (idx % TOPIC_PARTITIONS,))
    elif kind == "consume":
        cur.execute("SELECT count(*), coalesce(sum(hashtext(key)), 0), coalesce(sum(length(value)), 0)"
                    " FROM eventlog.consume(%s, 'r', 1, member => %s, commit => true)", (arg, "m%d" % idx))
        took(*cur.fetchone())
        tally[3] -= 1
    elif kind in ("keyset", "keyset_durable"):
        cur.execute("SELECT count(*) FROM (SELECT id, key, value FROM bench.rh WHERE id > %s AND id <= %s"
                    " ORDER BY id LIMIT 1) s", (lo, hi))
    barrier.wait()
    t0 = time.monotonic()
    if kind in ("fetch", "fetch_flush"):
        # fetch_flush: the floor of a reader that commits durably with every
        # call: eventlog's read path and the least durable write there is (a
        # transactional WAL message, so the commit waits for its flush), no
        # group and no position kept
        flush = ", (SELECT pg_logical_emit_message(true, 'eventlog-bench', '') IS NOT NULL)" \
            if kind == "fetch_flush" else ""
        for p in range(idx, TOPIC_PARTITIONS, nclients):
            pos = 0
            while True:
                cur.execute("SELECT count(*), max(\"offset\"), coalesce(sum(hashtext(key)), 0),"
                            " coalesce(sum(length(value)), 0)" + flush +
                            " FROM eventlog.fetch('r', %s, %s, %s)", (p, pos, batch))
                n, mx, h, l = cur.fetchone()[:4]
                if not took(n, h, l):
                    break
                pos = mx + 1
    elif kind == "consume":
        grp, member = arg, "m%d" % idx
        while True:
            cur.execute("SELECT count(*), coalesce(sum(hashtext(key)), 0), coalesce(sum(length(value)), 0)"
                        " FROM eventlog.consume(%s, 'r', %s, member => %s, commit => true)", (grp, batch, member))
            if not took(*cur.fetchone()):
                # done when the partitions this member owns are read to the
                # end, as a keyset client is when its range is
                cur.execute("SELECT coalesce(sum(lag), -1) FROM eventlog.lag WHERE \"group\" = %s AND member = %s",
                            (grp, member))
                if cur.fetchone()[0] == 0:
                    break
                time.sleep(0.005)
    elif kind == "keyset":
        pos = lo
        while True:
            cur.execute("SELECT count(*), max(id), coalesce(sum(hashtext(key)), 0), coalesce(sum(length(value)), 0)"
                        " FROM (SELECT id, key, value FROM bench.rh WHERE id > %s AND id <= %s"
                        " ORDER BY id LIMIT %s) s", (pos, hi, batch))
            n, mx, h, l = cur.fetchone()
            if not took(n, h, l):
                break
            pos = mx
    elif kind == "keyset_durable":
        # keyset pagination that keeps its position in a table, written in
        # the statement that reads (so committed durably with every call), as
        # a consumer that must not lose its place does; consume does the same
        cur.execute("INSERT INTO bench.rh_pos VALUES (%s, %s)"
                    " ON CONFLICT (client) DO UPDATE SET last_id = EXCLUDED.last_id", (idx, lo))
        while True:
            cur.execute("WITH s AS (SELECT id, key, value FROM bench.rh"
                        "           WHERE id > (SELECT last_id FROM bench.rh_pos WHERE client = %s) AND id <= %s"
                        "           ORDER BY id LIMIT %s),"
                        "     u AS (UPDATE bench.rh_pos SET last_id = (SELECT max(id) FROM s)"
                        "           WHERE client = %s AND EXISTS (SELECT FROM s))"
                        " SELECT count(*), coalesce(sum(hashtext(key)), 0), coalesce(sum(length(value)), 0) FROM s",
                        (idx, hi, batch, idx))
            if not took(*cur.fetchone()):
                break
    elif kind == "pgq":
        # the queue is ticked every READ_CALL events; larger batches span several ticks
        consumer = arg
        conn.autocommit = False
        while True:
            if batch == READ_CALL:
                cur.execute("SELECT pgq.next_batch('rq', %s)", (consumer,))
            else:
                cur.execute("SELECT batch_id FROM pgq.next_batch_custom('rq', %s, NULL, %s, NULL)", (consumer, batch))
            b = cur.fetchone()[0]
            if b is None:
                conn.commit()
                break
            cur.execute("SELECT count(*), coalesce(sum(hashtext(ev_extra1)), 0), coalesce(sum(length(ev_data)), 0)"
                        " FROM pgq.get_batch_events(%s)", (b,))
            row = cur.fetchone()
            cur.execute("SELECT pgq.finish_batch(%s)", (b,))
            conn.commit()
            took(*row)
    t1 = time.monotonic()
    if kind == "consume":
        cur.execute("SELECT eventlog.leave(%s, %s)", (arg, "m%d" % idx))
    conn.close()
    out.put((t0, t1) + tuple(tally))


def form_group(grp, nclients):
    """The consumers join their group before the clock starts, one after the
    other, as a service's consumers do once when they start: after the last
    join every member owns its share of the partitions, and the measured
    calls only read.  Returns the milliseconds the joins took (each join
    rebalances the group), reported beside the reading rows."""
    conn = connect()
    cur = conn.cursor()
    t0 = time.monotonic()
    for idx in range(nclients):
        cur.execute("SELECT count(*) FROM eventlog.consume(%s, 'r', 1, member => %s)", (grp, "m%d" % idx))
    ms = (time.monotonic() - t0) * 1e3
    cur.execute("SELECT count(*), count(DISTINCT member), min(n), max(n) FROM"
                " (SELECT member, count(*) n FROM eventlog.group_assignment WHERE grp = %s GROUP BY member) s",
                (grp,))
    _, members, lo, hi = cur.fetchone()
    check(members == nclients and hi - lo <= 1,
          "group %s formed unevenly: %d members own partitions, %s to %s each" % (grp, members, lo, hi))
    conn.close()
    return ms


def run_readers(kind, nclients, arg, batch):
    if kind in ("consume", "consume_nosync"):
        record("form", "ms%d" % nclients, form_group(arg, nclients))
    barrier = mp.Barrier(nclients)
    out = mp.Queue()
    procs = [mp.Process(target=read_client, args=(kind, i, nclients, arg, batch, barrier, out))
             for i in range(nclients)]
    for p in procs:
        p.start()
    res = [out.get() for _ in procs]
    for p in procs:
        p.join()
    secs = max(r[1] for r in res) - min(r[0] for r in res)
    return secs, tuple(sum(r[i] for r in res) for i in (2, 3, 4)), sum(r[5] for r in res)


READ_CASES = [  # (series, kind, clients, records per call, label)
    ("fetch1", "fetch", 1, "small", "eventlog fetch"), ("fetch8", "fetch", 8, "small", "eventlog fetch"),
    ("consume1", "consume", 1, "small", "eventlog consume"), ("consume8", "consume", 8, "small", "eventlog consume"),
    ("consume1_big", "consume", 1, "big", "eventlog consume"), ("consume8_big", "consume", 8, "big", "eventlog consume"),
    ("keyset1", "keyset", 1, "small", "heap_pk keyset"), ("keyset8", "keyset", 8, "small", "heap_pk keyset"),
    ("consumens1", "consume_nosync", 1, "small", "consume, no flush"),
    ("consumens8", "consume_nosync", 8, "small", "consume, no flush"),
    ("fetchfl1", "fetch_flush", 1, "small", "fetch + 1 flush"),
    ("fetchfl8", "fetch_flush", 8, "small", "fetch + 1 flush"),
    ("keysetd1", "keyset_durable", 1, "small", "heap_pk keyset+pos"),
    ("keysetd8", "keyset_durable", 8, "small", "heap_pk keyset+pos"),
    ("pgq1", "pgq", 1, "small", "PgQ batches"), ("pgq1_big", "pgq", 1, "big", "PgQ batches")]


def measure_flush(seconds):
    """Microseconds of one 8 kB write and fdatasync in the cluster's directory,
    measured as pg_test_fsync does: the least a durable commit waits here."""
    path = os.path.join(PGDATA or WORK, "bench_flush.tmp")
    block = os.urandom(8192)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, block * 2048)
        os.fsync(fd)
        n, t = 0, time.monotonic()
        while n == 0 or time.monotonic() - t < seconds:
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            n += 1
        return (time.monotonic() - t) / n * 1e6
    finally:
        os.close(fd)
        os.unlink(path)


def w_read():
    log("reading %d records: setup" % N_READ)
    reset_system("eventlog", "r")
    conn = connect(autocommit=False)
    cur = conn.cursor()
    for lo in range(1, N_READ + 1, CHUNK):
        hi = min(lo + CHUNK - 1, N_READ)
        cur.execute("SELECT count(*) FROM (SELECT array_agg(%s) v, array_agg(k) ks FROM"
                    " (SELECT %s AS k FROM generate_series(%d, %d) i) s) a,"
                    " eventlog.produce_batch('r', a.v, a.ks) p" % (val_sql("k", 110), key_sql(0, "i"), lo, hi))
        conn.commit()
    reset_system("heap_pk", "rh")
    q("DROP TABLE IF EXISTS bench.rh_pos")
    q("CREATE TABLE bench.rh_pos (client int PRIMARY KEY, last_id bigint NOT NULL)")
    q("INSERT INTO bench.rh (key, value) SELECT k, %s FROM (SELECT %s AS k FROM generate_series(1, %d) i) s"
      % (val_sql("k", 110), key_sql(0, "i"), N_READ))
    reset_system("pgq", "rq")
    for rep in range(REPS):
        for size in ("small", "big"):
            q("SELECT pgq.register_consumer('rq', %s)", ("%s%d" % (size, rep),))
    for lo in range(1, N_READ + 1, READ_CALL):
        hi = min(lo + READ_CALL - 1, N_READ)
        cur.execute("SELECT count(pgq.insert_event('rq', 'e', %s, k, NULL, NULL, NULL)) FROM"
                    " (SELECT %s AS k FROM generate_series(%d, %d) i) s" % (val_sql("k", 110), key_sql(0, "i"), lo, hi))
        conn.commit()
        cur.execute("SELECT pgq.ticker('rq')")
        conn.commit()
    conn.close()
    q("VACUUM ANALYZE bench.rh")
    verify_written("eventlog", N_READ, 110, "read setup", name="r")
    verify_written("pgq", N_READ, 110, "read setup", name="rq")
    n, bad = q1("SELECT count(*), count(*) FILTER (WHERE value <> %s OR key <> %s) FROM bench.rh"
                % (val_sql("key", 110), key_sql(0, "id")))
    check(n == N_READ and bad == 0, "read setup heap_pk: %d records, %d wrong" % (n, bad))
    expected = tuple(int(x) for x in q1(
        "SELECT count(*), sum(hashtext(k)), sum(length(%s)) FROM (SELECT %s AS k FROM generate_series(1, %d) i) s"
        % (val_sql("k", 110), key_sql(0, "i"), N_READ)))

    def measure(rep, case):
        wid, kind, nclients, size, label = case
        batch = READ_CALL if size == "small" else READ_BIG
        arg = {"consume": "g%d_%d_%s" % (rep, nclients, size), "consume_nosync": "n%d_%d" % (rep, nclients),
               "pgq": "%s%d" % (size, rep)}.get(kind)
        secs, got, calls = run_readers(kind, nclients, arg, batch)
        record("read", wid, N_READ / secs)
        log("  rep %d %-17s %d client(s), %5d per call: %9.0f rec/s (%d calls)"
            % (rep + 1, label, nclients, batch, N_READ / secs, calls))
        check(got == expected, "read %s, %d clients: got (count, key hash, value bytes) %s, expected %s"
              % (label, nclients, got, expected))

    for rep in range(REPS):
        us = measure_flush(0.2 if SMOKE else 2.0)
        record("flush", "us", us)
        log("  rep %d one 8 kB write + fdatasync: %.0f us" % (rep + 1, us))
        # the records were loaded above, once for all readers
        measure_systems(rep, READ_CASES, measure, reset=False)
    drop_system("eventlog", "r")
    drop_system("pgq", "rq")
    q("DROP TABLE bench.rh")
    q("DROP TABLE bench.rh_pos")


# ---------------------------------------------------------------- 6. seek

def w_seek():
    log("seek: fetch at a random offset, %d vs %d records in the partition" % (SEEK_BIG, SEEK_SMALL))
    conn = connect(autocommit=False)
    cur = conn.cursor()
    chunk = 100000 if not SMOKE else 10000
    for name, n in (("sbig", SEEK_BIG), ("ssmall", SEEK_SMALL)):
        reset_system("eventlog", name, 1)
        for lo in range(1, n + 1, chunk):
            hi = min(lo + chunk - 1, n)
            cur.execute("SELECT count(*) FROM (SELECT array_agg(%s) v, array_agg(k) ks FROM"
                        " (SELECT %s AS k FROM generate_series(%d, %d) i) s) a,"
                        " eventlog.produce_batch('%s', a.v, a.ks, partition => 0) p"
                        % (val_sql("k", 110), key_sql(0, "i"), lo, hi, name))
            conn.commit()
        hw, size = q1("SELECT high_watermark, size_bytes FROM eventlog.partitions WHERE topic = %s", (name,))
        check(hw == n, "seek setup %s: high watermark %s, %d produced" % (name, hw, n))
        log("  %s: %d records, %.0f MB" % (name, n, size / 1e6))
    conn.close()
    for rep in range(REPS):
        for name, n in (("sbig", SEEK_BIG), ("ssmall", SEEK_SMALL)):
            checkpoint()
            script = ("\\set off random(0, %d)\n"
                      "SELECT 1 / (count(*) FILTER (WHERE f.\"offset\" = :off AND f.key = %s))::int"
                      " FROM eventlog.fetch('%s', 0, :off, 1) f;\n" % (n - 1, key_sql(0, ":off + 1"), name))
            cnt, tps, lat = pgbench(script, 1, PGBENCH_T, (), "seek_" + name)
            record("seek", name, lat)
            log("  rep %d %-6s %8.3f ms per fetch (%d fetches, each checked)" % (rep + 1, name, lat, cnt))
    drop_system("eventlog", "sbig")
    drop_system("eventlog", "ssmall")


# ---------------------------------------------------------------- 7. latency

def lat_producer(system, idx, recs, start_at, duration, out):
    conn = connect(autocommit=False)
    cur = conn.cursor()
    interval = LAT_PRODUCERS / LAT_TX_RATE
    t = start_at + idx * interval / LAT_PRODUCERS
    end = start_at + duration
    samples = []
    seq = 0
    while t < end:
        now = time.monotonic()
        if t > now:
            time.sleep(t - now)
        keys = [key_py(idx, seq + j + 1) for j in range(recs)]
        vals = [val_py(k, 110) for k in keys]
        seq += recs
        if system == "eventlog":
            cur.execute("SELECT max(\"offset\") FROM eventlog.produce_batch('lat', %s::text[], %s::text[],"
                        " partition => %s)", (vals, keys, idx))
        elif system == "heap_consumer":
            # one table per producer, like a partition: ids commit in order within it
            cur.execute("WITH ins AS (INSERT INTO bench.lat_p%d (key, value) SELECT * FROM unnest(%%s::text[], %%s::text[])"
                        " RETURNING id) SELECT max(id), pg_notify('bench_lat', '%d') FROM ins" % (idx, idx),
                        (keys, vals))
        else:
            cur.execute("WITH ins AS (INSERT INTO bench.lat (key, value) SELECT * FROM unnest(%s::text[], %s::text[])"
                        " RETURNING id) SELECT max(id), pg_notify('bench_lat', max(id)::text) FROM ins",
                        (keys, vals))
        last = cur.fetchone()[0]
        conn.commit()
        samples.append((time.monotonic(), last))
        t += interval
    conn.close()
    out.put(("producer", idx, samples, seq))


def keep_listening(stop_at, done, state):
    """True until stop_at and until the producers are done (the Event done),
    then for half a second more: on a loaded machine producers finish late,
    and what they committed last must still be heard."""
    now = time.monotonic()
    if now < stop_at or not done.is_set():
        return True
    if "drain" not in state:
        state["drain"] = now + 0.5
    return now < state["drain"]


def lat_listener(channel, stop_at, done, out):
    conn = connect()
    cur = conn.cursor()
    cur.execute('LISTEN "%s"' % channel)
    got = []
    state = {}
    while keep_listening(stop_at, done, state):
        if select.select([conn], [], [], 0.05) == ([], [], []):
            continue
        conn.poll()
        now = time.monotonic()
        while conn.notifies:
            got.append((now, conn.notifies.pop(0).payload))
    conn.close()
    out.put(("listener", channel, got))


def consumer_round(conn, cur, sql, args, got):
    """One transaction of a consumer: sql returns (partition, last, count) rows;
    appends (rows in hand, committed, partition, last, count) to got."""
    cur.execute(sql, args)
    now = time.monotonic()
    rows = cur.fetchall()
    conn.commit()
    done = time.monotonic()
    for p, mx, n in rows:
        got.append((now, done, p, mx, n))
    return rows


def lat_consumer(grp, stop_at, done, async_commit, out):
    """consume(commit => true) in a transaction, as a consumer that does its work in it:
    the records are in hand when consume returns (t), and consumed for good at COMMIT (tc)."""
    conn = connect(autocommit=False)
    cur = conn.cursor()
    if async_commit:
        cur.execute("SET synchronous_commit = off")
        conn.commit()
    got = []
    state = {}
    while keep_listening(stop_at, done, state):
        consumer_round(conn, cur, "SELECT partition, max(\"offset\"), count(*) FROM eventlog.consume(%s, 'lat',"
                       " 100000, member => 'lm', commit => true, wait => '200 ms') GROUP BY partition", (grp,), got)
    conn.autocommit = True
    cur.execute("SELECT eventlog.leave(%s, 'lm')", (grp,))
    conn.close()
    out.put(("consumer", grp, got))


def heap_consumer_sql():
    """The outbox consumer the baseline stands for: reads every producer's
    table past its position and writes the new positions, in one statement."""
    parts = " UNION ALL ".join(
        "SELECT %d AS p, id FROM bench.lat_p%d WHERE id > (SELECT last FROM bench.lat_pos WHERE p = %d)"
        % (i, i, i) for i in range(LAT_PRODUCERS))
    return ("WITH r AS (SELECT p, max(id) AS mx, count(*) AS n FROM (%s) x GROUP BY p),"
            " u AS (UPDATE bench.lat_pos pos SET last = r.mx FROM r WHERE pos.p = r.p)"
            " SELECT p, mx, n FROM r" % parts)


def lat_heap_consumer(stop_at, done, out):
    """A heap + PK consumer woken by the producers' in-transaction NOTIFY: in a
    transaction it reads what is new and commits its positions, as
    consume(commit => true) does (t when the rows are in hand, tc after COMMIT)."""
    conn = connect(autocommit=False)
    cur = conn.cursor()
    cur.execute("LISTEN bench_lat")
    conn.commit()
    sql = heap_consumer_sql()
    got = []
    state = {}
    while keep_listening(stop_at, done, state):
        del conn.notifies[:]
        rows = consumer_round(conn, cur, sql, None, got)
        # a notification may already sit in libpq's buffer: poll before sleeping
        conn.poll()
        if not rows and not conn.notifies:
            if select.select([conn], [], [], 0.2) != ([], [], []):
                conn.poll()
    conn.close()
    out.put(("consumer", "heap", got))


def percentiles(lat_ms):
    s = sorted(lat_ms)
    if not s:
        return None

    def pct(p):
        return s[min(len(s) - 1, int(p / 100.0 * len(s)))]
    return {"p50": pct(50), "p99": pct(99), "max": s[-1], "n": len(s)}


def first_after(events, last):
    """events: time-sorted [(t, value)], value non-decreasing; first t with value > last."""
    lo, hi = 0, len(events)
    while lo < hi:
        mid = (lo + hi) // 2
        if events[mid][1] > last:
            hi = mid
        else:
            lo = mid + 1
    return events[lo][0] if lo < len(events) else None


def latency_setup(system):
    """Before a latency run of system: eventlog.notify_interval (0 for
    eventlog_ni0, else the default) and the empty objects it writes to."""
    if system == "eventlog_ni0":
        q("ALTER SYSTEM SET eventlog.notify_interval = 0")
    else:
        q("ALTER SYSTEM RESET eventlog.notify_interval")     # the default
    q("SELECT pg_reload_conf()")
    if system in ("eventlog", "eventlog_ni0"):
        reset_system("eventlog", "lat", LAT_PRODUCERS)
        # the worker learns a new topic at its first pass: let it see this one
        for p in range(LAT_PRODUCERS):
            q("SELECT eventlog.produce('lat', 'warm-up'::text, partition => %s)", (p,))
        time.sleep(0.5)
    elif system == "heap_consumer":
        q("DROP TABLE IF EXISTS bench.lat_pos")
        q("CREATE TABLE bench.lat_pos (p int PRIMARY KEY, last bigint NOT NULL)")
        for i in range(LAT_PRODUCERS):
            reset_system("heap_pk", "lat_p%d" % i)
            q("INSERT INTO bench.lat_pos VALUES (%s, 0)", (i,))
    else:
        reset_system("heap_pk", "lat")


def latency_run(system, rate, rep, path):
    """After latency_setup(system) and a CHECKPOINT.  path: "listen" runs the
    producers with a listener, "consume" with a consume(wait) loop: each
    path is measured with only its own clients on the machine, as the
    baseline (producers and a listener) is."""
    recs = rate // LAT_TX_RATE
    out = mp.Queue()
    tuned = system == "eventlog_ni0"
    if tuned:
        system = "eventlog"
    start_at = time.monotonic() + (0.5 if SMOKE else 1.0)
    stop_at = start_at + LAT_SECONDS + (0.5 if SMOKE else 1.5)
    grp = "lat%d_%d" % (rep, rate)
    done = mp.Event()       # set once every producer has finished
    if path == "listen":
        procs = [mp.Process(target=lat_listener, args=("eventlog.lat" if system == "eventlog" else "bench_lat",
                                                          stop_at, done, out))]
    elif system == "heap_consumer":
        procs = [mp.Process(target=lat_heap_consumer, args=(stop_at, done, out))]
    else:
        procs = [mp.Process(target=lat_consumer, args=(grp, stop_at, done, tuned, out))]
    procs += [mp.Process(target=lat_producer, args=(system, i, recs, start_at, LAT_SECONDS, out))
              for i in range(LAT_PRODUCERS)]
    for p in procs:
        p.start()
    # The listening client reports only after the producers have, and done is set.
    res = [out.get() for _ in range(LAT_PRODUCERS)]
    done.set()
    res += [out.get() for _ in range(len(procs) - LAT_PRODUCERS)]
    for p in procs:
        p.join()
    prods = [r for r in res if r[0] == "producer"]
    commits = [(t, idx, last) for _, idx, samples, _ in prods for t, last in samples]
    warm = start_at + 0.1 * LAT_SECONDS
    measured = [c for c in commits if c[0] >= warm]
    produced = sum(r[3] for r in prods)
    achieved = len(commits) * recs / LAT_SECONDS
    out_stats = {"achieved": achieved}
    if system == "eventlog" and path == "listen":
        listener = [r for r in res if r[0] == "listener"][0][2]
        per_part = {p: [] for p in range(LAT_PRODUCERS)}
        for t, payload in listener:
            msg = json.loads(payload)
            check(msg.get("topic") == "lat", "latency: notification for topic %r" % msg.get("topic"))
            for p, lso in msg["partitions"].items():
                per_part[int(p)].append((t, lso - 1))   # last stable offset: next to be stable
        lat_n = []
        for t, p, last in measured:
            tn = first_after(per_part[p], last - 1)
            check(tn is not None, "latency: no notification announced offset %d of partition %d" % (last, p))
            if tn is not None:
                lat_n.append((tn - t) * 1000)
        out_stats["listen"] = percentiles(lat_n)
    elif system in ("eventlog", "heap_consumer"):
        cons = [r for r in res if r[0] == "consumer"][0][2]
        per_part_c = {p: [] for p in range(LAT_PRODUCERS)}
        per_part_cc = {p: [] for p in range(LAT_PRODUCERS)}
        got = 0
        for t, tc, p, mx, n in cons:
            per_part_c[p].append((t, mx))
            per_part_cc[p].append((tc, mx))
            got += n
        warmup = LAT_PRODUCERS if system == "eventlog" else 0
        check(got == produced + warmup,
              "latency: %s consumer read %d records, %d produced" % (system, got, produced + warmup))
        lat_c = []
        lat_cc = []
        for t, p, last in measured:
            tc = first_after(per_part_c[p], last - 1)
            check(tc is not None, "latency: consume(wait) never returned offset %d of partition %d" % (last, p))
            if tc is not None:
                lat_c.append((tc - t) * 1000)
                lat_cc.append((first_after(per_part_cc[p], last - 1) - t) * 1000)
        out_stats["consume"] = percentiles(lat_c)
        out_stats["consumed"] = percentiles(lat_cc)
    else:
        listener = [r for r in res if r[0] == "listener"][0][2]
        seen = {}
        for t, payload in listener:
            seen.setdefault(int(payload), t)
        lat_n = []
        for t, p, last in measured:
            tn = seen.get(last)
            check(tn is not None, "latency baseline: no notification of id %d" % last)
            if tn is not None:
                lat_n.append((tn - t) * 1000)
        out_stats["listen"] = percentiles(lat_n)
        n = q1("SELECT count(*) FROM bench.lat")[0]
        check(n == produced, "latency baseline: %d rows, %d produced" % (n, produced))
    if system == "eventlog":
        n = q1("SELECT sum(high_watermark) FROM eventlog.partitions WHERE topic = 'lat'")[0]
        check(n == produced + LAT_PRODUCERS, "latency: %s records in the topic, %d produced" % (n, produced))
    if system == "heap_consumer":
        n = sum(q1("SELECT count(*) FROM bench.lat_p%d" % i)[0] for i in range(LAT_PRODUCERS))
        pos = q1("SELECT sum(last) FROM bench.lat_pos")[0]
        check(n == produced and pos == produced,
              "latency heap consumer: %d rows, positions add up to %d, %d produced" % (n, pos, produced))
    return out_stats


def w_latency():
    wait_for_worker()
    log("latency from commit to notification / consume(wait), %d producers, %d tx/s, %.0f s"
        % (LAT_PRODUCERS, LAT_TX_RATE, LAT_SECONDS))
    for rep in range(REPS):
        for rate in LAT_RATES:
            def measure(rep, case):
                system, path = case
                st = latency_run(system, rate, rep, path)
                for kind in ("listen", "consume", "consumed"):
                    if st.get(kind):
                        for m in ("p50", "p99", "max"):
                            record("lat%d_%s_%s" % (rate, kind, m), system, st[kind][m])
                if path == "listen" or system == "heap_consumer":
                    record("lat%d_achieved" % rate, system, st["achieved"])
                log("  rep %d %5d rec/s %-11s %-7s achieved %6.0f rec/s  %s" % (
                    rep + 1, rate, system, path, st["achieved"], "  ".join(
                        "%s p50 %.2f p99 %.2f max %.2f ms" % (k, st[k]["p50"], st[k]["p99"], st[k]["max"])
                        for k in ("listen", "consume", "consumed") if st.get(k))))

            measure_systems(rep, (("eventlog", "listen"), ("eventlog", "consume"), ("eventlog_ni0", "listen"),
                                  ("eventlog_ni0", "consume"), ("heap_notify", "listen"),
                                  ("heap_consumer", "consume")),
                            measure, reset=False, prepare=lambda case: latency_setup(case[0]))
    q("ALTER SYSTEM RESET eventlog.notify_interval")
    q("SELECT pg_reload_conf()")
    drop_system("eventlog", "lat")
    q("DROP TABLE IF EXISTS bench.lat")
    for i in range(LAT_PRODUCERS):
        q("DROP TABLE IF EXISTS bench.lat_p%d" % i)
    q("DROP TABLE IF EXISTS bench.lat_pos")


# ---------------------------------------------------------------- 7b. notification on / off

def wait_for_worker():
    """Waits until this database's eventlog worker runs (it sends the notifications)."""
    for _ in range(300):
        if q1("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'eventlog worker'"
              " AND datname = current_database()")[0]:
            return
        time.sleep(0.1)
    check(False, "the eventlog worker of the database did not start within 30 s")


def restart(preload):
    global MAIN
    # ALTER SYSTEM cannot write an empty list: the file is written here (it
    # holds nothing else at this point of the run)
    MAIN.close()
    MAIN = None
    with open(os.path.join(PGDATA, "postgresql.auto.conf"), "w") as f:
        f.write("shared_preload_libraries = '%s'\n" % ("eventlog" if preload else ""))
    p = subprocess.run([os.path.join(BIN, "pg_ctl"), "-D", PGDATA, "-m", "fast", "-w", "restart",
                        "-l", os.path.join(WORK, "server.log")], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError("pg_ctl restart failed: " + p.stdout + p.stderr)
    got = q1("SHOW shared_preload_libraries")[0]
    check(got == ("eventlog" if preload else ""), "restart: shared_preload_libraries is %r" % got)
    if preload:
        wait_for_worker()


def drain_listener(channel, stop_file, out):
    conn = connect()
    cur = conn.cursor()
    cur.execute('LISTEN "%s"' % channel)
    n = 0
    while not os.path.exists(stop_file):
        if select.select([conn], [], [], 0.05) != ([], [], []):
            conn.poll()
            n += len(conn.notifies)
            conn.notifies.clear()
    conn.close()
    out.put(n)


def throughput_with_listener(system, channel, script, tag):
    stop_file = os.path.join(WORK, "stop-" + tag)
    if os.path.exists(stop_file):
        os.unlink(stop_file)
    out = mp.Queue()
    lp = mp.Process(target=drain_listener, args=(channel, stop_file, out))
    lp.start()
    time.sleep(0.3)
    n, tps, lat = pgbench(script, CLIENTS, PGBENCH_T, ["n=0"], tag)
    time.sleep(0.2)
    open(stop_file, "w").close()
    notes = out.get()
    lp.join()
    return n, tps, notes


def w_notify():
    wait_for_worker()
    log("producer throughput with notification on/off (1-record transactions, %d clients)" % CLIENTS)
    notify_script = ("\\set n :n + 1\n"
                     "WITH ins AS (INSERT INTO bench.t (key, value) SELECT k, %s FROM (SELECT %s AS k) s RETURNING id)"
                     " SELECT pg_notify('bench_tp', id::text) FROM ins;\n"
                     % (val_sql("k", 110), key_sql(":client_id", ":n")))
    # Cases: ("eventlog", preloaded?) and ("heap_pk", pgbench script, tag).
    def prepare(case):
        if case[0] == "eventlog" and (q1("SHOW shared_preload_libraries")[0] == "eventlog") != case[1]:
            restart(case[1])

    def measure(rep, case):
        if case[0] == "eventlog":
            preload = case[1]
            time.sleep(1.5)     # the worker learns a new topic at its next pass (at least once a second)
            tag = "eventlog_on" if preload else "eventlog_off"
            n, tps, notes = throughput_with_listener("eventlog", "eventlog.t", batch_script("eventlog", 1), tag)
            record("notify", tag, tps)
            log("  rep %d eventlog, notification %-25s %7.0f tx/s, %d coalesced notifications"
                % (rep + 1, "on:" if preload else "off (no preload):", tps, notes))
            if preload:
                check(notes > 0, "notification on: the listener got no notification")
            else:
                check(notes == 0, "notification off: the listener got %d notifications" % notes)
            return n, 110, "notification " + ("on" if preload else "off")
        system, script, tag = case
        n, tps, notes = throughput_with_listener(system, "bench_tp", script, tag)
        record("notify", tag, tps)
        log("  rep %d %-35s %7.0f tx/s, %d notifications" % (
            rep + 1, "heap + PK" + (", NOTIFY in transaction:" if tag.endswith("notify") else ":"), tps, notes))
        if tag.endswith("notify"):
            check(notes == n, "NOTIFY baseline: %d notifications for %d transactions" % (notes, n))
        return n, 110, "notification baseline"

    heap_cases = [("heap_pk", batch_script("heap_pk", 1), "heap_pk"), ("heap_pk", notify_script, "heap_pk_notify")]
    for rep in range(REPS):
        # on and off alternate, so that noise on the machine hits both alike
        order = (True, False) if rep % 2 == 0 else (False, True)
        measure_systems(rep, [("eventlog", preload) for preload in order] + heap_cases, measure, prepare=prepare)
    if q1("SHOW shared_preload_libraries")[0] != "eventlog":
        restart(True)
    drop_system("eventlog")
    drop_system("heap_pk")


# ---------------------------------------------------------------- 8. held snapshot

def w_held():
    log("group commits while a snapshot is held %d s (2 clients, 1-record consume with commit)" % HOLD)
    reset_system("eventlog", "hs", 4)
    conn = connect(autocommit=False)
    cur = conn.cursor()
    for lo in range(1, N_HELD + 1, CHUNK * 10):
        hi = min(lo + CHUNK * 10 - 1, N_HELD)
        cur.execute("SELECT count(*) FROM (SELECT array_agg(%s) v, array_agg(k) ks FROM"
                    " (SELECT %s AS k FROM generate_series(%d, %d) i) s) a,"
                    " eventlog.produce_batch('hs', a.v, a.ks) p" % (val_sql("k", 110), key_sql(0, "i"), lo, hi))
        conn.commit()
    conn.close()
    q("SELECT eventlog.alter_group('hs-g', '1 hour')")
    for m in ("m1", "m2"):
        q("SELECT count(*) FROM eventlog.consume('hs-g', 'hs', 1, member => %s)", (m,))
    q("DROP TABLE IF EXISTS bench.naive_offset")
    q("CREATE TABLE bench.naive_offset (grp text, topic text, partition int, committed_offset bigint,"
      " PRIMARY KEY (grp, topic, partition)) WITH (fillfactor = 20)")
    q("INSERT INTO bench.naive_offset SELECT 'g', 'hs', p, 0 FROM generate_series(0, 3) p")
    scripts = {
        "eventlog": "SELECT 1 / (count(*) = 1)::int FROM eventlog.consume('hs-g', 'hs', 1,"
                    " member => 'm' || (:client_id + 1), commit => true);\n",
        "naive": "UPDATE bench.naive_offset SET committed_offset = committed_offset + 1"
                 " WHERE grp = 'g' AND topic = 'hs' AND partition = :client_id;\n"}
    done = {"eventlog": 0, "naive": 0}

    def interval(name, secs, series):
        n, tps, lat = pgbench(scripts[name], 2, secs, (), "held_" + name)
        done[name] += n
        record("held", series, tps)
        return tps

    for rep in range(3 if not SMOKE else 1):
        for name in ("eventlog", "naive"):
            interval(name, BASE_STEP, name + "_base")
    log("  before: eventlog %.0f, naive UPDATE %.0f commits/s (median of %d x %d s)" % (
        med(RESULTS["held"]["eventlog_base"]), med(RESULTS["held"]["naive_base"]),
        len(RESULTS["held"]["naive_base"]), BASE_STEP))
    q("VACUUM")
    holder = connect(autocommit=False)
    hc = holder.cursor()
    hc.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    hc.execute("SELECT count(*) FROM pg_class")
    t_hold = time.monotonic()
    i = 0
    while time.monotonic() - t_hold < HOLD - STEP / 2:
        name = ("eventlog", "naive")[i % 2]
        tps = interval(name, STEP, name + "_held")
        log("  snapshot held %3.0f s: %-8s %7.0f commits/s" % (time.monotonic() - t_hold, name, tps))
        i += 1
    held_for = time.monotonic() - t_hold
    holder.rollback()
    holder.close()
    RESULTS["held_info"] = {"held_seconds": held_for,
                            "group_offset_bytes": q1("SELECT pg_total_relation_size('eventlog.group_offset')")[0],
                            "naive_bytes": q1("SELECT pg_total_relation_size('bench.naive_offset')")[0]}
    committed = q1("SELECT sum(committed_offset) FROM eventlog.lag WHERE \"group\" = 'hs-g'")[0]
    check(committed == done["eventlog"],
          "held snapshot: committed offsets add up to %s, %d records consumed" % (committed, done["eventlog"]))
    naive = q1("SELECT sum(committed_offset) FROM bench.naive_offset")[0]
    check(naive == done["naive"], "held snapshot: naive offsets add up to %s, %d updates" % (naive, done["naive"]))
    for m in ("m1", "m2"):
        q("SELECT eventlog.leave('hs-g', %s)", (m,))
    q("SELECT eventlog.delete_group('hs-g')")
    drop_system("eventlog", "hs")
    q("DROP TABLE bench.naive_offset")


# ---------------------------------------------------------------- report

def fmt(v, unit):
    if v is None:
        return "–"
    if unit in ("rec/s", "tx/s", "commits/s"):
        if v >= 1e6:
            return "%.2f M" % (v / 1e6)
        if v >= 1e3:
            return "%.1f k" % (v / 1e3)
        return "%.0f" % v
    if unit == "ms":
        return "%.2f" % v
    return "%.0f" % v


def cell(values, unit):
    if not values:
        return "–"
    if len(values) == 1:
        return fmt(values[0], unit)
    return "%s (%s–%s)" % (fmt(med(values), unit), fmt(min(values), unit), fmt(max(values), unit))


def series(wid, s):
    return RESULTS.get(wid, {}).get(s, [])


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


TARGET_ROWS = []   # (workload, target text, ratio, ok)


def target(name, text, r, want, higher_better=True):
    ok = None if r is None else (r >= want if higher_better else r <= want)
    TARGET_ROWS.append((name, text, r, ok))


def report(settings, machine):
    lines = []
    add = lines.append
    add("## Settings")
    add("")
    add("machine: " + machine)
    add("")
    add("settings: " + ", ".join("%s=%s" % kv for kv in settings))
    add("")
    add("repetitions: %d; cells are median (min–max); %s" % (REPS, "SMOKE run (tiny sizes)" if SMOKE else "full run"))
    add("")

    def table(title, unit, rows, cols=SYSTEMS, names=SYSTEM_NAMES):
        add("### " + title)
        add("")
        add("| workload | " + " | ".join(names[c] for c in cols) + " |")
        add("|---|" + "---|" * len(cols))
        for label, wid in rows:
            if wid not in RESULTS:
                continue
            add("| %s | " % label + " | ".join(cell(series(wid, c), unit) for c in cols) + " |")
        add("")

    table("Writing: records/s (8 clients unless noted)", "rec/s",
          [("1 transaction of %d × 110 B records (1 client)" % N_TX, "tx1m"),
           ("1 transaction of %d × 1 KB records (1 client)" % N_TX_1K, "tx1m_1k")] +
          [("%d-record transactions" % b, "batch%d" % b) for b in BATCHES], cols=SWEEP_SYSTEMS)
    table("WAL and disk bytes per record, 1 transaction", "B",
          [("WAL, 110 B records", "tx1m_wal"), ("disk, 110 B records", "tx1m_disk"),
           ("WAL, 1 KB records", "tx1m_1k_wal"), ("disk, 1 KB records", "tx1m_1k_disk")])
    if "read" in RESULTS:
        add("### Reading %d records in order: records/s" % N_READ)
        add("")
        add("| reader | records per call | 1 client | 8 clients |")
        add("|---|---|---|---|")
        for label, n, a, b in (("eventlog `fetch`", READ_CALL, "fetch1", "fetch8"),
                               ("eventlog `consume(commit => true)`", READ_CALL, "consume1", "consume8"),
                               ("eventlog `consume(commit => true)`", READ_BIG, "consume1_big", "consume8_big"),
                               ("eventlog `consume(commit => true)` with the consumer's `synchronous_commit = off`"
                                " (not durable; shows what the commit's flush costs)", READ_CALL, "consumens1", "consumens8"),
                               ("eventlog `fetch` and a durable commit with each call (a transactional WAL message;"
                                " no group, no position: the floor of a reader that commits with every call)",
                                READ_CALL, "fetchfl1", "fetchfl8"),
                               ("heap + PK, keyset pagination", READ_CALL, "keyset1", "keyset8"),
                               ("heap + PK, keyset pagination, position committed with each call",
                                READ_CALL, "keysetd1", "keysetd8"),
                               ("PgQ `next_batch`/`get_batch_events`/`finish_batch`", READ_CALL, "pgq1", None),
                               ("PgQ `next_batch_custom`/... (batches of several ticks)", READ_BIG, "pgq1_big", None)):
            add("| %s | %d | %s | %s |" % (label, n, cell(series("read", a), "rec/s"),
                                           cell(series("read", b), "rec/s") if b else "– (a PgQ consumer reads alone)"))
        add("")
        if "flush" in RESULTS:
            add("One flush, the least a durable commit waits (an 8 kB write and `fdatasync` in the data directory,"
                " as `pg_test_fsync` measures it): %s µs." % cell(series("flush", "us"), "us"))
            add("")
        if "form" in RESULTS:
            add("The `consume` readers join their group before the clock starts, one after the other (each join"
                " rebalances): %s ms for 1 member, %s ms for 8." % (cell(series("form", "ms1"), "ms"),
                                                                     cell(series("form", "ms8"), "ms")))
            add("")
    if "seek" in RESULTS:
        add("### Seek: `fetch(topic, 0, random offset, 1)`, 1 client: ms per call")
        add("")
        add("| partition of %d records | partition of %d records |" % (SEEK_BIG, SEEK_SMALL))
        add("|---|---|")
        add("| %s | %s |" % (cell(series("seek", "sbig"), "ms"), cell(series("seek", "ssmall"), "ms")))
        add("")
    if any(k.startswith("lat") for k in RESULTS):
        add("### Latency from the producer's commit, ms (%d producers, %d transactions/s)" % (LAT_PRODUCERS, LAT_TX_RATE))
        add("")
        add("| rate | path | p50 | p99 | max | achieved rate |")
        add("|---|---|---|---|---|---|")
        for rate in LAT_RATES:
            for sysname, kind, label in (("eventlog", "listen", "eventlog: LISTEN (worker's NOTIFY)"),
                                         ("eventlog", "consume", "eventlog: `consume(wait => ...)` returns"),
                                         ("eventlog", "consumed", "eventlog: the consumer's `COMMIT` after it returns"),
                                         ("eventlog_ni0", "listen", "eventlog, `notify_interval = 0`: LISTEN"),
                                         ("eventlog_ni0", "consume", "eventlog, consumer with `synchronous_commit = off`: `consume(wait)`"),
                                         ("heap_notify", "listen", "heap + PK insert with NOTIFY in the transaction"),
                                         ("heap_consumer", "consume", "heap + PK consumer woken by that NOTIFY, committing its position: rows in hand"),
                                         ("heap_consumer", "consumed", "heap + PK consumer woken by that NOTIFY: its `COMMIT`")):
                wid = "lat%d_%s_" % (rate, kind)
                if wid + "p50" not in RESULTS:
                    continue
                add("| %d rec/s | %s | %s | %s | %s | %s |" % (
                    rate, label, cell(series(wid + "p50", sysname), "ms"), cell(series(wid + "p99", sysname), "ms"),
                    cell(series(wid + "max", sysname), "ms"), cell(series("lat%d_achieved" % rate, sysname), "rec/s")))
        add("")
    if "notify" in RESULTS:
        add("### Producer throughput and notification (1-record transactions, 8 clients, a listener connected): tx/s")
        add("")
        add("| eventlog, notification on | eventlog, notification off (no preload) | heap + PK | heap + PK with NOTIFY in the transaction |")
        add("|---|---|---|---|")
        add("| %s | %s | %s | %s |" % tuple(cell(series("notify", s), "tx/s")
                                          for s in ("eventlog_on", "eventlog_off", "heap_pk", "heap_pk_notify")))
        add("")
    if "held" in RESULTS:
        info = RESULTS.get("held_info", {})
        add("### Group commits while a snapshot is held (%.0f s, 2 clients): commits/s" % info.get("held_seconds", 0))
        add("")
        add("| | before | while held: worst interval | while held: last interval | degradation |")
        add("|---|---|---|---|---|")
        for name, label in (("eventlog", "eventlog `consume(..., commit => true)`"),
                            ("naive", "naive one-row-per-partition UPDATE")):
            base, held = series("held", name + "_base"), series("held", name + "_held")
            if not held:
                continue
            add("| %s | %s | %s | %s | %.2f× |" % (label, cell(base, "commits/s"), fmt(min(held), "commits/s"),
                                                  fmt(held[-1], "commits/s"), med(base) / max(min(held), 1e-9)))
        add("")
        add("Size after the hold: eventlog.group_offset %.0f kB, naive table %.0f kB." % (
            info.get("group_offset_bytes", 0) / 1024, info.get("naive_bytes", 0) / 1024))
        add("")

    # targets
    m = lambda wid, s: med(series(wid, s))
    target("1 transaction of %d records" % N_TX, "≥ 1.0× heap without index", ratio(m("tx1m", "eventlog"), m("tx1m", "heap")), 1.0)
    target("1-record transactions, 8 clients", "≥ 1.0× heap + PK",
           ratio(m("batch1", "eventlog"), m("batch1", "heap_pk")), 1.0)
    target("100-record transactions, 8 clients", "≥ 1.0× heap without index (unnest)",
           ratio(m("batch100", "eventlog"), m("batch100", "heap")), 1.0)
    for wid, label, pgq in (("fetch%d", "fetch, %d per call" % READ_CALL, "pgq1"),
                            ("consume%d", "consume, %d per call" % READ_CALL, "pgq1"),
                            ("consume%d_big", "consume, %d per call" % READ_BIG, "pgq1_big")):
        for c in (1, 8):
            plural = "s" if c > 1 else ""
            target("read with %s, %d client%s" % (label, c, plural),
                   "≥ 2× PgQ batch read (1 consumer, same batch size)",
                   ratio(m("read", wid % c), m("read", pgq)), 2.0)
            if not wid.endswith("_big"):
                target("read with %s, %d client%s" % (label, c, plural),
                       "≥ 1.0× keyset over heap + PK, %d client%s" % (c, plural),
                       ratio(m("read", wid % c), m("read", "keyset%d" % c)), 1.0)
            if wid == "consume%d":
                target("read with %s, %d client%s" % (label, c, plural),
                       "≥ 1.0× keyset over heap + PK committing its position, %d client%s" % (c, plural),
                       ratio(m("read", wid % c), m("read", "keysetd%d" % c)), 1.0)
    target("WAL bytes per record (1 transaction, 110 B)", "≤ 0.8× heap + PK",
           ratio(m("tx1m_wal", "eventlog"), m("tx1m_wal", "heap_pk")), 0.8, False)
    target("disk bytes per record (1 transaction, 110 B)", "≤ 0.7× heap + PK",
           ratio(m("tx1m_disk", "eventlog"), m("tx1m_disk", "heap_pk")), 0.7, False)
    target("seek in %d vs %d records" % (SEEK_BIG, SEEK_SMALL), "≤ 1.5×",
           ratio(m("seek", "sbig"), m("seek", "ssmall")), 1.5, False)
    for sysname, note in (("eventlog", ""), ("eventlog_ni0", " (tuned)")):
        for rate in LAT_RATES:
            for kind, label in (("listen", "LISTEN" + (", notify_interval = 0" if note else "")),
                                ("consume", "consume(wait)" + (", consumer synchronous_commit = off" if note else ""))):
                v = m("lat%d_%s_p99" % (rate, kind), sysname)
                TARGET_ROWS.append(("latency p99, %s, %d rec/s" % (label, rate), "≤ 2 ms",
                                    None if v is None else v, None if v is None else v <= 2.0))
    for rate in LAT_RATES:
        target("latency p99, consume(wait), %d rec/s" % rate,
               "≤ 1.0× the heap + PK consumer committing its position",
               ratio(m("lat%d_consume_p99" % rate, "eventlog"), m("lat%d_consume_p99" % rate, "heap_consumer")),
               1.0, False)
    target("producer throughput, notification on vs off", "≥ 0.95×",
           ratio(m("notify", "eventlog_on"), m("notify", "eventlog_off")), 0.95)
    if series("held", "eventlog_held"):
        d = m("held", "eventlog_base") / max(min(series("held", "eventlog_held")), 1e-9)
        TARGET_ROWS.append(("group commits under a held snapshot", "degradation ≤ 2×", d, d <= 2.0))

    add("### Targets")
    add("")
    add("| workload | target | eventlog | verdict |")
    add("|---|---|---|---|")
    for name, text, r, ok in TARGET_ROWS:
        if r is None:
            continue
        shown = ("%.2f ms" % r) if text == "≤ 2 ms" else ("%.2f×" % r)
        add("| %s | %s | %s | %s |" % (name, text, shown, "met" if ok else "**missed**"))
    add("")
    return "\n".join(lines)


def chart():
    """gnuplot PNG: throughput by records per transaction."""
    data = os.path.join(OUT, "chart.dat")
    with open(data, "w") as f:
        f.write("# batch eventlog heap heap_pk pgq eventlog_p1 (records/s, medians, 8 clients)\n")
        for b in BATCHES:
            f.write("%d %s\n" % (b, " ".join("%.0f" % (med(series("batch%d" % b, s)) or 0) for s in SWEEP_SYSTEMS)))
    big = os.path.join(OUT, "chart1m.dat")
    with open(big, "w") as f:
        f.write("# one transaction of %d records, 1 client\n" % N_TX)
        f.write("%d %s\n" % (N_TX, " ".join("%.0f" % (med(series("tx1m", s)) or 0) for s in SYSTEMS)))
    gp = """
set terminal pngcairo noenhanced size 960,600 font 'DejaVu Sans,10'
set output '%(png)s'
set title "Producing 110-byte JSON records with 11-byte keys: throughput by records per transaction\\n(fsync = on, synchronous_commit = on; medians of %(reps)d runs; 8 clients; the single %(n)d-record transaction: 1 client)"
set logscale x
set logscale y
set xlabel 'records per transaction'
set ylabel 'records per second'
set key right bottom box opaque
set grid
set xrange [0.6:%(xmax)g]
set yrange [1000:3e6]
set format x '%%.0s%%c'
set format y '%%.0s%%c'
plot '%(d)s' using 1:2 with linespoints lw 2 pt 7 lc rgb '#1b9e77' title 'eventlog, 8 partitions, keyed (produce / produce_batch)', \\
     '%(d)s' using 1:6 with linespoints lw 1 dt 2 pt 6 lc rgb '#1b9e77' title 'eventlog, 1 partition', \\
     '%(d)s' using 1:3 with linespoints lw 2 pt 5 lc rgb '#7570b3' title 'heap, no index (INSERT ... SELECT FROM unnest)', \\
     '%(d)s' using 1:4 with linespoints lw 2 pt 9 lc rgb '#d95f02' title 'heap + bigint PK (INSERT ... SELECT FROM unnest)', \\
     '%(d)s' using 1:5 with linespoints lw 2 pt 11 lc rgb '#e7298a' title 'PgQ (pgq.insert_event)', \\
     '%(b)s' using 1:2 with points pt 7 ps 1.6 lc rgb '#1b9e77' notitle, \\
     '%(b)s' using 1:3 with points pt 5 ps 1.6 lc rgb '#7570b3' notitle, \\
     '%(b)s' using 1:4 with points pt 9 ps 1.6 lc rgb '#d95f02' notitle, \\
     '%(b)s' using 1:5 with points pt 11 ps 1.6 lc rgb '#e7298a' notitle
""" % {"png": os.path.join(OUT, "performance.png"), "reps": REPS, "n": N_TX, "xmax": N_TX * 3, "d": data, "b": big}
    p = subprocess.run(["gnuplot"], input=gp, capture_output=True, text=True)
    check(p.returncode == 0, "gnuplot failed: " + p.stderr[-500:])


WORKLOADS = [("tx", w_one_transaction), ("clients", w_clients), ("read", w_read), ("seek", w_seek),
             ("latency", w_latency), ("notify", w_notify), ("held", w_held)]


def main():
    os.makedirs(OUT, exist_ok=True)
    q("CREATE EXTENSION IF NOT EXISTS eventlog")
    q("CREATE EXTENSION IF NOT EXISTS pgq")
    q("CREATE SCHEMA IF NOT EXISTS bench")
    names = ["server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers",
             "wal_buffers", "max_wal_size", "checkpoint_timeout", "autovacuum", "shared_preload_libraries",
             "eventlog.notify_interval", "eventlog.session_timeout"]
    settings = [(n, q1("SHOW " + n)[0]) for n in names]
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    machine = "%d CPUs (%s), %.0f GiB RAM, Linux %s, %s" % (
        os.cpu_count(), cpu, mem, platform.release(), "Debian " + open("/etc/debian_version").read().strip())
    load0 = os.getloadavg()
    print("settings: " + ", ".join("%s=%s" % kv for kv in settings), flush=True)
    print("machine: " + machine, flush=True)
    for name, fn in WORKLOADS:
        if ONLY and name not in ONLY:
            continue
        try:
            fn()
        except Exception as e:      # a workload that breaks fails the run, the others still run
            check(False, "workload %s raised %s: %s" % (name, type(e).__name__, e))
            global MAIN
            MAIN = None
    load1 = os.getloadavg()
    machine += "; load average %.2f at the start, %.2f at the end (1 min)" % (load0[0], load1[0])
    elapsed = time.monotonic() - T0
    text = report(settings, machine)
    text += "\nRun time: %.1f minutes.%s\n" % (elapsed / 60, "" if not FAILURES else
                                               "\n\n**%d checks FAILED.**" % len(FAILURES))
    print("\n" + text, flush=True)
    with open(os.path.join(OUT, "last-run.md"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "last-run.json"), "w") as f:
        json.dump({"settings": settings, "machine": machine, "reps": REPS, "smoke": SMOKE,
                   "results": RESULTS, "targets": TARGET_ROWS, "failures": FAILURES,
                   "minutes": elapsed / 60}, f, indent=1, default=str)
    if any(k.startswith("batch") for k in RESULTS):
        chart()
    if FAILURES:
        print("FAILED: %d checks failed:" % len(FAILURES))
        for f in FAILURES:
            print("  - " + f.splitlines()[0])
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--chart":
        # redraw the chart of a finished run: bench.py --chart bench/results/last-run.json
        RESULTS.update(json.load(open(sys.argv[2]))["results"])
        OUT = os.path.dirname(os.path.abspath(sys.argv[2]))
        chart()
    else:
        main()
