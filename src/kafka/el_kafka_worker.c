/*
 * el_kafka_worker.c
 *		The Kafka protocol listener: one background worker serving every
 *		Kafka client connection of one database with an event loop.
 *
 * Registered at server start when eventlog.kafka_port is set (it needs
 * shared_preload_libraries).  It connects to eventlog.kafka_database as
 * eventlog.kafka_role, so that the role's grants on topics decide what
 * clients may read and write, exactly as for SQL callers.
 *
 * The loop waits on a WaitEventSet over the listening sockets and the
 * client sockets, all non-blocking.  Each complete request frame is handled
 * at once, in one short transaction, through the same C paths as the SQL
 * functions; its response is queued and written as the socket takes it.
 * Requests of one connection are answered in order, as Kafka requires, so
 * a Fetch waiting for records (parked) holds back the requests behind it
 * on its connection, and only those.  Parked fetches are looked at again
 * when the commit counters of their partitions move (el_wakeup.c's shared
 * memory, polled on a short timeout), and answered at their deadline.
 *
 * Whatever a client sends, the loop never waits on it: a malformed request
 * gets an error response and the connection is closed after it; a frame
 * longer than eventlog.kafka_max_request_bytes closes the connection.
 */
#include "postgres.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"

#include "compat/compat.h"
#include "kafka/el_kafka.h"
#include "util/util.h"

PGDLLEXPORT void eventlog_kafka_main(Datum arg);

#define EK_MAX_LISTEN		16
#define EK_MAX_CONNS		256
#define EK_READ_CHUNK		65536
/* Stop taking requests of a connection while this much output waits. */
#define EK_OUT_HIGH_WATER	(4 * 1024 * 1024)
/* A parked Fetch looks again at least this often (COMMIT PREPARED wakes nobody). */
#define EK_PARK_RECHECK_MS	500
/* Poll step for parked requests (producers do not set this worker's latch). */
#define EK_PARK_POLL_MS		10

typedef struct EkConn
{
	bool		in_use;
	pgsocket	sock;
	MemoryContext cxt;			/* lives as long as the connection */
	MemoryContext reqcxt;		/* the request being handled */
	StringInfoData in;			/* bytes received */
	int			in_pos;			/* first byte not yet taken as a frame */
	StringInfoData out;			/* bytes to send */
	int			out_pos;		/* first byte not yet sent */
	bool		closing;		/* close once out is sent */
	bool		parked;
	char	   *frame;			/* the parked request (in reqcxt) */
	int			framelen;
	EkPark		park;
	int64		last_try_ms;
} EkConn;

static pgsocket ek_listen[EK_MAX_LISTEN];
static int	ek_nlisten = 0;
static EkConn ek_conns[EK_MAX_CONNS];

/* ---- Supported APIs ---- */

typedef struct EkApi
{
	int16		key;
	int16		min;
	int16		max;
	int16		flexible_from;	/* first flexible version, past max if none */
} EkApi;

/* Only what is implemented is advertised. */
static const EkApi ek_apis[] = {
	{EK_API_PRODUCE, 0, 7, 9},
	{EK_API_FETCH, 4, 11, 12},
	{EK_API_LIST_OFFSETS, 1, 2, 6},
	{EK_API_METADATA, 0, 4, 9},
	{EK_API_OFFSET_COMMIT, 2, 7, 8},
	{EK_API_OFFSET_FETCH, 1, 5, 6},
	{EK_API_FIND_COORDINATOR, 0, 2, 3},
	{EK_API_JOIN_GROUP, 0, 5, 6},
	{EK_API_HEARTBEAT, 0, 3, 4},
	{EK_API_LEAVE_GROUP, 0, 1, 4},
	{EK_API_SYNC_GROUP, 0, 3, 4},
	{EK_API_API_VERSIONS, 0, 3, 3},
	{EK_API_INIT_PRODUCER_ID, 0, 1, 2},
};

#define EK_NAPIS lengthof(ek_apis)

static const EkApi *
ek_api(int16 key)
{
	int			i;

	for (i = 0; i < EK_NAPIS; i++)
		if (ek_apis[i].key == key)
			return &ek_apis[i];
	return NULL;
}

bool
ek_api_supported(int16 api_key, int16 version)
{
	const EkApi *api = ek_api(api_key);

	return api && version >= api->min && version <= api->max;
}

bool
ek_api_flexible(int16 api_key, int16 version)
{
	const EkApi *api = ek_api(api_key);

	return api && version >= api->flexible_from;
}

/* ApiVersions: the supported list, in the shape of the request's version. */
EkOutcome
ek_api_versions(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	bool		flexible = v >= 3;
	int			i;

	/*
	 * A version this server does not know gets a v0 body with error 35 and
	 * the list, from which the client picks a version to ask again with.
	 */
	if (v > 3)
	{
		v = 0;
		flexible = false;
	}
	else if (flexible)
	{
		(void) ek_get_string(&req->body, true);	/* client software name */
		(void) ek_get_string(&req->body, true);	/* and version */
		ek_skip_tags(&req->body);
		if (req->body.error)
			return EK_MALFORMED;
	}
	ek_put_int16(out, req->api_version > 3 ? EK_ERR_UNSUPPORTED_VERSION : EK_ERR_NONE);
	ek_put_array_len(out, EK_NAPIS, flexible);
	for (i = 0; i < EK_NAPIS; i++)
	{
		ek_put_int16(out, ek_apis[i].key);
		ek_put_int16(out, ek_apis[i].min);
		ek_put_int16(out, ek_apis[i].max);
		if (flexible)
			ek_put_empty_tags(out);
	}
	if (v >= 1)
		ek_put_int32(out, 0);	/* throttle time */
	if (flexible)
		ek_put_empty_tags(out);
	return EK_RESPOND;
}

/* ---- Connections ---- */

static void
ek_conn_close(EkConn *c)
{
	closesocket(c->sock);
	MemoryContextDelete(c->cxt);
	memset(c, 0, sizeof(EkConn));
	c->sock = PGINVALID_SOCKET;
}

static void
ek_accept(pgsocket lsock)
{
	for (;;)
	{
		pgsocket	s = accept(lsock, NULL, NULL);
		EkConn	   *c = NULL;
		int			one = 1;
		int			i;

		if (s == PGINVALID_SOCKET)
			return;				/* EAGAIN, or a connection gone already */
		for (i = 0; i < EK_MAX_CONNS; i++)
			if (!ek_conns[i].in_use)
			{
				c = &ek_conns[i];
				break;
			}
		if (c == NULL)
		{
			ereport(LOG,
					(errmsg("eventlog kafka listener: too many connections, refusing one"),
					 errdetail("At most %d Kafka client connections are served at once.",
							   EK_MAX_CONNS)));
			closesocket(s);
			continue;
		}
		if (!pg_set_noblock(s))
		{
			closesocket(s);
			continue;
		}
		(void) setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		memset(c, 0, sizeof(EkConn));
		c->in_use = true;
		c->sock = s;
		c->cxt = AllocSetContextCreate(TopMemoryContext, "eventlog kafka connection",
									   ALLOCSET_DEFAULT_SIZES);
		c->reqcxt = AllocSetContextCreate(c->cxt, "eventlog kafka request",
										  ALLOCSET_DEFAULT_SIZES);
		MemoryContextSwitchTo(c->cxt);
		initStringInfo(&c->in);
		initStringInfo(&c->out);
		MemoryContextSwitchTo(TopMemoryContext);
	}
}

/* Starts a response frame: its length (patched later) and correlation id. */
static int
ek_response_start(EkConn *c, EkRequest *req)
{
	int			start = c->out.len;

	ek_put_int32(&c->out, 0);
	ek_put_int32(&c->out, req->correlation_id);
	/* ApiVersions' response header never has tagged fields, even when flexible */
	if (req->api_key != EK_API_API_VERSIONS && ek_api_flexible(req->api_key, req->api_version))
		ek_put_empty_tags(&c->out);
	return start;
}

static void
ek_response_end(EkConn *c, int start)
{
	ek_patch_int32(&c->out, start, c->out.len - start - 4);
}

/* An error response: the correlation id and an error code, then hang up. */
static void
ek_respond_error(EkConn *c, EkRequest *req, int start, int16 err)
{
	c->out.len = start;
	c->out.data[c->out.len] = '\0';
	start = ek_response_start(c, req);
	ek_put_int16(&c->out, err);
	ek_response_end(c, start);
	c->closing = true;
}

static EkOutcome
ek_dispatch(EkConn *c, EkRequest *req)
{
	switch (req->api_key)
	{
		case EK_API_API_VERSIONS:
			return ek_api_versions(req, &c->out);
		case EK_API_METADATA:
			return ek_metadata(req, &c->out);
		case EK_API_PRODUCE:
			return ek_produce(req, &c->out);
		case EK_API_FETCH:
			return ek_fetch(req, &c->out, &c->park);
		case EK_API_LIST_OFFSETS:
			return ek_list_offsets(req, &c->out);
		case EK_API_FIND_COORDINATOR:
			return ek_find_coordinator(req, &c->out);
		case EK_API_OFFSET_COMMIT:
			return ek_offset_commit(req, &c->out);
		case EK_API_OFFSET_FETCH:
			return ek_offset_fetch(req, &c->out);
		case EK_API_JOIN_GROUP:
			return ek_join_group(req, &c->out, &c->park);
		case EK_API_SYNC_GROUP:
			return ek_sync_group(req, &c->out, &c->park);
		case EK_API_HEARTBEAT:
			return ek_heartbeat(req, &c->out);
		case EK_API_LEAVE_GROUP:
			return ek_leave_group(req, &c->out);
		case EK_API_INIT_PRODUCER_ID:
			return ek_init_producer_id(req, &c->out);
		default:
			return EK_MALFORMED;	/* not reached: checked before */
	}
}

/*
 * Handles one request frame (the frame stays valid until the request is
 * answered).  Errors raised in a handler abort its transaction and become
 * an error response.
 */
static void
ek_handle(EkConn *c, char *frame, int len)
{
	EkRequest	req;
	EkReader	r;
	int			start;
	volatile EkOutcome outcome = EK_MALFORMED;
	volatile int16 err = EK_ERR_INVALID_REQUEST;

	ek_reader_init(&r, frame, len);
	req.api_key = ek_get_int16(&r);
	req.api_version = ek_get_int16(&r);
	req.correlation_id = ek_get_int32(&r);
	req.client_id = ek_get_string(&r, false);
	if (r.error)
	{
		/* not even a request header: nothing to answer to */
		c->closing = true;
		return;
	}

	start = ek_response_start(c, &req);
	if (req.api_key != EK_API_API_VERSIONS &&
		!ek_api_supported(req.api_key, req.api_version))
	{
		ereport(DEBUG1,
				(errmsg("eventlog kafka listener: unsupported API key %d version %d",
						req.api_key, req.api_version)));
		ek_respond_error(c, &req, start, EK_ERR_UNSUPPORTED_VERSION);
		return;
	}
	if (ek_api_flexible(req.api_key, req.api_version) &&
		!(req.api_key == EK_API_API_VERSIONS && req.api_version > 3))
		ek_skip_tags(&r);
	ek_reader_init(&req.body, r.data + r.pos, ek_remaining(&r));
	if (r.error)
	{
		ek_respond_error(c, &req, start, EK_ERR_INVALID_REQUEST);
		return;
	}

	PG_TRY();
	{
		outcome = ek_dispatch(c, &req);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(c->reqcxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortOutOfAnyTransaction();
		MemoryContextSwitchTo(c->reqcxt);
		ereport(LOG,
				(errmsg("eventlog kafka listener: API key %d version %d failed: %s",
						req.api_key, req.api_version, edata->message)));
		err = ek_error_from_sqlstate(edata->sqlerrcode);
		outcome = EK_MALFORMED;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(c->reqcxt);

	switch (outcome)
	{
		case EK_RESPOND:
			ek_response_end(c, start);
			c->parked = false;
			break;
		case EK_NO_RESPONSE:
			c->out.len = start;
			c->parked = false;
			break;
		case EK_PARK:
			c->out.len = start;
			c->parked = true;
			c->frame = frame;
			c->framelen = len;
			c->last_try_ms = ek_now_ms();
			break;
		case EK_MALFORMED:
			ereport(DEBUG1,
					(errmsg("eventlog kafka listener: malformed request, API key %d version %d",
							req.api_key, req.api_version)));
			ek_respond_error(c, &req, start, err);
			c->parked = false;
			break;
	}
	if (c->out.len < c->out.maxlen)
		c->out.data[c->out.len] = '\0';
}

/* Takes the complete frames received on a connection, in order. */
static void
ek_conn_process(EkConn *c)
{
	while (!c->parked && !c->closing && c->out.len - c->out_pos < EK_OUT_HIGH_WATER)
	{
		int			avail = c->in.len - c->in_pos;
		const unsigned char *p = (const unsigned char *) c->in.data + c->in_pos;
		int32		len;
		char	   *frame;

		if (avail < 4)
			break;
		len = (int32) (((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
					   ((uint32) p[2] << 8) | (uint32) p[3]);
		if (len < 8 || len > eventlog_kafka_max_request_bytes)
		{
			ereport(LOG,
					(errmsg("eventlog kafka listener: closing a connection that sent a frame of %d bytes",
							len),
					 errdetail("Frames are at least 8 and at most eventlog.kafka_max_request_bytes (%d) bytes long.",
							   eventlog_kafka_max_request_bytes)));
			c->closing = true;
			c->in_pos = c->in.len;
			break;
		}
		if (avail - 4 < len)
			break;

		MemoryContextReset(c->reqcxt);
		MemoryContextSwitchTo(c->reqcxt);
		memset(&c->park, 0, sizeof(EkPark));
		frame = palloc(len);
		memcpy(frame, c->in.data + c->in_pos + 4, len);
		c->in_pos += 4 + len;
		ek_handle(c, frame, len);
		MemoryContextSwitchTo(TopMemoryContext);
	}

	/* keep the input buffer small: drop what was taken */
	if (c->in_pos > 0 && (c->in_pos == c->in.len || c->in_pos > EK_READ_CHUNK))
	{
		memmove(c->in.data, c->in.data + c->in_pos, c->in.len - c->in_pos);
		c->in.len -= c->in_pos;
		c->in_pos = 0;
	}
}

/* Looks again at a parked request, whose frame is still in reqcxt. */
static void
ek_conn_retry(EkConn *c)
{
	MemoryContextSwitchTo(c->reqcxt);
	c->parked = false;
	ek_handle(c, c->frame, c->framelen);
	MemoryContextSwitchTo(TopMemoryContext);
	if (!c->parked)
		ek_conn_process(c);		/* requests queued behind it */
}

/* Reads what the socket has; false if the connection is gone. */
static bool
ek_conn_read(EkConn *c)
{
	for (;;)
	{
		ssize_t		n;

		enlargeStringInfo(&c->in, EK_READ_CHUNK);
		n = recv(c->sock, c->in.data + c->in.len, c->in.maxlen - c->in.len - 1, 0);
		if (n > 0)
		{
			c->in.len += n;
			c->in.data[c->in.len] = '\0';
			/* a big frame: take its bytes, then handle it */
			if (c->in.len - c->in_pos >= EK_READ_CHUNK * 4)
				ek_conn_process(c);
			if (c->parked || c->closing)
				return true;
			continue;
		}
		if (n == 0)
			return false;		/* closed by the client */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return true;
		return false;
	}
}

/* Writes what the socket takes; false if the connection is gone. */
static bool
ek_conn_write(EkConn *c)
{
	while (c->out_pos < c->out.len)
	{
		ssize_t		n = send(c->sock, c->out.data + c->out_pos, c->out.len - c->out_pos,
							 MSG_NOSIGNAL);

		if (n > 0)
		{
			c->out_pos += n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		return false;
	}
	resetStringInfo(&c->out);
	c->out_pos = 0;
	return !c->closing;
}

/* ---- Listening ---- */

static void
ek_listen_on(const char *host)
{
	struct addrinfo hints;
	struct addrinfo *res = NULL;
	struct addrinfo *ai;
	char		port[16];
	int			rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", eventlog_kafka_port);
	rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &res);
	if (rc != 0)
	{
		ereport(WARNING,
				(errmsg("eventlog kafka listener: could not resolve \"%s\": %s",
						host, gai_strerror(rc))));
		return;
	}
	for (ai = res; ai != NULL && ek_nlisten < EK_MAX_LISTEN; ai = ai->ai_next)
	{
		pgsocket	s = socket(ai->ai_family, SOCK_STREAM, 0);
		int			one = 1;

		if (s == PGINVALID_SOCKET)
			continue;
		(void) setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
#ifdef IPV6_V6ONLY
		if (ai->ai_family == AF_INET6)
			(void) setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
#endif
		if (bind(s, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s, 128) < 0 ||
			!pg_set_noblock(s))
		{
			ereport(WARNING,
					(errcode_for_socket_access(),
					 errmsg("eventlog kafka listener: could not listen on \"%s\" port %d: %m",
							host, eventlog_kafka_port)));
			closesocket(s);
			continue;
		}
		ek_listen[ek_nlisten++] = s;
	}
	freeaddrinfo(res);
}

static void
ek_listen_all(void)
{
	char	   *raw = pstrdup(eventlog_kafka_listen_addresses);
	List	   *hosts;
	ListCell   *lc;

	if (!SplitGUCList(raw, ',', &hosts))
		ereport(FATAL,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid list syntax in parameter \"eventlog.kafka_listen_addresses\"")));
	foreach(lc, hosts)
		ek_listen_on((const char *) lfirst(lc));
	if (ek_nlisten == 0)
		ereport(FATAL,
				(errmsg("eventlog kafka listener: could not listen on any of \"%s\" port %d",
						eventlog_kafka_listen_addresses, eventlog_kafka_port)));
	ereport(LOG,
			(errmsg("eventlog kafka listener: listening on \"%s\" port %d for database \"%s\" as role \"%s\"",
					eventlog_kafka_listen_addresses, eventlog_kafka_port,
					eventlog_kafka_database, eventlog_kafka_role)));
}

/* ---- The loop ---- */

void
eventlog_kafka_main(Datum arg)
{
	MemoryContext loopcxt;
	WaitEvent	events[EK_MAX_CONNS + EK_MAX_LISTEN + 2];
	int			i;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (eventlog_kafka_role == NULL || eventlog_kafka_role[0] == '\0')
	{
		/* never act as a superuser by default: say what is missing, once */
		ereport(LOG,
				(errmsg("eventlog kafka listener not started: eventlog.kafka_role is not set"),
				 errhint("Set eventlog.kafka_role to a role with the grants Kafka clients should have, and restart the server.")));
		proc_exit(0);
	}
	BackgroundWorkerInitializeConnection(eventlog_kafka_database, eventlog_kafka_role, 0);
	pgstat_report_appname("eventlog kafka listener");
	pgstat_report_activity(STATE_IDLE, NULL);

	for (i = 0; i < EK_MAX_CONNS; i++)
		ek_conns[i].sock = PGINVALID_SOCKET;
	MemoryContextSwitchTo(TopMemoryContext);
	ek_listen_all();
	loopcxt = AllocSetContextCreate(TopMemoryContext, "eventlog kafka loop",
									ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		WaitEventSet *set;
		int			nevents;
		int			nparked = 0;
		long		timeout = 1000;
		int64		now;

		MemoryContextReset(loopcxt);
		set = el_create_wait_event_set(loopcxt, EK_MAX_CONNS + EK_MAX_LISTEN + 2);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		for (i = 0; i < ek_nlisten; i++)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, ek_listen[i], NULL, NULL);
		for (i = 0; i < EK_MAX_CONNS; i++)
		{
			EkConn	   *c = &ek_conns[i];
			uint32		ev = 0;

			if (!c->in_use)
				continue;
			if (c->out.len > c->out_pos)
				ev |= WL_SOCKET_WRITEABLE;
			/* a parked or closing connection is not read: its requests wait */
			if (!c->parked && !c->closing && c->out.len - c->out_pos < EK_OUT_HIGH_WATER)
				ev |= WL_SOCKET_READABLE;
			if (c->parked)
				nparked++;
			if (ev)
				AddWaitEventToSet(set, ev, c->sock, NULL, c);
		}
		if (nparked > 0)
			timeout = EK_PARK_POLL_MS;

		nevents = WaitEventSetWait(set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
		/* rebuilt at each turn, as connections come, go, park and wake */
		FreeWaitEventSet(set);
		for (i = 0; i < nevents; i++)
		{
			WaitEvent  *ev = &events[i];
			EkConn	   *c = (EkConn *) ev->user_data;

			if (ev->events & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				continue;
			}
			if (c == NULL)
			{
				if (ev->events & WL_SOCKET_READABLE)
					ek_accept(ev->fd);
				continue;
			}
			if (!c->in_use)
				continue;
			if (ev->events & WL_SOCKET_READABLE)
			{
				if (!ek_conn_read(c))
				{
					ek_conn_close(c);
					continue;
				}
				ek_conn_process(c);
			}
			if (c->out.len > c->out_pos || c->closing)
			{
				if (!ek_conn_write(c))
				{
					ek_conn_close(c);
					continue;
				}
			}
			/* output drained: take the requests held back by it */
			if (!c->parked && !c->closing && c->in.len > c->in_pos)
				ek_conn_process(c);
		}
		MemoryContextSwitchTo(TopMemoryContext);

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* silent group members, rebalances whose time is up */
		ek_groups_tick();

		/* parked requests: records committed, or time is up */
		now = ek_now_ms();
		for (i = 0; i < EK_MAX_CONNS && nparked > 0; i++)
		{
			EkConn	   *c = &ek_conns[i];

			if (!c->in_use || !c->parked)
				continue;
			if (now >= c->park.deadline_ms ||
				now - c->last_try_ms >= (c->park.recheck_ms > 0 ?
										 c->park.recheck_ms : EK_PARK_RECHECK_MS) ||
				ek_log_stamp(c->park.wait_ids, c->park.nwait) != c->park.stamp)
			{
				ek_conn_retry(c);
				if ((c->out.len > c->out_pos || c->closing) && !ek_conn_write(c))
					ek_conn_close(c);
			}
		}

		/* connections to hang up on whose last response is out */
		for (i = 0; i < EK_MAX_CONNS; i++)
			if (ek_conns[i].in_use && ek_conns[i].closing &&
				ek_conns[i].out_pos >= ek_conns[i].out.len)
				ek_conn_close(&ek_conns[i]);
	}
}

/* ---- Setup ---- */

/*
 * Registers the listener when eventlog.kafka_port is set (only under
 * shared_preload_libraries: the port is fixed at server start).
 */
void
ElKafkaInit(void)
{
	BackgroundWorker worker;

	if (!process_shared_preload_libraries_in_progress || IsBinaryUpgrade)
		return;
	if (eventlog_kafka_port <= 0)
		return;

	el_describe_worker(&worker, "eventlog_kafka_main", "eventlog kafka listener", 5);
	RegisterBackgroundWorker(&worker);
}
