/*
 * match.h - what an inbound message proves (private to relay/).
 *
 * The inbox reader hands every message it reads to match_inbound(), which
 * decides what it is - a reply carrying a confirmation code or answering
 * one of our messages, a delivery report, a read receipt, or nothing - and
 * records that in the queue, once (the inbound record is written in the
 * same transaction as what the message proved).
 *
 * Rules:
 *  M1. A reply confirms the delivery whose code it carries (Subject first,
 *      then the text), or else the delivery whose Message-ID its
 *      In-Reply-To/References name.  From another address than the
 *      recipient's it is accepted and marked as such.
 *  M2. A message marked Auto-Submitted (other than "no") confirms nothing:
 *      vacation replies quote our Subject, code included.
 *  M3. A code that matches no delivery confirms nothing; a code written as
 *      XXXX-XXXX that matches nothing is recorded as a wrong code, and a
 *      sender with MATCH_MAX_BAD wrong codes in the last hour is ignored
 *      (throttled, logged) for the rest of that hour.
 *  M4. A DSN names its attempt by Original-Envelope-Id: "delivered" moves
 *      the delivery to delivered, "failed" makes the attempt a permfail.
 *  M5. An MDN is evidence on the delivery its Original-Message-ID names;
 *      it confirms only under a policy with confirm = read.
 */
#ifndef DENGON_MATCH_H
#define DENGON_MATCH_H

#include "channels/channel.h"
#include "conf/conf.h"
#include "queue/queue.h"

#define MATCH_MAX_CODES	16	/* candidate codes looked at per message */
#define MATCH_MAX_BAD	10	/* wrong codes per sender per hour (M3) */

/* Candidate codes in text (normalised, deduplicated, in order): runs of
 * 8 code characters, optionally split 4+4 by a hyphen or a space, full-width
 * forms folded, bounded by non-alphanumerics.  *formatted[i] = 1 when the
 * candidate was written with its hyphen.  Returns the count (<= max). */
int match_codes(const char *text, char (*out)[CODE_LEN + 1], int *formatted,
    int max);

/* The token of the first of our Message-IDs ("<TOKEN.rR.nN@RELAY>", with
 * RELAY = relay_name) in a header value holding one or more ids: 0 with
 * token filled (33 bytes), or -1. */
int match_token(const char *ids, const char *relay_name, char token[33]);

/*
 * Process one inbound message of inbox: record what it proves.  plan/arg
 * plan a delivery whose attempt a DSN failed (sched_outcome).  Returns 1
 * when it is committed (or was already: the reader may move it away),
 * 0 on a runtime failure of the queue (leave it: it is read again later).
 * desc receives one line for the log.
 */
int match_inbound(struct queue *q, const struct conf *c, const char *inbox,
    const struct inbox_msg *m, queue_plan_fn plan, void *arg, char *desc,
    size_t desclen);

/*
 * Process one inbound SMS (reassembled) read from a modem of inbox
 * ("sms:DEVICE"): from is the sender in E.164, key identifies the message
 * (it is processed once), raw is kept as evidence.  M1 (a code in the
 * text confirms; from another number it is accepted and marked) and M3
 * (wrong codes, throttled per number) apply.  Returns as match_inbound().
 */
int match_sms(struct queue *q, const struct conf *c, const char *inbox,
    const char *from, const char *text, const char *key, const char *raw,
    char *desc, size_t desclen);

#endif /* DENGON_MATCH_H */
