/* test_rng.c — the seeded generator and the duration distributions built on
 * it. Every statistical check uses a fixed seed, so it is deterministic: the
 * bounds are wide enough for a correct generator and far too narrow for a
 * biased or broken one. */
#include "../testutil.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "csl/dist.h"
#include "csl/rng.h"

/* ---------------------------------------------------------------- rng */

static void test_reference_values(void)
{
    /* xoshiro256** seeded by splitmix64, from the reference algorithms. */
    csl_rng r;
    csl_rng_seed(&r, 0);
    CU_ASSERT_EQUAL(csl_rng_next(&r), 0x99ec5f36cb75f2b4ULL);
    CU_ASSERT_EQUAL(csl_rng_next(&r), 0xbf6e1f784956452aULL);
    CU_ASSERT_EQUAL(csl_rng_next(&r), 0x1a5f849d4933e6e0ULL);
    csl_rng_seed(&r, 42);
    CU_ASSERT_EQUAL(csl_rng_next(&r), 0x15780b2e0c2ec716ULL);
    CU_ASSERT_EQUAL(csl_rng_next(&r), 0x6104d9866d113a7eULL);
    CU_ASSERT_EQUAL(csl_rng_next(&r), 0xae17533239e499a1ULL);
    /* FNV-1a 64 test vectors. */
    CU_ASSERT_EQUAL(csl_hash64(""), 0xcbf29ce484222325ULL);
    CU_ASSERT_EQUAL(csl_hash64("a"), 0xaf63dc4c8601ec8cULL);
    CU_ASSERT_EQUAL(csl_hash64("foobar"), 0x85944171f73967e8ULL);
    CU_ASSERT_EQUAL(csl_hash64(NULL), csl_hash64(""));
}

static void test_determinism(void)
{
    csl_rng a, b, c;
    csl_rng_seed(&a, 12345);
    csl_rng_seed(&b, 12345);
    csl_rng_seed(&c, 12346);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = csl_rng_next(&a);
        CU_ASSERT_EQUAL(x, csl_rng_next(&b));
        same_c += x == csl_rng_next(&c);
    }
    CU_ASSERT_EQUAL(same_c, 0);
}

static int popcount64(uint64_t x)
{
    return __builtin_popcountll(x);
}

static void test_derive(void)
{
    csl_rng a, b;
    /* Determined only by (seed, label, index): earlier use does not matter. */
    csl_rng_derive(&a, 7, "boot", 17);
    csl_rng_seed(&b, 999);
    for (int i = 0; i < 50; i++) csl_rng_next(&b);
    csl_rng_derive(&b, 7, "boot", 17);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);

    /* Neighbouring seeds, labels and indices give unrelated streams: first
     * outputs differ in about half their bits. */
    uint64_t firsts[4 * 64];
    size_t n = 0;
    static const char *const labels[] = {"boot", "boot2", "resize", ""};
    for (size_t l = 0; l < 4; l++) {
        for (uint64_t i = 0; i < 64; i++) {
            csl_rng_derive(&a, 7, labels[l], i);
            firsts[n++] = csl_rng_next(&a);
        }
    }
    long bits = 0, pairs = 0;
    int equal = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            equal += firsts[i] == firsts[j];
            bits += popcount64(firsts[i] ^ firsts[j]);
            pairs++;
        }
    }
    CU_ASSERT_EQUAL(equal, 0);
    double avg = (double)bits / (double)pairs;
    CU_ASSERT(avg > 31.0 && avg < 33.0);

    csl_rng_derive(&a, 7, "boot", 0);
    csl_rng_derive(&b, 8, "boot", 0);
    CU_ASSERT_NOT_EQUAL(csl_rng_next(&a), csl_rng_next(&b));
    csl_rng_seed(&b, 7);
    csl_rng_derive(&a, 7, "boot", 0);
    CU_ASSERT_NOT_EQUAL(csl_rng_next(&a), csl_rng_next(&b));
}

static void test_double(void)
{
    csl_rng r;
    csl_rng_seed(&r, 1);
    double sum = 0, lo = 1, hi = 0;
    for (int i = 0; i < 100000; i++) {
        double d = csl_rng_double(&r);
        CU_ASSERT_FATAL(d >= 0.0 && d < 1.0);
        sum += d;
        if (d < lo) lo = d;
        if (d > hi) hi = d;
    }
    CU_ASSERT(fabs(sum / 100000 - 0.5) < 0.01);
    CU_ASSERT(lo < 0.001 && hi > 0.999);
}

static void test_below(void)
{
    csl_rng r;
    csl_rng_seed(&r, 2);
    CU_ASSERT_EQUAL(csl_rng_below(&r, 0), 0);
    CU_ASSERT_EQUAL(csl_rng_below(&r, 1), 0);

    /* Chi-square over 10 buckets, 100k draws; 9 degrees of freedom, the
     * 0.1% critical value is 27.88. */
    enum { K = 10, N = 100000 };
    long counts[K] = {0};
    for (int i = 0; i < N; i++) {
        uint64_t v = csl_rng_below(&r, K);
        CU_ASSERT_FATAL(v < K);
        counts[v]++;
    }
    double chi = 0, expect = (double)N / K;
    for (int i = 0; i < K; i++) chi += (counts[i] - expect) * (counts[i] - expect) / expect;
    CU_ASSERT(chi < 27.88);

    /* With bound 3·2^62 a modulo reduction would put half the draws below
     * 2^62; an unbiased one puts a third there. */
    uint64_t bound = 3ULL << 62;
    int low = 0;
    for (int i = 0; i < 30000; i++) {
        uint64_t v = csl_rng_below(&r, bound);
        CU_ASSERT_FATAL(v < bound);
        low += v < (1ULL << 62);
    }
    CU_ASSERT(fabs(low / 30000.0 - 1.0 / 3.0) < 0.02);

    /* The largest bound still works. */
    for (int i = 0; i < 100; i++) CU_ASSERT(csl_rng_below(&r, UINT64_MAX) < UINT64_MAX);
}

static void test_normal(void)
{
    csl_rng r;
    csl_rng_seed(&r, 3);
    enum { N = 100000 };
    double sum = 0, sq = 0;
    int beyond3 = 0;
    for (int i = 0; i < N; i++) {
        double x = csl_rng_normal(&r);
        CU_ASSERT_FATAL(isfinite(x));
        sum += x;
        sq += x * x;
        beyond3 += fabs(x) > 3;
    }
    double mean = sum / N, sd = sqrt(sq / N - mean * mean);
    CU_ASSERT(fabs(mean) < 0.02);
    CU_ASSERT(fabs(sd - 1.0) < 0.02);
    /* 0.27% expected beyond 3 sigma: 270 of 100k. */
    CU_ASSERT(beyond3 > 150 && beyond3 < 400);
}

/* ---------------------------------------------------------------- dist */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_dist_fixed(void)
{
    csl_rng r;
    csl_rng_seed(&r, 4);
    csl_dist d = CSL_DIST_FIXED_NS(1500000000);
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(csl_dist_sample(&d, &r), 1500000000);
    csl_dist neg = CSL_DIST_FIXED_NS(-5);
    CU_ASSERT_EQUAL(csl_dist_sample(&neg, &r), 0);
}

static void test_dist_uniform(void)
{
    csl_rng r;
    csl_rng_seed(&r, 5);
    csl_dist d = {CSL_DIST_UNIFORM, 200000000, 2000000000, 0};
    enum { N = 100000 };
    double sum = 0;
    int64_t lo = INT64_MAX, hi = 0;
    for (int i = 0; i < N; i++) {
        int64_t v = csl_dist_sample(&d, &r);
        CU_ASSERT_FATAL(v >= d.a_ns && v <= d.b_ns);
        sum += (double)v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    double mean = sum / N, want = 1.1e9;
    CU_ASSERT(fabs(mean - want) / want < 0.01);
    CU_ASSERT(lo < 200000000 + 1000000 && hi > 2000000000 - 1000000);
    /* A degenerate range is its one value. */
    csl_dist one = {CSL_DIST_UNIFORM, 7, 7, 0};
    CU_ASSERT_EQUAL(csl_dist_sample(&one, &r), 7);
    /* Inclusive at both ends for a tiny range. */
    csl_dist tiny = {CSL_DIST_UNIFORM, 0, 1, 0};
    int seen[2] = {0, 0};
    for (int i = 0; i < 100; i++) seen[csl_dist_sample(&tiny, &r)]++;
    CU_ASSERT(seen[0] > 20 && seen[1] > 20);
}

static void test_dist_lognormal(void)
{
    csl_rng r;
    csl_rng_seed(&r, 6);
    enum { N = 20001 };
    static int64_t v[N];
    csl_dist d = {CSL_DIST_LOGNORMAL, 1000000000, 10000000000, 0.5};
    for (int i = 0; i < N; i++) {
        v[i] = csl_dist_sample(&d, &r);
        CU_ASSERT_FATAL(v[i] >= 0 && v[i] <= d.b_ns);
    }
    qsort(v, N, sizeof v[0], cmp_i64);
    CU_ASSERT(llabs(v[N / 2] - d.a_ns) < d.a_ns / 30);

    /* With a wide sigma the cap bites and is never exceeded. */
    csl_dist wide = {CSL_DIST_LOGNORMAL, 1000000000, 3000000000, 2.0};
    int at_cap = 0;
    for (int i = 0; i < N; i++) {
        int64_t x = csl_dist_sample(&wide, &r);
        CU_ASSERT_FATAL(x >= 0 && x <= wide.b_ns);
        at_cap += x == wide.b_ns;
    }
    /* P(exp(2Z) > 3) = P(Z > 0.549) ≈ 29%. */
    CU_ASSERT(at_cap > N / 5 && at_cap < N * 2 / 5);

    /* Cap 0 in a hand-made struct means 10 × median. */
    csl_dist nocap = {CSL_DIST_LOGNORMAL, 1000000, 0, 3.0};
    int64_t max = 0;
    for (int i = 0; i < 5000; i++) {
        int64_t x = csl_dist_sample(&nocap, &r);
        if (x > max) max = x;
    }
    CU_ASSERT_EQUAL(max, 10000000);
}

static void test_dist_json_ok(void)
{
    static const struct {
        const char *json;
        csl_dist want;
    } cases[] = {
        {"\"1s\"", {CSL_DIST_FIXED, 1000000000, 0, 0}},
        {"{\"distribution\":\"fixed\",\"value\":\"250ms\"}", {CSL_DIST_FIXED, 250000000, 0, 0}},
        {"{\"distribution\":\"uniform\",\"min\":\"200ms\",\"max\":\"2s\"}",
         {CSL_DIST_UNIFORM, 200000000, 2000000000, 0}},
        {"{\"distribution\":\"lognormal\",\"median\":\"1s\",\"sigma\":0.5,\"cap\":\"10s\"}",
         {CSL_DIST_LOGNORMAL, 1000000000, 10000000000, 0.5}},
        {"{\"distribution\":\"lognormal\",\"median\":\"2s\",\"sigma\":0.25}",
         {CSL_DIST_LOGNORMAL, 2000000000, 20000000000, 0.25}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        csl_dist d;
        char err[200] = "";
        CU_ASSERT_EQUAL(csl_dist_from_json(j, &d, err, sizeof err, NULL), 0);
        CU_ASSERT_EQUAL(d.kind, cases[i].want.kind);
        CU_ASSERT_EQUAL(d.a_ns, cases[i].want.a_ns);
        CU_ASSERT_EQUAL(d.b_ns, cases[i].want.b_ns);
        CU_ASSERT_DOUBLE_EQUAL(d.sigma, cases[i].want.sigma, 1e-12);

        /* to_json is read back to the same distribution. */
        cJSON *o = csl_dist_to_json(&d);
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT(cJSON_IsObject(o));
        csl_dist back;
        CU_ASSERT_EQUAL(csl_dist_from_json(o, &back, err, sizeof err, NULL), 0);
        CU_ASSERT_EQUAL(back.kind, d.kind);
        CU_ASSERT_EQUAL(back.a_ns, d.a_ns);
        CU_ASSERT_EQUAL(back.b_ns, d.b_ns);
        CU_ASSERT_DOUBLE_EQUAL(back.sigma, d.sigma, 1e-12);
        cJSON_Delete(o);
        cJSON_Delete(j);
    }
    cJSON *o = csl_dist_to_json(&(csl_dist){CSL_DIST_UNIFORM, 200000000, 1500000000, 0});
    char *s = cJSON_PrintUnformatted(o);
    CU_ASSERT_STRING_EQUAL(s, "{\"distribution\":\"uniform\",\"min\":\"200ms\",\"max\":\"1.5s\"}");
    free(s);
    cJSON_Delete(o);
}

static void test_dist_json_errors(void)
{
    static const struct {
        const char *json;
        const char *needle; /* in the message */
        const char *bad;    /* name of the offending member, "" for the root */
    } cases[] = {
        {"\"5x\"", "unknown unit \"x\"", ""},
        {"5", "expected a duration string", ""},
        {"{\"value\":\"1s\"}", "missing \"distribution\"", ""},
        {"{\"distribution\":3}", "\"distribution\" must be a string", "distribution"},
        {"{\"distribution\":\"gauss\"}", "unknown distribution \"gauss\"", "distribution"},
        {"{\"distribution\":\"fixed\"}", "fixed: missing \"value\"", ""},
        {"{\"distribution\":\"fixed\",\"value\":1}", "fixed: \"value\" must be a duration string",
         "value"},
        {"{\"distribution\":\"fixed\",\"value\":\"1s\",\"jitter\":\"1s\"}",
         "fixed: unknown field \"jitter\"", "jitter"},
        {"{\"distribution\":\"uniform\",\"min\":\"2s\",\"max\":\"100ms\"}",
         "uniform: \"max\" (100ms) is below \"min\" (2s)", "max"},
        {"{\"distribution\":\"uniform\",\"min\":\"2s\"}", "uniform: missing \"max\"", ""},
        {"{\"distribution\":\"uniform\",\"min\":\"2q\",\"max\":\"3s\"}",
         "uniform: \"min\": unknown unit \"q\"", "min"},
        {"{\"distribution\":\"lognormal\",\"mdian\":\"1s\",\"sigma\":1}",
         "lognormal: unknown field \"mdian\"", "mdian"},
        {"{\"distribution\":\"lognormal\",\"median\":\"1s\"}", "lognormal: missing \"sigma\"", ""},
        {"{\"distribution\":\"lognormal\",\"median\":\"1s\",\"sigma\":-1}",
         "\"sigma\" must be a number from 0 to 10", "sigma"},
        {"{\"distribution\":\"lognormal\",\"median\":\"1s\",\"sigma\":\"x\"}",
         "\"sigma\" must be a number", "sigma"},
        {"{\"distribution\":\"lognormal\",\"median\":\"0s\",\"sigma\":1}",
         "\"median\" must be above 0", "median"},
        {"{\"distribution\":\"lognormal\",\"median\":\"1s\",\"sigma\":1,\"cap\":\"500ms\"}",
         "lognormal: \"cap\" (500ms) is below \"median\" (1s)", "cap"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        CU_ASSERT_PTR_NOT_NULL_FATAL(j);
        csl_dist d = {CSL_DIST_FIXED, -1, -1, -1};
        char err[200] = "";
        const cJSON *bad = NULL;
        CU_ASSERT_EQUAL(csl_dist_from_json(j, &d, err, sizeof err, &bad), -1);
        CU_ASSERT_EQUAL(d.a_ns, -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].needle));
        if (!strstr(err, cases[i].needle))
            fprintf(stderr, "\n  %s: got \"%s\", want \"%s\"\n", cases[i].json, err,
                    cases[i].needle);
        bool bad_ok =
            cases[i].bad[0] ? bad && bad->string && !strcmp(bad->string, cases[i].bad) : bad == j;
        CU_ASSERT(bad_ok);
        cJSON_Delete(j);
    }
    csl_dist d;
    char small[8];
    cJSON *j = cJSON_Parse("\"nonsense\"");
    CU_ASSERT_EQUAL(csl_dist_from_json(j, &d, small, sizeof small, NULL), -1);
    CU_ASSERT_EQUAL(strlen(small), sizeof small - 1);
    CU_ASSERT_EQUAL(csl_dist_from_json(j, &d, NULL, 0, NULL), -1);
    CU_ASSERT_EQUAL(csl_dist_from_json(NULL, &d, NULL, 0, NULL), -1);
    cJSON_Delete(j);
}

static CU_TestInfo rng_tests[] = {
    {"reference values", test_reference_values},
    {"same seed, same stream", test_determinism},
    {"derived streams are independent", test_derive},
    {"double in [0,1)", test_double},
    {"below is unbiased", test_below},
    {"normal mean and stddev", test_normal},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo dist_tests[] = {
    {"fixed is exact", test_dist_fixed},
    {"uniform within bounds, mean", test_dist_uniform},
    {"lognormal median and cap", test_dist_lognormal},
    {"json forms and round trip", test_dist_json_ok},
    {"json errors name the field", test_dist_json_errors},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"rng", NULL, NULL, NULL, NULL, rng_tests},
    {"dist", NULL, NULL, NULL, NULL, dist_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
