/*
 * channel.c - the table of channel drivers and the names of outcomes.
 *
 * Adding a driver means adding its table here; nothing else in the relay
 * changes.  No state.
 */
#include <string.h>

#include "channels/channel.h"

static const struct channel_driver *drivers[] = {
	&channel_smtp,
	&channel_lgwan,
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
