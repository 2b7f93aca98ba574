/*
 * test_inbox_parse.c - one inbound mail read by inbox_parse()
 * (channels/inbox_mime.c).
 *
 * Every message is built here as bytes, the way Japanese mail clients and
 * MTAs write them: the charsets are made with iconv from UTF-8 (and a few
 * by hand, byte by byte), base64 with OpenSSL.  The checks read the
 * struct inbox_msg back.  Malformed input (every truncation of every
 * sample, bad base64, unknown charsets, NULs) must give valid UTF-8 or a
 * clean error, never a crash: the sanitizer build runs this too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "channels/inbox.h"
#include "relay/relay.h"

/* ---- building messages -------------------------------------------------- */

/* A growing message. */
struct msg {
	char	*s;
	size_t	 len;
};

static void
add(struct msg *m, const void *p, size_t n)
{
	m->s = realloc(m->s, m->len + n + 1);
	assert_non_null(m->s);
	memcpy(m->s + m->len, p, n);
	m->len += n;
	m->s[m->len] = '\0';
}

/* Append lines, each ended with CRLF (NULL ends the list). */
static void
lines(struct msg *m, ...)
{
	va_list ap;
	const char *l;

	va_start(ap, m);
	while ((l = va_arg(ap, const char *)) != NULL) {
		add(m, l, strlen(l));
		add(m, "\r\n", 2);
	}
	va_end(ap);
}

/* utf8 converted to charset by iconv; allocated, NUL-terminated. */
static char *
enc(const char *charset, const char *utf8)
{
	size_t inleft = strlen(utf8), cap = inleft * 4 + 16, oleft = cap;
	char *out = malloc(cap + 1), *ip = (char *)(uintptr_t)utf8, *op = out;
	iconv_t cd = iconv_open(charset, "UTF-8");

	assert_true(cd != (iconv_t)-1);
	assert_true(iconv(cd, &ip, &inleft, &op, &oleft) != (size_t)-1);
	assert_true(iconv(cd, NULL, NULL, &op, &oleft) != (size_t)-1);
	iconv_close(cd);
	*op = '\0';
	return out;
}

/* base64 of n bytes, one line; allocated. */
static char *
b64(const char *p, size_t n)
{
	char *out = malloc(n * 2 + 8);

	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)p, (int)n);
	return out;
}

/* "=?CHARSET?B?...?=" of utf8 converted to charset. */
static char *
word_b(const char *charset, const char *utf8)
{
	char *e = enc(charset, utf8), *b = b64(e, strlen(e)), *w;

	w = malloc(strlen(b) + strlen(charset) + 8);
	sprintf(w, "=?%s?B?%s?=", charset, b);
	free(e);
	free(b);
	return w;
}

/* ---- checking what came out ---------------------------------------------- */

static struct inbox_parsed P;

static const struct inbox_msg *
parse(const struct msg *m)
{
	char err[128];

	inbox_parsed_free(&P);
	if (inbox_parse(m->s, m->len, &P, err, sizeof(err)) == -1)
		fail_msg("inbox_parse: %s", err);
	return &P.msg;
}

static int
teardown(void **state)
{
	inbox_parsed_free(&P);
	return 0;
}

/* Every string of a parsed message is valid UTF-8; header fields hold no
 * control character, the text none but TAB and LF. */
static void
assert_sane(const struct inbox_msg *m)
{
	const char *hdr[] = { m->message_id, m->in_reply_to, m->references,
	    m->from, m->subject, m->auto_submitted, m->envelope_id,
	    m->disposition, m->original_message_id };

	for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
		if (hdr[i] == NULL)
			continue;
		assert_true(ingest_utf8_valid(hdr[i], strlen(hdr[i])));
		for (const char *p = hdr[i]; *p != '\0'; p++)
			assert_false((unsigned char)*p < 0x20 || *p == 0x7f);
		assert_true(strlen(hdr[i]) <= INBOX_HDR_MAX);
	}
	if (m->text != NULL) {
		assert_true(ingest_utf8_valid(m->text, strlen(m->text)));
		for (const char *p = m->text; *p != '\0'; p++)
			assert_false(((unsigned char)*p < 0x20 && *p != '\t' &&
			    *p != '\n') || *p == 0x7f);
		assert_true(strlen(m->text) <= INBOX_TEXT_MAX);
	}
	assert_true(m->raw_len <= INBOX_RAW_MAX);
	assert_true(m->nrcpts <= INBOX_MAX_RCPTS);
	for (size_t i = 0; i < m->nrcpts; i++) {
		const char *r[] = { m->rcpts[i].final_recipient,
		    m->rcpts[i].action, m->rcpts[i].status,
		    m->rcpts[i].diagnostic };

		for (size_t j = 0; j < 4; j++)
			if (r[j] != NULL)
				assert_true(ingest_utf8_valid(r[j],
				    strlen(r[j])));
	}
}

/* ---- the samples ----------------------------------------------------------- */

/* A person's reply in UTF-8, 8-bit in the header too (as many clients
 * now send), folded References, CRLF line ends. */
static void
sample_utf8(struct msg *m)
{
	lines(m, "Return-Path: <taro@example.jp>",
	    "From: \"山田 太郎\" <Taro.Yamada@Example.JP>",
	    "To: replies@relay.example.jp",
	    "Subject: Re: 【訓練】断水のお知らせ [確認コード: ABCD-EFGH]",
	    "Date: Sat, 21 Nov 2026 20:30:00 +0900",
	    "Message-ID: <reply.1@mail.example.jp>",
	    "In-Reply-To: <dengon.1.1.0@test-relay>",
	    "References: <dengon.1.1.0@test-relay>",
	    " <dengon.1.1.1@test-relay>",
	    "MIME-Version: 1.0",
	    "Content-Type: text/plain; charset=UTF-8",
	    "Content-Transfer-Encoding: 8bit",
	    "",
	    "確認しました。",
	    "山田",
	    "",
	    "> 確認コード: ABCD-EFGH", NULL);
}

static void
test_utf8_reply(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	sample_utf8(&m);
	r = parse(&m);
	assert_int_equal(r->kind, INBOX_MESSAGE);
	assert_string_equal(r->from, "Taro.Yamada@example.jp");
	assert_string_equal(r->subject,
	    "Re: 【訓練】断水のお知らせ [確認コード: ABCD-EFGH]");
	assert_string_equal(r->message_id, "<reply.1@mail.example.jp>");
	assert_string_equal(r->in_reply_to, "<dengon.1.1.0@test-relay>");
	assert_string_equal(r->references,
	    "<dengon.1.1.0@test-relay> <dengon.1.1.1@test-relay>");
	assert_null(r->auto_submitted);
	assert_string_equal(r->text,
	    "確認しました。\n山田\n\n> 確認コード: ABCD-EFGH\n");
	assert_null(r->key);
	assert_ptr_equal(r->raw, m.s);
	assert_int_equal(r->raw_len, m.len);
	assert_null(r->envelope_id);
	assert_int_equal(r->nrcpts, 0);
	assert_sane(r);
	free(m.s);
}

/* ISO-2022-JP: the Subject as RFC 2047 B words (two, folded), the body
 * 7bit, as Japanese mail clients have sent for thirty years. */
static void
sample_jis(struct msg *m)
{
	char *w1 = word_b("ISO-2022-JP", "Re: 断水のお知らせ"),
	    *w2 = word_b("ISO-2022-JP", "［確認コード: abcdefgh］"),
	    *body = enc("ISO-2022-JP", "了解しました。\r\n確認コードは abcd-efgh です。\r\n");
	char subj[512];

	snprintf(subj, sizeof(subj), "Subject: %s", w1);
	lines(m, "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <hanako@example.jp>",
	    "To: replies@relay.example.jp", subj, NULL);
	snprintf(subj, sizeof(subj), " %s", w2);
	lines(m, subj, "MIME-Version: 1.0",
	    "Content-Type: text/plain; charset=ISO-2022-JP",
	    "Content-Transfer-Encoding: 7bit", "", NULL);
	add(m, body, strlen(body));
	free(w1);
	free(w2);
	free(body);
}

static void
test_iso2022jp(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	sample_jis(&m);
	r = parse(&m);
	assert_string_equal(r->from, "hanako@example.jp");
	/* adjacent encoded words join without the fold between them */
	assert_string_equal(r->subject, "Re: 断水のお知らせ［確認コード: abcdefgh］");
	assert_string_equal(r->text, "了解しました。\n確認コードは abcd-efgh です。\n");
	assert_sane(r);
	free(m.s);
}

/* Shift_JIS as Windows writes it (CP932: ① and ～ are not in JIS X 0208),
 * 8bit, charset label "Shift_JIS". */
static void
sample_sjis(struct msg *m, int base64)
{
	char *body = enc("CP932", "①確認しました～\r\nコード ABCDEFGH\r\n"), *b;

	lines(m, "From: suzuki@example.co.jp", "Subject: =?shift_jis?B?h0A=?= OK",
	    "MIME-Version: 1.0", "Content-Type: text/plain; charset=\"Shift_JIS\"",
	    base64 ? "Content-Transfer-Encoding: base64" :
	    "Content-Transfer-Encoding: 8bit", "", NULL);
	if (base64) {
		b = b64(body, strlen(body));
		lines(m, b, NULL);
		free(b);
	} else
		add(m, body, strlen(body));
	free(body);
}

static void
test_shift_jis(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	for (int base64 = 0; base64 <= 1; base64++) {
		memset(&m, 0, sizeof(m));
		sample_sjis(&m, base64);
		r = parse(&m);
		assert_string_equal(r->subject, "① OK");
		assert_string_equal(r->text,
		    "①確認しました～\nコード ABCDEFGH\n");
		assert_sane(r);
		free(m.s);
	}
}

/* A raw Shift_JIS Subject (no RFC 2047) and a body with no charset: the
 * bytes are guessed (not UTF-8, not JIS: CP932). */
static void
test_unlabelled_sjis(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;
	char *subj = enc("CP932", "Subject: 確認しました"),
	    *body = enc("CP932", "了解です\r\n");

	lines(&m, "From: <ito@example.jp>", subj, "", NULL);
	add(&m, body, strlen(body));
	r = parse(&m);
	assert_string_equal(r->subject, "確認しました");
	assert_string_equal(r->text, "了解です\n");
	assert_sane(r);
	free(subj);
	free(body);
	free(m.s);
}

/* EUC-JP, labelled. */
static void
test_euc_jp(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;
	char *body = enc("EUC-JP", "確認済みです。\r\n"),
	    *w = word_b("EUC-JP", "返信");

	lines(&m, "From: kato@example.jp", "Subject: Re: test", "MIME-Version: 1.0",
	    "Content-Type: text/plain; charset=EUC-JP", "", NULL);
	add(&m, body, strlen(body));
	r = parse(&m);
	assert_string_equal(r->text, "確認済みです。\n");
	free(m.s);
	memset(&m, 0, sizeof(m));
	lines(&m, "From: kato@example.jp", NULL);
	add(&m, "Subject: ", 9);
	lines(&m, w, "", "x", NULL);
	r = parse(&m);
	assert_string_equal(r->subject, "返信");
	assert_sane(r);
	free(body);
	free(w);
	free(m.s);
}

/* ISO-2022-JP carrying the NEC row 13 (① is 0x2D21), which Windows
 * clients send and glibc's ISO-2022-JP refuses. */
static void
test_jis_nec(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	lines(&m, "From: a@example.jp", "Subject: x", "MIME-Version: 1.0",
	    "Content-Type: text/plain; charset=iso-2022-jp", "",
	    "\x1b$B-!3NG'\x1b(B OK", NULL);	/* "①確認 OK" */
	r = parse(&m);
	assert_string_equal(r->text, "①確認 OK\n");
	assert_sane(r);
	free(m.s);
}

/* quoted-printable UTF-8 with soft line breaks, and a Q-encoded Subject. */
static void
test_quoted_printable(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	lines(&m, "From: Jean <jean@example.fr>",
	    "Subject: =?utf-8?Q?R=C3=A9ponse_=E2=80=94_code?= ABCD-EFGH",
	    "MIME-Version: 1.0",
	    "Content-Type: text/plain; charset=utf-8",
	    "Content-Transfer-Encoding: quoted-printable", "",
	    "Bien re=C3=A7u, le code est =E7=A2=BA=E8=AA=8D ABCD-=",
	    "EFGH.", NULL);
	r = parse(&m);
	assert_string_equal(r->subject, "Réponse — code ABCD-EFGH");
	assert_string_equal(r->text, "Bien reçu, le code est 確認 ABCD-EFGH.\n");
	assert_sane(r);
	free(m.s);
}

/* multipart/alternative with the HTML first: the text/plain is chosen;
 * without a text/plain, the HTML's text. */
static void
test_multipart(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;
	char *b = b64("確認しました ABCD-EFGH\r\n", strlen("確認しました ABCD-EFGH\r\n"));

	lines(&m, "From: web@example.jp", "Subject: Re: alert",
	    "MIME-Version: 1.0",
	    "Content-Type: multipart/alternative; boundary=\"=_b1\"", "",
	    "preamble", "--=_b1",
	    "Content-Type: text/html; charset=utf-8", "",
	    "<html><body><p>HTML &amp; code</p></body></html>",
	    "--=_b1",
	    "Content-Type: text/plain; charset=utf-8",
	    "Content-Transfer-Encoding: base64", "", b,
	    "--=_b1--", NULL);
	r = parse(&m);
	assert_string_equal(r->text, "確認しました ABCD-EFGH\n");
	assert_sane(r);
	free(m.s);

	memset(&m, 0, sizeof(m));
	lines(&m, "From: web@example.jp", "Subject: html only",
	    "MIME-Version: 1.0",
	    "Content-Type: multipart/mixed; boundary=b2", "", "--b2",
	    "Content-Type: text/html; charset=utf-8", "",
	    "<html><head><style>p { color: red }</style></head><body>",
	    "<p>確認 &lt;ABCD-EFGH&gt;&#12290;</p><br>ok</body></html>",
	    "--b2",
	    "Content-Type: text/plain; charset=utf-8",
	    "Content-Disposition: attachment; filename=\"a.txt\"", "",
	    "an attachment, not the text", "--b2--", NULL);
	r = parse(&m);
	assert_non_null(r->text);
	assert_non_null(strstr(r->text, "確認 <ABCD-EFGH>。"));
	assert_null(strstr(r->text, "color"));
	assert_null(strstr(r->text, "attachment"));
	assert_sane(r);
	free(b);
	free(m.s);
}

/* A Postfix bounce: one failed, one delivered, the original message
 * returned (with a code in it that must not become the text). */
static void
sample_dsn(struct msg *m)
{
	lines(m, "Return-Path: <>",
	    "From: MAILER-DAEMON@mx.example.jp (Mail Delivery System)",
	    "Subject: Undelivered Mail Returned to Sender",
	    "To: alerts@relay.example.jp",
	    "Auto-Submitted: auto-replied",
	    "MIME-Version: 1.0",
	    "Content-Type: multipart/report; report-type=delivery-status;",
	    "\tboundary=\"4ABC.1795260000/mx.example.jp\"",
	    "Message-Id: <20261121.4ABC@mx.example.jp>", "",
	    "This is a MIME-encapsulated message.", "",
	    "--4ABC.1795260000/mx.example.jp",
	    "Content-Description: Notification",
	    "Content-Type: text/plain; charset=us-ascii", "",
	    "This is the mail system at host mx.example.jp.", "",
	    "I'm sorry to have to inform you that your message could not",
	    "be delivered to one or more recipients.", "",
	    "--4ABC.1795260000/mx.example.jp",
	    "Content-Description: Delivery report",
	    "Content-Type: message/delivery-status", "",
	    "Reporting-MTA: dns; mx.example.jp",
	    "X-Postfix-Queue-ID: 4ABC",
	    "X-Postfix-Sender: rfc822; alerts@relay.example.jp",
	    "Original-Envelope-Id: 1001",
	    "Arrival-Date: Sat, 21 Nov 2026 20:10:00 +0900 (JST)", "",
	    "Final-Recipient: rfc822; r0001@example.jp",
	    "Original-Recipient: rfc822;r0001@example.jp",
	    "Action: failed",
	    "Status: 5.1.1",
	    "Remote-MTA: dns; mx2.example.jp",
	    "Diagnostic-Code: smtp; 550 5.1.1 <r0001@example.jp>: Recipient address",
	    "    rejected: User unknown in local recipient table", "",
	    "Final-Recipient: rfc822; R0002@Example.JP",
	    "Action: delivered",
	    "Status: 2.0.0 (delivered to mailbox)", "",
	    "--4ABC.1795260000/mx.example.jp",
	    "Content-Description: Undelivered Message Headers",
	    "Content-Type: text/rfc822-headers", "",
	    "Subject: [確認コード: WXYZ-2345]",
	    "Message-ID: <dengon.1.1.0@test-relay>", "",
	    "--4ABC.1795260000/mx.example.jp--", NULL);
}

static void
test_dsn(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	sample_dsn(&m);
	r = parse(&m);
	assert_int_equal(r->kind, INBOX_DSN);
	assert_string_equal(r->from, "MAILER-DAEMON@mx.example.jp");
	assert_string_equal(r->auto_submitted, "auto-replied");
	assert_string_equal(r->envelope_id, "1001");
	assert_int_equal(r->nrcpts, 2);
	assert_string_equal(r->rcpts[0].final_recipient, "r0001@example.jp");
	assert_string_equal(r->rcpts[0].action, "failed");
	assert_string_equal(r->rcpts[0].status, "5.1.1");
	assert_string_equal(r->rcpts[0].diagnostic,
	    "smtp; 550 5.1.1 <r0001@example.jp>: Recipient address rejected: "
	    "User unknown in local recipient table");
	assert_string_equal(r->rcpts[1].final_recipient, "R0002@example.jp");
	assert_string_equal(r->rcpts[1].action, "delivered");
	assert_string_equal(r->rcpts[1].status, "2.0.0");
	assert_null(r->rcpts[1].diagnostic);
	assert_non_null(r->text);
	assert_non_null(strstr(r->text, "This is the mail system"));
	assert_null(strstr(r->text, "WXYZ"));
	assert_sane(r);
	free(m.s);
}

/* A DSN with the original attached as message/rfc822 and an xtext ENVID:
 * the attached message (its code, its text) is never read. */
static void
test_dsn_attached(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	lines(&m, "From: postmaster@example.org", "Subject: Delivery Status",
	    "MIME-Version: 1.0",
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=x",
	    "", "--x", "Content-Type: message/delivery-status", "",
	    "Original-Envelope-Id: 10+2B01", "Reporting-MTA: dns; example.org",
	    "", "Original-Recipient: rfc822;someone@example.org",
	    "Action: delayed", "Status: 4.4.1", "",
	    "--x", "Content-Type: message/rfc822", "",
	    "Subject: the alert", "", "確認コード: WXYZ-2345", "--x--", NULL);
	r = parse(&m);
	assert_int_equal(r->kind, INBOX_DSN);
	assert_string_equal(r->envelope_id, "10+01");
	assert_int_equal(r->nrcpts, 1);
	assert_string_equal(r->rcpts[0].final_recipient, "someone@example.org");
	assert_string_equal(r->rcpts[0].action, "delayed");
	assert_string_equal(r->rcpts[0].status, "4.4.1");
	assert_null(r->text);
	assert_sane(r);
	free(m.s);
}

/* A read receipt (RFC 8098), as Thunderbird sends it. */
static void
sample_mdn(struct msg *m)
{
	char *w = word_b("UTF-8", "開封確認"), subj[128];

	snprintf(subj, sizeof(subj), "Subject: %s: alert", w);
	free(w);
	lines(m, "From: =?UTF-8?B?5bGx55Sw?= <taro@example.jp>", subj,
	    "Message-ID: <mdn.1@example.jp>",
	    "MIME-Version: 1.0",
	    "Content-Type: multipart/report; report-type=disposition-notification;",
	    " boundary=\"------------MDN1\"", "",
	    "This is a cryptographically signed message... no, a receipt.",
	    "--------------MDN1",
	    "Content-Type: text/plain; charset=UTF-8",
	    "Content-Transfer-Encoding: 8bit", "",
	    "これはあなたが送信したメッセージの開封確認です。", "",
	    "--------------MDN1",
	    "Content-Type: message/disposition-notification; name=\"MDNPart2.txt\"",
	    "Content-Disposition: inline", "",
	    "Reporting-UA: example.jp; Thunderbird 115.0",
	    "Final-Recipient: rfc822;taro@example.jp",
	    "Original-Message-ID: <dengon.1.1.0@test-relay>",
	    "Disposition: manual-action/MDN-sent-manually; displayed", "",
	    "--------------MDN1--", NULL);
}

static void
test_mdn(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	sample_mdn(&m);
	r = parse(&m);
	assert_int_equal(r->kind, INBOX_MDN);
	assert_string_equal(r->from, "taro@example.jp");
	assert_string_equal(r->subject, "開封確認: alert");
	assert_string_equal(r->disposition, "displayed");
	assert_string_equal(r->original_message_id, "<dengon.1.1.0@test-relay>");
	assert_string_equal(r->text,
	    "これはあなたが送信したメッセージの開封確認です。\n");
	assert_null(r->envelope_id);
	assert_sane(r);
	free(m.s);

	/* an older MDN: a modifier after the type */
	memset(&m, 0, sizeof(m));
	lines(&m, "From: x@example.jp", "MIME-Version: 1.0",
	    "Content-Type: multipart/report; report-type=disposition-notification; boundary=q",
	    "", "--q", "Content-Type: message/disposition-notification", "",
	    "Disposition: automatic-action/MDN-sent-automatically; deleted/error",
	    "Original-Message-Id: <a@b>", "--q--", NULL);
	r = parse(&m);
	assert_int_equal(r->kind, INBOX_MDN);
	assert_string_equal(r->disposition, "deleted");
	assert_string_equal(r->original_message_id, "<a@b>");
	free(m.s);
}

/* An out-of-office reply says what it is. */
static void
test_auto_submitted(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;
	char *w = word_b("UTF-8", "自動応答: 不在です");
	char subj[256];

	snprintf(subj, sizeof(subj), "Subject: %s", w);
	lines(&m, "From: sato@example.jp", subj,
	    "Auto-Submitted: auto-replied (vacation)",
	    "In-Reply-To: <dengon.3.1.0@test-relay>", "",
	    "11/23 まで不在です。", NULL);
	r = parse(&m);
	assert_int_equal(r->kind, INBOX_MESSAGE);
	assert_string_equal(r->auto_submitted, "auto-replied (vacation)");
	assert_string_equal(r->subject, "自動応答: 不在です");
	assert_string_equal(r->in_reply_to, "<dengon.3.1.0@test-relay>");
	assert_sane(r);
	free(w);
	free(m.s);
}

/* ---- malformed input --------------------------------------------------------- */

static void
test_empty(void **state)
{
	struct inbox_parsed p;
	char err[64];

	assert_int_equal(inbox_parse("", 0, &p, err, sizeof(err)), -1);
	assert_string_equal(err, "empty message");
	inbox_parsed_free(&p);
}

/* Bad base64, an unknown charset, NULs and controls, a header without a
 * body, a body without headers, a From that does not parse. */
static void
test_malformed(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	lines(&m, "From: a@example.jp", "Subject: =?utf-8?B?!!!*?= =?x-nope?Q?abc?=",
	    "Content-Type: text/plain; charset=x-klingon",
	    "Content-Transfer-Encoding: base64", "", "%%%%not base64@@@",
	    NULL);
	r = parse(&m);
	assert_sane(r);
	assert_non_null(r->subject);
	free(m.s);

	memset(&m, 0, sizeof(m));
	lines(&m, "From: a@example.jp", "Subject: nul", "", NULL);
	add(&m, "a\0b\x01" "c\r\nd\re", 10);
	r = parse(&m);
	assert_sane(r);
	assert_string_equal(r->text, "a b c\nd\ne\n");
	free(m.s);

	memset(&m, 0, sizeof(m));
	lines(&m, "From: a@example.jp", "Subject: \x1b[31mred\x1b$B", "",
	    "\x1b[31mc\x1b$(D\x21\x21\x1b(B ok \x1b$", NULL);
	r = parse(&m);
	assert_sane(r);
	free(m.s);

	memset(&m, 0, sizeof(m));
	add(&m, "Subject: only a header", 22);
	r = parse(&m);
	assert_sane(r);
	assert_string_equal(r->subject, "only a header");
	free(m.s);

	memset(&m, 0, sizeof(m));
	add(&m, "\r\n\r\njust text ABCD-EFGH\r\n", 25);
	r = parse(&m);
	assert_sane(r);
	assert_null(r->subject);
	assert_non_null(r->text);
	assert_non_null(strstr(r->text, "ABCD-EFGH"));
	free(m.s);

	memset(&m, 0, sizeof(m));
	lines(&m, "From: Broken <<taro@example.jp>> ,,", "Subject: x", "", "y",
	    NULL);
	r = parse(&m);
	assert_sane(r);
	if (r->from != NULL)
		assert_string_equal(r->from, "taro@example.jp");
	free(m.s);

	memset(&m, 0, sizeof(m));
	lines(&m, "From: a@example.jp", "Content-Type: text/plain; charset=utf-8",
	    "", "\xff\xfe broken \xe6\x97 utf-8", NULL);
	r = parse(&m);
	assert_sane(r);
	free(m.s);
}

/* Every prefix of every sample parses to something sane. */
static void
test_truncated(void **state)
{
	void (*samples[])(struct msg *) = { sample_utf8, sample_jis,
	    sample_dsn, sample_mdn };
	struct inbox_parsed p;
	char err[64];

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct msg m = { 0 };

		samples[i](&m);
		for (size_t n = 1; n <= m.len; n++) {
			char *cut = malloc(n);

			memcpy(cut, m.s, n);	/* exactly n bytes, no NUL */
			assert_int_equal(inbox_parse(cut, n, &p, err,
			    sizeof(err)), 0);
			assert_sane(&p.msg);
			inbox_parsed_free(&p);
			free(cut);
		}
		free(m.s);
	}
}

/* A big message: raw is cut at INBOX_RAW_MAX, the text at INBOX_TEXT_MAX
 * on a character; many DSN recipients are cut at INBOX_MAX_RCPTS. */
static void
test_limits(void **state)
{
	struct msg m = { 0 };
	const struct inbox_msg *r;

	lines(&m, "From: big@example.jp", "Subject: big",
	    "Content-Type: text/plain; charset=utf-8", "", NULL);
	for (int i = 0; i < 40000; i++)
		add(&m, "確認確認\r\n", 14);
	r = parse(&m);
	assert_int_equal(r->raw_len, INBOX_RAW_MAX);
	assert_true(strlen(r->text) <= INBOX_TEXT_MAX);
	assert_true(strlen(r->text) > INBOX_TEXT_MAX - 16);
	assert_sane(r);
	free(m.s);

	memset(&m, 0, sizeof(m));
	lines(&m, "From: mx@example.jp", "MIME-Version: 1.0",
	    "Content-Type: multipart/report; report-type=delivery-status; boundary=z",
	    "", "--z", "Content-Type: message/delivery-status", "",
	    "Original-Envelope-Id: 7", NULL);
	for (int i = 0; i < 300; i++) {
		char l[64];

		snprintf(l, sizeof(l), "Final-Recipient: rfc822; r%d@example.jp", i);
		lines(&m, "", l, "Action: failed", "Status: 5.0.0", NULL);
	}
	lines(&m, "--z--", NULL);
	r = parse(&m);
	assert_int_equal(r->kind, INBOX_DSN);
	assert_int_equal(r->nrcpts, INBOX_MAX_RCPTS);
	assert_string_equal(r->rcpts[INBOX_MAX_RCPTS - 1].final_recipient,
	    "r99@example.jp");
	assert_sane(r);
	free(m.s);
}

/* Random bytes, and random bytes after a valid header: no crash. */
static void
test_noise(void **state)
{
	struct inbox_parsed p;
	char buf[2048], err[64];
	uint32_t x = 12345;

	for (int round = 0; round < 500; round++) {
		size_t n = 1 + (size_t)(round * 7) % sizeof(buf), off = 0;

		if (round % 2) {
			off = (size_t)snprintf(buf, sizeof(buf),
			    "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n");
			if (n < off + 1)
				n = off + 1;
		}
		for (size_t i = off; i < n; i++) {
			x = x * 1103515245u + 12345u;
			buf[i] = (char)(x >> 16);
			if (x % 7 == 0)
				buf[i] = "\r\n-=?:;ab"[x % 9];
		}
		assert_int_equal(inbox_parse(buf, n, &p, err, sizeof(err)), 0);
		assert_sane(&p.msg);
		inbox_parsed_free(&p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_utf8_reply, teardown),
		cmocka_unit_test_teardown(test_iso2022jp, teardown),
		cmocka_unit_test_teardown(test_shift_jis, teardown),
		cmocka_unit_test_teardown(test_unlabelled_sjis, teardown),
		cmocka_unit_test_teardown(test_euc_jp, teardown),
		cmocka_unit_test_teardown(test_jis_nec, teardown),
		cmocka_unit_test_teardown(test_quoted_printable, teardown),
		cmocka_unit_test_teardown(test_multipart, teardown),
		cmocka_unit_test_teardown(test_dsn, teardown),
		cmocka_unit_test_teardown(test_dsn_attached, teardown),
		cmocka_unit_test_teardown(test_mdn, teardown),
		cmocka_unit_test_teardown(test_auto_submitted, teardown),
		cmocka_unit_test_teardown(test_empty, teardown),
		cmocka_unit_test_teardown(test_malformed, teardown),
		cmocka_unit_test_teardown(test_truncated, teardown),
		cmocka_unit_test_teardown(test_limits, teardown),
		cmocka_unit_test_teardown(test_noise, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
