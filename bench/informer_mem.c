/* informer_mem.c — what an informer holding 10,000 CloudServers costs, and
 * how long a 10,000-object List takes to parse.
 *
 * Two sources for the objects:
 *   plane: with CSL_KUBECONFIG set (and the CRDs applied), N CloudServers
 *          are created in a fresh namespace on that API server (8 threads),
 *          and an informer lists and watches them for real;
 *   feed:  otherwise (or with --feed), N CloudServers shaped as the API
 *          server returns them (managedFields, owner, finalizer, status with
 *          four conditions) are generated as one List's JSON text and fed to
 *          the informer through csl_informer_feed_replace.
 * Either way the informer carries the operator's two indexes (label
 * app.kubernetes.io/name, owner uid).
 *
 * Memory is measured three ways, each as "holding N objects minus holding
 * none": bytes in use on the heap (glibc mallinfo2 over all arenas:
 * uordblks + hblkhd), process RSS as it is, and RSS after a further
 * malloc_trim (the informer already trims once it has applied a List).
 * "Beyond JSON" subtracts the compact JSON text of every cached object (the
 * informer's own count) and divides by N.
 *
 * The informer stores each object's JSON as a delta against a reference
 * object; "stored" is its own count of those bytes (deltas plus the
 * references), beside the plain text they stand for.
 *
 * Parsing: cJSON_ParseWithLength of the whole List text (best of 3), and
 * the informer's apply of the parsed items (entries, indexes, handlers).
 *
 * Usage: informer_mem [--feed] [--strip-managed-fields] [-n N]. Prints
 * figures and one RESULT line; exits 0 when the run could be made, 1 when
 * not. */
#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/informer.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "csl/rng.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const csl_kube_resource CS = {"cloudserver.dev", "v1", "cloudservers", true};
static const csl_kube_resource NAMESPACES = {"", "v1", "namespaces", false};

/* ------------------------------------------------------------------ measuring */

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static double secs_since(int64_t t0)
{
    return (double)(csl_mono_ns() - t0) / 1e9;
}

/* ------------------------------------------------------------------ objects */

static void spec_json(csl_buf *b, int i)
{
    static const char *zones[] = {"hk-1a", "hk-1b", "sg-1a", "fra-1a"};
    static const char *nets[] = {"standard", "cn2-gia", "bgp"};
    csl_buf_printf(b,
                   "\"spec\":{\"cpu\":%d,\"memory\":\"%dGi\",\"disk\":\"%dGi\",\"image\":"
                   "\"debian-12\",\"zone\":\"%s\",\"networkType\":\"%s\",\"ipCount\":%d,"
                   "\"deletionPolicy\":\"Delete\",\"failover\":{\"enabled\":true,"
                   "\"maxAttempts\":3},\"backup\":{\"schedule\":\"0 */6 * * *\",\"retain\":7},"
                   "\"timeouts\":{\"create\":\"5m\",\"resize\":\"5m\",\"delete\":\"5m\"}}",
                   1 + i % 16, 2 << (i % 5), 20 + 10 * (i % 10), zones[i % 4], nets[i % 3],
                   1 + i % 4);
}

/* What the API server would send for CloudServer i of a set, owned,
 * finalized and Running, with the managedFields of its two writers. */
static void feed_object(csl_buf *b, int i, csl_rng *r)
{
    char uid[40], owner[40];
    snprintf(uid, sizeof uid, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)csl_rng_next(r),
             (unsigned)(csl_rng_next(r) & 0xffff), (unsigned)(csl_rng_next(r) & 0xfff),
             (unsigned)(csl_rng_next(r) & 0xfff),
             (unsigned long long)(csl_rng_next(r) & 0xffffffffffffULL));
    snprintf(owner, sizeof owner, "0000%04x-1111-4222-8333-444455556666", i / 100);
    csl_buf_printf(
        b,
        "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\",\"metadata\":{"
        "\"creationTimestamp\":\"2026-11-26T14:21:26Z\",\"finalizers\":["
        "\"cloudserver.dev/finalizer\"],\"generation\":%d,\"labels\":{"
        "\"app.kubernetes.io/name\":\"web-%d\",\"cloudserver.dev/set\":\"set-%d\"},"
        "\"managedFields\":[{\"apiVersion\":\"cloudserver.dev/v1\",\"fieldsType\":\"FieldsV1\","
        "\"fieldsV1\":{\"f:metadata\":{\"f:labels\":{\".\":{},\"f:app.kubernetes.io/name\":{},"
        "\"f:cloudserver.dev/set\":{}},\"f:ownerReferences\":{\".\":{},\"k:{\\\"uid\\\":\\\"%s"
        "\\\"}\":{}}},\"f:spec\":{\".\":{},\"f:cpu\":{},\"f:disk\":{},\"f:image\":{},"
        "\"f:memory\":{},\"f:zone\":{}}},\"manager\":\"cloudserver-operator\",\"operation\":"
        "\"Update\",\"time\":\"2026-11-26T14:21:26Z\"},{\"apiVersion\":\"cloudserver.dev/v1\","
        "\"fieldsType\":\"FieldsV1\",\"fieldsV1\":{\"f:status\":{\".\":{},\"f:conditions\":{},"
        "\"f:instanceID\":{},\"f:ipAddresses\":{},\"f:observedGeneration\":{},\"f:phase\":{},"
        "\"f:zone\":{}}},\"manager\":\"cloudserver-operator\",\"operation\":\"Update\","
        "\"subresource\":\"status\",\"time\":\"2026-11-26T14:22:01Z\"}],\"name\":\"server-%05d\","
        "\"namespace\":\"bench\",\"ownerReferences\":[{\"apiVersion\":\"cloudserver.dev/v1\","
        "\"blockOwnerDeletion\":true,\"controller\":true,\"kind\":\"CloudServerSet\",\"name\":"
        "\"set-%d\",\"uid\":\"%s\"}],\"resourceVersion\":\"%d\",\"uid\":\"%s\"},",
        1 + i % 3, i % 50, i / 100, owner, i, i / 100, owner, 100000 + i, uid);
    spec_json(b, i);
    csl_buf_printf(
        b,
        ",\"status\":{\"phase\":\"Running\",\"instanceID\":\"i-%08x\",\"zone\":\"hk-1a\","
        "\"ipAddresses\":[\"10.%d.%d.%d\"],\"observedGeneration\":%d,\"failoverCount\":0,"
        "\"conditions\":[",
        (unsigned)csl_rng_next(r), (i >> 16) & 255, (i >> 8) & 255, i & 255, 1 + i % 3);
    static const char *types[] = {"Ready", "Synced", "CloudReachable", "CloudAuthorized"};
    for (int c = 0; c < 4; c++)
        csl_buf_printf(b,
                       "%s{\"type\":\"%s\",\"status\":\"True\",\"reason\":\"%s\",\"message\":"
                       "\"instance is running\",\"lastTransitionTime\":\"2026-11-26T14:22:01Z\","
                       "\"observedGeneration\":%d}",
                       c ? "," : "", types[c], c == 0 ? "InstanceRunning" : "Succeeded", 1 + i % 3);
    csl_buf_puts(b, "]}}");
}

static char *feed_list(int n, size_t *len)
{
    csl_rng r;
    csl_rng_seed(&r, 2026);
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServerList\","
                     "\"metadata\":{\"resourceVersion\":\"200000\"},\"items\":[");
    for (int i = 0; i < n; i++) {
        if (i) csl_buf_putc(&b, ',');
        feed_object(&b, i, &r);
    }
    csl_buf_puts(&b, "]}");
    *len = b.len;
    return csl_buf_steal(&b);
}

/* ------------------------------------------------------------------ the plane */

typedef struct creator {
    csl_kube *k;
    const char *ns;
    int from, to;
    int failed;
} creator;

static void *create_main(void *arg)
{
    creator *c = arg;
    csl_buf b = CSL_BUF_INIT;
    for (int i = c->from; i < c->to; i++) {
        csl_buf_reset(&b);
        csl_buf_printf(&b,
                       "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\","
                       "\"metadata\":{\"name\":\"server-%05d\",\"labels\":{"
                       "\"app.kubernetes.io/name\":\"web-%d\",\"cloudserver.dev/set\":"
                       "\"set-%d\"}},",
                       i, i % 50, i / 100);
        spec_json(&b, i);
        csl_buf_putc(&b, '}');
        cJSON *o = cJSON_Parse(b.data);
        csl_kube_error e;
        cJSON *got = NULL;
        for (int attempt = 0; attempt < 5 && !got; attempt++) {
            got = csl_kube_create(c->k, &CS, c->ns, o, &e);
            if (!got && e.code == CSL_KUBE_ALREADY_EXISTS) break;
            if (!got && !csl_kube_error_retryable(&e)) break;
        }
        if (!got && e.code != CSL_KUBE_ALREADY_EXISTS) {
            if (c->failed++ < 3) fprintf(stderr, "create server-%05d: %s\n", i, e.message);
        }
        cJSON_Delete(got);
        cJSON_Delete(o);
    }
    csl_buf_free(&b);
    return NULL;
}

static int plane_create(csl_kube *k, const char *ns, int n)
{
    enum { THREADS = 8 };
    creator cs[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        cs[i] = (creator){k, ns, n * i / THREADS, n * (i + 1) / THREADS, 0};
        pthread_create(&t[i], NULL, create_main, &cs[i]);
    }
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        failed += cs[i].failed;
    }
    return failed;
}

/* ------------------------------------------------------------------ main */

static int adds;

static void count_add(const cJSON *o, void *ctx)
{
    adds++;
}

static csl_informer *new_informer(csl_kube *k, const char *ns, bool strip, char *err, size_t errsz)
{
    csl_informer_options o = {0};
    o.strip_managed_fields = strip;
    o.reflector.resource = CS;
    o.reflector.namespace = ns;
    o.reflector.seed = 1;
    csl_informer *inf = csl_informer_new(k, &o, err, errsz);
    if (!inf) return NULL;
    csl_informer_handler h = {count_add, NULL, NULL, NULL};
    csl_informer_add_handler(inf, &h);
    csl_informer_index_label(inf, "app", "app.kubernetes.io/name");
    csl_informer_index_owner(inf, "owner");
    return inf;
}

int main(int argc, char **argv)
{
    bool feed = false, strip = false;
    int n = 10000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--feed") == 0) {
            feed = true;
        } else if (strcmp(argv[i], "--strip-managed-fields") == 0) {
            strip = true;
        } else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
            n = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: informer_mem [--feed] [--strip-managed-fields] [-n N]\n");
            return 1;
        }
    }
    if (n <= 0) n = 10000;
    csl_log_setup("informer_mem", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    const char *kc = getenv("CSL_KUBECONFIG");
    if (!kc || !*kc) feed = true;

    csl_kube_config cfg = {0};
    csl_kube *k = NULL;
    char err[512], ns[64] = "bench";
    double create_s = 0;
    int rc = 1;
    char *text = NULL;
    size_t text_len = 0;
    if (!feed) {
        if (csl_kubeconfig_load(kc, NULL, &cfg, err, sizeof err) != 0 ||
            !(k = csl_kube_new(&cfg, NULL, err, sizeof err))) {
            fprintf(stderr, "informer_mem: %s\n", err);
            goto out;
        }
        csl_kube_error e;
        cJSON *probe = csl_kube_list(k, &CS, NULL, &(csl_kube_list_opts){.limit = 1}, &e);
        if (!probe) {
            fprintf(stderr,
                    "informer_mem: cannot list cloudservers (%s); apply the CRDs first: "
                    "kubectl --kubeconfig %s apply --server-side -f config/crd/bases\n",
                    e.message, kc);
            goto out;
        }
        cJSON_Delete(probe);
        snprintf(ns, sizeof ns, "bench-informer-%d", (int)getpid());
        cJSON *nso = cJSON_CreateObject();
        cJSON_AddStringToObject(nso, "apiVersion", "v1");
        cJSON_AddStringToObject(nso, "kind", "Namespace");
        cJSON_AddStringToObject(cJSON_AddObjectToObject(nso, "metadata"), "name", ns);
        cJSON *made = csl_kube_create(k, &NAMESPACES, NULL, nso, &e);
        cJSON_Delete(nso);
        if (!made) {
            fprintf(stderr, "informer_mem: namespace %s: %s\n", ns, e.message);
            goto out;
        }
        cJSON_Delete(made);
        int64_t t0 = csl_mono_ns();
        int failed = plane_create(k, ns, n);
        create_s = secs_since(t0);
        printf("created %d CloudServers in namespace %s in %.1f s (%.0f/s, 8 threads), %d "
               "failed\n",
               n, ns, create_s, n / create_s, failed);
        if (failed) goto out;
        /* the List text as the server sends it, for the parse figure */
        csl_buf path = CSL_BUF_INIT, body = CSL_BUF_INIT;
        csl_kube_path(&path, &CS, ns, NULL, NULL);
        int st = csl_kube_request(k, "GET", path.data, NULL, NULL, 0, &body, &e);
        csl_buf_free(&path);
        if (st != 200) {
            fprintf(stderr, "informer_mem: list: %d %s\n", st, e.message);
            csl_buf_free(&body);
            goto out;
        }
        text_len = body.len;
        text = csl_buf_steal(&body);
    } else {
        text = feed_list(n, &text_len);
    }

    /* Parsing a 10,000-object List. */
    double parse_s = 1e9;
    for (int round = 0; round < 3; round++) {
        int64_t t0 = csl_mono_ns();
        cJSON *l = cJSON_ParseWithLength(text, text_len);
        double s = secs_since(t0);
        if (!l) {
            fprintf(stderr, "informer_mem: the List does not parse\n");
            goto out;
        }
        int items = cJSON_GetArraySize(cJSON_GetObjectItem(l, "items"));
        if (items != n) {
            fprintf(stderr, "informer_mem: the List holds %d items, not %d\n", items, n);
            cJSON_Delete(l);
            goto out;
        }
        cJSON_Delete(l);
        if (s < parse_s) parse_s = s;
    }
    printf("List of %d objects: %zu bytes of JSON (%.0f per object); cJSON parse %.3f s "
           "(best of 3; target <= 1 s)\n",
           n, text_len, (double)text_len / n, parse_s);
    cJSON *list = feed ? cJSON_ParseWithLength(text, text_len) : NULL;
    free(text);
    text = NULL;

    malloc_trim(0);
    size_t rss_start = rss_bytes();
    csl_informer *inf = new_informer(feed ? NULL : k, ns, strip, err, sizeof err);
    if (!inf) {
        fprintf(stderr, "informer_mem: %s\n", err);
        cJSON_Delete(list);
        goto out;
    }
    int64_t t0 = csl_mono_ns();
    if (feed) {
        /* the parsed items are what a reflector hands over; the informer
         * takes them and frees them once applied */
        cJSON *items = cJSON_DetachItemFromObject(list, "items");
        cJSON_Delete(list);
        t0 = csl_mono_ns();
        csl_informer_feed_replace(inf, items);
    } else if (csl_informer_start(inf, err, sizeof err) != 0 ||
               !csl_informer_wait_synced(inf, 300000)) {
        fprintf(stderr, "informer_mem: the informer did not sync: %s\n", err);
        csl_informer_free(inf);
        goto out;
    } else {
        csl_informer_flush(inf);
    }
    double sync_s = secs_since(t0);
    csl_informer_stop(inf);
    csl_informer_stats st;
    csl_informer_stats_get(inf, &st);
    if (st.objects != (size_t)n || adds != n) {
        fprintf(stderr, "informer_mem: the informer holds %zu objects (%d adds), not %d\n",
                st.objects, adds, n);
        csl_informer_free(inf);
        goto out;
    }
    /* The heap: holding everything, then holding nothing (all arenas).
     * RSS: against the process before the informer started (plane: the
     * informer's threads have arenas of their own, whose pages glibc keeps
     * after the informer is freed) or, fed, against the process once the
     * informer is freed (the parsed List was alive before it started). */
    size_t heap1 = heap_in_use(), rss1 = rss_bytes();
    malloc_trim(0);
    size_t rss2 = rss_bytes();
    csl_informer_free(inf);
    malloc_trim(0);
    size_t heap0 = heap_in_use(), rss0 = feed ? rss_bytes() : rss_start;
    double json_per = (double)st.json_bytes / n;
    double heap_per = ((double)heap1 - (double)heap0) / n;
    double rss_per = ((double)rss1 - (double)rss0) / n;
    double rss_trim_per = ((double)rss2 - (double)rss0) / n;
    printf("source: %s\n", feed ? "generated objects fed through csl_informer_feed_replace"
                                : "objects created on the API server, listed by the informer");
    printf("sync (%s) %.3f s\n", feed ? "apply of the parsed List" : "list + parse + apply",
           sync_s);
    double stored_per = (double)st.stored_bytes / n;
    printf("compact JSON per object: %.0f bytes (%zu in all%s)\n", json_per, st.json_bytes,
           strip ? ", managedFields stripped" : "");
    printf("stored per object (delta-coded): %.0f bytes, %.1f%% of the text\n", stored_per,
           100.0 * stored_per / json_per);
    printf("heap in use per object: %.0f bytes, %.0f beyond its JSON\n", heap_per,
           heap_per - json_per);
    printf("RSS per object: %.0f bytes (%.0f beyond JSON); after malloc_trim %.0f (%.0f beyond "
           "JSON)\n",
           rss_per, rss_per - json_per, rss_trim_per, rss_trim_per - json_per);
    printf("process RSS holding %d objects: %.1f MiB (%.1f MiB after malloc_trim; %.1f MiB "
           "before)\n",
           n, rss1 / 1048576.0, rss2 / 1048576.0, rss0 / 1048576.0);
    printf("RESULT mode=%s strip=%d n=%d json_bytes=%.0f stored_bytes=%.0f heap_per=%.0f "
           "rss_per=%.0f heap_beyond_json=%.0f rss_beyond_json=%.0f rss_trim_beyond_json=%.0f "
           "parse_s=%.3f sync_s=%.3f create_s=%.1f\n",
           feed ? "feed" : "plane", strip, n, json_per, stored_per, heap_per, rss_per,
           heap_per - json_per, rss_per - json_per, rss_trim_per - json_per, parse_s, sync_s,
           create_s);
    printf("%s: <= 2 KiB per object beyond JSON (RSS %.0f B, heap %.0f B)\n",
           rss_per - json_per <= 2048 ? "PASS" : "FAIL", rss_per - json_per, heap_per - json_per);
    printf("%s: List parse <= 1 s (%.3f s)\n", parse_s <= 1.0 ? "PASS" : "FAIL", parse_s);
    rc = 0;
out:
    free(text);
    if (k && strcmp(ns, "bench") != 0) {
        /* Delete the objects (no controller-manager empties a namespace). */
        csl_buf path = CSL_BUF_INIT, body = CSL_BUF_INIT;
        csl_kube_path(&path, &CS, ns, NULL, NULL);
        csl_kube_error e;
        csl_kube_request(k, "DELETE", path.data, NULL, NULL, 0, &body, &e);
        csl_kube_delete(k, &NAMESPACES, NULL, ns, NULL, &e);
        csl_buf_free(&path);
        csl_buf_free(&body);
    }
    csl_kube_free(k);
    csl_kube_config_free(&cfg);
    return rc;
}
