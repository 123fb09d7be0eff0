/* httpd.h — an HTTP server on libmicrohttpd: routing, JSON replies, body
 * limits, and requests that wait without holding a thread.
 *
 * Routes are (method, pattern) pairs; a pattern is a path whose segments may
 * be {name} parameters ("/v1/instances/{id}") or whose last segment may be
 * "*", matching the rest of the path, zero or more segments ("/_mock/" then
 * "*"; the rest is csl_http_param(r, "*")). The first registered route that
 * matches wins. A path that matches no pattern gets 404 NotFound; one that
 * matches with another method gets 405 MethodNotAllowed with an Allow
 * header; a body larger than max_body gets 413 PayloadTooLarge before any
 * handler runs (at once when Content-Length says so; a streamed body is
 * read and dropped up to 1 MiB past the limit, then answered) and the
 * connection is closed after it. Error replies are JSON:
 * {"error":{"code":"...","message":"..."}}.
 *
 * A handler is called once the whole body has arrived, on one of the
 * server's threads, and must end by calling exactly one of:
 *   csl_http_respond*()     — send a reply;
 *   csl_http_suspend()      — park the connection (no thread is held) and
 *                             call the handler again after a delay, or, with
 *                             a negative delay, only when the peer goes away
 *                             or the server stops (a "hang");
 *   csl_http_reset()        — abort the TCP connection (RST);
 *   csl_http_close()        — close the connection without any reply.
 * A handler that calls none gets a 500 and a logged warning; a second
 * ending call, or one made outside the handler, is ignored and logged.
 * Suspended requests are woken by a timer thread; hung ones are checked once
 * a second and closed (handler not called again) when their client has
 * closed or reset its end, and all are resumed (then closed) by
 * csl_httpd_stop.
 *
 * Threads: handlers and on_done run concurrently on the server's threads
 * (config.threads of them); whatever they share needs a lock. Everything in
 * a csl_http_req belongs to the one thread running its handler; the ending
 * functions must be called from inside the handler, never from elsewhere.
 * Routes and on_done are set up before csl_httpd_start.
 *
 * When a request ends, however it ended, the on_done callback sees it, once,
 * with the status sent (0 for reset/closed/hung-then-closed, and for a
 * suspended request the server stopped) and the time since it arrived;
 * every accessor below still works there. */
#ifndef CSL_HTTPD_H
#define CSL_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct csl_httpd csl_httpd;
typedef struct csl_http_req csl_http_req;

/* route_data is the pointer given at csl_httpd_route. */
typedef void (*csl_http_handler)(csl_http_req *req, void *route_data);
typedef void (*csl_http_done_fn)(csl_http_req *req, void *ctx);
typedef void (*csl_http_free_fn)(void *data);

typedef struct csl_httpd_config {
    const char *listen;       /* "HOST:PORT", "[::1]:PORT"; port 0 picks a free one */
    size_t max_body;          /* bytes; 0 → 1 MiB */
    unsigned threads;         /* polling threads; 0 → 2 */
    unsigned max_connections; /* 0 → 16384 (mind the fd limit) */
    size_t conn_memory;       /* libmicrohttpd's per-connection pool; 0 → 16 KiB */
    unsigned idle_timeout_s;  /* idle keep-alive connections closed after; 0 → 60 */
} csl_httpd_config;

/* API: the server */

/* Creates a server (not yet listening). NULL on allocation failure. */
csl_httpd *csl_httpd_new(const csl_httpd_config *cfg);
/* Adds a route; name is an operation name handlers and logs can read
 * (csl_http_route_name). method "*" or NULL matches any method; "GET" also
 * answers HEAD. At most 8 {params} a route. Returns 0, or -1 (logged, with
 * the reason) on a malformed pattern or when the server already started. */
int csl_httpd_route(csl_httpd *s, const char *method, const char *pattern, const char *name,
                    csl_http_handler fn, void *route_data);
/* Called for every request that reached routing, exactly once, when it ends;
 * concurrently from the server's threads. Set before csl_httpd_start. */
void csl_httpd_on_done(csl_httpd *s, csl_http_done_fn fn, void *ctx);
/* Binds and starts serving. Returns 0, or -1 with a reason in err
 * ("cannot listen on 127.0.0.1:80: Permission denied"). listen takes
 * "HOST:PORT" (a name or an IPv4 address; "" or "*" for any IPv4 address)
 * or "[IPV6]:PORT". May be called again after csl_httpd_stop. */
int csl_httpd_start(csl_httpd *s, char *err, size_t errsz);
/* The bound port (useful with port 0); 0 before start. */
int csl_httpd_port(const csl_httpd *s);
/* Resumes every suspended request (handlers are NOT called again; those
 * connections are closed), stops the threads and closes the socket.
 * Idempotent. */
void csl_httpd_stop(csl_httpd *s);
/* Stops if needed and frees. */
void csl_httpd_free(csl_httpd *s);
/* Number of requests currently suspended (delayed or hung). */
size_t csl_httpd_suspended(csl_httpd *s);

/* API: reading a request (valid until the request ends) */
const char *csl_http_method(const csl_http_req *r);
const char *csl_http_path(const csl_http_req *r);       /* without the query string */
const char *csl_http_route_name(const csl_http_req *r); /* NULL when no route matched */
/* Query argument (decoded; "" for "?flag"), header (case-insensitive) or
 * {param} ("*" for the rest matched by a final "*"); NULL if absent. */
const char *csl_http_query(const csl_http_req *r, const char *name);
const char *csl_http_header(const csl_http_req *r, const char *name);
const char *csl_http_param(const csl_http_req *r, const char *name);
/* Calls fn for each query argument, in order (v is "" for "?flag"); stops
 * when fn returns false. */
void csl_http_query_each(const csl_http_req *r, bool (*fn)(const char *k, const char *v, void *ctx),
                         void *ctx);
/* The request body, NUL-terminated (len may be 0). */
const char *csl_http_body(const csl_http_req *r, size_t *len);
/* How many times the handler has been resumed after csl_http_suspend. */
unsigned csl_http_resumes(const csl_http_req *r);
/* Monotonic ns when the request line arrived; ns elapsed since. */
int64_t csl_http_start_ns(const csl_http_req *r);
int64_t csl_http_elapsed_ns(const csl_http_req *r);
/* Per-request slot for the application; free_fn (may be NULL) runs when
 * the request ends, after on_done. Setting it again replaces the pointer
 * without freeing the old one. */
void csl_http_set_data(csl_http_req *r, void *data, csl_http_free_fn free_fn);
void *csl_http_data(const csl_http_req *r);
/* Status queued (0 when none yet, or reset/closed). */
int csl_http_status(const csl_http_req *r);

/* API: ending a request */
/* Adds a response header for the reply about to be sent (headers set before
 * a csl_http_suspend are dropped). A name or value with CR/LF, or a name
 * with ':' or blanks, is refused with a warning. */
void csl_http_set_header(csl_http_req *r, const char *name, const char *value);
/* Copies body; content_type NULL sends none. A status outside 100..999 is
 * logged and answered with 500. */
void csl_http_respond(csl_http_req *r, int status, const char *content_type, const void *body,
                      size_t len);
/* Serialises json (unformatted) with Content-Type application/json. */
void csl_http_respond_json(csl_http_req *r, int status, const cJSON *json);
/* {"error":{"code":code,"message":...}} */
void csl_http_respond_error(csl_http_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* delay_ns >= 0: call the handler again after the delay; < 0: hang. */
void csl_http_suspend(csl_http_req *r, int64_t delay_ns);
void csl_http_reset(csl_http_req *r);
void csl_http_close(csl_http_req *r);

#endif
