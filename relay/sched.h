/*
 * sched.h - the scheduler's decisions (private to relay/).
 *
 * Pure functions: given the configuration, a delivery's work record and
 * the time, decide what to do.  They never touch the queue or the
 * network, so every rule below is unit-tested on its own (test_sched.c).
 *
 * Rules (CONTRACT.md [policy]; DESIGN.md Escalation):
 *  S1. A delivery is worked through its policy's steps; round r starts at
 *      created + r * repeat, and step s of a round at its start + delay(s),
 *      whatever the step before is still retrying or waiting for (what is
 *      left of it is tried again in the next round).
 *  S2. In a step, every channel the recipient has an address for (and
 *      that is configured with a driver, and has not failed for good) is
 *      sent once per round; the step is complete when each of them is ok
 *      or failed for good.
 *  S3. A tempfail retries the step's remaining channels after a backoff of
 *      retry_min * 2^(tries-1), at most retry_max.
 *  S4. A permfail, or a step with no channel that can reach the
 *      recipient (an address, not failed for good), moves on to the next
 *      step at once; when no step has such a channel left and nothing was
 *      ever accepted, the delivery has failed.  A channel that is down
 *      (no driver, not configured) is no failure of the recipient's: the
 *      step waits for it with the backoff of S3.
 *  S5. A complete step waits for the next step's time, else for the next
 *      round (repeat) while a confirmation is still needed, else for
 *      expiry.
 *  S6. Nothing is scheduled after expires: at expires the delivery expires.
 */
#ifndef DENGON_SCHED_H
#define DENGON_SCHED_H

#include "conf/conf.h"
#include "queue/queue.h"

#define SCHED_MAX_SENDS	8	/* channels in one step */

/* One channel to send a delivery on now. */
struct sched_send {
	const struct conf_channel	*channel;	/* borrowed from conf */
	const char			*address;	/* borrowed from work */
};

enum sched_verdict {
	SCHED_SEND,	/* send on out[0..n) in round plan->round */
	SCHED_PLAN	/* no sending now: apply plan */
};

/* Is a channel usable at all (configured with a driver)?  Supplied by the
 * caller so that tests can choose. */
typedef int (*sched_usable_fn)(const struct conf_channel *ch);

/*
 * Decide for a due delivery.  SCHED_SEND: out[0..*n) to send now, and
 * plan->round/step are the round and step they belong to.  SCHED_PLAN:
 * plan holds the new state and schedule (with its event reason in why).
 */
enum sched_verdict sched_due(const struct conf *c, sched_usable_fn usable,
    const struct queue_work *w, int64_t now, struct sched_send *out,
    int *n, struct queue_plan *plan, char *why, size_t whylen);

/* Plan a delivery after the outcome o of one of its attempts (w is the
 * record with o already counted). */
void sched_outcome(const struct conf *c, sched_usable_fn usable,
    const struct queue_work *w, const struct queue_outcome *o, int64_t now,
    struct queue_plan *plan, char *why, size_t whylen);

/* The backoff before retry number tries (1..), in ms. */
int64_t sched_backoff(const struct conf *c, int tries);

/* The stable Message-ID of a delivery's message for (revision, round):
 * "<TOKEN.rREV.nROUND@RELAYNAME>". */
void sched_message_id(const struct conf *c, const char *token, int revision,
    int round, char *out, size_t outlen);

/* The address a delivery has for a channel, or NULL. */
const char *sched_address(const struct queue_work *w,
    const struct conf_channel *ch);

#endif /* DENGON_SCHED_H */
