/*
 * compat.h
 *		Every difference between the PostgreSQL majors eventlog builds
 *		against (15, 16, 17, 18), in one place.
 *
 * The code is written once, against names that exist in every major: where
 * a later major renamed something, the newer name is defined here for the
 * older ones; where a call's arguments changed, an el_ wrapper takes the
 * arguments every major needs and adds or drops the rest.  Table access
 * method callbacks whose signatures differ are thin adapters in compat.c
 * onto the storage layer's own functions.
 *
 * Nothing else in src/ tests PG_VERSION_NUM.
 */
#ifndef EL_COMPAT_H
#define EL_COMPAT_H

#include "postgres.h"

#include "access/tableam.h"
#include "nodes/tidbitmap.h"
#if PG_VERSION_NUM >= 170000
#include "storage/read_stream.h"
#endif

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "eventlog builds against PostgreSQL 15, 16, 17 and 18"
#endif

/* ---- 16: relation file nodes became relation file locators ---- */

#if PG_VERSION_NUM < 160000
#include "storage/relfilenode.h"
typedef RelFileNode RelFileLocator;
#define RelFileLocatorEquals(a, b)	RelFileNodeEquals(a, b)
#define EL_REL_LOCATOR(rel)			((rel)->rd_node)
#define EL_SMGR_LOCATOR(srel)		((srel)->smgr_rnode.node)
#define EL_LOCATOR_DB(loc)			((loc).dbNode)
#define EL_LOCATOR_NUMBER(loc)		((loc).relNode)
/* the table AM callback that gives a relation new storage */
#define relation_set_new_filelocator relation_set_new_filenode
/* tuple_update says which indexes need new entries: a bool before 16 */
typedef bool TU_UpdateIndexes;
#else
#define EL_REL_LOCATOR(rel)			((rel)->rd_locator)
#define EL_SMGR_LOCATOR(srel)		((srel)->smgr_rlocator.locator)
#define EL_LOCATOR_DB(loc)			((loc).dbOid)
#define EL_LOCATOR_NUMBER(loc)		((loc).relNumber)
#endif

/* ---- 16: ownership and ACL checks by catalog ---- */

#if PG_VERSION_NUM >= 160000
#define el_rel_ownercheck(relid, roleid) \
	object_ownercheck(RelationRelationId, (relid), (roleid))
#define el_namespace_aclcheck(nspid, roleid, mode) \
	object_aclcheck(NamespaceRelationId, (nspid), (roleid), (mode))
#else
#define el_rel_ownercheck(relid, roleid) \
	pg_class_ownercheck((relid), (roleid))
#define el_namespace_aclcheck(nspid, roleid, mode) \
	pg_namespace_aclcheck((nspid), (roleid), (mode))
#endif

/* ---- 16: inserting index entries for a row, only summarizing ones or all ---- */

#if PG_VERSION_NUM >= 160000
#define el_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define el_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif

/* ---- 16: VACUUM's cutoffs in one structure ---- */

#if PG_VERSION_NUM >= 160000
#define el_vacuum_cutoffs(rel, params, oldest_xmin, freeze_limit, multi_cutoff) \
	do { \
		struct VacuumCutoffs el_cutoffs_; \
		vacuum_get_cutoffs((rel), (params), &el_cutoffs_); \
		*(oldest_xmin) = el_cutoffs_.OldestXmin; \
		*(freeze_limit) = el_cutoffs_.FreezeLimit; \
		*(multi_cutoff) = el_cutoffs_.MultiXactCutoff; \
	} while (0)
#else
#define el_vacuum_cutoffs(rel, params, oldest_xmin, freeze_limit, multi_cutoff) \
	do { \
		MultiXactId el_oldest_mxact_; \
		vacuum_set_xid_limits((rel), (params)->freeze_min_age, (params)->freeze_table_age, \
							  (params)->multixact_freeze_min_age, \
							  (params)->multixact_freeze_table_age, \
							  (oldest_xmin), &el_oldest_mxact_, (freeze_limit), (multi_cutoff)); \
	} while (0)
#endif

/* ---- 17: whether a lock, or a stronger one, is held ---- */

#if PG_VERSION_NUM >= 170000
#define el_lock_held_by_me(tag, mode)	LockHeldByMe((tag), (mode), false)
#else
#define el_lock_held_by_me(tag, mode)	LockHeldByMe((tag), (mode))
#endif

/*
 * ---- 17: wait event sets belong to a resource owner, not a memory context ----
 *
 * From 17 a set made without an owner lives until FreeWaitEventSet, which
 * the caller does at every turn of its loop anyway.
 */
#if PG_VERSION_NUM >= 170000
#define el_create_wait_event_set(cxt, nevents)	CreateWaitEventSet(NULL, (nevents))
#else
#define el_create_wait_event_set(cxt, nevents)	CreateWaitEventSet((cxt), (nevents))
#endif

/* ---- 18: the primary key of a relation, deferrable or not ---- */

#if PG_VERSION_NUM >= 180000
#define el_primary_key_index(rel)		RelationGetPrimaryKeyIndex((rel), false)
#else
#define el_primary_key_index(rel)		RelationGetPrimaryKeyIndex(rel)
#endif

/* ---- 18: index scans take instrumentation ---- */

#if PG_VERSION_NUM >= 180000
#define el_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), NULL, (nkeys), (norderbys))
#else
#define el_index_beginscan(heap, index, snapshot, nkeys, norderbys) \
	index_beginscan((heap), (index), (snapshot), (nkeys), (norderbys))
#endif

/* ---- 18: VACUUM's delay, statistics and report ---- */

#if PG_VERSION_NUM >= 180000
#define el_vacuum_delay_point()			vacuum_delay_point(false)
#define el_vac_update_relstats(rel, pages, tuples, hasindex, frozenxid, minmulti) \
	vac_update_relstats((rel), (pages), (tuples), 0, 0, (hasindex), (frozenxid), (minmulti), \
						NULL, NULL, false)
#define el_pgstat_report_vacuum(relid, shared, live, dead, starttime) \
	pgstat_report_vacuum((relid), (shared), (live), (dead), (starttime))
#else
#define el_vacuum_delay_point()			vacuum_delay_point()
#define el_vac_update_relstats(rel, pages, tuples, hasindex, frozenxid, minmulti) \
	vac_update_relstats((rel), (pages), (tuples), 0, (hasindex), (frozenxid), (minmulti), \
						NULL, NULL, false)
#define el_pgstat_report_vacuum(relid, shared, live, dead, starttime) \
	((void) (starttime), pgstat_report_vacuum((relid), (shared), (live), (dead)))
#endif

/* ---- Table access method callbacks whose signatures differ (compat.c) ---- */

/*
 * ANALYZE: before 17 the access method is given the number of a sampled
 * block; from 17 a read stream of them.
 */
#if PG_VERSION_NUM >= 170000
extern bool el_compat_analyze_next_block(TableScanDesc scan, ReadStream *stream);
#else
extern bool el_compat_analyze_next_block(TableScanDesc scan, BlockNumber blockno,
										 BufferAccessStrategy bstrategy);
#endif

/*
 * Bitmap scans: before 18 the executor walks the bitmap and hands the access
 * method each page, then asks for its rows; from 18 the access method walks
 * the bitmap itself and has one callback.
 */
#if PG_VERSION_NUM >= 180000
extern bool el_compat_bitmap_next_tuple(TableScanDesc scan, TupleTableSlot *slot, bool *recheck,
										uint64 *lossy_pages, uint64 *exact_pages);
#define EL_TABLEAM_BITMAP_CALLBACKS \
	.scan_bitmap_next_tuple = el_compat_bitmap_next_tuple
#else
extern bool el_compat_bitmap_next_block(TableScanDesc scan, TBMIterateResult *tbmres);
extern bool el_compat_bitmap_next_tuple(TableScanDesc scan, TBMIterateResult *tbmres,
										TupleTableSlot *slot);
#define EL_TABLEAM_BITMAP_CALLBACKS \
	.scan_bitmap_next_block = el_compat_bitmap_next_block, \
	.scan_bitmap_next_tuple = el_compat_bitmap_next_tuple
#endif

#endif							/* EL_COMPAT_H */
