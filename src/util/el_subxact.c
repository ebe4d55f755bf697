/*
 * el_subxact.c
 *		Running a step in a subtransaction of its own, so that its error
 *		fails that step and not the caller's whole transaction.
 *
 * The worker checks each topic this way (a topic dropped during a pass is
 * skipped) and the Kafka listener each partition of a request (its error
 * becomes that partition's error code).
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/resowner.h"

#include "util/util.h"

/*
 * Runs fn(arg) in a subtransaction.  Returns NULL if it finished, else the
 * error it raised (copied into the caller's memory context; the
 * subtransaction is rolled back and the error state cleared).
 */
ErrorData *
el_try(void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}
