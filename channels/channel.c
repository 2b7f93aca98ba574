/*
 * channel.c - the table of channel drivers and the names of outcomes.
 *
 * Adding a driver means adding its table here; nothing else in the relay
 * changes.  No state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/channel.h"

static const struct channel_driver *drivers[] = {
	&channel_smtp,
	&channel_lgwan,
	&channel_sms,
	&channel_fax,
};

const struct channel_driver *
channel_driver_find(const char *type)
{
	for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++)
		if (strcmp(drivers[i]->type, type) == 0)
			return drivers[i];
	return NULL;
}

const char *
channel_outcome_name(enum channel_outcome o)
{
	switch (o) {
	case CHANNEL_OK:
		return "ok";
	case CHANNEL_TEMPFAIL:
		return "tempfail";
	case CHANNEL_PERMFAIL:
		return "permfail";
	}
	return "?";
}

int
channel_tlp_restricted(enum queue_tlp t)
{
	return t == QUEUE_TLP_RED || t == QUEUE_TLP_AMBER_STRICT;
}

int
channel_read_secret(const char *path, size_t max, char **out, char *err,
    size_t errlen)
{
	char *buf;
	size_t len = 0;
	ssize_t r = 0;
	int fd, rc = -1;

	*out = NULL;
	if ((buf = malloc(max + 2)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "password_file %s: %s", path,
		    strerror(errno));
		free(buf);
		return -1;
	}
	while (len < max + 1) {
		r = read(fd, buf + len, max + 1 - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (r == -1) {
		snprintf(err, errlen, "password_file %s: cannot read it", path);
		goto out;
	}
	if (len > max) {
		snprintf(err, errlen, "password_file %s: longer than %zu bytes",
		    path, max);
		goto out;
	}
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	buf[len] = '\0';
	if (len == 0 || memchr(buf, '\n', len) || memchr(buf, '\r', len) ||
	    strlen(buf) != len) {
		snprintf(err, errlen, "password_file %s: must hold one "
		    "non-empty line", path);
		goto out;
	}
	if ((*out = strdup(buf)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(buf, max + 2);
	free(buf);
	return rc;
}
