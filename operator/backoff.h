/* backoff.h — how long the operator waits before looking again: after a
 * cloud error (exponential back-off with jitter) and while a cloud
 * transition runs (polls that thin out as the wait grows).
 *
 * One idea: both are pure functions of counts and times; randomness comes
 * from a csl_rng the caller owns and seeds, so a test (or a replayed
 * scenario) gets the same delays every time. */
#ifndef OP_BACKOFF_H
#define OP_BACKOFF_H

#include <stdint.h>

#include "csl/rng.h"

typedef struct op_backoff {
    int64_t base_ms; /* the first delay; >= 1 */
    int64_t cap_ms;  /* no delay exceeds it; >= base_ms */
    double jitter;   /* 0..1: a delay d becomes a draw from [d·(1-jitter), d] */
} op_backoff;

/* The operator's defaults for cloud errors: 1 s doubling to 5 min, 20% jitter. */
#define OP_BACKOFF_DEFAULT ((op_backoff){1000, 300000, 0.2})

/* API */

/* The delay after `failures` consecutive failures (0 for the first):
 * min(cap, base·2^failures), then shortened by up to jitter of itself with
 * a draw from rng (NULL rng: no jitter). Out-of-range settings are clamped
 * (base below 1 → 1, cap below base → base, jitter into 0..1), so the result
 * is always in [1, max(base, cap)] and never overflows. */
int64_t op_backoff_delay_ms(const op_backoff *b, unsigned failures, csl_rng *rng);

/* The next poll of a transition that began elapsed_ms ago: half the elapsed
 * time, kept within [min_ms, max_ms] (min_ms below 1 counts as 1). A
 * negative elapsed (clock skew) counts as 0. */
int64_t op_poll_delay_ms(int64_t elapsed_ms, int64_t min_ms, int64_t max_ms);

#endif
