/* test_kube_watch.c — the informer (reflector + cache) against a real
 * kube-apiserver (CSL_KUBECONFIG; CSL_CLUSTER_DIR for the local plane's
 * restart script and etcd port):
 *
 *   - 2,000 creates/updates/deletes of ConfigMaps from a second thread
 *     while the informer watches: every change is delivered, per object in
 *     resourceVersion order, and the cache ends equal to a fresh list;
 *   - the same while kube-apiserver is restarted: every object's last
 *     state and every delete reach the handlers, and the cache ends equal;
 *   - a forced 410: the reflector paused, changes made, etcd compacted past
 *     the watch's resourceVersion and kube-apiserver restarted (its watch
 *     cache would otherwise still serve the old version), resumed: a relist,
 *     deletes (final state unknown) for objects removed meanwhile, and the
 *     cache equal to a fresh list.
 *
 * resourceVersions are opaque to clients; the checks compare them as
 * numbers, which holds for etcd-backed servers and is only done here. */
#include "../testutil.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/informer.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "csl/rng.h"
#include "csl/watch.h"
#include "kube_testutil.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static csl_kube_config cfg;
static csl_kube *kube;
static const char *cluster_dir;

static const csl_kube_resource NAMESPACES = {"", "v1", "namespaces", false};
static const csl_kube_resource CM = {"", "v1", "configmaps", true};

/* ------------------------------------------------------------------ the cluster */

static int suite_init(void)
{
    csl_log_setup("test_kube_watch", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    cluster_dir = getenv("CSL_CLUSTER_DIR");
    if (kt_connect(NULL, &cfg, &kube) != 0) return 1;
    return 0;
}

static int suite_cleanup(void)
{
    csl_kube_free(kube);
    csl_kube_config_free(&cfg);
    return 0;
}

static bool make_namespace(char *ns, size_t nssz, const char *what)
{
    snprintf(ns, nssz, "k3-%s-%d-%llx", what, (int)getpid(),
             (unsigned long long)(csl_wall_ms() & 0xffffff));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "Namespace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "metadata"), "name", ns);
    csl_kube_error e;
    cJSON *made = csl_kube_create(kube, &NAMESPACES, NULL, o, &e);
    cJSON_Delete(o);
    if (!made) fprintf(stderr, "cannot create namespace %s: %s\n", ns, e.message);
    cJSON_Delete(made);
    return made != NULL;
}

static void drop_namespace(const char *ns)
{
    /* No controller-manager: it stays Terminating. Names are unique. */
    csl_kube_error e;
    csl_kube_delete(kube, &NAMESPACES, NULL, ns, NULL, &e);
}

static int restart_apiserver(void)
{
    if (!cluster_dir || !*cluster_dir) {
        fprintf(stderr, "CSL_CLUSTER_DIR is not set: cannot restart kube-apiserver\n");
        return -1;
    }
    const char *script = getenv("CSL_RESTART_APISERVER");
    if (!script) script = "kind/local/restart-apiserver.sh";
    if (access(script, X_OK) != 0) {
        fprintf(stderr,
                "%s not found (run from the repository root, or set "
                "CSL_RESTART_APISERVER)\n",
                script);
        return -1;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "CSL_CLUSTER_DIR='%s' '%s' >&2", cluster_dir, script);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "%s failed (%d)\n", script, rc);
    return rc == 0 ? 0 : -1;
}

/* POSTs body to etcd's JSON gateway; returns the parsed answer or NULL. */
static size_t curl_sink(char *p, size_t size, size_t n, void *ud)
{
    csl_buf_append(ud, p, size * n);
    return size * n;
}

static cJSON *etcd_post(const char *path, const char *body)
{
    char portfile[512], url[256];
    snprintf(portfile, sizeof portfile, "%s/etcd.port", cluster_dir ? cluster_dir : "");
    FILE *f = fopen(portfile, "r");
    if (!f) {
        fprintf(stderr, "cannot read %s: set CSL_CLUSTER_DIR to the local plane's folder\n",
                portfile);
        return NULL;
    }
    int port = 0;
    if (fscanf(f, "%d", &port) != 1) port = 0;
    fclose(f);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    csl_buf out = CSL_BUF_INIT;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    CURLcode cc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(h);
    cJSON *j = cc == CURLE_OK && code == 200 ? cJSON_Parse(csl_buf_str(&out)) : NULL;
    if (!j)
        fprintf(stderr, "etcd %s: %s %ld %s\n", path, curl_easy_strerror(cc), code,
                csl_buf_str(&out));
    csl_buf_free(&out);
    return j;
}

/* Compacts etcd at its current revision; returns that revision or -1. */
static long long etcd_compact_now(void)
{
    cJSON *r = etcd_post("/v3/kv/range", "{\"key\":\"AA==\"}");
    const cJSON *rev = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "header"), "revision");
    long long n = cJSON_IsString(rev) ? atoll(rev->valuestring) : -1;
    cJSON_Delete(r);
    if (n <= 0) return -1;
    char body[96];
    snprintf(body, sizeof body, "{\"revision\":\"%lld\",\"physical\":true}", n);
    cJSON *c = etcd_post("/v3/kv/compaction", body);
    cJSON_Delete(c);
    return c ? n : -1;
}

/* ------------------------------------------------------------------ what the handlers saw */

typedef struct seen_ev {
    char type; /* a u d */
    bool unknown;
    char key[96];
    long long rv;
} seen_ev;

typedef struct seen {
    pthread_mutex_t mu;
    seen_ev *ev;
    size_t n, cap;
} seen;

static void seen_add(seen *s, char type, const cJSON *o, bool unknown)
{
    seen_ev e = {type, unknown, "", 0};
    csl_kube_obj_key(o, e.key, sizeof e.key);
    const char *rv = csl_kube_obj_rv(o);
    e.rv = rv ? atoll(rv) : 0;
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->ev = realloc(s->ev, s->cap * sizeof *s->ev);
    }
    s->ev[s->n++] = e;
    pthread_mutex_unlock(&s->mu);
}

static void on_add(const cJSON *o, void *ctx)
{
    seen_add(ctx, 'a', o, false);
}

static void on_update(const cJSON *old, const cJSON *new, void *ctx)
{
    seen_add(ctx, 'u', new, false);
}

static void on_delete(const cJSON *o, bool unknown, void *ctx)
{
    seen_add(ctx, 'd', o, unknown);
}

static bool seen_has(seen *s, char type, const char *key, long long rv)
{
    bool found = false;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n && !found; i++)
        found = s->ev[i].type == type && strcmp(s->ev[i].key, key) == 0 &&
                (rv < 0 || s->ev[i].rv == rv);
    pthread_mutex_unlock(&s->mu);
    return found;
}

static bool seen_has_change(seen *s, const char *key, long long rv)
{
    return seen_has(s, 'a', key, rv) || seen_has(s, 'u', key, rv);
}

/* Per key, the adds/updates delivered carry increasing resourceVersions. */
static size_t seen_out_of_order(seen *s)
{
    size_t bad = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        if (s->ev[i].type == 'd') continue;
        for (size_t j = i + 1; j < s->n; j++) {
            if (s->ev[j].type == 'd' || strcmp(s->ev[i].key, s->ev[j].key) != 0) continue;
            if (s->ev[j].rv <= s->ev[i].rv) bad++;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return bad;
}

/* ------------------------------------------------------------------ the cache vs a fresh list */

/* 0 when the informer's cache holds exactly the list's keys at the list's
 * resourceVersions; else the number of differences (printed when loud). */
static int cache_diff(csl_informer *inf, const char *ns, bool loud)
{
    csl_kube_error e;
    cJSON *list = csl_kube_list_all(kube, &CM, ns, NULL, &e);
    if (!list) {
        if (loud) fprintf(stderr, "list: %s\n", e.message);
        return 1000000;
    }
    int diff = 0;
    const cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "items"))
    {
        char key[128], rv[32];
        csl_kube_obj_key(it, key, sizeof key);
        n++;
        if (!csl_informer_get_rv(inf, key, rv, sizeof rv)) {
            if (loud) fprintf(stderr, "  %s missing from the cache\n", key);
            diff++;
        } else if (strcmp(rv, csl_kube_obj_rv(it)) != 0) {
            if (loud)
                fprintf(stderr, "  %s: cache rv %s, server %s\n", key, rv, csl_kube_obj_rv(it));
            diff++;
        }
    }
    size_t cached = csl_informer_len(inf);
    if (cached != (size_t)n) {
        if (loud) fprintf(stderr, "  cache holds %zu objects, the server %d\n", cached, n);
        diff += (int)(cached > (size_t)n ? cached - (size_t)n : (size_t)n - cached);
    }
    cJSON_Delete(list);
    return diff;
}

static bool wait_equal(csl_informer *inf, const char *ns, double seconds)
{
    int64_t end = csl_mono_ns() + (int64_t)(seconds * 1e9);
    while (csl_mono_ns() < end) {
        csl_informer_flush(inf);
        if (cache_diff(inf, ns, false) == 0) return true;
        csl_sleep_ns(200000000);
    }
    return cache_diff(inf, ns, true) == 0;
}

static csl_informer *start_informer(const char *ns, seen *s)
{
    csl_informer_options o = {0};
    o.reflector.resource = CM;
    o.reflector.namespace = ns;
    o.reflector.page_size = 100;
    o.reflector.seed = 11;
    char err[256];
    csl_informer *inf = csl_informer_new(kube, &o, err, sizeof err);
    if (!inf) {
        fprintf(stderr, "%s\n", err);
        return NULL;
    }
    csl_informer_handler h = {on_add, on_update, on_delete, s};
    csl_informer_add_handler(inf, &h);
    if (csl_informer_start(inf, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        csl_informer_free(inf);
        return NULL;
    }
    if (!csl_informer_wait_synced(inf, 60000)) {
        fprintf(stderr, "informer did not sync in 60 s\n");
        csl_informer_free(inf);
        return NULL;
    }
    return inf;
}

/* ------------------------------------------------------------------ the writer */

typedef struct change {
    char key[96];
    long long rv; /* create/update: the version the server answered; delete: 0 */
    bool deleted;
} change;

typedef struct writer {
    const char *ns;
    int ops;
    uint64_t seed;
    bool retry;      /* keep retrying failed calls (through a restart) */
    long pace_ns;    /* pause between ops */
    int limit;       /* ops to do, lowered on the fly (atomic); starts at ops */
    int done_ops;    /* atomic */
    change *changes; /* one per op */
    int failures;    /* calls that failed for good */
    int retries;
} writer;

static bool retryable(const csl_kube_error *e)
{
    return csl_kube_error_retryable(e) || e->code == CSL_KUBE_TRANSPORT ||
           e->code == CSL_KUBE_CONFIG;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    csl_rng r;
    csl_rng_seed(&r, w->seed);
    char **live = calloc((size_t)w->ops, sizeof *live);
    size_t nlive = 0;
    int next = 0;
    for (int i = 0; i < __atomic_load_n(&w->limit, __ATOMIC_ACQUIRE); i++) {
        change *c = &w->changes[i];
        if (w->pace_ns) csl_sleep_ns(w->pace_ns);
        double u = csl_rng_double(&r);
        int kind = nlive < 20 || u < 0.35 ? 0 : u < 0.8 ? 1 : 2;
        size_t pick = nlive ? csl_rng_below(&r, nlive) : 0;
        char name[64];
        if (kind == 0)
            snprintf(name, sizeof name, "cm-%05d", next++);
        else
            snprintf(name, sizeof name, "%s", live[pick]);
        snprintf(c->key, sizeof c->key, "%s/%s", w->ns, name);
        int64_t give_up = csl_mono_ns() + 120000000000LL;
        for (;;) {
            csl_kube_error e = {0};
            cJSON *got = NULL;
            bool ok = false;
            if (kind == 0) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "apiVersion", "v1");
                cJSON_AddStringToObject(o, "kind", "ConfigMap");
                cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "metadata"), "name", name);
                cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "data"), "op", "0");
                got = csl_kube_create(kube, &CM, w->ns, o, &e);
                cJSON_Delete(o);
                if (!got && e.code == CSL_KUBE_ALREADY_EXISTS) /* an earlier try landed */
                    got = csl_kube_get(kube, &CM, w->ns, name, NULL, &e);
            } else if (kind == 1) {
                char patch[96];
                snprintf(patch, sizeof patch, "{\"data\":{\"op\":\"%d\"}}", i);
                got =
                    csl_kube_patch(kube, &CM, w->ns, name, NULL, CSL_PATCH_MERGE, patch, NULL, &e);
            } else {
                ok = csl_kube_delete(kube, &CM, w->ns, name, NULL, &e) == 0 ||
                     e.code == CSL_KUBE_NOT_FOUND;
            }
            if (got) {
                c->rv = atoll(csl_kube_obj_rv(got));
                cJSON_Delete(got);
                ok = true;
            }
            if (ok) break;
            if (!w->retry || !retryable(&e) || csl_mono_ns() > give_up) {
                fprintf(stderr, "writer: op %d on %s: %s\n", i, c->key, e.message);
                w->failures++;
                break;
            }
            w->retries++;
            csl_sleep_ns(100000000);
        }
        if (kind == 0) {
            live[nlive++] = strdup(name);
        } else if (kind == 2) {
            c->deleted = true;
            free(live[pick]);
            live[pick] = live[--nlive];
        }
        __atomic_store_n(&w->done_ops, i + 1, __ATOMIC_RELEASE);
    }
    for (size_t i = 0; i < nlive; i++) free(live[i]);
    free(live);
    return NULL;
}

/* Every change's final state and every delete reached the handlers; with
 * every_change, every intermediate version too. Returns misses. */
static int check_changes(writer *w, seen *s, bool every_change)
{
    int missed = 0;
    int ops = __atomic_load_n(&w->done_ops, __ATOMIC_ACQUIRE);
    for (int i = 0; i < ops; i++) {
        change *c = &w->changes[i];
        if (c->deleted) {
            if (!seen_has(s, 'd', c->key, -1)) {
                if (missed++ < 10) fprintf(stderr, "  delete of %s not delivered\n", c->key);
            }
            continue;
        }
        if (!c->rv) continue;
        bool last = true; /* the key's last create/update */
        for (int j = i + 1; j < ops && last; j++)
            if (strcmp(w->changes[j].key, c->key) == 0) last = false;
        if ((every_change || last) && !seen_has_change(s, c->key, c->rv)) {
            if (missed++ < 10) fprintf(stderr, "  %s at rv %lld not delivered\n", c->key, c->rv);
        }
    }
    return missed;
}

/* ------------------------------------------------------------------ tests */

static void test_thousands_of_changes(void)
{
    char ns[64];
    CU_ASSERT_FATAL(make_namespace(ns, sizeof ns, "watch"));
    seen s = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};
    csl_informer *inf = start_informer(ns, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inf);
    writer w = {ns, 2000, 77, false, 0, 2000, 0, NULL, 0, 0};
    w.changes = calloc((size_t)w.ops, sizeof *w.changes);
    int64_t t0 = csl_mono_ns();
    pthread_t t;
    pthread_create(&t, NULL, writer_main, &w);
    pthread_join(t, NULL);
    double secs = (double)(csl_mono_ns() - t0) / 1e9;
    CU_ASSERT_EQUAL(w.failures, 0);
    CU_ASSERT_TRUE(wait_equal(inf, ns, 60));
    csl_informer_flush(inf);
    csl_reflector_stats st;
    csl_reflector_stats_get(csl_informer_reflector(inf), &st);
    /* A healthy watch never had to relist, so nothing could be coalesced:
     * every single change must have been delivered. */
    CU_ASSERT_EQUAL(st.relists_gone, 0);
    CU_ASSERT_EQUAL(check_changes(&w, &s, true), 0);
    CU_ASSERT_EQUAL(seen_out_of_order(&s), 0);
    fprintf(stderr,
            "\n  %d changes in %.1f s; %zu handler calls; %llu watch events, "
            "%llu watches\n",
            w.ops, secs, s.n, (unsigned long long)st.events, (unsigned long long)st.watches);
    csl_informer_free(inf);
    free(w.changes);
    free(s.ev);
    drop_namespace(ns);
}

static void test_survives_apiserver_restart(void)
{
    char ns[64];
    CU_ASSERT_FATAL(make_namespace(ns, sizeof ns, "restart"));
    seen s = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};
    csl_informer *inf = start_informer(ns, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inf);
    /* A paced writer that goes on through the restart (kube-apiserver may
     * take its full grace period to stop while watches are open) and for
     * 200 changes after it. */
    writer w = {ns, 20000, 78, true, 10000000, 20000, 0, NULL, 0, 0};
    w.changes = calloc((size_t)w.ops, sizeof *w.changes);
    pthread_t t;
    pthread_create(&t, NULL, writer_main, &w);
    while (__atomic_load_n(&w.done_ops, __ATOMIC_ACQUIRE) < 200) csl_sleep_ns(20000000);
    int before_restart = __atomic_load_n(&w.done_ops, __ATOMIC_ACQUIRE);
    int rc = restart_apiserver();
    CU_ASSERT_EQUAL(rc, 0);
    int after_restart = __atomic_load_n(&w.done_ops, __ATOMIC_ACQUIRE);
    __atomic_store_n(&w.limit, after_restart + 200, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(w.failures, 0);
    CU_ASSERT_EQUAL(w.done_ops, after_restart + 200);
    CU_ASSERT_TRUE(wait_equal(inf, ns, 90));
    csl_informer_flush(inf);
    CU_ASSERT_EQUAL(check_changes(&w, &s, false), 0);
    CU_ASSERT_EQUAL(seen_out_of_order(&s), 0);
    csl_reflector_stats st;
    csl_reflector_stats_get(csl_informer_reflector(inf), &st);
    CU_ASSERT(st.watches >= 2); /* the watch broke and was resumed */
    fprintf(stderr,
            "\n  restart: %d changes before, %d during, 200 after; %d writer retries; "
            "watches %llu, lists %llu, relists after 410 %llu, back-offs %llu\n",
            before_restart, after_restart - before_restart, w.retries,
            (unsigned long long)st.watches, (unsigned long long)st.lists,
            (unsigned long long)st.relists_gone, (unsigned long long)st.errors);
    csl_informer_free(inf);
    free(w.changes);
    free(s.ev);
    drop_namespace(ns);
}

static cJSON *cm(const char *name, const char *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "ConfigMap");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "metadata"), "name", name);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "data"), "v", v);
    return o;
}

static void test_forced_410(void)
{
    char ns[64];
    CU_ASSERT_FATAL(make_namespace(ns, sizeof ns, "gone"));
    csl_kube_error e;
    char name[32];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "cm-%02d", i);
        cJSON *o = cm(name, "0");
        cJSON *got = csl_kube_create(kube, &CM, ns, o, &e);
        CU_ASSERT_PTR_NOT_NULL(got);
        cJSON_Delete(got);
        cJSON_Delete(o);
    }
    seen s = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};
    csl_informer *inf = start_informer(ns, &s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inf);
    CU_ASSERT_EQUAL(csl_informer_len(inf), 30);
    csl_reflector *refl = csl_informer_reflector(inf);
    char paused_rv[32];
    csl_reflector_last_rv(refl, paused_rv, sizeof paused_rv);

    /* Stop watching; change things behind the informer's back. */
    csl_reflector_pause(refl, true);
    csl_sleep_ns(1500000000);
    long long new_rv[10] = {0}, upd_rv[10] = {0};
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "cm-%02d", i);
        CU_ASSERT_EQUAL(csl_kube_delete(kube, &CM, ns, name, NULL, &e), 0);
        snprintf(name, sizeof name, "cm-%02d", 10 + i);
        cJSON *got = csl_kube_patch(kube, &CM, ns, name, NULL, CSL_PATCH_MERGE,
                                    "{\"data\":{\"v\":\"1\"}}", NULL, &e);
        CU_ASSERT_PTR_NOT_NULL(got);
        if (got) upd_rv[i] = atoll(csl_kube_obj_rv(got));
        cJSON_Delete(got);
        snprintf(name, sizeof name, "new-%02d", i);
        cJSON *o = cm(name, "n");
        got = csl_kube_create(kube, &CM, ns, o, &e);
        CU_ASSERT_PTR_NOT_NULL(got);
        if (got) new_rv[i] = atoll(csl_kube_obj_rv(got));
        cJSON_Delete(got);
        cJSON_Delete(o);
    }
    CU_ASSERT_EQUAL(csl_informer_len(inf), 30); /* nothing seen yet */
    long long compacted = etcd_compact_now();
    CU_ASSERT(compacted > atoll(paused_rv));
    /* The watch cache keeps its own window of history whatever etcd
     * compacted; a restart starts it afresh at the current revision. */
    CU_ASSERT_EQUAL_FATAL(restart_apiserver(), 0);
    csl_reflector_pause(refl, false);

    CU_ASSERT_TRUE(wait_equal(inf, ns, 90));
    csl_informer_flush(inf);
    csl_reflector_stats st;
    csl_reflector_stats_get(refl, &st);
    CU_ASSERT(st.relists_gone >= 1);
    CU_ASSERT(st.lists >= 2);
    for (int i = 0; i < 10; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s/cm-%02d", ns, i);
        bool unknown = false;
        pthread_mutex_lock(&s.mu);
        for (size_t j = 0; j < s.n; j++)
            if (s.ev[j].type == 'd' && strcmp(s.ev[j].key, key) == 0) unknown = s.ev[j].unknown;
        pthread_mutex_unlock(&s.mu);
        CU_ASSERT_TRUE(seen_has(&s, 'd', key, -1));
        CU_ASSERT_TRUE(unknown);
        snprintf(key, sizeof key, "%s/cm-%02d", ns, 10 + i);
        CU_ASSERT_TRUE(seen_has(&s, 'u', key, upd_rv[i]));
        snprintf(key, sizeof key, "%s/new-%02d", ns, i);
        CU_ASSERT_TRUE(seen_has(&s, 'a', key, new_rv[i]));
    }
    /* the 10 untouched objects: no event beyond their first add */
    size_t extra = 0;
    pthread_mutex_lock(&s.mu);
    for (size_t j = 0; j < s.n; j++) {
        int idx = -1;
        const char *slash = strrchr(s.ev[j].key, '/');
        if (slash && sscanf(slash + 1, "cm-%d", &idx) == 1 && idx >= 20 && s.ev[j].type != 'a')
            extra++;
    }
    pthread_mutex_unlock(&s.mu);
    CU_ASSERT_EQUAL(extra, 0);
    fprintf(stderr,
            "\n  forced 410: paused at rv %s, etcd compacted at %lld; lists %llu, "
            "relists after 410 %llu\n",
            paused_rv, compacted, (unsigned long long)st.lists,
            (unsigned long long)st.relists_gone);
    csl_informer_free(inf);
    free(s.ev);
    drop_namespace(ns);
}

static CU_TestInfo tests[] = {
    {"2,000 changes, none lost", test_thousands_of_changes},
    {"survives a kube-apiserver restart", test_survives_apiserver_restart},
    {"forced 410: compaction, relist, deletes", test_forced_410},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"kube watch", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
