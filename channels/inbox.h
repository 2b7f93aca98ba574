/*
 * inbox.h - reading one inbound mail: inbox_parse() (inbox_mime.c).
 *
 * The inbox drivers (inbox.c) fetch bytes from a mailbox and hand each
 * message to inbox_parse(), which fills the struct inbox_msg of channel.h:
 * the headers the relay matches on (decoded to UTF-8), the first text part,
 * and the fields of a delivery report (DSN, RFC 3464) or a read report
 * (MDN, RFC 8098).  It is pure (no I/O, no globals but libetpan's charset
 * hook, see inbox_mime.c), so the unit tests and the fuzz target call it
 * without a server.
 */
#ifndef DENGON_INBOX_H
#define DENGON_INBOX_H

#include <stddef.h>

#include "channels/channel.h"

#define INBOX_RAW_MAX	(64 * 1024)	/* bytes of the message kept as raw */
#define INBOX_TEXT_MAX	(256 * 1024)	/* bytes of decoded text kept */
#define INBOX_HDR_MAX	4096		/* bytes of one decoded header value */
#define INBOX_MAX_RCPTS	100		/* recipient blocks kept from a DSN */

/*
 * A parsed message and the storage its strings live in.  msg's pointers
 * point into the storage, except msg.raw, which points into the bytes given
 * to inbox_parse() (the caller keeps them alive), and msg.key, which
 * inbox_parse() leaves NULL for the driver to set.
 */
struct inbox_parsed {
	struct inbox_msg	 msg;
	/* private: what inbox_parsed_free() releases */
	char			**strs;
	size_t			 nstrs;
	size_t			 capstrs;
	struct inbox_dsn_rcpt	*rcpts;
};

/*
 * Parse len bytes of one message (RFC 5322, MIME; CRLF or LF line ends).
 * Malformed input is never an error: what can be read is filled in and
 * the rest is NULL (a message without headers has only text and raw).
 * Returns 0, or -1 with err only when len is 0 or memory runs out; out is
 * then empty.  Always call inbox_parsed_free(out) afterwards.
 */
int	inbox_parse(const char *raw, size_t len, struct inbox_parsed *out,
	    char *err, size_t errlen);

/* Free what inbox_parse() allocated; out may be reused after. */
void	inbox_parsed_free(struct inbox_parsed *out);

#endif /* DENGON_INBOX_H */
