/*
 * conf.h - the configuration file and the contact directory.
 *
 * conf.c reads the INI file of CONTRACT.md ("Configuration file") with
 * libinih, checks every key against a key table per section type, and
 * builds a struct conf.  contacts.c reads the CSV contact directory
 * ("Contact directory (CSV)") into a struct contact_list.
 *
 * Both report every problem they find, not only the first, as
 * "FILE:LINE: message" lines collected in a struct conf_msgs, so that the
 * operator can fix a file in one pass.  Neither writes anything anywhere:
 * they only read and validate.
 *
 * Memory: every struct returned by a load or parse function is owned by
 * the caller and released with the matching *_free.  Strings inside are
 * owned by their struct.  const char * returned by lookups is borrowed.
 */
#ifndef DENGON_CONF_H
#define DENGON_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- diagnostics ------------------------------------------------------ */

/* A list of "FILE:LINE: message" lines, errors and warnings. */
struct conf_msgs {
	char	**v;		/* each line, owned */
	size_t	  n;
	size_t	  errors;
	size_t	  warnings;
};

/* Append one message; line <= 0 leaves out the line number. */
void conf_msgs_add(struct conf_msgs *m, int is_error, const char *file,
    int line, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Print every message, one per line. */
void conf_msgs_print(const struct conf_msgs *m, FILE *fp);
void conf_msgs_free(struct conf_msgs *m);

/* ---- value parsers (shared by the config, the CLI and the spool) ------- */

/* "90", "90s", "15m", "2h", "1d" -> seconds.  0 on success, -1 if malformed
 * or out of range (more than 365 days). A bare number means seconds. */
int conf_parse_duration(const char *s, int64_t *seconds);
/* "512", "64k", "2M" -> bytes.  0 on success, -1 if malformed. */
int conf_parse_size(const char *s, int64_t *bytes);
/* "yes/no/true/false/on/off/1/0" -> 1/0; -1 if neither. */
int conf_parse_bool(const char *s);

/* ---- the configuration ------------------------------------------------ */

/* One key = value line kept verbatim for a channel or inbox driver. */
struct conf_kv {
	char	*key;
	char	*value;
	int	 line;
};

/* [channel NAME]: the type picks the driver and the CSV column. */
struct conf_channel {
	char		*name;		/* what policies use */
	char		*type;		/* smtp | lgwan | fax | sms */
	int		 line;		/* of the [channel NAME] header */
	struct conf_kv	*kv;		/* every key, validated by its table */
	size_t		 nkv;
};

/* [inbox NAME] */
struct conf_inbox {
	char		*name;
	char		*type;		/* imap | pop3 */
	int		 line;
	struct conf_kv	*kv;
	size_t		 nkv;
};

/* One step of a policy: "mail+lgwan" or "fax@15m". */
struct conf_step {
	char	**channels;		/* channel names, owned */
	size_t	  nchannels;
	int64_t	  delay;		/* seconds after acceptance */
};

enum conf_confirm {
	CONF_CONFIRM_ACK,		/* a person confirms */
	CONF_CONFIRM_READ,		/* an MDN is enough */
	CONF_CONFIRM_DELIVERED		/* arrival evidence is enough */
};

/* [policy NAME] */
struct conf_policy {
	char			*name;
	int			 line;
	struct conf_step	*steps;
	size_t			 nsteps;
	int64_t			 repeat;	/* seconds; 0 = no repeat */
	int64_t			 expire;	/* seconds */
	enum conf_confirm	 confirm;
};

/*
 * The whole configuration.  Every [relay] key has its CONTRACT.md default
 * when absent.  Relative paths are resolved against the directory of the
 * configuration file, so a config and its files can travel together.
 */
struct conf {
	char	*path;			/* the file this came from */
	char	*name;
	char	*queue;
	char	*secret_file;
	char	*socket;
	char	*spool;
	char	*contacts;
	char	*default_policy;
	char	*language;		/* "ja" | "en" */
	char	*timezone;		/* NULL: the system's */
	char	*country_code;		/* digits only, e.g. "81" */
	char	*log;			/* "syslog" | "stderr" | a path */
	char	*group;			/* NULL or "": no group change */
	int64_t	 retry_min;		/* seconds: first retry backoff */
	int64_t	 retry_max;		/* seconds: bound of the backoff */

	struct conf_channel	*channels;
	size_t			 nchannels;
	struct conf_inbox	*inboxes;
	size_t			 ninboxes;
	struct conf_policy	*policies;
	size_t			 npolicies;
};

/*
 * Read and validate the configuration file at path.  Every problem is
 * appended to msgs as "FILE:LINE: message".  Returns 0 and sets *out when
 * there are no errors (warnings are allowed); returns -1 otherwise, with
 * *out set to NULL.
 */
int conf_load(const char *path, struct conf **out, struct conf_msgs *msgs);
void conf_free(struct conf *c);

/* The default configuration file: $DENGON_CONF, else /etc/dengon/dengon.conf. */
const char *conf_default_path(void);

/* Lookups; NULL when absent.  Results are borrowed from c. */
const struct conf_channel *conf_channel_find(const struct conf *c,
    const char *name);
const struct conf_policy *conf_policy_find(const struct conf *c,
    const char *name);
const char *conf_channel_get(const struct conf_channel *ch, const char *key);
const char *conf_inbox_get(const struct conf_inbox *ib, const char *key);

/* Split a comma-separated value ("devices", "domains", ...) into trimmed,
 * owned entries (empty ones kept, so that they can be reported); returns
 * the count, *out allocated.  Free with conf_free_list(). */
size_t conf_split_list(const char *s, char ***out);
void conf_free_list(char **v, size_t n);

/* The CSV column a channel type reads its address from: smtp -> "mail",
 * lgwan -> "lgwan", fax -> "fax", sms -> "sms"; NULL for unknown types. */
const char *conf_type_column(const char *type);

/*
 * Parse a policy's steps value ("mail+lgwan, fax@15m, sms@30m").  On
 * success returns 0 and an owned array (free with conf_steps_free); on
 * failure -1 with a reason in err.  Channel names are not resolved here.
 */
int conf_parse_steps(const char *s, struct conf_step **steps, size_t *nsteps,
    char *err, size_t errlen);
void conf_steps_free(struct conf_step *steps, size_t nsteps);

/*
 * Write the configuration reference (every section, key, type, default and
 * meaning, from the same key tables the parser uses) as Markdown.  This is
 * how docs/configuration.md is kept in step with the code.
 */
void conf_write_reference(FILE *fp);

/* ---- the contact directory -------------------------------------------- */

/* One recipient as imported.  Absent optional fields are NULL. */
struct contact {
	char	*id;
	char	*name;
	char	*org;
	char	*groups;	/* group names joined by ';', no empties */
	char	*mail;		/* addr-spec */
	char	*lgwan;		/* addr-spec */
	char	*fax;		/* E.164: "+81312345678" */
	char	*sms;		/* E.164 */
	char	*policy;
	int	 line;		/* where it was in the CSV (0 if not from CSV) */
};

struct contact_list {
	struct contact	*v;
	size_t		 n;
};

enum contacts_encoding {
	CONTACTS_ENC_AUTO,		/* UTF-8 if it is valid UTF-8, else CP932 */
	CONTACTS_ENC_UTF8,
	CONTACTS_ENC_CP932
};

/* "utf-8" | "utf8" | "cp932" | "shift_jis" | "sjis" -> encoding; -1 if unknown. */
int contacts_encoding_parse(const char *s, enum contacts_encoding *enc);

/*
 * Parse a whole CSV directory held in memory.  file names the source in
 * messages.  All or nothing: returns 0 with *out filled when no row is bad
 * (warnings, e.g. fewer than two contact means, may be added), -1 with
 * *out empty otherwise; every bad row is reported with its line and column.
 * country_code is used to store national numbers in E.164.
 */
int contacts_parse(const char *file, const char *data, size_t len,
    enum contacts_encoding enc, const char *country_code,
    struct contact_list *out, struct conf_msgs *msgs);
/* Read path and contacts_parse() it; a read error is reported in msgs. */
int contacts_load(const char *path, enum contacts_encoding enc,
    const char *country_code, struct contact_list *out, struct conf_msgs *msgs);
/*
 * Check a parsed directory against the configuration: a policy column that
 * names no [policy], an lgwan address outside every lgwan channel's
 * domains.  Problems are errors in msgs, at the contact's line.
 */
int contacts_check(const char *file, const struct contact_list *l,
    const struct conf *c, struct conf_msgs *msgs);
void contacts_free(struct contact_list *l);

/*
 * Normalise a phone number to E.164 into out.  Spaces and hyphens (also
 * their full-width forms) are removed, full-width digits folded; a
 * national number (leading 0) becomes +<country_code><rest>.  Returns 0, or
 * -1 with *why set to a static reason (letters, AT-command characters,
 * length, missing country code ...).
 */
int contacts_normalise_phone(const char *in, const char *country_code,
    char *out, size_t outlen, const char **why);
/* 1 if addr is an acceptable addr-spec (no display name, no CR/LF, no
 * quoted local part), else 0 with *why set. */
int contacts_valid_address(const char *addr, const char **why);
/* 1 if id is 1-64 of A-Z a-z 0-9 . _ - */
int contacts_valid_id(const char *id);

#endif /* DENGON_CONF_H */
