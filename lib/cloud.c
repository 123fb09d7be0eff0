/* cloud.c — the cloud REST API client: a pooled libcurl transport, typed
 * calls, reply decoding and error classification (see csl/cloud.h).
 *
 * The one idea: the transport only moves bytes and the pure functions
 * decide. An exchange yields (curl code, status, body, Retry-After,
 * Location); csl_cloud_classify_transport / csl_cloud_classify_reply turn a
 * failure into a csl_cloud_code, and the *_from_json decoders turn a
 * success into structs — so every rule about what a reply means is
 * unit-tested without a socket.
 *
 * Connections: each call borrows a curl easy handle from a pool and gives
 * it back, so the handle's keep-alive connection serves the next call; the
 * DNS cache is shared between handles through a curl share handle. The
 * connection cache itself is not shared: libcurl 7.x documents sharing it
 * between concurrent threads as unsafe. Requests that are not safe to
 * repeat go on a fresh connection, because libcurl silently re-sends a
 * request once when a reused connection dies before any reply byte
 * (docs/lib/cloud.md, "Silent re-sends"). */
#include "csl/cloud.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"

#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLOUD_DEFAULT_UA "cloudserver-lab/0.1"
#define CLOUD_CONNECT_TIMEOUT_MS 5000L
#define CLOUD_TIMEOUT_MS 30000L
#define CLOUD_MAX_RESPONSE (16u * 1024 * 1024)
#define CLOUD_MAX_IDLE 16u
#define CLOUD_TOKEN_MAX 4096
#define CLOUD_PAGE_MAX 500
#define CLOUD_MAX_PAGES 100000
#define CLOUD_ID_MAX 1024
#define CLOUD_RETRY_AFTER_CAP 86400
#define CLOUD_SNIPPET 200

/* Cloud calls take from milliseconds to the 30 s timeout. */
static const double cloud_latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,
                                               1.0,   2.5,  5.0,   10.0, 20.0, 30.0};

/* ------------------------------------------------------------------ types */

struct csl_cloud {
    char *base; /* scheme://host[:port][/prefix], no trailing slash */
    char *user_agent;
    char *ca_file;
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_response;
    unsigned max_idle;

    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

    pthread_mutex_t pool_mu;
    CURL **idle;
    size_t nidle;

    pthread_mutex_t token_mu;
    char *auth_header; /* "Authorization: Bearer …", or NULL */

    pthread_mutex_t stats_mu;
    csl_cloud_stats stats;

    csl_metric *m_requests;
    csl_metric *m_duration;
};

/* What came back from one exchange. */
typedef struct xfer {
    csl_buf body;
    size_t max;
    bool too_large;
    long status;
    char retry_after[64];
    char location[256];
} xfer;

/* One request. url is complete; body NULL sends none. */
typedef struct req {
    const char *op;
    const char *method;
    const char *url;
    const char *body;
    const char *key; /* Idempotency-Key, or NULL */
    bool fresh;      /* a new connection: libcurl never re-sends it */
} req;

/* ------------------------------------------------------------------ names */

static const char *const code_names[] = {
    "OK",       "NotFound", "Retryable", "Throttled", "Auth",
    "Conflict", "Invalid",  "Capacity",  "Permanent",
};

static const char *const cause_names[] = {
    "None", "HTTP", "Timeout", "Connect", "Transport", "Decode", "Request",
};

/* Indexed by csl_instance_state. */
static const char *const instance_state_names[] = {
    "unknown",  "pending",   "running",  "resizing", "stopping", "stopped",
    "starting", "rebooting", "deleting", "crashed",  "deleted",
};

static const char *const snapshot_state_names[] = {"unknown", "creating", "available", "deleted"};

static const char *const action_names[] = {"start", "stop", "reboot"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *csl_cloud_code_name(csl_cloud_code c)
{
    return (unsigned)c < NELEM(code_names) ? code_names[c] : "Unknown";
}

const char *csl_cloud_cause_name(csl_cloud_cause c)
{
    return (unsigned)c < NELEM(cause_names) ? cause_names[c] : "Unknown";
}

const char *csl_instance_state_name(csl_instance_state s)
{
    return (unsigned)s < NELEM(instance_state_names) ? instance_state_names[s] : "unknown";
}

const char *csl_cloud_action_name(csl_cloud_action a)
{
    return (unsigned)a < NELEM(action_names) ? action_names[a] : "unknown";
}

/* ------------------------------------------------------------------ errors */

/* Clears err for a new call named op. */
static void err_begin(csl_cloud_error *err, const char *op)
{
    memset(err, 0, sizeof *err);
    snprintf(err->op, sizeof err->op, "%s", op);
}

static csl_cloud_code err_set(csl_cloud_error *err, csl_cloud_code code, csl_cloud_cause cause,
                              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static csl_cloud_code err_set(csl_cloud_error *err, csl_cloud_code code, csl_cloud_cause cause,
                              const char *fmt, ...)
{
    err->code = code;
    err->cause = cause;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

/* A 2xx reply we cannot use: worth retrying, the next one may be whole.
 * The status stays; an operation id from it is not trusted. */
#define decode_fail(err, ...)                                                                      \
    (err->operation[0] = '\0',                                                                     \
     err_set(err, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_DECODE, __VA_ARGS__))
#define request_fail(err, ...) err_set(err, CSL_CLOUD_INVALID, CSL_CLOUD_CAUSE_REQUEST, __VA_ARGS__)
#define oom_fail(err) err_set(err, CSL_CLOUD_RETRYABLE, CSL_CLOUD_CAUSE_REQUEST, "out of memory")

/* Copies at most max bytes of s (len bytes) into out, printable ASCII only,
 * so a binary or HTML body cannot spoil a log line. */
static void snippet(char *out, size_t outsz, const char *s, size_t len, size_t max)
{
    size_t o = 0;
    if (outsz == 0) return;
    for (size_t i = 0; s && i < len && i < max && o + 1 < outsz; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : ' ';
    }
    if (s && len > max && o + 4 < outsz) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

const char *csl_cloud_error_str(const csl_cloud_error *e, char *buf, size_t bufsz)
{
    if (!buf || bufsz == 0) return buf;
    const char *op = e->op[0] ? e->op : "cloud";
    if (e->code == CSL_CLOUD_OK) {
        snprintf(buf, bufsz, "%s: OK (HTTP %d)", op, e->status);
    } else if (e->cause == CSL_CLOUD_CAUSE_HTTP) {
        snprintf(buf, bufsz, "%s: HTTP %d %s: %s", op, e->status,
                 e->cloud_code[0] ? e->cloud_code : "(no code)", e->message);
    } else {
        const char *what = e->cause == CSL_CLOUD_CAUSE_TIMEOUT     ? "timeout"
                           : e->cause == CSL_CLOUD_CAUSE_CONNECT   ? "cannot connect"
                           : e->cause == CSL_CLOUD_CAUSE_TRANSPORT ? "connection failed"
                           : e->cause == CSL_CLOUD_CAUSE_DECODE    ? "bad reply"
                                                                   : "refused";
        if (e->status)
            snprintf(buf, bufsz, "%s: %s (HTTP %d): %s", op, what, e->status, e->message);
        else
            snprintf(buf, bufsz, "%s: %s: %s", op, what, e->message);
    }
    return buf;
}

int csl_cloud_parse_retry_after(const char *value, int64_t now_ms)
{
    if (!value) return -1;
    while (*value == ' ' || *value == '\t') value++;
    size_t n = strlen(value);
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r')) n--;
    if (n == 0 || n >= 64) return -1;
    char v[64];
    memcpy(v, value, n);
    v[n] = '\0';
    if (isdigit((unsigned char)v[0])) {
        for (size_t i = 0; i < n; i++)
            if (!isdigit((unsigned char)v[i])) return -1;
        errno = 0;
        unsigned long long s = strtoull(v, NULL, 10);
        if (errno == ERANGE || s > CLOUD_RETRY_AFTER_CAP) return CLOUD_RETRY_AFTER_CAP;
        return (int)s;
    }
    /* HTTP-date, the IMF-fixdate form RFC 9110 requires senders to use. */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return -1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1) return -1;
    int64_t delta_ms = (int64_t)t * 1000 - now_ms;
    if (delta_ms <= 0) return 0;
    int64_t s = (delta_ms + 999) / 1000;
    return s > CLOUD_RETRY_AFTER_CAP ? CLOUD_RETRY_AFTER_CAP : (int)s;
}

void csl_cloud_classify_reply(int status, const char *body, size_t len, const char *retry_after,
                              csl_cloud_error *err)
{
    char op[sizeof err->op];
    memcpy(op, err->op, sizeof op);
    memset(err, 0, sizeof *err);
    memcpy(err->op, op, sizeof op);
    err->status = status;
    int ra = csl_cloud_parse_retry_after(retry_after, csl_wall_ms());
    err->retry_after_s = ra > 0 ? ra : 0;
    if (status >= 200 && status < 300) {
        err->code = CSL_CLOUD_OK;
        return;
    }
    err->cause = CSL_CLOUD_CAUSE_HTTP;

    /* The cloud's envelope: {"error":{"code":"…","message":"…"}}. */
    bool envelope = false;
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(code) && code->valuestring[0]) {
        envelope = true;
        snprintf(err->cloud_code, sizeof err->cloud_code, "%s", code->valuestring);
        if (cJSON_IsString(msg))
            snprintf(err->message, sizeof err->message, "%s", msg->valuestring);
    } else if (body && len) {
        snippet(err->message, sizeof err->message, body, len, CLOUD_SNIPPET);
    }
    cJSON_Delete(j);

    if (strcmp(err->cloud_code, "InsufficientCapacity") == 0) {
        err->code = CSL_CLOUD_CAPACITY;
    } else if (status == 400 || status == 422) {
        err->code = CSL_CLOUD_INVALID;
    } else if (status == 401 || status == 403) {
        err->code = CSL_CLOUD_AUTH;
    } else if (status == 404) {
        /* Only the cloud saying so means "gone": a 404 page from a proxy or
         * a wrong endpoint must not make a reconciler replace an instance. */
        if (envelope) {
            err->code = CSL_CLOUD_NOT_FOUND;
        } else {
            err->code = CSL_CLOUD_PERMANENT;
            char was[CLOUD_SNIPPET + 8];
            snippet(was, sizeof was, body, len, 120);
            snprintf(err->message, sizeof err->message,
                     "404 without the cloud's JSON error: is the endpoint URL right? (body: %s)",
                     was[0] ? was : "empty");
        }
    } else if (status == 408 || (status >= 500 && status < 600)) {
        err->code = CSL_CLOUD_RETRYABLE;
    } else if (status == 409) {
        err->code = CSL_CLOUD_CONFLICT;
    } else if (status == 429) {
        err->code = CSL_CLOUD_THROTTLED;
    } else {
        err->code = CSL_CLOUD_PERMANENT;
    }
    if (!err->message[0]) snprintf(err->message, sizeof err->message, "HTTP %d", status);
}

void csl_cloud_classify_transport(int curl_code, const char *text, csl_cloud_error *err)
{
    char op[sizeof err->op];
    memcpy(op, err->op, sizeof op);
    memset(err, 0, sizeof *err);
    memcpy(err->op, op, sizeof op);
    CURLcode cc = (CURLcode)curl_code;
    if (!text || !*text) text = curl_easy_strerror(cc);
    snprintf(err->curl_error, sizeof err->curl_error, "%s", text);
    snprintf(err->message, sizeof err->message, "%s", text);
    switch (cc) {
    case CURLE_OK:
        err->code = CSL_CLOUD_OK;
        err->curl_error[0] = err->message[0] = '\0';
        break;
    case CURLE_OPERATION_TIMEDOUT:
        err->code = CSL_CLOUD_RETRYABLE;
        err->cause = CSL_CLOUD_CAUSE_TIMEOUT;
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        err->code = CSL_CLOUD_RETRYABLE;
        err->cause = CSL_CLOUD_CAUSE_CONNECT;
        break;
    case CURLE_OUT_OF_MEMORY:
        err->code = CSL_CLOUD_RETRYABLE;
        err->cause = CSL_CLOUD_CAUSE_REQUEST;
        break;
    /* Our configuration, not the network: retrying as is cannot help. */
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_PEER_FAILED_VERIFICATION:
        err->code = CSL_CLOUD_PERMANENT;
        err->cause = CSL_CLOUD_CAUSE_CONNECT;
        break;
    default: /* reset, closed without a reply, send/recv errors, TLS hiccups */
        err->code = CSL_CLOUD_RETRYABLE;
        err->cause = CSL_CLOUD_CAUSE_TRANSPORT;
        break;
    }
}

/* ------------------------------------------------------------------ decoding */

static const char *json_type(const cJSON *j)
{
    if (!j) return "nothing";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "something else";
}

static int why_set(char *why, size_t whysz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int why_set(char *why, size_t whysz, const char *fmt, ...)
{
    if (why && whysz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whysz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Field name → string copy. Absent and optional: *out NULL, 0. */
static int get_str(const cJSON *o, const char *name, bool required, bool nonempty, char **out,
                   char *why, size_t whysz)
{
    *out = NULL;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!f) return required ? why_set(why, whysz, "%s: missing", name) : 0;
    if (!cJSON_IsString(f))
        return why_set(why, whysz, "%s: expected a string, got %s", name, json_type(f));
    if (nonempty && !f->valuestring[0]) return why_set(why, whysz, "%s: empty", name);
    if (!(*out = strdup(f->valuestring))) return why_set(why, whysz, "out of memory");
    return 0;
}

/* Field name → integer in [lo, hi]. Absent and optional: *out 0, 0. */
static int get_int(const cJSON *o, const char *name, bool required, int64_t lo, int64_t hi,
                   int64_t *out, char *why, size_t whysz)
{
    *out = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!f) return required ? why_set(why, whysz, "%s: missing", name) : 0;
    if (!cJSON_IsNumber(f))
        return why_set(why, whysz, "%s: expected an integer, got %s", name, json_type(f));
    double d = f->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi)
        return why_set(why, whysz, "%s: expected an integer in %lld..%lld, got %g", name,
                       (long long)lo, (long long)hi, d);
    *out = (int64_t)d;
    return 0;
}

/* Field name → epoch ms from RFC 3339. Absent: 0. */
static int get_time(const cJSON *o, const char *name, int64_t *out, char *why, size_t whysz)
{
    *out = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!f) return 0;
    if (!cJSON_IsString(f))
        return why_set(why, whysz, "%s: expected an RFC 3339 time, got %s", name, json_type(f));
    if (csl_rfc3339_parse(f->valuestring, out) != 0)
        return why_set(why, whysz, "%s: not an RFC 3339 time: \"%.64s\"", name, f->valuestring);
    return 0;
}

static void tags_free(csl_cloud_tag *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].key);
        free(t[i].value);
    }
    free(t);
}

/* "tags": an object of strings. Absent: none. */
static int get_tags(const cJSON *o, csl_cloud_tag **out, size_t *nout, char *why, size_t whysz)
{
    *out = NULL;
    *nout = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "tags");
    if (!f) return 0;
    if (!cJSON_IsObject(f))
        return why_set(why, whysz, "tags: expected an object, got %s", json_type(f));
    size_t n = (size_t)cJSON_GetArraySize(f);
    if (n == 0) return 0;
    csl_cloud_tag *t = calloc(n, sizeof *t);
    if (!t) return why_set(why, whysz, "out of memory");
    size_t i = 0;
    for (const cJSON *m = f->child; m && i < n; m = m->next, i++) {
        if (!cJSON_IsString(m)) {
            why_set(why, whysz, "tags.%.64s: expected a string, got %s", m->string, json_type(m));
            goto fail;
        }
        t[i].key = strdup(m->string ? m->string : "");
        t[i].value = strdup(m->valuestring);
        if (!t[i].key || !t[i].value) {
            why_set(why, whysz, "out of memory");
            i++;
            goto fail;
        }
    }
    *out = t;
    *nout = i;
    return 0;
fail:
    tags_free(t, i);
    return -1;
}

static int get_ips(const cJSON *o, char ***out, size_t *nout, char *why, size_t whysz)
{
    *out = NULL;
    *nout = 0;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(o, "ipAddresses");
    if (!f) return 0;
    if (!cJSON_IsArray(f))
        return why_set(why, whysz, "ipAddresses: expected an array, got %s", json_type(f));
    size_t n = (size_t)cJSON_GetArraySize(f);
    if (n == 0) return 0;
    char **v = calloc(n, sizeof *v);
    if (!v) return why_set(why, whysz, "out of memory");
    size_t i = 0;
    for (const cJSON *m = f->child; m && i < n; m = m->next, i++) {
        if (!cJSON_IsString(m)) {
            why_set(why, whysz, "ipAddresses[%zu]: expected a string, got %s", i, json_type(m));
            goto fail;
        }
        if (!(v[i] = strdup(m->valuestring))) {
            why_set(why, whysz, "out of memory");
            goto fail;
        }
    }
    *out = v;
    *nout = i;
    return 0;
fail:
    for (size_t k = 0; k < i; k++) free(v[k]);
    free(v);
    return -1;
}

static int name_lookup(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i], s) == 0) return (int)i;
    return 0;
}

void csl_cloud_instance_free(csl_cloud_instance *i)
{
    if (!i) return;
    free(i->id);
    free(i->name);
    free(i->state_raw);
    free(i->image);
    free(i->zone);
    free(i->network_type);
    for (size_t k = 0; k < i->n_ip_addresses; k++) free(i->ip_addresses[k]);
    free(i->ip_addresses);
    tags_free(i->tags, i->n_tags);
    memset(i, 0, sizeof *i);
}

int csl_cloud_instance_from_json(const cJSON *j, csl_cloud_instance *out, char *why, size_t whysz)
{
    csl_cloud_instance in;
    memset(&in, 0, sizeof in);
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(j))
        return why_set(why, whysz, "expected an instance object, got %s", json_type(j));
    int64_t cpu, mem, disk, ipc;
    if (get_str(j, "id", true, true, &in.id, why, whysz) ||
        get_str(j, "name", true, false, &in.name, why, whysz) ||
        get_str(j, "state", true, true, &in.state_raw, why, whysz) ||
        get_int(j, "cpu", true, 0, INT32_MAX, &cpu, why, whysz) ||
        get_int(j, "memoryMiB", true, 0, INT64_C(1) << 53, &mem, why, whysz) ||
        get_int(j, "diskGiB", true, 0, INT64_C(1) << 53, &disk, why, whysz) ||
        get_str(j, "image", true, false, &in.image, why, whysz) ||
        get_str(j, "zone", true, false, &in.zone, why, whysz) ||
        get_str(j, "networkType", false, false, &in.network_type, why, whysz) ||
        get_int(j, "ipCount", false, 0, INT32_MAX, &ipc, why, whysz) ||
        get_ips(j, &in.ip_addresses, &in.n_ip_addresses, why, whysz) ||
        get_tags(j, &in.tags, &in.n_tags, why, whysz) ||
        get_time(j, "createdAt", &in.created_ms, why, whysz) ||
        get_time(j, "updatedAt", &in.updated_ms, why, whysz))
        goto fail;
    if (!in.network_type && !(in.network_type = strdup("standard"))) {
        why_set(why, whysz, "out of memory");
        goto fail;
    }
    in.cpu = (int)cpu;
    in.memory_mib = mem;
    in.disk_gib = disk;
    in.ip_count = (int)ipc;
    in.state = (csl_instance_state)name_lookup(instance_state_names, NELEM(instance_state_names),
                                               in.state_raw);
    *out = in;
    return 0;
fail:
    csl_cloud_instance_free(&in);
    return -1;
}

void csl_cloud_snapshot_free(csl_cloud_snapshot *s)
{
    if (!s) return;
    free(s->id);
    free(s->instance_id);
    free(s->name);
    free(s->state_raw);
    tags_free(s->tags, s->n_tags);
    memset(s, 0, sizeof *s);
}

int csl_cloud_snapshot_from_json(const cJSON *j, csl_cloud_snapshot *out, char *why, size_t whysz)
{
    csl_cloud_snapshot s;
    memset(&s, 0, sizeof s);
    memset(out, 0, sizeof *out);
    if (!cJSON_IsObject(j))
        return why_set(why, whysz, "expected a snapshot object, got %s", json_type(j));
    if (get_str(j, "id", true, true, &s.id, why, whysz) ||
        get_str(j, "instanceId", true, false, &s.instance_id, why, whysz) ||
        get_str(j, "state", true, true, &s.state_raw, why, whysz) ||
        get_str(j, "name", false, false, &s.name, why, whysz) ||
        get_int(j, "sizeGiB", false, 0, INT64_C(1) << 53, &s.size_gib, why, whysz) ||
        get_tags(j, &s.tags, &s.n_tags, why, whysz) ||
        get_time(j, "createdAt", &s.created_ms, why, whysz))
        goto fail;
    if (!s.name && !(s.name = strdup(s.id))) {
        why_set(why, whysz, "out of memory");
        goto fail;
    }
    s.state = (csl_snapshot_state)name_lookup(snapshot_state_names, NELEM(snapshot_state_names),
                                              s.state_raw);
    *out = s;
    return 0;
fail:
    csl_cloud_snapshot_free(&s);
    return -1;
}

void csl_cloud_instance_list_free(csl_cloud_instance_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) csl_cloud_instance_free(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

void csl_cloud_snapshot_list_free(csl_cloud_snapshot_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) csl_cloud_snapshot_free(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

const char *csl_cloud_instance_tag(const csl_cloud_instance *i, const char *key)
{
    for (size_t k = 0; i && key && k < i->n_tags; k++)
        if (strcmp(i->tags[k].key, key) == 0) return i->tags[k].value;
    return NULL;
}

/* Parses a page's envelope: the items array and the next token. */
static int page_envelope(const char *body, size_t len, cJSON **doc, const cJSON **items,
                         char **next, char *why, size_t whysz)
{
    *next = NULL;
    *doc = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (!*doc) {
        char s[CLOUD_SNIPPET + 8];
        snippet(s, sizeof s, body, len, 80);
        return why_set(why, whysz, "malformed JSON (%zu bytes): %s", len, s[0] ? s : "empty");
    }
    if (!cJSON_IsObject(*doc))
        return why_set(why, whysz, "expected a list object, got %s", json_type(*doc));
    *items = cJSON_GetObjectItemCaseSensitive(*doc, "items");
    if (!cJSON_IsArray(*items))
        return why_set(why, whysz, "items: expected an array, got %s", json_type(*items));
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(*doc, "nextPageToken");
    if (tok && !cJSON_IsNull(tok)) {
        if (!cJSON_IsString(tok))
            return why_set(why, whysz, "nextPageToken: expected a string, got %s", json_type(tok));
        /* An empty token is the last page, as in Google's APIs. */
        if (tok->valuestring[0] && !(*next = strdup(tok->valuestring)))
            return why_set(why, whysz, "out of memory");
    }
    return 0;
}

/* The two page parsers differ only in the element type; a macro would hide
 * the types, so each is spelled out. */
int csl_cloud_instance_page_parse(const char *body, size_t len, csl_cloud_instance_list *list,
                                  char **next, char *why, size_t whysz)
{
    cJSON *doc = NULL;
    const cJSON *items = NULL;
    char *tok = NULL;
    *next = NULL;
    if (page_envelope(body, len, &doc, &items, &tok, why, whysz) != 0) goto fail;
    size_t add = (size_t)cJSON_GetArraySize(items);
    csl_cloud_instance *v = add ? realloc(list->items, (list->n + add) * sizeof *v) : list->items;
    if (add && !v) {
        why_set(why, whysz, "out of memory");
        goto fail;
    }
    list->items = v;
    size_t k = 0;
    char w[256];
    for (const cJSON *it = items->child; it; it = it->next, k++) {
        if (csl_cloud_instance_from_json(it, &v[list->n + k], w, sizeof w) != 0) {
            why_set(why, whysz, "items[%zu]: %s", k, w);
            for (size_t d = 0; d < k; d++) csl_cloud_instance_free(&v[list->n + d]);
            goto fail;
        }
    }
    list->n += k;
    cJSON_Delete(doc);
    *next = tok;
    return 0;
fail:
    free(tok);
    cJSON_Delete(doc);
    return -1;
}

int csl_cloud_snapshot_page_parse(const char *body, size_t len, csl_cloud_snapshot_list *list,
                                  char **next, char *why, size_t whysz)
{
    cJSON *doc = NULL;
    const cJSON *items = NULL;
    char *tok = NULL;
    *next = NULL;
    if (page_envelope(body, len, &doc, &items, &tok, why, whysz) != 0) goto fail;
    size_t add = (size_t)cJSON_GetArraySize(items);
    csl_cloud_snapshot *v = add ? realloc(list->items, (list->n + add) * sizeof *v) : list->items;
    if (add && !v) {
        why_set(why, whysz, "out of memory");
        goto fail;
    }
    list->items = v;
    size_t k = 0;
    char w[256];
    for (const cJSON *it = items->child; it; it = it->next, k++) {
        if (csl_cloud_snapshot_from_json(it, &v[list->n + k], w, sizeof w) != 0) {
            why_set(why, whysz, "items[%zu]: %s", k, w);
            for (size_t d = 0; d < k; d++) csl_cloud_snapshot_free(&v[list->n + d]);
            goto fail;
        }
    }
    list->n += k;
    cJSON_Delete(doc);
    *next = tok;
    return 0;
fail:
    free(tok);
    cJSON_Delete(doc);
    return -1;
}

/* ------------------------------------------------------------------ request bodies */

/* Adds the tags object; false on a NULL key or out of memory. */
static bool add_tags(cJSON *o, const csl_cloud_kv *tags, size_t n, char *why, size_t whysz)
{
    if (n == 0) return true;
    cJSON *t = cJSON_AddObjectToObject(o, "tags");
    if (!t) return why_set(why, whysz, "out of memory"), false;
    for (size_t i = 0; i < n; i++) {
        if (!tags[i].key || !tags[i].key[0])
            return why_set(why, whysz, "tags[%zu]: the key is empty", i), false;
        if (!cJSON_AddStringToObject(t, tags[i].key, tags[i].value ? tags[i].value : ""))
            return why_set(why, whysz, "out of memory"), false;
    }
    return true;
}

char *csl_cloud_instance_spec_json(const csl_cloud_instance_spec *spec, char *why, size_t whysz)
{
    if (!spec) return why_set(why, whysz, "no spec"), NULL;
    const char *missing = !spec->name    ? "name"
                          : !spec->image ? "image"
                          : !spec->zone  ? "zone"
                                         : NULL;
    if (missing) return why_set(why, whysz, "spec.%s is required", missing), NULL;
    if (spec->n_tags && !spec->tags) return why_set(why, whysz, "spec.tags is NULL"), NULL;
    cJSON *o = cJSON_CreateObject();
    bool ok =
        o && cJSON_AddStringToObject(o, "name", spec->name) &&
        cJSON_AddNumberToObject(o, "cpu", spec->cpu) &&
        cJSON_AddNumberToObject(o, "memoryMiB", (double)spec->memory_mib) &&
        cJSON_AddNumberToObject(o, "diskGiB", (double)spec->disk_gib) &&
        cJSON_AddStringToObject(o, "image", spec->image) &&
        cJSON_AddStringToObject(o, "zone", spec->zone) &&
        (!spec->network_type || cJSON_AddStringToObject(o, "networkType", spec->network_type)) &&
        (!spec->ip_count || cJSON_AddNumberToObject(o, "ipCount", spec->ip_count));
    if (!ok) why_set(why, whysz, "out of memory");
    if (ok) ok = add_tags(o, spec->tags, spec->n_tags, why, whysz);
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    if (ok && !s) why_set(why, whysz, "out of memory");
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------------ client */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ok;

static void curl_init_once(void)
{
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    csl_cloud *c = ctx;
    if ((unsigned)data < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&c->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    csl_cloud *c = ctx;
    if ((unsigned)data < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&c->share_mu[data]);
}

static bool token_ok(const char *t)
{
    if (strlen(t) > CLOUD_TOKEN_MAX) return false;
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    return true;
}

/* "Authorization: Bearer T", or NULL for no token; *bad on a refused token. */
static char *auth_line(const char *token, bool *bad)
{
    *bad = false;
    if (!token || !*token) return NULL;
    if (!token_ok(token)) {
        *bad = true;
        return NULL;
    }
    csl_buf b = CSL_BUF_INIT;
    csl_buf_printf(&b, "Authorization: Bearer %s", token);
    if (b.oom) *bad = true;
    return csl_buf_steal(&b);
}

csl_cloud *csl_cloud_new(const char *base_url, const csl_cloud_options *opt, char *err,
                         size_t errsz)
{
    csl_cloud_options o = {0};
    if (opt) o = *opt;
    if (!base_url ||
        (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)) {
        why_set(err, errsz,
                "cloud endpoint \"%.200s\": expected an http:// or https:// URL, e.g. "
                "http://127.0.0.1:8090",
                base_url ? base_url : "(none)");
        return NULL;
    }
    const char *host = strstr(base_url, "://") + 3;
    if (!*host || *host == '/' || strpbrk(base_url, " \t\r\n?#")) {
        why_set(err, errsz, "cloud endpoint \"%.200s\": no host, or a space, '?' or '#' in it",
                base_url);
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    if (!curl_ok) {
        why_set(err, errsz, "cloud client: curl_global_init failed");
        return NULL;
    }
    csl_cloud *c = calloc(1, sizeof *c);
    if (!c) goto oom_early;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&c->share_mu[i], NULL);
    pthread_mutex_init(&c->pool_mu, NULL);
    pthread_mutex_init(&c->token_mu, NULL);
    pthread_mutex_init(&c->stats_mu, NULL);

    bool bad;
    c->auth_header = auth_line(o.token, &bad);
    if (bad) {
        why_set(err, errsz, "cloud token: control characters, longer than %d bytes, or no memory",
                CLOUD_TOKEN_MAX);
        csl_cloud_free(c);
        return NULL;
    }
    c->base = strdup(base_url);
    c->user_agent = strdup(o.user_agent && *o.user_agent ? o.user_agent : CLOUD_DEFAULT_UA);
    if (o.ca_file && !(c->ca_file = strdup(o.ca_file))) goto oom;
    if (!c->base || !c->user_agent) goto oom;
    size_t n = strlen(c->base);
    while (n > 0 && c->base[n - 1] == '/') c->base[--n] = '\0';
    c->connect_timeout_ms =
        o.connect_timeout_ms > 0 ? o.connect_timeout_ms : CLOUD_CONNECT_TIMEOUT_MS;
    c->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : CLOUD_TIMEOUT_MS;
    c->max_response = o.max_response ? o.max_response : CLOUD_MAX_RESPONSE;
    c->max_idle = o.max_idle ? o.max_idle : CLOUD_MAX_IDLE;
    if (!(c->idle = calloc(c->max_idle, sizeof *c->idle))) goto oom;

    c->share = curl_share_init();
    if (!c->share) goto oom;
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

    if (o.metrics) {
        c->m_requests = csl_metrics_counter(
            o.metrics, "cloudserver_cloud_api_requests_total",
            "Cloud API requests by operation and HTTP status (\"error\": no reply came).",
            CSL_LABELS("op", "code"));
        c->m_duration = csl_metrics_histogram(
            o.metrics, "cloudserver_cloud_api_request_duration_seconds",
            "Cloud API request latency by operation, failures included.", CSL_LABELS("op"),
            cloud_latency_buckets, NELEM(cloud_latency_buckets));
    }
    return c;
oom:
    csl_cloud_free(c);
oom_early:
    why_set(err, errsz, "cloud client: out of memory");
    return NULL;
}

void csl_cloud_free(csl_cloud *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nidle; i++) curl_easy_cleanup(c->idle[i]);
    free(c->idle);
    if (c->share) curl_share_cleanup(c->share);
    free(c->base);
    free(c->user_agent);
    free(c->ca_file);
    free(c->auth_header);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&c->share_mu[i]);
    pthread_mutex_destroy(&c->pool_mu);
    pthread_mutex_destroy(&c->token_mu);
    pthread_mutex_destroy(&c->stats_mu);
    free(c);
}

int csl_cloud_set_token(csl_cloud *c, const char *token)
{
    bool bad;
    char *line = auth_line(token, &bad);
    if (bad) return -1;
    pthread_mutex_lock(&c->token_mu);
    char *old = c->auth_header;
    c->auth_header = line;
    pthread_mutex_unlock(&c->token_mu);
    free(old);
    return 0;
}

void csl_cloud_get_stats(csl_cloud *c, csl_cloud_stats *out)
{
    pthread_mutex_lock(&c->stats_mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->stats_mu);
}

/* ------------------------------------------------------------------ pool */

static CURL *pool_get(csl_cloud *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_mu);
    if (c->nidle > 0) h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->pool_mu);
    if (h) return h;
    h = curl_easy_init();
    /* The share survives curl_easy_reset, so it is set once per handle. */
    if (h) curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    return h;
}

/* LIFO, so the handle with the freshest connection is lent first. */
static void pool_put(csl_cloud *c, CURL *h)
{
    pthread_mutex_lock(&c->pool_mu);
    if (c->nidle < c->max_idle) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (h) curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------ transport */

static size_t on_write(char *p, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    size_t n = sz * nm;
    if (x->body.len + n > x->max) {
        x->too_large = true;
        return 0;
    }
    return csl_buf_append(&x->body, p, n) ? n : 0;
}

/* Copies the value of header name from line p (n bytes) into out. */
static bool header_is(const char *p, size_t n, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(p, name, nl) != 0 || p[nl] != ':') return false;
    const char *v = p + nl + 1, *e = p + n;
    while (v < e && (*v == ' ' || *v == '\t')) v++;
    while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\t')) e--;
    snprintf(out, outsz, "%.*s", (int)(e - v), v);
    return true;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    size_t n = sz * nm;
    /* A status line starts a new header block: only the final one counts. */
    if (n >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        x->retry_after[0] = '\0';
        x->location[0] = '\0';
    } else if (!header_is(p, n, "Retry-After", x->retry_after, sizeof x->retry_after)) {
        header_is(p, n, "Location", x->location, sizeof x->location);
    }
    return n;
}

static bool hdr_add(struct curl_slist **h, const char *line)
{
    struct curl_slist *l = curl_slist_append(*h, line);
    if (l) *h = l;
    return l != NULL;
}

static void record(csl_cloud *c, const char *op, int status, int64_t t0, int64_t t1)
{
    if (c->m_requests) {
        char code[16];
        if (status > 0)
            snprintf(code, sizeof code, "%d", status);
        else
            snprintf(code, sizeof code, "error");
        csl_metric_inc(c->m_requests, CSL_LABELS(op, code));
    }
    if (c->m_duration) csl_metric_observe(c->m_duration, (double)(t1 - t0) / 1e9, CSL_LABELS(op));
}

/* One HTTP exchange. Returns OK for a 2xx (the body is in x), else the
 * classified failure in err. */
static csl_cloud_code exchange(csl_cloud *c, const req *r, xfer *x, csl_cloud_error *err)
{
    memset(x, 0, sizeof *x);
    x->max = c->max_response;
    CURL *h = pool_get(c);
    if (!h) return oom_fail(err);
    curl_easy_reset(h);

    struct curl_slist *hdrs = NULL;
    bool hok = true;
    pthread_mutex_lock(&c->token_mu);
    if (c->auth_header) hok = hdr_add(&hdrs, c->auth_header);
    pthread_mutex_unlock(&c->token_mu);
    char line[320];
    if (hok && r->key) {
        snprintf(line, sizeof line, "Idempotency-Key: %s", r->key);
        hok = hdr_add(&hdrs, line);
    }
    if (hok && r->body) hok = hdr_add(&hdrs, "Content-Type: application/json");
    if (hok) hok = hdr_add(&hdrs, "Accept: application/json");
    /* No 100-continue round trip: our bodies are small. */
    if (hok) hok = hdr_add(&hdrs, "Expect:");
    if (!hok) {
        curl_slist_free_all(hdrs);
        pool_put(c, h);
        return oom_fail(err);
    }

    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    if (c->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    /* A one-off connection: never re-sent by libcurl, and closed after, so
     * the handle's kept keep-alive connection stays its only one. */
    if (r->fresh) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
    if (strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (strcmp(r->method, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
        if (r->body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
        } else if (strcmp(r->method, "POST") == 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        }
    }

    int64_t t0 = csl_mono_ns();
    CURLcode cc = curl_easy_perform(h);
    int64_t t1 = csl_mono_ns();
    long status = 0, nconn = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn);
    /* Nothing on the handle may point at this stack frame once it idles. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    curl_slist_free_all(hdrs);
    /* A handle whose transfer failed may hold a broken connection; libcurl
     * discards those itself, so the handle stays reusable. */
    pool_put(c, h);

    pthread_mutex_lock(&c->stats_mu);
    c->stats.requests++;
    c->stats.connects += nconn > 0 ? (uint64_t)nconn : 0;
    pthread_mutex_unlock(&c->stats_mu);

    x->status = status;
    bool replied = cc == CURLE_OK && !x->too_large;
    record(c, r->op, replied ? (int)status : 0, t0, t1);
    if (csl_log_enabled(CSL_LOG_DEBUG)) {
        char st[16], ms[32];
        snprintf(st, sizeof st, "%ld", replied ? status : 0L);
        snprintf(ms, sizeof ms, "%.1f", (double)(t1 - t0) / 1e6);
        csl_log(CSL_LOG_DEBUG, "cloud request", "op", r->op, "method", r->method, "url", r->url,
                "status", st, "ms", ms, "curl", cc == CURLE_OK ? NULL : curl_easy_strerror(cc),
                NULL);
    }

    csl_cloud_code code;
    if (x->too_large) {
        err->status = (int)status;
        code = decode_fail(err, "reply larger than %zu bytes (max_response)", x->max);
    } else if (cc == CURLE_OUT_OF_MEMORY || (cc == CURLE_WRITE_ERROR && x->body.oom)) {
        code = oom_fail(err);
    } else if (cc != CURLE_OK) {
        csl_cloud_classify_transport((int)cc, errbuf, err);
        err->status = (int)status;
        code = err->code;
    } else {
        csl_cloud_classify_reply((int)status, x->body.data, x->body.len, x->retry_after, err);
        code = err->code;
        if (code == CSL_CLOUD_OK && strcmp(r->method, "GET") != 0 && x->location[0]) {
            const char *slash = strrchr(x->location, '/');
            snprintf(err->operation, sizeof err->operation, "%.63s",
                     slash ? slash + 1 : x->location);
        }
    }
    if (code != CSL_CLOUD_OK) csl_buf_free(&x->body);
    return code;
}

/* Percent-encodes s as one path segment or query value. */
static void put_escaped(csl_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            csl_buf_putc(b, (char)*p);
        } else {
            csl_buf_putc(b, '%');
            csl_buf_putc(b, hex[*p >> 4]);
            csl_buf_putc(b, hex[*p & 15]);
        }
    }
}

static bool id_ok(const char *id, const char *what, csl_cloud_error *err)
{
    if (!id || !*id || strcmp(id, ".") == 0 || strcmp(id, "..") == 0) {
        request_fail(err, "%s id \"%s\" is not a valid id", what, id ? id : "(null)");
        return false;
    }
    if (strlen(id) > CLOUD_ID_MAX) {
        request_fail(err, "%s id is longer than %d bytes", what, CLOUD_ID_MAX);
        return false;
    }
    return true;
}

static bool key_ok(const char *key, csl_cloud_error *err)
{
    size_t n = key ? strlen(key) : 0;
    bool ok = n >= 1 && n <= 255;
    for (size_t i = 0; ok && i < n; i++) ok = key[i] > 0x20 && key[i] < 0x7f;
    if (!ok)
        request_fail(err,
                     "Idempotency-Key must be 1..255 printable ASCII characters without spaces "
                     "(the object's uid), got \"%.64s\"",
                     key ? key : "(null)");
    return ok;
}

/* base + path (+ an escaped id, + a suffix). */
static void build_url(csl_buf *u, const csl_cloud *c, const char *path, const char *id,
                      const char *suffix)
{
    csl_buf_puts(u, c->base);
    csl_buf_puts(u, path);
    if (id) put_escaped(u, id);
    if (suffix) csl_buf_puts(u, suffix);
}

/* Decodes a 2xx body that must hold one JSON document; NULL with err. */
static cJSON *reply_json(const xfer *x, csl_cloud_error *err)
{
    cJSON *j = x->body.len ? cJSON_ParseWithLength(x->body.data, x->body.len) : NULL;
    if (!j) {
        char s[CLOUD_SNIPPET + 8];
        snippet(s, sizeof s, x->body.data, x->body.len, 80);
        decode_fail(err, "malformed JSON reply (HTTP %ld, %zu bytes): %s", x->status, x->body.len,
                    s[0] ? s : "empty");
    }
    return j;
}

/* A call whose reply is an instance: exchange, decode into out (or a
 * scratch instance when out is NULL, so a bad reply still fails). */
static csl_cloud_code instance_call(csl_cloud *c, const req *r, csl_cloud_instance *out,
                                    csl_cloud_error *err)
{
    xfer x;
    csl_cloud_code code = exchange(c, r, &x, err);
    if (code != CSL_CLOUD_OK) return code;
    cJSON *j = reply_json(&x, err);
    csl_buf_free(&x.body);
    if (!j) return err->code;
    csl_cloud_instance scratch;
    char why[256];
    if (csl_cloud_instance_from_json(j, out ? out : &scratch, why, sizeof why) != 0)
        code = decode_fail(err, "unexpected instance in the reply: %s", why);
    else if (!out)
        csl_cloud_instance_free(&scratch);
    cJSON_Delete(j);
    return code;
}

static csl_cloud_code snapshot_call(csl_cloud *c, const req *r, csl_cloud_snapshot *out,
                                    csl_cloud_error *err)
{
    xfer x;
    csl_cloud_code code = exchange(c, r, &x, err);
    if (code != CSL_CLOUD_OK) return code;
    cJSON *j = reply_json(&x, err);
    csl_buf_free(&x.body);
    if (!j) return err->code;
    csl_cloud_snapshot scratch;
    char why[256];
    if (csl_cloud_snapshot_from_json(j, out ? out : &scratch, why, sizeof why) != 0)
        code = decode_fail(err, "unexpected snapshot in the reply: %s", why);
    else if (!out)
        csl_cloud_snapshot_free(&scratch);
    cJSON_Delete(j);
    return code;
}

typedef int (*page_parser)(const char *body, size_t len, void *list, char **next, char *why,
                           size_t whysz);

static int instance_page(const char *body, size_t len, void *list, char **next, char *why,
                         size_t whysz)
{
    return csl_cloud_instance_page_parse(body, len, list, next, why, whysz);
}

static int snapshot_page(const char *body, size_t len, void *list, char **next, char *why,
                         size_t whysz)
{
    return csl_cloud_snapshot_page_parse(body, len, list, next, why, whysz);
}

/* GETs path?args&limit=N[&pageToken=T] until a page has no next token.
 * args is "" or "a=b&c=d&" (escaped, ending with '&'). */
static csl_cloud_code list_all(csl_cloud *c, const char *op, const char *path, const char *args,
                               int limit, page_parser parse, void *list, csl_cloud_error *err)
{
    char *token = NULL;
    csl_cloud_code code = CSL_CLOUD_OK;
    for (long pages = 0;; pages++) {
        if (pages >= CLOUD_MAX_PAGES) {
            code = decode_fail(err, "more than %d pages: the cloud keeps answering nextPageToken",
                               CLOUD_MAX_PAGES);
            break;
        }
        csl_buf u = CSL_BUF_INIT;
        build_url(&u, c, path, NULL, "?");
        csl_buf_printf(&u, "%slimit=%d", args, limit);
        if (token) {
            csl_buf_puts(&u, "&pageToken=");
            put_escaped(&u, token);
        }
        if (u.oom) {
            csl_buf_free(&u);
            code = oom_fail(err);
            break;
        }
        req r = {.op = op, .method = "GET", .url = u.data};
        xfer x;
        code = exchange(c, &r, &x, err);
        csl_buf_free(&u);
        if (code != CSL_CLOUD_OK) break;
        char *next = NULL;
        char why[320];
        int rc = parse(x.body.data, x.body.len, list, &next, why, sizeof why);
        csl_buf_free(&x.body);
        if (rc != 0) {
            code = decode_fail(err, "unexpected list page: %s", why);
            break;
        }
        if (next && token && strcmp(next, token) == 0) {
            code =
                decode_fail(err, "the cloud answered the same nextPageToken \"%.64s\" again", next);
            free(next);
            break;
        }
        free(token);
        token = next;
        if (!token) break;
    }
    free(token);
    return code;
}

/* ------------------------------------------------------------------ calls */

csl_cloud_code csl_cloud_create_instance(csl_cloud *c, const csl_cloud_instance_spec *spec,
                                         const char *key, csl_cloud_instance *out,
                                         csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "CreateInstance");
    if (out) memset(out, 0, sizeof *out);
    if (!key_ok(key, err)) return err->code;
    char why[256];
    char *body = csl_cloud_instance_spec_json(spec, why, sizeof why);
    if (!body) return request_fail(err, "%s", why);
    csl_buf u = CSL_BUF_INIT;
    build_url(&u, c, "/v1/instances", NULL, NULL);
    csl_cloud_code code;
    if (u.oom) {
        code = oom_fail(err);
    } else {
        req r = {.op = err->op, .method = "POST", .url = u.data, .body = body, .key = key};
        code = instance_call(c, &r, out, err);
    }
    csl_buf_free(&u);
    free(body);
    return code;
}

/* GET/DELETE/… on /v1/<what>/<id><suffix> with a body, reply decoded as an
 * instance. */
static csl_cloud_code instance_op(csl_cloud *c, const char *method, const char *id,
                                  const char *suffix, const char *body, bool fresh,
                                  csl_cloud_instance *out, csl_cloud_error *err)
{
    if (!id_ok(id, "instance", err)) return err->code;
    csl_buf u = CSL_BUF_INIT;
    build_url(&u, c, "/v1/instances/", id, suffix);
    if (u.oom) {
        csl_buf_free(&u);
        return oom_fail(err);
    }
    req r = {.op = err->op, .method = method, .url = u.data, .body = body, .fresh = fresh};
    csl_cloud_code code = instance_call(c, &r, out, err);
    csl_buf_free(&u);
    return code;
}

csl_cloud_code csl_cloud_get_instance(csl_cloud *c, const char *id, csl_cloud_instance *out,
                                      csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "GetInstance");
    if (out) memset(out, 0, sizeof *out);
    return instance_op(c, "GET", id, NULL, NULL, false, out, err);
}

/* The query of an instance list (each "k=v&"), checked. Returns OK with
 * *a filled, or the failure (a freed). */
static csl_cloud_code instance_query(const csl_cloud_list_filter *f, int *limit, csl_buf *a,
                                     csl_cloud_error *err)
{
    *limit = f->page_size ? f->page_size : CLOUD_PAGE_MAX;
    if (*limit < 1 || *limit > CLOUD_PAGE_MAX)
        return request_fail(err, "page_size %d is outside 1..%d", f->page_size, CLOUD_PAGE_MAX);
    if (f->n_tags && !f->tags) return request_fail(err, "filter tags is NULL");
    for (size_t i = 0; i < f->n_tags; i++) {
        const char *k = f->tags[i].key, *v = f->tags[i].value;
        if (!k || !*k || strchr(k, '=')) {
            csl_buf_free(a);
            return request_fail(err, "tag filter key \"%s\": must be non-empty, without '='",
                                k ? k : "(null)");
        }
        csl_buf_puts(a, "tag=");
        put_escaped(a, k);
        csl_buf_putc(a, '=');
        put_escaped(a, v ? v : "");
        csl_buf_putc(a, '&');
    }
    if (f->zone) {
        csl_buf_puts(a, "zone=");
        put_escaped(a, f->zone);
        csl_buf_putc(a, '&');
    }
    if (f->state) {
        csl_buf_puts(a, "state=");
        put_escaped(a, f->state);
        csl_buf_putc(a, '&');
    }
    if (a->oom) {
        csl_buf_free(a);
        return oom_fail(err);
    }
    return CSL_CLOUD_OK;
}

csl_cloud_code csl_cloud_list_instances(csl_cloud *c, const csl_cloud_list_filter *f,
                                        csl_cloud_instance_list *out, csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "ListInstances");
    csl_cloud_instance_list tmp = {0};
    if (out) memset(out, 0, sizeof *out);
    csl_cloud_list_filter none = {0};
    if (!f) f = &none;
    int limit;
    csl_buf a = CSL_BUF_INIT;
    csl_cloud_code code = instance_query(f, &limit, &a, err);
    if (code != CSL_CLOUD_OK) return code;
    code = list_all(c, err->op, "/v1/instances", csl_buf_str(&a), limit, instance_page, &tmp, err);
    csl_buf_free(&a);
    if (code == CSL_CLOUD_OK && out)
        *out = tmp;
    else
        csl_cloud_instance_list_free(&tmp);
    return code;
}

typedef struct each_ctx {
    csl_cloud_instance_fn fn;
    void *ctx;
} each_ctx;

/* A page parser that hands each item to the callback and keeps nothing. */
static int each_page(const char *body, size_t len, void *p, char **next, char *why, size_t whysz)
{
    const each_ctx *e = p;
    csl_cloud_instance_list page = {0};
    if (csl_cloud_instance_page_parse(body, len, &page, next, why, whysz) != 0) return -1;
    for (size_t i = 0; i < page.n; i++) e->fn(&page.items[i], e->ctx);
    csl_cloud_instance_list_free(&page);
    return 0;
}

csl_cloud_code csl_cloud_each_instance(csl_cloud *c, const csl_cloud_list_filter *f,
                                       csl_cloud_instance_fn fn, void *ctx,
                                       csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "ListInstances");
    csl_cloud_list_filter none = {0};
    if (!f) f = &none;
    if (!fn) return request_fail(err, "no callback");
    int limit;
    csl_buf a = CSL_BUF_INIT;
    csl_cloud_code code = instance_query(f, &limit, &a, err);
    if (code != CSL_CLOUD_OK) return code;
    each_ctx e = {fn, ctx};
    code = list_all(c, err->op, "/v1/instances", csl_buf_str(&a), limit, each_page, &e, err);
    csl_buf_free(&a);
    return code;
}

csl_cloud_code csl_cloud_find_instances(csl_cloud *c, const char *key, const char *value,
                                        csl_cloud_instance_list *out, csl_cloud_error *err)
{
    csl_cloud_kv kv = {key, value};
    csl_cloud_list_filter f = {.tags = &kv, .n_tags = 1};
    return csl_cloud_list_instances(c, &f, out, err);
}

csl_cloud_code csl_cloud_resize_instance(csl_cloud *c, const char *id, const csl_cloud_resize *rs,
                                         csl_cloud_instance *out, csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "ResizeInstance");
    if (out) memset(out, 0, sizeof *out);
    if (!rs || (rs->cpu <= 0 && rs->memory_mib <= 0 && rs->disk_gib <= 0))
        return request_fail(err, "nothing to resize: set cpu, memory_mib or disk_gib");
    cJSON *o = cJSON_CreateObject();
    bool ok =
        o && (rs->cpu <= 0 || cJSON_AddNumberToObject(o, "cpu", rs->cpu)) &&
        (rs->memory_mib <= 0 || cJSON_AddNumberToObject(o, "memoryMiB", (double)rs->memory_mib)) &&
        (rs->disk_gib <= 0 || cJSON_AddNumberToObject(o, "diskGiB", (double)rs->disk_gib));
    char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!body) return oom_fail(err);
    csl_cloud_code code = instance_op(c, "PATCH", id, NULL, body, false, out, err);
    free(body);
    return code;
}

csl_cloud_code csl_cloud_update_tags(csl_cloud *c, const char *id, const csl_cloud_kv *tags,
                                     size_t n_tags, csl_cloud_instance *out, csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "UpdateTags");
    if (out) memset(out, 0, sizeof *out);
    if (!tags || n_tags == 0) return request_fail(err, "no tags to change");
    cJSON *o = cJSON_CreateObject();
    cJSON *t = o ? cJSON_AddObjectToObject(o, "tags") : NULL;
    bool ok = t != NULL;
    for (size_t i = 0; ok && i < n_tags; i++) {
        if (!tags[i].key || !*tags[i].key) {
            cJSON_Delete(o);
            return request_fail(err, "tag %zu has no key", i);
        }
        ok = tags[i].value ? cJSON_AddStringToObject(t, tags[i].key, tags[i].value) != NULL
                           : cJSON_AddNullToObject(t, tags[i].key) != NULL;
    }
    char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!body) return oom_fail(err);
    /* A merge patch is idempotent: a resend by libcurl is harmless. */
    csl_cloud_code code = instance_op(c, "PATCH", id, NULL, body, false, out, err);
    free(body);
    return code;
}

csl_cloud_code csl_cloud_instance_action(csl_cloud *c, const char *id, csl_cloud_action action,
                                         csl_cloud_instance *out, csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "InstanceAction");
    if (out) memset(out, 0, sizeof *out);
    if ((unsigned)action >= NELEM(action_names))
        return request_fail(err, "unknown action %d", (int)action);
    char suffix[32];
    snprintf(suffix, sizeof suffix, "/actions/%s", action_names[action]);
    /* Not keyed, so on a fresh connection: libcurl must not re-send it. */
    return instance_op(c, "POST", id, suffix, NULL, true, out, err);
}

csl_cloud_code csl_cloud_delete_instance(csl_cloud *c, const char *id, csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "DeleteInstance");
    return instance_op(c, "DELETE", id, NULL, NULL, false, NULL, err);
}

csl_cloud_code csl_cloud_create_snapshot(csl_cloud *c, const char *instance_id, const char *name,
                                         const csl_cloud_kv *tags, size_t n_tags, const char *key,
                                         csl_cloud_snapshot *out, csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "CreateSnapshot");
    if (out) memset(out, 0, sizeof *out);
    if (!id_ok(instance_id, "instance", err)) return err->code;
    if (key && !key_ok(key, err)) return err->code;
    if (n_tags && !tags) return request_fail(err, "tags is NULL");
    char why[128];
    cJSON *o = cJSON_CreateObject();
    bool ok = o && (!name || cJSON_AddStringToObject(o, "name", name));
    if (!ok) why_set(why, sizeof why, "out of memory");
    if (ok) ok = add_tags(o, tags, n_tags, why, sizeof why);
    char *body = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!body) return ok ? oom_fail(err) : request_fail(err, "%s", why);
    csl_buf u = CSL_BUF_INIT;
    build_url(&u, c, "/v1/instances/", instance_id, "/snapshots");
    csl_cloud_code code;
    if (u.oom) {
        code = oom_fail(err);
    } else {
        req r = {.op = err->op,
                 .method = "POST",
                 .url = u.data,
                 .body = body,
                 .key = key,
                 .fresh = key == NULL};
        code = snapshot_call(c, &r, out, err);
    }
    csl_buf_free(&u);
    free(body);
    return code;
}

csl_cloud_code csl_cloud_get_snapshot(csl_cloud *c, const char *id, csl_cloud_snapshot *out,
                                      csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "GetSnapshot");
    if (out) memset(out, 0, sizeof *out);
    if (!id_ok(id, "snapshot", err)) return err->code;
    csl_buf u = CSL_BUF_INIT;
    build_url(&u, c, "/v1/snapshots/", id, NULL);
    csl_cloud_code code;
    if (u.oom) {
        code = oom_fail(err);
    } else {
        req r = {.op = err->op, .method = "GET", .url = u.data};
        code = snapshot_call(c, &r, out, err);
    }
    csl_buf_free(&u);
    return code;
}

csl_cloud_code csl_cloud_list_snapshots(csl_cloud *c, const char *instance_id,
                                        csl_cloud_snapshot_list *out, csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "ListSnapshots");
    csl_cloud_snapshot_list tmp = {0};
    if (out) memset(out, 0, sizeof *out);
    csl_buf a = CSL_BUF_INIT;
    if (instance_id) {
        csl_buf_puts(&a, "instance=");
        put_escaped(&a, instance_id);
        csl_buf_putc(&a, '&');
    }
    csl_cloud_code code;
    if (a.oom)
        code = oom_fail(err);
    else
        code = list_all(c, err->op, "/v1/snapshots", csl_buf_str(&a), CLOUD_PAGE_MAX, snapshot_page,
                        &tmp, err);
    csl_buf_free(&a);
    if (code == CSL_CLOUD_OK && out)
        *out = tmp;
    else
        csl_cloud_snapshot_list_free(&tmp);
    return code;
}

csl_cloud_code csl_cloud_delete_snapshot(csl_cloud *c, const char *id, csl_cloud_error *err)
{
    csl_cloud_error local;
    if (!err) err = &local;
    err_begin(err, "DeleteSnapshot");
    if (!id_ok(id, "snapshot", err)) return err->code;
    csl_buf u = CSL_BUF_INIT;
    build_url(&u, c, "/v1/snapshots/", id, NULL);
    if (u.oom) {
        csl_buf_free(&u);
        return oom_fail(err);
    }
    req r = {.op = err->op, .method = "DELETE", .url = u.data};
    xfer x;
    csl_cloud_code code = exchange(c, &r, &x, err);
    csl_buf_free(&u);
    if (code != CSL_CLOUD_OK) return code;
    /* 204 has no body; any body that came must at least be JSON, or the
     * reply was not the cloud's (mockcloud's "malformed" fault answers 200
     * with a cut body and does not delete). */
    if (x.body.len) {
        cJSON *j = reply_json(&x, err);
        code = j ? CSL_CLOUD_OK : err->code;
        cJSON_Delete(j);
    }
    csl_buf_free(&x.body);
    return code;
}
