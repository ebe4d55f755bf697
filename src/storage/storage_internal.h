/*
 * storage_internal.h
 *		Declarations shared by the files of the storage layer only.
 */
#ifndef EL_STORAGE_INTERNAL_H
#define EL_STORAGE_INTERNAL_H

#include "storage/storage.h"

#include "storage/el_page.h"
#include "storage/buf.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"

/* ---- Visibility (el_visibility.c) ---- */

typedef enum ElVerdict
{
	EL_VISIBLE,					/* show the record */
	EL_INVISIBLE,				/* aborted, or never to be shown to this snapshot */
	EL_IN_PROGRESS				/* transaction still open for this snapshot */
} ElVerdict;

extern ElVerdict el_run_verdict(ElRunHeader *run, Buffer buffer, Snapshot snapshot);

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

/* ---- The metapage (el_storage.c) ---- */

extern void el_write_initial_meta(SMgrRelation srel, bool needs_wal, int32 partition,
								  int64 base_offset);
extern bool el_has_meta_block(Relation rel);
extern void el_check_tupdesc(Relation rel);

/* ---- WAL-logged page changes (el_wal.c): generic WAL records, or plain dirtying when not needed ---- */

typedef struct ElWal
{
	bool		logged;			/* RelationNeedsWAL */
	int			npages;
	struct ElWalPage *pages;	/* registered pages, up to 4 */
} ElWal;

extern void el_wal_start(ElWal *wal, Relation rel);
extern Page el_wal_register(ElWal *wal, Buffer buffer, bool new_page);
extern void el_wal_finish(ElWal *wal);

/* ---- Appending (el_insert.c) ---- */

extern void el_create_meta(Relation rel, int32 partition, int64 base_offset);
extern Size el_record_payload_size(ElNewRecord *rec);

/* ---- Reading (el_reader.c) ---- */

extern BlockNumber el_seek_block(Relation rel, ElMetaInfo *meta, int64 offset);

/* ---- The access method (el_tableam.c) and vacuum (el_vacuum.c) ---- */

extern const TableAmRoutine *el_tableam_routine(void);
extern void el_relation_vacuum(Relation rel, struct VacuumParams *params,
							   BufferAccessStrategy bstrategy);

#endif							/* EL_STORAGE_INTERNAL_H */
