/*
 * modem.c - the long-lived child of each GSM modem, and the daemon's side
 * of its socketpair (modem.h).
 *
 * The child owns the port and a queue connection; it records the parts it
 * sent (their message references), the status reports (a message is
 * delivered when all its parts are; a failed part fails the attempt, and
 * escalation moves on) and the replies (match_sms: a code confirms).
 * Promises: an outcome for every message the daemon handed over, or the
 * daemon sees the child end and retries it; a modem that stops answering
 * is reset after MODEM_MAX_FAILURES failures in a row, and the child ends
 * (the device is down, restarted with backoff) if that fails too.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/sms.h"
#include "relay/match.h"
#include "relay/modem.h"
#include "relay/relay.h"
#include "relay/worker.h"

#define MODEM_MAX_FAILURES	3

static volatile sig_atomic_t child_stop, child_sending;

/* SIGTERM: a message being sent is finished (it may be half out: parts
 * sent, others not); anything else - waiting, starting up, registering -
 * ends at once, so that the next modem process finds the port free. */
static void
on_term(int sig)
{
	(void)sig;
	if (!child_sending)
		_exit(0);
	child_stop = 1;
}

/* ---- the child ---------------------------------------------------------------- */

/* What on_part_sent() etc. need of the modem. */
struct mdev {
	char	 channel[64];
	char	 device[128];
	size_t	 index;
};

struct mchild {
	const struct modem_env	*env;
	struct mdev		*p;
	struct queue		*q;
	int			 fd;
	char			 name[200];	/* "CHANNEL@DEVICE": health, inbox */
	int64_t			 attempt;	/* being sent */
	char			 number[SMS_NUMBER_MAX];
};

static void
child_tell(struct mchild *c, char kind, int flag, const char *text)
{
	unsigned char p[512];
	size_t n = strnlen(text, sizeof(p) - 3);

	p[0] = (unsigned char)kind;
	p[1] = (unsigned char)flag;
	memcpy(p + 2, text, n);
	if (frame_write(c->fd, p, n + 2) == -1)
		_exit(0);	/* the daemon has gone */
}

static void
on_part_sent(int seq, int total, int mr, void *arg)
{
	struct mchild *c = arg;

	if (queue_sms_part_add(c->q, c->attempt, c->p->device, c->number, seq,
	    total, mr, queue_now()) != QUEUE_OK)
		log_errx("sms %s: attempt %lld: part %d/%d (reference %d): %s "
		    "(its status report will not be matched)", c->name,
		    (long long)c->attempt, seq, total, mr, queue_errmsg(c->q));
}

static int
on_report(const struct sms_decoded *d, const char *pdu, void *arg)
{
	struct mchild *c = arg;
	enum sms_status_class cls = sms_status_classify(d->status);
	char key[160], st[16], num[40];
	const char *action;
	int64_t attempt;
	int seq, total, delivered, rc, already;

	snprintf(num, sizeof(num), "%s%.30s", d->number_international &&
	    d->number[0] != '+' ? "+" : "", d->number);
	rc = queue_sms_report(c->q, c->p->device, d->mr, num, d->status,
	    queue_now(), &attempt, &seq, &total, &delivered);
	if (rc == QUEUE_NOTFOUND) {
		log_warnx("sms %s: status report for reference %d (%s): no "
		    "such part sent: ignored", c->name, d->mr, num);
		return 1;
	}
	if (rc != QUEUE_OK) {
		log_errx("sms %s: status report: %s", c->name,
		    queue_errmsg(c->q));
		return 0;
	}
	if (cls == SMS_ST_DELIVERED && delivered < total) {
		log_info("sms %s: attempt %lld: part %d/%d delivered (%d of %d)",
		    c->name, (long long)attempt, seq, total, delivered, total);
		return 1;
	}
	action = cls == SMS_ST_DELIVERED ? "delivered" : cls == SMS_ST_TRYING ?
	    "delayed" : "failed";
	snprintf(st, sizeof(st), "TP-ST 0x%02X", d->status & 0xff);
	snprintf(key, sizeof(key), "cds:%s:%d:%lld:%d:%d", c->p->device, d->mr,
	    (long long)d->discharge, d->status, seq);
	rc = queue_dsn(c->q, attempt, action, st, sms_status_text(d->status),
	    c->name, key, c->env->plan, c->env->plan_arg, &already);
	if (rc != QUEUE_OK && rc != QUEUE_NOTFOUND) {
		log_errx("sms %s: attempt %lld: status report: %s", c->name,
		    (long long)attempt, queue_errmsg(c->q));
		return 0;
	}
	log_info("sms %s: attempt %lld: status report: %s (%s, %s)%s", c->name,
	    (long long)attempt, action, st, sms_status_text(d->status),
	    already ? " (already recorded)" : "");
	(void)pdu;
	return 1;
}

static int
on_inbound(const struct sms_inbound *m, void *arg)
{
	struct mchild *c = arg;
	char desc[512];
	int rc;

	rc = match_sms(c->q, c->env->conf, c->name, m->from, m->text, m->key,
	    m->raw, desc, sizeof(desc));
	if (rc == 1)
		log_info("sms %s: message from %s: %s", c->name, m->from, desc);
	else
		log_errx("sms %s: message from %s: kept on the SIM: %s",
		    c->name, m->from, desc);
	return rc;
}

/* Decode an 'S' frame into parts; -1 if malformed. */
static int
take_send(struct mchild *c, const unsigned char *p, size_t len,
    struct sms_part *parts, int *n)
{
	const unsigned char *end = p + len, *e;
	uint64_t a = 0;

	if (len < 10 || p[0] != 'S')
		return -1;
	for (int i = 1; i <= 8; i++)
		a = (a << 8) | p[i];
	c->attempt = (int64_t)a;
	*n = p[9];
	p += 10;
	if (*n < 1 || *n > SMS_MAX_PARTS)
		return -1;
	for (int i = 0; i < *n; i++) {
		if (end - p < 4)
			return -1;
		memset(&parts[i], 0, sizeof(parts[i]));
		parts[i].seq = p[0];
		parts[i].total = p[1];
		parts[i].tpdu_len = (p[2] << 8) | p[3];
		p += 4;
		if ((e = memchr(p, '\0', (size_t)(end - p))) == NULL ||
		    (size_t)(e - p) >= sizeof(parts[i].hex))
			return -1;
		memcpy(parts[i].hex, p, (size_t)(e - p) + 1);
		p = e + 1;
	}
	if ((e = memchr(p, '\0', (size_t)(end - p))) == NULL ||
	    (size_t)(e - p) >= sizeof(c->number))
		return -1;
	memcpy(c->number, p, (size_t)(e - p) + 1);
	return 0;
}

/* The modem failed or went away: say so and end (restarted with backoff). */
static void __attribute__((noreturn))
child_down(struct mchild *c, int fatal, const char *why)
{
	log_errx("sms %s: %s%s", c->name, why, fatal ? " (not retried)" : "");
	queue_health_report(c->q, c->name, 0, why, queue_now());
	child_tell(c, 'D', fatal, why);
	_exit(fatal ? 3 : 1);
}

void
modem_child_run(const struct modem_env *env, const char *channel,
    const char *device, size_t index, int fd)
{
	struct mdev dev = { .index = index };
	struct mdev *p = &dev;
	struct mchild c = { .env = env, .p = p, .fd = fd };
	struct sms_modem_cb cb = { .part_sent = on_part_sent,
	    .report = on_report, .inbound = on_inbound, .arg = &c };
	struct sms_part *parts = calloc(SMS_MAX_PARTS, sizeof(*parts));
	struct sms_modem *mm;
	struct sigaction sa;
	unsigned char buf[2 * MODEM_FRAME_MAX];
	size_t blen = 0;
	char err[512], status[256];
	int fatal = 0, failures = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(0);
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	snprintf(dev.channel, sizeof(dev.channel), "%s", channel);
	snprintf(dev.device, sizeof(dev.device), "%s", device);
	snprintf(c.name, sizeof(c.name), "%s@%s", p->channel, p->device);
	if (parts == NULL || (c.q = queue_open(env->conf->queue,
	    env->conf->group, 0, err, sizeof(err))) == NULL) {
		log_errx("sms %s: %s", c.name, parts ? err : "out of memory");
		_exit(1);
	}
	mm = sms_modem_open(env->state, p->index, &cb, status, sizeof(status),
	    err, sizeof(err), &fatal);
	if (mm == NULL)
		child_down(&c, fatal, err);
	log_info("sms %s: modem ready: %s", c.name, status);
	queue_health_report(c.q, c.name, 1, NULL, queue_now());
	queue_health_report(c.q, p->channel, 1, NULL, queue_now());
	child_tell(&c, 'U', 0, status);
	while (!child_stop) {
		struct pollfd pfd[2] = {
			{ .fd = fd, .events = POLLIN },
			{ .fd = sms_modem_fd(mm), .events = POLLIN },
		};
		const unsigned char *payload;
		size_t len;
		ssize_t r;
		int n;

		if (poll(pfd, 2, 1000) == -1 && errno != EINTR)
			break;
		if (sms_modem_poll(mm, 0, err, sizeof(err)) == -1)
			child_down(&c, 0, err);
		if (!(pfd[0].revents & (POLLIN | POLLHUP)))
			continue;
		r = read(fd, buf + blen, sizeof(buf) - blen);
		if (r == 0 || (r == -1 && errno != EINTR && errno != EAGAIN))
			break;		/* the daemon has gone */
		blen += r > 0 ? (size_t)r : 0;
		while (frame_next(buf, &blen, MODEM_FRAME_MAX, &payload,
		    &len) == 1) {
			struct channel_result res;
			unsigned char out[WORKER_FRAME_MAX];

			memset(&res, 0, sizeof(res));
			if (take_send(&c, payload, len, parts, &n) == -1) {
				frame_consume(buf, &blen, len);
				log_errx("sms %s: malformed request ignored",
				    c.name);
				continue;
			}
			frame_consume(buf, &blen, len);
			res.attempt = c.attempt;
			child_sending = 1;
			if (sms_modem_send(mm, parts, n, &res) == -1)
				failures++;
			else
				failures = 0;
			child_sending = 0;
			res.attempt = c.attempt;
			if (frame_write(fd, out, result_encode(&res, out)) == -1)
				_exit(0);
			if (failures >= MODEM_MAX_FAILURES) {
				log_warnx("sms %s: %d failures in a row: "
				    "resetting the modem", c.name, failures);
				if (sms_modem_reset(mm, err, sizeof(err)) == -1)
					child_down(&c, 0, err);
				failures = 0;
			}
		}
	}
	sms_modem_close(mm);
	queue_close(c.q);
	_exit(0);
}

/* ---- the daemon's side ------------------------------------------------------------ */

int
modem_start(struct modem_proc *p, pid_t (*spawn)(const char *spec, int fd))
{
	char spec[256];
	int sv[2];
	pid_t pid;

	snprintf(spec, sizeof(spec), "modem:%s:%zu", p->channel, p->index);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if ((pid = spawn(spec, sv[1])) == -1) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		errno = e;
		return -1;
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	p->pid = pid;
	p->fd = sv[0];
	p->up = 0;
	p->starting = 1;
	p->attempt = 0;
	p->blen = 0;
	p->status[0] = '\0';
	p->started = queue_now();
	return 0;
}

int
modem_send(struct modem_proc *p, const struct channel_msg *m,
    const struct sms_part *parts, int n, int64_t deadline)
{
	unsigned char f[MODEM_FRAME_MAX];
	size_t len = 0;
	uint64_t a = (uint64_t)m->attempt;

	f[len++] = 'S';
	for (int i = 7; i >= 0; i--)
		f[len++] = (unsigned char)(a >> (8 * i));
	f[len++] = (unsigned char)n;
	for (int i = 0; i < n; i++) {
		size_t hl = strlen(parts[i].hex) + 1;

		if (len + 4 + hl + SMS_NUMBER_MAX > sizeof(f)) {
			errno = EMSGSIZE;
			return -1;
		}
		f[len++] = (unsigned char)parts[i].seq;
		f[len++] = (unsigned char)parts[i].total;
		f[len++] = (unsigned char)(parts[i].tpdu_len >> 8);
		f[len++] = (unsigned char)parts[i].tpdu_len;
		memcpy(f + len, parts[i].hex, hl);
		len += hl;
	}
	snprintf((char *)f + len, SMS_NUMBER_MAX, "%s", m->address);
	len += strlen((char *)f + len) + 1;
	/* a socketpair takes a frame this small at once; the child reads
	 * it when it is idle */
	{
		int fl = fcntl(p->fd, F_GETFL);

		fcntl(p->fd, F_SETFL, fl & ~O_NONBLOCK);
		if (frame_write(p->fd, f, len) == -1) {
			fcntl(p->fd, F_SETFL, fl);
			return -1;
		}
		fcntl(p->fd, F_SETFL, fl);
	}
	p->attempt = m->attempt;
	p->deadline = deadline;
	return 0;
}

int
modem_read(struct modem_proc *p, channel_report_fn report, void *arg)
{
	for (;;) {
		ssize_t n = read(p->fd, p->buf + p->blen, sizeof(p->buf) -
		    p->blen);
		const unsigned char *payload;
		size_t len;
		int rc;

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			close(p->fd);
			p->fd = -1;
			return 1;
		}
		p->blen += (size_t)n;
		while ((rc = frame_next(p->buf, &p->blen, MODEM_FRAME_MAX,
		    &payload, &len)) == 1) {
			struct channel_result r;

			if (len >= 2 && (payload[0] == 'U' || payload[0] == 'D')) {
				size_t tl = len - 2 < sizeof(p->status) - 1 ?
				    len - 2 : sizeof(p->status) - 1;

				memcpy(p->status, payload + 2, tl);
				p->status[tl] = '\0';
				p->up = payload[0] == 'U';
				p->starting = 0;
				if (payload[0] == 'D')
					p->fatal = payload[1] != 0;
				else
					p->failures = 0;
			} else if (result_decode(payload, len, &r) == 0 &&
			    r.attempt == p->attempt && p->attempt != 0) {
				p->attempt = 0;
				report(&r, arg);
			} else
				log_warnx("sms %s@%s: unexpected frame ignored",
				    p->channel, p->device);
			frame_consume(p->buf, &p->blen, len);
		}
		if (rc == -1) {
			log_errx("sms %s@%s: oversized frame: killing the "
			    "modem process", p->channel, p->device);
			kill(p->pid, SIGKILL);
			close(p->fd);
			p->fd = -1;
			return 1;
		}
	}
}

void
modem_ended(struct modem_proc *p, int status, channel_report_fn report,
    void *arg)
{
	if (p->fd >= 0) {
		modem_read(p, report, arg);	/* what it said last */
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
	}
	if (p->attempt != 0) {
		struct channel_result r;

		memset(&r, 0, sizeof(r));
		r.attempt = p->attempt;
		r.outcome = CHANNEL_TEMPFAIL;
		snprintf(r.error, sizeof(r.error), "the modem %.60s %s while "
		    "sending (%s %d)%s%.120s", p->device, WIFSIGNALED(status) ?
		    "process was killed" : "went down",
		    WIFSIGNALED(status) ? "signal" : "status",
		    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
		    !p->up && p->status[0] ? ": " : "", !p->up ? p->status : "");
		p->attempt = 0;
		report(&r, arg);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
		p->fatal = 1;
	p->pid = 0;
	p->up = 0;
	p->starting = 0;
}
