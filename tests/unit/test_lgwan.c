/*
 * test_lgwan.c - the closed-network mail driver (channels/lgwan.c).
 *
 * The driver is reached only through its table (channel_lgwan), as the
 * relay reaches it.  Every message is read back with code written here:
 * headers unfolded and RFC 2047 words decoded word by word, the body and
 * each word converted back from ISO-2022-JP with glibc's iconv (a decoder
 * of its own, not lgwan.c's per-character encoder).  send() is given a
 * smarthost where nothing listens: an address refused before any network
 * use is reported permfail, and nothing else happens.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/unit/mailtest.h"

#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "channels/channel.h"
#include "relay/relay.h"

/* ---- a configured channel -------------------------------------------------- */

static void *
configure(const char *charset, const char *max_size, const char *language)
{
	struct conf_kv kv[] = {
		{ (char *)(uintptr_t)"type", (char *)(uintptr_t)"lgwan", 1 },
		{ (char *)(uintptr_t)"host", (char *)(uintptr_t)"127.0.0.1", 2 },
		/* port 1: nothing listens; nothing here may connect */
		{ (char *)(uintptr_t)"port", (char *)(uintptr_t)"1", 3 },
		{ (char *)(uintptr_t)"tls", (char *)(uintptr_t)"none", 4 },
		{ (char *)(uintptr_t)"from",
		  (char *)(uintptr_t)"警報センター <alerts@bureau.example.lg.jp>", 5 },
		{ (char *)(uintptr_t)"domains",
		  (char *)(uintptr_t)"lg.jp, .example.go.jp", 6 },
		{ (char *)(uintptr_t)"charset", (char *)(uintptr_t)charset, 7 },
		{ (char *)(uintptr_t)"max_size", (char *)(uintptr_t)max_size, 8 },
		{ (char *)(uintptr_t)"timeout", (char *)(uintptr_t)"5s", 9 },
	};
	struct conf_channel ch = {
		.name = (char *)(uintptr_t)"lgwan",
		.type = (char *)(uintptr_t)"lgwan",
		.line = 1,
		.kv = kv,
		.nkv = sizeof(kv) / sizeof(kv[0]),
	};
	struct conf relay;
	char err[256];
	void *state = NULL;

	memset(&relay, 0, sizeof(relay));
	relay.name = (char *)(uintptr_t)"test-relay";
	relay.language = (char *)(uintptr_t)language;
	assert_ptr_equal(channel_driver_find("lgwan"), &channel_lgwan);
	if (channel_lgwan.configure(&ch, &relay, &state, err,
	    sizeof(err)) == -1)
		fail_msg("configure: %s", err);
	return state;
}

static struct channel_msg
base_msg(void)
{
	struct channel_msg m;

	memset(&m, 0, sizeof(m));
	m.attempt = 2001;
	m.delivery = 77;
	m.alert = "20261121-0042";
	m.revision = 1;
	m.recipient = "r0001";
	m.name = "髙橋 一郎";
	m.org = "㈱東町水道";
	m.address = "r0001@city.example.lg.jp";
	m.code = "ABCDEFGH";
	m.subject = "断水のお知らせ①";
	m.body = "本日 14 時より断水します。\n";
	m.tlp = QUEUE_TLP_AMBER;
	m.created = 1795259400000LL;
	m.expires = m.created + 86400000LL;
	m.message_id = "<d.77.1.0@test-relay>";
	return m;
}

static char *
render(void *st, const struct channel_msg *m, size_t *lenp)
{
	char err[256], *out = NULL;
	size_t len = 0;

	if (channel_lgwan.render(st, m, &out, &len, err, sizeof(err)) == -1)
		fail_msg("render: %s", err);
	assert_int_equal(strlen(out), len);
	if (lenp)
		*lenp = len;
	return out;
}

/* ---- reading it back ---------------------------------------------------- */

/* ISO-2022-JP bytes to UTF-8 with iconv; allocated. */
static char *
from_jis(const char *in, size_t n)
{
	iconv_t cd = iconv_open("UTF-8", "ISO-2022-JP");
	size_t cap = n * 3 + 16, il = n, ol = cap;
	char *out = malloc(cap + 1), *ip, *op = out, *copy;

	assert_true(cd != (iconv_t)-1);
	assert_non_null(out);
	copy = malloc(n + 1);
	assert_non_null(copy);
	memcpy(copy, in, n);
	ip = copy;
	if (iconv(cd, &ip, &il, &op, &ol) == (size_t)-1)
		fail_msg("iconv cannot decode the ISO-2022-JP it was given");
	*op = '\0';
	iconv_close(cd);
	free(copy);
	return out;
}

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


/* "=?ISO-2022-JP?B?...?=" words decoded, each one on its own (each must
 * end in ASCII: iconv fails on a word that does not); allocated. */
static char *
decode2047(const char *v, int *words)
{
	char *out = calloc(1, strlen(v) * 3 + 1), *d;
	const char *p = v, *e, *prev_end = NULL;
	unsigned char buf[256];
	size_t n;

	assert_non_null(out);
	*words = 0;
	while (*p != '\0') {
		if (strncmp(p, "=?ISO-2022-JP?B?", 16) == 0 &&
		    (e = strstr(p + 16, "?=")) != NULL) {
			if (prev_end != NULL && strspn(prev_end, " ") ==
			    (size_t)(p - prev_end))
				out[strlen(out) - (size_t)(p - prev_end)] = '\0';
			assert_true(e - p + 2 <= 75);
			n = b64dec(p + 16, (size_t)(e - p - 16), buf);
			/* ends in ASCII: the last escape is ESC ( B */
			for (size_t i = n; i > 0; i--)
				if (buf[i - 1] == 0x1b) {
					assert_true(i + 1 < n);
					assert_memory_equal(buf + i - 1,
					    "\033(B", 3);
					break;
				}
			d = from_jis((const char *)buf, n);
			strcat(out, d);
			free(d);
			p = e + 2;
			prev_end = p;
			(*words)++;
		} else {
			size_t l = strlen(out);

			out[l] = *p++;
			out[l + 1] = '\0';
		}
	}
	return out;
}

/* The body after the blank line (7bit ISO-2022-JP), decoded, with LF
 * line ends; allocated. */
static char *
body_of(const char *msg)
{
	const char *p = strstr(msg, "\r\n\r\n");
	char *t, *q;

	assert_non_null(p);
	t = from_jis(p + 4, strlen(p + 4));
	q = t;
	for (const char *r = t; *r != '\0'; r++)
		if (!(r[0] == '\r' && r[1] == '\n'))
			*q++ = *r;
	*q = '\0';
	return t;
}

/* 7bit only, CRLF lines of at most 998 bytes, each ending in ASCII, and
 * no designation but ESC ( B and ESC $ B (plain RFC 1468). */
static void
check_7bit(const char *msg)
{
	const unsigned char *p = (const unsigned char *)msg;
	size_t col = 0;
	int jis = 0;

	for (; *p != '\0'; p++) {
		assert_true(*p < 0x80);
		if (*p == 0x1b) {
			assert_true(memcmp(p, "\033(B", 3) == 0 ||
			    memcmp(p, "\033$B", 3) == 0);
			jis = p[1] == '$';
		}
		if (*p == '\r') {
			assert_int_equal(p[1], '\n');
			assert_false(jis);	/* a line ends in ASCII */
			assert_true(col <= 998);
			col = 0;
			p++;
			continue;
		}
		assert_true(*p != '\n');
		col++;
	}
}

/* ---- the tests ----------------------------------------------------------- */

/* Each listed character, normalised to what JIS X 0208 carries. */
static void
test_normalisation_table(void **unused)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "①", "(1)" }, { "⑳", "(20)" }, { "㉑", "(21)" },
		{ "㉟", "(35)" }, { "㊱", "(36)" }, { "㊿", "(50)" },
		{ "㈱", "(株)" }, { "㈲", "(有)" },
		{ "\xef\xbd\x9e", "\xe3\x80\x9c" },	/* ～ U+FF5E -> 〜 U+301C */
		{ "\xef\xbc\x8d", "\xe2\x88\x92" },	/* － U+FF0D -> − U+2212 */
		{ "\xe2\x88\x92", "\xe2\x88\x92" },	/* − U+2212 is JIS 0x215D */
		{ "\xe9\xab\x99", "高" },		/* 髙 U+9AD9 */
		{ "\xef\xa8\x91", "崎" },		/* 﨑 U+FA11 */
		{ "\xe5\xbe\xb7", "徳" },		/* 德 U+5FB7 */
		{ "\xf0\xa0\xae\xb7", "吉" },		/* 𠮷 U+20BB7 */
		{ "\xef\xa8\x90", "塚" },		/* 塚 U+FA10 */
		{ "㌔", "キロ" }, { "㍉", "ミリ" }, { "㍍", "メートル" },
		{ "ｱｲｳ", "アイウ" }, { "ｶﾞｷﾞ", "ガギ" }, { "ﾊﾟﾋﾟ", "パピ" },
		{ "ｳﾞ", "ヴ" }, { "ｰ", "ー" }, { "｢ｵｯｹｰ｣", "「オッケー」" },
		{ "か\xe3\x82\x99", "が" },		/* か + combining mark */
		{ "Ⅲ", "III" }, { "№", "No." }, { "℡", "TEL" },
		{ "\xc2\xa5", "￥" },			/* ¥ (JIS X 0201) */
		{ "∥", "‖" }, { "\xe2\x80\x94", "―" },	/* — */
	};
	void *st = configure("iso-2022-jp", "64k", "ja");
	struct channel_msg m = base_msg();
	char body[128], want[128], *msg, *text;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(body, sizeof(body), "[%s]\n", cases[i].in);
		snprintf(want, sizeof(want), "[%s]\n", cases[i].out);
		m.body = body;
		msg = render(st, &m, NULL);
		check_7bit(msg);
		text = body_of(msg);
		if (strstr(text, want) == NULL)
			fail_msg("%s: expected %s in the body", cases[i].in,
			    cases[i].out);
		/* all representable: no replacement notice */
		assert_null(strstr(text, "〓"));
		free(text);
		free(msg);
	}
	channel_lgwan.release(st);
}

/* The whole message: ISO-2022-JP, 7bit, headers and body decode. */
static void
test_iso2022jp_message(void **unused)
{
	void *st = configure("iso-2022-jp", "64k", "ja");
	struct channel_msg m = base_msg();
	char *msg, *text, *v, *d;
	int words;

	m.body = "①避難所は㈱東町会館です～髙橋まで。\n.\n"
	    "ﾃｽﾄ\tタブ\r\n二行目\n";
	msg = render(st, &m, NULL);
	check_7bit(msg);
	v = header(msg, "Content-Type");
	assert_string_equal(v, "text/plain; charset=ISO-2022-JP");
	free(v);
	v = header(msg, "Content-Transfer-Encoding");
	assert_string_equal(v, "7bit");
	free(v);
	assert_null(strstr(msg, "multipart"));

	text = body_of(msg);
	assert_non_null(strstr(text, "(1)避難所は(株)東町会館です〜高橋まで。\n"
	    ".\nテスト\tタブ\n二行目\n"));
	assert_non_null(strstr(text, "確認コード: ABCD-EFGH"));
	assert_non_null(strstr(text, "通知番号: 20261121-0042"));
	assert_null(strstr(text, "〓"));
	free(text);

	v = header(msg, "Subject");
	d = decode2047(v, &words);
	assert_true(words >= 1);
	assert_non_null(strstr(d, "断水のお知らせ(1)"));
	assert_non_null(strstr(d, "ABCD-EFGH"));
	free(v);
	free(d);
	v = header(msg, "To");
	d = decode2047(v, &words);
	assert_string_equal(d, "高橋 一郎 <r0001@city.example.lg.jp>");
	free(v);
	free(d);
	v = header(msg, "From");
	d = decode2047(v, &words);
	assert_string_equal(d, "警報センター <alerts@bureau.example.lg.jp>");
	free(v);
	free(d);
	free(msg);
	channel_lgwan.release(st);
}

/* A long Japanese subject folds into words that each decode alone. */
static void
test_long_subject(void **unused)
{
	void *st = configure("iso-2022-jp", "64k", "ja");
	struct channel_msg m = base_msg();
	char *msg, *v, *d;
	int words;

	m.subject = "関東地方に大雨特別警報が発表されました。各事業者は"
	    "被害状況を至急報告してください。ABC 123 ㈱テスト";
	msg = render(st, &m, NULL);
	check_7bit(msg);
	v = header(msg, "Subject");
	d = decode2047(v, &words);
	assert_true(words >= 3);
	assert_non_null(strstr(d, "関東地方に大雨特別警報が発表されました。"
	    "各事業者は被害状況を至急報告してください。ABC 123 (株)テスト"));
	free(v);
	free(d);
	free(msg);
	channel_lgwan.release(st);
}

/* What cannot be carried becomes 〓, and the body says so. */
static void
test_geta_notice(void **unused)
{
	void *st = configure("iso-2022-jp", "64k", "ja");
	struct channel_msg m = base_msg();
	char *msg, *text;

	m.body = "絵文字\xf0\x9f\x98\x80とé\n";
	msg = render(st, &m, NULL);
	check_7bit(msg);
	text = body_of(msg);
	assert_non_null(strstr(text, "絵文字〓と〓\n"));
	assert_non_null(strstr(text, "「〓」に置き換えています"));
	free(text);
	free(msg);
	channel_lgwan.release(st);

	st = configure("iso-2022-jp", "64k", "en");
	msg = render(st, &m, NULL);
	text = body_of(msg);
	assert_non_null(strstr(text, "were replaced by 〓"));
	free(text);
	free(msg);
	channel_lgwan.release(st);
}

/* A line longer than 998 bytes is broken, nothing lost. */
static void
test_long_line(void **unused)
{
	void *st = configure("iso-2022-jp", "64k", "ja");
	struct channel_msg m = base_msg();
	char body[4000], *msg, *text, *flat, *q;

	body[0] = '\0';
	for (int i = 0; i < 400; i++)
		strcat(body, i % 50 == 49 ? "a" : "あ");
	strcat(body, "\n");
	m.body = body;
	msg = render(st, &m, NULL);
	check_7bit(msg);
	text = body_of(msg);
	flat = q = malloc(strlen(text) + 1);
	assert_non_null(flat);
	for (const char *p = text; *p != '\0'; p++)
		if (*p != '\n')
			*q++ = *p;
	*q = '\0';
	body[strlen(body) - 1] = '\0';
	assert_non_null(strstr(flat, body));
	free(flat);
	free(text);
	free(msg);
	channel_lgwan.release(st);
}

/* max_size: the text is cut, the code and alert id are kept. */
static void
test_max_size(void **unused)
{
	void *st = configure("iso-2022-jp", "4k", "ja");
	struct channel_msg m = base_msg();
	char *body, *msg, *text;
	size_t len, n = 0;

	body = malloc(40000);
	assert_non_null(body);
	body[0] = '\0';
	for (int i = 0; i < 1000; i++) {
		n += (size_t)snprintf(body + n, 40000 - n, "%04d行目の本文①\n",
		    i);
	}
	m.body = body;
	msg = render(st, &m, &len);
	assert_true(len <= 4096);
	assert_true(len > 3000);	/* it uses the room it has */
	check_7bit(msg);
	text = body_of(msg);
	assert_non_null(strstr(text, "0000行目の本文(1)\n0001行目"));
	assert_null(strstr(text, "0999行目"));
	assert_non_null(strstr(text, "（本文は長さの上限により省略されました"));
	assert_non_null(strstr(text, "確認コード: ABCD-EFGH"));
	assert_non_null(strstr(text, "「ABCD-EFGH」"));
	assert_non_null(strstr(text, "通知番号: 20261121-0042"));
	free(text);
	free(msg);
	channel_lgwan.release(st);

	/* English, UTF-8: the same rule, the notice in English */
	st = configure("utf-8", "2k", "en");
	msg = render(st, &m, &len);
	assert_true(len <= 2048);
	assert_non_null(strstr(msg, "charset=UTF-8"));
	assert_non_null(strstr(msg, "Content-Transfer-Encoding: base64"));
	free(msg);
	channel_lgwan.release(st);

	/* a short body is not touched */
	st = configure("iso-2022-jp", "4k", "ja");
	m = base_msg();
	msg = render(st, &m, &len);
	text = body_of(msg);
	assert_null(strstr(text, "省略"));
	free(text);
	free(msg);
	channel_lgwan.release(st);
	free(body);
}

static int reports;
static struct channel_result last;

static void
record(const struct channel_result *r, void *arg)
{
	reports++;
	last = *r;
}

/* Outside domains: refused by render, permfail in send without the
 * network (nothing listens on the smarthost's port). */
static void
test_out_of_domain(void **unused)
{
	static const char *refused[] = { "x@gmail.com", "a@xlg.jp",
	    "a@lg.jp.evil.example", "a@example.jp", "no-at-sign" };
	static const char *allowed[] = { "a@lg.jp", "a@LG.JP",
	    "a@city.example.lg.jp", "a@Sub.Example.Go.Jp",
	    "a@example.go.jp" };
	void *st = configure("iso-2022-jp", "64k", "ja");
	struct channel_msg m = base_msg();
	char err[256], *out;
	size_t len;
	int rc;

	for (size_t i = 0; i < sizeof(refused) / sizeof(*refused); i++) {
		m.address = refused[i];
		out = NULL;
		assert_int_equal(channel_lgwan.render(st, &m, &out, &len, err,
		    sizeof(err)), -1);
		assert_null(out);
		assert_non_null(strstr(err, "is outside the closed network "
		    "(domains: lg.jp, .example.go.jp)"));
	}
	m.address = "x@gmail.com";
	assert_int_equal(channel_lgwan.render(st, &m, &out, &len, err,
	    sizeof(err)), -1);
	assert_string_equal(err, "lgwan: address x@gmail.com is outside the "
	    "closed network (domains: lg.jp, .example.go.jp)");
	for (size_t i = 0; i < sizeof(allowed) / sizeof(*allowed); i++) {
		m.address = allowed[i];
		out = render(st, &m, NULL);
		free(out);
	}

	m.address = "x@gmail.com";
	reports = 0;
	rc = channel_lgwan.send(st, &m, 1, record, NULL, err, sizeof(err));
	assert_int_equal(rc, 0);	/* no session: the channel is not down */
	assert_int_equal(reports, 1);
	assert_int_equal(last.attempt, 2001);
	assert_int_equal(last.outcome, CHANNEL_PERMFAIL);
	assert_string_equal(last.error, "lgwan: address x@gmail.com is "
	    "outside the closed network (domains: lg.jp, .example.go.jp)");
	channel_lgwan.release(st);
}

/* charset = utf-8 keeps UTF-8 (no normalisation), base64 like smtp. */
static void
test_utf8(void **unused)
{
	void *st = configure("utf-8", "64k", "ja");
	struct channel_msg m = base_msg();
	char *msg;

	m.body = "①\n";
	msg = render(st, &m, NULL);
	assert_non_null(strstr(msg, "Content-Type: text/plain; charset=UTF-8"));
	assert_non_null(strstr(msg, "=?UTF-8?B?"));
	assert_null(strstr(msg, "ISO-2022-JP"));
	free(msg);
	channel_lgwan.release(st);
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
		cmocka_unit_test(test_normalisation_table),
		cmocka_unit_test(test_iso2022jp_message),
		cmocka_unit_test(test_long_subject),
		cmocka_unit_test(test_geta_notice),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_max_size),
		cmocka_unit_test(test_out_of_domain),
		cmocka_unit_test(test_utf8),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
