/*
 * fuzz_conf.c - libFuzzer target: the configuration file (conf_load).
 *
 * The input is written to a memfd and read through /proc/self/fd/N, so
 * conf_load() sees an ordinary path and nothing is added to conf/ for
 * fuzzing.  Besides "no crash, no leak, no undefined behaviour", it checks
 * what conf.h promises: a load succeeds exactly when no error was
 * reported, and every message is one line (a hostile file cannot forge a
 * second "FILE:LINE:" diagnostic); and of a configuration it accepts, that
 * every value but a path is free of control characters, and every policy
 * step names channels that exist.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char path[64];

/* Every message is exactly one line without control characters but TAB. */
static void
check_msgs(const struct conf_msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		for (const unsigned char *p = (const unsigned char *)m->v[i];
		    *p != '\0'; p++)
			if (*p == '\n' || *p == '\r')
				abort();
}

/* Abort if s holds a control character but TAB. */
static void
check_text(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s;
	    p != NULL && *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			abort();
}

/* 1 for keys whose value is a path (any byte but NUL is a valid path). */
static int
is_path_key(const char *key)
{
	size_t n = strlen(key);

	return (n > 5 && strcmp(key + n - 5, "_file") == 0) ||
	    (n > 6 && strcmp(key + n - 6, "_files") == 0) ||
	    strcmp(key, "font") == 0 || strcmp(key, "devices") == 0;
}

/* What reaches mail headers, Message-IDs and modems is one clean line. */
static void
check_conf(const struct conf *c)
{
	check_text(c->name);
	check_text(c->default_policy);
	check_text(c->language);
	check_text(c->timezone);
	check_text(c->country_code);
	check_text(c->group);
	for (size_t i = 0; i < c->nchannels; i++) {
		const struct conf_channel *ch = &c->channels[i];

		check_text(ch->name);
		check_text(ch->type);
		for (size_t j = 0; j < ch->nkv; j++)
			if (!is_path_key(ch->kv[j].key))
				check_text(ch->kv[j].value);
		if (conf_channel_find(c, ch->name) == NULL)
			abort();
	}
	for (size_t i = 0; i < c->ninboxes; i++) {
		const struct conf_inbox *ib = &c->inboxes[i];

		for (size_t j = 0; j < ib->nkv; j++)
			if (!is_path_key(ib->kv[j].key))
				check_text(ib->kv[j].value);
	}
	for (size_t i = 0; i < c->npolicies; i++) {
		const struct conf_policy *po = &c->policies[i];

		if (conf_policy_find(c, po->name) == NULL || po->nsteps == 0)
			abort();
		for (size_t j = 0; j < po->nsteps; j++) {
			if (po->steps[j].nchannels == 0 ||
			    po->steps[j].delay < 0)
				abort();
			for (size_t k = 0; k < po->steps[j].nchannels; k++)
				if (conf_channel_find(c,
				    po->steps[j].channels[k]) == NULL)
					abort();
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_msgs msgs;
	struct conf *c = NULL;
	int rc;

	if (memfd == -1) {
		if ((memfd = memfd_create("fuzz-conf", MFD_CLOEXEC)) == -1)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) == -1 ||
	    (size > 0 && pwrite(memfd, data, size, 0) != (ssize_t)size))
		abort();

	memset(&msgs, 0, sizeof(msgs));
	rc = conf_load(path, &c, &msgs);
	if ((rc == 0) != (msgs.errors == 0) || (rc == 0) != (c != NULL))
		abort();
	check_msgs(&msgs);
	if (c != NULL)
		check_conf(c);
	conf_free(c);
	conf_msgs_free(&msgs);
	return 0;
}
