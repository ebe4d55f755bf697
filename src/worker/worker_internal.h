/*
 * worker_internal.h
 *		Declarations shared by the files of the worker only.
 */
#ifndef EL_WORKER_INTERNAL_H
#define EL_WORKER_INTERNAL_H

#include "datatype/timestamp.h"

#include "worker/worker.h"

/* ---- The per-database worker (el_worker.c) ---- */

extern void el_worker_wake(void);
extern void el_worker_want_segments(void);

/* ---- Notifications (el_notify.c) ---- */

extern bool el_notify_pass(bool recheck);
extern void el_notify_forget(void);

/* ---- Ending producing transactions left open (el_txtimeout.c) ---- */

extern void el_txtimeout_pass(Oid dboid, TimestampTz now);

/* ---- Listening sessions (el_listen.c) ---- */

extern bool el_listeners_present(Oid dboid);

#endif							/* EL_WORKER_INTERNAL_H */
