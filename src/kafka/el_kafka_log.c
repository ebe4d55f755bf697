/*
 * el_kafka_log.c
 *		Everything the Kafka listener asks of topics and partitions: listing
 *		topics, partition offsets, reading records, appending records.
 *
 * This is the one file of the listener that knows how eventlog stores a
 * topic (its catalog, its partition relations, the reader), so that changes
 * to storage touch only this narrow interface.  It also converts between
 * the protocol's records (byte strings, milliseconds since 1970, a list of
 * headers) and eventlog's (a text key, a bytea value, a timestamptz, headers
 * as a JSON object of strings).
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/relation.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "kafka/el_kafka.h"
#include "log/log.h"
#include "storage/storage.h"

/* Milliseconds from 1970-01-01 (Kafka's epoch) to 2000-01-01 (PostgreSQL's). */
#define EK_EPOCH_DIFF_MS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)

/* Longest topic name (Kafka's limit, also eventlog's). */
#define EK_TOPIC_NAME_MAX	249

static int64
ek_ts_to_ms(TimestampTz ts)
{
	/* floor division: timestamps before 2000 are negative */
	int64		ms = ts >= 0 ? ts / 1000 : -((-ts + 999) / 1000);

	return ms + EK_EPOCH_DIFF_MS;
}

static TimestampTz
ek_ms_to_ts(int64 ms)
{
	return (TimestampTz) (ms - EK_EPOCH_DIFF_MS) * 1000;
}

/* ---- Topics ---- */

/* All topics, by name, with their partition counts (a List of EkTopicInfo). */
List *
ek_log_topics(void)
{
	MemoryContext outer = CurrentMemoryContext;
	List	   *topics = NIL;
	uint64		i;

	SPI_connect();
	if (SPI_execute("SELECT topic, partitions FROM eventlog.topic ORDER BY topic",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the eventlog topic catalog");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		bool		isnull;
		int32		n = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 2, &isnull));
		MemoryContext old = MemoryContextSwitchTo(outer);
		EkTopicInfo *t = palloc(sizeof(EkTopicInfo));

		t->name = pstrdup(name);
		t->npartitions = n;
		topics = lappend(topics, t);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return topics;
}

/* Looks a topic up without raising errors; false if there is none. */
bool
ek_log_topic(const char *name, int32 *npartitions)
{
	ElTopic		topic;

	if (name == NULL || name[0] == '\0' || strlen(name) > EK_TOPIC_NAME_MAX)
		return false;
	if (!el_topic_lookup(name, true, &topic))
		return false;
	*npartitions = topic.npartitions;
	return true;
}

/* Whether the listener's role has the right mode on a topic. */
bool
ek_log_allowed(const char *name, AclMode mode)
{
	ElTopic		topic;

	if (name == NULL || name[0] == '\0' || strlen(name) > EK_TOPIC_NAME_MAX ||
		!el_topic_lookup(name, true, &topic))
		return false;
	return pg_class_aclcheck(topic.parent, GetUserId(), mode) == ACLCHECK_OK;
}

/*
 * Resolves a topic and partition for reading (ACL_SELECT) or producing
 * (ACL_INSERT), raising the errors the SQL functions raise: unknown topic,
 * no right, no such partition.
 */
static void
ek_log_resolve(const char *name, int32 partition, AclMode mode, ElTopic *topic)
{
	if (name == NULL || strlen(name) > EK_TOPIC_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("topic \"%s\" does not exist", name ? name : "")));
	el_topic_lookup(name, false, topic);
	el_check_topic_privilege(topic, mode);
	if (partition < 0 || partition >= topic->npartitions)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("partition %d of topic \"%s\" does not exist", partition, name)));
}

/* As ek_log_resolve, for callers that only need to know it would pass. */
void
ek_log_check(const char *name, int32 partition, AclMode mode)
{
	ElTopic		topic;

	ek_log_resolve(name, partition, mode, &topic);
}

/* ---- Offsets ---- */

/*
 * Earliest offset, high watermark and last stable offset of a partition, as
 * eventlog.partitions shows them, and what to watch for new commits.
 */
void
ek_log_state(const char *name, int32 partition, EkPartitionState *st)
{
	ElTopic		topic;
	ElLog		log;
	ElMetaInfo	meta;
	TransactionId held_by;

	ek_log_resolve(name, partition, ACL_SELECT, &topic);
	el_log_open(&log, &topic, partition);
	st->last_stable = el_log_last_stable_offset(&log, &meta, &held_by);
	st->log_start = meta.earliest_offset;
	st->high_watermark = meta.next_offset;
	/* producers' commits are counted on the partition's relation */
	st->wait_id = log.relid;
	el_log_close(&log);
}

/*
 * First offset whose record is at or after ts_ms (Kafka's ListOffsets by
 * timestamp), with that record's timestamp; -1 if no record is that recent.
 */
int64
ek_log_offset_for_time(const char *name, int32 partition, int64 ts_ms, int64 *found_ts_ms)
{
	ElTopic		topic;
	ElLog		log;
	int64		offset;
	ElLogReader *reader;
	ElRecord	rec;

	ek_log_resolve(name, partition, ACL_SELECT, &topic);
	el_log_open(&log, &topic, partition);
	offset = el_log_offset_for_time(&log, ek_ms_to_ts(ts_ms));

	/* the first record from there that this snapshot sees */
	reader = el_log_reader_begin(&log, GetActiveSnapshot(), offset);
	if (el_log_reader_next(reader, &rec))
	{
		offset = rec.offset;
		*found_ts_ms = ek_ts_to_ms(rec.ts);
	}
	else
	{
		offset = -1;
		*found_ts_ms = -1;
	}
	el_log_reader_end(reader);
	el_log_close(&log);
	return offset;
}

/* ---- Reading ---- */

/* The bytes of a stored varlena, from TOAST or decompressed if need be. */
static const char *
ek_varlena_bytes(Pointer p, int *len)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) p);

	*len = VARSIZE_ANY_EXHDR(v);
	return VARDATA_ANY(v);
}

/* Text in the database's encoding as UTF-8 bytes (the protocol's strings). */
static const char *
ek_to_utf8(const char *s, int *len)
{
	char	   *u;

	if (GetDatabaseEncoding() == PG_UTF8)
		return s;
	u = pg_server_to_any(s, *len, PG_UTF8);
	if (u != s)
		*len = strlen(u);
	return u;
}

/* Headers stored as a JSON object of strings, as a list of Kafka headers. */
static void
ek_headers_out(Pointer p, EkRecord *out)
{
	Jsonb	   *jb = DatumGetJsonbP(PointerGetDatum(p));
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			n = 0;
	int			cap;

	out->nheaders = 0;
	out->headers = NULL;
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		return;
	cap = Max(JB_ROOT_COUNT(jb), 1);
	out->headers = palloc(sizeof(EkHeader) * cap);
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY && n < cap)
		{
			out->headers[n].namelen = v.val.string.len;
			out->headers[n].name = ek_to_utf8(v.val.string.val, &out->headers[n].namelen);
		}
		else if (tok == WJB_VALUE && n < cap)
		{
			if (v.type == jbvString)
			{
				out->headers[n].valuelen = v.val.string.len;
				out->headers[n].value = ek_to_utf8(v.val.string.val,
												   &out->headers[n].valuelen);
			}
			else
			{
				/* produce() admits strings and nulls only */
				out->headers[n].value = NULL;
				out->headers[n].valuelen = -1;
			}
			n++;
		}
	}
	out->nheaders = n;
}

/*
 * Reads a partition from offset under the transaction's snapshot, in offset
 * order, stopping before the first record of a transaction still open
 * (the last stable offset), and hands each record to cb until it says stop.
 */
void
ek_log_read(const char *name, int32 partition, int64 offset, EkRecordCallback cb, void *arg)
{
	ElTopic		topic;
	ElLog		log;
	ElLogReader *reader;
	ElRecord	rec;
	MemoryContext cxt;
	MemoryContext old;

	ek_log_resolve(name, partition, ACL_SELECT, &topic);
	el_log_open(&log, &topic, partition);
	cxt = AllocSetContextCreate(CurrentMemoryContext, "eventlog kafka read",
								ALLOCSET_DEFAULT_SIZES);
	reader = el_log_reader_begin(&log, GetActiveSnapshot(), offset);
	for (;;)
	{
		EkRecord	out;
		bool		more;

		CHECK_FOR_INTERRUPTS();
		if (!el_log_reader_next(reader, &rec))
			break;
		old = MemoryContextSwitchTo(cxt);
		out.offset = rec.offset;
		out.ts_ms = ek_ts_to_ms(rec.ts);
		out.keylen = -1;
		out.key = NULL;
		if (rec.key)
		{
			out.key = ek_varlena_bytes(rec.key, &out.keylen);
			out.key = ek_to_utf8(out.key, &out.keylen);
		}
		out.valuelen = -1;
		out.value = rec.value ? ek_varlena_bytes(rec.value, &out.valuelen) : NULL;
		out.nheaders = 0;
		out.headers = NULL;
		if (rec.headers)
			ek_headers_out(rec.headers, &out);
		MemoryContextSwitchTo(old);

		more = cb(&out, arg);
		MemoryContextReset(cxt);
		if (!more)
			break;
	}
	el_log_reader_end(reader);
	MemoryContextDelete(cxt);
	el_log_close(&log);
}

/* ---- Appending ---- */

/* Protocol bytes (UTF-8) as text in the database's encoding, or an error. */
static text *
ek_text_in(const char *s, int len, const char *what)
{
	char	   *conv;

	if (!pg_verify_mbstr(PG_UTF8, s, len, true))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("%s is not valid UTF-8 text", what),
				 errdetail("eventlog stores keys and header values as text.")));
	conv = pg_any_to_server(s, len, PG_UTF8);
	if (conv != s)
		return cstring_to_text(conv);
	return cstring_to_text_with_len(s, len);
}

/* Kafka headers as eventlog's JSON object of strings (nulls kept). */
static Jsonb *
ek_headers_in(EkRecord *rec)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	int			i;

	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (i = 0; i < rec->nheaders; i++)
	{
		EkHeader   *h = &rec->headers[i];
		JsonbValue	k;
		JsonbValue	v;
		text	   *t = ek_text_in(h->name, h->namelen, "a header name");

		k.type = jbvString;
		k.val.string.val = VARDATA_ANY(t);
		k.val.string.len = VARSIZE_ANY_EXHDR(t);
		(void) pushJsonbValue(&state, WJB_KEY, &k);
		if (h->valuelen < 0)
			v.type = jbvNull;
		else
		{
			t = ek_text_in(h->value, h->valuelen, "a header value");
			v.type = jbvString;
			v.val.string.val = VARDATA_ANY(t);
			v.val.string.len = VARSIZE_ANY_EXHDR(t);
		}
		(void) pushJsonbValue(&state, WJB_VALUE, &v);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * Appends records to one partition, as produce() does (the role's INSERT
 * right checked, the size limit applied), in the current transaction.
 * Returns the offset of the first.
 */
int64
ek_log_append(const char *name, int32 partition, EkRecord *recs, int n)
{
	ElTopic		topic;
	ElNewRecord *nrecs;
	int			i;

	ek_log_resolve(name, partition, ACL_INSERT, &topic);
	nrecs = palloc(sizeof(ElNewRecord) * n);
	for (i = 0; i < n; i++)
	{
		EkRecord   *r = &recs[i];
		ElNewRecord *nr = &nrecs[i];

		nr->offset = -1;
		nr->ts = ek_ms_to_ts(r->ts_ms);
		nr->key = r->keylen >= 0 ? (struct varlena *) ek_text_in(r->key, r->keylen, "a key") : NULL;
		nr->value = NULL;
		if (r->valuelen >= 0)
		{
			bytea	   *v = palloc(VARHDRSZ + r->valuelen);

			SET_VARSIZE(v, VARHDRSZ + r->valuelen);
			memcpy(VARDATA(v), r->value, r->valuelen);
			nr->value = (struct varlena *) v;
		}
		nr->headers = r->nheaders > 0 ? (struct varlena *) ek_headers_in(r) : NULL;
	}
	el_produce_to_partition(&topic, partition, nrecs, n);
	for (i = 0; i < n; i++)
		recs[i].offset = nrecs[i].offset;
	return nrecs[0].offset;
}

/* ---- Waiting ---- */

/*
 * Commit counters behind the partitions with these wait ids: a parked Fetch
 * compares them to know whether to look again.
 */
uint64
ek_log_stamp(uint32 *wait_ids, int n)
{
	Oid		   *relids = palloc(sizeof(Oid) * Max(n, 1));
	uint64		stamp;
	int			i;

	for (i = 0; i < n; i++)
		relids[i] = (Oid) wait_ids[i];
	stamp = el_wakeup_stamp(relids, n);
	pfree(relids);
	return stamp;
}
