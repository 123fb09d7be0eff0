/* leader.c — leader election on a coordination.k8s.io/v1 Lease, after
 * client-go's leaderelection (see csl/leader.h).
 *
 * The one idea: the Lease is judged by what this process has seen of it, on
 * its own monotonic clock. Each attempt reads the Lease; when its spec
 * differs from the last one seen, the time of seeing it is noted. Someone
 * else's Lease is taken over only when it has not changed for its
 * leaseDurationSeconds, or is released (empty holder). Writes carry the
 * resourceVersion read, so of two candidates racing, one gets a Conflict.
 * Wall-clock times are only written (acquireTime, renewTime), never trusted.
 *
 * One thread does everything: campaign, renew, report, release. */
#include "csl/leader.h"

#include "csl/clock.h"
#include "csl/events.h"
#include "csl/log.h"
#include "csl/rng.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const csl_kube_resource lease_resource = {"coordination.k8s.io", "v1", "leases", true};

typedef enum {
    ATTEMPT_OK,     /* we hold the Lease now */
    ATTEMPT_FAILED, /* could not read or write it; try again */
    ATTEMPT_HELD,   /* someone else holds a valid Lease */
} attempt_result;

struct csl_leader {
    csl_kube *kube;
    char *ns, *name, *identity;
    int lease_s;
    int64_t renew_ns, retry_ns;
    csl_leader_callbacks cb;
    csl_metric *status;
    csl_rng rng;

    /* the elector thread's alone */
    char *observed_raw;    /* the Lease spec as last seen, serialised */
    char *observed_holder; /* its holderIdentity */
    int observed_lease_s;  /* its leaseDurationSeconds */
    int64_t observed_ns;   /* monotonic time it was first seen so */
    cJSON *lease;          /* the Lease object as last read or written */
    char *reported;        /* the holder last given to on_new_leader */

    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    bool started, stop, leading, lost, done;
    char holder[256];
};

/* ---------------------------------------------------------------- config */

#define DEFAULT_LEASE_S 15.0
#define DEFAULT_RENEW_S 10.0
#define DEFAULT_RETRY_S 2.0

static void durations(const csl_leader_config *cfg, double *lease, double *renew, double *retry)
{
    *lease = cfg->lease_duration_s == 0 ? DEFAULT_LEASE_S : cfg->lease_duration_s;
    *renew = cfg->renew_deadline_s == 0 ? DEFAULT_RENEW_S : cfg->renew_deadline_s;
    *retry = cfg->retry_period_s == 0 ? DEFAULT_RETRY_S : cfg->retry_period_s;
}

int csl_leader_config_validate(const csl_leader_config *cfg, char *err, size_t errsz)
{
    double lease, renew, retry;
    if (!cfg) {
        snprintf(err, errsz, "leader election: no configuration");
        return -1;
    }
    if (!cfg->lease_namespace || !*cfg->lease_namespace) {
        snprintf(err, errsz, "leader election: lease_namespace is required");
        return -1;
    }
    if (!cfg->lease_name || !*cfg->lease_name) {
        snprintf(err, errsz, "leader election: lease_name is required");
        return -1;
    }
    if (cfg->identity && !*cfg->identity) {
        snprintf(err, errsz, "leader election: identity is empty (leave it NULL for the default)");
        return -1;
    }
    durations(cfg, &lease, &renew, &retry);
    const struct {
        const char *field;
        double v;
    } all[] = {{"lease_duration_s", lease}, {"renew_deadline_s", renew}, {"retry_period_s", retry}};
    for (size_t i = 0; i < 3; i++)
        if (!(all[i].v > 0) || !isfinite(all[i].v)) {
            snprintf(err, errsz, "leader election: %s (%g) must be greater than 0", all[i].field,
                     all[i].v);
            return -1;
        }
    if (lease != floor(lease) || lease > INT32_MAX) {
        snprintf(err, errsz,
                 "leader election: lease_duration_s (%g) must be a whole number of seconds "
                 "(the Lease stores leaseDurationSeconds as an integer)",
                 lease);
        return -1;
    }
    if (!(lease > renew)) {
        snprintf(err, errsz,
                 "leader election: lease_duration_s (%g) must be greater than renew_deadline_s "
                 "(%g)",
                 lease, renew);
        return -1;
    }
    if (!(renew > retry * CSL_LEADER_JITTER)) {
        snprintf(err, errsz,
                 "leader election: renew_deadline_s (%g) must be greater than retry_period_s "
                 "× %g (%g)",
                 renew, CSL_LEADER_JITTER, retry * CSL_LEADER_JITTER);
        return -1;
    }
    return 0;
}

static char *default_identity(void)
{
    char host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char seed[320];
    snprintf(seed, sizeof seed, "%s/%ld/%lld/%lld", host, (long)getpid(), (long long)csl_mono_ns(),
             (long long)csl_microtime_now());
    csl_rng r;
    csl_rng_seed(&r, csl_hash64(seed));
    char id[300];
    snprintf(id, sizeof id, "%s_%016llx", host, (unsigned long long)csl_rng_next(&r));
    return strdup(id);
}

csl_leader *csl_leader_new(const csl_kube_config *kcfg, const csl_leader_config *cfg, char *err,
                           size_t errsz)
{
    if (csl_leader_config_validate(cfg, err, errsz) != 0) return NULL;
    if (!kcfg) {
        snprintf(err, errsz, "leader election: no Kubernetes configuration given");
        return NULL;
    }
    double lease, renew, retry;
    durations(cfg, &lease, &renew, &retry);
    csl_leader *l = calloc(1, sizeof *l);
    if (!l) goto oom;
    l->lease_s = (int)lease;
    l->renew_ns = (int64_t)(renew * 1e9);
    l->retry_ns = (int64_t)(retry * 1e9);
    l->cb = cfg->callbacks;
    l->ns = strdup(cfg->lease_namespace);
    l->name = strdup(cfg->lease_name);
    l->identity = cfg->identity ? strdup(cfg->identity) : default_identity();
    if (!l->ns || !l->name || !l->identity) goto oom;
    csl_rng_seed(&l->rng, csl_hash64(l->identity) ^ (uint64_t)csl_mono_ns());

    /* Half the renew deadline per request, as client-go's resourcelock:
     * a hung call cannot use up the deadline alone. */
    long timeout_ms = (long)(renew * 500);
    if (timeout_ms < 1000) timeout_ms = 1000;
    csl_kube_options ko = {
        .connect_timeout_ms = timeout_ms, .timeout_ms = timeout_ms, .metrics = cfg->metrics};
    char kerr[512];
    l->kube = csl_kube_new(kcfg, &ko, kerr, sizeof kerr);
    if (!l->kube) {
        snprintf(err, errsz, "leader election: %s", kerr);
        goto fail;
    }
    if (cfg->metrics) {
        l->status = csl_metrics_gauge(cfg->metrics, "leader_election_master_status",
                                      "Gauge of if the reporting system is master of the relevant "
                                      "lease, 0 indicates backup, 1 indicates master. 'name' is "
                                      "the string used to identify the lease.",
                                      CSL_LABELS("name"));
        csl_metric_set(l->status, 0, CSL_LABELS(l->name));
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    return l;
oom:
    snprintf(err, errsz, "leader election: out of memory");
fail:
    if (l) {
        csl_kube_free(l->kube);
        free(l->ns);
        free(l->name);
        free(l->identity);
        free(l);
    }
    return NULL;
}

/* ---------------------------------------------------------------- the Lease */

static const char *spec_str(const cJSON *spec, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int spec_int(const cJSON *spec, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, field);
    return cJSON_IsNumber(v) ? v->valueint : 0;
}

static void set_str(cJSON *obj, const char *field, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, field);
    cJSON_AddStringToObject(obj, field, v);
}

static void set_num(cJSON *obj, const char *field, double v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, field);
    cJSON_AddNumberToObject(obj, field, v);
}

/* Takes lease (owned) as the latest known object and notes when its spec
 * changed. */
static void observe(csl_leader *l, cJSON *lease, int64_t now_ns)
{
    cJSON_Delete(l->lease);
    l->lease = lease;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(lease, "spec");
    char *raw = spec ? cJSON_PrintUnformatted(spec) : strdup("{}");
    if (!raw) return;
    if (l->observed_raw && strcmp(raw, l->observed_raw) == 0) {
        free(raw);
        return;
    }
    free(l->observed_raw);
    l->observed_raw = raw;
    l->observed_ns = now_ns;
    free(l->observed_holder);
    l->observed_holder = strdup(spec_str(spec, "holderIdentity"));
    l->observed_lease_s = spec_int(spec, "leaseDurationSeconds");
    pthread_mutex_lock(&l->mu);
    snprintf(l->holder, sizeof l->holder, "%s", l->observed_holder ? l->observed_holder : "");
    pthread_mutex_unlock(&l->mu);
}

static bool observed_is_us(const csl_leader *l)
{
    return l->observed_holder && strcmp(l->observed_holder, l->identity) == 0;
}

/* on_new_leader when the observed holder changed (never for ""). */
static void report(csl_leader *l)
{
    const char *h = l->observed_holder;
    if (!h || !*h || (l->reported && strcmp(l->reported, h) == 0)) return;
    free(l->reported);
    l->reported = strdup(h);
    csl_log(CSL_LOG_INFO, "new leader", "lease", l->name, "holder", h, NULL);
    if (l->cb.on_new_leader) l->cb.on_new_leader(h, l->cb.ctx);
}

static attempt_result create_lease(csl_leader *l, const char *now)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "apiVersion", "coordination.k8s.io/v1");
    cJSON_AddStringToObject(obj, "kind", "Lease");
    cJSON *meta = cJSON_AddObjectToObject(obj, "metadata");
    cJSON_AddStringToObject(meta, "name", l->name);
    cJSON_AddStringToObject(meta, "namespace", l->ns);
    cJSON *spec = cJSON_AddObjectToObject(obj, "spec");
    cJSON_AddStringToObject(spec, "holderIdentity", l->identity);
    cJSON_AddNumberToObject(spec, "leaseDurationSeconds", l->lease_s);
    cJSON_AddStringToObject(spec, "acquireTime", now);
    cJSON_AddStringToObject(spec, "renewTime", now);
    cJSON_AddNumberToObject(spec, "leaseTransitions", 0);
    csl_kube_error err;
    cJSON *made = csl_kube_create(l->kube, &lease_resource, l->ns, obj, &err);
    cJSON_Delete(obj);
    if (!made) {
        csl_debugf("lease %s/%s: cannot create: %s", l->ns, l->name, err.message);
        return ATTEMPT_FAILED;
    }
    observe(l, made, csl_mono_ns());
    return ATTEMPT_OK;
}

/* One round of client-go's tryAcquireOrRenew. */
static attempt_result try_acquire_or_renew(csl_leader *l)
{
    char now[CSL_MICROTIME_LEN];
    csl_microtime_format(csl_microtime_now(), now);
    csl_kube_error err;
    cJSON *got = csl_kube_get(l->kube, &lease_resource, l->ns, l->name, NULL, &err);
    if (!got) {
        if (err.code == CSL_KUBE_NOT_FOUND) return create_lease(l, now);
        csl_debugf("lease %s/%s: cannot read: %s", l->ns, l->name, err.message);
        return ATTEMPT_FAILED;
    }
    int64_t seen_ns = csl_mono_ns();
    observe(l, got, seen_ns);
    bool us = observed_is_us(l);
    if (l->observed_holder && *l->observed_holder && !us &&
        seen_ns < l->observed_ns + (int64_t)l->observed_lease_s * 1000000000) {
        return ATTEMPT_HELD;
    }

    cJSON *obj = cJSON_Duplicate(l->lease, true);
    if (!obj) return ATTEMPT_FAILED;
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    if (!cJSON_IsObject(spec)) {
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "spec");
        spec = cJSON_AddObjectToObject(obj, "spec");
    }
    int transitions = spec_int(spec, "leaseTransitions");
    set_str(spec, "holderIdentity", l->identity);
    set_num(spec, "leaseDurationSeconds", l->lease_s);
    set_str(spec, "renewTime", now);
    if (!us || !*spec_str(spec, "acquireTime")) set_str(spec, "acquireTime", now);
    set_num(spec, "leaseTransitions", us ? transitions : transitions + 1);
    cJSON *written = csl_kube_update(l->kube, &lease_resource, l->ns, obj, NULL, &err);
    cJSON_Delete(obj);
    if (!written) {
        csl_debugf("lease %s/%s: cannot %s: %s", l->ns, l->name, us ? "renew" : "acquire",
                   err.message);
        return ATTEMPT_FAILED;
    }
    observe(l, written, csl_mono_ns());
    return ATTEMPT_OK;
}

/* client-go's release(): holder "", duration 1 s, so that a standby takes
 * over at its next attempt. Only while the last Lease seen is ours. */
static void release(csl_leader *l)
{
    if (!l->lease || !observed_is_us(l)) return;
    char now[CSL_MICROTIME_LEN];
    csl_microtime_format(csl_microtime_now(), now);
    cJSON *obj = cJSON_Duplicate(l->lease, true);
    cJSON *spec = obj ? cJSON_GetObjectItemCaseSensitive(obj, "spec") : NULL;
    if (!spec) {
        cJSON_Delete(obj);
        return;
    }
    set_str(spec, "holderIdentity", "");
    set_num(spec, "leaseDurationSeconds", 1);
    set_str(spec, "renewTime", now);
    set_str(spec, "acquireTime", now);
    csl_kube_error err;
    cJSON *written = csl_kube_update(l->kube, &lease_resource, l->ns, obj, NULL, &err);
    cJSON_Delete(obj);
    if (!written) {
        csl_log(CSL_LOG_WARN, "could not release the lease; a standby takes over when it expires",
                "lease", l->name, "error", err.message, NULL);
        return;
    }
    observe(l, written, csl_mono_ns());
    csl_log(CSL_LOG_INFO, "released the lease", "lease", l->name, NULL);
}

/* ---------------------------------------------------------------- the thread */

static bool stopping(csl_leader *l)
{
    pthread_mutex_lock(&l->mu);
    bool s = l->stop;
    pthread_mutex_unlock(&l->mu);
    return s;
}

/* Sleeps ns unless stopped first. False when stopped. */
static bool pause_ns(csl_leader *l, int64_t ns)
{
    int64_t end = csl_mono_ns() + ns;
    pthread_mutex_lock(&l->mu);
    while (!l->stop && csl_mono_ns() < end) {
        struct timespec ts = {(time_t)(end / 1000000000), (long)(end % 1000000000)};
        pthread_cond_timedwait(&l->cond, &l->mu, &ts);
    }
    bool go_on = !l->stop;
    pthread_mutex_unlock(&l->mu);
    return go_on;
}

static void set_leading(csl_leader *l, bool leading, bool lost)
{
    pthread_mutex_lock(&l->mu);
    l->leading = leading;
    if (lost) l->lost = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    csl_metric_set(l->status, leading ? 1 : 0, CSL_LABELS(l->name));
}

static void *elector_thread(void *arg)
{
    csl_leader *l = arg;
    attempt_result res;

    /* Campaign: every retry period with client-go's jitter. */
    int64_t last_ok; /* when the last successful attempt began: its write came later */
    for (;;) {
        if (stopping(l)) goto out;
        last_ok = csl_mono_ns();
        res = try_acquire_or_renew(l);
        report(l);
        if (res == ATTEMPT_OK) break;
        double jitter = 1 + csl_rng_double(&l->rng) * CSL_LEADER_JITTER;
        if (!pause_ns(l, (int64_t)((double)l->retry_ns * jitter))) goto out;
    }
    if (stopping(l)) {
        release(l);
        goto out;
    }
    csl_log(CSL_LOG_INFO, "started leading", "lease", l->name, "identity", l->identity, NULL);
    set_leading(l, true, false);
    if (l->cb.on_started_leading) l->cb.on_started_leading(l->cb.ctx);

    /* Renew every retry period. Lost when no renewal has succeeded for the
     * renew deadline, counted from the start of the last successful
     * attempt (no standby can have seen that write earlier), or at once
     * when another holder is seen. With one request timeout (renew / 2)
     * on top, a leader gives up within 1.5 × renew of its last write. */
    while (pause_ns(l, l->retry_ns)) {
        for (;;) {
            int64_t attempt_ns = csl_mono_ns();
            res = try_acquire_or_renew(l);
            report(l);
            if (res == ATTEMPT_OK) last_ok = attempt_ns;
            if (res != ATTEMPT_FAILED || stopping(l)) break;
            int64_t left = last_ok + l->renew_ns - csl_mono_ns();
            if (left <= 0) break;
            if (!pause_ns(l, left < l->retry_ns ? left : l->retry_ns)) break;
        }
        if (stopping(l)) break;
        if (res != ATTEMPT_OK) {
            csl_log(CSL_LOG_ERROR, "leader election lost", "lease", l->name, "identity",
                    l->identity, "why",
                    res == ATTEMPT_HELD ? "another holder took the lease"
                                        : "could not renew within the renew deadline",
                    NULL);
            set_leading(l, false, true);
            if (l->cb.on_stopped_leading) l->cb.on_stopped_leading(l->cb.ctx);
            goto out;
        }
    }
    /* Stopped while leading: the work stops first, then the Lease goes. */
    set_leading(l, false, false);
    if (l->cb.on_stopped_leading) l->cb.on_stopped_leading(l->cb.ctx);
    release(l);
out:
    pthread_mutex_lock(&l->mu);
    l->done = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---------------------------------------------------------------- API */

int csl_leader_start(csl_leader *l, char *err, size_t errsz)
{
    pthread_mutex_lock(&l->mu);
    if (l->started) {
        pthread_mutex_unlock(&l->mu);
        snprintf(err, errsz, "leader election: already started");
        return -1;
    }
    int rc = pthread_create(&l->thread, NULL, elector_thread, l);
    if (rc == 0) l->started = true;
    pthread_mutex_unlock(&l->mu);
    if (rc != 0) {
        snprintf(err, errsz, "leader election: cannot start its thread: %s", strerror(rc));
        return -1;
    }
    return 0;
}

bool csl_leader_is_leading(csl_leader *l)
{
    pthread_mutex_lock(&l->mu);
    bool v = l->leading;
    pthread_mutex_unlock(&l->mu);
    return v;
}

bool csl_leader_lost(csl_leader *l)
{
    pthread_mutex_lock(&l->mu);
    bool v = l->lost;
    pthread_mutex_unlock(&l->mu);
    return v;
}

bool csl_leader_wait_leading(csl_leader *l, long timeout_ms)
{
    int64_t end = csl_mono_ns() + (int64_t)timeout_ms * 1000000;
    pthread_mutex_lock(&l->mu);
    while (!l->leading && !l->lost && !l->done && csl_mono_ns() < end) {
        struct timespec ts = {(time_t)(end / 1000000000), (long)(end % 1000000000)};
        pthread_cond_timedwait(&l->cond, &l->mu, &ts);
    }
    bool v = l->leading;
    pthread_mutex_unlock(&l->mu);
    return v;
}

const char *csl_leader_identity(const csl_leader *l)
{
    return l->identity;
}

void csl_leader_holder(csl_leader *l, char *out, size_t outsz)
{
    pthread_mutex_lock(&l->mu);
    snprintf(out, outsz, "%s", l->holder);
    pthread_mutex_unlock(&l->mu);
}

void csl_leader_stop(csl_leader *l)
{
    pthread_mutex_lock(&l->mu);
    bool join = l->started && !l->stop;
    l->stop = true;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (join) pthread_join(l->thread, NULL);
}

void csl_leader_free(csl_leader *l)
{
    if (!l) return;
    csl_leader_stop(l);
    csl_kube_free(l->kube);
    cJSON_Delete(l->lease);
    free(l->observed_raw);
    free(l->observed_holder);
    free(l->reported);
    free(l->ns);
    free(l->name);
    free(l->identity);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
