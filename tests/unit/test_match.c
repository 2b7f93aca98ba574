/*
 * test_match.c - what an inbound message proves (relay/match.c, rules
 * M1-M5), on a real queue: replies with codes in every format, replies
 * to our Message-IDs, automatic replies, wrong codes and throttling,
 * DSNs and MDNs, and a message processed twice.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/match.h"
#include "relay/relay.h"
#include "relay/sched.h"

static struct conf_step steps[] = {
	{ .channels = (char *[]){ "mail" }, .nchannels = 1, .delay = 0 },
};
static struct conf_policy policies[] = {
	{ .name = "standard", .steps = steps, .nsteps = 1, .repeat = 3600,
	  .expire = 86400, .confirm = CONF_CONFIRM_ACK },
	{ .name = "read", .steps = steps, .nsteps = 1, .repeat = 3600,
	  .expire = 86400, .confirm = CONF_CONFIRM_READ },
};
static struct conf_channel channels[] = {
	{ .name = "mail", .type = "smtp" },
};
static struct conf conf = {
	.name = "test-relay", .default_policy = "standard",
	.channels = channels, .nchannels = 1,
	.policies = policies, .npolicies = 2,
	.retry_min = 30, .retry_max = 600,
};

struct fixture {
	char		 dir[64];
	struct queue	*q;
	char		 alert[41];	/* 3 recipients: a, b, c */
	char		 other[41];	/* another alert to a */
	char		 readalert[41];	/* policy confirm = read, to a */
	char		 readalert2[41];	/* the same, for the MDN */
};

/* code and token of a delivery, read from the queue */
struct dinfo {
	const char	*recipient;
	char		 code[CODE_LEN + 1];
	char		 token[33];
	char		 state[16];
	int64_t		 id;
};

static int
dinfo_cb(const struct queue_delivery_info *d, void *arg)
{
	struct dinfo *di = arg;

	if (strcmp(d->recipient, di->recipient) != 0)
		return 0;
	snprintf(di->code, sizeof(di->code), "%s", d->code);
	snprintf(di->token, sizeof(di->token), "%s", d->token);
	snprintf(di->state, sizeof(di->state), "%s",
	    queue_state_name(d->state));
	di->id = d->id;
	return 0;
}

static struct dinfo
dinfo(struct fixture *f, const char *alert, const char *recipient)
{
	struct dinfo di = { .recipient = recipient };

	assert_true(queue_deliveries_each(f->q, alert, dinfo_cb, &di) >= 0);
	return di;
}

static int
all_usable(const struct conf_channel *ch)
{
	(void)ch;
	return 1;
}

static void
plan_cb(const struct queue_work *w, const struct queue_outcome *o,
    struct queue_plan *plan, void *arg)
{
	static char why[256];

	sched_outcome(&conf, all_usable, w, o, queue_now(), plan, why,
	    sizeof(why));
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct contact v[3] = {
		{ .id = "a", .name = "A", .mail = "a@example.jp" },
		{ .id = "b", .name = "B", .mail = "b@example.jp" },
		{ .id = "c", .name = "C", .mail = "c@example.jp" },
	};
	struct contact_list l = { v, 3 };
	struct code_keyring kr = { 0 };
	struct queue_new_alert na = { .subject = "s", .body = "b",
	    .tlp = QUEUE_TLP_GREEN, .targets = "a,b,c", .source = "test" };
	char err[256], path[128];
	int64_t n;

	snprintf(f->dir, sizeof(f->dir), "/tmp/dengon-test-match-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/secret.key", f->dir);
	assert_int_equal(code_keyring_create(path, err, sizeof(err)), 0);
	assert_int_equal(code_keyring_load(path, &kr, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/queue.db", f->dir);
	f->q = queue_open(path, NULL, QUEUE_OPEN_CREATE, err, sizeof(err));
	assert_non_null(f->q);
	assert_int_equal(queue_contacts_replace(f->q, &l, "test"), QUEUE_OK);
	assert_int_equal(queue_alert_accept(f->q, &conf, &kr, &na, f->alert,
	    sizeof(f->alert), &n), QUEUE_OK);
	na.targets = "a";
	assert_int_equal(queue_alert_accept(f->q, &conf, &kr, &na, f->other,
	    sizeof(f->other), &n), QUEUE_OK);
	na.policy = "read";
	assert_int_equal(queue_alert_accept(f->q, &conf, &kr, &na,
	    f->readalert, sizeof(f->readalert), &n), QUEUE_OK);
	assert_int_equal(queue_alert_accept(f->q, &conf, &kr, &na,
	    f->readalert2, sizeof(f->readalert2), &n), QUEUE_OK);
	code_keyring_free(&kr);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	queue_close(f->q);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
	free(f);
	return 0;
}

/* A reply from `from` with subject and text; id is its Message-ID. */
static struct inbox_msg
reply(const char *id, const char *from, const char *subject, const char *text)
{
	struct inbox_msg m;

	memset(&m, 0, sizeof(m));
	m.key = "1";
	m.message_id = id;
	m.from = from;
	m.subject = subject;
	m.text = text;
	m.kind = INBOX_MESSAGE;
	m.raw = "raw message";
	m.raw_len = 11;
	return m;
}

static int
process(struct fixture *f, const struct inbox_msg *m, char *desc)
{
	return match_inbound(f->q, &conf, "replies", m, plan_cb, NULL, desc,
	    256);
}

static void
test_codes_in_text(void **state)
{
	char out[MATCH_MAX_CODES][CODE_LEN + 1];
	int fmt[MATCH_MAX_CODES];

	assert_int_equal(match_codes("Re: [確認コード: 7K3M-Q9XD] 了解", out, fmt,
	    MATCH_MAX_CODES), 1);
	assert_string_equal(out[0], "7K3MQ9XD");
	assert_int_equal(fmt[0], 1);
	/* lower case, no hyphen, O and L for 0 and 1 */
	assert_int_equal(match_codes("code 7k3mq9xo ok", out, fmt, 4), 1);
	assert_string_equal(out[0], "7K3MQ9X0");
	assert_int_equal(fmt[0], 0);
	/* a space between the halves, full-width characters and hyphen */
	assert_int_equal(match_codes("ＡＢＣＤ－ＥＦＧＨ", out, fmt, 4), 1);
	assert_string_equal(out[0], "ABCDEFGH");
	assert_int_equal(match_codes("see ABCD EFGH.", out, fmt, 4), 1);
	/* not inside longer words, not with U, not 7 or 9 characters */
	assert_int_equal(match_codes("XABCDEFGH ABCDEFGHX ABCDEFU1 ABCDEFG "
	    "ABCDEFGHJ", out, fmt, 4), 0);
	/* duplicates collapse */
	assert_int_equal(match_codes("ABCD-EFGH abcdefgh", out, fmt, 4), 1);
}

static void
test_token(void **state)
{
	char t[33];

	assert_int_equal(match_token("<0123456789abcdef0123456789abcdef.r1.n0"
	    "@test-relay>", "test-relay", t), 0);
	assert_string_equal(t, "0123456789abcdef0123456789abcdef");
	/* several ids, ours second */
	assert_int_equal(match_token("<x@y> <0123456789abcdef0123456789abcdef"
	    ".r2.n3@test-relay>", "test-relay", t), 0);
	/* another relay's, or malformed */
	assert_int_equal(match_token("<0123456789abcdef0123456789abcdef.r1.n0"
	    "@other>", "test-relay", t), -1);
	assert_int_equal(match_token("<0123@test-relay>", "test-relay", t), -1);
	assert_int_equal(match_token("no ids", "test-relay", t), -1);
}

/* M1: a code in the subject confirms, by mail, from the sender. */
static void
test_reply_with_code(void **state)
{
	struct fixture *f = *state;
	struct dinfo a = dinfo(f, f->alert, "a");
	char subj[128], desc[256];
	struct inbox_msg m;

	snprintf(subj, sizeof(subj), "Re: 警報 [確認コード: %.4s-%.4s]", a.code,
	    a.code + 4);
	m = reply("<r1@example.jp>", "a@example.jp", subj, "了解しました");
	assert_int_equal(process(f, &m, desc), 1);
	assert_non_null(strstr(desc, "confirmed"));
	assert_string_equal(dinfo(f, f->alert, "a").state, "confirmed");
	/* the other alert's delivery to the same recipient is untouched */
	assert_string_equal(dinfo(f, f->other, "a").state, "pending");
	/* the same message again changes nothing */
	assert_int_equal(process(f, &m, desc), 1);
	assert_non_null(strstr(desc, "already"));
}

/* M1: a code in the text, lower case, no hyphen; from another address:
 * accepted, marked. */
static void
test_reply_code_in_text_foreign(void **state)
{
	struct fixture *f = *state;
	struct dinfo b = dinfo(f, f->alert, "b");
	char text[128], desc[256], lower[CODE_LEN + 1];
	struct inbox_msg m;

	for (int i = 0; i < CODE_LEN; i++)
		lower[i] = (char)(b.code[i] >= 'A' && b.code[i] <= 'Z' ?
		    b.code[i] + 32 : b.code[i]);
	lower[CODE_LEN] = '\0';
	snprintf(text, sizeof(text), "受領しました。\nコード %s\n", lower);
	m = reply("<r2@example.jp>", "colleague@example.jp", "Re: 警報", text);
	assert_int_equal(process(f, &m, desc), 1);
	assert_non_null(strstr(desc, "not the recipient's address"));
	assert_string_equal(dinfo(f, f->alert, "b").state, "confirmed");
}

/* M1: In-Reply-To names our message. */
static void
test_reply_by_message_id(void **state)
{
	struct fixture *f = *state;
	struct dinfo c = dinfo(f, f->alert, "c");
	char irt[128], desc[256];
	struct inbox_msg m;

	snprintf(irt, sizeof(irt), "<%s.r1.n0@test-relay>", c.token);
	m = reply("<r3@example.jp>", "c@example.jp", "Re: 警報", "OK");
	m.in_reply_to = irt;
	assert_int_equal(process(f, &m, desc), 1);
	assert_string_equal(dinfo(f, f->alert, "c").state, "confirmed");
}

/* M2: an automatic reply quoting the code confirms nothing. */
static void
test_auto_reply_ignored(void **state)
{
	struct fixture *f = *state;
	struct dinfo a = dinfo(f, f->other, "a");
	char subj[128], desc[256];
	struct inbox_msg m;

	snprintf(subj, sizeof(subj), "不在: [確認コード: %.4s-%.4s]", a.code,
	    a.code + 4);
	m = reply("<v1@example.jp>", "a@example.jp", subj, "休暇中です");
	m.auto_submitted = "auto-replied";
	assert_int_equal(process(f, &m, desc), 1);
	assert_non_null(strstr(desc, "Auto-Submitted"));
	assert_string_equal(dinfo(f, f->other, "a").state, "pending");
}

/* M3: wrong codes confirm nothing; a guesser is throttled. */
static void
test_wrong_codes_throttled(void **state)
{
	struct fixture *f = *state;
	struct dinfo a = dinfo(f, f->other, "a");
	char subj[128], id[64], desc[256];
	struct inbox_msg m;
	int64_t n;

	for (int i = 0; i < MATCH_MAX_BAD; i++) {
		snprintf(id, sizeof(id), "<guess%d@evil.example>", i);
		m = reply(id, "guesser@evil.example", "Re: ZZZZ-ZZZ0", "");
		m.subject = i % 2 ? "Re: ZZZZ-ZZZ0" : "Re: YYYY-YYY1";
		assert_int_equal(process(f, &m, desc), 1);
		assert_non_null(strstr(desc, "matches no delivery"));
	}
	assert_int_equal(queue_bad_code_count(f->q, "guesser@evil.example", 0,
	    &n), QUEUE_OK);
	assert_int_equal(n, MATCH_MAX_BAD);
	/* now even the right code from that sender is not heard */
	snprintf(subj, sizeof(subj), "Re: %.4s-%.4s", a.code, a.code + 4);
	m = reply("<guess-right@evil.example>", "guesser@evil.example", subj,
	    "");
	assert_int_equal(process(f, &m, desc), 1);
	assert_non_null(strstr(desc, "too many"));
	assert_string_equal(dinfo(f, f->other, "a").state, "pending");
	/* plain words are no guesses */
	m = reply("<words@example.jp>", "someone@example.jp", "DELIVERY "
	    "STATUS", "ABSOLUTE NONSENSE");
	assert_int_equal(process(f, &m, desc), 1);
	assert_int_equal(queue_bad_code_count(f->q, "someone@example.jp", 0,
	    &n), QUEUE_OK);
	assert_int_equal(n, 0);
}

/* M4: a DSN names its attempt: delivered, then failed makes a permfail. */
static void
test_dsn(void **state)
{
	struct fixture *f = *state;
	struct dinfo a = dinfo(f, f->other, "a");
	struct queue_claim cl = { .delivery = a.id, .channel = "mail",
	    .address = "a@example.jp", .message_id = "<m@x>", .revision = 1 };
	struct queue_outcome o = { .outcome = "ok", .evidence = "250 ok" };
	struct inbox_dsn_rcpt r = { .final_recipient = "a@example.jp",
	    .action = "delivered", .status = "2.0.0" };
	struct inbox_msg m;
	char envid[32], desc[256];

	assert_int_equal(queue_claim(f->q, &cl, 1, queue_now() + 1000),
	    QUEUE_OK);
	assert_true(cl.attempt > 0);
	o.attempt = cl.attempt;
	assert_int_equal(queue_outcomes(f->q, &o, 1, queue_now(), plan_cb,
	    NULL, "test"), QUEUE_OK);
	assert_string_equal(dinfo(f, f->other, "a").state, "sent");
	snprintf(envid, sizeof(envid), "%lld", (long long)cl.attempt);
	memset(&m, 0, sizeof(m));
	m.kind = INBOX_DSN;
	m.message_id = "<dsn1@mta>";
	m.envelope_id = envid;
	m.rcpts = &r;
	m.nrcpts = 1;
	assert_int_equal(process(f, &m, desc), 1);
	assert_string_equal(dinfo(f, f->other, "a").state, "delivered");
	/* a DSN for an attempt that does not exist proves nothing */
	m.message_id = "<dsn2@mta>";
	m.envelope_id = "999999";
	assert_int_equal(process(f, &m, desc), 1);
	assert_non_null(strstr(desc, "no such attempt"));
}

static void
test_dsn_failed(void **state)
{
	struct fixture *f = *state;
	struct dinfo b = dinfo(f, f->readalert, "a");
	struct queue_claim cl = { .delivery = b.id, .channel = "mail",
	    .address = "a@example.jp", .message_id = "<m2@x>", .revision = 1 };
	struct queue_outcome o = { .outcome = "ok", .evidence = "250 ok" };
	struct inbox_dsn_rcpt r = { .final_recipient = "a@example.jp",
	    .action = "failed", .status = "5.1.1",
	    .diagnostic = "smtp; 550 5.1.1 user unknown" };
	struct inbox_msg m;
	char envid[32], desc[256];

	assert_int_equal(queue_claim(f->q, &cl, 1, queue_now() + 1000),
	    QUEUE_OK);
	o.attempt = cl.attempt;
	assert_int_equal(queue_outcomes(f->q, &o, 1, queue_now(), plan_cb,
	    NULL, "test"), QUEUE_OK);
	snprintf(envid, sizeof(envid), "%lld", (long long)cl.attempt);
	memset(&m, 0, sizeof(m));
	m.kind = INBOX_DSN;
	m.message_id = "<dsn3@mta>";
	m.envelope_id = envid;
	m.rcpts = &r;
	m.nrcpts = 1;
	assert_int_equal(process(f, &m, desc), 1);
	/* mail was its only channel: the delivery has failed for good */
	assert_string_equal(dinfo(f, f->readalert, "a").state, "failed");
}

/* M5: an MDN is evidence; under confirm = read it confirms. */
static void
test_mdn(void **state)
{
	struct fixture *f = *state;
	struct dinfo b = dinfo(f, f->other, "a");
	struct inbox_msg m;
	char omid[128], desc[256];

	/* f->other's delivery is delivered (test_dsn): an MDN is evidence */
	snprintf(omid, sizeof(omid), "<%s.r1.n0@test-relay>", b.token);
	memset(&m, 0, sizeof(m));
	m.kind = INBOX_MDN;
	m.message_id = "<mdn1@example.jp>";
	m.disposition = "displayed";
	m.original_message_id = omid;
	assert_int_equal(process(f, &m, desc), 1);
	assert_non_null(strstr(desc, "MDN displayed"));
	assert_string_equal(dinfo(f, f->other, "a").state, "delivered");
	/* under confirm = read, "displayed" is a confirmation */
	b = dinfo(f, f->readalert2, "a");
	snprintf(omid, sizeof(omid), "<%s.r1.n0@test-relay>", b.token);
	m.message_id = "<mdn2@example.jp>";
	m.from = "a@example.jp";
	assert_int_equal(process(f, &m, desc), 1);
	assert_non_null(strstr(desc, "read receipt"));
	assert_string_equal(dinfo(f, f->readalert2, "a").state, "confirmed");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codes_in_text),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_reply_with_code),
		cmocka_unit_test(test_reply_code_in_text_foreign),
		cmocka_unit_test(test_reply_by_message_id),
		cmocka_unit_test(test_auto_reply_ignored),
		cmocka_unit_test(test_wrong_codes_throttled),
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_dsn_failed),
		cmocka_unit_test(test_mdn),
	};

	/* the tests build on each other's queue: one group fixture */
	return cmocka_run_group_tests(tests, setup, teardown);
}
