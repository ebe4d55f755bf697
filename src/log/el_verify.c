/*
 * el_verify.c
 *		verify(topic): every segment of every partition of a topic checked
 *		against the format's invariants, as amcheck does for heap and btree.
 *
 * The storage layer checks each relation (storage/el_verify.c); this layer
 * gives it the bounds of each segment and checks what spans segments: that
 * offsets keep increasing from one segment to the next.
 */
#include "postgres.h"

#include "access/relation.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "log/log_internal.h"
#include "storage/storage.h"

PG_FUNCTION_INFO_V1(eventlog_verify);

typedef struct ElVerifyOut
{
	ReturnSetInfo *rsinfo;
	int32		partition;
	Oid			segment;
} ElVerifyOut;

static void
el_verify_row(BlockNumber blkno, const char *problem, void *arg)
{
	ElVerifyOut *out = (ElVerifyOut *) arg;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	values[0] = Int32GetDatum(out->partition);
	values[1] = ObjectIdGetDatum(out->segment);
	if (blkno == InvalidBlockNumber)
		nulls[2] = true;
	else
		values[2] = Int64GetDatum((int64) blkno);
	values[3] = CStringGetTextDatum(problem);
	tuplestore_putvalues(out->rsinfo->setResult, out->rsinfo->setDesc, values, nulls);
}

/*
 * verify(topic) → (partition, segment, block, problem): one row per problem
 * found, none for a sound topic.
 */
Datum
eventlog_verify(PG_FUNCTION_ARGS)
{
	char	   *name = el_text_arg(fcinfo, 0, "topic");
	ElTopic		topic;
	ElVerifyOut out;
	int32		partition;

	el_topic_lookup(name, false, &topic);
	el_check_topic_privilege(&topic, ACL_SELECT);
	InitMaterializedSRF(fcinfo, 0);
	out.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	for (partition = 0; partition < topic.npartitions; partition++)
	{
		ElLog		log;
		int			seg;
		int64		prev_next = -1;
		Oid			prev_rel = InvalidOid;

		el_log_open(&log, &topic, partition);
		out.partition = partition;
		for (seg = 0; seg < log.nsegments; seg++)
		{
			Relation	rel;
			ElMetaInfo	meta;

			CHECK_FOR_INTERRUPTS();
			rel = el_log_open_segment(&log, seg, AccessShareLock);
			if (rel == NULL)
				continue;		/* dropped by retention meanwhile */
			out.segment = RelationGetRelid(rel);
			if (el_verify_relation(rel, partition, log.segments[seg].lo, log.segments[seg].hi,
								   el_verify_row, &out) == 0)
			{
				/* sound: its offsets follow the segment before it */
				el_read_meta(rel, &meta);
				if (meta.exists && meta.next_offset > meta.earliest_offset)
				{
					if (prev_next > meta.earliest_offset)
					{
						char		problem[256];

						snprintf(problem, sizeof(problem),
								 "first offset " INT64_FORMAT " is below the next offset " INT64_FORMAT " of segment %u before it",
								 meta.earliest_offset, prev_next, prev_rel);
						el_verify_row(InvalidBlockNumber, problem, &out);
					}
					prev_next = meta.next_offset;
					prev_rel = out.segment;
				}
			}
			relation_close(rel, AccessShareLock);
		}
		el_log_close(&log);
	}
	return (Datum) 0;
}
