/*
 * el_storage.c
 *		Metapage access and the row shape.
 */
#include "postgres.h"

#include "access/xloginsert.h"
#include "catalog/pg_type.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/smgr.h"
#include "utils/memutils.h"

#include "compat/compat.h"
#include "storage/storage_internal.h"

/* ---- Metapage ---- */

/* First offset stored on a data page. */
int64
el_block_first_offset(Relation rel, BlockNumber blkno)
{
	Buffer		buffer;
	Page		page;
	int64		first = -1;

	buffer = ReadBuffer(rel, blkno);
	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buffer);
	if (el_page_is_data(page))
		first = ElPageGetOpaque(page)->first_offset;
	UnlockReleaseBuffer(buffer);
	return first;
}

/*
 * Whether the relation's file has its first block (the metapage's place).
 * Once it has, the relation cache entry remembers: rd_amcache is dropped
 * with the entry, as at TRUNCATE, and a file never loses its first block
 * otherwise.  That saves a file-size call per read and per append.
 */
bool
el_has_meta_block(Relation rel)
{
	if (rel->rd_amcache != NULL)
		return true;
	if (RelationGetNumberOfBlocks(rel) == 0)
		return false;
	rel->rd_amcache = MemoryContextAllocZero(CacheMemoryContext, sizeof(bool));
	return true;
}

/*
 * Reads what the metapage and the tail page say: partition, the earliest
 * offset stored and the high watermark (the next offset to assign).
 */
void
el_read_meta(Relation rel, ElMetaInfo *info)
{
	Buffer		buffer;
	Page		page;
	ElMetaPage	meta;

	memset(info, 0, sizeof(ElMetaInfo));
	info->partition = -1;
	info->tail_first_offset = -1;
	if (!el_has_meta_block(rel))
		return;

	buffer = ReadBuffer(rel, EL_META_BLOCK);
	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buffer);
	if (PageIsNew(page))
	{
		/* extended but never written before a crash: still empty */
		UnlockReleaseBuffer(buffer);
		return;
	}
	el_check_meta(rel, page);
	meta = ElPageGetMeta(page);
	info->exists = true;
	info->partition = meta->partition;
	info->last_block = meta->last_block;
	info->frozen_block = meta->frozen_block;
	info->settled_block = Max(meta->settled_block, meta->frozen_block);
	info->base_offset = meta->base_offset;
	info->floor_offset = meta->floor_offset;
	UnlockReleaseBuffer(buffer);

	info->earliest_offset = info->next_offset = info->base_offset;
	if (info->last_block >= EL_FIRST_DATA_BLOCK)
	{
		int64		first = el_block_first_offset(rel, EL_FIRST_DATA_BLOCK);

		if (first >= 0)
			info->earliest_offset = first;

		buffer = ReadBuffer(rel, info->last_block);
		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buffer);
		if (el_page_is_data(page))
		{
			info->tail_first_offset = ElPageGetOpaque(page)->first_offset;
			info->next_offset = el_page_next_offset(page);
		}
		UnlockReleaseBuffer(buffer);
	}
	if (info->floor_offset > info->next_offset)
	{
		/* Offsets handed out before a dump and restore are not handed out again. */
		if (info->earliest_offset == info->next_offset)
			info->earliest_offset = info->floor_offset;
		info->next_offset = info->floor_offset;
	}
}

/*
 * Raises the next offset of a relation to at least floor: after a restore
 * from a dump, which carries committed records but not the offsets of
 * aborted ones at the end of a partition, offsets that consumers may already
 * have passed are not handed out again.  WAL-logged.
 */
void
el_set_floor(Relation rel, int64 floor)
{
	Buffer		buffer;
	ElWal		wal;
	Page		page;

	if (RelationGetNumberOfBlocks(rel) == 0)
		el_create_meta(rel, -1, 0);
	buffer = ReadBuffer(rel, EL_META_BLOCK);
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	el_check_meta(rel, BufferGetPage(buffer));
	if (ElPageGetMeta(BufferGetPage(buffer))->floor_offset < floor)
	{
		el_wal_start(&wal, rel);
		page = el_wal_register(&wal, buffer, false);
		ElPageGetMeta(page)->floor_offset = floor;
		el_wal_finish(&wal);
	}
	UnlockReleaseBuffer(buffer);
}

/*
 * Records, as a hint (not WAL-logged, like heap's hint bits), that data
 * pages below settled_block hold no transaction still running: every run
 * there committed or aborted, and appends only go to later pages.  The last
 * stable offset is then found by reading from there, not from the start.
 * A lost hint only means more reading; a stale one can never be too high,
 * because a page once settled stays settled.  Past the last block means
 * every page: only for a full segment, which gets no more records.
 */
void
el_note_settled(Relation rel, BlockNumber settled_block)
{
	Buffer		buffer;
	ElMetaPage	meta;

	buffer = ReadBuffer(rel, EL_META_BLOCK);
	/* Producers hold the metapage while appending: never wait for them. */
	if (!ConditionalLockBuffer(buffer))
	{
		ReleaseBuffer(buffer);
		return;
	}
	meta = ElPageGetMeta(BufferGetPage(buffer));
	if (meta->magic == EL_MAGIC && meta->settled_block < settled_block &&
		settled_block <= meta->last_block + 1)
	{
		meta->settled_block = settled_block;
		MarkBufferDirtyHint(buffer, true);
	}
	UnlockReleaseBuffer(buffer);
}

/*
 * Notes that every page of rel is settled, as read in meta: for a full
 * segment with no transaction running, which gets no more records, so that
 * the next look at it reads its metapage only.
 */
void
el_note_all_settled(Relation rel, ElMetaInfo *meta)
{
	if (meta->last_block >= EL_FIRST_DATA_BLOCK && meta->settled_block <= meta->last_block)
		el_note_settled(rel, meta->last_block + 1);
}

/*
 * Creates the metapage of an empty relation (a no-op if another backend just
 * did).  base_offset is where the log starts.
 */
void
el_create_meta(Relation rel, int32 partition, int64 base_offset)
{
	LockRelationForExtension(rel, ExclusiveLock);
	if (RelationGetNumberOfBlocks(rel) == 0)
	{
		ElWal		wal;
		Page		page;
		Buffer		buffer;

		buffer = ReadBufferExtended(rel, MAIN_FORKNUM, P_NEW, RBM_NORMAL, NULL);

		/*
		 * Never wait for a buffer while holding the extension lock: an
		 * appender holds the metapage and then waits for that lock.  A
		 * block that is not block 0, or that is held, means another backend
		 * made the metapage; a stray zero block is taken over later.
		 */
		if (BufferGetBlockNumber(buffer) != EL_META_BLOCK || !ConditionalLockBuffer(buffer))
		{
			ReleaseBuffer(buffer);
			UnlockRelationForExtension(rel, ExclusiveLock);
			return;
		}
		el_wal_start(&wal, rel);
		page = el_wal_register(&wal, buffer, true);
		el_init_meta_page(page, partition, base_offset);
		el_wal_finish(&wal);
		UnlockReleaseBuffer(buffer);
	}
	UnlockRelationForExtension(rel, ExclusiveLock);
}

/*
 * Writes the metapage of a new storage file directly (no buffers exist for
 * it yet).  TRUNCATE uses this to carry the next offset over, so that
 * offsets are never reused, as Kafka's log start offset only moves forward.
 */
void
el_write_initial_meta(SMgrRelation srel, bool needs_wal, int32 partition, int64 base_offset)
{
	PGAlignedBlock buf;
	Page		page = (Page) buf.data;

	el_init_meta_page(page, partition, base_offset);
	if (needs_wal)
		log_newpage(&EL_SMGR_LOCATOR(srel), MAIN_FORKNUM, EL_META_BLOCK, page, true);
	PageSetChecksumInplace(page, EL_META_BLOCK);
	smgrextend(srel, MAIN_FORKNUM, EL_META_BLOCK, buf.data, true);
	/* The page bypassed shared buffers: a checkpoint would not write it. */
	smgrimmedsync(srel, MAIN_FORKNUM);
}

/* ---- Row shape ---- */

/*
 * Every eventlog relation has the row shape of a topic: the access method
 * stores these six columns and nothing else.
 */
void
el_check_tupdesc(Relation rel)
{
	static const Oid types[EL_NATTS] = {INT4OID, INT8OID, TEXTOID, BYTEAOID, JSONBOID, TIMESTAMPTZOID};
	TupleDesc	desc = RelationGetDescr(rel);
	int			i;
	bool		ok = desc->natts == EL_NATTS;

	for (i = 0; ok && i < EL_NATTS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != types[i])
			ok = false;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("relation \"%s\" does not have the columns of an eventlog relation",
						RelationGetRelationName(rel)),
				 errdetail("An eventlog relation has exactly the columns (partition integer, \"offset\" bigint, key text, value bytea, headers jsonb, ts timestamptz)."),
				 errhint("Create topics with eventlog.create_topic().")));
}
