/*
 * test_forgery.c - confirmation forgery: guessed codes confirm nothing, and
 * a valid code confirms only the delivery it was made for.
 *
 * The real queue (queue_open on a temporary database) holds a small
 * directory and two alerts to all of it.  Then:
 *   1. one million random codes, typed the way people type them (any case,
 *      O for 0, I/L for 1, a hyphen or spaces), go through code_normalise()
 *      and are looked up among every delivery's code (read back with
 *      queue_deliveries_each(), the codes queue_confirm() matches on):
 *      none matches.  With 40-bit codes and 2 x RCPTS deliveries the chance
 *      of even one match is about 1e6 * 2 * RCPTS / 2^40, 4e-5;
 *   2. ten thousand of them go through queue_confirm() itself (each a
 *      committed refusal with its event and bad_code row, hence not a
 *      million): every one is QUEUE_REFUSED and nothing is confirmed;
 *   3. the valid code of alert B's delivery to a recipient confirms that
 *      delivery and never alert A's delivery to the same recipient, and a
 *      valid code of another recipient confirms that recipient only.
 * The guesses come from a fixed-seed generator (DENGON_FORGERY_SEED
 * overrides it); the relay secret is fresh on every run.  The database
 * lives in /dev/shm when there is one: this test is about matching, not
 * about fsync, and must stay well under 20 s, also under ASan.
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

#include "queue/queue.h"

#define RCPTS		10
#define GUESSES		1000000
#define SUBMITTED	10000

static char tmpdir[64];
static struct code_keyring keyring;
static struct queue *q;
static char alert_a[48], alert_b[48];

/* Every delivery's code, sorted, for bsearch. */
static char codes[2 * RCPTS][CODE_LEN + 1];
static size_t ncodes;

static struct conf_step steps[] = {
	{ .channels = (char *[]){ "mail" }, .nchannels = 1, .delay = 0 },
};
static struct conf_policy policies[] = {
	{ .name = "standard", .steps = steps, .nsteps = 1, .repeat = 3600,
	  .expire = 86400 },
};
static struct conf_channel channels[] = {
	{ .name = "mail", .type = "smtp" },
};
static struct conf conf = {
	.name = "test-relay",
	.default_policy = "standard",
	.channels = channels,
	.nchannels = 1,
	.policies = policies,
	.npolicies = 1,
};

/* ---- random guesses ----------------------------------------------------- */

static uint64_t rng_state;

/* xorshift64*: fast, reproducible, and good enough to spread guesses. */
static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

/*
 * A random code as a person might type it: 8 characters of the alphabet,
 * some in lower case, 0 and 1 sometimes written O, I or L, and a hyphen or
 * spaces in the middle now and then.  out holds at least 16 bytes.
 */
static void
random_typed_code(char *out)
{
	static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t r = rng(), style = rng();
	size_t o = 0;

	for (int i = 0; i < CODE_LEN; i++) {
		char ch = alpha[r & 31];

		r >>= 5;
		if (ch == '0' && (style & 1))
			ch = 'O';
		else if (ch == '1' && (style & 2))
			ch = (style & 4) ? 'I' : 'L';
		if ((style >> (8 + i)) & 1)
			ch = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' :
			    ch);
		if (i == 4 && (style & 0x10000))
			out[o++] = '-';
		else if (i == 4 && (style & 0x20000))
			out[o++] = ' ';
		out[o++] = ch;
	}
	out[o] = '\0';
}

/* ---- fixtures ------------------------------------------------------------ */

static int
code_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static int
collect_code(const struct queue_delivery_info *d, void *arg)
{
	(void)arg;
	if (ncodes < 2 * RCPTS)
		snprintf(codes[ncodes++], CODE_LEN + 1, "%s", d->code);
	return 0;
}

static int
setup(void **state)
{
	struct contact v[RCPTS];
	struct contact_list l = { v, RCPTS };
	struct queue_new_alert a = {
		.subject = "Forgery test",
		.body = "Body\n",
		.tlp = QUEUE_TLP_GREEN,
		.targets = "all",
		.source = "test",
	};
	char path[128], err[256], ids[RCPTS][16], mails[RCPTS][40];
	const char *seed = getenv("DENGON_FORGERY_SEED");
	int64_t n;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/dengon-test-forgery-XXXXXX",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/secret.key", tmpdir);
	if (code_keyring_create(path, err, sizeof(err)) < 0 ||
	    code_keyring_load(path, &keyring, err, sizeof(err)) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/queue.db", tmpdir);
	if ((q = queue_open(path, NULL, QUEUE_OPEN_CREATE, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "queue_open: %s\n", err);
		return -1;
	}
	memset(v, 0, sizeof(v));
	for (int i = 0; i < RCPTS; i++) {
		snprintf(ids[i], sizeof(ids[i]), "r%04d", i);
		snprintf(mails[i], sizeof(mails[i]), "r%04d@example.jp", i);
		v[i].id = ids[i];
		v[i].name = ids[i];
		v[i].mail = mails[i];
		v[i].line = i + 2;
	}
	if (queue_contacts_replace(q, &l, "test") != QUEUE_OK ||
	    queue_alert_accept(q, &conf, &keyring, &a, alert_a,
	    sizeof(alert_a), &n) != QUEUE_OK || n != RCPTS ||
	    queue_alert_accept(q, &conf, &keyring, &a, alert_b,
	    sizeof(alert_b), &n) != QUEUE_OK || n != RCPTS) {
		fprintf(stderr, "setup: %s\n", queue_errmsg(q));
		return -1;
	}
	ncodes = 0;
	if (queue_deliveries_each(q, alert_a, collect_code, NULL) != QUEUE_OK ||
	    queue_deliveries_each(q, alert_b, collect_code, NULL) != QUEUE_OK ||
	    ncodes != 2 * RCPTS)
		return -1;
	qsort(codes, ncodes, sizeof(codes[0]), code_cmp);
	rng_state = seed != NULL ? strtoull(seed, NULL, 0) : 0x64656e676f6eULL;
	if (rng_state == 0)
		rng_state = 1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	queue_close(q);
	code_keyring_free(&keyring);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Deliveries of alert in state s. */
static int
count_cb(const struct queue_delivery_info *d, void *arg)
{
	int *n = arg;

	if (d->state == QUEUE_CONFIRMED || d->confirmed_at != 0)
		(*n)++;
	return 0;
}

static int
confirmed(const char *alert)
{
	int n = 0;

	assert_int_equal(queue_deliveries_each(q, alert, count_cb, &n),
	    QUEUE_OK);
	return n;
}

/* The code of alert's delivery to recipient. */
struct find {
	const char	*recipient;
	char		 code[CODE_LEN + 1];
	enum queue_state state;
};

static int
find_cb(const struct queue_delivery_info *d, void *arg)
{
	struct find *f = arg;

	if (strcmp(d->recipient, f->recipient) != 0)
		return 0;
	snprintf(f->code, sizeof(f->code), "%s", d->code);
	f->state = d->state;
	return 1;
}

static struct find
find(const char *alert, const char *recipient)
{
	struct find f = { .recipient = recipient };

	assert_int_equal(queue_deliveries_each(q, alert, find_cb, &f), 1);
	return f;
}

/* ---- the tests ------------------------------------------------------------ */

/* One million typed guesses, normalised, matched against every code. */
static void
test_million_guesses(void **state)
{
	char typed[16], code[CODE_LEN + 1];
	long matches = 0, unreadable = 0;

	(void)state;
	for (long i = 0; i < GUESSES; i++) {
		random_typed_code(typed);
		if (code_normalise(typed, code) != 0) {
			unreadable++;
			continue;
		}
		if (bsearch(code, codes, ncodes, sizeof(codes[0]),
		    code_cmp) != NULL)
			matches++;
	}
	assert_int_equal(unreadable, 0);	/* every guess was a code */
	assert_int_equal(matches, 0);
}

static int
refusal_cb(const struct queue_event_info *e, void *arg)
{
	long *n = arg;

	if (strcmp(e->what, "confirmation refused") == 0)
		(*n)++;
	return 0;
}

/* Ten thousand guesses through queue_confirm(): refused, nothing moves. */
static void
test_submitted_guesses(void **state)
{
	struct queue_confirm cf = { .via = "sms", .origin = "+819012345678" };
	struct queue_confirm_result res;
	char typed[16], code[CODE_LEN + 1];
	long refused = 0, events = 0;

	(void)state;
	for (long i = 0; i < SUBMITTED; i++) {
		random_typed_code(typed);
		assert_int_equal(code_normalise(typed, code), 0);
		if (bsearch(code, codes, ncodes, sizeof(codes[0]),
		    code_cmp) != NULL)
			continue;	/* a real code (p ~ 2e-7): not a forgery */
		cf.code = typed;
		if (queue_confirm(q, &cf, &res) == QUEUE_REFUSED)
			refused++;
		else
			fail_msg("guess %s was not refused: %s", typed,
			    queue_errmsg(q));
	}
	assert_true(refused >= SUBMITTED - 1);
	/* Each refusal was recorded (who tried what), not just returned. */
	assert_int_equal(queue_events_each(q, NULL, refusal_cb, &events),
	    QUEUE_OK);
	assert_int_equal(events, refused);
	assert_int_equal(confirmed(alert_a), 0);
	assert_int_equal(confirmed(alert_b), 0);
	assert_int_equal(queue_check_invariants(q), QUEUE_OK);
}

/* A valid code confirms its own delivery, never another alert's or
 * another recipient's. */
static void
test_code_of_other_alert(void **state)
{
	struct queue_confirm cf = { .via = "mail", .origin = "r0003@example.jp" };
	struct queue_confirm_result res;
	struct find a3 = find(alert_a, "r0003"), b3 = find(alert_b, "r0003");
	struct find a4 = find(alert_a, "r0004");
	char fmt[CODE_LEN + 2];

	(void)state;
	assert_string_not_equal(a3.code, b3.code);

	/* B's code for r0003, as the recipient would type it. */
	code_format(b3.code, fmt);
	cf.code = fmt;
	assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
	assert_string_equal(res.alert, alert_b);
	assert_string_equal(res.recipient, "r0003");
	assert_int_equal(find(alert_b, "r0003").state, QUEUE_CONFIRMED);
	assert_int_not_equal(find(alert_a, "r0003").state, QUEUE_CONFIRMED);
	assert_int_equal(confirmed(alert_a), 0);

	/* Replayed: a duplicate of B's, still nothing of A's. */
	assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
	assert_string_equal(res.alert, alert_b);
	assert_int_equal(res.duplicate, 1);
	assert_int_equal(confirmed(alert_a), 0);
	assert_int_equal(confirmed(alert_b), 1);

	/* r0004's code of alert A, sent from r0003's address: it confirms
	 * r0004's delivery (the code names it), never r0003's. */
	cf.code = a4.code;
	assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
	assert_string_equal(res.alert, alert_a);
	assert_string_equal(res.recipient, "r0004");
	assert_int_not_equal(find(alert_a, "r0003").state, QUEUE_CONFIRMED);
	assert_int_equal(confirmed(alert_a), 1);
	assert_int_equal(confirmed(alert_b), 1);
	assert_int_equal(queue_check_invariants(q), QUEUE_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_million_guesses),
		cmocka_unit_test(test_submitted_guesses),
		cmocka_unit_test(test_code_of_other_alert),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
