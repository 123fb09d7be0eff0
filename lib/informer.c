/* informer.c — a cache of Kubernetes objects kept by a reflector, with
 * handlers, resync and indexes (see csl/informer.h).
 *
 * One idea: an entry is one allocation holding the object's compact JSON
 * text and the strings lookups need (key, resourceVersion), plus its
 * index values; the parsed tree exists only while a change is delivered or a
 * reader holds its copy. That keeps the cost of a cached object close to
 * the size of its JSON.
 *
 * And the JSON is stored as a delta: objects of one kind are alike (the same
 * keys, the same spec, the same four conditions…), so each entry's text is
 * LZ77-coded against a reference object of the same informer, a shared,
 * counted copy of one cached object's text. A 3.2 KB CloudServer (1.5 KB
 * of it without managedFields) costs under 200 bytes that way. An object that codes badly against
 * the current reference becomes the reference itself, so an entry never costs more than its plain
 * text.
 *
 * Changes arrive on a queue (from the reflector's thread, or feed calls)
 * and are applied by the informer's own thread: build the new entry with no
 * lock held, swap it in under the write lock, release the lock, then call
 * the handlers with the new object and a copy parsed from the old entry,
 * and free the old entry last. Readers take the read lock only to find an
 * entry and parse (or copy) it. Entries and references are made and freed
 * only by the thread that applies changes. */
#include "csl/informer.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"
#include "csl/rng.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
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

/* A reference object: the compact JSON text entries are coded against.
 * users counts those entries plus the informer while the reference is in
 * one of its slots; changed only by the applying thread. */
#define REF_SLOTS 4
/* An object codes "well" in at most 1/REF_RATIO of its text, or in at most
 * REF_SMALL bytes: what differs between two objects of a kind (uid, name,
 * resourceVersion, times, ids: random or unique text) takes 100-200 bytes
 * however alike they are, which is over an eighth of a small object. */
#define REF_RATIO 8
#define REF_SMALL 256
typedef struct reftext {
    size_t users;
    size_t len;
    char text[];
} reftext;

/* One allocation: this header, then (in blob) the index value pointers,
 * key, resourceVersion, the coded JSON and index values. */
typedef struct entry {
    const char *key, *rv;
    const unsigned char *code; /* the JSON text, coded against ref */
    reftext *ref;
    size_t json_len, code_len;
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

    bool strip_managed_fields;

    pthread_rwlock_t lock; /* the cache, indexes, json_bytes and counters */
    strmap cache;          /* key → entry */
    size_t json_bytes;
    /* The applying thread's: the references new entries are coded against
     * (see code_text), and the scratch kept between watch events. */
    struct reftext *refs[REF_SLOTS];
    struct scratch *sc;
    atomic_size_t stored_bytes; /* entries' codes and live references' text */
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

/* ------------------------------------------------------------------ delta coding */

/* LZ77 over the window "reference text, then the text being coded": the
 * code is a run of sequences, each varint(literal count), the literals,
 * varint(match length), varint(distance back from the current position in
 * the window), ended by a match length of 0. Matches are at least 4 bytes
 * and are found through hash chains of every 4-byte position. No entropy
 * stage: the reference carries the redundancy between objects, and what is
 * left (uids, names, times) is mostly unique anyway. */
#define LZ_MIN_MATCH 4
#define LZ_HASH_BITS 12
#define LZ_CHAIN_DEPTH 32
#define LZ_NONE UINT32_MAX

typedef struct lz_scratch {
    unsigned char *win; /* reference text then source text */
    uint32_t *prev;     /* per window position: the previous one of its hash */
    size_t win_cap;
    unsigned char *out;
    size_t out_cap;
    uint32_t head[1u << LZ_HASH_BITS];
} lz_scratch;

static uint32_t lz_hash(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return (v * 2654435761u) >> (32 - LZ_HASH_BITS);
}

static size_t put_varint(unsigned char *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

static bool get_varint(const unsigned char *in, size_t len, size_t *pos, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
        unsigned char b = in[(*pos)++];
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return true;
        }
    }
    return false;
}

/* Codes src against dict into z->out. Returns the code's length, or -1 on
 * allocation failure (or a window past 4 GiB). */
static long lz_encode(const char *dict, size_t dl, const char *src, size_t sl, lz_scratch *z)
{
    size_t n = dl + sl;
    if (n >= LZ_NONE) return -1;
    if (n > z->win_cap) {
        size_t cap = n < 4096 ? 4096 : n;
        unsigned char *w = realloc(z->win, cap);
        if (!w) return -1;
        z->win = w;
        uint32_t *pv = realloc(z->prev, cap * sizeof *pv);
        if (!pv) return -1;
        z->prev = pv;
        z->win_cap = cap;
    }
    /* All literals: one varint for the count, the text, a 0. */
    size_t need = sl + 16;
    if (need > z->out_cap) {
        unsigned char *o = realloc(z->out, need);
        if (!o) return -1;
        z->out = o;
        z->out_cap = need;
    }
    unsigned char *w = z->win, *out = z->out;
    memcpy(w, dict, dl);
    memcpy(w + dl, src, sl);
    memset(z->head, 0xff, sizeof z->head);
#define LZ_INSERT(v)                                                                               \
    do {                                                                                           \
        uint32_t h_ = lz_hash(w + (v));                                                            \
        z->prev[v] = z->head[h_];                                                                  \
        z->head[h_] = (uint32_t)(v);                                                               \
    } while (0)
    for (size_t v = 0; v < dl && v + LZ_MIN_MATCH <= n; v++) LZ_INSERT(v);
    size_t i = dl, lit = dl, o = 0;
    while (i + LZ_MIN_MATCH <= n) {
        size_t best = 0, at = 0;
        int depth = 0;
        for (uint32_t c = z->head[lz_hash(w + i)]; c != LZ_NONE && depth < LZ_CHAIN_DEPTH;
             c = z->prev[c], depth++) {
            if (w[c + best] != w[i + best]) continue;
            size_t len = 0;
            while (i + len < n && w[c + len] == w[i + len]) len++;
            if (len > best) {
                best = len;
                at = c;
                if (i + len == n) break;
            }
        }
        if (best < LZ_MIN_MATCH) {
            LZ_INSERT(i);
            i++;
            continue;
        }
        /* Room for the literals and three varints; a short match far back
         * can cost more than the text it stands for, so the code may
         * outgrow the first guess. */
        if (o + (i - lit) + 3 * 10 > z->out_cap) {
            size_t cap = z->out_cap * 2 + (i - lit) + 32;
            unsigned char *p = realloc(z->out, cap);
            if (!p) return -1;
            z->out = out = p;
            z->out_cap = cap;
        }
        o += put_varint(out + o, i - lit);
        memcpy(out + o, w + lit, i - lit);
        o += i - lit;
        o += put_varint(out + o, best);
        o += put_varint(out + o, i - at);
        for (size_t k = 0; k < best && i + k + LZ_MIN_MATCH <= n; k++) LZ_INSERT(i + k);
        i += best;
        lit = i;
    }
#undef LZ_INSERT
    if (o + (n - lit) + 2 * 10 > z->out_cap) {
        size_t cap = o + (n - lit) + 32;
        unsigned char *p = realloc(z->out, cap);
        if (!p) return -1;
        z->out = out = p;
        z->out_cap = cap;
    }
    o += put_varint(out + o, n - lit);
    memcpy(out + o, w + lit, n - lit);
    o += n - lit;
    out[o++] = 0;
    return (long)o;
}

/* Decodes code (against dict) into out, which holds exactly ol bytes.
 * False when the code is not well formed or does not give ol bytes. */
static bool lz_decode(const char *dict, size_t dl, const unsigned char *code, size_t cl, char *out,
                      size_t ol)
{
    size_t p = 0, o = 0;
    for (;;) {
        uint64_t lit, len, dist;
        if (!get_varint(code, cl, &p, &lit) || lit > ol - o || lit > cl - p) return false;
        memcpy(out + o, code + p, lit);
        o += lit;
        p += lit;
        if (!get_varint(code, cl, &p, &len)) return false;
        if (len == 0) return o == ol;
        if (!get_varint(code, cl, &p, &dist) || dist == 0 || dist > dl + o || len > ol - o)
            return false;
        size_t v = dl + o - dist;
        if (v + len <= dl) { /* wholly in the reference */
            memcpy(out + o, dict + v, len);
            o += len;
            continue;
        }
        for (uint64_t k = 0; k < len; k++, v++) out[o++] = v < dl ? dict[v] : out[v - dl];
    }
}

/* ------------------------------------------------------------------ entries */

/* Reused across the entries built by one apply (or, for watch events, by
 * the applying thread until it grows large): the printed JSON, the coder's
 * buffers and the index values, so that building an entry allocates only
 * the entry. */
typedef struct scratch {
    char *json;
    size_t cap;
    csl_buf vals; /* per index: "v1\0v2\0\0" */
    size_t *off;  /* where each index's values start in vals */
    lz_scratch *lz;
} scratch;

/* Beyond this, the scratch kept between watch events is freed after each. */
#define SCRATCH_KEEP (64 * 1024)

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
    if (s->lz) {
        free(s->lz->win);
        free(s->lz->prev);
        free(s->lz->out);
        free(s->lz);
    }
    scratch_init(s);
}

static bool scratch_large(const scratch *s)
{
    return s->cap > SCRATCH_KEEP || s->vals.cap > SCRATCH_KEEP ||
           (s->lz && (s->lz->win_cap > SCRATCH_KEEP || s->lz->out_cap > SCRATCH_KEEP));
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

static reftext *ref_new(csl_informer *inf, const char *text, size_t len)
{
    reftext *r = malloc(sizeof *r + len + 1);
    if (!r) return NULL;
    r->users = 0;
    r->len = len;
    memcpy(r->text, text, len + 1);
    atomic_fetch_add(&inf->stored_bytes, sizeof *r + len + 1);
    return r;
}

static void ref_release(csl_informer *inf, reftext *r)
{
    if (!r || --r->users > 0) return;
    atomic_fetch_sub(&inf->stored_bytes, sizeof *r + r->len + 1);
    free(r);
}

static void entry_free(csl_informer *inf, entry *e)
{
    if (!e) return;
    atomic_fetch_sub(&inf->stored_bytes, e->code_len);
    ref_release(inf, e->ref);
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

/* Codes the text in s->json (jl bytes) against the best of the informer's
 * references into s->lz->out; returns the code's length and sets *r, or -1.
 * The references are the last REF_SLOTS objects that became one, most
 * recently useful first; the first that codes the text well (REF_RATIO,
 * REF_SMALL) is taken at once, else the best. When even the best code is
 * not good (the first object; an odd one; or a stage of the kind's life the
 * references do not show, e.g. objects now carry a status), the object
 * becomes a reference itself, its code a few bytes, and the least useful
 * reference leaves the slots (alive while entries are coded against it). */
static bool codes_well(long cl, size_t jl)
{
    return (size_t)cl <= REF_SMALL || (size_t)cl * REF_RATIO <= jl;
}

static long code_text(csl_informer *inf, scratch *s, size_t jl, reftext **r)
{
    if (!s->lz && !(s->lz = calloc(1, sizeof *s->lz))) return -1;
    long best_cl = -1, cl = -1;
    int best = -1, last = -1;
    for (int i = 0; i < REF_SLOTS && inf->refs[i]; i++) {
        cl = lz_encode(inf->refs[i]->text, inf->refs[i]->len, s->json, jl, s->lz);
        if (cl < 0) return -1;
        last = i;
        if (best < 0 || cl < best_cl) {
            best = i;
            best_cl = cl;
        }
        if (codes_well(cl, jl)) break;
    }
    if (best < 0 || !codes_well(best_cl, jl)) {
        reftext *nr = ref_new(inf, s->json, jl);
        if (!nr) return -1;
        nr->users = 1; /* the informer's slot */
        ref_release(inf, inf->refs[REF_SLOTS - 1]);
        memmove(inf->refs + 1, inf->refs, (REF_SLOTS - 1) * sizeof *inf->refs);
        inf->refs[0] = nr;
        best = 0;
        last = -1;
    } else if (best > 0) { /* most recently useful first */
        reftext *b = inf->refs[best];
        memmove(inf->refs + 1, inf->refs, (size_t)best * sizeof *inf->refs);
        inf->refs[0] = b;
        last = last == best ? 0 : -1;
    }
    *r = inf->refs[0];
    if (last == 0) return best_cl; /* s->lz->out holds that code */
    return lz_encode((*r)->text, (*r)->len, s->json, jl, s->lz);
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
    const char *rv = csl_kube_obj_rv(obj);
    if (!rv) rv = "";
    long jl = print_compact(obj, s);
    if (jl < 0) goto oom;
    reftext *r = NULL;
    long cl = code_text(inf, s, (size_t)jl, &r);
    if (cl < 0) goto oom;
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
    size_t kl = strlen(key) + 1, rl = strlen(rv) + 1;
    entry *e = malloc(sizeof *e + pl + kl + rl + (size_t)cl + s->vals.len);
    if (!e) goto oom;
    char *p = e->blob + pl;
    e->idx = inf->nindexes ? (const char **)(void *)e->blob : NULL;
    e->key = memcpy(p, key, kl);
    e->rv = memcpy(p += kl, rv, rl);
    e->code = memcpy(p += rl, s->lz->out, (size_t)cl);
    e->code_len = (size_t)cl;
    e->json_len = (size_t)jl;
    e->ref = r;
    r->users++;
    atomic_fetch_add(&inf->stored_bytes, e->code_len);
    p += cl;
    if (s->vals.len) memcpy(p, s->vals.data, s->vals.len);
    for (size_t i = 0; i < inf->nindexes; i++) e->idx[i] = p + s->off[i];
    return e;
oom:
    csl_log(CSL_LOG_ERROR, "informer: out of memory caching an object", "informer", inf->name,
            "object", key, NULL);
    return NULL;
}

/* The entry's object, parsed from its decoded text: NULL on allocation
 * failure (or a code that does not decode, which would be a bug here). */
static cJSON *entry_parse(const entry *e)
{
    char *text = malloc(e->json_len + 1);
    if (!text) return NULL;
    cJSON *o = NULL;
    if (lz_decode(e->ref->text, e->ref->len, e->code, e->code_len, text, e->json_len)) {
        text[e->json_len] = '\0';
        o = cJSON_ParseWithLength(text, e->json_len);
    } else {
        csl_log(CSL_LOG_ERROR, "informer: a cached object does not decode (a bug)", "object",
                e->key, NULL);
    }
    free(text);
    return o;
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

/* metadata.managedFields, when the informer was asked to drop them. */
static void strip(const csl_informer *inf, cJSON *obj)
{
    if (inf->strip_managed_fields)
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
                                                "managedFields");
}

/* The scratch kept between watch events (NULL when out of memory). */
static scratch *event_scratch(csl_informer *inf)
{
    if (!inf->sc && (inf->sc = malloc(sizeof *inf->sc))) scratch_init(inf->sc);
    return inf->sc;
}

static void apply_event(csl_informer *inf, csl_watch_type type, cJSON *obj)
{
    strip(inf, obj);
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
        entry_free(inf, old);
        return;
    }
    scratch *sc = event_scratch(inf);
    entry *e = sc ? entry_new(inf, obj, sc) : NULL;
    if (sc && scratch_large(sc)) scratch_free(sc);
    if (!e) return;
    pthread_rwlock_wrlock(&inf->lock);
    entry *old = map_get(&inf->cache, e->key);
    if (map_put(&inf->cache, e->key, e) < 0) {
        pthread_rwlock_unlock(&inf->lock);
        csl_log(CSL_LOG_ERROR, "informer: out of memory caching an object", "informer", inf->name,
                "object", e->key, NULL);
        entry_free(inf, e);
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
        entry_free(inf, old);
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
        strip(inf, it);
        entry *e = entry_new(inf, it, &sc);
        cJSON_Delete(it);
        if (!e) continue;
        if (map_get(&next, e->key)) { /* a duplicate key: keep the first */
            entry_free(inf, e);
            continue;
        }
        if (map_put(&next, e->key, e) < 0) {
            entry_free(inf, e);
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
        entry_free(inf, prev[i]);
    }
    for (size_t i = 0; i < ngone; i++) {
        if (want_del) {
            cJSON *o = parse_old(inf, gone[i]);
            if (o) deliver_delete(inf, o, true);
            cJSON_Delete(o);
        }
        entry_free(inf, gone[i]);
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
    MAP_FOREACH(&next, sl) entry_free(inf, sl->val);
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
    inf->strip_managed_fields = opt->strip_managed_fields;
    atomic_init(&inf->stored_bytes, 0);
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
    MAP_FOREACH(&inf->cache, sl) entry_free(inf, sl->val);
    map_free(&inf->cache);
    for (int i = 0; i < REF_SLOTS; i++) ref_release(inf, inf->refs[i]);
    if (inf->sc) scratch_free(inf->sc);
    free(inf->sc);
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
    out->stored_bytes = atomic_load(&inf->stored_bytes);
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
