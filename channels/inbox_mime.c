/*
 * inbox_mime.c - one inbound mail parsed into a struct inbox_msg.
 *
 * libetpan does the parsing: mailmime_parse() for the header and the MIME
 * tree, mailmime_part_parse() for base64 and quoted-printable, and
 * mailmime_encoded_phrase_parse() for RFC 2047 words.  What is written
 * here is the choosing (which part is the text, is it a report), the two
 * report formats (message/delivery-status and
 * message/disposition-notification: blocks of "Name: value" fields that
 * libetpan does not read) and the charsets.
 *
 * Charsets.  Every string handed out is valid UTF-8 without NUL; nothing
 * fails on a bad charset.  Japanese mail comes as UTF-8, ISO-2022-JP,
 * Shift_JIS or EUC-JP, often labelled loosely: Shift_JIS is read as CP932
 * (the Windows extensions: circled digits, NEC and IBM kanji), EUC-JP as
 * EUC-JP-MS, and ISO-2022-JP by glibc, or, when that refuses the NEC row
 * 13 characters Windows clients put into it, by a transcoder to CP932 here.
 * A part that does not convert cleanly from its label is tried as UTF-8,
 * then CP932 and EUC-JP; only if all fail is it converted from its label
 * with U+FFFD for what does not fit.  Unlabelled 8-bit text (a raw
 * Shift_JIS subject, a body without charset) is guessed the same way.
 * RFC 2047 words reach the same converter through libetpan's charset hook
 * (extended_charconv, a process-wide pointer that inbox_parse() sets): the
 * one global this file touches, and always to the same function.
 *
 * What is never read: a message/rfc822 part (a bounce carries the
 * original alert, code and all; it must not look like a reply carrying
 * it) and attachments.  The text is the first text/plain part that is not
 * an attachment, else the first text/html with its tags removed.
 *
 * State owned: none between calls.  Each call's strings live in the
 * struct inbox_parsed, freed by inbox_parsed_free().
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "channels/inbox.h"
#include "relay/relay.h"

#define FFFD		"\xef\xbf\xbd"	/* U+FFFD REPLACEMENT CHARACTER */
#define REPORT_MAX	(64 * 1024)	/* bytes of a report part read */
#define MIME_DEPTH_MAX	20		/* nested multiparts followed */

/* A growing byte buffer that stops growing at max and remembers failure. */
struct sbuf {
	char	*s;
	size_t	 len;
	size_t	 cap;
	size_t	 max;		/* 0: no limit */
	int	 oom;
	int	 full;		/* something was cut at max */
};

/* ---- buffers and the arena ----------------------------------------------- */

static void
sb_add(struct sbuf *b, const void *p, size_t n)
{
	size_t cap;
	char *s;

	if (b->oom || n == 0)
		return;
	if (b->max != 0 && b->len + n > b->max) {
		b->full = 1;
		if (b->len >= b->max)
			return;
		n = b->max - b->len;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((s = realloc(b->s, cap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
sb_addc(struct sbuf *b, char c)
{
	sb_add(b, &c, 1);
}

/* Keep s (allocated, or NULL) in p's arena; returns s, or NULL (s freed)
 * when the arena cannot grow. */
static char *
keep(struct inbox_parsed *p, char *s)
{
	char **v;
	size_t cap;

	if (s == NULL)
		return NULL;
	if (p->nstrs == p->capstrs) {
		cap = p->capstrs ? p->capstrs * 2 : 16;
		if ((v = realloc(p->strs, cap * sizeof(*v))) == NULL) {
			free(s);
			return NULL;
		}
		p->strs = v;
		p->capstrs = cap;
	}
	p->strs[p->nstrs++] = s;
	return s;
}

/* The buffer's string moved into the arena (NULL if empty or on failure). */
static const char *
keep_sb(struct inbox_parsed *p, struct sbuf *b, int *oom)
{
	char *s;

	if (b->oom) {
		*oom = 1;
		free(b->s);
		return NULL;
	}
	if (b->len == 0) {
		free(b->s);
		return NULL;
	}
	s = b->s;
	b->s = NULL;
	if (keep(p, s) == NULL)
		*oom = 1;
	return s;
}

/* A copy of n bytes of s in the arena. */
static const char *
keep_n(struct inbox_parsed *p, const char *s, size_t n, int *oom)
{
	char *d;

	if ((d = malloc(n + 1)) == NULL) {
		*oom = 1;
		return NULL;
	}
	memcpy(d, s, n);
	d[n] = '\0';
	if (keep(p, d) == NULL)
		*oom = 1;
	return d;
}

/* ---- charsets ------------------------------------------------------------ */

enum cs_route {
	CS_GUESS,	/* unlabelled or us-ascii: guess */
	CS_UTF8,
	CS_JIS,		/* ISO-2022-JP and its variants */
	CS_ICONV	/* any other label iconv knows, in name */
};

/* The route for a charset label; name gets the iconv name for CS_ICONV. */
static enum cs_route
cs_route(const char *label, char *name, size_t namelen)
{
	static const struct {
		const char	*label;
		enum cs_route	 route;
		const char	*name;
	} map[] = {
		{ "us-ascii", CS_GUESS, NULL }, { "ascii", CS_GUESS, NULL },
		{ "unknown-8bit", CS_GUESS, NULL },
		{ "x-unknown", CS_GUESS, NULL }, { "default", CS_GUESS, NULL },
		{ "utf-8", CS_UTF8, NULL }, { "utf8", CS_UTF8, NULL },
		{ "iso-2022-jp", CS_JIS, NULL },
		{ "iso-2022-jp-1", CS_JIS, NULL },
		{ "iso-2022-jp-2", CS_JIS, NULL },
		{ "iso-2022-jp-3", CS_JIS, NULL },
		{ "iso-2022-jp-ms", CS_JIS, NULL },
		{ "csiso2022jp", CS_JIS, NULL }, { "cp50220", CS_JIS, NULL },
		{ "cp50221", CS_JIS, NULL }, { "cp50222", CS_JIS, NULL },
		{ "shift_jis", CS_ICONV, "CP932" },
		{ "shift-jis", CS_ICONV, "CP932" },
		{ "sjis", CS_ICONV, "CP932" }, { "x-sjis", CS_ICONV, "CP932" },
		{ "ms_kanji", CS_ICONV, "CP932" },
		{ "csshiftjis", CS_ICONV, "CP932" },
		{ "windows-31j", CS_ICONV, "CP932" },
		{ "cswindows31j", CS_ICONV, "CP932" },
		{ "cp932", CS_ICONV, "CP932" }, { "ms932", CS_ICONV, "CP932" },
		{ "x-ms-cp932", CS_ICONV, "CP932" },
		{ "euc-jp", CS_ICONV, "EUC-JP-MS" },
		{ "eucjp", CS_ICONV, "EUC-JP-MS" },
		{ "x-euc-jp", CS_ICONV, "EUC-JP-MS" },
		{ "cseucpkdfmtjapanese", CS_ICONV, "EUC-JP-MS" },
		{ "eucjp-ms", CS_ICONV, "EUC-JP-MS" },
	};
	char l[64];
	size_t n = 0;

	/* lower case, quotes and blanks removed, RFC 2231 "*lang" cut */
	for (const char *p = label ? label : ""; *p != '\0' && *p != '*' &&
	    n < sizeof(l) - 1; p++)
		if (*p != '"' && *p != ' ' && *p != '\t')
			l[n++] = (char)tolower((unsigned char)*p);
	l[n] = '\0';
	if (n == 0)
		return CS_GUESS;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(l, map[i].label) == 0) {
			if (map[i].name != NULL)
				snprintf(name, namelen, "%s", map[i].name);
			return map[i].route;
		}
	snprintf(name, namelen, "%s", l);
	return CS_ICONV;
}

/*
 * Convert len bytes from charset `from' to UTF-8, appended to out.
 * strict: fail (-1, out restored) at the first byte that does not convert;
 * else such bytes become U+FFFD.  -1 also when iconv knows no `from'.
 */
static int
iconv_utf8(const char *from, const char *in, size_t len, int strict,
    struct sbuf *out)
{
	char obuf[4096], *ip = (char *)(uintptr_t)in, *op;
	size_t inleft = len, oleft, r, start = out->len;
	iconv_t cd;
	int rc = 0;

	if ((cd = iconv_open("UTF-8", from)) == (iconv_t)-1)
		return -1;
	for (;;) {
		op = obuf;
		oleft = sizeof(obuf);
		r = iconv(cd, inleft > 0 ? &ip : NULL, &inleft, &op, &oleft);
		sb_add(out, obuf, (size_t)(op - obuf));
		if (r != (size_t)-1) {
			if (inleft == 0) {
				/* the final shift back to the initial state */
				op = obuf;
				oleft = sizeof(obuf);
				iconv(cd, NULL, NULL, &op, &oleft);
				sb_add(out, obuf, (size_t)(op - obuf));
				break;
			}
			continue;
		}
		if (errno == E2BIG)
			continue;
		if (strict) {
			rc = -1;
			break;
		}
		sb_add(out, FFFD, 3);
		if (errno != EILSEQ)	/* EINVAL: cut at the end */
			break;
		ip++;
		inleft--;
		if (inleft == 0)
			break;
	}
	iconv_close(cd);
	if (rc == -1 && out->s != NULL) {
		out->len = start;
		out->s[start] = '\0';
	}
	return rc;
}

/* The Shift_JIS bytes gathered so far converted (CP932) onto out. */
static void
sjis_flush(struct sbuf *sj, struct sbuf *out)
{
	if (sj->oom)
		out->oom = 1;
	else if (sj->len > 0)
		iconv_utf8("CP932", sj->s, sj->len, 0, out);
	sj->len = 0;
	sj->oom = 0;
}

/*
 * ISO-2022-JP as CP932: the JIS X 0208 pairs (with the NEC row 13 that
 * Windows clients send) turned into Shift_JIS bytes, then converted by
 * iconv's CP932.  What cannot be read (JIS X 0212, unknown escapes, odd
 * bytes) becomes U+FFFD.
 */
static void
jis_as_cp932(const char *in, size_t len, struct sbuf *out)
{
	enum { ASCII, KANJI, KANA, OTHER } mode = ASCII;
	const unsigned char *p = (const unsigned char *)in;
	struct sbuf sj = { 0 };
	unsigned c1, c2;
	size_t i = 0;

	while (i < len && !out->oom) {
		if (p[i] == 0x1b && i + 2 < len) {
			if (p[i + 1] == '$' && (p[i + 2] == 'B' ||
			    p[i + 2] == '@'))
				mode = KANJI;
			else if (p[i + 1] == '(' && (p[i + 2] == 'B' ||
			    p[i + 2] == 'J' || p[i + 2] == 'H'))
				mode = ASCII;
			else if (p[i + 1] == '(' && p[i + 2] == 'I')
				mode = KANA;
			else if (p[i + 1] == '$' && p[i + 2] == '(' &&
			    i + 3 < len) {
				mode = p[i + 3] == 'B' || p[i + 3] == 'Q' ?
				    KANJI : OTHER;	/* ESC $ ( D: JIS X 0212 */
				i++;
			} else
				mode = OTHER;
			i += 3;
			continue;
		}
		if (p[i] == 0x0e || p[i] == 0x0f) {	/* SO/SI: JIS7 kana */
			mode = p[i] == 0x0e ? KANA : ASCII;
			i++;
			continue;
		}
		if (p[i] == '\n' || p[i] == '\r' || p[i] >= 0x80 ||
		    mode == ASCII) {
			if (p[i] == '\n')
				mode = ASCII;	/* a line never continues one */
			sb_addc(&sj, (char)p[i]);
			i++;
			continue;
		}
		if (mode == KANA && p[i] >= 0x21 && p[i] <= 0x5f) {
			sb_addc(&sj, (char)(p[i] + 0x80));
			i++;
			continue;
		}
		if (mode != KANJI || i + 1 >= len || p[i] < 0x21 ||
		    p[i] > 0x7e || p[i + 1] < 0x21 || p[i + 1] > 0x7e) {
			sjis_flush(&sj, out);
			sb_add(out, FFFD, 3);
			i += mode == KANJI && i + 1 < len ? 2 : 1;
			continue;
		}
		c1 = p[i];
		c2 = p[i + 1];
		sb_addc(&sj, (char)(((c1 + 1) >> 1) + (c1 <= 0x5e ? 0x70 :
		    0xb0)));
		sb_addc(&sj, (char)(c2 + ((c1 & 1) ? (c2 >= 0x60 ? 0x20 :
		    0x1f) : 0x7e)));
		i += 2;
	}
	sjis_flush(&sj, out);
	free(sj.s);
}

/* 1 if len bytes of s are UTF-8, but for a character cut short at the
 * end (a message cut at a size limit). */
static int
valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, j;

	while (i < len) {
		if ((k = ingest_utf8_seq(p + i, len - i)) > 0) {
			i += k;
			continue;
		}
		if (len - i > 3 || p[i] < 0xc2 || p[i] > 0xf4)
			return 0;
		for (j = i + 1; j < len; j++)
			if ((p[j] & 0xc0) != 0x80)
				return 0;
		return 1;
	}
	return 1;
}

/* UTF-8 with U+FFFD for each byte that starts no valid sequence. */
static void
utf8_lossy(const char *in, size_t len, struct sbuf *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, k;

	while (i < len) {
		if ((k = ingest_utf8_seq(p + i, len - i)) == 0) {
			sb_add(out, FFFD, 3);
			i++;
		} else {
			sb_add(out, p + i, k);
			i += k;
		}
	}
}

/* Unlabelled bytes: UTF-8, ISO-2022-JP (it has escapes), CP932, EUC-JP;
 * else CP932 with U+FFFD. */
static void
guess_utf8(const char *in, size_t len, struct sbuf *out)
{
	if (valid_utf8(in, len) && memchr(in, 0x1b, len) == NULL) {
		utf8_lossy(in, len, out);
		return;
	}
	if (memchr(in, 0x1b, len) != NULL) {
		if (iconv_utf8("ISO-2022-JP-2", in, len, 1, out) == -1)
			jis_as_cp932(in, len, out);
		return;
	}
	if (iconv_utf8("CP932", in, len, 1, out) == 0 ||
	    iconv_utf8("EUC-JP-MS", in, len, 1, out) == 0)
		return;
	iconv_utf8("CP932", in, len, 0, out);
}

/* len bytes labelled `label', appended to out as UTF-8; never fails (but
 * for memory, in out->oom). */
static void to_utf8_route(const char *label, const char *in, size_t len,
    struct sbuf *out);

/* Convert with to_utf8_route(), then make sure of the result: iconv's
 * idea of a charset (glibc reads "utf?-8" as UTF-8, and lets bytes that
 * are no UTF-8 through) is not a promise of valid UTF-8. */
static void
to_utf8(const char *label, const char *in, size_t len, struct sbuf *out)
{
	size_t start = out->len;
	char *got;

	to_utf8_route(label, in, len, out);
	if (out->oom || out->s == NULL || valid_utf8(out->s + start,
	    out->len - start))
		return;
	if ((got = malloc(out->len - start)) == NULL) {
		out->oom = 1;
		return;
	}
	memcpy(got, out->s + start, out->len - start);
	len = out->len - start;
	out->len = start;
	out->s[start] = '\0';
	utf8_lossy(got, len, out);
	free(got);
}

static void
to_utf8_route(const char *label, const char *in, size_t len,
    struct sbuf *out)
{
	char name[64];

	if (len == 0)
		return;
	switch (cs_route(label, name, sizeof(name))) {
	case CS_GUESS:
		guess_utf8(in, len, out);
		return;
	case CS_UTF8:
		utf8_lossy(in, len, out);	/* a cut character: U+FFFD */
		return;
	case CS_JIS:
		if (iconv_utf8("ISO-2022-JP-2", in, len, 1, out) == -1)
			jis_as_cp932(in, len, out);
		return;
	case CS_ICONV:
		if (iconv_utf8(name, in, len, 1, out) == 0)
			return;
		if (valid_utf8(in, len)) {	/* mislabelled UTF-8 */
			utf8_lossy(in, len, out);
			return;
		}
		if (iconv_utf8(name, in, len, 0, out) == -1)
			guess_utf8(in, len, out);	/* a label iconv lacks */
		return;
	}
}

/*
 * libetpan's charset hook (extended_charconv): every RFC 2047 word and
 * every unencoded header word goes through to_utf8().  result has room
 * for *result_len bytes (libetpan gives 6 per input byte, more than
 * to_utf8 ever makes; a longer result would be cut at a character).
 */
static int
inbox_charconv(const char *tocode, const char *fromcode, const char *str,
    size_t length, char *result, size_t *result_len)
{
	struct sbuf b = { 0 };
	size_t n;

	if (strcasecmp(tocode, "utf-8") != 0 && strcasecmp(tocode, "utf8") != 0)
		return MAIL_CHARCONV_ERROR_UNKNOWN_CHARSET;
	to_utf8(fromcode, str, length, &b);
	if (b.oom) {
		free(b.s);
		return MAIL_CHARCONV_ERROR_MEMORY;
	}
	n = b.len;
	if (n > *result_len) {
		n = *result_len;
		while (n > 0 && ((unsigned char)b.s[n] & 0xc0) == 0x80)
			n--;
	}
	if (n > 0)
		memcpy(result, b.s, n);
	*result_len = n;
	free(b.s);
	return MAIL_CHARCONV_NO_ERROR;
}

/* ---- cleaning decoded text ----------------------------------------------- */

/* n cut back to the start of a UTF-8 character of s. */
static size_t
utf8_cut(const char *s, size_t n)
{
	size_t k = n, need;
	unsigned char c;

	/* s[0..n) is all there is: back off over continuation bytes to the
	 * last character's lead byte, and drop that character if it is not
	 * whole (found by fuzz_inbox: s[n] was never copied) */
	while (k > 0 && ((unsigned char)s[k - 1] & 0xc0) == 0x80)
		k--;
	if (k == 0)
		return 0;
	c = (unsigned char)s[k - 1];
	need = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	return n - (k - 1) < need ? k - 1 : n;
}

/*
 * UTF-8 s[0..len) as text: CRLF and CR become LF, NUL and other controls
 * but TAB and LF become a blank, cut at max bytes on a character.
 */
static void
clean_text(const char *s, size_t len, size_t max, struct sbuf *out)
{
	size_t i;

	out->max = max;
	for (i = 0; i < len && !out->full && !out->oom; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r') {
			sb_addc(out, '\n');
			if (i + 1 < len && s[i + 1] == '\n')
				i++;
		} else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
			sb_addc(out, ' ');
		else
			sb_addc(out, (char)c);
	}
	if (out->full && out->s != NULL) {
		out->len = utf8_cut(out->s, out->len);
		out->s[out->len] = '\0';
	}
}

/* UTF-8 s[0..len) as one line: every control a blank, blanks at the ends
 * trimmed, cut at INBOX_HDR_MAX bytes on a character. */
static void
clean_line(const char *s, size_t len, struct sbuf *out)
{
	size_t a = 0, z;

	while (a < len && ((unsigned char)s[a] <= 0x20 || s[a] == 0x7f))
		a++;
	z = len;
	while (z > a && ((unsigned char)s[z - 1] <= 0x20 || s[z - 1] == 0x7f))
		z--;
	out->max = INBOX_HDR_MAX;
	for (size_t i = a; i < z && !out->full && !out->oom; i++) {
		unsigned char c = (unsigned char)s[i];

		sb_addc(out, (c < 0x20 || c == 0x7f) ? ' ' : (char)c);
	}
	if (out->full && out->s != NULL) {
		out->len = utf8_cut(out->s, out->len);
		out->s[out->len] = '\0';
	}
}

/* ---- headers ------------------------------------------------------------- */

/* An unstructured header value decoded (RFC 2047, raw 8-bit guessed) into
 * one line of UTF-8 in the arena; NULL if empty. */
static const char *
hdr_text(struct inbox_parsed *p, const char *v, int *oom)
{
	struct sbuf b = { 0 };
	char *dec = NULL;
	size_t idx = 0;

	if (v == NULL)
		return NULL;
	if (mailmime_encoded_phrase_parse("unknown-8bit", v, strlen(v), &idx,
	    "utf-8", &dec) == MAILIMF_NO_ERROR && dec != NULL) {
		struct sbuf u = { 0 };

		utf8_lossy(dec, strlen(dec), &u);	/* belt and braces */
		if (u.len > 0)
			clean_line(u.s, u.len, &b);
		b.oom |= u.oom;
		free(u.s);
		free(dec);
	} else {
		struct sbuf u = { 0 };

		free(dec);
		guess_utf8(v, strlen(v), &u);
		if (u.len > 0)
			clean_line(u.s, u.len, &b);
		b.oom |= u.oom;
		free(u.s);
	}
	return keep_sb(p, &b, oom);
}

/* A structured value kept as written, as one line (ids, tokens). */
static const char *
hdr_raw(struct inbox_parsed *p, const char *v, int *oom)
{
	struct sbuf u = { 0 }, b = { 0 };

	if (v == NULL)
		return NULL;
	utf8_lossy(v, strlen(v), &u);
	if (u.len > 0)
		clean_line(u.s, u.len, &b);
	b.oom |= u.oom;
	free(u.s);
	return keep_sb(p, &b, oom);
}

/* "<a> <b>" from a clist of msg-ids (char *, without brackets). */
static const char *
hdr_ids(struct inbox_parsed *p, clist *ids, int *oom)
{
	struct sbuf b = { 0 };

	if (ids == NULL)
		return NULL;
	b.max = INBOX_HDR_MAX;
	for (clistiter *c = clist_begin(ids); c != NULL; c = clist_next(c)) {
		const char *id = clist_content(c);

		if (id == NULL)
			continue;
		if (b.len > 0)
			sb_addc(&b, ' ');
		sb_addc(&b, '<');
		sb_add(&b, id, strlen(id));
		sb_addc(&b, '>');
	}
	if (b.s != NULL) {
		struct sbuf u = { 0 }, c = { 0 };

		/* ids are ASCII by the RFC; whatever else came is made valid
		 * UTF-8 like every other field, then freed of controls */
		utf8_lossy(b.s, b.len, &u);
		if (u.len > 0)
			clean_line(u.s, u.len, &c);
		c.oom |= b.oom | u.oom;
		free(b.s);
		free(u.s);
		return keep_sb(p, &c, oom);
	}
	return keep_sb(p, &b, oom);
}

/*
 * An addr-spec made usable: blanks and brackets trimmed, the domain lower
 * case; NULL unless it is local@domain of printable ASCII or UTF-8, no
 * blanks or controls, at most 254 bytes.
 */
static const char *
addr_spec(struct inbox_parsed *p, const char *a, size_t n, int *oom)
{
	char buf[256], *at;
	size_t i;

	while (n > 0 && (*a == ' ' || *a == '\t' || *a == '<')) {
		a++;
		n--;
	}
	while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t' ||
	    a[n - 1] == '>'))
		n--;
	if (n == 0 || n > 254 || !ingest_utf8_valid(a, n))
		return NULL;
	memcpy(buf, a, n);
	buf[n] = '\0';
	for (i = 0; i < n; i++)
		if ((unsigned char)buf[i] <= 0x20 || buf[i] == 0x7f ||
		    buf[i] == '<' || buf[i] == '>' || buf[i] == ',')
			return NULL;
	if ((at = strrchr(buf, '@')) == NULL || at == buf || at[1] == '\0')
		return NULL;
	for (char *d = at + 1; *d != '\0'; d++)
		*d = (char)tolower((unsigned char)*d);
	return keep_n(p, buf, n, oom);
}

/* The address of a From: that libetpan could not parse: the last
 * <...> holding an @, else the first word holding one. */
static const char *
from_fallback(struct inbox_parsed *p, const char *v, int *oom)
{
	const char *lt, *gt, *w, *e;

	if ((lt = strrchr(v, '<')) != NULL && (gt = strchr(lt, '>')) != NULL &&
	    memchr(lt, '@', (size_t)(gt - lt)) != NULL)
		return addr_spec(p, lt + 1, (size_t)(gt - lt - 1), oom);
	for (w = v; *w != '\0'; w = e) {
		while (*w == ' ' || *w == '\t' || *w == '\r' || *w == '\n')
			w++;
		e = w;
		while (*e != '\0' && *e != ' ' && *e != '\t' && *e != '\r' &&
		    *e != '\n')
			e++;
		if (e > w && memchr(w, '@', (size_t)(e - w)) != NULL)
			return addr_spec(p, w, (size_t)(e - w), oom);
	}
	return NULL;
}

/* The headers the relay matches on, first occurrence of each. */
static void
read_headers(struct inbox_parsed *p, struct mailimf_fields *f, int *oom)
{
	struct inbox_msg *m = &p->msg;

	if (f == NULL)
		return;
	for (clistiter *c = clist_begin(f->fld_list); c != NULL;
	    c = clist_next(c)) {
		struct mailimf_field *fl = clist_content(c);
		struct mailimf_optional_field *o;

		switch (fl->fld_type) {
		case MAILIMF_FIELD_FROM:
			if (m->from == NULL && fl->fld_data.fld_from != NULL &&
			    fl->fld_data.fld_from->frm_mb_list != NULL) {
				clist *l = fl->fld_data.fld_from->frm_mb_list->
				    mb_list;
				struct mailimf_mailbox *mb;

				if (clist_begin(l) != NULL &&
				    (mb = clist_content(clist_begin(l))) !=
				    NULL && mb->mb_addr_spec != NULL)
					m->from = addr_spec(p, mb->mb_addr_spec,
					    strlen(mb->mb_addr_spec), oom);
			}
			break;
		case MAILIMF_FIELD_SUBJECT:
			if (m->subject == NULL)
				m->subject = hdr_text(p,
				    fl->fld_data.fld_subject->sbj_value, oom);
			break;
		case MAILIMF_FIELD_MESSAGE_ID:
			if (m->message_id == NULL &&
			    fl->fld_data.fld_message_id->mid_value != NULL) {
				char id[INBOX_HDR_MAX];

				snprintf(id, sizeof(id), "<%s>",
				    fl->fld_data.fld_message_id->mid_value);
				m->message_id = hdr_raw(p, id, oom);
			}
			break;
		case MAILIMF_FIELD_IN_REPLY_TO:
			if (m->in_reply_to == NULL)
				m->in_reply_to = hdr_ids(p,
				    fl->fld_data.fld_in_reply_to->mid_list, oom);
			break;
		case MAILIMF_FIELD_REFERENCES:
			if (m->references == NULL)
				m->references = hdr_ids(p,
				    fl->fld_data.fld_references->mid_list, oom);
			break;
		case MAILIMF_FIELD_OPTIONAL_FIELD:
			/* also where libetpan puts a field it could not parse */
			o = fl->fld_data.fld_optional_field;
			if (o->fld_name == NULL || o->fld_value == NULL)
				break;
			if (strcasecmp(o->fld_name, "Auto-Submitted") == 0 &&
			    m->auto_submitted == NULL)
				m->auto_submitted = hdr_raw(p, o->fld_value,
				    oom);
			else if (strcasecmp(o->fld_name, "From") == 0 &&
			    m->from == NULL)
				m->from = from_fallback(p, o->fld_value, oom);
			else if (strcasecmp(o->fld_name, "Subject") == 0 &&
			    m->subject == NULL)
				m->subject = hdr_text(p, o->fld_value, oom);
			else if (strcasecmp(o->fld_name, "Message-ID") == 0 &&
			    m->message_id == NULL)
				m->message_id = hdr_raw(p, o->fld_value, oom);
			else if (strcasecmp(o->fld_name, "In-Reply-To") == 0 &&
			    m->in_reply_to == NULL)
				m->in_reply_to = hdr_raw(p, o->fld_value, oom);
			else if (strcasecmp(o->fld_name, "References") == 0 &&
			    m->references == NULL)
				m->references = hdr_raw(p, o->fld_value, oom);
			break;
		default:
			break;
		}
	}
}

/* ---- the MIME tree ------------------------------------------------------- */

/* What the walk over the parts finds. */
struct found {
	struct mailmime	*plain;		/* the first text/plain */
	struct mailmime	*html;		/* the first text/html */
	struct mailmime	*dsn;		/* message/delivery-status */
	struct mailmime	*mdn;		/* message/disposition-notification */
	int		 report_dsn;	/* multipart/report; report-type=... */
	int		 report_mdn;
};

/* 1 if the part's type is type/subtype (case-insensitive). */
static int
is_type(struct mailmime *mm, int discrete, int composite, const char *sub)
{
	struct mailmime_content *ct = mm->mm_content_type;

	if (ct == NULL || ct->ct_type == NULL || ct->ct_subtype == NULL ||
	    strcasecmp(ct->ct_subtype, sub) != 0)
		return 0;
	if (ct->ct_type->tp_type == MAILMIME_TYPE_DISCRETE_TYPE)
		return discrete != 0 && ct->ct_type->tp_data.
		    tp_discrete_type->dt_type == discrete;
	return composite != 0 && ct->ct_type->tp_data.tp_composite_type->
	    ct_type == composite;
}

/* 1 if the part says Content-Disposition: attachment. */
static int
is_attachment(struct mailmime *mm)
{
	if (mm->mm_mime_fields == NULL)
		return 0;
	for (clistiter *c = clist_begin(mm->mm_mime_fields->fld_list);
	    c != NULL; c = clist_next(c)) {
		struct mailmime_field *f = clist_content(c);

		if (f->fld_type == MAILMIME_FIELD_DISPOSITION &&
		    f->fld_data.fld_disposition != NULL &&
		    f->fld_data.fld_disposition->dsp_type != NULL &&
		    f->fld_data.fld_disposition->dsp_type->dsp_type ==
		    MAILMIME_DISPOSITION_TYPE_ATTACHMENT)
			return 1;
	}
	return 0;
}

/* Depth first over the parts, never into a message/rfc822. */
static void
walk(struct mailmime *mm, int depth, struct found *fd)
{
	const char *rt;

	if (mm == NULL || depth > MIME_DEPTH_MAX)
		return;
	switch (mm->mm_type) {
	case MAILMIME_SINGLE:
		if (is_type(mm, 0, MAILMIME_COMPOSITE_TYPE_MESSAGE,
		    "delivery-status") || is_type(mm, 0,
		    MAILMIME_COMPOSITE_TYPE_MESSAGE, "global-delivery-status")) {
			if (fd->dsn == NULL)
				fd->dsn = mm;
		} else if (is_type(mm, 0, MAILMIME_COMPOSITE_TYPE_MESSAGE,
		    "disposition-notification") || is_type(mm, 0,
		    MAILMIME_COMPOSITE_TYPE_MESSAGE,
		    "global-disposition-notification")) {
			if (fd->mdn == NULL)
				fd->mdn = mm;
		} else if (is_attachment(mm))
			break;
		else if (fd->plain == NULL && is_type(mm,
		    MAILMIME_DISCRETE_TYPE_TEXT, 0, "plain"))
			fd->plain = mm;
		else if (fd->html == NULL && is_type(mm,
		    MAILMIME_DISCRETE_TYPE_TEXT, 0, "html"))
			fd->html = mm;
		break;
	case MAILMIME_MULTIPLE:
		if (is_type(mm, 0, MAILMIME_COMPOSITE_TYPE_MULTIPART,
		    "report") && (rt = mailmime_content_param_get(
		    mm->mm_content_type, (char *)(uintptr_t)"report-type")) !=
		    NULL) {
			if (strcasecmp(rt, "delivery-status") == 0 ||
			    strcasecmp(rt, "global-delivery-status") == 0)
				fd->report_dsn = 1;
			else if (strcasecmp(rt, "disposition-notification") ==
			    0 || strcasecmp(rt,
			    "global-disposition-notification") == 0)
				fd->report_mdn = 1;
		}
		for (clistiter *c = clist_begin(mm->mm_data.mm_multipart.
		    mm_mp_list); c != NULL; c = clist_next(c))
			walk(clist_content(c), depth + 1, fd);
		break;
	case MAILMIME_MESSAGE:
		/* only the top: an attached message is not ours to read */
		if (depth == 0)
			walk(mm->mm_data.mm_message.mm_msg_mime, depth + 1, fd);
		break;
	default:
		break;
	}
}

/* A single part's bytes, transfer-decoded (base64, quoted-printable),
 * cut at max; appended to out. */
static void
part_bytes(struct mailmime *mm, size_t max, struct sbuf *out)
{
	struct mailmime_data *d = mm->mm_data.mm_single;
	char *dec = NULL;
	size_t idx = 0, declen = 0;

	if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT ||
	    d->dt_data.dt_text.dt_data == NULL)
		return;
	if (d->dt_encoded && (d->dt_encoding == MAILMIME_MECHANISM_BASE64 ||
	    d->dt_encoding == MAILMIME_MECHANISM_QUOTED_PRINTABLE) &&
	    mailmime_part_parse(d->dt_data.dt_text.dt_data,
	    d->dt_data.dt_text.dt_length, &idx, d->dt_encoding, &dec,
	    &declen) == MAILIMF_NO_ERROR) {
		sb_add(out, dec, declen < max ? declen : max);
		mmap_string_unref(dec);
		return;
	}
	declen = d->dt_data.dt_text.dt_length;
	sb_add(out, d->dt_data.dt_text.dt_data, declen < max ? declen : max);
}

/* The charset label of a part (NULL: none). */
static const char *
part_charset(struct mailmime *mm)
{
	if (mm->mm_content_type == NULL)
		return NULL;
	return mailmime_content_param_get(mm->mm_content_type,
	    (char *)(uintptr_t)"charset");
}

/* A text part as UTF-8 text. */
static void
part_text(struct mailmime *mm, struct sbuf *out)
{
	struct sbuf raw = { 0 }, u = { 0 };

	/* a few bytes per character: enough for INBOX_TEXT_MAX of UTF-8 */
	part_bytes(mm, (size_t)INBOX_TEXT_MAX * 2, &raw);
	if (raw.len > 0)
		to_utf8(part_charset(mm), raw.s, raw.len, &u);
	if (u.len > 0)
		clean_text(u.s, u.len, INBOX_TEXT_MAX, out);
	out->oom |= raw.oom || u.oom;
	free(raw.s);
	free(u.s);
}

/* HTML as text: tags dropped (line breaks for the block ones), script and
 * style skipped, the common entities decoded. */
static void
html_text(const char *s, size_t len, struct sbuf *out)
{
	static const struct {
		const char	*name;
		const char	*utf8;
	} ent[] = {
		{ "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" },
		{ "apos", "'" }, { "nbsp", " " },
	};
	size_t i = 0, j, k;

	while (i < len && !out->oom) {
		if (s[i] == '<') {
			int skip = len - i > 7 && (strncasecmp(s + i, "<script",
			    7) == 0 || strncasecmp(s + i, "<style", 6) == 0);
			const char *end = skip ? (s[i + 2] == 'c' ||
			    s[i + 2] == 'C' ? "</script" : "</style") : NULL;

			if (len - i > 3 && (strncasecmp(s + i, "<br", 3) == 0 ||
			    strncasecmp(s + i, "</p", 3) == 0 ||
			    strncasecmp(s + i, "</div", 5) == 0 ||
			    strncasecmp(s + i, "</tr", 4) == 0))
				sb_addc(out, '\n');
			if (end != NULL) {
				for (j = i; j + strlen(end) <= len &&
				    strncasecmp(s + j, end, strlen(end)) != 0;
				    j++)
					;
				i = j;
			}
			while (i < len && s[i] != '>')
				i++;
			i++;
			continue;
		}
		if (s[i] == '&') {
			for (j = i + 1; j < len && j - i < 10 && s[j] != ';';
			    j++)
				;
			if (j < len && s[j] == ';') {
				if (s[i + 1] == '#') {
					unsigned long cp = s[i + 2] == 'x' ||
					    s[i + 2] == 'X' ? strtoul(s + i + 3,
					    NULL, 16) : strtoul(s + i + 2, NULL,
					    10);
					char u[4];

					if (cp == 0 || cp > 0x10ffff ||
					    (cp >= 0xd800 && cp <= 0xdfff))
						sb_add(out, FFFD, 3);
					else if (cp < 0x80)
						sb_addc(out, (char)cp);
					else if (cp < 0x800) {
						u[0] = (char)(0xc0 | cp >> 6);
						u[1] = (char)(0x80 | (cp & 0x3f));
						sb_add(out, u, 2);
					} else if (cp < 0x10000) {
						u[0] = (char)(0xe0 | cp >> 12);
						u[1] = (char)(0x80 | (cp >> 6 &
						    0x3f));
						u[2] = (char)(0x80 | (cp & 0x3f));
						sb_add(out, u, 3);
					} else {
						u[0] = (char)(0xf0 | cp >> 18);
						u[1] = (char)(0x80 | (cp >> 12 &
						    0x3f));
						u[2] = (char)(0x80 | (cp >> 6 &
						    0x3f));
						u[3] = (char)(0x80 | (cp & 0x3f));
						sb_add(out, u, 4);
					}
					i = j + 1;
					continue;
				}
				for (k = 0; k < sizeof(ent) / sizeof(ent[0]);
				    k++)
					if (strlen(ent[k].name) == j - i - 1 &&
					    strncasecmp(s + i + 1, ent[k].name,
					    j - i - 1) == 0)
						break;
				if (k < sizeof(ent) / sizeof(ent[0])) {
					sb_add(out, ent[k].utf8,
					    strlen(ent[k].utf8));
					i = j + 1;
					continue;
				}
			}
		}
		sb_addc(out, s[i]);
		i++;
	}
}

/* ---- reports ------------------------------------------------------------- */

/* One "Name: value" field of a report, unfolded, value trimmed. */
struct rfield {
	const char	*name;		/* in the unfolded block */
	size_t		 nlen;
	const char	*value;
	size_t		 vlen;
};

#define RFIELDS_MAX	64		/* fields read per block */

/*
 * Split the next block (up to a blank line) of the report text at *pos
 * into fields; folded lines are joined in place (the text is ours).
 * Returns the number of fields, -1 when the text is used up.
 */
static int
next_block(char *s, size_t len, size_t *pos, struct rfield *f, int max)
{
	size_t i = *pos, ls, le;
	int n = 0;

	/* skip blank lines */
	while (i < len) {
		for (le = i; le < len && s[le] != '\n'; le++)
			;
		for (ls = i; ls < le && (s[ls] == ' ' || s[ls] == '\t'); ls++)
			;
		if (ls < le)
			break;
		i = le + 1;
	}
	if (i >= len) {
		*pos = len;
		return -1;
	}
	while (i < len) {
		for (le = i; le < len && s[le] != '\n'; le++)
			;
		for (ls = i; ls < le && (s[ls] == ' ' || s[ls] == '\t'); ls++)
			;
		if (ls == le)		/* a blank line ends the block */
			break;
		if (ls > i && n > 0) {	/* a continuation */
			struct rfield *p = &f[n - 1];

			if (p->value + p->vlen == s + i - 1) {
				s[i - 1] = ' ';	/* the LF between */
				p->vlen = (size_t)(s + le - p->value);
			}
		} else if (n < max) {
			const char *colon = memchr(s + i, ':', le - i);

			if (colon != NULL) {
				f[n].name = s + i;
				f[n].nlen = (size_t)(colon - (s + i));
				f[n].value = colon + 1;
				f[n].vlen = (size_t)(s + le - (colon + 1));
				n++;
			}
		}
		i = le + 1;
	}
	*pos = i;
	for (int k = 0; k < n; k++) {
		while (f[k].nlen > 0 && (f[k].name[f[k].nlen - 1] == ' ' ||
		    f[k].name[f[k].nlen - 1] == '\t'))
			f[k].nlen--;
		while (f[k].vlen > 0 && (*f[k].value == ' ' ||
		    *f[k].value == '\t')) {
			f[k].value++;
			f[k].vlen--;
		}
		while (f[k].vlen > 0 && (f[k].value[f[k].vlen - 1] == ' ' ||
		    f[k].value[f[k].vlen - 1] == '\t' ||
		    f[k].value[f[k].vlen - 1] == '\r'))
			f[k].vlen--;
	}
	return n;
}

/* The field named name in f[0..n), or NULL. */
static const struct rfield *
field(const struct rfield *f, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (f[i].nlen == strlen(name) &&
		    strncasecmp(f[i].name, name, f[i].nlen) == 0)
			return &f[i];
	return NULL;
}

/* A field value kept as one line; cut: after the first ';' (the type of
 * an address or a code), lower: lower case, word: 1 only the first word,
 * 2 also up to a '/' (a disposition's modifier). */
static const char *
fvalue(struct inbox_parsed *p, const struct rfield *f, int cut, int lower,
    int word, int *oom)
{
	const char *v;
	size_t n, i, k;
	char *s;
	const char *r;

	if (f == NULL)
		return NULL;
	v = f->value;
	n = f->vlen;
	if (cut) {
		const char *semi = memchr(v, ';', n);

		if (semi != NULL) {
			n -= (size_t)(semi + 1 - v);
			v = semi + 1;
		}
		while (n > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			n--;
		}
	}
	if (word) {
		for (i = 0; i < n && v[i] != ' ' && v[i] != '\t' &&
		    v[i] != ';' && v[i] != '(' && (word < 2 || v[i] != '/');
		    i++)
			;
		n = i;
	}
	if (n == 0)
		return NULL;
	if ((s = malloc(n + 1)) == NULL) {
		*oom = 1;
		return NULL;
	}
	/* runs of blanks (a folded line) become one */
	for (i = 0, k = 0; i < n; i++)
		if ((v[i] != ' ' && v[i] != '\t') || (k > 0 && s[k - 1] != ' '))
			s[k++] = v[i] == '\t' ? ' ' : v[i];
	n = k;
	s[n] = '\0';
	if (lower)
		for (i = 0; i < n; i++)
			s[i] = (char)tolower((unsigned char)s[i]);
	r = hdr_raw(p, s, oom);
	free(s);
	return r;
}

/* RFC 3461 xtext ("+2B" is '+') decoded in place. */
static void
xtext_decode(char *s)
{
	char *d = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '+' && isxdigit((unsigned char)s[1]) &&
		    isxdigit((unsigned char)s[2])) {
			char h[3] = { s[1], s[2], '\0' };

			*d++ = (char)strtol(h, NULL, 16);
			s += 2;
		} else
			*d++ = *s;
	}
	*d = '\0';
}

/* The report part as UTF-8 text with LF line ends, in out. */
static void
report_text(struct mailmime *mm, struct sbuf *out)
{
	struct sbuf raw = { 0 }, u = { 0 };

	part_bytes(mm, REPORT_MAX, &raw);
	if (raw.len > 0)
		to_utf8(part_charset(mm) ? part_charset(mm) : "utf-8", raw.s,
		    raw.len, &u);
	if (u.len > 0)
		clean_text(u.s, u.len, REPORT_MAX * 2, out);
	out->oom |= raw.oom || u.oom;
	free(raw.s);
	free(u.s);
}

/* message/delivery-status: the envelope id and each recipient. */
static void
read_dsn(struct inbox_parsed *p, struct mailmime *mm, int *oom)
{
	struct rfield f[RFIELDS_MAX];
	const struct rfield *r;
	struct sbuf t = { 0 };
	size_t pos = 0;
	int n;

	report_text(mm, &t);
	if (t.oom)
		*oom = 1;
	if (t.s == NULL)
		return;
	if ((p->rcpts = calloc(INBOX_MAX_RCPTS, sizeof(*p->rcpts))) == NULL) {
		*oom = 1;
		free(t.s);
		return;
	}
	while ((n = next_block(t.s, t.len, &pos, f, RFIELDS_MAX)) >= 0) {
		struct inbox_dsn_rcpt *rc;

		if (p->msg.envelope_id == NULL &&
		    (r = field(f, n, "Original-Envelope-Id")) != NULL) {
			const char *v = fvalue(p, r, 0, 0, 1, oom);

			if (v != NULL) {
				xtext_decode((char *)(uintptr_t)v);
				p->msg.envelope_id = v;
			}
		}
		if (field(f, n, "Final-Recipient") == NULL &&
		    field(f, n, "Original-Recipient") == NULL &&
		    field(f, n, "Action") == NULL)
			continue;	/* the per-message block */
		if (p->msg.nrcpts == INBOX_MAX_RCPTS)
			continue;
		rc = &p->rcpts[p->msg.nrcpts];
		if ((r = field(f, n, "Final-Recipient")) == NULL)
			r = field(f, n, "Original-Recipient");
		rc->final_recipient = fvalue(p, r, 1, 0, 1, oom);
		if (rc->final_recipient != NULL) {
			const char *a = addr_spec(p, rc->final_recipient,
			    strlen(rc->final_recipient), oom);

			if (a != NULL)
				rc->final_recipient = a;
		}
		rc->action = fvalue(p, field(f, n, "Action"), 0, 1, 1, oom);
		rc->status = fvalue(p, field(f, n, "Status"), 0, 0, 1, oom);
		rc->diagnostic = fvalue(p, field(f, n, "Diagnostic-Code"), 0, 0,
		    0, oom);
		p->msg.nrcpts++;
	}
	p->msg.rcpts = p->rcpts;
	free(t.s);
}

/* message/disposition-notification: what happened, to which message. */
static void
read_mdn(struct inbox_parsed *p, struct mailmime *mm, int *oom)
{
	struct rfield f[RFIELDS_MAX];
	const struct rfield *r;
	struct sbuf t = { 0 };
	size_t pos = 0;
	int n;

	report_text(mm, &t);
	if (t.oom)
		*oom = 1;
	if (t.s == NULL)
		return;
	while ((n = next_block(t.s, t.len, &pos, f, RFIELDS_MAX)) >= 0) {
		/* "manual-action/MDN-sent-manually; displayed" */
		if (p->msg.disposition == NULL &&
		    (r = field(f, n, "Disposition")) != NULL &&
		    memchr(r->value, ';', r->vlen) != NULL)
			p->msg.disposition = fvalue(p, r, 1, 1, 2, oom);
		if (p->msg.original_message_id == NULL &&
		    (r = field(f, n, "Original-Message-ID")) != NULL)
			p->msg.original_message_id = fvalue(p, r, 0, 0, 0, oom);
	}
	free(t.s);
}

/* ---- inbox_parse --------------------------------------------------------- */

/* The text when libetpan could not parse the message at all: what follows
 * the first blank line (or everything), guessed. */
static void
fallback_text(struct inbox_parsed *p, const char *raw, size_t len, int *oom)
{
	struct sbuf u = { 0 }, b = { 0 };
	const char *body = raw;
	size_t n = len;

	for (size_t i = 0; i + 1 < len; i++) {
		if (raw[i] == '\n' && (raw[i + 1] == '\n' ||
		    (raw[i + 1] == '\r' && i + 2 < len && raw[i + 2] == '\n'))) {
			body = raw + i + (raw[i + 1] == '\n' ? 2 : 3);
			n = len - (size_t)(body - raw);
			break;
		}
	}
	if (n > (size_t)INBOX_TEXT_MAX * 2)
		n = (size_t)INBOX_TEXT_MAX * 2;
	guess_utf8(body, n, &u);
	if (u.len > 0)
		clean_text(u.s, u.len, INBOX_TEXT_MAX, &b);
	b.oom |= u.oom;
	free(u.s);
	p->msg.text = keep_sb(p, &b, oom);
}

int
inbox_parse(const char *raw, size_t len, struct inbox_parsed *out,
    char *err, size_t errlen)
{
	struct mailmime *mime = NULL;
	struct found fd;
	struct sbuf t = { 0 };
	const char *src;
	char *copy = NULL;
	size_t idx = 0;
	int oom = 0;

	memset(out, 0, sizeof(*out));
	if (raw == NULL || len == 0) {
		snprintf(err, errlen, "empty message");
		return -1;
	}
	extended_charconv = inbox_charconv;
	out->msg.kind = INBOX_MESSAGE;
	out->msg.raw = raw;
	out->msg.raw_len = len < INBOX_RAW_MAX ? len : INBOX_RAW_MAX;

	/* libetpan reads a line only up to its line end: give the last one
	 * (a header cut short, say) an end */
	src = raw;
	if (raw[len - 1] != '\n') {
		if ((copy = malloc(len + 2)) == NULL) {
			oom = 1;
			goto done;
		}
		memcpy(copy, raw, len);
		memcpy(copy + len, "\r\n", 2);
		src = copy;
		len += 2;
	}
	if (mailmime_parse(src, len, &idx, &mime) != MAILIMF_NO_ERROR ||
	    mime == NULL) {
		fallback_text(out, src, len, &oom);
		goto done;
	}
	if (mime->mm_type == MAILMIME_MESSAGE)
		read_headers(out, mime->mm_data.mm_message.mm_fields, &oom);

	memset(&fd, 0, sizeof(fd));
	walk(mime, 0, &fd);
	/* a report is a report even when its machine part is missing */
	if (fd.report_dsn || (fd.dsn != NULL && !fd.report_mdn)) {
		out->msg.kind = INBOX_DSN;
		if (fd.dsn != NULL)
			read_dsn(out, fd.dsn, &oom);
	} else if (fd.report_mdn || fd.mdn != NULL) {
		out->msg.kind = INBOX_MDN;
		if (fd.mdn != NULL)
			read_mdn(out, fd.mdn, &oom);
	}
	if (fd.plain != NULL)
		part_text(fd.plain, &t);
	else if (fd.html != NULL) {
		struct sbuf h = { 0 };

		part_text(fd.html, &h);
		if (h.len > 0)
			html_text(h.s, h.len, &t);
		t.oom |= h.oom;
		free(h.s);
	}
	out->msg.text = keep_sb(out, &t, &oom);
	mailmime_free(mime);
done:
	free(copy);
	if (oom) {
		inbox_parsed_free(out);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

void
inbox_parsed_free(struct inbox_parsed *out)
{
	if (out == NULL)
		return;
	for (size_t i = 0; i < out->nstrs; i++)
		free(out->strs[i]);
	free(out->strs);
	free(out->rcpts);
	memset(out, 0, sizeof(*out));
}
