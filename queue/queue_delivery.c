/*
 * queue_delivery.c - the transitions of a delivery: confirmations, state
 * changes, and the attempts made for it.
 *
 * Each function here is one BEGIN IMMEDIATE transaction that reads the
 * delivery's state and writes the change with its event, so the check and
 * the write cannot be separated by another program's write.  The
 * transitions are those of queue.h (queue_transition_ok()); the trigger
 * delivery_q1 refuses any other, whoever writes.
 *
 * Confirmation by code: codes are 40 bits, so two deliveries of different
 * alerts share a code now and then over the years of a queue (about 50%
 * once it holds a million deliveries).  The rule: among the deliveries the
 * code matches, the one that is still open (pending, sent, delivered)
 * wins; with none open, the one that is not cancelled (a duplicate, or a
 * late confirmation); with exactly one match, that one (a cancelled one is
 * refused as cancelled).  Anything else is ambiguous and refused, with an
 * event, asking for the alert and recipient instead.  A code matching
 * nothing is refused, and recorded as an event and a bad_code row (who
 * tried what), committed, for throttling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/queue_impl.h"

#define MAX_MATCHES	8	/* deliveries sharing one code that we weigh */

static const char *const vias[] = {
	"phone", "fax", "mail", "sms", "relay", "other",
};

/* One delivery as found by id, recipient or code. */
struct dlv {
	int64_t		 id;
	char		 alert[41];
	char		 recipient[65];
	enum queue_state state;
};

/* Read the current row of a DLV_COLS statement into *d. */
static void
dlv_read(sqlite3_stmt *s, struct dlv *d)
{
	const char *st = COL_TEXT(s, 3);

	d->id = COL_INT(s, 0);
	snprintf(d->alert, sizeof(d->alert), "%s", COL_TEXT(s, 1));
	snprintf(d->recipient, sizeof(d->recipient), "%s", COL_TEXT(s, 2));
	if (st == NULL || queue_state_parse(st, &d->state) == -1)
		d->state = QUEUE_PENDING;	/* the CHECK makes this moot */
}

static int
is_open(enum queue_state s)
{
	return s == QUEUE_PENDING || s == QUEUE_SENT || s == QUEUE_DELIVERED;
}

/* Who a confirmation comes from, for the event log. */
static const char *
cf_actor(const struct queue_confirm *cf)
{
	if (cf->by != NULL && *cf->by != '\0')
		return cf->by;
	if (cf->origin != NULL && *cf->origin != '\0')
		return cf->origin;
	return cf->via;
}

/*
 * Refuse a confirmation: record the event (and, for a code that matches
 * nothing, a bad_code row), commit that, and return QUEUE_REFUSED with msg.
 */
static int
refuse(struct queue *q, const struct queue_confirm *cf, const struct dlv *d,
    const char *code, const char *why, const char *msg)
{
	static const char what[] = "recording a refused confirmation";
	int64_t now = queue_now();
	char text[512];

	snprintf(text, sizeof(text), "%s", msg);
	if (d == NULL && code != NULL) {
		sqlite3_stmt *s = queue_st(q, ST_BADCODE_ADD);

		BIND_TEXT(s, 1, cf->origin ? cf->origin : cf_actor(cf));
		BIND_TEXT(s, 2, code);
		BIND_INT(s, 3, now);
		if (sqlite3_step(s) != SQLITE_DONE) {
			queue_db_fail(q, what);
			queue_tx_rollback(q);
			return QUEUE_ERR;
		}
		queue_done(s);
	}
	if (queue_event_add(q, now, d ? d->alert : NULL, d ? d->id : 0,
	    cf_actor(cf), "confirmation refused", why) != QUEUE_OK) {
		queue_tx_rollback(q);
		return QUEUE_ERR;
	}
	if (queue_tx_commit(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	return queue_fail(q, QUEUE_REFUSED, "%s", text);
}

/* Find the delivery named by (alert, recipient), inside the transaction. */
static int
find_by_recipient(struct queue *q, const struct queue_confirm *cf,
    struct dlv *d)
{
	sqlite3_stmt *s = queue_st(q, ST_DLV_BY_RCPT);
	int rc;

	BIND_TEXT(s, 1, cf->alert);
	BIND_TEXT(s, 2, cf->recipient);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		dlv_read(s, d);
		queue_done(s);
		return QUEUE_OK;
	}
	if (rc != SQLITE_DONE)
		return queue_db_fail(q, "finding the delivery");
	queue_done(s);
	s = queue_st(q, ST_ALERT_EXISTS);
	BIND_TEXT(s, 1, cf->alert);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW && rc != SQLITE_DONE)
		return queue_db_fail(q, "finding the delivery");
	queue_done(s);
	if (rc == SQLITE_DONE)
		return queue_fail(q, QUEUE_NOTFOUND, "unknown alert '%s'",
		    cf->alert);
	return queue_fail(q, QUEUE_NOTFOUND, "alert %s has no recipient '%s'",
	    cf->alert, cf->recipient);
}

/*
 * Find the delivery a code names, by the rule in the file header.  Returns
 * QUEUE_OK with *d, QUEUE_REFUSED (already committed and reported), or
 * QUEUE_ERR.
 */
static int
find_by_code(struct queue *q, const struct queue_confirm *cf,
    const char *code, struct dlv *d)
{
	struct dlv m[MAX_MATCHES];
	char fmt[CODE_LEN + 2], why[256], msg[256];
	sqlite3_stmt *s = queue_st(q, ST_DLV_BY_CODE);
	int rc, n = 0, nopen = 0, nlive = 0, iopen = -1, ilive = -1;

	BIND_TEXT(s, 1, code);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < MAX_MATCHES)
		dlv_read(s, &m[n++]);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return queue_db_fail(q, "finding the delivery");
	queue_done(s);
	code_format(code, fmt);
	if (n == 0) {
		snprintf(why, sizeof(why), "code %s via %s%s%s matches no "
		    "delivery", fmt, cf->via, cf->origin ? " from " : "",
		    cf->origin ? cf->origin : "");
		snprintf(msg, sizeof(msg), "code %s matches no delivery", fmt);
		return refuse(q, cf, NULL, code, why, msg);
	}
	for (int i = 0; i < n; i++) {
		if (is_open(m[i].state)) {
			nopen++;
			iopen = i;
		}
		if (m[i].state != QUEUE_CANCELLED) {
			nlive++;
			ilive = i;
		}
	}
	if (nopen == 1)
		*d = m[iopen];
	else if (nopen == 0 && nlive == 1)
		*d = m[ilive];
	else if (n == 1)
		*d = m[0];		/* a cancelled delivery: refused later */
	else {
		snprintf(why, sizeof(why), "code %s via %s matches %d "
		    "deliveries", fmt, cf->via, n);
		snprintf(msg, sizeof(msg), "code %s matches %d deliveries; "
		    "confirm by alert and recipient", fmt, n);
		return refuse(q, cf, NULL, NULL, why, msg);
	}
	return QUEUE_OK;
}

/* 1 if a and b are the same address or number (ASCII case ignored). */
static int
same_address(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}

/*
 * A confirmation by mail or SMS from an address that is not the
 * recipient's is accepted, but marked (it may be a colleague - or a
 * forwarded message): confirmation row `row` of delivery `id`.
 */
static int
mark_foreign(struct queue *q, const struct queue_confirm *cf, int64_t id,
    int64_t row, int *foreign)
{
	sqlite3_stmt *s;
	int rc, own;

	*foreign = 0;
	if (cf->origin == NULL || cf->via == NULL ||
	    (strcmp(cf->via, "mail") != 0 && strcmp(cf->via, "sms") != 0))
		return QUEUE_OK;
	s = queue_st(q, ST_DLV_ADDR);
	BIND_INT(s, 1, id);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW)
		return queue_db_fail(q, "reading a delivery's addresses");
	own = same_address(cf->origin, COL_TEXT(s, 0)) ||
	    same_address(cf->origin, COL_TEXT(s, 1)) ||
	    same_address(cf->origin, COL_TEXT(s, 2));
	queue_done(s);
	if (own)
		return QUEUE_OK;
	s = queue_st(q, ST_CONF_FOREIGN);
	BIND_INT(s, 1, row);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "marking a confirmation");
	queue_done(s);
	*foreign = 1;
	return QUEUE_OK;
}

int
queue_confirm(struct queue *q, const struct queue_confirm *cf,
    struct queue_confirm_result *res)
{
	static const char what[] = "recording a confirmation";
	char code[CODE_LEN + 1], why[512];
	struct dlv d;
	sqlite3_stmt *s;
	int64_t now;
	size_t i;
	int rc, late = 0, dup = 0;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < sizeof(vias) / sizeof(vias[0]); i++)
		if (cf->via != NULL && strcmp(cf->via, vias[i]) == 0)
			break;
	if (i == sizeof(vias) / sizeof(vias[0]))
		return queue_fail(q, QUEUE_INVALID, "unknown confirmation "
		    "channel '%.32s' (phone, fax, mail, sms, relay, other)",
		    cf->via ? cf->via : "");
	if (cf->code != NULL) {
		if (code_normalise(cf->code, code) == -1)
			return queue_fail(q, QUEUE_INVALID, "not a "
			    "confirmation code: expected 8 characters of "
			    "0-9 A-Z (no U), as XXXX-XXXX");
	} else if (cf->alert == NULL || cf->recipient == NULL)
		return queue_fail(q, QUEUE_INVALID, "a confirmation needs an "
		    "alert and a recipient, or a code");

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if (cf->inbox != NULL && cf->inbound != NULL) {
		/* An inbound message is processed once, whatever it proves. */
		rc = queue_inbound_add(q, cf->inbox, cf->inbound, "reply",
		    "confirmation");
		if (rc == 0) {
			queue_tx_rollback(q);
			res->already = 1;
			return QUEUE_OK;
		}
		if (rc < 0)
			goto fail;
	}
	rc = cf->code != NULL ? find_by_code(q, cf, code, &d) :
	    find_by_recipient(q, cf, &d);
	if (rc == QUEUE_REFUSED)
		return rc;		/* committed by refuse() */
	if (rc != QUEUE_OK)
		goto fail;
	res->delivery = d.id;
	snprintf(res->alert, sizeof(res->alert), "%s", d.alert);
	snprintf(res->recipient, sizeof(res->recipient), "%s", d.recipient);
	if (d.state == QUEUE_CANCELLED) {
		char msg[256];

		snprintf(why, sizeof(why), "via %s: the delivery was "
		    "cancelled", cf->via);
		snprintf(msg, sizeof(msg), "alert %s was cancelled for "
		    "recipient %s: not confirmed", d.alert, d.recipient);
		return refuse(q, cf, &d, NULL, why, msg);
	}
	now = queue_now();
	dup = d.state == QUEUE_CONFIRMED;
	late = d.state == QUEUE_FAILED || d.state == QUEUE_EXPIRED;
	s = queue_st(q, ST_CONF_ADD);
	BIND_INT(s, 1, d.id);
	BIND_TEXT(s, 2, cf->via);
	BIND_TEXT(s, 3, cf->origin);
	BIND_TEXT(s, 4, cf->by);
	BIND_TEXT(s, 5, cf->note);
	BIND_INT(s, 6, now);
	BIND_TEXT(s, 7, cf->evidence);
	BIND_INT(s, 8, dup);
	BIND_INT(s, 9, late);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	if ((rc = mark_foreign(q, cf, d.id, sqlite3_last_insert_rowid(q->db),
	    &res->foreign)) != QUEUE_OK)
		goto fail;
	if (!dup) {
		s = queue_st(q, ST_DLV_SET_STATE);
		BIND_INT(s, 1, d.id);
		BIND_TEXT(s, 2, queue_state_name(QUEUE_CONFIRMED));
		BIND_INT(s, 3, 1);
		BIND_INT(s, 4, now);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = queue_db_fail(q, what);
			goto fail;
		}
		queue_done(s);
	}
	snprintf(why, sizeof(why), "via %s%s%s%s%s%s%s (was %s)", cf->via,
	    cf->origin ? " from " : "", cf->origin ? cf->origin : "",
	    cf->by ? " by " : "", cf->by ? cf->by : "",
	    cf->note ? ": " : "", cf->note ? cf->note : "",
	    queue_state_name(d.state));
	if ((rc = queue_event_add(q, now, d.alert, d.id, cf_actor(cf),
	    dup ? "confirmed again" : late ? "confirmed late" : "confirmed",
	    why)) != QUEUE_OK)
		goto fail;
	if (queue_tx_commit(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	res->duplicate = dup;
	res->late = late;
	return QUEUE_OK;
fail:
	queue_tx_rollback(q);
	return rc;
}

/* Read delivery id into *d inside the transaction; NOTFOUND if none. */
static int
find_by_id(struct queue *q, int64_t id, struct dlv *d)
{
	sqlite3_stmt *s = queue_st(q, ST_DLV_BY_ID);
	int rc;

	BIND_INT(s, 1, id);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		dlv_read(s, d);
		queue_done(s);
		return QUEUE_OK;
	}
	if (rc != SQLITE_DONE)
		return queue_db_fail(q, "finding the delivery");
	queue_done(s);
	return queue_fail(q, QUEUE_NOTFOUND, "unknown delivery %lld",
	    (long long)id);
}

int
queue_delivery_set_state(struct queue *q, int64_t delivery,
    enum queue_state to, const char *actor, const char *why)
{
	static const char what[] = "changing a delivery's state";
	char text[512];
	struct dlv d;
	sqlite3_stmt *s;
	int64_t now;
	int rc;

	if ((unsigned)to >= QUEUE_NSTATES)
		return queue_fail(q, QUEUE_INVALID, "unknown state %d", to);
	if (to == QUEUE_CONFIRMED)
		return queue_fail(q, QUEUE_INVALID, "delivery %lld: only a "
		    "confirmation confirms (queue_confirm)", (long long)delivery);
	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if ((rc = find_by_id(q, delivery, &d)) != QUEUE_OK)
		goto fail;
	if (!queue_transition_ok(d.state, to)) {
		rc = queue_fail(q, QUEUE_REFUSED, "delivery %lld: %s -> %s is "
		    "not allowed", (long long)delivery,
		    queue_state_name(d.state), queue_state_name(to));
		goto fail;
	}
	now = queue_now();
	s = queue_st(q, ST_DLV_SET_STATE);
	BIND_INT(s, 1, delivery);
	BIND_TEXT(s, 2, queue_state_name(to));
	BIND_INT(s, 3, queue_state_final(to));		/* Q2 */
	BIND_INT(s, 4, now);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	snprintf(text, sizeof(text), "%s (was %s)", why ? why : "-",
	    queue_state_name(d.state));
	if ((rc = queue_event_add(q, now, d.alert, d.id, actor,
	    queue_state_name(to), text)) != QUEUE_OK)
		goto fail;
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}

int
queue_attempt_start(struct queue *q, int64_t delivery, const char *channel,
    const char *address, int64_t *attempt)
{
	static const char what[] = "recording an attempt";
	struct dlv d;
	sqlite3_stmt *s;
	int rc;

	if (channel == NULL || *channel == '\0' || address == NULL ||
	    *address == '\0')
		return queue_fail(q, QUEUE_INVALID, "%s: no channel or "
		    "address", what);
	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if ((rc = find_by_id(q, delivery, &d)) != QUEUE_OK)
		goto fail;
	if (queue_state_final(d.state)) {
		rc = queue_fail(q, QUEUE_REFUSED, "delivery %lld is %s",
		    (long long)delivery, queue_state_name(d.state));
		goto fail;
	}
	s = queue_st(q, ST_ATT_ADD);
	BIND_INT(s, 1, delivery);
	BIND_TEXT(s, 2, channel);
	BIND_TEXT(s, 3, address);
	BIND_INT(s, 4, queue_now());
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	if (attempt != NULL)
		*attempt = (int64_t)sqlite3_last_insert_rowid(q->db);
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}

int
queue_attempt_finish(struct queue *q, int64_t attempt, const char *outcome,
    const char *evidence, const char *error)
{
	static const char what[] = "recording an attempt's outcome";
	sqlite3_stmt *s;
	int rc;

	if (outcome == NULL || (strcmp(outcome, "ok") != 0 &&
	    strcmp(outcome, "tempfail") != 0 &&
	    strcmp(outcome, "permfail") != 0))
		return queue_fail(q, QUEUE_INVALID, "%s: outcome must be ok, "
		    "tempfail or permfail", what);
	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	s = queue_st(q, ST_ATT_GET);
	BIND_INT(s, 1, attempt);
	if ((rc = sqlite3_step(s)) == SQLITE_DONE) {
		rc = queue_fail(q, QUEUE_NOTFOUND, "unknown attempt %lld",
		    (long long)attempt);
		goto fail;
	}
	if (rc != SQLITE_ROW) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	if (sqlite3_column_type(s, 1) != SQLITE_NULL) {
		rc = queue_fail(q, QUEUE_REFUSED, "attempt %lld already has "
		    "an outcome", (long long)attempt);
		goto fail;
	}
	queue_done(s);
	s = queue_st(q, ST_ATT_FINISH);
	BIND_INT(s, 1, attempt);
	BIND_INT(s, 2, queue_now());
	BIND_TEXT(s, 3, outcome);
	BIND_TEXT(s, 4, evidence);
	BIND_TEXT(s, 5, error);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}
