/*
 * log_internal.h
 *		Declarations shared by the files of the log layer only.
 */
#ifndef EL_LOG_INTERNAL_H
#define EL_LOG_INTERNAL_H

#include "log/log.h"

/* ---- Topics and their relations (el_topic.c) ---- */

extern void el_segment_relname(const char *leafname, int64 lo, char *segname);
extern Oid	el_rel_owner(Oid relid);
extern Oid	el_create_segment(Oid leaf, int64 lo, int64 hi, bool wait);
extern void el_require_arg(FunctionCallInfo fcinfo, int argno, const char *what);
extern void el_catalog_exec(const char *sql, int nargs, Oid *argtypes, Datum *args,
							const char *nulls);

/* ---- Creating segments in a transaction of their own (el_segmaker.c) ---- */

extern bool el_create_segment_apart(Oid leaf, int64 lo, int64 hi);

/* ---- Murmur2 partitioner (el_partitioner.c) ---- */

extern int32 el_murmur2(const char *data, int len);

/* ---- Segments of a partition (el_log.c) ---- */

extern void el_log_open_relation(ElLog *log, Oid relid);
extern Relation el_log_open_segment(ElLog *log, int seg, LOCKMODE lockmode);
extern bool el_segment_used(ElSegment *segment, ElMetaInfo *meta);
extern int	el_log_tail(ElLog *log, ElMetaInfo *meta);
extern int	el_log_find(ElLog *log, int64 offset);
typedef void (*ElAppendedFn) (Relation segment, int32 partition, ElNewRecord *recs,
							  ItemPointer tids, int n);
extern void el_log_append(ElLog *log, ElNewRecord *recs, int n, CommandId cid,
						  ElAppendedFn appended);

/* ---- Wakeups (el_wakeup.c) ---- */

extern void el_wakeup_note_append(Oid relid);

/* ---- Transactions producing now (el_producers.c) ---- */

extern void el_producer_note(void);

#endif							/* EL_LOG_INTERNAL_H */
