/* watch.c — watch-stream parser, back-off arithmetic and the reflector
 * (see csl/watch.h).
 *
 * The parser's one idea: find where each event ends by counting braces
 * outside strings, byte by byte, carrying that small state across chunks,
 * so an event is parsed exactly once, when its last byte arrives, whatever
 * the chunking and whatever (or no) whitespace separates events.
 *
 * The reflector is one thread running a loop of three states: list (then
 * hand the consumer the whole collection), watch from the last
 * resourceVersion, and back off. A watch ends in one of four ways, and each
 * has one answer: a clean end → watch again at once; 410 Gone (HTTP status
 * or an ERROR event) → list again; anything else (transport error, stall,
 * garbage, a server error) → back off, then watch again from the same
 * resourceVersion; stop or pause → leave the loop or wait. */
#include "csl/watch.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A watch that ends cleanly sooner than this having delivered nothing is
 * treated as a failure, so a server that closes every watch at once gets
 * back-off rather than a hot loop. */
#define WATCH_MIN_HEALTHY_NS 1000000000LL

const char *csl_watch_type_name(csl_watch_type t)
{
    switch (t) {
    case CSL_WATCH_ADDED:
        return "ADDED";
    case CSL_WATCH_MODIFIED:
        return "MODIFIED";
    case CSL_WATCH_DELETED:
        return "DELETED";
    case CSL_WATCH_BOOKMARK:
        return "BOOKMARK";
    case CSL_WATCH_ERROR:
        return "ERROR";
    }
    return "?";
}

static bool watch_type_parse(const char *s, csl_watch_type *out)
{
    static const csl_watch_type all[] = {CSL_WATCH_ADDED, CSL_WATCH_MODIFIED, CSL_WATCH_DELETED,
                                         CSL_WATCH_BOOKMARK, CSL_WATCH_ERROR};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, csl_watch_type_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------------ parser */

struct csl_watch_parser {
    size_t max_event;
    csl_buf ev;        /* bytes of the event being received */
    bool in_event;     /* between its '{' and its matching '}' */
    bool in_str, esc;  /* inside a JSON string; after a backslash there */
    size_t depth;      /* open braces and brackets */
    uint64_t offset;   /* stream bytes consumed so far */
    uint64_t ev_start; /* stream offset of the current event's '{' */
    uint64_t events;   /* complete events */
    bool failed;
    char errmsg[256];
};

csl_watch_parser *csl_watch_parser_new(size_t max_event)
{
    csl_watch_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->max_event = max_event ? max_event : CSL_WATCH_MAX_EVENT_DEFAULT;
    csl_buf_init(&p->ev);
    return p;
}

void csl_watch_parser_free(csl_watch_parser *p)
{
    if (!p) return;
    csl_buf_free(&p->ev);
    free(p);
}

void csl_watch_parser_reset(csl_watch_parser *p)
{
    size_t max = p->max_event;
    csl_buf ev = p->ev;
    csl_buf_reset(&ev);
    /* Keep the event buffer's storage, unless a huge event grew it. */
    if (ev.cap > 1024 * 1024) csl_buf_free(&ev);
    memset(p, 0, sizeof *p);
    p->max_event = max;
    p->ev = ev;
}

uint64_t csl_watch_parser_events(const csl_watch_parser *p)
{
    return p->events;
}

static int parser_fail(csl_watch_parser *p, char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int parser_fail(csl_watch_parser *p, char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
    va_end(ap);
    p->failed = true;
    csl_buf_reset(&p->ev);
    if (err && errsz) snprintf(err, errsz, "%s", p->errmsg);
    return -1;
}

/* Parses the complete event in p->ev and hands its object to fn. Returns
 * 0, 1 (fn asked to stop) or -1. */
static int parser_emit(csl_watch_parser *p, csl_watch_event_fn fn, void *ctx, char *err,
                       size_t errsz)
{
    uint64_t n = p->events + 1;
    if (p->ev.oom)
        return parser_fail(p, err, errsz,
                           "watch event %" PRIu64 " at byte %" PRIu64 ": out of memory", n,
                           p->ev_start);
    cJSON *ev = cJSON_ParseWithLength(p->ev.data, p->ev.len);
    if (!ev) {
        const char *at = cJSON_GetErrorPtr();
        long pos =
            at && at >= p->ev.data && at <= p->ev.data + p->ev.len ? (long)(at - p->ev.data) : -1;
        return parser_fail(p, err, errsz,
                           "watch event %" PRIu64 " at byte %" PRIu64
                           ": not valid JSON (near byte %ld of the event)",
                           n, p->ev_start, pos);
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
    cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
    csl_watch_type t = CSL_WATCH_ADDED;
    int rc = 0;
    if (!cJSON_IsString(type)) {
        rc = parser_fail(p, err, errsz,
                         "watch event %" PRIu64 " at byte %" PRIu64 ": no \"type\" string", n,
                         p->ev_start);
    } else if (!watch_type_parse(type->valuestring, &t)) {
        rc = parser_fail(p, err, errsz,
                         "watch event %" PRIu64 " at byte %" PRIu64
                         ": unknown type \"%.32s\" (want ADDED, MODIFIED, DELETED, BOOKMARK "
                         "or ERROR)",
                         n, p->ev_start, type->valuestring);
    } else if (!cJSON_IsObject(obj)) {
        rc = parser_fail(p, err, errsz,
                         "watch event %" PRIu64 " at byte %" PRIu64 ": no \"object\" object", n,
                         p->ev_start);
    }
    if (rc < 0) {
        cJSON_Delete(ev);
        return rc;
    }
    cJSON_DetachItemViaPointer(ev, obj);
    cJSON_Delete(ev);
    p->events++;
    csl_buf_reset(&p->ev);
    return fn(t, obj, ctx) ? 0 : 1;
}

int csl_watch_parser_feed(csl_watch_parser *p, const char *data, size_t n, csl_watch_event_fn fn,
                          void *ctx, char *err, size_t errsz)
{
    if (p->failed) {
        if (err && errsz) snprintf(err, errsz, "%s", p->errmsg);
        return -1;
    }
    size_t span = 0; /* start, in data, of the current event's unsaved bytes */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        uint64_t at = p->offset + i;
        if (!p->in_event) {
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
            if (c != '{') {
                char found[16];
                if (c >= 0x20 && c < 0x7f)
                    snprintf(found, sizeof found, "'%c'", c);
                else
                    snprintf(found, sizeof found, "byte 0x%02x", c);
                return parser_fail(p, err, errsz,
                                   "watch stream byte %" PRIu64
                                   ": expected an event ('{'), found %s after %" PRIu64 " events",
                                   at, found, p->events);
            }
            p->in_event = true;
            p->depth = 1;
            p->in_str = p->esc = false;
            p->ev_start = at;
            span = i;
            continue;
        }
        if (p->ev.len + (i - span) + 1 > p->max_event)
            return parser_fail(p, err, errsz,
                               "watch event %" PRIu64 " at byte %" PRIu64
                               ": larger than the %zu-byte limit",
                               p->events + 1, p->ev_start, p->max_event);
        if (p->in_str) {
            if (p->esc)
                p->esc = false;
            else if (c == '\\')
                p->esc = true;
            else if (c == '"')
                p->in_str = false;
            continue;
        }
        if (c == '"') {
            p->in_str = true;
        } else if (c == '{' || c == '[') {
            p->depth++;
        } else if ((c == '}' || c == ']') && --p->depth == 0) {
            csl_buf_append(&p->ev, data + span, i - span + 1);
            p->in_event = false;
            int rc = parser_emit(p, fn, ctx, err, errsz);
            if (rc != 0) {
                p->offset += i + 1;
                return rc;
            }
        }
    }
    if (p->in_event) csl_buf_append(&p->ev, data + span, n - span);
    p->offset += n;
    return 0;
}

int csl_watch_parser_finish(csl_watch_parser *p, char *err, size_t errsz)
{
    if (p->failed) {
        if (err && errsz) snprintf(err, errsz, "%s", p->errmsg);
        return -1;
    }
    if (p->in_event)
        return parser_fail(p, err, errsz,
                           "watch stream ended inside event %" PRIu64 " (at byte %" PRIu64
                           ", after %" PRIu64 " bytes of it)",
                           p->events + 1, p->ev_start, p->offset - p->ev_start);
    return 0;
}

/* ------------------------------------------------------------------ back-off */

void csl_backoff_init(csl_backoff *b)
{
    memset(b, 0, sizeof *b);
    b->initial_s = 0.8;
    b->max_s = 30.0;
    b->factor = 2.0;
    b->jitter = 0.25;
    b->reset_after_s = 120.0;
    b->next_s = b->initial_s;
}

void csl_backoff_reset(csl_backoff *b)
{
    b->next_s = b->initial_s;
    b->last_ns = 0;
}

double csl_backoff_next(csl_backoff *b, int64_t now_ns, csl_rng *rng)
{
    if (b->last_ns != 0 && (double)(now_ns - b->last_ns) >= b->reset_after_s * 1e9)
        b->next_s = b->initial_s;
    double base = b->next_s < b->max_s ? b->next_s : b->max_s;
    if (base < b->initial_s) base = b->initial_s;
    double j = b->jitter < 0 ? 0 : b->jitter > 1 ? 1 : b->jitter;
    double d = base * (1.0 + j * (2.0 * csl_rng_double(rng) - 1.0));
    double grown = base * (b->factor > 1 ? b->factor : 1);
    b->next_s = grown < b->max_s ? grown : b->max_s;
    b->last_ns = now_ns + (int64_t)(d * 1e9);
    return d;
}

/* ------------------------------------------------------------------ reflector */

typedef enum {
    WATCH_CLEAN_END,
    WATCH_GONE,
    WATCH_FAILED,
    WATCH_STOPPED,
} watch_outcome;

struct csl_reflector {
    csl_kube *k;
    char *group, *version, *resource;
    bool namespaced;
    char *ns, *label_selector, *field_selector, *name;
    long page_size;
    int wt_min, wt_max;
    long stall_ms;
    csl_reflector_handler h;
    csl_watch_parser *parser;
    csl_rng rng;
    csl_backoff bo;

    pthread_mutex_t mu; /* guards everything below, and rv for readers */
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stopping, paused;
    /* csl_kube_stream's stop flag: stopping || paused. Written under mu,
     * read anywhere, always through __atomic builtins. */
    volatile int abort_stream;
    csl_buf rv;
    csl_reflector_stats stats;

    /* The current watch; touched only by the reflector's thread. */
    bool w_gone;
    bool w_failed;
    uint64_t w_events;
    char w_err[512];
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

csl_reflector *csl_reflector_new(csl_kube *k, const csl_reflector_options *opt,
                                 const csl_reflector_handler *h, char *err, size_t errsz)
{
    const char *why = NULL;
    if (!k)
        why = "no client";
    else if (!opt || !opt->resource.version || !*opt->resource.version || !opt->resource.resource ||
             !*opt->resource.resource)
        why = "the resource needs a version and a plural resource name";
    else if (!h || !h->on_replace || !h->on_event)
        why = "the handler needs on_replace and on_event";
    else if (opt->watch_timeout_min_s < 0 || opt->watch_timeout_max_s < 0 ||
             (opt->watch_timeout_max_s && opt->watch_timeout_min_s > opt->watch_timeout_max_s))
        why = "watch_timeout_min_s must be >= 0 and <= watch_timeout_max_s";
    else if (opt->page_size < 0 || opt->stall_timeout_ms < 0)
        why = "page_size and stall_timeout_ms must be >= 0";
    if (why) {
        if (err && errsz) snprintf(err, errsz, "reflector: %s", why);
        return NULL;
    }
    csl_reflector *r = calloc(1, sizeof *r);
    if (!r) goto oom;
    r->k = k;
    r->group = strdup(opt->resource.group ? opt->resource.group : "");
    r->version = strdup(opt->resource.version);
    r->resource = strdup(opt->resource.resource);
    r->namespaced = opt->resource.namespaced;
    r->ns = dup_or_null(opt->namespace);
    r->label_selector = dup_or_null(opt->label_selector);
    r->field_selector = dup_or_null(opt->field_selector);
    r->name = strdup(opt->name && *opt->name ? opt->name : opt->resource.resource);
    r->parser = csl_watch_parser_new(opt->max_event);
    if (!r->group || !r->version || !r->resource || !r->name || !r->parser ||
        (opt->namespace && *opt->namespace && !r->ns) ||
        (opt->label_selector && *opt->label_selector && !r->label_selector) ||
        (opt->field_selector && *opt->field_selector && !r->field_selector))
        goto oom;
    r->page_size = opt->page_size ? opt->page_size : 500;
    r->wt_min = opt->watch_timeout_min_s ? opt->watch_timeout_min_s : 300;
    r->wt_max = opt->watch_timeout_max_s ? opt->watch_timeout_max_s : 600;
    if (r->wt_min > r->wt_max) r->wt_max = r->wt_min;
    r->stall_ms = opt->stall_timeout_ms ? opt->stall_timeout_ms : 180000;
    r->h = *h;
    uint64_t seed = opt->seed ? opt->seed : (uint64_t)csl_mono_ns() ^ (uint64_t)csl_wall_ms();
    csl_rng_derive(&r->rng, seed, "reflector", 0);
    if (opt->backoff.initial_s > 0) {
        r->bo = opt->backoff;
        if (r->bo.max_s < r->bo.initial_s) r->bo.max_s = r->bo.initial_s;
        csl_backoff_reset(&r->bo);
    } else {
        csl_backoff_init(&r->bo);
    }
    csl_buf_init(&r->rv);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    return r;
oom:
    if (r) {
        free(r->group);
        free(r->version);
        free(r->resource);
        free(r->ns);
        free(r->label_selector);
        free(r->field_selector);
        free(r->name);
        csl_watch_parser_free(r->parser);
        free(r);
    }
    if (err && errsz) snprintf(err, errsz, "reflector: out of memory");
    return NULL;
}

static bool aborted(csl_reflector *r)
{
    return __atomic_load_n(&r->abort_stream, __ATOMIC_ACQUIRE) != 0;
}

static void set_abort(csl_reflector *r, int v)
{
    __atomic_store_n(&r->abort_stream, v, __ATOMIC_RELEASE);
}

static csl_kube_resource reflector_res(const csl_reflector *r)
{
    csl_kube_resource res = {r->group, r->version, r->resource, r->namespaced};
    return res;
}

static void set_rv(csl_reflector *r, const char *rv)
{
    pthread_mutex_lock(&r->mu);
    csl_buf_reset(&r->rv);
    csl_buf_puts(&r->rv, rv);
    pthread_mutex_unlock(&r->mu);
}

/* Waits until deadline_ns (monotonic), or until stop. Returns false when
 * stopping. Called with r->mu held. */
static bool wait_until(csl_reflector *r, int64_t deadline_ns)
{
    while (!r->stopping) {
        int64_t now = csl_mono_ns();
        if (now >= deadline_ns) return true;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t left = deadline_ns - now;
        ts.tv_sec += (time_t)(left / 1000000000);
        ts.tv_nsec += (long)(left % 1000000000);
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    return false;
}

static void back_off(csl_reflector *r, const char *what)
{
    pthread_mutex_lock(&r->mu);
    r->stats.errors++;
    pthread_mutex_unlock(&r->mu);
    double d = csl_backoff_next(&r->bo, csl_mono_ns(), &r->rng);
    char delay[32];
    snprintf(delay, sizeof delay, "%.3fs", d);
    csl_log(CSL_LOG_WARN, "reflector: retrying after back-off", "reflector", r->name, "error", what,
            "delay", delay, NULL);
    pthread_mutex_lock(&r->mu);
    wait_until(r, csl_mono_ns() + (int64_t)(d * 1e9));
    pthread_mutex_unlock(&r->mu);
}

/* Lists everything and hands it over. Returns 0, or -1 with why. */
static int reflector_list(csl_reflector *r, char *why, size_t whysz)
{
    csl_kube_resource res = reflector_res(r);
    csl_kube_list_opts lo = {0};
    lo.label_selector = r->label_selector;
    lo.field_selector = r->field_selector;
    lo.limit = r->page_size;
    csl_kube_error e = {0};
    cJSON *list = csl_kube_list_all(r->k, &res, r->namespaced ? r->ns : NULL, &lo, &e);
    if (!list) {
        snprintf(why, whysz, "list %.64s: %s: %s", r->name, csl_kube_code_name(e.code), e.message);
        return -1;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(list, "metadata");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    if (!cJSON_IsString(rv) || !*rv->valuestring) {
        snprintf(why, whysz, "list %s: the List has no metadata.resourceVersion", r->name);
        cJSON_Delete(list);
        return -1;
    }
    cJSON *items = cJSON_DetachItemFromObjectCaseSensitive(list, "items");
    if (!cJSON_IsArray(items)) {
        cJSON_Delete(items);
        items = cJSON_CreateArray();
        if (!items) {
            snprintf(why, whysz, "list %s: out of memory", r->name);
            cJSON_Delete(list);
            return -1;
        }
    }
    /* List items carry no kind/apiVersion; watch events do. Make them alike. */
    const cJSON *lkind = cJSON_GetObjectItemCaseSensitive(list, "kind");
    const cJSON *lapi = cJSON_GetObjectItemCaseSensitive(list, "apiVersion");
    char kind[128] = "";
    if (cJSON_IsString(lkind)) {
        size_t n = strlen(lkind->valuestring);
        if (n > 4 && strcmp(lkind->valuestring + n - 4, "List") == 0 && n - 4 < sizeof kind)
            snprintf(kind, sizeof kind, "%.*s", (int)(n - 4), lkind->valuestring);
    }
    cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        if (!cJSON_IsObject(it)) continue;
        if (*kind && !cJSON_HasObjectItem(it, "kind")) cJSON_AddStringToObject(it, "kind", kind);
        if (cJSON_IsString(lapi) && !cJSON_HasObjectItem(it, "apiVersion"))
            cJSON_AddStringToObject(it, "apiVersion", lapi->valuestring);
    }
    set_rv(r, rv->valuestring);
    pthread_mutex_lock(&r->mu);
    r->stats.lists++;
    pthread_mutex_unlock(&r->mu);
    char *rvs = strdup(rv->valuestring);
    cJSON_Delete(list);
    if (!rvs) {
        cJSON_Delete(items);
        snprintf(why, whysz, "list %s: out of memory", r->name);
        return -1;
    }
    csl_log(CSL_LOG_DEBUG, "reflector: listed", "reflector", r->name, "resourceVersion", rvs, NULL);
    r->h.on_replace(items, rvs, r->h.ctx);
    free(rvs);
    return 0;
}

static void query_escaped(csl_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            csl_buf_putc(b, (char)c);
        } else {
            csl_buf_putc(b, '%');
            csl_buf_putc(b, hex[c >> 4]);
            csl_buf_putc(b, hex[c & 15]);
        }
    }
}

static bool on_watch_event(csl_watch_type type, cJSON *obj, void *ctx)
{
    csl_reflector *r = ctx;
    if (type == CSL_WATCH_ERROR) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
        const cJSON *reason = cJSON_GetObjectItemCaseSensitive(obj, "reason");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(obj, "message");
        if ((cJSON_IsNumber(code) && code->valueint == 410) ||
            (cJSON_IsString(reason) && (strcmp(reason->valuestring, "Expired") == 0 ||
                                        strcmp(reason->valuestring, "Gone") == 0))) {
            r->w_gone = true;
        } else {
            r->w_failed = true;
            snprintf(r->w_err, sizeof r->w_err, "watch %s: ERROR event: %d %s: %s", r->name,
                     cJSON_IsNumber(code) ? code->valueint : 0,
                     cJSON_IsString(reason) ? reason->valuestring : "",
                     cJSON_IsString(msg) ? msg->valuestring : "(no message)");
        }
        cJSON_Delete(obj);
        return false;
    }
    const char *rv = csl_kube_obj_rv(obj);
    if (rv && *rv) set_rv(r, rv);
    if (type == CSL_WATCH_BOOKMARK) {
        pthread_mutex_lock(&r->mu);
        r->stats.bookmarks++;
        pthread_mutex_unlock(&r->mu);
        cJSON_Delete(obj);
        return true;
    }
    if (!rv || !*rv) {
        char key[256];
        csl_kube_obj_key(obj, key, sizeof key);
        csl_log(CSL_LOG_WARN, "reflector: watch event without metadata.resourceVersion",
                "reflector", r->name, "type", csl_watch_type_name(type), "object", key, NULL);
    }
    r->w_events++;
    pthread_mutex_lock(&r->mu);
    r->stats.events++;
    pthread_mutex_unlock(&r->mu);
    r->h.on_event(type, obj, r->h.ctx);
    return true;
}

static bool on_watch_data(const char *p, size_t n, void *ctx)
{
    csl_reflector *r = ctx;
    if (aborted(r)) return false;
    int rc = csl_watch_parser_feed(r->parser, p, n, on_watch_event, r, r->w_err, sizeof r->w_err);
    if (rc < 0) r->w_failed = true;
    return rc == 0 && !aborted(r);
}

static watch_outcome reflector_watch(csl_reflector *r, char *why, size_t whysz)
{
    csl_kube_resource res = reflector_res(r);
    csl_buf path = CSL_BUF_INIT;
    char rv[256];
    csl_reflector_last_rv(r, rv, sizeof rv);
    int timeout_s = r->wt_min + (int)csl_rng_below(&r->rng, (uint64_t)(r->wt_max - r->wt_min) + 1);
    csl_kube_path(&path, &res, r->namespaced ? r->ns : NULL, NULL, NULL);
    csl_buf_puts(&path, "?watch=1&allowWatchBookmarks=true&resourceVersion=");
    query_escaped(&path, rv);
    csl_buf_printf(&path, "&timeoutSeconds=%d", timeout_s);
    if (r->label_selector) {
        csl_buf_puts(&path, "&labelSelector=");
        query_escaped(&path, r->label_selector);
    }
    if (r->field_selector) {
        csl_buf_puts(&path, "&fieldSelector=");
        query_escaped(&path, r->field_selector);
    }
    if (path.oom) {
        csl_buf_free(&path);
        snprintf(why, whysz, "watch %s: out of memory", r->name);
        return WATCH_FAILED;
    }
    csl_watch_parser_reset(r->parser);
    r->w_gone = r->w_failed = false;
    r->w_events = 0;
    r->w_err[0] = '\0';
    pthread_mutex_lock(&r->mu);
    r->stats.watches++;
    pthread_mutex_unlock(&r->mu);

    int64_t t0 = csl_mono_ns();
    csl_kube_error e = {0};
    int st = csl_kube_stream(r->k, path.data, on_watch_data, r, &r->abort_stream, r->stall_ms, &e);
    csl_buf_free(&path);

    if (r->w_gone || e.code == CSL_KUBE_GONE || st == 410) return WATCH_GONE;
    if (aborted(r)) return WATCH_STOPPED;
    if (r->w_failed) {
        snprintf(why, whysz, "%s", r->w_err);
        return WATCH_FAILED;
    }
    if (st < 200 || st >= 300) {
        bool stalled = e.code == CSL_KUBE_TIMEOUT && strstr(e.message, "stall");
        if (stalled) {
            pthread_mutex_lock(&r->mu);
            r->stats.stalls++;
            pthread_mutex_unlock(&r->mu);
        }
        snprintf(why, whysz, "watch %.64s from resourceVersion %.64s: %s: %s", r->name, rv,
                 csl_kube_code_name(e.code), e.message);
        return WATCH_FAILED;
    }
    if (csl_watch_parser_finish(r->parser, r->w_err, sizeof r->w_err) < 0) {
        snprintf(why, whysz, "watch %.64s: %s", r->name, r->w_err);
        return WATCH_FAILED;
    }
    if (r->w_events == 0 && csl_watch_parser_events(r->parser) == 0 &&
        csl_mono_ns() - t0 < WATCH_MIN_HEALTHY_NS) {
        snprintf(why, whysz, "watch %s: the server ended the watch at once", r->name);
        return WATCH_FAILED;
    }
    return WATCH_CLEAN_END;
}

static void *reflector_main(void *arg)
{
    csl_reflector *r = arg;
    char why[768];
    bool need_list = true;
    bool gone_before = false; /* the last watch ended in 410 having delivered nothing */
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->paused && !r->stopping) pthread_cond_wait(&r->cv, &r->mu);
        if (r->stopping) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        set_abort(r, 0);
        pthread_mutex_unlock(&r->mu);

        if (need_list) {
            if (reflector_list(r, why, sizeof why) < 0) {
                back_off(r, why);
                continue;
            }
            need_list = false;
        }
        switch (reflector_watch(r, why, sizeof why)) {
        case WATCH_CLEAN_END:
            gone_before = false;
            break;
        case WATCH_GONE: {
            char rv[256];
            csl_reflector_last_rv(r, rv, sizeof rv);
            csl_log(CSL_LOG_INFO, "reflector: resourceVersion expired (410); listing again",
                    "reflector", r->name, "resourceVersion", rv, NULL);
            pthread_mutex_lock(&r->mu);
            r->stats.relists_gone++;
            pthread_mutex_unlock(&r->mu);
            need_list = true;
            /* A list followed at once by another 410 would loop: back off. */
            if (gone_before && r->w_events == 0) back_off(r, "410 Gone again right after a list");
            gone_before = r->w_events == 0;
            break;
        }
        case WATCH_FAILED:
            gone_before = false;
            back_off(r, why);
            break;
        case WATCH_STOPPED:
            break;
        }
    }
    return NULL;
}

int csl_reflector_start(csl_reflector *r)
{
    pthread_mutex_lock(&r->mu);
    if (r->running) {
        pthread_mutex_unlock(&r->mu);
        return -1;
    }
    r->stopping = false;
    set_abort(r, r->paused);
    int rc = pthread_create(&r->thread, NULL, reflector_main, r);
    r->running = rc == 0;
    pthread_mutex_unlock(&r->mu);
    if (rc != 0) {
        csl_log(CSL_LOG_ERROR, "reflector: cannot create its thread", "reflector", r->name, "error",
                strerror(rc), NULL);
        return -1;
    }
    return 0;
}

void csl_reflector_stop(csl_reflector *r)
{
    pthread_mutex_lock(&r->mu);
    if (!r->running) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    r->stopping = true;
    set_abort(r, 1);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_lock(&r->mu);
    r->running = false;
    pthread_mutex_unlock(&r->mu);
}

void csl_reflector_free(csl_reflector *r)
{
    if (!r) return;
    csl_reflector_stop(r);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    csl_buf_free(&r->rv);
    csl_watch_parser_free(r->parser);
    free(r->group);
    free(r->version);
    free(r->resource);
    free(r->ns);
    free(r->label_selector);
    free(r->field_selector);
    free(r->name);
    free(r);
}

void csl_reflector_pause(csl_reflector *r, bool paused)
{
    pthread_mutex_lock(&r->mu);
    r->paused = paused;
    if (paused) set_abort(r, 1);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void csl_reflector_last_rv(csl_reflector *r, char *out, size_t outsz)
{
    if (!outsz) return;
    pthread_mutex_lock(&r->mu);
    snprintf(out, outsz, "%s", csl_buf_str(&r->rv));
    pthread_mutex_unlock(&r->mu);
}

void csl_reflector_stats_get(csl_reflector *r, csl_reflector_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    pthread_mutex_unlock(&r->mu);
}
