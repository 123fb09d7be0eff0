/* Recognising the watch's echo of the operator's own writes (echo.h). */
#include "echo.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024
#define RING 4 /* own versions remembered per object */
#define HELD 4 /* updates held during a write; more: the object is queued */

typedef struct entry {
    struct entry *next;
    unsigned inflight;
    unsigned own[RING]; /* hashes of versions our writes produced; 0 = none */
    unsigned held[HELD];
    unsigned n_held;
    bool dirty; /* an update we cannot match came in: queue at write end */
    char key[];
} entry;

struct op_echo {
    pthread_mutex_t mu;
    unsigned n;
    entry *b[BUCKETS];
};

/* FNV-1a of a resourceVersion, never 0. A collision could only make one
 * update look like our own echo; the periodic resync still passes over the
 * object. */
static unsigned rv_hash(const char *rv)
{
    uint32_t h = 2166136261u;
    for (; *rv; rv++) h = (h ^ (unsigned char)*rv) * 16777619u;
    return h ? h : 1;
}

static size_t bucket(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    while (*key) h = (h ^ (unsigned char)*key++) * 1099511628211ULL;
    return (size_t)(h % BUCKETS);
}

op_echo *op_echo_new(void)
{
    op_echo *e = calloc(1, sizeof *e);
    if (e) pthread_mutex_init(&e->mu, NULL);
    return e;
}

void op_echo_free(op_echo *e)
{
    if (!e) return;
    for (size_t i = 0; i < BUCKETS; i++)
        for (entry *x = e->b[i], *n; x; x = n) {
            n = x->next;
            free(x);
        }
    pthread_mutex_destroy(&e->mu);
    free(e);
}

/* The entry of key; created when create (NULL when absent or out of
 * memory). Called with mu held. */
static entry **find(op_echo *e, const char *key)
{
    entry **pp = &e->b[bucket(key)];
    while (*pp && strcmp((*pp)->key, key) != 0) pp = &(*pp)->next;
    return pp;
}

static entry *get(op_echo *e, const char *key, bool create)
{
    entry **pp = find(e, key);
    if (*pp || !create) return *pp;
    size_t len = strlen(key);
    entry *x = calloc(1, sizeof *x + len + 1);
    if (!x) return NULL;
    memcpy(x->key, key, len + 1);
    *pp = x;
    e->n++;
    return x;
}

/* Drops key's entry once nothing is pending. Called with mu held. */
static void settle(op_echo *e, const char *key)
{
    entry **pp = find(e, key), *x = *pp;
    if (!x || x->inflight || x->n_held || x->dirty) return;
    for (int i = 0; i < RING; i++)
        if (x->own[i]) return;
    *pp = x->next;
    free(x);
    e->n--;
}

/* Removes h from x's own versions; true when it was there. */
static bool take_own(entry *x, unsigned h)
{
    for (int i = 0; i < RING; i++)
        if (x->own[i] == h) {
            x->own[i] = 0;
            return true;
        }
    return false;
}

void op_echo_write_begin(op_echo *e, const char *key)
{
    pthread_mutex_lock(&e->mu);
    entry *x = get(e, key, true);
    if (x) x->inflight++;
    pthread_mutex_unlock(&e->mu);
}

bool op_echo_write_end(op_echo *e, const char *key, const char *rv)
{
    bool queue = false;
    pthread_mutex_lock(&e->mu);
    entry *x = get(e, key, false);
    if (x) {
        if (x->inflight) x->inflight--;
        if (rv && *rv) {
            unsigned h = rv_hash(rv);
            memmove(&x->own[1], &x->own[0], (RING - 1) * sizeof x->own[0]);
            x->own[0] = h;
        }
        if (!x->inflight) {
            for (unsigned i = 0; i < x->n_held; i++)
                if (!take_own(x, x->held[i])) x->dirty = true;
            queue = x->dirty;
            x->n_held = 0;
            x->dirty = false;
        }
        settle(e, key);
    }
    pthread_mutex_unlock(&e->mu);
    return queue;
}

bool op_echo_update(op_echo *e, const char *key, const char *rv)
{
    if (!rv || !*rv) return true;
    unsigned h = rv_hash(rv);
    bool queue = true;
    pthread_mutex_lock(&e->mu);
    entry *x = get(e, key, false);
    if (x) {
        if (take_own(x, h)) {
            queue = false;
        } else if (x->inflight) {
            if (x->n_held < HELD)
                x->held[x->n_held++] = h;
            else
                x->dirty = true;
            queue = false;
        }
        settle(e, key);
    }
    pthread_mutex_unlock(&e->mu);
    return queue;
}

void op_echo_forget(op_echo *e, const char *key)
{
    pthread_mutex_lock(&e->mu);
    entry **pp = find(e, key), *x = *pp;
    if (x && !x->inflight) {
        *pp = x->next;
        free(x);
        e->n--;
    }
    pthread_mutex_unlock(&e->mu);
}

unsigned op_echo_size(op_echo *e)
{
    pthread_mutex_lock(&e->mu);
    unsigned n = e->n;
    pthread_mutex_unlock(&e->mu);
    return n;
}
