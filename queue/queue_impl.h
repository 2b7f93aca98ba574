/*
 * queue_impl.h - what the files of queue/ share and nobody else sees.
 *
 * struct queue is one SQLite connection with its table of prepared
 * statements (indexed by enum queue_stmt, prepared once at open with
 * SQLITE_PREPARE_PERSISTENT) and the last error message.  The helpers
 * below are the only way the queue files run SQL: st() hands out a
 * statement already reset, tx_begin()/tx_commit()/tx_rollback() bracket
 * every write transaction (BEGIN IMMEDIATE), db_fail() turns a SQLite
 * error into QUEUE_ERR with "operation: sqlite message".
 */
#ifndef DENGON_QUEUE_IMPL_H
#define DENGON_QUEUE_IMPL_H

#include <sqlite3.h>

#include "queue/queue.h"

/* The schema version this program writes (queue_schema.c). */
#define QUEUE_SCHEMA_VERSION	6

enum queue_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_EVENT_ADD,
	/* directory */
	ST_RCPT_CLEAR,
	ST_RCPT_ADD,
	ST_RCPT_GROUP_ADD,
	ST_RCPT_EACH,
	ST_RCPT_EACH_GROUP,
	ST_RCPT_COUNT,
	ST_RCPT_EXISTS,
	ST_GROUP_COUNT,
	/* accepting */
	ST_TGT_CLEAR,
	ST_TGT_ALL,
	ST_TGT_GROUP,
	ST_TGT_ID,
	ST_TGT_EACH,
	ST_SEQ_NEXT,
	ST_ALERT_EXISTS,
	ST_ALERT_BY_SOURCE,
	ST_ALERT_ADD,
	ST_REV_ADD,
	ST_DLV_ADD,
	/* reading */
	ST_ALERT_GET,
	ST_ALERT_COUNTS,
	ST_ALERT_RECENT,
	ST_DLV_EACH,
	ST_ATT_EACH,
	ST_CHAN_COUNTS,
	ST_EVENTS_ALL,
	ST_EVENTS_ALERT,
	ST_BACKLOG,
	ST_INFLIGHT,
	/* changing deliveries */
	ST_DLV_BY_ID,
	ST_DLV_BY_RCPT,
	ST_DLV_BY_CODE,
	ST_DLV_SET_STATE,
	ST_CONF_ADD,
	ST_BADCODE_ADD,
	ST_ATT_ADD,
	ST_ATT_GET,
	ST_ATT_FINISH,
	/* the daemon's work (queue_work.c) */
	ST_WORK_DUE,
	ST_WORK_ONE,
	ST_NEXT_DUE,
	ST_CLAIM_CHECK,
	ST_CLAIM_ADD,
	ST_CLAIM_DLV,
	ST_ATT_OF,
	ST_PLAN_SET,
	ST_RECOVER_EACH,
	ST_RECOVER_DLV,
	ST_HEALTH_GET,
	ST_HEALTH_SET,
	ST_HEALTH_EACH,
	/* inbound mail (queue_inbound.c) */
	ST_CODE_FIND,
	ST_TOKEN_FIND,
	ST_DLV_BY_TOKEN_ID,
	ST_BADCODE_COUNT,
	ST_INBOUND_SEEN,
	ST_INBOUND_ADD,
	ST_REV_CURRENT,
	ST_DLV_REARM,
	ST_DLV_CANCEL,
	ST_SMS_PART_ADD,
	ST_SMS_PART_FIND,
	ST_SMS_PART_SET,
	ST_SMS_PART_COUNT,
	ST_ATT_DSN,
	ST_ATT_PERM,
	ST_DLV_DISPLAYED,
	ST_DLV_ADDR,
	ST_CONF_FOREIGN,
	ST_NOTICE_ADD,
	ST_NOTICE_ADD_UPDATE,
	ST_NOTICE_DUE,
	ST_NOTICE_CLAIM,
	ST_NOTICE_OUTCOME,
	ST_NOTICE_RECOVER,
	ST_DLV_ALERT,
	/* invariants (queue_schema.c) */
	ST_INV_TRIGGERS,
	ST_INV_Q2,
	ST_INV_Q3_CONFIRMED,
	ST_INV_Q3_OTHERS,
	ST_INV_Q4_FK,
	ST_INV_Q4_UNIQUE,
	ST_INV_Q5_SEQ,
	ST_INV_Q6_FIRST,
	ST_INV_Q6_GAPS,
	ST_COUNT
};

struct queue {
	sqlite3		*db;
	char		*path;
	sqlite3_stmt	*st[ST_COUNT];
	int		 check;		/* DENGON_DEBUG_INVARIANTS was set */
	int64_t		 retry_min;	/* ms: notices' backoff */
	int64_t		 retry_max;
	char		 err[1024];
};

/* Statement i, reset and with its bindings cleared. */
sqlite3_stmt *queue_st(struct queue *q, enum queue_stmt i);
/* Reset s after use, so no read transaction stays open. */
void queue_done(sqlite3_stmt *s);

/* Set the error message; returns rc. */
int queue_fail(struct queue *q, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "what: SQLite's message" as the error; returns QUEUE_ERR. */
int queue_db_fail(struct queue *q, const char *what);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK.  tx_begin and tx_commit return
 * QUEUE_OK or QUEUE_ERR with the error set (a failed commit is rolled
 * back); tx_rollback keeps the error already set. */
int queue_tx_begin(struct queue *q, const char *what);
int queue_tx_commit(struct queue *q, const char *what);
void queue_tx_rollback(struct queue *q);

/* Append an event inside the caller's transaction. */
int queue_event_add(struct queue *q, int64_t at, const char *alert,
    int64_t delivery, const char *actor, const char *what, const char *why);

/* Record an inbound message inside the caller's transaction: 1 if it is
 * new, 0 if the inbox had processed it already, QUEUE_ERR. */
int queue_inbound_add(struct queue *q, const char *inbox,
    const char *message_id, const char *kind, const char *result);

/* Migrate db (of the file path, for messages) to QUEUE_SCHEMA_VERSION;
 * 0, or -1 with a message in err (queue_schema.c). */
int queue_schema_migrate(sqlite3 *db, const char *path, char *err,
    size_t errlen);

/* Short helpers for binding and reading columns. */
#define BIND_TEXT(s, i, v)	sqlite3_bind_text((s), (i), (v), -1, SQLITE_STATIC)
#define BIND_INT(s, i, v)	sqlite3_bind_int64((s), (i), (sqlite3_int64)(v))
#define COL_TEXT(s, i)		((const char *)sqlite3_column_text((s), (i)))
#define COL_INT(s, i)		((int64_t)sqlite3_column_int64((s), (i)))

#endif /* DENGON_QUEUE_IMPL_H */
