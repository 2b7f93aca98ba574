/*
 * queue_alert.c - accepting an alert, and reading alerts, deliveries,
 * attempts, events and the work waiting.
 *
 * queue_alert_accept() is the one place deliveries are created: in one
 * BEGIN IMMEDIATE transaction it resolves the targets into the
 * connection's temp table `target` (so duplicates collapse), checks every
 * policy, numbers the alert (YYYYMMDD-NNNN from the table alert_seq, so
 * two programs accepting at once never pick the same id), and inserts the
 * alert, its first revision and one delivery per recipient with the
 * addresses, policy, expiry and confirmation code fixed at that moment.
 * A re-import of the directory never changes them.
 *
 * The readers hand out strings borrowed from SQLite for the duration of a
 * callback; queue_alert_get() copies (queue_alert_info_free()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "queue/queue_impl.h"

#define TOKEN_BYTES	16	/* delivery.token: 32 hex digits */
#define TOKEN_BATCH	64	/* tokens drawn from RAND_bytes() at once */

/* 1 if id is 1-40 of A-Z a-z 0-9 - (CONTRACT.md), else 0. */
static int
valid_alert_id(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > 40)
		return 0;
	return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-") == n;
}

/* Add one comma-separated target (not empty) to the temp table. */
static int
add_target(struct queue *q, const char *t)
{
	static const char what[] = "resolving targets";
	sqlite3_stmt *s;

	if (strcmp(t, "all") == 0) {
		s = queue_st(q, ST_RCPT_COUNT);
		if (sqlite3_step(s) != SQLITE_ROW)
			return queue_db_fail(q, what);
		if (COL_INT(s, 0) == 0) {
			queue_done(s);
			return queue_fail(q, QUEUE_NOTFOUND,
			    "the directory is empty (run 'dengon contacts "
			    "import')");
		}
		queue_done(s);
		s = queue_st(q, ST_TGT_ALL);
	} else if (strncmp(t, "group:", 6) == 0) {
		s = queue_st(q, ST_GROUP_COUNT);
		BIND_TEXT(s, 1, t + 6);
		if (sqlite3_step(s) != SQLITE_ROW)
			return queue_db_fail(q, what);
		if (COL_INT(s, 0) == 0) {
			queue_done(s);
			return queue_fail(q, QUEUE_NOTFOUND,
			    "no recipient in group '%s'", t + 6);
		}
		queue_done(s);
		s = queue_st(q, ST_TGT_GROUP);
		BIND_TEXT(s, 1, t + 6);
	} else {
		s = queue_st(q, ST_RCPT_EXISTS);
		BIND_TEXT(s, 1, t);
		switch (sqlite3_step(s)) {
		case SQLITE_ROW:
			break;
		case SQLITE_DONE:
			queue_done(s);
			return queue_fail(q, QUEUE_NOTFOUND,
			    "unknown recipient '%s'", t);
		default:
			return queue_db_fail(q, what);
		}
		queue_done(s);
		s = queue_st(q, ST_TGT_ID);
		BIND_TEXT(s, 1, t);
	}
	if (sqlite3_step(s) != SQLITE_DONE)
		return queue_db_fail(q, what);
	queue_done(s);
	return QUEUE_OK;
}

/* Resolve "r1, group:G, all" into the temp table target. */
static int
resolve_targets(struct queue *q, const char *targets)
{
	char *copy, *p, *t, *save = NULL;
	int rc = QUEUE_OK, any = 0;

	if ((copy = strdup(targets)) == NULL)
		return queue_fail(q, QUEUE_ERR, "out of memory");
	for (p = copy; (t = strtok_r(p, ",", &save)) != NULL; p = NULL) {
		char *e = t + strlen(t);

		while (*t == ' ' || *t == '\t')
			t++;
		while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*t == '\0')
			continue;
		any = 1;
		if ((rc = add_target(q, t)) != QUEUE_OK)
			break;
	}
	free(copy);
	if (rc == QUEUE_OK && !any)
		rc = queue_fail(q, QUEUE_INVALID, "no recipients in '%s'",
		    targets);
	return rc;
}

/* The policy of one delivery: the alert's, the recipient's, the default. */
static const struct conf_policy *
delivery_policy(struct queue *q, const struct conf *c,
    const struct queue_new_alert *a, const char *rcpt, const char *rpolicy)
{
	const struct conf_policy *p;
	const char *name = a->policy;

	if (name == NULL || *name == '\0')
		name = (rpolicy != NULL && *rpolicy != '\0') ? rpolicy :
		    c->default_policy;
	if (name == NULL || *name == '\0') {
		queue_fail(q, QUEUE_NOTFOUND, "recipient '%s' has no policy "
		    "and there is no default_policy", rcpt);
		return NULL;
	}
	if ((p = conf_policy_find(c, name)) == NULL)
		queue_fail(q, QUEUE_NOTFOUND, "unknown policy '%s' (recipient "
		    "'%s')", name, rcpt);
	return p;
}

/* Give the alert the next free id YYYYMMDD-NNNN of the local date. */
static int
assign_id(struct queue *q, int64_t now, char *id, size_t idlen)
{
	static const char what[] = "numbering the alert";
	char day[16];
	struct tm tm;
	time_t t = (time_t)(now / 1000);
	sqlite3_stmt *s;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(day, sizeof(day), "%Y%m%d", &tm) == 0)
		return queue_fail(q, QUEUE_ERR, "%s: no local date", what);
	for (;;) {
		long long seq;
		int exists;

		s = queue_st(q, ST_SEQ_NEXT);
		BIND_TEXT(s, 1, day);
		if (sqlite3_step(s) != SQLITE_ROW)
			return queue_db_fail(q, what);
		seq = sqlite3_column_int64(s, 0);
		/* Finish the statement: RETURNING writes at its end. */
		if (sqlite3_step(s) != SQLITE_DONE)
			return queue_db_fail(q, what);
		queue_done(s);
		snprintf(id, idlen, "%s-%04lld", day, seq);
		/* A caller may have taken this id by hand. */
		s = queue_st(q, ST_ALERT_EXISTS);
		BIND_TEXT(s, 1, id);
		if ((exists = sqlite3_step(s)) != SQLITE_ROW &&
		    exists != SQLITE_DONE)
			return queue_db_fail(q, what);
		queue_done(s);
		if (exists == SQLITE_DONE)
			return QUEUE_OK;
	}
}

/* 1 if alert id exists, 0 if not, QUEUE_ERR. */
static int
alert_exists(struct queue *q, const char *id)
{
	sqlite3_stmt *s = queue_st(q, ST_ALERT_EXISTS);
	int rc;

	BIND_TEXT(s, 1, id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return queue_db_fail(q, "looking up an alert");
	queue_done(s);
	return rc == SQLITE_ROW;
}

int
queue_alert_find_source(struct queue *q, const char *source, char *id,
    size_t idlen)
{
	sqlite3_stmt *s = queue_st(q, ST_ALERT_BY_SOURCE);
	int rc;

	BIND_TEXT(s, 1, source);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		snprintf(id, idlen, "%s", COL_TEXT(s, 0));
	else if (rc != SQLITE_DONE)
		return queue_db_fail(q, "looking up an alert by its source");
	queue_done(s);
	return rc == SQLITE_ROW ? QUEUE_OK : QUEUE_NOTFOUND;
}

/* Check the parts of an alert that need no database. */
static int
check_new_alert(struct queue *q, const struct code_keyring *kr,
    const struct queue_new_alert *a, size_t id_outlen)
{
	if (kr == NULL || kr->n == 0)
		return queue_fail(q, QUEUE_INVALID, "no secret key loaded");
	if (id_outlen < 41)
		return queue_fail(q, QUEUE_INVALID, "alert id buffer too small");
	if (a->id != NULL && !valid_alert_id(a->id))
		return queue_fail(q, QUEUE_INVALID, "invalid alert id '%.64s' "
		    "(1-40 of A-Z a-z 0-9 -)", a->id);
	if (a->refs != NULL && !valid_alert_id(a->refs))
		return queue_fail(q, QUEUE_INVALID, "invalid alert id '%.64s' "
		    "(1-40 of A-Z a-z 0-9 -)", a->refs);
	if (a->kind != NULL && strcmp(a->kind, "alert") != 0) {
		if (strcmp(a->kind, "update") != 0 &&
		    strcmp(a->kind, "cancel") != 0)
			return queue_fail(q, QUEUE_INVALID, "unknown alert "
			    "kind '%.32s'", a->kind);
		if (a->refs == NULL)
			return queue_fail(q, QUEUE_INVALID, "an %s must name "
			    "the alert it refers to", a->kind);
	}
	if (a->subject != NULL && strpbrk(a->subject, "\r\n") != NULL)
		return queue_fail(q, QUEUE_INVALID, "the subject must be one "
		    "line");
	if ((unsigned)a->tlp > QUEUE_TLP_RED)
		return queue_fail(q, QUEUE_INVALID, "unknown TLP level");
	if (a->expires_in < 0 || a->expires_in > 366LL * 86400)
		return queue_fail(q, QUEUE_INVALID, "expiry out of range");
	if (a->targets == NULL)
		return queue_fail(q, QUEUE_INVALID, "no recipients");
	return QUEUE_OK;
}

/* Pass 1 over the targets: every policy exists; the latest expiry. */
static int
check_policies(struct queue *q, const struct conf *c,
    const struct queue_new_alert *a, int64_t now, int64_t *n,
    int64_t *maxexp)
{
	sqlite3_stmt *s = queue_st(q, ST_TGT_EACH);
	const struct conf_policy *p;
	int rc;

	*n = 0;
	*maxexp = now;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t exp;

		if ((p = delivery_policy(q, c, a, COL_TEXT(s, 0),
		    COL_TEXT(s, 7))) == NULL) {
			queue_done(s);
			return QUEUE_NOTFOUND;
		}
		exp = now + 1000 * (a->expires_in ? a->expires_in : p->expire);
		if (exp > *maxexp)
			*maxexp = exp;
		(*n)++;
	}
	if (rc != SQLITE_DONE)
		return queue_db_fail(q, "resolving targets");
	queue_done(s);
	if (*n == 0)
		return queue_fail(q, QUEUE_NOTFOUND, "no recipients");
	return QUEUE_OK;
}

/* Pass 2: one delivery per target. */
static int
add_deliveries(struct queue *q, const struct conf *c,
    const struct code_key *key, const struct queue_new_alert *a,
    const char *id, int64_t now)
{
	static const char hex[] = "0123456789abcdef";
	static const char what[] = "accepting the alert";
	sqlite3_stmt *s = queue_st(q, ST_TGT_EACH), *ins;
	/* the random bytes of TOKEN_BATCH tokens at a time, the HMAC key set
	 * up once: per call, each costs more than what it computes */
	unsigned char rnd[TOKEN_BATCH][TOKEN_BYTES];
	size_t nrnd = 0;
	struct code_mac *mac = code_mac_new(key);
	int rc, ret = QUEUE_OK;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const struct conf_policy *p;
		char code[CODE_LEN + 1], token[2 * TOKEN_BYTES + 1];
		const char *rcpt = COL_TEXT(s, 0);
		const unsigned char *r;

		if ((p = delivery_policy(q, c, a, rcpt, COL_TEXT(s, 7))) ==
		    NULL) {
			queue_done(s);
			ret = QUEUE_NOTFOUND;
			goto out;
		}
		code_mac_compute(mac, id, rcpt, code);
		if (nrnd == 0) {
			if (RAND_bytes(&rnd[0][0], sizeof(rnd)) != 1) {
				queue_done(s);
				ret = queue_fail(q, QUEUE_ERR, "%s: no random "
				    "bytes from OpenSSL", what);
				goto out;
			}
			nrnd = TOKEN_BATCH;
		}
		r = rnd[--nrnd];
		for (size_t i = 0; i < TOKEN_BYTES; i++) {
			token[2 * i] = hex[r[i] >> 4];
			token[2 * i + 1] = hex[r[i] & 0xf];
		}
		token[2 * TOKEN_BYTES] = '\0';
		ins = queue_st(q, ST_DLV_ADD);
		BIND_TEXT(ins, 1, id);
		for (int i = 0; i < 7; i++)	/* recipient .. sms */
			sqlite3_bind_value(ins, 2 + i,
			    sqlite3_column_value(s, i));
		BIND_TEXT(ins, 9, p->name);
		BIND_INT(ins, 10, now);
		BIND_INT(ins, 11, now +
		    1000 * (a->expires_in ? a->expires_in : p->expire));
		BIND_TEXT(ins, 12, code);
		BIND_TEXT(ins, 13, token);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			queue_db_fail(q, what);
			queue_done(s);
			ret = QUEUE_ERR;
			goto out;
		}
		queue_done(ins);
	}
	if (rc != SQLITE_DONE)
		ret = queue_db_fail(q, what);
	else
		queue_done(s);
out:
	code_mac_free(mac);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	return ret;
}

int
queue_alert_accept(struct queue *q, const struct conf *c,
    const struct code_keyring *kr, const struct queue_new_alert *a,
    char *id_out, size_t id_outlen, int64_t *recipients)
{
	static const char what[] = "accepting the alert";
	const struct conf_policy *ap = NULL;
	const char *apname;
	char id[48], why[256];
	int64_t now, n, maxexp, expires;
	sqlite3_stmt *s;
	int rc;

	if ((rc = check_new_alert(q, kr, a, id_outlen)) != QUEUE_OK)
		return rc;
	apname = (a->policy != NULL && *a->policy != '\0') ? a->policy :
	    c->default_policy;
	if (apname != NULL && *apname != '\0' &&
	    (ap = conf_policy_find(c, apname)) == NULL)
		return queue_fail(q, QUEUE_NOTFOUND, "unknown policy '%s'",
		    apname);
	now = queue_now();
	if (queue_tx_begin(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	if (sqlite3_step(queue_st(q, ST_TGT_CLEAR)) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	if ((rc = resolve_targets(q, a->targets)) != QUEUE_OK ||
	    (rc = check_policies(q, c, a, now, &n, &maxexp)) != QUEUE_OK)
		goto fail;
	if (a->expires_in > 0)
		expires = now + 1000 * a->expires_in;
	else if (ap != NULL)
		expires = now + 1000 * ap->expire;
	else
		expires = maxexp;	/* per-recipient policies only */

	if (a->id != NULL) {
		if ((rc = alert_exists(q, a->id)) < 0)
			goto fail;
		if (rc == 1) {
			rc = queue_fail(q, QUEUE_INVALID, "alert '%s' already "
			    "exists", a->id);
			goto fail;
		}
		snprintf(id, sizeof(id), "%s", a->id);
	} else if ((rc = assign_id(q, now, id, sizeof(id))) != QUEUE_OK)
		goto fail;
	if (a->refs != NULL) {
		if ((rc = alert_exists(q, a->refs)) < 0)
			goto fail;
		if (rc == 0) {
			rc = queue_fail(q, QUEUE_NOTFOUND, "unknown alert '%s'",
			    a->refs);
			goto fail;
		}
	}

	s = queue_st(q, ST_ALERT_ADD);
	BIND_TEXT(s, 1, id);
	BIND_TEXT(s, 2, a->kind ? a->kind : "alert");
	BIND_INT(s, 3, a->drill ? 1 : 0);
	BIND_TEXT(s, 4, queue_tlp_name(a->tlp));
	BIND_TEXT(s, 5, (a->policy && *a->policy) ? a->policy : NULL);
	BIND_TEXT(s, 6, a->source ? a->source : "-");
	BIND_TEXT(s, 7, kr->keys[0].id);
	BIND_INT(s, 8, now);
	BIND_INT(s, 9, expires);
	BIND_TEXT(s, 10, a->refs);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	s = queue_st(q, ST_REV_ADD);
	BIND_TEXT(s, 1, id);
	BIND_INT(s, 2, 1);
	BIND_TEXT(s, 3, a->subject ? a->subject : "");
	BIND_TEXT(s, 4, a->body ? a->body : "");
	BIND_INT(s, 5, now);
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(s);
	if ((rc = add_deliveries(q, c, &kr->keys[0], a, id, now)) != QUEUE_OK)
		goto fail;
	snprintf(why, sizeof(why), "from %s, %lld recipients",
	    a->source ? a->source : "-", (long long)n);
	if ((rc = queue_event_add(q, now, id, 0, a->source, "accepted",
	    why)) != QUEUE_OK)
		goto fail;
	if (sqlite3_step(queue_st(q, ST_TGT_CLEAR)) != SQLITE_DONE) {
		rc = queue_db_fail(q, what);
		goto fail;
	}
	queue_done(q->st[ST_TGT_CLEAR]);
	if (queue_tx_commit(q, what) != QUEUE_OK)
		return QUEUE_ERR;
	snprintf(id_out, id_outlen, "%s", id);
	if (recipients != NULL)
		*recipients = n;
	return QUEUE_OK;
fail:
	queue_tx_rollback(q);
	return rc;
}

/* ---- reading ----------------------------------------------------------- */

/* strdup of a column, NULL for NULL; *oom set if out of memory. */
static char *
col_dup(sqlite3_stmt *s, int i, int *oom)
{
	const char *v = COL_TEXT(s, i);
	char *d;

	if (v == NULL)
		return NULL;
	if ((d = strdup(v)) == NULL)
		*oom = 1;
	return d;
}

void
queue_alert_info_free(struct queue_alert_info *info)
{
	if (info == NULL)
		return;
	free(info->id);
	free(info->kind);
	free(info->subject);
	free(info->body);
	free(info->policy);
	free(info->source);
	free(info->key_id);
	free(info->refs);
	memset(info, 0, sizeof(*info));
}

int
queue_alert_get(struct queue *q, const char *id,
    struct queue_alert_info *info)
{
	static const char what[] = "reading an alert";
	sqlite3_stmt *s = queue_st(q, ST_ALERT_GET);
	int rc, oom = 0;

	memset(info, 0, sizeof(*info));
	BIND_TEXT(s, 1, id);
	if ((rc = sqlite3_step(s)) == SQLITE_DONE) {
		queue_done(s);
		return queue_fail(q, QUEUE_NOTFOUND, "unknown alert '%s'", id);
	}
	if (rc != SQLITE_ROW)
		return queue_db_fail(q, what);
	info->id = col_dup(s, 0, &oom);
	info->kind = col_dup(s, 1, &oom);
	info->drill = sqlite3_column_int(s, 2);
	if (queue_tlp_parse(COL_TEXT(s, 3), &info->tlp) == -1)
		info->tlp = QUEUE_TLP_GREEN;
	info->policy = col_dup(s, 4, &oom);
	info->source = col_dup(s, 5, &oom);
	info->key_id = col_dup(s, 6, &oom);
	info->created = COL_INT(s, 7);
	info->expires = COL_INT(s, 8);
	info->refs = col_dup(s, 9, &oom);
	info->revision = sqlite3_column_int(s, 10);
	info->subject = col_dup(s, 11, &oom);
	info->body = col_dup(s, 12, &oom);
	queue_done(s);
	if (oom) {
		queue_alert_info_free(info);
		return queue_fail(q, QUEUE_ERR, "%s: out of memory", what);
	}
	s = queue_st(q, ST_ALERT_COUNTS);
	BIND_TEXT(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		enum queue_state st;

		if (queue_state_parse(COL_TEXT(s, 0), &st) == 0) {
			info->counts[st] = COL_INT(s, 1);
			info->recipients += COL_INT(s, 1);
		}
	}
	if (rc != SQLITE_DONE) {
		queue_db_fail(q, what);
		queue_done(s);
		queue_alert_info_free(info);
		return QUEUE_ERR;
	}
	queue_done(s);
	return QUEUE_OK;
}

int
queue_alerts_each(struct queue *q, int limit,
    int (*cb)(const struct queue_alert_info *info, void *arg), void *arg)
{
	sqlite3_stmt *s = queue_st(q, ST_ALERT_RECENT);
	char **ids = NULL, **nids;
	size_t n = 0, cap = 0;
	int rc, ret = 0;

	/* Collect the ids first: queue_alert_get() needs its statements. */
	BIND_INT(s, 1, limit > 0 ? limit : -1);	/* -1: no limit */
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			if ((nids = realloc(ids, cap * sizeof(*ids))) == NULL) {
				ret = queue_fail(q, QUEUE_ERR, "out of memory");
				goto out;
			}
			ids = nids;
		}
		if ((ids[n] = strdup(COL_TEXT(s, 0))) == NULL) {
			ret = queue_fail(q, QUEUE_ERR, "out of memory");
			goto out;
		}
		n++;
	}
	if (rc != SQLITE_DONE) {
		ret = queue_db_fail(q, "listing alerts");
		goto out;
	}
	queue_done(s);
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct queue_alert_info info;

		if ((rc = queue_alert_get(q, ids[i], &info)) == QUEUE_NOTFOUND)
			continue;
		if (rc != QUEUE_OK) {
			ret = rc;
			break;
		}
		ret = cb(&info, arg);
		queue_alert_info_free(&info);
	}
out:
	queue_done(s);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return ret;
}

int
queue_deliveries_each(struct queue *q, const char *alert,
    int (*cb)(const struct queue_delivery_info *d, void *arg), void *arg)
{
	sqlite3_stmt *s = queue_st(q, ST_DLV_EACH);
	int rc, ret = 0;

	BIND_TEXT(s, 1, alert);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct queue_delivery_info d = {
			.id = COL_INT(s, 0),
			.alert = COL_TEXT(s, 1),
			.recipient = COL_TEXT(s, 2),
			.name = COL_TEXT(s, 3),
			.org = COL_TEXT(s, 4),
			.mail = COL_TEXT(s, 5),
			.lgwan = COL_TEXT(s, 6),
			.fax = COL_TEXT(s, 7),
			.sms = COL_TEXT(s, 8),
			.policy = COL_TEXT(s, 9),
			.step = sqlite3_column_int(s, 11),
			.next_action = COL_INT(s, 12),
			.expires = COL_INT(s, 13),
			.code = COL_TEXT(s, 14),
			.token = COL_TEXT(s, 15),
			.confirmed_via = COL_TEXT(s, 16),
			.confirmed_by = COL_TEXT(s, 17),
			.confirmed_at = COL_INT(s, 18),
			.late = sqlite3_column_int(s, 19),
			.confirmed_from = COL_TEXT(s, 20),
			.foreign = sqlite3_column_int(s, 21),
			.displayed = COL_INT(s, 22),
		};

		if (queue_state_parse(COL_TEXT(s, 10), &d.state) == -1)
			d.state = QUEUE_PENDING;	/* CHECK makes it unreachable */
		if ((ret = cb(&d, arg)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = queue_db_fail(q, "reading deliveries");
	queue_done(s);
	return ret;
}

int
queue_attempts_each(struct queue *q, int64_t delivery,
    int (*cb)(const struct queue_attempt_info *a, void *arg), void *arg)
{
	sqlite3_stmt *s = queue_st(q, ST_ATT_EACH);
	int rc, ret = 0;

	BIND_INT(s, 1, delivery);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct queue_attempt_info a = {
			.id = COL_INT(s, 0),
			.delivery = COL_INT(s, 1),
			.channel = COL_TEXT(s, 2),
			.address = COL_TEXT(s, 3),
			.started = COL_INT(s, 4),
			.finished = COL_INT(s, 5),
			.outcome = COL_TEXT(s, 6),
			.evidence = COL_TEXT(s, 7),
			.error = COL_TEXT(s, 8),
			.round = (int)COL_INT(s, 9),
			.message_id = COL_TEXT(s, 10),
			.notice = COL_TEXT(s, 11),
		};

		if ((ret = cb(&a, arg)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = queue_db_fail(q, "reading attempts");
	queue_done(s);
	return ret;
}

int
queue_channel_counts(struct queue *q, const char *alert,
    struct queue_channel_count *v, int max)
{
	sqlite3_stmt *s = queue_st(q, ST_CHAN_COUNTS);
	int rc, n = 0;

	BIND_TEXT(s, 1, alert);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < max) {
		struct queue_channel_count *e = &v[n++];

		memset(e, 0, sizeof(*e));
		snprintf(e->channel, sizeof(e->channel), "%s", COL_TEXT(s, 0));
		e->inflight = COL_INT(s, 1);
		e->ok = COL_INT(s, 2);
		e->tempfail = COL_INT(s, 3);
		e->permfail = COL_INT(s, 4);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		queue_db_fail(q, "counting attempts");
		queue_done(s);
		return -1;
	}
	queue_done(s);
	return n;
}

/* The entry for channel in v[0..*n), added if there is room; or NULL. */
static struct queue_backlog *
backlog_entry(struct queue_backlog *v, int *n, int max, const char *channel)
{
	for (int i = 0; i < *n; i++)
		if (strcmp(v[i].channel, channel) == 0)
			return &v[i];
	if (*n >= max)
		return NULL;
	memset(&v[*n], 0, sizeof(v[*n]));
	snprintf(v[*n].channel, sizeof(v[*n].channel), "%s", channel);
	return &v[(*n)++];
}

/*
 * The rows of ST_BACKLOG are (policy, step, has mail, has lgwan, has fax,
 * has sms, count, due) for the open deliveries.  A delivery whose policy or
 * channel is no longer configured counts nowhere: `dengond -n` reports the
 * configuration problem, not this.
 */
int
queue_backlog(struct queue *q, const struct conf *c, struct queue_backlog *v,
    int max)
{
	static const char *const cols[] = { "mail", "lgwan", "fax", "sms" };
	sqlite3_stmt *s = queue_st(q, ST_BACKLOG);
	int rc, n = 0;

	BIND_INT(s, 1, queue_now());
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const struct conf_policy *p;
		const struct conf_step *step;
		int64_t k;

		if ((p = conf_policy_find(c, COL_TEXT(s, 0))) == NULL ||
		    p->nsteps == 0)
			continue;
		k = COL_INT(s, 1);
		step = &p->steps[k < (int64_t)p->nsteps ? k :
		    (int64_t)p->nsteps - 1];
		for (size_t i = 0; i < step->nchannels; i++) {
			const struct conf_channel *ch;
			const char *col;
			struct queue_backlog *e;
			int has = 0;

			if ((ch = conf_channel_find(c, step->channels[i])) ==
			    NULL || (col = conf_type_column(ch->type)) == NULL)
				continue;
			for (int j = 0; j < 4; j++)
				if (strcmp(col, cols[j]) == 0)
					has = sqlite3_column_int(s, 2 + j);
			if (!has || (e = backlog_entry(v, &n, max,
			    ch->name)) == NULL)
				continue;
			e->waiting += COL_INT(s, 6);
			e->due += COL_INT(s, 7);
		}
	}
	if (rc != SQLITE_DONE)
		goto fail;
	queue_done(s);
	s = queue_st(q, ST_INFLIGHT);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct queue_backlog *e;

		if ((e = backlog_entry(v, &n, max, COL_TEXT(s, 0))) != NULL)
			e->inflight = COL_INT(s, 1);
	}
	if (rc != SQLITE_DONE)
		goto fail;
	queue_done(s);
	return n;
fail:
	queue_db_fail(q, "reading the backlog");
	queue_done(s);
	return -1;
}

int
queue_events_each(struct queue *q, const char *alert,
    int (*cb)(const struct queue_event_info *e, void *arg), void *arg)
{
	sqlite3_stmt *s;
	int rc, ret = 0;

	s = queue_st(q, alert ? ST_EVENTS_ALERT : ST_EVENTS_ALL);
	if (alert != NULL)
		BIND_TEXT(s, 1, alert);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct queue_event_info e = {
			.id = COL_INT(s, 0),
			.at = COL_INT(s, 1),
			.alert = COL_TEXT(s, 2),
			.delivery = COL_INT(s, 3),
			.actor = COL_TEXT(s, 4),
			.what = COL_TEXT(s, 5),
			.why = COL_TEXT(s, 6),
		};

		if ((ret = cb(&e, arg)) != 0)
			break;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = queue_db_fail(q, "reading events");
	queue_done(s);
	return ret;
}
