/* events.h — Kubernetes Events (events.k8s.io/v1) recorded without ever
 * blocking the caller, aggregated into series and spam-limited per object,
 * as client-go's events package does.
 *
 * One idea: the caller only appends a record to a bounded queue; the
 * recorder's own thread decides and writes. Its decisions come from a pure
 * aggregation cache (csl_event_agg, below: no I/O, no clock reads), so they
 * are unit-tested by feeding it occurrences with times. A repeat of the same
 * event (same object uid, type, reason, action and note) within 6 minutes of
 * the previous one does not make a new Event object: it raises the existing
 * Event's series.count and series.lastObservedTime (a JSON merge patch).
 * Writes are limited per object by a token bucket (burst 25, then one each 5
 * minutes, as client-go's spam filter); occurrences held back by it are still
 * counted, and the next write of that series carries the true count.
 *
 * Series counting follows client-go after kubernetes#112334: the first
 * occurrence is an Event without series; the second makes series.count 2;
 * count is the number of occurrences, so 5 identical records end as one
 * Event with series.count 5. Unlike client-go, which writes only the second
 * occurrence at once and the rest at a 30-minute heartbeat or when the series
 * ends, we write each repeat as it comes (coalescing repeats that are queued
 * together, and subject to the bucket), so the count people see is current.
 *
 * Events are best effort: transient errors are retried a few times, then the
 * write is given up with a debug log (the series stays pending and is tried
 * again later while its bucket allows); a refusal (other 4xx) drops the
 * series, logged at warn the first time. */
#ifndef CSL_EVENTS_H
#define CSL_EVENTS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "csl/kube.h"

/* ---------------------------------------------------------------- times */

/* metav1.MicroTime: RFC 3339 UTC with six fraction digits,
 * "2026-11-26T14:21:26.123456Z". out holds CSL_MICROTIME_LEN bytes. Times
 * before 1970 work. (Used by the leader election's Lease times too.) */
#define CSL_MICROTIME_LEN 32
void csl_microtime_format(int64_t epoch_us, char out[CSL_MICROTIME_LEN]);
/* Wall-clock microseconds since the Unix epoch (clock_gettime, so
 * libfaketime applies). */
int64_t csl_microtime_now(void);

/* ---------------------------------------------------------------- recorder */

typedef struct csl_event_recorder csl_event_recorder;

typedef struct csl_event_options {
    /* Required: who reports, a qualified name such as
     * "cloudserver.dev/operator" (reportingController). */
    const char *reporting_controller;
    /* reportingInstance; default "<controller>-<hostname>", cut to 128. */
    const char *reporting_instance;
    size_t queue_len;      /* records waiting for the thread; default 1000 */
    int spam_burst;        /* per object; default 25 */
    double spam_qps;       /* per object refill; default 1/300 (one per 5 min) */
    size_t max_series;     /* aggregates remembered (LRU); default 4096 */
    int max_tries;         /* per write, transient errors; default 3 */
    long retry_delay_ms;   /* before the first retry, doubled after; default 500 */
    long flush_timeout_ms; /* how long csl_event_recorder_free flushes; default 5000 */
} csl_event_options;

typedef struct csl_event_stats {
    uint64_t recorded;     /* accepted by csl_event_record */
    uint64_t dropped_full; /* oldest records dropped because the queue was full */
    uint64_t created;      /* Events created */
    uint64_t patched;      /* series patches written */
    uint64_t spam_held;    /* writes held back by an object's empty bucket */
    uint64_t spam_dropped; /* aggregates forgotten before their first write */
    uint64_t failed;       /* writes given up (errors, or the flush deadline) */
} csl_event_stats;

/* API: recorder */

/* Creates a recorder writing through k (borrowed: it must outlive the
 * recorder) and starts its thread. NULL with err on a missing or malformed
 * reporting_controller, a reporting_instance longer than 128 bytes, or when
 * the thread cannot start. */
csl_event_recorder *csl_event_recorder_new(csl_kube *k, const csl_event_options *opt, char *err,
                                           size_t errsz);
/* Writes what is queued and the counts not yet written, waiting at most
 * flush_timeout_ms for them (a request already on the wire may take up to
 * the client's timeout_ms more), then stops the thread and frees. NULL is a
 * no-op. */
void csl_event_recorder_free(csl_event_recorder *r);

/* Records an event about obj, the involved object: a Kubernetes object with
 * apiVersion, kind and metadata.name (metadata.namespace, uid and
 * resourceVersion are used when present; list items may lack apiVersion and
 * kind, so set them). type is "Normal" or "Warning"; reason is CamelCase
 * ("FailedOver", at most 128 bytes); the note is formatted printf-style and
 * cut to 1024 bytes (the API server's limit) at a UTF-8 boundary. action is
 * the reason; csl_event_record_action names it. The Event goes to the
 * object's namespace ("default" for cluster objects) as
 * "<object name>.<hex unique>".
 *
 * Never blocks: copies what it needs into the queue, dropping the oldest
 * record (counted in dropped_full) when full. Returns 0 when queued, -1 on
 * bad input (logged at warn with what is wrong; nothing queued). Any thread.
 */
int csl_event_record(csl_event_recorder *r, const cJSON *obj, const char *type, const char *reason,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int csl_event_record_action(csl_event_recorder *r, const cJSON *obj, const char *type,
                            const char *reason, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
int csl_event_vrecord(csl_event_recorder *r, const cJSON *obj, const char *type, const char *reason,
                      const char *action, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/* A snapshot of the counters. Any thread. */
void csl_event_recorder_stats(csl_event_recorder *r, csl_event_stats *out);
/* Waits until every record queued before the call has been processed
 * (written, held back or given up), at most timeout_ms. True when done. */
bool csl_event_recorder_sync(csl_event_recorder *r, long timeout_ms);

/* ------------------------------------------------ the aggregation cache */

/* One occurrence of an event, as the cache sees it. Strings are borrowed
 * for the call. object_key identifies the involved object for aggregation
 * and spam limiting (its uid; else "apiVersion/kind/namespace/name"). */
typedef struct csl_event_occurrence {
    const char *object_key;
    const char *api_version, *kind, *namespace, *name, *uid, *resource_version;
    const char *type, *reason, *action, *note;
    int64_t mono_ns; /* when, monotonic: the 6-minute window, token buckets */
    int64_t wall_us; /* when, wall clock: eventTime, series.lastObservedTime */
} csl_event_occurrence;

/* An aggregate: the Event that a run of identical occurrences makes. Owned
 * by the cache; read-only outside it; valid until the next
 * csl_event_agg_observe or csl_event_agg_expire. */
typedef struct csl_event_series {
    char *event_name;      /* "<object name>.<hex>", fixed at the first occurrence */
    char *event_namespace; /* the object's namespace, or "default" */
    long count;            /* occurrences so far (1 = no series) */
    long written;          /* count the API server has; 0 = not created */
    int64_t first_wall_us; /* eventTime */
    int64_t last_wall_us;  /* series.lastObservedTime */
    int64_t last_mono_ns;
    /* the first occurrence's fields, for the Event body */
    char *api_version, *kind, *namespace, *name, *uid, *resource_version;
    char *type, *reason, *action, *note;
} csl_event_series;

typedef enum {
    CSL_EVENT_NONE = 0, /* nothing to write: the server is up to date */
    CSL_EVENT_CREATE,   /* POST the Event (with a series when count >= 2) */
    CSL_EVENT_PATCH,    /* merge-patch series {count, lastObservedTime} */
    CSL_EVENT_SPAM,     /* the object's bucket is empty: hold the write */
} csl_event_decision;

typedef struct csl_event_agg csl_event_agg;

/* API: aggregation cache (single-threaded; the recorder's thread owns one) */

/* burst >= 1 and qps > 0 (else the defaults 25 and 1/300); max_series 0 →
 * 4096. NULL on allocation failure. */
csl_event_agg *csl_event_agg_new(int spam_burst, double spam_qps, size_t max_series);
void csl_event_agg_free(csl_event_agg *a);
/* Counts one occurrence: into the series with the same (object_key, type,
 * reason, action, note) whose last occurrence is less than 6 minutes old
 * (count + 1, last times updated), else into a new series (count 1, a new
 * event name). When the cache is full the least recently observed series is
 * forgotten. NULL only on allocation failure. */
csl_event_series *csl_event_agg_observe(csl_event_agg *a, const csl_event_occurrence *o);
/* What to write for s at now_mono_ns: NONE when s->written == s->count;
 * else CREATE (s->written == 0) or PATCH, if the object's token bucket gives
 * a token (taken), otherwise SPAM (and the write is left pending). */
csl_event_decision csl_event_agg_decide(csl_event_agg *a, csl_event_series *s, int64_t now_mono_ns);
/* The write of count sent occurrences succeeded: s->written = sent. After a
 * failed write call nothing: the next decision tries again. */
void csl_event_agg_written(csl_event_agg *a, csl_event_series *s, long sent);
/* The API server refused s for good (not a transient error): it is never
 * written again; its repeats are still counted until it expires. */
void csl_event_agg_reject(csl_event_agg *a, csl_event_series *s);
/* Visits the series with something to write (written < count), least
 * recently observed first. fn may call csl_event_agg_decide and
 * csl_event_agg_written, not observe or expire. */
void csl_event_agg_each_pending(csl_event_agg *a, void (*fn)(csl_event_series *s, void *ctx),
                                void *ctx);
/* Forgets series whose last occurrence is 6 minutes or more before
 * now_mono_ns, and token buckets that are full again. Before forgetting a
 * series that was created but whose latest count is not written, calls
 * final(s, ctx) (may be NULL) for one last write that ignores the bucket,
 * as client-go's finishSeries does; a series never created is dropped
 * (counted in spam_dropped). Returns the number forgotten. */
size_t csl_event_agg_expire(csl_event_agg *a, int64_t now_mono_ns,
                            void (*final)(csl_event_series *s, void *ctx), void *ctx);
/* Series that went from writable to held by their object's empty bucket
 * (counted once per hold). */
uint64_t csl_event_agg_spam_held(const csl_event_agg *a);
/* Series forgotten (expiry or LRU eviction) before any write. */
uint64_t csl_event_agg_spam_dropped(const csl_event_agg *a);
size_t csl_event_agg_len(const csl_event_agg *a);

/* The 6-minute series window, in nanoseconds. */
#define CSL_EVENT_SERIES_WINDOW_NS (360LL * 1000000000LL)

#endif
