/*
 * contacts.c - the contact directory: CSV in, struct contact_list out.
 *
 * Reads the directory of CONTRACT.md ("Contact directory (CSV)"): UTF-8
 * (with or without a BOM) or CP932, RFC 4180 quoting, columns found by
 * header name.  The whole buffer is decoded first, so everything after
 * that sees UTF-8 only; a small RFC 4180 reader then hands out one record
 * at a time, and each row is checked field by field.
 *
 * Promises:
 *  1. All or nothing: a directory is returned only when no row is bad;
 *     otherwise the caller's list stays empty.
 *  2. Every bad field of every row is reported, as
 *     "FILE:LINE: column 'NAME': reason ('value')", LINE being the
 *     physical line the row starts on (line breaks inside quotes counted).
 *     After 1000 errors the rest of the file is not checked.
 *  3. No string returned carries a control character, so an address can
 *     go into a mail header and a number into an AT command as they are.
 *     Phone numbers come out in E.164, mail domains in lower case, groups
 *     joined by ';' with empties and repeats dropped.
 *  4. Quoted values in messages have control characters escaped, so a
 *     hostile field cannot forge or break a message line.
 *
 * State: none between calls.  Everything allocated here belongs to the
 * returned contact_list and is released by contacts_free().
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

#define CONTACTS_MAX_FILE	(64L * 1024 * 1024)	/* contacts_load */
#define CONTACTS_MAX_ERRORS	1000	/* then stop checking */
#define CONTACTS_MAX_TEXT	256	/* name, org: code points */
#define GROUP_MAX		64	/* one group name: code points */
#define POLICY_MAX		32
#define ID_MAX			64
#define ADDR_MAX		254	/* RFC 5321 path limit less <> */
#define E164_MIN		8	/* digits after '+' */
#define E164_MAX		15
#define SHOW_MAX		60	/* bytes of a value quoted in messages */
#define SHOW_BUF		(SHOW_MAX + 8)

enum col {
	COL_ID,
	COL_NAME,
	COL_ORG,
	COL_GROUPS,
	COL_MAIL,
	COL_LGWAN,
	COL_FAX,
	COL_SMS,
	COL_POLICY,
	COL_RELAY,		/* (later): accepted and ignored */
	COL_COUNT
};

static const char *const col_names[COL_COUNT] = {
	"id", "name", "org", "groups", "mail", "lgwan", "fax", "sms",
	"policy", "relay"
};

/* ---- UTF-8 ------------------------------------------------------------ */

/*
 * Decode the UTF-8 sequence at s (n > 0 bytes available): the code point,
 * or -1 when it is malformed, truncated, overlong, a surrogate or beyond
 * U+10FFFF.  *adv is the number of bytes taken (1 when malformed).
 */
static long
utf8_next(const unsigned char *s, size_t n, size_t *adv)
{
	size_t need, i;
	long c;

	*adv = 1;
	if (s[0] < 0x80)
		return s[0];
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		need = 1;
		c = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		need = 2;
		c = s[0] & 0x0F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		need = 3;
		c = s[0] & 0x07;
	} else
		return -1;
	if (n < need + 1)
		return -1;
	for (i = 1; i <= need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return -1;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if ((need == 2 && c < 0x800) ||
	    (need == 3 && (c < 0x10000 || c > 0x10FFFF)) ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return -1;
	*adv = need + 1;
	return c;
}

/* The offset of the first byte of s that is not UTF-8, or len. */
static size_t
utf8_bad(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, adv;

	while (i < len) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if (utf8_next(u + i, len - i, &adv) < 0)
			return i;
		i += adv;
	}
	return len;
}

/* The number of code points in a valid UTF-8 string. */
static size_t
utf8_len(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* The 1-based line of byte off in data. */
static int
line_of(const char *data, size_t off)
{
	const char *p = data, *end = data + off, *nl;
	int line = 1;

	while (p < end && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		line++;
		p = nl + 1;
	}
	return line;
}

/*
 * Render at most SHOW_MAX bytes of s into buf (SHOW_BUF bytes) for a
 * message: control characters and bytes that are not UTF-8 are escaped,
 * so a value can never break the "FILE:LINE: message" line it sits in.
 */
static const char *
show(const char *s, size_t len, char *buf)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, adv, tn;
	char tmp[12];
	long c;

	while (i < len) {
		c = utf8_next(u + i, len - i, &adv);
		if (c < 0)
			tn = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02X",
			    u[i]);
		else if (c == '\r')
			tn = (size_t)snprintf(tmp, sizeof(tmp), "\\r");
		else if (c == '\n')
			tn = (size_t)snprintf(tmp, sizeof(tmp), "\\n");
		else if (c == '\t')
			tn = (size_t)snprintf(tmp, sizeof(tmp), "\\t");
		else if (c < 0x20 || c == 0x7F)
			tn = (size_t)snprintf(tmp, sizeof(tmp), "\\x%02lX", c);
		else if (c >= 0x80 && c < 0xA0)
			tn = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04lX", c);
		else {
			memcpy(tmp, u + i, adv);
			tn = adv;
		}
		if (o + tn > SHOW_MAX) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, tmp, tn);
		o += tn;
		i += adv;
	}
	buf[o] = '\0';
	return buf;
}

/*
 * Why a field may not be used as it is: a NUL, a line break, a tab or
 * another C0/C1 control character; NULL when it has none.  Fields may hold
 * a NUL of their own, hence the explicit length.
 */
static const char *
field_control(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		if (u[i] == '\0')
			return "contains a NUL byte";
		if (u[i] == '\r' || u[i] == '\n')
			return "contains a line break";
		if (u[i] == '\t')
			return "contains a tab";
		if (u[i] < 0x20 || u[i] == 0x7F ||
		    (u[i] == 0xC2 && i + 1 < len && u[i + 1] >= 0x80 &&
		    u[i + 1] < 0xA0))
			return "contains a control character";
	}
	return NULL;
}

/* ---- the small validators of the public API ---------------------------- */

int
contacts_encoding_parse(const char *s, enum contacts_encoding *enc)
{
	static const char *utf8[] = { "utf-8", "utf8" };
	static const char *cp932[] = { "cp932", "shift_jis", "shift-jis",
	    "sjis", "ms932", "windows-31j" };

	if (strcasecmp(s, "auto") == 0) {
		*enc = CONTACTS_ENC_AUTO;
		return 0;
	}
	for (size_t i = 0; i < sizeof(utf8) / sizeof(utf8[0]); i++)
		if (strcasecmp(s, utf8[i]) == 0) {
			*enc = CONTACTS_ENC_UTF8;
			return 0;
		}
	/* Excel's "Shift_JIS" is really CP932, so every name means CP932. */
	for (size_t i = 0; i < sizeof(cp932) / sizeof(cp932[0]); i++)
		if (strcasecmp(s, cp932[i]) == 0) {
			*enc = CONTACTS_ENC_CP932;
			return 0;
		}
	return -1;
}

int
contacts_valid_id(const char *id)
{
	size_t n = 0;

	for (; id[n] != '\0'; n++) {
		unsigned char c = (unsigned char)id[n];

		if (n >= ID_MAX || !(isascii(c) && (isalnum(c) ||
		    c == '.' || c == '_' || c == '-')))
			return 0;
	}
	return n > 0;
}

/* 1 if s is 1-32 of A-Z a-z 0-9 _ - (a policy name). */
static int
valid_policy(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];

		if (n >= POLICY_MAX || !(isascii(c) && (isalnum(c) ||
		    c == '_' || c == '-')))
			return 0;
	}
	return n > 0;
}

/* 1 if c is RFC 5322 atext. */
static int
is_atext(unsigned char c)
{
	return (isascii(c) && isalnum(c)) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int
contacts_valid_address(const char *addr, const char **why)
{
	const char *at, *local, *dom, *p, *label;
	size_t n = strlen(addr), llen, nlabels = 0;

	if (n == 0)
		return *why = "is empty", 0;
	if (strpbrk(addr, "\r\n") != NULL)
		return *why = "contains a line break", 0;
	if (strpbrk(addr, "<>") != NULL)
		return *why = "display names are not allowed: give the bare "
		    "address (user@example.jp)", 0;
	if (strchr(addr, '"') != NULL)
		return *why = "quoted local parts are not allowed", 0;
	for (p = addr; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7F)
			return *why = "contains a control character", 0;
		if (c == ' ')
			return *why = "contains a space", 0;
		if (c >= 0x80)
			return *why = "contains non-ASCII characters "
			    "(full-width or internationalised)", 0;
	}
	if (n > ADDR_MAX)
		return *why = "is longer than 254 characters", 0;
	if ((at = strchr(addr, '@')) == NULL)
		return *why = "has no '@'", 0;
	if (strchr(at + 1, '@') != NULL)
		return *why = "has more than one '@' (give one address)", 0;

	local = addr;
	llen = (size_t)(at - addr);
	if (llen == 0)
		return *why = "has nothing before the '@'", 0;
	if (llen > 64)
		return *why = "has more than 64 characters before the '@'", 0;
	for (size_t i = 0; i < llen; i++) {
		if (local[i] == '.') {
			if (i == 0 || i + 1 == llen || local[i + 1] == '.')
				return *why = "has a leading, trailing or "
				    "double '.' before the '@'", 0;
		} else if (!is_atext((unsigned char)local[i]))
			return *why = "has a character before the '@' that "
			    "an address may not contain", 0;
	}

	dom = at + 1;
	if (*dom == '\0')
		return *why = "has no domain after the '@'", 0;
	if (*dom == '[')
		return *why = "address literals ([192.0.2.1]) are not "
		    "allowed", 0;
	for (label = dom;; label = p + 1) {
		size_t len;

		for (p = label; *p != '\0' && *p != '.'; p++)
			if (!(isascii((unsigned char)*p) &&
			    (isalnum((unsigned char)*p) || *p == '-')))
				return *why = "has a domain that is not a host "
				    "name (letters, digits, '-' and '.')", 0;
		len = (size_t)(p - label);
		if (len == 0 || len > 63 || label[0] == '-' ||
		    label[len - 1] == '-')
			return *why = "has a domain that is not a host name "
			    "(empty, too long, or '-' at the start or end of "
			    "a label)", 0;
		nlabels++;
		if (*p == '\0')
			break;
	}
	if (nlabels < 2)
		return *why = "has a domain without a '.' (a full domain "
		    "like example.jp is needed)", 0;
	return 1;
}

/*
 * The separators dropped from phone numbers: the space and hyphen and the
 * forms an IME or a word processor puts in their place.
 */
static int
phone_separator(long c)
{
	switch (c) {
	case 0x0020:	/* space */
	case 0x00A0:	/* no-break space */
	case 0x3000:	/* ideographic (full-width) space */
	case 0x002D:	/* hyphen-minus */
	case 0x2010:	/* hyphen */
	case 0x2011:	/* non-breaking hyphen */
	case 0x2012:	/* figure dash */
	case 0x2013:	/* en dash */
	case 0x2014:	/* em dash (SJIS 0x815C) */
	case 0x2015:	/* horizontal bar (CP932 0x815C) */
	case 0x2212:	/* minus sign (SJIS 0x817C) */
	case 0xFE63:	/* small hyphen-minus */
	case 0xFF0D:	/* full-width hyphen-minus (CP932 0x817C) */
	case 0x30FC:	/* prolonged sound mark: a Japanese IME's "-" */
	case 0xFF70:	/* its half-width form */
		return 1;
	}
	return 0;
}

int
contacts_normalise_phone(const char *in, const char *country_code,
    char *out, size_t outlen, const char **why)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), i = 0, adv, nd = 0, cclen, total;
	int plus = 0, toolong = 0, badutf8 = 0, at = 0, letters = 0;
	int parens = 0, other = 0;
	char digits[E164_MAX + 2];
	long c;

	while (i < n) {
		c = utf8_next(s + i, n - i, &adv);
		i += adv;
		if (c < 0) {
			badutf8 = 1;
			continue;
		}
		if (phone_separator(c))
			continue;
		if (c >= 0xFF10 && c <= 0xFF19)	/* full-width digits */
			c = '0' + (c - 0xFF10);
		else if (c == 0xFF0B)		/* full-width plus */
			c = '+';
		if (c >= '0' && c <= '9') {
			if (nd < sizeof(digits))
				digits[nd++] = (char)c;
			else
				toolong = 1;
		} else if (c == '+') {
			/* Only the first thing in the number: "+++" is how a
			 * modem is told to leave data mode. */
			if (nd == 0 && !plus)
				plus = 1;
			else
				at = 1;
		} else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) ||
		    c == ';' || c == '*' || c == '#' || c == ',' || c == '"')
			at = 1;
		else if ((c < 0x80 && isalpha((int)c)) ||
		    (c >= 0xFF21 && c <= 0xFF3A) ||
		    (c >= 0xFF41 && c <= 0xFF5A))
			letters = 1;
		else if (c == '(' || c == ')' || c == 0xFF08 || c == 0xFF09)
			parens = 1;
		else
			other = 1;
	}
	if (badutf8)
		return *why = "is not valid UTF-8", -1;
	if (at)
		return *why = "contains AT-command characters", -1;
	if (letters)
		return *why = "contains letters", -1;
	if (parens)
		return *why = "contains parentheses (write 03-1234-5678 or "
		    "+81 3 1234 5678)", -1;
	if (other)
		return *why = "contains characters other than digits, '+', "
		    "spaces and hyphens", -1;
	if (nd == 0)
		return *why = "has no digits", -1;

	if (plus) {
		if (digits[0] == '0')
			return *why = "has a 0 after the '+' (a country code "
			    "never starts with 0)", -1;
		if (nd < E164_MIN)
			return *why = "is too short (E.164 numbers have 8 to "
			    "15 digits)", -1;
		if (nd > E164_MAX || toolong)
			return *why = "is too long (E.164 numbers have at most "
			    "15 digits)", -1;
		if (outlen < nd + 2)
			return *why = "does not fit the output buffer", -1;
		out[0] = '+';
		memcpy(out + 1, digits, nd);
		out[nd + 1] = '\0';
		return 0;
	}
	if (digits[0] != '0')
		return *why = "is neither national (a leading 0) nor "
		    "international ('+' and the country code)", -1;
	if (nd > 1 && digits[1] == '0')
		return *why = "starts with the international prefix 00: write "
		    "'+' and the country code instead", -1;
	if (country_code == NULL || *country_code == '\0')
		return *why = "is a national number (a leading 0) but no "
		    "country_code is configured", -1;
	if (*country_code == '+')
		country_code++;
	cclen = strlen(country_code);
	if (cclen < 1 || cclen > 3 || country_code[0] == '0' ||
	    strspn(country_code, "0123456789") != cclen)
		return *why = "cannot be made international: country_code is "
		    "not 1-3 digits", -1;
	/* Japan dials abroad with 010; no area code starts with it. */
	if (strcmp(country_code, "81") == 0 && nd > 2 && digits[1] == '1' &&
	    digits[2] == '0')
		return *why = "starts with the international prefix 010: write "
		    "'+' and the country code instead", -1;
	total = cclen + nd - 1;
	if (nd == 1 || total < E164_MIN)
		return *why = "is too short (E.164 numbers have 8 to 15 "
		    "digits)", -1;
	if (total > E164_MAX || toolong)
		return *why = "is too long (E.164 numbers have at most 15 "
		    "digits)", -1;
	if (outlen < total + 2)
		return *why = "does not fit the output buffer", -1;
	out[0] = '+';
	memcpy(out + 1, country_code, cclen);
	memcpy(out + 1 + cclen, digits + 1, nd - 1);
	out[total + 1] = '\0';
	return 0;
}

/* ---- decoding ----------------------------------------------------------- */

/*
 * Convert CP932 to UTF-8 with iconv into an allocated *out.  0 on
 * success; -1 at an invalid or truncated character (*badoff is where it
 * starts); -2 when iconv cannot work at all (errno set).
 */
static int
cp932_to_utf8(const char *in, size_t len, char **out, size_t *outlen,
    size_t *badoff)
{
	iconv_t cd;
	char *buf, *nbuf, *ip, *op;
	size_t il, ol, cap, used;
	int rc = -2, saved;

	if ((cd = iconv_open("UTF-8", "CP932")) == (iconv_t)-1)
		return -2;
	cap = len + len / 2 + 16;
	if ((buf = malloc(cap)) == NULL) {
		iconv_close(cd);
		return -2;
	}
	ip = (char *)(uintptr_t)in;	/* iconv's prototype lacks const */
	il = len;
	op = buf;
	ol = cap - 1;
	for (;;) {
		if (iconv(cd, &ip, &il, &op, &ol) != (size_t)-1) {
			rc = 0;
			break;
		}
		if (errno == EILSEQ || errno == EINVAL) {
			*badoff = (size_t)(ip - in);
			rc = -1;
			break;
		}
		if (errno != E2BIG)
			break;
		used = (size_t)(op - buf);
		if ((nbuf = realloc(buf, cap * 2)) == NULL)
			break;
		buf = nbuf;
		cap *= 2;
		op = buf + used;
		ol = cap - used - 1;
	}
	saved = errno;
	iconv_close(cd);
	if (rc != 0) {
		free(buf);
		errno = saved;
		return rc;
	}
	*op = '\0';
	*out = buf;
	*outlen = (size_t)(op - buf);
	return 0;
}

/*
 * Decode data into UTF-8: *text is data itself (UTF-8, past any BOM) or
 * an allocated copy in *owned (CP932; the caller frees it).  A file with a
 * BOM declares itself UTF-8 and is never retried as CP932.  -1 after
 * reporting the first bad byte and its line.
 */
static int
decode(const char *file, const char *data, size_t len,
    enum contacts_encoding enc, const char **text, size_t *tlen,
    char **owned, struct conf_msgs *msgs)
{
	size_t skip = 0, bad, u8bad = 0, cpbad = 0, olen;
	int bom, rc;

	*owned = NULL;
	bom = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0;
	if (enc != CONTACTS_ENC_CP932) {
		skip = bom ? 3 : 0;
		if ((bad = utf8_bad(data + skip, len - skip)) == len - skip) {
			*text = data + skip;
			*tlen = len - skip;
			return 0;
		}
		u8bad = skip + bad;
		if (enc == CONTACTS_ENC_UTF8 || bom) {
			conf_msgs_add(msgs, 1, file, line_of(data, u8bad),
			    "invalid UTF-8 (byte 0x%02X)%s", (unsigned char)
			    data[u8bad], bom ? " in a file that starts with "
			    "a UTF-8 byte order mark" : "; is the file CP932 "
			    "(--encoding cp932)?");
			return -1;
		}
	}
	rc = cp932_to_utf8(data, len, owned, &olen, &cpbad);
	if (rc == -2) {
		conf_msgs_add(msgs, 1, file, 0, "cannot convert from CP932: "
		    "%s", strerror(errno));
		return -1;
	}
	if (rc == -1) {
		int l8 = line_of(data, u8bad), lcp = line_of(data, cpbad);

		if (enc == CONTACTS_ENC_CP932)
			conf_msgs_add(msgs, 1, file, lcp, "invalid CP932 "
			    "(byte 0x%02X)%s", (unsigned char)data[cpbad],
			    bom ? "; the file starts with a UTF-8 byte order "
			    "mark: is it UTF-8?" : "");
		else if (l8 == lcp)
			conf_msgs_add(msgs, 1, file, lcp, "neither UTF-8 nor "
			    "CP932 (byte 0x%02X)", (unsigned char)data[cpbad]);
		else
			conf_msgs_add(msgs, 1, file, lcp, "neither UTF-8 nor "
			    "CP932 (byte 0x%02X; the first byte that is not "
			    "UTF-8 is on line %d)", (unsigned char)data[cpbad],
			    l8);
		return -1;
	}
	/* iconv's output is UTF-8 by construction; make sure of it. */
	if (utf8_bad(*owned, olen) != olen) {
		conf_msgs_add(msgs, 1, file, 0, "CP932 conversion produced "
		    "invalid UTF-8");
		free(*owned);
		*owned = NULL;
		return -1;
	}
	*text = *owned;
	*tlen = olen;
	return 0;
}

/* ---- RFC 4180 records --------------------------------------------------- */

/*
 * One CSV record: the unescaped, space-trimmed fields, each NUL-terminated
 * in buf.  A field may hold a NUL of its own, so flen is authoritative.
 */
struct record {
	char	*buf;
	size_t	 len, cap;
	size_t	*off;		/* where each field starts in buf */
	size_t	*flen;
	size_t	 nf, capf;
	int	 line;		/* the physical line it starts on */
};

struct csv {
	const char	*p, *end;
	int		 line;	/* the physical line p is on */
};

static int
rec_put(struct record *r, const char *s, size_t n)
{
	char *nbuf;
	size_t ncap;

	if (r->cap - r->len < n + 1) {
		for (ncap = r->cap ? r->cap : 256; ncap - r->len < n + 1;)
			ncap *= 2;
		if ((nbuf = realloc(r->buf, ncap)) == NULL)
			return -1;
		r->buf = nbuf;
		r->cap = ncap;
	}
	memcpy(r->buf + r->len, s, n);
	r->len += n;
	return 0;
}

/* Start a new field at the end of buf. */
static int
rec_field(struct record *r)
{
	size_t *noff, *nlen, ncap;

	if (r->nf == r->capf) {
		ncap = r->capf ? r->capf * 2 : 16;
		if ((noff = realloc(r->off, ncap * sizeof(*noff))) == NULL)
			return -1;
		r->off = noff;
		if ((nlen = realloc(r->flen, ncap * sizeof(*nlen))) == NULL)
			return -1;
		r->flen = nlen;
		r->capf = ncap;
	}
	r->off[r->nf++] = r->len;
	return 0;
}

/* Close the current field: trim ASCII spaces and NUL-terminate it. */
static int
rec_end_field(struct record *r)
{
	size_t i = r->nf - 1, o = r->off[i], n = r->len - o;

	if (rec_put(r, "", 1) == -1)	/* the NUL, so the next field
					 * cannot overwrite it */
		return -1;
	while (n > 0 && r->buf[o] == ' ') {
		o++;
		n--;
	}
	while (n > 0 && r->buf[o + n - 1] == ' ')
		n--;
	r->off[i] = o;
	r->flen[i] = n;
	r->buf[o + n] = '\0';
	return 0;
}

static void
rec_free(struct record *r)
{
	free(r->buf);
	free(r->off);
	free(r->flen);
	memset(r, 0, sizeof(*r));
}

/* 1 if every field of r is empty: a blank line, or ",,," from Excel. */
static int
rec_blank(const struct record *r)
{
	for (size_t i = 0; i < r->nf; i++)
		if (r->flen[i] != 0)
			return 0;
	return 1;
}

/*
 * Read the next record into r.  1: a record; 0: the end of the data; -1:
 * malformed, with the reason in *err at line *eline (the reader has moved
 * past the bad line, so the caller may go on); -2: out of memory.
 */
static int
csv_next(struct csv *cs, struct record *r, const char **err, int *eline)
{
	const char *p = cs->p, *e = cs->end, *s, *q;
	int fline;

	r->len = r->nf = 0;
	r->line = cs->line;
	if (p >= e)
		return 0;
	for (;;) {
		if (rec_field(r) == -1)
			return -2;
		for (q = p; q < e && *q == ' '; q++)
			;
		if (q < e && *q == '"') {
			fline = cs->line;
			p = q + 1;
			for (;;) {
				for (s = p; p < e && *p != '"'; p++)
					if (*p == '\n')
						cs->line++;
				if (rec_put(r, s, (size_t)(p - s)) == -1)
					return -2;
				if (p >= e) {
					*err = "unterminated quoted field "
					    "(a '\"' is missing)";
					*eline = fline;
					cs->p = e;
					return -1;
				}
				if (p + 1 < e && p[1] == '"') {
					if (rec_put(r, "\"", 1) == -1)
						return -2;
					p += 2;
					continue;
				}
				p++;
				break;
			}
			while (p < e && *p == ' ')
				p++;
		} else {
			for (s = p; p < e && *p != ',' && *p != '\n' &&
			    *p != '\r' && *p != '"'; p++)
				;
			if (rec_put(r, s, (size_t)(p - s)) == -1)
				return -2;
		}
		if (rec_end_field(r) == -1)
			return -2;
		if (p >= e) {
			cs->p = p;
			return 1;
		}
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '\n' || (*p == '\r' && p + 1 < e && p[1] == '\n')) {
			p += *p == '\r' ? 2 : 1;
			cs->line++;
			cs->p = p;
			return 1;
		}
		if (*p == '\r')
			*err = "a carriage return without a line feed (line "
			    "ends must be CRLF or LF)";
		else if (*p == '"')
			*err = "a '\"' inside an unquoted field (quote the "
			    "whole field and double the '\"')";
		else
			*err = "text after the closing '\"' of a quoted field";
		*eline = cs->line;
		/* Skip to the next line so the rows after it are checked. */
		if ((q = memchr(p, '\n', (size_t)(e - p))) == NULL)
			cs->p = e;
		else {
			cs->p = q + 1;
			cs->line++;
		}
		return -1;
	}
}

/* ---- ids ---------------------------------------------------------------- */

/* An open-addressing hash of the ids seen so far, keyed case-blind. */
struct idslot {
	char	*id;		/* owned; NULL: empty slot */
	int	 line;
};

struct idtab {
	struct idslot	*v;
	size_t		 cap, n;	/* cap: a power of two */
};

static size_t
id_hash(const char *s)
{
	size_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)tolower((unsigned char)*s)) *
		    16777619u;
	return h;
}

static int
idtab_grow(struct idtab *t)
{
	struct idslot *nv;
	size_t ncap = t->cap ? t->cap * 2 : 256, j;

	if ((nv = calloc(ncap, sizeof(*nv))) == NULL)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->v[i].id == NULL)
			continue;
		for (j = id_hash(t->v[i].id) & (ncap - 1); nv[j].id != NULL;
		    j = (j + 1) & (ncap - 1))
			;
		nv[j] = t->v[i];
	}
	free(t->v);
	t->v = nv;
	t->cap = ncap;
	return 0;
}

/*
 * Add id (from line) to t.  0: new; 1: already there (*first is it);
 * 2: new, but another id differs from it only in case (*first is that
 * one); -1: out of memory.
 */
static int
idtab_add(struct idtab *t, const char *id, int line,
    const struct idslot **first)
{
	const struct idslot *ci = NULL;
	size_t j;

	if (2 * (t->n + 1) > t->cap && idtab_grow(t) == -1)
		return -1;
	for (j = id_hash(id) & (t->cap - 1); t->v[j].id != NULL;
	    j = (j + 1) & (t->cap - 1)) {
		if (strcmp(t->v[j].id, id) == 0) {
			*first = &t->v[j];
			return 1;
		}
		if (ci == NULL && strcasecmp(t->v[j].id, id) == 0)
			ci = &t->v[j];
	}
	if ((t->v[j].id = strdup(id)) == NULL)
		return -1;
	t->v[j].line = line;
	t->n++;
	if (ci != NULL) {
		*first = ci;
		return 2;
	}
	return 0;
}

static void
idtab_free(struct idtab *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->v[i].id);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* ---- rows --------------------------------------------------------------- */

/* Everything one contacts_parse() call works with. */
struct parse {
	const char		*file;
	const char		*country_code;
	struct conf_msgs	*msgs;
	int			 map[COL_COUNT]; /* field index, -1 */
	size_t			 ncols;
	struct contact_list	 list;
	size_t			 cap;
	struct idtab		 ids;
	size_t			 errors;
	int			 nomem;
};

static void perr(struct parse *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Report an error at line and count it. */
static void
perr(struct parse *ps, int line, const char *fmt, ...)
{
	char body[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	conf_msgs_add(ps->msgs, 1, ps->file, line, "%s", body);
	ps->errors++;
}

/* Report a bad value of column col with its reason. */
static void
bad_field(struct parse *ps, int line, enum col col, const char *why,
    const char *s, size_t len)
{
	char sv[SHOW_BUF];

	perr(ps, line, "column '%s': %s ('%s')", col_names[col], why,
	    show(s, len, sv));
}

static char *
dup_field(struct parse *ps, const char *s, size_t len)
{
	char *d;

	if ((d = strndup(s, len)) == NULL)
		ps->nomem = 1;
	return d;
}

static void
contact_clear(struct contact *c)
{
	free(c->id);
	free(c->name);
	free(c->org);
	free(c->groups);
	free(c->mail);
	free(c->lgwan);
	free(c->fax);
	free(c->sms);
	free(c->policy);
	memset(c, 0, sizeof(*c));
}

/*
 * Normalise a groups field into an allocated "a;b" (*out NULL when no
 * name is left).  -1 with *why and the bad name in *bad and *badlen, or -2
 * when out of memory.
 */
static int
groups_norm(const char *s, size_t len, char **out, const char **why,
    const char **bad, size_t *badlen)
{
	const unsigned char *u;
	const char *a, *b, *end = s + len;
	char *buf, *tok;
	size_t o = 0, n, i, adv, tl;
	long c;

	*out = NULL;
	if ((buf = malloc(len + 1)) == NULL)
		return -2;
	for (a = s;; a = b + 1) {
		if ((b = memchr(a, ';', (size_t)(end - a))) == NULL)
			b = end;
		while (a < b && *a == ' ')
			a++;
		n = (size_t)(b - a);
		while (n > 0 && a[n - 1] == ' ')
			n--;
		if (n == 0)
			goto next;
		*bad = a;
		*badlen = n;
		u = (const unsigned char *)a;
		for (i = 0; i < n; i += adv) {
			c = utf8_next(u + i, n - i, &adv);
			if (c == ',' || c == ':')
				*why = "group names may not contain ',' or ':'";
			else if (c == 0xFF0C || c == 0xFF1A || c == 0xFF1B)
				*why = "a group name contains a full-width "
				    "'\xEF\xBC\x9B', '\xEF\xBC\x9A' or "
				    "'\xEF\xBC\x8C' (separate groups with "
				    "';')";
			else
				continue;
			free(buf);
			return -1;
		}
		if (utf8_len(a, n) > GROUP_MAX) {
			*why = "a group name is longer than 64 characters";
			free(buf);
			return -1;
		}
		/* Drop a repeat. */
		for (tok = buf; tok < buf + o; tok += tl + 1) {
			tl = strcspn(tok, ";");
			if (tl == n && memcmp(tok, a, n) == 0)
				break;
		}
		if (tok >= buf + o) {
			if (o > 0)
				buf[o++] = ';';
			memcpy(buf + o, a, n);
			o += n;
			buf[o] = '\0';
		}
next:
		if (b == end)
			break;
	}
	if (o == 0) {
		free(buf);
		return 0;
	}
	buf[o] = '\0';
	*out = buf;
	return 0;
}

/* Check one id; 0 if it may be used. */
static int
row_id(struct parse *ps, int line, const char *s, size_t len)
{
	const struct idslot *first;
	const char *why;
	char sv[SHOW_BUF];

	if (len == 0) {
		perr(ps, line, "column 'id': is empty");
		return -1;
	}
	if ((why = field_control(s, len)) != NULL) {
		bad_field(ps, line, COL_ID, why, s, len);
		return -1;
	}
	if (!contacts_valid_id(s)) {
		bad_field(ps, line, COL_ID, "is not 1-64 of A-Z a-z 0-9 . _ -",
		    s, len);
		return -1;
	}
	switch (idtab_add(&ps->ids, s, line, &first)) {
	case -1:
		ps->nomem = 1;
		return -1;
	case 1:
		perr(ps, line, "column 'id': duplicate id '%s' (first on line "
		    "%d)", show(s, len, sv), first->line);
		return -1;
	case 2:
		conf_msgs_add(ps->msgs, 0, ps->file, line, "column 'id': '%s' "
		    "differs only in case from '%s' on line %d", s, first->id,
		    first->line);
		break;
	}
	return 0;
}

/* Check and store one field of column col into c; -1 if it is bad. */
static int
row_field(struct parse *ps, struct contact *c, enum col col, const char *s,
    size_t len)
{
	char phone[E164_MAX + 2], *gr, *at;
	const char *why, *bad;
	size_t badlen;
	int rc;

	if (col == COL_FAX || col == COL_SMS) {
		/* To a modem, a control character is part of a command. */
		if (field_control(s, len) != NULL)
			why = "contains AT-command characters";
		else if (contacts_normalise_phone(s, ps->country_code, phone,
		    sizeof(phone), &why) == 0)
			why = NULL;
		if (why != NULL) {
			bad_field(ps, c->line, col, why, s, len);
			return -1;
		}
		if (col == COL_FAX)
			c->fax = dup_field(ps, phone, strlen(phone));
		else
			c->sms = dup_field(ps, phone, strlen(phone));
		return 0;
	}
	if ((why = field_control(s, len)) != NULL) {
		bad_field(ps, c->line, col, why, s, len);
		return -1;
	}
	switch (col) {
	case COL_NAME:
	case COL_ORG:
		if (utf8_len(s, len) > CONTACTS_MAX_TEXT) {
			bad_field(ps, c->line, col, "is longer than 256 "
			    "characters", s, len);
			return -1;
		}
		if (col == COL_NAME)
			c->name = dup_field(ps, s, len);
		else
			c->org = dup_field(ps, s, len);
		return 0;
	case COL_GROUPS:
		if ((rc = groups_norm(s, len, &gr, &why, &bad, &badlen)) == -2)
			ps->nomem = 1;
		if (rc == -1)
			bad_field(ps, c->line, col, why, bad, badlen);
		c->groups = gr;
		return rc == 0 ? 0 : -1;
	case COL_MAIL:
	case COL_LGWAN:
		if (!contacts_valid_address(s, &why)) {
			bad_field(ps, c->line, col, why, s, len);
			return -1;
		}
		if ((at = dup_field(ps, s, len)) == NULL)
			return -1;
		for (char *p = strchr(at, '@') + 1; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		if (col == COL_MAIL)
			c->mail = at;
		else
			c->lgwan = at;
		return 0;
	case COL_POLICY:
		if (!valid_policy(s)) {
			bad_field(ps, c->line, col, "is not 1-32 of A-Z a-z "
			    "0-9 _ -", s, len);
			return -1;
		}
		c->policy = dup_field(ps, s, len);
		return 0;
	default:
		return 0;
	}
}

/* Warn when c has fewer than two contact means (the sector rule). */
static void
row_means(struct parse *ps, const struct contact *c)
{
	const char *have[4];
	size_t n = 0;

	if (c->mail != NULL)
		have[n++] = "mail";
	if (c->lgwan != NULL)
		have[n++] = "lgwan";
	if (c->fax != NULL)
		have[n++] = "fax";
	if (c->sms != NULL)
		have[n++] = "sms";
	if (n == 0)
		conf_msgs_add(ps->msgs, 0, ps->file, c->line, "recipient '%s' "
		    "has no contact means; the sector rule is two or more",
		    c->id);
	else if (n == 1)
		conf_msgs_add(ps->msgs, 0, ps->file, c->line, "recipient '%s' "
		    "has only one contact means (%s); the sector rule is two "
		    "or more", c->id, have[0]);
}

/* Check one data row and, when it is good, add it to the list. */
static void
row_parse(struct parse *ps, const struct record *r)
{
	struct contact c, *nv;
	const char *s;
	size_t len, ncap;
	int bad = 0, col, i;

	memset(&c, 0, sizeof(c));
	c.line = r->line;
	for (col = 0; col < COL_RELAY; col++) {
		if ((i = ps->map[col]) < 0)
			continue;
		s = r->buf + r->off[i];
		len = r->flen[i];
		if (col == COL_ID) {
			if (row_id(ps, c.line, s, len) == -1)
				bad = 1;
			else
				c.id = dup_field(ps, s, len);
		} else if (len == 0) {
			if (col == COL_NAME) {
				perr(ps, c.line, "column 'name': is empty "
				    "(every recipient needs a name)");
				bad = 1;
			}
		} else if (row_field(ps, &c, (enum col)col, s, len) == -1)
			bad = 1;
	}
	if (bad || ps->nomem) {
		contact_clear(&c);
		return;
	}
	if (ps->list.n == ps->cap) {
		ncap = ps->cap ? ps->cap * 2 : 64;
		if ((nv = realloc(ps->list.v, ncap * sizeof(*nv))) == NULL) {
			ps->nomem = 1;
			contact_clear(&c);
			return;
		}
		ps->list.v = nv;
		ps->cap = ncap;
	}
	ps->list.v[ps->list.n++] = c;
	row_means(ps, &c);
}

/* Map the header's columns; -1 after reporting every problem in it. */
static int
header_parse(struct parse *ps, const struct record *r)
{
	char sv[SHOW_BUF];
	size_t before = ps->errors;
	const char *s;
	size_t len;
	int col;

	for (col = 0; col < COL_COUNT; col++)
		ps->map[col] = -1;
	ps->ncols = r->nf;
	for (size_t i = 0; i < r->nf; i++) {
		s = r->buf + r->off[i];
		len = r->flen[i];
		if (len == 0) {
			perr(ps, r->line, "column %zu of the header has no "
			    "name", i + 1);
			continue;
		}
		for (col = 0; col < COL_COUNT; col++)
			if (strlen(col_names[col]) == len &&
			    strncasecmp(s, col_names[col], len) == 0)
				break;
		if (col == COL_COUNT)
			perr(ps, r->line, "unknown column '%s' (known: id, "
			    "name, org, groups, mail, lgwan, fax, sms, policy, "
			    "relay)", show(s, len, sv));
		else if (ps->map[col] >= 0)
			perr(ps, r->line, "duplicate column '%s' (columns %d "
			    "and %zu)", col_names[col], ps->map[col] + 1,
			    i + 1);
		else
			ps->map[col] = (int)i;
	}
	for (col = COL_ID; col <= COL_NAME; col++)
		if (ps->map[col] < 0)
			perr(ps, r->line, "missing required column '%s'",
			    col_names[col]);
	return ps->errors == before ? 0 : -1;
}

int
contacts_parse(const char *file, const char *data, size_t len,
    enum contacts_encoding enc, const char *country_code,
    struct contact_list *out, struct conf_msgs *msgs)
{
	struct parse ps;
	struct record r;
	struct csv cs;
	const char *text, *err;
	char *owned;
	size_t tlen;
	int rc, eline, hline;

	out->v = NULL;
	out->n = 0;
	if (decode(file, data, len, enc, &text, &tlen, &owned, msgs) == -1)
		return -1;

	memset(&ps, 0, sizeof(ps));
	memset(&r, 0, sizeof(r));
	ps.file = file;
	ps.country_code = country_code;
	ps.msgs = msgs;
	cs.p = text;
	cs.end = text + tlen;
	cs.line = 1;

	/* The header is the first record that is not blank. */
	while ((rc = csv_next(&cs, &r, &err, &eline)) == 1 && rec_blank(&r))
		;
	if (rc == 0)
		perr(&ps, 0, "no header row: the first line names the columns "
		    "(id,name,...)");
	else if (rc == -1)
		perr(&ps, eline, "%s", err);
	else if (rc == -2)
		ps.nomem = 1;
	if (rc != 1 || header_parse(&ps, &r) == -1)
		goto done;
	hline = r.line;

	while (ps.errors < CONTACTS_MAX_ERRORS && !ps.nomem) {
		if ((rc = csv_next(&cs, &r, &err, &eline)) == 0)
			break;
		if (rc == -2) {
			ps.nomem = 1;
			break;
		}
		if (rc == -1) {
			perr(&ps, eline, "%s", err);
			continue;
		}
		if (rec_blank(&r))
			continue;
		if (r.nf != ps.ncols) {
			perr(&ps, r.line, "the row has %zu fields, the header "
			    "has %zu", r.nf, ps.ncols);
			continue;
		}
		row_parse(&ps, &r);
	}
	if (ps.errors >= CONTACTS_MAX_ERRORS && cs.p < cs.end)
		conf_msgs_add(msgs, 1, file, cs.line, "too many errors; the "
		    "rest of the file was not checked");
	else if (ps.errors == 0 && !ps.nomem && ps.list.n == 0)
		conf_msgs_add(msgs, 0, file, hline, "no recipients: the "
		    "directory is empty");

done:
	if (ps.nomem)
		perr(&ps, 0, "out of memory");
	rec_free(&r);
	idtab_free(&ps.ids);
	free(owned);
	if (ps.errors > 0) {
		contacts_free(&ps.list);
		return -1;
	}
	*out = ps.list;
	return 0;
}

int
contacts_load(const char *path, enum contacts_encoding enc,
    const char *country_code, struct contact_list *out, struct conf_msgs *msgs)
{
	struct stat st;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd, rc;

	out->v = NULL;
	out->n = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		conf_msgs_add(msgs, 1, path, 0, "cannot open: %s",
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		conf_msgs_add(msgs, 1, path, 0, "cannot read: %s",
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (S_ISDIR(st.st_mode)) {
		conf_msgs_add(msgs, 1, path, 0, "cannot read: is a directory");
		close(fd);
		return -1;
	}
	if (S_ISREG(st.st_mode) && st.st_size > CONTACTS_MAX_FILE) {
		conf_msgs_add(msgs, 1, path, 0, "larger than 64 MB (%lld "
		    "bytes)", (long long)st.st_size);
		close(fd);
		return -1;
	}
	/* Read to the end rather than trusting st_size: pipes have none. */
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : (S_ISREG(st.st_mode) ?
			    (size_t)st.st_size + 65536 : 65536);
			if ((nbuf = realloc(buf, cap)) == NULL) {
				conf_msgs_add(msgs, 1, path, 0,
				    "out of memory");
				goto fail;
			}
			buf = nbuf;
		}
		if ((n = read(fd, buf + len, cap - len)) == -1) {
			if (errno == EINTR)
				continue;
			conf_msgs_add(msgs, 1, path, 0, "cannot read: %s",
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > (size_t)CONTACTS_MAX_FILE) {
			conf_msgs_add(msgs, 1, path, 0, "larger than 64 MB");
			goto fail;
		}
	}
	close(fd);
	rc = contacts_parse(path, buf, len, enc, country_code, out, msgs);
	free(buf);
	return rc;
fail:
	close(fd);
	free(buf);
	return -1;
}

/* ---- checks against the configuration ------------------------------------ */

/* 1 if domain is one of the comma-separated list or a subdomain of one. */
static int
domain_in(const char *domain, const char *list)
{
	size_t dl = strlen(domain), n;
	const char *p = list, *q;

	while (*p != '\0') {
		p += strspn(p, " \t,");
		q = p + strcspn(p, ",");
		n = (size_t)(q - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 0 && *p == '.') {	/* ".lg.jp" means lg.jp too */
			p++;
			n--;
		}
		if (n > 0 && ((dl == n && strncasecmp(domain, p, n) == 0) ||
		    (dl > n && domain[dl - n - 1] == '.' &&
		    strncasecmp(domain + dl - n, p, n) == 0)))
			return 1;
		p = q;
	}
	return 0;
}

int
contacts_check(const char *file, const struct contact_list *l,
    const struct conf *c, struct conf_msgs *msgs)
{
	char doms[512];
	size_t nlgwan = 0, dl = 0, errors = 0;
	int types[4] = { 0, 0, 0, 0 };	/* smtp, lgwan, fax, sms in use */
	const struct conf_channel *ch;
	const struct contact *k;
	const char *d;
	int ok, w;

	doms[0] = '\0';
	for (size_t i = 0; i < c->nchannels; i++) {
		ch = &c->channels[i];
		if (ch->type == NULL)
			continue;
		if (strcmp(ch->type, "smtp") == 0)
			types[0] = 1;
		else if (strcmp(ch->type, "fax") == 0)
			types[2] = 1;
		else if (strcmp(ch->type, "sms") == 0)
			types[3] = 1;
		if (strcmp(ch->type, "lgwan") != 0)
			continue;
		types[1] = 1;
		nlgwan++;
		d = conf_channel_get(ch, "domains");
		w = snprintf(doms + dl, sizeof(doms) - dl, "%s[channel %s] "
		    "domains = %s", dl ? "; " : "", ch->name,
		    d ? d : "(any)");
		if (w > 0)
			dl = (size_t)w >= sizeof(doms) - dl ? sizeof(doms) - 1 :
			    dl + (size_t)w;
	}

	for (size_t i = 0; i < l->n; i++) {
		k = &l->v[i];
		if (k->policy != NULL &&
		    conf_policy_find(c, k->policy) == NULL) {
			conf_msgs_add(msgs, 1, file, k->line, "column "
			    "'policy': no [policy %s] in %s", k->policy,
			    c->path ? c->path : "the configuration");
			errors++;
		}
		if (k->lgwan != NULL && nlgwan > 0) {
			ok = 0;
			for (size_t j = 0; j < c->nchannels && !ok; j++) {
				ch = &c->channels[j];
				if (ch->type == NULL ||
				    strcmp(ch->type, "lgwan") != 0)
					continue;
				d = conf_channel_get(ch, "domains");
				/* A channel without domains takes any. */
				ok = d == NULL ||
				    domain_in(strrchr(k->lgwan, '@') + 1, d);
			}
			if (!ok) {
				conf_msgs_add(msgs, 1, file, k->line, "column "
				    "'lgwan': '%s' is outside the domains of "
				    "every lgwan channel (%s)", k->lgwan, doms);
				errors++;
			}
		}
		/* Reachable on no configured channel at all: say so. */
		if (c->nchannels > 0 &&
		    (k->mail || k->lgwan || k->fax || k->sms) &&
		    !(k->mail && types[0]) && !(k->lgwan && types[1]) &&
		    !(k->fax && types[2]) && !(k->sms && types[3]))
			conf_msgs_add(msgs, 0, file, k->line, "recipient '%s' "
			    "has no address for any configured channel type",
			    k->id);
	}
	return errors ? -1 : 0;
}

void
contacts_free(struct contact_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		contact_clear(&l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
