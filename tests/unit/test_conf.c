/*
 * test_conf.c - unit tests of the configuration file (conf/conf_file.c)
 * and the value parsers (conf/conf.c).
 *
 * Each test writes a configuration into its own temporary folder and
 * checks the exact messages, line numbers included.  In expected
 * messages "$T" stands for that folder.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

static char tdir[64];		/* the running test's folder */

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tdir, sizeof(tdir), "/tmp/dengon-test-conf-XXXXXX");
	return mkdtemp(tdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	return nftw(tdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* text with every "@T" replaced by the test folder; caller frees. */
static char *
subst(const char *text)
{
	size_t n = 0, tl = strlen(tdir);
	const char *p;
	char *out, *o;

	for (p = text; *p != '\0'; p++)
		n += (p[0] == '@' && p[1] == 'T') ? tl : 1;
	o = out = malloc(n + 1);
	assert_non_null(out);
	for (p = text; *p != '\0'; p++) {
		if (p[0] == '@' && p[1] == 'T') {
			memcpy(o, tdir, tl);
			o += tl;
			p++;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* Write text (with @T substituted) to the test folder's name. */
static void
put(const char *name, const char *text)
{
	char path[PATH_MAX], *t = subst(text);
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", tdir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(t, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	free(t);
}

/* Write text as dengon.conf and load it. */
static int
load(const char *text, struct conf **c, struct conf_msgs *m)
{
	char path[PATH_MAX];

	put("dengon.conf", text);
	snprintf(path, sizeof(path), "%s/dengon.conf", tdir);
	memset(m, 0, sizeof(*m));
	return conf_load(path, c, m);
}

/* s with the test folder written as "$T"; caller frees. */
static char *
norm(const char *s)
{
	size_t tl = strlen(tdir);
	char *out = malloc(strlen(s) + 1), *o = out;

	assert_non_null(out);
	while (*s != '\0') {
		if (strncmp(s, tdir, tl) == 0) {
			memcpy(o, "$T", 2);
			o += 2;
			s += tl;
		} else
			*o++ = *s++;
	}
	*o = '\0';
	return out;
}

/* The messages must be exactly want (NULL-terminated), in order. */
static void
expect_msgs(const struct conf_msgs *m, const char *const *want)
{
	size_t n = 0;
	int ok;

	while (want[n] != NULL)
		n++;
	ok = n == m->n;
	for (size_t i = 0; ok && i < n; i++) {
		char *g = norm(m->v[i]);

		ok = strcmp(g, want[i]) == 0;
		free(g);
	}
	if (ok)
		return;
	print_error("got %zu messages:\n", m->n);
	for (size_t i = 0; i < m->n; i++) {
		char *g = norm(m->v[i]);

		print_error("  %s\n", g);
		free(g);
	}
	print_error("want %zu:\n", n);
	for (size_t i = 0; i < n; i++)
		print_error("  %s\n", want[i]);
	fail();
}

#define EXPECT(m, ...)	expect_msgs((m), (const char *const[]){ __VA_ARGS__, NULL })
#define NONE(m)		expect_msgs((m), (const char *const[]){ NULL })
#define AT(n)		"$T/dengon.conf:" #n ": "

static void
assert_path(const char *got, const char *want_with_T)
{
	char *w = subst(want_with_T);

	assert_non_null(got);
	assert_string_equal(got, w);
	free(w);
}

/* ---- the CONTRACT.md example ------------------------------------------ */

static const char contract_example[] =
"[relay]\n"
"name           = kanto-bureau          # Message-IDs, CAP sender, reports\n"
"queue          = /var/lib/dengon/queue.db\n"
"secret_file    = /etc/dengon/secret.key\n"
"socket         = /run/dengon/dengon.sock\n"
"spool          = /var/spool/dengon\n"
"contacts       = /etc/dengon/contacts.csv\n"
"default_policy = standard\n"
"language       = ja                    # ja | en: the wording recipients read\n"
"timezone       = Asia/Tokyo            # for renderings; default: the system's\n"
"country_code   = 81                    # national numbers are stored as +81...\n"
"log            = syslog                # syslog | stderr | a file path\n"
"group          = root                  # the group that may use the CLI (database, socket 0660)\n"
"\n"
"[channel mail]                         # \"channel NAME\": NAME is what policies use\n"
"type           = smtp                  # the type picks the CSV column: smtp→mail, lgwan→lgwan, fax→fax, sms→sms\n"
"host           = smtp.example.jp\n"
"port           = 587\n"
"tls            = starttls              # starttls (required, the default) | none\n"
"tls_verify     = yes\n"
"ca_file        = @T/ca-certificates.crt\n"
"user           = relay                 # optional: AUTH\n"
"password_file  = @T/smtp.pass\n"
"from           = Bureau Alerts <alerts@bureau.example.jp>\n"
"reply_to       = replies@bureau.example.jp\n"
"timeout        = 60s\n"
"concurrency    = 4\n"
"\n"
"[channel lgwan]\n"
"type           = lgwan                 # closed-network mail: never falls back to internet SMTP\n"
"host           = 10.20.30.40\n"
"port           = 25\n"
"tls            = none\n"
"from           = alerts@bureau.example.lg.jp\n"
"domains        = lg.jp                 # only these domains and their subdomains\n"
"charset        = iso-2022-jp           # or utf-8\n"
"max_size       = 64k\n"
"\n"
"[channel fax]\n"
"type           = fax\n"
"transport      = hylafax               # hylafax (a direct modem: later)\n"
"host           = 127.0.0.1\n"
"port           = 4559\n"
"user           = dengon\n"
"resolution     = fine                  # normal (204x98) | fine (204x196)\n"
"font           = @T/ipag.ttf\n"
"\n"
"[channel sms]\n"
"type           = sms\n"
"devices        = /dev/ttyUSB0, tcp:192.0.2.10:4001   # one or more modems\n"
"pin_files      = @T/sim0.pin, -             # one per device, - for none\n"
"baud           = 115200\n"
"flow_control   = none                  # none | rtscts | xonxoff\n"
"max_parts      = 3\n"
"\n"
"[inbox replies]\n"
"type           = imap                  # imap | pop3\n"
"host           = mail.example.jp\n"
"port           = 143\n"
"tls            = starttls              # none | starttls | tls\n"
"tls_verify     = yes\n"
"ca_file        = @T/ca-certificates.crt\n"
"user           = replies\n"
"password_file  = @T/imap.pass\n"
"mailbox        = INBOX\n"
"done_mailbox   = dengon-done           # processed messages move here (IMAP); POP3 deletes them\n"
"poll           = 30s                   # IDLE is used where the server offers it\n"
"\n"
"[policy standard]\n"
"steps          = mail+lgwan, fax@15m, sms@30m   # channels joined by +, each step @delay from acceptance\n"
"repeat         = 1h                    # while unconfirmed, start over at 1h, 2h, ... after acceptance\n"
"expire         = 24h\n"
"confirm        = ack                   # ack: a person | read: an MDN is enough | delivered: arrival evidence is enough\n";

static void
put_example_files(void)
{
	put("ca-certificates.crt", "-----BEGIN CERTIFICATE-----\n");
	put("smtp.pass", "s3cret\n");
	put("imap.pass", "s3cret\n");
	put("ipag.ttf", "font\n");
	put("sim0.pin", "1234\n");
}

static void
test_contract_example(void **state)
{
	const struct conf_channel *ch;
	const struct conf_policy *pol;
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	put_example_files();
	assert_int_equal(load(contract_example, &c, &m), 0);
	NONE(&m);
	assert_non_null(c);

	assert_string_equal(c->name, "kanto-bureau");
	assert_string_equal(c->queue, "/var/lib/dengon/queue.db");
	assert_string_equal(c->secret_file, "/etc/dengon/secret.key");
	assert_string_equal(c->socket, "/run/dengon/dengon.sock");
	assert_string_equal(c->spool, "/var/spool/dengon");
	assert_string_equal(c->contacts, "/etc/dengon/contacts.csv");
	assert_string_equal(c->default_policy, "standard");
	assert_string_equal(c->language, "ja");
	assert_string_equal(c->timezone, "Asia/Tokyo");
	assert_string_equal(c->country_code, "81");
	assert_string_equal(c->log, "syslog");
	assert_string_equal(c->group, "root");

	assert_int_equal(c->nchannels, 4);
	assert_string_equal(c->channels[0].name, "mail");
	assert_string_equal(c->channels[0].type, "smtp");
	assert_int_equal(c->channels[0].line, 15);
	assert_string_equal(c->channels[1].type, "lgwan");
	assert_string_equal(c->channels[2].type, "fax");
	assert_string_equal(c->channels[3].type, "sms");
	ch = conf_channel_find(c, "mail");
	assert_non_null(ch);
	assert_string_equal(conf_channel_get(ch, "host"), "smtp.example.jp");
	assert_string_equal(conf_channel_get(ch, "port"), "587");
	assert_string_equal(conf_channel_get(ch, "from"),
	    "Bureau Alerts <alerts@bureau.example.jp>");
	assert_path(conf_channel_get(ch, "password_file"), "@T/smtp.pass");
	ch = conf_channel_find(c, "lgwan");
	assert_string_equal(conf_channel_get(ch, "domains"), "lg.jp");
	assert_string_equal(conf_channel_get(ch, "max_size"), "64k");
	ch = conf_channel_find(c, "fax");
	assert_string_equal(conf_channel_get(ch, "resolution"), "fine");
	assert_path(conf_channel_get(ch, "font"), "@T/ipag.ttf");
	ch = conf_channel_find(c, "sms");
	assert_string_equal(conf_channel_get(ch, "devices"),
	    "/dev/ttyUSB0, tcp:192.0.2.10:4001");
	assert_path(conf_channel_get(ch, "pin_files"), "@T/sim0.pin, -");

	assert_int_equal(c->ninboxes, 1);
	assert_string_equal(c->inboxes[0].name, "replies");
	assert_string_equal(c->inboxes[0].type, "imap");
	assert_string_equal(conf_inbox_get(&c->inboxes[0], "mailbox"),
	    "INBOX");
	assert_string_equal(conf_inbox_get(&c->inboxes[0], "poll"), "30s");

	assert_int_equal(c->npolicies, 1);
	pol = conf_policy_find(c, "standard");
	assert_non_null(pol);
	assert_int_equal(pol->line, 69);
	assert_int_equal(pol->nsteps, 3);
	assert_int_equal(pol->steps[0].nchannels, 2);
	assert_string_equal(pol->steps[0].channels[0], "mail");
	assert_string_equal(pol->steps[0].channels[1], "lgwan");
	assert_int_equal(pol->steps[0].delay, 0);
	assert_string_equal(pol->steps[1].channels[0], "fax");
	assert_int_equal(pol->steps[1].delay, 15 * 60);
	assert_string_equal(pol->steps[2].channels[0], "sms");
	assert_int_equal(pol->steps[2].delay, 30 * 60);
	assert_int_equal(pol->repeat, 3600);
	assert_int_equal(pol->expire, 86400);
	assert_int_equal(pol->confirm, CONF_CONFIRM_ACK);
	conf_free(c);
	conf_msgs_free(&m);
}

/* Defaults of [relay] and of a channel, and the kv line numbers. */
static void
test_defaults(void **state)
{
	const struct conf_channel *ch;
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"
	    "group = root\n"
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 1h\n", &c, &m), 0);
	NONE(&m);
	assert_string_equal(c->name, "dengon");
	assert_string_equal(c->queue, "/var/lib/dengon/queue.db");
	assert_string_equal(c->secret_file, "/etc/dengon/secret.key");
	assert_string_equal(c->socket, "/run/dengon/dengon.sock");
	assert_string_equal(c->spool, "/var/spool/dengon");
	assert_string_equal(c->contacts, "/etc/dengon/contacts.csv");
	assert_string_equal(c->default_policy, "standard");
	assert_string_equal(c->language, "ja");
	assert_null(c->timezone);
	assert_string_equal(c->country_code, "81");
	assert_string_equal(c->log, "syslog");

	ch = conf_channel_find(c, "mail");
	assert_string_equal(conf_channel_get(ch, "port"), "587");
	assert_string_equal(conf_channel_get(ch, "tls"), "starttls");
	assert_string_equal(conf_channel_get(ch, "tls_verify"), "yes");
	assert_string_equal(conf_channel_get(ch, "timeout"), "60s");
	assert_string_equal(conf_channel_get(ch, "concurrency"), "4");
	assert_null(conf_channel_get(ch, "ca_file"));
	assert_null(conf_channel_get(ch, "user"));
	for (size_t i = 0; i < ch->nkv; i++) {
		if (strcmp(ch->kv[i].key, "host") == 0)
			assert_int_equal(ch->kv[i].line, 5);
		if (strcmp(ch->kv[i].key, "port") == 0)
			assert_int_equal(ch->kv[i].line, 0);
	}
	assert_int_equal(c->policies[0].repeat, 0);
	assert_int_equal(c->policies[0].confirm, CONF_CONFIRM_ACK);
	conf_free(c);
	conf_msgs_free(&m);
}

/* The default group "dengon" must exist like any other group. */
static void
test_default_group(void **state)
{
	struct conf_msgs m;
	struct conf *c;
	int r;

	(void)state;
	r = load(
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 1h\n"
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n", &c, &m);
	if (getgrnam("dengon") != NULL) {
		assert_int_equal(r, 0);
		NONE(&m);
		assert_string_equal(c->group, "dengon");
		conf_free(c);
	} else {
		assert_int_equal(r, -1);
		assert_null(c);
		EXPECT(&m, "$T/dengon.conf: group: \"dengon\" (the default) is "
		    "not a group on this system: create it, or set group = "
		    "(empty) to leave the files' group alone");
	}
	conf_msgs_free(&m);
}

/* ---- error classes -------------------------------------------------- */

static void
test_syntax_errors(void **state)
{
	struct conf_msgs m;
	struct conf *c = (struct conf *)&m;	/* must be reset to NULL */

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "just some words\n"			/* 3 */
	    "key: value\n"			/* 4 */
	    "= value\n"				/* 5 */
	    "[channel mail\n"			/* 6 */
	    "host = ignored\n"			/* 7: in no section */
	    "[policy standard]\n"		/* 8 */
	    "steps = mail\n"
	    "expire = 24h\n"			/* 10 */
	    "   continued text\n"		/* 11: no continuation lines */
	    "[channel mail]\n"			/* 12 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n", &c, &m), -1);
	assert_null(c);
	EXPECT(&m,
	    AT(3) "syntax error: expected \"key = value\", \"[section]\" or a "
	    "comment",
	    AT(4) "syntax error: expected \"key = value\", \"[section]\" or a "
	    "comment",
	    AT(5) "syntax error: expected \"key = value\", \"[section]\" or a "
	    "comment",
	    AT(6) "section header without \"]\"",
	    AT(11) "syntax error: expected \"key = value\", \"[section]\" or a "
	    "comment");
	assert_int_equal(m.errors, 5);
	conf_msgs_free(&m);
}

static void
test_section_headers(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "group = root\n"			/* 1 */
	    "[relay] junk\n"			/* 2 */
	    "group = root\n"
	    "[channel]\n"			/* 4 */
	    "type = smtp\n"
	    "[channel bad.name]\n"		/* 6 */
	    "[policy a b]\n"			/* 7 */
	    "[relay x]\n"			/* 8 */
	    "[policy standard]\n"		/* 9 */
	    "steps = mail\n"
	    "expire = 1h\n"
	    "[channel mail]\n"			/* 12 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n", &c, &m), -1);
	EXPECT(&m,
	    AT(1) "key \"group\" before any [section]",
	    AT(2) "unexpected text after \"]\"",
	    AT(4) "[channel] needs a name: [channel NAME]",
	    AT(4) "[channel]: missing required key \"host\"",
	    AT(4) "[channel]: missing required key \"from\"",
	    AT(6) "invalid channel name \"bad.name\" (1-32 of A-Z a-z 0-9 _ -)",
	    AT(6) "[channel bad.name]: missing required key \"type\"",
	    AT(7) "invalid policy name \"a b\" (1-32 of A-Z a-z 0-9 _ -)",
	    AT(7) "[policy a b]: missing required key \"steps\"",
	    AT(7) "[policy a b]: missing required key \"expire\"",
	    AT(8) "[relay] takes no name",
	    AT(8) "duplicate section [relay] (first at line 2)");
	conf_msgs_free(&m);
}

static void
test_unknown_section_and_keys(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "colour = blue\n"			/* 3 */
	    "[mailer]\n"			/* 4 */
	    "anything = goes\n"			/* 5: not reported */
	    "[channel mail]\n"			/* 6 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "domains = lg.jp\n"			/* 10: an lgwan key */
	    "[policy standard]\n"		/* 11 */
	    "steps = mail\n"
	    "expire = 24h\n"
	    "hosts = x\n"			/* 14 */
	    "[channel odd]\n"			/* 15 */
	    "type = carrier-pigeon\n"		/* 16 */
	    "host = loft.example.jp\n"		/* 17: some type knows it */
	    "wings = 2\n", &c, &m), -1);	/* 18: none does */
	EXPECT(&m,
	    AT(3) "unknown key \"colour\" in [relay]",
	    AT(4) "unknown section [mailer] (expected [relay], [channel NAME], "
	    "[inbox NAME] or [policy NAME])",
	    AT(10) "unknown key \"domains\" in [channel mail] (type smtp)",
	    AT(14) "unknown key \"hosts\" in [policy standard]",
	    AT(15) "warning: channel \"odd\" is not used by any policy",
	    AT(16) "type: \"carrier-pigeon\" is not one of smtp, lgwan, fax, "
	    "sms",
	    AT(18) "unknown key \"wings\" in [channel odd]");
	conf_msgs_free(&m);
}

static void
test_duplicates(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "group = root\n"			/* 3 */
	    "[channel mail]\n"			/* 4 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[channel mail]\n"			/* 8 */
	    "type = smtp\n"
	    "host = smtp2.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"		/* 12 */
	    "steps = mail\n"
	    "expire = 24h\n"
	    "[relay]\n", &c, &m), -1);		/* 15 */
	EXPECT(&m,
	    AT(3) "duplicate key \"group\" (first at line 2)",
	    AT(8) "duplicate section [channel mail] (first at line 4)",
	    AT(15) "duplicate section [relay] (first at line 1)");
	conf_msgs_free(&m);
}

static void
test_bad_values(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "language = fr\n"			/* 3 */
	    "country_code = 0081\n"		/* 4 */
	    "[channel mail]\n"			/* 5 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "port = 70000\n"			/* 9 */
	    "tls_verify = maybe\n"		/* 10 */
	    "timeout = 10x\n"			/* 11 */
	    "concurrency = 0\n"			/* 12 */
	    "tls = ssl\n"			/* 13 */
	    "[channel lgwan]\n"			/* 14 */
	    "type = lgwan\n"
	    "host = 10.20.30.40\n"
	    "from = a@example.lg.jp\n"
	    "domains = lg.jp\n"
	    "max_size = 64G\n"			/* 19 */
	    "[policy standard]\n"		/* 20 */
	    "steps = mail+lgwan\n"
	    "expire = 24h\n"
	    "repeat = 1w\n"			/* 23 */
	    "confirm = maybe\n", &c, &m), -1);	/* 24 */
	assert_null(c);
	EXPECT(&m,
	    AT(3) "language: \"fr\" is not one of ja, en",
	    AT(4) "country_code: \"0081\" is not a country calling code (1-3 "
	    "digits, e.g. 81)",
	    AT(9) "port: \"70000\" is not a port number (1-65535)",
	    AT(10) "tls_verify: \"maybe\" is not yes or no (yes/no, "
	    "true/false, on/off, 1/0)",
	    AT(11) "timeout: \"10x\" is not a duration (a number with s, m, h "
	    "or d; at most 365d)",
	    AT(12) "concurrency: \"0\" is not a number from 1 to 64",
	    AT(13) "tls: \"ssl\" is not one of starttls, none",
	    AT(19) "max_size: \"64G\" is not a size (bytes, or a number with k "
	    "or M; at most 1024M)",
	    AT(23) "repeat: \"1w\" is not a duration (a number with s, m, h or "
	    "d; at most 365d)",
	    AT(24) "confirm: \"maybe\" is not one of ack, read, delivered");
	conf_msgs_free(&m);
}

static void
test_bad_values_more(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = no-such-group-here\n"	/* 2 */
	    "name = kanto_bureau\n"		/* 3 */
	    "timezone = Asia/Nowhere\n"		/* 4 */
	    "log = sylog\n"			/* 5 */
	    "default_policy =\n"		/* 6 */
	    "[channel mail]\n"			/* 7 */
	    "type = smtp\n"
	    "host = smtp..example.jp\n"		/* 9 */
	    "from = Bureau <alerts@>\n"		/* 10 */
	    "reply_to = no at sign\n"		/* 11 */
	    "timeout = 0\n"			/* 12 */
	    "[channel fax]\n"			/* 13 */
	    "type = fax\n"
	    "transport = modem\n"		/* 15 */
	    "resolution = superfine\n"		/* 16 */
	    "font = .\n"			/* 17: a folder */
	    "[channel sms]\n"			/* 18 */
	    "type = sms\n"
	    "devices = ttyUSB0, tcp:host, /dev/ttyS0, /dev/ttyS0, ,\n" /* 20 */
	    "baud = 100000\n"			/* 21 */
	    "flow_control = hardware\n"		/* 22 */
	    "max_parts = 11\n"			/* 23 */
	    "[channel lgwan]\n"			/* 24 */
	    "type = lgwan\n"
	    "host = 10.20.30.40\n"
	    "from = a@example.lg.jp\n"
	    "domains = lg.jp, -bad-.jp\n"	/* 28 */
	    "max_size = 512\n"			/* 29 */
	    "[policy standard]\n"		/* 30 */
	    "steps = mail, fax@5m, sms@10m, lgwan@1h\n"
	    "expire = 0\n", &c, &m), -1);	/* 32 */
	EXPECT(&m,
	    AT(2) "group: \"no-such-group-here\" is not a group on this system",
	    AT(3) "name: \"kanto_bureau\" is not a valid relay name (1-64 of "
	    "A-Z a-z 0-9 . -)",
	    AT(4) "timezone: \"Asia/Nowhere\" is not a time zone (no such zone "
	    "under /usr/share/zoneinfo)",
	    AT(5) "log: \"sylog\" is not syslog, stderr or a file path (write "
	    "./sylog for a file beside this one)",
	    AT(6) "default_policy: empty value",
	    AT(9) "host: \"smtp..example.jp\" is not a host name or IP address",
	    AT(10) "from: \"Bureau <alerts@>\" is not a mail address (\"Name "
	    "<user@domain>\" or user@domain)",
	    AT(11) "reply_to: \"no at sign\" is not a mail address (\"Name "
	    "<user@domain>\" or user@domain)",
	    AT(12) "timeout: \"0\" is too short (at least 1s)",
	    AT(15) "transport: \"modem\" is not one of hylafax",
	    AT(16) "resolution: \"superfine\" is not one of normal, fine",
	    AT(17) "font: $T: not a regular file",
	    AT(20) "devices: \"ttyUSB0\" is neither a /dev/ path nor "
	    "tcp:HOST:PORT",
	    AT(20) "devices: \"tcp:host\" is neither a /dev/ path nor "
	    "tcp:HOST:PORT",
	    AT(20) "devices: \"/dev/ttyS0\" is listed twice",
	    AT(20) "devices: empty entry in the list",
	    AT(20) "devices: empty entry in the list",
	    AT(21) "baud: \"100000\" is not a standard rate (1200, 2400, 4800, "
	    "9600, 19200, 38400, 57600, 115200, 230400, 460800 or 921600)",
	    AT(22) "flow_control: \"hardware\" is not one of none, rtscts, "
	    "xonxoff",
	    AT(23) "max_parts: \"11\" is not a number from 1 to 10",
	    AT(28) "domains: \"-bad-.jp\" is not a domain name",
	    AT(29) "max_size: \"512\" is too small (at least 1024 bytes)",
	    AT(32) "expire: \"0\" is too short (at least 1s)");
	conf_msgs_free(&m);
}

static void
test_missing_required(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "[channel mail]\n"			/* 3 */
	    "type = smtp\n"
	    "port = 25\n"
	    "[inbox replies]\n"			/* 6 */
	    "type = imap\n"
	    "host = mail.example.jp\n"
	    "[policy standard]\n"		/* 9 */
	    "expire = 24h\n"
	    "[channel fax]\n"			/* 11 */
	    "host = 127.0.0.1\n"
	    "[channel lgwan]\n"			/* 13 */
	    "type = lgwan\n"
	    "host = 10.0.0.1\n"
	    "from = a@b.lg.jp\n", &c, &m), -1);
	EXPECT(&m,
	    AT(3) "[channel mail]: missing required key \"host\"",
	    AT(3) "[channel mail]: missing required key \"from\"",
	    AT(6) "[inbox replies]: missing required key \"user\"",
	    AT(6) "[inbox replies]: missing required key \"password_file\"",
	    AT(9) "[policy standard]: missing required key \"steps\"",
	    AT(11) "[channel fax]: missing required key \"type\"",
	    AT(13) "[channel lgwan]: missing required key \"domains\"");
	conf_msgs_free(&m);
}

static void
test_missing_files(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "secret_file = not-yet.key\n"	/* 3: init creates it */
	    "[channel mail]\n"			/* 4 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "user = relay\n"
	    "password_file = smtp.pass\n"	/* 9 */
	    "ca_file = /nonexistent/ca.crt\n"	/* 10 */
	    "[channel fax]\n"			/* 11 */
	    "type = fax\n"
	    "font = nofont.ttf\n"		/* 13 */
	    "[channel sms]\n"			/* 14 */
	    "type = sms\n"
	    "devices = /dev/ttyUSB0\n"
	    "pin_files = sim0.pin\n"		/* 17 */
	    "[inbox replies]\n"			/* 18 */
	    "type = pop3\n"
	    "host = mail.example.jp\n"
	    "user = replies\n"
	    "password_file = /nonexistent/imap.pass\n"	/* 22 */
	    "[policy standard]\n"		/* 23 */
	    "steps = mail, fax@15m, sms@30m\n"
	    "expire = 24h\n", &c, &m), -1);
	EXPECT(&m,
	    AT(9) "password_file: $T/smtp.pass: No such file or directory",
	    AT(10) "ca_file: /nonexistent/ca.crt: No such file or directory",
	    AT(13) "font: $T/nofont.ttf: No such file or directory",
	    AT(17) "pin_files: $T/sim0.pin: No such file or directory",
	    AT(22) "password_file: /nonexistent/imap.pass: No such file or "
	    "directory");
	conf_msgs_free(&m);
}

/* A missing default font is reported at the section, saying so. */
static void
test_default_font(void **state)
{
	struct conf_msgs m;
	struct conf *c;
	struct stat st;
	int r;

	(void)state;
	r = load(
	    "[relay]\n"
	    "group = root\n"
	    "[channel fax]\n"			/* 3 */
	    "type = fax\n"
	    "[policy standard]\n"
	    "steps = fax\n"
	    "expire = 24h\n", &c, &m);
	if (stat("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf", &st) ==
	    0) {
		assert_int_equal(r, 0);
		conf_free(c);
	} else {
		assert_int_equal(r, -1);
		EXPECT(&m, AT(3) "font: /usr/share/fonts/opentype/"
		    "ipafont-gothic/ipag.ttf (the default): No such file or "
		    "directory");
	}
	conf_msgs_free(&m);
}

static void
test_tls_checks(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	put("pw", "x\n");
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "[channel mail]\n"			/* 3 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "tls = none\n"
	    "ca_file = missing.crt\n"		/* 8: unused, so not checked */
	    "user = relay\n"			/* 9: without password_file */
	    "[inbox a]\n"			/* 10 */
	    "type = imap\n"
	    "host = mail.example.jp\n"
	    "user = u\n"
	    "password_file = pw\n"
	    "tls = tls\n"
	    "tls_verify = no\n"			/* 16 */
	    "[inbox b]\n"			/* 17 */
	    "type = pop3\n"
	    "host = mail.example.jp\n"
	    "user = u\n"
	    "password_file = pw\n"
	    "ca_file = missing.crt\n"		/* 22: used, must exist */
	    "[channel fax]\n"			/* 23 */
	    "type = fax\n"
	    "font = pw\n"
	    "password_file = pw\n"		/* 26: without user */
	    "[policy standard]\n"
	    "steps = mail, fax\n"
	    "expire = 24h\n", &c, &m), -1);
	EXPECT(&m,
	    AT(8) "warning: ca_file: not used (tls = none)",
	    AT(9) "user: AUTH needs password_file as well",
	    AT(16) "warning: tls_verify = no: the server's certificate is not "
	    "checked",
	    AT(22) "ca_file: $T/missing.crt: No such file or directory",
	    AT(26) "password_file: needs user as well");
	conf_msgs_free(&m);
}

/* Inbox ports follow type and tls; warnings alone do not fail a load. */
static void
test_inbox_ports(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	put("pw", "x\n");
	assert_int_equal(load(
	    "[relay]\n"
	    "group = root\n"
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[channel spare]\n"			/* 7 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[inbox i1]\n"
	    "type = imap\n"
	    "host = h\nuser = u\npassword_file = pw\n"
	    "[inbox i2]\n"
	    "type = imap\n"
	    "tls = tls\n"
	    "host = h\nuser = u\npassword_file = pw\n"
	    "[inbox p1]\n"
	    "type = pop3\n"
	    "tls = none\n"
	    "host = h\nuser = u\npassword_file = pw\n"
	    "[inbox p2]\n"
	    "type = pop3\n"
	    "tls = tls\n"
	    "port = 10995\n"
	    "host = h\nuser = u\npassword_file = pw\n"
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 24h\n", &c, &m), 0);
	EXPECT(&m, AT(7) "warning: channel \"spare\" is not used by any "
	    "policy");
	assert_int_equal(m.errors, 0);
	assert_int_equal(m.warnings, 1);
	assert_int_equal(c->ninboxes, 4);
	assert_string_equal(conf_inbox_get(&c->inboxes[0], "port"), "143");
	assert_string_equal(conf_inbox_get(&c->inboxes[1], "port"), "993");
	assert_string_equal(conf_inbox_get(&c->inboxes[2], "port"), "110");
	assert_string_equal(conf_inbox_get(&c->inboxes[3], "port"), "10995");
	assert_null(conf_inbox_get(&c->inboxes[2], "mailbox"));
	assert_string_equal(conf_inbox_get(&c->inboxes[0], "mailbox"), "INBOX");
	conf_free(c);
	conf_msgs_free(&m);
}

static void
test_steps_channels(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "[channel mail]\n"			/* 3 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[channel spare]\n"			/* 7 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"		/* 11 */
	    "steps = mail, fax@15m, sms@30m\n"	/* 12 */
	    "expire = 24h\n"
	    "[policy broken]\n"			/* 14 */
	    "steps = mail@30m, spare@15m\n"	/* 15 */
	    "expire = 24h\n", &c, &m), -1);
	/* a policy whose steps do not parse hides the "unused" warnings */
	EXPECT(&m,
	    AT(12) "steps: unknown channel \"fax\" (no [channel fax])",
	    AT(12) "steps: unknown channel \"sms\" (no [channel sms])",
	    AT(15) "steps: step 2: delay 15m is earlier than step 1's 30m "
	    "(delays must not decrease)");
	conf_msgs_free(&m);

	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "[channel mail]\n"			/* 3 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[channel spare]\n"			/* 7 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"		/* 11 */
	    "steps = mail, fax@15m\n"		/* 12 */
	    "expire = 24h\n", &c, &m), -1);
	EXPECT(&m,
	    AT(7) "warning: channel \"spare\" is not used by any policy",
	    AT(12) "steps: unknown channel \"fax\" (no [channel fax])");
	conf_msgs_free(&m);
}

static void
test_policy_timing(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "[channel mail]\n"			/* 3 */
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"		/* 7 */
	    "steps = mail, mail@30m\n"
	    "repeat = 30m\n"			/* 9 */
	    "expire = 15m\n"			/* 10 */
	    "[policy slow]\n"			/* 11 */
	    "steps = mail\n"
	    "repeat = 2h\n"			/* 13 */
	    "expire = 1h\n", &c, &m), -1);
	EXPECT(&m,
	    AT(9) "repeat: 30m must be longer than the last step's delay (30m)",
	    AT(10) "expire: 15m is not after the last step's delay (30m): that "
	    "step would never run",
	    AT(13) "warning: repeat: 2h is not before expire (1h): the policy "
	    "never repeats");
	conf_msgs_free(&m);
}

static void
test_default_policy(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	/* named, but there is no such policy */
	assert_int_equal(load(
	    "[relay]\n"
	    "group = root\n"
	    "default_policy = urgent\n"		/* 3 */
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 24h\n", &c, &m), -1);
	EXPECT(&m, AT(3) "default_policy: no [policy urgent]");
	conf_msgs_free(&m);

	/* not set, and no policy at all */
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n", &c, &m), -1);
	EXPECT(&m, AT(1) "no [policy] section: at least one is needed, and "
	    "default_policy (not set) defaults to \"standard\"");
	conf_msgs_free(&m);

	/* not set, and the policies have other names */
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy urgent]\n"
	    "steps = mail\n"
	    "expire = 24h\n", &c, &m), -1);
	EXPECT(&m, AT(1) "default_policy is not set and there is no [policy "
	    "standard] (the default): set default_policy");
	conf_msgs_free(&m);

	/* set, and the policy exists */
	assert_int_equal(load(
	    "[relay]\n"
	    "group = root\n"
	    "default_policy = urgent\n"
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy urgent]\n"
	    "steps = mail\n"
	    "expire = 24h\n", &c, &m), 0);
	NONE(&m);
	assert_string_equal(c->default_policy, "urgent");
	conf_free(c);
	conf_msgs_free(&m);
}

static void
test_pin_files_count(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	put("sim0.pin", "0000\n");
	assert_int_equal(load(
	    "[relay]\n"
	    "group = root\n"
	    "[channel sms]\n"
	    "type = sms\n"
	    "devices = /dev/ttyUSB0, tcp:192.0.2.10:4001, "
	    "tcp:[2001:db8::1]:4001\n"
	    "pin_files = sim0.pin, -\n"		/* 6 */
	    "[policy standard]\n"
	    "steps = sms\n"
	    "expire = 1h\n", &c, &m), -1);
	EXPECT(&m, AT(6) "pin_files: 2 entries for 3 devices (one per device, "
	    "- for none)");
	conf_msgs_free(&m);

	assert_int_equal(load(
	    "[relay]\n"
	    "group = root\n"
	    "[channel sms]\n"
	    "type = sms\n"
	    "devices = /dev/ttyUSB0, /dev/ttyUSB1\n"
	    "pin_files = sim0.pin\n"		/* 6 */
	    "[policy standard]\n"
	    "steps = sms\n"
	    "expire = 1h\n", &c, &m), -1);
	EXPECT(&m, AT(6) "pin_files: 1 entry for 2 devices (one per device, "
	    "- for none)");
	conf_msgs_free(&m);
}

/* A line longer than the limit is an error at its line; nothing of it
 * spills into the next line; a line at the limit works whole. */
static void
test_long_lines(void **state)
{
	struct conf_msgs m;
	struct conf *c;
	char *text, *longval, *limit;
	size_t n;

	(void)state;
	longval = malloc(4002);
	memset(longval, 'a', 4001);
	longval[4001] = '\0';
	memcpy(longval, "name = ", 7);		/* 4001 bytes in all */
	limit = malloc(4001);
	memset(limit, 'b', 4000);
	limit[4000] = '\0';
	memcpy(limit, "contacts = /", 12);	/* exactly 4000 bytes */
	n = strlen(longval) + strlen(limit) + 512;
	text = malloc(n);
	snprintf(text, n,
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "%s\n"				/* 3: too long */
	    "bogus = 1\n"			/* 4: still line 4 */
	    "%s\n"				/* 5: exactly at the limit */
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 24h\n", longval, limit);
	assert_int_equal(load(text, &c, &m), -1);
	EXPECT(&m,
	    AT(3) "line too long (4001 bytes; at most 4000)",
	    AT(4) "unknown key \"bogus\" in [relay]");
	conf_msgs_free(&m);

	/* without the bad lines it loads, the long value intact */
	snprintf(text, n,
	    "[relay]\n"
	    "group = root\n"
	    "%s\n"
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 24h\n", limit);
	assert_int_equal(load(text, &c, &m), 0);
	NONE(&m);
	assert_int_equal(strlen(c->contacts), 4000 - strlen("contacts = "));
	assert_string_equal(c->contacts, limit + strlen("contacts = "));
	conf_free(c);
	conf_msgs_free(&m);

	/* an overlong section header: its keys belong nowhere */
	memcpy(longval, "[channel ", 9);
	longval[4000] = ']';
	snprintf(text, n,
	    "[relay]\n"
	    "group = root\n"
	    "%s\n"				/* 3 */
	    "type = smtp\n"			/* 4: not a [relay] key */
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 24h\n", longval);
	assert_int_equal(load(text, &c, &m), -1);
	EXPECT(&m, AT(3) "line too long (4001 bytes; at most 4000)");
	conf_msgs_free(&m);
	free(text);
	free(longval);
	free(limit);
}

static void
test_several_errors(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "[relay]\n"				/* 1 */
	    "group = root\n"
	    "what is this\n"			/* 3 */
	    "[channel mail]\n"			/* 4 */
	    "type = smtp\n"
	    "from = a@example.jp\n"
	    "port = 0\n"			/* 7 */
	    "colour = red\n"			/* 8 */
	    "[policy standard]\n"		/* 9 */
	    "steps = mail, fax@15q\n"		/* 10 */
	    "expire = 24h\n"
	    "expire = 12h\n", &c, &m), -1);	/* 12 */
	EXPECT(&m,
	    AT(3) "syntax error: expected \"key = value\", \"[section]\" or a "
	    "comment",
	    AT(4) "[channel mail]: missing required key \"host\"",
	    AT(7) "port: \"0\" is not a port number (1-65535)",
	    AT(8) "unknown key \"colour\" in [channel mail] (type smtp)",
	    AT(10) "steps: step 2: \"15q\" is not a duration (a number with s, "
	    "m, h or d)",
	    AT(12) "duplicate key \"expire\" (first at line 11)");
	assert_int_equal(m.errors, 6);
	conf_msgs_free(&m);
}

static void
test_relative_paths(void **state)
{
	const struct conf_channel *ch;
	struct conf_msgs m;
	struct conf *c;
	char cwd[PATH_MAX];

	(void)state;
	put("smtp.pass", "x\n");
	put("sim1.pin", "0000\n");
	assert_int_equal(load(
	    "[relay]\n"
	    "group = root\n"
	    "queue = q.db\n"
	    "secret_file = ./keys/secret.key\n"
	    "socket = run/d.sock\n"
	    "spool = /abs/spool\n"
	    "contacts = ../contacts.csv\n"
	    "log = ./dengon.log\n"
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "user = relay\n"
	    "password_file = smtp.pass\n"
	    "[channel sms]\n"
	    "type = sms\n"
	    "devices = /dev/ttyUSB0, /dev/ttyUSB1\n"
	    "pin_files = -, sim1.pin\n"
	    "[policy standard]\n"
	    "steps = mail, sms@5m\n"
	    "expire = 1h\n", &c, &m), 0);
	NONE(&m);
	assert_path(c->queue, "@T/q.db");
	assert_path(c->secret_file, "@T/keys/secret.key");
	assert_path(c->socket, "@T/run/d.sock");
	assert_string_equal(c->spool, "/abs/spool");
	assert_path(c->contacts, "@T/../contacts.csv");
	assert_path(c->log, "@T/dengon.log");
	ch = conf_channel_find(c, "mail");
	assert_path(conf_channel_get(ch, "password_file"), "@T/smtp.pass");
	ch = conf_channel_find(c, "sms");
	assert_path(conf_channel_get(ch, "pin_files"), "-, @T/sim1.pin");
	conf_free(c);
	conf_msgs_free(&m);

	/* a config named relative to the current folder */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tdir), 0);
	assert_int_equal(conf_load("dengon.conf", &c, &m), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_path(c->queue, "@T/q.db");
	assert_string_equal(c->path, "dengon.conf");
	conf_free(c);
	conf_msgs_free(&m);
}

/* Inline comments need a blank before them; continuation is off. */
static void
test_comments(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	put("smtp.pass", "x\n");
	assert_int_equal(load(
	    "# a comment\n"
	    "; another\n"
	    "   # an indented one\n"
	    "[relay]   # the relay\n"
	    "group =            # empty: leave the group alone\n"
	    "name = kanto-bureau ; trailing\n"
	    "[channel mail]\t# tab before\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = Alerts <a#b@example.jp>\n"
	    "  user = re;lay#1\n"		/* a key, not a continuation */
	    "password_file=smtp.pass\n"
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 24h\n", &c, &m), 0);
	NONE(&m);
	assert_string_equal(c->group, "");
	assert_string_equal(c->name, "kanto-bureau");
	assert_string_equal(conf_channel_get(&c->channels[0], "from"),
	    "Alerts <a#b@example.jp>");
	assert_string_equal(conf_channel_get(&c->channels[0], "user"),
	    "re;lay#1");
	conf_free(c);
	conf_msgs_free(&m);
}

static void
test_crlf_and_bom(void **state)
{
	struct conf_msgs m;
	struct conf *c;

	(void)state;
	assert_int_equal(load(
	    "\xef\xbb\xbf[relay]\r\n"
	    "group = root\r\n"
	    "name = kanto\r\n"
	    "[channel mail]\r\n"
	    "type = smtp\r\n"
	    "host = smtp.example.jp\r\n"
	    "from = a@example.jp\r\n"
	    "[policy standard]\r\n"
	    "steps = mail\r\n"
	    "expire = 24h\r\n"
	    "oops\r\n", &c, &m), -1);		/* 11 */
	EXPECT(&m, AT(11) "syntax error: expected \"key = value\", "
	    "\"[section]\" or a comment");
	conf_msgs_free(&m);
}

/* A NUL byte is reported at its line, not silently cut there. */
static void
test_nul_byte(void **state)
{
	static const char text[] =
	    "[relay]\n"
	    "group = root\n"
	    "name = kanto\0bureau\n"		/* 3 */
	    "[channel mail]\n"
	    "type = smtp\n"
	    "host = smtp.example.jp\n"
	    "from = a@example.jp\n"
	    "[policy standard]\n"
	    "steps = mail\n"
	    "expire = 24h\n";
	struct conf_msgs m;
	struct conf *c;
	char path[PATH_MAX];
	FILE *fp;

	(void)state;
	snprintf(path, sizeof(path), "%s/dengon.conf", tdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, sizeof(text) - 1, fp),
	    sizeof(text) - 1);
	assert_int_equal(fclose(fp), 0);
	memset(&m, 0, sizeof(m));
	assert_int_equal(conf_load(path, &c, &m), -1);
	EXPECT(&m, AT(3) "NUL byte in line");
	conf_msgs_free(&m);
}

static void
test_unreadable_file(void **state)
{
	struct conf_msgs m;
	struct conf *c = (struct conf *)&m;
	char path[PATH_MAX];

	(void)state;
	memset(&m, 0, sizeof(m));
	snprintf(path, sizeof(path), "%s/nope.conf", tdir);
	assert_int_equal(conf_load(path, &c, &m), -1);
	assert_null(c);
	EXPECT(&m, "$T/nope.conf: cannot open: No such file or directory");
	conf_msgs_free(&m);

	c = (struct conf *)&m;
	assert_int_equal(conf_load(tdir, &c, &m), -1);
	assert_null(c);
	EXPECT(&m, "$T: cannot read: Is a directory");
	conf_msgs_free(&m);
}

/* ---- conf_parse_steps ------------------------------------------------ */

static void
test_parse_steps_valid(void **state)
{
	struct conf_step *s;
	size_t n;
	char err[256];

	(void)state;
	assert_int_equal(conf_parse_steps("mail+lgwan, fax@15m, sms@30m", &s,
	    &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_int_equal(s[0].nchannels, 2);
	assert_string_equal(s[0].channels[0], "mail");
	assert_string_equal(s[0].channels[1], "lgwan");
	assert_int_equal(s[0].delay, 0);
	assert_int_equal(s[1].nchannels, 1);
	assert_string_equal(s[1].channels[0], "fax");
	assert_int_equal(s[1].delay, 900);
	assert_string_equal(s[2].channels[0], "sms");
	assert_int_equal(s[2].delay, 1800);
	conf_steps_free(s, n);

	/* an explicit first delay; a later step inherits the one before */
	assert_int_equal(conf_parse_steps("mail@5m, fax, sms@5m, x_1-2@1h",
	    &s, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 4);
	assert_int_equal(s[0].delay, 300);
	assert_int_equal(s[1].delay, 300);
	assert_int_equal(s[2].delay, 300);
	assert_int_equal(s[3].delay, 3600);
	assert_string_equal(s[3].channels[0], "x_1-2");
	conf_steps_free(s, n);

	/* blanks around names, '+' and '@' */
	assert_int_equal(conf_parse_steps("  mail + lgwan @ 1h ", &s, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s[0].nchannels, 2);
	assert_string_equal(s[0].channels[1], "lgwan");
	assert_int_equal(s[0].delay, 3600);
	conf_steps_free(s, n);

	/* without an error buffer */
	assert_int_equal(conf_parse_steps("mail", &s, &n, NULL, 0), 0);
	assert_int_equal(n, 1);
	conf_steps_free(s, n);
}

static void
test_parse_steps_invalid(void **state)
{
	static const struct {
		const char	*in;
		const char	*err;
	} t[] = {
		{ "", "no steps" },
		{ "   ", "no steps" },
		{ "mail,,fax", "step 2 is empty" },
		{ "mail,", "step 2 is empty" },
		{ ",mail", "step 1 is empty" },
		{ "mail+", "step 1: empty channel name" },
		{ "+mail", "step 1: empty channel name" },
		{ "@5m", "step 1: empty channel name" },
		{ "mail, ma il", "step 2: invalid channel name \"ma il\" (1-32 "
		  "of A-Z a-z 0-9 _ -)" },
		{ "mail.x", "step 1: invalid channel name \"mail.x\" (1-32 of "
		  "A-Z a-z 0-9 _ -)" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "step 1: invalid channel "
		  "name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" (1-32 of A-Z a-z "
		  "0-9 _ -)" },
		{ "mail@", "step 1: missing delay after \"@\"" },
		{ "mail@15q", "step 1: \"15q\" is not a duration (a number with "
		  "s, m, h or d)" },
		{ "mail@5m@6m", "step 1: \"5m@6m\" is not a duration (a number "
		  "with s, m, h or d)" },
		{ "mail@-5m", "step 1: \"-5m\" is not a duration (a number with "
		  "s, m, h or d)" },
		{ "mail@400d", "step 1: \"400d\" is not a duration (a number "
		  "with s, m, h or d)" },
		{ "fax@30m, sms@15m", "step 2: delay 15m is earlier than step "
		  "1's 30m (delays must not decrease)" },
		{ "fax@1h, sms, mail@90s", "step 3: delay 90s is earlier than "
		  "step 2's 1h (delays must not decrease)" },
		{ "mail+lgwan+mail", "step 1: channel \"mail\" listed twice" },
	};
	struct conf_step *s;
	size_t n;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		s = (struct conf_step *)err;
		n = 99;
		err[0] = '\0';
		if (conf_parse_steps(t[i].in, &s, &n, err, sizeof(err)) != -1)
			fail_msg("\"%s\" was accepted", t[i].in);
		assert_null(s);
		assert_int_equal(n, 0);
		if (strcmp(err, t[i].err) != 0)
			fail_msg("\"%s\": got \"%s\", want \"%s\"", t[i].in,
			    err, t[i].err);
		/* and without an error buffer */
		assert_int_equal(conf_parse_steps(t[i].in, &s, &n, NULL, 0),
		    -1);
	}
}

/* ---- conf.c parsers ----------------------------------------------------- */

static void
test_parse_duration(void **state)
{
	static const struct {
		const char	*in;
		int		 ok;
		int64_t		 want;
	} t[] = {
		{ "0", 1, 0 }, { "90", 1, 90 }, { "90s", 1, 90 },
		{ "15m", 1, 900 }, { "2h", 1, 7200 }, { "1d", 1, 86400 },
		{ "0s", 1, 0 }, { " 5m ", 1, 300 }, { "365d", 1, 365 * 86400 },
		{ "8760h", 1, 365 * 86400 }, { "31536000", 1, 31536000 },
		{ "366d", 0, 0 }, { "8761h", 0, 0 }, { "31536001", 0, 0 },
		{ "99999999999999999999", 0, 0 },
		{ "9223372036854775807d", 0, 0 },
		{ "", 0, 0 }, { "s", 0, 0 }, { "-5", 0, 0 }, { "1.5h", 0, 0 },
		{ "15q", 0, 0 }, { "15 m", 0, 0 }, { "15mm", 0, 0 },
		{ "15M", 0, 0 }, { "1w", 0, 0 }, { "+5", 0, 0 },
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		v = -1;
		if ((conf_parse_duration(t[i].in, &v) == 0) != t[i].ok)
			fail_msg("duration \"%s\": want %s", t[i].in,
			    t[i].ok ? "ok" : "error");
		if (t[i].ok && v != t[i].want)
			fail_msg("duration \"%s\": got %lld", t[i].in,
			    (long long)v);
	}
}

static void
test_parse_size(void **state)
{
	static const struct {
		const char	*in;
		int		 ok;
		int64_t		 want;
	} t[] = {
		{ "0", 1, 0 }, { "512", 1, 512 }, { "64k", 1, 65536 },
		{ "2M", 1, 2097152 }, { "0k", 1, 0 },
		{ "1024M", 1, 1073741824 }, { "1048576k", 1, 1073741824 },
		{ "1025M", 0, 0 }, { "1073741825", 0, 0 },
		{ "99999999999999999999k", 0, 0 },
		{ "64K", 0, 0 }, { "2m", 0, 0 }, { "1G", 0, 0 }, { "", 0, 0 },
		{ "k", 0, 0 }, { "-1", 0, 0 }, { "1.5k", 0, 0 }, { "64kb", 0, 0 },
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		v = -1;
		if ((conf_parse_size(t[i].in, &v) == 0) != t[i].ok)
			fail_msg("size \"%s\": want %s", t[i].in,
			    t[i].ok ? "ok" : "error");
		if (t[i].ok && v != t[i].want)
			fail_msg("size \"%s\": got %lld", t[i].in,
			    (long long)v);
	}
}

static void
test_parse_bool(void **state)
{
	(void)state;
	assert_int_equal(conf_parse_bool("yes"), 1);
	assert_int_equal(conf_parse_bool("YES"), 1);
	assert_int_equal(conf_parse_bool("true"), 1);
	assert_int_equal(conf_parse_bool("On"), 1);
	assert_int_equal(conf_parse_bool("1"), 1);
	assert_int_equal(conf_parse_bool("no"), 0);
	assert_int_equal(conf_parse_bool("False"), 0);
	assert_int_equal(conf_parse_bool("off"), 0);
	assert_int_equal(conf_parse_bool("0"), 0);
	assert_int_equal(conf_parse_bool(""), -1);
	assert_int_equal(conf_parse_bool("yess"), -1);
	assert_int_equal(conf_parse_bool("2"), -1);
	assert_int_equal(conf_parse_bool(" yes"), -1);
}

/* ---- the reference ---------------------------------------------------- */

static void
test_reference(void **state)
{
	static const char *const sections[] = {
		"\n## [relay]\n",
		"\n## [channel NAME], type = smtp\n",
		"\n## [channel NAME], type = lgwan\n",
		"\n## [channel NAME], type = fax\n",
		"\n## [channel NAME], type = sms\n",
		"\n## [inbox NAME], type = imap\n",
		"\n## [inbox NAME], type = pop3\n",
		"\n## [policy NAME]\n",
	};
	/* every key of the CONTRACT.md example */
	static const char *const keys[] = {
		"name", "queue", "secret_file", "socket", "spool", "contacts",
		"default_policy", "language", "timezone", "country_code",
		"log", "group", "type", "host", "port", "tls", "tls_verify",
		"ca_file", "user", "password_file", "from", "reply_to",
		"timeout", "concurrency", "domains", "charset", "max_size",
		"transport", "resolution", "font", "devices", "pin_files",
		"baud", "flow_control", "max_parts", "mailbox", "done_mailbox",
		"poll", "steps", "repeat", "expire", "confirm",
	};
	char *buf = NULL, needle[64];
	size_t len = 0;
	FILE *fp;

	(void)state;
	fp = open_memstream(&buf, &len);
	assert_non_null(fp);
	conf_write_reference(fp);
	assert_int_equal(fclose(fp), 0);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		if (strstr(buf, sections[i]) == NULL)
			fail_msg("no section %s", sections[i]);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(needle, sizeof(needle), "\n| `%s` | ", keys[i]);
		if (strstr(buf, needle) == NULL)
			fail_msg("no key %s", keys[i]);
	}
	/* defaults and requirement come from the tables */
	assert_non_null(strstr(buf, "\n| `port` | port (1-65535) | no | "
	    "`587` | "));
	assert_non_null(strstr(buf, "\n| `expire` | duration, at least 1s | "
	    "yes | - | "));
	assert_non_null(strstr(buf, "\n| `tls` | one of `starttls`, `tls`, "
	    "`none` | no | `starttls` | "));
	assert_non_null(strstr(buf, "cannot contain ` #` or ` ;`"));
	free(buf);
}

#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_contract_example),
		T(test_defaults),
		T(test_default_group),
		T(test_syntax_errors),
		T(test_section_headers),
		T(test_unknown_section_and_keys),
		T(test_duplicates),
		T(test_bad_values),
		T(test_bad_values_more),
		T(test_missing_required),
		T(test_missing_files),
		T(test_default_font),
		T(test_tls_checks),
		T(test_inbox_ports),
		T(test_steps_channels),
		T(test_policy_timing),
		T(test_default_policy),
		T(test_pin_files_count),
		T(test_long_lines),
		T(test_several_errors),
		T(test_relative_paths),
		T(test_comments),
		T(test_crlf_and_bom),
		T(test_nul_byte),
		T(test_unreadable_file),
		T(test_parse_steps_valid),
		T(test_parse_steps_invalid),
		T(test_parse_duration),
		T(test_parse_size),
		T(test_parse_bool),
		T(test_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
