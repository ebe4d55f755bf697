/*
 * el_fetch.c
 *		fetch(): reading one partition from an offset, and partition_state().
 *
 * fetch is the low-level read consumers are built on: records of one
 * partition in offset order under the caller's snapshot, stopping before the
 * first record whose producing transaction is still open.
 */
#include "postgres.h"

#include "access/relation.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "log/log_internal.h"
#include "storage/storage.h"

PG_FUNCTION_INFO_V1(eventlog_fetch);
PG_FUNCTION_INFO_V1(eventlog_partition_state);

Datum
eventlog_fetch(PG_FUNCTION_ARGS)
{
	char	   *name;
	ElTopic		topic;
	int32		partition;
	int64		offset;
	int32		max_records;
	ElLog		log;
	ElMetaInfo	meta;
	ElLogReader *reader;
	ElRecord	rec;
	ElRowOut	out;
	int32		n = 0;

	el_require_arg(fcinfo, 0, "topic");
	el_require_arg(fcinfo, 1, "partition");
	el_require_arg(fcinfo, 2, "offset");
	el_require_arg(fcinfo, 3, "max_records");
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	partition = PG_GETARG_INT32(1);
	offset = PG_GETARG_INT64(2);
	max_records = PG_GETARG_INT32(3);

	el_topic_lookup(name, false, &topic);
	el_check_topic_privilege(&topic, ACL_SELECT);
	el_check_partition(&topic, partition);
	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset must not be negative"),
				 errhint("Offsets start at 0; fetch from 0 to read a partition from its earliest retained record.")));
	if (max_records <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must be positive")));

	el_log_open(&log, &topic, partition);
	el_log_meta(&log, &meta);
	if (offset > meta.next_offset)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset " INT64_FORMAT " is beyond the high watermark " INT64_FORMAT " of partition %d of topic \"%s\"",
						offset, meta.next_offset, partition, name),
				 errhint("Fetch from an offset up to the high watermark; eventlog.partitions shows it.")));

	el_rowout_begin(&out, fcinfo, name);

	reader = el_log_reader_begin(&log, GetActiveSnapshot(), offset);
	while (n < max_records && el_log_reader_next(reader, &rec))
	{
		el_emit_record(&out, partition, &rec);
		n++;
		CHECK_FOR_INTERRUPTS();
	}
	el_log_reader_end(reader);
	el_rowout_end(&out);
	el_log_close(&log);
	return (Datum) 0;
}

/*
 * partition_state(relation): earliest offset, high watermark, last stable
 * offset and the transaction holding readers back, of a topic partition's
 * relation (over its segments) or of one eventlog relation.
 */
Datum
eventlog_partition_state(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel;
	ElMetaInfo	meta;
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, true};
	TransactionId held_by;
	int64		lso;

	rel = relation_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		ElLog		log;

		relation_close(rel, AccessShareLock);
		el_log_open_relation(&log, relid);
		lso = el_log_last_stable_offset(&log, &meta, &held_by);
		el_log_close(&log);
		rel = NULL;
	}
	else if (rel->rd_rel->relkind != RELKIND_RELATION || !el_is_eventlog_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation \"%s\" is not stored by the eventlog access method",
						RelationGetRelationName(rel))));
	else
	{
		el_read_meta(rel, &meta);
		lso = el_last_stable_offset(rel, &meta, &held_by);
	}
	if (TransactionIdIsValid(held_by))
	{
		values[3] = TransactionIdGetDatum(held_by);
		nulls[3] = false;
	}
	if (rel)
		relation_close(rel, AccessShareLock);

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "partition_state must return a composite type");
	values[0] = Int64GetDatum(meta.earliest_offset);
	values[1] = Int64GetDatum(meta.next_offset);
	values[2] = Int64GetDatum(lso);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
