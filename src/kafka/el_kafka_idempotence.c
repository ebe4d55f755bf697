/*
 * el_kafka_idempotence.c
 *		The idempotent producer: InitProducerId (versions 0 and 1) hands out
 *		producer ids, and Produce checks the sequence numbers of the batches
 *		that carry one, so that a batch a client sends again (its
 *		acknowledgment was lost) is acknowledged without being written twice.
 *
 * Kafka's rules, per producer id and partition: the broker remembers the
 * producer's epoch, its last sequence number and the first and last
 * sequence and the base offset of its last five batches.  A batch equal to
 * one of those five is a duplicate, acknowledged with the offset it got the
 * first time; otherwise it must follow the last sequence (or start at 0 in a
 * new epoch), and an older epoch is fenced.
 *
 * That state lives in the listener's memory only (the listener is one
 * process, so no shared memory is needed).  It is not derived from the
 * stored records: eventlog records carry no producer ids or sequence
 * numbers, and adding hidden headers would change what consumers see.  So a
 * listener restart forgets it; a producer id the listener does not know
 * then gets UNKNOWN_PRODUCER_ID (59) for any sequence but 0, which
 * librdkafka answers by starting a new epoch at sequence 0 when nothing it
 * sent is in doubt, and by failing the messages that are (it cannot know
 * whether they were written).  doc/kafka.md says what this means.
 */
#include "postgres.h"

#include "storage/fd.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "kafka/el_kafka.h"

/* Batches remembered per producer and partition (Kafka's number). */
#define EK_IDEM_BATCHES		5
/* Longest topic name (Kafka's limit, also eventlog's). */
#define EK_IDEM_TOPIC_MAX	249
/*
 * A producer silent this long on a partition is forgotten, as Kafka's
 * producer.id.expiration.ms (one day) does.
 */
#define EK_IDEM_EXPIRE_MS	(24 * 3600 * 1000L)
/* Entries kept at most; the least recently used are dropped past it. */
#define EK_IDEM_MAX_ENTRIES 100000
/* How often idle entries are looked for. */
#define EK_IDEM_SWEEP_MS	(10 * 60 * 1000L)

/*
 * The file in the data directory holding the first producer id not yet
 * reserved, and how many ids one durable write reserves.
 */
#define EK_PID_FILE			"eventlog_kafka_producer_id"
#define EK_PID_FILE_TMP		EK_PID_FILE ".tmp"
#define EK_PID_BLOCK		1000

typedef struct EkIdemKey
{
	int64		producer_id;
	int32		partition;
	char		topic[EK_IDEM_TOPIC_MAX + 1];
} EkIdemKey;

typedef struct EkIdemBatch
{
	int32		first_seq;
	int32		last_seq;
	int64		base_offset;
} EkIdemBatch;

typedef struct EkIdemEntry
{
	EkIdemKey	key;			/* hash key: first */
	int16		epoch;
	int32		last_seq;
	int			nbatches;		/* 0: nothing written yet (unknown) */
	int			next;			/* ring position of the next batch */
	EkIdemBatch batches[EK_IDEM_BATCHES];
	int64		last_used_ms;
	uint64		claimed_by;		/* the Produce request checking it now */
} EkIdemEntry;

static HTAB *ek_idem = NULL;
static uint64 ek_idem_request = 0;
static int64 ek_idem_last_sweep_ms = 0;

/* Producer ids reserved in the file and not handed out yet. */
static int64 ek_pid_next = 0;
static int64 ek_pid_limit = 0;

/* ---- Producer ids ---- */

/*
 * Reserves the next block of producer ids: the first id is past both what
 * the file says was reserved before (by this listener or an earlier one)
 * and the current time in microseconds, and the end of the block is written
 * to the file, durably, before any id of it is handed out.
 *
 * The file alone keeps ids unique across restarts even if the clock goes
 * back; the clock alone keeps them unique when the file is older than the
 * ids handed out (a data directory restored from a backup, a promoted
 * standby), which a counter could not.  One write per thousand ids keeps
 * InitProducerId cheap.  No SQL object is needed (a sequence would need
 * the install script), and the counter is of this cluster, not of a
 * database, like the listener.
 */
static void
ek_pid_reserve(void *arg)
{
	FILE	   *f;
	int64		reserved = 0;
	int64		start;
	char		line[64];

	f = AllocateFile(EK_PID_FILE, "r");
	if (f != NULL)
	{
		if (fgets(line, sizeof(line), f) != NULL)
		{
			char	   *end;
			int64		v = strtoi64(line, &end, 10);

			/* a damaged file is not trusted; the clock still holds */
			if (end != line && (*end == '\n' || *end == '\0') && v > 0)
				reserved = v;
		}
		FreeFile(f);
	}
	else if (errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", EK_PID_FILE)));

	start = Max(reserved, ek_pid_limit);
	start = Max(start, (int64) GetCurrentTimestamp());

	f = AllocateFile(EK_PID_FILE_TMP, PG_BINARY_W);
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", EK_PID_FILE_TMP)));
	fprintf(f, INT64_FORMAT "\n", start + EK_PID_BLOCK);
	if (ferror(f) || FreeFile(f) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", EK_PID_FILE_TMP)));
	/* fsyncs the file, renames it, fsyncs the directory */
	durable_rename(EK_PID_FILE_TMP, EK_PID_FILE, ERROR);

	ek_pid_next = start;
	ek_pid_limit = start + EK_PID_BLOCK;
}

/* ---- InitProducerId (versions 0 and 1) ---- */

/*
 * A new producer id with epoch 0, for an idempotent producer.  A
 * transactional id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED
 * (53): transactions are not supported, no role is ever allowed one, and
 * clients take that error as final instead of retrying (librdkafka raises a
 * fatal error, Java's producer throws).
 */
EkOutcome
ek_init_producer_id(EkRequest *req, StringInfo out)
{
	EkReader   *r = &req->body;
	char	   *transactional_id;
	int16		err = EK_ERR_NONE;
	int64		pid = -1;

	transactional_id = ek_get_string(r, false);
	(void) ek_get_int32(r);		/* transaction timeout */
	if (r->error)
		return EK_MALFORMED;

	if (transactional_id != NULL)
	{
		ereport(LOG,
				(errmsg("eventlog kafka listener: refused InitProducerId for transactional id \"%s\"",
						transactional_id),
				 errdetail("Kafka transactions are not supported; only the idempotent producer is.")));
		err = EK_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
	}
	else
	{
		if (ek_pid_next >= ek_pid_limit)
		{
			/* in a transaction, so that a failed write cleans up after itself */
			ek_begin();
			err = ek_try(ek_pid_reserve, NULL);
			ek_commit();
		}
		if (err == EK_ERR_NONE)
			pid = ek_pid_next++;
	}

	ek_put_int32(out, 0);		/* throttle time */
	ek_put_int16(out, err);
	ek_put_int64(out, pid);
	ek_put_int16(out, err == EK_ERR_NONE ? 0 : -1);
	return EK_RESPOND;
}

/* ---- Sequence numbers ---- */

/* The sequence number after seq: they wrap from INT32_MAX to 0. */
static int32
ek_seq_next(int32 seq)
{
	return seq == PG_INT32_MAX ? 0 : seq + 1;
}

/* Drops entries idle longer than max_idle_ms. */
static void
ek_idem_drop_idle(int64 now, int64 max_idle_ms)
{
	HASH_SEQ_STATUS scan;
	EkIdemEntry *e;

	hash_seq_init(&scan, ek_idem);
	while ((e = hash_seq_search(&scan)) != NULL)
		if (now - e->last_used_ms > max_idle_ms)
			(void) hash_search(ek_idem, &e->key, HASH_REMOVE, NULL);
}

/*
 * Keeps the table bounded: producers silent for a day are forgotten, and
 * when there are too many, those idle longer than half the oldest's idle
 * time (a producer forgotten gets UNKNOWN_PRODUCER_ID and starts again).
 */
static void
ek_idem_trim(int64 now)
{
	if (now - ek_idem_last_sweep_ms >= EK_IDEM_SWEEP_MS)
	{
		ek_idem_drop_idle(now, EK_IDEM_EXPIRE_MS);
		ek_idem_last_sweep_ms = now;
	}
	if (hash_get_num_entries(ek_idem) >= EK_IDEM_MAX_ENTRIES)
	{
		HASH_SEQ_STATUS scan;
		EkIdemEntry *e;
		int64		oldest = now;

		hash_seq_init(&scan, ek_idem);
		while ((e = hash_seq_search(&scan)) != NULL)
			oldest = Min(oldest, e->last_used_ms);
		ek_idem_drop_idle(now, (now - oldest) / 2);
	}
}

/*
 * Marks the start of a Produce request, in which each partition is checked
 * once.  Idle producers are dropped here, never between a partition's check
 * and its record.
 */
void
ek_idem_start_request(void)
{
	int64		now = ek_now_ms();

	ek_idem_request++;
	if (ek_idem == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(EkIdemKey);
		ctl.entrysize = sizeof(EkIdemEntry);
		ctl.hcxt = AllocSetContextCreate(TopMemoryContext, "eventlog kafka producers",
										 ALLOCSET_DEFAULT_SIZES);
		ek_idem = hash_create("eventlog kafka producers", 1024, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		ek_idem_last_sweep_ms = now;
	}
	else
		ek_idem_trim(now);
}

/*
 * Checks a partition's batches that carry a producer id against what is
 * known of the producer, before anything is written.  Returns a Kafka error
 * code; with no error, *dup_offset is the base offset the same batches got
 * when first written (nothing is to be written), or -1 (they are to be
 * appended, then passed to ek_idem_record).
 */
int16
ek_idem_check(const char *topic, int32 partition, EkBatchSet *set, int64 *dup_offset)
{
	EkIdemKey	key;
	EkIdemEntry *e;
	bool		found;
	int64		now = ek_now_ms();
	int			i;

	*dup_offset = -1;
	if (strlen(topic) > EK_IDEM_TOPIC_MAX)
		return EK_ERR_INVALID_TOPIC;
	memset(&key, 0, sizeof(key));
	key.producer_id = set->producer_id;
	key.partition = partition;
	strlcpy(key.topic, topic, sizeof(key.topic));
	e = hash_search(ek_idem, &key, HASH_ENTER, &found);
	if (!found)
	{
		e->epoch = -1;
		e->last_seq = -1;
		e->nbatches = 0;
		e->next = 0;
		e->claimed_by = 0;
	}
	e->last_used_ms = now;

	/*
	 * The same partition twice in one request: the second would be checked
	 * against a state the first has not updated yet.  Kafka keys a request's
	 * partitions by name; refuse instead of guessing which one is meant.
	 */
	if (e->claimed_by == ek_idem_request)
		return EK_ERR_INVALID_REQUEST;
	e->claimed_by = ek_idem_request;

	if (e->nbatches == 0)
	{
		/*
		 * An unknown producer (new, or forgotten at a listener restart or
		 * after a day of silence) must start at sequence 0: later ones may
		 * repeat batches written before it was forgotten.
		 */
		return set->base_sequence == 0 ? EK_ERR_NONE : EK_ERR_UNKNOWN_PRODUCER_ID;
	}
	if (set->producer_epoch < e->epoch)
		return EK_ERR_INVALID_PRODUCER_EPOCH;
	if (set->producer_epoch > e->epoch)
	{
		/* a new epoch (librdkafka bumps its own after an error) starts at 0 */
		return set->base_sequence == 0 ? EK_ERR_NONE : EK_ERR_OUT_OF_ORDER_SEQUENCE;
	}
	for (i = 0; i < e->nbatches; i++)
	{
		EkIdemBatch *b = &e->batches[i];

		if (b->first_seq == set->base_sequence && b->last_seq == set->last_sequence)
		{
			*dup_offset = b->base_offset;
			return EK_ERR_NONE;
		}
	}
	if (set->base_sequence != ek_seq_next(e->last_seq))
		return EK_ERR_OUT_OF_ORDER_SEQUENCE;
	return EK_ERR_NONE;
}

/*
 * Remembers batches ek_idem_check let through, once their transaction has
 * committed: a batch whose append failed or was rolled back is not a
 * duplicate when it comes again.
 */
void
ek_idem_record(const char *topic, int32 partition, EkBatchSet *set, int64 base_offset)
{
	EkIdemKey	key;
	EkIdemEntry *e;
	EkIdemBatch *b;

	memset(&key, 0, sizeof(key));
	key.producer_id = set->producer_id;
	key.partition = partition;
	strlcpy(key.topic, topic, sizeof(key.topic));
	e = hash_search(ek_idem, &key, HASH_FIND, NULL);
	if (e == NULL)
		return;					/* cannot happen: checked in this request */
	if (e->nbatches == 0 || set->producer_epoch != e->epoch)
	{
		/* a new producer or a new epoch: earlier batches no longer count */
		e->epoch = set->producer_epoch;
		e->nbatches = 0;
		e->next = 0;
	}
	b = &e->batches[e->next];
	b->first_seq = set->base_sequence;
	b->last_seq = set->last_sequence;
	b->base_offset = base_offset;
	e->next = (e->next + 1) % EK_IDEM_BATCHES;
	e->nbatches = Min(e->nbatches + 1, EK_IDEM_BATCHES);
	e->last_seq = set->last_sequence;
}
