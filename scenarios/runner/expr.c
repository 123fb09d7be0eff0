/* expr.c — the assertion expression language (see expr.h and
 * docs/scenario-matching.md).
 *
 * A hand-written recursive-descent parser turns the text into a tree of
 * nodes once; evaluation walks that tree against one JSON value, @. Values
 * during evaluation are cJSON nodes that are either borrowed (a part of @,
 * a literal held by the tree) or owned by the evaluator, so looking at a
 * field of @ never copies it. Every failure, when parsing or evaluating, is
 * a message "col N: …" and never a crash: nesting is bounded, every
 * operator checks the types it is given, and a regular expression written
 * as a literal is compiled once, at parse time. */
#include "expr.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csl/buf.h"
#include "csl/units.h"

/* Parser nesting (parentheses, lists, calls, unary operators). */
#define MAX_DEPTH 64
/* Height of the tree: bounds the evaluator's (and the destructor's)
 * recursion, including long left-leaning chains such as 1+1+1+… */
#define MAX_HEIGHT 256
/* Lambda parameters in one expression. */
#define MAX_SLOTS 8
/* Values nested deeper than this are not copied, printed or compared
 * (they compare unequal): the cJSON routines that would do it recurse. No
 * parsed document gets here: cJSON and csl_yaml refuse deeper input. */
#define MAX_VALUE_DEPTH 1000

/* ---------------------------------------------------------------- tree */

typedef enum nkind {
    N_LIT,    /* lit */
    N_AT,     /* @ */
    N_VAR,    /* a lambda parameter: slot */
    N_LIST,   /* [kid, …] */
    N_FIELD,  /* kid[0].name */
    N_INDEX,  /* kid[0][kid[1]] */
    N_NOT,    /* !kid[0] */
    N_NEG,    /* -kid[0] */
    N_BIN,    /* kid[0] op kid[1] */
    N_CALL,   /* fns[fn](kid…) */
    N_LAMBDA, /* slot => kid[0]; only as an argument of count/filter/any/all */
} nkind;

typedef enum binop {
    OP_OR,
    OP_AND,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_IN,
    OP_ADD,
    OP_SUB,
    OP_MUL,
    OP_DIV,
} binop;

static const char *const op_text[] = {"||", "&&", "==", "!=", "<", "<=", ">",
                                      ">=", "in", "+",  "-",  "*", "/"};

typedef enum fnid {
    F_LEN,
    F_MATCHES,
    F_CONTAINS,
    F_STARTS,
    F_ENDS,
    F_DURATION,
    F_QUANTITY,
    F_EXISTS,
    F_INT,
    F_STRING,
    F_COUNT,
    F_FILTER,
    F_ANY,
    F_ALL,
} fnid;

static const struct fninfo {
    const char *name;
    int min, max; /* arguments */
    bool lambda;  /* the second argument is a lambda */
} fns[] = {
    [F_LEN] = {"len", 1, 1, false},
    [F_MATCHES] = {"matches", 2, 2, false},
    [F_CONTAINS] = {"contains", 2, 2, false},
    [F_STARTS] = {"startsWith", 2, 2, false},
    [F_ENDS] = {"endsWith", 2, 2, false},
    [F_DURATION] = {"duration", 1, 1, false},
    [F_QUANTITY] = {"quantity", 1, 1, false},
    [F_EXISTS] = {"exists", 1, 1, false},
    [F_INT] = {"int", 1, 1, false},
    [F_STRING] = {"string", 1, 1, false},
    [F_COUNT] = {"count", 1, 2, true},
    [F_FILTER] = {"filter", 2, 2, true},
    [F_ANY] = {"any", 2, 2, true},
    [F_ALL] = {"all", 2, 2, true},
};
#define NFNS (sizeof fns / sizeof fns[0])

typedef struct node {
    nkind kind;
    int col;     /* 1-based character column of the node's token, for errors */
    int height;  /* 1 for a leaf */
    binop op;    /* N_BIN */
    fnid fn;     /* N_CALL */
    int slot;    /* N_VAR, N_LAMBDA */
    char *name;  /* N_FIELD */
    cJSON *lit;  /* N_LIT */
    regex_t *re; /* N_CALL matches() whose pattern is a literal */
    struct node **kid;
    size_t nkid;
} node;

struct sr_expr {
    node *root;
};

static void node_free(node *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->nkid; i++) node_free(n->kid[i]);
    free(n->kid);
    free(n->name);
    cJSON_Delete(n->lit);
    if (n->re) {
        regfree(n->re);
        free(n->re);
    }
    free(n);
}

/* ---------------------------------------------------------------- lexer */

typedef enum tkind {
    T_EOF,
    T_NUM,
    T_STR,
    T_IDENT,
    T_AT,
    T_LP,
    T_RP,
    T_LB,
    T_RB,
    T_COMMA,
    T_DOT,
    T_ARROW,
    T_OR,
    T_AND,
    T_NOT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
} tkind;

typedef struct tok {
    tkind kind;
    size_t pos, len; /* where it is in the source */
    double num;      /* T_NUM */
    char *str;       /* T_STR: the decoded text, owned by the parser */
} tok;

typedef struct scope {
    const char *name; /* points into the source */
    size_t len;
    int slot;
} scope;

typedef struct parser {
    const char *src;
    size_t pos; /* next byte to lex */
    tok t;      /* the current token */
    int depth;
    int nslots;
    scope scopes[MAX_SLOTS];
    int nscopes;
    size_t col_pos; /* memo for col(): byte offset … */
    int col_val;    /* … and its column */
    char *err;
    size_t errsz;
    bool failed;
} parser;

/* 1-based column of byte offset pos, counting UTF-8 characters. Tokens are
 * asked for mostly in order, so it counts on from the last answer. */
static int col_of(parser *p, size_t pos)
{
    if (pos < p->col_pos) {
        p->col_pos = 0;
        p->col_val = 1;
    }
    for (size_t i = p->col_pos; i < pos && p->src[i]; i++)
        if (((unsigned char)p->src[i] & 0xC0) != 0x80) p->col_val++;
    p->col_pos = pos;
    return p->col_val;
}

/* Records the first error only: later ones are consequences of it. */
static void vperr_col(parser *p, int col, const char *fmt, va_list ap)
{
    if (p->failed) return;
    p->failed = true;
    if (!p->err || !p->errsz) return;
    int n = snprintf(p->err, p->errsz, "col %d: ", col);
    if (n < 0 || (size_t)n >= p->errsz) return;
    vsnprintf(p->err + n, p->errsz - (size_t)n, fmt, ap);
}

static void perr_col(parser *p, int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void perr_col(parser *p, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vperr_col(p, col, fmt, ap);
    va_end(ap);
}

static void perr(parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void perr(parser *p, size_t pos, const char *fmt, ...)
{
    if (p->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vperr_col(p, col_of(p, pos), fmt, ap);
    va_end(ap);
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A string literal: the quote is at p->pos. Inside, a backslash before the
 * quote or another backslash escapes it, \n and \t are a newline and a tab;
 * any other backslash stays as written so regular expressions such as
 * '^a\.b$' need no doubling. */
static bool lex_string(parser *p)
{
    const char *s = p->src;
    size_t start = p->pos, i = start + 1;
    char q = s[start];
    csl_buf b = CSL_BUF_INIT;
    csl_buf_puts(&b, ""); /* an empty literal is "" too, never NULL */
    for (;;) {
        char c = s[i];
        if (!c) {
            csl_buf_free(&b);
            perr(p, start, "unterminated string: add the closing %c", q);
            return false;
        }
        if (c == q) break;
        if (c == '\\' && (s[i + 1] == q || s[i + 1] == '\\')) {
            csl_buf_putc(&b, s[i + 1]);
            i += 2;
        } else if (c == '\\' && (s[i + 1] == 'n' || s[i + 1] == 't')) {
            csl_buf_putc(&b, s[i + 1] == 'n' ? '\n' : '\t');
            i += 2;
        } else {
            csl_buf_putc(&b, c);
            i++;
        }
    }
    if (b.oom) {
        csl_buf_free(&b);
        perr(p, start, "out of memory");
        return false;
    }
    p->t.kind = T_STR;
    p->t.str = csl_buf_steal(&b);
    p->pos = i + 1;
    return true;
}

/* A number: digits, an optional fraction, an optional exponent. A letter
 * right after it is refused (5m is a duration, which is a string). */
static bool lex_number(parser *p)
{
    const char *s = p->src;
    size_t start = p->pos, i = start;
    while (is_digit(s[i])) i++;
    if (s[i] == '.' && is_digit(s[i + 1])) {
        i++;
        while (is_digit(s[i])) i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        size_t j = i + 1;
        if (s[j] == '+' || s[j] == '-') j++;
        if (is_digit(s[j])) {
            while (is_digit(s[j])) j++;
            i = j;
        }
    }
    if (is_alpha(s[i]) || is_digit(s[i])) {
        size_t end = i;
        while (is_alpha(s[end]) || is_digit(s[end]) || s[end] == '.') end++;
        perr(p, start,
             "bad number '%.*s': durations and quantities are strings, e.g. duration('%.*s') or "
             "quantity('%.*s')",
             (int)(end - start), s + start, (int)(end - start), s + start, (int)(end - start),
             s + start);
        return false;
    }
    char buf[64];
    if (i - start >= sizeof buf) {
        perr(p, start, "number too long");
        return false;
    }
    memcpy(buf, s + start, i - start);
    buf[i - start] = '\0';
    p->t.kind = T_NUM;
    p->t.num = strtod(buf, NULL);
    if (!isfinite(p->t.num)) {
        perr(p, start, "number '%s' is out of range", buf);
        return false;
    }
    p->pos = i;
    return true;
}

/* Operators and punctuation, longest first so "<=" wins over "<". */
static const struct {
    const char *text;
    tkind kind;
} punct[] = {
    {"||", T_OR},    {"&&", T_AND}, {"==", T_EQ},   {"!=", T_NE},   {"<=", T_LE}, {">=", T_GE},
    {"=>", T_ARROW}, {"<", T_LT},   {">", T_GT},    {"!", T_NOT},   {"@", T_AT},  {"(", T_LP},
    {")", T_RP},     {"[", T_LB},   {"]", T_RB},    {",", T_COMMA}, {".", T_DOT}, {"+", T_PLUS},
    {"-", T_MINUS},  {"*", T_STAR}, {"/", T_SLASH},
};

/* Moves to the next token. False (with the error set) on a lexical error;
 * the current token is then T_EOF so callers stop. */
static bool next(parser *p)
{
    const char *s = p->src;
    free(p->t.str);
    memset(&p->t, 0, sizeof p->t);
    while (is_space(s[p->pos])) p->pos++;
    size_t i = p->pos;
    char c = s[i];
    p->t.pos = i;
    if (!c) return true; /* T_EOF */
    if (c == '\'' || c == '"' || is_digit(c)) {
        if (!(is_digit(c) ? lex_number(p) : lex_string(p))) return false;
        p->t.len = p->pos - i;
        return true;
    }
    if (is_alpha(c)) {
        size_t n = 1;
        while (is_alpha(s[i + n]) || is_digit(s[i + n])) n++;
        p->t.kind = T_IDENT;
        p->t.len = n;
        p->pos = i + n;
        return true;
    }
    for (size_t k = 0; k < sizeof punct / sizeof punct[0]; k++) {
        size_t n = strlen(punct[k].text);
        if (strncmp(s + i, punct[k].text, n)) continue;
        p->t.kind = punct[k].kind;
        p->t.len = n;
        p->pos = i + n;
        return true;
    }
    /* Near misses of operators get a hint; anything else is just named. */
    if (c == '=')
        perr(p, i, "'=' is not an operator: use '==' to compare");
    else if (c == '&' || c == '|')
        perr(p, i, "'%c' is not an operator: use '%c%c'", c, c, c);
    else if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
        perr(p, i, "unexpected character '%c'", c);
    else
        perr(p, i, "unexpected byte 0x%02x (outside a string)", (unsigned char)c);
    return false;
}

static bool tok_is(const parser *p, const char *word)
{
    return p->t.kind == T_IDENT && strlen(word) == p->t.len &&
           !memcmp(p->src + p->t.pos, word, p->t.len);
}

static bool is_keyword(const char *s, size_t n)
{
    static const char *const kw[] = {"true", "false", "null", "in"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strlen(kw[i]) == n && !memcmp(kw[i], s, n)) return true;
    return false;
}

/* What the current token is, for "found …" in messages. */
static void describe(const parser *p, char *out, size_t outsz)
{
    if (p->t.kind == T_EOF) {
        snprintf(out, outsz, "the end of the expression");
        return;
    }
    size_t n = p->t.len > 24 ? 24 : p->t.len;
    while (n < p->t.len && n > 0 && ((unsigned char)p->src[p->t.pos + n] & 0xC0) == 0x80) n--;
    /* A string shows its own quotes; anything else gets some. */
    const char *q = p->t.kind == T_STR ? "" : "'";
    snprintf(out, outsz, "%s%.*s%s%s", q, (int)n, p->src + p->t.pos, n < p->t.len ? "…" : "", q);
}

/* The next non-space bytes after the current token are "=>" — so the
 * current identifier starts a lambda. */
static bool arrow_follows(const parser *p)
{
    size_t i = p->pos;
    while (is_space(p->src[i])) i++;
    return p->src[i] == '=' && p->src[i + 1] == '>';
}

static bool paren_follows(const parser *p)
{
    size_t i = p->pos;
    while (is_space(p->src[i])) i++;
    return p->src[i] == '(';
}

/* ---------------------------------------------------------------- parser */

static node *new_node(parser *p, nkind kind, size_t pos)
{
    node *n = calloc(1, sizeof *n);
    if (!n) {
        perr(p, pos, "out of memory");
        return NULL;
    }
    n->kind = kind;
    n->col = col_of(p, pos);
    n->height = 1;
    return n;
}

/* Adds kid to n (taking it), keeping n's height. False (and both freed
 * by the caller through n) on failure. */
static bool add_kid(parser *p, node *n, node *kid)
{
    if (!kid) return false;
    node **k = realloc(n->kid, (n->nkid + 1) * sizeof *k);
    if (!k) {
        node_free(kid);
        perr(p, p->t.pos, "out of memory");
        return false;
    }
    n->kid = k;
    n->kid[n->nkid++] = kid;
    if (kid->height + 1 > n->height) n->height = kid->height + 1;
    if (n->height > MAX_HEIGHT) {
        perr(p, p->t.pos, "expression too deeply nested (more than %d levels); split it",
             MAX_HEIGHT);
        return false;
    }
    return true;
}

/* Makes a node of kind over a (and b for binary kinds), taking them: on
 * failure everything given is freed. */
static node *make(parser *p, nkind kind, size_t pos, node *a, node *b)
{
    bool two = kind == N_BIN || kind == N_INDEX;
    node *n = NULL, *k;
    if (!a || (two && !b)) goto fail;
    if (!(n = new_node(p, kind, pos))) goto fail;
    k = a;
    a = NULL;
    if (!add_kid(p, n, k)) goto fail;
    if (two) {
        k = b;
        b = NULL;
        if (!add_kid(p, n, k)) goto fail;
    }
    return n;
fail:
    node_free(a);
    node_free(b);
    node_free(n);
    return NULL;
}

static node *parse_expr(parser *p);
static node *parse_and(parser *p);
static node *parse_not(parser *p);
static node *parse_add(parser *p);
static node *parse_mul(parser *p);
static node *parse_unary(parser *p);
static node *parse_postfix(parser *p);
static node *parse_primary(parser *p);

static bool enter(parser *p)
{
    if (++p->depth > MAX_DEPTH) {
        perr(p, p->t.pos, "expression too deeply nested (more than %d levels)", MAX_DEPTH);
        return false;
    }
    return true;
}

static node *bin(parser *p, binop op, size_t pos, node *l, node *r)
{
    node *n = make(p, N_BIN, pos, l, r);
    if (n) n->op = op;
    return n;
}

static node *parse_or(parser *p)
{
    node *l = parse_and(p);
    while (l && p->t.kind == T_OR) {
        size_t pos = p->t.pos;
        next(p);
        l = bin(p, OP_OR, pos, l, parse_and(p));
    }
    return l;
}

static node *parse_and(parser *p)
{
    node *l = parse_not(p);
    while (l && p->t.kind == T_AND) {
        size_t pos = p->t.pos;
        next(p);
        l = bin(p, OP_AND, pos, l, parse_not(p));
    }
    return l;
}

static bool cmp_op(const parser *p, binop *op)
{
    static const struct {
        tkind t;
        binop op;
    } cmps[] = {{T_EQ, OP_EQ}, {T_NE, OP_NE}, {T_LT, OP_LT},
                {T_LE, OP_LE}, {T_GT, OP_GT}, {T_GE, OP_GE}};
    for (size_t k = 0; k < sizeof cmps / sizeof cmps[0]; k++)
        if (p->t.kind == cmps[k].t) {
            *op = cmps[k].op;
            return true;
        }
    if (!tok_is(p, "in")) return false;
    *op = OP_IN;
    return true;
}

/* One comparison at most: a < b < c is refused rather than silently read
 * as (a < b) < c. */
static node *parse_cmp(parser *p)
{
    node *l = parse_add(p);
    binop op;
    if (!l || !cmp_op(p, &op)) return l;
    size_t pos = p->t.pos;
    next(p);
    l = bin(p, op, pos, l, parse_add(p));
    if (l && cmp_op(p, &op)) {
        perr(p, p->t.pos, "comparisons do not chain: write a < b && b < c");
        node_free(l);
        return NULL;
    }
    return l;
}

/* '!' binds looser than comparisons, so !@ in ['a'] is !(@ in ['a']). */
static node *parse_not(parser *p)
{
    if (p->t.kind != T_NOT) return parse_cmp(p);
    size_t pos = p->t.pos;
    if (!enter(p)) return NULL;
    next(p);
    node *n = make(p, N_NOT, pos, parse_not(p), NULL);
    p->depth--;
    return n;
}

static node *parse_add(parser *p)
{
    node *l = parse_mul(p);
    while (l && (p->t.kind == T_PLUS || p->t.kind == T_MINUS)) {
        binop op = p->t.kind == T_PLUS ? OP_ADD : OP_SUB;
        size_t pos = p->t.pos;
        next(p);
        l = bin(p, op, pos, l, parse_mul(p));
    }
    return l;
}

static node *parse_mul(parser *p)
{
    node *l = parse_unary(p);
    while (l && (p->t.kind == T_STAR || p->t.kind == T_SLASH)) {
        binop op = p->t.kind == T_STAR ? OP_MUL : OP_DIV;
        size_t pos = p->t.pos;
        next(p);
        l = bin(p, op, pos, l, parse_unary(p));
    }
    return l;
}

static node *parse_unary(parser *p)
{
    if (p->t.kind == T_NOT) {
        perr(p, p->t.pos,
             "'!' applies to a whole comparison, so it cannot stand here: write (!x) or !(a == b)");
        return NULL;
    }
    if (p->t.kind != T_MINUS) return parse_postfix(p);
    size_t pos = p->t.pos;
    if (!enter(p)) return NULL;
    next(p);
    node *n = make(p, N_NEG, pos, parse_unary(p), NULL);
    p->depth--;
    return n;
}

/* Expects the closing token kind; the message names what it closes. */
static bool expect_close(parser *p, tkind kind, size_t open_pos, const char *what)
{
    if (p->t.kind == kind) {
        next(p);
        return true;
    }
    char found[64];
    describe(p, found, sizeof found);
    int open_col = col_of(p, open_pos);
    perr(p, p->t.pos, "expected '%s' to close the %s at col %d, found %s", kind == T_RP ? ")" : "]",
         what, open_col, found);
    return false;
}

static node *parse_postfix(parser *p)
{
    node *n = parse_primary(p);
    while (n && (p->t.kind == T_DOT || p->t.kind == T_LB)) {
        size_t pos = p->t.pos;
        if (p->t.kind == T_DOT) {
            next(p);
            if (p->t.kind != T_IDENT) {
                char found[64];
                describe(p, found, sizeof found);
                perr(p, p->t.pos,
                     "expected a field name after '.', found %s; write ['key'] for other keys, [0] "
                     "for a list element",
                     found);
                node_free(n);
                return NULL;
            }
            node *f = make(p, N_FIELD, pos, n, NULL);
            if (!f) return NULL;
            f->name = strndup(p->src + p->t.pos, p->t.len);
            if (!f->name) {
                perr(p, pos, "out of memory");
                node_free(f);
                return NULL;
            }
            n = f;
            next(p);
        } else {
            if (!enter(p)) {
                node_free(n);
                return NULL;
            }
            next(p);
            node *idx = parse_expr(p);
            p->depth--;
            if (idx && !expect_close(p, T_RB, pos, "'['")) {
                node_free(idx);
                idx = NULL;
            }
            n = make(p, N_INDEX, pos, n, idx);
        }
    }
    return n;
}

static node *parse_lambda(parser *p)
{
    size_t pos = p->t.pos;
    if (is_keyword(p->src + p->t.pos, p->t.len)) {
        perr(p, pos, "'%.*s' cannot name a lambda parameter", (int)p->t.len, p->src + pos);
        return NULL;
    }
    if (p->nslots >= MAX_SLOTS) {
        perr(p, pos, "too many lambdas in one expression (at most %d)", MAX_SLOTS);
        return NULL;
    }
    node *n = new_node(p, N_LAMBDA, pos);
    if (!n) return NULL;
    n->slot = p->nslots++;
    p->scopes[p->nscopes++] = (scope){p->src + pos, p->t.len, n->slot};
    next(p); /* the name */
    next(p); /* => */
    node *body = parse_expr(p);
    p->nscopes--;
    if (!add_kid(p, n, body)) {
        node_free(n);
        return NULL;
    }
    return n;
}

/* Edit distance ≤ 2 or equal ignoring case: close enough to suggest. */
static bool close_name(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    if (an == bn && !strncasecmp(a, b, an)) return true;
    if (an > 16 || bn > 16 || (an > bn ? an - bn : bn - an) > 2) return false;
    unsigned d[17][17];
    for (size_t i = 0; i <= an; i++) d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= bn; j++) d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= an; i++)
        for (size_t j = 1; j <= bn; j++) {
            unsigned c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[an][bn] <= 2;
}

static void unknown_function(parser *p, size_t pos, const char *name, size_t n)
{
    for (size_t i = 0; i < NFNS; i++)
        if (close_name(name, n, fns[i].name)) {
            perr(p, pos, "unknown function '%.*s': did you mean %s()?", (int)n, name, fns[i].name);
            return;
        }
    perr(p, pos,
         "unknown function '%.*s'; functions: len, matches, contains, startsWith, endsWith, "
         "duration, quantity, exists, int, string, count, filter, any, all",
         (int)n, name);
}

static node *parse_call(parser *p)
{
    size_t pos = p->t.pos, nlen = p->t.len;
    const char *name = p->src + pos;
    size_t f = 0;
    while (f < NFNS && !(strlen(fns[f].name) == nlen && !memcmp(fns[f].name, name, nlen))) f++;
    if (f == NFNS) {
        unknown_function(p, pos, name, nlen);
        return NULL;
    }
    node *n = new_node(p, N_CALL, pos);
    if (!n) return NULL;
    n->fn = (fnid)f;
    if (!enter(p)) goto fail;
    next(p); /* name */
    next(p); /* ( */
    if (p->t.kind == T_RP) {
        next(p);
    } else {
        for (;;) {
            node *arg;
            if (fns[f].lambda && n->nkid == 1 && p->t.kind == T_IDENT && arrow_follows(p))
                arg = parse_lambda(p);
            else
                arg = parse_expr(p);
            if (!add_kid(p, n, arg)) goto fail;
            if (p->t.kind == T_COMMA) {
                next(p);
                continue;
            }
            if (p->t.kind == T_RP) {
                next(p);
                break;
            }
            char found[64];
            describe(p, found, sizeof found);
            perr(p, p->t.pos, "expected ')' after arguments, found %s", found);
            goto fail;
        }
    }
    p->depth--;
    int got = (int)n->nkid;
    if (got < fns[f].min || got > fns[f].max) {
        if (fns[f].min == fns[f].max)
            perr(p, pos, "%s() takes %d argument%s, got %d", fns[f].name, fns[f].min,
                 fns[f].min == 1 ? "" : "s", got);
        else
            perr(p, pos, "%s() takes %d or %d arguments, got %d", fns[f].name, fns[f].min,
                 fns[f].max, got);
        goto fail;
    }
    if (fns[f].lambda && got == 2 && n->kid[1]->kind != N_LAMBDA) {
        perr(p, pos,
             "the second argument of %s() must be a lambda such as x => x.state == 'running'",
             fns[f].name);
        goto fail;
    }
    if (f == F_MATCHES && n->kid[1]->kind == N_LIT && cJSON_IsString(n->kid[1]->lit)) {
        n->re = malloc(sizeof *n->re);
        if (!n->re) {
            perr(p, pos, "out of memory");
            goto fail;
        }
        int rc = regcomp(n->re, n->kid[1]->lit->valuestring, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, n->re, why, sizeof why);
            free(n->re);
            n->re = NULL;
            perr_col(p, n->kid[1]->col, "bad regular expression '%s': %s",
                     n->kid[1]->lit->valuestring, why);
            goto fail;
        }
    }
    return n;
fail:
    node_free(n);
    return NULL;
}

static node *literal(parser *p, cJSON *v)
{
    node *n = NULL;
    if (!v) {
        perr(p, p->t.pos, "out of memory");
    } else if ((n = new_node(p, N_LIT, p->t.pos)) != NULL) {
        n->lit = v;
        v = NULL;
    }
    cJSON_Delete(v);
    next(p);
    return n;
}

static node *parse_primary(parser *p)
{
    size_t pos = p->t.pos;
    char found[64];
    switch (p->t.kind) {
    case T_AT: {
        node *n = new_node(p, N_AT, pos);
        next(p);
        return n;
    }
    case T_NUM:
        return literal(p, cJSON_CreateNumber(p->t.num));
    case T_STR:
        return literal(p, cJSON_CreateString(p->t.str));
    case T_LP: {
        if (!enter(p)) return NULL;
        next(p);
        node *n = parse_expr(p);
        p->depth--;
        if (n && !expect_close(p, T_RP, pos, "'('")) {
            node_free(n);
            return NULL;
        }
        return n;
    }
    case T_LB: {
        node *n = new_node(p, N_LIST, pos);
        if (!n || !enter(p)) {
            node_free(n);
            return NULL;
        }
        next(p);
        if (p->t.kind != T_RB) {
            for (;;) {
                if (!add_kid(p, n, parse_expr(p))) goto list_fail;
                if (p->t.kind == T_COMMA) {
                    next(p);
                    continue;
                }
                if (p->t.kind == T_RB) break;
                describe(p, found, sizeof found);
                perr(p, p->t.pos, "expected ',' or ']' in the list opened at col %d, found %s",
                     col_of(p, pos), found);
                goto list_fail;
            }
        }
        next(p);
        p->depth--;
        return n;
    list_fail:
        node_free(n);
        return NULL;
    }
    case T_IDENT:
        if (tok_is(p, "true")) return literal(p, cJSON_CreateTrue());
        if (tok_is(p, "false")) return literal(p, cJSON_CreateFalse());
        if (tok_is(p, "null")) return literal(p, cJSON_CreateNull());
        if (tok_is(p, "in")) break;
        if (paren_follows(p)) return parse_call(p);
        for (int i = p->nscopes - 1; i >= 0; i--)
            if (p->scopes[i].len == p->t.len &&
                !memcmp(p->scopes[i].name, p->src + pos, p->t.len)) {
                node *n = new_node(p, N_VAR, pos);
                if (n) n->slot = p->scopes[i].slot;
                next(p);
                return n;
            }
        if (arrow_follows(p))
            perr(p, pos,
                 "a lambda (x => …) is only allowed as the second argument of count, "
                 "filter, any or all");
        else
            perr(p, pos,
                 "unknown name '%.*s': use @ for the value being matched, or quote a string: "
                 "'%.*s'",
                 (int)p->t.len, p->src + pos, (int)p->t.len, p->src + pos);
        return NULL;
    default:
        break;
    }
    describe(p, found, sizeof found);
    perr(p, pos,
         "expected a value (@, a number, a 'string', true, false, null, [a list], (…) or "
         "a function call), found %s",
         found);
    return NULL;
}

static node *parse_expr(parser *p)
{
    if (!enter(p)) return NULL;
    node *n = parse_or(p);
    p->depth--;
    return n;
}

/* ---------------------------------------------------------------- values */

/* A value during evaluation: j is what it is; own is j when the evaluator
 * made it (and must free it), NULL when it is borrowed from @ or the tree. */
typedef struct val {
    const cJSON *j;
    cJSON *own;
} val;

static const cJSON k_null = {.type = cJSON_NULL};
static const cJSON k_true = {.type = cJSON_True};
static const cJSON k_false = {.type = cJSON_False};

static val borrow(const cJSON *j)
{
    return (val){j ? j : &k_null, NULL};
}

static void release(val *v)
{
    cJSON_Delete(v->own);
    v->own = NULL;
    v->j = NULL;
}

static int jtype(const cJSON *j)
{
    return j->type & 0xFF;
}

static const char *type_name(const cJSON *j)
{
    switch (jtype(j)) {
    case cJSON_NULL:
        return "null";
    case cJSON_False:
    case cJSON_True:
        return "boolean";
    case cJSON_Number:
        return "number";
    case cJSON_String:
        return "string";
    case cJSON_Array:
        return "list";
    case cJSON_Object:
        return "mapping";
    default:
        return "raw JSON";
    }
}

static bool is_bool(const cJSON *j)
{
    return jtype(j) == cJSON_True || jtype(j) == cJSON_False;
}

static const char *str_of(const cJSON *j)
{
    return j->valuestring ? j->valuestring : "";
}

/* JSON equality: numbers as doubles, mappings regardless of key order. */
static bool json_equal(const cJSON *a, const cJSON *b, int depth)
{
    if (depth > MAX_VALUE_DEPTH || jtype(a) != jtype(b)) return false;
    switch (jtype(a)) {
    case cJSON_Number:
        return a->valuedouble == b->valuedouble;
    case cJSON_String:
    case cJSON_Raw:
        return strcmp(str_of(a), str_of(b)) == 0;
    case cJSON_Array: {
        const cJSON *x = a->child, *y = b->child;
        for (; x && y; x = x->next, y = y->next)
            if (!json_equal(x, y, depth + 1)) return false;
        return !x && !y;
    }
    case cJSON_Object: {
        if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) return false;
        for (const cJSON *x = a->child; x; x = x->next) {
            const cJSON *y = x->string ? cJSON_GetObjectItemCaseSensitive(b, x->string) : NULL;
            if (!y || !json_equal(x, y, depth + 1)) return false;
        }
        return true;
    }
    default:
        return true; /* null, true, false: the type says it all */
    }
}

/* True when j has more than budget levels below it; recurses at most
 * budget deep, so it is safe on any tree. */
static bool too_deep(const cJSON *j, int budget)
{
    if (budget < 0) return true;
    for (const cJSON *k = j->child; k; k = k->next)
        if (too_deep(k, budget - 1)) return true;
    return false;
}

/* A number the way a person writes it: integers without a fraction, others
 * with the fewest digits that read back as the same double. */
void sr_fmt_number(double d, char *out, size_t outsz)
{
    if (isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0) {
        snprintf(out, outsz, "%.0f", d);
        return;
    }
    snprintf(out, outsz, "%.15g", d);
    if (strtod(out, NULL) != d) snprintf(out, outsz, "%.17g", d);
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* ---------------------------------------------------------------- evaluator */

typedef struct ectx {
    const cJSON *at;
    const cJSON *env[MAX_SLOTS];
    char *err;
    size_t errsz;
} ectx;

static int eerr(ectx *c, const node *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int eerr(ectx *c, const node *n, const char *fmt, ...)
{
    if (!c->err || !c->errsz) return -1;
    int k = snprintf(c->err, c->errsz, "col %d: ", n->col);
    if (k < 0 || (size_t)k >= c->errsz) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + k, c->errsz - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static int own(ectx *c, const node *n, cJSON *j, val *out)
{
    if (!j) return eerr(c, n, "out of memory");
    *out = (val){j, j};
    return 0;
}

/* A copy the caller owns; NULL (with err) for a tree too deep to copy. */
static cJSON *copy_value(ectx *c, const node *n, const cJSON *j)
{
    if (too_deep(j, MAX_VALUE_DEPTH)) {
        eerr(c, n, "value nested deeper than %d levels", MAX_VALUE_DEPTH);
        return NULL;
    }
    cJSON *d = cJSON_Duplicate(j, true);
    if (!d) eerr(c, n, "out of memory");
    return d;
}

static int number(ectx *c, const node *n, double d, val *out)
{
    if (!isfinite(d)) return eerr(c, n, "the result is not a finite number");
    return own(c, n, cJSON_CreateNumber(d), out);
}

static int boolean(bool b, val *out)
{
    *out = borrow(b ? &k_true : &k_false);
    return 0;
}

static int eval(const node *n, ectx *c, val *out);

/* Evaluates n, which must give a boolean (for &&, ||, ! and lambdas). */
static int eval_bool(const node *n, ectx *c, const char *what, bool *out)
{
    val v;
    if (eval(n, c, &v) < 0) return -1;
    if (!is_bool(v.j)) {
        int rc = eerr(c, n, "%s needs true or false, got %s", what, type_name(v.j));
        release(&v);
        return rc;
    }
    *out = jtype(v.j) == cJSON_True;
    release(&v);
    return 0;
}

static int eval_field(const node *n, ectx *c, val *out)
{
    val t;
    if (eval(n->kid[0], c, &t) < 0) return -1;
    if (cJSON_IsNull(t.j)) {
        release(&t);
        *out = borrow(NULL);
        return 0;
    }
    if (!cJSON_IsObject(t.j)) {
        int rc = eerr(c, n, "cannot take .%s of a %s (only of a mapping or null)", n->name,
                      type_name(t.j));
        release(&t);
        return rc;
    }
    cJSON *child = cJSON_GetObjectItemCaseSensitive(t.j, n->name);
    if (!child) {
        release(&t);
        *out = borrow(NULL);
        return 0;
    }
    if (!t.own) {
        *out = borrow(child);
        return 0;
    }
    /* The parent is ours: keep only the child. */
    cJSON_DetachItemViaPointer(t.own, child);
    release(&t);
    *out = (val){child, child};
    return 0;
}

static int eval_index(const node *n, ectx *c, val *out)
{
    val t, i;
    if (eval(n->kid[0], c, &t) < 0) return -1;
    if (eval(n->kid[1], c, &i) < 0) {
        release(&t);
        return -1;
    }
    int rc = 0;
    cJSON *child = NULL;
    if (cJSON_IsNull(t.j)) {
        /* absent stays absent */
    } else if (cJSON_IsArray(t.j)) {
        double d = cJSON_IsNumber(i.j) ? i.j->valuedouble : NAN;
        if (!cJSON_IsNumber(i.j) || d != floor(d)) {
            rc = eerr(c, n, "a list index must be a whole number, got %s",
                      cJSON_IsNumber(i.j) ? "a fraction" : type_name(i.j));
        } else {
            double size = cJSON_GetArraySize(t.j);
            if (d < 0) d += size; /* -1 is the last element */
            if (d >= 0 && d < size) child = cJSON_GetArrayItem(t.j, (int)d);
        }
    } else if (cJSON_IsObject(t.j)) {
        if (!cJSON_IsString(i.j))
            rc = eerr(c, n, "a mapping key must be a string, got %s", type_name(i.j));
        else
            child = cJSON_GetObjectItemCaseSensitive(t.j, str_of(i.j));
    } else {
        rc = eerr(c, n, "cannot index a %s (only a list, a mapping or null)", type_name(t.j));
    }
    release(&i);
    if (rc < 0 || !child) {
        release(&t);
        if (rc == 0) *out = borrow(NULL);
        return rc;
    }
    if (!t.own) {
        *out = borrow(child);
    } else {
        cJSON_DetachItemViaPointer(t.own, child);
        release(&t);
        *out = (val){child, child};
    }
    return 0;
}

static int eval_list(const node *n, ectx *c, val *out)
{
    cJSON *arr = cJSON_CreateArray();
    if (!arr) return eerr(c, n, "out of memory");
    for (size_t k = 0; k < n->nkid; k++) {
        val v;
        if (eval(n->kid[k], c, &v) < 0) {
            cJSON_Delete(arr);
            return -1;
        }
        cJSON *item = v.own ? v.own : copy_value(c, n, v.j);
        if (!item) {
            cJSON_Delete(arr);
            return -1;
        }
        cJSON_AddItemToArray(arr, item);
    }
    *out = (val){arr, arr};
    return 0;
}

static int compare(const node *n, ectx *c, const cJSON *a, const cJSON *b, val *out)
{
    int cmp;
    if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
        cmp = a->valuedouble < b->valuedouble ? -1 : a->valuedouble > b->valuedouble;
    else if (cJSON_IsString(a) && cJSON_IsString(b))
        cmp = strcmp(str_of(a), str_of(b));
    else
        return eerr(c, n, "'%s' compares two numbers or two strings, got %s and %s", op_text[n->op],
                    type_name(a), type_name(b));
    switch (n->op) {
    case OP_LT:
        return boolean(cmp < 0, out);
    case OP_LE:
        return boolean(cmp <= 0, out);
    case OP_GT:
        return boolean(cmp > 0, out);
    default:
        return boolean(cmp >= 0, out);
    }
}

static int member(const node *n, ectx *c, const cJSON *x, const cJSON *set, val *out)
{
    if (cJSON_IsNull(set)) return boolean(false, out);
    if (cJSON_IsArray(set)) {
        for (const cJSON *e = set->child; e; e = e->next)
            if (json_equal(x, e, 0)) return boolean(true, out);
        return boolean(false, out);
    }
    if (cJSON_IsObject(set)) {
        if (!cJSON_IsString(x))
            return eerr(c, n, "'in' a mapping looks for a key, which is a string, not a %s",
                        type_name(x));
        return boolean(cJSON_GetObjectItemCaseSensitive(set, str_of(x)) != NULL, out);
    }
    return eerr(c, n, "'in' needs a list (or a mapping) on its right, got %s%s", type_name(set),
                cJSON_IsString(set) ? "; for a substring use contains(s, part)" : "");
}

static int arith(const node *n, ectx *c, const cJSON *a, const cJSON *b, val *out)
{
    if (n->op == OP_ADD && cJSON_IsString(a) && cJSON_IsString(b)) {
        csl_buf s = CSL_BUF_INIT;
        csl_buf_puts(&s, str_of(a));
        csl_buf_puts(&s, str_of(b));
        if (s.oom) {
            csl_buf_free(&s);
            return eerr(c, n, "out of memory");
        }
        int rc = own(c, n, cJSON_CreateString(csl_buf_str(&s)), out);
        csl_buf_free(&s);
        return rc;
    }
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b))
        return eerr(c, n, "'%s' needs two numbers%s, got %s and %s", op_text[n->op],
                    n->op == OP_ADD ? " or two strings" : "", type_name(a), type_name(b));
    double x = a->valuedouble, y = b->valuedouble;
    switch (n->op) {
    case OP_ADD:
        return number(c, n, x + y, out);
    case OP_SUB:
        return number(c, n, x - y, out);
    case OP_MUL:
        return number(c, n, x * y, out);
    default:
        if (y == 0) return eerr(c, n, "division by zero");
        return number(c, n, x / y, out);
    }
}

static int eval_bin(const node *n, ectx *c, val *out)
{
    if (n->op == OP_OR || n->op == OP_AND) {
        /* Short-circuit, so (@.x != null && @.x > 2) never compares null. */
        bool l, r;
        const char *what = n->op == OP_OR ? "'||'" : "'&&'";
        if (eval_bool(n->kid[0], c, what, &l) < 0) return -1;
        if (n->op == OP_OR ? l : !l) return boolean(l, out);
        if (eval_bool(n->kid[1], c, what, &r) < 0) return -1;
        return boolean(r, out);
    }
    val a, b;
    if (eval(n->kid[0], c, &a) < 0) return -1;
    if (eval(n->kid[1], c, &b) < 0) {
        release(&a);
        return -1;
    }
    int rc;
    switch (n->op) {
    case OP_EQ:
        rc = boolean(json_equal(a.j, b.j, 0), out);
        break;
    case OP_NE:
        rc = boolean(!json_equal(a.j, b.j, 0), out);
        break;
    case OP_LT:
    case OP_LE:
    case OP_GT:
    case OP_GE:
        rc = compare(n, c, a.j, b.j, out);
        break;
    case OP_IN:
        rc = member(n, c, a.j, b.j, out);
        break;
    default:
        rc = arith(n, c, a.j, b.j, out);
        break;
    }
    release(&a);
    release(&b);
    return rc;
}

/* count, filter, any, all: a list (null counts as empty) and an optional
 * lambda that must answer true or false for each element. */
static int eval_lambda_call(const node *n, ectx *c, val *out)
{
    const char *name = fns[n->fn].name;
    val list;
    if (eval(n->kid[0], c, &list) < 0) return -1;
    if (!cJSON_IsNull(list.j) && !cJSON_IsArray(list.j)) {
        int rc = eerr(c, n, "%s() needs a list, got %s", name, type_name(list.j));
        release(&list);
        return rc;
    }
    const node *lam = n->nkid > 1 ? n->kid[1] : NULL;
    cJSON *kept = NULL;
    if (n->fn == F_FILTER && !(kept = cJSON_CreateArray())) {
        release(&list);
        return eerr(c, n, "out of memory");
    }
    double hits = 0;
    int rc = 0;
    const cJSON *saved = lam ? c->env[lam->slot] : NULL;
    char what[32];
    snprintf(what, sizeof what, "the lambda of %s()", name);
    for (const cJSON *e = list.j->child; e; e = e->next) {
        bool yes = true;
        if (lam) {
            c->env[lam->slot] = e;
            if ((rc = eval_bool(lam->kid[0], c, what, &yes)) < 0) break;
        }
        if (!yes) {
            if (n->fn == F_ALL) break;
            continue;
        }
        hits++;
        if (n->fn == F_ANY) break;
        if (kept) {
            cJSON *dup = copy_value(c, n, e);
            if (!dup) {
                rc = -1;
                break;
            }
            cJSON_AddItemToArray(kept, dup);
        }
    }
    if (lam) c->env[lam->slot] = saved;
    size_t total = (size_t)cJSON_GetArraySize(list.j);
    release(&list);
    if (rc < 0) {
        cJSON_Delete(kept);
        return -1;
    }
    switch (n->fn) {
    case F_FILTER:
        *out = (val){kept, kept};
        return 0;
    case F_ANY:
        return boolean(hits > 0, out);
    case F_ALL:
        return boolean((size_t)hits == total, out);
    default:
        return number(c, n, hits, out);
    }
}

/* The string-or-null first argument of matches/startsWith/endsWith. */
static int want_string(const node *n, ectx *c, const cJSON *v, int argn)
{
    if (cJSON_IsString(v)) return 0;
    return eerr(c, n, "argument %d of %s() must be a string, got %s", argn, fns[n->fn].name,
                type_name(v));
}

static int fn_matches(const node *n, ectx *c, const cJSON *s, const cJSON *pat, val *out)
{
    if (cJSON_IsNull(s)) return boolean(false, out);
    if (want_string(n, c, s, 1) < 0) return -1;
    regex_t local;
    const regex_t *re = n->re;
    if (!re) {
        if (want_string(n, c, pat, 2) < 0) return -1;
        int rc = regcomp(&local, str_of(pat), REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, &local, why, sizeof why);
            return eerr(c, n, "bad regular expression '%s': %s", str_of(pat), why);
        }
        re = &local;
    }
    int rc = regexec(re, str_of(s), 0, NULL, 0);
    if (re == &local) regfree(&local);
    if (rc != 0 && rc != REG_NOMATCH) return eerr(c, n, "regular expression failed (code %d)", rc);
    return boolean(rc == 0, out);
}

static int fn_contains(const node *n, ectx *c, const cJSON *x, const cJSON *y, val *out)
{
    if (cJSON_IsNull(x)) return boolean(false, out);
    if (cJSON_IsString(x)) {
        if (!cJSON_IsString(y))
            return eerr(c, n, "contains() of a string looks for a string, got %s", type_name(y));
        return boolean(strstr(str_of(x), str_of(y)) != NULL, out);
    }
    if (cJSON_IsArray(x)) {
        for (const cJSON *e = x->child; e; e = e->next)
            if (json_equal(e, y, 0)) return boolean(true, out);
        return boolean(false, out);
    }
    if (cJSON_IsObject(x)) {
        if (!cJSON_IsString(y))
            return eerr(c, n,
                        "contains() of a mapping looks for a key, which is a string, not a %s",
                        type_name(y));
        return boolean(cJSON_GetObjectItemCaseSensitive(x, str_of(y)) != NULL, out);
    }
    return eerr(c, n, "contains() needs a string, a list or a mapping, got %s", type_name(x));
}

static int fn_affix(const node *n, ectx *c, const cJSON *x, const cJSON *y, val *out)
{
    if (cJSON_IsNull(x)) return boolean(false, out);
    if (want_string(n, c, x, 1) < 0 || want_string(n, c, y, 2) < 0) return -1;
    size_t xn = strlen(str_of(x)), yn = strlen(str_of(y));
    if (yn > xn) return boolean(false, out);
    const char *at = n->fn == F_STARTS ? str_of(x) : str_of(x) + xn - yn;
    return boolean(memcmp(at, str_of(y), yn) == 0, out);
}

/* duration() and quantity(): a string in units, or a number already. */
static int fn_units(const node *n, ectx *c, const cJSON *x, val *out)
{
    bool dur = n->fn == F_DURATION;
    if (cJSON_IsNumber(x)) return number(c, n, x->valuedouble, out);
    if (!cJSON_IsString(x))
        return eerr(c, n, "%s() needs a string such as '%s', got %s", fns[n->fn].name,
                    dur ? "5m" : "2Gi", type_name(x));
    char why[CSL_UNITS_ERR_LEN] = "";
    int64_t v;
    if (dur ? csl_duration_parse(str_of(x), &v, why) : csl_quantity_parse_milli(str_of(x), &v, why))
        return eerr(c, n, "%s(): %s", fns[n->fn].name, why);
    return number(c, n, dur ? (double)v / 1e9 : (double)v / 1000.0, out);
}

static int fn_int(const node *n, ectx *c, const cJSON *x, val *out)
{
    if (cJSON_IsNumber(x)) return number(c, n, trunc(x->valuedouble), out);
    if (!cJSON_IsString(x))
        return eerr(c, n, "int() needs a number or a string, got %s", type_name(x));
    const char *s = str_of(x);
    char *end = NULL;
    double d = *s && !is_space(*s) ? strtod(s, &end) : NAN;
    if (!end || *end || !isfinite(d))
        return eerr(c, n, "int() cannot read \"%.40s\" as a number", s);
    return number(c, n, trunc(d), out);
}

static int fn_string(const node *n, ectx *c, const cJSON *x, val *out)
{
    char num[64];
    switch (jtype(x)) {
    case cJSON_String:
        return own(c, n, cJSON_CreateString(str_of(x)), out);
    case cJSON_Number:
        sr_fmt_number(x->valuedouble, num, sizeof num);
        return own(c, n, cJSON_CreateString(num), out);
    case cJSON_True:
        return own(c, n, cJSON_CreateString("true"), out);
    case cJSON_False:
        return own(c, n, cJSON_CreateString("false"), out);
    case cJSON_NULL:
        return own(c, n, cJSON_CreateString("null"), out);
    default: {
        if (too_deep(x, MAX_VALUE_DEPTH))
            return eerr(c, n, "value nested deeper than %d levels", MAX_VALUE_DEPTH);
        char *s = cJSON_PrintUnformatted(x);
        if (!s) return eerr(c, n, "out of memory");
        int rc = own(c, n, cJSON_CreateString(s), out);
        free(s);
        return rc;
    }
    }
}

static int eval_call(const node *n, ectx *c, val *out)
{
    if (fns[n->fn].lambda) return eval_lambda_call(n, c, out);
    val a[2] = {{NULL, NULL}, {NULL, NULL}};
    size_t k;
    for (k = 0; k < n->nkid; k++)
        if (eval(n->kid[k], c, &a[k]) < 0) break;
    int rc = -1;
    if (k == n->nkid) {
        const cJSON *x = a[0].j, *y = a[1].j;
        switch (n->fn) {
        case F_LEN:
            if (cJSON_IsString(x))
                rc = number(c, n, (double)utf8_len(str_of(x)), out);
            else if (cJSON_IsArray(x) || cJSON_IsObject(x))
                rc = number(c, n, cJSON_GetArraySize(x), out);
            else if (cJSON_IsNull(x))
                rc = number(c, n, 0, out);
            else
                rc = eerr(c, n, "len() needs a string, a list or a mapping, got %s", type_name(x));
            break;
        case F_MATCHES:
            rc = fn_matches(n, c, x, y, out);
            break;
        case F_CONTAINS:
            rc = fn_contains(n, c, x, y, out);
            break;
        case F_STARTS:
        case F_ENDS:
            rc = fn_affix(n, c, x, y, out);
            break;
        case F_DURATION:
        case F_QUANTITY:
            rc = fn_units(n, c, x, out);
            break;
        case F_EXISTS:
            rc = boolean(!cJSON_IsNull(x), out);
            break;
        case F_INT:
            rc = fn_int(n, c, x, out);
            break;
        case F_STRING:
            rc = fn_string(n, c, x, out);
            break;
        default:
            rc = eerr(c, n, "internal error: function %d", (int)n->fn);
            break;
        }
    }
    release(&a[0]);
    release(&a[1]);
    return rc;
}

static int eval(const node *n, ectx *c, val *out)
{
    switch (n->kind) {
    case N_LIT:
        *out = borrow(n->lit);
        return 0;
    case N_AT:
        *out = borrow(c->at);
        return 0;
    case N_VAR:
        *out = borrow(c->env[n->slot]);
        return 0;
    case N_LIST:
        return eval_list(n, c, out);
    case N_FIELD:
        return eval_field(n, c, out);
    case N_INDEX:
        return eval_index(n, c, out);
    case N_NOT: {
        bool b;
        if (eval_bool(n->kid[0], c, "'!'", &b) < 0) return -1;
        return boolean(!b, out);
    }
    case N_NEG: {
        val v;
        if (eval(n->kid[0], c, &v) < 0) return -1;
        int rc = cJSON_IsNumber(v.j) ? number(c, n, -v.j->valuedouble, out)
                                     : eerr(c, n, "'-' needs a number, got %s", type_name(v.j));
        release(&v);
        return rc;
    }
    case N_BIN:
        return eval_bin(n, c, out);
    case N_CALL:
        return eval_call(n, c, out);
    default:
        return eerr(c, n, "a lambda cannot be evaluated on its own");
    }
}

/* ---------------------------------------------------------------- API */

bool sr_expr_is(const char *s)
{
    if (!s) return false;
    size_t n = strlen(s);
    return n >= 2 && s[0] == '(' && s[n - 1] == ')';
}

sr_expr *sr_expr_parse(const char *src, char *err, size_t errsz)
{
    if (err && errsz) err[0] = '\0';
    parser p = {.src = src ? src : "", .col_val = 1, .err = err, .errsz = errsz};
    node *root = NULL;
    sr_expr *e = NULL;
    if (!next(&p)) goto fail;
    if (p.t.kind == T_EOF) {
        perr(&p, 0, "empty expression");
        goto fail;
    }
    root = parse_expr(&p);
    if (!root || p.failed) goto fail;
    if (p.t.kind != T_EOF) {
        char found[64];
        describe(&p, found, sizeof found);
        perr(&p, p.t.pos, "unexpected %s after the end of the expression", found);
        goto fail;
    }
    e = malloc(sizeof *e);
    if (!e) {
        perr(&p, 0, "out of memory");
        goto fail;
    }
    e->root = root;
    free(p.t.str);
    return e;
fail:
    if (!p.failed) perr(&p, p.t.pos, "cannot parse the expression");
    node_free(root);
    free(p.t.str);
    return NULL;
}

void sr_expr_free(sr_expr *e)
{
    if (!e) return;
    node_free(e->root);
    free(e);
}

cJSON *sr_expr_eval(const sr_expr *e, const cJSON *at, char *err, size_t errsz)
{
    if (err && errsz) err[0] = '\0';
    if (!e) {
        if (err && errsz) snprintf(err, errsz, "no expression");
        return NULL;
    }
    ectx c = {.at = at, .err = err, .errsz = errsz};
    val v;
    if (eval(e->root, &c, &v) < 0) return NULL;
    if (v.own) return v.own;
    return copy_value(&c, e->root, v.j);
}

int sr_expr_eval_bool(const sr_expr *e, const cJSON *at, bool *out, char *err, size_t errsz)
{
    if (err && errsz) err[0] = '\0';
    if (!e) {
        if (err && errsz) snprintf(err, errsz, "no expression");
        return -1;
    }
    ectx c = {.at = at, .err = err, .errsz = errsz};
    val v;
    if (eval(e->root, &c, &v) < 0) return -1;
    int rc = 0;
    if (is_bool(v.j)) {
        *out = jtype(v.j) == cJSON_True;
    } else {
        rc = -1;
        if (err && errsz)
            snprintf(err, errsz, "the expression gives a %s, not true or false", type_name(v.j));
    }
    release(&v);
    return rc;
}
