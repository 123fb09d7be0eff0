/* kube_create.c — the Kubernetes client's figures: parsing a 10,000-object
 * list, and create throughput against a real API server with N threads
 * sharing one client, beside `kubectl create -f` of the same objects.
 *
 * The parse figure needs no cluster: a CloudServerList of 10,000 realistic
 * objects (metadata with labels, annotations and managedFields, a full spec
 * and status) is generated in memory, then parsed with cJSON as the client
 * parses every answer; best of a few rounds.
 *
 * The create figures need a kubeconfig (--kubeconfig, else $CSL_KUBECONFIG;
 * without one they are skipped and said so). Each run creates COUNT
 * ConfigMaps in a fresh namespace, threads taking the next index from a
 * shared counter; kubectl gets a multi-document file of the same objects in
 * its own namespace. The namespaces are deleted at the end (on the local
 * plane, with no controller-manager, they stay Terminating; harmless).
 *
 * Usage: kube_create [--kubeconfig F] [--count N] [--threads 1,4,16]
 *                    [--kubectl PATH] [--parse-only]
 * Prints a line per figure and one "RESULT key=value …" line; exits 0 when
 * the runs could be made (figures are not gates), 1 when not, 2 on usage. */
#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/kube.h"
#include "csl/log.h"

#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PARSE_OBJECTS 10000
#define PARSE_ROUNDS 3

static const csl_kube_resource cm_res = {"", "v1", "configmaps", true};
static const csl_kube_resource ns_res = {"", "v1", "namespaces", false};

/* ---------------------------------------------------------------- parsing */

static void gen_cloudserver(csl_buf *b, int i)
{
    csl_buf_printf(
        b,
        "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\",\"metadata\":{"
        "\"name\":\"web-%05d\",\"namespace\":\"team-%d\",\"uid\":\"6f1c2a3e-%04x-4b5c-9d8e-"
        "%012x\",\"resourceVersion\":\"%d\",\"generation\":%d,\"creationTimestamp\":"
        "\"2026-11-26T14:%02d:%02dZ\",\"labels\":{\"app.kubernetes.io/name\":\"web\","
        "\"app.kubernetes.io/instance\":\"web-%d\",\"tier\":\"front\"},\"annotations\":{"
        "\"cloudserver.dev/last-applied\":\"web-%05d\"},\"finalizers\":[\"cloudserver.dev/"
        "instance\"],\"managedFields\":[{\"manager\":\"kubectl\",\"operation\":\"Apply\","
        "\"apiVersion\":\"cloudserver.dev/v1\",\"time\":\"2026-11-26T14:21:26Z\",\"fieldsType\":"
        "\"FieldsV1\",\"fieldsV1\":{\"f:spec\":{\"f:cpu\":{},\"f:memory\":{},\"f:disk\":{},"
        "\"f:image\":{},\"f:zone\":{}}}},{\"manager\":\"cloudserver-operator\",\"operation\":"
        "\"Update\",\"apiVersion\":\"cloudserver.dev/v1\",\"time\":\"2026-11-26T14:21:40Z\","
        "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:status\":{\"f:phase\":{},"
        "\"f:instanceID\":{},\"f:conditions\":{}}},\"subresource\":\"status\"}]},\"spec\":{"
        "\"cpu\":%d,\"memory\":\"%dGi\",\"disk\":\"40Gi\",\"image\":\"debian-12\",\"zone\":"
        "\"hk-1a\",\"networkType\":\"standard\",\"ipCount\":1,\"deletionPolicy\":\"Delete\","
        "\"failover\":{\"enabled\":true,\"maxAttempts\":3},\"timeouts\":{\"create\":\"5m\","
        "\"resize\":\"5m\",\"delete\":\"5m\"}},\"status\":{\"phase\":\"Running\","
        "\"instanceID\":\"i-%08x\",\"zone\":\"hk-1a\",\"ipAddresses\":[\"10.%d.%d.%d\"],"
        "\"observedGeneration\":%d,\"failoverCount\":0,\"conditions\":[{\"type\":\"Ready\","
        "\"status\":\"True\",\"reason\":\"Running\",\"message\":\"the instance is running\","
        "\"lastTransitionTime\":\"2026-11-26T14:21:40Z\",\"observedGeneration\":%d},{\"type\":"
        "\"Synced\",\"status\":\"True\",\"reason\":\"Synced\",\"message\":\"spec matches the "
        "instance\",\"lastTransitionTime\":\"2026-11-26T14:21:40Z\",\"observedGeneration\":%d}]}}",
        i, i % 20, i & 0xffff, (unsigned)i * 2654435761u, 1000 + i, 1 + i % 3, i / 60 % 60, i % 60,
        i, i, 1 + i % 16, 2 << (i % 4), (unsigned)i, i >> 16 & 255, i >> 8 & 255, i & 255,
        1 + i % 3, 1 + i % 3, 1 + i % 3);
}

static int parse_bench(double *best_ms, size_t *bytes)
{
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServerList\","
                     "\"metadata\":{\"resourceVersion\":\"123456\"},\"items\":[");
    for (int i = 0; i < PARSE_OBJECTS; i++) {
        if (i) csl_buf_putc(&b, ',');
        gen_cloudserver(&b, i);
    }
    csl_buf_puts(&b, "]}");
    if (b.oom) return -1;
    *bytes = b.len;
    *best_ms = 1e18;
    for (int r = 0; r < PARSE_ROUNDS; r++) {
        int64_t t0 = csl_mono_ns();
        cJSON *l = cJSON_ParseWithLength(b.data, b.len);
        int64_t t1 = csl_mono_ns();
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(l, "items"));
        cJSON_Delete(l);
        if (n != PARSE_OBJECTS) {
            fprintf(stderr, "parse: got %d items, expected %d\n", n, PARSE_OBJECTS);
            csl_buf_free(&b);
            return -1;
        }
        double ms = (double)(t1 - t0) / 1e6;
        if (ms < *best_ms) *best_ms = ms;
    }
    csl_buf_free(&b);
    return 0;
}

/* ---------------------------------------------------------------- creates */

typedef struct run {
    csl_kube *k;
    const char *ns;
    int count;
    atomic_int next;
    atomic_int failed;
    char first_error[512];
    pthread_mutex_t mu;
} run;

static cJSON *configmap(int i)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "v1");
    cJSON_AddStringToObject(o, "kind", "ConfigMap");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    char name[32];
    snprintf(name, sizeof name, "bench-%05d", i);
    cJSON_AddStringToObject(md, "name", name);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(md, "labels"), "app", "kube-create-bench");
    cJSON *d = cJSON_AddObjectToObject(o, "data");
    cJSON_AddStringToObject(d, "cpu", "2");
    cJSON_AddStringToObject(d, "memory", "4Gi");
    cJSON_AddStringToObject(d, "zone", "hk-1a");
    return o;
}

static void *worker(void *arg)
{
    run *r = arg;
    for (;;) {
        int i = atomic_fetch_add(&r->next, 1);
        if (i >= r->count) break;
        cJSON *o = configmap(i);
        csl_kube_error e;
        cJSON *c = csl_kube_create(r->k, &cm_res, r->ns, o, &e);
        if (!c) {
            atomic_fetch_add(&r->failed, 1);
            pthread_mutex_lock(&r->mu);
            if (!r->first_error[0])
                snprintf(r->first_error, sizeof r->first_error, "%s", e.message);
            pthread_mutex_unlock(&r->mu);
        }
        cJSON_Delete(c);
        cJSON_Delete(o);
    }
    return NULL;
}

static int make_ns(csl_kube *k, const char *name)
{
    cJSON *n = cJSON_CreateObject();
    cJSON_AddStringToObject(n, "apiVersion", "v1");
    cJSON_AddStringToObject(n, "kind", "Namespace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(n, "metadata"), "name", name);
    csl_kube_error e;
    cJSON *r = csl_kube_create(k, &ns_res, NULL, n, &e);
    cJSON_Delete(n);
    if (!r) {
        fprintf(stderr, "create namespace %s: %s\n", name, e.message);
        return -1;
    }
    cJSON_Delete(r);
    return 0;
}

/* One run with `threads` threads on a fresh client: objects/s, or < 0. */
static double create_run(const csl_kube_config *cfg, const char *ns, int count, int threads,
                         csl_kube_stats *stats)
{
    char err[512];
    csl_kube *k = csl_kube_new(cfg, NULL, err, sizeof err);
    if (!k) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (make_ns(k, ns) != 0) {
        csl_kube_free(k);
        return -1;
    }
    run r = {.k = k, .ns = ns, .count = count};
    pthread_mutex_init(&r.mu, NULL);
    pthread_t th[64];
    int64_t t0 = csl_mono_ns();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, worker, &r);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    double secs = (double)(csl_mono_ns() - t0) / 1e9;
    csl_kube_get_stats(k, stats);
    pthread_mutex_destroy(&r.mu);
    csl_kube_free(k);
    if (atomic_load(&r.failed)) {
        fprintf(stderr, "%d of %d creates failed; first: %s\n", atomic_load(&r.failed), count,
                r.first_error);
        return -1;
    }
    return count / secs;
}

static double kubectl_run(const char *kubectl, const char *kubeconfig, const csl_kube_config *cfg,
                          const char *ns, int count)
{
    char err[512];
    csl_kube *k = csl_kube_new(cfg, NULL, err, sizeof err);
    if (!k || make_ns(k, ns) != 0) {
        csl_kube_free(k);
        return -1;
    }
    csl_kube_free(k);
    char path[] = "/tmp/kube_create_bench.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < count; i++) {
        cJSON *o = configmap(i);
        char *s = cJSON_PrintUnformatted(o); /* JSON is YAML: one document each */
        fprintf(f, "---\n%s\n", s);
        free(s);
        cJSON_Delete(o);
    }
    fclose(f);
    fflush(stdout); /* or the child's freopen would print our buffer again */
    int64_t t0 = csl_mono_ns();
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout)) _exit(127);
        execl(kubectl, kubectl, "--kubeconfig", kubeconfig, "create", "-n", ns, "-f", path,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    double secs = (double)(csl_mono_ns() - t0) / 1e9;
    unlink(path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "kubectl create failed (status %d)\n", status);
        return -1;
    }
    return count / secs;
}

static void drop_ns(const csl_kube_config *cfg, const char *ns)
{
    char err[256];
    csl_kube *k = csl_kube_new(cfg, NULL, err, sizeof err);
    csl_kube_error e;
    if (k) csl_kube_delete(k, &ns_res, NULL, ns, NULL, &e);
    csl_kube_free(k);
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr, "usage: kube_create [--kubeconfig F] [--count N] [--threads 1,4,16] "
                    "[--kubectl PATH] [--parse-only]\n");
}

int main(int argc, char **argv)
{
    const char *kubeconfig = getenv("CSL_KUBECONFIG");
    const char *kubectl = "/usr/bin/kubectl";
    const char *threads_arg = "1,4,16";
    int count = 300;
    bool parse_only = false;
    static const struct option opts[] = {
        {"kubeconfig", required_argument, NULL, 'k'}, {"count", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},    {"kubectl", required_argument, NULL, 'c'},
        {"parse-only", no_argument, NULL, 'p'},       {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "k:n:t:c:p", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            kubeconfig = optarg;
            break;
        case 'n':
            count = atoi(optarg);
            break;
        case 't':
            threads_arg = optarg;
            break;
        case 'c':
            kubectl = optarg;
            break;
        case 'p':
            parse_only = true;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (count <= 0) {
        usage();
        return 2;
    }
    csl_log_setup("kube_create", CSL_LOG_WARN, CSL_LOG_TEXT, 2);

    csl_buf result = CSL_BUF_INIT;
    double parse_ms;
    size_t bytes;
    if (parse_bench(&parse_ms, &bytes) != 0) return 1;
    printf("parse a %d-object CloudServerList (%.1f MiB JSON) with cJSON: %.0f ms "
           "(best of %d)   target <= 1000 ms: %s\n",
           PARSE_OBJECTS, (double)bytes / 1048576, parse_ms, PARSE_ROUNDS,
           parse_ms <= 1000 ? "PASS" : "FAIL");
    csl_buf_printf(&result, "RESULT parse_ms=%.0f parse_bytes=%zu", parse_ms, bytes);
    if (parse_only || !kubeconfig || !*kubeconfig) {
        if (!parse_only)
            printf("create throughput: skipped (no --kubeconfig, CSL_KUBECONFIG unset)\n");
        printf("%s\n", csl_buf_str(&result));
        csl_buf_free(&result);
        return 0;
    }

    char err[1024];
    csl_kube_config cfg;
    if (csl_kubeconfig_load(kubeconfig, NULL, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = 0;
    char tag[32];
    snprintf(tag, sizeof tag, "%d-%lld", (int)getpid(), (long long)(csl_wall_ms() % 100000));
    printf("create %d ConfigMaps against %s, one client shared by N threads:\n", count, cfg.server);
    char *list = strdup(threads_arg);
    char *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int n = atoi(t);
        if (n < 1 || n > 64) {
            fprintf(stderr, "threads must be 1..64, got %s\n", t);
            rc = 2;
            break;
        }
        char ns[64];
        snprintf(ns, sizeof ns, "bench-kc-%s-t%d", tag, n);
        csl_kube_stats st;
        double ops = create_run(&cfg, ns, count, n, &st);
        drop_ns(&cfg, ns);
        if (ops < 0) {
            rc = 1;
            break;
        }
        printf("  csl_kube, %2d thread%s %7.0f objects/s   (%llu requests, %llu connections, %llu "
               "over HTTP/2)\n",
               n, n == 1 ? ": " : "s:", ops, (unsigned long long)st.requests,
               (unsigned long long)st.connects, (unsigned long long)st.http2);
        csl_buf_printf(&result, " csl_t%d=%.0f", n, ops);
    }
    free(list);
    if (rc == 0) {
        char ns[64];
        snprintf(ns, sizeof ns, "bench-kc-%s-kubectl", tag);
        double ops = kubectl_run(kubectl, kubeconfig, &cfg, ns, count);
        drop_ns(&cfg, ns);
        if (ops < 0) {
            rc = 1;
        } else {
            printf("  kubectl create -f (one file, %d documents): %7.0f objects/s\n", count, ops);
            csl_buf_printf(&result, " kubectl=%.0f", ops);
        }
    }
    printf("%s\n", csl_buf_str(&result));
    csl_buf_free(&result);
    csl_kube_config_free(&cfg);
    return rc;
}
