/* test_informer.c — the informer's cache semantics, driven by feeding
 * changes directly (adds, updates, deletes, relist diffing, indexes,
 * resync, has_synced), then its threads (order, flush, readers during
 * writes, stop), and finally an informer over a loopback lib/httpd API
 * server whose watch answers 410, so the relist must synthesize the delete
 * of an object that vanished meanwhile. */
#include "../testutil.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/httpd.h"
#include "csl/informer.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "csl/rng.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

/* An object: ns/name at rv with optional labels "k=v,k2=v2" and owner uids
 * "u1,u2" and a zone. */
static cJSON *obj(const char *ns, const char *name, const char *rv, const char *labels,
                  const char *owners, const char *zone)
{
    char buf[1024];
    csl_buf b = CSL_BUF_INIT;
    csl_buf_printf(&b,
                   "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\","
                   "\"metadata\":{\"name\":\"%s\",\"uid\":\"uid-%s\",\"resourceVersion\":\"%s\"",
                   name, name, rv);
    if (ns) csl_buf_printf(&b, ",\"namespace\":\"%s\"", ns);
    if (labels) {
        csl_buf_puts(&b, ",\"labels\":{");
        snprintf(buf, sizeof buf, "%s", labels);
        char *save = NULL;
        bool first = true;
        for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            *eq = 0;
            csl_buf_printf(&b, "%s\"%s\":\"%s\"", first ? "" : ",", kv, eq + 1);
            first = false;
        }
        csl_buf_puts(&b, "}");
    }
    if (owners) {
        csl_buf_puts(&b, ",\"ownerReferences\":[");
        snprintf(buf, sizeof buf, "%s", owners);
        char *save = NULL;
        bool first = true;
        for (char *u = strtok_r(buf, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
            csl_buf_printf(&b, "%s{\"kind\":\"CloudServerSet\",\"name\":\"s\",\"uid\":\"%s\"}",
                           first ? "" : ",", u);
            first = false;
        }
        csl_buf_puts(&b, "]");
    }
    csl_buf_puts(&b, "}");
    csl_buf_printf(&b, ",\"spec\":{\"cpu\":2,\"memory\":\"4Gi\",\"zone\":\"%s\"}}",
                   zone ? zone : "hk-1a");
    cJSON *o = cJSON_Parse(b.data);
    csl_buf_free(&b);
    return o;
}

/* Handlers write "add k rv;", "upd k old->new;", "del k rv [unknown];". */
typedef struct rec {
    pthread_mutex_t mu;
    csl_buf log;
    csl_informer *inf;   /* when set, handlers read the cache too */
    bool saw_own_change; /* get() inside a handler saw the new rv */
    bool wrong_thread;
    pthread_t thread; /* the thread handlers must run on, when checked */
    bool check_thread;
    int calls;
} rec;

static void key_rv(const cJSON *o, char *key, size_t keysz, const char **rv)
{
    csl_kube_obj_key(o, key, keysz);
    *rv = csl_kube_obj_rv(o);
}

static void check_ctx(rec *r, const cJSON *o)
{
    if (r->check_thread && !pthread_equal(pthread_self(), r->thread)) r->wrong_thread = true;
    if (r->inf) {
        char key[256];
        csl_kube_obj_key(o, key, sizeof key);
        char rv[64];
        if (csl_informer_get_rv(r->inf, key, rv, sizeof rv) && strcmp(rv, csl_kube_obj_rv(o)) == 0)
            r->saw_own_change = true;
    }
}

static void h_add(const cJSON *o, void *ctx)
{
    rec *r = ctx;
    char key[256];
    const char *rv;
    key_rv(o, key, sizeof key, &rv);
    check_ctx(r, o);
    pthread_mutex_lock(&r->mu);
    csl_buf_printf(&r->log, "add %s %s;", key, rv);
    r->calls++;
    pthread_mutex_unlock(&r->mu);
}

static void h_update(const cJSON *old, const cJSON *new, void *ctx)
{
    rec *r = ctx;
    char key[256];
    const char *rv;
    key_rv(new, key, sizeof key, &rv);
    pthread_mutex_lock(&r->mu);
    csl_buf_printf(&r->log, "upd %s %s->%s;", key, csl_kube_obj_rv(old), rv);
    r->calls++;
    pthread_mutex_unlock(&r->mu);
}

static void h_delete(const cJSON *o, bool unknown, void *ctx)
{
    rec *r = ctx;
    char key[256];
    const char *rv;
    key_rv(o, key, sizeof key, &rv);
    pthread_mutex_lock(&r->mu);
    csl_buf_printf(&r->log, "del %s %s%s;", key, rv ? rv : "-", unknown ? " unknown" : "");
    r->calls++;
    pthread_mutex_unlock(&r->mu);
}

static void rec_init(rec *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

/* Returns the log so far and empties it (caller frees). */
static char *rec_take(rec *r)
{
    pthread_mutex_lock(&r->mu);
    char *s = strdup(csl_buf_str(&r->log));
    csl_buf_reset(&r->log);
    pthread_mutex_unlock(&r->mu);
    return s;
}

#define CHECK_LOG(r, want)                                                                         \
    do {                                                                                           \
        char *got_ = rec_take(r);                                                                  \
        if (strcmp(got_, want) != 0)                                                               \
            fprintf(stderr, "\n%d: got  %s\n    want %s\n", __LINE__, got_, want);                 \
        CU_ASSERT_STRING_EQUAL(got_, want);                                                        \
        free(got_);                                                                                \
    } while (0)

static void rec_free(rec *r)
{
    csl_buf_free(&r->log);
    pthread_mutex_destroy(&r->mu);
}

/* Joins the keys as "a b c" for comparisons. */
static char *joined(char **keys, size_t n)
{
    csl_buf b = CSL_BUF_INIT;
    for (size_t i = 0; i < n; i++) csl_buf_printf(&b, "%s%s", i ? " " : "", keys[i]);
    csl_informer_keys_free(keys, n);
    return csl_buf_steal(&b);
}

#define CHECK_KEYS(expr, want)                                                                     \
    do {                                                                                           \
        size_t n_ = 0;                                                                             \
        char **k_ = (expr);                                                                        \
        char *s_ = k_ ? joined(k_, n_) : strdup("(null)");                                         \
        if (strcmp(s_, want) != 0)                                                                 \
            fprintf(stderr, "\n%d: keys %s, want %s\n", __LINE__, s_, want);                       \
        CU_ASSERT_STRING_EQUAL(s_, want);                                                          \
        free(s_);                                                                                  \
    } while (0)

static void zone_index(const cJSON *o, csl_index_emit emit, void *sink, void *ctx)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    const cJSON *zone = cJSON_GetObjectItemCaseSensitive(spec, "zone");
    if (cJSON_IsString(zone)) {
        emit(sink, zone->valuestring);
        emit(sink, zone->valuestring); /* duplicates are ignored */
        emit(sink, "any");
    }
}

static csl_informer *new_fed(rec *r)
{
    csl_informer_options o = {0};
    o.reflector.name = "test";
    char err[256];
    csl_informer *inf = csl_informer_new(NULL, &o, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inf);
    csl_informer_handler h = {h_add, h_update, h_delete, r};
    CU_ASSERT_EQUAL(csl_informer_add_handler(inf, &h), 0);
    CU_ASSERT_EQUAL(csl_informer_index_label(inf, "app", "app"), 0);
    CU_ASSERT_EQUAL(csl_informer_index_owner(inf, "owner"), 0);
    CU_ASSERT_EQUAL(csl_informer_index_add(inf, "zone", zone_index, NULL), 0);
    CU_ASSERT_EQUAL(csl_informer_index_add(inf, "zone", zone_index, NULL), -1);
    CU_ASSERT_EQUAL(csl_informer_index_label(inf, "x", ""), -1);
    return inf;
}

/* ------------------------------------------------------------------ cache semantics */

static void test_events(void)
{
    rec r;
    rec_init(&r);
    csl_informer *inf = new_fed(&r);
    CU_ASSERT_FALSE(csl_informer_has_synced(inf));
    CU_ASSERT_EQUAL(
        csl_informer_feed_event(inf, CSL_WATCH_ADDED, obj("ns", "a", "1", NULL, NULL, NULL)), 0);
    CU_ASSERT_EQUAL(
        csl_informer_feed_event(inf, CSL_WATCH_MODIFIED, obj("ns", "a", "2", NULL, NULL, NULL)), 0);
    /* ADDED for a key already there is an update; MODIFIED for a new key an add */
    csl_informer_feed_event(inf, CSL_WATCH_ADDED, obj("ns", "a", "3", NULL, NULL, NULL));
    csl_informer_feed_event(inf, CSL_WATCH_MODIFIED, obj("ns", "b", "4", NULL, NULL, NULL));
    csl_informer_feed_event(inf, CSL_WATCH_ADDED, obj(NULL, "cluster-wide", "5", NULL, NULL, NULL));
    csl_informer_feed_event(inf, CSL_WATCH_DELETED, obj("ns", "a", "6", NULL, NULL, NULL));
    /* a delete of an unknown key is still delivered (the consumer decides) */
    csl_informer_feed_event(inf, CSL_WATCH_DELETED, obj("ns", "zz", "7", NULL, NULL, NULL));
    CHECK_LOG(&r, "add ns/a 1;upd ns/a 1->2;upd ns/a 2->3;add ns/b 4;add cluster-wide 5;"
                  "del ns/a 6;del ns/zz 7;");
    CU_ASSERT_EQUAL(csl_informer_len(inf), 2);
    CHECK_KEYS(csl_informer_keys(inf, &n_), "cluster-wide ns/b");
    /* get: a parsed copy the caller owns; changing it changes nothing */
    cJSON *b = csl_informer_get(inf, "ns/b");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_uid(b), "uid-b");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(b, "spec"), "cpu")->valueint, 2);
    cJSON_DeleteItemFromObject(b, "spec");
    cJSON_Delete(b);
    b = csl_informer_get(inf, "ns/b");
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(b, "spec"));
    cJSON_Delete(b);
    CU_ASSERT_PTR_NULL(csl_informer_get(inf, "ns/a"));
    CU_ASSERT_PTR_NULL(csl_informer_get(inf, NULL));
    char rv[16];
    CU_ASSERT_TRUE(csl_informer_get_rv(inf, "ns/b", rv, sizeof rv));
    CU_ASSERT_STRING_EQUAL(rv, "4");
    CU_ASSERT_FALSE(csl_informer_get_rv(inf, "ns/a", rv, sizeof rv));
    /* bad feeds are refused (and freed) */
    CU_ASSERT_EQUAL(
        csl_informer_feed_event(inf, CSL_WATCH_BOOKMARK, obj("ns", "q", "1", NULL, NULL, NULL)),
        -1);
    CU_ASSERT_EQUAL(csl_informer_feed_event(inf, CSL_WATCH_ADDED, NULL), -1);
    CU_ASSERT_EQUAL(csl_informer_feed_replace(inf, cJSON_CreateObject()), -1);
    /* an object without a name is ignored */
    csl_informer_feed_event(inf, CSL_WATCH_ADDED, cJSON_Parse("{\"metadata\":{}}"));
    CU_ASSERT_EQUAL(csl_informer_len(inf), 2);
    CHECK_LOG(&r, "");
    csl_informer_stats st;
    csl_informer_stats_get(inf, &st);
    CU_ASSERT_EQUAL(st.objects, 2);
    CU_ASSERT_EQUAL(st.adds, 3);
    CU_ASSERT_EQUAL(st.updates, 2);
    CU_ASSERT_EQUAL(st.deletes, 2);
    /* the bytes counted are the compact JSON of what is cached */
    size_t want = 0;
    const char *keys[] = {"ns/b", "cluster-wide"};
    for (int i = 0; i < 2; i++) {
        cJSON *o = csl_informer_get(inf, keys[i]);
        char *s = cJSON_PrintUnformatted(o);
        want += strlen(s);
        free(s);
        cJSON_Delete(o);
    }
    CU_ASSERT_EQUAL(st.json_bytes, want);
    csl_informer_free(inf);
    rec_free(&r);
}

static cJSON *items(cJSON *first, ...)
{
    cJSON *a = cJSON_CreateArray();
    va_list ap;
    va_start(ap, first);
    for (cJSON *o = first; o; o = va_arg(ap, cJSON *)) cJSON_AddItemToArray(a, o);
    va_end(ap);
    return a;
}

static void test_relist_diff(void)
{
    rec r;
    rec_init(&r);
    csl_informer *inf = new_fed(&r);
    CU_ASSERT_EQUAL(
        csl_informer_feed_replace(inf, items(obj("ns", "a", "1", NULL, NULL, NULL),
                                             obj("ns", "b", "1", NULL, NULL, NULL),
                                             obj("ns", "c", "1", NULL, NULL, NULL),
                                             obj("ns", "d", "1", NULL, NULL, NULL), NULL)),
        0);
    CU_ASSERT_TRUE(csl_informer_has_synced(inf));
    CU_ASSERT_TRUE(csl_informer_wait_synced(inf, 0));
    CHECK_LOG(&r, "add ns/a 1;add ns/b 1;add ns/c 1;add ns/d 1;");
    /* while the watch was broken: b changed, c and d vanished, e appeared,
     * a did not change (nothing delivered for it) */
    csl_informer_feed_replace(inf, items(obj("ns", "e", "9", NULL, NULL, NULL),
                                         obj("ns", "a", "1", NULL, NULL, NULL),
                                         obj("ns", "b", "5", NULL, NULL, NULL), NULL));
    CHECK_LOG(&r, "add ns/e 9;upd ns/b 1->5;del ns/c 1 unknown;del ns/d 1 unknown;");
    CHECK_KEYS(csl_informer_keys(inf, &n_), "ns/a ns/b ns/e");
    /* an empty list empties the cache */
    csl_informer_feed_replace(inf, cJSON_CreateArray());
    CHECK_LOG(&r, "del ns/a 1 unknown;del ns/b 5 unknown;del ns/e 9 unknown;");
    CU_ASSERT_EQUAL(csl_informer_len(inf), 0);
    /* duplicate keys in one list: the first one wins */
    csl_informer_feed_replace(inf, items(obj("ns", "a", "2", NULL, NULL, NULL),
                                         obj("ns", "a", "3", NULL, NULL, NULL), NULL));
    CHECK_LOG(&r, "add ns/a 2;");
    csl_informer_stats st;
    csl_informer_stats_get(inf, &st);
    CU_ASSERT_EQUAL(st.replaces, 4);
    csl_informer_free(inf);
    rec_free(&r);
}

static void test_indexes(void)
{
    rec r;
    rec_init(&r);
    csl_informer *inf = new_fed(&r);
    csl_informer_feed_replace(inf, items(obj("ns", "a", "1", "app=web,tier=fe", "set-1", "hk-1a"),
                                         obj("ns", "b", "1", "app=web", "set-1,set-2", "hk-1b"),
                                         obj("other", "c", "1", "app=db", NULL, "hk-1a"),
                                         obj("ns", "d", "1", NULL, NULL, NULL), NULL));
    CHECK_KEYS(csl_informer_by_index(inf, "app", "web", &n_), "ns/a ns/b");
    CHECK_KEYS(csl_informer_by_index(inf, "app", "db", &n_), "other/c");
    CHECK_KEYS(csl_informer_by_index(inf, "app", "cache", &n_), "");
    CHECK_KEYS(csl_informer_by_index(inf, "owner", "set-1", &n_), "ns/a ns/b");
    CHECK_KEYS(csl_informer_by_index(inf, "owner", "set-2", &n_), "ns/b");
    CHECK_KEYS(csl_informer_by_index(inf, "zone", "hk-1a", &n_), "ns/a ns/d other/c");
    CHECK_KEYS(csl_informer_by_index(inf, "zone", "any", &n_), "ns/a ns/b ns/d other/c");
    CHECK_KEYS(csl_informer_by_index(inf, "nosuch", "web", &n_), "(null)");
    /* an update moves the object between index values */
    csl_informer_feed_event(inf, CSL_WATCH_MODIFIED,
                            obj("ns", "a", "2", "app=db", "set-2", "hk-1b"));
    CHECK_KEYS(csl_informer_by_index(inf, "app", "web", &n_), "ns/b");
    CHECK_KEYS(csl_informer_by_index(inf, "app", "db", &n_), "ns/a other/c");
    CHECK_KEYS(csl_informer_by_index(inf, "owner", "set-1", &n_), "ns/b");
    CHECK_KEYS(csl_informer_by_index(inf, "owner", "set-2", &n_), "ns/a ns/b");
    CHECK_KEYS(csl_informer_by_index(inf, "zone", "hk-1a", &n_), "ns/d other/c");
    /* a delete leaves every index */
    csl_informer_feed_event(inf, CSL_WATCH_DELETED,
                            obj("ns", "b", "3", "app=web", "set-1,set-2", "hk-1b"));
    CHECK_KEYS(csl_informer_by_index(inf, "app", "web", &n_), "");
    CHECK_KEYS(csl_informer_by_index(inf, "owner", "set-1", &n_), "");
    CHECK_KEYS(csl_informer_by_index(inf, "owner", "set-2", &n_), "ns/a");
    /* a relist rebuilds them */
    csl_informer_feed_replace(inf, items(obj("ns", "x", "9", "app=web", "set-9", "hk-1c"), NULL));
    CHECK_KEYS(csl_informer_by_index(inf, "app", "web", &n_), "ns/x");
    CHECK_KEYS(csl_informer_by_index(inf, "app", "db", &n_), "");
    CHECK_KEYS(csl_informer_by_index(inf, "owner", "set-9", &n_), "ns/x");
    CHECK_KEYS(csl_informer_by_index(inf, "zone", "any", &n_), "ns/x");
    /* many objects under one value, then removed one by one */
    for (int i = 0; i < 500; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%03d", i);
        csl_informer_feed_event(inf, CSL_WATCH_ADDED,
                                obj("bulk", name, "1", "app=bulk", NULL, NULL));
    }
    size_t n = 0;
    char **k = csl_informer_by_index(inf, "app", "bulk", &n);
    CU_ASSERT_EQUAL(n, 500);
    CU_ASSERT_STRING_EQUAL(k[0], "bulk/m000");
    CU_ASSERT_STRING_EQUAL(k[499], "bulk/m499");
    csl_informer_keys_free(k, n);
    for (int i = 0; i < 500; i += 2) {
        char name[16];
        snprintf(name, sizeof name, "m%03d", i);
        csl_informer_feed_event(inf, CSL_WATCH_DELETED,
                                obj("bulk", name, "2", "app=bulk", NULL, NULL));
    }
    k = csl_informer_by_index(inf, "app", "bulk", &n);
    CU_ASSERT_EQUAL(n, 250);
    bool odd = true;
    for (size_t i = 0; i < n; i++) odd = odd && (atoi(k[i] + 6) % 2 == 1);
    CU_ASSERT_TRUE(odd);
    csl_informer_keys_free(k, n);
    CU_ASSERT_EQUAL(csl_informer_len(inf), 251);
    csl_informer_free(inf);
    rec_free(&r);
}

static void test_resync_fed(void)
{
    rec r;
    rec_init(&r);
    csl_informer *inf = new_fed(&r);
    csl_informer_feed_replace(inf, items(obj("ns", "b", "2", NULL, NULL, NULL),
                                         obj("ns", "a", "1", NULL, NULL, NULL), NULL));
    free(rec_take(&r));
    csl_informer_resync(inf);
    CHECK_LOG(&r, "upd ns/a 1->1;upd ns/b 2->2;");
    csl_informer_stats st;
    csl_informer_stats_get(inf, &st);
    CU_ASSERT_EQUAL(st.resyncs, 1);
    csl_informer_free(inf);
    rec_free(&r);
}

/* ------------------------------------------------------------------ threads */

typedef struct reader {
    csl_informer *inf;
    volatile int stop;
    long reads;
    bool bad;
} reader;

static void *reader_main(void *arg)
{
    reader *rd = arg;
    while (!__atomic_load_n(&rd->stop, __ATOMIC_ACQUIRE)) {
        cJSON *o = csl_informer_get(rd->inf, "ns/o0007");
        if (o && !csl_kube_obj_rv(o)) rd->bad = true;
        cJSON_Delete(o);
        size_t n = 0;
        char **k = csl_informer_by_index(rd->inf, "app", "web", &n);
        for (size_t i = 0; i < n; i++)
            if (strncmp(k[i], "ns/o", 4) != 0) rd->bad = true;
        csl_informer_keys_free(k, n);
        k = csl_informer_keys(rd->inf, &n);
        csl_informer_keys_free(k, n);
        rd->reads++;
    }
    return NULL;
}

static void test_threaded_order(void)
{
    rec r;
    rec_init(&r);
    csl_informer *inf = new_fed(&r);
    r.inf = inf;
    char err[256];
    CU_ASSERT_EQUAL(csl_informer_start(inf, err, sizeof err), 0);
    CU_ASSERT_EQUAL(csl_informer_start(inf, err, sizeof err), -1);
    /* handlers cannot be added once started */
    csl_informer_handler h = {h_add, NULL, NULL, &r};
    CU_ASSERT_EQUAL(csl_informer_add_handler(inf, &h), -1);
    CU_ASSERT_EQUAL(csl_informer_index_owner(inf, "late"), -1);
    CU_ASSERT_FALSE(csl_informer_wait_synced(inf, 50));
    csl_informer_feed_replace(inf, cJSON_CreateArray());
    CU_ASSERT_TRUE(csl_informer_wait_synced(inf, 10000));

    reader rd = {inf, 0, 0, false};
    pthread_t t;
    pthread_create(&t, NULL, reader_main, &rd);
    /* 2,000 changes over 20 keys, in order; the handlers see them in order */
    csl_buf want = CSL_BUF_INIT;
    int rv[20] = {0};
    int seq = 0;
    for (int i = 0; i < 2000; i++) {
        int j = (i * 7) % 20;
        char name[16], rvs[16];
        snprintf(name, sizeof name, "o%04d", j);
        snprintf(rvs, sizeof rvs, "%d", ++seq);
        if (rv[j] && i % 9 == 0) {
            csl_informer_feed_event(inf, CSL_WATCH_DELETED,
                                    obj("ns", name, rvs, "app=web", NULL, NULL));
            csl_buf_printf(&want, "del ns/%s %s;", name, rvs);
            rv[j] = 0;
        } else {
            csl_informer_feed_event(inf, rv[j] ? CSL_WATCH_MODIFIED : CSL_WATCH_ADDED,
                                    obj("ns", name, rvs, "app=web", NULL, NULL));
            if (rv[j])
                csl_buf_printf(&want, "upd ns/%s %d->%s;", name, rv[j], rvs);
            else
                csl_buf_printf(&want, "add ns/%s %s;", name, rvs);
            rv[j] = seq;
        }
    }
    csl_informer_flush(inf);
    __atomic_store_n(&rd.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    CU_ASSERT_FALSE(rd.bad);
    CU_ASSERT(rd.reads > 0);
    char *got = rec_take(&r);
    CU_ASSERT_STRING_EQUAL(got, csl_buf_str(&want));
    free(got);
    csl_buf_free(&want);
    /* a handler reading the cache finds the change it is told about */
    CU_ASSERT_TRUE(r.saw_own_change);
    csl_informer_stop(inf);
    csl_informer_stop(inf);
    /* stopped: the cache stays readable, and feeds apply on the caller */
    size_t live = 0;
    for (int j = 0; j < 20; j++) live += rv[j] != 0;
    CU_ASSERT_EQUAL(csl_informer_len(inf), live);
    csl_informer_feed_event(inf, CSL_WATCH_ADDED, obj("ns", "late", "1", NULL, NULL, NULL));
    CHECK_LOG(&r, "add ns/late 1;");
    csl_informer_free(inf);
    rec_free(&r);
}

typedef struct thread_rec {
    pthread_mutex_t mu;
    int updates;
    bool same;
} thread_rec;

static void h_count_update(const cJSON *old, const cJSON *new, void *ctx)
{
    thread_rec *t = ctx;
    pthread_mutex_lock(&t->mu);
    t->updates++;
    t->same = t->same && strcmp(csl_kube_obj_rv(old), csl_kube_obj_rv(new)) == 0;
    pthread_mutex_unlock(&t->mu);
}

static void test_resync_period(void)
{
    csl_informer_options o = {0};
    o.resync_period_ms = 100;
    char err[256];
    csl_informer *inf = csl_informer_new(NULL, &o, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inf);
    thread_rec t = {PTHREAD_MUTEX_INITIALIZER, 0, true};
    csl_informer_handler h = {NULL, h_count_update, NULL, &t};
    csl_informer_add_handler(inf, &h);
    CU_ASSERT_EQUAL(csl_informer_start(inf, err, sizeof err), 0);
    csl_informer_feed_replace(inf, items(obj("ns", "a", "1", NULL, NULL, NULL),
                                         obj("ns", "b", "1", NULL, NULL, NULL),
                                         obj("ns", "c", "1", NULL, NULL, NULL), NULL));
    csl_informer_flush(inf);
    /* at least two periods' worth, however loaded the machine */
    int64_t end = csl_mono_ns() + 20000000000LL;
    int n = 0;
    while (csl_mono_ns() < end) {
        pthread_mutex_lock(&t.mu);
        n = t.updates;
        pthread_mutex_unlock(&t.mu);
        if (n >= 6) break;
        csl_sleep_ns(20000000);
    }
    csl_informer_stop(inf);
    CU_ASSERT(n >= 6);
    CU_ASSERT_TRUE(t.same);
    csl_informer_stats st;
    csl_informer_stats_get(inf, &st);
    CU_ASSERT(st.resyncs >= 2);
    csl_informer_free(inf);
    /* negative periods are refused */
    o.resync_period_ms = -1;
    CU_ASSERT_PTR_NULL(csl_informer_new(NULL, &o, err, sizeof err));
}

static void h_slow_add(const cJSON *o, void *ctx)
{
    (*(int *)ctx)++;
    csl_sleep_ns(20000000);
}

static void test_stop_drops_queue(void)
{
    csl_informer_options o = {0};
    char err[256];
    csl_informer *inf = csl_informer_new(NULL, &o, err, sizeof err);
    int adds = 0;
    csl_informer_handler h = {h_slow_add, NULL, NULL, &adds};
    csl_informer_add_handler(inf, &h);
    csl_informer_start(inf, err, sizeof err);
    for (int i = 0; i < 200; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        csl_informer_feed_event(inf, CSL_WATCH_ADDED, obj("ns", name, "1", NULL, NULL, NULL));
    }
    csl_sleep_ns(100000000);
    csl_informer_stop(inf);
    int after_stop = adds;
    CU_ASSERT(after_stop < 200);
    csl_sleep_ns(50000000);
    CU_ASSERT_EQUAL(adds, after_stop); /* no handler after stop returned */
    csl_informer_stats st;
    csl_informer_stats_get(inf, &st);
    CU_ASSERT_EQUAL(st.queued, 0);
    CU_ASSERT_FALSE(csl_informer_wait_synced(inf, 10));
    csl_informer_flush(inf); /* returns at once */
    csl_informer_free(inf);
}

/* ------------------------------------------------------------------ over a loopback server */

typedef struct fake {
    pthread_mutex_t mu;
    int lists, watches;
    char watch_rv[8][16];
} fake;

static void fake_handler(csl_http_req *r, void *data)
{
    fake *f = data;
    const char *w = csl_http_query(r, "watch");
    const char *body;
    pthread_mutex_lock(&f->mu);
    if (!w) {
        int n = f->lists++;
        pthread_mutex_unlock(&f->mu);
        /* first list: a, b, c; after the 410: a (changed), c, d — b vanished */
        body =
            n == 0
                ? "{\"kind\":\"CloudServerList\",\"apiVersion\":\"cloudserver.dev/v1\","
                  "\"metadata\":{\"resourceVersion\":\"100\"},\"items\":["
                  "{\"metadata\":{\"name\":\"a\",\"namespace\":\"t\",\"resourceVersion\":\"90\"}},"
                  "{\"metadata\":{\"name\":\"b\",\"namespace\":\"t\",\"resourceVersion\":\"91\"}},"
                  "{\"metadata\":{\"name\":\"c\",\"namespace\":\"t\",\"resourceVersion\":\"92\"}}]}"
                : "{\"kind\":\"CloudServerList\",\"apiVersion\":\"cloudserver.dev/v1\","
                  "\"metadata\":{\"resourceVersion\":\"200\"},\"items\":["
                  "{\"metadata\":{\"name\":\"a\",\"namespace\":\"t\",\"resourceVersion\":\"150\"}},"
                  "{\"metadata\":{\"name\":\"c\",\"namespace\":\"t\",\"resourceVersion\":\"101\"}},"
                  "{\"metadata\":{\"name\":\"d\",\"namespace\":\"t\",\"resourceVersion\":\"160\"}}]"
                  "}";
        csl_http_respond(r, 200, "application/json", body, strlen(body));
        return;
    }
    if (csl_http_resumes(r) > 0) {
        pthread_mutex_unlock(&f->mu);
        csl_http_close(r);
        return;
    }
    int n = f->watches++;
    if (n < 8) {
        const char *rv = csl_http_query(r, "resourceVersion");
        snprintf(f->watch_rv[n], sizeof f->watch_rv[n], "%s", rv ? rv : "");
    }
    pthread_mutex_unlock(&f->mu);
    if (n == 0) {
        body = "{\"type\":\"MODIFIED\",\"object\":{\"apiVersion\":\"cloudserver.dev/v1\","
               "\"kind\":\"CloudServer\",\"metadata\":{\"name\":\"c\",\"namespace\":\"t\","
               "\"resourceVersion\":\"101\"}}}\n"
               "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
               "\"reason\":\"Expired\",\"message\":\"too old resource version\"}}\n";
        csl_http_respond(r, 200, "application/json", body, strlen(body));
    } else {
        csl_http_suspend(r, -1);
    }
}

static void test_over_loopback(void)
{
    fake f = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {{0}}};
    csl_httpd_config hc = {0};
    hc.listen = "127.0.0.1:0";
    csl_httpd *srv = csl_httpd_new(&hc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv);
    csl_httpd_route(srv, "GET", "/apis/cloudserver.dev/v1/namespaces/t/cloudservers", "cs",
                    fake_handler, &f);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(csl_httpd_start(srv, err, sizeof err), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", csl_httpd_port(srv));
    csl_kube_config kc = {0};
    kc.server = url;
    csl_kube *k = csl_kube_new(&kc, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);

    csl_informer_options o = {0};
    o.reflector.resource = (csl_kube_resource){"cloudserver.dev", "v1", "cloudservers", true};
    o.reflector.namespace = "t";
    o.reflector.seed = 5;
    csl_informer *inf = csl_informer_new(k, &o, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inf);
    rec r;
    rec_init(&r);
    r.check_thread = false;
    csl_informer_handler h = {h_add, h_update, h_delete, &r};
    csl_informer_add_handler(inf, &h);
    CU_ASSERT_EQUAL(csl_informer_start(inf, err, sizeof err), 0);
    CU_ASSERT_TRUE(csl_informer_wait_synced(inf, 20000));
    /* wait for the relist's effect: d appears */
    int64_t end = csl_mono_ns() + 20000000000LL;
    char rv[16];
    while (csl_mono_ns() < end && !csl_informer_get_rv(inf, "t/d", rv, sizeof rv))
        csl_sleep_ns(10000000);
    csl_informer_flush(inf);
    csl_informer_stop(inf);
    CHECK_LOG(&r, "add t/a 90;add t/b 91;add t/c 92;upd t/c 92->101;"
                  "upd t/a 90->150;add t/d 160;del t/b 91 unknown;");
    CHECK_KEYS(csl_informer_keys(inf, &n_), "t/a t/c t/d");
    cJSON *a = csl_informer_get(inf, "t/a");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* list items gain kind and apiVersion from the List */
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(a, "kind")->valuestring, "CloudServer");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(a, "apiVersion")->valuestring, "cloudserver.dev/v1");
    cJSON_Delete(a);
    csl_reflector_stats st;
    csl_reflector_stats_get(csl_informer_reflector(inf), &st);
    CU_ASSERT_EQUAL(st.lists, 2);
    CU_ASSERT_EQUAL(st.relists_gone, 1);
    pthread_mutex_lock(&f.mu);
    CU_ASSERT_STRING_EQUAL(f.watch_rv[0], "100");
    CU_ASSERT_STRING_EQUAL(f.watch_rv[1], "200");
    pthread_mutex_unlock(&f.mu);
    csl_informer_free(inf);
    rec_free(&r);
    csl_httpd_free(srv);
    csl_kube_free(k);
}

/* ------------------------------------------------------------------ stored form */

/* A CloudServer as the operator leaves it, with variations: i picks the
 * name, uid, times and instance; shape 0 has no status, 1 a full one, 2 a
 * long repetitive note, 3 is unlike the others (a big blob of random text). */
static cJSON *server(csl_rng *g, int i, int shape)
{
    csl_buf b = CSL_BUF_INIT;
    csl_buf_printf(&b,
                   "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\",\"metadata\":{"
                   "\"name\":\"cs-%05d\",\"namespace\":\"ns\",\"uid\":\"%016llx-%08x\","
                   "\"resourceVersion\":\"%d\",\"managedFields\":[{\"manager\":\"op\","
                   "\"time\":\"2026-11-26T17:%02d:%02dZ\"}],\"labels\":{\"app\":\"web-%d\"}},"
                   "\"spec\":{\"cpu\":%d,\"memory\":\"%dGi\",\"zone\":\"hk-1a\"}",
                   i, (unsigned long long)csl_rng_next(g), (unsigned)csl_rng_next(g), 1000 + i,
                   i / 60 % 60, i % 60, i % 7, 1 + i % 16, 1 << (i % 5));
    if (shape == 1 || shape == 2) {
        csl_buf_printf(&b,
                       ",\"status\":{\"phase\":\"Running\",\"instanceID\":\"i-%012llx\","
                       "\"conditions\":[",
                       (unsigned long long)(csl_rng_next(g) & 0xffffffffffffULL));
        for (int c = 0; c < 4; c++)
            csl_buf_printf(&b,
                           "%s{\"type\":\"T%d\",\"status\":\"True\",\"reason\":\"Fine\","
                           "\"lastTransitionTime\":\"2026-11-26T17:%02d:%02dZ\"}",
                           c ? "," : "", c, i / 60 % 60, i % 60);
        csl_buf_puts(&b, "]");
        if (shape == 2) {
            csl_buf_puts(&b, ",\"note\":\"");
            for (int k = 0; k < 300 + i % 50; k++) csl_buf_putc(&b, "ab"[k % 2]);
            csl_buf_puts(&b, "\"");
        }
        csl_buf_puts(&b, "}");
    }
    if (shape == 3) {
        /* Over the 64 KiB the scratch keeps, and incompressible. */
        csl_buf_puts(&b, ",\"data\":\"");
        static const char alnum[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for (int k = 0; k < 70000; k++) csl_buf_putc(&b, alnum[csl_rng_below(g, 62)]);
        csl_buf_puts(&b, "\\u00e9\"");
    }
    csl_buf_puts(&b, "}");
    cJSON *o = cJSON_Parse(b.data);
    csl_buf_free(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    return o;
}

/* Every object read back equals what was fed, whatever reference it was
 * coded against, through shape changes, updates, deletes and a relist; and
 * objects alike cost a fraction of their text. */
static void test_stored_delta(void)
{
    enum { N = 600 };
    csl_rng g;
    csl_rng_seed(&g, 42);
    csl_informer_options opt = {0};
    char err[256];
    csl_informer *inf = csl_informer_new(NULL, &opt, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inf);
    cJSON **want = calloc(N, sizeof *want);
    char key[64];
    /* First the objects without status, then they gain one, with a few
     * odd ones among them. */
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            int shape = round == 0 ? 0 : (i % 97 == 5 ? 3 : (i % 13 == 0 ? 2 : 1));
            /* (The big ones are not updated: a replaced one could stay
             * pinned as a reference, which the check below does not count.) */
            if (round == 2 && (i % 5 || i % 97 == 5)) continue;
            cJSON *o = server(&g, i, shape);
            cJSON_Delete(want[i]);
            want[i] = cJSON_Duplicate(o, true);
            CU_ASSERT_EQUAL(csl_informer_feed_event(inf, CSL_WATCH_MODIFIED, o), 0);
        }
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof key, "ns/cs-%05d", i);
            cJSON *got = csl_informer_get(inf, key);
            CU_ASSERT_PTR_NOT_NULL_FATAL(got);
            if (!cJSON_Compare(got, want[i], true)) {
                CU_FAIL("an object read back differs from the one fed");
                break;
            }
            cJSON_Delete(got);
        }
    }
    csl_informer_stats st;
    csl_informer_stats_get(inf, &st);
    CU_ASSERT_EQUAL(st.objects, N);
    CU_ASSERT_TRUE(st.stored_bytes > 0);
    /* The big random objects are stored whole; the rest in deltas. */
    size_t big = 0;
    for (int i = 0; i < N; i++)
        if (cJSON_GetObjectItem(want[i], "data")) {
            char *t = cJSON_PrintUnformatted(want[i]);
            big += strlen(t);
            free(t);
        }
    CU_ASSERT_TRUE(big > 0);
    /* (These test objects carry more random text than real ones: real
     * CloudServers code to a tenth of their text, see informer_mem.) */
    CU_ASSERT_TRUE(st.stored_bytes - big < (st.json_bytes - big) / 2);

    /* A relist of half of them, in a new shape, then every one deleted:
     * nothing is left but the references in the informer's four slots. */
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < N; i += 2) {
        cJSON *o = server(&g, i, 2);
        cJSON_Delete(want[i]);
        want[i] = cJSON_Duplicate(o, true);
        cJSON_AddItemToArray(list, o);
    }
    CU_ASSERT_EQUAL(csl_informer_feed_replace(inf, list), 0);
    CU_ASSERT_EQUAL(csl_informer_len(inf), N / 2);
    for (int i = 0; i < N; i += 2) {
        snprintf(key, sizeof key, "ns/cs-%05d", i);
        cJSON *got = csl_informer_get(inf, key);
        CU_ASSERT_TRUE(got && cJSON_Compare(got, want[i], true));
        cJSON_Delete(got);
    }
    for (int i = 0; i < N; i += 2)
        csl_informer_feed_event(inf, CSL_WATCH_DELETED, cJSON_Duplicate(want[i], true));
    csl_informer_stats_get(inf, &st);
    CU_ASSERT_EQUAL(st.objects, 0);
    CU_ASSERT_EQUAL(st.json_bytes, 0);
    CU_ASSERT_TRUE(st.stored_bytes > 0 && st.stored_bytes < 4 * (70000 + 2048));
    for (int i = 0; i < N; i++) cJSON_Delete(want[i]);
    free(want);
    csl_informer_free(inf);
}

static void h_managed(const cJSON *o, void *ctx)
{
    const cJSON *md = cJSON_GetObjectItem(o, "metadata");
    if (cJSON_GetObjectItem(md, "managedFields")) (*(int *)ctx)++;
}

static void test_strip_managed_fields(void)
{
    for (int strip = 0; strip < 2; strip++) {
        csl_rng g;
        csl_rng_seed(&g, 7);
        csl_informer_options opt = {0};
        opt.strip_managed_fields = strip;
        char err[256];
        csl_informer *inf = csl_informer_new(NULL, &opt, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(inf);
        int seen = 0;
        csl_informer_handler h = {h_managed, NULL, NULL, &seen};
        CU_ASSERT_EQUAL(csl_informer_add_handler(inf, &h), 0);
        csl_informer_feed_replace(inf, items(server(&g, 1, 1), NULL));
        csl_informer_feed_event(inf, CSL_WATCH_ADDED, server(&g, 2, 1));
        CU_ASSERT_EQUAL(seen, strip ? 0 : 2);
        for (int i = 1; i <= 2; i++) {
            char key[32];
            snprintf(key, sizeof key, "ns/cs-%05d", i);
            cJSON *o = csl_informer_get(inf, key);
            CU_ASSERT_PTR_NOT_NULL_FATAL(o);
            const cJSON *md = cJSON_GetObjectItem(o, "metadata");
            CU_ASSERT_EQUAL(cJSON_GetObjectItem(md, "managedFields") != NULL, !strip);
            CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(md, "labels"));
            cJSON_Delete(o);
        }
        csl_informer_free(inf);
    }
}

static int quiet_logs(void)
{
    csl_log_setup("test_informer", CSL_LOG_ERROR, CSL_LOG_TEXT, 2);
    return 0;
}

static CU_TestInfo cache_tests[] = {
    {"add, update, delete, get", test_events},
    {"relist diffing", test_relist_diff},
    {"label, owner and custom indexes", test_indexes},
    {"resync delivers every object", test_resync_fed},
    {"objects read back as fed, stored as deltas", test_stored_delta},
    {"strip_managed_fields", test_strip_managed_fields},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo thread_tests[] = {
    {"order, flush, readers during writes", test_threaded_order},
    {"resync period", test_resync_period},
    {"stop drops the queue", test_stop_drops_queue},
    {"over a loopback API server with a 410", test_over_loopback},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"informer cache", quiet_logs, NULL, NULL, NULL, cache_tests},
    {"informer threads", quiet_logs, NULL, NULL, NULL, thread_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
