/*
 * queue_inbound.c - what comes back by mail: finding the delivery a code
 * or a Message-ID names, delivery reports (DSN) and read receipts (MDN) as
 * evidence, wrong codes for throttling, and the record of every inbound
 * message processed.
 *
 * Promise: an inbound message is processed once.  Its record (inbox,
 * Message-ID) is written in the same transaction as what it proved, so a
 * message read again - after a crash before the reader moved it away, or
 * from a second copy - changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include "queue/queue_impl.h"

int
queue_inbound_add(struct queue *q, const char *inbox, const char *message_id,
    const char *kind, const char *result)
{
	sqlite3_stmt *s = queue_st(q, ST_INBOUND_ADD);

	BIND_TEXT(s, 1, inbox);
	BIND_TEXT(s, 2, message_id);
	BIND_TEXT(s, 3, kind);
	BIND_TEXT(s, 4, result);
	BIND_INT(s, 5, queue_now());
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "recording an inbound message");
	queue_done(s);
	return sqlite3_changes(q->db) > 0 ? 1 : 0;
}

/* Run a two-column (alert, recipient) lookup bound to one text. */
static int
find_pair(struct queue *q, enum queue_stmt st, const char *key,
    char alert[41], char recipient[65])
{
	sqlite3_stmt *s = queue_st(q, st);
	int rc;

	BIND_TEXT(s, 1, key);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		snprintf(alert, 41, "%s", COL_TEXT(s, 0));
		snprintf(recipient, 65, "%s", COL_TEXT(s, 1));
	} else if (rc != SQLITE_DONE)
		return queue_db_fail(q, "finding a delivery");
	queue_done(s);
	return rc == SQLITE_ROW ? QUEUE_OK : QUEUE_NOTFOUND;
}

int
queue_code_find(struct queue *q, const char *code, char alert[41],
    char recipient[65])
{
	return find_pair(q, ST_CODE_FIND, code, alert, recipient);
}

int
queue_token_find(struct queue *q, const char *token, char alert[41],
    char recipient[65])
{
	return find_pair(q, ST_TOKEN_FIND, token, alert, recipient);
}

int
queue_bad_code(struct queue *q, const char *origin, const char *code,
    const char *why, const char *inbox, const char *inbound)
{
	static const char what[] = "recording a wrong code";
	sqlite3_stmt *s;
	int64_t now = queue_now();
	int rc;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	/* the message that carried it, once: read again after a crash, it
	 * counts no second time */
	if (inbox != NULL && (rc = queue_inbound_add(q, inbox, inbound,
	    "reply", why)) <= 0) {
		queue_tx_rollback(q);
		return rc == 0 ? QUEUE_OK : QUEUE_ERR;
	}
	s = queue_st(q, ST_BADCODE_ADD);
	BIND_TEXT(s, 1, origin);
	BIND_TEXT(s, 2, code);
	BIND_INT(s, 3, now);
	if (sqlite3_step(s) != SQLITE_DONE)
		goto fail;
	queue_done(s);
	if (queue_event_add(q, now, NULL, 0, origin, "confirmation refused",
	    why) != QUEUE_OK) {
		queue_tx_rollback(q);
		return QUEUE_ERR;
	}
	return queue_tx_commit(q, what);
fail:
	queue_db_fail(q, what);
	queue_tx_rollback(q);
	return QUEUE_ERR;
}

int
queue_bad_code_count(struct queue *q, const char *origin, int64_t since,
    int64_t *n)
{
	sqlite3_stmt *s = queue_st(q, ST_BADCODE_COUNT);

	*n = 0;
	BIND_TEXT(s, 1, origin);
	BIND_INT(s, 2, since);
	if (sqlite3_step(s) != SQLITE_ROW)
		return queue_db_fail(q, "counting wrong codes");
	*n = COL_INT(s, 0);
	queue_done(s);
	return QUEUE_OK;
}

int
queue_inbound_seen(struct queue *q, const char *inbox, const char *message_id)
{
	sqlite3_stmt *s = queue_st(q, ST_INBOUND_SEEN);
	int rc;

	BIND_TEXT(s, 1, inbox);
	BIND_TEXT(s, 2, message_id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return queue_db_fail(q, "looking up an inbound message");
	queue_done(s);
	return rc == SQLITE_ROW;
}

int
queue_inbound_record(struct queue *q, const char *inbox,
    const char *message_id, const char *kind, const char *result)
{
	static const char what[] = "recording an inbound message";
	int rc;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if ((rc = queue_inbound_add(q, inbox, message_id, kind, result)) < 0) {
		queue_tx_rollback(q);
		return QUEUE_ERR;
	}
	return queue_tx_commit(q, what);
}

struct dsn_ctx {
	struct queue		*q;
	struct queue_outcome	 o;
	queue_plan_fn		 fn;
	void			*arg;
	int			 delivered;
	const char		*evidence;
	int64_t			 now;
};

/* queue_work_get() callback: the delivery of a DSN'd attempt. */
static int
dsn_work(const struct queue_work *w, void *arg)
{
	struct dsn_ctx *ctx = arg;
	struct queue_plan p;
	sqlite3_stmt *s;

	if (queue_state_final(w->state))
		return QUEUE_OK;
	if (ctx->delivered) {
		if (w->state == QUEUE_DELIVERED)
			return QUEUE_OK;
		if (w->state == QUEUE_PENDING) {
			/* a DSN overtook our record of the 250: sent first */
			s = queue_st(ctx->q, ST_DLV_SET_STATE);
			BIND_INT(s, 1, w->delivery);
			BIND_TEXT(s, 2, "sent");
			BIND_INT(s, 3, 0);
			BIND_INT(s, 4, ctx->now);
			if (sqlite3_step(s) != SQLITE_DONE)
				return queue_db_fail(ctx->q, "recording a DSN");
			queue_done(s);
		}
		s = queue_st(ctx->q, ST_DLV_SET_STATE);
		BIND_INT(s, 1, w->delivery);
		BIND_TEXT(s, 2, "delivered");
		BIND_INT(s, 3, 0);
		BIND_INT(s, 4, ctx->now);
		if (sqlite3_step(s) != SQLITE_DONE)
			return queue_db_fail(ctx->q, "recording a DSN");
		queue_done(s);
		return queue_event_add(ctx->q, ctx->now, w->alert, w->delivery,
		    "dsn", "delivered", ctx->evidence);
	}
	/* failed: plan as for a permfail outcome of that attempt */
	memset(&p, 0, sizeof(p));
	p.state = w->state;
	p.step = w->step;
	p.round = w->round;
	p.tries = w->tries;
	p.next_action = w->next_action;
	ctx->fn(w, &ctx->o, &p, ctx->arg);
	if (p.state != w->state && !queue_transition_ok(w->state, p.state))
		return queue_fail(ctx->q, QUEUE_REFUSED, "delivery %lld: %s -> "
		    "%s is not allowed", (long long)w->delivery,
		    queue_state_name(w->state), queue_state_name(p.state));
	s = queue_st(ctx->q, ST_PLAN_SET);
	BIND_INT(s, 1, w->delivery);
	BIND_TEXT(s, 2, queue_state_name(p.state));
	BIND_INT(s, 3, p.step);
	BIND_INT(s, 4, p.round);
	BIND_INT(s, 5, p.tries);
	if (p.next_action != 0 && !queue_state_final(p.state))
		BIND_INT(s, 6, p.next_action);
	BIND_INT(s, 7, ctx->now);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(ctx->q, "planning after a DSN");
	queue_done(s);
	return queue_event_add(ctx->q, ctx->now, w->alert, w->delivery, "dsn",
	    p.state != w->state ? queue_state_name(p.state) : "bounced",
	    ctx->evidence);
}

int
queue_dsn(struct queue *q, int64_t attempt, const char *action,
    const char *status, const char *diagnostic, const char *inbox,
    const char *inbound, queue_plan_fn fn, void *arg, int *already)
{
	static const char what[] = "recording a delivery report";
	struct dsn_ctx ctx;
	char ev[512];
	sqlite3_stmt *s;
	int64_t delivery;
	int rc;

	*already = 0;
	memset(&ctx, 0, sizeof(ctx));
	snprintf(ev, sizeof(ev), "DSN %s %s%s%s", action ? action : "?",
	    status ? status : "", diagnostic ? " " : "",
	    diagnostic ? diagnostic : "");
	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if ((rc = queue_inbound_add(q, inbox, inbound, "dsn", ev)) <= 0) {
		queue_tx_rollback(q);
		*already = rc == 0;
		return rc == 0 ? QUEUE_OK : QUEUE_ERR;
	}
	s = queue_st(q, ST_ATT_OF);
	BIND_INT(s, 1, attempt);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		queue_done(s);
		rc = rc == SQLITE_DONE ? queue_fail(q, QUEUE_NOTFOUND,
		    "no attempt %lld", (long long)attempt) :
		    queue_db_fail(q, what);
		goto fail;
	}
	delivery = COL_INT(s, 0);
	queue_done(s);
	s = queue_st(q, ST_ATT_DSN);
	BIND_INT(s, 1, attempt);
	BIND_TEXT(s, 2, ev);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	ctx.q = q;
	ctx.fn = fn;
	ctx.arg = arg;
	ctx.evidence = ev;
	ctx.now = queue_now();
	ctx.o.attempt = attempt;
	ctx.o.outcome = "permfail";
	ctx.o.evidence = ev;
	ctx.o.error = diagnostic;
	if (action != NULL && strcmp(action, "delivered") == 0)
		ctx.delivered = 1;
	else if (action != NULL && strcmp(action, "failed") == 0) {
		s = queue_st(q, ST_ATT_PERM);
		BIND_INT(s, 1, attempt);
		BIND_TEXT(s, 2, ev);
		BIND_INT(s, 3, ctx.now);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = queue_db_fail(q, what);
			goto fail;
		}
		queue_done(s);
	} else
		return queue_tx_commit(q, what);	/* evidence only */
	if ((rc = queue_work_get(q, delivery, dsn_work, &ctx)) != QUEUE_OK)
		goto fail;
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}

int
queue_mdn(struct queue *q, const char *token, const char *disposition,
    const char *inbox, const char *inbound, int *already)
{
	static const char what[] = "recording a read receipt";
	sqlite3_stmt *s;
	char why[128];
	int64_t now = queue_now(), id;
	int rc;

	*already = 0;
	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	snprintf(why, sizeof(why), "MDN: %s", disposition ? disposition : "?");
	if ((rc = queue_inbound_add(q, inbox, inbound, "mdn", why)) <= 0) {
		queue_tx_rollback(q);
		*already = rc == 0;
		return rc == 0 ? QUEUE_OK : QUEUE_ERR;
	}
	s = queue_st(q, ST_TOKEN_FIND);
	BIND_TEXT(s, 1, token);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		queue_done(s);
		rc = rc == SQLITE_DONE ? queue_fail(q, QUEUE_NOTFOUND,
		    "no delivery for that Message-ID") : queue_db_fail(q, what);
		goto fail;
	}
	char alert[41];
	snprintf(alert, sizeof(alert), "%s", COL_TEXT(s, 0));
	queue_done(s);
	/* the delivery's id by (alert, recipient) is one more lookup: the
	 * token is unique, so read it directly */
	s = queue_st(q, ST_DLV_BY_TOKEN_ID);
	BIND_TEXT(s, 1, token);
	if (sqlite3_step(s) != SQLITE_ROW) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	id = COL_INT(s, 0);
	queue_done(s);
	if (disposition != NULL && strcmp(disposition, "displayed") == 0) {
		s = queue_st(q, ST_DLV_DISPLAYED);
		BIND_INT(s, 1, id);
		BIND_INT(s, 2, now);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = queue_db_fail(q, what);
			goto fail;
		}
		queue_done(s);
	}
	if ((rc = queue_event_add(q, now, alert, id, "mdn", "read receipt",
	    why)) != QUEUE_OK)
		goto fail;
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}

int
queue_sms_part_add(struct queue *q, int64_t attempt, const char *device,
    const char *number, int seq, int total, int mr, int64_t now)
{
	sqlite3_stmt *s = queue_st(q, ST_SMS_PART_ADD);

	BIND_INT(s, 1, attempt);
	BIND_TEXT(s, 2, device);
	BIND_TEXT(s, 3, number);
	BIND_INT(s, 4, seq);
	BIND_INT(s, 5, total);
	BIND_INT(s, 6, mr);
	BIND_INT(s, 7, now);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "recording an SMS part");
	queue_done(s);
	return QUEUE_OK;
}

int
queue_sms_report(struct queue *q, const char *device, int mr,
    const char *number, int st, int64_t now, int64_t *attempt, int *seq,
    int *total, int *delivered)
{
	static const char what[] = "recording an SMS status report";
	sqlite3_stmt *s;
	int rc;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	s = queue_st(q, ST_SMS_PART_FIND);
	BIND_TEXT(s, 1, device);
	BIND_INT(s, 2, mr);
	BIND_TEXT(s, 3, number);
	BIND_INT(s, 4, now - 7 * 24 * 3600 * 1000LL);
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		queue_done(s);
		rc = rc == SQLITE_DONE ? queue_fail(q, QUEUE_NOTFOUND,
		    "no SMS part with reference %d on %s", mr, device) :
		    queue_db_fail(q, what);
		goto fail;
	}
	*attempt = COL_INT(s, 0);
	*seq = (int)COL_INT(s, 1);
	*total = (int)COL_INT(s, 2);
	queue_done(s);
	s = queue_st(q, ST_SMS_PART_SET);
	BIND_INT(s, 1, *attempt);
	BIND_INT(s, 2, *seq);
	BIND_INT(s, 3, st);
	BIND_INT(s, 4, now);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	s = queue_st(q, ST_SMS_PART_COUNT);
	BIND_INT(s, 1, *attempt);
	if (sqlite3_step(s) != SQLITE_ROW) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	*delivered = (int)COL_INT(s, 0);
	queue_done(s);
	return queue_tx_commit(q, what);
fail:
	queue_tx_rollback(q);
	return rc;
}
