/*
 * json.c - a small streaming writer for the CLI's --json documents.
 *
 * It owns no memory: it writes to the FILE it was given.  It promises
 * syntactically valid JSON for any sequence of calls that nests correctly:
 * commas are placed here, strings are escaped, and invalid UTF-8 is
 * replaced, so nothing from data can break the document.
 */
#include <inttypes.h>
#include <string.h>

#include "relay/relay.h"

void
json_init(struct json *j, FILE *fp)
{
	memset(j, 0, sizeof(*j));
	j->fp = fp;
}

/* Write the separator a new value needs at the current level. */
static void
json_sep(struct json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (j->count[j->depth]++ > 0)
		fputs(", ", j->fp);
}

static void
json_open(struct json *j, char c)
{
	json_sep(j);
	fputc(c, j->fp);
	if (j->depth < JSON_MAX_DEPTH - 1)
		j->depth++;
	j->count[j->depth] = 0;
}

static void
json_close(struct json *j, char c)
{
	fputc(c, j->fp);
	if (j->depth > 0)
		j->depth--;
}

void json_object_begin(struct json *j) { json_open(j, '{'); }
void json_object_end(struct json *j) { json_close(j, '}'); }
void json_array_begin(struct json *j) { json_open(j, '['); }
void json_array_end(struct json *j) { json_close(j, ']'); }

static void
json_quote(struct json *j, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	const unsigned char *end = s + strlen(str);
	size_t n;

	fputc('"', j->fp);
	while (*s) {
		switch (*s) {
		case '"':  fputs("\\\"", j->fp); s++; continue;
		case '\\': fputs("\\\\", j->fp); s++; continue;
		case '\n': fputs("\\n", j->fp); s++; continue;
		case '\r': fputs("\\r", j->fp); s++; continue;
		case '\t': fputs("\\t", j->fp); s++; continue;
		default: break;
		}
		if (*s < 0x20 || *s == 0x7f) {
			fprintf(j->fp, "\\u%04x", *s);
			s++;
			continue;
		}
		if ((n = ingest_utf8_seq(s, (size_t)(end - s))) == 0) {
			fputs("\\ufffd", j->fp);
			s++;
			continue;
		}
		fwrite(s, 1, n, j->fp);
		s += n;
	}
	fputc('"', j->fp);
}

void
json_key(struct json *j, const char *key)
{
	json_sep(j);
	json_quote(j, key);
	fputs(": ", j->fp);
	j->after_key = 1;
}

void
json_string(struct json *j, const char *s)
{
	if (s == NULL) {
		json_null(j);
		return;
	}
	json_sep(j);
	json_quote(j, s);
}

void
json_int(struct json *j, int64_t v)
{
	json_sep(j);
	fprintf(j->fp, "%" PRId64, v);
}

void
json_bool(struct json *j, int v)
{
	json_sep(j);
	fputs(v ? "true" : "false", j->fp);
}

void
json_null(struct json *j)
{
	json_sep(j);
	fputs("null", j->fp);
}

void
json_time(struct json *j, int64_t ms)
{
	char buf[64];

	if (ms == 0) {
		json_null(j);
		return;
	}
	relay_time_rfc3339(ms, buf, sizeof(buf));
	json_string(j, buf);
}

void
json_end(struct json *j)
{
	fputc('\n', j->fp);
	fflush(j->fp);
}
