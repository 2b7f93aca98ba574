/*
 * mail.c - the RFC 5322 / MIME message one recipient receives by mail.
 *
 * Builds, for one struct channel_msg, the headers (Date, From, To,
 * Reply-To, Subject, Message-ID, In-Reply-To/References, MIME, and the
 * X-Dengon-* headers) and a text/plain UTF-8 body in the wording of
 * CONTRACT.md ("What recipients receive"), Japanese or English.
 *
 * The body is base64, not quoted-printable: the text is mostly Japanese,
 * which quoted-printable would triple in size and make unreadable, while
 * base64 costs a third, keeps every line at 76 characters whatever the
 * alert body holds (long lines, trailing blanks, a lone "."), and needs
 * no 8BITMIME from the server.
 *
 * Auto-Submitted: auto-generated (RFC 3834) tells vacation and
 * out-of-office responders not to answer; such an automatic reply would
 * quote the Subject, code included, and could pass for a confirmation.
 * It does nothing to a person's Reply button, and Reply-To still says
 * where confirmations go.  X-Auto-Response-Suppress asks Exchange for the
 * same (OOF and AutoReply only: delivery reports are still wanted).
 *
 * No state; see mail.h for what is promised about the output.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "channels/mail.h"
#include "relay/relay.h"

#define LINE_MAX_HDR	78	/* RFC 5322 2.1.1: SHOULD */
#define LINE_MAX_EW	76	/* RFC 2047 2: a line holding encoded-words */
#define EW_OVERHEAD	12	/* "=?UTF-8?B?" + "?=" */
#define EW_MAX_B64	60	/* 75-character words, whole base64 quads */
#define BODY_CHUNK	57	/* bytes per 76-character base64 line */

/* Room for n more bytes and a NUL in b; 0, or -1 (b->oom) when out of
 * memory. */
static int
buf_room(struct mail_buf *b, size_t n)
{
	char *np;
	size_t cap;

	if (b->oom)
		return -1;
	if (b->len + n + 1 <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + n + 1)
		cap *= 2;
	if ((np = realloc(b->p, cap)) == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

void
mail_buf_add(struct mail_buf *b, const char *s, size_t n)
{
	if (buf_room(b, n) == -1)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
mail_buf_str(struct mail_buf *b, const char *s)
{
	mail_buf_add(b, s, strlen(s));
}

/* 1 if fmt has no conversion but %s. */
static int
only_strings(const char *fmt)
{
	for (const char *p = fmt; (p = strchr(p, '%')) != NULL; p += 2)
		if (p[1] != 's')
			return 0;
	return 1;
}

/*
 * Formatted straight into b (no temporary string).  A format of text and
 * %s only (most of the wording) is put together here, without printf's
 * machinery; any other goes through vsnprintf, whose first try uses the
 * room b has, a second one the exact size.
 */
void
mail_buf_fmt(struct mail_buf *b, const char *fmt, ...)
{
	const char *p, *q, *v;
	va_list ap;
	size_t room;
	int n;

	if (only_strings(fmt)) {
		va_start(ap, fmt);
		for (p = fmt; (q = strchr(p, '%')) != NULL; p = q + 2) {
			mail_buf_add(b, p, (size_t)(q - p));
			v = va_arg(ap, const char *);
			mail_buf_str(b, v != NULL ? v : "(null)");
		}
		va_end(ap);
		mail_buf_str(b, p);
		return;
	}
	if (buf_room(b, 128) == -1)
		return;
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->p[b->len] = '\0';
		b->oom = 1;
		return;
	}
	if ((size_t)n >= room) {
		if (buf_room(b, (size_t)n) == -1) {
			b->p[b->len] = '\0';
			return;
		}
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/*
 * Text from data made safe for a header or a one-line field: C0 and C1
 * control characters and DEL become a space, invalid UTF-8 becomes '?'.
 * Allocated; NULL only when out of memory.
 */
static char *
clean_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), i = 0, k;
	struct mail_buf b = { 0 };

	/* the output is as long as the input: one allocation; characters
	 * kept as they are go in runs */
	if (buf_room(&b, n) == -1)
		return NULL;
	b.p[0] = '\0';
	while (i < n) {
		size_t run = i;

		while (run < n && p[run] >= 0x20 && p[run] < 0x7f)
			run++;		/* printable ASCII */
		if (run > i) {
			mail_buf_add(&b, (const char *)p + i, run - i);
			i = run;
			continue;
		}
		k = ingest_utf8_seq(p + i, n - i);
		if (k == 0) {
			mail_buf_add(&b, "?", 1);
			i++;
		} else if ((k == 1 && (p[i] < 0x20 || p[i] == 0x7f)) ||
		    (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
			mail_buf_add(&b, " ", 1);
			i += k;
		} else {
			mail_buf_add(&b, (const char *)p + i, k);
			i += k;
		}
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* 1 if s is printable ASCII and holds no "=?" (which a reader would take
 * for the start of an encoded-word). */
static int
plain_ascii(const char *s)
{
	for (const char *p = s; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e || (p[0] == '=' && p[1] == '?'))
			return 0;
	return 1;
}

/* 1 if s may be written as an RFC 5322 phrase of atoms as it is. */
static int
plain_phrase(const char *s)
{
	static const char atext[] = "!#$%&'*+-/=?^_`{|}~ ";

	if (*s == '\0' || *s == ' ' || !plain_ascii(s))
		return 0;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(atext, *p) != NULL))
			return 0;
	return 1;
}

/* Fold: a line break and one blank; the next line starts at column 1. */
static void
fold(struct mail_buf *b, size_t *col)
{
	mail_buf_add(b, "\r\n ", 3);
	*col = 1;
}

/*
 * Append s (valid UTF-8) as RFC 2047 "B" encoded-words starting at column
 * *col, in UTF-8 or in cs's charset.  Each word carries whole characters
 * only (in cs's charset, each word also starts and ends in its initial
 * state: RFC 1468), fits in 75 characters, and every line holding one
 * stays within 76; a word that does not fit goes on a continuation line.
 * The blanks between words are ignored by decoders (RFC 2047 6.2), so
 * folding adds nothing to the text.
 */
static void
enc_words(struct mail_buf *b, const char *s, size_t *col,
    const struct mail_charset *cs)
{
	const unsigned char *p = (const unsigned char *)s;
	const char *cname = cs ? cs->name : "UTF-8";
	unsigned char out[EW_MAX_B64 + 4];
	size_t n = strlen(s), i = 0, room, raw, take, k, over, maxb64;
	size_t enclen = 0, el;
	char *enc = NULL, *e;

	over = strlen(cname) + 7;	/* "=?" NAME "?B?" ... "?=" */
	maxb64 = over < 75 ? (75 - over) / 4 * 4 : 4;
	if (maxb64 > EW_MAX_B64)
		maxb64 = EW_MAX_B64;
	while (i < n) {
		room = *col + over < LINE_MAX_EW ?
		    LINE_MAX_EW - *col - over : 0;
		if (room > maxb64)
			room = maxb64;
		raw = room / 4 * 3;
		take = 0;
		for (;;) {
			if (i + take >= n)
				break;
			k = ingest_utf8_seq(p + i + take, n - i - take);
			if (k == 0)
				k = 1;	/* cannot happen after clean_text() */
			if (cs == NULL) {
				if (take + k > raw)
					break;
			} else {
				if (cs->encode(cs, s + i, take + k, (size_t)-1,
				    &e, &el) == -1) {
					b->oom = 1;
					free(enc);
					return;
				}
				if (el > raw) {
					free(e);
					break;
				}
				free(enc);
				enc = e;
				enclen = el;
			}
			take += k;
		}
		if (take == 0) {
			if (*col > 1) {
				fold(b, col);
				continue;
			}
			/* a fresh line holds one character (8 bytes
			 * at most in a 42-byte word): never here */
			if (cs != NULL) {
				b->oom = 1;
				return;
			}
			take = 1;	/* unreachable: a fresh line holds 45 */
		}
		if (cs != NULL) {
			k = (size_t)EVP_EncodeBlock(out,
			    (const unsigned char *)enc, (int)enclen);
			free(enc);
			enc = NULL;
		} else
			k = (size_t)EVP_EncodeBlock(out, p + i, (int)take);
		mail_buf_fmt(b, "=?%s?B?", cname);
		mail_buf_add(b, (const char *)out, k);
		mail_buf_str(b, "?=");
		*col += over + k;
		i += take;
		if (i < n)
			fold(b, col);
	}
}

/* "Name: value" for unstructured text (Subject): as it is when it is short
 * printable ASCII, else as encoded-words. */
static void
hdr_text(struct mail_buf *b, const char *name, const char *value,
    const struct mail_charset *cs)
{
	size_t col = strlen(name) + 2;

	mail_buf_str(b, name);
	mail_buf_str(b, ": ");
	if (plain_ascii(value) && col + strlen(value) <= LINE_MAX_HDR)
		mail_buf_str(b, value);
	else
		enc_words(b, value, &col, cs);
	mail_buf_str(b, "\r\n");
}

/* "Name: display <addr>" or "Name: addr"; display is cleaned text. */
static void
hdr_mailbox(struct mail_buf *b, const char *name, const char *display,
    const char *addr, const struct mail_charset *cs)
{
	size_t col = strlen(name) + 2;

	mail_buf_str(b, name);
	mail_buf_str(b, ": ");
	if (*display == '\0') {
		mail_buf_str(b, addr);
		mail_buf_str(b, "\r\n");
		return;
	}
	if (plain_phrase(display) && col + strlen(display) <= LINE_MAX_HDR) {
		mail_buf_str(b, display);
		col += strlen(display);
	} else
		enc_words(b, display, &col, cs);
	if (col + 3 + strlen(addr) > LINE_MAX_HDR)
		fold(b, &col);
	else {
		mail_buf_add(b, " ", 1);
		col++;
	}
	mail_buf_fmt(b, "<%s>\r\n", addr);
}

/* "Name: <id1> <id2> ...", folded between ids. */
static void
hdr_ids(struct mail_buf *b, const char *name, const char *ids)
{
	size_t col = strlen(name) + 1, n;
	const char *p = ids, *e;

	mail_buf_str(b, name);
	mail_buf_str(b, ":");
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		e = strchr(p, ' ');
		n = e ? (size_t)(e - p) : strlen(p);
		if (col > strlen(name) + 1 && col + 1 + n > LINE_MAX_HDR)
			fold(b, &col);
		else {
			mail_buf_add(b, " ", 1);
			col++;
		}
		mail_buf_add(b, p, n);
		col += n;
		p += n;
	}
	mail_buf_str(b, "\r\n");
}

int
mail_address_ok(const char *addr, const char **why)
{
	static const char specials[] = "<>,;:\"()[]\\";
	const char *at;

	if (addr == NULL || *addr == '\0') {
		*why = "the address is empty";
		return 0;
	}
	if (strlen(addr) > 254) {
		*why = "the address is longer than 254 bytes";
		return 0;
	}
	for (const char *p = addr; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n') {
			*why = "the address contains a line break";
			return 0;
		}
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			*why = "the address contains a blank, a control or a "
			    "non-ASCII character";
			return 0;
		}
		if (strchr(specials, *p) != NULL) {
			*why = "the address contains one of < > , ; : \" ( ) "
			    "[ ] \\";
			return 0;
		}
	}
	at = strchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL) {
		*why = "the address is not local-part@domain";
		return 0;
	}
	return 1;
}

int
mail_split_mailbox(const char *s, char *name, size_t namelen, char *addr,
    size_t addrlen)
{
	const char *lt, *gt, *b, *e, *nb, *ne, *why;
	size_t n;

	if (s == NULL || namelen == 0 || addrlen == 0)
		return -1;
	name[0] = addr[0] = '\0';
	if ((lt = strrchr(s, '<')) == NULL) {
		b = s;
		e = s + strlen(s);
	} else {
		if ((gt = strchr(lt, '>')) == NULL)
			return -1;
		b = lt + 1;
		e = gt;
		/* the display name: blanks and one pair of quotes off */
		nb = s;
		ne = lt;
		while (nb < ne && (*nb == ' ' || *nb == '\t'))
			nb++;
		while (ne > nb && (ne[-1] == ' ' || ne[-1] == '\t'))
			ne--;
		if (ne - nb >= 2 && *nb == '"' && ne[-1] == '"')
			nb++, ne--;
		n = (size_t)(ne - nb);
		if (n >= namelen)
			return -1;
		memcpy(name, nb, n);
		name[n] = '\0';
	}
	while (b < e && (*b == ' ' || *b == '\t'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - b);
	if (n >= addrlen)
		return -1;
	memcpy(addr, b, n);
	addr[n] = '\0';
	return mail_address_ok(addr, &why) ? 0 : -1;
}

/* 1 if s is a list of msg-ids "<x@y>" separated by single blanks. */
static int
valid_ids(const char *s)
{
	int in = 0, at = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 900)
		return 0;
	for (const char *p = s; *p != '\0'; p++) {
		if (!in) {
			if (*p == ' ' && p != s && p[-1] == '>')
				continue;
			if (*p != '<')
				return 0;
			in = 1;
			at = 0;
		} else if (*p == '>') {
			if (!at || p[-1] == '<')
				return 0;
			in = 0;
		} else if (*p == '@')
			at = 1;
		else if (*p <= 0x20 || *p >= 0x7f || *p == '<')
			return 0;
	}
	return !in && s[strlen(s) - 1] == '>';
}

/* 1 if id is an alert id: 1-40 of A-Z a-z 0-9 - */
static int
valid_alert_id(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > 40)
		return 0;
	for (const char *p = id; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
	return 1;
}

/* An RFC 5322 date in the process's time zone, in English whatever the
 * locale. */
static void
rfc5322_date(time_t t, char *buf, size_t len)
{
	static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char *mons[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	long off;

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(buf, len, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
	    labs(off) / 60, labs(off) % 60);
}

/*
 * The last time written, per use: the messages of a session are rendered
 * within a second or two, for one alert, so the Date: header and the
 * alert's time are the same text again and again.  Keyed by the time and
 * the TZ in force (relay_set_timezone()); the only state of this file,
 * and one that changes no output.
 */
struct time_memo {
	int	valid;
	time_t	t;
	char	tz[64];
	char	text[64];
};

/* 1 and the text in buf if m holds t in the current TZ. */
static int
memo_get(const struct time_memo *m, time_t t, char *buf, size_t len)
{
	const char *tz = getenv("TZ");

	if (!m->valid || m->t != t || strcmp(m->tz, tz ? tz : "") != 0 ||
	    strlen(m->text) >= len)
		return 0;
	memcpy(buf, m->text, strlen(m->text) + 1);
	return 1;
}

static void
memo_put(struct time_memo *m, time_t t, const char *text)
{
	const char *tz = getenv("TZ");

	m->valid = 0;
	if (strlen(tz ? tz : "") >= sizeof(m->tz) ||
	    strlen(text) >= sizeof(m->text))
		return;
	snprintf(m->tz, sizeof(m->tz), "%s", tz ? tz : "");
	snprintf(m->text, sizeof(m->text), "%s", text);
	m->t = t;
	m->valid = 1;
}

/* relay_time_local() and rfc5322_date(), through their memos. */
static void
when_local(int64_t ms, char *buf, size_t len)
{
	static struct time_memo memo;
	time_t t = (time_t)(ms / 1000);

	if (memo_get(&memo, t, buf, len))
		return;
	relay_time_local(ms, buf, len);
	memo_put(&memo, t, buf);
}

static void
date_now(char *buf, size_t len)
{
	static struct time_memo memo;
	time_t t = time(NULL);

	if (memo_get(&memo, t, buf, len))
		return;
	rfc5322_date(t, buf, len);
	memo_put(&memo, t, buf);
}

/* Everything the wording needs, cleaned and formatted once. */
struct facts {
	const struct channel_msg *m;
	const char	*subject;	/* cleaned */
	const char	*name;		/* cleaned recipient name */
	const char	*org;		/* cleaned, "" if none */
	const char	*sender;	/* cleaned From display name or address */
	const char	*relay;
	const char	*tlp;		/* "AMBER" */
	char		 code[CODE_LEN + 2];	/* "ABCD-EFGH" */
	char		 when[64];	/* "2026-11-21 20:10 JST" */
};

static const char *
tlp_ja(enum queue_tlp t)
{
	switch (t) {
	case QUEUE_TLP_CLEAR:
		return "公開可（共有の制限なし）";
	case QUEUE_TLP_GREEN:
		return "コミュニティ内で共有可（一般への公開は不可）";
	case QUEUE_TLP_AMBER:
		return "自組織内と、知る必要のある取引先に限り共有可";
	case QUEUE_TLP_AMBER_STRICT:
		return "自組織内に限り共有可";
	case QUEUE_TLP_RED:
		return "受信者本人限り（他者への共有は不可）";
	}
	return "";
}

static const char *
tlp_en(enum queue_tlp t)
{
	switch (t) {
	case QUEUE_TLP_CLEAR:
		return "may be shared freely";
	case QUEUE_TLP_GREEN:
		return "may be shared within your community, not published";
	case QUEUE_TLP_AMBER:
		return "may be shared within your organisation and with its "
		    "clients who need to know";
	case QUEUE_TLP_AMBER_STRICT:
		return "may be shared only within your organisation";
	case QUEUE_TLP_RED:
		return "for the named recipients only; do not share";
	}
	return "";
}

/* An update for a recipient who had confirmed already: asks for nothing. */
static int
confirmed(const struct channel_msg *m)
{
	return m->notice != NULL && strcmp(m->notice, "update") == 0;
}

/* Subject and body in Japanese: what a utility's duty officer reads. */
static void
words_ja(const struct facts *f, struct mail_buf *subj, struct mail_buf *body)
{
	const struct channel_msg *m = f->m;

	if (m->drill)
		mail_buf_str(subj, "【訓練】");
	if (m->round > 0)
		mail_buf_str(subj, "【再送】");
	if (m->revision > 1)
		mail_buf_str(subj, "【更新】");
	if (confirmed(m))
		mail_buf_fmt(subj, "[TLP:%s] %s", f->tlp, f->subject);
	else
		mail_buf_fmt(subj, "[TLP:%s] %s [確認コード: %s]", f->tlp,
		    f->subject, f->code);

	if (m->drill)
		mail_buf_str(body, "【訓練】これは訓練です。実際の事象ではありません。\n");
	if (m->round > 0)
		mail_buf_fmt(body, "【再送】受信確認をまだいただいていないため、"
		    "再度お送りします（再送 %d 回目）。\n", m->round);
	if (m->revision > 1)
		mail_buf_fmt(body, "【更新】この通知は内容が更新されました（第 %d 版）。"
		    "以前の版に代わるものです。\n", m->revision);
	mail_buf_fmt(body, "TLP:%s（%s）\n\n", f->tlp, tlp_ja(m->tlp));
	if (*f->name != '\0')
		mail_buf_fmt(body, "%s%s%s 様\n\n", f->org, *f->org ? " " : "",
		    f->name);
	mail_buf_str(body, m->body ? m->body : "");
	if (body->len > 0 && body->p[body->len - 1] != '\n')
		mail_buf_str(body, "\n");
	if (confirmed(m)) {
		mail_buf_str(body,
		    "\n"
		    "────────────────────────────────\n"
		    "■ 受信確認は済んでいます\n"
		    "この通知の受信確認はすでにいただいています。この更新への返信は"
		    "不要です。\n\n");
		mail_buf_fmt(body, "通知番号: %s\n", m->alert);
		mail_buf_fmt(body, "発信元:   %s（%s）\n", f->sender, f->relay);
		mail_buf_fmt(body, "発信日時: %s\n", f->when);
		mail_buf_str(body, "────────────────────────────────\n");
		return;
	}
	mail_buf_str(body,
	    "\n"
	    "────────────────────────────────\n"
	    "■ 受信確認のお願い\n");
	mail_buf_fmt(body, "確認コード: %s\n\n", f->code);
	mail_buf_str(body,
	    "この通知を受け取られたら、次のいずれかの方法でお知らせください。\n"
	    "・このメールに返信する（件名の確認コードは消さずにそのまま"
	    "送ってください）\n");
	mail_buf_fmt(body, "・電話または FAX で折り返し、確認コード「%s」を"
	    "お伝えいただく\n\n", f->code);
	mail_buf_fmt(body, "通知番号: %s\n", m->alert);
	mail_buf_fmt(body, "発信元:   %s（%s）\n", f->sender, f->relay);
	mail_buf_fmt(body, "発信日時: %s\n", f->when);
	mail_buf_str(body,
	    "────────────────────────────────\n"
	    "このメールへの返信は、受信確認として扱われます。\n");
}

/* Subject and body in English. */
static void
words_en(const struct facts *f, struct mail_buf *subj, struct mail_buf *body)
{
	const struct channel_msg *m = f->m;

	if (m->drill)
		mail_buf_str(subj, "[DRILL] ");
	if (m->round > 0)
		mail_buf_fmt(subj, "[Reminder %d] ", m->round);
	if (m->revision > 1)
		mail_buf_str(subj, "[Update] ");
	if (confirmed(m))
		mail_buf_fmt(subj, "[TLP:%s] %s", f->tlp, f->subject);
	else
		mail_buf_fmt(subj, "[TLP:%s] %s [code: %s]", f->tlp, f->subject,
		    f->code);

	if (m->drill)
		mail_buf_str(body, "[DRILL] This is a drill. No real event has "
		    "occurred.\n");
	if (m->round > 0)
		mail_buf_fmt(body, "[Reminder %d] We have not yet received your "
		    "confirmation, so we are sending this alert again.\n",
		    m->round);
	if (m->revision > 1)
		mail_buf_fmt(body, "[Update] This alert has been updated (revision "
		    "%d). It replaces the earlier version.\n", m->revision);
	mail_buf_fmt(body, "TLP:%s (%s)\n\n", f->tlp, tlp_en(m->tlp));
	if (*f->name != '\0')
		mail_buf_fmt(body, "To: %s%s%s\n\n", f->name, *f->org ? ", " : "",
		    f->org);
	mail_buf_str(body, m->body ? m->body : "");
	if (body->len > 0 && body->p[body->len - 1] != '\n')
		mail_buf_str(body, "\n");
	if (confirmed(m)) {
		mail_buf_str(body,
		    "\n"
		    "------------------------------------------------------------\n"
		    "ALREADY CONFIRMED\n"
		    "You have already confirmed this alert: no reply is needed "
		    "to this update.\n\n");
		mail_buf_fmt(body, "Alert:  %s\n", m->alert);
		mail_buf_fmt(body, "From:   %s (%s)\n", f->sender, f->relay);
		mail_buf_fmt(body, "Issued: %s\n", f->when);
		mail_buf_str(body, "------------------------------------------------"
		    "------------\n");
		return;
	}
	mail_buf_str(body,
	    "\n"
	    "------------------------------------------------------------\n"
	    "PLEASE CONFIRM RECEIPT\n");
	mail_buf_fmt(body, "Confirmation code: %s\n\n", f->code);
	mail_buf_str(body,
	    "Please let us know that you received this alert, either way:\n"
	    " - reply to this mail, keeping the code in the subject; or\n");
	mail_buf_fmt(body, " - call or fax us back and quote the code %s.\n\n",
	    f->code);
	mail_buf_fmt(body, "Alert:  %s\n", m->alert);
	mail_buf_fmt(body, "From:   %s (%s)\n", f->sender, f->relay);
	mail_buf_fmt(body, "Issued: %s\n", f->when);
	mail_buf_str(body,
	    "------------------------------------------------------------\n"
	    "A reply to this mail counts as your confirmation.\n");
}

/*
 * A notice (m->notice: "cancel"): the alert was cancelled; nothing to do,
 * nothing to confirm.  No code: a reply is not asked for.
 */
static void
words_notice(const struct facts *f, int en, struct mail_buf *subj,
    struct mail_buf *body)
{
	const struct channel_msg *m = f->m;
	char *reason = m->reason != NULL ? clean_text(m->reason) : NULL;

	if (m->drill)
		mail_buf_str(subj, en ? "[DRILL] " : "【訓練】");
	mail_buf_fmt(subj, en ? "[Cancelled] [TLP:%s] %s" :
	    "【取消】[TLP:%s] %s", f->tlp, f->subject);
	if (en) {
		mail_buf_fmt(body, "[Cancelled] The alert below has been "
		    "cancelled. No action is needed.\n\n"
		    "Subject: %s\nAlert:   %s\nIssued:  %s\n", f->subject,
		    m->alert, f->when);
		if (reason != NULL && *reason != '\0')
			mail_buf_fmt(body, "Reason:  %s\n", reason);
		mail_buf_fmt(body, "From:    %s (%s)\n\nTLP:%s (%s)\n"
		    "You do not need to reply to this message.\n", f->sender,
		    f->relay, f->tlp, tlp_en(m->tlp));
	} else {
		mail_buf_fmt(body, "【取消】次の通知は取り消されました。対応の必要は"
		    "ありません。\n\n件名:     %s\n通知番号: %s\n発信日時: %s\n",
		    f->subject, m->alert, f->when);
		if (reason != NULL && *reason != '\0')
			mail_buf_fmt(body, "取消理由: %s\n", reason);
		mail_buf_fmt(body, "発信元:   %s（%s）\n\nTLP:%s（%s）\n"
		    "このメッセージへの返信は不要です。\n", f->sender, f->relay,
		    f->tlp, tlp_ja(m->tlp));
	}
	free(reason);
}

/* The body text (LF line ends) as base64 of its CRLF form, 76 a line. */
static void
body_base64(struct mail_buf *out, const char *text, size_t len)
{
	struct mail_buf crlf = { 0 };
	size_t i, k, run;
	int n;

	/* CR, LF and CRLF each become CRLF; the text between them is copied
	 * in runs */
	for (i = 0; i < len; i = run) {
		for (run = i; run < len && text[run] != '\r' &&
		    text[run] != '\n'; run++)
			;
		mail_buf_add(&crlf, text + i, run - i);
		if (run == len)
			break;
		mail_buf_add(&crlf, "\r\n", 2);
		if (text[run] == '\r' && run + 1 < len && text[run + 1] == '\n')
			run++;
		run++;
	}
	/* 57 bytes become a line of 76 characters and CRLF */
	if (crlf.oom || buf_room(out, (crlf.len + BODY_CHUNK - 1) /
	    BODY_CHUNK * (BODY_CHUNK / 3 * 4 + 2)) == -1) {
		out->oom = 1;
		free(crlf.p);
		return;
	}
	for (i = 0; i < crlf.len; i += k) {
		k = crlf.len - i < BODY_CHUNK ? crlf.len - i : BODY_CHUNK;
		n = EVP_EncodeBlock((unsigned char *)out->p + out->len,
		    (unsigned char *)crlf.p + i, (int)k);
		out->len += (size_t)n;
		memcpy(out->p + out->len, "\r\n", 3);
		out->len += 2;
	}
	free(crlf.p);
}

/* The body text (LF line ends) in cs's charset, 7bit, CRLF lines of at
 * most RFC 5322's 998 bytes. */
static void
body_7bit(struct mail_buf *out, const char *text, size_t len,
    const struct mail_charset *cs)
{
	struct mail_buf lf = { 0 };
	char *enc = NULL;
	size_t enclen = 0;

	mail_buf_add(&lf, "", 0);
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\r') {
			mail_buf_add(&lf, "\n", 1);
			if (i + 1 < len && text[i + 1] == '\n')
				i++;
		} else
			mail_buf_add(&lf, text + i, 1);
	}
	if (lf.oom || cs->encode(cs, lf.p, lf.len, 998, &enc, &enclen) == -1) {
		out->oom = 1;
		free(lf.p);
		return;
	}
	mail_buf_add(out, enc, enclen);
	if (enclen > 0 && enc[enclen - 1] != '\n')
		mail_buf_add(out, "\r\n", 2);
	free(enc);
	free(lf.p);
}

int
mail_render(const struct mail_opts *o, const struct channel_msg *m,
    char **out, size_t *len, char *err, size_t errlen)
{
	char from_name[256], from_addr[256], rt_name[256], rt_addr[256];
	char date[64], code[CODE_LEN + 1];
	struct mail_buf h = { 0 }, subj = { 0 }, body = { 0 };
	struct facts f;
	char *subject = NULL, *name = NULL, *org = NULL, *sender = NULL;
	char *fname = NULL, *rtname = NULL;
	const char *why;
	int rc = -1;

	*out = NULL;
	*len = 0;
	if (!mail_address_ok(m->address, &why)) {
		snprintf(err, errlen, "recipient %s: %s", m->recipient ?
		    m->recipient : "?", why);
		return -1;
	}
	if (mail_split_mailbox(o->from, from_name, sizeof(from_name),
	    from_addr, sizeof(from_addr)) == -1) {
		snprintf(err, errlen, "from: not a usable mail address");
		return -1;
	}
	if (o->reply_to != NULL && mail_split_mailbox(o->reply_to, rt_name,
	    sizeof(rt_name), rt_addr, sizeof(rt_addr)) == -1) {
		snprintf(err, errlen, "reply_to: not a usable mail address");
		return -1;
	}
	if (!valid_alert_id(m->alert)) {
		snprintf(err, errlen, "the alert id is not 1-40 of A-Z a-z "
		    "0-9 -");
		return -1;
	}
	if (!valid_ids(m->message_id) || strchr(m->message_id, ' ') != NULL) {
		snprintf(err, errlen, "the Message-ID is not one <id@domain>");
		return -1;
	}
	if (m->references != NULL && !valid_ids(m->references)) {
		snprintf(err, errlen, "References: not a list of <id@domain>");
		return -1;
	}
	if (m->code == NULL || strlen(m->code) != CODE_LEN) {
		snprintf(err, errlen, "the confirmation code is not %d "
		    "characters", CODE_LEN);
		return -1;
	}

	subject = clean_text(m->subject);
	name = clean_text(m->name);
	org = clean_text(m->org);
	fname = clean_text(from_name);
	rtname = o->reply_to ? clean_text(rt_name) : clean_text("");
	if (!subject || !name || !org || !fname || !rtname)
		goto oom;
	sender = *fname ? fname : from_addr;

	memset(&f, 0, sizeof(f));
	f.m = m;
	f.subject = subject;
	f.name = name;
	f.org = org;
	f.sender = sender;
	f.relay = o->relay ? o->relay : "dengon";
	f.tlp = queue_tlp_name(m->tlp);
	memcpy(code, m->code, sizeof(code));
	code_format(code, f.code);
	when_local(m->created, f.when, sizeof(f.when));

	if (m->notice != NULL && strcmp(m->notice, "cancel") == 0)
		words_notice(&f, o->language != NULL &&
		    strcmp(o->language, "en") == 0, &subj, &body);
	else if (o->language != NULL && strcmp(o->language, "en") == 0)
		words_en(&f, &subj, &body);
	else
		words_ja(&f, &subj, &body);
	if (subj.oom || body.oom)
		goto oom;

	date_now(date, sizeof(date));
	mail_buf_fmt(&h, "Date: %s\r\n", date);
	hdr_mailbox(&h, "From", fname, from_addr, o->charset);
	hdr_mailbox(&h, "To", name, m->address, o->charset);
	if (o->reply_to != NULL)
		hdr_mailbox(&h, "Reply-To", rtname, rt_addr, o->charset);
	hdr_text(&h, "Subject", subj.p, o->charset);
	hdr_ids(&h, "Message-ID", m->message_id);
	if (m->references != NULL) {
		hdr_ids(&h, "In-Reply-To", m->references);
		hdr_ids(&h, "References", m->references);
	}
	if (o->charset != NULL)
		mail_buf_fmt(&h, "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=%s\r\n"
		    "Content-Transfer-Encoding: 7bit\r\n", o->charset->name);
	else
		mail_buf_str(&h, "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=UTF-8\r\n"
		    "Content-Transfer-Encoding: base64\r\n");
	mail_buf_str(&h, "Auto-Submitted: auto-generated\r\n"
	    "X-Auto-Response-Suppress: OOF, AutoReply\r\n");
	mail_buf_fmt(&h, "X-Dengon-Alert: %s\r\n", m->alert);
	mail_buf_fmt(&h, "X-Dengon-Delivery: %lld\r\n", (long long)m->delivery);
	mail_buf_fmt(&h, "X-Dengon-TLP: %s\r\n", f.tlp);
	mail_buf_str(&h, "\r\n");
	if (o->charset != NULL)
		body_7bit(&h, body.p, body.len, o->charset);
	else
		body_base64(&h, body.p, body.len);
	if (h.oom)
		goto oom;
	*out = h.p;
	*len = h.len;
	h.p = NULL;
	rc = 0;
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
done:
	free(h.p);
	free(subj.p);
	free(body.p);
	free(subject);
	free(name);
	free(org);
	free(fname);
	free(rtname);
	return rc;
}
