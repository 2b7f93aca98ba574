/*
 * cli_status.c - the operator tool's read-only views: status (with --watch
 * and --json) and queue.
 *
 * Nothing here writes to the queue.  --watch re-reads the queue once a
 * second: on a terminal it redraws a screen of counts and bars; otherwise
 * it prints one plain line each time the counts change, so that it can be
 * logged or piped.  It ends when every delivery is in a final state.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "channels/serial.h"
#include "relay/cli.h"
#include "relay/relay.h"

#define BAR_WIDTH	32

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	interrupted = sig;
}

/* Number of deliveries not yet in a final state. */
static int64_t
open_count(const struct queue_alert_info *a)
{
	return a->counts[QUEUE_PENDING] + a->counts[QUEUE_SENT] +
	    a->counts[QUEUE_DELIVERED];
}

/* A bar of BAR_WIDTH cells, n of total filled. */
static void
print_bar(FILE *fp, int64_t n, int64_t total, int color)
{
	int fill = total > 0 ? (int)((n * BAR_WIDTH + total / 2) / total) : 0;

	if (n > 0 && fill == 0)
		fill = 1;
	for (int i = 0; i < BAR_WIDTH; i++)
		fputs(i < fill ? (color ? "\033[32m█\033[0m" : "#") :
		    (color ? "·" : "."), fp);
}

/* ---- status (one alert) ------------------------------------------------------ */

struct status_ctx {
	struct queue	*q;
	struct json	*j;
	int		 show_codes;
	int		 listed;
	int		 max_list;
	int64_t		 open;
};

static int
attempt_json(const struct queue_attempt_info *a, void *arg)
{
	struct json *j = arg;

	json_object_begin(j);
	json_key(j, "channel"); json_string(j, a->channel);
	json_key(j, "address"); json_string(j, a->address);
	json_key(j, "started"); json_time(j, a->started);
	json_key(j, "finished"); json_time(j, a->finished);
	json_key(j, "outcome"); json_string(j, a->outcome);
	json_key(j, "evidence"); json_string(j, a->evidence);
	json_key(j, "error"); json_string(j, a->error);
	json_key(j, "round"); json_int(j, a->round);
	json_key(j, "message_id"); json_string(j, a->message_id);
	json_key(j, "notice"); json_string(j, a->notice);
	json_object_end(j);
	return 0;
}

static int
delivery_json(const struct queue_delivery_info *d, void *arg)
{
	struct status_ctx *ctx = arg;
	struct json *j = ctx->j;
	char code[CODE_LEN + 2];
	int rc;

	json_object_begin(j);
	json_key(j, "recipient"); json_string(j, d->recipient);
	json_key(j, "name"); json_string(j, d->name);
	json_key(j, "state"); json_string(j, queue_state_name(d->state));
	json_key(j, "step"); json_int(j, d->step + 1);
	json_key(j, "next_action"); json_time(j, d->next_action);
	json_key(j, "policy"); json_string(j, d->policy);
	json_key(j, "confirmed_via"); json_string(j, d->confirmed_via);
	json_key(j, "confirmed_by"); json_string(j, d->confirmed_by);
	json_key(j, "confirmed_at"); json_time(j, d->confirmed_at);
	json_key(j, "confirmed_from"); json_string(j, d->confirmed_from);
	json_key(j, "foreign_sender"); json_bool(j, d->foreign);
	json_key(j, "displayed_at"); json_time(j, d->displayed);
	json_key(j, "late"); json_bool(j, d->late);
	if (ctx->show_codes) {
		code_format(d->code, code);
		json_key(j, "code");
		json_string(j, code);
	}
	json_key(j, "attempts");
	json_array_begin(j);
	rc = queue_attempts_each(ctx->q, d->id, attempt_json, j);
	json_array_end(j);
	json_object_end(j);
	return rc < 0 ? rc : 0;
}

static void
counts_json(struct json *j, const struct queue_alert_info *a)
{
	for (int s = 0; s < QUEUE_NSTATES; s++) {
		json_key(j, queue_state_name((enum queue_state)s));
		json_int(j, a->counts[s]);
	}
}

static int
status_json(struct queue *q, const struct queue_alert_info *a, int show_codes)
{
	struct json j;
	struct status_ctx ctx = { .q = q, .j = &j, .show_codes = show_codes };
	int rc;

	json_init(&j, stdout);
	json_object_begin(&j);
	json_key(&j, "alert"); json_string(&j, a->id);
	json_key(&j, "revision"); json_int(&j, a->revision);
	json_key(&j, "kind"); json_string(&j, a->kind);
	json_key(&j, "drill"); json_bool(&j, a->drill);
	json_key(&j, "tlp"); json_string(&j, queue_tlp_name(a->tlp));
	json_key(&j, "subject"); json_string(&j, a->subject);
	json_key(&j, "policy"); json_string(&j, a->policy);
	json_key(&j, "created"); json_time(&j, a->created);
	json_key(&j, "expires"); json_time(&j, a->expires);
	json_key(&j, "recipients"); json_int(&j, a->recipients);
	json_key(&j, "counts");
	json_object_begin(&j);
	counts_json(&j, a);
	json_object_end(&j);
	counts_json(&j, a);
	json_key(&j, "deliveries");
	json_array_begin(&j);
	rc = queue_deliveries_each(q, a->id, delivery_json, &ctx);
	json_array_end(&j);
	json_object_end(&j);
	json_end(&j);
	return rc < 0 ? rc : QUEUE_OK;
}

/* One line per delivery still open (or failed), at most ctx->max_list. */
static int
delivery_line(const struct queue_delivery_info *d, void *arg)
{
	struct status_ctx *ctx = arg;
	char next[64] = "-", code[CODE_LEN + 2] = "";

	if (d->state == QUEUE_CONFIRMED || d->state == QUEUE_CANCELLED)
		return 0;
	if (ctx->listed++ >= ctx->max_list)
		return 0;
	if (d->next_action != 0)
		relay_time_local(d->next_action, next, sizeof(next));
	if (ctx->show_codes)
		code_format(d->code, code);
	printf("  %-16s %-10s step %-2d next %-22s %s%s%s\n", d->recipient,
	    queue_state_name(d->state), d->step + 1, next, d->name,
	    *code ? "  " : "", code);
	return 0;
}

static int
status_text(struct queue *q, const struct queue_alert_info *a, int show_codes,
    int color)
{
	struct queue_channel_count cc[16];
	struct status_ctx ctx = { .q = q, .show_codes = show_codes,
	    .max_list = 20 };
	char created[64], expires[64];
	int n, rc;

	relay_time_local(a->created, created, sizeof(created));
	relay_time_local(a->expires, expires, sizeof(expires));
	printf("alert %s  revision %d  %s%s  TLP:%s\n", a->id, a->revision,
	    a->kind, a->drill ? "  DRILL" : "", queue_tlp_name(a->tlp));
	printf("subject   %s\n", a->subject);
	printf("created   %s   expires %s\n", created, expires);
	printf("recipients %lld\n\n", (long long)a->recipients);
	for (int s = 0; s < QUEUE_NSTATES; s++) {
		printf("  %-10s ", queue_state_name((enum queue_state)s));
		print_bar(stdout, a->counts[s], a->recipients, color);
		printf(" %6lld  %3lld%%\n", (long long)a->counts[s],
		    a->recipients ? (long long)(a->counts[s] * 100 /
		    a->recipients) : 0LL);
	}
	n = queue_channel_counts(q, a->id, cc, 16);
	if (n < 0)
		return QUEUE_ERR;
	if (n > 0)
		printf("\nattempts per channel\n");
	for (int i = 0; i < n; i++) {
		int64_t total = cc[i].inflight + cc[i].ok + cc[i].tempfail +
		    cc[i].permfail;

		printf("  %-10s ", cc[i].channel);
		print_bar(stdout, cc[i].ok, total, color);
		printf(" ok %lld  tempfail %lld  permfail %lld  in flight %lld\n",
		    (long long)cc[i].ok, (long long)cc[i].tempfail,
		    (long long)cc[i].permfail, (long long)cc[i].inflight);
	}
	if (open_count(a) + a->counts[QUEUE_FAILED] + a->counts[QUEUE_EXPIRED] == 0)
		return QUEUE_OK;
	printf("\nnot confirmed\n");
	rc = queue_deliveries_each(q, a->id, delivery_line, &ctx);
	if (ctx.listed > ctx.max_list)
		printf("  ... and %d more (dengon status %s --json lists all)\n",
		    ctx.listed - ctx.max_list, a->id);
	return rc < 0 ? rc : QUEUE_OK;
}

/* ---- status (all recent alerts) ---------------------------------------------- */

struct list_ctx {
	struct json	*j;
	int64_t		 open;
};

static int
alert_row(const struct queue_alert_info *a, void *arg)
{
	struct list_ctx *ctx = arg;
	char created[64];

	ctx->open += open_count(a);
	if (ctx->j != NULL) {
		struct json *j = ctx->j;

		json_object_begin(j);
		json_key(j, "alert"); json_string(j, a->id);
		json_key(j, "revision"); json_int(j, a->revision);
		json_key(j, "kind"); json_string(j, a->kind);
		json_key(j, "drill"); json_bool(j, a->drill);
		json_key(j, "tlp"); json_string(j, queue_tlp_name(a->tlp));
		json_key(j, "subject"); json_string(j, a->subject);
		json_key(j, "created"); json_time(j, a->created);
		json_key(j, "expires"); json_time(j, a->expires);
		json_key(j, "recipients"); json_int(j, a->recipients);
		json_key(j, "counts");
		json_object_begin(j);
		counts_json(j, a);
		json_object_end(j);
		json_object_end(j);
		return 0;
	}
	relay_time_local(a->created, created, sizeof(created));
	printf("%-16s %-20s %-12s %5lld %5lld %5lld %5lld %5lld %5lld  %s%s\n",
	    a->id, created, queue_tlp_name(a->tlp), (long long)a->recipients,
	    (long long)a->counts[QUEUE_CONFIRMED],
	    (long long)a->counts[QUEUE_DELIVERED],
	    (long long)a->counts[QUEUE_SENT],
	    (long long)a->counts[QUEUE_PENDING],
	    (long long)(a->counts[QUEUE_FAILED] + a->counts[QUEUE_EXPIRED]),
	    a->drill ? "【訓練】" : "", a->subject);
	return 0;
}

static int
status_list(struct queue *q, int json, int64_t *open)
{
	struct json j;
	struct list_ctx ctx = { .j = json ? &j : NULL };
	int rc;

	if (json) {
		json_init(&j, stdout);
		json_array_begin(&j);
	} else
		printf("%-16s %-20s %-12s %5s %5s %5s %5s %5s %5s  %s\n", "ALERT",
		    "CREATED", "TLP", "RCPT", "CONF", "DELIV", "SENT", "PEND",
		    "FAIL", "SUBJECT");
	rc = queue_alerts_each(q, 20, alert_row, &ctx);
	if (json) {
		json_array_end(&j);
		json_end(&j);
	}
	*open = ctx.open;
	return rc < 0 ? rc : QUEUE_OK;
}

/* ---- --watch -------------------------------------------------------------------- */

/* One plain line of counts, for logs and pipes. */
static void
watch_line(const struct queue_alert_info *a)
{
	char now[64];

	relay_time_rfc3339(queue_now(), now, sizeof(now));
	printf("%s %s", now, a->id);
	for (int s = 0; s < QUEUE_NSTATES; s++)
		printf(" %s=%lld", queue_state_name((enum queue_state)s),
		    (long long)a->counts[s]);
	printf("\n");
	fflush(stdout);
}

static int
status_watch(struct cli *cli, const char *alert, int show_codes)
{
	struct queue_alert_info a, prev;
	int tty = isatty(STDOUT_FILENO), rc, first = 1;
	int64_t open = 1;

	memset(&prev, 0, sizeof(prev));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!interrupted) {
		if (alert == NULL) {
			if (tty)
				printf("\033[H\033[2J");
			if ((rc = status_list(cli->queue, 0, &open)) != QUEUE_OK)
				return cli_queue_exit(cli, rc);
			fflush(stdout);
		} else {
			if ((rc = queue_alert_get(cli->queue, alert, &a)) != QUEUE_OK)
				return cli_queue_exit(cli, rc);
			open = open_count(&a);
			if (tty) {
				printf("\033[H\033[2J");
				status_text(cli->queue, &a, show_codes, 1);
				fflush(stdout);
			} else if (first || memcmp(a.counts, prev.counts,
			    sizeof(a.counts)) != 0)
				watch_line(&a);
			memcpy(prev.counts, a.counts, sizeof(a.counts));
			queue_alert_info_free(&a);
		}
		first = 0;
		if (open == 0)
			break;
		sleep(1);
	}
	if (tty)
		printf(open == 0 ? "\nevery delivery is final\n" :
		    "\ninterrupted\n");
	return 0;
}

int
cli_status(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", no_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "show-codes", no_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 }
	};
	struct queue_alert_info a;
	const char *alert = NULL;
	int ch, rc, watch = 0, json = 0, show_codes = 0;
	int64_t open;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "wjS", opts, NULL)) != -1) {
		switch (ch) {
		case 'w': watch = 1; break;
		case 'j': json = 1; break;
		case 'S': show_codes = 1; break;
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind > 1) {
		cli_errx("usage: dengon status [ALERT] [--watch] [--json] "
		    "[--show-codes]");
		return EXIT_USAGE;
	}
	if (optind < argc)
		alert = argv[optind];
	if (watch && json) {
		cli_errx("status: --watch and --json do not go together");
		return EXIT_USAGE;
	}
	if ((rc = cli_open_queue(cli)) != 0)
		return rc;
	if (watch)
		return status_watch(cli, alert, show_codes);
	if (alert == NULL)
		return cli_queue_exit(cli, status_list(cli->queue, json, &open));
	if ((rc = queue_alert_get(cli->queue, alert, &a)) != QUEUE_OK)
		return cli_queue_exit(cli, rc);
	if (json)
		rc = status_json(cli->queue, &a, show_codes);
	else
		rc = status_text(cli->queue, &a, show_codes, 0);
	queue_alert_info_free(&a);
	return cli_queue_exit(cli, rc);
}

/* ---- queue ------------------------------------------------------------------------ */

int
cli_queue(struct cli *cli, int argc, char **argv)
{
	struct queue_backlog b[64];
	int n, rc, json = 0;

	if (argc == 2 && strcmp(argv[1], "--json") == 0)
		json = 1;
	else if (argc != 1) {
		cli_errx("usage: dengon queue [--json]");
		return EXIT_USAGE;
	}
	if ((rc = cli_open_queue(cli)) != 0)
		return rc;
	if ((n = queue_backlog(cli->queue, cli->conf, b, 64)) < 0)
		return cli_queue_exit(cli, QUEUE_ERR);
	if (json) {
		struct json j;

		json_init(&j, stdout);
		json_object_begin(&j);
		json_key(&j, "channels");
		json_array_begin(&j);
		for (int i = 0; i < n; i++) {
			json_object_begin(&j);
			json_key(&j, "channel"); json_string(&j, b[i].channel);
			json_key(&j, "waiting"); json_int(&j, b[i].waiting);
			json_key(&j, "due"); json_int(&j, b[i].due);
			json_key(&j, "inflight"); json_int(&j, b[i].inflight);
			json_object_end(&j);
		}
		json_array_end(&j);
		json_object_end(&j);
		json_end(&j);
		return 0;
	}
	printf("%-16s %8s %8s %9s\n", "CHANNEL", "WAITING", "DUE", "IN FLIGHT");
	for (int i = 0; i < n; i++)
		printf("%-16s %8lld %8lld %9lld\n", b[i].channel,
		    (long long)b[i].waiting, (long long)b[i].due,
		    (long long)b[i].inflight);
	if (n == 0)
		printf("(no work waiting)\n");
	return 0;
}

/* ---- channels ------------------------------------------------------------------- */

struct health_ctx {
	const char		*name;	/* as recorded: "mail", "inbox:replies" */
	struct queue_health	 h;
	int			 found;
};

static int
health_find(const struct queue_health *h, void *arg)
{
	struct health_ctx *ctx = arg;

	if (strcmp(h->name, ctx->name) != 0)
		return 0;
	ctx->h = *h;
	ctx->found = 1;
	return 1;
}

/* One row of `dengon channels`: a channel or an inbox (backlog < 0). */
static int
channel_row(struct cli *cli, struct json *j, const char *name,
    const char *type, int64_t backlog)
{
	struct health_ctx ctx = { .name = name };
	const char *state;
	char ok[64] = "-", errat[64] = "", bl[24] = "-";

	if (queue_health_each(cli->queue, health_find, &ctx) < 0)
		return -1;
	state = !ctx.found ? "unknown" : ctx.h.up ? "up" : "down";
	if (j != NULL) {
		json_object_begin(j);
		json_key(j, "name"); json_string(j, name);
		json_key(j, "type"); json_string(j, type);
		json_key(j, "state"); json_string(j, state);
		json_key(j, "since"); json_time(j, ctx.found ? ctx.h.since : 0);
		json_key(j, "last_success"); json_time(j, ctx.h.last_ok);
		json_key(j, "last_error");
		json_string(j, ctx.h.last_error[0] ? ctx.h.last_error : NULL);
		json_key(j, "last_error_at"); json_time(j, ctx.h.last_error_at);
		json_key(j, "backlog");
		if (backlog >= 0)
			json_int(j, backlog);
		else
			json_null(j);
		json_object_end(j);
		return 0;
	}
	if (ctx.h.last_ok)
		relay_time_local(ctx.h.last_ok, ok, sizeof(ok));
	if (ctx.h.last_error_at)
		relay_time_local(ctx.h.last_error_at, errat, sizeof(errat));
	if (backlog >= 0)
		snprintf(bl, sizeof(bl), "%lld", (long long)backlog);
	printf("%-16s %-6s %-8s %-22s %8s  %s%s%s\n", name, type, state, ok,
	    bl, errat, *errat ? " " : "", ctx.h.last_error);
	return 0;
}

/* `dengon channels --ports`: the serial ports libserialport finds. */
static int
list_ports(struct json *j)
{
	struct serial_port_info *v;
	size_t n;
	char err[256];

	if (serial_ports(&v, &n, err, sizeof(err)) == -1) {
		cli_errx("%s", err);
		return EXIT_RUNTIME;
	}
	if (j != NULL) {
		json_init(j, stdout);
		json_object_begin(j);
		json_key(j, "ports");
		json_array_begin(j);
	} else if (n == 0)
		printf("no serial ports found (a modem on a serial server is "
		    "configured as tcp:HOST:PORT)\n");
	else
		printf("%-24s %-10s %-9s %s\n", "PORT", "TRANSPORT", "USB ID",
		    "DESCRIPTION");
	for (size_t i = 0; i < n; i++) {
		char usb[16] = "-";

		if (v[i].usb_vid || v[i].usb_pid)
			snprintf(usb, sizeof(usb), "%04x:%04x",
			    (unsigned)v[i].usb_vid & 0xffff,
			    (unsigned)v[i].usb_pid & 0xffff);
		if (j == NULL) {
			printf("%-24s %-10s %-9s %s\n", v[i].name,
			    v[i].transport, usb, v[i].description);
			continue;
		}
		json_object_begin(j);
		json_key(j, "name"); json_string(j, v[i].name);
		json_key(j, "transport"); json_string(j, v[i].transport);
		json_key(j, "usb_id"); json_string(j, v[i].usb_vid ||
		    v[i].usb_pid ? usb : NULL);
		json_key(j, "description"); json_string(j, v[i].description);
		json_object_end(j);
	}
	if (j != NULL) {
		json_array_end(j);
		json_object_end(j);
		json_end(j);
	}
	free(v);
	return 0;
}

/* The modem rows of sms channel ch: one per device ("CHANNEL@DEVICE"). */
static int
modem_rows(struct cli *cli, struct json *jp, const struct conf_channel *ch)
{
	char **dev, name[256];
	size_t n = conf_split_list(conf_channel_get(ch, "devices"), &dev);
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		snprintf(name, sizeof(name), "%s@%s", ch->name, dev[i]);
		rc = channel_row(cli, jp, name, "modem", -1);
	}
	conf_free_list(dev, n);
	return rc;
}

int
cli_channels(struct cli *cli, int argc, char **argv)
{
	struct queue_backlog b[64];
	struct json j, *jp = NULL;
	char name[96];
	int n, rc, ports = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			jp = &j;
		else if (strcmp(argv[i], "--ports") == 0)
			ports = 1;
		else {
			cli_errx("usage: dengon channels [--json] [--ports]");
			return EXIT_USAGE;
		}
	}
	if (ports)
		return list_ports(jp);
	if ((rc = cli_open_queue(cli)) != 0)
		return rc;
	if ((n = queue_backlog(cli->queue, cli->conf, b, 64)) < 0)
		return cli_queue_exit(cli, QUEUE_ERR);
	if (jp != NULL) {
		json_init(jp, stdout);
		json_object_begin(jp);
		json_key(jp, "channels");
		json_array_begin(jp);
	} else
		printf("%-16s %-6s %-8s %-22s %8s  %s\n", "CHANNEL", "TYPE",
		    "STATE", "LAST SUCCESS", "BACKLOG", "LAST ERROR");
	for (size_t i = 0; i < cli->conf->nchannels; i++) {
		const struct conf_channel *ch = &cli->conf->channels[i];
		int64_t backlog = 0;

		for (int k = 0; k < n; k++)
			if (strcmp(b[k].channel, ch->name) == 0)
				backlog = b[k].waiting;
		if (channel_row(cli, jp, ch->name, ch->type, backlog) == -1)
			return cli_queue_exit(cli, QUEUE_ERR);
	}
	if (jp != NULL) {
		json_array_end(jp);
		json_key(jp, "inboxes");
		json_array_begin(jp);
	}
	for (size_t i = 0; i < cli->conf->ninboxes; i++) {
		snprintf(name, sizeof(name), "inbox:%s",
		    cli->conf->inboxes[i].name);
		if (channel_row(cli, jp, name, cli->conf->inboxes[i].type,
		    -1) == -1)
			return cli_queue_exit(cli, QUEUE_ERR);
	}
	if (jp != NULL) {
		json_array_end(jp);
		json_key(jp, "modems");
		json_array_begin(jp);
	}
	for (size_t i = 0; i < cli->conf->nchannels; i++)
		if (strcmp(cli->conf->channels[i].type, "sms") == 0 &&
		    modem_rows(cli, jp, &cli->conf->channels[i]) == -1)
			return cli_queue_exit(cli, QUEUE_ERR);
	if (jp != NULL) {
		json_array_end(jp);
		json_object_end(jp);
		json_end(jp);
	}
	return 0;
}
