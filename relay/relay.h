/*
 * relay.h - what the relay's programs share: logging, the JSON writer,
 * time rendering, and the spool drop folder.
 *
 * dengon (the CLI) and dengond (the daemon) are built from relay/ on top of
 * conf/ and queue/.  Nothing here owns the database: callers pass the open
 * struct queue they own.
 */
#ifndef DENGON_RELAY_H
#define DENGON_RELAY_H

#include <stdint.h>
#include <stdio.h>

#include "conf/conf.h"
#include "queue/queue.h"

/* ---- logging (log.c) --------------------------------------------------- */

/* Where log lines go: "syslog", "stderr", or a file path (appended).
 * ident is the program name.  Returns -1 if the file cannot be opened (and
 * falls back to stderr). */
int log_open(const char *ident, const char *target);
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_set_debug(int on);
/* With on, informational lines to a file or stderr are kept until
 * log_flush() (or a warning, an error, exit()): one write per turn of the
 * daemon's loop rather than one per line. */
void log_defer(int on);
void log_flush(void);

/* ---- JSON writer (json.c) ---------------------------------------------- */

/*
 * A streaming writer of one JSON document: commas and nesting are tracked
 * here, strings are escaped (control characters, quotes, backslashes; valid
 * UTF-8 passes through, invalid bytes become U+FFFD).  Nesting is limited to
 * JSON_MAX_DEPTH.
 */
#define JSON_MAX_DEPTH 16

struct json {
	FILE	*fp;
	int	 depth;
	int	 count[JSON_MAX_DEPTH];	/* values written at each level */
	int	 after_key;
};

void json_init(struct json *j, FILE *fp);
void json_object_begin(struct json *j);
void json_object_end(struct json *j);
void json_array_begin(struct json *j);
void json_array_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_string(struct json *j, const char *s);	/* NULL -> null */
void json_int(struct json *j, int64_t v);
void json_bool(struct json *j, int v);
void json_null(struct json *j);
/* An RFC 3339 time, or null for 0. */
void json_time(struct json *j, int64_t ms);
/* Finish the document with a newline. */
void json_end(struct json *j);

/* ---- time (time.c) ----------------------------------------------------- */

/* Apply the configured time zone (NULL: the system's) to this process. */
void relay_set_timezone(const char *tz);
/* "2026-11-21T20:10:00+09:00" */
void relay_time_rfc3339(int64_t ms, char *buf, size_t len);
/* "2026-11-21 20:10 JST" - what recipients and operators read. */
void relay_time_local(int64_t ms, char *buf, size_t len);

/* ---- checking what is submitted (ingest.c) ----------------------------- */

#define INGEST_MAX_SUBJECT	256		/* bytes */
#define INGEST_MAX_BODY		(256 * 1024)	/* bytes */

/* A subject: one line of valid UTF-8, no control characters, at most
 * INGEST_MAX_SUBJECT bytes.  0, or -1 with the reason in err. */
int ingest_check_subject(const char *s, char *err, size_t errlen);
/* A body: valid UTF-8, no NUL or control characters but TAB and line
 * breaks, at most INGEST_MAX_BODY bytes.  CRLF and CR are normalised to LF
 * in place.  0, or -1 with the reason (and line) in err. */
int ingest_check_body(char *body, char *err, size_t errlen);
/* The subject to use when none is given: the first non-blank line of body,
 * cut to a whole character within INGEST_MAX_SUBJECT/2 bytes.  Returns an
 * allocated string (caller frees), or NULL on allocation failure. */
char *ingest_default_subject(const char *body);
/* Length of the valid UTF-8 sequence at s (at most n bytes, n > 0): 1-4,
 * or 0 if it is not valid UTF-8 (overlong, surrogate, beyond U+10FFFF,
 * truncated).  The one UTF-8 decoder of the relay. */
size_t ingest_utf8_seq(const unsigned char *s, size_t n);
/* 1 if s[0..len) is valid UTF-8. */
int ingest_utf8_valid(const char *s, size_t len);

/* ---- the spool drop folder (spool.c) ----------------------------------- */

struct spool_result {
	int	accepted;
	int	rejected;
};

/* Create SPOOL/{tmp,incoming,done,rejected} (mode 0770, the conf group). */
int spool_init(const struct conf *c, char *err, size_t errlen);
/*
 * Accept every complete file in SPOOL/incoming: a valid .alert becomes an
 * alert (moved to done/ once committed); an invalid one is moved to
 * rejected/ beside NAME.error saying why.  A runtime failure of the queue
 * (disk full) leaves the file in incoming/ to be tried again.  Returns 0,
 * or -1 if the spool itself cannot be read.
 */
int spool_scan(struct queue *q, const struct conf *c,
    const struct code_keyring *kr, struct spool_result *res);

#endif /* DENGON_RELAY_H */
