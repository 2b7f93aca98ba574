/*
 * smtp.c - the internet-mail channel driver: libESMTP, STARTTLS, AUTH, DSN.
 *
 * configure() reads one [channel NAME] of type smtp (and the AUTH password
 * from its password_file) into a struct smtp_conf; render() is mail.c;
 * send() runs one libESMTP session that carries up to SMTP_MAX_BATCH
 * messages, one recipient each, and reports each outcome as soon as the
 * server has answered for it.  The daemon runs send() in a child process
 * per session: libESMTP is never reused in one process, has no connect
 * timeout (the daemon's deadline kills the child) and may block freely.
 *
 * The engine is shared (channels/smtp.h): smtp_conf_new() reads the keys
 * smtp and lgwan have in common, smtp_session() runs a session with the
 * rendering function a driver gives.  This driver is that engine with
 * mail.c's UTF-8 rendering; lgwan.c is the same engine under its own
 * profile, with its own struct smtp_conf (its own smarthost).
 *
 * State owned: the struct smtp_conf (the password is wiped on release and
 * never written anywhere: not in errors, not in logs); during send(), a
 * struct session, the libESMTP session and our SSL_CTX.
 *
 * TLS.  tls = starttls makes STARTTLS required, with our SSL_CTX: TLS 1.2
 * or later, the CAs of ca_file (or the system's), SSL_VERIFY_PEER and the
 * configured host checked by OpenSSL itself (X509_VERIFY_PARAM: a name, or
 * an IP literal).  libESMTP does not check names properly (DNS names only,
 * no IP addresses) and ends a session whose TLS failed as if all went
 * well, so every TLS failure is recorded here, from the verify callback
 * and from libESMTP's events, and turns the whole session into a failure:
 * every message tempfail with the reason, nothing sent.  tls_verify = no
 * accepts any certificate (for tests only).  TLS 1.3 session tickets are
 * read as soon as the handshake ends (absorb_tickets(): libESMTP would
 * take them for a reply and drop the session).
 *
 * Classification of one message (one recipient), evidence = the reply:
 *   MAIL 4xx / 5xx                -> tempfail (a refused sender is about
 *                                    us - our from, our relay - never
 *                                    about the recipient: it must not
 *                                    fail recipients or skip steps)
 *   RCPT 4xx / 5xx                -> tempfail / permfail, whatever DATA
 *                                    got (with PIPELINING a 503 or 554 to
 *                                    DATA only says "no valid recipients")
 *   RCPT 2xx, DATA 2xx            -> ok (evidence: the reply to the data)
 *   RCPT 2xx, DATA 4xx or 503     -> tempfail
 *   RCPT 2xx, DATA other 5xx      -> permfail
 *   no reply (disconnect, 421 and gone, timeout) -> tempfail
 * After a refused AUTH, libESMTP still tries MAIL FROM; what the server
 * then refuses is about our credentials, so it is a tempfail saying
 * "AUTH refused: ...".  A session that fails before its first MAIL FROM
 * (connect, greeting, EHLO, TLS) or whose AUTH was refused makes send()
 * return -1 with the reason, after every message has been reported
 * tempfail with that reason.  SIGPIPE is ignored during send(): a server
 * that hangs up is an outcome, not a crash.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
/* after OpenSSL and auth-client.h, which enable parts of libesmtp.h */
#include <auth-client.h>
#include <libesmtp.h>

#include "channels/channel.h"
#include "channels/mail.h"
#include "channels/smtp.h"

#define TICKET_WAIT_MS	300		/* for TLS 1.3 session tickets */
#define TICKET_MORE_MS	30
#define PASSWORD_MAX	1024		/* bytes in password_file */

/* One configured channel (opaque outside: channels/smtp.h). */
struct smtp_conf {
	char	*channel;		/* [channel NAME] */
	char	*host;
	char	 hostport[300];		/* "host:port" for libESMTP */
	int	 starttls;		/* 1: required; 0: tls = none */
	int	 verify;
	char	*ca_file;		/* NULL: the system's trust store */
	char	*user;			/* NULL: no AUTH */
	char	*password;		/* secret: never logged or printed */
	char	*from;			/* as configured */
	char	 from_addr[256];	/* the reverse path */
	char	*reply_to;
	char	*relay;
	char	*language;
	long	 timeout_ms;
	int	 concurrency;
};

/* One message of a session. */
struct item {
	const struct channel_msg *m;
	char			*text;		/* rendered, CRLF */
	smtp_message_t		 msg;
	smtp_recipient_t	 rcpt;
	int			 reported;
};

/* What one send() call learns while libESMTP runs. */
struct session {
	const struct smtp_conf	*cf;
	struct item		*items;
	size_t			 n;
	channel_report_fn	 report;
	void			*arg;
	int			 connected;	/* SMTP_EV_CONNECT seen */
	int			 tls_ok;	/* SMTP_EV_STARTTLS_OK seen */
	int			 mail_answered;	/* a MAIL FROM got a reply */
	int			 auth_ok;	/* AUTH answered 2xx */
	char			 auth_err[256];	/* AUTH answered 4xx/5xx */
	char			 tls_err[256];	/* the first TLS failure */
	const char		*verb;		/* the last command sent */
	char			 reply[512];	/* the last final reply line */
	char			 line[512];	/* a reply line being read */
	size_t			 linelen;
};

/*
 * Turn Nagle's algorithm off on the session's TCP socket.  libESMTP writes
 * a message larger than its 2,048-byte buffer in two writes; with Nagle the
 * short second one waits for the ACK of the first, which the server delays
 * (~40 ms) as it has nothing to say yet: about 22 messages a second per
 * session (bench/README.md).  libESMTP does not hand out its socket, but
 * this process (one session per child) has only that one TCP socket.
 */
static void
tcp_nodelay(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	for (int fd = 3; fd < 256; fd++) {
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
			continue;
		if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
			continue;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	}
}

/* ---- configure -------------------------------------------------------- */

static char *
xstrdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}


int
smtp_conf_new(const struct conf_channel *ch, const struct conf *relay,
    const char *default_port, struct smtp_conf **state, char *err,
    size_t errlen)
{
	struct smtp_conf *cf;
	const char *v, *port, *tls, *pwfile;
	char name[256];
	int64_t secs;
	int b;

	*state = NULL;
	if ((cf = calloc(1, sizeof(*cf))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cf->channel = strdup(ch->name);
	if ((v = conf_channel_get(ch, "host")) == NULL || *v == '\0') {
		snprintf(err, errlen, "channel %s: host is missing", ch->name);
		goto fail;
	}
	if (strchr(v, ':') != NULL) {
		snprintf(err, errlen, "channel %s: host %s: libESMTP cannot "
		    "connect to an IPv6 literal; give a host name", ch->name, v);
		goto fail;
	}
	cf->host = strdup(v);
	port = conf_channel_get(ch, "port");
	snprintf(cf->hostport, sizeof(cf->hostport), "%s:%s", v,
	    port ? port : default_port);

	tls = conf_channel_get(ch, "tls");
	cf->starttls = tls == NULL || strcmp(tls, "none") != 0;
	v = conf_channel_get(ch, "tls_verify");
	b = v ? conf_parse_bool(v) : 1;
	cf->verify = b != 0;
	cf->ca_file = xstrdup_or_null(conf_channel_get(ch, "ca_file"));
	if (cf->starttls && cf->verify && cf->ca_file != NULL &&
	    access(cf->ca_file, R_OK) == -1) {
		snprintf(err, errlen, "channel %s: ca_file %s: %s", ch->name,
		    cf->ca_file, strerror(errno));
		goto fail;
	}

	cf->user = xstrdup_or_null(conf_channel_get(ch, "user"));
	pwfile = conf_channel_get(ch, "password_file");
	if ((cf->user == NULL) != (pwfile == NULL)) {
		snprintf(err, errlen, "channel %s: user and password_file go "
		    "together", ch->name);
		goto fail;
	}
	if (pwfile != NULL && channel_read_secret(pwfile, PASSWORD_MAX,
	    &cf->password, err, errlen) == -1)
		goto fail;

	if ((v = conf_channel_get(ch, "from")) == NULL ||
	    mail_split_mailbox(v, name, sizeof(name), cf->from_addr,
	    sizeof(cf->from_addr)) == -1) {
		snprintf(err, errlen, "channel %s: from: not a usable mail "
		    "address", ch->name);
		goto fail;
	}
	cf->from = strdup(v);
	if ((v = conf_channel_get(ch, "reply_to")) != NULL) {
		char addr[256];

		if (mail_split_mailbox(v, name, sizeof(name), addr,
		    sizeof(addr)) == -1) {
			snprintf(err, errlen, "channel %s: reply_to: not a "
			    "usable mail address", ch->name);
			goto fail;
		}
		cf->reply_to = strdup(v);
	}

	secs = 60;
	if ((v = conf_channel_get(ch, "timeout")) != NULL &&
	    (conf_parse_duration(v, &secs) == -1 || secs < 1)) {
		snprintf(err, errlen, "channel %s: timeout: bad duration",
		    ch->name);
		goto fail;
	}
	cf->timeout_ms = (long)secs * 1000;
	v = conf_channel_get(ch, "concurrency");
	cf->concurrency = v ? atoi(v) : 4;
	if (cf->concurrency < 1)
		cf->concurrency = 1;

	cf->relay = strdup(relay && relay->name ? relay->name : "dengon");
	cf->language = strdup(relay && relay->language ? relay->language :
	    "ja");
	if (!cf->channel || !cf->host || !cf->from || !cf->relay ||
	    !cf->language) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*state = cf;
	return 0;
fail:
	smtp_conf_free(cf);
	return -1;
}

void
smtp_conf_free(struct smtp_conf *cf)
{
	if (cf == NULL)
		return;
	if (cf->password != NULL) {
		explicit_bzero(cf->password, strlen(cf->password));
		free(cf->password);
	}
	free(cf->channel);
	free(cf->host);
	free(cf->ca_file);
	free(cf->user);
	free(cf->from);
	free(cf->reply_to);
	free(cf->relay);
	free(cf->language);
	free(cf);
}

static int
smtp_configure(const struct conf_channel *ch, const struct conf *relay,
    void **state, char *err, size_t errlen)
{
	struct smtp_conf *cf;

	*state = NULL;
	if (smtp_conf_new(ch, relay, "587", &cf, err, errlen) == -1)
		return -1;
	*state = cf;
	return 0;
}

static void
smtp_release(void *state)
{
	smtp_conf_free(state);
}

/* ---- render ----------------------------------------------------------- */

struct mail_opts
smtp_conf_mail_opts(const struct smtp_conf *cf)
{
	struct mail_opts o = {
		.from = cf->from,
		.reply_to = cf->reply_to,
		.relay = cf->relay,
		.language = cf->language,
	};

	return o;
}

static int
smtp_render(void *state, const struct channel_msg *m, char **out,
    size_t *len, char *err, size_t errlen)
{
	struct mail_opts o = smtp_conf_mail_opts(state);

	return mail_render(&o, m, out, len, err, errlen);
}

/* smtp_render_fn of internet mail: mail.c as it is. */
static int
render_plain(void *arg, const struct channel_msg *m, char **out,
    size_t *len, char *err, size_t errlen)
{
	return smtp_render(arg, m, out, len, err, errlen);
}

/* ---- send: what the session learns ------------------------------------ */

/* snprintf for messages, where cutting a long server reply is fine. */
static void
say(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Server text made one line: controls become blanks, ends trimmed. */
static void
one_line(char *s)
{
	size_t n;

	for (char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
}

/* "250 2.0.0 Ok: queued as X" from a libESMTP status; "" if none. */
static void
status_text(const smtp_status_t *st, char *buf, size_t len)
{
	const char *t;

	buf[0] = '\0';
	if (st == NULL || st->code == 0)
		return;
	t = st->text ? st->text : "";
	while (*t == ' ')
		t++;
	if (st->enh_class != 0)
		snprintf(buf, len, "%d %d.%d.%d %s", st->code, st->enh_class,
		    st->enh_subject, st->enh_detail, t);
	else
		snprintf(buf, len, "%d %s", st->code, t);
	one_line(buf);
}

/* Record the first TLS failure; later ones are consequences. */
static void
tls_fail(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
tls_fail(struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->tls_err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(s->tls_err, sizeof(s->tls_err), fmt, ap);
	va_end(ap);
}

static void
report_one(struct session *s, struct item *it, enum channel_outcome o,
    const char *evidence, const char *error)
{
	struct channel_result r;

	if (it->reported)
		return;
	it->reported = 1;
	memset(&r, 0, sizeof(r));
	r.attempt = it->m->attempt;
	r.outcome = o;
	snprintf(r.evidence, sizeof(r.evidence), "%s", evidence);
	snprintf(r.error, sizeof(r.error), "%s", error);
	s->report(&r, s->arg);
}

/* The outcome of one message from its MAIL, RCPT and DATA replies. */
static void
classify(struct session *s, struct item *it)
{
	const smtp_status_t *mail, *rcpt, *data;
	char ev[400], er[256];
	enum channel_outcome o;
	const char *stage;
	int code;

	mail = smtp_reverse_path_status(it->msg);
	rcpt = smtp_recipient_status(it->rcpt);
	data = smtp_message_transfer_status(it->msg);
	if (mail == NULL || mail->code / 100 != 2) {
		stage = "MAIL FROM";
		status_text(mail, ev, sizeof(ev));
		code = mail ? mail->code : 0;
	} else if (rcpt == NULL || rcpt->code / 100 != 2) {
		stage = "RCPT TO";
		status_text(rcpt, ev, sizeof(ev));
		code = rcpt ? rcpt->code : 0;
	} else {
		stage = "DATA";
		status_text(data, ev, sizeof(ev));
		code = data ? data->code : 0;
		if (code / 100 == 3)	/* 354, then nothing: no final reply */
			code = 0;
		else if (code == 503)	/* out of sequence, not about the mail */
			code = 450;
	}
	if (code / 100 == 2) {
		report_one(s, it, CHANNEL_OK, ev, "");
		return;
	}
	o = code / 100 == 5 && strcmp(stage, "MAIL FROM") != 0 ?
	    CHANNEL_PERMFAIL : CHANNEL_TEMPFAIL;
	if (code == 0)
		snprintf(er, sizeof(er), "%s: no reply (connection lost)",
		    stage);
	else
		say(er, sizeof(er), "%s refused: %s", stage, ev);
	/* libESMTP goes on to MAIL FROM after a refused AUTH; the 5xx that
	 * follows is about us, not about the address */
	if (s->auth_err[0] != '\0' && !s->auth_ok) {
		o = CHANNEL_TEMPFAIL;
		say(er, sizeof(er), "AUTH refused: %s", s->auth_err);
	}
	report_one(s, it, o, ev, er);
}

static struct item *
item_of(smtp_message_t msg)
{
	return msg ? smtp_message_get_application_data(msg) : NULL;
}

/* 1 if the peer's certificate names host (a DNS name or an IP address). */
static int
cert_matches(SSL *ssl, const char *host)
{
	unsigned char ip[16];
	X509 *cert;
	int ok;

	if (ssl == NULL || (cert = SSL_get1_peer_certificate(ssl)) == NULL)
		return 0;
	if (inet_pton(AF_INET, host, ip) == 1 ||
	    inet_pton(AF_INET6, host, ip) == 1)
		ok = X509_check_ip_asc(cert, host, 0) == 1;
	else
		ok = X509_check_host(cert, host, strlen(host),
		    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
	X509_free(cert);
	return ok;
}

/*
 * Read the TLS 1.3 session tickets the server sends right after the
 * handshake, before libESMTP looks at the socket again.  libESMTP takes
 * any readable byte at that moment for the reply to an EHLO it has not
 * sent yet, waits for it until the timeout and drops the session; a
 * ticket processed here is gone.  The first ticket is waited for at most
 * TICKET_WAIT_MS (servers send them at once, and later ones arrive after
 * the EHLO, where they do no harm).
 */
static void
absorb_tickets(SSL *ssl)
{
	struct pollfd pfd;
	char c;
	int wait = TICKET_WAIT_MS, r;

	if (ssl == NULL || SSL_version(ssl) < TLS1_3_VERSION)
		return;
	pfd.fd = SSL_get_rfd(ssl);
	pfd.events = POLLIN;
	for (;;) {
		pfd.revents = 0;
		if (SSL_pending(ssl) == 0 && poll(&pfd, 1, wait) <= 0)
			return;
		ERR_clear_error();
		r = SSL_peek(ssl, &c, 1);
		if (r > 0 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
			return;	/* data, or an error libESMTP will meet */
		wait = TICKET_MORE_MS;
	}
}

/* libESMTP's events: outcomes as they come, and every TLS verdict. */
static void
event_cb(smtp_session_t session, int event, void *arg, ...)
{
	struct session *s = arg;
	const struct smtp_conf *cf = s->cf;
	const smtp_status_t *st;
	smtp_message_t msg;
	struct item *it;
	va_list ap;
	int *flag;
	SSL *ssl;
	long vr;

	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_CONNECT:
		s->connected = 1;
		tcp_nodelay();
		break;
	case SMTP_EV_MAILSTATUS:
		(void)va_arg(ap, const char *);
		msg = va_arg(ap, smtp_message_t);
		s->mail_answered = 1;
		st = smtp_reverse_path_status(msg);
		/* a refused MAIL FROM gets no SMTP_EV_MESSAGESENT */
		if ((it = item_of(msg)) != NULL && st != NULL &&
		    st->code / 100 != 2)
			classify(s, it);
		break;
	case SMTP_EV_MESSAGESENT:
		msg = va_arg(ap, smtp_message_t);
		if ((it = item_of(msg)) != NULL)
			classify(s, it);
		break;
	case SMTP_EV_EXTNA_DSN:		/* DSN is welcome, not required */
	case SMTP_EV_SYNTAXWARNING:
		if ((flag = va_arg(ap, int *)) != NULL)
			*flag = 0;
		break;
	case SMTP_EV_STARTTLS_OK:
		s->tls_ok = 1;
		absorb_tickets(va_arg(ap, SSL *));
		break;
	case SMTP_EV_EXTNA_STARTTLS:
		tls_fail(s, "TLS: server does not offer STARTTLS");
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE:
		vr = va_arg(ap, long);
		flag = va_arg(ap, int *);
		*flag = !cf->verify;
		if (cf->verify)
			tls_fail(s, "TLS: certificate verification failed: %s",
			    X509_verify_cert_error_string(vr));
		break;
	case SMTP_EV_NO_PEER_CERTIFICATE:
		flag = va_arg(ap, int *);
		*flag = !cf->verify;
		if (cf->verify)
			tls_fail(s, "TLS: the server sent no certificate");
		break;
	case SMTP_EV_WRONG_PEER_CERTIFICATE:
		/* libESMTP's own check knows no IP addresses: decide here */
		flag = va_arg(ap, int *);
		(void)va_arg(ap, char *);
		ssl = va_arg(ap, SSL *);
		*flag = !cf->verify || (SSL_get_verify_result(ssl) ==
		    X509_V_OK && cert_matches(ssl, cf->host));
		if (!*flag)
			tls_fail(s, "TLS: certificate does not match host %s",
			    cf->host);
		break;
	case SMTP_EV_WEAK_CIPHER:
		(void)va_arg(ap, int);
		flag = va_arg(ap, int *);
		*flag = 0;
		tls_fail(s, "TLS: the cipher is too weak");
		break;
	case SMTP_EV_NO_CLIENT_CERTIFICATE:
		flag = va_arg(ap, int *);
		*flag = 0;
		tls_fail(s, "TLS: unusable client certificate");
		break;
	case SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE:
		tls_fail(s, "TLS: unusable client certificate");
		break;
	case SMTP_EV_UNUSABLE_CA_LIST:
		tls_fail(s, "TLS: unusable CA list");
		break;
	default:
		break;
	}
	va_end(ap);
}

/* OpenSSL's verdict on each certificate of the chain, kept for the
 * reason; the handshake fails on the first error (SSL_VERIFY_PEER). */
static int
verify_cb(int ok, X509_STORE_CTX *x)
{
	struct session *s = NULL;
	SSL *ssl;
	int e;

	ssl = X509_STORE_CTX_get_ex_data(x,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	if (ssl != NULL)
		s = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (ok || s == NULL)
		return ok;
	e = X509_STORE_CTX_get_error(x);
	if (e == X509_V_ERR_HOSTNAME_MISMATCH ||
	    e == X509_V_ERR_IP_ADDRESS_MISMATCH)
		tls_fail(s, "TLS: certificate does not match host %s",
		    s->cf->host);
	else
		tls_fail(s, "TLS: certificate verification failed: %s "
		    "(depth %d)", X509_verify_cert_error_string(e),
		    X509_STORE_CTX_get_error_depth(x));
	return ok;
}

/*
 * The protocol as it goes by: the last command verb we sent (only the
 * verb: AUTH lines carry the password) and the last final reply line, to
 * say why a session ended.  Message data is never shown to it.
 */
static void
monitor_cb(const char *buf, int buflen, int writing, void *arg)
{
	/* QUIT is left out: it follows whatever went wrong */
	static const char *verbs[] = { "EHLO", "HELO", "STARTTLS", "AUTH",
	    "MAIL", "RCPT", "DATA", "RSET" };
	struct session *s = arg;
	const char *p, *e;
	size_t n;

	if (writing == SMTP_CB_WRITING) {
		for (p = buf; p < buf + buflen; p = e + 1) {
			if ((e = memchr(p, '\n', (size_t)(buf + buflen - p))) ==
			    NULL)
				e = buf + buflen;
			for (size_t i = 0; i < sizeof(verbs) / sizeof(*verbs);
			    i++) {
				n = strlen(verbs[i]);
				if ((size_t)(e - p) > n &&
				    strncmp(p, verbs[i], n) == 0 &&
				    (p[n] == ' ' || p[n] == '\r'))
					s->verb = verbs[i];
			}
		}
		return;
	}
	if (writing != SMTP_CB_READING)
		return;
	for (int i = 0; i < buflen; i++) {
		if (buf[i] != '\n') {
			if (s->linelen < sizeof(s->line) - 1)
				s->line[s->linelen++] = buf[i];
			continue;
		}
		s->line[s->linelen] = '\0';
		if (s->linelen >= 3 && s->line[0] >= '2' && s->line[0] <= '5' &&
		    (s->linelen == 3 || s->line[3] != '-')) {
			snprintf(s->reply, sizeof(s->reply), "%s", s->line);
			one_line(s->reply);
			if (s->verb != NULL && strcmp(s->verb, "AUTH") == 0) {
				if (s->reply[0] == '2')
					s->auth_ok = 1;
				else if (s->reply[0] == '4' ||
				    s->reply[0] == '5')
					say(s->auth_err,
					    sizeof(s->auth_err), "%s",
					    s->reply);
			}
		}
		s->linelen = 0;
	}
}

/* AUTH asks for the user and the password; nothing else is known. */
static int
interact_cb(auth_client_request_t req, char **result, int fields,
    void *arg)
{
	static char empty[] = "";
	const struct smtp_conf *cf = arg;

	for (int i = 0; i < fields; i++) {
		if (req[i].flags & AUTH_PASS)
			result[i] = cf->password;
		else if (req[i].flags & AUTH_USER)
			result[i] = cf->user;
		else
			result[i] = empty;
	}
	return 1;
}

/* Our SSL_CTX: TLS >= 1.2, the CAs, peer and host verification. */
static SSL_CTX *
tls_context(struct session *s, char *err, size_t errlen)
{
	const struct smtp_conf *cf = s->cf;
	X509_VERIFY_PARAM *param;
	unsigned char ip[16];
	SSL_CTX *ctx;
	int r;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "TLS: cannot create a context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_app_data(ctx, s);
	if (!cf->verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	if (cf->ca_file != NULL)
		r = SSL_CTX_load_verify_locations(ctx, cf->ca_file, NULL);
	else
		r = SSL_CTX_set_default_verify_paths(ctx);
	if (r != 1) {
		snprintf(err, errlen, "TLS: cannot load the CA certificates "
		    "%s: %s", cf->ca_file ? cf->ca_file : "(system)",
		    ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	param = SSL_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (inet_pton(AF_INET, cf->host, ip) == 1)
		r = X509_VERIFY_PARAM_set1_ip_asc(param, cf->host);
	else
		r = X509_VERIFY_PARAM_set1_host(param, cf->host, 0);
	if (r != 1) {
		snprintf(err, errlen, "TLS: cannot verify host %s", cf->host);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	return ctx;
}

/* Why a session that left messages unanswered ended. */
static void
session_reason(struct session *s, int started, char *buf, size_t len)
{
	char e[128];
	unsigned long ssl_err;

	smtp_strerror(smtp_errno(), e, sizeof(e));
	if (s->tls_err[0] != '\0')
		snprintf(buf, len, "%s", s->tls_err);
	else if (s->auth_err[0] != '\0' && !s->auth_ok)
		say(buf, len, "AUTH refused: %s", s->auth_err);
	else if (!s->connected)
		say(buf, len, "connect: %s (%s)", e, s->cf->hostport);
	else if (s->cf->starttls && !s->tls_ok && s->verb != NULL &&
	    strcmp(s->verb, "STARTTLS") == 0 && s->reply[0] == '2') {
		ssl_err = ERR_peek_last_error();
		snprintf(buf, len, "TLS: handshake failed%s%s",
		    ssl_err ? ": " : "",
		    ssl_err ? ERR_reason_error_string(ssl_err) : "");
	} else if (s->reply[0] == '4' || s->reply[0] == '5')
		say(buf, len, "%s refused: %s", s->verb ? s->verb :
		    "greeting", s->reply);
	else if (!started || smtp_errno() != 0)
		snprintf(buf, len, "session failed after %s: %s",
		    s->verb ? s->verb : "connect", e);
	else
		snprintf(buf, len, "session ended after %s without a reply",
		    s->verb ? s->verb : "connect");
}

int
smtp_session(const struct smtp_conf *cf, const struct channel_msg *msgs,
    size_t n, smtp_render_fn render, void *rarg, channel_report_fn report,
    void *arg, char *err, size_t errlen)
{
	struct session s;
	struct sigaction sa, old_sa;
	smtp_session_t sess = NULL;
	auth_context_t auth = NULL;
	SSL_CTX *ctx = NULL;
	char why[256], envid[32];
	size_t len, queued = 0, unreported = 0;
	int started = 0, rc = 0;

	memset(&s, 0, sizeof(s));
	s.cf = cf;
	s.n = n;
	s.report = report;
	s.arg = arg;
	err[0] = '\0';
	if (n == 0)
		return 0;
	if ((s.items = calloc(n, sizeof(*s.items))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}

	/* A server that hangs up must not kill us with SIGPIPE. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_sa);

	if ((sess = smtp_create_session()) == NULL ||
	    !smtp_set_server(sess, cf->hostport) ||
	    !smtp_set_eventcb(sess, event_cb, &s) ||
	    !smtp_set_monitorcb(sess, monitor_cb, &s, 0)) {
		snprintf(err, errlen, "libESMTP: cannot set up a session");
		goto session_failed;
	}
	smtp_set_timeout(sess, Timeout_GREETING |
	    Timeout_OVERRIDE_RFC2822_MINIMUM, cf->timeout_ms);
	smtp_set_timeout(sess, Timeout_ENVELOPE |
	    Timeout_OVERRIDE_RFC2822_MINIMUM, cf->timeout_ms);
	smtp_set_timeout(sess, Timeout_DATA |
	    Timeout_OVERRIDE_RFC2822_MINIMUM, cf->timeout_ms);
	smtp_set_timeout(sess, Timeout_TRANSFER |
	    Timeout_OVERRIDE_RFC2822_MINIMUM, cf->timeout_ms);
	smtp_set_timeout(sess, Timeout_DATA2 |
	    Timeout_OVERRIDE_RFC2822_MINIMUM, cf->timeout_ms);

	if (cf->starttls) {
		if ((ctx = tls_context(&s, err, errlen)) == NULL)
			goto session_failed;
		if (!smtp_starttls_enable(sess, Starttls_REQUIRED) ||
		    !smtp_starttls_set_ctx(sess, ctx)) {
			snprintf(err, errlen, "TLS: libESMTP cannot use "
			    "STARTTLS");
			goto session_failed;
		}
	} else
		smtp_starttls_enable(sess, Starttls_DISABLED);

	if (cf->user != NULL) {
		/* With STARTTLS required, libESMTP only reaches AUTH after
		 * TLS is up; plain-text mechanisms are then fine. */
		auth_client_init();
		if ((auth = auth_create_context()) == NULL ||
		    !auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0) ||
		    !auth_set_interact_cb(auth, interact_cb,
		    (void *)(uintptr_t)cf) ||
		    !smtp_auth_set_context(sess, auth)) {
			snprintf(err, errlen, "AUTH: libESMTP cannot set it up");
			goto session_failed;
		}
	}

	for (size_t i = 0; i < n; i++) {
		struct item *it = &s.items[i];

		it->m = &msgs[i];
		if (render(rarg, it->m, &it->text, &len, why,
		    sizeof(why)) == -1) {
			/* this message can never be sent as it is */
			report_one(&s, it, CHANNEL_PERMFAIL, "", why);
			continue;
		}
		snprintf(envid, sizeof(envid), "%lld",
		    (long long)it->m->attempt);
		if ((it->msg = smtp_add_message(sess)) == NULL ||
		    !smtp_set_reverse_path(it->msg, cf->from_addr) ||
		    !smtp_set_message_str(it->msg, it->text) ||
		    (it->rcpt = smtp_add_recipient(it->msg,
		    it->m->address)) == NULL) {
			snprintf(err, errlen, "libESMTP: cannot add a message");
			goto session_failed;
		}
		smtp_message_set_application_data_release(it->msg, it, NULL);
		smtp_size_set_estimate(it->msg, (unsigned long)len);
		smtp_dsn_set_ret(it->msg, Ret_HDRS);
		smtp_dsn_set_envid(it->msg, envid);
		smtp_dsn_set_notify(it->rcpt,
		    (enum notify_flags)(Notify_SUCCESS | Notify_FAILURE));
		queued++;
	}
	if (queued == 0)
		goto done;

	started = smtp_start_session(sess);
	session_reason(&s, started, why, sizeof(why));
	for (size_t i = 0; i < n; i++) {
		struct item *it = &s.items[i];
		const smtp_status_t *st;

		if (it->reported)
			continue;
		unreported++;
		/* begun and cut short: its own replies say how far it got */
		st = smtp_reverse_path_status(it->msg);
		if (st != NULL && st->code != 0)
			classify(&s, it);
		else
			report_one(&s, it, CHANNEL_TEMPFAIL, "", why);
	}
	if ((unreported > 0 && !s.mail_answered) ||
	    (s.auth_err[0] != '\0' && !s.auth_ok)) {
		snprintf(err, errlen, "%s", why);
		rc = -1;
	}
	goto done;

session_failed:
	for (size_t i = 0; i < n; i++) {
		s.items[i].m = &msgs[i];
		report_one(&s, &s.items[i], CHANNEL_TEMPFAIL, "", err);
	}
	rc = -1;
done:
	if (sess != NULL)
		smtp_destroy_session(sess);
	if (auth != NULL) {
		auth_destroy_context(auth);
		auth_client_exit();
	}
	SSL_CTX_free(ctx);	/* libESMTP held its own reference */
	for (size_t i = 0; i < n; i++)
		free(s.items[i].text);
	free(s.items);
	sigaction(SIGPIPE, &old_sa, NULL);
	return rc;
}

static int
smtp_send(void *state, const struct channel_msg *msgs, size_t n,
    channel_report_fn report, void *arg, char *err, size_t errlen)
{
	return smtp_session(state, msgs, n, render_plain, state, report, arg,
	    err, errlen);
}

const struct channel_driver channel_smtp = {
	.type = "smtp",
	.max_batch = SMTP_MAX_BATCH,
	.configure = smtp_configure,
	.render = smtp_render,
	.send = smtp_send,
	.release = smtp_release,
};
