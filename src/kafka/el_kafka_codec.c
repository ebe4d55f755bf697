/*
 * el_kafka_codec.c
 *		Decompressing record batches: gzip, snappy, lz4 and zstd, the four
 *		codecs of Kafka's compression.type.
 *
 * Every codec inflates into a buffer that grows by doubling up to a limit
 * (eventlog.kafka_max_request_bytes): a small compressed request never
 * becomes an allocation larger than a request may be, whatever size its
 * frames announce.  Malformed input is a Kafka error (CORRUPT_MESSAGE), too
 * much output MESSAGE_TOO_LARGE; nothing here raises an ERROR.
 *
 * The framings are Kafka's: gzip streams (RFC 1952); snappy either raw
 * (librdkafka) or in the xerial framing the Java client writes (a 16-byte
 * header, then blocks each preceded by its big-endian length); lz4 in the
 * LZ4 frame format; zstd frames, possibly without their content size.
 */
#include "postgres.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "kafka/el_kafka.h"

/* An output buffer that doubles up to a limit. */
typedef struct EkOut
{
	char	   *buf;
	int			len;
	int			cap;
	int			limit;
} EkOut;

static void
ek_out_init(EkOut *o, int hint, int limit)
{
	o->limit = limit;
	o->cap = Min(Max(hint, 1024), limit);
	o->buf = palloc(o->cap);
	o->len = 0;
}

/* Room for more output: false once the limit is reached. */
static bool
ek_out_grow(EkOut *o)
{
	if (o->cap >= o->limit)
		return false;
	o->cap = (int) Min((int64) o->cap * 2, (int64) o->limit);
	o->buf = repalloc(o->buf, o->cap);
	return true;
}

/* ---- gzip ---- */

static int16
ek_gunzip(const char *in, int inlen, EkOut *o)
{
	z_stream	zs;
	int			rc;

	memset(&zs, 0, sizeof(zs));
	/* 16 + MAX_WBITS: a gzip header and trailer, not a raw zlib stream */
	if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
		return EK_ERR_UNKNOWN_SERVER_ERROR;
	zs.next_in = (Bytef *) in;
	zs.avail_in = inlen;
	for (;;)
	{
		zs.next_out = (Bytef *) o->buf + zs.total_out;
		zs.avail_out = o->cap - zs.total_out;
		rc = inflate(&zs, Z_NO_FLUSH);
		o->len = (int) zs.total_out;
		if (rc == Z_STREAM_END)
			break;
		if (rc != Z_OK && rc != Z_BUF_ERROR)
		{
			inflateEnd(&zs);
			return EK_ERR_CORRUPT_MESSAGE;
		}
		if (zs.avail_out == 0)
		{
			if (!ek_out_grow(o))
			{
				inflateEnd(&zs);
				return EK_ERR_MESSAGE_TOO_LARGE;
			}
		}
		else if (zs.avail_in == 0 || rc == Z_BUF_ERROR)
		{
			/* input ended before the stream did */
			inflateEnd(&zs);
			return EK_ERR_CORRUPT_MESSAGE;
		}
	}
	inflateEnd(&zs);
	return EK_ERR_NONE;
}

/* ---- snappy ---- */

static const char ek_xerial_magic[8] = {(char) 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

/* One raw snappy block appended to o. */
static int16
ek_unsnappy_block(const char *in, size_t inlen, EkOut *o)
{
	size_t		need;
	size_t		got;

	if (snappy_uncompressed_length(in, inlen, &need) != SNAPPY_OK)
		return EK_ERR_CORRUPT_MESSAGE;
	if (need > (size_t) (o->limit - o->len))
		return EK_ERR_MESSAGE_TOO_LARGE;
	while ((size_t) (o->cap - o->len) < need)
		(void) ek_out_grow(o);
	got = need;
	if (snappy_uncompress(in, inlen, o->buf + o->len, &got) != SNAPPY_OK || got != need)
		return EK_ERR_CORRUPT_MESSAGE;
	o->len += (int) got;
	return EK_ERR_NONE;
}

static uint32
ek_be32(const char *p)
{
	const unsigned char *u = (const unsigned char *) p;

	return ((uint32) u[0] << 24) | ((uint32) u[1] << 16) | ((uint32) u[2] << 8) | u[3];
}

static int16
ek_unsnappy(const char *in, int inlen, EkOut *o)
{
	int			pos;

	if (inlen < 16 || memcmp(in, ek_xerial_magic, sizeof(ek_xerial_magic)) != 0)
		return ek_unsnappy_block(in, inlen, o);

	/* xerial framing: magic, version and compatible version, then blocks */
	for (pos = 16; pos < inlen;)
	{
		uint32		blen;
		int16		err;

		if (inlen - pos < 4)
			return EK_ERR_CORRUPT_MESSAGE;
		blen = ek_be32(in + pos);
		pos += 4;
		if (blen > (uint32) (inlen - pos))
			return EK_ERR_CORRUPT_MESSAGE;
		err = ek_unsnappy_block(in + pos, blen, o);
		if (err != EK_ERR_NONE)
			return err;
		pos += blen;
	}
	return EK_ERR_NONE;
}

/* ---- lz4 ---- */

static int16
ek_unlz4(const char *in, int inlen, EkOut *o)
{
	LZ4F_dctx  *dctx;
	size_t		pos = 0;
	int16		err = EK_ERR_NONE;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		return EK_ERR_UNKNOWN_SERVER_ERROR;
	for (;;)
	{
		size_t		src = inlen - pos;
		size_t		dst = o->cap - o->len;
		size_t		hint = LZ4F_decompress(dctx, o->buf + o->len, &dst, in + pos, &src, NULL);

		if (LZ4F_isError(hint))
		{
			err = EK_ERR_CORRUPT_MESSAGE;
			break;
		}
		pos += src;
		o->len += (int) dst;
		if (hint == 0)
			break;				/* the frame is complete */
		if (o->len == o->cap)
		{
			if (!ek_out_grow(o))
			{
				err = EK_ERR_MESSAGE_TOO_LARGE;
				break;
			}
		}
		else if (pos >= (size_t) inlen && dst == 0)
		{
			err = EK_ERR_CORRUPT_MESSAGE;	/* input ended inside the frame */
			break;
		}
	}
	LZ4F_freeDecompressionContext(dctx);
	return err;
}

/* ---- zstd ---- */

static int16
ek_unzstd(const char *in, int inlen, EkOut *o)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	ZSTD_inBuffer src = {in, (size_t) inlen, 0};
	int16		err = EK_ERR_NONE;

	if (ds == NULL)
		return EK_ERR_UNKNOWN_SERVER_ERROR;
	(void) ZSTD_initDStream(ds);
	for (;;)
	{
		ZSTD_outBuffer dst = {o->buf, (size_t) o->cap, (size_t) o->len};
		size_t		rc = ZSTD_decompressStream(ds, &dst, &src);

		o->len = (int) dst.pos;
		if (ZSTD_isError(rc))
		{
			err = EK_ERR_CORRUPT_MESSAGE;
			break;
		}
		if (rc == 0 && src.pos == src.size)
			break;				/* every frame is complete */
		if (dst.pos == dst.size)
		{
			if (!ek_out_grow(o))
			{
				err = EK_ERR_MESSAGE_TOO_LARGE;
				break;
			}
		}
		else if (src.pos == src.size)
		{
			err = EK_ERR_CORRUPT_MESSAGE;	/* input ended inside a frame */
			break;
		}
	}
	ZSTD_freeDStream(ds);
	return err;
}

/*
 * Decompresses a batch's records compressed with codec: *out (palloc'd) and
 * *outlen, at most limit bytes.  On failure returns the Kafka error code and
 * sets *detail.
 */
int16
ek_decompress(int codec, const char *in, int inlen, int limit, char **out, int *outlen,
			  char **detail)
{
	EkOut		o;
	int16		err;

	ek_out_init(&o, inlen * 4, limit);
	switch (codec)
	{
		case EK_COMPRESSION_GZIP:
			err = ek_gunzip(in, inlen, &o);
			*detail = "could not decompress a gzip batch";
			break;
		case EK_COMPRESSION_SNAPPY:
			err = ek_unsnappy(in, inlen, &o);
			*detail = "could not decompress a snappy batch";
			break;
		case EK_COMPRESSION_LZ4:
			err = ek_unlz4(in, inlen, &o);
			*detail = "could not decompress an lz4 batch";
			break;
		case EK_COMPRESSION_ZSTD:
			err = ek_unzstd(in, inlen, &o);
			*detail = "could not decompress a zstd batch";
			break;
		default:
			*detail = "unknown compression type";
			return EK_ERR_CORRUPT_MESSAGE;
	}
	if (err == EK_ERR_MESSAGE_TOO_LARGE)
		*detail = "the decompressed batch is larger than eventlog.kafka_max_request_bytes";
	if (err != EK_ERR_NONE)
	{
		pfree(o.buf);
		return err;
	}
	*out = o.buf;
	*outlen = o.len;
	return EK_ERR_NONE;
}
