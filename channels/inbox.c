/*
 * inbox.c - the inbox drivers: IMAP and POP3 with libetpan.
 *
 * configure() reads one [inbox NAME] (and the password from its
 * password_file) into a struct inbox_conf; poll() runs in the daemon's
 * long-lived child for that inbox: it offers every message in the mailbox
 * to deliver(), moves (IMAP) or deletes (POP3) each one deliver() has
 * acknowledged, then waits for new mail at most `poll' and returns.
 *
 * IMAP.  The session is kept between passes (a NOOP checks it first; a
 * dead one is opened again).  A pass is UID SEARCH UNDELETED, then for
 * each UID (oldest first, at most PASS_MAX) a FETCH of BODY.PEEK[] (so a
 * person reading the same mailbox still sees it unread; at most
 * FETCH_MAX bytes), inbox_parse(), deliver().  A message left
 * unacknowledged stays where it is, unchanged, and is offered again on the
 * next pass; an acknowledged one is moved at once to done_mailbox (created
 * at login if missing): UID MOVE where offered, else UID COPY + \Deleted +
 * UID EXPUNGE (EXPUNGE without UIDPLUS).  The wait is IDLE where the
 * server offers it (DONE after `poll', at most IDLE_MAX), else a sleep.
 *
 * POP3.  A session per pass (POP3 shows a snapshot of the maildrop): USER
 * and PASS, LIST and UIDL (the key), RETR (TOP for a message larger than
 * FETCH_MAX), deliver(), DELE for each acknowledged one, and QUIT, which
 * commits the deletions; then a sleep of `poll'.  A pass cut short by a
 * server error still QUITs, so what was acknowledged is deleted; one cut
 * by a lost connection deletes nothing (the messages come again and the
 * relay records them as duplicates).
 *
 * TLS.  libetpan as packaged in Debian does TLS with GnuTLS and verifies
 * nothing.  So after the handshake (tls = tls: on connecting; starttls:
 * after STARTTLS/STLS) and before anything else is sent, the certificate
 * chain the server presented is taken from the libetpan stream
 * (mailstream_ssl_get_certificate, mailstream_get_certificate_chain) and
 * verified here with OpenSSL: against ca_file (or the system's CAs), for
 * a TLS server, and for the configured host (a DNS name, or an IP address
 * literal).  A failure closes the connection without a further byte: the
 * user name and password are never sent.  The handshake itself proves the
 * server holds the key of that certificate.  tls_verify = no skips the
 * check (for tests).  SNI is sent for DNS names.
 *
 * State owned: the struct inbox_conf, and in it the IMAP session between
 * passes.  The password is wiped on release and never written anywhere
 * (errors name the step that failed and quote the server, never a
 * command).  libetpan's globals: mailstream_network_delay (the timeout of
 * a STARTTLS handshake) is set to TIMEOUT.  SIGPIPE is ignored during
 * poll(): a server that hangs up is an error, not a crash.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <libetpan/libetpan.h>

#include "channels/channel.h"
#include "channels/inbox.h"

#define TIMEOUT		60			/* s: connect, each reply */
#define FETCH_MAX	(4 * 1024 * 1024)	/* bytes of a message read */
#define TOP_LINES	50000			/* POP3: lines of a big one */
#define PASS_MAX	1000			/* messages offered per pass */
#define IDLE_MAX	(25 * 60)		/* s: RFC 2177 says < 29 min */
#define PASSWORD_MAX	400			/* bytes (POP3 has 512/line) */

enum tls_mode {
	TLS_NONE,
	TLS_STARTTLS,
	TLS_IMPLICIT
};

/* One configured inbox, and its IMAP session between passes. */
struct inbox_conf {
	char		*name;		/* [inbox NAME] */
	int		 pop3;		/* 1: POP3, 0: IMAP */
	char		*host;
	int		 host_is_ip;
	uint16_t	 port;
	enum tls_mode	 tls;
	int		 verify;
	char		*ca_file;	/* NULL: the system's trust store */
	char		*user;
	char		*password;	/* secret: never logged or printed */
	char		*mailbox;	/* IMAP, as sent (modified UTF-7) */
	char		*done_mailbox;
	int64_t		 poll;		/* seconds */
	/* IMAP, while connected */
	mailimap	*imap;
	int		 has_idle;
	int		 has_move;
	int		 has_uidplus;
};

static void inbox_release(void *state);

/* ---- configure ----------------------------------------------------------- */


/*
 * A mailbox name for the wire: IMAP's modified UTF-7 (RFC 3501 5.1.3) of
 * the UTF-8 name, allocated; NULL (err set) if it is not valid UTF-8 or
 * holds a control character.
 */
static char *
mutf7(const char *name, char *err, size_t errlen)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+,";
	size_t n = strlen(name), cap = n * 4 + 8, o = 0, i = 0;
	char *out;
	iconv_t cd;

	if ((out = malloc(cap)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if ((cd = iconv_open("UTF-16BE", "UTF-8")) == (iconv_t)-1) {
		snprintf(err, errlen, "iconv: no UTF-16");
		free(out);
		return NULL;
	}
	while (i < n) {
		unsigned char c = (unsigned char)name[i];
		unsigned char u16[256];
		char *ip, *op;
		size_t j = i, inleft, oleft;
		unsigned bits = 0, nbits = 0;

		if (c < 0x20 || c == 0x7f) {
			snprintf(err, errlen, "a control character");
			goto fail;
		}
		if (c < 0x80) {
			if (o + 3 > cap)
				goto fail;
			out[o++] = (char)c;
			if (c == '&')
				out[o++] = '-';
			i++;
			continue;
		}
		while (j < n && (unsigned char)name[j] >= 0x80 && j - i < 120)
			j++;
		ip = (char *)(uintptr_t)(name + i);
		inleft = j - i;
		op = (char *)u16;
		oleft = sizeof(u16);
		if (iconv(cd, &ip, &inleft, &op, &oleft) == (size_t)-1 &&
		    errno != EINVAL) {
			snprintf(err, errlen, "not valid UTF-8");
			goto fail;
		}
		j = (size_t)(ip - name);	/* what was converted */
		if (j == i) {
			snprintf(err, errlen, "not valid UTF-8");
			goto fail;
		}
		if (o + 2 + ((size_t)(op - (char *)u16) * 4 + 2) / 3 > cap)
			goto fail;
		out[o++] = '&';
		for (unsigned char *p = u16; p < (unsigned char *)op; p++) {
			bits = bits << 8 | *p;
			nbits += 8;
			while (nbits >= 6) {
				nbits -= 6;
				out[o++] = b64[(bits >> nbits) & 0x3f];
			}
		}
		if (nbits > 0)
			out[o++] = b64[(bits << (6 - nbits)) & 0x3f];
		out[o++] = '-';
		i = j;
	}
	out[o] = '\0';
	iconv_close(cd);
	return out;
fail:
	if (err[0] == '\0')
		snprintf(err, errlen, "too long");
	iconv_close(cd);
	free(out);
	return NULL;
}

static char *
xstrdup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int
inbox_configure(const struct conf_inbox *ib, const struct conf *relay,
    void **state, char *err, size_t errlen)
{
	struct inbox_conf *cf;
	unsigned char ip[16];
	const char *v, *what;
	char why[128];
	long port;
	int64_t secs;

	*state = NULL;
	if ((cf = calloc(1, sizeof(*cf))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cf->name = strdup(ib->name);
	cf->pop3 = ib->type != NULL && strcmp(ib->type, "pop3") == 0;
	if ((v = conf_inbox_get(ib, "host")) == NULL || *v == '\0') {
		snprintf(err, errlen, "inbox %s: host is missing", ib->name);
		goto fail;
	}
	cf->host = strdup(v);
	cf->host_is_ip = inet_pton(AF_INET, v, ip) == 1 ||
	    inet_pton(AF_INET6, v, ip) == 1;

	v = conf_inbox_get(ib, "tls");
	if (v == NULL || strcmp(v, "starttls") == 0)
		cf->tls = TLS_STARTTLS;
	else if (strcmp(v, "tls") == 0)
		cf->tls = TLS_IMPLICIT;
	else if (strcmp(v, "none") == 0)
		cf->tls = TLS_NONE;
	else {
		snprintf(err, errlen, "inbox %s: tls: %s is not starttls, tls "
		    "or none", ib->name, v);
		goto fail;
	}
	if ((v = conf_inbox_get(ib, "port")) != NULL) {
		port = strtol(v, NULL, 10);
		if (port < 1 || port > 65535) {
			snprintf(err, errlen, "inbox %s: port %s: not a port",
			    ib->name, v);
			goto fail;
		}
		cf->port = (uint16_t)port;
	} else if (cf->pop3)
		cf->port = cf->tls == TLS_IMPLICIT ? 995 : 110;
	else
		cf->port = cf->tls == TLS_IMPLICIT ? 993 : 143;

	v = conf_inbox_get(ib, "tls_verify");
	cf->verify = v == NULL || conf_parse_bool(v) != 0;
	cf->ca_file = xstrdup_or_null(conf_inbox_get(ib, "ca_file"));
	if (cf->tls != TLS_NONE && cf->verify && cf->ca_file != NULL &&
	    access(cf->ca_file, R_OK) == -1) {
		snprintf(err, errlen, "inbox %s: ca_file %s: %s", ib->name,
		    cf->ca_file, strerror(errno));
		goto fail;
	}

	if ((v = conf_inbox_get(ib, "user")) == NULL || *v == '\0' ||
	    strpbrk(v, "\r\n") != NULL) {
		snprintf(err, errlen, "inbox %s: user is missing", ib->name);
		goto fail;
	}
	cf->user = strdup(v);
	if ((v = conf_inbox_get(ib, "password_file")) == NULL) {
		snprintf(err, errlen, "inbox %s: password_file is missing",
		    ib->name);
		goto fail;
	}
	if (channel_read_secret(v, PASSWORD_MAX, &cf->password, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "inbox %s: %s", ib->name, why);
		goto fail;
	}

	if (!cf->pop3) {
		what = "mailbox";
		v = conf_inbox_get(ib, "mailbox");
		why[0] = '\0';
		if ((cf->mailbox = mutf7(v ? v : "INBOX", why,
		    sizeof(why))) == NULL)
			goto bad_mailbox;
		what = "done_mailbox";
		v = conf_inbox_get(ib, "done_mailbox");
		if ((cf->done_mailbox = mutf7(v ? v : "dengon-done", why,
		    sizeof(why))) == NULL)
			goto bad_mailbox;
		if (cf->mailbox[0] == '\0' || cf->done_mailbox[0] == '\0') {
			snprintf(why, sizeof(why), "empty");
			goto bad_mailbox;
		}
		if (strcmp(cf->mailbox, cf->done_mailbox) == 0 ||
		    (strcasecmp(cf->mailbox, "INBOX") == 0 &&
		    strcasecmp(cf->done_mailbox, "INBOX") == 0)) {
			snprintf(err, errlen, "inbox %s: done_mailbox must "
			    "differ from mailbox (processed messages move "
			    "there)", ib->name);
			goto fail;
		}
	}

	secs = 30;
	if ((v = conf_inbox_get(ib, "poll")) != NULL &&
	    (conf_parse_duration(v, &secs) == -1 || secs < 1)) {
		snprintf(err, errlen, "inbox %s: poll: bad duration", ib->name);
		goto fail;
	}
	cf->poll = secs;
	(void)relay;
	if (!cf->name || !cf->host || !cf->user) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	*state = cf;
	return 0;
bad_mailbox:
	snprintf(err, errlen, "inbox %s: %s: %s", ib->name, what, why);
fail:
	inbox_release(cf);
	return -1;
}

/* ---- connections and TLS ------------------------------------------------- */

/* Server text made one short line for an error message. */
static void
server_text(const char *s, char *buf, size_t len)
{
	size_t n;

	snprintf(buf, len, "%s", s != NULL && *s != '\0' ? s : "no reply");
	for (char *p = buf; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == ' ')
		buf[--n] = '\0';
}

/* A TCP connection to host:port, given up after TIMEOUT; the descriptor
 * (blocking), or -1 with err. */
static int
tcp_connect(const struct inbox_conf *cf, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	struct pollfd pfd;
	char port[8];
	socklen_t sl;
	int fd = -1, e = ECONNREFUSED, r, fl;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", (unsigned)cf->port);
	if ((r = getaddrinfo(cf->host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "connect: %s: %s", cf->host,
		    gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd == -1) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
		    errno != EINPROGRESS) {
			e = errno;
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if ((r = poll(&pfd, 1, TIMEOUT * 1000)) <= 0) {
			e = r == 0 ? ETIMEDOUT : errno;
			goto next;
		}
		sl = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1)
			e = errno;
		if (e != 0)
			goto next;
		fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
		break;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		snprintf(err, errlen, "connect: %s (%s:%u)", strerror(e),
		    cf->host, (unsigned)cf->port);
	return fd;
}

/* libetpan's TLS set-up callback: SNI for a DNS name. */
static void
tls_setup(struct mailstream_ssl_context *ctx, void *arg)
{
	struct inbox_conf *cf = arg;

	if (!cf->host_is_ip)
		mailstream_ssl_set_server_name(ctx, cf->host);
}

/* One DER certificate as an X509, or NULL. */
static X509 *
der_x509(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;

	return len > 0 && len < 1024 * 1024 ? d2i_X509(NULL, &p, (long)len) :
	    NULL;
}

/*
 * Verify the certificate the server presented on TLS stream s: the chain
 * to ca_file (or the system's CAs), for a TLS server, naming the host.
 * 0, or -1 with err ("TLS: certificate does not match host 127.0.0.1").
 */
static int
tls_check(const struct inbox_conf *cf, mailstream *s, char *err,
    size_t errlen)
{
	STACK_OF(X509) *untrusted = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_STORE *store = NULL;
	X509_VERIFY_PARAM *param;
	X509 *leaf = NULL, *x;
	unsigned char *der = NULL;
	carray *chain = NULL;
	ssize_t n;
	int rc = -1, e, r;

	if (!cf->verify)
		return 0;
	/* the leaf first: the chain call trusts a certificate to be there */
	if ((n = mailstream_ssl_get_certificate(s, &der)) <= 0 ||
	    (leaf = der_x509(der, (size_t)n)) == NULL) {
		snprintf(err, errlen, "TLS: the server sent no certificate");
		goto done;
	}
	if ((untrusted = sk_X509_new_null()) == NULL)
		goto oom;
	if ((chain = mailstream_get_certificate_chain(s)) != NULL)
		for (unsigned i = 1; i < carray_count(chain); i++) {
			MMAPString *m = carray_get(chain, i);

			if (m != NULL && (x = der_x509((unsigned char *)m->str,
			    m->len)) != NULL && !sk_X509_push(untrusted, x))
				X509_free(x);
		}
	if ((store = X509_STORE_new()) == NULL)
		goto oom;
	if (cf->ca_file != NULL)
		r = X509_STORE_load_file(store, cf->ca_file);
	else
		r = X509_STORE_set_default_paths(store);
	if (r != 1) {
		snprintf(err, errlen, "TLS: cannot load the CA certificates %s",
		    cf->ca_file ? cf->ca_file : "(system)");
		goto done;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
		goto oom;
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (cf->host_is_ip)
		r = X509_VERIFY_PARAM_set1_ip_asc(param, cf->host);
	else
		r = X509_VERIFY_PARAM_set1_host(param, cf->host, 0);
	if (r != 1) {
		snprintf(err, errlen, "TLS: cannot verify host %s", cf->host);
		goto done;
	}
	if (X509_verify_cert(ctx) == 1) {
		rc = 0;
		goto done;
	}
	e = X509_STORE_CTX_get_error(ctx);
	if (e == X509_V_ERR_HOSTNAME_MISMATCH ||
	    e == X509_V_ERR_IP_ADDRESS_MISMATCH)
		snprintf(err, errlen, "TLS: certificate does not match host %s",
		    cf->host);
	else
		snprintf(err, errlen, "TLS: certificate verification failed: "
		    "%s (depth %d)", X509_verify_cert_error_string(e),
		    X509_STORE_CTX_get_error_depth(ctx));
	goto done;
oom:
	snprintf(err, errlen, "TLS: out of memory");
done:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	if (chain != NULL)
		mailstream_certificate_chain_free(chain);
	free(der);
	return rc;
}

/* A connected stream: plain, or TLS from the first byte (verified).
 * NULL with err. */
static mailstream *
stream_open(struct inbox_conf *cf, char *err, size_t errlen)
{
	mailstream *s;
	int fd;

	if ((fd = tcp_connect(cf, err, errlen)) == -1)
		return NULL;
	if (cf->tls != TLS_IMPLICIT) {
		if ((s = mailstream_socket_open_timeout(fd, TIMEOUT)) == NULL) {
			snprintf(err, errlen, "out of memory");
			close(fd);
		}
		return s;
	}
	if ((s = mailstream_ssl_open_with_callback_timeout(fd, TIMEOUT,
	    tls_setup, cf)) == NULL) {
		snprintf(err, errlen, "TLS: handshake failed (%s:%u)", cf->host,
		    (unsigned)cf->port);
		close(fd);
		return NULL;
	}
	if (tls_check(cf, s, err, errlen) == -1) {
		mailstream_close(s);
		return NULL;
	}
	return s;
}

/* Sleep `secs' seconds (a signal ends it early). */
static void
nap(int64_t secs)
{
	struct timespec ts = { .tv_sec = (time_t)secs, .tv_nsec = 0 };

	nanosleep(&ts, NULL);
}

/* ---- IMAP ---------------------------------------------------------------- */

/* Why an IMAP command failed: the server's words, or the connection. */
static void
imap_why(const struct inbox_conf *cf, int r, const char *step, char *err,
    size_t errlen)
{
	char text[256];

	if (r == MAILIMAP_ERROR_STREAM || cf->imap == NULL ||
	    cf->imap->imap_stream == NULL)
		snprintf(err, errlen, "%s: connection lost or timed out", step);
	else if (r == MAILIMAP_ERROR_PARSE)
		snprintf(err, errlen, "%s: unreadable reply", step);
	else {
		server_text(cf->imap->imap_response, text, sizeof(text));
		snprintf(err, errlen, "%s refused: %s", step, text);
	}
}

/* Close the IMAP session without a word (after an error, or before
 * LOGIN: nothing more is sent). */
static void
imap_drop(struct inbox_conf *cf)
{
	if (cf->imap == NULL)
		return;
	if (cf->imap->imap_stream != NULL) {
		mailstream_close(cf->imap->imap_stream);
		cf->imap->imap_stream = NULL;
	}
	mailimap_free(cf->imap);
	cf->imap = NULL;
}

/* 1 if the capability list names cap. */
static int
has_cap(struct mailimap_capability_data *caps, const char *cap)
{
	if (caps == NULL)
		return 0;
	for (clistiter *c = clist_begin(caps->cap_list); c != NULL;
	    c = clist_next(c)) {
		struct mailimap_capability *k = clist_content(c);

		if (k->cap_type == MAILIMAP_CAPABILITY_NAME &&
		    k->cap_data.cap_name != NULL &&
		    strcasecmp(k->cap_data.cap_name, cap) == 0)
			return 1;
	}
	return 0;
}

/* Connect, TLS (verified), LOGIN, CAPABILITY, SELECT, and CREATE of
 * done_mailbox (refused when it exists: fine).  0, or -1 with err. */
static int
imap_open(struct inbox_conf *cf, char *err, size_t errlen)
{
	struct mailimap_capability_data *caps = NULL;
	mailstream *s;
	int r, preauth;

	mailstream_network_delay.tv_sec = TIMEOUT;	/* STARTTLS handshake */
	mailstream_network_delay.tv_usec = 0;
	if ((cf->imap = mailimap_new(0, NULL)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	mailimap_set_timeout(cf->imap, TIMEOUT);
	if ((s = stream_open(cf, err, errlen)) == NULL)
		goto fail;
	r = mailimap_connect(cf->imap, s);
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED &&
	    r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		imap_why(cf, r, "greeting", err, errlen);
		goto fail;
	}
	preauth = r == MAILIMAP_NO_ERROR_AUTHENTICATED;
	if (cf->tls == TLS_STARTTLS) {
		if ((r = mailimap_socket_starttls_with_callback(cf->imap,
		    tls_setup, cf)) != MAILIMAP_NO_ERROR) {
			if (r == MAILIMAP_ERROR_STREAM || r == MAILIMAP_ERROR_SSL)
				snprintf(err, errlen, "TLS: STARTTLS handshake "
				    "failed (%s:%u)", cf->host,
				    (unsigned)cf->port);
			else
				imap_why(cf, r, "TLS: STARTTLS", err, errlen);
			goto fail;
		}
		if (tls_check(cf, cf->imap->imap_stream, err, errlen) == -1)
			goto fail;
	}
	if (!preauth &&
	    (r = mailimap_login(cf->imap, cf->user, cf->password)) !=
	    MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "LOGIN", err, errlen);
		goto fail;
	}
	if ((r = mailimap_capability(cf->imap, &caps)) != MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "CAPABILITY", err, errlen);
		goto fail;
	}
	cf->has_idle = has_cap(caps, "IDLE");
	cf->has_move = has_cap(caps, "MOVE");
	cf->has_uidplus = has_cap(caps, "UIDPLUS");
	mailimap_capability_data_free(caps);
	if ((r = mailimap_select(cf->imap, cf->mailbox)) != MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "SELECT", err, errlen);
		goto fail;
	}
	if ((r = mailimap_create(cf->imap, cf->done_mailbox)) ==
	    MAILIMAP_ERROR_STREAM) {
		imap_why(cf, r, "CREATE", err, errlen);
		goto fail;
	}
	return 0;
fail:
	imap_drop(cf);
	return -1;
}

/*
 * FETCH the message uid (at most FETCH_MAX bytes, not marking it seen)
 * into an allocated buffer.  1 with *out and *len, 0 if it is gone, -1
 * with err.
 */
static int
imap_fetch(struct inbox_conf *cf, uint32_t uid, char **out, size_t *len,
    char *err, size_t errlen)
{
	struct mailimap_fetch_type *ft = NULL;
	struct mailimap_fetch_att *fa;
	struct mailimap_section *sec;
	struct mailimap_set *set;
	clist *res = NULL;
	int r, rc = 0;

	*out = NULL;
	if ((set = mailimap_set_new_single(uid)) == NULL ||
	    (ft = mailimap_fetch_type_new_fetch_att_list_empty()) == NULL ||
	    (fa = mailimap_fetch_att_new_uid()) == NULL)
		goto oom;
	if (mailimap_fetch_type_new_fetch_att_list_add(ft, fa) != 0) {
		mailimap_fetch_att_free(fa);
		goto oom;
	}
	if ((sec = mailimap_section_new(NULL)) == NULL)
		goto oom;
	if ((fa = mailimap_fetch_att_new_body_peek_section_partial(sec, 0,
	    FETCH_MAX)) == NULL) {
		mailimap_section_free(sec);
		goto oom;
	}
	if (mailimap_fetch_type_new_fetch_att_list_add(ft, fa) != 0) {
		mailimap_fetch_att_free(fa);
		goto oom;
	}
	if ((r = mailimap_uid_fetch(cf->imap, set, ft, &res)) !=
	    MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "FETCH", err, errlen);
		rc = -1;
		goto done;
	}
	for (clistiter *c = clist_begin(res); c != NULL && rc == 0;
	    c = clist_next(c)) {
		struct mailimap_msg_att *ma = clist_content(c);
		const char *body = NULL;
		size_t blen = 0;
		uint32_t got = 0;

		for (clistiter *d = clist_begin(ma->att_list); d != NULL;
		    d = clist_next(d)) {
			struct mailimap_msg_att_item *it = clist_content(d);
			struct mailimap_msg_att_static *st;

			if (it->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC ||
			    (st = it->att_data.att_static) == NULL)
				continue;
			if (st->att_type == MAILIMAP_MSG_ATT_UID)
				got = st->att_data.att_uid;
			else if (st->att_type == MAILIMAP_MSG_ATT_BODY_SECTION &&
			    st->att_data.att_body_section != NULL) {
				body = st->att_data.att_body_section->
				    sec_body_part;
				blen = st->att_data.att_body_section->
				    sec_length;
			}
		}
		if (got != uid || body == NULL)
			continue;	/* another message's flags, say */
		if ((*out = malloc(blen + 1)) == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
			break;
		}
		memcpy(*out, body, blen);
		(*out)[blen] = '\0';
		*len = blen;
		rc = 1;
	}
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
	rc = -1;
done:
	if (res != NULL)
		mailimap_fetch_list_free(res);
	if (ft != NULL)
		mailimap_fetch_type_free(ft);
	if (set != NULL)
		mailimap_set_free(set);
	return rc;
}

/* Move the message uid to done_mailbox.  0, or -1 with err. */
static int
imap_move(struct inbox_conf *cf, uint32_t uid, char *err, size_t errlen)
{
	struct mailimap_store_att_flags *sf = NULL;
	struct mailimap_flag_list *fl = NULL;
	struct mailimap_flag *f;
	struct mailimap_set *set;
	int r, rc = -1;

	if ((set = mailimap_set_new_single(uid)) == NULL)
		goto oom;
	if (cf->has_move) {
		if ((r = mailimap_uid_move(cf->imap, set, cf->done_mailbox)) !=
		    MAILIMAP_NO_ERROR) {
			imap_why(cf, r, "MOVE", err, errlen);
			goto done;
		}
		rc = 0;
		goto done;
	}
	if ((r = mailimap_uid_copy(cf->imap, set, cf->done_mailbox)) !=
	    MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "COPY", err, errlen);
		goto done;
	}
	if ((fl = mailimap_flag_list_new_empty()) == NULL ||
	    (f = mailimap_flag_new_deleted()) == NULL)
		goto oom;
	if (mailimap_flag_list_add(fl, f) != 0) {
		mailimap_flag_free(f);
		goto oom;
	}
	if ((sf = mailimap_store_att_flags_new_add_flags_silent(fl)) == NULL)
		goto oom;
	fl = NULL;		/* sf owns it */
	if ((r = mailimap_uid_store(cf->imap, set, sf)) != MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "STORE", err, errlen);
		goto done;
	}
	r = cf->has_uidplus ? mailimap_uid_expunge(cf->imap, set) :
	    mailimap_expunge(cf->imap);
	if (r != MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "EXPUNGE", err, errlen);
		goto done;
	}
	rc = 0;
	goto done;
oom:
	snprintf(err, errlen, "out of memory");
done:
	if (sf != NULL)
		mailimap_store_att_flags_free(sf);
	if (fl != NULL)
		mailimap_flag_list_free(fl);
	if (set != NULL)
		mailimap_set_free(set);
	return rc;
}

static int
cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The UIDs of the messages not marked \Deleted, ascending, at most
 * PASS_MAX; allocated in *uids.  0, or -1 with err. */
static int
imap_search(struct inbox_conf *cf, uint32_t **uids, size_t *n, char *err,
    size_t errlen)
{
	struct mailimap_search_key *key;
	clist *res = NULL;
	size_t cnt = 0;
	int r;

	*uids = NULL;
	*n = 0;
	key = mailimap_search_key_new(MAILIMAP_SEARCH_KEY_UNDELETED, NULL,
	    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	    NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL,
	    NULL);
	if (key == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = mailimap_uid_search(cf->imap, NULL, key, &res);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "SEARCH", err, errlen);
		return -1;
	}
	for (clistiter *c = clist_begin(res); c != NULL; c = clist_next(c))
		cnt++;
	if (cnt > 0 && (*uids = calloc(cnt, sizeof(**uids))) == NULL) {
		mailimap_search_result_free(res);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (clistiter *c = clist_begin(res); c != NULL; c = clist_next(c))
		(*uids)[(*n)++] = *(uint32_t *)clist_content(c);
	mailimap_search_result_free(res);
	if (*n > 1)
		qsort(*uids, *n, sizeof(**uids), cmp_uid);
	if (*n > PASS_MAX)
		*n = PASS_MAX;
	return 0;
}

/* One pass over the mailbox.  0; 1 if deliver() stopped it; -1 with err. */
static int
imap_pass(struct inbox_conf *cf, inbox_deliver_fn deliver, void *arg,
    char *err, size_t errlen)
{
	struct inbox_parsed p;
	uint32_t *uids;
	size_t n, len;
	char *buf, key[16], why[128];
	int r, rc = 0;

	if (imap_search(cf, &uids, &n, err, errlen) == -1)
		return -1;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if ((r = imap_fetch(cf, uids[i], &buf, &len, err, errlen)) <= 0) {
			rc = r;		/* 0: it went away meanwhile */
			continue;
		}
		if (len == 0) {		/* nothing to read, nothing to prove */
			free(buf);
			continue;
		}
		if (inbox_parse(buf, len, &p, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "message %u: %s", uids[i], why);
			free(buf);
			rc = -1;
			break;
		}
		snprintf(key, sizeof(key), "%u", uids[i]);
		p.msg.key = key;
		r = deliver(&p.msg, arg);
		inbox_parsed_free(&p);
		free(buf);
		if (r == 1 && imap_move(cf, uids[i], err, errlen) == -1)
			rc = -1;
		else if (r < 0)
			rc = 1;
	}
	free(uids);
	return rc;
}

/* Wait for new mail: IDLE for `poll' (at most IDLE_MAX), or a sleep. */
static int
imap_wait(struct inbox_conf *cf, char *err, size_t errlen)
{
	int64_t secs = cf->poll < IDLE_MAX ? cf->poll : IDLE_MAX;
	struct pollfd pfd;
	int r;

	if (!cf->has_idle) {
		nap(cf->poll);
		return 0;
	}
	if ((r = mailimap_idle(cf->imap)) != MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "IDLE", err, errlen);
		return -1;
	}
	/* what arrived with the continuation is already read */
	if (cf->imap->imap_stream->read_buffer_len == 0) {
		pfd.fd = mailimap_idle_get_fd(cf->imap);
		pfd.events = POLLIN;
		(void)poll(&pfd, 1, (int)(secs * 1000));
	}
	if ((r = mailimap_idle_done(cf->imap)) != MAILIMAP_NO_ERROR) {
		imap_why(cf, r, "IDLE", err, errlen);
		return -1;
	}
	return 0;
}

static int
imap_poll(struct inbox_conf *cf, inbox_deliver_fn deliver, void *arg,
    char *err, size_t errlen)
{
	int r;

	/* a session kept from the last pass may have timed out */
	if (cf->imap != NULL && mailimap_noop(cf->imap) != MAILIMAP_NO_ERROR)
		imap_drop(cf);
	if (cf->imap == NULL && imap_open(cf, err, errlen) == -1)
		return -1;
	if ((r = imap_pass(cf, deliver, arg, err, errlen)) != 0) {
		if (r == 1)
			snprintf(err, errlen, "the relay stopped the pass");
		imap_drop(cf);
		return -1;
	}
	if (imap_wait(cf, err, errlen) == -1) {
		imap_drop(cf);
		return -1;
	}
	return 0;
}

/* ---- POP3 ---------------------------------------------------------------- */

/* Why a POP3 command failed. */
static void
pop3_why(mailpop3 *f, int r, const char *step, char *err, size_t errlen)
{
	char text[256];

	if (r == MAILPOP3_ERROR_STREAM || f->pop3_stream == NULL)
		snprintf(err, errlen, "%s: connection lost or timed out", step);
	else {
		server_text(f->pop3_response, text, sizeof(text));
		snprintf(err, errlen, "%s refused: %s", step, text);
	}
}

/*
 * End a POP3 session.  quit: QUIT, which commits the DELEs (the server is
 * still talking to us); else the connection is closed without a word, and
 * what libetpan's QUIT would have freed is freed here.
 */
static void
pop3_end(mailpop3 *f, int quit)
{
	if (!quit && f->pop3_stream != NULL) {
		mailstream_close(f->pop3_stream);
		f->pop3_stream = NULL;
		free(f->pop3_timestamp);
		f->pop3_timestamp = NULL;
		if (f->pop3_msg_tab != NULL) {
			for (unsigned i = 0; i < carray_count(f->pop3_msg_tab);
			    i++) {
				struct mailpop3_msg_info *mi =
				    carray_get(f->pop3_msg_tab, i);

				free(mi->msg_uidl);
				free(mi);
			}
			carray_free(f->pop3_msg_tab);
			f->pop3_msg_tab = NULL;
		}
	} else if (f->pop3_stream != NULL)
		mailpop3_quit(f);
	mailpop3_free(f);
}

/* Connect, TLS (verified), USER and PASS.  0, or -1 with err (f ended). */
static int
pop3_open(struct inbox_conf *cf, mailpop3 *f, char *err, size_t errlen)
{
	mailstream *s;
	int r;

	mailstream_network_delay.tv_sec = TIMEOUT;	/* STLS handshake */
	mailstream_network_delay.tv_usec = 0;
	mailpop3_set_timeout(f, TIMEOUT);
	if ((s = stream_open(cf, err, errlen)) == NULL)
		return -1;
	if ((r = mailpop3_connect(f, s)) != MAILPOP3_NO_ERROR) {
		if (f->pop3_stream == NULL)
			mailstream_close(s);
		pop3_why(f, r, "greeting", err, errlen);
		return -1;
	}
	if (cf->tls == TLS_STARTTLS) {
		if ((r = mailpop3_socket_starttls_with_callback(f, tls_setup,
		    cf)) != MAILPOP3_NO_ERROR) {
			if (r == MAILPOP3_ERROR_STLS_NOT_SUPPORTED)
				snprintf(err, errlen, "TLS: server does not "
				    "offer STLS");
			else
				snprintf(err, errlen, "TLS: STLS handshake "
				    "failed (%s:%u)", cf->host,
				    (unsigned)cf->port);
			return -1;
		}
		if (tls_check(cf, f->pop3_stream, err, errlen) == -1)
			return -1;
	}
	if ((r = mailpop3_user(f, cf->user)) != MAILPOP3_NO_ERROR) {
		pop3_why(f, r, "USER", err, errlen);
		return -1;
	}
	if ((r = mailpop3_pass(f, cf->password)) != MAILPOP3_NO_ERROR) {
		pop3_why(f, r, "PASS", err, errlen);
		return -1;
	}
	return 0;
}

/* One POP3 session.  0; 1 if deliver() stopped it; -1 with err. */
static int
pop3_pass(struct inbox_conf *cf, inbox_deliver_fn deliver, void *arg,
    char *err, size_t errlen)
{
	struct inbox_parsed p;
	carray *tab = NULL;
	mailpop3 *f;
	char key[80], why[128], *buf;
	size_t len;
	unsigned offered = 0;
	int r, rc = 0, talking = 1, big;

	if ((f = mailpop3_new(0, NULL)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pop3_open(cf, f, err, errlen) == -1) {
		pop3_end(f, 0);
		return -1;
	}
	if ((r = mailpop3_list(f, &tab)) != MAILPOP3_NO_ERROR || tab == NULL) {
		pop3_why(f, r, "LIST", err, errlen);
		pop3_end(f, r != MAILPOP3_ERROR_STREAM);
		return -1;
	}
	for (unsigned i = 0; i < carray_count(tab) && rc == 0 &&
	    offered < PASS_MAX; i++) {
		struct mailpop3_msg_info *mi = carray_get(tab, i);
		unsigned idx = mi->msg_index;

		if (mi->msg_deleted)
			continue;
		/* key: the UIDL, or the number in this session */
		if (mi->msg_uidl != NULL)
			snprintf(key, sizeof(key), "%s", mi->msg_uidl);
		else
			snprintf(key, sizeof(key), "#%u", idx);
		if ((big = mi->msg_size > FETCH_MAX))
			r = mailpop3_top(f, idx, TOP_LINES, &buf, &len);
		else
			r = mailpop3_retr(f, idx, &buf, &len);
		if (r == MAILPOP3_ERROR_NO_SUCH_MESSAGE)
			continue;
		if (r == MAILPOP3_NO_ERROR && len == 0) {	/* nothing to read */
			if (big)
				mailpop3_top_free(buf);
			else
				mailpop3_retr_free(buf);
			continue;
		}
		if (r != MAILPOP3_NO_ERROR) {
			pop3_why(f, r, "RETR", err, errlen);
			talking = r != MAILPOP3_ERROR_STREAM;
			rc = -1;
			break;
		}
		offered++;
		if (inbox_parse(buf, len < FETCH_MAX ? len : FETCH_MAX, &p, why,
		    sizeof(why)) == 0) {
			p.msg.key = key;
			r = deliver(&p.msg, arg);
			inbox_parsed_free(&p);
		} else {
			snprintf(err, errlen, "message %s: %s", key, why);
			rc = -1;
		}
		if (big)
			mailpop3_top_free(buf);
		else
			mailpop3_retr_free(buf);
		if (rc == -1)
			break;
		if (r == 1 && (r = mailpop3_dele(f, idx)) != MAILPOP3_NO_ERROR) {
			pop3_why(f, r, "DELE", err, errlen);
			talking = r != MAILPOP3_ERROR_STREAM;
			rc = -1;
		} else if (r < 0)
			rc = 1;
	}
	/* QUIT commits the DELEs of what the relay has committed */
	pop3_end(f, talking);
	return rc;
}

static int
pop3_poll(struct inbox_conf *cf, inbox_deliver_fn deliver, void *arg,
    char *err, size_t errlen)
{
	int r;

	if ((r = pop3_pass(cf, deliver, arg, err, errlen)) != 0) {
		if (r == 1)
			snprintf(err, errlen, "the relay stopped the pass");
		return -1;
	}
	nap(cf->poll);
	return 0;
}

/* ---- the driver tables --------------------------------------------------- */

static int
inbox_poll(void *state, inbox_deliver_fn deliver, void *arg, char *err,
    size_t errlen)
{
	struct inbox_conf *cf = state;
	struct sigaction sa, old_sa;
	int rc;

	err[0] = '\0';
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_sa);
	if (cf->pop3)
		rc = pop3_poll(cf, deliver, arg, err, errlen);
	else
		rc = imap_poll(cf, deliver, arg, err, errlen);
	sigaction(SIGPIPE, &old_sa, NULL);
	return rc;
}

static void
inbox_release(void *state)
{
	struct inbox_conf *cf = state;

	if (cf == NULL)
		return;
	if (cf->imap != NULL) {
		mailimap_logout(cf->imap);
		imap_drop(cf);
	}
	if (cf->password != NULL) {
		explicit_bzero(cf->password, strlen(cf->password));
		free(cf->password);
	}
	free(cf->name);
	free(cf->host);
	free(cf->ca_file);
	free(cf->user);
	free(cf->mailbox);
	free(cf->done_mailbox);
	free(cf);
}

const struct inbox_driver inbox_imap = {
	.type = "imap",
	.configure = inbox_configure,
	.poll = inbox_poll,
	.release = inbox_release,
};

const struct inbox_driver inbox_pop3 = {
	.type = "pop3",
	.configure = inbox_configure,
	.poll = inbox_poll,
	.release = inbox_release,
};

const struct inbox_driver *
inbox_driver_find(const char *type)
{
	static const struct inbox_driver *drivers[] = {
		&inbox_imap, &inbox_pop3,
	};

	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (type != NULL && strcmp(drivers[i]->type, type) == 0)
			return drivers[i];
	return NULL;
}
