/*
 * el_page.c
 *		Initialisation and checks of eventlog pages.
 */
#include "postgres.h"

#include "utils/rel.h"

#include "storage/el_page.h"

/* Formats block 0: magic, format version and where the log starts. */
void
el_init_meta_page(Page page, int32 partition, int64 base_offset)
{
	ElMetaPage	meta;
	ElPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(ElPageOpaqueData));
	meta = ElPageGetMeta(page);
	memset(meta, 0, sizeof(ElMetaPageData));
	meta->magic = EL_MAGIC;
	meta->version = EL_FORMAT_VERSION;
	meta->partition = partition;
	meta->last_block = 0;
	meta->frozen_block = EL_FIRST_DATA_BLOCK;
	meta->settled_block = EL_FIRST_DATA_BLOCK;
	meta->base_offset = base_offset;
	((PageHeader) page)->pd_lower = ((char *) meta + sizeof(ElMetaPageData)) - (char *) page;

	opaque = ElPageGetOpaque(page);
	opaque->page_id = EL_META_PAGE_ID;
}

/*
 * Formats an empty data page whose first record will have first_offset;
 * max_ts carries the running maximum timestamp over from the previous page.
 */
void
el_init_data_page(Page page, int64 first_offset, TimestampTz max_ts)
{
	ElPageOpaque opaque;

	PageInit(page, BLCKSZ, sizeof(ElPageOpaqueData));
	opaque = ElPageGetOpaque(page);
	opaque->first_offset = first_offset;
	opaque->max_ts = max_ts;
	opaque->nrecords = 0;
	opaque->flags = 0;
	opaque->page_id = EL_DATA_PAGE_ID;
}

/* True for an initialised data page (false for new pages and the metapage). */
bool
el_page_is_data(Page page)
{
	if (PageIsNew(page))
		return false;
	if (((PageHeader) page)->pd_special != BLCKSZ - MAXALIGN(sizeof(ElPageOpaqueData)))
		return false;
	return ElPageGetOpaque(page)->page_id == EL_DATA_PAGE_ID;
}

/* Complains about a metapage that is not ours or of a format we do not know. */
void
el_check_meta(Relation rel, Page page)
{
	ElMetaPage	meta = ElPageGetMeta(page);

	if (PageIsNew(page) || meta->magic != EL_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("relation \"%s\" has no valid eventlog metapage",
						RelationGetRelationName(rel))));
	if (meta->version != EL_FORMAT_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("relation \"%s\" has eventlog format version %u, this build reads version %d",
						RelationGetRelationName(rel), meta->version, EL_FORMAT_VERSION),
				 errhint("Install the eventlog version that wrote it, or upgrade the extension.")));
}

/* Offset the next record appended to this data page would get. */
int64
el_page_next_offset(Page page)
{
	ElPageOpaque opaque = ElPageGetOpaque(page);

	return opaque->first_offset + opaque->nrecords;
}
