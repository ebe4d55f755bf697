/*
 * kafka.h
 *		What the rest of eventlog may use of the Kafka listener: starting it
 *		and its settings.  Nothing calls into the listener; it calls down
 *		into groups, the log layer and util only.
 */
#ifndef EL_KAFKA_PUBLIC_H
#define EL_KAFKA_PUBLIC_H

#include "postgres.h"

/* ---- Settings (registered in el_guc.c) ---- */

extern int	eventlog_kafka_port;
extern char *eventlog_kafka_listen_addresses;
extern char *eventlog_kafka_database;
extern char *eventlog_kafka_role;
extern char *eventlog_kafka_advertised_host;
extern int	eventlog_kafka_advertised_port;
extern int	eventlog_kafka_max_request_bytes;

/* ---- The listener (el_kafka_worker.c) ---- */

extern void ElKafkaInit(void);

#endif							/* EL_KAFKA_PUBLIC_H */
