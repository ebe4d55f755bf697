/*
 * el_migrate.c
 *		The update to version 0.3.0: partitions made by earlier versions
 *		(one eventlog relation each) become the first segment of a relation
 *		partitioned by offset.
 *
 * This runs from the update script, but the relations it makes belong to
 * the topics, not to the extension: objects created while an extension
 * script runs would otherwise become members of the extension (and be
 * dropped with it, and left out of dumps).
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "log/log_internal.h"
#include "storage/storage.h"

PG_FUNCTION_INFO_V1(eventlog_migrate_to_segments);

static void
el_migrate_exec(const char *sql)
{
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not execute: %s", sql);
}

/*
 * Migrates one partition: detach the relation, rename it to its segment
 * name, put a relation partitioned by offset in its place (owned by the
 * topic's owner) and attach the old one below it, with room up to the next
 * multiple of the segment size past its high watermark.  Records, offsets,
 * indexes, TOAST and privileges of the old relation stay as they are.
 */
static void
el_migrate_partition(ElTopic *topic, int32 partition, int64 segment_records)
{
	Oid			leaf = el_topic_leaf(topic, partition);
	char	   *leafname = get_rel_name(leaf);
	char	   *topicrel = get_rel_name(topic->parent);
	char	   *owner = GetUserNameFromId(el_rel_owner(topic->parent), false);
	char		segname[NAMEDATALEN];
	ElLog		log;
	ElMetaInfo	meta;
	int64		upper;

	if (get_rel_relkind(leaf) != RELKIND_RELATION)
		return;
	el_log_open(&log, topic, partition);
	el_log_meta(&log, &meta);
	el_log_close(&log);
	upper = (meta.next_offset / segment_records + 1) * segment_records;

	el_segment_relname(leafname, 0, segname);
	el_migrate_exec(psprintf("ALTER TABLE eventlog_topics.%s DETACH PARTITION eventlog_topics.%s",
							 quote_identifier(topicrel), quote_identifier(leafname)));
	el_migrate_exec(psprintf("ALTER TABLE eventlog_topics.%s RENAME TO %s",
							 quote_identifier(leafname), quote_identifier(segname)));
	el_migrate_exec(psprintf("CREATE TABLE eventlog_topics.%s PARTITION OF eventlog_topics.%s "
							 "FOR VALUES IN (%d) PARTITION BY RANGE (\"offset\")",
							 quote_identifier(leafname), quote_identifier(topicrel), partition));
	el_migrate_exec(psprintf("ALTER TABLE eventlog_topics.%s OWNER TO %s",
							 quote_identifier(leafname), quote_identifier(owner)));
	el_migrate_exec(psprintf("ALTER TABLE eventlog_topics.%s ATTACH PARTITION eventlog_topics.%s "
							 "FOR VALUES FROM (0) TO (" INT64_FORMAT ")",
							 quote_identifier(leafname), quote_identifier(segname), upper));
}

/* Migrates every partition of the topics listed; returns how many. */
static int64
el_migrate_topics(List *topics, int64 *spans)
{
	ListCell   *lc;
	int64		n = 0;

	foreach(lc, topics)
	{
		ElTopic		topic;
		int32		p;

		if (!el_topic_lookup(lfirst(lc), true, &topic))
			continue;
		for (p = 0; p < topic.npartitions; p++)
		{
			el_migrate_partition(&topic, p, spans[foreach_current_index(lc)]);
			n++;
		}
	}
	return n;
}

/* migrate_to_segments(): every partition of every topic; returns how many. */
Datum
eventlog_migrate_to_segments(PG_FUNCTION_ARGS)
{
	bool		save_creating = creating_extension;
	Oid			save_object = CurrentExtensionObject;
	List	   *volatile topics = NIL;
	int64	   *spans;
	int64		n;
	uint64		i;

	SPI_connect();
	if (SPI_execute("SELECT topic, segment_records FROM eventlog.topic ORDER BY topic",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the eventlog topic catalog");
	spans = palloc(sizeof(int64) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		topics = lappend(topics, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		spans[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}

	creating_extension = false;
	CurrentExtensionObject = InvalidOid;
	PG_TRY();
	{
		n = el_migrate_topics(topics, spans);
	}
	PG_FINALLY();
	{
		creating_extension = save_creating;
		CurrentExtensionObject = save_object;
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_INT64(n);
}
