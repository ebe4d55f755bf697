/*
 * el_rowout.c
 *		Result rows of fetch() and consume().
 *
 * Every record read becomes one row (topic, partition, offset, key, value,
 * headers, ts) of a materialised result.  Formed by heap_form_minimal_tuple
 * through tuplestore_putvalues, which handles any row shape, these rows were
 * a third of the instructions of a consume call: the generic code looks at
 * every attribute's type on every row.  The shape here is fixed, so the row
 * is laid out directly, by the same rules (short varlena headers where the
 * type allows them, alignment of the others, a null bitmap only when a value
 * is null, padding zeroed), in a buffer reused from row to row, and handed
 * to the tuplestore, which copies it, as a minimal tuple.
 *
 * The tuplestore keeps its rows in memory of this backend that outlives the
 * statement (see el_rows_context below), not in the query's memory.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "log/log.h"
#include "storage/storage.h"

#define EL_ROW_NATTS 7

static const Oid el_row_types[EL_ROW_NATTS] = {
	TEXTOID, INT4OID, INT8OID, TEXTOID, BYTEAOID, JSONBOID, TIMESTAMPTZOID
};

/* Whether desc is exactly the row of fetch() and consume(), as laid out below. */
static bool
el_row_shape(TupleDesc desc)
{
	int			i;

	if (desc->natts != EL_ROW_NATTS)
		return false;
	for (i = 0; i < EL_ROW_NATTS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->atttypid != el_row_types[i] || att->attisdropped)
			return false;
		if (att->attlen == -1 &&
			(att->attalign != TYPALIGN_INT || att->attstorage == TYPSTORAGE_PLAIN))
			return false;
	}
	return TupleDescAttr(desc, 1)->attalign == TYPALIGN_INT &&
		TupleDescAttr(desc, 2)->attalign == TYPALIGN_DOUBLE && TupleDescAttr(desc, 2)->attbyval &&
		TupleDescAttr(desc, 6)->attalign == TYPALIGN_DOUBLE && TupleDescAttr(desc, 6)->attbyval;
}

/*
 * Memory for result rows.  A call that returns a thousand records of 110
 * bytes fills a quarter of a megabyte of tuplestore.  In the query's memory,
 * as InitMaterializedSRF() makes it, that went back to malloc at the end of
 * every statement and from there to the kernel, and the next call faulted
 * its pages in again: 26 page faults per call, a tenth of the time of a
 * fetch() of 1,000 records.  The rows are kept instead in one context of
 * the backend whose first block stays allocated.  It is emptied when no
 * result made in it can be in use any more: each statement that makes one
 * counts itself in and, when its query memory goes (at its end, or at an
 * error), out again.  Results bigger than the first block get further blocks
 * that the emptying frees.
 */
#define EL_ROWS_KEEP	(512 * 1024)

static MemoryContext el_rows_cxt = NULL;
static int	el_rows_live = 0;

/*
 * The query memory counted in last, while it lives: a statement that calls
 * fetch() again and again (a LATERAL join over offsets) counts in once.
 */
static MemoryContext el_rows_last_query = NULL;

static void
el_rows_release(void *arg)
{
	Assert(el_rows_live > 0);
	if (arg == (void *) el_rows_last_query)
		el_rows_last_query = NULL;
	if (--el_rows_live == 0)
		MemoryContextReset(el_rows_cxt);
}

static MemoryContext
el_rows_context(MemoryContext query_cxt)
{
	MemoryContextCallback *cb;

	if (el_rows_cxt == NULL)
		el_rows_cxt = AllocSetContextCreate(TopMemoryContext, "eventlog result rows",
											EL_ROWS_KEEP, EL_ROWS_KEEP,
											ALLOCSET_DEFAULT_MAXSIZE);
	if (query_cxt == el_rows_last_query)
		return el_rows_cxt;

	/* Allocated before counting in: nothing can fail in between. */
	cb = MemoryContextAlloc(query_cxt, sizeof(MemoryContextCallback));
	cb->func = el_rows_release;
	cb->arg = (void *) query_cxt;
	el_rows_live++;
	MemoryContextRegisterResetCallback(query_cxt, cb);
	el_rows_last_query = query_cxt;
	return el_rows_cxt;
}

/*
 * Sets up the materialised result of fetch() or consume(), as
 * InitMaterializedSRF() does, with the rows in el_rows_context().
 */
void
el_rowout_begin(ElRowOut *out, FunctionCallInfo fcinfo, const char *topic)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext query_cxt;
	MemoryContext oldcxt;
	TupleDesc	desc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("materialize mode required, but it is not allowed in this context")));

	query_cxt = rsinfo->econtext->ecxt_per_query_memory;
	oldcxt = MemoryContextSwitchTo(query_cxt);
	/* The row the caller expects is the declared one; checked below. */
	if (rsinfo->expectedDesc != NULL)
		desc = CreateTupleDescCopy(rsinfo->expectedDesc);
	else if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	/* The SQL declarations of fetch() and consume() give this shape. */
	if (!el_row_shape(desc))
		elog(ERROR, "unexpected result row type for eventlog records");

	MemoryContextSwitchTo(el_rows_context(query_cxt));
	rsinfo->setResult = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
											  false, work_mem);
	MemoryContextSwitchTo(oldcxt);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setDesc = desc;

	out->rsinfo = rsinfo;
	out->topic = cstring_to_text(topic);
	out->buf = NULL;
	out->bufsize = 0;
}

void
el_rowout_end(ElRowOut *out)
{
	if (out->buf)
		pfree(out->buf);
	out->buf = NULL;
}

/* A value to hand out: brought in from TOAST if stored there. */
static Pointer
el_out_value(Pointer p)
{
	if (p && VARATT_IS_EXTERNAL(p))
		return (Pointer) detoast_external_attr((struct varlena *) p);
	return p;
}

/*
 * Places a varlena at off of data as heap_fill_tuple does for a type that
 * allows short headers: a short one as it is, a small uncompressed one
 * converted to a short header, any other int-aligned.  Returns the offset
 * after it.
 */
static Size
el_row_varlena(char *data, Size off, Pointer p)
{
	Size		len;

	if (VARATT_IS_SHORT(p))
	{
		len = VARSIZE_SHORT(p);
		memcpy(data + off, p, len);
		return off + len;
	}
	if (VARATT_CAN_MAKE_SHORT(p))
	{
		len = VARATT_CONVERTED_SHORT_SIZE(p);
		SET_VARSIZE_SHORT(data + off, len);
		memcpy(data + off + 1, VARDATA(p), len - 1);
		return off + len;
	}
	off = INTALIGN(off);
	len = VARSIZE_ANY(p);
	memcpy(data + off, p, len);
	return off + len;
}

/* Lays out the row's data; returns its length. */
static Size
el_row_data(char *data, text *topic, int32 partition, ElRecord *rec, Pointer *vars)
{
	Size		off = 0;
	int64		offset = rec->offset;
	TimestampTz ts = rec->ts;

	off = el_row_varlena(data, off, (Pointer) topic);
	off = INTALIGN(off);
	memcpy(data + off, &partition, sizeof(int32));
	off += sizeof(int32);
	off = DOUBLEALIGN(off);
	memcpy(data + off, &offset, sizeof(int64));
	off += sizeof(int64);
	for (int i = 0; i < 3; i++)
		if (vars[i])
			off = el_row_varlena(data, off, vars[i]);
	off = DOUBLEALIGN(off);
	memcpy(data + off, &ts, sizeof(TimestampTz));
	return off + sizeof(TimestampTz);
}

/*
 * Adds a record to the result, in the row shape of fetch() and consume():
 * (topic, partition, offset, key, value, headers, ts).
 */
void
el_emit_record(ElRowOut *out, int32 partition, ElRecord *rec)
{
	Pointer		vars[3];
	bool		hasnull;
	Size		hoff;
	Size		len;
	MinimalTuple tuple;
	HeapTupleData row;

	vars[0] = el_out_value(rec->key);
	vars[1] = el_out_value(rec->value);
	vars[2] = el_out_value(rec->headers);

	/*
	 * Laid out once in a buffer reused from row to row, zeroed as far as the
	 * row can reach: each value at most its size plus its alignment.  The
	 * buffer starts MINIMAL_TUPLE_OFFSET bytes before the minimal tuple, so
	 * that it can be handed to the tuplestore as the heap tuple it is part
	 * of: tuplestore_puttuple() copies out the minimal tuple, as
	 * tuplestore_puttupleslot() would, without a slot to store it in and
	 * clear (a twentieth of a row's cost).
	 */
	hasnull = vars[0] == NULL || vars[1] == NULL || vars[2] == NULL;
	hoff = MAXALIGN(SizeofMinimalTupleHeader + (hasnull ? BITMAPLEN(EL_ROW_NATTS) : 0));
	len = hoff + VARSIZE_ANY(out->topic) + (ALIGNOF_INT - 1) + sizeof(int32) +
		2 * (sizeof(int64) + MAXIMUM_ALIGNOF - 1);
	for (int i = 0; i < 3; i++)
		if (vars[i])
			len += VARSIZE_ANY(vars[i]) + (ALIGNOF_INT - 1);
	if (MINIMAL_TUPLE_OFFSET + len > out->bufsize)
	{
		out->bufsize = Max(MINIMAL_TUPLE_OFFSET + len, 2 * out->bufsize);
		out->buf = out->buf ? repalloc(out->buf, out->bufsize) :
			MemoryContextAlloc(GetMemoryChunkContext(out->topic), out->bufsize);
	}
	tuple = (MinimalTuple) (out->buf + MINIMAL_TUPLE_OFFSET);
	memset(tuple, 0, len);
	HeapTupleHeaderSetNatts(tuple, EL_ROW_NATTS);
	tuple->t_hoff = hoff + MINIMAL_TUPLE_OFFSET;
	tuple->t_infomask = HEAP_HASVARWIDTH;
	if (hasnull)
	{
		tuple->t_infomask |= HEAP_HASNULL;
		/* topic, partition, offset and ts are never null */
		tuple->t_bits[0] = 0x07 | 0x40;
		for (int i = 0; i < 3; i++)
			if (vars[i])
				tuple->t_bits[0] |= 1 << (3 + i);
	}
	tuple->t_len = hoff + el_row_data((char *) tuple + hoff, out->topic, partition, rec, vars);

	row.t_len = tuple->t_len + MINIMAL_TUPLE_OFFSET;
	row.t_data = (HeapTupleHeader) out->buf;
	row.t_tableOid = InvalidOid;
	ItemPointerSetInvalid(&row.t_self);
	tuplestore_puttuple(out->rsinfo->setResult, &row);
}
