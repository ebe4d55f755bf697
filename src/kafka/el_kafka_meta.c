/*
 * el_kafka_meta.c
 *		Metadata, ListOffsets and FindCoordinator: what clients ask before
 *		producing and consuming.
 *
 * This server is the only broker of its cluster: the leader of every
 * partition, the controller and every group's coordinator.
 */
#include "postgres.h"

#include "kafka/el_kafka.h"

/* ---- Metadata (versions 0 to 4) ---- */

static void
ek_put_partitions(StringInfo out, int32 npartitions)
{
	int32		p;

	ek_put_array_len(out, npartitions, false);
	for (p = 0; p < npartitions; p++)
	{
		ek_put_int16(out, EK_ERR_NONE);
		ek_put_int32(out, p);
		ek_put_int32(out, EK_NODE_ID);	/* leader */
		ek_put_array_len(out, 1, false);	/* replicas */
		ek_put_int32(out, EK_NODE_ID);
		ek_put_array_len(out, 1, false);	/* in-sync replicas */
		ek_put_int32(out, EK_NODE_ID);
	}
}

static void
ek_put_topic(StringInfo out, int16 v, int16 err, const char *name, int32 npartitions)
{
	ek_put_int16(out, err);
	ek_put_string(out, name, false);
	if (v >= 1)
		ek_put_int8(out, 0);	/* is_internal */
	ek_put_partitions(out, err == EK_ERR_NONE ? npartitions : 0);
}

/*
 * Metadata: this broker, and the topics asked for (v0: an empty list means
 * all; v1 and later: null means all, empty means none).  Topics the role
 * may neither read nor write are left out of "all" and refused by name;
 * topics are never created automatically.
 */
EkOutcome
ek_metadata(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	int32		n;
	char	  **names = NULL;
	bool		all;
	int			i;

	n = ek_get_array_len(r, false, 2);
	if (n > 0)
	{
		names = palloc(sizeof(char *) * n);
		for (i = 0; i < n; i++)
			names[i] = ek_get_string(r, false);
	}
	if (v >= 4)
		(void) ek_get_int8(r);	/* allow_auto_topic_creation: never */
	if (r->error)
		return EK_MALFORMED;
	all = (n < 0) || (v == 0 && n == 0);

	if (v >= 3)
		ek_put_int32(out, 0);	/* throttle time */
	ek_put_array_len(out, 1, false);	/* brokers */
	ek_put_int32(out, EK_NODE_ID);
	ek_put_string(out, ek_advertised_host(), false);
	ek_put_int32(out, ek_advertised_port());
	if (v >= 1)
		ek_put_string(out, NULL, false);	/* rack */
	if (v >= 2)
		ek_put_string(out, "eventlog", false);	/* cluster id */
	if (v >= 1)
		ek_put_int32(out, EK_NODE_ID);	/* controller */

	ek_begin();
	if (all)
	{
		List	   *topics = ek_log_topics();
		ListCell   *lc;
		int			count_at = out->len;
		int32		count = 0;

		ek_put_int32(out, 0);	/* patched: topics this role may see */
		foreach(lc, topics)
		{
			EkTopicInfo *t = lfirst(lc);

			if (!ek_log_allowed(t->name, ACL_SELECT | ACL_INSERT))
				continue;
			ek_put_topic(out, v, EK_ERR_NONE, t->name, t->npartitions);
			count++;
		}
		ek_patch_int32(out, count_at, count);
	}
	else
	{
		ek_put_array_len(out, Max(n, 0), false);
		for (i = 0; i < n; i++)
		{
			int32		np = 0;
			int16		err = EK_ERR_NONE;

			if (names[i] == NULL || !ek_log_topic(names[i], &np))
				err = EK_ERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (!ek_log_allowed(names[i], ACL_SELECT | ACL_INSERT))
				err = EK_ERR_TOPIC_AUTHORIZATION_FAILED;
			ek_put_topic(out, v, err, names[i] ? names[i] : "", np);
		}
	}
	ek_commit();
	return EK_RESPOND;
}

/* ---- ListOffsets (versions 1 and 2) ---- */

typedef struct EkListArg
{
	const char *topic;
	int32		partition;
	int64		timestamp;		/* -2 earliest, -1 latest, else milliseconds */
	int64		found_ts;
	int64		offset;
} EkListArg;

static void
ek_list_one(void *arg)
{
	EkListArg  *a = arg;
	EkPartitionState st;

	a->found_ts = -1;
	if (a->timestamp == -2 || a->timestamp == -1)
	{
		ek_log_state(a->topic, a->partition, &st);

		/*
		 * Latest is the last stable offset whatever the isolation level asked
		 * for: eventlog only ever reads committed records, and a consumer
		 * starting at the high watermark would skip the open transactions'
		 * records once they commit.
		 */
		a->offset = a->timestamp == -2 ? st.log_start : st.last_stable;
	}
	else if (a->timestamp < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid timestamp " INT64_FORMAT, a->timestamp)));
	else
		a->offset = ek_log_offset_for_time(a->topic, a->partition, a->timestamp, &a->found_ts);
}

/* ListOffsets: earliest (-2), latest (-1) or the first at a timestamp. */
EkOutcome
ek_list_offsets(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	int32		ntopics;
	int			t;

	(void) ek_get_int32(r);		/* replica id */
	if (v >= 2)
		(void) ek_get_int8(r);	/* isolation level: always read committed */
	ntopics = ek_get_array_len(r, false, 6);
	if (r->error || ntopics < 0)
		return EK_MALFORMED;

	if (v >= 2)
		ek_put_int32(out, 0);	/* throttle time */
	ek_put_array_len(out, ntopics, false);
	ek_begin();
	for (t = 0; t < ntopics; t++)
	{
		char	   *topic = ek_get_string(r, false);
		int32		nparts = ek_get_array_len(r, false, 12);
		int			p;

		if (r->error || nparts < 0 || topic == NULL)
		{
			ek_commit();
			return EK_MALFORMED;
		}
		ek_put_string(out, topic, false);
		ek_put_array_len(out, nparts, false);
		for (p = 0; p < nparts; p++)
		{
			EkListArg	a;
			int16		err;

			a.topic = topic;
			a.partition = ek_get_int32(r);
			a.timestamp = ek_get_int64(r);
			if (r->error)
			{
				ek_commit();
				return EK_MALFORMED;
			}
			err = ek_try(ek_list_one, &a);
			ek_put_int32(out, a.partition);
			ek_put_int16(out, err);
			ek_put_int64(out, err ? -1 : a.found_ts);
			ek_put_int64(out, err ? -1 : a.offset);
		}
	}
	ek_commit();
	return EK_RESPOND;
}

/* ---- FindCoordinator (versions 0 to 2) ---- */

/* Every group's (and transaction's) coordinator is this broker. */
EkOutcome
ek_find_coordinator(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	int8		key_type = 0;

	(void) ek_get_string(r, false); /* key */
	if (v >= 1)
		key_type = ek_get_int8(r);
	if (r->error)
		return EK_MALFORMED;

	if (v >= 1)
		ek_put_int32(out, 0);	/* throttle time */
	ek_put_int16(out, key_type == 0 ? EK_ERR_NONE : EK_ERR_COORDINATOR_NOT_AVAILABLE);
	if (v >= 1)
		ek_put_string(out, key_type == 0 ? NULL : "transactions are not supported", false);
	ek_put_int32(out, EK_NODE_ID);
	ek_put_string(out, ek_advertised_host(), false);
	ek_put_int32(out, ek_advertised_port());
	return EK_RESPOND;
}
