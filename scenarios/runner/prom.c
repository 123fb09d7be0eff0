/* prom.c — a reader of the Prometheus text exposition format 0.0.4, enough
 * to sum the operator's counters and gauges.
 *
 * One idea: every string of a parsed page (metric names, label names and
 * unescaped label values) lives in one pool, and samples refer to it by
 * offset, so a page of a few hundred samples costs a handful of
 * allocations and one free. A line that does not parse is skipped and
 * counted instead of failing the scrape: one odd metric must not hide the
 * rest. */
#include "prom.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csl/buf.h"

typedef struct prom_label {
    size_t name, value; /* offsets into the pool */
} prom_label;

typedef struct prom_sample {
    size_t name;                  /* offset into the pool */
    size_t first_label, n_labels; /* into labels[] */
    double value;
    bool has_ts;
    long long ts_ms;
} prom_sample;

struct sr_prom {
    csl_buf pool; /* NUL-separated strings */
    prom_sample *samples;
    size_t n, cap;
    prom_label *labels;
    size_t n_labels, cap_labels;
    size_t bad;
    bool oom;
};

/* ------------------------------------------------------------------ pool */

static size_t pool_add(sr_prom *p, const char *s, size_t len)
{
    size_t off = p->pool.len;
    csl_buf_append(&p->pool, s, len);
    csl_buf_putc(&p->pool, '\0');
    if (p->pool.oom) p->oom = true;
    return off;
}

static const char *pool_str(const sr_prom *p, size_t off)
{
    return p->pool.data + off;
}

static bool reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *q = realloc(*arr, c * elem);
    if (!q) return false;
    *arr = q;
    *cap = c;
    return true;
}

/* --------------------------------------------------------------- parsing */

static bool is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_' || c == ':';
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == ':';
}

static const char *skip_blanks(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    return s;
}

/* A float as Prometheus writes it: a decimal or Go float, "+Inf", "-Inf",
 * "Inf", "NaN" (case-insensitive, as Go's ParseFloat). The token is
 * [s, end) with no blanks. */
static bool parse_float(const char *s, const char *end, double *out)
{
    size_t len = (size_t)(end - s);
    char tmp[64];
    if (len == 0 || len >= sizeof tmp) return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    const char *t = tmp + ((tmp[0] == '+' || tmp[0] == '-') ? 1 : 0);
    if (strcasecmp(t, "inf") == 0 || strcasecmp(t, "infinity") == 0) {
        *out = tmp[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    if (strcasecmp(t, "nan") == 0) {
        *out = NAN;
        return true;
    }
    /* Anything else strtod would read as inf/nan ("nan(123)") is not
     * Prometheus. */
    if (!isdigit((unsigned char)*t) && *t != '.') return false;
    char *stop;
    *out = strtod(tmp, &stop);
    return *stop == '\0';
}

/* Parses {name="value",...} starting at *sp (just after '{'); appends the
 * labels. Leaves *sp after the '}'. False on malformed labels. */
static bool parse_labels(sr_prom *p, const char **sp, const char *end, size_t *n_out)
{
    const char *s = *sp;
    size_t n = 0;
    csl_buf val = CSL_BUF_INIT;
    bool ok = false;
    for (;;) {
        s = skip_blanks(s, end);
        if (s < end && *s == '}') {
            s++;
            break;
        }
        if (s >= end || !is_name_start(*s) || *s == ':') goto out;
        const char *name = s;
        while (s < end && is_name_char(*s) && *s != ':') s++;
        size_t name_len = (size_t)(s - name);
        s = skip_blanks(s, end);
        if (s >= end || *s != '=') goto out;
        s = skip_blanks(s + 1, end);
        if (s >= end || *s != '"') goto out;
        s++;
        csl_buf_reset(&val);
        for (;;) {
            if (s >= end) goto out; /* unterminated value */
            if (*s == '"') {
                s++;
                break;
            }
            if (*s == '\\') {
                if (s + 1 >= end) goto out;
                char e = s[1];
                /* The format defines three escapes; others are kept as
                 * written, as Prometheus itself does. */
                if (e == 'n')
                    csl_buf_putc(&val, '\n');
                else if (e == '\\' || e == '"')
                    csl_buf_putc(&val, e);
                else {
                    csl_buf_putc(&val, '\\');
                    csl_buf_putc(&val, e);
                }
                s += 2;
                continue;
            }
            csl_buf_putc(&val, *s++);
        }
        if (val.oom) goto out;
        /* A label name given twice makes the series ambiguous. */
        for (size_t i = p->n_labels; i < p->n_labels + n; i++)
            if (strlen(pool_str(p, p->labels[i].name)) == name_len &&
                strncmp(pool_str(p, p->labels[i].name), name, name_len) == 0)
                goto out;
        if (!reserve((void **)&p->labels, &p->cap_labels, p->n_labels + n + 1, sizeof *p->labels))
            goto oom;
        p->labels[p->n_labels + n].name = pool_add(p, name, name_len);
        p->labels[p->n_labels + n].value = pool_add(p, csl_buf_str(&val), val.len);
        n++;
        s = skip_blanks(s, end);
        if (s < end && *s == ',') {
            s++;
            continue;
        }
        if (s < end && *s == '}') {
            s++;
            break;
        }
        goto out;
    }
    *sp = s;
    *n_out = n;
    ok = true;
    goto out;
oom:
    p->oom = true;
out:
    csl_buf_free(&val);
    return ok;
}

/* One sample line [s, end) without its newline. False when malformed. */
static bool parse_line(sr_prom *p, const char *s, const char *end)
{
    if (!is_name_start(*s)) return false;
    const char *name = s;
    while (s < end && is_name_char(*s)) s++;
    size_t name_len = (size_t)(s - name);
    s = skip_blanks(s, end);
    size_t n_labels = 0;
    if (s < end && *s == '{') {
        s++;
        if (!parse_labels(p, &s, end, &n_labels)) return false;
        s = skip_blanks(s, end);
    } else if (s == name + name_len) {
        return false; /* the name must be followed by a blank or '{' */
    }
    const char *v = s;
    while (s < end && *s != ' ' && *s != '\t') s++;
    prom_sample smp = {.first_label = p->n_labels, .n_labels = n_labels};
    if (!parse_float(v, s, &smp.value)) return false;
    s = skip_blanks(s, end);
    if (s < end) {
        /* An optional timestamp: integer milliseconds since the epoch. */
        const char *ts = s;
        if (*s == '-' || *s == '+') s++;
        if (s >= end || !isdigit((unsigned char)*s)) return false;
        while (s < end && isdigit((unsigned char)*s)) s++;
        if (skip_blanks(s, end) != end) return false;
        smp.has_ts = true;
        smp.ts_ms = strtoll(ts, NULL, 10);
    }
    if (!reserve((void **)&p->samples, &p->cap, p->n + 1, sizeof *p->samples)) {
        p->oom = true;
        return true;
    }
    smp.name = pool_add(p, name, name_len);
    p->samples[p->n++] = smp;
    /* The labels parse_labels appended now belong to this sample. */
    p->n_labels += n_labels;
    return true;
}

sr_prom *sr_prom_parse(const char *text, size_t len)
{
    sr_prom *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    const char *s = text ? text : "", *end = s + (text ? len : 0);
    while (s < end && !p->oom) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        const char *line_end = le;
        if (line_end > s && line_end[-1] == '\r') line_end--;
        const char *b = skip_blanks(s, line_end);
        if (b < line_end && *b != '#' && !parse_line(p, b, line_end)) p->bad++;
        s = nl ? nl + 1 : end;
    }
    if (p->oom) {
        sr_prom_free(p);
        return NULL;
    }
    return p;
}

void sr_prom_free(sr_prom *p)
{
    if (!p) return;
    csl_buf_free(&p->pool);
    free(p->samples);
    free(p->labels);
    free(p);
}

size_t sr_prom_bad_lines(const sr_prom *p)
{
    return p ? p->bad : 0;
}

/* --------------------------------------------------------------- queries */

/* Whether value is one of the '|'-separated alternatives in [alts, end). */
static bool value_matches(const char *value, const char *alts, const char *end)
{
    size_t vlen = strlen(value);
    while (alts <= end) {
        const char *bar = memchr(alts, '|', (size_t)(end - alts));
        const char *e = bar ? bar : end;
        if ((size_t)(e - alts) == vlen && strncmp(alts, value, vlen) == 0) return true;
        if (!bar) break;
        alts = bar + 1;
    }
    return false;
}

static const char *trim_end(const char *b, const char *e)
{
    while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
    return e;
}

/* Whether sample smp carries every k=v of filter. A filter term without
 * '=' matches nothing, so a typo in a check shows as "not found" rather
 * than as a sum over everything. */
static bool labels_match(const sr_prom *p, const prom_sample *smp, const char *filter)
{
    const char *s = filter;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        if (!*s) break;
        const char *comma = strchr(s, ',');
        const char *term_end = comma ? comma : s + strlen(s);
        const char *eq = memchr(s, '=', (size_t)(term_end - s));
        if (!eq) return false;
        const char *kend = trim_end(s, eq);
        const char *vb = eq + 1;
        while (vb < term_end && (*vb == ' ' || *vb == '\t')) vb++;
        const char *vend = trim_end(vb, term_end);
        bool hit = false;
        for (size_t i = 0; i < smp->n_labels && !hit; i++) {
            const prom_label *l = &p->labels[smp->first_label + i];
            const char *ln = pool_str(p, l->name);
            if (strlen(ln) == (size_t)(kend - s) && strncmp(ln, s, (size_t)(kend - s)) == 0)
                hit = value_matches(pool_str(p, l->value), vb, vend);
        }
        /* An absent label equals "" in Prometheus' model. */
        if (!hit) {
            bool absent = true;
            for (size_t i = 0; i < smp->n_labels; i++) {
                const char *ln = pool_str(p, p->labels[smp->first_label + i].name);
                if (strlen(ln) == (size_t)(kend - s) && strncmp(ln, s, (size_t)(kend - s)) == 0)
                    absent = false;
            }
            if (!(absent && value_matches("", vb, vend))) return false;
        }
        s = term_end;
    }
    return true;
}

double sr_prom_sum(const sr_prom *p, const char *name, const char *labels, bool *found)
{
    bool any = false;
    double sum = 0;
    if (p && name) {
        for (size_t i = 0; i < p->n; i++) {
            const prom_sample *smp = &p->samples[i];
            if (strcmp(pool_str(p, smp->name), name) != 0) continue;
            if (labels && *labels && !labels_match(p, smp, labels)) continue;
            any = true;
            /* NaN means "no value" for a gauge; it must not erase the rest. */
            if (!isnan(smp->value)) sum += smp->value;
        }
    }
    if (found) *found = any;
    return sum;
}
