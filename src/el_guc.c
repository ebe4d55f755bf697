/*
 * el_guc.c
 *		Settings of eventlog (eventlog.*).
 */
#include "postgres.h"

#include "utils/guc.h"
#include "utils/memutils.h"

#include "el_group.h"

/* Largest record (key + value + headers) accepted, as Kafka's message.max.bytes. */
int			eventlog_max_record_bytes = 1024 * 1024;

/* Whether the planner may use offset range scans (el_offsetscan.c). */
bool		eventlog_enable_offsetscan = true;

/* Offsets per segment of new topics. */
int			eventlog_segment_records = 1000000;

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
							10, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("eventlog.launcher_naptime",
							gettext_noop("Time between the launcher's looks for databases to serve."),
							NULL,
							&eventlog_launcher_naptime,
							10000, 100, INT_MAX,
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

	MarkGUCPrefixReserved("eventlog");
}
