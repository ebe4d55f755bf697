/*
 * el_segmaker.c
 *		Creating a segment in a transaction of its own.
 *
 * A producer that fills the newest segment of a partition before the worker
 * has made the next one needs it now.  Made in the producer's transaction,
 * the CREATE TABLE would keep the partition's relation locked exclusively
 * until that transaction ends: every reader and producer of the partition
 * would wait for it, and two producers each filling a segment of a
 * partition the other writes to next would deadlock.  So the segment is made
 * by a short-lived background worker, in its own transaction, while the
 * producer waits for it to finish; the producer holds no lock on the
 * partition's relation meanwhile.  Dynamic background workers need no
 * shared_preload_libraries, only a free slot of max_worker_processes.
 *
 * When that cannot work, the caller creates the segment itself: when it
 * already holds a lock on the partition's relation (the worker would wait
 * for it), when no slot is free, or when the worker failed (it gives up
 * after a second of waiting for a lock).
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/lmgr.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "compat/compat.h"
#include "log/log_internal.h"
#include "util/util.h"

PGDLLEXPORT void eventlog_segment_maker_main(Datum arg);

/* What the worker is to do, passed in bgw_extra. */
typedef struct ElSegmentJob
{
	Oid			dboid;
	Oid			leaf;
	int64		lo;
	int64		hi;
} ElSegmentJob;

StaticAssertDecl(sizeof(ElSegmentJob) <= BGW_EXTRALEN, "segment job too large for bgw_extra");

/* Whether this transaction holds any lock on a relation. */
static bool
el_holds_lock_on(Oid relid)
{
	LOCKTAG		tag;
	LOCKMODE	mode;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	for (mode = AccessShareLock; mode <= AccessExclusiveLock; mode++)
		if (el_lock_held_by_me(&tag, mode))
			return true;
	return false;
}

/*
 * Has segment [lo, hi) of the partition relation leaf made by a background
 * worker and waits for it; false if that could not be done (the caller then
 * creates it itself).  Success means the worker ended without error, and
 * the segment exists unless someone dropped the partition meanwhile.
 */
bool
el_create_segment_apart(Oid leaf, int64 lo, int64 hi)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	ElSegmentJob job;
	BgwHandleStatus status;
	pid_t		pid;

	if (!IsUnderPostmaster || el_holds_lock_on(leaf))
		return false;

	el_describe_worker(&worker, "eventlog_segment_maker_main", "eventlog segment maker",
					   BGW_NEVER_RESTART);
	worker.bgw_notify_pid = MyProcPid;
	job.dboid = MyDatabaseId;
	job.leaf = leaf;
	job.lo = lo;
	job.hi = hi;
	memcpy(worker.bgw_extra, &job, sizeof(job));

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return false;
	/* a quick worker may be done before its start is seen */
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status == BGWH_STARTED)
		status = WaitForBackgroundWorkerShutdown(handle);
	if (status != BGWH_STOPPED)
		return false;

	/*
	 * The worker exits with status 0 on success too, so whether the segment
	 * exists is for the caller to check: it looks again and, if the
	 * segment is not there, makes it itself.
	 */
	return true;
}

/* The worker: one transaction that creates the segment, then exit. */
void
eventlog_segment_maker_main(Datum arg)
{
	ElSegmentJob job;

	memcpy(&job, MyBgworkerEntry->bgw_extra, sizeof(job));
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(job.dboid, InvalidOid, 0);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	/* Never wait long: the producer that asked falls back to doing it. */
	SetConfigOption("lock_timeout", "1s", PGC_SUSET, PGC_S_OVERRIDE);
	PushActiveSnapshot(GetTransactionSnapshot());
	(void) el_create_segment(job.leaf, job.lo, job.hi, true);
	PopActiveSnapshot();
	CommitTransactionCommand();
	proc_exit(0);
}
