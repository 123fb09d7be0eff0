/* test_runner_match.c — partial matching, table-driven: nested mappings,
 * lists in any order with duplicates, conditions, null and absent,
 * expressions at every level, the exact diff lines for failures, the
 * renderer, validation of expression strings, and long lists staying
 * fast. */
#include "../testutil.h"

#include <string.h>
#include <time.h>

#include "../../scenarios/runner/match.h"

typedef struct mcase {
    const char *exp; /* JSON */
    const char *act; /* JSON; NULL = absent */
    bool want;
    const char *diff; /* the exact diff; NULL = not checked (a match must give none) */
} mcase;

static void check_cases(const mcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *exp = cJSON_Parse(cases[i].exp);
        cJSON *act = cases[i].act ? cJSON_Parse(cases[i].act) : NULL;
        CU_ASSERT_PTR_NOT_NULL_FATAL(exp);
        if (cases[i].act) CU_ASSERT_PTR_NOT_NULL_FATAL(act);
        csl_buf d = CSL_BUF_INIT;
        bool got = sr_match(exp, act, &d);
        /* The verdict never depends on whether a diff is asked for. */
        bool quiet = sr_match(exp, act, NULL);
        const char *want_diff = cases[i].want ? "" : cases[i].diff;
        bool ok = got == cases[i].want && quiet == got &&
                  (!want_diff || !strcmp(csl_buf_str(&d), want_diff)) && (got || d.len > 0);
        CU_ASSERT(ok);
        if (!ok)
            fprintf(stderr,
                    "\n  exp %s\n  act %s\n  want %d got %d (quiet %d)\n  want diff:\n%s\n  got "
                    "diff:\n%s\n",
                    cases[i].exp, cases[i].act ? cases[i].act : "(absent)", cases[i].want, got,
                    quiet, want_diff ? want_diff : "(unchecked)", csl_buf_str(&d));
        csl_buf_free(&d);
        cJSON_Delete(exp);
        cJSON_Delete(act);
    }
}

#define CHECK(cases) check_cases(cases, sizeof cases / sizeof cases[0])

static void test_mappings(void)
{
    static const mcase cases[] = {
        {"{\"spec\": {\"cpu\": 2}}",
         "{\"spec\": {\"cpu\": 2.0, \"memory\": \"4Gi\"}, \"status\": {}}", true, NULL},
        {"{}", "{\"a\": 1}", true, NULL},
        {"{}", "[]", false, "expected {}, got []\n"},
        {"{\"spec\": {\"cpu\": 2}}", "{\"spec\": {}}", false,
         "spec.cpu: expected 2, got (absent)\n"},
        {"{\"spec\": {\"cpu\": 2}}", "{}", false, "spec: expected {cpu: 2}, got (absent)\n"},
        {"{\"a\": \"2\"}", "{\"a\": 2}", false, "a: expected \"2\", got 2\n"},
        {"{\"a\": 2}", "{\"a\": \"2\"}", false, "a: expected 2, got \"2\"\n"},
        {"{\"a\": true}", "{\"a\": \"true\"}", false, "a: expected true, got \"true\"\n"},
        {"{\"a\": false}", "{\"a\": false}", true, NULL},
        {"{\"a\": 1, \"b\": {\"c\": \"x\", \"d\": true}}",
         "{\"a\": 2, \"b\": {\"c\": \"y\", \"d\": true}}", false,
         "a: expected 1, got 2\nb.c: expected x, got y\n"},
        {"{\"a\": {\"b\": 1}}", "{\"a\": [1]}", false, "a: expected {b: 1}, got [1]\n"},
        {"{\"a\": {\"b\": 1}}", "{\"a\": null}", false, "a: expected {b: 1}, got null\n"},
        {"{\"a\": {\"b\": {\"c\": {\"d\": 1}}}}", "{\"a\": {\"b\": {\"c\": {\"d\": 2, \"e\": 3}}}}",
         false, "a.b.c.d: expected 1, got 2\n"},
        {"{\"metadata\": {\"labels\": {\"app.kubernetes.io/name\": \"web\"}}}",
         "{\"metadata\": {\"labels\": {\"app.kubernetes.io/name\": \"db\"}}}", false,
         "metadata.labels[\"app.kubernetes.io/name\"]: expected web, got db\n"},
        /* keys are never expressions */
        {"{\"(x)\": 1}", "{\"(x)\": 1}", true, NULL},
        {"{\"(@ > 1)\": 1}", "{\"a\": 5}", false, "[\"(@ > 1)\"]: expected 1, got (absent)\n"},
        /* the root itself */
        {"{\"a\": 1}", NULL, false, "expected {a: 1}, got (absent)\n"},
        {"3", "3.0", true, NULL},
        {"\"Running\"", "\"Pending\"", false, "expected Running, got Pending\n"},
        {"\"True\"", "true", false, "expected \"True\", got true\n"},
    };
    CHECK(cases);
}

static void test_null_absent(void)
{
    static const mcase cases[] = {
        {"{\"a\": null}", "{}", true, NULL},
        {"{\"a\": null}", "{\"a\": null}", true, NULL},
        {"{\"a\": null}", "{\"a\": 0}", false, "a: expected null, got 0\n"},
        {"{\"a\": null}", "{\"a\": {}}", false, "a: expected null, got {}\n"},
        {"null", NULL, true, NULL},
        {"{\"a\": {\"b\": null}}", "{}", false, "a: expected {b: null}, got (absent)\n"},
        {"{\"a\": \"(@ == null)\"}", "{}", true, NULL},
        {"{\"a\": \"(@ == null)\"}", "{\"a\": null}", true, NULL},
        {"{\"a\": \"(@ != null)\"}", "{}", false, "a: expected (@ != null), got (absent)\n"},
        {"{\"a\": \"(!exists(@))\"}", "{}", true, NULL},
        {"{\"a\": 1}", "{\"a\": null}", false, "a: expected 1, got null\n"},
        {"{\"a\": \"\"}", "{}", false, "a: expected \"\", got (absent)\n"},
    };
    CHECK(cases);
}

static void test_lists(void)
{
    static const mcase cases[] = {
        {"[1, 2]", "[2, 1]", true, NULL},
        {"[2]", "[1, 2, 3]", true, NULL},
        {"[1, 1]", "[1, 2, 1]", true, NULL},
        {"[1, 1]", "[1, 2]", false, "[1]: expected 1, got [1, 2]; no element matches\n"},
        {"[\"b\"]", "[\"a\", \"c\"]", false, "[0]: expected b, got [a, c]; no element matches\n"},
        {"[]", "[]", true, NULL},
        {"[]", "[1]", false, "expected [], got [1]\n"},
        {"{\"a\": []}", "{}", false, "a: expected [], got (absent)\n"},
        {"{\"a\": [1]}", "{\"a\": \"x\"}", false, "a: expected [1], got x\n"},
        {"{\"c\": [{\"type\": \"Ready\"}]}", "{\"c\": []}", false,
         "c: expected [{type: Ready}], got []\n"},
        /* any order of nested lists */
        {"[[1, 2], [3]]", "[[3], [2, 1, 0]]", true, NULL},
        {"[[1, 2], [3]]", "[[3], [2]]", false, "[0][0]: expected 1, got [2]; no element matches\n"},
        /* greedy takes the wrong partner first; backtracking fixes it */
        {"[{\"a\": 1}, {\"a\": 1, \"b\": 2}]", "[{\"a\": 1, \"b\": 2}, {\"a\": 1}]", true, NULL},
        {"[{\"a\": 1}, {\"a\": 1}, {\"a\": 1, \"b\": 2}]",
         "[{\"a\": 1, \"b\": 2}, {\"a\": 1, \"c\": 3}, {\"a\": 1}]", true, NULL},
        {"[\"(@ > 0)\", 5]", "[5, 1]", true, NULL},
        /* duplicates that cannot all be placed */
        {"[{\"a\": 1}, {\"a\": 1}]", "[{\"a\": 1}]", false,
         "[1]: expected {a: 1}, got no element left: all 1 are matched by other expected "
         "elements\n"},
        /* the closest element explains a miss */
        {"{\"items\": [{\"zone\": \"hk\", \"state\": \"running\", \"cpu\": 2}]}",
         "{\"items\": [{\"zone\": \"sg\", \"state\": \"stopped\", \"cpu\": 1}, {\"zone\": \"hk\", "
         "\"state\": \"running\", \"cpu\": 4}]}",
         false, "items[0].cpu: expected 2, got 4\n"},
        {"{\"containers\": [{\"name\": \"web\", \"image\": \"nginx\"}]}",
         "{\"containers\": [{\"name\": \"db\", \"image\": \"nginx\"}, {\"name\": \"web\", "
         "\"image\": "
         "\"httpd\"}]}",
         false, "containers[name=web].image: expected nginx, got httpd\n"},
        {"{\"containers\": [{\"name\": \"web 1\", \"image\": \"nginx\"}]}",
         "{\"containers\": [{\"name\": \"web 1\", \"image\": \"httpd\"}]}", false,
         "containers[name=\"web 1\"].image: expected nginx, got httpd\n"},
        /* expressions in list elements */
        {"{\"ips\": [\"(matches(@, '^10\\\\.'))\"]}", "{\"ips\": [\"192.168.0.1\", \"10.0.0.1\"]}",
         true, NULL},
        {"{\"ips\": [\"(matches(@, '^10\\\\.'))\"]}", "{\"ips\": [\"192.168.0.1\"]}", false,
         "ips[0]: expected (matches(@, '^10\\.')), got [\"192.168.0.1\"]; no element matches\n"},
        {"[{\"n\": \"(@ >= 2)\"}, {\"n\": \"(@ >= 2)\"}]", "[{\"n\": 3}, {\"n\": 1}, {\"n\": 2}]",
         true, NULL},
    };
    CHECK(cases);
}

static void test_conditions(void)
{
    static const char *status =
        "{\"status\": {\"phase\": \"Running\", \"conditions\": ["
        "{\"type\": \"Synced\", \"status\": \"True\", \"reason\": \"Ok\"},"
        "{\"type\": \"Ready\", \"status\": \"False\", \"reason\": \"ProvisioningTimeout\","
        " \"message\": \"instance i-1 still pending after 5m\"},"
        "{\"type\": \"CloudReachable\", \"status\": \"True\"}]}}";
    cJSON *act = cJSON_Parse(status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(act);
    static const struct {
        const char *exp;
        bool want;
        const char *diff;
    } cases[] = {
        {"{\"status\": {\"conditions\": [{\"type\": \"Synced\", \"status\": \"True\"}]}}", true,
         ""},
        {"{\"status\": {\"conditions\": [{\"type\": \"CloudReachable\"}, {\"type\": \"Synced\"}]}}",
         true, ""},
        {"{\"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\"}]}}", false,
         "status.conditions[type=Ready].status: expected \"True\", got \"False\"\n"},
        {"{\"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\", \"reason\": "
         "\"Provisioned\"}]}}",
         false,
         "status.conditions[type=Ready].status: expected \"True\", got \"False\"\n"
         "status.conditions[type=Ready].reason: expected Provisioned, got ProvisioningTimeout\n"},
        {"{\"status\": {\"conditions\": [{\"type\": \"Ready\", \"reason\": "
         "\"ProvisioningTimeout\", "
         "\"message\": \"(contains(@, 'pending'))\"}]}}",
         true, ""},
        {"{\"status\": {\"conditions\": [{\"type\": \"CloudAuthorized\", \"status\": \"False\"}]}}",
         false,
         /* no namesake: the closest by fewest mismatches (Ready's status agrees) */
         "status.conditions[type=CloudAuthorized].type: expected CloudAuthorized, got Ready\n"},
        {"{\"status\": {\"conditions\": \"(any(@, c => c.type == 'Ready' && c.status == "
         "'True'))\"}}",
         false,
         "status.conditions: expected (any(@, c => c.type == 'Ready' && c.status == 'True')), got "
         "[{type: Synced, status: \"True\", reason: Ok}, {type: Ready, status: \"False\", reason: "
         "ProvisioningTimeout, message: \"in…\n"},
        {"{\"status\": {\"conditions\": \"(count(@, c => c.status == 'True') == 2)\"}}", true, ""},
        {"{\"status\": \"(@.phase == 'Running' && len(@.conditions) == 3)\"}", true, ""},
        {"\"(@.status.phase in ['Running', 'Pending'])\"", true, ""},
        {"{\"status\": {\"phase\": \"(@ in ['Failed', 'Pending'])\"}}", false,
         "status.phase: expected (@ in ['Failed', 'Pending']), got Running\n"},
        /* the example of docs/scenario-matching.md */
        {"{\"status\": {\"phase\": \"Provisioning\", \"conditions\": [{\"type\": \"Ready\", "
         "\"status\": "
         "\"True\"}], \"cpu\": \"(@ >= 2)\"}}",
         false,
         "status.phase: expected Provisioning, got Running\n"
         "status.conditions[type=Ready].status: expected \"True\", got \"False\"\n"
         "status.cpu: expected (@ >= 2), got (absent); col 4: '>=' compares two numbers or two "
         "strings, got null and number\n"},
        /* an expression as the identity: the path falls back to the index */
        {"{\"status\": {\"conditions\": [{\"type\": \"(startsWith(@, 'Read'))\", \"status\": "
         "\"True\"}]}}",
         false, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *exp = cJSON_Parse(cases[i].exp);
        CU_ASSERT_PTR_NOT_NULL_FATAL(exp);
        csl_buf d = CSL_BUF_INIT;
        bool got = sr_match(exp, act, &d);
        CU_ASSERT_EQUAL(got, cases[i].want);
        if (cases[i].diff) CU_ASSERT_STRING_EQUAL(csl_buf_str(&d), cases[i].diff);
        if (got != cases[i].want || (cases[i].diff && strcmp(csl_buf_str(&d), cases[i].diff)))
            fprintf(stderr, "\n  exp %s\n  got %d:\n%s\n", cases[i].exp, got, csl_buf_str(&d));
        if (!cases[i].diff) CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&d), "status.conditions[0]"));
        csl_buf_free(&d);
        cJSON_Delete(exp);
    }
    cJSON_Delete(act);
}

#define A50 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static void test_expressions(void)
{
    static const mcase cases[] = {
        {"\"(@ >= 2)\"", "3", true, NULL},
        {"\"(@ >= 2)\"", "1", false, "expected (@ >= 2), got 1\n"},
        {"\"(@ >= 2)\"", NULL, false,
         "expected (@ >= 2), got (absent); col 4: '>=' compares two numbers or two strings, got "
         "null and number\n"},
        {"{\"a\": \"(@ > 1)\"}", "{\"a\": \"x\"}", false,
         "a: expected (@ > 1), got x; col 4: '>' compares two numbers or two strings, got string "
         "and number\n"},
        {"{\"a\": \"(@ + 1)\"}", "{\"a\": 1}", false,
         "a: expected (@ + 1), got 1; the expression gives a number, not true or false\n"},
        {"{\"a\": \"(@ >= )\"}", "{\"a\": 1}", false,
         "a: bad expression (@ >= ): col 7: expected a value (@, a number, a 'string', true, "
         "false, null, [a list], (…) or a function call), found ')'\n"},
        {"{\"a\": \"(nope(@))\"}", "{\"a\": 1}", false, NULL},
        /* an expression sees the whole subtree */
        {"{\"spec\": \"(@.cpu * 2 == 4 && quantity(@.memory) >= quantity('2Gi'))\"}",
         "{\"spec\": {\"cpu\": 2, \"memory\": \"4Gi\"}}", true, NULL},
        {"{\"spec\": {\"timeouts\": {\"create\": \"(duration(@) <= duration('5m'))\"}}}",
         "{\"spec\": {\"timeouts\": {\"create\": \"10m\"}}}", false,
         "spec.timeouts.create: expected (duration(@) <= duration('5m')), got \"10m\"\n"},
        /* a long expression is cut in the message: 120 bytes with the "…" */
        {"\"(@ == '" A50 A50 "aaaaaaaaaaaaaaaaaaaa')\"", "1", false,
         "expected (@ == '" A50 A50 "aaaaaaaaaa…, got 1\n"},
        /* a string that only looks half like an expression is a plain string */
        {"\"(not closed\"", "\"(not closed\"", true, NULL},
        {"\"not open)\"", "\"not open)\"", true, NULL},
        {"\"()\"", "1", false,
         "bad expression (): col 2: expected a value (@, a number, a "
         "'string', true, false, null, [a list], (…) or a function call), "
         "found ')'\n"},
    };
    CHECK(cases);
}

static void test_render(void)
{
    static const struct {
        const char *json;
        size_t max;
        const char *want;
    } cases[] = {
        {"{\"a\": 1, \"b\": [true, null, \"x y\"], \"c\": {}, \"d\": []}", 200,
         "{a: 1, b: [true, null, \"x y\"], c: {}, d: []}"},
        {"\"Running\"", 100, "Running"},
        {"\"hk-1a\"", 100, "hk-1a"},
        {"\"/v1/instances\"", 100, "/v1/instances"},
        {"\"True\"", 100, "\"True\""},
        {"\"no\"", 100, "no"},
        {"\"2\"", 100, "\"2\""},
        {"\"\"", 100, "\"\""},
        {"\"a\\\"b\\n\\u0001\"", 100, "\"a\\\"b\\n\\u0001\""},
        {"\"caf\\u00e9\"", 100, "\"café\""},
        {"\"(@ > 1)\"", 100, "\"(@ > 1)\""},
        {"{\"app.kubernetes.io/name\": 1, \"a b\": 2}", 100,
         "{app.kubernetes.io/name: 1, \"a b\": 2}"},
        {"2.5", 100, "2.5"},
        {"-3", 100, "-3"},
        {"0.1", 100, "0.1"},
        {"1e20", 100, "1e+20"},
        {"9007199254740991", 100, "9007199254740991"},
        {"\"yes\"", 100, "yes"},
        {"\"NULL\"", 100, "\"NULL\""},
        {"\"10m\"", 100, "\"10m\""},
        {"1e300", 100, "1e+300"},
        {"[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]", 20, "[1, 2, 3, 4, 5, 6…"},
        {"[1, 2, 3]", 9, "[1, 2, 3]"},
        {"[1, 2, 3]", 8, "[1, 2…"},
        {"\"ééééé\"", 9, "\"éé…"}, /* cut at a character boundary */
        {"[1, 2, 3]", 2, ""},
        {"[1, 2, 3]", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *v = cJSON_Parse(cases[i].json);
        CU_ASSERT_PTR_NOT_NULL_FATAL(v);
        csl_buf out = CSL_BUF_INIT;
        csl_buf_puts(&out, ">");
        sr_render(v, cases[i].max, &out);
        CU_ASSERT_STRING_EQUAL(csl_buf_str(&out) + 1, cases[i].want);
        CU_ASSERT(out.len - 1 <= cases[i].max);
        if (strcmp(csl_buf_str(&out) + 1, cases[i].want))
            fprintf(stderr, "\n  %s max %zu: want %s got %s\n", cases[i].json, cases[i].max,
                    cases[i].want, csl_buf_str(&out) + 1);
        csl_buf_free(&out);
        cJSON_Delete(v);
    }
    csl_buf out = CSL_BUF_INIT;
    sr_render(NULL, 100, &out);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&out), "(absent)");
    csl_buf_free(&out);

    /* A huge or deep value renders quickly and within max. */
    cJSON *deep = cJSON_CreateArray(), *cur = deep;
    for (int i = 0; i < 5000; i++) {
        cJSON *k = cJSON_CreateObject();
        cJSON_AddItemToArray(cur, k);
        cur = cJSON_AddArrayToObject(k, "k");
    }
    sr_render(deep, 1u << 20, &out);
    CU_ASSERT(out.len > 0 && out.len <= 1u << 20);
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&out), "…"));
    csl_buf_reset(&out);
    sr_render(deep, 50, &out);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&out), "[{k: [{k: [{k: [{k: [{k: [{k: [{k: [{k: [{k: [{…");
    csl_buf_free(&out);
    cJSON_Delete(deep);
}

static void test_check(void)
{
    char err[256];
    cJSON *ok = cJSON_Parse("{\"a\": \"(@ > 1)\", \"b\": [{\"c\": \"(len(@) == 2)\"}], "
                            "\"(bad\": \"(x\", \"d\": \"plain\", \"e\": 1}");
    CU_ASSERT_PTR_NULL(sr_match_check(ok, err, sizeof err));
    CU_ASSERT_STRING_EQUAL(err, "");
    cJSON_Delete(ok);

    cJSON *bad =
        cJSON_Parse("{\"a\": \"(@ > 1)\", \"b\": [1, {\"c\": \"(@ >= )\"}], \"d\": \"(x)\"}");
    const cJSON *n = sr_match_check(bad, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(n->valuestring, "(@ >= )"); /* the first, in document order */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "col 7: expected a value"));
    cJSON_Delete(bad);

    cJSON *s = cJSON_CreateString("(matches(@, '['))");
    n = sr_match_check(s, err, sizeof err);
    CU_ASSERT_PTR_EQUAL(n, s);
    CU_ASSERT_EQUAL(strncmp(err, "col 13: bad regular expression '[': ", 36), 0);
    cJSON_Delete(s);
    CU_ASSERT_PTR_NULL(sr_match_check(NULL, err, sizeof err));

    /* Too deep an expected tree: refused by both, without recursion trouble. */
    cJSON *deep = cJSON_CreateObject(), *cur = deep;
    for (int i = 0; i < 400; i++) cur = cJSON_AddObjectToObject(cur, "a");
    n = sr_match_check(deep, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(n);
    CU_ASSERT_STRING_EQUAL(err, "the expected tree is nested deeper than 256 levels");
    csl_buf d = CSL_BUF_INIT;
    CU_ASSERT_FALSE(sr_match(deep, deep, &d));
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&d), "the expected tree is nested deeper than 256"));
    csl_buf_free(&d);
    cJSON_Delete(deep);

    CU_ASSERT_TRUE(sr_match(NULL, NULL, NULL)); /* nothing expected */
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Long lists: in order, reversed, with names, and the worst case for the
 * greedy pass; each must finish well inside a second. */
static void test_long_lists(void)
{
    enum { N = 1000 };
    cJSON *act = cJSON_CreateArray(), *named = cJSON_CreateArray(), *exp_rev = cJSON_CreateArray(),
          *exp_named = cJSON_CreateArray(), *exp_any = cJSON_CreateArray();
    for (int i = 0; i < N; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "i", i);
        cJSON_AddStringToObject(o, "state", "running");
        cJSON_AddItemToArray(act, o);
        char name[32];
        snprintf(name, sizeof name, "web-%d", i);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddNumberToObject(o, "i", i);
        cJSON_AddItemToArray(named, o);
        o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "i", N - 1 - i);
        cJSON_AddItemToArray(exp_rev, o);
        snprintf(name, sizeof name, "web-%d", N - 1 - i);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddItemToArray(exp_named, o);
        /* Every element fits every actual one except the last expected,
         * which fits only the first actual: greedy gives that away early
         * and one augmenting path must bring it back. */
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "state", "running");
        if (i == N - 1) cJSON_AddNumberToObject(o, "i", 0);
        cJSON_AddItemToArray(exp_any, o);
    }
    double t0 = now();
    CU_ASSERT_TRUE(sr_match(act, act, NULL));
    CU_ASSERT_TRUE(sr_match(exp_rev, act, NULL));
    CU_ASSERT_TRUE(sr_match(exp_named, named, NULL));
    CU_ASSERT_TRUE(sr_match(exp_any, act, NULL));
    double t = now() - t0;
    CU_ASSERT(t < 3.0); /* generous: sanitizer builds on a busy machine */
    fprintf(stderr, " [%.3f s] ", t);

    /* A miss in a long list: one line, naming the element. */
    cJSON *o = cJSON_GetArrayItem(exp_named, 10);
    cJSON_AddNumberToObject(o, "i", -1);
    csl_buf d = CSL_BUF_INIT;
    CU_ASSERT_FALSE(sr_match(exp_named, named, &d));
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&d), "[name=web-989].i: expected -1, got 989\n");
    csl_buf_free(&d);
    cJSON_Delete(act);
    cJSON_Delete(named);
    cJSON_Delete(exp_rev);
    cJSON_Delete(exp_named);
    cJSON_Delete(exp_any);
}

static CU_TestInfo match_tests[] = {
    {"mappings", test_mappings},
    {"null and absent", test_null_absent},
    {"lists in any order, duplicates", test_lists},
    {"conditions", test_conditions},
    {"expressions at every level", test_expressions},
    {"render", test_render},
    {"sr_match_check", test_check},
    {"long lists stay fast", test_long_lists},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"runner_match", NULL, NULL, NULL, NULL, match_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
