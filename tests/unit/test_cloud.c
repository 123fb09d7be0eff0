/* test_cloud.c — the cloud API client: reply decoding and error
 * classification as tables fed to the pure functions, then the transport
 * against a loopback lib/httpd server (real sockets): headers and bodies
 * sent, pagination, Retry-After, timeouts, malformed replies, a token
 * changed at run time, connection reuse, the silent re-send policy, metrics
 * and concurrent use. */
#include "../testutil.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/cloud.h"
#include "csl/httpd.h"
#include "csl/log.h"
#include "csl/metrics.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char full_instance[] =
    "{\"id\":\"i-000000000001\",\"name\":\"web-1\",\"state\":\"running\",\"cpu\":2,"
    "\"memoryMiB\":4096,\"diskGiB\":40,\"image\":\"debian-12\",\"zone\":\"hk-1a\","
    "\"networkType\":\"cn2-gia\",\"ipCount\":2,\"ipAddresses\":[\"10.0.0.1\",\"10.0.0.2\"],"
    "\"tags\":{\"uid\":\"u-1\",\"owner\":\"ns/web\"},\"createdAt\":\"2026-11-26T14:21:26.123Z\","
    "\"updatedAt\":\"2026-11-26T14:21:27.000Z\",\"futureField\":{\"x\":1}}";

static const char full_snapshot[] =
    "{\"id\":\"snap-000000000001\",\"instanceId\":\"i-000000000001\",\"name\":\"nightly\","
    "\"state\":\"available\",\"sizeGiB\":40,\"tags\":{\"k\":\"v\"},"
    "\"createdAt\":\"2026-11-26T14:21:26Z\"}";

/* ================================================================ decoding */

static void test_instance_full(void)
{
    cJSON *j = cJSON_Parse(full_instance);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    csl_cloud_instance in;
    char why[256] = "";
    CU_ASSERT_EQUAL_FATAL(csl_cloud_instance_from_json(j, &in, why, sizeof why), 0);
    CU_ASSERT_STRING_EQUAL(in.id, "i-000000000001");
    CU_ASSERT_STRING_EQUAL(in.name, "web-1");
    CU_ASSERT_EQUAL(in.state, CSL_INSTANCE_RUNNING);
    CU_ASSERT_STRING_EQUAL(in.state_raw, "running");
    CU_ASSERT_EQUAL(in.cpu, 2);
    CU_ASSERT_EQUAL(in.memory_mib, 4096);
    CU_ASSERT_EQUAL(in.disk_gib, 40);
    CU_ASSERT_STRING_EQUAL(in.image, "debian-12");
    CU_ASSERT_STRING_EQUAL(in.zone, "hk-1a");
    CU_ASSERT_STRING_EQUAL(in.network_type, "cn2-gia");
    CU_ASSERT_EQUAL(in.ip_count, 2);
    CU_ASSERT_EQUAL_FATAL(in.n_ip_addresses, 2);
    CU_ASSERT_STRING_EQUAL(in.ip_addresses[1], "10.0.0.2");
    CU_ASSERT_EQUAL(in.n_tags, 2);
    CU_ASSERT_STRING_EQUAL(csl_cloud_instance_tag(&in, "uid"), "u-1");
    CU_ASSERT_STRING_EQUAL(csl_cloud_instance_tag(&in, "owner"), "ns/web");
    CU_ASSERT_PTR_NULL(csl_cloud_instance_tag(&in, "nope"));
    CU_ASSERT_EQUAL(in.created_ms, INT64_C(1795702886123));
    CU_ASSERT_EQUAL(in.updated_ms, INT64_C(1795702887000));
    csl_cloud_instance_free(&in);
    CU_ASSERT_PTR_NULL(in.id);
    csl_cloud_instance_free(&in); /* a zeroed struct is fine */
    cJSON_Delete(j);
}

/* Only the required fields: the optional ones take their defaults. */
static void test_instance_minimal_and_states(void)
{
    static const struct {
        const char *state;
        csl_instance_state want;
    } states[] = {
        {"pending", CSL_INSTANCE_PENDING},     {"running", CSL_INSTANCE_RUNNING},
        {"resizing", CSL_INSTANCE_RESIZING},   {"stopping", CSL_INSTANCE_STOPPING},
        {"stopped", CSL_INSTANCE_STOPPED},     {"starting", CSL_INSTANCE_STARTING},
        {"rebooting", CSL_INSTANCE_REBOOTING}, {"deleting", CSL_INSTANCE_DELETING},
        {"crashed", CSL_INSTANCE_CRASHED},     {"deleted", CSL_INSTANCE_DELETED},
        {"hibernating", CSL_INSTANCE_UNKNOWN}, {"Running", CSL_INSTANCE_UNKNOWN},
    };
    for (size_t k = 0; k < sizeof states / sizeof states[0]; k++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"id\":\"i-1\",\"name\":\"\",\"state\":\"%s\",\"cpu\":1,\"memoryMiB\":256,"
                 "\"diskGiB\":10,\"image\":\"x\",\"zone\":\"z\"}",
                 states[k].state);
        cJSON *j = cJSON_Parse(text);
        csl_cloud_instance in;
        char why[256] = "";
        CU_ASSERT_EQUAL_FATAL(csl_cloud_instance_from_json(j, &in, why, sizeof why), 0);
        CU_ASSERT_EQUAL(in.state, states[k].want);
        CU_ASSERT_STRING_EQUAL(in.state_raw, states[k].state);
        CU_ASSERT_STRING_EQUAL(in.network_type, "standard");
        CU_ASSERT_EQUAL(in.ip_count, 0);
        CU_ASSERT_EQUAL(in.n_ip_addresses, 0);
        CU_ASSERT_EQUAL(in.n_tags, 0);
        CU_ASSERT_EQUAL(in.created_ms, 0);
        csl_cloud_instance_free(&in);
        cJSON_Delete(j);
    }
    CU_ASSERT_STRING_EQUAL(csl_instance_state_name(CSL_INSTANCE_RESIZING), "resizing");
    CU_ASSERT_STRING_EQUAL(csl_instance_state_name((csl_instance_state)99), "unknown");
}

/* Each required field removed, each field given a wrong type or value: an
 * error naming the field, never a crash, and *out zeroed. */
static void test_instance_bad(void)
{
    static const char *const required[] = {"id",        "name",    "state", "cpu",
                                           "memoryMiB", "diskGiB", "image", "zone"};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++) {
        cJSON *j = cJSON_Parse(full_instance);
        cJSON_DeleteItemFromObjectCaseSensitive(j, required[k]);
        csl_cloud_instance in;
        char why[256] = "";
        CU_ASSERT_EQUAL(csl_cloud_instance_from_json(j, &in, why, sizeof why), -1);
        CU_ASSERT(strncmp(why, required[k], strlen(required[k])) == 0 && strstr(why, "missing"));
        CU_ASSERT_PTR_NULL(in.id);
        CU_ASSERT_PTR_NULL(in.name);
        cJSON_Delete(j);
    }
    static const struct {
        const char *field;
        const char *json; /* the bad value */
        const char *says;
    } bad[] = {
        {"id", "\"\"", "id: empty"},
        {"id", "7", "id: expected a string, got a number"},
        {"state", "null", "state: expected a string, got null"},
        {"cpu", "\"two\"", "cpu: expected an integer, got a string"},
        {"cpu", "2.5", "cpu: expected an integer in"},
        {"cpu", "-1", "cpu: expected an integer in"},
        {"cpu", "1e300", "cpu: expected an integer in"},
        {"memoryMiB", "true", "memoryMiB: expected an integer, got a boolean"},
        {"diskGiB", "[40]", "diskGiB: expected an integer, got an array"},
        {"zone", "{}", "zone: expected a string, got an object"},
        {"networkType", "1", "networkType: expected a string"},
        {"ipCount", "\"1\"", "ipCount: expected an integer"},
        {"ipAddresses", "\"10.0.0.1\"", "ipAddresses: expected an array, got a string"},
        {"ipAddresses", "[\"10.0.0.1\",5]", "ipAddresses[1]: expected a string, got a number"},
        {"tags", "[]", "tags: expected an object, got an array"},
        {"tags", "{\"a\":\"b\",\"n\":3}", "tags.n: expected a string, got a number"},
        {"createdAt", "12345", "createdAt: expected an RFC 3339 time, got a number"},
        {"updatedAt", "\"yesterday\"", "updatedAt: not an RFC 3339 time"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cJSON *j = cJSON_Parse(full_instance);
        cJSON *v = cJSON_Parse(bad[k].json);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        cJSON_ReplaceItemInObjectCaseSensitive(j, bad[k].field, v);
        csl_cloud_instance in;
        char why[256] = "";
        int rc = csl_cloud_instance_from_json(j, &in, why, sizeof why);
        CU_ASSERT_EQUAL(rc, -1);
        if (!strstr(why, bad[k].says)) {
            fprintf(stderr, "  %s=%s: got \"%s\", want \"%s\"\n", bad[k].field, bad[k].json, why,
                    bad[k].says);
            CU_FAIL("message does not name the problem");
        }
        CU_ASSERT_PTR_NULL(in.id);
        CU_ASSERT_PTR_NULL(in.tags);
        if (rc == 0) csl_cloud_instance_free(&in);
        cJSON_Delete(j);
    }
    /* Not an object at all. */
    const char *const nots[] = {"[]", "\"i-1\"", "null", "42"};
    for (size_t k = 0; k < 4; k++) {
        cJSON *j = cJSON_Parse(nots[k]);
        csl_cloud_instance in;
        char why[256] = "";
        CU_ASSERT_EQUAL(csl_cloud_instance_from_json(j, &in, why, sizeof why), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, "expected an instance object"));
        cJSON_Delete(j);
    }
    csl_cloud_instance in;
    CU_ASSERT_EQUAL(csl_cloud_instance_from_json(NULL, &in, NULL, 0), -1);
}

static void test_snapshot_decode(void)
{
    cJSON *j = cJSON_Parse(full_snapshot);
    csl_cloud_snapshot s;
    char why[256] = "";
    CU_ASSERT_EQUAL_FATAL(csl_cloud_snapshot_from_json(j, &s, why, sizeof why), 0);
    CU_ASSERT_STRING_EQUAL(s.id, "snap-000000000001");
    CU_ASSERT_STRING_EQUAL(s.instance_id, "i-000000000001");
    CU_ASSERT_STRING_EQUAL(s.name, "nightly");
    CU_ASSERT_EQUAL(s.state, CSL_SNAPSHOT_AVAILABLE);
    CU_ASSERT_EQUAL(s.size_gib, 40);
    CU_ASSERT_EQUAL(s.n_tags, 1);
    CU_ASSERT_EQUAL(s.created_ms, INT64_C(1795702886000));
    csl_cloud_snapshot_free(&s);

    cJSON_ReplaceItemInObjectCaseSensitive(j, "state", cJSON_CreateString("creating"));
    cJSON_DeleteItemFromObjectCaseSensitive(j, "name");
    CU_ASSERT_EQUAL_FATAL(csl_cloud_snapshot_from_json(j, &s, why, sizeof why), 0);
    CU_ASSERT_EQUAL(s.state, CSL_SNAPSHOT_CREATING);
    CU_ASSERT_STRING_EQUAL(s.name, s.id); /* unnamed: the cloud's default */
    csl_cloud_snapshot_free(&s);

    cJSON_DeleteItemFromObjectCaseSensitive(j, "instanceId");
    CU_ASSERT_EQUAL(csl_cloud_snapshot_from_json(j, &s, why, sizeof why), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "instanceId: missing"));
    cJSON_Delete(j);
}

static void test_pages(void)
{
    csl_cloud_instance_list l = {0};
    char *next = NULL;
    char why[320] = "";
    char page[2048];
    snprintf(page, sizeof page, "{\"items\":[%s,%s],\"nextPageToken\":\"p2\"}", full_instance,
             full_instance);
    CU_ASSERT_EQUAL_FATAL(
        csl_cloud_instance_page_parse(page, strlen(page), &l, &next, why, sizeof why), 0);
    CU_ASSERT_EQUAL(l.n, 2);
    CU_ASSERT_STRING_EQUAL(next, "p2");
    free(next);
    /* The last page: no token, items appended. */
    snprintf(page, sizeof page, "{\"items\":[%s]}", full_instance);
    CU_ASSERT_EQUAL(csl_cloud_instance_page_parse(page, strlen(page), &l, &next, why, sizeof why),
                    0);
    CU_ASSERT_EQUAL(l.n, 3);
    CU_ASSERT_PTR_NULL(next);
    /* An empty page, and an empty token, also end. */
    const char *empty = "{\"items\":[],\"nextPageToken\":\"\"}";
    CU_ASSERT_EQUAL(csl_cloud_instance_page_parse(empty, strlen(empty), &l, &next, why, sizeof why),
                    0);
    CU_ASSERT_EQUAL(l.n, 3);
    CU_ASSERT_PTR_NULL(next);

    /* Bad pages leave the list as it was. */
    static const struct {
        const char *body;
        const char *says;
    } bad[] = {
        {"", "malformed JSON (0 bytes)"},
        {"{\"items\":[{\"id\":\"i-0f3a9c2e\",\"state\":\"runn", "malformed JSON"},
        {"[]", "expected a list object, got an array"},
        {"{}", "items: expected an array, got nothing"},
        {"{\"items\":{}}", "items: expected an array, got an object"},
        {"{\"items\":[],\"nextPageToken\":5}", "nextPageToken: expected a string"},
        {"{\"items\":[{\"id\":\"i-1\"}]}", "items[0]: name: missing"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        next = (char *)"untouched";
        CU_ASSERT_EQUAL(csl_cloud_instance_page_parse(bad[k].body, strlen(bad[k].body), &l, &next,
                                                      why, sizeof why),
                        -1);
        CU_ASSERT_PTR_NULL(next);
        CU_ASSERT_EQUAL(l.n, 3);
        if (!strstr(why, bad[k].says)) {
            fprintf(stderr, "  page %s: got \"%s\"\n", bad[k].body, why);
            CU_FAIL("page error does not say what is wrong");
        }
    }
    /* The second item bad: the first one decoded is freed again. */
    snprintf(page, sizeof page, "{\"items\":[%s,{\"id\":3}]}", full_instance);
    CU_ASSERT_EQUAL(csl_cloud_instance_page_parse(page, strlen(page), &l, &next, why, sizeof why),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "items[1]: id: expected a string"));
    CU_ASSERT_EQUAL(l.n, 3);
    csl_cloud_instance_list_free(&l);
    CU_ASSERT_EQUAL(l.n, 0);

    csl_cloud_snapshot_list sl = {0};
    snprintf(page, sizeof page, "{\"items\":[%s]}", full_snapshot);
    CU_ASSERT_EQUAL(csl_cloud_snapshot_page_parse(page, strlen(page), &sl, &next, why, sizeof why),
                    0);
    CU_ASSERT_EQUAL(sl.n, 1);
    CU_ASSERT_PTR_NULL(next);
    csl_cloud_snapshot_list_free(&sl);
}

static void test_spec_json(void)
{
    csl_cloud_kv tags[] = {{"uid", "u-1"}, {"owner", "ns/web"}};
    csl_cloud_instance_spec spec = {.name = "web-1",
                                    .cpu = 2,
                                    .memory_mib = 4096,
                                    .disk_gib = 40,
                                    .image = "debian-12",
                                    .zone = "hk-1a",
                                    .network_type = "bgp",
                                    .ip_count = 3,
                                    .tags = tags,
                                    .n_tags = 2};
    char why[128] = "";
    char *s = csl_cloud_instance_spec_json(&spec, why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "{\"name\":\"web-1\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
                              "\"image\":\"debian-12\",\"zone\":\"hk-1a\",\"networkType\":\"bgp\","
                              "\"ipCount\":3,\"tags\":{\"uid\":\"u-1\",\"owner\":\"ns/web\"}}");
    free(s);
    /* Optional fields left out are omitted, not sent as defaults. */
    spec.network_type = NULL;
    spec.ip_count = 0;
    spec.n_tags = 0;
    s = csl_cloud_instance_spec_json(&spec, why, sizeof why);
    CU_ASSERT_STRING_EQUAL(s, "{\"name\":\"web-1\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
                              "\"image\":\"debian-12\",\"zone\":\"hk-1a\"}");
    free(s);
    spec.zone = NULL;
    CU_ASSERT_PTR_NULL(csl_cloud_instance_spec_json(&spec, why, sizeof why));
    CU_ASSERT_STRING_EQUAL(why, "spec.zone is required");
    spec.zone = "hk-1a";
    csl_cloud_kv bad[] = {{"", "x"}};
    spec.tags = bad;
    spec.n_tags = 1;
    CU_ASSERT_PTR_NULL(csl_cloud_instance_spec_json(&spec, why, sizeof why));
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "tags[0]: the key is empty"));
    CU_ASSERT_PTR_NULL(csl_cloud_instance_spec_json(NULL, why, sizeof why));
}

/* ================================================================ classification */

static void test_classify_replies(void)
{
    static const struct {
        int status;
        const char *body;
        const char *retry_after;
        csl_cloud_code code;
        const char *cloud_code;
        const char *message; /* substring */
        int retry_after_s;
    } t[] = {
        {200, "{}", NULL, CSL_CLOUD_OK, "", "", 0},
        {202, "{}", NULL, CSL_CLOUD_OK, "", "", 0},
        {400, "{\"error\":{\"code\":\"InvalidZone\",\"message\":\"unknown zone \\\"mars\\\"\"}}",
         NULL, CSL_CLOUD_INVALID, "InvalidZone", "unknown zone \"mars\"", 0},
        {400, "{\"error\":{\"code\":\"InvalidImage\",\"message\":\"unknown image\"}}", NULL,
         CSL_CLOUD_INVALID, "InvalidImage", "unknown image", 0},
        {400, "{\"error\":{\"code\":\"DiskShrinkNotAllowed\",\"message\":\"disks only grow\"}}",
         NULL, CSL_CLOUD_INVALID, "DiskShrinkNotAllowed", "disks only grow", 0},
        {422, "{\"error\":{\"code\":\"Unprocessable\",\"message\":\"m\"}}", NULL, CSL_CLOUD_INVALID,
         "Unprocessable", "m", 0},
        {401, "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"no token\"}}", NULL,
         CSL_CLOUD_AUTH, "Unauthorized", "no token", 0},
        {403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"read-only\"}}", NULL,
         CSL_CLOUD_AUTH, "Forbidden", "read-only", 0},
        {404, "{\"error\":{\"code\":\"NotFound\",\"message\":\"instance \\\"i-1\\\" not found\"}}",
         NULL, CSL_CLOUD_NOT_FOUND, "NotFound", "not found", 0},
        /* A 404 that is not the cloud talking must not read as "gone". */
        {404, "<html>no such page</html>", NULL, CSL_CLOUD_PERMANENT, "", "endpoint URL", 0},
        {404, "", NULL, CSL_CLOUD_PERMANENT, "", "endpoint URL", 0},
        {405, "{\"error\":{\"code\":\"MethodNotAllowed\",\"message\":\"m\"}}", NULL,
         CSL_CLOUD_PERMANENT, "MethodNotAllowed", "m", 0},
        {408, "", NULL, CSL_CLOUD_RETRYABLE, "", "HTTP 408", 0},
        {409, "{\"error\":{\"code\":\"IdempotencyMismatch\",\"message\":\"other body\"}}", NULL,
         CSL_CLOUD_CONFLICT, "IdempotencyMismatch", "other body", 0},
        {409, "{\"error\":{\"code\":\"InvalidState\",\"message\":\"it is pending\"}}", NULL,
         CSL_CLOUD_CONFLICT, "InvalidState", "it is pending", 0},
        {409, "{\"error\":{\"code\":\"InsufficientCapacity\",\"message\":\"hk-1a is full\"}}", NULL,
         CSL_CLOUD_CAPACITY, "InsufficientCapacity", "hk-1a is full", 0},
        {413, "{\"error\":{\"code\":\"PayloadTooLarge\",\"message\":\"m\"}}", NULL,
         CSL_CLOUD_PERMANENT, "PayloadTooLarge", "m", 0},
        {429, "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"slow down\"}}", "5",
         CSL_CLOUD_THROTTLED, "TooManyRequests", "slow down", 5},
        {429, "", NULL, CSL_CLOUD_THROTTLED, "", "HTTP 429", 0},
        {429, "", "soon", CSL_CLOUD_THROTTLED, "", "HTTP 429", 0},
        {500, "{\"error\":{\"code\":\"InternalError\",\"message\":\"bug\"}}", NULL,
         CSL_CLOUD_RETRYABLE, "InternalError", "bug", 0},
        {502, "bad gateway\n", NULL, CSL_CLOUD_RETRYABLE, "", "bad gateway", 0},
        {503, "{\"error\":{\"code\":\"ServiceUnavailable\",\"message\":\"outage\"}}", "7",
         CSL_CLOUD_RETRYABLE, "ServiceUnavailable", "outage", 7},
        {504, "{\"error\":{\"code\":\"GatewayTimeout\"}}", NULL, CSL_CLOUD_RETRYABLE,
         "GatewayTimeout", "HTTP 504", 0},
        {503, "{\"error\":{\"code\":\"InsufficientCapacity\",\"message\":\"m\"}}", NULL,
         CSL_CLOUD_CAPACITY, "InsufficientCapacity", "m", 0},
        {302, "", NULL, CSL_CLOUD_PERMANENT, "", "HTTP 302", 0},
        {418, "{\"error\":{\"code\":\"ClientError\",\"message\":\"teapot\"}}", NULL,
         CSL_CLOUD_PERMANENT, "ClientError", "teapot", 0},
        /* An envelope without a code is not the cloud's error. */
        {400, "{\"error\":{\"message\":\"half\"}}", NULL, CSL_CLOUD_INVALID, "", "half", 0},
        {400, "{\"error\":\"x\"", NULL, CSL_CLOUD_INVALID, "", "{\"error\":\"x\"", 0},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        csl_cloud_error e;
        memset(&e, 0x5a, sizeof e);                 /* everything must be overwritten … */
        snprintf(e.op, sizeof e.op, "GetInstance"); /* … but the op */
        csl_cloud_classify_reply(t[k].status, t[k].body, strlen(t[k].body), t[k].retry_after, &e);
        bool ok =
            e.code == t[k].code && e.status == t[k].status &&
            strcmp(e.cloud_code, t[k].cloud_code) == 0 && strstr(e.message, t[k].message) != NULL &&
            e.retry_after_s == t[k].retry_after_s && strcmp(e.op, "GetInstance") == 0 &&
            e.curl_error[0] == '\0' && e.operation[0] == '\0' &&
            e.cause == (t[k].code == CSL_CLOUD_OK ? CSL_CLOUD_CAUSE_NONE : CSL_CLOUD_CAUSE_HTTP);
        if (!ok) {
            fprintf(stderr, "  row %zu (%d %s): got %s cloud_code=%s message=%s retry=%d\n", k,
                    t[k].status, t[k].body, csl_cloud_code_name(e.code), e.cloud_code, e.message,
                    e.retry_after_s);
            CU_FAIL("classification");
        }
    }
    /* A huge or binary body becomes a short, printable message. */
    char big[4096];
    memset(big, 'x', sizeof big);
    big[10] = '\n';
    big[11] = '\0';
    big[12] = (char)0xff;
    csl_cloud_error e = {0};
    csl_cloud_classify_reply(500, big, sizeof big, NULL, &e);
    CU_ASSERT(strlen(e.message) < 260);
    for (const char *p = e.message; *p; p++) CU_ASSERT(*p >= 0x20 && *p < 0x7f);
}

static void test_classify_transport(void)
{
    static const struct {
        CURLcode cc;
        csl_cloud_code code;
        csl_cloud_cause cause;
    } t[] = {
        {CURLE_OPERATION_TIMEDOUT, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_TIMEOUT},
        {CURLE_COULDNT_CONNECT, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_CONNECT},
        {CURLE_COULDNT_RESOLVE_HOST, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_CONNECT},
        {CURLE_GOT_NOTHING, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_TRANSPORT},
        {CURLE_RECV_ERROR, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_TRANSPORT},
        {CURLE_SEND_ERROR, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_TRANSPORT},
        {CURLE_PARTIAL_FILE, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_TRANSPORT},
        {CURLE_OUT_OF_MEMORY, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_REQUEST},
        {CURLE_URL_MALFORMAT, CSL_CLOUD_PERMANENT, CSL_CLOUD_CAUSE_CONNECT},
        {CURLE_UNSUPPORTED_PROTOCOL, CSL_CLOUD_PERMANENT, CSL_CLOUD_CAUSE_CONNECT},
        {CURLE_PEER_FAILED_VERIFICATION, CSL_CLOUD_PERMANENT, CSL_CLOUD_CAUSE_CONNECT},
    };
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        csl_cloud_error e;
        memset(&e, 0x5a, sizeof e);
        snprintf(e.op, sizeof e.op, "ListInstances");
        csl_cloud_classify_transport((int)t[k].cc, NULL, &e);
        CU_ASSERT_EQUAL(e.code, t[k].code);
        CU_ASSERT_EQUAL(e.cause, t[k].cause);
        CU_ASSERT_EQUAL(e.status, 0);
        CU_ASSERT_STRING_EQUAL(e.curl_error, curl_easy_strerror(t[k].cc));
        CU_ASSERT_STRING_EQUAL(e.op, "ListInstances");
        CU_ASSERT_EQUAL(e.retry_after_s, 0);
    }
    csl_cloud_error e = {0};
    csl_cloud_classify_transport(CURLE_RECV_ERROR, "Connection reset by peer", &e);
    CU_ASSERT_STRING_EQUAL(e.curl_error, "Connection reset by peer");
    char line[1024];
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_cloud_error_str(&e, line, sizeof line),
                                  "cloud: connection failed: Connection reset by peer"));
}

static void test_retry_after(void)
{
    int64_t now = INT64_C(1795702886000); /* Thu, 26 Nov 2026 14:21:26 GMT */
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("5", now), 5);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after(" 12 ", now), 12);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("0", now), 0);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("999999999999999999999", now), 86400);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("90000", now), 86400);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("-1", now), -1);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("1.5", now), -1);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("", now), -1);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after(NULL, now), -1);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("Thu, 26 Nov 2026 14:21:56 GMT", now), 30);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("Thu, 26 Nov 2026 14:21:56 GMT", now + 500), 30);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("Wed, 25 Nov 2026 14:21:56 GMT", now), 0);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("Thu, 26 Nov 2026 14:21:56 GMT junk", now), -1);
    CU_ASSERT_EQUAL(csl_cloud_parse_retry_after("tomorrow", now), -1);
}

static void test_names_and_messages(void)
{
    CU_ASSERT_STRING_EQUAL(csl_cloud_code_name(CSL_CLOUD_OK), "OK");
    CU_ASSERT_STRING_EQUAL(csl_cloud_code_name(CSL_CLOUD_THROTTLED), "Throttled");
    CU_ASSERT_STRING_EQUAL(csl_cloud_code_name(CSL_CLOUD_PERMANENT), "Permanent");
    CU_ASSERT_STRING_EQUAL(csl_cloud_code_name((csl_cloud_code)42), "Unknown");
    CU_ASSERT_STRING_EQUAL(csl_cloud_cause_name(CSL_CLOUD_CAUSE_TIMEOUT), "Timeout");
    CU_ASSERT_STRING_EQUAL(csl_cloud_action_name(CSL_CLOUD_REBOOT), "reboot");

    csl_cloud_error e = {0};
    snprintf(e.op, sizeof e.op, "CreateInstance");
    const char *body = "{\"error\":{\"code\":\"InvalidZone\",\"message\":\"unknown zone\"}}";
    csl_cloud_classify_reply(400, body, strlen(body), NULL, &e);
    char line[1024];
    CU_ASSERT_STRING_EQUAL(csl_cloud_error_str(&e, line, sizeof line),
                           "CreateInstance: HTTP 400 InvalidZone: unknown zone");
    char tiny[8];
    csl_cloud_error_str(&e, tiny, sizeof tiny);
    CU_ASSERT_EQUAL(strlen(tiny), 7);
}

/* ================================================================ loopback server */

static csl_httpd *srv;
static char base[64];
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen_auth[256], seen_key[300], seen_ctype[128], seen_ua[128], seen_body[2048],
    seen_query[512];
static atomic_int n_create, n_action, n_list, n_get;

static void remember(csl_http_req *r)
{
    size_t len;
    const char *b = csl_http_body(r, &len);
    const char *a = csl_http_header(r, "Authorization");
    const char *k = csl_http_header(r, "Idempotency-Key");
    const char *ct = csl_http_header(r, "Content-Type");
    const char *ua = csl_http_header(r, "User-Agent");
    pthread_mutex_lock(&seen_mu);
    snprintf(seen_auth, sizeof seen_auth, "%s", a ? a : "(none)");
    snprintf(seen_key, sizeof seen_key, "%s", k ? k : "(none)");
    snprintf(seen_ctype, sizeof seen_ctype, "%s", ct ? ct : "(none)");
    snprintf(seen_ua, sizeof seen_ua, "%s", ua ? ua : "(none)");
    snprintf(seen_body, sizeof seen_body, "%.*s", (int)len, b);
    pthread_mutex_unlock(&seen_mu);
}

/* An instance view named name with id id, in state. */
static void respond_instance(csl_http_req *r, int status, const char *id, const char *name,
                             const char *state)
{
    cJSON *j = cJSON_Parse(full_instance);
    cJSON_ReplaceItemInObjectCaseSensitive(j, "id", cJSON_CreateString(id));
    cJSON_ReplaceItemInObjectCaseSensitive(j, "name", cJSON_CreateString(name));
    cJSON_ReplaceItemInObjectCaseSensitive(j, "state", cJSON_CreateString(state));
    if (status == 202) csl_http_set_header(r, "Location", "/v1/operations/op-00000000000a");
    csl_http_respond_json(r, status, j);
    cJSON_Delete(j);
}

static void h_create(csl_http_req *r, void *d)
{
    int n = atomic_fetch_add(&n_create, 1) + 1;
    remember(r);
    const char *k = csl_http_header(r, "Idempotency-Key");
    /* "close-once": the first request dies without a reply, the next is
     * answered — what libcurl's silent re-send turns into a success. */
    if (k && strcmp(k, "close-once") == 0 && n == 1) {
        csl_http_close(r);
        return;
    }
    respond_instance(r, n == 1 ? 202 : 200, "i-new", "web-1", "pending");
}

static const char malformed[] = "{\"id\":\"i-0f3a9c2e\",\"state\":\"runn";

static void h_get(csl_http_req *r, void *d)
{
    atomic_fetch_add(&n_get, 1);
    const char *id = csl_http_param(r, "id");
    if (strcmp(id, "throttle") == 0) {
        csl_http_set_header(r, "Retry-After", "3");
        csl_http_respond_error(r, 429, "TooManyRequests", "slow down");
    } else if (strcmp(id, "hang") == 0) {
        csl_http_suspend(r, -1);
    } else if (strcmp(id, "malformed") == 0) {
        csl_http_respond(r, 200, "application/json", malformed, sizeof malformed - 1);
    } else if (strcmp(id, "wrongtype") == 0) {
        const char *b =
            "{\"id\":\"wrongtype\",\"name\":\"n\",\"state\":\"running\",\"cpu\":\"two\","
            "\"memoryMiB\":1,\"diskGiB\":1,\"image\":\"i\",\"zone\":\"z\"}";
        csl_http_respond(r, 200, "application/json", b, strlen(b));
    } else if (strcmp(id, "html404") == 0) {
        csl_http_respond(r, 404, "text/html", "<h1>nginx</h1>", 14);
    } else if (strcmp(id, "empty200") == 0) {
        csl_http_respond(r, 200, "application/json", NULL, 0);
    } else if (strcmp(id, "reset") == 0) {
        csl_http_reset(r);
    } else if (strcmp(id, "auth") == 0) {
        /* The name tells the test which token arrived. */
        const char *a = csl_http_header(r, "Authorization");
        respond_instance(r, 200, id, a ? a : "(none)", "running");
    } else if (strcmp(id, "gone") == 0) {
        csl_http_respond_error(r, 404, "NotFound", "instance \"%s\" not found", id);
    } else {
        /* The id as the server decoded it comes back as the name. */
        respond_instance(r, 200, "i-1", id, "running");
    }
}

/* Seven instances i-1..i-7 served `limit` at a time; the page token is the
 * index to start at. tag=loop=1 answers the same token forever. */
static void h_list(csl_http_req *r, void *d)
{
    atomic_fetch_add(&n_list, 1);
    const char *lim = csl_http_query(r, "limit");
    const char *tok = csl_http_query(r, "pageToken");
    const char *tag = csl_http_query(r, "tag");
    const char *zone = csl_http_query(r, "zone");
    pthread_mutex_lock(&seen_mu);
    snprintf(seen_query, sizeof seen_query, "tag=%s zone=%s limit=%s", tag ? tag : "-",
             zone ? zone : "-", lim ? lim : "-");
    pthread_mutex_unlock(&seen_mu);
    int limit = lim ? atoi(lim) : 100, from = tok ? atoi(tok) : 0;
    cJSON *o = cJSON_CreateObject();
    cJSON *items = cJSON_AddArrayToObject(o, "items");
    for (int i = from; i < 7 && i < from + limit; i++) {
        cJSON *j = cJSON_Parse(full_instance);
        char id[16];
        snprintf(id, sizeof id, "i-%d", i + 1);
        cJSON_ReplaceItemInObjectCaseSensitive(j, "id", cJSON_CreateString(id));
        cJSON_AddItemToArray(items, j);
    }
    if (tag && strcmp(tag, "loop=1") == 0) {
        cJSON_AddStringToObject(o, "nextPageToken", "0");
    } else if (from + limit < 7) {
        char next[16];
        snprintf(next, sizeof next, "%d", from + limit);
        cJSON_AddStringToObject(o, "nextPageToken", next);
    }
    csl_http_respond_json(r, 200, o);
    cJSON_Delete(o);
}

static void h_action(csl_http_req *r, void *d)
{
    int n = atomic_fetch_add(&n_action, 1) + 1;
    remember(r);
    if (strcmp(csl_http_param(r, "id"), "close-once") == 0 && n == 1) {
        csl_http_close(r);
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "%s", csl_http_param(r, "action"));
    respond_instance(r, 202, csl_http_param(r, "id"), name, "stopping");
}

static void h_patch(csl_http_req *r, void *d)
{
    remember(r);
    respond_instance(r, 202, csl_http_param(r, "id"), "web-1", "resizing");
}

static void h_delete(csl_http_req *r, void *d)
{
    remember(r);
    if (strcmp(csl_http_param(r, "id"), "gone") == 0) {
        csl_http_respond_error(r, 404, "NotFound", "instance not found");
        return;
    }
    respond_instance(r, 202, csl_http_param(r, "id"), "web-1", "deleting");
}

static void respond_snapshot(csl_http_req *r, int status, const char *id)
{
    cJSON *j = cJSON_Parse(full_snapshot);
    cJSON_ReplaceItemInObjectCaseSensitive(j, "id", cJSON_CreateString(id));
    csl_http_respond_json(r, status, j);
    cJSON_Delete(j);
}

static void h_snap_create(csl_http_req *r, void *d)
{
    remember(r);
    respond_snapshot(r, 202, "snap-new");
}

static void h_snap_list(csl_http_req *r, void *d)
{
    const char *inst = csl_http_query(r, "instance");
    pthread_mutex_lock(&seen_mu);
    snprintf(seen_query, sizeof seen_query, "instance=%s", inst ? inst : "-");
    pthread_mutex_unlock(&seen_mu);
    char body[1024];
    snprintf(body, sizeof body, "{\"items\":[%s,%s]}", full_snapshot, full_snapshot);
    csl_http_respond(r, 200, "application/json", body, strlen(body));
}

static void h_snap_get(csl_http_req *r, void *d)
{
    respond_snapshot(r, 200, csl_http_param(r, "id"));
}

static void h_snap_delete(csl_http_req *r, void *d)
{
    if (strcmp(csl_http_param(r, "id"), "malformed") == 0)
        csl_http_respond(r, 200, "application/json", malformed, sizeof malformed - 1);
    else
        csl_http_respond(r, 204, NULL, NULL, 0);
}

static FILE *log_file;

static int suite_init(void)
{
    /* Debug logging exercises the request log line; it goes to a file. */
    log_file = tmpfile();
    if (!log_file) return -1;
    csl_log_setup("test_cloud", CSL_LOG_DEBUG, CSL_LOG_TEXT, fileno(log_file));
    csl_httpd_config cfg = {.listen = "127.0.0.1:0", .threads = 2};
    srv = csl_httpd_new(&cfg);
    if (!srv) return -1;
    int bad = 0;
    bad |= csl_httpd_route(srv, "POST", "/v1/instances", "CreateInstance", h_create, NULL);
    bad |= csl_httpd_route(srv, "GET", "/v1/instances", "ListInstances", h_list, NULL);
    bad |= csl_httpd_route(srv, "GET", "/v1/instances/{id}", "GetInstance", h_get, NULL);
    bad |= csl_httpd_route(srv, "PATCH", "/v1/instances/{id}", "ResizeInstance", h_patch, NULL);
    bad |= csl_httpd_route(srv, "DELETE", "/v1/instances/{id}", "DeleteInstance", h_delete, NULL);
    bad |= csl_httpd_route(srv, "POST", "/v1/instances/{id}/actions/{action}", "InstanceAction",
                           h_action, NULL);
    bad |= csl_httpd_route(srv, "POST", "/v1/instances/{id}/snapshots", "CreateSnapshot",
                           h_snap_create, NULL);
    bad |= csl_httpd_route(srv, "GET", "/v1/snapshots", "ListSnapshots", h_snap_list, NULL);
    bad |= csl_httpd_route(srv, "GET", "/v1/snapshots/{id}", "GetSnapshot", h_snap_get, NULL);
    bad |=
        csl_httpd_route(srv, "DELETE", "/v1/snapshots/{id}", "DeleteSnapshot", h_snap_delete, NULL);
    char err[256];
    if (bad || csl_httpd_start(srv, err, sizeof err) != 0) return -1;
    snprintf(base, sizeof base, "http://127.0.0.1:%d/", csl_httpd_port(srv));
    return 0;
}

static int suite_cleanup(void)
{
    csl_httpd_free(srv);
    srv = NULL;
    csl_log_setup("test_cloud", CSL_LOG_INFO, CSL_LOG_TEXT, 2);
    if (log_file) fclose(log_file);
    return 0;
}

static csl_cloud *client(const csl_cloud_options *o)
{
    char err[256] = "";
    csl_cloud *c = csl_cloud_new(base, o, err, sizeof err);
    if (!c) fprintf(stderr, "  csl_cloud_new: %s\n", err);
    return c;
}

static void seen(char *out, size_t n, const char *what)
{
    pthread_mutex_lock(&seen_mu);
    snprintf(out, n, "%s", what);
    pthread_mutex_unlock(&seen_mu);
}

static void test_new_refuses(void)
{
    char err[256];
    CU_ASSERT_PTR_NULL(csl_cloud_new("127.0.0.1:8090", NULL, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "expected an http:// or https:// URL"));
    CU_ASSERT_PTR_NULL(csl_cloud_new(NULL, NULL, err, sizeof err));
    CU_ASSERT_PTR_NULL(csl_cloud_new("http://", NULL, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no host"));
    CU_ASSERT_PTR_NULL(csl_cloud_new("http://h/x?y", NULL, err, sizeof err));
    csl_cloud_options o = {.token = "bad\r\nX-Evil: 1"};
    CU_ASSERT_PTR_NULL(csl_cloud_new("http://127.0.0.1:1", &o, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cloud token"));
}

static void test_create_sends(void)
{
    csl_cloud_options o = {.token = "s3cret", .user_agent = "test-agent/1"};
    csl_cloud *c = client(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_kv tags[] = {{"cloudserver.dev/uid", "u-1"}};
    csl_cloud_instance_spec spec = {.name = "web-1",
                                    .cpu = 2,
                                    .memory_mib = 4096,
                                    .disk_gib = 40,
                                    .image = "debian-12",
                                    .zone = "hk-1a",
                                    .tags = tags,
                                    .n_tags = 1};
    atomic_store(&n_create, 0);
    csl_cloud_instance in;
    csl_cloud_error e;
    CU_ASSERT_EQUAL_FATAL(csl_cloud_create_instance(c, &spec, "uid-1", &in, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(e.status, 202);
    CU_ASSERT_STRING_EQUAL(e.operation, "op-00000000000a");
    CU_ASSERT_STRING_EQUAL(e.op, "CreateInstance");
    CU_ASSERT_STRING_EQUAL(in.id, "i-new");
    CU_ASSERT_EQUAL(in.state, CSL_INSTANCE_PENDING);
    csl_cloud_instance_free(&in);
    char buf[2048];
    seen(buf, sizeof buf, seen_auth);
    CU_ASSERT_STRING_EQUAL(buf, "Bearer s3cret");
    seen(buf, sizeof buf, seen_key);
    CU_ASSERT_STRING_EQUAL(buf, "uid-1");
    seen(buf, sizeof buf, seen_ctype);
    CU_ASSERT_STRING_EQUAL(buf, "application/json");
    seen(buf, sizeof buf, seen_ua);
    CU_ASSERT_STRING_EQUAL(buf, "test-agent/1");
    seen(buf, sizeof buf, seen_body);
    CU_ASSERT_STRING_EQUAL(buf, "{\"name\":\"web-1\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
                                "\"image\":\"debian-12\",\"zone\":\"hk-1a\","
                                "\"tags\":{\"cloudserver.dev/uid\":\"u-1\"}}");
    /* The same call again: the server says 200 (a replay). out NULL is fine. */
    CU_ASSERT_EQUAL(csl_cloud_create_instance(c, &spec, "uid-1", NULL, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_EQUAL(atomic_load(&n_create), 2);

    /* Without a key, or with a bad one, nothing is sent. */
    static const char *const bad_keys[] = {NULL, "", "has space", "tab\t"};
    for (size_t k = 0; k < 4; k++) {
        CU_ASSERT_EQUAL(csl_cloud_create_instance(c, &spec, bad_keys[k], &in, &e),
                        CSL_CLOUD_INVALID);
        CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_REQUEST);
        CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "Idempotency-Key"));
    }
    char long_key[300];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    CU_ASSERT_EQUAL(csl_cloud_create_instance(c, &spec, long_key, &in, &e), CSL_CLOUD_INVALID);
    spec.image = NULL;
    CU_ASSERT_EQUAL(csl_cloud_create_instance(c, &spec, "k", &in, &e), CSL_CLOUD_INVALID);
    CU_ASSERT_STRING_EQUAL(e.message, "spec.image is required");
    CU_ASSERT_EQUAL(atomic_load(&n_create), 2);
    /* err may be NULL. */
    CU_ASSERT_EQUAL(csl_cloud_create_instance(c, &spec, "k", NULL, NULL), CSL_CLOUD_INVALID);
    csl_cloud_free(c);
}

static void test_calls_and_paths(void)
{
    csl_cloud *c = client(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_instance in;
    csl_cloud_error e;
    char buf[2048];

    /* Ids are escaped: the server decodes them back. (libmicrohttpd
     * decodes %2F before routing, so a '/' cannot be tried here.) */
    CU_ASSERT_EQUAL_FATAL(csl_cloud_get_instance(c, "a b?c#d%e", &in, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_STRING_EQUAL(in.name, "a b?c#d%e");
    csl_cloud_instance_free(&in);
    static const char *const bad_ids[] = {NULL, "", ".", ".."};
    for (size_t k = 0; k < 4; k++) {
        CU_ASSERT_EQUAL(csl_cloud_get_instance(c, bad_ids[k], &in, &e), CSL_CLOUD_INVALID);
        CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_REQUEST);
        CU_ASSERT_EQUAL(csl_cloud_delete_instance(c, bad_ids[k], &e), CSL_CLOUD_INVALID);
        CU_ASSERT_EQUAL(csl_cloud_delete_snapshot(c, bad_ids[k], &e), CSL_CLOUD_INVALID);
    }

    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "gone", &in, &e), CSL_CLOUD_NOT_FOUND);
    CU_ASSERT_EQUAL(e.status, 404);
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "NotFound");
    CU_ASSERT_PTR_NULL(in.id);

    csl_cloud_resize rs = {.cpu = 4, .disk_gib = 80};
    CU_ASSERT_EQUAL(csl_cloud_resize_instance(c, "i-9", &rs, &in, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(in.state, CSL_INSTANCE_RESIZING);
    CU_ASSERT_STRING_EQUAL(e.operation, "op-00000000000a");
    csl_cloud_instance_free(&in);
    seen(buf, sizeof buf, seen_body);
    CU_ASSERT_STRING_EQUAL(buf, "{\"cpu\":4,\"diskGiB\":80}");
    csl_cloud_resize none = {0};
    CU_ASSERT_EQUAL(csl_cloud_resize_instance(c, "i-9", &none, &in, &e), CSL_CLOUD_INVALID);
    CU_ASSERT_EQUAL(csl_cloud_resize_instance(c, "i-9", NULL, &in, &e), CSL_CLOUD_INVALID);

    CU_ASSERT_EQUAL(csl_cloud_instance_action(c, "i-9", CSL_CLOUD_STOP, &in, &e), CSL_CLOUD_OK);
    CU_ASSERT_STRING_EQUAL(in.name, "stop");
    csl_cloud_instance_free(&in);
    CU_ASSERT_EQUAL(csl_cloud_instance_action(c, "i-9", CSL_CLOUD_REBOOT, NULL, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(csl_cloud_instance_action(c, "i-9", (csl_cloud_action)7, NULL, &e),
                    CSL_CLOUD_INVALID);

    CU_ASSERT_EQUAL(csl_cloud_delete_instance(c, "i-9", &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(e.status, 202);
    CU_ASSERT_EQUAL(csl_cloud_delete_instance(c, "gone", &e), CSL_CLOUD_NOT_FOUND);

    csl_cloud_snapshot s;
    csl_cloud_kv tags[] = {{"schedule", "0 */6 * * *"}};
    CU_ASSERT_EQUAL(
        csl_cloud_create_snapshot(c, "i-9", "nightly", tags, 1, "uid-1-1700000000", &s, &e),
        CSL_CLOUD_OK);
    CU_ASSERT_STRING_EQUAL(s.id, "snap-new");
    csl_cloud_snapshot_free(&s);
    seen(buf, sizeof buf, seen_body);
    CU_ASSERT_STRING_EQUAL(buf, "{\"name\":\"nightly\",\"tags\":{\"schedule\":\"0 */6 * * *\"}}");
    seen(buf, sizeof buf, seen_key);
    CU_ASSERT_STRING_EQUAL(buf, "uid-1-1700000000");
    CU_ASSERT_EQUAL(csl_cloud_create_snapshot(c, "i-9", NULL, NULL, 0, NULL, NULL, &e),
                    CSL_CLOUD_OK);
    seen(buf, sizeof buf, seen_body);
    CU_ASSERT_STRING_EQUAL(buf, "{}");
    seen(buf, sizeof buf, seen_key);
    CU_ASSERT_STRING_EQUAL(buf, "(none)");

    csl_cloud_snapshot_list sl;
    CU_ASSERT_EQUAL(csl_cloud_list_snapshots(c, "i-9 x", &sl, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(sl.n, 2);
    csl_cloud_snapshot_list_free(&sl);
    seen(buf, sizeof buf, seen_query);
    CU_ASSERT_STRING_EQUAL(buf, "instance=i-9 x");
    CU_ASSERT_EQUAL(csl_cloud_get_snapshot(c, "snap-7", &s, &e), CSL_CLOUD_OK);
    CU_ASSERT_STRING_EQUAL(s.id, "snap-7");
    csl_cloud_snapshot_free(&s);
    CU_ASSERT_EQUAL(csl_cloud_delete_snapshot(c, "snap-7", &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(e.status, 204);
    /* At debug level each request is logged. */
    static char logged[1 << 16];
    fflush(log_file);
    ssize_t n = pread(fileno(log_file), logged, sizeof logged - 1, 0);
    logged[n > 0 ? n : 0] = '\0';
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "cloud request"));
    CU_ASSERT_PTR_NOT_NULL(strstr(logged, "op=DeleteSnapshot"));
    /* A 200 with a cut body is not a deletion. */
    CU_ASSERT_EQUAL(csl_cloud_delete_snapshot(c, "malformed", &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);
    csl_cloud_free(c);
}

typedef struct each_seen {
    size_t n;
    char ids[256];
} each_seen;

static void each_item(const csl_cloud_instance *it, void *ctx)
{
    each_seen *es = ctx;
    es->n++;
    size_t len = strlen(es->ids);
    snprintf(es->ids + len, sizeof es->ids - len, "%s ", it->id);
}

static void test_list_pagination(void)
{
    csl_cloud *c = client(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_instance_list l;
    csl_cloud_error e;
    char buf[512];
    csl_cloud_kv tags[] = {{"cloudserver.dev/uid", "a=b c"}};
    csl_cloud_list_filter f = {.tags = tags, .n_tags = 1, .zone = "hk-1a", .page_size = 3};
    atomic_store(&n_list, 0);
    CU_ASSERT_EQUAL_FATAL(csl_cloud_list_instances(c, &f, &l, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(atomic_load(&n_list), 3); /* 3 + 3 + 1 */
    CU_ASSERT_EQUAL_FATAL(l.n, 7);
    for (size_t i = 0; i < 7; i++) {
        char id[16];
        snprintf(id, sizeof id, "i-%zu", i + 1);
        CU_ASSERT_STRING_EQUAL(l.items[i].id, id);
    }
    csl_cloud_instance_list_free(&l);
    seen(buf, sizeof buf, seen_query);
    CU_ASSERT_STRING_EQUAL(buf, "tag=cloudserver.dev/uid=a=b c zone=hk-1a limit=3");

    /* A page at a time: the same items in the same order, same requests. */
    atomic_store(&n_list, 0);
    each_seen es = {0};
    CU_ASSERT_EQUAL_FATAL(csl_cloud_each_instance(c, &f, each_item, &es, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(atomic_load(&n_list), 3);
    CU_ASSERT_EQUAL(es.n, 7);
    CU_ASSERT_STRING_EQUAL(es.ids, "i-1 i-2 i-3 i-4 i-5 i-6 i-7 ");
    /* The repeated token fails it too; a bad filter sends nothing. */
    es = (each_seen){0};
    csl_cloud_list_filter loop = {.tags = (csl_cloud_kv[]){{"loop", "1"}}, .n_tags = 1};
    CU_ASSERT_EQUAL(csl_cloud_each_instance(c, &loop, each_item, &es, &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);
    csl_cloud_list_filter big = {.page_size = 501};
    CU_ASSERT_EQUAL(csl_cloud_each_instance(c, &big, each_item, &es, &e), CSL_CLOUD_INVALID);
    CU_ASSERT_EQUAL(csl_cloud_each_instance(c, NULL, NULL, NULL, &e), CSL_CLOUD_INVALID);

    /* Default page size: one request. */
    atomic_store(&n_list, 0);
    CU_ASSERT_EQUAL(csl_cloud_find_instances(c, "k", "v", &l, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(l.n, 7);
    CU_ASSERT_EQUAL(atomic_load(&n_list), 1);
    seen(buf, sizeof buf, seen_query);
    CU_ASSERT_STRING_EQUAL(buf, "tag=k=v zone=- limit=500");
    csl_cloud_instance_list_free(&l);
    CU_ASSERT_EQUAL(csl_cloud_list_instances(c, NULL, &l, &e), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(l.n, 7);
    csl_cloud_instance_list_free(&l);

    /* A cloud that repeats its page token does not loop us forever. */
    CU_ASSERT_EQUAL(csl_cloud_find_instances(c, "loop", "1", &l, &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "same nextPageToken"));
    CU_ASSERT_EQUAL(l.n, 0);
    CU_ASSERT_PTR_NULL(l.items);

    /* Refused before sending. */
    csl_cloud_kv eq[] = {{"a=b", "c"}};
    csl_cloud_list_filter bad = {.tags = eq, .n_tags = 1};
    CU_ASSERT_EQUAL(csl_cloud_list_instances(c, &bad, &l, &e), CSL_CLOUD_INVALID);
    bad = (csl_cloud_list_filter){.page_size = 501};
    CU_ASSERT_EQUAL(csl_cloud_list_instances(c, &bad, &l, &e), CSL_CLOUD_INVALID);
    csl_cloud_free(c);
}

static void test_error_replies(void)
{
    csl_cloud *c = client(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_instance in;
    csl_cloud_error e;
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "throttle", &in, &e), CSL_CLOUD_THROTTLED);
    CU_ASSERT_EQUAL(e.status, 429);
    CU_ASSERT_EQUAL(e.retry_after_s, 3);
    CU_ASSERT_STRING_EQUAL(e.cloud_code, "TooManyRequests");

    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "malformed", &in, &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);
    CU_ASSERT_EQUAL(e.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "malformed JSON reply"));
    CU_ASSERT_PTR_NULL(in.id);

    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "wrongtype", &in, &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "cpu: expected an integer, got a string"));
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "wrongtype", NULL, &e), CSL_CLOUD_RETRYABLE);

    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "empty200", &in, &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);

    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "html404", &in, &e), CSL_CLOUD_PERMANENT);
    CU_ASSERT_EQUAL(e.status, 404);

    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "reset", &in, &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_TRANSPORT);
    CU_ASSERT_EQUAL(e.status, 0);
    CU_ASSERT(e.curl_error[0] != '\0');

    /* A reply larger than max_response. */
    csl_cloud_options small = {.max_response = 100};
    csl_cloud *c2 = client(&small);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c2, "i-1", &in, &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_DECODE);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.message, "larger than 100 bytes"));
    csl_cloud_free(c2);
    csl_cloud_free(c);
}

static void test_timeout(void)
{
    csl_cloud_options o = {.timeout_ms = 300};
    csl_cloud *c = client(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_instance in;
    csl_cloud_error e;
    int64_t t0 = csl_mono_ns();
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "hang", &in, &e), CSL_CLOUD_RETRYABLE);
    double secs = (double)(csl_mono_ns() - t0) / 1e9;
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_TIMEOUT);
    CU_ASSERT_EQUAL(e.status, 0);
    CU_ASSERT(secs >= 0.25);
    CU_ASSERT(secs < 10.0);
    char line[1024];
    CU_ASSERT_PTR_NOT_NULL(
        strstr(csl_cloud_error_str(&e, line, sizeof line), "GetInstance: timeout"));
    /* The client is fine afterwards. */
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "i-1", &in, &e), CSL_CLOUD_OK);
    csl_cloud_instance_free(&in);
    csl_cloud_free(c);
}

static void test_connect_refused(void)
{
    /* A port nobody listens on: bind, read the port, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd);
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    csl_cloud *c = csl_cloud_new(url, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    CU_ASSERT_EQUAL(csl_cloud_delete_instance(c, "i-1", &e), CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_CONNECT);
    CU_ASSERT(e.curl_error[0] != '\0');
    csl_cloud_free(c);
}

static void test_token_change(void)
{
    csl_cloud_options o = {.token = "first"};
    csl_cloud *c = client(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_instance in;
    CU_ASSERT_EQUAL_FATAL(csl_cloud_get_instance(c, "auth", &in, NULL), CSL_CLOUD_OK);
    CU_ASSERT_STRING_EQUAL(in.name, "Bearer first");
    csl_cloud_instance_free(&in);
    CU_ASSERT_EQUAL(csl_cloud_set_token(c, "second"), 0);
    CU_ASSERT_EQUAL_FATAL(csl_cloud_get_instance(c, "auth", &in, NULL), CSL_CLOUD_OK);
    CU_ASSERT_STRING_EQUAL(in.name, "Bearer second");
    csl_cloud_instance_free(&in);
    /* A refused token leaves the old one. */
    CU_ASSERT_EQUAL(csl_cloud_set_token(c, "evil\nX-Injected: 1"), -1);
    CU_ASSERT_EQUAL_FATAL(csl_cloud_get_instance(c, "auth", &in, NULL), CSL_CLOUD_OK);
    CU_ASSERT_STRING_EQUAL(in.name, "Bearer second");
    csl_cloud_instance_free(&in);
    CU_ASSERT_EQUAL(csl_cloud_set_token(c, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(csl_cloud_get_instance(c, "auth", &in, NULL), CSL_CLOUD_OK);
    CU_ASSERT_STRING_EQUAL(in.name, "(none)");
    csl_cloud_instance_free(&in);
    csl_cloud_free(c);
}

static void test_connection_reuse(void)
{
    csl_cloud *c = client(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int i = 0; i < 10; i++) {
        CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "i-1", NULL, NULL), CSL_CLOUD_OK);
        CU_ASSERT_EQUAL(csl_cloud_delete_instance(c, "i-1", NULL), CSL_CLOUD_OK);
    }
    csl_cloud_stats st;
    csl_cloud_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.requests, 20);
    CU_ASSERT_EQUAL(st.connects, 1);
    /* Power actions are never re-sent by libcurl: each on a new connection. */
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(csl_cloud_instance_action(c, "i-1", CSL_CLOUD_STOP, NULL, NULL),
                        CSL_CLOUD_OK);
    csl_cloud_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.requests, 23);
    CU_ASSERT_EQUAL(st.connects, 4);
    /* … one-off connections: the kept one still serves the rest. */
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "i-1", NULL, NULL), 0);
    csl_cloud_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.requests, 26);
    CU_ASSERT_EQUAL(st.connects, 4);
    csl_cloud_free(c);
}

/* libcurl re-sends a request once when a reused connection dies before any
 * reply byte. Keyed creates may be re-sent (the cloud replays); power
 * actions must not be, so the client sends them on a fresh connection. */
static void test_silent_resend_policy(void)
{
    csl_cloud *c = client(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    csl_cloud_error e;
    /* Warm a connection, then an action whose first try dies. */
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "i-1", NULL, NULL), CSL_CLOUD_OK);
    atomic_store(&n_action, 0);
    CU_ASSERT_EQUAL(csl_cloud_instance_action(c, "close-once", CSL_CLOUD_REBOOT, NULL, &e),
                    CSL_CLOUD_RETRYABLE);
    CU_ASSERT_EQUAL(e.cause, CSL_CLOUD_CAUSE_TRANSPORT);
    CU_ASSERT_EQUAL(atomic_load(&n_action), 1);

    /* A keyed create on a warm connection: re-sent, answered as a replay. */
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "i-1", NULL, NULL), CSL_CLOUD_OK);
    atomic_store(&n_create, 0);
    csl_cloud_instance_spec spec = {
        .name = "w", .cpu = 1, .memory_mib = 256, .disk_gib = 10, .image = "i", .zone = "z"};
    csl_cloud_code code = csl_cloud_create_instance(c, &spec, "close-once", NULL, &e);
    CU_ASSERT_EQUAL(code, CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(atomic_load(&n_create), 2);
    CU_ASSERT_EQUAL(e.status, 200);
    csl_cloud_free(c);
}

static void test_metrics(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_cloud_options o = {.metrics = reg};
    csl_cloud *c = client(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "i-1", NULL, NULL), 0);
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "gone", NULL, NULL), CSL_CLOUD_NOT_FOUND);
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "reset", NULL, NULL), CSL_CLOUD_RETRYABLE);
    csl_cloud_list_filter f = {.page_size = 3};
    csl_cloud_instance_list l;
    CU_ASSERT_EQUAL(csl_cloud_list_instances(c, &f, &l, NULL), CSL_CLOUD_OK);
    csl_cloud_instance_list_free(&l);
    /* Refused before sending: not a request. */
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c, "", NULL, NULL), CSL_CLOUD_INVALID);

    csl_metric *req = csl_metrics_counter(reg, "cloudserver_cloud_api_requests_total", "",
                                          CSL_LABELS("op", "code"));
    csl_metric *dur = csl_metrics_histogram(
        reg, "cloudserver_cloud_api_request_duration_seconds", "", CSL_LABELS("op"),
        (const double[]){0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0},
        13);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_PTR_NOT_NULL_FATAL(dur);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("GetInstance", "200")), 3);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("GetInstance", "404")), 1);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("GetInstance", "error")), 1);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("ListInstances", "200")), 3);
    CU_ASSERT_EQUAL(csl_metric_value(dur, CSL_LABELS("GetInstance")), 5);
    CU_ASSERT_EQUAL(csl_metric_value(dur, CSL_LABELS("ListInstances")), 3);
    csl_buf out = CSL_BUF_INIT;
    CU_ASSERT(csl_metrics_render(reg, &out));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(csl_buf_str(&out),
               "cloudserver_cloud_api_requests_total{op=\"GetInstance\",code=\"200\"} 3"));
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&out),
                                  "cloudserver_cloud_api_request_duration_seconds_count{op="
                                  "\"GetInstance\"} 5"));
    csl_buf_free(&out);
    /* A second client on the same registry shares the families. */
    csl_cloud *c2 = client(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
    CU_ASSERT_EQUAL(csl_cloud_get_instance(c2, "i-1", NULL, NULL), CSL_CLOUD_OK);
    CU_ASSERT_EQUAL(csl_metric_value(req, CSL_LABELS("GetInstance", "200")), 4);
    csl_cloud_free(c2);
    csl_cloud_free(c);
    csl_metrics_free(reg);
}

/* ------------------------------------------------------------ threads */

#define THREADS 4
#define CALLS 25

static csl_cloud *shared;
static atomic_int thread_failures;

static void *worker(void *arg)
{
    for (int i = 0; i < CALLS; i++) {
        csl_cloud_instance in;
        if (csl_cloud_get_instance(shared, "auth", &in, NULL) != CSL_CLOUD_OK) {
            atomic_fetch_add(&thread_failures, 1);
            continue;
        }
        /* Either token is fine; a torn or freed one is not. */
        if (strcmp(in.name, "Bearer a") != 0 && strcmp(in.name, "Bearer b") != 0)
            atomic_fetch_add(&thread_failures, 1);
        csl_cloud_instance_free(&in);
        if ((intptr_t)arg == 0) csl_cloud_set_token(shared, i % 2 ? "a" : "b");
    }
    return NULL;
}

static void test_threads(void)
{
    csl_cloud_options o = {.token = "a"};
    shared = client(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(shared);
    atomic_store(&thread_failures, 0);
    pthread_t t[THREADS];
    for (intptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&thread_failures), 0);
    csl_cloud_stats st;
    csl_cloud_get_stats(shared, &st);
    CU_ASSERT_EQUAL(st.requests, THREADS * CALLS);
    /* At most one connection per concurrent caller. */
    CU_ASSERT(st.connects >= 1 && st.connects <= THREADS);
    csl_cloud_free(shared);
    shared = NULL;
}

static CU_TestInfo decode_tests[] = {
    {"instance: every field", test_instance_full},
    {"instance: minimal, every state", test_instance_minimal_and_states},
    {"instance: missing fields, wrong types", test_instance_bad},
    {"snapshot", test_snapshot_decode},
    {"list pages", test_pages},
    {"create body from a spec", test_spec_json},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo classify_tests[] = {
    {"HTTP replies", test_classify_replies},
    {"transport failures", test_classify_transport},
    {"Retry-After", test_retry_after},
    {"names and messages", test_names_and_messages},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo http_tests[] = {
    {"csl_cloud_new refuses bad input", test_new_refuses},
    {"create: headers, body, key", test_create_sends},
    {"every call, paths escaped", test_calls_and_paths},
    {"list follows nextPageToken", test_list_pagination},
    {"throttled, malformed, wrong types, 404 page, reset", test_error_replies},
    {"timeout", test_timeout},
    {"connection refused", test_connect_refused},
    {"token changed at run time", test_token_change},
    {"connection reuse", test_connection_reuse},
    {"silent re-send policy", test_silent_resend_policy},
    {"metrics", test_metrics},
    {"threads share a client", test_threads},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cloud decode", NULL, NULL, NULL, NULL, decode_tests},
    {"cloud classify", NULL, NULL, NULL, NULL, classify_tests},
    {"cloud http", suite_init, suite_cleanup, NULL, NULL, http_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
