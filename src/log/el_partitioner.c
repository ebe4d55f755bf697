/*
 * el_partitioner.c
 *		Kafka's default partitioner: murmur2 of the key bytes.
 *
 * A keyed record lands on partition (murmur2(key) & 0x7fffffff) % n, the
 * same partition a Kafka Java client (and librdkafka with
 * partitioner=murmur2_random) picks, so both sides agree on where a key
 * lives.  Keys are hashed as UTF-8, whatever the server encoding.
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "log/log_internal.h"

PG_FUNCTION_INFO_V1(eventlog_murmur2);
PG_FUNCTION_INFO_V1(eventlog_partition_for_key);

/* Kafka's Utils.murmur2, with its seed and mixing constants. */
int32
el_murmur2(const char *data, int len)
{
	const uint32 seed = 0x9747b28c;
	const uint32 m = 0x5bd1e995;
	const int	r = 24;
	const unsigned char *bytes = (const unsigned char *) data;
	uint32		h = seed ^ (uint32) len;
	int			nblocks = len / 4;
	int			tail = len & ~3;
	int			i;

	for (i = 0; i < nblocks; i++)
	{
		uint32		k = (uint32) bytes[i * 4] |
			((uint32) bytes[i * 4 + 1] << 8) |
			((uint32) bytes[i * 4 + 2] << 16) |
			((uint32) bytes[i * 4 + 3] << 24);

		k *= m;
		k ^= k >> r;
		k *= m;
		h *= m;
		h ^= k;
	}

	switch (len % 4)
	{
		case 3:
			h ^= (uint32) bytes[tail + 2] << 16;
			/* FALLTHROUGH */
		case 2:
			h ^= (uint32) bytes[tail + 1] << 8;
			/* FALLTHROUGH */
		case 1:
			h ^= (uint32) bytes[tail];
			h *= m;
	}

	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return (int32) h;
}

/* Partition of a key given in the server encoding. */
int32
el_partition_for_key(const char *key, int len, int32 npartitions)
{
	const char *utf8 = key;
	int32		hash;

	if (GetDatabaseEncoding() != PG_UTF8)
	{
		utf8 = (const char *) pg_do_encoding_conversion((unsigned char *) key, len,
														GetDatabaseEncoding(), PG_UTF8);
		if (utf8 != key)
			len = strlen(utf8);
	}
	hash = el_murmur2(utf8, len);
	return (int32) ((uint32) (hash & 0x7fffffff) % (uint32) npartitions);
}

Datum
eventlog_murmur2(PG_FUNCTION_ARGS)
{
	text	   *key = PG_GETARG_TEXT_PP(0);
	const char *utf8 = VARDATA_ANY(key);
	int			len = VARSIZE_ANY_EXHDR(key);

	if (GetDatabaseEncoding() != PG_UTF8)
	{
		utf8 = (const char *) pg_do_encoding_conversion((unsigned char *) utf8, len,
														GetDatabaseEncoding(), PG_UTF8);
		if (utf8 != VARDATA_ANY(key))
			len = strlen(utf8);
	}
	PG_RETURN_INT32(el_murmur2(utf8, len));
}

Datum
eventlog_partition_for_key(PG_FUNCTION_ARGS)
{
	text	   *key = PG_GETARG_TEXT_PP(0);
	int32		npartitions = PG_GETARG_INT32(1);

	if (npartitions < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of partitions must be at least 1")));
	PG_RETURN_INT32(el_partition_for_key(VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key), npartitions));
}
