/*
 * queue_schema.c - the queue's schema, its migrations, and the check of
 * the invariants Q1-Q6 of queue.h on the data.
 *
 * The schema is versioned with PRAGMA user_version.  migrations[] holds
 * one SQL script per version; version N is migrations[N - 1].  A script is
 * applied only inside BEGIN IMMEDIATE after reading user_version again, so
 * two programs opening a fresh queue at once never both apply it: the
 * second one waits on the lock, then sees the new version and does
 * nothing.  A database newer than QUEUE_SCHEMA_VERSION is refused, never
 * touched.
 *
 * Invariants are enforced for every writer (the CLI, the daemon, an
 * operator with the sqlite3 shell) by the schema itself:
 *   Q1  trigger delivery_q1: an UPDATE OF state along no edge of the state
 *       machine is aborted.  The edges are written out in the trigger and
 *       must match queue_transition_ok() (queue.c); test_queue checks both
 *       against the same 7x7 table.
 *   Q2  CHECK on delivery: next_action IS NULL in a final state.
 *   Q3  a partial UNIQUE index: at most one non-duplicate confirmation per
 *       delivery; "at least one when confirmed" is checked on the data.
 *   Q4  a foreign key delivery.alert -> alert, UNIQUE (alert, recipient).
 *   Q5  triggers event_q5_update/event_q5_delete abort UPDATE and DELETE.
 *   Q6  triggers alert_q6 and revision_q6 abort UPDATE.
 * queue_check_invariants() checks that those triggers exist and checks
 * the data with indexed queries, so it can run after every transaction
 * (queue.c does so in debug builds when DENGON_DEBUG_INVARIANTS is set).
 */
#include <stdio.h>
#include <string.h>

#include "queue/queue_impl.h"

/* Version 1: the first schema. */
static const char schema_v1[] =
	/* The contact directory, replaced as a whole by an import. */
	"CREATE TABLE recipient ("
	"  id      TEXT PRIMARY KEY"
	"          CHECK (length(id) BETWEEN 1 AND 64),"
	"  name    TEXT NOT NULL,"
	"  org     TEXT,"
	"  groups  TEXT,"		/* 'a;b', as imported */
	"  mail    TEXT,"
	"  lgwan   TEXT,"
	"  fax     TEXT,"
	"  sms     TEXT,"
	"  policy  TEXT,"
	"  line    INTEGER NOT NULL DEFAULT 0"
	") WITHOUT ROWID;"
	"CREATE TABLE recipient_group ("
	"  grp       TEXT NOT NULL CHECK (length(grp) > 0),"
	"  recipient TEXT NOT NULL REFERENCES recipient(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (grp, recipient)"
	") WITHOUT ROWID;"
	"CREATE INDEX recipient_group_recipient ON recipient_group(recipient);"

	/* Alerts: immutable once accepted (Q6). */
	"CREATE TABLE alert ("
	"  id      TEXT PRIMARY KEY"
	"          CHECK (length(id) BETWEEN 1 AND 40"
	"                 AND id NOT GLOB '*[^A-Za-z0-9-]*'),"
	"  kind    TEXT NOT NULL DEFAULT 'alert'"
	"          CHECK (kind IN ('alert', 'update', 'cancel')),"
	"  drill   INTEGER NOT NULL DEFAULT 0 CHECK (drill IN (0, 1)),"
	"  tlp     TEXT NOT NULL"
	"          CHECK (tlp IN ('CLEAR', 'GREEN', 'AMBER', 'AMBER+STRICT',"
	"                         'RED')),"
	"  policy  TEXT,"		/* NULL: per recipient */
	"  source  TEXT NOT NULL,"
	"  key_id  TEXT NOT NULL CHECK (length(key_id) = 16),"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL CHECK (expires >= created),"
	"  refs    TEXT REFERENCES alert(id)"	/* the alert it updates/cancels */
	");"
	"CREATE INDEX alert_created ON alert(created);"
	"CREATE INDEX alert_source ON alert(source);"
	/* The last number given to an alert id of each local date. */
	"CREATE TABLE alert_seq ("
	"  day     TEXT PRIMARY KEY,"
	"  last    INTEGER NOT NULL CHECK (last > 0)"
	") WITHOUT ROWID;"
	"CREATE TABLE alert_revision ("
	"  alert    TEXT NOT NULL REFERENCES alert(id),"
	"  revision INTEGER NOT NULL CHECK (revision >= 1),"
	"  subject  TEXT NOT NULL,"
	"  body     TEXT NOT NULL,"
	"  created  INTEGER NOT NULL,"
	"  PRIMARY KEY (alert, revision)"
	") WITHOUT ROWID;"

	/* One obligation per alert and recipient (Q4). */
	"CREATE TABLE delivery ("
	"  id          INTEGER PRIMARY KEY,"
	"  alert       TEXT NOT NULL REFERENCES alert(id),"
	"  recipient   TEXT NOT NULL,"
	"  name        TEXT NOT NULL,"
	"  org         TEXT,"
	"  mail        TEXT,"
	"  lgwan       TEXT,"
	"  fax         TEXT,"
	"  sms         TEXT,"
	"  policy      TEXT NOT NULL,"
	"  state       TEXT NOT NULL DEFAULT 'pending'"
	/* comparisons, not IN lists: see schema_v6 */
	"              CHECK (state = 'pending' OR state = 'sent' OR"
	"                     state = 'delivered' OR state = 'confirmed' OR"
	"                     state = 'failed' OR state = 'expired' OR"
	"                     state = 'cancelled'),"
	"  step        INTEGER NOT NULL DEFAULT 0 CHECK (step >= 0),"
	"  next_action INTEGER,"
	"  expires     INTEGER NOT NULL,"
	"  code        TEXT NOT NULL CHECK (length(code) = 8),"
	"  token       TEXT NOT NULL CHECK (length(token) = 32),"
	"  created     INTEGER NOT NULL,"
	"  updated     INTEGER NOT NULL,"
	"  UNIQUE (alert, recipient),"
	"  CHECK (next_action IS NULL"
	"         OR state = 'pending' OR state = 'sent'"	/* Q2 */
	"         OR state = 'delivered')"
	");"
	"CREATE INDEX delivery_next ON delivery(next_action)"
	"  WHERE next_action IS NOT NULL;"
	"CREATE INDEX delivery_code ON delivery(code);"
	"CREATE UNIQUE INDEX delivery_token ON delivery(token);"
	"CREATE INDEX delivery_state ON delivery(state);"
	/* Q1: the edges of the state machine, for any writer. */
	"CREATE TRIGGER delivery_q1 BEFORE UPDATE OF state ON delivery"
	"  WHEN NEW.state IS NOT OLD.state AND NOT ("
	"    (OLD.state = 'pending' AND NEW.state IN ('sent', 'confirmed',"
	"        'failed', 'expired', 'cancelled'))"
	"    OR (OLD.state = 'sent' AND NEW.state IN ('delivered', 'confirmed',"
	"        'failed', 'expired', 'cancelled'))"
	"    OR (OLD.state = 'delivered' AND NEW.state IN ('confirmed',"
	"        'expired', 'cancelled'))"
	"    OR (OLD.state IN ('failed', 'expired')"
	"        AND NEW.state = 'confirmed'))"
	"BEGIN"
	"  SELECT RAISE(ABORT, 'Q1: delivery state change not allowed');"
	"END;"

	/* One row per delivery x channel x try. */
	"CREATE TABLE attempt ("
	"  id       INTEGER PRIMARY KEY,"
	"  delivery INTEGER NOT NULL REFERENCES delivery(id),"
	"  channel  TEXT NOT NULL,"
	"  address  TEXT NOT NULL,"
	"  revision INTEGER NOT NULL CHECK (revision >= 1),"
	"  started  INTEGER NOT NULL,"
	"  finished INTEGER,"			/* NULL while in flight */
	"  outcome  TEXT CHECK (outcome = 'ok' OR outcome = 'tempfail' OR "
	"outcome = 'permfail'),"
	"  evidence TEXT,"
	"  error    TEXT,"
	"  CHECK ((finished IS NULL) = (outcome IS NULL))"
	");"
	"CREATE INDEX attempt_delivery ON attempt(delivery);"
	"CREATE INDEX attempt_inflight ON attempt(channel)"
	"  WHERE finished IS NULL;"

	"CREATE TABLE confirmation ("
	"  id        INTEGER PRIMARY KEY,"
	"  delivery  INTEGER NOT NULL REFERENCES delivery(id),"
	"  via       TEXT NOT NULL CHECK (via IN ('phone', 'fax', 'mail',"
	"            'sms', 'relay', 'other')),"
	"  origin    TEXT,"
	"  operator  TEXT,"			/* who recorded it (by) */
	"  note      TEXT,"
	"  at        INTEGER NOT NULL,"
	"  evidence  TEXT,"
	"  duplicate INTEGER NOT NULL CHECK (duplicate IN (0, 1)),"
	"  late      INTEGER NOT NULL CHECK (late IN (0, 1))"
	");"
	"CREATE INDEX confirmation_delivery ON confirmation(delivery);"
	"CREATE UNIQUE INDEX confirmation_first ON confirmation(delivery)"
	"  WHERE duplicate = 0;"			/* Q3 */

	/* The audit log: append-only (Q5). */
	"CREATE TABLE event ("
	"  id       INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  at       INTEGER NOT NULL,"
	"  alert    TEXT REFERENCES alert(id),"
	"  delivery INTEGER REFERENCES delivery(id),"
	"  actor    TEXT NOT NULL,"
	"  what     TEXT NOT NULL,"
	"  why      TEXT"
	");"
	"CREATE INDEX event_alert ON event(alert) WHERE alert IS NOT NULL;"
	"CREATE TRIGGER event_q5_update BEFORE UPDATE ON event BEGIN"
	"  SELECT RAISE(ABORT, 'Q5: the event log is append-only');"
	"END;"
	"CREATE TRIGGER event_q5_delete BEFORE DELETE ON event BEGIN"
	"  SELECT RAISE(ABORT, 'Q5: the event log is append-only');"
	"END;"
	"CREATE TRIGGER alert_q6 BEFORE UPDATE ON alert BEGIN"
	"  SELECT RAISE(ABORT, 'Q6: an accepted alert is immutable');"
	"END;"
	"CREATE TRIGGER revision_q6 BEFORE UPDATE ON alert_revision BEGIN"
	"  SELECT RAISE(ABORT, 'Q6: an alert revision is immutable');"
	"END;"

	/* Wrong codes, for throttling whoever keeps guessing. */
	"CREATE TABLE bad_code ("
	"  id      INTEGER PRIMARY KEY,"
	"  origin  TEXT NOT NULL,"
	"  code    TEXT NOT NULL,"
	"  at      INTEGER NOT NULL"
	");"
	"CREATE INDEX bad_code_origin ON bad_code(origin, at);";

/* Version 2: what the daemon needs - rounds (reminders), retries, the
 * Message-ID of each attempt, and the health of each channel. */
static const char schema_v2[] =
	"ALTER TABLE delivery ADD COLUMN round INTEGER NOT NULL DEFAULT 0"
	"  CHECK (round >= 0);"
	"ALTER TABLE delivery ADD COLUMN tries INTEGER NOT NULL DEFAULT 0"
	"  CHECK (tries >= 0);"
	"ALTER TABLE attempt ADD COLUMN round INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE attempt ADD COLUMN step INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE attempt ADD COLUMN message_id TEXT;"
	"CREATE TABLE channel_state ("
	"  name          TEXT PRIMARY KEY,"
	"  up            INTEGER NOT NULL CHECK (up IN (0, 1)),"
	"  since         INTEGER NOT NULL,"
	"  last_ok       INTEGER,"
	"  last_error    TEXT,"
	"  last_error_at INTEGER,"
	"  updated       INTEGER NOT NULL"
	") WITHOUT ROWID;";

/* Version 3: what comes back by mail - inbound messages processed (once
 * each), confirmations from another sender, read receipts. */
static const char schema_v3[] =
	"CREATE TABLE inbound ("
	"  inbox      TEXT NOT NULL,"
	"  message_id TEXT NOT NULL,"
	"  kind       TEXT NOT NULL,"
	"  result     TEXT,"
	"  at         INTEGER NOT NULL,"
	"  PRIMARY KEY (inbox, message_id)"
	") WITHOUT ROWID;"
	"ALTER TABLE confirmation ADD COLUMN foreign_sender INTEGER NOT NULL"
	"  DEFAULT 0 CHECK (foreign_sender IN (0, 1));"
	"ALTER TABLE delivery ADD COLUMN displayed INTEGER;";

/* Version 4: SMS parts as sent, so that a status report (which names only
 * the modem's message reference) finds its attempt, and a message counts
 * as delivered when every part is. */
static const char schema_v4[] =
	"CREATE TABLE sms_part ("
	"  attempt  INTEGER NOT NULL REFERENCES attempt(id),"
	"  device   TEXT NOT NULL,"
	"  number   TEXT NOT NULL,"
	"  seq      INTEGER NOT NULL CHECK (seq >= 1),"
	"  total    INTEGER NOT NULL CHECK (total >= seq),"
	"  mr       INTEGER NOT NULL CHECK (mr BETWEEN 0 AND 255),"
	"  sent     INTEGER NOT NULL,"
	"  status   INTEGER,"		/* TP-ST of the last report, NULL: none */
	"  reported INTEGER,"
	"  PRIMARY KEY (attempt, seq)"
	");"
	"CREATE INDEX sms_part_mr ON sms_part(device, mr, sent);";

/* Version 5: notices - a message that asks for nothing (the cancellation
 * of an alert; an update for a recipient who had already confirmed) to
 * each channel and address that reached a recipient, sent as attempts
 * marked with their notice kind. */
static const char schema_v5[] =
	"ALTER TABLE attempt ADD COLUMN notice TEXT"
	"  CHECK (notice IN ('cancel', 'update'));"
	"CREATE TABLE notice ("
	"  id          INTEGER PRIMARY KEY,"
	"  delivery    INTEGER NOT NULL REFERENCES delivery(id),"
	"  kind        TEXT NOT NULL CHECK (kind IN ('cancel', 'update')),"
	"  revision    INTEGER NOT NULL,"
	"  channel     TEXT NOT NULL,"
	"  address     TEXT NOT NULL,"
	"  reason      TEXT,"
	"  created     INTEGER NOT NULL,"
	"  state       TEXT NOT NULL DEFAULT 'pending'"
	"    CHECK (state = 'pending' OR state = 'sent' OR state = 'failed'),"
	"  next_action INTEGER,"		/* NULL: in flight or done */
	"  tries       INTEGER NOT NULL DEFAULT 0,"
	"  attempt     INTEGER REFERENCES attempt(id),"	/* the latest */
	"  UNIQUE (delivery, kind, revision, channel, address)"
	");"
	"CREATE INDEX notice_due ON notice(next_action)"
	"  WHERE next_action IS NOT NULL;"
	"CREATE INDEX notice_attempt ON notice(attempt);";

/*
 * Version 6: the same rules, cheaper to check.  SQLite 3.40 evaluates
 * "x IN ('a', 'b', 'c')" with more than two constants by building a
 * transient b-tree of the list, on every evaluation of a CHECK constraint
 * or a trigger: 10-15,000 instructions each, several per write of a
 * delivery or an attempt (bench/README.md, fan-out).  The trigger of Q1 is
 * recreated with the same edges written as comparisons.  The CHECK
 * constraints of the tables are written as comparisons in the versions
 * that create them (the same rules: a queue created before keeps its
 * constraints, which check the same thing, only slower; a table's CHECK
 * cannot be altered without rebuilding it).
 */
static const char schema_v6[] =
	"DROP TRIGGER delivery_q1;"
	"CREATE TRIGGER delivery_q1 BEFORE UPDATE OF state ON delivery"
	"  WHEN NEW.state IS NOT OLD.state AND NOT ("
	"    (OLD.state = 'pending' AND (NEW.state = 'sent'"
	"        OR NEW.state = 'confirmed' OR NEW.state = 'failed'"
	"        OR NEW.state = 'expired' OR NEW.state = 'cancelled'))"
	"    OR (OLD.state = 'sent' AND (NEW.state = 'delivered'"
	"        OR NEW.state = 'confirmed' OR NEW.state = 'failed'"
	"        OR NEW.state = 'expired' OR NEW.state = 'cancelled'))"
	"    OR (OLD.state = 'delivered' AND (NEW.state = 'confirmed'"
	"        OR NEW.state = 'expired' OR NEW.state = 'cancelled'))"
	"    OR ((OLD.state = 'failed' OR OLD.state = 'expired')"
	"        AND NEW.state = 'confirmed'))"
	"BEGIN"
	"  SELECT RAISE(ABORT, 'Q1: delivery state change not allowed');"
	"END;";

static const char *const migrations[] = {
	schema_v1,
	schema_v2,
	schema_v3,
	schema_v4,
	schema_v5,
	schema_v6,
};

/* The triggers queue_check_invariants() requires (Q1, Q5, Q6). */
static const char *const required_triggers[] = {
	"delivery_q1", "event_q5_update", "event_q5_delete", "alert_q6",
	"revision_q6",
};

/* Read PRAGMA user_version; -1 on error. */
static int
user_version(sqlite3 *db)
{
	sqlite3_stmt *s;
	int v = -1;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) !=
	    SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

int
queue_schema_migrate(sqlite3 *db, const char *path, char *err, size_t errlen)
{
	char sql[64];
	int v, nmig = (int)(sizeof(migrations) / sizeof(migrations[0]));

	_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
	    QUEUE_SCHEMA_VERSION, "one migration per schema version");
	/* The common case, without taking the write lock. */
	if ((v = user_version(db)) == -1)
		goto dberr;
	if (v == nmig)
		return 0;
	if (v > nmig)
		goto newer;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	/* Another program may have migrated while we waited for the lock. */
	if ((v = user_version(db)) == -1)
		goto dberr_rollback;
	if (v > nmig) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto newer;
	}
	for (; v < nmig; v++)
		if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) !=
		    SQLITE_OK)
			goto dberr_rollback;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", nmig);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr_rollback;
	return 0;
newer:
	snprintf(err, errlen, "queue %s has schema version %d, newer than "
	    "this dengon knows (%d): upgrade dengon", path, v, nmig);
	return -1;
dberr_rollback:
	snprintf(err, errlen, "queue %s: migrating to schema version %d: %s",
	    path, v + 1, sqlite3_errmsg(db));
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
dberr:
	snprintf(err, errlen, "queue %s: %s", path, sqlite3_errmsg(db));
	return -1;
}

/*
 * Run one invariant query: a row means a violation, reported with the
 * first column of the row after what.  Returns QUEUE_OK, QUEUE_ERR (a
 * violation, or the query failed).
 */
static int
inv_none(struct queue *q, enum queue_stmt i, const char *what)
{
	sqlite3_stmt *s = queue_st(q, i);
	int rc;

	if ((rc = sqlite3_step(s)) == SQLITE_DONE) {
		queue_done(s);
		return QUEUE_OK;
	}
	if (rc == SQLITE_ROW) {
		const char *v = COL_TEXT(s, 0);

		queue_fail(q, QUEUE_ERR, "invariant %s (%s)", what,
		    v ? v : "-");
		queue_done(s);
		return QUEUE_ERR;
	}
	queue_db_fail(q, "checking invariants");
	queue_done(s);
	return QUEUE_ERR;
}

int
queue_check_invariants(struct queue *q)
{
	sqlite3_stmt *s;
	size_t i, ntrig = sizeof(required_triggers) /
	    sizeof(required_triggers[0]);

	/* Q1, Q5, Q6: the triggers that hold every writer to them exist. */
	for (i = 0; i < ntrig; i++) {
		s = queue_st(q, ST_INV_TRIGGERS);
		BIND_TEXT(s, 1, required_triggers[i]);
		if (sqlite3_step(s) != SQLITE_ROW) {
			queue_done(s);
			return queue_db_fail(q, "checking invariants");
		}
		if (sqlite3_column_int(s, 0) != 1) {
			queue_done(s);
			return queue_fail(q, QUEUE_ERR, "invariant Q%c "
			    "violated: trigger %s is missing",
			    required_triggers[i][0] == 'd' ? '1' :
			    required_triggers[i][0] == 'e' ? '5' : '6',
			    required_triggers[i]);
		}
		queue_done(s);
	}
	if (inv_none(q, ST_INV_Q2,
	    "Q2 violated: a final delivery has a next action") != QUEUE_OK ||
	    inv_none(q, ST_INV_Q3_CONFIRMED, "Q3 violated: a confirmed "
	    "delivery has not exactly one accepted confirmation") != QUEUE_OK ||
	    inv_none(q, ST_INV_Q3_OTHERS, "Q3 violated: a delivery that is "
	    "not confirmed has a confirmation") != QUEUE_OK ||
	    inv_none(q, ST_INV_Q4_FK, "Q4 violated: a row refers to a "
	    "missing parent (table)") != QUEUE_OK ||
	    inv_none(q, ST_INV_Q4_UNIQUE, "Q4 violated: two deliveries for "
	    "one alert and recipient") != QUEUE_OK ||
	    inv_none(q, ST_INV_Q5_SEQ, "Q5 violated: events were deleted")
	    != QUEUE_OK ||
	    inv_none(q, ST_INV_Q6_FIRST, "Q6 violated: an alert has no "
	    "first revision") != QUEUE_OK ||
	    inv_none(q, ST_INV_Q6_GAPS, "Q6 violated: an alert's revisions "
	    "are not 1..n") != QUEUE_OK)
		return QUEUE_ERR;
	return QUEUE_OK;
}
