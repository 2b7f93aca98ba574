/*
 * test_queue.c - the SQLite store (queue/queue*.c) against queue.h.
 *
 * Each test opens its own queue file under a temporary directory, builds
 * the configuration and the contact directory by hand (no conf_load, no
 * CSV), and where the point is that *any* writer is held to an invariant,
 * writes with a raw sqlite3 connection beside the queue.  Invariants are
 * checked after every write transaction (DENGON_DEBUG_INVARIANTS is set in
 * main) and directly with queue_check_invariants().
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "queue/queue.h"

static char tmpdir[] = "/tmp/dengon-test-queue-XXXXXX";
static int nfile;

/* ---- fixtures: a configuration, a directory, a key -------------------- */

static struct conf_step standard_steps[] = {
	{ .channels = (char *[]){ "mail", "lgwan" }, .nchannels = 2,
	  .delay = 0 },
	{ .channels = (char *[]){ "fax" }, .nchannels = 1, .delay = 900 },
	{ .channels = (char *[]){ "sms" }, .nchannels = 1, .delay = 1800 },
};
static struct conf_step fast_steps[] = {
	{ .channels = (char *[]){ "sms" }, .nchannels = 1, .delay = 0 },
};
static struct conf_policy policies[] = {
	{ .name = "standard", .steps = standard_steps, .nsteps = 3,
	  .repeat = 3600, .expire = 86400 },
	{ .name = "fast", .steps = fast_steps, .nsteps = 1, .expire = 3600 },
	{ .name = "slow", .steps = standard_steps, .nsteps = 3,
	  .expire = 2 * 86400 },
};
static struct conf_channel channels[] = {
	{ .name = "mail", .type = "smtp" },
	{ .name = "lgwan", .type = "lgwan" },
	{ .name = "fax", .type = "fax" },
	{ .name = "sms", .type = "sms" },
};

/* The configuration of these tests; default_policy "standard". */
static struct conf
test_conf(void)
{
	struct conf c = {
		.name = "test-relay",
		.default_policy = "standard",
		.channels = channels,
		.nchannels = 4,
		.policies = policies,
		.npolicies = 3,
	};

	return c;
}

static char *
xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
xprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	assert_true(vasprintf(&s, fmt, ap) >= 0);
	va_end(ap);
	return s;
}

/*
 * n recipients r0000..: every one has mail; lgwan every third, fax every
 * second, sms every fifth; groups "even" or "odd"; mail domain dom.
 */
static struct contact_list
make_contacts(int n, const char *dom)
{
	struct contact_list l = { calloc((size_t)n + 1, sizeof(*l.v)),
	    (size_t)n };

	assert_non_null(l.v);
	for (int i = 0; i < n; i++) {
		struct contact *c = &l.v[i];

		c->id = xprintf("r%04d", i);
		c->name = xprintf("Recipient %d", i);
		c->org = xprintf("Utility %d", i / 10);
		c->groups = xprintf("%s;members", i % 2 ? "odd" : "even");
		c->mail = xprintf("r%04d@%s", i, dom);
		if (i % 3 == 0)
			c->lgwan = xprintf("r%04d@city.lg.jp", i);
		if (i % 2 == 0)
			c->fax = xprintf("+813%08d", i);
		if (i % 5 == 0)
			c->sms = xprintf("+8190%08d", i);
		c->line = i + 2;
	}
	return l;
}

static void
free_contacts(struct contact_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct contact *c = &l->v[i];

		free(c->id);
		free(c->name);
		free(c->org);
		free(c->groups);
		free(c->mail);
		free(c->lgwan);
		free(c->fax);
		free(c->sms);
		free(c->policy);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static struct code_keyring keyring;

static void
make_keyring(void)
{
	char path[512], err[256];

	snprintf(path, sizeof(path), "%s/secret.key", tmpdir);
	assert_true(code_keyring_create(path, err, sizeof(err)) >= 0);
	assert_int_equal(code_keyring_load(path, &keyring, err, sizeof(err)),
	    0);
}

/* A fresh path for a queue file. */
static const char *
fresh_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/q%d.db", tmpdir, ++nfile);
	return buf;
}

static struct queue *
open_queue(const char *path)
{
	char err[512];
	struct queue *q;

	q = queue_open(path, NULL, QUEUE_OPEN_CREATE, err, sizeof(err));
	if (q == NULL)
		fail_msg("queue_open: %s", err);
	return q;
}

/* A queue with n contacts imported. */
static struct queue *
queue_with(const char *path, int n)
{
	struct queue *q = open_queue(path);
	struct contact_list l = make_contacts(n, "example.jp");

	assert_int_equal(queue_contacts_replace(q, &l, "test"), QUEUE_OK);
	free_contacts(&l);
	return q;
}

/* Accept an alert to targets; returns its rc, id in id. */
static int
send_alert(struct queue *q, const struct conf *c, const char *targets,
    const char *policy, int64_t expires_in, char id[48], int64_t *n)
{
	struct queue_new_alert a = {
		.subject = "Test alert",
		.body = "Body\n",
		.tlp = QUEUE_TLP_AMBER,
		.targets = targets,
		.policy = policy,
		.expires_in = expires_in,
		.source = "test",
	};
	int64_t dummy;

	return queue_alert_accept(q, c, &keyring, &a, id, 48,
	    n ? n : &dummy);
}

/* ---- raw SQL beside the queue ----------------------------------------- */

static sqlite3 *
raw_open(const char *path)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE,
	    NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static int
raw_exec(sqlite3 *db, const char *fmt, ...)
{
	va_list ap;
	char *sql;
	int rc;

	va_start(ap, fmt);
	sql = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_free(sql);
	return rc & 0xff;
}

static int64_t
raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* One number from a path's database, with a connection of its own. */
static int64_t
count_in(const char *path, const char *sql)
{
	sqlite3 *db = raw_open(path);
	int64_t v = raw_int(db, sql);

	sqlite3_close(db);
	return v;
}

/* ---- reading deliveries into plain structs ----------------------------- */

struct dcopy {
	int64_t		 id;
	char		 recipient[65];
	char		 name[64];
	char		 mail[128], lgwan[128], fax[32], sms[32];
	char		 policy[32];
	char		 code[CODE_LEN + 1];
	char		 token[40];
	char		 via[16], by[64];
	enum queue_state state;
	int		 step, late;
	int64_t		 next_action, expires, confirmed_at;
};

struct dlist {
	struct dcopy	*v;
	size_t		 n;
};

#define CP(f) snprintf(c->f, sizeof(c->f), "%s", d->f ? d->f : "")

static int
collect_cb(const struct queue_delivery_info *d, void *arg)
{
	struct dlist *l = arg;
	struct dcopy *c;

	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	c = &l->v[l->n++];
	memset(c, 0, sizeof(*c));
	c->id = d->id;
	CP(recipient);
	CP(name);
	CP(mail);
	CP(lgwan);
	CP(fax);
	CP(sms);
	CP(policy);
	CP(code);
	CP(token);
	snprintf(c->via, sizeof(c->via), "%s",
	    d->confirmed_via ? d->confirmed_via : "");
	snprintf(c->by, sizeof(c->by), "%s",
	    d->confirmed_by ? d->confirmed_by : "");
	c->state = d->state;
	c->step = d->step;
	c->late = d->late;
	c->next_action = d->next_action;
	c->expires = d->expires;
	c->confirmed_at = d->confirmed_at;
	return 0;
}

static struct dlist
deliveries(struct queue *q, const char *alert)
{
	struct dlist l = { NULL, 0 };

	assert_int_equal(queue_deliveries_each(q, alert, collect_cb, &l), 0);
	return l;
}

/* The delivery of alert to recipient (must exist). */
static struct dcopy
delivery(struct queue *q, const char *alert, const char *rcpt)
{
	struct dlist l = deliveries(q, alert);
	struct dcopy d;

	for (size_t i = 0; i < l.n; i++)
		if (strcmp(l.v[i].recipient, rcpt) == 0) {
			d = l.v[i];
			free(l.v);
			return d;
		}
	fail_msg("no delivery of %s to %s", alert, rcpt);
	abort();
}

static void
check_ok(struct queue *q)
{
	if (queue_check_invariants(q) != QUEUE_OK)
		fail_msg("invariants: %s", queue_errmsg(q));
}

/* ---- opening, files, versions ----------------------------------------- */

static void
test_open_missing(void **state)
{
	char path[512], want[600], err[512];

	snprintf(path, sizeof(path), "%s/nothere.db", tmpdir);
	assert_null(queue_open(path, NULL, 0, err, sizeof(err)));
	snprintf(want, sizeof(want),
	    "queue %s does not exist (run 'dengon init')", path);
	assert_string_equal(err, want);
	/* And it was not created. */
	assert_int_equal(access(path, F_OK), -1);
	/* Not a database. */
	snprintf(path, sizeof(path), "%s/garbage.db", tmpdir);
	{
		FILE *fp = fopen(path, "w");

		assert_non_null(fp);
		for (int i = 0; i < 200; i++)
			fputs("this is not an SQLite database\n", fp);
		fclose(fp);
	}
	assert_null(queue_open(path, NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "not a database"));
	/* An unknown group. */
	snprintf(path, sizeof(path), "%s/grp.db", tmpdir);
	assert_null(queue_open(path, "no-such-group-dengon", QUEUE_OPEN_CREATE,
	    err, sizeof(err)));
	assert_non_null(strstr(err, "unknown group 'no-such-group-dengon'"));
}

static void
test_create_permissions(void **state)
{
	char dir[512], path[600], side[640], err[512];
	struct group *gr;
	struct queue *q;
	struct stat sb;
	mode_t old;

	assert_non_null(gr = getgrgid(getegid()));
	snprintf(dir, sizeof(dir), "%s/var/lib/dengon", tmpdir);
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	old = umask(022);	/* a umask must not take the group's w away */
	q = queue_open(path, gr->gr_name, QUEUE_OPEN_CREATE, err, sizeof(err));
	umask(old);
	if (q == NULL)
		fail_msg("%s", err);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0660);
	assert_int_equal(sb.st_gid, gr->gr_gid);
	/* SQLite's side files take the database's mode. */
	snprintf(side, sizeof(side), "%s-wal", path);
	assert_int_equal(stat(side, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0660);
	snprintf(side, sizeof(side), "%s-shm", path);
	assert_int_equal(stat(side, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0660);
	/* The directory: setgid, group-writable, the group. */
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 02770);
	assert_int_equal(sb.st_gid, gr->gr_gid);
	{
		sqlite3 *db = raw_open(path);
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode",
		    -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_string_equal(sqlite3_column_text(st, 0), "wal");
		sqlite3_finalize(st);
		sqlite3_close(db);
	}
	queue_close(q);
	/* Opening again (init is idempotent) leaves mode and data alone. */
	assert_int_equal(chmod(path, 0640), 0);
	q = queue_open(path, gr->gr_name, QUEUE_OPEN_CREATE, err, sizeof(err));
	assert_non_null(q);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);
	queue_close(q);
	assert_int_equal(count_in(path, "PRAGMA user_version"), 6);
}

/* Version 6: no list of more than two constants "x IN ('a', 'b', 'c')" in the
 * CHECK constraints of delivery and attempt nor in the trigger of Q1
 * (SQLite builds a b-tree of such a list each time it checks one) on a
 * fresh queue; a version 5 queue migrated gets the new trigger and keeps
 * its constraints as they were written (the same rules); the rules hold. */
static void
test_schema_v6(void **state)
{
	static const char in_lists[] = "SELECT count(*) FROM sqlite_schema "
	    "WHERE (name IN ('delivery', 'notice') AND sql LIKE '%state IN (%') "
	    "OR (name = 'attempt' AND sql LIKE '%outcome IN (%') "
	    "OR (name = 'delivery_q1' AND sql LIKE '% IN (%')";
	char path[512];
	struct queue *q;
	sqlite3 *db;

	q = open_queue(fresh_path(path, sizeof(path)));
	queue_close(q);
	assert_int_equal(count_in(path, in_lists), 0);
	/* Back to version 5: attempt's CHECK as version 1 wrote it. */
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "PRAGMA writable_schema = ON; "
	    "UPDATE sqlite_schema SET sql = replace(sql, "
	    "'CHECK (outcome = ''ok'' OR outcome = ''tempfail'' OR "
	    "outcome = ''permfail'')', "
	    "'CHECK (outcome IN (''ok'', ''tempfail'', ''permfail''))') "
	    "WHERE name = 'attempt'; PRAGMA writable_schema = OFF; "
	    "PRAGMA user_version = 5"), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(count_in(path, in_lists), 1);
	q = open_queue(path);
	check_ok(q);
	queue_close(q);
	assert_int_equal(count_in(path, "PRAGMA user_version"), 6);
	assert_int_equal(count_in(path, in_lists), 1);
	assert_int_equal(count_in(path, "SELECT count(*) FROM sqlite_schema "
	    "WHERE name = 'delivery_q1' AND sql LIKE '% IN (%'"), 0);
	db = raw_open(path);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM pragma_"
	    "integrity_check WHERE integrity_check = 'ok'"), 1);
	/* The rules: an outcome outside the three, a state outside the
	 * machine (the trigger of Q1 speaks first). */
	assert_int_equal(raw_exec(db, "INSERT INTO alert(id, tlp, source, "
	    "key_id, created, expires) VALUES ('A-1', 'GREEN', 't', "
	    "'0123456789abcdef', 1, 2); INSERT INTO delivery(id, alert, "
	    "recipient, name, policy, expires, code, token, created, updated) "
	    "VALUES (1, 'A-1', 'r', 'n', 'p', 2, 'ABCDEFGH', "
	    "'0123456789abcdef0123456789abcdef', 1, 1)"), SQLITE_OK);
	assert_int_equal(raw_exec(db, "INSERT INTO attempt(delivery, channel, "
	    "address, revision, started, finished, outcome) VALUES (1, 'm', "
	    "'a', 1, 1, 2, 'maybe')"), SQLITE_CONSTRAINT);
	assert_int_equal(raw_exec(db, "INSERT INTO attempt(delivery, channel, "
	    "address, revision, started, finished, outcome) VALUES (1, 'm', "
	    "'a', 1, 1, 2, 'permfail')"), SQLITE_OK);
	assert_int_equal(raw_exec(db, "UPDATE delivery SET state = 'lost' "
	    "WHERE id = 1"), SQLITE_CONSTRAINT);
	assert_int_equal(raw_exec(db, "UPDATE delivery SET state = 'failed', "
	    "next_action = 5 WHERE id = 1"), SQLITE_CONSTRAINT);
	sqlite3_close(db);
}

static void
test_newer_version_refused(void **state)
{
	char path[512], err[512];
	struct queue *q;
	sqlite3 *db;

	q = open_queue(fresh_path(path, sizeof(path)));
	queue_close(q);
	/* Reopening a current one works and changes nothing. */
	q = open_queue(path);
	queue_close(q);
	assert_int_equal(count_in(path, "PRAGMA user_version"), 6);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "PRAGMA user_version = 7"), SQLITE_OK);
	sqlite3_close(db);
	assert_null(queue_open(path, NULL, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "schema version 7"));
	assert_non_null(strstr(err, "newer"));
	assert_non_null(strstr(err, "upgrade dengon"));
	/* Untouched. */
	assert_int_equal(count_in(path, "PRAGMA user_version"), 7);
}

/* ---- the state machine ------------------------------------------------ */

/* The state machine of queue.h, written out independently. */
static const int allowed[QUEUE_NSTATES][QUEUE_NSTATES] = {
	/*              pend sent dlvd conf fail expd cncl */
	[QUEUE_PENDING]   = { 0, 1, 0, 1, 1, 1, 1 },
	[QUEUE_SENT]      = { 0, 0, 1, 1, 1, 1, 1 },
	[QUEUE_DELIVERED] = { 0, 0, 0, 1, 0, 1, 1 },
	[QUEUE_CONFIRMED] = { 0, 0, 0, 0, 0, 0, 0 },
	[QUEUE_FAILED]    = { 0, 0, 0, 1, 0, 0, 0 },
	[QUEUE_EXPIRED]   = { 0, 0, 0, 1, 0, 0, 0 },
	[QUEUE_CANCELLED] = { 0, 0, 0, 0, 0, 0, 0 },
};

/* Bring delivery of rcpt to state `to` along legal edges. */
static void
reach(struct queue *q, const char *alert, const char *rcpt,
    enum queue_state to)
{
	struct dcopy d = delivery(q, alert, rcpt);
	struct queue_confirm cf = { .alert = alert, .recipient = rcpt,
	    .via = "phone", .by = "setup" };
	struct queue_confirm_result res;

	switch (to) {
	case QUEUE_PENDING:
		break;
	case QUEUE_DELIVERED:
		assert_int_equal(queue_delivery_set_state(q, d.id, QUEUE_SENT,
		    "test", "setup"), QUEUE_OK);
		assert_int_equal(queue_delivery_set_state(q, d.id,
		    QUEUE_DELIVERED, "test", "setup"), QUEUE_OK);
		break;
	case QUEUE_CONFIRMED:
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		break;
	default:
		assert_int_equal(queue_delivery_set_state(q, d.id, to, "test",
		    "setup"), QUEUE_OK);
	}
	assert_int_equal(delivery(q, alert, rcpt).state, to);
}

static void
test_transition_table(void **state)
{
	struct conf c = test_conf();
	char path[512], id[48], rcpt[16];
	struct queue *q;

	for (int f = 0; f < QUEUE_NSTATES; f++) {
		assert_int_equal(queue_state_final((enum queue_state)f),
		    f == QUEUE_CONFIRMED || f == QUEUE_FAILED ||
		    f == QUEUE_EXPIRED || f == QUEUE_CANCELLED);
		for (int t = 0; t < QUEUE_NSTATES; t++)
			assert_int_equal(queue_transition_ok(
			    (enum queue_state)f, (enum queue_state)t),
			    allowed[f][t]);
	}
	q = queue_with(fresh_path(path, sizeof(path)), 49);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, NULL), QUEUE_OK);
	for (int f = 0; f < QUEUE_NSTATES; f++)
		for (int t = 0; t < QUEUE_NSTATES; t++) {
			struct dcopy before, after;
			int rc;

			snprintf(rcpt, sizeof(rcpt), "r%04d",
			    f * QUEUE_NSTATES + t);
			reach(q, id, rcpt, (enum queue_state)f);
			before = delivery(q, id, rcpt);
			if (t == QUEUE_CONFIRMED) {
				struct queue_confirm cf = { .alert = id,
				    .recipient = rcpt, .via = "phone",
				    .by = "op" };
				struct queue_confirm_result res;

				/* Only queue_confirm() confirms (Q3). */
				assert_int_equal(queue_delivery_set_state(q,
				    before.id, QUEUE_CONFIRMED, "t", "x"),
				    QUEUE_INVALID);
				rc = queue_confirm(q, &cf, &res);
				if (allowed[f][t]) {
					assert_int_equal(rc, QUEUE_OK);
					assert_int_equal(res.duplicate, 0);
				} else if (f == QUEUE_CONFIRMED) {
					assert_int_equal(rc, QUEUE_OK);
					assert_int_equal(res.duplicate, 1);
				} else
					assert_int_equal(rc, QUEUE_REFUSED);
			} else {
				rc = queue_delivery_set_state(q, before.id,
				    (enum queue_state)t, "test", "table");
				assert_int_equal(rc, allowed[f][t] ?
				    QUEUE_OK : QUEUE_REFUSED);
			}
			after = delivery(q, id, rcpt);
			if (allowed[f][t])
				assert_int_equal(after.state, t);
			else
				assert_int_equal(after.state, f);
			/* Q2: a final state has no next action. */
			if (queue_state_final(after.state))
				assert_int_equal(after.next_action, 0);
			else
				assert_int_equal(after.next_action,
				    before.next_action);
		}
	check_ok(q);
	assert_int_equal(queue_delivery_set_state(q, 999999, QUEUE_SENT, "t",
	    "x"), QUEUE_NOTFOUND);
	queue_close(q);
}

/* Any writer is held to Q1: the trigger, with raw SQL. */
static void
test_transition_trigger_raw(void **state)
{
	static const char *path_sql[QUEUE_NSTATES] = {
		[QUEUE_PENDING] = "",
		[QUEUE_SENT] = "sent",
		[QUEUE_DELIVERED] = "sent delivered",
		[QUEUE_CONFIRMED] = "confirmed",
		[QUEUE_FAILED] = "failed",
		[QUEUE_EXPIRED] = "expired",
		[QUEUE_CANCELLED] = "cancelled",
	};
	struct conf c = test_conf();
	char path[512], id[48];
	struct queue *q;
	sqlite3 *db;

	q = queue_with(fresh_path(path, sizeof(path)), 49);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, NULL), QUEUE_OK);
	queue_close(q);
	db = raw_open(path);
	for (int f = 0; f < QUEUE_NSTATES; f++)
		for (int t = 0; t < QUEUE_NSTATES; t++) {
			char steps[64], *w, *save = NULL;
			int rc;

			snprintf(steps, sizeof(steps), "%s", path_sql[f]);
			for (w = strtok_r(steps, " ", &save); w != NULL;
			    w = strtok_r(NULL, " ", &save))
				assert_int_equal(raw_exec(db, "UPDATE delivery "
				    "SET state = %Q, next_action = NULL WHERE "
				    "alert = %Q AND recipient = 'r%04d'", w, id,
				    f * QUEUE_NSTATES + t), SQLITE_OK);
			rc = raw_exec(db, "UPDATE delivery SET state = %Q, "
			    "next_action = NULL WHERE alert = %Q AND "
			    "recipient = 'r%04d'", queue_state_name(
			    (enum queue_state)t), id, f * QUEUE_NSTATES + t);
			if (allowed[f][t] || f == t)
				assert_int_equal(rc, SQLITE_OK);
			else {
				assert_int_equal(rc, SQLITE_CONSTRAINT);
				assert_non_null(strstr(sqlite3_errmsg(db),
				    "Q1"));
			}
		}
	/* Q2 for any writer: a final state with a next action. */
	assert_int_equal(raw_exec(db, "UPDATE delivery SET next_action = 1 "
	    "WHERE state = 'cancelled'"), SQLITE_CONSTRAINT);
	/* A state outside the machine. */
	assert_int_equal(raw_exec(db, "UPDATE delivery SET state = 'lost' "
	    "WHERE recipient = 'r0000'"), SQLITE_CONSTRAINT);
	sqlite3_close(db);
}

static void
test_append_only(void **state)
{
	struct conf c = test_conf();
	char path[512], id[48];
	struct queue *q;
	sqlite3 *db;
	int64_t n;

	q = queue_with(fresh_path(path, sizeof(path)), 3);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, NULL), QUEUE_OK);
	queue_close(q);
	db = raw_open(path);
	n = raw_int(db, "SELECT count(*) FROM event");
	assert_true(n >= 2);	/* contacts replaced, accepted */
	assert_int_equal(raw_exec(db, "UPDATE event SET what = 'forged'"),
	    SQLITE_CONSTRAINT);
	assert_non_null(strstr(sqlite3_errmsg(db), "Q5"));
	assert_int_equal(raw_exec(db, "DELETE FROM event"), SQLITE_CONSTRAINT);
	assert_non_null(strstr(sqlite3_errmsg(db), "Q5"));
	assert_int_equal(raw_exec(db, "DELETE FROM event WHERE id = 1"),
	    SQLITE_CONSTRAINT);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM event"), n);
	assert_int_equal(raw_int(db, "SELECT count(*) FROM event "
	    "WHERE what = 'forged'"), 0);
	/* Q6: neither the alert nor a revision can be rewritten. */
	assert_int_equal(raw_exec(db, "UPDATE alert SET tlp = 'CLEAR'"),
	    SQLITE_CONSTRAINT);
	assert_non_null(strstr(sqlite3_errmsg(db), "Q6"));
	assert_int_equal(raw_exec(db, "UPDATE alert_revision SET body = 'x'"),
	    SQLITE_CONSTRAINT);
	assert_non_null(strstr(sqlite3_errmsg(db), "Q6"));
	/* Appending still works. */
	assert_int_equal(raw_exec(db, "INSERT INTO event(at, actor, what) "
	    "VALUES (1, 'test', 'note')"), SQLITE_OK);
	sqlite3_close(db);
}

/* ---- accepting -------------------------------------------------------- */

static int
cmp_code(const void *a, const void *b)
{
	return strcmp(((const struct dcopy *)a)->code,
	    ((const struct dcopy *)b)->code);
}

static void
test_accept_2000(void **state)
{
	struct conf c = test_conf();
	struct contact_list l = make_contacts(2000, "example.jp");
	struct contact_list l2 = make_contacts(2000, "changed.example");
	struct queue_alert_info info;
	struct timespec t0, t1;
	char path[512], id[48], id2[48];
	struct dlist dl;
	struct queue *q;
	int64_t n = 0;
	double ms;

	/* Invariants after commit are timed separately below. */
	unsetenv("DENGON_DEBUG_INVARIANTS");
	q = open_queue(fresh_path(path, sizeof(path)));
	setenv("DENGON_DEBUG_INVARIANTS", "1", 1);
	assert_int_equal(queue_contacts_replace(q, &l, "test"), QUEUE_OK);
	assert_int_equal(queue_contacts_count(q), 2000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, &n), QUEUE_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	print_message("accept: 2000 recipients in %.1f ms (committed, "
	    "synchronous=FULL)\n", ms);
	/* Not a benchmark: this only catches a transaction per row. */
	assert_true(ms < 1500);
	assert_int_equal(n, 2000);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	check_ok(q);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("invariants: checked in %.1f ms\n",
	    (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);

	assert_int_equal(queue_alert_get(q, id, &info), QUEUE_OK);
	assert_int_equal(info.recipients, 2000);
	assert_int_equal(info.counts[QUEUE_PENDING], 2000);
	assert_int_equal(info.revision, 1);
	assert_string_equal(info.kind, "alert");
	assert_int_equal(info.tlp, QUEUE_TLP_AMBER);
	assert_string_equal(info.subject, "Test alert");
	assert_string_equal(info.body, "Body\n");
	assert_string_equal(info.key_id, keyring.keys[0].id);
	assert_null(info.policy);
	assert_string_equal(info.source, "test");
	assert_int_equal(info.expires - info.created, 86400 * 1000LL);

	dl = deliveries(q, id);
	assert_int_equal(dl.n, 2000);
	for (size_t i = 0; i < dl.n; i++) {
		struct dcopy *d = &dl.v[i];
		const struct contact *ct = &l.v[i];	/* both by id */
		char code[CODE_LEN + 1];

		assert_string_equal(d->recipient, ct->id);
		assert_string_equal(d->name, ct->name);
		assert_string_equal(d->mail, ct->mail);
		assert_string_equal(d->lgwan, ct->lgwan ? ct->lgwan : "");
		assert_string_equal(d->fax, ct->fax ? ct->fax : "");
		assert_string_equal(d->sms, ct->sms ? ct->sms : "");
		assert_string_equal(d->policy, "standard");
		assert_int_equal(d->state, QUEUE_PENDING);
		assert_int_equal(d->step, 0);
		assert_int_equal(d->next_action, info.created);	/* due now */
		assert_int_equal(d->expires, info.expires);
		code_compute(&keyring.keys[0], id, d->recipient, code);
		assert_string_equal(d->code, code);
		assert_int_equal(strlen(d->token), 32);
	}
	qsort(dl.v, dl.n, sizeof(*dl.v), cmp_code);
	for (size_t i = 1; i < dl.n; i++)
		assert_string_not_equal(dl.v[i - 1].code, dl.v[i].code);
	free(dl.v);

	/* A re-import does not change an accepted alert's addresses. */
	assert_int_equal(queue_contacts_replace(q, &l2, "test"), QUEUE_OK);
	assert_string_equal(delivery(q, id, "r0007").mail,
	    "r0007@example.jp");
	assert_int_equal(send_alert(q, &c, "r0007", NULL, 0, id2, NULL), QUEUE_OK);
	assert_string_equal(delivery(q, id2, "r0007").mail,
	    "r0007@changed.example");
	/* Tokens are distinct across alerts too (UNIQUE index). */
	assert_string_not_equal(delivery(q, id, "r0007").token,
	    delivery(q, id2, "r0007").token);
	queue_alert_info_free(&info);
	check_ok(q);
	queue_close(q);
	free_contacts(&l);
	free_contacts(&l2);
}

/* Alerts in the queue at path; no delivery without its alert. */
static int64_t
alert_count(const char *path)
{
	sqlite3 *db;
	int64_t n;

	db = raw_open(path);
	n = raw_int(db, "SELECT count(*) FROM alert");
	assert_int_equal(raw_int(db, "SELECT count(*) FROM delivery "
	    "WHERE alert NOT IN (SELECT id FROM alert)"), 0);
	sqlite3_close(db);
	return n;
}

static void
test_targets(void **state)
{
	struct conf c = test_conf();
	char path[512], id[48];
	struct queue *q;
	struct dlist dl;
	int64_t n;

	/* The empty directory. */
	q = open_queue(fresh_path(path, sizeof(path)));
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, &n), QUEUE_NOTFOUND);
	assert_non_null(strstr(queue_errmsg(q), "the directory is empty"));
	queue_close(q);

	q = queue_with(fresh_path(path, sizeof(path)), 10);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, &n), QUEUE_OK);
	assert_int_equal(n, 10);
	assert_int_equal(send_alert(q, &c, "group:even", NULL, 0, id, &n), QUEUE_OK);
	assert_int_equal(n, 5);
	dl = deliveries(q, id);
	for (size_t i = 0; i < dl.n; i++)
		assert_int_equal((dl.v[i].recipient[4] - '0') % 2, 0);
	free(dl.v);
	/* Duplicates collapse: odd = 1 3 5 7 9, plus 2. */
	assert_int_equal(send_alert(q, &c, "r0001, r0002,r0001,group:odd", NULL, 0,
	    id, &n), QUEUE_OK);
	assert_int_equal(n, 6);
	assert_int_equal(send_alert(q, &c, "all,group:members,r0003", NULL, 0, id,
	    &n), QUEUE_OK);
	assert_int_equal(n, 10);
	assert_int_equal(send_alert(q, &c, "r0004", NULL, 0, id, &n), QUEUE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(alert_count(path), 5);

	/* Failures write nothing. */
	assert_int_equal(send_alert(q, &c, "r0001,r9999", NULL, 0, id, &n),
	    QUEUE_NOTFOUND);
	assert_string_equal(queue_errmsg(q), "unknown recipient 'r9999'");
	assert_int_equal(send_alert(q, &c, "group:nosuch", NULL, 0, id, &n),
	    QUEUE_NOTFOUND);
	assert_non_null(strstr(queue_errmsg(q), "group 'nosuch'"));
	assert_int_equal(send_alert(q, &c, "group:", NULL, 0, id, &n),
	    QUEUE_NOTFOUND);
	assert_int_equal(send_alert(q, &c, "", NULL, 0, id, &n), QUEUE_INVALID);
	assert_int_equal(send_alert(q, &c, " , ,", NULL, 0, id, &n), QUEUE_INVALID);
	assert_int_equal(alert_count(path), 5);
	check_ok(q);
	queue_close(q);
}

static void
test_alert_ids(void **state)
{
	struct conf c = test_conf();
	struct queue_new_alert a = { .subject = "s", .body = "b",
	    .targets = "all", .source = "test" };
	char path[512], id[48], id2[48], today[16], want[48];
	struct tm tm;
	time_t now = time(NULL);
	struct queue *q;
	int64_t n;

	localtime_r(&now, &tm);
	strftime(today, sizeof(today), "%Y%m%d", &tm);
	q = queue_with(fresh_path(path, sizeof(path)), 2);
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_OK);
	snprintf(want, sizeof(want), "%s-0001", today);
	assert_string_equal(id, want);
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_OK);
	snprintf(want, sizeof(want), "%s-0002", today);
	assert_string_equal(id, want);
	/* A caller takes the next number by hand: it is skipped. */
	snprintf(want, sizeof(want), "%s-0003", today);
	a.id = want;
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id2, 48, &n),
	    QUEUE_OK);
	assert_string_equal(id2, want);
	a.id = NULL;
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_OK);
	snprintf(want, sizeof(want), "%s-0004", today);
	assert_string_equal(id, want);
	/* Caller ids: valid, duplicate, malformed. */
	a.id = "drill-2026-spring";
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_OK);
	assert_string_equal(id, "drill-2026-spring");
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_INVALID);
	assert_non_null(strstr(queue_errmsg(q), "already exists"));
	a.id = "bad id";
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_INVALID);
	a.id = "a_b";
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_INVALID);
	a.id = "";
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_INVALID);
	a.id = "0123456789012345678901234567890123456789";	/* 40: fine */
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_OK);
	a.id = "01234567890123456789012345678901234567890";	/* 41 */
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_INVALID);
	/* A subject is one line. */
	a.id = NULL;
	a.subject = "two\nlines";
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_INVALID);
	/* An update names an existing alert. */
	a.subject = "update";
	a.kind = "update";
	a.refs = "nosuch";
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_NOTFOUND);
	a.refs = "drill-2026-spring";
	assert_int_equal(queue_alert_accept(q, &c, &keyring, &a, id, 48, &n),
	    QUEUE_OK);
	{
		struct queue_alert_info info;

		assert_int_equal(queue_alert_get(q, id, &info), QUEUE_OK);
		assert_string_equal(info.kind, "update");
		assert_string_equal(info.refs, "drill-2026-spring");
		queue_alert_info_free(&info);
	}
	assert_int_equal(queue_alert_get(q, "nosuch", &(struct
	    queue_alert_info){ 0 }), QUEUE_NOTFOUND);
	check_ok(q);
	queue_close(q);
}

static void
test_policy_precedence(void **state)
{
	struct conf c = test_conf();
	struct contact_list l = make_contacts(4, "example.jp");
	struct queue_alert_info info;
	char path[512], id[48];
	struct queue *q;
	int64_t n;

	l.v[1].policy = strdup("slow");
	l.v[3].policy = strdup("fast");
	q = open_queue(fresh_path(path, sizeof(path)));
	assert_int_equal(queue_contacts_replace(q, &l, "test"), QUEUE_OK);

	/* Recipient column, else default. */
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, &n), QUEUE_OK);
	assert_int_equal(queue_alert_get(q, id, &info), QUEUE_OK);
	assert_null(info.policy);
	assert_int_equal(info.expires - info.created, 86400000LL);
	assert_string_equal(delivery(q, id, "r0000").policy, "standard");
	assert_int_equal(delivery(q, id, "r0000").expires,
	    info.created + 86400000LL);
	assert_string_equal(delivery(q, id, "r0001").policy, "slow");
	assert_int_equal(delivery(q, id, "r0001").expires,
	    info.created + 2 * 86400000LL);
	assert_string_equal(delivery(q, id, "r0003").policy, "fast");
	assert_int_equal(delivery(q, id, "r0003").expires,
	    info.created + 3600000LL);
	queue_alert_info_free(&info);

	/* Explicit beats both. */
	assert_int_equal(send_alert(q, &c, "all", "fast", 0, id, &n), QUEUE_OK);
	assert_int_equal(queue_alert_get(q, id, &info), QUEUE_OK);
	assert_string_equal(info.policy, "fast");
	assert_int_equal(info.expires - info.created, 3600000LL);
	for (int i = 0; i < 4; i++) {
		char r[8];

		snprintf(r, sizeof(r), "r%04d", i);
		assert_string_equal(delivery(q, id, r).policy, "fast");
		assert_int_equal(delivery(q, id, r).expires,
		    info.created + 3600000LL);
	}
	queue_alert_info_free(&info);

	/* --expires beats every policy's expire. */
	assert_int_equal(send_alert(q, &c, "all", NULL, 600, id, &n), QUEUE_OK);
	assert_int_equal(queue_alert_get(q, id, &info), QUEUE_OK);
	assert_int_equal(info.expires - info.created, 600000LL);
	assert_int_equal(delivery(q, id, "r0001").expires,
	    info.created + 600000LL);
	assert_string_equal(delivery(q, id, "r0001").policy, "slow");
	queue_alert_info_free(&info);

	/* No default: per-recipient policies only; the alert lasts as long
	 * as its longest delivery.  r0000 has none: refused. */
	c.default_policy = NULL;
	assert_int_equal(send_alert(q, &c, "r0001,r0003", NULL, 0, id, &n),
	    QUEUE_OK);
	assert_int_equal(queue_alert_get(q, id, &info), QUEUE_OK);
	assert_int_equal(info.expires - info.created, 2 * 86400000LL);
	queue_alert_info_free(&info);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, &n), QUEUE_NOTFOUND);
	assert_non_null(strstr(queue_errmsg(q), "r0000"));
	c.default_policy = "standard";

	/* Unknown policies: nothing written. */
	n = alert_count(path);
	assert_int_equal(send_alert(q, &c, "all", "nosuch", 0, id, NULL),
	    QUEUE_NOTFOUND);
	assert_string_equal(queue_errmsg(q), "unknown policy 'nosuch'");
	free(l.v[2].policy);
	l.v[2].policy = strdup("gone");
	assert_int_equal(queue_contacts_replace(q, &l, "test"), QUEUE_OK);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, NULL),
	    QUEUE_NOTFOUND);
	assert_string_equal(queue_errmsg(q),
	    "unknown policy 'gone' (recipient 'r0002')");
	c.default_policy = "nosuch";
	assert_int_equal(send_alert(q, &c, "r0001", NULL, 0, id, NULL),
	    QUEUE_NOTFOUND);
	assert_int_equal(alert_count(path), n);
	check_ok(q);
	queue_close(q);
	free_contacts(&l);
}

/* ---- confirmations ---------------------------------------------------- */

struct evcount {
	const char	*what;
	int		 n;
	char		 last_why[512];
};

static int
event_cb(const struct queue_event_info *e, void *arg)
{
	struct evcount *ec = arg;

	if (strcmp(e->what, ec->what) == 0) {
		ec->n++;
		snprintf(ec->last_why, sizeof(ec->last_why), "%s",
		    e->why ? e->why : "");
	}
	return 0;
}

static int
events(struct queue *q, const char *alert, const char *what, char *why,
    size_t whylen)
{
	struct evcount ec = { what, 0, "" };

	assert_int_equal(queue_events_each(q, alert, event_cb, &ec), 0);
	if (why != NULL)
		snprintf(why, whylen, "%s", ec.last_why);
	return ec.n;
}

static void
test_confirm(void **state)
{
	struct conf c = test_conf();
	struct queue_confirm_result res;
	char path[512], id[48], fmt[CODE_LEN + 2], typed[32], why[512];
	struct queue *q;
	struct dcopy d;
	int64_t before;

	q = queue_with(fresh_path(path, sizeof(path)), 10);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, NULL), QUEUE_OK);

	/* By alert and recipient: the first one confirms. */
	{
		struct queue_confirm cf = { .alert = id, .recipient = "r0000",
		    .via = "phone", .by = "duty-officer", .note = "called" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		assert_int_equal(res.duplicate, 0);
		assert_int_equal(res.late, 0);
		assert_string_equal(res.alert, id);
		assert_string_equal(res.recipient, "r0000");
		d = delivery(q, id, "r0000");
		assert_int_equal(res.delivery, d.id);
		assert_int_equal(d.state, QUEUE_CONFIRMED);
		assert_int_equal(d.next_action, 0);
		assert_string_equal(d.via, "phone");
		assert_string_equal(d.by, "duty-officer");
		assert_true(d.confirmed_at > 0);
		/* Again: a duplicate, recorded, state unchanged. */
		cf.via = "mail";
		cf.by = NULL;
		cf.origin = "r0000@example.jp";
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		assert_int_equal(res.duplicate, 1);
		d = delivery(q, id, "r0000");
		assert_int_equal(d.state, QUEUE_CONFIRMED);
		assert_string_equal(d.via, "phone");	/* the first stands */
		assert_int_equal(count_in(path, "SELECT count(*) FROM "
		    "confirmation WHERE duplicate = 1"), 1);
	}
	/* By code, as printed (XXXX-XXXX). */
	code_format(delivery(q, id, "r0001").code, fmt);
	{
		struct queue_confirm cf = { .code = fmt, .via = "sms",
		    .origin = "+819000000000" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		assert_string_equal(res.recipient, "r0001");
		assert_int_equal(res.duplicate, 0);
		assert_int_equal(delivery(q, id, "r0001").state,
		    QUEUE_CONFIRMED);
	}
	/* By code, as typed: lower case, spaces, no hyphen. */
	d = delivery(q, id, "r0002");
	snprintf(typed, sizeof(typed), " %.4s %.4s ", d.code, d.code + 4);
	for (char *p = typed; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	{
		struct queue_confirm cf = { .code = typed, .via = "fax",
		    .by = "op" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		assert_string_equal(res.recipient, "r0002");
	}
	/* Late: after expired, after failed. */
	reach(q, id, "r0003", QUEUE_EXPIRED);
	{
		struct queue_confirm cf = { .alert = id, .recipient = "r0003",
		    .via = "phone", .by = "op" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		assert_int_equal(res.late, 1);
		assert_int_equal(res.duplicate, 0);
		d = delivery(q, id, "r0003");
		assert_int_equal(d.state, QUEUE_CONFIRMED);
		assert_int_equal(d.late, 1);
	}
	reach(q, id, "r0004", QUEUE_FAILED);
	code_format(delivery(q, id, "r0004").code, fmt);
	{
		struct queue_confirm cf = { .code = fmt, .via = "phone",
		    .by = "op" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		assert_int_equal(res.late, 1);
	}
	assert_int_equal(events(q, id, "confirmed late", NULL, 0), 2);
	/* Cancelled: refused, by recipient and by code; logged. */
	reach(q, id, "r0005", QUEUE_CANCELLED);
	reach(q, id, "r0006", QUEUE_CANCELLED);
	{
		struct queue_confirm cf = { .alert = id, .recipient = "r0005",
		    .via = "phone", .by = "op" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_REFUSED);
		assert_non_null(strstr(queue_errmsg(q), "cancelled"));
		assert_int_equal(delivery(q, id, "r0005").state,
		    QUEUE_CANCELLED);
		code_format(delivery(q, id, "r0006").code, fmt);
		cf.alert = cf.recipient = NULL;
		cf.code = fmt;
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_REFUSED);
		assert_int_equal(delivery(q, id, "r0006").state,
		    QUEUE_CANCELLED);
	}
	assert_int_equal(events(q, id, "confirmation refused", NULL, 0), 2);
	/* A wrong code: refused, and recorded (event + bad_code). */
	before = count_in(path, "SELECT count(*) FROM bad_code");
	assert_int_equal(before, 0);
	{
		char wrong[16];
		struct queue_confirm cf = { .code = wrong, .via = "sms",
		    .origin = "+819099999999" };
		struct dlist dl = deliveries(q, id);
		int clash;

		/* A valid code that is nobody's. */
		for (int k = 0; ; k++) {
			snprintf(wrong, sizeof(wrong), "%08d", k);
			clash = 0;
			for (size_t i = 0; i < dl.n; i++)
				clash |= strcmp(dl.v[i].code, wrong) == 0;
			if (!clash)
				break;
		}
		free(dl.v);
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_REFUSED);
		assert_non_null(strstr(queue_errmsg(q), "matches no delivery"));
		assert_int_equal(count_in(path, "SELECT count(*) FROM bad_code "
		    "WHERE origin = '+819099999999'"), 1);
		assert_int_equal(events(q, NULL, "confirmation refused", why,
		    sizeof(why)), 3);
		assert_non_null(strstr(why, "+819099999999"));
		/* Nothing else changed. */
		assert_int_equal(delivery(q, id, "r0007").state,
		    QUEUE_PENDING);
	}
	/* Malformed input is not a guess: INVALID, not recorded. */
	{
		struct queue_confirm cf = { .code = "ABCD-EFGU", .via = "sms" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_INVALID);
		cf.code = "ABC";
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_INVALID);
		cf.code = NULL;
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_INVALID);
		cf.alert = id;
		cf.recipient = "r0008";
		cf.via = "pigeon";
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_INVALID);
		assert_int_equal(count_in(path, "SELECT count(*) FROM "
		    "bad_code"), 1);
	}
	/* Unknown alert or recipient. */
	{
		struct queue_confirm cf = { .alert = "nosuch",
		    .recipient = "r0008", .via = "phone" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_NOTFOUND);
		assert_string_equal(queue_errmsg(q), "unknown alert 'nosuch'");
		cf.alert = id;
		cf.recipient = "r9999";
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_NOTFOUND);
		assert_non_null(strstr(queue_errmsg(q), "r9999"));
	}
	{
		struct queue_alert_info info;

		assert_int_equal(queue_alert_get(q, id, &info), QUEUE_OK);
		assert_int_equal(info.counts[QUEUE_CONFIRMED], 5);
		assert_int_equal(info.counts[QUEUE_CANCELLED], 2);
		assert_int_equal(info.counts[QUEUE_PENDING], 3);
		queue_alert_info_free(&info);
	}
	check_ok(q);
	queue_close(q);
}

/* Two deliveries of different alerts sharing a code (a 40-bit collision,
 * made here by hand): the open one wins; two open ones are ambiguous. */
static void
test_confirm_collision(void **state)
{
	struct conf c = test_conf();
	struct queue_confirm_result res;
	char path[512], a1[48], a2[48], code[CODE_LEN + 1];
	struct queue *q;
	sqlite3 *db;

	q = queue_with(fresh_path(path, sizeof(path)), 2);
	assert_int_equal(send_alert(q, &c, "r0000", NULL, 0, a1, NULL), QUEUE_OK);
	assert_int_equal(send_alert(q, &c, "r0001", NULL, 0, a2, NULL), QUEUE_OK);
	snprintf(code, sizeof(code), "%s", delivery(q, a1, "r0000").code);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "UPDATE delivery SET code = %Q WHERE "
	    "alert = %Q", code, a2), SQLITE_OK);
	sqlite3_close(db);
	{
		struct queue_confirm cf = { .code = code, .via = "sms",
		    .origin = "+8190" };

		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_REFUSED);
		assert_non_null(strstr(queue_errmsg(q), "matches 2"));
		/* Not a guess: no bad_code row. */
		assert_int_equal(count_in(path, "SELECT count(*) FROM "
		    "bad_code"), 0);
		reach(q, a1, "r0000", QUEUE_CANCELLED);
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		assert_string_equal(res.alert, a2);
		/* Now one confirmed, one cancelled: the confirmed one. */
		assert_int_equal(queue_confirm(q, &cf, &res), QUEUE_OK);
		assert_string_equal(res.alert, a2);
		assert_int_equal(res.duplicate, 1);
	}
	check_ok(q);
	queue_close(q);
}

/* ---- invariants on a corrupted database -------------------------------- */

/* A queue with one alert to 3 recipients, one confirmed; closed. */
static void
corruptible(char *path, size_t len, char id[48])
{
	struct conf c = test_conf();
	struct queue *q;

	q = queue_with(fresh_path(path, len), 3);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, NULL), QUEUE_OK);
	reach(q, id, "r0000", QUEUE_CONFIRMED);
	check_ok(q);
	queue_close(q);
}

/* Open path without the per-commit check, expect the invariant check to
 * fail naming `want`. */
static void
expect_violation(const char *path, const char *want)
{
	char err[512];
	struct queue *q;

	unsetenv("DENGON_DEBUG_INVARIANTS");
	q = queue_open(path, NULL, 0, err, sizeof(err));
	setenv("DENGON_DEBUG_INVARIANTS", "1", 1);
	assert_non_null(q);
	assert_int_equal(queue_check_invariants(q), QUEUE_ERR);
	if (strstr(queue_errmsg(q), want) == NULL)
		fail_msg("expected %s, got: %s", want, queue_errmsg(q));
	queue_close(q);
}

static void
test_invariants_corrupted(void **state)
{
	char path[512], id[48];
	sqlite3 *db;

	/* Q3: a confirmed delivery without its confirmation (INSERT is not
	 * guarded by the state trigger). */
	corruptible(path, sizeof(path), id);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "INSERT INTO delivery(alert, recipient, "
	    "name, policy, state, expires, code, token, created, updated) "
	    "VALUES (%Q, 'ghost', 'Ghost', 'standard', 'confirmed', 0, "
	    "'AAAAAAAA', '0123456789abcdef0123456789abcdef', 0, 0)", id),
	    SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "Q3");

	/* Q3 the other way: a confirmation of a pending delivery. */
	corruptible(path, sizeof(path), id);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "INSERT INTO confirmation(delivery, via, "
	    "at, duplicate, late) SELECT id, 'phone', 0, 0, 0 FROM delivery "
	    "WHERE recipient = 'r0001'"), SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "Q3");

	/* Q2, past the CHECK. */
	corruptible(path, sizeof(path), id);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "PRAGMA ignore_check_constraints = 1; "
	    "UPDATE delivery SET state = 'cancelled' "
	    "WHERE recipient = 'r0001'"), SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "Q2");

	/* Q4: an orphan delivery, with foreign keys off. */
	corruptible(path, sizeof(path), id);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "PRAGMA foreign_keys = OFF; "
	    "INSERT INTO delivery(alert, recipient, name, policy, expires, "
	    "code, token, created, updated) VALUES ('nosuch', 'r0000', 'x', "
	    "'standard', 0, 'AAAAAAAA', '0123456789abcdef0123456789abcdef', 0, "
	    "0)"), SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "Q4");

	/* Q5: the trigger dropped; then rows deleted behind its back. */
	corruptible(path, sizeof(path), id);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "DROP TRIGGER event_q5_delete"),
	    SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "event_q5_delete is missing");
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "DELETE FROM event WHERE id = 2; "
	    "CREATE TRIGGER event_q5_delete BEFORE DELETE ON event BEGIN "
	    "SELECT RAISE(ABORT, 'Q5'); END"), SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "Q5 violated: events were deleted");

	/* Q1 and Q6: their triggers dropped. */
	corruptible(path, sizeof(path), id);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "DROP TRIGGER delivery_q1"), SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "Q1");
	corruptible(path, sizeof(path), id);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "DROP TRIGGER revision_q6"), SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "Q6");
	/* Q6: a revision gap. */
	corruptible(path, sizeof(path), id);
	db = raw_open(path);
	assert_int_equal(raw_exec(db, "INSERT INTO alert_revision VALUES "
	    "(%Q, 3, 's', 'b', 0)", id), SQLITE_OK);
	sqlite3_close(db);
	expect_violation(path, "Q6");
}

/* ---- two programs at once --------------------------------------------- */

/* Child: wait for the start signal, open a fresh queue, import, send. */
static void
racer(const char *path, int go, int out)
{
	struct conf c = test_conf();
	struct contact_list l;
	char err[512], id[48] = "", buf;
	struct queue *q;
	int64_t n = 0;
	int rc = 1;

	if (read(go, &buf, 1) != 0)
		_exit(3);
	q = queue_open(path, NULL, QUEUE_OPEN_CREATE, err, sizeof(err));
	if (q == NULL) {
		snprintf(id, sizeof(id), "open: %.40s", err);
		goto out;
	}
	l = make_contacts(10, "example.jp");
	if (queue_contacts_replace(q, &l, "racer") != QUEUE_OK ||
	    send_alert(q, &c, "all", NULL, 0, id, &n) != QUEUE_OK || n != 10)
		snprintf(id, sizeof(id), "%.46s", queue_errmsg(q));
	else
		rc = 0;
	free_contacts(&l);
	queue_close(q);
out:
	if (write(out, id, sizeof(id)) != (ssize_t)sizeof(id))
		rc = 2;
	_exit(rc);
}

static void
test_two_processes_fresh_queue(void **state)
{
	enum { ROUNDS = 6, KIDS = 3 };

	for (int round = 0; round < ROUNDS; round++) {
		char path[512], ids[KIDS][48], err[512];
		pid_t pid[KIDS];
		int go[2], out[2], status;
		struct queue *q;

		fresh_path(path, sizeof(path));
		assert_int_equal(pipe(go), 0);
		assert_int_equal(pipe(out), 0);
		for (int k = 0; k < KIDS; k++) {
			assert_true((pid[k] = fork()) >= 0);
			if (pid[k] == 0) {
				close(go[1]);
				close(out[0]);
				racer(path, go[0], out[1]);
			}
		}
		close(go[0]);
		close(out[1]);
		close(go[1]);		/* go */
		for (int k = 0; k < KIDS; k++) {
			assert_int_equal(waitpid(pid[k], &status, 0), pid[k]);
			assert_true(WIFEXITED(status));
			assert_int_equal(read(out[0], ids[k], 48), 48);
			if (WEXITSTATUS(status) != 0)
				fail_msg("round %d: child %d: %s", round, k,
				    ids[k]);
		}
		close(out[0]);
		for (int a = 0; a < KIDS; a++)
			for (int b = a + 1; b < KIDS; b++)
				assert_string_not_equal(ids[a], ids[b]);
		q = queue_open(path, NULL, 0, err, sizeof(err));
		assert_non_null(q);
		check_ok(q);
		queue_close(q);
		assert_int_equal(count_in(path, "SELECT count(*) FROM alert"),
		    KIDS);
		assert_int_equal(count_in(path, "SELECT count(*) FROM "
		    "delivery"), 10 * KIDS);
		assert_int_equal(count_in(path, "PRAGMA user_version"), 6);
	}
}

/* ---- backup, disk full ------------------------------------------------ */

static void
test_backup(void **state)
{
	struct conf c = test_conf();
	char path[512], dest[600], id[48], err[512];
	struct queue_alert_info i1, i2;
	struct queue *q, *b;
	struct stat sb;
	mode_t old;

	q = queue_with(fresh_path(path, sizeof(path)), 50);
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, NULL), QUEUE_OK);
	reach(q, id, "r0001", QUEUE_CONFIRMED);
	snprintf(dest, sizeof(dest), "%s/backup.db", tmpdir);
	old = umask(0);
	assert_int_equal(queue_backup(q, dest), QUEUE_OK);
	umask(old);
	assert_int_equal(stat(dest, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	/* Never over an existing file. */
	assert_int_equal(queue_backup(q, dest), QUEUE_ERR);
	assert_non_null(strstr(queue_errmsg(q), "not overwritten"));
	/* A path that cannot be written. */
	assert_int_equal(queue_backup(q, "/nonexistent/dir/b.db"), QUEUE_ERR);
	assert_non_null(strstr(queue_errmsg(q), "/nonexistent/dir/b.db"));

	b = queue_open(dest, NULL, 0, err, sizeof(err));
	if (b == NULL)
		fail_msg("%s", err);
	assert_int_equal(queue_contacts_count(b), 50);
	assert_int_equal(queue_alert_get(q, id, &i1), QUEUE_OK);
	assert_int_equal(queue_alert_get(b, id, &i2), QUEUE_OK);
	assert_int_equal(i1.recipients, i2.recipients);
	for (int s = 0; s < QUEUE_NSTATES; s++)
		assert_int_equal(i1.counts[s], i2.counts[s]);
	assert_string_equal(i1.subject, i2.subject);
	assert_int_equal(events(q, NULL, "accepted", NULL, 0),
	    events(b, NULL, "accepted", NULL, 0));
	assert_int_equal(events(q, NULL, "confirmed", NULL, 0), 1);
	assert_int_equal(events(b, NULL, "confirmed", NULL, 0), 1);
	queue_alert_info_free(&i1);
	queue_alert_info_free(&i2);
	check_ok(b);
	queue_close(b);
	queue_close(q);
}

/* A file size limit makes SQLite's writes fail as on a full disk. */
static void
test_disk_full(void **state)
{
	struct conf c = test_conf();
	char path[512], msg[512] = "", err[512];
	struct queue *q;
	int fds[2], status;
	pid_t pid;

	q = queue_with(fresh_path(path, sizeof(path)), 2000);
	queue_close(q);		/* checkpoints and removes the -wal */
	assert_int_equal(pipe(fds), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		struct rlimit rl = { 64 * 1024, 64 * 1024 };
		char id[48];
		int rc;

		close(fds[0]);
		q = queue_open(path, NULL, 0, err, sizeof(err));
		if (q == NULL)
			_exit(2);
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
			_exit(3);
		rc = send_alert(q, &c, "all", NULL, 0, id, NULL);
		snprintf(msg, sizeof(msg), "%s", queue_errmsg(q));
		if (write(fds[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			_exit(4);
		queue_close(q);
		_exit(rc == QUEUE_ERR ? 0 : 1);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], msg, sizeof(msg)), sizeof(msg));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) != 0)
		fail_msg("child exited %d: %s", WEXITSTATUS(status), msg);
	print_message("disk full: %s\n", msg);
	/* The message names the operation and SQLite's reason. */
	assert_non_null(strstr(msg, "accepting the alert: "));
	assert_true(strstr(msg, "database or disk is full") != NULL ||
	    strstr(msg, "disk I/O error") != NULL);
	/* Nothing was half-written. */
	q = queue_open(path, NULL, 0, err, sizeof(err));
	assert_non_null(q);
	check_ok(q);
	assert_int_equal(count_in(path, "SELECT count(*) FROM alert"), 0);
	assert_int_equal(count_in(path, "SELECT count(*) FROM delivery"), 0);
	assert_int_equal(count_in(path, "SELECT count(*) FROM alert_seq"), 0);
	queue_close(q);
}

/*
 * A real full disk (ENOSPC): a small tmpfs in a mount namespace of the
 * child's own, so nothing outlives it.  Needs root (CI runs as root);
 * skipped otherwise.
 */
static int
enospc_child(const char *dir, char *msg, size_t msglen)
{
	struct conf c = test_conf();
	char path[600], filler[600], err[512], id[48], buf[4096];
	struct statvfs vfs;
	struct queue *q;
	long long avail;
	int fd, rc;

	if (unshare(CLONE_NEWNS) == -1 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", dir, "tmpfs", 0, "size=8m") == -1)
		return 77;
	snprintf(path, sizeof(path), "%s/queue.db", dir);
	q = queue_with(path, 2000);
	queue_close(q);
	if ((q = queue_open(path, NULL, 0, err, sizeof(err))) == NULL)
		return 2;
	/* Leave 128 kB: far less than 2,000 deliveries need. */
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	if ((fd = open(filler, O_WRONLY | O_CREAT, 0600)) == -1 ||
	    statvfs(dir, &vfs) == -1)
		return 3;
	avail = (long long)vfs.f_bavail * (long long)vfs.f_frsize - 128 * 1024;
	memset(buf, 'x', sizeof(buf));
	for (; avail > 0; avail -= (long long)sizeof(buf))
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			break;
	close(fd);
	rc = send_alert(q, &c, "all", NULL, 0, id, NULL);
	snprintf(msg, msglen, "%s", queue_errmsg(q));
	if (rc != QUEUE_ERR)
		return 4;
	/* The same connection goes on once there is room again. */
	unlink(filler);
	if (send_alert(q, &c, "r0001", NULL, 0, id, NULL) != QUEUE_OK)
		return 5;
	queue_close(q);
	if (count_in(path, "SELECT count(*) FROM alert") != 1 ||
	    count_in(path, "SELECT count(*) FROM delivery") != 1)
		return 6;
	return 0;
}

static void
test_disk_full_enospc(void **state)
{
	char dir[512], msg[512] = "";
	int fds[2], status;
	pid_t pid;

	if (geteuid() != 0) {
		print_message("skipped: needs root for a tmpfs\n");
		skip();
	}
	snprintf(dir, sizeof(dir), "%s/full", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(pipe(fds), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		int rc;

		close(fds[0]);
		rc = enospc_child(dir, msg, sizeof(msg));
		if (write(fds[1], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			_exit(9);
		_exit(rc);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], msg, sizeof(msg)), sizeof(msg));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77) {
		print_message("skipped: cannot mount a tmpfs here\n");
		skip();
	}
	if (WEXITSTATUS(status) != 0)
		fail_msg("child exited %d: %s", WEXITSTATUS(status), msg);
	print_message("disk full: %s\n", msg);
	assert_string_equal(msg,
	    "accepting the alert: database or disk is full");
}

/* ---- attempts, backlog, channel counts -------------------------------- */

static struct queue_backlog *
find_backlog(struct queue_backlog *v, int n, const char *ch)
{
	for (int i = 0; i < n; i++)
		if (strcmp(v[i].channel, ch) == 0)
			return &v[i];
	return NULL;
}

static void
test_backlog_and_attempts(void **state)
{
	struct conf c = test_conf();
	struct queue_backlog bl[8], *e;
	struct queue_channel_count cc[8];
	char path[512], id[48], id2[48];
	int64_t a1, a2, a3;
	struct queue *q;
	int n;

	q = queue_with(fresh_path(path, sizeof(path)), 10);
	/* Step 0 of standard: mail (all 10) + lgwan (0, 3, 6, 9). */
	assert_int_equal(send_alert(q, &c, "all", NULL, 0, id, NULL), QUEUE_OK);
	n = queue_backlog(q, &c, bl, 8);
	assert_int_equal(n, 2);
	assert_non_null(e = find_backlog(bl, n, "mail"));
	assert_int_equal(e->waiting, 10);
	assert_int_equal(e->due, 10);
	assert_int_equal(e->inflight, 0);
	assert_non_null(e = find_backlog(bl, n, "lgwan"));
	assert_int_equal(e->waiting, 4);
	/* fast: sms only, which r0000 and r0005 have. */
	assert_int_equal(send_alert(q, &c, "all", "fast", 0, id2, NULL), QUEUE_OK);
	n = queue_backlog(q, &c, bl, 8);
	assert_int_equal(n, 3);
	assert_int_equal(find_backlog(bl, n, "sms")->waiting, 2);

	assert_int_equal(queue_attempt_start(q, delivery(q, id, "r0000").id,
	    "mail", "r0000@example.jp", &a1), QUEUE_OK);
	assert_int_equal(queue_attempt_start(q, delivery(q, id, "r0001").id,
	    "mail", "r0001@example.jp", &a2), QUEUE_OK);
	assert_int_equal(queue_attempt_start(q, delivery(q, id, "r0003").id,
	    "lgwan", "r0003@city.lg.jp", &a3), QUEUE_OK);
	n = queue_backlog(q, &c, bl, 8);
	assert_int_equal(find_backlog(bl, n, "mail")->inflight, 2);
	assert_int_equal(find_backlog(bl, n, "lgwan")->inflight, 1);
	assert_int_equal(queue_attempt_finish(q, a1, "ok",
	    "250 2.0.0 queued as 4Xk", NULL), QUEUE_OK);
	assert_int_equal(queue_attempt_finish(q, a1, "ok", NULL, NULL),
	    QUEUE_REFUSED);
	assert_int_equal(queue_attempt_finish(q, a2, "permfail",
	    "550 5.1.1 no such user", "rejected"), QUEUE_OK);
	assert_int_equal(queue_attempt_finish(q, a3, "bogus", NULL, NULL),
	    QUEUE_INVALID);
	assert_int_equal(queue_attempt_finish(q, 999999, "ok", NULL, NULL),
	    QUEUE_NOTFOUND);
	assert_int_equal(queue_channel_counts(q, id, cc, 8), 2);
	assert_string_equal(cc[0].channel, "lgwan");
	assert_int_equal(cc[0].inflight, 1);
	assert_string_equal(cc[1].channel, "mail");
	assert_int_equal(cc[1].inflight, 0);
	assert_int_equal(cc[1].ok, 1);
	assert_int_equal(cc[1].permfail, 1);
	assert_int_equal(cc[1].tempfail, 0);
	assert_int_equal(queue_channel_counts(q, id2, cc, 8), 0);
	assert_int_equal(queue_channel_counts(q, id, cc, 1), 1);
	n = queue_backlog(q, &c, bl, 8);
	assert_int_equal(find_backlog(bl, n, "mail")->inflight, 0);
	/* Final deliveries leave the backlog, and take no attempts. */
	reach(q, id, "r0002", QUEUE_CANCELLED);
	reach(q, id, "r0004", QUEUE_CONFIRMED);
	n = queue_backlog(q, &c, bl, 8);
	assert_int_equal(find_backlog(bl, n, "mail")->waiting, 8);
	assert_int_equal(find_backlog(bl, n, "mail")->due, 8);
	assert_int_equal(queue_attempt_start(q, delivery(q, id, "r0002").id,
	    "mail", "x@example.jp", NULL), QUEUE_REFUSED);
	assert_int_equal(queue_attempt_start(q, 999999, "mail", "x@example.jp",
	    NULL), QUEUE_NOTFOUND);
	/* Room for one entry: one. */
	assert_int_equal(queue_backlog(q, &c, bl, 1), 1);
	check_ok(q);
	queue_close(q);
}

static int
health_copy(const struct queue_health *h, void *arg)
{
	struct queue_health *v = arg;

	for (; v->name[0] != '\0'; v++)
		;
	*v = *h;
	return 0;
}

/* The daemon's health notes ride in the outcomes' transaction, in order:
 * a failure, then a success, of one channel; another channel down. */
static void
test_outcomes_health(void **state)
{
	const struct queue_health_note notes[] = {
		{ "mail", 0, "connect: refused", 1000 },
		{ "sms", 0, "no modem", 1500 },
		{ "mail", 1, NULL, 2000 },
	};
	struct queue_health h[4];
	char path[512];
	struct queue *q;

	q = open_queue(fresh_path(path, sizeof(path)));
	assert_int_equal(queue_outcomes_health(q, NULL, 0, notes, 3, 2500,
	    NULL, NULL, "test"), QUEUE_OK);
	memset(h, 0, sizeof(h));
	assert_int_equal(queue_health_each(q, health_copy, h), 0);
	assert_string_equal(h[0].name, "mail");
	assert_int_equal(h[0].up, 1);
	assert_int_equal(h[0].since, 2000);
	assert_int_equal(h[0].last_ok, 2000);
	assert_int_equal(h[0].last_error_at, 1000);
	assert_string_equal(h[0].last_error, "connect: refused");
	assert_string_equal(h[1].name, "sms");
	assert_int_equal(h[1].up, 0);
	assert_int_equal(h[1].last_ok, 0);
	assert_string_equal(h[1].last_error, "no modem");
	assert_string_equal(h[2].name, "");
	check_ok(q);
	queue_close(q);
}

/* ---- reading: contacts, alerts ---------------------------------------- */

static int
count_cb(const struct contact *ct, void *arg)
{
	int *n = arg;

	assert_non_null(ct->id);
	assert_non_null(ct->name);
	(*n)++;
	return 0;
}

static int
stop_cb(const struct contact *ct, void *arg)
{
	return 42;
}

static int
alerts_cb(const struct queue_alert_info *info, void *arg)
{
	char (*ids)[48] = arg;

	for (int i = 0; i < 3; i++)
		if (ids[i][0] == '\0') {
			snprintf(ids[i], 48, "%s", info->id);
			break;
		}
	return 0;
}

static void
test_reading(void **state)
{
	struct conf c = test_conf();
	char path[512], id[3][48], got[3][48];
	struct queue *q;
	int n = 0;

	q = queue_with(fresh_path(path, sizeof(path)), 10);
	assert_int_equal(queue_contacts_each(q, NULL, count_cb, &n), 0);
	assert_int_equal(n, 10);
	n = 0;
	assert_int_equal(queue_contacts_each(q, "odd", count_cb, &n), 0);
	assert_int_equal(n, 5);
	n = 0;
	assert_int_equal(queue_contacts_each(q, "members", count_cb, &n), 0);
	assert_int_equal(n, 10);
	assert_int_equal(queue_contacts_each(q, NULL, stop_cb, NULL), 42);
	for (int i = 0; i < 3; i++)
		assert_int_equal(send_alert(q, &c, "all", NULL, 0, id[i], NULL),
		    QUEUE_OK);
	memset(got, 0, sizeof(got));
	assert_int_equal(queue_alerts_each(q, 2, alerts_cb, got), 0);
	/* Newest first, at most limit. */
	assert_string_equal(got[0], id[2]);
	assert_string_equal(got[1], id[1]);
	assert_string_equal(got[2], "");
	assert_int_equal(events(q, id[0], "accepted", NULL, 0), 1);
	assert_int_equal(events(q, NULL, "accepted", NULL, 0), 3);
	assert_int_equal(events(q, NULL, "contacts replaced", NULL, 0), 1);
	{
		enum queue_state s;
		enum queue_tlp t;

		for (int i = 0; i < QUEUE_NSTATES; i++) {
			assert_int_equal(queue_state_parse(queue_state_name(
			    (enum queue_state)i), &s), 0);
			assert_int_equal(s, i);
		}
		assert_int_equal(queue_state_parse("lost", &s), -1);
		assert_int_equal(queue_tlp_parse("amber+strict", &t), 0);
		assert_int_equal(t, QUEUE_TLP_AMBER_STRICT);
		assert_string_equal(queue_tlp_name(QUEUE_TLP_RED), "RED");
		assert_int_equal(queue_tlp_parse("PURPLE", &t), -1);
	}
	/* A duplicate id in an import: all or nothing. */
	{
		struct contact_list l = make_contacts(3, "example.jp");

		free(l.v[2].id);
		l.v[2].id = strdup("r0000");
		assert_int_equal(queue_contacts_replace(q, &l, "test"),
		    QUEUE_INVALID);
		assert_int_equal(queue_contacts_count(q), 10);
		free_contacts(&l);
	}
	check_ok(q);
	queue_close(q);
}

static int
setup(void **state)
{
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	make_keyring();
	return 0;
}

static int
teardown(void **state)
{
	char cmd[600];

	code_keyring_free(&keyring);
	if (getenv("DENGON_TEST_KEEP") != NULL)
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_missing),
		cmocka_unit_test(test_create_permissions),
		cmocka_unit_test(test_newer_version_refused),
		cmocka_unit_test(test_schema_v6),
		cmocka_unit_test(test_transition_table),
		cmocka_unit_test(test_transition_trigger_raw),
		cmocka_unit_test(test_append_only),
		cmocka_unit_test(test_accept_2000),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_alert_ids),
		cmocka_unit_test(test_policy_precedence),
		cmocka_unit_test(test_confirm),
		cmocka_unit_test(test_confirm_collision),
		cmocka_unit_test(test_invariants_corrupted),
		cmocka_unit_test(test_two_processes_fresh_queue),
		cmocka_unit_test(test_outcomes_health),
		cmocka_unit_test(test_backup),
		cmocka_unit_test(test_disk_full),
		cmocka_unit_test(test_disk_full_enospc),
		cmocka_unit_test(test_backlog_and_attempts),
		cmocka_unit_test(test_reading),
	};

	/* Every write transaction of the queue checks Q1-Q6 (queue.c). */
	setenv("DENGON_DEBUG_INVARIANTS", "1", 1);
	return cmocka_run_group_tests(tests, setup, teardown);
}
