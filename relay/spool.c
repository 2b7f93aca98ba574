/*
 * spool.c - the spool drop folder: alerts submitted as files.
 *
 * Another program writes SPOOL/tmp/NAME and renames it into
 * SPOOL/incoming/ (so a file there is always complete).  spool_scan()
 * accepts each one: a valid .alert file becomes an alert and moves to
 * done/; an invalid one moves to rejected/ beside NAME.error, which says
 * why, as "NAME:LINE: message".
 *
 * Promise: a file leaves incoming/ only after what it asked for is
 * committed (done/) or it has been judged bad (rejected/).  A runtime
 * failure of the queue (disk full, busy) leaves it in incoming/ for the
 * next scan.  The alert records the file's name and SHA-256 as its source,
 * so a crash between the commit and the rename does not accept it twice.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "relay/relay.h"

#define SPOOL_MAX_FILE	(INGEST_MAX_BODY + 16 * 1024)

/* snprintf for paths: -1 if the result would not fit. */
static int __attribute__((format(printf, 3, 4)))
path_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

static const char *spool_dirs[] = { "tmp", "incoming", "done", "rejected" };

int
spool_init(const struct conf *c, char *err, size_t errlen)
{
	char path[4096];
	struct group *gr = NULL;

	if (c->group != NULL && *c->group != '\0')
		gr = getgrnam(c->group);
	for (int i = -1; i < 4; i++) {
		if (i < 0)
			snprintf(path, sizeof(path), "%s", c->spool);
		else
			snprintf(path, sizeof(path), "%s/%s", c->spool,
			    spool_dirs[i]);
		if (mkdir(path, 0770) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", path,
			    strerror(errno));
			return -1;
		}
		if (gr != NULL && chown(path, (uid_t)-1, gr->gr_gid) == -1) {
			snprintf(err, errlen, "cannot give %s to group %s: %s",
			    path, c->group, strerror(errno));
			return -1;
		}
		if (chmod(path, 0770) == -1) {
			snprintf(err, errlen, "cannot chmod %s: %s", path,
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* Read a whole file (at most max bytes) into an allocated NUL-terminated
 * buffer; the caller frees it.  NULL with errno on failure (EFBIG if too
 * large). */
static char *
read_file(const char *path, size_t max, size_t *lenp)
{
	FILE *fp;
	char *buf;
	size_t len;

	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	if ((buf = malloc(max + 2)) == NULL) {
		fclose(fp);
		return NULL;
	}
	len = fread(buf, 1, max + 1, fp);
	if (ferror(fp)) {
		fclose(fp);
		free(buf);
		errno = EIO;
		return NULL;
	}
	fclose(fp);
	if (len > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

/* "spool:NAME sha256:HEX" - the source recorded with the alert. */
static void
spool_source(const char *name, const char *data, size_t len, char *out,
    size_t outlen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(out, outlen, "spool:%s sha256:%s", name, hex);
}

struct spool_alert {
	char	*to, *subject, *tlp, *policy, *expires, *drill;
	char	*body;		/* points into the file buffer */
};

/* Parse a .alert file in place.  0, or -1 with "LINE: message" in err. */
static int
spool_parse(char *data, size_t len, struct spool_alert *sa, int *errline,
    char *err, size_t errlen)
{
	static const char *names[] = { "To", "Subject", "TLP", "Policy",
	    "Expires", "Drill" };
	char **slots[] = { &sa->to, &sa->subject, &sa->tlp, &sa->policy,
	    &sa->expires, &sa->drill };
	char *p = data, *eol, *colon, *v;
	int line = 0;

	memset(sa, 0, sizeof(*sa));
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	for (;;) {
		line++;
		*errline = line;
		if (*p == '\0') {
			snprintf(err, errlen, "end of file before the blank line "
			    "that ends the headers");
			return -1;
		}
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		if (eol > p && eol[-1] == '\r')
			eol[-1] = '\0';
		if (*eol != '\0')
			*eol++ = '\0';
		if (*p == '\0') {		/* the blank line */
			p = eol;
			break;
		}
		if ((colon = strchr(p, ':')) == NULL) {
			snprintf(err, errlen, "expected 'Header: value', got "
			    "a line without ':'");
			return -1;
		}
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (char *t = v + strlen(v); t > v && (t[-1] == ' ' ||
		    t[-1] == '\t'); )
			*--t = '\0';
		size_t i;
		for (i = 0; i < 6; i++)
			if (strcasecmp(p, names[i]) == 0)
				break;
		if (i == 6) {
			snprintf(err, errlen, "unknown header '%.64s' (known: "
			    "To, Subject, TLP, Policy, Expires, Drill)", p);
			return -1;
		}
		if (*slots[i] != NULL) {
			snprintf(err, errlen, "header %s given twice", names[i]);
			return -1;
		}
		*slots[i] = v;
		p = eol;
	}
	sa->body = p;
	*errline = 0;
	if (sa->to == NULL || *sa->to == '\0') {
		*errline = 1;
		snprintf(err, errlen, "no To: header (who is the alert for?)");
		return -1;
	}
	return 0;
}

/* Write DIR/NAME.error atomically. */
static void
spool_write_error(const char *dir, const char *name, const char *msg)
{
	char tmp[4096], path[4096];
	FILE *fp;

	if (path_fmt(tmp, sizeof(tmp), "%s/.%s.error.tmp", dir, name) == -1 ||
	    path_fmt(path, sizeof(path), "%s/%s.error", dir, name) == -1) {
		log_errx("spool: %s/%s: path too long", dir, name);
		return;
	}
	if ((fp = fopen(tmp, "w")) == NULL) {
		log_errx("spool: cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(fp, "%s\n", msg);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		log_errx("spool: cannot write %s: %s", tmp, strerror(errno));
		fclose(fp);
		unlink(tmp);
		return;
	}
	fclose(fp);
	if (rename(tmp, path) == -1)
		log_errx("spool: cannot rename %s: %s", tmp, strerror(errno));
}

/* Move incoming/NAME to DIR/NAME, never over an existing file. */
static int
spool_move(const struct conf *c, const char *name, const char *dir)
{
	char from[4096], to[4096];

	if (path_fmt(from, sizeof(from), "%s/incoming/%s", c->spool, name) ||
	    path_fmt(to, sizeof(to), "%s/%s/%s", c->spool, dir, name)) {
		log_errx("spool: %s: path too long", name);
		return -1;
	}
	for (int i = 1; access(to, F_OK) == 0 && i < 1000; i++)
		if (path_fmt(to, sizeof(to), "%s/%s/%s.%d", c->spool, dir, name,
		    i) == -1)
			return -1;
	if (rename(from, to) == -1) {
		log_errx("spool: cannot move %s to %s: %s", from, to,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* Reject one file: DIR/NAME.error, then the move. */
static void
spool_reject(const struct conf *c, const char *name, int line,
    const char *why)
{
	char dir[4096], msg[1024];

	snprintf(dir, sizeof(dir), "%s/rejected", c->spool);
	if (line > 0)
		snprintf(msg, sizeof(msg), "%s:%d: %s", name, line, why);
	else
		snprintf(msg, sizeof(msg), "%s: %s", name, why);
	spool_write_error(dir, name, msg);
	if (spool_move(c, name, "rejected") == 0)
		log_warnx("spool: rejected %s", msg);
}

/* Accept one file; 1 accepted, 0 rejected, -1 left for later. */
static int
spool_take(struct queue *q, const struct conf *c,
    const struct code_keyring *kr, const char *name)
{
	char path[4096], err[512], source[512], id[64];
	struct spool_alert sa;
	struct queue_new_alert na;
	enum queue_tlp tlp = QUEUE_TLP_GREEN;
	int64_t expires = 0, n = 0;
	char *data, *subject = NULL;
	size_t len = 0, nlen = strlen(name);
	int line = 0, rc, drill = 0;

	if (nlen > 4 && strcmp(name + nlen - 4, ".xml") == 0) {
		spool_reject(c, name, 0, "CAP 1.2 (.xml) files are not "
		    "supported yet; write a .alert file");
		return 0;
	}
	if (nlen <= 6 || strcmp(name + nlen - 6, ".alert") != 0) {
		spool_reject(c, name, 0, "not a .alert file");
		return 0;
	}
	snprintf(path, sizeof(path), "%s/incoming/%s", c->spool, name);
	if ((data = read_file(path, SPOOL_MAX_FILE, &len)) == NULL) {
		if (errno == EFBIG) {
			spool_reject(c, name, 0, "the file is too large");
			return 0;
		}
		log_errx("spool: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	spool_source(name, data, len, source, sizeof(source));
	if (memchr(data, '\0', len) != NULL) {
		spool_reject(c, name, 0, "the file contains NUL bytes");
		goto rejected;
	}
	if (spool_parse(data, len, &sa, &line, err, sizeof(err)) == -1) {
		spool_reject(c, name, line, err);
		goto rejected;
	}
	if (ingest_check_body(sa.body, err, sizeof(err)) == -1) {
		spool_reject(c, name, 0, err);
		goto rejected;
	}
	if (sa.subject == NULL || *sa.subject == '\0')
		sa.subject = subject = ingest_default_subject(sa.body);
	if (sa.subject == NULL || ingest_check_subject(sa.subject, err,
	    sizeof(err)) == -1) {
		spool_reject(c, name, 0, sa.subject ? err : "no subject");
		goto rejected;
	}
	if (sa.tlp != NULL && queue_tlp_parse(sa.tlp, &tlp) == -1) {
		spool_reject(c, name, 0, "TLP: must be CLEAR, GREEN, AMBER, "
		    "AMBER+STRICT or RED");
		goto rejected;
	}
	if (sa.expires != NULL && (conf_parse_duration(sa.expires,
	    &expires) == -1 || expires == 0)) {
		spool_reject(c, name, 0, "Expires: must be a duration such as "
		    "90m, 24h or 2d");
		goto rejected;
	}
	if (sa.drill != NULL && (drill = conf_parse_bool(sa.drill)) == -1) {
		spool_reject(c, name, 0, "Drill: must be yes or no");
		goto rejected;
	}
	if (sa.policy != NULL && conf_policy_find(c, sa.policy) == NULL) {
		spool_reject(c, name, 0, "Policy: no such [policy] in the "
		    "configuration");
		goto rejected;
	}
	if (queue_alert_find_source(q, source, id, sizeof(id)) == QUEUE_OK) {
		/* Committed before a crash, not yet moved: done already. */
		log_info("spool: %s was already accepted as alert %s", name, id);
		spool_move(c, name, "done");
		free(subject);
		free(data);
		return 1;
	}
	memset(&na, 0, sizeof(na));
	na.subject = sa.subject;
	na.body = sa.body;
	na.tlp = tlp;
	na.drill = drill;
	na.policy = sa.policy;
	na.expires_in = expires;
	na.targets = sa.to;
	na.source = source;
	rc = queue_alert_accept(q, c, kr, &na, id, sizeof(id), &n);
	if (rc == QUEUE_ERR) {
		log_errx("spool: %s: %s (left in incoming/)", name,
		    queue_errmsg(q));
		free(subject);
		free(data);
		return -1;
	}
	if (rc != QUEUE_OK) {
		spool_reject(c, name, 0, queue_errmsg(q));
		goto rejected;
	}
	log_info("spool: %s accepted as alert %s for %lld recipients", name, id,
	    (long long)n);
	spool_move(c, name, "done");
	free(subject);
	free(data);
	return 1;
rejected:
	free(subject);
	free(data);
	return 0;
}

/* Order names so that files are taken in the order they were named. */
static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
spool_scan(struct queue *q, const struct conf *c,
    const struct code_keyring *kr, struct spool_result *res)
{
	char path[4096];
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	memset(res, 0, sizeof(*res));
	snprintf(path, sizeof(path), "%s/incoming", c->spool);
	if ((d = opendir(path)) == NULL) {
		log_errx("spool: cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char **v;

		if (de->d_name[0] == '.')
			continue;
		if ((v = realloc(names, (n + 1) * sizeof(*v))) == NULL ||
		    (v[n] = strdup(de->d_name)) == NULL) {
			names = v ? v : names;
			break;
		}
		names = v;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		switch (spool_take(q, c, kr, names[i])) {
		case 1:
			res->accepted++;
			break;
		case 0:
			res->rejected++;
			break;
		default:
			break;
		}
		free(names[i]);
	}
	free(names);
	return 0;
}
