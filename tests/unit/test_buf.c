/* test_buf.c — csl_buf (growth, printf, steal, the oom flag) and the clock
 * helpers (monotonic time, sleeping, RFC 3339 formatting and parsing). */
#include "../testutil.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include "csl/buf.h"
#include "csl/clock.h"

/* ---------------------------------------------------------------- buf */

static void test_empty(void)
{
    csl_buf b = CSL_BUF_INIT;
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b), "");
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_TRUE(csl_buf_append(&b, "", 0));
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b), "");
    csl_buf_free(&b);
    CU_ASSERT_PTR_NULL(b.data);
    csl_buf_free(&b); /* twice is harmless */
}

static void test_growth(void)
{
    csl_buf b;
    csl_buf_init(&b);
    enum { N = 100000 };
    for (int i = 0; i < N; i++) CU_ASSERT_TRUE_FATAL(csl_buf_putc(&b, (char)('a' + i % 26)));
    CU_ASSERT_EQUAL(b.len, N);
    CU_ASSERT(b.cap >= b.len + 1);
    CU_ASSERT_EQUAL(strlen(csl_buf_str(&b)), N);
    bool ok = true;
    for (int i = 0; i < N; i++) ok = ok && b.data[i] == 'a' + i % 26;
    CU_ASSERT_TRUE(ok);
    CU_ASSERT_FALSE(b.oom);

    /* Binary data with NULs keeps its length and a terminator after it. */
    csl_buf_reset(&b);
    CU_ASSERT_TRUE(csl_buf_append(&b, "a\0b", 3));
    CU_ASSERT_EQUAL(b.len, 3);
    CU_ASSERT_EQUAL(memcmp(b.data, "a\0b\0", 4), 0);
    csl_buf_free(&b);
}

static void test_printf(void)
{
    csl_buf b = CSL_BUF_INIT;
    CU_ASSERT_TRUE(csl_buf_puts(&b, "x="));
    CU_ASSERT_TRUE(csl_buf_printf(&b, "%d,%s,%.2f", 42, "str", 1.5));
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b), "x=42,str,1.50");
    /* Longer than the first allocation, in one call. */
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CU_ASSERT_TRUE(csl_buf_printf(&b, "[%s]", big));
    CU_ASSERT_EQUAL(b.len, 13 + 2 + sizeof big - 1);
    CU_ASSERT_EQUAL(b.data[13], '[');
    CU_ASSERT_EQUAL(b.data[b.len - 1], ']');
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    /* An empty format appends nothing. */
    size_t len = b.len;
    CU_ASSERT_TRUE(csl_buf_printf(&b, "%s", ""));
    CU_ASSERT_EQUAL(b.len, len);
    csl_buf_free(&b);
}

static void test_reset_keeps_storage(void)
{
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, "hello world");
    char *data = b.data;
    size_t cap = b.cap;
    csl_buf_reset(&b);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_PTR_EQUAL(b.data, data);
    CU_ASSERT_EQUAL(b.cap, cap);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b), "");
    csl_buf_puts(&b, "again");
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b), "again");
    csl_buf_free(&b);
    /* Reusable after free. */
    csl_buf_puts(&b, "reused");
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b), "reused");
    csl_buf_free(&b);
}

static void test_steal(void)
{
    csl_buf b = CSL_BUF_INIT;
    csl_buf_printf(&b, "%s-%d", "owned", 7);
    char *s = csl_buf_steal(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "owned-7");
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    free(s);
    /* An empty buffer gives an empty, freeable string. */
    s = csl_buf_steal(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "");
    free(s);
}

static void test_oom_flag(void)
{
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, "kept");
    /* A length that cannot be represented fails without allocating. */
    CU_ASSERT_FALSE(csl_buf_append(&b, "x", SIZE_MAX));
    CU_ASSERT_TRUE(b.oom);
    /* Once failed, every append is a no-op that reports failure. */
    CU_ASSERT_FALSE(csl_buf_puts(&b, "more"));
    CU_ASSERT_FALSE(csl_buf_putc(&b, 'c'));
    CU_ASSERT_FALSE(csl_buf_printf(&b, "%d", 1));
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b), "kept");
    CU_ASSERT_EQUAL(b.len, 4);
    /* steal on a failed buffer frees it and returns NULL. */
    CU_ASSERT_PTR_NULL(csl_buf_steal(&b));
    CU_ASSERT_FALSE(b.oom);
    CU_ASSERT_PTR_NULL(b.data);

    /* reset clears the flag. */
    csl_buf_puts(&b, "a");
    b.oom = true;
    CU_ASSERT_FALSE(csl_buf_puts(&b, "b"));
    csl_buf_reset(&b);
    CU_ASSERT_FALSE(b.oom);
    CU_ASSERT_TRUE(csl_buf_puts(&b, "c"));
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&b), "c");
    csl_buf_free(&b);
}

/* ---------------------------------------------------------------- clock */

static void test_mono_and_sleep(void)
{
    int64_t a = csl_mono_ns();
    csl_sleep_ns(20 * 1000000);
    int64_t b = csl_mono_ns();
    CU_ASSERT(b - a >= 20 * 1000000);
    /* Generous: a loaded machine may oversleep, never by this much. */
    CU_ASSERT(b - a < 10LL * 1000000000);
    csl_sleep_ns(0);
    csl_sleep_ns(-5);
    CU_ASSERT(csl_mono_ns() >= b);

    int64_t wall = csl_wall_ms();
    int64_t now = (int64_t)time(NULL) * 1000;
    CU_ASSERT(wall > now - 5000 && wall < now + 5000);
}

static void test_rfc3339_format(void)
{
    static const struct {
        int64_t ms;
        const char *with_ms, *whole;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z", "1970-01-01T00:00:00Z"},
        {1795702886123, "2026-11-26T14:21:26.123Z", "2026-11-26T14:21:26Z"},
        {951782400000, "2000-02-29T00:00:00.000Z", "2000-02-29T00:00:00Z"},
        {4102444799999, "2099-12-31T23:59:59.999Z", "2099-12-31T23:59:59Z"},
        {-1, "1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[CSL_RFC3339_LEN];
        csl_rfc3339_ms(cases[i].ms, out);
        CU_ASSERT_STRING_EQUAL(out, cases[i].with_ms);
        csl_rfc3339_s(cases[i].ms, out);
        CU_ASSERT_STRING_EQUAL(out, cases[i].whole);
    }
}

static void test_rfc3339_parse(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"2026-11-26T14:21:26Z", 1795702886000},
        {"2026-11-26T14:21:26.123Z", 1795702886123},
        {"2026-11-26T14:21:26.5Z", 1795702886500},
        {"2026-11-26T14:21:26.123456789Z", 1795702886123},
        {"2026-11-26t14:21:26z", 1795702886000},
        {"2026-11-26 14:21:26Z", 1795702886000},
        {"2026-11-26T14:21:26+08:00", 1795674086000},
        {"2026-11-26T14:21:26-05:30", 1795722686000},
        {"2026-11-26T14:21:26.250+00:00", 1795702886250},
        {"1970-01-01T00:00:00Z", 0},
        {"2000-02-29T00:00:00Z", 951782400000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -7;
        CU_ASSERT_EQUAL(csl_rfc3339_parse(ok[i].s, &ms), 0);
        CU_ASSERT_EQUAL(ms, ok[i].ms);
        if (ms != ok[i].ms) fprintf(stderr, "\n  %s -> %lld\n", ok[i].s, (long long)ms);
    }
    static const char *const bad[] = {
        "",
        "2026-11-26",
        "2026-11-26T14:21:26",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-26T24:00:00Z",
        "2026-11-26T14:60:00Z",
        "2026-11-26T14:21:26.Z",
        "2026-11-26T14:21:26Zjunk",
        "2026-11-26T14:21:26+0800",
        "2026-11-26X14:21:26Z",
        "26-11-26T14:21:26Z",
        "2026-11-26T14:21Z",
        "2026-02-30T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = -7;
        CU_ASSERT_EQUAL(csl_rfc3339_parse(bad[i], &ms), -1);
        CU_ASSERT_EQUAL(ms, -7);
    }
}

static void test_rfc3339_round_trip(void)
{
    /* Millisecond values across decades, both formats. */
    uint64_t x = 1;
    for (int i = 0; i < 200; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int64_t v = (int64_t)(x >> 22); /* 42 bits: up to year 2109 */
        char out[CSL_RFC3339_LEN];
        int64_t back = -1;
        csl_rfc3339_ms(v, out);
        CU_ASSERT_EQUAL(csl_rfc3339_parse(out, &back), 0);
        CU_ASSERT_EQUAL(back, v);
        csl_rfc3339_s(v, out);
        CU_ASSERT_EQUAL(csl_rfc3339_parse(out, &back), 0);
        CU_ASSERT_EQUAL(back, v - v % 1000);
    }
    char now[CSL_RFC3339_LEN];
    int64_t wall = csl_wall_ms(), back;
    csl_rfc3339_ms(wall, now);
    CU_ASSERT_EQUAL(csl_rfc3339_parse(now, &back), 0);
    CU_ASSERT_EQUAL(back, wall);
}

static CU_TestInfo buf_tests[] = {
    {"empty buffer", test_empty},
    {"growth and binary data", test_growth},
    {"printf", test_printf},
    {"reset keeps storage", test_reset_keeps_storage},
    {"steal", test_steal},
    {"oom flag", test_oom_flag},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo clock_tests[] = {
    {"monotonic clock and sleep", test_mono_and_sleep},
    {"rfc3339 format", test_rfc3339_format},
    {"rfc3339 parse", test_rfc3339_parse},
    {"rfc3339 round trips", test_rfc3339_round_trip},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"buf", NULL, NULL, NULL, NULL, buf_tests},
    {"clock", NULL, NULL, NULL, NULL, clock_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
