/*
 * el_kafka_group.c
 *		Kafka consumer groups: the membership APIs (JoinGroup, SyncGroup,
 *		Heartbeat, LeaveGroup) and committed offsets (OffsetCommit,
 *		OffsetFetch).
 *
 * Kafka clients assign partitions themselves: the coordinator only gathers
 * the members (JoinGroup), hands the leader everyone's subscription, and
 * passes the leader's assignment on to each member (SyncGroup).  That state
 * is short-lived and belongs to connected clients, so it lives in the
 * listener's memory, which is one process: a restart of the listener makes
 * the members join again, as a coordinator failover does in Kafka.
 *
 * Committed offsets are eventlog's: OffsetCommit writes the group's rows in
 * eventlog.group_offset, with the group created as eventlog.consume would
 * create it (owned by the listener's role), so eventlog.lag shows a Kafka
 * group's lag and eventlog.reset_offsets moves it.  A commit must come from
 * a member of the current generation, unless it is a standalone commit
 * (generation -1, no member), as in Kafka.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/memutils.h"

#include "groups/groups.h"
#include "kafka/el_kafka.h"

typedef enum EkGroupState
{
	EK_GROUP_EMPTY,
	EK_GROUP_PREPARING,			/* waiting for members to (re)join */
	EK_GROUP_AWAITING_SYNC,		/* joined; waiting for the leader's assignment */
	EK_GROUP_STABLE
} EkGroupState;

typedef struct EkMember
{
	char	   *id;
	int32		session_timeout;
	int32		rebalance_timeout;
	int64		last_seen_ms;
	bool		joined;			/* has joined the rebalance under way */
	int			nprotocols;
	char	  **protocol_names;
	char	  **protocol_meta;
	int		   *protocol_meta_len;
	char	   *assignment;
	int			assignment_len;
} EkMember;

typedef struct EkGroup
{
	char	   *id;
	char	   *protocol_type;
	EkGroupState state;
	int32		generation;
	char	   *leader;
	char	   *protocol;
	int64		rebalance_deadline_ms;
	List	   *members;		/* EkMember * */
} EkGroup;

static MemoryContext ek_group_cxt = NULL;
static List *ek_groups = NIL;
static uint64 ek_member_counter = 0;

/* How often a parked join or sync looks again. */
#define EK_GROUP_RECHECK_MS 20

static EkGroup *
ek_group_find(const char *id, bool create)
{
	ListCell   *lc;
	EkGroup    *g;
	MemoryContext old;

	foreach(lc, ek_groups)
	{
		g = lfirst(lc);
		if (strcmp(g->id, id) == 0)
			return g;
	}
	if (!create)
		return NULL;
	if (ek_group_cxt == NULL)
		ek_group_cxt = AllocSetContextCreate(TopMemoryContext, "eventlog kafka groups",
											 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(ek_group_cxt);
	g = palloc0(sizeof(EkGroup));
	g->id = pstrdup(id);
	g->state = EK_GROUP_EMPTY;
	ek_groups = lappend(ek_groups, g);
	MemoryContextSwitchTo(old);
	return g;
}

static EkMember *
ek_member_find(EkGroup *g, const char *id)
{
	ListCell   *lc;

	if (id == NULL)
		return NULL;
	foreach(lc, g->members)
	{
		EkMember   *m = lfirst(lc);

		if (strcmp(m->id, id) == 0)
			return m;
	}
	return NULL;
}

static void
ek_member_free_protocols(EkMember *m)
{
	int			i;

	for (i = 0; i < m->nprotocols; i++)
	{
		pfree(m->protocol_names[i]);
		if (m->protocol_meta[i])
			pfree(m->protocol_meta[i]);
	}
	if (m->nprotocols > 0)
	{
		pfree(m->protocol_names);
		pfree(m->protocol_meta);
		pfree(m->protocol_meta_len);
	}
	m->nprotocols = 0;
}

static void
ek_member_remove(EkGroup *g, EkMember *m)
{
	g->members = list_delete_ptr(g->members, m);
	ek_member_free_protocols(m);
	if (m->assignment)
		pfree(m->assignment);
	pfree(m->id);
	pfree(m);
}

/* Starts a rebalance: every member must join again. */
static void
ek_group_rebalance(EkGroup *g, int64 now)
{
	ListCell   *lc;
	int32		timeout = 0;

	foreach(lc, g->members)
	{
		EkMember   *m = lfirst(lc);

		m->joined = false;
		timeout = Max(timeout, m->rebalance_timeout);
	}
	if (g->members == NIL)
	{
		g->state = EK_GROUP_EMPTY;
		return;
	}
	g->state = EK_GROUP_PREPARING;
	g->rebalance_deadline_ms = now + Max(timeout, 1000);
}

/*
 * Ends a rebalance once every member has joined again (or the time is up:
 * those that did not are dropped), with a new generation and a leader.
 */
static void
ek_group_maybe_complete(EkGroup *g, int64 now)
{
	ListCell   *lc;
	bool		all = true;
	EkMember   *leader;

	if (g->state != EK_GROUP_PREPARING)
		return;
	foreach(lc, g->members)
		if (!((EkMember *) lfirst(lc))->joined)
			all = false;
	if (!all && now < g->rebalance_deadline_ms)
		return;
	/* drop those that did not join in time (one at a time: the list changes) */
	while (true)
	{
		EkMember   *gone = NULL;

		foreach(lc, g->members)
			if (!((EkMember *) lfirst(lc))->joined)
				gone = lfirst(lc);
		if (gone == NULL)
			break;
		ek_member_remove(g, gone);
	}
	if (g->members == NIL)
	{
		g->state = EK_GROUP_EMPTY;
		return;
	}
	g->generation++;
	leader = ek_member_find(g, g->leader);
	if (leader == NULL)
		leader = linitial(g->members);
	if (g->leader)
		pfree(g->leader);
	if (g->protocol)
		pfree(g->protocol);
	g->leader = MemoryContextStrdup(ek_group_cxt, leader->id);
	/* the leader's first protocol: librdkafka members offer the same ones */
	g->protocol = MemoryContextStrdup(ek_group_cxt,
									  leader->nprotocols > 0 ? leader->protocol_names[0] : "");
	foreach(lc, g->members)
	{
		EkMember   *m = lfirst(lc);

		if (m->assignment)
			pfree(m->assignment);
		m->assignment = NULL;
		m->assignment_len = 0;
		m->last_seen_ms = now;
	}
	g->state = EK_GROUP_AWAITING_SYNC;
}

/*
 * Drops members silent past their session timeout, and ends rebalances
 * whose time is up.  Called by the event loop at every turn.
 */
void
ek_groups_tick(void)
{
	int64		now = ek_now_ms();
	ListCell   *lc;

	foreach(lc, ek_groups)
	{
		EkGroup    *g = lfirst(lc);
		EkMember   *gone;

		if (g->state == EK_GROUP_STABLE)
		{
			do
			{
				ListCell   *mc;

				gone = NULL;
				foreach(mc, g->members)
				{
					EkMember   *m = lfirst(mc);

					if (now - m->last_seen_ms > m->session_timeout)
						gone = m;
				}
				if (gone)
				{
					ereport(LOG,
							(errmsg("eventlog kafka listener: member \"%s\" of group \"%s\" timed out",
									gone->id, g->id)));
					ek_member_remove(g, gone);
					ek_group_rebalance(g, now);
				}
			} while (gone && g->state == EK_GROUP_STABLE);
		}
		ek_group_maybe_complete(g, now);
	}
}

/* ---- JoinGroup (versions 0 to 5) ---- */

EkOutcome
ek_join_group(EkRequest *req, StringInfo out, EkPark *park)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	char	   *group_id;
	int32		session_timeout;
	int32		rebalance_timeout;
	char	   *member_id;
	char	   *protocol_type;
	int32		nprotocols;
	char	  **names;
	const char **metas;
	int		   *metalens;
	EkGroup    *g;
	EkMember   *m;
	int16		err = EK_ERR_NONE;
	int64		now = ek_now_ms();
	int			i;

	group_id = ek_get_string(r, false);
	session_timeout = ek_get_int32(r);
	rebalance_timeout = v >= 1 ? ek_get_int32(r) : session_timeout;
	member_id = ek_get_string(r, false);
	if (v >= 5)
		(void) ek_get_string(r, false); /* group instance id: no static members */
	protocol_type = ek_get_string(r, false);
	nprotocols = ek_get_array_len(r, false, 6);
	if (r->error || nprotocols < 0 || group_id == NULL || protocol_type == NULL)
		return EK_MALFORMED;
	names = palloc(sizeof(char *) * Max(nprotocols, 1));
	metas = palloc(sizeof(char *) * Max(nprotocols, 1));
	metalens = palloc(sizeof(int) * Max(nprotocols, 1));
	for (i = 0; i < nprotocols; i++)
	{
		names[i] = ek_get_string(r, false);
		metas[i] = ek_get_bytes(r, false, &metalens[i]);
		if (names[i] == NULL)
			r->error = true;
	}
	if (r->error)
		return EK_MALFORMED;

	g = ek_group_find(group_id, group_id[0] != '\0');
	if (g == NULL)
		err = EK_ERR_INVALID_GROUP_ID;
	else if (session_timeout < 1000 || session_timeout > 3600000)
		err = EK_ERR_INVALID_SESSION_TIMEOUT;
	else if (park->state == NULL)
	{
		/* first look at this request: the member joins */
		MemoryContext old;

		if (g->members != NIL && g->protocol_type &&
			strcmp(g->protocol_type, protocol_type) != 0)
			err = EK_ERR_INCONSISTENT_GROUP_PROTOCOL;
		else if (member_id && member_id[0] != '\0' && ek_member_find(g, member_id) == NULL)
			err = EK_ERR_UNKNOWN_MEMBER_ID;
		else
		{
			old = MemoryContextSwitchTo(ek_group_cxt);
			m = ek_member_find(g, member_id);
			if (m == NULL)
			{
				m = palloc0(sizeof(EkMember));
				m->id = psprintf("%s-%llu",
								 req->client_id && req->client_id[0] ? req->client_id : "member",
								 (unsigned long long) ++ek_member_counter);
				g->members = lappend(g->members, m);
			}
			if (g->protocol_type)
				pfree(g->protocol_type);
			g->protocol_type = pstrdup(protocol_type);
			ek_member_free_protocols(m);
			m->nprotocols = nprotocols;
			m->protocol_names = palloc(sizeof(char *) * Max(nprotocols, 1));
			m->protocol_meta = palloc(sizeof(char *) * Max(nprotocols, 1));
			m->protocol_meta_len = palloc(sizeof(int) * Max(nprotocols, 1));
			for (i = 0; i < nprotocols; i++)
			{
				m->protocol_names[i] = pstrdup(names[i]);
				m->protocol_meta_len[i] = metalens[i];
				m->protocol_meta[i] = NULL;
				if (metalens[i] > 0)
				{
					m->protocol_meta[i] = palloc(metalens[i]);
					memcpy(m->protocol_meta[i], metas[i], metalens[i]);
				}
			}
			m->session_timeout = session_timeout;
			m->rebalance_timeout = Max(rebalance_timeout, 0);
			m->last_seen_ms = now;
			MemoryContextSwitchTo(old);

			if (g->state != EK_GROUP_PREPARING)
				ek_group_rebalance(g, now);
			m->joined = true;
			park->state = pstrdup(m->id);
			park->deadline_ms = g->rebalance_deadline_ms + 1000;
			park->recheck_ms = EK_GROUP_RECHECK_MS;
		}
	}

	if (err == EK_ERR_NONE)
	{
		ek_group_maybe_complete(g, now);
		m = ek_member_find(g, (char *) park->state);
		if (m == NULL)
			err = EK_ERR_UNKNOWN_MEMBER_ID;
		else if (g->state == EK_GROUP_PREPARING)
		{
			m->last_seen_ms = now;
			return EK_PARK;
		}
	}

	if (v >= 2)
		ek_put_int32(out, 0);	/* throttle time */
	ek_put_int16(out, err);
	if (err != EK_ERR_NONE)
	{
		ek_put_int32(out, -1);
		ek_put_string(out, "", false);
		ek_put_string(out, "", false);
		ek_put_string(out, member_id ? member_id : "", false);
		ek_put_array_len(out, 0, false);
		return EK_RESPOND;
	}
	m = ek_member_find(g, (char *) park->state);
	ek_put_int32(out, g->generation);
	ek_put_string(out, g->protocol, false);
	ek_put_string(out, g->leader, false);
	ek_put_string(out, m->id, false);
	if (strcmp(m->id, g->leader) == 0)
	{
		ListCell   *lc;

		ek_put_array_len(out, list_length(g->members), false);
		foreach(lc, g->members)
		{
			EkMember   *mm = lfirst(lc);
			int			p = -1;

			for (i = 0; i < mm->nprotocols; i++)
				if (strcmp(mm->protocol_names[i], g->protocol) == 0)
					p = i;
			ek_put_string(out, mm->id, false);
			if (v >= 5)
				ek_put_string(out, NULL, false);
			if (p >= 0)
				ek_put_bytes(out, mm->protocol_meta[p], mm->protocol_meta_len[p], false);
			else
				ek_put_bytes(out, NULL, 0, false);
		}
	}
	else
		ek_put_array_len(out, 0, false);
	return EK_RESPOND;
}

/* ---- SyncGroup (versions 0 to 3) ---- */

EkOutcome
ek_sync_group(EkRequest *req, StringInfo out, EkPark *park)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	char	   *group_id;
	int32		generation;
	char	   *member_id;
	int32		n;
	EkGroup    *g;
	EkMember   *m = NULL;
	int16		err = EK_ERR_NONE;
	int			i;

	group_id = ek_get_string(r, false);
	generation = ek_get_int32(r);
	member_id = ek_get_string(r, false);
	if (v >= 3)
		(void) ek_get_string(r, false); /* group instance id */
	n = ek_get_array_len(r, false, 6);
	if (r->error || group_id == NULL || n < 0)
		return EK_MALFORMED;

	g = ek_group_find(group_id, false);
	if (g == NULL || (m = ek_member_find(g, member_id)) == NULL)
		err = EK_ERR_UNKNOWN_MEMBER_ID;
	else if (g->state == EK_GROUP_PREPARING)
		err = EK_ERR_REBALANCE_IN_PROGRESS;
	else if (generation != g->generation)
		err = EK_ERR_ILLEGAL_GENERATION;
	else if (g->state == EK_GROUP_AWAITING_SYNC && strcmp(m->id, g->leader) == 0)
	{
		/* the leader's assignment, for every member */
		for (i = 0; i < n; i++)
		{
			char	   *target = ek_get_string(r, false);
			int			len;
			const char *data = ek_get_bytes(r, false, &len);
			EkMember   *tm;

			if (r->error)
				return EK_MALFORMED;
			tm = ek_member_find(g, target);
			if (tm == NULL)
				continue;
			if (tm->assignment)
				pfree(tm->assignment);
			tm->assignment = NULL;
			tm->assignment_len = Max(len, 0);
			if (len > 0)
			{
				tm->assignment = MemoryContextAlloc(ek_group_cxt, len);
				memcpy(tm->assignment, data, len);
			}
		}
		g->state = EK_GROUP_STABLE;
	}
	else if (g->state == EK_GROUP_AWAITING_SYNC)
	{
		/* a follower waits for the leader */
		if (park->state == NULL)
		{
			park->state = park;
			park->deadline_ms = ek_now_ms() + m->session_timeout;
			park->recheck_ms = EK_GROUP_RECHECK_MS;
		}
		if (ek_now_ms() < park->deadline_ms)
		{
			m->last_seen_ms = ek_now_ms();
			return EK_PARK;
		}
		err = EK_ERR_REBALANCE_IN_PROGRESS;
	}
	if (m)
		m->last_seen_ms = ek_now_ms();

	if (v >= 1)
		ek_put_int32(out, 0);	/* throttle time */
	ek_put_int16(out, err);
	if (err == EK_ERR_NONE && m->assignment_len > 0)
		ek_put_bytes(out, m->assignment, m->assignment_len, false);
	else
		ek_put_bytes(out, "", 0, false);
	return EK_RESPOND;
}

/* ---- Heartbeat (versions 0 to 3) and LeaveGroup (0 and 1) ---- */

EkOutcome
ek_heartbeat(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	char	   *group_id = ek_get_string(r, false);
	int32		generation = ek_get_int32(r);
	char	   *member_id = ek_get_string(r, false);
	EkGroup    *g;
	EkMember   *m = NULL;
	int16		err = EK_ERR_NONE;

	if (v >= 3)
		(void) ek_get_string(r, false);
	if (r->error || group_id == NULL)
		return EK_MALFORMED;
	g = ek_group_find(group_id, false);
	if (g == NULL || (m = ek_member_find(g, member_id)) == NULL)
		err = EK_ERR_UNKNOWN_MEMBER_ID;
	else if (g->state == EK_GROUP_PREPARING)
		err = EK_ERR_REBALANCE_IN_PROGRESS;
	else if (generation != g->generation)
		err = EK_ERR_ILLEGAL_GENERATION;
	if (m)
		m->last_seen_ms = ek_now_ms();
	if (v >= 1)
		ek_put_int32(out, 0);
	ek_put_int16(out, err);
	return EK_RESPOND;
}

EkOutcome
ek_leave_group(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	char	   *group_id = ek_get_string(r, false);
	char	   *member_id = ek_get_string(r, false);
	EkGroup    *g;
	EkMember   *m = NULL;
	int16		err = EK_ERR_NONE;

	if (r->error || group_id == NULL)
		return EK_MALFORMED;
	g = ek_group_find(group_id, false);
	if (g == NULL || (m = ek_member_find(g, member_id)) == NULL)
		err = EK_ERR_UNKNOWN_MEMBER_ID;
	else
	{
		ek_member_remove(g, m);
		ek_group_rebalance(g, ek_now_ms());
	}
	if (v >= 1)
		ek_put_int32(out, 0);
	ek_put_int16(out, err);
	return EK_RESPOND;
}

/* ---- OffsetCommit (versions 2 to 7) ---- */

typedef struct EkCommitArg
{
	const char *group;
	const char *topic;
	int32		partition;
	int64		offset;
} EkCommitArg;

static void
ek_commit_one(void *arg)
{
	EkCommitArg *a = arg;
	EkPartitionState st;
	int64		current;
	int64		seq;

	ek_log_state(a->topic, a->partition, &st);	/* checks the topic and the right to read */
	if (a->offset < 0 || a->offset > st.high_watermark)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset " INT64_FORMAT " is outside partition %d of topic \"%s\"",
						a->offset, a->partition, a->topic)));
	el_group_lock_offsets(a->group);
	SPI_connect();
	el_group_ensure(a->group);
	el_group_require_access(a->group);
	el_offset_lock(a->group, a->topic, a->partition, a->offset, &current, &seq);
	el_offset_set(a->group, a->topic, a->partition, a->offset, seq);
	SPI_finish();
}

EkOutcome
ek_offset_commit(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	char	   *group_id;
	int32		generation;
	char	   *member_id;
	int32		ntopics;
	int16		group_err = EK_ERR_NONE;
	EkGroup    *g;
	int			t;

	group_id = ek_get_string(r, false);
	generation = ek_get_int32(r);
	member_id = ek_get_string(r, false);
	if (v >= 7)
		(void) ek_get_string(r, false); /* group instance id */
	if (v >= 2 && v <= 4)
		(void) ek_get_int64(r); /* retention time */
	ntopics = ek_get_array_len(r, false, 6);
	if (r->error || group_id == NULL || ntopics < 0)
		return EK_MALFORMED;

	/* a member's commit is fenced by its generation; a standalone one is not */
	g = ek_group_find(group_id, false);
	if (group_id[0] == '\0')
		group_err = EK_ERR_INVALID_GROUP_ID;
	else if (generation >= 0 || (member_id && member_id[0] != '\0'))
	{
		EkMember   *m = g ? ek_member_find(g, member_id) : NULL;

		/*
		 * While members rejoin, the generation has not changed yet: they may
		 * still commit what they processed before giving partitions up.
		 */
		if (m == NULL)
			group_err = EK_ERR_UNKNOWN_MEMBER_ID;
		else if (g->state == EK_GROUP_AWAITING_SYNC)
			group_err = EK_ERR_REBALANCE_IN_PROGRESS;
		else if (generation != g->generation)
			group_err = EK_ERR_ILLEGAL_GENERATION;
		else
			m->last_seen_ms = ek_now_ms();
	}
	else if (g && g->members != NIL)
		group_err = EK_ERR_UNKNOWN_MEMBER_ID;

	if (v >= 3)
		ek_put_int32(out, 0);	/* throttle time */
	ek_put_array_len(out, ntopics, false);
	ek_begin();
	for (t = 0; t < ntopics; t++)
	{
		char	   *topic = ek_get_string(r, false);
		int32		nparts = ek_get_array_len(r, false, 14);
		int			p;

		if (r->error || topic == NULL || nparts < 0)
		{
			ek_commit();
			return EK_MALFORMED;
		}
		ek_put_string(out, topic, false);
		ek_put_array_len(out, nparts, false);
		for (p = 0; p < nparts; p++)
		{
			EkCommitArg a;
			int16		err = group_err;

			a.group = group_id;
			a.topic = topic;
			a.partition = ek_get_int32(r);
			a.offset = ek_get_int64(r);
			if (v >= 6)
				(void) ek_get_int32(r); /* leader epoch */
			(void) ek_get_string(r, false); /* metadata: not kept */
			if (r->error)
			{
				ek_commit();
				return EK_MALFORMED;
			}
			if (err == EK_ERR_NONE)
			{
				err = ek_try(ek_commit_one, &a);
				if (err == EK_ERR_UNKNOWN_SERVER_ERROR)
					err = EK_ERR_INVALID_COMMIT_OFFSET_SIZE;
			}
			ek_put_int32(out, a.partition);
			ek_put_int16(out, err);
		}
	}
	ek_commit();
	return EK_RESPOND;
}

/* ---- OffsetFetch (versions 1 to 5) ---- */

typedef struct EkOffsetArg
{
	const char *group;
	const char *topic;
	int32		partition;
	int64		offset;
} EkOffsetArg;

static void
ek_offset_one(void *arg)
{
	EkOffsetArg *a = arg;

	ek_log_check(a->topic, a->partition, ACL_SELECT);
	SPI_connect();
	if (!el_offset_get(a->group, a->topic, a->partition, &a->offset))
		a->offset = -1;
	SPI_finish();
}

EkOutcome
ek_offset_fetch(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	char	   *group_id;
	int32		ntopics;
	int			t;

	group_id = ek_get_string(r, false);
	ntopics = ek_get_array_len(r, false, 6);
	if (r->error || group_id == NULL)
		return EK_MALFORMED;

	if (v >= 3)
		ek_put_int32(out, 0);	/* throttle time */
	/* null (all the group's topics) is answered with none: clients name them */
	ek_put_array_len(out, Max(ntopics, 0), false);
	ek_begin();
	for (t = 0; t < ntopics; t++)
	{
		char	   *topic = ek_get_string(r, false);
		int32		nparts = ek_get_array_len(r, false, 4);
		int			p;

		if (r->error || topic == NULL || nparts < 0)
		{
			ek_commit();
			return EK_MALFORMED;
		}
		ek_put_string(out, topic, false);
		ek_put_array_len(out, nparts, false);
		for (p = 0; p < nparts; p++)
		{
			EkOffsetArg a;
			int16		err;

			a.group = group_id;
			a.topic = topic;
			a.partition = ek_get_int32(r);
			a.offset = -1;
			if (r->error)
			{
				ek_commit();
				return EK_MALFORMED;
			}
			err = ek_try(ek_offset_one, &a);
			ek_put_int32(out, a.partition);
			ek_put_int64(out, err ? -1 : a.offset);
			if (v >= 5)
				ek_put_int32(out, -1);	/* leader epoch */
			ek_put_string(out, "", false);	/* metadata */
			ek_put_int16(out, err);
		}
	}
	ek_commit();
	if (v >= 2)
		ek_put_int16(out, EK_ERR_NONE);
	return EK_RESPOND;
}
