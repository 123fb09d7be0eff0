/* test_runner_engine.c — the engine without a cluster: the command line,
 * the scheduling of exclusive scenarios, the order of try/catch/finally
 * and cleanup (operations stubbed through the engine's table), the exec
 * and sleep operations for real, kind → resource mapping and plain
 * progress output. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../testutil.h"
#include "../../scenarios/runner/engine_priv.h"
#include "../../scenarios/runner/progress.h"
#include "csl/clock.h"

/* ---------------------------------------------------------------- CLI */

static int parse(sr_cli *cli, char *err, size_t errsz, const char *const *args)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = "scenario-runner";
    for (size_t i = 0; args[i]; i++) argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    return sr_cli_parse(argc, argv, cli, err, errsz);
}

static void test_cli_run_flags(void)
{
    sr_cli cli;
    char err[512] = "";
    const char *a[] = {"run",   "--parallel", "4",          "--seed=42", "--time-scale", "10",
                       "--tag", "chaos",      "--run-id",   "r1",        "dir1",         "--keep",
                       "--break", "no-failover", "f.yaml", NULL};
    CU_ASSERT_EQUAL_FATAL(parse(&cli, err, sizeof err, a), 0);
    CU_ASSERT_EQUAL(cli.cmd, SR_CMD_RUN);
    CU_ASSERT_EQUAL(cli.run.parallel, 4);
    CU_ASSERT(cli.run.has_seed);
    CU_ASSERT_EQUAL(cli.run.seed, 42);
    CU_ASSERT_DOUBLE_EQUAL(cli.run.time_scale, 10, 1e-9);
    CU_ASSERT_STRING_EQUAL(cli.run.tag, "chaos");
    CU_ASSERT_STRING_EQUAL(cli.run.run_id, "r1");
    CU_ASSERT(cli.run.env.keep);
    CU_ASSERT(cli.run.env.local);
    CU_ASSERT_STRING_EQUAL(cli.run.env.break_mode, "no-failover");
    CU_ASSERT_EQUAL_FATAL(cli.n_paths, 2);
    CU_ASSERT_STRING_EQUAL(cli.paths[0], "dir1");
    CU_ASSERT_STRING_EQUAL(cli.paths[1], "f.yaml");
    sr_cli_free(&cli);
}

static void test_cli_kubeconfig_target(void)
{
    sr_cli cli;
    char err[512] = "";
    const char *a[] = {"run", "--kubeconfig", "kc", "--context", "kind-x", "--mockcloud-url",
                       "http://127.0.0.1:9", "--operator-selector", "app=op", "s.yaml", NULL};
    CU_ASSERT_EQUAL_FATAL(parse(&cli, err, sizeof err, a), 0);
    CU_ASSERT(!cli.run.env.local);
    CU_ASSERT_STRING_EQUAL(cli.run.env.kubeconfig, "kc");
    CU_ASSERT_STRING_EQUAL(cli.run.env.context, "kind-x");
    CU_ASSERT_STRING_EQUAL(cli.run.env.operator_selector, "app=op");
    sr_cli_free(&cli);
}

static void test_cli_other_commands(void)
{
    sr_cli cli;
    char err[512] = "";
    const char *c[] = {"compare", "--threshold", "5", "a", "b", NULL};
    CU_ASSERT_EQUAL_FATAL(parse(&cli, err, sizeof err, c), 0);
    CU_ASSERT_EQUAL(cli.cmd, SR_CMD_COMPARE);
    CU_ASSERT_DOUBLE_EQUAL(cli.threshold_pct, 5, 1e-9);
    sr_cli_free(&cli);
    const char *s[] = {"soak", "--duration", "2h", "--interval", "30s", "suite", NULL};
    CU_ASSERT_EQUAL_FATAL(parse(&cli, err, sizeof err, s), 0);
    CU_ASSERT_EQUAL(cli.cmd, SR_CMD_SOAK);
    CU_ASSERT_EQUAL(cli.duration_ns, 7200LL * 1000000000);
    CU_ASSERT_EQUAL(cli.interval_ns, 30LL * 1000000000);
    sr_cli_free(&cli);
    const char *h[] = {"validate", "--help", NULL};
    CU_ASSERT_EQUAL_FATAL(parse(&cli, err, sizeof err, h), 0);
    CU_ASSERT(cli.help);
    CU_ASSERT_EQUAL(cli.cmd, SR_CMD_VALIDATE);
    CU_ASSERT_PTR_NOT_NULL(strstr(sr_cli_usage(cli.cmd), "validate PATH"));
    sr_cli_free(&cli);
    const char *l[] = {"list", "x", NULL};
    CU_ASSERT_EQUAL_FATAL(parse(&cli, err, sizeof err, l), 0);
    CU_ASSERT_EQUAL(cli.cmd, SR_CMD_LIST);
    sr_cli_free(&cli);
}

/* Each bad command line and a word its message must contain. */
static void test_cli_errors(void)
{
    static const struct {
        const char *args[8];
        const char *says;
    } bad[] = {
        {{NULL}, "no command"},
        {{"frobnicate", "x", NULL}, "unknown command"},
        {{"run", NULL}, "at least one PATH"},
        {{"run", "--parallel", "0", "x", NULL}, "--parallel"},
        {{"run", "--parallel", NULL}, "needs a value"},
        {{"run", "--seed", "-3", "x", NULL}, "--seed"},
        {{"run", "--time-scale", "0.5", "x", NULL}, "--time-scale"},
        {{"run", "--bogus", "x", NULL}, "unknown option --bogus"},
        {{"run", "--kubeconfig", "k", "x", NULL}, "--mockcloud-url"},
        {{"run", "--local", "--kubeconfig", "k", "--mockcloud-url", "u", "x", NULL}, "cannot be combined"},
        {{"run", "--mockcloud-url", "u", "x", NULL}, "go with --kubeconfig"},
        {{"run", "--run-id", "a/b", "x", NULL}, "--run-id"},
        {{"soak", "x", NULL}, "--duration"},
        {{"soak", "--duration", "5x", "x", NULL}, "--duration"},
        {{"compare", "a", NULL}, "exactly two"},
        {{"compare", "--threshold", "abc", "a", "b", NULL}, "--threshold"},
        {{"validate", "--parallel", "2", "x", NULL}, "unknown option"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sr_cli cli;
        char err[512] = "";
        int rc = parse(&cli, err, sizeof err, bad[i].args);
        CU_ASSERT_EQUAL(rc, -1);
        if (!strstr(err, bad[i].says)) {
            fprintf(stderr, "case %zu: \"%s\" lacks \"%s\"\n", i, err, bad[i].says);
            CU_FAIL("message");
        }
        sr_cli_free(&cli);
    }
}

/* ---------------------------------------------------------------- scheduler */

typedef struct sched_probe {
    sr_sched *s;
    pthread_mutex_t mu;
    int running, max_running, max_beside_exclusive;
    bool exclusive_on;
    long order[16];
    int n_order;
} sched_probe;

static void *sched_worker(void *arg)
{
    sched_probe *p = arg;
    long i;
    while ((i = sr_sched_take(p->s)) >= 0) {
        pthread_mutex_lock(&p->mu);
        p->order[p->n_order++] = i;
        p->running++;
        if (p->running > p->max_running) p->max_running = p->running;
        if (p->s->exclusive[i]) p->exclusive_on = true;
        if (p->exclusive_on && p->running > p->max_beside_exclusive) p->max_beside_exclusive = p->running;
        pthread_mutex_unlock(&p->mu);
        csl_sleep_ns(20000000);
        pthread_mutex_lock(&p->mu);
        p->running--;
        if (p->s->exclusive[i]) p->exclusive_on = false;
        pthread_mutex_unlock(&p->mu);
        sr_sched_done(p->s, i);
    }
    return NULL;
}

static void test_sched_exclusive_alone(void)
{
    static const bool ex[] = {false, false, false, true, false, false, true, false};
    sr_sched s;
    sr_sched_init(&s, ex, 8, NULL);
    sched_probe p = {.s = &s};
    pthread_mutex_init(&p.mu, NULL);
    pthread_t t[3];
    for (int i = 0; i < 3; i++) pthread_create(&t[i], NULL, sched_worker, &p);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(p.n_order, 8);
    for (int i = 0; i < p.n_order; i++) CU_ASSERT_EQUAL(p.order[i], i); /* in order */
    CU_ASSERT(p.max_running >= 2);                 /* others did run side by side */
    CU_ASSERT_EQUAL(p.max_beside_exclusive, 1);    /* but never beside an exclusive one */
    pthread_mutex_destroy(&p.mu);
    sr_sched_destroy(&s);
}

static void test_sched_stop(void)
{
    static const bool ex[] = {false, false};
    volatile int stop = 0;
    sr_sched s;
    sr_sched_init(&s, ex, 2, &stop);
    CU_ASSERT_EQUAL(sr_sched_take(&s), 0);
    stop = 1;
    CU_ASSERT_EQUAL(sr_sched_take(&s), -1);
    sr_sched_done(&s, 0);
    sr_sched_destroy(&s);
}

/* ---------------------------------------------------------------- steps with stubs */

static char trace[512];

/* Every stub op's spec is {"id": "x", "fail": bool, "error": bool}. */
static void stub(sr_ctx *c, const sr_op *op, int64_t deadline_ns, sr_outcome *out)
{
    (void)deadline_ns;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(op->spec, "id");
    strncat(trace, id->valuestring, sizeof trace - strlen(trace) - 2);
    strcat(trace, " ");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(op->spec, "fail"))) {
        sr_outcome_fail(out, c, op, SR_FAIL, "%s failed", id->valuestring);
        csl_buf_printf(&out->diff, "x: expected 1, got 2\n");
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(op->spec, "interrupt"))) {
        static volatile int flag = 1;
        c->interrupted = &flag;
    }
}

static sr_op_fn stub_table[SR_OP_KIND_COUNT];

typedef struct fixture {
    cJSON *specs; /* owns every spec */
    sr_scenario sc;
    sr_step steps[4];
    sr_op ops[32];
    size_t n_ops;
} fixture;

static sr_op *mk_ops(fixture *f, const char *ids, size_t *n)
{
    /* ids: "a b! c" — '!' marks a failing op, '^' one that interrupts. */
    sr_op *first = &f->ops[f->n_ops];
    *n = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", ids);
    for (char *save, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        size_t l = strlen(t);
        bool fail = t[l - 1] == '!', intr = t[l - 1] == '^';
        if (fail || intr) t[l - 1] = 0;
        cJSON *spec = cJSON_CreateObject();
        cJSON_AddStringToObject(spec, "id", t);
        cJSON_AddBoolToObject(spec, "fail", fail);
        cJSON_AddBoolToObject(spec, "interrupt", intr);
        cJSON_AddItemToArray(f->specs, spec);
        sr_op *op = &f->ops[f->n_ops++];
        memset(op, 0, sizeof *op);
        op->kind = SR_OP_SLEEP;
        op->spec = spec;
        op->pos.line = 10 + (int)f->n_ops;
        (*n)++;
    }
    return *n ? first : NULL;
}

static void add_step(fixture *f, const char *name, const char *try_ids, const char *catch_ids,
                     const char *finally_ids, const char *cleanup_ids)
{
    sr_step *st = &f->steps[f->sc.n_steps++];
    memset(st, 0, sizeof *st);
    st->name = (char *)name;
    st->pos.line = (int)f->sc.n_steps * 100;
    st->timeout_ns = 30LL * 1000000000;
    st->try_ops = mk_ops(f, try_ids, &st->n_try);
    st->catch_ops = mk_ops(f, catch_ids, &st->n_catch);
    st->finally_ops = mk_ops(f, finally_ids, &st->n_finally);
    st->cleanup_ops = mk_ops(f, cleanup_ids, &st->n_cleanup);
}

static void fixture_init(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->specs = cJSON_CreateArray();
    f->sc.file = "t.yaml";
    f->sc.name = "stubbed";
    f->sc.steps = f->steps;
    f->sc.timeout_ns = 600LL * 1000000000;
    for (int k = 0; k < SR_OP_KIND_COUNT; k++) stub_table[k] = stub;
    trace[0] = 0;
}

static void ctx_for(sr_ctx *c, fixture *f, sr_scenario_result *res)
{
    memset(c, 0, sizeof *c);
    c->sc = &f->sc;
    c->res = res;
    c->time_scale = 1;
    c->ops = stub_table;
    c->run_id = "r";
    c->t0_ns = csl_mono_ns();
    sr_ctx_init(c);
}

static void test_try_catch_finally_order(void)
{
    fixture f;
    fixture_init(&f);
    add_step(&f, "one", "a b! c", "d", "e", "f1 f2");
    add_step(&f, "two", "g", "", "", "h");
    sr_run *run = sr_run_new("r", "local");
    sr_scenario_result *res = sr_run_add_scenario(run, "stubbed", "t.yaml");
    sr_ctx c;
    ctx_for(&c, &f, res);
    const sr_op **cl = NULL;
    size_t ncl = 0;
    int failed = sr_engine_run_steps(&c, csl_mono_ns() + 60LL * 1000000000, &cl, &ncl);
    CU_ASSERT_EQUAL(failed, 1);
    /* b fails: c is not run, catch then finally run; step two is skipped. */
    CU_ASSERT_STRING_EQUAL(trace, "a b d e ");
    CU_ASSERT_EQUAL_FATAL(res->n_steps, 2);
    CU_ASSERT_EQUAL(res->steps[0].status, SR_FAIL);
    CU_ASSERT_EQUAL(res->steps[0].line, 100);
    CU_ASSERT_PTR_NOT_NULL(strstr(res->steps[0].message, "t.yaml:"));
    CU_ASSERT_PTR_NOT_NULL(strstr(res->steps[0].message, "b failed"));
    CU_ASSERT_PTR_NOT_NULL(res->steps[0].diff);
    CU_ASSERT_PTR_NOT_NULL(strstr(res->steps[0].diff, "expected 1, got 2"));
    CU_ASSERT_EQUAL(res->steps[1].status, SR_SKIP);
    CU_ASSERT_PTR_NOT_NULL(strstr(res->steps[1].message, "earlier step failed"));
    /* Only the started step registered its cleanups; run last first. */
    CU_ASSERT_EQUAL(ncl, 2);
    trace[0] = 0;
    csl_buf m = CSL_BUF_INIT;
    CU_ASSERT_EQUAL(sr_engine_run_cleanups(&c, cl, ncl, &m), 0);
    CU_ASSERT_STRING_EQUAL(trace, "f2 f1 ");
    csl_buf_free(&m);
    free(cl);
    sr_ctx_free(&c);
    sr_run_free(run);
    cJSON_Delete(f.specs);
}

static void test_cleanup_reverse_and_finally_fails(void)
{
    fixture f;
    fixture_init(&f);
    add_step(&f, "one", "a", "never", "", "x1 x2");
    add_step(&f, "two", "b", "", "fin!", "y");
    add_step(&f, "three", "c", "", "", "");
    sr_run *run = sr_run_new("r", "local");
    sr_scenario_result *res = sr_run_add_scenario(run, "stubbed", "t.yaml");
    sr_ctx c;
    ctx_for(&c, &f, res);
    const sr_op **cl = NULL;
    size_t ncl = 0;
    CU_ASSERT_EQUAL(sr_engine_run_steps(&c, csl_mono_ns() + 60LL * 1000000000, &cl, &ncl), 1);
    /* catch does not run when try passed; a failing finally fails the step. */
    CU_ASSERT_STRING_EQUAL(trace, "a b fin ");
    CU_ASSERT_EQUAL(res->steps[0].status, SR_PASS);
    CU_ASSERT_PTR_NULL(res->steps[0].message);
    CU_ASSERT_EQUAL(res->steps[1].status, SR_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(res->steps[1].message, "finally: "));
    CU_ASSERT_EQUAL(res->steps[2].status, SR_SKIP);
    trace[0] = 0;
    csl_buf m = CSL_BUF_INIT;
    sr_engine_run_cleanups(&c, cl, ncl, &m);
    CU_ASSERT_STRING_EQUAL(trace, "y x2 x1 ");
    csl_buf_free(&m);
    free(cl);
    sr_ctx_free(&c);
    sr_run_free(run);
    cJSON_Delete(f.specs);
}

static void test_interrupt_and_deadline(void)
{
    fixture f;
    fixture_init(&f);
    add_step(&f, "one", "a^ b", "", "fin", "cl");
    add_step(&f, "two", "c", "", "", "");
    sr_run *run = sr_run_new("r", "local");
    sr_scenario_result *res = sr_run_add_scenario(run, "stubbed", "t.yaml");
    sr_ctx c;
    ctx_for(&c, &f, res);
    const sr_op **cl = NULL;
    size_t ncl = 0;
    sr_engine_run_steps(&c, csl_mono_ns() + 60LL * 1000000000, &cl, &ncl);
    /* After the interrupt b is refused, finally still is attempted (and
     * refused), two is skipped as interrupted; cleanup ignores the flag. */
    CU_ASSERT_STRING_EQUAL(trace, "a ");
    CU_ASSERT_EQUAL(res->steps[0].status, SR_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(res->steps[0].message, "interrupted"));
    CU_ASSERT_EQUAL(res->steps[1].status, SR_SKIP);
    CU_ASSERT_STRING_EQUAL(res->steps[1].message, "interrupted");
    trace[0] = 0;
    csl_buf m = CSL_BUF_INIT;
    CU_ASSERT_EQUAL(sr_engine_run_cleanups(&c, cl, ncl, &m), 0);
    CU_ASSERT_STRING_EQUAL(trace, "cl ");
    csl_buf_free(&m);
    free(cl);
    sr_ctx_free(&c);
    sr_run_free(run);

    /* A scenario deadline already past: nothing runs. */
    sr_run *run2 = sr_run_new("r", "local");
    res = sr_run_add_scenario(run2, "stubbed", "t.yaml");
    ctx_for(&c, &f, res);
    trace[0] = 0;
    cl = NULL;
    ncl = 0;
    sr_engine_run_steps(&c, csl_mono_ns() - 1, &cl, &ncl);
    CU_ASSERT_STRING_EQUAL(trace, "");
    CU_ASSERT_EQUAL(res->steps[0].status, SR_SKIP);
    CU_ASSERT_PTR_NOT_NULL(strstr(res->steps[0].message, "timeout"));
    CU_ASSERT_EQUAL(ncl, 0);
    free(cl);
    sr_ctx_free(&c);
    sr_run_free(run2);
    cJSON_Delete(f.specs);
}

/* ---------------------------------------------------------------- real exec / sleep */

static void run_exec(const char *json, int64_t timeout_ns, sr_outcome *o)
{
    fixture f;
    fixture_init(&f);
    sr_ctx c;
    ctx_for(&c, &f, NULL);
    c.ops = NULL;
    sr_op op = {.kind = SR_OP_EXEC, .pos = {7, 5}};
    cJSON *spec = cJSON_Parse(json);
    op.spec = spec;
    sr_outcome_init(o);
    sr_op_exec(&c, &op, csl_mono_ns() + timeout_ns, o);
    cJSON_Delete(spec);
    sr_ctx_free(&c);
    cJSON_Delete(f.specs);
}

static void test_exec(void)
{
    sr_outcome o;
    run_exec("{\"shell\":\"echo out-$CSL_SCENARIO-$X; exit 3\",\"exitCode\":3,\"env\":{\"X\":\"y\"}}",
             5000000000LL, &o);
    CU_ASSERT_EQUAL(o.status, SR_PASS);
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&o.output), "out-stubbed-y\n");
    sr_outcome_free(&o);

    run_exec("{\"command\":[\"sh\",\"-c\",\"echo bad >&2; exit 4\"]}", 5000000000LL, &o);
    CU_ASSERT_EQUAL(o.status, SR_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&o.msg), "t.yaml:7: exec: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&o.msg), "exited with 4, expected 0"));
    CU_ASSERT_STRING_EQUAL(csl_buf_str(&o.output), "bad\n");
    sr_outcome_free(&o);

    int64_t t0 = csl_mono_ns();
    run_exec("{\"shell\":\"sleep 30\"}", 300000000LL, &o);
    int64_t took = csl_mono_ns() - t0;
    CU_ASSERT_EQUAL(o.status, SR_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&o.msg), "killed"));
    CU_ASSERT(took < 3000000000LL);
    sr_outcome_free(&o);

    run_exec("{\"command\":[\"/nonexistent/prog\"]}", 5000000000LL, &o);
    CU_ASSERT_EQUAL(o.status, SR_FAIL);
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&o.output), "/nonexistent/prog"));
    sr_outcome_free(&o);
}

static void test_sleep_scaled_and_interrupted(void)
{
    fixture f;
    fixture_init(&f);
    sr_ctx c;
    ctx_for(&c, &f, NULL);
    c.time_scale = 10;
    cJSON *spec = cJSON_Parse("{\"duration\":\"2s\"}");
    sr_op op = {.kind = SR_OP_SLEEP, .spec = spec};
    sr_outcome o;
    sr_outcome_init(&o);
    int64_t t0 = csl_mono_ns();
    sr_op_sleep(&c, &op, 0, &o);
    int64_t took = csl_mono_ns() - t0;
    CU_ASSERT_EQUAL(o.status, SR_PASS);
    CU_ASSERT(took >= 190000000LL && took < 1000000000LL); /* 2 s of scenario time at ×10 */
    sr_outcome_free(&o);
    volatile int flag = 1;
    c.interrupted = &flag;
    sr_outcome_init(&o);
    sr_op_sleep(&c, &op, 0, &o);
    CU_ASSERT_EQUAL(o.status, SR_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(csl_buf_str(&o.msg), "interrupted"));
    sr_outcome_free(&o);
    cJSON_Delete(spec);
    sr_ctx_free(&c);
    cJSON_Delete(f.specs);
}

/* ---------------------------------------------------------------- kinds, progress */

static void test_kind_resource(void)
{
    sr_kres k;
    CU_ASSERT_EQUAL(sr_kind_resource("CloudServer", "cloudserver.dev/v1alpha1", &k), 0);
    CU_ASSERT_STRING_EQUAL(k.res.group, "cloudserver.dev");
    CU_ASSERT_STRING_EQUAL(k.res.version, "v1alpha1");
    CU_ASSERT_STRING_EQUAL(k.res.resource, "cloudservers");
    CU_ASSERT_EQUAL(sr_kind_resource("Event", NULL, &k), 0);
    CU_ASSERT_STRING_EQUAL(k.res.group, "events.k8s.io");
    CU_ASSERT_EQUAL(sr_kind_resource("Event", "v1", &k), 0);
    CU_ASSERT_STRING_EQUAL(k.res.group, "");
    CU_ASSERT_EQUAL(sr_kind_resource("Namespace", NULL, &k), 0);
    CU_ASSERT(!k.res.namespaced);
    CU_ASSERT_EQUAL(sr_kind_resource(NULL, NULL, &k), 0);
    CU_ASSERT_STRING_EQUAL(k.res.resource, "cloudservers");
    CU_ASSERT_EQUAL(sr_kind_resource("Widget", "example.com/v2", &k), 0);
    CU_ASSERT_STRING_EQUAL(k.res.group, "example.com");
    CU_ASSERT_STRING_EQUAL(k.res.resource, "widgets");
    CU_ASSERT_EQUAL(sr_kind_resource("Widget", NULL, &k), -1);
}

static void test_progress_plain(void)
{
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    sr_progress *p = sr_progress_new(f, false, 2);
    sr_progress_scenario_start(p, "smoke", "sr-smoke-ab12");
    sr_progress_step(p, "smoke", "create", SR_PASS, 1.25, NULL);
    sr_progress_step(p, "smoke", "ready", SR_FAIL, 30, "t.yaml:9: wait: not reached\nmore");
    sr_progress_scenario_end(p, "smoke", SR_FAIL, 31, "step \"ready\": not reached");
    sr_progress_done(p);
    sr_progress_free(p);
    rewind(f);
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "START smoke (namespace sr-smoke-ab12)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "  PASS  smoke / create (1.2s)\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "  FAIL  smoke / ready (30.0s): t.yaml:9: wait: not reached\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "not reached\n        more\n")); /* what was last seen */
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "FAIL  smoke (31.0s)"));
    CU_ASSERT_PTR_NULL(strstr(buf, "\033[K")); /* no terminal codes in plain mode */
}

static CU_TestInfo cli_tests[] = {
    {"run flags", test_cli_run_flags},
    {"kubeconfig target", test_cli_kubeconfig_target},
    {"compare, soak, validate --help, list", test_cli_other_commands},
    {"bad command lines", test_cli_errors},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo sched_tests[] = {
    {"exclusive scenarios run alone, in order", test_sched_exclusive_alone},
    {"stop ends taking", test_sched_stop},
    CU_TEST_INFO_NULL,
};
static CU_TestInfo step_tests[] = {
    {"try/catch/finally order and skips", test_try_catch_finally_order},
    {"cleanup last first; failing finally", test_cleanup_reverse_and_finally_fails},
    {"interrupt and scenario deadline", test_interrupt_and_deadline},
    {"exec: exit codes, output, timeout", test_exec},
    {"sleep: scaled and interrupted", test_sleep_scaled_and_interrupted},
    {"kind to resource", test_kind_resource},
    {"plain progress lines", test_progress_plain},
    CU_TEST_INFO_NULL,
};
static CU_SuiteInfo suites[] = {
    {"cli", NULL, NULL, NULL, NULL, cli_tests},
    {"scheduler", NULL, NULL, NULL, NULL, sched_tests},
    {"steps", NULL, NULL, NULL, NULL, step_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
