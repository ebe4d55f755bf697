/*
 * eventlog.c
 *		Apache Kafka's event log inside PostgreSQL: module entry point.
 */
#include "postgres.h"

#include "fmgr.h"

#include "el_guc.h"
#include "kafka/kafka.h"
#include "log/log.h"
#include "storage/storage.h"
#include "worker/worker.h"

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
	ElProducersInit();
	ElWorkerInit();
	ElListenInit();
	ElKafkaInit();
}
