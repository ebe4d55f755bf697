/*
 * el_wakeup.c
 *		Telling waiting consumers that records were committed.
 *
 * With shared_preload_libraries = 'eventlog', shared memory holds a commit
 * counter per slot (relations hash onto slots) and one condition variable.
 * A transaction that appended records remembers their slots; at commit,
 * after its records became visible, it bumps those counters and broadcasts.
 * A consumer waiting on partitions sleeps on the condition variable until a
 * counter of theirs moves or its time is up: no polling.  Producers never
 * NOTIFY (that serializes commits on a global lock).
 *
 * Without the preload there is no shared memory: waiting falls back to
 * sleeping in short steps, still correct, less prompt.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/partition.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/timestamp.h"

#include "log/log_internal.h"
#include "storage/storage.h"
#include "util/util.h"

#define EL_WAKEUP_SLOTS		1024
#define EL_POLL_STEP_MS		100
#define EL_PREPARED_STEP_MS	1000

typedef struct ElWakeupShared
{
	ConditionVariable cv;
	pg_atomic_uint64 commits[EL_WAKEUP_SLOTS];
} ElWakeupShared;

/* Set by the worker, which announces committed records. */
ElLogCommittedHook el_log_committed_hook = NULL;

static ElWakeupShared *el_wakeup = NULL;
static bool el_wakeup_requested = false;

/* Slots this transaction appended to, published at commit. */
static uint64 el_pending[EL_WAKEUP_SLOTS / 64];
static bool el_pending_any = false;
static bool el_callback_registered = false;

/* Slot of a relation of this database. */
static int
el_slot(Oid relid)
{
	uint32		h = hash_combine(murmurhash32(MyDatabaseId), murmurhash32(relid));

	return (int) (h % EL_WAKEUP_SLOTS);
}

/* ---- Shared memory ---- */

static void
el_wakeup_shmem_init(void *area)
{
	ElWakeupShared *shared = (ElWakeupShared *) area;
	int			i;

	ConditionVariableInit(&shared->cv);
	for (i = 0; i < EL_WAKEUP_SLOTS; i++)
		pg_atomic_init_u64(&shared->commits[i], 0);
}

/*
 * Rows inserted through SQL into an eventlog relation: readers wait on the
 * partition's relation, the parent of a segment.
 */
static void
el_wakeup_note_table_append(Relation rel)
{
	el_wakeup_note_append(rel->rd_rel->relispartition ?
						  get_partition_parent(RelationGetRelid(rel), true) :
						  RelationGetRelid(rel));
	el_producer_note();
}

/*
 * Hears of rows inserted through SQL (the storage layer's hook), and sets
 * up shared memory when loaded by shared_preload_libraries.
 */
void
ElWakeupInit(void)
{
	el_table_append_hook = el_wakeup_note_table_append;
	if (!process_shared_preload_libraries_in_progress)
		return;
	el_wakeup_requested = true;
	el_shmem_register("eventlog wakeup", sizeof(ElWakeupShared), el_wakeup_shmem_init,
					  (void **) &el_wakeup);
}

/* True when waiting can sleep on the condition variable. */
bool
el_wakeup_available(void)
{
	return el_wakeup != NULL;
}

/* ---- Producers ---- */

static void
el_wakeup_xact_callback(XactEvent event, void *arg)
{
	int			w;

	if (!el_pending_any)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* The records are visible now: tell the waiters. */
			if (el_wakeup)
			{
				for (w = 0; w < EL_WAKEUP_SLOTS / 64; w++)
				{
					uint64		bits = el_pending[w];

					/* a transaction touches a few slots: visit only those */
					while (bits != 0)
					{
						int			b = pg_rightmost_one_pos64(bits);

						pg_atomic_fetch_add_u64(&el_wakeup->commits[w * 64 + b], 1);
						bits &= bits - 1;
					}
				}
				ConditionVariableBroadcast(&el_wakeup->cv);
			}
			/* The worker announces them (producers never NOTIFY). */
			if (el_log_committed_hook)
				el_log_committed_hook();
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			memset(el_pending, 0, sizeof(el_pending));
			el_pending_any = false;
			break;
		default:
			break;
	}
}

/*
 * Called for every append: remembers the relation's slot for the commit.
 * A prepared transaction's records wake nobody at COMMIT PREPARED; waiters
 * find them at their next step.
 */
void
el_wakeup_note_append(Oid relid)
{
	int			slot = el_slot(relid);

	if (!el_wakeup_requested)
		return;
	if (!el_callback_registered)
	{
		RegisterXactCallback(el_wakeup_xact_callback, NULL);
		el_callback_registered = true;
	}
	el_pending[slot / 64] |= (uint64) 1 << (slot % 64);
	el_pending_any = true;
}

/* ---- Consumers ---- */

/* Commit counters of the slots of relids, to compare after sleeping. */
uint64
el_wakeup_stamp(Oid *relids, int n)
{
	uint64		sum = 0;
	int			i;

	if (el_wakeup == NULL)
		return 0;
	for (i = 0; i < n; i++)
		sum += pg_atomic_read_u64(&el_wakeup->commits[el_slot(relids[i])]);
	return sum;
}

/*
 * Sleeps until a transaction commits records to one of relids after stamp
 * was taken, or until deadline.  Returns false once the deadline passed.
 */
bool
el_wakeup_wait(Oid *relids, int n, uint64 stamp, TimestampTz deadline)
{
	long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

	if (remaining <= 0)
		return false;

	if (el_wakeup == NULL)
	{
		/* No shared memory: sleep a short step, the caller looks again. */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(remaining, EL_POLL_STEP_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		return true;
	}

	ConditionVariablePrepareToSleep(&el_wakeup->cv);
	while (el_wakeup_stamp(relids, n) == stamp)
	{
		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (remaining <= 0)
			break;

		/*
		 * Let the caller look again at least every second anyway: COMMIT
		 * PREPARED makes records visible without broadcasting.
		 */
		if (ConditionVariableTimedSleep(&el_wakeup->cv, Min(remaining, EL_PREPARED_STEP_MS),
										PG_WAIT_EXTENSION))
			break;
		CHECK_FOR_INTERRUPTS();
	}
	ConditionVariableCancelSleep();
	return true;
}
