/*
 * el_topic.c
 *		Topics: the catalog, create_topic, drop_topic, add_partitions, and the
 *		backend-local cache that resolves a topic to its relations.
 *
 * A topic is a relation in schema eventlog_topics partitioned by LIST
 * (partition), with one relation per partition ("topic$p") partitioned by
 * RANGE ("offset") into segments ("topic$p$<first offset>") stored by the
 * eventlog access method (see el_log.c).  The catalog table eventlog.topic maps topic names (up to 249
 * characters, as in Kafka) to relation names (at most 63 bytes).  DDL runs
 * as the caller, who owns the topic; catalog rows are written as the
 * extension's owner, so nobody else can alter the catalog.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "compat/compat.h"
#include "log/log_internal.h"

/* Offsets per segment of new topics. */
int			eventlog_segment_records = 1000000;

PG_FUNCTION_INFO_V1(eventlog_create_topic);
PG_FUNCTION_INFO_V1(eventlog_drop_topic);
PG_FUNCTION_INFO_V1(eventlog_add_partitions);
PG_FUNCTION_INFO_V1(eventlog_alter_topic);

#define EL_TOPIC_SCHEMA		"eventlog_topics"
#define EL_TOPIC_NAME_MAX	249
/* Topic names longer than this get a shortened relation name. */
#define EL_RELNAME_PLAIN_MAX 50

/* Cache entry: a topic and the relations of its partitions. */
typedef struct ElTopicEntry
{
	char		name[256];		/* hash key */
	Oid			parent;
	int32		npartitions;
	int64		segment_records;
	uint32		next_spread;	/* round robin for key-less records */
	Oid		   *leaves;			/* InvalidOid until looked up */
} ElTopicEntry;

static HTAB *el_topic_cache = NULL;

/* ---- Names ---- */

/* Enforces Kafka's rule for topic names. */
void
el_check_topic_name(const char *name)
{
	size_t		len = strlen(name);
	const char *p;

	if (len == 0 || len > EL_TOPIC_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid topic name \"%s\"", name),
				 errdetail("Topic names are 1 to %d characters long.", EL_TOPIC_NAME_MAX)));
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("invalid topic name \"%s\"", name),
				 errdetail("\".\" and \"..\" are not allowed as topic names.")));
	for (p = name; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_NAME),
					 errmsg("invalid topic name \"%s\"", name),
					 errdetail("Topic names may contain only ASCII letters, digits, \".\", \"_\" and \"-\".")));
	}
}

/*
 * Relation name of a topic: the topic name itself when short enough, else a
 * prefix and a hash of the whole name.
 */
static void
el_topic_relname(const char *topic, char *relname)
{
	size_t		len = strlen(topic);

	if (len <= EL_RELNAME_PLAIN_MAX)
		strlcpy(relname, topic, NAMEDATALEN);
	else
		snprintf(relname, NAMEDATALEN, "%.41s_%08x", topic,
				 (unsigned int) hash_bytes((const unsigned char *) topic, (int) len));
}

static void
el_leaf_relname(const char *relname, int32 partition, char *leafname)
{
	snprintf(leafname, NAMEDATALEN, "%s$%d", relname, partition);
}

/*
 * Relation name of a segment: the partition's and its first offset, with
 * the partition's name shortened by a hash if that is too long.
 */
void
el_segment_relname(const char *leafname, int64 lo, char *segname)
{
	char		suffix[32];
	size_t		room;

	snprintf(suffix, sizeof(suffix), "$" INT64_FORMAT, lo);
	room = NAMEDATALEN - 1 - strlen(suffix);
	if (strlen(leafname) <= room)
		snprintf(segname, NAMEDATALEN, "%s%s", leafname, suffix);
	else
		snprintf(segname, NAMEDATALEN, "%.*s_%08x%s", (int) room - 9, leafname,
				 (unsigned int) hash_bytes((const unsigned char *) leafname, (int) strlen(leafname)),
				 suffix);
}

/* Schema of topic relations (looked up each time: the extension may be recreated). */
static Oid
el_topic_namespace(void)
{
	return get_namespace_oid(EL_TOPIC_SCHEMA, false);
}

/* ---- Catalog access ---- */

/* Reads a topic's catalog row; false if there is none. */
static bool
el_catalog_get(const char *topic, char *relname, int32 *npartitions, int64 *segment_records)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		found = false;

	args[0] = CStringGetTextDatum(topic);
	SPI_connect();

	/*
	 * segment_records came with version 0.3.0; read through to_jsonb so that
	 * this library works with an older catalog until ALTER EXTENSION UPDATE.
	 */
	if (SPI_execute_with_args("SELECT relname::text, partitions, "
							  "coalesce((to_jsonb(t) ->> 'segment_records')::bigint, 0) "
							  "FROM eventlog.topic t WHERE topic = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the eventlog topic catalog");
	if (SPI_processed == 1)
	{
		bool		isnull;
		char	   *name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		strlcpy(relname, name, NAMEDATALEN);
		*npartitions = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 2, &isnull));
		if (segment_records)
			*segment_records = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														   SPI_tuptable->tupdesc, 3, &isnull));
		found = true;
	}
	SPI_finish();
	return found;
}

/* Owner of schema eventlog: the extension's owner, who writes its catalog. */
Oid
el_catalog_owner(void)
{
	Oid			nsp = get_namespace_oid("eventlog", false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Runs a catalog-changing statement as the owner of schema eventlog (the
 * extension's owner): callers may create topics without being able to
 * write the catalog themselves.
 */
void
el_catalog_exec(const char *sql, int nargs, Oid *argtypes, Datum *args, const char *nulls)
{
	Oid			save_userid;
	int			save_sec_context;
	Oid			owner = el_catalog_owner();

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	SPI_connect();
	if (SPI_execute_with_args(sql, nargs, argtypes, args, nulls, false, 0) < 0)
		elog(ERROR, "could not update the eventlog topic catalog");
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/* Owner of a relation. */
Oid
el_rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Runs DDL as the caller. */
static void
el_exec_ddl(const char *sql)
{
	SPI_connect();
	if (SPI_execute(sql, false, 0) < 0)
		elog(ERROR, "could not execute: %s", sql);
	SPI_finish();
}

/* ---- Cache ---- */

static void
el_topic_cache_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	ElTopicEntry *entry;

	if (el_topic_cache == NULL)
		return;
	hash_seq_init(&status, el_topic_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		bool		drop = !OidIsValid(relid) || entry->parent == relid;
		int			i;

		for (i = 0; !drop && i < entry->npartitions; i++)
			drop = entry->leaves[i] == relid;
		if (drop)
		{
			if (entry->leaves)
				pfree(entry->leaves);
			hash_search(el_topic_cache, entry->name, HASH_REMOVE, NULL);
		}
	}
}

void
ElTopicCacheInit(void)
{
	CacheRegisterRelcacheCallback(el_topic_cache_invalidate, (Datum) 0);
}

static ElTopicEntry *
el_cache_find(const char *name)
{
	char		key[256];

	if (el_topic_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(key);
		ctl.entrysize = sizeof(ElTopicEntry);
		ctl.hcxt = CacheMemoryContext;
		el_topic_cache = hash_create("eventlog topics", 64, &ctl,
									 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, name, sizeof(key));
	return hash_search(el_topic_cache, key, HASH_FIND, NULL);
}

/*
 * Resolves a topic name into *topic, from the cache when possible.  Returns
 * false for an unknown topic when missing_ok, else raises the error users
 * see.  The cache entry itself is never handed out: catalog lookups can
 * process invalidations that free it.
 */
bool
el_topic_lookup(const char *name, bool missing_ok, ElTopic *topic)
{
	ElTopicEntry *entry;
	char		relname[NAMEDATALEN];
	char		key[256];
	int32		npartitions;
	int64		segment_records = 0;
	Oid			parent;
	bool		found;

	if (strlen(name) > EL_TOPIC_NAME_MAX)
		el_check_topic_name(name);

	entry = el_cache_find(name);
	if (entry == NULL)
	{
		if (!el_catalog_get(name, relname, &npartitions, &segment_records) ||
			!OidIsValid(parent = get_relname_relid(relname, el_topic_namespace())))
		{
			if (missing_ok)
				return false;
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("topic \"%s\" does not exist", name),
					 errhint("Create it with eventlog.create_topic(); eventlog.topics lists the topics there are.")));
		}
		(void) el_cache_find(name);		/* creates the hash table if needed */
		memset(key, 0, sizeof(key));
		strlcpy(key, name, sizeof(key));
		entry = hash_search(el_topic_cache, key, HASH_ENTER, &found);
		entry->parent = parent;
		entry->npartitions = npartitions;
		entry->segment_records = segment_records > 0 ? segment_records : eventlog_segment_records;
		entry->next_spread = (uint32) random();
		entry->leaves = MemoryContextAllocZero(CacheMemoryContext, sizeof(Oid) * npartitions);
	}

	strlcpy(topic->name, name, sizeof(topic->name));
	topic->parent = entry->parent;
	topic->npartitions = entry->npartitions;
	topic->segment_records = entry->segment_records;
	return true;
}

/* Next partition for key-less records, round robin per session. */
int32
el_topic_spread(ElTopic *topic)
{
	ElTopicEntry *entry = el_cache_find(topic->name);
	uint32		n = entry ? entry->next_spread++ : (uint32) random();

	return (int32) (n % (uint32) topic->npartitions);
}

/* Complains about a partition the topic does not have. */
void
el_check_partition(ElTopic *topic, int32 partition)
{
	if (partition < 0 || partition >= topic->npartitions)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition %d of topic \"%s\" does not exist", partition, topic->name),
				 errdetail("Topic \"%s\" has %d partition%s, numbered 0 to %d.",
						   topic->name, topic->npartitions,
						   topic->npartitions == 1 ? "" : "s", topic->npartitions - 1)));
}

/* Relation of one partition. */
Oid
el_topic_leaf(ElTopic *topic, int32 partition)
{
	ElTopicEntry *entry;
	char		relname[NAMEDATALEN];
	char		leafname[NAMEDATALEN];
	Oid			leaf;

	el_check_partition(topic, partition);
	entry = el_cache_find(topic->name);
	if (entry && entry->parent == topic->parent && partition < entry->npartitions &&
		OidIsValid(entry->leaves[partition]))
		return entry->leaves[partition];

	el_topic_relname(topic->name, relname);
	el_leaf_relname(relname, partition, leafname);
	leaf = get_relname_relid(leafname, el_topic_namespace());
	if (!OidIsValid(leaf))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation of partition %d of topic \"%s\" does not exist",
						partition, topic->name),
				 errhint("Relation %s.\"%s\" was dropped or renamed outside eventlog.",
						 EL_TOPIC_SCHEMA, leafname)));

	/* The lookup may have processed invalidations: find the entry again. */
	entry = el_cache_find(topic->name);
	if (entry && entry->parent == topic->parent && partition < entry->npartitions)
		entry->leaves[partition] = leaf;
	return leaf;
}

/*
 * Checks the caller's right to produce (ACL_INSERT) or read (ACL_SELECT) a
 * topic: the GRANTs on the topic relation decide, as for any table.
 */
void
el_check_topic_privilege(ElTopic *topic, AclMode mode)
{
	if (pg_class_aclcheck(topic->parent, GetUserId(), mode) == ACLCHECK_OK)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 mode == ACL_INSERT ?
			 errmsg("permission denied to produce to topic \"%s\"", topic->name) :
			 errmsg("permission denied to read topic \"%s\"", topic->name),
			 errhint("The topic's owner can grant it: GRANT %s ON %s TO ...",
					 mode == ACL_INSERT ? "INSERT" : "SELECT",
					 quote_qualified_identifier(EL_TOPIC_SCHEMA, get_rel_name(topic->parent)))));
}

/* ---- SQL-callable functions ---- */

/* Complains about a NULL argument the function cannot do without. */
void
el_require_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", what)));
}

/* A text argument that must not be NULL, as a C string. */
char *
el_text_arg(FunctionCallInfo fcinfo, int argno, const char *what)
{
	el_require_arg(fcinfo, argno, what);
	return text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

static void
el_check_partition_count(int32 n)
{
	if (n < 1 || n > EL_MAX_PARTITIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of partitions must be between 1 and %d", EL_MAX_PARTITIONS)));
}

/* DDL creating segment [lo, hi) of a partition's relation. */
static char *
el_segment_ddl(const char *leafname, int64 lo, int64 hi)
{
	char		segname[NAMEDATALEN];

	el_segment_relname(leafname, lo, segname);
	return psprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES FROM (" INT64_FORMAT ") TO (" INT64_FORMAT ") USING eventlog",
					quote_qualified_identifier(EL_TOPIC_SCHEMA, segname),
					quote_qualified_identifier(EL_TOPIC_SCHEMA, leafname), lo, hi);
}

/*
 * Creates partitions [from, to) of a topic, each with its first segment.
 * Without a segment size (a catalog older than version 0.3.0, until ALTER
 * EXTENSION UPDATE), each is one eventlog relation, as that version made
 * them; the update turns them into segments.
 */
static void
el_create_leaves(const char *relname, int32 from, int32 to, int64 segment_records)
{
	int32		p;

	for (p = from; p < to; p++)
	{
		char		leafname[NAMEDATALEN];

		el_leaf_relname(relname, p, leafname);
		if (segment_records <= 0)
		{
			el_exec_ddl(psprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES IN (%d) USING eventlog",
								 quote_qualified_identifier(EL_TOPIC_SCHEMA, leafname),
								 quote_qualified_identifier(EL_TOPIC_SCHEMA, relname), p));
			continue;
		}
		el_exec_ddl(psprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES IN (%d) PARTITION BY RANGE (\"offset\")",
							 quote_qualified_identifier(EL_TOPIC_SCHEMA, leafname),
							 quote_qualified_identifier(EL_TOPIC_SCHEMA, relname), p));
		el_exec_ddl(el_segment_ddl(leafname, 0, segment_records));
	}
}

/*
 * Creates segment [lo, hi) of a partition, unless someone just did: the
 * exclusive lock on the partition's relation (which CREATE TABLE takes
 * anyway) makes creators take turns, and whoever comes second finds the
 * segment there.  The segment belongs to the topic's owner, whoever asks
 * (a producer filling the tail, or the worker creating it ahead).  Without
 * wait, gives up (InvalidOid) rather than wait for the partition's users.
 */
Oid
el_create_segment(Oid leaf, int64 lo, int64 hi, bool wait)
{
	char	   *leafname;
	char		segname[NAMEDATALEN];
	Oid			segment;
	Oid			owner;
	Oid			save_userid;
	int			save_sec_context;

	if (!wait)
	{
		/* Ahead of need: not now if anyone is using the partition. */
		if (!ConditionalLockRelationOid(leaf, AccessExclusiveLock))
			return InvalidOid;
	}
	else
		LockRelationOid(leaf, AccessExclusiveLock);
	leafname = get_rel_name(leaf);
	if (leafname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the partition of a topic was dropped while this command ran")));
	el_segment_relname(leafname, lo, segname);
	segment = get_relname_relid(segname, el_topic_namespace());
	if (OidIsValid(segment))
		return segment;

	owner = el_rel_owner(leaf);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	el_exec_ddl(el_segment_ddl(leafname, lo, hi));
	SetUserIdAndSecContext(save_userid, save_sec_context);
	CommandCounterIncrement();
	return get_relname_relid(segname, el_topic_namespace());
}

static void
el_create_topic(const char *topic, int32 npartitions, Datum retention, bool retention_null,
				Datum retention_bytes, bool retention_bytes_null, int64 segment_records)
{
	char		relname[NAMEDATALEN];
	char		catname[NAMEDATALEN];
	int32		existing;
	Oid			argtypes[6] = {TEXTOID, TEXTOID, INT4OID, INTERVALOID, INT8OID, INT8OID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	el_check_topic_name(topic);
	el_check_partition_count(npartitions);

	if (el_namespace_aclcheck(el_topic_namespace(), GetUserId(), ACL_CREATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to create topic \"%s\"", topic),
				 errhint("Creating topics needs CREATE on schema %s: GRANT CREATE ON SCHEMA %s TO ...",
						 EL_TOPIC_SCHEMA, EL_TOPIC_SCHEMA)));

	if (el_catalog_get(topic, catname, &existing, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("topic \"%s\" already exists", topic)));

	el_topic_relname(topic, relname);
	el_exec_ddl(psprintf("CREATE TABLE %s (partition integer NOT NULL, \"offset\" bigint, "
						 "key text, value bytea, headers jsonb, ts timestamptz) "
						 "PARTITION BY LIST (partition)",
						 quote_qualified_identifier(EL_TOPIC_SCHEMA, relname)));
	el_exec_ddl(psprintf("COMMENT ON TABLE %s IS %s",
						 quote_qualified_identifier(EL_TOPIC_SCHEMA, relname),
						 quote_literal_cstr(psprintf("eventlog topic %s", topic))));
	el_create_leaves(relname, 0, npartitions, segment_records);

	args[0] = CStringGetTextDatum(topic);
	args[1] = CStringGetTextDatum(relname);
	args[2] = Int32GetDatum(npartitions);
	args[3] = retention;
	args[4] = retention_bytes;
	if (retention_null)
		nulls[3] = 'n';
	if (retention_bytes_null)
		nulls[4] = 'n';
	args[5] = Int64GetDatum(segment_records);
	if (segment_records > 0)
		el_catalog_exec("INSERT INTO eventlog.topic (topic, relname, partitions, retention, retention_bytes, segment_records) "
						"VALUES ($1, $2, $3, $4, $5, $6)", 6, argtypes, args, nulls);
	else
		el_catalog_exec("INSERT INTO eventlog.topic (topic, relname, partitions, retention, retention_bytes) "
						"VALUES ($1, $2, $3, $4, $5)", 5, argtypes, args, nulls);
}

static void
el_check_owner(ElTopic *topic)
{
	if (!el_rel_ownercheck(topic->parent, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of topic \"%s\"", topic->name)));
}

/* The segment size given, else eventlog.segment_records. */
static int64
el_segment_records_arg(FunctionCallInfo fcinfo, int argno)
{
	int64		n;

	if (PG_ARGISNULL(argno))
		return eventlog_segment_records;
	n = PG_GETARG_INT64(argno);
	if (n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segment_records must be positive"),
				 errhint("A segment holds that many offsets; retention drops whole segments.")));
	return n;
}

/* Complains about a retention that is not a positive interval or size. */
static void
el_check_retention(FunctionCallInfo fcinfo, int interval_arg, int bytes_arg)
{
	if (!PG_ARGISNULL(interval_arg))
	{
		Interval   *retention = PG_GETARG_INTERVAL_P(interval_arg);

		if (retention->month < 0 || retention->day < 0 || retention->time < 0 ||
			(retention->month == 0 && retention->day == 0 && retention->time == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("retention must be a positive interval"),
					 errhint("Pass NULL to keep records forever.")));
	}
	if (!PG_ARGISNULL(bytes_arg) && PG_GETARG_INT64(bytes_arg) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention_bytes must be positive"),
				 errhint("Pass NULL for no size limit.")));
}

Datum
eventlog_create_topic(PG_FUNCTION_ARGS)
{
	char	   *topic = el_text_arg(fcinfo, 0, "topic");

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("partitions must not be null")));
	el_check_retention(fcinfo, 2, 3);

	el_create_topic(topic, PG_GETARG_INT32(1),
					PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2), PG_ARGISNULL(2),
					PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3), PG_ARGISNULL(3),
					/* declared with four arguments before version 0.3.0 */
					PG_NARGS() > 4 ? el_segment_records_arg(fcinfo, 4) : 0);
	PG_RETURN_VOID();
}

Datum
eventlog_drop_topic(PG_FUNCTION_ARGS)
{
	char	   *name = el_text_arg(fcinfo, 0, "topic");
	ElTopic		topic;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];

	el_topic_lookup(name, false, &topic);
	el_check_owner(&topic);
	el_exec_ddl(psprintf("DROP TABLE %s",
						 quote_qualified_identifier(EL_TOPIC_SCHEMA, get_rel_name(topic.parent))));
	args[0] = CStringGetTextDatum(name);
	el_catalog_exec("DELETE FROM eventlog.topic WHERE topic = $1", 1, argtypes, args, NULL);
	/* Groups forget the topic too: a new topic of that name starts afresh. */
	el_catalog_exec("DELETE FROM eventlog.group_offset WHERE topic = $1", 1, argtypes, args, NULL);
	el_catalog_exec("DELETE FROM eventlog.group_assignment WHERE topic = $1", 1, argtypes, args, NULL);
	/* Saved offsets (from version 0.2.0 on). */
	if (OidIsValid(get_relname_relid("partition_mark", get_namespace_oid("eventlog", false))))
		el_catalog_exec("DELETE FROM eventlog.partition_mark WHERE topic = $1", 1, argtypes, args, NULL);
	PG_RETURN_VOID();
}

Datum
eventlog_add_partitions(PG_FUNCTION_ARGS)
{
	char	   *name = el_text_arg(fcinfo, 0, "topic");
	ElTopic		topic;
	int32		npartitions;
	int32		current;
	char		relname[NAMEDATALEN];
	Oid			argtypes[2] = {TEXTOID, INT4OID};
	Datum		args[2];

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("partitions must not be null")));
	npartitions = PG_GETARG_INT32(1);
	el_topic_lookup(name, false, &topic);
	el_check_owner(&topic);
	el_check_partition_count(npartitions);

	/* Read the count from the catalog, not the cache: it may just have grown. */
	if (!el_catalog_get(name, relname, &current, NULL))
		elog(ERROR, "topic \"%s\" vanished from the catalog", name);
	if (npartitions <= current)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("topic \"%s\" already has %d partition%s", name, current,
						current == 1 ? "" : "s"),
				 errdetail("The number of partitions can only grow: %d is not more than %d.",
						   npartitions, current),
				 errhint("Pass the new total number of partitions, as Kafka's --partitions does.")));

	/* New partitions are made like the existing ones (see el_create_leaves). */
	el_create_leaves(relname, current, npartitions,
					 get_rel_relkind(el_topic_leaf(&topic, 0)) == RELKIND_PARTITIONED_TABLE ?
					 topic.segment_records : 0);
	args[0] = CStringGetTextDatum(name);
	args[1] = Int32GetDatum(npartitions);
	el_catalog_exec("UPDATE eventlog.topic SET partitions = $2 WHERE topic = $1",
					2, argtypes, args, NULL);
	PG_RETURN_VOID();
}

/*
 * alter_topic(topic, retention, retention_bytes, segment_records): a topic's
 * retention settings (NULL: no limit), as kafka-configs --alter does, and
 * the size of the segments created from now on (NULL: unchanged).
 */
Datum
eventlog_alter_topic(PG_FUNCTION_ARGS)
{
	char	   *name = el_text_arg(fcinfo, 0, "topic");
	ElTopic		topic;
	Oid			argtypes[3] = {TEXTOID, INTERVALOID, INT8OID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};

	el_topic_lookup(name, false, &topic);
	el_check_owner(&topic);
	el_check_retention(fcinfo, 1, 2);
	/* declared with three arguments before version 0.3.0 */
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		Oid			stypes[2] = {TEXTOID, INT8OID};
		Datum		sargs[2];

		sargs[0] = CStringGetTextDatum(name);
		sargs[1] = Int64GetDatum(el_segment_records_arg(fcinfo, 3));
		el_catalog_exec("UPDATE eventlog.topic SET segment_records = $2 WHERE topic = $1",
						2, stypes, sargs, NULL);
		/* Every session's cached topic learns the new size at commit. */
		CacheInvalidateRelcacheByRelid(topic.parent);
	}

	args[0] = CStringGetTextDatum(name);
	args[1] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	args[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	if (PG_ARGISNULL(1))
		nulls[1] = 'n';
	if (PG_ARGISNULL(2))
		nulls[2] = 'n';
	el_catalog_exec("UPDATE eventlog.topic SET retention = $2, retention_bytes = $3 WHERE topic = $1",
					3, argtypes, args, nulls);
	PG_RETURN_VOID();
}
