/* test_runner_prom.c — the Prometheus text reader: the exact exposition
 * lib/metrics.c renders (what the operator serves), the corners of format
 * 0.0.4 (escapes, +Inf, NaN, timestamps), the label filter, bad lines. */
#include "../testutil.h"

#include "../../scenarios/runner/prom.h"
#include "csl/buf.h"
#include "csl/metrics.h"

#include <math.h>
#include <string.h>

static sr_prom *parse(const char *text)
{
    sr_prom *p = sr_prom_parse(text, strlen(text));
    CU_ASSERT_PTR_NOT_NULL(p);
    return p;
}

/* The operator's own registry, rendered by the library, read back. */
static void test_real_exposition(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_metric *rec = csl_metrics_counter(reg, "controller_runtime_reconcile_total", "Passes.",
                                          CSL_LABELS("controller", "result"));
    csl_metric *errs = csl_metrics_counter(reg, "controller_runtime_reconcile_errors_total",
                                           "Failed passes.", CSL_LABELS("controller"));
    csl_metric *rest = csl_metrics_counter(reg, "rest_client_requests_total", "Requests.",
                                           CSL_LABELS("code", "method", "host"));
    csl_metric *h =
        csl_metrics_histogram(reg, "cloudserver_create_to_ready_seconds", "CTR.", NULL, NULL, 0);
    csl_metric *odd =
        csl_metrics_gauge(reg, "odd_labels", "Escapes.\nTwo lines \\ here", CSL_LABELS("v"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(odd);
    csl_metrics_register_process(reg);

    csl_metric_add(rec, 40, CSL_LABELS("cloudserver", "success"));
    csl_metric_add(rec, 7, CSL_LABELS("cloudserver", "requeue_after"));
    csl_metric_add(rec, 3, CSL_LABELS("cloudserver", "error"));
    csl_metric_add(rec, 5, CSL_LABELS("cloudserverset", "success"));
    csl_metric_add(errs, 3, CSL_LABELS("cloudserver"));
    csl_metric_add(rest, 10, CSL_LABELS("200", "GET", "127.0.0.1:6443"));
    csl_metric_add(rest, 4, CSL_LABELS("200", "PATCH", "127.0.0.1:6443"));
    csl_metric_add(rest, 6, CSL_LABELS("201", "POST", "127.0.0.1:6443"));
    csl_metric_add(rest, 1, CSL_LABELS("409", "PUT", "127.0.0.1:6443"));
    csl_metric_add(rest, 2, CSL_LABELS("200", "DELETE", "127.0.0.1:6443"));
    csl_metric_observe(h, 1.5, NULL);
    csl_metric_observe(h, 3, NULL);
    csl_metric_set(odd, 2, CSL_LABELS("a\"b\\c\nd, e=f"));
    csl_metric_set(odd, NAN, CSL_LABELS("nan"));
    csl_metric_set(odd, INFINITY, CSL_LABELS("inf"));

    csl_buf out = CSL_BUF_INIT;
    CU_ASSERT_FATAL(csl_metrics_render(reg, &out));
    sr_prom *p = sr_prom_parse(out.data, out.len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(sr_prom_bad_lines(p), 0);

    bool found = false;
    CU_ASSERT_EQUAL(
        sr_prom_sum(p, "controller_runtime_reconcile_total", "controller=cloudserver", &found), 50);
    CU_ASSERT(found);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "controller_runtime_reconcile_total", NULL, &found), 55);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "controller_runtime_reconcile_total",
                                "controller=cloudserver,result=error", &found),
                    3);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "controller_runtime_reconcile_errors_total",
                                "controller=cloudserver", &found),
                    3);
    /* Kubernetes writes: every method but GET, with the alternatives syntax. */
    CU_ASSERT_EQUAL(
        sr_prom_sum(p, "rest_client_requests_total", "method=POST|PUT|PATCH|DELETE", &found), 13);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "rest_client_requests_total", "method = GET , code=200", &found),
                    10);
    /* Histograms are their _bucket/_sum/_count series. */
    CU_ASSERT_EQUAL(sr_prom_sum(p, "cloudserver_create_to_ready_seconds_count", NULL, &found), 2);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "cloudserver_create_to_ready_seconds_sum", NULL, &found), 4.5);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "cloudserver_create_to_ready_seconds_bucket", "le=+Inf", &found),
                    2);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "cloudserver_create_to_ready_seconds_bucket", "le=2.5", &found),
                    1);
    /* Escaped label values come back as they were set. */
    CU_ASSERT_EQUAL(sr_prom_sum(p, "odd_labels", "v=nan", &found), 0); /* NaN adds nothing */
    CU_ASSERT(found);
    CU_ASSERT(isinf(sr_prom_sum(p, "odd_labels", "v=inf", &found)));
    /* Process metrics the CPU and memory SLOs read. */
    sr_prom_sum(p, "process_cpu_seconds_total", NULL, &found);
    CU_ASSERT(found);
    double rss = sr_prom_sum(p, "process_resident_memory_bytes", NULL, &found);
    CU_ASSERT(found);
    CU_ASSERT(rss > 1024 * 1024);

    sr_prom_sum(p, "no_such_metric", NULL, &found);
    CU_ASSERT_FALSE(found);
    sr_prom_sum(p, "controller_runtime_reconcile_total", "controller=nope", &found);
    CU_ASSERT_FALSE(found);
    sr_prom_free(p);
    csl_buf_free(&out);
    csl_metrics_free(reg);
}

static void test_escapes_in_label_values(void)
{
    const char *text = "m{v=\"a\\\"b\\\\c\\nd, e=f\",w=\"x\"} 2\n";
    sr_prom *p = parse(text);
    bool found = false;
    /* The unescaped value holds a quote, a backslash and a newline; a
     * filter cannot spell those, so check via the label w and the count. */
    CU_ASSERT_EQUAL(sr_prom_sum(p, "m", "w=x", &found), 2);
    CU_ASSERT(found);
    CU_ASSERT_EQUAL(sr_prom_bad_lines(p), 0);
    sr_prom_free(p);

    /* Unescaped: a quote, a backslash and a newline, matched literally. */
    p = parse("m{v=\"q\\\"x\\\\y\\nz\"} 5\nm{v=\"q\\\"x\\\\y\\\\nz\"} 6\n");
    CU_ASSERT_EQUAL(sr_prom_sum(p, "m", "v=q\"x\\y\nz", &found), 5);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "m", "v=q\"x\\y\\nz", &found), 6);
    sr_prom_free(p);

    p = parse("m{v=\"with space\"} 4\nm{v=\"a|b\"} 1\n");
    CU_ASSERT_EQUAL(sr_prom_sum(p, "m", "v=with space", &found), 4);
    CU_ASSERT(found);
    sr_prom_free(p);
}

static void test_values_and_timestamps(void)
{
    const char *text = "# HELP x A help line with {braces} and \"quotes\"\n"
                       "# TYPE x gauge\n"
                       "x{k=\"a\"} +Inf\n"
                       "x{k=\"b\"} -Inf 1700000000000\n"
                       "x{k=\"c\"} NaN\n"
                       "x{k=\"d\"} 1.5e3 1700000000000\n"
                       "x{k=\"e\"} -0.25\n"
                       "x{k=\"f\",} 7\n" /* a trailing comma is allowed */
                       "y 42\r\n"        /* CRLF */
                       "z{} 3\n"
                       "  \n"
                       "   # indented comment\n"
                       "w\t9\n";
    sr_prom *p = parse(text);
    CU_ASSERT_EQUAL(sr_prom_bad_lines(p), 0);
    bool found;
    CU_ASSERT(isinf(sr_prom_sum(p, "x", "k=a", &found)) && sr_prom_sum(p, "x", "k=a", NULL) > 0);
    CU_ASSERT(sr_prom_sum(p, "x", "k=b", &found) < 0 && isinf(sr_prom_sum(p, "x", "k=b", NULL)));
    CU_ASSERT_EQUAL(sr_prom_sum(p, "x", "k=d", &found), 1500);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "x", "k=e", &found), -0.25);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "x", "k=f", &found), 7);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "x", "k=d|e|f", &found), 1506.75);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "y", NULL, &found), 42);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "z", "", &found), 3);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "w", NULL, &found), 9);
    /* A label the sample lacks equals "" (Prometheus' model). */
    CU_ASSERT_EQUAL(sr_prom_sum(p, "y", "k=", &found), 42);
    CU_ASSERT(found);
    sr_prom_sum(p, "y", "k=a", &found);
    CU_ASSERT_FALSE(found);
    sr_prom_free(p);
}

static void test_bad_lines(void)
{
    const char *text = "good 1\n"
                       "bad{k=\"unterminated} 1\n"
                       "bad{k=unquoted} 1\n"
                       "bad{k=\"a\",k=\"b\"} 1\n" /* a label twice */
                       "bad{0k=\"a\"} 1\n"
                       "bad 1 2 3\n"
                       "bad notanumber\n"
                       "bad nan(123)\n"
                       "bad 1 12.5\n" /* timestamps are integers */
                       "bad\n"
                       "9bad 1\n"
                       "bad{k=\"a\"}\n"
                       "bad{k=\"a\" 1\n"
                       "good 2\n";
    sr_prom *p = parse(text);
    CU_ASSERT_EQUAL(sr_prom_bad_lines(p), 12);
    bool found;
    CU_ASSERT_EQUAL(sr_prom_sum(p, "good", NULL, &found), 3);
    sr_prom_sum(p, "bad", NULL, &found);
    CU_ASSERT_FALSE(found);
    /* A filter term without '=' matches nothing rather than everything. */
    sr_prom_sum(p, "good", "oops", &found);
    CU_ASSERT_FALSE(found);
    sr_prom_free(p);

    p = sr_prom_parse("", 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(sr_prom_bad_lines(p), 0);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "x", NULL, &found), 0);
    CU_ASSERT_FALSE(found);
    sr_prom_free(p);

    /* Length is honoured: no reading past len, no NUL needed. */
    const char cut[] = {'a', ' ', '1', '\n', 'b', ' ', '2'};
    p = sr_prom_parse(cut, 5);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "a", NULL, &found), 1);
    CU_ASSERT_EQUAL(sr_prom_bad_lines(p), 1); /* "b" alone */
    sr_prom_free(p);
    sr_prom_free(NULL);
}

static void test_many_samples(void)
{
    csl_buf b = CSL_BUF_INIT;
    for (int i = 0; i < 5000; i++)
        csl_buf_printf(&b, "series_total{i=\"%d\",parity=\"%s\"} %d\n", i, i % 2 ? "odd" : "even",
                       i);
    sr_prom *p = sr_prom_parse(b.data, b.len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    bool found;
    CU_ASSERT_EQUAL(sr_prom_sum(p, "series_total", NULL, &found), 4999.0 * 5000 / 2);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "series_total", "parity=odd", &found), 2500.0 * 2500);
    CU_ASSERT_EQUAL(sr_prom_sum(p, "series_total", "i=4321", &found), 4321);
    sr_prom_free(p);
    csl_buf_free(&b);
}

static CU_TestInfo tests[] = {
    {"the operator's real exposition", test_real_exposition},
    {"escapes in label values", test_escapes_in_label_values},
    {"values and timestamps", test_values_and_timestamps},
    {"bad lines", test_bad_lines},
    {"many samples", test_many_samples},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"prom", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
