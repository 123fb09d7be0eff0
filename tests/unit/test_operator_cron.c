/* test_operator_cron.c — the backup schedule parser, next start times,
 * missed schedules and back-off maths, table-driven against times computed
 * by hand (and checked with an independent minute-by-minute search whose
 * calendar comes from libc's timegm/gmtime_r, not from ours). */
#include "../testutil.h"

#include <string.h>
#include <time.h>

#include "../../operator/backoff.h"
#include "../../operator/cron.h"

/* "2026-01-01 06:00:00" → epoch seconds, through libc. */
static int64_t T(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec) != 6)
        return -42;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static op_cron parse_ok(const char *expr)
{
    op_cron c;
    memset(&c, 0, sizeof c);
    char err[OP_CRON_ERR_LEN] = "";
    int rc = op_cron_parse(expr, &c, err);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc) fprintf(stderr, "\n  parse \"%s\": %s\n", expr, err);
    return c;
}

/* ---------------------------------------------------------------- parsing */

static void test_parse_sets(void)
{
    op_cron c = parse_ok("0 */6 * * *");
    CU_ASSERT_EQUAL(c.minutes, 1ULL);
    CU_ASSERT_EQUAL(c.hours, (1u << 0) | (1u << 6) | (1u << 12) | (1u << 18));
    CU_ASSERT_EQUAL(c.days, 0xfffffffeu);
    CU_ASSERT_EQUAL(c.months, 0x1ffe);
    CU_ASSERT_EQUAL(c.weekdays, 0x7f);
    CU_ASSERT(c.days_star && c.weekdays_star);

    c = parse_ok("30 2 * * MON-FRI");
    CU_ASSERT_EQUAL(c.minutes, 1ULL << 30);
    CU_ASSERT_EQUAL(c.hours, 1u << 2);
    CU_ASSERT_EQUAL(c.weekdays, 0x3e);
    CU_ASSERT(c.days_star);
    CU_ASSERT_FALSE(c.weekdays_star);

    /* names in any case, in lists and ranges; 7 is Sunday */
    c = parse_ok("0 0 1,15 jan,Jul,DEC sun,7");
    CU_ASSERT_EQUAL(c.months, (1 << 1) | (1 << 7) | (1 << 12));
    CU_ASSERT_EQUAL(c.weekdays, 1);
    CU_ASSERT_EQUAL(c.days, (1u << 1) | (1u << 15));
    CU_ASSERT_FALSE(c.days_star || c.weekdays_star);
    c = parse_ok("0 0 * feb-Apr 5-7");
    CU_ASSERT_EQUAL(c.months, (1 << 2) | (1 << 3) | (1 << 4));
    CU_ASSERT_EQUAL(c.weekdays, (1 << 5) | (1 << 6) | 1);

    /* steps on ranges, on *, on a lone value ("a/n" = a-max/n) */
    c = parse_ok("5/20 9-17/4 */10 1-12/5 *");
    CU_ASSERT_EQUAL(c.minutes, (1ULL << 5) | (1ULL << 25) | (1ULL << 45));
    CU_ASSERT_EQUAL(c.hours, (1u << 9) | (1u << 13) | (1u << 17));
    CU_ASSERT_EQUAL(c.days, (1u << 1) | (1u << 11) | (1u << 21) | (1u << 31));
    CU_ASSERT_EQUAL(c.months, (1 << 1) | (1 << 6) | (1 << 11));
    CU_ASSERT(c.days_star); /* "*" then a step is still a star field (Vixie) */
    c = parse_ok("0 0 * * MON/2");
    CU_ASSERT_EQUAL(c.weekdays, (1 << 1) | (1 << 3) | (1 << 5));
    c = parse_ok("00 00 01 01 00");
    CU_ASSERT_EQUAL(c.minutes, 1ULL);
    CU_ASSERT_EQUAL(c.weekdays, 1);
    /* several spaces or tabs between fields, spaces around */
    c = parse_ok("  0\t 0  *   * *  ");
    CU_ASSERT_EQUAL(c.hours, 1u);
    /* every value of every field */
    c = parse_ok("0-59 0-23 1-31 1-12 0-7");
    CU_ASSERT_EQUAL(c.minutes, (1ULL << 60) - 1);
    CU_ASSERT_EQUAL(c.hours, (1u << 24) - 1);
    CU_ASSERT_EQUAL(c.weekdays, 0x7f);
    CU_ASSERT_FALSE(c.days_star || c.weekdays_star);
    c = parse_ok("*/1 * * * */99");
    CU_ASSERT_EQUAL(c.weekdays, 1);
}

static void test_parse_errors(void)
{
    static const struct {
        const char *expr;
        const char *want; /* substring of the error */
    } cases[] = {
        {"", "0 fields where 5 are needed"},
        {"   ", "0 fields where 5 are needed"},
        {"* * * *", "4 fields where 5"},
        {"* * * * * *", "column 11: more than 5 fields"},
        {"@daily", "column 1: macros such as @daily are not accepted"},
        {"0 0 * * * @yearly", "more than 5 fields"},
        {"60 * * * *", "minute (field 1, column 1): 60 is out of range 0-59"},
        {"* 24 * * *", "hour (field 2, column 3): 24 is out of range 0-23"},
        {"* * 0 * *", "day-of-month (field 3, column 5): 0 is out of range 1-31"},
        {"* * 32 * *", "day-of-month (field 3, column 5): 32 is out of range 1-31"},
        {"* * * 13 *", "month (field 4, column 7): 13 is out of range 1-12"},
        {"* * * 0 *", "month (field 4, column 7): 0 is out of range 1-12"},
        {"* * * * 8", "day-of-week (field 5, column 9): 8 is out of range 0-7"},
        {"0000 * * * *", "minute (field 1, column 1): 0000 is out of range"},
        {"99999999999 * * * *", "out of range 0-59"},
        {"* * * FOO *", "month (field 4, column 7): \"FOO\" is not a number 1-12 or a month name"},
        {"* * * JANUARY *", "\"JANUARY\" is not a number 1-12 or a month name"},
        {"* * * * MONDAY", "\"MONDAY\" is not a number 0-7 or a day name SUN-SAT"},
        {"* * * * JAN", "day-of-week (field 5, column 9): \"JAN\" is not"},
        {"* * * SUN *", "month (field 4, column 7): \"SUN\" is not"},
        {"JAN * * * *", "minute (field 1, column 1): \"JAN\" is not a number 0-59"},
        {"*/0 * * * *", "minute (field 1, column 3): step 0 is out of range 1-99"},
        {"*/100 * * * *", "step 100 is out of range 1-99"},
        {"*/ * * * *", "column 3): missing step after '/'"},
        {"5-1 * * * *", "minute (field 1, column 1): range 5-1 runs backwards"},
        {"* * * * SAT-SUN", "range SAT-SUN runs backwards"},
        {"1,,2 * * * *", "minute (field 1, column 3): missing value"},
        {"1, * * * *", "column 3): missing value"},
        {"1- * * * *", "column 3): missing value"},
        {"1-2-3 * * * *", "unexpected '-' after \"1-2\""},
        {"*-5 * * * *", "unexpected '-' after \"*\""},
        {"? * * * *", "unexpected '?'"},
        {"0 12 L * *", "\"L\" is not a number 1-31"},
        {"0 0 1 * MON#2", "unexpected '#' after \"MON\""},
        {"0 0 * * 1/2/3", "unexpected '/'"},
        {"-1 * * * *", "unexpected '-'"},
        {"0 0 * * 5L", "unexpected 'L' after \"5\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        op_cron c;
        memset(&c, 0xab, sizeof c);
        op_cron before = c;
        char err[OP_CRON_ERR_LEN] = "";
        int rc = op_cron_parse(cases[i].expr, &c, err);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT(strstr(err, cases[i].want) != NULL);
        CU_ASSERT(memcmp(&c, &before, sizeof c) == 0); /* untouched on error */
        if (rc != -1 || !strstr(err, cases[i].want))
            fprintf(stderr, "\n  \"%s\": rc=%d err=%s (want %s)\n", cases[i].expr, rc, err,
                    cases[i].want);
    }
    /* NULL err and NULL expr are fine */
    op_cron c;
    CU_ASSERT_EQUAL(op_cron_parse("61 * * * *", &c, NULL), -1);
    CU_ASSERT_EQUAL(op_cron_parse(NULL, &c, NULL), -1);
}

/* ---------------------------------------------------------------- next */

static void test_next_table(void)
{
    static const struct {
        const char *expr, *from, *want; /* want NULL: never */
    } cases[] = {
        {"0 */6 * * *", "2026-01-01 00:00:00", "2026-01-01 06:00:00"},
        {"0 */6 * * *", "2026-01-01 05:59:59", "2026-01-01 06:00:00"},
        {"0 */6 * * *", "2026-12-31 18:00:00", "2027-01-01 00:00:00"},      /* year end */
        {"30 2 * * MON-FRI", "2026-11-28 00:00:00", "2026-11-30 02:30:00"}, /* Sat → Mon */
        {"30 2 * * MON-FRI", "2026-11-26 02:30:00", "2026-11-27 02:30:00"}, /* strictly after */
        {"0 0 29 2 *", "2025-03-01 00:00:00", "2028-02-29 00:00:00"},       /* leap day */
        {"0 0 29 2 *", "2096-03-01 00:00:00", "2104-02-29 00:00:00"},       /* 2100 is not leap */
        {"0 0 29 2 *", "1999-01-01 00:00:00", "2000-02-29 00:00:00"},       /* 2000 is */
        {"0 0 31 * *", "2026-04-01 00:00:00", "2026-05-31 00:00:00"},       /* April has 30 */
        {"0 0 31 2 *", "2026-01-01 00:00:00", NULL},                        /* never */
        {"0 0 30 2 *", "2026-01-01 00:00:00", NULL},
        {"0 0 31 4,6,9,11 *", "2026-01-01 00:00:00", NULL},
        /* both day fields restricted: either matches (1st or Monday) */
        {"0 0 1 * MON", "2026-06-01 00:00:00", "2026-06-08 00:00:00"},
        {"0 0 1 * MON", "2026-06-29 00:00:00", "2026-07-01 00:00:00"},
        {"0 0 1-7 * MON", "2026-06-02 00:00:00", "2026-06-03 00:00:00"},
        /* day of month starts with '*': both must match (odd days that are Mondays) */
        {"0 0 */2 * MON", "2026-06-01 00:00:00", "2026-06-15 00:00:00"},
        {"0 0 */2 * MON", "2026-06-15 00:00:00", "2026-06-29 00:00:00"},
        {"0 0 */2 * MON", "2026-06-29 00:00:00", "2026-07-13 00:00:00"},
        {"0 0 * * 7", "2026-11-26 00:00:00", "2026-11-29 00:00:00"},
        {"0 0 * * 0", "2026-11-26 00:00:00", "2026-11-29 00:00:00"},
        {"15 10 * JAN,jul sun", "2026-02-01 00:00:00", "2026-07-05 10:15:00"},
        {"*/15 9-17/4 * * *", "2026-01-01 09:50:00", "2026-01-01 13:00:00"},
        {"*/15 9-17/4 * * *", "2026-01-01 17:45:00", "2026-01-02 09:00:00"},
        {"5/20 * * * *", "2026-01-01 10:06:00", "2026-01-01 10:25:00"},
        {"5/20 * * * *", "2026-01-01 10:45:00", "2026-01-01 11:05:00"},
        {"59 23 28-31 * *", "2026-02-28 23:59:00", "2026-03-28 23:59:00"}, /* month end */
        {"59 23 28-31 * *", "2024-02-28 23:59:00", "2024-02-29 23:59:00"},
        {"0 0 1 1 *", "2026-06-01 00:00:00", "2027-01-01 00:00:00"},
        {"0 0 1 1 *", "1969-06-01 00:00:00", "1970-01-01 00:00:00"}, /* before the epoch */
        {"0 0 * * SAT,sun", "2026-11-26 00:00:00", "2026-11-28 00:00:00"},
        {"* * * * *", "2026-01-01 12:00:30", "2026-01-01 12:01:00"},
        {"0 12 * * 1-5/2", "2026-11-27 12:00:00", "2026-11-30 12:00:00"},
        {"0 0 * * MON/2", "2026-11-26 00:00:00", "2026-11-27 00:00:00"},
        {"0 0 31 */2 *", "2026-01-31 00:00:00", "2026-03-31 00:00:00"},
        {"0 0 1 1 *", "9999-06-01 00:00:00", NULL}, /* past the calendar we serve */
        {"59 23 31 12 *", "9999-12-31 23:58:00", "9999-12-31 23:59:00"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        op_cron c = parse_ok(cases[i].expr);
        int64_t got = op_cron_next(&c, T(cases[i].from));
        int64_t want = cases[i].want ? T(cases[i].want) : -1;
        CU_ASSERT_EQUAL(got, want);
        if (got != want)
            fprintf(stderr, "\n  next(\"%s\", %s) = %lld, want %s\n", cases[i].expr, cases[i].from,
                    (long long)got, cases[i].want ? cases[i].want : "never");
        if (want >= 0) {
            CU_ASSERT(op_cron_matches(&c, want));
            CU_ASSERT_EQUAL(want % 60, 0);
        }
    }
    op_cron c = parse_ok("* * * * *");
    CU_ASSERT_EQUAL(op_cron_next(&c, INT64_MAX), -1);
    CU_ASSERT_EQUAL(op_cron_next(&c, INT64_MIN), -1);
}

/* The oracle: does minute t match, with the calendar from gmtime_r? */
static bool oracle_matches(const op_cron *c, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    bool dom = (c->days >> tm.tm_mday) & 1, dow = (c->weekdays >> tm.tm_wday) & 1;
    bool day = c->days_star || c->weekdays_star ? dom && dow : dom || dow;
    return ((c->minutes >> tm.tm_min) & 1) && ((c->hours >> tm.tm_hour) & 1) &&
           ((c->months >> (tm.tm_mon + 1)) & 1) && day;
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

/* Random schedules: next() agrees with a minute-by-minute search and the
 * libc calendar, across month ends and leap years. */
static void test_next_vs_brute_force(void)
{
    static const char *const mins[] = {"*", "0", "*/7", "5-20/5", "59", "0,30", "13"};
    static const char *const hours[] = {"*", "0", "*/5", "9-17", "23", "3,7/8", "12"};
    static const char *const doms[] = {"*", "1", "*/3", "28-31", "31", "15,29", "2-6"};
    static const char *const mons[] = {"*", "FEB", "*/4", "jan-mar", "2,4,6", "dec", "3"};
    static const char *const dows[] = {"*", "MON", "0", "6,7", "tue-thu", "*/3", "5"};
    uint64_t seed = 12345;
    int mismatches = 0;
    for (int n = 0; n < 120; n++) {
        char expr[96];
        snprintf(expr, sizeof expr, "%s %s %s %s %s", mins[lcg(&seed) % 7], hours[lcg(&seed) % 7],
                 doms[lcg(&seed) % 7], mons[lcg(&seed) % 7], dows[lcg(&seed) % 7]);
        op_cron c = parse_ok(expr);
        /* a start between 1998 and 2030, not on a minute boundary */
        int64_t t = T("1998-01-01 00:00:00") + (int64_t)(lcg(&seed) % (32LL * 365 * 86400));
        for (int step = 0; step < 3; step++) {
            int64_t got = op_cron_next(&c, t);
            /* brute force over at most 500 days; schedules that fire less
             * often are checked only for "nothing earlier" */
            int64_t want = -1;
            int64_t m = (t / 60 + 1) * 60;
            for (int64_t k = 0; k < 500LL * 1440; k++, m += 60)
                if (oracle_matches(&c, m)) {
                    want = m;
                    break;
                }
            bool ok = want >= 0 ? got == want : (got == -1 || got >= m);
            if (!ok && mismatches++ < 5)
                fprintf(stderr, "\n  \"%s\" after %lld: got %lld want %lld\n", expr, (long long)t,
                        (long long)got, (long long)want);
            CU_ASSERT(ok);
            CU_ASSERT(got < 0 || op_cron_matches(&c, got) == oracle_matches(&c, got));
            if (got < 0) break;
            t = got;
        }
    }
}

static void test_matches_and_calendar(void)
{
    op_cron c = parse_ok("30 2 * * MON-FRI");
    CU_ASSERT(op_cron_matches(&c, T("2026-11-26 02:30:00")));
    CU_ASSERT(op_cron_matches(&c, T("2026-11-26 02:30:59"))); /* the minute holding t */
    CU_ASSERT_FALSE(op_cron_matches(&c, T("2026-11-26 02:31:00")));
    CU_ASSERT_FALSE(op_cron_matches(&c, T("2026-11-28 02:30:00"))); /* Saturday */
    /* our calendar against timegm over 1600..2400, month starts and ends */
    uint64_t seed = 7;
    for (int i = 0; i < 2000; i++) {
        int y = 1600 + (int)(lcg(&seed) % 800), m = 1 + (int)(lcg(&seed) % 12);
        int d = 1 + (int)(lcg(&seed) % 28);
        struct tm tm = {0};
        tm.tm_year = y - 1900;
        tm.tm_mon = m - 1;
        tm.tm_mday = d;
        int64_t days = (int64_t)timegm(&tm) / 86400;
        CU_ASSERT_EQUAL(op_days_from_civil(y, m, d), days);
        int64_t yy;
        int mm, dd;
        op_civil_from_days(days, &yy, &mm, &dd);
        CU_ASSERT(yy == y && mm == m && dd == d);
    }
    CU_ASSERT_EQUAL(op_days_from_civil(1970, 1, 1), 0);
    CU_ASSERT_EQUAL(op_days_from_civil(2000, 3, 1) - op_days_from_civil(2000, 2, 28), 2);
    CU_ASSERT_EQUAL(op_days_from_civil(2100, 3, 1) - op_days_from_civil(2100, 2, 28), 1);
}

/* ---------------------------------------------------------------- missed */

static void test_missed(void)
{
    op_cron hourly = parse_ok("0 * * * *");
    int64_t t10 = T("2026-01-01 10:00:00");
    op_cron_missed m;

    m = op_cron_missed_since(&hourly, t10, t10 + 1800, -1, 0);
    CU_ASSERT(m.time == -1 && m.count == 0 && !m.too_many);
    m = op_cron_missed_since(&hourly, t10, t10 + 3600, -1, 0); /* due exactly now */
    CU_ASSERT(m.time == t10 + 3600 && m.count == 1 && !m.too_many);
    m = op_cron_missed_since(&hourly, t10, t10 + 3 * 3600 + 1800, -1, 0);
    CU_ASSERT(m.time == t10 + 3 * 3600 && m.count == 3 && !m.too_many);
    /* the starting deadline narrows the window to (now - deadline, now] */
    m = op_cron_missed_since(&hourly, t10, t10 + 3 * 3600 + 1800, 3600, 0);
    CU_ASSERT(m.time == t10 + 3 * 3600 && m.count == 1);
    m = op_cron_missed_since(&hourly, t10, t10 + 3 * 3600 + 1800, 600, 0);
    CU_ASSERT(m.time == -1 && m.count == 0);
    m = op_cron_missed_since(&hourly, t10, t10 + 3 * 3600 + 1800, 0, 0);
    CU_ASSERT(m.time == -1 && m.count == 0);
    /* a last time in the future (clock skew) misses nothing */
    m = op_cron_missed_since(&hourly, t10 + 7200, t10, -1, 0);
    CU_ASSERT(m.time == -1 && m.count == 0 && !m.too_many);

    /* 100 missed is fine, 101 is refused, as CronJob */
    op_cron every = parse_ok("* * * * *");
    int64_t t0 = T("2026-01-01 00:00:00");
    m = op_cron_missed_since(&every, t0, t0 + 100 * 60, -1, 0);
    CU_ASSERT(m.time == t0 + 100 * 60 && m.count == 100 && !m.too_many);
    m = op_cron_missed_since(&every, t0, t0 + 101 * 60, -1, 0);
    CU_ASSERT(m.time == -1 && m.count == 101 && m.too_many);
    m = op_cron_missed_since(&every, t0, t0 + 365LL * 86400, -1, 0); /* bounded work */
    CU_ASSERT(m.too_many && m.count == OP_CRON_MISSED_MAX + 1);
    /* the deadline keeps a long outage under the bound */
    m = op_cron_missed_since(&every, t0, t0 + 365LL * 86400, 3600, 0);
    CU_ASSERT(!m.too_many && m.count == 60 && m.time == t0 + 365LL * 86400);
    /* a smaller bound */
    m = op_cron_missed_since(&every, t0, t0 + 6 * 60, -1, 5);
    CU_ASSERT(m.too_many && m.count == 6);
    /* a schedule that never fires misses nothing */
    op_cron never = parse_ok("0 0 31 2 *");
    m = op_cron_missed_since(&never, t0, t0 + 365LL * 86400, -1, 0);
    CU_ASSERT(m.time == -1 && m.count == 0 && !m.too_many);
}

/* ---------------------------------------------------------------- back-off */

static void test_backoff(void)
{
    op_backoff b = {1000, 300000, 0};
    CU_ASSERT_EQUAL(op_backoff_delay_ms(&b, 0, NULL), 1000);
    CU_ASSERT_EQUAL(op_backoff_delay_ms(&b, 1, NULL), 2000);
    CU_ASSERT_EQUAL(op_backoff_delay_ms(&b, 8, NULL), 256000);
    CU_ASSERT_EQUAL(op_backoff_delay_ms(&b, 9, NULL), 300000);
    CU_ASSERT_EQUAL(op_backoff_delay_ms(&b, 4000000000u, NULL), 300000); /* no overflow */
    op_backoff odd = {0, -5, 0};                                         /* clamped */
    CU_ASSERT_EQUAL(op_backoff_delay_ms(&odd, 0, NULL), 1);
    CU_ASSERT_EQUAL(op_backoff_delay_ms(&odd, 50, NULL), 1);
    op_backoff big = {INT64_MAX / 4, INT64_MAX, 0};
    CU_ASSERT_EQUAL(op_backoff_delay_ms(&big, 100, NULL), INT64_MAX);

    /* jitter: within [d(1-j), d], reproducible from the seed, and varied */
    op_backoff j = {1000, 300000, 0.2};
    csl_rng r1, r2;
    csl_rng_seed(&r1, 42);
    csl_rng_seed(&r2, 42);
    int64_t lo = INT64_MAX, hi = 0;
    for (unsigned f = 0; f < 200; f++) {
        int64_t d = op_backoff_delay_ms(&j, f % 12, &r1);
        int64_t full = op_backoff_delay_ms(&j, f % 12, NULL);
        CU_ASSERT(d <= full && d >= full - full / 5 - 1);
        CU_ASSERT_EQUAL(d, op_backoff_delay_ms(&j, f % 12, &r2));
        if (f % 12 == 0) {
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
    }
    CU_ASSERT(lo < hi);
    op_backoff wild = {1000, 1000, 7.0}; /* jitter above 1 counts as 1 */
    for (int i = 0; i < 50; i++) {
        int64_t d = op_backoff_delay_ms(&wild, 3, &r1);
        CU_ASSERT(d >= 1 && d <= 1000);
    }

    /* polls: half the elapsed time within [min, max] */
    CU_ASSERT_EQUAL(op_poll_delay_ms(0, 250, 15000), 250);
    CU_ASSERT_EQUAL(op_poll_delay_ms(-5000, 250, 15000), 250);
    CU_ASSERT_EQUAL(op_poll_delay_ms(2000, 250, 15000), 1000);
    CU_ASSERT_EQUAL(op_poll_delay_ms(3600000, 250, 15000), 15000);
    CU_ASSERT_EQUAL(op_poll_delay_ms(100, 0, 0), 1);
}

static CU_TestInfo cron_tests[] = {
    {"parse: bit sets, names, steps, ranges", test_parse_sets},
    {"parse: errors name the field and column", test_parse_errors},
    {"next: hand-computed table", test_next_table},
    {"next: agrees with a brute-force search", test_next_vs_brute_force},
    {"matches and the calendar", test_matches_and_calendar},
    {"missed schedules, deadline, the 100 bound", test_missed},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo backoff_tests[] = {
    {"back-off and polls", test_backoff},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"cron", NULL, NULL, NULL, NULL, cron_tests},
    {"backoff", NULL, NULL, NULL, NULL, backoff_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
