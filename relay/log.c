/*
 * log.c - the relay's log: syslog, stderr, or a file.
 *
 * One destination per process, chosen by log_open() from [relay] log (or
 * -d).  Lines are "TIME PROGRAM[PID]: LEVEL: message" outside syslog.
 * Callers never pass secrets here: channels log ids and outcomes, never
 * passwords or key material.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "relay/relay.h"

static const char	*log_ident = "dengon";
static FILE		*log_fp;	/* NULL: syslog */
static int		 log_debug_on;

int
log_open(const char *ident, const char *target)
{
	log_ident = ident;
	if (log_fp != NULL && log_fp != stderr)
		fclose(log_fp);
	log_fp = NULL;
	if (target == NULL || strcmp(target, "stderr") == 0) {
		log_fp = stderr;
		return 0;
	}
	if (strcmp(target, "syslog") == 0) {
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		return 0;
	}
	if ((log_fp = fopen(target, "a")) == NULL) {
		int e = errno;
		log_fp = stderr;
		log_errx("cannot open log file %s: %s", target, strerror(e));
		return -1;
	}
	setvbuf(log_fp, NULL, _IOLBF, 0);
	return 0;
}

void
log_set_debug(int on)
{
	log_debug_on = on;
}

static void __attribute__((format(printf, 3, 0)))
log_emit(int prio, const char *level, const char *fmt, va_list ap)
{
	char msg[2048], when[32];
	struct timespec ts;
	struct tm tm;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_fp == NULL) {
		syslog(prio, "%s", msg);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(log_fp, "%s.%03ld %s[%ld]: %s%s\n", when, ts.tv_nsec / 1000000,
	    log_ident, (long)getpid(), level, msg);
	fflush(log_fp);
}

#define LOG_FN(fn, prio, level, cond)				\
void								\
fn(const char *fmt, ...)					\
{								\
	va_list ap;						\
								\
	if (!(cond))						\
		return;						\
	va_start(ap, fmt);					\
	log_emit(prio, level, fmt, ap);				\
	va_end(ap);						\
}

LOG_FN(log_info, LOG_INFO, "", 1)
LOG_FN(log_warnx, LOG_WARNING, "warning: ", 1)
LOG_FN(log_errx, LOG_ERR, "error: ", 1)
LOG_FN(log_debug, LOG_DEBUG, "debug: ", log_debug_on)
