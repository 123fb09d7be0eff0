/* faults.c — the fault engine (see faults.h).
 *
 * Design idea: all the thinking happens when a rule is added. Validation
 * turns the JSON into a compiled rule — a method bitmask, a path glob, an op
 * list, header globs, a ready-made reply — so evaluating a request is a walk
 * over an array that compares a few integers and strings under one mutex,
 * with no allocation and no parsing. A rule that does not match costs a
 * bitmask test or one glob. */
#include "faults.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "csl/clock.h"
#include "csl/dist.h"
#include "csl/rng.h"
#include "csl/units.h"
#include "mc.h"

/* ---------------------------------------------------------------- types */

typedef enum {
    FT_LATENCY = 0,
    FT_ERROR,
    FT_RESET,
    FT_HANG,
    FT_EMPTY,
    FT_MALFORMED,
    FT_UNAUTHORIZED,
    FT_FORBIDDEN,
    FT_RATELIMIT,
    FT_COUNT
} fault_type;

static const char *const type_names[FT_COUNT] = {
    "latency",   "error",        "reset",     "hang",      "empty",
    "malformed", "unauthorized", "forbidden", "rateLimit",
};
#define TYPE_LIST                                                                                  \
    "latency, error, reset, hang, empty, malformed, unauthorized, forbidden, rateLimit"

/* Bit i of a rule's method mask stands for methods[i]; a request with any
 * other method matches only rules without a method list. */
static const char *const methods[] = {"GET",    "HEAD",    "POST",  "PUT",    "PATCH",
                                      "DELETE", "OPTIONS", "TRACE", "CONNECT"};
#define N_METHODS (sizeof methods / sizeof methods[0])
#define METHOD_LIST "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE or CONNECT"

typedef struct header_match {
    char *name;
    char *glob; /* NULL: the header must be absent */
} header_match;

typedef struct fault_rule {
    char id[MC_FAULT_ID_MAX + 1];
    uint64_t number; /* 1-based; names the rule's random streams */

    /* match */
    unsigned methods; /* bitmask over methods[]; 0 = any */
    char *path;       /* glob; NULL = any */
    char **ops;       /* globs; nops == 0 = any */
    size_t nops;
    header_match *headers;
    size_t nheaders;

    /* effect */
    fault_type type;
    csl_dist latency;
    int status;
    char code[64];
    char message[256];
    int64_t retry_after_ns;
    mc_phase phase;

    /* schedule */
    double probability;
    int64_t count; /* 0 = unlimited */
    int64_t start_after_ns;
    int64_t duration_ns;                /* 0 = forever */
    int64_t added_ms, start_ms, end_ms; /* end_ms only when duration_ns > 0 */

    /* run-time state, under the engine's lock */
    int64_t fired;
    csl_rng latency_rng;
    csl_rng probability_rng;
} fault_rule;

struct mc_faults {
    pthread_mutex_t lock;
    uint64_t seed;
    uint64_t numbered; /* rules added since creation or the last clear */
    fault_rule **rules;
    size_t n, cap;
};

/* ---------------------------------------------------------------- rules */

static void rule_free(fault_rule *r)
{
    if (!r) return;
    free(r->path);
    for (size_t i = 0; i < r->nops; i++) free(r->ops[i]);
    free(r->ops);
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].glob);
    }
    free(r->headers);
    free(r);
}

/* Header values are free text, so here '*' matches any run of characters
 * ('/' included) and '?' any one character; the rest is literal. */
static bool header_glob(const char *p, const char *s)
{
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '*') {
            star_p = ++p;
            star_s = s;
            continue;
        }
        if (*p == '?' || *p == *s) {
            p++;
            s++;
            continue;
        }
        if (!star_p) return false;
        p = star_p;
        s = ++star_s;
    }
    while (*p == '*') p++;
    return *p == '\0';
}

static int method_index(const char *m)
{
    for (size_t i = 0; i < N_METHODS; i++)
        if (strcmp(m, methods[i]) == 0) return (int)i;
    return -1;
}

static bool rule_matches(const fault_rule *r, const mc_fault_request *req, unsigned method_bit)
{
    if (r->methods && !(r->methods & method_bit)) return false;
    if (r->path && !mc_glob_match(r->path, req->path ? req->path : "")) return false;
    if (r->nops) {
        if (!req->op) return false;
        size_t i = 0;
        while (i < r->nops && !mc_glob_match(r->ops[i], req->op)) i++;
        if (i == r->nops) return false;
    }
    for (size_t i = 0; i < r->nheaders; i++) {
        const char *v = req->header ? req->header(req->header_ctx, r->headers[i].name) : NULL;
        if (!r->headers[i].glob) {
            if (v) return false;
        } else if (!v || !header_glob(r->headers[i].glob, v)) {
            return false;
        }
    }
    return true;
}

static bool rule_active(const fault_rule *r, int64_t now_ms)
{
    if (now_ms < r->start_ms) return false;
    if (r->duration_ns > 0 && now_ms >= r->end_ms) return false;
    return !r->count || r->fired < r->count;
}

static const char *rule_state(const fault_rule *r, int64_t now_ms)
{
    if (r->count && r->fired >= r->count) return "exhausted";
    if (r->duration_ns > 0 && now_ms >= r->end_ms) return "expired";
    if (now_ms < r->start_ms) return "scheduled";
    return "active";
}

/* ---------------------------------------------------------------- validation */

typedef struct vctx {
    char *err;
    size_t errsz;
    const cJSON **bad;
} vctx;

static int fail(vctx *v, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(vctx *v, const cJSON *node, const char *fmt, ...)
{
    if (v->err && v->errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->err, v->errsz, fmt, ap);
        va_end(ap);
    }
    if (v->bad) *v->bad = node;
    return -1;
}

/* "match.method" from ("match", "method"); "id" from ("", "id"). */
static void join_path(char *out, size_t outsz, const char *prefix, const char *name)
{
    snprintf(out, outsz, "%s%s%.80s", prefix, *prefix ? "." : "", name);
}

/* Refuses members not in allowed (NULL-terminated) and members given
 * twice (cJSON keeps both; a silent "first wins" would hide a mistake). */
static int check_fields(vctx *v, const cJSON *obj, const char *prefix, const char *const *allowed,
                        const char *what)
{
    char path[128];
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool ok = false;
        for (const char *const *a = allowed; !ok && *a; a++) ok = strcmp(m->string, *a) == 0;
        join_path(path, sizeof path, prefix, m->string);
        if (!ok) return fail(v, m, "%s: unknown field: %s", path, what);
        for (const cJSON *o = obj->child; o != m; o = o->next)
            if (strcmp(o->string, m->string) == 0) return fail(v, m, "%s: given twice", path);
    }
    return 0;
}

static bool valid_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > MC_FAULT_ID_MAX) return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* RFC 9110 token characters, the alphabet of header names. */
static bool valid_token(const char *s)
{
    if (!*s) return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 32 || c >= 127 || strchr("\"(),/:;<=>?@[\\]{}", c)) return false;
    }
    return true;
}

static bool has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 32 || *s == 127) return true;
    return false;
}

static int parse_duration(vctx *v, const cJSON *j, const char *path, int64_t *out)
{
    if (!cJSON_IsString(j))
        return fail(v, j, "%s: must be a duration string such as \"10s\"", path);
    char uerr[CSL_UNITS_ERR_LEN];
    if (csl_duration_parse(j->valuestring, out, uerr) < 0)
        return fail(v, j, "%s: bad duration \"%.40s\": %s", path, j->valuestring, uerr);
    return 0;
}

static int parse_methods(vctx *v, const cJSON *j, fault_rule *r)
{
    if (cJSON_IsString(j)) {
        int i = method_index(j->valuestring);
        if (i < 0)
            return fail(v, j, "match.method: unknown HTTP method \"%.20s\": use " METHOD_LIST,
                        j->valuestring);
        r->methods = 1u << i;
        return 0;
    }
    if (!cJSON_IsArray(j))
        return fail(v, j, "match.method: must be a method name such as \"GET\" or a list of them");
    if (!j->child)
        return fail(v, j, "match.method: empty list: leave method out to match every method");
    int idx = 0;
    for (const cJSON *m = j->child; m; m = m->next, idx++) {
        if (!cJSON_IsString(m))
            return fail(v, m, "match.method[%d]: must be a method name such as \"GET\"", idx);
        int i = method_index(m->valuestring);
        if (i < 0)
            return fail(v, m, "match.method[%d]: unknown HTTP method \"%.20s\": use " METHOD_LIST,
                        idx, m->valuestring);
        r->methods |= 1u << i;
    }
    return 0;
}

static int check_op(vctx *v, const cJSON *m, const char *path)
{
    if (!cJSON_IsString(m) || !m->valuestring[0] || strlen(m->valuestring) > 63 ||
        has_control_chars(m->valuestring))
        return fail(v, m,
                    "%s: must be an operation name (or glob) of 1 to 63 characters, such as "
                    "\"CreateInstance\"",
                    path);
    return 0;
}

static int parse_ops(vctx *v, const cJSON *j, fault_rule *r)
{
    char path[32];
    size_t n = 0;
    if (cJSON_IsString(j)) {
        if (check_op(v, j, "match.op") < 0) return -1;
        n = 1;
    } else if (cJSON_IsArray(j)) {
        if (!j->child)
            return fail(v, j, "match.op: empty list: leave op out to match every operation");
        for (const cJSON *m = j->child; m; m = m->next, n++) {
            snprintf(path, sizeof path, "match.op[%zu]", n);
            if (check_op(v, m, path) < 0) return -1;
        }
    } else {
        return fail(v, j,
                    "match.op: must be an operation name such as \"CreateInstance\" or a list "
                    "of them");
    }
    r->ops = calloc(n, sizeof *r->ops);
    if (!r->ops) return fail(v, j, "match.op: out of memory");
    if (cJSON_IsString(j)) {
        r->ops[0] = strdup(j->valuestring);
        r->nops = r->ops[0] ? 1 : 0;
    } else {
        for (const cJSON *m = j->child; m; m = m->next) {
            r->ops[r->nops] = strdup(m->valuestring);
            if (!r->ops[r->nops]) break;
            r->nops++;
        }
    }
    if (r->nops != n) return fail(v, j, "match.op: out of memory");
    return 0;
}

static int parse_headers(vctx *v, const cJSON *j, fault_rule *r)
{
    if (!cJSON_IsObject(j))
        return fail(v, j,
                    "match.headers: must be an object of header name → value glob, e.g. "
                    "{\"Idempotency-Key\": \"*\"}");
    size_t n = (size_t)cJSON_GetArraySize(j);
    if (!n) return 0;
    char path[128];
    for (const cJSON *m = j->child; m; m = m->next) {
        snprintf(path, sizeof path, "match.headers.%.80s", m->string);
        if (!valid_token(m->string) || strlen(m->string) > 63)
            return fail(v, m, "%s: not a valid header name", path);
        for (const cJSON *o = j->child; o != m; o = o->next)
            if (strcasecmp(o->string, m->string) == 0)
                return fail(v, m, "%s: given twice (header names ignore case)", path);
        if (cJSON_IsNull(m)) continue;
        if (!cJSON_IsString(m) || strlen(m->valuestring) > 255 || has_control_chars(m->valuestring))
            return fail(v, m,
                        "%s: must be a value glob of at most 255 characters (\"*\" = present), "
                        "or null to match when the header is absent",
                        path);
    }
    r->headers = calloc(n, sizeof *r->headers);
    if (!r->headers) return fail(v, j, "match.headers: out of memory");
    for (const cJSON *m = j->child; m; m = m->next) {
        header_match *h = &r->headers[r->nheaders];
        h->name = strdup(m->string);
        h->glob = cJSON_IsNull(m) ? NULL : strdup(m->valuestring);
        if (!h->name || (!cJSON_IsNull(m) && !h->glob)) {
            free(h->name);
            free(h->glob);
            return fail(v, j, "match.headers: out of memory");
        }
        r->nheaders++;
    }
    return 0;
}

static int parse_match(vctx *v, const cJSON *j, fault_rule *r)
{
    static const char *const fields[] = {"method", "path", "op", "headers", NULL};
    if (!cJSON_IsObject(j))
        return fail(v, j, "match: must be an object with method, path, op and/or headers");
    if (check_fields(v, j, "match", fields, "use method, path, op or headers") < 0) return -1;
    const cJSON *m;
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "method")) && parse_methods(v, m, r) < 0)
        return -1;
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "path"))) {
        if (!cJSON_IsString(m) || (m->valuestring[0] != '/' && m->valuestring[0] != '*') ||
            strlen(m->valuestring) > 255 || has_control_chars(m->valuestring))
            return fail(v, m,
                        "match.path: must be a path glob starting with \"/\", such as "
                        "\"/v1/instances/*\" ('*' stays within a segment, '**' crosses them)");
        /* "**" matches every path: leave the test out of the hot loop. */
        if (strcmp(m->valuestring, "**") != 0 && strcmp(m->valuestring, "/**") != 0) {
            r->path = strdup(m->valuestring);
            if (!r->path) return fail(v, m, "match.path: out of memory");
        }
    }
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "op")) && parse_ops(v, m, r) < 0) return -1;
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "headers")) && parse_headers(v, m, r) < 0)
        return -1;
    return 0;
}

/* The error code a status gets when the rule names none. */
static const char *default_code(int status)
{
    static const struct {
        int status;
        const char *code;
    } codes[] = {
        {400, "BadRequest"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "NotFound"},
        {405, "MethodNotAllowed"},
        {408, "RequestTimeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {412, "PreconditionFailed"},
        {413, "PayloadTooLarge"},
        {422, "UnprocessableEntity"},
        {429, "TooManyRequests"},
        {500, "InternalError"},
        {501, "NotImplemented"},
        {502, "BadGateway"},
        {503, "ServiceUnavailable"},
        {504, "GatewayTimeout"},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].status == status) return codes[i].code;
    if (status >= 500) return "ServerError";
    if (status >= 400) return "ClientError";
    return "InjectedFault";
}

static int parse_code_message(vctx *v, const cJSON *j, fault_rule *r, int status)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    r->status = status;
    if (code) {
        const char *s = cJSON_IsString(code) ? code->valuestring : "";
        bool ok = *s && strlen(s) < sizeof r->code;
        for (const char *p = s; ok && *p; p++)
            ok = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                 *p == '.' || *p == '_' || *p == '-';
        if (!ok)
            return fail(v, code,
                        "effect.code: must be 1 to 63 characters from A-Z a-z 0-9 . _ -, such "
                        "as \"ServiceUnavailable\"");
        snprintf(r->code, sizeof r->code, "%s", s);
    } else {
        snprintf(r->code, sizeof r->code, "%s", default_code(status));
    }
    if (msg) {
        if (!cJSON_IsString(msg) || strlen(msg->valuestring) >= sizeof r->message)
            return fail(v, msg, "effect.message: must be a string of at most %zu bytes",
                        sizeof r->message - 1);
        snprintf(r->message, sizeof r->message, "%s", msg->valuestring);
    } else {
        /* Filled in once the id is known (mc_faults_add). */
        r->message[0] = '\0';
    }
    return 0;
}

static int parse_effect(vctx *v, const cJSON *j, fault_rule *r)
{
    static const char *const latency_fields[] = {"type", "latency", NULL};
    static const char *const error_fields[] = {"type", "status", "code", "message", NULL};
    static const char *const auth_fields[] = {"type", "code", "message", NULL};
    static const char *const rate_fields[] = {"type", "retryAfter", "code", "message", NULL};
    static const char *const bare_fields[] = {"type", NULL};

    if (!j) return fail(v, NULL, "effect: missing: add {\"type\": one of " TYPE_LIST "}");
    if (!cJSON_IsObject(j))
        return fail(v, j,
                    "effect: must be an object such as {\"type\": \"error\", \"status\": 503}");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (!t) return fail(v, j, "effect.type: missing: must be one of " TYPE_LIST);
    int type = -1;
    if (cJSON_IsString(t))
        for (int i = 0; i < FT_COUNT && type < 0; i++)
            if (strcmp(t->valuestring, type_names[i]) == 0) type = i;
    if (type < 0) return fail(v, t, "effect.type: must be one of " TYPE_LIST);
    r->type = (fault_type)type;

    const char *const *allowed;
    const char *what;
    switch (r->type) {
    case FT_LATENCY:
        allowed = latency_fields;
        what = "a latency effect has only \"latency\"";
        break;
    case FT_ERROR:
        allowed = error_fields;
        what = "an error effect has status, code and message";
        break;
    case FT_UNAUTHORIZED:
    case FT_FORBIDDEN:
        allowed = auth_fields;
        what = "this effect has code and message (its status is fixed)";
        break;
    case FT_RATELIMIT:
        allowed = rate_fields;
        what = "a rateLimit effect has retryAfter, code and message";
        break;
    default:
        allowed = bare_fields;
        what = "this effect takes no fields besides type";
        break;
    }
    if (check_fields(v, j, "effect", allowed, what) < 0) return -1;

    switch (r->type) {
    case FT_LATENCY: {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "latency");
        if (!d)
            return fail(v, j,
                        "effect.latency: missing: add a duration such as \"500ms\" or a "
                        "distribution such as {\"distribution\": \"uniform\", \"min\": \"100ms\", "
                        "\"max\": \"1s\"}");
        char derr[192];
        const cJSON *dbad = d;
        if (csl_dist_from_json(d, &r->latency, derr, sizeof derr, &dbad) < 0)
            return fail(v, dbad ? dbad : d, "effect.latency: %s", derr);
        return 0;
    }
    case FT_ERROR: {
        int status = 500;
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "status");
        if (s) {
            if (!cJSON_IsNumber(s) || s->valuedouble != floor(s->valuedouble) ||
                s->valuedouble < 100 || s->valuedouble > 599)
                return fail(v, s, "effect.status: must be an integer 100..599");
            status = (int)s->valuedouble;
        }
        return parse_code_message(v, j, r, status);
    }
    case FT_UNAUTHORIZED:
        return parse_code_message(v, j, r, 401);
    case FT_FORBIDDEN:
        return parse_code_message(v, j, r, 403);
    case FT_RATELIMIT: {
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "retryAfter");
        r->retry_after_ns = 1000000000;
        if (ra) {
            if (parse_duration(v, ra, "effect.retryAfter", &r->retry_after_ns) < 0) return -1;
            if (r->retry_after_ns <= 0 || r->retry_after_ns > 86400LL * 1000000000)
                return fail(v, ra, "effect.retryAfter: must be above 0 and at most 24h");
        }
        return parse_code_message(v, j, r, 429);
    }
    default:
        return 0;
    }
}

/* Durations are capped far beyond any test's life so that the window
 * arithmetic in ms can never overflow. */
#define MAX_WINDOW_NS (3650LL * 86400 * 1000000000)

static int parse_rule(vctx *v, const cJSON *j, fault_rule *r)
{
    static const char *const fields[] = {"id",    "match",      "effect",   "phase", "probability",
                                         "count", "startAfter", "duration", NULL};
    if (!cJSON_IsObject(j))
        return fail(v, j, "rule: must be an object with match, effect and schedule fields");
    if (check_fields(v, j, "", fields,
                     "use id, match, effect, phase, probability, count, startAfter or duration") <
        0)
        return -1;
    const cJSON *m;
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "id"))) {
        if (!cJSON_IsString(m) || !valid_id(m->valuestring))
            return fail(v, m, "id: must be 1 to %d characters from A-Z a-z 0-9 . _ -",
                        MC_FAULT_ID_MAX);
        snprintf(r->id, sizeof r->id, "%s", m->valuestring);
    }
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "match")) && parse_match(v, m, r) < 0) return -1;
    if (parse_effect(v, cJSON_GetObjectItemCaseSensitive(j, "effect"), r) < 0) {
        /* A missing effect has no node of its own: point at the rule. */
        if (v->bad && !*v->bad) *v->bad = j;
        return -1;
    }
    r->phase = MC_PHASE_REQUEST;
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "phase"))) {
        if (cJSON_IsString(m) && strcmp(m->valuestring, "response") == 0)
            r->phase = MC_PHASE_RESPONSE;
        else if (!cJSON_IsString(m) || strcmp(m->valuestring, "request") != 0)
            return fail(v, m, "phase: must be \"request\" or \"response\"");
        if (r->phase == MC_PHASE_RESPONSE && r->type == FT_LATENCY)
            return fail(v, m,
                        "phase: a latency effect always delays the request; \"response\" is for "
                        "the other effects");
    }
    r->probability = 1.0;
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "probability"))) {
        if (!cJSON_IsNumber(m) || !(m->valuedouble > 0.0 && m->valuedouble <= 1.0))
            return fail(v, m, "probability: must be a number in (0, 1]");
        r->probability = m->valuedouble;
    }
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "count"))) {
        if (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) || m->valuedouble < 1 ||
            m->valuedouble > 1e15)
            return fail(v, m, "count: must be a positive integer");
        r->count = (int64_t)m->valuedouble;
    }
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "startAfter"))) {
        if (parse_duration(v, m, "startAfter", &r->start_after_ns) < 0) return -1;
        if (r->start_after_ns > MAX_WINDOW_NS)
            return fail(v, m, "startAfter: must be at most 87600h (10 years)");
    }
    if ((m = cJSON_GetObjectItemCaseSensitive(j, "duration"))) {
        if (parse_duration(v, m, "duration", &r->duration_ns) < 0) return -1;
        if (r->duration_ns <= 0 || r->duration_ns > MAX_WINDOW_NS)
            return fail(v, m, "duration: must be above 0 and at most 87600h (10 years)");
    }
    return 0;
}

/* ---------------------------------------------------------------- output */

static bool add_duration(cJSON *o, const char *name, int64_t ns)
{
    char s[40];
    csl_duration_format(ns, s, sizeof s);
    return cJSON_AddStringToObject(o, name, s) != NULL;
}

static bool add_time(cJSON *o, const char *name, int64_t ms)
{
    char s[CSL_RFC3339_LEN];
    csl_rfc3339_ms(ms, s);
    return cJSON_AddStringToObject(o, name, s) != NULL;
}

static cJSON *match_json(const fault_rule *r)
{
    cJSON *m = cJSON_CreateObject();
    bool ok = m != NULL;
    if (ok && r->methods) {
        cJSON *a = cJSON_AddArrayToObject(m, "method");
        ok = a != NULL;
        for (size_t i = 0; ok && i < N_METHODS; i++)
            if (r->methods & (1u << i))
                ok = cJSON_AddItemToArray(a, cJSON_CreateString(methods[i]));
    }
    if (ok && r->path) ok = cJSON_AddStringToObject(m, "path", r->path) != NULL;
    if (ok && r->nops) {
        cJSON *a = cJSON_AddArrayToObject(m, "op");
        ok = a != NULL;
        for (size_t i = 0; ok && i < r->nops; i++)
            ok = cJSON_AddItemToArray(a, cJSON_CreateString(r->ops[i]));
    }
    if (ok && r->nheaders) {
        cJSON *h = cJSON_AddObjectToObject(m, "headers");
        ok = h != NULL;
        for (size_t i = 0; ok && i < r->nheaders; i++)
            ok = r->headers[i].glob
                     ? cJSON_AddStringToObject(h, r->headers[i].name, r->headers[i].glob) != NULL
                     : cJSON_AddNullToObject(h, r->headers[i].name) != NULL;
    }
    if (!ok) {
        cJSON_Delete(m);
        return NULL;
    }
    return m;
}

static cJSON *effect_json(const fault_rule *r)
{
    cJSON *e = cJSON_CreateObject();
    bool ok = e && cJSON_AddStringToObject(e, "type", type_names[r->type]);
    switch (r->type) {
    case FT_LATENCY:
        ok = ok && cJSON_AddItemToObject(e, "latency", csl_dist_to_json(&r->latency));
        break;
    case FT_RATELIMIT:
        ok = ok && add_duration(e, "retryAfter", r->retry_after_ns);
        /* fall through */
    case FT_ERROR:
    case FT_UNAUTHORIZED:
    case FT_FORBIDDEN:
        if (r->type == FT_ERROR) ok = ok && cJSON_AddNumberToObject(e, "status", r->status);
        ok = ok && cJSON_AddStringToObject(e, "code", r->code) &&
             cJSON_AddStringToObject(e, "message", r->message);
        break;
    default:
        break;
    }
    if (!ok) {
        cJSON_Delete(e);
        return NULL;
    }
    return e;
}

static cJSON *rule_json(const fault_rule *r, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "id", r->id) &&
              cJSON_AddItemToObject(o, "match", match_json(r)) &&
              cJSON_AddItemToObject(o, "effect", effect_json(r)) &&
              cJSON_AddStringToObject(o, "phase",
                                      r->phase == MC_PHASE_RESPONSE ? "response" : "request") &&
              cJSON_AddNumberToObject(o, "probability", r->probability);
    if (ok && r->count) ok = cJSON_AddNumberToObject(o, "count", (double)r->count) != NULL;
    if (ok && r->start_after_ns) ok = add_duration(o, "startAfter", r->start_after_ns);
    if (ok && r->duration_ns) ok = add_duration(o, "duration", r->duration_ns);
    ok = ok && cJSON_AddStringToObject(o, "state", rule_state(r, now_ms)) &&
         cJSON_AddNumberToObject(o, "fired", (double)r->fired) &&
         add_time(o, "addedAt", r->added_ms);
    if (ok && r->start_after_ns) ok = add_time(o, "startsAt", r->start_ms);
    if (ok && r->duration_ns) ok = add_time(o, "expiresAt", r->end_ms);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---------------------------------------------------------------- engine */

mc_faults *mc_faults_new(uint64_t seed)
{
    mc_faults *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    if (pthread_mutex_init(&f->lock, NULL) != 0) {
        free(f);
        return NULL;
    }
    f->seed = seed;
    return f;
}

void mc_faults_free(mc_faults *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) rule_free(f->rules[i]);
    free(f->rules);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static fault_rule *find_locked(mc_faults *f, const char *id, size_t *pos)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->rules[i]->id, id) == 0) {
            if (pos) *pos = i;
            return f->rules[i];
        }
    }
    return NULL;
}

/* ceil(ns / 1 ms), for windows measured in whole milliseconds. */
static int64_t ns_to_ms_ceil(int64_t ns)
{
    return ns / 1000000 + (ns % 1000000 != 0);
}

/* Validates rule into a new compiled rule anchored at now_ms; NULL on error
 * (reported through v). */
static fault_rule *compile(vctx *v, const cJSON *rule, int64_t now_ms)
{
    fault_rule *r = calloc(1, sizeof *r);
    if (!r) {
        fail(v, rule, "out of memory");
        return NULL;
    }
    if (parse_rule(v, rule, r) < 0) {
        rule_free(r);
        return NULL;
    }
    r->added_ms = now_ms;
    r->start_ms = now_ms + ns_to_ms_ceil(r->start_after_ns);
    if (r->duration_ns) r->end_ms = r->start_ms + ns_to_ms_ceil(r->duration_ns);
    return r;
}

/* Whether id names a rule of the engine or of batch[0..n) other than
 * batch[self]. */
static bool id_taken(mc_faults *f, fault_rule *const *batch, size_t n, size_t self, const char *id)
{
    if (find_locked(f, id, NULL)) return true;
    for (size_t i = 0; i < n; i++)
        if (i != self && batch[i]->id[0] && strcmp(batch[i]->id, id) == 0) return true;
    return false;
}

/* Adds n compiled rules, all or none. Every check that can fail runs before
 * the first rule goes in, so a refusal leaves no trace — not even a used-up
 * rule number. On success the engine owns the rules; on error the caller
 * still does, and *failed is the position of the refused rule. */
static int commit(mc_faults *f, fault_rule **batch, const cJSON *const *json, size_t n,
                  int64_t now_ms, cJSON **created, vctx *v, size_t *failed)
{
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < n; i++) {
        if (batch[i]->id[0] && id_taken(f, batch, i, i, batch[i]->id)) {
            pthread_mutex_unlock(&f->lock);
            *failed = i;
            return fail(v, cJSON_GetObjectItemCaseSensitive(json[i], "id"),
                        "id: a rule named %s exists", batch[i]->id);
        }
    }
    if (f->n + n > f->cap) {
        size_t cap = f->cap ? f->cap : 16;
        while (cap < f->n + n) cap *= 2;
        fault_rule **p = realloc(f->rules, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&f->lock);
            *failed = 0;
            return fail(v, json[0], "out of memory");
        }
        f->rules = p;
        f->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        fault_rule *r = batch[i];
        r->number = ++f->numbered;
        if (!r->id[0]) {
            /* r<number>, or the next free r<k> when a user took that name
             * (here or later in the batch). */
            for (uint64_t k = r->number;; k++) {
                snprintf(r->id, sizeof r->id, "r%llu", (unsigned long long)k);
                if (!id_taken(f, batch, n, i, r->id)) break;
            }
        }
        if ((r->type == FT_ERROR || r->type == FT_UNAUTHORIZED || r->type == FT_FORBIDDEN ||
             r->type == FT_RATELIMIT) &&
            !r->message[0])
            snprintf(r->message, sizeof r->message, "injected by fault rule %s", r->id);
        csl_rng_derive(&r->latency_rng, f->seed, "fault", r->number);
        csl_rng_derive(&r->probability_rng, f->seed, "fault-probability", r->number);
        f->rules[f->n++] = r;
    }
    if (created) {
        if (n == 1) {
            *created = rule_json(batch[0], now_ms);
        } else {
            *created = cJSON_CreateArray();
            for (size_t i = 0; *created && i < n; i++) {
                if (!cJSON_AddItemToArray(*created, rule_json(batch[i], now_ms))) {
                    cJSON_Delete(*created);
                    *created = NULL;
                }
            }
        }
    }
    pthread_mutex_unlock(&f->lock);
    return 0;
}

int mc_faults_add(mc_faults *f, const cJSON *rule, int64_t now_ms, cJSON **created, char *err,
                  size_t errsz, const cJSON **bad)
{
    vctx v = {err, errsz, bad};
    if (created) *created = NULL;
    if (bad) *bad = NULL;
    if (err && errsz) err[0] = '\0';
    fault_rule *r = compile(&v, rule, now_ms);
    size_t failed;
    if (!r) return -1;
    if (commit(f, &r, &rule, 1, now_ms, created, &v, &failed) < 0) {
        rule_free(r);
        return -1;
    }
    return 0;
}

int mc_faults_add_batch(mc_faults *f, const cJSON *rules, int64_t now_ms, cJSON **created,
                        char *err, size_t errsz, const cJSON **bad, size_t *index)
{
    vctx v = {err, errsz, bad};
    size_t failed = 0;
    if (created) *created = NULL;
    if (bad) *bad = NULL;
    if (err && errsz) err[0] = '\0';
    if (index) *index = 0;
    if (!cJSON_IsArray(rules)) return fail(&v, rules, "must be a JSON array of rules");
    size_t n = (size_t)cJSON_GetArraySize(rules);
    if (!n) {
        if (created && !(*created = cJSON_CreateArray())) return fail(&v, rules, "out of memory");
        return 0;
    }
    fault_rule **batch = calloc(n, sizeof *batch);
    const cJSON **json = calloc(n, sizeof *json);
    size_t compiled = 0;
    int rc = -1;
    if (!batch || !json) {
        fail(&v, rules, "out of memory");
        goto out;
    }
    for (const cJSON *r = rules->child; r; r = r->next, compiled++) {
        json[compiled] = r;
        if (!(batch[compiled] = compile(&v, r, now_ms))) {
            failed = compiled;
            goto out;
        }
    }
    if (commit(f, batch, json, n, now_ms, created, &v, &failed) < 0) goto out;
    compiled = 0; /* the engine owns them now */
    rc = 0;
out:
    if (rc < 0 && index) *index = failed;
    for (size_t i = 0; i < compiled; i++) rule_free(batch[i]);
    free(batch);
    free(json);
    return rc;
}

cJSON *mc_faults_list(mc_faults *f, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *items = o ? cJSON_AddArrayToObject(o, "items") : NULL;
    if (!items) {
        cJSON_Delete(o);
        return NULL;
    }
    pthread_mutex_lock(&f->lock);
    bool ok = true;
    for (size_t i = 0; ok && i < f->n; i++)
        ok = cJSON_AddItemToArray(items, rule_json(f->rules[i], now_ms));
    pthread_mutex_unlock(&f->lock);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *mc_faults_get(mc_faults *f, const char *id, int64_t now_ms)
{
    pthread_mutex_lock(&f->lock);
    fault_rule *r = find_locked(f, id, NULL);
    cJSON *o = r ? rule_json(r, now_ms) : NULL;
    pthread_mutex_unlock(&f->lock);
    return o;
}

int mc_faults_delete(mc_faults *f, const char *id)
{
    size_t pos;
    pthread_mutex_lock(&f->lock);
    fault_rule *r = find_locked(f, id, &pos);
    if (r) {
        memmove(&f->rules[pos], &f->rules[pos + 1], (f->n - pos - 1) * sizeof *f->rules);
        f->n--;
    }
    pthread_mutex_unlock(&f->lock);
    rule_free(r);
    return r ? 0 : -1;
}

void mc_faults_clear(mc_faults *f)
{
    pthread_mutex_lock(&f->lock);
    fault_rule **rules = f->rules;
    size_t n = f->n;
    f->rules = NULL;
    f->n = f->cap = 0;
    f->numbered = 0;
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < n; i++) rule_free(rules[i]);
    free(rules);
}

size_t mc_faults_count(mc_faults *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->n;
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* Appends id to the comma-separated list; when it no longer fits, the list
 * ends with ",..." (dropping ids from the end to make room) so a reader
 * knows it was cut. cap must exceed MC_FAULT_ID_MAX + 4. */
static void append_id(char *list, size_t cap, size_t *len, bool *cut, const char *id)
{
    if (*cut) return;
    size_t need = (*len ? 1 : 0) + strlen(id);
    if (*len + need + 1 <= cap) {
        *len += (size_t)snprintf(list + *len, cap - *len, "%s%s", *len ? "," : "", id);
        return;
    }
    *cut = true;
    while (*len + 4 + 1 > cap) {
        char *comma = memrchr(list, ',', *len);
        *len = comma ? (size_t)(comma - list) : 0;
    }
    *len += (size_t)snprintf(list + *len, cap - *len, "%s...", *len ? "," : "");
}

void mc_faults_evaluate(mc_faults *f, const mc_fault_request *req, int64_t now_ms,
                        mc_fault_decision *out)
{
    out->latency_ns = 0;
    out->action = MC_FX_NONE;
    out->phase = MC_PHASE_REQUEST;
    out->status = 0;
    out->code[0] = '\0';
    out->message[0] = '\0';
    out->retry_after_s = 0;
    out->type = NULL;
    out->rules[0] = '\0';

    int mi = req->method ? method_index(req->method) : -1;
    /* Bit N_METHODS is in no rule's mask, so unknown methods match only
     * rules without a method list. */
    unsigned method_bit = mi >= 0 ? 1u << mi : 1u << N_METHODS;
    size_t rules_len = 0;
    bool cut = false;

    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->n; i++) {
        fault_rule *r = f->rules[i];
        if (!rule_active(r, now_ms) || !rule_matches(r, req, method_bit)) continue;
        if (r->probability < 1.0 && !(csl_rng_double(&r->probability_rng) < r->probability))
            continue;
        r->fired++;
        append_id(out->rules, sizeof out->rules, &rules_len, &cut, r->id);
        if (r->type == FT_LATENCY) {
            int64_t d = csl_dist_sample(&r->latency, &r->latency_rng);
            out->latency_ns = d > INT64_MAX - out->latency_ns ? INT64_MAX : out->latency_ns + d;
            out->type = type_names[FT_LATENCY];
            continue;
        }
        out->type = type_names[r->type];
        out->phase = r->phase;
        switch (r->type) {
        case FT_RESET:
            out->action = MC_FX_RESET;
            break;
        case FT_HANG:
            out->action = MC_FX_HANG;
            break;
        case FT_EMPTY:
            out->action = MC_FX_EMPTY;
            break;
        case FT_MALFORMED:
            out->action = MC_FX_MALFORMED;
            break;
        default:
            out->action = MC_FX_ERROR;
            out->status = r->status;
            memcpy(out->code, r->code, sizeof out->code);
            memcpy(out->message, r->message, sizeof out->message);
            if (r->type == FT_RATELIMIT)
                out->retry_after_s = (int)((r->retry_after_ns + 999999999) / 1000000000);
            break;
        }
        break;
    }
    pthread_mutex_unlock(&f->lock);
}
