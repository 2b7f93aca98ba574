/*
 * sched.c - the scheduler's decisions: which channels a due delivery is
 * sent on now, and when it is looked at next.  The rules S1-S6 are in
 * sched.h.  No state, no I/O: the daemon calls these with a delivery's
 * record as it is in the queue at that moment.
 */
#include <string.h>

#include "relay/relay.h"
#include "relay/sched.h"

/* The delivery's policy; the default one if its own has gone from the
 * configuration (after a reload). */
static const struct conf_policy *
policy_of(const struct conf *c, const struct queue_work *w)
{
	const struct conf_policy *p = conf_policy_find(c, w->policy);

	return p != NULL ? p : conf_policy_find(c, c->default_policy);
}

/* 1 if name is an element of the comma-separated list. */
static int
in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p != NULL && *p != '\0';) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, name, n) == 0)
			return 1;
		p = e ? e + 1 : NULL;
	}
	return 0;
}

const char *
sched_address(const struct queue_work *w, const struct conf_channel *ch)
{
	const char *col = conf_type_column(ch->type), *a = NULL;

	if (col == NULL)
		return NULL;
	if (strcmp(col, "mail") == 0)
		a = w->mail;
	else if (strcmp(col, "lgwan") == 0)
		a = w->lgwan;
	else if (strcmp(col, "fax") == 0)
		a = w->fax;
	else if (strcmp(col, "sms") == 0)
		a = w->sms;
	return (a != NULL && *a != '\0') ? a : NULL;
}

/*
 * The channels of step s that can reach this recipient: configured, with
 * an address, never failed for good - and, if usable is not NULL, up now
 * (a driver, configured).  With skip_ok, those already ok in this round
 * are left out (S2).  Fills out (if not NULL).
 */
static int
step_channels(const struct conf *c, sched_usable_fn usable,
    const struct conf_policy *p, const struct queue_work *w, size_t s,
    int skip_ok, struct sched_send *out, int max)
{
	int n = 0;

	for (size_t i = 0; i < p->steps[s].nchannels; i++) {
		const char *name = p->steps[s].channels[i];
		const struct conf_channel *ch = conf_channel_find(c, name);
		const char *addr;

		if (ch == NULL || (usable != NULL && !usable(ch)))
			continue;
		if ((addr = sched_address(w, ch)) == NULL)
			continue;
		if (in_list(w->done_perm, name))
			continue;
		if (skip_ok && in_list(w->done_ok, name))
			continue;
		if (out != NULL && n < max) {
			out[n].channel = ch;
			out[n].address = addr;
		}
		n++;
	}
	return n;
}

static int64_t
round_start(const struct queue_work *w, const struct conf_policy *p, int r)
{
	return w->created + (int64_t)r * p->repeat * 1000;
}

int64_t
sched_backoff(const struct conf *c, int tries)
{
	int64_t b = c->retry_min * 1000;

	for (int i = 1; i < tries && b < c->retry_max * 1000; i++)
		b *= 2;
	if (b > c->retry_max * 1000)
		b = c->retry_max * 1000;
	return b;
}

void
sched_message_id(const struct conf *c, const char *token, int revision,
    int round, char *out, size_t outlen)
{
	snprintf(out, outlen, "<%s.r%d.n%d@%s>", token, revision, round,
	    c->name);
}

/* The next step after s with a channel that can reach the recipient (down
 * or not), and its time in round `round` in *at; -1 if there is none. */
static long
next_step(const struct conf *c, const struct conf_policy *p,
    const struct queue_work *w, int round, size_t s, int64_t *at)
{
	for (size_t k = s + 1; k < p->nsteps; k++)
		if (step_channels(c, NULL, p, w, k, 0, NULL, 0) > 0) {
			*at = round_start(w, p, round) + p->steps[k].delay * 1000;
			return (long)k;
		}
	return -1;
}

/* S1: a retry of step s is never due after the next step's time: the next
 * step starts on time whatever the one before is still waiting for. */
static void
cap_at_next_step(const struct conf *c, const struct conf_policy *p,
    const struct queue_work *w, size_t s, struct queue_plan *plan)
{
	int64_t at;

	if (next_step(c, p, w, plan->round, s, &at) >= 0 &&
	    plan->next_action > at)
		plan->next_action = at;
}

/* Does the policy still want this delivery looked at after the last step
 * of a round (a reminder)? */
static int
needs_more(const struct conf_policy *p, const struct queue_work *w,
    enum queue_state state)
{
	if (p->confirm == CONF_CONFIRM_DELIVERED && state == QUEUE_DELIVERED)
		return 0;
	return p->repeat > 0;
}

/*
 * S4/S5: the plan once step `step` of the current round is complete or
 * has nothing to send: the next step with a reachable channel at its time,
 * else the next round, else expiry; failed if nothing can ever work.
 */
static void
after_step(const struct conf *c, const struct conf_policy *p,
    const struct queue_work *w, int64_t now, size_t step, int at_once,
    struct queue_plan *plan, char *why, size_t whylen)
{
	int any = 0;

	/* A channel that is down now still counts: it will come back. */
	for (size_t s = step + 1; s < p->nsteps; s++) {
		if (step_channels(c, NULL, p, w, s, 0, NULL, 0) == 0)
			continue;
		plan->step = (int)s;
		plan->next_action = round_start(w, p, plan->round) +
		    p->steps[s].delay * 1000;
		if (plan->next_action < now || at_once)
			plan->next_action = now;
		plan->what = "escalate";
		snprintf(why, whylen, "step %zu of policy %s (%s%s) next%s",
		    s + 1, p->name, p->steps[s].channels[0],
		    p->steps[s].nchannels > 1 ? "+..." : "", at_once ?
		    ", at once: step " : "");
		if (at_once) {
			size_t l = strlen(why);

			snprintf(why + l, whylen - l, "%zu failed for good "
			    "with nothing accepted", step + 1);
		}
		plan->why = why;
		return;
	}
	for (size_t s = 0; s < p->nsteps; s++)
		any += step_channels(c, NULL, p, w, s, 0, NULL, 0);
	/* Sent but bounced later (a DSN) counts: it never arrived. */
	if ((plan->state == QUEUE_PENDING || plan->state == QUEUE_SENT) &&
	    any == 0) {
		plan->state = QUEUE_FAILED;
		plan->next_action = 0;
		snprintf(why, whylen, "no channel of policy %s can reach "
		    "this recipient (no address, or every one failed for good)",
		    p->name);
		plan->why = why;
		return;
	}
	if (needs_more(p, w, plan->state) && any > 0) {
		int r = plan->round + 1;
		int64_t t = round_start(w, p, r);

		/* Rounds missed while the relay was down are not replayed. */
		while (p->repeat > 0 && t + p->repeat * 1000 <= now) {
			r++;
			t += p->repeat * 1000;
		}
		snprintf(why, whylen, "round %d complete; reminder %d due "
		    "at +%llds", plan->round, r, (long long)((t - w->created) /
		    1000));
		plan->round = r;
		plan->step = 0;
		plan->tries = 0;
		plan->next_action = t < now ? now : t;
		plan->what = "reminder";
		plan->why = why;
		return;
	}
	/* Nothing more to send: look again at expiry (S6). */
	plan->next_action = (p->confirm == CONF_CONFIRM_DELIVERED &&
	    plan->state == QUEUE_DELIVERED) ? 0 : w->expires;
	plan->why = NULL;
}

/* S6: never schedule past expiry. */
static void
clamp_expiry(const struct queue_work *w, struct queue_plan *plan)
{
	if (plan->next_action != 0 && plan->next_action > w->expires)
		plan->next_action = w->expires;
}

enum sched_verdict
sched_due(const struct conf *c, sched_usable_fn usable,
    const struct queue_work *w, int64_t now, struct sched_send *out,
    int *n, struct queue_plan *plan, char *why, size_t whylen)
{
	const struct conf_policy *p;
	size_t s;

	*n = 0;
	memset(plan, 0, sizeof(*plan));
	plan->state = w->state;
	plan->step = w->step;
	plan->round = w->round;
	plan->tries = w->tries;
	plan->next_action = w->next_action;
	if (now >= w->expires) {
		plan->state = QUEUE_EXPIRED;
		plan->next_action = 0;
		snprintf(why, whylen, "no confirmation before expiry");
		plan->why = why;
		return SCHED_PLAN;
	}
	if ((p = policy_of(c, w)) == NULL || p->nsteps == 0) {
		plan->next_action = now + c->retry_max * 1000;
		snprintf(why, whylen, "policy %s is not configured", w->policy);
		plan->why = why;
		plan->what = "waiting";
		clamp_expiry(w, plan);
		return SCHED_PLAN;
	}
	s = (size_t)w->step < p->nsteps ? (size_t)w->step : p->nsteps - 1;
	plan->step = (int)s;
	if (w->tries > 0) {
		/* S1: still retrying (or waiting for a channel that is down)
		 * when the next step's time has come: move on to it; what is
		 * left of this step is tried again in the next round */
		int64_t at;
		long k, last = -1;
		size_t from = s;

		while ((k = next_step(c, p, w, w->round, from, &at)) >= 0 &&
		    at <= now) {
			last = k;
			from = (size_t)k;
		}
		if (last >= 0) {
			plan->step = (int)last;
			plan->tries = 0;
			plan->next_action = now;
			plan->what = "escalate";
			snprintf(why, whylen, "step %ld of policy %s (%s%s) is "
			    "due while step %zu is still being retried",
			    last + 1, p->name, p->steps[last].channels[0],
			    p->steps[last].nchannels > 1 ? "+..." : "", s + 1);
			plan->why = why;
			clamp_expiry(w, plan);
			return SCHED_PLAN;
		}
	}
	*n = step_channels(c, usable, p, w, s, 1, out, SCHED_MAX_SENDS);
	if (*n > SCHED_MAX_SENDS)
		*n = SCHED_MAX_SENDS;
	if (*n > 0)
		return SCHED_SEND;
	if (step_channels(c, NULL, p, w, s, 1, NULL, 0) > 0) {
		/* Its channels are down (not configured, no driver yet): wait
		 * for them, this is no failure of the recipient's. */
		plan->tries = w->tries + 1;
		plan->next_action = now + sched_backoff(c, plan->tries);
		cap_at_next_step(c, p, w, s, plan);
		plan->what = "waiting";
		snprintf(why, whylen, "every channel of step %zu of policy %s "
		    "is down; waiting", s + 1, p->name);
		plan->why = w->tries == 0 ? why : NULL;	/* said once */
		clamp_expiry(w, plan);
		return SCHED_PLAN;
	}
	after_step(c, p, w, now, s, 0, plan, why, whylen);
	clamp_expiry(w, plan);
	return SCHED_PLAN;
}

void
sched_outcome(const struct conf *c, sched_usable_fn usable,
    const struct queue_work *w, const struct queue_outcome *o, int64_t now,
    struct queue_plan *plan, char *why, size_t whylen)
{
	const struct conf_policy *p = policy_of(c, w);
	int tempfail = strcmp(o->outcome, "tempfail") == 0;
	int ok = strcmp(o->outcome, "ok") == 0;
	size_t s;

	plan->why = NULL;
	s = p != NULL && p->nsteps > 0 ? ((size_t)w->step < p->nsteps ?
	    (size_t)w->step : p->nsteps - 1) : 0;
	if (ok) {
		/* S3: another channel of this step that tempfailed keeps its
		 * backoff; an ok here does not make it due at once */
		if (w->tries == 0 || p == NULL || p->nsteps == 0 ||
		    step_channels(c, NULL, p, w, s, 1, NULL, 0) == 0)
			plan->tries = 0;
		if (o->delivered && (plan->state == QUEUE_PENDING ||
		    plan->state == QUEUE_SENT)) {
			plan->state = QUEUE_DELIVERED;
			snprintf(why, whylen, "delivered: %s",
			    o->evidence ? o->evidence : "ok");
			plan->why = why;
		} else if (plan->state == QUEUE_PENDING) {
			plan->state = QUEUE_SENT;
			snprintf(why, whylen, "accepted: %s",
			    o->evidence ? o->evidence : "ok");
			plan->why = why;
		}
	} else if (tempfail)
		plan->tries = w->tries + 1;
	if (w->inflight > 0) {
		plan->next_action = 0;	/* the others' outcomes will plan */
		return;
	}
	if (p == NULL || p->nsteps == 0) {
		plan->next_action = now + c->retry_max * 1000;
		clamp_expiry(w, plan);
		return;
	}
	if (step_channels(c, NULL, p, w, s, 1, NULL, 0) > 0) {
		if (plan->tries > 0) {
			plan->next_action = now + sched_backoff(c, plan->tries);
			cap_at_next_step(c, p, w, s, plan);
			plan->what = "retry";
			if (plan->why == NULL) {
				snprintf(why, whylen, "%s: %s; retry %d",
				    o->outcome, o->error ? o->error :
				    (o->evidence ? o->evidence : "-"),
				    plan->tries);
				plan->why = why;
			}
		} else
			plan->next_action = now;
	} else {
		/* the state change keeps its own reason first */
		char first[256] = "";

		if (plan->state != w->state && plan->why == why)
			snprintf(first, sizeof(first), "%s", why);
		/* S4: a step that ended in a permfail with nothing accepted
		 * moves on at once, not at the next step's time */
		after_step(c, p, w, now, s, !ok && !tempfail &&
		    (w->done_ok == NULL || *w->done_ok == '\0'), plan, why,
		    whylen);
		if (first[0] != '\0' && plan->why == why &&
		    strcmp(first, why) != 0) {
			char rest[512];

			snprintf(rest, sizeof(rest), "%s", why);
			snprintf(why, whylen, "%s; %s", first, rest);
		} else if (first[0] != '\0' && plan->why == NULL) {
			snprintf(why, whylen, "%s", first);
			plan->why = why;
		}
	}
	clamp_expiry(w, plan);
}
