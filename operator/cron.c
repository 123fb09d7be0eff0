/* cron.c — 5-field cron schedules in UTC (see cron.h).
 *
 * Design idea: parse into bit sets, then search by skipping: a month that is
 * not in the set is skipped whole, a day that does not match is skipped
 * whole, and within a day the next hour and minute are the next set bits.
 * Dates come from Howard Hinnant's days/civil conversions, so no libc time
 * zone state is involved and any year from 1 to 9999 works. */
#include "cron.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- calendar */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

int64_t op_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void op_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

/* 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
    return (int)(days - floor_div(days + 4, 7) * 7 + 4);
}

/* ---------------------------------------------------------------- parsing */

typedef struct field_def {
    const char *name;
    int min, max;
    const char *const *names; /* three-letter names of min.., or NULL */
    const char *hint;         /* what a value may be, for errors */
} field_def;

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const field_def fields[5] = {
    {"minute", 0, 59, NULL, "a number 0-59"},
    {"hour", 0, 23, NULL, "a number 0-23"},
    {"day-of-month", 1, 31, NULL, "a number 1-31"},
    {"month", 1, 12, month_names, "a number 1-12 or a month name JAN-DEC"},
    {"day-of-week", 0, 7, day_names, "a number 0-7 or a day name SUN-SAT"},
};

typedef struct parser {
    const char *expr;
    char *err;
    int field; /* index into fields */
    bool failed;
} parser;

static void fail(parser *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(parser *ps, const char *at, const char *fmt, ...)
{
    ps->failed = true;
    if (!ps->err) return;
    int n = snprintf(ps->err, OP_CRON_ERR_LEN, "%s (field %d, column %d): ", fields[ps->field].name,
                     ps->field + 1, (int)(at - ps->expr) + 1);
    if (n < 0 || n >= OP_CRON_ERR_LEN) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, (size_t)(OP_CRON_ERR_LEN - n), fmt, ap);
    va_end(ap);
}

static bool is_sep(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads a value (digits, or a name where the field has names) at *p.
 * Returns it, or -1 after reporting. */
static int read_value(parser *ps, const char **p)
{
    const field_def *f = &fields[ps->field];
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        int v = 0, nd = 0;
        while (isdigit((unsigned char)*s)) {
            if (nd < 4) v = v * 10 + (*s - '0');
            nd++;
            s++;
        }
        if (nd > 3 || v < f->min || v > f->max) {
            fail(ps, *p, "%.*s is out of range %d-%d", nd > 8 ? 8 : nd, *p, f->min, f->max);
            return -1;
        }
        *p = s;
        return v;
    }
    if (isalpha((unsigned char)*s)) {
        size_t n = 0;
        while (isalpha((unsigned char)s[n])) n++;
        if (f->names && n == 3) {
            int count = f->max - f->min + 1 - (f->names == day_names ? 1 : 0);
            for (int i = 0; i < count; i++) {
                if (toupper((unsigned char)s[0]) == f->names[i][0] &&
                    toupper((unsigned char)s[1]) == f->names[i][1] &&
                    toupper((unsigned char)s[2]) == f->names[i][2]) {
                    *p = s + 3;
                    return f->min + i;
                }
            }
        }
        fail(ps, *p, "\"%.*s\" is not %s", n > 16 ? 16 : (int)n, s, f->hint);
        return -1;
    }
    if (*s == '\0' || is_sep(*s) || *s == ',')
        fail(ps, *p, "missing value: expected \"*\" or %s", f->hint);
    else
        fail(ps, *p, "unexpected '%c': expected \"*\" or %s", *s, f->hint);
    return -1;
}

/* Parses one field starting at *p into *bits (bit v for value v, before
 * day-of-week folding). Stops at a separator or the end. */
static void parse_field(parser *ps, const char **p, uint64_t *bits)
{
    const field_def *f = &fields[ps->field];
    const char *s = *p;
    uint64_t set = 0;
    for (;;) {
        const char *item = s;
        int lo, hi, step = 1;
        bool single = false;
        if (*s == '*') {
            lo = f->min;
            hi = f->max;
            s++;
        } else {
            if ((lo = read_value(ps, &s)) < 0) return;
            hi = lo;
            if (*s == '-') {
                s++;
                if ((hi = read_value(ps, &s)) < 0) return;
                if (hi < lo) {
                    fail(ps, item, "range %.*s runs backwards: write it as two ranges or a list",
                         (int)(s - item), item);
                    return;
                }
            } else {
                single = true;
            }
        }
        if (*s == '/') {
            const char *at = ++s;
            int v = 0, nd = 0;
            while (isdigit((unsigned char)*s)) {
                if (nd < 3) v = v * 10 + (*s - '0');
                nd++;
                s++;
            }
            if (nd == 0) {
                fail(ps, at, "missing step after '/': expected a number 1-99");
                return;
            }
            if (nd > 2 || v < 1) {
                fail(ps, at, "step %.*s is out of range 1-99", nd > 8 ? 8 : nd, at);
                return;
            }
            step = v;
            /* "a/n" runs to the end of the field; Sunday-as-7 is not a new day. */
            if (single) hi = ps->field == 4 ? 6 : f->max;
        }
        for (int v = lo; v <= hi; v += step) set |= (uint64_t)1 << v;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\0' || is_sep(*s)) break;
        fail(ps, s,
             "unexpected '%c' after \"%.*s\": items are separated by ',' and fields by "
             "spaces",
             *s, (int)(s - item), item);
        return;
    }
    *p = s;
    *bits = set;
}

int op_cron_parse(const char *expr, op_cron *out, char err[OP_CRON_ERR_LEN])
{
    parser ps = {expr ? expr : "", err, 0, false};
    const char *s = ps.expr;
    uint64_t bits[5] = {0};
    bool star[5] = {false};
    int n = 0;
    for (;;) {
        while (is_sep(*s)) s++;
        if (*s == '\0') break;
        if (n == 5) {
            if (err)
                snprintf(err, OP_CRON_ERR_LEN,
                         "column %d: more than 5 fields: a schedule is minute hour day-of-month "
                         "month day-of-week, for example \"0 */6 * * *\"",
                         (int)(s - ps.expr) + 1);
            return -1;
        }
        if (*s == '@') {
            if (err)
                snprintf(err, OP_CRON_ERR_LEN,
                         "column %d: macros such as @daily are not accepted: write the 5 fields, "
                         "for example \"0 0 * * *\"",
                         (int)(s - ps.expr) + 1);
            return -1;
        }
        ps.field = n;
        star[n] = *s == '*';
        parse_field(&ps, &s, &bits[n]);
        if (ps.failed) return -1;
        n++;
    }
    if (n < 5) {
        if (err)
            snprintf(err, OP_CRON_ERR_LEN,
                     "%d field%s where 5 are needed: minute hour day-of-month month day-of-week, "
                     "for example \"0 */6 * * *\"",
                     n, n == 1 ? "" : "s");
        return -1;
    }
    op_cron c;
    c.minutes = bits[0];
    c.hours = (uint32_t)bits[1];
    c.days = (uint32_t)bits[2];
    c.months = (uint16_t)bits[3];
    c.weekdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
    c.days_star = star[2];
    c.weekdays_star = star[4];
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------- matching */

static bool day_matches(const op_cron *c, int64_t days, int d)
{
    bool dom = (c->days >> d) & 1;
    bool dow = (c->weekdays >> weekday(days)) & 1;
    if (c->days_star || c->weekdays_star) return dom && dow;
    return dom || dow;
}

bool op_cron_matches(const op_cron *c, int64_t t)
{
    int64_t minute = floor_div(t, 60);
    int64_t days = floor_div(minute, 1440);
    int mod = (int)(minute - days * 1440);
    int64_t y;
    int m, d;
    op_civil_from_days(days, &y, &m, &d);
    return ((c->minutes >> (mod % 60)) & 1) && ((c->hours >> (mod / 60)) & 1) &&
           ((c->months >> m) & 1) && day_matches(c, days, d);
}

/* The lowest set bit of bits at position >= from, or -1. */
static int next_bit(uint64_t bits, int from, int limit)
{
    for (int i = from; i <= limit; i++)
        if ((bits >> i) & 1) return i;
    return -1;
}

#define T_MIN (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define T_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

int64_t op_cron_next(const op_cron *c, int64_t t)
{
    if (t < T_MIN || t > T_MAX) return -1;
    int64_t minute = floor_div(t, 60) + 1;
    int64_t days = floor_div(minute, 1440);
    int hour = (int)(minute - days * 1440) / 60;
    int min = (int)(minute - days * 1440) % 60;
    int64_t y;
    int m, d;
    op_civil_from_days(days, &y, &m, &d);
    int64_t last_year = y + 10;
    for (;;) {
        if (y > last_year || y > 9999) return -1;
        if (!((c->months >> m) & 1) || d > days_in_month(y, m)) {
            d = 1;
            hour = min = 0;
            if (++m > 12) {
                m = 1;
                y++;
            }
            continue;
        }
        int64_t dn = op_days_from_civil(y, m, d);
        int h = day_matches(c, dn, d) ? next_bit(c->hours, hour, 23) : -1;
        if (h < 0) {
            d++;
            hour = min = 0;
            continue;
        }
        if (h != hour) {
            hour = h;
            min = 0;
        }
        int mi = next_bit(c->minutes, min, 59);
        if (mi < 0) {
            min = 0;
            if (++hour > 23) {
                hour = 0;
                d++;
            }
            continue;
        }
        return ((dn * 24 + hour) * 60 + mi) * 60;
    }
}

op_cron_missed op_cron_missed_since(const op_cron *c, int64_t last, int64_t now, int64_t deadline_s,
                                    int max)
{
    op_cron_missed r = {-1, 0, false};
    if (max <= 0) max = OP_CRON_MISSED_MAX;
    int64_t earliest = last;
    if (deadline_s >= 0 && now - deadline_s > earliest) earliest = now - deadline_s;
    if (earliest >= now) return r;
    for (int64_t t = op_cron_next(c, earliest); t >= 0 && t <= now; t = op_cron_next(c, t)) {
        if (++r.count > max) {
            r.too_many = true;
            r.time = -1;
            return r;
        }
        r.time = t;
    }
    return r;
}
