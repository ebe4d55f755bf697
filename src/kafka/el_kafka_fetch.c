/*
 * el_kafka_fetch.c
 *		Fetch (versions 4 to 11): records from partitions as record batches.
 *
 * A Fetch reads every partition asked for in one transaction, each from
 * its fetch offset up to the last stable offset (the reader stops before
 * the first record of a transaction still open), within the byte limits
 * asked for, but always at least one record when there is one, as Kafka
 * does.  When fewer than min_bytes are found, the request is parked: the
 * event loop calls again when a producer commits to one of the partitions,
 * and answers with what there is at max_wait_ms.
 */
#include "postgres.h"

#include "kafka/el_kafka.h"

typedef struct EkFetchPart
{
	int32		partition;
	int64		offset;
	int32		max_bytes;
	/* results */
	int16		error;
	EkPartitionState st;
	StringInfoData records;
} EkFetchPart;

typedef struct EkFetchTopic
{
	char	   *name;
	int32		nparts;
	EkFetchPart *parts;
} EkFetchTopic;

/* What a read of one partition needs, and how far it got. */
typedef struct EkFetchRead
{
	const char *topic;
	EkFetchPart *part;
	EkBatchBuilder builder;
	int64		budget;			/* bytes left for the whole response */
	int64		bytes;			/* bytes of records so far in this partition */
} EkFetchRead;

static bool
ek_fetch_record(EkRecord *rec, void *arg)
{
	EkFetchRead *fr = arg;
	int64		size = 32 + Max(rec->keylen, 0) + Max(rec->valuelen, 0);
	int			i;

	for (i = 0; i < rec->nheaders; i++)
		size += 8 + rec->headers[i].namelen + Max(rec->headers[i].valuelen, 0);

	/* the first record goes whatever its size: clients could not progress */
	if (fr->bytes > 0 &&
		(fr->bytes + size > fr->part->max_bytes || size > fr->budget))
		return false;
	ek_builder_add(&fr->builder, rec);
	fr->bytes += size;
	fr->budget -= size;
	return fr->budget > 0 && fr->bytes < fr->part->max_bytes;
}

static void
ek_fetch_one(void *arg)
{
	EkFetchRead *fr = arg;
	EkFetchPart *p = fr->part;

	ek_log_state(fr->topic, p->partition, &p->st);
	if (p->offset < p->st.log_start || p->offset > p->st.high_watermark)
	{
		p->error = EK_ERR_OFFSET_OUT_OF_RANGE;
		return;
	}
	if (p->offset >= p->st.last_stable)
		return;					/* nothing readable yet */
	ek_builder_init(&fr->builder, &p->records);
	ek_log_read(fr->topic, p->partition, p->offset, ek_fetch_record, fr);
	ek_builder_finish(&fr->builder);
}

EkOutcome
ek_fetch(EkRequest *req, StringInfo out, EkPark *park)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	int32		max_wait;
	int32		min_bytes;
	int32		max_bytes;
	int32		ntopics;
	EkFetchTopic *topics;
	int64		total = 0;
	int64		budget;
	bool		any_error = false;
	uint64		stamp_before = 0;
	int			nwait = 0;
	int			t;
	int			i;

	(void) ek_get_int32(r);		/* replica id */
	max_wait = ek_get_int32(r);
	min_bytes = ek_get_int32(r);
	max_bytes = ek_get_int32(r);
	(void) ek_get_int8(r);		/* isolation level: always read committed */
	if (v >= 7)
	{
		(void) ek_get_int32(r); /* session id: no incremental sessions */
		(void) ek_get_int32(r); /* session epoch */
	}
	ntopics = ek_get_array_len(r, false, 6);
	if (r->error || ntopics < 0)
		return EK_MALFORMED;
	topics = palloc0(sizeof(EkFetchTopic) * Max(ntopics, 1));
	for (t = 0; t < ntopics; t++)
	{
		EkFetchTopic *ft = &topics[t];

		ft->name = ek_get_string(r, false);
		ft->nparts = ek_get_array_len(r, false, 16);
		if (r->error || ft->name == NULL || ft->nparts < 0)
			return EK_MALFORMED;
		ft->parts = palloc0(sizeof(EkFetchPart) * Max(ft->nparts, 1));
		for (i = 0; i < ft->nparts; i++)
		{
			EkFetchPart *p = &ft->parts[i];

			p->partition = ek_get_int32(r);
			if (v >= 9)
				(void) ek_get_int32(r); /* current leader epoch */
			p->offset = ek_get_int64(r);
			if (v >= 5)
				(void) ek_get_int64(r); /* the follower's log start offset */
			p->max_bytes = ek_get_int32(r);
			initStringInfo(&p->records);
		}
	}
	/* forgotten topics (v7+) and rack id (v11+) are not needed */
	if (r->error)
		return EK_MALFORMED;
	if (max_bytes <= 0)
		max_bytes = INT32_MAX;

	/* first time: the deadline; later: the counters before reading */
	if (park->state == NULL)
	{
		park->deadline_ms = ek_now_ms() + Max(max_wait, 0);
		park->state = park;
	}
	else if (park->nwait > 0)
		stamp_before = ek_log_stamp(park->wait_ids, park->nwait);

	budget = max_bytes;
	ek_begin();
	for (t = 0; t < ntopics; t++)
		for (i = 0; i < topics[t].nparts; i++)
		{
			EkFetchRead fr;
			EkFetchPart *p = &topics[t].parts[i];

			memset(&fr, 0, sizeof(fr));
			fr.topic = topics[t].name;
			fr.part = p;
			fr.budget = budget;
			resetStringInfo(&p->records);
			p->error = EK_ERR_NONE;
			if (p->max_bytes <= 0)
				p->error = EK_ERR_INVALID_FETCH_SIZE;
			else
				p->error = ek_try(ek_fetch_one, &fr);
			if (p->error != EK_ERR_NONE)
			{
				resetStringInfo(&p->records);
				any_error = true;
			}
			else
				nwait++;
			total += p->records.len;
			budget = Max(budget - p->records.len, 0);
		}
	ek_commit();

	/* too little yet: wait for commits to these partitions, or the deadline */
	if (!any_error && total < Max(min_bytes, 1) && nwait > 0 &&
		ek_now_ms() < park->deadline_ms)
	{
		park->wait_ids = palloc(sizeof(uint32) * nwait);
		park->nwait = 0;
		for (t = 0; t < ntopics; t++)
			for (i = 0; i < topics[t].nparts; i++)
				if (topics[t].parts[i].error == EK_ERR_NONE)
					park->wait_ids[park->nwait++] = topics[t].parts[i].st.wait_id;
		park->stamp = stamp_before != 0 ? stamp_before :
			ek_log_stamp(park->wait_ids, park->nwait);
		return EK_PARK;
	}

	ek_put_int32(out, 0);		/* throttle time */
	if (v >= 7)
	{
		ek_put_int16(out, EK_ERR_NONE);
		ek_put_int32(out, 0);	/* session id */
	}
	ek_put_array_len(out, ntopics, false);
	for (t = 0; t < ntopics; t++)
	{
		ek_put_string(out, topics[t].name, false);
		ek_put_array_len(out, topics[t].nparts, false);
		for (i = 0; i < topics[t].nparts; i++)
		{
			EkFetchPart *p = &topics[t].parts[i];
			bool		err = p->error != EK_ERR_NONE;

			ek_put_int32(out, p->partition);
			ek_put_int16(out, p->error);
			ek_put_int64(out, err ? -1 : p->st.high_watermark);
			ek_put_int64(out, err ? -1 : p->st.last_stable);
			if (v >= 5)
				ek_put_int64(out, err ? -1 : p->st.log_start);
			ek_put_array_len(out, 0, false);	/* aborted transactions: never shown */
			if (v >= 11)
				ek_put_int32(out, -1);	/* preferred read replica */
			ek_put_bytes(out, p->records.data, p->records.len, false);
		}
	}
	return EK_RESPOND;
}
