/*
 * modem.h - one long-lived child per GSM modem (private to relay/).
 *
 * A modem must stay with one process: status reports and replies arrive
 * on it at any time.  So each device of an sms channel gets a child that
 * owns its port for good (channels/sms.h drives it) and its own queue
 * connection, on which it records what the modem tells (the parts sent,
 * status reports, inbound messages) - like the inbox readers.  The daemon
 * hands it one message at a time over a socketpair and reads the outcome
 * back, as it does with session workers (the frames of worker.h):
 *
 *   parent -> child  'S' attempt(8) nparts(1) { seq(1) total(1) tpdu_len(2)
 *                    hex NUL }... number NUL
 *   child -> parent  'R' (worker.h), 'U' status-text (the modem is up),
 *                    'D' fatal(1) reason (it is down; fatal: do not
 *                    restart before the configuration changes)
 *
 * A child that dies, or keeps a message past its deadline (killed), turns
 * that message into a tempfail: the scheduler retries it, on whichever
 * modem is up then.
 */
#ifndef DENGON_MODEM_H
#define DENGON_MODEM_H

#include <sys/types.h>

#include "channels/channel.h"
#include "channels/sms_pdu.h"
#include "conf/conf.h"
#include "queue/queue.h"

#define MODEM_FRAME_MAX	8192

struct modem_proc {
	char		 channel[64];	/* the [channel] name */
	char		 device[128];
	size_t		 index;		/* the device's place in `devices` */
	pid_t		 pid;		/* 0: not running */
	int		 fd;		/* parent's end, -1 when not running */
	int		 up;		/* the child said the modem is ready */
	int		 starting;	/* started, not yet said up or down */
	int		 fatal;		/* not restarted until a reload */
	int		 failures;	/* starts in a row that ended */
	int64_t		 started, next_start;	/* ms */
	int64_t		 attempt;	/* in flight, 0: idle */
	int64_t		 deadline;	/* for it (ms) */
	char		 status[256];	/* the last 'U' or 'D' text */
	unsigned char	 buf[2 * MODEM_FRAME_MAX];
	size_t		 blen;
};

/* What the child needs besides its device. */
struct modem_env {
	const struct conf		*conf;
	void				*state;	/* the sms channel's */
	queue_plan_fn			 plan;	/* for a failed status report */
	void				*plan_arg;
};

/*
 * Start the child for p (channel, device, index set): spawn(spec, fd)
 * runs `dengond -C modem:CHANNEL:INDEX` with fd as its descriptor 3 (a
 * program of its own: see dengond.c on SQLite and fork).  0, or -1.
 */
int modem_start(struct modem_proc *p, pid_t (*spawn)(const char *spec,
    int fd));

/* The child's life, in `dengond -C modem:...`: fd is its socketpair. */
void modem_child_run(const struct modem_env *env, const char *channel,
    const char *device, size_t index, int fd) __attribute__((noreturn));

/*
 * Hand message m (encoded as parts[0..n-1]) to the idle modem p, with a
 * deadline for its outcome.  0, or -1 if the child cannot be written to.
 */
int modem_send(struct modem_proc *p, const struct channel_msg *m,
    const struct sms_part *parts, int n, int64_t deadline);

/* Read what the child said: results go to report(); 'U'/'D' update p.
 * Returns 1 at EOF (the child has gone), 0 otherwise. */
int modem_read(struct modem_proc *p, channel_report_fn report, void *arg);

/* The child has ended: its message in flight, if any, becomes a tempfail
 * (reported) with the reason. */
void modem_ended(struct modem_proc *p, int status, channel_report_fn report,
    void *arg);

#endif /* DENGON_MODEM_H */
