/*
 * el_joincache.c
 *		What a member's last call learned of its group, reused by its next
 *		calls in the same session.
 *
 * A member's call joins (or heartbeats), reads the group's live members and
 * assignment, and rebalances if the assignment is off.  Between two calls a
 * few milliseconds apart none of that changes unless the group's generation
 * moves (every rebalance bumps it) or a member falls silent (which only
 * time reveals).  So a call that found the assignment in order remembers it
 * with the generation, and the next calls of the same member on the same
 * topic use it while the generation is unchanged and for less than the
 * heartbeat interval; then a full check runs again, heartbeat included.
 *
 * The memo is about data a transaction read: it is kept only once that
 * transaction commits.  It never decides who may read a partition:
 * consume() checks ownership after locking a partition's offset row.
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "groups/el_group.h"
#include "log/log.h"

typedef struct ElJoinMemo
{
	bool		valid;
	char	   *grp;
	char	   *member;
	char		topic[256];		/* as ElTopic.name */
	Oid			parent;			/* the topic relation: a re-created topic differs */
	int32		npartitions;
	int64		generation;
	TimestampTz checked_at;
	int			nparts;
	int32	   *parts;
} ElJoinMemo;

static ElJoinMemo el_memo;		/* committed */
static ElJoinMemo el_pending;	/* read by the running transaction */
static bool el_callback_registered = false;

static void
el_memo_clear(ElJoinMemo *memo)
{
	if (memo->grp)
		pfree(memo->grp);
	if (memo->member)
		pfree(memo->member);
	if (memo->parts)
		pfree(memo->parts);
	memset(memo, 0, sizeof(ElJoinMemo));
}

static void
el_joincache_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (el_pending.valid)
			{
				el_memo_clear(&el_memo);
				el_memo = el_pending;
				memset(&el_pending, 0, sizeof(ElJoinMemo));
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			el_memo_clear(&el_pending);
			break;
		default:
			break;
	}
}

/* What a rolled-back savepoint read may have been its own writes. */
static void
el_joincache_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
							  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		el_memo_clear(&el_pending);
}

/*
 * The member's partitions of the topic as its last check found them, if
 * that check is younger than max_age_secs and the group's generation is
 * still the one it saw.  *partitions is allocated in the caller's context.
 */
bool
el_joincache_lookup(const char *grp, const char *member, ElTopic *topic, int64 generation,
					double max_age_secs, int32 **partitions, int *nparts)
{
	ElJoinMemo *memo = el_pending.valid ? &el_pending : &el_memo;

	if (!memo->valid ||
		memo->generation != generation ||
		memo->parent != topic->parent ||
		memo->npartitions != topic->npartitions ||
		strcmp(memo->topic, topic->name) != 0 ||
		strcmp(memo->grp, grp) != 0 ||
		strcmp(memo->member, member) != 0 ||
		TimestampDifferenceExceeds(memo->checked_at, GetCurrentTimestamp(),
								   (int) (max_age_secs * 1000)))
		return false;

	*nparts = memo->nparts;
	*partitions = palloc(sizeof(int32) * Max(memo->nparts, 1));
	memcpy(*partitions, memo->parts, sizeof(int32) * memo->nparts);
	return true;
}

/* Remembers what a full check found, for after this transaction commits. */
void
el_joincache_remember(const char *grp, const char *member, ElTopic *topic, int64 generation,
					  const int32 *partitions, int nparts)
{
	if (!el_callback_registered)
	{
		RegisterXactCallback(el_joincache_xact_callback, NULL);
		RegisterSubXactCallback(el_joincache_subxact_callback, NULL);
		el_callback_registered = true;
	}
	el_memo_clear(&el_pending);
	el_pending.grp = MemoryContextStrdup(TopMemoryContext, grp);
	el_pending.member = MemoryContextStrdup(TopMemoryContext, member);
	strlcpy(el_pending.topic, topic->name, sizeof(el_pending.topic));
	el_pending.parent = topic->parent;
	el_pending.npartitions = topic->npartitions;
	el_pending.generation = generation;
	el_pending.checked_at = GetCurrentTimestamp();
	el_pending.nparts = nparts;
	el_pending.parts = MemoryContextAlloc(TopMemoryContext, sizeof(int32) * Max(nparts, 1));
	memcpy(el_pending.parts, partitions, sizeof(int32) * nparts);
	el_pending.valid = true;
}

/* Forgets everything: the member left, or the group went. */
void
el_joincache_forget(void)
{
	el_memo_clear(&el_pending);
	el_memo_clear(&el_memo);
}
