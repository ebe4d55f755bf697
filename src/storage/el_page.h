/*
 * el_page.h
 *		On-disk format of an eventlog relation (one topic partition).
 *
 * Block 0 is the metapage.  Every other block is a data page holding records
 * in offset order.  A data page is a standard PostgreSQL page (so generic WAL,
 * checksums and pg_filedump-style tools understand its header) whose content
 * area, from the end of the page header up to pd_lower, is a sequence of
 * "runs":
 *
 *		[run header][record][record]...[run header][record]...
 *
 * A run is the records appended by one insert call onto one page: they share
 * a transaction id and command id, so transaction bookkeeping costs 12 bytes
 * per run instead of heap's 23-byte header and 4-byte line pointer per tuple.
 * Offsets are not stored per record: the i-th record of a page has offset
 * first_offset + i.  The special space holds first_offset and the record
 * count, so a page knows its first and last offset and seeking to an offset
 * is a binary search over blocks.  It also holds the largest timestamp of the
 * page and all earlier ones (Kafka's time index keeps the same running
 * maximum), so seeking to a time is a binary search too.
 */
#ifndef EL_PAGE_H
#define EL_PAGE_H

#include "access/htup_details.h"
#include "storage/block.h"
#include "storage/bufpage.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"

#define EL_MAGIC			0x45564C47	/* "EVLG" */
#define EL_FORMAT_VERSION	1

#define EL_META_BLOCK		0
#define EL_FIRST_DATA_BLOCK 1

/* page_id in the special space, so that tools can tell our pages apart */
#define EL_META_PAGE_ID		0xEE01
#define EL_DATA_PAGE_ID		0xEE02

/*
 * Records per page are capped so that TIDs stay within what bitmap scans and
 * index AMs accept.
 */
#define EL_MAX_RECORDS_PER_PAGE MaxHeapTuplesPerPage

/* Special space of every page. */
typedef struct ElPageOpaqueData
{
	int64		first_offset;	/* offset of the first record on the page */
	int64		max_ts;			/* largest timestamp of this and earlier pages */
	uint16		nrecords;		/* records stored on the page */
	uint16		flags;			/* EL_PAGE_* */
	uint16		unused;
	uint16		page_id;		/* EL_META_PAGE_ID or EL_DATA_PAGE_ID */
} ElPageOpaqueData;

typedef ElPageOpaqueData *ElPageOpaque;

/* Page flags */
#define EL_PAGE_SEALED		0x0001	/* no more appends: records go on in a later page */
#define EL_PAGE_FROZEN		0x0002	/* sealed and every run frozen */

#define ElPageGetOpaque(page) ((ElPageOpaque) PageGetSpecialPointer(page))
#define el_page_sealed(page) ((ElPageGetOpaque(page)->flags & EL_PAGE_SEALED) != 0)

/* Metapage contents, stored right after the page header of block 0. */
typedef struct ElMetaPageData
{
	uint32		magic;
	uint32		version;
	int32		partition;		/* partition number of every record, -1 unset */
	BlockNumber last_block;		/* tail data page, or 0 when there is none */
	BlockNumber frozen_block;	/* data pages below this one are all frozen */
	BlockNumber settled_block;	/* hint: pages below hold no open transaction */
	int64		base_offset;	/* offset of the first record of this storage */
	int64		floor_offset;	/* next offset is at least this (restored logs) */
} ElMetaPageData;

typedef ElMetaPageData *ElMetaPage;

#define ElPageGetMeta(page) ((ElMetaPage) PageGetContents(page))

/*
 * Run header, int-aligned within the page.  The infomask carries hint bits
 * (set without WAL, like heap's) and the frozen state (set by VACUUM, WAL
 * logged).
 */
typedef struct ElRunHeader
{
	TransactionId xmin;			/* inserting (sub)transaction */
	CommandId	cmin;			/* inserting command */
	uint16		nrecords;		/* records of this run that follow */
	uint16		infomask;		/* EL_RUN_* */
} ElRunHeader;

#define EL_RUN_COMMITTED	0x0001	/* hint: xmin committed */
#define EL_RUN_ABORTED		0x0002	/* hint: xmin aborted or crashed */
#define EL_RUN_FROZEN		0x0004	/* final verdict, WAL-logged by VACUUM */

/*
 * Record header: 11 bytes, stored unaligned (read with memcpy).  The varlena
 * attributes key, headers, value follow in that order, each present only if
 * its flag is set.  Short varlenas are stored with 1-byte headers and no
 * alignment; 4-byte-header varlenas are int-aligned relative to the page,
 * with zero padding, exactly as heap tuples align them.
 */
#define EL_RECORD_HEADER_SIZE	(sizeof(uint16) + sizeof(uint8) + sizeof(int64))

#define EL_REC_HAS_KEY		0x01
#define EL_REC_HAS_HEADERS	0x02
#define EL_REC_HAS_VALUE	0x04

/* Usable bytes of a data page. */
#define EL_PAGE_CAPACITY \
	(BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(ElPageOpaqueData)))

/*
 * Records larger than this are compressed and, if still too large, their
 * attributes moved to the TOAST relation, as heap does past
 * TOAST_TUPLE_THRESHOLD.
 */
#define EL_INLINE_RECORD_MAX	2032

/* Page initialisation and checks (el_page.c) */
extern void el_init_meta_page(Page page, int32 partition, int64 base_offset);
extern void el_init_data_page(Page page, int64 first_offset, TimestampTz max_ts);
extern bool el_page_is_data(Page page);
extern void el_check_meta(Relation rel, Page page);
extern int64 el_page_next_offset(Page page);

#endif							/* EL_PAGE_H */
