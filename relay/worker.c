/*
 * worker.c - one supervised child process per channel session.
 *
 * The child runs the driver's send() and writes one frame per outcome to
 * its end of a socketpair; the parent reads them without blocking.  What
 * the child does not report (it crashed, hung past its deadline and was
 * killed, or the session failed) becomes a tempfail here, so a delivery
 * is never left without an outcome.  Frame layout: worker.h.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/relay.h"
#include "relay/worker.h"

/* Write all of buf; -1 on error. */
static int
write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
frame_write(int fd, const unsigned char *payload, size_t len)
{
	unsigned char hdr[4], buf[4 + WORKER_FRAME_MAX];

	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	if (len > WORKER_FRAME_MAX)
		return write_all(fd, hdr, 4) == -1 ||
		    write_all(fd, payload, len) == -1 ? -1 : 0;
	/* one write, one wake-up of the reader */
	memcpy(buf, hdr, 4);
	memcpy(buf + 4, payload, len);
	return write_all(fd, buf, 4 + len);
}

int
frame_next(unsigned char *buf, size_t *blen, size_t max,
    const unsigned char **payload, size_t *len)
{
	size_t n;

	if (*blen < 4)
		return 0;
	n = ((size_t)buf[0] << 24) | ((size_t)buf[1] << 16) |
	    ((size_t)buf[2] << 8) | buf[3];
	if (n > max)
		return -1;
	if (*blen < 4 + n)
		return 0;
	*payload = buf + 4;
	*len = n;
	return 1;
}

void
frame_consume(unsigned char *buf, size_t *blen, size_t len)
{
	memmove(buf, buf + 4 + len, *blen - 4 - len);
	*blen -= 4 + len;
}

/* Child: frame one payload and write it to the parent. */
static void
child_frame(int fd, const unsigned char *payload, size_t len)
{
	if (frame_write(fd, payload, len) == -1)
		_exit(3);	/* the parent is gone: nothing to report to */
}

size_t
result_encode(const struct channel_result *r, unsigned char *p)
{
	size_t len = 0, el, rl;
	uint64_t a = (uint64_t)r->attempt;

	el = strnlen(r->evidence, sizeof(r->evidence) - 1);
	rl = strnlen(r->error, sizeof(r->error) - 1);
	p[len++] = 'R';
	for (int i = 7; i >= 0; i--)
		p[len++] = (unsigned char)(a >> (8 * i));
	p[len++] = (unsigned char)r->outcome;
	memcpy(p + len, r->evidence, el);
	len += el;
	p[len++] = '\0';
	memcpy(p + len, r->error, rl);
	len += rl;
	p[len++] = '\0';
	if (r->delivered)
		p[len++] = 'D';
	return len;
}

int
result_decode(const unsigned char *p, size_t len, struct channel_result *r)
{
	const unsigned char *e, *end = p + len;
	uint64_t a = 0;

	if (len < 12 || p[0] != 'R' || p[9] > CHANNEL_PERMFAIL)
		return -1;
	memset(r, 0, sizeof(*r));
	for (int i = 1; i <= 8; i++)
		a = (a << 8) | p[i];
	r->attempt = (int64_t)a;
	r->outcome = (enum channel_outcome)p[9];
	p += 10;
	if ((e = memchr(p, '\0', (size_t)(end - p))) == NULL)
		return -1;
	snprintf(r->evidence, sizeof(r->evidence), "%s", (const char *)p);
	p = e + 1;
	if (p < end && (e = memchr(p, '\0', (size_t)(end - p))) != NULL) {
		snprintf(r->error, sizeof(r->error), "%s", (const char *)p);
		r->delivered = e + 1 < end && e[1] == 'D' &&
		    r->outcome == CHANNEL_OK;
	}
	return 0;
}

/* Child: report() callback of the driver. */
static void
child_report(const struct channel_result *r, void *arg)
{
	unsigned char p[WORKER_FRAME_MAX];

	child_frame(*(int *)arg, p, result_encode(r, p));
}

int
worker_start(struct worker *w, const char *channel,
    const struct channel_driver *drv, void *state,
    const struct channel_msg *msgs, size_t n, int64_t deadline,
    const int *close_fds, size_t nclose)
{
	int sv[2];
	pid_t pid;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	snprintf(w->channel, sizeof(w->channel), "%s", channel);
	if ((w->attempts = calloc(n, sizeof(*w->attempts))) == NULL ||
	    (w->deliveries = calloc(n, sizeof(*w->deliveries))) == NULL ||
	    (w->reported = calloc(n, 1)) == NULL) {
		worker_free(w);
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		w->attempts[i] = msgs[i].attempt;
		w->deliveries[i] = msgs[i].delivery;
	}
	w->n = n;
	w->withdraw = drv->withdraw;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		worker_free(w);
		return -1;
	}
	if ((pid = fork()) == -1) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		worker_free(w);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		char err[256] = "";
		int fd = sv[1];

		/* The child: default signals, none of the parent's sockets. */
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
		close(sv[0]);
		for (size_t i = 0; i < nclose; i++)
			if (close_fds[i] >= 0)
				close(close_fds[i]);
		if (drv->send(state, msgs, n, child_report, &fd, err,
		    sizeof(err)) == -1) {
			unsigned char p[WORKER_FRAME_MAX];
			size_t len = strnlen(err, sizeof(err) - 1);

			p[0] = 'E';
			memcpy(p + 1, err, len);
			child_frame(fd, p, len + 1);
		}
		_exit(0);
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	w->pid = pid;
	w->fd = sv[0];
	w->started = queue_now();
	w->deadline = deadline;
	return 0;
}

/* Parse one complete payload. */
static void
worker_payload(struct worker *w, const unsigned char *p, size_t len,
    channel_report_fn report, void *arg)
{
	struct channel_result r;

	if (len >= 1 && p[0] == 'E') {
		size_t n = len - 1 < sizeof(w->error) - 1 ? len - 1 :
		    sizeof(w->error) - 1;

		memcpy(w->error, p + 1, n);
		w->error[n] = '\0';
		return;
	}
	if (result_decode(p, len, &r) == -1) {
		log_warnx("worker %ld (%s): malformed frame ignored",
		    (long)w->pid, w->channel);
		return;
	}
	/* Only the worker's own attempts, each once. */
	for (size_t i = 0; i < w->n; i++) {
		if (w->attempts[i] != r.attempt || w->reported[i])
			continue;
		w->reported[i] = 1;
		if (r.outcome == CHANNEL_OK)
			w->nok++;
		report(&r, arg);
		return;
	}
}

int
worker_read(struct worker *w, channel_report_fn report, void *arg)
{
	ssize_t n;

	for (;;) {
		n = read(w->fd, w->buf + w->blen, sizeof(w->buf) - w->blen);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			close(w->fd);
			w->fd = -1;
			return 1;
		}
		w->blen += (size_t)n;
		for (;;) {
			const unsigned char *payload;
			size_t len;
			int rc = frame_next(w->buf, &w->blen, WORKER_FRAME_MAX,
			    &payload, &len);

			if (rc == 0)
				break;
			if (rc == -1) {
				log_errx("worker %ld (%s): oversized frame: "
				    "killing it", (long)w->pid, w->channel);
				kill(w->pid, SIGKILL);
				close(w->fd);
				w->fd = -1;
				return 1;
			}
			worker_payload(w, payload, len, report, arg);
			frame_consume(w->buf, &w->blen, len);
		}
	}
}

void
worker_finish(struct worker *w, channel_report_fn report, void *arg)
{
	struct channel_result r;
	char why[256];

	if (w->killed)
		snprintf(why, sizeof(why), "the session overran its deadline "
		    "of %llds and was killed", (long long)((w->deadline -
		    w->started) / 1000));
	else if (w->error[0] != '\0')
		snprintf(why, sizeof(why), "%s", w->error);
	else if (WIFSIGNALED(w->status))
		snprintf(why, sizeof(why), "the session's process died "
		    "(signal %d)", WTERMSIG(w->status));
	else if (WIFEXITED(w->status) && WEXITSTATUS(w->status) != 0)
		snprintf(why, sizeof(why), "the session's process exited "
		    "with status %d", WEXITSTATUS(w->status));
	else
		snprintf(why, sizeof(why), "the session ended without an "
		    "outcome for this message");
	for (size_t i = 0; i < w->n; i++) {
		if (w->reported[i])
			continue;
		memset(&r, 0, sizeof(r));
		r.attempt = w->attempts[i];
		r.outcome = CHANNEL_TEMPFAIL;
		snprintf(r.error, sizeof(r.error), "%s", why);
		w->reported[i] = 1;
		report(&r, arg);
	}
}

void
worker_free(struct worker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->attempts);
	free(w->deliveries);
	free(w->reported);
	w->attempts = NULL;
	w->reported = NULL;
}
