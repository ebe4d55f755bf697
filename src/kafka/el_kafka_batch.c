/*
 * el_kafka_batch.c
 *		Kafka record batches (message format v2, "magic 2"): checking and
 *		decoding those a producer sends, building those a consumer fetches.
 *
 * A batch is a fixed header (base offset, length, CRC32C, attributes,
 * timestamps, producer id, epoch, base sequence, record count) and then the
 * records, each a run of zigzag varints and byte strings, possibly
 * compressed as a whole (gzip, snappy, lz4 or zstd: el_kafka_codec.c).  The CRC covers everything from the attributes on.
 */
#include "postgres.h"

#include "port/pg_crc32c.h"
#include "utils/timestamp.h"

#include "kafka/el_kafka.h"

/* Bytes of a batch header after its length field. */
#define EK_BATCH_HEADER_AFTER_LENGTH	49
/* Where the CRC'ed part starts: after base offset, length, epoch, magic, crc. */
#define EK_BATCH_CRC_START				21
#define EK_BATCH_OVERHEAD				(12 + EK_BATCH_HEADER_AFTER_LENGTH)

#define EK_ATTR_COMPRESSION		0x07
#define EK_ATTR_TRANSACTIONAL	0x10
#define EK_ATTR_CONTROL			0x20


/* ---- Parsing ---- */

/* A producer's sequence number n after seq: they wrap from INT32_MAX to 0. */
static int32
ek_seq_add(int32 seq, int32 n)
{
	if (seq > PG_INT32_MAX - n)
		return n - (PG_INT32_MAX - seq) - 1;
	return seq + n;
}

/* One record of a batch; false if it is malformed. */
static bool
ek_parse_record(EkReader *r, int expected_delta, int64 base_ts, EkRecord *rec)
{
	int32		len = ek_get_varint(r);
	const char *body;
	EkReader	rr;
	int32		nheaders;
	int			i;

	if (r->error || len < 0)
		return false;
	body = ek_get_raw(r, len);
	if (body == NULL)
		return false;
	ek_reader_init(&rr, body, len);

	(void) ek_get_int8(&rr);	/* attributes: unused in v2 */
	rec->ts_ms = base_ts + ek_get_varlong(&rr);
	if (ek_get_varint(&rr) != expected_delta)
		return false;
	rec->keylen = ek_get_varint(&rr);
	rec->key = rec->keylen >= 0 ? ek_get_raw(&rr, rec->keylen) : NULL;
	if (rec->keylen < -1)
		return false;
	rec->valuelen = ek_get_varint(&rr);
	rec->value = rec->valuelen >= 0 ? ek_get_raw(&rr, rec->valuelen) : NULL;
	if (rec->valuelen < -1)
		return false;
	nheaders = ek_get_varint(&rr);
	/* each header takes at least two bytes */
	if (rr.error || nheaders < 0 || nheaders > ek_remaining(&rr) / 2)
		return false;
	rec->nheaders = nheaders;
	rec->headers = nheaders > 0 ? palloc(sizeof(EkHeader) * nheaders) : NULL;
	for (i = 0; i < nheaders; i++)
	{
		EkHeader   *h = &rec->headers[i];

		h->namelen = ek_get_varint(&rr);
		if (h->namelen < 0)
			return false;
		h->name = ek_get_raw(&rr, h->namelen);
		h->valuelen = ek_get_varint(&rr);
		if (h->valuelen < -1)
			return false;
		h->value = h->valuelen >= 0 ? ek_get_raw(&rr, h->valuelen) : NULL;
		if (rr.error)
			return false;
	}
	/* the record's length must be exactly what its fields took */
	return !rr.error && ek_remaining(&rr) == 0;
}

/*
 * Checks and decodes the record batches of one partition in a Produce
 * request.  Returns a Kafka error code (0 if all is well) and, for errors, a
 * detail for the server log.  Records point into data (or into a
 * decompressed copy).
 */
int16
ek_parse_batches(const char *data, int len, EkBatchSet *set, char **detail)
{
	EkReader	r;
	int			cap = 16;
	int64		now_ms = (GetCurrentTimestamp() / 1000) +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
	bool		first = true;

	memset(set, 0, sizeof(*set));
	set->records = palloc(sizeof(EkRecord) * cap);
	set->producer_id = -1;
	set->producer_epoch = -1;
	set->base_sequence = -1;
	set->last_sequence = -1;
	*detail = NULL;

	if (data == NULL || len <= 0)
	{
		*detail = "no record batch";
		return EK_ERR_CORRUPT_MESSAGE;
	}
	ek_reader_init(&r, data, len);
	while (ek_remaining(&r) > 0)
	{
		const char *start = r.data + r.pos;
		int32		batch_len;
		int8		magic;
		uint32		crc;
		pg_crc32c	calc;
		int16		attributes;
		int32		last_delta;
		int64		base_ts;
		int64		pid;
		int16		epoch;
		int32		base_seq;
		int32		count;
		const char *payload;
		int			payload_len;
		EkReader	pr;
		int			i;

		if (ek_remaining(&r) < EK_BATCH_OVERHEAD)
		{
			*detail = "truncated batch header";
			return EK_ERR_CORRUPT_MESSAGE;
		}
		(void) ek_get_int64(&r);	/* base offset: the server assigns it */
		batch_len = ek_get_int32(&r);
		if (batch_len < EK_BATCH_HEADER_AFTER_LENGTH || batch_len > ek_remaining(&r))
		{
			*detail = "batch length out of range";
			return EK_ERR_CORRUPT_MESSAGE;
		}
		(void) ek_get_int32(&r);	/* partition leader epoch */
		magic = ek_get_int8(&r);
		if (magic != 2)
		{
			*detail = "only message format v2 (magic 2) is supported";
			return EK_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT;
		}
		crc = (uint32) ek_get_int32(&r);
		INIT_CRC32C(calc);
		COMP_CRC32C(calc, start + EK_BATCH_CRC_START, 12 + batch_len - EK_BATCH_CRC_START);
		FIN_CRC32C(calc);
		if (calc != crc)
		{
			*detail = "CRC32C mismatch";
			return EK_ERR_CORRUPT_MESSAGE;
		}
		attributes = ek_get_int16(&r);
		last_delta = ek_get_int32(&r);
		base_ts = ek_get_int64(&r);
		(void) ek_get_int64(&r);	/* max timestamp */
		pid = ek_get_int64(&r);
		epoch = ek_get_int16(&r);
		base_seq = ek_get_int32(&r);
		count = ek_get_int32(&r);
		payload_len = 12 + batch_len - EK_BATCH_OVERHEAD;
		payload = ek_get_raw(&r, payload_len);
		if (r.error || payload == NULL)
		{
			*detail = "truncated batch";
			return EK_ERR_CORRUPT_MESSAGE;
		}
		if (attributes & (EK_ATTR_TRANSACTIONAL | EK_ATTR_CONTROL))
		{
			*detail = "transactional batches are not supported";
			return EK_ERR_INVALID_RECORD;
		}
		if (count <= 0 || last_delta != count - 1)
		{
			*detail = "record count does not match the last offset delta";
			return EK_ERR_CORRUPT_MESSAGE;
		}

		switch (attributes & EK_ATTR_COMPRESSION)
		{
			case EK_COMPRESSION_NONE:
				break;
			case EK_COMPRESSION_GZIP:
			case EK_COMPRESSION_SNAPPY:
			case EK_COMPRESSION_LZ4:
			case EK_COMPRESSION_ZSTD:
				{
					char	   *plain;
					int			plain_len;
					int16		err = ek_decompress(attributes & EK_ATTR_COMPRESSION,
													payload, payload_len,
													eventlog_kafka_max_request_bytes,
													&plain, &plain_len, detail);

					if (err != EK_ERR_NONE)
						return err;
					payload = plain;
					payload_len = plain_len;
				}
				break;
			default:
				*detail = "unknown compression type";
				return EK_ERR_CORRUPT_MESSAGE;
		}

		/* a record takes at least 7 bytes: a cheap bound before allocating */
		if (count > payload_len / 7 + 1)
		{
			*detail = "record count larger than the batch";
			return EK_ERR_CORRUPT_MESSAGE;
		}
		if (set->nrecords + count > cap)
		{
			cap = set->nrecords + count;
			set->records = repalloc(set->records, sizeof(EkRecord) * cap);
		}
		ek_reader_init(&pr, payload, payload_len);
		for (i = 0; i < count; i++)
		{
			EkRecord   *rec = &set->records[set->nrecords + i];

			if (!ek_parse_record(&pr, i, base_ts, rec))
			{
				*detail = "malformed record";
				return EK_ERR_CORRUPT_MESSAGE;
			}
			if (rec->ts_ms < 0)
				rec->ts_ms = now_ms;
			rec->offset = -1;
		}
		if (ek_remaining(&pr) != 0)
		{
			*detail = "bytes after the last record of a batch";
			return EK_ERR_CORRUPT_MESSAGE;
		}

		if (pid >= 0 && base_seq < 0)
		{
			*detail = "a batch with a producer id and no sequence number";
			return EK_ERR_INVALID_RECORD;
		}
		if (first)
		{
			set->producer_id = pid;
			set->producer_epoch = epoch;
			set->base_sequence = base_seq;
			first = false;
		}
		else if (pid != set->producer_id || epoch != set->producer_epoch)
		{
			*detail = "batches of different producers in one partition";
			return EK_ERR_INVALID_RECORD;
		}
		else if (pid >= 0 && base_seq != ek_seq_add(set->last_sequence, 1))
		{
			/* the batches are checked as one: they must follow each other */
			*detail = "batches of one producer out of sequence";
			return EK_ERR_OUT_OF_ORDER_SEQUENCE;
		}
		set->nrecords += count;
		if (pid >= 0)
			set->last_sequence = ek_seq_add(base_seq, count - 1);
	}
	return EK_ERR_NONE;
}

/* ---- Building ---- */

void
ek_builder_init(EkBatchBuilder *b, StringInfo out)
{
	b->out = out;
	b->start = -1;
	b->count = 0;
	initStringInfo(&b->recs);
}

/* Appends a record to the open batch (opening one at gaps in the offsets). */
void
ek_builder_add(EkBatchBuilder *b, EkRecord *rec)
{
	StringInfoData one;
	int			i;

	if (b->start >= 0 && rec->offset != b->last_offset + 1)
		ek_builder_finish(b);
	if (b->start < 0)
	{
		b->start = b->out->len;
		b->base_offset = rec->offset;
		b->base_ts = rec->ts_ms;
		b->max_ts = rec->ts_ms;
		b->count = 0;
		resetStringInfo(&b->recs);
	}

	initStringInfo(&one);
	ek_put_int8(&one, 0);		/* attributes */
	ek_put_varlong(&one, rec->ts_ms - b->base_ts);
	ek_put_varint(&one, (int32) (rec->offset - b->base_offset));
	ek_put_varint(&one, rec->keylen);
	if (rec->keylen > 0)
		appendBinaryStringInfo(&one, rec->key, rec->keylen);
	ek_put_varint(&one, rec->valuelen);
	if (rec->valuelen > 0)
		appendBinaryStringInfo(&one, rec->value, rec->valuelen);
	ek_put_varint(&one, rec->nheaders);
	for (i = 0; i < rec->nheaders; i++)
	{
		ek_put_varint(&one, rec->headers[i].namelen);
		appendBinaryStringInfo(&one, rec->headers[i].name, rec->headers[i].namelen);
		ek_put_varint(&one, rec->headers[i].valuelen);
		if (rec->headers[i].valuelen > 0)
			appendBinaryStringInfo(&one, rec->headers[i].value, rec->headers[i].valuelen);
	}
	ek_put_varint(&b->recs, one.len);
	appendBinaryStringInfo(&b->recs, one.data, one.len);
	pfree(one.data);

	b->last_offset = rec->offset;
	b->max_ts = Max(b->max_ts, rec->ts_ms);
	b->count++;
}

/* Writes the open batch, if any, with its CRC. */
void
ek_builder_finish(EkBatchBuilder *b)
{
	StringInfo	out = b->out;
	int			start = out->len;
	pg_crc32c	crc;

	if (b->start < 0)
		return;
	ek_put_int64(out, b->base_offset);
	ek_put_int32(out, EK_BATCH_HEADER_AFTER_LENGTH + b->recs.len);
	ek_put_int32(out, 0);		/* partition leader epoch */
	ek_put_int8(out, 2);		/* magic */
	ek_put_int32(out, 0);		/* CRC, patched below */
	ek_put_int16(out, 0);		/* attributes: no compression, create time */
	ek_put_int32(out, (int32) (b->last_offset - b->base_offset));
	ek_put_int64(out, b->base_ts);
	ek_put_int64(out, b->max_ts);
	ek_put_int64(out, -1);		/* producer id */
	ek_put_int16(out, -1);		/* producer epoch */
	ek_put_int32(out, -1);		/* base sequence */
	ek_put_int32(out, b->count);
	appendBinaryStringInfo(out, b->recs.data, b->recs.len);

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, out->data + start + EK_BATCH_CRC_START,
				out->len - start - EK_BATCH_CRC_START);
	FIN_CRC32C(crc);
	ek_patch_int32(out, start + 17, (int32) crc);
	b->start = -1;
	b->count = 0;
}
