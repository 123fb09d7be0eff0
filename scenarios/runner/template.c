/* template.c — {{NAME}} substitution in scenario strings (see template.h).
 *
 * One scanner serves both checking and expanding: it walks a string,
 * copies literal text, and hands each {{…}} to a resolver that either
 * only validates the name (check) or appends its value (expand). So
 * `validate` and the run can never disagree about what a template means.
 * Inside the braces: a name (index, namespace, scenario, run, seed,
 * vars.NAME), or a quoted literal ("…" or '…') written as is, which is how
 * {{"{{"}} spells a literal "{{". Spaces around either are ignored. */
#include "template.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/buf.h"
#include "expr.h"

/* ---------------------------------------------------------------- helpers */

static void seterr(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || !errsz) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}


/* What one {{…}} stands for. */
typedef struct tval {
    const char *text; /* literal text or a string value; NULL for a number */
    size_t len;
    bool is_number;
    double number;
    bool is_literal; /* a quoted literal: never becomes a number */
} tval;

/* Resolves the inside of one {{…}} (already trimmed, n bytes). check
 * mode (v == NULL) only validates, using has_index and vars. Returns 0, or
 * -1 with err. */
static int resolve(const char *in, size_t n, bool has_index, const cJSON *vars, const sr_tvars *v,
                   tval *out, char *numbuf, size_t numsz, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    if (n == 0) {
        seterr(err, errsz,
               "empty {{}}; expected a name: index, namespace, scenario, run, seed or vars.NAME");
        return -1;
    }
    if (in[0] == '"' || in[0] == '\'') {
        if (n < 2 || in[n - 1] != in[0] || memchr(in + 1, in[0], n - 2)) {
            seterr(err, errsz, "malformed literal {{%.*s}}; write a quoted text such as {{\"{{\"}}",
                   (int)n, in);
            return -1;
        }
        out->text = in + 1;
        out->len = n - 2;
        out->is_literal = true;
        return 0;
    }
    if (n == 5 && !memcmp(in, "index", 5)) {
        if (v ? v->index < 0 : !has_index) {
            seterr(err, errsz,
                   "{{index}} is only defined inside an operation with count (apply's count, or a "
                   "selection by name with count)");
            return -1;
        }
        if (v) {
            out->is_number = true;
            out->number = (double)v->index;
            snprintf(numbuf, numsz, "%ld", v->index);
            out->text = numbuf;
            out->len = strlen(numbuf);
        }
        return 0;
    }
    if (n == 4 && !memcmp(in, "seed", 4)) {
        if (v) {
            snprintf(numbuf, numsz, "%" PRIu64, v->seed);
            out->text = numbuf;
            out->len = strlen(numbuf);
            /* Beyond 2^53 a double would change the seed: keep it text. */
            out->is_number = v->seed <= (UINT64_C(1) << 53);
            out->number = (double)v->seed;
        }
        return 0;
    }
    static const struct {
        const char *name;
        size_t off;
    } strs[] = {
        {"namespace", offsetof(sr_tvars, ns)},
        {"scenario", offsetof(sr_tvars, scenario)},
        {"run", offsetof(sr_tvars, run)},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strlen(strs[i].name) == n && !memcmp(in, strs[i].name, n)) {
            if (v) {
                const char *s = *(const char *const *)((const char *)v + strs[i].off);
                if (!s) s = "";
                out->text = s;
                out->len = strlen(s);
            }
            return 0;
        }
    }
    if (n > 5 && !memcmp(in, "vars.", 5)) {
        char name[128];
        if (n - 5 >= sizeof name) {
            seterr(err, errsz, "variable name too long in {{%.*s}}", (int)n, in);
            return -1;
        }
        memcpy(name, in + 5, n - 5);
        name[n - 5] = '\0';
        const cJSON *vs = v ? v->vars : vars;
        const cJSON *val = cJSON_IsObject(vs) ? cJSON_GetObjectItemCaseSensitive(vs, name) : NULL;
        if (!val) {
            char known[256] = "";
            size_t k = 0;
            const cJSON *it = NULL;
            if (cJSON_IsObject(vs)) {
                cJSON_ArrayForEach(it, vs)
                {
                    if (k + strlen(it->string) + 3 >= sizeof known) break;
                    k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", k ? ", " : "",
                                          it->string);
                }
            }
            if (k)
                seterr(err, errsz, "unknown variable {{vars.%s}}; setup.vars defines %s", name,
                       known);
            else
                seterr(err, errsz, "unknown variable {{vars.%s}}; setup.vars defines no variables",
                       name);
            return -1;
        }
        if (cJSON_IsNumber(val)) {
            sr_fmt_number(val->valuedouble, numbuf, numsz);
            out->is_number = true;
            out->number = val->valuedouble;
            out->text = numbuf;
            out->len = strlen(numbuf);
        } else if (cJSON_IsString(val)) {
            out->text = val->valuestring;
            out->len = strlen(val->valuestring);
        } else if (cJSON_IsBool(val)) {
            out->text = cJSON_IsTrue(val) ? "true" : "false";
            out->len = strlen(out->text);
        } else if (cJSON_IsNull(val)) {
            out->text = "";
        } else {
            seterr(err, errsz,
                   "{{vars.%s}} is a %s; only strings, numbers and booleans can be spliced", name,
                   cJSON_IsArray(val) ? "list" : "mapping");
            return -1;
        }
        return 0;
    }
    seterr(err, errsz,
           "unknown template variable {{%.*s}}; expected index, namespace, scenario, run, seed or "
           "vars.NAME",
           (int)n, in);
    return -1;
}

/* Scans s. With out == NULL it only checks. *whole is set when s is
 * exactly one {{…}} (spaces aside) that stands for a number; then *num
 * holds it. Returns 0 or -1 with err. */
static int scan(const char *s, bool has_index, const cJSON *vars, const sr_tvars *v, csl_buf *out,
                bool *whole, double *num, char *err, size_t errsz)
{
    const char *p = s;
    int parts = 0;
    bool only_number = false;
    if (whole) *whole = false;
    for (;;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            if (*p) parts++;
            if (out && *p) csl_buf_append(out, p, strlen(p));
            break;
        }
        if (open > p) {
            parts++;
            if (out) csl_buf_append(out, p, (size_t)(open - p));
        }
        const char *in = open + 2;
        /* A quoted literal may itself hold "}}": find the closing quote first. */
        const char *q = in;
        while (*q == ' ') q++;
        const char *close;
        if (*q == '"' || *q == '\'') {
            const char *endq = strchr(q + 1, *q);
            close = endq ? strstr(endq + 1, "}}") : NULL;
        } else {
            close = strstr(in, "}}");
        }
        if (!close) {
            seterr(err, errsz,
                   "unclosed \"{{\" at offset %zu; close it with \"}}\", or write {{\"{{\"}} for a "
                   "literal \"{{\"",
                   (size_t)(open - s));
            return -1;
        }
        const char *a = in, *b = close;
        while (a < b && *a == ' ') a++;
        while (b > a && b[-1] == ' ') b--;
        char numbuf[64];
        tval tv;
        if (resolve(a, (size_t)(b - a), has_index, vars, v, &tv, numbuf, sizeof numbuf, err,
                    errsz) < 0)
            return -1;
        parts++;
        only_number = tv.is_number && !tv.is_literal;
        if (num) *num = tv.number;
        if (out && tv.len) csl_buf_append(out, tv.text, tv.len);
        p = close + 2;
    }
    if (whole)
        *whole = parts == 1 && only_number && !strncmp(s, "{{", 2) && strlen(s) >= 2 &&
                 !strcmp(s + strlen(s) - 2, "}}");
    return 0;
}

/* ---------------------------------------------------------------- API */

const cJSON *sr_template_check(const cJSON *tree, bool has_index, const cJSON *vars, char *err,
                               size_t errsz)
{
    if (!tree) return NULL;
    if (cJSON_IsString(tree) && tree->valuestring) {
        if (strstr(tree->valuestring, "{{") &&
            scan(tree->valuestring, has_index, vars, NULL, NULL, NULL, NULL, err, errsz) < 0)
            return tree;
        return NULL;
    }
    if (cJSON_IsObject(tree) || cJSON_IsArray(tree)) {
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, tree)
        {
            if (cJSON_IsObject(tree) && it->string && strstr(it->string, "{{") &&
                scan(it->string, has_index, vars, NULL, NULL, NULL, NULL, err, errsz) < 0)
                return it;
            const cJSON *bad = sr_template_check(it, has_index, vars, err, errsz);
            if (bad) return bad;
        }
    }
    return NULL;
}

char *sr_template_expand_str(const char *s, const sr_tvars *v, char *err, size_t errsz)
{
    csl_buf b;
    csl_buf_init(&b);
    if (scan(s, false, NULL, v, &b, NULL, NULL, err, errsz) < 0) {
        csl_buf_free(&b);
        return NULL;
    }
    char *r = b.oom ? NULL : strdup(csl_buf_str(&b));
    csl_buf_free(&b);
    if (!r) seterr(err, errsz, "out of memory");
    return r;
}

/* One node expanded into a new one. */
static cJSON *expand_node(const cJSON *n, const sr_tvars *v, char *err, size_t errsz)
{
    if (cJSON_IsString(n) && n->valuestring && strstr(n->valuestring, "{{")) {
        bool whole = false;
        double num = 0;
        csl_buf b;
        csl_buf_init(&b);
        if (scan(n->valuestring, false, NULL, v, &b, &whole, &num, err, errsz) < 0) {
            csl_buf_free(&b);
            return NULL;
        }
        cJSON *r =
            whole ? cJSON_CreateNumber(num) : (b.oom ? NULL : cJSON_CreateString(csl_buf_str(&b)));
        csl_buf_free(&b);
        if (!r) seterr(err, errsz, "out of memory");
        return r;
    }
    if (cJSON_IsObject(n) || cJSON_IsArray(n)) {
        cJSON *r = cJSON_IsObject(n) ? cJSON_CreateObject() : cJSON_CreateArray();
        if (!r) goto oom;
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, n)
        {
            cJSON *c = expand_node(it, v, err, errsz);
            if (!c) {
                cJSON_Delete(r);
                return NULL;
            }
            if (cJSON_IsObject(n)) {
                char *key = sr_template_expand_str(it->string ? it->string : "", v, err, errsz);
                if (!key) {
                    cJSON_Delete(c);
                    cJSON_Delete(r);
                    return NULL;
                }
                cJSON_AddItemToObject(r, key, c);
                free(key);
            } else {
                cJSON_AddItemToArray(r, c);
            }
        }
        return r;
    }
    cJSON *r = cJSON_Duplicate(n, false);
    if (r) return r;
oom:
    seterr(err, errsz, "out of memory");
    return NULL;
}

cJSON *sr_template_expand(const cJSON *tree, const sr_tvars *v, char *err, size_t errsz)
{
    if (!tree) {
        seterr(err, errsz, "no tree to expand");
        return NULL;
    }
    return expand_node(tree, v, err, errsz);
}
