/*
 * el_visibility.c
 *		Visibility of eventlog records under every kind of snapshot.
 *
 * Records are never updated or deleted, so only the inserting transaction
 * matters: the question heap answers for xmin alone.  A run of records shares
 * one xmin and cmin, so a verdict is computed once per run.  Besides
 * "visible" and "invisible" we report "in progress", which readers in offset
 * order treat as a barrier: that is Kafka's last stable offset, derived from
 * the data under any snapshot, on a primary and on a standby alike.
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "storage/storage_internal.h"

/*
 * Sets hint bits on a run, as heap's SetHintBits does: a committed hint may
 * only be set once the commit record is flushed, or a crash could leave the
 * page claiming a commit that never reached disk.
 */
static void
el_set_hint(ElRunHeader *run, Buffer buffer, uint16 bits)
{
	if (!BufferIsValid(buffer))
		return;

	if (bits & EL_RUN_COMMITTED)
	{
		XLogRecPtr	commitLSN = TransactionIdGetCommitLSN(run->xmin);

		if (BufferIsPermanent(buffer) && XLogNeedsFlush(commitLSN) &&
			BufferGetLSNAtomic(buffer) < commitLSN)
			return;
	}
	run->infomask |= bits;
	MarkBufferDirtyHint(buffer, true);
}

/*
 * Settles a transaction that is not running (any more) from the commit log,
 * caching the answer in hint bits.
 */
static bool
el_xmin_committed(ElRunHeader *run, Buffer buffer)
{
	if (TransactionIdDidCommit(run->xmin))
	{
		el_set_hint(run, buffer, EL_RUN_COMMITTED);
		return true;
	}
	el_set_hint(run, buffer, EL_RUN_ABORTED);
	return false;
}

/* MVCC snapshots: the rule of HeapTupleSatisfiesMVCC for xmin. */
static ElVerdict
el_verdict_mvcc(ElRunHeader *run, Buffer buffer, Snapshot snapshot)
{
	TransactionId xmin = run->xmin;

	if (TransactionIdIsCurrentTransactionId(xmin))
		return run->cmin < snapshot->curcid ? EL_VISIBLE : EL_IN_PROGRESS;

	if (XidInMVCCSnapshot(xmin, snapshot))
	{
		/*
		 * An aborted transaction can never become visible; saying so lets
		 * readers move past a rolled-back subtransaction of their own, or a
		 * producer that aborted after the snapshot was taken.
		 */
		if (!(run->infomask & EL_RUN_COMMITTED) && TransactionIdDidAbort(xmin))
			return EL_INVISIBLE;
		return EL_IN_PROGRESS;
	}

	if (run->infomask & EL_RUN_COMMITTED)
		return EL_VISIBLE;

	/* Not running when the snapshot was taken: settled in the commit log. */
	return el_xmin_committed(run, buffer) ? EL_VISIBLE : EL_INVISIBLE;
}

/*
 * Historic MVCC snapshots (logical decoding of catalogs): committed
 * transactions are listed in snapshot->xip, our own in subxip.
 */
static ElVerdict
el_verdict_historic(ElRunHeader *run, Snapshot snapshot)
{
	TransactionId xmin = run->xmin;

	if (bsearch(&xmin, snapshot->subxip, snapshot->subxcnt,
				sizeof(TransactionId), xidComparator) != NULL)
		return run->cmin < snapshot->curcid ? EL_VISIBLE : EL_IN_PROGRESS;
	if (TransactionIdPrecedes(xmin, snapshot->xmin))
		return TransactionIdDidCommit(xmin) ? EL_VISIBLE : EL_INVISIBLE;
	if (TransactionIdFollowsOrEquals(xmin, snapshot->xmax))
		return EL_IN_PROGRESS;
	if (bsearch(&xmin, snapshot->xip, snapshot->xcnt,
				sizeof(TransactionId), xidComparator) != NULL)
		return EL_VISIBLE;
	return TransactionIdDidAbort(xmin) ? EL_INVISIBLE : EL_IN_PROGRESS;
}

/*
 * Verdict on a run under a snapshot.  buffer is the shared buffer holding the
 * run (locked at least in share mode), used to set hint bits; InvalidBuffer
 * when the run lives in a private copy.  A NULL snapshot classifies: visible
 * if committed, invisible if aborted, in progress otherwise (ANALYZE).
 */
ElVerdict
el_run_verdict(ElRunHeader *run, Buffer buffer, Snapshot snapshot)
{
	uint16		infomask = run->infomask;

	if (snapshot != NULL && snapshot->snapshot_type == SNAPSHOT_DIRTY)
	{
		snapshot->xmin = snapshot->xmax = InvalidTransactionId;
		snapshot->speculativeToken = 0;
	}

	/* Final verdicts, written by VACUUM (frozen) or cached in hints. */
	if (infomask & EL_RUN_FROZEN)
	{
		if (snapshot != NULL && snapshot->snapshot_type == SNAPSHOT_ANY)
			return EL_VISIBLE;
		return (infomask & EL_RUN_ABORTED) ? EL_INVISIBLE : EL_VISIBLE;
	}
	if (infomask & EL_RUN_ABORTED)
	{
		if (snapshot != NULL && snapshot->snapshot_type == SNAPSHOT_ANY)
			return EL_VISIBLE;
		return EL_INVISIBLE;
	}

	if (snapshot == NULL)
	{
		if (infomask & EL_RUN_COMMITTED)
			return EL_VISIBLE;
		if (TransactionIdIsCurrentTransactionId(run->xmin) ||
			TransactionIdIsInProgress(run->xmin))
			return EL_IN_PROGRESS;
		return el_xmin_committed(run, buffer) ? EL_VISIBLE : EL_INVISIBLE;
	}

	switch (snapshot->snapshot_type)
	{
		case SNAPSHOT_MVCC:
			return el_verdict_mvcc(run, buffer, snapshot);

		case SNAPSHOT_HISTORIC_MVCC:
			return el_verdict_historic(run, snapshot);

		case SNAPSHOT_ANY:
		case SNAPSHOT_TOAST:
			return EL_VISIBLE;

		case SNAPSHOT_SELF:
			if (infomask & EL_RUN_COMMITTED)
				return EL_VISIBLE;
			if (TransactionIdIsCurrentTransactionId(run->xmin))
				return EL_VISIBLE;
			if (TransactionIdIsInProgress(run->xmin))
				return EL_IN_PROGRESS;
			return el_xmin_committed(run, buffer) ? EL_VISIBLE : EL_INVISIBLE;

		case SNAPSHOT_DIRTY:
			/* Like HeapTupleSatisfiesDirty: open inserts count, and say who. */
			if (infomask & EL_RUN_COMMITTED)
				return EL_VISIBLE;
			if (TransactionIdIsCurrentTransactionId(run->xmin))
				return EL_VISIBLE;
			if (TransactionIdIsInProgress(run->xmin))
			{
				snapshot->xmin = run->xmin;
				return EL_VISIBLE;
			}
			return el_xmin_committed(run, buffer) ? EL_VISIBLE : EL_INVISIBLE;

		case SNAPSHOT_NON_VACUUMABLE:
			/* Only an aborted insert is dead to VACUUM. */
			if (infomask & EL_RUN_COMMITTED)
				return EL_VISIBLE;
			if (TransactionIdIsCurrentTransactionId(run->xmin) ||
				TransactionIdIsInProgress(run->xmin))
				return EL_VISIBLE;
			return el_xmin_committed(run, buffer) ? EL_VISIBLE : EL_INVISIBLE;
	}

	elog(ERROR, "unrecognized snapshot type %d", (int) snapshot->snapshot_type);
	return EL_INVISIBLE;		/* keep compiler quiet */
}
