/*
 * el_group.c
 *		Consumer groups: membership, assignment and committed offsets.
 *
 * Groups live in catalog tables of schema eventlog, so that nothing depends
 * on a session staying open between calls (consumers often come through
 * connection pools).  Every call of a member counts as a heartbeat; members
 * silent past the session timeout lose their partitions at the next
 * rebalance.  The tables are written as the extension's owner: callers
 * need rights on topics, not on eventlog's catalog.
 *
 * The committed-offset row of a partition is also its fence: consume(...,
 * commit => true) locks it before reading, so two transactions can never
 * process the same records of a partition, whatever rebalances happen
 * meanwhile; a locked row is skipped, not waited for.  Writers of offsets
 * hold the group's lock (el_grouplock.c), so that delete_group sees them.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "groups/el_group.h"
#include "log/log.h"

/* Session timeout of members, in milliseconds (eventlog.session_timeout). */
int			eventlog_session_timeout = 10000;

#define EL_LIVE \
	"m.last_heartbeat > clock_timestamp() - coalesce(g.session_timeout, make_interval(secs => $%d))"

typedef enum ElQuery
{
	Q_GROUP_ENSURE,
	Q_GROUP_LOCK,
	Q_GROUP_LOCK_WAIT,
	Q_GROUP_BUMP,
	Q_GROUP_DELETE,
	Q_GROUP_SET_TIMEOUT,
	Q_LIVE_COUNT,
	Q_MEMBER_JOIN,
	Q_MEMBER_FRESH,
	Q_MEMBER_LIVE,
	Q_MEMBER_HEARTBEAT,
	Q_MEMBER_LEAVE,
	Q_LIVE_MEMBERS,
	Q_ASSIGNMENTS,
	Q_ASSIGN_WRITE,
	Q_ASSIGN_TRIM,
	Q_OWNER,
	Q_OFFSETS_ENSURE,
	Q_OFFSET_RESET,
	Q_EXPIRED,
	EL_NQUERIES
} ElQuery;

typedef struct ElQueryDef
{
	const char *sql;
	int			nargs;
	Oid			types[6];
} ElQueryDef;

static const ElQueryDef el_queries[EL_NQUERIES] = {
	[Q_GROUP_ENSURE] = {"INSERT INTO eventlog.consumer_group (grp, owner) VALUES ($1, $2) ON CONFLICT (grp) DO NOTHING",
	2, {TEXTOID, TEXTOID}},
	[Q_GROUP_LOCK] = {"SELECT generation FROM eventlog.consumer_group WHERE grp = $1 FOR NO KEY UPDATE SKIP LOCKED",
	1, {TEXTOID}},
	[Q_GROUP_LOCK_WAIT] = {"SELECT generation FROM eventlog.consumer_group WHERE grp = $1 FOR NO KEY UPDATE",
	1, {TEXTOID}},
	[Q_GROUP_BUMP] = {"UPDATE eventlog.consumer_group SET generation = generation + 1 WHERE grp = $1 RETURNING generation",
	1, {TEXTOID}},
	/* Members and assignments go by cascade, offsets here (no foreign key). */
	[Q_GROUP_DELETE] = {"WITH o AS (DELETE FROM eventlog.group_offset WHERE grp = $1) "
		"DELETE FROM eventlog.consumer_group WHERE grp = $1",
	1, {TEXTOID}},
	[Q_GROUP_SET_TIMEOUT] = {"UPDATE eventlog.consumer_group SET session_timeout = $2 WHERE grp = $1",
	2, {TEXTOID, INTERVALOID}},
	[Q_LIVE_COUNT] = {"SELECT count(*) FROM eventlog.group_member m JOIN eventlog.consumer_group g USING (grp) "
		"WHERE m.grp = $1 AND m.last_heartbeat > clock_timestamp() - coalesce(g.session_timeout, make_interval(secs => $2))",
	2, {TEXTOID, FLOAT8OID}},
	/* A heartbeat is written at most every $4 seconds: no row version per call. */
	[Q_MEMBER_JOIN] = {"INSERT INTO eventlog.group_member AS m (grp, member, topics) VALUES ($1, $2, ARRAY[$3]) "
		"ON CONFLICT (grp, member) DO UPDATE SET last_heartbeat = clock_timestamp(), "
		"topics = CASE WHEN $3 = ANY (m.topics) THEN m.topics ELSE m.topics || $3 END "
		"WHERE m.last_heartbeat < clock_timestamp() - make_interval(secs => $4) OR NOT ($3 = ANY (m.topics))",
	4, {TEXTOID, TEXTOID, TEXTOID, FLOAT8OID}},
	/* Whether a call may skip the join: subscribed, heartbeat recent enough. */
	[Q_MEMBER_FRESH] = {"SELECT last_heartbeat >= clock_timestamp() - make_interval(secs => $4) AND $3 = ANY (topics) "
		"FROM eventlog.group_member WHERE grp = $1 AND member = $2",
	4, {TEXTOID, TEXTOID, TEXTOID, FLOAT8OID}},
	[Q_MEMBER_LIVE] = {"SELECT m.last_heartbeat > clock_timestamp() - coalesce(g.session_timeout, make_interval(secs => $3)) "
		"FROM eventlog.group_member m JOIN eventlog.consumer_group g USING (grp) WHERE m.grp = $1 AND m.member = $2",
	3, {TEXTOID, TEXTOID, FLOAT8OID}},
	[Q_MEMBER_HEARTBEAT] = {"UPDATE eventlog.group_member SET last_heartbeat = clock_timestamp() WHERE grp = $1 AND member = $2 "
		"AND last_heartbeat < clock_timestamp() - make_interval(secs => $3)",
	3, {TEXTOID, TEXTOID, FLOAT8OID}},
	[Q_MEMBER_LEAVE] = {"DELETE FROM eventlog.group_member WHERE grp = $1 AND member = $2 RETURNING topics",
	2, {TEXTOID, TEXTOID}},
	[Q_LIVE_MEMBERS] = {"SELECT m.member FROM eventlog.group_member m JOIN eventlog.consumer_group g USING (grp) "
		"WHERE m.grp = $1 AND $2 = ANY (m.topics) "
		"AND m.last_heartbeat > clock_timestamp() - coalesce(g.session_timeout, make_interval(secs => $3)) ORDER BY m.member",
	3, {TEXTOID, TEXTOID, FLOAT8OID}},
	[Q_ASSIGNMENTS] = {"SELECT partition, member FROM eventlog.group_assignment WHERE grp = $1 AND topic = $2",
	2, {TEXTOID, TEXTOID}},
	[Q_ASSIGN_WRITE] = {"INSERT INTO eventlog.group_assignment AS a (grp, topic, partition, member, generation) "
		"SELECT $1, $2, u.p, u.m, $5 FROM unnest($3::int[], $4::text[]) AS u(p, m) "
		"ON CONFLICT (grp, topic, partition) DO UPDATE SET member = EXCLUDED.member, generation = EXCLUDED.generation "
		"WHERE a.member <> EXCLUDED.member",
	5, {TEXTOID, TEXTOID, INT4ARRAYOID, TEXTARRAYOID, INT8OID}},
	[Q_ASSIGN_TRIM] = {"DELETE FROM eventlog.group_assignment WHERE grp = $1 AND topic = $2 AND partition <> ALL ($3)",
	3, {TEXTOID, TEXTOID, INT4ARRAYOID}},
	[Q_OWNER] = {"SELECT member FROM eventlog.group_assignment WHERE grp = $1 AND topic = $2 AND partition = $3",
	3, {TEXTOID, TEXTOID, INT4OID}},
	/*
	 * Committed offsets: a partition's current row is the one with the
	 * highest seq.  Consume and commit read, lock and replace them without
	 * SQL (el_offsetrows.c); these two are rare.
	 */
	[Q_OFFSETS_ENSURE] = {"INSERT INTO eventlog.group_offset (grp, topic, partition, seq, committed_offset) "
		"SELECT $1, $2, u.p, 0, u.o FROM unnest($3::int[], $4::int8[]) AS u(p, o) ON CONFLICT DO NOTHING",
	4, {TEXTOID, TEXTOID, INT4ARRAYOID, INT8ARRAYOID}},
	[Q_OFFSET_RESET] = {"WITH old AS (DELETE FROM eventlog.group_offset WHERE grp = $1 AND topic = $2 AND partition = $3) "
		"INSERT INTO eventlog.group_offset (grp, topic, partition, seq, committed_offset) "
		"VALUES ($1, $2, $3, nextval('eventlog.group_offset_seq'), $4)",
	4, {TEXTOID, TEXTOID, INT4OID, INT8OID}},
	/* Assignments held by members that left or fell silent. */
	[Q_EXPIRED] = {"SELECT DISTINCT a.grp, a.topic FROM eventlog.group_assignment a "
		"JOIN eventlog.consumer_group g ON g.grp = a.grp "
		"LEFT JOIN eventlog.group_member m ON m.grp = a.grp AND m.member = a.member "
		"WHERE m.member IS NULL "
		"   OR m.last_heartbeat <= clock_timestamp() - coalesce(g.session_timeout, make_interval(secs => $1))",
	1, {FLOAT8OID}},
};

static SPIPlanPtr el_plans[EL_NQUERIES];

/* ---- Running catalog queries ---- */

/*
 * Runs one of the queries above as the catalog's owner, with a fresh
 * snapshot (so that in READ COMMITTED a wait for a row lock is followed by
 * reading what the other transaction committed).  SPI must be connected.
 *
 * The statements are planned and run with sequential and bitmap scans off:
 * the catalog tables are small, and a plan that scanned all their row
 * versions would make every call slower while a long-held snapshot keeps
 * old versions alive; index scans read the newest first.  The settings
 * hold while the statement runs, not only when it is first planned, since
 * a cached plan is made again after an invalidation.  (They were settings
 * of the SQL functions before 0.6.0, which cost every call of consume() a
 * settings level of its own, SQL or not.)  An error leaves the level to the
 * transaction's abort, as a function's SET does.
 */
static int
el_run(ElQuery q, Datum *values, const char *nulls, long tcount)
{
	Oid			save_userid;
	int			save_sec_context;
	int			nest;
	int			rc;

	nest = NewGUCNestLevel();
	(void) set_config_option("enable_seqscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("enable_bitmapscan", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (el_plans[q] == NULL)
	{
		/*
		 * Generic plans: these are key lookups whatever the arguments, and
		 * a custom plan per call (which the plan cache keeps choosing for
		 * array arguments) would cost more than running the statement.
		 */
		SPIPlanPtr	plan = SPI_prepare_cursor(el_queries[q].sql, el_queries[q].nargs,
											  (Oid *) el_queries[q].types,
											  CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "could not prepare eventlog group query %d: %s", (int) q,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		el_plans[q] = plan;
	}

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(el_catalog_owner(), save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	rc = SPI_execute_plan(el_plans[q], values, nulls, false, tcount);
	SetUserIdAndSecContext(save_userid, save_sec_context);
	AtEOXact_GUC(true, nest);
	if (rc < 0)
		elog(ERROR, "eventlog group query %d failed: %s", (int) q, SPI_result_code_string(rc));
	return rc;
}

static Datum
el_col(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, isnull);
}

static double
el_timeout_secs(void)
{
	return eventlog_session_timeout / 1000.0;
}

/* The group's own session timeout in seconds, read by el_group_require. */
static double el_group_timeout = -1;

/*
 * How stale a heartbeat may get before a call writes a new one: a tenth of
 * the session timeout in force for the group, at most a second.  Writing on
 * every call would leave a row version per call for a long-held snapshot to
 * keep.
 */
static double
el_heartbeat_secs(void)
{
	double		timeout = el_group_timeout > 0 ? el_group_timeout : el_timeout_secs();

	return Min(1.0, timeout / 10.0);
}

/* ---- Groups ---- */

void
el_check_group_name(const char *grp)
{
	if (grp[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("group name must not be empty")));
}

/* Creates the group if it is new, owned by the caller. */
void
el_group_ensure(const char *grp)
{
	Datum		args[2];

	args[0] = CStringGetTextDatum(grp);
	args[1] = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	el_run(Q_GROUP_ENSURE, args, NULL, 0);
}

/*
 * Reads the group's row: false if there is none.  Sets the group's own
 * session timeout for el_heartbeat_secs.
 */
static bool
el_group_fetch(const char *grp, Oid *owner, int64 *generation)
{
	return el_grouprows_group(grp, owner, generation, &el_group_timeout);
}

/* Complains unless the group exists; returns its generation. */
int64
el_group_require(const char *grp, Oid *owner)
{
	int64		generation;

	if (!el_group_fetch(grp, owner, &generation))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("consumer group \"%s\" does not exist", grp),
				 errhint("A group comes into being with its first eventlog.consume() call; eventlog.groups lists the groups there are.")));
	return generation;
}

static void
el_group_check_access(const char *grp, Oid owner)
{
	if (!OidIsValid(owner) || !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for consumer group \"%s\"", grp),
				 errdetail("A group is used by the role that created it and the roles granted that role."),
				 errhint("The group's owner can share it: GRANT owner_role TO ...")));
}

/*
 * Complains unless the caller has the rights of the group's owner: the role
 * that created the group, and the roles granted it, may use the group.
 */
void
el_group_require_access(const char *grp)
{
	Oid			owner;

	(void) el_group_require(grp, &owner);
	el_group_check_access(grp, owner);
}

/*
 * The group, created if new (owned by the caller), and the caller's right
 * to use it: a read on every call, an insert only for a new group.  Returns
 * the group's generation.
 */
int64
el_group_ensure_access(const char *grp)
{
	Oid			owner;
	int64		generation;

	if (!el_group_fetch(grp, &owner, &generation))
	{
		el_group_ensure(grp);
		generation = el_group_require(grp, &owner);
	}
	el_group_check_access(grp, owner);
	return generation;
}

/* Complains unless the caller may administer the group (its owner's rights). */
void
el_group_check_owner(const char *grp, Oid owner)
{
	if (!OidIsValid(owner) || !has_privs_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of consumer group \"%s\"", grp),
				 errdetail("The role that created a group owns it.")));
}

int64
el_group_live_members(const char *grp)
{
	Datum		args[2];
	bool		isnull;

	args[0] = CStringGetTextDatum(grp);
	args[1] = Float8GetDatum(el_timeout_secs());
	el_run(Q_LIVE_COUNT, args, NULL, 1);
	return DatumGetInt64(el_col(0, 1, &isnull));
}

/* Complains if the group has live members (then only members may act). */
void
el_group_require_empty(const char *grp, const char *action)
{
	int64		live = el_group_live_members(grp);

	if (live > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("consumer group \"%s\" has %lld live member%s", grp, (long long) live,
						live == 1 ? "" : "s"),
				 errdetail("%s is only allowed while a group has no live members, as in Kafka.", action),
				 errhint("Pass member => ... to act as a member of the group, or wait until its members leave or time out.")));
}

void
el_group_delete(const char *grp)
{
	Datum		args[1];

	el_joincache_forget();
	args[0] = CStringGetTextDatum(grp);
	el_run(Q_GROUP_DELETE, args, NULL, 0);
}

void
el_group_set_timeout(const char *grp, Datum interval, bool isnull)
{
	Datum		args[2];
	char		nulls[2] = {' ', isnull ? 'n' : ' '};

	args[0] = CStringGetTextDatum(grp);
	args[1] = interval;
	el_run(Q_GROUP_SET_TIMEOUT, args, nulls, 0);
}

/* ---- Assignment ---- */

/*
 * The live members of a group subscribed to a topic (sorted by name) and the
 * member owning each partition now (an index into members, -1 for none or a
 * member no longer live).  Returns true if some assignment is stale: of a
 * partition the topic no longer has, or held by a member not live.
 */
static bool
el_read_assignment(const char *grp, ElTopic *topic, char ***members, int *nmembers,
				   int *owners)
{
	Datum		args[3];
	bool		stale = false;
	int			nrows;
	int			i;
	int			p;

	args[0] = CStringGetTextDatum(grp);
	args[1] = CStringGetTextDatum(topic->name);
	args[2] = Float8GetDatum(el_timeout_secs());
	el_run(Q_LIVE_MEMBERS, args, NULL, 0);
	*nmembers = (int) SPI_processed;
	*members = palloc(sizeof(char *) * Max(*nmembers, 1));
	for (i = 0; i < *nmembers; i++)
		(*members)[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

	for (p = 0; p < topic->npartitions; p++)
		owners[p] = -1;
	el_run(Q_ASSIGNMENTS, args, NULL, 0);
	nrows = (int) SPI_processed;
	for (i = 0; i < nrows; i++)
	{
		bool		isnull;
		int32		part = DatumGetInt32(el_col(i, 1, &isnull));
		char	   *member = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		int			m;

		if (part < 0 || part >= topic->npartitions)
		{
			stale = true;
			continue;
		}
		for (m = 0; m < *nmembers; m++)
			if (strcmp((*members)[m], member) == 0)
				owners[part] = m;
		if (owners[part] < 0)
			stale = true;
	}
	return stale;
}

/*
 * Whether the assignment needs a rebalance: there are live members, and a
 * stale assignment, a partition without a live owner, or members whose
 * shares differ by more than one.
 */
static bool
el_needs_rebalance(ElTopic *topic, int nmembers, const int *owners, bool stale)
{
	int		   *count;
	int			lo = INT_MAX;
	int			hi = 0;
	int			m;
	int			p;

	if (nmembers == 0)
		return false;
	if (stale)
		return true;
	count = palloc0(sizeof(int) * nmembers);
	for (p = 0; p < topic->npartitions; p++)
	{
		if (owners[p] < 0)
			return true;
		count[owners[p]]++;
	}
	for (m = 0; m < nmembers; m++)
	{
		lo = Min(lo, count[m]);
		hi = Max(hi, count[m]);
	}
	return hi - lo > 1;
}

/*
 * Recomputes the assignment of a topic's partitions in a group.  With wait
 * false, gives up if another transaction is rebalancing the group right now
 * (its result becomes visible when it commits; the next call checks again).
 */
static bool
el_rebalance(const char *grp, ElTopic *topic, bool wait)
{
	Datum		args[5];
	int			nmembers;
	char	  **members;
	int		   *owners;
	int		   *before;
	bool		changed;
	int			p;

	args[0] = CStringGetTextDatum(grp);
	el_run(wait ? Q_GROUP_LOCK_WAIT : Q_GROUP_LOCK, args, NULL, 1);
	if (SPI_processed == 0)
		return false;

	owners = palloc(sizeof(int) * topic->npartitions);
	before = palloc(sizeof(int) * topic->npartitions);
	changed = el_read_assignment(grp, topic, &members, &nmembers, owners);
	memcpy(before, owners, sizeof(int) * topic->npartitions);
	args[1] = CStringGetTextDatum(topic->name);

	el_assign_partitions(topic->npartitions, nmembers, owners);
	for (p = 0; p < topic->npartitions; p++)
		if (owners[p] != before[p])
			changed = true;

	if (changed)
	{
		Datum	   *parts = palloc(sizeof(Datum) * topic->npartitions);
		Datum	   *names = palloc(sizeof(Datum) * topic->npartitions);
		int			n = 0;
		bool		isnull;
		int64		generation;

		el_run(Q_GROUP_BUMP, args, NULL, 1);
		generation = DatumGetInt64(el_col(0, 1, &isnull));

		for (p = 0; p < topic->npartitions; p++)
		{
			if (owners[p] < 0)
				continue;
			parts[n] = Int32GetDatum(p);
			names[n] = CStringGetTextDatum(members[owners[p]]);
			n++;
		}
		args[2] = PointerGetDatum(construct_array(parts, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
		args[4] = Int64GetDatum(generation);
		el_run(Q_ASSIGN_WRITE, args, NULL, 0);
		el_run(Q_ASSIGN_TRIM, args, NULL, 0);
	}
	return true;
}

/* The partitions of a topic assigned to member now (fresh read), in order. */
int
el_group_member_partitions(const char *grp, const char *member, ElTopic *topic,
						   int32 **partitions)
{
	return el_grouprows_member_partitions(grp, topic->name, member, topic->npartitions,
										  partitions);
}

/*
 * A member's call: joins or heartbeats, subscribes it to the topic,
 * rebalances if membership or the topic changed, and returns the member's
 * partitions of the topic.  A subscribed member with a recent heartbeat
 * writes nothing: the upsert would lock its row on every call.  Calls
 * within a heartbeat interval of a check that found the assignment in
 * order, in a generation that has not moved since, reuse what it found
 * (el_joincache.c).
 */
int
el_group_join(const char *grp, const char *member, ElTopic *topic, int32 **partitions)
{
	Datum		args[4];
	bool		isnull;
	char	  **members;
	int			nmembers;
	int		   *owners;
	bool		stale;
	int64		generation;
	int			n = 0;
	int			p;

	generation = el_group_ensure_access(grp);
	if (el_joincache_lookup(grp, member, topic, generation, el_heartbeat_secs(), partitions, &n))
		return n;

	args[0] = CStringGetTextDatum(grp);
	args[1] = CStringGetTextDatum(member);
	args[2] = CStringGetTextDatum(topic->name);
	args[3] = Float8GetDatum(el_heartbeat_secs());
	el_run(Q_MEMBER_FRESH, args, NULL, 1);
	if (SPI_processed == 0 || !DatumGetBool(el_col(0, 1, &isnull)))
		el_run(Q_MEMBER_JOIN, args, NULL, 0);

	/*
	 * Read the assignment; rebalance if it is off.  Otherwise the member's
	 * partitions are those it owns in what was just read.
	 */
	owners = palloc(sizeof(int) * topic->npartitions);
	stale = el_read_assignment(grp, topic, &members, &nmembers, owners);
	if (el_needs_rebalance(topic, nmembers, owners, stale))
	{
		(void) el_rebalance(grp, topic, false);
		return el_group_member_partitions(grp, member, topic, partitions);
	}

	*partitions = SPI_palloc(sizeof(int32) * Max(topic->npartitions, 1));
	for (p = 0; p < topic->npartitions; p++)
		if (owners[p] >= 0 && strcmp(members[owners[p]], member) == 0)
			(*partitions)[n++] = p;
	el_joincache_remember(grp, member, topic, generation, *partitions, n);
	return n;
}

/* Removes a member and hands its partitions to the others at once. */
bool
el_group_leave(const char *grp, const char *member)
{
	Datum		args[2];
	ArrayType  *topics;
	Datum	   *names;
	bool	   *nulls;
	int			n;
	bool		isnull;
	int			i;

	el_joincache_forget();
	args[0] = CStringGetTextDatum(grp);
	args[1] = CStringGetTextDatum(member);
	el_run(Q_MEMBER_LEAVE, args, NULL, 0);
	if (SPI_processed == 0)
		return false;
	topics = DatumGetArrayTypePCopy(el_col(0, 1, &isnull));
	deconstruct_array(topics, TEXTOID, -1, false, TYPALIGN_INT, &names, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		ElTopic		topic;

		if (el_topic_lookup(TextDatumGetCString(names[i]), true, &topic))
			(void) el_rebalance(grp, &topic, true);
	}
	return true;
}

/*
 * Fencing: complains unless member is a live member of the group that owns
 * the partition now.  Counts as the member's heartbeat.
 */
void
el_group_check_ownership(const char *grp, const char *member, ElTopic *topic, int32 partition)
{
	Datum		args[3];
	bool		isnull;
	char	   *owner;

	args[0] = CStringGetTextDatum(grp);
	args[1] = CStringGetTextDatum(member);
	args[2] = Float8GetDatum(el_timeout_secs());
	el_run(Q_MEMBER_LIVE, args, NULL, 1);
	if (SPI_processed == 0 || !DatumGetBool(el_col(0, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member \"%s\" is not a live member of consumer group \"%s\"", member, grp),
				 errdetail("It left the group or was silent for longer than its session timeout, and its partitions went to other members."),
				 errhint("Roll back this transaction: the records are processed by the partition's new owner.")));
	args[2] = Float8GetDatum(el_heartbeat_secs());
	el_run(Q_MEMBER_HEARTBEAT, args, NULL, 0);

	args[1] = CStringGetTextDatum(topic->name);
	args[2] = Int32GetDatum(partition);
	el_run(Q_OWNER, args, NULL, 1);
	owner = SPI_processed == 0 ? NULL :
		SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (owner == NULL || strcmp(owner, member) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("member \"%s\" does not own partition %d of topic \"%s\" in consumer group \"%s\"",
						member, partition, topic->name, grp),
				 owner ? errdetail("The partition is assigned to member \"%s\".", owner) :
				 errdetail("The partition is not assigned to any member."),
				 errhint("Roll back this transaction: the records are processed by the partition's owner.")));
}

/* An int4[] or int8[] datum of n values. */
static Datum
el_array(const void *values, int n, bool int8)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = int8 ? Int64GetDatum(((const int64 *) values)[i]) :
			Int32GetDatum(((const int32 *) values)[i]);
	return PointerGetDatum(int8 ?
						   construct_array(d, n, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE) :
						   construct_array(d, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

/* Index of partition p in parts[0..n-1], or -1. */
static int
el_part_index(const int32 *parts, int n, int32 p)
{
	int			i;

	for (i = 0; i < n; i++)
		if (parts[i] == p)
			return i;
	return -1;
}

/* ---- Committed offsets ---- */

/*
 * Current committed offset of a partition (the row with the highest seq);
 * false if the group never committed one.
 */
bool
el_offset_get(const char *grp, const char *topic, int32 partition, int64 *offset)
{
	bool		found;

	el_offsets_get(grp, topic, &partition, 1, offset, &found, NULL);
	return found;
}

/*
 * Locks a partition's current committed-offset row (creating it at initial
 * if the group has none) and returns the offset and the row's seq.  Waits
 * for a transaction that holds the row; if it committed a new position
 * meanwhile, locks that one.
 */
void
el_offset_lock(const char *grp, const char *topic, int32 partition, int64 initial,
			   int64 *offset, int64 *seq)
{
	ElOffsetRows rows;
	int			attempt;

	el_group_check_offsets_locked(grp);
	if (!el_offset_get(grp, topic, partition, offset))
	{
		Datum		args[4];

		args[0] = CStringGetTextDatum(grp);
		args[1] = CStringGetTextDatum(topic);
		args[2] = el_array(&partition, 1, false);
		args[3] = el_array(&initial, 1, true);
		el_run(Q_OFFSETS_ENSURE, args, NULL, 0);
	}

	el_offsetrows_open(&rows, true);
	for (attempt = 0; attempt < 100; attempt++)
	{
		ItemPointerData tid;

		ItemPointerSetInvalid(&tid);
		if (el_offsetrows_current(&rows, grp, topic, partition, 0, &tid, EL_ROW_LOCK_WAIT,
								  offset, seq) == EL_ROW_FOUND)
		{
			el_offsetrows_close(&rows);
			return;
		}
		/* The row we waited for was replaced: lock the new one. */
		CHECK_FOR_INTERRUPTS();
		el_offsetrows_refresh(&rows);
	}
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("could not lock the committed offset of partition %d of topic \"%s\" in consumer group \"%s\"",
					partition, topic, grp)));
}

/*
 * The current rows of partitions parts[0..n-1], read or locked without
 * waiting: marked[i] says which were found (and locked), with their offsets
 * and seqs.  Each lookup starts from the seq the backend's last lookup of
 * the partition found (el_seqhint.c), and looks again from the start when
 * that finds nothing.
 */
static void
el_read_offsets(ElRowLock lock, const char *grp, const char *topic, const int32 *parts, int n,
				bool *marked, int64 *offsets, int64 *seqs)
{
	ElOffsetRows rows;
	int64	   *from = palloc(sizeof(int64) * Max(n, 1));
	ItemPointerData *tids = palloc(sizeof(ItemPointerData) * Max(n, 1));
	int			i;

	el_seqhint_get(grp, topic, parts, n, from, tids);
	el_offsetrows_open(&rows, lock != EL_ROW_READ);
	for (i = 0; i < n; i++)
	{
		ElRowResult result = el_offsetrows_current(&rows, grp, topic, parts[i], from[i], &tids[i],
												   lock, &offsets[i], &seqs[i]);

		if (result == EL_ROW_NONE && from[i] > 0)
			result = el_offsetrows_current(&rows, grp, topic, parts[i], 0, &tids[i], lock,
										   &offsets[i], &seqs[i]);
		marked[i] = result == EL_ROW_FOUND;
	}
	el_offsetrows_close(&rows);
	el_seqhint_put(grp, topic, parts, n, marked, seqs, tids);
	pfree(from);
	pfree(tids);
}

/*
 * Committed offsets of several partitions, and the seqs of their rows if
 * seqs is not NULL: found[i] is false where the group never committed one.
 */
void
el_offsets_get(const char *grp, const char *topic, const int32 *parts, int n,
			   int64 *offsets, bool *found, int64 *seqs)
{
	int64	   *row_seqs = seqs ? seqs : palloc(sizeof(int64) * Max(n, 1));

	el_read_offsets(EL_ROW_READ, grp, topic, parts, n, found, offsets, row_seqs);
	if (!seqs)
		pfree(row_seqs);
}

/*
 * el_offset_lock for several partitions, without waiting: locked[i] says
 * which rows were locked (false where another transaction holds one), with
 * their offsets and seqs.  Partitions without a row get one at initial[i].
 */
void
el_offsets_lock(const char *grp, const char *topic, const int32 *parts, int n,
				const int64 *initial, bool *locked, int64 *offsets, int64 *seqs)
{
	Datum		args[4];
	bool	   *found = palloc(sizeof(bool) * Max(n, 1));
	int32	   *unlocked = palloc(sizeof(int32) * Max(n, 1));
	int32	   *missing = palloc(sizeof(int32) * Max(n, 1));
	int64	   *missing_at = palloc(sizeof(int64) * Max(n, 1));
	int64	   *seen = palloc(sizeof(int64) * Max(n, 1));
	int64	   *made_at = palloc(sizeof(int64) * Max(n, 1));
	int64	   *made_seq = palloc(sizeof(int64) * Max(n, 1));
	int			nunlocked = 0;
	int			nmissing = 0;
	int			i;

	el_group_check_offsets_locked(grp);
	el_read_offsets(EL_ROW_LOCK_SKIP, grp, topic, parts, n, locked, offsets, seqs);
	memcpy(found, locked, sizeof(bool) * n);

	/* Partitions the lock found nothing for: new to the group, or held. */
	for (i = 0; i < n; i++)
		if (!found[i])
			unlocked[nunlocked++] = parts[i];
	if (nunlocked == 0)
		return;
	el_offsets_get(grp, topic, unlocked, nunlocked, seen, found, NULL);
	for (i = 0; i < nunlocked; i++)
		if (!found[i])			/* no row yet; a row found is another's */
		{
			missing_at[nmissing] = initial[el_part_index(parts, n, unlocked[i])];
			missing[nmissing++] = unlocked[i];
		}
	if (nmissing == 0)
		return;

	args[0] = CStringGetTextDatum(grp);
	args[1] = CStringGetTextDatum(topic);
	args[2] = el_array(missing, nmissing, false);
	args[3] = el_array(missing_at, nmissing, true);
	el_run(Q_OFFSETS_ENSURE, args, NULL, 0);

	/* Lock the rows just made (or made meanwhile by another transaction). */
	el_read_offsets(EL_ROW_LOCK_SKIP, grp, topic, missing, nmissing, found, made_at, made_seq);
	for (i = 0; i < nmissing; i++)
		if (found[i])
		{
			int			j = el_part_index(parts, n, missing[i]);

			locked[j] = true;
			offsets[j] = made_at[i];
			seqs[j] = made_seq[i];
		}
}

/*
 * el_offset_set for several partitions: each new row gets a seq of its own,
 * in the order of parts[], so that the last one is the one the group
 * committed last (consume's next round starts after it; el_round.c).  The
 * previous rows are locked by this
 * transaction; they are deleted where the lock found them when that was
 * the backend's last lookup of the partition, and the new rows' places are
 * remembered for the next call.
 */
void
el_offsets_set(const char *grp, const char *topic, const int32 *parts, int n,
			   const int64 *offsets, const int64 *prev_seqs)
{
	ElOffsetRows rows;
	int64		seq;
	int64	   *seen;
	int64	   *seqs;
	ItemPointerData *tids;
	bool	   *made;
	int			i;

	if (n == 0)
		return;
	el_group_check_offsets_locked(grp);
	seen = palloc(sizeof(int64) * n);
	seqs = palloc(sizeof(int64) * n);
	tids = palloc(sizeof(ItemPointerData) * n);
	made = palloc(sizeof(bool) * n);

	/* Where the locks found the previous rows, if they were the last lookups. */
	el_seqhint_get(grp, topic, parts, n, seen, tids);
	el_offsetrows_open(&rows, true);
	for (i = 0; i < n; i++)
	{
		ItemPointerData tid = tids[i];

		if (seen[i] != prev_seqs[i])
			ItemPointerSetInvalid(&tid);
		(void) el_offsetrows_delete(&rows, grp, topic, parts[i], prev_seqs[i], &tid);
	}
	for (i = 0; i < n; i++)
	{
		seq = el_offsetrows_next_seq();
		el_offsetrows_insert(&rows, grp, topic, parts[i], seq, offsets[i], &tids[i]);
		seqs[i] = seq;
		made[i] = true;
	}
	el_offsetrows_close(&rows);
	el_seqhint_put(grp, topic, parts, n, made, seqs, tids);
}

/* Commits a new position: a new row, and the locked previous one removed. */
void
el_offset_set(const char *grp, const char *topic, int32 partition, int64 offset,
			  int64 prev_seq)
{
	el_offsets_set(grp, topic, &partition, 1, &offset, &prev_seq);
}

/* Sets a committed offset unconditionally (reset_offsets). */
void
el_offset_reset(const char *grp, const char *topic, int32 partition, int64 offset)
{
	Datum		args[4];

	el_group_check_offsets_locked(grp);
	args[0] = CStringGetTextDatum(grp);
	args[1] = CStringGetTextDatum(topic);
	args[2] = Int32GetDatum(partition);
	args[3] = Int64GetDatum(offset);
	el_run(Q_OFFSET_RESET, args, NULL, 0);
}

/*
 * Expires silent members: rebalances every topic of a group whose
 * partitions are held by members past their session timeout, even when no
 * member calls.  Run by the database's worker.
 */
void
el_group_expire_pass(void)
{
	Datum		args[1];
	uint64		n;
	uint64		i;
	char	  **grps;
	char	  **topics;

	args[0] = Float8GetDatum(el_timeout_secs());
	el_run(Q_EXPIRED, args, NULL, 0);
	n = SPI_processed;
	grps = palloc(sizeof(char *) * Max(n, 1));
	topics = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		grps[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		topics[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
	}
	for (i = 0; i < n; i++)
	{
		ElTopic		topic;

		if (el_topic_lookup(topics[i], true, &topic))
			(void) el_rebalance(grps[i], &topic, false);
	}
}
