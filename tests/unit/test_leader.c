/* test_leader.c — leader election: configuration checks, and against a
 * loopback lib/httpd server that keeps one Lease with resourceVersion
 * checks as the API server does: the shape of create and renew, two
 * electors in one process (one leads), and a server that stops answering
 * (the leader gives up within the renew deadline and stays down). The
 * real-server and multi-process checks are in
 * tests/integration/test_kube_leader.c. */
#include "../testutil.h"

#include "csl/clock.h"
#include "csl/events.h"
#include "csl/httpd.h"
#include "csl/leader.h"
#include "csl/log.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S_NS 1000000000LL

/* ---------------------------------------------------------------- config */

static void test_validate(void)
{
    char err[256];
    csl_leader_config c = {.lease_namespace = "ns", .lease_name = "op"};
    CU_ASSERT_EQUAL(csl_leader_config_validate(&c, err, sizeof err), 0); /* defaults 15/10/2 */
    c.lease_duration_s = 4, c.renew_deadline_s = 3, c.retry_period_s = 1;
    CU_ASSERT_EQUAL(csl_leader_config_validate(&c, err, sizeof err), 0);

    const struct {
        double lease, renew, retry;
        const char *msg;
    } bad[] = {
        {10, 0, 0, "lease_duration_s (10) must be greater than renew_deadline_s (10)"},
        {0, 15, 0, "lease_duration_s (15) must be greater than renew_deadline_s (15)"},
        {0, 0, 9, "renew_deadline_s (10) must be greater than retry_period_s × 1.2 (10.8)"},
        {4, 3, 2.5, "renew_deadline_s (3) must be greater than retry_period_s × 1.2 (3)"},
        {0, 0, -2, "retry_period_s (-2) must be greater than 0"},
        {0, -1, 0, "renew_deadline_s (-1) must be greater than 0"},
        {-1, 0, 0, "lease_duration_s (-1) must be greater than 0"},
        {15.5, 0, 0, "lease_duration_s (15.5) must be a whole number of seconds"},
        {NAN, 0, 0, "lease_duration_s (nan) must be greater than 0"},
        {1e300, 0, 0, "must be a whole number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c.lease_duration_s = bad[i].lease;
        c.renew_deadline_s = bad[i].renew;
        c.retry_period_s = bad[i].retry;
        err[0] = '\0';
        CU_ASSERT_EQUAL(csl_leader_config_validate(&c, err, sizeof err), -1);
        if (!strstr(err, bad[i].msg)) fprintf(stderr, "\n  case %zu: %s\n", i, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].msg));
    }
    /* renew > retry × 1.2 exactly at the edge is refused (client-go: <=). */
    c.lease_duration_s = 15, c.renew_deadline_s = 12, c.retry_period_s = 10;
    CU_ASSERT_EQUAL(csl_leader_config_validate(&c, err, sizeof err), -1);

    csl_leader_config noname = {.lease_namespace = "ns"};
    CU_ASSERT_EQUAL(csl_leader_config_validate(&noname, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "lease_name is required"));
    csl_leader_config nons = {.lease_name = "op"};
    CU_ASSERT_EQUAL(csl_leader_config_validate(&nons, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "lease_namespace is required"));
    csl_leader_config noid = {.lease_namespace = "ns", .lease_name = "op", .identity = ""};
    CU_ASSERT_EQUAL(csl_leader_config_validate(&noid, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "identity"));
    CU_ASSERT_EQUAL(csl_leader_config_validate(NULL, err, sizeof err), -1);
}

/* ------------------------------------------------ a loopback Lease store */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static cJSON *stored; /* the Lease, or NULL */
static long rv;
static int creates, updates, conflicts;
static char bad_request[256]; /* the first malformed request seen */
static atomic_int hang;
static csl_httpd *srv;

static void note_bad(const char *what)
{
    if (!bad_request[0]) snprintf(bad_request, sizeof bad_request, "%s", what);
}

static void respond_status(csl_http_req *r, int code, const char *reason)
{
    char b[256];
    snprintf(b, sizeof b,
             "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"reason\":\"%s\","
             "\"message\":\"%s\",\"code\":%d}",
             reason, reason, code);
    csl_http_respond(r, code, "application/json", b, strlen(b));
}

static void h_lease(csl_http_req *r, void *d)
{
    if (atomic_load(&hang)) {
        csl_http_suspend(r, -1);
        return;
    }
    const char *m = csl_http_method(r);
    size_t len;
    const char *body = csl_http_body(r, &len);
    pthread_mutex_lock(&mu);
    if (strcmp(m, "GET") == 0) {
        if (!stored)
            respond_status(r, 404, "NotFound");
        else
            csl_http_respond_json(r, 200, stored);
    } else if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0) {
        cJSON *obj = cJSON_ParseWithLength(body, len);
        cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
        cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
        const cJSON *holder = cJSON_GetObjectItemCaseSensitive(spec, "holderIdentity");
        const cJSON *dur = cJSON_GetObjectItemCaseSensitive(spec, "leaseDurationSeconds");
        const cJSON *renew = cJSON_GetObjectItemCaseSensitive(spec, "renewTime");
        if (!cJSON_IsObject(meta) || !cJSON_IsString(holder) || !cJSON_IsNumber(dur) ||
            !cJSON_IsString(renew) || strlen(renew->valuestring) != 27)
            note_bad(body);
        const cJSON *orv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
        if (strcmp(m, "POST") == 0 && stored) {
            respond_status(r, 409, "AlreadyExists");
        } else if (strcmp(m, "PUT") == 0 &&
                   (!stored || !cJSON_IsString(orv) || atol(orv->valuestring) != rv)) {
            conflicts++;
            respond_status(r, 409, "Conflict");
        } else {
            char v[32];
            snprintf(v, sizeof v, "%ld", ++rv);
            cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion");
            cJSON_AddStringToObject(meta, "resourceVersion", v);
            if (m[0] == 'P' && m[1] == 'O')
                creates++;
            else
                updates++;
            cJSON_Delete(stored);
            stored = cJSON_Duplicate(obj, true);
            csl_http_respond_json(r, m[1] == 'O' ? 201 : 200, stored);
        }
        cJSON_Delete(obj);
    } else {
        respond_status(r, 405, "MethodNotAllowed");
    }
    pthread_mutex_unlock(&mu);
}

static int suite_init(void)
{
    csl_log_setup("test_leader", CSL_LOG_ERROR, CSL_LOG_TEXT, 2);
    csl_httpd_config cfg = {.listen = "127.0.0.1:0"};
    srv = csl_httpd_new(&cfg);
    char err[256];
    if (!srv ||
        csl_httpd_route(srv, "*", "/apis/coordination.k8s.io/v1/namespaces/ns/leases", "create",
                        h_lease, NULL) ||
        csl_httpd_route(srv, "*", "/apis/coordination.k8s.io/v1/namespaces/ns/leases/{name}",
                        "lease", h_lease, NULL) ||
        csl_httpd_start(srv, err, sizeof err) != 0)
        return 1;
    return 0;
}

static int suite_cleanup(void)
{
    csl_httpd_free(srv);
    cJSON_Delete(stored);
    stored = NULL;
    return 0;
}

static void reset_store(void)
{
    pthread_mutex_lock(&mu);
    cJSON_Delete(stored);
    stored = NULL;
    rv = 0;
    creates = updates = conflicts = 0;
    bad_request[0] = '\0';
    pthread_mutex_unlock(&mu);
    atomic_store(&hang, 0);
}

typedef struct events {
    atomic_int started, stopped;
} events;

static void on_started(void *ctx)
{
    atomic_fetch_add(&((events *)ctx)->started, 1);
}

static void on_stopped(void *ctx)
{
    atomic_fetch_add(&((events *)ctx)->stopped, 1);
}

static csl_leader *elector(const char *id, events *ev, double lease, double renew, double retry)
{
    char server[64], err[256];
    snprintf(server, sizeof server, "http://127.0.0.1:%d", csl_httpd_port(srv));
    csl_kube_config kc = {.server = server};
    csl_leader_config lc = {.lease_namespace = "ns",
                            .lease_name = "op",
                            .identity = id,
                            .lease_duration_s = lease,
                            .renew_deadline_s = renew,
                            .retry_period_s = retry,
                            .callbacks = {on_started, on_stopped, NULL, ev}};
    csl_leader *l = csl_leader_new(&kc, &lc, err, sizeof err);
    if (!l) fprintf(stderr, "csl_leader_new: %s\n", err);
    return l;
}

static const char *spec_str(const char *f)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(stored, "spec"), f);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double spec_num(const char *f)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(stored, "spec"), f);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void test_acquire_renew_release(void)
{
    reset_store();
    events ev = {0};
    csl_leader *l = elector("me", &ev, 4, 3, 0.2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l);
    CU_ASSERT_STRING_EQUAL(csl_leader_identity(l), "me");
    char err[256];
    CU_ASSERT_EQUAL_FATAL(csl_leader_start(l, err, sizeof err), 0);
    CU_ASSERT_FATAL(csl_leader_wait_leading(l, 5000));
    csl_sleep_ns(S_NS); /* about five renewals */
    pthread_mutex_lock(&mu);
    CU_ASSERT_EQUAL(creates, 1);
    CU_ASSERT(updates >= 2);
    CU_ASSERT_STRING_EQUAL(bad_request, "");
    CU_ASSERT_STRING_EQUAL(spec_str("holderIdentity"), "me");
    CU_ASSERT_EQUAL(spec_num("leaseDurationSeconds"), 4);
    CU_ASSERT_EQUAL(spec_num("leaseTransitions"), 0); /* renewals keep it */
    const char *acquired = spec_str("acquireTime"), *renewed = spec_str("renewTime");
    CU_ASSERT(acquired && renewed && strcmp(acquired, renewed) < 0);
    pthread_mutex_unlock(&mu);

    csl_leader_stop(l);
    CU_ASSERT_EQUAL(atomic_load(&ev.started), 1);
    CU_ASSERT_EQUAL(atomic_load(&ev.stopped), 1);
    pthread_mutex_lock(&mu);
    CU_ASSERT_STRING_EQUAL(spec_str("holderIdentity"), "");
    CU_ASSERT_EQUAL(spec_num("leaseDurationSeconds"), 1);
    pthread_mutex_unlock(&mu);
    csl_leader_free(l);

    /* Another identity takes the released Lease at once: a transition. */
    events ev2 = {0};
    csl_leader *l2 = elector("you", &ev2, 4, 3, 0.2);
    CU_ASSERT_EQUAL_FATAL(csl_leader_start(l2, err, sizeof err), 0);
    CU_ASSERT(csl_leader_wait_leading(l2, 2000));
    pthread_mutex_lock(&mu);
    CU_ASSERT_STRING_EQUAL(spec_str("holderIdentity"), "you");
    CU_ASSERT_EQUAL(spec_num("leaseTransitions"), 1);
    pthread_mutex_unlock(&mu);
    csl_leader_free(l2);
}

static void test_two_electors_one_leader(void)
{
    reset_store();
    events e1 = {0}, e2 = {0};
    csl_leader *a = elector("a", &e1, 4, 3, 0.2), *b = elector("b", &e2, 4, 3, 0.2);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(csl_leader_start(a, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(csl_leader_start(b, err, sizeof err), 0);
    int64_t end = csl_mono_ns() + 5 * S_NS;
    while (!csl_leader_is_leading(a) && !csl_leader_is_leading(b) && csl_mono_ns() < end)
        csl_sleep_ns(10000000);
    int leaders = 0;
    for (int i = 0; i < 100; i++) { /* 2 s, sampled */
        int n = csl_leader_is_leading(a) + csl_leader_is_leading(b);
        if (n > leaders) leaders = n;
        csl_sleep_ns(20000000);
    }
    CU_ASSERT_EQUAL(leaders, 1);
    CU_ASSERT_EQUAL(atomic_load(&e1.started) + atomic_load(&e2.started), 1);
    char ha[64], hb[64];
    csl_leader_holder(a, ha, sizeof ha);
    csl_leader_holder(b, hb, sizeof hb);
    CU_ASSERT_STRING_EQUAL(ha, hb);
    csl_leader_free(a);
    csl_leader_free(b);
}

static void test_renew_deadline(void)
{
    reset_store();
    events ev = {0};
    /* Lease 4, renew deadline 3, retry 0.5: requests time out after 1.5 s. */
    csl_leader *l = elector("me", &ev, 4, 3, 0.5);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(csl_leader_start(l, err, sizeof err), 0);
    CU_ASSERT_FATAL(csl_leader_wait_leading(l, 5000));
    /* The server stops answering: renewals time out; the leader must give
     * up no later than the renew deadline plus one request timeout (the
     * Lease can be taken by others 4 s after the last renewal). */
    int64_t t0 = csl_mono_ns();
    atomic_store(&hang, 1);
    int64_t end = t0 + 10 * S_NS;
    while (!csl_leader_lost(l) && csl_mono_ns() < end) csl_sleep_ns(10000000);
    double took = (double)(csl_mono_ns() - t0) / 1e9;
    printf("\n    lost %.2f s after the server stopped answering (renew deadline 3 s) ", took);
    CU_ASSERT(csl_leader_lost(l));
    CU_ASSERT(took >= 2.0 && took <= 5.5);
    CU_ASSERT_EQUAL(atomic_load(&ev.stopped), 1);
    CU_ASSERT_FALSE(csl_leader_is_leading(l));
    /* The server answers again; the lost leader stays down. */
    atomic_store(&hang, 0);
    csl_sleep_ns(S_NS);
    CU_ASSERT_FALSE(csl_leader_is_leading(l));
    CU_ASSERT_EQUAL(atomic_load(&ev.started), 1);
    csl_leader_free(l);
    CU_ASSERT_EQUAL(atomic_load(&ev.stopped), 1);
}

static void test_default_identity(void)
{
    char server[64], err[256], host[256] = "";
    snprintf(server, sizeof server, "http://127.0.0.1:%d", csl_httpd_port(srv));
    csl_kube_config kc = {.server = server};
    csl_leader_config lc = {.lease_namespace = "ns", .lease_name = "op"};
    csl_leader *a = csl_leader_new(&kc, &lc, err, sizeof err);
    csl_leader *b = csl_leader_new(&kc, &lc, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    gethostname(host, sizeof host - 1);
    const char *id = csl_leader_identity(a);
    CU_ASSERT_EQUAL(strncmp(id, host, strlen(host)), 0);
    CU_ASSERT_EQUAL(id[strlen(host)], '_');
    CU_ASSERT_EQUAL(strlen(id), strlen(host) + 17);
    CU_ASSERT_STRING_NOT_EQUAL(id, csl_leader_identity(b));
    csl_leader_stop(a); /* never started: harmless */
    csl_leader_free(a);
    csl_leader_free(b);
    csl_leader_free(NULL);
    CU_ASSERT_PTR_NULL(csl_leader_new(NULL, &lc, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no Kubernetes configuration"));
    csl_kube_config badk = {.server = "ftp://x"};
    CU_ASSERT_PTR_NULL(csl_leader_new(&badk, &lc, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "leader election: "));
}

static CU_TestInfo tests[] = {
    {"configuration checks", test_validate},
    {"acquire, renew, release, transition", test_acquire_renew_release},
    {"two electors, one leader", test_two_electors_one_leader},
    {"renew deadline: lost for good", test_renew_deadline},
    {"default identity", test_default_identity},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"leader", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
