/*
 * fuzz_contacts.c - libFuzzer target: the CSV contact directory
 * (contacts_parse, then contacts_check against a small configuration).
 *
 * The first byte of the input picks the encoding (auto, UTF-8, CP932) and
 * whether a country code is configured; the rest is the file.  Besides
 * "no crash, no leak, no undefined behaviour", it checks the promises of
 * conf/contacts.c on every directory it accepts:
 *   1. all or nothing: success exactly when no error was reported;
 *   2. every message is one line;
 *   3. no returned string carries a control character, every string is
 *      UTF-8, ids are valid and unique, numbers are E.164, addresses pass
 *      contacts_valid_address().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "relay/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort unless s is NULL or clean UTF-8 text of one line. */
static void
check_text(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len;

	if (s == NULL)
		return;
	len = strlen(s);
	if (!ingest_utf8_valid(s, len))
		abort();
	for (size_t i = 0; i < len; i++)
		if (u[i] < 0x20 || u[i] == 0x7f || (u[i] == 0xc2 &&
		    i + 1 < len && u[i + 1] >= 0x80 && u[i + 1] < 0xa0))
			abort();
}

/* Abort unless s is NULL or "+" and 8 to 15 digits. */
static void
check_e164(const char *s)
{
	size_t n;

	if (s == NULL)
		return;
	if (s[0] != '+')
		abort();
	n = strspn(s + 1, "0123456789");
	if (s[1 + n] != '\0' || n < 8 || n > 15)
		abort();
}

static void
check_addr(const char *s)
{
	const char *why;

	if (s != NULL && !contacts_valid_address(s, &why))
		abort();
}

static int
id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
check_list(const struct contact_list *l)
{
	const char **ids;

	if ((ids = calloc(l->n + 1, sizeof(*ids))) == NULL)
		abort();
	for (size_t i = 0; i < l->n; i++) {
		const struct contact *c = &l->v[i];

		if (c->id == NULL || !contacts_valid_id(c->id) ||
		    c->name == NULL || *c->name == '\0')
			abort();
		check_text(c->name);
		check_text(c->org);
		check_text(c->groups);
		check_text(c->policy);
		check_text(c->mail);
		check_text(c->lgwan);
		check_addr(c->mail);
		check_addr(c->lgwan);
		check_e164(c->fax);
		check_e164(c->sms);
		ids[i] = c->id;
	}
	qsort(ids, l->n, sizeof(*ids), id_cmp);
	for (size_t i = 1; i < l->n; i++)
		if (strcmp(ids[i - 1], ids[i]) == 0)
			abort();
	free(ids);
}

static void
check_msgs(const struct conf_msgs *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (strpbrk(m->v[i], "\r\n") != NULL)
			abort();
}

/* A configuration with every channel type and one lgwan domain list. */
static struct conf *
fixed_conf(void)
{
	static struct conf_kv lgwan_kv[] = {
		{ .key = "domains", .value = "lg.jp, .example.lg.jp" },
	};
	static struct conf_channel channels[] = {
		{ .name = "mail", .type = "smtp" },
		{ .name = "lgwan", .type = "lgwan", .kv = lgwan_kv, .nkv = 1 },
		{ .name = "fax", .type = "fax" },
		{ .name = "sms", .type = "sms" },
	};
	static struct conf_policy policies[] = {
		{ .name = "standard", .expire = 86400 },
		{ .name = "urgent", .expire = 3600 },
	};
	static struct conf c = {
		.path = "fuzz.conf",
		.default_policy = "standard",
		.country_code = "81",
		.channels = channels,
		.nchannels = 4,
		.policies = policies,
		.npolicies = 2,
	};

	return &c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum contacts_encoding encs[] = { CONTACTS_ENC_AUTO,
	    CONTACTS_ENC_UTF8, CONTACTS_ENC_CP932, CONTACTS_ENC_AUTO };
	struct contact_list l;
	struct conf_msgs msgs;
	const char *cc;
	int rc;

	if (size < 1)
		return 0;
	cc = (data[0] & 4) ? NULL : "81";
	memset(&msgs, 0, sizeof(msgs));
	rc = contacts_parse("fuzz.csv", (const char *)data + 1, size - 1,
	    encs[data[0] & 3], cc, &l, &msgs);
	if ((rc == 0) != (msgs.errors == 0))
		abort();
	if (rc == 0) {
		check_list(&l);
		contacts_check("fuzz.csv", &l, fixed_conf(), &msgs);
	} else if (l.n != 0 || l.v != NULL)
		abort();
	check_msgs(&msgs);
	contacts_free(&l);
	conf_msgs_free(&msgs);
	return 0;
}
