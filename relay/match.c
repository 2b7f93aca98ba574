/*
 * match.c - what an inbound message proves: confirmations by reply,
 * delivery reports and read receipts (rules M1-M5 in match.h).
 *
 * No state of its own: every decision is recorded in the queue, in the
 * same transaction as the record that the message was processed, so that
 * reading a message twice changes nothing.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "relay/match.h"
#include "relay/relay.h"

#define RAW_EVIDENCE	8192	/* bytes of a message kept with a confirmation */

/* Fold text to ASCII for code scanning: full-width letters, digits and
 * hyphens become ASCII, Japanese hyphen-like marks become '-', the
 * ideographic space a space; any other non-ASCII character becomes '\1',
 * a boundary.  Returns an allocated string (caller frees) or NULL. */
static char *
fold_ascii(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), i = 0, o = 0, n;
	char *out = malloc(len + 1);

	if (out == NULL)
		return NULL;
	while (i < len) {
		unsigned cp;

		if (s[i] < 0x80) {
			out[o++] = (char)s[i++];
			continue;
		}
		if ((n = ingest_utf8_seq(s + i, len - i)) == 0) {
			out[o++] = '\1';
			i++;
			continue;
		}
		cp = n == 2 ? (unsigned)(s[i] & 0x1f) << 6 | (s[i + 1] & 0x3f) :
		    n == 3 ? (unsigned)(s[i] & 0x0f) << 12 |
		    (unsigned)(s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f) : 0;
		if (cp >= 0xff10 && cp <= 0xff19)
			out[o++] = (char)('0' + cp - 0xff10);
		else if (cp >= 0xff21 && cp <= 0xff3a)
			out[o++] = (char)('A' + cp - 0xff21);
		else if (cp >= 0xff41 && cp <= 0xff5a)
			out[o++] = (char)('a' + cp - 0xff41);
		else if (cp == 0xff0d || (cp >= 0x2010 && cp <= 0x2015) ||
		    cp == 0x2212 || cp == 0x30fc || cp == 0xff70)
			out[o++] = '-';
		else if (cp == 0x3000)
			out[o++] = ' ';
		else
			out[o++] = '\1';
		i += n;
	}
	out[o] = '\0';
	return out;
}

/* A character that may be in a code as typed (Crockford, plus the O, I
 * and L that code_normalise() reads as 0 and 1; not U). */
static int
code_char(int c)
{
	c = toupper(c);
	return isdigit(c) || (c >= 'A' && c <= 'Z' && c != 'U');
}

int
match_codes(const char *text, char (*out)[CODE_LEN + 1], int *formatted,
    int max)
{
	char *t, cand[16], norm[CODE_LEN + 1];
	int n = 0;

	if (text == NULL || (t = fold_ascii(text)) == NULL)
		return 0;
	for (size_t i = 0; t[i] != '\0' && n < max; i++) {
		size_t j = i, k = 0;
		int sep = 0, hyphen = 0;

		if (i > 0 && isalnum((unsigned char)t[i - 1]))
			continue;		/* not at a word's start */
		while (k < 8 && t[j] != '\0') {
			if (code_char((unsigned char)t[j]))
				cand[k++] = t[j++];
			else if (k == 4 && !sep && (t[j] == '-' || t[j] == ' ')) {
				hyphen = t[j] == '-';
				sep = 1;
				j++;
			} else
				break;
		}
		if (k != 8 || isalnum((unsigned char)t[j]))
			continue;		/* not 8, or part of a longer word */
		cand[k] = '\0';
		if (code_normalise(cand, norm) == -1)
			continue;
		int dup = 0;
		for (int m = 0; m < n; m++)
			dup |= strcmp(out[m], norm) == 0;
		if (dup)
			continue;
		memcpy(out[n], norm, CODE_LEN + 1);
		if (formatted != NULL)
			formatted[n] = hyphen;
		n++;
	}
	free(t);
	return n;
}

int
match_token(const char *ids, const char *relay_name, char token[33])
{
	const char *p = ids, *lt, *gt, *at;
	size_t nlen = strlen(relay_name);

	while (p != NULL && (lt = strchr(p, '<')) != NULL) {
		if ((gt = strchr(lt, '>')) == NULL)
			return -1;
		at = memchr(lt, '@', (size_t)(gt - lt));
		p = gt + 1;
		/* <32 hex digits .rN.nN @relay> */
		if (at == NULL || (size_t)(gt - at - 1) != nlen ||
		    strncasecmp(at + 1, relay_name, nlen) != 0 ||
		    at - lt < 34 || lt[33] != '.' || lt[34] != 'r')
			continue;
		int ok = 1;
		for (int i = 1; i <= 32; i++)
			ok &= isxdigit((unsigned char)lt[i]) &&
			    !isupper((unsigned char)lt[i]);
		if (!ok)
			continue;
		memcpy(token, lt + 1, 32);
		token[32] = '\0';
		return 0;
	}
	return -1;
}

/* The key an inbound message is recorded under: its Message-ID, or a
 * digest of its bytes when it has none. */
static void
inbound_id(const struct inbox_msg *m, char *out, size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (m->message_id != NULL && *m->message_id != '\0') {
		snprintf(out, outlen, "%s", m->message_id);
		return;
	}
	EVP_Digest(m->raw ? m->raw : "", m->raw ? m->raw_len : 0, md, &n,
	    EVP_sha256(), NULL);
	snprintf(out, outlen, "sha256:");
	for (unsigned int i = 0; i < n && 7 + 2 * i + 2 < outlen; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* The raw message, cut to RAW_EVIDENCE bytes, as a string (caller frees). */
static char *
evidence_of(const struct inbox_msg *m)
{
	size_t n = m->raw_len < RAW_EVIDENCE ? m->raw_len : RAW_EVIDENCE;
	char *e = malloc(n + 1);

	if (e == NULL)
		return NULL;
	if (n > 0)
		memcpy(e, m->raw, n);
	e[n] = '\0';
	/* no NUL in the middle of evidence stored as text */
	for (size_t i = 0; i < n; i++)
		if (e[i] == '\0')
			e[i] = ' ';
	return e;
}

/* Confirm (alert, recipient) from an inbound message (via mail or sms, from
 * origin, with its raw evidence); 1 committed, 0 failure. */
static int
confirm_via(struct queue *q, const char *inbox, const char *iid,
    const char *via, const char *origin, const char *evidence,
    const char *alert, const char *recipient, const char *how, char *desc,
    size_t desclen)
{
	struct queue_confirm cf;
	struct queue_confirm_result res;
	int rc;

	memset(&cf, 0, sizeof(cf));
	cf.alert = alert;
	cf.recipient = recipient;
	cf.via = via;
	cf.origin = origin;
	cf.note = how;
	cf.evidence = evidence;
	cf.inbox = inbox;
	cf.inbound = iid;
	rc = queue_confirm(q, &cf, &res);
	if (rc == QUEUE_OK) {
		snprintf(desc, desclen, "%s %s %s by %s from %s (%s)%s%s",
		    alert, recipient, res.already ? "already processed" :
		    res.duplicate ? "confirmed again" : "confirmed", via,
		    origin ? origin : "?", how,
		    res.foreign ? ", not the recipient's address" : "",
		    res.late ? ", late" : "");
		return 1;
	}
	if (rc == QUEUE_REFUSED || rc == QUEUE_NOTFOUND || rc == QUEUE_INVALID) {
		snprintf(desc, desclen, "%s %s not confirmed: %s", alert,
		    recipient, queue_errmsg(q));
		return 1;	/* committed by queue_confirm, or nothing to do */
	}
	snprintf(desc, desclen, "%s", queue_errmsg(q));
	return 0;
}

/* Confirm (alert, recipient) from mail message m. */
static int
confirm_from(struct queue *q, const char *inbox, const char *iid,
    const struct inbox_msg *m, const char *alert, const char *recipient,
    const char *how, char *desc, size_t desclen)
{
	char *ev = evidence_of(m);
	int rc = confirm_via(q, inbox, iid, "mail", m->from, ev, alert,
	    recipient, how, desc, desclen);

	free(ev);
	return rc;
}

/* Record that a message proved nothing; 1 committed, 0 failure. */
static int
ignore(struct queue *q, const char *inbox, const char *iid, const char *kind,
    const char *why, char *desc, size_t desclen)
{
	snprintf(desc, desclen, "ignored (%s): %s", kind, why);
	return queue_inbound_record(q, inbox, iid, kind, why) == QUEUE_OK;
}

static int
match_dsn(struct queue *q, const char *inbox, const char *iid,
    const struct inbox_msg *m, queue_plan_fn plan, void *arg, char *desc,
    size_t desclen)
{
	const struct inbox_dsn_rcpt *r = m->nrcpts > 0 ? &m->rcpts[0] : NULL;
	char *end;
	long long attempt;
	int rc, already = 0;

	if (m->envelope_id == NULL || r == NULL)
		return ignore(q, inbox, iid, "dsn", "no Original-Envelope-Id "
		    "or no recipient block", desc, desclen);
	attempt = strtoll(m->envelope_id, &end, 10);
	if (*m->envelope_id == '\0' || *end != '\0' || attempt <= 0)
		return ignore(q, inbox, iid, "dsn", "not one of our envelope "
		    "ids", desc, desclen);
	rc = queue_dsn(q, attempt, r->action, r->status, r->diagnostic, inbox,
	    iid, plan, arg, &already);
	if (rc == QUEUE_NOTFOUND)
		return ignore(q, inbox, iid, "dsn", "no such attempt", desc,
		    desclen);
	if (rc != QUEUE_OK) {
		snprintf(desc, desclen, "%s", queue_errmsg(q));
		return 0;
	}
	snprintf(desc, desclen, "DSN for attempt %lld: %s %s%s", attempt,
	    r->action ? r->action : "?", r->status ? r->status : "",
	    already ? " (already processed)" : "");
	return 1;
}

struct policy_ctx {
	const struct conf	*c;
	int			 read_confirms;
};

static int
policy_of(const struct queue_work *w, void *arg)
{
	struct policy_ctx *ctx = arg;
	const struct conf_policy *p = conf_policy_find(ctx->c, w->policy);

	ctx->read_confirms = p != NULL && p->confirm == CONF_CONFIRM_READ;
	return QUEUE_OK;
}

static int
match_mdn(struct queue *q, const struct conf *c, const char *inbox,
    const char *iid, const struct inbox_msg *m, char *desc, size_t desclen)
{
	char token[33], alert[41], recipient[65];
	struct policy_ctx pc = { .c = c };
	int64_t id;
	int already = 0;

	if (m->original_message_id == NULL ||
	    match_token(m->original_message_id, c->name, token) == -1 ||
	    queue_token_find(q, token, alert, recipient) != QUEUE_OK)
		return ignore(q, inbox, iid, "mdn", "not about one of our "
		    "messages", desc, desclen);
	if (queue_delivery_find(q, alert, recipient, &id) == QUEUE_OK &&
	    queue_work_get(q, id, policy_of, &pc) == QUEUE_OK &&
	    pc.read_confirms && m->disposition != NULL &&
	    strcmp(m->disposition, "displayed") == 0)
		return confirm_from(q, inbox, iid, m, alert, recipient,
		    "read receipt (MDN), policy confirm = read", desc, desclen);
	if (queue_mdn(q, token, m->disposition, inbox, iid, &already) !=
	    QUEUE_OK) {
		snprintf(desc, desclen, "%s", queue_errmsg(q));
		return 0;
	}
	snprintf(desc, desclen, "MDN %s for %s %s%s", m->disposition ?
	    m->disposition : "?", alert, recipient, already ?
	    " (already processed)" : "");
	return 1;
}

int
match_inbound(struct queue *q, const struct conf *c, const char *inbox,
    const struct inbox_msg *m, queue_plan_fn plan, void *arg, char *desc,
    size_t desclen)
{
	/* candidates of the Subject [0] and of the text [1] */
	char iid[256], codes[2][MATCH_MAX_CODES][CODE_LEN + 1];
	char alert[41], recipient[65], token[33], why[256];
	int formatted[2][MATCH_MAX_CODES], n[2], rc;
	int64_t bad = 0;
	const char *from = m->from ? m->from : "unknown sender";

	inbound_id(m, iid, sizeof(iid));
	if ((rc = queue_inbound_seen(q, inbox, iid)) != 0) {
		snprintf(desc, desclen, rc == 1 ? "already processed" : "%s",
		    queue_errmsg(q));
		return rc == 1;
	}
	if (m->kind == INBOX_DSN)
		return match_dsn(q, inbox, iid, m, plan, arg, desc, desclen);
	if (m->kind == INBOX_MDN)
		return match_mdn(q, c, inbox, iid, m, desc, desclen);
	/* M2 */
	if (m->auto_submitted != NULL && strcasecmp(m->auto_submitted, "no") != 0)
		return ignore(q, inbox, iid, "auto", "Auto-Submitted: an "
		    "automatic reply confirms nothing", desc, desclen);
	/* M3: a sender that keeps guessing is not heard for a while */
	if (queue_bad_code_count(q, from, queue_now() - 3600 * 1000LL,
	    &bad) != QUEUE_OK) {
		snprintf(desc, desclen, "%s", queue_errmsg(q));
		return 0;
	}
	if (bad >= MATCH_MAX_BAD) {
		log_warnx("inbox %s: %s sent %lld wrong codes in the last hour: "
		    "ignored", inbox, from, (long long)bad);
		return ignore(q, inbox, iid, "throttled", "too many wrong codes "
		    "from this sender", desc, desclen);
	}
	/* M1: a code, in the Subject first, then in the text */
	for (int pass = 0; pass < 2; pass++) {
		n[pass] = match_codes(pass == 0 ? m->subject : m->text,
		    codes[pass], formatted[pass], MATCH_MAX_CODES);
		for (int i = 0; i < n[pass]; i++) {
			if (queue_code_find(q, codes[pass][i], alert,
			    recipient) != QUEUE_OK)
				continue;
			return confirm_from(q, inbox, iid, m, alert, recipient,
			    pass == 0 ? "reply: code in the subject" :
			    "reply: code in the text", desc, desclen);
		}
	}
	/* M1: or an answer to one of our messages */
	if ((m->in_reply_to != NULL &&
	    match_token(m->in_reply_to, c->name, token) == 0) ||
	    (m->references != NULL &&
	    match_token(m->references, c->name, token) == 0)) {
		if (queue_token_find(q, token, alert, recipient) == QUEUE_OK)
			return confirm_from(q, inbox, iid, m, alert, recipient,
			    "reply to our message (In-Reply-To/References)",
			    desc, desclen);
	}
	/* M3: a formatted code that matches nothing is a wrong code */
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n[pass]; i++) {
			if (!formatted[pass][i])
				continue;
			snprintf(why, sizeof(why), "code %.4s-%.4s by mail from "
			    "%s matches no delivery", codes[pass][i],
			    codes[pass][i] + 4, from);
			if (queue_bad_code(q, from, codes[pass][i], why, inbox,
			    iid) != QUEUE_OK) {
				snprintf(desc, desclen, "%s", queue_errmsg(q));
				return 0;
			}
			snprintf(desc, desclen, "ignored (reply): %s", why);
			return 1;
		}
	}
	return ignore(q, inbox, iid, "other", "no confirmation code and not a "
	    "reply to one of our messages", desc, desclen);
}

int
match_sms(struct queue *q, const struct conf *c, const char *inbox,
    const char *from, const char *text, const char *key, const char *raw,
    char *desc, size_t desclen)
{
	char codes[MATCH_MAX_CODES][CODE_LEN + 1], alert[41], recipient[65];
	char why[256];
	int formatted[MATCH_MAX_CODES], n, rc;
	int64_t bad = 0;

	if ((rc = queue_inbound_seen(q, inbox, key)) != 0) {
		snprintf(desc, desclen, rc == 1 ? "already processed" : "%s",
		    queue_errmsg(q));
		return rc == 1;
	}
	/* M3 */
	if (queue_bad_code_count(q, from, queue_now() - 3600 * 1000LL,
	    &bad) != QUEUE_OK) {
		snprintf(desc, desclen, "%s", queue_errmsg(q));
		return 0;
	}
	if (bad >= MATCH_MAX_BAD) {
		log_warnx("%s: %s sent %lld wrong codes in the last hour: "
		    "ignored", inbox, from, (long long)bad);
		return ignore(q, inbox, key, "throttled", "too many wrong codes "
		    "from this number", desc, desclen);
	}
	/* M1: the code in the text */
	n = match_codes(text, codes, formatted, MATCH_MAX_CODES);
	for (int i = 0; i < n; i++)
		if (queue_code_find(q, codes[i], alert, recipient) == QUEUE_OK)
			return confirm_via(q, inbox, key, "sms", from, raw, alert,
			    recipient, "SMS reply: code in the text", desc,
			    desclen);
	/* M3: a code that matches nothing */
	for (int i = 0; i < n; i++) {
		if (!formatted[i])
			continue;	/* any 8-letter word would count */
		snprintf(why, sizeof(why), "code %.4s-%.4s by SMS from %s "
		    "matches no delivery", codes[i], codes[i] + 4, from);
		if (queue_bad_code(q, from, codes[i], why, inbox, key) !=
		    QUEUE_OK) {
			snprintf(desc, desclen, "%s", queue_errmsg(q));
			return 0;
		}
		snprintf(desc, desclen, "ignored (reply): %s", why);
		return 1;
	}
	(void)c;
	return ignore(q, inbox, key, "other", "no confirmation code in the "
	    "text", desc, desclen);
}
