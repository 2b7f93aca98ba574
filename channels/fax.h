/*
 * fax.h - what the fax driver (channels/fax.c) shares beyond channel.h.
 */
#ifndef DENGON_FAX_H
#define DENGON_FAX_H

#include <stddef.h>

/*
 * The dial string for an E.164 number ("+81312345678"): "0" + the
 * national number inside country (the [relay] country_code), else intl
 * (the international prefix) + the number without "+".  Digits only.
 * 0, or -1 if number is not "+" and 6 to 15 digits, or out is too small.
 */
int fax_dial_string(const char *number, const char *country,
    const char *intl, char *out, size_t outlen);

/*
 * Take one complete reply of the HylaFAX client protocol (FTP style:
 * CRLF lines, "NNN-" continues, "NNN " or "NNN" ends) out of buf[0..*len):
 * 1 with its code (100-599) and its text in reply (lines joined by LF,
 * control characters as spaces, cut to replylen), the bytes consumed; 0
 * when the reply is not complete yet (nothing consumed); -1 with err when
 * the bytes are not a reply.
 */
int fax_reply_take(char *buf, size_t *len, char *reply, size_t replylen,
    int *code, char *err, size_t errlen);

/* A job's state, from "JPARM" without arguments (217, "NAME: value" a
 * line). */
struct fax_job {
	char	state[16];	/* PENDING SLEEPING BLOCKED READY ACTIVE DONE
				   FAILED SUSPENDED */
	int	pages, total;	/* sent / to send */
	int	dials, tries;
	int	statuscode;
	char	status[256];
};

/* Parse a JPARM listing: 1, or 0 if it names no STATE. */
int fax_job_parse(const char *reply, struct fax_job *j);

#endif /* DENGON_FAX_H */
