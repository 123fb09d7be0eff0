/* test_kube_rest.c — the Kubernetes client against a real kube-apiserver
 * (env CSL_KUBECONFIG; `make kube-integration` brings the local plane up):
 * the CRDs installed by server-side apply through our own client, then
 * CRUD on CloudServer in a fresh namespace — create, get, list with a label
 * selector, list_all pagination, update, merge and JSON patches,
 * server-side apply with its conflict and force, the status and scale
 * subresources, delete preconditions, the API errors a caller tests for
 * (NotFound, AlreadyExists, Invalid with field causes, Conflict on a stale
 * resourceVersion) — a core resource (ConfigMap), a short watch stream,
 * certificate files and tls-server-name, and the client-go metrics. */
#include "../testutil.h"

#include "csl/clock.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "csl/metrics.h"
#include "kube_testutil.h"

#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FM "csl-kube-rest-test"

static csl_kube_config cfg;
static csl_kube *kube;
static csl_metrics *reg;
static char ns[64];
static char host[128];

static const csl_kube_resource cs_res = {"cloudserver.dev", "v1", "cloudservers", true};
static const csl_kube_resource css_res = {"cloudserver.dev", "v1", "cloudserversets", true};
static const csl_kube_resource cm_res = {"", "v1", "configmaps", true};
static const csl_kube_resource ns_res = {"", "v1", "namespaces", false};

static void fail_msg(const char *what, const csl_kube_error *e)
{
    fprintf(stderr, "\n%s: %s (%s, HTTP %d)\n", what, e->message, csl_kube_code_name(e->code),
            e->status);
}

static cJSON *cloudserver(const char *name, int cpu, const char *label_app)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "cloudserver.dev/v1");
    cJSON_AddStringToObject(o, "kind", "CloudServer");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", name);
    if (label_app) cJSON_AddStringToObject(cJSON_AddObjectToObject(md, "labels"), "app", label_app);
    cJSON *spec = cJSON_AddObjectToObject(o, "spec");
    cJSON_AddNumberToObject(spec, "cpu", cpu);
    cJSON_AddStringToObject(spec, "memory", "4Gi");
    cJSON_AddStringToObject(spec, "disk", "40Gi");
    cJSON_AddStringToObject(spec, "image", "debian-12");
    cJSON_AddStringToObject(spec, "zone", "hk-1a");
    return o;
}

static int spec_cpu(const cJSON *o)
{
    const cJSON *c = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "spec"), "cpu");
    return cJSON_IsNumber(c) ? c->valueint : -1;
}

static double generation(const cJSON *o)
{
    const cJSON *g = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "generation");
    return cJSON_IsNumber(g) ? g->valuedouble : -1;
}

/* ---------------------------------------------------------------- setup */

static int apply_crds(void)
{
    return kt_apply_crds(kube, FM);
}

/* Established, and the new resources answer (discovery catches up). */
static int wait_crds(void)
{
    int64_t deadline = csl_mono_ns() + 60LL * 1000000000;
    while (csl_mono_ns() < deadline) {
        csl_kube_error e1, e2;
        cJSON *a = csl_kube_list(kube, &cs_res, ns, NULL, &e1);
        cJSON *b = csl_kube_list(kube, &css_res, ns, NULL, &e2);
        bool ok = a && b;
        cJSON_Delete(a);
        cJSON_Delete(b);
        if (ok) return 0;
        csl_sleep_ns(200 * 1000000LL);
    }
    fprintf(stderr, "the CloudServer CRDs did not become ready within 60 s\n");
    return -1;
}

static int suite_init(void)
{
    csl_log_setup("test_kube_rest", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    reg = csl_metrics_new();
    csl_kube_options opt = {.metrics = reg, .user_agent = "csl-kube-rest-test"};
    if (kt_connect(&opt, &cfg, &kube) != 0) return 1;
    const char *h = strstr(cfg.server, "://");
    snprintf(host, sizeof host, "%.*s", (int)strcspn(h + 3, "/"), h + 3);
    snprintf(ns, sizeof ns, "csl-kube-rest-%d-%lld", (int)getpid(),
             (long long)(csl_wall_ms() % 1000000));
    cJSON *n = cJSON_CreateObject();
    cJSON_AddStringToObject(n, "apiVersion", "v1");
    cJSON_AddStringToObject(n, "kind", "Namespace");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(n, "metadata"), "name", ns);
    csl_kube_error e;
    cJSON *r = csl_kube_create(kube, &ns_res, NULL, n, &e);
    cJSON_Delete(n);
    if (!r) {
        fail_msg("create namespace", &e);
        return 1;
    }
    cJSON_Delete(r);
    if (apply_crds() != 0 || wait_crds() != 0) return 1;
    return 0;
}

static int suite_cleanup(void)
{
    if (kube) {
        /* no controller-manager: the namespace stays Terminating; fine */
        csl_kube_error e;
        csl_kube_delete(kube, &ns_res, NULL, ns, NULL, &e);
    }
    csl_kube_free(kube);
    csl_metrics_free(reg);
    csl_kube_config_free(&cfg);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void test_create_get_exists(void)
{
    csl_kube_error e;
    cJSON *o = cloudserver("cs-a", 2, "web");
    cJSON *c = csl_kube_create(kube, &cs_res, ns, o, &e);
    if (!c) fail_msg("create", &e);
    CU_ASSERT_FATAL(c != NULL);
    CU_ASSERT_EQUAL(e.status, 201);
    CU_ASSERT_PTR_NOT_NULL(csl_kube_obj_uid(c));
    CU_ASSERT_PTR_NOT_NULL(csl_kube_obj_rv(c));
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_namespace(c), ns);
    CU_ASSERT_EQUAL(generation(c), 1);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(c, "spec"), "networkType")->valuestring,
        "standard"); /* the CRD's default came back */
    cJSON *g = csl_kube_get(kube, &cs_res, ns, "cs-a", NULL, &e);
    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_uid(g), csl_kube_obj_uid(c));
    CU_ASSERT_EQUAL(spec_cpu(g), 2);
    /* the same name again */
    CU_ASSERT_PTR_NULL(csl_kube_create(kube, &cs_res, ns, o, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_ALREADY_EXISTS);
    CU_ASSERT_EQUAL(e.status, 409);
    CU_ASSERT_STRING_EQUAL(e.reason, "AlreadyExists");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "already exists"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "POST /apis/cloudserver.dev/v1/namespaces/"));
    CU_ASSERT_FALSE(csl_kube_error_retryable(&e));
    /* a missing one */
    CU_ASSERT_PTR_NULL(csl_kube_get(kube, &cs_res, ns, "nope", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_NOT_FOUND);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "\"nope\" not found"));
    /* the namespace comes from the object when not given */
    cJSON *o2 = cloudserver("cs-b", 1, "db");
    cJSON_AddStringToObject(cJSON_GetObjectItem(o2, "metadata"), "namespace", ns);
    cJSON *c2 = csl_kube_create(kube, &cs_res, NULL, o2, &e);
    CU_ASSERT_PTR_NOT_NULL(c2);
    cJSON_Delete(c2);
    cJSON_Delete(o2);
    cJSON_Delete(g);
    cJSON_Delete(c);
    cJSON_Delete(o);
}

static void test_invalid_causes(void)
{
    csl_kube_error e;
    cJSON *o = cloudserver("cs-bad", 0, NULL);
    CU_ASSERT_PTR_NULL(csl_kube_create(kube, &cs_res, ns, o, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_INVALID);
    CU_ASSERT_EQUAL(e.status, 422);
    CU_ASSERT(e.ncauses >= 1);
    bool found = false;
    for (size_t i = 0; i < e.ncauses; i++)
        if (strcmp(e.causes[i].field, "spec.cpu") == 0) found = true;
    if (!found) fail_msg("invalid", &e);
    CU_ASSERT_TRUE(found);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "spec.cpu"));
    cJSON_Delete(o);
    /* a missing required field */
    o = cloudserver("cs-bad2", 2, NULL);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(o, "spec"), "zone");
    CU_ASSERT_PTR_NULL(csl_kube_create(kube, &cs_res, ns, o, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_INVALID);
    found = false;
    for (size_t i = 0; i < e.ncauses; i++)
        if (strcmp(e.causes[i].field, "spec.zone") == 0 &&
            strcmp(e.causes[i].reason, "FieldValueRequired") == 0)
            found = true;
    CU_ASSERT_TRUE(found);
    cJSON_Delete(o);
}

static void test_list_selector_and_pages(void)
{
    csl_kube_error e;
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "batch-%02d", i);
        cJSON *o = cloudserver(name, 1, "batch");
        cJSON *c = csl_kube_create(kube, &cs_res, ns, o, &e);
        CU_ASSERT_PTR_NOT_NULL(c);
        cJSON_Delete(c);
        cJSON_Delete(o);
    }
    csl_kube_list_opts lo = {.label_selector = "app=web"};
    cJSON *l = csl_kube_list(kube, &cs_res, ns, &lo, &e);
    CU_ASSERT_FATAL(l != NULL);
    cJSON *items = cJSON_GetObjectItem(l, "items");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items), 1);
    CU_ASSERT_STRING_EQUAL(csl_kube_obj_name(cJSON_GetArrayItem(items, 0)), "cs-a");
    cJSON_Delete(l);
    /* one page of 3, with a continue token */
    lo = (csl_kube_list_opts){.label_selector = "app=batch", .limit = 3};
    l = csl_kube_list(kube, &cs_res, ns, &lo, &e);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 3);
    cJSON *cont = cJSON_GetObjectItem(cJSON_GetObjectItem(l, "metadata"), "continue");
    CU_ASSERT(cJSON_IsString(cont) && cont->valuestring[0]);
    cJSON_Delete(l);
    /* every page */
    csl_kube_stats s0, s1;
    csl_kube_get_stats(kube, &s0);
    l = csl_kube_list_all(kube, &cs_res, ns, &lo, &e);
    csl_kube_get_stats(kube, &s1);
    CU_ASSERT_FATAL(l != NULL);
    items = cJSON_GetObjectItem(l, "items");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items), 10);
    for (int i = 0; i < 10; i++) {
        char name[32];
        snprintf(name, sizeof name, "batch-%02d", i);
        CU_ASSERT_STRING_EQUAL(csl_kube_obj_name(cJSON_GetArrayItem(items, i)), name);
    }
    CU_ASSERT_EQUAL(s1.requests - s0.requests, 4); /* 3+3+3+1 */
    cJSON *md = cJSON_GetObjectItem(l, "metadata");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(md, "continue"));
    CU_ASSERT_PTR_NOT_NULL(cJSON_GetObjectItem(md, "resourceVersion"));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(l, "kind")->valuestring, "CloudServerList");
    cJSON_Delete(l);
    /* everything in the namespace (cs-a, cs-b, 10 batch) */
    l = csl_kube_list_all(kube, &cs_res, ns, NULL, &e);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 12);
    cJSON_Delete(l);
}

static void test_update_and_stale(void)
{
    csl_kube_error e;
    cJSON *g = csl_kube_get(kube, &cs_res, ns, "cs-a", NULL, &e);
    CU_ASSERT_FATAL(g != NULL);
    cJSON *stale = cJSON_Duplicate(g, true);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(g, "spec"), "cpu", cJSON_CreateNumber(4));
    cJSON *u = csl_kube_update(kube, &cs_res, ns, g, NULL, &e);
    if (!u) fail_msg("update", &e);
    CU_ASSERT_FATAL(u != NULL);
    CU_ASSERT_EQUAL(spec_cpu(u), 4);
    CU_ASSERT_EQUAL(generation(u), 2);
    CU_ASSERT_STRING_NOT_EQUAL(csl_kube_obj_rv(u), csl_kube_obj_rv(stale));
    /* the old resourceVersion: Conflict */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(stale, "spec"), "cpu", cJSON_CreateNumber(6));
    CU_ASSERT_PTR_NULL(csl_kube_update(kube, &cs_res, ns, stale, NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_CONFLICT);
    CU_ASSERT_EQUAL(e.status, 409);
    CU_ASSERT_STRING_EQUAL(e.reason, "Conflict");
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "the object has been modified"));
    cJSON *now = csl_kube_get(kube, &cs_res, ns, "cs-a", NULL, &e);
    CU_ASSERT_EQUAL(spec_cpu(now), 4);
    cJSON_Delete(now);
    cJSON_Delete(u);
    cJSON_Delete(stale);
    cJSON_Delete(g);
}

static void test_patches(void)
{
    csl_kube_error e;
    cJSON *p = csl_kube_patch(kube, &cs_res, ns, "cs-a", NULL, CSL_PATCH_MERGE,
                              "{\"metadata\":{\"labels\":{\"tier\":\"front\"}},"
                              "\"spec\":{\"deletionPolicy\":\"Retain\"}}",
                              NULL, &e);
    if (!p) fail_msg("merge patch", &e);
    CU_ASSERT_FATAL(p != NULL);
    cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "metadata"), "labels");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(labels, "tier")->valuestring, "front");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(labels, "app")->valuestring, "web");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(p, "spec"), "deletionPolicy")->valuestring,
        "Retain");
    cJSON_Delete(p);
    p = csl_kube_patch(kube, &cs_res, ns, "cs-a", NULL, CSL_PATCH_JSON,
                       "[{\"op\":\"test\",\"path\":\"/spec/cpu\",\"value\":4},"
                       "{\"op\":\"replace\",\"path\":\"/spec/cpu\",\"value\":8}]",
                       NULL, &e);
    if (!p) fail_msg("json patch", &e);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_EQUAL(spec_cpu(p), 8);
    cJSON_Delete(p);
    /* a JSON patch whose test fails changes nothing */
    p = csl_kube_patch(kube, &cs_res, ns, "cs-a", NULL, CSL_PATCH_JSON,
                       "[{\"op\":\"test\",\"path\":\"/spec/cpu\",\"value\":99},"
                       "{\"op\":\"replace\",\"path\":\"/spec/cpu\",\"value\":1}]",
                       NULL, &e);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT(e.code == CSL_KUBE_INVALID || e.code == CSL_KUBE_CONFLICT ||
              e.code == CSL_KUBE_BAD_REQUEST);
    /* a merge patch that breaks validation */
    p = csl_kube_patch(kube, &cs_res, ns, "cs-a", NULL, CSL_PATCH_MERGE,
                       "{\"spec\":{\"cpu\":1000}}", NULL, &e);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_INVALID);
    /* patching something that is not there */
    CU_ASSERT_PTR_NULL(
        csl_kube_patch(kube, &cs_res, ns, "ghost", NULL, CSL_PATCH_MERGE, "{}", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_NOT_FOUND);
}

static void test_server_side_apply(void)
{
    csl_kube_error e;
    cJSON *o = cloudserver("cs-ssa", 2, "ssa");
    char *body = cJSON_PrintUnformatted(o);
    csl_kube_patch_opts a = {.field_manager = "manager-a"};
    cJSON *r = csl_kube_patch(kube, &cs_res, ns, "cs-ssa", NULL, CSL_PATCH_APPLY, body, &a, &e);
    if (!r) fail_msg("apply a", &e);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_EQUAL(spec_cpu(r), 2);
    const cJSON *mf = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metadata"), "managedFields");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(mf, 0), "manager")->valuestring,
                           "manager-a");
    cJSON_Delete(r);
    free(body);
    /* another manager wants spec.cpu: conflict without force */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(o, "spec"), "cpu", cJSON_CreateNumber(3));
    body = cJSON_PrintUnformatted(o);
    csl_kube_patch_opts b = {.field_manager = "manager-b"};
    CU_ASSERT_PTR_NULL(
        csl_kube_patch(kube, &cs_res, ns, "cs-ssa", NULL, CSL_PATCH_APPLY, body, &b, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_CONFLICT);
    CU_ASSERT_EQUAL(e.status, 409);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "manager-a"));
    bool cause = false;
    for (size_t i = 0; i < e.ncauses; i++)
        if (strstr(e.causes[i].field, "spec.cpu")) cause = true;
    CU_ASSERT_TRUE(cause);
    /* with force it takes the field */
    b.force = true;
    r = csl_kube_patch(kube, &cs_res, ns, "cs-ssa", NULL, CSL_PATCH_APPLY, body, &b, &e);
    if (!r) fail_msg("apply b force", &e);
    CU_ASSERT_FATAL(r != NULL);
    CU_ASSERT_EQUAL(spec_cpu(r), 3);
    cJSON_Delete(r);
    free(body);
    cJSON_Delete(o);
    /* YAML is fine too: the apply content type is YAML */
    const char *yaml = "apiVersion: cloudserver.dev/v1\nkind: CloudServer\nmetadata:\n"
                       "  name: cs-ssa\n  labels:\n    from: yaml\n";
    csl_kube_patch_opts c = {.field_manager = "manager-c"};
    r = csl_kube_patch(kube, &cs_res, ns, "cs-ssa", NULL, CSL_PATCH_APPLY, yaml, &c, &e);
    if (!r) fail_msg("apply yaml", &e);
    CU_ASSERT_PTR_NOT_NULL(r);
    if (r)
        CU_ASSERT_STRING_EQUAL(
            cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "metadata"), "labels"),
                                "from")
                ->valuestring,
            "yaml");
    cJSON_Delete(r);
}

static void test_status_subresource(void)
{
    csl_kube_error e;
    cJSON *g = csl_kube_get(kube, &cs_res, ns, "cs-b", NULL, &e);
    CU_ASSERT_FATAL(g != NULL);
    double gen = generation(g);
    cJSON *st = cJSON_AddObjectToObject(g, "status");
    cJSON_AddStringToObject(st, "phase", "Running");
    cJSON_AddStringToObject(st, "instanceID", "i-0001");
    cJSON *u = csl_kube_update(kube, &cs_res, ns, g, "status", &e);
    if (!u) fail_msg("status update", &e);
    CU_ASSERT_FATAL(u != NULL);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(u, "status"), "phase")->valuestring, "Running");
    CU_ASSERT_EQUAL(generation(u), gen); /* status writes do not bump generation */
    /* the main resource ignores status */
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(u, "status"), "phase",
                              cJSON_CreateString("Failed"));
    cJSON *u2 = csl_kube_update(kube, &cs_res, ns, u, NULL, &e);
    CU_ASSERT_FATAL(u2 != NULL);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(u2, "status"), "phase")->valuestring, "Running");
    /* merge patch on status */
    cJSON *p = csl_kube_patch(kube, &cs_res, ns, "cs-b", "status", CSL_PATCH_MERGE,
                              "{\"status\":{\"phase\":\"Resizing\"}}", NULL, &e);
    CU_ASSERT_FATAL(p != NULL);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(p, "status"), "phase")->valuestring, "Resizing");
    cJSON *gs = csl_kube_get(kube, &cs_res, ns, "cs-b", "status", &e);
    CU_ASSERT_PTR_NOT_NULL(gs);
    cJSON_Delete(gs);
    cJSON_Delete(p);
    cJSON_Delete(u2);
    cJSON_Delete(u);
    cJSON_Delete(g);
}

static void test_scale_subresource(void)
{
    csl_kube_error e;
    cJSON *o = cJSON_Parse(
        "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServerSet\",\"metadata\":"
        "{\"name\":\"edge\"},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":{\"app\":"
        "\"edge\"}},\"template\":{\"metadata\":{\"labels\":{\"app\":\"edge\"}},\"spec\":{\"cpu\":"
        "1,\"memory\":\"1Gi\",\"disk\":\"10Gi\",\"image\":\"debian-12\",\"zone\":\"hk-1b\"}}}}");
    cJSON *c = csl_kube_create(kube, &css_res, ns, o, &e);
    if (!c) fail_msg("create css", &e);
    CU_ASSERT_FATAL(c != NULL);
    cJSON *s = csl_kube_get(kube, &css_res, ns, "edge", "scale", &e);
    if (!s) fail_msg("get scale", &e);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(s, "kind")->valuestring, "Scale");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "spec"), "replicas")->valueint, 2);
    cJSON *p = csl_kube_patch(kube, &css_res, ns, "edge", "scale", CSL_PATCH_MERGE,
                              "{\"spec\":{\"replicas\":5}}", NULL, &e);
    if (!p) fail_msg("patch scale", &e);
    CU_ASSERT_FATAL(p != NULL);
    cJSON *g = csl_kube_get(kube, &css_res, ns, "edge", NULL, &e);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(g, "spec"), "replicas")->valueint, 5);
    cJSON_Delete(g);
    cJSON_Delete(p);
    cJSON_Delete(s);
    cJSON_Delete(c);
    cJSON_Delete(o);
}

static void test_delete_preconditions(void)
{
    csl_kube_error e;
    cJSON *g = csl_kube_get(kube, &cs_res, ns, "batch-00", NULL, &e);
    CU_ASSERT_FATAL(g != NULL);
    csl_kube_delete_opts d = {.precondition_uid = "00000000-0000-0000-0000-000000000000",
                              .grace_period_s = 0};
    CU_ASSERT_EQUAL(csl_kube_delete(kube, &cs_res, ns, "batch-00", &d, &e), -1);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_CONFLICT);
    if (!strstr(e.message, "recondition")) fail_msg("precondition", &e);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "recondition"));
    d.precondition_uid = NULL;
    d.precondition_rv = "1";
    CU_ASSERT_EQUAL(csl_kube_delete(kube, &cs_res, ns, "batch-00", &d, &e), -1);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_CONFLICT);
    d.precondition_uid = csl_kube_obj_uid(g);
    d.precondition_rv = csl_kube_obj_rv(g);
    d.propagation_policy = "Background";
    CU_ASSERT_EQUAL(csl_kube_delete(kube, &cs_res, ns, "batch-00", &d, &e), 0);
    CU_ASSERT_PTR_NULL(csl_kube_get(kube, &cs_res, ns, "batch-00", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_NOT_FOUND);
    CU_ASSERT_EQUAL(csl_kube_delete(kube, &cs_res, ns, "batch-00", NULL, &e), -1);
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_NOT_FOUND);
    cJSON_Delete(g);
}

static void test_configmap(void)
{
    csl_kube_error e;
    cJSON *o = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
                           "\"settings\"},\"data\":{\"a\":\"1\"}}");
    cJSON *c = csl_kube_create(kube, &cm_res, ns, o, &e);
    if (!c) fail_msg("create cm", &e);
    CU_ASSERT_FATAL(c != NULL);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "data"), "a", cJSON_CreateString("2"));
    cJSON *u = csl_kube_update(kube, &cm_res, ns, c, NULL, &e);
    CU_ASSERT_FATAL(u != NULL);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(u, "data"), "a")->valuestring,
                           "2");
    CU_ASSERT_PTR_NULL(csl_kube_update(kube, &cm_res, ns, c, NULL, &e)); /* c is stale now */
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_CONFLICT);
    csl_kube_list_opts lo = {.field_selector = "metadata.name=settings"};
    cJSON *l = csl_kube_list(kube, &cm_res, ns, &lo, &e);
    CU_ASSERT_FATAL(l != NULL);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 1);
    cJSON_Delete(l);
    csl_kube_delete_opts d = {.grace_period_s = CSL_KUBE_GRACE_IMMEDIATE};
    CU_ASSERT_EQUAL(csl_kube_delete(kube, &cm_res, ns, "settings", &d, &e), 0);
    CU_ASSERT_PTR_NULL(csl_kube_get(kube, &cm_res, ns, "settings", NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_NOT_FOUND);
    cJSON_Delete(u);
    cJSON_Delete(c);
    cJSON_Delete(o);
}

typedef struct lines {
    csl_buf buf;
    int added;
} lines;

static bool on_watch(const char *p, size_t n, void *ctx)
{
    lines *l = ctx;
    csl_buf_append(&l->buf, p, n);
    /* count complete lines */
    char *nl;
    while ((nl = memchr(l->buf.data, '\n', l->buf.len))) {
        *nl = 0;
        cJSON *ev = cJSON_Parse(l->buf.data);
        const cJSON *t = cJSON_GetObjectItem(ev, "type");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "ADDED") == 0) l->added++;
        cJSON_Delete(ev);
        size_t rest = l->buf.len - (size_t)(nl + 1 - l->buf.data);
        memmove(l->buf.data, nl + 1, rest);
        l->buf.len = rest;
        l->buf.data[rest] = 0;
    }
    return true;
}

static void test_watch_stream(void)
{
    csl_buf path = CSL_BUF_INIT;
    csl_kube_path(&path, &cs_res, ns, NULL, NULL);
    csl_buf_puts(&path, "?watch=true&timeoutSeconds=2&labelSelector=app%3Dbatch");
    lines l = {CSL_BUF_INIT, 0};
    csl_kube_error e;
    int64_t t0 = csl_mono_ns();
    int st = csl_kube_stream(kube, path.data, on_watch, &l, NULL, 30000, &e);
    double s = (double)(csl_mono_ns() - t0) / 1e9;
    if (st != 200) fail_msg("watch", &e);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(l.added, 9);   /* batch-01..09: the initial ADDED events */
    CU_ASSERT(s >= 1.5 && s < 30); /* the server ended it at timeoutSeconds */
    csl_buf_free(&l.buf);
    csl_buf_free(&path);
    csl_kube_stats st1;
    csl_kube_get_stats(kube, &st1);
    CU_ASSERT(st1.http2 > 0); /* TLS with ALPN: HTTP/2 */
}

static char *write_pem(const char *dir, const char *name, const char *data, size_t len)
{
    char *p = malloc(512);
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
    return p;
}

static void test_files_and_tls_name(void)
{
    if (!cfg.ca_data || !cfg.cert_data || !cfg.key_data) {
        fprintf(stderr, "\n(kubeconfig has no *-data fields; file test skipped)\n");
        return;
    }
    char dir[] = "/tmp/test_kube_rest.XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    csl_kube_config c = {0};
    c.server = cfg.server;
    c.ca_file = write_pem(dir, "ca.crt", cfg.ca_data, cfg.ca_data_len);
    c.cert_file = write_pem(dir, "client.crt", cfg.cert_data, cfg.cert_data_len);
    c.key_file = write_pem(dir, "client.key", cfg.key_data, cfg.key_data_len);
    char err[512];
    csl_kube_error e;
    csl_kube *k = csl_kube_new(&c, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    cJSON *g = csl_kube_get(k, &ns_res, NULL, ns, NULL, &e);
    if (!g) fail_msg("get with files", &e);
    CU_ASSERT_PTR_NOT_NULL(g);
    cJSON_Delete(g);
    csl_kube_free(k);
    /* tls-server-name: the certificate names "kubernetes", not "wrong.example" */
    c.tls_server_name = "kubernetes";
    k = csl_kube_new(&c, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    g = csl_kube_get(k, &ns_res, NULL, ns, NULL, &e);
    if (!g) fail_msg("tls-server-name kubernetes", &e);
    CU_ASSERT_PTR_NOT_NULL(g);
    cJSON_Delete(g);
    csl_kube_free(k);
    c.tls_server_name = "wrong.example";
    k = csl_kube_new(&c, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &ns_res, NULL, ns, NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_TRANSPORT);
    csl_kube_free(k);
    /* no client certificate: anonymous is refused */
    csl_kube_config anon = {.server = cfg.server, .ca_file = c.ca_file};
    k = csl_kube_new(&anon, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &ns_res, NULL, ns, NULL, &e));
    CU_ASSERT(e.code == CSL_KUBE_UNAUTHORIZED || e.code == CSL_KUBE_FORBIDDEN);
    csl_kube_free(k);
    /* a wrong CA: the server is not trusted */
    csl_kube_config wrong = {.server = cfg.server, .ca_file = c.cert_file};
    k = csl_kube_new(&wrong, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &ns_res, NULL, ns, NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_TRANSPORT);
    csl_kube_free(k);
    unlink(c.ca_file);
    unlink(c.cert_file);
    unlink(c.key_file);
    free(c.ca_file);
    free(c.cert_file);
    free(c.key_file);
    rmdir(dir);
}

static void test_exec_certificate(void)
{
    if (!cfg.ca_data || !cfg.cert_data || !cfg.key_data) {
        fprintf(stderr, "\n(kubeconfig has no *-data fields; exec test skipped)\n");
        return;
    }
    char dir[] = "/tmp/test_kube_rest.XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    /* the plugin prints an ExecCredential carrying the admin certificate */
    cJSON *cred = cJSON_CreateObject();
    cJSON_AddStringToObject(cred, "apiVersion", "client.authentication.k8s.io/v1");
    cJSON_AddStringToObject(cred, "kind", "ExecCredential");
    cJSON *st = cJSON_AddObjectToObject(cred, "status");
    cJSON_AddStringToObject(st, "clientCertificateData", cfg.cert_data);
    cJSON_AddStringToObject(st, "clientKeyData", cfg.key_data);
    cJSON_AddStringToObject(st, "expirationTimestamp", "2999-01-01T00:00:00Z");
    char *json = cJSON_PrintUnformatted(cred);
    cJSON_Delete(cred);
    char *jpath = write_pem(dir, "cred.json", json, strlen(json));
    free(json);
    char script[600];
    snprintf(script, sizeof script, "#!/bin/sh\nexec cat '%s'\n", jpath);
    char *spath = write_pem(dir, "plugin.sh", script, strlen(script));
    chmod(spath, 0700);
    csl_kube_config c = {
        .server = cfg.server,
        .ca_data = cfg.ca_data,
        .ca_data_len = cfg.ca_data_len,
        .exec = {.command = spath, .api_version = "client.authentication.k8s.io/v1"}};
    char err[512];
    csl_kube *k = csl_kube_new(&c, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    csl_kube_error e;
    for (int i = 0; i < 3; i++) {
        cJSON *g = csl_kube_get(k, &ns_res, NULL, ns, NULL, &e);
        if (!g) fail_msg("get with exec certificate", &e);
        CU_ASSERT_PTR_NOT_NULL(g);
        cJSON_Delete(g);
    }
    csl_kube_stats s;
    csl_kube_get_stats(k, &s);
    CU_ASSERT_EQUAL(s.auth_refreshes, 1); /* cached until expiry */
    CU_ASSERT_EQUAL(s.connects, 1);
    csl_kube_free(k);
    unlink(jpath);
    unlink(spath);
    free(jpath);
    free(spath);
    rmdir(dir);
}

static void test_service_account_token_file(void)
{
    csl_kube_error e;
    const csl_kube_resource sa_res = {"", "v1", "serviceaccounts", true};
    cJSON *sa = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":"
                            "{\"name\":\"tester\"}}");
    cJSON *c = csl_kube_create(kube, &sa_res, ns, sa, &e);
    cJSON_Delete(sa);
    if (!c) fail_msg("create service account", &e);
    CU_ASSERT_FATAL(c != NULL);
    cJSON_Delete(c);
    csl_buf p = CSL_BUF_INIT;
    csl_kube_path(&p, &sa_res, ns, "tester", "token");
    csl_buf resp = CSL_BUF_INIT;
    const char *tr = "{\"apiVersion\":\"authentication.k8s.io/v1\",\"kind\":\"TokenRequest\","
                     "\"spec\":{\"expirationSeconds\":600}}";
    int status =
        csl_kube_request(kube, "POST", p.data, "application/json", tr, strlen(tr), &resp, &e);
    csl_buf_free(&p);
    if (status != 201) {
        fprintf(stderr, "\n(TokenRequest answered %d: %s; token file test skipped)\n", status,
                csl_buf_str(&resp));
        csl_buf_free(&resp);
        return;
    }
    cJSON *r = cJSON_Parse(csl_buf_str(&resp));
    csl_buf_free(&resp);
    const cJSON *tok = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "status"), "token");
    CU_ASSERT_FATAL(cJSON_IsString(tok));
    char dir[] = "/tmp/test_kube_rest.XXXXXX";
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    char *tpath = write_pem(dir, "token", "not-a-valid-token", 17);
    csl_kube_config tc = {.server = cfg.server,
                          .ca_data = cfg.ca_data,
                          .ca_data_len = cfg.ca_data_len,
                          .token_file = tpath};
    char err[512];
    csl_kube *k = csl_kube_new(&tc, NULL, err, sizeof err);
    CU_ASSERT_FATAL(k != NULL);
    /* a bad token: 401 */
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &ns_res, NULL, ns, NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_UNAUTHORIZED);
    /* the file rotates to a real token: authenticated (and, with no RBAC
     * for it, forbidden: 403 names the service account) */
    free(write_pem(dir, "token", tok->valuestring, strlen(tok->valuestring)));
    CU_ASSERT_PTR_NULL(csl_kube_get(k, &ns_res, NULL, ns, NULL, &e));
    CU_ASSERT_EQUAL(e.code, CSL_KUBE_FORBIDDEN);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "system:serviceaccount:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, ":tester"));
    csl_kube_free(k);
    cJSON_Delete(r);
    unlink(tpath);
    free(tpath);
    rmdir(dir);
}

static void test_metrics_counted(void)
{
    csl_metric *req = csl_metrics_counter(reg, "rest_client_requests_total", "",
                                          CSL_LABELS("code", "method", "host"));
    CU_ASSERT_FATAL(req != NULL);
    /* at least: the namespace, cs-a, cs-b, 10 batch, the CSS */
    CU_ASSERT(csl_metric_value(req, CSL_LABELS("201", "POST", host)) >= 14);
    CU_ASSERT(csl_metric_value(req, CSL_LABELS("409", "POST", host)) >= 1);
    CU_ASSERT(csl_metric_value(req, CSL_LABELS("422", "POST", host)) >= 2);
    CU_ASSERT(csl_metric_value(req, CSL_LABELS("404", "GET", host)) >= 1);
    CU_ASSERT(csl_metric_value(req, CSL_LABELS("200", "PATCH", host)) >= 1);
    CU_ASSERT(csl_metric_value(req, CSL_LABELS("200", "PUT", host)) >= 1);
    CU_ASSERT(csl_metric_value(req, CSL_LABELS("200", "DELETE", host)) >= 1);
    csl_buf out = CSL_BUF_INIT;
    csl_metrics_render(reg, &out);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(out.data, "rest_client_request_duration_seconds_bucket{verb=\"GET\""));
    csl_buf_free(&out);
}

static CU_TestInfo tests[] = {
    {"create, get, AlreadyExists, NotFound", test_create_get_exists},
    {"Invalid with field causes", test_invalid_causes},
    {"list: label selector, pages, list_all", test_list_selector_and_pages},
    {"update; Conflict on a stale resourceVersion", test_update_and_stale},
    {"merge and JSON patches", test_patches},
    {"server-side apply: conflict, force", test_server_side_apply},
    {"status subresource", test_status_subresource},
    {"scale subresource", test_scale_subresource},
    {"delete: preconditions, NotFound after", test_delete_preconditions},
    {"core resource: ConfigMap", test_configmap},
    {"watch stream ends at timeoutSeconds", test_watch_stream},
    {"certificate files, tls-server-name, bad CA", test_files_and_tls_name},
    {"exec plugin giving a client certificate", test_exec_certificate},
    {"service-account token file, rotated", test_service_account_token_file},
    {"metrics counted", test_metrics_counted},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"kube REST against kube-apiserver", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
