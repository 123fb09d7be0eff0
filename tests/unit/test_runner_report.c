/* test_runner_report.c — the four report files and compare.
 *
 * report.json is checked against docs/report.schema.json (by a small
 * validator of the keywords that schema uses) and read back into an equal
 * tree; junit.xml and report.html are parsed by a small XML checker
 * (well-formed, entities valid, counts consistent) with hostile strings in
 * the run; compare must flag a 20% p95 rise at a 10% threshold and not at
 * 30%. No dependency beyond CUnit and cJSON. */
#include "../testutil.h"

#include "../../scenarios/runner/report.h"
#include "../../scenarios/runner/result.h"
#include "../../scenarios/runner/slo.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Hostile text: markup, entities, quotes, control characters (ESC, BEL,
 * NUL-adjacent), a CDATA end, invalid UTF-8 and valid multibyte text. */
#define NASTY                                                                                      \
    "<b>&amp;</b> \"dq\" 'sq' ]]> --> \x01\x1b[31mred\x1b[0m \xff\xfe\xc0\xaf ✓ 日本 | `x`"

/* ================================================================ fixture */

static void set(char **field, const char *v)
{
    sr_set_str(field, v);
}

/* Three scenarios: one passing with every measurement, one failing with
 * hostile strings and no samples, one that errored before any step. */
static sr_run *fixture(void)
{
    sr_run *r = sr_run_new("20261126-142126-beef", "local");
    set(&r->runner_version, "0.1.0");
    r->start_ms = 1795000000123;
    r->duration_s = 93.25;
    r->runner_cpu_s = 1.5;
    r->seed = 42;
    r->time_scale = 10;
    r->parallel = 2;

    sr_scenario_result *s = sr_run_add_scenario(r, "smoke", "scenarios/suites/smoke/a.yaml");
    set(&s->ns, "sr-smoke-1a2b");
    s->tags = calloc(2, sizeof *s->tags);
    s->tags[0] = strdup("smoke");
    s->tags[1] = strdup("fast");
    s->n_tags = 2;
    s->start_ms = 1795000001000;
    s->duration_s = 40;
    s->real_duration_s = 4;
    s->time_scale = 10;
    s->seed = 42;
    sr_step_result *st = sr_result_add_step(s, "create ten", "scenarios/suites/smoke/a.yaml", 12);
    st->start_s = 0.5;
    st->duration_s = 1.25;
    st = sr_result_add_step(s, "all ready", "scenarios/suites/smoke/a.yaml", 20);
    st->start_s = 1.75;
    st->duration_s = 30;
    sr_result_add_check(s, SR_CHECK_INVARIANT, "oneInstancePerObject", SR_PASS, 0, 0, "", NULL);
    sr_result_add_check(s, SR_CHECK_SLO, "createToReady.p95", SR_PASS, 3.25, 10, "s", NULL);
    for (int i = 0; i < 10; i++) sr_result_add_ctr(s, 1.0 + i * 0.25);
    sr_result_add_recovery(s, 12.5);
    sr_result_add_event(s, "outage", "503 on every call", 5, 35);
    sr_result_add_event(s, "crash", "2 instances", 20, -1);
    for (int t = 0; t <= 40; t++) {
        sr_sample smp = {.t_s = t,
                         .objects = 10,
                         .ready = t < 5    ? t * 2
                                  : t < 35 ? 6
                                           : 10,
                         .cpu_cores = 0.05 + (t % 7) * 0.01,
                         .rss_bytes = 40e6 + t * 1e5};
        sr_result_add_sample(s, &smp);
    }
    sr_result_count(s, "BackOff", 3);
    sr_result_count(s, "CloudUnavailable", 7);
    s->objects_created = 10;
    s->cloud_calls = 110;
    s->kube_writes = 40;
    s->reconciles = 200;
    s->reconcile_errors = 4;
    s->cpu_peak_cores = 0.2;
    s->rss_peak_bytes = 50.0 * 1024 * 1024;

    s = sr_run_add_scenario(r, "crash-failover", "scenarios/suites/chaos/crash-failover.yaml");
    s->status = SR_FAIL;
    set(&s->message, "step \"" NASTY "\" failed: 2 instances");
    s->duration_s = 12;
    s->real_duration_s = 1.2;
    s->time_scale = 10;
    st = sr_result_add_step(s, "apply " NASTY, "scenarios/suites/chaos/crash-failover.yaml", 7);
    st->status = SR_FAIL;
    st->duration_s = 12;
    set(&st->message, "expected 1 instance, got 2 " NASTY);
    set(&st->diff, "status.phase: expected \"Running\", got \"Failed\"\n" NASTY);
    set(&st->output, "line1\nline2 \a"
                     "bell " NASTY);
    sr_result_add_event(s, "crash", "instance of " NASTY, 4, -1);
    sr_result_add_event(s, "fault", "reset on GET /v1/instances/*", 2, 9);
    st = sr_result_add_step(s, "later", "scenarios/suites/chaos/crash-failover.yaml", 30);
    st->status = SR_SKIP;
    sr_result_add_check(s, SR_CHECK_INVARIANT, "noDuplicateCreates", SR_FAIL, 2, 0, "",
                        "2 duplicate creates: key " NASTY);
    sr_result_add_check(s, SR_CHECK_SLO, "operatorCPU", SR_FAIL, 70, 60, "%",
                        "peak 0.35 cores of a 0.5 cores limit: measured 70.0%, threshold 60.0%");
    sr_result_add_check(s, SR_CHECK_SLO, "recoveryTime", SR_SKIP, NAN, 60, "s",
                        "no recovery was measured (no fault was cleared)");

    s = sr_run_add_scenario(r, "setup-broken", "b.yaml");
    s->status = SR_ERROR;
    set(&s->message, "mockcloud did not start: port file never appeared");
    return r;
}

/* Whatever a writer printed, as a string (caller frees). */
static char *capture(int (*fn)(const sr_run *, FILE *), const sr_run *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fn(r, f), 0);
    fclose(f);
    return buf;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* ======================================================= a small XML DOM */

typedef struct xnode {
    char *name;
    char **attrs; /* name, value, name, value … (values unescaped) */
    size_t n_attrs;
    struct xnode **kids;
    size_t n_kids;
    char *text; /* all character data directly inside, unescaped */
} xnode;

static char xerr[512];

static void xfree(xnode *n)
{
    if (!n) return;
    free(n->name);
    for (size_t i = 0; i < n->n_attrs * 2; i++) free(n->attrs[i]);
    free(n->attrs);
    for (size_t i = 0; i < n->n_kids; i++) xfree(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static void sappend(char **s, const char *add, size_t n)
{
    size_t old = *s ? strlen(*s) : 0;
    *s = realloc(*s, old + n + 1);
    memcpy(*s + old, add, n);
    (*s)[old + n] = '\0';
}

static bool valid_utf8_xml(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') return false;
        if (*p == 0x7F) return false;
        if (*p < 0x80) {
            p++;
            continue;
        }
        int n = (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
        if (n == 0 || *p == 0xC0 || *p == 0xC1) return false;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80) return false;
        p += n;
    }
    return true;
}

/* Decodes the entity at *p (at '&') onto out; false if it is not one of
 * XML's five or a character reference. */
static bool entity(const char **p, char **out)
{
    static const struct {
        const char *e, *c;
    } named[] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}};
    for (size_t i = 0; i < 5; i++)
        if (strncmp(*p, named[i].e, strlen(named[i].e)) == 0) {
            sappend(out, named[i].c, 1);
            *p += strlen(named[i].e);
            return true;
        }
    if ((*p)[1] != '#') return false;
    char *end;
    bool hex = (*p)[2] == 'x';
    long cp = strtol(*p + (hex ? 3 : 2), &end, hex ? 16 : 10);
    if (*end != ';' || end == *p + (hex ? 3 : 2) || cp <= 0 || cp > 0x10FFFF) return false;
    if (cp < 0x20 && cp != 9 && cp != 10 && cp != 13) return false;
    char u[5] = {0};
    if (cp < 0x80)
        u[0] = (char)cp;
    else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
    }
    sappend(out, u, strlen(u));
    *p = end + 1;
    return true;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

#define XFAIL(...)                                                                                 \
    do {                                                                                           \
        snprintf(xerr, sizeof xerr, __VA_ARGS__);                                                  \
        goto fail;                                                                                 \
    } while (0)

/* Parses a whole document; the root element, or NULL with xerr. Accepts a
 * prolog (<?xml?>, <!DOCTYPE>, comments) and nothing else around the root. */
static xnode *xml_parse(const char *doc)
{
    xnode *stack[256];
    int depth = 0;
    xnode *root = NULL;
    const char *p = doc;
    if (!valid_utf8_xml(doc)) XFAIL("invalid UTF-8 or a control character");
    while (*p) {
        if (strncmp(p, "<?", 2) == 0 || strncmp(p, "<!--", 4) == 0 ||
            (strncmp(p, "<!", 2) == 0 && depth == 0)) {
            const char *end = strstr(p, strncmp(p, "<!--", 4) == 0 ? "-->" : ">");
            if (!end) XFAIL("unterminated declaration");
            p = end + 1;
            continue;
        }
        if (*p == '<' && p[1] == '/') {
            p += 2;
            const char *n = p;
            while (name_char(*p, p == n)) p++;
            if (depth == 0 || strncmp(stack[depth - 1]->name, n, (size_t)(p - n)) != 0 ||
                stack[depth - 1]->name[p - n] != '\0')
                XFAIL("closing tag </%.*s> does not match <%s>", (int)(p - n), n,
                      depth ? stack[depth - 1]->name : "(none)");
            while (*p == ' ' || *p == '\n') p++;
            if (*p != '>') XFAIL("bad closing tag");
            p++;
            depth--;
            continue;
        }
        if (*p == '<') {
            p++;
            const char *n = p;
            if (!name_char(*p, true)) XFAIL("bad tag name at \"%.20s\"", n);
            while (name_char(*p, p == n)) p++;
            if (depth == 0 && root) XFAIL("a second root element <%.*s>", (int)(p - n), n);
            if (depth == 256) XFAIL("too deep");
            xnode *x = calloc(1, sizeof *x);
            x->name = strndup(n, (size_t)(p - n));
            if (depth)
                stack[depth - 1]->kids =
                    realloc(stack[depth - 1]->kids, (stack[depth - 1]->n_kids + 1) * sizeof *x),
                              stack[depth - 1]->kids[stack[depth - 1]->n_kids++] = x;
            else
                root = x;
            for (;;) {
                const char *ws = p;
                while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
                if (*p == '/' && p[1] == '>') {
                    p += 2;
                    break;
                }
                if (*p == '>') {
                    p++;
                    stack[depth++] = x;
                    break;
                }
                if (p == ws) XFAIL("no blank before an attribute in <%s>", x->name);
                const char *an = p;
                if (!name_char(*p, true)) XFAIL("bad attribute name in <%s>", x->name);
                while (name_char(*p, p == an)) p++;
                char *aname = strndup(an, (size_t)(p - an));
                for (size_t i = 0; i < x->n_attrs; i++)
                    if (strcmp(x->attrs[2 * i], aname) == 0) {
                        free(aname);
                        XFAIL("attribute given twice in <%s>", x->name);
                    }
                x->attrs = realloc(x->attrs, (x->n_attrs + 1) * 2 * sizeof *x->attrs);
                x->attrs[2 * x->n_attrs] = aname;
                x->attrs[2 * x->n_attrs + 1] = strdup("");
                x->n_attrs++;
                if (*p != '=' || (p[1] != '"' && p[1] != '\''))
                    XFAIL("attribute %s without a quoted value", aname);
                char q = p[1];
                p += 2;
                char **val = &x->attrs[2 * x->n_attrs - 1];
                while (*p != q) {
                    if (!*p) XFAIL("unterminated attribute");
                    if (*p == '<') XFAIL("'<' inside attribute %s", aname);
                    if (*p == '&') {
                        if (!entity(&p, val)) XFAIL("bad entity in attribute %s", aname);
                        continue;
                    }
                    sappend(val, p, 1);
                    p++;
                }
                p++;
            }
            continue;
        }
        /* Character data. */
        if (depth == 0) {
            if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
                XFAIL("text outside the root: \"%.20s\"", p);
            p++;
            continue;
        }
        if (*p == '&') {
            if (!entity(&p, &stack[depth - 1]->text)) XFAIL("bad entity \"%.12s\"", p);
            continue;
        }
        if (strncmp(p, "]]>", 3) == 0) XFAIL("]]> in text");
        sappend(&stack[depth - 1]->text, p, 1);
        p++;
    }
    if (depth != 0) XFAIL("<%s> is never closed", stack[depth - 1]->name);
    if (!root) XFAIL("no root element");
    return root;
fail:
    xfree(root);
    return NULL;
}

static const char *xattr(const xnode *n, const char *name)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[2 * i], name) == 0) return n->attrs[2 * i + 1];
    return NULL;
}

static long xattr_long(const xnode *n, const char *name)
{
    const char *v = xattr(n, name);
    return v ? strtol(v, NULL, 10) : -1;
}

static size_t xcount(const xnode *n, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < n->n_kids; i++) c += strcmp(n->kids[i]->name, name) == 0;
    return c;
}

static const xnode *xfind(const xnode *n, const char *name)
{
    if (strcmp(n->name, name) == 0) return n;
    for (size_t i = 0; i < n->n_kids; i++) {
        const xnode *f = xfind(n->kids[i], name);
        if (f) return f;
    }
    return NULL;
}

static void test_xml_checker_rejects(void)
{
    /* The checker itself must be able to fail, or the tests below prove
     * nothing. */
    const char *bad[] = {
        "<a><b></a></b>",
        "<a>x &nbsp; y</a>",
        "<a x=\"1\" x=\"2\"/>",
        "<a x=\"<\"/>",
        "<a>\x01</a>",
        "<a>\xff</a>",
        "<a></a><b></b>",
        "<a>",
        "<a>]]></a>",
        "<a x=1/>",
        "text<a/>",
        "<a>&#1;</a>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xnode *n = xml_parse(bad[i]);
        CU_ASSERT_PTR_NULL(n);
        if (n) fprintf(stderr, "\naccepted: %s\n", bad[i]);
        xfree(n);
    }
    xnode *n = xml_parse("<?xml version=\"1.0\"?>\n<a k=\"&lt;&#233;&#x41;\"><b/>t&amp;u</a>\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(n);
    CU_ASSERT_STRING_EQUAL(xattr(n, "k"), "<éA");
    CU_ASSERT_STRING_EQUAL(n->text, "t&u");
    CU_ASSERT_EQUAL(xcount(n, "b"), 1);
    xfree(n);
}

/* ================================================================= junit */

static void test_junit(void)
{
    sr_run *r = fixture();
    char *xml = capture(sr_report_junit, r);
    xnode *root = xml_parse(xml);
    if (!root) fprintf(stderr, "\njunit.xml not well-formed: %s\n%s\n", xerr, xml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_STRING_EQUAL(root->name, "testsuites");
    CU_ASSERT_EQUAL(xcount(root, "testsuite"), 3);

    /* Counts are consistent everywhere: each suite's attributes match its
     * testcases, and the totals are the sums. */
    long tests = 0, failures = 0, errors = 0, skipped = 0;
    for (size_t i = 0; i < root->n_kids; i++) {
        const xnode *ts = root->kids[i];
        long f = 0, e = 0, sk = 0;
        for (size_t k = 0; k < ts->n_kids; k++) {
            const xnode *tc = ts->kids[k];
            if (strcmp(tc->name, "testcase") != 0) continue;
            CU_ASSERT_STRING_EQUAL(xattr(tc, "classname"), xattr(ts, "name"));
            CU_ASSERT_PTR_NOT_NULL(xattr(tc, "time"));
            f += (long)xcount(tc, "failure");
            e += (long)xcount(tc, "error");
            sk += (long)xcount(tc, "skipped");
            CU_ASSERT(xcount(tc, "failure") + xcount(tc, "error") + xcount(tc, "skipped") <= 1);
        }
        CU_ASSERT_EQUAL(xattr_long(ts, "tests"), (long)xcount(ts, "testcase"));
        CU_ASSERT_EQUAL(xattr_long(ts, "failures"), f);
        CU_ASSERT_EQUAL(xattr_long(ts, "errors"), e);
        CU_ASSERT_EQUAL(xattr_long(ts, "skipped"), sk);
        const char *stamp = xattr(ts, "timestamp");
        CU_ASSERT(stamp && strlen(stamp) == 19 && stamp[10] == 'T');
        tests += xattr_long(ts, "tests");
        failures += f;
        errors += e;
        skipped += sk;
    }
    CU_ASSERT_EQUAL(xattr_long(root, "tests"), tests);
    CU_ASSERT_EQUAL(xattr_long(root, "failures"), failures);
    CU_ASSERT_EQUAL(xattr_long(root, "errors"), errors);
    CU_ASSERT_EQUAL(xattr_long(root, "skipped"), skipped);
    /* The fixture's figures: 4 + 5 + 1 cases; 3 failures; 1 error; 2 skips. */
    CU_ASSERT_EQUAL(tests, 10);
    CU_ASSERT_EQUAL(failures, 3);
    CU_ASSERT_EQUAL(errors, 1);
    CU_ASSERT_EQUAL(skipped, 2);

    const xnode *smoke = root->kids[0];
    CU_ASSERT_STRING_EQUAL(xattr(smoke, "name"), "smoke");
    CU_ASSERT_STRING_EQUAL(xattr(smoke, "time"), "40.000");
    const xnode *crash = root->kids[1];
    const xnode *tc = NULL;
    for (size_t k = 0; k < crash->n_kids; k++)
        if (xcount(crash->kids[k], "failure")) {
            tc = crash->kids[k];
            break;
        }
    CU_ASSERT_PTR_NOT_NULL_FATAL(tc);
    /* The step's name comes back exactly, less what XML cannot carry. */
    CU_ASSERT_PTR_NOT_NULL(strstr(xattr(tc, "name"), "apply <b>&amp;</b> \"dq\" 'sq' ]]> -->"));
    CU_ASSERT_PTR_NOT_NULL(strstr(xattr(tc, "name"), "[31mred[0m"));               /* ESC dropped */
    CU_ASSERT_PTR_NOT_NULL(strstr(xattr(tc, "name"), "\xEF\xBF\xBD\xEF\xBF\xBD")); /* U+FFFD */
    CU_ASSERT_PTR_NOT_NULL(strstr(xattr(tc, "name"), "✓ 日本"));
    CU_ASSERT_STRING_EQUAL(xattr(tc, "file"), "scenarios/suites/chaos/crash-failover.yaml");
    CU_ASSERT_STRING_EQUAL(xattr(tc, "line"), "7");
    const xnode *fail = xfind(tc, "failure");
    CU_ASSERT_PTR_NOT_NULL(strstr(xattr(fail, "message"), "expected 1 instance, got 2 <b>"));
    CU_ASSERT_PTR_NOT_NULL(
        strstr(fail->text, "status.phase: expected \"Running\", got \"Failed\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(fail->text, "crash-failover.yaml:7"));
    const xnode *out = xfind(tc, "system-out");
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    CU_ASSERT_PTR_NOT_NULL(strstr(out->text, "line1\nline2 bell")); /* BEL dropped */
    /* Invariants and SLOs are cases too. */
    CU_ASSERT_PTR_NOT_NULL(strstr(xml, "name=\"invariant: noDuplicateCreates\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(xml, "name=\"slo: operatorCPU\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(xml, "measured 70.0%, threshold 60.0%"));
    /* The errored scenario has its one case with an <error>. */
    const xnode *broken = root->kids[2];
    CU_ASSERT_EQUAL(xcount(broken, "testcase"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(xattr(xfind(broken, "error"), "message"), "mockcloud did not"));
    xfree(root);
    free(xml);

    /* An empty run is still a valid file. */
    sr_run *empty = sr_run_new("e", "local");
    xml = capture(sr_report_junit, empty);
    root = xml_parse(xml);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(xattr_long(root, "tests"), 0);
    xfree(root);
    free(xml);
    sr_run_free(empty);
    sr_run_free(r);
}

/* ====================================================== JSON Schema check */

/* Validates v against schema node sch (root for $ref). Supports exactly the
 * keywords docs/report.schema.json uses, and fails on any other, so the
 * schema cannot grow a keyword this test silently ignores. */
static bool jvalid(const cJSON *v, const cJSON *sch, const cJSON *root, const char *path)
{
    static const char *known[] = {"$schema", "$id",        "title",    "description",
                                  "type",    "properties", "required", "additionalProperties",
                                  "items",   "enum",       "const",    "minimum",
                                  "$ref",    "$defs",      "format"};
    const cJSON *k;
    cJSON_ArrayForEach(k, sch)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= !strcmp(k->string, known[i]);
        if (!ok) {
            snprintf(xerr, sizeof xerr, "%s: unsupported keyword %s", path, k->string);
            return false;
        }
    }
    const cJSON *ref = cJSON_GetObjectItem(sch, "$ref");
    if (ref) {
        const char *prefix = "#/$defs/";
        if (strncmp(ref->valuestring, prefix, strlen(prefix)) != 0) return false;
        const cJSON *target = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "$defs"),
                                                  ref->valuestring + strlen(prefix));
        if (!target) {
            snprintf(xerr, sizeof xerr, "%s: dangling $ref %s", path, ref->valuestring);
            return false;
        }
        if (!jvalid(v, target, root, path)) return false;
    }
    const cJSON *type = cJSON_GetObjectItem(sch, "type");
    if (type) {
        bool ok = false;
        const cJSON *t;
        const cJSON *list = cJSON_IsArray(type) ? type : NULL;
        for (t = list ? list->child : type; t; t = list ? t->next : NULL) {
            const char *n = t->valuestring;
            ok |= (!strcmp(n, "object") && cJSON_IsObject(v)) ||
                  (!strcmp(n, "array") && cJSON_IsArray(v)) ||
                  (!strcmp(n, "string") && cJSON_IsString(v)) ||
                  (!strcmp(n, "number") && cJSON_IsNumber(v)) ||
                  (!strcmp(n, "integer") && cJSON_IsNumber(v) &&
                   v->valuedouble == floor(v->valuedouble)) ||
                  (!strcmp(n, "null") && cJSON_IsNull(v)) ||
                  (!strcmp(n, "boolean") && cJSON_IsBool(v));
            if (!list) break;
        }
        if (!ok) {
            snprintf(xerr, sizeof xerr, "%s: wrong type", path);
            return false;
        }
    }
    const cJSON *c = cJSON_GetObjectItem(sch, "const");
    if (c && !cJSON_Compare(v, c, true)) {
        snprintf(xerr, sizeof xerr, "%s: not the const", path);
        return false;
    }
    const cJSON *en = cJSON_GetObjectItem(sch, "enum");
    if (en) {
        bool ok = false;
        cJSON_ArrayForEach(k, en) ok |= cJSON_Compare(v, k, true);
        if (!ok) {
            snprintf(xerr, sizeof xerr, "%s: not in enum", path);
            return false;
        }
    }
    const cJSON *min = cJSON_GetObjectItem(sch, "minimum");
    if (min && cJSON_IsNumber(v) && v->valuedouble < min->valuedouble) {
        snprintf(xerr, sizeof xerr, "%s: below minimum", path);
        return false;
    }
    if (cJSON_IsObject(v)) {
        const cJSON *props = cJSON_GetObjectItem(sch, "properties");
        cJSON_ArrayForEach(k, cJSON_GetObjectItem(sch, "required"))
        {
            if (!cJSON_GetObjectItemCaseSensitive(v, k->valuestring)) {
                snprintf(xerr, sizeof xerr, "%s: %s missing", path, k->valuestring);
                return false;
            }
        }
        const cJSON *extra = cJSON_GetObjectItem(sch, "additionalProperties");
        cJSON_ArrayForEach(k, v)
        {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.%s", path, k->string);
            const cJSON *ps = props ? cJSON_GetObjectItemCaseSensitive(props, k->string) : NULL;
            if (ps) {
                if (!jvalid(k, ps, root, sub)) return false;
            } else if (cJSON_IsFalse(extra)) {
                snprintf(xerr, sizeof xerr, "%s: not allowed", sub);
                return false;
            }
        }
    }
    const cJSON *items = cJSON_GetObjectItem(sch, "items");
    if (items && cJSON_IsArray(v)) {
        int i = 0;
        cJSON_ArrayForEach(k, v)
        {
            char sub[256];
            snprintf(sub, sizeof sub, "%s[%d]", path, i++);
            if (!jvalid(k, items, root, sub)) return false;
        }
    }
    return true;
}

static cJSON *load_schema(void)
{
    FILE *f = fopen("docs/report.schema.json", "r");
    if (!f) f = fopen("../../docs/report.schema.json", "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *s = cJSON_Parse(buf);
    free(buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    return s;
}

static void test_json_against_schema(void)
{
    cJSON *schema = load_schema();
    sr_run *r = fixture();
    cJSON *doc = sr_report_json(r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    bool ok = jvalid(doc, schema, schema, "$");
    if (!ok) fprintf(stderr, "\nreport.json invalid: %s\n", xerr);
    CU_ASSERT(ok);

    /* The text is UTF-8 with control characters escaped, as JSON requires. */
    char *text = cJSON_Print(doc);
    CU_ASSERT(valid_utf8_xml(text));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\\u001b[31mred"));
    free(text);

    /* Spot checks of content. */
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(doc, "schemaVersion")->valuedouble, 1);
    const cJSON *run = cJSON_GetObjectItem(doc, "run");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(run, "status")->valuestring, "fail");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(run, "totals"), "failed")->valuedouble,
                    1);
    const cJSON *smoke = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "scenarios"), 0);
    const cJSON *stats = cJSON_GetObjectItem(cJSON_GetObjectItem(smoke, "createToReady"), "stats");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(stats, "n")->valuedouble, 10);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(stats, "p95")->valuedouble, 3.25);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(stats, "p50")->valuedouble, 2.0);
    const cJSON *totals = cJSON_GetObjectItem(smoke, "totals");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(totals, "cloudCallsPerObject")->valuedouble, 11);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(totals, "reconcileErrorRate")->valuedouble, 0.02);
    const cJSON *crash = cJSON_GetArrayItem(cJSON_GetObjectItem(smoke, "timeline"), 1);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(crash, "endSeconds"))); /* an instant */
    /* Not measured is null, never -1. */
    const cJSON *failed = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "scenarios"), 1);
    const cJSON *ft = cJSON_GetObjectItem(failed, "totals");
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(ft, "cpuPeakCores")));
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(ft, "objectsCreated")));
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(failed, "createToReady"), "stats"), "p95")));

    /* The validator catches a broken document (it can fail). */
    cJSON_ReplaceItemInObject((cJSON *)smoke, "status", cJSON_CreateString("passed"));
    CU_ASSERT_FALSE(jvalid(doc, schema, schema, "$"));
    cJSON_ReplaceItemInObject((cJSON *)smoke, "status", cJSON_CreateString("pass"));
    CU_ASSERT(jvalid(doc, schema, schema, "$"));
    cJSON_DeleteItemFromObject((cJSON *)ft, "kubeWrites");
    CU_ASSERT_FALSE(jvalid(doc, schema, schema, "$"));
    cJSON_AddNumberToObject((cJSON *)ft, "kubeWrites", -2);
    CU_ASSERT_FALSE(jvalid(doc, schema, schema, "$")); /* below minimum */
    cJSON_ReplaceItemInObject((cJSON *)ft, "kubeWrites", cJSON_CreateNull());
    CU_ASSERT(jvalid(doc, schema, schema, "$"));
    cJSON_AddStringToObject((cJSON *)run, "surprise", "x");
    CU_ASSERT_FALSE(jvalid(doc, schema, schema, "$"));

    /* An empty run and a huge seed are valid too. */
    sr_run *e = sr_run_new("empty", "kubeconfig:/tmp/k@ctx");
    e->seed = UINT64_MAX;
    cJSON *d2 = sr_report_json(e);
    CU_ASSERT(jvalid(d2, schema, schema, "$"));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(cJSON_GetObjectItem(d2, "run"), "seed")->valuestring,
                           "18446744073709551615");
    cJSON_Delete(d2);
    sr_run_free(e);

    cJSON_Delete(doc);
    cJSON_Delete(schema);
    sr_run_free(r);
}

/* ================================================== the run dir, load back */

static char tmpdir[256];

static int suite_init(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_runner_report.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = '\0';
    fclose(f);
    return b;
}

static void test_write_all_and_load(void)
{
    sr_run *r = fixture();
    char dir[400], err[512] = "";
    snprintf(dir, sizeof dir, "%s/reports/run-1", tmpdir); /* parents created */
    CU_ASSERT_EQUAL_FATAL(sr_report_write_all(r, dir, err, sizeof err), 0);
    /* Rewriting (a soak run does) replaces the files. */
    CU_ASSERT_EQUAL(sr_report_write_all(r, dir, err, sizeof err), 0);

    const char *names[] = {"report.json", "junit.xml", "report.html", "summary.md"};
    for (size_t i = 0; i < 4; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        CU_ASSERT_EQUAL(stat(path, &st), 0);
        CU_ASSERT(st.st_size > 100);
        CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);
    }
    /* No temporary file is left behind. */
    DIR *d = opendir(dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    int entries = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))) {
            entries++;
            CU_ASSERT(de->d_name[0] != '.');
        }
    closedir(d);
    CU_ASSERT_EQUAL(entries, 4);

    /* The files hold what the writers write. */
    char path[600];
    snprintf(path, sizeof path, "%s/junit.xml", dir);
    char *onfile = read_all(path);
    char *direct = capture(sr_report_junit, r);
    CU_ASSERT_STRING_EQUAL(onfile, direct);
    free(onfile);
    free(direct);

    /* Round trip: loading report.json gives a run whose report.json is the
     * same tree, from the directory and from the file. */
    sr_run *back = sr_report_load(dir, err, sizeof err);
    if (!back) fprintf(stderr, "\nload: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    cJSON *a = sr_report_json(r), *b = sr_report_json(back);
    CU_ASSERT(cJSON_Compare(a, b, true));
    if (!cJSON_Compare(a, b, true)) {
        char *x = cJSON_Print(b);
        fprintf(stderr, "\nreloaded differs:\n%.3000s\n", x);
        free(x);
    }
    cJSON_Delete(b);
    CU_ASSERT_EQUAL(back->n_scenarios, 3);
    CU_ASSERT_EQUAL(back->scenarios[0]->n_ctr, 10);
    CU_ASSERT_EQUAL(back->scenarios[0]->n_samples, 41);
    CU_ASSERT_EQUAL(back->scenarios[0]->timeline[1].end_s < 0, true);
    CU_ASSERT_EQUAL(back->scenarios[1]->cpu_peak_cores < 0, true);
    CU_ASSERT_EQUAL(back->scenarios[1]->status, SR_FAIL);
    /* Strings come back as written, invalid UTF-8 replaced (JSON is UTF-8). */
    CU_ASSERT_STRING_EQUAL(back->scenarios[1]->steps[0].output,
                           "line1\nline2 \a"
                           "bell <b>&amp;</b> \"dq\" 'sq' ]]> --> "
                           "\x01\x1b[31mred\x1b[0m \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                           "\xEF\xBF\xBD ✓ 日本 | `x`");
    CU_ASSERT_STRING_EQUAL(back->scenarios[0]->tags[1], "fast");
    CU_ASSERT_EQUAL(back->seed, 42);
    CU_ASSERT_EQUAL(back->runner_cpu_s, 1.5);
    sr_run_free(back);

    snprintf(path, sizeof path, "%s/report.json", dir);
    back = sr_report_load(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(back);
    b = sr_report_json(back);
    CU_ASSERT(cJSON_Compare(a, b, true));
    cJSON_Delete(b);
    cJSON_Delete(a);
    sr_run_free(back);

    /* A directory that cannot be made: the error names it. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/sub", path); /* under a regular file */
    CU_ASSERT_EQUAL(sr_report_write_all(r, bad, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, bad));
    sr_run_free(r);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_load_refuses(void)
{
    char err[512], path[400];
    snprintf(path, sizeof path, "%s/nope", tmpdir);
    CU_ASSERT_PTR_NULL(sr_report_load(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "nope"));

    snprintf(path, sizeof path, "%s/bad.json", tmpdir);
    write_file(path, "{\"schemaVersion\": 1, \"run\": {");
    CU_ASSERT_PTR_NULL(sr_report_load(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not valid JSON"));

    write_file(path, "{\"schemaVersion\": 2, \"run\": {}, \"scenarios\": []}");
    CU_ASSERT_PTR_NULL(sr_report_load(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "schemaVersion 2"));

    write_file(path, "{\"run\": {}, \"scenarios\": []}");
    CU_ASSERT_PTR_NULL(sr_report_load(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "schemaVersion"));

    write_file(path, "{\"schemaVersion\": 1, \"run\": {}, \"scenarios\": {}}");
    CU_ASSERT_PTR_NULL(sr_report_load(path, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a scenario-runner report"));

    write_file(path, "{\"schemaVersion\": 1, \"run\": {}, \"scenarios\": [42]}");
    CU_ASSERT_PTR_NULL(sr_report_load(path, err, sizeof err));

    /* Minimal but well-formed: defaults fill the rest. */
    write_file(path, "{\"schemaVersion\": 1, \"run\": {\"id\": \"x\"}, \"scenarios\": "
                     "[{\"name\": \"s\", \"status\": \"pass\"}]}");
    sr_run *r = sr_report_load(path, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(r->scenarios[0]->name, "s");
    CU_ASSERT(r->scenarios[0]->cpu_peak_cores < 0);
    sr_run_free(r);
}

/* ================================================================== html */

static void test_html(void)
{
    sr_run *r = fixture();
    char *html = capture(sr_report_html, r);
    xnode *root = xml_parse(html);
    if (!root) fprintf(stderr, "\nreport.html not well-formed: %s\n", xerr);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_STRING_EQUAL(root->name, "html");
    CU_ASSERT_EQUAL(strncmp(html, "<!DOCTYPE html>", 15), 0);
    /* Self-contained: no script, no external anything. */
    CU_ASSERT_PTR_NULL(strstr(html, "<script"));
    CU_ASSERT_PTR_NULL(strstr(html, "<link"));
    CU_ASSERT_PTR_NULL(strstr(html, "src="));
    CU_ASSERT_PTR_NULL(strstr(html, "href=\"http"));
    CU_ASSERT_PTR_NULL(strstr(html, "url("));
    /* The hostile step name only ever appears escaped. */
    CU_ASSERT_PTR_NULL(strstr(html, "<b>&amp;</b>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "&lt;b&gt;&amp;amp;&lt;/b&gt;"));
    /* Verdict, facts, the time-scale sentence, charts, reasons, SLOs. */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "FAIL &#8212; scenario-runner run 20261126-142126-beef"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<th>seed</th><td>42</td>"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "at 10&#215; speed"));
    CU_ASSERT_EQUAL(count_of(html, "<svg"), 3); /* histogram (smoke) + two timelines */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "CloudUnavailable"));
    CU_ASSERT(strstr(html, "CloudUnavailable") < strstr(html, "BackOff")); /* most first */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "operatorCPU"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "no samples"));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "p95 <b>3.25s</b>"));
    /* The step's diff is in a <pre>. */
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "<pre>status.phase: expected &quot;Running&quot;"));
    xfree(root);
    free(html);

    /* 0 scenarios. */
    sr_run *empty = sr_run_new("empty", "local");
    html = capture(sr_report_html, empty);
    root = xml_parse(html);
    CU_ASSERT_PTR_NOT_NULL(root);
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "No scenario ran."));
    CU_ASSERT_PTR_NOT_NULL(strstr(html, "PASS"));
    CU_ASSERT_PTR_NULL(strstr(html, "speed")); /* no time-scale sentence at 1 */
    xfree(root);
    free(html);

    /* 1,000 latencies, all samples, equal values in another scenario. */
    sr_scenario_result *big = sr_run_add_scenario(empty, "scale", "s.yaml");
    for (int i = 0; i < 1000; i++) sr_result_add_ctr(big, 0.5 + (i % 97) * 0.1);
    for (int i = 0; i < 600; i++) {
        sr_sample smp = {.t_s = i,
                         .objects = 1000,
                         .ready = i > 500 ? 1000 : i * 2,
                         .cpu_cores = -1,
                         .rss_bytes = -1};
        sr_result_add_sample(big, &smp);
    }
    sr_scenario_result *same = sr_run_add_scenario(empty, "same", "s.yaml");
    for (int i = 0; i < 5; i++) sr_result_add_ctr(same, 2.0);
    sr_result_add_event(same, "operator", "kill replica 0", 3, -1);
    html = capture(sr_report_html, empty);
    root = xml_parse(html);
    if (!root) fprintf(stderr, "\nreport.html not well-formed: %s\n", xerr);
    CU_ASSERT_PTR_NOT_NULL(root);
    CU_ASSERT(count_of(html, "<rect") >= 30); /* the big histogram's bins */
    CU_ASSERT_PTR_NULL(strstr(html, "nan"));
    CU_ASSERT_PTR_NULL(strstr(html, "inf\""));
    CU_ASSERT(strlen(html) < 400000); /* samples are drawn as one path, not 600 elements */
    xfree(root);
    free(html);
    sr_run_free(empty);
    sr_run_free(r);
}

/* =============================================================== summary */

static void test_summary_md(void)
{
    sr_run *r = fixture();
    char *md = capture(sr_report_summary_md, r);
    CU_ASSERT_EQUAL(strncmp(md, "## ❌ scenario-runner: FAIL", strlen("## ❌ scenario-runner: FAIL")),
                    0);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(md, "| scenario | status | duration | create-to-Ready p95 | failures |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| smoke | ✅ pass | 40s | 3.25s | 0 |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| crash-failover | ❌ fail | 12s | — | 3 |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| setup-broken | ⚠️ error | 0s | — | 1 |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "### Failures"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "SLO *operatorCPU*: peak 0.35 cores"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "mockcloud did not start"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "time scale 10"));
    /* Table rows stay one line each: every table line has 6 unescaped pipes. */
    for (char *line = strtok(md, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] != '|') continue;
        int pipes = 0;
        for (char *p = line; *p; p++) pipes += *p == '|' && (p == line || p[-1] != '\\');
        CU_ASSERT_EQUAL(pipes, 6);
    }
    free(md);

    sr_run *empty = sr_run_new("e", "local");
    md = capture(sr_report_summary_md, empty);
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "PASS"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "No scenario ran."));
    free(md);
    sr_run_free(empty);
    sr_run_free(r);
}

/* =============================================================== compare */

/* A run with one scenario whose latencies are base × (1..20)/10 and the
 * given status; figures as named. */
static sr_run *perf_run(const char *id, double base, sr_status st, double cpu)
{
    sr_run *r = sr_run_new(id, "local");
    sr_scenario_result *s = sr_run_add_scenario(r, "gray-release", "g.yaml");
    s->status = st;
    for (int i = 1; i <= 20; i++) sr_result_add_ctr(s, base * i / 10.0);
    s->cpu_peak_cores = cpu;
    s->objects_created = 20;
    s->cloud_calls = 200;
    s->kube_writes = 80;
    s->reconciles = 100;
    s->reconcile_errors = 1;
    return r;
}

static char *compare_text(const sr_run *a, const sr_run *b, double th, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    *rc = sr_compare(a, b, th, f, NULL);
    fclose(f);
    return buf;
}

static void test_compare_threshold(void)
{
    sr_run *a = perf_run("A", 1.0, SR_PASS, 0.2);
    sr_run *b = perf_run("B", 1.2, SR_PASS, 0.2); /* every latency +20% */
    int rc;
    char *out = compare_text(a, b, 10, &rc);
    CU_ASSERT(rc >= 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "REGRESSION"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "gray-release/createToReady.p95"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "+20.0%"));
    CU_ASSERT_EQUAL(rc, 4); /* avg, p50, p95, p99 */
    free(out);

    out = compare_text(a, b, 30, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NULL(strstr(out, "REGRESSION"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "result: no regression"));
    free(out);

    /* Better is never a regression. */
    out = compare_text(b, a, 10, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "improved"));
    free(out);
    CU_ASSERT_EQUAL(sr_compare(a, b, -1, stdout, NULL), -1);
    CU_ASSERT_EQUAL(sr_compare(a, NULL, 10, stdout, NULL), -1);
    sr_run_free(a);
    sr_run_free(b);
}

static void test_compare_floor_and_status(void)
{
    /* 10 ms → 20 ms latencies: +100%, but under the 50 ms floor. CPU
     * 0.2 → 0.3 cores: +50% and above its floor. */
    sr_run *a = perf_run("A", 0.01, SR_PASS, 0.2);
    sr_run *b = perf_run("B", 0.02, SR_PASS, 0.3);
    int rc;
    char *out = compare_text(a, b, 10, &rc);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "gray-release/operatorCPU"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "ok (under floor)"));
    free(out);
    sr_run_free(b);

    /* Passing in A, failing in B: a regression whatever the figures. */
    b = perf_run("B", 0.01, SR_FAIL, 0.2);
    out = compare_text(a, b, 10, &rc);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "gray-release/status"));
    free(out);
    /* Failing in both is not a new regression; fixed is reported. */
    out = compare_text(b, a, 10, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "fixed"));
    free(out);
    sr_run_free(b);

    /* Scenarios on one side only are listed, not gated; a figure measured
     * on one side only is shown, not gated. */
    b = perf_run("B", 0.01, SR_PASS, -1);
    sr_run_add_scenario(b, "new-one", "n.yaml");
    sr_run_add_scenario(a, "old-one", "o.yaml");
    char *md = NULL;
    size_t mdlen = 0;
    FILE *mf = open_memstream(&md, &mdlen);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rc = sr_compare(a, b, 10, f, mf);
    fclose(f);
    fclose(mf);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "only in A"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "only in B"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "not measured in B"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "| scenario | figure | A | B | change | verdict |"));
    CU_ASSERT_PTR_NOT_NULL(strstr(md, "only in B"));

    /* The table is aligned: "verdict" starts at the same column on every
     * table line. */
    char *head = strstr(buf, "scenario  ");
    CU_ASSERT_PTR_NOT_NULL_FATAL(head);
    size_t col = (size_t)(strstr(head, "verdict") - head);
    int lines = 0;
    for (char *line = strtok(head, "\n"); line && *line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "result:", 7) == 0) break;
        CU_ASSERT(strlen(line) > col);
        CU_ASSERT(line[col - 1] == ' ' && line[col] != ' ');
        lines++;
    }
    CU_ASSERT(lines > 5);
    free(buf);
    free(md);
    sr_run_free(a);
    sr_run_free(b);
}

/* compare over runs loaded from disk: what `scenario-runner compare A B`
 * does. */
static void test_compare_loaded(void)
{
    char da[400], db[400], err[512];
    snprintf(da, sizeof da, "%s/cmp-a", tmpdir);
    snprintf(db, sizeof db, "%s/cmp-b", tmpdir);
    sr_run *a = perf_run("A", 1.0, SR_PASS, 0.2);
    sr_run *b = perf_run("B", 1.2, SR_PASS, 0.2);
    CU_ASSERT_EQUAL(sr_report_write_all(a, da, err, sizeof err), 0);
    CU_ASSERT_EQUAL(sr_report_write_all(b, db, err, sizeof err), 0);
    sr_run *la = sr_report_load(da, err, sizeof err), *lb = sr_report_load(db, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(la);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lb);
    int rc;
    char *out = compare_text(la, lb, 10, &rc);
    CU_ASSERT_EQUAL(rc, 4);
    free(out);
    sr_run_free(la);
    sr_run_free(lb);
    sr_run_free(a);
    sr_run_free(b);
}

static CU_TestInfo writer_tests[] = {
    {"xml checker rejects bad xml", test_xml_checker_rejects},
    {"junit.xml", test_junit},
    {"report.json against its schema", test_json_against_schema},
    {"report.html", test_html},
    {"summary.md", test_summary_md},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo dir_tests[] = {
    {"write all, load back", test_write_all_and_load},
    {"load refuses bad input", test_load_refuses},
    {"compare loaded runs", test_compare_loaded},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo compare_tests[] = {
    {"threshold", test_compare_threshold},
    {"floor and status", test_compare_floor_and_status},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"report writers", NULL, NULL, NULL, NULL, writer_tests},
    {"report dir", suite_init, suite_clean, NULL, NULL, dir_tests},
    {"compare", NULL, NULL, NULL, NULL, compare_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
