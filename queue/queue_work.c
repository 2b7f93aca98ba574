/*
 * queue_work.c - the daemon's side of the queue: finding due work,
 * claiming it as attempts in flight, recording outcomes with the
 * scheduler's plan, recovering after a crash, and channel health.
 *
 * The scheduler's decisions (relay/sched.c) are taken inside the
 * transaction that records an outcome, on the delivery as it is in the
 * database at that moment: a confirmation recorded by the CLI a moment
 * earlier is never overwritten by a stale plan.
 *
 * Promises: a claim and its attempts are one transaction; a batch of
 * outcomes (with the channel health its sessions left) is one transaction; an attempt in flight when a process died is
 * finished as tempfail by queue_recover() and retried (at-least-once).
 */
#include <stdlib.h>
#include <string.h>

#include "queue/queue_impl.h"

/* Read the columns of WORK_SELECT (queue.c) into w; strings borrowed. */
static void
work_read(sqlite3_stmt *s, struct queue_work *w)
{
	memset(w, 0, sizeof(*w));
	w->delivery = COL_INT(s, 0);
	w->alert = COL_TEXT(s, 1);
	w->recipient = COL_TEXT(s, 2);
	w->name = COL_TEXT(s, 3);
	w->org = COL_TEXT(s, 4);
	w->mail = COL_TEXT(s, 5);
	w->lgwan = COL_TEXT(s, 6);
	w->fax = COL_TEXT(s, 7);
	w->sms = COL_TEXT(s, 8);
	w->policy = COL_TEXT(s, 9);
	w->code = COL_TEXT(s, 10);
	w->token = COL_TEXT(s, 11);
	if (queue_state_parse(COL_TEXT(s, 12), &w->state) == -1)
		w->state = QUEUE_PENDING;
	w->step = (int)COL_INT(s, 13);
	w->round = (int)COL_INT(s, 14);
	w->tries = (int)COL_INT(s, 15);
	w->next_action = COL_INT(s, 16);
	w->expires = COL_INT(s, 17);
	w->created = COL_INT(s, 18);
	if (queue_tlp_parse(COL_TEXT(s, 19), &w->tlp) == -1)
		w->tlp = QUEUE_TLP_GREEN;
	w->drill = (int)COL_INT(s, 20);
	w->revision = (int)COL_INT(s, 21);
	w->subject = COL_TEXT(s, 22);
	w->body = COL_TEXT(s, 23);
	w->done_ok = COL_TEXT(s, 24);
	w->done_perm = COL_TEXT(s, 25);
	w->inflight = (int)COL_INT(s, 26);
}

int
queue_due_each(struct queue *q, int64_t now, int max,
    int (*cb)(const struct queue_work *w, void *arg), void *arg)
{
	sqlite3_stmt *s = queue_st(q, ST_WORK_DUE);
	struct queue_work w;
	int rc, ret = 0;

	BIND_INT(s, 1, now);
	BIND_INT(s, 2, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		work_read(s, &w);
		if ((ret = cb(&w, arg)) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = queue_db_fail(q, "finding due deliveries");
	queue_done(s);
	return ret;
}

int
queue_work_get(struct queue *q, int64_t delivery,
    int (*cb)(const struct queue_work *w, void *arg), void *arg)
{
	sqlite3_stmt *s = queue_st(q, ST_WORK_ONE);
	struct queue_work w;
	int rc, ret;

	BIND_INT(s, 1, delivery);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		work_read(s, &w);
		ret = cb(&w, arg);
	} else if (rc == SQLITE_DONE)
		ret = queue_fail(q, QUEUE_NOTFOUND, "unknown delivery %lld",
		    (long long)delivery);
	else
		ret = queue_db_fail(q, "reading a delivery");
	queue_done(s);
	return ret;
}

int
queue_next_due(struct queue *q, int64_t *when)
{
	sqlite3_stmt *s = queue_st(q, ST_NEXT_DUE);
	int rc;

	*when = 0;
	if ((rc = sqlite3_step(s)) == SQLITE_ROW)
		*when = COL_INT(s, 0);
	else if (rc != SQLITE_DONE)
		return queue_db_fail(q, "finding the next due delivery");
	queue_done(s);
	return QUEUE_OK;
}

/* Inside queue_claim()'s transaction: the attempt of notice c, if it is
 * still due (else c->attempt stays 0). */
static int
claim_notice(struct queue *q, struct queue_claim *c, int64_t now)
{
	sqlite3_stmt *s = queue_st(q, ST_NOTICE_CLAIM);

	BIND_INT(s, 1, c->notice);
	BIND_INT(s, 2, now);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "claiming a notice");
	queue_done(s);
	if (sqlite3_changes(q->db) == 0)
		return QUEUE_OK;
	s = queue_st(q, ST_CLAIM_ADD);
	BIND_INT(s, 1, c->delivery);
	BIND_TEXT(s, 2, c->channel);
	BIND_TEXT(s, 3, c->address);
	BIND_INT(s, 4, c->revision);
	BIND_INT(s, 5, now);
	BIND_INT(s, 6, c->round);
	BIND_INT(s, 7, c->step);
	BIND_TEXT(s, 8, c->message_id);
	BIND_TEXT(s, 9, c->notice_kind);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "claiming a notice");
	queue_done(s);
	c->attempt = (int64_t)sqlite3_last_insert_rowid(q->db);
	s = queue_st(q, ST_NOTICE_CLAIM);
	BIND_INT(s, 1, c->notice);
	BIND_INT(s, 2, now);
	BIND_INT(s, 3, c->attempt);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "claiming a notice");
	queue_done(s);
	return QUEUE_OK;
}

/* Inside queue_outcomes()'s transaction: settle the notice sent by
 * attempt o (of delivery, alert's); its event. */
static int
notice_outcome(struct queue *q, const struct queue_outcome *o,
    int64_t delivery, const char *channel, int64_t now, const char *actor)
{
	sqlite3_stmt *s = queue_st(q, ST_NOTICE_OUTCOME);
	char why[700], alert[41] = "", state[16] = "", kind[16] = "";
	int rc;

	BIND_INT(s, 1, o->attempt);
	BIND_TEXT(s, 2, o->outcome);
	BIND_INT(s, 3, now);
	BIND_INT(s, 4, q->retry_min > 0 ? q->retry_min : 60000);
	BIND_INT(s, 5, q->retry_max > 0 ? q->retry_max : 3600000);
	BIND_INT(s, 6, QUEUE_NOTICE_TRIES);
	if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		snprintf(state, sizeof(state), "%s", COL_TEXT(s, 0));
		snprintf(kind, sizeof(kind), "%s", COL_TEXT(s, 1));
		rc = sqlite3_step(s);
	}
	if (rc != SQLITE_DONE)
		return queue_db_fail(q, "recording a notice");
	queue_done(s);
	if (state[0] == '\0')
		return QUEUE_OK;
	s = queue_st(q, ST_DLV_ALERT);
	BIND_INT(s, 1, delivery);
	if (sqlite3_step(s) == SQLITE_ROW)
		snprintf(alert, sizeof(alert), "%s", COL_TEXT(s, 0));
	queue_done(s);
	snprintf(why, sizeof(why), "%s notice by %s: %s%s%s%.300s", kind,
	    channel, strcmp(state, "pending") == 0 ? "retry: " : "",
	    o->outcome, o->error ? ": " : (o->evidence ? ": " : ""),
	    o->error ? o->error : (o->evidence ? o->evidence : ""));
	return queue_event_add(q, now, alert, delivery, actor,
	    strcmp(state, "sent") == 0 ? "notice-sent" :
	    strcmp(state, "failed") == 0 ? "notice-failed" : "notice-retry",
	    why);
}

int
queue_claim(struct queue *q, struct queue_claim *v, size_t n, int64_t now)
{
	static const char what[] = "claiming deliveries";
	sqlite3_stmt *s;
	int64_t last = -1;
	int rc, ok = 0;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	for (size_t i = 0; i < n; i++) {
		v[i].attempt = 0;
		if (v[i].notice != 0) {
			if ((rc = claim_notice(q, &v[i], now)) != QUEUE_OK)
				goto fail;
			continue;
		}
		/* Several channels of one delivery come one after another:
		 * the check holds for all of them, the clear is done once. */
		if (v[i].delivery != last) {
			last = v[i].delivery;
			s = queue_st(q, ST_CLAIM_CHECK);
			BIND_INT(s, 1, v[i].delivery);
			BIND_INT(s, 2, now);
			rc = sqlite3_step(s);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE)
				goto dbfail;
			ok = rc == SQLITE_ROW;
			queue_done(s);
			if (ok) {
				s = queue_st(q, ST_CLAIM_DLV);
				BIND_INT(s, 1, v[i].delivery);
				BIND_INT(s, 2, now);
				if (sqlite3_step(s) != SQLITE_DONE)
					goto dbfail;
				queue_done(s);
			}
		}
		if (!ok)
			continue;
		s = queue_st(q, ST_CLAIM_ADD);
		BIND_INT(s, 1, v[i].delivery);
		BIND_TEXT(s, 2, v[i].channel);
		BIND_TEXT(s, 3, v[i].address);
		BIND_INT(s, 4, v[i].revision);
		BIND_INT(s, 5, now);
		BIND_INT(s, 6, v[i].round);
		BIND_INT(s, 7, v[i].step);
		BIND_TEXT(s, 8, v[i].message_id);
		if (sqlite3_step(s) != SQLITE_DONE)
			goto dbfail;
		queue_done(s);
		v[i].attempt = (int64_t)sqlite3_last_insert_rowid(q->db);
	}
	return queue_tx_commit(q, what);
fail:
	for (size_t i = 0; i < n; i++)
		v[i].attempt = 0;
	queue_tx_rollback(q);
	return rc;
dbfail:
	queue_db_fail(q, what);
	queue_tx_rollback(q);
	for (size_t i = 0; i < n; i++)
		v[i].attempt = 0;
	return QUEUE_ERR;
}

/* Apply plan p to delivery w inside the caller's transaction. */
static int
plan_apply(struct queue *q, const struct queue_work *w,
    const struct queue_plan *p, int64_t now, const char *actor)
{
	sqlite3_stmt *s;
	struct queue_work sw;
	enum queue_state to = p->state;
	char why[512];
	int64_t next = p->next_action;

	if (w->state == QUEUE_PENDING && to == QUEUE_DELIVERED) {
		/* Arrival proven by the attempt itself (a fax whose pages
		 * the far end confirmed): accepted first, then delivered,
		 * each with its event. */
		struct queue_plan sp = *p;

		sp.state = QUEUE_SENT;
		sp.why = "accepted by the next hop";
		if (plan_apply(q, w, &sp, now, actor) != QUEUE_OK)
			return QUEUE_ERR;
		sw = *w;
		sw.state = QUEUE_SENT;
		w = &sw;
	}
	if (to != w->state && !queue_transition_ok(w->state, to))
		return queue_fail(q, QUEUE_REFUSED, "delivery %lld: %s -> %s "
		    "is not allowed", (long long)w->delivery,
		    queue_state_name(w->state), queue_state_name(to));
	if (queue_state_final(to))
		next = 0;				/* Q2 */
	s = queue_st(q, ST_PLAN_SET);
	BIND_INT(s, 1, w->delivery);
	BIND_TEXT(s, 2, queue_state_name(to));
	BIND_INT(s, 3, p->step);
	BIND_INT(s, 4, p->round);
	BIND_INT(s, 5, p->tries);
	if (next != 0)
		BIND_INT(s, 6, next);
	BIND_INT(s, 7, now);
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "planning a delivery");
	queue_done(s);
	if (to != w->state) {
		snprintf(why, sizeof(why), "%s (was %s)", p->why ? p->why : "-",
		    queue_state_name(w->state));
		if (queue_event_add(q, now, w->alert, w->delivery, actor,
		    queue_state_name(to), why) != QUEUE_OK)
			return QUEUE_ERR;
	} else if (p->why != NULL && queue_event_add(q, now, w->alert,
	    w->delivery, actor, p->what ? p->what : "plan", p->why) != QUEUE_OK)
		return QUEUE_ERR;
	return QUEUE_OK;
}

struct outcome_ctx {
	struct queue			*q;
	const struct queue_outcome	*o;
	queue_plan_fn			 fn;
	void				*arg;
	int64_t				 now;
	const char			*actor;
};

/* queue_work_get() callback: plan and apply, unless already final. */
static int
outcome_plan(const struct queue_work *w, void *arg)
{
	struct outcome_ctx *ctx = arg;
	struct queue_plan p;

	if (queue_state_final(w->state))
		return QUEUE_OK;
	memset(&p, 0, sizeof(p));
	p.state = w->state;
	p.step = w->step;
	p.round = w->round;
	p.tries = w->tries;
	p.next_action = w->next_action;
	ctx->fn(w, ctx->o, &p, ctx->arg);
	return plan_apply(ctx->q, w, &p, ctx->now, ctx->actor);
}

/* Set a channel's health inside the caller's transaction. */
static int
health_set(struct queue *q, const char *channel, int ok, const char *error,
    int64_t now)
{
	sqlite3_stmt *s = queue_st(q, ST_HEALTH_SET);

	BIND_TEXT(s, 1, channel);
	BIND_INT(s, 2, ok ? 1 : 0);
	BIND_INT(s, 3, now);
	BIND_INT(s, 4, now);
	BIND_TEXT(s, 5, error ? error : "");
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, "recording a channel's health");
	queue_done(s);
	return QUEUE_OK;
}

int
queue_outcomes(struct queue *q, const struct queue_outcome *v, size_t n,
    int64_t now, queue_plan_fn fn, void *arg, const char *actor)
{
	return queue_outcomes_health(q, v, n, NULL, 0, now, fn, arg, actor);
}

int
queue_outcomes_health(struct queue *q, const struct queue_outcome *v,
    size_t n, const struct queue_health_note *h, size_t nh, int64_t now,
    queue_plan_fn fn, void *arg, const char *actor)
{
	static const char what[] = "recording outcomes";
	struct outcome_ctx ctx = { .q = q, .fn = fn, .arg = arg, .now = now,
	    .actor = actor };
	sqlite3_stmt *s;
	int64_t delivery;
	char channel[128];
	int rc, notice;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	for (size_t i = 0; i < nh; i++)
		if (health_set(q, h[i].channel, h[i].ok, h[i].error,
		    h[i].at) != QUEUE_OK) {
			queue_tx_rollback(q);
			return QUEUE_ERR;
		}
	for (size_t i = 0; i < n; i++) {
		s = queue_st(q, ST_ATT_OF);
		BIND_INT(s, 1, v[i].attempt);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE) {
			queue_done(s);
			continue;		/* unknown attempt: nothing to do */
		}
		if (rc != SQLITE_ROW)
			goto dbfail;
		delivery = COL_INT(s, 0);
		snprintf(channel, sizeof(channel), "%s", COL_TEXT(s, 1));
		rc = sqlite3_column_type(s, 2) != SQLITE_NULL;
		notice = sqlite3_column_type(s, 3) != SQLITE_NULL;
		queue_done(s);
		if (rc)
			continue;		/* already finished */
		s = queue_st(q, ST_ATT_FINISH);
		BIND_INT(s, 1, v[i].attempt);
		BIND_INT(s, 2, now);
		BIND_TEXT(s, 3, v[i].outcome);
		BIND_TEXT(s, 4, v[i].evidence);
		BIND_TEXT(s, 5, v[i].error);
		if (sqlite3_step(s) != SQLITE_DONE)
			goto dbfail;
		queue_done(s);
		if (notice) {
			/* a notice plans nothing: its delivery is final */
			if (notice_outcome(q, &v[i], delivery, channel, now,
			    actor) != QUEUE_OK) {
				queue_tx_rollback(q);
				return QUEUE_ERR;
			}
			continue;
		}
		ctx.o = &v[i];
		if ((rc = queue_work_get(q, delivery, outcome_plan, &ctx)) !=
		    QUEUE_OK) {
			queue_tx_rollback(q);
			return rc;
		}
	}
	return queue_tx_commit(q, what);
dbfail:
	queue_db_fail(q, what);
	queue_tx_rollback(q);
	return QUEUE_ERR;
}

struct plan_ctx {
	struct queue			*q;
	const struct queue_plan		*p;
	int64_t				 now;
	const char			*actor;
};

static int
plan_one(const struct queue_work *w, void *arg)
{
	struct plan_ctx *ctx = arg;

	if (queue_state_final(w->state))
		return QUEUE_OK;
	return plan_apply(ctx->q, w, ctx->p, ctx->now, ctx->actor);
}

int
queue_plan_apply(struct queue *q, int64_t delivery,
    const struct queue_plan *plan, int64_t now, const char *actor)
{
	static const char what[] = "planning a delivery";
	struct plan_ctx ctx = { .q = q, .p = plan, .now = now, .actor = actor };
	int rc;

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if ((rc = queue_work_get(q, delivery, plan_one, &ctx)) != QUEUE_OK) {
		queue_tx_rollback(q);
		return rc;
	}
	return queue_tx_commit(q, what);
}

int
queue_recover(struct queue *q, int64_t now, int64_t *n)
{
	static const char what[] = "recovering attempts in flight";
	sqlite3_stmt *s, *f;
	char why[256];
	int rc;

	*n = 0;
	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	s = queue_st(q, ST_RECOVER_EACH);
	/* Finishing rows while walking them: collect first. */
	struct rec { int64_t attempt, delivery; char alert[41]; } *v = NULL;
	size_t nv = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct rec *t = realloc(v, (nv + 1) * sizeof(*v));

		if (t == NULL) {
			free(v);
			queue_tx_rollback(q);
			return queue_fail(q, QUEUE_ERR, "%s: out of memory", what);
		}
		v = t;
		v[nv].attempt = COL_INT(s, 0);
		v[nv].delivery = COL_INT(s, 1);
		snprintf(v[nv].alert, sizeof(v[nv].alert), "%s", COL_TEXT(s, 2));
		nv++;
	}
	if (rc != SQLITE_DONE)
		goto dbfail;
	queue_done(s);
	for (size_t i = 0; i < nv; i++) {
		f = queue_st(q, ST_ATT_FINISH);
		BIND_INT(f, 1, v[i].attempt);
		BIND_INT(f, 2, now);
		BIND_TEXT(f, 3, "tempfail");
		BIND_TEXT(f, 5, "interrupted: the relay stopped while this "
		    "attempt was in flight (retried)");
		if (sqlite3_step(f) != SQLITE_DONE)
			goto dbfail;
		queue_done(f);
		f = queue_st(q, ST_RECOVER_DLV);
		BIND_INT(f, 1, v[i].delivery);
		BIND_INT(f, 2, now);
		if (sqlite3_step(f) != SQLITE_DONE)
			goto dbfail;
		queue_done(f);
		f = queue_st(q, ST_NOTICE_RECOVER);
		BIND_INT(f, 1, v[i].attempt);
		BIND_INT(f, 2, now);
		if (sqlite3_step(f) != SQLITE_DONE)
			goto dbfail;
		queue_done(f);
		snprintf(why, sizeof(why), "attempt %lld was in flight when the "
		    "relay stopped", (long long)v[i].attempt);
		if (queue_event_add(q, now, v[i].alert, v[i].delivery, "dengond",
		    "recovered", why) != QUEUE_OK) {
			free(v);
			queue_tx_rollback(q);
			return QUEUE_ERR;
		}
	}
	free(v);
	*n = (int64_t)nv;
	return queue_tx_commit(q, what);
dbfail:
	free(v);
	queue_db_fail(q, what);
	queue_tx_rollback(q);
	return QUEUE_ERR;
}

int
queue_health_report(struct queue *q, const char *channel, int ok,
    const char *error, int64_t now)
{
	static const char what[] = "recording a channel's health";

	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if (health_set(q, channel, ok, error, now) != QUEUE_OK) {
		queue_tx_rollback(q);
		return QUEUE_ERR;
	}
	return queue_tx_commit(q, what);
}

int
queue_health_each(struct queue *q,
    int (*cb)(const struct queue_health *h, void *arg), void *arg)
{
	sqlite3_stmt *s = queue_st(q, ST_HEALTH_EACH);
	struct queue_health h;
	int rc, ret = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		memset(&h, 0, sizeof(h));
		snprintf(h.name, sizeof(h.name), "%s", COL_TEXT(s, 0));
		h.up = (int)COL_INT(s, 1);
		h.since = COL_INT(s, 2);
		h.last_ok = COL_INT(s, 3);
		if (COL_TEXT(s, 4) != NULL)
			snprintf(h.last_error, sizeof(h.last_error), "%s",
			    COL_TEXT(s, 4));
		h.last_error_at = COL_INT(s, 5);
		if ((ret = cb(&h, arg)) != 0)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = queue_db_fail(q, "reading channel health");
	queue_done(s);
	return ret;
}

int
queue_delivery_find(struct queue *q, const char *alert, const char *recipient,
    int64_t *id)
{
	sqlite3_stmt *s = queue_st(q, ST_DLV_BY_RCPT);
	int rc;

	BIND_TEXT(s, 1, alert);
	BIND_TEXT(s, 2, recipient);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*id = COL_INT(s, 0);
	else if (rc != SQLITE_DONE)
		return queue_db_fail(q, "finding a delivery");
	queue_done(s);
	if (rc == SQLITE_DONE)
		return queue_fail(q, QUEUE_NOTFOUND, "alert %s has no delivery "
		    "to recipient %s", alert, recipient);
	return QUEUE_OK;
}

void
queue_set_retry(struct queue *q, int64_t retry_min, int64_t retry_max)
{
	q->retry_min = retry_min;
	q->retry_max = retry_max;
}

struct notice_row {
	struct queue_notice	 n;
	char			*kind, *channel, *address, *reason;
};

struct notice_ctx {
	const struct queue_notice *n;
	int (*cb)(const struct queue_notice *, const struct queue_work *,
	    void *);
	void	*arg;
	int	 stop;
};

static int
notice_work(const struct queue_work *w, void *arg)
{
	struct notice_ctx *ctx = arg;

	ctx->stop = ctx->cb(ctx->n, w, ctx->arg);
	return QUEUE_OK;
}

int
queue_notices_due(struct queue *q, int64_t now, int max,
    int (*cb)(const struct queue_notice *n, const struct queue_work *w,
    void *arg), void *arg)
{
	sqlite3_stmt *s = queue_st(q, ST_NOTICE_DUE);
	struct notice_row *v = NULL;
	size_t nv = 0;
	int rc;

	/* Copied out first: cb may write (claims are made after). */
	BIND_INT(s, 1, now);
	BIND_INT(s, 2, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct notice_row *t = realloc(v, (nv + 1) * sizeof(*v));

		if (t == NULL)
			break;
		v = t;
		t = &v[nv++];
		memset(t, 0, sizeof(*t));
		t->n.id = COL_INT(s, 0);
		t->n.delivery = COL_INT(s, 1);
		t->kind = strdup(COL_TEXT(s, 2));
		t->channel = strdup(COL_TEXT(s, 3));
		t->address = strdup(COL_TEXT(s, 4));
		if (sqlite3_column_type(s, 5) != SQLITE_NULL)
			t->reason = strdup(COL_TEXT(s, 5));
		t->n.tries = (int)COL_INT(s, 6);
		t->n.kind = t->kind;
		t->n.channel = t->channel;
		t->n.address = t->address;
		t->n.reason = t->reason;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		rc = queue_db_fail(q, "finding due notices");
	else
		rc = QUEUE_OK;
	queue_done(s);
	for (size_t i = 0; i < nv && rc == QUEUE_OK; i++) {
		struct notice_ctx ctx = { .n = &v[i].n, .cb = cb, .arg = arg };

		if (!v[i].kind || !v[i].channel || !v[i].address)
			continue;
		rc = queue_work_get(q, v[i].n.delivery, notice_work, &ctx);
		if (rc == QUEUE_NOTFOUND)
			rc = QUEUE_OK;
		if (ctx.stop)
			break;
	}
	for (size_t i = 0; i < nv; i++) {
		free(v[i].kind);
		free(v[i].channel);
		free(v[i].address);
		free(v[i].reason);
	}
	free(v);
	return rc;
}
