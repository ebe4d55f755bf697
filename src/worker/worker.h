/*
 * worker.h
 *		What the rest of eventlog may use of its background workers: starting
 *		them and their settings.
 *
 * The launcher starts one worker per database using eventlog; it announces
 * committed records (LISTEN/NOTIFY), expires silent group members, enforces
 * retention, creates segments ahead and runs mirrors, calling down into
 * each of those layers.  The layers below reach it only through the hooks
 * of the log layer, which ElWorkerInit sets.
 */
#ifndef EL_WORKER_H
#define EL_WORKER_H

#include "postgres.h"

/* ---- Settings (registered in el_guc.c) ---- */

extern int	eventlog_notify_interval;
extern int	eventlog_launcher_naptime;
extern int	eventlog_transaction_timeout;

/* ---- Setup ---- */

extern void ElWorkerInit(void);
extern void ElListenInit(void);

#endif							/* EL_WORKER_H */
