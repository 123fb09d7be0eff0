/* test_mockcloud_tokens.c — bearer tokens (mockcloud/tokens.c) and the
 * start-up config's top level (mockcloud/config.c). */
#include "../testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../mockcloud/server_priv.h"
#include "../../mockcloud/tokens.h"

static char tmpdir[] = "/tmp/test-mc-tokens-XXXXXX";

static int suite_init(void)
{
    static bool made;
    if (!made) made = mkdtemp(tmpdir) != NULL;
    return made ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to tmpdir/name; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* ---------------------------------------------------------------- tokens */

static void test_access_parse(void)
{
    mc_access a = MC_ACCESS_NONE;
    CU_ASSERT_EQUAL(mc_access_parse("read-only", &a), 0);
    CU_ASSERT_EQUAL(a, MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_access_parse("rw", &a), 0);
    CU_ASSERT_EQUAL(a, MC_ACCESS_READ_WRITE);
    CU_ASSERT_EQUAL(mc_access_parse("ro", &a), 0);
    CU_ASSERT_EQUAL(a, MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_access_parse("admin", &a), -1);
    CU_ASSERT_EQUAL(a, MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_access_parse(NULL, &a), -1);
    CU_ASSERT_STRING_EQUAL(mc_access_name(MC_ACCESS_READ_WRITE), "read-write");
    CU_ASSERT_STRING_EQUAL(mc_access_name(MC_ACCESS_NONE), "none");
}

static void test_token_validity(void)
{
    CU_ASSERT_PTR_NULL(mc_token_invalid("abc-123_X.y"));
    CU_ASSERT_PTR_NOT_NULL(mc_token_invalid(""));
    CU_ASSERT_PTR_NOT_NULL(mc_token_invalid("a b"));
    CU_ASSERT_PTR_NOT_NULL(mc_token_invalid("tab\there"));
    CU_ASSERT_PTR_NOT_NULL(mc_token_invalid("caf\xc3\xa9"));
    char big[MC_TOKEN_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CU_ASSERT_PTR_NOT_NULL(mc_token_invalid(big));
    big[MC_TOKEN_MAX] = '\0';
    CU_ASSERT_PTR_NULL(mc_token_invalid(big));
}

static void test_auth_off_until_a_token(void)
{
    mc_tokens *t = mc_tokens_new();
    CU_ASSERT_FALSE(mc_tokens_auth_on(t));
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "x"), MC_ACCESS_NONE);
    CU_ASSERT_EQUAL(mc_tokens_put(t, "x", MC_ACCESS_READ_WRITE), 1);
    CU_ASSERT_TRUE(mc_tokens_auth_on(t));
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "x"), MC_ACCESS_READ_WRITE);
    /* Changing access is not adding. */
    CU_ASSERT_EQUAL(mc_tokens_put(t, "x", MC_ACCESS_READ_ONLY), 0);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "x"), MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_tokens_count(t), 1);
    /* Revoking the last token keeps auth on: nobody gets in. */
    CU_ASSERT_EQUAL(mc_tokens_remove(t, "x"), 0);
    CU_ASSERT_EQUAL(mc_tokens_remove(t, "x"), -1);
    CU_ASSERT_TRUE(mc_tokens_auth_on(t));
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "x"), MC_ACCESS_NONE);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, NULL), MC_ACCESS_NONE);
    CU_ASSERT_EQUAL(mc_tokens_put(t, "bad token", MC_ACCESS_READ_WRITE), -1);
    CU_ASSERT_EQUAL(mc_tokens_put(t, "ok", MC_ACCESS_NONE), -1);
    mc_tokens_free(t);
}

static void test_flag_suffixes(void)
{
    mc_tokens *t = mc_tokens_new();
    char err[256];
    CU_ASSERT_EQUAL(mc_tokens_put_flag(t, "plain", err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_tokens_put_flag(t, "reader:ro", err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_tokens_put_flag(t, "writer:rw", err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_tokens_put_flag(t, "a:b:c", err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "plain"), MC_ACCESS_READ_WRITE);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "reader"), MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "reader:ro"), MC_ACCESS_NONE);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "writer"), MC_ACCESS_READ_WRITE);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "a:b:c"), MC_ACCESS_READ_WRITE);
    err[0] = '\0';
    CU_ASSERT_EQUAL(mc_tokens_put_flag(t, ":ro", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "empty"));
    CU_ASSERT_EQUAL(mc_tokens_put_flag(t, "has space", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "space"));
    mc_tokens_free(t);
}

static void test_file(void)
{
    mc_tokens *t = mc_tokens_new();
    char err[512];
    const char *p = write_file("good", "# team tokens\n\nalpha\n  beta ro  # trailing comment\n"
                                       "gamma read-write\r\n");
    CU_ASSERT_EQUAL(mc_tokens_load_file(t, p, err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_tokens_count(t), 3);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "alpha"), MC_ACCESS_READ_WRITE);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "beta"), MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "gamma"), MC_ACCESS_READ_WRITE);

    /* An error names file:line, and nothing of that file is added. */
    p = write_file("bad", "delta\nepsilon admin\n");
    CU_ASSERT_EQUAL(mc_tokens_load_file(t, p, err, sizeof err), -1);
    char want[300];
    snprintf(want, sizeof want, "%s:2:", p);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "admin"));
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "delta"), MC_ACCESS_NONE);

    p = write_file("words", "one two three\n");
    CU_ASSERT_EQUAL(mc_tokens_load_file(t, p, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, ":1:"));

    CU_ASSERT_EQUAL(mc_tokens_load_file(t, "/nonexistent/tokens", err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/tokens"));
    CU_ASSERT_EQUAL(mc_tokens_count(t), 3);
    mc_tokens_free(t);
}

static void test_baseline(void)
{
    mc_tokens *t = mc_tokens_new();
    CU_ASSERT_EQUAL(mc_tokens_set_baseline(t), 0);
    mc_tokens_put(t, "later", MC_ACCESS_READ_WRITE);
    CU_ASSERT_TRUE(mc_tokens_auth_on(t));
    mc_tokens_restore(t);
    /* The baseline was empty with auth off: back to open. */
    CU_ASSERT_FALSE(mc_tokens_auth_on(t));
    CU_ASSERT_EQUAL(mc_tokens_count(t), 0);

    mc_tokens_put(t, "a", MC_ACCESS_READ_WRITE);
    mc_tokens_put(t, "b", MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_tokens_set_baseline(t), 0);
    mc_tokens_remove(t, "a");
    mc_tokens_put(t, "b", MC_ACCESS_READ_WRITE);
    mc_tokens_put(t, "c", MC_ACCESS_READ_WRITE);
    mc_tokens_restore(t);
    CU_ASSERT_EQUAL(mc_tokens_count(t), 2);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "a"), MC_ACCESS_READ_WRITE);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "b"), MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_tokens_lookup(t, "c"), MC_ACCESS_NONE);

    cJSON *list = mc_tokens_list(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(list);
    CU_ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItem(list, "authEnabled")));
    cJSON *items = cJSON_GetObjectItem(list, "items");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items), 2);
    cJSON *first = cJSON_GetArrayItem(items, 0);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(first, "token")->valuestring, "a");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(first, "access")->valuestring, "read-write");
    cJSON_Delete(list);
    mc_tokens_free(t);
}

/* ---------------------------------------------------------------- config */

/* Loads text as a config; returns mc_config_load's result, err filled. */
static int load(const char *text, mc_startup *st, char *err, size_t errsz)
{
    const char *p = write_file("cfg.yaml", text);
    err[0] = '\0';
    return mc_config_load(st, p, err, errsz);
}

static void test_config_top_level(void)
{
    mc_startup st;
    char err[512];
    CU_ASSERT_EQUAL(load("seed: 42\nfaults: []\ntokens: []\ncloud: {}\n", &st, err, sizeof err), 0);
    CU_ASSERT_TRUE(st.has_seed);
    CU_ASSERT_EQUAL(st.seed, 42);
    mc_config_free(&st);

    CU_ASSERT_EQUAL(load("seed: \"18446744073709551615\"\n", &st, err, sizeof err), 0);
    CU_ASSERT_EQUAL(st.seed, UINT64_MAX);
    mc_config_free(&st);

    CU_ASSERT_EQUAL(load("", &st, err, sizeof err), 0);
    CU_ASSERT_FALSE(st.has_seed);
    CU_ASSERT_PTR_NULL(st.root);
    mc_config_free(&st);

    /* The unknown key is named with its line and column. */
    CU_ASSERT_EQUAL(load("seed: 1\n  \nfualts: []\n", &st, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cfg.yaml:3:1:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "fualts"));
    mc_config_free(&st);

    CU_ASSERT_EQUAL(load("seed: -3\n", &st, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cfg.yaml:1:7:"));
    mc_config_free(&st);

    CU_ASSERT_EQUAL(load("seed: 1.5\n", &st, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "seed"));
    mc_config_free(&st);

    CU_ASSERT_EQUAL(load("faults: {a: 1}\n", &st, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "faults: must be a list"));
    mc_config_free(&st);

    CU_ASSERT_EQUAL(load("- a\n- b\n", &st, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "mapping"));
    mc_config_free(&st);

    /* A YAML syntax error comes with its position too. */
    CU_ASSERT_EQUAL(load("seed: [1, 2\n", &st, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cfg.yaml:"));
    mc_config_free(&st);
}

static void test_config_apply_tokens(void)
{
    mc_startup st;
    char err[512];
    mc_server s;
    memset(&s, 0, sizeof s);
    s.tokens = mc_tokens_new();
    CU_ASSERT_EQUAL(
        load("tokens:\n  - {token: abc, access: read-only}\n  - def:ro\n  - {token: ghi}\n", &st,
             err, sizeof err),
        0);
    CU_ASSERT_EQUAL(mc_config_apply(&st, &s, 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_tokens_lookup(s.tokens, "abc"), MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_tokens_lookup(s.tokens, "def"), MC_ACCESS_READ_ONLY);
    CU_ASSERT_EQUAL(mc_tokens_lookup(s.tokens, "ghi"), MC_ACCESS_READ_WRITE);
    mc_config_free(&st);

    CU_ASSERT_EQUAL(load("tokens:\n  - {token: abc, acess: read-only}\n", &st, err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_config_apply(&st, &s, 0, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cfg.yaml:2:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "acess"));
    mc_config_free(&st);

    CU_ASSERT_EQUAL(load("tokens:\n  - {access: read-only}\n", &st, err, sizeof err), 0);
    CU_ASSERT_EQUAL(mc_config_apply(&st, &s, 0, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"token\" is missing"));
    mc_config_free(&st);
    mc_tokens_free(s.tokens);
}

static CU_TestInfo token_tests[] = {
    {"access names", test_access_parse},
    {"token validity", test_token_validity},
    {"auth turns on with the first token", test_auth_off_until_a_token},
    {"--token suffixes", test_flag_suffixes},
    {"tokens file", test_file},
    {"baseline and restore", test_baseline},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo config_tests[] = {
    {"top level", test_config_top_level},
    {"tokens section", test_config_apply_tokens},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"tokens", suite_init, NULL, NULL, NULL, token_tests},
    {"config", suite_init, suite_clean, NULL, NULL, config_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
