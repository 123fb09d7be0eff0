/* test_metrics.c — Prometheus registry and text exposition: exact output of
 * each kind, escaping, number formatting, concurrency, refusals. */
#include "../testutil.h"

#include "csl/log.h"
#include "csl/metrics.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Log records go to a temporary file, so tests can check what people
 * would be told. */
static FILE *log_file;

static void log_reset(void)
{
    fflush(log_file);
    CU_ASSERT_EQUAL(ftruncate(fileno(log_file), 0), 0);
    lseek(fileno(log_file), 0, SEEK_SET);
}

/* What was logged since log_reset; static storage. */
static const char *log_text(void)
{
    static char buf[8192];
    ssize_t n = pread(fileno(log_file), buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

static char *render(csl_metrics *reg)
{
    csl_buf out = CSL_BUF_INIT;
    CU_ASSERT(csl_metrics_render(reg, &out));
    return csl_buf_steal(&out);
}

/* The value on the line that starts with prefix (name plus labels and a
 * space), or NAN when there is none. */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, prefix, n) == 0) return strtod(p + n, NULL);
    return NAN;
}

static void test_exposition_exact(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_metric *c = csl_metrics_counter(reg, "http_requests_total", "Requests served.",
                                        CSL_LABELS("method", "code"));
    csl_metric *g = csl_metrics_gauge(reg, "temperature_celsius",
                                      "Current temperature.\nSecond line \\ here", NULL);
    csl_metric *h = csl_metrics_histogram(reg, "latency_seconds", "Latency.", CSL_LABELS("op"),
                                          (const double[]){0.1, 1, 2.5}, 3);
    csl_metric *idle = csl_metrics_counter(reg, "idle_total", "Never touched.", NULL);
    csl_metric *empty = csl_metrics_gauge(reg, "by_zone", "No child yet.", CSL_LABELS("zone"));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(idle);
    CU_ASSERT_PTR_NOT_NULL_FATAL(empty);

    csl_metric_inc(c, CSL_LABELS("GET", "200"));
    csl_metric_add(c, 3, CSL_LABELS("POST", "201"));
    csl_metric_inc(c, CSL_LABELS("GET", "200"));
    csl_metric_set(g, -1.5, NULL);
    csl_metric_observe(h, 0.0625, CSL_LABELS("get"));
    csl_metric_observe(h, 0.5, CSL_LABELS("get"));
    csl_metric_observe(h, 1, CSL_LABELS("get")); /* le is inclusive */
    csl_metric_observe(h, 3, CSL_LABELS("get"));
    csl_metric_observe(h, 2, CSL_LABELS("put"));

    const char *want = "# HELP http_requests_total Requests served.\n"
                       "# TYPE http_requests_total counter\n"
                       "http_requests_total{method=\"GET\",code=\"200\"} 2\n"
                       "http_requests_total{method=\"POST\",code=\"201\"} 3\n"
                       "# HELP temperature_celsius Current temperature.\\nSecond line \\\\ here\n"
                       "# TYPE temperature_celsius gauge\n"
                       "temperature_celsius -1.5\n"
                       "# HELP latency_seconds Latency.\n"
                       "# TYPE latency_seconds histogram\n"
                       "latency_seconds_bucket{op=\"get\",le=\"0.1\"} 1\n"
                       "latency_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
                       "latency_seconds_bucket{op=\"get\",le=\"2.5\"} 3\n"
                       "latency_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"
                       "latency_seconds_sum{op=\"get\"} 4.5625\n"
                       "latency_seconds_count{op=\"get\"} 4\n"
                       "latency_seconds_bucket{op=\"put\",le=\"0.1\"} 0\n"
                       "latency_seconds_bucket{op=\"put\",le=\"1\"} 0\n"
                       "latency_seconds_bucket{op=\"put\",le=\"2.5\"} 1\n"
                       "latency_seconds_bucket{op=\"put\",le=\"+Inf\"} 1\n"
                       "latency_seconds_sum{op=\"put\"} 2\n"
                       "latency_seconds_count{op=\"put\"} 1\n"
                       "# HELP idle_total Never touched.\n"
                       "# TYPE idle_total counter\n"
                       "idle_total 0\n"
                       "# HELP by_zone No child yet.\n"
                       "# TYPE by_zone gauge\n";
    char *got = render(reg);
    CU_ASSERT_STRING_EQUAL(got, want);
    if (strcmp(got, want) != 0) fprintf(stderr, "\n--- got:\n%s--- want:\n%s", got, want);
    free(got);

    /* rendering appends */
    csl_buf out = CSL_BUF_INIT;
    csl_buf_puts(&out, "PREFIX\n");
    CU_ASSERT(csl_metrics_render(reg, &out));
    CU_ASSERT_EQUAL(strncmp(csl_buf_str(&out), "PREFIX\n# HELP http_requests_total", 33), 0);
    csl_buf_free(&out);
    csl_metrics_free(reg);
}

static void test_default_buckets(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_metric *h = csl_metrics_histogram(reg, "d_seconds", "Default buckets.", NULL, NULL, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    csl_metric_observe(h, 0.3, NULL);
    char *got = render(reg);
    const char *les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                         "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
    const double want[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
    for (size_t i = 0; i < 12; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "d_seconds_bucket{le=\"%s\"} ", les[i]);
        CU_ASSERT_EQUAL(sample(got, prefix), want[i]);
    }
    CU_ASSERT_EQUAL(sample(got, "d_seconds_count "), 1);
    CU_ASSERT_DOUBLE_EQUAL(sample(got, "d_seconds_sum "), 0.3, 1e-12);
    CU_ASSERT_EQUAL(csl_metric_value(h, NULL), 1);
    free(got);
    csl_metrics_free(reg);
}

static void test_escaping(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_metric *c = csl_metrics_counter(reg, "esc_total", "Escapes.", CSL_LABELS("path"));
    csl_metric_inc(c, CSL_LABELS("a\\b\"c\nd"));
    csl_metric_inc(c, CSL_LABELS(""));
    char *got = render(reg);
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "esc_total{path=\"a\\\\b\\\"c\\nd\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "esc_total{path=\"\"} 1\n"));
    CU_ASSERT_EQUAL(csl_metric_value(c, CSL_LABELS("a\\b\"c\nd")), 1);
    free(got);
    csl_metrics_free(reg);
}

static void test_number_format(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_metric *g = csl_metrics_gauge(reg, "n", "Numbers.", CSL_LABELS("v"));
    struct {
        const char *label;
        double v;
        const char *text;
    } cases[] = {
        {"million", 1e6, "1000000"}, {"big", 123456789012.0, "123456789012"},
        {"tenth", 0.1, "0.1"},       {"third", 1.0 / 3, "0.33333333333333331"},
        {"neg", -2.25, "-2.25"},     {"negzero", -0.0, "0"},
        {"tiny", 1.5e-9, "1.5e-09"}, {"huge", 1e300, "1e+300"},
        {"inf", INFINITY, "+Inf"},   {"ninf", -INFINITY, "-Inf"},
        {"nan", NAN, "NaN"},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i < n; i++) csl_metric_set(g, cases[i].v, CSL_LABELS(cases[i].label));
    char *got = render(reg);
    for (size_t i = 0; i < n; i++) {
        char line[128];
        snprintf(line, sizeof line, "n{v=\"%s\"} %s\n", cases[i].label, cases[i].text);
        CU_ASSERT_PTR_NOT_NULL(strstr(got, line));
        if (!strstr(got, line)) fprintf(stderr, "\nmissing: %s", line);
        /* and it reads back as the same number */
        if (!isnan(cases[i].v) && cases[i].v != 0)
            CU_ASSERT_EQUAL(strtod(cases[i].text, NULL), cases[i].v);
    }
    free(got);
    csl_metrics_free(reg);
}

struct worker {
    csl_metric *c, *h, *g;
    int id;
};

enum { THREADS = 4, ITERS = 50000 };

static void *hammer(void *arg)
{
    struct worker *w = arg;
    const char *kinds[] = {"a", "b", "c"};
    for (int i = 0; i < ITERS; i++) {
        csl_metric_inc(w->c, CSL_LABELS(kinds[i % 3]));
        csl_metric_observe(w->h, (double)(i % 4), NULL);
        csl_metric_add(w->g, 1, NULL);
        csl_metric_add(w->g, -1, NULL);
    }
    return NULL;
}

static void test_concurrent(void)
{
    csl_metrics *reg = csl_metrics_new();
    struct worker w[THREADS];
    pthread_t t[THREADS];
    csl_metric *c = csl_metrics_counter(reg, "ops_total", "Ops.", CSL_LABELS("kind"));
    csl_metric *h =
        csl_metrics_histogram(reg, "ops_size", "Sizes.", NULL, (const double[]){0.5, 1.5, 2.5}, 3);
    csl_metric *g = csl_metrics_gauge(reg, "inflight", "In flight.", NULL);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){c, h, g, i};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, hammer, &w[i]), 0);
    }
    /* scrapes while the updates run */
    for (int i = 0; i < 20; i++) free(render(reg));
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);

    double total = csl_metric_value(c, CSL_LABELS("a")) + csl_metric_value(c, CSL_LABELS("b")) +
                   csl_metric_value(c, CSL_LABELS("c"));
    CU_ASSERT_EQUAL(total, THREADS * ITERS);
    CU_ASSERT_EQUAL(csl_metric_value(h, NULL), THREADS * ITERS);
    CU_ASSERT_EQUAL(csl_metric_value(g, NULL), 0);
    char *got = render(reg);
    /* i % 4 is 0,1,2,3 equally often: cumulative quarter, half, 3/4, all */
    CU_ASSERT_EQUAL(sample(got, "ops_size_bucket{le=\"0.5\"} "), THREADS * ITERS / 4);
    CU_ASSERT_EQUAL(sample(got, "ops_size_bucket{le=\"1.5\"} "), THREADS * ITERS / 2);
    CU_ASSERT_EQUAL(sample(got, "ops_size_bucket{le=\"2.5\"} "), THREADS * ITERS / 4 * 3);
    CU_ASSERT_EQUAL(sample(got, "ops_size_bucket{le=\"+Inf\"} "), THREADS * ITERS);
    CU_ASSERT_EQUAL(sample(got, "ops_size_sum "), THREADS * ITERS / 4 * 6);
    free(got);
    csl_metrics_free(reg);
}

static void test_bad_names(void)
{
    log_reset();
    csl_metrics *reg = csl_metrics_new();
    CU_ASSERT_PTR_NULL(csl_metrics_counter(reg, "1abc", "x", NULL));
    CU_ASSERT_PTR_NULL(csl_metrics_counter(reg, "a-b", "x", NULL));
    CU_ASSERT_PTR_NULL(csl_metrics_counter(reg, "", "x", NULL));
    CU_ASSERT_PTR_NULL(csl_metrics_counter(reg, NULL, "x", NULL));
    CU_ASSERT_PTR_NULL(csl_metrics_gauge(reg, "ok", "x", CSL_LABELS("__reserved")));
    CU_ASSERT_PTR_NULL(csl_metrics_gauge(reg, "ok", "x", CSL_LABELS("a:b")));
    CU_ASSERT_PTR_NULL(csl_metrics_gauge(reg, "ok", "x", CSL_LABELS("1a")));
    CU_ASSERT_PTR_NULL(csl_metrics_gauge(reg, "ok", "x", CSL_LABELS("a", "a")));
    CU_ASSERT_PTR_NULL(csl_metrics_histogram(reg, "h", "x", CSL_LABELS("le"), NULL, 0));
    CU_ASSERT_PTR_NULL(csl_metrics_histogram(reg, "h", "x", NULL, (const double[]){1, 1}, 2));
    CU_ASSERT_PTR_NULL(csl_metrics_histogram(reg, "h", "x", NULL, (const double[]){2, 1}, 2));
    CU_ASSERT_PTR_NULL(csl_metrics_histogram(reg, "h", "x", NULL, (const double[]){NAN}, 1));
    /* each refusal says what and why */
    const char *log = log_text();
    CU_ASSERT_EQUAL(count_of(log, "cannot register"), 12);
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "cannot register counter 1abc: a metric name is"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "\"le\" is reserved"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "strictly increasing"));
    /* nothing half-registered */
    char *got = render(reg);
    CU_ASSERT_STRING_EQUAL(got, "");
    free(got);

    /* colons are fine in metric names; a trailing +Inf bound is implied anyway */
    CU_ASSERT_PTR_NOT_NULL(csl_metrics_gauge(reg, "job:rate:5m", "x", NULL));
    csl_metric *h = csl_metrics_histogram(reg, "h", "x", NULL, (const double[]){1, 2, INFINITY}, 3);
    CU_ASSERT_PTR_NOT_NULL(h);

    /* registering again: same shape gives the same family, another shape none */
    csl_metric *c = csl_metrics_counter(reg, "req_total", "x", CSL_LABELS("a"));
    CU_ASSERT_PTR_NOT_NULL(c);
    CU_ASSERT_PTR_EQUAL(csl_metrics_counter(reg, "req_total", "other help", CSL_LABELS("a")), c);
    CU_ASSERT_PTR_NULL(csl_metrics_gauge(reg, "req_total", "x", CSL_LABELS("a")));
    CU_ASSERT_PTR_NULL(csl_metrics_counter(reg, "req_total", "x", CSL_LABELS("b")));
    CU_ASSERT_PTR_NULL(csl_metrics_counter(reg, "req_total", "x", NULL));
    CU_ASSERT_PTR_EQUAL(csl_metrics_histogram(reg, "h", "x", NULL, (const double[]){1, 2}, 2), h);
    CU_ASSERT_PTR_NULL(csl_metrics_histogram(reg, "h", "x", NULL, (const double[]){1, 3}, 2));
    csl_metrics_free(reg);
}

static void test_wrong_use_ignored(void)
{
    log_reset();
    csl_metrics *reg = csl_metrics_new();
    csl_metric *c = csl_metrics_counter(reg, "c_total", "x", CSL_LABELS("a", "b"));
    csl_metric *h = csl_metrics_histogram(reg, "h", "x", NULL, NULL, 0);
    csl_metric *plain = csl_metrics_counter(reg, "plain_total", "x", NULL);
    csl_metric_inc(c, CSL_LABELS("1", "2"));
    csl_metric_inc(c, CSL_LABELS("1"));           /* too few */
    csl_metric_inc(c, CSL_LABELS("1", "2", "3")); /* too many */
    csl_metric_inc(c, NULL);
    csl_metric_inc(plain, CSL_LABELS("x"));
    csl_metric_add(c, -1, CSL_LABELS("1", "2")); /* counters only go up */
    csl_metric_add(c, NAN, CSL_LABELS("1", "2"));
    csl_metric_observe(c, 1, CSL_LABELS("1", "2"));
    csl_metric_set(h, 5, NULL);
    csl_metric_add(h, 5, NULL);
    csl_metric_inc(NULL, NULL); /* a family that failed to register */
    CU_ASSERT_EQUAL(csl_metric_value(c, CSL_LABELS("1", "2")), 1);
    CU_ASSERT_EQUAL(csl_metric_value(c, CSL_LABELS("1")), 0);
    CU_ASSERT_EQUAL(csl_metric_value(c, CSL_LABELS("9", "9")), 0); /* absent child */
    CU_ASSERT_EQUAL(csl_metric_value(plain, NULL), 0);
    CU_ASSERT_EQUAL(csl_metric_value(h, NULL), 0);
    char *got = render(reg);
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "c_total{a=\"1\",b=\"2\"} 1\n"));
    CU_ASSERT_PTR_NULL(strstr(got, "c_total{a=\"1\"}"));
    CU_ASSERT_PTR_NULL(strstr(got, "c_total{a=\"9\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "plain_total 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "h_count 0\n"));
    free(got);
    /* told once per family, not once per update */
    const char *log = log_text();
    CU_ASSERT_EQUAL(count_of(log, "c_total takes 2 label value(s)"), 1);
    CU_ASSERT_EQUAL(count_of(log, "plain_total takes 0 label value(s)"), 1);
    CU_ASSERT_EQUAL(count_of(log, "on counter c_total ignored"), 1);
    CU_ASSERT_EQUAL(count_of(log, "on histogram h ignored"), 1);
    csl_metrics_free(reg);
}

static void test_clear(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_metric *g = csl_metrics_gauge(reg, "instances", "By state.", CSL_LABELS("state"));
    csl_metric *one = csl_metrics_gauge(reg, "one", "No labels.", NULL);
    csl_metric_set(g, 3, CSL_LABELS("running"));
    csl_metric_set(g, 1, CSL_LABELS("pending"));
    csl_metric_set(one, 7, NULL);
    csl_metric_clear(g);
    csl_metric_clear(one);
    csl_metric_set(g, 4, CSL_LABELS("running"));
    char *got = render(reg);
    CU_ASSERT_STRING_EQUAL(got, "# HELP instances By state.\n"
                                "# TYPE instances gauge\n"
                                "instances{state=\"running\"} 4\n"
                                "# HELP one No labels.\n"
                                "# TYPE one gauge\n"
                                "one 0\n");
    free(got);
    csl_metrics_free(reg);
}

static void count_scrapes(csl_metrics *reg, void *ctx)
{
    csl_metric *g = ctx;
    csl_metric_add(g, 1, NULL);
}

static void test_collect_hook(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_metric *g = csl_metrics_gauge(reg, "scrapes", "Scrapes seen.", NULL);
    csl_metrics_on_collect(reg, count_scrapes, g);
    char *a = render(reg);
    char *b = render(reg);
    CU_ASSERT_EQUAL(sample(a, "scrapes "), 1);
    CU_ASSERT_EQUAL(sample(b, "scrapes "), 2);
    free(a);
    free(b);
    csl_metrics_free(reg);
}

static void test_process(void)
{
    csl_metrics *reg = csl_metrics_new();
    csl_metrics_register_process(reg);
    csl_metrics_register_process(reg); /* twice is harmless */
    /* burn a little CPU so the counter is likely above zero */
    volatile double x = 0;
    for (int i = 0; i < 20000000; i++) x += i;
    char *got = render(reg);
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "# TYPE process_cpu_seconds_total counter\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(got, "# TYPE process_resident_memory_bytes gauge\n"));
    CU_ASSERT(sample(got, "process_cpu_seconds_total ") >= 0);
    CU_ASSERT(sample(got, "process_resident_memory_bytes ") > 1e5);
    CU_ASSERT(sample(got, "process_virtual_memory_bytes ") >=
              sample(got, "process_resident_memory_bytes "));
    CU_ASSERT(sample(got, "process_open_fds ") >= 3); /* stdin, stdout, stderr */
    CU_ASSERT(sample(got, "process_max_fds ") >= sample(got, "process_open_fds "));
    double start = sample(got, "process_start_time_seconds ");
    double now = (double)time(NULL);
    CU_ASSERT(start > now - 86400 && start <= now + 5);
    /* each family once */
    const char *p = got;
    int n = 0;
    while ((p = strstr(p, "# TYPE process_open_fds "))) n++, p++;
    CU_ASSERT_EQUAL(n, 1);
    free(got);
    csl_metrics_free(reg);
}

static int suite_init(void)
{
    log_file = tmpfile();
    if (!log_file) return 1;
    csl_log_setup("test_metrics", CSL_LOG_WARN, CSL_LOG_TEXT, fileno(log_file));
    return 0;
}

static int suite_cleanup(void)
{
    csl_log_setup("test_metrics", CSL_LOG_WARN, CSL_LOG_TEXT, 2);
    fclose(log_file);
    return 0;
}

static CU_TestInfo tests[] = {
    {"exposition of each kind, exactly", test_exposition_exact},
    {"default buckets", test_default_buckets},
    {"label value escaping", test_escaping},
    {"number formatting", test_number_format},
    {"concurrent updates from 4 threads", test_concurrent},
    {"bad names and re-registration", test_bad_names},
    {"wrong label count and misuse ignored", test_wrong_use_ignored},
    {"clear", test_clear},
    {"collect hook", test_collect_hook},
    {"process metrics", test_process},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"metrics", suite_init, suite_cleanup, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
