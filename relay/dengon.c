/*
 * dengon.c - the operator's tool: main, dispatch, and the commands that
 * change things (init, check, contacts, send, confirm, backup, spool).
 *
 * dengon works with or without a running daemon: it writes to the queue
 * directly, and a command returns 0 only once what it did is committed.
 * The commands that only read (status, queue) are in cli_status.c.
 *
 * Output: results on stdout (the alert id alone on the first line for
 * send; one JSON document with --json), everything else on stderr.  Exit
 * status per CONTRACT.md (cli.h).
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channels/channel.h"
#include "relay/cli.h"
#include "relay/relay.h"
#include "relay/sched.h"

void
cli_errx(const char *fmt, ...)
{
	va_list ap;

	fputs("dengon: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_load_conf(struct cli *cli)
{
	struct conf_msgs msgs = { 0 };

	if (cli->conf != NULL)
		return 0;
	if (conf_load(cli->conf_path, &cli->conf, &msgs) == -1) {
		conf_msgs_print(&msgs, stderr);
		conf_msgs_free(&msgs);
		return EXIT_USAGE;
	}
	conf_msgs_print(&msgs, stderr);		/* warnings */
	conf_msgs_free(&msgs);
	relay_set_timezone(cli->conf->timezone);
	return 0;
}

int
cli_open_queue(struct cli *cli)
{
	char err[1024];
	int rc;

	if ((rc = cli_load_conf(cli)) != 0)
		return rc;
	if (cli->queue != NULL)
		return 0;
	cli->queue = queue_open(cli->conf->queue, cli->conf->group, 0, err,
	    sizeof(err));
	if (cli->queue == NULL) {
		cli_errx("%s", err);
		return EXIT_RUNTIME;
	}
	return 0;
}

int
cli_queue_exit(struct cli *cli, int rc)
{
	switch (rc) {
	case QUEUE_OK:
		return 0;
	case QUEUE_NOTFOUND:
		cli_errx("%s", queue_errmsg(cli->queue));
		return EXIT_UNKNOWN;
	case QUEUE_REFUSED:
		cli_errx("refused: %s", queue_errmsg(cli->queue));
		return EXIT_REFUSED;
	case QUEUE_INVALID:
		cli_errx("%s", queue_errmsg(cli->queue));
		return EXIT_USAGE;
	default:
		cli_errx("%s", queue_errmsg(cli->queue));
		return EXIT_RUNTIME;
	}
}

/* The operator's name for the event log: the login behind sudo, if any. */
static const char *
cli_actor(char *buf, size_t len)
{
	const char *s = getenv("SUDO_USER");
	struct passwd *pw;

	if (s != NULL && *s != '\0')
		snprintf(buf, len, "cli:%s", s);
	else if ((pw = getpwuid(getuid())) != NULL)
		snprintf(buf, len, "cli:%s", pw->pw_name);
	else
		snprintf(buf, len, "cli:uid%ld", (long)getuid());
	return buf;
}

/*
 * Tell a running dengond that there is new work, so delivery starts at
 * once.  Best effort and bounded (one second): what was accepted is in
 * the queue whether or not a daemon answers.
 */
static void
cli_wake(struct cli *cli)
{
	struct sockaddr_un sun;
	struct pollfd pfd;
	char buf[16];
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", cli->conf->socket);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		fprintf(stderr, "dengond is not running: the alert waits in "
		    "the queue until it starts\n");
		close(fd);
		return;
	}
	if (write(fd, "wake\n", 5) == 5) {
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 1000) == 1 && read(fd, buf, sizeof(buf)) > 0)
			fprintf(stderr, "dengond woken: delivery starts now\n");
	}
	close(fd);
}

/* Parse the options of a subcommand; getopt_long with "+" so that a
 * stray positional stops nothing. Returns the option or -1. */
static int
cli_getopt(int argc, char **argv, const char *shortopts,
    const struct option *longopts)
{
	return getopt_long(argc, argv, shortopts, longopts, NULL);
}

/* ---- init --------------------------------------------------------------- */

/* mkdir -p for the directory part of path. */
static int
mkdir_parent(const char *path, mode_t mode)
{
	char buf[4096], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	if ((p = strrchr(buf, '/')) == NULL || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static int
cmd_init(struct cli *cli, int argc, char **argv)
{
	char err[1024];
	struct queue *q;
	int rc;

	if (argc > 1) {
		cli_errx("init takes no arguments");
		return EXIT_USAGE;
	}
	if ((rc = cli_load_conf(cli)) != 0)
		return rc;
	if (mkdir_parent(cli->conf->secret_file, 0750) == -1) {
		cli_errx("cannot create the directory of %s: %s",
		    cli->conf->secret_file, strerror(errno));
		return EXIT_RUNTIME;
	}
	switch (code_keyring_create(cli->conf->secret_file, err, sizeof(err))) {
	case 0:
		fprintf(stderr, "created secret key %s (mode 0600)\n",
		    cli->conf->secret_file);
		break;
	case 1:
		fprintf(stderr, "secret key %s exists: kept\n",
		    cli->conf->secret_file);
		break;
	default:
		cli_errx("%s", err);
		return EXIT_RUNTIME;
	}
	q = queue_open(cli->conf->queue, cli->conf->group, QUEUE_OPEN_CREATE,
	    err, sizeof(err));
	if (q == NULL) {
		cli_errx("%s", err);
		return EXIT_RUNTIME;
	}
	fprintf(stderr, "queue %s ready\n", cli->conf->queue);
	cli->queue = q;
	if (mkdir_parent(cli->conf->spool, 0770) == -1 ||
	    spool_init(cli->conf, err, sizeof(err)) == -1) {
		cli_errx("%s", *err ? err : strerror(errno));
		return EXIT_RUNTIME;
	}
	fprintf(stderr, "spool %s ready\n", cli->conf->spool);
	return 0;
}

/* ---- check ---------------------------------------------------------------- */

static int
cmd_check(struct cli *cli, int argc, char **argv)
{
	struct conf_msgs msgs = { 0 };
	struct contact_list l = { 0 };
	int bad = 0;

	if (argc > 1) {
		cli_errx("check takes no arguments");
		return EXIT_USAGE;
	}
	if (conf_load(cli->conf_path, &cli->conf, &msgs) == -1) {
		conf_msgs_print(&msgs, stderr);
		conf_msgs_free(&msgs);
		return EXIT_USAGE;
	}
	if (access(cli->conf->contacts, F_OK) == -1)
		conf_msgs_add(&msgs, 0, cli->conf->contacts, 0, "does not exist; "
		    "the directory last imported into the queue is used");
	else if (contacts_load(cli->conf->contacts, CONTACTS_ENC_AUTO,
	    cli->conf->country_code, &l, &msgs) == 0)
		contacts_check(cli->conf->contacts, &l, cli->conf, &msgs);
	bad = msgs.errors > 0;
	conf_msgs_print(&msgs, stderr);
	if (!bad)
		printf("%s: OK (%zu channels, %zu policies, %zu recipients, "
		    "%zu warnings)\n", cli->conf->path, cli->conf->nchannels,
		    cli->conf->npolicies, l.n, msgs.warnings);
	contacts_free(&l);
	conf_msgs_free(&msgs);
	return bad ? EXIT_USAGE : 0;
}

/* ---- contacts --------------------------------------------------------------- */

static int
contacts_print(const struct contact *ct, void *arg)
{
	struct json *j = arg;

	if (j == NULL) {
		printf("%-16s %-24s %s\n", ct->id, ct->name,
		    ct->org ? ct->org : "");
		printf("%16s mail=%s lgwan=%s fax=%s sms=%s groups=%s policy=%s\n",
		    "", ct->mail ? ct->mail : "-", ct->lgwan ? ct->lgwan : "-",
		    ct->fax ? ct->fax : "-", ct->sms ? ct->sms : "-",
		    ct->groups ? ct->groups : "-", ct->policy ? ct->policy : "-");
		return 0;
	}
	json_object_begin(j);
	json_key(j, "id"); json_string(j, ct->id);
	json_key(j, "name"); json_string(j, ct->name);
	json_key(j, "org"); json_string(j, ct->org);
	json_key(j, "groups");
	json_array_begin(j);
	if (ct->groups != NULL) {
		char *g = strdup(ct->groups), *save = NULL;
		for (char *t = strtok_r(g, ";", &save); t != NULL;
		    t = strtok_r(NULL, ";", &save))
			json_string(j, t);
		free(g);
	}
	json_array_end(j);
	json_key(j, "mail"); json_string(j, ct->mail);
	json_key(j, "lgwan"); json_string(j, ct->lgwan);
	json_key(j, "fax"); json_string(j, ct->fax);
	json_key(j, "sms"); json_string(j, ct->sms);
	json_key(j, "policy"); json_string(j, ct->policy);
	json_object_end(j);
	return 0;
}

static int
cmd_contacts(struct cli *cli, int argc, char **argv)
{
	static const struct option imp_opts[] = {
		{ "encoding", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 }
	};
	static const struct option list_opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	enum contacts_encoding enc = CONTACTS_ENC_AUTO;
	struct conf_msgs msgs = { 0 };
	struct contact_list l = { 0 };
	const char *group = NULL, *file;
	char actor[128];
	int ch, rc, json = 0;

	if (argc < 2) {
		cli_errx("usage: dengon contacts import [FILE.csv] "
		    "[--encoding utf-8|cp932] | list [--group G] [--json]");
		return EXIT_USAGE;
	}
	argc--;
	argv++;
	optind = 0;
	if (strcmp(argv[0], "list") == 0) {
		while ((ch = cli_getopt(argc, argv, "g:j", list_opts)) != -1) {
			if (ch == 'g')
				group = optarg;
			else if (ch == 'j')
				json = 1;
			else
				return EXIT_USAGE;
		}
		if (optind != argc) {
			cli_errx("contacts list: unexpected argument '%s'",
			    argv[optind]);
			return EXIT_USAGE;
		}
		if ((rc = cli_open_queue(cli)) != 0)
			return rc;
		struct json j;
		json_init(&j, stdout);
		if (json)
			json_array_begin(&j);
		rc = queue_contacts_each(cli->queue, group, contacts_print,
		    json ? &j : NULL);
		if (json) {
			json_array_end(&j);
			json_end(&j);
		}
		return cli_queue_exit(cli, rc < 0 ? rc : 0);
	}
	if (strcmp(argv[0], "import") != 0) {
		cli_errx("contacts: unknown subcommand '%s' (import, list)",
		    argv[0]);
		return EXIT_USAGE;
	}
	while ((ch = cli_getopt(argc, argv, "e:", imp_opts)) != -1) {
		if (ch != 'e')
			return EXIT_USAGE;
		if (contacts_encoding_parse(optarg, &enc) == -1) {
			cli_errx("--encoding: '%s' is not utf-8 or cp932", optarg);
			return EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		cli_errx("contacts import: one file at most");
		return EXIT_USAGE;
	}
	if ((rc = cli_load_conf(cli)) != 0)
		return rc;
	file = optind < argc ? argv[optind] : cli->conf->contacts;
	if (contacts_load(file, enc, cli->conf->country_code, &l, &msgs) == -1 ||
	    contacts_check(file, &l, cli->conf, &msgs) == -1 ||
	    msgs.errors > 0) {
		conf_msgs_print(&msgs, stderr);
		fprintf(stderr, "dengon: %s: %zu errors: nothing imported\n",
		    file, msgs.errors);
		conf_msgs_free(&msgs);
		contacts_free(&l);
		return EXIT_USAGE;
	}
	conf_msgs_print(&msgs, stderr);
	if ((rc = cli_open_queue(cli)) != 0) {
		conf_msgs_free(&msgs);
		contacts_free(&l);
		return rc;
	}
	rc = queue_contacts_replace(cli->queue, &l, cli_actor(actor,
	    sizeof(actor)));
	if (rc == QUEUE_OK)
		printf("imported %zu recipients from %s (%zu warnings)\n", l.n,
		    file, msgs.warnings);
	conf_msgs_free(&msgs);
	contacts_free(&l);
	return cli_queue_exit(cli, rc);
}

/* ---- send ------------------------------------------------------------------- */

/* Read a body from a file or "-" (stdin), bounded by INGEST_MAX_BODY. */
static char *
read_body(const char *path, char *err, size_t errlen)
{
	FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf;
	size_t len;

	if (fp == NULL) {
		snprintf(err, errlen, "--body-file %s: %s", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(INGEST_MAX_BODY + 2)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	len = fread(buf, 1, INGEST_MAX_BODY + 1, fp);
	if (ferror(fp)) {
		snprintf(err, errlen, "--body-file %s: read error", path);
		free(buf);
		buf = NULL;
	} else if (len > INGEST_MAX_BODY) {
		snprintf(err, errlen, "--body-file %s: longer than %d bytes",
		    path, INGEST_MAX_BODY);
		free(buf);
		buf = NULL;
	} else if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "--body-file %s: contains NUL bytes", path);
		free(buf);
		buf = NULL;
	} else
		buf[len] = '\0';
	if (fp != stdin)
		fclose(fp);
	return buf;
}

static int
cmd_send(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "subject", required_argument, NULL, 's' },
		{ "body-file", required_argument, NULL, 'b' },
		{ "tlp", required_argument, NULL, 'l' },
		{ "policy", required_argument, NULL, 'p' },
		{ "expires", required_argument, NULL, 'e' },
		{ "drill", no_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 }
	};
	struct queue_new_alert na;
	struct code_keyring kr = { 0 };
	const char *body_file = NULL, *subject = NULL;
	char err[1024], id[64], actor[128];
	char *body = NULL, *subj = NULL;
	int64_t n = 0;
	int ch, rc, json = 0;

	memset(&na, 0, sizeof(na));
	na.tlp = QUEUE_TLP_GREEN;
	optind = 0;
	while ((ch = cli_getopt(argc, argv, "t:s:b:l:p:e:dj", opts)) != -1) {
		switch (ch) {
		case 't':
			na.targets = optarg;
			break;
		case 's':
			subject = optarg;
			break;
		case 'b':
			body_file = optarg;
			break;
		case 'l':
			if (queue_tlp_parse(optarg, &na.tlp) == -1) {
				cli_errx("--tlp: '%s' is not CLEAR, GREEN, AMBER, "
				    "AMBER+STRICT or RED", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'p':
			na.policy = optarg;
			break;
		case 'e':
			if (conf_parse_duration(optarg, &na.expires_in) == -1 ||
			    na.expires_in == 0) {
				cli_errx("--expires: '%s' is not a duration "
				    "(a number with s, m, h or d)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'd':
			na.drill = 1;
			break;
		case 'j':
			json = 1;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_errx("send: unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (na.targets == NULL || *na.targets == '\0') {
		cli_errx("send: --to is required (recipient ids, group:NAME "
		    "or all, comma-separated)");
		return EXIT_USAGE;
	}
	if (subject == NULL && body_file == NULL) {
		cli_errx("send: give --subject, --body-file, or both");
		return EXIT_USAGE;
	}
	if ((rc = cli_load_conf(cli)) != 0)
		return rc;
	if (na.policy != NULL && conf_policy_find(cli->conf, na.policy) == NULL) {
		cli_errx("--policy: no [policy %s] in %s", na.policy,
		    cli->conf->path);
		return EXIT_USAGE;
	}
	if (body_file != NULL) {
		if ((body = read_body(body_file, err, sizeof(err))) == NULL ||
		    ingest_check_body(body, err, sizeof(err)) == -1) {
			cli_errx("%s", err);
			free(body);
			return EXIT_USAGE;
		}
	} else if ((body = strdup("")) == NULL)
		return EXIT_RUNTIME;
	if (subject == NULL)
		subject = subj = ingest_default_subject(body);
	if (subject == NULL || ingest_check_subject(subject, err,
	    sizeof(err)) == -1) {
		cli_errx("--subject: %s", subject ? err : "no subject");
		rc = EXIT_USAGE;
		goto out;
	}
	if (*body == '\0') {
		free(body);
		if ((body = strdup(subject)) == NULL) {
			rc = EXIT_RUNTIME;
			goto out;
		}
	}
	na.subject = subject;
	na.body = body;
	na.source = cli_actor(actor, sizeof(actor));
	if (code_keyring_load(cli->conf->secret_file, &kr, err,
	    sizeof(err)) == -1) {
		cli_errx("%s", err);
		rc = EXIT_RUNTIME;
		goto out;
	}
	if ((rc = cli_open_queue(cli)) != 0)
		goto out;
	rc = queue_alert_accept(cli->queue, cli->conf, &kr, &na, id, sizeof(id),
	    &n);
	if (rc != QUEUE_OK) {
		rc = cli_queue_exit(cli, rc);
		goto out;
	}
	if (json) {
		struct json j;

		json_init(&j, stdout);
		json_object_begin(&j);
		json_key(&j, "alert");
		json_string(&j, id);
		json_key(&j, "recipients");
		json_int(&j, n);
		json_object_end(&j);
		json_end(&j);
	} else {
		printf("%s\n", id);
		fprintf(stderr, "accepted alert %s for %lld recipients\n", id,
		    (long long)n);
	}
	if (fflush(stdout) != 0)
		rc = EXIT_RUNTIME;
	cli_wake(cli);
out:
	code_keyring_free(&kr);
	free(subj);
	free(body);
	return rc;
}

/* ---- update and cancel ------------------------------------------------------- */

/* dengon update ALERT [--subject S] --body-file F */
static int
cmd_update(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "subject", required_argument, NULL, 's' },
		{ "body-file", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 }
	};
	const char *subject = NULL, *body_file = NULL, *alert;
	char err[256], actor[128], *body = NULL;
	int64_t rearmed = 0;
	int ch, rc, rev = 0;

	optind = 0;
	while ((ch = cli_getopt(argc, argv, "s:b:", opts)) != -1) {
		switch (ch) {
		case 's':
			subject = optarg;
			break;
		case 'b':
			body_file = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || body_file == NULL) {
		cli_errx("usage: dengon update ALERT [--subject S] "
		    "--body-file F");
		return EXIT_USAGE;
	}
	alert = argv[optind];
	if (subject != NULL && ingest_check_subject(subject, err,
	    sizeof(err)) == -1) {
		cli_errx("--subject: %s", err);
		return EXIT_USAGE;
	}
	if ((body = read_body(body_file, err, sizeof(err))) == NULL ||
	    ingest_check_body(body, err, sizeof(err)) == -1 || *body == '\0') {
		cli_errx("--body-file: %s", body ? (*body ? err : "empty") :
		    err);
		free(body);
		return EXIT_USAGE;
	}
	if ((rc = cli_open_queue(cli)) != 0) {
		free(body);
		return rc;
	}
	rc = queue_alert_update(cli->queue, alert, subject, body,
	    cli_actor(actor, sizeof(actor)), queue_now(), &rev, &rearmed);
	free(body);
	if (rc != QUEUE_OK)
		return cli_queue_exit(cli, rc);
	printf("%s revision %d\n", alert, rev);
	fprintf(stderr, "alert %s: revision %d accepted; %lld recipients "
	    "already reached get it now, the others when their step comes\n",
	    alert, rev, (long long)rearmed);
	cli_wake(cli);
	return 0;
}

/* dengon cancel ALERT [--reason TEXT] */
static int
cmd_cancel(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 }
	};
	const char *reason = NULL;
	char err[256], actor[128];
	int64_t n = 0;
	int ch, rc;

	optind = 0;
	while ((ch = cli_getopt(argc, argv, "r:", opts)) != -1) {
		if (ch != 'r')
			return EXIT_USAGE;
		reason = optarg;
	}
	if (optind + 1 != argc) {
		cli_errx("usage: dengon cancel ALERT [--reason TEXT]");
		return EXIT_USAGE;
	}
	if (reason != NULL && ingest_check_subject(reason, err,
	    sizeof(err)) == -1) {
		cli_errx("--reason: %s", err);
		return EXIT_USAGE;
	}
	if ((rc = cli_open_queue(cli)) != 0)
		return rc;
	rc = queue_alert_cancel(cli->queue, argv[optind], reason,
	    cli_actor(actor, sizeof(actor)), queue_now(), &n);
	if (rc != QUEUE_OK)
		return cli_queue_exit(cli, rc);
	printf("%s cancelled: %lld deliveries stopped\n", argv[optind],
	    (long long)n);
	cli_wake(cli);
	return 0;
}

/* ---- confirm ---------------------------------------------------------------- */

static int
cmd_confirm(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "code", required_argument, NULL, 'C' },
		{ "via", required_argument, NULL, 'v' },
		{ "by", required_argument, NULL, 'b' },
		{ "note", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 }
	};
	static const char *vias[] = { "phone", "fax", "mail", "sms", "other" };
	struct queue_confirm cf;
	struct queue_confirm_result res;
	char err[512];
	int ch, rc, ok = 0;

	memset(&cf, 0, sizeof(cf));
	optind = 0;
	while ((ch = cli_getopt(argc, argv, "C:v:b:n:", opts)) != -1) {
		switch (ch) {
		case 'C':
			cf.code = optarg;
			break;
		case 'v':
			cf.via = optarg;
			break;
		case 'b':
			cf.by = optarg;
			break;
		case 'n':
			cf.note = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	if (cf.code == NULL && argc - optind == 2) {
		cf.alert = argv[optind];
		cf.recipient = argv[optind + 1];
	} else if (cf.code == NULL || argc != optind) {
		cli_errx("usage: dengon confirm (ALERT RECIPIENT | --code CODE) "
		    "--via phone|fax|mail|sms|other --by OPERATOR [--note TEXT]");
		return EXIT_USAGE;
	}
	for (size_t i = 0; cf.via != NULL && i < 5; i++)
		ok |= strcmp(cf.via, vias[i]) == 0;
	if (!ok) {
		cli_errx("confirm: --via must be phone, fax, mail, sms or other");
		return EXIT_USAGE;
	}
	if (cf.by == NULL || *cf.by == '\0') {
		cli_errx("confirm: --by OPERATOR is required (who took the "
		    "confirmation)");
		return EXIT_USAGE;
	}
	if (ingest_check_subject(cf.by, err, sizeof(err)) == -1 ||
	    (cf.note != NULL && *cf.note != '\0' &&
	    ingest_check_subject(cf.note, err, sizeof(err)) == -1)) {
		cli_errx("confirm: --by/--note: %s", err);
		return EXIT_USAGE;
	}
	if ((rc = cli_open_queue(cli)) != 0)
		return rc;
	rc = queue_confirm(cli->queue, &cf, &res);
	if (rc != QUEUE_OK)
		return cli_queue_exit(cli, rc);
	printf("%s %s %s%s\n", res.alert, res.recipient,
	    res.duplicate ? "already confirmed: recorded as a duplicate" :
	    "confirmed", res.late ? " (late)" : "");
	return 0;
}

/* ---- backup, spool ---------------------------------------------------------- */

static int
cmd_backup(struct cli *cli, int argc, char **argv)
{
	int rc;

	if (argc != 2) {
		cli_errx("usage: dengon backup FILE");
		return EXIT_USAGE;
	}
	if ((rc = cli_open_queue(cli)) != 0)
		return rc;
	if ((rc = queue_backup(cli->queue, argv[1])) == QUEUE_OK)
		fprintf(stderr, "backup written to %s\n", argv[1]);
	return cli_queue_exit(cli, rc);
}

static int
cmd_spool(struct cli *cli, int argc, char **argv)
{
	struct code_keyring kr = { 0 };
	struct spool_result res;
	char err[512];
	int rc;

	if (argc > 1) {
		cli_errx("spool takes no arguments");
		return EXIT_USAGE;
	}
	if ((rc = cli_open_queue(cli)) != 0)
		return rc;
	if (code_keyring_load(cli->conf->secret_file, &kr, err,
	    sizeof(err)) == -1) {
		cli_errx("%s", err);
		return EXIT_RUNTIME;
	}
	rc = spool_scan(cli->queue, cli->conf, &kr, &res);
	code_keyring_free(&kr);
	if (rc == -1)
		return EXIT_RUNTIME;
	printf("spool: %d accepted, %d rejected\n", res.accepted, res.rejected);
	if (res.accepted > 0)
		cli_wake(cli);
	return 0;
}

/* ---- render ------------------------------------------------------------------ */

struct render_ctx {
	struct cli			*cli;
	int				 round;		/* last sent, or -1 */
	const struct conf_channel	*ch;
	const struct channel_driver	*drv;
	void				*state;
	const char			*file;	/* render_file() to it */
	char				*out;
	size_t				 len;
	char				 err[512];
};

static int
render_work(const struct queue_work *w, void *arg)
{
	struct render_ctx *r = arg;
	struct channel_msg m;
	char mid[160], refs[160];

	memset(&m, 0, sizeof(m));
	if ((m.address = sched_address(w, r->ch)) == NULL) {
		snprintf(r->err, sizeof(r->err), "recipient %s has no address "
		    "for channel %s (%s)", w->recipient, r->ch->name,
		    conf_type_column(r->ch->type));
		return QUEUE_INVALID;
	}
	/* What the recipient got last; the next message if nothing yet. */
	if (r->round >= 0)
		m.round = r->round;
	else
		m.round = w->round;
	sched_message_id(r->cli->conf, w->token, w->revision, m.round, mid,
	    sizeof(mid));
	sched_message_id(r->cli->conf, w->token, 1, 0, refs, sizeof(refs));
	m.delivery = w->delivery;
	m.alert = w->alert;
	m.revision = w->revision;
	m.recipient = w->recipient;
	m.name = w->name;
	m.org = w->org;
	m.code = w->code;
	m.subject = w->subject;
	m.body = w->body;
	m.tlp = w->tlp;
	m.drill = w->drill;
	m.created = w->created;
	m.expires = w->expires;
	m.message_id = mid;
	m.references = (m.round > 0 || w->revision > 1) ? refs : NULL;
	if (r->file != NULL)
		return r->drv->render_file(r->state, &m, r->file, r->err,
		    sizeof(r->err)) == -1 ? QUEUE_INVALID : QUEUE_OK;
	if (r->drv->render(r->state, &m, &r->out, &r->len, r->err,
	    sizeof(r->err)) == -1)
		return QUEUE_INVALID;
	return QUEUE_OK;
}

/* queue_attempts_each() callback: the round of the latest attempt on the
 * channel being rendered. */
static int
render_round(const struct queue_attempt_info *a, void *arg)
{
	struct render_ctx *r = arg;

	if (strcmp(a->channel, r->ch->name) == 0 && a->round > r->round &&
	    a->notice == NULL)
		r->round = a->round;
	return 0;
}

static int
cmd_render(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "recipient", required_argument, NULL, 'r' },
		{ "channel", required_argument, NULL, 'C' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 }
	};
	struct render_ctx r;
	const char *recipient = NULL, *channel = NULL, *output = NULL;
	int64_t id;
	int ch, rc;
	FILE *fp;

	memset(&r, 0, sizeof(r));
	r.cli = cli;
	optind = 0;
	while ((ch = cli_getopt(argc, argv, "r:C:o:", opts)) != -1) {
		if (ch == 'r')
			recipient = optarg;
		else if (ch == 'C')
			channel = optarg;
		else if (ch == 'o')
			output = optarg;
		else
			return EXIT_USAGE;
	}
	if (argc - optind != 1 || recipient == NULL || channel == NULL) {
		cli_errx("usage: dengon render ALERT --recipient ID --channel "
		    "NAME [-o FILE]");
		return EXIT_USAGE;
	}
	if ((rc = cli_open_queue(cli)) != 0)
		return rc;
	if ((r.ch = conf_channel_find(cli->conf, channel)) == NULL) {
		cli_errx("render: no [channel %s] in %s", channel,
		    cli->conf->path);
		return EXIT_USAGE;
	}
	if ((r.drv = channel_driver_find(r.ch->type)) == NULL) {
		cli_errx("render: channel %s: type %s is not built yet",
		    channel, r.ch->type);
		return EXIT_USAGE;
	}
	if ((rc = queue_delivery_find(cli->queue, argv[optind], recipient,
	    &id)) != QUEUE_OK)
		return cli_queue_exit(cli, rc);
	if (r.drv->configure(r.ch, cli->conf, &r.state, r.err,
	    sizeof(r.err)) == -1) {
		cli_errx("render: channel %s: %s", channel, r.err);
		return EXIT_RUNTIME;
	}
	r.round = -1;
	/* A driver that writes files (fax pages) writes -o itself. */
	if (output != NULL && r.drv->render_file != NULL)
		r.file = output;
	if ((rc = queue_attempts_each(cli->queue, id, render_round, &r)) < 0) {
		r.drv->release(r.state);
		return cli_queue_exit(cli, rc);
	}
	rc = queue_work_get(cli->queue, id, render_work, &r);
	r.drv->release(r.state);
	if (rc == QUEUE_INVALID) {
		cli_errx("render: %s", r.err);
		return EXIT_USAGE;
	}
	if (rc != QUEUE_OK)
		return cli_queue_exit(cli, rc);
	if (r.file != NULL)
		return 0;
	fp = output ? fopen(output, "wb") : stdout;
	if (fp == NULL || fwrite(r.out, 1, r.len, fp) != r.len ||
	    (output && fclose(fp) != 0) || fflush(stdout) != 0) {
		cli_errx("render: writing %s: %s", output ? output : "stdout",
		    strerror(errno));
		free(r.out);
		return EXIT_RUNTIME;
	}
	free(r.out);
	return 0;
}

static int
cmd_config_reference(struct cli *cli, int argc, char **argv)
{
	conf_write_reference(stdout);
	return 0;
}

/* ---- main --------------------------------------------------------------------- */

static const struct {
	const char	*name;
	int		(*fn)(struct cli *, int, char **);
	const char	*usage;
} commands[] = {
	{ "init", cmd_init, "create the queue, the secret key and the spool" },
	{ "check", cmd_check, "validate the configuration and the contacts" },
	{ "contacts", cmd_contacts, "import [FILE.csv] [--encoding E] | list "
	    "[--group G] [--json]" },
	{ "send", cmd_send, "--to TARGETS [--subject S] [--body-file F|-] "
	    "[--tlp L] [--policy P] [--expires D] [--drill] [--json]" },
	{ "update", cmd_update, "ALERT [--subject S] --body-file F: a new "
	    "revision" },
	{ "cancel", cmd_cancel, "ALERT [--reason TEXT]: stop every pending "
	    "attempt" },
	{ "confirm", cmd_confirm, "(ALERT RECIPIENT | --code CODE) --via V "
	    "--by OPERATOR [--note T]" },
	{ "status", cli_status, "[ALERT] [--watch] [--json] [--show-codes]" },
	{ "queue", cli_queue, "[--json]" },
	{ "channels", cli_channels, "[--json] [--ports]: each channel's health "
	    "and backlog; --ports: the serial ports found" },
	{ "render", cmd_render, "ALERT --recipient ID --channel NAME "
	    "[-o FILE]" },
	{ "backup", cmd_backup, "FILE" },
	{ "spool", cmd_spool, "accept the files waiting in SPOOL/incoming" },
	{ "config-reference", cmd_config_reference,
	    "print the configuration reference (Markdown)" },
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: dengon [-c FILE] COMMAND ...\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(fp, "  %-17s %s\n", commands[i].name, commands[i].usage);
	fprintf(fp, "\nThe configuration is -c FILE, else $DENGON_CONF, else "
	    "/etc/dengon/dengon.conf.\n");
}

int
main(int argc, char **argv)
{
	struct cli cli = { 0 };
	int ch, rc;

	cli.conf_path = conf_default_path();
	while ((ch = getopt(argc, argv, "+c:h")) != -1) {
		switch (ch) {
		case 'c':
			cli.conf_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		/* Subcommands parse their own options from argv[0]. */
		optind = 0;
		rc = commands[i].fn(&cli, argc, argv);
		if (cli.queue != NULL)
			queue_close(cli.queue);
		conf_free(cli.conf);
		return rc;
	}
	cli_errx("unknown command '%s' (dengon -h lists them)", argv[0]);
	return EXIT_USAGE;
}
