/*
 * sms.h - the SMS channel's modems, for the daemon's modem children
 * (relay/modem.c).  Private to channels/ and that file.
 *
 * SMS does not fit the one-session-per-child model of the mail channels:
 * a modem is a device that one process must own for good, because status
 * reports and replies arrive on it at any time.  So the daemon runs one
 * long-lived child per modem, and the child drives the modem through this
 * interface.  Everything about AT commands and PDUs stays in channels/;
 * the child only records what the modem tells it, in the queue.
 */
#ifndef DENGON_SMS_H
#define DENGON_SMS_H

#include <stddef.h>
#include <stdint.h>

#include "channels/channel.h"
#include "channels/sms_pdu.h"

/* The devices of a configured sms channel (state from configure()). */
size_t sms_ndevices(const void *state);
const char *sms_device(const void *state, size_t i);

/*
 * The text recipient m receives by SMS (allocated, the caller frees) and
 * its encoding into parts[SMS_MAX_PARTS]: the number of parts, or -1 with
 * err when it can never be sent (a number that is not E.164: a permfail).
 * The code and the alert id are never cut: the body is shortened first
 * (with an ellipsis), then the subject.  RED and AMBER+STRICT alerts carry
 * a notice instead of their text.
 */
int sms_encode_msg(const void *state, const struct channel_msg *m,
    struct sms_part *parts, char **text, char *err, size_t errlen);

/* An inbound message, reassembled from its parts. */
struct sms_inbound {
	const char	*from;		/* E.164 "+81..." when the number is
					   international or national (then
					   with country_code), else as sent */
	const char	*text;		/* UTF-8 */
	int64_t		 scts;		/* the service centre's time stamp */
	const char	*key;		/* unique for this message: for
					   processing it once */
	const char	*raw;		/* the PDUs, hex, space-separated */
	int		 complete;	/* 0: parts missing, given up waiting */
};

/* What a modem tells its owner. */
struct sms_modem_cb {
	/* A part was accepted: +CMGS gave it message reference mr.  Called
	 * before the next part is sent. */
	void	(*part_sent)(int seq, int total, int mr, void *arg);
	/* A status report (+CDS, or stored and read).  Returns 1 once it is
	 * recorded (a stored one is then deleted from the SIM). */
	int	(*report)(const struct sms_decoded *d, const char *pdu,
		    void *arg);
	/* An inbound message.  Returns 1 once it is recorded (its parts are
	 * then deleted from the SIM), 0 to keep it for the next look. */
	int	(*inbound)(const struct sms_inbound *m, void *arg);
	void	*arg;
};

struct sms_modem;

/*
 * Open device i of the channel and bring the modem up: echo off, numeric
 * errors, the SIM's PIN (entered once, from the device's pin file: a
 * wrong PIN is never tried again, the SIM would lock after three), signal,
 * network registration, PDU mode, SIM storage, indications (+CMTI, +CDS).
 * NULL on failure with err; *fatal = 1 when retrying cannot help (a wrong
 * PIN, a SIM asking for its PUK): the device stays down until the
 * configuration changes.  status receives e.g. "signal 20/31, registered
 * (home)".
 */
struct sms_modem *sms_modem_open(const void *state, size_t i,
    const struct sms_modem_cb *cb, char *status, size_t statuslen,
    char *err, size_t errlen, int *fatal);

void sms_modem_close(struct sms_modem *mm);

/* The descriptor to poll() for what the modem says. */
int sms_modem_fd(const struct sms_modem *mm);

/*
 * Send one message (its parts, from sms_encode_msg()), filling r (attempt
 * is the caller's).  Returns 0 when the outcome says it all (ok: every part
 * accepted, evidence lists the message references; permfail: the network
 * refused the number), or -1 when the modem is in trouble (no answer, the
 * device gone, ERROR): r is then a tempfail and the caller counts the
 * failure towards a reset.
 */
int sms_modem_send(struct sms_modem *mm, const struct sms_part *parts, int n,
    struct channel_result *r);

/*
 * Wait up to timeout_ms for what the modem says by itself, and act on it:
 * status reports, new messages (read, reassembled, handed over, deleted
 * once recorded).  Every SMS_LIST_EVERY_MS it also lists the SIM's
 * messages, since indications get lost.  0, or -1 with err when the modem
 * is in trouble.
 */
int sms_modem_poll(struct sms_modem *mm, int timeout_ms, char *err,
    size_t errlen);

#define SMS_LIST_EVERY_MS	30000

/* Reset the modem (AT+CFUN=1,1, then the start-up again): 0, or -1 with
 * err (the device should then be marked down). */
int sms_modem_reset(struct sms_modem *mm, char *err, size_t errlen);

#endif /* DENGON_SMS_H */
