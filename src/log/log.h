/*
 * log.h
 *		What the rest of eventlog may use of the log layer: topics, a
 *		partition as one log over its segments, producing, reading, result
 *		rows, retention and the wakeups of waiting readers.
 *
 * The log layer calls down into storage only.  It knows nothing of groups
 * or of the worker: what the worker does on its behalf (announce committed
 * records, create segments ahead) it asks through the hooks below, which
 * the worker sets when it is loaded.
 */
#ifndef EL_LOG_H
#define EL_LOG_H

#include "postgres.h"

#include "fmgr.h"
#include "storage/storage.h"
#include "utils/acl.h"

/* Largest number of partitions of one topic. */
#define EL_MAX_PARTITIONS	10000

/* ---- Settings (registered in el_guc.c) ---- */

extern int	eventlog_segment_records;
extern int	eventlog_retention_check_interval;

/* ---- Topics (el_topic.c) ---- */

/* What a caller needs of a topic: a copy, safe across cache invalidations. */
typedef struct ElTopic
{
	char		name[256];
	Oid			parent;			/* partitioned relation */
	int32		npartitions;
	int64		segment_records;	/* offsets per new segment */
} ElTopic;

extern void ElTopicCacheInit(void);
extern void el_check_topic_name(const char *name);
extern bool el_topic_lookup(const char *name, bool missing_ok, ElTopic *topic);
extern Oid	el_topic_leaf(ElTopic *topic, int32 partition);
extern int32 el_topic_spread(ElTopic *topic);
extern void el_check_partition(ElTopic *topic, int32 partition);
extern void el_check_topic_privilege(ElTopic *topic, AclMode mode);
extern Oid	el_catalog_owner(void);
extern char *el_text_arg(FunctionCallInfo fcinfo, int argno, const char *what);

/* ---- Murmur2 partitioner (el_partitioner.c) ---- */

extern int32 el_partition_for_key(const char *key, int len, int32 npartitions);

/* ---- A partition as one log over its segments (el_log.c) ---- */

/* A segment: an eventlog relation holding the offsets [lo, hi). */
typedef struct ElSegment
{
	Oid			relid;
	int64		lo;
	int64		hi;
} ElSegment;

typedef struct ElLog
{
	ElTopic		topic;
	int32		partition;
	Oid			relid;			/* the partition's relation */
	bool		segmented;		/* false: one eventlog relation (before 0.3.0) */
	int			nsegments;
	ElSegment  *segments;		/* in offset order */
} ElLog;

extern void el_log_open(ElLog *log, ElTopic *topic, int32 partition);
extern void el_log_refresh(ElLog *log);
extern void el_log_close(ElLog *log);
extern void el_log_meta(ElLog *log, ElMetaInfo *info);
extern void el_log_set_floor(ElLog *log, int64 floor);
extern void el_log_rewind_aborted_tail(ElLog *log, int64 to_offset);

/*
 * Set by the worker: asks it for the next segment now, when an append
 * crosses the middle of the newest one.
 */
typedef void (*ElLogSegmentWantedHook) (void);
extern ElLogSegmentWantedHook el_log_segment_wanted_hook;

/* ---- Reading a partition across its segments (el_logreader.c) ---- */

typedef struct ElLogReader
{
	ElLog	   *log;
	Snapshot	snapshot;
	int			seg;			/* segment being read */
	Relation	rel;			/* open segment, or NULL */
	ElReader   *reader;			/* reader of that segment, or NULL */
	bool		done;
	int64		position;		/* offset of the next record not yet examined */
	bool		blocked;		/* stopped at an open transaction */
	int64		blocked_offset;
	TransactionId blocked_xid;
} ElLogReader;

extern ElLogReader *el_log_reader_begin(ElLog *log, Snapshot snapshot, int64 start_offset);
extern bool el_log_reader_next(ElLogReader *reader, ElRecord *rec);
extern void el_log_reader_end(ElLogReader *reader);
extern int64 el_log_last_stable_offset(ElLog *log, ElMetaInfo *meta, TransactionId *held_by);
extern int64 el_log_offset_for_time(ElLog *log, TimestampTz ts);

/* ---- Producing (el_produce.c) ---- */

extern void el_produce_to_partition(ElTopic *topic, int32 partition, ElNewRecord *recs, int n);

/* ---- Result rows of fetch() and consume() (el_rowout.c) ---- */

struct ReturnSetInfo;

typedef struct ElRowOut
{
	struct ReturnSetInfo *rsinfo;
	text	   *topic;
	char	   *buf;			/* where a row is laid out */
	Size		bufsize;
} ElRowOut;

extern void el_rowout_begin(ElRowOut *out, struct FunctionCallInfoBaseData *fcinfo, const char *topic);
extern void el_emit_record(ElRowOut *out, int32 partition, ElRecord *rec);
extern void el_rowout_end(ElRowOut *out);

/* ---- Retention (el_retention.c) ---- */

extern void el_retention_pass(void);

/* ---- Waking readers that wait for records (el_wakeup.c) ---- */

extern void ElWakeupInit(void);
extern bool el_wakeup_available(void);
extern uint64 el_wakeup_stamp(Oid *relids, int n);
extern bool el_wakeup_wait(Oid *relids, int n, uint64 stamp, TimestampTz deadline);

/* ---- Transactions producing now (el_producers.c) ---- */

extern void ElProducersInit(void);
typedef void (*ElProducerFn) (int pid, TransactionId xid, TimestampTz since, void *arg);
extern void el_producers_older_than(Oid dboid, TimestampTz cutoff, ElProducerFn fn, void *arg);

/*
 * Set by the worker: called at the commit of a transaction that appended
 * records, once they are visible, so that it announces them.
 */
typedef void (*ElLogCommittedHook) (void);
extern ElLogCommittedHook el_log_committed_hook;

#endif							/* EL_LOG_H */
