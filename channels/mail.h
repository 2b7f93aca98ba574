/*
 * mail.h - the internet-mail rendering of an alert (channels/mail.c).
 *
 * Private to the mail drivers (smtp.c, lgwan.c): builds the
 * RFC 5322 / MIME message that one recipient receives, with the wording
 * of CONTRACT.md ("What recipients receive").  No state, no I/O; times are
 * shown in the process's time zone, which the caller sets once with
 * relay_set_timezone() from [relay] timezone.
 *
 * Promises of mail_render():
 *   - every line ends in CRLF; there is no bare CR or LF anywhere;
 *   - header lines are at most 78 characters (an address longer than a
 *     line is the only exception, and stays below 998); the body is
 *     base64, 76 characters a line;
 *   - nothing taken from data (subject, names, organisation) can become a
 *     header of its own: control characters are replaced by a space and
 *     non-ASCII text travels as RFC 2047 encoded-words, never splitting a
 *     UTF-8 character between two of them;
 *   - an address, Message-ID or alert id that could break the header
 *     syntax is refused (-1), never repaired.
 * With a struct mail_charset (lgwan: ISO-2022-JP) the body is that
 * charset in 7bit lines of at most 998 bytes instead of base64, and the
 * encoded-words are in that charset, each one complete in itself.
 */
#ifndef DENGON_MAIL_H
#define DENGON_MAIL_H

#include <stddef.h>

#include "channels/channel.h"

/*
 * A 7bit charset other than UTF-8 (the hook of lgwan.c's ISO-2022-JP).
 * encode() converts UTF-8 text in[0..n) into *out (allocated,
 * NUL-terminated, *outlen bytes; the caller frees it): 7bit bytes, LF
 * becomes CRLF, every line starts and ends in the charset's initial
 * (ASCII) state and holds at most maxline bytes (a longer one is broken
 * between two characters).  Nothing is dropped: what the charset cannot
 * carry is replaced.  0, or -1 when out of memory.
 */
struct mail_charset {
	const char	*name;		/* MIME name: "ISO-2022-JP" */
	int		(*encode)(const struct mail_charset *cs, const char *in,
			    size_t n, size_t maxline, char **out,
			    size_t *outlen);
	void		*arg;		/* the driver's */
};

/* What a mail channel adds to a struct channel_msg; all borrowed. */
struct mail_opts {
	const char	*from;		/* "Name <addr>" or addr ([channel] from) */
	const char	*reply_to;	/* the same forms, or NULL */
	const char	*relay;		/* [relay] name */
	const char	*language;	/* "ja" (default) or "en" */
	const struct mail_charset *charset; /* NULL: UTF-8, base64 */
};

/*
 * Render the message for m into *out (allocated, NUL-terminated, *len
 * bytes without the NUL; the caller frees it).  The Date: header is the
 * current time.  Returns 0, or -1 with the reason in err (a bad address:
 * the message can never be sent as it is).
 */
int	mail_render(const struct mail_opts *o, const struct channel_msg *m,
	    char **out, size_t *len, char *err, size_t errlen);

/*
 * Split "Display Name <addr>" (or a bare addr) into its display name
 * (surrounding blanks and double quotes removed; "" when none) and its
 * address.  0, or -1 if the address is missing or not acceptable (see
 * mail_address_ok()).
 */
int	mail_split_mailbox(const char *s, char *name, size_t namelen,
	    char *addr, size_t addrlen);

/*
 * 1 if addr can be put in an envelope and a header as it is: local@domain,
 * printable ASCII, no blanks, no control characters, none of "<>,;:\"()[]\\"
 * and at most 254 bytes; else 0 with *why set to a static reason.
 */
int	mail_address_ok(const char *addr, const char **why);

/* A growing string for renderings; oom is sticky, checked once at the
 * end.  p is allocated (the caller frees it) and always NUL-terminated. */
struct mail_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	int	 oom;
};

void mail_buf_add(struct mail_buf *b, const char *s, size_t n);
void mail_buf_str(struct mail_buf *b, const char *s);
void mail_buf_fmt(struct mail_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* DENGON_MAIL_H */
