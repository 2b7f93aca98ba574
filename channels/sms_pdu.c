/*
 * sms_pdu.c - SMS PDUs: SMS-SUBMIT out; SMS-DELIVER and SMS-STATUS-REPORT
 * in (3GPP TS 23.040), their text in the GSM 7-bit default alphabet, its
 * extension table, UCS2 or 8-bit data (3GPP TS 23.038).
 *
 * Pure functions over the caller's buffers: no I/O, no allocation, no
 * state.  Section numbers in comments are those of 23.040 and 23.038.
 *
 * The encoder, beyond what sms_pdu.h says:
 *   - Text is cleaned as the decoder cleans it: a control character other
 *     than LF (C0, DEL, C1) is sent as a space.  A TAB would otherwise
 *     force UCS2 (70 characters a part instead of 160), and phones show
 *     CR, FF and the rest each their own way.  So what sms_decode() gives
 *     back for a part is exactly its part.text, and the extension table's
 *     page break (1B 0A) is understood but never sent.
 *   - The coding is chosen once for the whole text: every part has it.
 *   - The split is greedy: a part takes as many whole characters (an
 *     escape sequence or a surrogate pair being one character) as fit.
 *
 * The decoder reads through struct rd, which checks every length against
 * what is left of the input before anything is read, and writes text
 * through struct out, which never overflows, always NUL-terminates and
 * writes only valid UTF-8 without control characters but LF.  Octets are
 * counted from 0, the SMSC length octet; hex digits from 0 too.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "channels/sms_pdu.h"
#include "relay/relay.h"	/* ingest_utf8_seq(): the one UTF-8 decoder */

#define GSM7_SINGLE	160	/* septets in one message (9.2.3.16) */
#define GSM7_PART	153	/* after a 6-octet UDH and 1 fill bit */
#define UCS2_SINGLE	70	/* UTF-16 units: 140 octets */
#define UCS2_PART	67	/* 134 octets after the 6-octet UDH */
#define UD_MAX		140	/* octets of TP-UD */
#define CONCAT_UDH_LEN	6	/* 05 00 03 ref total seq */
#define PDU_MAX		256	/* octets sms_decode() takes (real ones: <180) */
#define ESC		0x1b	/* 23.038 6.2.1: escape to the extension table */

/* TP-MTI and the other bits of the first octet (9.2.3.1-9.2.3.5, 9.2.3.23) */
#define FO_MTI_SUBMIT	0x01
#define FO_VPF_RELATIVE	0x10
#define FO_SRR		0x20	/* SUBMIT: TP-SRR; DELIVER: TP-SRI */
#define FO_UDHI		0x40

/* ---- UTF-8 and the characters the decoder lets through ----------------- */

/* The code point of a sequence ingest_utf8_seq() found valid, k bytes. */
static uint32_t
utf8_cp(const unsigned char *s, size_t k)
{
	static const unsigned char lead_mask[5] = { 0, 0x7f, 0x1f, 0x0f, 0x07 };
	uint32_t cp = s[0] & lead_mask[k];

	for (size_t i = 1; i < k; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

/* 1 for what neither side lets through: C0 controls but LF, DEL, C1. */
static int
is_control(uint32_t cp)
{
	return (cp < 0x20 && cp != '\n') || (cp >= 0x7f && cp < 0xa0);
}

/*
 * The next character of s[0..n) from *pos (< n), advancing *pos: invalid
 * UTF-8 is one byte read as U+FFFD, a control character is a space.
 */
static uint32_t
next_char(const unsigned char *s, size_t n, size_t *pos)
{
	size_t k = ingest_utf8_seq(s + *pos, n - *pos);
	uint32_t cp;

	if (k == 0) {
		(*pos)++;
		return 0xfffd;
	}
	cp = utf8_cp(s + *pos, k);
	*pos += k;
	return is_control(cp) ? ' ' : cp;
}

/* ---- the GSM 7-bit default alphabet (23.038 6.2.1) --------------------- */

/* Septet -> code point.  0x1B is the escape: never looked up here (the
 * space in its place is never read). */
static const uint16_t gsm7_base[128] = {
	'@', 0x00a3, '$', 0x00a5, 0x00e8, 0x00e9, 0x00f9, 0x00ec,
	0x00f2, 0x00c7, '\n', 0x00d8, 0x00f8, '\r', 0x00c5, 0x00e5,
	0x0394, '_', 0x03a6, 0x0393, 0x039b, 0x03a9, 0x03a0, 0x03a8,
	0x03a3, 0x0398, 0x039e, ' ', 0x00c6, 0x00e6, 0x00df, 0x00c9,
	' ', '!', '"', '#', 0x00a4, '%', '&', '\'',
	'(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7',
	'8', '9', ':', ';', '<', '=', '>', '?',
	0x00a1, 'A', 'B', 'C', 'D', 'E', 'F', 'G',
	'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W',
	'X', 'Y', 'Z', 0x00c4, 0x00d6, 0x00d1, 0x00dc, 0x00a7,
	0x00bf, 'a', 'b', 'c', 'd', 'e', 'f', 'g',
	'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w',
	'x', 'y', 'z', 0x00e4, 0x00f6, 0x00f1, 0x00fc, 0x00e0,
};

/* The extension table (6.2.1.1): the septet after the escape. */
static const struct {
	uint8_t		septet;
	uint16_t	cp;
} gsm7_ext[] = {
	{ 0x0a, 0x000c },	/* page break: decoded (as a space), never sent */
	{ 0x14, '^' }, { 0x28, '{' }, { 0x29, '}' }, { 0x2f, '\\' },
	{ 0x3c, '[' }, { 0x3d, '~' }, { 0x3e, ']' }, { 0x40, '|' },
	{ 0x65, 0x20ac },	/* euro sign */
};

/*
 * The septets for cp: 1 from the default alphabet, or 2 (the escape, then
 * the code) from the extension table, written to sept; 0 if it has none.
 * Control characters never get here from the encoder (they are spaces),
 * so CR and FF, though in the tables, are not looked up.
 */
static int
gsm7_septets(uint32_t cp, uint8_t sept[2])
{
	if (is_control(cp))
		return 0;
	for (unsigned i = 0; i < 128; i++)
		if (i != ESC && gsm7_base[i] == cp) {
			sept[0] = (uint8_t)i;
			return 1;
		}
	for (size_t i = 0; i < sizeof(gsm7_ext) / sizeof(gsm7_ext[0]); i++)
		if (gsm7_ext[i].cp == cp) {
			sept[0] = ESC;
			sept[1] = gsm7_ext[i].septet;
			return 2;
		}
	return 0;
}

/* What one character costs in coding: septets, or UTF-16 units. */
static size_t
char_cost(uint32_t cp, enum sms_coding coding)
{
	uint8_t sept[2];
	int n;

	if (coding == SMS_UCS2)
		return cp > 0xffff ? 2 : 1;
	n = gsm7_septets(cp, sept);
	return n == 0 ? 1 : (size_t)n;	/* not in the alphabet: counted 1 */
}

/* ---- lengths and the split into parts ---------------------------------- */

int
sms_number_ok(const char *number)
{
	size_t n;

	if (number == NULL || number[0] != '+' || number[1] < '1' ||
	    number[1] > '9')
		return 0;
	n = strspn(number + 1, "0123456789");
	return n >= 1 && n <= 15 && number[1 + n] == '\0';
}

enum sms_coding
sms_coding_for(const char *text)
{
	const unsigned char *s = (const unsigned char *)(text ? text : "");
	size_t n = strlen((const char *)s), pos = 0;
	uint8_t sept[2];

	while (pos < n)
		if (gsm7_septets(next_char(s, n, &pos), sept) == 0)
			return SMS_UCS2;
	return SMS_GSM7;
}

size_t
sms_length(const char *text, enum sms_coding coding)
{
	const unsigned char *s = (const unsigned char *)(text ? text : "");
	size_t n = strlen((const char *)s), pos = 0, len = 0;

	while (pos < n)
		len += char_cost(next_char(s, n, &pos), coding);
	return len;
}

/*
 * Where the parts of s[0..n) end, each holding at most cap septets/units
 * of whole characters: ends[i] is the byte offset after part i, for
 * i < max.  Returns how many parts there are (counted on past max).
 * n > 0.  Whole characters because each part is shown as it arrives, and
 * by phones that never reassemble: an escape cut from its code would read
 * as a space and a wrong character, half a surrogate pair as U+FFFD.
 */
static size_t
split(const unsigned char *s, size_t n, enum sms_coding coding,
    size_t cap, size_t *ends, size_t max)
{
	size_t pos = 0, k = 0, used = 0, before;
	uint32_t cp;

	while (pos < n) {
		before = pos;
		cp = next_char(s, n, &pos);
		if (used + char_cost(cp, coding) > cap) {
			if (k < max)
				ends[k] = before;
			k++;
			used = 0;
		}
		used += char_cost(cp, coding);
	}
	if (k < max)
		ends[k] = n;
	return k + 1;
}

/* The parts s[0..n) needs in coding (see split()); n > 0. */
static size_t
plan(const unsigned char *s, size_t n, enum sms_coding coding, size_t *ends,
    size_t max)
{
	size_t single = coding == SMS_UCS2 ? UCS2_SINGLE : GSM7_SINGLE;
	size_t part = coding == SMS_UCS2 ? UCS2_PART : GSM7_PART;
	size_t len = 0, pos = 0;

	/* One message when it all fits: no UDH, the whole 140 octets. */
	while (pos < n && len <= single)
		len += char_cost(next_char(s, n, &pos), coding);
	if (len <= single) {
		if (max > 0)
			ends[0] = n;
		return 1;
	}
	return split(s, n, coding, part, ends, max);
}

int
sms_parts_needed(const char *text)
{
	const unsigned char *s = (const unsigned char *)(text ? text : "");
	size_t n = strlen((const char *)s), k;

	if (n == 0)
		return 1;
	k = plan(s, n, sms_coding_for(text), NULL, 0);
	return k > INT_MAX ? INT_MAX : (int)k;
}

/* ---- the encoder -------------------------------------------------------- */

static int
fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Say why in err; returns -1. */
static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * TP-VP in the relative format (9.2.3.12.1) for at least minutes (> 0):
 *   0-143    (VP + 1) x 5 minutes            5 min .. 12 h
 *   144-167  12 h + (VP - 143) x 30 minutes  12 h 30 .. 24 h
 *   168-196  (VP - 166) days                 2 .. 30 days
 *   197-255  (VP - 192) weeks                5 .. 63 weeks
 * Rounded up to the next value the field can say, capped at 63 weeks.
 */
static uint8_t
vp_relative(int minutes)
{
	if (minutes <= 12 * 60)
		return (uint8_t)((minutes + 4) / 5 - 1);
	if (minutes <= 24 * 60)
		return (uint8_t)(143 + (minutes - 12 * 60 + 29) / 30);
	if (minutes <= 30 * 24 * 60)
		return (uint8_t)(166 + (minutes + 24 * 60 - 1) / (24 * 60));
	if (minutes / (7 * 24 * 60) >= 63)
		return 255;
	return (uint8_t)(192 + (minutes + 7 * 24 * 60 - 1) / (7 * 24 * 60));
}

/*
 * Pack septets into octets from bit offset `bit' of ud (zeroed by the
 * caller), least significant bit first (23.038 6.1.2.1.1): septet i takes
 * bits bit+7i .. bit+7i+6, spilling into the next octet.
 */
static void
pack7(uint8_t *ud, size_t bit, const uint8_t *sept, size_t n)
{
	for (size_t i = 0; i < n; i++, bit += 7) {
		ud[bit / 8] |= (uint8_t)(sept[i] << (bit % 8));
		if (bit % 8 > 1)
			ud[bit / 8 + 1] |= (uint8_t)(sept[i] >> (8 - bit % 8));
	}
}

/* Append len bytes of text s to dst (size cap, holding *len bytes). */
static void
append(char *dst, size_t cap, size_t *len, const unsigned char *s,
    size_t n)
{
	if (*len + n < cap) {
		memcpy(dst + *len, s, n);
		*len += n;
	}
	dst[*len] = '\0';
}

/*
 * One SMS-SUBMIT (9.2.2.2) for text s[0..n), already planned to fit:
 * parts of a concatenated message get the UDH of 9.2.3.24.1.
 */
static void
encode_part(const char *number, const unsigned char *s, size_t n,
    enum sms_coding coding, int ref, int seq, int total, int srr,
    int vp_minutes, struct sms_part *part)
{
	static const char hexd[] = "0123456789ABCDEF";
	uint8_t tpdu[200], ud[UD_MAX], sept[2 * GSM7_SINGLE];
	const char *digits = number + 1;
	size_t nd = strlen(digits), t = 0, pos = 0, start, udl, udlen = 0;
	size_t ns = 0, tl = 0;
	uint8_t fo = FO_MTI_SUBMIT;	/* TP-RD 0, TP-RP 0 */
	uint32_t cp;

	memset(ud, 0, sizeof(ud));
	part->text[0] = '\0';
	if (vp_minutes > 0)
		fo |= FO_VPF_RELATIVE;
	if (srr)
		fo |= FO_SRR;
	if (total > 1) {
		/* IEI 00: concatenated short messages, 8-bit reference */
		fo |= FO_UDHI;
		ud[0] = CONCAT_UDH_LEN - 1;	/* UDHL */
		ud[1] = 0x00;
		ud[2] = 3;
		ud[3] = (uint8_t)ref;
		ud[4] = (uint8_t)total;
		ud[5] = (uint8_t)seq;
		udlen = CONCAT_UDH_LEN;
	}

	tpdu[t++] = fo;
	tpdu[t++] = 0x00;		/* TP-MR: the modem sets it */
	/* TP-DA (9.1.2.5): digits, type 0x91 (international, E.164), then
	 * semi-octets low nibble first, an odd count padded with F. */
	tpdu[t++] = (uint8_t)nd;
	tpdu[t++] = 0x91;
	for (size_t i = 0; i < nd; i += 2)
		tpdu[t++] = (uint8_t)((digits[i] - '0') |
		    (i + 1 < nd ? digits[i + 1] - '0' : 0x0f) << 4);
	tpdu[t++] = 0x00;		/* TP-PID: plain short message */
	tpdu[t++] = coding == SMS_UCS2 ? 0x08 : 0x00;	/* TP-DCS, 23.038 4 */
	if (vp_minutes > 0)
		tpdu[t++] = vp_relative(vp_minutes);

	while (pos < n) {
		unsigned char u8[4];
		size_t before = pos, k;

		cp = next_char(s, n, &pos);
		if (coding == SMS_GSM7) {
			ns += (size_t)gsm7_septets(cp, sept + ns);
		} else if (cp > 0xffff) {	/* a surrogate pair */
			cp -= 0x10000;
			ud[udlen++] = (uint8_t)(0xd8 | cp >> 18);
			ud[udlen++] = (uint8_t)(cp >> 10);
			ud[udlen++] = (uint8_t)(0xdc | (cp >> 8 & 0x03));
			ud[udlen++] = (uint8_t)cp;
			cp += 0x10000;
		} else {
			ud[udlen++] = (uint8_t)(cp >> 8);
			ud[udlen++] = (uint8_t)cp;
		}
		/* part.text: the character as sent (controls as spaces) */
		k = pos - before;
		if (cp == ' ') {
			u8[0] = ' ';
			k = 1;
		} else
			memcpy(u8, s + before, k);
		append(part->text, sizeof(part->text), &tl, u8, k);
	}

	if (coding == SMS_GSM7) {
		/* 9.2.3.16: TP-UDL counts septets, the header's included; the
		 * text starts on the septet boundary after it (fill bits). */
		start = (udlen * 8 + 6) / 7;
		pack7(ud, start * 7, sept, ns);
		udl = start + ns;
		udlen = (udl * 7 + 7) / 8;
	} else
		udl = udlen;
	tpdu[t++] = (uint8_t)udl;
	memcpy(tpdu + t, ud, udlen);
	t += udlen;

	part->hex[0] = part->hex[1] = '0';	/* SMSC: the SIM's */
	for (size_t i = 0; i < t; i++) {
		part->hex[2 + 2 * i] = hexd[tpdu[i] >> 4];
		part->hex[3 + 2 * i] = hexd[tpdu[i] & 0x0f];
	}
	part->hex[2 + 2 * t] = '\0';
	part->tpdu_len = (int)t;
	part->seq = seq;
	part->total = total;
}

/* number as it may appear in a message: printable ASCII, '?' for others. */
static void
shown(const char *number, char *buf, size_t len)
{
	size_t i;

	for (i = 0; number[i] != '\0' && i + 1 < len; i++)
		buf[i] = number[i] > 0x20 && number[i] < 0x7f ? number[i] : '?';
	buf[i] = '\0';
}

int
sms_encode_submit(const char *number, const char *text, int ref,
    int max_parts, int srr, int vp_minutes, struct sms_part *parts,
    char *err, size_t errlen)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t ends[SMS_MAX_PARTS], n, k, max, bad;
	enum sms_coding coding;
	char num[24];

	if (number == NULL || !sms_number_ok(number)) {
		shown(number ? number : "", num, sizeof(num));
		return fail(err, errlen, "number '%s' is not '+' and 1-15 "
		    "digits, the first not 0", num);
	}
	if (text == NULL || text[0] == '\0')
		return fail(err, errlen, "the text is empty");
	n = strlen(text);
	for (bad = 0; bad < n; bad += k)
		if ((k = ingest_utf8_seq(s + bad, n - bad)) == 0)
			return fail(err, errlen, "the text is not valid UTF-8 "
			    "(byte %zu)", bad);
	if (ref < 0 || ref > 255)
		return fail(err, errlen, "concatenation reference %d is not "
		    "0-255", ref);
	if (max_parts < 1)
		return fail(err, errlen, "max_parts %d is less than 1",
		    max_parts);
	if (vp_minutes < 0)
		return fail(err, errlen, "validity period %d minutes is "
		    "negative", vp_minutes);
	max = max_parts > SMS_MAX_PARTS ? SMS_MAX_PARTS : (size_t)max_parts;

	coding = sms_coding_for(text);
	k = plan(s, n, coding, ends, max);
	if (k > max)
		return fail(err, errlen, "the text needs %zu parts in %s, more "
		    "than the %zu allowed", k, coding == SMS_UCS2 ? "UCS2" :
		    "GSM 7-bit", max);
	for (size_t i = 0; i < k; i++)
		encode_part(number, s + (i ? ends[i - 1] : 0),
		    ends[i] - (i ? ends[i - 1] : 0), coding, ref, (int)i + 1,
		    (int)k, srr, vp_minutes, &parts[i]);
	return (int)k;
}

/* ---- TP-Status (9.2.3.15) ----------------------------------------------- */

/* 1 for a value 9.2.3.15 reserves (SC-specific values are not). */
static int
status_reserved(int st)
{
	return st < 0 || st > 0x7f || (st >= 0x03 && st <= 0x0f) ||
	    (st >= 0x26 && st <= 0x2f) || (st >= 0x4a && st <= 0x4f) ||
	    (st >= 0x66 && st <= 0x6f);
}

/*
 * Bits 6-5 give the class: 00 completed, 01 temporary error with the SC
 * still trying, 10 permanent error, 11 temporary error and the SC no
 * longer trying.  A reserved value (and anything above 0x7F) is read as
 * "service rejected", 0x63, as 9.2.3.15 asks of a receiver: the SC gave
 * up, which is also the safe reading (never a false delivery).
 */
enum sms_status_class
sms_status_classify(int st)
{
	if (status_reserved(st))
		return SMS_ST_GAVE_UP;
	switch (st & 0x60) {
	case 0x00:
		return SMS_ST_DELIVERED;
	case 0x20:
		return SMS_ST_TRYING;
	case 0x40:
		return SMS_ST_FAILED;
	default:
		return SMS_ST_GAVE_UP;
	}
}

const char *
sms_status_text(int st)
{
	/* 0x60-0x65 are the errors of 0x20-0x25; the SC no longer tries */
	static const char *const gave_up[] = {
		"congestion (no longer trying)", "SME busy (no longer trying)",
		"no response from SME (no longer trying)",
		"service rejected (no longer trying)",
		"quality of service not available (no longer trying)",
		"error in SME (no longer trying)",
	};
	static const char *const trying[] = {
		"congestion (still trying)", "SME busy (still trying)",
		"no response from SME (still trying)",
		"service rejected (still trying)",
		"quality of service not available (still trying)",
		"error in SME (still trying)",
	};
	static const char *const permanent[] = {
		"remote procedure error", "incompatible destination",
		"connection rejected by SME", "not obtainable",
		"quality of service not available", "no interworking available",
		"validity period expired", "deleted by originating SME",
		"deleted by SC administration", "message does not exist",
	};

	if (status_reserved(st))
		return "reserved value (taken as service rejected)";
	switch (st) {
	case 0x00:
		return "received by the SME";
	case 0x01:
		return "forwarded to the SME, delivery not confirmed";
	case 0x02:
		return "replaced by the SC";
	default:
		break;
	}
	if (st >= 0x10 && st <= 0x1f)
		return "SC-specific (completed)";
	if (st >= 0x20 && st <= 0x25)
		return trying[st - 0x20];
	if (st >= 0x30 && st <= 0x3f)
		return "SC-specific temporary error (still trying)";
	if (st >= 0x40 && st <= 0x49)
		return permanent[st - 0x40];
	if (st >= 0x50 && st <= 0x5f)
		return "SC-specific permanent error";
	if (st >= 0x60 && st <= 0x65)
		return gave_up[st - 0x60];
	return "SC-specific temporary error (no longer trying)";	/* 70-7F */
}

/* ---- the decoder: reading, and writing text ----------------------------- */

/* A checked reader over the PDU's octets. */
struct rd {
	const uint8_t	*b;
	size_t		 n;	/* octets in b */
	size_t		 pos;	/* the next to read */
	char		*err;
	size_t		 errlen;
};

/* Fail unless k more octets are there for what. */
static int
rd_need(struct rd *r, size_t k, const char *what)
{
	if (r->n - r->pos >= k)
		return 0;
	return fail(r->err, r->errlen, "truncated at octet %zu: %s needs %zu "
	    "octet%s from octet %zu", r->n, what, k, k == 1 ? "" : "s",
	    r->pos);
}

/* One octet for what, in *v. */
static int
rd_u8(struct rd *r, const char *what, unsigned *v)
{
	if (rd_need(r, 1, what) == -1)
		return -1;
	*v = r->b[r->pos++];
	return 0;
}

/* Text being written into a fixed buffer (cap bytes, NUL included). */
struct out {
	char	*p;
	size_t	 cap;
	size_t	 len;
	int	 full;	/* a character did not fit: nothing more is written */
};

static void
out_init(struct out *o, char *p, size_t cap)
{
	o->p = p;
	o->cap = cap;
	o->len = 0;
	o->full = 0;
	p[0] = '\0';
}

/* Append cp as UTF-8: controls but LF as a space, a surrogate or a value
 * beyond Unicode as U+FFFD.  Whole characters only. */
static void
out_cp(struct out *o, uint32_t cp)
{
	unsigned char u[4];
	size_t k;

	if (is_control(cp))
		cp = ' ';
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		cp = 0xfffd;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		k = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		k = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		k = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | cp >> 18);
		u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		k = 4;
	}
	if (o->full || o->len + k >= o->cap) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, u, k);
	o->len += k;
	o->p[o->len] = '\0';
}

/* The septet at bit offset bit of b (which holds it whole). */
static uint8_t
septet_at(const uint8_t *b, size_t bit)
{
	unsigned v = b[bit / 8] >> (bit % 8);

	if (bit % 8 > 1)
		v |= (unsigned)b[bit / 8 + 1] << (8 - bit % 8);
	return (uint8_t)(v & 0x7f);
}

/*
 * n septets of GSM 7-bit text from bit offset bit of b, as text.  After
 * the escape, a code the extension table does not have is read as the
 * default alphabet's character (23.038 6.2.1.1); a second escape (a
 * further table, not defined) and a final escape are a space.
 */
static void
gsm7_text(const uint8_t *b, size_t bit, size_t n, struct out *o)
{
	size_t i, j;
	uint8_t c;

	for (i = 0; i < n; i++) {
		c = septet_at(b, bit + 7 * i);
		if (c != ESC) {
			out_cp(o, gsm7_base[c]);
			continue;
		}
		if (++i == n) {
			out_cp(o, ' ');
			break;
		}
		c = septet_at(b, bit + 7 * i);
		if (c == ESC) {
			out_cp(o, ' ');
			continue;
		}
		for (j = 0; j < sizeof(gsm7_ext) / sizeof(gsm7_ext[0]); j++)
			if (gsm7_ext[j].septet == c)
				break;
		out_cp(o, j < sizeof(gsm7_ext) / sizeof(gsm7_ext[0]) ?
		    gsm7_ext[j].cp : gsm7_base[c]);
	}
}

/* UTF-16BE text (UCS2, 23.038 6.2.3, read as UTF-16): n octets of b.  An
 * unpaired surrogate, or an odd last octet, is U+FFFD. */
static void
ucs2_text(const uint8_t *b, size_t n, struct out *o)
{
	size_t i;
	uint32_t u, v;

	for (i = 0; i + 1 < n; i += 2) {
		u = (uint32_t)b[i] << 8 | b[i + 1];
		if (u >= 0xd800 && u <= 0xdbff && i + 3 < n) {
			v = (uint32_t)b[i + 2] << 8 | b[i + 3];
			if (v >= 0xdc00 && v <= 0xdfff) {
				out_cp(o, 0x10000 + ((u - 0xd800) << 10) +
				    (v - 0xdc00));
				i += 2;
				continue;
			}
		}
		out_cp(o, u);	/* a lone surrogate becomes U+FFFD */
	}
	if (i < n)
		out_cp(o, 0xfffd);
}

/* 8-bit data (23.038 4) has no character set: read as UTF-8 where it is,
 * each other byte as U+FFFD. */
static void
octet_text(const uint8_t *b, size_t n, struct out *o)
{
	size_t pos = 0, k;

	while (pos < n) {
		k = ingest_utf8_seq(b + pos, n - pos);
		if (k == 0) {
			out_cp(o, 0xfffd);
			pos++;
		} else {
			out_cp(o, utf8_cp(b + pos, k));
			pos += k;
		}
	}
}

/* ---- the decoder: fields ------------------------------------------------ */

/* Semi-octets (9.1.2.3): the digits, then *, #, a, b, c; F is filler. */
static void
semi_octets(const uint8_t *b, size_t digits, struct out *o)
{
	static const char sym[] = "0123456789*#abc";
	unsigned d;

	for (size_t i = 0; i < digits; i++) {
		d = i % 2 ? b[i / 2] >> 4 : b[i / 2] & 0x0f;
		if (d != 0x0f)
			out_cp(o, (uint8_t)sym[d]);
	}
}

/*
 * An address (9.1.2.5): its length in useful semi-octets (at most 20),
 * the type of address, the value.  A type of number 101 is alphanumeric:
 * the value is then GSM 7-bit text, length x 4 / 7 septets (9.1.2.5 and
 * 23.038 6.2.1).  International numbers (type of number 001) get a "+".
 */
static int
rd_address(struct rd *r, const char *what, char *buf, size_t len,
    int *intl)
{
	unsigned digits, type, ton;
	size_t at = r->pos, octets;
	struct out o;

	if (rd_u8(r, what, &digits) == -1 || rd_u8(r, what, &type) == -1)
		return -1;
	if (digits > 20)
		return fail(r->err, r->errlen, "%s at octet %zu: length %u "
		    "(more than 20 digits)", what, at, digits);
	octets = (digits + 1) / 2;
	if (rd_need(r, octets, what) == -1)
		return -1;
	ton = type >> 4 & 0x07;
	out_init(&o, buf, len);
	if (ton == 5)
		gsm7_text(r->b + r->pos, 0, digits * 4 / 7, &o);
	else {
		if (ton == 1)
			out_cp(&o, '+');
		semi_octets(r->b + r->pos, digits, &o);
	}
	*intl = ton == 1;
	r->pos += octets;
	return 0;
}

/*
 * The SMSC address in front of the TPDU (27.005 3.1, coded as 24.011
 * 8.2.5.2): a length in octets (0: none), the type, BCD digits.
 */
static int
rd_smsc(struct rd *r, char *buf, size_t len)
{
	unsigned octets, type;
	struct out o;

	out_init(&o, buf, len);
	if (rd_u8(r, "the SMSC length", &octets) == -1)
		return -1;
	if (octets == 0)
		return 0;
	if (octets > 1 + (SMS_NUMBER_MAX - 2) / 2)
		return fail(r->err, r->errlen, "SMSC address at octet 0: "
		    "length %u (more than %d octets)", octets,
		    1 + (SMS_NUMBER_MAX - 2) / 2);
	if (rd_need(r, octets, "the SMSC address") == -1)
		return -1;
	type = r->b[r->pos];
	if ((type >> 4 & 0x07) == 1)
		out_cp(&o, '+');
	semi_octets(r->b + r->pos + 1, 2 * (octets - 1), &o);
	r->pos += octets;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian, y >= 1970). */
static int64_t
days_since_epoch(int y, int m, int d)
{
	static const int before[12] = { 0, 31, 59, 90, 120, 151, 181, 212,
	    243, 273, 304, 334 };
	int64_t days = (int64_t)(y - 1970) * 365 +
	    ((y - 1969) / 4 - (y - 1901) / 100 + (y - 1601) / 400);
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return days + before[m - 1] + (m > 2 && leap) + d - 1;
}

/*
 * A time stamp (TP-SCTS 9.2.3.11, also TP-DT 9.2.3.13): year, month, day,
 * hour, minute, second, time zone, each two BCD semi-octets, the low
 * nibble first.  The zone is in quarters of an hour, its sign bit 3 of
 * the octet (the first semi-octet's top bit).  The year has two digits:
 * 90-99 are taken as 1990-1999 (SMS is older than 2000), the rest as
 * 2000-2089.
 */
static int
rd_time(struct rd *r, const char *what, int64_t *ms)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
	    31, 30, 31 };
	const uint8_t *b;
	int v[6], quarters, y;
	size_t at = r->pos;

	if (rd_need(r, 7, what) == -1)
		return -1;
	b = r->b + r->pos;
	for (int i = 0; i < 6; i++) {
		if ((b[i] & 0x0f) > 9 || b[i] >> 4 > 9)
			return fail(r->err, r->errlen, "%s at octet %zu: octet "
			    "%02X is not two BCD digits", what, at + (size_t)i,
			    b[i]);
		v[i] = (b[i] & 0x0f) * 10 + (b[i] >> 4);
	}
	if (b[6] >> 4 > 9)
		return fail(r->err, r->errlen, "%s at octet %zu: time zone "
		    "%02X is not BCD", what, at + 6, b[6]);
	y = v[0] >= 90 ? 1900 + v[0] : 2000 + v[0];
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > mdays[v[1] - 1] ||
	    (v[1] == 2 && v[2] == 29 && y % 4 != 0) || v[3] > 23 ||
	    v[4] > 59 || v[5] > 59)
		return fail(r->err, r->errlen, "%s at octet %zu: no such time "
		    "%04d-%02d-%02d %02d:%02d:%02d", what, at, y, v[1], v[2],
		    v[3], v[4], v[5]);
	quarters = (b[6] & 0x07) * 10 + (b[6] >> 4);
	if (b[6] & 0x08)
		quarters = -quarters;
	*ms = ((days_since_epoch(y, v[1], v[2]) * 86400 + v[3] * 3600 +
	    v[4] * 60 + v[5]) - (int64_t)quarters * 15 * 60) * 1000;
	r->pos += 7;
	return 0;
}

/*
 * The alphabet a TP-DCS (23.038 4) says, or -1 for compressed text.
 *   00xx xxxx, 01xx xxxx (general; marked for deletion): bit 5 compressed,
 *     bits 3-2: 00 GSM 7-bit, 01 8-bit, 10 UCS2, 11 reserved
 *   1000-1011: reserved groups
 *   1100, 1101: message waiting, GSM 7-bit; 1110: message waiting, UCS2
 *   1111: bit 2: 0 GSM 7-bit, 1 8-bit
 * "Any reserved codings shall be assumed to be the GSM 7 bit default
 * alphabet" (23.038 4).
 */
static int
dcs_coding(unsigned dcs, enum sms_coding *coding)
{
	*coding = SMS_GSM7;
	switch (dcs >> 4) {
	case 0x0: case 0x1: case 0x2: case 0x3:
	case 0x4: case 0x5: case 0x6: case 0x7:
		if (dcs & 0x20)
			return -1;
		if ((dcs & 0x0c) == 0x04)
			*coding = SMS_8BIT;
		else if ((dcs & 0x0c) == 0x08)
			*coding = SMS_UCS2;
		return 0;
	case 0xe:
		*coding = SMS_UCS2;
		return 0;
	case 0xf:
		if (dcs & 0x04)
			*coding = SMS_8BIT;
		return 0;
	default:
		return 0;
	}
}

/*
 * The user data header (9.2.3.24): information elements IEI, length,
 * data.  Only concatenation matters here: IEI 00 (8-bit reference,
 * 9.2.3.24.1) and 08 (16-bit, 9.2.3.24.8); one with a sequence number 0
 * or above the total is to be ignored, and so are other elements.  h[0]
 * is the UDHL, h holds 1 + UDHL octets starting at octet `at'.
 */
static int
udh_parse(struct rd *r, const uint8_t *h, size_t at, struct sms_decoded *d)
{
	size_t len = (size_t)h[0] + 1, i = 1, iel;
	unsigned iei;

	while (i < len) {
		if (i + 2 > len)
			return fail(r->err, r->errlen, "user data header at "
			    "octet %zu: element at octet %zu is cut", at,
			    at + i);
		iei = h[i];
		iel = h[i + 1];
		if (i + 2 + iel > len)
			return fail(r->err, r->errlen, "user data header at "
			    "octet %zu: element %02X at octet %zu overruns it "
			    "(%zu octets, %zu left)", at, iei, at + i, iel,
			    len - i - 2);
		if (iei == 0x00 && iel == 3 && h[i + 4] != 0 &&
		    h[i + 4] <= h[i + 3]) {
			d->concat_ref = h[i + 2];
			d->concat_total = h[i + 3];
			d->concat_seq = h[i + 4];
		} else if (iei == 0x08 && iel == 4 && h[i + 5] != 0 &&
		    h[i + 5] <= h[i + 4]) {
			d->concat_ref = h[i + 2] << 8 | h[i + 3];
			d->concat_total = h[i + 4];
			d->concat_seq = h[i + 5];
		}
		i += 2 + iel;
	}
	return 0;
}

/*
 * TP-UDL and TP-UD (9.2.3.16, 9.2.3.24): UDL counts septets (GSM 7-bit:
 * the header and its fill bits included) or octets.  With TP-UDHI the
 * data opens with the header; 7-bit text then starts on the first septet
 * boundary after it.  Octets after the user data are ignored.
 */
static int
rd_user_data(struct rd *r, int udhi, struct sms_decoded *d)
{
	unsigned udl;
	size_t at, octets, hdr = 0, hdr_septets = 0;
	const uint8_t *ud;
	struct out o;

	if (rd_u8(r, "TP-UDL", &udl) == -1)
		return -1;
	at = r->pos;
	if (d->coding == SMS_GSM7) {
		if (udl > GSM7_SINGLE)
			return fail(r->err, r->errlen, "TP-UDL at octet %zu: "
			    "%u septets (at most %d)", at - 1, udl,
			    GSM7_SINGLE);
		octets = (udl * 7 + 7) / 8;
	} else {
		if (udl > UD_MAX)
			return fail(r->err, r->errlen, "TP-UDL at octet %zu: "
			    "%u octets (at most %d)", at - 1, udl, UD_MAX);
		octets = udl;
	}
	if (rd_need(r, octets, "TP-UD") == -1)
		return -1;
	ud = r->b + at;
	if (udhi) {
		if (octets == 0)
			return fail(r->err, r->errlen, "TP-UDHI is set but "
			    "TP-UD at octet %zu is empty", at);
		hdr = (size_t)ud[0] + 1;
		hdr_septets = (hdr * 8 + 6) / 7;
		if (hdr > octets || (d->coding == SMS_GSM7 && hdr_septets > udl))
			return fail(r->err, r->errlen, "user data header at "
			    "octet %zu: %zu octets, more than the user data's "
			    "%u %s", at, hdr, udl, d->coding == SMS_GSM7 ?
			    "septets" : "octets");
		if (udh_parse(r, ud, at, d) == -1)
			return -1;
	}
	out_init(&o, d->text, sizeof(d->text));
	if (d->coding == SMS_GSM7)
		gsm7_text(ud, hdr_septets * 7, udl - hdr_septets, &o);
	else if (d->coding == SMS_UCS2)
		ucs2_text(ud + hdr, octets - hdr, &o);
	else
		octet_text(ud + hdr, octets - hdr, &o);
	r->pos += octets;
	return 0;
}

/* TP-PID and TP-DCS, then d->coding. */
static int
rd_pid_dcs(struct rd *r, struct sms_decoded *d)
{
	unsigned pid, dcs;

	if (rd_u8(r, "TP-PID", &pid) == -1 || rd_u8(r, "TP-DCS", &dcs) == -1)
		return -1;
	if (dcs_coding(dcs, &d->coding) == -1)
		return fail(r->err, r->errlen, "TP-DCS %02X at octet %zu: "
		    "compressed text is not supported", dcs, r->pos - 1);
	return 0;
}

/* SMS-DELIVER (9.2.2.1): FO, OA, PID, DCS, SCTS, UDL, UD. */
static int
rd_deliver(struct rd *r, unsigned fo, struct sms_decoded *d)
{
	d->type = SMS_PDU_DELIVER;
	if (rd_address(r, "TP-OA", d->number, sizeof(d->number),
	    &d->number_international) == -1 || rd_pid_dcs(r, d) == -1 ||
	    rd_time(r, "TP-SCTS", &d->scts) == -1)
		return -1;
	return rd_user_data(r, fo & FO_UDHI, d);
}

/* SMS-SUBMIT (9.2.2.2): FO, MR, DA, PID, DCS, VP (by TP-VPF), UDL, UD. */
static int
rd_submit(struct rd *r, unsigned fo, struct sms_decoded *d)
{
	static const size_t vp_octets[4] = { 0, 7, 1, 7 };	/* 9.2.3.3 */
	unsigned mr;

	d->type = SMS_PDU_SUBMIT;
	d->srr = (fo & FO_SRR) != 0;
	if (rd_u8(r, "TP-MR", &mr) == -1 ||
	    rd_address(r, "TP-DA", d->number, sizeof(d->number),
	    &d->number_international) == -1 || rd_pid_dcs(r, d) == -1 ||
	    rd_need(r, vp_octets[fo >> 3 & 3], "TP-VP") == -1)
		return -1;
	r->pos += vp_octets[fo >> 3 & 3];
	return rd_user_data(r, fo & FO_UDHI, d);
}

/* SMS-STATUS-REPORT (9.2.2.3): FO, MR, RA, SCTS, DT, ST; the optional
 * TP-PI and what it announces are not needed and not read. */
static int
rd_status_report(struct rd *r, struct sms_decoded *d)
{
	unsigned mr, st;

	d->type = SMS_PDU_STATUS_REPORT;
	if (rd_u8(r, "TP-MR", &mr) == -1 ||
	    rd_address(r, "TP-RA", d->number, sizeof(d->number),
	    &d->number_international) == -1 ||
	    rd_time(r, "TP-SCTS", &d->scts) == -1 ||
	    rd_time(r, "TP-DT", &d->discharge) == -1 ||
	    rd_u8(r, "TP-ST", &st) == -1)
		return -1;
	d->mr = (int)mr;
	d->status = (int)st;
	return 0;
}

/* The value of a hex digit, or -1. */
static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
sms_decode(const char *hex, struct sms_decoded *out, char *err,
    size_t errlen)
{
	uint8_t b[PDU_MAX];
	size_t n, i;
	unsigned fo;
	struct rd r;
	int hi, lo;

	memset(out, 0, sizeof(*out));
	if (hex == NULL)
		return fail(err, errlen, "no PDU");
	/* Trailing blanks and line ends, as a modem's line may have them. */
	n = strlen(hex);
	while (n > 0 && (hex[n - 1] == ' ' || hex[n - 1] == '\t' ||
	    hex[n - 1] == '\r' || hex[n - 1] == '\n'))
		n--;
	if (n == 0)
		return fail(err, errlen, "empty PDU");
	for (i = 0; i < n && i / 2 < PDU_MAX; i++)
		if (hexval((unsigned char)hex[i]) == -1)
			return fail(err, errlen, "bad hex at %zu", i);
	if (n / 2 > PDU_MAX)
		return fail(err, errlen, "PDU too long: more than %d octets",
		    PDU_MAX);
	if (n % 2 != 0)
		return fail(err, errlen, "odd number of hex digits (%zu)", n);
	for (i = 0; i < n / 2; i++) {
		hi = hexval((unsigned char)hex[2 * i]);
		lo = hexval((unsigned char)hex[2 * i + 1]);
		b[i] = (uint8_t)(hi << 4 | lo);
	}

	r.b = b;
	r.n = n / 2;
	r.pos = 0;
	r.err = err;
	r.errlen = errlen;
	if (rd_smsc(&r, out->smsc, sizeof(out->smsc)) == -1 ||
	    rd_u8(&r, "the first octet", &fo) == -1)
		goto bad;
	/* TP-MTI (9.2.3.1), as the SC sends it to us; 1 (SMS-SUBMIT-REPORT
	 * from the SC) is read as an SMS-SUBMIT, the way we send it. */
	switch (fo & 0x03) {
	case 0:
		if (rd_deliver(&r, fo, out) == -1)
			goto bad;
		break;
	case 1:
		if (rd_submit(&r, fo, out) == -1)
			goto bad;
		break;
	case 2:
		if (rd_status_report(&r, out) == -1)
			goto bad;
		break;
	default:
		fail(err, errlen, "unsupported TP-MTI 3 (reserved) at octet %zu",
		    r.pos - 1);
		goto bad;
	}
	return 0;
bad:
	memset(out, 0, sizeof(*out));
	return -1;
}
