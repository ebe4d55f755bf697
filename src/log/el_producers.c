/*
 * el_producers.c
 *		The transactions producing records right now: which backend, which
 *		transaction, since when, in shared memory.
 *
 * A transaction that appended records and is still open holds every reader
 * of those partitions behind its records.  Kafka bounds that with the
 * producer's transaction.timeout.ms; here the worker does it with
 * eventlog.transaction_timeout (worker/el_txtimeout.c), and needs to know,
 * without reading any partition, which open transactions produced and since
 * when.  Each backend has one slot: its first append in a transaction fills
 * it, the end of the transaction (commit, abort, or PREPARE, after which no
 * backend holds it) empties it.  Only the backend writes its slot; the
 * worker reads it and checks the transaction again in the process array
 * before acting on it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/subtrans.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/timestamp.h"

#include "log/log_internal.h"
#include "util/util.h"

typedef struct ElProducerSlot
{
	pg_atomic_uint32 xid;		/* top-level xid, InvalidTransactionId if none */
	Oid			dboid;
	int			pid;
	TimestampTz since;			/* start of the transaction */
} ElProducerSlot;

PG_FUNCTION_INFO_V1(eventlog_transaction_holder);

static ElProducerSlot *el_producers = NULL;
static bool el_callback_registered = false;
static ElProducerSlot *el_my_slot = NULL;

/* One slot per process that can run a transaction. */
static Size
el_producers_size(void)
{
	return mul_size(MaxBackends, sizeof(ElProducerSlot));
}

static void
el_producers_shmem_init(void *area)
{
	ElProducerSlot *slots = (ElProducerSlot *) area;
	int			i;

	for (i = 0; i < MaxBackends; i++)
		pg_atomic_init_u32(&slots[i].xid, InvalidTransactionId);
}

/* Sets up shared memory when loaded by shared_preload_libraries. */
void
ElProducersInit(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	el_shmem_register_sized("eventlog producers", el_producers_size, el_producers_shmem_init,
							(void **) &el_producers);
}

/* This backend's slot, or NULL (no shared memory, or not a backend's process). */
static ElProducerSlot *
el_slot_of_mine(void)
{
	int			i;

	if (el_producers == NULL || MyProc == NULL)
		return NULL;
	i = (int) (MyProc - ProcGlobal->allProcs);
	if (i < 0 || i >= MaxBackends)
		return NULL;
	return &el_producers[i];
}

static void
el_producers_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			if (el_my_slot &&
				pg_atomic_read_u32(&el_my_slot->xid) != InvalidTransactionId)
				pg_atomic_write_u32(&el_my_slot->xid, InvalidTransactionId);
			break;
		default:
			break;
	}
}

/*
 * Called for every append: the first one of a transaction says that this
 * transaction produces, and since when.  The later ones cost a comparison.
 */
void
el_producer_note(void)
{
	TransactionId xid;

	if (el_producers == NULL)
		return;
	if (el_my_slot == NULL)
	{
		el_my_slot = el_slot_of_mine();
		if (el_my_slot == NULL)
			return;
	}
	xid = GetTopTransactionIdIfAny();
	if (!TransactionIdIsValid(xid) || pg_atomic_read_u32(&el_my_slot->xid) == xid)
		return;
	if (!el_callback_registered)
	{
		RegisterXactCallback(el_producers_xact_callback, NULL);
		el_callback_registered = true;
	}
	el_my_slot->dboid = MyDatabaseId;
	el_my_slot->pid = MyProcPid;
	el_my_slot->since = GetCurrentTransactionStartTimestamp();
	/* the other fields are written before the xid that makes them count */
	pg_write_barrier();
	pg_atomic_write_u32(&el_my_slot->xid, xid);
}

/*
 * A consistent copy of a slot's fields: false if it holds no transaction,
 * or was refilled by a newer one while it was read (look again next time).
 */
static bool
el_slot_read(ElProducerSlot *slot, TransactionId *xid, Oid *dboid, int *pid, TimestampTz *since)
{
	*xid = pg_atomic_read_u32(&slot->xid);
	if (!TransactionIdIsValid(*xid))
		return false;
	pg_read_barrier();
	*since = slot->since;
	*pid = slot->pid;
	*dboid = slot->dboid;
	pg_read_barrier();
	return pg_atomic_read_u32(&slot->xid) == *xid;
}

/*
 * Calls fn for each transaction of database dboid that produced records and
 * started before cutoff, and is still open as far as the slot says (the
 * caller checks the process array before acting).
 */
void
el_producers_older_than(Oid dboid, TimestampTz cutoff, ElProducerFn fn, void *arg)
{
	int			i;

	if (el_producers == NULL)
		return;
	for (i = 0; i < MaxBackends; i++)
	{
		TransactionId xid;
		TimestampTz since;
		int			pid;
		Oid			db;

		if (el_slot_read(&el_producers[i], &xid, &db, &pid, &since) &&
			db == dboid && since < cutoff)
			fn(pid, xid, since, arg);
	}
}

/*
 * transaction_holder(xid): for a transaction holding readers back (the
 * held_by of eventlog.partitions), its top-level transaction, the process
 * running it (NULL for a prepared transaction) and when it began producing
 * (NULL where not known: prepared, or without the preload).
 */
Datum
eventlog_transaction_holder(PG_FUNCTION_ARGS)
{
	TransactionId xid = DatumGetTransactionId(PG_GETARG_DATUM(0));
	TransactionId top;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, true, true};
	int			pid;
	int			i;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (!TransactionIdIsValid(xid) || !TransactionIdIsInProgress(xid))
		PG_RETURN_NULL();

	top = SubTransGetTopmostTransaction(xid);
	values[0] = TransactionIdGetDatum(top);
	pid = BackendXidGetPid(top);
	if (pid != 0)
	{
		values[1] = Int32GetDatum(pid);
		nulls[1] = false;
	}
	for (i = 0; el_producers != NULL && pid != 0 && i < MaxBackends; i++)
	{
		TransactionId slot_xid;
		TimestampTz since;
		int			slot_pid;
		Oid			db;

		if (el_slot_read(&el_producers[i], &slot_xid, &db, &slot_pid, &since) &&
			slot_xid == top && slot_pid == pid)
		{
			values[2] = TimestampTzGetDatum(since);
			nulls[2] = false;
			break;
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
