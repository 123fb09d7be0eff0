/* test_mockcloud_faults.c — the fault engine: what rules are refused and
 * why, what matches, how fired rules compose, and that probabilities and
 * schedules are exact given a seed and explicit times. */
#include "../testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "../../mockcloud/faults.h"

#define T0 1764166886000LL /* 2025-11-26T14:21:26Z, in ms */

/* ---------------------------------------------------------------- helpers */

typedef struct hdrs {
    const char *names[4];
    const char *values[4];
} hdrs;

static const char *hdr_get(void *ctx, const char *name)
{
    const hdrs *h = ctx;
    for (int i = 0; i < 4 && h->names[i]; i++)
        if (strcasecmp(h->names[i], name) == 0) return h->values[i];
    return NULL;
}

static char last_err[512];
static const cJSON *last_bad;

/* Adds the rule in text; returns mc_faults_add's result. */
static int add_at(mc_faults *f, const char *text, int64_t now_ms)
{
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    last_err[0] = '\0';
    int rc = mc_faults_add(f, j, now_ms, NULL, last_err, sizeof last_err, &last_bad);
    cJSON_Delete(j);
    last_bad = NULL; /* it pointed into j */
    return rc;
}

static int add(mc_faults *f, const char *text)
{
    return add_at(f, text, T0);
}

static void eval_full(mc_faults *f, const char *method, const char *path, const char *op, hdrs *h,
                      int64_t now_ms, mc_fault_decision *d)
{
    mc_fault_request req = {method, path, op, h ? hdr_get : NULL, h};
    memset(d, 0x5a, sizeof *d); /* evaluate must fill every field */
    mc_faults_evaluate(f, &req, now_ms, d);
}

static void eval(mc_faults *f, const char *method, const char *path, const char *op,
                 mc_fault_decision *d)
{
    eval_full(f, method, path, op, NULL, T0, d);
}

/* A rule's "fired" count from the listing, -1 when absent. */
static int fired(mc_faults *f, const char *id, int64_t now_ms)
{
    cJSON *r = mc_faults_get(f, id, now_ms);
    if (!r) return -1;
    int n = cJSON_GetObjectItem(r, "fired")->valueint;
    cJSON_Delete(r);
    return n;
}

/* A rule's state from the listing ("" when absent); static buffer. */
static const char *state(mc_faults *f, const char *id, int64_t now_ms)
{
    static char s[32];
    s[0] = '\0';
    cJSON *r = mc_faults_get(f, id, now_ms);
    if (r) snprintf(s, sizeof s, "%s", cJSON_GetObjectItem(r, "state")->valuestring);
    cJSON_Delete(r);
    return s;
}

/* ---------------------------------------------------------------- validation */

static void test_invalid_rules(void)
{
    static const struct {
        const char *rule;
        const char *err; /* expected prefix of the message */
    } cases[] = {
        {"[]", "rule: must be an object"},
        {"{}", "effect: missing"},
        {"{\"effect\":{\"type\":\"reset\"},\"foo\":1}", "foo: unknown field"},
        {"{\"effect\":\"reset\"}", "effect: must be an object"},
        {"{\"effect\":{}}", "effect.type: missing"},
        {"{\"effect\":{\"type\":\"boom\"}}",
         "effect.type: must be one of latency, error, reset, hang, empty, malformed, "
         "unauthorized, forbidden, rateLimit"},
        {"{\"effect\":{\"type\":3}}", "effect.type: must be one of"},
        {"{\"id\":\"bad id\",\"effect\":{\"type\":\"reset\"}}", "id: must be 1 to 63"},
        {"{\"id\":\"\",\"effect\":{\"type\":\"reset\"}}", "id: must be 1 to 63"},
        {"{\"id\":\"a234567890123456789012345678901234567890123456789012345678901234\","
         "\"effect\":{\"type\":\"reset\"}}",
         "id: must be 1 to 63"},
        {"{\"id\":5,\"effect\":{\"type\":\"reset\"}}", "id: must be"},
        {"{\"match\":{\"method\":[\"GET\",\"GTE\"]},\"effect\":{\"type\":\"reset\"}}",
         "match.method[1]: unknown HTTP method \"GTE\""},
        {"{\"match\":{\"method\":\"get\"},\"effect\":{\"type\":\"reset\"}}",
         "match.method: unknown HTTP method \"get\""},
        {"{\"match\":{\"method\":[]},\"effect\":{\"type\":\"reset\"}}", "match.method: empty list"},
        {"{\"match\":{\"method\":[1]},\"effect\":{\"type\":\"reset\"}}",
         "match.method[0]: must be"},
        {"{\"match\":{\"path\":\"v1/x\"},\"effect\":{\"type\":\"reset\"}}", "match.path: must be"},
        {"{\"match\":{\"path\":7},\"effect\":{\"type\":\"reset\"}}", "match.path: must be"},
        {"{\"match\":{\"op\":[\"Get\",\"\"]},\"effect\":{\"type\":\"reset\"}}",
         "match.op[1]: must be"},
        {"{\"match\":{\"op\":{}},\"effect\":{\"type\":\"reset\"}}", "match.op: must be"},
        {"{\"match\":{\"headers\":{\"X-A\":5}},\"effect\":{\"type\":\"reset\"}}",
         "match.headers.X-A: must be a value glob"},
        {"{\"match\":{\"headers\":{\"Bad Name\":\"*\"}},\"effect\":{\"type\":\"reset\"}}",
         "match.headers.Bad Name: not a valid header name"},
        {"{\"match\":{\"headers\":{\"X-A\":\"*\",\"x-a\":\"1\"}},\"effect\":{\"type\":\"reset\"}}",
         "match.headers.x-a: given twice"},
        {"{\"match\":{\"headers\":[]},\"effect\":{\"type\":\"reset\"}}", "match.headers: must be"},
        {"{\"match\":{\"verb\":\"GET\"},\"effect\":{\"type\":\"reset\"}}",
         "match.verb: unknown field"},
        {"{\"match\":\"GET\",\"effect\":{\"type\":\"reset\"}}", "match: must be an object"},
        {"{\"effect\":{\"type\":\"error\",\"status\":600}}",
         "effect.status: must be an integer 100..599"},
        {"{\"effect\":{\"type\":\"error\",\"status\":99}}",
         "effect.status: must be an integer 100..599"},
        {"{\"effect\":{\"type\":\"error\",\"status\":\"503\"}}",
         "effect.status: must be an integer"},
        {"{\"effect\":{\"type\":\"error\",\"status\":503.5}}", "effect.status: must be an integer"},
        {"{\"effect\":{\"type\":\"error\",\"code\":\"has space\"}}", "effect.code: must be"},
        {"{\"effect\":{\"type\":\"error\",\"code\":\"\"}}", "effect.code: must be"},
        {"{\"effect\":{\"type\":\"error\",\"message\":7}}", "effect.message: must be a string"},
        {"{\"effect\":{\"type\":\"reset\",\"status\":500}}", "effect.status: unknown field"},
        {"{\"effect\":{\"type\":\"unauthorized\",\"status\":401}}", "effect.status: unknown field"},
        {"{\"effect\":{\"type\":\"error\",\"latency\":\"1s\"}}", "effect.latency: unknown field"},
        {"{\"effect\":{\"type\":\"latency\"}}", "effect.latency: missing"},
        {"{\"effect\":{\"type\":\"latency\",\"latency\":\"fast\"}}", "effect.latency: "},
        {"{\"effect\":{\"type\":\"latency\",\"latency\":{\"distribution\":\"uniform\",\"min\":"
         "\"2s\",\"max\":\"1s\"}}}",
         "effect.latency: uniform: \"max\""},
        {"{\"effect\":{\"type\":\"rateLimit\",\"retryAfter\":\"soon\"}}",
         "effect.retryAfter: bad duration \"soon\": "},
        {"{\"effect\":{\"type\":\"rateLimit\",\"retryAfter\":\"0s\"}}",
         "effect.retryAfter: must be above 0"},
        {"{\"effect\":{\"type\":\"rateLimit\",\"retryAfter\":5}}",
         "effect.retryAfter: must be a duration"},
        {"{\"effect\":{\"type\":\"reset\"},\"probability\":0}",
         "probability: must be a number in (0, 1]"},
        {"{\"effect\":{\"type\":\"reset\"},\"probability\":1.5}",
         "probability: must be a number in (0, 1]"},
        {"{\"effect\":{\"type\":\"reset\"},\"probability\":\"0.5\"}",
         "probability: must be a number in (0, 1]"},
        {"{\"effect\":{\"type\":\"reset\"},\"count\":0}", "count: must be a positive integer"},
        {"{\"effect\":{\"type\":\"reset\"},\"count\":2.5}", "count: must be a positive integer"},
        {"{\"effect\":{\"type\":\"reset\"},\"count\":-1}", "count: must be a positive integer"},
        {"{\"effect\":{\"type\":\"reset\"},\"count\":true}", "count: must be a positive integer"},
        {"{\"effect\":{\"type\":\"reset\"},\"startAfter\":\"x\"}",
         "startAfter: bad duration \"x\": "},
        {"{\"effect\":{\"type\":\"reset\"},\"startAfter\":10}",
         "startAfter: must be a duration string"},
        {"{\"effect\":{\"type\":\"reset\"},\"startAfter\":\"-5s\"}", "startAfter: bad duration"},
        {"{\"effect\":{\"type\":\"reset\"},\"duration\":\"0s\"}", "duration: must be above 0"},
        {"{\"effect\":{\"type\":\"reset\"},\"duration\":\"100000h\"}",
         "duration: must be above 0 and at most"},
        {"{\"effect\":{\"type\":\"reset\"},\"phase\":\"later\"}",
         "phase: must be \"request\" or \"response\""},
        {"{\"effect\":{\"type\":\"latency\",\"latency\":\"1s\"},\"phase\":\"response\"}",
         "phase: a latency effect"},
        {"{\"effect\":{\"type\":\"reset\"},\"count\":1,\"count\":2}", "count: given twice"},
    };
    mc_faults *f = mc_faults_new(1);
    size_t n = sizeof cases / sizeof cases[0];
    CU_ASSERT(n >= 20);
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_Parse(cases[i].rule);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        char err[512] = "";
        const cJSON *bad = NULL;
        cJSON *created = (cJSON *)1;
        int rc = mc_faults_add(f, j, T0, &created, err, sizeof err, &bad);
        bool ok = rc == -1 && strncmp(err, cases[i].err, strlen(cases[i].err)) == 0;
        CU_ASSERT(ok);
        CU_ASSERT_PTR_NOT_NULL(bad);
        CU_ASSERT_PTR_NULL(created);
        if (!ok || !bad) fprintf(stderr, "\n  rule %s\n  rc=%d err=%s\n", cases[i].rule, rc, err);
        cJSON_Delete(j);
    }
    CU_ASSERT_EQUAL(mc_faults_count(f), 0);
    mc_faults_free(f);
}

/* *bad points at the node a person must fix. */
static void test_bad_node(void)
{
    mc_faults *f = mc_faults_new(1);
    cJSON *j =
        cJSON_Parse("{\"match\":{\"method\":[\"GET\",\"GTE\"]},\"effect\":{\"type\":\"reset\"}}");
    const cJSON *bad = NULL;
    char err[256];
    CU_ASSERT_EQUAL(mc_faults_add(f, j, T0, NULL, err, sizeof err, &bad), -1);
    CU_ASSERT_PTR_EQUAL(
        bad, cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "match"), "method"), 1));
    cJSON_Delete(j);

    j = cJSON_Parse("{\"effect\":{\"type\":\"latency\",\"latency\":{\"distribution\":\"uniform\","
                    "\"min\":\"2s\",\"max\":\"1s\"}}}");
    CU_ASSERT_EQUAL(mc_faults_add(f, j, T0, NULL, err, sizeof err, &bad), -1);
    CU_ASSERT_PTR_EQUAL(
        bad, cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "effect"), "latency"),
                                 "max"));
    cJSON_Delete(j);

    j = cJSON_Parse("{\"match\":{}}");
    CU_ASSERT_EQUAL(mc_faults_add(f, j, T0, NULL, err, sizeof err, &bad), -1);
    CU_ASSERT_PTR_EQUAL(bad, j); /* no effect node: the rule itself */
    cJSON_Delete(j);
    mc_faults_free(f);
}

static void test_ids(void)
{
    mc_faults *f = mc_faults_new(1);
    CU_ASSERT_EQUAL(add(f, "{\"effect\":{\"type\":\"reset\"}}"), 0);               /* r1 */
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"r3\",\"effect\":{\"type\":\"reset\"}}"), 0); /* #2 */
    CU_ASSERT_EQUAL(add(f, "{\"effect\":{\"type\":\"reset\"}}"), 0); /* #3: r3 taken → r4 */
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"A.b_c-9\",\"effect\":{\"type\":\"hang\"}}"), 0);
    CU_ASSERT_STRING_EQUAL(state(f, "r1", T0), "active");
    CU_ASSERT_STRING_EQUAL(state(f, "r3", T0), "active");
    CU_ASSERT_STRING_EQUAL(state(f, "r4", T0), "active");
    CU_ASSERT_STRING_EQUAL(state(f, "A.b_c-9", T0), "active");
    CU_ASSERT_STRING_EQUAL(state(f, "r2", T0), "");

    CU_ASSERT_EQUAL(add(f, "{\"id\":\"r4\",\"effect\":{\"type\":\"reset\"}}"), -1);
    CU_ASSERT_STRING_EQUAL(last_err, "id: a rule named r4 exists");
    CU_ASSERT_EQUAL(mc_faults_count(f), 4);
    mc_faults_free(f);
}

static int add_batch(mc_faults *f, const char *text, cJSON **created, size_t *index)
{
    cJSON *j = cJSON_Parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    last_err[0] = '\0';
    const cJSON *bad = NULL;
    int rc = mc_faults_add_batch(f, j, T0, created, last_err, sizeof last_err, &bad, index);
    CU_ASSERT(rc == 0 ? bad == NULL : bad != NULL);
    cJSON_Delete(j);
    return rc;
}

/* A batch goes in whole or not at all, and a refused one leaves no trace. */
static void test_batch(void)
{
    mc_faults *f = mc_faults_new(3);
    cJSON *created = NULL;
    size_t index = 99;
    CU_ASSERT_EQUAL(add_batch(f,
                              "[{\"effect\":{\"type\":\"reset\"}},"
                              "{\"id\":\"r1\",\"effect\":{\"type\":\"hang\"}}]",
                              &created, &index),
                    0);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(created), 2);
    /* The auto id steps around the id the batch itself claims. */
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(created, 0), "id")->valuestring,
                           "r2");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(created, 1), "id")->valuestring,
                           "r1");
    cJSON_Delete(created);
    CU_ASSERT_EQUAL(mc_faults_count(f), 2);

    static const struct {
        const char *batch;
        size_t index;
        const char *err;
    } bad[] = {
        {"[{\"effect\":{\"type\":\"reset\"}},{\"effect\":{\"type\":\"reset\"}},"
         "{\"effect\":{\"type\":\"reset\"},\"count\":0}]",
         2, "count: must be a positive integer"},
        {"[{\"id\":\"x\",\"effect\":{\"type\":\"reset\"}},{\"id\":\"x\",\"effect\":{\"type\":"
         "\"hang\"}}]",
         1, "id: a rule named x exists"},
        {"[{\"effect\":{\"type\":\"reset\"}},{\"id\":\"r2\",\"effect\":{\"type\":\"hang\"}}]", 1,
         "id: a rule named r2 exists"},
        {"{\"effect\":{\"type\":\"reset\"}}", 0, "must be a JSON array of rules"},
        {"[7]", 0, "rule: must be an object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        created = (cJSON *)1;
        index = 99;
        CU_ASSERT_EQUAL(add_batch(f, bad[i].batch, &created, &index), -1);
        CU_ASSERT_EQUAL(index, bad[i].index);
        CU_ASSERT_EQUAL(strncmp(last_err, bad[i].err, strlen(bad[i].err)), 0);
        CU_ASSERT_PTR_NULL(created);
        CU_ASSERT_EQUAL(mc_faults_count(f), 2);
    }

    /* Numbering went on from 2, as if the refused batches never were: the
     * next rule draws what a third rule of a fresh engine draws. */
    const char *lat = "{\"effect\":{\"type\":\"latency\",\"latency\":{\"distribution\":"
                      "\"uniform\",\"min\":\"0s\",\"max\":\"1h\"}}}";
    mc_faults_clear(f);
    CU_ASSERT_EQUAL(add_batch(f,
                              "[{\"effect\":{\"type\":\"error\"},\"match\":{\"method\":\"PUT\"}},"
                              "{\"effect\":{\"type\":\"error\"},\"match\":{\"method\":\"PUT\"}}]",
                              NULL, NULL),
                    0);
    CU_ASSERT_EQUAL(add_batch(f, "[{\"effect\":{\"type\":\"reset\"},\"count\":-1}]", NULL, NULL),
                    -1);
    CU_ASSERT_EQUAL(add(f, lat), 0);
    mc_faults *fresh = mc_faults_new(3);
    CU_ASSERT_EQUAL(add(fresh, "{\"effect\":{\"type\":\"error\"},\"match\":{\"method\":\"PUT\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(fresh, "{\"effect\":{\"type\":\"error\"},\"match\":{\"method\":\"PUT\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(fresh, lat), 0);
    mc_fault_decision d1, d2;
    eval(f, "GET", "/", NULL, &d1);
    eval(fresh, "GET", "/", NULL, &d2);
    CU_ASSERT_STRING_EQUAL(d1.rules, "r3");
    CU_ASSERT_EQUAL(d1.latency_ns, d2.latency_ns);
    CU_ASSERT(d1.latency_ns > 0);

    /* An empty batch is fine. */
    created = NULL;
    CU_ASSERT_EQUAL(add_batch(f, "[]", &created, NULL), 0);
    CU_ASSERT(cJSON_IsArray(created) && cJSON_GetArraySize(created) == 0);
    cJSON_Delete(created);
    mc_faults_free(fresh);
    mc_faults_free(f);
}

/* Defaults are filled in and shown; the listing can be fed back. */
static void test_defaults_and_json(void)
{
    mc_faults *f = mc_faults_new(1);
    cJSON *j =
        cJSON_Parse("{\"id\":\"e\",\"match\":{\"method\":\"POST\",\"path\":\"/v1/instances\","
                    "\"op\":\"CreateInstance\",\"headers\":{\"Idempotency-Key\":\"*\","
                    "\"X-Debug\":null}},\"effect\":{\"type\":\"error\",\"status\":503},"
                    "\"probability\":0.5,\"count\":3,\"startAfter\":\"10s\","
                    "\"duration\":\"1m\"}");
    cJSON *created = NULL;
    char err[256];
    CU_ASSERT_EQUAL_FATAL(mc_faults_add(f, j, T0, &created, err, sizeof err, NULL), 0);
    cJSON_Delete(j);
    CU_ASSERT_PTR_NOT_NULL_FATAL(created);
    char *text = cJSON_PrintUnformatted(created);
    CU_ASSERT_STRING_EQUAL(
        text,
        "{\"id\":\"e\",\"match\":{\"method\":[\"POST\"],\"path\":\"/v1/instances\","
        "\"op\":[\"CreateInstance\"],\"headers\":{\"Idempotency-Key\":\"*\",\"X-Debug\":null}},"
        "\"effect\":{\"type\":\"error\",\"status\":503,\"code\":\"ServiceUnavailable\","
        "\"message\":\"injected by fault rule e\"},\"phase\":\"request\","
        "\"probability\":0.5,\"count\":3,\"startAfter\":\"10s\",\"duration\":\"1m\","
        "\"state\":\"scheduled\",\"fired\":0,\"addedAt\":\"2025-11-26T14:21:26.000Z\","
        "\"startsAt\":\"2025-11-26T14:21:36.000Z\",\"expiresAt\":\"2025-11-26T14:22:36.000Z\"}");
    free(text);

    /* The listing less its run-time fields is a valid rule again. */
    const char *runtime[] = {"state", "fired", "addedAt", "startsAt", "expiresAt"};
    for (size_t i = 0; i < 5; i++) cJSON_DeleteItemFromObject(created, runtime[i]);
    cJSON_ReplaceItemInObject(created, "id", cJSON_CreateString("e2"));
    CU_ASSERT_EQUAL(mc_faults_add(f, created, T0, NULL, err, sizeof err, NULL), 0);
    cJSON_Delete(created);

    static const struct {
        const char *effect;
        int status;
        const char *code;
        int retry_after_s;
        const char *type;
    } defaults[] = {
        {"{\"type\":\"error\"}", 500, "InternalError", 0, "error"},
        {"{\"type\":\"error\",\"status\":502}", 502, "BadGateway", 0, "error"},
        {"{\"type\":\"error\",\"status\":504}", 504, "GatewayTimeout", 0, "error"},
        {"{\"type\":\"error\",\"status\":507}", 507, "ServerError", 0, "error"},
        {"{\"type\":\"error\",\"status\":418}", 418, "ClientError", 0, "error"},
        {"{\"type\":\"error\",\"status\":409,\"code\":\"Busy\"}", 409, "Busy", 0, "error"},
        {"{\"type\":\"unauthorized\"}", 401, "Unauthorized", 0, "unauthorized"},
        {"{\"type\":\"forbidden\"}", 403, "Forbidden", 0, "forbidden"},
        {"{\"type\":\"rateLimit\"}", 429, "TooManyRequests", 1, "rateLimit"},
        {"{\"type\":\"rateLimit\",\"retryAfter\":\"1.5s\"}", 429, "TooManyRequests", 2,
         "rateLimit"},
        {"{\"type\":\"rateLimit\",\"retryAfter\":\"1m\"}", 429, "TooManyRequests", 60, "rateLimit"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        mc_faults_clear(f);
        char rule[256];
        snprintf(rule, sizeof rule, "{\"effect\":%s}", defaults[i].effect);
        CU_ASSERT_EQUAL_FATAL(add(f, rule), 0);
        mc_fault_decision d;
        eval(f, "GET", "/v1/instances", "ListInstances", &d);
        CU_ASSERT_EQUAL(d.action, MC_FX_ERROR);
        CU_ASSERT_EQUAL(d.status, defaults[i].status);
        CU_ASSERT_STRING_EQUAL(d.code, defaults[i].code);
        CU_ASSERT_STRING_EQUAL(d.message, "injected by fault rule r1");
        CU_ASSERT_EQUAL(d.retry_after_s, defaults[i].retry_after_s);
        CU_ASSERT_STRING_EQUAL(d.type, defaults[i].type);
        CU_ASSERT_STRING_EQUAL(d.rules, "r1");
        CU_ASSERT_EQUAL(d.latency_ns, 0);
    }
    mc_faults_clear(f);
    CU_ASSERT_EQUAL(add(f, "{\"effect\":{\"type\":\"forbidden\",\"code\":\"ReadOnlyToken\","
                           "\"message\":\"this token may only read\"}}"),
                    0);
    mc_fault_decision d;
    eval(f, "GET", "/", NULL, &d);
    CU_ASSERT_EQUAL(d.status, 403);
    CU_ASSERT_STRING_EQUAL(d.code, "ReadOnlyToken");
    CU_ASSERT_STRING_EQUAL(d.message, "this token may only read");
    mc_faults_free(f);
}

/* ---------------------------------------------------------------- matching */

static void test_match_method_path_op(void)
{
    mc_faults *f = mc_faults_new(1);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"m\",\"match\":{\"method\":[\"PATCH\",\"DELETE\"]},"
                           "\"effect\":{\"type\":\"reset\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"p\",\"match\":{\"path\":\"/v1/instances/*/actions/*\"},"
                           "\"effect\":{\"type\":\"hang\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"o\",\"match\":{\"op\":[\"GetOperation\",\"*Snapshot*\"]},"
                           "\"effect\":{\"type\":\"empty\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"deep\",\"match\":{\"method\":\"GET\",\"path\":\"/v2/**\"},"
                           "\"effect\":{\"type\":\"malformed\"}}"),
                    0);
    static const struct {
        const char *method, *path, *op;
        mc_fx action;
        const char *rules;
    } cases[] = {
        {"PATCH", "/v1/instances/i-1", "ResizeInstance", MC_FX_RESET, "m"},
        {"DELETE", "/v1/snapshots/s-1", "DeleteSnapshot", MC_FX_RESET, "m"},
        {"POST", "/v1/instances/i-1/actions/stop", "StopInstance", MC_FX_HANG, "p"},
        {"POST", "/v1/instances/i-1/actions", "StopInstance", MC_FX_NONE, ""},
        {"POST", "/v1/instances/i-1/actions/stop/x", NULL, MC_FX_NONE, ""},
        {"GET", "/v1/operations/op-1", "GetOperation", MC_FX_EMPTY, "o"},
        {"POST", "/v1/instances/i-1/snapshots", "CreateSnapshot", MC_FX_EMPTY, "o"},
        {"GET", "/v1/snapshots", "ListSnapshots", MC_FX_EMPTY, "o"},
        {"GET", "/v1/instances", "ListInstances", MC_FX_NONE, ""},
        {"GET", "/v1/instances", NULL, MC_FX_NONE, ""},
        {"GET", "/v2/a/b/c", NULL, MC_FX_MALFORMED, "deep"},
        {"HEAD", "/v2/a/b/c", NULL, MC_FX_NONE, ""},
        {"get", "/v2/a", NULL, MC_FX_NONE, ""}, /* methods are exact */
        {"PROPFIND", "/v2/a", NULL, MC_FX_NONE, ""},
        {NULL, "/v2/a", NULL, MC_FX_NONE, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mc_fault_decision d;
        eval(f, cases[i].method, cases[i].path, cases[i].op, &d);
        bool ok = d.action == cases[i].action && strcmp(d.rules, cases[i].rules) == 0;
        CU_ASSERT(ok);
        if (!ok)
            fprintf(stderr, "\n  %s %s %s: action %d rules %s\n", cases[i].method, cases[i].path,
                    cases[i].op, d.action, d.rules);
        if (cases[i].action == MC_FX_NONE) CU_ASSERT_PTR_NULL(d.type);
    }
    mc_faults_free(f);
}

static void test_match_headers(void)
{
    mc_faults *f = mc_faults_new(1);
    CU_ASSERT_EQUAL(add(f,
                        "{\"id\":\"idem\",\"match\":{\"headers\":{\"idempotency-key\":\"uid-*\"}},"
                        "\"effect\":{\"type\":\"error\",\"status\":409}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"noauth\",\"match\":{\"headers\":{\"Authorization\":null}},"
                           "\"effect\":{\"type\":\"unauthorized\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(f,
                        "{\"id\":\"tok\",\"match\":{\"headers\":{\"Authorization\":\"Bearer ro-?\","
                        "\"X-Trace\":\"*\"}},\"effect\":{\"type\":\"forbidden\"}}"),
                    0);
    mc_fault_decision d;
    hdrs h1 = {{"Authorization", "Idempotency-Key"}, {"Bearer t", "uid-1/attempt-2"}};
    eval_full(f, "POST", "/v1/instances", NULL, &h1, T0, &d);
    CU_ASSERT_STRING_EQUAL(d.rules, "idem"); /* '*' crosses '/' in header values */
    CU_ASSERT_EQUAL(d.status, 409);

    hdrs h2 = {{"Idempotency-Key"}, {"other"}};
    eval_full(f, "POST", "/v1/instances", NULL, &h2, T0, &d);
    CU_ASSERT_STRING_EQUAL(d.rules, "noauth");
    CU_ASSERT_EQUAL(d.status, 401);

    hdrs h3 = {{"Authorization", "X-Trace"}, {"Bearer ro-7", ""}};
    eval_full(f, "GET", "/v1/instances", NULL, &h3, T0, &d);
    CU_ASSERT_STRING_EQUAL(d.rules, "tok");
    hdrs h4 = {{"Authorization"}, {"Bearer ro-7"}}; /* X-Trace missing */
    eval_full(f, "GET", "/v1/instances", NULL, &h4, T0, &d);
    CU_ASSERT_STRING_EQUAL(d.rules, "");
    hdrs h5 = {{"Authorization", "X-Trace"}, {"Bearer ro-77", "x"}}; /* '?' is one char */
    eval_full(f, "GET", "/v1/instances", NULL, &h5, T0, &d);
    CU_ASSERT_STRING_EQUAL(d.rules, "");

    /* No header callback: every header is absent. */
    eval(f, "GET", "/", NULL, &d);
    CU_ASSERT_STRING_EQUAL(d.rules, "noauth");
    mc_faults_free(f);
}

/* ---------------------------------------------------------------- composition */

static void test_latency_stacks_first_terminal_wins(void)
{
    mc_faults *f = mc_faults_new(7);
    CU_ASSERT_EQUAL(
        add(f, "{\"id\":\"slow\",\"effect\":{\"type\":\"latency\",\"latency\":\"100ms\"}}"), 0);
    CU_ASSERT_EQUAL(add(f,
                        "{\"id\":\"slower\",\"match\":{\"method\":\"POST\"},"
                        "\"effect\":{\"type\":\"latency\",\"latency\":{\"distribution\":\"fixed\","
                        "\"value\":\"50ms\"}}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"once\",\"match\":{\"method\":\"POST\"},\"count\":1,"
                           "\"effect\":{\"type\":\"error\",\"status\":503}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"rst\",\"match\":{\"method\":\"POST\"},\"count\":5,"
                           "\"effect\":{\"type\":\"reset\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"late\",\"match\":{\"method\":\"POST\"},"
                           "\"effect\":{\"type\":\"latency\",\"latency\":\"1s\"}}"),
                    0);

    mc_fault_decision d;
    eval(f, "GET", "/v1/instances", NULL, &d);
    CU_ASSERT_EQUAL(d.latency_ns, 100000000);
    CU_ASSERT_EQUAL(d.action, MC_FX_NONE);
    CU_ASSERT_STRING_EQUAL(d.type, "latency");
    CU_ASSERT_STRING_EQUAL(d.rules, "slow");
    CU_ASSERT_EQUAL(d.status, 0);
    CU_ASSERT_EQUAL(d.retry_after_s, 0);

    /* Latency before the terminal rule adds up; the error ends the walk, so
     * the reset's count and the later latency are untouched. */
    eval(f, "POST", "/v1/instances", NULL, &d);
    CU_ASSERT_EQUAL(d.latency_ns, 150000000);
    CU_ASSERT_EQUAL(d.action, MC_FX_ERROR);
    CU_ASSERT_EQUAL(d.status, 503);
    CU_ASSERT_STRING_EQUAL(d.type, "error");
    CU_ASSERT_STRING_EQUAL(d.rules, "slow,slower,once");
    CU_ASSERT_EQUAL(fired(f, "rst", T0), 0);
    CU_ASSERT_EQUAL(fired(f, "late", T0), 0);

    /* "once" is spent: the reset is now the first terminal effect. */
    eval(f, "POST", "/v1/instances", NULL, &d);
    CU_ASSERT_EQUAL(d.action, MC_FX_RESET);
    CU_ASSERT_EQUAL(d.status, 0);
    CU_ASSERT_STRING_EQUAL(d.code, "");
    CU_ASSERT_STRING_EQUAL(d.type, "reset");
    CU_ASSERT_STRING_EQUAL(d.rules, "slow,slower,rst");
    CU_ASSERT_EQUAL(d.latency_ns, 150000000);
    CU_ASSERT_EQUAL(fired(f, "once", T0), 1);
    CU_ASSERT_EQUAL(fired(f, "rst", T0), 1);
    CU_ASSERT_EQUAL(fired(f, "slow", T0), 3);
    CU_ASSERT_EQUAL(fired(f, "late", T0), 0);
    CU_ASSERT_STRING_EQUAL(state(f, "once", T0), "exhausted");

    /* With the terminal rules gone, every latency adds up. */
    CU_ASSERT_EQUAL(mc_faults_delete(f, "rst"), 0);
    eval(f, "POST", "/v1/instances", NULL, &d);
    CU_ASSERT_EQUAL(d.latency_ns, 1150000000);
    CU_ASSERT_EQUAL(d.action, MC_FX_NONE);
    CU_ASSERT_STRING_EQUAL(d.type, "latency");
    CU_ASSERT_STRING_EQUAL(d.rules, "slow,slower,late");
    mc_faults_free(f);
}

static void test_nothing_fires(void)
{
    mc_faults *f = mc_faults_new(7);
    mc_fault_decision d;
    eval(f, "GET", "/v1/instances", NULL, &d);
    CU_ASSERT_EQUAL(d.latency_ns, 0);
    CU_ASSERT_EQUAL(d.action, MC_FX_NONE);
    CU_ASSERT_EQUAL(d.phase, MC_PHASE_REQUEST);
    CU_ASSERT_PTR_NULL(d.type);
    CU_ASSERT_STRING_EQUAL(d.rules, "");
    CU_ASSERT_STRING_EQUAL(d.code, "");
    CU_ASSERT_STRING_EQUAL(d.message, "");
    mc_faults_free(f);
}

static void test_phase(void)
{
    mc_faults *f = mc_faults_new(7);
    CU_ASSERT_EQUAL(add(f, "{\"match\":{\"op\":\"CreateInstance\"},\"phase\":\"response\","
                           "\"effect\":{\"type\":\"reset\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"phase\":\"request\",\"effect\":{\"type\":\"malformed\"}}"), 0);
    mc_fault_decision d;
    eval(f, "POST", "/v1/instances", "CreateInstance", &d);
    CU_ASSERT_EQUAL(d.action, MC_FX_RESET);
    CU_ASSERT_EQUAL(d.phase, MC_PHASE_RESPONSE);
    eval(f, "GET", "/v1/instances", "ListInstances", &d);
    CU_ASSERT_EQUAL(d.action, MC_FX_MALFORMED);
    CU_ASSERT_EQUAL(d.phase, MC_PHASE_REQUEST);
    CU_ASSERT_STRING_EQUAL(d.type, "malformed");
    mc_faults_free(f);
}

/* Long ids: the list is cut at an id boundary and says so. */
static void test_rules_list_cut(void)
{
    mc_faults *f = mc_faults_new(7);
    const char *rule = "{\"id\":\"%c%062d\",\"effect\":{\"type\":\"latency\",\"latency\":\"1ms\"}}";
    char buf[256];
    for (char c = 'a'; c <= 'c'; c++) {
        snprintf(buf, sizeof buf, rule, c, 0);
        CU_ASSERT_EQUAL(add(f, buf), 0);
    }
    mc_fault_decision d;
    eval(f, "GET", "/", NULL, &d);
    CU_ASSERT_EQUAL(d.latency_ns, 3000000);
    /* "a…,b…" (127) fills the 128 bytes; "c…" does not fit, and to say so
     * "b…" makes room for ",...". */
    CU_ASSERT_EQUAL(strlen(d.rules), 63 + 4);
    CU_ASSERT_EQUAL(strncmp(d.rules, "a000", 4), 0);
    CU_ASSERT_STRING_EQUAL(d.rules + 63, ",...");
    mc_faults_free(f);
}

/* ---------------------------------------------------------------- probability */

static void fire_pattern(uint64_t seed, bool *out, size_t n)
{
    mc_faults *f = mc_faults_new(seed);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"other\",\"probability\":0.5,\"match\":{\"method\":\"GET\"},"
                           "\"effect\":{\"type\":\"latency\",\"latency\":\"1ms\"}}"),
                    0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"q\",\"probability\":0.25,\"effect\":{\"type\":\"error\"}}"),
                    0);
    for (size_t i = 0; i < n; i++) {
        mc_fault_decision d;
        eval(f, i % 3 ? "POST" : "GET", "/v1/instances", NULL, &d);
        out[i] = d.action == MC_FX_ERROR;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += out[i];
    CU_ASSERT_EQUAL((size_t)fired(f, "q", T0), k);
    mc_faults_free(f);
}

static void test_probability(void)
{
    enum { N = 10000 };
    static bool a[N], b[N], c[N];
    fire_pattern(42, a, N);
    fire_pattern(42, b, N);
    fire_pattern(43, c, N);
    size_t hits = 0, same = 0, same_c = 0;
    for (size_t i = 0; i < N; i++) {
        hits += a[i];
        same += a[i] == b[i];
        same_c += a[i] == c[i];
    }
    double frac = (double)hits / N;
    CU_ASSERT(frac >= 0.23 && frac <= 0.27);
    CU_ASSERT_EQUAL(same, N); /* same seed: the very same requests */
    CU_ASSERT(same_c < N);    /* another seed: another pattern */
    if (frac < 0.23 || frac > 0.27) fprintf(stderr, "\n  p=0.25 fired %.4f\n", frac);
}

/* Probability with a count: count counts firings, not matches. */
static void test_probability_count(void)
{
    mc_faults *f = mc_faults_new(9);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"q\",\"probability\":0.1,\"count\":5,"
                           "\"effect\":{\"type\":\"empty\"}}"),
                    0);
    int n = 0, requests = 0;
    while (requests < 100000 && n < 5) {
        mc_fault_decision d;
        eval(f, "GET", "/", NULL, &d);
        n += d.action == MC_FX_EMPTY;
        requests++;
    }
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT(requests > 5); /* some draws were lost on the way */
    for (int i = 0; i < 1000; i++) {
        mc_fault_decision d;
        eval(f, "GET", "/", NULL, &d);
        CU_ASSERT_EQUAL(d.action, MC_FX_NONE);
    }
    CU_ASSERT_EQUAL(fired(f, "q", T0), 5);
    mc_faults_free(f);
}

/* Latency draws come from the rule's own seeded stream. */
static void test_latency_distribution_seeded(void)
{
    const char *rule =
        "{\"effect\":{\"type\":\"latency\",\"latency\":{\"distribution\":\"uniform\","
        "\"min\":\"10ms\",\"max\":\"20ms\"}}}";
    mc_faults *f1 = mc_faults_new(5), *f2 = mc_faults_new(5), *f3 = mc_faults_new(6);
    CU_ASSERT_EQUAL(add(f1, rule), 0);
    CU_ASSERT_EQUAL(add(f2, rule), 0);
    CU_ASSERT_EQUAL(add(f3, rule), 0);
    int differ = 0, distinct = 0;
    int64_t prev = -1;
    for (int i = 0; i < 200; i++) {
        mc_fault_decision d1, d2, d3;
        eval(f1, "GET", "/", NULL, &d1);
        eval(f2, "GET", "/", NULL, &d2);
        eval(f3, "GET", "/", NULL, &d3);
        CU_ASSERT_EQUAL(d1.latency_ns, d2.latency_ns);
        CU_ASSERT(d1.latency_ns >= 10000000 && d1.latency_ns <= 20000000);
        differ += d1.latency_ns != d3.latency_ns;
        distinct += d1.latency_ns != prev;
        prev = d1.latency_ns;
    }
    CU_ASSERT(differ > 150);
    CU_ASSERT(distinct > 150);

    /* After a clear, numbering restarts: the same draws again. */
    mc_fault_decision first;
    mc_faults_clear(f1);
    CU_ASSERT_EQUAL(add(f1, rule), 0);
    eval(f1, "GET", "/", NULL, &first);
    mc_faults *fresh = mc_faults_new(5);
    CU_ASSERT_EQUAL(add(fresh, rule), 0);
    mc_fault_decision d;
    eval(fresh, "GET", "/", NULL, &d);
    CU_ASSERT_EQUAL(first.latency_ns, d.latency_ns);
    mc_faults_free(fresh);
    mc_faults_free(f1);
    mc_faults_free(f2);
    mc_faults_free(f3);
}

/* ---------------------------------------------------------------- schedule */

static void test_count_exhausts(void)
{
    mc_faults *f = mc_faults_new(1);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"c\",\"count\":3,\"match\":{\"method\":\"POST\"},"
                           "\"effect\":{\"type\":\"error\",\"status\":500}}"),
                    0);
    mc_fault_decision d;
    for (int i = 0; i < 10; i++) { /* non-matching requests use nothing up */
        eval(f, "GET", "/", NULL, &d);
        CU_ASSERT_EQUAL(d.action, MC_FX_NONE);
    }
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(state(f, "c", T0), "active");
        eval(f, "POST", "/", NULL, &d);
        CU_ASSERT_EQUAL(d.action, MC_FX_ERROR);
    }
    CU_ASSERT_STRING_EQUAL(state(f, "c", T0), "exhausted");
    eval(f, "POST", "/", NULL, &d);
    CU_ASSERT_EQUAL(d.action, MC_FX_NONE);
    CU_ASSERT_EQUAL(fired(f, "c", T0), 3);
    mc_faults_free(f);
}

static void test_windows(void)
{
    mc_faults *f = mc_faults_new(1);
    CU_ASSERT_EQUAL(add_at(f,
                           "{\"id\":\"w\",\"startAfter\":\"10s\",\"duration\":\"5s\","
                           "\"effect\":{\"type\":\"hang\"}}",
                           T0),
                    0);
    CU_ASSERT_EQUAL(add_at(f,
                           "{\"id\":\"d\",\"duration\":\"250ms\",\"effect\":{\"type\":"
                           "\"latency\",\"latency\":\"1ms\"}}",
                           T0),
                    0);
    static const struct {
        int64_t at;
        mc_fx action;
        const char *w, *d;
    } steps[] = {
        {0, MC_FX_NONE, "scheduled", "active"},    {249, MC_FX_NONE, "scheduled", "active"},
        {250, MC_FX_NONE, "scheduled", "expired"}, {9999, MC_FX_NONE, "scheduled", "expired"},
        {10000, MC_FX_HANG, "active", "expired"},  {14999, MC_FX_HANG, "active", "expired"},
        {15000, MC_FX_NONE, "expired", "expired"}, {100000, MC_FX_NONE, "expired", "expired"},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int64_t now = T0 + steps[i].at;
        mc_fault_decision d;
        eval_full(f, "GET", "/", NULL, NULL, now, &d);
        CU_ASSERT_EQUAL(d.action, steps[i].action);
        CU_ASSERT_EQUAL(d.latency_ns, steps[i].at < 250 ? 1000000 : 0);
        CU_ASSERT_STRING_EQUAL(state(f, "w", now), steps[i].w);
        CU_ASSERT_STRING_EQUAL(state(f, "d", now), steps[i].d);
    }
    CU_ASSERT_EQUAL(fired(f, "w", T0), 2);
    CU_ASSERT_EQUAL(fired(f, "d", T0), 2);

    /* Count and window together: exhausted wins over expired. */
    CU_ASSERT_EQUAL(add_at(f,
                           "{\"id\":\"cw\",\"count\":1,\"duration\":\"1s\","
                           "\"effect\":{\"type\":\"empty\"}}",
                           T0 + 200000),
                    0);
    mc_fault_decision d;
    eval_full(f, "GET", "/", NULL, NULL, T0 + 200000, &d);
    CU_ASSERT_EQUAL(d.action, MC_FX_EMPTY);
    CU_ASSERT_STRING_EQUAL(state(f, "cw", T0 + 300000), "exhausted");
    mc_faults_free(f);
}

/* ---------------------------------------------------------------- management */

static void test_list_get_delete_clear(void)
{
    mc_faults *f = mc_faults_new(1);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"one\",\"effect\":{\"type\":\"reset\"}}"), 0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"two\",\"effect\":{\"type\":\"hang\"}}"), 0);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"three\",\"effect\":{\"type\":\"empty\"}}"), 0);
    cJSON *l = mc_faults_list(f, T0);
    cJSON *items = cJSON_GetObjectItem(l, "items");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items), 3);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "id")->valuestring,
                           "one");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 2), "id")->valuestring,
                           "three");
    cJSON_Delete(l);

    cJSON *g = mc_faults_get(f, "two", T0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(g, "effect"), "type")->valuestring, "hang");
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(g, "expiresAt"));
    CU_ASSERT_PTR_NULL(cJSON_GetObjectItem(g, "count"));
    cJSON_Delete(g);
    CU_ASSERT_PTR_NULL(mc_faults_get(f, "four", T0));

    /* Deleting "one" makes "two" the first terminal rule. */
    CU_ASSERT_EQUAL(mc_faults_delete(f, "one"), 0);
    CU_ASSERT_EQUAL(mc_faults_delete(f, "one"), -1);
    CU_ASSERT_EQUAL(mc_faults_count(f), 2);
    mc_fault_decision d;
    eval(f, "GET", "/", NULL, &d);
    CU_ASSERT_EQUAL(d.action, MC_FX_HANG);

    /* The id is free again. */
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"one\",\"effect\":{\"type\":\"reset\"}}"), 0);
    eval(f, "GET", "/", NULL, &d);
    CU_ASSERT_EQUAL(d.action, MC_FX_HANG); /* added at the end */

    mc_faults_clear(f);
    CU_ASSERT_EQUAL(mc_faults_count(f), 0);
    l = mc_faults_list(f, T0);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItem(l, "items")), 0);
    cJSON_Delete(l);
    eval(f, "GET", "/", NULL, &d);
    CU_ASSERT_EQUAL(d.action, MC_FX_NONE);
    CU_ASSERT_EQUAL(add(f, "{\"effect\":{\"type\":\"reset\"}}"), 0);
    CU_ASSERT_STRING_EQUAL(state(f, "r1", T0), "active"); /* numbering restarted */
    mc_faults_free(f);
}

/* 100 rules that do not match a request leave it alone (speed is measured
 * by the benchmarks; this checks the walk is right). */
static void test_many_rules(void)
{
    mc_faults *f = mc_faults_new(1);
    char rule[256];
    for (int i = 0; i < 100; i++) {
        switch (i % 4) {
        case 0:
            snprintf(rule, sizeof rule,
                     "{\"match\":{\"path\":\"/v1/snapshots/s-%d\"},"
                     "\"effect\":{\"type\":\"error\"}}",
                     i);
            break;
        case 1:
            snprintf(rule, sizeof rule,
                     "{\"match\":{\"method\":\"DELETE\"},"
                     "\"effect\":{\"type\":\"reset\"}}");
            break;
        case 2:
            snprintf(rule, sizeof rule,
                     "{\"match\":{\"op\":\"Op%d\"},"
                     "\"effect\":{\"type\":\"hang\"}}",
                     i);
            break;
        default:
            snprintf(rule, sizeof rule,
                     "{\"match\":{\"headers\":{\"X-Rule\":\"%d\"}},"
                     "\"effect\":{\"type\":\"empty\"}}",
                     i);
            break;
        }
        CU_ASSERT_EQUAL_FATAL(add(f, rule), 0);
    }
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"last\",\"match\":{\"path\":\"/v1/instances/*\"},"
                           "\"effect\":{\"type\":\"error\",\"status\":502}}"),
                    0);
    hdrs h = {{"X-Rule"}, {"1000"}};
    for (int i = 0; i < 1000; i++) {
        mc_fault_decision d;
        eval_full(f, "GET", i % 2 ? "/v1/instances/i-1" : "/v1/instances", "GetInstance", &h, T0,
                  &d);
        CU_ASSERT_EQUAL(d.action, i % 2 ? MC_FX_ERROR : MC_FX_NONE);
        CU_ASSERT_STRING_EQUAL(d.rules, i % 2 ? "last" : "");
    }
    CU_ASSERT_EQUAL(fired(f, "last", T0), 500);
    cJSON *l = mc_faults_list(f, T0);
    cJSON *r;
    int total = 0;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(l, "items")) total +=
        cJSON_GetObjectItem(r, "fired")->valueint;
    CU_ASSERT_EQUAL(total, 500);
    cJSON_Delete(l);
    mc_faults_free(f);
}

/* Four threads share a count: exactly count requests fail. */
typedef struct worker {
    mc_faults *f;
    int failed;
} worker;

static void *eval_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 5000; i++) {
        mc_fault_request req = {"GET", "/v1/instances", NULL, NULL, NULL};
        mc_fault_decision d;
        mc_faults_evaluate(w->f, &req, T0, &d);
        w->failed += d.action == MC_FX_ERROR;
    }
    return NULL;
}

static void test_threads_share_count(void)
{
    mc_faults *f = mc_faults_new(1);
    CU_ASSERT_EQUAL(add(f, "{\"id\":\"c\",\"count\":7777,\"effect\":{\"type\":\"error\"}}"), 0);
    worker w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){f, 0};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, eval_worker, &w[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += w[i].failed;
    }
    CU_ASSERT_EQUAL(total, 7777);
    CU_ASSERT_EQUAL(fired(f, "c", T0), 7777);
    mc_faults_free(f);
}

static CU_TestInfo validation_tests[] = {
    {"invalid rules name the field", test_invalid_rules},
    {"*bad points at the node", test_bad_node},
    {"ids: auto, user, conflicts", test_ids},
    {"defaults filled in and listed", test_defaults_and_json},
    {"batch: all or nothing", test_batch},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo match_tests[] = {
    {"method, path glob, op", test_match_method_path_op},
    {"headers: glob, present, absent", test_match_headers},
    {"100 non-matching rules", test_many_rules},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo compose_tests[] = {
    {"latency stacks, first terminal wins", test_latency_stacks_first_terminal_wins},
    {"nothing fires", test_nothing_fires},
    {"phase is propagated", test_phase},
    {"fired-rule list is cut cleanly", test_rules_list_cut},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo random_tests[] = {
    {"p=0.25 over 10000 requests, reproducible", test_probability},
    {"probability with count", test_probability_count},
    {"latency draws seeded per rule", test_latency_distribution_seeded},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo schedule_tests[] = {
    {"count exhausts", test_count_exhausts},
    {"startAfter and duration windows", test_windows},
    {"list, get, delete, clear", test_list_get_delete_clear},
    {"threads share a count", test_threads_share_count},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"faults/validation", NULL, NULL, NULL, NULL, validation_tests},
    {"faults/match", NULL, NULL, NULL, NULL, match_tests},
    {"faults/compose", NULL, NULL, NULL, NULL, compose_tests},
    {"faults/random", NULL, NULL, NULL, NULL, random_tests},
    {"faults/schedule", NULL, NULL, NULL, NULL, schedule_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
