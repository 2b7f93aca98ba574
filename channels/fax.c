/*
 * fax.c - the fax channel driver (type = fax): pages through HylaFAX.
 *
 * A message becomes A4 pages (fax_render.c) worded here in the relay's
 * language: a header with the sender, the alert id and the time, the TLP
 * label, the subject, the body, and a confirmation box with the
 * recipient's name, the code and how to confirm.  RED and AMBER+STRICT
 * alerts carry only a notice (read the closed-network mail), never the
 * body.
 *
 * Transport: HylaFAX's client protocol (hfaxd, port 4559), FTP-like: one
 * control connection, a passive data connection for the TIFF.  For each
 * message (max_batch 1: one fax per session child):
 *   USER/PASS, TYPE I, MODE S, PASV + STOT (the TIFF; the server names
 *   the file), JNEW, JPARM (dial string, document, one dial and one try,
 *   a kill time within our own timeout, fine or normal, no mail
 *   notification, job tag "dengon <attempt>"), JSUBM: job N;
 *   then the job's state every second (JOB N + JPARM, the whole job
 *   listing in one reply) until it is done or failed.
 * Outcome: every page sent (the far end confirmed each one, which is what
 * HylaFAX counts) => ok with arrival evidence (delivered); a busy line, no
 * answer, no carrier, a failed page => tempfail (dengon's own retry policy
 * decides when to call again: HylaFAX is told not to retry); a number
 * HylaFAX refuses (bad dial string, blocked) => permfail.  The evidence
 * names the job, pages sent/total, dials, tries and HylaFAX's status text.
 *
 * Withdrawal (channel.h): SIGTERM while the job is queued or running =>
 * JKILL + JDELE (the job leaves HylaFAX's queue), the message is reported
 * tempfail "withdrawn".  Past our timeout the job is killed the same way.
 * hfaxd unreachable or refusing the login => send() returns -1: the
 * channel is down, the message a tempfail retried with backoff.
 *
 * Nothing from data reaches the protocol unchecked: the number is digits
 * only (and dialled as such), every other parameter is ours; a control
 * line is refused if it holds CR or LF.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "channels/channel.h"
#include "channels/fax.h"
#include "channels/fax_render.h"
#include "channels/mail.h"
#include "relay/relay.h"

#define PASSWORD_MAX	256
#define IO_TIMEOUT_MS	30000	/* one reply of the server */
#define POLL_MS		1000	/* job state */
#define REPLY_MAX	8192

struct fax_conf {
	char	*channel;
	char	*host;
	char	*port;
	char	*user;
	char	*password;	/* NULL: none; never logged */
	char	*font;
	char	*confirm_to;	/* may be NULL */
	char	*intl_prefix;	/* "010" */
	char	*country;	/* "81" */
	char	*relay;
	int	 fine;
	int	 en;
	int64_t	 timeout;	/* seconds */
};

/* ---- configure -------------------------------------------------------------- */

static void
fax_release(void *state)
{
	struct fax_conf *fc = state;

	if (fc == NULL)
		return;
	free(fc->channel);
	free(fc->host);
	free(fc->port);
	free(fc->user);
	if (fc->password != NULL) {
		explicit_bzero(fc->password, strlen(fc->password));
		free(fc->password);
	}
	free(fc->font);
	free(fc->confirm_to);
	free(fc->intl_prefix);
	free(fc->country);
	free(fc->relay);
	free(fc);
}

static char *
dup_or(const char *v, const char *def)
{
	return strdup(v != NULL ? v : def);
}

static int
all_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	if (n < min || n > max)
		return 0;
	return strspn(s, "0123456789") == n;
}

static int
fax_configure(const struct conf_channel *ch, const struct conf *relay,
    void **state, char *err, size_t errlen)
{
	struct fax_conf *fc;
	const char *v, *pw;
	int64_t t = 300;
	struct stat st;

	*state = NULL;
	if ((fc = calloc(1, sizeof(*fc))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	v = conf_channel_get(ch, "transport");
	if (v != NULL && strcmp(v, "hylafax") != 0) {
		snprintf(err, errlen, "transport %s is not built (hylafax is)",
		    v);
		goto fail;
	}
	fc->channel = strdup(ch->name);
	fc->host = dup_or(conf_channel_get(ch, "host"), "127.0.0.1");
	fc->port = dup_or(conf_channel_get(ch, "port"), "4559");
	fc->user = dup_or(conf_channel_get(ch, "user"), "dengon");
	fc->font = dup_or(conf_channel_get(ch, "font"),
	    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf");
	fc->intl_prefix = dup_or(conf_channel_get(ch, "international_prefix"),
	    "010");
	fc->country = dup_or(relay != NULL ? relay->country_code : NULL, "81");
	fc->relay = dup_or(relay != NULL ? relay->name : NULL, "dengon");
	if ((v = conf_channel_get(ch, "confirm_to")) != NULL)
		fc->confirm_to = strdup(v);
	v = conf_channel_get(ch, "resolution");
	fc->fine = v == NULL || strcmp(v, "normal") != 0;
	fc->en = relay != NULL && relay->language != NULL &&
	    strcmp(relay->language, "en") == 0;
	if ((v = conf_channel_get(ch, "timeout")) != NULL)
		conf_parse_duration(v, &t);
	fc->timeout = t >= 30 ? t : 30;
	if (!fc->channel || !fc->host || !fc->port || !fc->user || !fc->font ||
	    !fc->intl_prefix || !fc->country || !fc->relay) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!all_digits(fc->intl_prefix, 1, 4)) {
		snprintf(err, errlen, "international_prefix: 1 to 4 digits");
		goto fail;
	}
	if (strpbrk(fc->user, "\r\n\" ") != NULL) {
		snprintf(err, errlen, "user: holds a blank, a quote or a line "
		    "break");
		goto fail;
	}
	if (stat(fc->font, &st) == -1) {
		snprintf(err, errlen, "font %s: %s", fc->font, strerror(errno));
		goto fail;
	}
	if ((pw = conf_channel_get(ch, "password_file")) != NULL &&
	    channel_read_secret(pw, PASSWORD_MAX, &fc->password, err,
	    errlen) == -1)
		goto fail;
	if (fc->password != NULL && strpbrk(fc->password, "\r\n") != NULL) {
		snprintf(err, errlen, "password_file %s: holds a line break",
		    pw);
		goto fail;
	}
	*state = fc;
	return 0;
fail:
	fax_release(fc);
	return -1;
}

/* ---- the page's words ------------------------------------------------------- */

static const char *
tlp_words(enum queue_tlp t, int en)
{
	static const char *const ja[] = {
		[QUEUE_TLP_CLEAR] = "公開可",
		[QUEUE_TLP_GREEN] = "コミュニティ内で共有可（一般への公開は不可）",
		[QUEUE_TLP_AMBER] = "自組織内と、知る必要のある取引先に限り共有可",
		[QUEUE_TLP_AMBER_STRICT] = "自組織内に限り共有可",
		[QUEUE_TLP_RED] = "受信者本人限り（他者への共有は不可）",
	};
	static const char *const eng[] = {
		[QUEUE_TLP_CLEAR] = "may be shared freely",
		[QUEUE_TLP_GREEN] = "may be shared within your community",
		[QUEUE_TLP_AMBER] = "your organisation and its clients who "
		    "need to know",
		[QUEUE_TLP_AMBER_STRICT] = "your organisation only",
		[QUEUE_TLP_RED] = "the named recipients only; do not share",
	};

	if ((unsigned)t > QUEUE_TLP_RED)
		return "";
	return en ? eng[t] : ja[t];
}

/* One line of data: control characters as spaces. */
static char *
one_line(const char *s)
{
	char *o = strdup(s != NULL ? s : "");

	for (char *p = o; p != NULL && *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return o;
}

/* The strings of a fax_doc, owned. */
struct words {
	struct mail_buf	header, tlp, title, body, box_lines;
	char		code[CODE_LEN + 2];
	char		*name, *org;
};

static void
words_free(struct words *w)
{
	free(w->header.p);
	free(w->tlp.p);
	free(w->title.p);
	free(w->body.p);
	free(w->box_lines.p);
	free(w->name);
	free(w->org);
}

/* Word m for a fax page into w and d.  0, or -1 out of memory. */
static int
fax_words(const struct fax_conf *fc, const struct channel_msg *m,
    struct words *w, struct fax_doc *d)
{
	char when[64], code[CODE_LEN + 1];
	int en = fc->en, strict = channel_tlp_restricted(m->tlp);
	int cancel = m->notice != NULL && strcmp(m->notice, "cancel") == 0;
	int confirmed = m->notice != NULL && strcmp(m->notice, "update") == 0;
	const char *body = m->body != NULL ? m->body : "";

	memset(w, 0, sizeof(*w));
	memset(d, 0, sizeof(*d));
	w->name = one_line(m->name);
	w->org = one_line(m->org);
	snprintf(code, sizeof(code), "%s", m->code != NULL ? m->code : "");
	code_format(code, w->code);
	relay_time_local(m->created, when, sizeof(when));

	mail_buf_fmt(&w->header, en ? "%s  Alert %s  %s" :
	    "%s 発信  通知番号 %s  %s", fc->relay, m->alert, when);
	mail_buf_fmt(&w->tlp, "TLP:%s", queue_tlp_name(m->tlp));
	if (m->drill)
		mail_buf_str(&w->title, en ? "[DRILL] " : "【訓練】");
	if (m->round > 0)
		mail_buf_str(&w->title, en ? "[Reminder] " : "【再送】");
	if (m->revision > 1 && !cancel)
		mail_buf_str(&w->title, en ? "[Update] " : "【更新】");
	if (cancel)
		mail_buf_str(&w->title, en ? "[Cancelled] " : "【取消】");
	if (strict)
		mail_buf_str(&w->title, en ? "An alert for you is waiting in "
		    "closed-network mail" : "閉域網メールで通知が届いています");
	else {
		char *s = one_line(m->subject);

		mail_buf_str(&w->title, s != NULL ? s : "");
		free(s);
	}

	if (w->name != NULL && *w->name != '\0')
		mail_buf_fmt(&w->body, en ? "To: %s%s%s\n\n" : "%s%s%s 様\n\n",
		    en ? w->name : w->org, (w->org && *w->org) ? (en ? ", " :
		    " ") : "", en ? w->org : w->name);
	if (m->drill)
		mail_buf_str(&w->body, en ? "[DRILL] This is a drill. No real "
		    "event has occurred.\n\n" : "【訓練】これは訓練です。実際の"
		    "事象ではありません。\n\n");
	if (m->round > 0)
		mail_buf_fmt(&w->body, en ? "[Reminder %d] We have not yet "
		    "received your confirmation.\n\n" : "【再送】受信確認をまだ"
		    "いただいていないため、再度お送りします（再送 %d 回目）。\n\n",
		    m->round);
	if (m->revision > 1)
		mail_buf_fmt(&w->body, en ? "[Update] This alert has been "
		    "updated (revision %d). It replaces the earlier version."
		    "\n\n" : "【更新】この通知は内容が更新されました（第 %d 版）。"
		    "以前の版に代わるものです。\n\n", m->revision);
	if (cancel) {
		char *r = one_line(m->reason);

		mail_buf_fmt(&w->body, en ? "The alert %s has been cancelled. "
		    "No action is needed.\n" : "通知番号 %s の通知は取り消されました。"
		    "対応の必要はありません。\n", m->alert);
		if (r != NULL && *r != '\0')
			mail_buf_fmt(&w->body, en ? "Reason: %s\n" :
			    "取消理由: %s\n", r);
		free(r);
	} else if (strict)
		mail_buf_fmt(&w->body, en ? "This alert is TLP:%s: its text "
		    "is not sent by fax. Please read it in your closed-network "
		    "(LGWAN) mail.\n" : "この通知の共有区分は TLP:%s のため、本文は"
		    " FAX ではお送りしません。閉域網（LGWAN）のメールでご確認"
		    "ください。\n", queue_tlp_name(m->tlp));
	else
		mail_buf_str(&w->body, body);
	mail_buf_fmt(&w->body, "\n\nTLP:%s (%s)", queue_tlp_name(m->tlp),
	    tlp_words(m->tlp, en));

	if (cancel || confirmed)
		mail_buf_fmt(&w->box_lines, en ? "%sNo reply or confirmation is "
		    "needed.\nAlert %s" : "%sこの通知への返信・確認は不要です。\n"
		    "通知番号: %s", confirmed ? (en ? "You have already confirmed "
		    "this alert. " : "受信確認はすでにいただいています。") : "",
		    m->alert);
	else if (en) {
		mail_buf_str(&w->box_lines, "When you have this fax, please "
		    "confirm with the code above:\n"
		    "- reply by mail or SMS with the code, or\n"
		    "- call or fax us back and quote the code.");
		if (fc->confirm_to != NULL)
			mail_buf_fmt(&w->box_lines, "\nContact: %s",
			    fc->confirm_to);
		mail_buf_fmt(&w->box_lines, "\nAlert %s", m->alert);
	} else {
		mail_buf_str(&w->box_lines, "この FAX を受け取られたら、上の"
		    "確認コードで次のいずれかの方法でお知らせください。\n"
		    "・メールまたは SMS で確認コードを返信する\n"
		    "・電話または FAX で折り返し、確認コードを伝える");
		if (fc->confirm_to != NULL)
			mail_buf_fmt(&w->box_lines, "\n連絡先: %s",
			    fc->confirm_to);
		mail_buf_fmt(&w->box_lines, "\n通知番号: %s", m->alert);
	}
	if (w->name == NULL || w->org == NULL || w->header.oom ||
	    w->tlp.oom || w->title.oom || w->body.oom || w->box_lines.oom)
		return -1;
	d->font = fc->font;
	d->fine = fc->fine;
	d->header = w->header.p;
	d->tlp = w->tlp.p;
	d->title = w->title.p;
	d->body = w->body.p;
	d->box_title = m->notice != NULL ? (en ? "NO REPLY NEEDED" :
	    "確認は不要です") : (en ? "PLEASE CONFIRM RECEIPT" : "受信確認のお願い");
	d->code = m->notice != NULL ? "" : w->code;
	d->box_lines = w->box_lines.p;
	return 0;
}

/* Word and render m's pages; the words stay in w and d for the caller,
 * who frees them with words_free(w) whatever is returned. */
static int
fax_pages_of(const struct fax_conf *fc, const struct channel_msg *m,
    struct fax_pages *pages, struct words *w, struct fax_doc *d, char *err,
    size_t errlen)
{
	memset(w, 0, sizeof(*w));
	if (m->code == NULL || strlen(m->code) != CODE_LEN) {
		snprintf(err, errlen, "the confirmation code is not %d "
		    "characters", CODE_LEN);
		return -1;
	}
	if (fax_words(fc, m, w, d) == -1) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return fax_render(d, pages, err, errlen);
}

int
fax_dial_string(const char *number, const char *country, const char *intl,
    char *out, size_t outlen)
{
	size_t cl = strlen(country);
	int n;

	if (number == NULL || number[0] != '+' ||
	    !all_digits(number + 1, 6, 15))
		return -1;
	if (cl > 0 && strncmp(number + 1, country, cl) == 0)
		n = snprintf(out, outlen, "0%s", number + 1 + cl);
	else
		n = snprintf(out, outlen, "%s%s", intl, number + 1);
	return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static int
fax_render_text(void *state, const struct channel_msg *m, char **out,
    size_t *len, char *err, size_t errlen)
{
	const struct fax_conf *fc = state;
	struct fax_pages pages;
	struct words w;
	struct fax_doc d;
	struct mail_buf b = { 0 };
	char dial[64];

	if (fax_dial_string(m->address, fc->country, fc->intl_prefix, dial,
	    sizeof(dial)) == -1) {
		snprintf(err, errlen, "fax number %s is not an E.164 number",
		    m->address != NULL ? m->address : "(none)");
		return -1;
	}
	if (fax_pages_of(fc, m, &pages, &w, &d, err, errlen) == -1) {
		words_free(&w);
		return -1;
	}
	mail_buf_fmt(&b, "Fax to %s (dialled %s): %d page%s, A4, %s "
	    "(204x%d dpi)\n", m->address, dial, pages.n, pages.n == 1 ? "" :
	    "s", fc->fine ? "fine" : "normal", fc->fine ? 196 : 98);
	mail_buf_fmt(&b, "(write the pages with -o FILE.tif or -o FILE.png)\n"
	    "\n%s  %s\n\n%s\n\n%s\n\n[%s]\n%s\n%s\n", d.header, d.tlp,
	    d.title, d.body, d.box_title, d.code, d.box_lines);
	words_free(&w);
	fax_pages_free(&pages);
	if (b.oom) {
		free(b.p);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

static int
fax_render_file(void *state, const struct channel_msg *m, const char *path,
    char *err, size_t errlen)
{
	struct fax_pages pages;
	struct words w;
	struct fax_doc d;
	size_t n = strlen(path);
	int rc;

	rc = fax_pages_of(state, m, &pages, &w, &d, err, errlen);
	words_free(&w);
	if (rc == -1)
		return -1;
	if (n > 4 && strcasecmp(path + n - 4, ".png") == 0)
		rc = fax_write_png(&pages, path, err, errlen);
	else
		rc = fax_write_tiff(&pages, path, err, errlen);
	fax_pages_free(&pages);
	return rc;
}

/* ---- the HylaFAX client protocol -------------------------------------------- */

static volatile sig_atomic_t withdrawn;

static void
on_term(int sig)
{
	(void)sig;
	withdrawn = 1;
}

struct hf {
	int	 fd;
	char	 buf[REPLY_MAX];
	size_t	 len;
	char	 reply[REPLY_MAX];	/* the last reply, lines joined by LF */
	int	 code;
	int	 timeout_ms;	/* for the next reply; 0: IO_TIMEOUT_MS */
	struct sockaddr_storage peer;
	socklen_t peerlen;
};

/* Connect to host:port within ms.  The fd, or -1 with err. */
static int
tcp_connect(const char *host, const char *port, int ms,
    struct sockaddr_storage *peer, socklen_t *peerlen, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, rc, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd p;
		socklen_t sl = sizeof(e);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
		    errno != EINPROGRESS) {
			e = errno;
			close(fd);
			fd = -1;
			continue;
		}
		p = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, ms) != 1 || getsockopt(fd, SOL_SOCKET,
		    SO_ERROR, &e, &sl) == -1 || e != 0) {
			if (e == 0)
				e = ETIMEDOUT;
			close(fd);
			fd = -1;
			continue;
		}
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
		if (peer != NULL) {
			memcpy(peer, ai->ai_addr, ai->ai_addrlen);
			*peerlen = ai->ai_addrlen;
		}
		break;
	}
	freeaddrinfo(res);
	if (fd == -1)
		snprintf(err, errlen, "connecting to %s port %s: %s", host,
		    port, strerror(e));
	return fd;
}

/* Wait until fd is readable (or writable) within ms: 0, or -1 (errno). */
static int
wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t until = queue_now() + ms;
	int rc;

	/* a SIGTERM (withdrawal) interrupts: keep waiting, follow() acts
	 * on it between commands */
	while ((rc = poll(&p, 1, ms)) == -1 && errno == EINTR)
		if ((ms = (int)(until - queue_now())) < 0)
			ms = 0;
	if (rc == 1)
		return 0;
	errno = rc == 0 ? ETIMEDOUT : errno;
	return -1;
}

int
fax_reply_take(char *buf, size_t *len, char *reply, size_t replylen,
    int *code, char *err, size_t errlen)
{
	size_t off = 0, rl = 0;
	char first[4] = "";

	if (replylen == 0)
		return -1;
	reply[0] = '\0';
	for (;;) {
		/* lines end in CRLF; a bare LF can be part of a status text */
		char *nl = memmem(buf + off, *len - off, "\r\n", 2);
		const char *line = buf + off;
		size_t ll;

		if (nl == NULL) {
			reply[0] = '\0';
			return 0;		/* not complete yet */
		}
		ll = (size_t)(nl - line);
		off += ll + 2;
		if (first[0] == '\0') {
			if (ll < 3 || line[0] < '1' || line[0] > '5' ||
			    line[1] < '0' || line[1] > '9' || line[2] < '0' ||
			    line[2] > '9') {
				snprintf(err, errlen, "HylaFAX: not a reply: "
				    "%.*s", (int)(ll < 80 ? ll : 80), line);
				return -1;
			}
			memcpy(first, line, 3);
		}
		/* the text, control characters as spaces, lines joined by LF */
		if (rl + ll + 2 < replylen) {
			if (rl > 0)
				reply[rl++] = '\n';
			for (size_t i = 0; i < ll; i++)
				reply[rl++] = (unsigned char)line[i] < 0x20 ?
				    ' ' : line[i];
			reply[rl] = '\0';
		}
		if (ll >= 3 && memcmp(line, first, 3) == 0 &&
		    (ll == 3 || line[3] == ' '))
			break;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
	*code = atoi(first);
	return 1;
}

/* Read one reply (FTP style: "NNN-" continues, "NNN " ends).  The code,
 * or -1 with err. */
static int
hf_reply(struct hf *h, char *err, size_t errlen)
{
	int rc;

	while ((rc = fax_reply_take(h->buf, &h->len, h->reply,
	    sizeof(h->reply), &h->code, err, errlen)) == 0) {
		ssize_t r;

		if (h->len == sizeof(h->buf)) {
			snprintf(err, errlen, "HylaFAX: a reply too long");
			return -1;
		}
		if (wait_fd(h->fd, POLLIN, h->timeout_ms > 0 ?
		    h->timeout_ms : IO_TIMEOUT_MS) == -1) {
			snprintf(err, errlen, "HylaFAX: no reply: %s",
			    strerror(errno));
			return -1;
		}
		r = read(h->fd, h->buf + h->len, sizeof(h->buf) - h->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "HylaFAX closed the connection%s%s",
			    r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
			return -1;
		}
		h->len += (size_t)r;
	}
	if (rc == -1) {
		h->code = 0;
		return -1;
	}
	return h->code;
}

/* Send one command line and read its reply: the code, or -1 with err. */
static int
hf_cmd(struct hf *h, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
hf_cmd(struct hf *h, char *err, size_t errlen, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;
	size_t off = 0;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2 ||
	    strpbrk(line, "\r\n") != NULL) {
		snprintf(err, errlen, "a HylaFAX command refused: too long or "
		    "holds a line break");
		return -1;
	}
	memcpy(line + n, "\r\n", 2);
	n += 2;
	while (off < (size_t)n) {
		ssize_t w = write(h->fd, line + off, (size_t)n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "writing to HylaFAX: %s",
			    w < 0 ? strerror(errno) : "closed");
			return -1;
		}
		off += (size_t)w;
	}
	return hf_reply(h, err, errlen);
}

/* "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)": a data connection to
 * the control connection's own address (the reply's address is ignored,
 * as careful FTP clients do) and the port.  The fd, or -1. */
static int
hf_pasv(struct hf *h, char *err, size_t errlen)
{
	unsigned v[6];
	char port[8], host[NI_MAXHOST];
	const char *p;

	if (hf_cmd(h, err, errlen, "PASV") != 227)
		goto refused;
	if ((p = strchr(h->reply, '(')) == NULL || sscanf(p, "(%u,%u,%u,%u,"
	    "%u,%u)", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6 ||
	    v[4] > 255 || v[5] > 255)
		goto refused;
	snprintf(port, sizeof(port), "%u", v[4] * 256 + v[5]);
	if (getnameinfo((struct sockaddr *)&h->peer, h->peerlen, host,
	    sizeof(host), NULL, 0, NI_NUMERICHOST) != 0) {
		snprintf(err, errlen, "HylaFAX: no address for data");
		return -1;
	}
	return tcp_connect(host, port, IO_TIMEOUT_MS, NULL, NULL, err, errlen);
refused:
	if (h->code > 0)
		snprintf(err, errlen, "HylaFAX refused PASV: %.200s", h->reply);
	return -1;
}

/* Log in.  0, or -1 with err. */
static int
hf_open(struct hf *h, const struct fax_conf *fc, char *err, size_t errlen)
{
	int code;

	memset(h, 0, sizeof(*h));
	h->peerlen = sizeof(h->peer);
	if ((h->fd = tcp_connect(fc->host, fc->port, IO_TIMEOUT_MS, &h->peer,
	    &h->peerlen, err, errlen)) == -1)
		return -1;
	if (hf_reply(h, err, errlen) != 220) {
		if (h->code > 0)
			snprintf(err, errlen, "HylaFAX: %.200s", h->reply);
		return -1;
	}
	code = hf_cmd(h, err, errlen, "USER %s", fc->user);
	if (code == 331 || code == 332) {
		if (fc->password == NULL) {
			snprintf(err, errlen, "HylaFAX wants a password for "
			    "%s: set password_file", fc->user);
			return -1;
		}
		/* the password is never part of an error or a log line */
		code = hf_cmd(h, err, errlen, "PASS %s", fc->password);
	}
	if (code != 230) {
		if (code > 0)
			snprintf(err, errlen, "HylaFAX refused the login of "
			    "%s: %.200s", fc->user, h->reply);
		return -1;
	}
	if (hf_cmd(h, err, errlen, "TYPE I") != 200 ||
	    hf_cmd(h, err, errlen, "MODE S") != 200) {
		if (h->code > 0)
			snprintf(err, errlen, "HylaFAX: %.200s", h->reply);
		return -1;
	}
	return 0;
}

static void
hf_close(struct hf *h)
{
	char err[64];

	if (h->fd < 0)
		return;
	hf_cmd(h, err, sizeof(err), "QUIT");
	close(h->fd);
	h->fd = -1;
}

/* Upload the file at path; the server's name for it in name. */
static int
hf_store(struct hf *h, const char *path, char *name, size_t namelen,
    char *err, size_t errlen)
{
	char chunk[16384];
	const char *p;
	int dfd, ffd;
	ssize_t r;

	if ((dfd = hf_pasv(h, err, errlen)) == -1)
		return -1;
	/* "150 FILE: /tmp/doc12.tif (Opening new data connection)." */
	if (hf_cmd(h, err, errlen, "STOT") != 150 ||
	    (p = strstr(h->reply, "FILE: ")) == NULL ||
	    sscanf(p + 6, "%255[^ ]", name) != 1 || strlen(name) >= namelen ||
	    strchr(name, '"') != NULL) {
		if (h->code > 0)
			snprintf(err, errlen, "HylaFAX refused the upload: "
			    "%.200s", h->reply);
		close(dfd);
		return -1;
	}
	if ((ffd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(dfd);
		return -1;
	}
	while ((r = read(ffd, chunk, sizeof(chunk))) > 0) {
		for (ssize_t off = 0; off < r;) {
			ssize_t w;

			if (wait_fd(dfd, POLLOUT, IO_TIMEOUT_MS) == -1 ||
			    (w = write(dfd, chunk + off, (size_t)(r - off))) <= 0) {
				snprintf(err, errlen, "sending the pages to "
				    "HylaFAX: %s", strerror(errno));
				close(ffd);
				close(dfd);
				return -1;
			}
			off += w;
		}
	}
	close(ffd);
	close(dfd);
	if (hf_reply(h, err, errlen) != 226) {
		if (h->code > 0)
			snprintf(err, errlen, "HylaFAX: upload: %.200s",
			    h->reply);
		return -1;
	}
	return 0;
}

/* The value of "NAME:" in the JPARM listing, or NULL. */
static const char *
jparm_value(const char *reply, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);

	for (const char *p = reply; p != NULL && *p != '\0';) {
		while (*p == ' ')
			p++;
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *e = strchr(v, '\n');
			size_t l;

			while (*v == ' ')
				v++;
			l = e != NULL ? (size_t)(e - v) : strlen(v);
			if (l >= outlen)
				l = outlen - 1;
			memcpy(out, v, l);
			out[l] = '\0';
			return out;
		}
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : NULL;
	}
	return NULL;
}

static int
jparm_int(const char *reply, const char *name)
{
	char v[32];
	long n;

	if (jparm_value(reply, name, v, sizeof(v)) == NULL)
		return 0;
	n = strtol(v, NULL, 10);
	return n < 0 ? 0 : n > 100000 ? 100000 : (int)n;
}

int
fax_job_parse(const char *reply, struct fax_job *j)
{
	memset(j, 0, sizeof(*j));
	if (jparm_value(reply, "STATE", j->state, sizeof(j->state)) == NULL)
		return 0;
	j->pages = jparm_int(reply, "NPAGES");
	j->total = jparm_int(reply, "TOTPAGES");
	j->dials = jparm_int(reply, "TOTDIALS");
	j->tries = jparm_int(reply, "TOTTRIES");
	j->statuscode = jparm_int(reply, "STATUSCODE");
	jparm_value(reply, "STATUS", j->status, sizeof(j->status));
	return 1;
}

/* Job id's state.  1, 0 if HylaFAX does not know it, -1 with err. */
static int
hf_job(struct hf *h, long id, struct fax_job *j, char *err, size_t errlen)
{
	memset(j, 0, sizeof(*j));
	if (hf_cmd(h, err, errlen, "JOB %ld", id) != 200)
		return h->code >= 500 && h->code < 600 ? 0 : -1;
	if (hf_cmd(h, err, errlen, "JPARM") != 217) {
		if (h->code > 0)
			snprintf(err, errlen, "HylaFAX: JPARM: %.200s",
			    h->reply);
		return -1;
	}
	return fax_job_parse(h->reply, j);
}

/*
 * Remove job id from HylaFAX (best effort: it may have ended).  A queued
 * job is killed at once; on a job being sent, hfaxd answers JKILL only
 * when the call has ended (HylaFAX does not cut a call short): wait for
 * that, up to the channel's timeout, so that replies stay in step.
 */
static void
hf_remove(struct hf *h, long id, int64_t wait_ms)
{
	char err[256];

	if (hf_cmd(h, err, sizeof(err), "JOB %ld", id) != 200)
		return;
	h->timeout_ms = wait_ms > IO_TIMEOUT_MS ? (int)wait_ms : IO_TIMEOUT_MS;
	if (hf_cmd(h, err, sizeof(err), "JKILL") == -1) {
		h->timeout_ms = 0;
		return;
	}
	h->timeout_ms = 0;
	hf_cmd(h, err, sizeof(err), "JDELE");
}

/* Submit the document as a job to dial; its id in *id. */
static int
hf_submit(struct hf *h, const struct fax_conf *fc,
    const struct channel_msg *m, const char *doc, const char *dial,
    long *id, char *err, size_t errlen)
{
	const char *p;
	int kill_min = (int)((fc->timeout + 59) / 60);

	/* JNEW copies the current job: start from the defaults.
	 * "200 New job created: jobid: 12 groupid: 12."  Two clients
	 * creating jobs at once can collide on hfaxd's job-number file
	 * ("503 Unable to open sequence number file"): try again shortly. */
	if (hf_cmd(h, err, errlen, "JOB default") != 200)
		goto refused;
	for (int i = 0; i < 10; i++) {
		struct timespec ts = { 0, 100000000L * (i + 1) };

		if (hf_cmd(h, err, errlen, "JNEW") != 503 ||
		    strstr(h->reply, "sequence number") == NULL)
			break;
		nanosleep(&ts, NULL);
	}
	if (h->code != 200 ||
	    (p = strstr(h->reply, "jobid:")) == NULL ||
	    (*id = strtol(p + 6, NULL, 10)) <= 0)
		goto refused;
	if (hf_cmd(h, err, errlen, "JPARM FROMUSER \"%s\"", fc->user) != 213 ||
	    hf_cmd(h, err, errlen, "JPARM DIALSTRING \"%s\"", dial) != 213 ||
	    hf_cmd(h, err, errlen, "JPARM MAXDIALS 1") != 213 ||
	    hf_cmd(h, err, errlen, "JPARM MAXTRIES 1") != 213 ||
	    hf_cmd(h, err, errlen, "JPARM LASTTIME %02d%02d%02d",
	    kill_min / 1440, kill_min / 60 % 24, kill_min % 60) != 213 ||
	    hf_cmd(h, err, errlen, "JPARM SENDTIME NOW") != 213 ||
	    hf_cmd(h, err, errlen, "JPARM NOTIFY NONE") != 213 ||
	    hf_cmd(h, err, errlen, "JPARM VRES %d",
	    fc->fine ? 196 : 98) != 213 ||
	    hf_cmd(h, err, errlen, "JPARM PAGEWIDTH 209") != 213 ||
	    hf_cmd(h, err, errlen, "JPARM PAGELENGTH 296") != 213 ||
	    hf_cmd(h, err, errlen, "JPARM JOBINFO \"dengon %lld\"",
	    (long long)m->attempt) != 213 ||
	    hf_cmd(h, err, errlen, "JPARM DOCUMENT \"%s\"", doc) != 200)
		goto refused;
	if (hf_cmd(h, err, errlen, "JSUBM") != 200)
		goto refused;
	return 0;
refused:
	if (h->code > 0)
		snprintf(err, errlen, "HylaFAX refused the job: %.200s",
		    h->reply);
	return -1;
}

/* ---- send ------------------------------------------------------------------- */

static void
result(channel_report_fn report, void *arg, const struct channel_msg *m,
    enum channel_outcome o, int delivered, const char *evidence,
    const char *error)
{
	struct channel_result r;

	memset(&r, 0, sizeof(r));
	r.attempt = m->attempt;
	r.outcome = o;
	r.delivered = delivered;
	snprintf(r.evidence, sizeof(r.evidence), "%s", evidence ? evidence :
	    "");
	snprintf(r.error, sizeof(r.error), "%s", error ? error : "");
	report(&r, arg);
}

/* Is HylaFAX's status text about the number rather than the line? */
static int
status_permanent(const char *s)
{
	static const char *const perm[] = {
		"invalid dialstring", "Invalid dialstring",
		"blacklisted", "Blacklisted", "not permitted",
		"Number blocked", "number blocked",
	};

	for (size_t i = 0; i < sizeof(perm) / sizeof(perm[0]); i++)
		if (strstr(s, perm[i]) != NULL)
			return 1;
	return 0;
}

/* Wait for job id to end; report the outcome.  0, or -1 (the connection
 * failed: the job is left to its kill time). */
static int
follow(struct hf *h, const struct fax_conf *fc, const struct channel_msg *m,
    long id, channel_report_fn report, void *arg, char *err, size_t errlen)
{
	int64_t until = queue_now() + fc->timeout * 1000;
	char ev[512];
	struct fax_job j;
	int rc;

	for (;;) {
		if (withdrawn || queue_now() >= until) {
			int w = withdrawn;

			hf_remove(h, id, fc->timeout * 1000);
			snprintf(ev, sizeof(ev), "HylaFAX job %ld removed", id);
			result(report, arg, m, CHANNEL_TEMPFAIL, 0, ev, w ?
			    "withdrawn: the delivery was closed while the fax "
			    "was queued" : "no result within the channel's "
			    "timeout");
			return 0;
		}
		if ((rc = hf_job(h, id, &j, err, errlen)) == -1)
			return -1;
		if (rc == 0) {
			snprintf(ev, sizeof(ev), "HylaFAX job %ld", id);
			result(report, arg, m, CHANNEL_TEMPFAIL, 0, ev,
			    "the job vanished from HylaFAX's queues");
			return 0;
		}
		if (strcmp(j.state, "DONE") == 0 ||
		    strcmp(j.state, "FAILED") == 0) {
			int done = strcmp(j.state, "DONE") == 0;

			snprintf(ev, sizeof(ev), "HylaFAX job %ld: %s; pages "
			    "%d/%d, dials %d, tries %d%s%s", id, done ? "done" :
			    "failed", j.pages, j.total, j.dials, j.tries,
			    j.status[0] ? ": " : "", j.status);
			if (done && j.total > 0 && j.pages >= j.total)
				result(report, arg, m, CHANNEL_OK, 1, ev, NULL);
			else
				result(report, arg, m,
				    status_permanent(j.status) ?
				    CHANNEL_PERMFAIL : CHANNEL_TEMPFAIL, 0, ev,
				    j.status[0] ? j.status :
				    "the fax was not sent");
			hf_cmd(h, err, errlen, "JOB %ld", id);
			hf_cmd(h, err, errlen, "JDELE");
			return 0;
		}
		/* nanosleep returns early on SIGTERM */
		struct timespec ts = { POLL_MS / 1000, (POLL_MS % 1000) *
		    1000000L };
		nanosleep(&ts, NULL);
	}
}

static int
fax_send(void *state, const struct channel_msg *msgs, size_t n,
    channel_report_fn report, void *arg, char *err, size_t errlen)
{
	const struct fax_conf *fc = state;
	struct sigaction sa;
	struct hf h = { .fd = -1 };
	int rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;	/* no SA_RESTART: the sleep between polls
					   ends at once (reads retry EINTR) */
	sigaction(SIGTERM, &sa, NULL);
	for (size_t i = 0; i < n; i++) {
		const struct channel_msg *m = &msgs[i];
		char dial[64], tmp[] = "/tmp/dengon-fax-XXXXXX";
		char doc[256], why[512];
		struct fax_pages pages;
		struct words w;
		struct fax_doc d;
		long id = 0;
		int fd;

		if (fax_dial_string(m->address, fc->country, fc->intl_prefix,
		    dial, sizeof(dial)) == -1) {
			result(report, arg, m, CHANNEL_PERMFAIL, 0, NULL,
			    "not an E.164 fax number");
			continue;
		}
		if (withdrawn) {
			result(report, arg, m, CHANNEL_TEMPFAIL, 0, NULL,
			    "withdrawn before it was sent");
			continue;
		}
		/* a page that cannot be drawn now (the font unreadable, out
		 * of memory) may be drawn later: tempfail */
		rc = fax_pages_of(fc, m, &pages, &w, &d, why, sizeof(why));
		words_free(&w);
		if (rc == -1) {
			result(report, arg, m, CHANNEL_TEMPFAIL, 0, NULL, why);
			continue;
		}
		if ((fd = mkstemp(tmp)) == -1) {
			fax_pages_free(&pages);
			snprintf(why, sizeof(why), "a temporary file: %s",
			    strerror(errno));
			result(report, arg, m, CHANNEL_TEMPFAIL, 0, NULL, why);
			continue;
		}
		close(fd);
		rc = fax_write_tiff(&pages, tmp, why, sizeof(why));
		fax_pages_free(&pages);
		if (rc == -1) {
			unlink(tmp);
			result(report, arg, m, CHANNEL_TEMPFAIL, 0, NULL, why);
			continue;
		}
		if (h.fd < 0 && hf_open(&h, fc, err, errlen) == -1) {
			unlink(tmp);
			if (h.fd >= 0)
				close(h.fd);
			return -1;	/* the channel is down */
		}
		rc = hf_store(&h, tmp, doc, sizeof(doc), err, errlen);
		unlink(tmp);
		if (rc == -1 || hf_submit(&h, fc, m, doc, dial, &id, err,
		    errlen) == -1) {
			if (h.code >= 500 && h.code < 600 && id == 0) {
				/* the server works, but refuses this */
				result(report, arg, m, CHANNEL_TEMPFAIL, 0,
				    NULL, err);
				continue;
			}
			if (id > 0)
				hf_remove(&h, id, fc->timeout * 1000);
			hf_close(&h);
			return -1;
		}
		if (follow(&h, fc, m, id, report, arg, err, errlen) == -1) {
			close(h.fd);
			h.fd = -1;
			return -1;
		}
	}
	hf_close(&h);
	return 0;
}

const struct channel_driver channel_fax = {
	.type = "fax",
	.max_batch = 1,
	.configure = fax_configure,
	.render = fax_render_text,
	.render_file = fax_render_file,
	.withdraw = 1,
	.send = fax_send,
	.release = fax_release,
};
