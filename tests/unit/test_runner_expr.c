/* test_runner_expr.c — the assertion expression language, table-driven:
 * what each expression gives against which @, the grammar's precedence
 * and associativity, every function, type errors and syntax errors with
 * their columns, and a fuzz loop showing the parser and evaluator never
 * crash on random input (run it under ASan/UBSan). */
#include "../testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "../../scenarios/runner/expr.h"

/* What src gives against at (JSON text; NULL = absent): the compact JSON of
 * the result, or "!" and the error. The caller frees. */
static char *run(const char *src, const char *at_json)
{
    char err[512] = "";
    cJSON *at = at_json ? cJSON_Parse(at_json) : NULL;
    if (at_json && !at) return strdup("!bad test JSON");
    sr_expr *e = sr_expr_parse(src, err, sizeof err);
    char *out;
    if (!e) {
        size_t n = strlen(err) + 16;
        out = malloc(n);
        snprintf(out, n, "!parse: %s", err);
    } else {
        cJSON *v = sr_expr_eval(e, at, err, sizeof err);
        if (v) {
            out = cJSON_PrintUnformatted(v);
            cJSON_Delete(v);
        } else {
            size_t n = strlen(err) + 2;
            out = malloc(n);
            snprintf(out, n, "!%s", err);
        }
    }
    sr_expr_free(e);
    cJSON_Delete(at);
    return out;
}

typedef struct ecase {
    const char *src;
    const char *at;   /* JSON, NULL = absent */
    const char *want; /* compact JSON; "!…" = an error starting with … */
} ecase;

static void check_cases(const ecase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *got = run(cases[i].src, cases[i].at);
        const char *want = cases[i].want;
        bool ok = want[0] == '!' ? !strncmp(got, want, strlen(want)) : !strcmp(got, want);
        CU_ASSERT(ok);
        if (!ok)
            fprintf(stderr, "\n  %s  @=%s\n    want %s\n    got  %s\n", cases[i].src,
                    cases[i].at ? cases[i].at : "(absent)", want, got);
        free(got);
    }
}

#define CHECK(cases) check_cases(cases, sizeof cases / sizeof cases[0])

static void test_precedence(void)
{
    static const ecase cases[] = {
        {"1 + 2 * 3", NULL, "7"},
        {"(1 + 2) * 3", NULL, "9"},
        {"2 * 3 + 4 * 5", NULL, "26"},
        {"10 - 4 - 3", NULL, "3"},   /* left-associative */
        {"100 / 10 / 5", NULL, "2"}, /* left-associative */
        {"10 - (4 - 3)", NULL, "9"},
        {"-2 * 3", NULL, "-6"},
        {"- -2", NULL, "2"},
        {"-(1 + 2)", NULL, "-3"},
        {"2 - -2", NULL, "4"},
        {"1 + 2 == 3", NULL, "true"}, /* arithmetic above comparison */
        {"1 < 2 && 2 < 3", NULL, "true"},
        {"true || false && false", NULL, "true"}, /* && above || */
        {"(true || false) && false", NULL, "false"},
        {"false && true || true", NULL, "true"},
        {"!true || true", NULL, "true"},
        {"!(1 == 2)", NULL, "true"},
        {"!1 == 2", NULL, "true"}, /* ! below comparison: !(1 == 2) */
        {"! ! true", NULL, "true"},
        {"!@ in ['a', 'b']", "\"c\"", "true"},
        {"!@ in ['a', 'b']", "\"a\"", "false"},
        {"!true && false", NULL, "false"},
        {"1 + 1 in [2]", NULL, "true"},
        {"(@ >= 2)", "3", "true"}, /* with or without the outer parentheses */
        {"@ >= 2", "3", "true"},
        {"((((1))))", NULL, "1"},
        {"  1\t+\n1  ", NULL, "2"},
        {"1.5e2 + 0.5", NULL, "150.5"},
        {"2E-1", NULL, "0.2"},
    };
    CHECK(cases);
}

static void test_short_circuit(void)
{
    static const ecase cases[] = {
        {"false && 1 / 0 == 1", NULL, "false"},
        {"true || 1 / 0 == 1", NULL, "true"},
        {"@.x != null && @.x > 2", "{}", "false"},
        {"@.x == null || @.x > 2", "{}", "true"},
        {"@.x != null && @.x > 2", "{\"x\": 3}", "true"},
        {"true && 1 / 0 == 1", NULL, "!col 11: division by zero"},
    };
    CHECK(cases);
}

static void test_values(void)
{
#define obj                                                                                        \
    "{\"a\": 1, \"s\": \"x\", \"n\": null, \"items\": [1, 2, 3], \"m\": {\"k\": [{\"v\": 7}]},"    \
    " \"labels\": {\"app.kubernetes.io/name\": \"web\"}}"
    static const ecase cases[] = {
        {"@", "{\"a\":1}", "{\"a\":1}"},
        {"@", NULL, "null"},
        {"@.a", obj, "1"},
        {"@.missing", obj, "null"},
        {"@.missing.deeper.still", obj, "null"},
        {"@.n.x", obj, "null"},
        {"@.status.phase == null", "{}", "true"},
        {"@.status.phase == null", NULL, "true"},
        {"@.items[0]", obj, "1"},
        {"@.items[2]", obj, "3"},
        {"@.items[-1]", obj, "3"},
        {"@.items[-3]", obj, "1"},
        {"@.items[3]", obj, "null"},
        {"@.items[-4]", obj, "null"},
        {"@.items[1 + 1]", obj, "3"},
        {"@.m.k[0].v", obj, "7"},
        {"@['a']", obj, "1"},
        {"@.labels['app.kubernetes.io/name']", obj, "\"web\""},
        {"@.labels['nope']", obj, "null"},
        {"@.n[0]", obj, "null"},
        {"@.in", "{\"in\": 5}", "5"}, /* keywords are fine as field names */
        {"@.true", "{\"true\": 6}", "6"},
        {"[1, 'a', true, false, null]", NULL, "[1,\"a\",true,false,null]"},
        {"[]", NULL, "[]"},
        {"[[1], [@]]", "2", "[[1],[2]]"},
        {"'it\\'s'", NULL, "\"it's\""},
        {"\"say \\\"hi\\\"\"", NULL, "\"say \\\"hi\\\"\""},
        {"'a\\nb'", NULL, "\"a\\nb\""},
        {"'a\\.b'", NULL, "\"a\\\\.b\""}, /* other escapes stay as written */
        {"'a\\\\b'", NULL, "\"a\\\\b\""},
        {"''", NULL, "\"\""},
        {"\"it's\"", NULL, "\"it's\""},
        /* equality */
        {"@ == 2", "2.0", "true"},
        {"@ == '2'", "2", "false"}, /* a string never equals a number */
        {"@ != '2'", "2", "true"},
        {"null == null", NULL, "true"},
        {"@ == null", NULL, "true"},
        {"@ == false", NULL, "false"},
        {"[1, 2] == [1, 2]", NULL, "true"},
        {"[1, 2] == [2, 1]", NULL, "false"},
        {"@.a == @.b", "{\"a\": {\"x\": 1, \"y\": [2]}, \"b\": {\"y\": [2], \"x\": 1}}", "true"},
        {"@.a == @.b", "{\"a\": {\"x\": 1}, \"b\": {\"x\": 1, \"y\": 2}}", "false"},
        {"'a' == 'a'", NULL, "true"},
        {"true == 1", NULL, "false"},
        /* ordering */
        {"'abc' < 'abd'", NULL, "true"},
        {"'b' >= 'a'", NULL, "true"},
        {"2 <= 2", NULL, "true"},
        {"2 > 2", NULL, "false"},
        {"-1 < 0", NULL, "true"},
        /* in */
        {"@ in ['a', 'b']", "\"b\"", "true"},
        {"@ in ['a', 'b']", "\"c\"", "false"},
        {"2 in [1, 2.0]", NULL, "true"},
        {"[1] in [[1], 2]", NULL, "true"},
        {"'app' in @", "{\"app\": 1}", "true"},
        {"'x' in @.missing", "{}", "false"},
        {"@ in []", "1", "false"},
        /* arithmetic */
        {"'a' + 'b'", NULL, "\"ab\""},
        {"7 / 2", NULL, "3.5"},
        {"@.a * 2 + 1", obj, "3"},
        {"0.1 + 0.2 > 0.3", NULL, "true"},
    };
    CHECK(cases);
#undef obj
}

static void test_type_errors(void)
{
    static const ecase cases[] = {
        {"@ >= 2", NULL, "!col 3: '>=' compares two numbers or two strings, got null and number"},
        {"(@ >= 2)", "\"x\"",
         "!col 4: '>=' compares two numbers or two strings, got string and number"},
        {"'a' < 1", NULL, "!col 5: '<' compares two numbers or two strings, got string and number"},
        {"[1] < [2]", NULL, "!col 5: '<' compares two numbers or two strings, got list and list"},
        {"1 + 'a'", NULL, "!col 3: '+' needs two numbers or two strings, got number and string"},
        {"'a' - 'b'", NULL, "!col 5: '-' needs two numbers, got string and string"},
        {"@ * 2", "true", "!col 3: '*' needs two numbers, got boolean and number"},
        {"1 / 0", NULL, "!col 3: division by zero"},
        {"1e308 * 10", NULL, "!col 7: the result is not a finite number"},
        {"-'a'", NULL, "!col 1: '-' needs a number, got string"},
        {"!1", NULL, "!col 2: '!' needs true or false, got number"},
        {"1 && true", NULL, "!col 1: '&&' needs true or false, got number"},
        {"false || 'x'", NULL, "!col 10: '||' needs true or false, got string"},
        {"1 in 'abc'", NULL,
         "!col 3: 'in' needs a list (or a mapping) on its right, got string; for a substring use "
         "contains(s, part)"},
        {"1 in 2", NULL, "!col 3: 'in' needs a list (or a mapping) on its right, got number"},
        {"1 in @", "{}", "!col 3: 'in' a mapping looks for a key, which is a string, not a number"},
        {"@.a.b", "{\"a\": \"str\"}",
         "!col 4: cannot take .b of a string (only of a mapping or null)"},
        {"@.a", "[1]", "!col 2: cannot take .a of a list"},
        {"@[0]", "5", "!col 2: cannot index a number (only a list, a mapping or null)"},
        {"@[0.5]", "[1]", "!col 2: a list index must be a whole number, got a fraction"},
        {"@['a']", "[1]", "!col 2: a list index must be a whole number, got string"},
        {"@[0]", "{}", "!col 2: a mapping key must be a string, got number"},
    };
    CHECK(cases);
}

static void test_functions(void)
{
#define servers                                                                                    \
    "[{\"state\": \"running\", \"zone\": \"a\"}, {\"state\": \"stopped\", \"zone\": \"b\"}, "      \
    "{\"state\": \"running\", \"zone\": \"b\"}]"
    static const ecase cases[] = {
        /* len */
        {"len('hello')", NULL, "5"},
        {"len('h\xc3\xa9llo')", NULL, "5"}, /* characters, not bytes */
        {"len(@)", "[1, 2, 3]", "3"},
        {"len(@)", "{\"a\": 1, \"b\": 2}", "2"},
        {"len(@)", NULL, "0"},
        {"len(@) == 3", "\"abc\"", "true"},
        {"len(5)", NULL, "!col 1: len() needs a string, a list or a mapping, got number"},
        /* matches */
        {"matches(@, '^i-[0-9a-f]+$')", "\"i-0af3\"", "true"},
        {"matches(@, '^i-[0-9a-f]+$')", "\"i-xyz\"", "false"},
        {"matches(@, 'x')", NULL, "false"},
        {"matches('a.b', 'a\\.b')", NULL, "true"},
        {"matches('axb', 'a\\.b')", NULL, "false"},
        {"matches('abc', @)", "\"^a\"", "true"}, /* a pattern computed at run time */
        {"matches('abc', @)", "\"(\"", "!col 1: bad regular expression '(': "},
        {"matches('abc', @)", "3", "!col 1: argument 2 of matches() must be a string, got number"},
        {"matches(@, 'x')", "5", "!col 1: argument 1 of matches() must be a string, got number"},
        /* contains, startsWith, endsWith */
        {"contains('hello', 'ell')", NULL, "true"},
        {"contains('hello', 'xyz')", NULL, "false"},
        {"contains(['a', 'b'], 'b')", NULL, "true"},
        {"contains([1, 2], '2')", NULL, "false"},
        {"contains(@, 'k')", "{\"k\": 1}", "true"},
        {"contains(@, 'x')", NULL, "false"},
        {"contains(5, 'x')", NULL,
         "!col 1: contains() needs a string, a list or a mapping, got number"},
        {"contains('abc', 1)", NULL,
         "!col 1: contains() of a string looks for a string, got number"},
        {"startsWith('hello', 'he')", NULL, "true"},
        {"startsWith('hello', 'lo')", NULL, "false"},
        {"startsWith('he', 'hello')", NULL, "false"},
        {"endsWith('hello', 'lo')", NULL, "true"},
        {"endsWith('lo', 'hello')", NULL, "false"},
        {"endsWith('', '')", NULL, "true"},
        {"startsWith(@, 'x')", NULL, "false"},
        {"startsWith(1, 'x')", NULL,
         "!col 1: argument 1 of startsWith() must be a string, got number"},
        {"endsWith('x', null)", NULL,
         "!col 1: argument 2 of endsWith() must be a string, got null"},
        /* duration: seconds */
        {"duration('5m')", NULL, "300"},
        {"duration('1m30s')", NULL, "90"},
        {"duration('500ms')", NULL, "0.5"},
        {"duration(2)", NULL, "2"},
        {"duration(@) < duration('5m')", "\"30s\"", "true"},
        {"duration(@) < duration('5m')", "\"1h\"", "false"},
        {"duration('5x')", NULL, "!col 1: duration(): unknown unit"},
        {"duration(@)", NULL, "!col 1: duration() needs a string such as '5m', got null"},
        /* quantity: whole units */
        {"quantity('500m')", NULL, "0.5"},
        {"quantity('2Gi')", NULL, "2147483648"},
        {"quantity('1.5')", NULL, "1.5"},
        {"quantity('4k')", NULL, "4000"},
        {"quantity(@) >= quantity('2Gi')", "\"4Gi\"", "true"},
        {"quantity(@) >= quantity('2Gi')", "\"512Mi\"", "false"},
        {"quantity(3)", NULL, "3"},
        {"quantity('abc')", NULL, "!col 1: quantity(): "},
        {"quantity(true)", NULL, "!col 1: quantity() needs a string such as '2Gi', got boolean"},
        /* exists */
        {"exists(@.a)", "{\"a\": 0}", "true"},
        {"exists(@.b)", "{\"a\": 0}", "false"},
        {"exists(@.a)", "{\"a\": null}", "false"},
        {"exists(@)", NULL, "false"},
        /* int */
        {"int(3.7)", NULL, "3"},
        {"int(-3.7)", NULL, "-3"},
        {"int('42')", NULL, "42"},
        {"int('4.9')", NULL, "4"},
        {"int(@) > 5", "\"10\"", "true"},
        {"int('x')", NULL, "!col 1: int() cannot read \"x\" as a number"},
        {"int('')", NULL, "!col 1: int() cannot read \"\" as a number"},
        {"int(' 1')", NULL, "!col 1: int() cannot read"},
        {"int(null)", NULL, "!col 1: int() needs a number or a string, got null"},
        /* string */
        {"string(2)", NULL, "\"2\""},
        {"string(2.5)", NULL, "\"2.5\""},
        {"string(true)", NULL, "\"true\""},
        {"string(null)", NULL, "\"null\""},
        {"string('a')", NULL, "\"a\""},
        {"string([1, 'a'])", NULL, "\"[1,\\\"a\\\"]\""},
        {"string(@.cpu) == '2'", "{\"cpu\": 2}", "true"},
        /* count, filter, any, all */
        {"count(@)", "[1, 2, 3]", "3"},
        {"count(@, x => x.state == 'running')", servers, "2"},
        {"count(@, x => x.state == 'running') == 2", servers, "true"},
        {"count(@.missing)", "{}", "0"},
        {"count('a')", NULL, "!col 1: count() needs a list, got string"},
        {"count(@, x => x)", "[1]",
         "!col 15: the lambda of count() needs true or false, got number"},
        {"filter(@, x => x > 1)", "[1, 2, 3]", "[2,3]"},
        {"filter(@, x => x.zone == 'b')[0].state", servers, "\"stopped\""},
        {"len(filter(@, x => x.zone == 'b'))", servers, "2"},
        {"filter(null, x => true)", NULL, "[]"},
        {"any(@, x => x == 2)", "[1, 2, 3]", "true"},
        {"any(@, x => x == 5)", "[1, 2, 3]", "false"},
        {"any(@, x => true)", NULL, "false"},
        {"all(@, x => x > 0)", "[1, 2, 3]", "true"},
        {"all(@, x => x > 1)", "[1, 2, 3]", "false"},
        {"all([], x => false)", NULL, "true"},
        {"all(@, x => true)", NULL, "true"},
        {"any(@, x => any(x, y => y == 3))", "[[1, 2], [3]]", "true"},
        {"any(@, x => any(x, x => x == 3))", "[[1, 2], [3]]", "true"}, /* inner x shadows */
        {"all(@, x => any(x, y => y == x[0]))", "[[1, 2], [3]]", "true"},
        {"count(@.items, s => s.zone == @.zone)",
         "{\"zone\": \"a\", \"items\": [{\"zone\": \"a\"}, {\"zone\": \"b\"}]}", "1"},
        {"@.status == 'True' && @.reason != 'Failed'", "{\"status\": \"True\", \"reason\": \"Ok\"}",
         "true"},
    };
    CHECK(cases);
#undef servers
}

/* src must fail to parse with exactly want. */
static void check_syntax(const char *src, const char *want)
{
    char err[512] = "";
    sr_expr *e = sr_expr_parse(src, err, sizeof err);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_STRING_EQUAL(err, want);
    if (e || strcmp(err, want))
        fprintf(stderr, "\n  %s\n    want %s\n    got  %s\n", src, want, err);
    sr_expr_free(e);
}

#define VALUE_WANTED                                                                               \
    "expected a value (@, a number, a 'string', true, false, null, [a list], (…) or a function " \
    "call), found "

static void test_syntax_errors(void)
{
    static const struct {
        const char *src, *want;
    } cases[] = {
        {"", "col 1: empty expression"},
        {"   ", "col 1: empty expression"},
        {"(@ >= )", "col 7: " VALUE_WANTED "')'"},
        {"(@ >= 2",
         "col 8: expected ')' to close the '(' at col 1, found the end of the expression"},
        {"(@ >= 2))", "col 9: unexpected ')' after the end of the expression"},
        {"@ 1", "col 3: unexpected '1' after the end of the expression"},
        {"len(@ 2)", "col 7: expected ')' after arguments, found '2'"},
        {"len(@", "col 6: expected ')' after arguments, found the end of the expression"},
        {"len(@, 1)", "col 1: len() takes 1 argument, got 2"},
        {"matches(@)", "col 1: matches() takes 2 arguments, got 1"},
        {"count()", "col 1: count() takes 1 or 2 arguments, got 0"},
        {"lenn(@)", "col 1: unknown function 'lenn': did you mean len()?"},
        {"startswith(@, 'a')", "col 1: unknown function 'startswith': did you mean startsWith()?"},
        {"foo(@)", "col 1: unknown function 'foo'; functions: len, matches, contains, startsWith, "
                   "endsWith, duration, quantity, exists, int, string, count, filter, any, all"},
        {"@ = 1", "col 3: '=' is not an operator: use '==' to compare"},
        {"@ & true", "col 3: '&' is not an operator: use '&&'"},
        {"@ | true", "col 3: '|' is not an operator: use '||'"},
        {"1 < 2 < 3", "col 7: comparisons do not chain: write a < b && b < c"},
        {"1 == 1 == true", "col 8: comparisons do not chain: write a < b && b < c"},
        {"@ == !true", "col 6: '!' applies to a whole comparison, so it cannot stand here: write "
                       "(!x) or !(a == b)"},
        {"'abc", "col 1: unterminated string: add the closing '"},
        {"@ == \"abc", "col 6: unterminated string: add the closing \""},
        {"@ # x", "col 3: unexpected character '#'"},
        {"@ == 5m", "col 6: bad number '5m': durations and quantities are strings, e.g. "
                    "duration('5m') or quantity('5m')"},
        {"@.", "col 3: expected a field name after '.', found the end of the expression; write "
               "['key'] for other keys, [0] for a list element"},
        {"@.'a'", "col 3: expected a field name after '.', found 'a'; write ['key'] for other "
                  "keys, [0] for a list element"},
        {"@.items.0", "col 9: expected a field name after '.', found '0'; write ['key'] for other "
                      "keys, [0] for a list element"},
        {"@[0", "col 4: expected ']' to close the '[' at col 2, found the end of the expression"},
        {"[1, 2", "col 6: expected ',' or ']' in the list opened at col 1, found the end of the "
                  "expression"},
        {"[1 2]", "col 4: expected ',' or ']' in the list opened at col 1, found '2'"},
        {"[1,]", "col 4: " VALUE_WANTED "']'"},
        {"x", "col 1: unknown name 'x': use @ for the value being matched, or quote a string: 'x'"},
        {"@ == Running", "col 6: unknown name 'Running': use @ for the value being matched, or "
                         "quote a string: 'Running'"},
        {"x => x", "col 1: a lambda (x => …) is only allowed as the second argument of count, "
                   "filter, any or all"},
        {"filter(@, 1)", "col 1: the second argument of filter() must be a lambda such as x => "
                         "x.state == 'running'"},
        {"count(@, true => true)", "col 10: 'true' cannot name a lambda parameter"},
        {"any(x => true, @)", "col 5: a lambda (x => …) is only allowed as the second argument of "
                              "count, filter, any or all"},
        {"matches(@, '(')", "col 12: bad regular expression '(': "},
        {"@.a in", "col 7: " VALUE_WANTED "the end of the expression"},
        {"in", "col 1: " VALUE_WANTED "'in'"},
        {"@ +", "col 4: " VALUE_WANTED "the end of the expression"},
        {"\xc3\xa9", "col 1: unexpected byte 0xc3 (outside a string)"},
        {"'\xc3\xa9' == 1 ]", "col 10: unexpected ']' after the end of the expression"},
        {"1e999", "col 1: number '1e999' is out of range"},
        {"'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' 1",
         "col 39: unexpected '1' after the end of the expression"},
        {"1 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'",
         "col 3: unexpected 'aaaaaaaaaaaaaaaaaaaaaaa… after the end of the expression"},
        {"1 "
         "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
         "\xa9\xc3\xa9\"",
         "col 3: unexpected "
         "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
         "\xa9… after the end of "
         "the expression"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* A bad regex's reason comes from the C library: compare the prefix. */
        if (strstr(cases[i].want, "bad regular expression")) {
            char err[512] = "";
            sr_expr *e = sr_expr_parse(cases[i].src, err, sizeof err);
            CU_ASSERT_PTR_NULL(e);
            CU_ASSERT_EQUAL(strncmp(err, cases[i].want, strlen(cases[i].want)), 0);
            CU_ASSERT(strlen(err) > strlen(cases[i].want));
            sr_expr_free(e);
            continue;
        }
        check_syntax(cases[i].src, cases[i].want);
    }
}

static void test_limits(void)
{
    char src[4096];
    /* Deep parentheses: refused, not a stack overflow. */
    size_t n = 0;
    for (int i = 0; i < 1000; i++) src[n++] = '(';
    src[n++] = '1';
    for (int i = 0; i < 1000; i++) src[n++] = ')';
    src[n] = '\0';
    char err[256] = "";
    sr_expr *e = sr_expr_parse(src, err, sizeof err);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too deeply nested"));

    /* A long left-leaning chain: refused past the height limit … */
    n = 0;
    for (int i = 0; i < 300; i++) n += (size_t)sprintf(src + n, "%s1", i ? "+" : "");
    e = sr_expr_parse(src, err, sizeof err);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too deeply nested (more than 256 levels)"));
    /* … and fine below it. */
    n = 0;
    for (int i = 0; i < 200; i++) n += (size_t)sprintf(src + n, "%s1", i ? "+" : "");
    cJSON *v = NULL;
    e = sr_expr_parse(src, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e) v = sr_expr_eval(e, NULL, err, sizeof err);
    CU_ASSERT(cJSON_IsNumber(v) && v->valuedouble == 200);
    cJSON_Delete(v);
    sr_expr_free(e);

    /* Many !/-: bounded the same way. */
    memset(src, '!', 500);
    strcpy(src + 500, "true");
    e = sr_expr_parse(src, err, sizeof err);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too deeply nested"));

    /* Too many lambdas. */
    n = 0;
    for (int i = 0; i < 9; i++)
        n += (size_t)sprintf(src + n, "%sany(@, x%d => true)", i ? " && " : "", i);
    e = sr_expr_parse(src, err, sizeof err);
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too many lambdas in one expression (at most 8)"));

    /* A value deeper than anything a parser hands us: errors, no crash. */
    cJSON *deep = cJSON_CreateArray(), *cur = deep;
    for (int i = 0; i < 3000; i++) {
        cJSON *k = cJSON_CreateArray();
        cJSON_AddItemToArray(cur, k);
        cur = k;
    }
    const char *deep_exprs[] = {"@", "string(@)", "[@]", "filter([@], x => true)"};
    for (size_t i = 0; i < sizeof deep_exprs / sizeof deep_exprs[0]; i++) {
        e = sr_expr_parse(deep_exprs[i], err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(e);
        v = sr_expr_eval(e, deep, err, sizeof err);
        CU_ASSERT_PTR_NULL(v);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "nested deeper than 1000 levels"));
        cJSON_Delete(v);
        sr_expr_free(e);
    }
    bool b = true;
    e = sr_expr_parse("@ == @", err, sizeof err);
    CU_ASSERT_EQUAL(sr_expr_eval_bool(e, deep, &b, err, sizeof err), 0);
    CU_ASSERT_FALSE(b); /* too deep to compare: unequal, documented */
    sr_expr_free(e);
    e = sr_expr_parse("len(@) == 1", err, sizeof err);
    CU_ASSERT_EQUAL(sr_expr_eval_bool(e, deep, &b, err, sizeof err), 0);
    CU_ASSERT_TRUE(b);
    sr_expr_free(e);
    cJSON_Delete(deep);
}

static void test_api(void)
{
    CU_ASSERT_TRUE(sr_expr_is("(a)"));
    CU_ASSERT_TRUE(sr_expr_is("()"));
    CU_ASSERT_TRUE(sr_expr_is("(@ >= 2)"));
    CU_ASSERT_FALSE(sr_expr_is("("));
    CU_ASSERT_FALSE(sr_expr_is(")"));
    CU_ASSERT_FALSE(sr_expr_is("a)"));
    CU_ASSERT_FALSE(sr_expr_is("(a"));
    CU_ASSERT_FALSE(sr_expr_is(" (a)"));
    CU_ASSERT_FALSE(sr_expr_is(""));
    CU_ASSERT_FALSE(sr_expr_is(NULL));

    char err[256] = "";
    bool b = false;
    sr_expr *e = sr_expr_parse("@ + 1", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_EQUAL(sr_expr_eval_bool(e, NULL, &b, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "col 3: '+' needs two numbers or two strings, got null and number");
    cJSON *two = cJSON_CreateNumber(2);
    CU_ASSERT_EQUAL(sr_expr_eval_bool(e, two, &b, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "the expression gives a number, not true or false");
    cJSON *v = sr_expr_eval(e, two, err, sizeof err);
    CU_ASSERT(cJSON_IsNumber(v) && v->valuedouble == 3);
    CU_ASSERT_STRING_EQUAL(err, "");
    cJSON_Delete(v);
    sr_expr_free(e);

    /* The result is a copy: @ is not modified and outlives it. */
    e = sr_expr_parse("@", err, sizeof err);
    v = sr_expr_eval(e, two, err, sizeof err);
    CU_ASSERT(v != two && cJSON_IsNumber(v));
    cJSON_Delete(v);
    sr_expr_free(e);
    cJSON_Delete(two);

    CU_ASSERT_EQUAL(sr_expr_eval_bool(NULL, NULL, &b, err, sizeof err), -1);
    CU_ASSERT_PTR_NULL(sr_expr_eval(NULL, NULL, err, sizeof err));
    CU_ASSERT_PTR_NULL(sr_expr_parse(NULL, err, sizeof err));
    CU_ASSERT_PTR_NULL(sr_expr_parse("(", NULL, 0)); /* no error buffer: still fine */
    CU_ASSERT_PTR_NULL(sr_expr_parse("(", err, 4));  /* a short one: cut, terminated */
    CU_ASSERT_EQUAL(strlen(err), 3);
    sr_expr_free(NULL);
}

/* One parsed expression shared by threads (expr.h promises it). */
static sr_expr *shared_expr;

static void *eval_many(void *arg)
{
    cJSON *at = cJSON_Parse((const char *)arg);
    long bad = 0;
    for (int i = 0; i < 2000; i++) {
        bool b = false;
        char err[128];
        if (sr_expr_eval_bool(shared_expr, at, &b, err, sizeof err) < 0 || !b) bad++;
    }
    cJSON_Delete(at);
    return (void *)bad;
}

static void test_threads(void)
{
    char err[128];
    shared_expr = sr_expr_parse("matches(@.id, '^i-[0-9a-f]+$') && count(@.ips, x => "
                                "startsWith(x, '10.')) == 1",
                                err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(shared_expr);
    pthread_t t[4];
    const char *at = "{\"id\": \"i-00ff\", \"ips\": [\"10.0.0.1\", \"192.168.0.1\"]}";
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, eval_many, (void *)at);
    for (int i = 0; i < 4; i++) {
        void *bad = NULL;
        pthread_join(t[i], &bad);
        CU_ASSERT_PTR_NULL(bad);
    }
    sr_expr_free(shared_expr);
}

/* Random short strings from the language's own pieces: whatever they are,
 * parsing and evaluation return (an expression or an error), never crash
 * and never leak (ASan/UBSan builds make that a test). */
static void test_fuzz(void)
{
    static const char *const pieces[] = {
        "@",        ".",      "[",     "]",       "(",        ")",          ",",        "'",
        "\"",       "1",      "2.5",   "-",       "+",        "*",          "/",        "!",
        "==",       "!=",     "<",     "<=",      ">",        ">=",         "&&",       "||",
        "&",        "|",      "=",     "=>",      "in",       "true",       "false",    "null",
        "a",        "x",      "len",   "matches", "contains", "startsWith", "endsWith", "duration",
        "quantity", "exists", "int",   "string",  "count",    "filter",     "any",      "all",
        " ",        "'5m'",   "'2Gi'", "'^a'",    "'('",      "0",          "1e3",      "\\",
        "\xc3\xa9", "#",      "x =>",  ".a",      "[0]",      "[-1]",       "'a'",
    };
    static const char *const ats[] = {
        NULL,
        "null",
        "0",
        "\"abc\"",
        "[1, \"a\", null, [2]]",
        "{\"a\": {\"b\": [1, 2, {\"c\": \"x\"}]}, \"x\": \"5m\", \"1\": true}",
    };
    cJSON *vals[sizeof ats / sizeof ats[0]];
    for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++)
        vals[i] = ats[i] ? cJSON_Parse(ats[i]) : NULL;
    uint64_t seed = 0x2545F4914F6CDD1DULL;
    size_t npieces = sizeof pieces / sizeof pieces[0];
    long parsed = 0, failed = 0;
    for (int iter = 0; iter < 30000; iter++) {
        char src[256];
        size_t n = 0;
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        int len = 1 + (int)(seed % 12);
        for (int k = 0; k < len; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            const char *p = pieces[seed % npieces];
            size_t pl = strlen(p);
            if (n + pl + 1 >= sizeof src) break;
            memcpy(src + n, p, pl);
            n += pl;
        }
        /* Every few rounds, random bytes instead. */
        if (iter % 7 == 0)
            for (size_t k = 0; k < n; k++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                if (seed % 5 == 0) src[k] = (char)(1 + seed % 255);
            }
        src[n] = '\0';
        char err[256] = "";
        sr_expr *e = sr_expr_parse(src, err, sizeof err);
        if (!e) {
            failed++;
            CU_ASSERT(strncmp(err, "col ", 4) == 0); /* every syntax error has a column */
            continue;
        }
        parsed++;
        for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++) {
            cJSON *v = sr_expr_eval(e, vals[i], err, sizeof err);
            CU_ASSERT(v != NULL || err[0] != '\0'); /* a value or a reason */
            cJSON_Delete(v);
            bool b;
            sr_expr_eval_bool(e, vals[i], &b, err, sizeof err);
        }
        sr_expr_free(e);
    }
    fprintf(stderr, " [%ld parsed, %ld refused] ", parsed, failed);
    CU_ASSERT(parsed > 500); /* the loop reaches the evaluator, not only the lexer */
    CU_ASSERT(failed > 500);
    for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++) cJSON_Delete(vals[i]);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* Appends a random expression that follows the grammar (depth-bounded),
 * so the evaluator meets every operator and function with every type. */
static void gen(uint64_t *s, int depth, char *out, size_t outsz)
{
    static const char *const atoms[] = {
        "@",     "@.a",  "@.a.b", "@.a.b[2].c", "@.x",   "@[0]", "@[-1]", "@['1']", "0",
        "2",     "-1.5", "'5m'",  "'2Gi'",      "'abc'", "''",   "'^a'",  "'('",    "true",
        "false", "null", "[]",    "[1, 'a']",   "[@]",   "x",    "x.c"};
    static const char *const ops[] = {"||", "&&", "==", "!=", "<", "<=", ">",
                                      ">=", "in", "+",  "-",  "*", "/"};
    static const char *const fn1[] = {"len", "duration", "quantity", "exists",
                                      "int", "string",   "count"};
    static const char *const fn2[] = {"matches", "contains", "startsWith", "endsWith"};
    static const char *const fnl[] = {"count", "filter", "any", "all"};
    size_t n = strlen(out);
    if (n + 64 >= outsz) return;
    uint64_t r = rnd(s) % (depth > 3 ? 1 : 7);
    switch (r) {
    case 0:
        strcat(out, atoms[rnd(s) % (sizeof atoms / sizeof atoms[0])]);
        break;
    case 1:
    case 2:
        strcat(out, "(");
        gen(s, depth + 1, out, outsz);
        strcat(out, rnd(s) % 2 ? " " : "");
        strcat(out, ops[rnd(s) % (sizeof ops / sizeof ops[0])]);
        strcat(out, " ");
        gen(s, depth + 1, out, outsz);
        strcat(out, ")");
        break;
    case 3:
        strcat(out, rnd(s) % 2 ? "!(" : "-(");
        gen(s, depth + 1, out, outsz);
        strcat(out, ")");
        break;
    case 4:
        strcat(out, fn1[rnd(s) % (sizeof fn1 / sizeof fn1[0])]);
        strcat(out, "(");
        gen(s, depth + 1, out, outsz);
        strcat(out, ")");
        break;
    case 5:
        strcat(out, fn2[rnd(s) % (sizeof fn2 / sizeof fn2[0])]);
        strcat(out, "(");
        gen(s, depth + 1, out, outsz);
        strcat(out, ", ");
        gen(s, depth + 1, out, outsz);
        strcat(out, ")");
        break;
    default:
        strcat(out, fnl[rnd(s) % (sizeof fnl / sizeof fnl[0])]);
        strcat(out, "(");
        gen(s, depth + 1, out, outsz);
        strcat(out, ", x => ");
        gen(s, depth + 1, out, outsz);
        strcat(out, ")");
        break;
    }
}

/* Grammar-shaped random expressions, some with one byte changed: most
 * parse, so evaluation is what gets shaken here. */
static void test_fuzz_grammar(void)
{
    static const char *const ats[] = {
        NULL,
        "1",
        "\"5m\"",
        "[\"a\", 2, null]",
        "{\"a\": {\"b\": [1, 2, {\"c\": \"x\"}]}, \"x\": [\"1Gi\", \"abc\"], \"1\": true}",
    };
    cJSON *vals[sizeof ats / sizeof ats[0]];
    for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++)
        vals[i] = ats[i] ? cJSON_Parse(ats[i]) : NULL;
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    long parsed = 0, values = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char src[1024] = "";
        /* lambdas name x; outside one, x is an unknown name: a parse error */
        strcat(src, "any([@], x => ");
        gen(&seed, 0, src, sizeof src - 2);
        strcat(src, " == null || true)");
        if (iter % 3 == 0) {
            size_t n = strlen(src), at = rnd(&seed) % n;
            if (rnd(&seed) % 2)
                memmove(src + at, src + at + 1, n - at); /* drop a byte */
            else
                src[at] = "()[]'.,!=x@"[rnd(&seed) % 11];
        }
        char err[256] = "";
        sr_expr *e = sr_expr_parse(src, err, sizeof err);
        if (!e) {
            CU_ASSERT(strncmp(err, "col ", 4) == 0);
            continue;
        }
        parsed++;
        for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++) {
            cJSON *v = sr_expr_eval(e, vals[i], err, sizeof err);
            CU_ASSERT(v != NULL || err[0] != '\0');
            values += v != NULL;
            cJSON_Delete(v);
        }
        sr_expr_free(e);
    }
    fprintf(stderr, " [%ld parsed, %ld values] ", parsed, values);
    CU_ASSERT(parsed > 10000);
    CU_ASSERT(values > 10000);
    for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++) cJSON_Delete(vals[i]);
}

static CU_TestInfo expr_tests[] = {
    {"precedence and associativity", test_precedence},
    {"short-circuit && and ||", test_short_circuit},
    {"values, fields, indexes, equality, in", test_values},
    {"type errors", test_type_errors},
    {"every function", test_functions},
    {"syntax errors with columns", test_syntax_errors},
    {"limits: nesting, height, lambdas, deep values", test_limits},
    {"API edges", test_api},
    {"one expression, many threads", test_threads},
    {"fuzz: random input never crashes", test_fuzz},
    {"fuzz: random grammar-shaped expressions", test_fuzz_grammar},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"runner_expr", NULL, NULL, NULL, NULL, expr_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
