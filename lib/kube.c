/* kube.c — the Kubernetes API client: a pooled libcurl transport, REST
 * verbs on any resource, watch streams, and metav1.Status errors (see
 * csl/kube.h).
 *
 * The one idea: every call borrows a curl easy handle from a small pool and
 * gives it back, so each handle keeps its own warm connections (HTTP/2 or
 * keep-alive, TLS already negotiated) from call to call, while DNS and TLS
 * sessions are shared between handles through a curl share handle. Handles
 * are reset and configured afresh for every call, so no option leaks from
 * one call to the next. libcurl does not support sharing its connection
 * cache between concurrent threads (CURL_LOCK_DATA_CONNECT), which is why
 * connections live per handle rather than in the share.
 *
 * Credentials live behind one mutex: a static token, a token file re-read
 * when its mtime/size/inode change, or an exec plugin's answer cached until
 * its expiry. A 401 marks the credential used as stale; when a fresh one
 * differs, the call is retried once with it. */
#include "csl/kube.h"

#include "csl/clock.h"
#include "csl/log.h"

#include <curl/curl.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define KUBE_POOL_MAX 32
#define KUBE_DEFAULT_UA "cloudserver-lab/0.1"
#define KUBE_STATUS_PARSE_MAX (1024 * 1024)
#define KUBE_ERRBODY_MAX (64 * 1024)
#define KUBE_TOKEN_MAX (64 * 1024)

/* client-go's rest_client_request_duration_seconds buckets. */
static const double kube_latency_buckets[] = {0.005, 0.025, 0.1, 0.25, 0.5,  1.0,
                                              2.0,   4.0,   8.0, 15.0, 30.0, 60.0};

/* ------------------------------------------------------------------ types */

typedef enum { AUTH_NONE, AUTH_TOKEN, AUTH_TOKEN_FILE, AUTH_EXEC } auth_kind;

struct csl_kube {
    csl_kube_config cfg; /* our copy */
    csl_kube_options opt;
    char *user_agent;
    char *base;       /* scheme://host[:port][/prefix], no trailing slash */
    char *host;       /* host[:port] as in the URL: the metrics label */
    char *connect_to; /* "sni:port:host:port" when tls_server_name is set */

    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];

    pthread_mutex_t pool_mu;
    CURL *idle[KUBE_POOL_MAX];
    size_t nidle;

    /* Credentials; everything below under auth_mu. */
    pthread_mutex_t auth_mu;
    auth_kind auth;
    char *token;        /* current bearer token, or NULL */
    uint64_t auth_gen;  /* bumped whenever the credential's content changes */
    bool stale;         /* a 401 said the current credential is no good */
    struct stat tok_st; /* token file as last read */
    bool tok_read;
    csl_kube_credential cred; /* exec answer */
    bool cred_valid;

    pthread_mutex_t rl_mu; /* QPS token bucket */
    double rl_tokens;
    int64_t rl_last_ns;

    pthread_mutex_t stats_mu;
    csl_kube_stats stats;

    csl_metric *m_requests;
    csl_metric *m_duration;
};

/* ------------------------------------------------------------------ errors */

static const char *const code_names[] = {
    [CSL_KUBE_OK] = "OK",
    [CSL_KUBE_NOT_FOUND] = "NotFound",
    [CSL_KUBE_ALREADY_EXISTS] = "AlreadyExists",
    [CSL_KUBE_CONFLICT] = "Conflict",
    [CSL_KUBE_GONE] = "Gone",
    [CSL_KUBE_INVALID] = "Invalid",
    [CSL_KUBE_BAD_REQUEST] = "BadRequest",
    [CSL_KUBE_UNAUTHORIZED] = "Unauthorized",
    [CSL_KUBE_FORBIDDEN] = "Forbidden",
    [CSL_KUBE_TOO_MANY_REQUESTS] = "TooManyRequests",
    [CSL_KUBE_TIMEOUT] = "Timeout",
    [CSL_KUBE_SERVER_ERROR] = "ServerError",
    [CSL_KUBE_TRANSPORT] = "Transport",
    [CSL_KUBE_DECODE] = "Decode",
    [CSL_KUBE_CONFIG] = "Config",
    [CSL_KUBE_OTHER] = "Other",
};

const char *csl_kube_code_name(csl_kube_code c)
{
    if ((unsigned)c < sizeof code_names / sizeof code_names[0] && code_names[c])
        return code_names[c];
    return "Unknown";
}

static void err_reset(csl_kube_error *err)
{
    if (err) memset(err, 0, sizeof *err);
}

static void err_set(csl_kube_error *err, csl_kube_code code, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void err_set(csl_kube_error *err, csl_kube_code code, int status, const char *fmt, ...)
{
    if (!err) return;
    memset(err, 0, sizeof *err);
    err->code = code;
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* Prefixes err->message with "METHOD path: " so a person sees which call. */
static void err_prefix(csl_kube_error *err, const char *method, const char *path)
{
    if (!err) return;
    csl_buf b = CSL_BUF_INIT;
    csl_buf_printf(&b, "%s %s: %s", method, path, err->message);
    if (!b.oom) snprintf(err->message, sizeof err->message, "%s", b.data);
    csl_buf_free(&b);
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
    if (!src) src = "";
    snprintf(dst, dstsz, "%s", src);
}

static csl_kube_code code_from_reason(const char *r)
{
    static const struct {
        const char *reason;
        csl_kube_code code;
    } map[] = {
        {"NotFound", CSL_KUBE_NOT_FOUND},
        {"AlreadyExists", CSL_KUBE_ALREADY_EXISTS},
        {"Conflict", CSL_KUBE_CONFLICT},
        {"Gone", CSL_KUBE_GONE},
        {"Expired", CSL_KUBE_GONE},
        {"Invalid", CSL_KUBE_INVALID},
        {"BadRequest", CSL_KUBE_BAD_REQUEST},
        {"Unauthorized", CSL_KUBE_UNAUTHORIZED},
        {"Forbidden", CSL_KUBE_FORBIDDEN},
        {"TooManyRequests", CSL_KUBE_TOO_MANY_REQUESTS},
        {"Timeout", CSL_KUBE_TIMEOUT},
        {"ServerTimeout", CSL_KUBE_TIMEOUT},
        {"InternalError", CSL_KUBE_SERVER_ERROR},
        {"ServiceUnavailable", CSL_KUBE_SERVER_ERROR},
    };
    if (!r || !*r) return CSL_KUBE_OK;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].reason, r) == 0) return map[i].code;
    return CSL_KUBE_OK;
}

static csl_kube_code code_from_status(int status)
{
    switch (status) {
    case 400:
        return CSL_KUBE_BAD_REQUEST;
    case 401:
        return CSL_KUBE_UNAUTHORIZED;
    case 403:
        return CSL_KUBE_FORBIDDEN;
    case 404:
        return CSL_KUBE_NOT_FOUND;
    case 409:
        return CSL_KUBE_CONFLICT;
    case 410:
        return CSL_KUBE_GONE;
    case 422:
        return CSL_KUBE_INVALID;
    case 429:
        return CSL_KUBE_TOO_MANY_REQUESTS;
    case 504:
        return CSL_KUBE_TIMEOUT;
    default:
        break;
    }
    if (status >= 500 && status <= 599) return CSL_KUBE_SERVER_ERROR;
    if (status >= 200 && status <= 299) return CSL_KUBE_OK;
    return CSL_KUBE_OTHER;
}

/* A printable excerpt of a body that is not a Status: control bytes become
 * '.', at most n bytes, "…" when cut. */
static void excerpt(char *out, size_t outsz, const char *body, size_t len)
{
    size_t o = 0, max = outsz > 8 ? outsz - 8 : 0;
    size_t i;
    for (i = 0; i < len && o < max; i++) {
        unsigned char c = (unsigned char)body[i];
        out[o++] = (c < 0x20 || c == 0x7f) ? (c == '\n' || c == '\t' ? ' ' : '.') : (char)c;
    }
    out[o] = 0;
    while (o > 0 && out[o - 1] == ' ') out[--o] = 0;
    if (i < len && outsz >= o + 4) memcpy(out + o, "\xe2\x80\xa6", 4);
}

void csl_kube_error_decode(int status, const char *body, size_t len, csl_kube_error *err)
{
    if (!err) return;
    memset(err, 0, sizeof *err);
    err->status = status;
    if (!body) len = 0;

    cJSON *j = NULL;
    if (len > 0 && len <= KUBE_STATUS_PARSE_MAX) j = cJSON_ParseWithLength(body, len);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
    if (cJSON_IsObject(j) && cJSON_IsString(kind) && strcmp(kind->valuestring, "Status") == 0) {
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(j, "message");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "code");
        const cJSON *details = cJSON_GetObjectItemCaseSensitive(j, "details");
        if (cJSON_IsString(reason)) copy_str(err->reason, sizeof err->reason, reason->valuestring);
        if (cJSON_IsString(message))
            copy_str(err->message, sizeof err->message, message->valuestring);
        if (err->status == 0 && cJSON_IsNumber(code)) err->status = code->valueint;
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive(details, "retryAfterSeconds");
        if (cJSON_IsNumber(ra) && ra->valuedouble > 0)
            err->retry_after_s = ra->valuedouble > 86400 ? 86400 : (int)ra->valuedouble;
        const cJSON *causes = cJSON_GetObjectItemCaseSensitive(details, "causes");
        const cJSON *c;
        cJSON_ArrayForEach(c, causes)
        {
            if (err->ncauses >= CSL_KUBE_MAX_CAUSES) break;
            if (!cJSON_IsObject(c)) continue;
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, "field");
            const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "reason");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "message");
            size_t n = err->ncauses++;
            copy_str(err->causes[n].field, sizeof err->causes[n].field,
                     cJSON_IsString(f) ? f->valuestring : "");
            copy_str(err->causes[n].reason, sizeof err->causes[n].reason,
                     cJSON_IsString(r) ? r->valuestring : "");
            copy_str(err->causes[n].message, sizeof err->causes[n].message,
                     cJSON_IsString(m) ? m->valuestring : "");
        }
    } else if (len == 0) {
        snprintf(err->message, sizeof err->message, "HTTP %d with an empty body", status);
    } else {
        char ex[400];
        excerpt(ex, sizeof ex, body, len);
        snprintf(err->message, sizeof err->message, "HTTP %d: %s", status, ex);
    }
    cJSON_Delete(j);

    /* The reason is the more precise word (409 is AlreadyExists or
     * Conflict; 500 may be ServerTimeout); the status decides otherwise. */
    csl_kube_code c = code_from_reason(err->reason);
    if (c == CSL_KUBE_OK) c = code_from_status(err->status);
    err->code = c;
    if (!err->reason[0] && c != CSL_KUBE_OK && c != CSL_KUBE_OTHER)
        copy_str(err->reason, sizeof err->reason, csl_kube_code_name(c));
    if (!err->message[0])
        snprintf(err->message, sizeof err->message, "HTTP %d %s", status, err->reason);
}

bool csl_kube_error_retryable(const csl_kube_error *err)
{
    if (!err) return false;
    switch (err->code) {
    case CSL_KUBE_TOO_MANY_REQUESTS:
    case CSL_KUBE_TIMEOUT:
    case CSL_KUBE_SERVER_ERROR:
    case CSL_KUBE_TRANSPORT:
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------ paths */

static void put_escaped(csl_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            csl_buf_putc(out, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            csl_buf_append(out, e, 3);
        }
    }
}

void csl_kube_path(csl_buf *out, const csl_kube_resource *res, const char *ns, const char *name,
                   const char *subresource)
{
    if (!res->group || !*res->group) {
        csl_buf_puts(out, "/api/");
    } else {
        csl_buf_puts(out, "/apis/");
        put_escaped(out, res->group);
        csl_buf_putc(out, '/');
    }
    put_escaped(out, res->version);
    if (res->namespaced && ns && *ns) {
        csl_buf_puts(out, "/namespaces/");
        put_escaped(out, ns);
    }
    csl_buf_putc(out, '/');
    put_escaped(out, res->resource);
    if (name && *name) {
        csl_buf_putc(out, '/');
        put_escaped(out, name);
        if (subresource && *subresource) {
            csl_buf_putc(out, '/');
            put_escaped(out, subresource);
        }
    }
}

static void put_query(csl_buf *out, bool *first, const char *key, const char *value)
{
    if (!value) return;
    csl_buf_putc(out, *first ? '?' : '&');
    *first = false;
    csl_buf_puts(out, key);
    csl_buf_putc(out, '=');
    put_escaped(out, value);
}

/* ------------------------------------------------------------------ setup */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ok;

static void curl_init_once(void)
{
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    csl_kube *k = ctx;
    if ((unsigned)data < CURL_LOCK_DATA_LAST) pthread_mutex_lock(&k->share_mu[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    csl_kube *k = ctx;
    if ((unsigned)data < CURL_LOCK_DATA_LAST) pthread_mutex_unlock(&k->share_mu[data]);
}

/* Splits server into base URL and host; builds connect_to for
 * tls-server-name by putting the name in the URL (so SNI and verification
 * use it) and pointing curl at the real host. */
static int parse_server(csl_kube *k, char *err, size_t errsz)
{
    const char *s = k->cfg.server;
    if (!s || !*s) {
        snprintf(err, errsz, "no server URL in the configuration (context \"%s\")",
                 k->cfg.context_name ? k->cfg.context_name : "");
        return -1;
    }
    const char *scheme_end = strstr(s, "://");
    bool https = strncmp(s, "https://", 8) == 0;
    if (!scheme_end || (!https && strncmp(s, "http://", 7) != 0)) {
        snprintf(err, errsz, "server URL \"%s\" must start with https:// (or http://)", s);
        return -1;
    }
    const char *h = scheme_end + 3;
    const char *hend = h + strcspn(h, "/?#");
    if (hend == h) {
        snprintf(err, errsz, "server URL \"%s\" has no host", s);
        return -1;
    }
    k->host = strndup(h, (size_t)(hend - h));
    size_t blen = strlen(s);
    while (blen > (size_t)(hend - s) && s[blen - 1] == '/') blen--;
    if (!k->host) return -1;

    const char *sni = k->cfg.tls_server_name;
    if (!sni || !*sni) {
        k->base = strndup(s, blen);
        return k->base ? 0 : -1;
    }
    /* host part: "[v6]:port", "name:port" or without port */
    const char *colon = NULL;
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', (size_t)(hend - h));
        if (rb && rb + 1 < hend && rb[1] == ':') colon = rb + 1;
    } else {
        colon = memchr(h, ':', (size_t)(hend - h));
    }
    const char *port = colon ? colon + 1 : (https ? "443" : "80");
    int portlen = colon ? (int)(hend - colon - 1) : (int)strlen(port);
    int hostlen = colon ? (int)(colon - h) : (int)(hend - h);
    csl_buf b = CSL_BUF_INIT;
    csl_buf_printf(&b, "%.*s%s:%.*s%.*s", (int)(h - s), s, sni, portlen, port,
                   (int)(blen - (size_t)(hend - s)), hend);
    k->base = csl_buf_steal(&b);
    csl_buf_printf(&b, "%s:%.*s:%.*s:%.*s", sni, portlen, port, hostlen, h, portlen, port);
    k->connect_to = csl_buf_steal(&b);
    return k->base && k->connect_to ? 0 : -1;
}

static int check_readable(const char *what, const char *path, char *err, size_t errsz)
{
    if (!path) return 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "cannot read %s \"%s\": %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

csl_kube *csl_kube_new(const csl_kube_config *cfg, const csl_kube_options *opt, char *err,
                       size_t errsz)
{
    char dummy[8];
    if (!err || errsz == 0) err = dummy, errsz = sizeof dummy;
    err[0] = 0;
    pthread_once(&curl_once, curl_init_once);
    if (!curl_ok) {
        snprintf(err, errsz, "libcurl could not be initialised");
        return NULL;
    }
    csl_kube *k = calloc(1, sizeof *k);
    if (!k) goto oom;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&k->share_mu[i], NULL);
    pthread_mutex_init(&k->pool_mu, NULL);
    pthread_mutex_init(&k->auth_mu, NULL);
    pthread_mutex_init(&k->rl_mu, NULL);
    pthread_mutex_init(&k->stats_mu, NULL);
    if (csl_kube_config_copy(&k->cfg, cfg) != 0) goto oom;
    if (opt) k->opt = *opt;
    k->opt.user_agent = NULL;
    k->user_agent = strdup(opt && opt->user_agent ? opt->user_agent : KUBE_DEFAULT_UA);
    if (!k->user_agent) goto oom;
    if (k->opt.burst <= 0) k->opt.burst = 10;
    if (k->opt.connect_timeout_ms <= 0) k->opt.connect_timeout_ms = 10000;
    if (k->opt.timeout_ms <= 0) k->opt.timeout_ms = 60000;
    if (k->opt.max_response == 0) k->opt.max_response = (size_t)256 * 1024 * 1024;
    if (k->opt.exec_timeout_ms <= 0) k->opt.exec_timeout_ms = 60000;
    k->rl_tokens = k->opt.burst;
    k->rl_last_ns = csl_mono_ns();
    if (!k->cfg.namespace) {
        k->cfg.namespace = strdup("default");
        if (!k->cfg.namespace) goto oom;
    }

    if (parse_server(k, err, errsz) != 0) {
        if (!err[0]) snprintf(err, errsz, "out of memory");
        goto fail;
    }
    if (check_readable("certificate-authority", k->cfg.ca_data ? NULL : k->cfg.ca_file, err,
                       errsz) ||
        check_readable("client-certificate", k->cfg.cert_data ? NULL : k->cfg.cert_file, err,
                       errsz) ||
        check_readable("client-key", k->cfg.key_data ? NULL : k->cfg.key_file, err, errsz))
        goto fail;
    bool has_cert = k->cfg.cert_data || k->cfg.cert_file;
    bool has_key = k->cfg.key_data || k->cfg.key_file;
    if (has_cert != has_key) {
        snprintf(err, errsz, "context \"%s\": a client certificate needs a client key and back",
                 k->cfg.context_name ? k->cfg.context_name : "");
        goto fail;
    }
    if (k->cfg.exec.command)
        k->auth = AUTH_EXEC;
    else if (k->cfg.token_file)
        k->auth = AUTH_TOKEN_FILE;
    else if (k->cfg.token)
        k->auth = AUTH_TOKEN;
    if (k->auth == AUTH_TOKEN) {
        k->token = strdup(k->cfg.token);
        if (!k->token) goto oom;
    }
    if (k->cfg.insecure)
        csl_log(CSL_LOG_WARN,
                "insecure-skip-tls-verify is set: the API server's certificate is NOT verified",
                "server", k->cfg.server, "context", k->cfg.context_name, NULL);

    k->share = curl_share_init();
    if (!k->share) goto oom;
    curl_share_setopt(k->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(k->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(k->share, CURLSHOPT_USERDATA, k);
    curl_share_setopt(k->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(k->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

    if (k->opt.metrics) {
        k->m_requests = csl_metrics_counter(
            k->opt.metrics, "rest_client_requests_total",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            CSL_LABELS("code", "method", "host"));
        k->m_duration =
            csl_metrics_histogram(k->opt.metrics, "rest_client_request_duration_seconds",
                                  "Request latency in seconds. Broken down by verb, and host.",
                                  CSL_LABELS("verb", "host"), kube_latency_buckets,
                                  sizeof kube_latency_buckets / sizeof kube_latency_buckets[0]);
    }
    return k;
oom:
    snprintf(err, errsz, "out of memory");
fail:
    csl_kube_free(k);
    return NULL;
}

void csl_kube_free(csl_kube *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->nidle; i++) curl_easy_cleanup(k->idle[i]);
    if (k->share) curl_share_cleanup(k->share);
    csl_kube_config_free(&k->cfg);
    csl_kube_credential_free(&k->cred);
    free(k->token);
    free(k->user_agent);
    free(k->base);
    free(k->host);
    free(k->connect_to);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&k->share_mu[i]);
    pthread_mutex_destroy(&k->pool_mu);
    pthread_mutex_destroy(&k->auth_mu);
    pthread_mutex_destroy(&k->rl_mu);
    pthread_mutex_destroy(&k->stats_mu);
    free(k);
}

const char *csl_kube_namespace(const csl_kube *k)
{
    return k->cfg.namespace;
}

void csl_kube_get_stats(csl_kube *k, csl_kube_stats *out)
{
    pthread_mutex_lock(&k->stats_mu);
    *out = k->stats;
    pthread_mutex_unlock(&k->stats_mu);
}

/* ------------------------------------------------------------------ pool */

static CURL *pool_get(csl_kube *k)
{
    CURL *h = NULL;
    pthread_mutex_lock(&k->pool_mu);
    if (k->nidle > 0) h = k->idle[--k->nidle];
    pthread_mutex_unlock(&k->pool_mu);
    return h ? h : curl_easy_init();
}

/* LIFO, so the warmest handle (freshest connection) is lent first. */
static void pool_put(csl_kube *k, CURL *h)
{
    pthread_mutex_lock(&k->pool_mu);
    if (k->nidle < KUBE_POOL_MAX) {
        k->idle[k->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&k->pool_mu);
    if (h) curl_easy_cleanup(h);
}

/* ------------------------------------------------------------------ limiter */

/* Reserves a token and sleeps until it is due: callers are served in the
 * order they asked, and nobody spins. */
static void rate_wait(csl_kube *k)
{
    if (k->opt.qps <= 0) return;
    pthread_mutex_lock(&k->rl_mu);
    int64_t now = csl_mono_ns();
    k->rl_tokens += (double)(now - k->rl_last_ns) / 1e9 * k->opt.qps;
    if (k->rl_tokens > k->opt.burst) k->rl_tokens = k->opt.burst;
    k->rl_last_ns = now;
    k->rl_tokens -= 1;
    double wait_s = k->rl_tokens < 0 ? -k->rl_tokens / k->opt.qps : 0;
    pthread_mutex_unlock(&k->rl_mu);
    if (wait_s > 0) csl_sleep_ns((int64_t)(wait_s * 1e9));
}

/* ------------------------------------------------------------------ credentials */

static char *read_token_file(const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "cannot read token file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(KUBE_TOKEN_MAX + 1);
    size_t n = buf ? fread(buf, 1, KUBE_TOKEN_MAX + 1, f) : 0;
    fclose(f);
    if (!buf) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if (n > KUBE_TOKEN_MAX) {
        snprintf(err, errsz, "token file \"%s\" is larger than %d bytes", path, KUBE_TOKEN_MAX);
        free(buf);
        return NULL;
    }
    while (n > 0 && isspace((unsigned char)buf[n - 1])) n--;
    size_t s = 0;
    while (s < n && isspace((unsigned char)buf[s])) s++;
    memmove(buf, buf + s, n - s);
    buf[n - s] = 0;
    if (!buf[0]) {
        snprintf(err, errsz, "token file \"%s\" is empty", path);
        free(buf);
        return NULL;
    }
    return buf;
}

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool mem_eq(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || (a && b && memcmp(a, b, an) == 0));
}

static void stats_add(csl_kube *k, uint64_t req, uint64_t conn, uint64_t refresh)
{
    pthread_mutex_lock(&k->stats_mu);
    k->stats.requests += req;
    k->stats.connects += conn;
    k->stats.auth_refreshes += refresh;
    pthread_mutex_unlock(&k->stats_mu);
}

/* Brings the credential up to date; called with auth_mu held. Keeps the
 * old credential when a refresh fails but the old one may still work. */
static int auth_refresh_locked(csl_kube *k, csl_kube_error *err)
{
    char msg[512];
    msg[0] = 0;
    if (k->auth == AUTH_TOKEN_FILE) {
        struct stat st;
        bool changed = stat(k->cfg.token_file, &st) != 0 || !k->tok_read || k->stale ||
                       st.st_mtim.tv_sec != k->tok_st.st_mtim.tv_sec ||
                       st.st_mtim.tv_nsec != k->tok_st.st_mtim.tv_nsec ||
                       st.st_size != k->tok_st.st_size || st.st_ino != k->tok_st.st_ino;
        if (!changed) return 0;
        char *t = read_token_file(k->cfg.token_file, msg, sizeof msg);
        stats_add(k, 0, 0, 1);
        if (!t) {
            if (k->token) {
                csl_log(CSL_LOG_WARN, "keeping the previous bearer token", "reason", msg, NULL);
                return 0;
            }
            err_set(err, CSL_KUBE_CONFIG, 0, "%s", msg);
            return -1;
        }
        if (stat(k->cfg.token_file, &st) == 0) k->tok_st = st;
        k->tok_read = true;
        k->stale = false;
        if (!str_eq(t, k->token)) k->auth_gen++;
        free(k->token);
        k->token = t;
        return 0;
    }
    if (k->auth == AUTH_EXEC) {
        bool expired =
            k->cred_valid && k->cred.expires_ms > 0 && csl_wall_ms() >= k->cred.expires_ms;
        if (k->cred_valid && !expired && !k->stale) return 0;
        csl_kube_credential c;
        int rc = csl_kube_exec_credential(&k->cfg, k->opt.exec_timeout_ms, &c, msg, sizeof msg);
        stats_add(k, 0, 0, 1);
        if (rc != 0) {
            err_set(err, CSL_KUBE_CONFIG, 0, "%s", msg);
            return -1;
        }
        if (!k->cred_valid || !str_eq(c.token, k->cred.token) ||
            !mem_eq(c.cert_data, c.cert_data_len, k->cred.cert_data, k->cred.cert_data_len) ||
            !mem_eq(c.key_data, c.key_data_len, k->cred.key_data, k->cred.key_data_len))
            k->auth_gen++;
        csl_kube_credential_free(&k->cred);
        k->cred = c;
        k->cred_valid = true;
        k->stale = false;
        return 0;
    }
    return 0;
}

/* Sets the credential on h (certificate blobs copied by curl) and returns
 * the Authorization header line in *hdr (malloc'd, or NULL), with the
 * generation used in *gen. */
static int auth_apply(csl_kube *k, CURL *h, char **hdr, uint64_t *gen, csl_kube_error *err)
{
    *hdr = NULL;
    pthread_mutex_lock(&k->auth_mu);
    int rc = auth_refresh_locked(k, err);
    if (rc == 0) {
        const char *tok = k->auth == AUTH_EXEC ? k->cred.token : k->token;
        if (k->auth == AUTH_EXEC && k->cred.cert_data) {
            struct curl_blob cert = {k->cred.cert_data, k->cred.cert_data_len, CURL_BLOB_COPY};
            struct curl_blob key = {k->cred.key_data, k->cred.key_data_len, CURL_BLOB_COPY};
            curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
            curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
            curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
            curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
        }
        if (tok && *tok) {
            csl_buf b = CSL_BUF_INIT;
            csl_buf_printf(&b, "Authorization: Bearer %s", tok);
            *hdr = csl_buf_steal(&b);
            if (!*hdr) {
                err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
                rc = -1;
            }
        }
        *gen = k->auth_gen;
    }
    pthread_mutex_unlock(&k->auth_mu);
    return rc;
}

/* After a 401: marks the credential used as stale and, when refresh is
 * asked, fetches a fresh one at once. True when the credential now differs
 * from the one that failed (worth one more try). Threads that got 401 with
 * the same credential refresh it once between them. */
static bool auth_invalidate(csl_kube *k, uint64_t gen_used, bool refresh)
{
    if (k->auth != AUTH_EXEC && k->auth != AUTH_TOKEN_FILE) return false;
    pthread_mutex_lock(&k->auth_mu);
    if (k->auth_gen == gen_used) {
        k->stale = true;
        csl_kube_error e;
        if (refresh && auth_refresh_locked(k, &e) != 0)
            csl_log(CSL_LOG_WARN, "refreshing credentials after 401 failed", "error", e.message,
                    NULL);
    }
    bool changed = k->auth_gen != gen_used;
    pthread_mutex_unlock(&k->auth_mu);
    return changed;
}

/* ------------------------------------------------------------------ transport */

typedef struct xfer {
    csl_kube *k;
    csl_buf *body;
    size_t max;
    bool too_large;
    int status;         /* from the last status line */
    int retry_after_s;  /* Retry-After header */
    int64_t headers_ns; /* when the last header block ended */
    int64_t last_byte_ns;
    /* streams */
    bool stream;
    bool (*on_data)(const char *p, size_t n, void *ctx);
    void *ctx;
    bool consumer_stopped;
    const volatile int *stop;
    bool stopped;
    long stall_ms;
    bool stalled;
} xfer;

static int parse_retry_after(const char *v)
{
    while (*v == ' ' || *v == '\t') v++;
    if (isdigit((unsigned char)*v)) {
        long s = strtol(v, NULL, 10);
        return s < 0 ? 0 : s > 86400 ? 86400 : (int)s;
    }
    char tmp[64];
    size_t n = strcspn(v, "\r\n");
    if (n >= sizeof tmp) return 0;
    memcpy(tmp, v, n);
    tmp[n] = 0;
    time_t t = curl_getdate(tmp, NULL);
    if (t < 0) return 0;
    int64_t d = (int64_t)t - csl_wall_ms() / 1000;
    return d <= 0 ? 1 : d > 86400 ? 86400 : (int)d;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    x->last_byte_ns = csl_mono_ns();
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        x->status = sp ? atoi(sp + 1) : 0;
        x->retry_after_s = 0;
    } else if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
        char v[80];
        size_t m = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, p + 12, m);
        v[m] = 0;
        x->retry_after_s = parse_retry_after(v);
    } else if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        x->headers_ns = x->last_byte_ns;
    }
    return len;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    x->last_byte_ns = csl_mono_ns();
    if (x->stream && x->status >= 200 && x->status < 300) {
        if (x->stop && __atomic_load_n(x->stop, __ATOMIC_ACQUIRE)) {
            x->stopped = true;
            return 0;
        }
        if (!x->on_data(p, len, x->ctx)) {
            x->consumer_stopped = true;
            return 0;
        }
        return len;
    }
    if (x->body->len + len > x->max) {
        x->too_large = true;
        return 0;
    }
    if (!csl_buf_append(x->body, p, len)) return 0;
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    xfer *x = ud;
    if (x->stop && __atomic_load_n(x->stop, __ATOMIC_ACQUIRE)) {
        x->stopped = true;
        return 1;
    }
    if (x->stall_ms > 0 && csl_mono_ns() - x->last_byte_ns > (int64_t)x->stall_ms * 1000000) {
        x->stalled = true;
        return 1;
    }
    return 0;
}

/* Configures h for one exchange. */
static int setup_handle(csl_kube *k, CURL *h, const char *method, const char *path,
                        const char *content_type, const char *body, size_t len, xfer *x,
                        struct curl_slist **hdrs, struct curl_slist **cto, uint64_t *gen,
                        char *errbuf, csl_kube_error *err)
{
    curl_easy_reset(h);
    char *auth = NULL;
    if (auth_apply(k, h, &auth, gen, err) != 0) return -1;

    csl_buf url = CSL_BUF_INIT;
    csl_buf_puts(&url, k->base);
    csl_buf_puts(&url, path);
    struct curl_slist *l = NULL, *t;
#define ADD_HDR(s)                                                                                 \
    do {                                                                                           \
        t = curl_slist_append(l, (s));                                                             \
        if (t) l = t;                                                                              \
    } while (0)
    ADD_HDR("Accept: application/json");
    ADD_HDR("Expect:");
    char ct[128];
    if (content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        ADD_HDR(ct);
    }
    if (auth) ADD_HDR(auth);
#undef ADD_HDR
    free(auth);
    *hdrs = l;
    if (url.oom || !l) {
        csl_buf_free(&url);
        err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    csl_buf_free(&url); /* curl copies strings */
    curl_easy_setopt(h, CURLOPT_SHARE, k->share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, k->opt.connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, x->stream ? 0L : k->opt.timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, k->user_agent);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
    if (k->connect_to) {
        *cto = curl_slist_append(NULL, k->connect_to);
        if (!*cto) {
            err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
            return -1;
        }
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, *cto);
    }
    if (k->cfg.ca_data) {
        struct curl_blob b = {k->cfg.ca_data, k->cfg.ca_data_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
    } else if (k->cfg.ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, k->cfg.ca_file);
    }
    if (k->cfg.cert_data) {
        struct curl_blob b = {k->cfg.cert_data, k->cfg.cert_data_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    } else if (k->cfg.cert_file) {
        curl_easy_setopt(h, CURLOPT_SSLCERT, k->cfg.cert_file);
    }
    if (k->cfg.key_data) {
        struct curl_blob b = {k->cfg.key_data, k->cfg.key_data_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    } else if (k->cfg.key_file) {
        curl_easy_setopt(h, CURLOPT_SSLKEY, k->cfg.key_file);
    }
    if (k->cfg.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
    }
    return 0;
}

static void record(csl_kube *k, const char *method, int status, int64_t t0, int64_t t_end)
{
    if (!k->m_requests && !k->m_duration) return;
    char code[16];
    if (status > 0)
        snprintf(code, sizeof code, "%d", status);
    else
        snprintf(code, sizeof code, "<error>");
    csl_metric_inc(k->m_requests, CSL_LABELS(code, method, k->host));
    if (t_end > t0)
        csl_metric_observe(k->m_duration, (double)(t_end - t0) / 1e9, CSL_LABELS(method, k->host));
}

/* One exchange on a lent handle. Returns the status, or -1 with err. */
static int perform(csl_kube *k, const char *method, const char *path, const char *content_type,
                   const char *body, size_t len, xfer *x, uint64_t *gen, csl_kube_error *err)
{
    CURL *h = pool_get(k);
    if (!h) {
        err_set(err, CSL_KUBE_OTHER, 0, "out of memory (curl handle)");
        return -1;
    }
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = 0;
    struct curl_slist *hdrs = NULL, *cto = NULL;
    if (setup_handle(k, h, method, path, content_type, body, len, x, &hdrs, &cto, gen, errbuf,
                     err) != 0) {
        curl_slist_free_all(hdrs);
        curl_slist_free_all(cto);
        pool_put(k, h);
        err_prefix(err, method, path);
        return -1;
    }
    rate_wait(k);
    int64_t t0 = csl_mono_ns();
    x->last_byte_ns = t0;
    CURLcode cc = curl_easy_perform(h);
    int64_t t1 = csl_mono_ns();
    long nconn = 0, version = 0;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &nconn);
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &version);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_CONNECT_TO, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_slist_free_all(hdrs);
    curl_slist_free_all(cto);
    stats_add(k, 1, nconn > 0 ? (uint64_t)nconn : 0, 0);
    if (version == CURL_HTTP_VERSION_2_0) {
        pthread_mutex_lock(&k->stats_mu);
        k->stats.http2++;
        pthread_mutex_unlock(&k->stats_mu);
    }

    int rc;
    if (x->too_large) {
        err_set(err, CSL_KUBE_DECODE, x->status,
                "response larger than %zu bytes (max_response); narrow the request (limit, "
                "selectors)",
                x->max);
        rc = -1;
    } else if (x->stalled) {
        err_set(err, CSL_KUBE_TIMEOUT, x->status, "stream stalled: no byte for %ld ms",
                x->stall_ms);
        rc = -1;
    } else if (cc == CURLE_OK || (cc == CURLE_WRITE_ERROR && x->consumer_stopped) ||
               ((cc == CURLE_ABORTED_BY_CALLBACK || cc == CURLE_WRITE_ERROR) && x->stopped)) {
        rc = x->status;
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        err_set(err, CSL_KUBE_TIMEOUT, 0, "no answer in time: %s",
                errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = -1;
    } else if (cc == CURLE_OUT_OF_MEMORY || (cc == CURLE_WRITE_ERROR && x->body->oom)) {
        err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
        rc = -1;
    } else {
        err_set(err, CSL_KUBE_TRANSPORT, 0, "%s (server %s)",
                errbuf[0] ? errbuf : curl_easy_strerror(cc), k->cfg.server);
        rc = -1;
    }
    if (rc < 0) err_prefix(err, method, path);
    /* A stream's latency is the time to its response headers, as client-go
     * measures it. */
    record(k, method, rc < 0 ? 0 : x->status, t0,
           x->stream ? (x->headers_ns ? x->headers_ns : t1) : t1);
    /* A handle whose transfer failed may hold a broken connection; curl
     * discards those itself, so it stays reusable. */
    pool_put(k, h);
    return rc;
}

int csl_kube_request(csl_kube *k, const char *method, const char *path, const char *content_type,
                     const char *body, size_t len, csl_buf *resp, csl_kube_error *err)
{
    err_reset(err);
    for (int attempt = 0;; attempt++) {
        csl_buf_reset(resp);
        xfer x = {.k = k, .body = resp, .max = k->opt.max_response};
        uint64_t gen = 0;
        int st = perform(k, method, path, content_type, body, len, &x, &gen, err);
        if (st == 401 && attempt == 0 && auth_invalidate(k, gen, true)) continue;
        if (st == 401 && attempt > 0) auth_invalidate(k, gen, false);
        if (st >= 0) {
            if (resp->oom) {
                err_set(err, CSL_KUBE_OTHER, st, "%s %s: out of memory", method, path);
                return -1;
            }
            if (err) err->retry_after_s = x.retry_after_s;
        }
        return st;
    }
}

/* ------------------------------------------------------------------ REST */

/* Runs a call whose answer is an object: 2xx → the parsed body, else NULL
 * with err decoded (Retry-After header when the Status has none). */
static cJSON *call_json(csl_kube *k, const char *method, const char *path, const char *content_type,
                        const char *body, size_t len, csl_kube_error *err)
{
    csl_buf resp = CSL_BUF_INIT;
    csl_kube_error local;
    if (!err) err = &local;
    int st = csl_kube_request(k, method, path, content_type, body, len, &resp, err);
    cJSON *out = NULL;
    if (st < 0) goto done;
    if (st < 200 || st > 299) {
        int ra = err->retry_after_s;
        csl_kube_error_decode(st, resp.data, resp.len, err);
        if (err->retry_after_s == 0) err->retry_after_s = ra;
        err_prefix(err, method, path);
        goto done;
    }
    out = cJSON_ParseWithLength(csl_buf_str(&resp), resp.len);
    if (!cJSON_IsObject(out)) {
        char ex[120];
        excerpt(ex, sizeof ex, csl_buf_str(&resp), resp.len);
        err_set(err, CSL_KUBE_DECODE, st, "%s %s: HTTP %d answer is not a JSON object: %s", method,
                path, st, resp.len ? ex : "(empty body)");
        cJSON_Delete(out);
        out = NULL;
    } else {
        err_reset(err);
        err->status = st;
    }
done:
    csl_buf_free(&resp);
    return out;
}

static bool path_ok(const csl_buf *p, csl_kube_error *err)
{
    if (!p->oom) return true;
    err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
    return false;
}

static bool res_ok(const csl_kube_resource *res, csl_kube_error *err)
{
    if (res && res->version && res->resource && *res->version && *res->resource) return true;
    err_set(err, CSL_KUBE_BAD_REQUEST, 0, "resource needs a version and a plural name");
    return false;
}

cJSON *csl_kube_get(csl_kube *k, const csl_kube_resource *res, const char *ns, const char *name,
                    const char *subresource, csl_kube_error *err)
{
    if (!res_ok(res, err)) return NULL;
    if (!name || !*name) {
        err_set(err, CSL_KUBE_BAD_REQUEST, 0, "get %s: an object name is needed", res->resource);
        return NULL;
    }
    csl_buf p = CSL_BUF_INIT;
    csl_kube_path(&p, res, ns, name, subresource);
    cJSON *o = path_ok(&p, err) ? call_json(k, "GET", p.data, NULL, NULL, 0, err) : NULL;
    csl_buf_free(&p);
    return o;
}

static void list_query(csl_buf *p, const csl_kube_list_opts *opt, const char *cont)
{
    bool first = true;
    if (!opt) return;
    put_query(p, &first, "labelSelector", opt->label_selector);
    put_query(p, &first, "fieldSelector", opt->field_selector);
    if (opt->limit > 0) {
        char n[32];
        snprintf(n, sizeof n, "%ld", opt->limit);
        put_query(p, &first, "limit", n);
    }
    put_query(p, &first, "continue", cont);
    /* A continue token carries its own resourceVersion; the server refuses
     * both together. */
    if (!cont) {
        put_query(p, &first, "resourceVersion", opt->resource_version);
        put_query(p, &first, "resourceVersionMatch", opt->resource_version_match);
    }
}

cJSON *csl_kube_list(csl_kube *k, const csl_kube_resource *res, const char *ns,
                     const csl_kube_list_opts *opt, csl_kube_error *err)
{
    if (!res_ok(res, err)) return NULL;
    csl_buf p = CSL_BUF_INIT;
    csl_kube_path(&p, res, ns, NULL, NULL);
    list_query(&p, opt,
               opt && opt->continue_token && *opt->continue_token ? opt->continue_token : NULL);
    cJSON *o = path_ok(&p, err) ? call_json(k, "GET", p.data, NULL, NULL, 0, err) : NULL;
    csl_buf_free(&p);
    return o;
}

static const char *list_continue(const cJSON *list)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(list, "metadata");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(md, "continue");
    return cJSON_IsString(c) && *c->valuestring ? c->valuestring : NULL;
}

cJSON *csl_kube_list_all(csl_kube *k, const csl_kube_resource *res, const char *ns,
                         const csl_kube_list_opts *opt, csl_kube_error *err)
{
    csl_kube_list_opts o = {0};
    if (opt) o = *opt;
    if (o.limit <= 0) o.limit = 500;
    o.continue_token = NULL;
    bool restarted = false;
restart:;
    cJSON *all = csl_kube_list(k, res, ns, &o, err);
    if (!all) return NULL;
    cJSON *items = cJSON_GetObjectItemCaseSensitive(all, "items");
    if (!cJSON_IsArray(items)) {
        /* "items": null is how an empty list may come back */
        cJSON_DeleteItemFromObjectCaseSensitive(all, "items");
        items = cJSON_AddArrayToObject(all, "items");
        if (!items) goto oom;
    }
    char *cont = NULL;
    const char *c0 = list_continue(all);
    if (c0 && !(cont = strdup(c0))) goto oom;
    while (cont) {
        csl_kube_list_opts po = o;
        po.continue_token = cont;
        cJSON *page = csl_kube_list(k, res, ns, &po, err);
        free(cont);
        cont = NULL;
        if (!page) {
            if (err && err->code == CSL_KUBE_GONE && !restarted) {
                /* the continue token expired (compaction): start over once */
                restarted = true;
                cJSON_Delete(all);
                goto restart;
            }
            cJSON_Delete(all);
            return NULL;
        }
        cJSON *pitems = cJSON_GetObjectItemCaseSensitive(page, "items");
        while (cJSON_IsArray(pitems) && pitems->child) {
            cJSON *it = cJSON_DetachItemViaPointer(pitems, pitems->child);
            cJSON_AddItemToArray(items, it);
        }
        const char *c = list_continue(page);
        if (c && !(cont = strdup(c))) {
            cJSON_Delete(page);
            goto oom;
        }
        cJSON_Delete(page);
    }
    cJSON *md = cJSON_GetObjectItemCaseSensitive(all, "metadata");
    cJSON_DeleteItemFromObjectCaseSensitive(md, "continue");
    cJSON_DeleteItemFromObjectCaseSensitive(md, "remainingItemCount");
    return all;
oom:
    cJSON_Delete(all);
    err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
    return NULL;
}

static const char *obj_ns_or(const cJSON *obj, const char *ns, const csl_kube *k)
{
    if (ns && *ns) return ns;
    const char *o = csl_kube_obj_namespace(obj);
    return o && *o ? o : k->cfg.namespace;
}

cJSON *csl_kube_create(csl_kube *k, const csl_kube_resource *res, const char *ns, const cJSON *obj,
                       csl_kube_error *err)
{
    if (!res_ok(res, err)) return NULL;
    if (!cJSON_IsObject(obj)) {
        err_set(err, CSL_KUBE_BAD_REQUEST, 0, "create %s: the object must be a JSON object",
                res->resource);
        return NULL;
    }
    char *body = cJSON_PrintUnformatted(obj);
    csl_buf p = CSL_BUF_INIT;
    csl_kube_path(&p, res, obj_ns_or(obj, ns, k), NULL, NULL);
    cJSON *o = NULL;
    if (!body)
        err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
    else if (path_ok(&p, err))
        o = call_json(k, "POST", p.data, "application/json", body, strlen(body), err);
    free(body);
    csl_buf_free(&p);
    return o;
}

cJSON *csl_kube_update(csl_kube *k, const csl_kube_resource *res, const char *ns, const cJSON *obj,
                       const char *subresource, csl_kube_error *err)
{
    if (!res_ok(res, err)) return NULL;
    const char *name = csl_kube_obj_name(obj);
    if (!name || !*name) {
        err_set(err, CSL_KUBE_BAD_REQUEST, 0, "update %s: the object has no metadata.name",
                res->resource);
        return NULL;
    }
    char *body = cJSON_PrintUnformatted(obj);
    csl_buf p = CSL_BUF_INIT;
    csl_kube_path(&p, res, obj_ns_or(obj, ns, k), name, subresource);
    cJSON *o = NULL;
    if (!body)
        err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
    else if (path_ok(&p, err))
        o = call_json(k, "PUT", p.data, "application/json", body, strlen(body), err);
    free(body);
    csl_buf_free(&p);
    return o;
}

cJSON *csl_kube_patch(csl_kube *k, const csl_kube_resource *res, const char *ns, const char *name,
                      const char *subresource, csl_kube_patch_type type, const char *patch,
                      const csl_kube_patch_opts *opt, csl_kube_error *err)
{
    static const char *const ctypes[] = {
        [CSL_PATCH_MERGE] = "application/merge-patch+json",
        [CSL_PATCH_JSON] = "application/json-patch+json",
        [CSL_PATCH_APPLY] = "application/apply-patch+yaml",
    };
    if (!res_ok(res, err)) return NULL;
    if ((unsigned)type > CSL_PATCH_APPLY || !patch || !name || !*name) {
        err_set(err, CSL_KUBE_BAD_REQUEST, 0,
                "patch %s: needs a name, a patch body and a known patch type", res->resource);
        return NULL;
    }
    if (type == CSL_PATCH_APPLY && (!opt || !opt->field_manager || !*opt->field_manager)) {
        err_set(err, CSL_KUBE_BAD_REQUEST, 0,
                "server-side apply of %s \"%s\" needs a field manager (opt->field_manager)",
                res->resource, name);
        return NULL;
    }
    csl_buf p = CSL_BUF_INIT;
    csl_kube_path(&p, res, ns, name, subresource);
    bool first = true;
    if (opt) {
        put_query(&p, &first, "fieldManager", opt->field_manager);
        if (opt->force && type == CSL_PATCH_APPLY) put_query(&p, &first, "force", "true");
    }
    cJSON *o = path_ok(&p, err)
                   ? call_json(k, "PATCH", p.data, ctypes[type], patch, strlen(patch), err)
                   : NULL;
    csl_buf_free(&p);
    return o;
}

int csl_kube_delete(csl_kube *k, const csl_kube_resource *res, const char *ns, const char *name,
                    const csl_kube_delete_opts *opt, csl_kube_error *err)
{
    if (!res_ok(res, err)) return -1;
    if (!name || !*name) {
        err_set(err, CSL_KUBE_BAD_REQUEST, 0, "delete %s: an object name is needed", res->resource);
        return -1;
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "kind", "DeleteOptions");
    cJSON_AddStringToObject(d, "apiVersion", "v1");
    if (opt) {
        if (opt->propagation_policy)
            cJSON_AddStringToObject(d, "propagationPolicy", opt->propagation_policy);
        if (opt->grace_period_s > 0 || opt->grace_period_s == CSL_KUBE_GRACE_IMMEDIATE)
            cJSON_AddNumberToObject(d, "gracePeriodSeconds",
                                    opt->grace_period_s > 0 ? (double)opt->grace_period_s : 0.0);
        if (opt->precondition_uid || opt->precondition_rv) {
            cJSON *pc = cJSON_AddObjectToObject(d, "preconditions");
            if (opt->precondition_uid) cJSON_AddStringToObject(pc, "uid", opt->precondition_uid);
            if (opt->precondition_rv)
                cJSON_AddStringToObject(pc, "resourceVersion", opt->precondition_rv);
        }
    }
    char *body = d ? cJSON_PrintUnformatted(d) : NULL;
    cJSON_Delete(d);
    csl_buf p = CSL_BUF_INIT;
    csl_kube_path(&p, res, ns, name, NULL);
    cJSON *o = NULL;
    if (!body)
        err_set(err, CSL_KUBE_OTHER, 0, "out of memory");
    else if (path_ok(&p, err))
        o = call_json(k, "DELETE", p.data, "application/json", body, strlen(body), err);
    free(body);
    csl_buf_free(&p);
    if (!o) return -1;
    cJSON_Delete(o);
    return 0;
}

/* ------------------------------------------------------------------ streaming */

int csl_kube_stream(csl_kube *k, const char *path,
                    bool (*on_data)(const char *p, size_t n, void *ctx), void *ctx,
                    const volatile int *stop, long stall_timeout_ms, csl_kube_error *err)
{
    err_reset(err);
    if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)) return 0;
    csl_buf body = CSL_BUF_INIT;
    xfer x = {.k = k,
              .body = &body,
              .max = KUBE_ERRBODY_MAX,
              .stream = true,
              .on_data = on_data,
              .ctx = ctx,
              .stop = stop,
              .stall_ms = stall_timeout_ms};
    uint64_t gen = 0;
    int st = perform(k, "GET", path, NULL, NULL, 0, &x, &gen, err);
    if (st < 0 && x.too_large && x.status >= 300) {
        /* an error body past our cap: decode what we kept */
        st = x.status;
    }
    if (st >= 0 && (st < 200 || st > 299)) {
        csl_kube_error_decode(st, body.data, body.len, err);
        if (err && err->retry_after_s == 0) err->retry_after_s = x.retry_after_s;
        err_prefix(err, "GET", path);
        if (st == 401) auth_invalidate(k, gen, false);
    } else if (st >= 0) {
        err_reset(err);
        if (err) err->status = st;
    }
    csl_buf_free(&body);
    return st;
}

/* ------------------------------------------------------------------ helpers */

static const char *meta_str(const cJSON *obj, const char *field)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(md, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *csl_kube_obj_name(const cJSON *obj)
{
    return meta_str(obj, "name");
}

const char *csl_kube_obj_namespace(const cJSON *obj)
{
    return meta_str(obj, "namespace");
}

const char *csl_kube_obj_uid(const cJSON *obj)
{
    return meta_str(obj, "uid");
}

const char *csl_kube_obj_rv(const cJSON *obj)
{
    return meta_str(obj, "resourceVersion");
}

void csl_kube_obj_key(const cJSON *obj, char *out, size_t outsz)
{
    const char *ns = csl_kube_obj_namespace(obj);
    const char *name = csl_kube_obj_name(obj);
    if (ns && *ns)
        snprintf(out, outsz, "%s/%s", ns, name ? name : "");
    else
        snprintf(out, outsz, "%s", name ? name : "");
}
