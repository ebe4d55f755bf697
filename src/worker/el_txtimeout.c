/*
 * el_txtimeout.c
 *		eventlog.transaction_timeout: ending producing transactions left
 *		open, as Kafka's transaction.timeout.ms aborts a producer's
 *		transaction.
 *
 * A transaction that produced records and stays open holds every reader of
 * those partitions behind its first record: fetch, consume and the Kafka
 * listener's Fetch stop at it, whatever comes after.  Once per pass the
 * worker looks at the transactions of its database that produced records
 * (log/el_producers.c) and ends those open longer than the setting.
 *
 * PostgreSQL offers no way to roll back another session's transaction
 * without ending the session (idle_in_transaction_session_timeout ends the
 * session too), so the worker terminates the backend, as
 * pg_terminate_backend() does: its transaction aborts, its records become
 * aborted records that readers skip, and the client sees its connection
 * end.  The process array is checked under ProcArrayLock right before the
 * signal, and held while it is sent: the transaction cannot finish
 * meanwhile, so a later transaction of the same session is never the one
 * ended.  A signal that arrives while the transaction commits lets the
 * commit finish first, then ends the session: its records are committed,
 * not lost.
 *
 * Prepared transactions are never ended: they are a promise to a
 * transaction manager that only it may break (COMMIT PREPARED or ROLLBACK
 * PREPARED).  Until then they hold readers, and eventlog.partitions shows
 * them (held_by, held_since, no held_by_pid).
 */
#include "postgres.h"

#include <signal.h>

#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/timestamp.h"

#include "log/log.h"
#include "worker/worker_internal.h"

/* Setting (registered in el_guc.c), in milliseconds; 0: off. */
int			eventlog_transaction_timeout = 5 * 60 * 1000;

/* The last transaction ended, so that it is logged once while it aborts. */
static int	el_last_pid = 0;
static TransactionId el_last_xid = InvalidTransactionId;

/* Ends transaction xid of process pid if it is still the one running there. */
static void
el_end_transaction(int pid, TransactionId xid, TimestampTz since, void *arg)
{
	PGPROC	   *proc;
	bool		sent = false;

	LWLockAcquire(ProcArrayLock, LW_SHARED);
	proc = BackendPidGetProcWithLock(pid);
	if (proc != NULL && proc->xid == xid)
	{
		/* SIGTERM: the backend aborts its transaction and exits */
		sent = kill(pid, SIGTERM) == 0;
	}
	LWLockRelease(ProcArrayLock);

	if (sent && !(pid == el_last_pid && xid == el_last_xid))
	{
		long		secs;
		int			usecs;

		TimestampDifference(since, GetCurrentTimestamp(), &secs, &usecs);
		ereport(LOG,
				(errmsg("eventlog ended transaction %u of process %d: it produced records and stayed open for %ld s, longer than eventlog.transaction_timeout (%d ms)",
						xid, pid, secs, eventlog_transaction_timeout),
				 errdetail("Readers of the partitions it produced to could not read past its records. Its session is terminated; its records are aborted.")));
		el_last_pid = pid;
		el_last_xid = xid;
	}
}

/*
 * Ends the transactions of database dboid that produced records and have
 * been open longer than eventlog.transaction_timeout.
 */
void
el_txtimeout_pass(Oid dboid, TimestampTz now)
{
	if (eventlog_transaction_timeout <= 0)
		return;
	el_producers_older_than(dboid,
							TimestampTzPlusMilliseconds(now, -(int64) eventlog_transaction_timeout),
							el_end_transaction, NULL);
}
