/*
 * el_group.h
 *		Declarations shared by the files of the groups layer only.
 */
#ifndef EL_GROUP_H
#define EL_GROUP_H

#include "groups/groups.h"

/* All of these run SPI queries: the caller has SPI connected. */
extern void el_check_group_name(const char *grp);
extern int64 el_group_require(const char *grp, Oid *owner);
extern void el_group_check_owner(const char *grp, Oid owner);
extern int64 el_group_ensure_access(const char *grp);
extern void el_group_require_empty(const char *grp, const char *action);
extern void el_group_delete(const char *grp);
extern void el_group_set_timeout(const char *grp, Datum interval, bool isnull);
extern int	el_group_join(const char *grp, const char *member, ElTopic *topic, int32 **partitions);
extern bool el_group_leave(const char *grp, const char *member);
extern void el_group_check_ownership(const char *grp, const char *member, ElTopic *topic,
									 int32 partition);
extern int	el_group_member_partitions(const char *grp, const char *member, ElTopic *topic,
									   int32 **partitions);

extern void el_offsets_get(const char *grp, const char *topic, const int32 *parts, int n,
						   int64 *offsets, bool *found, int64 *seqs);
extern void el_offsets_lock(const char *grp, const char *topic, const int32 *parts, int n,
							const int64 *initial, bool *locked, int64 *offsets, int64 *seqs);
extern void el_offsets_set(const char *grp, const char *topic, const int32 *parts, int n,
						   const int64 *offsets, const int64 *prev_seqs);

/* el_assign.c: an even share of the partitions for each member */
extern void el_assign_partitions(int npartitions, int nmembers, int *owners);

/* el_round.c: one round of reading for consume() */
extern int	el_consume_round(ElRowOut *out, const char *grp, const char *member, ElTopic *topic,
							 const int32 *parts, int nparts, bool commit, int max_records);

/* el_offsetrows.c: the rows of eventlog.group_offset, without SPI */
typedef enum ElRowLock
{
	EL_ROW_READ,				/* read only */
	EL_ROW_LOCK_SKIP,			/* FOR UPDATE SKIP LOCKED */
	EL_ROW_LOCK_WAIT			/* FOR UPDATE */
} ElRowLock;

typedef enum ElRowResult
{
	EL_ROW_NONE,				/* no row */
	EL_ROW_FOUND,				/* read, or locked */
	EL_ROW_HELD,				/* another transaction holds it (skipped) */
	EL_ROW_GONE					/* replaced since the snapshot: look again */
} ElRowResult;

typedef struct ElOffsetRows
{
	Relation	rel;
	Relation	index;			/* the primary key */
	struct ResultRelInfo *indstate; /* every index, for inserts */
	struct TupleTableSlot *slot;
	Snapshot	snapshot;
	LOCKMODE	lockmode;
} ElOffsetRows;

extern Oid	el_catalog_relid(const char *name);
extern void el_offsetrows_open(ElOffsetRows *rows, bool write);
extern void el_offsetrows_refresh(ElOffsetRows *rows);
extern void el_offsetrows_close(ElOffsetRows *rows);
extern ElRowResult el_offsetrows_current(ElOffsetRows *rows, const char *grp, const char *topic,
										 int32 partition, int64 from_seq, ItemPointer tid,
										 ElRowLock lock, int64 *offset, int64 *seq);
extern int64 el_offsetrows_next_seq(void);
extern void el_offsetrows_insert(ElOffsetRows *rows, const char *grp, const char *topic,
								 int32 partition, int64 seq, int64 offset, ItemPointer tid);
extern bool el_offsetrows_delete(ElOffsetRows *rows, const char *grp, const char *topic,
								 int32 partition, int64 seq, ItemPointer tid);

/* el_grouprows.c: the group's row and a member's partitions, without SPI */
extern bool el_grouprows_group(const char *grp, Oid *owner, int64 *generation,
							   double *timeout_secs);
extern int	el_grouprows_member_partitions(const char *grp, const char *topic, const char *member,
										   int npartitions, int32 **partitions);

/* el_grouplock.c */
extern void el_group_lock_delete(const char *grp);
extern void el_group_check_offsets_locked(const char *grp);

/* el_joincache.c */
extern bool el_joincache_lookup(const char *grp, const char *member, ElTopic *topic,
								int64 generation, double max_age_secs, int32 **partitions,
								int *nparts);
extern void el_joincache_remember(const char *grp, const char *member, ElTopic *topic,
								  int64 generation, const int32 *partitions, int nparts);
extern void el_joincache_forget(void);

/* el_seqhint.c */
extern void el_seqhint_get(const char *grp, const char *topic, const int32 *parts, int n,
						   int64 *from, ItemPointerData *tids);
extern void el_seqhint_put(const char *grp, const char *topic, const int32 *parts, int n,
						   const bool *found, const int64 *seqs, const ItemPointerData *tids);

#endif							/* EL_GROUP_H */
