/* test_units.c — durations and quantities, table-driven: what parses to
 * what, what is refused and what the refusal says. */
#include "../testutil.h"

#include <string.h>

#include "csl/units.h"

#define NS 1LL
#define US (1000 * NS)
#define MS (1000 * US)
#define SEC (1000 * MS)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

static void test_duration_valid(void)
{
    static const struct {
        const char *s;
        int64_t ns;
    } cases[] = {
        {"0", 0},
        {"+0", 0},
        {"0s", 0},
        {"0h0m", 0},
        {"1ns", 1},
        {"1us", US},
        {"1\xc2\xb5s", US},
        {"1\xce\xbcs", US},
        {"250ms", 250 * MS},
        {"30s", 30 * SEC},
        {"5m", 5 * MIN},
        {"1h", HOUR},
        {"1h30m", HOUR + 30 * MIN},
        {"1h30m15s250ms", HOUR + 30 * MIN + 15 * SEC + 250 * MS},
        {"1.5s", 1500 * MS},
        {"1.1s", 1100 * MS},
        {".5s", 500 * MS},
        {"1.s", SEC},
        {"0.000000001s", 1},
        {"0.0000000019s", 1},
        {"1.5h", HOUR + 30 * MIN},
        {"2.25m", 2 * MIN + 15 * SEC},
        {"100000ms", 100 * SEC},
        {"+5s", 5 * SEC},
        {"1.000000000000000000000000000000000000000000001s", SEC},
        {"2562047h47m16.854775807s", INT64_MAX},
        {"9223372036854775807ns", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ns = -42;
        char err[CSL_UNITS_ERR_LEN] = "";
        int rc = csl_duration_parse(cases[i].s, &ns, err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(ns, cases[i].ns);
        if (rc != 0 || ns != cases[i].ns)
            fprintf(stderr, "\n  duration %s: rc=%d ns=%lld err=%s\n", cases[i].s, rc,
                    (long long)ns, err);
    }
}

static void test_duration_invalid(void)
{
    static const struct {
        const char *s;
        const char *needle; /* must appear in the message */
    } cases[] = {
        {"", "empty duration"},
        {"5", "missing unit after \"5\""},
        {"1h30", "missing unit after \"30\""},
        {"5x", "unknown unit \"x\" in \"5x\": use ns, us, ms, s, m or h"},
        {"5sec", "unknown unit \"sec\""},
        {"1H", "unknown unit \"H\""},
        {"1h 30m", "unknown unit \"h \""},
        {"-1s", "negative duration"},
        {"s", "expected a number"},
        {".s", "expected a number"},
        {"1s.", "expected a number at \".\""},
        {"+", "expected a number"},
        {"1..5s", "missing unit after \"1.\""},
        {"2562047h47m16.854775808s", "too large"},
        {"9223372036854775808ns", "too large"},
        {"3000000h", "too large"},
        {"99999999999999999999999999999999999999999999h", "too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ns = -42;
        char err[CSL_UNITS_ERR_LEN] = "";
        CU_ASSERT_EQUAL(csl_duration_parse(cases[i].s, &ns, err), -1);
        CU_ASSERT_EQUAL(ns, -42);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].needle));
        if (!strstr(err, cases[i].needle))
            fprintf(stderr, "\n  duration \"%s\": got \"%s\", want \"%s\"\n", cases[i].s, err,
                    cases[i].needle);
    }
    int64_t ns = 7;
    CU_ASSERT_EQUAL(csl_duration_parse("bogus", &ns, NULL), -1);
    CU_ASSERT_EQUAL(csl_duration_parse(NULL, &ns, NULL), -1);
    CU_ASSERT_EQUAL(ns, 7);
    /* A long input is cut in the message, which always fits. */
    char long_in[400];
    memset(long_in, '7', sizeof long_in - 2);
    long_in[sizeof long_in - 2] = 'q';
    long_in[sizeof long_in - 1] = '\0';
    char err[CSL_UNITS_ERR_LEN];
    CU_ASSERT_EQUAL(csl_duration_parse(long_in, &ns, err), -1);
    CU_ASSERT(strlen(err) < CSL_UNITS_ERR_LEN);
}

static void test_duration_format(void)
{
    static const struct {
        int64_t ns;
        const char *s;
    } cases[] = {
        {0, "0s"},
        {1, "1ns"},
        {999, "999ns"},
        {1500, "1.5us"},
        {US, "1us"},
        {250 * MS, "250ms"},
        {1500 * MS, "1.5s"},
        {SEC, "1s"},
        {30 * SEC, "30s"},
        {5 * MIN, "5m"},
        {HOUR, "1h"},
        {HOUR + 30 * MIN, "1h30m"},
        {90 * SEC + 500 * MS, "1m30.5s"},
        {HOUR + SEC, "1h1s"},
        {HOUR + MS, "1h1ms"},
        {SEC + 1, "1.000000001s"},
        {-1500 * MS, "-1.5s"},
        {INT64_MAX, "2562047h47m16.854775807s"},
        {INT64_MIN, "-2562047h47m16.854775808s"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        csl_duration_format(cases[i].ns, out, sizeof out);
        CU_ASSERT_STRING_EQUAL(out, cases[i].s);
        if (cases[i].ns >= 0) {
            int64_t back = -1;
            CU_ASSERT_EQUAL(csl_duration_parse(out, &back, NULL), 0);
            CU_ASSERT_EQUAL(back, cases[i].ns);
        }
    }
    /* Truncation keeps a terminated string. */
    char small[4];
    csl_duration_format(HOUR + 30 * MIN, small, sizeof small);
    CU_ASSERT_EQUAL(strlen(small), 3);
    /* Round trips over a spread of values. */
    int64_t v = 1;
    for (int i = 0; i < 60; i++, v = v * 2 + i) {
        char out[64];
        int64_t back = -1;
        csl_duration_format(v, out, sizeof out);
        CU_ASSERT_EQUAL(csl_duration_parse(out, &back, NULL), 0);
        CU_ASSERT_EQUAL(back, v);
    }
}

static void test_quantity_valid(void)
{
    static const struct {
        const char *s;
        int64_t milli;
    } cases[] = {
        {"0", 0},
        {"1", 1000},
        {"+2", 2000},
        {"100m", 100},
        {"1500m", 1500},
        {"0.5", 500},
        {".25", 250},
        {"2.", 2000},
        {"0.001", 1},
        {"1.5000000000000000000000000000000000000000", 1500},
        {"1k", 1000000},
        {"1.5G", 1500000000000LL},
        {"4Gi", 4294967296000LL},
        {"512Mi", 536870912000LL},
        {"1Ki", 1024000},
        {"1.5Ki", 1536000},
        {"0.5Ki", 512000},
        {"2Ti", 2199023255552000LL},
        {"1Pi", 1125899906842624000LL},
        {"8P", 8000000000000000000LL},
        {"1e3", 1000000},
        {"1E6", 1000000000},
        {"1e-3", 1},
        {"1e+2", 100000},
        {"5e0", 5000},
        {"0e9999", 0},
        {"1M", 1000000000},
        {"9223372036854775.807", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t m = -42;
        char err[CSL_UNITS_ERR_LEN] = "";
        int rc = csl_quantity_parse_milli(cases[i].s, &m, err);
        CU_ASSERT_EQUAL(rc, 0);
        CU_ASSERT_EQUAL(m, cases[i].milli);
        if (rc != 0 || m != cases[i].milli)
            fprintf(stderr, "\n  quantity %s: rc=%d milli=%lld err=%s\n", cases[i].s, rc,
                    (long long)m, err);
    }
}

static void test_quantity_invalid(void)
{
    static const struct {
        const char *s;
        const char *needle;
    } cases[] = {
        {"", "empty quantity"},
        {"-1", "negative quantity"},
        {"Gi", "expected a number"},
        {".", "expected a number"},
        {"4GB", "unknown suffix \"GB\" in \"4GB\": use Ki, Mi"},
        {"4K", "unknown suffix \"K\""},
        {"4gi", "unknown suffix \"gi\""},
        {"4 Gi", "unknown suffix \" Gi\""},
        {"1e", "unknown suffix \"e\""},
        {"1e3Ki", "unknown suffix \"e3Ki\""},
        {"1.5.5", "unknown suffix \".5\""},
        {"100u", "unknown suffix \"u\""},
        {"0.0001", "more precise than the smallest unit"},
        {"1.5m", "more precise"},
        {"1e-4", "more precise"},
        {"8Ei", "too large"},
        {"9223372036854776", "too large"},
        {"10E", "too large"},
        {"1e400", "too large"},
        {"123456789012345678901234567890123456789012345", "too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t m = -42;
        char err[CSL_UNITS_ERR_LEN] = "";
        CU_ASSERT_EQUAL(csl_quantity_parse_milli(cases[i].s, &m, err), -1);
        CU_ASSERT_EQUAL(m, -42);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].needle));
        if (!strstr(err, cases[i].needle))
            fprintf(stderr, "\n  quantity \"%s\": got \"%s\", want \"%s\"\n", cases[i].s, err,
                    cases[i].needle);
    }
}

static void test_quantity_bytes(void)
{
    static const struct {
        const char *s;
        int64_t bytes;
    } cases[] = {
        {"4Gi", 4294967296LL},  {"512Mi", 536870912LL}, {"40Gi", 42949672960LL},
        {"1.5G", 1500000000LL}, {"100", 100},           {"0.5", 1},
        {"1001m", 2},           {"1000m", 1},           {"0", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t b = -1;
        CU_ASSERT_EQUAL(csl_quantity_parse_bytes(cases[i].s, &b, NULL), 0);
        CU_ASSERT_EQUAL(b, cases[i].bytes);
    }
    int64_t b = -1;
    char err[CSL_UNITS_ERR_LEN];
    CU_ASSERT_EQUAL(csl_quantity_parse_bytes("4XB", &b, err), -1);
    CU_ASSERT_EQUAL(b, -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "\"XB\""));
}

static CU_TestInfo units_tests[] = {
    {"durations that parse", test_duration_valid},
    {"durations refused with a reason", test_duration_invalid},
    {"duration format round trips", test_duration_format},
    {"quantities that parse", test_quantity_valid},
    {"quantities refused with a reason", test_quantity_invalid},
    {"quantities as bytes", test_quantity_bytes},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"units", NULL, NULL, NULL, NULL, units_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
