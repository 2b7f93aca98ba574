/*
 * conf.c - diagnostics, value parsers and lookups of the configuration.
 *
 * The INI reader and key tables live in conf_file.c; this file holds what
 * every part of dengon uses: the list of "FILE:LINE: message" diagnostics,
 * the parsers of durations, sizes and booleans, and lookups into a loaded
 * struct conf.  Nothing here keeps state between calls.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"

void
conf_msgs_add(struct conf_msgs *m, int is_error, const char *file, int line,
    const char *fmt, ...)
{
	char body[1024], *s;
	char **v;
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (line > 0)
		n = asprintf(&s, "%s:%d: %s%s", file ? file : "-", line,
		    is_error ? "" : "warning: ", body);
	else
		n = asprintf(&s, "%s: %s%s", file ? file : "-",
		    is_error ? "" : "warning: ", body);
	if (n < 0)
		abort();	/* out of memory while reporting: nothing sane left */
	v = realloc(m->v, (m->n + 1) * sizeof(*v));
	if (v == NULL)
		abort();
	m->v = v;
	m->v[m->n++] = s;
	if (is_error)
		m->errors++;
	else
		m->warnings++;
}

void
conf_msgs_print(const struct conf_msgs *m, FILE *fp)
{
	for (size_t i = 0; i < m->n; i++)
		fprintf(fp, "%s\n", m->v[i]);
}

void
conf_msgs_free(struct conf_msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i]);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* Parse a non-negative decimal integer with an optional one-letter unit
 * from units/mults. */
static int
parse_scaled(const char *s, const char *units, const int64_t *mults,
    int64_t max, int64_t *out)
{
	const char *p = s;
	int64_t v = 0, mult = 1;

	while (*p == ' ' || *p == '\t')
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (*p != '\0' && *p != ' ' && *p != '\t') {
		const char *u = strchr(units, *p);
		if (u == NULL)
			return -1;
		mult = mults[u - units];
		p++;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0')
		return -1;
	if (v > max / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int
conf_parse_duration(const char *s, int64_t *seconds)
{
	static const int64_t mults[] = { 1, 60, 3600, 86400 };

	return parse_scaled(s, "smhd", mults, 365 * 86400LL, seconds);
}

int
conf_parse_size(const char *s, int64_t *bytes)
{
	static const int64_t mults[] = { 1024, 1024 * 1024 };

	return parse_scaled(s, "kM", mults, 1024LL * 1024 * 1024, bytes);
}

int
conf_parse_bool(const char *s)
{
	static const char *yes[] = { "yes", "true", "on", "1" };
	static const char *no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

const char *
conf_default_path(void)
{
	const char *e = getenv("DENGON_CONF");

	return (e != NULL && *e != '\0') ? e : "/etc/dengon/dengon.conf";
}

const struct conf_channel *
conf_channel_find(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->nchannels; i++)
		if (strcmp(c->channels[i].name, name) == 0)
			return &c->channels[i];
	return NULL;
}

const struct conf_policy *
conf_policy_find(const struct conf *c, const char *name)
{
	for (size_t i = 0; i < c->npolicies; i++)
		if (strcmp(c->policies[i].name, name) == 0)
			return &c->policies[i];
	return NULL;
}

static const char *
kv_get(const struct conf_kv *kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i].key, key) == 0)
			return kv[i].value;
	return NULL;
}

const char *
conf_channel_get(const struct conf_channel *ch, const char *key)
{
	return kv_get(ch->kv, ch->nkv, key);
}

const char *
conf_inbox_get(const struct conf_inbox *ib, const char *key)
{
	return kv_get(ib->kv, ib->nkv, key);
}

const char *
conf_type_column(const char *type)
{
	if (type == NULL)
		return NULL;
	if (strcmp(type, "smtp") == 0)
		return "mail";
	if (strcmp(type, "lgwan") == 0)
		return "lgwan";
	if (strcmp(type, "fax") == 0)
		return "fax";
	if (strcmp(type, "sms") == 0)
		return "sms";
	return NULL;
}

void
conf_steps_free(struct conf_step *steps, size_t nsteps)
{
	for (size_t i = 0; i < nsteps; i++) {
		for (size_t j = 0; j < steps[i].nchannels; j++)
			free(steps[i].channels[j]);
		free(steps[i].channels);
	}
	free(steps);
}

static void
kv_free(struct conf_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

void
conf_free(struct conf *c)
{
	if (c == NULL)
		return;
	free(c->path);
	free(c->name);
	free(c->queue);
	free(c->secret_file);
	free(c->socket);
	free(c->spool);
	free(c->contacts);
	free(c->default_policy);
	free(c->language);
	free(c->timezone);
	free(c->country_code);
	free(c->log);
	free(c->group);
	for (size_t i = 0; i < c->nchannels; i++) {
		free(c->channels[i].name);
		free(c->channels[i].type);
		kv_free(c->channels[i].kv, c->channels[i].nkv);
	}
	free(c->channels);
	for (size_t i = 0; i < c->ninboxes; i++) {
		free(c->inboxes[i].name);
		free(c->inboxes[i].type);
		kv_free(c->inboxes[i].kv, c->inboxes[i].nkv);
	}
	free(c->inboxes);
	for (size_t i = 0; i < c->npolicies; i++) {
		free(c->policies[i].name);
		conf_steps_free(c->policies[i].steps, c->policies[i].nsteps);
	}
	free(c->policies);
	free(c);
}
