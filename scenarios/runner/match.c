/* match.c — partial matching of an expected tree against an actual one
 * (see match.h and docs/scenario-matching.md).
 *
 * One recursive walk follows the expected tree; the actual tree is only
 * looked at where the expected one says. Arrays are the one hard part:
 * every expected element needs its own actual element, in any order. That
 * is a bipartite matching: a greedy pass assigns what it can, and only when
 * it leaves an element out do augmenting paths (Kuhn's algorithm, with the
 * element-against-element answers memoised) move earlier choices around.
 * Element tries never write messages; only what finally fails is explained,
 * so a successful match costs nothing for its diff. */
#include "match.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expr.h"

/* Expected trees deeper than this are refused (the walk recurses). */
#define MAX_DEPTH 256
/* Bytes of one value in a diff line. */
#define RENDER_MAX 120
/* Element pairs of one array whose answers are memoised; beyond it the
 * array is matched greedily only (an expected list that long is unheard of). */
#define MEMO_MAX (1u << 24)
/* Candidates tried when looking for the closest element to explain a miss. */
#define CLOSEST_MAX 1000

/* ---------------------------------------------------------------- rendering */

static int jtype(const cJSON *j)
{
    return j->type & 0xFF;
}


/* A string can go unquoted when our YAML reader (the 1.2 core schema,
 * docs/lib/yaml.md) would read it back as the same string: a word-like
 * text, not starting with a digit, that is not a bool or null. */
static bool plain_ok(const char *s)
{
    static const char *const reserved[] = {"true", "false", "null"};
    unsigned char c0 = (unsigned char)s[0];
    if (!((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 == '_' || c0 == '/'))
        return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '/' || c == '-'))
            return false;
    }
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcasecmp(s, reserved[i])) return false;
    return true;
}

static void render_string(const char *s, csl_buf *out)
{
    if (plain_ok(s)) {
        csl_buf_puts(out, s);
        return;
    }
    csl_buf_putc(out, '"');
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        switch (c) {
        case '"':
            csl_buf_puts(out, "\\\"");
            break;
        case '\\':
            csl_buf_puts(out, "\\\\");
            break;
        case '\n':
            csl_buf_puts(out, "\\n");
            break;
        case '\t':
            csl_buf_puts(out, "\\t");
            break;
        case '\r':
            csl_buf_puts(out, "\\r");
            break;
        default:
            if (c < 0x20)
                csl_buf_printf(out, "\\u%04x", c);
            else
                csl_buf_putc(out, (char)c);
        }
    }
    csl_buf_putc(out, '"');
}

/* Renders v into out, stopping early once out holds more than limit bytes
 * (the caller cuts it). */
static void render_rec(const cJSON *v, int depth, size_t limit, csl_buf *out)
{
    char num[64];
    if (out->len > limit) return;
    if (depth > MAX_DEPTH) {
        csl_buf_puts(out, "…");
        return;
    }
    switch (jtype(v)) {
    case cJSON_NULL:
        csl_buf_puts(out, "null");
        break;
    case cJSON_True:
        csl_buf_puts(out, "true");
        break;
    case cJSON_False:
        csl_buf_puts(out, "false");
        break;
    case cJSON_Number:
        sr_fmt_number(v->valuedouble, num, sizeof num);
        csl_buf_puts(out, num);
        break;
    case cJSON_String:
        render_string(v->valuestring ? v->valuestring : "", out);
        break;
    case cJSON_Array:
    case cJSON_Object: {
        bool obj = jtype(v) == cJSON_Object;
        csl_buf_putc(out, obj ? '{' : '[');
        for (const cJSON *c = v->child; c && out->len <= limit; c = c->next) {
            if (c != v->child) csl_buf_puts(out, ", ");
            if (obj) {
                render_string(c->string ? c->string : "", out);
                csl_buf_puts(out, ": ");
            }
            render_rec(c, depth + 1, limit, out);
        }
        csl_buf_putc(out, obj ? '}' : ']');
        break;
    }
    default:
        csl_buf_puts(out, v->valuestring ? v->valuestring : "?");
        break;
    }
}

/* Appends text (n bytes), or when longer than max its first bytes and
 * "…", cut at a character boundary, max bytes in all (nothing when even
 * "…" does not fit). */
static void append_cut(csl_buf *out, const char *text, size_t n, size_t max)
{
    if (n <= max) {
        csl_buf_append(out, text, n);
        return;
    }
    if (max < 3) return;
    size_t cut = max - 3; /* room for "…" */
    while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80) cut--;
    csl_buf_append(out, text, cut);
    csl_buf_puts(out, "…");
}

void sr_render(const cJSON *v, size_t max, csl_buf *out)
{
    csl_buf tmp = CSL_BUF_INIT;
    if (!v)
        csl_buf_puts(&tmp, "(absent)");
    else
        render_rec(v, 0, max, &tmp);
    append_cut(out, csl_buf_str(&tmp), tmp.len, max);
    csl_buf_free(&tmp);
}

/* ---------------------------------------------------------------- context */

/* Expressions parsed during one sr_match call, by expected node: array
 * matching may try one expected element against many actual ones. */
typedef struct xentry {
    const cJSON *key;
    sr_expr *e; /* NULL when it failed to parse … */
    char *err;  /* … and this says why */
} xentry;

typedef struct mctx {
    csl_buf path; /* where we are, e.g. status.conditions[type=Ready] */
    xentry *xs;
    size_t xcap, xlen; /* open addressing; xcap is a power of two */
} mctx;

static size_t xhash(const cJSON *k, size_t cap)
{
    uint64_t h = (uint64_t)(uintptr_t)k * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

static bool xgrow(mctx *c)
{
    size_t cap = c->xcap ? c->xcap * 2 : 16;
    xentry *xs = calloc(cap, sizeof *xs);
    if (!xs) return false;
    for (size_t i = 0; i < c->xcap; i++) {
        if (!c->xs[i].key) continue;
        size_t h = xhash(c->xs[i].key, cap);
        while (xs[h].key) h = (h + 1) & (cap - 1);
        xs[h] = c->xs[i];
    }
    free(c->xs);
    c->xs = xs;
    c->xcap = cap;
    return true;
}

/* The parsed expression of string node s, parsed on first use. NULL with
 * *err pointing at the reason when it does not parse. */
static const sr_expr *expr_for(mctx *c, const cJSON *s, const char **err)
{
    static const char *const oom = "out of memory";
    if ((c->xlen + 1) * 2 > c->xcap && !xgrow(c)) {
        *err = oom;
        return NULL;
    }
    size_t h = xhash(s, c->xcap);
    while (c->xs[h].key && c->xs[h].key != s) h = (h + 1) & (c->xcap - 1);
    xentry *x = &c->xs[h];
    if (!x->key) {
        char why[256];
        x->key = s;
        x->e = sr_expr_parse(s->valuestring, why, sizeof why);
        if (!x->e) x->err = strdup(why);
        c->xlen++;
    }
    *err = x->err ? x->err : oom;
    return x->e;
}

static void mctx_free(mctx *c)
{
    for (size_t i = 0; i < c->xcap; i++) {
        sr_expr_free(c->xs[i].e);
        free(c->xs[i].err);
    }
    free(c->xs);
    csl_buf_free(&c->path);
}

/* ---------------------------------------------------------------- paths */

static void path_pop(mctx *c, size_t len)
{
    c->path.len = len;
    if (c->path.data) c->path.data[len] = '\0';
}

static bool word_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Appends .key (or ["key"] when the key is not word-like); returns the
 * length to pop back to. */
static size_t path_key(mctx *c, const char *key)
{
    size_t old = c->path.len;
    if (word_ok(key)) {
        if (old) csl_buf_putc(&c->path, '.');
        csl_buf_puts(&c->path, key);
    } else {
        csl_buf_putc(&c->path, '[');
        csl_buf_printf(&c->path, "\"%s\"", key);
        csl_buf_putc(&c->path, ']');
    }
    return old;
}

static bool is_expr_node(const cJSON *v)
{
    return cJSON_IsString(v) && sr_expr_is(v->valuestring);
}

/* The key an element of a list is known by: its "type" (conditions) or
 * else its "name" (containers, ports), when that is a plain string. NULL
 * for others; *key says which. */
static const cJSON *ident(const cJSON *elem, const char **key)
{
    static const char *const keys[] = {"type", "name"};
    for (size_t k = 0; cJSON_IsObject(elem) && k < 2; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(elem, keys[k]);
        if (!cJSON_IsString(v) || is_expr_node(v)) continue;
        *key = keys[k];
        return v;
    }
    return NULL;
}

/* True when actual element a carries the same identity. */
static bool same_ident(const cJSON *a, const char *key, const cJSON *id)
{
    const cJSON *v = cJSON_IsObject(a) ? cJSON_GetObjectItemCaseSensitive(a, key) : NULL;
    return cJSON_IsString(v) && !strcmp(v->valuestring, id->valuestring);
}

/* Appends the element's step: [type=Ready] or [name=web-0] when the
 * expected element names itself that way, else [index]. */
static size_t path_elem(mctx *c, const cJSON *elem, size_t index)
{
    size_t old = c->path.len;
    const char *key;
    const cJSON *id = ident(elem, &key);
    if (!id) {
        csl_buf_printf(&c->path, "[%zu]", index);
    } else if (word_ok(id->valuestring)) {
        csl_buf_printf(&c->path, "[%s=%s]", key, id->valuestring);
    } else {
        csl_buf_printf(&c->path, "[%s=\"%s\"]", key, id->valuestring);
    }
    return old;
}

/* ---------------------------------------------------------------- lines */

static void line_start(const mctx *c, csl_buf *diff)
{
    if (c->path.len) {
        csl_buf_puts(diff, csl_buf_str(&c->path));
        csl_buf_puts(diff, ": ");
    }
}

/* The expected side of a line: an expression as written, else rendered. */
static void put_expected(const cJSON *exp, csl_buf *diff)
{
    if (is_expr_node(exp))
        append_cut(diff, exp->valuestring, strlen(exp->valuestring), RENDER_MAX);
    else
        sr_render(exp, RENDER_MAX, diff);
}

/* "path: expected E, got A[; why]\n" */
static void mismatch(const mctx *c, csl_buf *diff, const cJSON *exp, const cJSON *act,
                     const char *why)
{
    if (!diff) return;
    line_start(c, diff);
    csl_buf_puts(diff, "expected ");
    put_expected(exp, diff);
    csl_buf_puts(diff, ", got ");
    sr_render(act, RENDER_MAX, diff);
    if (why) {
        csl_buf_puts(diff, "; ");
        csl_buf_puts(diff, why);
    }
    csl_buf_putc(diff, '\n');
}

/* ---------------------------------------------------------------- matching */

static bool match_node(mctx *c, const cJSON *exp, const cJSON *act, int depth, csl_buf *diff);

static bool match_expr(mctx *c, const cJSON *exp, const cJSON *act, csl_buf *diff)
{
    const char *perr;
    const sr_expr *e = expr_for(c, exp, &perr);
    if (!e) {
        if (diff) {
            line_start(c, diff);
            csl_buf_printf(diff, "bad expression %s: %s\n", exp->valuestring, perr);
        }
        return false;
    }
    char err[256];
    bool yes = false;
    if (sr_expr_eval_bool(e, act, &yes, err, sizeof err) < 0) {
        mismatch(c, diff, exp, act, err);
        return false;
    }
    if (!yes) mismatch(c, diff, exp, act, NULL);
    return yes;
}

static bool scalar_equal(const cJSON *a, const cJSON *b)
{
    if (jtype(a) != jtype(b)) return false;
    switch (jtype(a)) {
    case cJSON_Number:
        return a->valuedouble == b->valuedouble;
    case cJSON_String:
    case cJSON_Raw:
        return strcmp(a->valuestring ? a->valuestring : "", b->valuestring ? b->valuestring : "") ==
               0;
    default:
        return true; /* true, false */
    }
}

static bool match_object(mctx *c, const cJSON *exp, const cJSON *act, int depth, csl_buf *diff)
{
    bool ok = true;
    for (const cJSON *e = exp->child; e; e = e->next) {
        const char *key = e->string ? e->string : "";
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(act, key);
        if (!diff) {
            if (!match_node(c, e, a, depth + 1, NULL)) return false;
            continue;
        }
        size_t old = path_key(c, key);
        if (!match_node(c, e, a, depth + 1, diff)) ok = false;
        path_pop(c, old);
    }
    return ok;
}

/* State of one array's assignment problem. */
typedef struct assign {
    mctx *c;
    int depth;
    const cJSON **ev, **av; /* expected and actual elements */
    size_t n, m;
    long *e2a, *a2e; /* the assignment, -1 = none */
    uint8_t *memo;   /* n×m: 0 unknown, 1 match, 2 no match; NULL when too big */
    uint8_t *seen;   /* m: visited in the current augmenting search */
} assign;

static bool fits(assign *s, size_t i, size_t j)
{
    uint8_t *m = s->memo ? &s->memo[i * s->m + j] : NULL;
    if (m && *m) return *m == 1;
    bool ok = match_node(s->c, s->ev[i], s->av[j], s->depth + 1, NULL);
    if (m) *m = ok ? 1 : 2;
    return ok;
}

/* Kuhn's augmenting path from expected element i. Recursion depth is at
 * most the number of assigned elements, ≤ min(n, m), which MEMO_MAX bounds. */
static bool augment(assign *s, size_t i)
{
    for (size_t j = 0; j < s->m; j++) {
        if (s->seen[j] || !fits(s, i, j)) continue;
        s->seen[j] = 1;
        if (s->a2e[j] < 0 || augment(s, (size_t)s->a2e[j])) {
            s->a2e[j] = (long)i;
            s->e2a[i] = (long)j;
            return true;
        }
    }
    return false;
}

static size_t count_lines(const csl_buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->len; i++) n += b->data[i] == '\n';
    return n;
}

/* The actual element that best explains why expected element i (a mapping
 * or a list) found no partner: an unassigned one with the same type/name,
 * else the unassigned one with the fewest mismatching lines. Its lines go
 * to diff. */
static void explain_missing(assign *s, size_t i, csl_buf *diff)
{
    mctx *c = s->c;
    const cJSON *exp = s->ev[i];
    size_t old = path_elem(c, exp, i);
    long best = -1;
    const char *key;
    const cJSON *id = ident(exp, &key);
    for (size_t j = 0; id && j < s->m && best < 0; j++)
        if (s->a2e[j] < 0 && same_ident(s->av[j], key, id)) best = (long)j;
    csl_buf lines = CSL_BUF_INIT, tmp = CSL_BUF_INIT;
    if (best >= 0) {
        match_node(c, exp, s->av[best], s->depth + 1, &lines);
    } else {
        size_t fewest = SIZE_MAX, tried = 0;
        for (size_t j = 0; j < s->m && tried < CLOSEST_MAX; j++) {
            if (s->a2e[j] >= 0) continue;
            tried++;
            csl_buf_reset(&tmp);
            match_node(c, exp, s->av[j], s->depth + 1, &tmp);
            size_t n = count_lines(&tmp);
            if (n < fewest) {
                fewest = n;
                best = (long)j;
                csl_buf t = lines;
                lines = tmp;
                tmp = t;
            }
        }
    }
    if (best < 0) {
        line_start(c, diff);
        csl_buf_puts(diff, "expected ");
        put_expected(exp, diff);
        csl_buf_printf(
            diff, ", got no element left: all %zu are matched by other expected elements\n", s->m);
    } else if (lines.len == 0) {
        /* Only when the list was too long for a full search. */
        line_start(c, diff);
        csl_buf_puts(diff, "expected ");
        put_expected(exp, diff);
        csl_buf_puts(diff, ", got no distinct element (the list is too long to try every "
                           "assignment)\n");
    } else {
        csl_buf_append(diff, lines.data, lines.len);
    }
    csl_buf_free(&lines);
    csl_buf_free(&tmp);
    path_pop(c, old);
}

static bool match_array(mctx *c, const cJSON *exp, const cJSON *act, int depth, csl_buf *diff)
{
    size_t n = (size_t)cJSON_GetArraySize(exp), m = (size_t)cJSON_GetArraySize(act);
    if (n == 0 || m == 0) {
        /* [] expects an empty list; it would check nothing otherwise. */
        if (n == m) return true;
        mismatch(c, diff, exp, act, NULL);
        return false;
    }
    if (n > m && !diff) return false; /* not enough elements to go round */
    bool ok = false;
    assign s = {.c = c, .depth = depth, .n = n, .m = m};
    s.ev = malloc(n * sizeof *s.ev);
    s.av = malloc(m * sizeof *s.av);
    s.e2a = malloc(n * sizeof *s.e2a);
    s.a2e = malloc(m * sizeof *s.a2e);
    s.seen = malloc(m);
    if (n <= MEMO_MAX / m) s.memo = calloc(n * m, 1);
    if (!s.ev || !s.av || !s.e2a || !s.a2e || !s.seen) {
        if (diff) {
            line_start(c, diff);
            csl_buf_puts(diff, "out of memory matching the list\n");
        }
        goto out;
    }
    size_t k = 0;
    for (const cJSON *e = exp->child; e; e = e->next) s.ev[k] = e, s.e2a[k++] = -1;
    k = 0;
    for (const cJSON *a = act->child; a; a = a->next) s.av[k] = a, s.a2e[k++] = -1;

    /* Greedy first: in the usual case every element finds its partner at
     * once and nothing is ever undone. */
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        /* An element with a type/name tries its namesakes first: cheap
         * string compares spare most full matches in long lists. */
        const char *key;
        const cJSON *id = ident(s.ev[i], &key);
        for (size_t j = 0; id && j < m && s.e2a[i] < 0; j++)
            if (s.a2e[j] < 0 && same_ident(s.av[j], key, id) && fits(&s, i, j))
                s.e2a[i] = (long)j, s.a2e[j] = (long)i;
        for (size_t j = 0; j < m && s.e2a[i] < 0; j++)
            if (s.a2e[j] < 0 && fits(&s, i, j)) s.e2a[i] = (long)j, s.a2e[j] = (long)i;
        missing += s.e2a[i] < 0;
    }
    /* Then move earlier choices where that frees a partner. */
    for (size_t i = 0; s.memo && missing && i < n; i++) {
        if (s.e2a[i] >= 0) continue;
        memset(s.seen, 0, m);
        if (augment(&s, i)) missing--;
    }
    ok = missing == 0;
    if (!ok && diff) {
        for (size_t i = 0; i < n; i++) {
            if (s.e2a[i] >= 0) continue;
            if (!cJSON_IsObject(s.ev[i]) && !cJSON_IsArray(s.ev[i])) {
                size_t old = path_elem(c, s.ev[i], i);
                mismatch(c, diff, s.ev[i], act, "no element matches");
                path_pop(c, old);
            } else {
                explain_missing(&s, i, diff);
            }
        }
    }
out:
    free(s.ev);
    free(s.av);
    free(s.e2a);
    free(s.a2e);
    free(s.seen);
    free(s.memo);
    return ok;
}

/* Matches exp against act (NULL = absent). With diff, every mismatch
 * below this point is appended as a line; without, it stops at the first. */
static bool match_node(mctx *c, const cJSON *exp, const cJSON *act, int depth, csl_buf *diff)
{
    if (depth > MAX_DEPTH) {
        if (diff) {
            line_start(c, diff);
            csl_buf_printf(diff, "the expected tree is nested deeper than %d levels\n", MAX_DEPTH);
        }
        return false;
    }
    if (cJSON_IsNull(exp)) {
        if (!act || cJSON_IsNull(act)) return true;
        mismatch(c, diff, exp, act, NULL);
        return false;
    }
    if (is_expr_node(exp)) return match_expr(c, exp, act, diff);
    if (cJSON_IsObject(exp)) {
        if (!cJSON_IsObject(act)) {
            mismatch(c, diff, exp, act, NULL);
            return false;
        }
        return match_object(c, exp, act, depth, diff);
    }
    if (cJSON_IsArray(exp)) {
        if (!cJSON_IsArray(act)) {
            mismatch(c, diff, exp, act, NULL);
            return false;
        }
        return match_array(c, exp, act, depth, diff);
    }
    if (act && scalar_equal(exp, act)) return true;
    mismatch(c, diff, exp, act, NULL);
    return false;
}

bool sr_match(const cJSON *expected, const cJSON *actual, csl_buf *diff)
{
    if (!expected) return true;
    mctx c = {.path = CSL_BUF_INIT};
    bool ok = match_node(&c, expected, actual, 0, diff);
    mctx_free(&c);
    return ok;
}

/* ---------------------------------------------------------------- checking */

static const cJSON *check_rec(const cJSON *v, int depth, char *err, size_t errsz)
{
    if (depth > MAX_DEPTH) {
        if (err && errsz)
            snprintf(err, errsz, "the expected tree is nested deeper than %d levels", MAX_DEPTH);
        return v;
    }
    if (is_expr_node(v)) {
        sr_expr *e = sr_expr_parse(v->valuestring, err, errsz);
        if (!e) return v;
        sr_expr_free(e);
        return NULL;
    }
    for (const cJSON *k = (cJSON_IsObject(v) || cJSON_IsArray(v)) ? v->child : NULL; k;
         k = k->next) {
        const cJSON *bad = check_rec(k, depth + 1, err, errsz);
        if (bad) return bad;
    }
    return NULL;
}

const cJSON *sr_match_check(const cJSON *expected, char *err, size_t errsz)
{
    if (err && errsz) err[0] = '\0';
    return expected ? check_rec(expected, 0, err, errsz) : NULL;
}
