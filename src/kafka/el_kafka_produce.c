/*
 * el_kafka_produce.c
 *		Produce (versions 0 to 7): record batches appended to partitions.
 *
 * All partitions of a request are appended in one transaction, each in a
 * subtransaction of its own, so that one partition's error (no right, no
 * such partition, a record too large) is that partition's error code and
 * the others are still written.  Offsets are assigned at append, as
 * produce() does; the response carries the first one of each partition.
 *
 * Batches carrying a producer id (the idempotent producer) are checked
 * against the producer's sequence numbers before anything is written
 * (el_kafka_idempotence.c): a batch written before is acknowledged with its
 * first offset and not written again.  They are remembered only once the
 * request's transaction has committed.
 */
#include "postgres.h"

#include "kafka/el_kafka.h"

typedef struct EkProducePart
{
	const char *topic;
	int32		partition;
	EkBatchSet	set;
	int16		error;
	int64		base_offset;
	bool		duplicate;		/* written before: acknowledged, not written */
} EkProducePart;

static void
ek_produce_one(void *arg)
{
	EkProducePart *p = arg;

	p->base_offset = ek_log_append(p->topic, p->partition, p->set.records, p->set.nrecords);
}

EkOutcome
ek_produce(EkRequest *req, StringInfo out)
{
	int16		v = req->api_version;
	EkReader   *r = &req->body;
	char	   *transactional_id = NULL;
	int16		acks;
	int32		ntopics;
	char	  **topics;
	int32	   *nparts;
	EkProducePart **parts;
	int			t;
	int			i;

	/* parse everything first: a malformed request writes nothing */
	if (v >= 3)
		transactional_id = ek_get_string(r, false);
	acks = ek_get_int16(r);
	(void) ek_get_int32(r);		/* timeout */
	ntopics = ek_get_array_len(r, false, 6);
	if (r->error || ntopics < 0)
		return EK_MALFORMED;
	topics = palloc(sizeof(char *) * Max(ntopics, 1));
	nparts = palloc(sizeof(int32) * Max(ntopics, 1));
	parts = palloc(sizeof(EkProducePart *) * Max(ntopics, 1));
	for (t = 0; t < ntopics; t++)
	{
		topics[t] = ek_get_string(r, false);
		nparts[t] = ek_get_array_len(r, false, 8);
		if (r->error || topics[t] == NULL || nparts[t] < 0)
			return EK_MALFORMED;
		parts[t] = palloc0(sizeof(EkProducePart) * Max(nparts[t], 1));
		for (i = 0; i < nparts[t]; i++)
		{
			EkProducePart *p = &parts[t][i];
			const char *data;
			int			len;
			char	   *detail;

			p->topic = topics[t];
			p->partition = ek_get_int32(r);
			data = ek_get_bytes(r, false, &len);
			if (r->error)
				return EK_MALFORMED;
			p->base_offset = -1;
			if (transactional_id != NULL)
			{
				p->error = EK_ERR_INVALID_TXN_STATE;
				continue;
			}
			p->error = ek_parse_batches(data, len, &p->set, &detail);
			if (p->error != EK_ERR_NONE)
				ereport(LOG,
						(errmsg("eventlog kafka listener: refused records for partition %d of topic \"%s\": %s",
								p->partition, p->topic, detail)));
		}
	}

	/* the idempotent producer's sequence checks, before writing */
	ek_idem_start_request();
	for (t = 0; t < ntopics; t++)
		for (i = 0; i < nparts[t]; i++)
		{
			EkProducePart *p = &parts[t][i];

			if (p->error != EK_ERR_NONE || p->set.producer_id < 0)
				continue;
			p->error = ek_idem_check(p->topic, p->partition, &p->set, &p->base_offset);
			if (p->error == EK_ERR_NONE && p->base_offset >= 0)
				p->duplicate = true;
			else if (p->error != EK_ERR_NONE)
				ereport(DEBUG1,
						(errmsg("eventlog kafka listener: refused records of producer " INT64_FORMAT " epoch %d sequence %d for partition %d of topic \"%s\": error %d",
								p->set.producer_id, p->set.producer_epoch,
								p->set.base_sequence, p->partition, p->topic,
								p->error)));
		}

	ek_begin();
	for (t = 0; t < ntopics; t++)
		for (i = 0; i < nparts[t]; i++)
		{
			EkProducePart *p = &parts[t][i];

			if (p->error == EK_ERR_NONE && !p->duplicate)
				p->error = ek_try(ek_produce_one, p);
			if (p->error != EK_ERR_NONE)
				p->base_offset = -1;
		}
	ek_commit();

	/* committed: these batches are now the ones a retry would repeat */
	for (t = 0; t < ntopics; t++)
		for (i = 0; i < nparts[t]; i++)
		{
			EkProducePart *p = &parts[t][i];

			if (p->error == EK_ERR_NONE && !p->duplicate && p->set.producer_id >= 0)
				ek_idem_record(p->topic, p->partition, &p->set, p->base_offset);
		}

	/* acks = 0: the client waits for nothing */
	if (acks == 0)
		return EK_NO_RESPONSE;

	ek_put_array_len(out, ntopics, false);
	for (t = 0; t < ntopics; t++)
	{
		ek_put_string(out, topics[t], false);
		ek_put_array_len(out, nparts[t], false);
		for (i = 0; i < nparts[t]; i++)
		{
			EkProducePart *p = &parts[t][i];

			ek_put_int32(out, p->partition);
			ek_put_int16(out, p->error);
			ek_put_int64(out, p->base_offset);
			if (v >= 2)
				ek_put_int64(out, -1);	/* log append time: create time is kept */
			if (v >= 5)
				ek_put_int64(out, -1);	/* log start offset: not looked up */
		}
	}
	if (v >= 1)
		ek_put_int32(out, 0);	/* throttle time */
	return EK_RESPOND;
}
