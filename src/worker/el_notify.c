/*
 * el_notify.c
 *		Coalesced notifications of new records, sent by the database worker.
 *
 * Producers bump a commit counter per relation slot at commit (el_wakeup.c)
 * and set the worker's latch.  The worker compares the counter of each
 * partition with what it saw last; for a partition that moved, it finds the
 * new last stable offset (reading on from the last one it found, so the
 * cost follows the new records, not the log), and for each topic with such
 * partitions it sends one NOTIFY on channel "eventlog.<topic>" with a JSON
 * payload:
 *
 *		{"topic": "orders", "partitions": {"0": 42, "2": 17}}
 *
 * Topics whose channel name would exceed 63 bytes are announced on channel
 * "eventlog" with the same payload.  A transaction that aborts bumps nothing,
 * so it is never announced.
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "log/log.h"
#include "storage/storage.h"
#include "util/util.h"
#include "worker/worker_internal.h"

#define EL_CHANNEL_PREFIX	"eventlog."

typedef struct ElNotifyEntry
{
	char		topic[256];		/* hash key */
	Oid			parent;
	int32		npartitions;
	Oid		   *leaves;			/* relation of each partition at the last look */
	uint64	   *stamps;			/* commit counter of each partition seen last */
	int64	   *lso;			/* last stable offsets seen, -1 if not yet */
	bool		seen;			/* still in the catalog this pass */
} ElNotifyEntry;

static HTAB *el_notify_topics = NULL;
static SPIPlanPtr el_topics_plan = NULL;

/*
 * The names of the topics, read from the catalog again only after a
 * relation changed (creating or dropping a topic creates or drops
 * relations) and at the rechecks, not at every pass.
 */
static List *el_topic_names = NIL;
static bool el_topic_names_stale = true;
static bool el_relcache_callback = false;

static void
el_notify_relcache_changed(Datum arg, Oid relid)
{
	el_topic_names_stale = true;
}

/*
 * Last stable offset of a partition now, reading on from the one known, and
 * whether committed records became readable since (*readable).  Read without
 * a snapshot, after the commit counters: a commit counted is also seen.
 *
 * It is where the reader stopped: at a record whose transaction is still
 * running, or past the last record it found.  Not the high watermark read
 * afterwards: a record appended meanwhile may belong to a transaction still
 * running, and would be announced before it is readable, and never looked at
 * again.
 */
static int64
el_partition_lso(ElLog *log, int64 from, bool *readable)
{
	ElLogReader *reader;
	ElRecord	rec;
	int64		lso;

	*readable = false;
	reader = el_log_reader_begin(log, NULL, Max(from, 0));
	while (el_log_reader_next(reader, &rec))
	{
		*readable = true;
		CHECK_FOR_INTERRUPTS();
	}
	lso = reader->position;
	el_log_reader_end(reader);
	return lso;
}

/* Channel of a topic: "eventlog.<topic>", or "eventlog" if too long. */
static void
el_channel(const char *topic, char *channel)
{
	if (strlen(EL_CHANNEL_PREFIX) + strlen(topic) < NAMEDATALEN)
		snprintf(channel, NAMEDATALEN, "%s%s", EL_CHANNEL_PREFIX, topic);
	else
		strlcpy(channel, "eventlog", NAMEDATALEN);
}

/*
 * Looks at one topic that el_notify_moved picked (or at every topic, with
 * recheck: COMMIT PREPARED counts nothing, and an abort can make records
 * behind it readable); returns true if it sent a notification.
 */
static bool
el_notify_topic(ElNotifyEntry *entry, ElTopic *topic, bool recheck)
{
	Oid		   *leaves = palloc(sizeof(Oid) * topic->npartitions);
	uint64	   *stamps = palloc(sizeof(uint64) * topic->npartitions);
	bool		first = entry->lso == NULL || entry->npartitions != topic->npartitions ||
		entry->parent != topic->parent;
	StringInfoData payload;
	int			changed = 0;
	int			p;

	for (p = 0; p < topic->npartitions; p++)
	{
		leaves[p] = el_topic_leaf(topic, p);
		stamps[p] = el_wakeup_stamp(&leaves[p], 1);
	}

	if (first)
	{
		/*
		 * A topic seen for the first time (new, grown, or after the worker
		 * started): announce whatever it holds, so that records produced
		 * right after create_topic are not missed.
		 */
		int64	   *old = entry->lso;
		int			oldn = entry->npartitions;

		entry->lso = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * topic->npartitions);
		for (p = 0; p < topic->npartitions; p++)
			entry->lso[p] = -1;
		if (old && entry->parent == topic->parent)
			memcpy(entry->lso, old, sizeof(int64) * Min(oldn, topic->npartitions));
		if (old)
			pfree(old);
		if (entry->stamps)
			pfree(entry->stamps);
		entry->stamps = MemoryContextAllocZero(TopMemoryContext, sizeof(uint64) * topic->npartitions);
		if (entry->leaves)
			pfree(entry->leaves);
		entry->leaves = MemoryContextAllocZero(TopMemoryContext, sizeof(Oid) * topic->npartitions);
		entry->npartitions = topic->npartitions;
		entry->parent = topic->parent;
	}

	initStringInfo(&payload);
	appendStringInfoString(&payload, "{\"topic\": ");
	escape_json(&payload, topic->name);
	appendStringInfoString(&payload, ", \"partitions\": {");
	for (p = 0; p < topic->npartitions; p++)
	{
		ElLog		log;
		int64		lso;
		bool		readable;

		/*
		 * A partition whose counter did not move has nothing new (slots
		 * shared by several relations only cause a needless look).
		 */
		entry->leaves[p] = leaves[p];
		if (!first && !recheck && stamps[p] == entry->stamps[p])
			continue;
		entry->stamps[p] = stamps[p];
		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(leaves[p])))
			continue;
		el_log_open(&log, topic, p);
		if (entry->lso[p] >= 0)
			lso = el_partition_lso(&log, entry->lso[p], &readable);
		else
		{
			/*
			 * The first look at a partition: its last stable offset from the
			 * prefix of the log known to be settled on, not by reading the
			 * log (after a restart, every topic is looked at first).  It is
			 * announced if the partition holds records.
			 */
			ElMetaInfo	meta;
			TransactionId held_by;

			lso = el_log_last_stable_offset(&log, &meta, &held_by);
			readable = lso > meta.earliest_offset;
		}
		el_log_close(&log);

		/* Announced when committed records became readable, not for aborts. */
		if (lso > entry->lso[p] && readable)
		{
			appendStringInfo(&payload, "%s\"%d\": " INT64_FORMAT, changed ? ", " : "", p, lso);
			changed++;
		}
		entry->lso[p] = lso;
	}
	appendStringInfoString(&payload, "}}");

	if (changed > 0)
	{
		char		channel[NAMEDATALEN];

		el_channel(topic->name, channel);
		Async_Notify(channel, payload.data);
		return true;
	}
	return false;
}

/*
 * Whether a topic needs a look: a commit counted in one of its partitions
 * since the last one, or a topic new or changed.  Needs no subtransaction:
 * it reads shared counters of the relations the last look found.
 */
static bool
el_notify_moved(ElNotifyEntry *entry, ElTopic *topic)
{
	int			p;

	if (entry->lso == NULL || entry->leaves == NULL ||
		entry->npartitions != topic->npartitions || entry->parent != topic->parent)
		return true;
	for (p = 0; p < topic->npartitions; p++)
		if (el_wakeup_stamp(&entry->leaves[p], 1) != entry->stamps[p])
			return true;
	return false;
}

typedef struct ElNotifyStep
{
	ElNotifyEntry *entry;
	ElTopic    *topic;
	bool		recheck;
	bool		notified;
} ElNotifyStep;

static void
el_notify_step(void *arg)
{
	ElNotifyStep *step = arg;

	step->notified = el_notify_topic(step->entry, step->topic, step->recheck);
}

/*
 * el_notify_topic in a subtransaction: a topic dropped (or a segment
 * dropped by retention) while the pass reads it makes that topic's check
 * fail, not the worker.  The topic is looked at afresh next time.
 */
static bool
el_notify_topic_guarded(ElNotifyEntry *entry, ElTopic *topic, bool recheck)
{
	ElNotifyStep step = {entry, topic, recheck, false};
	ErrorData  *edata = el_try(el_notify_step, &step);

	if (edata == NULL)
		return step.notified;
	ereport(DEBUG1,
			(errmsg("eventlog worker skipped topic \"%s\" in this pass: %s",
					topic->name, edata->message)));
	FreeErrorData(edata);
	entry->npartitions = 0;		/* start over with it */
	return false;
}

/* Frees what an entry keeps outside the hash table. */
static void
el_notify_entry_free(ElNotifyEntry *entry)
{
	if (entry->lso)
		pfree(entry->lso);
	if (entry->stamps)
		pfree(entry->stamps);
	if (entry->leaves)
		pfree(entry->leaves);
}

/*
 * Forgets what the passes saw.  While no session listens the worker makes no
 * pass, so the records committed meanwhile are not read then; the first pass
 * after a session listens again looks at every topic as for the first time,
 * announcing what each holds (its partitions read from the prefix last noted
 * as settled on, as after a restart).
 */
void
el_notify_forget(void)
{
	HASH_SEQ_STATUS status;
	ElNotifyEntry *entry;

	if (el_notify_topics == NULL)
		return;
	hash_seq_init(&status, el_notify_topics);
	while ((entry = hash_seq_search(&status)) != NULL)
		el_notify_entry_free(entry);
	hash_destroy(el_notify_topics);
	el_notify_topics = NULL;
	el_topic_names_stale = true;
}

/*
 * One pass over the database's topics, in the worker's transaction (the
 * notifications go out when it commits).  Returns true if any was sent.
 * recheck: look at every topic, not only those with counted commits.
 */
bool
el_notify_pass(bool recheck)
{
	HASH_SEQ_STATUS status;
	ElNotifyEntry *entry;
	List	   *names = NIL;
	ListCell   *lc;
	bool		notified = false;
	uint64		i;

	if (el_notify_topics == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = 256;
		ctl.entrysize = sizeof(ElNotifyEntry);
		el_notify_topics = hash_create("eventlog notified topics", 64, &ctl,
									   HASH_ELEM | HASH_STRINGS);
	}

	if (!el_relcache_callback)
	{
		CacheRegisterRelcacheCallback(el_notify_relcache_changed, (Datum) 0);
		el_relcache_callback = true;
	}

	SPI_connect();
	if (el_topic_names_stale || recheck)
	{
		MemoryContext oldcxt;

		/* A change while the catalog is read marks the list stale again. */
		el_topic_names_stale = false;
		if (el_topics_plan == NULL)
		{
			el_topics_plan = SPI_prepare("SELECT topic FROM eventlog.topic", 0, NULL);
			if (el_topics_plan == NULL)
				elog(ERROR, "could not prepare the eventlog topic catalog query");
			SPI_keepplan(el_topics_plan);
		}
		if (SPI_execute_plan(el_topics_plan, NULL, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the eventlog topic catalog");
		list_free_deep(el_topic_names);
		el_topic_names = NIL;
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		for (i = 0; i < SPI_processed; i++)
			el_topic_names = lappend(el_topic_names,
									 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		MemoryContextSwitchTo(oldcxt);
	}
	names = el_topic_names;

	hash_seq_init(&status, el_notify_topics);
	while ((entry = hash_seq_search(&status)) != NULL)
		entry->seen = false;

	foreach(lc, names)
	{
		char		key[256];
		ElTopic		topic;
		bool		found;

		if (!el_topic_lookup(lfirst(lc), true, &topic))
			continue;
		memset(key, 0, sizeof(key));
		strlcpy(key, topic.name, sizeof(key));
		entry = hash_search(el_notify_topics, key, HASH_ENTER, &found);
		if (!found)
		{
			entry->lso = NULL;
			entry->stamps = NULL;
			entry->leaves = NULL;
			entry->npartitions = 0;
			entry->parent = InvalidOid;
		}
		entry->seen = true;
		if (!recheck && !el_notify_moved(entry, &topic))
			continue;
		if (el_notify_topic_guarded(entry, &topic, recheck))
			notified = true;
	}
	SPI_finish();

	/* Forget dropped topics. */
	hash_seq_init(&status, el_notify_topics);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->seen)
			continue;
		el_notify_entry_free(entry);
		hash_search(el_notify_topics, entry->topic, HASH_REMOVE, NULL);
	}
	return notified;
}
