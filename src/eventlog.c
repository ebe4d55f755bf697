/*
 * eventlog.c
 *		Apache Kafka's event log inside PostgreSQL: module entry point.
 */
#include "postgres.h"

#include "fmgr.h"

#include "eventlog.h"
#include "el_kafka.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Each part of eventlog sets itself up. */
void
_PG_init(void)
{
	ElGucInit();
	ElTopicCacheInit();
	ElOffsetScanInit();
	ElWakeupInit();
	ElWorkerInit();
	ElListenInit();
	ElKafkaInit();
}
