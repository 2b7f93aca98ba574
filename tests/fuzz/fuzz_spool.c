/*
 * fuzz_spool.c - libFuzzer target: a spool .alert file, checked the way
 * spool_take() checks it before anything reaches the queue, and the
 * subject and body checks every submission goes through (ingest.c).
 *
 * spool_parse() is static in relay/spool.c; rather than widen relay/'s
 * interface for a test, this file includes spool.c itself (its exported
 * spool_init/spool_scan then come from here, so the library's copy is
 * never linked).  The checks after a successful parse repeat spool_take()'s
 * order: body, default subject, subject, TLP, Expires, Drill.
 *
 * Properties checked besides "no crash, no leak, no undefined behaviour":
 * a parsed file has a non-empty To: and a body inside the buffer; a body
 * that passes ingest_check_body() is UTF-8 without CR or control
 * characters but TAB and LF; a non-empty default subject taken from such a
 * body passes ingest_check_subject().
 */
#include "relay/spool.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless a checked body is what ingest.c promises. */
static void
check_body(const char *body)
{
	size_t len = strlen(body);

	if (len > INGEST_MAX_BODY || !ingest_utf8_valid(body, len))
		abort();
	for (const unsigned char *p = (const unsigned char *)body; *p; p++)
		if (*p == '\r' || *p == 0x7f ||
		    (*p < 0x20 && *p != '\t' && *p != '\n'))
			abort();
}

/* Check a body and the subject spool_take() would take from it. */
static void
check_submission(char *body, const char *subject)
{
	char err[512], *def = NULL;

	if (ingest_check_body(body, err, sizeof(err)) == -1)
		return;
	check_body(body);
	if (subject == NULL || *subject == '\0') {
		if ((def = ingest_default_subject(body)) == NULL)
			abort();
		if (*def != '\0' && ingest_check_subject(def, err,
		    sizeof(err)) == -1)
			abort();
		subject = def;
	}
	if (ingest_check_subject(subject, err, sizeof(err)) == 0 &&
	    (strpbrk(subject, "\r\n") != NULL ||
	    strlen(subject) > INGEST_MAX_SUBJECT))
		abort();
	free(def);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool_alert sa;
	char *buf, *raw, err[512];
	int64_t secs;
	int line;

	if (size > SPOOL_MAX_FILE || memchr(data, '\0', size) != NULL)
		return 0;	/* spool_take() rejects these before parsing */
	if ((buf = malloc(size + 1)) == NULL || (raw = malloc(size + 1)) == NULL)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	memcpy(raw, buf, size + 1);

	if (spool_parse(buf, size, &sa, &line, err, sizeof(err)) == 0) {
		if (sa.to == NULL || *sa.to == '\0' || sa.body < buf ||
		    sa.body > buf + size)
			abort();
		check_submission(sa.body, sa.subject);
		if (sa.tlp != NULL) {
			enum queue_tlp tlp;

			if (queue_tlp_parse(sa.tlp, &tlp) == 0 &&
			    strcasecmp(queue_tlp_name(tlp), sa.tlp) != 0)
				abort();
		}
		if (sa.expires != NULL &&
		    conf_parse_duration(sa.expires, &secs) == 0 &&
		    (secs < 0 || secs > 365 * 86400LL))
			abort();
		if (sa.drill != NULL)
			(void)conf_parse_bool(sa.drill);
	} else if (line < 0 || err[0] == '\0')
		abort();

	/* The whole file as `dengon send --body-file` would take it. */
	check_submission(raw, NULL);
	free(raw);
	free(buf);
	return 0;
}
