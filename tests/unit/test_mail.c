/*
 * test_mail.c - the mail a recipient receives (channels/mail.c).
 *
 * Every check reads the rendered bytes back with code written here, not
 * with mail.c's helpers: headers are unfolded and RFC 2047 encoded-words
 * decoded by a small independent decoder, the body is base64-decoded with
 * OpenSSL.  Times are shown in Asia/Tokyo.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/unit/mailtest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "channels/mail.h"
#include "relay/relay.h"

static const struct mail_opts ja_opts = {
	.from = "警報センター <alerts@relay.example.jp>",
	.reply_to = "replies@relay.example.jp",
	.relay = "test-relay",
	.language = "ja",
};

static const struct mail_opts en_opts = {
	.from = "Bureau Alerts <alerts@relay.example.jp>",
	.reply_to = NULL,
	.relay = "test-relay",
	.language = "en",
};

/* A first sending of a drill, AMBER, to recipient r0001. */
static struct channel_msg
base_msg(void)
{
	struct channel_msg m;

	memset(&m, 0, sizeof(m));
	m.attempt = 1001;
	m.delivery = 42;
	m.alert = "20261121-0042";
	m.revision = 1;
	m.recipient = "r0001";
	m.name = "山田 太郎";
	m.org = "東町水道事業団";
	m.address = "r0001@example.jp";
	m.code = "ABCDEFGH";
	m.subject = "断水のお知らせ";
	m.body = "本日 14 時より断水します。\n対象: 東町 1-3 丁目\n";
	m.tlp = QUEUE_TLP_AMBER;
	m.drill = 1;
	m.created = 1795259400000LL;	/* 2026-11-21 20:10 JST */
	m.expires = m.created + 86400000LL;
	m.round = 0;
	m.message_id = "<d.1.1.0@test-relay>";
	m.references = NULL;
	return m;
}

static char *
render(const struct mail_opts *o, const struct channel_msg *m)
{
	char err[256], *out = NULL;
	size_t len = 0;

	if (mail_render(o, m, &out, &len, err, sizeof(err)) == -1)
		fail_msg("mail_render: %s", err);
	assert_int_equal(strlen(out), len);
	return out;
}

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates). */
static int
utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t k;
		uint32_t v;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 2, v = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			k = 3, v = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 4, v = c & 0x07;
		else
			return 0;
		if (i + k > n)
			return 0;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			v = v << 6 | (s[i + j] & 0x3f);
		}
		if ((k == 3 && v < 0x800) || (k == 4 && v < 0x10000) ||
		    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		i += k;
	}
	return 1;
}

/* base64 (no line breaks) into out; returns the byte count. */
static size_t
b64dec(const char *in, size_t n, unsigned char *out)
{
	int r = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);

	assert_true(r >= 0);
	if (n >= 1 && in[n - 1] == '=')
		r--;
	if (n >= 2 && in[n - 2] == '=')
		r--;
	return (size_t)r;
}


/*
 * Decode RFC 2047 "=?UTF-8?B?...?=" words in an unfolded value; blanks
 * between two encoded-words are dropped.  Each word must hold valid UTF-8
 * on its own (a character split between words fails here).  words counts
 * the encoded-words.  Allocated.
 */
static char *
decode2047(const char *v, int *words)
{
	char *out = malloc(strlen(v) + 1), *q = out;
	const char *p = v, *e, *prev_end = NULL;
	unsigned char buf[256];
	size_t n;

	assert_non_null(out);
	if (words)
		*words = 0;
	while (*p != '\0') {
		if (strncmp(p, "=?UTF-8?B?", 10) == 0 &&
		    (e = strstr(p + 10, "?=")) != NULL) {
			if (prev_end != NULL) {
				/* drop the blanks since the last word */
				const char *b = prev_end;

				while (b < p && (*b == ' ' || *b == '\t'))
					b++;
				if (b == p)
					q -= p - prev_end;
			}
			assert_true(e - p + 2 <= 75);
			n = b64dec(p + 10, (size_t)(e - p - 10), buf);
			assert_true(utf8_ok(buf, n));
			memcpy(q, buf, n);
			q += n;
			p = e + 2;
			prev_end = p;
			if (words)
				(*words)++;
		} else
			*q++ = *p++;
	}
	*q = '\0';
	return out;
}

static char *
decoded_header(const char *msg, const char *name)
{
	char *v = header(msg, name), *d;

	if (v == NULL)
		return NULL;
	d = decode2047(v, NULL);
	free(v);
	return d;
}

/* The body: base64 lines after the blank line, decoded.  Allocated. */
static char *
body_of(const char *msg)
{
	const char *p = strstr(msg, "\r\n\r\n");
	char *b64, *q, *out;
	size_t n;

	assert_non_null(p);
	p += 4;
	b64 = q = malloc(strlen(p) + 1);
	assert_non_null(b64);
	for (; *p != '\0'; p++)
		if (*p != '\r' && *p != '\n')
			*q++ = *p;
	*q = '\0';
	out = malloc(strlen(b64) + 1);
	assert_non_null(out);
	n = b64dec(b64, strlen(b64), (unsigned char *)out);
	out[n] = '\0';
	free(b64);
	return out;
}

/* Each line ends in CRLF, no bare CR or LF, no line over max. */
static void
check_lines(const char *msg, size_t max)
{
	const char *p = msg, *e;

	while (*p != '\0') {
		e = strstr(p, "\r\n");
		assert_non_null(e);
		assert_null(memchr(p, '\n', (size_t)(e - p)));
		assert_null(memchr(p, '\r', (size_t)(e - p)));
		if ((size_t)(e - p) > max)
			fail_msg("line longer than %zu: %.*s", max,
			    (int)(e - p), p);
		p = e + 2;
	}
}

static void
expect(const char *msg, const char *name, const char *want)
{
	char *v = decoded_header(msg, name);

	if (v == NULL)
		fail_msg("no %s header", name);
	assert_string_equal(v, want);
	free(v);
}

static void
test_headers_ja(void **state)
{
	struct channel_msg m = base_msg();
	char *msg = render(&ja_opts, &m), *v;

	expect(msg, "Subject",
	    "【訓練】[TLP:AMBER] 断水のお知らせ [確認コード: ABCD-EFGH]");
	expect(msg, "From", "警報センター <alerts@relay.example.jp>");
	expect(msg, "To", "山田 太郎 <r0001@example.jp>");
	expect(msg, "Reply-To", "replies@relay.example.jp");
	expect(msg, "Message-ID", "<d.1.1.0@test-relay>");
	expect(msg, "MIME-Version", "1.0");
	expect(msg, "Content-Type", "text/plain; charset=UTF-8");
	expect(msg, "Content-Transfer-Encoding", "base64");
	expect(msg, "Auto-Submitted", "auto-generated");
	expect(msg, "X-Dengon-Alert", "20261121-0042");
	expect(msg, "X-Dengon-Delivery", "42");
	expect(msg, "X-Dengon-TLP", "AMBER");
	assert_null(header(msg, "In-Reply-To"));
	assert_null(header(msg, "References"));
	v = header(msg, "Date");
	assert_non_null(v);
	/* "Sat, 21 Nov 2026 20:10:00 +0900": the configured zone */
	assert_int_equal(strlen(v), strlen("Sat, 21 Nov 2026 20:10:00 +0900") -
	    (v[6] == ' ' ? 1 : 0));
	assert_string_equal(v + strlen(v) - 5, "+0900");
	assert_non_null(strchr("MTWFS", v[0]));
	assert_int_equal(v[3], ',');
	free(v);
	check_lines(msg, 78);
	free(msg);
}

static void
test_body_ja(void **state)
{
	struct channel_msg m = base_msg();
	char *msg = render(&ja_opts, &m), *b = body_of(msg);

	assert_true(utf8_ok((unsigned char *)b, strlen(b)));
	assert_int_equal(strncmp(b, "【訓練】", strlen("【訓練】")), 0);
	assert_non_null(strstr(b, "TLP:AMBER"));
	assert_non_null(strstr(b, "東町水道事業団 山田 太郎 様"));
	assert_non_null(strstr(b, "本日 14 時より断水します。\r\n対象: 東町"));
	assert_non_null(strstr(b, "確認コード: ABCD-EFGH"));
	assert_non_null(strstr(b, "このメールに返信"));
	assert_non_null(strstr(b, "電話または FAX"));
	assert_non_null(strstr(b, "「ABCD-EFGH」"));
	assert_non_null(strstr(b, "通知番号: 20261121-0042"));
	assert_non_null(strstr(b, "警報センター（test-relay）"));
	assert_non_null(strstr(b, "2026-11-21 20:10 JST"));
	/* the alert body comes before the confirmation block */
	assert_true(strstr(b, "本日") < strstr(b, "受信確認のお願い"));
	/* the decoded text is CRLF too */
	check_lines(b, 998);
	free(b);
	free(msg);
}

static void
test_no_drill(void **state)
{
	struct channel_msg m = base_msg();
	char *msg, *b;

	m.drill = 0;
	m.tlp = QUEUE_TLP_GREEN;
	msg = render(&ja_opts, &m);
	expect(msg, "Subject",
	    "[TLP:GREEN] 断水のお知らせ [確認コード: ABCD-EFGH]");
	b = body_of(msg);
	assert_null(strstr(b, "訓練"));
	assert_int_equal(strncmp(b, "TLP:GREEN", 9), 0);
	free(b);
	free(msg);
}

static void
test_reminder_and_update(void **state)
{
	struct channel_msg m = base_msg();
	char *msg, *b;

	m.round = 2;
	m.revision = 3;
	m.message_id = "<d.1.3.2@test-relay>";
	m.references = "<d.1.1.0@test-relay>";
	msg = render(&ja_opts, &m);
	expect(msg, "Subject", "【訓練】【再送】【更新】[TLP:AMBER] 断水のお知らせ "
	    "[確認コード: ABCD-EFGH]");
	expect(msg, "Message-ID", "<d.1.3.2@test-relay>");
	expect(msg, "In-Reply-To", "<d.1.1.0@test-relay>");
	expect(msg, "References", "<d.1.1.0@test-relay>");
	b = body_of(msg);
	assert_non_null(strstr(b, "再送 2 回目"));
	assert_non_null(strstr(b, "第 3 版"));
	assert_int_equal(strncmp(b, "【訓練】", strlen("【訓練】")), 0);
	free(b);
	free(msg);
}

static void
test_english(void **state)
{
	struct channel_msg m = base_msg();
	char *msg, *b, *v;

	m.subject = "Water outage";
	m.name = "Taro Yamada";
	m.org = NULL;
	m.round = 1;
	m.revision = 2;
	m.tlp = QUEUE_TLP_RED;
	m.references = "<d.1.1.0@test-relay>";
	msg = render(&en_opts, &m);
	expect(msg, "Subject", "[DRILL] [Reminder 1] [Update] [TLP:RED] Water "
	    "outage [code: ABCD-EFGH]");
	expect(msg, "From", "Bureau Alerts <alerts@relay.example.jp>");
	expect(msg, "To", "Taro Yamada <r0001@example.jp>");
	assert_null(header(msg, "Reply-To"));
	/* short ASCII is written as it is, not encoded */
	v = header(msg, "From");
	assert_string_equal(v, "Bureau Alerts <alerts@relay.example.jp>");
	free(v);
	b = body_of(msg);
	assert_int_equal(strncmp(b, "[DRILL] ", 8), 0);
	assert_non_null(strstr(b, "TLP:RED (for the named recipients only"));
	assert_non_null(strstr(b, "Confirmation code: ABCD-EFGH"));
	assert_non_null(strstr(b, "reply to this mail, keeping the code in "
	    "the subject"));
	assert_non_null(strstr(b, "call or fax us back and quote the code "
	    "ABCD-EFGH"));
	assert_non_null(strstr(b, "Alert:  20261121-0042"));
	assert_non_null(strstr(b, "From:   Bureau Alerts (test-relay)"));
	assert_non_null(strstr(b, "Issued: 2026-11-21 20:10 JST"));
	assert_null(strstr(b, "訓練"));
	check_lines(msg, 78);
	free(b);
	free(msg);
}

/* Returns 1 if some header line of msg starts with name + ':'. */
static int
has_header_line(const char *msg, const char *name)
{
	const char *p = msg;
	size_t n = strlen(name);

	while (p != NULL && strncmp(p, "\r\n", 2) != 0) {
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			return 1;
		if ((p = strstr(p, "\r\n")) != NULL)
			p += 2;
	}
	return 0;
}

static void
test_injection(void **state)
{
	struct channel_msg m = base_msg();
	char *msg, *v;

	m.drill = 0;
	m.subject = "Hello\r\nBcc: evil@example.net";
	m.name = "Name\r\nBcc: evil@example.net";
	m.org = "Org\nX-Evil: 1";
	msg = render(&en_opts, &m);
	assert_false(has_header_line(msg, "Bcc"));
	assert_false(has_header_line(msg, "X-Evil"));
	v = decoded_header(msg, "Subject");
	assert_string_equal(v, "[TLP:AMBER] Hello  Bcc: evil@example.net "
	    "[code: ABCD-EFGH]");
	free(v);
	v = decoded_header(msg, "To");
	assert_string_equal(v, "Name  Bcc: evil@example.net <r0001@example.jp>");
	free(v);
	check_lines(msg, 78);
	free(msg);

	/* C1 controls (NEL) become blanks, invalid UTF-8 becomes '?' */
	m.subject = "a\xc2\x85" "b\xff" "c";
	m.name = "n";
	msg = render(&en_opts, &m);
	v = decoded_header(msg, "Subject");
	assert_string_equal(v, "[TLP:AMBER] a b?c [code: ABCD-EFGH]");
	free(v);
	free(msg);
}

static void
test_bad_addresses(void **state)
{
	static const char *bad[] = { "a\r\nRCPT TO:<x@y>@example.jp",
	    "a\n@example.jp", "a<b@example.jp", "a>b@example.jp",
	    "a,b@example.jp", "a b@example.jp", "no-at-sign", "", "@example.jp",
	    "a@", "a@b@c", "a;b@example.jp", "\"q\"@example.jp" };
	struct channel_msg m = base_msg();
	char err[256], *out;
	size_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		m.address = bad[i];
		err[0] = '\0';
		out = NULL;
		if (mail_render(&ja_opts, &m, &out, &len, err,
		    sizeof(err)) != -1)
			fail_msg("address accepted: \"%s\"", bad[i]);
		assert_null(out);
		assert_true(err[0] != '\0');
	}
	m = base_msg();
	m.message_id = "<a@b>\r\nBcc: x@y";
	assert_int_equal(mail_render(&ja_opts, &m, &out, &len, err,
	    sizeof(err)), -1);
	m = base_msg();
	m.references = "<a@b> Bcc:";
	assert_int_equal(mail_render(&ja_opts, &m, &out, &len, err,
	    sizeof(err)), -1);
	m = base_msg();
	m.alert = "A\r\nB";
	assert_int_equal(mail_render(&ja_opts, &m, &out, &len, err,
	    sizeof(err)), -1);
}

static void
test_long_japanese_subject(void **state)
{
	struct channel_msg m = base_msg();
	char subject[400], want[600], *msg, *v, *d;
	int words;

	/* 3- and 4-byte characters, so that word boundaries fall everywhere */
	subject[0] = '\0';
	for (int i = 0; i < 10; i++)
		strcat(subject, i % 3 ? "長い件名の試験" : "🚰給水車");
	m.subject = subject;
	for (int shift = 0; shift < 4; shift++) {
		/* vary the prefix to move every boundary */
		m.drill = shift & 1;
		m.round = shift & 2 ? 1 : 0;
		msg = render(&ja_opts, &m);
		check_lines(msg, 78);
		v = header(msg, "Subject");
		d = decode2047(v, &words);	/* fails on a split character */
		assert_true(words >= 4);
		snprintf(want, sizeof(want), "%s%s[TLP:AMBER] %s [確認コード: "
		    "ABCD-EFGH]", m.drill ? "【訓練】" : "", m.round ? "【再送】" :
		    "", subject);
		assert_string_equal(d, want);
		free(d);
		free(v);
		/* encoded-word lines are at most 76 (RFC 2047) */
		for (const char *p = strstr(msg, "Subject:"), *e;
		    p != NULL && (e = strstr(p, "\r\n")) != NULL; p = e + 2) {
			assert_true(e - p <= 76);
			if (e[2] != ' ')
				break;
		}
		free(msg);
	}
}

static void
test_long_name_folds(void **state)
{
	struct channel_msg m = base_msg();
	char *msg;

	m.name = "とても長い名前の受信者さまとても長い名前の受信者さまとても長い名前";
	m.org = NULL;
	msg = render(&ja_opts, &m);
	check_lines(msg, 78);
	expect(msg, "To", "とても長い名前の受信者さまとても長い名前の受信者さま"
	    "とても長い名前 <r0001@example.jp>");
	free(msg);
}

static void
test_split_mailbox(void **state)
{
	char name[64], addr[64];

	assert_int_equal(mail_split_mailbox("\"Bureau Alerts\" <a@b.jp>", name,
	    sizeof(name), addr, sizeof(addr)), 0);
	assert_string_equal(name, "Bureau Alerts");
	assert_string_equal(addr, "a@b.jp");
	assert_int_equal(mail_split_mailbox("  a@b.jp ", name, sizeof(name),
	    addr, sizeof(addr)), 0);
	assert_string_equal(name, "");
	assert_string_equal(addr, "a@b.jp");
	assert_int_equal(mail_split_mailbox("警報 <a@b.jp>", name, sizeof(name),
	    addr, sizeof(addr)), 0);
	assert_string_equal(name, "警報");
	assert_int_equal(mail_split_mailbox("X <a@b.jp", name, sizeof(name),
	    addr, sizeof(addr)), -1);
	assert_int_equal(mail_split_mailbox("X <a b@c>", name, sizeof(name),
	    addr, sizeof(addr)), -1);
}

static void
test_body_edges(void **state)
{
	static char longline[3000];
	struct channel_msg m = base_msg();
	char *msg, *b;

	/* a very long line; a lone ".", CR-only and CRLF line ends */
	memset(longline, 'x', sizeof(longline) - 2);
	longline[sizeof(longline) - 2] = '\n';
	m.body = longline;
	msg = render(&ja_opts, &m);
	check_lines(msg, 78);
	free(msg);
	m.body = ".\r\nline\rnext";
	msg = render(&ja_opts, &m);
	b = body_of(msg);
	assert_non_null(strstr(b, "\r\n.\r\nline\r\nnext\r\n"));
	check_lines(b, 998);
	free(b);
	free(msg);
}

static int
setup(void **state)
{
	relay_set_timezone("Asia/Tokyo");
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_ja),
		cmocka_unit_test(test_body_ja),
		cmocka_unit_test(test_no_drill),
		cmocka_unit_test(test_reminder_and_update),
		cmocka_unit_test(test_english),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_long_japanese_subject),
		cmocka_unit_test(test_long_name_folds),
		cmocka_unit_test(test_split_mailbox),
		cmocka_unit_test(test_body_edges),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
