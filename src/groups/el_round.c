/*
 * el_round.c
 *		One round of reading for consume(): the member's partitions in turn.
 *
 * A round takes the partitions one after the other, each as far as the
 * budget of max_records goes, starting with the partition after the one
 * whose position the group committed last (the committed-offset row with
 * the highest seq).  So, as a Kafka consumer drains the records fetched
 * from one partition before going on to the next, a call over a backlog
 * returns the records of one partition, and the next call those of the
 * next: every partition with records waiting is read at least once in as
 * many calls as the member has partitions, and none starves behind a busy
 * one.  The place to go on from is kept in the rows the group commits
 * anyway, so it holds across sessions and members, and a call without
 * commit returns the same records again.
 *
 * Reading one partition per call is also what makes a call cheap: only the
 * partitions read are locked and written (one offset row per call instead
 * of one per partition of the member).  Which partitions those will be is
 * estimated from their high watermarks before the locks are taken, as the
 * fence requires (lock, then check ownership, then read); if they hold
 * fewer visible records than estimated, another group of partitions is
 * taken the same way.
 */
#include "postgres.h"

#include "utils/snapmgr.h"

#include "groups/el_group.h"
#include "log/log.h"
#include "storage/storage.h"

/* One partition of a round. */
typedef struct ElRoundPart
{
	int32		partition;
	bool		found;			/* the group has a committed offset here */
	int64		committed;		/* ... and this is it */
	int64		seq;			/* ... in the row of this seq */
	bool		opened;			/* log opened and metapage read */
	ElLog		log;
	ElMetaInfo	meta;
	int64		start;			/* position read from */
	int64		next;			/* position after what was read */
	bool		locked;			/* its offset row is locked (commit only) */
} ElRoundPart;

/*
 * The position of a partition as read (committed, or the earliest retained
 * offset), after checking that it is not beyond the log.
 */
static int64
el_round_start(const char *grp, ElTopic *topic, ElRoundPart *rp, bool found, int64 committed)
{
	if (!found)
		return rp->meta.earliest_offset;

	/*
	 * A position beyond the log means the log forgot offsets it handed out
	 * (a restore without restore_offsets()): reading on would skip the
	 * records produced there next.
	 */
	if (committed > rp->meta.next_offset)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("committed offset " INT64_FORMAT " of consumer group \"%s\" is beyond the high watermark " INT64_FORMAT " of partition %d of topic \"%s\"",
						committed, grp, rp->meta.next_offset, rp->partition, topic->name),
				 errdetail("The partition lost offsets it had handed out, as happens when a database is restored from a dump."),
				 errhint("Run SELECT * FROM eventlog.restore_offsets() once after a restore.")));

	/* Below the earliest retained record: start at the earliest. */
	return Max(committed, rp->meta.earliest_offset);
}

/* Opens a partition's log and reads its metapage, once. */
static void
el_round_open(const char *grp, ElTopic *topic, ElRoundPart *rp)
{
	if (rp->opened)
		return;
	el_log_open(&rp->log, topic, rp->partition);
	el_log_meta(&rp->log, &rp->meta);
	rp->opened = true;
	rp->start = el_round_start(grp, topic, rp, rp->found, rp->committed);
	rp->next = rp->start;
}

/* Records past the partition's position, visible or not yet. */
static int64
el_round_backlog(ElRoundPart *rp)
{
	return Max(rp->meta.next_offset - rp->start, 0);
}

/*
 * Reads up to max records of one partition from its position under a fresh
 * snapshot into the result, and moves the position past them and past the
 * aborted records skipped after them (so a trailing aborted record does not
 * leave a lag behind).  Returns how many.
 */
static int
el_round_read(ElRowOut *out, ElRoundPart *rp, int max)
{
	Snapshot	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	ElLogReader *reader = el_log_reader_begin(&rp->log, snapshot, rp->next);
	ElRecord	rec;
	int			n = 0;

	while (n < max && el_log_reader_next(reader, &rec))
	{
		el_emit_record(out, rp->partition, &rec);
		n++;
	}
	rp->next = Max(rp->next, reader->position);
	el_log_reader_end(reader);
	UnregisterSnapshot(snapshot);
	return n;
}

/*
 * The fence for parts[from..to) and, the first time, for every partition
 * the group has no row for yet (they get theirs at the lock, so that a group
 * that committed once has a position in each of its partitions): lock the
 * offset rows without waiting, then check that the member still owns the
 * partitions, then take the positions the locks found.  Partitions another
 * transaction holds, or the member lost, are not read.
 */
static void
el_round_fence(const char *grp, const char *member, ElTopic *topic,
			   ElRoundPart *parts, int nparts, int from, int to, bool first)
{
	int32	   *want = palloc(sizeof(int32) * nparts);
	int64	   *initial = palloc(sizeof(int64) * nparts);
	bool	   *locked = palloc(sizeof(bool) * nparts);
	int64	   *pos = palloc(sizeof(int64) * nparts);
	int64	   *seq = palloc(sizeof(int64) * nparts);
	int		   *which = palloc(sizeof(int) * nparts);
	int32	   *owned = NULL;
	int			nowned = 0;
	int			nwant = 0;
	int			i;

	for (i = 0; i < nparts; i++)
	{
		ElRoundPart *rp = &parts[i];
		bool		in_round = i >= from && i < to && (el_round_backlog(rp) > 0 || !rp->found);

		if (rp->locked || !(in_round || (first && !rp->found)))
			continue;
		el_round_open(grp, topic, rp);
		want[nwant] = rp->partition;
		initial[nwant] = rp->meta.earliest_offset;
		which[nwant] = i;
		nwant++;
	}
	if (nwant == 0)
		return;

	el_offsets_lock(grp, topic->name, want, nwant, initial, locked, pos, seq);
	if (member)
		nowned = el_group_member_partitions(grp, member, topic, &owned);
	for (i = 0; i < nwant; i++)
	{
		ElRoundPart *rp = &parts[which[i]];
		int			k;

		if (!locked[i])
			continue;
		for (k = 0; member && k < nowned && owned[k] != rp->partition; k++)
			;
		if (member && k == nowned)
			continue;
		rp->locked = true;
		rp->found = true;
		rp->committed = pos[i];
		rp->seq = seq[i];
		rp->start = el_round_start(grp, topic, rp, true, pos[i]);
		rp->next = rp->start;
	}
}

/*
 * One round: reads up to max_records records of the partitions parts[]
 * in turn into out, and with commit takes the fence first and commits the
 * new positions after.  Returns the number of records.
 */
int
el_consume_round(ElRowOut *out, const char *grp, const char *member, ElTopic *topic,
				 const int32 *parts, int nparts, bool commit, int max_records)
{
	ElRoundPart *rp = palloc0(sizeof(ElRoundPart) * Max(nparts, 1));
	int64	   *committed = palloc(sizeof(int64) * Max(nparts, 1));
	int64	   *seqs = palloc(sizeof(int64) * Max(nparts, 1));
	bool	   *found = palloc(sizeof(bool) * Max(nparts, 1));
	int			first = 0;
	int			got = 0;
	int			done = 0;
	int			i;

	/* Positions as committed; the round starts after the latest commit. */
	el_offsets_get(grp, topic->name, parts, nparts, committed, found, seqs);
	for (i = 0; i < nparts; i++)
		if (found[i] && (!found[first] || seqs[i] > seqs[first]))
			first = i;
	if (nparts > 0 && found[first])
		first = (first + 1) % nparts;
	for (i = 0; i < nparts; i++)
	{
		int			j = (first + i) % nparts;

		rp[i].partition = parts[j];
		rp[i].found = found[j];
		rp[i].committed = committed[j];
		rp[i].seq = seqs[j];
	}

	while (done < nparts && got < max_records)
	{
		int			from = done;
		int64		backlog = 0;

		/* The next partitions whose records may cover what is left. */
		while (done < nparts && backlog < max_records - got)
		{
			el_round_open(grp, topic, &rp[done]);
			backlog += el_round_backlog(&rp[done]);
			done++;
		}
		if (commit)
			el_round_fence(grp, member, topic, rp, nparts, from, done, from == 0);
		for (i = from; i < done && got < max_records; i++)
		{
			if (commit && !rp[i].locked)
				continue;
			if (el_round_backlog(&rp[i]) > 0)
				got += el_round_read(out, &rp[i], max_records - got);
		}
	}

	/* The new positions, in the order read: the last one read is the latest. */
	if (commit)
	{
		int32	   *ids = palloc(sizeof(int32) * Max(nparts, 1));
		int64	   *to = palloc(sizeof(int64) * Max(nparts, 1));
		int64	   *prev = palloc(sizeof(int64) * Max(nparts, 1));
		int			nmoved = 0;

		for (i = 0; i < nparts; i++)
			if (rp[i].locked && rp[i].next > rp[i].start)
			{
				ids[nmoved] = rp[i].partition;
				to[nmoved] = rp[i].next;
				prev[nmoved] = rp[i].seq;
				nmoved++;
			}
		el_offsets_set(grp, topic->name, ids, nmoved, to, prev);
	}
	for (i = 0; i < nparts; i++)
		if (rp[i].opened)
			el_log_close(&rp[i].log);
	return got;
}
