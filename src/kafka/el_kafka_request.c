/*
 * el_kafka_request.c
 *		What every request handler of the Kafka listener shares: the
 *		listener's settings, a request's transaction, errors raised by
 *		eventlog's C paths as Kafka error codes, the clock and the address
 *		the listener advertises.
 *
 * The handlers (el_kafka_meta.c, el_kafka_produce.c, ...) use these, and
 * the event loop (el_kafka_worker.c) calls the handlers: calls go from the
 * loop down to the handlers and from them down to here, never back.
 */
#include "postgres.h"

#include <time.h>

#include "access/xact.h"
#include "utils/snapmgr.h"

#include "kafka/el_kafka.h"
#include "util/util.h"

/* Settings of the listener (registered in el_guc.c). */
int			eventlog_kafka_port = 0;
char	   *eventlog_kafka_listen_addresses = NULL;
char	   *eventlog_kafka_database = NULL;
char	   *eventlog_kafka_role = NULL;
char	   *eventlog_kafka_advertised_host = NULL;
int			eventlog_kafka_advertised_port = 0;
int			eventlog_kafka_max_request_bytes = 100 * 1024 * 1024;

/* ---- Errors ---- */

/* The Kafka error code for an error raised by eventlog's C paths. */
int16
ek_error_from_sqlstate(int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_UNDEFINED_TABLE:
		case ERRCODE_UNDEFINED_OBJECT:
			return EK_ERR_UNKNOWN_TOPIC_OR_PARTITION;
		case ERRCODE_INSUFFICIENT_PRIVILEGE:
			return EK_ERR_TOPIC_AUTHORIZATION_FAILED;
		case ERRCODE_PROGRAM_LIMIT_EXCEEDED:
			return EK_ERR_MESSAGE_TOO_LARGE;
		case ERRCODE_CHARACTER_NOT_IN_REPERTOIRE:
		case ERRCODE_UNTRANSLATABLE_CHARACTER:
			return EK_ERR_INVALID_RECORD;
		case ERRCODE_READ_ONLY_SQL_TRANSACTION:
			return EK_ERR_NOT_LEADER;
		case ERRCODE_LOCK_NOT_AVAILABLE:
		case ERRCODE_QUERY_CANCELED:
			return EK_ERR_REQUEST_TIMED_OUT;
		default:
			return EK_ERR_UNKNOWN_SERVER_ERROR;
	}
}

/*
 * Runs fn in a subtransaction of the current transaction and returns the
 * Kafka error code of what it raised (0 if nothing): one partition's error
 * becomes that partition's error code, the others go on.
 */
int16
ek_try(void (*fn) (void *arg), void *arg)
{
	ErrorData  *edata = el_try(fn, arg);
	int16		err;

	if (edata == NULL)
		return EK_ERR_NONE;
	err = ek_error_from_sqlstate(edata->sqlerrcode);
	ereport(err == EK_ERR_UNKNOWN_SERVER_ERROR ? LOG : DEBUG1,
			(errmsg("eventlog kafka listener: %s", edata->message)));
	FreeErrorData(edata);
	return err;
}

/*
 * Starts the request's transaction, with a snapshot for reading, staying in
 * the request's memory context: what handlers allocate lives until the
 * response is written, transaction or not.
 */
void
ek_begin(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(cxt);
}

void
ek_commit(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

int64
ek_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *
ek_advertised_host(void)
{
	if (eventlog_kafka_advertised_host && eventlog_kafka_advertised_host[0])
		return eventlog_kafka_advertised_host;
	return "127.0.0.1";
}

int
ek_advertised_port(void)
{
	return eventlog_kafka_advertised_port > 0 ? eventlog_kafka_advertised_port : eventlog_kafka_port;
}
