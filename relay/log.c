/*
 * log.c - the relay's log: syslog, stderr, or a file.
 *
 * One destination per process, chosen by log_open() from [relay] log (or
 * -d).  Lines are "TIME PROGRAM[PID]: LEVEL: message" outside syslog.
 * Callers never pass secrets here: channels log ids and outcomes, never
 * passwords or key material.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
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

/*
 * The daemon logs a line per outcome: what does not change from one line
 * to the next is kept.  The process id (reset in a child after fork()),
 * and the local time to the second, keyed by the second and the TZ in
 * force (relay_set_timezone()).
 */
static pid_t	log_pid;
static time_t	log_sec = -1;
static char	log_tz[64], log_when[32];

/* Deferred lines (log_defer()): informational lines waiting for
 * log_flush(); a warning or an error writes them first, then itself. */
static int	log_deferred;
static char	log_pend[32768];
static size_t	log_npend;

/* In a child after fork(): its own pid; the parent's pending lines are
 * the parent's to write. */
static void
log_forked(void)
{
	log_pid = 0;
	log_npend = 0;
}

static void
log_atfork(void)
{
	static int done;

	if (!done) {
		done = 1;
		pthread_atfork(NULL, NULL, log_forked);
	}
}

void
log_flush(void)
{
	if (log_fp == NULL)
		return;
	if (log_npend > 0) {
		fwrite(log_pend, 1, log_npend, log_fp);
		log_npend = 0;
	}
	fflush(log_fp);
}

void
log_defer(int on)
{
	static int atexit_set;

	log_flush();
	log_atfork();
	log_deferred = on;
	if (on && !atexit_set) {
		atexit_set = 1;
		atexit(log_flush);
	}
}

static const char *
log_time(time_t sec)
{
	const char *tz = getenv("TZ");
	struct tm tm;

	if (tz == NULL)
		tz = "";
	if (sec == log_sec && strcmp(tz, log_tz) == 0)
		return log_when;
	localtime_r(&sec, &tm);
	strftime(log_when, sizeof(log_when), "%Y-%m-%d %H:%M:%S", &tm);
	if (strlen(tz) < sizeof(log_tz)) {
		memcpy(log_tz, tz, strlen(tz) + 1);
		log_sec = sec;
	} else
		log_sec = -1;
	return log_when;
}

static void __attribute__((format(printf, 3, 0)))
log_emit(int prio, const char *level, const char *fmt, va_list ap)
{
	char msg[2048];
	struct timespec ts;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_fp == NULL) {
		syslog(prio, "%s", msg);
		return;
	}
	log_atfork();
	if (log_pid == 0)
		log_pid = getpid();
	clock_gettime(CLOCK_REALTIME, &ts);
	if (log_deferred && prio > LOG_WARNING) {
		char line[sizeof(msg) + 128];
		int n = snprintf(line, sizeof(line), "%s.%03ld %s[%ld]: %s%s\n",
		    log_time(ts.tv_sec), ts.tv_nsec / 1000000, log_ident,
		    (long)log_pid, level, msg);

		if (n > 0 && (size_t)n < sizeof(line)) {
			if (log_npend + (size_t)n > sizeof(log_pend))
				log_flush();
			memcpy(log_pend + log_npend, line, (size_t)n);
			log_npend += (size_t)n;
			return;
		}
	}
	if (log_npend > 0)
		fwrite(log_pend, 1, log_npend, log_fp);
	log_npend = 0;
	fprintf(log_fp, "%s.%03ld %s[%ld]: %s%s\n", log_time(ts.tv_sec),
	    ts.tv_nsec / 1000000, log_ident, (long)log_pid, level, msg);
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
