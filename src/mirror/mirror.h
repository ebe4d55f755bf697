/*
 * mirror.h
 *		What the rest of eventlog may use of mirrors: the worker's pass over
 *		this database's mirrors.  Mirrors call down into groups, the log
 *		layer and util.
 */
#ifndef EL_MIRROR_H
#define EL_MIRROR_H

#include "postgres.h"

extern bool el_mirror_pass(void);

#endif							/* EL_MIRROR_H */
