/*
 * el_produce.c
 *		produce() and produce_batch(): appending records to a topic.
 *
 * Both go straight to the partition's relation through el_append, one run
 * per page, without the executor; the indexes a user may have added to a
 * topic are maintained here.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat/compat.h"
#include "log/log_internal.h"
#include "storage/storage.h"

PG_FUNCTION_INFO_V1(eventlog_produce_bytea);
PG_FUNCTION_INFO_V1(eventlog_produce_text);
PG_FUNCTION_INFO_V1(eventlog_produce_jsonb);
PG_FUNCTION_INFO_V1(eventlog_produce_batch_bytea);
PG_FUNCTION_INFO_V1(eventlog_produce_batch_text);
PG_FUNCTION_INFO_V1(eventlog_produce_batch_jsonb);

/* ---- Values ---- */

/* The bytes stored for a value given as text, jsonb or bytea: UTF-8 text. */
static struct varlena *
el_value_bytes(Datum value, Oid type)
{
	if (type == JSONBOID)
	{
		Jsonb	   *jb = DatumGetJsonbP(value);
		char	   *json = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

		value = CStringGetTextDatum(json);
		type = TEXTOID;
	}
	if (type == TEXTOID && GetDatabaseEncoding() != PG_UTF8)
	{
		text	   *t = DatumGetTextPP(value);
		char	   *utf8 = pg_server_to_any(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), PG_UTF8);

		if (utf8 != VARDATA_ANY(t))
			value = PointerGetDatum(cstring_to_text(utf8));
	}
	/* text and bytea share one representation */
	return (struct varlena *) DatumGetPointer(value);
}

/*
 * Headers are a JSON object of strings (or nulls), as Kafka headers are
 * named byte strings.
 */
static void
el_check_headers(Jsonb *headers)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(headers) || JB_ROOT_IS_SCALAR(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("headers must be a JSON object"),
				 errdetail("Headers are named strings, for example {\"trace-id\": \"abc\"}.")));

	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_VALUE && v.type != jbvString && v.type != jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("header values must be strings or null"),
					 errdetail("Headers are named strings, for example {\"trace-id\": \"abc\"}.")));
	}
}

/* ---- Indexes ---- */

/* Adds appended records to the indexes of rel, if it has any. */
static void
el_insert_index_entries(Relation rel, int32 partition, ElNewRecord *recs, ItemPointer tids,
						int n)
{
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	int			i;

	if (!rel->rd_rel->relhasindex)
		return;

	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = table_slot_create(rel, NULL);

	for (i = 0; i < n; i++)
	{
		ElRecord	rec;

		rec.offset = recs[i].offset;
		rec.ts = recs[i].ts;
		rec.blkno = ItemPointerGetBlockNumber(&tids[i]);
		rec.index = ItemPointerGetOffsetNumber(&tids[i]) - 1;
		rec.key = (Pointer) recs[i].key;
		rec.value = (Pointer) recs[i].value;
		rec.headers = (Pointer) recs[i].headers;
		el_store_record(slot, rel, partition, &rec);
		el_insert_index_tuples(rri, slot, estate);
		ResetPerTupleExprContext(estate);
	}

	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
}

/* Appends records to one partition of a topic. */
void
el_produce_to_partition(ElTopic *topic, int32 partition, ElNewRecord *recs, int n)
{
	ElLog		log;

	el_log_open(&log, topic, partition);
	el_log_append(&log, recs, n, GetCurrentCommandId(true), el_insert_index_entries);
	el_log_close(&log);
}

static char *
el_topic_arg(FunctionCallInfo fcinfo, const char *function)
{
	/* Producing bypasses the executor, so it checks what the executor would. */
	PreventCommandIfReadOnly(function);

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("topic must not be null")));
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

/* ---- produce ---- */

/*
 * Both produce functions return rows of eventlog.record_metadata (since
 * 0.5.0; before, rows declared by OUT parameters).  A row type altered by
 * hand is refused rather than filled in part.
 */
static void
el_check_result_row(TupleDesc desc, const char *function)
{
	if (desc->natts != 2 ||
		TupleDescAttr(desc, 0)->atttypid != INT4OID || TupleDescAttr(desc, 0)->attisdropped ||
		TupleDescAttr(desc, 1)->atttypid != INT8OID || TupleDescAttr(desc, 1)->attisdropped)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the rows %s returns are not (partition integer, \"offset\" bigint)", function),
				 errhint("The row type eventlog.record_metadata was altered; the extension's scripts define it.")));
}

/*
 * The row produce() returns, described once per call site (fn_extra): a
 * statement that produces one record should not pay the type cache every
 * call.  Databases not yet updated to 0.5.0 still declare the row with OUT
 * parameters; the description is then blessed as a record type.
 */
static TupleDesc
el_produce_result_desc(FunctionCallInfo fcinfo)
{
	TupleDesc	desc = (TupleDesc) fcinfo->flinfo->fn_extra;
	MemoryContext oldcxt;

	if (desc != NULL)
		return desc;

	oldcxt = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "produce must return a composite type");
	el_check_result_row(desc, "eventlog.produce()");
	desc = BlessTupleDesc(desc);
	MemoryContextSwitchTo(oldcxt);

	fcinfo->flinfo->fn_extra = desc;
	return desc;
}

/*
 * produce(topic, value, key, headers, partition): one record.  The partition
 * is the one given, else Kafka's murmur2 of the key, else the next one round
 * robin.  Returns (partition, offset) at once, as Kafka acknowledges.
 */
static Datum
el_produce(FunctionCallInfo fcinfo, Oid value_type)
{
	char	   *name = el_topic_arg(fcinfo, "eventlog.produce()");
	ElTopic		topic;
	ElNewRecord rec;
	int32		partition;
	TupleDesc	desc = el_produce_result_desc(fcinfo);
	Datum		values[2];
	bool		nulls[2] = {false, false};

	el_topic_lookup(name, false, &topic);
	el_check_topic_privilege(&topic, ACL_INSERT);

	rec.offset = -1;
	rec.ts = GetCurrentTimestamp();
	rec.value = PG_ARGISNULL(1) ? NULL : el_value_bytes(PG_GETARG_DATUM(1), value_type);
	rec.key = PG_ARGISNULL(2) ? NULL : (struct varlena *) PG_GETARG_TEXT_PP(2);
	rec.headers = NULL;
	if (!PG_ARGISNULL(3))
	{
		el_check_headers(PG_GETARG_JSONB_P(3));
		rec.headers = (struct varlena *) PG_GETARG_JSONB_P(3);
	}

	if (!PG_ARGISNULL(4))
	{
		partition = PG_GETARG_INT32(4);
		el_check_partition(&topic, partition);
	}
	else if (rec.key)
		partition = el_partition_for_key(VARDATA_ANY(rec.key), VARSIZE_ANY_EXHDR(rec.key),
										 topic.npartitions);
	else
		partition = el_topic_spread(&topic);

	el_produce_to_partition(&topic, partition, &rec, 1);

	values[0] = Int32GetDatum(partition);
	values[1] = Int64GetDatum(rec.offset);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

Datum
eventlog_produce_bytea(PG_FUNCTION_ARGS)
{
	return el_produce(fcinfo, BYTEAOID);
}

Datum
eventlog_produce_text(PG_FUNCTION_ARGS)
{
	return el_produce(fcinfo, TEXTOID);
}

Datum
eventlog_produce_jsonb(PG_FUNCTION_ARGS)
{
	return el_produce(fcinfo, JSONBOID);
}

/* ---- produce_batch ---- */

/* Elements of a one-dimensional array argument (NULL array: *n = -1). */
static void
el_array_arg(FunctionCallInfo fcinfo, int argno, Oid elemtype, const char *what,
			 Datum **elems, bool **nulls, int *n)
{
	ArrayType  *arr;
	int16		typlen;
	bool		typbyval;
	char		typalign;

	*n = -1;
	if (PG_ARGISNULL(argno))
		return;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional array", what)));
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, elems, nulls, n);
}

/*
 * produce_batch(topic, values[], keys[], headers[], partition): many records
 * at once.  Keyed records go where their key hashes; key-less records of
 * one call all go to one partition (sticky per batch, as Kafka's sticky
 * partitioner), the next call's to the next.  One (partition, offset) row
 * per record, in input order.
 */
static Datum
el_produce_batch(FunctionCallInfo fcinfo, Oid value_type)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = el_topic_arg(fcinfo, "eventlog.produce_batch()");
	ElTopic		topic;
	Datum	   *vals;
	bool	   *valnulls;
	Datum	   *keys = NULL;
	bool	   *keynulls = NULL;
	Datum	   *hdrs = NULL;
	bool	   *hdrnulls = NULL;
	int			nvals;
	int			nkeys;
	int			nhdrs;
	int32		sticky = -1;
	int32	   *parts;
	int		   *counts;
	ElNewRecord *recs;
	TimestampTz now = GetCurrentTimestamp();
	int			i;
	int32		p;

	el_topic_lookup(name, false, &topic);
	el_check_topic_privilege(&topic, ACL_INSERT);

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("values must not be null"),
				 errhint("Pass an array of values; an empty array produces nothing.")));
	el_array_arg(fcinfo, 1, value_type, "values", &vals, &valnulls, &nvals);
	el_array_arg(fcinfo, 2, TEXTOID, "keys", &keys, &keynulls, &nkeys);
	el_array_arg(fcinfo, 3, JSONBOID, "headers", &hdrs, &hdrnulls, &nhdrs);
	if (nkeys >= 0 && nkeys != nvals)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("keys has %d elements and values has %d", nkeys, nvals),
				 errhint("Pass one key per value (NULL for none), or no keys at all.")));
	if (nhdrs >= 0 && nhdrs != nvals)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("headers has %d elements and values has %d", nhdrs, nvals),
				 errhint("Pass one headers object per value (NULL for none), or no headers at all.")));
	if (!PG_ARGISNULL(4))
	{
		sticky = PG_GETARG_INT32(4);
		el_check_partition(&topic, sticky);
	}

	InitMaterializedSRF(fcinfo, 0);
	el_check_result_row(rsinfo->setDesc, "eventlog.produce_batch()");
	if (nvals == 0)
		return (Datum) 0;

	/* Build the records and pick their partitions. */
	recs = palloc(sizeof(ElNewRecord) * nvals);
	parts = palloc(sizeof(int32) * nvals);
	counts = palloc0(sizeof(int) * topic.npartitions);
	for (i = 0; i < nvals; i++)
	{
		ElNewRecord *rec = &recs[i];

		rec->offset = -1;
		rec->ts = now;
		rec->value = valnulls[i] ? NULL : el_value_bytes(vals[i], value_type);
		rec->key = (keys && !keynulls[i]) ? (struct varlena *) PG_DETOAST_DATUM_PACKED(keys[i]) : NULL;
		rec->headers = NULL;
		if (hdrs && !hdrnulls[i])
		{
			Jsonb	   *jb = DatumGetJsonbP(hdrs[i]);

			el_check_headers(jb);
			rec->headers = (struct varlena *) jb;
		}

		if (!PG_ARGISNULL(4))
			parts[i] = sticky;
		else if (rec->key)
			parts[i] = el_partition_for_key(VARDATA_ANY(rec->key), VARSIZE_ANY_EXHDR(rec->key),
											topic.npartitions);
		else
		{
			if (sticky < 0)
				sticky = el_topic_spread(&topic);
			parts[i] = sticky;
		}
		counts[parts[i]]++;
	}

	/* Append partition by partition, in partition order (no deadlocks). */
	for (p = 0; p < topic.npartitions; p++)
	{
		ElNewRecord *group;
		int			n = 0;

		if (counts[p] == 0)
			continue;
		group = palloc(sizeof(ElNewRecord) * counts[p]);
		for (i = 0; i < nvals; i++)
			if (parts[i] == p)
				group[n++] = recs[i];
		el_produce_to_partition(&topic, p, group, n);
		n = 0;
		for (i = 0; i < nvals; i++)
			if (parts[i] == p)
				recs[i].offset = group[n++].offset;
		pfree(group);
	}

	for (i = 0; i < nvals; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int32GetDatum(parts[i]);
		values[1] = Int64GetDatum(recs[i].offset);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
eventlog_produce_batch_bytea(PG_FUNCTION_ARGS)
{
	return el_produce_batch(fcinfo, BYTEAOID);
}

Datum
eventlog_produce_batch_text(PG_FUNCTION_ARGS)
{
	return el_produce_batch(fcinfo, TEXTOID);
}

Datum
eventlog_produce_batch_jsonb(PG_FUNCTION_ARGS)
{
	return el_produce_batch(fcinfo, JSONBOID);
}
