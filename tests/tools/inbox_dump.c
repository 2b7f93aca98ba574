/*
 * inbox_dump.c - drive an inbox driver by hand, for the tests.
 *
 *   inbox_dump -c CONF -I INBOX [-n] [-s TEXT] [-p PASSES] [-v]
 *
 * Loads the configuration, configures the driver of [inbox INBOX]
 * (password_file and all) and runs PASSES (default 1) poll() calls, as the
 * daemon's child would.  Every message offered is acknowledged (moved to
 * done_mailbox, or deleted over POP3), except with -n (none is) or -s TEXT
 * (only those whose Subject contains TEXT are).  Each poll() waits `poll'
 * for new mail before it returns: give the test inbox a short one.
 *
 * Output: one line per message offered, tab-separated:
 *   KEY KIND FROM SUBJECT DETAIL ACK
 * KIND is message, dsn or mdn; DETAIL is the first non-blank line of the
 * text (message), "envid=ID RCPT:ACTION:STATUS ..." (dsn), or
 * "DISPOSITION ORIGINAL-MESSAGE-ID" (mdn); ACK is ack or keep; absent
 * fields are "-", tabs and line breaks in fields become blanks.  -v adds
 * indented lines: message-id, in-reply-to, references, auto-submitted,
 * each DSN diagnostic, and the whole text ("  | " before each line).
 * A failed poll() is said on stderr.  Exit status: 0 if every poll()
 * returned 0, 1 if one returned -1, 2 on bad usage or config.
 * No state beyond one run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/channel.h"
#include "conf/conf.h"

struct opts {
	int		 none;		/* -n */
	const char	*only;		/* -s */
	int		 verbose;	/* -v */
};

static void
usage(void)
{
	fprintf(stderr, "usage: inbox_dump -c CONF -I INBOX [-n] [-s TEXT] "
	    "[-p PASSES] [-v]\n");
	exit(2);
}

/* A field for one tab-separated line: "-" if absent, no tabs or breaks. */
static void
put(const char *s, int last)
{
	if (s == NULL || *s == '\0')
		fputs("-", stdout);
	else
		for (; *s != '\0'; s++)
			putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' :
			    *s);
	putchar(last ? '\n' : '\t');
}

/* The first non-blank line of text, in buf. */
static const char *
first_line(const char *text, char *buf, size_t len)
{
	const char *p = text, *e;

	if (text == NULL)
		return NULL;
	while (*p != '\0') {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		for (const char *q = p; q < e; q++)
			if (*q != ' ' && *q != '\t') {
				snprintf(buf, len, "%.*s", (int)(e - p), p);
				return buf;
			}
		p = *e ? e + 1 : e;
	}
	return NULL;
}

/* deliver(): print the message, acknowledge it as the options say. */
static int
dump(const struct inbox_msg *m, void *arg)
{
	const struct opts *o = arg;
	static const char *kinds[] = { "message", "dsn", "mdn" };
	char detail[2048], line[1024];
	int ack;
	size_t n = 0;

	ack = !o->none && (o->only == NULL ||
	    (m->subject != NULL && strstr(m->subject, o->only) != NULL));
	switch (m->kind) {
	case INBOX_DSN:
		n = (size_t)snprintf(detail, sizeof(detail), "envid=%s",
		    m->envelope_id ? m->envelope_id : "-");
		for (size_t i = 0; i < m->nrcpts && n < sizeof(detail); i++)
			n += (size_t)snprintf(detail + n, sizeof(detail) - n,
			    " %s:%s:%s", m->rcpts[i].final_recipient ?
			    m->rcpts[i].final_recipient : "-",
			    m->rcpts[i].action ? m->rcpts[i].action : "-",
			    m->rcpts[i].status ? m->rcpts[i].status : "-");
		break;
	case INBOX_MDN:
		snprintf(detail, sizeof(detail), "%s %s",
		    m->disposition ? m->disposition : "-",
		    m->original_message_id ? m->original_message_id : "-");
		break;
	default:
		snprintf(detail, sizeof(detail), "%s",
		    first_line(m->text, line, sizeof(line)) ? line : "-");
		break;
	}
	put(m->key, 0);
	put(kinds[m->kind <= INBOX_MDN ? m->kind : 0], 0);
	put(m->from, 0);
	put(m->subject, 0);
	put(detail, 0);
	put(ack ? "ack" : "keep", 1);
	if (o->verbose) {
		printf("  message-id: %s\n", m->message_id ? m->message_id : "-");
		printf("  in-reply-to: %s\n", m->in_reply_to ? m->in_reply_to :
		    "-");
		printf("  references: %s\n", m->references ? m->references : "-");
		printf("  auto-submitted: %s\n", m->auto_submitted ?
		    m->auto_submitted : "-");
		for (size_t i = 0; i < m->nrcpts; i++)
			printf("  diagnostic: %s\n", m->rcpts[i].diagnostic ?
			    m->rcpts[i].diagnostic : "-");
		printf("  raw: %zu bytes\n", m->raw_len);
		for (const char *p = m->text; p != NULL && *p != '\0';) {
			const char *e = strchr(p, '\n');
			int len = e ? (int)(e - p) : (int)strlen(p);

			printf("  | %.*s\n", len, p);
			p = e ? e + 1 : p + len;
		}
	}
	fflush(stdout);
	return ack;
}

int
main(int argc, char **argv)
{
	const char *conf_path = NULL, *name = NULL;
	const struct conf_inbox *ib = NULL;
	const struct inbox_driver *drv;
	struct conf_msgs msgs = { 0 };
	struct opts o = { 0 };
	struct conf *conf;
	char err[512];
	void *state;
	int ch, passes = 1, rc = 0;

	while ((ch = getopt(argc, argv, "c:I:ns:p:v")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'I':
			name = optarg;
			break;
		case 'n':
			o.none = 1;
			break;
		case 's':
			o.only = optarg;
			break;
		case 'p':
			passes = atoi(optarg);
			break;
		case 'v':
			o.verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (conf_path == NULL || name == NULL || passes < 1)
		usage();
	if (conf_load(conf_path, &conf, &msgs) == -1) {
		conf_msgs_print(&msgs, stderr);
		return 2;
	}
	conf_msgs_free(&msgs);
	for (size_t i = 0; i < conf->ninboxes; i++)
		if (strcmp(conf->inboxes[i].name, name) == 0)
			ib = &conf->inboxes[i];
	if (ib == NULL || (drv = inbox_driver_find(ib->type)) == NULL) {
		fprintf(stderr, "inbox_dump: no [inbox %s] of a known type\n",
		    name);
		return 2;
	}
	if (drv->configure(ib, conf, &state, err, sizeof(err)) == -1) {
		fprintf(stderr, "inbox_dump: configure: %s\n", err);
		return 2;
	}
	for (int i = 0; i < passes && rc == 0; i++)
		if (drv->poll(state, dump, &o, err, sizeof(err)) == -1) {
			fprintf(stderr, "inbox_dump: poll: %s\n", err);
			rc = 1;
		}
	drv->release(state);
	conf_free(conf);
	return rc;
}
