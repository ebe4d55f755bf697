/*
 * el_mirror.c
 *		Mirrors: the database's worker pulls topics from another eventlog
 *		server over libpq and appends them here with the same partitions and
 *		offsets (Kafka's MirrorMaker, or a follower replica).
 *
 * Each pass reads a batch per partition from the source with its fetch(),
 * which returns only committed records, and appends them with their own
 * offsets (gaps where the source had aborted records stay gaps).  The
 * position is stored in eventlog.mirror_progress in the same transaction as
 * the records: a crash or a source restart at any moment resumes exactly
 * where the last committed pass ended, never copying a record twice.  With
 * groups, the source groups' committed offsets are copied too (never beyond
 * what was copied), so consumers can fail over to the mirror.
 *
 * Errors (unreachable source, source without eventlog, topics missing or
 * different, local records that did not come from the mirror) are kept in
 * the mirror's row and retried with backoff; they never damage local data.
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "groups/groups.h"
#include "log/log.h"
#include "mirror/mirror.h"
#include "storage/storage.h"
#include "util/util.h"

PG_FUNCTION_INFO_V1(eventlog_create_mirror);
PG_FUNCTION_INFO_V1(eventlog_drop_mirror);
PG_FUNCTION_INFO_V1(eventlog_pause_mirror);
PG_FUNCTION_INFO_V1(eventlog_mirror_source);

#define EL_MIRROR_BATCH		1000
#define EL_MIRROR_MAX_BACKOFF_S	60

/* Connections of this worker, by mirror name. */
typedef struct ElMirrorConn
{
	char		name[NAMEDATALEN * 2];
	PGconn	   *conn;
	char	   *conninfo;		/* what conn was made with (TopMemoryContext) */
} ElMirrorConn;

static HTAB *el_mirror_conns = NULL;

/* ---- SQL-callable administration ---- */

static void
el_require_superuser(const char *what)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be superuser to %s", what),
				 errdetail("A mirror connects to another server with the server's own rights.")));
}

static bool
el_mirrors_installed(void)
{
	return OidIsValid(get_relname_relid("mirror", get_namespace_oid("eventlog", false)));
}

Datum
eventlog_create_mirror(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *conninfo;
	char	   *err = NULL;
	PQconninfoOption *opts;
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTARRAYOID, BOOLOID};
	Datum		args[4];

	el_require_superuser("create a mirror");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name, conninfo and topics must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	conninfo = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("mirror name must not be empty")));
	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("invalid connection string for mirror \"%s\"", name),
				 errdetail("%s", err ? err : "out of memory")));
	PQconninfoFree(opts);
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(2);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		if (ARR_NDIM(arr) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
					 errmsg("topics must be a one-dimensional array")));
		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		if (n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a mirror needs at least one topic")));
		for (i = 0; i < n; i++)
		{
			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("topics must not contain NULL")));
			el_check_topic_name(TextDatumGetCString(elems[i]));
		}
	}
	if (!el_shmem_attached())
		ereport(WARNING,
				(errmsg("eventlog is not loaded by shared_preload_libraries: the mirror will not run"),
				 errhint("Add eventlog to shared_preload_libraries and restart the server.")));

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(conninfo);
	args[2] = PG_GETARG_DATUM(2);
	args[3] = BoolGetDatum(!PG_ARGISNULL(3) && PG_GETARG_BOOL(3));
	SPI_connect();
	if (SPI_execute_with_args("SELECT 1 FROM eventlog.mirror WHERE name = $1", 1, types, args,
							  NULL, true, 1) == SPI_OK_SELECT && SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("mirror \"%s\" already exists", name)));
	SPI_execute_with_args("INSERT INTO eventlog.mirror (name, conninfo, topics, groups) VALUES ($1, $2, $3, $4)",
						  4, types, args, NULL, false, 0);
	SPI_finish();
	PG_RETURN_VOID();
}

static void
el_mirror_update(const char *sql, const char *name, Datum extra, Oid extra_type)
{
	Oid			types[2] = {TEXTOID, extra_type};
	Datum		args[2];

	args[0] = CStringGetTextDatum(name);
	args[1] = extra;
	SPI_connect();
	if (SPI_execute_with_args(sql, OidIsValid(extra_type) ? 2 : 1, types, args, NULL, false, 0) < 0 ||
		SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("mirror \"%s\" does not exist", name)));
	SPI_finish();
}

Datum
eventlog_drop_mirror(PG_FUNCTION_ARGS)
{
	el_require_superuser("drop a mirror");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	el_mirror_update("DELETE FROM eventlog.mirror WHERE name = $1",
					 text_to_cstring(PG_GETARG_TEXT_PP(0)), (Datum) 0, InvalidOid);
	PG_RETURN_VOID();
}

Datum
eventlog_pause_mirror(PG_FUNCTION_ARGS)
{
	el_require_superuser("pause or resume a mirror");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("name must not be null")));
	el_mirror_update("UPDATE eventlog.mirror SET paused = $2, retry_at = NULL WHERE name = $1",
					 text_to_cstring(PG_GETARG_TEXT_PP(0)),
					 BoolGetDatum(PG_ARGISNULL(1) || PG_GETARG_BOOL(1)), BOOLOID);
	PG_RETURN_VOID();
}

/* mirror_source(conninfo): the connection string with its password hidden. */
Datum
eventlog_mirror_source(PG_FUNCTION_ARGS)
{
	char	   *conninfo = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	PQconninfoOption *o;
	StringInfoData buf;

	if (opts == NULL)
		PG_RETURN_TEXT_P(cstring_to_text("(invalid connection string)"));
	initStringInfo(&buf);
	for (o = opts; o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (buf.len > 0)
			appendStringInfoChar(&buf, ' ');
		/* libpq marks secret options (password, sslpassword) with "*" */
		if (o->dispchar && o->dispchar[0] == '*')
			appendStringInfo(&buf, "%s=********", o->keyword);
		else
			appendStringInfo(&buf, "%s=%s", o->keyword, o->val);
	}
	PQconninfoFree(opts);
	PG_RETURN_TEXT_P(cstring_to_text(buf.data));
}

/* ---- The worker's side ---- */

static PGconn *
el_mirror_connect(const char *name, const char *conninfo)
{
	ElMirrorConn *entry;
	bool		found;
	char		key[NAMEDATALEN * 2];

	if (el_mirror_conns == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(ElMirrorConn);
		el_mirror_conns = hash_create("eventlog mirror connections", 16, &ctl,
									  HASH_ELEM | HASH_STRINGS);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	entry = hash_search(el_mirror_conns, key, HASH_ENTER, &found);
	if (!found)
	{
		entry->conn = NULL;
		entry->conninfo = NULL;
	}
	/* A broken connection, or a mirror made anew with another source. */
	if (entry->conn &&
		(PQstatus(entry->conn) != CONNECTION_OK ||
		 entry->conninfo == NULL || strcmp(entry->conninfo, conninfo) != 0))
	{
		PQfinish(entry->conn);
		entry->conn = NULL;
	}
	if (entry->conn == NULL)
	{
		/* Bounded waits: a source that hangs must not hang the worker. */
		const char *keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
		const char *vals[] = {conninfo, "10", "-c statement_timeout=30s", "eventlog mirror", NULL};

		entry->conn = PQconnectdbParams(keys, vals, true);
		if (PQstatus(entry->conn) != CONNECTION_OK)
		{
			char	   *msg = pstrdup(PQerrorMessage(entry->conn));

			PQfinish(entry->conn);
			entry->conn = NULL;
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not connect to the source: %s", msg)));
		}
		if (entry->conninfo)
			pfree(entry->conninfo);
		entry->conninfo = MemoryContextStrdup(TopMemoryContext, conninfo);
	}
	return entry->conn;
}

static void
el_mirror_disconnect(const char *name)
{
	ElMirrorConn *entry;
	char		key[NAMEDATALEN * 2];

	if (el_mirror_conns == NULL)
		return;
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	entry = hash_search(el_mirror_conns, key, HASH_FIND, NULL);
	if (entry && entry->conn)
	{
		PQfinish(entry->conn);
		entry->conn = NULL;
	}
}

/* Runs a query on the source, raising its error here. */
static PGresult *
el_source_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
				int result_format)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, result_format);

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		char	   *msg = pstrdup(PQresultErrorMessage(res));

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("source: %s", msg[0] ? msg : PQerrorMessage(conn))));
	}
	return res;
}

static int64
el_read_int8(const char *p)
{
	uint32		hi;
	uint32		lo;

	memcpy(&hi, p, 4);
	memcpy(&lo, p + 4, 4);
	return (int64) (((uint64) ntohl(hi) << 32) | ntohl(lo));
}

/* A varlena copy of a binary bytea/text value of the source. */
static struct varlena *
el_varlena(const char *data, int len)
{
	struct varlena *v = palloc(VARHDRSZ + len);

	SET_VARSIZE(v, VARHDRSZ + len);
	memcpy(VARDATA(v), data, len);
	return v;
}

/*
 * Copies one batch of a partition; returns the number of records copied.
 * Runs in the worker's transaction: records and progress commit together.
 */
static int
el_mirror_partition(PGconn *conn, const char *mirror, ElTopic *topic, int32 partition)
{
	Oid			types[3] = {TEXTOID, TEXTOID, INT4OID};
	Datum		args[3];
	int64		next = -1;
	ElLog		log;
	ElMetaInfo	meta;
	char		pbuf[16];
	char		obuf[32];
	const char *params[4];
	PGresult   *res;
	int			n;
	int			i;
	ElNewRecord *recs;
	int64		source_hw = -1;
	int64		source_lso = -1;

	args[0] = CStringGetTextDatum(mirror);
	args[1] = CStringGetTextDatum(topic->name);
	args[2] = Int32GetDatum(partition);
	if (SPI_execute_with_args("SELECT next_offset FROM eventlog.mirror_progress "
							  "WHERE mirror = $1 AND topic = $2 AND partition = $3",
							  3, types, args, NULL, true, 1) == SPI_OK_SELECT && SPI_processed > 0)
	{
		bool		isnull;

		next = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}

	el_log_open(&log, topic, partition);
	el_log_meta(&log, &meta);
	if (meta.next_offset > Max(next, 0))
	{
		/*
		 * Offsets past the mirror's position: if every record there is
		 * aborted (a pass of this mirror that failed after appending), cut
		 * them off so that the source's records land at their own offsets;
		 * anything else came from elsewhere and stops the mirror.
		 */
		ElLogReader *reader = el_log_reader_begin(&log, NULL, Max(next, 0));
		ElRecord	rec;
		bool		foreign = el_log_reader_next(reader, &rec) || reader->blocked;

		el_log_reader_end(reader);
		if (foreign)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 next < 0 ?
					 errmsg("local partition %d of topic \"%s\" already holds records", partition, topic->name) :
					 errmsg("local partition %d of topic \"%s\" got records that did not come from the mirror",
							partition, topic->name),
					 errhint("A mirror copies into a topic nothing else writes to.")));
		el_log_rewind_aborted_tail(&log, Max(next, 0));
	}
	if (next < 0)
		next = 0;

	snprintf(pbuf, sizeof(pbuf), "%d", partition);
	snprintf(obuf, sizeof(obuf), INT64_FORMAT, next);
	params[0] = topic->name;
	params[1] = pbuf;
	params[2] = obuf;
	/*
	 * The source's offsets first, then its records in a later statement:
	 * every record below that last stable offset had committed or aborted
	 * before the fetch's snapshot, so a short fetch has returned all of the
	 * committed ones.
	 */
	res = el_source_query(conn,
						  "SELECT high_watermark, last_stable_offset FROM eventlog.partitions "
						  "WHERE topic = $1 AND partition = $2::int",
						  2, params, 1);
	if (PQntuples(res) > 0)
	{
		source_hw = el_read_int8(PQgetvalue(res, 0, 0));
		source_lso = el_read_int8(PQgetvalue(res, 0, 1));
	}
	PQclear(res);

	res = el_source_query(conn,
						  "SELECT \"offset\", key, value, headers::text, ts "
						  "FROM eventlog.fetch($1, $2::int, $3::bigint, " CppAsString2(EL_MIRROR_BATCH) ")",
						  3, params, 1);
	n = PQntuples(res);
	recs = palloc(sizeof(ElNewRecord) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		ElNewRecord *rec = &recs[i];

		rec->offset = el_read_int8(PQgetvalue(res, i, 0));
		rec->key = PQgetisnull(res, i, 1) ? NULL :
			el_varlena(PQgetvalue(res, i, 1), PQgetlength(res, i, 1));
		rec->value = PQgetisnull(res, i, 2) ? NULL :
			el_varlena(PQgetvalue(res, i, 2), PQgetlength(res, i, 2));
		rec->headers = PQgetisnull(res, i, 3) ? NULL :
			(struct varlena *) DatumGetPointer(DirectFunctionCall1(jsonb_in,
																   CStringGetDatum(pnstrdup(PQgetvalue(res, i, 3),
																							PQgetlength(res, i, 3)))));
		rec->ts = (TimestampTz) el_read_int8(PQgetvalue(res, i, 4));
	}
	PQclear(res);

	if (n > 0)
	{
		el_produce_to_partition(topic, partition, recs, n);
		next = recs[n - 1].offset + 1;
	}

	/*
	 * A short batch read every committed record below the source's last
	 * stable offset: the offsets up to it that came with no record were
	 * aborted there.  Move past them here too, so that this log hands out
	 * no offset the source used.
	 */
	if (n < EL_MIRROR_BATCH && source_lso > next)
	{
		el_log_refresh(&log);
		el_log_set_floor(&log, source_lso);
		next = source_lso;
	}

	{
		Oid			utypes[5] = {TEXTOID, TEXTOID, INT4OID, INT8OID, INT8OID};
		Datum		uargs[5];
		char		unulls[5] = {' ', ' ', ' ', ' ', source_hw < 0 ? 'n' : ' '};

		uargs[0] = args[0];
		uargs[1] = args[1];
		uargs[2] = args[2];
		uargs[3] = Int64GetDatum(next);
		uargs[4] = Int64GetDatum(source_hw);
		if (SPI_execute_with_args("INSERT INTO eventlog.mirror_progress AS p (mirror, topic, partition, next_offset, source_high_watermark) "
								  "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (mirror, topic, partition) DO UPDATE "
								  "SET next_offset = EXCLUDED.next_offset, source_high_watermark = EXCLUDED.source_high_watermark, "
								  "updated_at = clock_timestamp() "
								  "WHERE p.next_offset <> EXCLUDED.next_offset OR p.source_high_watermark IS DISTINCT FROM EXCLUDED.source_high_watermark",
								  5, utypes, uargs, unulls, false, 0) < 0)
			elog(ERROR, "could not record the mirror's progress");
	}
	el_log_close(&log);
	return n;
}

/*
 * Copies the source groups' committed offsets of the mirrored topics, for
 * groups without live members here, never beyond what was copied.
 */
static void
el_mirror_groups(PGconn *conn, ArrayType *topics)
{
	PGresult   *res;
	char	   *topics_text = OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(topics));
	const char *params[1] = {topics_text};
	int			i;

	res = el_source_query(conn,
						  "SELECT DISTINCT ON (grp, topic, partition) grp, topic, partition::text, committed_offset::text "
						  "FROM eventlog.group_offset WHERE topic = ANY ($1::text[]) "
						  "ORDER BY grp, topic, partition, seq DESC",
						  1, params, 0);
	for (i = 0; i < PQntuples(res); i++)
	{
		const char *grp = PQgetvalue(res, i, 0);
		ElTopic		topic;
		int32		p = atoi(PQgetvalue(res, i, 2));
		int64		offset = strtoll(PQgetvalue(res, i, 3), NULL, 10);
		ElLog		log;
		ElMetaInfo	meta;

		if (!el_topic_lookup(PQgetvalue(res, i, 1), true, &topic) || p >= topic.npartitions)
			continue;
		el_log_open(&log, &topic, p);
		el_log_meta(&log, &meta);
		el_log_close(&log);
		el_group_lock_offsets(grp);
		el_group_ensure(grp);
		if (el_group_live_members(grp) > 0)
			continue;
		offset = Min(offset, meta.next_offset);
		{
			int64		local;

			/* Never back: what a group read here stays read. */
			if (el_offset_get(grp, topic.name, p, &local) && local >= offset)
				continue;
		}
		el_offset_reset(grp, topic.name, p, offset);
	}
	PQclear(res);
}

/* One mirror's pass; returns the number of records copied. */
static int
el_mirror_run(const char *name, const char *conninfo, ArrayType *topics, bool groups)
{
	PGconn	   *conn = el_mirror_connect(name, conninfo);
	PGresult   *res;
	Datum	   *names;
	bool	   *nulls;
	int			ntopics;
	int			copied = 0;
	int			t;

	res = el_source_query(conn, "SELECT extversion FROM pg_extension WHERE extname = 'eventlog'", 0, NULL, 0);
	if (PQntuples(res) == 0)
	{
		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the source has no eventlog extension")));
	}
	PQclear(res);

	/* Groups first: a failure there must not undo records appended. */
	if (groups)
		el_mirror_groups(conn, topics);

	deconstruct_array(topics, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &ntopics);
	for (t = 0; t < ntopics; t++)
	{
		char	   *tname;
		const char *params[1];
		ElTopic		topic;
		int			source_partitions;
		int32		p;

		if (nulls[t])
			continue;
		tname = TextDatumGetCString(names[t]);
		params[0] = tname;

		res = el_source_query(conn, "SELECT partitions::text FROM eventlog.topic WHERE topic = $1", 1, params, 0);
		if (PQntuples(res) == 0)
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("topic \"%s\" does not exist on the source", tname)));
		}
		source_partitions = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
		if (!el_topic_lookup(tname, true, &topic))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("topic \"%s\" does not exist here", tname),
					 errhint("Create it with eventlog.create_topic('%s', %d).", tname, source_partitions)));
		if (topic.npartitions < source_partitions)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("topic \"%s\" has %d partitions here and %d on the source",
							tname, topic.npartitions, source_partitions),
					 errhint("Grow it with eventlog.add_partitions('%s', %d).", tname, source_partitions)));
		for (p = 0; p < source_partitions; p++)
			copied += el_mirror_partition(conn, name, &topic, p);
	}
	return copied;
}

/* Records a mirror's state (in the worker's own transaction). */
static void
el_mirror_state(const char *name, const char *state, const char *error)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', error ? ' ' : 'n'};

	args[0] = CStringGetTextDatum(name);
	args[1] = CStringGetTextDatum(state);
	args[2] = error ? CStringGetTextDatum(error) : (Datum) 0;
	if (error)
		SPI_execute_with_args("UPDATE eventlog.mirror SET state = $2, last_error = $3, errors = errors + 1, "
							  "retry_at = clock_timestamp() + make_interval(secs => least(power(2, least(errors, 10)), "
							  CppAsString2(EL_MIRROR_MAX_BACKOFF_S) ")) WHERE name = $1",
							  3, types, args, nulls, false, 0);
	else
		SPI_execute_with_args("UPDATE eventlog.mirror SET state = $2, last_error = NULL, errors = 0, retry_at = NULL "
							  "WHERE name = $1 AND (state <> $2 OR errors <> 0)",
							  2, types, args, nulls, false, 0);
}

/* One mirror's turn of a pass, run by el_try. */
typedef struct ElMirrorStep
{
	const char *name;
	const char *conninfo;
	ArrayType  *topics;
	bool		groups;
	int			copied;
} ElMirrorStep;

static void
el_mirror_step(void *arg)
{
	ElMirrorStep *step = arg;

	SPI_connect();
	step->copied = el_mirror_run(step->name, step->conninfo, step->topics, step->groups);
	el_mirror_state(step->name, "running", NULL);
	SPI_finish();
}

/*
 * A pass over the database's mirrors, in the worker's transaction.  Each
 * mirror runs in a subtransaction: its error is recorded and retried later,
 * and what it copied before failing is rolled back with its progress.
 * Returns true if records were copied (the worker comes back at once).
 */
bool
el_mirror_pass(void)
{
	MemoryContext outer = CurrentMemoryContext;
	List	   *mirrors = NIL;
	ListCell   *lc;
	bool		copied = false;
	uint64		i;

	if (!el_mirrors_installed())
		return false;

	SPI_connect();
	if (SPI_execute("SELECT name, conninfo, topics, groups FROM eventlog.mirror "
					"WHERE NOT paused AND (retry_at IS NULL OR retry_at <= clock_timestamp()) ORDER BY name",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read eventlog.mirror");
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(outer);
		ElMirrorStep *step = palloc0(sizeof(ElMirrorStep));

		step->name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		step->conninfo = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		step->topics = DatumGetArrayTypePCopy(SPI_getbinval(SPI_tuptable->vals[i],
															SPI_tuptable->tupdesc, 3, &isnull));
		step->groups = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4, &isnull));
		mirrors = lappend(mirrors, step);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();

	foreach(lc, mirrors)
	{
		ElMirrorStep *step = lfirst(lc);
		ErrorData  *edata = el_try(el_mirror_step, step);
		char	   *text;

		if (edata == NULL)
		{
			if (step->copied > 0)
				copied = true;
			continue;
		}
		text = edata->hint ?
			psprintf("%s (%s)", edata->message, edata->hint) : pstrdup(edata->message);

		/* A broken connection is made anew at the next try. */
		if (edata->sqlerrcode == ERRCODE_CONNECTION_FAILURE)
			el_mirror_disconnect(step->name);

		ereport(LOG,
				(errmsg("eventlog mirror \"%s\": %s", step->name, text)));
		SPI_connect();
		el_mirror_state(step->name, "error", text);
		SPI_finish();
		FreeErrorData(edata);
	}
	return copied;
}
