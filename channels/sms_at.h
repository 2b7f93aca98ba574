/*
 * sms_at.h - the AT command dialogue with one GSM modem (private to
 * channels/ and relay/modem.c).
 *
 * An at_modem owns the parser of what the modem says: it splits the byte
 * stream into lines, tells final result codes (OK, ERROR, +CME ERROR,
 * +CMS ERROR) from information lines, spots the "> " prompt of AT+CMGS,
 * and hands unsolicited result codes (+CMTI, +CDS, +CDSI, +CMT) to its
 * owner whenever they arrive - between commands or in the middle of one.
 * Line noise is tolerated: bytes outside printable ASCII are dropped from
 * every line, and a line that means nothing is ignored.
 *
 * Nothing here builds a command out of data: callers pass fixed commands
 * and numbers only as PDUs (hex), so no text, number or name can become
 * an AT command.  Every wait has a timeout.
 */
#ifndef DENGON_SMS_AT_H
#define DENGON_SMS_AT_H

#include <stddef.h>

#include "channels/serial.h"

#define AT_TIMEOUT_MS		5000	/* an ordinary command */
#define AT_CMGS_TIMEOUT_MS	120000	/* a submit: the network answers */
#define AT_LINES_MAX		16384	/* information lines of one reply */

enum at_status {
	AT_OK,
	AT_ERROR,	/* ERROR, +CME ERROR or +CMS ERROR: see code */
	AT_TIMEOUT,	/* no final result in time */
	AT_GONE		/* the device has gone */
};

/* The answer to one command. */
struct at_reply {
	enum at_status	status;
	int		code;		/* +CME/+CMS error number; -1: plain
					   ERROR or a text error */
	int		cms;		/* 1 if it was +CMS ERROR */
	char		final[128];	/* the final line as received */
	char		lines[AT_LINES_MAX];	/* information lines, LF-joined */
	size_t		nlines;
	char		error[256];	/* AT_GONE / AT_TIMEOUT: why */
};

/* Unsolicited result codes. */
enum at_urc {
	AT_URC_CMTI,	/* a message was stored: mem, index */
	AT_URC_CDSI,	/* a status report was stored: mem, index */
	AT_URC_CDS,	/* a status report, inline: pdu */
	AT_URC_CMT	/* a message, inline: pdu */
};

typedef void (*at_urc_fn)(enum at_urc kind, const char *mem, int index,
    const char *pdu, void *arg);

struct at_modem;

/* A parser over port (borrowed; NULL for a parser fed by at_feed() only,
 * as the fuzz target does).  name is for messages.  NULL if out of memory. */
struct at_modem *at_new(struct serial *port, const char *name, at_urc_fn urc,
    void *arg);
void at_free(struct at_modem *m);

/* Send cmd (without CR) and wait up to timeout_ms for its final result. */
enum at_status at_cmd(struct at_modem *m, const char *cmd, int timeout_ms,
    struct at_reply *r);

/*
 * Submit one PDU part: AT+CMGS=tpdu_len, wait for the prompt, send hex and
 * Ctrl-Z, wait up to timeout_ms for +CMGS: <mr>.  AT_OK with *mr set.  On
 * a timeout after the PDU was sent the modem may still send it later: the
 * caller counts it as a failure of the modem, not of the number.
 */
enum at_status at_submit(struct at_modem *m, const char *hex, int tpdu_len,
    int timeout_ms, struct at_reply *r, int *mr);

/* Wait up to timeout_ms for input and dispatch what arrived (URCs);
 * 0, or -1 with err when the device has gone. */
int at_poll(struct at_modem *m, int timeout_ms, char *err, size_t errlen);

/* Feed bytes to the parser as if read from the port (tests, fuzzing);
 * URCs are dispatched, reply lines collected into the current reply. */
void at_feed(struct at_modem *m, const char *buf, size_t len);

/* The reply being collected by at_feed() (tests, fuzzing). */
const struct at_reply *at_last_reply(const struct at_modem *m);

/*
 * Walk the information lines of an AT+CMGL (or AT+CMGR) reply: calls fn
 * for each "+CMGL: <index>,<stat>,[<alpha>],<length>" line followed by its
 * PDU line (index -1 for +CMGR).  Malformed entries are skipped.  Returns
 * the number of entries.
 */
int at_parse_list(const char *lines, void (*fn)(int index, int stat,
    const char *pdu, void *arg), void *arg);

/* The first integer after "prefix" in lines ("+CSQ:" -> 20), or -1. */
int at_parse_int(const char *lines, const char *prefix, int nth);

/* A +CMS ERROR code as the SMS channel sees it: 1 if it says the number
 * (or the subscription) will never take the message, 0 if it may work
 * later (network, modem, congestion). */
int at_cms_permanent(int code);
const char *at_cms_text(int code);

#endif /* DENGON_SMS_AT_H */
