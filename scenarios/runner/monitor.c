/* monitor.c — one scenario's observer: an informer on its CloudServers, a
 * sampling thread (mockcloud state and operator metrics once a second), and
 * the end-of-run checks.
 *
 * One idea: this file only fetches and records. Every judgement — Ready
 * counts, create-to-Ready pairs, recovery, counter deltas, invariants — is
 * a pure function of monitor_inv.c fed with what was fetched, under one
 * lock. Waiting is cheap: one /_mock/state GET and one /metrics scrape per
 * replica per second; the journal is read once, at the end, with filters.
 * Rules, data sources and messages are documented in docs/runner-checks.md. */
#include "monitor.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/informer.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "monitor_inv.h"
#include "prom.h"
#include "slo.h"

#define SAMPLE_NS 1000000000LL    /* the sampling period (real) */
#define LIVE_RETRY_NS 500000000LL /* check_live's retry period (real) */
#define SYNC_TIMEOUT_MS 30000     /* the informer's first list */
#define CPU_WINDOW_S 5.0          /* operatorCPU: peak over windows this long (real) */
#define MAX_REPLICAS 8
#define SUMMARY_ITEMS 5   /* violations quoted in a check's message */
#define JOURNAL_MAX 10000 /* mockcloud's largest journal page */

static const csl_kube_resource CS_RES = {"cloudserver.dev", "v1", "cloudservers", true};
static const csl_kube_resource EV_RES = {"events.k8s.io", "v1", "events", true};

/* One operator replica's counters, followed across scrapes and restarts. */
typedef struct replica {
    srm_counter cpu, reconciles, errors, writes;
    int64_t last_ns; /* when cpu was last read; 0 never */
} replica;

struct sr_monitor {
    sr_env *env;
    sr_stack *stack;
    const sr_scenario *sc;
    sr_scenario_result *res;
    int64_t t0;
    double scale;
    csl_kube *kube;
    csl_informer *inf;
    char ns[256];

    pthread_t thread;
    bool thread_started;
    pthread_cond_t cond; /* wakes the sampler to stop */
    bool stop;

    /* Everything below, and every write into res, under mu. */
    pthread_mutex_t mu;
    srm_objects objs;
    srm_ctr ctr;
    srm_faults faults;
    srm_seen seen;
    srm_cloud cloud;      /* the last state snapshot */
    int64_t cloud_ns;     /* when it was asked for; 0 never */
    int64_t ready_since;  /* objects-side recovered since (0: not now) */
    bool recovery_frozen; /* after the live phase: clocks no longer end */
    int64_t frozen_ns;    /* since when */
    srm_viols one;        /* oneInstancePerObject, deduplicated by key */
    char state_err[256];  /* why the last state fetch failed ("" when it worked) */
    bool state_ever;
    uint64_t journal_seq0; /* the journal's lastSeq when the scenario began */

    replica rep[MAX_REPLICAS];
    bool metrics_ever;
    double reconciles, errors, writes, cpu_total;
    double *cpu_t, *cpu_cum; /* cumulative CPU seconds at real times, for sr_cpu_peak */
    size_t n_cpu, cap_cpu;
    double rss_peak;

    bool live_checked;
    bool finished;
};

/* ---------------------------------------------------------------- helpers */

static double scen_s(const sr_monitor *m, int64_t t)
{
    return (double)(t - m->t0) / 1e9 * m->scale;
}

static double scen_dur(const sr_monitor *m, int64_t ns)
{
    return (double)ns / 1e9 * m->scale;
}

/* Adds an SR_CHECK_INVARIANT check from a violation list. */
static void add_invariant(sr_monitor *m, const char *name, const srm_viols *v)
{
    char *msg = v->n ? srm_viols_summary(v, SUMMARY_ITEMS) : NULL;
    sr_result_add_check(m->res, SR_CHECK_INVARIANT, name, v->n ? SR_FAIL : SR_PASS, (double)v->n, 0,
                        "", v->n ? (msg ? msg : "violations (no memory for them)") : NULL);
    free(msg);
}

static void add_invariant_status(sr_monitor *m, const char *name, sr_status st, const char *msg)
{
    sr_result_add_check(m->res, SR_CHECK_INVARIANT, name, st, 0, 0, "", msg);
}

/* ---------------------------------------------------------------- recovery */

/* Ends the recovery clocks the last cloud snapshot confirms (mu held). */
static void recovery_check_locked(sr_monitor *m)
{
    int64_t first;
    if (m->recovery_frozen || !m->ready_since || !m->cloud_ns ||
        !srm_recovery_pending(&m->faults, &first, NULL) || first > m->cloud_ns)
        return;
    if (!srm_recovered(&m->objs, &m->cloud)) return;
    int64_t d[64];
    size_t n = srm_recovery_end(&m->faults, m->cloud_ns, m->ready_since, d, 64);
    for (size_t i = 0; i < n && i < 64; i++) sr_result_add_recovery(m->res, scen_dur(m, d[i]));
}

/* Objects-side recovery (Ready, generation) as of now (mu held); followed
 * only while a clock runs. */
static void objects_changed_locked(sr_monitor *m, int64_t now)
{
    if (m->recovery_frozen || !srm_recovery_pending(&m->faults, NULL, NULL)) {
        m->ready_since = 0;
        return;
    }
    if (srm_recovered(&m->objs, NULL)) {
        if (!m->ready_since) m->ready_since = now;
    } else {
        m->ready_since = 0;
    }
    recovery_check_locked(m);
}

/* ---------------------------------------------------------------- informer */

static void on_object(sr_monitor *m, const cJSON *obj)
{
    int64_t now = csl_mono_ns();
    pthread_mutex_lock(&m->mu);
    srm_object *o = srm_objects_observe(&m->objs, obj);
    if (o && o->ready) {
        int64_t lat = srm_ctr_ready(&m->ctr, o->uid, now);
        if (lat >= 0) sr_result_add_ctr(m->res, scen_dur(m, lat));
    }
    objects_changed_locked(m, now);
    pthread_mutex_unlock(&m->mu);
}

static void h_add(const cJSON *obj, void *ctx)
{
    on_object(ctx, obj);
}

static void h_update(const cJSON *old_obj, const cJSON *new_obj, void *ctx)
{
    on_object(ctx, new_obj);
}

static void h_delete(const cJSON *obj, bool final_state_unknown, void *ctx)
{
    sr_monitor *m = ctx;
    pthread_mutex_lock(&m->mu);
    srm_objects_observe(&m->objs, obj); /* its last failoverCount */
    srm_objects_gone(&m->objs, csl_kube_obj_uid(obj));
    objects_changed_locked(m, csl_mono_ns());
    pthread_mutex_unlock(&m->mu);
}

/* ---------------------------------------------------------------- sampling */

/* GET /_mock/state: the reply (caller frees) or NULL with m->state_err set. */
static cJSON *fetch_state(sr_monitor *m)
{
    cJSON *reply = NULL;
    char err[200] = "";
    int st = sr_mock_request(m->stack, "GET", "/_mock/state", NULL, &reply, err, sizeof err);
    if (st != 200 || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(reply, "instances"))) {
        pthread_mutex_lock(&m->mu);
        if (st < 0)
            snprintf(m->state_err, sizeof m->state_err, "GET /_mock/state: %s", err);
        else
            snprintf(m->state_err, sizeof m->state_err, "GET /_mock/state answered %d", st);
        pthread_mutex_unlock(&m->mu);
        cJSON_Delete(reply);
        return NULL;
    }
    return reply;
}

/* Takes a state snapshot asked for at t: remembers it, records the
 * instances seen, checks oneInstancePerObject and the recovery clocks. */
static void take_state(sr_monitor *m, const cJSON *state, int64_t t)
{
    const cJSON *insts = cJSON_GetObjectItemCaseSensitive(state, "instances");
    srm_viols now = {0};
    pthread_mutex_lock(&m->mu);
    m->state_err[0] = '\0';
    m->state_ever = true;
    srm_seen_add(&m->seen, insts);
    if (srm_cloud_set(&m->cloud, insts) == 0) m->cloud_ns = t;
    if (m->sc->invariants.one_instance_per_object &&
        srm_check_one_instance(insts, &m->objs, m->ns, &now) > 0) {
        for (size_t i = 0; i < now.n; i++)
            if (!srm_viols_has_key(&m->one, now.keys[i]))
                srm_viols_add(&m->one, now.keys[i], "at %.1fs: %s", scen_s(m, t), now.items[i]);
    }
    recovery_check_locked(m);
    pthread_mutex_unlock(&m->mu);
    srm_viols_free(&now);
}

static void add_cpu_point(sr_monitor *m, double t_real_s, double cum)
{
    if (m->n_cpu == m->cap_cpu) {
        size_t nc = m->cap_cpu ? m->cap_cpu * 2 : 256;
        double *a = realloc(m->cpu_t, nc * sizeof *a);
        if (!a) return;
        m->cpu_t = a;
        double *b = realloc(m->cpu_cum, nc * sizeof *b);
        if (!b) return;
        m->cpu_cum = b;
        m->cap_cpu = nc;
    }
    m->cpu_t[m->n_cpu] = t_real_s;
    m->cpu_cum[m->n_cpu] = cum;
    m->n_cpu++;
}

/* Scrapes every running replica; fills *cores and *rss for the sample
 * (-1 when no replica answered). Without the lock while scraping. */
static void sample_metrics(sr_monitor *m, int64_t now, double *cores, double *rss)
{
    *cores = -1;
    *rss = -1;
    int n = sr_stack_replicas(m->stack);
    if (n > MAX_REPLICAS) n = MAX_REPLICAS;
    bool any = false;
    double sum_cores = 0, max_rss = -1, d_rec = 0, d_err = 0, d_wr = 0, d_cpu = 0;
    for (int r = 0; r < (n > 0 ? n : 1); r++) {
        if (n > 0 && !sr_stack_replica_running(m->stack, r)) continue;
        csl_buf b;
        csl_buf_init(&b);
        char err[200];
        if (sr_stack_metrics(m->stack, n > 0 ? r : -1, &b, err, sizeof err) < 0) {
            csl_buf_free(&b);
            continue; /* down, or not answering: this sample has no CPU from it */
        }
        sr_prom *p = sr_prom_parse(csl_buf_str(&b), strlen(csl_buf_str(&b)));
        csl_buf_free(&b);
        if (!p) continue;
        bool fcpu, fst, f;
        double cpu = sr_prom_sum(p, "process_cpu_seconds_total", NULL, &fcpu);
        double start = sr_prom_sum(p, "process_start_time_seconds", NULL, &fst);
        double mem = sr_prom_sum(p, "process_resident_memory_bytes", NULL, &f);
        if (f && mem > max_rss) max_rss = mem;
        double rec =
            sr_prom_sum(p, "controller_runtime_reconcile_total", "controller=cloudserver", &f);
        pthread_mutex_lock(&m->mu);
        replica *rp = &m->rep[r];
        if (f) d_rec += srm_counter_feed(&rp->reconciles, rec, start);
        double e = sr_prom_sum(p, "controller_runtime_reconcile_errors_total",
                               "controller=cloudserver", &f);
        if (f) d_err += srm_counter_feed(&rp->errors, e, start);
        double w = sr_prom_sum(p, "rest_client_requests_total", "method=POST|PUT|PATCH|DELETE", &f);
        if (f) d_wr += srm_counter_feed(&rp->writes, w, start);
        if (fcpu) {
            bool had = rp->cpu.have && rp->last_ns;
            double d = srm_counter_feed(&rp->cpu, cpu, start);
            if (had && now > rp->last_ns) {
                sum_cores += d / ((double)(now - rp->last_ns) / 1e9);
                any = true;
            }
            d_cpu += d;
            rp->last_ns = now;
        }
        pthread_mutex_unlock(&m->mu);
        sr_prom_free(p);
    }
    pthread_mutex_lock(&m->mu);
    if (max_rss >= 0 || any) m->metrics_ever = true;
    m->reconciles += d_rec;
    m->errors += d_err;
    m->writes += d_wr;
    m->cpu_total += d_cpu;
    if (any) add_cpu_point(m, (double)(now - m->t0) / 1e9, m->cpu_total);
    if (max_rss > m->rss_peak) m->rss_peak = max_rss;
    pthread_mutex_unlock(&m->mu);
    if (any) *cores = sum_cores;
    *rss = max_rss;
}

static void sample(sr_monitor *m)
{
    int64_t t = csl_mono_ns();
    cJSON *state = fetch_state(m);
    if (state) take_state(m, state, t);
    cJSON_Delete(state);
    sr_sample s = {.t_s = scen_s(m, t)};
    sample_metrics(m, t, &s.cpu_cores, &s.rss_bytes);
    pthread_mutex_lock(&m->mu);
    srm_objects_counts(&m->objs, &s.objects, &s.ready);
    if (!m->finished) sr_result_add_sample(m->res, &s);
    pthread_mutex_unlock(&m->mu);
}

static void *sampler(void *arg)
{
    sr_monitor *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        pthread_mutex_unlock(&m->mu);
        int64_t began = csl_mono_ns();
        sample(m);
        pthread_mutex_lock(&m->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t left = SAMPLE_NS - (csl_mono_ns() - began);
        if (left < SAMPLE_NS / 10) left = SAMPLE_NS / 10; /* a slow sample never spins */
        int64_t ns = ts.tv_nsec + left;
        ts.tv_sec += ns / 1000000000LL;
        ts.tv_nsec = ns % 1000000000LL;
        while (!m->stop && pthread_cond_timedwait(&m->cond, &m->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ---------------------------------------------------------------- life */

sr_monitor *sr_monitor_start(sr_env *env, sr_stack *stack, const sr_scenario *sc,
                             sr_scenario_result *res, int64_t t0_mono_ns, double time_scale,
                             char *err, size_t errsz)
{
    sr_monitor *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errsz, "monitor: out of memory");
        return NULL;
    }
    m->env = env;
    m->stack = stack;
    m->sc = sc;
    m->res = res;
    m->t0 = t0_mono_ns;
    m->scale = time_scale >= 1 ? time_scale : 1;
    m->rss_peak = -1;
    snprintf(m->ns, sizeof m->ns, "%s", sr_stack_namespace(stack));
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);

    char e[256];
    if (!(m->kube = sr_env_kube_new(env, e, sizeof e))) {
        snprintf(err, errsz, "monitor: kube client: %s", e);
        goto fail;
    }
    csl_informer_options io = {
        .reflector = {.resource = CS_RES, .namespace = m->ns, .name = "monitor-cloudservers"}};
    if (!(m->inf = csl_informer_new(m->kube, &io, e, sizeof e))) {
        snprintf(err, errsz, "monitor: informer: %s", e);
        goto fail;
    }
    csl_informer_handler h = {
        .on_add = h_add, .on_update = h_update, .on_delete = h_delete, .ctx = m};
    if (csl_informer_add_handler(m->inf, &h) < 0 || csl_informer_start(m->inf, e, sizeof e) < 0) {
        snprintf(err, errsz, "monitor: informer on cloudservers in %s: %s", m->ns, e);
        goto fail;
    }
    if (!csl_informer_wait_synced(m->inf, SYNC_TIMEOUT_MS)) {
        snprintf(err, errsz,
                 "monitor: the CloudServer informer in %s did not sync within %d s (is the CRD "
                 "installed and the API server up?)",
                 m->ns, SYNC_TIMEOUT_MS / 1000);
        goto fail;
    }
    /* Where the scenario's part of the journal begins (a shared mockcloud
     * in --kubeconfig mode holds earlier runs too). */
    cJSON *j = NULL;
    if (sr_mock_request(stack, "GET", "/_mock/journal?limit=1", NULL, &j, e, sizeof e) == 200) {
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(j, "lastSeq");
        if (cJSON_IsNumber(ls) && ls->valuedouble > 0) m->journal_seq0 = (uint64_t)ls->valuedouble;
    }
    cJSON_Delete(j);
    if (pthread_create(&m->thread, NULL, sampler, m) != 0) {
        snprintf(err, errsz, "monitor: cannot start its sampling thread");
        goto fail;
    }
    m->thread_started = true;
    return m;
fail:
    sr_monitor_free(m);
    return NULL;
}

static void stop_thread(sr_monitor *m)
{
    if (!m->thread_started) return;
    pthread_mutex_lock(&m->mu);
    m->stop = true;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->mu);
    pthread_join(m->thread, NULL);
    m->thread_started = false;
}

void sr_monitor_free(sr_monitor *m)
{
    if (!m) return;
    stop_thread(m);
    if (m->inf) csl_informer_free(m->inf);
    if (m->kube) csl_kube_free(m->kube);
    srm_objects_free(&m->objs);
    srm_ctr_free(&m->ctr);
    srm_faults_free(&m->faults);
    srm_seen_free(&m->seen);
    srm_cloud_free(&m->cloud);
    srm_viols_free(&m->one);
    free(m->cpu_t);
    free(m->cpu_cum);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

/* ---------------------------------------------------------------- what the engine reports */

void sr_monitor_created(sr_monitor *m, const char *uid, int64_t t_mono_ns)
{
    if (!m || !uid) return;
    pthread_mutex_lock(&m->mu);
    int64_t lat = srm_ctr_created(&m->ctr, uid, t_mono_ns);
    if (lat >= 0) sr_result_add_ctr(m->res, scen_dur(m, lat));
    pthread_mutex_unlock(&m->mu);
}

void sr_monitor_fault(sr_monitor *m, const char *kind, const char *what, bool cleared)
{
    if (!m) return;
    int64_t now = csl_mono_ns();
    pthread_mutex_lock(&m->mu);
    if (!cleared) {
        long idx = (long)m->res->n_timeline;
        if (sr_result_add_event(m->res, kind, what, scen_s(m, now), -1))
            srm_fault_open(&m->faults, kind, what, idx);
    } else {
        /* Faults cleared by cleanup, after the live phase, start no clock. */
        long idx = srm_fault_clear(&m->faults, kind, what, now, !m->recovery_frozen);
        if (idx >= 0 && (size_t)idx < m->res->n_timeline)
            m->res->timeline[idx].end_s = scen_s(m, now);
        else if (idx == -1)
            sr_result_add_event(m->res, kind, what, scen_s(m, now), -1); /* an instant */
        /* A clock ends at the first snapshot asked for after now, with the
         * objects Ready since ready_since (already so: since now). */
        if (!m->ready_since && !m->recovery_frozen && srm_recovered(&m->objs, NULL))
            m->ready_since = now;
    }
    pthread_mutex_unlock(&m->mu);
}

void sr_monitor_counts(sr_monitor *m, int *objects, int *ready)
{
    if (!m) {
        if (objects) *objects = 0;
        if (ready) *ready = 0;
        return;
    }
    pthread_mutex_lock(&m->mu);
    srm_objects_counts(&m->objs, objects, ready);
    pthread_mutex_unlock(&m->mu);
}

/* ---------------------------------------------------------------- live checks */

/* The informer's objects as one array (caller frees). */
static cJSON *cached_objects(sr_monitor *m)
{
    cJSON *arr = cJSON_CreateArray();
    size_t n = 0;
    char **keys = csl_informer_keys(m->inf, &n);
    for (size_t i = 0; arr && keys && i < n; i++) {
        cJSON *o = csl_informer_get(m->inf, keys[i]);
        if (o) cJSON_AddItemToArray(arr, o);
    }
    if (keys) csl_informer_keys_free(keys, n);
    return arr;
}

void sr_monitor_check_live(sr_monitor *m, int64_t settle_ns)
{
    if (!m || m->live_checked) return;
    const sr_invariants *inv = &m->sc->invariants;
    int64_t deadline = csl_mono_ns() + (int64_t)((double)settle_ns / m->scale);
    srm_viols st = {0}, gen = {0};
    bool have_state = false;
    for (;;) {
        srm_viols_free(&st);
        srm_viols_free(&gen);
        int64_t t = csl_mono_ns();
        cJSON *state = fetch_state(m);
        cJSON *objs = cached_objects(m);
        have_state = state != NULL;
        if (state) {
            take_state(m, state, t);
            if (inv->status_matches_cloud)
                srm_check_status(objs, cJSON_GetObjectItemCaseSensitive(state, "instances"), &st);
        }
        if (inv->observed_generation) srm_check_observed_generation(objs, &gen);
        cJSON_Delete(state);
        cJSON_Delete(objs);
        bool done = have_state && st.n == 0 && gen.n == 0;
        if (done || csl_mono_ns() + LIVE_RETRY_NS > deadline) break;
        csl_sleep_ns(LIVE_RETRY_NS);
    }
    pthread_mutex_lock(&m->mu);
    if (inv->status_matches_cloud) {
        if (have_state) {
            add_invariant(m, "statusMatchesCloud", &st);
        } else {
            char msg[320];
            snprintf(msg, sizeof msg, "could not read mockcloud's state: %s", m->state_err);
            add_invariant_status(m, "statusMatchesCloud", SR_ERROR, msg);
        }
    }
    if (inv->observed_generation) add_invariant(m, "observedGeneration", &gen);
    m->live_checked = true;
    m->recovery_frozen = true;
    m->frozen_ns = csl_mono_ns();
    pthread_mutex_unlock(&m->mu);
    srm_viols_free(&st);
    srm_viols_free(&gen);
}

/* ---------------------------------------------------------------- finish */

static void count_reason(void *ctx, const char *reason, long n)
{
    sr_result_count(ctx, reason, n);
}

/* A JSON GET on mockcloud's control API: the reply, or NULL with why. */
static cJSON *mock_get(sr_monitor *m, const char *path, char *why, size_t whysz)
{
    cJSON *reply = NULL;
    char err[200];
    int st = sr_mock_request(m->stack, "GET", path, NULL, &reply, err, sizeof err);
    if (st == 200 && reply) return reply;
    if (st < 0)
        snprintf(why, whysz, "GET %s: %s", path, err);
    else
        snprintf(why, whysz, "GET %s answered %d", path, st);
    cJSON_Delete(reply);
    return NULL;
}

/* The recoveryTime SLO fails when a fault was never recovered from. */
static void unrecovered_slo(sr_monitor *m, int64_t end)
{
    int64_t first = 0;
    const char *what = NULL;
    size_t n = srm_recovery_pending(&m->faults, &first, &what);
    if (!n || m->sc->slos.recovery_s < 0) return;
    char msg[512];
    snprintf(msg, sizeof msg,
             "%zu fault(s) never recovered from: after \"%s\" cleared at %.1fs, not every "
             "CloudServer was Ready (observedGeneration caught up, instance running) by the end "
             "of the live phase, %.1fs later",
             n, what ? what : "?", scen_s(m, first), scen_dur(m, end - first));
    double value = scen_dur(m, end - first);
    for (size_t i = 0; i < m->res->n_checks; i++) {
        sr_check_result *c = &m->res->checks[i];
        if (c->kind != SR_CHECK_SLO || strncmp(c->name, "recoveryTime", 12) != 0) continue;
        c->status = SR_FAIL;
        if (value > c->value || isnan(c->value)) c->value = value;
        sr_set_str(&c->message, msg);
        return;
    }
    sr_result_add_check(m->res, SR_CHECK_SLO, "recoveryTime", SR_FAIL, value,
                        m->sc->slos.recovery_s, "s", msg);
}

void sr_monitor_finish(sr_monitor *m)
{
    if (!m || m->finished) return;
    stop_thread(m);
    int64_t end = csl_mono_ns();
    const sr_invariants *inv = &m->sc->invariants;
    char cwhy[320] = "", jwhy[320] = "", kwhy[900] = "";

    /* Fetch everything first, without the lock. */
    cJSON *state = fetch_state(m);
    if (state) take_state(m, state, csl_mono_ns());
    char path[256];
    snprintf(path, sizeof path, "/_mock/journal?method=POST&path=/v1/instances&since=%llu&limit=%d",
             (unsigned long long)m->journal_seq0, JOURNAL_MAX);
    cJSON *creates = mock_get(m, path, jwhy, sizeof jwhy);
    snprintf(path, sizeof path, "/_mock/journal/count?path=/v1/**&since=%llu",
             (unsigned long long)m->journal_seq0);
    cJSON *calls = mock_get(m, path, cwhy, sizeof cwhy);
    if (!calls) csl_logf(CSL_LOG_WARN, "monitor: %s: cloud calls not counted: %s", m->ns, cwhy);
    csl_kube_error ke;
    cJSON *left = csl_kube_list_all(m->kube, &CS_RES, m->ns, NULL, &ke);
    if (!left) snprintf(kwhy, sizeof kwhy, "listing CloudServers in %s: %s", m->ns, ke.message);
    cJSON *events = csl_kube_list_all(m->kube, &EV_RES, m->ns, NULL, &ke);
    if (!events)
        csl_logf(CSL_LOG_WARN, "monitor: %s: Warning Events not counted: %s", m->ns, ke.message);
    csl_informer_stop(m->inf);

    pthread_mutex_lock(&m->mu);
    if (!m->recovery_frozen) m->frozen_ns = end;
    m->recovery_frozen = true;
    const cJSON *insts = cJSON_GetObjectItemCaseSensitive(state, "instances");
    char smsg[320];
    snprintf(smsg, sizeof smsg, "could not read mockcloud's state at the end: %s", m->state_err);

    if (inv->one_instance_per_object) {
        if (!m->state_ever)
            add_invariant_status(m, "oneInstancePerObject", SR_ERROR, smsg);
        else
            add_invariant(m, "oneInstancePerObject", &m->one);
    }
    if (inv->no_duplicate_creates) {
        if (!state || !creates) {
            add_invariant_status(m, "noDuplicateCreates", SR_ERROR, state ? jwhy : smsg);
        } else {
            srm_viols v = {0};
            srm_check_duplicates(cJSON_GetObjectItemCaseSensitive(creates, "items"),
                                 cJSON_GetObjectItemCaseSensitive(state, "idempotencyKeys"),
                                 &m->seen, &m->objs, &v);
            const cJSON *matched = cJSON_GetObjectItemCaseSensitive(creates, "matched");
            const cJSON *dropped = cJSON_GetObjectItemCaseSensitive(creates, "dropped");
            if ((cJSON_IsNumber(matched) && matched->valuedouble > JOURNAL_MAX) ||
                (cJSON_IsNumber(dropped) && dropped->valuedouble > 0))
                csl_logf(CSL_LOG_WARN,
                         "monitor: %s: the journal did not hold every create (dropped %g): "
                         "noDuplicateCreates saw only part of them; raise --journal-size",
                         m->ns, cJSON_IsNumber(dropped) ? dropped->valuedouble : 0);
            add_invariant(m, "noDuplicateCreates", &v);
            srm_viols_free(&v);
        }
    }
    if (inv->no_orphans) {
        if (!state) {
            add_invariant_status(m, "noOrphans", SR_ERROR, smsg);
        } else {
            srm_viols v = {0};
            srm_check_orphans(insts, &m->objs, &v);
            add_invariant(m, "noOrphans", &v);
            srm_viols_free(&v);
        }
    }
    if (inv->finalizers_released) {
        if (!left) {
            add_invariant_status(m, "finalizersReleased", SR_ERROR, kwhy);
        } else {
            srm_viols v = {0};
            srm_check_finalizers(cJSON_GetObjectItemCaseSensitive(left, "items"), &v);
            add_invariant(m, "finalizersReleased", &v);
            srm_viols_free(&v);
        }
    }
    if (!m->live_checked) {
        const char *msg = "not checked: the scenario ended before its live checks";
        if (inv->status_matches_cloud) add_invariant_status(m, "statusMatchesCloud", SR_SKIP, msg);
        if (inv->observed_generation) add_invariant_status(m, "observedGeneration", SR_SKIP, msg);
    }

    if (events)
        srm_warning_reasons(cJSON_GetObjectItemCaseSensitive(events, "items"), count_reason,
                            m->res);

    /* Windows still open end with the scenario. */
    long open[64];
    size_t no = srm_faults_open_indexes(&m->faults, open, 64);
    for (size_t i = 0; i < no; i++)
        if ((size_t)open[i] < m->res->n_timeline) m->res->timeline[open[i]].end_s = scen_s(m, end);

    sr_scenario_result *r = m->res;
    r->objects_created = (long)m->ctr.created;
    const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(calls, "count");
    r->cloud_calls = cJSON_IsNumber(cnt) ? cnt->valuedouble : -1;
    r->kube_writes = m->metrics_ever ? m->writes : -1;
    r->reconciles = m->metrics_ever ? m->reconciles : -1;
    r->reconcile_errors = m->metrics_ever ? m->errors : -1;
    r->cpu_peak_cores =
        m->n_cpu >= 2 ? sr_cpu_peak(m->cpu_t, m->cpu_cum, m->n_cpu, CPU_WINDOW_S) : -1;
    r->rss_peak_bytes = m->rss_peak;
    sr_slo_evaluate(&m->sc->slos, r);
    unrecovered_slo(m, m->frozen_ns);
    m->finished = true;
    pthread_mutex_unlock(&m->mu);

    cJSON_Delete(state);
    cJSON_Delete(creates);
    cJSON_Delete(calls);
    cJSON_Delete(left);
    cJSON_Delete(events);
}
