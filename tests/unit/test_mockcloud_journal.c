/* test_mockcloud_journal.c — the request journal: the ring, every filter,
 * the query-argument parser and concurrent writers. */
#include "../testutil.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "../../mockcloud/journal.h"

#define T0 1764166886000LL /* 2025-11-26T14:21:26Z, in ms */

static mc_journal_entry entry(int64_t t, const char *method, const char *path, const char *op,
                              int status, const char *key, const char *fault)
{
    mc_journal_entry e;
    memset(&e, 0, sizeof e);
    e.time_ms = t;
    MC_JOURNAL_SET(e.method, method);
    MC_JOURNAL_SET(e.path, path);
    MC_JOURNAL_SET(e.op, op);
    e.status = status;
    e.latency_us = 1500;
    MC_JOURNAL_SET(e.idem_key, key);
    MC_JOURNAL_SET(e.fault, fault);
    MC_JOURNAL_SET(e.rules, fault ? "r1" : NULL);
    return e;
}

static void add(mc_journal *j, mc_journal_entry e)
{
    mc_journal_add(j, &e);
}

/* Seqs of a query's items, as "3,4,5"; static buffer. */
static const char *seqs(cJSON *q)
{
    static char s[4096];
    size_t n = 0;
    s[0] = '\0';
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(q, "items")) n += (size_t)snprintf(
        s + n, sizeof s - n, "%s%d", n ? "," : "", cJSON_GetObjectItem(it, "seq")->valueint);
    return s;
}

static int num(cJSON *q, const char *name)
{
    return cJSON_GetObjectItem(q, name)->valueint;
}

/* ---------------------------------------------------------------- ring */

static void test_ring_wrap(void)
{
    mc_journal *j = mc_journal_new(5);
    mc_journal_filter all = {0};
    cJSON *q = mc_journal_query(j, &all);
    CU_ASSERT_STRING_EQUAL(seqs(q), "");
    CU_ASSERT_EQUAL(num(q, "matched"), 0);
    CU_ASSERT_EQUAL(num(q, "lastSeq"), 0);
    cJSON_Delete(q);

    for (uint64_t i = 1; i <= 12; i++) {
        mc_journal_entry e =
            entry(T0 + (int64_t)i, "GET", "/v1/instances", "ListInstances", 200, NULL, NULL);
        e.seq = 999; /* ignored */
        CU_ASSERT_EQUAL(mc_journal_add(j, &e), i);
        CU_ASSERT_EQUAL(mc_journal_len(j), i < 5 ? i : 5);
    }
    q = mc_journal_query(j, &all);
    CU_ASSERT_STRING_EQUAL(seqs(q), "8,9,10,11,12");
    CU_ASSERT_EQUAL(num(q, "matched"), 5);
    CU_ASSERT_EQUAL(num(q, "dropped"), 7);
    CU_ASSERT_EQUAL(num(q, "lastSeq"), 12);
    cJSON_Delete(q);

    /* Clear empties and zeroes dropped; seqs go on. */
    mc_journal_clear(j);
    CU_ASSERT_EQUAL(mc_journal_len(j), 0);
    CU_ASSERT_EQUAL(mc_journal_count(j, &all), 0);
    add(j, entry(T0, "GET", "/", NULL, 200, NULL, NULL));
    q = mc_journal_query(j, &all);
    CU_ASSERT_STRING_EQUAL(seqs(q), "13");
    CU_ASSERT_EQUAL(num(q, "dropped"), 0);
    CU_ASSERT_EQUAL(num(q, "lastSeq"), 13);
    cJSON_Delete(q);
    mc_journal_free(j);

    /* A one-entry journal. */
    j = mc_journal_new(0);
    add(j, entry(T0, "GET", "/a", NULL, 200, NULL, NULL));
    add(j, entry(T0, "GET", "/b", NULL, 200, NULL, NULL));
    q = mc_journal_query(j, &all);
    CU_ASSERT_STRING_EQUAL(seqs(q), "2");
    CU_ASSERT_EQUAL(num(q, "dropped"), 1);
    cJSON_Delete(q);
    mc_journal_free(j);
}

static void test_entry_json(void)
{
    mc_journal *j = mc_journal_new(4);
    add(j, entry(T0 + 123, "POST", "/v1/instances", "CreateInstance", 503, "uid-1", "error"));
    mc_journal_entry e = entry(T0, "GET", "/v1/instances/i-1", NULL, 0, NULL, NULL);
    e.latency_us = 250;
    add(j, e);
    mc_journal_filter all = {0};
    cJSON *q = mc_journal_query(j, &all);
    char *text = cJSON_PrintUnformatted(cJSON_GetObjectItem(q, "items"));
    CU_ASSERT_STRING_EQUAL(
        text,
        "[{\"seq\":1,\"time\":\"2025-11-26T14:21:26.123Z\",\"method\":\"POST\","
        "\"path\":\"/v1/instances\",\"op\":\"CreateInstance\",\"status\":503,"
        "\"latencyMs\":1.5,\"idempotencyKey\":\"uid-1\",\"fault\":\"error\",\"rules\":\"r1\"},"
        "{\"seq\":2,\"time\":\"2025-11-26T14:21:26.000Z\",\"method\":\"GET\","
        "\"path\":\"/v1/instances/i-1\",\"op\":null,\"status\":0,\"latencyMs\":0.25,"
        "\"idempotencyKey\":null,\"fault\":null,\"rules\":null}]");
    free(text);
    cJSON_Delete(q);
    mc_journal_free(j);
}

static void test_truncation(void)
{
    char long_path[400], long_key[300];
    memset(long_path, 'p', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    mc_journal_entry e = entry(T0, "GET", long_path, "Op", 200, long_key, NULL);
    CU_ASSERT_EQUAL(strlen(e.path), sizeof e.path - 1);
    CU_ASSERT_EQUAL(strlen(e.idem_key), sizeof e.idem_key - 1);
    CU_ASSERT_EQUAL(memcmp(e.path, long_path, sizeof e.path - 1), 0);

    /* A cut never splits a UTF-8 character: "é" is 2 bytes. */
    char dst[6];
    mc_journal_copy(dst, sizeof dst, "abcd\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(dst, "abcd");
    mc_journal_copy(dst, sizeof dst, "abc\xc3\xa9z");
    CU_ASSERT_STRING_EQUAL(dst, "abc\xc3\xa9");
    mc_journal_copy(dst, sizeof dst, "\xe2\x82\xac\xe2\x82\xac"); /* €€ */
    CU_ASSERT_STRING_EQUAL(dst, "\xe2\x82\xac");
    mc_journal_copy(dst, sizeof dst, NULL);
    CU_ASSERT_STRING_EQUAL(dst, "");
    mc_journal_copy(dst, sizeof dst, "abcde");
    CU_ASSERT_STRING_EQUAL(dst, "abcde");

    /* An entry filled without NULs is terminated in the copy. */
    mc_journal *j = mc_journal_new(2);
    memset(&e, 'x', sizeof e);
    e.time_ms = T0;
    e.status = 200;
    e.latency_us = 0;
    mc_journal_add(j, &e);
    mc_journal_filter all = {0};
    cJSON *q = mc_journal_query(j, &all);
    cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItem(q, "items"), 0);
    CU_ASSERT_EQUAL(strlen(cJSON_GetObjectItem(it, "method")->valuestring), sizeof e.method - 1);
    CU_ASSERT_EQUAL(strlen(cJSON_GetObjectItem(it, "path")->valuestring), sizeof e.path - 1);
    CU_ASSERT_EQUAL(strlen(cJSON_GetObjectItem(it, "idempotencyKey")->valuestring),
                    sizeof e.idem_key - 1);
    CU_ASSERT_EQUAL(strlen(cJSON_GetObjectItem(it, "rules")->valuestring), sizeof e.rules - 1);
    cJSON_Delete(q);
    mc_journal_free(j);
}

/* ---------------------------------------------------------------- filters */

static mc_journal *sample(void)
{
    mc_journal *j = mc_journal_new(100);
    add(j, entry(T0 + 0, "POST", "/v1/instances", "CreateInstance", 202, "k1", NULL));       /* 1 */
    add(j, entry(T0 + 1000, "POST", "/v1/instances", "CreateInstance", 503, "k1", "error")); /* 2 */
    add(j, entry(T0 + 2000, "GET", "/v1/instances/i-1", "GetInstance", 200, NULL, NULL));    /* 3 */
    add(j, entry(T0 + 3000, "GET", "/v1/instances/i-1", "GetInstance", 0, NULL, "reset"));   /* 4 */
    add(j, entry(T0 + 4000, "DELETE", "/v1/instances/i-1", "DeleteInstance", 202, NULL,
                 "latency"));                                                                /* 5 */
    add(j, entry(T0 + 5000, "GET", "/v1/operations/op-1", "GetOperation", 404, NULL, NULL)); /* 6 */
    add(j,
        entry(T0 + 6000, "GET", "/v1/instances", "ListInstances", 429, NULL, "rateLimit")); /* 7 */
    add(j,
        entry(T0 + 7000, "PATCH", "/v1/instances/i-1", "ResizeInstance", 400, "k2", NULL)); /* 8 */
    return j;
}

static void test_filters(void)
{
    mc_journal *j = sample();
    static const struct {
        mc_journal_filter f;
        const char *seqs;
    } cases[] = {
        {{0}, "1,2,3,4,5,6,7,8"},
        {{.method = "get"}, "3,4,6,7"},
        {{.method = "POST"}, "1,2"},
        {{.path = "/v1/instances/*"}, "3,4,5,8"},
        {{.path = "/v1/**"}, "1,2,3,4,5,6,7,8"},
        {{.path = "/v1/instances"}, "1,2,7"},
        {{.op = "GetInstance"}, "3,4"},
        {{.key = "k1"}, "1,2"},
        {{.key = "k"}, ""},
        {{.fault = "any"}, "2,4,5,7"},
        {{.fault = "none"}, "1,3,6,8"},
        {{.fault = "reset"}, "4"},
        {{.status = 202}, "1,5"},
        {{.status = 0}, "1,2,3,4,5,6,7,8"},
        {{.status_class = 4}, "6,7,8"},
        {{.status_class = 5}, "2"},
        {{.status_class = 2}, "1,3,5"},
        {{.since_seq = 5}, "6,7,8"},
        {{.since_seq = 8}, ""},
        {{.since_ms = T0 + 6000}, "7,8"},
        {{.limit = 3}, "6,7,8"},
        {{.method = "GET", .limit = 2}, "6,7"},
        {{.method = "GET", .status_class = 2, .since_seq = 1}, "3"},
        {{.path = "/v1/instances/*", .fault = "any", .limit = 1}, "5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *q = mc_journal_query(j, &cases[i].f);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        bool ok = strcmp(seqs(q), cases[i].seqs) == 0;
        CU_ASSERT(ok);
        if (!ok) fprintf(stderr, "\n  case %zu: got %s want %s\n", i, seqs(q), cases[i].seqs);
        mc_journal_filter nolimit = cases[i].f;
        nolimit.limit = 0;
        size_t count = mc_journal_count(j, &nolimit);
        CU_ASSERT_EQUAL((size_t)num(q, "matched"), count);
        CU_ASSERT_EQUAL(num(q, "lastSeq"), 8);
        CU_ASSERT_EQUAL(num(q, "dropped"), 0);
        cJSON_Delete(q);
    }
    /* matched ignores the limit */
    mc_journal_filter f = {.limit = 3};
    cJSON *q = mc_journal_query(j, &f);
    CU_ASSERT_EQUAL(num(q, "matched"), 8);
    cJSON_Delete(q);
    mc_journal_free(j);
}

/* The default limit keeps the newest 1000. */
static void test_default_limit(void)
{
    mc_journal *j = mc_journal_new(3000);
    for (int i = 0; i < 2500; i++) add(j, entry(T0 + i, "GET", "/", NULL, 200, NULL, NULL));
    mc_journal_filter all = {0};
    cJSON *q = mc_journal_query(j, &all);
    cJSON *items = cJSON_GetObjectItem(q, "items");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(items), MC_JOURNAL_LIMIT_DEFAULT);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 0), "seq")->valueint, 1501);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 999), "seq")->valueint, 2500);
    CU_ASSERT_EQUAL(num(q, "matched"), 2500);
    cJSON_Delete(q);
    mc_journal_free(j);
}

/* ---------------------------------------------------------------- parsing */

static void test_filter_parse(void)
{
    mc_kv q[] = {{"method", "GET"},     {"path", "/v1/instances/*"},
                 {"op", "GetInstance"}, {"key", "k1"},
                 {"fault", "any"},      {"status", "5xx"},
                 {"since", "42"},       {"sinceTime", "2025-11-26T14:21:26.5Z"},
                 {"limit", "10000"}};
    mc_journal_filter f;
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(mc_journal_filter_parse(&f, q, 9, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(f.method, "GET");
    CU_ASSERT_STRING_EQUAL(f.path, "/v1/instances/*");
    CU_ASSERT_STRING_EQUAL(f.op, "GetInstance");
    CU_ASSERT_STRING_EQUAL(f.key, "k1");
    CU_ASSERT_STRING_EQUAL(f.fault, "any");
    CU_ASSERT_EQUAL(f.status, 0);
    CU_ASSERT_EQUAL(f.status_class, 5);
    CU_ASSERT_EQUAL(f.since_seq, 42);
    CU_ASSERT_EQUAL(f.since_ms, T0 + 500);
    CU_ASSERT_EQUAL(f.limit, 10000);

    mc_kv q2[] = {{"status", "503"}};
    CU_ASSERT_EQUAL(mc_journal_filter_parse(&f, q2, 1, err, sizeof err), 0);
    CU_ASSERT_EQUAL(f.status, 503);
    CU_ASSERT_EQUAL(f.status_class, 0);
    CU_ASSERT_PTR_NULL(f.method);
    CU_ASSERT_EQUAL(f.limit, 0);
    mc_kv q3[] = {{"status", "4XX"}};
    CU_ASSERT_EQUAL(mc_journal_filter_parse(&f, q3, 1, err, sizeof err), 0);
    CU_ASSERT_EQUAL(f.status_class, 4);
    CU_ASSERT_EQUAL(mc_journal_filter_parse(&f, NULL, 0, err, sizeof err), 0);
    CU_ASSERT_EQUAL(f.status_class, 0);
}

static void test_filter_parse_errors(void)
{
    static const struct {
        mc_kv kv[3];
        size_t n;
        const char *err; /* expected prefix */
    } cases[] = {
        {{{"verb", "GET"}}, 1, "unknown argument \"verb\": use method, path"},
        {{{"a", "1"}, {"method", "GET"}, {"b", "2"}}, 3, "unknown arguments \"a\", \"b\": use"},
        {{{"status", "6xx"}}, 1, "status: \"6xx\" is neither"},
        {{{"status", "50"}}, 1, "status: \"50\" is neither"},
        {{{"status", "600"}}, 1, "status: \"600\""},
        {{{"status", "abc"}}, 1, "status: \"abc\""},
        {{{"status", "5x"}}, 1, "status: \"5x\""},
        {{{"limit", "0"}}, 1, "limit: \"0\" must be an integer 1..10000"},
        {{{"limit", "10001"}}, 1, "limit: \"10001\" must be an integer 1..10000"},
        {{{"limit", "ten"}}, 1, "limit: \"ten\""},
        {{{"limit", "5 "}}, 1, "limit: \"5 \""},
        {{{"since", "-1"}}, 1, "since: \"-1\" is not a sequence number"},
        {{{"since", "1e3"}}, 1, "since: \"1e3\""},
        {{{"since", "99999999999999999999999"}}, 1, "since: "},
        {{{"sinceTime", "yesterday"}}, 1, "sinceTime: \"yesterday\" is not an RFC 3339 time"},
        {{{"sinceTime", "2025-11-26"}}, 1, "sinceTime: "},
        {{{"method", "G3T"}}, 1, "method: \"G3T\" is not an HTTP method"},
        {{{"method", "GET"}, {"method", "POST"}}, 2, "method: given twice"},
        {{{"key", ""}}, 1, "key: empty value"},
        {{{"fault", "waytoolongfaultname"}}, 1, "fault: "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mc_journal_filter f = {.method = "untouched"};
        char err[256] = "";
        int rc = mc_journal_filter_parse(&f, cases[i].kv, cases[i].n, err, sizeof err);
        bool ok = rc == -1 && strncmp(err, cases[i].err, strlen(cases[i].err)) == 0;
        CU_ASSERT(ok);
        CU_ASSERT_STRING_EQUAL(f.method, "untouched");
        if (!ok) fprintf(stderr, "\n  case %zu: rc=%d err=%s\n", i, rc, err);
    }
}

/* ---------------------------------------------------------------- threads */

typedef struct writer {
    mc_journal *j;
    int id;
    uint64_t *seqs;
} writer;

#define PER_THREAD 5000

static void *write_entries(void *arg)
{
    writer *w = arg;
    char op[16], path[32];
    snprintf(op, sizeof op, "t%d", w->id);
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(path, sizeof path, "/w/%d/%d", w->id, i);
        mc_journal_entry e = entry(T0 + i, "GET", path, op, 200, NULL, NULL);
        w->seqs[i] = mc_journal_add(w->j, &e);
    }
    return NULL;
}

static void test_concurrent_adds(void)
{
    mc_journal *j = mc_journal_new(4 * PER_THREAD);
    static uint64_t seqs[4][PER_THREAD];
    writer w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (writer){j, i, seqs[i]};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, write_entries, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);

    CU_ASSERT_EQUAL(mc_journal_len(j), 4 * PER_THREAD);
    static unsigned char seen[4 * PER_THREAD + 1];
    memset(seen, 0, sizeof seen);
    bool unique = true, in_range = true, increasing = true;
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < PER_THREAD; k++) {
            uint64_t s = seqs[i][k];
            if (s < 1 || s > 4 * PER_THREAD) {
                in_range = false;
                continue;
            }
            if (seen[s]++) unique = false;
            if (k && s <= seqs[i][k - 1]) increasing = false;
        }
    }
    CU_ASSERT(in_range);
    CU_ASSERT(unique);
    CU_ASSERT(increasing);
    for (int i = 0; i < 4; i++) {
        char op[16];
        snprintf(op, sizeof op, "t%d", i);
        mc_journal_filter f = {.op = op};
        CU_ASSERT_EQUAL(mc_journal_count(j, &f), PER_THREAD);
    }
    /* Each entry's content matches its thread: the ring holds whole records. */
    mc_journal_filter f = {.path = "/w/2/*", .limit = 10000};
    cJSON *q = mc_journal_query(j, &f);
    cJSON *it;
    int n = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(q, "items"))
    {
        CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(it, "op")->valuestring, "t2");
        n++;
    }
    CU_ASSERT_EQUAL(n, PER_THREAD);
    CU_ASSERT_EQUAL(num(q, "lastSeq"), 4 * PER_THREAD);
    cJSON_Delete(q);
    mc_journal_free(j);
}

static CU_TestInfo ring_tests[] = {
    {"ring wraps and counts drops", test_ring_wrap},
    {"entry JSON", test_entry_json},
    {"long strings truncated", test_truncation},
    {"concurrent adds from 4 threads", test_concurrent_adds},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo filter_tests[] = {
    {"each filter", test_filters},
    {"default limit: newest 1000", test_default_limit},
    {"query arguments", test_filter_parse},
    {"bad query arguments", test_filter_parse_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"journal/ring", NULL, NULL, NULL, NULL, ring_tests},
    {"journal/filter", NULL, NULL, NULL, NULL, filter_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
