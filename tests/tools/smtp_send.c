/*
 * smtp_send.c - drive the smtp channel driver by hand, for the tests.
 *
 *   smtp_send -c CONF -C CHANNEL [-n N] [-a ADDR] [-s SUBJECT] [-b FILE]
 *             [-d] [-t TLP] [-R ROUND] [-V REVISION] [-p]
 *
 * Loads the configuration, configures the driver of [channel CHANNEL]
 * (password_file and all) and sends N generated messages (default 1) in
 * one send() call, as the daemon's child would.  ADDR is the recipient
 * address; "{n}" in it becomes the message's number (0001, 0002 ...);
 * default "r{n}@example.jp".  -d: a drill; -p: print the first message as
 * rendered and send nothing.
 *
 * Output: one line per result on stdout, "ATTEMPT OUTCOME TEXT", where
 * TEXT is the evidence of an ok and the error of a failure; attempts are
 * 1001, 1002 ...  A failed session is also said on stderr.  Exit status:
 * 0 if send() returned 0, 1 if it returned -1, 2 on bad usage or config.
 * No state beyond one run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/channel.h"
#include "conf/conf.h"
#include "queue/queue.h"
#include "relay/relay.h"

#define MAX_MSGS	1000

static void
usage(void)
{
	fprintf(stderr, "usage: smtp_send -c CONF -C CHANNEL [-n N] [-a ADDR] "
	    "[-s SUBJECT] [-b FILE] [-d] [-t TLP] [-R ROUND] [-V REVISION] "
	    "[-p]\n");
	exit(2);
}

/* report(): one line per message, flushed, as soon as it is known. */
static void
print_result(const struct channel_result *r, void *arg)
{
	printf("%lld %s %s\n", (long long)r->attempt, channel_outcome_name(r->outcome),
	    r->outcome == CHANNEL_OK ? r->evidence : r->error);
	fflush(stdout);
}

/* ADDR with "{n}" replaced by the 4-digit number n. */
static char *
address(const char *tmpl, int n)
{
	const char *p = strstr(tmpl, "{n}");
	char *s;

	if (p == NULL)
		return strdup(tmpl);
	if (asprintf(&s, "%.*s%04d%s", (int)(p - tmpl), tmpl, n, p + 3) < 0)
		return NULL;
	return s;
}

/* A code of 8 Crockford characters that differs per message. */
static void
fake_code(int n, char out[CODE_LEN + 1])
{
	static const char alpha[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	uint64_t v = (uint64_t)n * 0x9e3779b97f4a7c15ull >> 24;

	for (int i = CODE_LEN - 1; i >= 0; i--, v /= 32)
		out[i] = alpha[v % 32];
	out[CODE_LEN] = '\0';
}

static char *
slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *s = NULL;
	size_t cap = 0, len = 0, r;

	if (fp == NULL)
		return NULL;
	do {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			if ((s = realloc(s, cap)) == NULL)
				exit(1);
		}
		r = fread(s + len, 1, cap - len - 1, fp);
		len += r;
	} while (r > 0);
	fclose(fp);
	s[len] = '\0';
	return s;
}

int
main(int argc, char **argv)
{
	const char *conf_path = NULL, *chname = NULL, *tmpl = "r{n}@example.jp";
	const char *subject = "断水のお知らせ", *body_file = NULL;
	char *body = NULL, err[512];
	int n = 1, drill = 0, round = 0, revision = 1, print = 0, ch, rc;
	enum queue_tlp tlp = QUEUE_TLP_AMBER;
	struct conf_msgs msgs = { 0 };
	const struct conf_channel *cc;
	struct channel_msg *m;
	struct conf *conf;
	void *state;
	char (*codes)[CODE_LEN + 1], (*mids)[128], (*refs)[128];
	char (*rids)[16], (*names)[64];

	while ((ch = getopt(argc, argv, "c:C:n:a:s:b:dt:R:V:p")) != -1) {
		switch (ch) {
		case 'c':
			conf_path = optarg;
			break;
		case 'C':
			chname = optarg;
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'a':
			tmpl = optarg;
			break;
		case 's':
			subject = optarg;
			break;
		case 'b':
			body_file = optarg;
			break;
		case 'd':
			drill = 1;
			break;
		case 't':
			if (queue_tlp_parse(optarg, &tlp) == -1)
				usage();
			break;
		case 'R':
			round = atoi(optarg);
			break;
		case 'V':
			revision = atoi(optarg);
			break;
		case 'p':
			print = 1;
			break;
		default:
			usage();
		}
	}
	if (conf_path == NULL || chname == NULL || n < 1 || n > MAX_MSGS)
		usage();
	if (conf_load(conf_path, &conf, &msgs) == -1) {
		conf_msgs_print(&msgs, stderr);
		return 2;
	}
	conf_msgs_free(&msgs);
	relay_set_timezone(conf->timezone);
	if ((cc = conf_channel_find(conf, chname)) == NULL) {
		fprintf(stderr, "smtp_send: no [channel %s]\n", chname);
		return 2;
	}
	if (channel_smtp.configure(cc, conf, &state, err, sizeof(err)) == -1) {
		fprintf(stderr, "smtp_send: configure: %s\n", err);
		return 2;
	}
	if (body_file != NULL && (body = slurp(body_file)) == NULL) {
		fprintf(stderr, "smtp_send: %s: cannot read\n", body_file);
		return 2;
	}

	m = calloc((size_t)n, sizeof(*m));
	codes = calloc((size_t)n, sizeof(*codes));
	mids = calloc((size_t)n, sizeof(*mids));
	refs = calloc((size_t)n, sizeof(*refs));
	rids = calloc((size_t)n, sizeof(*rids));
	names = calloc((size_t)n, sizeof(*names));
	if (!m || !codes || !mids || !refs || !rids || !names)
		return 1;
	for (int i = 0; i < n; i++) {
		fake_code(i + 1, codes[i]);
		snprintf(rids[i], sizeof(rids[i]), "r%04d", i + 1);
		snprintf(names[i], sizeof(names[i]), "受信者 %d", i + 1);
		snprintf(mids[i], sizeof(mids[i]), "<dengon.%d.%d.%d@%s>",
		    i + 1, revision, round, conf->name);
		snprintf(refs[i], sizeof(refs[i]), "<dengon.%d.1.0@%s>",
		    i + 1, conf->name);
		m[i].attempt = 1001 + i;
		m[i].delivery = 101 + i;
		m[i].alert = "20261121-0042";
		m[i].revision = revision;
		m[i].recipient = rids[i];
		m[i].name = names[i];
		m[i].org = "テスト水道事業団";
		m[i].address = address(tmpl, i + 1);
		m[i].code = codes[i];
		m[i].subject = subject;
		m[i].body = body ? body : "本日 14 時より、配水管工事のため断水します。\n"
		    "対象地域: 東町 1-3 丁目\n";
		m[i].tlp = tlp;
		m[i].drill = drill;
		m[i].created = 1795259400000LL;	/* 2026-11-21 20:10 JST */
		m[i].expires = m[i].created + 86400000LL;
		m[i].round = round;
		m[i].message_id = mids[i];
		m[i].references = (round > 0 || revision > 1) ? refs[i] : NULL;
		if (m[i].address == NULL)
			return 1;
	}

	if (print) {
		char *out;
		size_t len;

		if (channel_smtp.render(state, &m[0], &out, &len, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "smtp_send: render: %s\n", err);
			return 1;
		}
		fwrite(out, 1, len, stdout);
		free(out);
		rc = 0;
	} else {
		rc = channel_smtp.send(state, m, (size_t)n, print_result, NULL,
		    err, sizeof(err));
		if (rc == -1)
			fprintf(stderr, "smtp_send: session failed: %s\n", err);
	}
	channel_smtp.release(state);
	for (int i = 0; i < n; i++)
		free((char *)(uintptr_t)m[i].address);
	free(m);
	free(codes);
	free(mids);
	free(refs);
	free(rids);
	free(names);
	free(body);
	conf_free(conf);
	return rc == 0 ? 0 : 1;
}
