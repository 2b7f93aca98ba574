/*
 * smtp.h - the SMTP engine of channels/smtp.c, shared by the mail drivers.
 *
 * Private to channels/: smtp.c (internet mail) and lgwan.c (closed-network
 * mail) are two profiles of one engine.  The engine reads the keys both
 * channel types share (host, port, tls, tls_verify, ca_file, user,
 * password_file, from, reply_to, timeout) into an opaque struct smtp_conf,
 * and runs one libESMTP session over a batch of messages, each rendered by
 * a function the driver gives.  The session only ever talks to the host
 * and port of the struct smtp_conf it is given: a driver decides where its
 * mail goes by the configuration it passes, and by nothing else.
 */
#ifndef DENGON_SMTP_H
#define DENGON_SMTP_H

#include <stddef.h>

#include "channels/channel.h"
#include "channels/mail.h"

#define SMTP_MAX_BATCH	50		/* messages per session */

struct smtp_conf;

/*
 * Read the shared keys of ch (port defaults to default_port) and the AUTH
 * password into an allocated *out (free with smtp_conf_free()).  0, or -1
 * with the reason in err (never the password).
 */
int	smtp_conf_new(const struct conf_channel *ch, const struct conf *relay,
	    const char *default_port, struct smtp_conf **out, char *err,
	    size_t errlen);
void	smtp_conf_free(struct smtp_conf *cf);

/* What mail.c needs from the channel (from, reply_to, relay, language);
 * the strings are borrowed from cf, the charset is NULL (UTF-8). */
struct mail_opts smtp_conf_mail_opts(const struct smtp_conf *cf);

/* Render m for the session: the message as sent (CRLF lines) in an
 * allocated *out (the caller frees it).  -1 with err: this message can
 * never be sent as it is (it is reported permfail with err). */
typedef int (*smtp_render_fn)(void *arg, const struct channel_msg *m,
    char **out, size_t *len, char *err, size_t errlen);

/*
 * One session to cf's server carrying msgs[0..n), each rendered by
 * render(rarg, ...): the contract of struct channel_driver's send()
 * (report() exactly once per message; -1 when the channel is down).
 */
int	smtp_session(const struct smtp_conf *cf, const struct channel_msg *msgs,
	    size_t n, smtp_render_fn render, void *rarg,
	    channel_report_fn report, void *arg, char *err, size_t errlen);

#endif /* DENGON_SMTP_H */
