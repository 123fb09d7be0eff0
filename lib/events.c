/* events.c — an events.k8s.io/v1 Event recorder with client-go's series
 * aggregation and per-object spam limiting (see csl/events.h).
 *
 * The one idea: the caller's thread only copies a record into a bounded
 * queue; the recorder's thread owns everything else. It feeds each record to
 * the aggregation cache, which says what the API server should get (create,
 * patch of the series, or nothing yet because the object's token bucket is
 * empty), and then writes. The cache does no I/O and reads no clock, so its
 * decisions are tested without a server. */
#include "csl/events.h"

#include "csl/clock.h"
#include "csl/log.h"
#include "csl/rng.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOTE_MAX 1024    /* the API server's limit on note */
#define REASON_MAX 128   /* and on reason, action, reportingInstance */
#define NAME_MAX_LEN 253 /* a DNS subdomain: the Event's name */
#define TICK_NS 1000000000LL

/* ---------------------------------------------------------------- times */

void csl_microtime_format(int64_t epoch_us, char out[CSL_MICROTIME_LEN])
{
    int64_t us = epoch_us % 1000000;
    time_t secs = (time_t)(epoch_us / 1000000);
    if (us < 0) {
        us += 1000000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, CSL_MICROTIME_LEN, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, CSL_MICROTIME_LEN - n, ".%06dZ", (int)us);
}

int64_t csl_microtime_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------ the aggregation cache */

/* A series and its places in the hash chain and the LRU list (head = least
 * recently observed). The public part comes first so the two convert. One
 * allocation: the node, then every string of the series in strings[]; the
 * cache holds up to max_series of them, so they are kept small. */
typedef struct series_node {
    csl_event_series s;
    struct series_node *hnext, *prev, *next;
    uint64_t hash;    /* of object_key, type, reason, action, note */
    char *object_key; /* the token bucket's key */
    bool held;        /* the last decision was SPAM (counted once) */
    bool rejected;    /* the server refused it for good: never written again */
    char strings[];
} series_node;

/* A token bucket per involved object. */
typedef struct bucket {
    struct bucket *hnext, *prev, *next;
    uint64_t hash;
    double tokens;
    int64_t last_ns;
    char key[];
} bucket;

struct csl_event_agg {
    int burst;
    double qps;
    size_t max_series;
    series_node **stab;
    size_t stab_size; /* power of two */
    size_t nseries;
    series_node *shead, *stail;
    bucket **btab;
    size_t btab_size;
    size_t nbuckets;
    bucket *bhead, *btail;
    uint64_t spam_held, spam_dropped;
    uint64_t last_unique; /* the last hex suffix given to an event name */
};

static size_t pow2_at_least(size_t n)
{
    size_t p = 64;
    while (p < n) p <<= 1;
    return p;
}

csl_event_agg *csl_event_agg_new(int spam_burst, double spam_qps, size_t max_series)
{
    csl_event_agg *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->burst = spam_burst >= 1 ? spam_burst : 25;
    a->qps = spam_qps > 0 ? spam_qps : 1.0 / 300;
    a->max_series = max_series ? max_series : 4096;
    a->stab_size = pow2_at_least(a->max_series / 2);
    a->btab_size = a->stab_size;
    a->stab = calloc(a->stab_size, sizeof *a->stab);
    a->btab = calloc(a->btab_size, sizeof *a->btab);
    if (!a->stab || !a->btab) {
        csl_event_agg_free(a);
        return NULL;
    }
    return a;
}

static void series_free(series_node *n)
{
    free(n);
}

void csl_event_agg_free(csl_event_agg *a)
{
    if (!a) return;
    for (series_node *n = a->shead, *next; n; n = next) {
        next = n->next;
        series_free(n);
    }
    for (bucket *b = a->bhead, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(a->stab);
    free(a->btab);
    free(a);
}

/* Doubly-linked LRU lists, written once for both node types. */
#define LRU_UNLINK(head, tail, n)                                                                  \
    do {                                                                                           \
        if ((n)->prev)                                                                             \
            (n)->prev->next = (n)->next;                                                           \
        else                                                                                       \
            (head) = (n)->next;                                                                    \
        if ((n)->next)                                                                             \
            (n)->next->prev = (n)->prev;                                                           \
        else                                                                                       \
            (tail) = (n)->prev;                                                                    \
        (n)->prev = (n)->next = NULL;                                                              \
    } while (0)
#define LRU_APPEND(head, tail, n)                                                                  \
    do {                                                                                           \
        (n)->prev = (tail);                                                                        \
        (n)->next = NULL;                                                                          \
        if (tail)                                                                                  \
            (tail)->next = (n);                                                                    \
        else                                                                                       \
            (head) = (n);                                                                          \
        (tail) = (n);                                                                              \
    } while (0)

static void series_remove(csl_event_agg *a, series_node *n)
{
    series_node **pp = &a->stab[n->hash & (a->stab_size - 1)];
    while (*pp != n) pp = &(*pp)->hnext;
    *pp = n->hnext;
    LRU_UNLINK(a->shead, a->stail, n);
    a->nseries--;
    if (n->s.written == 0 && !n->rejected) a->spam_dropped++;
    series_free(n);
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* FNV-1a over the fields that make two occurrences one series. */
static uint64_t series_hash(const csl_event_occurrence *o)
{
    const char *parts[] = {o->object_key, o->type, o->reason, o->action, o->note};
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < 5; i++) {
        for (const unsigned char *p = (const unsigned char *)or_empty(parts[i]); *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0x1f) * 1099511628211ULL;
    }
    return h;
}

static bool series_matches(const series_node *n, uint64_t hash, const csl_event_occurrence *o)
{
    return n->hash == hash && strcmp(n->object_key, or_empty(o->object_key)) == 0 &&
           strcmp(n->s.type, or_empty(o->type)) == 0 &&
           strcmp(n->s.reason, or_empty(o->reason)) == 0 &&
           strcmp(n->s.action, or_empty(o->action)) == 0 &&
           strcmp(n->s.note, or_empty(o->note)) == 0;
}

/* "<object name>.<hex>" into out (NAME_MAX_LEN + 1 bytes), the name cut
 * so the whole stays a DNS subdomain (253 bytes, ending the cut part on a
 * letter or digit). The hex is the wall time in ns, made strictly
 * increasing within this cache. */
static void event_name(csl_event_agg *a, const char *obj_name, int64_t wall_us,
                       char out[NAME_MAX_LEN + 1])
{
    uint64_t unique = (uint64_t)wall_us * 1000;
    if (unique <= a->last_unique) unique = a->last_unique + 1;
    a->last_unique = unique;
    char hex[24];
    int hn = snprintf(hex, sizeof hex, "%" PRIx64, unique);
    size_t keep = strlen(obj_name);
    if (keep > NAME_MAX_LEN - 1 - (size_t)hn) keep = NAME_MAX_LEN - 1 - (size_t)hn;
    while (keep > 0 && !isalnum((unsigned char)obj_name[keep - 1])) keep--;
    memcpy(out, obj_name, keep);
    out[keep] = '.';
    memcpy(out + keep + 1, hex, (size_t)hn + 1);
}

static series_node *series_new(csl_event_agg *a, const csl_event_occurrence *o, uint64_t hash)
{
    char name[NAME_MAX_LEN + 1];
    event_name(a, or_empty(o->name), o->wall_us, name);
    const char *ns = o->namespace && *o->namespace ? o->namespace : "default";
    const char *src[] = {o->object_key, name,      ns,     o->api_version,      o->kind,
                         o->namespace,  o->name,   o->uid, o->resource_version, o->type,
                         o->reason,     o->action, o->note};
    /* The object key is the uid whenever the object has one: kept once. */
    bool key_is_uid = o->uid && *o->uid && strcmp(or_empty(o->object_key), o->uid) == 0;
    if (key_is_uid) src[0] = "";
    enum { NSTR = sizeof src / sizeof src[0] };
    size_t len[NSTR], total = 0;
    for (size_t i = 0; i < NSTR; i++) total += (len[i] = strlen(or_empty(src[i]))) + 1;
    series_node *n = calloc(1, sizeof *n + total);
    if (!n) return NULL;
    csl_event_series *s = &n->s;
    char **dst[NSTR] = {&n->object_key,  &s->event_name, &s->event_namespace,
                        &s->api_version, &s->kind,       &s->namespace,
                        &s->name,        &s->uid,        &s->resource_version,
                        &s->type,        &s->reason,     &s->action,
                        &s->note};
    char *p = n->strings;
    for (size_t i = 0; i < NSTR; i++) {
        *dst[i] = memcpy(p, or_empty(src[i]), len[i] + 1);
        p += len[i] + 1;
    }
    if (key_is_uid) n->object_key = s->uid;
    n->hash = hash;
    s->count = 0;
    s->first_wall_us = o->wall_us;
    return n;
}

csl_event_series *csl_event_agg_observe(csl_event_agg *a, const csl_event_occurrence *o)
{
    uint64_t hash = series_hash(o);
    series_node *n = a->stab[hash & (a->stab_size - 1)];
    while (n && !series_matches(n, hash, o)) n = n->hnext;
    if (n && o->mono_ns - n->s.last_mono_ns >= CSL_EVENT_SERIES_WINDOW_NS) {
        /* The old series ended; a repeat now starts a new Event. */
        series_remove(a, n);
        n = NULL;
    }
    if (n) {
        LRU_UNLINK(a->shead, a->stail, n);
    } else {
        n = series_new(a, o, hash);
        if (!n) return NULL;
        size_t slot = hash & (a->stab_size - 1);
        n->hnext = a->stab[slot];
        a->stab[slot] = n;
        a->nseries++;
    }
    LRU_APPEND(a->shead, a->stail, n);
    n->s.count++;
    n->s.last_wall_us = o->wall_us;
    n->s.last_mono_ns = o->mono_ns;
    while (a->nseries > a->max_series && a->shead != n) series_remove(a, a->shead);
    return &n->s;
}

static bucket *bucket_get(csl_event_agg *a, const char *key, int64_t now_ns)
{
    uint64_t hash = csl_hash64(key);
    size_t slot = hash & (a->btab_size - 1);
    bucket *b = a->btab[slot];
    while (b && (b->hash != hash || strcmp(b->key, key) != 0)) b = b->hnext;
    if (b) {
        LRU_UNLINK(a->bhead, a->btail, b);
        LRU_APPEND(a->bhead, a->btail, b);
        return b;
    }
    size_t klen = strlen(key);
    b = calloc(1, sizeof *b + klen + 1);
    if (!b) return NULL;
    memcpy(b->key, key, klen + 1);
    b->hash = hash;
    b->tokens = a->burst;
    b->last_ns = now_ns;
    b->hnext = a->btab[slot];
    a->btab[slot] = b;
    LRU_APPEND(a->bhead, a->btail, b);
    if (++a->nbuckets > a->max_series) {
        /* Forgetting a bucket forgives its object: the LRU one goes. */
        bucket *old = a->bhead;
        bucket **pp = &a->btab[old->hash & (a->btab_size - 1)];
        while (*pp != old) pp = &(*pp)->hnext;
        *pp = old->hnext;
        LRU_UNLINK(a->bhead, a->btail, old);
        free(old);
        a->nbuckets--;
    }
    return b;
}

static void bucket_refill(const csl_event_agg *a, bucket *b, int64_t now_ns)
{
    if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) / 1e9 * a->qps;
        if (b->tokens > a->burst) b->tokens = a->burst;
        b->last_ns = now_ns;
    }
}

csl_event_decision csl_event_agg_decide(csl_event_agg *a, csl_event_series *s, int64_t now_mono_ns)
{
    series_node *n = (series_node *)s;
    if (n->rejected || s->written >= s->count) return CSL_EVENT_NONE;
    bucket *b = bucket_get(a, n->object_key, now_mono_ns);
    if (!b) return CSL_EVENT_SPAM; /* out of memory: try again later */
    bucket_refill(a, b, now_mono_ns);
    if (b->tokens < 1) {
        if (!n->held) a->spam_held++;
        n->held = true;
        return CSL_EVENT_SPAM;
    }
    b->tokens -= 1;
    n->held = false;
    return s->written == 0 ? CSL_EVENT_CREATE : CSL_EVENT_PATCH;
}

void csl_event_agg_written(csl_event_agg *a, csl_event_series *s, long sent)
{
    (void)a;
    if (sent > s->written) s->written = sent;
}

void csl_event_agg_reject(csl_event_agg *a, csl_event_series *s)
{
    (void)a;
    ((series_node *)s)->rejected = true;
}

void csl_event_agg_each_pending(csl_event_agg *a, void (*fn)(csl_event_series *s, void *ctx),
                                void *ctx)
{
    for (series_node *n = a->shead; n; n = n->next)
        if (!n->rejected && n->s.written < n->s.count) fn(&n->s, ctx);
}

size_t csl_event_agg_expire(csl_event_agg *a, int64_t now_mono_ns,
                            void (*final)(csl_event_series *s, void *ctx), void *ctx)
{
    size_t forgotten = 0;
    while (a->shead && now_mono_ns - a->shead->s.last_mono_ns >= CSL_EVENT_SERIES_WINDOW_NS) {
        series_node *n = a->shead;
        if (final && !n->rejected && n->s.written > 0 && n->s.written < n->s.count)
            final(&n->s, ctx);
        series_remove(a, n);
        forgotten++;
    }
    while (a->bhead) {
        bucket *b = a->bhead;
        bucket_refill(a, b, now_mono_ns);
        if (b->tokens < a->burst) break;
        bucket **pp = &a->btab[b->hash & (a->btab_size - 1)];
        while (*pp != b) pp = &(*pp)->hnext;
        *pp = b->hnext;
        LRU_UNLINK(a->bhead, a->btail, b);
        free(b);
        a->nbuckets--;
    }
    return forgotten;
}

uint64_t csl_event_agg_spam_dropped(const csl_event_agg *a)
{
    return a->spam_dropped;
}

uint64_t csl_event_agg_spam_held(const csl_event_agg *a)
{
    return a->spam_held;
}

size_t csl_event_agg_len(const csl_event_agg *a)
{
    return a->nseries;
}

/* ---------------------------------------------------------------- recorder */

static const csl_kube_resource events_resource = {"events.k8s.io", "v1", "events", true};

/* A queued record: the occurrence and its strings in one allocation. */
typedef struct record {
    csl_event_occurrence o;
    char strings[];
} record;

struct csl_event_recorder {
    csl_kube *kube;
    char *controller;
    char *instance;
    int max_tries;
    long retry_delay_ms;
    long flush_timeout_ms;
    csl_event_agg *agg; /* the thread's alone */
    record **batch;     /* the thread's: records taken from the queue */
    pthread_t thread;

    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t wake; /* the thread: records, stop */
    pthread_cond_t done; /* csl_event_recorder_sync: progress */
    record **ring;
    size_t cap, head, len;
    uint64_t seq_in, seq_done; /* records queued, records processed */
    bool stopping;
    int64_t flush_deadline_ns;
    csl_event_stats stats;
    bool warned_rejection;
};

static void stat_add(csl_event_recorder *r, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&r->mu);
    *field += n;
    pthread_mutex_unlock(&r->mu);
}

static void abs_mono(struct timespec *ts, int64_t at_ns)
{
    ts->tv_sec = (time_t)(at_ns / 1000000000);
    ts->tv_nsec = (long)(at_ns % 1000000000);
}

/* Waits ns before a retry. False when the wait would pass the flush
 * deadline of a stopping recorder: give up instead. */
static bool backoff(csl_event_recorder *r, int64_t ns)
{
    int64_t end = csl_mono_ns() + ns;
    bool ok = true;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        if (r->stopping && end > r->flush_deadline_ns) {
            ok = false;
            break;
        }
        if (csl_mono_ns() >= end) break;
        struct timespec ts;
        abs_mono(&ts, end);
        pthread_cond_timedwait(&r->wake, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    return ok;
}

static bool past_deadline(csl_event_recorder *r)
{
    pthread_mutex_lock(&r->mu);
    bool past = r->stopping && csl_mono_ns() >= r->flush_deadline_ns;
    pthread_mutex_unlock(&r->mu);
    return past;
}

static cJSON *series_json(const csl_event_series *s)
{
    char t[CSL_MICROTIME_LEN];
    cJSON *series = cJSON_CreateObject();
    cJSON_AddNumberToObject(series, "count", (double)s->count);
    csl_microtime_format(s->last_wall_us, t);
    cJSON_AddStringToObject(series, "lastObservedTime", t);
    return series;
}

static cJSON *event_json(const csl_event_recorder *r, const csl_event_series *s)
{
    char t[CSL_MICROTIME_LEN];
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "apiVersion", "events.k8s.io/v1");
    cJSON_AddStringToObject(ev, "kind", "Event");
    cJSON *meta = cJSON_AddObjectToObject(ev, "metadata");
    cJSON_AddStringToObject(meta, "name", s->event_name);
    cJSON_AddStringToObject(meta, "namespace", s->event_namespace);
    csl_microtime_format(s->first_wall_us, t);
    cJSON_AddStringToObject(ev, "eventTime", t);
    if (s->count >= 2) cJSON_AddItemToObject(ev, "series", series_json(s));
    cJSON_AddStringToObject(ev, "reportingController", r->controller);
    cJSON_AddStringToObject(ev, "reportingInstance", r->instance);
    cJSON_AddStringToObject(ev, "action", s->action);
    cJSON_AddStringToObject(ev, "reason", s->reason);
    cJSON_AddStringToObject(ev, "note", s->note);
    cJSON_AddStringToObject(ev, "type", s->type);
    cJSON *reg = cJSON_AddObjectToObject(ev, "regarding");
    cJSON_AddStringToObject(reg, "apiVersion", s->api_version);
    cJSON_AddStringToObject(reg, "kind", s->kind);
    if (*s->namespace) cJSON_AddStringToObject(reg, "namespace", s->namespace);
    cJSON_AddStringToObject(reg, "name", s->name);
    if (*s->uid) cJSON_AddStringToObject(reg, "uid", s->uid);
    if (*s->resource_version) cJSON_AddStringToObject(reg, "resourceVersion", s->resource_version);
    return ev;
}

/* One API call. Returns true on success; else err is filled. */
static bool write_once(csl_event_recorder *r, const csl_event_series *s, csl_event_decision d,
                       csl_kube_error *err)
{
    cJSON *answer = NULL;
    if (d == CSL_EVENT_CREATE) {
        cJSON *ev = event_json(r, s);
        answer = csl_kube_create(r->kube, &events_resource, s->event_namespace, ev, err);
        cJSON_Delete(ev);
    } else {
        cJSON *patch = cJSON_CreateObject();
        cJSON_AddItemToObject(patch, "series", series_json(s));
        char *body = cJSON_PrintUnformatted(patch);
        cJSON_Delete(patch);
        if (!body) {
            memset(err, 0, sizeof *err);
            err->code = CSL_KUBE_OTHER;
            snprintf(err->message, sizeof err->message, "out of memory");
            return false;
        }
        answer = csl_kube_patch(r->kube, &events_resource, s->event_namespace, s->event_name, NULL,
                                CSL_PATCH_MERGE, body, NULL, err);
        free(body);
    }
    if (!answer) return false;
    cJSON_Delete(answer);
    return true;
}

/* Writes s as decided, retrying transient errors; a patch of an Event that
 * is gone (expired by the server's TTL) becomes a create, as in client-go. */
static void write_series(csl_event_recorder *r, csl_event_series *s, csl_event_decision d)
{
    long sent = s->count;
    int64_t delay_ns = (int64_t)r->retry_delay_ms * 1000000;
    csl_kube_error err;
    for (int attempt = 0; attempt < r->max_tries; attempt++) {
        if (past_deadline(r)) {
            csl_debugf("event %s/%s not written: the recorder is stopping", s->event_namespace,
                       s->event_name);
            stat_add(r, &r->stats.failed, 1);
            return;
        }
        memset(&err, 0, sizeof err);
        if (write_once(r, s, d, &err)) {
            csl_event_agg_written(r->agg, s, sent);
            stat_add(r, d == CSL_EVENT_CREATE ? &r->stats.created : &r->stats.patched, 1);
            return;
        }
        if (d == CSL_EVENT_PATCH && err.code == CSL_KUBE_NOT_FOUND) {
            d = CSL_EVENT_CREATE;
            attempt--; /* not a failure: the next call is another verb */
            continue;
        }
        if (d == CSL_EVENT_CREATE && err.code == CSL_KUBE_ALREADY_EXISTS) {
            /* Our own earlier create whose answer was lost: the Event is
             * there with at least the first occurrence. */
            csl_event_agg_written(r->agg, s, 1);
            return;
        }
        if (!csl_kube_error_retryable(&err)) {
            pthread_mutex_lock(&r->mu);
            bool first = !r->warned_rejection;
            r->warned_rejection = true;
            r->stats.failed++;
            pthread_mutex_unlock(&r->mu);
            csl_logf(first ? CSL_LOG_WARN : CSL_LOG_DEBUG,
                     "event %s/%s (%s) refused, dropped: %s%s", s->event_namespace, s->event_name,
                     s->reason, err.message,
                     first ? " (later refusals are logged at debug level)" : "");
            csl_event_agg_reject(r->agg, s);
            return;
        }
        if (attempt + 1 < r->max_tries && !backoff(r, delay_ns << attempt)) break;
    }
    csl_debugf("event %s/%s (%s) not written, will retry later: %s", s->event_namespace,
               s->event_name, s->reason, err.message);
    stat_add(r, &r->stats.failed, 1);
}

typedef struct pass_ctx {
    csl_event_recorder *r;
    int64_t now;
    bool final; /* stopping: a created series gets its count even if held */
} pass_ctx;

static void write_pending(csl_event_series *s, void *ctx)
{
    pass_ctx *p = ctx;
    csl_event_decision d = csl_event_agg_decide(p->r->agg, s, p->now);
    if (d == CSL_EVENT_SPAM && p->final && s->written > 0) d = CSL_EVENT_PATCH;
    if (d == CSL_EVENT_CREATE || d == CSL_EVENT_PATCH) write_series(p->r, s, d);
}

static void write_final(csl_event_series *s, void *ctx)
{
    pass_ctx *p = ctx;
    write_series(p->r, s, CSL_EVENT_PATCH);
}

static void *recorder_thread(void *arg)
{
    csl_event_recorder *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->stopping && r->len == 0) {
            if (csl_event_agg_len(r->agg) == 0) {
                pthread_cond_wait(&r->wake, &r->mu);
                continue;
            }
            /* Series alive: wake each tick for held writes and expiry. */
            struct timespec ts;
            abs_mono(&ts, csl_mono_ns() + TICK_NS);
            if (pthread_cond_timedwait(&r->wake, &r->mu, &ts) == ETIMEDOUT) break;
        }
        size_t n = 0;
        while (r->len) {
            r->batch[n++] = r->ring[r->head];
            r->head = (r->head + 1) % r->cap;
            r->len--;
        }
        uint64_t seq = r->seq_in;
        bool stopping = r->stopping;
        pthread_mutex_unlock(&r->mu);

        for (size_t i = 0; i < n; i++) {
            if (!csl_event_agg_observe(r->agg, &r->batch[i]->o))
                csl_warnf("event %s (%s) dropped: out of memory", r->batch[i]->o.name,
                          r->batch[i]->o.reason);
            free(r->batch[i]);
        }
        pass_ctx p = {r, csl_mono_ns(), stopping};
        csl_event_agg_each_pending(r->agg, write_pending, &p);
        csl_event_agg_expire(r->agg, csl_mono_ns(), write_final, &p);

        pthread_mutex_lock(&r->mu);
        r->stats.spam_held = csl_event_agg_spam_held(r->agg);
        r->stats.spam_dropped = csl_event_agg_spam_dropped(r->agg);
        if (seq > r->seq_done) r->seq_done = seq;
        pthread_cond_broadcast(&r->done);
        if (stopping && r->len == 0) break;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* reportingController: a Kubernetes qualified name, [prefix/]name. */
static bool qualified_name_ok(const char *s, char *why, size_t whysz)
{
    const char *slash = strchr(s, '/');
    const char *name = slash ? slash + 1 : s;
    if (slash) {
        size_t plen = (size_t)(slash - s);
        if (plen == 0 || plen > 253) {
            snprintf(why, whysz, "the prefix before '/' must be 1 to 253 characters");
            return false;
        }
        for (const char *p = s; p < slash; p++)
            if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' ||
                  *p == '.')) {
                snprintf(why, whysz,
                         "the prefix must be a DNS subdomain (lower case, digits, "
                         "'-', '.')");
                return false;
            }
    }
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > 63) {
        snprintf(why, whysz, "the name part must be 1 to 63 characters");
        return false;
    }
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        bool edge = i == 0 || i == nlen - 1;
        if (!(isalnum(c) || (!edge && (c == '-' || c == '_' || c == '.')))) {
            snprintf(why, whysz,
                     "the name part must be letters, digits, '-', '_' or '.', "
                     "beginning and ending with a letter or digit");
            return false;
        }
    }
    return true;
}

csl_event_recorder *csl_event_recorder_new(csl_kube *k, const csl_event_options *opt, char *err,
                                           size_t errsz)
{
    char why[160];
    if (!k || !opt || !opt->reporting_controller || !*opt->reporting_controller) {
        snprintf(err, errsz, "event recorder: %s",
                 !k ? "no Kubernetes client given"
                    : "reporting_controller is required (e.g. \"cloudserver.dev/operator\")");
        return NULL;
    }
    if (!qualified_name_ok(opt->reporting_controller, why, sizeof why)) {
        snprintf(err, errsz,
                 "event recorder: reporting_controller \"%s\" is not a qualified name: %s",
                 opt->reporting_controller, why);
        return NULL;
    }
    if (opt->reporting_instance && strlen(opt->reporting_instance) > REASON_MAX) {
        snprintf(err, errsz, "event recorder: reporting_instance is longer than %d bytes",
                 REASON_MAX);
        return NULL;
    }
    csl_event_recorder *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->kube = k;
    r->max_tries = opt->max_tries > 0 ? opt->max_tries : 3;
    r->retry_delay_ms = opt->retry_delay_ms > 0 ? opt->retry_delay_ms : 500;
    r->flush_timeout_ms = opt->flush_timeout_ms > 0 ? opt->flush_timeout_ms : 5000;
    r->cap = opt->queue_len ? opt->queue_len : 1000;
    r->controller = strdup(opt->reporting_controller);
    if (opt->reporting_instance && *opt->reporting_instance) {
        r->instance = strdup(opt->reporting_instance);
    } else {
        char host[256] = "unknown";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        char inst[640]; /* controller (at most 317 bytes), '-', host; cut below */
        snprintf(inst, sizeof inst, "%s-%s", opt->reporting_controller, host);
        inst[REASON_MAX] = '\0';
        r->instance = strdup(inst);
    }
    r->ring = calloc(r->cap, sizeof *r->ring);
    r->batch = calloc(r->cap, sizeof *r->batch);
    r->agg = csl_event_agg_new(opt->spam_burst, opt->spam_qps, opt->max_series);
    if (!r->controller || !r->instance || !r->ring || !r->batch || !r->agg) goto oom;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->wake, &ca);
    pthread_cond_init(&r->done, &ca);
    pthread_condattr_destroy(&ca);
    int rc = pthread_create(&r->thread, NULL, recorder_thread, r);
    if (rc != 0) {
        snprintf(err, errsz, "event recorder: cannot start its thread: %s", strerror(rc));
        pthread_cond_destroy(&r->wake);
        pthread_cond_destroy(&r->done);
        pthread_mutex_destroy(&r->mu);
        goto fail;
    }
    return r;
oom:
    snprintf(err, errsz, "event recorder: out of memory");
fail:
    if (r) {
        csl_event_agg_free(r->agg);
        free(r->ring);
        free(r->batch);
        free(r->controller);
        free(r->instance);
        free(r);
    }
    return NULL;
}

void csl_event_recorder_free(csl_event_recorder *r)
{
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    r->flush_deadline_ns = csl_mono_ns() + (int64_t)r->flush_timeout_ms * 1000000;
    pthread_cond_broadcast(&r->wake);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    while (r->len) {
        free(r->ring[r->head]);
        r->head = (r->head + 1) % r->cap;
        r->len--;
    }
    csl_event_agg_free(r->agg);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->done);
    pthread_mutex_destroy(&r->mu);
    free(r->ring);
    free(r->batch);
    free(r->controller);
    free(r->instance);
    free(r);
}

/* ---------------------------------------------------------------- recording */

static const char *json_str(const cJSON *obj, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Why reason is not a CamelCase word of at most 128 bytes, or NULL. */
static const char *reason_problem(const char *reason)
{
    if (!reason || !*reason) return "is empty";
    if (strlen(reason) > REASON_MAX) return "is longer than 128 bytes";
    if (!isupper((unsigned char)reason[0])) return "must start with a capital letter (CamelCase)";
    for (const char *p = reason; *p; p++)
        if (!isalnum((unsigned char)*p)) return "must be letters and digits only (CamelCase)";
    return NULL;
}

static const char *action_problem(const char *action)
{
    if (!action || !*action) return "is empty";
    if (strlen(action) > REASON_MAX) return "is longer than 128 bytes";
    for (const char *p = action; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return "contains control characters";
    return NULL;
}

/* Cuts s (of length len) to at most max bytes without splitting a UTF-8
 * sequence; s must hold at least max + 1 bytes when len > max. */
static void cut_utf8(char *s, size_t len, size_t max)
{
    if (len <= max) return;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    s[n] = '\0';
}

int csl_event_vrecord(csl_event_recorder *r, const cJSON *obj, const char *type, const char *reason,
                      const char *action, const char *fmt, va_list ap)
{
    const cJSON *meta = obj ? cJSON_GetObjectItemCaseSensitive(obj, "metadata") : NULL;
    const char *api_version = json_str(obj, "apiVersion"), *kind = json_str(obj, "kind");
    const char *name = json_str(meta, "name"), *ns = json_str(meta, "namespace");
    const char *uid = json_str(meta, "uid"), *rv = json_str(meta, "resourceVersion");
    const char *problem = NULL;
    if (!r)
        problem = "no recorder";
    else if (!obj)
        problem = "no involved object";
    else if (!api_version || !*api_version || !kind || !*kind)
        problem = "the involved object has no apiVersion/kind (list items may lack them: set them)";
    else if (!name || !*name)
        problem = "the involved object has no metadata.name";
    else if (!type || (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0))
        problem = "type must be \"Normal\" or \"Warning\"";
    if (!problem && (problem = reason_problem(reason)) != NULL) {
        csl_log(CSL_LOG_WARN, "event not recorded: bad reason", "reason", reason, "problem",
                problem, NULL);
        return -1;
    }
    if (!problem && (problem = action_problem(action)) != NULL) {
        csl_log(CSL_LOG_WARN, "event not recorded: bad action", "action", action, "problem",
                problem, NULL);
        return -1;
    }
    if (problem) {
        csl_log(CSL_LOG_WARN, "event not recorded", "problem", problem, "reason", reason, "object",
                name, NULL);
        return -1;
    }

    char note[NOTE_MAX + 2];
    int nl = vsnprintf(note, sizeof note, fmt ? fmt : "", ap);
    if (nl < 0) {
        nl = 0;
        note[0] = '\0';
    }
    cut_utf8(note, (size_t)nl, NOTE_MAX);

    char object_key[1024];
    if (uid && *uid)
        snprintf(object_key, sizeof object_key, "%s", uid);
    else
        snprintf(object_key, sizeof object_key, "%s/%s/%s/%s", api_version, kind, ns ? ns : "",
                 name);

    const char *src[] = {object_key, api_version, kind,   ns,     name, uid,
                         rv,         type,        reason, action, note};
    size_t total = 0;
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
        total += strlen(src[i] ? src[i] : "") + 1;
    record *rec = malloc(sizeof *rec + total);
    if (!rec) {
        csl_warnf("event %s (%s) not recorded: out of memory", name, reason);
        return -1;
    }
    const char **dst[] = {&rec->o.object_key,       &rec->o.api_version, &rec->o.kind,
                          &rec->o.namespace,        &rec->o.name,        &rec->o.uid,
                          &rec->o.resource_version, &rec->o.type,        &rec->o.reason,
                          &rec->o.action,           &rec->o.note};
    char *p = rec->strings;
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        size_t n = strlen(src[i] ? src[i] : "");
        memcpy(p, src[i] ? src[i] : "", n + 1);
        *dst[i] = p;
        p += n + 1;
    }
    rec->o.mono_ns = csl_mono_ns();
    rec->o.wall_us = csl_microtime_now();

    pthread_mutex_lock(&r->mu);
    if (r->stopping) {
        pthread_mutex_unlock(&r->mu);
        free(rec);
        csl_warnf("event %s (%s) not recorded: the recorder is stopping", name, reason);
        return -1;
    }
    if (r->len == r->cap) {
        free(r->ring[r->head]);
        r->head = (r->head + 1) % r->cap;
        r->len--;
        r->stats.dropped_full++;
    }
    r->ring[(r->head + r->len) % r->cap] = rec;
    r->len++;
    r->seq_in++;
    r->stats.recorded++;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

int csl_event_record(csl_event_recorder *r, const cJSON *obj, const char *type, const char *reason,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = csl_event_vrecord(r, obj, type, reason, reason, fmt, ap);
    va_end(ap);
    return rc;
}

int csl_event_record_action(csl_event_recorder *r, const cJSON *obj, const char *type,
                            const char *reason, const char *action, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = csl_event_vrecord(r, obj, type, reason, action, fmt, ap);
    va_end(ap);
    return rc;
}

void csl_event_recorder_stats(csl_event_recorder *r, csl_event_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}

bool csl_event_recorder_sync(csl_event_recorder *r, long timeout_ms)
{
    int64_t end = csl_mono_ns() + (int64_t)timeout_ms * 1000000;
    pthread_mutex_lock(&r->mu);
    uint64_t target = r->seq_in;
    while (r->seq_done < target && csl_mono_ns() < end) {
        struct timespec ts;
        abs_mono(&ts, end);
        pthread_cond_timedwait(&r->done, &r->mu, &ts);
    }
    bool done = r->seq_done >= target;
    pthread_mutex_unlock(&r->mu);
    return done;
}
