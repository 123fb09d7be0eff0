/* informer.h — a thread-safe cache of one kind of Kubernetes object, kept
 * current by a reflector (list-then-watch), with change handlers, a resync
 * period and indexes.
 *
 * One idea: the cache holds each object as its compact JSON text plus the
 * few fields that lookups need (key, resourceVersion, index values),
 * and parses on read. A parsed cJSON tree costs several times its text;
 * an operator reads a handful of objects per reconcile but caches them all.
 * The text itself is kept as a delta against another object of the same
 * informer (objects of one kind are alike), about a tenth of its size.
 *
 * Two threads per informer: the reflector's, which talks to the API server
 * and queues what it learns, and the informer's own, which applies each
 * change to the cache and then calls the handlers, one change at a time, in
 * order. So the cache a handler reads already holds the change it is told
 * about, and a slow handler delays handlers, never the watch.
 *
 * Keys are "namespace/name" ("name" for cluster-scoped objects). */
#ifndef CSL_INFORMER_H
#define CSL_INFORMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "csl/kube.h"
#include "csl/watch.h"

typedef struct csl_informer csl_informer;

/* Handlers run on the informer's thread, one change at a time, in order,
 * without any informer lock held (they may call csl_informer_get and the
 * like). They must not block long: every change behind them waits. The
 * operator's handlers only compute a key and add it to a workqueue. Objects
 * are borrowed for the call. Any of the three may be NULL. */
typedef struct csl_informer_handler {
    void (*on_add)(const cJSON *obj, void *ctx);
    /* Also called with old_obj == new_obj content for each cached object
     * every resync period. */
    void (*on_update)(const cJSON *old_obj, const cJSON *new_obj, void *ctx);
    /* final_state_unknown: the object vanished while the watch was broken
     * (found missing by a relist); obj is the last state the cache had. */
    void (*on_delete)(const cJSON *obj, bool final_state_unknown, void *ctx);
    void *ctx;
} csl_informer_handler;

/* A custom index: calls emit(sink, value) for each value obj is indexed
 * under (none, one or several; duplicates are ignored). Called on the
 * informer's thread when an object enters or changes in the cache. */
typedef void (*csl_index_emit)(void *sink, const char *value);
typedef void (*csl_index_fn)(const cJSON *obj, csl_index_emit emit, void *sink, void *ctx);

typedef struct csl_informer_options {
    /* What to list and watch, and how (see csl_reflector_options). */
    csl_reflector_options reflector;
    /* Every this many ms, on_update(obj, obj) for every cached object, so
     * level-triggered consumers recheck everything. 0: never. */
    long resync_period_ms;
    /* Drop metadata.managedFields from every object before it is cached or
     * handed to a handler (controller-runtime's TransformStripManagedFields):
     * the server-side-apply bookkeeping is often as large as the rest of the
     * object, and a controller that does not apply server-side never reads
     * it. Reads of the cache, and handlers, then never see the field. */
    bool strip_managed_fields;
} csl_informer_options;

typedef struct csl_informer_stats {
    size_t objects;    /* in the cache now */
    size_t json_bytes; /* sum of their compact JSON text lengths */
    /* What holding that text costs: each entry's delta plus the reference
     * objects the deltas are against (the entries' other fields not
     * counted). */
    size_t stored_bytes;
    size_t queued; /* changes waiting for the informer's thread */
    uint64_t adds, updates, deletes, resyncs, replaces;
} csl_informer_stats;

/* API: life */

/* Creates an informer (not running). k may be NULL for an informer fed
 * only through csl_informer_feed_* (tests, benchmarks); otherwise it must
 * outlive the informer. Copies opt. NULL with err on bad options. */
csl_informer *csl_informer_new(csl_kube *k, const csl_informer_options *opt, char *err,
                               size_t errsz);
/* Before start: adds a set of handlers (called in the order added).
 * Returns 0, or -1 once started or on allocation failure. */
int csl_informer_add_handler(csl_informer *inf, const csl_informer_handler *h);
/* Before start: indexes. "by label": objects indexed under the value of
 * their label label_key (none when absent). "by owner": under each
 * metadata.ownerReferences[].uid. Or any function. Index names are unique.
 * Returns 0, or -1 (name taken, started, no memory). */
int csl_informer_index_label(csl_informer *inf, const char *index, const char *label_key);
int csl_informer_index_owner(csl_informer *inf, const char *index);
int csl_informer_index_add(csl_informer *inf, const char *index, csl_index_fn fn, void *ctx);
/* Starts the informer's thread, and the reflector when there is a client.
 * Returns 0, or -1 with err. */
int csl_informer_start(csl_informer *inf, char *err, size_t errsz);
/* Stops the reflector, then the informer's thread (changes still queued
 * are dropped); no handler runs after it returns. The cache stays
 * readable; starting again lists again. Idempotent. Never from a handler
 * (it waits for the informer's thread). */
void csl_informer_stop(csl_informer *inf);
/* Stops if needed and frees everything. */
void csl_informer_free(csl_informer *inf);

/* API: sync */

/* True once the first full list is in the cache and its on_add handlers
 * have returned. */
bool csl_informer_has_synced(csl_informer *inf);
/* Waits up to timeout_ms (< 0: for ever) for has_synced. False on timeout
 * or when the informer is stopped meanwhile. */
bool csl_informer_wait_synced(csl_informer *inf, long timeout_ms);

/* API: reads (any thread) */

/* A parsed copy of the cached object, which the caller owns (cJSON_Delete);
 * NULL when absent (or on allocation failure). */
cJSON *csl_informer_get(csl_informer *inf, const char *key);
/* The cached resourceVersion of key, copied into out; false when absent. */
bool csl_informer_get_rv(csl_informer *inf, const char *key, char *out, size_t outsz);
size_t csl_informer_len(csl_informer *inf);
/* Every key, sorted; *n gets the count. The array and its strings are the
 * caller's: free with csl_informer_keys_free. NULL only on allocation
 * failure (an empty cache gives a non-NULL array with *n == 0). */
char **csl_informer_keys(csl_informer *inf, size_t *n);
/* The keys indexed under value in index, sorted; as csl_informer_keys.
 * NULL with *n == 0 when there is no such index. */
char **csl_informer_by_index(csl_informer *inf, const char *index, const char *value, size_t *n);
void csl_informer_keys_free(char **keys, size_t n);
void csl_informer_stats_get(csl_informer *inf, csl_informer_stats *out);
/* The reflector (NULL without a client): for its stats, last
 * resourceVersion, and csl_reflector_pause. */
csl_reflector *csl_informer_reflector(csl_informer *inf);

/* API: feeding (tests, benchmarks, and sources other than a reflector) */

/* What a reflector delivers, from elsewhere: a whole collection (items, a
 * cJSON array the informer takes) or one event (obj taken; type ADDED,
 * MODIFIED or DELETED). When the informer's thread runs, the change is
 * queued for it, behind the reflector's; before start (or after stop), it is
 * applied and its handlers run on the calling thread before the call
 * returns. Returns 0, or -1 on a NULL/invalid argument (then freed). */
int csl_informer_feed_replace(csl_informer *inf, cJSON *items);
int csl_informer_feed_event(csl_informer *inf, csl_watch_type type, cJSON *obj);
/* Delivers a resync now (on the informer's thread when running, else on
 * the caller's), as the resync period does. */
void csl_informer_resync(csl_informer *inf);
/* Waits until the informer's thread has applied everything queued before
 * the call (and run its handlers). Returns at once when not running. */
void csl_informer_flush(csl_informer *inf);

#endif
