/* test_runner_template.c — {{NAME}} templates of scenario strings.
 *
 * Expansion of every name, numbers becoming numbers only when a string is
 * exactly one template, literal "{{" through a quoted literal, keys, and
 * every way a template can be wrong (unknown name, unknown variable,
 * {{index}} without count, unclosed or empty braces). */
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "../../scenarios/runner/template.h"

static cJSON *vars_obj(void)
{
    cJSON *v =
        cJSON_Parse("{\"image\":\"debian-12\",\"n\":3,\"ratio\":1.5,\"on\":true,\"list\":[1]}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    return v;
}

static sr_tvars tv(const cJSON *vars, long index)
{
    sr_tvars v = {.index = index,
                  .ns = "sr-web-1a2b",
                  .scenario = "web",
                  .run = "20260101-000000-abcd",
                  .seed = 42,
                  .vars = vars};
    return v;
}

/* Expands s and compares with want (NULL: must fail with err containing errsub). */
static void expect_str(const char *s, const sr_tvars *v, const char *want, const char *errsub)
{
    char err[256] = "";
    char *r = sr_template_expand_str(s, v, err, sizeof err);
    if (want) {
        CU_ASSERT_PTR_NOT_NULL(r);
        if (r) {
            CU_ASSERT_STRING_EQUAL(r, want);
            if (strcmp(r, want)) fprintf(stderr, "\n  %s -> %s, want %s\n", s, r, want);
        }
    } else {
        CU_ASSERT_PTR_NULL(r);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, errsub));
        if (!strstr(err, errsub))
            fprintf(stderr, "\n  %s: err \"%s\", want \"%s\"\n", s, err, errsub);
    }
    free(r);
}

static void test_names(void)
{
    cJSON *vars = vars_obj();
    sr_tvars v = tv(vars, 7);
    expect_str("web-{{index}}", &v, "web-7", NULL);
    expect_str("{{namespace}}/web-0", &v, "sr-web-1a2b/web-0", NULL);
    expect_str("{{scenario}}:{{run}}:{{seed}}", &v, "web:20260101-000000-abcd:42", NULL);
    expect_str("{{ index }}", &v, "7", NULL);
    expect_str("img={{vars.image}} n={{vars.n}} r={{vars.ratio}} on={{vars.on}}", &v,
               "img=debian-12 n=3 r=1.5 on=true", NULL);
    expect_str("no templates here", &v, "no templates here", NULL);
    expect_str("", &v, "", NULL);
    cJSON_Delete(vars);
}

static void test_literals(void)
{
    sr_tvars v = tv(NULL, -1);
    expect_str("{{\"{{\"}}", &v, "{{", NULL);
    expect_str("a {{\"{{\"}}b}} c", &v, "a {{b}} c", NULL);
    expect_str("{{'}}'}}", &v, "}}", NULL);
    expect_str("closing }} alone", &v, "closing }} alone", NULL);
    expect_str("{{\"{{\"}}index}}", &v, "{{index}}", NULL);
}

static void test_errors(void)
{
    cJSON *vars = vars_obj();
    sr_tvars v = tv(vars, -1);
    expect_str("{{nmspace}}", &v, NULL, "unknown template variable {{nmspace}}");
    expect_str("x-{{index}}", &v, NULL, "only defined inside an operation with count");
    expect_str("{{vars.imge}}", &v, NULL,
               "unknown variable {{vars.imge}}; setup.vars defines image, n");
    expect_str("{{vars.list}}", &v, NULL, "is a list");
    expect_str("web-{{index", &v, NULL, "unclosed \"{{\"");
    expect_str("{{}}", &v, NULL, "empty {{}}");
    expect_str("{{\"abc}}", &v, NULL, "unclosed");
    sr_tvars nov = tv(NULL, 0);
    expect_str("{{vars.x}}", &nov, NULL, "setup.vars defines no variables");
    cJSON_Delete(vars);
}

static void test_expand_tree(void)
{
    cJSON *vars = vars_obj();
    sr_tvars v = tv(vars, 2);
    cJSON *in = cJSON_Parse(
        "{\"metadata\":{\"name\":\"web-{{index}}\",\"labels\":{\"i-{{index}}\":\"{{scenario}}\"}},"
        "\"spec\":{\"cpu\":\"{{index}}\",\"n\":\"{{vars.n}}\",\"r\":\" {{vars.n}}\","
        "\"img\":\"{{vars.image}}\",\"lit\":\"{{\\\"3\\\"}}\",\"seed\":\"{{seed}}\","
        "\"list\":[\"{{index}}\",true,null,1.25]}}");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char err[256] = "";
    cJSON *out = sr_template_expand(in, &v, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    const cJSON *md = cJSON_GetObjectItem(out, "metadata"),
                *spec = cJSON_GetObjectItem(out, "spec");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(md, "name")->valuestring, "web-2");
    const cJSON *lab = cJSON_GetObjectItem(cJSON_GetObjectItem(md, "labels"), "i-2");
    CU_ASSERT_PTR_NOT_NULL(lab);
    if (lab) CU_ASSERT_STRING_EQUAL(lab->valuestring, "web");
    /* Exactly one template with a numeric value: a number. */
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(spec, "cpu")));
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(spec, "cpu")->valuedouble, 2);
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(spec, "n")));
    CU_ASSERT(cJSON_IsNumber(cJSON_GetObjectItem(spec, "seed")));
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(spec, "seed")->valuedouble, 42);
    /* Anything around it, or a quoted literal, keeps a string. */
    CU_ASSERT(cJSON_IsString(cJSON_GetObjectItem(spec, "r")));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(spec, "r")->valuestring, " 3");
    CU_ASSERT(cJSON_IsString(cJSON_GetObjectItem(spec, "lit")));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(spec, "lit")->valuestring, "3");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(spec, "img")->valuestring, "debian-12");
    const cJSON *list = cJSON_GetObjectItem(spec, "list");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(list), 4);
    CU_ASSERT(cJSON_IsNumber(cJSON_GetArrayItem(list, 0)));
    CU_ASSERT(cJSON_IsTrue(cJSON_GetArrayItem(list, 1)));
    CU_ASSERT(cJSON_IsNull(cJSON_GetArrayItem(list, 2)));
    CU_ASSERT_EQUAL(cJSON_GetArrayItem(list, 3)->valuedouble, 1.25);
    /* The input is left as it was. */
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(in, "metadata"), "name")->valuestring,
        "web-{{index}}");
    cJSON_Delete(out);

    /* A bad name anywhere fails the whole expansion. */
    sr_tvars noidx = tv(vars, -1);
    out = sr_template_expand(in, &noidx, err, sizeof err);
    CU_ASSERT_PTR_NULL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "{{index}}"));
    cJSON_Delete(in);
    cJSON_Delete(vars);
}

static void test_big_seed(void)
{
    sr_tvars v = tv(NULL, -1);
    v.seed = UINT64_C(18446744073709551615);
    cJSON *in = cJSON_CreateString("{{seed}}");
    char err[128];
    cJSON *out = sr_template_expand(in, &v, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    /* Beyond 2^53 a double would change it: stays text, exact. */
    CU_ASSERT(cJSON_IsString(out));
    CU_ASSERT_STRING_EQUAL(out->valuestring, "18446744073709551615");
    cJSON_Delete(out);
    cJSON_Delete(in);
}

static void test_check(void)
{
    cJSON *vars = vars_obj();
    char err[256] = "";
    cJSON *ok = cJSON_Parse(
        "{\"a\":\"{{namespace}}\",\"b\":[\"{{vars.n}}\",{\"c\":\"{{\\\"{{\\\"}}\"}}],\"d\":5}");
    CU_ASSERT_PTR_NULL(sr_template_check(ok, false, vars, err, sizeof err));
    CU_ASSERT_PTR_NULL(sr_template_check(NULL, false, vars, err, sizeof err));

    cJSON *idx = cJSON_Parse("{\"a\":\"x\",\"b\":[\"ok\",\"web-{{index}}\"]}");
    const cJSON *bad = sr_template_check(idx, false, vars, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(bad);
    if (bad) CU_ASSERT_STRING_EQUAL(bad->valuestring, "web-{{index}}");
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "count"));
    CU_ASSERT_PTR_NULL(sr_template_check(idx, true, vars, err, sizeof err));

    /* A key is checked too: the member is what comes back. */
    cJSON *key = cJSON_Parse("{\"labels\":{\"{{nope}}\":\"x\"}}");
    bad = sr_template_check(key, true, vars, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(bad);
    if (bad) CU_ASSERT_STRING_EQUAL(bad->string, "{{nope}}");
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown template variable {{nope}}"));

    cJSON *unk = cJSON_CreateString("{{vars.zone}}");
    CU_ASSERT_PTR_EQUAL(sr_template_check(unk, true, vars, err, sizeof err), unk);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown variable {{vars.zone}}"));
    CU_ASSERT_PTR_EQUAL(sr_template_check(unk, true, NULL, err, sizeof err), unk);

    cJSON_Delete(ok);
    cJSON_Delete(idx);
    cJSON_Delete(key);
    cJSON_Delete(unk);
    cJSON_Delete(vars);
}

static CU_TestInfo template_tests[] = {
    {"names expand", test_names},
    {"quoted literals", test_literals},
    {"errors name the problem", test_errors},
    {"trees: numbers, keys, untouched input", test_expand_tree},
    {"a seed beyond 2^53 stays exact", test_big_seed},
    {"check finds the offending node", test_check},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"runner_template", NULL, NULL, NULL, NULL, template_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
