/*
 * el_grouplock.c
 *		A consumer group's lock between the writers of its committed offsets
 *		and delete_group.
 *
 * Committed offsets have no foreign key to their group: checking one cost
 * every commit a key lookup and a lock on the group's row.  Without it, a
 * delete_group running while a transaction commits a position would miss
 * the new row (its DELETE does not see rows committed after it started)
 * and leave offsets behind that a new group of the same name would take
 * up.  So whatever writes committed offsets (consume with commit, commit,
 * reset_offsets, the Kafka listener's OffsetCommit, a mirror) first takes
 * this lock in share mode for the rest of its transaction, and delete_group
 * takes it in exclusive mode: the deletion waits for the writers under way
 * and its statements then see what they wrote; a writer that comes after
 * waits for the deletion and then finds the group gone, as a new one.
 *
 * The lock is a heavyweight lock on an advisory tag of the database, with
 * two hashes of the group's name and a class of eventlog's own in the last
 * field (SQL's advisory lock functions use 1 and 2 there, so they never
 * meet it).  Two groups whose names hash alike only make a deletion wait
 * for the other's writers.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"

#include "compat/compat.h"
#include "groups/el_group.h"

/* Last field of the tag: "EL". */
#define EL_LOCKTAG_GROUP	0x454C

static void
el_group_locktag(LOCKTAG *tag, const char *grp)
{
	uint64		h = hash_bytes_extended((const unsigned char *) grp, strlen(grp), 0);

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h, EL_LOCKTAG_GROUP);
}

/* Before writing committed offsets of grp: until the transaction ends. */
void
el_group_lock_offsets(const char *grp)
{
	LOCKTAG		tag;

	el_group_locktag(&tag, grp);
	(void) LockAcquire(&tag, ShareLock, false, false);
}

/* Before deleting grp: waits for the writers of its offsets under way. */
void
el_group_lock_delete(const char *grp)
{
	LOCKTAG		tag;

	el_group_locktag(&tag, grp);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* The writers of offsets check that their caller took the lock. */
void
el_group_check_offsets_locked(const char *grp)
{
	LOCKTAG		tag;

	el_group_locktag(&tag, grp);
	if (!el_lock_held_by_me(&tag, ShareLock) && !el_lock_held_by_me(&tag, ExclusiveLock))
		elog(ERROR, "committed offsets of consumer group \"%s\" written without the group's lock", grp);
}
