/*
 * groups.h
 *		What the rest of eventlog may use of consumer groups: a group's
 *		committed offsets and its members, for mirrors, the Kafka listener
 *		and the worker.  consume() and commit() themselves are SQL functions.
 *
 * Groups call down into the log layer only.
 */
#ifndef EL_GROUPS_H
#define EL_GROUPS_H

#include "postgres.h"

#include "log/log.h"

/* ---- Settings (registered in el_guc.c) ---- */

extern int	eventlog_session_timeout;

/* ---- Groups (el_group.c); these run SPI queries: the caller has SPI connected ---- */

extern void el_group_ensure(const char *grp);
extern void el_group_require_access(const char *grp);
extern int64 el_group_live_members(const char *grp);
extern void el_group_expire_pass(void);

/* ---- Committed offsets (el_group.c) ---- */

extern bool el_offset_get(const char *grp, const char *topic, int32 partition, int64 *offset);
extern void el_offset_lock(const char *grp, const char *topic, int32 partition, int64 initial,
						   int64 *offset, int64 *seq);
extern void el_offset_set(const char *grp, const char *topic, int32 partition, int64 offset,
						  int64 prev_seq);
extern void el_offset_reset(const char *grp, const char *topic, int32 partition, int64 offset);

/* ---- Locks (el_grouplock.c) ---- */

extern void el_group_lock_offsets(const char *grp);

#endif							/* EL_GROUPS_H */
