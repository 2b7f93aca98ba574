/*
 * test_sms_pdu.c - the SMS PDU codec (channels/sms_pdu.c).
 *
 * Known answers come from the usual worked examples ("hellohello", the
 * 7-bit packing of "12345678", the SMS-DELIVER of the same text from
 * +27381000015) and from vectors worked out by hand or with Python (the
 * packing written there, not taken from this codec).  What the encoder
 * produces is read back here with code of its own (unpack7(), the octet
 * offsets of an SMS-SUBMIT), then through sms_decode() for many texts,
 * fixed and pseudo-random.  Every malformed PDU must give -1 and a
 * message saying where, never a crash (the sanitizer build runs this too).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channels/sms_pdu.h"

#define NUM	"+819012345678"	/* 12 digits: TP-DA is 6 octets */
/* Octets of our SMS-SUBMIT to NUM, counted in the TPDU (after "00"). */
#define AT_FO	0
#define AT_DCS	11
#define AT_VP	12		/* when TP-VPF is 10 */
#define AT_UDL	12		/* when there is no TP-VP */

/* ---- reading what the encoder wrote, independently ---------------------- */

/* Octet i of the TPDU of hex ("00" first). */
static unsigned
octet(const char *hex, size_t i)
{
	unsigned v;

	assert_true(strlen(hex) >= 2 + 2 * i + 2);
	assert_int_equal(sscanf(hex + 2 + 2 * i, "%2x", &v), 1);
	return v;
}

/* n septets from bit offset bit of the octets of hex from TPDU octet at. */
static void
unpack7(const char *hex, size_t at, size_t bit, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;

		for (int k = 0; k < 7; k++, bit++)
			if (octet(hex, at + bit / 8) >> (bit % 8) & 1)
				v |= 1u << k;
		out[i] = (uint8_t)v;
	}
}

/* The text as the codec sends it: controls but LF as spaces (valid
 * UTF-8 in).  Into buf. */
static void
cleaned(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0' && o + 1 < len; p++) {
		if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
			buf[o++] = ' ';
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) {
			buf[o++] = ' ';
			p++;
		} else
			buf[o++] = (char)*p;
	}
	buf[o] = '\0';
}

/* Abort unless s is valid UTF-8 with no control character but LF. */
static void
assert_clean_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		size_t k;
		uint32_t cp;

		if (*p < 0x80) {
			assert_true(*p >= 0x20 || *p == '\n');
			assert_true(*p != 0x7f);
			p++;
			continue;
		}
		if (*p >= 0xc2 && *p <= 0xdf) {
			k = 2;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			k = 3;
			cp = *p & 0x0f;
		} else {
			assert_true(*p >= 0xf0 && *p <= 0xf4);
			k = 4;
			cp = *p & 0x07;
		}
		for (size_t i = 1; i < k; i++) {
			assert_int_equal(p[i] & 0xc0, 0x80);
			cp = cp << 6 | (p[i] & 0x3f);
		}
		assert_true(k != 3 || cp >= 0x800);
		assert_true(k != 4 || (cp >= 0x10000 && cp <= 0x10ffff));
		assert_false(cp >= 0xd800 && cp <= 0xdfff);
		assert_false(cp >= 0x80 && cp < 0xa0);
		p += k;
	}
}

/* A string of n copies of s. */
static char *
rep(const char *s, int n)
{
	size_t l = strlen(s);
	char *r = malloc(l * (size_t)n + 1);

	assert_non_null(r);
	for (int i = 0; i < n; i++)
		memcpy(r + l * (size_t)i, s, l);
	r[l * (size_t)n] = '\0';
	return r;
}

/* Concatenate a and b (freed) into an allocated string. */
static char *
cat(char *a, char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *r = malloc(la + lb + 1);

	assert_non_null(r);
	memcpy(r, a, la);
	memcpy(r + la, b, lb + 1);
	free(a);
	free(b);
	return r;
}

/* Encode text to NUM with at most max parts (the rest default). */
static int
enc(const char *text, int max, struct sms_part *parts)
{
	char err[256];

	return sms_encode_submit(NUM, text, 0, max, 0, 0, parts, err,
	    sizeof(err));
}

/* ---- numbers, codings, lengths ------------------------------------------ */

static void
test_number_ok(void **state)
{
	static const char *good[] = { "+1", "+819012345678",
	    "+123456789012345", "+44", "+9" };
	static const char *bad[] = { "", "+", "+0", "+0812345", "+8190;1234",
	    "+81\r90", "+81\n", "+++", "AT", "AT+CMGS=1", "+1234567890123456",
	    "819012345678", "+81 90", " +8190", "+8190 ", "+81-90",
	    "+\xef\xbc\x98\xef\xbc\x91", "+81\x1a", "+81\t", "+81+" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(sms_number_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(sms_number_ok(bad[i]));
	assert_false(sms_number_ok(NULL));
}

static void
test_coding_and_length(void **state)
{
	/* The whole default alphabet but the escape, CR in it too */
	static const char alphabet[] = "@\xc2\xa3$\xc2\xa5\xc3\xa8\xc3\xa9"
	    "\xc3\xb9\xc3\xac\xc3\xb2\xc3\x87\n\xc3\x98\xc3\xb8\r\xc3\x85"
	    "\xc3\xa5\xce\x94_\xce\xa6\xce\x93\xce\x9b\xce\xa9\xce\xa0\xce\xa8"
	    "\xce\xa3\xce\x98\xce\x9e\xc3\x86\xc3\xa6\xc3\x9f\xc3\x89 !\"#"
	    "\xc2\xa4%&'()*+,-./0123456789:;<=>?\xc2\xa1"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ\xc3\x84\xc3\x96\xc3\x91\xc3\x9c"
	    "\xc2\xa7\xc2\xbf" "abcdefghijklmnopqrstuvwxyz\xc3\xa4\xc3\xb6"
	    "\xc3\xb1\xc3\xbc\xc3\xa0";

	assert_int_equal(sms_coding_for(alphabet), SMS_GSM7);
	assert_int_equal(sms_length(alphabet, SMS_GSM7), 127);
	assert_int_equal(sms_coding_for("^{}\\[~]|\xe2\x82\xac"), SMS_GSM7);
	assert_int_equal(sms_length("^{}\\[~]|\xe2\x82\xac", SMS_GSM7), 18);
	assert_int_equal(sms_length("a\xe2\x82\xac", SMS_GSM7), 3);
	assert_int_equal(sms_length("a\xe2\x82\xac", SMS_UCS2), 2);
	/* controls are spaces: 7-bit, one septet each */
	assert_int_equal(sms_coding_for("a\tb\fc\x01"), SMS_GSM7);
	assert_int_equal(sms_length("a\tb\fc", SMS_GSM7), 5);
	assert_int_equal(sms_coding_for(""), SMS_GSM7);
	assert_int_equal(sms_coding_for(NULL), SMS_GSM7);
	assert_int_equal(sms_length("", SMS_GSM7), 0);
	/* not in the alphabet: ç (only Ç is), `, NBSP, Japanese, emoji */
	assert_int_equal(sms_coding_for("\xc3\xa7"), SMS_UCS2);
	assert_int_equal(sms_coding_for("`"), SMS_UCS2);
	assert_int_equal(sms_coding_for("a\xc2\xa0" "b"), SMS_UCS2);
	assert_int_equal(sms_coding_for("\xe3\x80\x90\xe8\xa8\x93\xe7\xb7\xb4"
	    "\xe3\x80\x91"), SMS_UCS2);
	assert_int_equal(sms_length("\xe3\x80\x90\xe8\xa8\x93", SMS_UCS2), 2);
	assert_int_equal(sms_coding_for("ok \xf0\x9f\x98\x80"), SMS_UCS2);
	assert_int_equal(sms_length("ok \xf0\x9f\x98\x80", SMS_UCS2), 5);
	/* invalid UTF-8 counts as U+FFFD, one unit, and is UCS2 */
	assert_int_equal(sms_coding_for("a\xff"), SMS_UCS2);
	assert_int_equal(sms_length("a\xff\xc3", SMS_UCS2), 3);
	assert_int_equal(sms_length("\xed\xa0\x80", SMS_UCS2), 3);
}

static void
test_parts_needed(void **state)
{
	struct { const char *unit; int n; int parts; } cases[] = {
		{ "a", 1, 1 }, { "a", 160, 1 }, { "a", 161, 2 },
		{ "a", 306, 2 }, { "a", 307, 3 }, { "a", 459, 3 },
		{ "a", 460, 4 }, { "a", 1530, 10 }, { "a", 1531, 11 },
		{ "\xe2\x82\xac", 80, 1 }, { "\xe2\x82\xac", 81, 2 },
		/* 76 euro signs a part (152 septets): 153 would cut one */
		{ "\xe2\x82\xac", 152, 2 }, { "\xe2\x82\xac", 153, 3 },
		{ "\xe3\x81\x82", 70, 1 }, { "\xe3\x81\x82", 71, 2 },
		{ "\xe3\x81\x82", 134, 2 }, { "\xe3\x81\x82", 135, 3 },
		{ "\xe3\x81\x82", 201, 3 }, { "\xe3\x81\x82", 202, 4 },
		/* 33 emoji a part (66 units): the 34th would be cut */
		{ "\xf0\x9f\x98\x80", 35, 1 }, { "\xf0\x9f\x98\x80", 36, 2 },
		{ "\xf0\x9f\x98\x80", 66, 2 }, { "\xf0\x9f\x98\x80", 67, 3 },
	};
	char *s;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = rep(cases[i].unit, cases[i].n);
		assert_int_equal(sms_parts_needed(s), cases[i].parts);
		free(s);
	}
	assert_int_equal(sms_parts_needed(""), 1);
	assert_int_equal(sms_parts_needed(NULL), 1);
	/* 152 septets, then an escape sequence: 154, still one message */
	s = cat(rep("x", 152), rep("\xe2\x82\xac", 1));
	assert_int_equal(sms_parts_needed(s), 1);
	s = cat(s, rep("y", 10));
	assert_int_equal(sms_parts_needed(s), 2);
	free(s);
}

/* ---- the encoder: known answers ----------------------------------------- */

static void
test_hellohello(void **state)
{
	struct sms_part p[SMS_MAX_PARTS];
	char err[256];

	/* The classic SMS-SUBMIT: TP-VP AA (4 days), 10 septets in 9 octets */
	assert_int_equal(sms_encode_submit("+31628870634", "hellohello", 0, 1,
	    0, 4 * 24 * 60, p, err, sizeof(err)), 1);
	assert_string_equal(p[0].hex,
	    "0011000B911326880736F40000AA0AE8329BFD4697D9EC37");
	assert_int_equal(p[0].tpdu_len, 23);
	assert_int_equal(p[0].seq, 1);
	assert_int_equal(p[0].total, 1);
	assert_string_equal(p[0].text, "hellohello");
	/* No TP-VP, an even number of digits */
	assert_int_equal(enc("hellohello", 1, p), 1);
	assert_string_equal(p[0].hex,
	    "0001000C911809214365870000" "0AE8329BFD4697D9EC37");
	assert_int_equal(p[0].tpdu_len, 22);
	/* 8 septets fill 7 octets exactly */
	assert_int_equal(enc("12345678", 1, p), 1);
	assert_string_equal(p[0].hex + 2 + 2 * AT_UDL, "0831D98C56B3DD70");
	/* "@" is septet 00: it still counts in TP-UDL */
	assert_int_equal(enc("@@", 1, p), 1);
	assert_string_equal(p[0].hex + 2 + 2 * AT_UDL, "020000");
}

static void
test_extension_septets(void **state)
{
	struct sms_part p[SMS_MAX_PARTS];
	uint8_t s[32];
	static const uint8_t want[] = { 0x1b, 0x3c, 0x1b, 0x65, 0x1b, 0x3e,
	    0x1b, 0x14, 0x1b, 0x28, 0x1b, 0x29, 0x1b, 0x2f, 0x1b, 0x3d,
	    0x1b, 0x40, 0x02, 0x00, 0x11, 0x09, 0x10 };

	/* [ € ] ^ { } \ ~ | and $ @ _ Ç Δ of the default alphabet */
	assert_int_equal(enc("[\xe2\x82\xac]^{}\\~|$@_\xc3\x87\xce\x94", 1, p),
	    1);
	assert_int_equal(octet(p[0].hex, AT_DCS), 0x00);
	assert_int_equal(octet(p[0].hex, AT_UDL), sizeof(want));
	unpack7(p[0].hex, AT_UDL + 1, 0, sizeof(want), s);
	assert_memory_equal(s, want, sizeof(want));
	assert_string_equal(p[0].text,
	    "[\xe2\x82\xac]^{}\\~|$@_\xc3\x87\xce\x94");
	/* A form feed or a TAB is a space, not 1B 0A, not UCS2 */
	assert_int_equal(enc("a\fb\tc\rd", 1, p), 1);
	assert_int_equal(octet(p[0].hex, AT_UDL), 7);
	unpack7(p[0].hex, AT_UDL + 1, 0, 7, s);
	assert_memory_equal(s, "a b c d", 7);
	assert_string_equal(p[0].text, "a b c d");
}

static void
test_ucs2_japanese(void **state)
{
	struct sms_part p[SMS_MAX_PARTS];

	/* 【訓練】ＡＢＣ: 3010 8A13 7DF4 3011 FF21 FF22 FF23 */
	assert_int_equal(enc("\xe3\x80\x90\xe8\xa8\x93\xe7\xb7\xb4\xe3\x80\x91"
	    "\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3", 1, p), 1);
	assert_string_equal(p[0].hex, "0001000C911809214365870008"
	    "0E30108A137DF43011FF21FF22FF23");
	assert_int_equal(p[0].tpdu_len, 27);
	/* an emoji is a surrogate pair; U+FFFD given is sent as it is */
	assert_int_equal(enc("\xf0\x9f\x98\x80\xef\xbf\xbd", 1, p), 1);
	assert_string_equal(p[0].hex + 2 + 2 * AT_UDL, "06D83DDE00FFFD");
	assert_string_equal(p[0].text, "\xf0\x9f\x98\x80\xef\xbf\xbd");
}

/* Check the concatenation UDH of part p (GSM7 or UCS2), total parts. */
static void
assert_udh(const struct sms_part *p, int ref, int seq, int total)
{
	assert_int_equal(octet(p->hex, AT_FO), 0x41);	/* SUBMIT, UDHI */
	assert_int_equal(octet(p->hex, AT_UDL + 1), 5);
	assert_int_equal(octet(p->hex, AT_UDL + 2), 0);
	assert_int_equal(octet(p->hex, AT_UDL + 3), 3);
	assert_int_equal(octet(p->hex, AT_UDL + 4), ref);
	assert_int_equal(octet(p->hex, AT_UDL + 5), total);
	assert_int_equal(octet(p->hex, AT_UDL + 6), seq);
	assert_int_equal(p->seq, seq);
	assert_int_equal(p->total, total);
	assert_int_equal(p->tpdu_len, (int)(strlen(p->hex) - 2) / 2);
}

static void
test_escape_at_boundary(void **state)
{
	struct sms_part p[SMS_MAX_PARTS];
	char err[256];
	uint8_t s[160];
	char *t = cat(cat(rep("x", 152), rep("\xe2\x82\xac", 1)), rep("y", 10));

	assert_int_equal(sms_encode_submit(NUM, t, 0x9c, 4, 0, 0, p, err,
	    sizeof(err)), 2);
	assert_udh(&p[0], 0x9c, 1, 2);
	assert_udh(&p[1], 0x9c, 2, 2);
	/* part 1: 152 septets after the 7 of the header (6 octets + 1 fill
	 * bit); the escape sequence does not fit the 153rd */
	assert_int_equal(octet(p[0].hex, AT_UDL), 7 + 152);
	unpack7(p[0].hex, AT_UDL + 1, 49, 152, s);
	for (int i = 0; i < 152; i++)
		assert_int_equal(s[i], 'x');
	/* the fill bit is 0 */
	assert_int_equal(octet(p[0].hex, AT_UDL + 7) & 1, 0);
	assert_int_equal(octet(p[1].hex, AT_UDL), 7 + 12);
	unpack7(p[1].hex, AT_UDL + 1, 49, 3, s);
	assert_int_equal(s[0], 0x1b);
	assert_int_equal(s[1], 0x65);
	assert_int_equal(s[2], 'y');
	assert_string_equal(p[1].text, "\xe2\x82\xacyyyyyyyyyy");
	free(t);
}

static void
test_surrogate_at_boundary(void **state)
{
	struct sms_part p[SMS_MAX_PARTS];
	char *t = cat(cat(rep("\xe3\x81\x82", 66), rep("\xf0\x9f\x98\x80", 1)),
	    rep("\xe3\x81\x84", 5));
	char *first = rep("\xe3\x81\x82", 66);

	assert_int_equal(enc(t, 4, p), 2);
	assert_udh(&p[0], 0, 1, 2);
	assert_int_equal(octet(p[0].hex, AT_DCS), 0x08);
	/* 66 units: the pair would make 68 */
	assert_int_equal(octet(p[0].hex, AT_UDL), 6 + 2 * 66);
	assert_string_equal(p[0].text, first);
	assert_int_equal(octet(p[1].hex, AT_UDL), 6 + 2 * 7);
	assert_int_equal(octet(p[1].hex, AT_UDL + 7), 0xd8);
	assert_int_equal(octet(p[1].hex, AT_UDL + 8), 0x3d);
	assert_int_equal(octet(p[1].hex, AT_UDL + 9), 0xde);
	assert_int_equal(octet(p[1].hex, AT_UDL + 10), 0x00);
	free(t);
	free(first);
}

static void
test_exact_boundaries(void **state)
{
	struct sms_part p[SMS_MAX_PARTS];
	char *t;

	t = rep("a", 160);
	assert_int_equal(enc(t, 4, p), 1);
	assert_int_equal(octet(p[0].hex, AT_FO), 0x01);
	assert_int_equal(octet(p[0].hex, AT_UDL), 160);
	assert_int_equal(p[0].tpdu_len, AT_UDL + 1 + 140);
	assert_int_equal((int)strlen(p[0].hex), 2 + 2 * p[0].tpdu_len);
	free(t);
	t = rep("a", 161);
	assert_int_equal(enc(t, 4, p), 2);
	assert_int_equal(octet(p[0].hex, AT_UDL), 160);
	assert_int_equal(p[0].tpdu_len, AT_UDL + 1 + 140);
	assert_int_equal(octet(p[1].hex, AT_UDL), 7 + 8);
	assert_int_equal(strlen(p[0].text), 153);
	assert_int_equal(strlen(p[1].text), 8);
	free(t);
	t = rep("b", 459);
	assert_int_equal(enc(t, 3, p), 3);
	for (int i = 0; i < 3; i++) {
		assert_udh(&p[i], 0, i + 1, 3);
		assert_int_equal(octet(p[i].hex, AT_UDL), 160);
	}
	free(t);
	t = rep("b", 460);
	assert_int_equal(enc(t, 4, p), 4);
	assert_int_equal(octet(p[3].hex, AT_UDL), 8);
	free(t);
	t = rep("\xe3\x81\x82", 70);
	assert_int_equal(enc(t, 4, p), 1);
	assert_int_equal(octet(p[0].hex, AT_UDL), 140);
	assert_int_equal(p[0].tpdu_len, AT_UDL + 1 + 140);
	free(t);
	t = rep("\xe3\x81\x82", 71);
	assert_int_equal(enc(t, 4, p), 2);
	assert_int_equal(octet(p[0].hex, AT_UDL), 140);
	assert_int_equal(octet(p[1].hex, AT_UDL), 6 + 8);
	free(t);
	t = rep("\xe8\xa8\x93", 201);
	assert_int_equal(enc(t, 3, p), 3);
	for (int i = 0; i < 3; i++) {
		assert_udh(&p[i], 0, i + 1, 3);
		assert_int_equal(octet(p[i].hex, AT_UDL), 140);
	}
	free(t);
	t = rep("\xe8\xa8\x93", 202);
	assert_int_equal(enc(t, 4, p), 4);
	assert_int_equal(octet(p[3].hex, AT_UDL), 8);
	free(t);
}

static void
test_max_parts(void **state)
{
	struct sms_part p[SMS_MAX_PARTS];
	char err[256];
	char *t = rep("c", 307);

	assert_int_equal(sms_encode_submit(NUM, t, 0, 2, 0, 0, p, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "needs 3 parts"));
	assert_non_null(strstr(err, "2 allowed"));
	assert_int_equal(sms_encode_submit(NUM, t, 0, 3, 0, 0, p, err,
	    sizeof(err)), 3);
	assert_int_equal(sms_encode_submit(NUM, t, 0, 0, 0, 0, p, err,
	    sizeof(err)), -1);
	free(t);
	/* max_parts above SMS_MAX_PARTS is SMS_MAX_PARTS */
	t = rep("c", 153 * SMS_MAX_PARTS + 1);
	assert_int_equal(sms_encode_submit(NUM, t, 0, 99, 0, 0, p, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "11 parts"));
	free(t);
	t = rep("c", 153 * SMS_MAX_PARTS);
	assert_int_equal(sms_encode_submit(NUM, t, 0, 99, 0, 0, p, err,
	    sizeof(err)), SMS_MAX_PARTS);
	free(t);
}

static void
test_refused(void **state)
{
	static const char *numbers[] = { "+8190;1234", "+81\r90", "+++", "AT",
	    "", "+1234567890123456", "+0812345678", "819012345678",
	    "+81 9012345678", "+819012345678\n", "+819012345678;+CMGS" };
	struct sms_part p[SMS_MAX_PARTS];
	char err[256];

	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		err[0] = '\0';
		assert_int_equal(sms_encode_submit(numbers[i], "hi", 0, 1, 0, 0,
		    p, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "number"));
		/* what is shown of it is printable */
		for (char *c = err; *c != '\0'; c++)
			assert_true(*c >= 0x20 && *c < 0x7f);
	}
	assert_int_equal(sms_encode_submit(NULL, "hi", 0, 1, 0, 0, p, err,
	    sizeof(err)), -1);
	assert_int_equal(sms_encode_submit(NUM, "", 0, 1, 0, 0, p, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));
	assert_int_equal(sms_encode_submit(NUM, NULL, 0, 1, 0, 0, p, err,
	    sizeof(err)), -1);
	assert_int_equal(sms_encode_submit(NUM, "ok \xc3(", 0, 1, 0, 0, p, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "UTF-8 (byte 3)"));
	assert_int_equal(sms_encode_submit(NUM, "\xed\xa0\x80", 0, 1, 0, 0, p,
	    err, sizeof(err)), -1);	/* a surrogate in UTF-8 */
	assert_int_equal(sms_encode_submit(NUM, "\xc0\xaf", 0, 1, 0, 0, p,
	    err, sizeof(err)), -1);	/* overlong */
	assert_int_equal(sms_encode_submit(NUM, "hi", 256, 1, 0, 0, p, err,
	    sizeof(err)), -1);
	assert_int_equal(sms_encode_submit(NUM, "hi", -1, 1, 0, 0, p, err,
	    sizeof(err)), -1);
	assert_int_equal(sms_encode_submit(NUM, "hi", 0, 1, 0, -5, p, err,
	    sizeof(err)), -1);
	/* a NULL err is allowed */
	assert_int_equal(sms_encode_submit("AT", "hi", 0, 1, 0, 0, p, NULL, 0),
	    -1);
}

static void
test_first_octet_and_vp(void **state)
{
	static const struct { int minutes; unsigned vp; } vps[] = {
		{ 1, 0 }, { 5, 0 }, { 6, 1 }, { 60, 11 }, { 720, 143 },
		{ 721, 144 }, { 750, 144 }, { 751, 145 }, { 1440, 167 },
		{ 1441, 168 }, { 2880, 168 }, { 2881, 169 }, { 5760, 170 },
		{ 43200, 196 }, { 43201, 197 }, { 50400, 197 }, { 50401, 198 },
		{ 635040, 255 }, { 635041, 255 }, { 2000000000, 255 },
	};
	struct sms_part p[SMS_MAX_PARTS];
	char err[256];
	char *t = rep("z", 200);

	assert_int_equal(sms_encode_submit(NUM, "x", 0, 1, 1, 0, p, err,
	    sizeof(err)), 1);
	assert_int_equal(octet(p[0].hex, AT_FO), 0x21);	/* SRR */
	assert_int_equal(sms_encode_submit(NUM, "x", 0, 1, 0, 60, p, err,
	    sizeof(err)), 1);
	assert_int_equal(octet(p[0].hex, AT_FO), 0x11);	/* VPF 10 */
	assert_int_equal(sms_encode_submit(NUM, t, 255, 2, 1, 60, p, err,
	    sizeof(err)), 2);
	assert_int_equal(octet(p[1].hex, AT_FO), 0x71);
	assert_int_equal(octet(p[1].hex, 1), 0);		/* TP-MR */
	assert_int_equal(octet(p[1].hex, 2), 12);		/* digits */
	assert_int_equal(octet(p[1].hex, 3), 0x91);
	assert_int_equal(octet(p[1].hex, 10), 0);		/* TP-PID */
	assert_int_equal(octet(p[1].hex, AT_VP), 11);
	assert_int_equal(octet(p[1].hex, AT_VP + 1 + 4), 255);	/* ref */
	free(t);
	for (size_t i = 0; i < sizeof(vps) / sizeof(vps[0]); i++) {
		assert_int_equal(sms_encode_submit(NUM, "x", 0, 1, 0,
		    vps[i].minutes, p, err, sizeof(err)), 1);
		assert_int_equal(octet(p[0].hex, AT_VP), vps[i].vp);
	}
}

/* ---- round trips through sms_decode() ----------------------------------- */

/* Encode text, decode every part, compare; returns the number of parts,
 * or -1 when the encoder refused (the text needs more than max parts). */
static int
round_trip(const char *text, int max, int srr)
{
	struct sms_part *p = calloc(SMS_MAX_PARTS, sizeof(*p));
	struct sms_decoded d;
	char err[256], *want, *got;
	size_t glen = 0;
	int n;

	assert_non_null(p);
	n = sms_encode_submit(NUM, text, 17, max, srr, 0, p, err, sizeof(err));
	if (n < 0) {
		assert_true(sms_parts_needed(text) > max);
		free(p);
		return -1;
	}
	assert_int_equal(n, sms_parts_needed(text));
	want = malloc(strlen(text) + 1);
	got = malloc((size_t)n * SMS_TEXT_MAX + 1);
	assert_non_null(want);
	assert_non_null(got);
	cleaned(text, want, strlen(text) + 1);
	got[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (sms_decode(p[i].hex, &d, err, sizeof(err)) != 0)
			fail_msg("part %d of %d: %s: %s", i + 1, n, err,
			    p[i].hex);
		assert_int_equal(d.type, SMS_PDU_SUBMIT);
		assert_string_equal(d.number, NUM);
		assert_true(d.number_international);
		assert_string_equal(d.smsc, "");
		assert_int_equal(d.coding, sms_coding_for(text));
		assert_int_equal(d.srr, srr);
		if (n > 1) {
			assert_int_equal(d.concat_ref, 17);
			assert_int_equal(d.concat_total, n);
			assert_int_equal(d.concat_seq, i + 1);
		} else
			assert_int_equal(d.concat_total, 0);
		assert_string_equal(d.text, p[i].text);
		assert_clean_utf8(d.text);
		memcpy(got + glen, d.text, strlen(d.text) + 1);
		glen += strlen(d.text);
		/* each part within its limits */
		assert_true(strlen(p[i].hex) < SMS_PDU_HEX_MAX);
		assert_true(sms_length(p[i].text, d.coding) <=
		    (size_t)(n == 1 ? (d.coding == SMS_GSM7 ? 160 : 70) :
		    (d.coding == SMS_GSM7 ? 153 : 67)));
	}
	assert_string_equal(got, want);
	free(want);
	free(got);
	free(p);
	return n;
}

static void
test_round_trip_fixed(void **state)
{
	static const char *texts[] = {
		"hellohello", "a", "@", "\n", " ", "\xe2\x82\xac",
		"Alert: water outage. Reply ABCD-EFGH",
		"{}[]~|^\\\xe2\x82\xac x",
		"line one\nline two\r\nline three\ttabbed",
		"\xe3\x80\x90\xe8\xa8\x93\xe7\xb7\xb4\xe3\x80\x91"
		    "\xe6\x96\xad\xe6\xb0\xb4\xef\xbc\xa1\xef\xbc\x91",
		"\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbb",
		"caf\xc3\xa9 \xc3\xa7" "a", "C1 \xc2\x85 control",
		"DEL\x7f" "char", "\xef\xbf\xbd replacement",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		assert_int_equal(round_trip(texts[i], 4, 0), 1);
		assert_int_equal(round_trip(texts[i], 1, 1), 1);
	}
}

/* A small deterministic generator (LCG): no rand() state shared. */
static uint32_t
lcg(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static void
test_round_trip_random(void **state)
{
	/* 7-bit ones, extension ones, controls, and some UCS2 forcers */
	static const char *pool[] = { "a", "Z", "0", " ", "\n", "\t", "\r",
	    "@", "$", "_", "\xc3\x87", "\xce\x94", "\xc3\xa0", "\xe2\x82\xac",
	    "[", "]", "{", "}", "~", "|", "^", "\\", "\x01", "\x7f",
	    "\xc2\x9f", "\xe3\x81\x82", "\xe8\xa8\x93", "\xf0\x9f\x98\x80",
	    "\xef\xbc\xa1", "`", "\xc3\xa7", "\xc2\xa0", "\xf4\x8f\xbf\xbf" };
	size_t npool = sizeof(pool) / sizeof(pool[0]);
	uint32_t seed = 12345;
	char *buf = malloc(8 * 1600 + 1);
	int multi = 0, refused = 0;

	assert_non_null(buf);
	for (int iter = 0; iter < 600; iter++) {
		/* mostly 7-bit pools for half of the texts */
		size_t use = iter % 2 ? npool : 24;
		int len = 1 + (int)(lcg(&seed) % (iter % 3 ? 400 : 1600));
		size_t o = 0;

		for (int i = 0; i < len; i++) {
			const char *c = pool[lcg(&seed) % use];

			memcpy(buf + o, c, strlen(c));
			o += strlen(c);
		}
		buf[o] = '\0';
		switch (round_trip(buf, 1 + iter % SMS_MAX_PARTS, iter % 2)) {
		case -1:
			refused++;
			break;
		case 1:
			break;
		default:
			multi++;
		}
	}
	assert_true(multi > 100);
	assert_true(refused > 50);
	free(buf);
}

/* ---- the decoder: SMS-DELIVER ------------------------------------------- */

/* ms since the epoch of a UTC time, by timegm(). */
static int64_t
utc_ms(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = { 0 };

	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	return (int64_t)timegm(&tm) * 1000;
}

static void
test_deliver_classic(void **state)
{
	struct sms_decoded d;
	char err[256];

	/* SMSC +27381000015; OA 27838890001 (type C8: not international);
	 * 1999-03-29 15:16:59 +02:00 (8 quarters); "hellohello" */
	assert_int_equal(sms_decode("07917283010010F5040BC87238880900F1000099"
	    "30925161958" "00AE8329BFD4697D9EC37", &d, err, sizeof(err)), 0);
	assert_int_equal(d.type, SMS_PDU_DELIVER);
	assert_string_equal(d.smsc, "+27381000015");
	assert_string_equal(d.number, "27838890001");
	assert_false(d.number_international);
	assert_int_equal(d.coding, SMS_GSM7);
	assert_string_equal(d.text, "hellohello");
	assert_int_equal(d.scts, utc_ms(1999, 3, 29, 13, 16, 59));
	assert_int_equal(d.concat_total, 0);
	/* lower case hex, and a line end, are fine */
	assert_int_equal(sms_decode("07917283010010f5040bc87238880900f1000099"
	    "309251619580" "0ae8329bfd4697d9ec37\r\n", &d, err, sizeof(err)), 0);
	assert_string_equal(d.text, "hellohello");
}

static void
test_deliver_vectors(void **state)
{
	struct sms_decoded d;
	char err[256];

	/* Alphanumeric sender "A_$@b" (septets 41 11 02 00 62: 9
	 * semi-octets), a CR (a space) and a LF (kept) in the text,
	 * +09:00 */
	assert_int_equal(sms_decode("000409D0C1880020060000421020304050630B"
	    "C874838E2ECBCB8AF71A", &d, err, sizeof(err)), 0);
	assert_string_equal(d.smsc, "");
	assert_string_equal(d.number, "A_$@b");
	assert_false(d.number_international);
	assert_string_equal(d.text, "Hi there\nok");
	assert_int_equal(d.scts, utc_ms(2024, 1, 1, 18, 4, 5));
	/* UCS2 "テスト" from +12025550123, 2024-02-29 23:59:59 -05:00 */
	assert_int_equal(sms_decode("07919121436587F9040B912120550521F30008"
	    "4220923295950A" "0630C630B930C8", &d, err, sizeof(err)), 0);
	assert_string_equal(d.smsc, "+19123456789");
	assert_string_equal(d.number, "+12025550123");
	assert_true(d.number_international);
	assert_int_equal(d.coding, SMS_UCS2);
	assert_string_equal(d.text, "\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88");
	assert_int_equal(d.scts, utc_ms(2024, 3, 1, 4, 59, 59));
	/* escapes: 1B 41 (not in the table: 'A'), 1B 1B (a space), a final
	 * 1B (a space) */
	assert_int_equal(sms_decode("00040B911809214365870000421020304050630"
	    "8F84D30BFD9E837", &d, err, sizeof(err)), 0);
	assert_string_equal(d.text, "xAy z ");
	/* other IEs before the concatenation one skipped; UDH of 9 octets,
	 * so 5 fill bits before the text */
	assert_int_equal(sms_decode("00440B91180921436587000042102030405063"
	    "13087001AA00035A0201001A96D3416F7719", &d, err, sizeof(err)), 0);
	assert_int_equal(d.concat_ref, 0x5a);
	assert_int_equal(d.concat_total, 2);
	assert_int_equal(d.concat_seq, 1);
	assert_string_equal(d.text, "Part one");
}

/* From python3-gammu's EncodePDU: a UCS2 text in two parts (reference
 * 9C) and a 7-bit one with a 16-bit reference (a 7-octet UDH: no fill
 * bits), 2026-11-21 20:10:30 +00:00. */
static void
test_deliver_concatenated(void **state)
{
	struct sms_decoded d;
	char err[256];

	assert_int_equal(sms_decode("0791180999990000400C911809214365870008"
	    "62111202010300240500039C0202624B980630675B89542630925831544A"
	    "30573066304F3060305530443002", &d, err, sizeof(err)), 0);
	assert_int_equal(d.coding, SMS_UCS2);
	assert_int_equal(d.concat_ref, 0x9c);
	assert_int_equal(d.concat_total, 2);
	assert_int_equal(d.concat_seq, 2);
	assert_string_equal(d.text, "\xe6\x89\x8b\xe9\xa0\x86\xe3\x81\xa7"
	    "\xe5\xae\x89\xe5\x90\xa6\xe3\x82\x92\xe5\xa0\xb1\xe5\x91\x8a"
	    "\xe3\x81\x97\xe3\x81\xa6\xe3\x81\x8f\xe3\x81\xa0\xe3\x81\x95"
	    "\xe3\x81\x84\xe3\x80\x82");
	assert_int_equal(d.scts, utc_ms(2026, 11, 21, 20, 10, 30));
	assert_int_equal(sms_decode("0791180999990000400C911809214365870000"
	    "621112020103001306080412340302F3F2F8ED2683E061391D", &d, err,
	    sizeof(err)), 0);
	assert_int_equal(d.coding, SMS_GSM7);
	assert_int_equal(d.concat_ref, 0x1234);
	assert_int_equal(d.concat_total, 3);
	assert_int_equal(d.concat_seq, 2);
	assert_string_equal(d.text, "second part");
}

static void
test_deliver_codings(void **state)
{
	struct sms_decoded d;
	char err[256];
	/* no SMSC, FO 00, OA +81 (2 digits), PID 00 */
	const char *head = "000002911800";
	const char *scts = "42102030405000";
	char hex[512];

	/* DCS F1 (7-bit, class 1), F4 (8-bit), 18 (UCS2, class 0), 11
	 * (7-bit, class 1), 84 (reserved group: 7-bit), E8 (MWI, UCS2) */
	snprintf(hex, sizeof(hex), "%sF1%s05E8329BFD06", head, scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_string_equal(d.number, "+81");
	assert_string_equal(d.text, "hello");
	assert_int_equal(d.coding, SMS_GSM7);
	snprintf(hex, sizeof(hex), "%s11%s05E8329BFD06", head, scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_string_equal(d.text, "hello");
	snprintf(hex, sizeof(hex), "%s84%s05E8329BFD06", head, scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_string_equal(d.text, "hello");
	/* 8-bit: UTF-8 where it is, U+FFFD for other bytes, controls and
	 * NUL as spaces */
	snprintf(hex, sizeof(hex), "%sF4%s0861FF00C3A90D0A7F", head, scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_int_equal(d.coding, SMS_8BIT);
	assert_string_equal(d.text, "a\xef\xbf\xbd \xc3\xa9 \n ");
	/* UCS2: an unpaired high and low surrogate, a pair, U+0000, an odd
	 * last octet */
	snprintf(hex, sizeof(hex), "%s18%s0DD83D0041DC00D83DDE00000041",
	    head, scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_int_equal(d.coding, SMS_UCS2);
	assert_string_equal(d.text, "\xef\xbf\xbd" "A\xef\xbf\xbd"
	    "\xf0\x9f\x98\x80 \xef\xbf\xbd");
	snprintf(hex, sizeof(hex), "%sE8%s0400410042", head, scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_string_equal(d.text, "AB");
	/* compressed (DCS 20): refused, saying so */
	snprintf(hex, sizeof(hex), "%s20%s05E8329BFD06", head, scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "compressed"));
	/* an empty text */
	snprintf(hex, sizeof(hex), "%s00%s00", head, scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_string_equal(d.text, "");
	/* a concatenation IE with sequence 0 or above the total: ignored */
	snprintf(hex, sizeof(hex), "0040%s08%s080500030702030041", head + 4,
	    scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_int_equal(d.concat_total, 0);
	assert_string_equal(d.text, "A");
	snprintf(hex, sizeof(hex), "0040%s08%s080500030702000041", head + 4,
	    scts);
	assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
	assert_int_equal(d.concat_total, 0);
	assert_string_equal(d.text, "A");
}

/* ---- the decoder: SMS-STATUS-REPORT ------------------------------------- */

static void
test_status_reports(void **state)
{
	static const struct { const char *st; int status;
	    enum sms_status_class cls; const char *text; } cases[] = {
		{ "00", 0x00, SMS_ST_DELIVERED, "received by the SME" },
		{ "41", 0x41, SMS_ST_FAILED, "incompatible destination" },
		{ "30", 0x30, SMS_ST_TRYING,
		    "SC-specific temporary error (still trying)" },
		{ "20", 0x20, SMS_ST_TRYING, "congestion (still trying)" },
		{ "62", 0x62, SMS_ST_GAVE_UP,
		    "no response from SME (no longer trying)" },
	};
	struct sms_decoded d;
	char err[256], hex[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* SMSC +819099990000, FO 06, MR 2A, RA +819012345678, SCTS
		 * 2026-11-21 20:10:00 +09:00, DT 20:10:03 -06:30 */
		snprintf(hex, sizeof(hex), "0791180999990000" "06" "2A"
		    "0C91180921436587" "62111202010063" "6211120201306A" "%s",
		    cases[i].st);
		assert_int_equal(sms_decode(hex, &d, err, sizeof(err)), 0);
		assert_int_equal(d.type, SMS_PDU_STATUS_REPORT);
		assert_string_equal(d.smsc, "+819099990000");
		assert_string_equal(d.number, NUM);
		assert_int_equal(d.mr, 42);
		assert_int_equal(d.scts, utc_ms(2026, 11, 21, 11, 10, 0));
		assert_int_equal(d.discharge, utc_ms(2026, 11, 22, 2, 40, 3));
		assert_int_equal(d.status, cases[i].status);
		assert_int_equal(sms_status_classify(d.status), cases[i].cls);
		assert_string_equal(sms_status_text(d.status), cases[i].text);
		assert_string_equal(d.text, "");
	}
	/* No SMSC; optional TP-PI, PID, DCS, UDL, UD after TP-ST: ignored */
	assert_int_equal(sms_decode("00" "06" "FF" "0A81" "9010325476"
	    "62111202010063" "62111202010063" "00" "07" "00" "00" "02C834",
	    &d, err, sizeof(err)), 0);
	assert_int_equal(d.mr, 255);
	assert_string_equal(d.number, "0901234567");
	assert_false(d.number_international);
	assert_int_equal(d.status, 0);
}

static void
test_status_classes(void **state)
{
	for (int st = 0; st < 256; st++) {
		enum sms_status_class c = sms_status_classify(st);
		const char *t = sms_status_text(st);
		int reserved = (st >= 0x03 && st <= 0x0f) ||
		    (st >= 0x26 && st <= 0x2f) || (st >= 0x4a && st <= 0x4f) ||
		    (st >= 0x66 && st <= 0x6f) || st >= 0x80;

		assert_non_null(t);
		assert_true(strlen(t) > 0);
		if (reserved) {
			/* 9.2.3.15: taken as "service rejected" (0x63) */
			assert_int_equal(c, SMS_ST_GAVE_UP);
			assert_non_null(strstr(t, "reserved"));
		} else if (st < 0x20)
			assert_int_equal(c, SMS_ST_DELIVERED);
		else if (st < 0x40)
			assert_int_equal(c, SMS_ST_TRYING);
		else if (st < 0x60)
			assert_int_equal(c, SMS_ST_FAILED);
		else
			assert_int_equal(c, SMS_ST_GAVE_UP);
	}
	assert_int_equal(sms_status_classify(-1), SMS_ST_GAVE_UP);
	assert_int_equal(sms_status_classify(1000), SMS_ST_GAVE_UP);
	assert_string_equal(sms_status_text(0x01),
	    "forwarded to the SME, delivery not confirmed");
	assert_string_equal(sms_status_text(0x46), "validity period expired");
	assert_string_equal(sms_status_text(0x63),
	    "service rejected (no longer trying)");
	assert_string_equal(sms_status_text(0x7a),
	    "SC-specific temporary error (no longer trying)");
}

/* ---- the decoder: what is wrong, and where ------------------------------ */

/* sms_decode(hex) fails with err holding what. */
static void
assert_bad(const char *hex, const char *what)
{
	struct sms_decoded d;
	char err[256] = "";

	memset(&d, 0x55, sizeof(d));
	if (sms_decode(hex, &d, err, sizeof(err)) != -1)
		fail_msg("accepted: %s", hex ? hex : "(null)");
	if (what != NULL && strstr(err, what) == NULL)
		fail_msg("%s: error '%s' does not say '%s'", hex, err, what);
	/* nothing half-decoded is left behind */
	assert_string_equal(d.text, "");
	assert_string_equal(d.number, "");
}

static void
test_malformed(void **state)
{
	static const char *valid[] = {
		"07917283010010F5040BC87238880900F10000993092516195800AE8329BFD"
		    "4697D9EC37",
		"0791180999990000400C91180921436587000862111202010300240500039C"
		    "0202624B980630675B89542630925831544A30573066304F306030553044"
		    "3002",
		"0791180999990000062A0C911809214365876211120201006362111202013063"
		    "00",
		"0001000C9118092143658700000AE8329BFD4697D9EC37",
		"0071000C911809214365870000A71305000307020236E57C3E9FCFE7F3F9"
		    "7C1E",
	};
	char buf[600];

	assert_bad(NULL, "no PDU");
	assert_bad("", "empty");
	assert_bad("\r\n", "empty");
	assert_bad("0", "odd");
	assert_bad("0G", "bad hex at 1");
	assert_bad("00 01", "bad hex at 2");
	assert_bad("0001000C9118092143658700000AE8329BFD4697D9EC3", "odd");
	assert_bad("0003", "unsupported TP-MTI 3");
	assert_bad("00", "truncated at octet 1");
	assert_bad("0B", "SMSC address at octet 0");
	assert_bad("05911809", "truncated at octet 4");
	/* address longer than 20 digits */
	assert_bad("000415910000000000000000000000", "more than 20 digits");
	/* (no SMSC, FO, OA +81, PID) DCS SCTS UDL UD: TP-UDL above 160
	 * septets / 140 octets */
	assert_bad("000002911800" "00" "42102030405000" "A1" "E8",
	    "161 septets");
	assert_bad("000002911800" "08" "42102030405000" "8D" "00",
	    "141 octets");
	/* TP-UDL says more than there is: 5 octets from octet 15 */
	assert_bad("000002911800" "00" "42102030405000" "05" "E8329BFD",
	    "truncated at octet 19: TP-UD needs 5 octets from octet 15");
	/* UDHI with a header longer than the data, with an IE overrunning
	 * the header, with an IE cut, with no data at all */
	assert_bad("004002911800" "08" "42102030405000" "02" "09FF",
	    "user data header");
	assert_bad("004002911800" "08" "42102030405000" "05" "0400030102",
	    "overruns");
	assert_bad("004002911800" "08" "42102030405000" "02" "0100", "is cut");
	assert_bad("004002911800" "08" "42102030405000" "00", "empty");
	/* time stamps: not BCD, no 32nd, no 30 February, a bad zone */
	assert_bad("000002911800" "00" "4A102030405000" "05" "E8329BFD06",
	    "TP-SCTS at octet 7: octet 4A");
	assert_bad("000002911800" "00" "42102330405000" "05" "E8329BFD06",
	    "no such time");
	assert_bad("000002911800" "00" "42200340506000" "05" "E8329BFD06",
	    "no such time 2024-02-30");
	assert_bad("000002911800" "00" "421020304050F0" "05" "E8329BFD06",
	    "time zone");
	/* compressed, in a status report's place, an SMSC too long */
	assert_bad("000002911800" "20" "42102030405000" "05" "E8329BFD06",
	    "compressed");
	/* every prefix of a valid PDU (up to its last mandatory octet) is
	 * refused, and the PDU itself read */
	for (size_t v = 0; v < sizeof(valid) / sizeof(valid[0]); v++) {
		struct sms_decoded d;
		char err[256];
		size_t n = strlen(valid[v]);

		assert_int_equal(sms_decode(valid[v], &d, err, sizeof(err)), 0);
		for (size_t k = 2; k < n; k += 2) {
			snprintf(buf, sizeof(buf), "%.*s", (int)k, valid[v]);
			assert_bad(buf, "truncated at octet");
		}
	}
	/* too long */
	memset(buf, '0', 2 * 257);
	buf[2 * 257] = '\0';
	assert_bad(buf, "too long");
}

/*
 * Whatever the bytes, a decoded text is clean UTF-8 and never overruns.
 * Templates keep enough structure for the random octets ('?': a random
 * hex digit) to reach the user data: a valid time stamp, a short address.
 * A random tail follows.
 */
static void
test_garbage(void **state)
{
	static const char *tpl[] = {
		"00040291??????42102030405000",		/* DELIVER */
		"00440291??????42102030405000",		/* DELIVER, UDHI */
		"00440291??00??42102030405000??05",	/* UDHI, a UDH */
		"0006??0291??4210203040500042102030405000",	/* REPORT */
		"0001??0291????",			/* SUBMIT */
		"0051??0291??????",			/* SUBMIT, VP, UDHI */
		"00",					/* anything */
		"0791??????????????",			/* an SMSC, anything */
	};
	uint32_t seed = 99;
	char hex[2 * 260 + 1];
	struct sms_decoded d;
	char err[256];
	int decoded = 0;

	for (int iter = 0; iter < 40000; iter++) {
		const char *t = tpl[iter % (sizeof(tpl) / sizeof(tpl[0]))];
		size_t n = strlen(t), len = n + 2 * (lcg(&seed) % 190);

		for (size_t i = 0; i < len; i++)
			hex[i] = i < n && t[i] != '?' ? t[i] :
			    "0123456789ABCDEF"[lcg(&seed) % 16];
		hex[len] = '\0';
		err[0] = '\0';
		if (sms_decode(hex, &d, err, sizeof(err)) == 0) {
			decoded++;
			assert_clean_utf8(d.text);
			assert_clean_utf8(d.number);
			assert_clean_utf8(d.smsc);
			assert_non_null(memchr(d.text, '\0', sizeof(d.text)));
		} else
			assert_true(strlen(err) > 0);
	}
	assert_true(decoded > 2000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_number_ok),
		cmocka_unit_test(test_coding_and_length),
		cmocka_unit_test(test_parts_needed),
		cmocka_unit_test(test_hellohello),
		cmocka_unit_test(test_extension_septets),
		cmocka_unit_test(test_ucs2_japanese),
		cmocka_unit_test(test_escape_at_boundary),
		cmocka_unit_test(test_surrogate_at_boundary),
		cmocka_unit_test(test_exact_boundaries),
		cmocka_unit_test(test_max_parts),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_first_octet_and_vp),
		cmocka_unit_test(test_round_trip_fixed),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_deliver_classic),
		cmocka_unit_test(test_deliver_vectors),
		cmocka_unit_test(test_deliver_concatenated),
		cmocka_unit_test(test_deliver_codings),
		cmocka_unit_test(test_status_reports),
		cmocka_unit_test(test_status_classes),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
