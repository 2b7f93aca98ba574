/*
 * mailtest.h - what the mail-rendering unit tests share (test_mail.c,
 * test_lgwan.c): reading a header of a rendered CRLF message.  Included
 * after <cmocka.h>; static, so each test program has its own copy.
 */
#ifndef DENGON_MAILTEST_H
#define DENGON_MAILTEST_H

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The value of header name, unfolded (CRLF + blank removed); NULL if
 * absent.  Allocated. */
static char *
header(const char *msg, const char *name)
{
	size_t nl = strlen(name);
	const char *p = msg, *e;
	char *v, *q;

	for (;;) {
		if (strncmp(p, "\r\n", 2) == 0)
			return NULL;	/* end of the header */
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
			break;
		if ((p = strstr(p, "\r\n")) == NULL)
			return NULL;
		p += 2;
	}
	p += nl + 1;
	while (*p == ' ')
		p++;
	for (e = p; !(e[0] == '\r' && e[1] == '\n' && e[2] != ' ' &&
	    e[2] != '\t'); e++)
		;
	v = q = malloc((size_t)(e - p) + 1);
	assert_non_null(v);
	while (p < e) {
		if (p[0] == '\r' && p[1] == '\n')
			p += 2;
		else
			*q++ = *p++;
	}
	*q = '\0';
	return v;
}

#endif /* DENGON_MAILTEST_H */
