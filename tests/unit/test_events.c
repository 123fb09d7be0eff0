/* test_events.c — the event recorder: the aggregation cache's decisions
 * (create or patch, series counts, the 6-minute window, spam limiting,
 * expiry, eviction) fed with occurrences and times; MicroTime formatting;
 * input checks; and, against a loopback lib/httpd server standing in as the
 * API server, the HTTP shape of create and patch, retries, the 404 → create
 * fallback, refusals, queue overflow and the flush on free. */
#include "../testutil.h"

#include "csl/clock.h"
#include "csl/events.h"
#include "csl/httpd.h"
#include "csl/log.h"

#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S_NS 1000000000LL
#define MIN_NS (60 * S_NS)
#define T0_US 1795702886123456LL /* 2026-11-26T14:21:26.123456Z */

/* ---------------------------------------------------------------- times */

static void test_microtime_format(void)
{
    char out[CSL_MICROTIME_LEN];
    csl_microtime_format(T0_US, out);
    CU_ASSERT_STRING_EQUAL(out, "2026-11-26T14:21:26.123456Z");
    csl_microtime_format(0, out);
    CU_ASSERT_STRING_EQUAL(out, "1970-01-01T00:00:00.000000Z");
    csl_microtime_format(-1, out);
    CU_ASSERT_STRING_EQUAL(out, "1969-12-31T23:59:59.999999Z");
    csl_microtime_format(T0_US - 123456 + 7, out);
    CU_ASSERT_STRING_EQUAL(out, "2026-11-26T14:21:26.000007Z");
    /* The API server's MicroTime reads back what we write. */
    int64_t ms;
    CU_ASSERT_EQUAL(csl_rfc3339_parse("2026-11-26T14:21:26.123456Z", &ms), 0);
    CU_ASSERT_EQUAL(ms, T0_US / 1000);
}

static void test_microtime_now(void)
{
    int64_t a = csl_wall_ms();
    int64_t us = csl_microtime_now();
    int64_t b = csl_wall_ms();
    CU_ASSERT(us / 1000 >= a - 1 && us / 1000 <= b + 1);
}

/* ------------------------------------------------ the aggregation cache */

static csl_event_occurrence occ(const char *uid, const char *reason, const char *note, int64_t t_ns)
{
    csl_event_occurrence o = {
        .object_key = uid,
        .api_version = "v1",
        .kind = "ConfigMap",
        .namespace = "ns1",
        .name = "cm1",
        .uid = uid,
        .resource_version = "42",
        .type = "Warning",
        .reason = reason,
        .action = reason,
        .note = note,
        .mono_ns = t_ns,
        .wall_us = T0_US + t_ns / 1000,
    };
    return o;
}

/* Observes then decides at the same time and, unless SPAM, records the
 * write as done: what the recorder does with one record and a good server. */
static csl_event_decision step(csl_event_agg *a, csl_event_occurrence o, long *count)
{
    csl_event_series *s = csl_event_agg_observe(a, &o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    csl_event_decision d = csl_event_agg_decide(a, s, o.mono_ns);
    if (d == CSL_EVENT_CREATE || d == CSL_EVENT_PATCH) csl_event_agg_written(a, s, s->count);
    if (count) *count = s->count;
    return d;
}

static void test_agg_series_counting(void)
{
    csl_event_agg *a = csl_event_agg_new(25, 1.0 / 300, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    long count;
    /* client-go after kubernetes#112334: one Event, no series; then the
     * series starts at 2 and counts every occurrence. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "Failed", "boom", 0), &count), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(count, 1);
    for (long i = 2; i <= 5; i++) {
        CU_ASSERT_EQUAL(step(a, occ("u1", "Failed", "boom", i * S_NS), &count), CSL_EVENT_PATCH);
        CU_ASSERT_EQUAL(count, i);
    }
    CU_ASSERT_EQUAL(csl_event_agg_len(a), 1);

    csl_event_occurrence o = occ("u1", "Failed", "boom", 6 * S_NS);
    csl_event_series *s = csl_event_agg_observe(a, &o);
    CU_ASSERT_EQUAL(s->count, 6);
    CU_ASSERT_EQUAL(s->written, 5);
    CU_ASSERT_EQUAL(s->first_wall_us, T0_US);          /* eventTime: the first */
    CU_ASSERT_EQUAL(s->last_wall_us, T0_US + 6000000); /* lastObservedTime */
    CU_ASSERT_STRING_EQUAL(s->event_namespace, "ns1");
    CU_ASSERT_STRING_EQUAL(s->reason, "Failed");
    CU_ASSERT_STRING_EQUAL(s->resource_version, "42");
    CU_ASSERT_EQUAL(strncmp(s->event_name, "cm1.", 4), 0);
    CU_ASSERT_EQUAL(csl_event_agg_decide(a, s, o.mono_ns), CSL_EVENT_PATCH);
    csl_event_agg_written(a, s, s->count);
    CU_ASSERT_EQUAL(csl_event_agg_decide(a, s, o.mono_ns), CSL_EVENT_NONE);
    csl_event_agg_free(a);
}

static void test_agg_key(void)
{
    csl_event_agg *a = csl_event_agg_new(25, 1.0 / 300, 0);
    long count;
    CU_ASSERT_EQUAL(step(a, occ("u1", "Failed", "boom", 0), &count), CSL_EVENT_CREATE);
    /* Another reason, note, object or type: another Event. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "Resized", "boom", S_NS), &count), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(step(a, occ("u1", "Failed", "bang", S_NS), &count), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(step(a, occ("u2", "Failed", "boom", S_NS), &count), CSL_EVENT_CREATE);
    csl_event_occurrence o = occ("u1", "Failed", "boom", S_NS);
    o.type = "Normal";
    CU_ASSERT_EQUAL(step(a, o, &count), CSL_EVENT_CREATE);
    o.action = "Retry";
    CU_ASSERT_EQUAL(step(a, o, &count), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(csl_event_agg_len(a), 6);
    /* The same again joins its series. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "Failed", "bang", 2 * S_NS), &count), CSL_EVENT_PATCH);
    CU_ASSERT_EQUAL(count, 2);
    CU_ASSERT_EQUAL(csl_event_agg_len(a), 6);
    /* Separators cannot be faked by the fields' contents. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "Failed", "boom\x1f", 3 * S_NS), &count), CSL_EVENT_CREATE);
    csl_event_agg_free(a);
}

static void test_agg_window(void)
{
    csl_event_agg *a = csl_event_agg_new(100, 1, 0);
    long count;
    /* The window slides: each repeat within 6 minutes of the previous one
     * extends the series, however long it runs. */
    for (int i = 0; i < 5; i++) step(a, occ("u1", "Failed", "boom", i * 5 * MIN_NS), &count);
    CU_ASSERT_EQUAL(count, 5);
    csl_event_occurrence o = occ("u1", "Failed", "boom", 20 * MIN_NS);
    const csl_event_series *s = csl_event_agg_observe(a, &o);
    char name[300];
    snprintf(name, sizeof name, "%s", s->event_name);
    /* 6 minutes after the last occurrence: the series ended; a new Event. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "Failed", "boom", 26 * MIN_NS), &count), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(count, 1);
    o = occ("u1", "Failed", "boom", 26 * MIN_NS + 1);
    s = csl_event_agg_observe(a, &o);
    CU_ASSERT_EQUAL(s->count, 2);
    CU_ASSERT_STRING_NOT_EQUAL(s->event_name, name);
    CU_ASSERT_EQUAL(s->first_wall_us, T0_US + 26 * MIN_NS / 1000);
    /* Just inside the window. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "Failed", "boom", 32 * MIN_NS), &count), CSL_EVENT_PATCH);
    CU_ASSERT_EQUAL(count, 3);
    csl_event_agg_free(a);
}

static void test_agg_coalesce_and_failures(void)
{
    csl_event_agg *a = csl_event_agg_new(25, 1.0 / 300, 0);
    /* Three occurrences queued together: one create carrying the series. */
    csl_event_series *s = NULL;
    for (int i = 0; i < 3; i++) {
        csl_event_occurrence o = occ("u1", "Failed", "boom", i * S_NS);
        s = csl_event_agg_observe(a, &o);
    }
    CU_ASSERT_EQUAL(s->count, 3);
    CU_ASSERT_EQUAL(csl_event_agg_decide(a, s, 3 * S_NS), CSL_EVENT_CREATE);
    /* The write failed: nothing recorded, the next decision is a create. */
    CU_ASSERT_EQUAL(csl_event_agg_decide(a, s, 4 * S_NS), CSL_EVENT_CREATE);
    csl_event_agg_written(a, s, 3);
    CU_ASSERT_EQUAL(csl_event_agg_decide(a, s, 4 * S_NS), CSL_EVENT_NONE);
    /* A write that sent an older count leaves the rest pending. */
    csl_event_occurrence o = occ("u1", "Failed", "boom", 5 * S_NS);
    csl_event_agg_observe(a, &o);
    o.mono_ns = 6 * S_NS;
    csl_event_agg_observe(a, &o);
    csl_event_agg_written(a, s, 4);
    CU_ASSERT_EQUAL(s->written, 4);
    csl_event_agg_written(a, s, 3); /* late, smaller: ignored */
    CU_ASSERT_EQUAL(s->written, 4);
    CU_ASSERT_EQUAL(csl_event_agg_decide(a, s, 7 * S_NS), CSL_EVENT_PATCH);
    /* Refused for good: never written again, still counted. */
    csl_event_agg_reject(a, s);
    o.mono_ns = 8 * S_NS;
    csl_event_agg_observe(a, &o);
    CU_ASSERT_EQUAL(s->count, 6);
    CU_ASSERT_EQUAL(csl_event_agg_decide(a, s, 8 * S_NS), CSL_EVENT_NONE);
    csl_event_agg_free(a);
}

static void count_pending(csl_event_series *s, void *ctx)
{
    (*(int *)ctx)++;
}

static void test_agg_pending(void)
{
    csl_event_agg *a = csl_event_agg_new(25, 1.0 / 300, 0);
    csl_event_occurrence o1 = occ("u1", "A", "n", 0), o2 = occ("u1", "B", "n", 0),
                         o3 = occ("u1", "C", "n", 0);
    csl_event_series *s1 = csl_event_agg_observe(a, &o1);
    csl_event_agg_observe(a, &o2);
    csl_event_series *s3 = csl_event_agg_observe(a, &o3);
    int n = 0;
    csl_event_agg_each_pending(a, count_pending, &n);
    CU_ASSERT_EQUAL(n, 3);
    csl_event_agg_written(a, s1, 1);
    csl_event_agg_reject(a, s3);
    n = 0;
    csl_event_agg_each_pending(a, count_pending, &n);
    CU_ASSERT_EQUAL(n, 1);
    csl_event_agg_free(a);
}

static void test_agg_spam(void)
{
    /* Burst 3, then one token each 10 s. */
    csl_event_agg *a = csl_event_agg_new(3, 0.1, 0);
    long count;
    CU_ASSERT_EQUAL(step(a, occ("u1", "A", "n", 0), NULL), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(step(a, occ("u1", "B", "n", 0), NULL), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(step(a, occ("u1", "A", "n", 0), NULL), CSL_EVENT_PATCH);
    /* The bucket of u1 is empty; others are untouched. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "C", "n", S_NS), NULL), CSL_EVENT_SPAM);
    CU_ASSERT_EQUAL(step(a, occ("u2", "C", "n", S_NS), NULL), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(csl_event_agg_spam_held(a), 1);
    /* Held repeats keep counting; holding again counts once. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "A", "n", 2 * S_NS), &count), CSL_EVENT_SPAM);
    CU_ASSERT_EQUAL(step(a, occ("u1", "A", "n", 3 * S_NS), &count), CSL_EVENT_SPAM);
    CU_ASSERT_EQUAL(count, 4);
    CU_ASSERT_EQUAL(csl_event_agg_spam_held(a), 2);
    /* 10 s after the first token went: one token back. The first pending
     * write to ask gets it, carrying the whole count. */
    csl_event_occurrence o = occ("u1", "A", "n", 10 * S_NS);
    csl_event_series *s = csl_event_agg_observe(a, &o);
    CU_ASSERT_EQUAL(csl_event_agg_decide(a, s, 10 * S_NS), CSL_EVENT_PATCH);
    CU_ASSERT_EQUAL(s->count, 5);
    csl_event_agg_written(a, s, s->count);
    CU_ASSERT_EQUAL(step(a, occ("u1", "C", "n", 11 * S_NS), NULL), CSL_EVENT_SPAM);
    CU_ASSERT_EQUAL(step(a, occ("u1", "C", "n", 20 * S_NS), NULL), CSL_EVENT_CREATE);
    /* Refill stops at the burst: after an hour, 3 writes then a hold. */
    for (int i = 0; i < 3; i++) {
        char reason[16];
        snprintf(reason, sizeof reason, "R%d", i);
        CU_ASSERT_EQUAL(step(a, occ("u1", reason, "n", 3600 * S_NS), NULL), CSL_EVENT_CREATE);
    }
    CU_ASSERT_EQUAL(step(a, occ("u1", "R9", "n", 3600 * S_NS), NULL), CSL_EVENT_SPAM);
    csl_event_agg_free(a);
}

static void count_final(csl_event_series *s, void *ctx)
{
    int *n = ctx;
    (*n)++;
    CU_ASSERT_EQUAL(s->count, 3);
    CU_ASSERT_EQUAL(s->written, 2);
}

static void test_agg_expire(void)
{
    csl_event_agg *a = csl_event_agg_new(1, 1.0 / 300, 0);
    /* u1/A: created, then two repeats of which one is written. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "A", "n", 0), NULL), CSL_EVENT_CREATE);
    csl_event_occurrence o = occ("u1", "A", "n", S_NS);
    csl_event_series *s = csl_event_agg_observe(a, &o);
    csl_event_agg_written(a, s, 2);
    o.mono_ns = 2 * S_NS;
    csl_event_agg_observe(a, &o);
    /* u1/B: held by the empty bucket, never written. */
    CU_ASSERT_EQUAL(step(a, occ("u1", "B", "n", 3 * S_NS), NULL), CSL_EVENT_SPAM);
    /* u2/C: written and complete, later. */
    CU_ASSERT_EQUAL(step(a, occ("u2", "C", "n", 4 * MIN_NS), NULL), CSL_EVENT_CREATE);
    int finals = 0;
    CU_ASSERT_EQUAL(csl_event_agg_expire(a, 6 * MIN_NS, count_final, &finals), 0);
    CU_ASSERT_EQUAL(csl_event_agg_expire(a, 6 * MIN_NS + 3 * S_NS, count_final, &finals), 2);
    CU_ASSERT_EQUAL(finals, 1); /* the created one with an unwritten count */
    CU_ASSERT_EQUAL(csl_event_agg_spam_dropped(a), 1);
    CU_ASSERT_EQUAL(csl_event_agg_len(a), 1);
    CU_ASSERT_EQUAL(csl_event_agg_expire(a, 11 * MIN_NS, NULL, NULL), 1);
    CU_ASSERT_EQUAL(csl_event_agg_len(a), 0);
    csl_event_agg_free(a);
}

static void test_agg_lru(void)
{
    csl_event_agg *a = csl_event_agg_new(100, 1, 3);
    long count;
    step(a, occ("u1", "A", "n", 0), NULL);
    step(a, occ("u1", "B", "n", 1), NULL);
    step(a, occ("u1", "C", "n", 2), NULL);
    step(a, occ("u1", "A", "n", 3), &count); /* A is now the most recent */
    CU_ASSERT_EQUAL(count, 2);
    step(a, occ("u1", "D", "n", 4), NULL); /* B goes */
    CU_ASSERT_EQUAL(csl_event_agg_len(a), 3);
    step(a, occ("u1", "A", "n", 5), &count);
    CU_ASSERT_EQUAL(count, 3);
    CU_ASSERT_EQUAL(step(a, occ("u1", "B", "n", 6), &count), CSL_EVENT_CREATE);
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT_EQUAL(csl_event_agg_spam_dropped(a), 0); /* B had been written */
    csl_event_agg_free(a);
}

static void test_agg_names(void)
{
    csl_event_agg *a = csl_event_agg_new(100, 1, 0);
    regex_t re;
    CU_ASSERT_EQUAL_FATAL(regcomp(&re, "^cm1\\.[0-9a-f]+$", REG_EXTENDED | REG_NOSUB), 0);
    csl_event_occurrence o1 = occ("u1", "A", "n", 0), o2 = occ("u1", "B", "n", 0);
    csl_event_series *s1 = csl_event_agg_observe(a, &o1);
    csl_event_series *s2 = csl_event_agg_observe(a, &o2);
    /* Same wall time, still two names. */
    CU_ASSERT_EQUAL(regexec(&re, s1->event_name, 0, NULL, 0), 0);
    CU_ASSERT_EQUAL(regexec(&re, s2->event_name, 0, NULL, 0), 0);
    CU_ASSERT_STRING_NOT_EQUAL(s1->event_name, s2->event_name);
    regfree(&re);

    /* A 253-byte object name is cut so the Event name stays a DNS
     * subdomain, the cut part ending on a letter or digit. */
    char longname[254];
    memset(longname, 'a', 253);
    longname[253] = '\0';
    longname[235] = '-';
    longname[236] = '.';
    csl_event_occurrence o3 = occ("u3", "A", "n", 0);
    o3.name = longname;
    o3.namespace = "";
    csl_event_series *s3 = csl_event_agg_observe(a, &o3);
    CU_ASSERT(strlen(s3->event_name) <= 253);
    const char *dot = strrchr(s3->event_name, '.');
    CU_ASSERT_PTR_NOT_NULL_FATAL(dot);
    CU_ASSERT(dot > s3->event_name && dot[-1] == 'a');
    CU_ASSERT_STRING_EQUAL(s3->event_namespace, "default"); /* cluster object */
    csl_event_agg_free(a);
}

/* -------------------------------------------------- a loopback API server */

/* Plays the events API: answers POST and PATCH as scripted by `script`
 * (status codes used one per request, then 201/200), remembers every
 * request, and hangs requests while `hang` is set. */
#define MAX_REQS 64
typedef struct seen_req {
    char method[8];
    char path[256];
    char content_type[64];
    char *body;
} seen_req;

static pthread_mutex_t srv_mu = PTHREAD_MUTEX_INITIALIZER;
static seen_req reqs[MAX_REQS];
static int nreqs;
static int script[16];
static int nscript, script_at;
static atomic_int hang;
static atomic_int arrived;
static csl_httpd *srv;
static FILE *log_file;

static void reset_server(void)
{
    pthread_mutex_lock(&srv_mu);
    for (int i = 0; i < nreqs; i++) free(reqs[i].body);
    memset(reqs, 0, sizeof reqs);
    nreqs = 0;
    nscript = script_at = 0;
    pthread_mutex_unlock(&srv_mu);
    atomic_store(&hang, 0);
    atomic_store(&arrived, 0);
}

static void h_events(csl_http_req *r, void *d)
{
    atomic_fetch_add(&arrived, 1);
    if (atomic_load(&hang)) {
        csl_http_suspend(r, -1);
        return;
    }
    size_t len;
    const char *body = csl_http_body(r, &len);
    const char *ct = csl_http_header(r, "Content-Type");
    pthread_mutex_lock(&srv_mu);
    int status = script_at < nscript ? script[script_at++] : 0;
    if (nreqs < MAX_REQS) {
        seen_req *q = &reqs[nreqs++];
        snprintf(q->method, sizeof q->method, "%s", csl_http_method(r));
        snprintf(q->path, sizeof q->path, "%s", csl_http_path(r));
        snprintf(q->content_type, sizeof q->content_type, "%s", ct ? ct : "");
        q->body = strndup(body, len);
    }
    pthread_mutex_unlock(&srv_mu);
    bool post = strcmp(csl_http_method(r), "POST") == 0;
    if (!status) status = post ? 201 : 200;
    if (status < 300) {
        /* Enough of the object for the client: the body echoed back. */
        csl_http_respond(r, status, "application/json", body, len);
        return;
    }
    char st[512];
    const char *reason = status == 404   ? "NotFound"
                         : status == 409 ? "AlreadyExists"
                         : status == 422 ? "Invalid"
                                         : "InternalError";
    snprintf(st, sizeof st,
             "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
             "\"message\":\"scripted %d\",\"reason\":\"%s\",\"code\":%d}",
             status, reason, status);
    csl_http_respond(r, status, "application/json", st, strlen(st));
}

static csl_kube *new_client(long timeout_ms)
{
    char server[64], err[256];
    snprintf(server, sizeof server, "http://127.0.0.1:%d", csl_httpd_port(srv));
    csl_kube_config cfg = {.server = server};
    csl_kube_options ko = {.timeout_ms = timeout_ms};
    csl_kube *k = csl_kube_new(&cfg, &ko, err, sizeof err);
    if (!k) fprintf(stderr, "csl_kube_new: %s\n", err);
    return k;
}

static cJSON *configmap(void)
{
    return cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
                       "\"name\":\"cm1\",\"namespace\":\"ns1\",\"uid\":\"uid-1\","
                       "\"resourceVersion\":\"77\"}}");
}

static csl_event_recorder *new_recorder(csl_kube *k, size_t queue_len, long flush_ms)
{
    char err[256];
    csl_event_options opt = {.reporting_controller = "cloudserver.dev/operator",
                             .reporting_instance = "op-test",
                             .queue_len = queue_len,
                             .retry_delay_ms = 20,
                             .flush_timeout_ms = flush_ms};
    csl_event_recorder *r = csl_event_recorder_new(k, &opt, err, sizeof err);
    if (!r) fprintf(stderr, "csl_event_recorder_new: %s\n", err);
    return r;
}

static int suite_init(void)
{
    log_file = tmpfile();
    if (!log_file) return 1;
    csl_log_setup("test_events", CSL_LOG_DEBUG, CSL_LOG_TEXT, fileno(log_file));
    csl_httpd_config cfg = {.listen = "127.0.0.1:0"};
    srv = csl_httpd_new(&cfg);
    char err[256];
    if (!srv || csl_httpd_route(srv, "*", "/apis/events.k8s.io/v1/*", "events", h_events, NULL) ||
        csl_httpd_start(srv, err, sizeof err) != 0)
        return 1;
    return 0;
}

static int suite_cleanup(void)
{
    csl_httpd_free(srv);
    reset_server();
    if (log_file) fclose(log_file);
    return 0;
}

static bool logged(const char *text)
{
    static char buf[1 << 16];
    ssize_t n = pread(fileno(log_file), buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, text) != NULL;
}

static const char *jstr(const cJSON *o, const char *path)
{
    char p[128];
    snprintf(p, sizeof p, "%s", path);
    const cJSON *cur = o;
    for (char *save, *tok = strtok_r(p, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cJSON_IsString(cur) ? cur->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static bool is_microtime(const char *s)
{
    regex_t re;
    regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
            REG_EXTENDED | REG_NOSUB);
    bool ok = s && regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static void test_http_shape(void)
{
    reset_server();
    csl_kube *k = new_client(5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    csl_event_recorder *r = new_recorder(k, 0, 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cJSON *cm = configmap();
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Warning", "ProvisioningTimeout",
                                     "instance %s not running after %d s", "i-1", 300),
                    0);
    CU_ASSERT(csl_event_recorder_sync(r, 5000));
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Warning", "ProvisioningTimeout",
                                     "instance %s not running after %d s", "i-1", 300),
                    0);
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Warning", "ProvisioningTimeout",
                                     "instance %s not running after %d s", "i-1", 300),
                    0);
    CU_ASSERT(csl_event_recorder_sync(r, 5000));

    pthread_mutex_lock(&srv_mu);
    CU_ASSERT_FATAL(nreqs >= 2 && nreqs <= 3);
    seen_req *c = &reqs[0];
    CU_ASSERT_STRING_EQUAL(c->method, "POST");
    CU_ASSERT_STRING_EQUAL(c->path, "/apis/events.k8s.io/v1/namespaces/ns1/events");
    CU_ASSERT_PTR_NOT_NULL(strstr(c->content_type, "application/json"));
    cJSON *ev = cJSON_Parse(c->body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
    CU_ASSERT_STRING_EQUAL(jstr(ev, "apiVersion"), "events.k8s.io/v1");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "kind"), "Event");
    const char *name = jstr(ev, "metadata.name");
    CU_ASSERT(name && strncmp(name, "cm1.", 4) == 0);
    CU_ASSERT_STRING_EQUAL(jstr(ev, "metadata.namespace"), "ns1");
    CU_ASSERT(is_microtime(jstr(ev, "eventTime")));
    CU_ASSERT_STRING_EQUAL(jstr(ev, "reportingController"), "cloudserver.dev/operator");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "reportingInstance"), "op-test");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "action"), "ProvisioningTimeout");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "reason"), "ProvisioningTimeout");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "type"), "Warning");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "note"), "instance i-1 not running after 300 s");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "regarding.apiVersion"), "v1");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "regarding.kind"), "ConfigMap");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "regarding.namespace"), "ns1");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "regarding.name"), "cm1");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "regarding.uid"), "uid-1");
    CU_ASSERT_STRING_EQUAL(jstr(ev, "regarding.resourceVersion"), "77");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(ev, "series"));

    /* Then merge patches of the series on that Event; the last says 3. */
    char want_path[256];
    snprintf(want_path, sizeof want_path, "/apis/events.k8s.io/v1/namespaces/ns1/events/%s", name);
    for (int i = 1; i < nreqs; i++) {
        CU_ASSERT_STRING_EQUAL(reqs[i].method, "PATCH");
        CU_ASSERT_STRING_EQUAL(reqs[i].path, want_path);
        CU_ASSERT_STRING_EQUAL(reqs[i].content_type, "application/merge-patch+json");
        cJSON *p = cJSON_Parse(reqs[i].body);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        CU_ASSERT_EQUAL(cJSON_GetArraySize(p), 1); /* series only: eventTime is immutable */
        CU_ASSERT(is_microtime(jstr(p, "series.lastObservedTime")));
        if (i == nreqs - 1) CU_ASSERT_EQUAL(jnum(p, "series", "count"), 3);
        cJSON_Delete(p);
    }
    cJSON_Delete(ev);
    pthread_mutex_unlock(&srv_mu);

    csl_event_stats st;
    csl_event_recorder_stats(r, &st);
    CU_ASSERT_EQUAL(st.recorded, 3);
    CU_ASSERT_EQUAL(st.created, 1);
    CU_ASSERT_EQUAL(st.patched, (uint64_t)nreqs - 1);
    CU_ASSERT_EQUAL(st.failed, 0);
    csl_event_recorder_free(r);
    csl_kube_free(k);
    cJSON_Delete(cm);
}

static void test_http_retry_and_fallback(void)
{
    reset_server();
    /* create: 500, 503, then 201. patch: 404 (the Event expired) → a create
     * with the series. */
    pthread_mutex_lock(&srv_mu);
    int s[] = {500, 503, 0, 404, 0};
    memcpy(script, s, sizeof s);
    nscript = 5;
    pthread_mutex_unlock(&srv_mu);
    csl_kube *k = new_client(5000);
    csl_event_recorder *r = new_recorder(k, 0, 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cJSON *cm = configmap();
    csl_event_record(r, cm, "Normal", "Created", "made it");
    CU_ASSERT(csl_event_recorder_sync(r, 5000));
    csl_event_record(r, cm, "Normal", "Created", "made it");
    CU_ASSERT(csl_event_recorder_sync(r, 5000));
    pthread_mutex_lock(&srv_mu);
    CU_ASSERT_EQUAL_FATAL(nreqs, 5);
    CU_ASSERT_STRING_EQUAL(reqs[2].method, "POST");
    CU_ASSERT_STRING_EQUAL(reqs[3].method, "PATCH");
    CU_ASSERT_STRING_EQUAL(reqs[4].method, "POST");
    cJSON *ev = cJSON_Parse(reqs[4].body);
    CU_ASSERT_EQUAL(jnum(ev, "series", "count"), 2);
    cJSON *first = cJSON_Parse(reqs[0].body);
    CU_ASSERT_STRING_EQUAL(jstr(ev, "metadata.name"), jstr(first, "metadata.name"));
    CU_ASSERT_STRING_EQUAL(jstr(ev, "eventTime"), jstr(first, "eventTime"));
    cJSON_Delete(ev);
    cJSON_Delete(first);
    pthread_mutex_unlock(&srv_mu);
    csl_event_stats st;
    csl_event_recorder_stats(r, &st);
    CU_ASSERT_EQUAL(st.created, 2);
    CU_ASSERT_EQUAL(st.failed, 0);
    csl_event_recorder_free(r);
    csl_kube_free(k);
    cJSON_Delete(cm);
}

static void test_http_refused(void)
{
    reset_server();
    /* 422: dropped at once, no retry, a warning once; its repeats are not
     * written again. */
    pthread_mutex_lock(&srv_mu);
    script[0] = 422;
    script[1] = 422;
    nscript = 2;
    pthread_mutex_unlock(&srv_mu);
    csl_kube *k = new_client(5000);
    csl_event_recorder *r = new_recorder(k, 0, 2000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cJSON *cm = configmap();
    csl_event_record(r, cm, "Normal", "Odd", "one");
    CU_ASSERT(csl_event_recorder_sync(r, 5000));
    csl_event_record(r, cm, "Normal", "Odd", "one");
    CU_ASSERT(csl_event_recorder_sync(r, 5000));
    csl_event_record(r, cm, "Normal", "Odd", "two");
    CU_ASSERT(csl_event_recorder_sync(r, 5000));
    pthread_mutex_lock(&srv_mu);
    CU_ASSERT_EQUAL(nreqs, 2); /* "one" once, "two" once */
    pthread_mutex_unlock(&srv_mu);
    csl_event_stats st;
    csl_event_recorder_stats(r, &st);
    CU_ASSERT_EQUAL(st.failed, 2);
    CU_ASSERT_EQUAL(st.created, 0);
    CU_ASSERT(logged("later refusals are logged at debug level"));
    csl_event_recorder_free(r);
    csl_kube_free(k);
    cJSON_Delete(cm);
}

static void test_queue_overflow(void)
{
    reset_server();
    atomic_store(&hang, 1);
    csl_kube *k = new_client(1500);
    csl_event_recorder *r = new_recorder(k, 4, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cJSON *cm = configmap();
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Normal", "First", "x"), 0);
    /* The thread is now stuck in a request the server holds. */
    int64_t end = csl_mono_ns() + 5 * S_NS;
    while (atomic_load(&arrived) == 0 && csl_mono_ns() < end) usleep(1000);
    CU_ASSERT_EQUAL_FATAL(atomic_load(&arrived), 1);
    int64_t t = csl_mono_ns();
    for (int i = 0; i < 7; i++)
        CU_ASSERT_EQUAL(csl_event_record(r, cm, "Normal", "Later", "n%d", i), 0);
    /* Never blocks: 7 records while the thread is stuck, far below 100 ms. */
    CU_ASSERT(csl_mono_ns() - t < 100000000);
    csl_event_stats st;
    csl_event_recorder_stats(r, &st);
    CU_ASSERT_EQUAL(st.recorded, 8);
    CU_ASSERT_EQUAL(st.dropped_full, 3);
    /* Free waits for the stuck request (client timeout 1.5 s), then gives
     * up on everything past the 200 ms flush deadline. */
    t = csl_mono_ns();
    csl_event_recorder_free(r);
    CU_ASSERT(csl_mono_ns() - t < 4 * S_NS);
    csl_kube_free(k);
    cJSON_Delete(cm);
    atomic_store(&hang, 0);
}

static void test_flush_on_free(void)
{
    reset_server();
    csl_kube *k = new_client(5000);
    csl_event_recorder *r = new_recorder(k, 0, 3000);
    cJSON *cm = configmap();
    for (int i = 0; i < 3; i++) csl_event_record(r, cm, "Normal", "Flushed", "n%d", i);
    csl_event_recorder_free(r);
    pthread_mutex_lock(&srv_mu);
    CU_ASSERT_EQUAL(nreqs, 3);
    pthread_mutex_unlock(&srv_mu);
    csl_kube_free(k);
    cJSON_Delete(cm);
}

/* ---------------------------------------------------------------- input */

static void test_bad_options(void)
{
    char err[256];
    csl_kube *k = new_client(1000);
    csl_event_options opt = {0};
    CU_ASSERT_PTR_NULL(csl_event_recorder_new(NULL, &opt, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "client"));
    CU_ASSERT_PTR_NULL(csl_event_recorder_new(k, &opt, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "reporting_controller is required"));
    const char *bad[] = {"Cloud Server", "/op", "Example.com/op", "x/-op", "a/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        opt.reporting_controller = bad[i];
        CU_ASSERT_PTR_NULL(csl_event_recorder_new(k, &opt, err, sizeof err));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a qualified name"));
    }
    opt.reporting_controller = "op";
    char inst[200];
    memset(inst, 'i', sizeof inst - 1);
    inst[sizeof inst - 1] = '\0';
    opt.reporting_instance = inst;
    CU_ASSERT_PTR_NULL(csl_event_recorder_new(k, &opt, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "reporting_instance"));
    csl_kube_free(k);
}

static void test_bad_records(void)
{
    reset_server();
    csl_kube *k = new_client(1000);
    csl_event_recorder *r = new_recorder(k, 0, 500);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    cJSON *cm = configmap();
    cJSON *nokind = cJSON_Parse("{\"metadata\":{\"name\":\"x\"}}");
    cJSON *noname = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{}}");
    CU_ASSERT_EQUAL(csl_event_record(r, NULL, "Normal", "Ok", "x"), -1);
    CU_ASSERT_EQUAL(csl_event_record(r, nokind, "Normal", "Ok", "x"), -1);
    CU_ASSERT(logged("apiVersion/kind"));
    CU_ASSERT_EQUAL(csl_event_record(r, noname, "Normal", "Ok", "x"), -1);
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Info", "Ok", "x"), -1);
    CU_ASSERT(logged("type must be"));
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Normal", "failed over", "x"), -1);
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Normal", "Failed over", "x"), -1);
    CU_ASSERT(logged("CamelCase"));
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Normal", "", "x"), -1);
    CU_ASSERT_EQUAL(csl_event_record_action(r, cm, "Normal", "Ok", "", "x"), -1);
    CU_ASSERT_EQUAL(csl_event_record_action(r, cm, "Normal", "Ok", "a\nb", "x"), -1);
    csl_event_stats st;
    csl_event_recorder_stats(r, &st);
    CU_ASSERT_EQUAL(st.recorded, 0);

    /* A long note is cut to 1024 bytes, never inside a UTF-8 sequence. */
    char note[1100] = "";
    for (int i = 0; i < 1023; i++) strcat(note, "x");
    strcat(note, "\xc3\xa9tail"); /* é straddles byte 1024 */
    CU_ASSERT_EQUAL(csl_event_record(r, cm, "Normal", "Long", "%s", note), 0);
    CU_ASSERT(csl_event_recorder_sync(r, 5000));
    pthread_mutex_lock(&srv_mu);
    CU_ASSERT_EQUAL_FATAL(nreqs, 1);
    cJSON *ev = cJSON_Parse(reqs[0].body);
    const char *got = jstr(ev, "note");
    CU_ASSERT(got && strlen(got) == 1023);
    cJSON_Delete(ev);
    pthread_mutex_unlock(&srv_mu);
    csl_event_recorder_free(r);
    csl_kube_free(k);
    cJSON_Delete(cm);
    cJSON_Delete(nokind);
    cJSON_Delete(noname);
}

static void test_cluster_object(void)
{
    reset_server();
    csl_kube *k = new_client(5000);
    csl_event_recorder *r = new_recorder(k, 0, 2000);
    cJSON *node = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{"
                              "\"name\":\"n1\"}}");
    CU_ASSERT_EQUAL(csl_event_record(r, node, "Normal", "Seen", "hi"), 0);
    CU_ASSERT(csl_event_recorder_sync(r, 5000));
    pthread_mutex_lock(&srv_mu);
    CU_ASSERT_EQUAL_FATAL(nreqs, 1);
    CU_ASSERT_STRING_EQUAL(reqs[0].path, "/apis/events.k8s.io/v1/namespaces/default/events");
    cJSON *ev = cJSON_Parse(reqs[0].body);
    CU_ASSERT_PTR_NULL(jstr(ev, "regarding.namespace"));
    CU_ASSERT_PTR_NULL(jstr(ev, "regarding.uid"));
    cJSON_Delete(ev);
    pthread_mutex_unlock(&srv_mu);
    csl_event_recorder_free(r);
    csl_kube_free(k);
    cJSON_Delete(node);
}

static CU_TestInfo agg_tests[] = {
    {"MicroTime formatting", test_microtime_format},
    {"MicroTime now", test_microtime_now},
    {"series counting: create, then patches 2..n", test_agg_series_counting},
    {"aggregation key", test_agg_key},
    {"6-minute sliding window", test_agg_window},
    {"coalesced repeats, failed and refused writes", test_agg_coalesce_and_failures},
    {"pending series", test_agg_pending},
    {"spam limiter: token bucket per object", test_agg_spam},
    {"expiry: final write, never-written dropped", test_agg_expire},
    {"LRU eviction", test_agg_lru},
    {"event names", test_agg_names},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo recorder_tests[] = {
    {"HTTP shape of create and patch", test_http_shape},
    {"transient errors retried; patch 404 becomes create", test_http_retry_and_fallback},
    {"refused events dropped", test_http_refused},
    {"queue overflow drops the oldest, never blocks", test_queue_overflow},
    {"flush on free", test_flush_on_free},
    {"bad options", test_bad_options},
    {"bad records", test_bad_records},
    {"cluster-scoped object", test_cluster_object},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"aggregation", NULL, NULL, NULL, NULL, agg_tests},
    {"recorder", suite_init, suite_cleanup, NULL, NULL, recorder_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
