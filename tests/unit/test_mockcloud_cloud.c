/* test_mockcloud_cloud.c — mockcloud's world model (mockcloud/cloud.c).
 *
 * Time is passed explicitly: a test "waits" by calling with a later now, so
 * nothing sleeps and nothing depends on the machine's speed. */
#include "../testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../mockcloud/cloud.h"
#include "csl/clock.h"

#define T0 1700000000000LL /* 2023-11-14T22:13:20Z */
#define HOUR (3600LL * 1000)

static const char *const BODY = "{\"name\":\"web-1\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
                                "\"image\":\"debian-12\",\"zone\":\"hk-1a\"}";

/* ---------------------------------------------------------------- helpers */

static const cJSON *jget(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *js(const cJSON *o, const char *k)
{
    const cJSON *j = jget(o, k);
    return cJSON_IsString(j) ? j->valuestring : "";
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *j = jget(o, k);
    return cJSON_IsNumber(j) ? j->valuedouble : -1;
}

static const char *ecode(const mc_reply *r)
{
    return js(jget(r->body, "error"), "code");
}

static const char *emsg(const mc_reply *r)
{
    return js(jget(r->body, "error"), "message");
}

/* Checks an error reply and frees it; prints what came instead on a miss. */
static void expect_err(mc_reply r, int status, const char *code, const char *sub, int line)
{
    bool good = r.status == status && strcmp(ecode(&r), code) == 0 &&
                (!sub || strstr(emsg(&r), sub) != NULL);
    if (!good) {
        char *txt = r.body ? cJSON_PrintUnformatted(r.body) : NULL;
        fprintf(stderr, "\n  line %d: want %d %s \"%s\", got %d %s\n", line, status, code,
                sub ? sub : "", r.status, txt ? txt : "(no body)");
        free(txt);
    }
    CU_ASSERT(good);
    mc_reply_free(&r);
}
#define EXPECT_ERR(r, st, code, sub) expect_err((r), (st), (code), (sub), __LINE__)

static mc_reply create(mc_cloud *c, const char *body, const char *key, int64_t now)
{
    return mc_api_create_instance(c, body, strlen(body), key, now);
}

/* Creates an instance and copies its id into id (32 bytes). */
static void create_id(mc_cloud *c, const char *body, const char *key, int64_t now, char *id)
{
    mc_reply r = create(c, body, key, now);
    CU_ASSERT_EQUAL(r.status, 202);
    snprintf(id, 32, "%s", js(r.body, "id"));
    mc_reply_free(&r);
}

static char *body_with(const char *name, const char *zone, const char *extra)
{
    static char b[8192];
    snprintf(b, sizeof b,
             "{\"name\":\"%s\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
             "\"image\":\"debian-12\",\"zone\":\"%s\"%s%s}",
             name, zone, extra ? "," : "", extra ? extra : "");
    return b;
}

/* The state field of GET id at now ("" when not 200). */
static const char *state_at(mc_cloud *c, const char *id, int64_t now)
{
    static char s[32];
    mc_reply r = mc_api_get_instance(c, id, now);
    snprintf(s, sizeof s, "%s", r.status == 200 ? js(mc_reply_json_body(&r), "state") : "");
    mc_reply_free(&r);
    return s;
}

static mc_reply action(mc_cloud *c, const char *id, const char *a, int64_t now)
{
    return mc_api_instance_action(c, id, a, now);
}

static mc_reply resize(mc_cloud *c, const char *id, const char *body, int64_t now)
{
    return mc_api_resize_instance(c, id, body, strlen(body), now);
}

static mc_reply crash(mc_cloud *c, const char *body, int64_t now)
{
    return mc_ctl_crash(c, body, strlen(body), now);
}

static mc_reply get_op_of(mc_cloud *c, const mc_reply *r, int64_t now)
{
    const char *loc = r->location;
    const char *p = strrchr(loc, '/');
    return mc_api_get_operation(c, p ? p + 1 : "", now);
}

static mc_reply set_json(mc_reply (*f)(mc_cloud *, const char *, size_t), mc_cloud *c,
                         const char *body)
{
    return f(c, body, strlen(body));
}

static char *dump_text(mc_cloud *c, int64_t now)
{
    mc_reply r = mc_ctl_dump(c, now);
    CU_ASSERT_EQUAL(r.status, 200);
    char *t = r.body ? cJSON_PrintUnformatted(r.body) : NULL;
    mc_reply_free(&r);
    return t;
}

static size_t list_count(mc_cloud *c, const mc_kv *q, size_t nq, int64_t now)
{
    mc_reply r = mc_api_list_instances(c, q, nq, now);
    CU_ASSERT_EQUAL(r.status, 200);
    size_t n = (size_t)cJSON_GetArraySize(jget(r.body, "items"));
    mc_reply_free(&r);
    return n;
}

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i])) return false;
    return true;
}

/* ---------------------------------------------------------------- create */

static void test_create_shape(void)
{
    mc_cloud *c = mc_cloud_new(42);
    mc_reply r = create(c, BODY, NULL, T0);
    CU_ASSERT_EQUAL(r.status, 202);
    static const char *const keys[] = {
        "id",   "name",        "state",   "cpu",         "memoryMiB", "diskGiB",   "image",
        "zone", "networkType", "ipCount", "ipAddresses", "tags",      "createdAt", "updatedAt"};
    CU_ASSERT_EQUAL(cJSON_GetArraySize(r.body), 14);
    int k = 0;
    for (const cJSON *m = r.body ? r.body->child : NULL; m && k < 14; m = m->next, k++)
        CU_ASSERT_STRING_EQUAL(m->string, keys[k]);
    const char *id = js(r.body, "id");
    CU_ASSERT(strncmp(id, "i-", 2) == 0 && is_hex(id + 2, 12));
    CU_ASSERT_STRING_EQUAL(js(r.body, "state"), "pending");
    CU_ASSERT_EQUAL(jnum(r.body, "cpu"), 2);
    CU_ASSERT_EQUAL(jnum(r.body, "memoryMiB"), 4096);
    CU_ASSERT_EQUAL(jnum(r.body, "diskGiB"), 40);
    CU_ASSERT_STRING_EQUAL(js(r.body, "networkType"), "standard");
    CU_ASSERT_EQUAL(jnum(r.body, "ipCount"), 1);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r.body, "ipAddresses")), 0);
    CU_ASSERT(cJSON_IsObject(jget(r.body, "tags")));
    CU_ASSERT_STRING_EQUAL(js(r.body, "createdAt"), "2023-11-14T22:13:20.000Z");
    CU_ASSERT(strncmp(r.location, "/v1/operations/op-", 18) == 0 && is_hex(r.location + 18, 12));
    mc_reply o = get_op_of(c, &r, T0);
    CU_ASSERT_EQUAL(o.status, 200);
    CU_ASSERT_STRING_EQUAL(js(o.body, "type"), "create");
    CU_ASSERT_STRING_EQUAL(js(o.body, "target"), id);
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "running");
    CU_ASSERT_PTR_NULL(jget(o.body, "doneAt"));
    mc_reply_free(&o);
    mc_reply_free(&r);

    r = create(
        c,
        body_with("db", "sg-1a",
                  "\"networkType\":\"cn2-gia\",\"ipCount\":3,\"tags\":{\"a\":\"1\",\"b\":\"\"}"),
        NULL, T0);
    CU_ASSERT_EQUAL(r.status, 202);
    CU_ASSERT_STRING_EQUAL(js(r.body, "networkType"), "cn2-gia");
    CU_ASSERT_EQUAL(jnum(r.body, "ipCount"), 3);
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "tags"), "a"), "1");
    mc_reply_free(&r);
    mc_cloud_free(c);
}

typedef struct bad_case {
    const char *body;
    const char *code;
    const char *sub;
} bad_case;

static void test_create_validation(void)
{
    char long_name[300], long_tag[400], many_tags[4096];
    memset(long_name, 'x', 257);
    long_name[257] = '\0';
    snprintf(long_tag, sizeof long_tag, "\"tags\":{\"k\":\"%s\"}", long_name);
    size_t used = (size_t)snprintf(many_tags, sizeof many_tags, "\"tags\":{");
    for (int i = 0; i < 65; i++)
        used += (size_t)snprintf(many_tags + used, sizeof many_tags - used, "%s\"k%d\":\"v\"",
                                 i ? "," : "", i);
    snprintf(many_tags + used, sizeof many_tags - used, "}");
    char b_long_name[600], b_long_tag[8192], b_many[8192];
    snprintf(b_long_name, sizeof b_long_name,
             "{\"name\":\"%s\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
             "\"image\":\"debian-12\",\"zone\":\"hk-1a\"}",
             long_name);
    snprintf(b_long_tag, sizeof b_long_tag, "%s", body_with("a", "hk-1a", long_tag));
    snprintf(b_many, sizeof b_many, "%s", body_with("a", "hk-1a", many_tags));

    const bad_case cases[] = {
        {"", "InvalidRequest", "empty"},
        {"   ", "InvalidRequest", "empty"},
        {"{", "InvalidRequest", "malformed JSON at byte"},
        {"{\"name\":\"a\",", "InvalidRequest", "malformed JSON at byte"},
        {"{\"name\" \"a\"}", "InvalidRequest", "malformed JSON at byte 8"},
        {"{} x", "InvalidRequest", "malformed JSON at byte 3"},
        {"[]", "InvalidRequest", "must be a JSON object"},
        {"\"x\"", "InvalidRequest", "must be a JSON object"},
        /* missing required fields */
        {"{\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,\"image\":\"debian-12\",\"zone\":\"hk-1a\"}",
         "InvalidRequest", "missing required field \"name\""},
        {"{\"name\":\"a\",\"memoryMiB\":4096,\"diskGiB\":40,\"image\":\"debian-12\",\"zone\":"
         "\"hk-1a\"}",
         "InvalidRequest", "\"cpu\""},
        {"{\"name\":\"a\",\"cpu\":2,\"diskGiB\":40,\"image\":\"debian-12\",\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"memoryMiB\""},
        {"{\"name\":\"a\",\"cpu\":2,\"memoryMiB\":4096,\"image\":\"debian-12\",\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"diskGiB\""},
        {"{\"name\":\"a\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"image\""},
        {"{\"name\":\"a\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,\"image\":\"debian-12\"}",
         "InvalidRequest", "\"zone\""},
        /* wrong types, naming the field and the expected type */
        {"{\"name\":1,\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,\"image\":\"debian-12\","
         "\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"name\" must be a string, not a number"},
        {"{\"name\":\"a\",\"cpu\":\"2\",\"memoryMiB\":4096,\"diskGiB\":40,\"image\":\"debian-12\","
         "\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"cpu\" must be an integer, not a string"},
        {"{\"name\":\"a\",\"cpu\":1.5,\"memoryMiB\":4096,\"diskGiB\":40,\"image\":\"debian-12\","
         "\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"cpu\" must be an integer"},
        {"{\"name\":\"a\",\"cpu\":2,\"memoryMiB\":true,\"diskGiB\":40,\"image\":\"debian-12\","
         "\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"memoryMiB\" must be an integer, not a boolean"},
        {"{\"name\":\"a\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":null,\"image\":\"debian-12\","
         "\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"diskGiB\" must be an integer, not null"},
        {"{\"name\":\"a\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,\"image\":[],"
         "\"zone\":\"hk-1a\"}",
         "InvalidRequest", "\"image\" must be a string, not an array"},
        {"{\"name\":\"a\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,\"image\":\"debian-12\","
         "\"zone\":{}}",
         "InvalidRequest", "\"zone\" must be a string, not an object"},
        {body_with("a", "hk-1a", "\"networkType\":1"), "InvalidRequest",
         "\"networkType\" must be a string"},
        {NULL, NULL, NULL},
    };
    /* body_with uses one static buffer: the table above may only hold one
     * such entry; the rest are checked one by one below. */
    mc_cloud *c = mc_cloud_new(1);
    for (const bad_case *k = cases; k->body; k++)
        EXPECT_ERR(create(c, k->body, NULL, T0), 400, k->code, k->sub);

    struct {
        const char *extra_or_field;
        const char *code, *sub;
    } more[] = {
        {"\"ipCount\":\"1\"", "InvalidRequest", "\"ipCount\" must be an integer"},
        {"\"tags\":[]", "InvalidRequest", "\"tags\" must be an object"},
        {"\"tags\":{\"a\":1}", "InvalidRequest", "\"tags\""},
        {"\"tags\":{\"\":\"v\"}", "InvalidRequest", "\"tags\""},
        {"\"tags\":{\"a\":\"1\",\"a\":\"2\"}", "InvalidRequest", "appears twice"},
        {"\"ipCount\":0", "InvalidRequest", "\"ipCount\" must be from 1 to 256, got 0"},
        {"\"ipCount\":257", "InvalidRequest", "\"ipCount\""},
        {"\"networkType\":\"fast\"", "InvalidRequest", "\"networkType\" must be one of"},
        {"\"foo\":1", "InvalidRequest", "unknown field \"foo\""},
        {"\"cpu\":4", "InvalidRequest", "\"cpu\" appears twice"},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        EXPECT_ERR(create(c, body_with("a", "hk-1a", more[i].extra_or_field), NULL, T0), 400,
                   more[i].code, more[i].sub);

    struct {
        const char *field, *value, *sub;
    } ranges[] = {
        {"cpu", "0", "\"cpu\" must be from 1 to 128, got 0"},
        {"cpu", "129", "\"cpu\""},
        {"memoryMiB", "255", "\"memoryMiB\" must be from 256"},
        {"diskGiB", "9", "\"diskGiB\" must be from 10 to 65536"},
        {"diskGiB", "65537", "\"diskGiB\""},
        {"name", "\"\"", "\"name\" must be 1 to 256 characters"},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        char b2[512];
        const char *names[] = {"name", "cpu", "memoryMiB", "diskGiB"};
        const char *vals[] = {"\"a\"", "2", "4096", "40"};
        size_t u = (size_t)snprintf(b2, sizeof b2, "{");
        for (int f = 0; f < 4; f++)
            u += (size_t)snprintf(b2 + u, sizeof b2 - u, "\"%s\":%s,", names[f],
                                  strcmp(names[f], ranges[i].field) == 0 ? ranges[i].value
                                                                         : vals[f]);
        snprintf(b2 + u, sizeof b2 - u, "\"image\":\"debian-12\",\"zone\":\"hk-1a\"}");
        EXPECT_ERR(create(c, b2, NULL, T0), 400, "InvalidRequest", ranges[i].sub);
    }
    EXPECT_ERR(create(c, b_long_name, NULL, T0), 400, "InvalidRequest", "\"name\"");
    EXPECT_ERR(create(c, b_long_tag, NULL, T0), 400, "InvalidRequest", "\"tags\"");
    EXPECT_ERR(create(c, b_many, NULL, T0), 400, "InvalidRequest", "more than 64");
    EXPECT_ERR(create(c, body_with("a", "mars-1a", NULL), NULL, T0), 400, "InvalidZone", "hk-1a");
    {
        char b[512];
        snprintf(b, sizeof b,
                 "{\"name\":\"a\",\"cpu\":2,\"memoryMiB\":4096,\"diskGiB\":40,"
                 "\"image\":\"windows-11\",\"zone\":\"hk-1a\"}");
        EXPECT_ERR(create(c, b, NULL, T0), 400, "InvalidImage", "debian-12, debian-13");
    }
    /* Bodies need not be NUL-terminated. */
    char raw[256];
    size_t n = strlen(BODY);
    memcpy(raw, BODY, n);
    raw[n] = '}';
    mc_reply r = mc_api_create_instance(c, raw, n, NULL, T0);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);
    EXPECT_ERR(mc_api_create_instance(c, NULL, 0, NULL, T0), 400, "InvalidRequest", "empty");

    /* None of the refusals changed anything: one instance, one id drawn. */
    CU_ASSERT_EQUAL(list_count(c, NULL, 0, T0), 1);
    mc_reply d = mc_ctl_dump(c, T0);
    CU_ASSERT_EQUAL(jnum(jget(d.body, "counters"), "instances"), 1);
    CU_ASSERT_EQUAL(jnum(jget(d.body, "counters"), "operations"), 1);
    mc_reply_free(&d);
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- lifecycle */

static void test_lifecycle_create(void)
{
    mc_cloud *c = mc_cloud_new(42);
    char id[32];
    mc_reply r = create(c, body_with("a", "hk-1a", "\"ipCount\":3"), NULL, T0);
    snprintf(id, sizeof id, "%s", js(r.body, "id"));
    int64_t due = mc_cloud_next_deadline(c);
    CU_ASSERT(due >= T0 + 300 && due <= T0 + 1000);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, T0 + 299), "pending");
    CU_ASSERT_STRING_EQUAL(state_at(c, id, due - 1), "pending");
    CU_ASSERT_EQUAL(mc_cloud_next_deadline(c), due);
    mc_reply g = mc_api_get_instance(c, id, due);
    CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&g), "state"), "running");
    const cJSON *ips = jget(mc_reply_json_body(&g), "ipAddresses");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(ips), 3);
    for (const cJSON *a = ips ? ips->child : NULL; a; a = a->next)
        CU_ASSERT(strncmp(a->valuestring, "10.", 3) == 0);
    CU_ASSERT(strcmp(cJSON_GetArrayItem(ips, 0)->valuestring,
                     cJSON_GetArrayItem(ips, 1)->valuestring) != 0);
    /* The transition is stamped with its deadline, not the observer's time. */
    char want[CSL_RFC3339_LEN];
    csl_rfc3339_ms(due, want);
    CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&g), "updatedAt"), want);
    mc_reply_free(&g);
    CU_ASSERT_EQUAL(mc_cloud_next_deadline(c), INT64_MAX);
    mc_reply o = get_op_of(c, &r, due + 5000);
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "done");
    CU_ASSERT_STRING_EQUAL(js(o.body, "doneAt"), want);
    mc_reply_free(&o);
    mc_reply_free(&r);

    /* A later observer sees the same stamp; time never runs backwards. */
    mc_cloud *c2 = mc_cloud_new(42);
    char id2[32];
    create_id(c2, body_with("a", "hk-1a", "\"ipCount\":3"), NULL, T0, id2);
    CU_ASSERT_STRING_EQUAL(id, id2);
    g = mc_api_get_instance(c2, id2, T0 + 60000);
    CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&g), "updatedAt"), want);
    mc_reply_free(&g);
    CU_ASSERT_STRING_EQUAL(state_at(c2, id2, T0), "running");
    mc_cloud_free(c2);
    mc_cloud_free(c);
}

/* Tags no JSON printer may get wrong: quotes and backslashes in keys and
 * values, every kind of control character, UTF-8 of 2, 3 and 4 bytes. */
#define WEIRD_TAGS                                                                                 \
    "\"tags\":{\"q\\\"k\\\\\":\"a\\\"b\\\\c\",\"ctl\":\"\\u0001\\u001f\\b\\f\\n\\r\\t\\u007f\","   \
    "\"utf8\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"k\\u00e9\":\"\",\"s\":\"a/b<>&'\"}"

/* GET id answers text: valid JSON, the very bytes cJSON prints for the
 * tree view of the same instance at the same time (a list's item: the list
 * still builds trees), so it also parses to an equal tree. Marks the state
 * it showed in seen. */
static void check_text_view(mc_cloud *c, const char *id, int64_t now, bool seen[MC_STATE_COUNT])
{
    mc_reply g = mc_api_get_instance(c, id, now);
    CU_ASSERT_EQUAL(g.status, 200);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g.text);
    CU_ASSERT_PTR_NULL(g.body);
    CU_ASSERT_EQUAL(strlen(g.text), g.text_len);
    const char *end = NULL;
    cJSON *parsed = cJSON_ParseWithOpts(g.text, &end, 1);
    CU_ASSERT_PTR_NOT_NULL(parsed);
    CU_ASSERT(cJSON_IsObject(parsed));

    mc_kv q[] = {{"limit", "500"}};
    mc_reply l = mc_api_list_instances(c, q, 1, now);
    const cJSON *items = jget(l.body, "items"), *item = NULL;
    for (const cJSON *e = items ? items->child : NULL; e; e = e->next)
        if (strcmp(js(e, "id"), id) == 0) item = e;
    CU_ASSERT_PTR_NOT_NULL(item);
    CU_ASSERT(cJSON_Compare(parsed, item, 1));
    char *printed = item ? cJSON_PrintUnformatted(item) : NULL;
    CU_ASSERT(printed && strcmp(printed, g.text) == 0);
    if (printed && strcmp(printed, g.text) != 0)
        fprintf(stderr, "\n  text: %s\n  tree: %s\n", g.text, printed);
    CU_ASSERT(cJSON_Compare(mc_reply_json_body(&g), item, 1));

    /* Both views could agree on a wrong value: check the tags decode to what
     * was sent. */
    const cJSON *tags = jget(parsed, "tags");
    CU_ASSERT_STRING_EQUAL(js(tags, "q\"k\\"), "a\"b\\c");
    CU_ASSERT_STRING_EQUAL(js(tags, "ctl"), "\x01\x1f\b\f\n\r\t\x7f");
    CU_ASSERT_STRING_EQUAL(js(tags, "utf8"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    CU_ASSERT_PTR_NOT_NULL(jget(tags, "k\xc3\xa9"));
    CU_ASSERT(strncmp(js(parsed, "name"), "w \"q\" \\ \x01 \xc3\xa9", 12) == 0);
    CU_ASSERT(strstr(g.text, "\\u0001\\u001f\\b\\f\\n\\r\\t\x7f") != NULL);

    mc_state st;
    if (mc_state_parse(js(parsed, "state"), &st) == 0) seen[st] = true;
    free(printed);
    cJSON_Delete(parsed);
    mc_reply_free(&l);
    mc_reply_free(&g);
}

/* The GET text view matches the tree view in every state, with awkward
 * strings, many addresses, and timestamps that change. */
static void test_text_view(void)
{
    mc_cloud *c = mc_cloud_new(77);
    mc_reply r = set_json(mc_ctl_set_timings, c,
                          "{\"create\":\"1s\",\"resize\":\"1s\",\"stop\":\"1s\",\"start\":\"1s\","
                          "\"reboot\":\"1s\",\"delete\":\"1s\"}");
    CU_ASSERT_EQUAL(r.status, 200);
    mc_reply_free(&r);
    enum { N = 9 };
    char ids[N][32];
    for (int k = 0; k < N - 1; k++) {
        char extra[1024];
        snprintf(extra, sizeof extra, "\"ipCount\":%d,%s", k % 2 ? 256 : 1 + k, WEIRD_TAGS);
        create_id(c,
                  body_with("w \\\"q\\\" \\\\ \\u0001 \xc3\xa9", k % 2 ? "hk-1b" : "hk-1a", extra),
                  NULL, T0, ids[k]);
    }
    int64_t t1 = T0 + 1000, t2 = T0 + 2000;
    /* ids[0] grows to the largest size and runs; 3 and 4 are stopped first. */
    r = resize(c, ids[0], "{\"memoryMiB\":16777216,\"diskGiB\":65536}", t1);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);
    for (int k = 3; k <= 4; k++) {
        r = action(c, ids[k], "stop", t1);
        CU_ASSERT_EQUAL(r.status, 202);
        mc_reply_free(&r);
    }
    CU_ASSERT_STRING_EQUAL(state_at(c, ids[3], t2), "stopped");
    r = resize(c, ids[1], "{\"cpu\":4}", t2);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);
    static const char *const acts[][2] = {{"2", "stop"}, {"4", "start"}, {"5", "reboot"}};
    for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
        r = action(c, ids[atoi(acts[k][0])], acts[k][1], t2);
        CU_ASSERT_EQUAL(r.status, 202);
        mc_reply_free(&r);
    }
    r = mc_api_delete_instance(c, ids[6], t2);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);
    char sel[128];
    snprintf(sel, sizeof sel, "{\"ids\":[\"%s\"]}", ids[7]);
    r = crash(c, sel, t2);
    CU_ASSERT_EQUAL(r.status, 200);
    mc_reply_free(&r);
    create_id(c, body_with("w \\\"q\\\" \\\\ \\u0001 \xc3\xa9 pending", "hk-1a", WEIRD_TAGS), NULL,
              t2, ids[N - 1]);

    bool seen[MC_STATE_COUNT] = {false};
    for (int k = 0; k < N; k++) check_text_view(c, ids[k], t2 + 500, seen);
    for (int st = 0; st < MC_STATE_COUNT; st++) {
        if (!seen[st]) fprintf(stderr, "\n  state %s not seen\n", mc_state_name((mc_state)st));
        CU_ASSERT(seen[st]);
    }
    /* Again after the transitions: updatedAt moved, the cached text must too. */
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < N; k++)
        if (k != 6) check_text_view(c, ids[k], t2 + 1000, seen);
    CU_ASSERT(seen[MC_RUNNING] && seen[MC_STOPPED] && seen[MC_CRASHED]);
    char want[CSL_RFC3339_LEN];
    csl_rfc3339_ms(t2 + 1000, want);
    r = mc_api_get_instance(c, ids[1], t2 + 1000);
    CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&r), "updatedAt"), want);
    CU_ASSERT_EQUAL(jnum(mc_reply_json_body(&r), "cpu"), 4);
    mc_reply_free(&r);
    EXPECT_ERR(mc_api_get_instance(c, ids[6], t2 + 1000), 404, "NotFound", ids[6]);
    mc_cloud_free(c);
}

/* Runs an instance to running; returns the time it got there. */
static int64_t running_instance(mc_cloud *c, const char *body, int64_t now, char *id)
{
    create_id(c, body, NULL, now, id);
    int64_t due = mc_cloud_next_deadline(c);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, due), "running");
    return due;
}

static void test_power_actions(void)
{
    mc_cloud *c = mc_cloud_new(5);
    char id[32], pend[32];
    int64_t t = running_instance(c, BODY, T0, id);

    EXPECT_ERR(action(c, id, "start", t), 409, "InvalidState", "running");
    EXPECT_ERR(action(c, id, "hibernate", t), 404, "NotFound", "start, stop, reboot");
    EXPECT_ERR(action(c, "i-000000000000", "stop", t), 404, "NotFound", "i-000000000000");

    mc_reply r = action(c, id, "stop", t);
    CU_ASSERT_EQUAL(r.status, 202);
    CU_ASSERT_STRING_EQUAL(js(r.body, "state"), "stopping");
    mc_reply again = action(c, id, "stop", t + 1);
    CU_ASSERT_EQUAL(again.status, 202);
    CU_ASSERT_STRING_EQUAL(again.location, r.location);
    mc_reply_free(&again);
    EXPECT_ERR(action(c, id, "start", t + 1), 409, "InvalidState", "stopping");
    EXPECT_ERR(action(c, id, "reboot", t + 1), 409, "InvalidState", "stopping");
    int64_t due = mc_cloud_next_deadline(c);
    CU_ASSERT(due >= t + 100 && due <= t + 300);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, due), "stopped");
    mc_reply o = get_op_of(c, &r, due);
    CU_ASSERT_STRING_EQUAL(js(o.body, "type"), "stop");
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "done");
    mc_reply_free(&o);
    mc_reply_free(&r);

    EXPECT_ERR(action(c, id, "stop", due), 409, "InvalidState", "stopped");
    EXPECT_ERR(action(c, id, "reboot", due), 409, "InvalidState", "stopped");
    r = action(c, id, "start", due);
    CU_ASSERT_EQUAL(r.status, 202);
    CU_ASSERT_STRING_EQUAL(js(r.body, "state"), "starting");
    mc_reply_free(&r);
    t = mc_cloud_next_deadline(c);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, t), "running");

    r = action(c, id, "reboot", t);
    CU_ASSERT_EQUAL(r.status, 202);
    CU_ASSERT_STRING_EQUAL(js(r.body, "state"), "rebooting");
    mc_reply_free(&r);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, mc_cloud_next_deadline(c)), "running");

    create_id(c, body_with("p", "hk-1a", NULL), NULL, t, pend);
    EXPECT_ERR(action(c, pend, "stop", t), 409, "InvalidState", "pending");
    EXPECT_ERR(action(c, pend, "reboot", t), 409, "InvalidState", "pending");
    mc_cloud_free(c);
}

/* PATCH "tags" is a JSON merge patch: a string sets, null removes. A
 * refused resize leaves the tags alone too. */
static void test_tag_patch(void)
{
    mc_cloud *c = mc_cloud_new(6);
    char id[32];
    int64_t t = running_instance(c, BODY, T0, id);
    mc_reply r = resize(c, id, "{\"tags\":{\"owner\":\"ops\",\"env\":\"prod\"}}", t);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "tags"), "owner"), "ops");
    CU_ASSERT_STRING_EQUAL(js(r.body, "state"), "running");
    mc_reply_free(&r);

    r = resize(c, id, "{\"tags\":{\"owner\":null}}", t);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_PTR_NULL(jget(jget(r.body, "tags"), "owner"));
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "tags"), "env"), "prod");
    mc_reply_free(&r);

    EXPECT_ERR(resize(c, id, "{\"tags\":{\"env\":1}}", t), 400, "InvalidRequest", "string");
    EXPECT_ERR(resize(c, id, "{\"tags\":[]}", t), 400, "InvalidRequest", "tags");
    EXPECT_ERR(resize(c, id, "{\"diskGiB\":10,\"tags\":{\"env\":\"dev\"}}", t), 400,
               "DiskShrinkNotAllowed", "40 to 10");
    mc_reply g = mc_api_get_instance(c, id, t);
    CU_ASSERT_STRING_EQUAL(js(jget(mc_reply_json_body(&g), "tags"), "env"), "prod");
    mc_reply_free(&g);

    /* Tags and a size together: the tags change at once, the size later. */
    r = resize(c, id, "{\"cpu\":4,\"tags\":{\"env\":\"dev\"}}", t);
    CU_ASSERT_EQUAL(r.status, 202);
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "tags"), "env"), "dev");
    CU_ASSERT_EQUAL(jnum(r.body, "cpu"), 2);
    mc_reply_free(&r);

    /* Tag changes count as changes of persistent state. */
    uint64_t gen = mc_cloud_generation(c);
    r = resize(c, id, "{\"tags\":{\"team\":\"a\"}}", t + 1);
    CU_ASSERT_EQUAL(r.status, 200);
    mc_reply_free(&r);
    CU_ASSERT(mc_cloud_generation(c) > gen);
    gen = mc_cloud_generation(c);
    r = resize(c, id, "{\"tags\":{\"team\":\"a\"}}", t + 1);
    mc_reply_free(&r);
    CU_ASSERT_EQUAL(mc_cloud_generation(c), gen);
    mc_cloud_free(c);
}

static void test_resize(void)
{
    mc_cloud *c = mc_cloud_new(6);
    char id[32], pend[32];
    int64_t t = running_instance(c, BODY, T0, id);

    EXPECT_ERR(resize(c, "i-nope", "{\"cpu\":4}", t), 404, "NotFound", "i-nope");
    EXPECT_ERR(resize(c, id, "{}", t), 400, "InvalidRequest", "nothing to change");
    EXPECT_ERR(resize(c, id, "", t), 400, "InvalidRequest", "empty");
    EXPECT_ERR(resize(c, id, "{\"cpu\":", t), 400, "InvalidRequest", "malformed JSON");
    EXPECT_ERR(resize(c, id, "{\"name\":\"b\"}", t), 400, "InvalidRequest",
               "unknown field \"name\"");
    EXPECT_ERR(resize(c, id, "{\"cpu\":0}", t), 400, "InvalidRequest", "\"cpu\"");
    EXPECT_ERR(resize(c, id, "{\"memoryMiB\":\"8Gi\"}", t), 400, "InvalidRequest",
               "\"memoryMiB\" must be an integer");
    EXPECT_ERR(resize(c, id, "{\"diskGiB\":39}", t), 400, "DiskShrinkNotAllowed", "40 to 39");

    mc_reply r = resize(c, id, "{\"cpu\":2,\"diskGiB\":40}", t);
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(js(r.body, "state"), "running");
    CU_ASSERT_STRING_EQUAL(r.location, "");
    mc_reply_free(&r);

    r = resize(c, id, "{\"cpu\":4,\"diskGiB\":80}", t);
    CU_ASSERT_EQUAL(r.status, 202);
    CU_ASSERT_STRING_EQUAL(js(r.body, "state"), "resizing");
    CU_ASSERT_EQUAL(jnum(r.body, "cpu"), 2); /* the old size until done */
    mc_reply same = resize(c, id, "{\"diskGiB\":80,\"cpu\":4}", t + 1);
    CU_ASSERT_EQUAL(same.status, 202);
    CU_ASSERT_STRING_EQUAL(same.location, r.location);
    mc_reply_free(&same);
    EXPECT_ERR(resize(c, id, "{\"cpu\":8}", t + 1), 409, "InvalidState", "resizing");
    EXPECT_ERR(action(c, id, "stop", t + 1), 409, "InvalidState", "resizing");
    int64_t due = mc_cloud_next_deadline(c);
    CU_ASSERT(due >= t + 200 && due <= t + 600);
    mc_reply g = mc_api_get_instance(c, id, due);
    CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&g), "state"), "running");
    CU_ASSERT_EQUAL(jnum(mc_reply_json_body(&g), "cpu"), 4);
    CU_ASSERT_EQUAL(jnum(mc_reply_json_body(&g), "diskGiB"), 80);
    CU_ASSERT_EQUAL(jnum(mc_reply_json_body(&g), "memoryMiB"), 4096);
    mc_reply_free(&g);
    mc_reply o = get_op_of(c, &r, due);
    CU_ASSERT_STRING_EQUAL(js(o.body, "type"), "resize");
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "done");
    mc_reply_free(&o);
    mc_reply_free(&r);

    /* From stopped: resizing, then running. */
    r = action(c, id, "stop", due);
    mc_reply_free(&r);
    t = mc_cloud_next_deadline(c);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, t), "stopped");
    r = resize(c, id, "{\"memoryMiB\":8192}", t);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);
    t = mc_cloud_next_deadline(c);
    g = mc_api_get_instance(c, id, t);
    CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&g), "state"), "running");
    CU_ASSERT_EQUAL(jnum(mc_reply_json_body(&g), "memoryMiB"), 8192);
    mc_reply_free(&g);

    create_id(c, body_with("p", "hk-1a", NULL), NULL, t, pend);
    EXPECT_ERR(resize(c, pend, "{\"cpu\":4}", t), 409, "InvalidState", "pending");

    /* Deleting mid-resize fails the resize operation. */
    r = resize(c, id, "{\"cpu\":8}", t);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply d = mc_api_delete_instance(c, id, t + 1);
    CU_ASSERT_EQUAL(d.status, 202);
    mc_reply_free(&d);
    o = get_op_of(c, &r, t + 1);
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "failed");
    CU_ASSERT_STRING_EQUAL(js(jget(o.body, "error"), "code"), "InstanceDeleted");
    mc_reply_free(&o);
    mc_reply_free(&r);
    mc_cloud_free(c);
}

static void test_delete(void)
{
    mc_cloud *c = mc_cloud_new(7);
    char id[32];
    mc_reply cr = create(c, BODY, NULL, T0);
    snprintf(id, sizeof id, "%s", js(cr.body, "id"));
    mc_reply d = mc_api_delete_instance(c, id, T0 + 10);
    CU_ASSERT_EQUAL(d.status, 202);
    CU_ASSERT_STRING_EQUAL(js(d.body, "state"), "deleting");
    mc_reply o = get_op_of(c, &cr, T0 + 10);
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "failed");
    CU_ASSERT_STRING_EQUAL(js(jget(o.body, "error"), "code"), "InstanceDeleted");
    mc_reply_free(&o);
    mc_reply d2 = mc_api_delete_instance(c, id, T0 + 20);
    CU_ASSERT_EQUAL(d2.status, 202);
    CU_ASSERT_STRING_EQUAL(d2.location, d.location);
    mc_reply_free(&d2);
    EXPECT_ERR(action(c, id, "reboot", T0 + 20), 409, "InvalidState", "deleting");
    CU_ASSERT_EQUAL(list_count(c, NULL, 0, T0 + 20), 1);
    int64_t due = mc_cloud_next_deadline(c);
    CU_ASSERT(due >= T0 + 110 && due <= T0 + 410);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, due - 1), "deleting");
    EXPECT_ERR(mc_api_get_instance(c, id, due), 404, "NotFound", id);
    CU_ASSERT_EQUAL(list_count(c, NULL, 0, due), 0);
    EXPECT_ERR(mc_api_delete_instance(c, id, due), 404, "NotFound", id);
    o = get_op_of(c, &d, due);
    CU_ASSERT_STRING_EQUAL(js(o.body, "type"), "delete");
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "done");
    mc_reply_free(&o);
    /* Finished operations are forgotten a day after they end. */
    EXPECT_ERR(get_op_of(c, &d, due + MC_OPERATION_TTL_MS), 404, "NotFound", "op-");
    mc_reply_free(&d);
    mc_reply_free(&cr);
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- idempotency */

static void test_idempotency(void)
{
    mc_cloud *c = mc_cloud_new(8);
    mc_reply a = create(c, BODY, "uid-1", T0);
    CU_ASSERT_EQUAL(a.status, 202);
    const char *id = js(a.body, "id");
    /* Same meaning, other spelling: key order and spacing do not matter. */
    mc_reply b = create(c,
                        "{ \"zone\":\"hk-1a\", \"image\":\"debian-12\", \"diskGiB\":40, "
                        "\"memoryMiB\":4096, \"cpu\":2, \"name\":\"web-1\" }",
                        "uid-1", T0 + 5);
    CU_ASSERT_EQUAL(b.status, 200);
    CU_ASSERT_STRING_EQUAL(js(b.body, "id"), id);
    CU_ASSERT_STRING_EQUAL(js(b.body, "state"), "pending");
    CU_ASSERT_STRING_EQUAL(b.location, a.location);
    mc_reply_free(&b);
    CU_ASSERT_EQUAL(list_count(c, NULL, 0, T0 + 5), 1);

    EXPECT_ERR(create(c, body_with("web-2", "hk-1a", NULL), "uid-1", T0 + 6), 409,
               "IdempotencyMismatch", "uid-1");
    /* Omitting a default is another body. */
    EXPECT_ERR(create(c, body_with("web-1", "hk-1a", "\"ipCount\":1"), "uid-1", T0 + 6), 409,
               "IdempotencyMismatch", "uid-1");
    /* A key belongs to its route. */
    EXPECT_ERR(mc_api_create_snapshot(c, id, "{}", 2, "uid-1", T0 + 6), 409, "IdempotencyMismatch",
               "POST /v1/instances");
    EXPECT_ERR(create(c, BODY, "", T0), 400, "InvalidRequest", "Idempotency-Key");
    char long_key[300];
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    EXPECT_ERR(create(c, BODY, long_key, T0), 400, "InvalidRequest", "Idempotency-Key");
    EXPECT_ERR(create(c, BODY, "bad\nkey", T0), 400, "InvalidRequest", "Idempotency-Key");

    /* A refused create records nothing: the key stays free. */
    EXPECT_ERR(create(c, body_with("x", "mars-1a", NULL), "uid-2", T0 + 7), 400, "InvalidZone",
               NULL);
    mc_reply x = create(c, body_with("x", "hk-1b", NULL), "uid-2", T0 + 8);
    CU_ASSERT_EQUAL(x.status, 202);
    mc_reply_free(&x);

    int64_t t = T0 + 2000;
    b = create(c, BODY, "uid-1", t);
    CU_ASSERT_EQUAL(b.status, 200);
    CU_ASSERT_STRING_EQUAL(js(b.body, "state"), "running");
    mc_reply_free(&b);

    /* After deletion: the last view, state "deleted", same operation. */
    mc_reply d = mc_api_delete_instance(c, id, t);
    mc_reply_free(&d);
    t += 1000;
    EXPECT_ERR(mc_api_get_instance(c, id, t), 404, "NotFound", NULL);
    b = create(c, BODY, "uid-1", t);
    CU_ASSERT_EQUAL(b.status, 200);
    CU_ASSERT_STRING_EQUAL(js(b.body, "id"), id);
    CU_ASSERT_STRING_EQUAL(js(b.body, "state"), "deleted");
    CU_ASSERT_STRING_EQUAL(b.location, a.location);
    mc_reply_free(&b);
    CU_ASSERT_EQUAL(list_count(c, NULL, 0, t), 1);
    EXPECT_ERR(create(c, body_with("zzz", "hk-1a", NULL), "uid-1", t), 409, "IdempotencyMismatch",
               NULL);

    /* A day after first use the key is forgotten: a new instance. */
    b = create(c, BODY, "uid-1", T0 + MC_IDEMPOTENCY_TTL_MS);
    CU_ASSERT_EQUAL(b.status, 202);
    CU_ASSERT_STRING_NOT_EQUAL(js(b.body, "id"), id);
    mc_reply_free(&b);
    mc_reply_free(&a);
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- capacity */

static void test_capacity(void)
{
    mc_cloud *c = mc_cloud_new(9);
    char a[32], b[32];
    mc_reply r = set_json(mc_ctl_set_capacity, c, "{\"zones\":{\"hk-1a\":2}}");
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_EQUAL(jnum(jget(jget(r.body, "zones"), "hk-1a"), "limit"), 2);
    CU_ASSERT(cJSON_IsNull(jget(jget(jget(r.body, "zones"), "hk-1b"), "limit")));
    mc_reply_free(&r);
    create_id(c, body_with("a", "hk-1a", NULL), NULL, T0, a);
    create_id(c, body_with("b", "hk-1a", NULL), NULL, T0, b);
    EXPECT_ERR(create(c, body_with("c", "hk-1a", NULL), "k", T0), 409, "InsufficientCapacity",
               "hk-1a");
    r = create(c, body_with("c", "hk-1b", NULL), NULL, T0);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);
    r = mc_ctl_get_capacity(c, T0);
    CU_ASSERT_EQUAL(jnum(jget(jget(r.body, "zones"), "hk-1a"), "used"), 2);
    CU_ASSERT_EQUAL(jnum(jget(jget(r.body, "zones"), "hk-1b"), "used"), 1);
    mc_reply_free(&r);

    /* Deleting instances count until gone. */
    r = mc_api_delete_instance(c, a, T0 + 1);
    mc_reply_free(&r);
    EXPECT_ERR(create(c, body_with("c", "hk-1a", NULL), NULL, T0 + 1), 409, "InsufficientCapacity",
               NULL);
    /* The refused request with key "k" recorded nothing. */
    r = create(c, body_with("c", "hk-1a", NULL), "k", T0 + 5000);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);

    EXPECT_ERR(set_json(mc_ctl_set_capacity, c, "{\"zones\":{\"mars-1a\":1}}"), 400, "InvalidZone",
               "mars-1a");
    EXPECT_ERR(set_json(mc_ctl_set_capacity, c, "{\"zones\":{\"hk-1a\":-1}}"), 400,
               "InvalidRequest", "hk-1a");
    EXPECT_ERR(set_json(mc_ctl_set_capacity, c, "{\"zones\":{\"hk-1a\":\"5\"}}"), 400,
               "InvalidRequest", "hk-1a");
    EXPECT_ERR(set_json(mc_ctl_set_capacity, c, "{\"limits\":{}}"), 400, "InvalidRequest",
               "\"limits\"");
    EXPECT_ERR(set_json(mc_ctl_set_capacity, c, "{\"zones\":[]}"), 400, "InvalidRequest", "zones");
    EXPECT_ERR(set_json(mc_ctl_set_capacity, c, "nope"), 400, "InvalidRequest", "malformed");
    r = set_json(mc_ctl_set_capacity, c, "{\"zones\":{\"hk-1a\":null}}");
    CU_ASSERT_EQUAL(r.status, 200);
    mc_reply_free(&r);
    r = create(c, body_with("d", "hk-1a", NULL), NULL, T0 + 5000);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- lists */

/* Walks every page of a filtered list; returns the ids in order. */
static size_t walk(mc_cloud *c, mc_kv *q, size_t nq, const char *limit, char ids[][32], size_t max,
                   int64_t now)
{
    mc_kv args[8];
    char tok[64] = "";
    size_t n = 0;
    for (int pages = 0; pages < 100; pages++) {
        size_t na = 0;
        for (size_t i = 0; i < nq; i++) args[na++] = q[i];
        args[na++] = (mc_kv){"limit", limit};
        if (tok[0]) args[na++] = (mc_kv){"pageToken", tok};
        mc_reply r = mc_api_list_instances(c, args, na, now);
        CU_ASSERT_EQUAL_FATAL(r.status, 200);
        const cJSON *items = jget(r.body, "items");
        CU_ASSERT(cJSON_GetArraySize(items) <= atoi(limit));
        for (const cJSON *i = items->child; i && n < max; i = i->next)
            snprintf(ids[n++], 32, "%s", js(i, "id"));
        const cJSON *next = jget(r.body, "nextPageToken");
        if (next) snprintf(tok, sizeof tok, "%s", next->valuestring);
        mc_reply_free(&r);
        if (!next) break;
    }
    return n;
}

static void test_pagination(void)
{
    mc_cloud *c = mc_cloud_new(10);
    char all[25][32], got[40][32];
    for (int i = 0; i < 25; i++) {
        char name[16], extra[128];
        snprintf(name, sizeof name, "n%d", i);
        snprintf(extra, sizeof extra, "\"tags\":{\"env\":\"%s\",\"team\":\"%s\"}",
                 i % 3 == 0 ? "prod" : "dev", i % 2 ? "b" : "a");
        create_id(c, body_with(name, i % 2 ? "hk-1b" : "hk-1a", extra), NULL, T0 + i, all[i]);
    }
    size_t n = walk(c, NULL, 0, "7", got, 40, T0 + 100);
    CU_ASSERT_EQUAL(n, 25);
    for (size_t i = 0; i < n && i < 25; i++) CU_ASSERT_STRING_EQUAL(got[i], all[i]);
    CU_ASSERT_EQUAL(walk(c, NULL, 0, "25", got, 40, T0 + 100), 25);
    CU_ASSERT_EQUAL(walk(c, NULL, 0, "500", got, 40, T0 + 100), 25);
    CU_ASSERT_EQUAL(walk(c, NULL, 0, "1", got, 40, T0 + 100), 25);

    mc_kv zq[] = {{"zone", "hk-1a"}};
    n = walk(c, zq, 1, "4", got, 40, T0 + 100);
    CU_ASSERT_EQUAL(n, 13);
    for (size_t i = 0; i < n; i++) CU_ASSERT_STRING_EQUAL(got[i], all[2 * i]);

    mc_kv tq[] = {{"tag", "env=prod"}, {"tag", "team=a"}};
    n = walk(c, tq, 2, "2", got, 40, T0 + 100);
    CU_ASSERT_EQUAL(n, 5); /* i ≡ 0 mod 6: 0, 6, 12, 18, 24 */
    for (size_t i = 0; i < n; i++) CU_ASSERT_STRING_EQUAL(got[i], all[6 * i]);

    /* Deleting across pages neither repeats nor skips the rest. */
    mc_kv lim[] = {{"limit", "10"}};
    mc_reply p1 = mc_api_list_instances(c, lim, 1, T0 + 100);
    char tok[64];
    snprintf(tok, sizeof tok, "%s", js(p1.body, "nextPageToken"));
    mc_reply_free(&p1);
    mc_reply d = mc_api_delete_instance(c, all[9], T0 + 100);
    mc_reply_free(&d);
    d = mc_api_delete_instance(c, all[10], T0 + 100);
    mc_reply_free(&d);
    int64_t later = T0 + 10000;
    mc_kv q2[] = {{"limit", "10"}, {"pageToken", tok}};
    mc_reply p2 = mc_api_list_instances(c, q2, 2, later);
    CU_ASSERT_EQUAL(p2.status, 200);
    CU_ASSERT_STRING_EQUAL(js(cJSON_GetArrayItem(jget(p2.body, "items"), 0), "id"), all[11]);
    mc_reply_free(&p2);

    /* state filter: everything is running by now, two are gone. */
    mc_kv sq[] = {{"state", "running"}};
    CU_ASSERT_EQUAL(list_count(c, sq, 1, later), 23);
    mc_kv pq[] = {{"state", "pending"}};
    CU_ASSERT_EQUAL(list_count(c, pq, 1, later), 0);

    struct {
        mc_kv q;
        const char *code, *sub;
    } bad[] = {
        {{"pageToken", "garbage"}, "InvalidPageToken", "garbage"},
        {{"pageToken", ""}, "InvalidPageToken", NULL},
        {{"pageToken", "00000000000000050000"}, "InvalidPageToken", NULL},
        {{"limit", "0"}, "InvalidRequest", "limit"},
        {{"limit", "501"}, "InvalidRequest", "limit"},
        {{"limit", "ten"}, "InvalidRequest", "limit"},
        {{"limit", "5x"}, "InvalidRequest", "limit"},
        {{"state", "Running"}, "InvalidRequest", "state"},
        {{"zone", "mars-1a"}, "InvalidZone", "mars-1a"},
        {{"tag", "env"}, "InvalidRequest", "key=value"},
        {{"tag", "=x"}, "InvalidRequest", "key=value"},
        {{"colour", "red"}, "InvalidRequest", "unknown argument \"colour\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT_ERR(mc_api_list_instances(c, &bad[i].q, 1, later), 400, bad[i].code, bad[i].sub);
    /* A tampered token: one hex digit changed. */
    tok[15] = tok[15] == '0' ? '1' : '0';
    mc_kv tq2[] = {{"pageToken", tok}};
    EXPECT_ERR(mc_api_list_instances(c, tq2, 1, later), 400, "InvalidPageToken", NULL);
    mc_kv rep[] = {{"zone", "hk-1a"}, {"zone", "hk-1b"}};
    EXPECT_ERR(mc_api_list_instances(c, rep, 2, later), 400, "InvalidRequest", "repeated");
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- snapshots */

static void test_snapshots(void)
{
    mc_cloud *c = mc_cloud_new(11);
    char id[32], pend[32], sid[32];
    int64_t t = running_instance(c, BODY, T0, id);
    const char *sb = "{\"name\":\"nightly\",\"tags\":{\"kind\":\"backup\"}}";
    mc_reply s = mc_api_create_snapshot(c, id, sb, strlen(sb), "snap-key", t);
    CU_ASSERT_EQUAL(s.status, 202);
    snprintf(sid, sizeof sid, "%s", js(s.body, "id"));
    CU_ASSERT(strncmp(sid, "snap-", 5) == 0 && is_hex(sid + 5, 12));
    CU_ASSERT_STRING_EQUAL(js(s.body, "instanceId"), id);
    CU_ASSERT_STRING_EQUAL(js(s.body, "name"), "nightly");
    CU_ASSERT_STRING_EQUAL(js(s.body, "state"), "creating");
    CU_ASSERT_EQUAL(jnum(s.body, "sizeGiB"), 40);
    CU_ASSERT_STRING_EQUAL(js(jget(s.body, "tags"), "kind"), "backup");
    CU_ASSERT(strncmp(s.location, "/v1/operations/op-", 18) == 0);
    mc_reply again = mc_api_create_snapshot(c, id, sb, strlen(sb), "snap-key", t + 1);
    CU_ASSERT_EQUAL(again.status, 200);
    CU_ASSERT_STRING_EQUAL(js(again.body, "id"), sid);
    CU_ASSERT_STRING_EQUAL(again.location, s.location);
    mc_reply_free(&again);
    EXPECT_ERR(mc_api_create_snapshot(c, id, "{}", 2, "snap-key", t + 1), 409,
               "IdempotencyMismatch", NULL);
    int64_t due = mc_cloud_next_deadline(c);
    CU_ASSERT(due >= t + 200 && due <= t + 800);
    mc_reply g = mc_api_get_snapshot(c, sid, due);
    CU_ASSERT_STRING_EQUAL(js(g.body, "state"), "available");
    mc_reply_free(&g);
    mc_reply o = get_op_of(c, &s, due);
    CU_ASSERT_STRING_EQUAL(js(o.body, "type"), "snapshot");
    CU_ASSERT_STRING_EQUAL(js(o.body, "target"), sid);
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "done");
    mc_reply_free(&o);

    /* Defaults: empty body, name is the id. */
    mc_reply s2 = mc_api_create_snapshot(c, id, NULL, 0, NULL, due);
    CU_ASSERT_EQUAL(s2.status, 202);
    CU_ASSERT_STRING_EQUAL(js(s2.body, "name"), js(s2.body, "id"));
    mc_reply_free(&s2);
    EXPECT_ERR(mc_api_create_snapshot(c, id, "{\"size\":1}", 10, NULL, due), 400, "InvalidRequest",
               "\"size\"");
    EXPECT_ERR(mc_api_create_snapshot(c, id, "{\"name\":5}", 10, NULL, due), 400, "InvalidRequest",
               "\"name\"");
    EXPECT_ERR(mc_api_create_snapshot(c, "i-none", NULL, 0, NULL, due), 404, "NotFound", "i-none");
    create_id(c, body_with("p", "hk-1a", NULL), NULL, due, pend);
    EXPECT_ERR(mc_api_create_snapshot(c, pend, NULL, 0, NULL, due), 409, "InvalidState", "pending");

    /* Lists: by instance, paginated. */
    mc_kv q[] = {{"instance", id}, {"limit", "1"}};
    mc_reply l = mc_api_list_snapshots(c, q, 2, due);
    CU_ASSERT_EQUAL(l.status, 200);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(l.body, "items")), 1);
    CU_ASSERT_STRING_EQUAL(js(cJSON_GetArrayItem(jget(l.body, "items"), 0), "id"), sid);
    const char *tok = js(l.body, "nextPageToken");
    mc_kv q2[] = {{"instance", id}, {"pageToken", tok}};
    mc_reply l2 = mc_api_list_snapshots(c, q2, 2, due);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(l2.body, "items")), 1);
    CU_ASSERT_PTR_NULL(jget(l2.body, "nextPageToken"));
    mc_reply_free(&l2);
    mc_reply_free(&l);
    mc_kv bq[] = {{"zone", "hk-1a"}};
    EXPECT_ERR(mc_api_list_snapshots(c, bq, 1, due), 400, "InvalidRequest", "\"zone\"");
    mc_kv tq[] = {{"pageToken", "zz"}};
    EXPECT_ERR(mc_api_list_snapshots(c, tq, 1, due), 400, "InvalidPageToken", NULL);

    /* Snapshots outlive their instance. */
    mc_reply d = mc_api_delete_instance(c, id, due);
    mc_reply_free(&d);
    int64_t later = due + 5000;
    EXPECT_ERR(mc_api_get_instance(c, id, later), 404, "NotFound", NULL);
    mc_kv q3[] = {{"instance", id}};
    l = mc_api_list_snapshots(c, q3, 1, later);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(l.body, "items")), 2);
    mc_reply_free(&l);

    mc_reply del = mc_api_delete_snapshot(c, sid, later);
    CU_ASSERT_EQUAL(del.status, 204);
    CU_ASSERT_PTR_NULL(del.body);
    mc_reply_free(&del);
    EXPECT_ERR(mc_api_get_snapshot(c, sid, later), 404, "NotFound", sid);
    EXPECT_ERR(mc_api_delete_snapshot(c, sid, later), 404, "NotFound", sid);
    /* The key still answers, with the last view. */
    again = mc_api_create_snapshot(c, id, sb, strlen(sb), "snap-key", later);
    CU_ASSERT_EQUAL(again.status, 200);
    CU_ASSERT_STRING_EQUAL(js(again.body, "state"), "deleted");
    mc_reply_free(&again);
    mc_reply_free(&s);
    mc_cloud_free(c);
}

static void test_operations(void)
{
    mc_cloud *c = mc_cloud_new(12);
    EXPECT_ERR(mc_api_get_operation(c, "op-000000000000", T0), 404, "NotFound", "op-000000000000");
    EXPECT_ERR(mc_api_get_operation(c, NULL, T0), 404, "NotFound", NULL);
    char id[32];
    int64_t t = running_instance(c, BODY, T0, id);
    mc_reply r = action(c, id, "reboot", t);
    mc_reply o = get_op_of(c, &r, t);
    CU_ASSERT_EQUAL(o.status, 200);
    static const char *const keys[] = {"id", "type", "target", "state", "createdAt"};
    CU_ASSERT_EQUAL(cJSON_GetArraySize(o.body), 5);
    int k = 0;
    for (const cJSON *m = o.body ? o.body->child : NULL; m && k < 5; m = m->next, k++)
        CU_ASSERT_STRING_EQUAL(m->string, keys[k]);
    CU_ASSERT_STRING_EQUAL(js(o.body, "type"), "reboot");
    CU_ASSERT_STRING_EQUAL(js(o.body, "target"), id);
    mc_reply_free(&o);

    /* A crash mid-reboot fails the reboot, saying why. */
    char b[64];
    snprintf(b, sizeof b, "{\"ids\":[\"%s\"]}", id);
    mc_reply x = crash(c, b, t + 1);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(x.body, "crashed")), 1);
    mc_reply_free(&x);
    o = get_op_of(c, &r, t + 1);
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "failed");
    CU_ASSERT_PTR_NOT_NULL(jget(o.body, "doneAt"));
    const cJSON *e = jget(o.body, "error");
    CU_ASSERT_STRING_EQUAL(js(e, "code"), "InstanceCrashed");
    CU_ASSERT_PTR_NOT_NULL(strstr(js(e, "message"), id));
    mc_reply_free(&o);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, t + 5000), "crashed");
    mc_reply_free(&r);
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- chaos */

/* n running instances, alternating zones hk-1a / hk-1b; returns the time. */
static int64_t fleet(mc_cloud *c, int n, char ids[][32])
{
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        create_id(c, body_with(name, i % 2 ? "hk-1b" : "hk-1a", NULL), NULL, T0, ids[i]);
    }
    mc_cloud_advance(c, T0 + 1000);
    return T0 + 1000;
}

static int crashed_count(mc_cloud *c, int64_t now)
{
    mc_kv q[] = {{"state", "crashed"}};
    return (int)list_count(c, q, 1, now);
}

static void test_crash(void)
{
    mc_cloud *c = mc_cloud_new(13);
    char ids[10][32];
    int64_t t = fleet(c, 10, ids);

    char b[256];
    snprintf(b, sizeof b, "{\"ids\":[\"%s\",\"%s\",\"%s\"]}", ids[3], ids[1], ids[3]);
    mc_reply r = crash(c, b, t);
    CU_ASSERT_EQUAL(r.status, 200);
    const cJSON *out = jget(r.body, "crashed");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(out), 2);
    CU_ASSERT_STRING_EQUAL(cJSON_GetArrayItem(out, 0)->valuestring, ids[1]);
    CU_ASSERT_STRING_EQUAL(cJSON_GetArrayItem(out, 1)->valuestring, ids[3]);
    mc_reply_free(&r);
    CU_ASSERT_STRING_EQUAL(state_at(c, ids[1], t), "crashed");
    /* Already crashed: skipped. */
    snprintf(b, sizeof b, "{\"ids\":[\"%s\"]}", ids[1]);
    r = crash(c, b, t);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r.body, "crashed")), 0);
    mc_reply_free(&r);
    snprintf(b, sizeof b, "{\"ids\":[\"%s\",\"i-000000000000\"]}", ids[0]);
    EXPECT_ERR(crash(c, b, t), 404, "NotFound", "i-000000000000");
    CU_ASSERT_STRING_EQUAL(state_at(c, ids[0], t), "running");

    /* Crashed instances: no resize, stop or start; reboot and delete. */
    EXPECT_ERR(resize(c, ids[1], "{\"cpu\":8}", t), 409, "InvalidState", "crashed");
    EXPECT_ERR(action(c, ids[1], "start", t), 409, "InvalidState", "crashed");
    EXPECT_ERR(action(c, ids[1], "stop", t), 409, "InvalidState", "crashed");
    r = action(c, ids[1], "reboot", t);
    CU_ASSERT_EQUAL(r.status, 202);
    CU_ASSERT_STRING_EQUAL(js(r.body, "state"), "rebooting");
    mc_reply_free(&r);
    r = mc_api_delete_instance(c, ids[3], t);
    CU_ASSERT_EQUAL(r.status, 202);
    mc_reply_free(&r);
    t += 1000;
    CU_ASSERT_STRING_EQUAL(state_at(c, ids[1], t), "running");
    EXPECT_ERR(mc_api_get_instance(c, ids[3], t), 404, "NotFound", NULL);

    /* 9 running now. count 3, then fraction 0.5 of the 6 left = 3. */
    r = crash(c, "{\"count\":3}", t);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r.body, "crashed")), 3);
    mc_reply_free(&r);
    CU_ASSERT_EQUAL(crashed_count(c, t), 3);
    r = crash(c, "{\"fraction\":0.5}", t);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r.body, "crashed")), 3);
    mc_reply_free(&r);
    CU_ASSERT_EQUAL(crashed_count(c, t), 6);
    r = crash(c, "{\"count\":100}", t);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r.body, "crashed")), 3);
    mc_reply_free(&r);
    CU_ASSERT_EQUAL(crashed_count(c, t), 9);
    mc_cloud_free(c);

    /* zone: every running instance there; zone with count narrows. */
    c = mc_cloud_new(13);
    t = fleet(c, 10, ids);
    r = crash(c, "{\"zone\":\"hk-1b\"}", t);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r.body, "crashed")), 5);
    for (const cJSON *e = jget(r.body, "crashed")->child; e; e = e->next) {
        mc_reply g = mc_api_get_instance(c, e->valuestring, t);
        CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&g), "zone"), "hk-1b");
        mc_reply_free(&g);
    }
    mc_reply_free(&r);
    r = crash(c, "{\"zone\":\"hk-1a\",\"count\":2}", t);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r.body, "crashed")), 2);
    mc_reply_free(&r);
    CU_ASSERT_EQUAL(crashed_count(c, t), 7);

    /* state selects other candidates; a crash mid-transition fails its op. */
    char p[32];
    mc_reply cr = create(c, body_with("p", "hk-2a", NULL), NULL, t);
    snprintf(p, sizeof p, "%s", js(cr.body, "id"));
    r = crash(c, "{\"count\":5,\"state\":\"pending\"}", t);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r.body, "crashed")), 1);
    mc_reply_free(&r);
    mc_reply o = get_op_of(c, &cr, t);
    CU_ASSERT_STRING_EQUAL(js(o.body, "state"), "failed");
    CU_ASSERT_STRING_EQUAL(js(jget(o.body, "error"), "code"), "InstanceCrashed");
    mc_reply_free(&o);
    mc_reply_free(&cr);
    CU_ASSERT_STRING_EQUAL(state_at(c, p, t + 5000), "crashed");

    const char *bad[][2] = {
        {"{}", "no selector"},
        {"{\"ids\":[]}", "\"ids\""},
        {"{\"ids\":[1]}", "\"ids\""},
        {"{\"ids\":[\"x\"],\"count\":1}", "cannot be combined"},
        {"{\"count\":1,\"fraction\":0.5}", "cannot be combined"},
        {"{\"count\":-1}", "\"count\""},
        {"{\"count\":1.5}", "\"count\""},
        {"{\"fraction\":1.5}", "\"fraction\""},
        {"{\"fraction\":\"half\"}", "\"fraction\""},
        {"{\"count\":1,\"state\":\"deleting\"}", "\"state\""},
        {"{\"count\":1,\"state\":\"asleep\"}", "\"state\""},
        {"{\"count\":1,\"count\":2}", "twice"},
        {"{\"count\":1,\"why\":\"test\"}", "unknown field \"why\""},
        {"[1]", "JSON object"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT_ERR(crash(c, bad[i][0], t), 400, "InvalidRequest", bad[i][1]);
    EXPECT_ERR(crash(c, "{\"zone\":\"mars-1a\"}", t), 400, "InvalidZone", "mars-1a");
    CU_ASSERT_EQUAL(crashed_count(c, t), 8);
    mc_cloud_free(c);
}

/* The ids a {"count":k} crash picks in a fresh fleet of n for seed. */
static void crash_pick(uint64_t seed, int n, int k, char *out, size_t outsz)
{
    mc_cloud *c = mc_cloud_new(seed);
    char ids[20][32], b[64];
    int64_t t = fleet(c, n, ids);
    snprintf(b, sizeof b, "{\"count\":%d}", k);
    mc_reply r = crash(c, b, t);
    char *txt = cJSON_PrintUnformatted(jget(r.body, "crashed"));
    snprintf(out, outsz, "%s", txt ? txt : "");
    free(txt);
    mc_reply_free(&r);
    mc_cloud_free(c);
}

static void test_crash_deterministic(void)
{
    char a[1024], b[1024], x[1024];
    crash_pick(99, 20, 5, a, sizeof a);
    crash_pick(99, 20, 5, b, sizeof b);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT(strlen(a) > 10);
    /* Another seed gives other ids altogether, so other picks. */
    crash_pick(100, 20, 5, x, sizeof x);
    CU_ASSERT_STRING_NOT_EQUAL(a, x);

    /* The picks do not depend on how the candidates' ids sort: a second
     * crash call in the same cloud draws from its own stream. */
    mc_cloud *c1 = mc_cloud_new(3), *c2 = mc_cloud_new(3);
    char i1[10][32], i2[10][32];
    int64_t t = fleet(c1, 10, i1);
    fleet(c2, 10, i2);
    mc_reply r1 = crash(c1, "{\"fraction\":0.3}", t), r2 = crash(c2, "{\"fraction\":0.3}", t);
    CU_ASSERT(cJSON_Compare(r1.body, r2.body, 1));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(jget(r1.body, "crashed")), 3);
    mc_reply_free(&r1);
    mc_reply_free(&r2);
    mc_cloud_free(c1);
    mc_cloud_free(c2);
}

/* ---------------------------------------------------------------- timings */

static void test_timings(void)
{
    mc_cloud *c = mc_cloud_new(14);
    mc_reply r = mc_ctl_get_timings(c);
    CU_ASSERT_EQUAL(r.status, 200);
    static const char *const names[] = {"create", "resize", "stop",    "start",
                                        "reboot", "delete", "snapshot"};
    for (int i = 0; i < 7; i++) CU_ASSERT_PTR_NOT_NULL(jget(r.body, names[i]));
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "create"), "distribution"), "uniform");
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "create"), "min"), "300ms");
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "create"), "max"), "1s");
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "delete"), "max"), "400ms");
    mc_reply_free(&r);

    r = set_json(mc_ctl_set_timings, c,
                 "{\"create\":\"2s\",\"reboot\":{\"distribution\":\"lognormal\",\"median\":"
                 "\"1s\",\"sigma\":0.5,\"cap\":\"3s\"}}");
    CU_ASSERT_EQUAL(r.status, 200);
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "create"), "distribution"), "fixed");
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "create"), "value"), "2s");
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "reboot"), "cap"), "3s");
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "resize"), "max"), "600ms");
    mc_reply_free(&r);
    char id[32];
    create_id(c, BODY, NULL, T0, id);
    CU_ASSERT_EQUAL(mc_cloud_next_deadline(c), T0 + 2000);
    CU_ASSERT_STRING_EQUAL(state_at(c, id, T0 + 1999), "pending");
    CU_ASSERT_STRING_EQUAL(state_at(c, id, T0 + 2000), "running");
    r = action(c, id, "reboot", T0 + 2000);
    mc_reply_free(&r);
    int64_t due = mc_cloud_next_deadline(c);
    CU_ASSERT(due > T0 + 2000 && due <= T0 + 5000);

    EXPECT_ERR(set_json(mc_ctl_set_timings, c,
                        "{\"resize\":\"5s\",\"create\":{\"distribution\":\"uniform\",\"min\":"
                        "\"2s\",\"max\":\"1s\"}}"),
               400, "InvalidRequest", "create: uniform: \"max\"");
    EXPECT_ERR(set_json(mc_ctl_set_timings, c, "{\"boot\":\"1s\"}"), 400, "InvalidRequest",
               "unknown transition \"boot\"");
    EXPECT_ERR(set_json(mc_ctl_set_timings, c, "{\"delete\":5}"), 400, "InvalidRequest", "delete");
    EXPECT_ERR(set_json(mc_ctl_set_timings, c, "{\"stop\":\"soon\"}"), 400, "InvalidRequest",
               "stop");
    EXPECT_ERR(set_json(mc_ctl_set_timings, c,
                        "{\"start\":{\"distribution\":\"uniform\",\"min\":\"1s\"}}"),
               400, "InvalidRequest", "start: uniform: missing \"max\"");
    EXPECT_ERR(set_json(mc_ctl_set_timings, c, "{\"start\":{\"distribution\":\"gamma\"}}"), 400,
               "InvalidRequest", "gamma");
    EXPECT_ERR(set_json(mc_ctl_set_timings, c, "[]"), 400, "InvalidRequest", "JSON object");
    /* A refused update changes nothing, not even its valid part. */
    r = mc_ctl_get_timings(c);
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "resize"), "max"), "600ms");
    mc_reply_free(&r);
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- whole-world properties */

/* The same script of calls against a cloud: every kind of call. */
static void script(mc_cloud *c)
{
    char ids[6][32];
    for (int i = 0; i < 6; i++) {
        char name[16], key[16];
        snprintf(name, sizeof name, "s%d", i);
        snprintf(key, sizeof key, "key-%d", i);
        create_id(c, body_with(name, i % 3 ? "sg-1a" : "hk-1a", "\"ipCount\":2"),
                  i % 2 ? key : NULL, T0 + i * 10, ids[i]);
    }
    mc_reply r = resize(c, ids[0], "{\"cpu\":8}", T0 + 1500);
    mc_reply_free(&r);
    r = action(c, ids[1], "stop", T0 + 1500);
    mc_reply_free(&r);
    r = mc_api_delete_instance(c, ids[2], T0 + 1500);
    mc_reply_free(&r);
    r = mc_api_create_snapshot(c, ids[3], "{\"name\":\"b\"}", 12, "snap-1", T0 + 1500);
    mc_reply_free(&r);
    r = crash(c, "{\"count\":1}", T0 + 1600);
    mc_reply_free(&r);
    r = mc_api_delete_instance(c, ids[5], T0 + 1700);
    mc_reply_free(&r);
    r = create(c, body_with("late", "hk-1b", NULL), "late-key", T0 + 1800);
    mc_reply_free(&r);
    mc_cloud_advance(c, T0 + 1900);
}

static void test_reproducible(void)
{
    mc_cloud *a = mc_cloud_new(2024), *b = mc_cloud_new(2024), *o = mc_cloud_new(2025);
    script(a);
    script(b);
    script(o);
    char *da = dump_text(a, T0 + 1900), *db = dump_text(b, T0 + 1900),
         *dc = dump_text(o, T0 + 1900);
    CU_ASSERT_PTR_NOT_NULL_FATAL(da);
    CU_ASSERT_STRING_EQUAL(da, db);
    CU_ASSERT_STRING_NOT_EQUAL(da, dc);
    /* The dump shows work in flight. */
    CU_ASSERT_PTR_NOT_NULL(strstr(da, "\"pending\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(da, "\"idempotencyKeys\""));
    free(da);
    free(db);
    free(dc);
    mc_cloud_free(a);
    mc_cloud_free(b);
    mc_cloud_free(o);
}

static void test_counts_generation(void)
{
    mc_cloud *c = mc_cloud_new(15);
    size_t n[MC_STATE_COUNT];
    char ids[4][32];
    uint64_t g0 = mc_cloud_generation(c);
    fleet(c, 4, ids);
    uint64_t g1 = mc_cloud_generation(c);
    CU_ASSERT(g1 > g0);
    mc_reply r = mc_api_get_instance(c, ids[0], T0 + 1000);
    mc_reply_free(&r);
    r = mc_api_get_instance(c, "i-none", T0 + 1000);
    mc_reply_free(&r);
    CU_ASSERT_EQUAL(mc_cloud_generation(c), g1);
    r = action(c, ids[0], "stop", T0 + 1000);
    mc_reply_free(&r);
    CU_ASSERT(mc_cloud_generation(c) > g1);
    r = crash(c, "{\"count\":1}", T0 + 1000);
    mc_reply_free(&r);
    mc_cloud_counts(c, n);
    CU_ASSERT_EQUAL(n[MC_RUNNING], 2);
    CU_ASSERT_EQUAL(n[MC_STOPPING], 1);
    CU_ASSERT_EQUAL(n[MC_CRASHED], 1);
    CU_ASSERT_EQUAL(n[MC_PENDING], 0);

    mc_state s;
    CU_ASSERT_EQUAL(mc_state_parse("rebooting", &s), 0);
    CU_ASSERT_EQUAL(s, MC_REBOOTING);
    CU_ASSERT_EQUAL(mc_state_parse("deleted", &s), -1);
    CU_ASSERT_STRING_EQUAL(mc_state_name(MC_CRASHED), "crashed");
    CU_ASSERT_STRING_EQUAL(mc_transition_name(MC_T_SNAPSHOT), "snapshot");
    mc_cloud_free(c);
}

static void test_reset_and_configure(void)
{
    mc_cloud *c = mc_cloud_new(16);
    const char *cfg_text = "{\"zones\":[\"z-1\",\"z-2\"],\"images\":[\"img-a\"],"
                           "\"timings\":{\"create\":\"1s\"},\"capacity\":{\"zones\":{\"z-1\":1}}}";
    cJSON *cfg = cJSON_Parse(cfg_text);
    char err[512] = "";
    const cJSON *bad = NULL;
    CU_ASSERT_EQUAL(mc_cloud_configure(c, cfg, err, sizeof err, &bad), 0);
    cJSON_Delete(cfg);
    const char *b1 = "{\"name\":\"a\",\"cpu\":1,\"memoryMiB\":512,\"diskGiB\":10,"
                     "\"image\":\"img-a\",\"zone\":\"z-1\"}";
    char first[32];
    create_id(c, b1, NULL, T0, first);
    CU_ASSERT_EQUAL(mc_cloud_next_deadline(c), T0 + 1000);
    EXPECT_ERR(create(c, b1, NULL, T0), 409, "InsufficientCapacity", "z-1");
    EXPECT_ERR(create(c, BODY, NULL, T0), 400, "InvalidZone", "z-1, z-2");

    /* Refused configurations name the field and change nothing. */
    struct {
        const char *text, *sub, *bad_key;
    } badcfg[] = {
        {"{\"zone\":[]}", "unknown field \"zone\"", "zone"},
        {"{\"zones\":\"z\"}", "zones", "zones"},
        {"{\"zones\":[\"ok\",\"no way\"]}", "zones[1]", NULL},
        {"{\"zones\":[\"a\",\"a\"]}", "zones[1]", NULL},
        {"{\"images\":[]}", "images", "images"},
        {"{\"capacity\":{\"zones\":{\"mars\":1}}}", "capacity: zones.mars", "mars"},
        {"{\"timings\":{\"create\":{\"distribution\":\"uniform\",\"min\":\"2s\",\"max\":\"1s\"}}}",
         "timings: create: uniform", "max"},
        {"{\"timings\":{\"boot\":\"1s\"}}", "timings: unknown transition", "boot"},
        {"[]", "mapping", NULL},
    };
    for (size_t i = 0; i < sizeof badcfg / sizeof badcfg[0]; i++) {
        cfg = cJSON_Parse(badcfg[i].text);
        err[0] = '\0';
        bad = NULL;
        CU_ASSERT_EQUAL(mc_cloud_configure(c, cfg, err, sizeof err, &bad), -1);
        if (!strstr(err, badcfg[i].sub)) fprintf(stderr, "\n  config error: %s\n", err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, badcfg[i].sub));
        if (badcfg[i].bad_key) {
            CU_ASSERT_PTR_NOT_NULL(bad);
            if (bad) CU_ASSERT_STRING_EQUAL(bad->string ? bad->string : "", badcfg[i].bad_key);
        }
        cJSON_Delete(cfg);
    }
    mc_reply r = mc_ctl_get_timings(c);
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "create"), "value"), "1s");
    mc_reply_free(&r);

    /* Reset: the world goes, the configured baseline comes back, ids
     * keep advancing. */
    r = set_json(mc_ctl_set_timings, c, "{\"create\":\"9s\"}");
    mc_reply_free(&r);
    r = set_json(mc_ctl_set_capacity, c, "{\"zones\":{\"z-1\":null}}");
    mc_reply_free(&r);
    mc_cloud_reset(c);
    CU_ASSERT_EQUAL(list_count(c, NULL, 0, T0), 0);
    CU_ASSERT_EQUAL(mc_cloud_next_deadline(c), INT64_MAX);
    r = mc_ctl_get_timings(c);
    CU_ASSERT_STRING_EQUAL(js(jget(r.body, "create"), "value"), "1s");
    mc_reply_free(&r);
    char second[32];
    create_id(c, b1, NULL, T0, second);
    CU_ASSERT_STRING_NOT_EQUAL(first, second);
    EXPECT_ERR(create(c, b1, NULL, T0), 409, "InsufficientCapacity", "z-1");
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- persistence */

static void tmp_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "/tmp/test_mockcloud_cloud.%ld.%s", (long)getpid(), name);
}

static void write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fwrite(text, 1, len, f);
    fclose(f);
}

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    *len = got;
    return buf;
}

static void test_save_load_roundtrip(void)
{
    char path[256], err[512] = "";
    tmp_path(path, sizeof path, "state.json");
    mc_cloud *a = mc_cloud_new(77), *b = mc_cloud_new(77);
    script(a);
    CU_ASSERT_EQUAL(mc_cloud_save(a, path, err, sizeof err), 0);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CU_ASSERT_EQUAL(access(tmp, F_OK), -1);
    CU_ASSERT_EQUAL(mc_cloud_load(b, path, err, sizeof err), 0);
    int64_t t = T0 + 1900;
    char *da = dump_text(a, t), *db = dump_text(b, t);
    CU_ASSERT_STRING_EQUAL(da, db);
    free(da);
    free(db);
    CU_ASSERT_EQUAL(mc_cloud_next_deadline(a), mc_cloud_next_deadline(b));

    /* Both go on alike: pending transitions complete, ids keep advancing,
     * keys still replay. */
    for (mc_cloud *c = a;; c = b) {
        mc_reply r = create(c, body_with("late", "hk-1b", NULL), "late-key", t + 10);
        CU_ASSERT_EQUAL(r.status, 200);
        mc_reply_free(&r);
        r = create(c, body_with("after", "hk-2a", NULL), "after", t + 20);
        CU_ASSERT_EQUAL(r.status, 202);
        mc_reply_free(&r);
        r = crash(c, "{\"fraction\":0.5}", t + 30);
        mc_reply_free(&r);
        if (c == b) break;
    }
    da = dump_text(a, t + 5000);
    db = dump_text(b, t + 5000);
    CU_ASSERT_STRING_EQUAL(da, db);
    CU_ASSERT_PTR_NULL(strstr(da, "\"pending\""));
    free(da);
    free(db);

    /* Saving the loaded cloud gives the same document. */
    char path2[256];
    tmp_path(path2, sizeof path2, "state2.json");
    CU_ASSERT_EQUAL(mc_cloud_save(a, path, err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_cloud_save(b, path2, err, sizeof err), 0);
    size_t n1, n2;
    char *f1 = read_text(path, &n1), *f2 = read_text(path2, &n2);
    CU_ASSERT_PTR_NOT_NULL(f1);
    CU_ASSERT(f1 && f2 && n1 == n2 && memcmp(f1, f2, n1) == 0);
    free(f1);
    free(f2);
    unlink(path);
    unlink(path2);
    mc_cloud_free(a);
    mc_cloud_free(b);
}

/* Transitions due while the server was down apply on the first call. */
static void test_load_resumes_deadlines(void)
{
    char path[256], err[512];
    tmp_path(path, sizeof path, "resume.json");
    mc_cloud *a = mc_cloud_new(5);
    char id[32];
    create_id(a, BODY, NULL, T0, id);
    CU_ASSERT_EQUAL(mc_cloud_save(a, path, err, sizeof err), 0);
    int64_t due = mc_cloud_next_deadline(a);
    mc_cloud_free(a);
    mc_cloud *b = mc_cloud_new(5);
    CU_ASSERT_EQUAL(mc_cloud_load(b, path, err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_cloud_next_deadline(b), due);
    mc_reply g = mc_api_get_instance(b, id, T0 + HOUR);
    CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&g), "state"), "running");
    char want[CSL_RFC3339_LEN];
    csl_rfc3339_ms(due, want);
    CU_ASSERT_STRING_EQUAL(js(mc_reply_json_body(&g), "updatedAt"), want);
    mc_reply_free(&g);
    mc_cloud_free(b);
    unlink(path);
}

static void test_load_refuses_bad_files(void)
{
    char path[256], good[256], err[512];
    tmp_path(path, sizeof path, "bad.json");
    tmp_path(good, sizeof good, "good.json");
    mc_cloud *src = mc_cloud_new(3);
    script(src);
    CU_ASSERT_EQUAL(mc_cloud_save(src, good, err, sizeof err), 0);
    mc_cloud_free(src);
    size_t len;
    char *text = read_text(good, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);

    mc_cloud *c = mc_cloud_new(4); /* another seed: other ids */
    char id[32];
    create_id(c, BODY, "mine", T0, id);
    char *before = dump_text(c, T0);

    /* Missing: fine, nothing loaded. */
    err[0] = '\0';
    CU_ASSERT_EQUAL(mc_cloud_load(c, "/tmp/test_mockcloud_cloud.does-not-exist", err, sizeof err),
                    0);

    struct {
        const char *text;
        size_t len;
        const char *sub;
    } cases[] = {
        {text, len / 2, "malformed JSON at byte"},
        {text, len - 1, "malformed JSON"},
        {"", 0, "empty"},
        {"\x00\x01garbage\xff", 11, "malformed JSON"},
        {"[1,2,3]", 7, "JSON object"},
        {"{\"format\":2}", 12, "format"},
        {"{\"format\":1}", 12, "counters"},
        {"{\"format\":1,\"counters\":{\"instance\":1,\"snapshot\":0,\"operation\":1,"
         "\"idempotency\":0,\"crash\":0},\"operations\":[],\"instances\":[{\"id\":\"i-1\"}],"
         "\"snapshots\":[],\"idempotency\":[]}",
         0, "instances[0]"},
        {"{\"format\":1,\"counters\":{\"instance\":0,\"snapshot\":0,\"operation\":1,"
         "\"idempotency\":0,\"crash\":0},\"operations\":[{\"id\":\"op-1\",\"seq\":1,\"type\":"
         "\"create\",\"target\":\"i-1\",\"state\":\"running\",\"createdAt\":1}],\"instances\":[],"
         "\"snapshots\":[],\"idempotency\":[]}",
         0, "no transition refers to it"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(path, cases[i].text, cases[i].len ? cases[i].len : strlen(cases[i].text));
        err[0] = '\0';
        CU_ASSERT_EQUAL(mc_cloud_load(c, path, err, sizeof err), -1);
        if (!strstr(err, cases[i].sub)) fprintf(stderr, "\n  case %zu: %s\n", i, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].sub));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
    }
    /* A field of the wrong type, anywhere. */
    cJSON *doc = cJSON_Parse(text);
    cJSON *inst0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "instances"), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inst0);
    cJSON_ReplaceItemInObject(inst0, "cpu", cJSON_CreateString("2"));
    char *mut = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    write_text(path, mut, strlen(mut));
    CU_ASSERT_EQUAL(mc_cloud_load(c, path, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"cpu\""));
    free(mut);

    char *after = dump_text(c, T0);
    CU_ASSERT_STRING_EQUAL(before, after);
    free(after);

    /* Unwritable place: an error naming it, nothing left behind. */
    CU_ASSERT_EQUAL(mc_cloud_save(c, "/nonexistent-dir/state.json", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent-dir/state.json"));

    /* And the good file loads over existing state, replacing it. */
    CU_ASSERT_EQUAL(mc_cloud_load(c, good, err, sizeof err), 0);
    EXPECT_ERR(mc_api_get_instance(c, id, T0 + 1900), 404, "NotFound", NULL);
    free(before);
    free(text);
    unlink(path);
    unlink(good);
    mc_cloud_free(c);
}

static void test_save_thousand(void)
{
    char path[256], err[512];
    tmp_path(path, sizeof path, "big.json");
    mc_cloud *a = mc_cloud_new(1000), *b = mc_cloud_new(1000);
    for (int i = 0; i < 1000; i++) {
        char name[16], key[16];
        snprintf(name, sizeof name, "big-%d", i);
        snprintf(key, sizeof key, "k%d", i);
        mc_reply r = create(a,
                            body_with(name, i % 2 ? "hk-1a" : "eu-west-1a",
                                      "\"tags\":{\"owner\":\"bench\",\"tier\":\"web\"}"),
                            key, T0 + i);
        CU_ASSERT_EQUAL(r.status, 202);
        mc_reply_free(&r);
    }
    mc_cloud_advance(a, T0 + 600);
    int64_t t0 = csl_mono_ns();
    CU_ASSERT_EQUAL(mc_cloud_save(a, path, err, sizeof err), 0);
    int64_t t1 = csl_mono_ns();
    CU_ASSERT_EQUAL(mc_cloud_load(b, path, err, sizeof err), 0);
    int64_t t2 = csl_mono_ns();
    printf("\n    1000 instances: save %.1f ms, load %.1f ms ", (double)(t1 - t0) / 1e6,
           (double)(t2 - t1) / 1e6);
    char *da = dump_text(a, T0 + 2000), *db = dump_text(b, T0 + 2000);
    CU_ASSERT_STRING_EQUAL(da, db);
    free(da);
    free(db);
    unlink(path);
    mc_cloud_free(a);
    mc_cloud_free(b);
}

/* Many threads at once: the lock keeps every call whole. */
typedef struct worker {
    mc_cloud *c;
    int n;
    int ok;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 150; i++) {
        char key[32];
        snprintf(key, sizeof key, "w%d-%d", w->n, i);
        int64_t now = T0 + i * 10;
        mc_reply r = create(w->c, BODY, key, now);
        w->ok += r.status == 202;
        char id[32];
        snprintf(id, sizeof id, "%s", js(r.body, "id"));
        mc_reply_free(&r);
        r = mc_api_get_instance(w->c, id, now);
        mc_reply_free(&r);
        mc_kv q[] = {{"limit", "5"}};
        r = mc_api_list_instances(w->c, q, 1, now);
        mc_reply_free(&r);
        if (i % 3 == 0) {
            r = mc_api_delete_instance(w->c, id, now + 1);
            mc_reply_free(&r);
        }
    }
    return NULL;
}

static void *saver_main(void *arg)
{
    worker *w = arg;
    char path[256], err[256];
    tmp_path(path, sizeof path, "threads.json");
    for (int i = 0; i < 20; i++) w->ok += mc_cloud_save(w->c, path, err, sizeof err) == 0;
    unlink(path);
    return NULL;
}

static void test_threads(void)
{
    mc_cloud *c = mc_cloud_new(31);
    pthread_t t[5];
    worker w[5];
    for (int i = 0; i < 5; i++) {
        w[i] = (worker){c, i, 0};
        pthread_create(&t[i], NULL, i < 4 ? worker_main : saver_main, &w[i]);
    }
    for (int i = 0; i < 5; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(w[i].ok, 150);
    CU_ASSERT_EQUAL(w[4].ok, 20);
    /* 600 created, 200 deleted; everything done by a minute later. */
    size_t n[MC_STATE_COUNT];
    mc_cloud_advance(c, T0 + 60000);
    mc_cloud_counts(c, n);
    CU_ASSERT_EQUAL(n[MC_RUNNING], 400);
    CU_ASSERT_EQUAL(n[MC_PENDING] + n[MC_DELETING], 0);
    mc_cloud_free(c);
}

/* ---------------------------------------------------------------- registry */

static CU_TestInfo create_tests[] = {
    {"instance JSON shape and defaults", test_create_shape},
    {"validation names every field", test_create_validation},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo lifecycle_tests[] = {
    {"create: pending then running at the deadline", test_lifecycle_create},
    {"power actions and invalid states", test_power_actions},
    {"resize rules", test_resize},
    {"tag merge patch", test_tag_patch},
    {"delete", test_delete},
    {"operations", test_operations},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo api_tests[] = {
    {"GET's text view is the tree view's bytes", test_text_view},
    {"idempotency replay and mismatch", test_idempotency},
    {"zone capacity", test_capacity},
    {"pagination and filters", test_pagination},
    {"snapshots", test_snapshots},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo control_tests[] = {
    {"crash selectors", test_crash},
    {"crash picks are reproducible", test_crash_deterministic},
    {"timings", test_timings},
    {"counts and generation", test_counts_generation},
    {"configure and reset", test_reset_and_configure},
    {"same seed, same calls, same world", test_reproducible},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo persistence_tests[] = {
    {"save/load round trip", test_save_load_roundtrip},
    {"deadlines resume after load", test_load_resumes_deadlines},
    {"bad files are refused, state kept", test_load_refuses_bad_files},
    {"1000 instances", test_save_thousand},
    {"threads and saves at once", test_threads},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"mockcloud cloud: create", NULL, NULL, NULL, NULL, create_tests},
    {"mockcloud cloud: lifecycle", NULL, NULL, NULL, NULL, lifecycle_tests},
    {"mockcloud cloud: api", NULL, NULL, NULL, NULL, api_tests},
    {"mockcloud cloud: control", NULL, NULL, NULL, NULL, control_tests},
    {"mockcloud cloud: persistence", NULL, NULL, NULL, NULL, persistence_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
