/*
 * channel.h - one interface, one driver per channel type.
 *
 * A driver is a table of function pointers (like OpenSMTPD's queue
 * backends); each driver file exports its table and nothing else, and
 * nothing outside the driver knows its protocol.  The daemon looks a
 * driver up by the [channel] type, configures it once per (re)load, and
 * runs its send() in a supervised child process per session: a driver may
 * block, crash or hang there without stopping the relay.  The CLI calls
 * render() to show what a recipient receives.
 *
 * A driver never touches the queue: everything it needs for a message is
 * in struct channel_msg, copied out of the queue by the daemon, and every
 * outcome goes back as a struct channel_result.
 */
#ifndef DENGON_CHANNEL_H
#define DENGON_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "queue/queue.h"

enum channel_outcome {
	CHANNEL_OK,		/* the next hop accepted it */
	CHANNEL_TEMPFAIL,	/* try again later */
	CHANNEL_PERMFAIL	/* this address will never work */
};

const char *channel_outcome_name(enum channel_outcome o); /* "ok" ... */

/* RED and AMBER+STRICT bodies never travel over SMS or fax: those
 * channels carry only a notice, the alert id and the code. */
int channel_tlp_restricted(enum queue_tlp t);

/*
 * One message for one recipient on one channel.  All strings are borrowed
 * from the caller and valid for the duration of the call.
 */
struct channel_msg {
	int64_t		 attempt;	/* the attempt id: the DSN ENVID */
	int64_t		 delivery;
	const char	*alert;		/* alert id */
	int		 revision;	/* 1.. */
	const char	*recipient;	/* recipient id */
	const char	*name;		/* recipient's name */
	const char	*org;		/* may be NULL */
	const char	*address;	/* mail address or E.164 number */
	const char	*code;		/* CODE_LEN characters, unformatted */
	const char	*subject;	/* UTF-8, one line (checked at ingest) */
	const char	*body;		/* UTF-8, LF line ends */
	enum queue_tlp	 tlp;
	int		 drill;
	int64_t		 created;	/* ms since the epoch */
	int64_t		 expires;
	int		 round;		/* 0: first sending; n: n-th reminder */
	const char	*message_id;	/* "<...@...>": the same on every retry */
	const char	*references;	/* the first message's id, or NULL */
	const char	*notice;	/* NULL: the alert; "cancel": a short
					   notice that the alert was
					   cancelled, asking for nothing;
					   "update": the new revision for a
					   recipient who had confirmed (no
					   confirmation asked) */
	const char	*reason;	/* the notice's reason, or NULL */
};

/* The outcome of one message. */
struct channel_result {
	int64_t			attempt;
	enum channel_outcome	outcome;
	char			evidence[512];	/* e.g. "250 2.0.0 Ok: queued as X" */
	char			error[256];	/* why, for tempfail/permfail */
	int			delivered;	/* ok, and the far end itself
						   confirmed receipt (fax: every
						   page): arrival evidence */
};

/* Filled in by the child for each message as soon as it is known. */
typedef void (*channel_report_fn)(const struct channel_result *r, void *arg);

struct channel_driver {
	const char	*type;		/* "smtp", ... */
	int		 max_batch;	/* messages per send() call (session) */

	/*
	 * Prepare a configured channel: parse and check the section's keys
	 * (already validated by conf/), read secrets from *_file files.
	 * Returns an allocated private state in *state, or -1 with err.
	 * relay is the whole configuration (relay name, language, time zone).
	 */
	int	(*configure)(const struct conf_channel *ch,
		    const struct conf *relay, void **state, char *err,
		    size_t errlen);

	/*
	 * Render m as it would be sent, into an allocated buffer (*out, *len;
	 * the caller frees *out).  Pure: no I/O.  0, or -1 with err.
	 */
	int	(*render)(void *state, const struct channel_msg *m, char **out,
		    size_t *len, char *err, size_t errlen);

	/*
	 * Optional: write what m looks like to the file path, in the format
	 * its extension names (fax: .png, else TIFF), for an operator to look
	 * at.  0, or -1 with err.
	 */
	int	(*render_file)(void *state, const struct channel_msg *m,
		    const char *path, char *err, size_t errlen);

	/*
	 * 1: a session may be withdrawn while it runs.  When every delivery
	 * of a running session has become final (confirmed on another
	 * channel, cancelled), the daemon sends its child SIGTERM; send()
	 * then takes back what it handed over (fax: the HylaFAX job is
	 * removed) and reports each message tempfail, "withdrawn".
	 */
	int		 withdraw;

	/*
	 * Send n messages in one session.  Runs in a child process and may
	 * block; it must call report() exactly once per message, in any
	 * order, as soon as that message's outcome is known.  A message it
	 * never reports (the child died, the deadline passed) is a tempfail
	 * for the daemon.  Returns 0, or -1 if the session failed as a whole
	 * (then unreported messages are tempfail with err as the reason).
	 * -1 says the channel is down (connect, TLS, AUTH: err is for the
	 * channel's health); the driver may have reported the messages
	 * itself already (smtp does: each tempfail with the same reason).
	 * A message that can never be sent as it is (a bad address) is
	 * reported permfail without touching the network.
	 */
	int	(*send)(void *state, const struct channel_msg *msgs, size_t n,
		    channel_report_fn report, void *arg, char *err,
		    size_t errlen);

	/* Free the state from configure(). */
	void	(*release)(void *state);
};

/* ---- inboxes: what comes back (replies, DSNs, MDNs) ---------------------- */

enum inbox_kind {
	INBOX_MESSAGE,		/* anything else: a reply, or noise */
	INBOX_DSN,		/* multipart/report; report-type=delivery-status */
	INBOX_MDN		/* multipart/report; report-type=disposition-notification */
};

/* One per-recipient block of a DSN (RFC 3464). */
struct inbox_dsn_rcpt {
	const char	*final_recipient;	/* the address, "rfc822;" removed */
	const char	*action;		/* failed | delayed | delivered |
						   relayed | expanded (lower case) */
	const char	*status;		/* "5.1.1" */
	const char	*diagnostic;		/* Diagnostic-Code, or NULL */
};

/*
 * One message read from an inbox, parsed (channels/inbox.h: inbox_parse).
 * Every string is valid UTF-8 (decoded from RFC 2047 words and from the
 * part's charset: UTF-8, ISO-2022-JP, Shift_JIS/CP932, EUC-JP ...),
 * NUL-terminated, and borrowed for the call; absent fields are NULL.
 * Header fields are one line (no control characters); text has LF line
 * ends and no control characters but TAB.
 */
struct inbox_msg {
	const char	*key;		/* IMAP UID (decimal) or POP3 UIDL:
					   unique in the mailbox; informative,
					   deliver()'s return value acks */
	const char	*message_id;	/* "<...>" */
	const char	*in_reply_to;	/* "<a> <b>" (as written if unparsable) */
	const char	*references;	/* the same */
	const char	*from;		/* the addr-spec of From:, lower-cased domain */
	const char	*subject;
	const char	*auto_submitted; /* the Auto-Submitted: value, or NULL */
	const char	*text;		/* the first text/plain part that is
					   not an attachment (for a report: its
					   human-readable part), else the first
					   text/html without tags; never read
					   from an attached message/rfc822 (a
					   bounce quoting the alert's code) */
	enum inbox_kind	 kind;
	/* DSN */
	const char	*envelope_id;	/* Original-Envelope-Id */
	const struct inbox_dsn_rcpt *rcpts;
	size_t		 nrcpts;
	/* MDN */
	const char	*disposition;	/* "displayed", "deleted", ... */
	const char	*original_message_id;
	/* the message as received (evidence), possibly cut to raw_len bytes */
	const char	*raw;
	size_t		 raw_len;
};

/* Hand one message to the relay; returns 1 once what it proved is
 * committed (the driver may then move or delete it), 0 to leave it in
 * place (it will be offered again), -1 to stop the pass. */
typedef int (*inbox_deliver_fn)(const struct inbox_msg *m, void *arg);

struct inbox_driver {
	const char	*type;		/* "imap", "pop3" */

	/* Prepare from the [inbox] keys (password from password_file). */
	int	(*configure)(const struct conf_inbox *ib,
		    const struct conf *relay, void **state, char *err,
		    size_t errlen);

	/*
	 * Runs in a long-lived child.  Connect if needed (TLS verified before
	 * LOGIN), read every message not yet handed over, call deliver() for
	 * each, and move (IMAP: to done_mailbox) or delete (POP3) those
	 * acknowledged with 1.  Then wait for new mail up to `poll` (IMAP IDLE
	 * where offered, else sleep) and return 0.  -1 with err on a failure
	 * (the connection is dropped; the daemon restarts the child with
	 * backoff).
	 */
	int	(*poll)(void *state, inbox_deliver_fn deliver, void *arg,
		    char *err, size_t errlen);

	void	(*release)(void *state);
};

/* The inbox driver for a type, or NULL. */
const struct inbox_driver *inbox_driver_find(const char *type);
extern const struct inbox_driver inbox_imap;
extern const struct inbox_driver inbox_pop3;

/*
 * Read a secret (a password) from a *_file: one line of at most max bytes,
 * one trailing newline (LF or CRLF) stripped.  *out is allocated (the
 * caller wipes and frees it).  Error messages name the file, never quote
 * its content.  0, or -1 with err.
 */
int channel_read_secret(const char *path, size_t max, char **out, char *err,
    size_t errlen);

/* The driver for a channel type, or NULL if none is built. */
const struct channel_driver *channel_driver_find(const char *type);

/* The drivers (each in its own file). */
extern const struct channel_driver channel_smtp;
extern const struct channel_driver channel_lgwan;	/* channels/lgwan.c */
extern const struct channel_driver channel_sms;		/* channels/sms.c */
extern const struct channel_driver channel_fax;		/* channels/fax.c */

#endif /* DENGON_CHANNEL_H */
