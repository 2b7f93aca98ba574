/*
 * conf_file.c - read and validate the configuration file.
 *
 * What it does: conf_load() reads the INI file of CONTRACT.md
 * ("Configuration file") into a struct conf, checking every key of every
 * section against the key tables below.  conf_write_reference() prints
 * the same tables as Markdown (docs/configuration.md), so the reference
 * cannot drift from the parser.  conf_parse_steps() reads a policy's
 * steps.
 *
 * How: libinih splits "key = value", through ini_parse_stream() and our
 * own line reader.  The reader sees every raw line first: it counts lines
 * (Debian's libinih gives the handler no line number), strips comments,
 * rejects what is neither a comment, a blank, a [section] nor a
 * key = value line, tracks the current section (libinih says nothing
 * about an empty section), and hands libinih only key = value lines, one
 * per physical line, so that libinih's line count stays ours.  Sections
 * and keys are collected first and validated afterwards, because a
 * channel's "type" (which picks its key table) may come after its other
 * keys.
 *
 * Syntax promised to operators (the reference repeats it):
 *   - a line whose first non-blank character is # or ; is a comment;
 *   - elsewhere a # or ; preceded by a space or tab starts a comment, so
 *     a value cannot contain " #" or " ;" (it may contain "a#b");
 *   - no continuation lines: a value ends with its line;
 *   - a line holds at most CONF_LINE_MAX bytes; a longer one is an error,
 *     never split or cut;
 *   - a UTF-8 BOM and CRLF line ends are accepted.
 *
 * State: none between calls.  Debian's libinih keeps its settings in
 * process-wide variables; conf_load() sets them for its call and restores
 * them, so it must not run in two threads at once.
 *
 * Promises: every problem is reported, each as "FILE:LINE: message"
 * (file-level ones as "FILE: message"), sorted by line; a struct conf is
 * returned only when there is no error.  Messages name keys, values and
 * paths, never the contents of a file.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

#define CONF_LINE_MAX	4000	/* bytes in a line, without its line end */
#define SECT_NAME_MAX	32	/* [channel NAME], [inbox NAME], [policy NAME] */
#define RELAY_NAME_MAX	64
#define ZONEINFO	"/usr/share/zoneinfo"

#define CUR_NONE	(-1)	/* before the first section */
#define CUR_SKIP	(-2)	/* in a section that was rejected */

/* ---- key tables ----------------------------------------------------- */

enum ktype {
	KT_STRING,	/* any text */
	KT_RELAYNAME,	/* 1-64 of A-Z a-z 0-9 . - */
	KT_POLICYREF,	/* a section name */
	KT_HOST,	/* host name, IPv4 or IPv6 address */
	KT_PORT,	/* 1-65535 */
	KT_BOOL,
	KT_DURATION,	/* at least min seconds */
	KT_SIZE,	/* at least min bytes */
	KT_ENUM,	/* one of arg, "a|b|c" */
	KT_INT,		/* min..max */
	KT_BAUD,
	KT_MAILBOX,	/* "Name <addr>" or addr */
	KT_DOMAINS,	/* comma-separated domain names */
	KT_DEVICES,	/* comma-separated /dev/... or tcp:HOST:PORT */
	KT_PINFILES,	/* comma-separated files or "-", one per device */
	KT_FILE,	/* resolved; must be an existing readable file */
	KT_CAFILE,	/* resolved; must exist only when it is used */
	KT_PATH,	/* resolved; need not exist */
	KT_SOCKET,	/* resolved; fits in sun_path */
	KT_LOG,		/* syslog, stderr or a path */
	KT_TIMEZONE,	/* a file under ZONEINFO */
	KT_GROUP,	/* a group in the group database, or empty */
	KT_CCODE,	/* country calling code */
	KT_STEPS	/* conf_parse_steps() */
};

#define K_REQ	0x1	/* must be present */
#define K_EMPTY	0x2	/* an empty value is allowed */

struct key {
	const char	*name;
	enum ktype	 type;
	const char	*def;		/* applied when absent; NULL: none */
	int		 flags;
	const char	*arg;		/* KT_ENUM: "a|b|c" */
	int64_t		 min, max;	/* KT_INT range, KT_DURATION/SIZE minimum */
	const char	*doc_def;	/* the default as documented, if not def */
	const char	*help;		/* one line; no '|' (Markdown tables) */
};

static const struct key relay_keys[] = {
	{ .name = "name", .type = KT_RELAYNAME, .def = "dengon",
	  .help = "this relay's name, used in Message-IDs, the CAP sender and "
	  "reports; give each relay its own" },
	{ .name = "queue", .type = KT_PATH, .def = "/var/lib/dengon/queue.db",
	  .help = "the queue database (SQLite)" },
	{ .name = "secret_file", .type = KT_PATH,
	  .def = "/etc/dengon/secret.key",
	  .help = "the relay secret behind confirmation codes; `dengon init` "
	  "creates it, so it need not exist yet" },
	{ .name = "socket", .type = KT_SOCKET,
	  .def = "/run/dengon/dengon.sock",
	  .help = "the Unix socket on which dengond listens for the CLI" },
	{ .name = "spool", .type = KT_PATH, .def = "/var/spool/dengon",
	  .help = "the spool drop folder (`tmp/`, `incoming/`, `done/`, "
	  "`rejected/`)" },
	{ .name = "contacts", .type = KT_PATH,
	  .def = "/etc/dengon/contacts.csv",
	  .help = "the contact directory that `dengon contacts import` reads "
	  "by default" },
	{ .name = "default_policy", .type = KT_POLICYREF, .def = "standard",
	  .help = "the policy when neither `--policy` nor the recipient's "
	  "`policy` column names one; a [policy NAME] must exist" },
	{ .name = "language", .type = KT_ENUM, .def = "ja", .arg = "ja|en",
	  .help = "the wording recipients read" },
	{ .name = "timezone", .type = KT_TIMEZONE, .doc_def = "the system's",
	  .help = "the time zone of renderings, e.g. `Asia/Tokyo`" },
	{ .name = "country_code", .type = KT_CCODE, .def = "81",
	  .help = "national phone numbers (leading 0) are stored as "
	  "+CC followed by the number without its 0" },
	{ .name = "log", .type = KT_LOG, .def = "syslog",
	  .help = "where dengond logs; a file path must contain a `/` "
	  "(write `./dengon.log` for a file beside this one)" },
	{ .name = "group", .type = KT_GROUP, .def = "dengon", .flags = K_EMPTY,
	  .help = "the group that may use the CLI (database and socket are "
	  "0660 in it); it must exist; empty: leave the files' group alone" },
	{ .name = "retry_min", .type = KT_DURATION, .def = "30s", .min = 1,
	  .help = "the first wait before retrying a delivery that failed "
	  "temporarily; each further failure doubles it" },
	{ .name = "retry_max", .type = KT_DURATION, .def = "30m", .min = 1,
	  .help = "the longest wait between retries (the bound of the "
	  "exponential backoff)" },
	{ .name = NULL }
};

#define CHANNEL_TYPES	"smtp|lgwan|fax|sms"
#define INBOX_TYPES	"imap|pop3"

static const struct key smtp_keys[] = {
	{ .name = "type", .type = KT_ENUM, .flags = K_REQ,
	  .arg = CHANNEL_TYPES,
	  .help = "`smtp`: internet mail to the CSV column `mail`" },
	{ .name = "host", .type = KT_HOST, .flags = K_REQ,
	  .help = "the SMTP server (submission smarthost)" },
	{ .name = "port", .type = KT_PORT, .def = "587",
	  .help = "its port" },
	{ .name = "tls", .type = KT_ENUM, .def = "starttls",
	  .arg = "starttls|none",
	  .help = "`starttls`: required before anything is sent; `none`: "
	  "plain text" },
	{ .name = "tls_verify", .type = KT_BOOL, .def = "yes",
	  .help = "verify the server's certificate and name" },
	{ .name = "ca_file", .type = KT_CAFILE,
	  .doc_def = "the system's trust store",
	  .help = "CA certificates (PEM) to verify the server with; must exist "
	  "when tls is not none and tls_verify is yes" },
	{ .name = "user", .type = KT_STRING,
	  .help = "AUTH user name; needs password_file" },
	{ .name = "password_file", .type = KT_FILE,
	  .help = "a file holding the AUTH password; needs user" },
	{ .name = "from", .type = KT_MAILBOX, .flags = K_REQ,
	  .help = "the From: of alerts, `Name <user@domain>` or `user@domain`" },
	{ .name = "reply_to", .type = KT_MAILBOX,
	  .doc_def = "the From: address",
	  .help = "where replies (confirmations) go" },
	{ .name = "timeout", .type = KT_DURATION, .def = "60s", .min = 1,
	  .help = "the deadline of one SMTP session" },
	{ .name = "concurrency", .type = KT_INT, .def = "4", .min = 1,
	  .max = 64,
	  .help = "SMTP sessions at once" },
	{ .name = NULL }
};

static const struct key lgwan_keys[] = {
	{ .name = "type", .type = KT_ENUM, .flags = K_REQ,
	  .arg = CHANNEL_TYPES,
	  .help = "`lgwan`: closed-network mail to the CSV column `lgwan`; "
	  "never falls back to internet SMTP" },
	{ .name = "host", .type = KT_HOST, .flags = K_REQ,
	  .help = "the smarthost inside the closed network" },
	{ .name = "port", .type = KT_PORT, .def = "25",
	  .help = "its port" },
	{ .name = "tls", .type = KT_ENUM, .def = "starttls",
	  .arg = "starttls|none",
	  .help = "`starttls`: required before anything is sent; `none`: "
	  "plain text" },
	{ .name = "tls_verify", .type = KT_BOOL, .def = "yes",
	  .help = "verify the server's certificate and name" },
	{ .name = "ca_file", .type = KT_CAFILE,
	  .doc_def = "the system's trust store",
	  .help = "CA certificates (PEM) to verify the server with; must exist "
	  "when tls is not none and tls_verify is yes" },
	{ .name = "user", .type = KT_STRING,
	  .help = "AUTH user name; needs password_file" },
	{ .name = "password_file", .type = KT_FILE,
	  .help = "a file holding the AUTH password; needs user" },
	{ .name = "from", .type = KT_MAILBOX, .flags = K_REQ,
	  .help = "the From: of alerts" },
	{ .name = "reply_to", .type = KT_MAILBOX,
	  .doc_def = "the From: address",
	  .help = "where replies (confirmations) go" },
	{ .name = "domains", .type = KT_DOMAINS, .flags = K_REQ,
	  .help = "the only domains (and their subdomains) this channel "
	  "delivers to, comma-separated, e.g. `lg.jp`" },
	{ .name = "charset", .type = KT_ENUM, .def = "iso-2022-jp",
	  .arg = "iso-2022-jp|utf-8",
	  .help = "the body's charset; iso-2022-jp normalises what it cannot "
	  "carry" },
	{ .name = "max_size", .type = KT_SIZE, .def = "64k", .min = 1024,
	  .help = "the largest message, headers included" },
	{ .name = "timeout", .type = KT_DURATION, .def = "60s", .min = 1,
	  .help = "the deadline of one SMTP session" },
	{ .name = "concurrency", .type = KT_INT, .def = "4", .min = 1,
	  .max = 64,
	  .help = "SMTP sessions at once" },
	{ .name = NULL }
};

static const struct key fax_keys[] = {
	{ .name = "type", .type = KT_ENUM, .flags = K_REQ,
	  .arg = CHANNEL_TYPES,
	  .help = "`fax`: fax pages to the CSV column `fax`" },
	{ .name = "transport", .type = KT_ENUM, .def = "hylafax",
	  .arg = "hylafax",
	  .help = "how pages are sent: a HylaFAX server (a direct modem comes "
	  "later)" },
	{ .name = "host", .type = KT_HOST, .def = "127.0.0.1",
	  .help = "the HylaFAX server" },
	{ .name = "port", .type = KT_PORT, .def = "4559",
	  .help = "its client-protocol port" },
	{ .name = "user", .type = KT_STRING,
	  .help = "the HylaFAX user name" },
	{ .name = "password_file", .type = KT_FILE,
	  .help = "a file holding the HylaFAX password; needs user" },
	{ .name = "resolution", .type = KT_ENUM, .def = "fine",
	  .arg = "normal|fine",
	  .help = "`normal`: 204x98 dpi; `fine`: 204x196 dpi" },
	{ .name = "font", .type = KT_FILE,
	  .def = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
	  .help = "the font pages are drawn with (it needs Japanese glyphs); "
	  "must exist" },
	{ .name = "confirm_to", .type = KT_STRING,
	  .help = "how recipients confirm, printed in the confirmation box "
	  "(e.g. `replies@bureau.example.jp / 03-1234-5678`)" },
	{ .name = "international_prefix", .type = KT_STRING, .def = "010",
	  .help = "dialled before the country code of a number outside "
	  "[relay] country_code (numbers inside it are dialled 0 + national "
	  "number)" },
	{ .name = "timeout", .type = KT_DURATION, .def = "5m", .min = 30,
	  .help = "the longest one fax may take, queued and sent; HylaFAX is "
	  "told to give up by then (one dial, one try: dengon retries)" },
	{ .name = "concurrency", .type = KT_INT, .def = "2", .min = 1,
	  .max = 64,
	  .help = "faxes handed to HylaFAX at once (about its modems)" },
	{ .name = NULL }
};

static const struct key sms_keys[] = {
	{ .name = "type", .type = KT_ENUM, .flags = K_REQ,
	  .arg = CHANNEL_TYPES,
	  .help = "`sms`: SMS through GSM modems to the CSV column `sms`" },
	{ .name = "devices", .type = KT_DEVICES, .flags = K_REQ,
	  .help = "the modems, comma-separated: a serial port `/dev/...` or "
	  "a serial server `tcp:HOST:PORT`" },
	{ .name = "pin_files", .type = KT_PINFILES,
	  .doc_def = "no PINs",
	  .help = "files holding each SIM's PIN, comma-separated, one per "
	  "device in the same order, `-` for none; each must exist" },
	{ .name = "baud", .type = KT_BAUD, .def = "115200",
	  .help = "serial speed of `/dev/` devices" },
	{ .name = "flow_control", .type = KT_ENUM, .def = "none",
	  .arg = "none|rtscts|xonxoff",
	  .help = "serial flow control of `/dev/` devices" },
	{ .name = "max_parts", .type = KT_INT, .def = "3", .min = 1,
	  .max = 10,
	  .help = "at most this many concatenated parts per message" },
	{ .name = NULL }
};

static const struct key imap_keys[] = {
	{ .name = "type", .type = KT_ENUM, .flags = K_REQ, .arg = INBOX_TYPES,
	  .help = "`imap`: read replies, DSNs and MDNs over IMAP (IDLE where "
	  "offered)" },
	{ .name = "host", .type = KT_HOST, .flags = K_REQ,
	  .help = "the IMAP server" },
	{ .name = "port", .type = KT_PORT,
	  .doc_def = "143; 993 with tls = tls",
	  .help = "its port" },
	{ .name = "tls", .type = KT_ENUM, .def = "starttls",
	  .arg = "starttls|tls|none",
	  .help = "`starttls`, `tls` (from the first byte) or `none`" },
	{ .name = "tls_verify", .type = KT_BOOL, .def = "yes",
	  .help = "verify the server's certificate and name before LOGIN" },
	{ .name = "ca_file", .type = KT_CAFILE,
	  .doc_def = "the system's trust store",
	  .help = "CA certificates (PEM); must exist when tls is not none and "
	  "tls_verify is yes" },
	{ .name = "user", .type = KT_STRING, .flags = K_REQ,
	  .help = "the login" },
	{ .name = "password_file", .type = KT_FILE, .flags = K_REQ,
	  .help = "a file holding the password" },
	{ .name = "mailbox", .type = KT_STRING, .def = "INBOX",
	  .help = "the mailbox read" },
	{ .name = "done_mailbox", .type = KT_STRING, .def = "dengon-done",
	  .help = "processed messages move here" },
	{ .name = "poll", .type = KT_DURATION, .def = "30s", .min = 1,
	  .help = "how often to look when the server has no IDLE" },
	{ .name = NULL }
};

static const struct key pop3_keys[] = {
	{ .name = "type", .type = KT_ENUM, .flags = K_REQ, .arg = INBOX_TYPES,
	  .help = "`pop3`: read replies, DSNs and MDNs over POP3; processed "
	  "messages are deleted" },
	{ .name = "host", .type = KT_HOST, .flags = K_REQ,
	  .help = "the POP3 server" },
	{ .name = "port", .type = KT_PORT,
	  .doc_def = "110; 995 with tls = tls",
	  .help = "its port" },
	{ .name = "tls", .type = KT_ENUM, .def = "starttls",
	  .arg = "starttls|tls|none",
	  .help = "`starttls` (STLS), `tls` (from the first byte) or `none`" },
	{ .name = "tls_verify", .type = KT_BOOL, .def = "yes",
	  .help = "verify the server's certificate and name before USER" },
	{ .name = "ca_file", .type = KT_CAFILE,
	  .doc_def = "the system's trust store",
	  .help = "CA certificates (PEM); must exist when tls is not none and "
	  "tls_verify is yes" },
	{ .name = "user", .type = KT_STRING, .flags = K_REQ,
	  .help = "the login" },
	{ .name = "password_file", .type = KT_FILE, .flags = K_REQ,
	  .help = "a file holding the password" },
	{ .name = "poll", .type = KT_DURATION, .def = "30s", .min = 1,
	  .help = "how often to look" },
	{ .name = NULL }
};

static const struct key policy_keys[] = {
	{ .name = "steps", .type = KT_STEPS, .flags = K_REQ,
	  .help = "the escalation, e.g. `mail+lgwan, fax@15m, sms@30m` "
	  "(see above)" },
	{ .name = "repeat", .type = KT_DURATION, .def = "0",
	  .help = "while unconfirmed, start over every this long after "
	  "acceptance; 0: never; longer than the last step's delay" },
	{ .name = "expire", .type = KT_DURATION, .flags = K_REQ, .min = 1,
	  .help = "alerts expire this long after acceptance (unless sent with "
	  "`--expires`); after the last step's delay" },
	{ .name = "confirm", .type = KT_ENUM, .def = "ack",
	  .arg = "ack|read|delivered",
	  .help = "`ack`: a person confirms; `read`: an MDN is enough; "
	  "`delivered`: arrival evidence is enough" },
	{ .name = NULL }
};

enum skind { SK_RELAY, SK_CHANNEL, SK_INBOX, SK_POLICY };

static const char *const skind_names[] = { "relay", "channel", "inbox",
    "policy" };

/* One section layout: a kind, and for channels and inboxes a type. */
struct sectype {
	enum skind	 kind;
	const char	*type;		/* NULL: the kind has no type key */
	const struct key *keys;
	const char	*help;
};

static const struct sectype sectypes[] = {
	{ SK_RELAY, NULL, relay_keys,
	  "The relay itself.  Optional, at most one; every key has a "
	  "default." },
	{ SK_CHANNEL, "smtp", smtp_keys,
	  "Internet mail (libESMTP): STARTTLS, AUTH, DSN." },
	{ SK_CHANNEL, "lgwan", lgwan_keys,
	  "Closed-network (LGWAN-style) mail: the SMTP engine under a "
	  "stricter profile, text/plain only, to the listed domains only." },
	{ SK_CHANNEL, "fax", fax_keys,
	  "Fax pages (TIFF-F, A4) handed to a fax transport." },
	{ SK_CHANNEL, "sms", sms_keys,
	  "SMS through one or more GSM modems (AT commands, PDU mode)." },
	{ SK_INBOX, "imap", imap_keys,
	  "A mailbox read for replies, delivery reports (DSN) and read "
	  "reports (MDN)." },
	{ SK_INBOX, "pop3", pop3_keys,
	  "The same over POP3." },
	{ SK_POLICY, NULL, policy_keys,
	  "An escalation policy.  `steps` is a comma-separated list of "
	  "steps; a step is one or more channel names joined by `+`, "
	  "optionally followed by `@DURATION`, its delay after acceptance.  "
	  "The first step's delay defaults to 0; a later step without `@` "
	  "takes the delay of the step before it; delays must not decrease.  "
	  "Every channel named must be a [channel NAME]." },
};

#define NSECTYPES	(sizeof(sectypes) / sizeof(sectypes[0]))

static const int baud_rates[] = { 1200, 2400, 4800, 9600, 19200, 38400,
    57600, 115200, 230400, 460800, 921600 };

/* ---- parse state ------------------------------------------------------ */

/* One diagnostic, kept until all are sorted by line. */
struct diag {
	int	 line;
	int	 error;
	size_t	 seq;
	char	*text;
};

/* One key = value line as read. */
struct rkv {
	char	*key;
	char	*value;
	int	 line;
};

/* One section as read. */
struct rsec {
	enum skind	 kind;
	char		*name;		/* as written; NULL if none */
	int		 line;		/* of its header; 0: [relay] absent */
	int		 keep;		/* valid name, first of its name */
	int		 used;		/* a channel named by some policy */
	struct rkv	*kv;
	size_t		 nkv;
};

struct parse {
	const char	*path;		/* as given, for messages */
	char		*dir;		/* relative paths are resolved here */
	FILE		*fp;
	char		*buf;		/* getline() */
	size_t		 bufsz;
	int		 line;
	int		 read_errno;
	struct rsec	*secs;
	size_t		 nsecs;
	long		 cur;		/* index into secs, or CUR_* */
	struct diag	*diags;
	size_t		 ndiags;
	size_t		 errors;
};

/* A key's value during validation. */
struct val {
	char	*v;		/* normalised, owned; NULL if absent or bad */
	int	 line;		/* 0 when not in the file */
	int	 given;
};

/* ---- small helpers ---------------------------------------------------- */

static void *
xreallocarray(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		abort();
	p = realloc(p, n * size != 0 ? n * size : 1);
	if (p == NULL)
		abort();	/* out of memory reading a config: give up */
	return p;
}

static char *
xstrndup(const char *s, size_t n)
{
	char *d = strndup(s, n);

	if (d == NULL)
		abort();
	return d;
}

static char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

static char *xprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* An allocated, formatted string; the caller frees it. */
static char *
xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	s = xreallocarray(NULL, (size_t)n + 1, 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static void diag(struct parse *, int, int, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* Record one problem at line (0: the whole file). */
static void
diag(struct parse *p, int error, int line, const char *fmt, ...)
{
	char buf[1024], raw[1024];
	struct diag *d;
	va_list ap;
	size_t o = 0;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* A value quoted here may hold a bare CR or another control byte
	 * (only the line's end is stripped): escape it, so that a message
	 * stays one line of FILE:LINE: output (found by fuzz_conf). */
	for (const unsigned char *s = (const unsigned char *)raw;
	    *s != '\0' && o + 5 < sizeof(buf); s++) {
		if ((*s < 0x20 && *s != '\t') || *s == 0x7f)
			o += (size_t)snprintf(buf + o, 5, "\\x%02X", *s);
		else
			buf[o++] = (char)*s;
	}
	buf[o] = '\0';
	p->diags = xreallocarray(p->diags, p->ndiags + 1, sizeof(*p->diags));
	d = &p->diags[p->ndiags];
	d->line = line;
	d->error = error;
	d->seq = p->ndiags;
	d->text = xstrdup(buf);
	p->ndiags++;
	if (error)
		p->errors++;
}

static int
diag_cmp(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
is_alnum(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
	    (c >= 'a' && c <= 'z');
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* 1 if s is 1..max characters, each a letter, a digit or one of extra. */
static int
valid_word(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (; *s != '\0'; s++)
		if (!is_alnum((unsigned char)*s) && strchr(extra, *s) == NULL)
			return 0;
	return 1;
}

/* 1 if s is a valid [channel|inbox|policy NAME] name. */
static int
valid_name(const char *s)
{
	return valid_word(s, SECT_NAME_MAX, "_-");
}

/* "a|b|c" -> 1 if s is one of them. */
static int
in_choices(const char *choices, const char *s)
{
	size_t n = strlen(s);
	const char *p = choices, *bar;

	for (;;) {
		bar = strchr(p, '|');
		if ((bar ? (size_t)(bar - p) : strlen(p)) == n &&
		    strncmp(p, s, n) == 0)
			return 1;
		if (bar == NULL)
			return 0;
		p = bar + 1;
	}
}

/* "a|b|c" -> "a, b, c" into buf, each in backquotes if quote. */
static void
list_choices(const char *choices, int quote, char *buf, size_t len)
{
	const char *p = choices, *bar, *q = quote ? "`" : "";
	size_t o = 0;
	int n;

	buf[0] = '\0';
	for (;;) {
		bar = strchr(p, '|');
		n = bar != NULL ? (int)(bar - p) : (int)strlen(p);
		o += snprintf(buf + o, len - o, "%s%s%.*s%s", o ? ", " : "", q,
		    n, p, q);
		if (o >= len || bar == NULL)
			return;
		p = bar + 1;
	}
}

/* Decimal digits only, within min..max. */
static int
parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;
	const char *p;

	if (*s == '\0' || strlen(s) > 12)
		return -1;
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* seconds -> "90s", "15m", "2h", "1d": the largest unit that is exact. */
static void
fmt_duration(int64_t s, char *buf, size_t len)
{
	if (s != 0 && s % 86400 == 0)
		snprintf(buf, len, "%lldd", (long long)(s / 86400));
	else if (s != 0 && s % 3600 == 0)
		snprintf(buf, len, "%lldh", (long long)(s / 3600));
	else if (s != 0 && s % 60 == 0)
		snprintf(buf, len, "%lldm", (long long)(s / 60));
	else
		snprintf(buf, len, "%llds", (long long)s);
}

/* A domain name of letters, digits and hyphens, labels 1-63, 253 max. */
static int
valid_domain(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
		} else if (is_alnum((unsigned char)s[i]) || s[i] == '-') {
			if (s[i] == '-' && label == 0)
				return 0;
			if (++label > 63)
				return 0;
		} else
			return 0;
	}
	return label > 0 && s[len - 1] != '-';
}

/* A host name, an IPv4 address or an IPv6 address (without brackets). */
static int
valid_host(const char *s, size_t len)
{
	struct in6_addr a6;
	char buf[64];

	if (memchr(s, ':', len) != NULL) {
		if (len >= sizeof(buf))
			return 0;
		memcpy(buf, s, len);
		buf[len] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1;
	}
	return valid_domain(s, len);
}

/* An addr-spec: a dot-atom local part, "@", a domain. */
static int
valid_addr(const char *s, size_t len)
{
	static const char atext[] = "!#$%&'*+/=?^_`{|}~-";
	const char *at = memchr(s, '@', len);
	size_t ll;

	if (at == NULL)
		return 0;
	ll = (size_t)(at - s);
	if (ll == 0 || ll > 64 || s[0] == '.' || s[ll - 1] == '.')
		return 0;
	for (size_t i = 0; i < ll; i++) {
		if (s[i] == '.') {
			if (s[i - 1] == '.')
				return 0;
		} else if (!is_alnum((unsigned char)s[i]) &&
		    strchr(atext, s[i]) == NULL)
			return 0;
	}
	return valid_domain(at + 1, len - ll - 1);
}

/* "Display Name <addr>" or a bare addr. */
static int
valid_mailbox(const char *s)
{
	const char *lt = strchr(s, '<'), *gt, *q;

	if (lt == NULL)
		return valid_addr(s, strlen(s));
	gt = strchr(lt, '>');
	if (gt == NULL)
		return 0;
	for (q = gt + 1; *q != '\0'; q++)
		if (!is_blank(*q))
			return 0;
	for (q = s; q < lt; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f || *q == '>')
			return 0;
	return valid_addr(lt + 1, (size_t)(gt - lt - 1));
}

/* "/dev/ttyUSB0", "tcp:HOST:PORT", "tcp:[v6]:PORT" */
static int
valid_device(const char *d)
{
	const char *h, *e, *port;
	int64_t n;

	if (strncmp(d, "/dev/", 5) == 0)
		return d[5] != '\0' && strpbrk(d, " \t") == NULL;
	if (strncmp(d, "tcp:", 4) != 0)
		return 0;
	h = d + 4;
	if (*h == '[') {
		e = strchr(h, ']');
		if (e == NULL || e[1] != ':' || memchr(h, ':', e - h) == NULL ||
		    !valid_host(h + 1, (size_t)(e - h - 1)))
			return 0;
		port = e + 2;
	} else {
		e = strrchr(h, ':');
		if (e == NULL || memchr(h, ':', e - h) != NULL ||
		    !valid_host(h, (size_t)(e - h)))
			return 0;
		port = e + 1;
	}
	return parse_int(port, 1, 65535, &n) == 0;
}

/* A zone name of ZONEINFO: a TZif file, no "..", no absolute path. */
static int
valid_timezone(const char *tz)
{
	char path[PATH_MAX], magic[4];
	struct stat st;
	int fd, ok;

	if (tz[0] == '/' || strstr(tz, "..") != NULL ||
	    !valid_word(tz, 200, "/_+-"))
		return 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", ZONEINFO, tz) >=
	    sizeof(path))
		return 0;
	if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	ok = read(fd, magic, 4) == 4 && memcmp(magic, "TZif", 4) == 0;
	close(fd);
	return ok;
}

size_t
conf_split_list(const char *s, char ***out)
{
	char **v = NULL;
	size_t n = 0;
	const char *p = s, *e, *b;

	*out = NULL;
	if (s == NULL)
		return 0;
	for (;;) {
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		b = e;
		while (p < b && is_blank(*p))
			p++;
		while (b > p && is_blank(b[-1]))
			b--;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrndup(p, (size_t)(b - p));
		if (*e == '\0')
			break;
		p = e + 1;
	}
	*out = v;
	return n;
}

void
conf_free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* A relative path made absolute against the configuration's folder. */
static char *
resolve(const struct parse *p, const char *v)
{
	if (v[0] == '/')
		return xstrdup(v);
	while (v[0] == '.' && v[1] == '/')
		for (v += 2; *v == '/'; v++)
			;
	if (*v == '\0' || strcmp(v, ".") == 0)
		return xstrdup(p->dir);
	if (strcmp(p->dir, "/") == 0)
		return xprintf("/%s", v);
	return xprintf("%s/%s", p->dir, v);
}

/* The folder of the configuration file, absolute when it can be. */
static char *
config_dir(const char *path)
{
	char *copy = xstrdup(path), *slash = strrchr(copy, '/'), *real;
	const char *dir;

	if (slash == NULL)
		dir = ".";
	else if (slash == copy)
		dir = "/";
	else {
		*slash = '\0';
		dir = copy;
	}
	real = realpath(dir, NULL);
	if (real == NULL)
		real = xstrdup(dir);
	free(copy);
	return real;
}

/* Report unless path is an existing, readable regular file. */
static int
check_file(struct parse *p, const char *key, const char *path, int line,
    const char *note)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		diag(p, 1, line, "%s: %s%s: %s", key, path, note,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		diag(p, 1, line, "%s: %s%s: not a regular file", key, path,
		    note);
		return -1;
	}
	if (access(path, R_OK) == -1) {
		diag(p, 1, line, "%s: %s%s: cannot read: %s", key, path, note,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- reading: the line reader and the libinih handler ---------------- */

static struct rsec *
add_section(struct parse *p, enum skind kind, const char *name, int line)
{
	struct rsec *s;

	p->secs = xreallocarray(p->secs, p->nsecs + 1, sizeof(*p->secs));
	s = &p->secs[p->nsecs];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->name = name != NULL ? xstrdup(name) : NULL;
	s->line = line;
	s->keep = 1;
	p->cur = (long)p->nsecs++;
	return s;
}

/* Open the section of a header line "[...]" (comments already gone). */
static void
section_header(struct parse *p, char *s)
{
	char *close = strchr(s, ']'), *kind, *name, *e;
	struct rsec *sec;
	size_t k;

	if (close == NULL) {
		diag(p, 1, p->line, "section header without \"]\"");
		p->cur = CUR_SKIP;
		return;
	}
	if (close[1] != '\0')
		diag(p, 1, p->line, "unexpected text after \"]\"");
	*close = '\0';
	for (kind = s + 1; is_blank(*kind); kind++)
		;
	for (name = kind; *name != '\0' && !is_blank(*name); name++)
		;
	if (*name != '\0')
		*name++ = '\0';
	while (is_blank(*name))
		name++;
	for (e = name + strlen(name); e > name && is_blank(e[-1]); e--)
		;
	*e = '\0';

	for (k = 0; k < 4; k++)
		if (strcmp(kind, skind_names[k]) == 0)
			break;
	if (k == 4) {
		diag(p, 1, p->line, "unknown section [%s%s%s] (expected "
		    "[relay], [channel NAME], [inbox NAME] or [policy NAME])",
		    kind, *name ? " " : "", name);
		p->cur = CUR_SKIP;
		return;
	}
	sec = add_section(p, (enum skind)k, *name ? name : NULL, p->line);
	if (k == SK_RELAY) {
		if (*name != '\0')
			diag(p, 1, p->line, "[relay] takes no name");
		for (size_t i = 0; i + 1 < p->nsecs; i++)
			if (p->secs[i].kind == SK_RELAY && p->secs[i].keep) {
				diag(p, 1, p->line, "duplicate section "
				    "[relay] (first at line %d)",
				    p->secs[i].line);
				sec->keep = 0;
				break;
			}
		return;
	}
	if (*name == '\0') {
		diag(p, 1, p->line, "[%s] needs a name: [%s NAME]", kind, kind);
		sec->keep = 0;
		return;
	}
	if (!valid_name(name)) {
		diag(p, 1, p->line, "invalid %s name \"%s\" (1-%d of A-Z a-z "
		    "0-9 _ -)", kind, name, SECT_NAME_MAX);
		sec->keep = 0;
		return;
	}
	for (size_t i = 0; i + 1 < p->nsecs; i++) {
		const struct rsec *o = &p->secs[i];

		if (o->kind == sec->kind && o->keep &&
		    strcmp(o->name, name) == 0) {
			diag(p, 1, p->line, "duplicate section [%s %s] (first "
			    "at line %d)", kind, name, o->line);
			sec->keep = 0;
			break;
		}
	}
}

/*
 * Look at one line (its line end gone, comments not yet): 1 if it is a
 * key = value line for libinih; 0 if it was a comment, a blank, a header
 * or a problem (reported here).
 */
static int
scan_line(struct parse *p, char *s)
{
	char *e, *k;

	while (is_blank(*s))
		s++;
	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	for (e = s + 1; *e != '\0'; e++)
		if ((*e == '#' || *e == ';') && is_blank(e[-1])) {
			*e = '\0';
			break;
		}
	for (e = s + strlen(s); e > s && is_blank(e[-1]); e--)
		;
	*e = '\0';
	if (*s == '[') {
		section_header(p, s);
		return 0;
	}
	for (k = s; is_alnum((unsigned char)*k) || *k == '_' || *k == '-' ||
	    *k == '.'; k++)
		;
	e = k;
	while (is_blank(*e))
		e++;
	if (k == s || *e != '=') {
		diag(p, 1, p->line, "syntax error: expected \"key = value\", "
		    "\"[section]\" or a comment");
		return 0;
	}
	if (p->cur == CUR_NONE) {
		diag(p, 1, p->line, "key \"%.*s\" before any [section]",
		    (int)(k - s), s);
		return 0;
	}
	return p->cur != CUR_SKIP;
}

/*
 * The ini_reader: one physical line per call, so libinih's line count is
 * ours.  Lines that are not key = value reach libinih as blank lines.
 */
static char *
reader(char *str, int num, void *arg)
{
	struct parse *p = arg;
	ssize_t n;
	size_t len, limit;
	char *s;

	errno = 0;
	n = getline(&p->buf, &p->bufsz, p->fp);
	if (n < 0) {
		if (ferror(p->fp))
			p->read_errno = errno ? errno : EIO;
		return NULL;
	}
	p->line++;
	s = p->buf;
	len = (size_t)n;
	if (len > 0 && s[len - 1] == '\n')
		s[--len] = '\0';
	if (len > 0 && s[len - 1] == '\r')
		s[--len] = '\0';
	if (p->line == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
		s += 3;
		len -= 3;
	}
	snprintf(str, (size_t)num, "\n");
	if (strlen(s) != len) {
		diag(p, 1, p->line, "NUL byte in line");
		return str;
	}
	limit = num - 3 < CONF_LINE_MAX ? (size_t)(num > 3 ? num - 3 : 0) :
	    CONF_LINE_MAX;
	if (len > limit) {
		diag(p, 1, p->line, "line too long (%zu bytes; at most %zu)",
		    len, limit);
		while (is_blank(*s))
			s++;
		if (*s == '[')
			p->cur = CUR_SKIP;	/* its keys belong nowhere */
		return str;
	}
	if (scan_line(p, s)) {
		while (is_blank(*s))
			s++;
		snprintf(str, (size_t)num, "%s\n", s);
	}
	return str;
}

/* The ini_handler: keep key = value in the current section. */
static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct parse *p = arg;
	struct rsec *sec;
	struct rkv *kv;

	(void)section;		/* ours is p->cur, see reader() */
	if (p->cur < 0)
		return 1;	/* cannot happen: reader() passes none */
	sec = &p->secs[p->cur];
	for (size_t i = 0; i < sec->nkv; i++)
		if (strcmp(sec->kv[i].key, name) == 0) {
			diag(p, 1, p->line, "duplicate key \"%s\" (first at "
			    "line %d)", name, sec->kv[i].line);
			return 1;
		}
	sec->kv = xreallocarray(sec->kv, sec->nkv + 1, sizeof(*sec->kv));
	kv = &sec->kv[sec->nkv++];
	kv->key = xstrdup(name);
	kv->value = xstrdup(value);
	kv->line = p->line;
	return 1;
}

/* libinih's process-wide settings, saved around our call. */
struct inih_settings {
	bool	 multiline, bom, inline_comments, use_stack, realloc_,
		 stop_first, no_value;
	char	*start_prefixes, *inline_prefixes;
	int	 max_line;
};

static void
inih_swap(struct inih_settings *s)
{
	struct inih_settings old;

	old.multiline = ini_allow_multiline;
	old.bom = ini_allow_bom;
	old.inline_comments = ini_allow_inline_comments;
	old.use_stack = ini_use_stack;
	old.realloc_ = ini_allow_realloc;
	old.stop_first = ini_stop_on_first_error;
	old.no_value = ini_allow_no_value;
	old.start_prefixes = ini_start_comment_prefixes;
	old.inline_prefixes = ini_inline_comment_prefixes;
	old.max_line = ini_max_line;
	ini_allow_multiline = s->multiline;
	ini_allow_bom = s->bom;
	ini_allow_inline_comments = s->inline_comments;
	ini_use_stack = s->use_stack;
	ini_allow_realloc = s->realloc_;
	ini_stop_on_first_error = s->stop_first;
	ini_allow_no_value = s->no_value;
	ini_start_comment_prefixes = s->start_prefixes;
	ini_inline_comment_prefixes = s->inline_prefixes;
	ini_max_line = s->max_line;
	*s = old;
}

/* ---- validation ------------------------------------------------------- */

static const struct rkv *
find_rkv(const struct rsec *sec, const char *key)
{
	for (size_t i = 0; i < sec->nkv; i++)
		if (strcmp(sec->kv[i].key, key) == 0)
			return &sec->kv[i];
	return NULL;
}

static long
key_index(const struct key *keys, const char *name)
{
	for (long i = 0; keys[i].name != NULL; i++)
		if (strcmp(keys[i].name, name) == 0)
			return i;
	return -1;
}

static size_t
nkeys(const struct key *keys)
{
	size_t n = 0;

	while (keys[n].name != NULL)
		n++;
	return n;
}

/* Check one value of key k; the normalised value (owned), or NULL after
 * reporting why not.  note is "" or " (the default)". */
static char *
check_value(struct parse *p, const struct key *k, const char *v, int line,
    const char *note)
{
	char buf[256], **list;
	const char *kn = k->name;
	int64_t n;
	size_t cnt;
	char *r;
	int bad;

	if (*v == '\0' && !(k->flags & K_EMPTY)) {
		diag(p, 1, line, "%s: empty value", kn);
		return NULL;
	}
	switch (k->type) {
	case KT_STRING:
		return xstrdup(v);
	case KT_RELAYNAME:
		if (valid_word(v, RELAY_NAME_MAX, ".-"))
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a valid relay name (1-%d "
		    "of A-Z a-z 0-9 . -)", kn, v, note, RELAY_NAME_MAX);
		return NULL;
	case KT_POLICYREF:
		if (valid_name(v))
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a valid policy name "
		    "(1-%d of A-Z a-z 0-9 _ -)", kn, v, note, SECT_NAME_MAX);
		return NULL;
	case KT_HOST:
		if (valid_host(v, strlen(v)))
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a host name or IP "
		    "address", kn, v, note);
		return NULL;
	case KT_PORT:
		if (parse_int(v, 1, 65535, &n) == 0)
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a port number (1-65535)",
		    kn, v, note);
		return NULL;
	case KT_BOOL:
		if (conf_parse_bool(v) != -1)
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not yes or no (yes/no, "
		    "true/false, on/off, 1/0)", kn, v, note);
		return NULL;
	case KT_DURATION:
		if (conf_parse_duration(v, &n) == -1) {
			diag(p, 1, line, "%s: \"%s\"%s is not a duration (a "
			    "number with s, m, h or d; at most 365d)", kn, v,
			    note);
			return NULL;
		}
		if (n < k->min) {
			fmt_duration(k->min, buf, sizeof(buf));
			diag(p, 1, line, "%s: \"%s\"%s is too short (at least "
			    "%s)", kn, v, note, buf);
			return NULL;
		}
		return xstrdup(v);
	case KT_SIZE:
		if (conf_parse_size(v, &n) == -1) {
			diag(p, 1, line, "%s: \"%s\"%s is not a size (bytes, or "
			    "a number with k or M; at most 1024M)", kn, v, note);
			return NULL;
		}
		if (n < k->min) {
			diag(p, 1, line, "%s: \"%s\"%s is too small (at least "
			    "%lld bytes)", kn, v, note, (long long)k->min);
			return NULL;
		}
		return xstrdup(v);
	case KT_ENUM:
		if (in_choices(k->arg, v))
			return xstrdup(v);
		list_choices(k->arg, 0, buf, sizeof(buf));
		diag(p, 1, line, "%s: \"%s\"%s is not one of %s", kn, v, note,
		    buf);
		return NULL;
	case KT_INT:
		if (parse_int(v, k->min, k->max, &n) == 0)
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a number from %lld to "
		    "%lld", kn, v, note, (long long)k->min, (long long)k->max);
		return NULL;
	case KT_BAUD:
		if (parse_int(v, 1, INT_MAX, &n) == 0)
			for (size_t i = 0; i < sizeof(baud_rates) /
			    sizeof(baud_rates[0]); i++)
				if (baud_rates[i] == n)
					return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a standard rate (1200, "
		    "2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, "
		    "460800 or 921600)", kn, v, note);
		return NULL;
	case KT_MAILBOX:
		if (valid_mailbox(v))
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a mail address (\"Name "
		    "<user@domain>\" or user@domain)", kn, v, note);
		return NULL;
	case KT_DOMAINS:
	case KT_DEVICES:
		cnt = conf_split_list(v, &list);
		bad = 0;
		for (size_t i = 0; i < cnt; i++) {
			if (list[i][0] == '\0') {
				diag(p, 1, line, "%s: empty entry in the list",
				    kn);
				bad = 1;
			} else if (k->type == KT_DOMAINS &&
			    !valid_domain(list[i], strlen(list[i]))) {
				diag(p, 1, line, "%s: \"%s\" is not a domain "
				    "name", kn, list[i]);
				bad = 1;
			} else if (k->type == KT_DEVICES &&
			    !valid_device(list[i])) {
				diag(p, 1, line, "%s: \"%s\" is neither a /dev/ "
				    "path nor tcp:HOST:PORT", kn, list[i]);
				bad = 1;
			} else {
				for (size_t j = 0; j < i; j++)
					if (strcmp(list[i], list[j]) == 0) {
						diag(p, 1, line, "%s: \"%s\" is "
						    "listed twice", kn, list[i]);
						bad = 1;
						break;
					}
			}
		}
		conf_free_list(list, cnt);
		return bad ? NULL : xstrdup(v);
	case KT_PINFILES:
		cnt = conf_split_list(v, &list);
		bad = 0;
		for (size_t i = 0; i < cnt; i++) {
			if (list[i][0] == '\0') {
				diag(p, 1, line, "%s: empty entry in the list "
				    "(write - for a device without a PIN)", kn);
				bad = 1;
				continue;
			}
			if (strcmp(list[i], "-") == 0)
				continue;
			r = resolve(p, list[i]);
			free(list[i]);
			list[i] = r;
			if (check_file(p, kn, r, line, note) == -1)
				bad = 1;
		}
		r = NULL;
		if (!bad) {
			r = xstrdup(list[0]);
			for (size_t i = 1; i < cnt; i++) {
				char *t = xprintf("%s, %s", r, list[i]);

				free(r);
				r = t;
			}
		}
		conf_free_list(list, cnt);
		return r;
	case KT_FILE:
		r = resolve(p, v);
		if (check_file(p, kn, r, line, note) == 0)
			return r;
		free(r);
		return NULL;
	case KT_CAFILE:
	case KT_PATH:
		return resolve(p, v);
	case KT_SOCKET: {
		struct sockaddr_un sa;

		r = resolve(p, v);
		if (strlen(r) < sizeof(sa.sun_path))
			return r;
		diag(p, 1, line, "%s: %s%s: too long for a Unix socket (%zu "
		    "bytes; at most %zu)", kn, r, note, strlen(r),
		    sizeof(sa.sun_path) - 1);
		free(r);
		return NULL;
	}
	case KT_LOG:
		if (strcmp(v, "syslog") == 0 || strcmp(v, "stderr") == 0)
			return xstrdup(v);
		if (strchr(v, '/') != NULL)
			return resolve(p, v);
		diag(p, 1, line, "%s: \"%s\" is not syslog, stderr or a file "
		    "path (write ./%s for a file beside this one)", kn, v, v);
		return NULL;
	case KT_TIMEZONE:
		if (valid_timezone(v))
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a time zone (no such "
		    "zone under %s)", kn, v, note, ZONEINFO);
		return NULL;
	case KT_GROUP:
		if (*v == '\0' || getgrnam(v) != NULL)
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a group on this system%s",
		    kn, v, note, *note ? ": create it, or set group = (empty) "
		    "to leave the files' group alone" : "");
		return NULL;
	case KT_CCODE:
		if (v[0] != '0' && strlen(v) <= 3 && parse_int(v, 1, 999, &n) == 0)
			return xstrdup(v);
		diag(p, 1, line, "%s: \"%s\"%s is not a country calling code "
		    "(1-3 digits, e.g. 81)", kn, v, note);
		return NULL;
	case KT_STEPS: {
		struct conf_step *steps;
		size_t nsteps;

		if (conf_parse_steps(v, &steps, &nsteps, buf, sizeof(buf)) == 0) {
			conf_steps_free(steps, nsteps);
			return xstrdup(v);
		}
		diag(p, 1, line, "%s: %s", kn, buf);
		return NULL;
	}
	}
	return NULL;
}

/* Check every key of sec against keys: unknown ones, values, required
 * ones and defaults into vals (one per key of the table).  Defaults are
 * applied (and checked) only in a section that is kept: a duplicate or
 * misnamed one would report the same default twice. */
static void
fill_vals(struct parse *p, const struct rsec *sec, const struct key *keys,
    const char *label, const char *type, struct val *vals)
{
	for (size_t i = 0; i < sec->nkv; i++) {
		const struct rkv *kv = &sec->kv[i];
		long j = key_index(keys, kv->key);

		if (j < 0) {
			if (type != NULL)
				diag(p, 1, kv->line, "unknown key \"%s\" in "
				    "[%s] (type %s)", kv->key, label, type);
			else
				diag(p, 1, kv->line, "unknown key \"%s\" in "
				    "[%s]", kv->key, label);
			continue;
		}
		vals[j].given = 1;
		vals[j].line = kv->line;
		vals[j].v = check_value(p, &keys[j], kv->value, kv->line, "");
	}
	for (size_t j = 0; keys[j].name != NULL; j++) {
		if (vals[j].given)
			continue;
		if (keys[j].flags & K_REQ)
			diag(p, 1, sec->line, "[%s]: missing required key "
			    "\"%s\"", label, keys[j].name);
		else if (keys[j].def != NULL && sec->keep)
			vals[j].v = check_value(p, &keys[j], keys[j].def,
			    sec->line, " (the default)");
	}
}

static struct val *
vget(struct val *vals, const struct key *keys, const char *name)
{
	long i = key_index(keys, name);

	return i < 0 ? NULL : &vals[i];
}

/* tls, tls_verify and ca_file together (smtp, lgwan, imap, pop3). */
static void
check_tls(struct parse *p, const struct rsec *sec, const struct key *keys,
    struct val *vals)
{
	struct val *tls = vget(vals, keys, "tls");
	struct val *verify = vget(vals, keys, "tls_verify");
	struct val *ca = vget(vals, keys, "ca_file");
	int none, ver;

	if (tls->v == NULL || verify->v == NULL)
		return;		/* already reported */
	none = strcmp(tls->v, "none") == 0;
	ver = conf_parse_bool(verify->v);
	if (ca->v != NULL) {
		if (none || !ver)
			diag(p, 0, ca->line, "ca_file: not used (%s)",
			    none ? "tls = none" : "tls_verify = no");
		else if (check_file(p, "ca_file", ca->v, ca->line, "") == -1) {
			free(ca->v);
			ca->v = NULL;
		}
	}
	if (!none && !ver)
		diag(p, 0, verify->line ? verify->line : sec->line,
		    "tls_verify = no: the server's certificate is not checked");
}

/* user and password_file come together (password optional for fax). */
static void
check_auth(struct parse *p, const struct key *keys, struct val *vals,
    int need_password)
{
	struct val *user = vget(vals, keys, "user");
	struct val *pw = vget(vals, keys, "password_file");

	if (user->given && !pw->given && need_password)
		diag(p, 1, user->line, "user: AUTH needs password_file as well");
	if (pw->given && !user->given)
		diag(p, 1, pw->line, "password_file: needs user as well");
}

/* pin_files has one entry per device. */
static void
check_sms(struct parse *p, const struct rsec *sec)
{
	const struct rkv *dev = find_rkv(sec, "devices");
	const struct rkv *pin = find_rkv(sec, "pin_files");
	char **list;
	size_t nd, np;

	if (dev == NULL || pin == NULL || *dev->value == '\0' ||
	    *pin->value == '\0')
		return;
	nd = conf_split_list(dev->value, &list);
	conf_free_list(list, nd);
	np = conf_split_list(pin->value, &list);
	conf_free_list(list, np);
	if (nd != np)
		diag(p, 1, pin->line, "pin_files: %zu %s for %zu %s (one per "
		    "device, - for none)", np, np == 1 ? "entry" : "entries",
		    nd, nd == 1 ? "device" : "devices");
}

/* repeat and expire against the last step; fills pol. */
static void
check_policy(struct parse *p, const struct key *keys, struct val *vals,
    struct conf_policy *pol)
{
	struct val *steps = vget(vals, keys, "steps");
	struct val *repv = vget(vals, keys, "repeat");
	struct val *expv = vget(vals, keys, "expire");
	struct val *cf = vget(vals, keys, "confirm");
	char last[32], other[32];
	int64_t d;

	if (repv->v != NULL && conf_parse_duration(repv->v, &d) == 0)
		pol->repeat = d;
	if (expv->v != NULL && conf_parse_duration(expv->v, &d) == 0)
		pol->expire = d;
	if (cf->v != NULL)
		pol->confirm = strcmp(cf->v, "read") == 0 ?
		    CONF_CONFIRM_READ : strcmp(cf->v, "delivered") == 0 ?
		    CONF_CONFIRM_DELIVERED : CONF_CONFIRM_ACK;
	if (steps->v == NULL || conf_parse_steps(steps->v, &pol->steps,
	    &pol->nsteps, NULL, 0) == -1)
		return;
	d = pol->steps[pol->nsteps - 1].delay;
	fmt_duration(d, last, sizeof(last));
	if (repv->v != NULL && pol->repeat > 0 && pol->repeat <= d)
		diag(p, 1, repv->line, "repeat: %s must be longer than the last "
		    "step's delay (%s)", repv->v, last);
	if (expv->v != NULL && pol->expire <= d)
		diag(p, 1, expv->line, "expire: %s is not after the last step's "
		    "delay (%s): that step would never run", expv->v, last);
	if (repv->v != NULL && expv->v != NULL && pol->repeat > d &&
	    pol->repeat >= pol->expire) {
		fmt_duration(pol->expire, other, sizeof(other));
		diag(p, 0, repv->line, "repeat: %s is not before expire (%s): "
		    "the policy never repeats", repv->v, other);
	}
}

/* The vals of a channel or inbox as its kv list, in table order. */
static void
vals_to_kv(const struct key *keys, struct val *vals, struct conf_kv **kvp,
    size_t *nkvp)
{
	struct conf_kv *kv = NULL;
	size_t n = 0;

	for (size_t j = 0; keys[j].name != NULL; j++) {
		if (vals[j].v == NULL)
			continue;
		kv = xreallocarray(kv, n + 1, sizeof(*kv));
		kv[n].key = xstrdup(keys[j].name);
		kv[n].value = vals[j].v;
		kv[n].line = vals[j].given ? vals[j].line : 0;
		vals[j].v = NULL;
		n++;
	}
	*kvp = kv;
	*nkvp = n;
}

/* Which table a channel or inbox uses, by its type; NULL (reported) if
 * its type is missing or wrong. */
static const struct sectype *
find_sectype(struct parse *p, const struct rsec *sec, const char *label)
{
	const struct rkv *t;
	char buf[128];

	if (sec->kind == SK_RELAY || sec->kind == SK_POLICY) {
		for (size_t i = 0; i < NSECTYPES; i++)
			if (sectypes[i].kind == sec->kind)
				return &sectypes[i];
		return NULL;
	}
	if ((t = find_rkv(sec, "type")) == NULL) {
		diag(p, 1, sec->line, "[%s]: missing required key \"type\"",
		    label);
		return NULL;
	}
	for (size_t i = 0; i < NSECTYPES; i++)
		if (sectypes[i].kind == sec->kind &&
		    strcmp(sectypes[i].type, t->value) == 0)
			return &sectypes[i];
	list_choices(sec->kind == SK_CHANNEL ? CHANNEL_TYPES : INBOX_TYPES, 0,
	    buf, sizeof(buf));
	if (*t->value == '\0')
		diag(p, 1, t->line, "type: empty value");
	else
		diag(p, 1, t->line, "type: \"%s\" is not one of %s", t->value,
		    buf);
	return NULL;
}

/* Without a type, report only keys that no table of the kind knows. */
static void
check_untyped(struct parse *p, const struct rsec *sec, const char *label)
{
	for (size_t i = 0; i < sec->nkv; i++) {
		int known = 0;

		for (size_t j = 0; j < NSECTYPES && !known; j++)
			if (sectypes[j].kind == sec->kind &&
			    key_index(sectypes[j].keys, sec->kv[i].key) >= 0)
				known = 1;
		if (!known)
			diag(p, 1, sec->kv[i].line, "unknown key \"%s\" in "
			    "[%s]", sec->kv[i].key, label);
	}
}

/* Relay keys into c. */
static void
store_relay(struct conf *c, const struct key *keys, struct val *vals)
{
	struct {
		const char	*key;
		char		**dst;
	} f[] = {
		{ "name", &c->name },
		{ "queue", &c->queue },
		{ "secret_file", &c->secret_file },
		{ "socket", &c->socket },
		{ "spool", &c->spool },
		{ "contacts", &c->contacts },
		{ "default_policy", &c->default_policy },
		{ "language", &c->language },
		{ "timezone", &c->timezone },
		{ "country_code", &c->country_code },
		{ "log", &c->log },
		{ "group", &c->group },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		struct val *v = vget(vals, keys, f[i].key);

		free(*f[i].dst);
		*f[i].dst = v->v;
		v->v = NULL;
	}
	/* Already validated as durations by fill_vals(); NULL if bad. */
	const char *rmin = vget(vals, keys, "retry_min")->v;
	const char *rmax = vget(vals, keys, "retry_max")->v;
	if (rmin == NULL || conf_parse_duration(rmin, &c->retry_min) == -1)
		c->retry_min = 30;
	if (rmax == NULL || conf_parse_duration(rmax, &c->retry_max) == -1)
		c->retry_max = 1800;
	if (c->retry_max < c->retry_min)
		c->retry_max = c->retry_min;
}

/* Validate one section and, if it is to be kept, add it to c. */
static void
check_section(struct parse *p, struct rsec *sec, struct conf *c)
{
	const struct sectype *st;
	struct val *vals;
	char label[SECT_NAME_MAX + 64];

	snprintf(label, sizeof(label), "%s%s%.*s", skind_names[sec->kind],
	    sec->name ? " " : "", SECT_NAME_MAX + 8,
	    sec->name ? sec->name : "");
	if ((st = find_sectype(p, sec, label)) == NULL) {
		check_untyped(p, sec, label);
		return;
	}
	vals = xreallocarray(NULL, nkeys(st->keys) + 1, sizeof(*vals));
	memset(vals, 0, (nkeys(st->keys) + 1) * sizeof(*vals));
	fill_vals(p, sec, st->keys, label, st->type, vals);

	switch (sec->kind) {
	case SK_RELAY:
		if (sec->keep)
			store_relay(c, st->keys, vals);
		break;
	case SK_CHANNEL:
		if (strcmp(st->type, "smtp") == 0 ||
		    strcmp(st->type, "lgwan") == 0) {
			check_tls(p, sec, st->keys, vals);
			check_auth(p, st->keys, vals, 1);
		} else if (strcmp(st->type, "fax") == 0)
			check_auth(p, st->keys, vals, 0);
		else if (strcmp(st->type, "sms") == 0)
			check_sms(p, sec);
		if (sec->keep) {
			struct conf_channel *ch;

			c->channels = xreallocarray(c->channels,
			    c->nchannels + 1, sizeof(*c->channels));
			ch = &c->channels[c->nchannels++];
			ch->name = xstrdup(sec->name);
			ch->type = xstrdup(st->type);
			ch->line = sec->line;
			vals_to_kv(st->keys, vals, &ch->kv, &ch->nkv);
		}
		break;
	case SK_INBOX: {
		struct val *port = vget(vals, st->keys, "port");
		struct val *tls = vget(vals, st->keys, "tls");

		check_tls(p, sec, st->keys, vals);
		if (!port->given && tls->v != NULL) {
			int imap = strcmp(st->type, "imap") == 0;
			int implicit = strcmp(tls->v, "tls") == 0;

			port->v = xstrdup(imap ? (implicit ? "993" : "143") :
			    (implicit ? "995" : "110"));
		}
		if (sec->keep) {
			struct conf_inbox *ib;

			c->inboxes = xreallocarray(c->inboxes, c->ninboxes + 1,
			    sizeof(*c->inboxes));
			ib = &c->inboxes[c->ninboxes++];
			ib->name = xstrdup(sec->name);
			ib->type = xstrdup(st->type);
			ib->line = sec->line;
			vals_to_kv(st->keys, vals, &ib->kv, &ib->nkv);
		}
		break;
	}
	case SK_POLICY: {
		struct conf_policy pol;

		memset(&pol, 0, sizeof(pol));
		check_policy(p, st->keys, vals, &pol);
		if (sec->keep) {
			c->policies = xreallocarray(c->policies,
			    c->npolicies + 1, sizeof(*c->policies));
			pol.name = xstrdup(sec->name);
			pol.line = sec->line;
			c->policies[c->npolicies++] = pol;
		} else
			conf_steps_free(pol.steps, pol.nsteps);
		break;
	}
	}
	for (size_t j = 0; st->keys[j].name != NULL; j++)
		free(vals[j].v);
	free(vals);
}

static struct rsec *
find_section(struct parse *p, enum skind kind, const char *name)
{
	for (size_t i = 0; i < p->nsecs; i++)
		if (p->secs[i].kind == kind && p->secs[i].keep &&
		    (name == NULL || strcmp(p->secs[i].name, name) == 0))
			return &p->secs[i];
	return NULL;
}

/* What needs the whole file: channels named in steps, unused channels,
 * the default policy. */
static void
cross_check(struct parse *p, const struct rsec *relay)
{
	const struct rkv *dp;
	const char *name;
	int bad_steps = 0;

	for (size_t i = 0; i < p->nsecs; i++) {
		const struct rsec *sec = &p->secs[i];
		const struct rkv *kv;
		struct conf_step *steps;
		size_t n;

		if (sec->kind != SK_POLICY)
			continue;
		if ((kv = find_rkv(sec, "steps")) == NULL ||
		    conf_parse_steps(kv->value, &steps, &n, NULL, 0) == -1) {
			bad_steps = 1;
			continue;
		}
		for (size_t s = 0; s < n; s++)
			for (size_t j = 0; j < steps[s].nchannels; j++) {
				const char *ch = steps[s].channels[j];
				struct rsec *cs;

				if ((cs = find_section(p, SK_CHANNEL, ch)))
					cs->used = 1;
				else
					diag(p, 1, kv->line, "steps: unknown "
					    "channel \"%s\" (no [channel %s])",
					    ch, ch);
			}
		conf_steps_free(steps, n);
	}
	for (size_t i = 0; i < p->nsecs && !bad_steps; i++)
		if (p->secs[i].kind == SK_CHANNEL && p->secs[i].keep &&
		    !p->secs[i].used)
			diag(p, 0, p->secs[i].line, "channel \"%s\" is not used "
			    "by any policy", p->secs[i].name);

	dp = find_rkv(relay, "default_policy");
	name = dp != NULL ? dp->value : "standard";
	if (!valid_name(name) || find_section(p, SK_POLICY, name) != NULL)
		return;
	if (dp != NULL)
		diag(p, 1, dp->line, "default_policy: no [policy %s]", name);
	else if (find_section(p, SK_POLICY, NULL) == NULL)
		diag(p, 1, relay->line, "no [policy] section: at least one is "
		    "needed, and default_policy (not set) defaults to "
		    "\"standard\"");
	else
		diag(p, 1, relay->line, "default_policy is not set and there is "
		    "no [policy standard] (the default): set default_policy");
}

static void
validate(struct parse *p, struct conf *c)
{
	struct rsec *relay;
	size_t nsecs;

	if (find_section(p, SK_RELAY, NULL) == NULL) {
		add_section(p, SK_RELAY, NULL, 0);	/* all defaults */
		p->cur = CUR_NONE;
	}
	nsecs = p->nsecs;
	for (size_t i = 0; i < nsecs; i++)
		check_section(p, &p->secs[i], c);
	relay = find_section(p, SK_RELAY, NULL);
	cross_check(p, relay);
}

static void
parse_free(struct parse *p)
{
	for (size_t i = 0; i < p->nsecs; i++) {
		for (size_t j = 0; j < p->secs[i].nkv; j++) {
			free(p->secs[i].kv[j].key);
			free(p->secs[i].kv[j].value);
		}
		free(p->secs[i].kv);
		free(p->secs[i].name);
	}
	free(p->secs);
	for (size_t i = 0; i < p->ndiags; i++)
		free(p->diags[i].text);
	free(p->diags);
	free(p->dir);
	free(p->buf);
}

int
conf_load(const char *path, struct conf **out, struct conf_msgs *msgs)
{
	static char prefixes[] = ";#";
	struct inih_settings ours = {
		.multiline = false,	/* a value ends with its line; reader()
					   also strips leading blanks, so an
					   indented line never continues one */
		.bom = false,		/* reader() strips it */
		.inline_comments = true,
		.use_stack = true,	/* a buffer of max_line bytes */
		.realloc_ = false,
		.stop_first = false,
		.no_value = false,
		.start_prefixes = prefixes,
		.inline_prefixes = prefixes,
		.max_line = CONF_LINE_MAX + 3,	/* + "\r\n\0" */
	};
	struct conf_msgs local;
	struct parse p;
	struct conf *c;
	int r;

	*out = NULL;
	if (msgs == NULL) {
		memset(&local, 0, sizeof(local));
		msgs = &local;
	}
	memset(&p, 0, sizeof(p));
	p.path = path;
	p.cur = CUR_NONE;
	if ((p.fp = fopen(path, "re")) == NULL) {
		conf_msgs_add(msgs, 1, path, 0, "cannot open: %s",
		    strerror(errno));
		if (msgs == &local)
			conf_msgs_free(&local);
		return -1;
	}
	p.dir = config_dir(path);

	inih_swap(&ours);
	r = ini_parse_stream(reader, &p, handler, &p);
	inih_swap(&ours);
	fclose(p.fp);
	if (r == -2)
		abort();	/* libinih out of memory */

	c = xreallocarray(NULL, 1, sizeof(*c));
	memset(c, 0, sizeof(*c));
	c->path = xstrdup(path);
	if (p.read_errno != 0)
		diag(&p, 1, 0, "cannot read: %s", strerror(p.read_errno));
	else {
		if (r > 0)	/* reader() hands it only well-formed lines */
			diag(&p, 1, r, "libinih rejected this line");
		validate(&p, c);
	}

	if (p.ndiags > 1)
		qsort(p.diags, p.ndiags, sizeof(*p.diags), diag_cmp);
	for (size_t i = 0; i < p.ndiags; i++)
		conf_msgs_add(msgs, p.diags[i].error, path, p.diags[i].line,
		    "%s", p.diags[i].text);
	r = p.errors > 0 ? -1 : 0;
	parse_free(&p);
	if (msgs == &local)
		conf_msgs_free(&local);
	if (r == -1) {
		conf_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

/* ---- policy steps ----------------------------------------------------- */

static void steps_err(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
steps_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* One step "a+b@15m" (trimmed) into st; prev is the step before's delay. */
static int
parse_step(const char *tok, size_t no, int64_t prev, struct conf_step *st,
    char *err, size_t errlen)
{
	const char *at = strchr(tok, '@'), *end, *p, *e, *b;
	char dbuf[32], pbuf[32];
	size_t len;
	char *name = NULL;

	memset(st, 0, sizeof(*st));
	st->delay = prev;
	end = at != NULL ? at : tok + strlen(tok);
	for (p = tok;; p = e + 1) {
		for (e = p; e < end && *e != '+'; e++)
			;
		for (b = e; b > p && is_blank(b[-1]); b--)
			;
		while (p < b && is_blank(*p))
			p++;
		len = (size_t)(b - p);
		name = xstrndup(p, len);
		if (len == 0) {
			steps_err(err, errlen, "step %zu: empty channel name",
			    no);
			goto fail;
		}
		if (!valid_name(name)) {
			steps_err(err, errlen, "step %zu: invalid channel name "
			    "\"%s\" (1-%d of A-Z a-z 0-9 _ -)", no, name,
			    SECT_NAME_MAX);
			goto fail;
		}
		for (size_t i = 0; i < st->nchannels; i++)
			if (strcmp(st->channels[i], name) == 0) {
				steps_err(err, errlen, "step %zu: channel "
				    "\"%s\" listed twice", no, name);
				goto fail;
			}
		st->channels = xreallocarray(st->channels, st->nchannels + 1,
		    sizeof(*st->channels));
		st->channels[st->nchannels++] = name;
		if (e == end)
			break;
	}
	if (at != NULL) {
		for (p = at + 1; is_blank(*p); p++)
			;
		if (*p == '\0') {
			steps_err(err, errlen, "step %zu: missing delay after "
			    "\"@\"", no);
			return -1;
		}
		if (conf_parse_duration(p, &st->delay) == -1) {
			steps_err(err, errlen, "step %zu: \"%s\" is not a "
			    "duration (a number with s, m, h or d)", no, p);
			return -1;
		}
	}
	if (st->delay < prev) {
		fmt_duration(st->delay, dbuf, sizeof(dbuf));
		fmt_duration(prev, pbuf, sizeof(pbuf));
		steps_err(err, errlen, "step %zu: delay %s is earlier than "
		    "step %zu's %s (delays must not decrease)", no, dbuf,
		    no - 1, pbuf);
		return -1;
	}
	return 0;
fail:
	free(name);
	return -1;
}

int
conf_parse_steps(const char *s, struct conf_step **stepsp, size_t *nstepsp,
    char *err, size_t errlen)
{
	struct conf_step *steps = NULL, st;
	size_t n = 0, ntok;
	char **tok;
	int64_t prev = 0;

	*stepsp = NULL;
	*nstepsp = 0;
	ntok = conf_split_list(s, &tok);
	if (ntok == 1 && tok[0][0] == '\0') {
		steps_err(err, errlen, "no steps");
		goto fail;
	}
	for (size_t i = 0; i < ntok; i++) {
		if (tok[i][0] == '\0') {
			steps_err(err, errlen, "step %zu is empty", i + 1);
			goto fail;
		}
		if (parse_step(tok[i], i + 1, prev, &st, err, errlen) == -1) {
			for (size_t j = 0; j < st.nchannels; j++)
				free(st.channels[j]);
			free(st.channels);
			goto fail;
		}
		steps = xreallocarray(steps, n + 1, sizeof(*steps));
		steps[n++] = st;
		prev = st.delay;
	}
	conf_free_list(tok, ntok);
	*stepsp = steps;
	*nstepsp = n;
	return 0;
fail:
	conf_steps_free(steps, n);
	conf_free_list(tok, ntok);
	return -1;
}

/* ---- the reference ---------------------------------------------------- */

/* A key's type, in words, for the reference. */
static void
type_doc(const struct key *k, char *buf, size_t len)
{
	char list[128], d[32];

	switch (k->type) {
	case KT_STRING:
		snprintf(buf, len, "text");
		break;
	case KT_RELAYNAME:
		snprintf(buf, len, "1-%d of `A-Z a-z 0-9 . -`", RELAY_NAME_MAX);
		break;
	case KT_POLICYREF:
		snprintf(buf, len, "a policy name");
		break;
	case KT_HOST:
		snprintf(buf, len, "host name or IP address");
		break;
	case KT_PORT:
		snprintf(buf, len, "port (1-65535)");
		break;
	case KT_BOOL:
		snprintf(buf, len, "yes or no");
		break;
	case KT_DURATION:
		fmt_duration(k->min, d, sizeof(d));
		if (k->min > 0)
			snprintf(buf, len, "duration, at least %s", d);
		else
			snprintf(buf, len, "duration");
		break;
	case KT_SIZE:
		snprintf(buf, len, "size, at least %lld bytes",
		    (long long)k->min);
		break;
	case KT_ENUM:
		list_choices(k->arg, 1, list, sizeof(list));
		snprintf(buf, len, "one of %s", list);
		break;
	case KT_INT:
		snprintf(buf, len, "integer %lld-%lld", (long long)k->min,
		    (long long)k->max);
		break;
	case KT_BAUD:
		snprintf(buf, len, "baud rate, 1200 to 921600");
		break;
	case KT_MAILBOX:
		snprintf(buf, len, "mail address");
		break;
	case KT_DOMAINS:
		snprintf(buf, len, "domain names, comma-separated");
		break;
	case KT_DEVICES:
		snprintf(buf, len, "devices, comma-separated");
		break;
	case KT_PINFILES:
		snprintf(buf, len, "files or `-`, comma-separated");
		break;
	case KT_FILE:
		snprintf(buf, len, "file, must exist");
		break;
	case KT_CAFILE:
		snprintf(buf, len, "file");
		break;
	case KT_PATH:
		snprintf(buf, len, "path");
		break;
	case KT_SOCKET:
		snprintf(buf, len, "path, at most %zu bytes",
		    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		break;
	case KT_LOG:
		snprintf(buf, len, "`syslog`, `stderr` or a file path");
		break;
	case KT_TIMEZONE:
		snprintf(buf, len, "zone name under `%s`", ZONEINFO);
		break;
	case KT_GROUP:
		snprintf(buf, len, "group name, or empty");
		break;
	case KT_CCODE:
		snprintf(buf, len, "1-3 digits");
		break;
	case KT_STEPS:
		snprintf(buf, len, "steps");
		break;
	}
}

void
conf_write_reference(FILE *fp)
{
	char type[160];

	fprintf(fp,
	    "# dengon configuration reference\n"
	    "\n"
	    "<!-- Generated by conf_write_reference() (conf/conf_file.c) from "
	    "the key tables the parser uses.  Do not edit: run `make docs`. "
	    "-->\n"
	    "\n"
	    "The configuration file (default `/etc/dengon/dengon.conf`, or "
	    "`$DENGON_CONF`, or `-c FILE`) is INI:\n"
	    "\n"
	    "- `[section]` lines, then `key = value` lines; keys are "
	    "case-sensitive; a key may appear once per section.\n"
	    "- A line whose first non-blank character is `#` or `;` is a "
	    "comment.  Elsewhere, a `#` or `;` preceded by a space or tab "
	    "starts a comment, so a value cannot contain ` #` or ` ;` "
	    "(it may contain `a#b`).\n"
	    "- A value ends with its line: there are no continuation lines.  "
	    "A line holds at most %d bytes.\n"
	    "- Unknown sections and keys are errors.  Every problem is "
	    "reported as `FILE:LINE: message`, all of them.\n"
	    "- Relative paths are taken from the folder of the configuration "
	    "file.\n"
	    "- Durations are a number with `s`, `m`, `h` or `d` (a bare "
	    "number is seconds; at most 365d).  Sizes are bytes, or a number "
	    "with `k` (1024 bytes) or `M` (1024k).  Booleans are `yes`/`no`, `true`/`false`, "
	    "`on`/`off` or `1`/`0`.\n"
	    "- Secrets are never written here: keys ending in `_file` name a "
	    "file that holds them, and that file must exist (except "
	    "`secret_file`, which `dengon init` creates, and `ca_file`, "
	    "which must exist only when it is used).\n"
	    "- Section names (`NAME`) are 1-%d of `A-Z a-z 0-9 _ -`.\n",
	    CONF_LINE_MAX, SECT_NAME_MAX);

	for (size_t i = 0; i < NSECTYPES; i++) {
		const struct sectype *st = &sectypes[i];

		if (st->kind == SK_RELAY)
			fprintf(fp, "\n## [relay]\n\n");
		else if (st->type != NULL)
			fprintf(fp, "\n## [%s NAME], type = %s\n\n",
			    skind_names[st->kind], st->type);
		else
			fprintf(fp, "\n## [%s NAME]\n\n",
			    skind_names[st->kind]);
		fprintf(fp, "%s\n\n", st->help);
		fprintf(fp, "| key | type | required | default | meaning |\n"
		    "|---|---|---|---|---|\n");
		for (const struct key *k = st->keys; k->name != NULL; k++) {
			type_doc(k, type, sizeof(type));
			fprintf(fp, "| `%s` | %s | %s | ", k->name, type,
			    (k->flags & K_REQ) ? "yes" : "no");
			if (k->def != NULL)
				fprintf(fp, "`%s`", k->def);
			else if (k->doc_def != NULL)
				fprintf(fp, "%s", k->doc_def);
			else
				fprintf(fp, "-");
			fprintf(fp, " | %s |\n", k->help);
		}
	}
}
