/*
 * el_kafka.h
 *		The Kafka wire protocol listener: declarations shared by its files only.
 *
 * el_kafka_buf.c      reading and writing the protocol's primitive types
 * el_kafka_batch.c    record batches (magic 2): parsing, CRC32C, gzip, building
 * el_kafka_log.c      every access to topics and partitions (one narrow interface)
 * el_kafka_meta.c     ApiVersions, Metadata, ListOffsets, FindCoordinator
 * el_kafka_produce.c  Produce
 * el_kafka_idempotence.c  InitProducerId and the idempotent producer's sequence checks
 * el_kafka_fetch.c    Fetch, with long-polls parked in the event loop
 * el_kafka_group.c    OffsetCommit, OffsetFetch and the group membership APIs
 * el_kafka_worker.c   the listener process: sockets, event loop, dispatch
 */
#ifndef EL_KAFKA_H
#define EL_KAFKA_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/acl.h"

#include "kafka/kafka.h"

/* ---- API keys and error codes of the protocol ---- */
#define EK_API_PRODUCE			0
#define EK_API_FETCH			1
#define EK_API_LIST_OFFSETS		2
#define EK_API_METADATA			3
#define EK_API_OFFSET_COMMIT	8
#define EK_API_OFFSET_FETCH		9
#define EK_API_FIND_COORDINATOR 10
#define EK_API_JOIN_GROUP		11
#define EK_API_HEARTBEAT		12
#define EK_API_LEAVE_GROUP		13
#define EK_API_SYNC_GROUP		14
#define EK_API_API_VERSIONS		18
#define EK_API_INIT_PRODUCER_ID 22

#define EK_ERR_UNKNOWN_SERVER_ERROR		(-1)
#define EK_ERR_NONE						0
#define EK_ERR_OFFSET_OUT_OF_RANGE		1
#define EK_ERR_CORRUPT_MESSAGE			2
#define EK_ERR_UNKNOWN_TOPIC_OR_PARTITION 3
#define EK_ERR_INVALID_FETCH_SIZE		4
#define EK_ERR_NOT_LEADER				6
#define EK_ERR_REQUEST_TIMED_OUT		7
#define EK_ERR_MESSAGE_TOO_LARGE		10
#define EK_ERR_COORDINATOR_NOT_AVAILABLE 15
#define EK_ERR_NOT_COORDINATOR			16
#define EK_ERR_INVALID_TOPIC			17
#define EK_ERR_RECORD_LIST_TOO_LARGE	18
#define EK_ERR_ILLEGAL_GENERATION		22
#define EK_ERR_INCONSISTENT_GROUP_PROTOCOL 23
#define EK_ERR_INVALID_GROUP_ID			24
#define EK_ERR_UNKNOWN_MEMBER_ID		25
#define EK_ERR_INVALID_SESSION_TIMEOUT	26
#define EK_ERR_REBALANCE_IN_PROGRESS	27
#define EK_ERR_INVALID_COMMIT_OFFSET_SIZE 28
#define EK_ERR_TOPIC_AUTHORIZATION_FAILED 29
#define EK_ERR_GROUP_AUTHORIZATION_FAILED 30
#define EK_ERR_UNSUPPORTED_VERSION		35
#define EK_ERR_INVALID_REQUEST			42
#define EK_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT 43
#define EK_ERR_OUT_OF_ORDER_SEQUENCE	45
#define EK_ERR_DUPLICATE_SEQUENCE		46
#define EK_ERR_INVALID_PRODUCER_EPOCH	47
#define EK_ERR_INVALID_TXN_STATE		48
#define EK_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED 53
#define EK_ERR_UNKNOWN_PRODUCER_ID		59
#define EK_ERR_UNSUPPORTED_COMPRESSION	76
#define EK_ERR_MEMBER_ID_REQUIRED		79
#define EK_ERR_INVALID_RECORD			87

/* The one broker this server is. */
#define EK_NODE_ID				1

/* ---- Reading and writing (el_kafka_buf.c) ---- */

/*
 * A cursor over received bytes.  Reading past the end sets error and
 * returns zeros: callers check error once, after parsing a whole request,
 * instead of after every field.
 */
typedef struct EkReader
{
	const char *data;
	int			len;
	int			pos;
	bool		error;
} EkReader;

extern void ek_reader_init(EkReader *r, const char *data, int len);
extern int	ek_remaining(EkReader *r);
extern int8 ek_get_int8(EkReader *r);
extern int16 ek_get_int16(EkReader *r);
extern int32 ek_get_int32(EkReader *r);
extern int64 ek_get_int64(EkReader *r);
extern int32 ek_get_varint(EkReader *r);
extern int64 ek_get_varlong(EkReader *r);
extern uint32 ek_get_uvarint(EkReader *r);
extern const char *ek_get_raw(EkReader *r, int len);
extern char *ek_get_string(EkReader *r, bool flexible);
extern const char *ek_get_bytes(EkReader *r, bool flexible, int *len);
extern int32 ek_get_array_len(EkReader *r, bool flexible, int min_elem_size);
extern void ek_skip_tags(EkReader *r);

extern void ek_put_int8(StringInfo s, int8 v);
extern void ek_put_int16(StringInfo s, int16 v);
extern void ek_put_int32(StringInfo s, int32 v);
extern void ek_put_int64(StringInfo s, int64 v);
extern void ek_put_varint(StringInfo s, int32 v);
extern void ek_put_varlong(StringInfo s, int64 v);
extern void ek_put_uvarint(StringInfo s, uint32 v);
extern void ek_put_string(StringInfo s, const char *str, bool flexible);
extern void ek_put_bytes(StringInfo s, const char *data, int len, bool flexible);
extern void ek_put_array_len(StringInfo s, int32 n, bool flexible);
extern void ek_put_empty_tags(StringInfo s);
extern void ek_patch_int32(StringInfo s, int at, int32 v);

/* ---- Records as the protocol sees them ---- */

typedef struct EkHeader
{
	const char *name;
	int			namelen;
	const char *value;
	int			valuelen;		/* -1: null */
} EkHeader;

typedef struct EkRecord
{
	int64		offset;
	int64		ts_ms;			/* milliseconds since 1970 */
	const char *key;
	int			keylen;			/* -1: null */
	const char *value;
	int			valuelen;		/* -1: null (tombstone) */
	int			nheaders;
	EkHeader   *headers;
} EkRecord;

/* ---- Record batches (el_kafka_batch.c) ---- */

/* What a Produce request's records field holds, once checked. */
typedef struct EkBatchSet
{
	int			nrecords;
	EkRecord   *records;
	int64		producer_id;	/* of the first batch */
	int16		producer_epoch;
	int32		base_sequence;	/* of the first batch */
	int32		last_sequence;	/* of the last batch (sequences wrap at INT32_MAX) */
} EkBatchSet;

extern int16 ek_parse_batches(const char *data, int len, EkBatchSet *set, char **detail);

/* Builds batches of consecutive records for a Fetch response. */
typedef struct EkBatchBuilder
{
	StringInfo	out;			/* the records field being built */
	int			start;			/* position of the open batch, -1 if none */
	int64		base_offset;
	int64		last_offset;
	int64		base_ts;
	int64		max_ts;
	int32		count;
	StringInfoData recs;		/* records of the open batch */
} EkBatchBuilder;

extern void ek_builder_init(EkBatchBuilder *b, StringInfo out);
extern void ek_builder_add(EkBatchBuilder *b, EkRecord *rec);
extern void ek_builder_finish(EkBatchBuilder *b);

/* ---- Storage access (el_kafka_log.c) ---- */

typedef struct EkTopicInfo
{
	char	   *name;
	int32		npartitions;
} EkTopicInfo;

typedef struct EkPartitionState
{
	int64		log_start;		/* earliest offset */
	int64		high_watermark;
	int64		last_stable;
	uint32		wait_id;		/* what to watch for commits */
} EkPartitionState;

/* Callback for each record read; returns false to stop. */
typedef bool (*EkRecordCallback) (EkRecord *rec, void *arg);

extern List *ek_log_topics(void);
extern bool ek_log_topic(const char *name, int32 *npartitions);
extern bool ek_log_allowed(const char *name, AclMode mode);
extern void ek_log_check(const char *name, int32 partition, AclMode mode);
extern void ek_log_state(const char *name, int32 partition, EkPartitionState *st);
extern int64 ek_log_offset_for_time(const char *name, int32 partition, int64 ts_ms,
									int64 *found_ts_ms);
extern void ek_log_read(const char *name, int32 partition, int64 offset,
						EkRecordCallback cb, void *arg);
extern int64 ek_log_append(const char *name, int32 partition, EkRecord *recs, int n);
extern uint64 ek_log_stamp(uint32 *wait_ids, int n);

/* ---- Requests (el_kafka_worker.c calls the APIs) ---- */

typedef struct EkRequest
{
	int16		api_key;
	int16		api_version;
	int32		correlation_id;
	char	   *client_id;
	EkReader	body;
} EkRequest;

/* What a handler tells the loop. */
typedef enum EkOutcome
{
	EK_RESPOND,					/* the response is in out */
	EK_NO_RESPONSE,				/* nothing to send (Produce with acks = 0) */
	EK_PARK,					/* a Fetch waits for records: call again later */
	EK_MALFORMED				/* the request could not be parsed */
} EkOutcome;

/* A parked Fetch: what the loop watches, and the handler's own state. */
typedef struct EkPark
{
	int64		deadline_ms;	/* monotonic milliseconds */
	int			nwait;
	uint32	   *wait_ids;
	uint64		stamp;
	int			recheck_ms;		/* look again at least this often; 0: default */
	void	   *state;
} EkPark;

extern void ek_begin(void);
extern void ek_commit(void);
extern int64 ek_now_ms(void);
extern int16 ek_error_from_sqlstate(int sqlerrcode);
extern bool ek_api_supported(int16 api_key, int16 version);
extern bool ek_api_flexible(int16 api_key, int16 version);
extern int16 ek_try(void (*fn) (void *arg), void *arg);

extern EkOutcome ek_api_versions(EkRequest *req, StringInfo out);
extern EkOutcome ek_metadata(EkRequest *req, StringInfo out);
extern EkOutcome ek_list_offsets(EkRequest *req, StringInfo out);
extern EkOutcome ek_find_coordinator(EkRequest *req, StringInfo out);
extern EkOutcome ek_produce(EkRequest *req, StringInfo out);
extern EkOutcome ek_fetch(EkRequest *req, StringInfo out, EkPark *park);
extern EkOutcome ek_offset_commit(EkRequest *req, StringInfo out);
extern EkOutcome ek_offset_fetch(EkRequest *req, StringInfo out);
extern EkOutcome ek_join_group(EkRequest *req, StringInfo out, EkPark *park);
extern EkOutcome ek_sync_group(EkRequest *req, StringInfo out, EkPark *park);
extern EkOutcome ek_heartbeat(EkRequest *req, StringInfo out);
extern EkOutcome ek_leave_group(EkRequest *req, StringInfo out);
extern void ek_groups_tick(void);
extern EkOutcome ek_init_producer_id(EkRequest *req, StringInfo out);

/* ---- The idempotent producer (el_kafka_idempotence.c) ---- */

extern void ek_idem_start_request(void);
extern int16 ek_idem_check(const char *topic, int32 partition, EkBatchSet *set,
						   int64 *dup_offset);
extern void ek_idem_record(const char *topic, int32 partition, EkBatchSet *set,
						   int64 base_offset);

extern const char *ek_advertised_host(void);
extern int	ek_advertised_port(void);

/* ---- Compression codecs of record batches (el_kafka_codec.c) ---- */

#define EK_COMPRESSION_NONE		0
#define EK_COMPRESSION_GZIP		1
#define EK_COMPRESSION_SNAPPY	2
#define EK_COMPRESSION_LZ4		3
#define EK_COMPRESSION_ZSTD		4

extern int16 ek_decompress(int codec, const char *in, int inlen, int limit, char **out,
						   int *outlen, char **detail);

#endif							/* EL_KAFKA_H */
