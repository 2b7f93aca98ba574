/*
 * queue.h - the durable store: alerts, deliveries, attempts, confirmations,
 * events, and the contact directory, in one SQLite database.
 *
 * Owned state: the database file named by [relay] queue, its -wal and -shm
 * files, and nothing else.  Every connection runs in WAL mode with
 * synchronous=FULL and a busy timeout; every state change is one
 * transaction (BEGIN IMMEDIATE); all SQL is prepared once per connection
 * from a table indexed by an enum.  The schema is versioned with
 * PRAGMA user_version and migrated under BEGIN IMMEDIATE by whichever
 * program opens the queue first, so two programs opening it at once are
 * safe.  The database and its side files are created mode 0660 with the
 * configured group, so an operator's CLI never leaves a file the daemon
 * cannot open.
 *
 * Times are int64 milliseconds since the Unix epoch (UTC).
 *
 * Files: with QUEUE_OPEN_CREATE a missing parent directory is created mode
 * 2770 (setgid, so the -wal and -shm files SQLite creates and deletes in it
 * keep the group whoever creates them) with the configured group.
 *
 * ---- The delivery state machine (CONTRACT.md, "Delivery states") --------
 *
 *   pending --> sent --> delivered --> confirmed
 *      |         |          |              ^
 *      +---------+----------+--------------+   (a confirmation may skip ahead)
 *      +---------+----------+--> expired, cancelled
 *      +---------+-------------> failed
 *   failed, expired --> confirmed            (a late confirmation)
 *
 * pending --> confirmed is an edge: CONTRACT.md accepts a confirmation
 * "from any state but cancelled" (an operator may take one by phone before
 * any channel has sent).  Re-arming a delivered delivery (a repeat or an
 * update) gives it a next action again; it is not a state change.
 *
 * Invariants (checked by queue_check_invariants() after every write
 * transaction in debug builds when DENGON_DEBUG_INVARIANTS is set, and
 * enforced for any writer by triggers and constraints in the schema):
 *
 *   Q1. A delivery's state only changes along an edge above
 *       (queue_transition_ok()); confirmed and cancelled are terminal.
 *   Q2. A delivery in a final state (confirmed, failed, expired, cancelled)
 *       has no next action (next_action IS NULL).
 *   Q3. A confirmed delivery has at least one non-duplicate confirmation,
 *       and exactly one confirmation is not marked duplicate.
 *   Q4. Every delivery belongs to an existing alert, and (alert, recipient)
 *       is unique: one obligation per alert and recipient.
 *   Q5. The event log is append-only: no row of it is ever updated or
 *       deleted (triggers refuse it).
 *   Q6. An alert and its revisions are immutable once accepted; an update
 *       adds a revision, it never rewrites one.
 *
 * Delivery is at-least-once: an attempt with no outcome (in flight when a
 * process died) is retried, and keeps its Message-ID.
 */
#ifndef DENGON_QUEUE_H
#define DENGON_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"

/* ---- results ----------------------------------------------------------- */

enum queue_rc {
	QUEUE_OK	=  0,
	QUEUE_ERR	= -1,	/* runtime: I/O, disk full, busy, corrupt */
	QUEUE_NOTFOUND	= -2,	/* unknown alert, recipient or target */
	QUEUE_REFUSED	= -3,	/* e.g. a code matching no open delivery */
	QUEUE_INVALID	= -4	/* bad input that got past the caller */
};

/* ---- states ------------------------------------------------------------ */

enum queue_state {
	QUEUE_PENDING,
	QUEUE_SENT,
	QUEUE_DELIVERED,
	QUEUE_CONFIRMED,
	QUEUE_FAILED,
	QUEUE_EXPIRED,
	QUEUE_CANCELLED,
	QUEUE_NSTATES
};

const char *queue_state_name(enum queue_state s);
/* 0 and *s set, or -1 for an unknown name. */
int queue_state_parse(const char *name, enum queue_state *s);
/* 1 if a delivery may go from -> to (Q1), else 0.  Same state -> 0. */
int queue_transition_ok(enum queue_state from, enum queue_state to);
/* 1 for confirmed, failed, expired, cancelled. */
int queue_state_final(enum queue_state s);

/* TLP 2.0 sharing levels. */
enum queue_tlp {
	QUEUE_TLP_CLEAR,
	QUEUE_TLP_GREEN,
	QUEUE_TLP_AMBER,
	QUEUE_TLP_AMBER_STRICT,
	QUEUE_TLP_RED
};
const char *queue_tlp_name(enum queue_tlp t);		/* "AMBER+STRICT" */
int queue_tlp_parse(const char *name, enum queue_tlp *t); /* case-insensitive */

/* ---- confirmation codes (code.c) --------------------------------------- */

#define CODE_LEN	8	/* Crockford base32 characters: 40 bits */
#define CODE_KEY_LEN	32	/* bytes of HMAC key */

/* One relay secret.  id is a fingerprint of the key (16 hex digits), stored
 * with each alert so that codes stay checkable after the key is rotated. */
struct code_key {
	char		id[17];
	unsigned char	bytes[CODE_KEY_LEN];
};

/* The secret file: one key per line as 64 hex digits; the first line is the
 * current key, later lines are older keys kept to verify older alerts. */
struct code_keyring {
	struct code_key	*keys;
	size_t		 n;
};

/* Create the secret file (mode 0600) with one fresh random key.  Returns 1
 * if it already existed (left untouched), 0 if created, -1 on error (err). */
int code_keyring_create(const char *path, char *err, size_t errlen);
/* Load the secret file; -1 with a reason in err if unreadable or malformed. */
int code_keyring_load(const char *path, struct code_keyring *kr, char *err,
    size_t errlen);
/* The key with this id, or NULL. Borrowed. */
const struct code_key *code_keyring_find(const struct code_keyring *kr,
    const char *id);
void code_keyring_free(struct code_keyring *kr);

/* code = Crockford-base32(first 40 bits of HMAC-SHA256(key,
 *        u32be(len(alert)) || alert || u32be(len(recipient)) || recipient)).
 * out receives CODE_LEN characters and a NUL. */
void code_compute(const struct code_key *key, const char *alert,
    const char *recipient, char out[CODE_LEN + 1]);
/* The same for many codes under one key: the HMAC key is set up once
 * (a quarter of the cost of code_compute() per code).  code_mac_new()
 * never fails (it aborts, as code_compute() does, if OpenSSL cannot). */
struct code_mac;
struct code_mac *code_mac_new(const struct code_key *key);
void code_mac_compute(struct code_mac *m, const char *alert,
    const char *recipient, char out[CODE_LEN + 1]);
void code_mac_free(struct code_mac *m);
/* "ABCDEFGH" -> "ABCD-EFGH" */
void code_format(const char code[CODE_LEN + 1], char out[CODE_LEN + 2]);
/* Normalise what a person typed: case, spaces and hyphens ignored, O read as
 * 0, I and L read as 1.  0 and out set if it is 8 valid characters, else -1. */
int code_normalise(const char *in, char out[CODE_LEN + 1]);

/* ---- opening ----------------------------------------------------------- */

struct queue;

enum queue_open_flags {
	QUEUE_OPEN_CREATE = 1	/* create the database if missing (init) */
};

/*
 * Open (and migrate) the queue at path.  group, if not NULL or empty, is
 * the group the files get (mode 0660).  Returns NULL with a message in err
 * if the database is missing (without QUEUE_OPEN_CREATE), unreadable, or
 * of a newer schema than this program knows.
 */
struct queue *queue_open(const char *path, const char *group, int flags,
    char *err, size_t errlen);
void queue_close(struct queue *q);
/* The last error's message; borrowed, valid until the next call. */
const char *queue_errmsg(const struct queue *q);
/* The current time in ms since the epoch. */
int64_t queue_now(void);
/* A consistent copy of the live database (SQLite online backup) into dest,
 * created mode 0600 as a self-contained file (rollback journal mode).  An
 * existing dest is never overwritten (QUEUE_ERR); a failed copy is
 * removed. */
int queue_backup(struct queue *q, const char *dest);
/* Run the invariants Q1-Q6 over the whole database; QUEUE_OK or QUEUE_ERR
 * with the first violation in queue_errmsg().  Debug builds (no NDEBUG)
 * check it after each write transaction and abort on a violation when
 * DENGON_DEBUG_INVARIANTS is set (non-empty, not "0") at queue_open();
 * tests call it directly. */
int queue_check_invariants(struct queue *q);

/* ---- the contact directory --------------------------------------------- */

/* Replace the whole directory with l, in one transaction.  QUEUE_INVALID
 * names a duplicate id or a missing name. */
int queue_contacts_replace(struct queue *q, const struct contact_list *l,
    const char *actor);
/* Call cb for each recipient (of group, if not NULL), ordered by id.  A
 * non-zero return from cb stops the walk and is returned; QUEUE_ERR on a
 * database error.  The contact passed to cb is borrowed for the call only.
 * The same holds for every *_each function below.  A callback may call
 * other queue functions, but not the same *_each (its statement is busy). */
int queue_contacts_each(struct queue *q, const char *group,
    int (*cb)(const struct contact *c, void *arg), void *arg);
/* Number of recipients in the directory, or -1. */
int64_t queue_contacts_count(struct queue *q);

/* ---- accepting an alert ------------------------------------------------ */

struct queue_new_alert {
	const char	*id;		/* NULL: assign YYYYMMDD-NNNN */
	const char	*subject;	/* UTF-8, one line */
	const char	*body;		/* UTF-8 */
	enum queue_tlp	 tlp;
	int		 drill;
	const char	*policy;	/* NULL: recipient's, else default */
	int64_t		 expires_in;	/* seconds; 0: from the policy */
	const char	*targets;	/* "r1,group:G,all" */
	const char	*source;	/* who/what submitted: "cli:root", "spool:x.alert" */
	const char	*kind;		/* NULL or "alert"; "update", "cancel" need refs */
	const char	*refs;		/* NULL, or the alert this updates/cancels */
};

/*
 * Accept an alert: resolve targets against the directory, create one
 * delivery per distinct recipient with its addresses, policy, expiry and
 * confirmation code (from the keyring's current key), and log events, all
 * in one transaction that is committed (synchronous=FULL) before this
 * returns.  id_out receives the alert id (at least 41 bytes);
 * *recipients the number of deliveries.  QUEUE_NOTFOUND names an unknown
 * recipient, empty group or unknown policy (or unknown refs) in
 * queue_errmsg(), or says the directory is empty; QUEUE_INVALID a malformed
 * or duplicate alert id, a subject with a line break, no key in kr.
 * Nothing is written on failure.
 *
 * Expiry: the alert's is acceptance + expires_in, else + the expire of the
 * alert-level policy (a->policy, else default_policy), else (neither set)
 * the latest of its deliveries'.  A delivery's is acceptance + expires_in,
 * else + its own policy's expire.  Each delivery starts pending, step 0,
 * next_action = acceptance (due now), with a random token (the mail
 * channel's Message-ID seed, unguessable so that a reply's In-Reply-To can
 * be trusted).  Ids assigned here are YYYYMMDD-NNNN of the local date.
 */
int queue_alert_accept(struct queue *q, const struct conf *c,
    const struct code_keyring *kr, const struct queue_new_alert *a,
    char *id_out, size_t id_outlen, int64_t *recipients);

/* The first alert accepted with exactly this source (e.g. a spool file's
 * "spool:NAME sha256:HEX"): QUEUE_OK with its id, or QUEUE_NOTFOUND. */
int queue_alert_find_source(struct queue *q, const char *source, char *id,
    size_t idlen);

/* ---- reading alerts and deliveries ------------------------------------- */

struct queue_alert_info {
	char		*id;
	int		 revision;	/* current revision, 1.. */
	char		*kind;		/* alert | update | cancel */
	int		 drill;
	enum queue_tlp	 tlp;
	char		*subject;	/* of the current revision */
	char		*body;
	char		*policy;	/* the alert's policy (NULL: per recipient) */
	char		*source;
	char		*key_id;
	char		*refs;		/* the alert it updates/cancels, or NULL */
	int64_t		 created;
	int64_t		 expires;
	int64_t		 recipients;
	int64_t		 counts[QUEUE_NSTATES];
};

/* Fill *info for alert id: QUEUE_OK or QUEUE_NOTFOUND. Free with
 * queue_alert_info_free(). */
int queue_alert_get(struct queue *q, const char *id,
    struct queue_alert_info *info);
void queue_alert_info_free(struct queue_alert_info *info);
/* The most recent alerts, newest first, at most limit (<= 0: all).  info
 * is borrowed for the call. */
int queue_alerts_each(struct queue *q, int limit,
    int (*cb)(const struct queue_alert_info *info, void *arg), void *arg);

struct queue_delivery_info {
	int64_t		 id;
	const char	*alert;
	const char	*recipient;
	const char	*name;
	const char	*org;
	const char	*mail, *lgwan, *fax, *sms;	/* copied at acceptance */
	const char	*policy;
	enum queue_state state;
	int		 step;
	int64_t		 next_action;	/* 0: none */
	int64_t		 expires;
	const char	*code;		/* CODE_LEN chars */
	const char	*token;		/* 32 hex digits, random: Message-ID seed */
	/* the accepted (non-duplicate) confirmation, if any */
	const char	*confirmed_via;
	const char	*confirmed_by;
	int64_t		 confirmed_at;	/* 0: not confirmed */
	int		 late;
	const char	*confirmed_from; /* the sender address/number, or NULL */
	int		 foreign;	/* ... which is not the recipient's */
	int64_t		 displayed;	/* a read receipt (MDN) came: when */
};

/* Each delivery of alert, ordered by recipient id.  Strings are borrowed
 * for the call. */
int queue_deliveries_each(struct queue *q, const char *alert,
    int (*cb)(const struct queue_delivery_info *d, void *arg), void *arg);

struct queue_attempt_info {
	int64_t		 id;
	int64_t		 delivery;
	const char	*channel;
	const char	*address;
	int64_t		 started;
	int64_t		 finished;	/* 0: in flight */
	const char	*outcome;	/* "ok" | "tempfail" | "permfail" | NULL */
	const char	*evidence;
	const char	*error;
	int		 round;		/* 0: first sending; n: reminder n */
	const char	*message_id;	/* mail: the Message-ID sent, or NULL */
	const char	*notice;	/* NULL: the alert; "cancel" | "update":
					   a notice */
};

/* Each attempt of one delivery, oldest first. Borrowed for the call. */
int queue_attempts_each(struct queue *q, int64_t delivery,
    int (*cb)(const struct queue_attempt_info *a, void *arg), void *arg);

/* Per-channel counters of attempts for one alert (status bars). */
struct queue_channel_count {
	char	channel[64];
	int64_t	inflight, ok, tempfail, permfail;
};
/* Fills up to max entries; returns the number filled, or -1. */
int queue_channel_counts(struct queue *q, const char *alert,
    struct queue_channel_count *v, int max);

/* ---- confirmations ----------------------------------------------------- */

struct queue_confirm {
	const char	*alert;		/* with recipient, or */
	const char	*recipient;
	const char	*code;		/* a code as typed (normalised here) */
	const char	*via;		/* phone | fax | mail | sms | other */
	const char	*by;		/* the operator, or NULL */
	const char	*origin;	/* the sender address/number, or NULL */
	const char	*note;
	const char	*evidence;	/* raw evidence, or NULL */
	/* An inbound message this confirmation comes from (inbox reader):
	 * recorded in the same transaction, so that the message is processed
	 * once however often it is read.  NULL: none. */
	const char	*inbox;
	const char	*inbound;	/* its Message-ID (or a digest) */
};

struct queue_confirm_result {
	int64_t	delivery;
	char	alert[41];
	char	recipient[65];
	int	duplicate;	/* the delivery was already confirmed */
	int	late;		/* it had failed or expired */
	int	foreign;	/* via mail/sms from another address than the
				   recipient's */
	int	already;	/* the inbound message was processed before:
				   nothing was done */
};

/*
 * Record a confirmation.  The first one for a delivery moves it to
 * confirmed and clears its next action (late if it had failed or expired);
 * later ones are recorded as duplicates, state unchanged.  QUEUE_NOTFOUND:
 * unknown alert or recipient.  QUEUE_REFUSED: the code matches no delivery,
 * matches several and none stands out (see queue_delivery.c: an open one
 * wins, else a single non-cancelled one), or the delivery was cancelled;
 * a refusal is logged as an event (who tried what) and a code matching
 * nothing also as a bad_code row, both committed.  QUEUE_INVALID: via is
 * not phone|fax|mail|sms|relay|other, the code is not 8 valid characters,
 * or neither (alert, recipient) nor code is given.  res is filled on
 * QUEUE_OK (and with the delivery on a refusal of a cancelled one).
 */
int queue_confirm(struct queue *q, const struct queue_confirm *cf,
    struct queue_confirm_result *res);

/* ---- state changes ----------------------------------------------------- */

/* Move one delivery to state `to`, with an event giving actor and why; a
 * final state clears next_action (Q2).  QUEUE_REFUSED if the transition is
 * not allowed (Q1); the database is then unchanged.  QUEUE_NOTFOUND for an
 * unknown delivery; QUEUE_INVALID for to == QUEUE_CONFIRMED (only
 * queue_confirm() confirms: Q3). */
int queue_delivery_set_state(struct queue *q, int64_t delivery,
    enum queue_state to, const char *actor, const char *why);

/* Record that an attempt starts now: delivery, channel name, the address
 * used; the alert's current revision is recorded with it.  *attempt gets
 * its id.  QUEUE_NOTFOUND unknown delivery; QUEUE_REFUSED if the delivery
 * is in a final state. */
int queue_attempt_start(struct queue *q, int64_t delivery, const char *channel,
    const char *address, int64_t *attempt);
/* Record an attempt's outcome ("ok" | "tempfail" | "permfail") now, with
 * evidence and error (either may be NULL).  QUEUE_REFUSED if it already has
 * one.  The delivery's state is the caller's to change. */
int queue_attempt_finish(struct queue *q, int64_t attempt, const char *outcome,
    const char *evidence, const char *error);

/* ---- work waiting ------------------------------------------------------ */

struct queue_backlog {
	char	channel[64];
	int64_t	waiting;	/* deliveries whose current step uses it, not yet
				   accepted by any channel or due again now */
	int64_t	due;		/* of those, next action already due */
	int64_t	inflight;	/* attempts without an outcome */
};
/* Work waiting per channel (channels of each delivery's current policy
 * step that it has an address for).  Returns entries filled, or -1. */
int queue_backlog(struct queue *q, const struct conf *c,
    struct queue_backlog *v, int max);

/* ---- events ------------------------------------------------------------ */

/*
 * Events written by the queue (what; why):
 *   "contacts replaced"	"N recipients"
 *   "accepted"		"from SOURCE, N recipients"
 *   "sent" | "delivered" | "failed" | "expired" | "cancelled"
 *			the caller's why + " (was STATE)"
 *   "confirmed" | "confirmed late" | "confirmed again" (a duplicate)
 *			"via V from ORIGIN by WHO: NOTE (was STATE)"
 *   "confirmation refused"	what was tried, via what, from whom
 * Delivery events carry both the alert and the delivery.
 */
struct queue_event_info {
	int64_t		 id;
	int64_t		 at;
	const char	*alert;		/* may be NULL */
	int64_t		 delivery;	/* 0: none */
	const char	*actor;
	const char	*what;
	const char	*why;
};
/* Each event of an alert (NULL: all), oldest first. Borrowed for the call. */
int queue_events_each(struct queue *q, const char *alert,
    int (*cb)(const struct queue_event_info *e, void *arg), void *arg);

/* ---- the daemon's work (queue_work.c) ---------------------------------- */

/*
 * A delivery as the scheduler sees it: the obligation, its schedule, the
 * current revision of its alert, and what happened in its current round.
 * Strings are borrowed for the duration of a callback.
 */
struct queue_work {
	int64_t		 delivery;
	const char	*alert;
	const char	*recipient;
	const char	*name;
	const char	*org;
	const char	*mail, *lgwan, *fax, *sms;
	const char	*policy;
	const char	*code;
	const char	*token;		/* seeds the stable Message-ID */
	enum queue_state state;
	int		 step;		/* index into the policy's steps */
	int		 round;		/* 0: first sending; n: n-th reminder */
	int		 tries;		/* tempfails in a row (backoff) */
	int64_t		 next_action;	/* 0: none */
	int64_t		 expires;
	int64_t		 created;	/* the alert's acceptance */
	enum queue_tlp	 tlp;
	int		 drill;
	int		 revision;	/* current revision of the alert */
	const char	*subject;
	const char	*body;
	const char	*done_ok;	/* channels with ok in this round and
					   step, comma-separated, or NULL */
	const char	*done_perm;	/* channels that ever failed for good */
	int		 inflight;	/* attempts without an outcome */
};

/* Call cb for at most max deliveries with next_action <= now, earliest
 * first.  A non-zero return from cb stops the walk. */
int queue_due_each(struct queue *q, int64_t now, int max,
    int (*cb)(const struct queue_work *w, void *arg), void *arg);
/* The work record of one delivery (by id), passed to cb. */
int queue_work_get(struct queue *q, int64_t delivery,
    int (*cb)(const struct queue_work *w, void *arg), void *arg);
/* The id of the delivery of alert to recipient: QUEUE_OK or NOTFOUND. */
int queue_delivery_find(struct queue *q, const char *alert,
    const char *recipient, int64_t *id);
/* The earliest next_action of any delivery; *when = 0 if there is none. */
int queue_next_due(struct queue *q, int64_t *when);

/* What the scheduler decided for a delivery. */
struct queue_plan {
	enum queue_state state;		/* the same state: no change */
	int		 step;
	int		 round;
	int		 tries;
	int64_t		 next_action;	/* 0: none */
	const char	*what;		/* event: "sending", "retry", ... */
	const char	*why;		/* event reason, or NULL: no event */
};

/* One attempt to begin: filled by the caller; attempt is set by
 * queue_claim() (0 if the delivery was skipped: it became final, or was
 * claimed by somebody else meanwhile). */
struct queue_claim {
	int64_t		 delivery;
	const char	*channel;
	const char	*address;
	const char	*message_id;
	int		 revision;
	int		 round;
	int		 step;
	int64_t		 notice;	/* 0, or the notice this sends */
	const char	*notice_kind;	/* "cancel" with notice */
	int64_t		 attempt;
};

/*
 * Begin the attempts v[0..n) in one transaction: each becomes an attempt
 * in flight, and its delivery's next_action is cleared (the outcome will
 * set it again).  A delivery that is final or whose next action is no
 * longer due is skipped (attempt = 0).
 */
int queue_claim(struct queue *q, struct queue_claim *v, size_t n,
    int64_t now);

/* The outcome of one attempt. */
struct queue_outcome {
	int64_t		 attempt;
	const char	*outcome;	/* "ok" | "tempfail" | "permfail" */
	const char	*evidence;
	const char	*error;
	int		 delivered;	/* ok with arrival evidence (fax) */
};

/* Decide a delivery's plan after outcome o; called inside the transaction
 * with the delivery's fresh work record (o already counted in it). */
typedef void (*queue_plan_fn)(const struct queue_work *w,
    const struct queue_outcome *o, struct queue_plan *plan, void *arg);

/*
 * Record outcomes v[0..n) in one transaction: each attempt is finished,
 * and unless its delivery is already final, fn plans the delivery and
 * the plan is applied (state change along the state machine, schedule,
 * events).  An attempt already finished is left alone.
 */
int queue_outcomes(struct queue *q, const struct queue_outcome *v, size_t n,
    int64_t now, queue_plan_fn fn, void *arg, const char *actor);

/* A channel's health as one of its sessions left it (queue_health_report). */
struct queue_health_note {
	const char	*channel;
	int		 ok;
	const char	*error;		/* when not ok */
	int64_t		 at;
};
/* queue_outcomes() and the health notes h[0..nh), in order, in the same
 * transaction (the daemon's one commit per turn of its loop). */
int queue_outcomes_health(struct queue *q, const struct queue_outcome *v,
    size_t n, const struct queue_health_note *h, size_t nh, int64_t now,
    queue_plan_fn fn, void *arg, const char *actor);
/* Apply a plan to a delivery without an attempt (expiry, no channel). */
int queue_plan_apply(struct queue *q, int64_t delivery,
    const struct queue_plan *plan, int64_t now, const char *actor);

/* A notice to send (queue_notices_due()); strings borrowed. */
struct queue_notice {
	int64_t		 id;
	int64_t		 delivery;
	const char	*kind;		/* "cancel" | "update" */
	const char	*channel;
	const char	*address;
	const char	*reason;	/* may be NULL */
	int		 tries;
};

/*
 * The notices due at now (at most max), each with its delivery's work
 * record (final, usually: a cancelled delivery).  cb returns non-zero to
 * stop.  A notice is sent as an attempt marked with its kind
 * (queue_claim() with queue_claim.notice); its outcome (queue_outcomes())
 * settles it: ok => sent, permfail => failed, tempfail => retried with
 * the backoff of queue_set_retry(), up to QUEUE_NOTICE_TRIES tries.
 */
#define QUEUE_NOTICE_TRIES	10
int queue_notices_due(struct queue *q, int64_t now, int max,
    int (*cb)(const struct queue_notice *n, const struct queue_work *w,
    void *arg), void *arg);
/* The backoff of notices: retry_min ms doubled per try, at most
 * retry_max ms (the [relay] keys; defaults 60 s and 1 h). */
void queue_set_retry(struct queue *q, int64_t retry_min, int64_t retry_max);

/*
 * After a crash: every attempt left in flight is finished as tempfail
 * ("interrupted"), and its delivery becomes due at now (at-least-once:
 * the retry keeps its Message-ID).  *n is the number of attempts.
 */
int queue_recover(struct queue *q, int64_t now, int64_t *n);

/* ---- what comes back by mail (queue_inbound.c) ------------------------- */

/* The delivery a code (normalised, CODE_LEN characters) names, read-only,
 * with the rule of queue_confirm() (an open one first): QUEUE_OK with
 * alert and recipient, or QUEUE_NOTFOUND. */
int queue_code_find(struct queue *q, const char *code, char alert[41],
    char recipient[65]);
/* The delivery whose Message-ID token this is: QUEUE_OK or NOTFOUND. */
int queue_token_find(struct queue *q, const char *token, char alert[41],
    char recipient[65]);
/* Record a wrong code from origin (an event and a bad_code row), in one
 * transaction with the record of the inbound message (inbox, inbound) that
 * carried it, if inbox is not NULL: a message already recorded changes
 * nothing (QUEUE_OK). */
int queue_bad_code(struct queue *q, const char *origin, const char *code,
    const char *why, const char *inbox, const char *inbound);
/* How many wrong codes origin sent since `since` (ms), in *n. */
int queue_bad_code_count(struct queue *q, const char *origin, int64_t since,
    int64_t *n);
/* 1 if inbox has processed message_id already, 0 if not, QUEUE_ERR. */
int queue_inbound_seen(struct queue *q, const char *inbox,
    const char *message_id);
/* Record an inbound message that proved nothing (kind, and why). */
int queue_inbound_record(struct queue *q, const char *inbox,
    const char *message_id, const char *kind, const char *result);

/*
 * A delivery status notification for attempt: action "delivered" moves
 * the delivery to delivered; "failed" turns the attempt into a permfail
 * (and plans the delivery with fn, so escalation moves on); anything else
 * is kept as evidence only.  One transaction with the inbound record;
 * *already = 1 if it was processed before.  QUEUE_NOTFOUND: no such
 * attempt.
 */
int queue_dsn(struct queue *q, int64_t attempt, const char *action,
    const char *status, const char *diagnostic, const char *inbox,
    const char *inbound, queue_plan_fn fn, void *arg, int *already);
/* A disposition notification (MDN) for the delivery of token: evidence
 * ("displayed" at a time), in one transaction with the inbound record. */
int queue_mdn(struct queue *q, const char *token, const char *disposition,
    const char *inbox, const char *inbound, int *already);

/* ---- revising and cancelling (queue_revise.c) -------------------------- */

/*
 * A new revision of alert (subject NULL: the current one's), accepted at
 * now by actor: deliveries already reached get it at once on the channels
 * of the step that reached them; the others when their step comes.  A
 * recipient who had already confirmed gets the new text as an "update"
 * notice (asking for nothing) on each channel and address that reached
 * it; other final deliveries are left alone.  *revision gets its number,
 * *rearmed the deliveries sent again now.  QUEUE_NOTFOUND for an unknown
 * alert.
 */
int queue_alert_update(struct queue *q, const char *alert,
    const char *subject, const char *body, const char *actor, int64_t now,
    int *revision, int64_t *rearmed);
/* Cancel alert: every delivery not yet final becomes cancelled (pending
 * attempts stop; outcomes still in flight change nothing), and every
 * recipient already reached (sent, delivered or confirmed) gets a
 * cancellation notice on each channel and address that reached it
 * (queue_notices_due()).  *n gets how many deliveries were cancelled.
 * QUEUE_NOTFOUND for an unknown alert. */
int queue_alert_cancel(struct queue *q, const char *alert, const char *reason,
    const char *actor, int64_t now, int64_t *n);

/* ---- SMS parts and their status reports (queue_inbound.c) -------------- */

/* Part seq/total of attempt went out on device with message reference mr. */
int queue_sms_part_add(struct queue *q, int64_t attempt, const char *device,
    const char *number, int seq, int total, int mr, int64_t now);
/*
 * A status report from device for reference mr (to number): record TP-ST
 * st on the part it names - the newest sent with that reference in the
 * last 7 days - and tell which: *attempt, *seq, *total, and *delivered,
 * the parts of that attempt now reported delivered (TP-ST < 0x20).
 * QUEUE_NOTFOUND if no part matches.
 */
int queue_sms_report(struct queue *q, const char *device, int mr,
    const char *number, int st, int64_t now, int64_t *attempt, int *seq,
    int *total, int *delivered);

/* ---- channel health (queue_work.c) ------------------------------------- */

struct queue_health {
	char	name[64];
	int	up;
	int64_t	since;		/* when it last changed up/down */
	int64_t	last_ok;	/* 0: never */
	int64_t	last_error_at;	/* 0: never */
	char	last_error[256];
};
/* Record a channel's session outcome: ok (up) or an error (down). */
int queue_health_report(struct queue *q, const char *channel, int ok,
    const char *error, int64_t now);
/* Every channel's health, by name; borrowed for the call. */
int queue_health_each(struct queue *q,
    int (*cb)(const struct queue_health *h, void *arg), void *arg);

#endif /* DENGON_QUEUE_H */
