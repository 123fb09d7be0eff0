/* scenario.c — loads one scenario file and checks all of it (see scenario.h).
 *
 * One idea: validation never stops at the first problem. The checker walks
 * the whole YAML tree with a path ("steps[2].wait.condition") and reports
 * every problem it meets at the line:col csl_yaml kept for the node, then
 * moves on to the sibling, so one `validate` run lists everything to fix.
 * The same walk fills the sr_scenario; if any error was added the result
 * is thrown away. Operation bodies stay the YAML's own cJSON nodes (apply's
 * object lists are arrays of cJSON references to them), so positions stay
 * known for run-time messages. */
#include "scenario.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "csl/yaml.h"
#include "csl/units.h"
#include "match.h"
#include "template.h"

#define NS_PER_S 1000000000LL
#define PATH_LEN 512
#define MAX_DIR_DEPTH 32

/* ---------------------------------------------------------------- errors */

void sr_errors_init(sr_errors *e)
{
    e->items = NULL;
    e->n = 0;
}

void sr_errors_add(sr_errors *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0) return;
    char **items = realloc(e->items, (e->n + 1) * sizeof *items);
    if (!items) {
        free(s);
        return;
    }
    e->items = items;
    e->items[e->n++] = s;
}

void sr_errors_free(sr_errors *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->items[i]);
    free(e->items);
    e->items = NULL;
    e->n = 0;
}

static const char *const op_names[SR_OP_KIND_COUNT] = {
    "apply", "patch", "delete",   "wait",      "assert", "error",
    "fault", "crash", "operator", "apiserver", "sleep",  "exec",
};

const char *sr_op_kind_name(sr_op_kind k)
{
    return (unsigned)k < SR_OP_KIND_COUNT ? op_names[k] : "?";
}

static int op_kind_of(const char *s)
{
    for (int i = 0; i < SR_OP_KIND_COUNT; i++)
        if (!strcmp(op_names[i], s)) return i;
    return -1;
}

/* ---------------------------------------------------------------- state */

typedef struct sc_ref {
    const cJSON *ref, *orig;
} sc_ref;

/* What the scenario owns beyond its public fields. */
typedef struct sc_priv {
    csl_yaml **yamls; /* [0] the scenario file, then apply files */
    size_t n_yamls;
    cJSON **owned; /* arrays built here (apply objects), the empty vars */
    size_t n_owned;
    sc_ref *refs; /* reference node in an owned array → the YAML node */
    size_t n_refs;
} sc_priv;

/* A name given to a fault rule with `as:`, or one cleared by name. */
typedef struct sc_name {
    const char *name;
    const cJSON *node;
    const csl_yaml *y;
    char path[PATH_LEN];
} sc_name;

typedef struct chk {
    sr_scenario *s;
    sc_priv *p;
    const csl_yaml *y; /* positions of the tree being walked */
    sr_errors *errs;
    size_t n0; /* errs->n at the start */
    bool oom;
    const cJSON *vars;
    bool has_index; /* inside an operation with count */
    cJSON *scratch; /* validation-time expansions, freed at the end */
    sc_name *fault_names, *fault_clears;
    size_t n_fault_names, n_fault_clears;
} chk;

static bool track(chk *c, void **arr, size_t *n, size_t elsz, const void *el)
{
    void *a = realloc(*arr, (*n + 1) * elsz);
    if (!a) {
        c->oom = true;
        return false;
    }
    memcpy((char *)a + *n * elsz, el, elsz);
    *arr = a;
    (*n)++;
    return true;
}

static void own(chk *c, cJSON *node)
{
    if (!node) {
        c->oom = true;
        return;
    }
    if (!track(c, (void **)&c->p->owned, &c->p->n_owned, sizeof node, &node)) cJSON_Delete(node);
}

static char *xstrdup(chk *c, const char *s)
{
    char *r = strdup(s ? s : "");
    if (!r) c->oom = true;
    return r;
}

/* ---------------------------------------------------------------- messages */

static void verrf(chk *c, const cJSON *node, bool at_key, const char *path, const char *fmt,
                  va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int line = 0, col = 0;
    bool known = node && ((at_key && csl_yaml_key_pos(c->y, node, &line, &col)) ||
                          csl_yaml_pos(c->y, node, &line, &col));
    const char *file = csl_yaml_name(c->y);
    const char *sep = path && *path ? ": " : "";
    if (known && line > 0)
        sr_errors_add(c->errs, "%s:%d:%d: %s%s%s", file, line, col, path ? path : "", sep, msg);
    else
        sr_errors_add(c->errs, "%s: %s%s%s", file, path ? path : "", sep, msg);
}

static void errf(chk *c, const cJSON *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void errf(chk *c, const cJSON *node, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(c, node, false, path, fmt, ap);
    va_end(ap);
}

/* At the member's key rather than its value. */
static void errk(chk *c, const cJSON *node, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void errk(chk *c, const cJSON *node, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verrf(c, node, true, path, fmt, ap);
    va_end(ap);
}

/* out = a + sep + b, cut to PATH_LEN (paths are for messages only). */
static void concat(char *out, const char *a, const char *sep, const char *b)
{
    size_t k = 0;
    for (const char *parts[] = {a, sep, b}, **q = parts; q < parts + 3; q++)
        for (const char *s = *q; *s && k < PATH_LEN - 1; s++) out[k++] = *s;
    out[k] = '\0';
}

static void join(char *out, const char *path, const char *key)
{
    concat(out, path, *path ? "." : "", key);
}

static void joini(char *out, const char *path, size_t i)
{
    char idx[32];
    snprintf(idx, sizeof idx, "[%zu]", i);
    concat(out, path, "", idx);
}

/* "a string \"x\"", "a number 3", "a mapping" — what the person wrote. */
static const char *describe(const cJSON *n, char *buf, size_t sz)
{
    if (!n) return "nothing";
    if (cJSON_IsString(n))
        snprintf(buf, sz, "the string \"%.40s%s\"", n->valuestring,
                 strlen(n->valuestring) > 40 ? "…" : "");
    else if (cJSON_IsNumber(n))
        snprintf(buf, sz, "the number %g", n->valuedouble);
    else if (cJSON_IsBool(n))
        snprintf(buf, sz, "%s", cJSON_IsTrue(n) ? "true" : "false");
    else if (cJSON_IsNull(n))
        snprintf(buf, sz, "null");
    else if (cJSON_IsArray(n))
        snprintf(buf, sz, "a list");
    else
        snprintf(buf, sz, "a mapping");
    return buf;
}

/* Damerau (optimal string alignment) distance, ignoring case; long
 * strings are never close. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 &&
                tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1]) &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

/* The closest candidate when it is close enough to be a typo, else NULL. */
static const char *did_you_mean(const char *s, const char *const *cands)
{
    size_t len = strlen(s), best = 99;
    const char *r = NULL;
    size_t limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    for (size_t i = 0; cands[i]; i++) {
        size_t d = edit_distance(s, cands[i]);
        if (d < best) {
            best = d;
            r = cands[i];
        }
    }
    return best <= limit ? r : NULL;
}

/* "a, b or c" */
static void list_words(const char *const *w, char *out, size_t sz)
{
    size_t n = 0, k = 0;
    while (w[n]) n++;
    out[0] = '\0';
    for (size_t i = 0; i < n && k < sz; i++)
        k += (size_t)snprintf(out + k, sz - k, "%s%s",
                              i == 0       ? ""
                              : i + 1 == n ? " or "
                                           : ", ",
                              w[i]);
}

static bool in_list(const char *s, const char *const *w)
{
    for (size_t i = 0; w[i]; i++)
        if (!strcmp(s, w[i])) return true;
    return false;
}

/* Every key of obj must be in allowed. Returns false when one is not. */
static bool check_keys(chk *c, const cJSON *obj, const char *path, const char *const *allowed)
{
    bool ok = true;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, obj)
    {
        if (in_list(it->string, allowed)) continue;
        char words[512], hint[128] = "";
        list_words(allowed, words, sizeof words);
        const char *m = did_you_mean(it->string, allowed);
        if (m) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", m);
        errk(c, it, path, "unknown key \"%s\"; expected %s%s", it->string, words, hint);
        ok = false;
    }
    return ok;
}

/* ---------------------------------------------------------------- values */

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static bool has_template(const cJSON *n)
{
    return cJSON_IsString(n) && strstr(n->valuestring, "{{");
}

/* The node as it will read at run time, for type checks: a string with
 * templates is expanded with stand-in values (index 0, seed, vars). NULL
 * when the template itself is bad (reported by the template walk). */
static const cJSON *vexp(chk *c, const cJSON *n)
{
    if (!has_template(n)) return n;
    char ns[80];
    snprintf(ns, sizeof ns, "sr-%s-0000", c->s->name ? c->s->name : "scenario");
    sr_tvars v = {
        .index = c->has_index ? 0 : -1,
        .ns = ns,
        .scenario = c->s->name ? c->s->name : "scenario",
        .run = "00000000-000000-0000",
        .seed = c->s->setup.has_seed ? c->s->setup.seed : 1,
        .vars = c->vars,
    };
    char err[256];
    cJSON *e = sr_template_expand(n, &v, err, sizeof err);
    if (!e) return NULL;
    if (!c->scratch) c->scratch = cJSON_CreateArray();
    if (!c->scratch) {
        cJSON_Delete(e);
        c->oom = true;
        return NULL;
    }
    cJSON_AddItemToArray(c->scratch, e);
    return e;
}

static bool want_type(chk *c, const cJSON *n, const char *path, bool ok, const char *what)
{
    if (ok) return true;
    char d[96];
    errf(c, n, path, "expected %s, got %s", what, describe(n, d, sizeof d));
    return false;
}

static bool want_obj(chk *c, const cJSON *n, const char *path)
{
    return want_type(c, n, path, cJSON_IsObject(n), "a mapping");
}

static bool want_str(chk *c, const cJSON *n, const char *path)
{
    if (!want_type(c, n, path, cJSON_IsString(n), "a string")) return false;
    if (!*n->valuestring) {
        errf(c, n, path, "must not be empty");
        return false;
    }
    return true;
}

static bool want_bool(chk *c, const cJSON *n, const char *path)
{
    return want_type(c, n, path, cJSON_IsBool(n), "true or false");
}

/* An integer in [min, max]; templates allowed. False when absent or bad
 * (reported) — *out untouched then. */
static bool want_int(chk *c, const cJSON *n, const char *path, long min, long max, long *out)
{
    const cJSON *v = vexp(c, n);
    if (!v) return false;
    char d[96], what[96];
    if (max == LONG_MAX)
        snprintf(what, sizeof what, "a whole number >= %ld", min);
    else
        snprintf(what, sizeof what, "a whole number from %ld to %ld", min, max);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)min || v->valuedouble > (double)max ||
        fabs(v->valuedouble) > 9007199254740992.0) {
        errf(c, n, path, "expected %s, got %s", what, describe(v, d, sizeof d));
        return false;
    }
    if (out) *out = (long)v->valuedouble;
    return true;
}

/* A number; lo/hi inclusive unless the *_open flag says otherwise. */
static bool want_num(chk *c, const cJSON *n, const char *path, double lo, bool lo_open, double hi,
                     bool hi_open, double *out)
{
    const cJSON *v = vexp(c, n);
    if (!v) return false;
    char d[96];
    bool ok = cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
              (lo_open ? v->valuedouble > lo : v->valuedouble >= lo) &&
              (hi_open ? v->valuedouble < hi : v->valuedouble <= hi);
    if (!ok) {
        char what[96];
        if (isinf(hi))
            snprintf(what, sizeof what, "a number %s %g", lo_open ? ">" : ">=", lo);
        else
            snprintf(what, sizeof what, "a number %s %g and %s %g", lo_open ? ">" : ">=", lo,
                     hi_open ? "<" : "<=", hi);
        errf(c, n, path, "expected %s, got %s", what, describe(v, d, sizeof d));
        return false;
    }
    if (out) *out = v->valuedouble;
    return true;
}

/* A Go-style duration string ("30s"); positive unless zero_ok. */
static bool want_dur(chk *c, const cJSON *n, const char *path, bool zero_ok, int64_t *out)
{
    const cJSON *v = vexp(c, n);
    if (!v) return false;
    char d[96];
    if (cJSON_IsNumber(v)) {
        errf(c, n, path,
             "expected a duration string such as \"30s\", \"1m30s\" or \"500ms\", got %s (a number "
             "needs a unit)",
             describe(v, d, sizeof d));
        return false;
    }
    if (!want_type(c, n, path, cJSON_IsString(v),
                   "a duration string such as \"30s\", \"1m30s\" or \"500ms\""))
        return false;
    int64_t ns = 0;
    char err[CSL_UNITS_ERR_LEN];
    if (csl_duration_parse(v->valuestring, &ns, err) < 0) {
        errf(c, n, path, "%s", err);
        return false;
    }
    if (!zero_ok && ns == 0) {
        errf(c, n, path, "must be longer than 0s");
        return false;
    }
    if (out) *out = ns;
    return true;
}

/* A list of non-empty strings, copied into *out when out is not NULL. */
static bool want_strs(chk *c, const cJSON *n, const char *path, bool nonempty, char ***out,
                      size_t *nout)
{
    if (!want_type(c, n, path, cJSON_IsArray(n), "a list of strings")) return false;
    size_t cnt = (size_t)cJSON_GetArraySize(n);
    if (nonempty && cnt == 0) {
        errf(c, n, path, "must not be empty");
        return false;
    }
    bool ok = true;
    size_t i = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, n)
    {
        char p[PATH_LEN];
        joini(p, path, i++);
        if (!want_str(c, it, p)) ok = false;
    }
    if (!ok || !out) return ok;
    char **a = calloc(cnt ? cnt : 1, sizeof *a);
    if (!a) {
        c->oom = true;
        return false;
    }
    i = 0;
    cJSON_ArrayForEach(it, n) a[i++] = xstrdup(c, it->valuestring);
    *out = a;
    *nout = cnt;
    return true;
}

/* One of a fixed set of strings. */
static bool want_enum(chk *c, const cJSON *n, const char *path, const char *const *vals)
{
    const cJSON *v = vexp(c, n);
    if (!v) return false;
    char words[256], d[96];
    list_words(vals, words, sizeof words);
    if (cJSON_IsString(v) && in_list(v->valuestring, vals)) return true;
    const char *m = cJSON_IsString(v) ? did_you_mean(v->valuestring, vals) : NULL;
    if (m)
        errf(c, n, path, "expected %s, got %s (did you mean \"%s\"?)", words,
             describe(v, d, sizeof d), m);
    else
        errf(c, n, path, "expected %s, got %s", words, describe(v, d, sizeof d));
    return false;
}

/* A required member: reports it missing at the mapping. */
static const cJSON *need(chk *c, const cJSON *obj, const char *key, const char *path,
                         const char *what)
{
    const cJSON *n = get(obj, key);
    if (!n) errf(c, obj, path, "missing required key \"%s\" (%s)", key, what);
    return n;
}

static bool is_expr_str(const cJSON *n)
{
    if (!cJSON_IsString(n)) return false;
    size_t l = strlen(n->valuestring);
    return l >= 2 && n->valuestring[0] == '(' && n->valuestring[l - 1] == ')';
}

/* ---------------------------------------------------------------- walks */

/* Every string (and key) of tree: templates well-formed and known here. */
static void walk_templates(chk *c, const cJSON *n, const char *path)
{
    char err[300];
    if (cJSON_IsString(n)) {
        if (has_template(n) && sr_template_check(n, c->has_index, c->vars, err, sizeof err))
            errf(c, n, path, "%s", err);
        return;
    }
    if (!cJSON_IsObject(n) && !cJSON_IsArray(n)) return;
    size_t i = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, n)
    {
        char p[PATH_LEN];
        if (cJSON_IsObject(n)) {
            join(p, path, it->string);
            if (strstr(it->string, "{{")) {
                cJSON *k = cJSON_CreateString(it->string);
                if (!k) {
                    c->oom = true;
                    return;
                }
                if (sr_template_check(k, c->has_index, c->vars, err, sizeof err))
                    errk(c, it, p, "in the key: %s", err);
                cJSON_Delete(k);
            }
        } else {
            joini(p, path, i);
        }
        i++;
        walk_templates(c, it, p);
    }
}

/* Every expression string inside a partial tree parses. */
static void walk_exprs(chk *c, const cJSON *n, const char *path)
{
    if (cJSON_IsString(n)) {
        const cJSON *v = vexp(c, n);
        if (!v || !is_expr_str(v)) return;
        char err[300] = "";
        if (sr_match_check(v, err, sizeof err))
            errf(c, n, path, "invalid expression \"%s\": %s", v->valuestring, err);
        return;
    }
    size_t i = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, n)
    {
        char p[PATH_LEN];
        if (cJSON_IsObject(n))
            join(p, path, it->string);
        else
            joini(p, path, i);
        i++;
        walk_exprs(c, it, p);
    }
}

/* A partial tree (match:, where:): a mapping whose expressions parse. */
static bool check_tree(chk *c, const cJSON *n, const char *path)
{
    if (!want_type(c, n, path, cJSON_IsObject(n), "a mapping (a partial tree to match)"))
        return false;
    walk_exprs(c, n, path);
    return true;
}

/* An expected count: a whole number >= 0 or an expression "(@ >= 2)". */
static void check_count_expect(chk *c, const cJSON *n, const char *path)
{
    const cJSON *v = vexp(c, n);
    if (!v) return;
    if (cJSON_IsString(v)) {
        if (!is_expr_str(v)) {
            errf(c, n, path,
                 "expected a whole number >= 0 or an expression such as \"(@ >= 2)\", got %s",
                 describe(v, (char[96]){0}, 96));
            return;
        }
        walk_exprs(c, n, path);
        return;
    }
    want_int(c, n, path, 0, LONG_MAX, NULL);
}

/* ---------------------------------------------------------------- selection */

static const char *const sel_forms[] = {"name", "names", "selector", "all", NULL};

/* Checks the selection keys of spec. crash: count/fraction are crash's
 * own, and no form is required. Returns how many forms are given. */
static int check_selection(chk *c, const cJSON *spec, const char *path, bool crash)
{
    char p[PATH_LEN];
    const cJSON *n, *first = NULL;
    int forms = 0;
    for (size_t i = 0; sel_forms[i]; i++) {
        n = get(spec, sel_forms[i]);
        if (!n) continue;
        forms++;
        if (first)
            errk(c, n, path,
                 "\"%s\" and \"%s\" cannot be combined; select objects with exactly one of name, "
                 "names, selector or all",
                 first->string, n->string);
        else
            first = n;
    }
    if (!forms && !crash)
        errf(c, spec, path, "no objects selected; expected one of name, names, selector or all");
    if ((n = get(spec, "kind"))) {
        join(p, path, "kind");
        if (want_str(c, n, p) && !has_template(n) && !isupper((unsigned char)n->valuestring[0]))
            errf(c, n, p,
                 "expected a Kubernetes kind such as CloudServer, Secret or Event (it starts with "
                 "a capital letter)");
        if (crash && cJSON_IsString(n) && strcmp(n->valuestring, "CloudServer"))
            errf(c, n, p,
                 "crash selects CloudServers (their status.instanceID); expected CloudServer");
    }
    if ((n = get(spec, "name"))) {
        join(p, path, "name");
        want_str(c, n, p);
    }
    if ((n = get(spec, "names"))) {
        join(p, path, "names");
        want_strs(c, n, p, true, NULL, NULL);
    }
    if ((n = get(spec, "selector"))) {
        join(p, path, "selector");
        if (want_type(c, n, p, cJSON_IsObject(n) && cJSON_GetArraySize(n) > 0,
                      "a non-empty mapping of labels (matchLabels form), e.g. {app: web}")) {
            const cJSON *it = NULL;
            cJSON_ArrayForEach(it, n)
            {
                char q[PATH_LEN];
                join(q, p, it->string);
                if (!cJSON_IsString(it)) {
                    char d[96];
                    errf(c, it, q,
                         "expected a label value (a string; quote numbers and booleans), got %s",
                         describe(it, d, sizeof d));
                }
            }
        }
    }
    if ((n = get(spec, "all"))) {
        join(p, path, "all");
        if (want_bool(c, n, p) && !cJSON_IsTrue(n))
            errf(
                c, n, p,
                "all: false selects nothing; write all: true or select by name, names or selector");
    }
    if ((n = get(spec, "where"))) {
        join(p, path, "where");
        check_tree(c, n, p);
    }
    if ((n = get(spec, "namespace"))) {
        join(p, path, "namespace");
        want_str(c, n, p);
    }
    if (!crash && (n = get(spec, "count"))) {
        join(p, path, "count");
        if (get(spec, "name"))
            want_int(c, n, p, 1, LONG_MAX, NULL);
        else
            check_count_expect(c, n, p);
    }
    return forms;
}

/* ---------------------------------------------------------------- operations */

#define SEL_KEYS "kind", "name", "names", "selector", "all", "where", "count", "namespace"

static const char *const apply_keys[] = {"object",      "objects", "file",    "count",
                                         "concurrency", "expect",  "timeout", NULL};
static const char *const patch_keys[] = {SEL_KEYS, "patch", "type", "subresource", "timeout", NULL};
static const char *const delete_keys[] = {SEL_KEYS, "wait", "timeout", NULL};
static const char *const wait_keys[] = {SEL_KEYS,  "condition", "field", "match",
                                        "deleted", "timeout",   NULL};
static const char *const assert_keys[] = {SEL_KEYS, "match", "cloud", "journal", "timeout", NULL};
static const char *const error_keys[] = {SEL_KEYS, "match",   "cloud", "journal",
                                         "for",    "timeout", NULL};
static const char *const fault_keys[] = {"add",    "as",       "clear",   "outage",
                                         "tokens", "capacity", "timeout", NULL};
static const char *const crash_keys[] = {"kind",  "name",      "names", "selector", "all",
                                         "where", "namespace", "count", "fraction", "zone",
                                         "ids",   "timeout",   NULL};
static const char *const operator_keys[] = {"action", "replica", "timeout", NULL};
static const char *const apiserver_keys[] = {"action", "timeout", NULL};
static const char *const sleep_keys[] = {"duration", "timeout", NULL};
static const char *const exec_keys[] = {"command", "shell", "exitCode", "env", "timeout", NULL};

static const char *const *const op_keys[SR_OP_KIND_COUNT] = {
    apply_keys, patch_keys, delete_keys,   wait_keys,      assert_keys, error_keys,
    fault_keys, crash_keys, operator_keys, apiserver_keys, sleep_keys,  exec_keys,
};

/* At most one of keys may be present; required: exactly one. Returns the
 * one given (the first, when several are). */
static const cJSON *one_of(chk *c, const cJSON *spec, const char *path, const char *const *keys,
                           bool required, const char *what)
{
    const cJSON *first = NULL;
    char words[256];
    list_words(keys, words, sizeof words);
    for (size_t i = 0; keys[i]; i++) {
        const cJSON *n = get(spec, keys[i]);
        if (!n) continue;
        if (first)
            errk(c, n, path, "\"%s\" and \"%s\" cannot be combined; %s takes exactly one of %s",
                 first->string, n->string, what, words);
        else
            first = n;
    }
    if (!first && required) errf(c, spec, path, "%s needs one of %s", what, words);
    return first;
}

/* A Kubernetes object to apply. */
static void check_k8s_object(chk *c, const cJSON *o, const char *path)
{
    if (!want_type(c, o, path, cJSON_IsObject(o),
                   "a Kubernetes object (a mapping with apiVersion, kind and metadata)"))
        return;
    char p[PATH_LEN];
    const cJSON *n;
    if ((n = need(c, o, "apiVersion", path, "e.g. cloudserver.dev/v1"))) {
        join(p, path, "apiVersion");
        want_str(c, n, p);
    }
    if ((n = need(c, o, "kind", path, "e.g. CloudServer"))) {
        join(p, path, "kind");
        want_str(c, n, p);
    }
    if ((n = need(c, o, "metadata", path, "with a name"))) {
        join(p, path, "metadata");
        if (want_obj(c, n, p)) {
            const cJSON *nm = get(n, "name"), *gn = get(n, "generateName");
            char q[PATH_LEN];
            if (!nm && !gn) errf(c, n, p, "missing required key \"name\" (or generateName)");
            if (nm) {
                join(q, p, "name");
                want_str(c, nm, q);
            }
            if (gn) {
                join(q, p, "generateName");
                want_str(c, gn, q);
            }
        }
    }
}

/* A new array (owned by the scenario) of references to the given nodes;
 * references keep the YAML nodes' children, so their positions hold. */
static cJSON *ref_array(chk *c)
{
    cJSON *a = cJSON_CreateArray();
    own(c, a);
    return a;
}

static void ref_add(chk *c, cJSON *arr, const cJSON *orig)
{
    if (!arr) return;
    cJSON *r = cJSON_CreateObjectReference(orig->child);
    if (!r) {
        c->oom = true;
        return;
    }
    cJSON_AddItemToArray(arr, r);
    sc_ref ref = {r, orig};
    track(c, (void **)&c->p->refs, &c->p->n_refs, sizeof ref, &ref);
}

/* apply's file: loaded relative to the scenario, its positions kept. */
static void load_apply_file(chk *c, const cJSON *fn, const char *path, sr_op *op)
{
    if (!want_str(c, fn, path)) return;
    const cJSON *v = vexp(c, fn);
    if (!v) return;
    char full[PATH_MAX];
    if (v->valuestring[0] == '/' || !strcmp(c->s->dir, "."))
        snprintf(full, sizeof full, "%s", v->valuestring);
    else
        snprintf(full, sizeof full, "%s/%s", c->s->dir, v->valuestring);
    csl_yaml_err ye;
    csl_yaml *y = csl_yaml_load_file(full, &ye);
    if (!y) {
        char m[700];
        csl_yaml_err_format(&ye, m, sizeof m);
        if (ye.line > 0)
            sr_errors_add(c->errs, "%s (the file of %s)", m, path);
        else
            errf(c, fn, path, "cannot load \"%s\": %s", full, ye.msg);
        return;
    }
    if (!track(c, (void **)&c->p->yamls, &c->p->n_yamls, sizeof y, &y)) {
        csl_yaml_free(y);
        return;
    }
    cJSON *arr = ref_array(c);
    op->objects = arr;
    const csl_yaml *saved = c->y;
    c->y = y;
    size_t used = 0;
    for (size_t i = 0; i < csl_yaml_count(y); i++) {
        const cJSON *d = csl_yaml_doc(y, i);
        if (!d || cJSON_IsNull(d)) continue; /* an empty document, e.g. a trailing --- */
        char p[PATH_LEN];
        snprintf(p, sizeof p, "document %zu", i + 1);
        check_k8s_object(c, d, p);
        walk_templates(c, d, p);
        if (cJSON_IsObject(d)) ref_add(c, arr, d);
        used++;
    }
    c->y = saved;
    if (!used)
        errf(c, fn, path, "\"%s\" holds no objects; expected one or more YAML documents", full);
}

static void check_apply(chk *c, const cJSON *spec, const char *path, sr_op *op)
{
    static const char *const srcs[] = {"object", "objects", "file", NULL};
    char p[PATH_LEN];
    const cJSON *n, *src = one_of(c, spec, path, srcs, true, "apply");
    if ((n = get(spec, "count"))) {
        join(p, path, "count");
        want_int(c, n, p, 1, 1000000, NULL);
    }
    if ((n = get(spec, "concurrency"))) {
        join(p, path, "concurrency");
        want_int(c, n, p, 1, 1024, NULL);
    }
    if ((n = get(spec, "expect"))) {
        static const char *const ek[] = {"error", "code", "reason", "message", NULL};
        join(p, path, "expect");
        if (want_obj(c, n, p)) {
            check_keys(c, n, p, ek);
            const cJSON *e;
            char q[PATH_LEN];
            if ((e = get(n, "error"))) {
                join(q, p, "error");
                want_bool(c, e, q);
            }
            if ((e = get(n, "code"))) {
                join(q, p, "code");
                if (is_expr_str(e))
                    walk_exprs(c, e, q);
                else
                    want_int(c, e, q, 100, 599, NULL);
            }
            if ((e = get(n, "reason"))) {
                join(q, p, "reason");
                if (want_str(c, e, q)) walk_exprs(c, e, q);
            }
            if ((e = get(n, "message"))) {
                join(q, p, "message");
                if (want_str(c, e, q)) walk_exprs(c, e, q);
            }
        }
    }
    if (!src) return;
    join(p, path, src->string);
    if (!strcmp(src->string, "object")) {
        check_k8s_object(c, src, p);
        if (cJSON_IsObject(src)) {
            cJSON *arr = ref_array(c);
            ref_add(c, arr, src);
            op->objects = arr;
        }
    } else if (!strcmp(src->string, "objects")) {
        if (!want_type(c, src, p, cJSON_IsArray(src) && cJSON_GetArraySize(src) > 0,
                       "a non-empty list of Kubernetes objects"))
            return;
        size_t i = 0;
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, src)
        {
            char q[PATH_LEN];
            joini(q, p, i++);
            check_k8s_object(c, it, q);
        }
        op->objects = src;
    } else {
        load_apply_file(c, src, p, op);
    }
}

static void check_patch(chk *c, const cJSON *spec, const char *path)
{
    static const char *const types[] = {"merge", "json", NULL};
    static const char *const subs[] = {"status", "scale", NULL};
    char p[PATH_LEN];
    const cJSON *n;
    check_selection(c, spec, path, false);
    bool json = false;
    if ((n = get(spec, "type"))) {
        join(p, path, "type");
        if (want_enum(c, n, p, types)) json = !strcmp(n->valuestring, "json");
    }
    if ((n = get(spec, "subresource"))) {
        join(p, path, "subresource");
        want_enum(c, n, p, subs);
    }
    if ((n = need(c, spec, "patch", path,
                  json ? "a JSON patch: a list of {op, path, value}" : "a merge patch mapping"))) {
        join(p, path, "patch");
        if (json) {
            if (want_type(c, n, p, cJSON_IsArray(n) && cJSON_GetArraySize(n) > 0,
                          "a non-empty list of JSON patch operations ({op, path, value})")) {
                size_t i = 0;
                const cJSON *it = NULL;
                cJSON_ArrayForEach(it, n)
                {
                    static const char *const jk[] = {"op", "path", "value", "from", NULL};
                    static const char *const jops[] = {"add",  "remove", "replace", "move",
                                                       "copy", "test",   NULL};
                    char q[PATH_LEN], r[PATH_LEN];
                    joini(q, p, i++);
                    if (!want_obj(c, it, q)) continue;
                    check_keys(c, it, q, jk);
                    const cJSON *o =
                        need(c, it, "op", q, "add, remove, replace, move, copy or test");
                    join(r, q, "op");
                    if (o) want_enum(c, o, r, jops);
                    const cJSON *pp = need(c, it, "path", q, "a JSON pointer such as /spec/cpu");
                    join(r, q, "path");
                    if (pp && want_str(c, pp, r) && pp->valuestring[0] != '/')
                        errf(c, pp, r,
                             "expected a JSON pointer starting with \"/\", e.g. /spec/cpu");
                }
            }
        } else {
            want_type(c, n, p, cJSON_IsObject(n),
                      "a mapping (a merge patch); for a JSON patch list add type: json");
        }
    }
}

static void check_delete(chk *c, const cJSON *spec, const char *path)
{
    char p[PATH_LEN];
    const cJSON *n;
    check_selection(c, spec, path, false);
    if ((n = get(spec, "wait"))) {
        join(p, path, "wait");
        want_bool(c, n, p);
    }
}

static void check_wait(chk *c, const cJSON *spec, const char *path)
{
    static const char *const forms[] = {"condition", "field", "match", "deleted", NULL};
    char p[PATH_LEN], q[PATH_LEN];
    check_selection(c, spec, path, false);
    const cJSON *f = one_of(c, spec, path, forms, true, "wait");
    if (!f) return;
    join(p, path, f->string);
    const cJSON *n;
    if (!strcmp(f->string, "condition")) {
        static const char *const ck[] = {"type", "status", "reason", NULL};
        static const char *const st[] = {"True", "False", "Unknown", NULL};
        if (!want_obj(c, f, p)) return;
        check_keys(c, f, p, ck);
        if ((n = need(c, f, "type", p, "a condition type such as Ready"))) {
            join(q, p, "type");
            want_str(c, n, q);
        }
        if ((n = need(c, f, "status", p, "\"True\", \"False\" or \"Unknown\""))) {
            join(q, p, "status");
            if (cJSON_IsBool(n))
                errf(c, n, q,
                     "expected the string \"True\", \"False\" or \"Unknown\", got %s (quote it: "
                     "\"%s\")",
                     cJSON_IsTrue(n) ? "true" : "false", cJSON_IsTrue(n) ? "True" : "False");
            else
                want_enum(c, n, q, st);
        }
        if ((n = get(f, "reason"))) {
            join(q, p, "reason");
            if (want_str(c, n, q)) walk_exprs(c, n, q);
        }
    } else if (!strcmp(f->string, "field")) {
        static const char *const fk[] = {"path", "value", NULL};
        if (!want_obj(c, f, p)) return;
        check_keys(c, f, p, fk);
        if ((n = need(c, f, "path", p, "a dotted path such as status.phase"))) {
            join(q, p, "path");
            if (want_str(c, n, q)) {
                const char *s = n->valuestring;
                if (s[0] == '.' || s[strlen(s) - 1] == '.' || strstr(s, ".."))
                    errf(
                        c, n, q,
                        "expected a dotted path such as status.phase or status.conditions[0].type");
            }
        }
        if ((n = need(c, f, "value", p,
                      "the value to wait for, or an expression such as \"(@ >= 2)\""))) {
            join(q, p, "value");
            walk_exprs(c, n, q);
        }
    } else if (!strcmp(f->string, "match")) {
        check_tree(c, f, p);
    } else if (want_bool(c, f, p) && !cJSON_IsTrue(f)) {
        errf(c, f, p, "deleted: false waits for nothing; write deleted: true");
    }
}

static void check_cloud_journal(chk *c, const cJSON *f, const char *path, bool journal)
{
    static const char *const ck[] = {"where", "match", "count", "includeGone", NULL};
    static const char *const jk[] = {"where", "count", NULL};
    char p[PATH_LEN];
    const cJSON *n;
    if (!want_obj(c, f, path)) return;
    check_keys(c, f, path, journal ? jk : ck);
    if ((n = get(f, "where"))) {
        join(p, path, "where");
        check_tree(c, n, p);
    }
    if (!journal && (n = get(f, "match"))) {
        join(p, path, "match");
        check_tree(c, n, p);
    }
    if (!journal && (n = get(f, "includeGone"))) {
        join(p, path, "includeGone");
        want_bool(c, n, p);
    }
    if ((n = get(f, "count"))) {
        join(p, path, "count");
        check_count_expect(c, n, p);
    } else if (journal) {
        errf(c, f, path,
             "missing required key \"count\" (a whole number or an expression such as \"(@ >= "
             "1)\")");
    } else if (!get(f, "match")) {
        errf(c, f, path, "nothing to check; expected match, count or both");
    }
}

static void check_assert(chk *c, const cJSON *spec, const char *path, bool is_error)
{
    static const char *const srcs[] = {"cloud", "journal", NULL};
    char p[PATH_LEN];
    const cJSON *n, *src = one_of(c, spec, path, srcs, false, is_error ? "error" : "assert");
    if (is_error && (n = get(spec, "for"))) {
        join(p, path, "for");
        want_dur(c, n, p, false, NULL);
    }
    if (src) {
        static const char *const kube[] = {SEL_KEYS, "match", NULL};
        for (size_t i = 0; kube[i]; i++)
            if ((n = get(spec, kube[i])))
                errk(c, n, path,
                     "\"%s\" cannot be combined with \"%s\"; %s checks mockcloud, not Kubernetes "
                     "objects",
                     n->string, src->string, src->string);
        join(p, path, src->string);
        check_cloud_journal(c, src, p, !strcmp(src->string, "journal"));
        return;
    }
    check_selection(c, spec, path, false);
    if ((n = get(spec, "match"))) {
        join(p, path, "match");
        check_tree(c, n, p);
    } else if (!get(spec, "count") || get(spec, "name")) {
        errf(c, spec, path,
             "nothing to check; expected match (a partial tree), count, cloud or journal");
    }
}

static bool valid_rule_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i])) return false;
    return true;
}

static void check_fault(chk *c, const cJSON *spec, const char *path)
{
    static const char *const forms[] = {"add", "clear", "outage", "tokens", "capacity", NULL};
    char p[PATH_LEN], q[PATH_LEN];
    const cJSON *n, *f = one_of(c, spec, path, forms, true, "fault");
    const cJSON *as = get(spec, "as");
    if (as) {
        join(p, path, "as");
        if (f && strcmp(f->string, "add"))
            errk(c, as, path, "\"as\" names an added rule; it goes with add, not %s", f->string);
        else if (want_str(c, as, p)) {
            if (!valid_rule_name(as->valuestring) || !strcmp(as->valuestring, "all"))
                errf(c, as, p,
                     "expected a rule name of 1-63 letters, digits, '.', '_' or '-' (not \"all\")");
            sc_name nm = {as->valuestring, as, c->y, ""};
            snprintf(nm.path, sizeof nm.path, "%s", p);
            for (size_t i = 0; i < c->n_fault_names; i++)
                if (!strcmp(c->fault_names[i].name, as->valuestring)) {
                    int line = 0, col = 0;
                    csl_yaml_pos(c->fault_names[i].y, c->fault_names[i].node, &line, &col);
                    errf(c, as, p,
                         "fault name \"%s\" is already used at line %d; names must be unique",
                         as->valuestring, line);
                }
            track(c, (void **)&c->fault_names, &c->n_fault_names, sizeof nm, &nm);
        }
    }
    if (!f) return;
    join(p, path, f->string);
    if (!strcmp(f->string, "add")) {
        static const char *const rk[] = {"id",    "match",      "effect",   "phase", "probability",
                                         "count", "startAfter", "duration", NULL};
        static const char *const phases[] = {"request", "response", NULL};
        if (!want_obj(c, f, p)) return;
        check_keys(c, f, p, rk);
        if ((n = need(c, f, "effect", p, "e.g. {type: error, status: 503}"))) {
            join(q, p, "effect");
            if (want_obj(c, n, q)) {
                const cJSON *t = need(c, n, "type", q,
                                      "latency, error, unauthorized, forbidden, rateLimit, reset, "
                                      "hang, empty or malformed");
                static const char *const types[] = {
                    "latency", "error", "unauthorized", "forbidden", "rateLimit",
                    "reset",   "hang",  "empty",        "malformed", NULL};
                char r[PATH_LEN];
                join(r, q, "type");
                if (t) want_enum(c, t, r, types);
            }
        }
        if ((n = get(f, "match"))) {
            join(q, p, "match");
            want_obj(c, n, q);
        }
        if ((n = get(f, "phase"))) {
            join(q, p, "phase");
            want_enum(c, n, q, phases);
        }
        if ((n = get(f, "probability"))) {
            join(q, p, "probability");
            want_num(c, n, q, 0, true, 1, false, NULL);
        }
        if ((n = get(f, "count"))) {
            join(q, p, "count");
            want_int(c, n, q, 1, LONG_MAX, NULL);
        }
        if ((n = get(f, "startAfter"))) {
            join(q, p, "startAfter");
            want_dur(c, n, q, true, NULL);
        }
        if ((n = get(f, "duration"))) {
            join(q, p, "duration");
            want_dur(c, n, q, false, NULL);
        }
        if ((n = get(f, "id"))) {
            join(q, p, "id");
            if (want_str(c, n, q) && !valid_rule_name(n->valuestring))
                errf(c, n, q, "expected 1-63 letters, digits, '.', '_' or '-'");
        }
    } else if (!strcmp(f->string, "clear")) {
        if (!want_type(c, f, p, cJSON_IsString(f) && *f->valuestring,
                       "\"all\" or a name given with as:"))
            return;
        if (strcmp(f->valuestring, "all")) {
            sc_name nm = {f->valuestring, f, c->y, ""};
            snprintf(nm.path, sizeof nm.path, "%s", p);
            track(c, (void **)&c->fault_clears, &c->n_fault_clears, sizeof nm, &nm);
        }
    } else if (!strcmp(f->string, "outage")) {
        static const char *const ok[] = {"mode", "duration", "path", NULL};
        static const char *const modes[] = {"503", "reset", "hang", NULL};
        if (!want_obj(c, f, p)) return;
        check_keys(c, f, p, ok);
        if ((n = get(f, "mode"))) {
            join(q, p, "mode");
            if (!(cJSON_IsNumber(n) && n->valuedouble == 503)) want_enum(c, n, q, modes);
        }
        if ((n = get(f, "duration"))) {
            join(q, p, "duration");
            want_dur(c, n, q, false, NULL);
        }
        if ((n = get(f, "path"))) {
            join(q, p, "path");
            if (want_str(c, n, q) && n->valuestring[0] != '/')
                errf(c, n, q, "expected a path glob starting with \"/\", e.g. /v1/**");
        }
    } else if (!strcmp(f->string, "capacity")) {
        /* zone -> how many live instances it takes, or null (no limit);
         * which zones exist is mockcloud's to say (a 400 at run time). */
        if (!want_obj(c, f, p)) return;
        if (!f->child)
            errf(c, f, p, "expected at least one zone, e.g. {hk-1a: 0} (null lifts a limit)");
        for (const cJSON *z = f->child; z; z = z->next) {
            join(q, p, z->string);
            if (!cJSON_IsNull(z)) want_int(c, z, q, 0, 1000000, NULL);
        }
    } else {
        static const char *const tk[] = {"token", "access", "revoke", NULL};
        static const char *const acc[] = {"read-write", "read-only", NULL};
        if (!want_obj(c, f, p)) return;
        check_keys(c, f, p, tk);
        if ((n = need(c, f, "token", p, "the token to add, change or revoke"))) {
            join(q, p, "token");
            want_str(c, n, q);
        }
        if ((n = get(f, "access"))) {
            join(q, p, "access");
            want_enum(c, n, q, acc);
        }
        if ((n = get(f, "revoke"))) {
            join(q, p, "revoke");
            want_bool(c, n, q);
            if (get(f, "access")) errk(c, n, p, "\"revoke\" and \"access\" cannot be combined");
        }
    }
}

static void check_crash(chk *c, const cJSON *spec, const char *path)
{
    char p[PATH_LEN];
    const cJSON *n;
    int forms = check_selection(c, spec, path, true);
    const cJSON *ids = get(spec, "ids"), *zone = get(spec, "zone"), *cnt = get(spec, "count"),
                *frac = get(spec, "fraction");
    if (ids) {
        join(p, path, "ids");
        want_strs(c, ids, p, true, NULL, NULL);
        static const char *const others[] = {"kind",     "name",  "names",     "selector",
                                             "all",      "where", "namespace", "count",
                                             "fraction", "zone",  NULL};
        for (size_t i = 0; others[i]; i++)
            if ((n = get(spec, others[i])))
                errk(c, n, path,
                     "\"%s\" cannot be combined with \"ids\"; ids names the instances to crash",
                     n->string);
    }
    if (zone) {
        join(p, path, "zone");
        want_str(c, zone, p);
        if (forms)
            errk(c, zone, path, "\"zone\" cannot be combined with a selection of CloudServers");
    }
    if (cnt) {
        join(p, path, "count");
        want_int(c, cnt, p, 1, LONG_MAX, NULL);
    }
    if (frac) {
        join(p, path, "fraction");
        want_num(c, frac, p, 0, true, 1, false, NULL);
        if (cnt) errk(c, frac, path, "\"count\" and \"fraction\" cannot be combined; pick one");
    }
    if (!forms && !ids && !zone && !cnt && !frac)
        errf(c, spec, path,
             "nothing to crash; expected a selection (name, names, selector, all), zone, ids, "
             "count or fraction");
    if (!forms && get(spec, "where"))
        errk(c, get(spec, "where"), path,
             "\"where\" filters a selection; add name, names, selector or all");
}

static void check_operator(chk *c, const cJSON *spec, const char *path)
{
    static const char *const actions[] = {"kill", "stop", "start", "restart", NULL};
    char p[PATH_LEN];
    const cJSON *n;
    if ((n = need(c, spec, "action", path, "kill, stop, start or restart"))) {
        join(p, path, "action");
        want_enum(c, n, p, actions);
    }
    if ((n = get(spec, "replica"))) {
        join(p, path, "replica");
        const cJSON *v = vexp(c, n);
        if (!v) return;
        if (cJSON_IsString(v)) {
            if (strcmp(v->valuestring, "leader"))
                errf(c, n, p, "expected a replica number (0, 1, 2) or \"leader\", got \"%s\"",
                     v->valuestring);
        } else {
            long r = 0;
            int reps = c->s->setup.operator_replicas;
            if (want_int(c, n, p, 0, 2, &r) && r >= reps)
                errf(c, n, p,
                     "replica %ld does not exist: setup.operator.replicas is %d (replicas are "
                     "numbered from 0)",
                     r, reps);
        }
    }
}

static void check_exec(chk *c, const cJSON *spec, const char *path)
{
    static const char *const forms[] = {"command", "shell", NULL};
    char p[PATH_LEN];
    const cJSON *n, *f = one_of(c, spec, path, forms, true, "exec");
    if (f) {
        join(p, path, f->string);
        if (!strcmp(f->string, "command"))
            want_strs(c, f, p, true, NULL, NULL);
        else
            want_str(c, f, p);
    }
    if ((n = get(spec, "exitCode"))) {
        join(p, path, "exitCode");
        want_int(c, n, p, 0, 255, NULL);
    }
    if ((n = get(spec, "env"))) {
        join(p, path, "env");
        if (want_obj(c, n, p)) {
            const cJSON *it = NULL;
            cJSON_ArrayForEach(it, n)
            {
                char q[PATH_LEN], d[96];
                join(q, p, it->string);
                if (!cJSON_IsString(it) && !cJSON_IsNumber(it) && !cJSON_IsBool(it))
                    errf(c, it, q, "expected a string (or a number or boolean), got %s",
                         describe(it, d, sizeof d));
            }
        }
    }
}

/* Does this op define {{index}}: apply's count, or a selection by name with count. */
static bool op_has_index(sr_op_kind k, const cJSON *spec)
{
    if (k == SR_OP_APPLY) return get(spec, "count") != NULL;
    if (k == SR_OP_CRASH || k == SR_OP_FAULT || k == SR_OP_OPERATOR || k == SR_OP_APISERVER ||
        k == SR_OP_SLEEP || k == SR_OP_EXEC)
        return false;
    return get(spec, "name") && get(spec, "count");
}

/* One operation: kind key member `m` (its value the spec). */
static void check_op(chk *c, const cJSON *m, const char *path, sr_op *op)
{
    int k = op_kind_of(m->string);
    int line = 0, col = 0;
    op->kind = (sr_op_kind)k;
    op->spec = m;
    if (csl_yaml_key_pos(c->y, m, &line, &col)) op->pos = (sr_pos){line, col};
    char p[PATH_LEN];
    join(p, path, m->string);
    if (!want_type(c, m, p, cJSON_IsObject(m), "a mapping")) return;
    c->has_index = op_has_index(op->kind, m);
    check_keys(c, m, p, op_keys[k]);
    walk_templates(c, m, p);
    const cJSON *n;
    if ((n = get(m, "timeout"))) {
        char q[PATH_LEN];
        join(q, p, "timeout");
        want_dur(c, n, q, false, &op->timeout_ns);
    }
    switch (op->kind) {
    case SR_OP_APPLY:
        check_apply(c, m, p, op);
        break;
    case SR_OP_PATCH:
        check_patch(c, m, p);
        break;
    case SR_OP_DELETE:
        check_delete(c, m, p);
        break;
    case SR_OP_WAIT:
        check_wait(c, m, p);
        break;
    case SR_OP_ASSERT:
        check_assert(c, m, p, false);
        break;
    case SR_OP_ERROR:
        check_assert(c, m, p, true);
        break;
    case SR_OP_FAULT:
        check_fault(c, m, p);
        break;
    case SR_OP_CRASH:
        check_crash(c, m, p);
        break;
    case SR_OP_OPERATOR:
        check_operator(c, m, p);
        break;
    case SR_OP_APISERVER: {
        static const char *const actions[] = {"restart", NULL};
        c->s->exclusive = true;
        if ((n = need(c, m, "action", p, "restart"))) {
            char q[PATH_LEN];
            join(q, p, "action");
            want_enum(c, n, q, actions);
        }
        break;
    }
    case SR_OP_SLEEP:
        if ((n = need(c, m, "duration", p, "e.g. 5s"))) {
            char q[PATH_LEN];
            join(q, p, "duration");
            want_dur(c, n, q, true, NULL);
        }
        break;
    case SR_OP_EXEC:
        check_exec(c, m, p);
        break;
    default:
        break;
    }
    c->has_index = false;
}

/* ---------------------------------------------------------------- steps */

static const char *const step_keys[] = {"name",    "timeout", "try", "catch",
                                        "finally", "cleanup", NULL};

static void unknown_op(chk *c, const cJSON *m, const char *path, bool with_step_keys)
{
    const char *cands[SR_OP_KIND_COUNT + 8];
    size_t n = 0;
    for (int i = 0; i < SR_OP_KIND_COUNT; i++) cands[n++] = op_names[i];
    cands[n] = NULL;
    char words[256], hint[96] = "";
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(words + k, sizeof words - k, "%s%s", i ? ", " : "", cands[i]);
    if (with_step_keys)
        for (size_t i = 0; step_keys[i]; i++) cands[n++] = step_keys[i];
    cands[n] = NULL;
    const char *dm = did_you_mean(m->string, cands);
    if (dm) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", dm);
    errk(c, m, path, "unknown operation \"%s\"; expected one of %s%s", m->string, words, hint);
}

/* A list of operations (try, catch, finally, cleanup): each item a
 * mapping with one operation key. */
static void check_op_list(chk *c, const cJSON *list, const char *path, sr_op **out, size_t *nout,
                          bool nonempty)
{
    if (!want_type(c, list, path, cJSON_IsArray(list),
                   "a list of operations, e.g. [{wait: {...}}, {assert: {...}}]"))
        return;
    size_t cnt = (size_t)cJSON_GetArraySize(list);
    if (nonempty && !cnt) {
        errf(c, list, path, "must hold at least one operation");
        return;
    }
    sr_op *ops = calloc(cnt ? cnt : 1, sizeof *ops);
    if (!ops) {
        c->oom = true;
        return;
    }
    *out = ops;
    *nout = 0;
    size_t i = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, list)
    {
        char p[PATH_LEN];
        joini(p, path, i++);
        if (!want_type(c, it, p, cJSON_IsObject(it),
                       "a mapping with one operation, e.g. {sleep: {duration: 5s}}"))
            continue;
        const cJSON *op = NULL, *m = NULL;
        cJSON_ArrayForEach(m, it)
        {
            if (op_kind_of(m->string) < 0) {
                unknown_op(c, m, p, false);
            } else if (op) {
                errk(c, m, p,
                     "more than one operation (\"%s\" and \"%s\"); write each as its own list item",
                     op->string, m->string);
            } else {
                op = m;
            }
        }
        if (!op) {
            if (!it->child)
                errf(c, it, p, "empty item; expected one operation such as {wait: {...}}");
            continue;
        }
        check_op(c, op, p, &ops[(*nout)++]);
    }
}

static void check_step(chk *c, const cJSON *st, const char *path, sr_step *step,
                       const cJSON **names, size_t idx)
{
    char p[PATH_LEN];
    step->timeout_ns = 30 * NS_PER_S;
    int line = 0, col = 0;
    if (csl_yaml_pos(c->y, st, &line, &col)) step->pos = (sr_pos){line, col};
    if (!want_type(c, st, path, cJSON_IsObject(st),
                   "a step: a mapping with name and one operation"))
        return;
    const cJSON *n, *op = NULL, *m = NULL;
    bool unknown = false;
    cJSON_ArrayForEach(m, st)
    {
        if (in_list(m->string, step_keys)) continue;
        if (op_kind_of(m->string) >= 0) {
            if (op)
                errk(c, m, path,
                     "more than one operation (\"%s\" and \"%s\"); a step has exactly one, or a "
                     "try list",
                     op->string, m->string);
            else
                op = m;
            continue;
        }
        unknown = true;
    }
    const cJSON *tr = get(st, "try");
    cJSON_ArrayForEach(m, st)
    {
        if (in_list(m->string, step_keys) || op_kind_of(m->string) >= 0) continue;
        if (!op && !tr) {
            unknown_op(c, m, path, true);
        } else {
            const char *cands[SR_OP_KIND_COUNT + 8];
            size_t k = 0;
            for (size_t i = 0; step_keys[i]; i++) cands[k++] = step_keys[i];
            for (int i = 0; i < SR_OP_KIND_COUNT; i++) cands[k++] = op_names[i];
            cands[k] = NULL;
            const char *dm = did_you_mean(m->string, cands);
            char hint[96] = "";
            if (dm) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", dm);
            errk(c, m, path,
                 "unknown key \"%s\"; expected name, timeout, try, catch, finally, cleanup or one "
                 "operation%s",
                 m->string, hint);
        }
    }
    if ((n = need(c, st, "name", path, "a name unique in the scenario"))) {
        join(p, path, "name");
        if (want_str(c, n, p)) {
            step->name = xstrdup(c, n->valuestring);
            for (size_t i = 0; i < idx; i++) {
                if (names[i] && !strcmp(names[i]->valuestring, n->valuestring)) {
                    int l2 = 0, c2 = 0;
                    csl_yaml_pos(c->y, names[i], &l2, &c2);
                    errf(c, n, p,
                         "duplicate step name \"%s\"; steps[%zu] at line %d already uses it",
                         n->valuestring, i, l2);
                    break;
                }
            }
            names[idx] = n;
        }
    }
    if ((n = get(st, "timeout"))) {
        join(p, path, "timeout");
        want_dur(c, n, p, false, &step->timeout_ns);
    }
    if (op && tr)
        errk(c, tr, path, "a step has either one operation (\"%s\") or try, not both", op->string);
    if (!op && !tr && !unknown)
        errf(c, st, path,
             "no operation; expected one of apply, patch, delete, wait, assert, error, fault, "
             "crash, "
             "operator, apiserver, sleep, exec, or try");
    if (op) {
        step->try_ops = calloc(1, sizeof *step->try_ops);
        if (!step->try_ops) {
            c->oom = true;
            return;
        }
        step->n_try = 1;
        check_op(c, op, path, &step->try_ops[0]);
    } else if (tr) {
        join(p, path, "try");
        check_op_list(c, tr, p, &step->try_ops, &step->n_try, true);
    }
    if ((n = get(st, "catch"))) {
        join(p, path, "catch");
        check_op_list(c, n, p, &step->catch_ops, &step->n_catch, false);
    }
    if ((n = get(st, "finally"))) {
        join(p, path, "finally");
        check_op_list(c, n, p, &step->finally_ops, &step->n_finally, false);
    }
    if ((n = get(st, "cleanup"))) {
        join(p, path, "cleanup");
        check_op_list(c, n, p, &step->cleanup_ops, &step->n_cleanup, false);
    }
}

/* ---------------------------------------------------------------- setup, invariants, slos */

/* Setup strings are used as written: a {{ there is almost surely a
 * template the person expects to work. */
static void no_templates(chk *c, const cJSON *n, const char *path)
{
    if (has_template(n)) {
        errf(c, n, path,
             "templates are not expanded in setup (only in steps); write the value itself");
        return;
    }
    size_t i = 0;
    const cJSON *it = NULL;
    if (!cJSON_IsObject(n) && !cJSON_IsArray(n)) return;
    cJSON_ArrayForEach(it, n)
    {
        char p[PATH_LEN];
        if (cJSON_IsObject(n))
            join(p, path, it->string);
        else
            joini(p, path, i);
        i++;
        no_templates(c, it, p);
    }
}

static void check_setup(chk *c, const cJSON *su)
{
    static const char *const keys[] = {"seed", "timeScale", "mockcloud", "operator", "vars", NULL};
    static const char *const mk[] = {"timings", "capacity", "args", NULL};
    static const char *const ok[] = {"replicas", "args", NULL};
    sr_setup *s = &c->s->setup;
    char p[PATH_LEN];
    const cJSON *n;
    if (!want_obj(c, su, "setup")) return;
    check_keys(c, su, "setup", keys);
    if ((n = get(su, "seed"))) {
        long v = 0;
        if (want_int(c, n, "setup.seed", 0, LONG_MAX, &v)) {
            s->has_seed = true;
            s->seed = (uint64_t)v;
        }
    }
    if ((n = get(su, "timeScale")))
        want_num(c, n, "setup.timeScale", 1, false, 1000, false, &s->time_scale);
    if ((n = get(su, "mockcloud")) && want_obj(c, n, "setup.mockcloud")) {
        check_keys(c, n, "setup.mockcloud", mk);
        no_templates(c, n, "setup.mockcloud");
        const cJSON *v;
        if ((v = get(n, "timings")) && want_obj(c, v, "setup.mockcloud.timings"))
            s->mock_timings = v;
        if ((v = get(n, "capacity")) && want_obj(c, v, "setup.mockcloud.capacity"))
            s->mock_capacity = v;
        if ((v = get(n, "args")))
            want_strs(c, v, "setup.mockcloud.args", false, &s->mock_args, &s->n_mock_args);
    }
    if ((n = get(su, "operator")) && want_obj(c, n, "setup.operator")) {
        check_keys(c, n, "setup.operator", ok);
        no_templates(c, n, "setup.operator");
        const cJSON *v;
        long r = 1;
        if ((v = get(n, "replicas")) && want_int(c, v, "setup.operator.replicas", 1, 3, &r))
            s->operator_replicas = (int)r;
        if ((v = get(n, "args")))
            want_strs(c, v, "setup.operator.args", false, &s->operator_args, &s->n_operator_args);
    }
    if ((n = get(su, "vars")) && want_obj(c, n, "setup.vars")) {
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, n)
        {
            join(p, "setup.vars", it->string);
            const char *k = it->string;
            bool good = (isalpha((unsigned char)k[0]) || k[0] == '_');
            for (size_t i = 0; good && k[i]; i++)
                good = isalnum((unsigned char)k[i]) || k[i] == '_' || k[i] == '-';
            if (!good)
                errk(c, it, p,
                     "expected a variable name of letters, digits, '_' or '-', starting with a "
                     "letter");
            if (!cJSON_IsString(it) && !cJSON_IsNumber(it) && !cJSON_IsBool(it)) {
                char d[96];
                errf(c, it, p, "expected a string, number or boolean, got %s",
                     describe(it, d, sizeof d));
            }
            if (has_template(it))
                errf(c, it, p,
                     "variables are not expanded inside variables; write the value itself");
        }
        s->vars = n;
    }
}

static void check_invariants(chk *c, const cJSON *inv)
{
    static const char *const keys[] = {
        "oneInstancePerObject", "noDuplicateCreates", "noOrphans", "statusMatchesCloud",
        "finalizersReleased",   "observedGeneration", NULL};
    sr_invariants *v = &c->s->invariants;
    bool *fields[] = {
        &v->one_instance_per_object, &v->no_duplicate_creates, &v->no_orphans,
        &v->status_matches_cloud,    &v->finalizers_released,  &v->observed_generation};
    if (!want_obj(c, inv, "invariants")) return;
    check_keys(c, inv, "invariants", keys);
    for (size_t i = 0; keys[i]; i++) {
        const cJSON *n = get(inv, keys[i]);
        char p[PATH_LEN];
        join(p, "invariants", keys[i]);
        if (n && want_bool(c, n, p)) *fields[i] = cJSON_IsTrue(n);
    }
}

static void slo_dur(chk *c, const cJSON *n, const char *path, double *out)
{
    int64_t ns = 0;
    if (want_dur(c, n, path, true, &ns)) *out = (double)ns / (double)NS_PER_S;
}

/* A resource limit: {limit: quantity, maxPercent: 0..100}. */
static void slo_resource(chk *c, const cJSON *o, const char *path, bool cpu, double *limit,
                         double *pct)
{
    static const char *const keys[] = {"limit", "maxPercent", NULL};
    char p[PATH_LEN];
    if (!want_obj(c, o, path)) return;
    check_keys(c, o, path, keys);
    const cJSON *n;
    if ((n = need(c, o, "limit", path,
                  cpu ? "a CPU quantity such as 500m or 2" : "a memory quantity such as 128Mi"))) {
        join(p, path, "limit");
        char buf[64], err[CSL_UNITS_ERR_LEN];
        const char *q = NULL;
        if (cJSON_IsString(n)) {
            q = n->valuestring;
        } else if (cJSON_IsNumber(n)) {
            snprintf(buf, sizeof buf, "%.15g", n->valuedouble);
            q = buf;
        }
        if (!q) {
            char d[96];
            errf(c, n, p, "expected a quantity such as %s, got %s",
                 cpu ? "500m or 2" : "128Mi or 1Gi", describe(n, d, sizeof d));
        } else {
            int64_t v = 0;
            int r =
                cpu ? csl_quantity_parse_milli(q, &v, err) : csl_quantity_parse_bytes(q, &v, err);
            if (r < 0)
                errf(c, n, p, "%s", err);
            else if (v <= 0)
                errf(c, n, p, "must be greater than 0");
            else
                *limit = cpu ? (double)v / 1000.0 : (double)v;
        }
    }
    if ((n = need(c, o, "maxPercent", path,
                  "the highest use allowed, in percent of limit, e.g. 60"))) {
        join(p, path, "maxPercent");
        want_num(c, n, p, 0, true, 100, false, pct);
    }
}

static void check_slos(chk *c, const cJSON *so)
{
    static const char *const keys[] = {"createToReady",
                                       "reconcileErrorRate",
                                       "recoveryTime",
                                       "operatorCPU",
                                       "operatorMemory",
                                       "apiCallsPerObject",
                                       NULL};
    static const char *const ctr[] = {"avg", "p50", "p95", "p99", NULL};
    static const char *const api[] = {"cloud", "kubeWrites", NULL};
    sr_slos *s = &c->s->slos;
    const cJSON *n;
    char p[PATH_LEN];
    if (!want_obj(c, so, "slos")) return;
    check_keys(c, so, "slos", keys);
    if ((n = get(so, "createToReady")) && want_obj(c, n, "slos.createToReady")) {
        double *f[] = {&s->ctr_avg_s, &s->ctr_p50_s, &s->ctr_p95_s, &s->ctr_p99_s};
        check_keys(c, n, "slos.createToReady", ctr);
        if (!n->child)
            errf(c, n, "slos.createToReady", "expected at least one of avg, p50, p95 or p99");
        for (size_t i = 0; ctr[i]; i++) {
            const cJSON *v = get(n, ctr[i]);
            join(p, "slos.createToReady", ctr[i]);
            if (v) slo_dur(c, v, p, f[i]);
        }
    }
    if ((n = get(so, "reconcileErrorRate")))
        want_num(c, n, "slos.reconcileErrorRate", 0, false, 1, false, &s->reconcile_error_rate);
    if ((n = get(so, "recoveryTime"))) slo_dur(c, n, "slos.recoveryTime", &s->recovery_s);
    if ((n = get(so, "operatorCPU")))
        slo_resource(c, n, "slos.operatorCPU", true, &s->cpu_limit_cores, &s->cpu_max_percent);
    if ((n = get(so, "operatorMemory")))
        slo_resource(c, n, "slos.operatorMemory", false, &s->mem_limit_bytes, &s->mem_max_percent);
    if ((n = get(so, "apiCallsPerObject")) && want_obj(c, n, "slos.apiCallsPerObject")) {
        check_keys(c, n, "slos.apiCallsPerObject", api);
        if (!n->child) errf(c, n, "slos.apiCallsPerObject", "expected cloud, kubeWrites or both");
        const cJSON *v;
        if ((v = get(n, "cloud")))
            want_num(c, v, "slos.apiCallsPerObject.cloud", 0, false, INFINITY, false,
                     &s->cloud_calls_per_object);
        if ((v = get(n, "kubeWrites")))
            want_num(c, v, "slos.apiCallsPerObject.kubeWrites", 0, false, INFINITY, false,
                     &s->kube_writes_per_object);
    }
}

/* ---------------------------------------------------------------- the file */

static bool valid_scenario_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 40) return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
            return false;
    return s[0] != '-' && s[n - 1] != '-';
}

static void check_root(chk *c, const cJSON *root)
{
    static const char *const keys[] = {"name",  "description", "tags", "timeout", "setup",
                                       "steps", "invariants",  "slos", NULL};
    sr_scenario *s = c->s;
    const cJSON *n;
    if (!want_type(c, root, "", cJSON_IsObject(root), "a scenario: a mapping with name and steps"))
        return;
    check_keys(c, root, "", keys);
    if ((n = need(c, root, "name", "", "[a-z0-9-], at most 40 characters")) &&
        want_str(c, n, "name")) {
        if (!valid_scenario_name(n->valuestring))
            errf(c, n, "name",
                 "\"%s\" is not a valid scenario name; expected lower-case letters, digits and "
                 "'-', starting and ending "
                 "with a letter or digit, at most 40 characters",
                 n->valuestring);
        free(s->name);
        s->name = xstrdup(c, n->valuestring);
    }
    if ((n = get(root, "description")) &&
        want_type(c, n, "description", cJSON_IsString(n), "a string")) {
        free(s->description);
        s->description = xstrdup(c, n->valuestring);
    }
    if ((n = get(root, "tags"))) want_strs(c, n, "tags", false, &s->tags, &s->n_tags);
    if ((n = get(root, "timeout"))) want_dur(c, n, "timeout", false, &s->timeout_ns);
    if ((n = get(root, "setup"))) check_setup(c, n);
    c->vars = s->setup.vars;
    if ((n = need(c, root, "steps", "", "a list of at least one step"))) {
        if (want_type(c, n, "steps", cJSON_IsArray(n) && cJSON_GetArraySize(n) > 0,
                      "a non-empty list of steps")) {
            size_t cnt = (size_t)cJSON_GetArraySize(n);
            s->steps = calloc(cnt, sizeof *s->steps);
            const cJSON **names = calloc(cnt, sizeof *names);
            if (!s->steps || !names) {
                free(names);
                c->oom = true;
                return;
            }
            const cJSON *it = NULL;
            cJSON_ArrayForEach(it, n)
            {
                char p[PATH_LEN];
                joini(p, "steps", s->n_steps);
                check_step(c, it, p, &s->steps[s->n_steps], names, s->n_steps);
                s->n_steps++;
            }
            free(names);
        }
    }
    if ((n = get(root, "invariants"))) check_invariants(c, n);
    if ((n = get(root, "slos"))) check_slos(c, n);
    /* A clear by name must name a rule some fault added with as:. */
    for (size_t i = 0; i < c->n_fault_clears; i++) {
        const sc_name *cl = &c->fault_clears[i];
        bool found = false;
        for (size_t j = 0; j < c->n_fault_names && !found; j++)
            found = !strcmp(c->fault_names[j].name, cl->name);
        if (found) continue;
        const char *cands[65];
        size_t k = 0;
        for (size_t j = 0; j < c->n_fault_names && k < 64; j++) cands[k++] = c->fault_names[j].name;
        cands[k] = NULL;
        const char *dm = did_you_mean(cl->name, cands);
        char hint[128] = "";
        if (dm) snprintf(hint, sizeof hint, " (did you mean \"%s\"?)", dm);
        const csl_yaml *saved = c->y;
        c->y = cl->y;
        errf(c, cl->node, cl->path,
             "no fault is added with as: \"%s\"; expected all or the name of an added rule%s",
             cl->name, hint);
        c->y = saved;
    }
}

static void free_ops(sr_op *ops)
{
    free(ops);
}

void sr_scenario_free(sr_scenario *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_steps; i++) {
        sr_step *st = &s->steps[i];
        free(st->name);
        free_ops(st->try_ops);
        free_ops(st->catch_ops);
        free_ops(st->finally_ops);
        free_ops(st->cleanup_ops);
    }
    free(s->steps);
    for (size_t i = 0; i < s->n_tags; i++) free(s->tags[i]);
    free(s->tags);
    for (size_t i = 0; i < s->setup.n_mock_args; i++) free(s->setup.mock_args[i]);
    free(s->setup.mock_args);
    for (size_t i = 0; i < s->setup.n_operator_args; i++) free(s->setup.operator_args[i]);
    free(s->setup.operator_args);
    sc_priv *p = s->priv;
    if (p) {
        /* Owned arrays hold references: deleting them leaves the YAML nodes. */
        for (size_t i = 0; i < p->n_owned; i++) cJSON_Delete(p->owned[i]);
        free(p->owned);
        for (size_t i = 0; i < p->n_yamls; i++) csl_yaml_free(p->yamls[i]);
        free(p->yamls);
        free(p->refs);
        free(p);
    }
    free(s->file);
    free(s->dir);
    free(s->name);
    free(s->description);
    free(s);
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

sr_scenario *sr_scenario_load(const char *path, sr_errors *errs)
{
    size_t n0 = errs->n;
    sr_scenario *s = calloc(1, sizeof *s);
    sc_priv *p = calloc(1, sizeof *p);
    if (!s || !p) {
        free(s);
        free(p);
        sr_errors_add(errs, "%s: out of memory", path);
        return NULL;
    }
    s->priv = p;
    s->file = strdup(path);
    s->dir = dir_of(path);
    s->description = strdup("");
    s->timeout_ns = 10 * 60 * NS_PER_S;
    s->setup.operator_replicas = 1;
    s->invariants = (sr_invariants){true, true, true, true, true, true};
    s->slos = (sr_slos){-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};
    chk c = {.s = s, .p = p, .errs = errs, .n0 = n0};
    if (!s->file || !s->dir || !s->description) {
        c.oom = true;
        goto done;
    }
    csl_yaml_err ye;
    csl_yaml *y = csl_yaml_load_file(path, &ye);
    if (!y) {
        char m[700];
        csl_yaml_err_format(&ye, m, sizeof m);
        sr_errors_add(errs, "%s", m);
        goto done;
    }
    if (!track(&c, (void **)&p->yamls, &p->n_yamls, sizeof y, &y)) {
        csl_yaml_free(y);
        goto done;
    }
    c.y = y;
    s->setup.vars = cJSON_CreateObject();
    own(&c, (cJSON *)s->setup.vars);
    size_t ndocs = csl_yaml_count(y);
    const cJSON *root = ndocs ? csl_yaml_doc(y, 0) : NULL;
    if (!root || cJSON_IsNull(root)) {
        sr_errors_add(errs,
                      "%s: the file is empty; expected a scenario: a mapping with name and steps",
                      path);
        goto done;
    }
    for (size_t i = 1; i < ndocs; i++) {
        const cJSON *d = csl_yaml_doc(y, i);
        if (d && !cJSON_IsNull(d)) {
            errf(&c, d, "", "a second YAML document; a scenario file holds exactly one scenario");
            break;
        }
    }
    check_root(&c, root);
done:
    cJSON_Delete(c.scratch);
    free(c.fault_names);
    free(c.fault_clears);
    if (c.oom) sr_errors_add(errs, "%s: out of memory", path);
    if (errs->n > n0) {
        sr_scenario_free(s);
        return NULL;
    }
    return s;
}

bool sr_scenario_pos(const sr_scenario *s, const cJSON *node, sr_pos *pos)
{
    if (!s || !node) return false;
    const sc_priv *p = s->priv;
    for (size_t i = 0; i < p->n_refs; i++)
        if (p->refs[i].ref == node) node = p->refs[i].orig;
    for (size_t i = 0; i < p->n_yamls; i++) {
        int line = 0, col = 0;
        if (csl_yaml_pos(p->yamls[i], node, &line, &col)) {
            if (pos) *pos = (sr_pos){line, col};
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------------- paths */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *n)
{
    size_t l = strlen(n);
    return (l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml"));
}

typedef struct pathlist {
    char **v;
    size_t n;
    bool oom;
} pathlist;

static void pl_add(pathlist *pl, char *s)
{
    char **v = s ? realloc(pl->v, (pl->n + 1) * sizeof *v) : NULL;
    if (!v) {
        free(s);
        pl->oom = true;
        return;
    }
    pl->v = v;
    pl->v[pl->n++] = s;
}

/* Every *.yaml / *.yml under dir, hidden entries skipped. */
static int walk_dir(const char *dir, int depth, pathlist *pl, sr_errors *errs)
{
    if (depth > MAX_DIR_DEPTH) {
        sr_errors_add(errs, "%s: directories nested more than %d deep (a symlink loop?)", dir,
                      MAX_DIR_DEPTH);
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        sr_errors_add(errs, "%s: cannot open directory: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = NULL;
        if (asprintf(&full, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name) < 0) {
            pl->oom = true;
            break;
        }
        struct stat st;
        if (stat(full, &st) < 0) {
            free(full); /* a dangling symlink: not a scenario */
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (walk_dir(full, depth + 1, pl, errs) < 0) rc = -1;
            free(full);
        } else if (S_ISREG(st.st_mode) && is_yaml_name(e->d_name)) {
            pl_add(pl, full);
        } else {
            free(full);
        }
    }
    closedir(d);
    return rc;
}

int sr_collect_paths(char *const *paths, size_t n, char ***files, size_t *nfiles, sr_errors *errs)
{
    pathlist pl = {0};
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(paths[i], &st) < 0) {
            sr_errors_add(errs, "%s: %s; expected a scenario file or a directory of them", paths[i],
                          strerror(errno));
            rc = -1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            pl_add(&pl, strdup(paths[i]));
            continue;
        }
        size_t first = pl.n;
        if (walk_dir(paths[i], 0, &pl, errs) < 0) rc = -1;
        if (pl.n > first) qsort(pl.v + first, pl.n - first, sizeof *pl.v, cmp_str);
        if (pl.n == first && rc == 0) {
            sr_errors_add(errs, "%s: no *.yaml or *.yml files in this directory", paths[i]);
            rc = -1;
        }
    }
    if (pl.oom) {
        sr_errors_add(errs, "out of memory while listing scenario files");
        rc = -1;
    }
    if (rc < 0) {
        for (size_t i = 0; i < pl.n; i++) free(pl.v[i]);
        free(pl.v);
        *files = NULL;
        *nfiles = 0;
        return -1;
    }
    *files = pl.v;
    *nfiles = pl.n;
    return 0;
}
