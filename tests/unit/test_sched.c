/*
 * test_sched.c - the scheduler's decisions (relay/sched.c), rule by rule
 * (S1-S6 of relay/sched.h), on a configuration built by hand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "relay/sched.h"

#define MIN	60000LL
#define T0	1700000000000LL		/* the alert's acceptance, ms */

static struct conf_channel channels[3] = {
	{ .name = "mail", .type = "smtp" },
	{ .name = "lgwan", .type = "lgwan" },
	{ .name = "fax", .type = "fax" },
};

static char *s0[] = { "mail" }, *s0b[] = { "mail", "lgwan" }, *s1[] = { "fax" };
static struct conf_step steps_mail_fax[] = {
	{ .channels = s0, .nchannels = 1, .delay = 0 },
	{ .channels = s1, .nchannels = 1, .delay = 15 * 60 },
};
static struct conf_step steps_both[] = {
	{ .channels = s0b, .nchannels = 2, .delay = 0 },
};
static struct conf_step steps_mail[] = {
	{ .channels = s0, .nchannels = 1, .delay = 0 },
};

static struct conf_policy policies[] = {
	{ .name = "escalate", .steps = steps_mail_fax, .nsteps = 2,
	  .repeat = 3600, .expire = 86400 },
	{ .name = "both", .steps = steps_both, .nsteps = 1, .repeat = 0,
	  .expire = 86400 },
	{ .name = "once", .steps = steps_mail, .nsteps = 1, .repeat = 3600,
	  .expire = 86400, .confirm = CONF_CONFIRM_DELIVERED },
};

static struct conf conf = {
	.name = "test-relay", .default_policy = "escalate",
	.channels = channels, .nchannels = 3,
	.policies = policies, .npolicies = 3,
	.retry_min = 30, .retry_max = 600,
};

/* Every channel has a driver in these tests. */
static int
all_usable(const struct conf_channel *ch)
{
	(void)ch;
	return 1;
}

/* fax has no driver */
static int
no_fax(const struct conf_channel *ch)
{
	return strcmp(ch->type, "fax") != 0;
}

static struct queue_work
work(const char *policy)
{
	struct queue_work w;

	memset(&w, 0, sizeof(w));
	w.delivery = 7;
	w.alert = "20261121-0001";
	w.recipient = "r1";
	w.mail = "r1@example.jp";
	w.lgwan = "r1@city.example.lg.jp";
	w.fax = "+81312345678";
	w.policy = policy;
	w.token = "0123456789abcdef0123456789abcdef";
	w.state = QUEUE_PENDING;
	w.created = T0;
	w.expires = T0 + 86400000LL;
	w.next_action = T0;
	w.revision = 1;
	return w;
}

static void
plan_init(struct queue_plan *p, const struct queue_work *w)
{
	memset(p, 0, sizeof(*p));
	p->state = w->state;
	p->step = w->step;
	p->round = w->round;
	p->tries = w->tries;
	p->next_action = w->next_action;
}

static struct queue_outcome
outcome(const char *o)
{
	struct queue_outcome v = { .attempt = 1, .outcome = o,
	    .evidence = "250 ok", .error = "451 try later" };
	return v;
}

/* S2: a pending delivery is sent on its step's channel at once. */
static void
test_due_sends_first_step(void **state)
{
	struct queue_work w = work("escalate");
	struct sched_send out[SCHED_MAX_SENDS];
	struct queue_plan p;
	char why[256];
	int n;

	assert_int_equal(sched_due(&conf, all_usable, &w, T0, out, &n, &p, why,
	    sizeof(why)), SCHED_SEND);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].channel->name, "mail");
	assert_string_equal(out[0].address, "r1@example.jp");
	assert_int_equal(p.round, 0);
	assert_int_equal(p.step, 0);
}

/* S6: at expiry the delivery expires, whatever else is due. */
static void
test_due_expires(void **state)
{
	struct queue_work w = work("escalate");
	struct sched_send out[SCHED_MAX_SENDS];
	struct queue_plan p;
	char why[256];
	int n;

	assert_int_equal(sched_due(&conf, all_usable, &w, w.expires, out, &n,
	    &p, why, sizeof(why)), SCHED_PLAN);
	assert_int_equal(p.state, QUEUE_EXPIRED);
	assert_int_equal(p.next_action, 0);
	assert_non_null(p.why);
}

/* S4: no address for the first step: the next step, at its own time. */
static void
test_due_skips_step_without_address(void **state)
{
	struct queue_work w = work("escalate");
	struct sched_send out[SCHED_MAX_SENDS];
	struct queue_plan p;
	char why[256];
	int n;

	w.mail = NULL;
	assert_int_equal(sched_due(&conf, all_usable, &w, T0, out, &n, &p, why,
	    sizeof(why)), SCHED_PLAN);
	assert_int_equal(p.state, QUEUE_PENDING);
	assert_int_equal(p.step, 1);
	assert_int_equal(p.next_action, T0 + 15 * MIN);
	/* When that time comes, fax is sent. */
	w.step = 1;
	w.next_action = p.next_action;
	assert_int_equal(sched_due(&conf, all_usable, &w, T0 + 15 * MIN, out,
	    &n, &p, why, sizeof(why)), SCHED_SEND);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].channel->name, "fax");
}

/* S4: nothing can reach the recipient: failed. */
static void
test_due_fails_without_any_channel(void **state)
{
	struct queue_work w = work("escalate");
	struct sched_send out[SCHED_MAX_SENDS];
	struct queue_plan p;
	char why[256];
	int n;

	w.mail = NULL;
	w.fax = NULL;
	assert_int_equal(sched_due(&conf, all_usable, &w, T0, out, &n, &p, why,
	    sizeof(why)), SCHED_PLAN);
	assert_int_equal(p.state, QUEUE_FAILED);
	assert_int_equal(p.next_action, 0);
	assert_non_null(strstr(why, "no channel"));
}

/* S4: a channel that is down is waited for with backoff, not failed. */
static void
test_due_waits_for_down_channel(void **state)
{
	struct queue_work w = work("escalate");
	struct sched_send out[SCHED_MAX_SENDS];
	struct queue_plan p;
	char why[256];
	int n;

	w.mail = NULL;
	w.step = 1;
	assert_int_equal(sched_due(&conf, no_fax, &w, T0 + 15 * MIN, out, &n,
	    &p, why, sizeof(why)), SCHED_PLAN);
	assert_int_equal(p.state, QUEUE_PENDING);
	assert_int_equal(p.step, 1);
	assert_int_equal(p.tries, 1);
	assert_int_equal(p.next_action, T0 + 15 * MIN + 30000);
	assert_non_null(p.why);
	assert_non_null(strstr(why, "down"));
	w.tries = 1;
	assert_int_equal(sched_due(&conf, no_fax, &w, T0 + 16 * MIN, out, &n,
	    &p, why, sizeof(why)), SCHED_PLAN);
	assert_int_equal(p.next_action, T0 + 16 * MIN + 60000);
	assert_null(p.why);	/* said once, not at every retry */
}

/* S5: after an ok the next step waits for its time; sent. */
static void
test_outcome_ok_waits_for_next_step(void **state)
{
	struct queue_work w = work("escalate");
	struct queue_outcome o = outcome("ok");
	struct queue_plan p;
	char why[256];

	w.done_ok = "mail";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 1000, &p, why,
	    sizeof(why));
	assert_int_equal(p.state, QUEUE_SENT);
	assert_int_equal(p.tries, 0);
	assert_int_equal(p.step, 1);
	assert_int_equal(p.next_action, T0 + 15 * MIN);
}

/* S5: the last step done: a reminder at the next round, round + 1. */
static void
test_outcome_ok_schedules_reminder(void **state)
{
	struct queue_work w = work("escalate");
	struct queue_outcome o = outcome("ok");
	struct queue_plan p;
	char why[256];

	w.step = 1;
	w.state = QUEUE_SENT;
	w.done_ok = "fax";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 16 * MIN, &p, why,
	    sizeof(why));
	assert_int_equal(p.state, QUEUE_SENT);
	assert_int_equal(p.round, 1);
	assert_int_equal(p.step, 0);
	assert_int_equal(p.next_action, T0 + 60 * MIN);
	assert_string_equal(p.what, "reminder");
}

/* An ok with arrival evidence (a fax whose pages the far end confirmed):
 * delivered, and the event says why before what comes next. */
static void
test_outcome_delivered(void **state)
{
	struct queue_work w = work("escalate");
	struct queue_outcome o = outcome("ok");
	struct queue_plan p;
	char why[256];

	w.step = 1;
	w.done_ok = "fax";
	o.delivered = 1;
	o.evidence = "HylaFAX job 7: done; pages 2/2";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 16 * MIN, &p, why,
	    sizeof(why));
	assert_int_equal(p.state, QUEUE_DELIVERED);
	assert_non_null(p.why);
	assert_non_null(strstr(p.why, "delivered: HylaFAX job 7"));
	assert_non_null(strstr(p.why, "reminder"));
	/* the same ok without the evidence only counts as sent */
	o.delivered = 0;
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 16 * MIN, &p, why,
	    sizeof(why));
	assert_int_equal(p.state, QUEUE_SENT);
}

/* S3: tempfail backs off exponentially, bounded by retry_max. */
static void
test_outcome_tempfail_backoff(void **state)
{
	struct queue_work w = work("escalate");
	struct queue_outcome o = outcome("tempfail");
	struct queue_plan p;
	char why[256];
	int64_t now = T0 + 1000;

	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, now, &p, why, sizeof(why));
	assert_int_equal(p.tries, 1);
	assert_int_equal(p.next_action, now + 30000);
	assert_int_equal(p.state, QUEUE_PENDING);
	w.tries = 3;
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, now, &p, why, sizeof(why));
	assert_int_equal(p.tries, 4);
	assert_int_equal(p.next_action, now + 240000);
	w.tries = 30;
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, now, &p, why, sizeof(why));
	assert_int_equal(p.next_action, now + 600000);
	assert_int_equal(sched_backoff(&conf, 1), 30000);
	assert_int_equal(sched_backoff(&conf, 2), 60000);
	assert_int_equal(sched_backoff(&conf, 100), 600000);
}

/* S4: a permfail moves on to the next step at once. */
static void
test_outcome_permfail_escalates_now(void **state)
{
	struct queue_work w = work("escalate");
	struct queue_outcome o = outcome("permfail");
	struct queue_plan p;
	char why[256];

	w.done_perm = "mail";
	plan_init(&p, &w);
	/* long before the fax step's time (15 min): at once all the same */
	sched_outcome(&conf, all_usable, &w, &o, T0 + 2000, &p, why,
	    sizeof(why));
	assert_int_equal(p.step, 1);
	assert_int_equal(p.next_action, T0 + 2000);
	assert_int_equal(p.state, QUEUE_PENDING);
	assert_non_null(strstr(why, "at once"));
}

/* S4/S5: a permfail in a step where another channel was accepted: the
 * step is complete, the next one comes at its time. */
static void
test_outcome_permfail_with_ok_waits(void **state)
{
	struct queue_work w = work("escalate");
	struct queue_outcome o = outcome("permfail");
	struct queue_plan p;
	char why[256];

	w.done_perm = "mail";
	w.done_ok = "lgwan";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 2000, &p, why,
	    sizeof(why));
	assert_int_equal(p.step, 1);
	assert_int_equal(p.next_action, T0 + 15 * MIN);
}

/* S3: a channel that tempfailed keeps its backoff when another channel of
 * the same step is accepted afterwards. */
static void
test_ok_keeps_other_backoff(void **state)
{
	struct queue_work w = work("both");
	struct queue_outcome o = outcome("ok");
	struct queue_plan p;
	char why[256];

	w.tries = 1;		/* mail tempfailed while lgwan was in flight */
	w.done_ok = "lgwan";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 300, &p, why,
	    sizeof(why));
	assert_int_equal(p.tries, 1);
	assert_int_equal(p.next_action, T0 + 300 + sched_backoff(&conf, 1));
}

/* S1: a retry of step 1 is never due after step 2's time. */
static void
test_retry_capped_at_next_step(void **state)
{
	struct queue_work w = work("escalate");
	struct queue_outcome o = outcome("tempfail");
	struct queue_plan p;
	char why[256];

	w.tries = 9;		/* a long backoff: retry_max */
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 14 * MIN + 30000, &p, why,
	    sizeof(why));
	assert_int_equal(p.step, 0);
	assert_int_equal(p.next_action, T0 + 15 * MIN);
}

/* S1: at step 2's time, a step 1 still being retried does not hold it. */
static void
test_due_moves_on_at_next_step_time(void **state)
{
	struct queue_work w = work("escalate");
	struct sched_send out[SCHED_MAX_SENDS];
	struct queue_plan p;
	char why[256];
	int n;

	w.tries = 3;
	w.next_action = T0 + 15 * MIN;
	assert_int_equal(sched_due(&conf, all_usable, &w, T0 + 15 * MIN, out,
	    &n, &p, why, sizeof(why)), SCHED_PLAN);
	assert_int_equal(p.step, 1);
	assert_int_equal(p.tries, 0);
	assert_int_equal(p.next_action, T0 + 15 * MIN);
	assert_non_null(strstr(why, "still being retried"));
	/* before that time it is step 1's retry, as before */
	assert_int_equal(sched_due(&conf, all_usable, &w, T0 + 14 * MIN, out,
	    &n, &p, why, sizeof(why)), SCHED_SEND);
	assert_int_equal(p.step, 0);
}

/* S4: a permfail with nothing else left: failed. */
static void
test_outcome_permfail_fails(void **state)
{
	struct queue_work w = work("escalate");
	struct queue_outcome o = outcome("permfail");
	struct queue_plan p;
	char why[256];

	w.done_perm = "mail";
	w.fax = NULL;
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 1000, &p, why,
	    sizeof(why));
	assert_int_equal(p.state, QUEUE_FAILED);
	assert_int_equal(p.next_action, 0);
}

/* S2: two channels in a step: one ok, the other still retried. */
static void
test_two_channels_one_step(void **state)
{
	struct queue_work w = work("both");
	struct queue_outcome o = outcome("tempfail");
	struct sched_send out[SCHED_MAX_SENDS];
	struct queue_plan p;
	char why[256];
	int n;

	assert_int_equal(sched_due(&conf, all_usable, &w, T0, out, &n, &p, why,
	    sizeof(why)), SCHED_SEND);
	assert_int_equal(n, 2);
	/* mail's outcome arrives first while lgwan is in flight */
	w.inflight = 1;
	w.done_ok = "mail";
	plan_init(&p, &w);
	o = outcome("ok");
	sched_outcome(&conf, all_usable, &w, &o, T0 + 1000, &p, why,
	    sizeof(why));
	assert_int_equal(p.state, QUEUE_SENT);
	assert_int_equal(p.next_action, 0);
	/* then lgwan's tempfail: retry lgwan only */
	w.inflight = 0;
	w.state = QUEUE_SENT;
	o = outcome("tempfail");
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 2000, &p, why,
	    sizeof(why));
	assert_int_equal(p.tries, 1);
	assert_int_equal(p.next_action, T0 + 2000 + 30000);
	w.next_action = p.next_action;
	assert_int_equal(sched_due(&conf, all_usable, &w, p.next_action, out,
	    &n, &p, why, sizeof(why)), SCHED_SEND);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].channel->name, "lgwan");
}

/* S6: without repeat, an ok'd delivery is looked at again at expiry;
 * a reminder past expiry is clamped to expiry. */
static void
test_no_repeat_waits_for_expiry(void **state)
{
	struct queue_work w = work("both");
	struct queue_outcome o = outcome("ok");
	struct queue_plan p;
	char why[256];

	w.done_ok = "mail,lgwan";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 1000, &p, why,
	    sizeof(why));
	assert_int_equal(p.next_action, w.expires);
	w = work("escalate");
	w.expires = T0 + 30 * MIN;
	w.step = 1;
	w.done_ok = "fax";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 16 * MIN, &p, why,
	    sizeof(why));
	assert_int_equal(p.next_action, w.expires);
}

/* confirm = delivered: a delivered delivery needs nothing more. */
static void
test_confirm_delivered_stops(void **state)
{
	struct queue_work w = work("once");
	struct queue_outcome o = outcome("ok");
	struct queue_plan p;
	char why[256];

	w.state = QUEUE_DELIVERED;
	w.done_ok = "mail";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 1000, &p, why,
	    sizeof(why));
	assert_int_equal(p.next_action, 0);
	assert_int_equal(p.state, QUEUE_DELIVERED);
}

/* Rounds missed while the relay was down are not replayed one by one. */
static void
test_missed_rounds_collapse(void **state)
{
	struct queue_work w = work("once");
	struct queue_outcome o = outcome("ok");
	struct queue_plan p;
	char why[256];

	w.state = QUEUE_SENT;
	w.done_ok = "mail";
	plan_init(&p, &w);
	sched_outcome(&conf, all_usable, &w, &o, T0 + 5 * 60 * MIN + 1000, &p,
	    why, sizeof(why));
	assert_int_equal(p.round, 5);
	assert_int_equal(p.next_action, T0 + 5 * 60 * MIN + 1000);
}

static void
test_message_id(void **state)
{
	char id[160];

	sched_message_id(&conf, "abc", 2, 3, id, sizeof(id));
	assert_string_equal(id, "<abc.r2.n3@test-relay>");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_sends_first_step),
		cmocka_unit_test(test_due_expires),
		cmocka_unit_test(test_due_skips_step_without_address),
		cmocka_unit_test(test_due_fails_without_any_channel),
		cmocka_unit_test(test_due_waits_for_down_channel),
		cmocka_unit_test(test_outcome_ok_waits_for_next_step),
		cmocka_unit_test(test_outcome_ok_schedules_reminder),
		cmocka_unit_test(test_outcome_delivered),
		cmocka_unit_test(test_outcome_tempfail_backoff),
		cmocka_unit_test(test_outcome_permfail_escalates_now),
		cmocka_unit_test(test_outcome_permfail_with_ok_waits),
		cmocka_unit_test(test_ok_keeps_other_backoff),
		cmocka_unit_test(test_retry_capped_at_next_step),
		cmocka_unit_test(test_due_moves_on_at_next_step_time),
		cmocka_unit_test(test_outcome_permfail_fails),
		cmocka_unit_test(test_two_channels_one_step),
		cmocka_unit_test(test_no_repeat_waits_for_expiry),
		cmocka_unit_test(test_confirm_delivered_stops),
		cmocka_unit_test(test_missed_rounds_collapse),
		cmocka_unit_test(test_message_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
