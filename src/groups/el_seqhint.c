/*
 * el_seqhint.c
 *		Where a lookup of a partition's committed offset may start.
 *
 * group_offset keeps one row version per commit: a partition's current row
 * is the one with the highest seq, and the rows it replaced stay in the
 * primary key's index until VACUUM.  A lookup by (group, topic, partition)
 * goes straight to the newest entry, but a btree scan reads every matching
 * entry of the leaf page it lands on, so between two vacuums the lookups of
 * a busy consumer grow slower with every commit (a third of a consume call,
 * measured).  A lookup that also says "seq >= s" reads only the entries
 * from s on.
 *
 * So each backend remembers the seq of the row its last lookup found, per
 * partition of the last few (group, topic) pairs it read.  It is a hint and
 * never decides a result: a partition's rows are replaced by rows with
 * higher seqs, so the current row is at or above any seq seen before, unless
 * it went away (its transaction rolled back, the group or topic was deleted
 * and made again); a lookup that finds nothing from its hint on looks again
 * without it (el_group.c).
 *
 * With the seq goes the row's tuple id, where el_offsetrows.c looks first,
 * without an index scan at all: rows are never updated in place, so a tuple
 * id names one row until VACUUM frees it, and what is found there is
 * checked (the partition's key, the seq, visibility) before it is used.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "groups/el_group.h"

#define EL_SEQHINT_ENTRIES 8

typedef struct ElSeqHint
{
	char	   *grp;			/* NULL: unused */
	char	   *topic;
	int32		nslots;			/* seqs[partition] for partition < nslots */
	int64	   *seqs;			/* 0: nothing known */
	ItemPointerData *tids;		/* invalid: nothing known */
} ElSeqHint;

static ElSeqHint el_hints[EL_SEQHINT_ENTRIES];
static int	el_hint_victim = 0;

static ElSeqHint *
el_seqhint_find(const char *grp, const char *topic)
{
	int			i;

	for (i = 0; i < EL_SEQHINT_ENTRIES; i++)
		if (el_hints[i].grp && strcmp(el_hints[i].grp, grp) == 0 &&
			strcmp(el_hints[i].topic, topic) == 0)
			return &el_hints[i];
	return NULL;
}

/*
 * Fills from[i] with where partition parts[i]'s lookup may start (0:
 * anywhere), and tids[i] with where its row was last seen (invalid: unknown).
 */
void
el_seqhint_get(const char *grp, const char *topic, const int32 *parts, int n, int64 *from,
			   ItemPointerData *tids)
{
	ElSeqHint  *hint = el_seqhint_find(grp, topic);
	int			i;

	for (i = 0; i < n; i++)
	{
		bool		known = hint && parts[i] >= 0 && parts[i] < hint->nslots;

		from[i] = known ? hint->seqs[parts[i]] : 0;
		if (known)
			tids[i] = hint->tids[parts[i]];
		else
			ItemPointerSetInvalid(&tids[i]);
	}
}

/* Remembers the seqs and tuple ids of the rows a lookup found (where found[i]). */
void
el_seqhint_put(const char *grp, const char *topic, const int32 *parts, int n,
			   const bool *found, const int64 *seqs, const ItemPointerData *tids)
{
	ElSeqHint  *hint = el_seqhint_find(grp, topic);
	int32		maxpart = -1;
	int			i;

	for (i = 0; i < n; i++)
		if (found[i])
			maxpart = Max(maxpart, parts[i]);
	if (maxpart < 0)
		return;

	if (hint == NULL)
	{
		/* Round robin: a backend reads few (group, topic) pairs at a time. */
		hint = &el_hints[el_hint_victim];
		el_hint_victim = (el_hint_victim + 1) % EL_SEQHINT_ENTRIES;
		if (hint->grp)
		{
			pfree(hint->grp);
			pfree(hint->topic);
			pfree(hint->seqs);
			pfree(hint->tids);
		}
		hint->grp = MemoryContextStrdup(TopMemoryContext, grp);
		hint->topic = MemoryContextStrdup(TopMemoryContext, topic);
		hint->nslots = 0;
		hint->seqs = NULL;
		hint->tids = NULL;
	}
	if (maxpart >= hint->nslots)
	{
		int32		nslots = Max(maxpart + 1, 8);
		int32		j;

		if (hint->seqs == NULL)
		{
			hint->seqs = MemoryContextAllocZero(TopMemoryContext, sizeof(int64) * nslots);
			hint->tids = MemoryContextAlloc(TopMemoryContext, sizeof(ItemPointerData) * nslots);
		}
		else
		{
			hint->seqs = repalloc(hint->seqs, sizeof(int64) * nslots);
			memset(hint->seqs + hint->nslots, 0, sizeof(int64) * (nslots - hint->nslots));
			hint->tids = repalloc(hint->tids, sizeof(ItemPointerData) * nslots);
		}
		for (j = hint->nslots; j < nslots; j++)
			ItemPointerSetInvalid(&hint->tids[j]);
		hint->nslots = nslots;
	}
	for (i = 0; i < n; i++)
		if (found[i] && parts[i] >= 0)
		{
			hint->seqs[parts[i]] = seqs[i];
			hint->tids[parts[i]] = tids[i];
		}
}
