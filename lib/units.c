/* units.c — Go-style durations and Kubernetes quantities (see csl/units.h).
 *
 * Design idea: no floating point anywhere. A number is read as a decimal
 * mantissa and a power of ten and scaled in 128-bit integers, so "1.1s" is
 * exactly 1100000000 ns and "0.1Gi" is refused rather than rounded wrong. */
#include "csl/units.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

/* Bound on intermediate mantissas: far above any int64 result, far below
 * u128 overflow even after one more multiply by 10 or 2^60. */
#define MANT_LIMIT ((u128)1 << 64 << 50)

static void fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(char *err, const char *fmt, ...)
{
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, CSL_UNITS_ERR_LEN, fmt, ap);
    va_end(ap);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads [digits][.digits] at *p into mantissa/frac_digits. Trailing zeros
 * of the fraction are not counted, and digits past max_frac are dropped
 * (durations truncate below 1 ns, as Go does). Returns false when there is
 * no digit at all or the mantissa is too large; *too_big tells them apart. */
static bool read_decimal(const char **p, int max_frac, u128 *mant, int *frac_digits, bool *too_big)
{
    const char *s = *p;
    u128 m = 0;
    int fd = 0, zeros = 0;
    bool any = false;
    *too_big = false;
    for (; is_digit(*s); s++) {
        any = true;
        if (*too_big) continue;
        m = m * 10 + (u128)(*s - '0');
        if (m > MANT_LIMIT) *too_big = true;
    }
    if (*s == '.') {
        s++;
        for (; is_digit(*s); s++) {
            any = true;
            if (*s == '0') {
                zeros++;
                continue;
            }
            if (*too_big || fd + zeros + 1 > max_frac) continue;
            for (; zeros >= 0; zeros--) {
                m *= 10;
                fd++;
                if (m > MANT_LIMIT) *too_big = true;
            }
            zeros = 0;
            m += (u128)(*s - '0');
        }
    }
    *p = s;
    *mant = m;
    *frac_digits = fd;
    return any && !*too_big;
}

/* ---------------------------------------------------------------- durations */

static const struct {
    const char *name;
    int64_t ns;
} dur_units[] = {
    {"ns", 1},           {"us", 1000},      {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000},                                         /* U+03BC Greek mu */
    {"ms", 1000000},     {"s", 1000000000}, {"m", 60LL * 1000000000}, {"h", 3600LL * 1000000000},
};

#define DUR_UNITS_HINT "use ns, us, ms, s, m or h"

int csl_duration_parse(const char *s, int64_t *out_ns, char err[CSL_UNITS_ERR_LEN])
{
    if (!s || !*s) {
        fail(err, "empty duration: write a number with a unit, e.g. \"30s\", \"5m\" or \"1h30m\"");
        return -1;
    }
    const char *p = s;
    if (*p == '-') {
        fail(err, "negative duration \"%.60s\" is not allowed", s);
        return -1;
    }
    if (*p == '+') p++;
    if (strcmp(p, "0") == 0) {
        *out_ns = 0;
        return 0;
    }
    if (!*p) {
        fail(err, "invalid duration \"%.60s\": expected a number after the sign", s);
        return -1;
    }
    u128 total = 0;
    while (*p) {
        const char *num = p;
        u128 mant;
        int fd;
        bool too_big;
        if (!read_decimal(&p, 9, &mant, &fd, &too_big)) {
            if (too_big) goto overflow;
            fail(err, "invalid duration \"%.60s\": expected a number at \"%.20s\"", s, num);
            return -1;
        }
        const char *u = p;
        while (*p && !is_digit(*p) && *p != '.') p++;
        size_t ulen = (size_t)(p - u);
        if (ulen == 0) {
            fail(err, "missing unit after \"%.*s\" in \"%.60s\": " DUR_UNITS_HINT,
                 (int)(p - num > 20 ? 20 : p - num), num, s);
            return -1;
        }
        int64_t unit = 0;
        for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0]; i++) {
            if (strlen(dur_units[i].name) == ulen && memcmp(u, dur_units[i].name, ulen) == 0) {
                unit = dur_units[i].ns;
                break;
            }
        }
        if (!unit) {
            fail(err, "unknown unit \"%.*s\" in \"%.60s\": " DUR_UNITS_HINT,
                 (int)(ulen > 20 ? 20 : ulen), u, s);
            return -1;
        }
        u128 pow10 = 1;
        for (int i = 0; i < fd; i++) pow10 *= 10;
        u128 whole = mant / pow10, frac = mant % pow10;
        if (whole > (u128)INT64_MAX) goto overflow;
        /* Below 1 ns is truncated, as Go does. */
        total += whole * (u128)unit + frac * (u128)unit / pow10;
        if (total > (u128)INT64_MAX) goto overflow;
    }
    *out_ns = (int64_t)total;
    return 0;
overflow:
    fail(err, "duration \"%.60s\" is too large: the limit is about 2562047h (292 years)", s);
    return -1;
}

/* Appends v / scale with its fraction trimmed of trailing zeros and unit. */
static size_t put_scaled(char *out, size_t outsz, uint64_t v, uint64_t scale, const char *unit)
{
    uint64_t whole = v / scale, frac = v % scale;
    int n;
    if (frac == 0) {
        n = snprintf(out, outsz, "%llu%s", (unsigned long long)whole, unit);
    } else {
        int width = 0;
        for (uint64_t s = scale; s > 1; s /= 10) width++;
        while (frac % 10 == 0) {
            frac /= 10;
            width--;
        }
        n = snprintf(out, outsz, "%llu.%0*llu%s", (unsigned long long)whole, width,
                     (unsigned long long)frac, unit);
    }
    if (n < 0) return 0;
    return (size_t)n < outsz ? (size_t)n : (outsz ? outsz - 1 : 0);
}

void csl_duration_format(int64_t ns, char *out, size_t outsz)
{
    if (!out || outsz == 0) return;
    out[0] = '\0';
    size_t pos = 0;
    uint64_t u = (uint64_t)ns;
    if (ns < 0) {
        u = 0 - u;
        pos += (size_t)snprintf(out, outsz, "-");
        if (pos >= outsz) return;
    }
    if (u == 0) {
        snprintf(out, outsz, "0s");
        return;
    }
    const uint64_t S = 1000000000ULL, M = 60 * S, H = 60 * M;
    uint64_t h = u / H, m = u % H / M, rest = u % M;
    if (h) pos += put_scaled(out + pos, outsz - pos, h, 1, "h");
    if (m && pos < outsz) pos += put_scaled(out + pos, outsz - pos, m, 1, "m");
    if (!rest || pos >= outsz) return;
    if (rest >= S)
        put_scaled(out + pos, outsz - pos, rest, S, "s");
    else if (rest >= 1000000)
        put_scaled(out + pos, outsz - pos, rest, 1000000, "ms");
    else if (rest >= 1000)
        put_scaled(out + pos, outsz - pos, rest, 1000, "us");
    else
        put_scaled(out + pos, outsz - pos, rest, 1, "ns");
}

/* ---------------------------------------------------------------- quantities */

#define QTY_SUFFIX_HINT "use Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P, E, m or an exponent like e6"

static const struct {
    const char *name;
    int pow2, pow10;
} qty_suffixes[] = {
    {"", 0, 0},    {"m", 0, -3},  {"k", 0, 3},   {"M", 0, 6},   {"G", 0, 9},
    {"T", 0, 12},  {"P", 0, 15},  {"E", 0, 18},  {"Ki", 10, 0}, {"Mi", 20, 0},
    {"Gi", 30, 0}, {"Ti", 40, 0}, {"Pi", 50, 0}, {"Ei", 60, 0},
};

/* Reads an exponent suffix "e<int>" / "E<int>" (the whole rest). */
static bool read_exponent(const char *p, int *exp10)
{
    if (*p != 'e' && *p != 'E') return false;
    p++;
    int sign = 1;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!is_digit(*p)) return false;
    int v = 0;
    for (; is_digit(*p); p++) {
        if (v < 10000) v = v * 10 + (*p - '0');
    }
    if (*p) return false;
    *exp10 = sign * v;
    return true;
}

int csl_quantity_parse_milli(const char *s, int64_t *out_milli, char err[CSL_UNITS_ERR_LEN])
{
    if (!s || !*s) {
        fail(err, "empty quantity: write a number with an optional suffix, e.g. \"4Gi\", \"500m\" "
                  "or \"2\"");
        return -1;
    }
    const char *p = s;
    if (*p == '-') {
        fail(err, "negative quantity \"%.60s\" is not allowed", s);
        return -1;
    }
    if (*p == '+') p++;
    u128 mant;
    int fd;
    bool too_big;
    if (!read_decimal(&p, 1000, &mant, &fd, &too_big)) {
        if (too_big) goto overflow;
        fail(err, "invalid quantity \"%.60s\": expected a number like \"4\", \"1.5\" or \"0.5\"",
             s);
        return -1;
    }
    int pow2 = 0, pow10 = 0;
    bool known = false;
    for (size_t i = 0; i < sizeof qty_suffixes / sizeof qty_suffixes[0]; i++) {
        if (strcmp(p, qty_suffixes[i].name) == 0) {
            pow2 = qty_suffixes[i].pow2;
            pow10 = qty_suffixes[i].pow10;
            known = true;
            break;
        }
    }
    if (!known && !read_exponent(p, &pow10)) {
        fail(err, "unknown suffix \"%.20s\" in \"%.60s\": " QTY_SUFFIX_HINT, p, s);
        return -1;
    }
    /* value = mant * 10^(pow10 - fd) * 2^pow2, in milli-units. */
    int scale10 = pow10 - fd + 3;
    if (mant == 0) {
        *out_milli = 0;
        return 0;
    }
    for (int i = 0; i < pow2; i++) {
        mant <<= 1;
        if (mant > MANT_LIMIT) goto overflow;
    }
    for (; scale10 > 0; scale10--) {
        mant *= 10;
        if (mant > MANT_LIMIT) goto overflow;
    }
    for (; scale10 < 0; scale10++) {
        if (mant % 10 != 0) {
            fail(err,
                 "quantity \"%.60s\" is more precise than the smallest unit, 1m (0.001): round it",
                 s);
            return -1;
        }
        mant /= 10;
    }
    if (mant > (u128)INT64_MAX) goto overflow;
    *out_milli = (int64_t)mant;
    return 0;
overflow:
    fail(err, "quantity \"%.60s\" is too large: the limit is about 9.2e15 (8Pi)", s);
    return -1;
}

int csl_quantity_parse_bytes(const char *s, int64_t *out_bytes, char err[CSL_UNITS_ERR_LEN])
{
    int64_t milli;
    if (csl_quantity_parse_milli(s, &milli, err) < 0) return -1;
    *out_bytes = milli / 1000 + (milli % 1000 != 0);
    return 0;
}
