/* informer.c — a cache of Kubernetes objects kept by a reflector, with
 * handlers, resync and indexes (see csl/informer.h).
 *
 * One idea: an entry is one allocation holding the object's compact JSON
 * text and the strings lookups need (key, uid, resourceVersion), plus its
 * index values; the parsed tree exists only while a change is delivered or a
 * reader holds its copy. That keeps the cost of a cached object close to
 * the size of its JSON.
 *
 * Changes arrive on a queue (from the reflector's thread, or feed calls)
 * and are applied by the informer's own thread: build the new entry with no
 * lock held, swap it in under the write lock, release the lock, then call
 * the handlers with the new object and a copy parsed from the old entry,
 * and free the old entry last. Readers take the read lock only to find an
 * entry and parse (or copy) it. */
#include "csl/informer.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"
#include "csl/rng.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ strmap */

/* An open-addressing hash map from C strings (borrowed: the value owns
 * them) to pointers, with linear probing and backward-shift deletion. */
typedef struct slot {
    uint64_t h;
    const char *key; /* NULL: empty */
    void *val;
} slot;

typedef struct strmap {
    slot *s;
    size_t cap; /* a power of two, or 0 */
    size_t len;
} strmap;

static void *map_get(const strmap *m, const char *key)
{
    if (!m->cap) return NULL;
    uint64_t h = csl_hash64(key);
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const slot *s = &m->s[i];
        if (!s->key) return NULL;
        if (s->h == h && strcmp(s->key, key) == 0) return s->val;
    }
}

static int map_grow(strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 8;
    slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->s[i].key) continue;
        size_t j = m->s[i].h & (ncap - 1);
        while (ns[j].key) j = (j + 1) & (ncap - 1);
        ns[j] = m->s[i];
    }
    free(m->s);
    m->s = ns;
    m->cap = ncap;
    return 0;
}

/* Inserts or replaces (key pointer and value both). Returns 0 or -1. */
static int map_put(strmap *m, const char *key, void *val)
{
    if ((m->len + 1) * 4 > m->cap * 3 && map_grow(m) < 0) return -1;
    uint64_t h = csl_hash64(key);
    size_t i = h & (m->cap - 1);
    for (; m->s[i].key; i = (i + 1) & (m->cap - 1)) {
        if (m->s[i].h == h && strcmp(m->s[i].key, key) == 0) {
            m->s[i].key = key;
            m->s[i].val = val;
            return 0;
        }
    }
    m->s[i] = (slot){h, key, val};
    m->len++;
    return 0;
}

/* Removes key; returns its value or NULL. */
static void *map_del(strmap *m, const char *key)
{
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    uint64_t h = csl_hash64(key);
    size_t i = h & mask;
    for (;; i = (i + 1) & mask) {
        if (!m->s[i].key) return NULL;
        if (m->s[i].h == h && strcmp(m->s[i].key, key) == 0) break;
    }
    void *val = m->s[i].val;
    /* Shift back the entries of the run after i that may move. */
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->s[j].key) break;
        size_t home = m->s[j].h & mask;
        /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        m->s[i] = m->s[j];
        i = j;
    }
    m->s[i] = (slot){0, NULL, NULL};
    m->len--;
    return val;
}

static void map_free(strmap *m)
{
    free(m->s);
    *m = (strmap){NULL, 0, 0};
}

#define MAP_FOREACH(m, sl)                                                                         \
    for (slot *sl = (m)->s; sl && sl < (m)->s + (m)->cap; sl++)                                    \
        if (sl->key)

/* ------------------------------------------------------------------ types */

/* One allocation: this header, then (in blob) the index value pointers,
 * key, uid, resourceVersion, JSON text and index values. */
typedef struct entry {
    const char *key, *uid, *rv, *json;
    size_t json_len;
    const char **idx; /* per index: "v1\0v2\0\0" ("\0" for none); NULL without indexes */
    char blob[];
} entry;

_Static_assert(offsetof(entry, blob) % _Alignof(char *) == 0, "entry blob must hold pointers");

typedef struct bucket {
    char *value;
    strmap keys; /* entry key → entry */
} bucket;

typedef struct index_def {
    char *name;
    csl_index_fn fn;
    void *ctx;
    char *label_key; /* the built-in label index's ctx */
    strmap values;   /* value → bucket */
} index_def;

enum { Q_REPLACE, Q_EVENT, Q_RESYNC, Q_FLUSH };

typedef struct qitem {
    struct qitem *next;
    int kind;
    csl_watch_type type;
    cJSON *obj;
    uint64_t seq;
} qitem;

struct csl_informer {
    csl_kube *k;
    csl_reflector *refl;
    long resync_ms;
    char *name;

    csl_informer_handler *handlers;
    size_t nhandlers;
    index_def *indexes;
    size_t nindexes;

    pthread_rwlock_t lock; /* the cache, indexes, json_bytes and counters */
    strmap cache;          /* key → entry */
    size_t json_bytes;
    uint64_t adds, updates, deletes, resyncs, replaces;

    pthread_mutex_t qmu; /* the queue, the thread's state, synced */
    pthread_cond_t qcv;  /* to the informer's thread: work or stop */
    pthread_cond_t dcv;  /* from it: applied more, synced, stopped */
    qitem *head, *tail;
    size_t qlen;
    uint64_t enqueued, applied;
    bool running, stopping, started, synced;
    pthread_t thread;
};

/* ------------------------------------------------------------------ entries */

/* Reused across the entries built by one apply: the printed JSON and the
 * index values, so that building an entry allocates only the entry. */
typedef struct scratch {
    char *json;
    size_t cap;
    csl_buf vals; /* per index: "v1\0v2\0\0" */
    size_t *off;  /* where each index's values start in vals */
} scratch;

static void scratch_init(scratch *s)
{
    memset(s, 0, sizeof *s);
    csl_buf_init(&s->vals);
}

/* Frees and empties: safe twice. */
static void scratch_free(scratch *s)
{
    free(s->json);
    free(s->off);
    csl_buf_free(&s->vals);
    scratch_init(s);
}

typedef struct value_sink {
    csl_buf *b;
    size_t start; /* this index's values begin here */
} value_sink;

static void sink_emit(void *ctx, const char *value)
{
    value_sink *s = ctx;
    if (!value || !*value) return;
    /* Values are few per object: a linear check for duplicates is enough. */
    for (size_t off = s->start; off < s->b->len; off += strlen(s->b->data + off) + 1)
        if (strcmp(s->b->data + off, value) == 0) return;
    csl_buf_append(s->b, value, strlen(value) + 1);
}

static void entry_free(entry *e)
{
    free(e);
}

/* Prints obj compactly into s->json, growing it as needed. Returns the
 * length, or -1 on allocation failure. */
static long print_compact(const cJSON *obj, scratch *s)
{
    if (!s->json) {
        s->cap = 16384;
        if (!(s->json = malloc(s->cap))) return -1;
    }
    /* cJSON asks for a few bytes of slack beyond the text. */
    while (!cJSON_PrintPreallocated((cJSON *)obj, s->json, (int)s->cap - 8, 0)) {
        if (s->cap > (size_t)1 << 30) return -1;
        char *p = realloc(s->json, s->cap * 2);
        if (!p) return -1;
        s->json = p;
        s->cap *= 2;
    }
    return (long)strlen(s->json);
}

/* Builds the entry for obj, in one allocation: NULL when obj has no name
 * (logged) or on allocation failure (logged). */
static entry *entry_new(csl_informer *inf, const cJSON *obj, scratch *s)
{
    const char *name = csl_kube_obj_name(obj);
    if (!name || !*name) {
        csl_log(CSL_LOG_WARN, "informer: object without metadata.name ignored", "informer",
                inf->name, NULL);
        return NULL;
    }
    char key[512];
    csl_kube_obj_key(obj, key, sizeof key);
    const char *uid = csl_kube_obj_uid(obj);
    const char *rv = csl_kube_obj_rv(obj);
    if (!uid) uid = "";
    if (!rv) rv = "";
    long jl = print_compact(obj, s);
    if (jl < 0) goto oom;
    if (inf->nindexes && !s->off && !(s->off = calloc(inf->nindexes, sizeof *s->off))) goto oom;
    csl_buf_reset(&s->vals);
    for (size_t i = 0; i < inf->nindexes; i++) {
        value_sink vs = {&s->vals, s->vals.len};
        s->off[i] = s->vals.len;
        inf->indexes[i].fn(obj, sink_emit, &vs, inf->indexes[i].ctx);
        csl_buf_putc(&s->vals, '\0');
    }
    if (s->vals.oom) goto oom;
    size_t pl = inf->nindexes * sizeof(char *);
    size_t kl = strlen(key) + 1, ul = strlen(uid) + 1, rl = strlen(rv) + 1;
    entry *e = malloc(sizeof *e + pl + kl + ul + rl + (size_t)jl + 1 + s->vals.len);
    if (!e) goto oom;
    char *p = e->blob + pl;
    e->idx = inf->nindexes ? (const char **)(void *)e->blob : NULL;
    e->key = memcpy(p, key, kl);
    e->uid = memcpy(p += kl, uid, ul);
    e->rv = memcpy(p += ul, rv, rl);
    e->json = memcpy(p += rl, s->json, (size_t)jl + 1);
    e->json_len = (size_t)jl;
    p += jl + 1;
    if (s->vals.len) memcpy(p, s->vals.data, s->vals.len);
    for (size_t i = 0; i < inf->nindexes; i++) e->idx[i] = p + s->off[i];
    return e;
oom:
    csl_log(CSL_LOG_ERROR, "informer: out of memory caching an object", "informer", inf->name,
            "object", key, NULL);
    return NULL;
}

static cJSON *entry_parse(const entry *e)
{
    return cJSON_ParseWithLength(e->json, e->json_len);
}

/* Index maintenance; called with the write lock held. An allocation
 * failure leaves the object out of that index (logged). */
static void index_add(csl_informer *inf, entry *e)
{
    for (size_t i = 0; e->idx && i < inf->nindexes; i++) {
        index_def *ix = &inf->indexes[i];
        for (const char *v = e->idx[i]; *v; v += strlen(v) + 1) {
            bucket *b = map_get(&ix->values, v);
            if (!b) {
                b = calloc(1, sizeof *b);
                if (b) b->value = strdup(v);
                if (!b || !b->value || map_put(&ix->values, b->value, b) < 0) {
                    if (b) free(b->value);
                    free(b);
                    goto oom;
                }
            }
            if (map_put(&b->keys, e->key, e) < 0) goto oom;
        }
    }
    return;
oom:
    csl_log(CSL_LOG_ERROR, "informer: out of memory indexing an object", "informer", inf->name,
            "object", e->key, NULL);
}

static void index_remove(csl_informer *inf, entry *e)
{
    for (size_t i = 0; e->idx && i < inf->nindexes; i++) {
        index_def *ix = &inf->indexes[i];
        for (const char *v = e->idx[i]; *v; v += strlen(v) + 1) {
            bucket *b = map_get(&ix->values, v);
            if (!b) continue;
            map_del(&b->keys, e->key);
            if (b->keys.len == 0) {
                map_del(&ix->values, b->value);
                map_free(&b->keys);
                free(b->value);
                free(b);
            }
        }
    }
}

static void index_clear(index_def *ix)
{
    MAP_FOREACH(&ix->values, sl)
    {
        bucket *b = sl->val;
        map_free(&b->keys);
        free(b->value);
        free(b);
    }
    map_free(&ix->values);
}

/* ------------------------------------------------------------------ delivery */

static void deliver_add(csl_informer *inf, const cJSON *obj)
{
    for (size_t i = 0; i < inf->nhandlers; i++)
        if (inf->handlers[i].on_add) inf->handlers[i].on_add(obj, inf->handlers[i].ctx);
}

static bool wants_old(const csl_informer *inf, bool update)
{
    for (size_t i = 0; i < inf->nhandlers; i++)
        if (update ? inf->handlers[i].on_update != NULL : inf->handlers[i].on_delete != NULL)
            return true;
    return false;
}

static void deliver_update(csl_informer *inf, const cJSON *old_obj, const cJSON *new_obj)
{
    for (size_t i = 0; i < inf->nhandlers; i++)
        if (inf->handlers[i].on_update)
            inf->handlers[i].on_update(old_obj, new_obj, inf->handlers[i].ctx);
}

static void deliver_delete(csl_informer *inf, const cJSON *obj, bool unknown)
{
    for (size_t i = 0; i < inf->nhandlers; i++)
        if (inf->handlers[i].on_delete)
            inf->handlers[i].on_delete(obj, unknown, inf->handlers[i].ctx);
}

/* Parses an old entry for a handler; logs and returns NULL if it cannot. */
static cJSON *parse_old(csl_informer *inf, const entry *e)
{
    cJSON *o = entry_parse(e);
    if (!o)
        csl_log(CSL_LOG_ERROR, "informer: out of memory parsing a cached object", "informer",
                inf->name, "object", e->key, NULL);
    return o;
}

/* ------------------------------------------------------------------ applying */

static void apply_event(csl_informer *inf, csl_watch_type type, cJSON *obj)
{
    if (type == CSL_WATCH_DELETED) {
        char key[512];
        csl_kube_obj_key(obj, key, sizeof key);
        pthread_rwlock_wrlock(&inf->lock);
        entry *old = map_del(&inf->cache, key);
        if (old) {
            index_remove(inf, old);
            inf->json_bytes -= old->json_len;
        }
        inf->deletes++;
        pthread_rwlock_unlock(&inf->lock);
        deliver_delete(inf, obj, false);
        entry_free(old);
        return;
    }
    scratch sc;
    scratch_init(&sc);
    entry *e = entry_new(inf, obj, &sc);
    scratch_free(&sc);
    if (!e) return;
    pthread_rwlock_wrlock(&inf->lock);
    entry *old = map_get(&inf->cache, e->key);
    if (map_put(&inf->cache, e->key, e) < 0) {
        pthread_rwlock_unlock(&inf->lock);
        csl_log(CSL_LOG_ERROR, "informer: out of memory caching an object", "informer", inf->name,
                "object", e->key, NULL);
        entry_free(e);
        return;
    }
    if (old) {
        index_remove(inf, old);
        inf->json_bytes -= old->json_len;
        inf->updates++;
    } else {
        inf->adds++;
    }
    index_add(inf, e);
    inf->json_bytes += e->json_len;
    pthread_rwlock_unlock(&inf->lock);
    if (old) {
        bool want = wants_old(inf, true);
        cJSON *o = want ? parse_old(inf, old) : NULL;
        if (o || !want) deliver_update(inf, o, obj);
        cJSON_Delete(o);
        entry_free(old);
    } else {
        deliver_add(inf, obj);
    }
}

static int cmp_entry_key(const void *a, const void *b)
{
    return strcmp((*(entry *const *)a)->key, (*(entry *const *)b)->key);
}

static void set_synced(csl_informer *inf)
{
    pthread_mutex_lock(&inf->qmu);
    inf->synced = true;
    pthread_cond_broadcast(&inf->dcv);
    pthread_mutex_unlock(&inf->qmu);
}

static bool wants_add(const csl_informer *inf)
{
    for (size_t i = 0; i < inf->nhandlers; i++)
        if (inf->handlers[i].on_add) return true;
    return false;
}

/* The whole collection after a (re)list: adds for new keys, updates for
 * changed resourceVersions, deletes (final state unknown) for vanished
 * keys; an unchanged object is swapped for its fresh entry silently.
 *
 * Each item's parsed tree is freed as soon as its entry is built, and the
 * handlers get objects parsed again from the entries, one at a time: a
 * parsed List costs several times its text, and freeing it progressively
 * lets the entries reuse its memory instead of growing the heap past it.
 * A List is the one large transient an informer has, so once it is applied
 * the allocator is asked to hand free pages back (glibc malloc_trim). */
static void apply_replace(csl_informer *inf, cJSON *items)
{
    size_t n = (size_t)cJSON_GetArraySize(items);
    entry **fresh = calloc(n ? n : 1, sizeof *fresh);
    entry **prev = calloc(n ? n : 1, sizeof *prev);
    strmap next = {NULL, 0, 0};
    entry **gone = NULL;
    size_t ngone = 0, m = 0;
    scratch sc;
    scratch_init(&sc);
    if (!fresh || !prev) goto oom;
    while (items->child) {
        cJSON *it = cJSON_DetachItemViaPointer(items, items->child);
        entry *e = entry_new(inf, it, &sc);
        cJSON_Delete(it);
        if (!e) continue;
        if (map_get(&next, e->key)) { /* a duplicate key: keep the first */
            entry_free(e);
            continue;
        }
        if (map_put(&next, e->key, e) < 0) {
            entry_free(e);
            goto oom;
        }
        fresh[m++] = e;
    }
    scratch_free(&sc);
    cJSON_Delete(items);
    items = NULL;

    pthread_rwlock_wrlock(&inf->lock);
    gone = calloc(inf->cache.len ? inf->cache.len : 1, sizeof *gone);
    if (!gone) {
        pthread_rwlock_unlock(&inf->lock);
        goto oom;
    }
    for (size_t i = 0; i < m; i++) prev[i] = map_get(&inf->cache, fresh[i]->key);
    MAP_FOREACH(&inf->cache, sl)
    {
        if (!map_get(&next, sl->key)) gone[ngone++] = sl->val;
    }
    for (size_t i = 0; i < inf->nindexes; i++) index_clear(&inf->indexes[i]);
    map_free(&inf->cache);
    inf->cache = next;
    next = (strmap){NULL, 0, 0};
    inf->json_bytes = 0;
    for (size_t i = 0; i < m; i++) {
        index_add(inf, fresh[i]);
        inf->json_bytes += fresh[i]->json_len;
        if (!prev[i])
            inf->adds++;
        else if (strcmp(prev[i]->rv, fresh[i]->rv) != 0)
            inf->updates++;
    }
    inf->deletes += ngone;
    inf->replaces++;
    pthread_rwlock_unlock(&inf->lock);

    /* Deletes in key order, so a run is reproducible. */
    qsort(gone, ngone, sizeof *gone, cmp_entry_key);
    bool want_add = wants_add(inf), want_upd = wants_old(inf, true),
         want_del = wants_old(inf, false);
    for (size_t i = 0; i < m; i++) {
        bool changed = prev[i] && strcmp(prev[i]->rv, fresh[i]->rv) != 0;
        /* fresh[i] stays valid: only this thread frees cache entries */
        if ((!prev[i] && want_add) || (changed && want_upd)) {
            cJSON *o = entry_parse(fresh[i]);
            cJSON *old = changed ? parse_old(inf, prev[i]) : NULL;
            if (!o || (changed && !old)) {
                csl_log(CSL_LOG_ERROR, "informer: out of memory delivering a change", "informer",
                        inf->name, "object", fresh[i]->key, NULL);
            } else if (changed) {
                deliver_update(inf, old, o);
            } else {
                deliver_add(inf, o);
            }
            cJSON_Delete(o);
            cJSON_Delete(old);
        }
        entry_free(prev[i]);
    }
    for (size_t i = 0; i < ngone; i++) {
        if (want_del) {
            cJSON *o = parse_old(inf, gone[i]);
            if (o) deliver_delete(inf, o, true);
            cJSON_Delete(o);
        }
        entry_free(gone[i]);
    }
    free(gone);
    free(fresh);
    free(prev);
    set_synced(inf);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    return;
oom:
    csl_log(CSL_LOG_ERROR, "informer: out of memory applying a list; cache left as it was",
            "informer", inf->name, NULL);
    MAP_FOREACH(&next, sl) entry_free(sl->val);
    map_free(&next);
    scratch_free(&sc);
    free(gone);
    free(fresh);
    free(prev);
    cJSON_Delete(items);
}

static void apply_resync(csl_informer *inf)
{
    bool any = false;
    for (size_t i = 0; i < inf->nhandlers; i++) any = any || inf->handlers[i].on_update;
    if (!any) return;
    size_t n = 0;
    char **keys = csl_informer_keys(inf, &n);
    if (!keys) return;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = csl_informer_get(inf, keys[i]);
        if (!o) continue; /* only when deleted by a feed on another thread */
        deliver_update(inf, o, o);
        cJSON_Delete(o);
    }
    csl_informer_keys_free(keys, n);
    pthread_rwlock_wrlock(&inf->lock);
    inf->resyncs++;
    pthread_rwlock_unlock(&inf->lock);
}

static void apply_item(csl_informer *inf, qitem *q)
{
    switch (q->kind) {
    case Q_REPLACE:
        apply_replace(inf, q->obj);
        break;
    case Q_EVENT:
        apply_event(inf, q->type, q->obj);
        cJSON_Delete(q->obj);
        break;
    case Q_RESYNC:
        apply_resync(inf);
        break;
    case Q_FLUSH:
        break;
    }
    q->obj = NULL;
}

/* ------------------------------------------------------------------ the thread */

static int64_t deadline_from_ms(long ms)
{
    return csl_mono_ns() + (int64_t)ms * 1000000;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ns)
{
    int64_t left = deadline_ns - csl_mono_ns();
    if (left <= 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(left / 1000000000);
    ts.tv_nsec += (long)(left % 1000000000);
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

static void *informer_main(void *arg)
{
    csl_informer *inf = arg;
    int64_t next_resync = inf->resync_ms > 0 ? deadline_from_ms(inf->resync_ms) : 0;
    pthread_mutex_lock(&inf->qmu);
    while (!inf->stopping) {
        qitem *q = inf->head;
        if (q) {
            inf->head = q->next;
            if (!inf->head) inf->tail = NULL;
            inf->qlen--;
            pthread_mutex_unlock(&inf->qmu);
            apply_item(inf, q);
            pthread_mutex_lock(&inf->qmu);
            inf->applied = q->seq;
            free(q);
            pthread_cond_broadcast(&inf->dcv);
            continue;
        }
        if (next_resync && csl_mono_ns() >= next_resync) {
            bool synced = inf->synced;
            pthread_mutex_unlock(&inf->qmu);
            if (synced) apply_resync(inf);
            pthread_mutex_lock(&inf->qmu);
            next_resync = deadline_from_ms(inf->resync_ms);
            continue;
        }
        if (next_resync)
            timed_wait(&inf->qcv, &inf->qmu, next_resync);
        else
            pthread_cond_wait(&inf->qcv, &inf->qmu);
    }
    pthread_mutex_unlock(&inf->qmu);
    return NULL;
}

/* Queues a change; takes obj. Returns false when the thread does not run
 * (then the caller applies it itself). */
static bool enqueue(csl_informer *inf, int kind, csl_watch_type type, cJSON *obj)
{
    pthread_mutex_lock(&inf->qmu);
    if (!inf->running || inf->stopping) {
        pthread_mutex_unlock(&inf->qmu);
        return false;
    }
    qitem *q = calloc(1, sizeof *q);
    if (!q) {
        pthread_mutex_unlock(&inf->qmu);
        csl_log(CSL_LOG_ERROR, "informer: out of memory queueing a change; change lost", "informer",
                inf->name, NULL);
        cJSON_Delete(obj);
        return true;
    }
    q->kind = kind;
    q->type = type;
    q->obj = obj;
    q->seq = ++inf->enqueued;
    if (inf->tail)
        inf->tail->next = q;
    else
        inf->head = q;
    inf->tail = q;
    inf->qlen++;
    pthread_cond_signal(&inf->qcv);
    pthread_mutex_unlock(&inf->qmu);
    return true;
}

static void on_reflector_replace(cJSON *items, const char *rv, void *ctx)
{
    csl_informer *inf = ctx;
    if (!enqueue(inf, Q_REPLACE, CSL_WATCH_ADDED, items)) cJSON_Delete(items);
}

static void on_reflector_event(csl_watch_type type, cJSON *obj, void *ctx)
{
    csl_informer *inf = ctx;
    if (!enqueue(inf, Q_EVENT, type, obj)) cJSON_Delete(obj);
}

/* ------------------------------------------------------------------ life */

csl_informer *csl_informer_new(csl_kube *k, const csl_informer_options *opt, char *err,
                               size_t errsz)
{
    if (!opt || opt->resync_period_ms < 0) {
        if (err && errsz) snprintf(err, errsz, "informer: resync_period_ms must be >= 0");
        return NULL;
    }
    csl_informer *inf = calloc(1, sizeof *inf);
    if (!inf) goto oom;
    inf->k = k;
    inf->resync_ms = opt->resync_period_ms;
    const char *name = opt->reflector.name && *opt->reflector.name ? opt->reflector.name
                       : opt->reflector.resource.resource ? opt->reflector.resource.resource
                                                          : "informer";
    inf->name = strdup(name);
    if (!inf->name) goto oom;
    if (k) {
        csl_reflector_handler h = {on_reflector_replace, on_reflector_event, inf};
        inf->refl = csl_reflector_new(k, &opt->reflector, &h, err, errsz);
        if (!inf->refl) {
            free(inf->name);
            free(inf);
            return NULL;
        }
    }
    pthread_rwlock_init(&inf->lock, NULL);
    pthread_mutex_init(&inf->qmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&inf->qcv, &ca);
    pthread_cond_init(&inf->dcv, &ca);
    pthread_condattr_destroy(&ca);
    return inf;
oom:
    if (inf) free(inf->name);
    free(inf);
    if (err && errsz) snprintf(err, errsz, "informer: out of memory");
    return NULL;
}

static bool started(csl_informer *inf)
{
    pthread_mutex_lock(&inf->qmu);
    bool s = inf->started;
    pthread_mutex_unlock(&inf->qmu);
    return s;
}

int csl_informer_add_handler(csl_informer *inf, const csl_informer_handler *h)
{
    if (!h || started(inf)) return -1;
    csl_informer_handler *hs = realloc(inf->handlers, (inf->nhandlers + 1) * sizeof *hs);
    if (!hs) return -1;
    inf->handlers = hs;
    hs[inf->nhandlers++] = *h;
    return 0;
}

static void index_label_fn(const cJSON *obj, csl_index_emit emit, void *sink, void *ctx)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels, (const char *)ctx);
    if (cJSON_IsString(v)) emit(sink, v->valuestring);
}

static void index_owner_fn(const cJSON *obj, csl_index_emit emit, void *sink, void *ctx)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences");
    const cJSON *ref;
    cJSON_ArrayForEach(ref, refs)
    {
        const cJSON *uid = cJSON_GetObjectItemCaseSensitive(ref, "uid");
        if (cJSON_IsString(uid) && *uid->valuestring) emit(sink, uid->valuestring);
    }
}

static int index_define(csl_informer *inf, const char *name, csl_index_fn fn, void *ctx,
                        const char *label_key)
{
    if (!name || !*name || !fn || started(inf) || inf->cache.len) return -1;
    for (size_t i = 0; i < inf->nindexes; i++)
        if (strcmp(inf->indexes[i].name, name) == 0) return -1;
    index_def *ix = realloc(inf->indexes, (inf->nindexes + 1) * sizeof *ix);
    if (!ix) return -1;
    inf->indexes = ix;
    index_def d = {0};
    d.name = strdup(name);
    d.label_key = label_key ? strdup(label_key) : NULL;
    if (!d.name || (label_key && !d.label_key)) {
        free(d.name);
        free(d.label_key);
        return -1;
    }
    d.fn = fn;
    d.ctx = label_key ? d.label_key : ctx;
    ix[inf->nindexes++] = d;
    return 0;
}

int csl_informer_index_label(csl_informer *inf, const char *index, const char *label_key)
{
    if (!label_key || !*label_key) return -1;
    return index_define(inf, index, index_label_fn, NULL, label_key);
}

int csl_informer_index_owner(csl_informer *inf, const char *index)
{
    return index_define(inf, index, index_owner_fn, NULL, NULL);
}

int csl_informer_index_add(csl_informer *inf, const char *index, csl_index_fn fn, void *ctx)
{
    return index_define(inf, index, fn, ctx, NULL);
}

int csl_informer_start(csl_informer *inf, char *err, size_t errsz)
{
    pthread_mutex_lock(&inf->qmu);
    if (inf->running) {
        pthread_mutex_unlock(&inf->qmu);
        if (err && errsz) snprintf(err, errsz, "informer %s: already running", inf->name);
        return -1;
    }
    inf->stopping = false;
    int rc = pthread_create(&inf->thread, NULL, informer_main, inf);
    if (rc != 0) {
        pthread_mutex_unlock(&inf->qmu);
        if (err && errsz)
            snprintf(err, errsz, "informer %s: cannot create a thread: %s", inf->name,
                     strerror(rc));
        return -1;
    }
    inf->running = inf->started = true;
    pthread_mutex_unlock(&inf->qmu);
    if (inf->refl && csl_reflector_start(inf->refl) < 0) {
        csl_informer_stop(inf);
        if (err && errsz)
            snprintf(err, errsz, "informer %s: cannot start the reflector", inf->name);
        return -1;
    }
    return 0;
}

void csl_informer_stop(csl_informer *inf)
{
    if (inf->refl) csl_reflector_stop(inf->refl);
    pthread_mutex_lock(&inf->qmu);
    if (!inf->running) {
        pthread_mutex_unlock(&inf->qmu);
        return;
    }
    inf->stopping = true;
    pthread_cond_broadcast(&inf->qcv);
    pthread_mutex_unlock(&inf->qmu);
    pthread_join(inf->thread, NULL);
    pthread_mutex_lock(&inf->qmu);
    inf->running = false;
    qitem *q = inf->head;
    inf->head = inf->tail = NULL;
    inf->qlen = 0;
    inf->applied = inf->enqueued;
    pthread_cond_broadcast(&inf->dcv);
    pthread_mutex_unlock(&inf->qmu);
    while (q) {
        qitem *next = q->next;
        cJSON_Delete(q->obj);
        free(q);
        q = next;
    }
}

void csl_informer_free(csl_informer *inf)
{
    if (!inf) return;
    csl_informer_stop(inf);
    csl_reflector_free(inf->refl);
    MAP_FOREACH(&inf->cache, sl) entry_free(sl->val);
    map_free(&inf->cache);
    for (size_t i = 0; i < inf->nindexes; i++) {
        index_clear(&inf->indexes[i]);
        free(inf->indexes[i].name);
        free(inf->indexes[i].label_key);
    }
    free(inf->indexes);
    free(inf->handlers);
    pthread_rwlock_destroy(&inf->lock);
    pthread_mutex_destroy(&inf->qmu);
    pthread_cond_destroy(&inf->qcv);
    pthread_cond_destroy(&inf->dcv);
    free(inf->name);
    free(inf);
}

/* ------------------------------------------------------------------ sync */

bool csl_informer_has_synced(csl_informer *inf)
{
    pthread_mutex_lock(&inf->qmu);
    bool s = inf->synced;
    pthread_mutex_unlock(&inf->qmu);
    return s;
}

bool csl_informer_wait_synced(csl_informer *inf, long timeout_ms)
{
    int64_t deadline = timeout_ms >= 0 ? deadline_from_ms(timeout_ms) : 0;
    pthread_mutex_lock(&inf->qmu);
    while (!inf->synced && inf->running && !inf->stopping) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&inf->dcv, &inf->qmu);
        } else {
            if (csl_mono_ns() >= deadline) break;
            timed_wait(&inf->dcv, &inf->qmu, deadline);
        }
    }
    bool s = inf->synced;
    pthread_mutex_unlock(&inf->qmu);
    return s;
}

/* ------------------------------------------------------------------ reads */

cJSON *csl_informer_get(csl_informer *inf, const char *key)
{
    if (!key) return NULL;
    pthread_rwlock_rdlock(&inf->lock);
    const entry *e = map_get(&inf->cache, key);
    cJSON *o = e ? entry_parse(e) : NULL;
    pthread_rwlock_unlock(&inf->lock);
    return o;
}

bool csl_informer_get_rv(csl_informer *inf, const char *key, char *out, size_t outsz)
{
    if (!key) return false;
    pthread_rwlock_rdlock(&inf->lock);
    const entry *e = map_get(&inf->cache, key);
    if (e && outsz) snprintf(out, outsz, "%s", e->rv);
    pthread_rwlock_unlock(&inf->lock);
    return e != NULL;
}

size_t csl_informer_len(csl_informer *inf)
{
    pthread_rwlock_rdlock(&inf->lock);
    size_t n = inf->cache.len;
    pthread_rwlock_unlock(&inf->lock);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copies the keys of m (read lock held by the caller), sorted. */
static char **copy_keys(const strmap *m, size_t *n)
{
    char **keys = calloc(m->len ? m->len : 1, sizeof *keys);
    *n = 0;
    if (!keys) return NULL;
    size_t k = 0;
    MAP_FOREACH(m, sl)
    {
        if (!(keys[k] = strdup(sl->key))) {
            csl_informer_keys_free(keys, k);
            return NULL;
        }
        k++;
    }
    qsort(keys, k, sizeof *keys, cmp_str);
    *n = k;
    return keys;
}

char **csl_informer_keys(csl_informer *inf, size_t *n)
{
    pthread_rwlock_rdlock(&inf->lock);
    char **keys = copy_keys(&inf->cache, n);
    pthread_rwlock_unlock(&inf->lock);
    return keys;
}

char **csl_informer_by_index(csl_informer *inf, const char *index, const char *value, size_t *n)
{
    *n = 0;
    if (!index || !value) return NULL;
    pthread_rwlock_rdlock(&inf->lock);
    char **keys = NULL;
    for (size_t i = 0; i < inf->nindexes; i++) {
        if (strcmp(inf->indexes[i].name, index) != 0) continue;
        const bucket *b = map_get(&inf->indexes[i].values, value);
        static const strmap empty = {NULL, 0, 0};
        keys = copy_keys(b ? &b->keys : &empty, n);
        break;
    }
    pthread_rwlock_unlock(&inf->lock);
    return keys;
}

void csl_informer_keys_free(char **keys, size_t n)
{
    if (!keys) return;
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

void csl_informer_stats_get(csl_informer *inf, csl_informer_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&inf->lock);
    out->objects = inf->cache.len;
    out->json_bytes = inf->json_bytes;
    out->adds = inf->adds;
    out->updates = inf->updates;
    out->deletes = inf->deletes;
    out->resyncs = inf->resyncs;
    out->replaces = inf->replaces;
    pthread_rwlock_unlock(&inf->lock);
    pthread_mutex_lock(&inf->qmu);
    out->queued = inf->qlen;
    pthread_mutex_unlock(&inf->qmu);
}

csl_reflector *csl_informer_reflector(csl_informer *inf)
{
    return inf->refl;
}

/* ------------------------------------------------------------------ feeding */

int csl_informer_feed_replace(csl_informer *inf, cJSON *items)
{
    if (!cJSON_IsArray(items)) {
        cJSON_Delete(items);
        return -1;
    }
    if (!enqueue(inf, Q_REPLACE, CSL_WATCH_ADDED, items)) apply_replace(inf, items);
    return 0;
}

int csl_informer_feed_event(csl_informer *inf, csl_watch_type type, cJSON *obj)
{
    if (!cJSON_IsObject(obj) ||
        (type != CSL_WATCH_ADDED && type != CSL_WATCH_MODIFIED && type != CSL_WATCH_DELETED)) {
        cJSON_Delete(obj);
        return -1;
    }
    if (!enqueue(inf, Q_EVENT, type, obj)) {
        apply_event(inf, type, obj);
        cJSON_Delete(obj);
    }
    return 0;
}

void csl_informer_resync(csl_informer *inf)
{
    if (!enqueue(inf, Q_RESYNC, CSL_WATCH_ADDED, NULL)) apply_resync(inf);
}

void csl_informer_flush(csl_informer *inf)
{
    pthread_mutex_lock(&inf->qmu);
    uint64_t target = inf->enqueued;
    while (inf->running && inf->applied < target) pthread_cond_wait(&inf->dcv, &inf->qmu);
    pthread_mutex_unlock(&inf->qmu);
}
