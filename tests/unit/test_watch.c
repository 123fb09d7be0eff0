/* test_watch.c — the watch-stream parser (every split, join, CRLF, garbage,
 * truncation, size cap), back-off arithmetic, and the reflector against a
 * loopback lib/httpd server that plays a scripted API server: lists (paged),
 * then watch streams that end cleanly, break mid-event, carry a 410 ERROR
 * event, answer 410/500, reset, end at once, or hang until the stall timer
 * fires. */
#include "../testutil.h"

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/httpd.h"
#include "csl/kube.h"
#include "csl/log.h"
#include "csl/rng.h"
#include "csl/watch.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ parser helpers */

typedef struct seen {
    csl_buf log; /* "TYPE name rv;" per event */
    size_t n;
    size_t stop_after; /* 0: never ask to stop */
} seen;

static bool record_event(csl_watch_type t, cJSON *obj, void *ctx)
{
    seen *s = ctx;
    const char *name = csl_kube_obj_name(obj);
    const char *rv = csl_kube_obj_rv(obj);
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
    csl_buf_printf(&s->log, "%s %s %s", csl_watch_type_name(t), name ? name : "-", rv ? rv : "-");
    if (cJSON_IsNumber(code)) csl_buf_printf(&s->log, " code=%d", code->valueint);
    /* Tricky string content must survive intact. */
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(data, "x");
    if (cJSON_IsString(x)) csl_buf_printf(&s->log, " x=%s", x->valuestring);
    csl_buf_putc(&s->log, ';');
    cJSON_Delete(obj);
    s->n++;
    return !(s->stop_after && s->n >= s->stop_after);
}

/* Three events whose strings hold braces, brackets, escaped quotes and
 * backslashes, so a split anywhere lands in every lexical state. */
static const char THREE[] =
    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"1\"},"
    "\"data\":{\"x\":\"{[}]\\\"\\\\\"}}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"2\"},"
    "\"data\":{\"x\":\"\\u007b\"},\"list\":[1,[2,{\"y\":[]}],-3.5e2,true,null]}}\n"
    "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\",\"resourceVersion\":\"3\"}}}"
    "\n";
static const char THREE_LOG[] = "ADDED a 1 x={[}]\"\\;MODIFIED b 2 x={;DELETED c 3;";

static void check_three(seen *s, const char *what, size_t at)
{
    if (strcmp(csl_buf_str(&s->log), THREE_LOG) != 0) {
        fprintf(stderr, "\n%s at %zu: got %s\n", what, at, csl_buf_str(&s->log));
        CU_FAIL("events differ");
    }
}

/* ------------------------------------------------------------------ parser */

static void test_parse_one_chunk(void)
{
    csl_watch_parser *p = csl_watch_parser_new(0);
    seen s = {CSL_BUF_INIT, 0, 0};
    char err[256];
    CU_ASSERT_EQUAL(
        csl_watch_parser_feed(p, THREE, strlen(THREE), record_event, &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(csl_watch_parser_finish(p, err, sizeof err), 0);
    CU_ASSERT_EQUAL(csl_watch_parser_events(p), 3);
    check_three(&s, "one chunk", 0);
    csl_buf_free(&s.log);
    csl_watch_parser_free(p);
}

static void test_parse_every_split(void)
{
    /* Two chunks split at every position, and three chunks split at every
     * pair of positions: the events come out the same. */
    size_t n = strlen(THREE);
    csl_watch_parser *p = csl_watch_parser_new(0);
    char err[256];
    for (size_t i = 0; i <= n; i++) {
        csl_watch_parser_reset(p);
        seen s = {CSL_BUF_INIT, 0, 0};
        CU_ASSERT_EQUAL(csl_watch_parser_feed(p, THREE, i, record_event, &s, err, sizeof err), 0);
        CU_ASSERT_EQUAL(
            csl_watch_parser_feed(p, THREE + i, n - i, record_event, &s, err, sizeof err), 0);
        CU_ASSERT_EQUAL(csl_watch_parser_finish(p, err, sizeof err), 0);
        check_three(&s, "split", i);
        csl_buf_free(&s.log);
    }
    size_t bad = 0;
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            csl_watch_parser_reset(p);
            seen s = {CSL_BUF_INIT, 0, 0};
            int a = csl_watch_parser_feed(p, THREE, i, record_event, &s, err, sizeof err);
            int b = csl_watch_parser_feed(p, THREE + i, j - i, record_event, &s, err, sizeof err);
            int c = csl_watch_parser_feed(p, THREE + j, n - j, record_event, &s, err, sizeof err);
            int d = csl_watch_parser_finish(p, err, sizeof err);
            if (a || b || c || d || strcmp(csl_buf_str(&s.log), THREE_LOG) != 0) bad++;
            csl_buf_free(&s.log);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    csl_watch_parser_free(p);
}

static void test_parse_byte_by_byte(void)
{
    csl_watch_parser *p = csl_watch_parser_new(0);
    seen s = {CSL_BUF_INIT, 0, 0};
    char err[256];
    for (size_t i = 0; THREE[i]; i++)
        CU_ASSERT_EQUAL(csl_watch_parser_feed(p, THREE + i, 1, record_event, &s, err, sizeof err),
                        0);
    CU_ASSERT_EQUAL(csl_watch_parser_finish(p, err, sizeof err), 0);
    check_three(&s, "byte by byte", 0);
    csl_buf_free(&s.log);
    csl_watch_parser_free(p);
}

static void test_parse_separators(void)
{
    /* CRLF, blank lines, tabs, leading whitespace, and none at all. */
    const char *streams[] = {
        "\r\n\r\n{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\r\n\r\n"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\r\n",
        "  \t{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}"
        "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}",
        "{ \"type\" : \"ADDED\" ,\n \"object\" : { \"metadata\" : { \"name\" : \"a\" } } }\n\n\n"
        "{\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}},\"type\":\"BOOKMARK\"}\n\n",
    };
    for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++) {
        csl_watch_parser *p = csl_watch_parser_new(0);
        seen s = {CSL_BUF_INIT, 0, 0};
        char err[256] = "";
        CU_ASSERT_EQUAL(csl_watch_parser_feed(p, streams[i], strlen(streams[i]), record_event, &s,
                                              err, sizeof err),
                        0);
        CU_ASSERT_EQUAL(csl_watch_parser_finish(p, err, sizeof err), 0);
        CU_ASSERT_STRING_EQUAL(csl_buf_str(&s.log), "ADDED a -;BOOKMARK - 9;");
        csl_buf_free(&s.log);
        csl_watch_parser_free(p);
    }
}

static void test_parse_error_event(void)
{
    const char *st = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\","
                     "\"status\":\"Failure\",\"message\":\"too old resource version: 5 (9)\","
                     "\"reason\":\"Expired\",\"code\":410}}\n";
    csl_watch_parser *p = csl_watch_parser_new(0);
    seen s = {CSL_BUF_INIT, 0, 0};
    char err[256];
    CU_ASSERT_EQUAL(csl_watch_parser_feed(p, st, strlen(st), record_event, &s, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&s.log), "ERROR - - code=410;");
    csl_buf_free(&s.log);
    csl_watch_parser_free(p);
}

/* Feeds text; expects -1 and an error mentioning want. */
static void expect_broken(const char *text, size_t max_event, const char *want)
{
    csl_watch_parser *p = csl_watch_parser_new(max_event);
    seen s = {CSL_BUF_INIT, 0, 0};
    char err[256] = "";
    int rc = csl_watch_parser_feed(p, text, strlen(text), record_event, &s, err, sizeof err);
    if (rc == 0) rc = csl_watch_parser_finish(p, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    if (!strstr(err, want)) {
        fprintf(stderr, "\nfor %.60s: error \"%s\" lacks \"%s\"\n", text, err, want);
        CU_FAIL("error message");
    }
    /* A broken stream stays broken, even for good bytes, until reset. */
    char err2[256] = "";
    const char *good = "{\"type\":\"ADDED\",\"object\":{}}";
    CU_ASSERT_EQUAL(
        csl_watch_parser_feed(p, good, strlen(good), record_event, &s, err2, sizeof err2), -1);
    CU_ASSERT_STRING_EQUAL(err2, err);
    CU_ASSERT_EQUAL(csl_watch_parser_finish(p, err2, sizeof err2), -1);
    csl_watch_parser_reset(p);
    size_t before = s.n;
    CU_ASSERT_EQUAL(
        csl_watch_parser_feed(p, good, strlen(good), record_event, &s, err2, sizeof err2), 0);
    CU_ASSERT_EQUAL(s.n, before + 1);
    csl_buf_free(&s.log);
    csl_watch_parser_free(p);
}

static void test_parse_garbage(void)
{
    expect_broken("hello\n", 0, "byte 0: expected an event ('{'), found 'h'");
    expect_broken("{\"type\":\"ADDED\",\"object\":{}}\n<html>", 0, "found '<' after 1 events");
    expect_broken("[{\"type\":\"ADDED\"}]", 0, "found '['");
    expect_broken("\x01", 0, "byte 0x01");
    expect_broken("{\"type\":\"ADDED\",\"object\":{\"a\":tru}}", 0,
                  "event 1 at byte 0: not valid JSON");
    expect_broken("{\"type\":\"ADDED\",\"object\":{}}{\"object\":{}}", 0,
                  "event 2 at byte 28: no \"type\" string");
    expect_broken("{\"type\":\"CHANGED\",\"object\":{}}", 0, "unknown type \"CHANGED\"");
    expect_broken("{\"type\":\"ADDED\",\"object\":[]}", 0, "no \"object\" object");
    expect_broken("{\"type\":\"ADDED\"}", 0, "no \"object\" object");
    expect_broken("{]", 0, "not valid JSON");
}

static void test_parse_truncated(void)
{
    expect_broken("{\"type\":\"ADDED\",\"object\":{\"metadata\":", 0,
                  "stream ended inside event 1 (at byte 0, after 37 bytes of it)");
    expect_broken("{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"ADDED\",\"object\":{\"x\":\"}",
                  0, "inside event 2 (at byte 29");
}

static void test_parse_oversize(void)
{
    const char *ev = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"abcdef\"}}}";
    size_t n = strlen(ev);
    /* exactly at the cap: fine */
    csl_watch_parser *p = csl_watch_parser_new(n);
    seen s = {CSL_BUF_INIT, 0, 0};
    char err[256] = "";
    CU_ASSERT_EQUAL(csl_watch_parser_feed(p, ev, n, record_event, &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(s.n, 1);
    /* one byte over, split across chunks: refused as soon as it is known */
    csl_watch_parser_free(p);
    p = csl_watch_parser_new(n - 1);
    CU_ASSERT_EQUAL(csl_watch_parser_feed(p, ev, 10, record_event, &s, err, sizeof err), 0);
    CU_ASSERT_EQUAL(csl_watch_parser_feed(p, ev + 10, n - 10, record_event, &s, err, sizeof err),
                    -1);
    char want[64];
    snprintf(want, sizeof want, "larger than the %zu-byte limit", n - 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    CU_ASSERT_EQUAL(s.n, 1);
    csl_watch_parser_free(p);
    /* an endless event (never closed) stops at the cap, not at memory's end */
    p = csl_watch_parser_new(4096);
    char chunk[1024];
    memset(chunk, 'x', sizeof chunk);
    chunk[0] = '{';
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = csl_watch_parser_feed(p, chunk, sizeof chunk, record_event, &s, err, sizeof err);
    CU_ASSERT_EQUAL(rc, -1);
    csl_watch_parser_free(p);
    expect_broken(ev, n - 1, "larger than");
    csl_buf_free(&s.log);
}

static void test_parse_stop(void)
{
    csl_watch_parser *p = csl_watch_parser_new(0);
    seen s = {CSL_BUF_INIT, 0, 1};
    char err[256];
    CU_ASSERT_EQUAL(
        csl_watch_parser_feed(p, THREE, strlen(THREE), record_event, &s, err, sizeof err), 1);
    CU_ASSERT_EQUAL(s.n, 1);
    csl_buf_free(&s.log);
    csl_watch_parser_free(p);
}

static bool count_event(csl_watch_type t, cJSON *obj, void *ctx)
{
    (*(size_t *)ctx)++;
    cJSON_Delete(obj);
    return true;
}

static void test_parse_random(void)
{
    /* Random bytes, and random mutations of a good stream, fed in random
     * chunks: never a crash, and a verdict every time. */
    csl_rng r;
    csl_rng_seed(&r, 42);
    csl_watch_parser *p = csl_watch_parser_new(512);
    size_t n = strlen(THREE);
    char buf[sizeof THREE];
    char err[256];
    static const char alphabet[] = "{}[]\":,\\ \r\nabtype0ADDED";
    for (int round = 0; round < 3000; round++) {
        memcpy(buf, THREE, n);
        int muts = 1 + (int)csl_rng_below(&r, 4);
        for (int m = 0; m < muts; m++)
            buf[csl_rng_below(&r, n)] = round % 2
                                            ? (char)csl_rng_below(&r, 256)
                                            : alphabet[csl_rng_below(&r, sizeof alphabet - 1)];
        csl_watch_parser_reset(p);
        size_t events = 0, off = 0;
        int rc = 0;
        while (off < n && rc == 0) {
            size_t len = 1 + csl_rng_below(&r, 40);
            if (len > n - off) len = n - off;
            rc = csl_watch_parser_feed(p, buf + off, len, count_event, &events, err, sizeof err);
            off += len;
        }
        if (rc == 0) rc = csl_watch_parser_finish(p, err, sizeof err);
        CU_ASSERT(rc == 0 || rc == -1);
        CU_ASSERT(events <= 3);
    }
    csl_watch_parser_free(p);
}

/* ------------------------------------------------------------------ back-off */

static void test_backoff_sequence(void)
{
    csl_backoff b;
    csl_backoff_init(&b);
    CU_ASSERT_DOUBLE_EQUAL(b.initial_s, 0.8, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(b.max_s, 30.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(b.reset_after_s, 120.0, 1e-9);
    b.jitter = 0;
    csl_rng r;
    csl_rng_seed(&r, 1);
    const double want[] = {0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30, 30, 30};
    int64_t now = 1000000000;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        double d = csl_backoff_next(&b, now, &r);
        CU_ASSERT_DOUBLE_EQUAL(d, want[i], 1e-9);
        now += (int64_t)(d * 1e9) + 1000000; /* fail again 1 ms after each retry starts */
    }
    csl_backoff_reset(&b);
    CU_ASSERT_DOUBLE_EQUAL(csl_backoff_next(&b, now, &r), 0.8, 1e-9);
}

static void test_backoff_jitter(void)
{
    csl_backoff b;
    csl_backoff_init(&b);
    csl_rng r;
    csl_rng_seed(&r, 7);
    /* Each delay lies within ±25 % of its base, and the draws spread over
     * both halves of that band. */
    int below = 0, above = 0;
    for (int round = 0; round < 200; round++) {
        csl_backoff_reset(&b);
        double base = 0.8;
        int64_t now = 1;
        for (int i = 0; i < 8; i++) {
            double d = csl_backoff_next(&b, now, &r);
            CU_ASSERT(d >= base * 0.75 - 1e-9 && d <= base * 1.25 + 1e-9);
            if (d < base) below++;
            if (d > base) above++;
            now += (int64_t)(d * 1e9);
            base = base * 2 > 30 ? 30 : base * 2;
        }
    }
    CU_ASSERT(below > 600 && above > 600);
    /* Same seed, same delays. */
    csl_backoff b1, b2;
    csl_backoff_init(&b1);
    csl_backoff_init(&b2);
    csl_rng r1, r2;
    csl_rng_seed(&r1, 99);
    csl_rng_seed(&r2, 99);
    for (int i = 0; i < 10; i++)
        CU_ASSERT_DOUBLE_EQUAL(csl_backoff_next(&b1, 5, &r1), csl_backoff_next(&b2, 5, &r2), 0);
}

static void test_backoff_reset_after_quiet(void)
{
    csl_backoff b;
    csl_backoff_init(&b);
    b.jitter = 0;
    csl_rng r;
    csl_rng_seed(&r, 3);
    int64_t s = 1000000000;
    int64_t now = 10 * s;
    CU_ASSERT_DOUBLE_EQUAL(csl_backoff_next(&b, now, &r), 0.8, 1e-9);
    now += (int64_t)(0.8 * s);
    CU_ASSERT_DOUBLE_EQUAL(csl_backoff_next(&b, now + 119 * s, &r), 1.6, 1e-9);
    now += 119 * s + (int64_t)(1.6 * s);
    /* healthy for 120 s after the last retry began: back to the start */
    CU_ASSERT_DOUBLE_EQUAL(csl_backoff_next(&b, now + 120 * s, &r), 0.8, 1e-9);
    now += 120 * s + (int64_t)(0.8 * s);
    CU_ASSERT_DOUBLE_EQUAL(csl_backoff_next(&b, now + 5 * s, &r), 1.6, 1e-9);
    /* a custom sequence: 10 ms ×3 up to 50 ms */
    csl_backoff c = {0.01, 0.05, 3, 0, 1, 0.01, 0};
    const double want[] = {0.01, 0.03, 0.05, 0.05};
    for (size_t i = 0; i < 4; i++)
        CU_ASSERT_DOUBLE_EQUAL(csl_backoff_next(&c, 1, &r), want[i], 1e-9);
}

/* ------------------------------------------------------------------ fake API server */

typedef enum { ACT_RESPOND, ACT_RESET, ACT_HANG } act;

typedef struct step {
    act action;
    int status;
    const char *body;
} step;

typedef struct list_page_set {
    const char *rv;
    int nitems;
    int first; /* item names cm-<first>…; */
} list_def;

#define MAX_REQ 64

typedef struct fake {
    pthread_mutex_t mu;
    csl_httpd *srv;
    int port;
    const step *watches;
    size_t nwatches;
    const list_def *lists;
    size_t nlists;
    /* what the client asked */
    int nwatch, nlist_pages, nlist;
    char watch_rv[MAX_REQ][32];
    int watch_timeout[MAX_REQ];
    bool watch_bookmarks[MAX_REQ];
    char label_sel[128], field_sel[128];
    long list_limit;
} fake;

static void fake_list(fake *f, csl_http_req *r)
{
    const char *cont = csl_http_query(r, "continue");
    const char *lim = csl_http_query(r, "limit");
    long limit = lim ? atol(lim) : 0;
    int offset = cont ? atoi(cont) : 0;
    pthread_mutex_lock(&f->mu);
    if (!cont) f->nlist++;
    f->nlist_pages++;
    f->list_limit = limit;
    const char *ls = csl_http_query(r, "labelSelector");
    snprintf(f->label_sel, sizeof f->label_sel, "%s", ls ? ls : "");
    size_t li = (size_t)(f->nlist ? f->nlist - 1 : 0);
    const list_def *d = &f->lists[li < f->nlists ? li : f->nlists - 1];
    pthread_mutex_unlock(&f->mu);
    int end = d->nitems;
    if (limit > 0 && offset + limit < end) end = offset + (int)limit;
    csl_buf b = CSL_BUF_INIT;
    csl_buf_printf(&b,
                   "{\"kind\":\"ConfigMapList\",\"apiVersion\":\"v1\",\"metadata\":{"
                   "\"resourceVersion\":\"%s\"",
                   d->rv);
    if (end < d->nitems) csl_buf_printf(&b, ",\"continue\":\"%d\"", end);
    csl_buf_puts(&b, "},\"items\":[");
    for (int i = offset; i < end; i++)
        csl_buf_printf(&b,
                       "%s{\"metadata\":{\"name\":\"cm-%d\",\"namespace\":\"t\","
                       "\"resourceVersion\":\"%d\"}}",
                       i > offset ? "," : "", d->first + i, 5 + i);
    csl_buf_puts(&b, "]}");
    csl_http_respond(r, 200, "application/json", b.data, b.len);
    csl_buf_free(&b);
}

static void fake_handler(csl_http_req *r, void *data)
{
    fake *f = data;
    const char *w = csl_http_query(r, "watch");
    if (!w || strcmp(w, "1") != 0) {
        fake_list(f, r);
        return;
    }
    if (csl_http_resumes(r) > 0) { /* a hung watch resumed by stop */
        csl_http_close(r);
        return;
    }
    pthread_mutex_lock(&f->mu);
    int i = f->nwatch++;
    if (i < MAX_REQ) {
        const char *rv = csl_http_query(r, "resourceVersion");
        const char *to = csl_http_query(r, "timeoutSeconds");
        const char *bm = csl_http_query(r, "allowWatchBookmarks");
        const char *fs = csl_http_query(r, "fieldSelector");
        const char *ls = csl_http_query(r, "labelSelector");
        snprintf(f->watch_rv[i], sizeof f->watch_rv[i], "%s", rv ? rv : "(none)");
        f->watch_timeout[i] = to ? atoi(to) : -1;
        f->watch_bookmarks[i] = bm && strcmp(bm, "true") == 0;
        snprintf(f->field_sel, sizeof f->field_sel, "%s", fs ? fs : "");
        snprintf(f->label_sel, sizeof f->label_sel, "%s", ls ? ls : "");
    }
    step s = {ACT_HANG, 0, NULL};
    if ((size_t)i < f->nwatches) s = f->watches[i];
    pthread_mutex_unlock(&f->mu);
    switch (s.action) {
    case ACT_RESPOND:
        csl_http_respond(r, s.status, "application/json", s.body, strlen(s.body));
        break;
    case ACT_RESET:
        csl_http_reset(r);
        break;
    case ACT_HANG:
        csl_http_suspend(r, -1);
        break;
    }
}

static csl_kube *fake_start(fake *f)
{
    pthread_mutex_init(&f->mu, NULL);
    csl_httpd_config cfg = {0};
    cfg.listen = "127.0.0.1:0";
    cfg.threads = 2;
    f->srv = csl_httpd_new(&cfg);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->srv);
    csl_httpd_route(f->srv, "GET", "/api/v1/namespaces/{ns}/configmaps", "cm", fake_handler, f);
    csl_httpd_route(f->srv, "GET", "/api/v1/configmaps", "cm-all", fake_handler, f);
    char err[256];
    CU_ASSERT_EQUAL_FATAL(csl_httpd_start(f->srv, err, sizeof err), 0);
    f->port = csl_httpd_port(f->srv);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
    csl_kube_config kc = {0};
    kc.server = url;
    csl_kube *k = csl_kube_new(&kc, NULL, err, sizeof err);
    if (!k) fprintf(stderr, "csl_kube_new: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    return k;
}

static void fake_stop(fake *f, csl_kube *k)
{
    csl_httpd_free(f->srv);
    csl_kube_free(k);
    pthread_mutex_destroy(&f->mu);
}

/* What the reflector handed over. */
typedef struct consumer {
    pthread_mutex_t mu;
    csl_buf log;
    int replaces;
    int events;
} consumer;

static void c_replace(cJSON *items, const char *rv, void *ctx)
{
    consumer *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->replaces++;
    csl_buf_printf(&c->log, "REPLACE rv=%s n=%d", rv, cJSON_GetArraySize(items));
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(it, "kind");
        const cJSON *api = cJSON_GetObjectItemCaseSensitive(it, "apiVersion");
        csl_buf_printf(&c->log, " %s/%s/%s", cJSON_IsString(api) ? api->valuestring : "?",
                       cJSON_IsString(kind) ? kind->valuestring : "?", csl_kube_obj_name(it));
    }
    csl_buf_puts(&c->log, ";");
    pthread_mutex_unlock(&c->mu);
    cJSON_Delete(items);
}

static void c_event(csl_watch_type t, cJSON *obj, void *ctx)
{
    consumer *c = ctx;
    pthread_mutex_lock(&c->mu);
    c->events++;
    csl_buf_printf(&c->log, "%s %s %s;", csl_watch_type_name(t), csl_kube_obj_name(obj),
                   csl_kube_obj_rv(obj));
    pthread_mutex_unlock(&c->mu);
    cJSON_Delete(obj);
}

static int fake_watches(fake *f)
{
    pthread_mutex_lock(&f->mu);
    int n = f->nwatch;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Waits (generously: a loaded machine) until the server saw n watches. */
static bool wait_watches(fake *f, int n, double seconds)
{
    int64_t end = csl_mono_ns() + (int64_t)(seconds * 1e9);
    while (csl_mono_ns() < end) {
        if (fake_watches(f) >= n) return true;
        csl_sleep_ns(10000000);
    }
    return false;
}

static const csl_kube_resource CM = {"", "v1", "configmaps", true};

static csl_reflector_options fast_opts(void)
{
    csl_reflector_options o = {0};
    o.resource = CM;
    o.namespace = "t";
    o.seed = 1234;
    o.backoff = (csl_backoff){0.02, 0.1, 2, 0.25, 120, 0.02, 0};
    return o;
}

#define EV(type, name, rv)                                                                         \
    "{\"type\":\"" type "\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\","             \
    "\"metadata\":{\"name\":\"" name "\",\"namespace\":\"t\",\"resourceVersion\":\"" rv "\"}}}\n"
#define BOOKMARK(rv)                                                                               \
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\","             \
    "\"metadata\":{\"resourceVersion\":\"" rv "\"}}}\n"
#define STATUS410                                                                                  \
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\","           \
    "\"message\":\"too old resource version: 16 (29)\",\"reason\":\"Expired\",\"code\":410}"

static void test_reflector_script(void)
{
    static const list_def lists[] = {{"10", 3, 0}, {"30", 1, 7}, {"40", 2, 20}};
    static const step watches[] = {
        /* 1: events, CRLF, a bookmark, then a clean end → watch again from 15 */
        {ACT_RESPOND, 200,
         EV("ADDED", "cm-9", "11") EV("MODIFIED", "cm-9", "12") "\r\n" BOOKMARK("15")},
        /* 2: an event, then the connection drops mid-event → back off, watch from 16 */
        {ACT_RESPOND, 200, EV("DELETED", "cm-9", "16") "{\"type\":\"ADDED\",\"object\":{\"meta"},
        /* 3: the server has forgotten 16 → list again */
        {ACT_RESPOND, 200, "{\"type\":\"ERROR\",\"object\":" STATUS410 "}\n"},
        /* 4: 410 as an HTTP status → list again */
        {ACT_RESPOND, 410, STATUS410},
        /* 5: garbage; 6: a server error; 7: a reset; 8: an empty body at once */
        {ACT_RESPOND, 200, "<html>oops</html>\n"},
        {ACT_RESPOND, 500, "{\"kind\":\"Status\",\"code\":500,\"message\":\"etcd down\"}"},
        {ACT_RESET, 0, NULL},
        {ACT_RESPOND, 200, ""},
        /* 9: an ERROR event that is not 410 → back off and watch from 40 */
        {ACT_RESPOND, 200,
         "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,\"message\":\"x\"}}\n"},
        /* 10: silence → the stall timer ends it; 11…: silence */
    };
    fake f = {0};
    f.watches = watches;
    f.nwatches = sizeof watches / sizeof watches[0];
    f.lists = lists;
    f.nlists = 3;
    csl_kube *k = fake_start(&f);
    consumer c = {PTHREAD_MUTEX_INITIALIZER, CSL_BUF_INIT, 0, 0};
    csl_reflector_options o = fast_opts();
    o.stall_timeout_ms = 700;
    csl_reflector_handler h = {c_replace, c_event, &c};
    char err[256];
    csl_reflector *r = csl_reflector_new(k, &o, &h, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(csl_reflector_start(r), 0);
    CU_ASSERT_EQUAL(csl_reflector_start(r), -1);
    CU_ASSERT(wait_watches(&f, 11, 30));
    csl_reflector_stop(r);
    csl_reflector_stop(r);

    pthread_mutex_lock(&f.mu);
    const char *want_rv[] = {"10", "15", "16", "30", "40", "40", "40", "40", "40", "40", "40"};
    for (size_t i = 0; i < sizeof want_rv / sizeof want_rv[0]; i++) {
        if (strcmp(f.watch_rv[i], want_rv[i]) != 0)
            fprintf(stderr, "\nwatch %zu: resourceVersion %s, want %s\n", i + 1, f.watch_rv[i],
                    want_rv[i]);
        CU_ASSERT_STRING_EQUAL(f.watch_rv[i], want_rv[i]);
    }
    int distinct = 0;
    for (int i = 0; i < 11; i++) {
        CU_ASSERT(f.watch_timeout[i] >= 300 && f.watch_timeout[i] <= 600);
        CU_ASSERT(f.watch_bookmarks[i]);
        if (i && f.watch_timeout[i] != f.watch_timeout[0]) distinct++;
    }
    CU_ASSERT(distinct > 0);
    CU_ASSERT_EQUAL(f.nlist, 3);
    CU_ASSERT_EQUAL(f.list_limit, 500);
    pthread_mutex_unlock(&f.mu);

    CU_ASSERT_STRING_EQUAL(csl_buf_str(&c.log),
                           "REPLACE rv=10 n=3 v1/ConfigMap/cm-0 v1/ConfigMap/cm-1 "
                           "v1/ConfigMap/cm-2;"
                           "ADDED cm-9 11;MODIFIED cm-9 12;DELETED cm-9 16;"
                           "REPLACE rv=30 n=1 v1/ConfigMap/cm-7;"
                           "REPLACE rv=40 n=2 v1/ConfigMap/cm-20 v1/ConfigMap/cm-21;");
    csl_reflector_stats st;
    csl_reflector_stats_get(r, &st);
    CU_ASSERT_EQUAL(st.lists, 3);
    CU_ASSERT_EQUAL(st.relists_gone, 2);
    CU_ASSERT_EQUAL(st.events, 3);
    CU_ASSERT_EQUAL(st.bookmarks, 1);
    /* libcurl retries a request whose reused connection was reset once on its
     * own, so the server may count one more watch than the reflector. */
    if (st.watches < 10) fprintf(stderr, "\nwatches %" PRIu64 "\n", st.watches);
    CU_ASSERT(st.watches >= 10);
    CU_ASSERT(st.stalls >= 1);
    /* 2 (cut), 5, 6, 7, 8, 9 and at least one stall */
    CU_ASSERT(st.errors >= 7);
    char rv[32];
    csl_reflector_last_rv(r, rv, sizeof rv);
    CU_ASSERT_STRING_EQUAL(rv, "40");
    csl_reflector_free(r);
    csl_buf_free(&c.log);
    fake_stop(&f, k);
}

static void test_reflector_pages_and_selectors(void)
{
    static const list_def lists[] = {{"77", 5, 0}};
    fake f = {0};
    f.lists = lists;
    f.nlists = 1;
    csl_kube *k = fake_start(&f);
    consumer c = {PTHREAD_MUTEX_INITIALIZER, CSL_BUF_INIT, 0, 0};
    csl_reflector_options o = fast_opts();
    o.page_size = 2;
    o.label_selector = "app=web,tier in (a,b)";
    o.field_selector = "metadata.name!=x&y";
    o.watch_timeout_min_s = 5;
    o.watch_timeout_max_s = 5;
    csl_reflector_handler h = {c_replace, c_event, &c};
    char err[256];
    csl_reflector *r = csl_reflector_new(k, &o, &h, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(csl_reflector_start(r), 0);
    CU_ASSERT(wait_watches(&f, 1, 20));
    /* Stop while the watch hangs: it returns promptly. */
    int64_t t0 = csl_mono_ns();
    csl_reflector_stop(r);
    CU_ASSERT(csl_mono_ns() - t0 < 5000000000LL);
    pthread_mutex_lock(&f.mu);
    CU_ASSERT_EQUAL(f.nlist, 1);
    CU_ASSERT_EQUAL(f.nlist_pages, 3);
    CU_ASSERT_EQUAL(f.list_limit, 2);
    CU_ASSERT_STRING_EQUAL(f.label_sel, "app=web,tier in (a,b)");
    CU_ASSERT_STRING_EQUAL(f.field_sel, "metadata.name!=x&y");
    CU_ASSERT_STRING_EQUAL(f.watch_rv[0], "77");
    CU_ASSERT_EQUAL(f.watch_timeout[0], 5);
    pthread_mutex_unlock(&f.mu);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&c.log),
                           "REPLACE rv=77 n=5 v1/ConfigMap/cm-0 v1/ConfigMap/cm-1 "
                           "v1/ConfigMap/cm-2 v1/ConfigMap/cm-3 v1/ConfigMap/cm-4;");
    csl_reflector_free(r);
    csl_buf_free(&c.log);
    fake_stop(&f, k);
}

static void test_reflector_pause(void)
{
    static const list_def lists[] = {{"50", 1, 0}};
    static const step watches[] = {
        {ACT_RESPOND, 200, EV("ADDED", "cm-5", "51") BOOKMARK("55")},
    };
    fake f = {0};
    f.lists = lists;
    f.nlists = 1;
    f.watches = watches;
    f.nwatches = 1;
    csl_kube *k = fake_start(&f);
    consumer c = {PTHREAD_MUTEX_INITIALIZER, CSL_BUF_INIT, 0, 0};
    csl_reflector_options o = fast_opts();
    csl_reflector_handler h = {c_replace, c_event, &c};
    char err[256];
    csl_reflector *r = csl_reflector_new(k, &o, &h, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(csl_reflector_start(r), 0);
    CU_ASSERT(wait_watches(&f, 2, 20)); /* the second one hangs */
    csl_reflector_pause(r, true);
    csl_sleep_ns(1500000000); /* the hung watch is abandoned; nothing new starts */
    int n = fake_watches(&f);
    CU_ASSERT_EQUAL(n, 2);
    csl_reflector_pause(r, false);
    CU_ASSERT(wait_watches(&f, 3, 20));
    csl_reflector_stop(r);
    pthread_mutex_lock(&f.mu);
    CU_ASSERT_STRING_EQUAL(f.watch_rv[1], "55");
    CU_ASSERT_STRING_EQUAL(f.watch_rv[2], "55");
    CU_ASSERT_EQUAL(f.nlist, 1);
    pthread_mutex_unlock(&f.mu);
    csl_reflector_stats st;
    csl_reflector_stats_get(r, &st);
    CU_ASSERT_EQUAL(st.errors, 0);
    CU_ASSERT_EQUAL(st.stalls, 0);
    csl_reflector_free(r);
    csl_buf_free(&c.log);
    fake_stop(&f, k);
}

static void test_reflector_bad_options(void)
{
    consumer c = {PTHREAD_MUTEX_INITIALIZER, CSL_BUF_INIT, 0, 0};
    csl_reflector_handler h = {c_replace, c_event, &c};
    csl_kube_config kc = {0};
    kc.server = "http://127.0.0.1:1";
    char err[256];
    csl_kube *k = csl_kube_new(&kc, NULL, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    csl_reflector_options o = fast_opts();
    o.resource.resource = "";
    CU_ASSERT_PTR_NULL(csl_reflector_new(k, &o, &h, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "resource"));
    o = fast_opts();
    o.watch_timeout_min_s = 700;
    o.watch_timeout_max_s = 600;
    CU_ASSERT_PTR_NULL(csl_reflector_new(k, &o, &h, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "watch_timeout"));
    o = fast_opts();
    csl_reflector_handler bad = {NULL, c_event, &c};
    CU_ASSERT_PTR_NULL(csl_reflector_new(k, &o, &bad, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "on_replace"));
    CU_ASSERT_PTR_NULL(csl_reflector_new(NULL, &o, &h, err, sizeof err));
    /* a server that is not there: lists fail and back off; stop still works */
    csl_reflector *r = csl_reflector_new(k, &o, &h, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_EQUAL(csl_reflector_start(r), 0);
    csl_sleep_ns(300000000);
    csl_reflector_stop(r);
    csl_reflector_stats st;
    csl_reflector_stats_get(r, &st);
    CU_ASSERT(st.errors >= 2);
    CU_ASSERT_EQUAL(st.lists, 0);
    CU_ASSERT_EQUAL(c.replaces, 0);
    csl_reflector_free(r);
    csl_kube_free(k);
    CU_ASSERT_STRING_EQUAL(csl_watch_type_name(CSL_WATCH_BOOKMARK), "BOOKMARK");
    CU_ASSERT_STRING_EQUAL(csl_watch_type_name((csl_watch_type)99), "?");
}

static int quiet_logs(void)
{
    csl_log_setup("test_watch", CSL_LOG_ERROR, CSL_LOG_TEXT, 2);
    return 0;
}

static CU_TestInfo parser_tests[] = {
    {"one chunk", test_parse_one_chunk},
    {"every split of three events", test_parse_every_split},
    {"byte by byte", test_parse_byte_by_byte},
    {"CRLF, blank lines, no separator", test_parse_separators},
    {"ERROR event", test_parse_error_event},
    {"garbage", test_parse_garbage},
    {"truncated", test_parse_truncated},
    {"oversize", test_parse_oversize},
    {"callback stops", test_parse_stop},
    {"random mutations", test_parse_random},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo backoff_tests[] = {
    {"0.8 s doubling to 30 s", test_backoff_sequence},
    {"jitter band and seed", test_backoff_jitter},
    {"reset after a quiet period", test_backoff_reset_after_quiet},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo reflector_tests[] = {
    {"scripted server: ends, cuts, 410s, errors, stall", test_reflector_script},
    {"pages, selectors, prompt stop", test_reflector_pages_and_selectors},
    {"pause and resume", test_reflector_pause},
    {"bad options, no server", test_reflector_bad_options},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"watch parser", quiet_logs, NULL, NULL, NULL, parser_tests},
    {"backoff", quiet_logs, NULL, NULL, NULL, backoff_tests},
    {"reflector", quiet_logs, NULL, NULL, NULL, reflector_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
