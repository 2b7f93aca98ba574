/*
 * worker.h - supervised child processes that run a channel's blocking
 * work (private to relay/).
 *
 * A worker is one child per session: it runs a driver's send() over a
 * batch of messages and reports each outcome to the parent over a
 * socketpair, as length-prefixed frames.  The parent never blocks on it:
 * it reads the socket when poll() says so, kills the child at its
 * deadline, and turns every message the child did not report into a
 * tempfail with the reason (crash, deadline, session failure).
 *
 * Frames: a 4-byte big-endian length, then the payload:
 *   'R' attempt(8 bytes, big-endian) outcome(1) evidence NUL error NUL
 *       ['D': ok with arrival evidence (channel_result.delivered)]
 *   'E' the session's error text (send() returned -1)
 */
#ifndef DENGON_WORKER_H
#define DENGON_WORKER_H

#include <sys/types.h>

#include "channels/channel.h"

#define WORKER_FRAME_MAX	4096

struct worker {
	pid_t		 pid;
	int		 fd;		/* parent's end; -1 once at EOF */
	char		 channel[64];	/* the [channel] name */
	int64_t		 started;	/* ms */
	int64_t		 deadline;	/* ms: killed after this */
	int		 killed;	/* by the deadline */
	int		 exited;	/* reaped */
	int		 status;	/* from waitpid */
	size_t		 n;		/* messages */
	int64_t		*attempts;	/* [n] */
	int64_t		*deliveries;	/* [n] */
	int		 withdraw;	/* the driver can be withdrawn */
	int		 withdrawn;	/* SIGTERM sent for that */
	unsigned char	*reported;	/* [n] */
	size_t		 nok;		/* reported ok */
	char		 error[256];	/* the session's error, if any */
	unsigned char	 buf[2 * WORKER_FRAME_MAX];
	size_t		 blen;
};

/*
 * Fork a worker running drv->send(state, msgs, n) with a deadline (ms
 * since the epoch).  close_fds lists descriptors the child must close (the
 * parent's sockets).  0, or -1 with errno (nothing started).
 */
int worker_start(struct worker *w, const char *channel,
    const struct channel_driver *drv, void *state,
    const struct channel_msg *msgs, size_t n, int64_t deadline,
    const int *close_fds, size_t nclose);

/*
 * Read what is available on w->fd and call report() for each result
 * frame.  Returns 1 at EOF (the child closed its end), 0 otherwise.
 */
int worker_read(struct worker *w, channel_report_fn report, void *arg);

/*
 * The worker has exited and its socket is at EOF: call report() as a
 * tempfail for every message it did not report, with the reason.
 */
void worker_finish(struct worker *w, channel_report_fn report, void *arg);

/* Free what worker_start() allocated (not w itself). */
void worker_free(struct worker *w);

/* ---- frames, shared with the modem children (modem.c) ---- */

/* Write one frame (blocking): 0, or -1 when the other end has gone. */
int frame_write(int fd, const unsigned char *payload, size_t len);
/* The first complete frame in buf[0..*blen): 1 with payload/len (remove
 * it with frame_consume() once used), 0 if incomplete, -1 if it announces
 * more than max bytes. */
int frame_next(unsigned char *buf, size_t *blen, size_t max,
    const unsigned char **payload, size_t *len);
void frame_consume(unsigned char *buf, size_t *blen, size_t len);
/* An 'R' payload for r into p (WORKER_FRAME_MAX bytes): its length. */
size_t result_encode(const struct channel_result *r, unsigned char *p);
/* Parse an 'R' payload: 0, or -1 if malformed. */
int result_decode(const unsigned char *p, size_t len,
    struct channel_result *r);

#endif /* DENGON_WORKER_H */
