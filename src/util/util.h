/*
 * util.h
 *		What every part of eventlog may use: running a step in a
 *		subtransaction, shared memory of the preloaded library, describing a
 *		background worker.  Nothing here knows of topics, groups or workers.
 */
#ifndef EL_UTIL_H
#define EL_UTIL_H

#include "postgres.h"

/* ---- Subtransactions (el_subxact.c) ---- */

extern ErrorData *el_try(void (*fn) (void *arg), void *arg);

/* ---- Shared memory of the preloaded library (el_shmem.c) ---- */

typedef void (*ElShmemInitFunc) (void *area);
extern void el_shmem_register(const char *name, Size size, ElShmemInitFunc init, void **ptr);
extern void el_shmem_register_sized(const char *name, Size (*sizefn) (void),
									ElShmemInitFunc init, void **ptr);
extern bool el_shmem_attached(void);

/* ---- Background workers of this library (el_bgworker.c) ---- */

struct BackgroundWorker;
extern void el_describe_worker(struct BackgroundWorker *worker, const char *function,
							   const char *type, int restart_time);

#endif							/* EL_UTIL_H */
