/* watch.h — Kubernetes watch: a parser for watch streams, the back-off
 * arithmetic of retries, and a reflector that keeps a consumer in step with
 * a collection by list-then-watch.
 *
 * One idea: the resourceVersion is the only state that matters. The
 * reflector remembers the last one it saw (from every event, bookmarks
 * included) and resumes the watch from it whatever ended the previous one
 * (a server timeout, a reset, a restarted API server, a stalled stream); it
 * lists again only when the server says that version is gone (410), and
 * then hands the consumer the whole collection to diff against what it had.
 *
 * The parser is pure (bytes in, events out) so every way a stream can be
 * split, joined or broken is unit-tested without a network. */
#ifndef CSL_WATCH_H
#define CSL_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "csl/kube.h"
#include "csl/rng.h"

/* ---------------------------------------------------------------- events */

typedef enum {
    CSL_WATCH_ADDED = 0,
    CSL_WATCH_MODIFIED,
    CSL_WATCH_DELETED,
    CSL_WATCH_BOOKMARK,
    CSL_WATCH_ERROR, /* object is a metav1.Status */
} csl_watch_type;

/* API: events */
/* "ADDED", "MODIFIED", …; "?" for a value outside the enum. */
const char *csl_watch_type_name(csl_watch_type t);

/* ---------------------------------------------------------------- parser */

/* Default cap on one event's JSON text. The API server refuses requests
 * over 3 MiB and etcd values over 1.5 MiB, so a larger event is broken. */
#define CSL_WATCH_MAX_EVENT_DEFAULT (8u * 1024 * 1024)

typedef struct csl_watch_parser csl_watch_parser;

/* Called for each complete event, in stream order. obj is the event's
 * "object", detached for the callee, who owns it (cJSON_Delete). Return
 * false to stop: the rest of the chunk is dropped. */
typedef bool (*csl_watch_event_fn)(csl_watch_type type, cJSON *obj, void *ctx);

/* API: parser */

/* A parser for a stream of watch events: JSON objects
 * {"type":…,"object":{…}}, one after another, with any whitespace between
 * them (the API server writes one per line; CRLF and blank lines are fine,
 * and so is no separator at all). max_event 0 → CSL_WATCH_MAX_EVENT_DEFAULT.
 * NULL on allocation failure. */
csl_watch_parser *csl_watch_parser_new(size_t max_event);
void csl_watch_parser_free(csl_watch_parser *p);
/* Forgets any partial event and a failure: ready for a new stream. */
void csl_watch_parser_reset(csl_watch_parser *p);

/* Feeds n bytes, split anywhere (inside a string, an escape, a number).
 * Calls fn for each event completed by them. Returns 0 when every byte was
 * consumed, 1 when fn asked to stop, and -1 with err when the stream is
 * broken: not JSON, an event that is not an object with a known "type" and
 * an object "object", or an event longer than max_event. err names the
 * event (1-based) and the stream byte offset. After -1 the parser stays
 * failed (every feed returns -1 with the same message) until reset: there
 * is no resynchronising inside a broken stream. */
int csl_watch_parser_feed(csl_watch_parser *p, const char *data, size_t n, csl_watch_event_fn fn,
                          void *ctx, char *err, size_t errsz);
/* The stream ended: returns 0 when no event is half-received, else -1 with
 * err ("stream ended inside event 3 after 120 bytes of it"); also -1 when
 * the parser had failed. */
int csl_watch_parser_finish(csl_watch_parser *p, char *err, size_t errsz);
/* Complete events parsed since new/reset. */
uint64_t csl_watch_parser_events(const csl_watch_parser *p);

/* ---------------------------------------------------------------- back-off */

/* Jittered exponential back-off, as a value. The un-jittered delay starts
 * at initial_s and is multiplied by factor after each use, up to max_s;
 * each delay handed out is that times a uniform factor in
 * [1 - jitter, 1 + jitter]. When more than reset_after_s passed between the
 * end of the last delay and the next failure (the retried work stayed
 * healthy that long), the sequence starts again from initial_s. */
typedef struct csl_backoff {
    double initial_s, max_s, factor, jitter, reset_after_s;
    double next_s;   /* the next un-jittered delay */
    int64_t last_ns; /* when the last delay ends (monotonic); 0: none yet */
} csl_backoff;

/* API: back-off */
/* The reflector's defaults (client-go's): 0.8 s, ×2, 30 s, ±25 %, 120 s. */
void csl_backoff_init(csl_backoff *b);
/* Starts the sequence again from initial_s. */
void csl_backoff_reset(csl_backoff *b);
/* The delay in seconds for a failure at now_ns (monotonic), drawing the
 * jitter from rng. Pure arithmetic: it sleeps nothing. */
double csl_backoff_next(csl_backoff *b, int64_t now_ns, csl_rng *rng);

/* ---------------------------------------------------------------- reflector */

typedef struct csl_reflector csl_reflector;

/* What the reflector delivers, from its own thread, in order. */
typedef struct csl_reflector_handler {
    /* After every list (the first, and each relist after a 410): the whole
     * collection. items is a cJSON array the callee owns; each item has
     * kind and apiVersion filled in from the List. rv is the List's
     * resourceVersion (borrowed for the call). */
    void (*on_replace)(cJSON *items, const char *rv, void *ctx);
    /* Each ADDED, MODIFIED or DELETED from the watch; the callee owns obj.
     * Bookmarks and errors are handled inside. */
    void (*on_event)(csl_watch_type type, cJSON *obj, void *ctx);
    void *ctx;
} csl_reflector_handler;

typedef struct csl_reflector_options {
    csl_kube_resource resource; /* strings are copied */
    const char *namespace;      /* NULL or "": all namespaces */
    const char *label_selector; /* optional */
    const char *field_selector; /* optional */
    long page_size;             /* list page size; 0 → 500 */
    uint64_t seed;              /* watch timeouts and jitter; 0 → from the clock */
    /* A watch carries timeoutSeconds drawn uniformly in [min, max]
     * (defaults 300, 600) so that many clients do not reconnect at once. */
    int watch_timeout_min_s, watch_timeout_max_s;
    /* No byte for this long ends the watch as stalled (then back-off and
     * re-watch from the last resourceVersion). kube-apiserver sends a
     * bookmark about once a minute to a watch that asked for them (gaps up
     * to ~2 min were seen), so a healthy idle stream is never quiet for
     * three intervals. 0 → 180000. */
    long stall_timeout_ms;
    csl_backoff backoff; /* all zero → csl_backoff_init's defaults */
    size_t max_event;    /* 0 → CSL_WATCH_MAX_EVENT_DEFAULT */
    const char *name;    /* for logs; default "<resource>" */
} csl_reflector_options;

typedef struct csl_reflector_stats {
    uint64_t lists;        /* successful lists (first one included) */
    uint64_t relists_gone; /* lists caused by a 410 */
    uint64_t watches;      /* watch requests started */
    uint64_t events;       /* ADDED/MODIFIED/DELETED delivered */
    uint64_t bookmarks;
    uint64_t errors; /* failures that led to a back-off */
    uint64_t stalls; /* watches ended by the stall timeout */
} csl_reflector_stats;

/* API: reflector */

/* Creates a reflector (not running) on client k, which must outlive it.
 * Copies opt. NULL with err on bad options (empty resource or version,
 * min > max timeouts, a missing on_replace or on_event). */
csl_reflector *csl_reflector_new(csl_kube *k, const csl_reflector_options *opt,
                                 const csl_reflector_handler *h, char *err, size_t errsz);
/* Starts its thread: list, then watch, for ever, until stop. Returns 0, or
 * -1 when the thread cannot be created or it already runs. */
int csl_reflector_start(csl_reflector *r);
/* Ends the thread and waits for it: the current request is abandoned (a
 * list in flight finishes first, within the client's timeout), no callback
 * runs after it returns. Idempotent. */
void csl_reflector_stop(csl_reflector *r);
/* Stops if needed and frees. */
void csl_reflector_free(csl_reflector *r);
/* Paused, the reflector ends its watch and waits (without forgetting its
 * resourceVersion); unpaused, it resumes the watch from there, and lists
 * again if the server has since forgotten that version. For tests and
 * maintenance. */
void csl_reflector_pause(csl_reflector *r, bool paused);
/* The last resourceVersion seen, copied into out ("" before the first
 * list). */
void csl_reflector_last_rv(csl_reflector *r, char *out, size_t outsz);
/* A copy of the counters. */
void csl_reflector_stats_get(csl_reflector *r, csl_reflector_stats *out);

#endif
