/*
 * el_capture.c
 *		Change capture: every INSERT, UPDATE, DELETE and TRUNCATE of a table
 *		becomes a record of a topic, in the same transaction (the outbox
 *		without application changes).
 *
 * capture() installs an AFTER ROW trigger and a TRUNCATE statement trigger
 * whose function produces the change event.  The event is the payload of a
 * Debezium change event, so consumers written for Debezium read it:
 *
 *		{"before": {...} | null, "after": {...} | null, "op": "c" | "u" | "d" | "t",
 *		 "source": {"connector": "eventlog", "db": ..., "schema": ..., "table": ...,
 *		            "txId": ..., "ts_ms": ...},
 *		 "ts_ms": ...}
 *
 * The record's key is the JSON object of the row's key columns (Debezium's
 * key), so all changes of one row land on one partition, in order.  If
 * producing fails, the trigger's error aborts the business write with it.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_trigger.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "compat/compat.h"
#include "capture/capture.h"
#include "log/log.h"
#include "storage/storage.h"

PG_FUNCTION_INFO_V1(eventlog_capture);
PG_FUNCTION_INFO_V1(eventlog_uncapture);
PG_FUNCTION_INFO_V1(eventlog_capture_trigger);

#define EL_CAPTURE_TRIGGER			"eventlog_capture"
#define EL_CAPTURE_TRUNCATE_TRIGGER	"eventlog_capture_truncate"

/* Milliseconds since the Unix epoch, as Debezium's ts_ms. */
static int64
el_ts_ms(TimestampTz ts)
{
	return ts / 1000 + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
}

/* The row as a JSON object, or null. */
static void
el_append_row(StringInfo buf, HeapTuple tuple, TupleDesc desc)
{
	Datum		json;

	if (tuple == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	json = DirectFunctionCall1(row_to_json, heap_copy_tuple_as_datum(tuple, desc));
	appendStringInfoString(buf, TextDatumGetCString(json));
}

/* The JSON object of the key columns of a row. */
static char *
el_row_key(HeapTuple tuple, TupleDesc desc, char **columns, int ncolumns)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < ncolumns; i++)
	{
		int			attno = SPI_fnumber(desc, columns[i]);
		bool		isnull;
		Datum		value;

		if (attno <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" of a captured table does not exist", columns[i]),
					 errhint("Capture the table again with eventlog.capture() after changing its columns.")));
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, columns[i]);
		appendStringInfoString(&buf, ": ");
		value = heap_getattr(tuple, attno, desc, &isnull);
		if (isnull)
			appendStringInfoString(&buf, "null");
		else
		{
			/* as to_json() renders it: numbers and booleans bare, the rest quoted */
			Oid			type = TupleDescAttr(desc, attno - 1)->atttypid;
			Oid			typoutput;
			bool		varlena;
			char	   *text;

			getTypeOutputInfo(type, &typoutput, &varlena);
			text = OidOutputFunctionCall(typoutput, value);
			switch (type)
			{
				case INT2OID:
				case INT4OID:
				case INT8OID:
				case OIDOID:
				case NUMERICOID:
					appendStringInfoString(&buf, text);
					break;
				case BOOLOID:
					appendStringInfoString(&buf, strcmp(text, "t") == 0 ? "true" : "false");
					break;
				default:
					escape_json(&buf, text);
					break;
			}
		}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * The trigger: arguments are the topic and the key columns.  Produces the
 * change event in the writer's transaction, with the writer's rights.
 */
Datum
eventlog_capture_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Trigger    *trigger;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	before = NULL;
	HeapTuple	after = NULL;
	const char *op;
	ElTopic		topic;
	ElNewRecord rec;
	StringInfoData value;
	char	   *key = NULL;
	TimestampTz now = GetCurrentTimestamp();
	char	   *dbname;
	int32		partition;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event))
		elog(ERROR, "eventlog.capture_trigger() must be fired AFTER a change");
	trigger = trigdata->tg_trigger;
	if (trigger->tgnargs < 1)
		elog(ERROR, "eventlog.capture_trigger() needs the topic as its first argument");
	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		op = "c";
		after = trigdata->tg_trigtuple;
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		op = "u";
		before = trigdata->tg_trigtuple;
		after = trigdata->tg_newtuple;
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		op = "d";
		before = trigdata->tg_trigtuple;
	}
	else
		op = "t";

	if (TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) && trigger->tgnargs > 1)
		key = el_row_key(after ? after : before, desc, trigger->tgargs + 1,
						 trigger->tgnargs - 1);

	dbname = get_database_name(MyDatabaseId);
	initStringInfo(&value);
	appendStringInfoString(&value, "{\"before\": ");
	el_append_row(&value, before, desc);
	appendStringInfoString(&value, ", \"after\": ");
	el_append_row(&value, after, desc);
	appendStringInfo(&value, ", \"op\": \"%s\", \"source\": {\"connector\": \"eventlog\", \"db\": ", op);
	escape_json(&value, dbname ? dbname : "");
	appendStringInfoString(&value, ", \"schema\": ");
	escape_json(&value, get_namespace_name(RelationGetNamespace(rel)));
	appendStringInfoString(&value, ", \"table\": ");
	escape_json(&value, RelationGetRelationName(rel));
	appendStringInfo(&value, ", \"txId\": %u, \"ts_ms\": " INT64_FORMAT "}, \"ts_ms\": " INT64_FORMAT "}",
					 GetTopTransactionIdIfAny(), el_ts_ms(GetCurrentTransactionStartTimestamp()),
					 el_ts_ms(now));

	el_topic_lookup(trigger->tgargs[0], false, &topic);
	el_check_topic_privilege(&topic, ACL_INSERT);

	rec.offset = -1;
	rec.ts = now;
	rec.value = (struct varlena *) cstring_to_text(value.data);
	rec.key = key ? (struct varlena *) cstring_to_text(key) : NULL;
	rec.headers = NULL;
	partition = key ? el_partition_for_key(key, strlen(key), topic.npartitions)
		: el_topic_spread(&topic);
	el_produce_to_partition(&topic, partition, &rec, 1);

	return PointerGetDatum(NULL);
}

/* Primary key columns of a table, as a list of names. */
static List *
el_primary_key(Relation rel)
{
	Oid			pk = el_primary_key_index(rel);
	List	   *columns = NIL;
	HeapTuple	tup;
	Form_pg_index index;
	int			i;

	if (!OidIsValid(pk))
		return NIL;
	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pk));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for index %u", pk);
	index = (Form_pg_index) GETSTRUCT(tup);
	for (i = 0; i < index->indnkeyatts; i++)
		columns = lappend(columns,
						  get_attname(RelationGetRelid(rel), index->indkey.values[i], false));
	ReleaseSysCache(tup);
	return columns;
}

static bool
el_is_captured(Oid relid)
{
	bool		found;

	SPI_connect();
	if (SPI_execute(psprintf("SELECT 1 FROM pg_trigger WHERE tgrelid = %u AND tgname = '%s'",
							 relid, EL_CAPTURE_TRIGGER), true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read pg_trigger");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * capture(tbl, topic, key): every change of tbl produces an event to topic
 * in the same transaction.  key: the columns that key the events (default:
 * the primary key).
 */
Datum
eventlog_capture(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *topic_name;
	ElTopic		topic;
	Relation	rel;
	List	   *columns = NIL;
	StringInfoData args;
	ListCell   *lc;
	char	   *qualified;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and topic must not be null")));
	relid = PG_GETARG_OID(0);
	topic_name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	el_topic_lookup(topic_name, false, &topic);

	rel = relation_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("Only tables can be captured.")));
	if (rel->rd_rel->relnamespace == get_namespace_oid("eventlog_topics", false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("cannot capture topic relation \"%s\"", RelationGetRelationName(rel)),
				 errdetail("Topics are append-only; their records are read with eventlog.consume().")));

	if (!PG_ARGISNULL(2))
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(2);
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
		for (i = 0; i < n; i++)
		{
			char	   *column;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("key columns must not be null")));
			column = TextDatumGetCString(elems[i]);
			if (SPI_fnumber(RelationGetDescr(rel), column) <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of table \"%s\" does not exist",
								column, RelationGetRelationName(rel))));
			columns = lappend(columns, column);
		}
	}
	else
		columns = el_primary_key(rel);

	if (columns == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has no primary key to key its change events",
						RelationGetRelationName(rel)),
				 errdetail("Events are keyed by the row's key, so that one row's changes stay in order."),
				 errhint("Name the key columns: eventlog.capture(table, topic, key => ARRAY['column', ...]).")));
	qualified = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										   RelationGetRelationName(rel));
	relation_close(rel, AccessShareLock);

	if (el_is_captured(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("table %s is already captured", qualified),
				 errhint("Call eventlog.uncapture() first to capture it into another topic.")));

	initStringInfo(&args);
	appendStringInfoString(&args, quote_literal_cstr(topic_name));
	foreach(lc, columns)
		appendStringInfo(&args, ", %s", quote_literal_cstr(lfirst(lc)));

	SPI_connect();
	if (SPI_execute(psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s "
							 "FOR EACH ROW EXECUTE FUNCTION eventlog.capture_trigger(%s)",
							 EL_CAPTURE_TRIGGER, qualified, args.data), false, 0) < 0 ||
		SPI_execute(psprintf("CREATE TRIGGER %s AFTER TRUNCATE ON %s "
							 "FOR EACH STATEMENT EXECUTE FUNCTION eventlog.capture_trigger(%s)",
							 EL_CAPTURE_TRUNCATE_TRIGGER, qualified,
							 quote_literal_cstr(topic_name)), false, 0) < 0)
		elog(ERROR, "could not create the capture triggers on %s", qualified);
	SPI_finish();
	PG_RETURN_VOID();
}

/* uncapture(tbl): stops capturing a table's changes. */
Datum
eventlog_uncapture(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *qualified;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table must not be null")));
	relid = PG_GETARG_OID(0);
	qualified = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
										   get_rel_name(relid));
	if (!el_is_captured(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table %s is not captured", qualified)));
	SPI_connect();
	if (SPI_execute(psprintf("DROP TRIGGER %s ON %s", EL_CAPTURE_TRIGGER, qualified), false, 0) < 0 ||
		SPI_execute(psprintf("DROP TRIGGER IF EXISTS %s ON %s", EL_CAPTURE_TRUNCATE_TRIGGER, qualified),
					false, 0) < 0)
		elog(ERROR, "could not drop the capture triggers on %s", qualified);
	SPI_finish();
	PG_RETURN_VOID();
}
