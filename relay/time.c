/*
 * time.c - rendering of times for operators and recipients.
 *
 * Times are stored as milliseconds since the epoch (UTC); they are shown in
 * the configured time zone ([relay] timezone), which this file applies to
 * the process with TZ.  No state beyond the process's TZ.
 */
#include <stdlib.h>
#include <time.h>

#include "relay/relay.h"

void
relay_set_timezone(const char *tz)
{
	if (tz != NULL && *tz != '\0')
		setenv("TZ", tz, 1);
	tzset();
}

void
relay_time_rfc3339(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	long off;
	char date[32];

	localtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff / 60;
	if (off == 0)
		snprintf(buf, len, "%s+00:00", date);
	else
		snprintf(buf, len, "%s%c%02ld:%02ld", date, off < 0 ? '-' : '+',
		    labs(off) / 60, labs(off) % 60);
}

void
relay_time_local(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M %Z", &tm);
}
