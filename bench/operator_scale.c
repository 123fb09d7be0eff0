/* operator_scale.c — the operator at scale: N CloudServers created at once
 * through the Kubernetes API reach Ready; how long that takes, how many API
 * writes per object the operator made, and, in the same run, a floor: the
 * same objects' minimal writes issued by a bare client of ours. Then the
 * operator's RSS with N objects Ready and its CPU while idle.
 *
 * The one idea: the operator is judged against what the API server itself
 * costs on this machine. The floor creates N objects of the same shape in a
 * namespace the operator does not watch (with the same client threads as
 * the operator's run) and gives each the writes the reconcile contract
 * cannot do without: a merge patch adding the finalizer (item 1), one
 * status write (item 8: written once, when it changes) and one Event for
 * the create decision (item 9) — issued by as many threads as the operator
 * has workers (its controller_runtime_max_concurrent_reconciles), so
 * operator/floor is the operator's overhead and not the plane's speed. A
 * second floor in NS2-w runs with this program's watch on it, as the
 * operator's run has one, so the observer's cost is on both sides. A third,
 * pipelined, in NS2-p overlaps the writes with the creates the way an
 * operator must: each object gets its writes once the watch has shown it.
 * Before anything is timed, one untimed create in NS2-warm takes the API
 * server's 2 s hold on creates of a just-established CRD.
 *
 * Readiness is seen through a watch opened before the first create (the
 * object's Ready condition True), so waiting costs the API server nothing
 * per poll. Writes are the operator's own rest_client_requests_total
 * (POST, PUT, PATCH, DELETE; GET — lists and watches — left out), read from
 * its /metrics before the first create and when the last object is Ready.
 *
 * The operator must run with --namespace NS (so the floor's namespace is not
 * reconciled) and be ready (its --ready-file written) before this starts;
 * bench/run-operator.sh arranges all of it. Objects are left behind: the
 * script's plane is thrown away afterwards.
 *
 * Usage: operator_scale --kubeconfig F --namespace NS --floor-namespace NS2
 *                       --operator-pid PID --ready-file F [--count N]
 *                       [--threads T] [--idle-s S] [--timeout-s S]
 * Prints a line per figure, a "RESULT key=value …" line and a PASS/FAIL
 * line per target; exits 0 when the run could be made (figures are not
 * gates), 1 when not, 2 on usage. */
#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/kube.h"
#include "csl/log.h"

#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FINALIZER "cloudserver.dev/finalizer"

static const csl_kube_resource cs_res = {"cloudserver.dev", "v1", "cloudservers", true};
static const csl_kube_resource ns_res = {"", "v1", "namespaces", false};
static const csl_kube_resource ev_res = {"events.k8s.io", "v1", "events", true};

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

/* ---------------------------------------------------------------- /proc */

/* utime + stime of pid in clock ticks, or -1. */
static long long proc_cpu_ticks(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* After ")": state(3) … utime is field 14, stime 15. */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* The whole machine's busy time (every CPU, not idle or iowait) in clock
 * ticks, from /proc/stat's first line, or -1. */
static long long machine_busy_ticks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n < 5) return -1;
    return (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
}

/* A "Vm…:" line of /proc/PID/status in KiB, or -1. */
static long proc_status_kib(int pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* ---------------------------------------------------------------- metrics */

typedef struct writes {
    double post, put, patch, del, get;
    double workers; /* controller_runtime_max_concurrent_reconciles{controller="cloudserver"} */
    double passes;  /* controller_runtime_reconcile_total{controller="cloudserver"}, all results */
} writes;

static double writes_total(const writes *w)
{
    return w->post + w->put + w->patch + w->del;
}

static size_t curl_sink(char *p, size_t sz, size_t n, void *ctx)
{
    csl_buf_append((csl_buf *)ctx, p, sz * n);
    return sz * n;
}

/* Scrapes url and sums rest_client_requests_total by method. 0 or -1. */
static int scrape_writes(const char *url, writes *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    csl_buf b = CSL_BUF_INIT;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    long status = 0;
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    int rc = -1;
    if (cc != CURLE_OK || status != 200) {
        fprintf(stderr, "operator_scale: GET %s: %s (HTTP %ld)\n", url,
                cc != CURLE_OK ? curl_easy_strerror(cc) : "bad status", status);
        goto out;
    }
    csl_buf_append(&b, "", 1);
    bool seen = false;
    for (char *line = b.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strncmp(line, "controller_runtime_max_concurrent_reconciles{", 45) == 0 &&
            strstr(line, "controller=\"cloudserver\"")) {
            const char *sp = strrchr(line, ' ');
            if (sp) out->workers = strtod(sp + 1, NULL);
        }
        if (strncmp(line, "controller_runtime_reconcile_total{", 35) == 0 &&
            strstr(line, "controller=\"cloudserver\"")) {
            const char *sp = strrchr(line, ' ');
            if (sp) out->passes += strtod(sp + 1, NULL);
        }
        if (strncmp(line, "rest_client_requests_total{", 27) == 0) {
            const char *m = strstr(line, "method=\"");
            const char *sp = strrchr(line, ' ');
            if (m && sp) {
                double v = strtod(sp + 1, NULL);
                m += 8;
                seen = true;
                if (!strncmp(m, "POST\"", 5))
                    out->post += v;
                else if (!strncmp(m, "PUT\"", 4))
                    out->put += v;
                else if (!strncmp(m, "PATCH\"", 6))
                    out->patch += v;
                else if (!strncmp(m, "DELETE\"", 7))
                    out->del += v;
                else
                    out->get += v;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (!seen) {
        fprintf(stderr, "operator_scale: %s has no rest_client_requests_total{method=…}\n", url);
        goto out;
    }
    rc = 0;
out:
    csl_buf_free(&b);
    return rc;
}

/* The metrics address from the operator's ready file, as a /metrics URL. */
static int metrics_url(const char *ready_file, char *out, size_t outsz)
{
    FILE *f = fopen(ready_file, "r");
    if (!f) {
        fprintf(stderr, "operator_scale: %s: cannot open the operator's ready file\n", ready_file);
        return -1;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "metrics");
    int rc = -1;
    if (cJSON_IsString(m) && strrchr(m->valuestring, ':')) {
        const char *a = m->valuestring;
        snprintf(out, outsz, "http://%s%s/metrics", a[0] == ':' ? "127.0.0.1" : "", a);
        rc = 0;
    } else {
        fprintf(stderr, "operator_scale: %s: no \"metrics\" address in %s\n", ready_file, buf);
    }
    cJSON_Delete(j);
    return rc;
}

/* ---------------------------------------------------------------- objects */

static cJSON *cloudserver(int i)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\",\"metadata\":{"
             "\"name\":\"cs-%05d\",\"labels\":{\"app.kubernetes.io/name\":\"bench\"}},"
             "\"spec\":{\"cpu\":1,\"memory\":\"1Gi\",\"disk\":\"20Gi\",\"image\":\"debian-12\","
             "\"zone\":\"hk-1a\"}}",
             i);
    return cJSON_Parse(body);
}

/* The Event the operator records for a create decision (events.k8s.io/v1,
 * the shape lib/events writes). */
static cJSON *create_event(const cJSON *o, int i)
{
    char now[CSL_RFC3339_LEN + 8], body[2048];
    csl_rfc3339_s(csl_wall_ms(), now);
    snprintf(now + 19, sizeof now - 19, ".000000Z");
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"events.k8s.io/v1\",\"kind\":\"Event\",\"metadata\":{"
             "\"name\":\"cs-%05d.floor%08x\"},\"eventTime\":\"%s\","
             "\"reportingController\":\"cloudserver.dev/operator\","
             "\"reportingInstance\":\"cloudserver.dev/operator-bench\",\"action\":\"Creating\","
             "\"reason\":\"Creating\",\"note\":\"creating an instance in zone hk-1a (1 CPU, "
             "1024 MiB memory, 20 GiB disk, image debian-12; attempt 0, idempotency key %s)\","
             "\"type\":\"Normal\",\"regarding\":{\"apiVersion\":\"cloudserver.dev/v1\","
             "\"kind\":\"CloudServer\",\"namespace\":\"%s\",\"name\":\"cs-%05d\",\"uid\":\"%s\"}}",
             i, (unsigned)i * 2654435761u, now, csl_kube_obj_uid(o), csl_kube_obj_namespace(o), i,
             csl_kube_obj_uid(o));
    return cJSON_Parse(body);
}

/* What the operator leaves in status when a server runs (four conditions). */
static void set_status(cJSON *o, int i)
{
    char now[CSL_RFC3339_LEN], body[2048];
    csl_rfc3339_s(csl_wall_ms(), now);
    const char *cond = "{\"type\":\"%s\",\"status\":\"True\",\"reason\":\"%s\",\"message\":\"%s\","
                       "\"lastTransitionTime\":\"%s\",\"observedGeneration\":1}";
    char c[4][256];
    snprintf(c[0], sizeof c[0], cond, "Ready", "Running", "the instance is running", now);
    snprintf(c[1], sizeof c[1], cond, "Synced", "Synced", "spec matches the instance", now);
    snprintf(c[2], sizeof c[2], cond, "CloudReachable", "Reachable", "the cloud API answers", now);
    snprintf(c[3], sizeof c[3], cond, "CloudAuthorized", "Authorized", "the token is accepted",
             now);
    snprintf(body, sizeof body,
             "{\"phase\":\"Running\",\"instanceID\":\"i-%08x\",\"zone\":\"hk-1a\","
             "\"ipAddresses\":[\"10.0.%d.%d\"],\"observedGeneration\":1,\"failoverCount\":0,"
             "\"conditions\":[%s,%s,%s,%s]}",
             (unsigned)i * 2654435761u, i >> 8 & 255, i & 255, c[0], c[1], c[2], c[3]);
    cJSON_DeleteItemFromObjectCaseSensitive(o, "status");
    cJSON_AddItemToObject(o, "status", cJSON_Parse(body));
}

static bool is_ready(const cJSON *o)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(st, "conditions");
    const cJSON *c;
    cJSON_ArrayForEach(c, cs)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "status");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, "Ready"))
            return cJSON_IsString(s) && !strcmp(s->valuestring, "True");
    }
    return false;
}

static int index_of(const cJSON *o, int count)
{
    const char *n = csl_kube_obj_name(o);
    if (!n || strncmp(n, "cs-", 3) != 0) return -1;
    int i = atoi(n + 3);
    return i >= 0 && i < count ? i : -1;
}

/* ---------------------------------------------------------------- workers */

typedef enum { JOB_CREATE, JOB_FLOOR_WRITES } job_kind;

typedef struct job {
    csl_kube *k;
    const char *ns;
    job_kind kind;
    int count;
    atomic_int next;
    atomic_int failed;
} job;

static void report_error(const char *what, int i, const csl_kube_error *e)
{
    fprintf(stderr, "operator_scale: %s cs-%05d: %s (%s)\n", what, i, e->message,
            csl_kube_code_name(e->code));
}

/* The three minimal writes of object i: a merge patch adding the finalizer,
 * the create Event, a status merge patch with what the operator leaves. */
static void floor_writes(csl_kube *k, const char *ns, int i, atomic_int *failed)
{
    char name[32];
    snprintf(name, sizeof name, "cs-%05d", i);
    csl_kube_error e;
    cJSON *p = csl_kube_patch(k, &cs_res, ns, name, NULL, CSL_PATCH_MERGE,
                              "{\"metadata\":{\"finalizers\":[\"" FINALIZER "\"]}}", NULL, &e);
    if (!p) {
        report_error("patch", i, &e);
        atomic_fetch_add(failed, 1);
        return;
    }
    cJSON *ev = create_event(p, i);
    cJSON *er = ev ? csl_kube_create(k, &ev_res, ns, ev, &e) : NULL;
    if (!er) report_error("event", i, &e), atomic_fetch_add(failed, 1);
    cJSON_Delete(ev);
    cJSON_Delete(er);
    set_status(p, i);
    cJSON *st = cJSON_CreateObject();
    cJSON_AddItemReferenceToObject(st, "status", cJSON_GetObjectItemCaseSensitive(p, "status"));
    char *sb = cJSON_PrintUnformatted(st);
    cJSON_Delete(st);
    cJSON *u =
        sb ? csl_kube_patch(k, &cs_res, ns, name, "status", CSL_PATCH_MERGE, sb, NULL, &e)
           : NULL;
    if (!u) report_error("status patch", i, &e), atomic_fetch_add(failed, 1);
    free(sb);
    cJSON_Delete(p);
    cJSON_Delete(u);
}

static void *worker(void *arg)
{
    job *j = arg;
    for (int i; (i = atomic_fetch_add(&j->next, 1)) < j->count;) {
        csl_kube_error e;
        if (j->kind == JOB_CREATE) {
            cJSON *o = cloudserver(i);
            cJSON *r = csl_kube_create(j->k, &cs_res, j->ns, o, &e);
            if (!r) report_error("create", i, &e), atomic_fetch_add(&j->failed, 1);
            cJSON_Delete(o);
            cJSON_Delete(r);
            continue;
        }
        floor_writes(j->k, j->ns, i, &j->failed);
    }
    return NULL;
}

/* Runs the job on nthreads threads; returns its wall time in ns, -1 when a
 * thread could not be started. */
static int64_t run_job(job *j, int nthreads)
{
    pthread_t th[64];
    int started = 0;
    int64_t t0 = csl_mono_ns();
    for (; started < nthreads; started++)
        if (pthread_create(&th[started], NULL, worker, j) != 0) break;
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    return started == nthreads ? csl_mono_ns() - t0 : -1;
}

/* ---------------------------------------------------------------- watch */

typedef struct watcher {
    csl_kube *k;
    const char *ns;
    int count;
    char rv[64];
    unsigned char *ready; /* per index */
    atomic_int nready;
    atomic_llong last_ready_ns; /* csl_mono_ns of the last newly Ready object */
    volatile int stop;
    csl_buf line;
    bool failed;
    /* The pipelined floor: each object's index is queued the first time
     * the watch shows it, for the writers (feed set). */
    bool feed;
    unsigned char *seen;
    int *queue, qhead, qtail;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
} watcher;

static void saw(watcher *w, const cJSON *o)
{
    const char *rv = csl_kube_obj_rv(o);
    if (rv) snprintf(w->rv, sizeof w->rv, "%s", rv);
    int i = index_of(o, w->count);
    if (i >= 0 && w->feed && !w->seen[i]) {
        w->seen[i] = 1;
        pthread_mutex_lock(&w->qmu);
        w->queue[w->qtail++] = i;
        pthread_cond_signal(&w->qcv);
        pthread_mutex_unlock(&w->qmu);
    }
    if (i < 0 || w->ready[i] || !is_ready(o)) return;
    w->ready[i] = 1;
    atomic_store(&w->last_ready_ns, csl_mono_ns());
    atomic_fetch_add(&w->nready, 1);
}

static bool on_watch_data(const char *p, size_t n, void *ctx)
{
    watcher *w = ctx;
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        csl_buf_append(&w->line, p, take);
        p += take;
        n -= take;
        if (!nl) break;
        p++, n--;
        cJSON *ev = cJSON_ParseWithLength(w->line.data ? w->line.data : "", w->line.len);
        csl_buf_reset(&w->line);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
        const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
        if (cJSON_IsString(type) && !strcmp(type->valuestring, "ERROR"))
            w->rv[0] = '\0';
        else if (obj)
            saw(w, obj);
        cJSON_Delete(ev);
    }
    return atomic_load(&w->nready) < w->count && !w->stop;
}

/* Lists the namespace (a fresh start: counts what is Ready, takes the RV). */
static int relist(watcher *w)
{
    csl_kube_error e;
    cJSON *l = csl_kube_list_all(w->k, &cs_res, w->ns, NULL, &e);
    if (!l) {
        fprintf(stderr, "operator_scale: list: %s\n", e.message);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(l, "items")) saw(w, it);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(l, "metadata");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
    snprintf(w->rv, sizeof w->rv, "%s", cJSON_IsString(rv) ? rv->valuestring : "");
    cJSON_Delete(l);
    return 0;
}

/* Watches until every object is Ready or stop; on a broken or expired
 * watch, lists again and carries on. */
static void *watch_main(void *arg)
{
    watcher *w = arg;
    while (atomic_load(&w->nready) < w->count && !w->stop) {
        if (!w->rv[0] && relist(w) != 0) {
            csl_sleep_ns(500000000);
            continue;
        }
        csl_buf path = CSL_BUF_INIT;
        csl_kube_path(&path, &cs_res, w->ns, NULL, NULL);
        csl_buf_printf(&path, "?watch=1&resourceVersion=%s&timeoutSeconds=600", w->rv);
        csl_kube_error e;
        csl_buf_reset(&w->line);
        int st = csl_kube_stream(w->k, path.data, on_watch_data, w, &w->stop, 60000, &e);
        csl_buf_free(&path);
        if (st != 200 && st != 0) w->rv[0] = '\0';
    }
    return NULL;
}

/* Stops the watch thread (when running) and frees what the watcher holds. */
static void watcher_end(watcher *w, pthread_t th, bool running)
{
    if (running) {
        __atomic_store_n(&w->stop, 1, __ATOMIC_SEQ_CST);
        pthread_join(th, NULL);
    }
    csl_buf_free(&w->line);
    free(w->ready);
    free(w->seen);
    free(w->queue);
    w->ready = w->seen = NULL;
    w->queue = NULL;
}

/* ---------------------------------------------------------------- main */

static int make_ns(csl_kube *k, const char *ns)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{"
             "\"name\":\"%s\"}}",
             ns);
    cJSON *o = cJSON_Parse(body);
    csl_kube_error e;
    cJSON *r = csl_kube_create(k, &ns_res, NULL, o, &e);
    cJSON_Delete(o);
    cJSON_Delete(r);
    if (!r && e.code != CSL_KUBE_ALREADY_EXISTS) {
        fprintf(stderr, "operator_scale: create namespace %s: %s\n", ns, e.message);
        return -1;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: operator_scale --kubeconfig F --namespace NS --floor-namespace NS2\n"
            "                      --operator-pid PID --ready-file F [--count N (1000)]\n"
            "                      [--threads T (8)] [--idle-s S (60)] [--timeout-s S (900)]\n");
}

/* One floor: count creates in ns on nthreads, then the three minimal
 * writes per object on fthreads; watched: with this program's watch on ns
 * from before the first create to after the last write, as the operator's
 * run is watched. 0, or -1 when a request failed. */
typedef struct floor_run {
    int64_t create_ns; /* until the last create returned */
    int64_t write_ns;  /* the writes after the creates (sequential floors only) */
    int64_t wall_ns;   /* first create to the end, as the operator's run is timed */
    double cpu_s; /* the machine's busy CPU meanwhile */
} floor_run;

static int run_floor(csl_kube *k, const char *ns, int count, int nthreads, int fthreads,
                     bool watched, floor_run *out)
{
    watcher w = {.k = k, .ns = ns, .count = count};
    pthread_t wt = {0};
    bool watching = false;
    if (watched) {
        w.ready = calloc((size_t)count, 1);
        if (!w.ready || relist(&w) != 0 || pthread_create(&wt, NULL, watch_main, &w) != 0) {
            free(w.ready);
            csl_buf_free(&w.line);
            return -1;
        }
        watching = true;
    }
    double tck = (double)sysconf(_SC_CLK_TCK);
    job fc = {.k = k, .ns = ns, .kind = JOB_CREATE, .count = count};
    long long busy0 = machine_busy_ticks();
    out->create_ns = run_job(&fc, nthreads);
    job fw = {.k = k, .ns = ns, .kind = JOB_FLOOR_WRITES, .count = count};
    out->write_ns = run_job(&fw, fthreads);
    out->wall_ns = out->create_ns + out->write_ns;
    out->cpu_s = (double)(machine_busy_ticks() - busy0) / tck;
    watcher_end(&w, wt, watching);
    if (out->create_ns < 0 || out->write_ns < 0 || atomic_load(&fc.failed) ||
        atomic_load(&fw.failed)) {
        fprintf(stderr, "operator_scale: the floor in %s failed (%d creates, %d writes)\n", ns,
                atomic_load(&fc.failed), atomic_load(&fw.failed));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- pipelined floor */

/* The floor an operator of zero overhead would reach: the creates go out
 * as in the operator's run while writer threads (as many as the operator
 * has workers) give each object its three minimal writes as soon as the
 * watch shows it — the way an operator learns of an object. No cloud calls,
 * no cache, no decisions: one pass of writes per object, overlapped with
 * the creates as the operator's work is. Its wall time ends, like the
 * operator's, when the watch shows the last object Ready. */
typedef struct pipe_job {
    watcher *w;
    csl_kube *k;
    const char *ns;
    int64_t deadline;
    atomic_int failed;
} pipe_job;

static void *pipe_writer(void *arg)
{
    pipe_job *pj = arg;
    watcher *w = pj->w;
    for (;;) {
        pthread_mutex_lock(&w->qmu);
        while (w->qhead == w->qtail && w->qhead < w->count && csl_mono_ns() < pj->deadline) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000;
            if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
            pthread_cond_timedwait(&w->qcv, &w->qmu, &ts);
        }
        int i = w->qhead < w->qtail ? w->queue[w->qhead++] : -1;
        pthread_mutex_unlock(&w->qmu);
        if (i < 0) break;
        floor_writes(pj->k, pj->ns, i, &pj->failed);
    }
    return NULL;
}

static int run_pipelined(csl_kube *k, const char *ns, int count, int nthreads, int fthreads,
                         int timeout_s, floor_run *out)
{
    watcher w = {.k = k, .ns = ns, .count = count, .feed = true};
    pipe_job pj = {.w = &w, .k = k, .ns = ns};
    pthread_t wt = {0}, th[64];
    int started = 0, rc = -1;
    bool watching = false;
    pthread_mutex_init(&w.qmu, NULL);
    pthread_cond_init(&w.qcv, NULL);
    w.ready = calloc((size_t)count, 1);
    w.seen = calloc((size_t)count, 1);
    w.queue = calloc((size_t)count, sizeof *w.queue);
    if (!w.ready || !w.seen || !w.queue || relist(&w) != 0 ||
        pthread_create(&wt, NULL, watch_main, &w) != 0)
        goto done;
    watching = true;
    double tck = (double)sysconf(_SC_CLK_TCK);
    long long busy0 = machine_busy_ticks();
    int64_t t0 = csl_mono_ns();
    pj.deadline = t0 + (int64_t)timeout_s * 1000000000;
    for (; started < fthreads && started < 64; started++)
        if (pthread_create(&th[started], NULL, pipe_writer, &pj) != 0) break;
    job fc = {.k = k, .ns = ns, .kind = JOB_CREATE, .count = count};
    out->create_ns = run_job(&fc, nthreads);
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    while (atomic_load(&w.nready) < count && csl_mono_ns() < pj.deadline)
        csl_sleep_ns(10000000);
    out->cpu_s = (double)(machine_busy_ticks() - busy0) / tck;
    out->wall_ns = atomic_load(&w.last_ready_ns) - t0;
    if (started == fthreads && out->create_ns >= 0 && !atomic_load(&fc.failed) &&
        !atomic_load(&pj.failed) && atomic_load(&w.nready) == count)
        rc = 0;
    else
        fprintf(stderr,
                "operator_scale: the pipelined floor in %s failed (%d creates, %d writes failed, "
                "%d of %d Ready)\n",
                ns, atomic_load(&fc.failed), atomic_load(&pj.failed), atomic_load(&w.nready),
                count);
done:
    watcher_end(&w, wt, watching);
    pthread_cond_destroy(&w.qcv);
    pthread_mutex_destroy(&w.qmu);
    return rc;
}

int main(int argc, char **argv)
{
    const char *kubeconfig = getenv("CSL_KUBECONFIG"), *ns = NULL, *floor_ns = NULL;
    const char *ready_file = NULL;
    int count = 1000, nthreads = 8, pid = 0, idle_s = 60, timeout_s = 900;
    static const struct option opts[] = {{"kubeconfig", required_argument, NULL, 'k'},
                                         {"namespace", required_argument, NULL, 'n'},
                                         {"floor-namespace", required_argument, NULL, 'f'},
                                         {"operator-pid", required_argument, NULL, 'p'},
                                         {"ready-file", required_argument, NULL, 'r'},
                                         {"count", required_argument, NULL, 'c'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"idle-s", required_argument, NULL, 'i'},
                                         {"timeout-s", required_argument, NULL, 'T'},
                                         {NULL, 0, NULL, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'k':
            kubeconfig = optarg;
            break;
        case 'n':
            ns = optarg;
            break;
        case 'f':
            floor_ns = optarg;
            break;
        case 'p':
            pid = atoi(optarg);
            break;
        case 'r':
            ready_file = optarg;
            break;
        case 'c':
            count = atoi(optarg);
            break;
        case 't':
            nthreads = atoi(optarg);
            break;
        case 'i':
            idle_s = atoi(optarg);
            break;
        case 'T':
            timeout_s = atoi(optarg);
            break;
        default:
            usage();
            return 2;
        }
    }
    if (!kubeconfig || !ns || !floor_ns || pid <= 0 || !ready_file || count < 1 || count > 99999 ||
        nthreads < 1 || nthreads > 64 || idle_s < 0 || timeout_s < 1) {
        usage();
        return 2;
    }
    csl_log_setup("operator_scale", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines show up when piped */
    curl_global_init(CURL_GLOBAL_DEFAULT);

    int rc = 1;
    char err[512], murl[256];
    csl_kube_config cfg = {0};
    csl_kube *k = NULL;
    watcher w = {.ns = ns, .count = count};
    pthread_t wt = {0};
    bool watching = false;
    if (metrics_url(ready_file, murl, sizeof murl) != 0) goto out;
    if (csl_kubeconfig_load(kubeconfig, NULL, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "operator_scale: %s\n", err);
        goto out;
    }
    k = csl_kube_new(&cfg, NULL, err, sizeof err);
    if (!k) {
        fprintf(stderr, "operator_scale: %s\n", err);
        goto out;
    }
    if (make_ns(k, ns) != 0 || make_ns(k, floor_ns) != 0) goto out;

    printf("operator_scale: %d CloudServers, %d client threads, operator pid %d\n", count, nthreads,
           pid);
    /* kube-apiserver holds creates of a custom resource whose CRD became
     * Established moments ago for 2 s (crdHandler, "justCreated": an HA
     * safety delay). The CRDs were just applied, so the first timed create
     * would wait it out and charge the operator's run alone; one create in
     * a namespace of its own takes the wait, untimed. */
    char warm_ns[128];
    snprintf(warm_ns, sizeof warm_ns, "%s-warm", floor_ns);
    if (make_ns(k, warm_ns) != 0) goto out;
    {
        cJSON *o = cloudserver(0);
        csl_kube_error e;
        int64_t a = csl_mono_ns();
        cJSON *r = o ? csl_kube_create(k, &cs_res, warm_ns, o, &e) : NULL;
        cJSON_Delete(o);
        if (!r && e.code != CSL_KUBE_ALREADY_EXISTS) {
            fprintf(stderr, "operator_scale: warm-up create in %s: %s\n", warm_ns, e.message);
            goto out;
        }
        cJSON_Delete(r);
        printf("  warm-up: one create in %s (untimed, not watched by the operator) took %.2f s\n",
               warm_ns, secs(csl_mono_ns() - a));
    }
    long rss0 = proc_status_kib(pid, "VmRSS");
    writes w0, w1, w2;
    if (scrape_writes(murl, &w0) != 0) goto out;

    /* The watch starts from the (empty) namespace's List before any create. */
    w.k = k;
    w.ready = calloc((size_t)count, 1);
    if (!w.ready || relist(&w) != 0) goto out;
    if (pthread_create(&wt, NULL, watch_main, &w) != 0) goto out;
    watching = true;

    job cj = {.k = k, .ns = ns, .kind = JOB_CREATE, .count = count};
    long long op_cpu0 = proc_cpu_ticks(pid), busy0 = machine_busy_ticks();
    int64_t t0 = csl_mono_ns();
    int64_t create_ns = run_job(&cj, nthreads);
    if (create_ns < 0 || atomic_load(&cj.failed)) {
        fprintf(stderr, "operator_scale: %d creates failed\n", atomic_load(&cj.failed));
        goto out;
    }
    printf("  created %d in %.2f s (%.0f/s)\n", count, secs(create_ns), count / secs(create_ns));
    int64_t deadline = t0 + (int64_t)timeout_s * 1000000000;
    int last_print = 0;
    while (atomic_load(&w.nready) < count && csl_mono_ns() < deadline) {
        csl_sleep_ns(100000000);
        int n = atomic_load(&w.nready);
        if (n - last_print >= count / 10 && n < count) {
            printf("  %d Ready after %.1f s\n", n, secs(csl_mono_ns() - t0));
            last_print = n;
        }
    }
    int nready = atomic_load(&w.nready);
    long long op_cpu1 = proc_cpu_ticks(pid), busy1 = machine_busy_ticks();
    __atomic_store_n(&w.stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(wt, NULL);
    watching = false;
    if (nready < count) {
        fprintf(stderr, "operator_scale: only %d of %d Ready after %d s\n", nready, count,
                timeout_s);
        goto out;
    }
    int64_t wall_ns = atomic_load(&w.last_ready_ns) - t0;
    if (scrape_writes(murl, &w1) != 0) goto out;
    long rss = proc_status_kib(pid, "VmRSS"), hwm = proc_status_kib(pid, "VmHWM");
    double opw = writes_total(&w1) - writes_total(&w0);
    printf("  all Ready %.2f s after the first create (%.0f objects/s)\n", secs(wall_ns),
           count / secs(wall_ns));
    printf("  operator writes: %.0f (POST %.0f, PUT %.0f, PATCH %.0f, DELETE %.0f) = %.2f per "
           "object; GETs (lists, watches, reads) %.0f\n",
           opw, w1.post - w0.post, w1.put - w0.put, w1.patch - w0.patch, w1.del - w0.del,
           opw / count, w1.get - w0.get);
    printf("  reconcile passes: %.0f = %.2f per object\n", w1.passes - w0.passes,
           (w1.passes - w0.passes) / count);
    double tck = (double)sysconf(_SC_CLK_TCK), ncpu = (double)sysconf(_SC_NPROCESSORS_ONLN);
    double run_cpu = (double)(busy1 - busy0) / tck, op_cpu = (double)(op_cpu1 - op_cpu0) / tck;
    printf("  CPU from the first create to the last Ready: machine %.2f s of %.2f s available "
           "(%.0f%% busy), the operator %.2f s\n",
           run_cpu, secs(wall_ns) * ncpu, 100.0 * run_cpu / (secs(wall_ns) * ncpu), op_cpu);
    printf("  operator RSS with %d Ready: %.1f MiB (VmHWM %.1f MiB; %.1f MiB before the "
           "creates)\n",
           count, rss / 1024.0, hwm / 1024.0, rss0 / 1024.0);

    /* The Event recorder posts from its own thread and trails the last
     * Ready: let it finish (no write for 2 s, at most 120 s) so that the
     * idle window measures an operator with nothing left to do. */
    writes wi = w1; /* at the start of the idle window */
    {
        writes wd;
        double last = writes_total(&w1);
        int64_t d0 = csl_mono_ns(), quiet_since = d0;
        while (csl_mono_ns() - d0 < 120 * (int64_t)1000000000 &&
               csl_mono_ns() - quiet_since < 2 * (int64_t)1000000000) {
            csl_sleep_ns(250000000);
            if (scrape_writes(murl, &wd) != 0) break;
            wi = wd;
            if (writes_total(&wd) != last) {
                last = writes_total(&wd);
                quiet_since = csl_mono_ns();
            }
        }
        printf("  after the last Ready: %.0f more writes (trailing Events) until quiet, %.1f s\n",
               last - writes_total(&w1), secs(quiet_since - d0));
    }

    /* Idle: nothing changes; a good operator sleeps until the resync. */
    long long c0 = proc_cpu_ticks(pid);
    int64_t i0 = csl_mono_ns();
    csl_sleep_ns((int64_t)idle_s * 1000000000);
    long long c1 = proc_cpu_ticks(pid);
    double idle_wall = secs(csl_mono_ns() - i0);
    if (c0 < 0 || c1 < 0 || scrape_writes(murl, &w2) != 0) {
        fprintf(stderr, "operator_scale: operator pid %d went away while idle\n", pid);
        goto out;
    }
    double hz = (double)sysconf(_SC_CLK_TCK);
    double idle_pct = idle_wall > 0 ? 100.0 * (double)(c1 - c0) / hz / idle_wall : 0;
    printf("  idle %.0f s: operator CPU %.3f s = %.2f%% of a core; meanwhile %.0f writes (POST "
           "%.0f, PUT %.0f, PATCH %.0f, DELETE %.0f), %.0f GETs\n",
           idle_wall, (double)(c1 - c0) / hz, idle_pct, writes_total(&w2) - writes_total(&wi),
           w2.post - wi.post, w2.put - wi.put, w2.patch - wi.patch, w2.del - wi.del,
           w2.get - wi.get);

    /* The floor: same objects and client; the creates on the same threads,
     * the three writes on as many threads as the operator has workers. */
    int fthreads = w1.workers >= 1 && w1.workers <= 64 ? (int)w1.workers : nthreads;
    floor_run fu = {0}, fwd = {0};
    if (run_floor(k, floor_ns, count, nthreads, fthreads, false, &fu) != 0) goto out;
    char wns[128];
    snprintf(wns, sizeof wns, "%s-w", floor_ns);
    if (make_ns(k, wns) != 0 || run_floor(k, wns, count, nthreads, fthreads, true, &fwd) != 0)
        goto out;
    floor_run fp = {0};
    snprintf(wns, sizeof wns, "%s-p", floor_ns);
    if (make_ns(k, wns) != 0 ||
        run_pipelined(k, wns, count, nthreads, fthreads, timeout_s, &fp) != 0)
        goto out;
    int64_t fcreate_ns = fu.create_ns, fwrite_ns = fu.write_ns, floor_ns_total = fu.wall_ns;
    double floor_cpu = fu.cpu_s;
    /* Events are posted by the recorder's thread and may trail the status:
     * those posted after the last Ready count too, so the ratio is of every
     * write the N objects cost. */
    double opw_all = writes_total(&w2) - writes_total(&w0);
    printf("  operator writes including those made after the last Ready (trailing Events): %.0f "
           "= %.2f per object\n",
           opw_all, opw_all / count);
    double wratio = opw_all / count / 3.0, tratio = (double)wall_ns / (double)floor_ns_total;
    printf("  floor: %d creates (%d threads) %.2f s + 3 writes each (finalizer merge patch, "
           "Event, status merge patch; %d threads) %.2f s = %.2f s\n",
           count, nthreads, secs(fcreate_ns), fthreads, secs(fwrite_ns), secs(floor_ns_total));
    printf("  floor CPU: machine %.2f s (%.0f%% busy)\n", floor_cpu,
           100.0 * floor_cpu / (secs(floor_ns_total) * ncpu));
    int64_t wfloor_ns = fwd.wall_ns;
    double wtratio = (double)wall_ns / (double)wfloor_ns;
    printf("  floor again, watched the way the operator's run is (one watch on its namespace, "
           "as this program watches the operator's): %.2f s + %.2f s = %.2f s, machine CPU "
           "%.2f s\n",
           secs(fwd.create_ns), secs(fwd.write_ns), secs(wfloor_ns), fwd.cpu_s);
    double pratio = (double)wall_ns / (double)fp.wall_ns;
    printf("  pipelined floor (the same creates; as the watch shows each object, the 3 writes on "
           "%d threads): creates done %.2f s, last Ready %.2f s, machine CPU %.2f s (%.0f%% "
           "busy)\n",
           fthreads, secs(fp.create_ns), secs(fp.wall_ns), fp.cpu_s,
           100.0 * fp.cpu_s / (secs(fp.wall_ns) * ncpu));
    printf("  operator / floor: writes %.2fx, wall time %.2fx (%.2fx against the watched floor, "
           "%.2fx against the pipelined floor), machine CPU %.2fx (%.2fx, %.2fx)\n",
           wratio, tratio, wtratio, pratio, run_cpu / floor_cpu, run_cpu / fwd.cpu_s,
           run_cpu / fp.cpu_s);
    printf("RESULT count=%d threads=%d floor_threads=%d create_s=%.2f ready_wall_s=%.2f "
           "op_writes=%.0f "
           "op_writes_per_obj=%.2f op_writes_all_per_obj=%.2f floor_create_s=%.2f "
           "floor_writes_s=%.2f floor_s=%.2f "
           "writes_ratio=%.2f wall_ratio=%.2f rss_mib=%.1f hwm_mib=%.1f idle_s=%.0f "
           "idle_cpu_pct=%.3f passes_per_obj=%.2f run_cpu_s=%.2f op_cpu_s=%.2f floor_cpu_s=%.2f "
           "watched_floor_s=%.2f watched_wall_ratio=%.2f pipelined_floor_s=%.2f "
           "pipelined_wall_ratio=%.2f\n",
           count, nthreads, fthreads, secs(create_ns), secs(wall_ns), opw, opw / count,
           opw_all / count, secs(fcreate_ns), secs(fwrite_ns), secs(floor_ns_total), wratio, tratio,
           rss / 1024.0, hwm / 1024.0, idle_wall, idle_pct, (w1.passes - w0.passes) / count,
           run_cpu, op_cpu, floor_cpu, secs(wfloor_ns), wtratio, secs(fp.wall_ns), pratio);
    printf("%s: writes per object <= 1.3x the floor's 3 (%.2fx)\n", wratio <= 1.3 ? "PASS" : "FAIL",
           wratio);
    printf("%s: wall time <= 1.3x the floor's (%.2fx; %.2fx against the watched floor, %.2fx "
           "against the pipelined floor)\n",
           tratio <= 1.3 ? "PASS" : "FAIL", tratio, wtratio, pratio);
    printf("%s: operator RSS with %d Ready <= 32 MiB (%.1f MiB; the target is for 10,000)\n",
           rss <= 32 * 1024 ? "PASS" : "FAIL", count, rss / 1024.0);
    printf("%s: idle CPU <= 0.5%% of a core over %.0f s (%.2f%%)\n",
           idle_pct <= 0.5 ? "PASS" : "FAIL", idle_wall, idle_pct);
    rc = 0;
out:
    watcher_end(&w, wt, watching);
    csl_kube_free(k);
    csl_kube_config_free(&cfg);
    curl_global_cleanup();
    return rc;
}
