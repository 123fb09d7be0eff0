/* httpd.c — HTTP server on libmicrohttpd: routing, JSON errors, body limits
 * and suspended requests (see csl/httpd.h).
 *
 * The one idea: a waiting request costs a heap entry, never a thread. A
 * handler that asks for a delay has its connection suspended in MHD and its
 * deadline pushed on a min-heap; one timer thread sleeps until the earliest
 * deadline and resumes whatever is due, and MHD then calls the access handler
 * again, which calls the route handler again. Hung requests (no deadline) sit
 * in a list the timer thread walks once a second, peeking at each socket to
 * see whether the client has gone.
 *
 * Ownership: a csl_http_req is allocated on the first access-handler call of
 * a request and freed in MHD's completion callback, which MHD calls exactly
 * once for every request that reached the access handler. While a request
 * is suspended only the timer (or csl_httpd_stop) may resume it, and MHD
 * never frees a suspended connection, so the timer may touch it until the
 * moment it calls MHD_resume_connection, and never after. */
#include "csl/httpd.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"

#include <microhttpd.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTPD_MAX_PARAMS 8
#define HTTPD_HANG_CHECK_NS 1000000000LL
#define HTTPD_MAX_DELAY_NS (366LL * 24 * 3600 * 1000000000)
/* Body bytes we read and drop after a streamed (chunked) body passed
 * max_body, so the client can still read its 413; past this the
 * connection is simply closed. MHD 0.9.75 cannot queue a reply while an
 * upload is in progress, hence the detour. */
#define HTTPD_DISCARD_MAX (1024 * 1024)

/* ------------------------------------------------------------------ types */

typedef struct route_seg {
    const char *text; /* literal text, or the parameter's name; NUL-terminated */
    size_t len;
    bool param;
} route_seg;

typedef struct route {
    char *method; /* NULL: any method */
    char *name;
    char *pattern;
    char *store; /* the pattern split in place; route_seg.text points here */
    route_seg *segs;
    size_t nsegs;
    unsigned nparams;
    bool tail; /* the last segment is "*" */
    csl_http_handler fn;
    void *data;
} route;

enum req_end { END_NONE, END_RESPONDED, END_SUSPEND, END_RESET, END_CLOSE };
enum req_wait { WAIT_NONE, WAIT_DELAY, WAIT_HANG };

struct csl_http_req {
    csl_httpd *srv;
    struct MHD_Connection *conn;
    const char *method; /* MHD's copies, valid for the whole request */
    const char *path;
    const route *route;
    int64_t start_ns;
    int64_t deadline_ns;
    int64_t suspend_ns; /* delay asked by csl_http_suspend */
    csl_buf body;
    csl_buf headers; /* reply headers, "name\0value\0" pairs */
    uint64_t body_seen;
    void *data;
    csl_http_free_fn free_fn;
    csl_http_req *next_due; /* timer's private list of requests to resume */
    size_t slot;            /* index in the hung list */
    int status;
    int fd;
    unsigned resumes;
    unsigned char end;  /* enum req_end, for the current handler call */
    unsigned char wait; /* enum req_wait; set while suspended */
    bool queued;        /* MHD accepted the reply */
    bool aborted;       /* resumed only to be closed (stop, client gone) */
    bool too_large;
    bool in_handler;
    unsigned nparams;
    const char *param_names[HTTPD_MAX_PARAMS + 1];
    const char *param_vals[HTTPD_MAX_PARAMS + 1];
    char pathbuf[]; /* copy of the path; parameter values point here */
};

struct csl_httpd {
    csl_httpd_config cfg;
    char *listen;
    route **routes;
    size_t nroutes;
    csl_http_done_fn done_fn;
    void *done_ctx;
    struct MHD_Daemon *daemon;
    int port;

    /* Everything below is guarded by lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t timer;
    bool timer_running;
    bool stopping;
    csl_http_req **heap; /* min-heap on deadline_ns */
    size_t heap_len, heap_cap;
    csl_http_req **hung;
    size_t hung_len, hung_cap;
    int64_t next_hang_check;
    size_t suspended;
};

/* --------------------------------------------------------------- helpers */

static const char *nonnull(const char *s)
{
    return s ? s : "";
}

static void json_escape(csl_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"':
            csl_buf_puts(b, "\\\"");
            break;
        case '\\':
            csl_buf_puts(b, "\\\\");
            break;
        case '\n':
            csl_buf_puts(b, "\\n");
            break;
        case '\r':
            csl_buf_puts(b, "\\r");
            break;
        case '\t':
            csl_buf_puts(b, "\\t");
            break;
        default:
            if (c < 0x20)
                csl_buf_printf(b, "\\u%04x", c);
            else
                csl_buf_putc(b, (char)c);
        }
    }
}

static int conn_fd(csl_http_req *r)
{
    if (r->fd < 0) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) r->fd = ci->connect_fd;
    }
    return r->fd;
}

/* ---------------------------------------------------------------- routes */

static void route_free(route *rt)
{
    if (!rt) return;
    free(rt->method);
    free(rt->name);
    free(rt->pattern);
    free(rt->store);
    free(rt->segs);
    free(rt);
}

static bool valid_param_name(const char *s, size_t len)
{
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Splits pattern into segments; on a malformed pattern returns NULL and
 * says why in why. */
static route *route_parse(const char *pattern, const char **why)
{
    if (pattern[0] != '/') {
        *why = "must start with '/'";
        return NULL;
    }
    route *rt = calloc(1, sizeof *rt);
    if (!rt) goto oom;
    rt->pattern = strdup(pattern);
    rt->store = strdup(pattern + 1);
    size_t max = 1;
    for (const char *p = pattern + 1; *p; p++) max += *p == '/';
    rt->segs = calloc(max, sizeof *rt->segs);
    if (!rt->pattern || !rt->store || !rt->segs) goto oom;

    char *p = rt->store;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash) *slash = '\0';
        size_t len = strlen(p);
        if (len == 1 && p[0] == '*') {
            if (slash) {
                *why = "'*' may only be the last segment";
                goto bad;
            }
            rt->tail = true;
            break;
        }
        route_seg *seg = &rt->segs[rt->nsegs++];
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            if (!valid_param_name(p + 1, len - 2)) {
                *why = "a {parameter} name must be letters, digits, '_' or '-'";
                goto bad;
            }
            if (rt->nparams == HTTPD_MAX_PARAMS) {
                *why = "too many {parameters} (at most 8)";
                goto bad;
            }
            p[len - 1] = '\0';
            seg->text = p + 1;
            seg->len = len - 2;
            seg->param = true;
            rt->nparams++;
        } else {
            if (strpbrk(p, "{}*")) {
                *why = "'{', '}' and '*' must form a whole segment ({name} or a final *)";
                goto bad;
            }
            seg->text = p;
            seg->len = len;
        }
        if (!slash) break;
        p = slash + 1;
    }
    return rt;
oom:
    *why = "out of memory";
bad:
    route_free(rt);
    return NULL;
}

static bool method_matches(const route *rt, const char *method)
{
    if (!rt->method) return true;
    if (strcmp(rt->method, method) == 0) return true;
    return strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
}

/* Matches path against rt's segments; on success fills vals with the
 * (offset, length) of each parameter and, for a tail pattern, the rest. */
static bool route_matches(const route *rt, const char *path, size_t plen, size_t vals[][2])
{
    if (path[0] != '/') return false;
    size_t pos = 1; /* start of the current path segment; plen + 1 = no more */
    unsigned np = 0;
    for (size_t i = 0; i < rt->nsegs; i++) {
        if (pos > plen) return false;
        const char *seg = path + pos;
        const char *slash = memchr(seg, '/', plen - pos);
        size_t len = slash ? (size_t)(slash - seg) : plen - pos;
        const route_seg *rs = &rt->segs[i];
        if (rs->param) {
            if (len == 0) return false;
            vals[np][0] = pos;
            vals[np][1] = len;
            np++;
        } else if (len != rs->len || memcmp(seg, rs->text, len) != 0) {
            return false;
        }
        pos += len + 1;
    }
    if (rt->tail) {
        size_t start = pos > plen ? plen : pos;
        vals[np][0] = start;
        vals[np][1] = plen - start;
        return true;
    }
    return pos == plen + 1;
}

int csl_httpd_route(csl_httpd *s, const char *method, const char *pattern, const char *name,
                    csl_http_handler fn, void *route_data)
{
    const char *why = NULL;
    if (s->daemon) {
        why = "routes must be added before csl_httpd_start";
        goto bad;
    }
    if (!pattern || !fn) {
        why = "pattern and handler are required";
        goto bad;
    }
    if (method && (!method[0] || strpbrk(method, " \t\r\n/"))) {
        why = "method must be a token such as GET, or \"*\" for any";
        goto bad;
    }
    route *rt = route_parse(pattern, &why);
    if (!rt) goto bad;
    rt->fn = fn;
    rt->data = route_data;
    if (method && strcmp(method, "*") != 0 && !(rt->method = strdup(method))) goto oom;
    if (name && !(rt->name = strdup(name))) goto oom;
    route **grown = realloc(s->routes, (s->nroutes + 1) * sizeof *grown);
    if (!grown) goto oom;
    s->routes = grown;
    s->routes[s->nroutes++] = rt;
    return 0;
oom:
    route_free(rt);
    why = "out of memory";
bad:
    csl_logf(CSL_LOG_ERROR, "httpd: cannot add route %s %s: %s", method ? method : "*",
             pattern ? pattern : "(null)", why);
    return -1;
}

/* ------------------------------------------------------ timer and waiting */

static void heap_swap(csl_http_req **h, size_t a, size_t b)
{
    csl_http_req *t = h[a];
    h[a] = h[b];
    h[b] = t;
}

static bool heap_push(csl_httpd *s, csl_http_req *r)
{
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        csl_http_req **h = realloc(s->heap, cap * sizeof *h);
        if (!h) return false;
        s->heap = h;
        s->heap_cap = cap;
    }
    size_t i = s->heap_len++;
    s->heap[i] = r;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->deadline_ns <= s->heap[i]->deadline_ns) break;
        heap_swap(s->heap, parent, i);
        i = parent;
    }
    return true;
}

static csl_http_req *heap_pop(csl_httpd *s)
{
    csl_http_req *top = s->heap[0];
    s->heap[0] = s->heap[--s->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_len && s->heap[l]->deadline_ns < s->heap[m]->deadline_ns) m = l;
        if (r < s->heap_len && s->heap[r]->deadline_ns < s->heap[m]->deadline_ns) m = r;
        if (m == i) break;
        heap_swap(s->heap, i, m);
        i = m;
    }
    return top;
}

static bool hung_push(csl_httpd *s, csl_http_req *r)
{
    if (s->hung_len == s->hung_cap) {
        size_t cap = s->hung_cap ? s->hung_cap * 2 : 64;
        csl_http_req **h = realloc(s->hung, cap * sizeof *h);
        if (!h) return false;
        s->hung = h;
        s->hung_cap = cap;
    }
    r->slot = s->hung_len;
    s->hung[s->hung_len++] = r;
    return true;
}

static void hung_remove(csl_httpd *s, size_t i)
{
    s->hung[i] = s->hung[--s->hung_len];
    s->hung[i]->slot = i;
}

/* The client has closed or reset its end. Data waiting to be read (a
 * pipelined request) means it is still there. */
static bool peer_gone(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

/* Resumes a list built under the lock. Each request may be freed by MHD as
 * soon as it is resumed, so its successor is read first. */
static void resume_list(csl_http_req *r)
{
    while (r) {
        csl_http_req *next = r->next_due;
        MHD_resume_connection(r->conn);
        r = next;
    }
}

static void *timer_main(void *arg)
{
    csl_httpd *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t now = csl_mono_ns();
        csl_http_req *due = NULL;
        size_t n = 0;
        while (s->heap_len && s->heap[0]->deadline_ns <= now) {
            csl_http_req *r = heap_pop(s);
            r->next_due = due;
            due = r;
            n++;
        }
        if (s->hung_len && now >= s->next_hang_check) {
            for (size_t i = 0; i < s->hung_len;) {
                csl_http_req *r = s->hung[i];
                if (!peer_gone(r->fd)) {
                    i++;
                    continue;
                }
                hung_remove(s, i);
                r->aborted = true;
                r->next_due = due;
                due = r;
                n++;
            }
            s->next_hang_check = now + HTTPD_HANG_CHECK_NS;
        }
        if (due) {
            s->suspended -= n;
            pthread_mutex_unlock(&s->lock);
            resume_list(due);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        int64_t wake = INT64_MAX;
        if (s->heap_len) wake = s->heap[0]->deadline_ns;
        if (s->hung_len && s->next_hang_check < wake) wake = s->next_hang_check;
        if (wake == INT64_MAX) {
            pthread_cond_wait(&s->wake, &s->lock);
        } else {
            struct timespec ts = {.tv_sec = wake / 1000000000, .tv_nsec = wake % 1000000000};
            pthread_cond_timedwait(&s->wake, &s->lock, &ts);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* Parks r's connection: a deadline on the heap, or the hung list. Called
 * from the access handler after the route handler asked for it. */
static enum MHD_Result req_suspend(csl_http_req *r)
{
    csl_httpd *s = r->srv;
    if (conn_fd(r) < 0) return MHD_NO;
    csl_buf_reset(&r->headers);
    /* Suspend before the request becomes visible to the timer, so a resume
     * can never precede the suspend. */
    MHD_suspend_connection(r->conn);
    pthread_mutex_lock(&s->lock);
    bool parked = false;
    if (!s->stopping) {
        if (r->suspend_ns < 0) {
            r->wait = WAIT_HANG;
            bool first = s->hung_len == 0;
            parked = hung_push(s, r);
            if (parked && first) {
                s->next_hang_check = csl_mono_ns() + HTTPD_HANG_CHECK_NS;
                pthread_cond_signal(&s->wake);
            }
        } else {
            r->wait = WAIT_DELAY;
            r->deadline_ns = csl_mono_ns() + r->suspend_ns;
            parked = heap_push(s, r);
            if (parked && s->heap[0] == r) pthread_cond_signal(&s->wake);
        }
    }
    if (parked) s->suspended++;
    pthread_mutex_unlock(&s->lock);
    if (!parked) {
        /* Stopping (or out of memory): come straight back, only to close. */
        r->wait = WAIT_DELAY;
        r->aborted = true;
        MHD_resume_connection(r->conn);
    }
    return MHD_YES;
}

/* ---------------------------------------------------------------- replies */

static bool header_ok(const char *name, const char *value)
{
    if (!name || !name[0] || !value) return false;
    if (strpbrk(name, ": \t\r\n")) return false;
    return strpbrk(value, "\r\n") == NULL;
}

/* Adds the headers and queues resp, which it always releases. */
static enum MHD_Result queue(csl_http_req *r, int status, const char *ctype,
                             struct MHD_Response *resp, bool close)
{
    if (!resp) return MHD_NO;
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    const char *p = r->headers.data, *end = p + r->headers.len;
    while (p && p < end) {
        const char *name = p;
        const char *value = name + strlen(name) + 1;
        MHD_add_response_header(resp, name, value);
        p = value + strlen(value) + 1;
    }
    if (close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ok == MHD_YES) r->status = status;
    return ok;
}

static enum MHD_Result send_error(csl_http_req *r, int status, const char *code, bool close,
                                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static enum MHD_Result send_errorv(csl_http_req *r, int status, const char *code, bool close,
                                   const char *fmt, va_list ap)
{
    csl_buf msg = CSL_BUF_INIT, body = CSL_BUF_INIT;
    csl_buf_vprintf(&msg, fmt, ap);
    csl_buf_puts(&body, "{\"error\":{\"code\":\"");
    json_escape(&body, code);
    csl_buf_puts(&body, "\",\"message\":\"");
    json_escape(&body, csl_buf_str(&msg));
    csl_buf_puts(&body, "\"}}");
    enum MHD_Result ok = MHD_NO;
    if (!msg.oom && !body.oom) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_COPY);
        ok = queue(r, status, "application/json", resp, close);
    }
    csl_buf_free(&msg);
    csl_buf_free(&body);
    return ok;
}

static enum MHD_Result send_error(csl_http_req *r, int status, const char *code, bool close,
                                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enum MHD_Result ok = send_errorv(r, status, code, close, fmt, ap);
    va_end(ap);
    return ok;
}

/* The ending functions are legal once per handler call, inside it. */
static bool can_end(csl_http_req *r, const char *what)
{
    if (!r->in_handler) {
        csl_logf(CSL_LOG_WARN, "httpd: %s called outside the handler of %s %s; ignored", what,
                 r->method, r->path);
        return false;
    }
    if (r->end != END_NONE) {
        csl_logf(CSL_LOG_WARN, "httpd: %s called after the request already ended (%s %s); ignored",
                 what, r->method, r->path);
        return false;
    }
    return true;
}

void csl_http_set_header(csl_http_req *r, const char *name, const char *value)
{
    if (!header_ok(name, value)) {
        csl_logf(CSL_LOG_WARN, "httpd: invalid response header %s for %s %s; ignored",
                 nonnull(name), r->method, r->path);
        return;
    }
    csl_buf_append(&r->headers, name, strlen(name) + 1);
    csl_buf_append(&r->headers, value, strlen(value) + 1);
}

void csl_http_respond(csl_http_req *r, int status, const char *content_type, const void *body,
                      size_t len)
{
    if (!can_end(r, "csl_http_respond")) return;
    r->end = END_RESPONDED;
    if (status < 100 || status > 999) {
        csl_logf(CSL_LOG_WARN, "httpd: invalid status %d for %s %s; sending 500", status, r->method,
                 r->path);
        r->queued = send_error(r, 500, "InternalError", false, "invalid status %d", status);
        return;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    r->queued = queue(r, status, content_type, resp, false) == MHD_YES;
}

void csl_http_respond_json(csl_http_req *r, int status, const cJSON *json)
{
    if (!can_end(r, "csl_http_respond_json")) return;
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    if (!text) {
        r->end = END_RESPONDED;
        r->queued = send_error(r, 500, "InternalError", false, "cannot serialise the reply");
        return;
    }
    if (status < 100 || status > 999) {
        cJSON_free(text);
        csl_http_respond(r, status, NULL, NULL, 0);
        return;
    }
    r->end = END_RESPONDED;
    /* cJSON's buffer goes to MHD as is: no copy. */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(strlen(text), text, cJSON_free);
    if (!resp) cJSON_free(text);
    r->queued = queue(r, status, "application/json", resp, false) == MHD_YES;
}

void csl_http_respond_error(csl_http_req *r, int status, const char *code, const char *fmt, ...)
{
    if (!can_end(r, "csl_http_respond_error")) return;
    r->end = END_RESPONDED;
    if (status < 100 || status > 999) status = 500;
    va_list ap;
    va_start(ap, fmt);
    r->queued = send_errorv(r, status, nonnull(code), false, fmt, ap) == MHD_YES;
    va_end(ap);
}

void csl_http_suspend(csl_http_req *r, int64_t delay_ns)
{
    if (!can_end(r, "csl_http_suspend")) return;
    r->end = END_SUSPEND;
    /* a year is "forever" enough, and keeps now + delay from overflowing */
    r->suspend_ns = delay_ns > HTTPD_MAX_DELAY_NS ? HTTPD_MAX_DELAY_NS : delay_ns;
}

void csl_http_reset(csl_http_req *r)
{
    if (!can_end(r, "csl_http_reset")) return;
    r->end = END_RESET;
}

void csl_http_close(csl_http_req *r)
{
    if (!can_end(r, "csl_http_close")) return;
    r->end = END_CLOSE;
}

/* Makes the kernel answer with RST. Linger {1,0} alone is not enough with
 * MHD, which shuts down the write side (a FIN) before it closes; a client
 * that reads the FIN first would see an empty reply instead of a reset.
 * Disconnecting the socket (connect to AF_UNSPEC) sends the RST at once and
 * leaves the descriptor for MHD to close as usual. */
static void conn_reset(csl_http_req *r)
{
    int fd = conn_fd(r);
    if (fd < 0) return;
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr sa = {.sa_family = AF_UNSPEC};
    connect(fd, &sa, sizeof sa);
}

/* ------------------------------------------------------------ dispatching */

static csl_http_req *req_new(csl_httpd *s, struct MHD_Connection *conn, const char *url,
                             const char *method)
{
    size_t plen = strlen(url);
    csl_http_req *r = malloc(sizeof *r + plen + 1);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->srv = s;
    r->conn = conn;
    r->method = method;
    r->path = url;
    r->fd = -1;
    r->start_ns = csl_mono_ns();
    memcpy(r->pathbuf, url, plen + 1);

    size_t vals[HTTPD_MAX_PARAMS + 1][2];
    for (size_t i = 0; i < s->nroutes; i++) {
        const route *rt = s->routes[i];
        if (!method_matches(rt, method) || !route_matches(rt, url, plen, vals)) continue;
        r->route = rt;
        unsigned np = 0;
        for (size_t k = 0; k < rt->nsegs; k++)
            if (rt->segs[k].param) r->param_names[np++] = rt->segs[k].text;
        if (rt->tail) r->param_names[np++] = "*";
        for (unsigned k = 0; k < np; k++) {
            r->param_vals[k] = r->pathbuf + vals[k][0];
            /* the byte after a segment is '/' or the NUL; only the tail
             * (always last) keeps its slashes */
            if (!(rt->tail && k == np - 1)) r->pathbuf[vals[k][0] + vals[k][1]] = '\0';
        }
        r->nparams = np;
        break;
    }
    return r;
}

/* 404 or 405 (with Allow) for a request no route took. */
static enum MHD_Result send_no_route(csl_http_req *r)
{
    csl_httpd *s = r->srv;
    csl_buf allow = CSL_BUF_INIT;
    size_t plen = strlen(r->path);
    size_t vals[HTTPD_MAX_PARAMS + 1][2];
    for (size_t i = 0; i < s->nroutes; i++) {
        const route *rt = s->routes[i];
        if (!rt->method || !route_matches(rt, r->path, plen, vals)) continue;
        /* each method once, in registration order */
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = s->routes[k]->method && strcmp(s->routes[k]->method, rt->method) == 0 &&
                   route_matches(s->routes[k], r->path, plen, vals);
        if (seen) continue;
        if (allow.len) csl_buf_puts(&allow, ", ");
        csl_buf_puts(&allow, rt->method);
    }
    enum MHD_Result ok;
    if (allow.len) {
        csl_http_set_header(r, MHD_HTTP_HEADER_ALLOW, csl_buf_str(&allow));
        ok = send_error(r, 405, "MethodNotAllowed", false, "%s is not allowed on %s (allowed: %s)",
                        r->method, r->path, csl_buf_str(&allow));
    } else {
        ok = send_error(r, 404, "NotFound", false, "no route for %s %s", r->method, r->path);
    }
    csl_buf_free(&allow);
    return ok;
}

static enum MHD_Result send_too_large(csl_http_req *r)
{
    return send_error(r, 413, "PayloadTooLarge", true,
                      "request body is larger than the limit of %zu bytes", r->srv->cfg.max_body);
}

/* The whole request is in: run the route handler and act on how it ended. */
static enum MHD_Result req_dispatch(csl_http_req *r)
{
    if (r->too_large) return send_too_large(r);
    if (!r->route) return send_no_route(r);
    r->end = END_NONE;
    r->in_handler = true;
    r->route->fn(r, r->route->data);
    r->in_handler = false;
    switch (r->end) {
    case END_RESPONDED:
        return r->queued ? MHD_YES : MHD_NO;
    case END_SUSPEND:
        return req_suspend(r);
    case END_RESET:
        conn_reset(r);
        return MHD_NO;
    case END_CLOSE:
        return MHD_NO;
    default:
        break;
    }
    csl_logf(CSL_LOG_WARN, "httpd: handler of route %s (%s %s) sent no reply; answering 500",
             r->route->name ? r->route->name : r->route->pattern, r->method, r->path);
    csl_buf_reset(&r->headers);
    return send_error(r, 500, "InternalError", false, "the handler sent no reply");
}

static enum MHD_Result req_upload(csl_http_req *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    r->body_seen += n;
    size_t max = r->srv->cfg.max_body;
    if (r->too_large) return r->body_seen - max > HTTPD_DISCARD_MAX ? MHD_NO : MHD_YES;
    if (r->body_seen > max) {
        r->too_large = true;
        csl_buf_free(&r->body);
        return MHD_YES;
    }
    if (!r->route) return MHD_YES; /* a 404/405 is coming; keep nothing */
    return csl_buf_append(&r->body, data, n) ? MHD_YES : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **req_cls)
{
    csl_httpd *s = cls;
    csl_http_req *r = *req_cls;
    if (!r) {
        r = req_new(s, conn, url, method);
        if (!r) return MHD_NO;
        *req_cls = r;
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            errno = 0;
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == ERANGE || n > s->cfg.max_body) {
                /* Answered before the body is read; MHD then closes. */
                r->too_large = true;
                return send_too_large(r);
            }
        }
        return MHD_YES;
    }
    if (*upload_size) return req_upload(r, upload_data, upload_size);
    if (r->wait != WAIT_NONE) {
        r->wait = WAIT_NONE;
        if (r->aborted) return MHD_NO;
        r->resumes++;
    }
    return req_dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    csl_httpd *s = cls;
    csl_http_req *r = *req_cls;
    if (!r) return;
    *req_cls = NULL;
    if (s->done_fn) s->done_fn(r, s->done_ctx);
    if (r->free_fn) r->free_fn(r->data);
    csl_buf_free(&r->body);
    csl_buf_free(&r->headers);
    free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    /* MHD says this each time a handler resets or closes on purpose. */
    bool routine = strncmp(msg, "Application reported internal error", 35) == 0;
    csl_logf(routine ? CSL_LOG_DEBUG : CSL_LOG_WARN, "httpd: libmicrohttpd: %s", msg);
}

/* ----------------------------------------------------------------- server */

csl_httpd *csl_httpd_new(const csl_httpd_config *cfg)
{
    csl_httpd *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (cfg) s->cfg = *cfg;
    if (!s->cfg.max_body) s->cfg.max_body = 1024 * 1024;
    if (!s->cfg.threads) s->cfg.threads = 2;
    if (!s->cfg.max_connections) s->cfg.max_connections = 16384;
    if (!s->cfg.conn_memory) s->cfg.conn_memory = 16 * 1024;
    if (!s->cfg.idle_timeout_s) s->cfg.idle_timeout_s = 60;
    s->listen = strdup(s->cfg.listen ? s->cfg.listen : "127.0.0.1:0");
    s->cfg.listen = s->listen;

    pthread_condattr_t ca;
    bool cond_ok = false, lock_ok = pthread_mutex_init(&s->lock, NULL) == 0;
    if (pthread_condattr_init(&ca) == 0) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        cond_ok = pthread_cond_init(&s->wake, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!s->listen || !lock_ok || !cond_ok) {
        if (lock_ok) pthread_mutex_destroy(&s->lock);
        if (cond_ok) pthread_cond_destroy(&s->wake);
        free(s->listen);
        free(s);
        return NULL;
    }
    return s;
}

void csl_httpd_on_done(csl_httpd *s, csl_http_done_fn fn, void *ctx)
{
    s->done_fn = fn;
    s->done_ctx = ctx;
}

/* Splits "HOST:PORT" / "[V6]:PORT" into host (NULL: any) and port. */
static int split_listen(const char *listen, char *host, size_t hostsz, char *port, size_t portsz,
                        const char **why)
{
    const char *colon;
    const char *h = listen;
    size_t hlen;
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':') {
            *why = "expected [IPV6]:PORT";
            return -1;
        }
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon) {
            *why = "expected HOST:PORT";
            return -1;
        }
        hlen = (size_t)(colon - listen);
        if (memchr(listen, ':', hlen)) {
            *why = "write IPv6 addresses in brackets, [::1]:PORT";
            return -1;
        }
    }
    const char *p = colon + 1;
    size_t plen = strlen(p);
    if (plen == 0 || plen >= portsz || strspn(p, "0123456789") != plen || atol(p) > 65535) {
        *why = "the port must be a number from 0 to 65535";
        return -1;
    }
    if (hlen >= hostsz) {
        *why = "host name too long";
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (hlen == 0 || strcmp(host, "*") == 0) strcpy(host, "0.0.0.0");
    memcpy(port, p, plen + 1);
    return 0;
}

/* Binds and listens; returns the socket or -1 with err filled in. */
static int open_listener(csl_httpd *s, char *err, size_t errsz)
{
    char host[256], port[8];
    const char *why = NULL;
    if (split_listen(s->listen, host, sizeof host, port, sizeof port, &why) != 0) {
        snprintf(err, errsz, "cannot listen on \"%s\": %s", s->listen, why);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errsz, "cannot listen on %s: %s", s->listen, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        /* A burst of thousands of clients must not overflow the accept
         * queue; the kernel caps this at somaxconn. */
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0) break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errsz, "cannot listen on %s: %s", s->listen, strerror(saved));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return fd;
}

int csl_httpd_start(csl_httpd *s, char *err, size_t errsz)
{
    char dummy[8];
    if (!err || !errsz) {
        err = dummy;
        errsz = sizeof dummy;
    }
    err[0] = '\0';
    if (s->daemon) {
        snprintf(err, errsz, "server on %s already started", s->listen);
        return -1;
    }
    int fd = open_listener(s, err, errsz);
    if (fd < 0) return -1;

    s->stopping = false;
    int rc = pthread_create(&s->timer, NULL, timer_main, s);
    if (rc != 0) {
        snprintf(err, errsz, "cannot start the timer thread: %s", strerror(rc));
        close(fd);
        s->port = 0;
        return -1;
    }
    s->timer_running = true;

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* The logger goes first so MHD never prints on its own; a pool of one
     * is spelled "no pool". */
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s},
        {MHD_OPTION_LISTEN_SOCKET, fd, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)s->cfg.max_connections, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)s->cfg.conn_memory, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)s->cfg.idle_timeout_s, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {s->cfg.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)s->cfg.threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        int saved = errno;
        snprintf(err, errsz, "cannot start the HTTP server on %s: %s", s->listen,
                 saved ? strerror(saved) : "libmicrohttpd refused the configuration");
        /* MHD may or may not have closed the socket it was handed. */
        if (fcntl(fd, F_GETFD) != -1) close(fd);
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->timer, NULL);
        s->timer_running = false;
        s->port = 0;
        return -1;
    }
    return 0;
}

int csl_httpd_port(const csl_httpd *s)
{
    return s && s->daemon ? s->port : 0;
}

size_t csl_httpd_suspended(csl_httpd *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->suspended;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void csl_httpd_stop(csl_httpd *s)
{
    if (!s || !s->daemon) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    if (s->timer_running) pthread_join(s->timer, NULL);
    s->timer_running = false;

    /* The timer is gone and handlers see stopping, so whatever is parked
     * now is ours alone to wake; each comes back only to be closed. */
    pthread_mutex_lock(&s->lock);
    csl_http_req *due = NULL;
    while (s->heap_len) {
        csl_http_req *r = s->heap[--s->heap_len];
        r->aborted = true;
        r->next_due = due;
        due = r;
    }
    while (s->hung_len) {
        csl_http_req *r = s->hung[--s->hung_len];
        r->aborted = true;
        r->next_due = due;
        due = r;
    }
    s->suspended = 0;
    pthread_mutex_unlock(&s->lock);
    resume_list(due);

    MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
    s->port = 0;
}

void csl_httpd_free(csl_httpd *s)
{
    if (!s) return;
    csl_httpd_stop(s);
    for (size_t i = 0; i < s->nroutes; i++) route_free(s->routes[i]);
    free(s->routes);
    free(s->heap);
    free(s->hung);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s->listen);
    free(s);
}

/* ------------------------------------------------------ request accessors */

const char *csl_http_method(const csl_http_req *r)
{
    return r->method;
}

const char *csl_http_path(const csl_http_req *r)
{
    return r->path;
}

const char *csl_http_route_name(const csl_http_req *r)
{
    return r->route ? r->route->name : NULL;
}

const char *csl_http_query(const csl_http_req *r, const char *name)
{
    const char *v = NULL;
    size_t vlen = 0;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      &vlen) != MHD_YES)
        return NULL;
    return v ? v : ""; /* "?flag" has a key and no value */
}

const char *csl_http_header(const csl_http_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *csl_http_param(const csl_http_req *r, const char *name)
{
    for (unsigned i = 0; i < r->nparams; i++)
        if (strcmp(r->param_names[i], name) == 0) return r->param_vals[i];
    return NULL;
}

struct query_iter {
    bool (*fn)(const char *k, const char *v, void *ctx);
    void *ctx;
};

static enum MHD_Result query_iter_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    struct query_iter *it = cls;
    return it->fn(key, value ? value : "", it->ctx) ? MHD_YES : MHD_NO;
}

void csl_http_query_each(const csl_http_req *r, bool (*fn)(const char *k, const char *v, void *ctx),
                         void *ctx)
{
    struct query_iter it = {fn, ctx};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_iter_cb, &it);
}

const char *csl_http_body(const csl_http_req *r, size_t *len)
{
    if (len) *len = r->body.len;
    return csl_buf_str(&r->body);
}

unsigned csl_http_resumes(const csl_http_req *r)
{
    return r->resumes;
}

int64_t csl_http_start_ns(const csl_http_req *r)
{
    return r->start_ns;
}

int64_t csl_http_elapsed_ns(const csl_http_req *r)
{
    return csl_mono_ns() - r->start_ns;
}

void csl_http_set_data(csl_http_req *r, void *data, csl_http_free_fn free_fn)
{
    r->data = data;
    r->free_fn = free_fn;
}

void *csl_http_data(const csl_http_req *r)
{
    return r->data;
}

int csl_http_status(const csl_http_req *r)
{
    return r->status;
}
