/*
 * eventlog.h
 *		Declarations shared by the parts of eventlog.
 */
#ifndef EVENTLOG_H
#define EVENTLOG_H

#include "postgres.h"

#include "access/tableam.h"
#include "el_page.h"
#include "storage/buf.h"
#include "storage/smgr.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

/* Attribute numbers of the fixed row shape of an eventlog relation. */
#define EL_ATT_PARTITION	1
#define EL_ATT_OFFSET		2
#define EL_ATT_KEY			3
#define EL_ATT_VALUE		4
#define EL_ATT_HEADERS		5
#define EL_ATT_TS			6
#define EL_NATTS			6

/* Largest number of partitions of one topic. */
#define EL_MAX_PARTITIONS	10000

/* ---- Settings (el_guc.c) ---- */
extern int	eventlog_max_record_bytes;
extern bool eventlog_enable_offsetscan;
extern int	eventlog_segment_records;
extern void ElGucInit(void);

/* ---- Visibility (el_visibility.c) ---- */

typedef enum ElVerdict
{
	EL_VISIBLE,					/* show the record */
	EL_INVISIBLE,				/* aborted, or never to be shown to this snapshot */
	EL_IN_PROGRESS				/* transaction still open for this snapshot */
} ElVerdict;

extern ElVerdict el_run_verdict(ElRunHeader *run, Buffer buffer, Snapshot snapshot);

/* ---- Records ---- */

/* A record to append; varlena pointers are what gets stored (maybe toasted). */
typedef struct ElNewRecord
{
	int64		offset;			/* requested offset, or -1 to assign; result */
	TimestampTz ts;
	struct varlena *key;		/* NULL if absent */
	struct varlena *headers;	/* NULL if absent */
	struct varlena *value;		/* NULL for a tombstone */
} ElNewRecord;

/* A decoded record: pointers into a page image. */
typedef struct ElRecord
{
	int64		offset;
	TimestampTz ts;
	BlockNumber blkno;
	uint16		index;			/* position on its page, from 0 */
	Pointer		key;			/* varlena or NULL */
	Pointer		headers;
	Pointer		value;
	TransactionId xmin;
} ElRecord;

/* ---- Pages copied for reading (el_pageview.c) ---- */

/*
 * A data page copied out of shared buffers together with each record's
 * verdict under one snapshot.  Records are immutable once written, so the
 * copy can be read after the buffer lock is gone.
 */
typedef struct ElPageView
{
	BlockNumber blkno;			/* InvalidBlockNumber when nothing loaded */
	int64		first_offset;
	int			nrecords;
	int			start;			/* records before it: no verdict, not copied */
	bool		sealed;
	uint16		recpos[EL_MAX_RECORDS_PER_PAGE];
	uint16		runpos[EL_MAX_RECORDS_PER_PAGE];
	uint8		verdict[EL_MAX_RECORDS_PER_PAGE];
	PGAlignedBlock data;
} ElPageView;

extern bool el_view_load(Relation rel, BlockNumber blkno, Snapshot snapshot,
						 ElPageView *view, BufferAccessStrategy strategy);
extern bool el_view_load_from(Relation rel, BlockNumber blkno, Snapshot snapshot,
							  ElPageView *view, BufferAccessStrategy strategy,
							  int64 start_offset);
extern bool el_view_load_pinned(Relation rel, Buffer buffer, Snapshot snapshot, ElPageView *view,
								int64 start_offset);
extern void el_view_record(ElPageView *view, int index, ElRecord *rec);

/* ---- Storage (el_storage.c) ---- */

typedef struct ElMetaInfo
{
	bool		exists;			/* false: relation still empty */
	int32		partition;
	BlockNumber last_block;
	BlockNumber frozen_block;
	BlockNumber settled_block;
	int64		base_offset;
	int64		floor_offset;
	int64		earliest_offset;	/* first offset stored */
	int64		next_offset;	/* high watermark */
	int64		tail_first_offset;	/* first offset of last_block, -1 if unknown */
} ElMetaInfo;

extern void el_read_meta(Relation rel, ElMetaInfo *info);
extern void el_note_settled(Relation rel, BlockNumber settled_block);
extern void el_set_floor(Relation rel, int64 floor);
extern void el_write_initial_meta(SMgrRelation srel, bool needs_wal, int32 partition,
								  int64 base_offset);

/* WAL-logged page changes (el_wal.c): generic WAL records, or plain dirtying when not needed. */
typedef struct ElWal
{
	bool		logged;			/* RelationNeedsWAL */
	int			npages;
	struct ElWalPage *pages;	/* registered pages, up to 4 */
} ElWal;

extern void el_wal_start(ElWal *wal, Relation rel);
extern Page el_wal_register(ElWal *wal, Buffer buffer, bool new_page);
extern void el_wal_finish(ElWal *wal);
extern int64 el_block_first_offset(Relation rel, BlockNumber blkno);
extern bool el_has_meta_block(Relation rel);
extern void el_check_tupdesc(Relation rel);

/* ---- Appending (el_insert.c) ---- */

extern int	el_append(Relation rel, int32 partition, ElNewRecord *recs, int nrecs,
					  CommandId cid, ItemPointer tids, int64 lo, int64 hi);
extern void el_prepare_record(Relation rel, ElNewRecord *rec);
extern void el_create_meta(Relation rel, int32 partition, int64 base_offset);
extern void el_rewind_aborted_tail(Relation rel, int64 to_offset);
extern Size el_record_payload_size(ElNewRecord *rec);

/* ---- Reading in offset order (el_reader.c) ---- */

typedef struct ElReader
{
	Relation	rel;
	Snapshot	snapshot;
	ElMetaInfo	meta;
	BlockNumber blkno;			/* block in view */
	int			index;			/* next record index in view */
	bool		done;
	int64		position;		/* offset of the next record not yet examined */
	bool		blocked;		/* stopped at an open transaction */
	int64		blocked_offset;
	TransactionId blocked_xid;
	ElPageView *view;
	Buffer		ahead;			/* the next block, pinned, or InvalidBuffer */
	const char *ahead_next;		/* its next line not yet asked for */
} ElReader;

extern ElReader *el_reader_begin(Relation rel, Snapshot snapshot, int64 start_offset);
extern bool el_reader_next(ElReader *reader, ElRecord *rec);
extern void el_reader_end(ElReader *reader);
extern BlockNumber el_seek_block(Relation rel, ElMetaInfo *meta, int64 offset);
extern int64 el_offset_for_time(Relation rel, TimestampTz ts);
extern TimestampTz el_max_ts(Relation rel, ElMetaInfo *meta);

/* ---- Reading functions (el_fetch.c, el_rowout.c) ---- */

struct ReturnSetInfo;

/* Result rows of fetch() and consume() (el_rowout.c) */
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
extern int64 el_last_stable_offset(Relation rel, ElMetaInfo *meta, TransactionId *held_by);

/* ---- Table access method (el_tableam.c) ---- */

extern const TableAmRoutine *el_tableam_routine(void);
extern bool el_is_eventlog_relation(Relation rel);

/* ---- Offset range scans for SQL (el_offsetscan.c) ---- */

extern void ElOffsetScanInit(void);

/* ---- Group assignment (el_assign.c) ---- */

extern void el_assign_partitions(int npartitions, int nmembers, int *owners);

/* ---- Shared memory of the preloaded library (el_shmem.c) ---- */

typedef void (*ElShmemInitFunc) (void *area);
extern void el_shmem_register(const char *name, Size size, ElShmemInitFunc init, void **ptr);

/* ---- Waking consumers (el_wakeup.c) ---- */

extern void ElWakeupInit(void);
extern bool el_wakeup_available(void);
extern void el_wakeup_note_append(Oid relid);
extern uint64 el_wakeup_stamp(Oid *relids, int n);
extern bool el_wakeup_wait(Oid *relids, int n, uint64 stamp, TimestampTz deadline);

/* ---- Background workers (el_worker.c, el_notify.c) ---- */

extern int	eventlog_notify_interval;
extern int	eventlog_launcher_naptime;
extern void ElWorkerInit(void);
extern bool el_worker_available(void);
extern void el_worker_wake(void);
extern void el_worker_want_segments(void);
struct BackgroundWorker;
/* el_subxact.c */
extern ErrorData *el_try(void (*fn) (void *arg), void *arg);

extern void el_describe_worker(struct BackgroundWorker *worker, const char *function,
							   const char *type, int restart_time);
extern bool el_notify_pass(bool recheck);
extern void el_notify_forget(void);
extern bool el_mirror_pass(void);

/* ---- Listening sessions (el_listen.c) ---- */

extern void ElListenInit(void);
extern bool el_listeners_present(Oid dboid);

/* ---- Vacuum (el_vacuum.c) ---- */

extern void el_relation_vacuum(Relation rel, struct VacuumParams *params,
							   BufferAccessStrategy bstrategy);

/* ---- Murmur2 partitioner (el_partitioner.c) ---- */

extern int32 el_murmur2(const char *data, int len);
extern int32 el_partition_for_key(const char *key, int len, int32 npartitions);

/* ---- Topics (el_topic.c) ---- */

/* What a caller needs of a topic: a copy, safe across cache invalidations. */
typedef struct ElTopic
{
	char		name[256];
	Oid			parent;			/* partitioned relation */
	int32		npartitions;
	int64		segment_records;	/* offsets per new segment */
} ElTopic;

extern void el_check_topic_name(const char *name);
extern bool el_topic_lookup(const char *name, bool missing_ok, ElTopic *topic);
extern Oid	el_topic_leaf(ElTopic *topic, int32 partition);
extern int32 el_topic_spread(ElTopic *topic);
extern void el_segment_relname(const char *leafname, int64 lo, char *segname);
extern Oid	el_rel_owner(Oid relid);
extern Oid	el_create_segment(Oid leaf, int64 lo, int64 hi, bool wait);

/* ---- Creating segments in a transaction of their own (el_segmaker.c) ---- */

extern bool el_create_segment_apart(Oid leaf, int64 lo, int64 hi);
extern void el_check_partition(ElTopic *topic, int32 partition);
extern void el_check_topic_privilege(ElTopic *topic, AclMode mode);
extern Oid	el_catalog_owner(void);
extern void el_require_arg(FunctionCallInfo fcinfo, int argno, const char *what);
extern char *el_text_arg(FunctionCallInfo fcinfo, int argno, const char *what);
extern void el_catalog_exec(const char *sql, int nargs, Oid *argtypes, Datum *args,
							const char *nulls);

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
extern void el_log_open_relation(ElLog *log, Oid relid);
extern void el_log_refresh(ElLog *log);
extern void el_log_close(ElLog *log);
extern Relation el_log_open_segment(ElLog *log, int seg, LOCKMODE lockmode);
extern bool el_segment_used(ElSegment *segment, ElMetaInfo *meta);
extern int	el_log_tail(ElLog *log, ElMetaInfo *meta);
extern void el_log_meta(ElLog *log, ElMetaInfo *info);
extern int	el_log_find(ElLog *log, int64 offset);
typedef void (*ElAppendedFn) (Relation segment, int32 partition, ElNewRecord *recs,
							  ItemPointer tids, int n);
extern void el_log_append(ElLog *log, ElNewRecord *recs, int n, CommandId cid,
						  ElAppendedFn appended);
extern void el_log_set_floor(ElLog *log, int64 floor);
extern void el_log_rewind_aborted_tail(ElLog *log, int64 to_offset);

/* Reading a partition across its segments (el_logreader.c) */
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

/* ---- Retention (el_retention.c) ---- */

extern int	eventlog_retention_check_interval;
extern void el_retention_pass(void);

/* ---- Producing (el_produce.c) ---- */

extern void el_produce_to_partition(ElTopic *topic, int32 partition, ElNewRecord *recs, int n);
extern void ElTopicCacheInit(void);

#endif							/* EVENTLOG_H */
