/*
 * cli.h - the operator tool's commands (private to dengon).
 *
 * Each command is a function taking its own argv and the global options,
 * returning the process exit status of CONTRACT.md: 0 success, 1 runtime
 * failure, 2 invalid usage or input, 3 unknown alert or recipient,
 * 4 refused.
 */
#ifndef DENGON_CLI_H
#define DENGON_CLI_H

#include "conf/conf.h"
#include "queue/queue.h"

enum cli_exit {
	EXIT_RUNTIME	= 1,
	EXIT_USAGE	= 2,
	EXIT_UNKNOWN	= 3,
	EXIT_REFUSED	= 4
};

struct cli {
	const char	*conf_path;	/* -c, else DENGON_CONF, else default */
	struct conf	*conf;		/* loaded by cli_load_conf() */
	struct queue	*queue;		/* opened by cli_open_queue() */
};

/* Load the configuration; on errors print them and return EXIT_USAGE. */
int cli_load_conf(struct cli *cli);
/* Open the existing queue; on failure print why and return EXIT_RUNTIME. */
int cli_open_queue(struct cli *cli);
/* Map a queue result to an exit status, printing queue_errmsg() if not OK. */
int cli_queue_exit(struct cli *cli, int rc);
/* Print "dengon: " and a message to stderr. */
void cli_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

int cli_status(struct cli *cli, int argc, char **argv);
int cli_queue(struct cli *cli, int argc, char **argv);
int cli_channels(struct cli *cli, int argc, char **argv);

#endif /* DENGON_CLI_H */
