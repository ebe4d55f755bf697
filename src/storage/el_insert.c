/*
 * el_insert.c
 *		Appending records to an eventlog relation.
 *
 * The exclusive lock on the metapage is the partition's tail lock: whoever
 * holds it assigns the next offsets and writes the tail page.  Offsets are
 * therefore dense and strictly increasing in append order, and known to the
 * producer at once, as Kafka's broker acknowledges them.  After a crash the
 * next offset is recomputed from the tail page, so it is always one past the
 * highest offset stored.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/toast_compression.h"
#include "access/toast_internals.h"
#include "access/xact.h"
#include "datatype/timestamp.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "storage/storage_internal.h"

/* Largest record (key + value + headers) accepted, as Kafka's message.max.bytes. */
int			eventlog_max_record_bytes = 1024 * 1024;

/* ---- Preparing records ---- */

/* Bytes of payload (key, value, headers), uncompressed. */
Size
el_record_payload_size(ElNewRecord *rec)
{
	Size		size = 0;

	if (rec->key)
		size += toast_raw_datum_size(PointerGetDatum(rec->key)) - VARHDRSZ;
	if (rec->value)
		size += toast_raw_datum_size(PointerGetDatum(rec->value)) - VARHDRSZ;
	if (rec->headers)
		size += toast_raw_datum_size(PointerGetDatum(rec->headers)) - VARHDRSZ;
	return size;
}

/* Upper bound of a record's stored size, wherever it lands on a page. */
static Size
el_record_max_size(ElNewRecord *rec)
{
	struct varlena *atts[3] = {rec->key, rec->headers, rec->value};
	Size		size = EL_RECORD_HEADER_SIZE;
	int			i;

	for (i = 0; i < 3; i++)
		if (atts[i])
			size += VARSIZE_ANY(atts[i]) + sizeof(int32);
	return size;
}

/*
 * Makes a record storable: brings in values stored out of line elsewhere,
 * enforces eventlog.max_record_bytes, then compresses and moves to the TOAST
 * relation whatever keeps the record from fitting a page comfortably.  Done
 * before taking the tail lock, because TOAST writes go to another relation.
 */
void
el_prepare_record(Relation rel, ElNewRecord *rec)
{
	struct varlena **atts[3] = {&rec->value, &rec->headers, &rec->key};
	Size		payload;
	int			i;

	for (i = 0; i < 3; i++)
		if (*atts[i] && VARATT_IS_EXTERNAL(*atts[i]))
			*atts[i] = detoast_external_attr(*atts[i]);

	payload = el_record_payload_size(rec);
	if (payload > (Size) eventlog_max_record_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("record of %zu bytes exceeds the maximum record size of %d bytes",
						payload, eventlog_max_record_bytes),
				 errdetail("Key, value and headers together count towards the limit."),
				 errhint("Raise eventlog.max_record_bytes, or split the record.")));

	/* Compress the largest attributes first: value, headers, key. */
	for (i = 0; i < 3 && el_record_max_size(rec) > EL_INLINE_RECORD_MAX; i++)
	{
		struct varlena *att = *atts[i];
		Datum		compressed;

		if (att == NULL || VARATT_IS_EXTENDED(att) || VARSIZE(att) < 256)
			continue;
		compressed = toast_compress_datum(PointerGetDatum(att), default_toast_compression);
		if (DatumGetPointer(compressed) != NULL)
			*atts[i] = (struct varlena *) DatumGetPointer(compressed);
	}

	/* Then move them out of line. */
	for (i = 0; i < 3 && el_record_max_size(rec) > EL_INLINE_RECORD_MAX; i++)
	{
		struct varlena *att = *atts[i];

		if (att == NULL || VARATT_IS_EXTERNAL(att) || VARSIZE_ANY(att) < 256)
			continue;
		if (!OidIsValid(rel->rd_rel->reltoastrelid))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("record too large for relation \"%s\", which has no TOAST relation",
							RelationGetRelationName(rel))));
		*atts[i] = (struct varlena *)
			DatumGetPointer(toast_save_datum(rel, PointerGetDatum(att), NULL, 0));
	}

	if (el_record_max_size(rec) > EL_INLINE_RECORD_MAX)
		elog(ERROR, "eventlog record still %zu bytes after toasting",
			 el_record_max_size(rec));
}

/* ---- Writing records onto a page ---- */

/*
 * Lays one record out at page position pos, writing it to page if page is
 * not NULL.  Returns its length.  Varlenas that fit a 1-byte header get one
 * (as heap's heap_fill_tuple does); others are int-aligned.
 */
static Size
el_record_layout(ElNewRecord *rec, char *page, Size pos)
{
	struct varlena *atts[3] = {rec->key, rec->headers, rec->value};
	uint8		bits[3] = {EL_REC_HAS_KEY, EL_REC_HAS_HEADERS, EL_REC_HAS_VALUE};
	Size		start = pos;
	uint8		flags = 0;
	int			i;

	pos += EL_RECORD_HEADER_SIZE;
	for (i = 0; i < 3; i++)
	{
		struct varlena *att = atts[i];
		Size		size;

		if (att == NULL)
			continue;
		flags |= bits[i];

		if (VARATT_IS_SHORT(att) || VARATT_IS_EXTERNAL(att))
		{
			size = VARSIZE_ANY(att);
			if (page)
				memcpy(page + pos, att, size);
		}
		else if (!VARATT_IS_COMPRESSED(att) && VARATT_CAN_MAKE_SHORT(att))
		{
			size = VARATT_CONVERTED_SHORT_SIZE(att);
			if (page)
			{
				SET_VARSIZE_SHORT(page + pos, size);
				memcpy(page + pos + 1, VARDATA(att), size - 1);
			}
		}
		else
		{
			Size		aligned = INTALIGN(pos);

			if (page && aligned > pos)
				memset(page + pos, 0, aligned - pos);
			pos = aligned;
			size = VARSIZE(att);
			if (page)
				memcpy(page + pos, att, size);
		}
		pos += size;
	}

	if (page)
	{
		uint16		len = pos - start;

		memcpy(page + start, &len, sizeof(uint16));
		memcpy(page + start + sizeof(uint16), &flags, sizeof(uint8));
		memcpy(page + start + sizeof(uint16) + sizeof(uint8), &rec->ts, sizeof(int64));
	}
	return pos - start;
}

/*
 * Appends as many of recs as fit onto page as one run, assigning offsets.
 * Stops at a record that asks for an offset other than the page's next one
 * (that starts a new page).  Returns how many were appended.
 */
static int
el_fill_page(Page page, BlockNumber blkno, ElNewRecord *recs, int nrecs,
			 TransactionId xid, CommandId cid, ItemPointer tids)
{
	PageHeader	hdr = (PageHeader) page;
	ElPageOpaque opaque = ElPageGetOpaque(page);
	Size		runpos = INTALIGN(hdr->pd_lower);
	Size		pos = runpos + sizeof(ElRunHeader);
	int64		next = el_page_next_offset(page);
	int			count = 0;
	ElRunHeader run;

	while (count < nrecs && opaque->nrecords + count < EL_MAX_RECORDS_PER_PAGE)
	{
		ElNewRecord *rec = &recs[count];
		Size		len;

		if (rec->offset >= 0 && rec->offset != next)
			break;
		len = el_record_layout(rec, NULL, pos);
		if (pos + len > hdr->pd_upper)
			break;
		el_record_layout(rec, page, pos);
		rec->offset = next;
		if (rec->ts > opaque->max_ts)
			opaque->max_ts = rec->ts;
		if (tids)
			ItemPointerSet(&tids[count], blkno, opaque->nrecords + count + 1);
		pos += len;
		next++;
		count++;
	}
	if (count == 0)
		return 0;

	if (runpos > hdr->pd_lower)
		memset(page + hdr->pd_lower, 0, runpos - hdr->pd_lower);
	run.xmin = xid;
	run.cmin = cid;
	run.nrecords = count;
	run.infomask = 0;
	memcpy(page + runpos, &run, sizeof(ElRunHeader));
	hdr->pd_lower = pos;
	opaque->nrecords += count;
	return count;
}

/* ---- Tail lock and new pages ---- */

/* Returns the metapage exclusively locked, creating it on first use. */
static Buffer
el_lock_meta(Relation rel, int64 base_offset)
{
	Buffer		buffer;

	if (!el_has_meta_block(rel))
		el_create_meta(rel, -1, base_offset);

	buffer = ReadBuffer(rel, EL_META_BLOCK);
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	if (PageIsNew(BufferGetPage(buffer)))
	{
		/*
		 * The file was extended but the metapage never reached the WAL
		 * before a crash: the relation is still empty.  Format it now.
		 */
		ElWal		wal;
		Page		page;

		el_wal_start(&wal, rel);
		page = el_wal_register(&wal, buffer, true);
		el_init_meta_page(page, -1, base_offset);
		el_wal_finish(&wal);
	}
	el_check_meta(rel, BufferGetPage(buffer));
	return buffer;
}

/*
 * Returns block blkno, exclusively locked, to become the new tail.  It is
 * normally a new block; after a crash that extended the file without logging
 * it, the leftover block is taken over (it is formatted from scratch).
 */
static Buffer
el_new_page(Relation rel, BlockNumber blkno)
{
	Buffer		buffer;

	LockRelationForExtension(rel, ExclusiveLock);
	if (blkno < RelationGetNumberOfBlocks(rel))
		buffer = ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_ZERO_AND_LOCK, NULL);
	else
	{
		buffer = ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);
		LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	}
	UnlockRelationForExtension(rel, ExclusiveLock);

	if (BufferGetBlockNumber(buffer) != blkno)
		elog(ERROR, "eventlog relation \"%s\" extended to block %u, expected %u",
			 RelationGetRelationName(rel), BufferGetBlockNumber(buffer), blkno);
	return buffer;
}

/* ---- Appending ---- */

/*
 * Appends prepared records to rel in one run per page, under the tail lock,
 * as far as offsets below hi go; returns how many it appended (the first
 * ones).  Records with offset -1 get the next offsets, at least lo (the
 * first offset of a segment); a record may ask for a specific offset at or
 * above the next one (a log copied from elsewhere has gaps where the source
 * had aborted records).  Assigned offsets are written back into recs, TIDs
 * into tids (may be NULL).  A standalone relation passes 0 and PG_INT64_MAX.
 */
int
el_append(Relation rel, int32 partition, ElNewRecord *recs, int nrecs,
		  CommandId cid, ItemPointer tids, int64 lo, int64 hi)
{
	TransactionId xid;
	Buffer		metabuf;
	Buffer		tailbuf = InvalidBuffer;
	ElMetaPage	meta;
	int64		next;
	bool		set_partition = false;
	int			done = 0;
	int			i;

	if (nrecs <= 0)
		return 0;
	xid = GetCurrentTransactionId();

	metabuf = el_lock_meta(rel, lo);
	meta = ElPageGetMeta(BufferGetPage(metabuf));

	if (meta->partition == -1)
		set_partition = true;
	else if (meta->partition != partition)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("relation \"%s\" holds partition %d, not partition %d",
						RelationGetRelationName(rel), meta->partition, partition),
				 errdetail("An eventlog relation stores the records of one partition.")));

	next = meta->base_offset;
	if (meta->last_block >= EL_FIRST_DATA_BLOCK)
	{
		tailbuf = ReadBuffer(rel, meta->last_block);
		LockBuffer(tailbuf, BUFFER_LOCK_EXCLUSIVE);
		if (el_page_is_data(BufferGetPage(tailbuf)))
			next = el_page_next_offset(BufferGetPage(tailbuf));
	}

	/*
	 * Below the floor set after a restore the next records skip ahead to it:
	 * those offsets were handed out before.  Every record gets its offset
	 * here; requested ones may skip ahead, never go back.
	 */
	next = Max(next, Max(lo, meta->floor_offset));
	for (i = 0; i < nrecs; i++)
	{
		bool		assigned = recs[i].offset < 0;

		if (assigned)
			recs[i].offset = next;
		else if (recs[i].offset < next)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("offset " INT64_FORMAT " is below the next offset " INT64_FORMAT " of relation \"%s\"",
							recs[i].offset, next, RelationGetRelationName(rel)),
					 errdetail("Offsets of a partition only increase."),
					 errhint("Leave \"offset\" NULL to have the next offset assigned.")));
		if (recs[i].offset >= hi)
		{
			/* the rest belongs to the next segment, which assigns its own */
			if (assigned)
				recs[i].offset = -1;
			break;
		}
		next = recs[i].offset + 1;
	}
	nrecs = i;
	if (nrecs == 0)
	{
		if (BufferIsValid(tailbuf))
			UnlockReleaseBuffer(tailbuf);
		UnlockReleaseBuffer(metabuf);
		return 0;
	}

	/*
	 * A page that leaves records for a later page is sealed in the WAL
	 * record that fills it, and the next page is written whole (a full
	 * image, no delta to compute) in the same record: a page filled by one
	 * call is logged once, not compared again only to be sealed.  A sealed
	 * page takes no more records, so a page sealed before its successor
	 * exists (an error or crash between two records) is simply passed over.
	 */
	while (done < nrecs)
	{
		ElWal		wal;
		Page		metapage = NULL;
		Page		tailpage = NULL;

		el_wal_start(&wal, rel);
		if (set_partition)
		{
			metapage = el_wal_register(&wal, metabuf, false);
			ElPageGetMeta(metapage)->partition = partition;
			set_partition = false;
		}
		if (BufferIsValid(tailbuf) && el_page_is_data(BufferGetPage(tailbuf)) &&
			!el_page_sealed(BufferGetPage(tailbuf)))
		{
			tailpage = el_wal_register(&wal, tailbuf, false);
			done += el_fill_page(tailpage, BufferGetBlockNumber(tailbuf), recs + done,
								 nrecs - done, xid, cid, tids ? tids + done : NULL);
			if (done < nrecs)
				ElPageGetOpaque(tailpage)->flags |= EL_PAGE_SEALED;
		}

		if (done < nrecs)
		{
			/* Start a new tail page and point the metapage at it. */
			BlockNumber newblk = Max(meta->last_block + 1, EL_FIRST_DATA_BLOCK);
			Page		oldpage = tailpage;
			Buffer		newbuf;
			Page		newpage;
			int64		first;
			int			n;

			if (oldpage == NULL && BufferIsValid(tailbuf) &&
				el_page_is_data(BufferGetPage(tailbuf)))
				oldpage = BufferGetPage(tailbuf);
			newbuf = el_new_page(rel, newblk);
			newpage = el_wal_register(&wal, newbuf, true);
			if (recs[done].offset >= 0)
				first = recs[done].offset;
			else if (oldpage)
				first = el_page_next_offset(oldpage);
			else
				first = meta->base_offset;

			el_init_data_page(newpage, first,
							  oldpage ? ElPageGetOpaque(oldpage)->max_ts : DT_NOBEGIN);
			n = el_fill_page(newpage, newblk, recs + done, nrecs - done, xid, cid,
							 tids ? tids + done : NULL);
			if (n == 0)
				elog(ERROR, "eventlog record does not fit an empty page");
			done += n;
			if (done < nrecs)
				ElPageGetOpaque(newpage)->flags |= EL_PAGE_SEALED;
			if (metapage == NULL)
				metapage = el_wal_register(&wal, metabuf, false);
			ElPageGetMeta(metapage)->last_block = newblk;
			el_wal_finish(&wal);

			if (BufferIsValid(tailbuf))
				UnlockReleaseBuffer(tailbuf);
			tailbuf = newbuf;
		}
		else
			el_wal_finish(&wal);
	}

	UnlockReleaseBuffer(tailbuf);
	UnlockReleaseBuffer(metabuf);
	return nrecs;
}

/* ---- Rewinding an aborted tail ---- */

/*
 * Cuts the log back to to_offset when every record from there on belongs to
 * an aborted transaction: those records can never be read, and a mirror
 * must be able to append the source's records at the very same offsets after
 * its own transaction failed halfway.  Pages past the cut are taken over by
 * later appends.  Refuses if any record from to_offset on committed or may
 * still commit.  A floor above to_offset goes too: the failed pass raised
 * it (a metapage change, which no abort undoes) past offsets it never
 * committed.
 */
void
el_rewind_aborted_tail(Relation rel, int64 to_offset)
{
	Buffer		metabuf = el_lock_meta(rel, 0);
	ElMetaPage	meta = ElPageGetMeta(BufferGetPage(metabuf));
	ElMetaInfo	info;
	BlockNumber blk;
	BlockNumber cut = InvalidBlockNumber;
	int			cut_index = 0;
	ElPageView *view = palloc(sizeof(ElPageView));

	if (meta->floor_offset > to_offset)
	{
		ElWal		wal;

		el_wal_start(&wal, rel);
		ElPageGetMeta(el_wal_register(&wal, metabuf, false))->floor_offset = to_offset;
		el_wal_finish(&wal);
	}

	if (meta->last_block < EL_FIRST_DATA_BLOCK)
	{
		UnlockReleaseBuffer(metabuf);
		return;
	}
	memset(&info, 0, sizeof(info));
	info.last_block = meta->last_block;
	info.tail_first_offset = -1;
	blk = el_seek_block(rel, &info, to_offset);

	/* Everything from to_offset on must be aborted (the tail lock is ours). */
	for (; blk != InvalidBlockNumber && blk <= meta->last_block; blk++)
	{
		int			i;

		if (!el_view_load(rel, blk, NULL, view, NULL))
			continue;
		for (i = 0; i < view->nrecords; i++)
		{
			if (view->first_offset + i < to_offset)
				continue;
			if (cut == InvalidBlockNumber)
			{
				cut = blk;
				cut_index = i;
			}
			if (view->verdict[i] != EL_INVISIBLE)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("cannot rewind relation \"%s\" to offset " INT64_FORMAT,
								RelationGetRelationName(rel), to_offset),
						 errdetail("Offset " INT64_FORMAT " holds a record that committed or may still commit.",
								   view->first_offset + i)));
		}
	}

	if (cut != InvalidBlockNumber)
	{
		Buffer		buffer = ReadBuffer(rel, cut);
		ElWal		wal;
		Page		page;
		Page		metapage;
		ElPageOpaque opaque;
		PageHeader	hdr;

		/* Positions first (a share lock): with the tail lock, the page holds still. */
		el_view_load(rel, cut, SnapshotAny, view, NULL);
		LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
		el_wal_start(&wal, rel);
		metapage = el_wal_register(&wal, metabuf, false);
		page = el_wal_register(&wal, buffer, false);
		opaque = ElPageGetOpaque(page);
		hdr = (PageHeader) page;

		if (cut_index == 0 || view->runpos[cut_index] != view->runpos[cut_index - 1])
		{
			/* the cut falls on a run boundary: drop the run header too */
			hdr->pd_lower = view->runpos[cut_index];
		}
		else
		{
			int			first = cut_index;
			ElRunHeader *run = (ElRunHeader *) (page + view->runpos[cut_index]);

			while (first > 0 && view->runpos[first - 1] == view->runpos[cut_index])
				first--;
			run->nrecords = cut_index - first;
			hdr->pd_lower = view->recpos[cut_index];
		}
		opaque->nrecords = cut_index;
		opaque->flags &= ~(EL_PAGE_SEALED | EL_PAGE_FROZEN);
		ElPageGetMeta(metapage)->last_block = cut;
		if (ElPageGetMeta(metapage)->settled_block > cut)
			ElPageGetMeta(metapage)->settled_block = cut;
		if (ElPageGetMeta(metapage)->frozen_block > cut)
			ElPageGetMeta(metapage)->frozen_block = cut;
		el_wal_finish(&wal);
		UnlockReleaseBuffer(buffer);
	}
	pfree(view);
	UnlockReleaseBuffer(metabuf);
}
