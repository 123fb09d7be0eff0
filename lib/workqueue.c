/* workqueue.c — a controller's work queue with client-go's semantics (see
 * csl/workqueue.h).
 *
 * The one idea: every key the queue knows has one record, found through a
 * hash table, that says at once whether the key is dirty (added, not yet
 * handed out), being processed, and waiting for a deadline. The FIFO is a
 * list threaded through the records that are dirty and not processed; the
 * deadlines are a min-heap of records watched by one timer thread. A record
 * lives exactly as long as one of those three states holds, so every rule
 * (one copy in the queue, one worker per key, re-queue on done when dirty)
 * is a test of one record's flags under the queue's one lock. */
#include "csl/workqueue.h"

#include "csl/clock.h"
#include "csl/log.h"
#include "csl/units.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ hash table */

/* An intrusive table of string keys: each record embeds an hnode first. */
typedef struct hnode {
    struct hnode *next;
    uint64_t hash;
    const char *key; /* points into the record */
} hnode;

typedef struct htab {
    hnode **slots;
    size_t size; /* power of two, 0 before the first insert */
    size_t count;
} htab;

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static hnode *htab_find(const htab *t, const char *key, uint64_t h)
{
    if (!t->size) return NULL;
    for (hnode *n = t->slots[h & (t->size - 1)]; n; n = n->next)
        if (n->hash == h && strcmp(n->key, key) == 0) return n;
    return NULL;
}

/* False only when the table has no slots at all and none can be had; a
 * failed growth just leaves chains longer. */
static bool htab_insert(htab *t, hnode *n)
{
    if (t->count >= t->size / 4 * 3) {
        size_t size = t->size ? t->size * 2 : 16;
        hnode **slots = calloc(size, sizeof *slots);
        if (slots) {
            for (size_t i = 0; i < t->size; i++) {
                hnode *m = t->slots[i];
                while (m) {
                    hnode *next = m->next;
                    m->next = slots[m->hash & (size - 1)];
                    slots[m->hash & (size - 1)] = m;
                    m = next;
                }
            }
            free(t->slots);
            t->slots = slots;
            t->size = size;
        } else if (!t->size) {
            return false;
        }
    }
    hnode **slot = &t->slots[n->hash & (t->size - 1)];
    n->next = *slot;
    *slot = n;
    t->count++;
    return true;
}

static void htab_remove(htab *t, hnode *n)
{
    for (hnode **p = &t->slots[n->hash & (t->size - 1)]; *p; p = &(*p)->next)
        if (*p == n) {
            *p = n->next;
            t->count--;
            return;
        }
}

/* Frees every record (each is one malloc block starting with its hnode). */
static void htab_free_all(htab *t)
{
    for (size_t i = 0; i < t->size; i++) {
        hnode *n = t->slots[i];
        while (n) {
            hnode *next = n->next;
            free(n);
            n = next;
        }
    }
    free(t->slots);
    *t = (htab){0};
}

/* ---------------------------------------------------------- rate limits */

static void fmt_ns(int64_t ns, char out[32])
{
    csl_duration_format(ns, out, 32);
}

int csl_ratelimit_check(const csl_ratelimit *rl, char *err, size_t errsz)
{
    char a[32], b[32];
    if (rl->base_ns < 0) {
        fmt_ns(rl->base_ns, a);
        snprintf(err, errsz, "rate limit: base delay %s is negative: use 0 or more (default 5ms)",
                 a);
        return -1;
    }
    if (rl->max_ns < rl->base_ns) {
        fmt_ns(rl->base_ns, a);
        fmt_ns(rl->max_ns, b);
        snprintf(err, errsz,
                 "rate limit: maximum delay %s is below the base delay %s: use a maximum at or "
                 "above the base (default 1000s)",
                 b, a);
        return -1;
    }
    if (!isfinite(rl->qps) || rl->qps < 0) {
        snprintf(err, errsz,
                 "rate limit: qps %g is not a finite number >= 0: use 0 for no overall limit "
                 "(default 10)",
                 rl->qps);
        return -1;
    }
    if (rl->qps > 0 && rl->burst < 1) {
        snprintf(err, errsz,
                 "rate limit: burst %d with qps %g would never let a retry through: use a burst "
                 "of 1 or more (default 100), or qps 0",
                 rl->burst, rl->qps);
        return -1;
    }
    return 0;
}

int64_t csl_ratelimit_backoff_ns(int64_t base_ns, int64_t max_ns, unsigned failures)
{
    if (base_ns <= 0) return 0;
    if (failures >= 63 || base_ns > (INT64_MAX >> failures)) return max_ns;
    int64_t d = base_ns << failures;
    return d > max_ns ? max_ns : d;
}

void csl_token_bucket_init(csl_token_bucket *b, double qps, int burst, int64_t now_ns)
{
    *b = (csl_token_bucket){qps, burst, burst, now_ns};
}

int64_t csl_token_bucket_reserve(csl_token_bucket *b, int64_t now_ns)
{
    if (b->qps <= 0) return 0;
    if (now_ns > b->last_ns) {
        double t = b->tokens + (double)(now_ns - b->last_ns) * b->qps / 1e9;
        b->tokens = t > b->burst ? b->burst : t;
        b->last_ns = now_ns;
    }
    b->tokens -= 1;
    if (b->tokens >= 0) return 0;
    double wait = ceil(-b->tokens * 1e9 / b->qps);
    return wait >= 9e18 ? INT64_MAX : (int64_t)wait;
}

/* ---------------------------------------------------------- rate limiter */

typedef struct failure {
    hnode h; /* first */
    unsigned count;
    char key[];
} failure;

struct csl_ratelimiter {
    csl_ratelimit cfg;
    pthread_mutex_t lock; /* guards everything below */
    htab failures;
    csl_token_bucket bucket;
};

csl_ratelimiter *csl_ratelimiter_new(const csl_ratelimit *rl, char *err, size_t errsz)
{
    csl_ratelimit cfg = rl ? *rl : CSL_RATELIMIT_DEFAULT;
    if (csl_ratelimit_check(&cfg, err, errsz)) return NULL;
    csl_ratelimiter *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errsz, "rate limit: out of memory");
        return NULL;
    }
    l->cfg = cfg;
    pthread_mutex_init(&l->lock, NULL);
    csl_token_bucket_init(&l->bucket, cfg.qps, cfg.burst, csl_mono_ns());
    return l;
}

void csl_ratelimiter_free(csl_ratelimiter *l)
{
    if (!l) return;
    htab_free_all(&l->failures);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

int64_t csl_ratelimiter_when(csl_ratelimiter *l, const char *key, int64_t now_ns)
{
    if (!key) key = "";
    uint64_t h = hash_key(key);
    pthread_mutex_lock(&l->lock);
    failure *f = (failure *)htab_find(&l->failures, key, h);
    if (!f) {
        size_t len = strlen(key);
        f = malloc(sizeof *f + len + 1);
        if (f) {
            memcpy(f->key, key, len + 1);
            f->h = (hnode){NULL, h, f->key};
            f->count = 0;
            if (!htab_insert(&l->failures, &f->h)) {
                free(f);
                f = NULL;
            }
        }
    }
    int64_t d;
    if (f) {
        d = csl_ratelimit_backoff_ns(l->cfg.base_ns, l->cfg.max_ns, f->count);
        if (f->count < UINT_MAX) f->count++;
    } else {
        d = l->cfg.max_ns;
    }
    int64_t bucket = csl_token_bucket_reserve(&l->bucket, now_ns);
    pthread_mutex_unlock(&l->lock);
    if (!f) csl_logf(CSL_LOG_ERROR, "rate limit: out of memory counting failures of \"%s\"", key);
    return bucket > d ? bucket : d;
}

void csl_ratelimiter_forget(csl_ratelimiter *l, const char *key)
{
    if (!key) key = "";
    uint64_t h = hash_key(key);
    pthread_mutex_lock(&l->lock);
    hnode *n = htab_find(&l->failures, key, h);
    if (n) htab_remove(&l->failures, n);
    pthread_mutex_unlock(&l->lock);
    free(n);
}

unsigned csl_ratelimiter_requeues(csl_ratelimiter *l, const char *key)
{
    if (!key) key = "";
    uint64_t h = hash_key(key);
    pthread_mutex_lock(&l->lock);
    failure *f = (failure *)htab_find(&l->failures, key, h);
    unsigned n = f ? f->count : 0;
    pthread_mutex_unlock(&l->lock);
    return n;
}

/* ---------------------------------------------------------------- queue */

#define NOT_WAITING SIZE_MAX

typedef struct entry {
    hnode h;             /* first */
    struct entry *qnext; /* FIFO link, while dirty and not processing */
    bool dirty;          /* added and not yet handed out */
    bool processing;     /* handed out, done not yet called */
    size_t heap_idx;     /* place in the deadline heap, or NOT_WAITING */
    int64_t ready_ns;    /* the deadline, while waiting */
    uint64_t seq;        /* equal deadlines fire in the order they were set */
    int64_t added_ns;    /* when it became dirty: queue duration */
    int64_t started_ns;  /* when handed out: work duration */
    char key[];
} entry;

struct csl_workqueue {
    char *name;
    csl_ratelimiter *limiter;

    pthread_mutex_t lock; /* guards everything below but the metrics */
    pthread_cond_t ready; /* getters: a key was queued, or shutdown */
    pthread_cond_t timer; /* the timer thread: earliest deadline changed, or shutdown */
    pthread_cond_t idle;  /* shutdown_drain: nothing in flight */
    htab keys;
    entry *head, *tail; /* the FIFO */
    size_t queued;
    entry **heap; /* deadlines, earliest first */
    size_t nheap, heap_cap;
    uint64_t seq;
    size_t ndirty, nprocessing;
    bool shutting_down;
    pthread_t timer_thread;

    /* Metrics (all NULL without a registry). */
    uint64_t id; /* the collect hook's handle on this queue */
    struct csl_workqueue *live_next;
    csl_metric *depth, *adds, *queue_dur, *work_dur, *retries, *unfinished, *longest;
};

/* The queues whose gauges a collect hook may compute. The registry keeps
 * hooks forever, so a hook names its queue by id and finds it here: after
 * csl_workqueue_free its hook finds nothing and does nothing. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static csl_workqueue *live_first;
static uint64_t live_ids;

/* A record exists while it is dirty, processed or waiting. */
static void entry_release(csl_workqueue *q, entry *e)
{
    if (e->dirty || e->processing || e->heap_idx != NOT_WAITING) return;
    htab_remove(&q->keys, &e->h);
    free(e);
}

static entry *entry_get(csl_workqueue *q, const char *key)
{
    uint64_t h = hash_key(key);
    entry *e = (entry *)htab_find(&q->keys, key, h);
    if (e) return e;
    size_t len = strlen(key);
    e = malloc(sizeof *e + len + 1);
    if (!e) return NULL;
    memcpy(e->key, key, len + 1);
    e->h = (hnode){NULL, h, e->key};
    e->qnext = NULL;
    e->dirty = e->processing = false;
    e->heap_idx = NOT_WAITING;
    e->ready_ns = e->added_ns = e->started_ns = 0;
    e->seq = 0;
    if (!htab_insert(&q->keys, &e->h)) {
        free(e);
        return NULL;
    }
    return e;
}

static void set_depth(csl_workqueue *q)
{
    csl_metric_set(q->depth, (double)q->ndirty, CSL_LABELS(q->name));
}

static void fifo_push(csl_workqueue *q, entry *e)
{
    e->qnext = NULL;
    if (q->tail)
        q->tail->qnext = e;
    else
        q->head = e;
    q->tail = e;
    q->queued++;
    pthread_cond_signal(&q->ready);
}

static entry *fifo_pop(csl_workqueue *q)
{
    entry *e = q->head;
    q->head = e->qnext;
    if (!q->head) q->tail = NULL;
    e->qnext = NULL;
    q->queued--;
    return e;
}

/* The add of client-go's Type.Add, lock held. */
static void add_locked(csl_workqueue *q, entry *e, int64_t now)
{
    if (e->dirty) return;
    e->dirty = true;
    e->added_ns = now;
    q->ndirty++;
    csl_metric_inc(q->adds, CSL_LABELS(q->name));
    set_depth(q);
    if (!e->processing) fifo_push(q, e);
}

/* -------------------------------------------------------- deadline heap */

static bool heap_less(const entry *a, const entry *b)
{
    return a->ready_ns < b->ready_ns || (a->ready_ns == b->ready_ns && a->seq < b->seq);
}

static void heap_set(csl_workqueue *q, size_t i, entry *e)
{
    q->heap[i] = e;
    e->heap_idx = i;
}

static void heap_up(csl_workqueue *q, size_t i)
{
    entry *e = q->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(e, q->heap[parent])) break;
        heap_set(q, i, q->heap[parent]);
        i = parent;
    }
    heap_set(q, i, e);
}

static void heap_down(csl_workqueue *q, size_t i)
{
    entry *e = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->nheap) break;
        if (c + 1 < q->nheap && heap_less(q->heap[c + 1], q->heap[c])) c++;
        if (!heap_less(q->heap[c], e)) break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, e);
}

static bool heap_push(csl_workqueue *q, entry *e)
{
    if (q->nheap == q->heap_cap) {
        size_t cap = q->heap_cap ? q->heap_cap * 2 : 16;
        entry **h = realloc(q->heap, cap * sizeof *h);
        if (!h) return false;
        q->heap = h;
        q->heap_cap = cap;
    }
    heap_set(q, q->nheap++, e);
    heap_up(q, q->nheap - 1);
    return true;
}

static entry *heap_pop(csl_workqueue *q)
{
    entry *top = q->heap[0];
    top->heap_idx = NOT_WAITING;
    if (--q->nheap) {
        heap_set(q, 0, q->heap[q->nheap]);
        heap_down(q, 0);
    }
    return top;
}

static struct timespec ns_to_ts(int64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
}

/* Moves keys whose deadline passed into the queue, sleeping until the
 * earliest deadline or a change of it. */
static void *timer_main(void *arg)
{
    csl_workqueue *q = arg;
    pthread_mutex_lock(&q->lock);
    while (!q->shutting_down) {
        int64_t now = csl_mono_ns();
        while (q->nheap && q->heap[0]->ready_ns <= now) add_locked(q, heap_pop(q), now);
        if (!q->nheap) {
            pthread_cond_wait(&q->timer, &q->lock);
        } else {
            struct timespec ts = ns_to_ts(q->heap[0]->ready_ns);
            pthread_cond_timedwait(&q->timer, &q->lock, &ts);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* ------------------------------------------------------------- metrics */

/* Prometheus' ExponentialBuckets(10e-9, 10, 12), as controller-runtime. */
static const double duration_buckets[] = {1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3,
                                          1e-2, 1e-1, 1,    10,   100,  1000};

/* Collect hook: the gauges client-go refreshes every 500 ms, computed at
 * scrape time instead. */
static void collect(csl_metrics *reg, void *ctx)
{
    uint64_t id = (uint64_t)(uintptr_t)ctx;
    pthread_mutex_lock(&live_lock);
    csl_workqueue *q = live_first;
    while (q && q->id != id) q = q->live_next;
    if (q) {
        pthread_mutex_lock(&q->lock);
        int64_t now = csl_mono_ns(), sum = 0, longest = 0;
        for (size_t i = 0; q->nprocessing && i < q->keys.size; i++)
            for (hnode *n = q->keys.slots[i]; n; n = n->next) {
                const entry *e = (const entry *)n;
                if (!e->processing) continue;
                int64_t d = now - e->started_ns;
                sum += d;
                if (d > longest) longest = d;
            }
        pthread_mutex_unlock(&q->lock);
        csl_metric_set(q->unfinished, (double)sum / 1e9, CSL_LABELS(q->name));
        csl_metric_set(q->longest, (double)longest / 1e9, CSL_LABELS(q->name));
    }
    pthread_mutex_unlock(&live_lock);
}

static bool register_metrics(csl_workqueue *q, csl_metrics *reg)
{
    const char *const *labels = CSL_LABELS("name");
    size_t nb = sizeof duration_buckets / sizeof duration_buckets[0];
    q->depth = csl_metrics_gauge(reg, "workqueue_depth", "Current depth of workqueue", labels);
    q->adds = csl_metrics_counter(reg, "workqueue_adds_total",
                                  "Total number of adds handled by workqueue", labels);
    q->queue_dur = csl_metrics_histogram(
        reg, "workqueue_queue_duration_seconds",
        "How long in seconds an item stays in workqueue before being requested", labels,
        duration_buckets, nb);
    q->work_dur = csl_metrics_histogram(reg, "workqueue_work_duration_seconds",
                                        "How long in seconds processing an item from workqueue "
                                        "takes.",
                                        labels, duration_buckets, nb);
    q->retries = csl_metrics_counter(reg, "workqueue_retries_total",
                                     "Total number of retries handled by workqueue", labels);
    q->unfinished = csl_metrics_gauge(
        reg, "workqueue_unfinished_work_seconds",
        "How many seconds of work has been done that is in progress and hasn't been observed by "
        "work_duration. Large values indicate stuck threads. One can deduce the number of stuck "
        "threads by observing the rate at which this increases.",
        labels);
    q->longest = csl_metrics_gauge(reg, "workqueue_longest_running_processor_seconds",
                                   "How many seconds has the longest running processor for "
                                   "workqueue been running.",
                                   labels);
    if (!q->depth || !q->adds || !q->queue_dur || !q->work_dur || !q->retries || !q->unfinished ||
        !q->longest)
        return false;
    /* The series exist from the start, as client-go's do. */
    const char *const *v = CSL_LABELS(q->name);
    csl_metric_set(q->depth, 0, v);
    csl_metric_add(q->adds, 0, v);
    csl_metric_add(q->retries, 0, v);
    csl_metric_set(q->unfinished, 0, v);
    csl_metric_set(q->longest, 0, v);

    pthread_mutex_lock(&live_lock);
    q->id = ++live_ids;
    q->live_next = live_first;
    live_first = q;
    pthread_mutex_unlock(&live_lock);
    csl_metrics_on_collect(reg, collect, (void *)(uintptr_t)q->id);
    return true;
}

static void unregister_metrics(csl_workqueue *q)
{
    if (!q->id) return;
    pthread_mutex_lock(&live_lock);
    for (csl_workqueue **p = &live_first; *p; p = &(*p)->live_next)
        if (*p == q) {
            *p = q->live_next;
            break;
        }
    pthread_mutex_unlock(&live_lock);
    const char *const *v = CSL_LABELS(q->name);
    csl_metric_set(q->depth, 0, v);
    csl_metric_set(q->unfinished, 0, v);
    csl_metric_set(q->longest, 0, v);
}

/* ---------------------------------------------------------------- API */

csl_workqueue *csl_workqueue_new(const csl_workqueue_options *opt, char *err, size_t errsz)
{
    if (!opt || !opt->name || !*opt->name) {
        snprintf(err, errsz, "workqueue: a name is required (it labels the metrics and logs)");
        return NULL;
    }
    char lerr[256];
    csl_ratelimiter *limiter = csl_ratelimiter_new(opt->limit, lerr, sizeof lerr);
    if (!limiter) {
        snprintf(err, errsz, "workqueue %s: %s", opt->name, lerr);
        return NULL;
    }
    csl_workqueue *q = calloc(1, sizeof *q);
    char *name = strdup(opt->name);
    if (!q || !name) {
        free(q);
        free(name);
        csl_ratelimiter_free(limiter);
        snprintf(err, errsz, "workqueue %s: out of memory", opt->name);
        return NULL;
    }
    q->name = name;
    q->limiter = limiter;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->ready, NULL);
    pthread_cond_init(&q->idle, NULL);
    /* The timer sleeps until a monotonic deadline: wall-clock jumps must
     * not fire or stall it, and libfaketime scales it like csl_mono_ns. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->timer, &attr);
    pthread_condattr_destroy(&attr);

    if (opt->metrics && !register_metrics(q, opt->metrics)) {
        snprintf(err, errsz,
                 "workqueue %s: cannot register its metrics (see the log: a name already used "
                 "with another shape?)",
                 opt->name);
        goto err;
    }
    int rc = pthread_create(&q->timer_thread, NULL, timer_main, q);
    if (rc) {
        snprintf(err, errsz, "workqueue %s: cannot start its timer thread: %s", opt->name,
                 strerror(rc));
        goto err;
    }
    return q;

err:
    unregister_metrics(q);
    pthread_cond_destroy(&q->ready);
    pthread_cond_destroy(&q->idle);
    pthread_cond_destroy(&q->timer);
    pthread_mutex_destroy(&q->lock);
    csl_ratelimiter_free(q->limiter);
    free(q->name);
    free(q);
    return NULL;
}

static bool key_ok(csl_workqueue *q, const char *key, const char *what)
{
    if (key && *key) return true;
    csl_logf(CSL_LOG_ERROR, "workqueue %s: %s with %s key ignored: pass \"namespace/name\"",
             q->name, what, key ? "an empty" : "a NULL");
    return false;
}

static void log_oom(csl_workqueue *q, const char *key)
{
    csl_logf(CSL_LOG_ERROR, "workqueue %s: out of memory: key \"%s\" dropped", q->name, key);
}

void csl_workqueue_add(csl_workqueue *q, const char *key)
{
    if (!key_ok(q, key, "add")) return;
    pthread_mutex_lock(&q->lock);
    entry *e = NULL;
    if (!q->shutting_down) {
        e = entry_get(q, key);
        if (e) add_locked(q, e, csl_mono_ns());
    }
    bool oom = !q->shutting_down && !e;
    pthread_mutex_unlock(&q->lock);
    if (oom) log_oom(q, key);
}

void csl_workqueue_add_after(csl_workqueue *q, const char *key, int64_t delay_ns)
{
    if (!key_ok(q, key, "add_after")) return;
    pthread_mutex_lock(&q->lock);
    if (q->shutting_down) {
        pthread_mutex_unlock(&q->lock);
        return;
    }
    csl_metric_inc(q->retries, CSL_LABELS(q->name));
    int64_t now = csl_mono_ns();
    entry *e = entry_get(q, key);
    bool oom = !e;
    if (e && delay_ns <= 0) {
        add_locked(q, e, now);
    } else if (e) {
        int64_t ready = delay_ns > INT64_MAX - now ? INT64_MAX : now + delay_ns;
        if (e->heap_idx == NOT_WAITING) {
            e->ready_ns = ready;
            e->seq = q->seq++;
            if (!heap_push(q, e)) {
                oom = true;
                entry_release(q, e);
                e = NULL;
            }
        } else if (ready < e->ready_ns) {
            e->ready_ns = ready;
            heap_up(q, e->heap_idx);
        }
        if (e && e->heap_idx == 0) pthread_cond_signal(&q->timer);
    }
    pthread_mutex_unlock(&q->lock);
    if (oom) log_oom(q, key);
}

void csl_workqueue_add_rate_limited(csl_workqueue *q, const char *key)
{
    if (!key_ok(q, key, "add_rate_limited")) return;
    csl_workqueue_add_after(q, key, csl_ratelimiter_when(q->limiter, key, csl_mono_ns()));
}

void csl_workqueue_forget(csl_workqueue *q, const char *key)
{
    if (key_ok(q, key, "forget")) csl_ratelimiter_forget(q->limiter, key);
}

unsigned csl_workqueue_num_requeues(csl_workqueue *q, const char *key)
{
    return key_ok(q, key, "num_requeues") ? csl_ratelimiter_requeues(q->limiter, key) : 0;
}

const char *csl_workqueue_get(csl_workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    while (!q->shutting_down && !q->head) pthread_cond_wait(&q->ready, &q->lock);
    if (q->shutting_down) {
        pthread_mutex_unlock(&q->lock);
        return NULL;
    }
    entry *e = fifo_pop(q);
    int64_t now = csl_mono_ns();
    e->dirty = false;
    q->ndirty--;
    e->processing = true;
    q->nprocessing++;
    e->started_ns = now;
    set_depth(q);
    int64_t waited = now - e->added_ns;
    pthread_mutex_unlock(&q->lock);
    /* e stays while it is processed: only this worker's done releases it. */
    csl_metric_observe(q->queue_dur, (double)waited / 1e9, CSL_LABELS(q->name));
    return e->key;
}

void csl_workqueue_done(csl_workqueue *q, const char *key)
{
    if (!key_ok(q, key, "done")) return;
    pthread_mutex_lock(&q->lock);
    entry *e = (entry *)htab_find(&q->keys, key, hash_key(key));
    if (!e || !e->processing) {
        pthread_mutex_unlock(&q->lock);
        csl_logf(CSL_LOG_ERROR,
                 "workqueue %s: done(\"%s\") for a key that is not being processed ignored: call "
                 "done once for each key get returned",
                 q->name, key);
        return;
    }
    int64_t worked = csl_mono_ns() - e->started_ns;
    e->processing = false;
    q->nprocessing--;
    /* key may be e->key: not read after this point. */
    if (e->dirty)
        fifo_push(q, e);
    else
        entry_release(q, e);
    if (!q->nprocessing) pthread_cond_broadcast(&q->idle);
    pthread_mutex_unlock(&q->lock);
    csl_metric_observe(q->work_dur, (double)worked / 1e9, CSL_LABELS(q->name));
}

size_t csl_workqueue_len(csl_workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->queued;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t csl_workqueue_in_flight(csl_workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->nprocessing;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void csl_workqueue_shutdown(csl_workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    q->shutting_down = true;
    pthread_cond_broadcast(&q->ready);
    pthread_cond_signal(&q->timer);
    pthread_mutex_unlock(&q->lock);
}

void csl_workqueue_shutdown_drain(csl_workqueue *q)
{
    csl_workqueue_shutdown(q);
    pthread_mutex_lock(&q->lock);
    while (q->nprocessing) pthread_cond_wait(&q->idle, &q->lock);
    pthread_mutex_unlock(&q->lock);
}

bool csl_workqueue_shutting_down(csl_workqueue *q)
{
    pthread_mutex_lock(&q->lock);
    bool s = q->shutting_down;
    pthread_mutex_unlock(&q->lock);
    return s;
}

void csl_workqueue_free(csl_workqueue *q)
{
    if (!q) return;
    csl_workqueue_shutdown(q);
    pthread_join(q->timer_thread, NULL);
    unregister_metrics(q);
    htab_free_all(&q->keys);
    free(q->heap);
    pthread_cond_destroy(&q->ready);
    pthread_cond_destroy(&q->idle);
    pthread_cond_destroy(&q->timer);
    pthread_mutex_destroy(&q->lock);
    csl_ratelimiter_free(q->limiter);
    free(q->name);
    free(q);
}
