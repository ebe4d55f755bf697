/*
 * capture.h
 *		Change capture: a trigger that turns every row change of a table into
 *		a Debezium-style event, produced in the writer's transaction.
 *
 * The rest of eventlog calls nothing here: capture is reached through its
 * SQL functions and its trigger only, and calls down into the log layer.
 */
#ifndef EL_CAPTURE_H
#define EL_CAPTURE_H

#include "log/log.h"

#endif							/* EL_CAPTURE_H */
