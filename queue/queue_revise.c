/*
 * queue_revise.c - an alert after its acceptance: a new revision (update)
 * or its cancellation.
 *
 * Promises (queue.h Q6): nothing accepted is rewritten - an update adds a
 * revision, a cancel moves deliveries to their final state; each is one
 * transaction with its event.
 */
#include <stdio.h>
#include <string.h>

#include "queue/queue_impl.h"

/* Inside a transaction: the current revision of alert (and its subject,
 * into subject[len] when subject is not NULL); QUEUE_NOTFOUND if none. */
static int
current_revision(struct queue *q, const char *alert, const char *what,
    int *rev, char *subject, size_t len)
{
	sqlite3_stmt *s = queue_st(q, ST_REV_CURRENT);
	int rc;

	BIND_TEXT(s, 1, alert);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		queue_done(s);
		return rc == SQLITE_DONE ? queue_fail(q, QUEUE_NOTFOUND,
		    "unknown alert '%s'", alert) : queue_db_fail(q, what);
	}
	*rev = (int)COL_INT(s, 0);
	if (subject != NULL)
		snprintf(subject, len, "%s", COL_TEXT(s, 1));
	queue_done(s);
	return QUEUE_OK;
}

/* Run st (?1 alert, ?2 now) over the alert's deliveries; *n changed. */
static int
deliveries_change(struct queue *q, enum queue_stmt st, const char *alert,
    int64_t now, const char *what, int64_t *n)
{
	sqlite3_stmt *s = queue_st(q, st);

	BIND_TEXT(s, 1, alert);
	BIND_INT(s, 2, now);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, what);
	queue_done(s);
	*n = sqlite3_changes(q->db);
	return QUEUE_OK;
}

/* Run st (?1 alert, ?2 now, ?3 revision, ?4 reason) to add notices for
 * the alert's recipients already reached; *n added. */
static int
notices_add(struct queue *q, enum queue_stmt st, const char *alert,
    int64_t now, int rev, const char *reason, const char *what, int64_t *n)
{
	sqlite3_stmt *s = queue_st(q, st);

	BIND_TEXT(s, 1, alert);
	BIND_INT(s, 2, now);
	BIND_INT(s, 3, rev);
	if (reason != NULL)
		BIND_TEXT(s, 4, reason);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, what);
	queue_done(s);
	*n = sqlite3_changes(q->db);
	return QUEUE_OK;
}

int
queue_alert_update(struct queue *q, const char *alert, const char *subject,
    const char *body, const char *actor, int64_t now, int *revision,
    int64_t *rearmed)
{
	static const char what[] = "updating an alert";
	char prev[1024] = "", why[256];
	sqlite3_stmt *s;
	int64_t notices;
	int rc, rev;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if ((rc = current_revision(q, alert, what, &rev, prev,
	    sizeof(prev))) != QUEUE_OK)
		goto fail;
	rev++;
	s = queue_st(q, ST_REV_ADD);
	BIND_TEXT(s, 1, alert);
	BIND_INT(s, 2, rev);
	BIND_TEXT(s, 3, subject != NULL ? subject : prev);
	BIND_TEXT(s, 4, body);
	BIND_INT(s, 5, now);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	if ((rc = deliveries_change(q, ST_DLV_REARM, alert, now, what,
	    rearmed)) != QUEUE_OK)
		goto fail;
	if ((rc = notices_add(q, ST_NOTICE_ADD_UPDATE, alert, now, rev, NULL,
	    what, &notices)) != QUEUE_OK)
		goto fail;
	*revision = rev;
	snprintf(why, sizeof(why), "revision %d; sent again now to %lld "
	    "recipients already reached, and as a notice on %lld channels "
	    "of recipients who had confirmed", rev, (long long)*rearmed,
	    (long long)notices);
	if ((rc = queue_event_add(q, now, alert, 0, actor, "updated", why)) !=
	    QUEUE_OK)
		goto fail;
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}

int
queue_alert_cancel(struct queue *q, const char *alert, const char *reason,
    const char *actor, int64_t now, int64_t *n)
{
	static const char what[] = "cancelling an alert";
	char why[640];
	int64_t notices;
	int rc, rev;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if ((rc = current_revision(q, alert, what, &rev, NULL, 0)) !=
	    QUEUE_OK)
		goto fail;
	/* the notices first: they need the states before the cancel */
	if ((rc = notices_add(q, ST_NOTICE_ADD, alert, now, rev, reason, what,
	    &notices)) != QUEUE_OK)
		goto fail;
	if ((rc = deliveries_change(q, ST_DLV_CANCEL, alert, now, what,
	    n)) != QUEUE_OK)
		goto fail;
	snprintf(why, sizeof(why), "%lld deliveries cancelled; %lld "
	    "cancellation notices to send%s%.400s", (long long)*n,
	    (long long)notices, reason ? ": " : "", reason ? reason : "");
	if ((rc = queue_event_add(q, now, alert, 0, actor, "cancelled", why)) !=
	    QUEUE_OK)
		goto fail;
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}
