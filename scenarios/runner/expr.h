/* expr.h — the small expression language of assertions: "(@ >= 2)".
 *
 * An expression is evaluated against one JSON value, @ (an absent field is
 * null). Grammar (lowest precedence first): || ; && ; ! ; == != < <= > >=
 * in ; + - ; * / ; unary - ; postfix .field [index] ; primaries: @, numbers,
 * 'strings' or "strings", true, false, null, [list], (expr), and calls:
 * len(x), matches(x, re) (POSIX extended), contains(x, y) (substring or
 * array element), startsWith(x, y), endsWith(x, y), duration(s) → seconds,
 * quantity(s) → number (bytes or cores), exists(x), int(x), string(x).
 * Comparing values of different types is false (== ) / an error (<).
 * Parse once, evaluate many times; an sr_expr is immutable and may be
 * shared between threads. */
#ifndef SR_EXPR_H
#define SR_EXPR_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

typedef struct sr_expr sr_expr;

/* API */

/* True when s has the form of an expression: starts with '(' and ends with ')'. */
bool sr_expr_is(const char *s);

/* Parses src (with or without its enclosing parentheses). NULL with err
 * ("col N: expected …") on a syntax error. */
sr_expr *sr_expr_parse(const char *src, char *err, size_t errsz);
void sr_expr_free(sr_expr *e);

/* Evaluates against at (NULL = absent). Returns a new value the caller
 * owns, or NULL with err (type error, bad regex, unknown function). */
cJSON *sr_expr_eval(const sr_expr *e, const cJSON *at, char *err, size_t errsz);
/* Same, requiring a boolean result. Returns 0 and sets *out, or -1 with err. */
int sr_expr_eval_bool(const sr_expr *e, const cJSON *at, bool *out, char *err, size_t errsz);

/* Writes d the way a person writes a number: integers without a fraction
 * ("3", not "3.000000"), others with the fewest digits that read back as d.
 * Shared by the expression, match and template code. */
void sr_fmt_number(double d, char *out, size_t outsz);

#endif
