/*
 * storage.h
 *		What the rest of eventlog may use of the storage layer: the eventlog
 *		table access method, one relation at a time.
 *
 * An eventlog relation is an append-only run of records with increasing
 * offsets: a metapage (el_storage.c), data pages (el_page.h), appends
 * (el_insert.c) and readers in offset order (el_reader.c).  This layer knows
 * nothing of topics, segments or groups: the layers above say which
 * relation to append to or read, and learn of appends made through SQL by
 * setting el_table_append_hook.
 */
#ifndef EL_STORAGE_H
#define EL_STORAGE_H

#include "postgres.h"

#include "access/tableam.h"
#include "datatype/timestamp.h"
#include "executor/tuptable.h"
#include "storage/block.h"
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

/* ---- Settings (registered in el_guc.c) ---- */

extern int	eventlog_max_record_bytes;
extern bool eventlog_enable_offsetscan;

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

/* ---- The metapage (el_storage.c) ---- */

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
extern void el_note_all_settled(Relation rel, ElMetaInfo *meta);
extern void el_set_floor(Relation rel, int64 floor);
extern int64 el_block_first_offset(Relation rel, BlockNumber blkno);

/* ---- Appending (el_insert.c) ---- */

extern int	el_append(Relation rel, int32 partition, ElNewRecord *recs, int nrecs,
					  CommandId cid, ItemPointer tids, int64 lo, int64 hi);
extern void el_prepare_record(Relation rel, ElNewRecord *rec);
extern void el_rewind_aborted_tail(Relation rel, int64 to_offset);

/*
 * Set by the log layer: called after rows inserted through SQL (INSERT,
 * COPY) were appended to rel, so that it can wake those waiting for them.
 */
typedef void (*ElTableAppendHook) (Relation rel);
extern ElTableAppendHook el_table_append_hook;

/* ---- Reading in offset order (el_reader.c) ---- */

struct ElPageView;

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
	struct ElPageView *view;
	Buffer		ahead;			/* the next block, pinned, or InvalidBuffer */
	const char *ahead_next;		/* its next line not yet asked for */
} ElReader;

extern ElReader *el_reader_begin(Relation rel, Snapshot snapshot, int64 start_offset);
extern bool el_reader_next(ElReader *reader, ElRecord *rec);
extern void el_reader_end(ElReader *reader);
extern int64 el_offset_for_time(Relation rel, TimestampTz ts);
extern TimestampTz el_max_ts(Relation rel, ElMetaInfo *meta);
extern int64 el_last_stable_offset(Relation rel, ElMetaInfo *meta, TransactionId *held_by);

/* ---- Rows (el_scan.c) ---- */

extern void el_store_record(TupleTableSlot *slot, Relation rel, int32 partition,
							ElRecord *rec);

/* ---- Checking a relation against the format (el_verify.c) ---- */

typedef void (*ElVerifyFn) (BlockNumber blkno, const char *problem, void *arg);
extern int	el_verify_relation(Relation rel, int32 partition, int64 lo, int64 hi,
							   ElVerifyFn report, void *arg);

/* ---- The access method (el_tableam.c) and offset range scans (el_offsetscan.c) ---- */

extern bool el_is_eventlog_relation(Relation rel);
extern void ElOffsetScanInit(void);

#endif							/* EL_STORAGE_H */
