/* test_yaml.c — YAML into cJSON: core-schema typing, structure, positions of
 * values and keys, streams, aliases and merges, and every refusal: billion
 * laughs, duplicate keys, syntax errors, unreadable files. */
#include "../testutil.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "csl/buf.h"
#include "csl/yaml.h"

static csl_yaml *load(const char *text, csl_yaml_err *err)
{
    return csl_yaml_load_string(text, strlen(text), "test.yaml", err);
}

/* Loads text that must fail and returns the error. */
static csl_yaml_err load_fail(const char *text)
{
    csl_yaml_err err;
    memset(&err, 0, sizeof err);
    csl_yaml *y = load(text, &err);
    CU_ASSERT_PTR_NULL(y);
    csl_yaml_free(y);
    return err;
}

/* The unformatted JSON of document i, for structure checks. */
static bool doc_json_is(const csl_yaml *y, size_t i, const char *want)
{
    char *got = cJSON_PrintUnformatted(csl_yaml_doc(y, i));
    bool ok = got && strcmp(got, want) == 0;
    if (!ok) fprintf(stderr, "\n  doc %zu: got %s\n      want %s\n", i, got ? got : "(null)", want);
    free(got);
    return ok;
}

/* Every node of the tree has a value position. */
static bool all_have_pos(const csl_yaml *y, const cJSON *node)
{
    for (; node; node = node->next) {
        if (!csl_yaml_pos(y, node, NULL, NULL)) return false;
        if (!all_have_pos(y, node->child)) return false;
    }
    return true;
}

/* ---------------------------------------------------------------- typing */

enum kind { K_NULL, K_TRUE, K_FALSE, K_NUM, K_STR };

static void test_scalar_typing(void)
{
    static const struct {
        const char *yaml; /* the value after "v: " */
        enum kind kind;
        double num;
        const char *str;
    } cases[] = {
        {"", K_NULL, 0, NULL},
        {"~", K_NULL, 0, NULL},
        {"null", K_NULL, 0, NULL},
        {"Null", K_NULL, 0, NULL},
        {"NULL", K_NULL, 0, NULL},
        {"nULL", K_STR, 0, "nULL"},
        {"true", K_TRUE, 0, NULL},
        {"True", K_TRUE, 0, NULL},
        {"TRUE", K_TRUE, 0, NULL},
        {"false", K_FALSE, 0, NULL},
        {"FALSE", K_FALSE, 0, NULL},
        {"yes", K_STR, 0, "yes"},
        {"no", K_STR, 0, "no"},
        {"on", K_STR, 0, "on"},
        {"0", K_NUM, 0, NULL},
        {"42", K_NUM, 42, NULL},
        {"-17", K_NUM, -17, NULL},
        {"+5", K_NUM, 5, NULL},
        {"017", K_NUM, 17, NULL},
        {"0x1F", K_NUM, 31, NULL},
        {"0xff", K_NUM, 255, NULL},
        {"0o17", K_NUM, 15, NULL},
        {"0o19", K_STR, 0, "0o19"},
        {"0x", K_STR, 0, "0x"},
        {"0b101", K_STR, 0, "0b101"},
        {"1.5", K_NUM, 1.5, NULL},
        {".5", K_NUM, 0.5, NULL},
        {"2.", K_NUM, 2, NULL},
        {"1e3", K_NUM, 1000, NULL},
        {"-1.5E-2", K_NUM, -0.015, NULL},
        {"1_000", K_STR, 0, "1_000"},
        {"1.2.3", K_STR, 0, "1.2.3"},
        {"12:30", K_STR, 0, "12:30"},
        {"4Gi", K_STR, 0, "4Gi"},
        {"1e", K_STR, 0, "1e"},
        {".", K_STR, 0, "."},
        {"hello world", K_STR, 0, "hello world"},
        {"\"123\"", K_STR, 0, "123"},
        {"'true'", K_STR, 0, "true"},
        {"\"\"", K_STR, 0, ""},
        {"\"a\\tb\\u00e9\"", K_STR, 0, "a\tb\xc3\xa9"},
        {"!!str 42", K_STR, 0, "42"},
        {"! 42", K_STR, 0, "42"},
        {"!!null ''", K_NULL, 0, NULL},
        {"|\n  line one\n  line two\n", K_STR, 0, "line one\nline two\n"},
        {">-\n  folded\n  text\n", K_STR, 0, "folded text"},
        {"h\xc3\xa9llo \xe2\x9c\x93", K_STR, 0, "h\xc3\xa9llo \xe2\x9c\x93"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "v: %s\n", cases[i].yaml);
        csl_yaml_err err;
        csl_yaml *y = load(text, &err);
        CU_ASSERT_PTR_NOT_NULL(y);
        if (!y) {
            fprintf(stderr, "\n  %s: %s\n", cases[i].yaml, err.msg);
            continue;
        }
        const cJSON *v = cJSON_GetObjectItem(csl_yaml_doc(y, 0), "v");
        bool ok = false;
        switch (cases[i].kind) {
        case K_NULL:
            ok = cJSON_IsNull(v);
            break;
        case K_TRUE:
            ok = cJSON_IsTrue(v);
            break;
        case K_FALSE:
            ok = cJSON_IsFalse(v);
            break;
        case K_NUM:
            ok = cJSON_IsNumber(v) && v->valuedouble == cases[i].num;
            break;
        case K_STR:
            ok = cJSON_IsString(v) && strcmp(v->valuestring, cases[i].str) == 0;
            break;
        }
        CU_ASSERT(ok);
        if (!ok) fprintf(stderr, "\n  typing of \"%s\" is wrong\n", cases[i].yaml);
        csl_yaml_free(y);
    }
    /* Infinities and NaN. */
    csl_yaml *y = load("[.inf, -.Inf, +.INF, .nan, .NaN]", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    const cJSON *a = csl_yaml_doc(y, 0);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(a), 5);
    CU_ASSERT(isinf(cJSON_GetArrayItem(a, 0)->valuedouble) &&
              cJSON_GetArrayItem(a, 0)->valuedouble > 0);
    CU_ASSERT(isinf(cJSON_GetArrayItem(a, 1)->valuedouble) &&
              cJSON_GetArrayItem(a, 1)->valuedouble < 0);
    CU_ASSERT(isinf(cJSON_GetArrayItem(a, 2)->valuedouble));
    CU_ASSERT(isnan(cJSON_GetArrayItem(a, 3)->valuedouble));
    CU_ASSERT(isnan(cJSON_GetArrayItem(a, 4)->valuedouble));
    csl_yaml_free(y);
}

/* ---------------------------------------------------------------- structure */

static void test_nested(void)
{
    const char *text = "apiVersion: cloudserver.dev/v1\n"
                       "kind: CloudServer\n"
                       "metadata:\n"
                       "  name: web-1\n"
                       "  labels: {app: web, tier: \"1\"}\n"
                       "spec:\n"
                       "  cpu: 2\n"
                       "  memory: 4Gi\n"
                       "  failover:\n"
                       "    enabled: true\n"
                       "    maxAttempts: 3\n"
                       "  ports:\n"
                       "  - 80\n"
                       "  - name: https\n"
                       "    port: 443\n"
                       "  - [a, [b, c], {}]\n"
                       "  - []\n"
                       "  empty:\n";
    csl_yaml_err err;
    csl_yaml *y = load(text, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(csl_yaml_count(y), 1);
    CU_ASSERT_STRING_EQUAL(csl_yaml_name(y), "test.yaml");
    CU_ASSERT(doc_json_is(y, 0,
                          "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\","
                          "\"metadata\":{\"name\":\"web-1\",\"labels\":{\"app\":\"web\","
                          "\"tier\":\"1\"}},\"spec\":{\"cpu\":2,\"memory\":\"4Gi\","
                          "\"failover\":{\"enabled\":true,\"maxAttempts\":3},\"ports\":[80,"
                          "{\"name\":\"https\",\"port\":443},[\"a\",[\"b\",\"c\"],{}],[]],"
                          "\"empty\":null}}"));
    CU_ASSERT(all_have_pos(y, csl_yaml_doc(y, 0)));
    CU_ASSERT_PTR_NULL(csl_yaml_doc(y, 1));
    csl_yaml_free(y);

    /* A top-level scalar and a top-level sequence are documents too. */
    y = load("just text", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT(doc_json_is(y, 0, "\"just text\""));
    csl_yaml_free(y);
}

static void test_positions(void)
{
    const char *text = "# comment\n"              /* line 1 */
                       "name: web\n"              /* line 2 */
                       "spec:\n"                  /* line 3 */
                       "  cpu:   2\n"             /* line 4 */
                       "  zones:\n"               /* line 5 */
                       "    - hk-1a\n"            /* line 6 */
                       "    - {z: 1, \"q\": x}\n" /* line 7 */
                       "  \"quoted key\": 'v'\n"; /* line 8 */
    csl_yaml *y = load(text, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    const cJSON *root = csl_yaml_doc(y, 0);
    int l = -1, c = -1;
    CU_ASSERT_TRUE(csl_yaml_pos(y, root, &l, &c));
    CU_ASSERT(l == 2 && c == 1);
    CU_ASSERT_FALSE(csl_yaml_key_pos(y, root, &l, &c));

    const cJSON *name = cJSON_GetObjectItem(root, "name");
    CU_ASSERT(csl_yaml_pos(y, name, &l, &c) && l == 2 && c == 7);
    CU_ASSERT(csl_yaml_key_pos(y, name, &l, &c) && l == 2 && c == 1);

    const cJSON *spec = cJSON_GetObjectItem(root, "spec");
    CU_ASSERT(csl_yaml_pos(y, spec, &l, &c) && l == 4 && c == 3);
    CU_ASSERT(csl_yaml_key_pos(y, spec, &l, &c) && l == 3 && c == 1);

    const cJSON *cpu = cJSON_GetObjectItem(spec, "cpu");
    CU_ASSERT(csl_yaml_pos(y, cpu, &l, &c) && l == 4 && c == 10);
    CU_ASSERT(csl_yaml_key_pos(y, cpu, &l, &c) && l == 4 && c == 3);

    const cJSON *zones = cJSON_GetObjectItem(spec, "zones");
    CU_ASSERT(csl_yaml_pos(y, zones, &l, &c) && l == 6 && c == 5);
    const cJSON *z0 = cJSON_GetArrayItem(zones, 0);
    CU_ASSERT(csl_yaml_pos(y, z0, &l, &c) && l == 6 && c == 7);
    CU_ASSERT_FALSE(csl_yaml_key_pos(y, z0, &l, &c));
    const cJSON *z1 = cJSON_GetArrayItem(zones, 1);
    CU_ASSERT(csl_yaml_pos(y, z1, &l, &c) && l == 7 && c == 7);
    const cJSON *q = cJSON_GetObjectItem(z1, "q");
    CU_ASSERT(csl_yaml_pos(y, q, &l, &c) && l == 7 && c == 19);
    CU_ASSERT(csl_yaml_key_pos(y, q, &l, &c) && l == 7 && c == 14);

    const cJSON *qk = cJSON_GetObjectItem(spec, "quoted key");
    CU_ASSERT(csl_yaml_pos(y, qk, &l, &c) && l == 8 && c == 17);
    CU_ASSERT(csl_yaml_key_pos(y, qk, &l, &c) && l == 8 && c == 3);

    /* Nodes that are not from y have no position. */
    cJSON *other = cJSON_CreateString("x");
    CU_ASSERT_FALSE(csl_yaml_pos(y, other, &l, &c));
    CU_ASSERT_FALSE(csl_yaml_pos(y, NULL, &l, &c));
    cJSON_Delete(other);

    /* Columns count characters, not bytes. */
    csl_yaml_free(y);
    y = load("\xc3\xa9t\xc3\xa9: v\n", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT(csl_yaml_pos(y, csl_yaml_doc(y, 0)->child, &l, &c) && l == 1 && c == 6);
    csl_yaml_free(y);
}

static void test_multi_doc(void)
{
    const char *text = "a: 1\n"
                       "---\n"
                       "b: 2\n"
                       "---\n"
                       "...\n"
                       "---\n"
                       "- x\n";
    csl_yaml *y = load(text, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(csl_yaml_count(y), 4);
    CU_ASSERT(doc_json_is(y, 0, "{\"a\":1}"));
    CU_ASSERT(doc_json_is(y, 1, "{\"b\":2}"));
    CU_ASSERT(cJSON_IsNull(csl_yaml_doc(y, 2)));
    CU_ASSERT(doc_json_is(y, 3, "[\"x\"]"));
    int l = 0;
    CU_ASSERT(csl_yaml_pos(y, cJSON_GetObjectItem(csl_yaml_doc(y, 1), "b"), &l, NULL) && l == 3);

    /* take_doc hands the tree over and drops its positions, the others keep
     * theirs. */
    cJSON *taken = csl_yaml_take_doc(y, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(taken);
    CU_ASSERT_FALSE(csl_yaml_pos(y, taken, NULL, NULL));
    CU_ASSERT_FALSE(csl_yaml_pos(y, taken->child, NULL, NULL));
    CU_ASSERT_PTR_NULL(csl_yaml_doc(y, 1));
    CU_ASSERT_PTR_NULL(csl_yaml_take_doc(y, 1));
    CU_ASSERT_PTR_NULL(csl_yaml_take_doc(y, 9));
    CU_ASSERT(all_have_pos(y, csl_yaml_doc(y, 0)));
    CU_ASSERT(all_have_pos(y, csl_yaml_doc(y, 3)));
    csl_yaml_free(y);
    cJSON_Delete(taken);

    /* An empty stream has no documents. */
    y = load("", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(csl_yaml_count(y), 0);
    CU_ASSERT_PTR_NULL(csl_yaml_doc(y, 0));
    csl_yaml_free(y);
    y = load("# only a comment\n", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(csl_yaml_count(y), 0);
    csl_yaml_free(y);

    /* Anchors do not reach across documents. */
    csl_yaml_err err = load_fail("a: &x 1\n---\nb: *x\n");
    CU_ASSERT_EQUAL(err.line, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown anchor \"x\""));
}

/* ---------------------------------------------------------------- aliases */

static void test_aliases(void)
{
    const char *text = "base: &b\n"               /* 1 */
                       "  cpu: 2\n"               /* 2 */
                       "  tags: &t [x, y]\n"      /* 3 */
                       "one: *b\n"                /* 4 */
                       "list: [*t, *t, &s str]\n" /* 5 */
                       "again: *s\n";             /* 6 */
    csl_yaml *y = load(text, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT(doc_json_is(y, 0,
                          "{\"base\":{\"cpu\":2,\"tags\":[\"x\",\"y\"]},\"one\":{\"cpu\":2,"
                          "\"tags\":[\"x\",\"y\"]},\"list\":[[\"x\",\"y\"],[\"x\",\"y\"],"
                          "\"str\"],\"again\":\"str\"}"));
    const cJSON *root = csl_yaml_doc(y, 0);
    const cJSON *base = cJSON_GetObjectItem(root, "base");
    const cJSON *one = cJSON_GetObjectItem(root, "one");
    /* Copies, not shared nodes: freeing the tree once must be enough. */
    CU_ASSERT_PTR_NOT_EQUAL(base, one);
    CU_ASSERT_PTR_NOT_EQUAL(base->child, one->child);
    CU_ASSERT(all_have_pos(y, root));
    int l, c;
    /* The copy sits where the alias is; its insides point at the anchor. */
    CU_ASSERT(csl_yaml_pos(y, one, &l, &c) && l == 4 && c == 6);
    CU_ASSERT(csl_yaml_key_pos(y, one, &l, &c) && l == 4 && c == 1);
    CU_ASSERT(csl_yaml_pos(y, cJSON_GetObjectItem(one, "cpu"), &l, &c) && l == 2);
    const cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "list"), 0);
    CU_ASSERT(csl_yaml_pos(y, t0, &l, &c) && l == 5 && c == 8);
    CU_ASSERT_FALSE(csl_yaml_key_pos(y, t0, &l, &c));
    csl_yaml_free(y);

    /* A redefined anchor: the latest definition wins. */
    y = load("- &a 1\n- *a\n- &a 2\n- *a\n", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT(doc_json_is(y, 0, "[1,1,2,2]"));
    csl_yaml_free(y);

    csl_yaml_err err = load_fail("a: *nope\n");
    CU_ASSERT(err.line == 1 && err.col == 4);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown anchor \"nope\""));
    /* An anchor cannot be used inside itself. */
    err = load_fail("a: &r [1, *r]\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown anchor \"r\""));
    err = load_fail("k: &k v\n*k : 2\n");
    CU_ASSERT_EQUAL(err.line, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mapping keys must be plain strings, not aliases"));
    err = load_fail("? [a, b]\n: 1\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mapping keys must be plain strings"));
}

static void test_billion_laughs(void)
{
    const char *text = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                       "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                       "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                       "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                       "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                       "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                       "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
    csl_yaml_err err = load_fail(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "billion laughs"));
    CU_ASSERT(err.line >= 6 && err.line <= 9);
    CU_ASSERT(err.col > 0);

    /* Moderate reuse below the bound is fine. */
    csl_yaml *y = load("a: &a [1, 2, 3]\nb: [*a, *a, *a]\nc: {x: *a}\n", NULL);
    CU_ASSERT_PTR_NOT_NULL(y);
    csl_yaml_free(y);

    /* Merges count too. */
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, "m0: &m0 {k0: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n");
    for (int i = 1; i <= 9; i++)
        csl_buf_printf(&b, "m%d: &m%d [*m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d, *m%d]\n", i,
                       i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    err = load_fail(csl_buf_str(&b));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "billion laughs"));
    csl_buf_free(&b);

    /* Deep nesting is refused, not a stack overflow. */
    csl_buf_init(&b);
    for (int i = 0; i < 2000; i++) csl_buf_putc(&b, '[');
    for (int i = 0; i < 2000; i++) csl_buf_putc(&b, ']');
    err = load_fail(csl_buf_str(&b));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "deeper than"));
    csl_buf_free(&b);
}

static void test_merge_keys(void)
{
    const char *text = "defaults: &d\n"
                       "  cpu: 1\n"
                       "  zone: hk-1a\n"
                       "  image: debian-12\n"
                       "big: &big\n"
                       "  cpu: 8\n"
                       "  memory: 16Gi\n"
                       "one:\n"
                       "  <<: *d\n"
                       "  cpu: 4\n"
                       "two:\n"
                       "  zone: sg-1\n"
                       "  <<: [*big, *d]\n"
                       "three:\n"
                       "  <<: {inline: true}\n"
                       "  '<<': literal\n";
    csl_yaml *y = load(text, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    const cJSON *root = csl_yaml_doc(y, 0);
    char *one = cJSON_PrintUnformatted(cJSON_GetObjectItem(root, "one"));
    char *two = cJSON_PrintUnformatted(cJSON_GetObjectItem(root, "two"));
    char *three = cJSON_PrintUnformatted(cJSON_GetObjectItem(root, "three"));
    /* Explicit keys win, wherever they stand; earlier sources beat later. */
    CU_ASSERT_STRING_EQUAL(one, "{\"cpu\":4,\"zone\":\"hk-1a\",\"image\":\"debian-12\"}");
    CU_ASSERT_STRING_EQUAL(
        two, "{\"zone\":\"sg-1\",\"cpu\":8,\"memory\":\"16Gi\",\"image\":\"debian-12\"}");
    CU_ASSERT_STRING_EQUAL(three, "{\"<<\":\"literal\",\"inline\":true}");
    free(one);
    free(two);
    free(three);
    CU_ASSERT(all_have_pos(y, root));
    /* A merged member keeps the position of the line that defined it. */
    int l, c;
    const cJSON *img = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "one"), "image");
    CU_ASSERT(csl_yaml_key_pos(y, img, &l, &c) && l == 4 && c == 3);
    /* The anchored original is untouched. */
    CU_ASSERT(doc_json_is(y, 0,
                          "{\"defaults\":{\"cpu\":1,\"zone\":\"hk-1a\",\"image\":"
                          "\"debian-12\"},\"big\":{\"cpu\":8,\"memory\":\"16Gi\"},"
                          "\"one\":{\"cpu\":4,\"zone\":\"hk-1a\",\"image\":\"debian-12\"},"
                          "\"two\":{\"zone\":\"sg-1\",\"cpu\":8,\"memory\":\"16Gi\","
                          "\"image\":\"debian-12\"},\"three\":{\"<<\":\"literal\","
                          "\"inline\":true}}"));
    csl_yaml_free(y);

    /* Anchors inside a merge source stay usable later in the document. */
    y = load("a:\n  <<: {k: &in [1, 2]}\nb: *in\n", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT(doc_json_is(y, 0, "{\"a\":{\"k\":[1,2]},\"b\":[1,2]}"));
    CU_ASSERT(all_have_pos(y, csl_yaml_doc(y, 0)));
    csl_yaml_free(y);

    csl_yaml_err err = load_fail("a: &s text\nb:\n  <<: *s\n");
    CU_ASSERT(err.line == 3 && err.col == 7);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "merge key \"<<\" takes a mapping"));
    err = load_fail("b:\n  <<: [{a: 1}, 2]\n");
    CU_ASSERT(err.line == 2 && err.col == 16);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a mapping"));
}

/* ---------------------------------------------------------------- errors */

static void test_duplicate_keys(void)
{
    csl_yaml_err err = load_fail("name: a\nspec:\n  cpu: 1\n  mem: 2\n  cpu: 3\n");
    CU_ASSERT_EQUAL(err.line, 5);
    CU_ASSERT_EQUAL(err.col, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "duplicate key \"cpu\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line 3, column 3"));
    CU_ASSERT_STRING_EQUAL(err.file, "test.yaml");

    err = load_fail("{a: 1, b: 2, \"a\": 3}");
    CU_ASSERT(err.line == 1 && err.col == 14);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "line 1, column 2"));

    /* Big mappings are checked through the key set. */
    csl_buf b = CSL_BUF_INIT;
    for (int i = 0; i < 200; i++) csl_buf_printf(&b, "key%d: %d\n", i, i);
    csl_yaml *y = load(csl_buf_str(&b), NULL);
    CU_ASSERT_PTR_NOT_NULL(y);
    CU_ASSERT(y && cJSON_GetArraySize(csl_yaml_doc(y, 0)) == 200);
    CU_ASSERT(y && cJSON_GetObjectItem(csl_yaml_doc(y, 0), "key150")->valueint == 150);
    csl_yaml_free(y);
    csl_buf_puts(&b, "key3: again\n");
    err = load_fail(csl_buf_str(&b));
    CU_ASSERT(err.line == 201 && err.col == 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "duplicate key \"key3\": it is already set at line 4"));
    csl_buf_free(&b);
}

static void test_syntax_errors(void)
{
    csl_yaml_err err = load_fail("a: 1\nb: [1, 2\nc: 3\n");
    CU_ASSERT(err.line >= 2);
    CU_ASSERT(err.col >= 1);
    CU_ASSERT(strlen(err.msg) > 10);
    CU_ASSERT_STRING_EQUAL(err.file, "test.yaml");
    char out[600], want[600];
    csl_yaml_err_format(&err, out, sizeof out);
    snprintf(want, sizeof want, "test.yaml:%d:%d: %s", err.line, err.col, err.msg);
    CU_ASSERT_STRING_EQUAL(out, want);

    err = load_fail("key: value\n  bad: indent\n");
    CU_ASSERT(err.line == 2 && err.col == 6);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "mapping values are not allowed"));

    err = load_fail("a:\n\tb: 1\n");
    CU_ASSERT(err.line == 2 && err.col == 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "tabs cannot indent YAML"));

    err = load_fail("a: \"unterminated\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "quoted scalar"));

    err = load_fail("a: b\n\xff\xfe: c\n");
    CU_ASSERT(err.line == 2 && err.col == 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "UTF-8"));

    err = load_fail("a: \"nul\\0inside\"\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "NUL"));

    /* Without a position the format leaves it out. */
    csl_yaml_err e = {"x.yaml", 0, 0, "cannot open: gone"};
    csl_yaml_err_format(&e, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "x.yaml: cannot open: gone");
    char tiny[8];
    csl_yaml_err_format(&e, tiny, sizeof tiny);
    CU_ASSERT_STRING_EQUAL(tiny, "x.yaml:");
}

static void test_files(void)
{
    csl_yaml_err err;
    memset(&err, 0, sizeof err);
    csl_yaml *y = csl_yaml_load_file("/nonexistent/dir/scenario.yaml", &err);
    CU_ASSERT_PTR_NULL(y);
    CU_ASSERT_STRING_EQUAL(err.file, "/nonexistent/dir/scenario.yaml");
    CU_ASSERT_EQUAL(err.line, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "No such file or directory"));

    y = csl_yaml_load_file("/tmp", &err);
    CU_ASSERT_PTR_NULL(y);
    CU_ASSERT_EQUAL(err.line, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "directory"));

    char path[] = "/tmp/csl-test-yaml-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    const char *text = "kind: Config\ncontexts:\n- name: local\n  cluster: c1\n---\nx: 1\n";
    CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    y = csl_yaml_load_file(path, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_STRING_EQUAL(csl_yaml_name(y), path);
    CU_ASSERT_EQUAL(csl_yaml_count(y), 2);
    const cJSON *ctx = cJSON_GetArrayItem(cJSON_GetObjectItem(csl_yaml_doc(y, 0), "contexts"), 0);
    const cJSON *cluster = cJSON_GetObjectItem(ctx, "cluster");

    /* errorf names the file and the node's place. */
    csl_yaml_errorf(y, cluster, &err, "cluster \"%s\" not found", cluster->valuestring);
    CU_ASSERT_STRING_EQUAL(err.file, path);
    CU_ASSERT(err.line == 4 && err.col == 12);
    CU_ASSERT_STRING_EQUAL(err.msg, "cluster \"c1\" not found");
    csl_yaml_errorf(y, NULL, &err, "no %s", "node");
    CU_ASSERT(err.line == 0 && err.col == 0);
    char out[600], want[600];
    csl_yaml_err_format(&err, out, sizeof out);
    snprintf(want, sizeof want, "%s: no node", path);
    CU_ASSERT_STRING_EQUAL(out, want);
    csl_yaml_free(y);

    /* Errors from a file carry its path. */
    fd = open(path, O_WRONLY | O_TRUNC);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_FATAL(write(fd, "a: [\n", 5) == 5);
    close(fd);
    y = csl_yaml_load_file(path, &err);
    CU_ASSERT_PTR_NULL(y);
    CU_ASSERT_STRING_EQUAL(err.file, path);
    CU_ASSERT(err.line >= 1);
    unlink(path);

    /* A nameless string gets a stand-in name. */
    y = csl_yaml_load_string("a: [", 4, NULL, &err);
    CU_ASSERT_PTR_NULL(y);
    CU_ASSERT_STRING_EQUAL(err.file, "<string>");
}

/* A 10,000-item list, the size a scale scenario may produce. */
static void test_big_list(void)
{
    enum { N = 10000 };
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, "items:\n");
    for (int i = 0; i < N; i++)
        csl_buf_printf(&b, "- name: server-%d\n  cpu: %d\n  zone: hk-1a\n", i, i % 8 + 1);
    csl_yaml_err err;
    csl_yaml *y = load(csl_buf_str(&b), &err);
    csl_buf_free(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    const cJSON *items = cJSON_GetObjectItem(csl_yaml_doc(y, 0), "items");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items), N);
    CU_ASSERT(all_have_pos(y, csl_yaml_doc(y, 0)));
    const cJSON *last = items->child->prev; /* cJSON keeps the tail there */
    int l, c;
    CU_ASSERT(csl_yaml_pos(y, cJSON_GetObjectItem(last, "cpu"), &l, &c));
    CU_ASSERT_EQUAL(l, 2 + 3 * (N - 1) + 1);
    CU_ASSERT_EQUAL(c, 8);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(last, "name")->valuestring, "server-9999");
    csl_yaml_free(y);
}

/* Many nodes leave the position table (merge sources at each document's
 * end, a taken document) while many stay: every survivor must still answer
 * with its own line. */
static void test_position_table_churn(void)
{
    enum { N = 3000 };
    csl_buf b = CSL_BUF_INIT;
    for (int i = 0; i < N; i++)
        csl_buf_printf(&b, "- {<<: {a: %d, b: [1, 2], c: x}, id: %d}\n", i, i);
    csl_buf_puts(&b, "---\n");
    for (int i = 0; i < N; i++) csl_buf_printf(&b, "- [%d, {k: %d}]\n", i, i);
    csl_yaml_err err;
    csl_yaml *y = load(csl_buf_str(&b), &err);
    csl_buf_free(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(y);
    CU_ASSERT_EQUAL(csl_yaml_count(y), 2);
    const cJSON *first = csl_yaml_doc(y, 0);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(first), N);
    CU_ASSERT(all_have_pos(y, first));
    cJSON *taken = csl_yaml_take_doc(y, 0);
    const cJSON *second = csl_yaml_doc(y, 1);
    int i = 0, bad = 0;
    for (const cJSON *item = second->child; item; item = item->next, i++) {
        int l = 0, c = 0, kl = 0, kc = 0;
        const cJSON *num = item->child, *k = cJSON_GetObjectItem(num->next, "k");
        int line = N + 2 + i;
        if (!csl_yaml_pos(y, item, &l, &c) || l != line || c != 3) bad++;
        if (!csl_yaml_pos(y, num, &l, &c) || l != line || c != 4) bad++;
        if (!csl_yaml_pos(y, k, &l, &c) || l != line || num->valueint != k->valueint) bad++;
        if (!csl_yaml_key_pos(y, k, &kl, &kc) || kl != line || kc >= c) bad++;
    }
    CU_ASSERT_EQUAL(i, N);
    CU_ASSERT_EQUAL(bad, 0);
    for (const cJSON *item = taken->child; item; item = item->next)
        if (csl_yaml_pos(y, item, NULL, NULL) || csl_yaml_pos(y, item->child, NULL, NULL)) bad++;
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(taken, 7), "a")->valueint, 7);
    cJSON_Delete(taken);
    csl_yaml_free(y);
}

static CU_TestInfo yaml_tests[] = {
    {"core-schema scalar typing", test_scalar_typing},
    {"nested mappings and sequences", test_nested},
    {"positions of values and keys", test_positions},
    {"multi-document streams, take_doc", test_multi_doc},
    {"aliases", test_aliases},
    {"billion laughs and deep nesting refused", test_billion_laughs},
    {"merge keys", test_merge_keys},
    {"duplicate keys name both places", test_duplicate_keys},
    {"syntax errors say file:line:col", test_syntax_errors},
    {"files: unreadable, errors, errorf", test_files},
    {"10,000-item list", test_big_list},
    {"position table under churn", test_position_table_churn},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"yaml", NULL, NULL, NULL, NULL, yaml_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
