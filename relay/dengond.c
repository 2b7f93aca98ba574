/*
 * dengond.c - the relay daemon: one poll() loop that owns the queue.
 *
 * It never blocks on a network or a modem: every session runs in a
 * supervised child (worker.c), and the loop only reads their outcomes,
 * records them with the scheduler's plan (sched.c) and starts new work.
 *
 * State owned: the lock file beside the queue (one dengond per queue), the
 * control socket, the configured channels (drivers' states), the children
 * and the outcomes read from them but not yet committed.
 *
 * Promises:
 *  - at-least-once: an attempt is in the queue before its child starts;
 *    after a crash, attempts left in flight are retried (queue_recover());
 *  - a child that dies or overruns its deadline becomes a tempfail;
 *  - SIGTERM drains: no new work, in-flight sessions finish, then exit;
 *  - SIGHUP reloads the configuration (the old one stays if the new one
 *    has errors);
 *  - the CLI's `send` wakes the loop at once through the control socket,
 *    and the spool folder is watched with inotify.
 */
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/channel.h"
#include "channels/sms.h"
#include "channels/sms_at.h"
#include "relay/match.h"
#include "relay/modem.h"
#include "relay/relay.h"
#include "relay/sched.h"
#include "relay/worker.h"

#define MAX_CLIENTS	16
#define DUE_WALK_MAX	5000	/* deliveries looked at per dispatch pass */
#define SPOOL_RESCAN_MS	60000	/* even with inotify, look now and then */
#define FLUSH_MS	10	/* outcomes wait at most this long to be
				   committed together (outcomes_due()) */
#define FLUSH_BATCH	500	/* ... or until this many are waiting */

/* A configured channel as the daemon runs it. */
struct chan {
	const struct conf_channel	*cc;	/* borrowed from d->conf */
	const struct channel_driver	*drv;	/* NULL: no driver built yet */
	void				*state;	/* NULL: configure failed */
	char				 error[256];
	int				 concurrency;
	int64_t				 timeout;	/* ms */
	int				 running;	/* workers */
	size_t				 room;		/* messages, this pass */
};

/* An [inbox] and the long-lived child that reads it. */
struct inbox_proc {
	const struct conf_inbox		*ib;	/* borrowed from d->conf */
	const struct inbox_driver	*drv;
	void				*state;	/* NULL: configure failed */
	pid_t				 pid;	/* 0: not running */
	int				 failures;	/* restarts in a row */
	int64_t				 started;
	int64_t				 next_start;	/* ms */
};

struct daemon {
	const char		*conf_path;
	struct conf		*conf;
	struct queue		*q;
	struct code_keyring	 kr;
	struct chan		*chans;
	size_t			 nchans;
	struct worker		*workers;
	size_t			 nworkers;
	struct inbox_proc	*inboxes;
	size_t			 ninboxes;
	struct modem_proc	*modems;	/* one per device of each sms
						   channel; retired ones (no
						   longer configured) stay until
						   their child has ended */
	size_t			 nmodems;
	int			 lock_fd;
	int			 listen_fd;
	int			 clients[MAX_CLIENTS];
	int			 sig_fd[2];
	int			 inotify_fd;
	int			 draining;
	int			 blocked;	/* due work waits for room */
	int64_t			 last_spool;
	/* outcomes read from workers, not yet committed */
	struct queue_outcome	*out;
	size_t			 nout;
	/* channel health left by the sessions collected, not yet committed
	 * (with the outcomes, in the same transaction) */
	struct queue_health_note *health;	/* strings owned */
	size_t			 nhealth;
	int64_t			 pending_since;	/* the first of those read,
						   0: none (FLUSH_MS) */
	int			 modem_out;	/* a modem's outcome is among
						   them: commit before dispatch */
};

static struct daemon *D;		/* for sched's usable() callback */

/* ---- signals -------------------------------------------------------------- */

static int sig_write_fd = -1;

static void
on_signal(int sig)
{
	unsigned char c = (unsigned char)sig;
	int e = errno;

	if (write(sig_write_fd, &c, 1) == -1) {
		/* the pipe is full: a wake-up is already pending */
	}
	errno = e;
}

static int
signals_init(struct daemon *d)
{
	struct sigaction sa;
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGCHLD };

	if (pipe2(d->sig_fd, O_CLOEXEC | O_NONBLOCK) == -1)
		return -1;
	sig_write_fd = d->sig_fd[1];
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) == -1)
			return -1;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* ---- channels ------------------------------------------------------------- */

static int
chan_is_sms(const struct chan *c)
{
	return strcmp(c->cc->type, "sms") == 0;
}

/* Usable: configured, and for sms at least one modem up. */
static int
chan_usable(const struct conf_channel *cc)
{
	for (size_t i = 0; i < D->nchans; i++) {
		if (D->chans[i].cc != cc)
			continue;
		if (D->chans[i].state == NULL)
			return 0;
		if (!chan_is_sms(&D->chans[i]))
			return 1;
		/* a modem starting up counts: its work waits for room (a
		 * pass or two), not for a backoff */
		for (size_t k = 0; k < D->nmodems; k++)
			if ((D->modems[k].up || D->modems[k].starting) &&
			    strcmp(D->modems[k].channel, cc->name) == 0)
				return 1;
		return 0;
	}
	return 0;
}

static struct chan *
chan_find(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->nchans; i++)
		if (strcmp(d->chans[i].cc->name, name) == 0)
			return &d->chans[i];
	return NULL;
}

static void
chans_release(struct daemon *d)
{
	for (size_t i = 0; i < d->nchans; i++)
		if (d->chans[i].drv != NULL && d->chans[i].state != NULL)
			d->chans[i].drv->release(d->chans[i].state);
	free(d->chans);
	d->chans = NULL;
	d->nchans = 0;
}

/* Configure every [channel] with its driver; a channel whose driver is not
 * built or whose configuration fails is kept, unusable, with the reason. */
static void
chans_configure(struct daemon *d)
{
	d->chans = calloc(d->conf->nchannels, sizeof(*d->chans));
	if (d->chans == NULL && d->conf->nchannels > 0) {
		log_errx("out of memory configuring channels");
		return;
	}
	d->nchans = d->conf->nchannels;
	queue_set_retry(d->q, d->conf->retry_min * 1000,
	    d->conf->retry_max * 1000);
	for (size_t i = 0; i < d->nchans; i++) {
		struct chan *c = &d->chans[i];
		const char *v;
		int64_t t = 60;

		c->cc = &d->conf->channels[i];
		c->concurrency = 4;
		if ((v = conf_channel_get(c->cc, "concurrency")) != NULL)
			c->concurrency = atoi(v) > 0 ? atoi(v) : 1;
		if ((v = conf_channel_get(c->cc, "timeout")) != NULL)
			conf_parse_duration(v, &t);
		c->timeout = (t > 0 ? t : 60) * 1000;
		if ((c->drv = channel_driver_find(c->cc->type)) == NULL) {
			snprintf(c->error, sizeof(c->error), "no driver for "
			    "channel type %s in this build", c->cc->type);
			log_warnx("channel %s: %s: skipped", c->cc->name,
			    c->error);
			continue;
		}
		if (c->drv->configure(c->cc, d->conf, &c->state, c->error,
		    sizeof(c->error)) == -1) {
			c->state = NULL;
			log_errx("channel %s: %s", c->cc->name, c->error);
			queue_health_report(d->q, c->cc->name, 0, c->error,
			    queue_now());
			continue;
		}
		log_info("channel %s: %s driver ready (concurrency %d)",
		    c->cc->name, c->cc->type, c->concurrency);
	}
	/* Workers already running keep their channel by name. */
	for (size_t i = 0; i < d->nworkers; i++) {
		struct chan *c = chan_find(d, d->workers[i].channel);

		if (c != NULL)
			c->running++;
	}
}

/* ---- outcomes --------------------------------------------------------------- */

/* Parent side of a worker's report(): keep it until the next commit. */
static void
on_result(const struct channel_result *r, void *arg)
{
	struct daemon *d = arg;
	struct queue_outcome *v, *o;

	v = realloc(d->out, (d->nout + 1) * sizeof(*v));
	if (v == NULL) {
		log_errx("attempt %lld: out of memory keeping its outcome "
		    "(it will be retried after a restart)",
		    (long long)r->attempt);
		return;
	}
	d->out = v;
	if (d->pending_since == 0)
		d->pending_since = queue_now();
	o = &d->out[d->nout++];
	o->attempt = r->attempt;
	o->outcome = channel_outcome_name(r->outcome);
	o->evidence = r->evidence[0] ? strdup(r->evidence) : NULL;
	o->error = r->error[0] ? strdup(r->error) : NULL;
	o->delivered = r->delivered;
	log_info("attempt %lld: %s%s%s%s%s", (long long)r->attempt, o->outcome,
	    o->evidence ? ": " : "", o->evidence ? o->evidence : "",
	    o->error ? ": " : "", o->error ? o->error : "");
}

static void
plan_outcome(const struct queue_work *w, const struct queue_outcome *o,
    struct queue_plan *plan, void *arg)
{
	static char why[512];
	struct daemon *d = arg;

	sched_outcome(d->conf, chan_usable, w, o, queue_now(), plan, why,
	    sizeof(why));
}

/*
 * Is it time to commit what was read?  Outcomes read in one turn of the
 * loop used to be committed at the start of the next one: the faster the
 * loop, the more commits (a WAL sync each, and the same index pages
 * written again and again).  They now wait up to FLUSH_MS (or FLUSH_BATCH
 * of them), which changes no promise: a delivery moves on only with its
 * outcome committed, and an outcome lost with a crash is an attempt in
 * flight, retried (at-least-once).  Draining commits at once.
 */
static int
outcomes_due(const struct daemon *d, int64_t now)
{
	if (d->nout == 0 && d->nhealth == 0)
		return 0;
	return d->draining || d->nout + d->nhealth >= FLUSH_BATCH ||
	    now - d->pending_since >= FLUSH_MS;
}

/* Keep a channel's health as a session left it, until the next commit. */
static void
health_note(struct daemon *d, const char *channel, int ok, const char *error)
{
	struct queue_health_note *v, *h;
	char *c = strdup(channel), *e = ok ? NULL : strdup(error ? error : "");

	if (c == NULL || (!ok && e == NULL) || (v = realloc(d->health,
	    (d->nhealth + 1) * sizeof(*v))) == NULL) {
		free(c);
		free(e);
		queue_health_report(d->q, channel, ok, error, queue_now());
		return;
	}
	d->health = v;
	if (d->pending_since == 0)
		d->pending_since = queue_now();
	h = &d->health[d->nhealth++];
	h->channel = c;
	h->ok = ok;
	h->error = e;
	h->at = queue_now();
}

/* Commit the outcomes read so far, with the health notes of the sessions
 * collected, in one transaction.  On failure (disk full, busy) they are
 * kept and tried again on the next turn. */
static void
outcomes_flush(struct daemon *d)
{
	if (d->nout == 0 && d->nhealth == 0)
		return;
	if (queue_outcomes_health(d->q, d->out, d->nout, d->health,
	    d->nhealth, queue_now(), plan_outcome, d, "dengond") != QUEUE_OK) {
		log_errx("recording %zu outcomes: %s (will retry)", d->nout,
		    queue_errmsg(d->q));
		/* next try in a second, or sooner with more to record */
		d->pending_since = queue_now() + 1000 - FLUSH_MS;
		return;
	}
	d->pending_since = 0;
	d->modem_out = 0;
	for (size_t i = 0; i < d->nout; i++) {
		free((char *)(uintptr_t)d->out[i].evidence);
		free((char *)(uintptr_t)d->out[i].error);
	}
	d->nout = 0;
	for (size_t i = 0; i < d->nhealth; i++) {
		free((char *)(uintptr_t)d->health[i].channel);
		free((char *)(uintptr_t)d->health[i].error);
	}
	d->nhealth = 0;
}

/* ---- inboxes ------------------------------------------------------------------ */

static void
inboxes_release(struct daemon *d)
{
	for (size_t i = 0; i < d->ninboxes; i++)
		if (d->inboxes[i].drv != NULL && d->inboxes[i].state != NULL)
			d->inboxes[i].drv->release(d->inboxes[i].state);
	free(d->inboxes);
	d->inboxes = NULL;
	d->ninboxes = 0;
}

/* Configure every [inbox]; running children keep theirs until they end. */
static void
inboxes_configure(struct daemon *d, const struct inbox_proc *old,
    size_t nold)
{
	char err[256];

	d->inboxes = calloc(d->conf->ninboxes, sizeof(*d->inboxes));
	if (d->inboxes == NULL && d->conf->ninboxes > 0)
		return;
	d->ninboxes = d->conf->ninboxes;
	for (size_t i = 0; i < d->ninboxes; i++) {
		struct inbox_proc *p = &d->inboxes[i];

		p->ib = &d->conf->inboxes[i];
		for (size_t k = 0; k < nold; k++)
			if (strcmp(old[k].ib->name, p->ib->name) == 0) {
				p->pid = old[k].pid;
				p->failures = old[k].failures;
				p->next_start = old[k].next_start;
			}
		if ((p->drv = inbox_driver_find(p->ib->type)) == NULL) {
			log_errx("inbox %s: no driver for type %s", p->ib->name,
			    p->ib->type);
			continue;
		}
		if (p->drv->configure(p->ib, d->conf, &p->state, err,
		    sizeof(err)) == -1) {
			p->state = NULL;
			log_errx("inbox %s: %s", p->ib->name, err);
			continue;
		}
	}
}

/* ---- children that use the queue: a program of their own ----------------
 *
 * An inbox reader and a modem write to the queue themselves.  A process
 * forked from dengond inherits SQLite's in-process state about the open
 * queue (its locks are the parent's), so such a child does not fork and
 * go on: it executes dengond again (-C KIND:NAME) and opens the queue
 * afresh.  Their socketpair, if any, is descriptor 3.
 */

static const char *self_conf;	/* -c, for the children */
static int self_foreground;	/* -d, for the children */

/* Fork and execute `dengond -C spec`; fd3 (or -1) becomes descriptor 3.
 * The child's pid, or -1 (errno). */
static pid_t
child_exec(const char *spec, int fd3)
{
	char *argv[8];
	int n = 0;
	pid_t pid;

	if ((pid = fork()) != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (fd3 >= 0 && (fd3 == 3 ? fcntl(3, F_SETFD, 0) : dup2(fd3, 3)) == -1)
		_exit(127);
	argv[n++] = (char *)(uintptr_t)"dengond";
	argv[n++] = (char *)(uintptr_t)"-c";
	argv[n++] = (char *)(uintptr_t)self_conf;
	argv[n++] = (char *)(uintptr_t)"-C";
	argv[n++] = (char *)(uintptr_t)spec;
	if (self_foreground)
		argv[n++] = (char *)(uintptr_t)"-d";
	argv[n] = NULL;
	execv("/proc/self/exe", argv);
	log_errx("%s: cannot execute dengond: %s", spec, strerror(errno));
	_exit(127);
}

/* What a child records about a failed delivery report: sched_outcome()
 * uses no channel's state for it. */
static int
child_usable(const struct conf_channel *cc)
{
	return 1;
}

static void
child_plan(const struct queue_work *w, const struct queue_outcome *o,
    struct queue_plan *plan, void *arg)
{
	static char why[512];

	sched_outcome(arg, child_usable, w, o, queue_now(), plan, why,
	    sizeof(why));
}

struct inbox_child {
	const struct conf	*conf;
	struct queue		*q;
	const char		*name;
};

/* The driver hands over one message: record what it proves. */
static int
inbox_deliver(const struct inbox_msg *m, void *arg)
{
	struct inbox_child *ic = arg;
	char desc[512];
	int rc;

	rc = match_inbound(ic->q, ic->conf, ic->name, m, child_plan,
	    (void *)(uintptr_t)ic->conf, desc, sizeof(desc));
	if (rc == 1)
		log_info("inbox %s: %s: %s", ic->name, m->message_id ?
		    m->message_id : "(no Message-ID)", desc);
	else
		log_errx("inbox %s: %s: left in place: %s", ic->name,
		    m->message_id ? m->message_id : "(no Message-ID)", desc);
	return rc;
}

/* `dengond -C inbox:NAME`: its own queue connection, then poll() forever.
 * It ends (and is restarted with backoff) on a failure of the server. */
static int
inbox_child_main(const struct conf *c, const char *name)
{
	const struct conf_inbox *ib = NULL;
	const struct inbox_driver *drv;
	struct inbox_child ic = { .conf = c, .name = name };
	void *state = NULL;
	char err[1024], health[96];
	int up = -1;

	for (size_t i = 0; i < c->ninboxes; i++)
		if (strcmp(c->inboxes[i].name, name) == 0)
			ib = &c->inboxes[i];
	if (ib == NULL || (drv = inbox_driver_find(ib->type)) == NULL) {
		log_errx("inbox %s: not configured", name);
		return 1;
	}
	if (drv->configure(ib, c, &state, err, sizeof(err)) == -1) {
		log_errx("inbox %s: %s", name, err);
		return 1;
	}
	if ((ic.q = queue_open(c->queue, c->group, 0, err, sizeof(err))) ==
	    NULL) {
		log_errx("inbox %s: %s", name, err);
		return 1;
	}
	snprintf(health, sizeof(health), "inbox:%s", name);
	for (;;) {
		if (drv->poll(state, inbox_deliver, &ic, err, sizeof(err)) == -1) {
			log_errx("inbox %s: %s", name, err);
			queue_health_report(ic.q, health, 0, err, queue_now());
			return 1;
		}
		if (up != 1)
			queue_health_report(ic.q, health, 1, NULL, queue_now());
		up = 1;
	}
}

/* `dengond -C modem:CHANNEL:INDEX`: the modem's child (modem.c) on the
 * socketpair at descriptor 3. */
static int
modem_child(const struct conf *c, const char *spec)
{
	char chname[128], err[256];
	const struct conf_channel *cc;
	const struct channel_driver *drv;
	struct modem_env env;
	const char *colon = strrchr(spec, ':');
	void *state = NULL;
	long index;

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(chname))
		return 2;
	memcpy(chname, spec, (size_t)(colon - spec));
	chname[colon - spec] = '\0';
	index = strtol(colon + 1, NULL, 10);
	if ((cc = conf_channel_find(c, chname)) == NULL ||
	    (drv = channel_driver_find(cc->type)) == NULL ||
	    strcmp(cc->type, "sms") != 0) {
		log_errx("sms %s: not configured", chname);
		return 1;
	}
	if (drv->configure(cc, c, &state, err, sizeof(err)) == -1) {
		log_errx("sms %s: %s", chname, err);
		return 1;
	}
	if (index < 0 || (size_t)index >= sms_ndevices(state)) {
		log_errx("sms %s: no device %ld", chname, index);
		return 1;
	}
	memset(&env, 0, sizeof(env));
	env.conf = c;
	env.state = state;
	env.plan = child_plan;
	env.plan_arg = (void *)(uintptr_t)c;
	modem_child_run(&env, chname, sms_device(state, (size_t)index),
	    (size_t)index, 3);
}

/* Run as one of the children (-C KIND:NAME). */
static int
child_mode(const char *path, const char *spec, int foreground)
{
	struct conf_msgs msgs = { 0 };
	struct conf *c = NULL;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	if (getppid() == 1)
		return 0;		/* the daemon is already gone */
	if (conf_load(path, &c, &msgs) == -1) {
		conf_msgs_free(&msgs);
		return 2;
	}
	conf_msgs_free(&msgs);
	relay_set_timezone(c->timezone);
	log_open("dengond", foreground ? "stderr" : c->log);
	if (strncmp(spec, "inbox:", 6) == 0)
		rc = inbox_child_main(c, spec + 6);
	else if (strncmp(spec, "modem:", 6) == 0)
		rc = modem_child(c, spec + 6);
	else
		rc = 2;
	conf_free(c);
	return rc;
}

/* Start the inbox readers that are due to (re)start. */
static void
inboxes_start(struct daemon *d, int64_t now)
{
	char spec[160];

	for (size_t i = 0; i < d->ninboxes; i++) {
		struct inbox_proc *p = &d->inboxes[i];
		pid_t pid;

		if (p->pid != 0 || p->state == NULL || now < p->next_start ||
		    d->draining)
			continue;
		snprintf(spec, sizeof(spec), "inbox:%s", p->ib->name);
		if ((pid = child_exec(spec, -1)) == -1) {
			log_errx("inbox %s: fork: %s", p->ib->name,
			    strerror(errno));
			p->next_start = now + sched_backoff(d->conf, ++p->failures);
			continue;
		}
		p->pid = pid;
		p->started = now;
		log_info("inbox %s: reader %ld started", p->ib->name, (long)pid);
	}
}

/* When a long-lived child that ended (started at `started`) may start
 * again: with backoff on the ends in a row; one that ran a good while
 * starts its backoff afresh. */
static int64_t
restart_at(const struct daemon *d, int *failures, int64_t started,
    int64_t now)
{
	if (now - started > 60000)
		*failures = 0;
	(*failures)++;
	return now + sched_backoff(d->conf, *failures);
}

/* A child ended: if it was an inbox reader, restart it with backoff. */
static void
inbox_exited(struct daemon *d, pid_t pid, int status)
{
	int64_t now = queue_now();

	for (size_t i = 0; i < d->ninboxes; i++) {
		struct inbox_proc *p = &d->inboxes[i];

		if (p->pid != pid)
			continue;
		p->pid = 0;
		p->next_start = restart_at(d, &p->failures, p->started, now);
		if (!d->draining)
			log_warnx("inbox %s: reader %ld ended (%s %d); restart "
			    "in %llds", p->ib->name, (long)pid,
			    WIFSIGNALED(status) ? "signal" : "status",
			    WIFSIGNALED(status) ? WTERMSIG(status) :
			    WEXITSTATUS(status), (long long)((p->next_start -
			    now) / 1000));
	}
}

/* How many inbox readers run. */
static size_t
inboxes_running(const struct daemon *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->ninboxes; i++)
		n += d->inboxes[i].pid != 0;
	return n;
}

/* ---- modems ------------------------------------------------------------------ */

static int
chan_usable_name(struct daemon *d, const char *name)
{
	struct chan *c = chan_find(d, name);

	return c != NULL && chan_usable(c->cc);
}

/* Build the modem list of the sms channels; children already running keep
 * their entry (and are told to renew, by the caller).  An entry whose
 * device is no longer configured is kept, retired, until its child ends. */
static void
modems_configure(struct daemon *d)
{
	struct modem_proc *old = d->modems, *v = NULL;
	size_t nold = d->nmodems, n = 0;

	for (size_t i = 0; i < d->nchans; i++) {
		struct chan *c = &d->chans[i];

		if (!chan_is_sms(c) || c->state == NULL)
			continue;
		for (size_t k = 0; k < sms_ndevices(c->state); k++) {
			struct modem_proc *p, *w = realloc(v, (n + 1) *
			    sizeof(*w));

			if (w == NULL)
				break;
			v = w;
			p = &v[n++];
			memset(p, 0, sizeof(*p));
			p->fd = -1;
			snprintf(p->channel, sizeof(p->channel), "%s",
			    c->cc->name);
			snprintf(p->device, sizeof(p->device), "%s",
			    sms_device(c->state, k));
			p->index = k;
			for (size_t j = 0; j < nold; j++)
				if (old[j].pid != 0 && strcmp(old[j].channel,
				    p->channel) == 0 && strcmp(old[j].device,
				    p->device) == 0) {
					*p = old[j];
					p->index = k;
					p->fatal = 0;
					old[j].pid = 0;
				}
		}
	}
	/* retired: still running, no longer configured */
	for (size_t j = 0; j < nold; j++) {
		struct modem_proc *w;

		if (old[j].pid == 0 || (w = realloc(v, (n + 1) *
		    sizeof(*w))) == NULL)
			continue;
		v = w;
		v[n] = old[j];
		v[n].fatal = 1;		/* never restarted */
		v[n].index = (size_t)-1;
		kill(v[n].pid, SIGTERM);
		n++;
	}
	free(old);
	d->modems = v;
	d->nmodems = n;
}

/* The descriptors a child must close: the parent's sockets, and the
 * parent's ends of the modem children's socketpairs. */
#define CLOSE_MAX	(4 + MAX_CLIENTS + 64)
static size_t
close_list(const struct daemon *d, int *fds)
{
	size_t n = 0;

	fds[n++] = d->listen_fd;
	fds[n++] = d->inotify_fd;
	fds[n++] = d->lock_fd;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (d->clients[i] >= 0)
			fds[n++] = d->clients[i];
	for (size_t i = 0; i < d->nmodems && n < CLOSE_MAX; i++)
		if (d->modems[i].fd >= 0)
			fds[n++] = d->modems[i].fd;
	return n;
}

static void
modems_start(struct daemon *d, int64_t now)
{
	for (size_t i = 0; i < d->nmodems; i++) {
		struct modem_proc *p = &d->modems[i];
		struct chan *c = chan_find(d, p->channel);

		if (p->pid != 0 || p->fatal || now < p->next_start ||
		    d->draining || c == NULL || c->state == NULL)
			continue;
		if (modem_start(p, child_exec) == -1) {
			log_errx("sms %s@%s: fork: %s", p->channel, p->device,
			    strerror(errno));
			p->next_start = now + sched_backoff(d->conf,
			    ++p->failures);
		} else
			log_info("sms %s@%s: modem process %ld started",
			    p->channel, p->device, (long)p->pid);
	}
}

/* A child ended: if it was a modem's, fail its message and restart it
 * with backoff (unless it said retrying cannot help). */
static void
modem_exited(struct daemon *d, pid_t pid, int status)
{
	int64_t now = queue_now();

	for (size_t i = 0; i < d->nmodems; i++) {
		struct modem_proc *p = &d->modems[i];

		if (p->pid != pid)
			continue;
		modem_ended(p, status, on_result, d);
		if (!chan_usable_name(d, p->channel))
			queue_health_report(d->q, p->channel, 0, p->status[0] ?
			    p->status : "every modem is down", now);
		p->next_start = restart_at(d, &p->failures, p->started, now);
		if (!d->draining)
			log_warnx("sms %s@%s: modem process %ld ended (%s)%s",
			    p->channel, p->device, (long)pid, p->status[0] ?
			    p->status : "no reason given", p->fatal ?
			    ": not restarted until the configuration is "
			    "reloaded" : "");
	}
}

static size_t
modems_running(const struct daemon *d)
{
	size_t n = 0;

	for (size_t i = 0; i < d->nmodems; i++)
		n += d->modems[i].pid != 0;
	return n;
}

/* ---- workers ---------------------------------------------------------------- */

static void
workers_reap(struct daemon *d)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		inbox_exited(d, pid, status);
		modem_exited(d, pid, status);
		for (size_t i = 0; i < d->nworkers; i++) {
			if (d->workers[i].pid != pid)
				continue;
			d->workers[i].exited = 1;
			d->workers[i].status = status;
		}
	}
}

/* Finish the workers that have exited and said all they had to say. */
static void
workers_collect(struct daemon *d)
{
	for (size_t i = 0; i < d->nworkers;) {
		struct worker *w = &d->workers[i];
		struct chan *c;

		if (!w->exited || w->fd != -1) {
			i++;
			continue;
		}
		worker_finish(w, on_result, d);
		c = chan_find(d, w->channel);
		if (c != NULL && c->running > 0)
			c->running--;
		if (w->killed || w->error[0] != '\0' || WIFSIGNALED(w->status)) {
			const char *why = w->error[0] ? w->error :
			    w->killed ? "session deadline passed" :
			    "session process died";

			log_warnx("channel %s: session of %zu messages failed: %s",
			    w->channel, w->n, why);
			health_note(d, w->channel, 0, why);
		} else
			health_note(d, w->channel, 1, NULL);
		worker_free(w);
		d->workers[i] = d->workers[--d->nworkers];
	}
}

static void
workers_deadlines(struct daemon *d, int64_t now)
{
	for (size_t i = 0; i < d->nmodems; i++) {
		struct modem_proc *p = &d->modems[i];

		if (p->pid != 0 && p->attempt != 0 && now >= p->deadline) {
			log_warnx("sms %s@%s: no outcome for attempt %lld in "
			    "time: killing the modem process", p->channel,
			    p->device, (long long)p->attempt);
			kill(p->pid, SIGKILL);
			p->deadline = INT64_MAX;
		}
	}
	for (size_t i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];

		if (!w->exited && !w->killed && now >= w->deadline) {
			log_warnx("channel %s: session %ld overran its deadline: "
			    "killed", w->channel, (long)w->pid);
			kill(w->pid, SIGKILL);
			w->killed = 1;
		}
	}
}

/* queue_work_get() callback: is the delivery final? */
static int
work_final(const struct queue_work *w, void *arg)
{
	*(int *)arg = queue_state_final(w->state);
	return QUEUE_OK;
}

/*
 * Withdraw the sessions whose deliveries have all become final meanwhile
 * (confirmed on another channel, cancelled): their children are told with
 * SIGTERM, and take back what they handed over (a HylaFAX job).  Looked at
 * once a second: confirmations are written by other processes too.
 */
static void
workers_withdraw(struct daemon *d, int64_t now)
{
	static int64_t last;

	if (now - last < 1000)
		return;
	last = now;
	for (size_t i = 0; i < d->nworkers; i++) {
		struct worker *w = &d->workers[i];
		size_t nfinal = 0;

		if (!w->withdraw || w->withdrawn || w->exited || w->killed)
			continue;
		for (size_t k = 0; k < w->n; k++) {
			int final = 0;

			if (queue_work_get(d->q, w->deliveries[k], work_final,
			    &final) == QUEUE_OK && final)
				nfinal++;
		}
		if (nfinal < w->n)
			continue;
		log_info("channel %s: session %ld withdrawn: its deliveries "
		    "are closed", w->channel, (long)w->pid);
		kill(w->pid, SIGTERM);
		w->withdrawn = 1;
	}
}

/* ---- dispatch ----------------------------------------------------------------- */

/* The alert texts of one pass, shared by all its messages. */
struct text {
	char	*alert;
	int	 revision;
	char	*subject;
	char	*body;
};

/* One message of a pass, its strings owned. */
struct pmsg {
	struct chan	*chan;
	char		*alert, *recipient, *name, *org, *address, *code;
	char		 message_id[160];
	char		 references[160];
	size_t		 text;	/* index into pass.t: the array moves (realloc) */
	enum queue_tlp	 tlp;
	int		 drill, revision, round, step;
	int64_t		 delivery, created, expires;
	int64_t		 notice;	/* 0, or the notice it sends */
	char		*notice_kind, *reason;
};

struct plan_item {
	int64_t			delivery;
	struct queue_plan	plan;
	char			why[512];
};

struct pass {
	struct daemon		*d;
	int64_t			 now;
	struct pmsg		*m;
	size_t			 nm;
	struct text		*t;
	size_t			 nt;
	struct plan_item	*p;
	size_t			 np;
	int			 full;		/* some work left for lack of room */
};

static char *
xstrdup0(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* The index in p->t of w's alert text, added if new; -1 if out of memory.
 * An index, never a pointer: p->t moves as it grows. */
static long
pass_text(struct pass *p, const struct queue_work *w)
{
	struct text *v;

	for (size_t i = 0; i < p->nt; i++)
		if (p->t[i].revision == w->revision &&
		    strcmp(p->t[i].alert, w->alert) == 0)
			return (long)i;
	if ((v = realloc(p->t, (p->nt + 1) * sizeof(*v))) == NULL)
		return -1;
	p->t = v;
	v = &p->t[p->nt];
	v->alert = strdup(w->alert);
	v->revision = w->revision;
	v->subject = strdup(w->subject);
	v->body = strdup(w->body);
	if (v->alert == NULL || v->subject == NULL || v->body == NULL) {
		free(v->alert);
		free(v->subject);
		free(v->body);
		return -1;
	}
	return (long)p->nt++;
}

/* queue_due_each() callback: decide for one due delivery. */
/* A message of the pass for w on channel c to address: the fields every
 * message has (round and step: the delivery's); NULL out of memory. */
static struct pmsg *
pass_add(struct pass *p, struct chan *c, const struct queue_work *w,
    const char *address)
{
	struct pmsg *m;
	long t;

	if ((t = pass_text(p, w)) < 0)
		return NULL;
	if ((m = realloc(p->m, (p->nm + 1) * sizeof(*m))) == NULL)
		return NULL;
	p->m = m;
	m = &p->m[p->nm++];
	memset(m, 0, sizeof(*m));
	m->chan = c;
	m->alert = xstrdup0(w->alert);
	m->recipient = xstrdup0(w->recipient);
	m->name = xstrdup0(w->name);
	m->org = xstrdup0(w->org);
	m->address = xstrdup0(address);
	m->code = xstrdup0(w->code);
	m->text = (size_t)t;
	m->tlp = w->tlp;
	m->drill = w->drill;
	m->revision = w->revision;
	m->round = w->round;
	m->step = w->step;
	m->delivery = w->delivery;
	m->created = w->created;
	m->expires = w->expires;
	return m;
}

static int
pass_due(const struct queue_work *w, void *arg)
{
	struct pass *p = arg;
	struct daemon *d = p->d;
	struct sched_send out[SCHED_MAX_SENDS];
	struct plan_item *pi;
	struct queue_plan plan;
	char why[512];
	int n, room = 0;

	if (sched_due(d->conf, chan_usable, w, p->now, out, &n, &plan, why,
	    sizeof(why)) == SCHED_PLAN) {
		if ((pi = realloc(p->p, (p->np + 1) * sizeof(*pi))) == NULL)
			return 1;
		p->p = pi;
		pi = &p->p[p->np++];
		pi->delivery = w->delivery;
		pi->plan = plan;
		/* plan.why is pointed at pi->why only when applied: p->p
		 * may still move (realloc). */
		snprintf(pi->why, sizeof(pi->why), "%s", plan.why ? why : "");
		pi->plan.why = NULL;
		return 0;
	}
	for (int i = 0; i < n; i++) {
		struct chan *c = chan_find(d, out[i].channel->name);
		struct pmsg *m;

		if (c == NULL || c->room == 0) {
			p->full = 1;
			continue;
		}
		if ((m = pass_add(p, c, w, out[i].address)) == NULL)
			return 1;
		m->round = plan.round;
		m->step = plan.step;
		sched_message_id(d->conf, w->token, w->revision, plan.round,
		    m->message_id, sizeof(m->message_id));
		if (plan.round > 0 || w->revision > 1)
			sched_message_id(d->conf, w->token, 1, 0, m->references,
			    sizeof(m->references));
		c->room--;
		room++;
	}
	/* Stop once no channel has room left. */
	for (size_t i = 0; i < d->nchans; i++)
		if (d->chans[i].room > 0)
			return 0;
	p->full = 1;
	return 1;
}

static void
pass_free(struct pass *p)
{
	for (size_t i = 0; i < p->nm; i++) {
		free(p->m[i].alert);
		free(p->m[i].recipient);
		free(p->m[i].name);
		free(p->m[i].org);
		free(p->m[i].address);
		free(p->m[i].code);
		free(p->m[i].notice_kind);
		free(p->m[i].reason);
	}
	for (size_t i = 0; i < p->nt; i++) {
		free(p->t[i].alert);
		free(p->t[i].subject);
		free(p->t[i].body);
	}
	free(p->m);
	free(p->t);
	free(p->p);
}

/* The channel_msg of message i of the pass (strings borrowed from p). */
static void
pass_msg(const struct pass *p, size_t i, int64_t attempt,
    struct channel_msg *b)
{
	const struct pmsg *m = &p->m[i];

	memset(b, 0, sizeof(*b));
	b->attempt = attempt;
	b->delivery = m->delivery;
	b->alert = m->alert;
	b->revision = m->revision;
	b->recipient = m->recipient;
	b->name = m->name;
	b->org = m->org;
	b->address = m->address;
	b->code = m->code;
	b->subject = p->t[m->text].subject;
	b->body = p->t[m->text].body;
	b->tlp = m->tlp;
	b->drill = m->drill;
	b->created = m->created;
	b->expires = m->expires;
	b->round = m->round;
	b->message_id = m->message_id;
	b->references = m->references[0] ? m->references : NULL;
	b->notice = m->notice_kind;
	b->reason = m->reason;
}

/* An outcome decided here, without a child (no process, a bad number). */
static void
result_now(struct daemon *d, int64_t attempt, enum channel_outcome o,
    const char *error)
{
	struct channel_result r;

	memset(&r, 0, sizeof(r));
	r.attempt = attempt;
	r.outcome = o;
	snprintf(r.error, sizeof(r.error), "%s", error);
	on_result(&r, d);
}

/* Hand the claimed SMS of channel c to its idle modems, one each.  The
 * parts are encoded here (pure), so a number that can never be sent is a
 * permfail without touching a modem. */
static void
pass_start_sms(struct pass *p, struct chan *c, struct queue_claim *cl)
{
	struct daemon *d = p->d;
	struct sms_part *parts = calloc(SMS_MAX_PARTS, sizeof(*parts));
	size_t next = 0;

	for (size_t i = 0; i < p->nm; i++) {
		struct channel_msg b;
		struct modem_proc *mp = NULL;
		char err[256], *text = NULL;
		int n;

		if (p->m[i].chan != c || cl[i].attempt == 0)
			continue;
		pass_msg(p, i, cl[i].attempt, &b);
		for (; next < d->nmodems && mp == NULL; next++)
			if (d->modems[next].up && d->modems[next].attempt == 0 &&
			    d->modems[next].fd >= 0 && strcmp(d->modems[next].
			    channel, c->cc->name) == 0)
				mp = &d->modems[next];
		if (mp == NULL || parts == NULL) {
			result_now(d, b.attempt, CHANNEL_TEMPFAIL, "no modem "
			    "free to send it");
			continue;
		}
		if ((n = sms_encode_msg(c->state, &b, parts, &text, err,
		    sizeof(err))) < 0) {
			next--;		/* the modem stays free */
			result_now(d, b.attempt, CHANNEL_PERMFAIL, err);
			continue;
		}
		free(text);
		if (modem_send(mp, &b, parts, n, queue_now() + 30000 +
		    (int64_t)n * (AT_CMGS_TIMEOUT_MS + 10000)) == -1) {
			result_now(d, b.attempt, CHANNEL_TEMPFAIL, "cannot hand "
			    "the message to the modem process");
			continue;
		}
		log_info("sms %s@%s: attempt %lld: %d part%s to %s",
		    mp->channel, mp->device, (long long)b.attempt, n,
		    n == 1 ? "" : "s", b.address);
	}
	free(parts);
}

/* Start workers for the claimed messages of channel c. */
static void
pass_start(struct pass *p, struct chan *c, struct queue_claim *cl)
{
	struct daemon *d = p->d;
	struct channel_msg *batch;
	size_t max = c->drv->max_batch > 0 ? (size_t)c->drv->max_batch : 1;
	size_t n = 0;
	int close_fds[CLOSE_MAX];
	size_t nclose = close_list(d, close_fds);

	if (chan_is_sms(c)) {
		pass_start_sms(p, c, cl);
		return;
	}
	if ((batch = calloc(max, sizeof(*batch))) == NULL)
		return;
	for (size_t i = 0; i <= p->nm; i++) {
		if (i < p->nm && p->m[i].chan == c && cl[i].attempt != 0)
			pass_msg(p, i, cl[i].attempt, &batch[n++]);
		if (n == 0 || (n < max && i < p->nm))
			continue;
		/* A full batch, or the last one: one session. */
		struct worker *w = realloc(d->workers, (d->nworkers + 1) *
		    sizeof(*w));
		int64_t now = queue_now();

		if (w != NULL) {
			d->workers = w;
			w = &d->workers[d->nworkers];
			if (worker_start(w, c->cc->name, c->drv, c->state, batch,
			    n, now + c->timeout * 3 + 1000 * (int64_t)n,
			    close_fds, nclose) == 0) {
				d->nworkers++;
				c->running++;
				log_info("channel %s: session %ld started with %zu "
				    "messages", c->cc->name, (long)w->pid, n);
				n = 0;
				continue;
			}
		}
		/* No process: these attempts fail now, and are retried. */
		log_errx("channel %s: cannot start a session: %s", c->cc->name,
		    strerror(errno));
		for (size_t k = 0; k < n; k++)
			result_now(d, batch[k].attempt, CHANNEL_TEMPFAIL,
			    "cannot start a session process");
		n = 0;
	}
	free(batch);
}

/* queue_notices_due() callback: a notice to send on its channel, if that
 * channel is usable and has room (else it waits for the next pass). */
static int
pass_notice(const struct queue_notice *n, const struct queue_work *w,
    void *arg)
{
	struct pass *p = arg;
	struct daemon *d = p->d;
	struct chan *c = chan_find(d, n->channel);
	struct pmsg *m;

	if (c == NULL || c->room == 0 || !chan_usable(c->cc))
		return 0;
	if ((m = pass_add(p, c, w, n->address)) == NULL)
		return 1;
	m->notice_kind = xstrdup0(n->kind);
	m->reason = xstrdup0(n->reason);
	m->notice = n->id;
	/* its own Message-ID (the same on a retry), in the first message's
	 * thread */
	if (strcmp(n->kind, "update") == 0)
		snprintf(m->message_id, sizeof(m->message_id),
		    "<%s.update.r%d@%s>", w->token, w->revision, d->conf->name);
	else
		snprintf(m->message_id, sizeof(m->message_id), "<%s.%s@%s>",
		    w->token, n->kind, d->conf->name);
	sched_message_id(d->conf, w->token, 1, 0, m->references,
	    sizeof(m->references));
	c->room--;
	return 0;
}

/* Look at due work and start what there is room for. */
static void
dispatch(struct daemon *d)
{
	struct pass p;
	struct queue_claim *cl;
	int any = 0;

	memset(&p, 0, sizeof(p));
	p.d = d;
	p.now = queue_now();
	for (size_t i = 0; i < d->nchans; i++) {
		struct chan *c = &d->chans[i];

		c->room = 0;
		if (c->state != NULL && chan_is_sms(c)) {
			for (size_t k = 0; k < d->nmodems; k++)
				c->room += d->modems[k].up &&
				    d->modems[k].attempt == 0 &&
				    strcmp(d->modems[k].channel, c->cc->name) == 0;
		} else if (c->state != NULL && c->running < c->concurrency)
			c->room = (size_t)(c->concurrency - c->running) *
			    (size_t)(c->drv->max_batch > 0 ? c->drv->max_batch : 1);
		any |= c->room > 0;
	}
	/* Even with no room, expiries and escalations are planned. */
	if (queue_due_each(d->q, p.now, DUE_WALK_MAX, pass_due, &p) < 0)
		log_errx("finding due work: %s", queue_errmsg(d->q));
	/* Notices (a cancellation) with the room that is left. */
	for (size_t i = 0; i < d->nchans; i++)
		if (d->chans[i].room > 0) {
			if (queue_notices_due(d->q, p.now, DUE_WALK_MAX,
			    pass_notice, &p) != QUEUE_OK)
				log_errx("finding due notices: %s",
				    queue_errmsg(d->q));
			break;
		}
	d->blocked = p.full || !any;
	for (size_t i = 0; i < p.np; i++) {
		p.p[i].plan.why = p.p[i].why[0] ? p.p[i].why : NULL;
		if (queue_plan_apply(d->q, p.p[i].delivery, &p.p[i].plan, p.now,
		    "dengond") != QUEUE_OK)
			log_errx("delivery %lld: %s", (long long)p.p[i].delivery,
			    queue_errmsg(d->q));
	}
	if (p.nm == 0 || (cl = calloc(p.nm, sizeof(*cl))) == NULL) {
		pass_free(&p);
		return;
	}
	for (size_t i = 0; i < p.nm; i++) {
		cl[i].delivery = p.m[i].delivery;
		cl[i].channel = p.m[i].chan->cc->name;
		cl[i].address = p.m[i].address;
		cl[i].message_id = p.m[i].message_id;
		cl[i].revision = p.m[i].revision;
		cl[i].round = p.m[i].round;
		cl[i].step = p.m[i].step;
		cl[i].notice = p.m[i].notice;
		cl[i].notice_kind = p.m[i].notice_kind;
	}
	if (queue_claim(d->q, cl, p.nm, p.now) != QUEUE_OK)
		log_errx("claiming %zu messages: %s (will retry)", p.nm,
		    queue_errmsg(d->q));
	else
		for (size_t i = 0; i < d->nchans; i++)
			pass_start(&p, &d->chans[i], cl);
	free(cl);
	pass_free(&p);
}

/* ---- the control socket and the spool ------------------------------------------- */

static int
listen_open(struct daemon *d)
{
	struct sockaddr_un sun;
	struct group *gr;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
	    d->conf->socket) >= (int)sizeof(sun.sun_path)) {
		log_errx("socket path %s is too long", d->conf->socket);
		return -1;
	}
	/* We hold the queue's lock: any socket there is a stale one. */
	unlink(d->conf->socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, 16) == -1) {
		log_errx("control socket %s: %s", d->conf->socket,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (d->conf->group != NULL && *d->conf->group != '\0' &&
	    (gr = getgrnam(d->conf->group)) != NULL &&
	    chown(d->conf->socket, (uid_t)-1, gr->gr_gid) == -1)
		log_warnx("control socket: cannot give it to group %s: %s",
		    d->conf->group, strerror(errno));
	if (chmod(d->conf->socket, 0660) == -1)
		log_warnx("control socket: chmod: %s", strerror(errno));
	d->listen_fd = fd;
	return 0;
}

static void
clients_accept(struct daemon *d)
{
	int fd;

	while ((fd = accept4(d->listen_fd, NULL, NULL,
	    SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		int i;

		for (i = 0; i < MAX_CLIENTS && d->clients[i] >= 0; i++)
			;
		if (i == MAX_CLIENTS) {
			close(fd);	/* busy: the client falls back to waiting */
			continue;
		}
		d->clients[i] = fd;
	}
}

/* A client's request: "wake" (start due work now) or "ping". */
static void
client_read(struct daemon *d, int i)
{
	char buf[128];
	ssize_t n = read(d->clients[i], buf, sizeof(buf) - 1);
	const char *reply = "error unknown request\n";

	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		buf[n] = '\0';
		if (strncmp(buf, "wake", 4) == 0 || strncmp(buf, "ping", 4) == 0)
			reply = "ok\n";
		if (write(d->clients[i], reply, strlen(reply)) == -1) {
			/* the client has gone: nothing to tell it */
		}
	}
	close(d->clients[i]);
	d->clients[i] = -1;
}

static void
spool_watch(struct daemon *d)
{
	char path[4096];

	d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (d->inotify_fd == -1) {
		log_warnx("spool: inotify: %s (scanning every %ds instead)",
		    strerror(errno), SPOOL_RESCAN_MS / 1000);
		return;
	}
	snprintf(path, sizeof(path), "%s/incoming", d->conf->spool);
	if (inotify_add_watch(d->inotify_fd, path, IN_MOVED_TO |
	    IN_CLOSE_WRITE) == -1) {
		log_warnx("spool: cannot watch %s: %s (run 'dengon init')",
		    path, strerror(errno));
		close(d->inotify_fd);
		d->inotify_fd = -1;
	}
}

/* How often the spool is scanned without an inotify event (ms). */
static int64_t
spool_every(const struct daemon *d)
{
	return d->inotify_fd == -1 ? 5000 : SPOOL_RESCAN_MS;
}

static void
spool_run(struct daemon *d)
{
	struct spool_result res;

	d->last_spool = queue_now();
	if (spool_scan(d->q, d->conf, &d->kr, &res) == 0 &&
	    (res.accepted || res.rejected))
		log_info("spool: %d accepted, %d rejected", res.accepted,
		    res.rejected);
}

/* ---- start-up ------------------------------------------------------------------- */

/* One dengond per queue: an exclusive lock on QUEUE.lock holding our pid. */
static int
lock_take(struct daemon *d)
{
	char path[4096], pid[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s.lock", d->conf->queue);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660)) == -1) {
		fprintf(stderr, "dengond: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if ((n = pread(fd, pid, sizeof(pid) - 1, 0)) > 0)
			pid[n] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		fprintf(stderr, "dengond: queue %s is already served by "
		    "dengond (pid %s, lock %s)\n", d->conf->queue,
		    *pid ? pid : "unknown", path);
		close(fd);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warnx("lock %s: cannot record our pid", path);
	d->lock_fd = fd;
	return 0;
}

/* -n: check the configuration and the contacts, like `dengon check`. */
static int
check_only(const char *path)
{
	struct conf_msgs msgs = { 0 };
	struct contact_list l = { 0 };
	struct conf *c = NULL;
	int bad;

	if (conf_load(path, &c, &msgs) == 0) {
		if (access(c->contacts, F_OK) == 0 && contacts_load(c->contacts,
		    CONTACTS_ENC_AUTO, c->country_code, &l, &msgs) == 0)
			contacts_check(c->contacts, &l, c, &msgs);
	}
	conf_msgs_print(&msgs, stderr);
	bad = msgs.errors > 0;
	if (!bad)
		printf("%s: OK\n", path);
	contacts_free(&l);
	conf_msgs_free(&msgs);
	conf_free(c);
	return bad ? 2 : 0;
}

static void
reload(struct daemon *d)
{
	struct conf_msgs msgs = { 0 };
	struct conf *c = NULL;

	if (conf_load(d->conf_path, &c, &msgs) == -1) {
		for (size_t i = 0; i < msgs.n; i++)
			log_errx("reload: %s", msgs.v[i]);
		log_errx("reload: configuration has errors: keeping the "
		    "running one");
		conf_msgs_free(&msgs);
		return;
	}
	conf_msgs_free(&msgs);
	if (strcmp(c->queue, d->conf->queue) != 0)
		log_warnx("reload: the queue path changed: restart dengond to "
		    "use it");
	struct inbox_proc *old = d->inboxes;
	struct conf *oldconf = d->conf;
	size_t nold = d->ninboxes;

	chans_release(d);
	d->conf = c;
	d->inboxes = NULL;
	d->ninboxes = 0;
	/* old[] names its inboxes in oldconf: free that after this */
	inboxes_configure(d, old, nold);
	for (size_t i = 0; i < nold; i++)
		if (old[i].drv != NULL && old[i].state != NULL)
			old[i].drv->release(old[i].state);
	free(old);
	conf_free(oldconf);
	relay_set_timezone(c->timezone);
	chans_configure(d);
	modems_configure(d);
	/* readers and modems run on the configuration they were forked
	 * with: renew (a modem finishes the message it is sending first) */
	for (size_t i = 0; i < d->ninboxes; i++)
		if (d->inboxes[i].pid != 0)
			kill(d->inboxes[i].pid, SIGTERM);
	for (size_t i = 0; i < d->nmodems; i++)
		if (d->modems[i].pid != 0)
			kill(d->modems[i].pid, SIGTERM);
	log_info("reloaded %s", d->conf_path);
}

static void
usage(void)
{
	fprintf(stderr, "usage: dengond [-c FILE] [-d] [-n]\n");
	exit(2);
}

/* ---- the loop --------------------------------------------------------------------- */

/* Handle the signals queued on the self-pipe. */
static void
signals_read(struct daemon *d)
{
	unsigned char buf[64];
	ssize_t n;

	while ((n = read(d->sig_fd[0], buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			switch (buf[i]) {
			case SIGTERM:
			case SIGINT:
				if (!d->draining)
					log_info("stopping: waiting for %zu "
					    "sessions in flight", d->nworkers);
				d->draining = 1;
				/* readers commit per message: stop them now;
				 * a modem ends after its message in flight */
				for (size_t k = 0; k < d->ninboxes; k++)
					if (d->inboxes[k].pid != 0)
						kill(d->inboxes[k].pid, SIGTERM);
				for (size_t k = 0; k < d->nmodems; k++)
					if (d->modems[k].pid != 0)
						kill(d->modems[k].pid, SIGTERM);
				break;
			case SIGHUP:
				reload(d);
				break;
			case SIGCHLD:
				workers_reap(d);
				break;
			}
		}
	}
}

static int
run(struct daemon *d)
{
	struct pollfd pfd[4 + MAX_CLIENTS + 128];
	int64_t now, when, timeout;
	size_t np, nw;

	for (;;) {
		now = queue_now();
		workers_reap(d);
		workers_deadlines(d, now);
		workers_withdraw(d, now);
		workers_collect(d);
		/* A modem's outcome is committed before that modem is given
		 * its next message: one message per modem in flight at a
		 * crash, as before outcomes were batched (SMS is slow: the
		 * batching is for mail sessions). */
		if (outcomes_due(d, now) || d->modem_out)
			outcomes_flush(d);
		if (d->draining && d->nworkers == 0 && d->nout == 0 &&
		    d->nhealth == 0 &&
		    inboxes_running(d) == 0 && modems_running(d) == 0)
			return 0;
		if (!d->draining) {
			inboxes_start(d, now);
			modems_start(d, now);
			if (now - d->last_spool >= spool_every(d))
				spool_run(d);
			dispatch(d);
		}
		/* How long may we sleep? */
		timeout = spool_every(d);
		if (!d->draining && queue_next_due(d->q, &when) == QUEUE_OK &&
		    when != 0) {
			int64_t t = when - queue_now();

			if (t <= 0)
				t = d->blocked ? 1000 : 0;
			if (t < timeout)
				timeout = t;
		}
		for (size_t i = 0; i < d->nworkers; i++) {
			int64_t t = d->workers[i].deadline - queue_now();

			if (d->workers[i].withdraw && t > 1000)
				t = 1000;	/* workers_withdraw() */
			if (t < timeout)
				timeout = t < 0 ? 0 : t;
		}
		for (size_t i = 0; i < d->ninboxes && !d->draining; i++) {
			int64_t t = d->inboxes[i].next_start - queue_now();

			if (d->inboxes[i].pid == 0 && d->inboxes[i].state != NULL &&
			    t < timeout)
				timeout = t < 0 ? 0 : t;
		}
		for (size_t i = 0; i < d->nmodems && !d->draining; i++) {
			int64_t t = d->modems[i].next_start - queue_now();

			if (d->modems[i].pid == 0 && !d->modems[i].fatal &&
			    t < timeout)
				timeout = t < 0 ? 0 : t;
			t = d->modems[i].deadline - queue_now();
			if (d->modems[i].attempt != 0 && t < timeout)
				timeout = t < 0 ? 0 : t;
		}
		if (d->nout > 0 || d->nhealth > 0) {
			/* commit when due (FLUSH_MS; a second after a
			 * failed commit) */
			int64_t t = d->pending_since + FLUSH_MS - queue_now();

			if (t < timeout)
				timeout = t < 0 ? 0 : t;
		}
		np = 0;
		pfd[np++] = (struct pollfd){ .fd = d->sig_fd[0], .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = d->draining ? -1 : d->listen_fd,
		    .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = d->inotify_fd, .events = POLLIN };
		for (int i = 0; i < MAX_CLIENTS; i++)
			pfd[np++] = (struct pollfd){ .fd = d->clients[i],
			    .events = POLLIN };
		nw = np;
		for (size_t i = 0; i < d->nworkers && np < sizeof(pfd) /
		    sizeof(pfd[0]); i++)
			pfd[np++] = (struct pollfd){ .fd = d->workers[i].fd,
			    .events = POLLIN };
		for (size_t i = 0; i < d->nmodems && np < sizeof(pfd) /
		    sizeof(pfd[0]); i++)
			pfd[np++] = (struct pollfd){ .fd = d->modems[i].fd,
			    .events = POLLIN };
		log_flush();
		if (poll(pfd, np, (int)timeout) == -1 && errno != EINTR) {
			log_errx("poll: %s", strerror(errno));
			return 1;
		}
		if (pfd[0].revents)
			signals_read(d);
		if (pfd[1].revents && !d->draining)
			clients_accept(d);
		if (pfd[2].revents) {
			char ev[4096];

			while (read(d->inotify_fd, ev, sizeof(ev)) > 0)
				;
			spool_run(d);
		}
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (pfd[3 + i].revents && d->clients[i] >= 0)
				client_read(d, i);
		for (size_t i = nw; i < np; i++) {
			if (pfd[i].revents == 0 || pfd[i].fd < 0)
				continue;
			for (size_t k = 0; k < d->nworkers; k++)
				if (d->workers[k].fd == pfd[i].fd)
					worker_read(&d->workers[k], on_result, d);
			for (size_t k = 0; k < d->nmodems; k++)
				if (d->modems[k].fd == pfd[i].fd) {
					size_t before = d->nout;

					modem_read(&d->modems[k], on_result, d);
					d->modem_out |= d->nout > before;
				}
		}
	}
}

int
main(int argc, char **argv)
{
	struct daemon d;
	struct conf_msgs msgs = { 0 };
	char err[1024];
	int ch, foreground = 0, check = 0, rc;
	const char *child = NULL;
	int64_t n;

	memset(&d, 0, sizeof(d));
	d.listen_fd = d.inotify_fd = d.lock_fd = -1;
	for (int i = 0; i < MAX_CLIENTS; i++)
		d.clients[i] = -1;
	d.conf_path = conf_default_path();
	while ((ch = getopt(argc, argv, "c:C:dnh")) != -1) {
		switch (ch) {
		case 'c':
			d.conf_path = optarg;
			break;
		case 'C':
			child = optarg;
			break;
		case 'd':
			foreground = 1;
			break;
		case 'n':
			check = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (child != NULL)
		return child_mode(d.conf_path, child, foreground);
	if (check)
		return check_only(d.conf_path);
	self_conf = d.conf_path;
	self_foreground = foreground;
	if (conf_load(d.conf_path, &d.conf, &msgs) == -1) {
		conf_msgs_print(&msgs, stderr);
		conf_msgs_free(&msgs);
		return 2;
	}
	conf_msgs_print(&msgs, stderr);
	conf_msgs_free(&msgs);
	relay_set_timezone(d.conf->timezone);
	rc = 1;
	if (lock_take(&d) == -1)
		goto out;
	log_open("dengond", foreground ? "stderr" : d.conf->log);
	log_defer(1);		/* written before each poll() */
	D = &d;
	if ((d.q = queue_open(d.conf->queue, d.conf->group, 0, err,
	    sizeof(err))) == NULL) {
		log_errx("%s", err);
		goto out;
	}
	if (code_keyring_load(d.conf->secret_file, &d.kr, err,
	    sizeof(err)) == -1) {
		log_errx("%s", err);
		goto out;
	}
	if (signals_init(&d) == -1) {
		log_errx("signals: %s", strerror(errno));
		goto out;
	}
	if (queue_recover(d.q, queue_now(), &n) != QUEUE_OK) {
		log_errx("recovery: %s", queue_errmsg(d.q));
		goto out;
	}
	if (n > 0)
		log_warnx("recovered %lld attempts left in flight by a stop; "
		    "they are retried (their messages keep their Message-IDs)",
		    (long long)n);
	chans_configure(&d);
	modems_configure(&d);
	inboxes_configure(&d, NULL, 0);
	if (listen_open(&d) == -1)
		goto out;
	spool_watch(&d);
	spool_run(&d);
	log_info("started on queue %s (pid %ld)", d.conf->queue,
	    (long)getpid());
	rc = run(&d);
	log_info("stopped");
	unlink(d.conf->socket);
out:
	chans_release(&d);
	inboxes_release(&d);
	free(d.workers);
	free(d.modems);
	free(d.out);
	for (size_t i = 0; i < d.nhealth; i++) {
		free((char *)(uintptr_t)d.health[i].channel);
		free((char *)(uintptr_t)d.health[i].error);
	}
	free(d.health);
	code_keyring_free(&d.kr);
	queue_close(d.q);
	conf_free(d.conf);
	if (d.lock_fd >= 0)
		close(d.lock_fd);
	return rc;
}
