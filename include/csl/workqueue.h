/* workqueue.h — the work queue of a controller: string keys ("ns/name"),
 * deduplicated, never handed to two workers at once, re-queued with
 * per-key exponential back-off under an overall token bucket, and delayed
 * adds. It behaves as client-go's rate-limited work queue, with its metrics.
 *
 * One idea: a key has one record holding all of its state (queued, being
 * processed, waiting on a deadline), so "a key is in the queue once" and "a
 * key is processed by one worker at a time" are properties of that record,
 * not of separate sets kept in step. Delayed keys wait in a min-heap watched
 * by one timer thread per queue.
 *
 * Life of a queue:
 *     csl_workqueue_new
 *     → from any thread: add / add_after / add_rate_limited
 *       in each worker:  get → (work) → forget or add_rate_limited → done
 *     → csl_workqueue_shutdown_drain → join the workers → csl_workqueue_free
 *
 * Durations are int64 nanoseconds of CLOCK_MONOTONIC time (csl_mono_ns), so
 * libfaketime's speed factor applies to every wait. */
#ifndef CSL_WORKQUEUE_H
#define CSL_WORKQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "csl/metrics.h"

/* ------------------------------------------------------------ rate limits */

/* How re-queues are spaced: the larger of a per-key exponential back-off
 * (base × 2^failures, at most max) and an overall token bucket (qps, burst)
 * shared by every key, as client-go's DefaultControllerRateLimiter. */
typedef struct csl_ratelimit {
    int64_t base_ns; /* first per-key delay; >= 0 */
    int64_t max_ns;  /* per-key cap; >= base_ns */
    double qps;      /* bucket refill per second; 0 = no bucket */
    int burst;       /* bucket size; >= 1 when qps > 0 */
} csl_ratelimit;

/* client-go's defaults: 5 ms doubling to 1000 s; 10 qps with a burst of 100. */
#define CSL_RATELIMIT_DEFAULT ((csl_ratelimit){5000000, 1000000000000, 10.0, 100})

/* A token bucket as golang.org/x/time/rate's Reserve: it starts full, refills
 * at qps, and a reservation never fails: it takes a token (going into debt
 * when none is left) and says how long to wait for it. Not locked: the
 * owner serialises calls. */
typedef struct csl_token_bucket {
    double qps;
    int burst;
    double tokens; /* negative while reservations wait */
    int64_t last_ns;
} csl_token_bucket;

/* API: rate-limit maths (pure; no clock read, no lock) */

/* Refuses what cannot work: a negative base, a cap below the base, a
 * negative, NaN or infinite qps, a burst below 1 with a bucket. Returns 0,
 * or -1 with err saying which value and what to use instead. */
int csl_ratelimit_check(const csl_ratelimit *rl, char *err, size_t errsz);
/* base_ns × 2^failures, or max_ns when that is larger or overflows. */
int64_t csl_ratelimit_backoff_ns(int64_t base_ns, int64_t max_ns, unsigned failures);
/* A full bucket at now_ns. */
void csl_token_bucket_init(csl_token_bucket *b, double qps, int burst, int64_t now_ns);
/* Takes one token at now_ns and returns the wait before it may be used
 * (0 when one was there), rounded up to the nanosecond. A now_ns earlier than
 * the last call counts as no time passing. */
int64_t csl_token_bucket_reserve(csl_token_bucket *b, int64_t now_ns);

/* ------------------------------------------------------------ rate limiter */

/* Per-key failure counts plus the bucket, behind a lock: the "when" of a
 * rate-limited add. A workqueue owns one; it is public so the back-off can
 * be computed (and tested) without a queue. */
typedef struct csl_ratelimiter csl_ratelimiter;

/* API: rate limiter (thread-safe; a NULL key counts as "") */

/* NULL rl means CSL_RATELIMIT_DEFAULT. NULL with err when rl fails
 * csl_ratelimit_check or memory runs out. */
csl_ratelimiter *csl_ratelimiter_new(const csl_ratelimit *rl, char *err, size_t errsz);
void csl_ratelimiter_free(csl_ratelimiter *l);
/* Records one more failure of key and returns the delay before its retry:
 * max(csl_ratelimit_backoff_ns(base, max, failures before this one),
 *     csl_token_bucket_reserve(bucket, now_ns)).
 * So a key's delays run base, 2·base, 4·base… up to max, while the bucket
 * spaces retries of all keys together once its burst is spent. Out of
 * memory: max_ns (logged). */
int64_t csl_ratelimiter_when(csl_ratelimiter *l, const char *key, int64_t now_ns);
/* Clears key's failures (after it succeeded). The bucket is not refunded. */
void csl_ratelimiter_forget(csl_ratelimiter *l, const char *key);
/* key's failures since it was last forgotten. */
unsigned csl_ratelimiter_requeues(csl_ratelimiter *l, const char *key);

/* ---------------------------------------------------------------- queue */

typedef struct csl_workqueue csl_workqueue;

typedef struct csl_workqueue_options {
    const char *name;           /* required: the metrics' name label, and log messages */
    csl_metrics *metrics;       /* NULL: no metrics */
    const csl_ratelimit *limit; /* NULL: CSL_RATELIMIT_DEFAULT */
} csl_workqueue_options;

/* API: queue. Every function may be called from any thread, except free. */

/* Creates a queue and its timer thread. With metrics, registers (or shares,
 * when another queue registered them) the families
 *   workqueue_depth, workqueue_adds_total, workqueue_queue_duration_seconds,
 *   workqueue_work_duration_seconds, workqueue_retries_total,
 *   workqueue_unfinished_work_seconds, workqueue_longest_running_processor_seconds
 * labelled name="<opt->name>"; the registry must outlive the queue. NULL
 * with err on a missing name, a bad limit (see csl_ratelimit_check),
 * metric names the registry holds with another shape, or no memory or
 * thread. */
csl_workqueue *csl_workqueue_new(const csl_workqueue_options *opt, char *err, size_t errsz);

/* Queues key unless it is already waiting. A key being processed is marked
 * dirty instead, and queued again when its worker calls done. Ignored after
 * shutdown; a NULL or empty key is ignored and logged. */
void csl_workqueue_add(csl_workqueue *q, const char *key);
/* Adds key once delay_ns has passed (at once when delay_ns <= 0). A key
 * already waiting for a deadline keeps the earlier one. Counts a retry in
 * workqueue_retries_total, as client-go does for every delayed add. */
void csl_workqueue_add_after(csl_workqueue *q, const char *key, int64_t delay_ns);
/* add_after(key, csl_ratelimiter_when(limiter, key, now)): the re-queue of a
 * failed key. */
void csl_workqueue_add_rate_limited(csl_workqueue *q, const char *key);
/* Resets key's back-off (call it when the key's work succeeded). */
void csl_workqueue_forget(csl_workqueue *q, const char *key);
/* How many rate-limited re-queues key had since it was last forgotten. */
unsigned csl_workqueue_num_requeues(csl_workqueue *q, const char *key);

/* Blocks until a key can be handed out and returns it, marked as being
 * processed; the string belongs to the queue and stays valid until done is
 * called for it. Returns NULL once the queue is shutting down, even when
 * keys are still queued (they are dropped: a level-triggered controller
 * finds them again after its restart). */
const char *csl_workqueue_get(csl_workqueue *q);
/* Ends the processing of key (the pointer get returned, or an equal
 * string). When key was added meanwhile it is queued again. done for a key
 * that is not being processed is ignored and logged. */
void csl_workqueue_done(csl_workqueue *q, const char *key);

/* Keys waiting to be handed out (not those being processed or waiting for
 * a deadline). */
size_t csl_workqueue_len(csl_workqueue *q);
/* Keys handed out and not yet done. */
size_t csl_workqueue_in_flight(csl_workqueue *q);
/* Stops handing out keys and wakes every getter (they get NULL); later adds
 * are ignored; pending deadlines are dropped. Returns at once. Idempotent. */
void csl_workqueue_shutdown(csl_workqueue *q);
/* shutdown, then waits until every key handed out is done. Must not be
 * called by a worker holding a key (it would wait for itself). */
void csl_workqueue_shutdown_drain(csl_workqueue *q);
bool csl_workqueue_shutting_down(csl_workqueue *q);
/* Shuts down if needed, stops the timer thread, frees everything. Call it
 * last, once no other thread uses q (after shutdown_drain and joining the
 * workers). The metric series stay in the registry; the collect-time gauges
 * read 0 from then on. NULL is a no-op. */
void csl_workqueue_free(csl_workqueue *q);

#endif
