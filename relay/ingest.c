/*
 * ingest.c - checks applied to every alert before it is accepted, whether
 * it comes from `dengon send` or from the spool folder.
 *
 * What passes here is safe to carry anywhere: valid UTF-8, no control
 * characters that could end a header line or drive a modem, and of a size
 * every channel can handle.  No state.
 */
#include <stdlib.h>
#include <string.h>

#include "relay/relay.h"

size_t
ingest_utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
ingest_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if ((n = ingest_utf8_seq(p + i, len - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

int
ingest_check_subject(const char *s, char *err, size_t errlen)
{
	size_t len = strlen(s);

	if (len == 0) {
		snprintf(err, errlen, "the subject is empty");
		return -1;
	}
	if (len > INGEST_MAX_SUBJECT) {
		snprintf(err, errlen, "the subject is %zu bytes long (at most %d)",
		    len, INGEST_MAX_SUBJECT);
		return -1;
	}
	if (!ingest_utf8_valid(s, len)) {
		snprintf(err, errlen, "the subject is not valid UTF-8");
		return -1;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\r' || *p == '\n') {
			snprintf(err, errlen, "the subject contains a line break "
			    "(a subject is one line)");
			return -1;
		}
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen, "the subject contains control "
			    "character 0x%02x", *p);
			return -1;
		}
	}
	return 0;
}

int
ingest_check_body(char *body, char *err, size_t errlen)
{
	size_t len = strlen(body), line = 1;
	char *r, *w;

	if (len > INGEST_MAX_BODY) {
		snprintf(err, errlen, "the body is %zu bytes long (at most %d)",
		    len, INGEST_MAX_BODY);
		return -1;
	}
	/* Line ends first, so that the line numbers below are a reader's. */
	for (r = w = body; *r; r++) {
		if (*r == '\r') {
			*w++ = '\n';
			if (r[1] == '\n')
				r++;
		} else
			*w++ = *r;
	}
	*w = '\0';
	len = (size_t)(w - body);
	for (size_t i = 0; i < len;) {
		const unsigned char *p = (const unsigned char *)body + i;
		size_t n = ingest_utf8_seq(p, len - i);

		if (n == 0) {
			snprintf(err, errlen, "the body is not valid UTF-8 "
			    "(line %zu)", line);
			return -1;
		}
		if (n == 1 && *p == '\n')
			line++;
		else if (n == 1 && *p != '\t' && (*p < 0x20 || *p == 0x7f)) {
			snprintf(err, errlen, "the body contains control "
			    "character 0x%02x (line %zu)", *p, line);
			return -1;
		}
		i += n;
	}
	return 0;
}

char *
ingest_default_subject(const char *body)
{
	const char *p = body, *end;
	size_t len, max = INGEST_MAX_SUBJECT / 2;

	while (*p == '\n' || *p == ' ' || *p == '\t')
		p++;
	end = strchr(p, '\n');
	len = end ? (size_t)(end - p) : strlen(p);
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len > max) {
		len = max;
		/* back off to the start of a UTF-8 character */
		while (len > 0 && ((unsigned char)p[len] & 0xc0) == 0x80)
			len--;
	}
	char *s = strndup(p, len);

	for (char *t = s; t != NULL && *t; t++)
		if (*t == '\t')
			*t = ' ';
	return s;
}
