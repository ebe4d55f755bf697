/*
 * el_guc.h
 *		Registering eventlog's settings (el_guc.c), called by _PG_init.
 */
#ifndef EL_GUC_H
#define EL_GUC_H

extern void ElGucInit(void);

#endif							/* EL_GUC_H */
