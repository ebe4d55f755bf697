/*
 * el_listen.c
 *		Whether any session listens for the worker's notifications.
 *
 * The worker's notifications cost a transaction per notify_interval and a
 * read of the tail of every partition written since the last one
 * (el_notify.c): with producers committing thousands of times a second, a
 * few percent of the machine.  Nobody hears them unless a session of the
 * database ran LISTEN on an eventlog channel, so the worker sends them only
 * while one has.  A utility hook counts, per database, the sessions that ran
 * LISTEN "eventlog" or LISTEN "eventlog.<topic>", until they exit.
 *
 * The count errs on the side of listening: a session is counted from the
 * moment its LISTEN starts, before it commits, so a commit that the LISTEN
 * precedes always finds it counted (a LISTEN rolled back, or undone by
 * UNLISTEN, leaves the session counted until it exits; that only costs
 * notifications nobody hears, as without the count).  Without room for
 * another database, every database counts as listened to.
 *
 * Like the worker, this needs shared_preload_libraries = 'eventlog': the
 * hook must be in every backend from its start.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/spin.h"
#include "tcop/utility.h"

#include "util/util.h"
#include "worker/worker_internal.h"

#define EL_LISTEN_DATABASES	64

typedef struct ElListenDb
{
	Oid			dboid;
	pg_atomic_uint32 sessions;	/* sessions counted, until they exit */
} ElListenDb;

typedef struct ElListenShared
{
	slock_t		mutex;			/* taken to add a database */
	pg_atomic_uint32 ndbs;
	pg_atomic_uint32 overflow;	/* a database found no room: all count */
	ElListenDb	dbs[EL_LISTEN_DATABASES];
} ElListenShared;

static ElListenShared *el_listen = NULL;
static ElListenDb *el_my_count = NULL;	/* this session's, once counted */
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

static void
el_listen_shmem_init(void *area)
{
	ElListenShared *shared = (ElListenShared *) area;
	int			i;

	SpinLockInit(&shared->mutex);
	pg_atomic_init_u32(&shared->ndbs, 0);
	pg_atomic_init_u32(&shared->overflow, 0);
	for (i = 0; i < EL_LISTEN_DATABASES; i++)
	{
		shared->dbs[i].dboid = InvalidOid;
		pg_atomic_init_u32(&shared->dbs[i].sessions, 0);
	}
}

/* The entry of a database, added if create; NULL if none (or no room). */
static ElListenDb *
el_listen_db(Oid dboid, bool create)
{
	uint32		n = pg_atomic_read_u32(&el_listen->ndbs);
	ElListenDb *found = NULL;
	uint32		i;

	/* Entries are filled in before ndbs counts them (see below). */
	pg_read_barrier();
	for (i = 0; i < n; i++)
		if (el_listen->dbs[i].dboid == dboid)
			return &el_listen->dbs[i];
	if (!create)
		return NULL;

	SpinLockAcquire(&el_listen->mutex);
	n = pg_atomic_read_u32(&el_listen->ndbs);
	for (i = 0; i < n && found == NULL; i++)
		if (el_listen->dbs[i].dboid == dboid)
			found = &el_listen->dbs[i];
	if (found == NULL && n < EL_LISTEN_DATABASES)
	{
		found = &el_listen->dbs[n];
		found->dboid = dboid;
		pg_write_barrier();
		pg_atomic_write_u32(&el_listen->ndbs, n + 1);
	}
	SpinLockRelease(&el_listen->mutex);
	return found;
}

/* At exit, a counted session stops counting. */
static void
el_listen_exit(int code, Datum arg)
{
	if (el_my_count != NULL)
		pg_atomic_fetch_sub_u32(&el_my_count->sessions, 1);
	el_my_count = NULL;
}

/* Counts this session as listening (once). */
static void
el_listen_count_me(void)
{
	ElListenDb *db;

	if (el_listen == NULL || el_my_count != NULL || !OidIsValid(MyDatabaseId))
		return;
	db = el_listen_db(MyDatabaseId, true);
	if (db == NULL)
	{
		pg_atomic_write_u32(&el_listen->overflow, 1);
		return;
	}
	before_shmem_exit(el_listen_exit, (Datum) 0);
	/* a full barrier: the count is seen before the LISTEN can commit */
	pg_atomic_fetch_add_u32(&db->sessions, 1);
	el_my_count = db;
}

/* Channels the worker announces on: "eventlog" and "eventlog.<topic>". */
static bool
el_listen_channel(const char *channel)
{
	return channel != NULL && strncmp(channel, "eventlog", 8) == 0 &&
		(channel[8] == '\0' || channel[8] == '.');
}

static void
el_listen_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				  ProcessUtilityContext context, ParamListInfo params,
				  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, ListenStmt) &&
		el_listen_channel(((ListenStmt *) parsetree)->conditionname))
		el_listen_count_me();

	if (prev_ProcessUtility)
		prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
							queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/*
 * Whether a session of database dboid may listen on an eventlog channel.
 * Always true without the shared memory (nothing is counted then).
 */
bool
el_listeners_present(Oid dboid)
{
	ElListenDb *db;

	if (el_listen == NULL || pg_atomic_read_u32(&el_listen->overflow) != 0)
		return true;
	db = el_listen_db(dboid, false);
	return db != NULL && pg_atomic_read_u32(&db->sessions) > 0;
}

/* Sets up the count when loaded by shared_preload_libraries. */
void
ElListenInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	el_shmem_register("eventlog listeners", sizeof(ElListenShared), el_listen_shmem_init,
					  (void **) &el_listen);
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = el_listen_utility;
}
