/* test_httpd.c — the HTTP server driven over loopback by libcurl: routing,
 * errors, bodies, suspended and hung requests, reset/close, stop. */
#include "../testutil.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/httpd.h"
#include "csl/log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define MAX_BODY 1024

static csl_httpd *srv;
static char base[64];

/* Log records go to a temporary file so tests can check what a person
 * would be told. */
static FILE *log_file;

static bool logged(const char *text)
{
    static char buf[65536];
    ssize_t n = pread(fileno(log_file), buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, text) != NULL;
}

/* What on_done saw. */
static atomic_int done_count;
static atomic_int done_zero; /* status 0: reset, closed, hung */
static atomic_int done_hang;
static atomic_int delay_calls;
static atomic_int data_freed;
static atomic_int done_bad; /* on_done saw something wrong */

/* ---------------------------------------------------------------- handlers */

static void h_hello(csl_http_req *r, void *d)
{
    csl_http_respond(r, 200, "text/plain", "hello", 5);
}

static void h_instance(csl_http_req *r, void *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", csl_http_param(r, "id"));
    const char *q = csl_http_query(r, "x");
    const char *h = csl_http_header(r, "x-test");
    cJSON_AddStringToObject(o, "x", q ? q : "(none)");
    cJSON_AddStringToObject(o, "h", h ? h : "(none)");
    cJSON_AddStringToObject(o, "route", csl_http_route_name(r));
    csl_http_set_header(r, "X-Served-By", "test");
    csl_http_respond_json(r, 200, o);
    cJSON_Delete(o);
}

static void h_delete(csl_http_req *r, void *d)
{
    csl_http_respond(r, 204, NULL, NULL, 0);
}

static void h_files(csl_http_req *r, void *d)
{
    const char *rest = csl_http_param(r, "*");
    csl_http_respond(r, 200, "text/plain", rest, strlen(rest));
}

static void h_echo(csl_http_req *r, void *d)
{
    size_t len;
    const char *body = csl_http_body(r, &len);
    csl_http_respond(r, 200, "application/octet-stream", body, len);
}

static bool query_collect(const char *k, const char *v, void *ctx)
{
    csl_buf_printf(ctx, "%s=%s;", k, v);
    return strcmp(k, "stop") != 0;
}

static void h_query(csl_http_req *r, void *d)
{
    csl_buf b = CSL_BUF_INIT;
    csl_http_query_each(r, query_collect, &b);
    csl_http_respond(r, 200, "text/plain", b.data, b.len);
    csl_buf_free(&b);
}

static void free_counted(void *p)
{
    atomic_fetch_add(&data_freed, 1);
    free(p);
}

static void h_delay(csl_http_req *r, void *d)
{
    atomic_fetch_add(&delay_calls, 1);
    if (csl_http_resumes(r) == 0) {
        const char *ms = csl_http_query(r, "ms");
        csl_http_set_data(r, malloc(16), free_counted); /* freed after on_done */
        csl_http_suspend(r, (int64_t)atoi(ms ? ms : "100") * 1000000);
        return;
    }
    char msg[64];
    int n = snprintf(msg, sizeof msg, "resumed %u", csl_http_resumes(r));
    csl_http_respond(r, 200, "text/plain", msg, (size_t)n);
}

static void h_hang(csl_http_req *r, void *d)
{
    csl_http_suspend(r, -1);
}

static void h_reset(csl_http_req *r, void *d)
{
    csl_http_reset(r);
}

static void h_close(csl_http_req *r, void *d)
{
    csl_http_close(r);
}

static void h_nothing(csl_http_req *r, void *d) {}

static void h_twice(csl_http_req *r, void *d)
{
    csl_http_respond(r, 201, "text/plain", "first", 5);
    csl_http_respond(r, 202, "text/plain", "second", 6);
}

static void h_error(csl_http_req *r, void *d)
{
    csl_http_respond_error(r, 409, "Conflict", "thing \"%s\" exists", csl_http_param(r, "name"));
}

static void on_done(csl_http_req *r, void *ctx)
{
    atomic_fetch_add(&done_count, 1);
    if (csl_http_status(r) == 0) atomic_fetch_add(&done_zero, 1);
    const char *name = csl_http_route_name(r);
    if (name && strcmp(name, "hang") == 0) atomic_fetch_add(&done_hang, 1);
    /* CUnit is not thread-safe: count what is wrong, assert it later. The
     * request is still readable here, MHD's headers included. */
    if (csl_http_elapsed_ns(r) < 0 || csl_http_path(r)[0] != '/' || !csl_http_method(r)[0] ||
        !csl_http_header(r, "Host"))
        atomic_fetch_add(&done_bad, 1);
}

/* Runs in the suite set-up, where CU_ASSERT is not allowed. */
static int add_routes(csl_httpd *s)
{
    int bad = 0;
    bad |= csl_httpd_route(s, "GET", "/hello", "hello", h_hello, NULL);
    bad |= csl_httpd_route(s, "GET", "/v1/instances/{id}", "get", h_instance, NULL);
    bad |= csl_httpd_route(s, "DELETE", "/v1/instances/{id}", "del", h_delete, NULL);
    bad |= csl_httpd_route(s, "GET", "/v1/instances/{id}", "dup", h_delete, NULL);
    bad |= csl_httpd_route(s, "GET", "/files/*", "files", h_files, NULL);
    bad |= csl_httpd_route(s, "POST", "/echo", "echo", h_echo, NULL);
    bad |= csl_httpd_route(s, "GET", "/query", "query", h_query, NULL);
    bad |= csl_httpd_route(s, "GET", "/delay", "delay", h_delay, NULL);
    bad |= csl_httpd_route(s, "GET", "/hang", "hang", h_hang, NULL);
    bad |= csl_httpd_route(s, "GET", "/reset", "reset", h_reset, NULL);
    bad |= csl_httpd_route(s, "GET", "/close", "close", h_close, NULL);
    bad |= csl_httpd_route(s, "GET", "/nothing", "nothing", h_nothing, NULL);
    bad |= csl_httpd_route(s, "GET", "/twice", "twice", h_twice, NULL);
    bad |= csl_httpd_route(s, "*", "/error/{name}", "error", h_error, NULL);
    csl_httpd_on_done(s, on_done, NULL);
    return bad;
}

/* ------------------------------------------------------------ curl helpers */

static size_t collect(char *p, size_t sz, size_t n, void *ud)
{
    csl_buf_append(ud, p, sz * n);
    return sz * n;
}

typedef struct reply {
    CURLcode cc;
    long status;
    csl_buf body;
    csl_buf headers;
    double seconds;
} reply;

static void reply_free(reply *rp)
{
    csl_buf_free(&rp->body);
    csl_buf_free(&rp->headers);
}

static void setup_easy(CURL *c, const char *method, const char *path, reply *rp)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rp->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &rp->headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
}

/* One request on handle c (reused across calls for keep-alive). */
static void do_req(CURL *c, const char *method, const char *path, const char *body,
                   struct curl_slist *hdrs, reply *rp)
{
    memset(rp, 0, sizeof *rp);
    curl_easy_reset(c);
    setup_easy(c, method, path, rp);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    int64_t t0 = csl_mono_ns();
    rp->cc = curl_easy_perform(c);
    rp->seconds = (double)(csl_mono_ns() - t0) / 1e9;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rp->status);
}

static void req(const char *method, const char *path, const char *body, reply *rp)
{
    CURL *c = curl_easy_init();
    do_req(c, method, path, body, NULL, rp);
    curl_easy_cleanup(c);
}

static bool wait_until(atomic_int *v, int want, double seconds)
{
    int64_t end = csl_mono_ns() + (int64_t)(seconds * 1e9);
    while (atomic_load(v) < want && csl_mono_ns() < end) csl_sleep_ns(10000000);
    return atomic_load(v) >= want;
}

static bool wait_suspended(csl_httpd *s, size_t want, double seconds)
{
    int64_t end = csl_mono_ns() + (int64_t)(seconds * 1e9);
    while (csl_httpd_suspended(s) != want && csl_mono_ns() < end) csl_sleep_ns(10000000);
    return csl_httpd_suspended(s) == want;
}

/* The JSON error code in a reply body, or "" */
static bool error_code_is(const reply *rp, const char *code)
{
    cJSON *j = cJSON_Parse(csl_buf_str(&rp->body));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    bool ok = cJSON_IsString(c) && strcmp(c->valuestring, code) == 0 && cJSON_IsString(m) &&
              m->valuestring[0];
    cJSON_Delete(j);
    return ok;
}

/* ----------------------------------------------------------------- suite */

static int suite_init(void)
{
    log_file = tmpfile();
    if (!log_file) return 1;
    csl_log_setup("test_httpd", CSL_LOG_WARN, CSL_LOG_TEXT, fileno(log_file));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 1;
    csl_httpd_config cfg = {.listen = "127.0.0.1:0", .max_body = MAX_BODY, .threads = 2};
    srv = csl_httpd_new(&cfg);
    if (!srv) return 1;
    if (add_routes(srv) != 0) return 1;
    char err[256];
    if (csl_httpd_start(srv, err, sizeof err) != 0) {
        fprintf(stderr, "start: %s\n", err);
        return 1;
    }
    snprintf(base, sizeof base, "http://127.0.0.1:%d", csl_httpd_port(srv));
    return 0;
}

static void test_done_saw_valid_requests(void)
{
    CU_ASSERT(atomic_load(&done_count) > 500);
    CU_ASSERT_EQUAL(atomic_load(&done_bad), 0);
}

static int suite_cleanup(void)
{
    csl_httpd_free(srv);
    srv = NULL;
    curl_global_cleanup();
    csl_log_setup("test_httpd", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    fclose(log_file);
    return 0;
}

/* ----------------------------------------------------------------- tests */

static void test_port(void)
{
    CU_ASSERT(csl_httpd_port(srv) > 0);
    CU_ASSERT(csl_httpd_port(srv) < 65536);
}

static void test_routing(void)
{
    reply rp;
    req("GET", "/hello", NULL, &rp);
    CU_ASSERT_EQUAL(rp.cc, CURLE_OK);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&rp.body), "hello");
    CU_ASSERT_PTR_NOT_NULL(strcasestr(csl_buf_str(&rp.headers), "content-type: text/plain"));
    reply_free(&rp);

    /* params, decoded query, case-insensitive header, first route wins */
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "X-Test: yes");
    do_req(c, "GET", "/v1/instances/i-42?x=a%20b&y=2", NULL, h, &rp);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_PTR_NOT_NULL(strcasestr(csl_buf_str(&rp.headers), "content-type: application/json"));
    CU_ASSERT_PTR_NOT_NULL(strcasestr(csl_buf_str(&rp.headers), "x-served-by: test"));
    cJSON *j = cJSON_Parse(csl_buf_str(&rp.body));
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "id")->valuestring, "i-42");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "x")->valuestring, "a b");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "h")->valuestring, "yes");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(j, "route")->valuestring, "get");
    cJSON_Delete(j);
    reply_free(&rp);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    req("DELETE", "/v1/instances/i-42", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 204);
    reply_free(&rp);

    /* HEAD is served by the GET route, without a body */
    req("HEAD", "/hello", NULL, &rp);
    CU_ASSERT_EQUAL(rp.cc, CURLE_OK);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_EQUAL(rp.body.len, 0);
    reply_free(&rp);

    /* prefix route: the rest, slashes and all */
    req("GET", "/files/a/b/c.txt", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&rp.body), "a/b/c.txt");
    reply_free(&rp);
    req("GET", "/files", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&rp.body), "");
    reply_free(&rp);

    /* an empty segment is no parameter value */
    req("GET", "/v1/instances/", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 404);
    reply_free(&rp);
    req("GET", "/v1/instances/a/b", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 404);
    reply_free(&rp);

    /* method "*" matches anything */
    req("PATCH", "/error/x%22y", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 409);
    CU_ASSERT(error_code_is(&rp, "Conflict"));
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&rp.body), "thing \\\"x\\\"y\\\" exists"));
    reply_free(&rp);
}

static void test_query_each(void)
{
    reply rp;
    req("GET", "/query?a=1&b=&c&stop=now&after=x", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&rp.body), "a=1;b=;c=;stop=now;");
    reply_free(&rp);
}

static void test_not_found_and_method(void)
{
    reply rp;
    req("GET", "/nope", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 404);
    CU_ASSERT(error_code_is(&rp, "NotFound"));
    CU_ASSERT_PTR_NOT_NULL(strcasestr(csl_buf_str(&rp.headers), "content-type: application/json"));
    reply_free(&rp);

    req("PUT", "/v1/instances/x", "{}", &rp);
    CU_ASSERT_EQUAL(rp.status, 405);
    CU_ASSERT(error_code_is(&rp, "MethodNotAllowed"));
    CU_ASSERT_PTR_NOT_NULL(strcasestr(csl_buf_str(&rp.headers), "allow: GET, DELETE\r\n"));
    reply_free(&rp);
}

static void test_body_limit(void)
{
    char body[MAX_BODY + 2];
    memset(body, 'b', MAX_BODY);
    body[MAX_BODY] = '\0';
    reply rp;
    req("POST", "/echo", body, &rp);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_EQUAL(rp.body.len, MAX_BODY);
    reply_free(&rp);

    /* Content-Length says too much: answered before the body is read */
    body[MAX_BODY] = 'b';
    body[MAX_BODY + 1] = '\0';
    req("POST", "/echo", body, &rp);
    CU_ASSERT_EQUAL(rp.cc, CURLE_OK);
    CU_ASSERT_EQUAL(rp.status, 413);
    CU_ASSERT(error_code_is(&rp, "PayloadTooLarge"));
    CU_ASSERT_PTR_NOT_NULL(strcasestr(csl_buf_str(&rp.headers), "connection: close"));
    reply_free(&rp);

    /* streamed (chunked): found out while reading */
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    do_req(c, "POST", "/echo", body, h, &rp);
    CU_ASSERT_EQUAL(rp.cc, CURLE_OK);
    CU_ASSERT_EQUAL(rp.status, 413);
    CU_ASSERT(error_code_is(&rp, "PayloadTooLarge"));
    reply_free(&rp);
    /* a small chunked body is fine */
    do_req(c, "POST", "/echo", "tiny", h, &rp);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&rp.body), "tiny");
    reply_free(&rp);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void test_handler_mistakes(void)
{
    reply rp;
    req("GET", "/nothing", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 500);
    CU_ASSERT(error_code_is(&rp, "InternalError"));
    reply_free(&rp);

    req("GET", "/twice", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 201);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&rp.body), "first");
    reply_free(&rp);
    CU_ASSERT(logged("handler of route nothing (GET /nothing) sent no reply"));
    CU_ASSERT(logged("csl_http_respond called after the request already ended (GET /twice)"));
}

static void test_keepalive(void)
{
    CURL *c = curl_easy_init();
    reply rp;
    long conns = -1;
    do_req(c, "GET", "/hello", NULL, NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 200);
    reply_free(&rp);
    for (int i = 0; i < 3; i++) {
        do_req(c, "GET", i == 1 ? "/nope" : "/hello", NULL, NULL, &rp);
        CU_ASSERT_EQUAL(rp.status, i == 1 ? 404 : 200);
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
        CU_ASSERT_EQUAL(conns, 0); /* no new connection: reused */
        reply_free(&rp);
    }
    curl_easy_cleanup(c);
}

static void test_suspend_delay(void)
{
    int calls = atomic_load(&delay_calls);
    int freed = atomic_load(&data_freed);
    reply rp;
    req("GET", "/delay?ms=300", NULL, &rp);
    CU_ASSERT_EQUAL(rp.status, 200);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&rp.body), "resumed 1");
    CU_ASSERT(rp.seconds >= 0.29);
    CU_ASSERT(rp.seconds < 10.0);
    CU_ASSERT_EQUAL(atomic_load(&delay_calls), calls + 2);
    reply_free(&rp);
    CU_ASSERT(wait_until(&data_freed, freed + 1, 5.0));
    CU_ASSERT_EQUAL(csl_httpd_suspended(srv), 0);
}

/* Many waiting requests at once, no thread each: they all finish in about
 * one delay, not one after another. */
static void test_many_suspended(void)
{
    enum { N = 500 };
    static reply rps[N];
    CURLM *m = curl_multi_init();
    CURL *easy[N];
    for (int i = 0; i < N; i++) {
        memset(&rps[i], 0, sizeof rps[i]);
        easy[i] = curl_easy_init();
        setup_easy(easy[i], "GET", "/delay?ms=1000", &rps[i]);
        curl_easy_setopt(easy[i], CURLOPT_PRIVATE, &rps[i]);
        curl_multi_add_handle(m, easy[i]);
    }
    int64_t t0 = csl_mono_ns();
    size_t peak = 0;
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        size_t n = csl_httpd_suspended(srv);
        if (n > peak) peak = n;
        if (running) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    double secs = (double)(csl_mono_ns() - t0) / 1e9;
    CURLMsg *msg;
    int left, ok = 0;
    while ((msg = curl_multi_info_read(m, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        reply *rp;
        long st = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&rp);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &st);
        if (msg->data.result == CURLE_OK && st == 200 &&
            strcmp(csl_buf_str(&rp->body), "resumed 1") == 0)
            ok++;
    }
    for (int i = 0; i < N; i++) {
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
        reply_free(&rps[i]);
    }
    curl_multi_cleanup(m);
    CU_ASSERT_EQUAL(ok, N);
    CU_ASSERT(peak > N / 2); /* they really waited side by side */
    CU_ASSERT(secs >= 0.99);
    CU_ASSERT(secs < 15.0); /* serially it would take 500 s */
    CU_ASSERT_EQUAL(csl_httpd_suspended(srv), 0);
    printf("\n    %d concurrent 1 s delays: %.2f s, peak suspended %zu ", N, secs, peak);
}

static void test_hang_client_gives_up(void)
{
    int hangs = atomic_load(&done_hang);
    int zeros = atomic_load(&done_zero);
    CURL *c = curl_easy_init();
    reply rp;
    memset(&rp, 0, sizeof rp);
    setup_easy(c, "GET", "/hang", &rp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 500L);
    rp.cc = curl_easy_perform(c);
    CU_ASSERT_EQUAL(rp.cc, CURLE_OPERATION_TIMEDOUT);
    curl_easy_cleanup(c); /* closes the socket */
    reply_free(&rp);
    /* the server notices within about a second, closes, reports status 0 */
    CU_ASSERT(wait_until(&done_hang, hangs + 1, 6.0));
    CU_ASSERT(atomic_load(&done_zero) >= zeros + 1);
    CU_ASSERT(wait_suspended(srv, 0, 2.0));
}

static void test_reset_and_close(void)
{
    int zeros = atomic_load(&done_zero);
    reply rp;
    req("GET", "/reset", NULL, &rp);
    CU_ASSERT(rp.cc == CURLE_RECV_ERROR || rp.cc == CURLE_SEND_ERROR);
    if (rp.cc != CURLE_RECV_ERROR && rp.cc != CURLE_SEND_ERROR)
        fprintf(stderr, "reset seen as %d (%s)\n", rp.cc, curl_easy_strerror(rp.cc));
    reply_free(&rp);

    req("GET", "/close", NULL, &rp);
    CU_ASSERT_EQUAL(rp.cc, CURLE_GOT_NOTHING);
    reply_free(&rp);
    CU_ASSERT(wait_until(&done_zero, zeros + 2, 5.0));
}

static void test_done_counts(void)
{
    int before = atomic_load(&done_count);
    reply rp;
    for (int i = 0; i < 5; i++) {
        req("GET", i % 2 ? "/nope" : "/hello", NULL, &rp);
        reply_free(&rp);
    }
    CU_ASSERT(wait_until(&done_count, before + 5, 5.0));
    csl_sleep_ns(50000000);
    CU_ASSERT_EQUAL(atomic_load(&done_count), before + 5);
}

/* ------------------------------------------------- separate servers */

static atomic_int stop_done, stop_zero, stop_delay_calls;

static void stop_on_done(csl_http_req *r, void *ctx)
{
    atomic_fetch_add(&stop_done, 1);
    if (csl_http_status(r) == 0) atomic_fetch_add(&stop_zero, 1);
}

static void stop_delay(csl_http_req *r, void *d)
{
    atomic_fetch_add(&stop_delay_calls, 1);
    csl_http_set_data(r, malloc(32), free_counted);
    if (csl_http_resumes(r) == 0)
        csl_http_suspend(r, 30LL * 1000000000);
    else
        csl_http_respond(r, 200, "text/plain", "late", 4);
}

static void test_stop_with_suspended(void)
{
    enum { N = 20 };
    csl_httpd_config cfg = {.listen = "127.0.0.1:0", .threads = 2};
    csl_httpd *s = csl_httpd_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(csl_httpd_route(s, "GET", "/delay", "delay", stop_delay, NULL), 0);
    CU_ASSERT_EQUAL(csl_httpd_route(s, "GET", "/hang", "hang", h_hang, NULL), 0);
    csl_httpd_on_done(s, stop_on_done, NULL);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(csl_httpd_start(s, err, sizeof err), 0);
    int port = csl_httpd_port(s);
    atomic_store(&stop_done, 0);
    atomic_store(&stop_zero, 0);
    atomic_store(&stop_delay_calls, 0);
    int freed = atomic_load(&data_freed);

    CURLM *m = curl_multi_init();
    CURL *easy[2 * N];
    static reply rps[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", port, i < N ? "delay" : "hang");
        memset(&rps[i], 0, sizeof rps[i]);
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &rps[i].body);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 20000L);
        curl_multi_add_handle(m, easy[i]);
    }
    int running = 1;
    int64_t end = csl_mono_ns() + 10LL * 1000000000;
    while (csl_httpd_suspended(s) < 2 * N && csl_mono_ns() < end) {
        curl_multi_perform(m, &running);
        curl_multi_poll(m, NULL, 0, 20, NULL);
    }
    CU_ASSERT_EQUAL(csl_httpd_suspended(s), 2 * N);
    CU_ASSERT_EQUAL(atomic_load(&stop_done), 0);

    int64_t t0 = csl_mono_ns();
    csl_httpd_stop(s);
    CU_ASSERT((csl_mono_ns() - t0) < 10LL * 1000000000);
    CU_ASSERT_EQUAL(csl_httpd_suspended(s), 0);
    CU_ASSERT_EQUAL(csl_httpd_port(s), 0);
    /* every request ended exactly once, none with a reply, and the delayed
     * handlers were not called again */
    CU_ASSERT_EQUAL(atomic_load(&stop_done), 2 * N);
    CU_ASSERT_EQUAL(atomic_load(&stop_zero), 2 * N);
    CU_ASSERT_EQUAL(atomic_load(&stop_delay_calls), N);
    CU_ASSERT_EQUAL(atomic_load(&data_freed), freed + N);
    csl_httpd_stop(s); /* idempotent */

    /* the clients see the connection go, none gets a reply */
    running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    CURLMsg *msg;
    int left, failed = 0;
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK) failed++;
    CU_ASSERT_EQUAL(failed, 2 * N);
    for (int i = 0; i < 2 * N; i++) {
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
        reply_free(&rps[i]);
    }
    curl_multi_cleanup(m);

    /* and it can serve again */
    CU_ASSERT_EQUAL(csl_httpd_start(s, err, sizeof err), 0);
    CU_ASSERT(csl_httpd_port(s) > 0);
    csl_httpd_free(s);
}

/* MHD's idle timeout must not touch a parked connection: a hang or a delay
 * longer than idle_timeout_s still ends the way the handler chose. */
static void test_suspended_outlive_idle_timeout(void)
{
    csl_httpd_config cfg = {.listen = "127.0.0.1:0", .idle_timeout_s = 1};
    csl_httpd *s = csl_httpd_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(csl_httpd_route(s, "GET", "/delay", "delay", h_delay, NULL), 0);
    CU_ASSERT_EQUAL(csl_httpd_route(s, "GET", "/hang", "hang", h_hang, NULL), 0);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(csl_httpd_start(s, err, sizeof err), 0);
    char url[2][128];
    snprintf(url[0], sizeof url[0], "http://127.0.0.1:%d/delay?ms=2200", csl_httpd_port(s));
    snprintf(url[1], sizeof url[1], "http://127.0.0.1:%d/hang", csl_httpd_port(s));
    CURLM *m = curl_multi_init();
    CURL *easy[2];
    csl_buf body[2] = {CSL_BUF_INIT, CSL_BUF_INIT};
    for (int i = 0; i < 2; i++) {
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url[i]);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &body[i]);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 3000L);
        curl_multi_add_handle(m, easy[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 50, NULL);
    }
    CURLMsg *msg;
    int left;
    CURLcode cc[2] = {CURLE_OK, CURLE_OK};
    while ((msg = curl_multi_info_read(m, &left)))
        if (msg->msg == CURLMSG_DONE) cc[msg->easy_handle == easy[0] ? 0 : 1] = msg->data.result;
    CU_ASSERT_EQUAL(cc[0], CURLE_OK);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&body[0]), "resumed 1");
    CU_ASSERT_EQUAL(cc[1], CURLE_OPERATION_TIMEDOUT); /* the client gave up, not the server */
    for (int i = 0; i < 2; i++) {
        curl_multi_remove_handle(m, easy[i]);
        curl_easy_cleanup(easy[i]);
        csl_buf_free(&body[i]);
    }
    curl_multi_cleanup(m);
    csl_httpd_free(s);
}

static void test_ipv6(void)
{
    csl_httpd_config cfg = {.listen = "[::1]:0", .threads = 1};
    csl_httpd *s = csl_httpd_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(csl_httpd_route(s, "GET", "/hello", "hello", h_hello, NULL), 0);
    char err[256];
    if (csl_httpd_start(s, err, sizeof err) != 0) {
        /* a machine without IPv6 loopback: say so rather than fail */
        printf("\n    skipped: %s ", err);
        csl_httpd_free(s);
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "http://[::1]:%d/hello", csl_httpd_port(s));
    CURL *c = curl_easy_init();
    csl_buf body = CSL_BUF_INIT;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    CU_ASSERT_EQUAL(curl_easy_perform(c), CURLE_OK);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&body), "hello");
    curl_easy_cleanup(c);
    csl_buf_free(&body);
    csl_httpd_free(s);
}

static void test_bad_listen(void)
{
    const char *bad[] = {"nonsense", "127.0.0.1:99999", "127.0.0.1:", "::1:80", "[::1]80", NULL};
    for (int i = 0; bad[i]; i++) {
        csl_httpd_config cfg = {.listen = bad[i]};
        csl_httpd *s = csl_httpd_new(&cfg);
        CU_ASSERT_PTR_NOT_NULL_FATAL(s);
        char err[256] = "";
        CU_ASSERT_EQUAL(csl_httpd_start(s, err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i]));
        CU_ASSERT_EQUAL(csl_httpd_port(s), 0);
        csl_httpd_free(s);
    }
    /* a port in use */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", csl_httpd_port(srv));
    csl_httpd_config cfg = {.listen = addr};
    csl_httpd *s = csl_httpd_new(&cfg);
    char err[256] = "";
    CU_ASSERT_EQUAL(csl_httpd_start(s, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use"));
    csl_httpd_free(s);
}

static void test_bad_routes(void)
{
    csl_httpd *s = csl_httpd_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    const char *bad[] = {"no-slash", "/a/{}/b", "/a/*/b", "/a{b}", "/a/{b c}", "/x*", NULL};
    for (int i = 0; bad[i]; i++)
        CU_ASSERT_EQUAL(csl_httpd_route(s, "GET", bad[i], "bad", h_hello, NULL), -1);
    CU_ASSERT_EQUAL(csl_httpd_route(s, "GE T", "/ok", "bad", h_hello, NULL), -1);
    CU_ASSERT(logged("cannot add route GET no-slash: must start with '/'"));
    CU_ASSERT(logged("cannot add route GET /a/*/b: '*' may only be the last segment"));
    CU_ASSERT_EQUAL(csl_httpd_route(s, "GET", "/", "root", h_hello, NULL), 0);
    CU_ASSERT_EQUAL(csl_httpd_route(s, NULL, "/*", "all", h_hello, NULL), 0);
    CU_ASSERT_EQUAL(
        csl_httpd_route(s, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", "8", h_hello, NULL), 0);
    CU_ASSERT_EQUAL(
        csl_httpd_route(s, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", "9", h_hello, NULL), -1);
    CU_ASSERT_EQUAL(csl_httpd_port(s), 0);
    csl_httpd_free(s);
}

static CU_TestInfo tests[] = {
    {"port", test_port},
    {"routing, params, prefix, query, headers", test_routing},
    {"query_each", test_query_each},
    {"404 and 405 with Allow", test_not_found_and_method},
    {"413 by Content-Length and streamed", test_body_limit},
    {"handler without reply, twice", test_handler_mistakes},
    {"keep-alive reuse", test_keepalive},
    {"suspended request returns after delay", test_suspend_delay},
    {"500 concurrent suspended requests", test_many_suspended},
    {"hang: client gives up, server closes", test_hang_client_gives_up},
    {"reset and close", test_reset_and_close},
    {"on_done once per request", test_done_counts},
    {"stop with suspended requests", test_stop_with_suspended},
    {"suspended requests outlive the idle timeout", test_suspended_outlive_idle_timeout},
    {"IPv6 loopback", test_ipv6},
    {"bad listen addresses", test_bad_listen},
    {"bad route patterns", test_bad_routes},
    {"on_done saw readable requests", test_done_saw_valid_requests},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"httpd", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
