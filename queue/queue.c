/*
 * queue.c - opening the queue, its prepared statements and transactions,
 * state and TLP names, the online backup, and the contact directory.
 *
 * Owned state: one SQLite connection per struct queue, with every
 * statement of queue_sql[] prepared once at open (FreeBSD pkg's pkgdb.c
 * does the same with its sql_prepare table).  Every connection runs with
 * journal_mode=WAL, synchronous=FULL (NORMAL can lose committed rows on
 * power loss), foreign_keys=ON and a 10 s busy timeout.  Every write is one
 * BEGIN IMMEDIATE transaction through queue_tx_begin()/queue_tx_commit();
 * on any error it is rolled back, so nothing is ever half-written.
 *
 * Files: with QUEUE_OPEN_CREATE the database file is created here, mode
 * 0660 and the configured group, before SQLite opens it: SQLite creates the
 * -wal and -shm files with the mode (and, as root, the owner) of the
 * database, so an operator's CLI never leaves a file the daemon cannot
 * open.  A missing parent directory is created mode 2770 (setgid, group
 * writable) with the same group: SQLite must create and delete the -wal
 * and -shm files in it, and the setgid bit makes them inherit the group
 * whichever member of it creates them.
 *
 * Debug builds (no NDEBUG) run queue_check_invariants() after every write
 * transaction when DENGON_DEBUG_INVARIANTS is set in the environment at
 * open, and abort on a violation, as SQLite's pager asserts its own.  It
 * is not on by default because the Makefile's normal build keeps asserts
 * and a full check of a years-old queue after every commit of the daemon
 * would cost more than the commit.  The unit tests set it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/queue_impl.h"

#define BUSY_TIMEOUT_MS	10000

#define DLV_COLS "id, alert, recipient, state"
#define RCPT_COLS "id, name, org, groups, mail, lgwan, fax, sms, policy, line"

/* The SQL of each statement, prepared once at open. */
/* The columns of a struct queue_work (queue_work.c reads them in order). */
#define WORK_SELECT \
	"SELECT d.id, d.alert, d.recipient, d.name, d.org, d.mail, " \
	    "d.lgwan, d.fax, d.sms, d.policy, d.code, d.token, d.state, " \
	    "d.step, d.round, d.tries, d.next_action, d.expires, a.created, " \
	    "a.tlp, a.drill, r.revision, r.subject, r.body, " \
	    "(SELECT group_concat(t.channel) FROM attempt t WHERE " \
	    " t.delivery = d.id AND t.round = d.round AND t.step = d.step " \
	    " AND t.revision = r.revision AND t.outcome = 'ok'), " \
	    "(SELECT group_concat(t.channel) FROM attempt t WHERE " \
	    " t.delivery = d.id AND t.outcome = 'permfail'), " \
	    "(SELECT count(*) FROM attempt t WHERE t.delivery = d.id " \
	    " AND t.finished IS NULL) " \
	    "FROM delivery d JOIN alert a ON a.id = d.alert " \
	    "JOIN alert_revision r ON r.alert = d.alert AND r.revision = " \
	    "(SELECT max(x.revision) FROM alert_revision x " \
	    " WHERE x.alert = d.alert) "

static const char *const queue_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_EVENT_ADD] =
	    "INSERT INTO event(at, alert, delivery, actor, what, why) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",

	[ST_RCPT_CLEAR] = "DELETE FROM recipient",
	[ST_RCPT_ADD] =
	    "INSERT INTO recipient(" RCPT_COLS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_RCPT_GROUP_ADD] =
	    "INSERT OR IGNORE INTO recipient_group(grp, recipient) "
	    "VALUES (?1, ?2)",
	[ST_RCPT_EACH] = "SELECT " RCPT_COLS " FROM recipient ORDER BY id",
	[ST_RCPT_EACH_GROUP] =
	    "SELECT r.id, r.name, r.org, r.groups, r.mail, r.lgwan, r.fax, "
	    "r.sms, r.policy, r.line FROM recipient_group g "
	    "JOIN recipient r ON r.id = g.recipient WHERE g.grp = ?1 "
	    "ORDER BY r.id",
	[ST_RCPT_COUNT] = "SELECT count(*) FROM recipient",
	[ST_RCPT_EXISTS] = "SELECT 1 FROM recipient WHERE id = ?1",
	[ST_GROUP_COUNT] = "SELECT count(*) FROM recipient_group WHERE grp = ?1",

	[ST_TGT_CLEAR] = "DELETE FROM temp.target",
	[ST_TGT_ALL] =
	    "INSERT OR IGNORE INTO temp.target(id) SELECT id FROM recipient",
	[ST_TGT_GROUP] =
	    "INSERT OR IGNORE INTO temp.target(id) "
	    "SELECT recipient FROM recipient_group WHERE grp = ?1",
	[ST_TGT_ID] = "INSERT OR IGNORE INTO temp.target(id) VALUES (?1)",
	[ST_TGT_EACH] =
	    "SELECT r.id, r.name, r.org, r.mail, r.lgwan, r.fax, r.sms, "
	    "r.policy FROM temp.target t JOIN recipient r ON r.id = t.id "
	    "ORDER BY t.id",
	[ST_SEQ_NEXT] =
	    "INSERT INTO alert_seq(day, last) VALUES (?1, 1) "
	    "ON CONFLICT(day) DO UPDATE SET last = last + 1 RETURNING last",
	[ST_ALERT_EXISTS] = "SELECT 1 FROM alert WHERE id = ?1",
	[ST_ALERT_BY_SOURCE] =
	    "SELECT id FROM alert WHERE source = ?1 ORDER BY created LIMIT 1",
	[ST_ALERT_ADD] =
	    "INSERT INTO alert(id, kind, drill, tlp, policy, source, key_id, "
	    "created, expires, refs) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[ST_REV_ADD] =
	    "INSERT INTO alert_revision(alert, revision, subject, body, "
	    "created) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_DLV_ADD] =
	    "INSERT INTO delivery(alert, recipient, name, org, mail, lgwan, "
	    "fax, sms, policy, state, step, next_action, expires, code, token, "
	    "created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "'pending', 0, ?10, ?11, ?12, ?13, ?10, ?10)",

	[ST_ALERT_GET] =
	    "SELECT a.id, a.kind, a.drill, a.tlp, a.policy, a.source, "
	    "a.key_id, a.created, a.expires, a.refs, r.revision, r.subject, "
	    "r.body FROM alert a JOIN alert_revision r ON r.alert = a.id "
	    "WHERE a.id = ?1 ORDER BY r.revision DESC LIMIT 1",
	[ST_ALERT_COUNTS] =
	    "SELECT state, count(*) FROM delivery WHERE alert = ?1 "
	    "GROUP BY state",
	[ST_ALERT_RECENT] =
	    "SELECT id FROM alert ORDER BY created DESC, id DESC LIMIT ?1",
	[ST_DLV_EACH] =
	    "SELECT d.id, d.alert, d.recipient, d.name, d.org, d.mail, "
	    "d.lgwan, d.fax, d.sms, d.policy, d.state, d.step, d.next_action, "
	    "d.expires, d.code, d.token, c.via, c.operator, c.at, c.late, "
	    "c.origin, c.foreign_sender, d.displayed "
	    "FROM delivery d LEFT JOIN confirmation c "
	    "ON c.delivery = d.id AND c.duplicate = 0 "
	    "WHERE d.alert = ?1 ORDER BY d.recipient",
	[ST_ATT_EACH] =
	    "SELECT id, delivery, channel, address, started, finished, "
	    "outcome, evidence, error, round, message_id, notice FROM attempt "
	    "WHERE delivery = ?1 ORDER BY id",
	[ST_CHAN_COUNTS] =
	    "SELECT a.channel, sum(a.finished IS NULL), "
	    "sum(a.outcome = 'ok'), sum(a.outcome = 'tempfail'), "
	    "sum(a.outcome = 'permfail') FROM attempt a "
	    "JOIN delivery d ON d.id = a.delivery WHERE d.alert = ?1 "
	    "GROUP BY a.channel ORDER BY a.channel",
	[ST_EVENTS_ALL] =
	    "SELECT id, at, alert, delivery, actor, what, why FROM event "
	    "ORDER BY id",
	[ST_EVENTS_ALERT] =
	    "SELECT id, at, alert, delivery, actor, what, why FROM event "
	    "WHERE alert = ?1 ORDER BY id",
	[ST_BACKLOG] =
	    "SELECT policy, step, coalesce(mail, '') <> '', "
	    "coalesce(lgwan, '') <> '', coalesce(fax, '') <> '', "
	    "coalesce(sms, '') <> '', "
	    "sum(state = 'pending' OR (next_action IS NOT NULL "
	    "AND next_action <= ?1)), "
	    "sum(next_action IS NOT NULL AND next_action <= ?1) "
	    "FROM delivery WHERE state IN ('pending', 'sent', 'delivered') "
	    "GROUP BY 1, 2, 3, 4, 5, 6",
	[ST_INFLIGHT] =
	    "SELECT channel, count(*) FROM attempt WHERE finished IS NULL "
	    "GROUP BY channel",

	[ST_DLV_BY_ID] = "SELECT " DLV_COLS " FROM delivery WHERE id = ?1",
	[ST_DLV_BY_RCPT] =
	    "SELECT " DLV_COLS " FROM delivery "
	    "WHERE alert = ?1 AND recipient = ?2",
	[ST_DLV_BY_CODE] =
	    "SELECT " DLV_COLS " FROM delivery WHERE code = ?1 ORDER BY id",
	[ST_DLV_SET_STATE] =
	    "UPDATE delivery SET state = ?2, next_action = CASE WHEN ?3 "
	    "THEN NULL ELSE next_action END, updated = ?4 WHERE id = ?1",
	[ST_CONF_ADD] =
	    "INSERT INTO confirmation(delivery, via, origin, operator, note, "
	    "at, evidence, duplicate, late) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_BADCODE_ADD] =
	    "INSERT INTO bad_code(origin, code, at) VALUES (?1, ?2, ?3)",
	[ST_ATT_ADD] =
	    "INSERT INTO attempt(delivery, channel, address, revision, "
	    "started) SELECT d.id, ?2, ?3, (SELECT max(r.revision) FROM "
	    "alert_revision r WHERE r.alert = d.alert), ?4 FROM delivery d "
	    "WHERE d.id = ?1",
	[ST_ATT_GET] =
	    "SELECT a.id, a.finished, d.alert, a.delivery, a.channel "
	    "FROM attempt a JOIN delivery d ON d.id = a.delivery "
	    "WHERE a.id = ?1",
	[ST_ATT_FINISH] =
	    "UPDATE attempt SET finished = ?2, outcome = ?3, evidence = ?4, "
	    "error = ?5 WHERE id = ?1 AND finished IS NULL",

	[ST_WORK_DUE] = WORK_SELECT
	    "WHERE d.next_action IS NOT NULL AND d.next_action <= ?1 "
	    "ORDER BY d.next_action, d.id LIMIT ?2",
	[ST_WORK_ONE] = WORK_SELECT "WHERE d.id = ?1",
	[ST_NEXT_DUE] =
	    "SELECT min(x) FROM (SELECT min(next_action) AS x FROM delivery "
	    "WHERE next_action IS NOT NULL UNION ALL SELECT min(next_action) "
	    "FROM notice WHERE next_action IS NOT NULL)",
	/* comparisons, not "state IN (...)": SQLite builds a b-tree of a
	 * list of more than two constants on every run (queue_schema.c, v6) */
	[ST_CLAIM_CHECK] =
	    "SELECT 1 FROM delivery WHERE id = ?1 AND next_action IS NOT NULL "
	    "AND next_action <= ?2 AND (state = 'pending' OR state = 'sent' "
	    "OR state = 'delivered')",
	[ST_CLAIM_ADD] =
	    "INSERT INTO attempt(delivery, channel, address, revision, started, "
	    "round, step, message_id, notice) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
	    "?7, ?8, ?9)",
	[ST_CLAIM_DLV] =
	    "UPDATE delivery SET next_action = NULL, updated = ?2 WHERE id = ?1",
	[ST_ATT_OF] =
	    "SELECT delivery, channel, finished, notice FROM attempt "
	    "WHERE id = ?1",
	[ST_PLAN_SET] =
	    "UPDATE delivery SET state = ?2, step = ?3, round = ?4, tries = ?5, "
	    "next_action = ?6, updated = ?7 WHERE id = ?1",
	[ST_RECOVER_EACH] =
	    "SELECT a.id, a.delivery, d.alert, a.channel FROM attempt a "
	    "JOIN delivery d ON d.id = a.delivery WHERE a.finished IS NULL",
	[ST_RECOVER_DLV] =
	    "UPDATE delivery SET next_action = ?2, updated = ?2 WHERE id = ?1 "
	    "AND state IN ('pending', 'sent', 'delivered')",
	[ST_HEALTH_GET] = "SELECT up FROM channel_state WHERE name = ?1",
	[ST_HEALTH_SET] =
	    "INSERT INTO channel_state(name, up, since, last_ok, last_error, "
	    "last_error_at, updated) VALUES (?1, ?2, ?3, "
	    "CASE WHEN ?2 THEN ?4 END, CASE WHEN ?2 THEN NULL ELSE ?5 END, "
	    "CASE WHEN ?2 THEN NULL ELSE ?4 END, ?4) "
	    "ON CONFLICT(name) DO UPDATE SET up = ?2, since = CASE WHEN up = ?2 "
	    "THEN since ELSE ?4 END, "
	    "last_ok = CASE WHEN ?2 THEN ?4 ELSE last_ok END, "
	    "last_error = CASE WHEN ?2 THEN last_error ELSE ?5 END, "
	    "last_error_at = CASE WHEN ?2 THEN last_error_at ELSE ?4 END, "
	    "updated = ?4",
	[ST_HEALTH_EACH] =
	    "SELECT name, up, since, last_ok, last_error, last_error_at "
	    "FROM channel_state ORDER BY name",

	[ST_CODE_FIND] =
	    "SELECT alert, recipient FROM delivery WHERE code = ?1 "
	    "ORDER BY state NOT IN ('pending', 'sent', 'delivered'), "
	    "state = 'cancelled', id DESC LIMIT 1",
	[ST_TOKEN_FIND] =
	    "SELECT alert, recipient FROM delivery WHERE token = ?1",
	[ST_DLV_BY_TOKEN_ID] = "SELECT id FROM delivery WHERE token = ?1",
	[ST_BADCODE_COUNT] =
	    "SELECT count(*) FROM bad_code WHERE origin = ?1 AND at >= ?2",
	[ST_INBOUND_SEEN] =
	    "SELECT 1 FROM inbound WHERE inbox = ?1 AND message_id = ?2",
	[ST_INBOUND_ADD] =
	    "INSERT OR IGNORE INTO inbound(inbox, message_id, kind, result, at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_REV_CURRENT] =
	    "SELECT revision, subject FROM alert_revision WHERE alert = ?1 "
	    "ORDER BY revision DESC LIMIT 1",
	/* an update: a delivery already reached gets the new revision on
	 * the channels of the step that reached it, now; one not reached
	 * yet gets it when its time comes */
	[ST_DLV_REARM] =
	    "UPDATE delivery SET step = (SELECT max(t.step) FROM attempt t "
	    "WHERE t.delivery = delivery.id AND t.round = delivery.round AND "
	    "t.outcome = 'ok'), tries = 0, next_action = ?2, updated = ?2 "
	    "WHERE alert = ?1 AND state IN ('sent', 'delivered') AND EXISTS "
	    "(SELECT 1 FROM attempt t WHERE t.delivery = delivery.id AND "
	    "t.round = delivery.round AND t.outcome = 'ok')",
	[ST_DLV_CANCEL] =
	    "UPDATE delivery SET state = 'cancelled', next_action = NULL, "
	    "updated = ?2 WHERE alert = ?1 AND state IN ('pending', 'sent', "
	    "'delivered')",
	/* a cancellation tells every recipient already reached (confirmed
	 * ones too: they may be acting on it), on each channel and address
	 * that reached them */
	[ST_NOTICE_ADD] =
	    "INSERT OR IGNORE INTO notice(delivery, kind, revision, channel, "
	    "address, reason, created, next_action) SELECT DISTINCT d.id, "
	    "'cancel', ?3, t.channel, t.address, ?4, ?2, ?2 FROM delivery d "
	    "JOIN attempt t ON t.delivery = d.id WHERE d.alert = ?1 AND "
	    "d.state IN ('sent', 'delivered', 'confirmed') AND t.outcome = 'ok' "
	    "AND t.notice IS NULL",
	/* an update for those who had already confirmed: final, so not
	 * re-armed, but reached; the new text on what reached them */
	[ST_NOTICE_ADD_UPDATE] =
	    "INSERT OR IGNORE INTO notice(delivery, kind, revision, channel, "
	    "address, created, next_action) SELECT DISTINCT d.id, 'update', "
	    "?3, t.channel, t.address, ?2, ?2 FROM delivery d JOIN attempt t "
	    "ON t.delivery = d.id WHERE d.alert = ?1 AND d.state = 'confirmed' "
	    "AND t.outcome = 'ok' AND t.notice IS NULL",
	[ST_NOTICE_DUE] =
	    "SELECT id, delivery, kind, channel, address, reason, tries FROM "
	    "notice WHERE next_action IS NOT NULL AND next_action <= ?1 "
	    "ORDER BY next_action LIMIT ?2",
	/* ?3 NULL: claim it if due; then ?3 = the attempt made for it */
	[ST_NOTICE_CLAIM] =
	    "UPDATE notice SET next_action = NULL, attempt = ?3 WHERE id = ?1 "
	    "AND (?3 IS NOT NULL OR (next_action IS NOT NULL AND "
	    "next_action <= ?2))",
	/* ?2 outcome, ?3 now, ?4 retry_min ms, ?5 retry_max ms, ?6 tries
	 * allowed */
	[ST_NOTICE_OUTCOME] =
	    "UPDATE notice SET state = CASE WHEN ?2 = 'ok' THEN 'sent' WHEN "
	    "?2 = 'permfail' OR tries + 1 >= ?6 THEN 'failed' ELSE 'pending' "
	    "END, next_action = CASE WHEN ?2 = 'tempfail' AND tries + 1 < ?6 "
	    "THEN ?3 + min(?4 * (1 << min(tries, 20)), ?5) END, tries = tries + "
	    "(?2 = 'tempfail') WHERE attempt = ?1 RETURNING state, kind",
	[ST_NOTICE_RECOVER] =
	    "UPDATE notice SET next_action = ?2 WHERE attempt = ?1 AND state = "
	    "'pending'",
	[ST_DLV_ALERT] = "SELECT alert FROM delivery WHERE id = ?1",
	[ST_SMS_PART_ADD] =
	    "INSERT OR REPLACE INTO sms_part(attempt, device, number, seq, "
	    "total, mr, sent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	/* the newest part with that reference on that modem, the one to
	 * that number first (a report may write the number nationally) */
	[ST_SMS_PART_FIND] =
	    "SELECT attempt, seq, total FROM sms_part WHERE device = ?1 AND "
	    "mr = ?2 AND sent >= ?4 ORDER BY number = ?3 DESC, sent DESC "
	    "LIMIT 1",
	[ST_SMS_PART_SET] =
	    "UPDATE sms_part SET status = ?3, reported = ?4 "
	    "WHERE attempt = ?1 AND seq = ?2",
	[ST_SMS_PART_COUNT] =
	    "SELECT count(*) FROM sms_part WHERE attempt = ?1 AND "
	    "status IS NOT NULL AND status < 32",
	[ST_ATT_DSN] =
	    "UPDATE attempt SET evidence = coalesce(evidence || '; ', '') || ?2 "
	    "WHERE id = ?1",
	[ST_ATT_PERM] =
	    "UPDATE attempt SET outcome = 'permfail', error = ?2, "
	    "finished = coalesce(finished, ?3) WHERE id = ?1",
	[ST_DLV_DISPLAYED] =
	    "UPDATE delivery SET displayed = coalesce(displayed, ?2) "
	    "WHERE id = ?1",
	[ST_DLV_ADDR] =
	    "SELECT mail, lgwan, sms FROM delivery WHERE id = ?1",
	[ST_CONF_FOREIGN] =
	    "UPDATE confirmation SET foreign_sender = 1 WHERE id = ?1",

	[ST_INV_TRIGGERS] =
	    "SELECT count(*) FROM sqlite_schema "
	    "WHERE type = 'trigger' AND name = ?1",
	[ST_INV_Q2] =
	    "SELECT id FROM delivery WHERE next_action IS NOT NULL "
	    "AND state NOT IN ('pending', 'sent', 'delivered') LIMIT 1",
	[ST_INV_Q3_CONFIRMED] =
	    "SELECT d.id FROM delivery d WHERE d.state = 'confirmed' "
	    "AND (SELECT count(*) FROM confirmation c WHERE c.delivery = d.id "
	    "AND c.duplicate = 0) <> 1 LIMIT 1",
	[ST_INV_Q3_OTHERS] =
	    "SELECT c.delivery FROM confirmation c "
	    "JOIN delivery d ON d.id = c.delivery "
	    "WHERE d.state <> 'confirmed' LIMIT 1",
	[ST_INV_Q4_FK] = "PRAGMA foreign_key_check",
	[ST_INV_Q4_UNIQUE] =
	    "SELECT alert || ' ' || recipient FROM delivery "
	    "GROUP BY alert, recipient HAVING count(*) > 1 LIMIT 1",
	[ST_INV_Q5_SEQ] =
	    "SELECT 'sequence ' || s.seq || ', rows ' || "
	    "(SELECT count(*) FROM event) FROM sqlite_sequence s "
	    "WHERE s.name = 'event' AND s.seq <> (SELECT count(*) FROM event)",
	[ST_INV_Q6_FIRST] =
	    "SELECT a.id FROM alert a WHERE NOT EXISTS (SELECT 1 FROM "
	    "alert_revision r WHERE r.alert = a.id AND r.revision = 1) LIMIT 1",
	[ST_INV_Q6_GAPS] =
	    "SELECT alert FROM alert_revision GROUP BY alert "
	    "HAVING max(revision) <> count(*) LIMIT 1",
};

/* ---- names ------------------------------------------------------------- */

static const char *const state_names[QUEUE_NSTATES] = {
	[QUEUE_PENDING] = "pending",
	[QUEUE_SENT] = "sent",
	[QUEUE_DELIVERED] = "delivered",
	[QUEUE_CONFIRMED] = "confirmed",
	[QUEUE_FAILED] = "failed",
	[QUEUE_EXPIRED] = "expired",
	[QUEUE_CANCELLED] = "cancelled",
};

/*
 * The edges of the state machine in queue.h.  The trigger delivery_q1
 * (queue_schema.c) spells out the same edges for writers outside this
 * code; test_queue checks both against one table.
 */
static const unsigned char edges[QUEUE_NSTATES][QUEUE_NSTATES] = {
	[QUEUE_PENDING] = { [QUEUE_SENT] = 1, [QUEUE_CONFIRMED] = 1,
	    [QUEUE_FAILED] = 1, [QUEUE_EXPIRED] = 1, [QUEUE_CANCELLED] = 1 },
	[QUEUE_SENT] = { [QUEUE_DELIVERED] = 1, [QUEUE_CONFIRMED] = 1,
	    [QUEUE_FAILED] = 1, [QUEUE_EXPIRED] = 1, [QUEUE_CANCELLED] = 1 },
	[QUEUE_DELIVERED] = { [QUEUE_CONFIRMED] = 1, [QUEUE_EXPIRED] = 1,
	    [QUEUE_CANCELLED] = 1 },
	[QUEUE_FAILED] = { [QUEUE_CONFIRMED] = 1 },
	[QUEUE_EXPIRED] = { [QUEUE_CONFIRMED] = 1 },
};

static const char *const tlp_names[] = {
	[QUEUE_TLP_CLEAR] = "CLEAR",
	[QUEUE_TLP_GREEN] = "GREEN",
	[QUEUE_TLP_AMBER] = "AMBER",
	[QUEUE_TLP_AMBER_STRICT] = "AMBER+STRICT",
	[QUEUE_TLP_RED] = "RED",
};

const char *
queue_state_name(enum queue_state s)
{
	if ((unsigned)s >= QUEUE_NSTATES)
		return "?";
	return state_names[s];
}

int
queue_state_parse(const char *name, enum queue_state *s)
{
	for (int i = 0; i < QUEUE_NSTATES; i++)
		if (name != NULL && strcmp(name, state_names[i]) == 0) {
			*s = (enum queue_state)i;
			return 0;
		}
	return -1;
}

int
queue_transition_ok(enum queue_state from, enum queue_state to)
{
	if ((unsigned)from >= QUEUE_NSTATES || (unsigned)to >= QUEUE_NSTATES)
		return 0;
	return edges[from][to];
}

int
queue_state_final(enum queue_state s)
{
	return s == QUEUE_CONFIRMED || s == QUEUE_FAILED ||
	    s == QUEUE_EXPIRED || s == QUEUE_CANCELLED;
}

const char *
queue_tlp_name(enum queue_tlp t)
{
	if ((unsigned)t > QUEUE_TLP_RED)
		return "?";
	return tlp_names[t];
}

int
queue_tlp_parse(const char *name, enum queue_tlp *t)
{
	for (int i = 0; i <= QUEUE_TLP_RED; i++)
		if (name != NULL && strcasecmp(name, tlp_names[i]) == 0) {
			*t = (enum queue_tlp)i;
			return 0;
		}
	return -1;
}

int64_t
queue_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- errors, statements, transactions ---------------------------------- */

const char *
queue_errmsg(const struct queue *q)
{
	return q != NULL ? q->err : "no queue";
}

int
queue_fail(struct queue *q, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q->err, sizeof(q->err), fmt, ap);
	va_end(ap);
	return rc;
}

/* SQLite reports a full disk met while opening or growing the -shm file as
 * a mere "disk I/O error": say what the system said. */
static const char *
db_enospc(sqlite3 *db)
{
	int e = sqlite3_system_errno(db);

	if (e == ENOSPC || e == EDQUOT)
		return " (the disk is full: no space left on device)";
	return "";
}

int
queue_db_fail(struct queue *q, const char *what)
{
	return queue_fail(q, QUEUE_ERR, "%s: %s%s", what, sqlite3_errmsg(q->db),
	    db_enospc(q->db));
}

sqlite3_stmt *
queue_st(struct queue *q, enum queue_stmt i)
{
	sqlite3_stmt *s = q->st[i];

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

void
queue_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Step a statement that returns no row; SQLITE_DONE or the error code. */
static int
step_done(struct queue *q, enum queue_stmt i)
{
	sqlite3_stmt *s = queue_st(q, i);
	int rc = sqlite3_step(s);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return rc;
	queue_done(s);
	return SQLITE_DONE;
}

int
queue_tx_begin(struct queue *q, const char *what)
{
	if (step_done(q, ST_BEGIN) != SQLITE_DONE) {
		queue_db_fail(q, what);
		queue_done(q->st[ST_BEGIN]);
		return QUEUE_ERR;
	}
	return QUEUE_OK;
}

void
queue_tx_rollback(struct queue *q)
{
	/* No statement may stay active across the rollback. */
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_reset(q->st[i]);
	/* SQLite may already have rolled back (SQLITE_FULL, SQLITE_IOERR). */
	if (!sqlite3_get_autocommit(q->db))
		step_done(q, ST_ROLLBACK);
	queue_done(q->st[ST_ROLLBACK]);
}

/* In debug builds with DENGON_DEBUG_INVARIANTS: check Q1-Q6, abort if
 * one is broken (a bug in dengon, or a hand-edited database). */
static void
debug_check(struct queue *q, const char *what)
{
#ifndef NDEBUG
	char saved[sizeof(q->err)];

	if (!q->check)
		return;
	memcpy(saved, q->err, sizeof(saved));
	if (queue_check_invariants(q) != QUEUE_OK) {
		fprintf(stderr, "queue %s: after %s: %s\n", q->path, what,
		    q->err);
		abort();
	}
	memcpy(q->err, saved, sizeof(saved));
#else
	(void)q;
	(void)what;
#endif
}

int
queue_tx_commit(struct queue *q, const char *what)
{
	if (step_done(q, ST_COMMIT) != SQLITE_DONE) {
		queue_db_fail(q, what);
		queue_done(q->st[ST_COMMIT]);
		queue_tx_rollback(q);
		return QUEUE_ERR;
	}
	debug_check(q, what);
	return QUEUE_OK;
}

int
queue_event_add(struct queue *q, int64_t at, const char *alert,
    int64_t delivery, const char *actor, const char *what, const char *why)
{
	sqlite3_stmt *s = queue_st(q, ST_EVENT_ADD);

	BIND_INT(s, 1, at);
	BIND_TEXT(s, 2, alert);
	if (delivery > 0)
		BIND_INT(s, 3, delivery);
	BIND_TEXT(s, 4, actor != NULL && *actor != '\0' ? actor : "-");
	BIND_TEXT(s, 5, what);
	BIND_TEXT(s, 6, why);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "recording an event");
	queue_done(s);
	return QUEUE_OK;
}

/* ---- opening ----------------------------------------------------------- */

/*
 * Create directory dir (and missing parents, 0755).  dir itself gets mode
 * 2770 and group gid (if not -1); see the file header for why.
 */
static int
make_dir(const char *dir, gid_t gid, int leaf, char *err, size_t errlen)
{
	char parent[PATH_MAX];
	struct stat sb;
	char *slash;

	if (stat(dir, &sb) == 0) {
		if (S_ISDIR(sb.st_mode))
			return 0;
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	if (errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (snprintf(parent, sizeof(parent), "%s", dir) >= (int)sizeof(parent)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	if ((slash = strrchr(parent, '/')) != NULL && slash != parent) {
		*slash = '\0';
		if (make_dir(parent, (gid_t)-1, 0, err, errlen) == -1)
			return -1;
	}
	if (mkdir(dir, leaf ? 0770 : 0755) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (!leaf)
		return 0;
	if ((gid != (gid_t)-1 && chown(dir, (uid_t)-1, gid) == -1) ||
	    chmod(dir, 02770) == -1) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* Create the database file (0660, group) and its directory if missing. */
static int
create_file(const char *path, const char *group, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	gid_t gid = (gid_t)-1;
	char *slash;
	int fd;

	if (group != NULL && *group != '\0') {
		struct group *gr = getgrnam(group);

		if (gr == NULL) {
			snprintf(err, errlen, "queue %s: unknown group '%s'",
			    path, group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		snprintf(err, errlen, "queue %s: path too long", path);
		return -1;
	}
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (make_dir(dir, gid, 1, err, errlen) == -1)
			return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
	if (fd == -1) {
		if (errno == EEXIST)
			return 0;	/* init is idempotent: leave it be */
		snprintf(err, errlen, "queue %s: %s", path, strerror(errno));
		return -1;
	}
	if ((gid != (gid_t)-1 && fchown(fd, (uid_t)-1, gid) == -1) ||
	    fchmod(fd, 0660) == -1) {
		snprintf(err, errlen, "queue %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/* Switch db to WAL; SQLite retries a busy lock within the busy timeout,
 * but a fresh file being set up by another program may still say busy. */
static int
set_wal(sqlite3 *db)
{
	for (int tries = 0; tries < 50; tries++) {
		sqlite3_stmt *s;
		int rc, wal = 0;

		if ((rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1,
		    &s, NULL)) == SQLITE_OK) {
			if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
				wal = strcasecmp((const char *)
				    sqlite3_column_text(s, 0), "wal") == 0;
				rc = SQLITE_OK;
			}
			sqlite3_finalize(s);
		}
		if (rc == SQLITE_OK)
			return wal ? 0 : -1;
		if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
			return -1;
		usleep(20000);
	}
	return -1;
}

struct queue *
queue_open(const char *path, const char *group, int flags, char *err,
    size_t errlen)
{
	static int memstatus_set;
	struct queue *q;
	const char *e;

	if (flags & QUEUE_OPEN_CREATE) {
		if (create_file(path, group, err, errlen) == -1)
			return NULL;
	} else if (access(path, F_OK) == -1) {
		if (errno == ENOENT)
			snprintf(err, errlen, "queue %s does not exist "
			    "(run 'dengon init')", path);
		else
			snprintf(err, errlen, "queue %s: %s", path,
			    strerror(errno));
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL ||
	    (q->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "queue %s: out of memory", path);
		free(q);
		return NULL;
	}
	/*
	 * No memory statistics (sqlite3_memory_used(), soft heap limits: we
	 * use neither): with them every allocation of SQLite's takes a global
	 * mutex, some 6% of a daemon's statement.  Only possible before SQLite
	 * is initialised in this process, so this is a no-op after the first.
	 */
	if (!memstatus_set) {
		memstatus_set = 1;
		(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	}
	/* Never SQLITE_OPEN_CREATE: only the code above creates the file. */
	if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK)
		goto dberr;
	/* SQLite quietly opens a file it may not write read-only. */
	if (sqlite3_db_readonly(q->db, "main") == 1) {
		snprintf(err, errlen, "queue %s: not writable by this user "
		    "(check its group and mode, and the directory's)", path);
		goto fail;
	}
	sqlite3_busy_timeout(q->db, BUSY_TIMEOUT_MS);
	if (set_wal(q->db) == -1) {
		if (sqlite3_errcode(q->db) == SQLITE_OK)
			snprintf(err, errlen, "queue %s: cannot switch to WAL "
			    "mode", path);
		else
			snprintf(err, errlen, "queue %s: %s", path,
			    sqlite3_errmsg(q->db));
		goto fail;
	}
	if (sqlite3_exec(q->db, "PRAGMA synchronous=FULL; "
	    "PRAGMA foreign_keys=ON", NULL, NULL, NULL) != SQLITE_OK)
		goto dberr;
	if (queue_schema_migrate(q->db, path, err, errlen) == -1)
		goto fail;
	/* Per connection, never written to disk: the targets of an accept. */
	if (sqlite3_exec(q->db, "CREATE TEMP TABLE IF NOT EXISTS target "
	    "(id TEXT PRIMARY KEY) WITHOUT ROWID", NULL, NULL, NULL) !=
	    SQLITE_OK)
		goto dberr;
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(q->db, queue_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &q->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "queue %s: preparing statement "
			    "%d: %s", path, i, sqlite3_errmsg(q->db));
			goto fail;
		}
	}
	e = getenv("DENGON_DEBUG_INVARIANTS");
	q->check = e != NULL && *e != '\0' && strcmp(e, "0") != 0;
	return q;
dberr:
	snprintf(err, errlen, "queue %s: %s%s", path,
	    q->db ? sqlite3_errmsg(q->db) : "out of memory",
	    q->db ? db_enospc(q->db) : "");
fail:
	queue_close(q);
	return NULL;
}

void
queue_close(struct queue *q)
{
	if (q == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	sqlite3_close(q->db);
	free(q->path);
	free(q);
}

/* ---- backup ------------------------------------------------------------ */

int
queue_backup(struct queue *q, const char *dest)
{
	sqlite3_backup *b;
	sqlite3 *bdb = NULL;
	int fd, rc;

	/* Never overwrite: the destination could be anything, even a queue. */
	fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd == -1)
		return queue_fail(q, QUEUE_ERR, "backup to %s: %s%s", dest,
		    strerror(errno), errno == EEXIST ? " (not overwritten)" :
		    "");
	if (fchmod(fd, 0600) == -1) {
		queue_fail(q, QUEUE_ERR, "backup to %s: %s", dest,
		    strerror(errno));
		close(fd);
		goto fail;
	}
	close(fd);
	if (sqlite3_open_v2(dest, &bdb, SQLITE_OPEN_READWRITE, NULL) !=
	    SQLITE_OK) {
		queue_fail(q, QUEUE_ERR, "backup to %s: %s", dest,
		    bdb ? sqlite3_errmsg(bdb) : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(bdb, BUSY_TIMEOUT_MS);
	sqlite3_exec(bdb, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	if ((b = sqlite3_backup_init(bdb, "main", q->db, "main")) == NULL) {
		queue_fail(q, QUEUE_ERR, "backup to %s: %s", dest,
		    sqlite3_errmsg(bdb));
		goto fail;
	}
	rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE) {
		queue_fail(q, QUEUE_ERR, "backup to %s: %s", dest,
		    sqlite3_errstr(rc));
		goto fail;
	}
	/* The copy is one self-contained file: no -wal beside it. */
	if (sqlite3_exec(bdb, "PRAGMA journal_mode=DELETE", NULL, NULL,
	    NULL) != SQLITE_OK) {
		queue_fail(q, QUEUE_ERR, "backup to %s: %s", dest,
		    sqlite3_errmsg(bdb));
		goto fail;
	}
	if (sqlite3_close(bdb) != SQLITE_OK) {
		queue_fail(q, QUEUE_ERR, "backup to %s: %s", dest,
		    sqlite3_errmsg(bdb));
		bdb = NULL;
		goto fail;
	}
	return QUEUE_OK;
fail:
	if (bdb != NULL)
		sqlite3_close(bdb);
	unlink(dest);
	return QUEUE_ERR;
}

/* ---- the contact directory --------------------------------------------- */

/* sqlite3_column_text() as the char * of struct contact (borrowed). */
static char *
col_str(sqlite3_stmt *s, int i)
{
	return (char *)(uintptr_t)sqlite3_column_text(s, i);
}

/* Add r's groups ("a;b") to recipient_group. */
static int
add_groups(struct queue *q, const struct contact *r)
{
	const char *p = r->groups, *e;

	while (p != NULL && *p != '\0') {
		size_t len;

		e = strchr(p, ';');
		len = e ? (size_t)(e - p) : strlen(p);
		while (len > 0 && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > 0) {
			sqlite3_stmt *s = queue_st(q, ST_RCPT_GROUP_ADD);

			sqlite3_bind_text(s, 1, p, (int)len, SQLITE_STATIC);
			BIND_TEXT(s, 2, r->id);
			if (sqlite3_step(s) != SQLITE_DONE)
				return queue_db_fail(q, "importing contacts");
			queue_done(s);
		}
		p = e ? e + 1 : NULL;
	}
	return QUEUE_OK;
}

int
queue_contacts_replace(struct queue *q, const struct contact_list *l,
    const char *actor)
{
	static const char what[] = "importing contacts";
	char why[64];
	int rc;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if (step_done(q, ST_RCPT_CLEAR) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	for (size_t i = 0; i < l->n; i++) {
		const struct contact *r = &l->v[i];
		sqlite3_stmt *s = queue_st(q, ST_RCPT_ADD);

		BIND_TEXT(s, 1, r->id);
		BIND_TEXT(s, 2, r->name);
		BIND_TEXT(s, 3, r->org);
		BIND_TEXT(s, 4, r->groups);
		BIND_TEXT(s, 5, r->mail);
		BIND_TEXT(s, 6, r->lgwan);
		BIND_TEXT(s, 7, r->fax);
		BIND_TEXT(s, 8, r->sms);
		BIND_TEXT(s, 9, r->policy);
		BIND_INT(s, 10, r->line);
		if ((rc = sqlite3_step(s)) != SQLITE_DONE) {
			if ((rc & 0xff) == SQLITE_CONSTRAINT)
				rc = queue_fail(q, QUEUE_INVALID, "%s: "
				    "recipient '%s' (line %d): %s", what,
				    r->id ? r->id : "", r->line,
				    sqlite3_errmsg(q->db));
			else
				rc = queue_db_fail(q, what);
			goto fail;
		}
		queue_done(s);
		if ((rc = add_groups(q, r)) != QUEUE_OK)
			goto fail;
	}
	snprintf(why, sizeof(why), "%zu recipients", l->n);
	if ((rc = queue_event_add(q, queue_now(), NULL, 0, actor,
	    "contacts replaced", why)) != QUEUE_OK)
		goto fail;
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}

int
queue_contacts_each(struct queue *q, const char *group,
    int (*cb)(const struct contact *c, void *arg), void *arg)
{
	sqlite3_stmt *s;
	int rc, ret = 0;

	s = queue_st(q, group ? ST_RCPT_EACH_GROUP : ST_RCPT_EACH);
	if (group != NULL)
		BIND_TEXT(s, 1, group);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct contact c = {
			.id = col_str(s, 0),
			.name = col_str(s, 1),
			.org = col_str(s, 2),
			.groups = col_str(s, 3),
			.mail = col_str(s, 4),
			.lgwan = col_str(s, 5),
			.fax = col_str(s, 6),
			.sms = col_str(s, 7),
			.policy = col_str(s, 8),
			.line = sqlite3_column_int(s, 9),
		};

		if ((ret = cb(&c, arg)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = queue_db_fail(q, "reading contacts");
	queue_done(s);
	return ret;
}

int64_t
queue_contacts_count(struct queue *q)
{
	sqlite3_stmt *s = queue_st(q, ST_RCPT_COUNT);
	int64_t n = -1;

	if (sqlite3_step(s) == SQLITE_ROW)
		n = COL_INT(s, 0);
	else
		queue_db_fail(q, "counting contacts");
	queue_done(s);
	return n;
}
