/*
 * el_worker.c
 *		The background workers: a launcher, and one worker per database
 *		that has the extension.
 *
 * The launcher (registered at server start, with shared_preload_libraries)
 * starts a worker for each database that allows connections.  A worker
 * finding no eventlog in its database exits for good; CREATE EXTENSION asks
 * the launcher to start it again.  Workers restart after a crash.
 *
 * A database's worker sends the coalesced notifications of new records
 * (el_notify.c) and expires silent members of consumer groups.  Producers
 * only set its latch at commit: they never NOTIFY themselves.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "groups/groups.h"
#include "log/log.h"
#include "mirror/mirror.h"
#include "util/util.h"
#include "worker/worker_internal.h"

PGDLLEXPORT void eventlog_launcher_main(Datum arg);
PGDLLEXPORT void eventlog_worker_main(Datum arg);
PG_FUNCTION_INFO_V1(eventlog_worker_request);

#define EL_MAX_DATABASES	64

typedef enum ElDbState
{
	EL_DB_UNKNOWN,				/* start a worker to find out */
	EL_DB_RUNNING,				/* a worker serves it */
	EL_DB_ABSENT				/* no eventlog there: no worker */
} ElDbState;

typedef struct ElDbEntry
{
	Oid			dboid;
	ElDbState	state;
	pid_t		pid;
	Latch	   *latch;			/* the worker's, to wake it at commits */
	bool		segments_wanted;	/* a tail is half full: make the next segment */
	bool		requested;		/* start_worker() at a commit: start it now */
} ElDbEntry;

typedef struct ElWorkerShared
{
	slock_t		mutex;
	Latch	   *launcher_latch;
	int			ndbs;
	ElDbEntry	dbs[EL_MAX_DATABASES];
} ElWorkerShared;

static ElWorkerShared *el_workers = NULL;

/* Settings (registered in el_guc.c) */
int			eventlog_notify_interval = 1;
int			eventlog_launcher_naptime = 10000;

/* ---- Shared memory ---- */

static void
el_worker_shmem_init(void *area)
{
	ElWorkerShared *shared = (ElWorkerShared *) area;

	memset(shared, 0, sizeof(ElWorkerShared));
	SpinLockInit(&shared->mutex);
}

/* Entry of a database (created if new); call with the mutex held. */
static ElDbEntry *
el_db_entry(Oid dboid, bool create)
{
	int			i;

	for (i = 0; i < el_workers->ndbs; i++)
		if (el_workers->dbs[i].dboid == dboid)
			return &el_workers->dbs[i];
	if (!create || el_workers->ndbs >= EL_MAX_DATABASES)
		return NULL;
	el_workers->dbs[el_workers->ndbs].dboid = dboid;
	el_workers->dbs[el_workers->ndbs].state = EL_DB_UNKNOWN;
	return &el_workers->dbs[el_workers->ndbs++];
}

/* Sets this database's worker's latch, first asking for segments if so. */
static void
el_signal_worker(bool want_segments)
{
	Latch	   *latch = NULL;
	ElDbEntry  *entry;

	if (el_workers == NULL)
		return;
	SpinLockAcquire(&el_workers->mutex);
	entry = el_db_entry(MyDatabaseId, false);
	if (entry && entry->state == EL_DB_RUNNING)
	{
		if (want_segments)
			entry->segments_wanted = true;
		latch = entry->latch;
	}
	SpinLockRelease(&el_workers->mutex);
	if (latch)
		SetLatch(latch);
}

/* This backend's database's entry, once there is one (entries never move). */
static ElDbEntry *el_my_entry = NULL;

/*
 * Wakes this database's worker: called at the commit of a transaction that
 * appended records, after they became visible.  Only the notifications need
 * the worker at once, and only while a session may hear them (el_listen.c).
 *
 * Every producer's commit comes here while a session listens, so it takes
 * no lock: the entry is found once, and its latch is read as PostgreSQL
 * reads the WAL writer's (XLogSetAsyncXactLSN).  A spinlock taken by every
 * commit is a point where the other producers spin, and sleep, while the
 * one holding it is preempted, which on a machine with fewer cores than
 * producers happens.  A latch read just as the worker exits sets a latch
 * nobody waits on, or one its next owner finds set: a spurious wakeup,
 * which latch users expect.
 */
void
el_worker_wake(void)
{
	Latch	   *latch;

	if (el_workers == NULL || !el_listeners_present(MyDatabaseId))
		return;
	if (el_my_entry == NULL)
	{
		SpinLockAcquire(&el_workers->mutex);
		el_my_entry = el_db_entry(MyDatabaseId, false);
		SpinLockRelease(&el_workers->mutex);
		if (el_my_entry == NULL)
			return;
	}
	latch = ((volatile ElDbEntry *) el_my_entry)->latch;
	if (latch)
		SetLatch(latch);
}

/*
 * Asks this database's worker to create segments ahead now rather than at
 * its next retention pass: a producer has filled half of the newest one.
 */
void
el_worker_want_segments(void)
{
	el_signal_worker(true);
}

/* Takes (and clears) this worker's request for segments. */
static bool
el_segments_wanted(Oid dboid)
{
	ElDbEntry  *entry;
	bool		wanted = false;

	SpinLockAcquire(&el_workers->mutex);
	entry = el_db_entry(dboid, false);
	if (entry)
	{
		wanted = entry->segments_wanted;
		entry->segments_wanted = false;
	}
	SpinLockRelease(&el_workers->mutex);
	return wanted;
}

/* Asks the launcher to (re)start this database's worker. */
static void
el_request_worker(void)
{
	ElDbEntry  *entry;
	Latch	   *latch;

	SpinLockAcquire(&el_workers->mutex);
	entry = el_db_entry(MyDatabaseId, true);
	if (entry && entry->state == EL_DB_ABSENT)
		entry->state = EL_DB_UNKNOWN;
	if (entry)
		entry->requested = true;
	latch = el_workers->launcher_latch;
	SpinLockRelease(&el_workers->mutex);
	if (latch)
		SetLatch(latch);
}

static bool el_request_pending = false;
static bool el_request_callback = false;

/*
 * The request is made when the transaction commits: a worker started
 * earlier would not see the extension that CREATE EXTENSION is creating.
 */
static void
el_request_xact_callback(XactEvent event, void *arg)
{
	if (!el_request_pending)
		return;
	if (event == XACT_EVENT_COMMIT)
		el_request_worker();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PREPARE)
		el_request_pending = false;
}

/*
 * start_worker(): asks the launcher to start this database's worker once
 * the transaction commits.  CREATE EXTENSION calls it.  Without the preload
 * it says what is missing and returns false.
 */
Datum
eventlog_worker_request(PG_FUNCTION_ARGS)
{
	if (el_workers == NULL)
	{
		/* An extension script hides notices: warn there. */
		ereport(creating_extension ? WARNING : NOTICE,
				(errmsg("eventlog is not loaded by shared_preload_libraries: no background worker"),
				 errdetail("Without it there are no notifications of new records, silent group members are only expired when another member calls, and waiting consumers poll every 100 ms."),
				 errhint("Add eventlog to shared_preload_libraries and restart the server.")));
		PG_RETURN_BOOL(false);
	}
	if (!el_request_callback)
	{
		RegisterXactCallback(el_request_xact_callback, NULL);
		el_request_callback = true;
	}
	el_request_pending = true;
	PG_RETURN_BOOL(true);
}

/* ---- Launcher ---- */

/* The launcher's handles of the workers it started, by database. */
static BackgroundWorkerHandle *el_handles[EL_MAX_DATABASES];
static Oid	el_handle_dbs[EL_MAX_DATABASES];
static TimestampTz el_handle_started[EL_MAX_DATABASES];

#define EL_RESTART_DELAY_MS 5000

/* True if a worker for dboid was started less than the restart delay ago. */
static bool
el_started_recently(Oid dboid)
{
	int			i;

	for (i = 0; i < EL_MAX_DATABASES; i++)
		if (el_handle_dbs[i] == dboid)
			return !TimestampDifferenceExceeds(el_handle_started[i], GetCurrentTimestamp(),
											   EL_RESTART_DELAY_MS);
	return false;
}

static void
el_remember_handle(Oid dboid, BackgroundWorkerHandle *handle)
{
	int			i;
	int			free_slot = -1;

	for (i = 0; i < EL_MAX_DATABASES; i++)
	{
		if (el_handle_dbs[i] == dboid)
		{
			el_handles[i] = handle;
			el_handle_started[i] = GetCurrentTimestamp();
			return;
		}
		if (free_slot < 0 && !OidIsValid(el_handle_dbs[i]))
			free_slot = i;
	}
	if (free_slot >= 0)
	{
		el_handle_dbs[free_slot] = dboid;
		el_handles[free_slot] = handle;
		el_handle_started[free_slot] = GetCurrentTimestamp();
	}
}

/*
 * A worker the launcher started that is gone without saying its database
 * has no eventlog (it failed to start, or was terminated): start another.
 */
static void
el_check_handles(void)
{
	int			i;

	for (i = 0; i < EL_MAX_DATABASES; i++)
	{
		pid_t		pid;
		ElDbEntry  *entry;

		if (!OidIsValid(el_handle_dbs[i]) || el_handles[i] == NULL)
			continue;
		if (GetBackgroundWorkerPid(el_handles[i], &pid) != BGWH_STOPPED)
			continue;
		SpinLockAcquire(&el_workers->mutex);
		entry = el_db_entry(el_handle_dbs[i], false);
		if (entry && entry->state == EL_DB_RUNNING)
			entry->state = EL_DB_UNKNOWN;
		SpinLockRelease(&el_workers->mutex);
		pfree(el_handles[i]);
		el_handles[i] = NULL;
	}
}

static void
el_start_worker(Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	/* The launcher restarts it, unless its database is gone. */
	el_describe_worker(&worker, "eventlog_worker_main", "eventlog worker", BGW_NEVER_RESTART);
	snprintf(worker.bgw_name, BGW_MAXLEN, "eventlog worker for database %u", dboid);
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = 0;

	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(WARNING,
				(errmsg("eventlog could not start a worker for database %u", dboid),
				 errhint("Raise max_worker_processes.")));
		return;
	}
	el_remember_handle(dboid, handle);
	SpinLockAcquire(&el_workers->mutex);
	el_db_entry(dboid, true)->state = EL_DB_RUNNING;
	SpinLockRelease(&el_workers->mutex);
}

/* Databases that accept connections. */
static List *
el_list_databases(void)
{
	List	   *dbs = NIL;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	MemoryContext outer = CurrentMemoryContext;

	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		MemoryContext old;

		if (!db->datallowconn || db->datistemplate)
			continue;
		old = MemoryContextSwitchTo(outer);
		dbs = lappend_oid(dbs, db->oid);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return dbs;
}

void
eventlog_launcher_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("eventlog launcher");

	SpinLockAcquire(&el_workers->mutex);
	el_workers->launcher_latch = MyLatch;
	/* After a restart, workers still running keep their databases. */
	for (int i = 0; i < el_workers->ndbs; i++)
		if (el_workers->dbs[i].state == EL_DB_RUNNING && el_workers->dbs[i].pid == 0)
			el_workers->dbs[i].state = EL_DB_UNKNOWN;
	SpinLockRelease(&el_workers->mutex);

	for (;;)
	{
		List	   *dbs;
		ListCell   *lc;
		long		naptime = eventlog_launcher_naptime;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		el_check_handles();
		dbs = el_list_databases();
		foreach(lc, dbs)
		{
			Oid			dboid = lfirst_oid(lc);
			ElDbEntry  *entry;
			bool		start;
			bool		requested;

			SpinLockAcquire(&el_workers->mutex);
			entry = el_db_entry(dboid, true);
			start = entry && entry->state == EL_DB_UNKNOWN;
			requested = entry && entry->requested;
			if (start && entry)
				entry->requested = false;
			SpinLockRelease(&el_workers->mutex);

			/*
			 * A worker that keeps failing is restarted every few seconds, not
			 * in a loop.  A commit that asked for one (CREATE EXTENSION) gets
			 * it at once: the worker started a moment before may well have
			 * left because the extension was not there yet.
			 */
			if (start && !requested && el_started_recently(dboid))
			{
				naptime = Min(naptime, EL_RESTART_DELAY_MS);
				start = false;
			}
			if (start)
				el_start_worker(dboid);
		}
		list_free(dbs);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 naptime, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- Database worker ---- */

/* On exit: forget this worker, and let the launcher decide on a new one. */
static void
el_worker_detach(int code, Datum arg)
{
	ElDbEntry  *entry;
	Latch	   *launcher = NULL;

	SpinLockAcquire(&el_workers->mutex);
	entry = el_db_entry(MyDatabaseId, false);
	if (entry && entry->pid == MyProcPid)
	{
		entry->latch = NULL;
		entry->pid = 0;
		if (entry->state == EL_DB_RUNNING)
			entry->state = EL_DB_UNKNOWN;	/* ended, not for lack of eventlog */
		launcher = el_workers->launcher_latch;
	}
	SpinLockRelease(&el_workers->mutex);
	if (launcher)
		SetLatch(launcher);
}

/*
 * True if eventlog is installed in this database (and not being dropped).
 * Asked before every pass: the extension's catalog is scanned only when the
 * topics' schema (which DROP EXTENSION drops) is one not seen before.
 */
static bool
el_extension_present(void)
{
	static Oid	confirmed = InvalidOid;
	Oid			nsp = get_namespace_oid("eventlog_topics", true);

	if (!OidIsValid(nsp))
		return false;
	if (nsp != confirmed)
	{
		if (!OidIsValid(get_extension_oid("eventlog", true)))
			return false;
		confirmed = nsp;
	}
	return true;
}

void
eventlog_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TimestampTz last_expiry = 0;
	TimestampTz last_recheck = 0;
	TimestampTz last_retention = 0;
	TimestampTz last_mirror = 0;
	bool		mirror_busy = false;
	bool		notified = false;
	bool		first = true;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("eventlog worker");

	SpinLockAcquire(&el_workers->mutex);
	{
		ElDbEntry  *entry = el_db_entry(dboid, true);

		entry->state = EL_DB_RUNNING;
		entry->pid = MyProcPid;
		entry->latch = MyLatch;
	}
	SpinLockRelease(&el_workers->mutex);
	before_shmem_exit(el_worker_detach, (Datum) 0);

	/*
	 * Its transactions hold notifications, expiry and mirrored records with
	 * their progress: not waiting for the WAL flush only makes listeners
	 * hear sooner; after a crash a mirror copies its last batch again, with
	 * its progress, exactly once.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	for (;;)
	{
		bool		present;
		bool		mirror_due;
		bool		expiry_due;
		TimestampTz now;

		/*
		 * Sleep until a producer's commit sets the latch (or a second
		 * passes, for expiry and rechecks).  While this worker is not
		 * waiting on its latch, producers setting it cost them no signal.
		 * The first pass runs at once: commits made since CREATE EXTENSION
		 * wait for it.
		 */
		if (!first)
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000, PG_WAIT_EXTENSION);
		first = false;
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		now = GetCurrentTimestamp();
		/* now() in this worker's queries: there is no client to set it */
		SetCurrentStatementStartTimestamp();

		/*
		 * Notifications first, in a transaction of their own: they go out
		 * when it commits, so nothing else may make them wait.
		 */
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		present = el_extension_present();
		if (present && el_listeners_present(dboid))
		{
			bool		recheck = TimestampDifferenceExceeds(last_recheck, now, 1000);

			pgstat_report_activity(STATE_RUNNING, "notifying");
			notified = el_notify_pass(recheck);
			if (recheck)
				last_recheck = now;
		}
		else
			el_notify_forget(); /* nobody hears them: no passes */
		PopActiveSnapshot();
		CommitTransactionCommand();

		/*
		 * Mirrors poll their sources about once a second, and at once again
		 * while they find records: not on every local commit.  Silent group
		 * members are looked for once a second.
		 */
		mirror_due = mirror_busy || TimestampDifferenceExceeds(last_mirror, now, 1000);
		expiry_due = TimestampDifferenceExceeds(last_expiry, now, 1000);
		if (present && (mirror_due || expiry_due))
		{
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			if (mirror_due)
			{
				pgstat_report_activity(STATE_RUNNING, "mirroring");
				mirror_busy = el_mirror_pass();
				last_mirror = now;
				if (mirror_busy)
					SetLatch(MyLatch);	/* more may be waiting: come back at once */
			}
			if (expiry_due)
			{
				pgstat_report_activity(STATE_RUNNING, "expiring silent group members");
				SPI_connect();
				el_group_expire_pass();
				SPI_finish();
				last_expiry = now;
			}
			PopActiveSnapshot();
			CommitTransactionCommand();
		}

		/* Retention in transactions of its own: their DROPs commit at once. */
		if (present &&
			(el_segments_wanted(dboid) ||
			 TimestampDifferenceExceeds(last_retention, now, eventlog_retention_check_interval)))
		{
			pgstat_report_activity(STATE_RUNNING, "enforcing retention");
			el_retention_pass();
			last_retention = GetCurrentTimestamp();
		}

		/* Producing transactions left open past eventlog.transaction_timeout end. */
		if (present)
			el_txtimeout_pass(dboid, now);
		pgstat_report_activity(STATE_IDLE, NULL);

		/*
		 * Announce at once, but at most once per notify_interval, counted
		 * from the start of the pass that notified: commits arriving
		 * meanwhile are gathered into the next pass, and the worker's cost
		 * is bounded whatever the commit rate.  A commit waits at most the
		 * interval, so the default (1 ms) keeps notifications within a few
		 * milliseconds of the commit.
		 */
		if (notified && eventlog_notify_interval > 0)
		{
			int64		left = eventlog_notify_interval * INT64CONST(1000) -
				(GetCurrentTimestamp() - now);	/* microseconds */

			if (left > 0)
				pg_usleep((long) left);
		}
		notified = false;

		if (!present)
		{
			ElDbEntry  *entry;

			/*
			 * Nothing to serve: stay away until CREATE EXTENSION asks, unless
			 * it did after this worker looked.
			 */
			SpinLockAcquire(&el_workers->mutex);
			entry = el_db_entry(dboid, true);
			entry->state = entry->requested ? EL_DB_UNKNOWN : EL_DB_ABSENT;
			SpinLockRelease(&el_workers->mutex);
			proc_exit(0);
		}
	}
}

/* ---- Setup ---- */

/* Registers the launcher and shared memory (under shared_preload_libraries). */
void
ElWorkerInit(void)
{
	BackgroundWorker worker;

	/* What the log layer asks of the worker, it asks through these. */
	el_log_committed_hook = el_worker_wake;
	el_log_segment_wanted_hook = el_worker_want_segments;

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;

	el_shmem_register("eventlog workers", sizeof(ElWorkerShared), el_worker_shmem_init,
					  (void **) &el_workers);

	el_describe_worker(&worker, "eventlog_launcher_main", "eventlog launcher", 5);
	RegisterBackgroundWorker(&worker);
}
