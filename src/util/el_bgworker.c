/*
 * el_bgworker.c
 *		The description every background worker of eventlog shares.
 *
 * The launcher, the per-database workers, the segment maker and the Kafka
 * listener all run from this library, connected to a database, once
 * recovery is over; only their entry point, name and restart differ.
 */
#include "postgres.h"

#include "postmaster/bgworker.h"

#include "util/util.h"

/*
 * Describes one of eventlog's background workers: connected to a database,
 * started once recovery is over, run from this library.  restart_time is
 * in seconds, or BGW_NEVER_RESTART.
 */
void
el_describe_worker(BackgroundWorker *worker, const char *function, const char *type,
				   int restart_time)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = restart_time;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "eventlog");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
	snprintf(worker->bgw_name, BGW_MAXLEN, "%s", type);
	snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
}
