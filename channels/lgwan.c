/*
 * lgwan.c - the closed-network mail channel driver (type = lgwan).
 *
 * Closed-network (LGWAN-style) mail is the SMTP engine of smtp.c
 * (channels/smtp.h) under a strict profile:
 *   - one fixed smarthost: the host and port of this [channel] section;
 *   - only addresses in `domains` (a listed domain or a subdomain of one,
 *     case-insensitive); any other address is reported permfail, with the
 *     reason, before the session starts, and never reaches the network;
 *   - text/plain only: no attachments, no multipart;
 *   - charset = iso-2022-jp: plain ISO-2022-JP (RFC 1468: ASCII and JIS X
 *     0208, ESC ( B and ESC $ B only), 7bit, Subject and names as
 *     =?ISO-2022-JP?B?...?= words; what JIS X 0208 cannot carry is first
 *     normalised (lgwan_normalise(): ① -> (1), ㈱ -> (株), ～ -> 〜, 髙 ->
 *     高, ㌔ -> キロ, half-width katakana -> full width ...), and what is
 *     still left becomes 〓 with a notice at the top of the body: nothing
 *     is dropped silently.  charset = utf-8: UTF-8 and base64, as smtp;
 *   - max_size bounds the whole message as sent, headers included: the
 *     alert's own text is cut at a character boundary, with a notice in
 *     the configured language; the wording around it (the confirmation
 *     block with the code, the alert id, the sender) is never cut.
 *
 * GUARANTEE: a delivery routed to lgwan never goes out through internet
 * SMTP, whatever fails.  By construction: this driver's send() hands its
 * messages only to smtp_session() with this channel's own struct
 * smtp_conf, whose host and port come from this [channel] section and from
 * nothing else; it has no fallback, no second host, no MX lookup, and
 * never hands a message back for another channel.  A failure is reported
 * tempfail or permfail on this channel; the scheduler only ever sends a
 * channel's address (the delivery's `lgwan` column) on channels of type
 * lgwan (relay/sched.c: sched_address()).  tests/integration/18-lgwan.sh
 * proves it with the lgwan smarthost down.
 *
 * Charset conversion is glibc's iconv "ISO-2022-JP", one character at a
 * time: each character is converted on its own and kept only if it came
 * out as ASCII or as ESC $ B + two bytes (JIS X 0208); the shift states
 * are then written here, so every line and every encoded-word starts and
 * ends in ASCII and no other designation (ESC ( J, ESC $ @, the -2 sets)
 * ever appears.
 *
 * State owned: struct lgwan_conf (its struct smtp_conf, whose password is
 * never logged, and an iconv descriptor).
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "channels/channel.h"
#include "channels/mail.h"
#include "channels/smtp.h"
#include "relay/relay.h"

#define GETA		0x3013		/* 〓: what JIS X 0208 cannot carry */

/* One configured channel. */
struct lgwan_conf {
	struct smtp_conf	*smtp;		/* the smarthost and from */
	char			*channel;
	char			*domains;	/* as configured: "lg.jp, ..." */
	int			 jis;		/* charset = iso-2022-jp */
	int			 en;		/* language = en */
	size_t			 max_size;
	iconv_t			 cd;		/* UTF-8 -> ISO-2022-JP */
	struct mail_charset	 cs;		/* mail.c's hook; arg: this */
};

/* Append code point cp as UTF-8. */
static void
sb_cp(struct mail_buf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	mail_buf_add(b, u, n);
}

/* The code point of the k-byte valid UTF-8 sequence at s. */
static uint32_t
utf8_cp(const unsigned char *s, size_t k)
{
	switch (k) {
	case 1:
		return s[0];
	case 2:
		return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	case 3:
		return (uint32_t)(s[0] & 0x0f) << 12 |
		    (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	default:
		return (uint32_t)(s[0] & 0x07) << 18 |
		    (uint32_t)(s[1] & 0x3f) << 12 |
		    (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
	}
}

/* ---- normalisation: what JIS X 0208 cannot carry ------------------------ */

/*
 * Characters with a JIS X 0208 equivalent or spelling, sorted by code
 * point.  CP932 (Windows) and Mac writers produce them; the targets are
 * all JIS X 0208 (tests/unit/test_lgwan.c checks each one).  Circled and
 * parenthesised numbers and Roman numerals are ranges (norm_range()).
 */
static const struct norm {
	uint32_t	 cp;
	const char	*to;
} norms[] = {
	{ 0x00A0, " " },		/* no-break space */
	{ 0x00A5, "￥" },		/* ¥: JIS X 0201 only; the 0208 yen */
	{ 0x00A6, "｜" },		/* ¦ */
	{ 0x2014, "―" },		/* — em dash: JIS 0x213D is U+2015 */
	{ 0x2022, "・" },		/* • */
	{ 0x203E, "￣" },		/* ‾: JIS X 0201 only */
	{ 0x2116, "No." },		/* № */
	{ 0x2121, "TEL" },		/* ℡ */
	{ 0x2211, "Σ" },		/* ∑ (NEC row 13) */
	{ 0x2225, "‖" },		/* ∥ (CP932's parallel) */
	{ 0x2252, "≒" },		/* (already JIS; kept for clarity) */
	{ 0x301D, "“" },		/* 〝 */
	{ 0x301F, "”" },		/* 〟 */
	{ 0x3231, "(株)" },		/* ㈱ */
	{ 0x3232, "(有)" },		/* ㈲ */
	{ 0x3239, "(代)" },		/* ㈹ */
	{ 0x32A4, "(上)" },		/* ㊤ */
	{ 0x32A5, "(中)" },		/* ㊥ */
	{ 0x32A6, "(下)" },		/* ㊦ */
	{ 0x32A7, "(左)" },		/* ㊧ */
	{ 0x32A8, "(右)" },		/* ㊨ */
	{ 0x32FF, "令和" },		/* ㋿ */
	{ 0x3303, "アール" },		/* ㌃ */
	{ 0x330D, "カロリー" },		/* ㌍ */
	{ 0x3314, "キロ" },		/* ㌔ */
	{ 0x3318, "グラム" },		/* ㌘ */
	{ 0x3322, "センチ" },		/* ㌢ */
	{ 0x3323, "セント" },		/* ㌣ */
	{ 0x3326, "ドル" },		/* ㌦ */
	{ 0x3327, "トン" },		/* ㌧ */
	{ 0x332B, "パーセント" },	/* ㌫ */
	{ 0x3336, "ヘクタール" },	/* ㌶ */
	{ 0x333B, "ページ" },		/* ㌻ */
	{ 0x3349, "ミリ" },		/* ㍉ */
	{ 0x334A, "ミリバール" },	/* ㍊ */
	{ 0x334D, "メートル" },		/* ㍍ */
	{ 0x3351, "リットル" },		/* ㍑ */
	{ 0x3357, "ワット" },		/* ㍗ */
	{ 0x337B, "平成" },		/* ㍻ */
	{ 0x337C, "昭和" },		/* ㍼ */
	{ 0x337D, "大正" },		/* ㍽ */
	{ 0x337E, "明治" },		/* ㍾ */
	{ 0x338E, "mg" },		/* ㎎ */
	{ 0x338F, "kg" },		/* ㎏ */
	{ 0x339C, "mm" },		/* ㎜ */
	{ 0x339D, "cm" },		/* ㎝ */
	{ 0x339E, "km" },		/* ㎞ */
	{ 0x33A1, "m2" },		/* ㎡ */
	{ 0x33C4, "cc" },		/* ㏄ */
	{ 0x33CD, "K.K." },		/* ㏍ */
	/* IBM/NEC extension kanji and variants: the JIS X 0208 form */
	{ 0x51DE, "熙" },
	{ 0x589E, "増" },
	{ 0x5BEC, "寛" },
	{ 0x5FB7, "徳" },		/* 德 */
	{ 0x663B, "昂" },
	{ 0x6801, "柳" },
	{ 0x6852, "桑" },
	{ 0x6FF5, "浜" },
	{ 0x7028, "瀬" },
	{ 0x7E6B, "繋" },
	{ 0x9AD9, "高" },		/* 髙 */
	{ 0x9DD7, "鴎" },
	{ 0xF9DC, "隆" },
	{ 0xFA10, "塚" },
	{ 0xFA11, "崎" },		/* 﨑 */
	{ 0xFA12, "晴" },
	{ 0xFA15, "熙" },
	{ 0xFA16, "猪" },
	{ 0xFA17, "益" },
	{ 0xFA18, "礼" },
	{ 0xFA19, "神" },
	{ 0xFA1A, "祥" },
	{ 0xFA1B, "福" },
	{ 0xFA1C, "靖" },
	{ 0xFA1D, "精" },
	{ 0xFA1E, "羽" },
	{ 0xFA22, "諸" },
	{ 0xFA25, "逸" },
	{ 0xFA26, "都" },
	{ 0xFA2A, "飯" },
	{ 0xFA2B, "飼" },
	{ 0xFA2C, "館" },
	{ 0xFA2D, "鶴" },
	/* CP932's full-width forms where JIS X 0208 has its own */
	{ 0xFF0D, "−" },		/* － -> U+2212, JIS 0x215D */
	{ 0xFF5E, "〜" },		/* ～ -> U+301C, JIS 0x2141 */
	{ 0xFFE0, "¢" },		/* ￠ */
	{ 0xFFE1, "£" },		/* ￡ */
	{ 0xFFE2, "¬" },		/* ￢ */
	{ 0xFFE4, "｜" },		/* ￤ */
	{ 0x20BB7, "吉" },		/* 𠮷 (tsuchi-yoshi) */
};

/* Half-width katakana U+FF61..U+FF9D: the full-width code points. */
static const uint16_t halfwidth[] = {
	0x3002, 0x300C, 0x300D, 0x3001, 0x30FB, 0x30F2, 0x30A1, 0x30A3,
	0x30A5, 0x30A7, 0x30A9, 0x30E3, 0x30E5, 0x30E7, 0x30C3, 0x30FC,
	0x30A2, 0x30A4, 0x30A6, 0x30A8, 0x30AA, 0x30AB, 0x30AD, 0x30AF,
	0x30B1, 0x30B3, 0x30B5, 0x30B7, 0x30B9, 0x30BB, 0x30BD, 0x30BF,
	0x30C1, 0x30C4, 0x30C6, 0x30C8, 0x30CA, 0x30CB, 0x30CC, 0x30CD,
	0x30CE, 0x30CF, 0x30D2, 0x30D5, 0x30D8, 0x30DB, 0x30DE, 0x30DF,
	0x30E0, 0x30E1, 0x30E2, 0x30E4, 0x30E6, 0x30E8, 0x30E9, 0x30EA,
	0x30EB, 0x30EC, 0x30ED, 0x30EF, 0x30F3,
};

static int
norm_cmp(const void *k, const void *e)
{
	uint32_t cp = *(const uint32_t *)k;
	const struct norm *n = e;

	return cp < n->cp ? -1 : cp > n->cp;
}

/* The spelling of a numbered or Roman-numeral character into buf, or 0. */
static int
norm_range(uint32_t cp, char *buf, size_t len)
{
	static const char *roman[] = { "I", "II", "III", "IV", "V", "VI",
	    "VII", "VIII", "IX", "X", "XI", "XII" };
	static const char *lroman[] = { "i", "ii", "iii", "iv", "v", "vi",
	    "vii", "viii", "ix", "x", "xi", "xii" };

	if (cp >= 0x2460 && cp <= 0x2473)		/* ① - ⑳ */
		snprintf(buf, len, "(%u)", (unsigned)(cp - 0x2460 + 1));
	else if (cp >= 0x3251 && cp <= 0x325F)		/* ㉑ - ㉟ */
		snprintf(buf, len, "(%u)", (unsigned)(cp - 0x3251 + 21));
	else if (cp >= 0x32B1 && cp <= 0x32BF)		/* ㊱ - ㊿ */
		snprintf(buf, len, "(%u)", (unsigned)(cp - 0x32B1 + 36));
	else if (cp >= 0x2474 && cp <= 0x2487)		/* ⑴ - ⒇ */
		snprintf(buf, len, "(%u)", (unsigned)(cp - 0x2474 + 1));
	else if (cp >= 0x2488 && cp <= 0x249B)		/* ⒈ - ⒛ */
		snprintf(buf, len, "%u.", (unsigned)(cp - 0x2488 + 1));
	else if (cp >= 0x2160 && cp <= 0x216B)		/* Ⅰ - Ⅻ */
		snprintf(buf, len, "%s", roman[cp - 0x2160]);
	else if (cp >= 0x2170 && cp <= 0x217B)		/* ⅰ - ⅻ */
		snprintf(buf, len, "%s", lroman[cp - 0x2170]);
	else
		return 0;
	return 1;
}

/* Kana base + (semi-)voiced mark (U+3099/U+309A) as one JIS X 0208
 * character, or 0.  ゔ has none in JIS X 0208; ヴ has. */
static uint32_t
compose(uint32_t base, uint32_t mark)
{
	int kata = base >= 0x30A1 && base <= 0x30F6;
	uint32_t h = kata ? base - 0x60 : base;	/* as hiragana */
	int voiced, semi;

	if (kata && base == 0x30A6 && mark == 0x3099)
		return 0x30F4;
	semi = h >= 0x306F && h <= 0x307B && (h - 0x306F) % 3 == 0;
	voiced = (h >= 0x304B && h <= 0x3061 && (h - 0x304B) % 2 == 0) ||
	    h == 0x3064 || h == 0x3066 || h == 0x3068 || semi;
	if (!kata && !(base >= 0x3041 && base <= 0x3096))
		return 0;
	if (mark == 0x3099 && voiced)
		return base + 1;
	if (mark == 0x309A && semi)
		return base + 2;
	return 0;
}

/*
 * The character at s (k bytes of UTF-8) in JIS: 1 and out[0] (ASCII), 2
 * and out[0..1] (JIS X 0208), or 0 (not representable).
 */
static int
jis_char(struct lgwan_conf *lc, const char *s, size_t k, unsigned char out[2])
{
	char in[4], buf[16], *ip = in, *op = buf;
	size_t il = k, ol = sizeof(buf), n;

	if (k == 0 || k > sizeof(in))
		return 0;
	memcpy(in, s, k);
	iconv(lc->cd, NULL, NULL, NULL, NULL);
	if (iconv(lc->cd, &ip, &il, &op, &ol) == (size_t)-1 ||
	    iconv(lc->cd, NULL, NULL, &op, &ol) == (size_t)-1) {
		iconv(lc->cd, NULL, NULL, NULL, NULL);
		return 0;
	}
	n = (size_t)(op - buf);
	if (n == 1 && (unsigned char)buf[0] < 0x80) {
		out[0] = (unsigned char)buf[0];
		return 1;
	}
	if (n == 8 && memcmp(buf, "\033$B", 3) == 0 &&
	    memcmp(buf + 5, "\033(B", 3) == 0) {
		out[0] = (unsigned char)buf[3];
		out[1] = (unsigned char)buf[4];
		return 2;
	}
	return 0;	/* another set (ESC ( J ...): not plain RFC 1468 */
}

/* 1 if code point cp can be written in plain ISO-2022-JP. */
static int
jis_cp(struct lgwan_conf *lc, uint32_t cp)
{
	struct mail_buf b = { 0 };
	unsigned char j[2];
	int r;

	sb_cp(&b, cp);
	r = b.oom ? 0 : jis_char(lc, b.p, b.len, j);
	free(b.p);
	return r != 0;
}

/*
 * s[0..n) (UTF-8; invalid bytes count as unrepresentable) rewritten with
 * characters JIS X 0208 can carry, in an allocated string (NULL when out
 * of memory).  CR LF and CR become LF; other controls but TAB and LF
 * become a space; invisible format characters (BOM, zero-width) go;
 * *replaced is set when a character had to become 〓.
 */
static char *
lgwan_normalise(struct lgwan_conf *lc, const char *s, size_t n,
    int *replaced)
{
	const unsigned char *p = (const unsigned char *)s;
	struct mail_buf b = { 0 };
	const struct norm *nm;
	uint32_t cp, last = 0, c;
	size_t i = 0, k, lastpos = 0;
	char tmp[16];

	mail_buf_add(&b, "", 0);
	while (i < n) {
		k = ingest_utf8_seq(p + i, n - i);
		if (k == 0) {
			sb_cp(&b, GETA);
			*replaced = 1;
			last = 0;
			i++;
			continue;
		}
		cp = utf8_cp(p + i, k);
		i += k;
		if (cp == '\r') {
			if (i < n && p[i] == '\n')
				i++;
			cp = '\n';
		}
		if (cp >= 0xFF61 && cp <= 0xFF9D)
			cp = halfwidth[cp - 0xFF61];
		else if (cp == 0xFF9E)
			cp = 0x3099;
		else if (cp == 0xFF9F)
			cp = 0x309A;
		if (cp == 0x3099 || cp == 0x309A) {
			/* a mark joins the kana before it where JIS has the
			 * pair as one character; else the spacing mark */
			if (last != 0 && (c = compose(last, cp)) != 0) {
				b.len = lastpos;
				sb_cp(&b, c);
				last = 0;
				continue;
			}
			cp = cp == 0x3099 ? 0x309B : 0x309C;
		}
		lastpos = b.len;
		last = cp;
		if (cp == '\n' || cp == '\t')
			sb_cp(&b, cp);
		else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0))
			sb_cp(&b, ' ');
		else if (cp == 0xFEFF || (cp >= 0x200B && cp <= 0x200D) ||
		    cp == 0x2060) {
			last = 0;	/* nothing to read: dropped */
		} else if (cp >= 0x2000 && cp <= 0x200A)
			sb_cp(&b, ' ');
		else if ((nm = bsearch(&cp, norms, sizeof(norms) /
		    sizeof(norms[0]), sizeof(norms[0]), norm_cmp)) != NULL)
			mail_buf_str(&b, nm->to);
		else if (norm_range(cp, tmp, sizeof(tmp)))
			mail_buf_str(&b, tmp);
		else if (jis_cp(lc, cp))
			sb_cp(&b, cp);
		else {
			sb_cp(&b, GETA);
			*replaced = 1;
		}
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* mail.c's hook: UTF-8 to plain ISO-2022-JP (struct mail_charset). */
static int
jis_encode(const struct mail_charset *cs, const char *in, size_t n,
    size_t maxline, char **out, size_t *outlen)
{
	static const unsigned char geta[2] = { 0x22, 0x2e };
	struct lgwan_conf *lc = cs->arg;
	struct mail_buf b = { 0 };
	const unsigned char *p;
	unsigned char j[2];
	size_t i = 0, k, col = 0, need, len;
	int jis = 0, r, replaced = 0;
	char *norm;

	*out = NULL;
	*outlen = 0;
	if ((norm = lgwan_normalise(lc, in, n, &replaced)) == NULL)
		return -1;
	p = (const unsigned char *)norm;
	len = strlen(norm);
	mail_buf_add(&b, "", 0);
	while (i < len) {
		if (p[i] == '\n') {
			if (jis)
				mail_buf_add(&b, "\033(B", 3);
			mail_buf_add(&b, "\r\n", 2);
			jis = 0;
			col = 0;
			i++;
			continue;
		}
		k = ingest_utf8_seq(p + i, len - i);
		if (k == 0)
			k = 1;		/* not after lgwan_normalise() */
		r = jis_char(lc, norm + i, k, j);
		if (r == 0 || (r == 1 && ((j[0] < 0x20 && j[0] != '\t') ||
		    j[0] == 0x7f))) {
			r = 2;		/* not after lgwan_normalise() */
			memcpy(j, geta, 2);
		}
		/* this character, the shift into its set, and the way back
		 * to ASCII at the end of the line must fit */
		need = r == 1 ? 1 + (jis ? 3 : 0) : 2 + (jis ? 0 : 3);
		if (maxline != (size_t)-1 && col > 0 &&
		    col + need + (r == 2 ? 3 : 0) > maxline) {
			if (jis)
				mail_buf_add(&b, "\033(B", 3);
			mail_buf_add(&b, "\r\n", 2);
			jis = 0;
			col = 0;
		}
		if (r == 1) {
			if (jis) {
				mail_buf_add(&b, "\033(B", 3);
				col += 3;
				jis = 0;
			}
			mail_buf_add(&b, (const char *)j, 1);
			col++;
		} else {
			if (!jis) {
				mail_buf_add(&b, "\033$B", 3);
				col += 3;
				jis = 1;
			}
			mail_buf_add(&b, (const char *)j, 2);
			col += 2;
		}
		i += k;
	}
	if (jis)
		mail_buf_add(&b, "\033(B", 3);
	free(norm);
	if (b.oom) {
		free(b.p);
		return -1;
	}
	*out = b.p;
	*outlen = b.len;
	return 0;
}

/* ---- the profile --------------------------------------------------------- */

/* 1 if addr's domain is one of list (comma-separated) or a subdomain of
 * one, ignoring case; ".lg.jp" in the list means lg.jp too. */
static int
domain_ok(const char *list, const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL, *p = list, *q;
	const char *d;
	size_t dl, len;

	if (at == NULL || at[1] == '\0' || list == NULL)
		return 0;
	d = at + 1;
	dl = strlen(d);
	while (*p != '\0') {
		p += strspn(p, " \t,");
		q = p + strcspn(p, ",");
		len = (size_t)(q - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > 0 && *p == '.') {
			p++;
			len--;
		}
		if (len > 0 && ((dl == len && strncasecmp(d, p, len) == 0) ||
		    (dl > len && d[dl - len - 1] == '.' &&
		    strncasecmp(d + dl - len, p, len) == 0)))
			return 1;
		p = q;
	}
	return 0;
}

/* The reason an address is refused, into err; 0 if it is allowed. */
static int
refuse_address(const struct lgwan_conf *lc, const char *addr, char *err,
    size_t errlen)
{
	if (domain_ok(lc->domains, addr))
		return 0;
	snprintf(err, errlen, "lgwan: address %s is outside the closed "
	    "network (domains: %s)", addr ? addr : "(none)", lc->domains);
	return -1;
}

static void lgwan_release(void *state);

static int
lgwan_configure(const struct conf_channel *ch, const struct conf *relay,
    void **state, char *err, size_t errlen)
{
	struct lgwan_conf *lc;
	const char *v;
	int64_t size;

	*state = NULL;
	if ((lc = calloc(1, sizeof(*lc))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	lc->cd = (iconv_t)-1;
	if (smtp_conf_new(ch, relay, "25", &lc->smtp, err, errlen) == -1)
		goto fail;
	if ((v = conf_channel_get(ch, "domains")) == NULL ||
	    v[strspn(v, " \t,")] == '\0') {
		snprintf(err, errlen, "channel %s: domains is missing: an "
		    "lgwan channel delivers only to listed domains", ch->name);
		goto fail;
	}
	lc->domains = strdup(v);
	lc->channel = strdup(ch->name);
	v = conf_channel_get(ch, "charset");
	if (v == NULL || strcasecmp(v, "iso-2022-jp") == 0)
		lc->jis = 1;
	else if (strcasecmp(v, "utf-8") != 0) {
		snprintf(err, errlen, "channel %s: charset %s: iso-2022-jp or "
		    "utf-8", ch->name, v);
		goto fail;
	}
	size = 64 * 1024;
	if ((v = conf_channel_get(ch, "max_size")) != NULL &&
	    (conf_parse_size(v, &size) == -1 || size < 1024)) {
		snprintf(err, errlen, "channel %s: max_size: a size of at "
		    "least 1024 bytes", ch->name);
		goto fail;
	}
	lc->max_size = (size_t)size;
	lc->en = relay && relay->language && strcmp(relay->language, "en") == 0;
	if (lc->jis && (lc->cd = iconv_open("ISO-2022-JP", "UTF-8")) ==
	    (iconv_t)-1) {
		snprintf(err, errlen, "channel %s: iconv has no ISO-2022-JP: "
		    "%s", ch->name, strerror(errno));
		goto fail;
	}
	lc->cs.name = "ISO-2022-JP";
	lc->cs.encode = jis_encode;
	lc->cs.arg = lc;
	if (lc->domains == NULL || lc->channel == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*state = lc;
	return 0;
fail:
	lgwan_release(lc);
	return -1;
}

static void
lgwan_release(void *state)
{
	struct lgwan_conf *lc = state;

	if (lc == NULL)
		return;
	smtp_conf_free(lc->smtp);
	if (lc->cd != (iconv_t)-1)
		iconv_close(lc->cd);
	free(lc->domains);
	free(lc->channel);
	free(lc);
}

/* ---- render -------------------------------------------------------------- */

/* Normalise one optional field into *out (NULL stays NULL); -1: oom. */
static int
norm_field(struct lgwan_conf *lc, const char *s, char **out, int *replaced)
{
	*out = NULL;
	if (s == NULL)
		return 0;
	*out = lgwan_normalise(lc, s, strlen(s), replaced);
	return *out ? 0 : -1;
}

/* Render with body = head + text[0..cut) (+ the truncation notice when
 * cut < textlen); the message in *out, its size in *len. */
static int
render_cut(struct lgwan_conf *lc, const struct mail_opts *o,
    const struct channel_msg *m, const char *head, const char *text,
    size_t textlen, size_t cut, char **out, size_t *len, char *err,
    size_t errlen)
{
	struct channel_msg c = *m;
	struct mail_buf b = { 0 };
	char note[256];
	int rc;

	mail_buf_str(&b, head);
	mail_buf_add(&b, text, cut);
	if (cut < textlen) {
		if (lc->en)
			snprintf(note, sizeof(note), "...\n(The rest of the "
			    "text was cut: this network's mail takes at most "
			    "%zu bytes. Ask the sender for the full text.)\n",
			    lc->max_size);
		else
			snprintf(note, sizeof(note), "…\n（本文は長さの上限に"
			    "より省略されました。全文は発信元にお問い合わせ"
			    "ください。上限: %zu バイト）\n", lc->max_size);
		mail_buf_str(&b, note);
	}
	if (b.oom) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c.body = b.p;
	rc = mail_render(o, &c, out, len, err, errlen);
	free(b.p);
	return rc;
}

/*
 * The message for m under the profile.  Out of max_size, the alert's text
 * is cut to the longest prefix of whole characters that fits (a binary
 * search over character boundaries, each candidate rendered for real: the
 * size of ISO-2022-JP is not a sum of its characters).
 */
static int
lgwan_render_msg(struct lgwan_conf *lc, const struct channel_msg *m,
    char **out, size_t *len, char *err, size_t errlen)
{
	struct mail_opts o = smtp_conf_mail_opts(lc->smtp);
	struct channel_msg c = *m;
	char *subject = NULL, *name = NULL, *org = NULL, *body = NULL;
	char *from = NULL, *reply_to = NULL, *try = NULL;
	size_t *starts = NULL, nchars = 0, blen, lo, hi, mid, trylen;
	const char *head = "";
	int replaced = 0, rc = -1;

	*out = NULL;
	*len = 0;
	if (refuse_address(lc, m->address, err, errlen) == -1)
		return -1;
	if (lc->jis) {
		if (norm_field(lc, m->subject, &subject, &replaced) == -1 ||
		    norm_field(lc, m->name, &name, &replaced) == -1 ||
		    norm_field(lc, m->org, &org, &replaced) == -1 ||
		    norm_field(lc, m->body ? m->body : "", &body,
		    &replaced) == -1 ||
		    norm_field(lc, o.from, &from, &replaced) == -1 ||
		    norm_field(lc, o.reply_to, &reply_to, &replaced) == -1)
			goto oom;
		c.subject = subject;
		c.name = name;
		c.org = org;
		o.from = from;
		o.reply_to = reply_to;
		o.charset = &lc->cs;
		if (replaced)
			head = lc->en ? "(Note: some characters of this alert "
			    "cannot be carried by this network's mail "
			    "(ISO-2022-JP) and were replaced by 〓.)\n\n" :
			    "（注意）この通知には、このネットワークのメール"
			    "（ISO-2022-JP）で送れない文字があったため、その"
			    "文字を「〓」に置き換えています。\n\n";
	} else if ((body = strdup(m->body ? m->body : "")) == NULL)
		goto oom;
	blen = strlen(body);

	if (render_cut(lc, &o, &c, head, body, blen, blen, out, len, err,
	    errlen) == -1)
		goto done;
	if (*len <= lc->max_size) {
		rc = 0;
		goto done;
	}
	free(*out);
	*out = NULL;

	/* the character boundaries of the text: starts[0..nchars] */
	if ((starts = calloc(blen + 1, sizeof(*starts))) == NULL)
		goto oom;
	for (size_t i = 0, k; i < blen; i += k) {
		starts[nchars++] = i;
		k = ingest_utf8_seq((const unsigned char *)body + i, blen - i);
		if (k == 0)
			k = 1;
	}
	starts[nchars] = blen;
	/* lo characters fit (once checked); hi do not */
	lo = 0;
	hi = nchars;
	if (render_cut(lc, &o, &c, head, body, blen, 0, out, len, err,
	    errlen) == -1)
		goto done;
	if (*len > lc->max_size) {
		snprintf(err, errlen, "lgwan: the message does not fit in "
		    "max_size (%zu bytes) even without the alert's text",
		    lc->max_size);
		free(*out);
		*out = NULL;
		goto done;
	}
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (render_cut(lc, &o, &c, head, body, blen, starts[mid], &try,
		    &trylen, err, errlen) == -1)
			goto done;
		if (trylen <= lc->max_size) {
			free(*out);
			*out = try;
			*len = trylen;
			lo = mid;
		} else {
			free(try);
			hi = mid;
		}
		try = NULL;
	}
	rc = 0;
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
done:
	if (rc == -1) {
		free(*out);
		*out = NULL;
		*len = 0;
	}
	free(starts);
	free(subject);
	free(name);
	free(org);
	free(body);
	free(from);
	free(reply_to);
	return rc;
}

static int
lgwan_render(void *state, const struct channel_msg *m, char **out,
    size_t *len, char *err, size_t errlen)
{
	return lgwan_render_msg(state, m, out, len, err, errlen);
}

/* ---- send ---------------------------------------------------------------- */

/*
 * Addresses outside `domains` are reported permfail here, before any
 * network use; the rest go to this channel's smarthost, and there only.
 */
static int
lgwan_send(void *state, const struct channel_msg *msgs, size_t n,
    channel_report_fn report, void *arg, char *err, size_t errlen)
{
	struct lgwan_conf *lc = state;
	struct channel_msg *in;
	struct channel_result r;
	size_t k = 0;
	int rc;

	err[0] = '\0';
	if (n == 0)
		return 0;
	if ((in = calloc(n, sizeof(*in))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		memset(&r, 0, sizeof(r));
		if (refuse_address(lc, msgs[i].address, r.error,
		    sizeof(r.error)) == 0) {
			in[k++] = msgs[i];
			continue;
		}
		r.attempt = msgs[i].attempt;
		r.outcome = CHANNEL_PERMFAIL;
		report(&r, arg);
	}
	rc = k > 0 ? smtp_session(lc->smtp, in, k, lgwan_render, lc, report,
	    arg, err, errlen) : 0;
	free(in);
	return rc;
}

const struct channel_driver channel_lgwan = {
	.type = "lgwan",
	.max_batch = SMTP_MAX_BATCH,
	.configure = lgwan_configure,
	.render = lgwan_render,
	.send = lgwan_send,
	.release = lgwan_release,
};
