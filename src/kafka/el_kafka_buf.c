/*
 * el_kafka_buf.c
 *		The Kafka protocol's primitive types: big-endian integers, zigzag
 *		varints, strings, byte strings, arrays and tagged fields, in their
 *		classic and their "flexible" (compact) encodings.
 *
 * Readers never trust a length: everything is checked against the bytes
 * actually received, so a request claiming more than it holds only sets
 * the reader's error flag.
 */
#include "postgres.h"

#include "kafka/el_kafka.h"

void
ek_reader_init(EkReader *r, const char *data, int len)
{
	r->data = data;
	r->len = len;
	r->pos = 0;
	r->error = false;
}

int
ek_remaining(EkReader *r)
{
	return r->error ? 0 : r->len - r->pos;
}

/* The next n bytes, or NULL (and the error flag) if there are fewer. */
const char *
ek_get_raw(EkReader *r, int len)
{
	const char *p;

	if (r->error || len < 0 || len > r->len - r->pos)
	{
		r->error = true;
		return NULL;
	}
	p = r->data + r->pos;
	r->pos += len;
	return p;
}

int8
ek_get_int8(EkReader *r)
{
	const char *p = ek_get_raw(r, 1);

	return p ? (int8) p[0] : 0;
}

int16
ek_get_int16(EkReader *r)
{
	const unsigned char *p = (const unsigned char *) ek_get_raw(r, 2);

	return p ? (int16) ((p[0] << 8) | p[1]) : 0;
}

int32
ek_get_int32(EkReader *r)
{
	const unsigned char *p = (const unsigned char *) ek_get_raw(r, 4);

	if (p == NULL)
		return 0;
	return (int32) (((uint32) p[0] << 24) | ((uint32) p[1] << 16) |
					((uint32) p[2] << 8) | (uint32) p[3]);
}

int64
ek_get_int64(EkReader *r)
{
	uint64		hi = (uint32) ek_get_int32(r);
	uint64		lo = (uint32) ek_get_int32(r);

	return (int64) ((hi << 32) | lo);
}

/* An unsigned base-128 varint of at most max_bytes bytes. */
static uint64
ek_get_uvarlong_n(EkReader *r, int max_bytes)
{
	uint64		v = 0;
	int			shift = 0;
	int			i;

	for (i = 0; i < max_bytes; i++)
	{
		const char *p = ek_get_raw(r, 1);
		uint8		b;

		if (p == NULL)
			return 0;
		b = (uint8) *p;
		v |= (uint64) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return v;
		shift += 7;
	}
	r->error = true;			/* too long */
	return 0;
}

uint32
ek_get_uvarint(EkReader *r)
{
	return (uint32) ek_get_uvarlong_n(r, 5);
}

int32
ek_get_varint(EkReader *r)
{
	uint32		u = (uint32) ek_get_uvarlong_n(r, 5);

	return (int32) ((u >> 1) ^ (~(u & 1) + 1));
}

int64
ek_get_varlong(EkReader *r)
{
	uint64		u = ek_get_uvarlong_n(r, 10);

	return (int64) ((u >> 1) ^ (~(u & 1) + 1));
}

/*
 * A nullable string, copied and terminated (NULL for null).  Strings with a
 * zero byte are refused: nothing in the protocol needs one, and names go
 * on to C strings.
 */
char *
ek_get_string(EkReader *r, bool flexible)
{
	int32		len;
	const char *p;
	char	   *s;

	if (flexible)
		len = (int32) ek_get_uvarint(r) - 1;
	else
		len = ek_get_int16(r);
	if (len < 0)
		return NULL;
	p = ek_get_raw(r, len);
	if (p == NULL)
		return NULL;
	if (memchr(p, '\0', len) != NULL)
	{
		r->error = true;
		return NULL;
	}
	s = palloc(len + 1);
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

/* Nullable bytes, pointing into the request (NULL and *len = -1 for null). */
const char *
ek_get_bytes(EkReader *r, bool flexible, int *len)
{
	int32		n;
	const char *p;

	if (flexible)
		n = (int32) ek_get_uvarint(r) - 1;
	else
		n = ek_get_int32(r);
	*len = -1;
	if (n < 0)
		return NULL;
	p = ek_get_raw(r, n);
	if (p != NULL)
		*len = n;
	return p;
}

/*
 * An array's element count (-1 for null).  A count that the remaining bytes
 * cannot hold, at min_elem_size bytes per element, is an error: it would
 * otherwise size allocations by what a client claims.
 */
int32
ek_get_array_len(EkReader *r, bool flexible, int min_elem_size)
{
	int32		n;

	if (flexible)
		n = (int32) ek_get_uvarint(r) - 1;
	else
		n = ek_get_int32(r);
	if (r->error)
		return 0;
	if (n < -1)
	{
		r->error = true;
		return 0;
	}
	if (n > 0 && (int64) n * Max(min_elem_size, 1) > ek_remaining(r))
	{
		r->error = true;
		return 0;
	}
	return n;
}

/* Skips a tagged field section: eventlog reads no tagged field. */
void
ek_skip_tags(EkReader *r)
{
	uint32		n = ek_get_uvarint(r);
	uint32		i;

	for (i = 0; i < n && !r->error; i++)
	{
		(void) ek_get_uvarint(r);	/* tag */
		(void) ek_get_raw(r, (int) ek_get_uvarint(r));
	}
}

/* ---- Writing ---- */

void
ek_put_int8(StringInfo s, int8 v)
{
	appendStringInfoCharMacro(s, (char) v);
}

void
ek_put_int16(StringInfo s, int16 v)
{
	char		b[2];

	b[0] = (char) ((uint16) v >> 8);
	b[1] = (char) v;
	appendBinaryStringInfo(s, b, 2);
}

void
ek_put_int32(StringInfo s, int32 v)
{
	char		b[4];
	uint32		u = (uint32) v;

	b[0] = (char) (u >> 24);
	b[1] = (char) (u >> 16);
	b[2] = (char) (u >> 8);
	b[3] = (char) u;
	appendBinaryStringInfo(s, b, 4);
}

void
ek_put_int64(StringInfo s, int64 v)
{
	ek_put_int32(s, (int32) ((uint64) v >> 32));
	ek_put_int32(s, (int32) (uint64) v);
}

static void
ek_put_uvarlong(StringInfo s, uint64 u)
{
	while (u >= 0x80)
	{
		appendStringInfoCharMacro(s, (char) ((u & 0x7f) | 0x80));
		u >>= 7;
	}
	appendStringInfoCharMacro(s, (char) u);
}

void
ek_put_uvarint(StringInfo s, uint32 v)
{
	ek_put_uvarlong(s, v);
}

void
ek_put_varint(StringInfo s, int32 v)
{
	ek_put_uvarlong(s, (uint32) ((uint32) v << 1) ^ (uint32) (v >> 31));
}

void
ek_put_varlong(StringInfo s, int64 v)
{
	ek_put_uvarlong(s, ((uint64) v << 1) ^ (uint64) (v >> 63));
}

/* A nullable string (NULL writes null). */
void
ek_put_string(StringInfo s, const char *str, bool flexible)
{
	int			len = str ? (int) strlen(str) : -1;

	if (flexible)
		ek_put_uvarint(s, (uint32) (len + 1));
	else
		ek_put_int16(s, (int16) len);
	if (len > 0)
		appendBinaryStringInfo(s, str, len);
}

/* Nullable bytes (len -1 writes null). */
void
ek_put_bytes(StringInfo s, const char *data, int len, bool flexible)
{
	if (flexible)
		ek_put_uvarint(s, (uint32) (len + 1));
	else
		ek_put_int32(s, len);
	if (len > 0)
		appendBinaryStringInfo(s, data, len);
}

void
ek_put_array_len(StringInfo s, int32 n, bool flexible)
{
	if (flexible)
		ek_put_uvarint(s, (uint32) (n + 1));
	else
		ek_put_int32(s, n);
}

void
ek_put_empty_tags(StringInfo s)
{
	ek_put_uvarint(s, 0);
}

/* Overwrites four bytes written earlier (a length known only afterwards). */
void
ek_patch_int32(StringInfo s, int at, int32 v)
{
	uint32		u = (uint32) v;

	Assert(at >= 0 && at + 4 <= s->len);
	s->data[at] = (char) (u >> 24);
	s->data[at + 1] = (char) (u >> 16);
	s->data[at + 2] = (char) (u >> 8);
	s->data[at + 3] = (char) u;
}
