/* dist.c — random durations: fixed, uniform, lognormal with a cap (see
 * csl/dist.h).
 *
 * Design idea: validation happens once, when the JSON is read, and names the
 * field at fault; sampling then trusts the struct and only clamps, so it can
 * never return a negative or runaway duration whatever was filled in. */
#include "csl/dist.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "csl/units.h"

/* ---------------------------------------------------------------- sampling */

static int64_t lognormal_cap(const csl_dist *d)
{
    if (d->b_ns > 0) return d->b_ns;
    return d->a_ns > INT64_MAX / 10 ? INT64_MAX : d->a_ns * 10;
}

int64_t csl_dist_sample(const csl_dist *d, csl_rng *r)
{
    switch (d->kind) {
    case CSL_DIST_FIXED:
        return d->a_ns > 0 ? d->a_ns : 0;
    case CSL_DIST_UNIFORM: {
        int64_t lo = d->a_ns > 0 ? d->a_ns : 0;
        if (d->b_ns <= lo) return lo;
        uint64_t span = (uint64_t)d->b_ns - (uint64_t)lo;
        return lo + (int64_t)csl_rng_below(r, span + 1);
    }
    case CSL_DIST_LOGNORMAL: {
        if (d->a_ns <= 0) return 0;
        int64_t cap = lognormal_cap(d);
        double v = (double)d->a_ns * exp(d->sigma * csl_rng_normal(r));
        /* Comparing as doubles first keeps the int conversion in range. */
        if (!(v < (double)cap)) return cap;
        int64_t ns = (int64_t)llround(v);
        return ns < 0 ? 0 : ns > cap ? cap : ns;
    }
    }
    return 0;
}

/* ---------------------------------------------------------------- parsing */

typedef struct {
    char *err;
    size_t errsz;
    const cJSON **bad;
} dist_err;

static int fail(dist_err *e, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(dist_err *e, const cJSON *node, const char *fmt, ...)
{
    if (e->err && e->errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->err, e->errsz, fmt, ap);
        va_end(ap);
    }
    if (e->bad) *e->bad = node;
    return -1;
}

/* Reads member `field` of object j as a duration string. Returns 0 when
 * read, 1 when an optional field is absent, -1 on error. */
static int duration_field(const cJSON *j, const char *kind, const char *field, bool required,
                          int64_t *out, dist_err *e)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, field);
    if (!f) {
        if (!required) return 1;
        return fail(e, j, "%s: missing \"%s\": add a duration such as \"1s\"", kind, field);
    }
    if (!cJSON_IsString(f))
        return fail(e, f, "%s: \"%s\" must be a duration string such as \"1s\"", kind, field);
    char uerr[CSL_UNITS_ERR_LEN];
    if (csl_duration_parse(f->valuestring, out, uerr) < 0)
        return fail(e, f, "%s: \"%s\": %s", kind, field, uerr);
    return 0;
}

/* Unknown members are refused so that a typo ("mdian") is not silently a
 * default. allowed is a NULL-terminated list. */
static int check_fields(const cJSON *j, const char *kind, const char *const *allowed,
                        const char *expect, dist_err *e)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, j)
    {
        bool ok = strcmp(m->string, "distribution") == 0;
        for (const char *const *a = allowed; !ok && *a; a++) ok = strcmp(m->string, *a) == 0;
        if (!ok)
            return fail(e, m, "%s: unknown field \"%.40s\": expected %s", kind, m->string, expect);
    }
    return 0;
}

static void fmt_ns(int64_t ns, char out[32])
{
    csl_duration_format(ns, out, 32);
}

int csl_dist_from_json(const cJSON *j, csl_dist *out, char *err, size_t errsz, const cJSON **bad)
{
    dist_err e = {err, errsz, bad};
    csl_dist d = {CSL_DIST_FIXED, 0, 0, 0.0};
    char a[32], b[32];
    if (!j) return fail(&e, NULL, "missing distribution");
    if (cJSON_IsString(j)) {
        char uerr[CSL_UNITS_ERR_LEN];
        if (csl_duration_parse(j->valuestring, &d.a_ns, uerr) < 0) return fail(&e, j, "%s", uerr);
        *out = d;
        return 0;
    }
    if (!cJSON_IsObject(j))
        return fail(&e, j,
                    "expected a duration string such as \"1s\" or an object with "
                    "\"distribution\": \"fixed\", \"uniform\" or \"lognormal\"");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "distribution");
    if (!kind)
        return fail(&e, j, "missing \"distribution\": use \"fixed\", \"uniform\" or \"lognormal\"");
    if (!cJSON_IsString(kind))
        return fail(&e, kind,
                    "\"distribution\" must be a string: \"fixed\", \"uniform\" or \"lognormal\"");
    const char *k = kind->valuestring;
    if (strcmp(k, "fixed") == 0) {
        static const char *const fields[] = {"value", NULL};
        if (check_fields(j, k, fields, "\"value\"", &e) < 0) return -1;
        if (duration_field(j, k, "value", true, &d.a_ns, &e) < 0) return -1;
    } else if (strcmp(k, "uniform") == 0) {
        static const char *const fields[] = {"min", "max", NULL};
        d.kind = CSL_DIST_UNIFORM;
        if (check_fields(j, k, fields, "\"min\" and \"max\"", &e) < 0) return -1;
        if (duration_field(j, k, "min", true, &d.a_ns, &e) < 0) return -1;
        if (duration_field(j, k, "max", true, &d.b_ns, &e) < 0) return -1;
        if (d.b_ns < d.a_ns) {
            fmt_ns(d.b_ns, b);
            fmt_ns(d.a_ns, a);
            return fail(&e, cJSON_GetObjectItemCaseSensitive(j, "max"),
                        "uniform: \"max\" (%s) is below \"min\" (%s)", b, a);
        }
    } else if (strcmp(k, "lognormal") == 0) {
        static const char *const fields[] = {"median", "sigma", "cap", NULL};
        d.kind = CSL_DIST_LOGNORMAL;
        if (check_fields(j, k, fields, "\"median\", \"sigma\" and \"cap\"", &e) < 0) return -1;
        if (duration_field(j, k, "median", true, &d.a_ns, &e) < 0) return -1;
        const cJSON *median = cJSON_GetObjectItemCaseSensitive(j, "median");
        if (d.a_ns <= 0)
            return fail(&e, median, "lognormal: \"median\" must be above 0; use \"fixed\" for 0");
        const cJSON *sigma = cJSON_GetObjectItemCaseSensitive(j, "sigma");
        if (!sigma) return fail(&e, j, "lognormal: missing \"sigma\": add a number such as 0.5");
        if (!cJSON_IsNumber(sigma) || !isfinite(sigma->valuedouble) || sigma->valuedouble < 0 ||
            sigma->valuedouble > 10)
            return fail(&e, sigma, "lognormal: \"sigma\" must be a number from 0 to 10, e.g. 0.5");
        d.sigma = sigma->valuedouble;
        int rc = duration_field(j, k, "cap", false, &d.b_ns, &e);
        if (rc < 0) return -1;
        if (rc > 0) d.b_ns = lognormal_cap(&d);
        if (d.b_ns < d.a_ns) {
            fmt_ns(d.b_ns, b);
            fmt_ns(d.a_ns, a);
            return fail(&e, cJSON_GetObjectItemCaseSensitive(j, "cap"),
                        "lognormal: \"cap\" (%s) is below \"median\" (%s)", b, a);
        }
    } else {
        return fail(&e, kind,
                    "unknown distribution \"%.40s\": use \"fixed\", \"uniform\" or \"lognormal\"",
                    k);
    }
    *out = d;
    return 0;
}

/* ---------------------------------------------------------------- output */

static bool add_duration(cJSON *o, const char *name, int64_t ns)
{
    char s[32];
    fmt_ns(ns, s);
    return cJSON_AddStringToObject(o, name, s) != NULL;
}

cJSON *csl_dist_to_json(const csl_dist *d)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    bool ok;
    switch (d->kind) {
    case CSL_DIST_UNIFORM:
        ok = cJSON_AddStringToObject(o, "distribution", "uniform") &&
             add_duration(o, "min", d->a_ns) && add_duration(o, "max", d->b_ns);
        break;
    case CSL_DIST_LOGNORMAL:
        ok = cJSON_AddStringToObject(o, "distribution", "lognormal") &&
             add_duration(o, "median", d->a_ns) && cJSON_AddNumberToObject(o, "sigma", d->sigma) &&
             add_duration(o, "cap", lognormal_cap(d));
        break;
    case CSL_DIST_FIXED:
    default:
        ok = cJSON_AddStringToObject(o, "distribution", "fixed") &&
             add_duration(o, "value", d->a_ns);
        break;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
