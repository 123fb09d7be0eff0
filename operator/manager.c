/* manager.c — the operator's process: clients, informers, work queues,
 * workers, leader election, the metrics and probe servers, and shutdown.
 *
 * One idea: caches run in every replica (so a standby is warm and its
 * /readyz honest), workers only in the leader. Informer handlers do nothing
 * but turn a change into a key in a work queue; the workers take keys and
 * run one reconcile pass each, which requeues its key itself. Shutdown runs
 * in the reverse order of start-up: queues stop handing out keys, in-flight
 * passes get a bounded time to finish, the Lease is released, then the
 * caches, the event recorder (flushed) and the servers stop. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "csl/clock.h"
#include "csl/httpd.h"
#include "csl/log.h"
#include "manager.h"

#define SHUTDOWN_GRACE_NS (30LL * 1000000000LL)

/* ---------------------------------------------------------------- key maps */

typedef struct kentry {
    struct kentry *next;
    unsigned v;
    char key[];
} kentry;

struct op_keymap {
    pthread_mutex_t mu;
    kentry *b[1024];
};

static size_t khash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h % 1024;
}

op_keymap *op_keymap_new(void)
{
    op_keymap *f = calloc(1, sizeof *f);
    if (f) pthread_mutex_init(&f->mu, NULL);
    return f;
}

void op_keymap_free(op_keymap *f)
{
    if (!f) return;
    for (size_t i = 0; i < 1024; i++)
        for (kentry *e = f->b[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    pthread_mutex_destroy(&f->mu);
    free(f);
}

unsigned op_keymap_get(op_keymap *f, const char *key)
{
    unsigned v = 0;
    pthread_mutex_lock(&f->mu);
    for (kentry *e = f->b[khash(key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0) v = e->v;
    pthread_mutex_unlock(&f->mu);
    return v;
}

void op_keymap_set(op_keymap *f, const char *key, unsigned n)
{
    pthread_mutex_lock(&f->mu);
    kentry **pp = &f->b[khash(key)];
    while (*pp && strcmp((*pp)->key, key) != 0) pp = &(*pp)->next;
    if (*pp) {
        if (n) {
            (*pp)->v = n;
        } else {
            kentry *e = *pp;
            *pp = e->next;
            free(e);
        }
    } else if (n) {
        size_t len = strlen(key);
        kentry *e = malloc(sizeof *e + len + 1);
        if (e) {
            memcpy(e->key, key, len + 1);
            e->v = n;
            e->next = NULL;
            *pp = e;
        } else {
            csl_log(CSL_LOG_WARN, "out of memory: a per-object count is lost", "key", key, NULL);
        }
    }
    pthread_mutex_unlock(&f->mu);
}

void op_keymap_count(op_keymap *f, unsigned *counts, size_t n)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < 1024; i++)
        for (kentry *e = f->b[i]; e; e = e->next)
            if (e->v < n) counts[e->v]++;
    pthread_mutex_unlock(&f->mu);
}

/* ---------------------------------------------------------------- flags */

#define OP_ZONES_MAX 32

int op_zones_parse(const char *list, op_options *o, char *why, size_t whysz)
{
    static char names[OP_ZONES_MAX][OP_ZONE_LEN];
    static const char *ptrs[OP_ZONES_MAX];
    size_t n = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (n == OP_ZONES_MAX) {
            snprintf(why, whysz, "more than %d zones", OP_ZONES_MAX);
            return -1;
        }
        if (len == 0 || len >= OP_ZONE_LEN) {
            snprintf(why, whysz, "zone %zu in \"%.64s\" is %s", n + 1, list,
                     len ? "too long" : "empty");
            return -1;
        }
        memcpy(names[n], p, len);
        names[n][len] = '\0';
        ptrs[n] = names[n];
        n++;
        if (!end) break;
        p = end + 1;
    }
    o->zones = ptrs;
    o->n_zones = n;
    return 0;
}

/* ---------------------------------------------------------------- handlers */

static void enqueue_obj(csl_workqueue *q, const cJSON *obj)
{
    char key[OP_NS_LEN + OP_NAME_LEN + 2];
    csl_kube_obj_key(obj, key, sizeof key);
    csl_workqueue_add(q, key);
}

/* A CloudServer's set (its controller owner of kind CloudServerSet). */
static void enqueue_owner(op_mgr *m, const cJSON *obj)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(md, "ownerReferences"), *r;
    const char *ns = csl_kube_obj_namespace(obj);
    cJSON_ArrayForEach(r, refs)
    {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(r, "kind");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
        if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "CloudServerSet") != 0 ||
            !cJSON_IsString(name) || !ns)
            continue;
        char key[OP_NS_LEN + OP_NAME_LEN + 2];
        snprintf(key, sizeof key, "%s/%s", ns, name->valuestring);
        csl_workqueue_add(m->set_q, key);
    }
}

static void cs_add(const cJSON *obj, void *ctx)
{
    op_mgr *m = ctx;
    enqueue_obj(m->cs_q, obj);
    enqueue_owner(m, obj);
}

static void cs_update(const cJSON *old_obj, const cJSON *new_obj, void *ctx)
{
    op_mgr *m = ctx;
    const char *ov = csl_kube_obj_rv(old_obj), *nv = csl_kube_obj_rv(new_obj);
    char key[OP_NS_LEN + OP_NAME_LEN + 2];
    csl_kube_obj_key(new_obj, key, sizeof key);
    /* A resync (same version) always gets its pass; the echo of our own
     * write does not, though the owning set still hears of it (the write
     * may have changed the child's readiness). */
    if (ov && nv && strcmp(ov, nv) != 0 && !op_echo_update(m->echo, key, nv)) {
        enqueue_owner(m, new_obj);
        return;
    }
    cs_add(new_obj, ctx);
}

static void cs_delete(const cJSON *obj, bool unknown, void *ctx)
{
    op_mgr *m = ctx;
    char key[OP_NS_LEN + OP_NAME_LEN + 2];
    csl_kube_obj_key(obj, key, sizeof key);
    op_echo_forget(m->echo, key);
    cs_add(obj, ctx);
}

static void set_add(const cJSON *obj, void *ctx)
{
    enqueue_obj(((op_mgr *)ctx)->set_q, obj);
}

static void set_update(const cJSON *old_obj, const cJSON *new_obj, void *ctx)
{
    set_add(new_obj, ctx);
}

static void set_delete(const cJSON *obj, bool unknown, void *ctx)
{
    set_add(obj, ctx);
}

/* A changed token: every object gets a pass now rather than at its slow
 * auth retry. */
void op_requeue_all(op_mgr *m)
{
    size_t n;
    char **keys = csl_informer_keys(m->cs_inf, &n);
    for (size_t i = 0; keys && i < n; i++) csl_workqueue_add(m->cs_q, keys[i]);
    csl_informer_keys_free(keys, n);
}

static void secret_add(const cJSON *obj, void *ctx)
{
    op_mgr *m = ctx;
    if (op_credentials_apply(m, obj)) op_requeue_all(m);
}

static void secret_update(const cJSON *old_obj, const cJSON *new_obj, void *ctx)
{
    op_mgr *m = ctx;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(old_obj, "data");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(new_obj, "data");
    /* A resync (same content) changes nothing. */
    if (old_obj != new_obj && a && b && cJSON_Compare(a, b, true)) return;
    if (old_obj == new_obj) return;
    if (op_credentials_apply(m, new_obj)) op_requeue_all(m);
}

static void secret_delete(const cJSON *obj, bool unknown, void *ctx)
{
    op_mgr *m = ctx;
    if (op_credentials_apply(m, NULL)) op_requeue_all(m);
}

/* ---------------------------------------------------------------- cloud watch */

/* The cloud has no watch, and a Running object's plan asks for no requeue;
 * so that a crash or a stop behind our back is seen within seconds, not at
 * the next resync, the leader lists every instance once per period (one
 * paginated call, however many objects) and queues each object whose
 * instance is in a state that needs a decision. */
#define CLOUD_WATCH_NS (10LL * 1000000000LL)

static void cloud_watch_item(const csl_cloud_instance *it, void *ctx)
{
    op_mgr *m = ctx;
    if (it->state == CSL_INSTANCE_RUNNING || it->state == CSL_INSTANCE_DELETING) return;
    const char *name = csl_cloud_instance_tag(it, OP_TAG_NAME);
    if (name && strchr(name, '/')) csl_workqueue_add(m->cs_q, name);
}

/* A page at a time: the whole list of 10,000 instances would cost the
 * operator some 6 MiB of RSS every 10 s. */
static void cloud_watch_once(op_mgr *m)
{
    csl_cloud_error e;
    csl_cloud_each_instance(m->cloud, NULL, cloud_watch_item, m, &e);
}

typedef struct worker {
    op_mgr *m;
    csl_workqueue *q;
    const char *controller;
    void (*reconcile)(op_mgr *m, const char *key);
    pthread_t th;
    bool started;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    const char *key;
    while ((key = csl_workqueue_get(w->q)) != NULL) {
        csl_metric_add(w->m->m_active_workers, 1, CSL_LABELS(w->controller));
        w->reconcile(w->m, key);
        csl_metric_add(w->m->m_active_workers, -1, CSL_LABELS(w->controller));
        csl_workqueue_done(w->q, key);
    }
    return NULL;
}

typedef struct run {
    op_mgr m;
    op_options opt;
    csl_httpd *metrics_srv, *health_srv;
    csl_leader *leader;
    worker *workers;
    size_t n_workers;
    pthread_mutex_t mu;
    bool workers_started, workers_stopped;
    volatile int leading;
    volatile int lost;
    pthread_t watch_th;
    bool watch_started;
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;
} run;

static void *cloud_watch_main(void *arg)
{
    run *r = arg;
    pthread_mutex_lock(&r->watch_mu);
    while (!r->m.stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += CLOUD_WATCH_NS / 1000000000LL;
        pthread_cond_timedwait(&r->watch_cv, &r->watch_mu, &ts);
        if (r->m.stopping) break;
        pthread_mutex_unlock(&r->watch_mu);
        if (r->leading) cloud_watch_once(&r->m);
        pthread_mutex_lock(&r->watch_mu);
    }
    pthread_mutex_unlock(&r->watch_mu);
    return NULL;
}

static int start_workers(run *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->workers_started || r->workers_stopped) {
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    r->workers_started = true;
    int n = r->opt.max_concurrent;
    for (int i = 0; i < 2 * n; i++) {
        worker *w = &r->workers[i];
        w->m = &r->m;
        w->q = i < n ? r->m.cs_q : r->m.set_q;
        w->controller = i < n ? "cloudserver" : "cloudserverset";
        w->reconcile = i < n ? op_cloudserver_reconcile : op_cloudserverset_reconcile;
        if (pthread_create(&w->th, NULL, worker_main, w) == 0) w->started = true;
    }
    pthread_mutex_unlock(&r->mu);
    csl_log(CSL_LOG_INFO, "controllers started", NULL);
    return 0;
}

/* Stops handing out keys and waits for in-flight passes, at most the grace
 * period. Returns false when passes were still running at the deadline. */
static bool stop_workers(run *r)
{
    pthread_mutex_lock(&r->mu);
    bool was = r->workers_started && !r->workers_stopped;
    r->workers_stopped = true;
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_lock(&r->watch_mu);
    r->m.stopping = 1;
    pthread_cond_broadcast(&r->watch_cv);
    pthread_mutex_unlock(&r->watch_mu);
    csl_workqueue_shutdown(r->m.cs_q);
    csl_workqueue_shutdown(r->m.set_q);
    if (!was) return true;
    int64_t deadline = csl_mono_ns() + SHUTDOWN_GRACE_NS;
    while (csl_workqueue_in_flight(r->m.cs_q) + csl_workqueue_in_flight(r->m.set_q) > 0) {
        if (csl_mono_ns() > deadline) {
            csl_log(CSL_LOG_WARN, "reconciles still running after the shutdown grace period", NULL);
            return false;
        }
        csl_sleep_ns(20000000);
    }
    for (size_t i = 0; i < r->n_workers; i++)
        if (r->workers[i].started) pthread_join(r->workers[i].th, NULL);
    csl_log(CSL_LOG_INFO, "controllers stopped", NULL);
    return true;
}

static void on_started_leading(void *ctx)
{
    run *r = ctx;
    r->leading = 1;
    csl_log(CSL_LOG_INFO, "became the leader", NULL);
    start_workers(r);
}

static void on_stopped_leading(void *ctx)
{
    run *r = ctx;
    if (!r->m.stopping) {
        r->lost = 1;
        csl_log(CSL_LOG_ERROR, "leadership lost; stopping", NULL);
    }
    stop_workers(r);
    r->leading = 0;
}

static void on_new_leader(const char *identity, void *ctx)
{
    csl_log(CSL_LOG_INFO, "leader observed", "identity", identity, NULL);
}

/* ---------------------------------------------------------------- servers */

static void h_metrics(csl_http_req *req, void *data)
{
    run *r = data;
    csl_buf b = CSL_BUF_INIT;
    if (!csl_metrics_render(r->m.metrics, &b)) {
        csl_buf_free(&b);
        csl_http_respond_error(req, 500, "InternalError", "out of memory");
        return;
    }
    csl_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    csl_buf_free(&b);
}

static bool synced(run *r)
{
    return csl_informer_has_synced(r->m.cs_inf) && csl_informer_has_synced(r->m.set_inf) &&
           csl_informer_has_synced(r->m.secret_inf);
}

static void h_healthz(csl_http_req *req, void *data)
{
    run *r = data;
    if (r->lost) {
        csl_http_respond(req, 500, "text/plain", "leadership lost\n", 16);
        return;
    }
    csl_http_respond(req, 200, "text/plain", "ok\n", 3);
}

static void h_readyz(csl_http_req *req, void *data)
{
    run *r = data;
    if (!synced(r)) {
        csl_http_respond(req, 503, "text/plain", "caches not synced\n", 18);
        return;
    }
    if (r->m.stopping) {
        csl_http_respond(req, 503, "text/plain", "shutting down\n", 14);
        return;
    }
    csl_http_respond(req, 200, "text/plain", "ok\n", 3);
}

static csl_httpd *serve(const char *addr, const char *what, run *r, bool metrics, char *err,
                        size_t errsz)
{
    csl_httpd_config hc = {.listen = addr, .threads = 1, .max_connections = 64};
    csl_httpd *s = csl_httpd_new(&hc);
    if (!s) {
        snprintf(err, errsz, "%s server: out of memory", what);
        return NULL;
    }
    if (metrics) {
        csl_httpd_route(s, "GET", "/metrics", "metrics", h_metrics, r);
    } else {
        csl_httpd_route(s, "GET", "/healthz", "healthz", h_healthz, r);
        csl_httpd_route(s, "GET", "/readyz", "readyz", h_readyz, r);
    }
    char e[256];
    if (csl_httpd_start(s, e, sizeof e) < 0) {
        snprintf(err, errsz, "%s server (%s): %s", what, addr, e);
        csl_httpd_free(s);
        return NULL;
    }
    return s;
}

/* "HOST:PORT" for a client to use: the bound port on the given host, or
 * 127.0.0.1 when it listens on every address. */
static void reach(const char *addr, csl_httpd *s, char *out, size_t outsz)
{
    const char *colon = strrchr(addr, ':');
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (!hl || (hl == 1 && addr[0] == '*') || (hl == 7 && memcmp(addr, "0.0.0.0", 7) == 0))
        snprintf(out, outsz, "127.0.0.1:%d", csl_httpd_port(s));
    else
        snprintf(out, outsz, "%.*s:%d", (int)hl, addr, csl_httpd_port(s));
}

static void write_ready_file(run *r)
{
    const char *path = r->opt.ready_file;
    if (!path) return;
    cJSON *j = cJSON_CreateObject();
    char a[300];
    if (r->metrics_srv) {
        reach(r->opt.metrics_addr, r->metrics_srv, a, sizeof a);
        cJSON_AddStringToObject(j, "metrics", a);
    } else {
        cJSON_AddNullToObject(j, "metrics");
    }
    if (r->health_srv) {
        reach(r->opt.health_addr, r->health_srv, a, sizeof a);
        cJSON_AddStringToObject(j, "health", a);
    } else {
        cJSON_AddNullToObject(j, "health");
    }
    cJSON_AddNumberToObject(j, "pid", (double)getpid());
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return;
    size_t tl = strlen(path) + 16;
    char *tmp = malloc(tl);
    if (tmp) {
        snprintf(tmp, tl, "%s.tmp", path);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fputs(s, f);
            fputc('\n', f);
            if (fclose(f) == 0 && rename(tmp, path) == 0)
                csl_log(CSL_LOG_INFO, "ready file written", "path", path, NULL);
            else
                csl_log(CSL_LOG_WARN, "cannot write the ready file", "path", path, "error",
                        strerror(errno), NULL);
        } else {
            csl_log(CSL_LOG_WARN, "cannot write the ready file", "path", path, "error",
                    strerror(errno), NULL);
        }
    }
    free(tmp);
    free(s);
}

/* ---------------------------------------------------------------- metrics */

static void collect(csl_metrics *reg, void *ctx)
{
    op_mgr *m = ctx;
    unsigned counts[OP_PHASE_FAILED + 2] = {0};
    op_keymap_count(m->cs_phase, counts, OP_PHASE_FAILED + 2);
    csl_metric_clear(m->m_instances);
    for (int p = 1; p <= OP_PHASE_FAILED + 1; p++) {
        const char *name = op_phase_name((op_phase)(p - 1));
        csl_metric_set(m->m_instances, counts[p], CSL_LABELS(name[0] ? name : "Pending"));
    }
}

static void register_metrics(op_mgr *m, int max_concurrent)
{
    csl_metrics *reg = m->metrics;
    csl_metrics_register_process(reg);
    m->m_reconcile_total = csl_metrics_counter(reg, "controller_runtime_reconcile_total",
                                               "Total number of reconciliations per controller",
                                               CSL_LABELS("controller", "result"));
    m->m_reconcile_errors = csl_metrics_counter(
        reg, "controller_runtime_reconcile_errors_total",
        "Total number of reconciliation errors per controller", CSL_LABELS("controller"));
    static const double tb[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3,  0.35,
                                0.4,   0.45, 0.5,   0.6,  0.7, 0.8,  0.9, 1,    1.25, 1.5,
                                1.75,  2,    2.5,   3,    3.5, 4,    4.5, 5,    6,    7,
                                8,     9,    10,    15,   20,  25,   30,  40,   50,   60};
    m->m_reconcile_time =
        csl_metrics_histogram(reg, "controller_runtime_reconcile_time_seconds",
                              "Length of time per reconciliation per controller",
                              CSL_LABELS("controller"), tb, sizeof tb / sizeof tb[0]);
    m->m_max_concurrent = csl_metrics_gauge(
        reg, "controller_runtime_max_concurrent_reconciles",
        "Maximum number of concurrent reconciles per controller", CSL_LABELS("controller"));
    m->m_active_workers = csl_metrics_gauge(reg, "controller_runtime_active_workers",
                                            "Number of currently used workers per controller",
                                            CSL_LABELS("controller"));
    m->m_instances =
        csl_metrics_gauge(reg, "cloudserver_instances",
                          "CloudServers by status.phase, as last reconciled", CSL_LABELS("phase"));
    static const double rb[] = {0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600};
    m->m_create_to_ready =
        csl_metrics_histogram(reg, "cloudserver_create_to_ready_seconds",
                              "Seconds from a CloudServer's creation to its first Ready=True", NULL,
                              rb, sizeof rb / sizeof rb[0]);
    m->m_failovers = csl_metrics_counter(reg, "cloudserver_failovers_total",
                                         "Replacement instances created for crashed, vanished or "
                                         "stuck ones",
                                         NULL);
    m->m_backups = csl_metrics_counter(reg, "cloudserver_backups_total",
                                       "Snapshot operations by result (started, failed, pruned)",
                                       CSL_LABELS("result"));
    const char *const ctrls[] = {"cloudserver", "cloudserverset"};
    for (int i = 0; i < 2; i++) {
        csl_metric_set(m->m_max_concurrent, max_concurrent, CSL_LABELS(ctrls[i]));
        csl_metric_set(m->m_active_workers, 0, CSL_LABELS(ctrls[i]));
    }
    csl_metrics_on_collect(reg, collect, m);
}

/* ---------------------------------------------------------------- start-up */

static int load_config(run *r, char *err, size_t errsz)
{
    const op_options *o = &r->opt;
    if (o->kubeconfig || getenv("KUBECONFIG") || !getenv("KUBERNETES_SERVICE_HOST")) {
        if (csl_kubeconfig_load(o->kubeconfig, o->context, &r->m.kcfg, err, errsz) == 0) return 0;
        if (o->kubeconfig || getenv("KUBECONFIG") || !getenv("KUBERNETES_SERVICE_HOST")) {
            /* No kubeconfig and not in a cluster: say both. */
            if (!o->kubeconfig && !getenv("KUBECONFIG")) {
                size_t l = strlen(err);
                snprintf(err + l, errsz - l,
                         " (and KUBERNETES_SERVICE_HOST is unset, so not in a cluster either; "
                         "pass --kubeconfig)");
            }
            return -1;
        }
    }
    return csl_kube_incluster_config(&r->m.kcfg, err, errsz);
}

static csl_informer *informer(op_mgr *m, const csl_kube_resource *res, const char *ns,
                              const char *field_selector, long resync_ms,
                              const csl_informer_handler *h, char *err, size_t errsz)
{
    csl_informer_options io;
    memset(&io, 0, sizeof io);
    io.reflector.resource = *res;
    io.reflector.namespace = ns;
    io.reflector.field_selector = field_selector;
    io.resync_period_ms = resync_ms;
    /* The operator never applies server-side: managedFields is dead weight. */
    io.strip_managed_fields = true;
    csl_informer *inf = csl_informer_new(m->kube, &io, err, errsz);
    if (inf && csl_informer_add_handler(inf, h) < 0) {
        snprintf(err, errsz, "informer %s: cannot add a handler", res->resource);
        csl_informer_free(inf);
        return NULL;
    }
    return inf;
}

static const csl_kube_resource res_secrets = {"", "v1", "secrets", true};

static int start(run *r, char *err, size_t errsz)
{
    op_mgr *m = &r->m;
    const op_options *o = &r->opt;
    m->opt = o;
    m->cfg = op_config_default();
    m->cfg.zones = o->zones;
    m->cfg.n_zones = o->n_zones;
    pthread_mutex_init(&m->creds.mu, NULL);
    pthread_mutex_init(&m->refs_mu, NULL);
    m->creds.state = OP_CREDS_MISSING;
    snprintf(m->creds.detail, sizeof m->creds.detail, "Secret %s/%s has not been read yet",
             o->creds_ns, o->creds_name);
    m->cs_fail = op_keymap_new();
    m->set_fail = op_keymap_new();
    m->cs_phase = op_keymap_new();
    m->echo = op_echo_new();
    m->metrics = csl_metrics_new();
    if (!m->cs_fail || !m->set_fail || !m->cs_phase || !m->echo || !m->metrics) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    register_metrics(m, o->max_concurrent);

    if (load_config(r, err, errsz) < 0) return -1;
    csl_kube_options ko = {.user_agent = "cloudserver-operator/" OP_VERSION, .metrics = m->metrics};
    m->kube = csl_kube_new(&m->kcfg, &ko, err, errsz);
    if (!m->kube) return -1;
    csl_cloud_options co = {.user_agent = "cloudserver-operator/" OP_VERSION,
                            .timeout_ms = (long)o->cloud_timeout_ms,
                            .metrics = m->metrics};
    m->cloud = csl_cloud_new(o->cloud_endpoint, &co, err, errsz);
    if (!m->cloud) return -1;
    csl_event_options eo = {.reporting_controller = "cloudserver.dev/operator"};
    m->events = csl_event_recorder_new(m->kube, &eo, err, errsz);
    if (!m->events) return -1;

    csl_ratelimit rl = CSL_RATELIMIT_DEFAULT;
    rl.base_ns = o->rl_base_ns;
    rl.max_ns = o->rl_max_ns;
    csl_workqueue_options qo = {.name = "cloudserver", .metrics = m->metrics, .limit = &rl};
    m->cs_q = csl_workqueue_new(&qo, err, errsz);
    if (!m->cs_q) return -1;
    qo.name = "cloudserverset";
    m->set_q = csl_workqueue_new(&qo, err, errsz);
    if (!m->set_q) return -1;

    const char *ns = o->namespace;
    csl_informer_handler hc = {cs_add, cs_update, cs_delete, m};
    csl_informer_handler hs = {set_add, set_update, set_delete, m};
    csl_informer_handler hk = {secret_add, secret_update, secret_delete, m};
    m->cs_inf =
        informer(m, &op_res_cloudservers, ns, NULL, (long)o->sync_period_ms, &hc, err, errsz);
    if (!m->cs_inf || csl_informer_index_owner(m->cs_inf, "owner") < 0) return -1;
    m->set_inf =
        informer(m, &op_res_cloudserversets, ns, NULL, (long)o->sync_period_ms, &hs, err, errsz);
    if (!m->set_inf) return -1;
    char fs[OP_NAME_LEN + 32];
    snprintf(fs, sizeof fs, "metadata.name=%s", o->creds_name);
    m->secret_inf = informer(m, &res_secrets, o->creds_ns, fs, 0, &hk, err, errsz);
    if (!m->secret_inf) return -1;

    r->n_workers = 2 * (size_t)o->max_concurrent;
    r->workers = calloc(r->n_workers, sizeof *r->workers);
    if (!r->workers) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }

    if (o->metrics_addr &&
        !(r->metrics_srv = serve(o->metrics_addr, "metrics", r, true, err, errsz)))
        return -1;
    if (o->health_addr &&
        !(r->health_srv = serve(o->health_addr, "health probe", r, false, err, errsz)))
        return -1;
    if (r->metrics_srv) csl_log(CSL_LOG_INFO, "serving metrics", "addr", o->metrics_addr, NULL);
    if (r->health_srv) csl_log(CSL_LOG_INFO, "serving health probes", "addr", o->health_addr, NULL);

    if (csl_informer_start(m->secret_inf, err, errsz) < 0 ||
        csl_informer_start(m->cs_inf, err, errsz) < 0 ||
        csl_informer_start(m->set_inf, err, errsz) < 0)
        return -1;

    if (pthread_create(&r->watch_th, NULL, cloud_watch_main, r) == 0) r->watch_started = true;

    if (o->leader_elect) {
        const char *lns = o->leader_ns ? o->leader_ns : csl_kube_namespace(m->kube);
        csl_leader_config lc = {
            .lease_namespace = lns,
            .lease_name = o->leader_id,
            .callbacks = {on_started_leading, on_stopped_leading, on_new_leader, r},
            .metrics = m->metrics,
        };
        r->leader = csl_leader_new(&m->kcfg, &lc, err, errsz);
        if (!r->leader || csl_leader_start(r->leader, err, errsz) < 0) return -1;
        csl_log(CSL_LOG_INFO, "campaigning for leadership", "lease", o->leader_id, "namespace", lns,
                "identity", csl_leader_identity(r->leader), NULL);
    } else {
        csl_metric *g = csl_metrics_gauge(m->metrics, "leader_election_master_status",
                                          "1 while this process leads, else 0", CSL_LABELS("name"));
        csl_metric_set(g, 1, CSL_LABELS(o->leader_id));
        r->leading = 1;
        start_workers(r);
    }
    return 0;
}

static void teardown(run *r)
{
    op_mgr *m = &r->m;
    m->stopping = 1;
    if (m->cs_q) stop_workers(r);
    if (r->watch_started) pthread_join(r->watch_th, NULL);
    if (r->leader) csl_leader_stop(r->leader); /* releases the Lease */
    if (m->secret_inf) csl_informer_stop(m->secret_inf);
    if (m->cs_inf) csl_informer_stop(m->cs_inf);
    if (m->set_inf) csl_informer_stop(m->set_inf);
    op_credentials_stop(m);
    csl_event_recorder_free(m->events);
    if (r->metrics_srv) csl_httpd_free(r->metrics_srv);
    if (r->health_srv) csl_httpd_free(r->health_srv);
    csl_leader_free(r->leader);
    csl_informer_free(m->secret_inf);
    csl_informer_free(m->cs_inf);
    csl_informer_free(m->set_inf);
    csl_workqueue_free(m->cs_q);
    csl_workqueue_free(m->set_q);
    free(r->workers);
    csl_cloud_free(m->cloud);
    csl_kube_free(m->kube);
    csl_kube_config_free(&m->kcfg);
    csl_metrics_free(m->metrics);
    op_keymap_free(m->cs_fail);
    op_keymap_free(m->set_fail);
    op_keymap_free(m->cs_phase);
    op_echo_free(m->echo);
    pthread_mutex_destroy(&m->creds.mu);
    pthread_mutex_destroy(&m->refs_mu);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->watch_mu);
    pthread_cond_destroy(&r->watch_cv);
}

int op_manager_run(const op_options *opt)
{
    run *r = calloc(1, sizeof *r);
    if (!r) {
        csl_log(CSL_LOG_ERROR, "out of memory", NULL);
        return 1;
    }
    r->opt = *opt;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->watch_mu, NULL);
    pthread_cond_init(&r->watch_cv, NULL);
    char err[1024] = "";
    int code = 0;
    if (start(r, err, sizeof err) < 0) {
        csl_log(CSL_LOG_ERROR, "start-up failed", "error", err, NULL);
        teardown(r);
        free(r);
        return 1;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    bool ready_written = false;
    for (;;) {
        struct timespec ts = {0, 200000000};
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            csl_log(CSL_LOG_INFO, "signal received; shutting down", "signal",
                    sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
            break;
        }
        if (r->lost) {
            code = 1;
            break;
        }
        if (!ready_written && synced(r)) {
            ready_written = true;
            csl_log(CSL_LOG_INFO, "caches synced", NULL);
            write_ready_file(r);
        }
    }
    teardown(r);
    free(r);
    return code;
}
