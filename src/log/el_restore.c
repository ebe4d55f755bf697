/*
 * el_restore.c
 *		Keeping offsets across pg_dump and pg_restore.
 *
 * A dump holds each topic's committed records with their offsets, but not
 * the offsets of aborted records at the end of a partition (nor of records
 * removed by TRUNCATE): restored as they are, a partition would hand those
 * offsets out again, below positions that consumer groups already
 * committed, and the groups would skip the new records.
 *
 * save_offsets() records every partition's earliest offset and high
 * watermark in eventlog.partition_mark, a table that pg_dump dumps;
 * restore_offsets(), run once after a restore, raises each partition's next
 * offset to the greatest of its saved high watermark and the offsets its
 * groups committed.
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "compat/compat.h"
#include "log/log_internal.h"
#include "storage/storage.h"

PG_FUNCTION_INFO_V1(eventlog_save_offsets);
PG_FUNCTION_INFO_V1(eventlog_restore_offsets);

/* Names of all topics. */
static List *
el_all_topics(void)
{
	List	   *names = NIL;
	uint64		i;

	if (SPI_execute("SELECT topic FROM eventlog.topic ORDER BY topic", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the eventlog topic catalog");
	for (i = 0; i < SPI_processed; i++)
		names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	return names;
}

/* save_offsets(): every partition's earliest offset and high watermark. */
Datum
eventlog_save_offsets(PG_FUNCTION_ARGS)
{
	ListCell   *lc;
	int64		n = 0;

	PreventCommandIfReadOnly("eventlog.save_offsets()");
	SPI_connect();
	foreach(lc, el_all_topics())
	{
		ElTopic		topic;
		int32		p;

		if (!el_topic_lookup(lfirst(lc), true, &topic))
			continue;
		for (p = 0; p < topic.npartitions; p++)
		{
			ElLog		log;
			ElMetaInfo	meta;
			Oid			types[4] = {TEXTOID, INT4OID, INT8OID, INT8OID};
			Datum		args[4];

			el_log_open(&log, &topic, p);
			el_log_meta(&log, &meta);
			el_log_close(&log);
			args[0] = CStringGetTextDatum(topic.name);
			args[1] = Int32GetDatum(p);
			args[2] = Int64GetDatum(meta.earliest_offset);
			args[3] = Int64GetDatum(meta.next_offset);
			el_catalog_exec("INSERT INTO eventlog.partition_mark AS m (topic, partition, earliest_offset, high_watermark) "
							"VALUES ($1, $2, $3, $4) ON CONFLICT (topic, partition) DO UPDATE "
							"SET earliest_offset = EXCLUDED.earliest_offset, high_watermark = EXCLUDED.high_watermark, "
							"saved_at = now()",
							4, types, args, NULL);
			n++;
		}
	}
	SPI_finish();
	PG_RETURN_INT64(n);
}

/*
 * restore_offsets(): after a restore, raises each partition's next offset
 * to its saved high watermark and to every committed group offset.
 * Returns the partitions it moved.
 */
Datum
eventlog_restore_offsets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;

	PreventCommandIfReadOnly("eventlog.restore_offsets()");
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	foreach(lc, el_all_topics())
	{
		ElTopic		topic;
		int32		p;

		if (!el_topic_lookup(lfirst(lc), true, &topic))
			continue;
		if (!el_rel_ownercheck(topic.parent, GetUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of topic \"%s\"", topic.name),
					 errhint("Run eventlog.restore_offsets() as a superuser or the owner of every topic.")));
		for (p = 0; p < topic.npartitions; p++)
		{
			Oid			types[2] = {TEXTOID, INT4OID};
			Datum		args[2];
			bool		isnull;
			Datum		floor_datum;
			int64		floor = -1;
			ElLog		log;
			ElMetaInfo	meta;

			args[0] = CStringGetTextDatum(topic.name);
			args[1] = Int32GetDatum(p);
			if (SPI_execute_with_args("SELECT greatest((SELECT high_watermark FROM eventlog.partition_mark "
									  "                 WHERE topic = $1 AND partition = $2), "
									  "                (SELECT max(committed_offset) FROM eventlog.group_offset "
									  "                 WHERE topic = $1 AND partition = $2))",
									  2, types, args, NULL, true, 1) != SPI_OK_SELECT)
				elog(ERROR, "could not read the saved offsets");
			floor_datum = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
				floor = DatumGetInt64(floor_datum);

			el_log_open(&log, &topic, p);
			el_log_meta(&log, &meta);
			if (floor > meta.next_offset)
			{
				Datum		values[4];
				bool		nulls[4] = {false, false, false, false};

				el_log_set_floor(&log, floor);
				values[0] = CStringGetTextDatum(topic.name);
				values[1] = Int32GetDatum(p);
				values[2] = Int64GetDatum(meta.next_offset);
				values[3] = Int64GetDatum(floor);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
			el_log_close(&log);
		}
	}
	SPI_finish();
	return (Datum) 0;
}
