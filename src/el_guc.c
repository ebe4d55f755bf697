/*
 * el_guc.c
 *		Settings of eventlog (eventlog.*): all are registered here, at the
 *		top; each variable lives in the part that reads it.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "el_guc.h"
#include "groups/groups.h"
#include "kafka/kafka.h"
#include "log/log.h"
#include "storage/storage.h"
#include "worker/worker.h"

void
ElGucInit(void)
{
	DefineCustomIntVariable("eventlog.max_record_bytes",
							gettext_noop("Largest record accepted, in bytes: key, value and headers together."),
							gettext_noop("Like Kafka's message.max.bytes. Larger records are refused with an error."),
							&eventlog_max_record_bytes,
							1024 * 1024,
							1,
							256 * 1024 * 1024,
							PGC_SUSET,
							GUC_UNIT_BYTE,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("eventlog.enable_offsetscan",
							 gettext_noop("Lets the planner read offset ranges of eventlog relations by binary search."),
							 NULL,
							 &eventlog_enable_offsetscan,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("eventlog.session_timeout",
							gettext_noop("Time after which a silent member of a consumer group loses its partitions."),
							gettext_noop("Every call of a member counts as a heartbeat. eventlog.alter_group() sets a group's own timeout."),
							&eventlog_session_timeout,
							10000,
							100,
							INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventlog.notify_interval",
							gettext_noop("Least time between two notifications of new records of a topic."),
							gettext_noop("Commits within it are announced together, in one NOTIFY per topic."),
							&eventlog_notify_interval,
							1, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("eventlog.launcher_naptime",
							gettext_noop("Time between the launcher's looks for databases to serve."),
							NULL,
							&eventlog_launcher_naptime,
							10000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventlog.transaction_timeout",
							gettext_noop("Longest time a transaction that produced records may stay open; the worker then ends its session. 0 turns it off."),
							gettext_noop("Like Kafka's transaction.timeout.ms: an open producing transaction holds every reader of its partitions behind its records. Prepared transactions are never ended."),
							&eventlog_transaction_timeout,
							5 * 60 * 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("eventlog.segment_records",
							gettext_noop("Offsets per segment of new topics, unless create_topic() is given a size."),
							gettext_noop("Retention drops whole segments, as Kafka's segment.bytes sets its unit of deletion."),
							&eventlog_segment_records,
							1000000, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("eventlog.retention_check_interval",
							gettext_noop("Time between the worker's passes enforcing retention and creating segments ahead."),
							NULL,
							&eventlog_retention_check_interval,
							10000, 100, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * The Kafka protocol listener (el_kafka_worker.c): off unless a port is
	 * set.  Its settings are fixed at server start, and PostgreSQL refuses
	 * to define such settings in a library loaded later (CREATE EXTENSION
	 * without the preload would fail): without the preload there is no
	 * listener and no setting for it.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomIntVariable("eventlog.kafka_port",
								gettext_noop("TCP port of the Kafka protocol listener; 0 turns it off."),
								gettext_noop("Needs shared_preload_libraries = 'eventlog'."),
								&eventlog_kafka_port,
								0, 0, 65535,
								PGC_POSTMASTER, 0,
								NULL, NULL, NULL);
		DefineCustomStringVariable("eventlog.kafka_listen_addresses",
								   gettext_noop("Addresses the Kafka protocol listener binds to (comma-separated, * for all)."),
								   NULL,
								   &eventlog_kafka_listen_addresses,
								   "127.0.0.1",
								   PGC_POSTMASTER, GUC_LIST_INPUT,
								   NULL, NULL, NULL);
		DefineCustomStringVariable("eventlog.kafka_database",
								   gettext_noop("Database whose topics the Kafka protocol listener serves."),
								   NULL,
								   &eventlog_kafka_database,
								   "postgres",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);
		DefineCustomStringVariable("eventlog.kafka_role",
								   gettext_noop("Role the Kafka protocol listener acts as; its grants on topics apply to every Kafka client."),
								   gettext_noop("Kafka clients are not authenticated: anyone who reaches the port acts as this role."),
								   &eventlog_kafka_role,
								   "",
								   PGC_POSTMASTER, 0,
								   NULL, NULL, NULL);
		DefineCustomStringVariable("eventlog.kafka_advertised_host",
								   gettext_noop("Host name the Kafka protocol listener gives clients in Metadata responses."),
								   gettext_noop("Empty means 127.0.0.1."),
								   &eventlog_kafka_advertised_host,
								   "",
								   PGC_SIGHUP, 0,
								   NULL, NULL, NULL);
		DefineCustomIntVariable("eventlog.kafka_advertised_port",
								gettext_noop("Port the Kafka protocol listener gives clients in Metadata responses; 0 means eventlog.kafka_port."),
								NULL,
								&eventlog_kafka_advertised_port,
								0, 0, 65535,
								PGC_SIGHUP, 0,
								NULL, NULL, NULL);
		DefineCustomIntVariable("eventlog.kafka_max_request_bytes",
								gettext_noop("Largest Kafka request accepted, in bytes, also once decompressed."),
								gettext_noop("Like Kafka's socket.request.max.bytes. A client sending a larger frame is disconnected."),
								&eventlog_kafka_max_request_bytes,
								100 * 1024 * 1024, 1024, 512 * 1024 * 1024,
								PGC_SIGHUP, GUC_UNIT_BYTE,
								NULL, NULL, NULL);
	}

	MarkGUCPrefixReserved("eventlog");
}
