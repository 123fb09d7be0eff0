/* test_runner_slo.c — the run result model and the SLO maths: appenders,
 * nearest-rank percentiles, CPU peaks from counters, and one verdict per
 * threshold (pass, fail with measured vs threshold, skip when unmeasured). */
#include "../testutil.h"

#include "../../scenarios/runner/result.h"
#include "../../scenarios/runner/slo.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* ------------------------------------------------------------ the model */

static void test_run_model(void)
{
    sr_run *r = sr_run_new("20260101-000000-abcd", "local");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT_STRING_EQUAL(r->run_id, "20260101-000000-abcd");
    CU_ASSERT_EQUAL(r->time_scale, 1);
    CU_ASSERT(r->runner_cpu_s < 0);
    CU_ASSERT_EQUAL(sr_run_status(r), SR_PASS); /* nothing ran, nothing failed */

    sr_scenario_result *s = sr_run_add_scenario(r, "smoke", "suites/smoke.yaml");
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(s->status, SR_PASS);
    CU_ASSERT(s->objects_created < 0 && s->cloud_calls < 0 && s->cpu_peak_cores < 0);

    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "step %d", i);
        sr_step_result *st = sr_result_add_step(s, name, "f.yaml", i + 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(st);
        CU_ASSERT_EQUAL(st->status, SR_PASS);
        CU_ASSERT_PTR_NULL(st->message);
    }
    CU_ASSERT_EQUAL(s->n_steps, 100);
    CU_ASSERT_STRING_EQUAL(s->steps[99].name, "step 99");
    CU_ASSERT_EQUAL(s->steps[42].line, 43);

    sr_set_str(&s->steps[3].message, "boom");
    sr_set_str(&s->steps[3].message, "second"); /* frees the first */
    CU_ASSERT_STRING_EQUAL(s->steps[3].message, "second");
    sr_set_str(&s->steps[3].message, NULL);
    CU_ASSERT_PTR_NULL(s->steps[3].message);

    CU_ASSERT_EQUAL(sr_result_count(s, "BackOff", 2), 0);
    CU_ASSERT_EQUAL(sr_result_count(s, "FailedCreate", 1), 0);
    CU_ASSERT_EQUAL(sr_result_count(s, "BackOff", 3), 0);
    CU_ASSERT_EQUAL(s->n_event_reasons, 2);
    CU_ASSERT_STRING_EQUAL(s->event_reasons[0].key, "BackOff");
    CU_ASSERT_EQUAL(s->event_reasons[0].n, 5);

    for (int i = 0; i < 1000; i++) CU_ASSERT_EQUAL(sr_result_add_ctr(s, i / 100.0), 0);
    CU_ASSERT_EQUAL(s->n_ctr, 1000);
    CU_ASSERT_DOUBLE_EQUAL(s->ctr_s[999], 9.99, 1e-12);
    sr_sample smp = {.t_s = 1, .objects = 3, .ready = 2, .cpu_cores = 0.1, .rss_bytes = 1e6};
    CU_ASSERT_EQUAL(sr_result_add_sample(s, &smp), 0);
    CU_ASSERT_EQUAL(s->samples[0].ready, 2);
    sr_timeline_event *e = sr_result_add_event(s, "outage", "503 on everything", 2, 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    CU_ASSERT_STRING_EQUAL(e->what, "503 on everything");
    CU_ASSERT_PTR_NOT_NULL(sr_result_add_check(s, SR_CHECK_INVARIANT, "noOrphans", SR_FAIL, 2, 0,
                                               "", "2 orphans: i-1, i-2"));
    CU_ASSERT_EQUAL(sr_result_add_recovery(s, 12.5), 0);

    sr_scenario_result *s2 = sr_run_add_scenario(r, "other", NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    s2->status = SR_ERROR;
    CU_ASSERT_EQUAL(sr_run_status(r), SR_ERROR);
    s->status = SR_FAIL;
    CU_ASSERT_EQUAL(sr_run_status(r), SR_FAIL);
    s->status = SR_SKIP;
    s2->status = SR_PASS;
    CU_ASSERT_EQUAL(sr_run_status(r), SR_PASS); /* skipped ones aside */

    CU_ASSERT_STRING_EQUAL(sr_status_name(SR_PASS), "pass");
    CU_ASSERT_STRING_EQUAL(sr_status_name(SR_FAIL), "fail");
    CU_ASSERT_STRING_EQUAL(sr_status_name(SR_ERROR), "error");
    CU_ASSERT_STRING_EQUAL(sr_status_name(SR_SKIP), "skip");
    sr_run_free(r); /* ASan's leak check proves everything went */
    sr_run_free(NULL);
}

/* An array built with plain malloc by another part still grows safely. */
static void test_append_to_foreign_array(void)
{
    sr_run *r = sr_run_new("x", "local");
    sr_scenario_result *s = sr_run_add_scenario(r, "s", "f");
    s->ctr_s = malloc(3 * sizeof *s->ctr_s);
    for (int i = 0; i < 3; i++) s->ctr_s[i] = i;
    s->n_ctr = 3;
    for (int i = 3; i < 50; i++) CU_ASSERT_EQUAL(sr_result_add_ctr(s, i), 0);
    CU_ASSERT_EQUAL(s->n_ctr, 50);
    for (int i = 0; i < 50; i++) CU_ASSERT_EQUAL(s->ctr_s[i], i);
    sr_run_free(r);
}

static sr_run *shared_run;

static void *add_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        sr_scenario_result *s = sr_run_add_scenario(shared_run, "t", "f");
        if (s) sr_result_add_ctr(s, 1);
    }
    return NULL;
}

static void test_add_scenario_threads(void)
{
    shared_run = sr_run_new("x", "local");
    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, add_many, NULL);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(shared_run->n_scenarios, 800);
    for (size_t i = 0; i < shared_run->n_scenarios; i++)
        CU_ASSERT_EQUAL(shared_run->scenarios[i]->n_ctr, 1);
    sr_run_free(shared_run);
}

/* ----------------------------------------------------------- percentiles */

static void test_percentile_nearest_rank(void)
{
    /* The textbook example of the nearest-rank method. */
    const double v[] = {35, 20, 15, 50, 40};
    CU_ASSERT_EQUAL(sr_percentile(v, 5, 5), 15);
    CU_ASSERT_EQUAL(sr_percentile(v, 5, 30), 20);
    CU_ASSERT_EQUAL(sr_percentile(v, 5, 40), 20);
    CU_ASSERT_EQUAL(sr_percentile(v, 5, 50), 35);
    CU_ASSERT_EQUAL(sr_percentile(v, 5, 100), 50);
    CU_ASSERT_EQUAL(sr_percentile(v, 5, 0), 15);
    CU_ASSERT_EQUAL(v[0], 35); /* input untouched */
    CU_ASSERT_EQUAL(v[3], 50);

    double h[100];
    for (int i = 0; i < 100; i++) h[i] = 100 - i; /* 100..1, unsorted */
    CU_ASSERT_EQUAL(sr_percentile(h, 100, 95), 95);
    CU_ASSERT_EQUAL(sr_percentile(h, 100, 99), 99);
    CU_ASSERT_EQUAL(sr_percentile(h, 100, 50), 50);
    CU_ASSERT_EQUAL(sr_percentile(h, 100, 99.5), 100);

    CU_ASSERT(isnan(sr_percentile(NULL, 0, 50)));
    const double one[] = {7.5};
    CU_ASSERT_EQUAL(sr_percentile(one, 1, 1), 7.5);
    CU_ASSERT_EQUAL(sr_percentile(one, 1, 99), 7.5);
    /* NaN has no rank and is left out. */
    const double withnan[] = {NAN, 1, 2, NAN};
    CU_ASSERT_EQUAL(sr_percentile(withnan, 4, 100), 2);
}

static void test_stats(void)
{
    double v[20];
    for (int i = 0; i < 20; i++) v[i] = (i + 1) * 0.5; /* 0.5 .. 10 */
    sr_stats st;
    sr_stats_compute(v, 20, &st);
    CU_ASSERT_EQUAL(st.n, 20);
    CU_ASSERT_EQUAL(st.min, 0.5);
    CU_ASSERT_EQUAL(st.max, 10);
    CU_ASSERT_DOUBLE_EQUAL(st.avg, 5.25, 1e-12);
    CU_ASSERT_EQUAL(st.p50, 5);   /* rank 10 */
    CU_ASSERT_EQUAL(st.p95, 9.5); /* rank 19 */
    CU_ASSERT_EQUAL(st.p99, 10);  /* rank 20 */

    sr_stats_compute(NULL, 0, &st);
    CU_ASSERT_EQUAL(st.n, 0);
    CU_ASSERT(isnan(st.avg) && isnan(st.p95) && isnan(st.min) && isnan(st.max));
}

/* -------------------------------------------------------------------- CPU */

static void test_cpu_peak(void)
{
    /* A steady half core for 20 s. */
    double t[21], c[21];
    for (int i = 0; i <= 20; i++) {
        t[i] = i;
        c[i] = 0.5 * i;
    }
    CU_ASSERT_DOUBLE_EQUAL(sr_cpu_peak(t, c, 21, 5), 0.5, 1e-9);

    /* A 5-second burst of 2 cores at t = 10..15 within 0.1 cores elsewhere:
     * the peak over 5 s windows is the burst, and over 10 s windows half of
     * it plus half the background. */
    double acc = 0;
    for (int i = 0; i <= 20; i++) {
        if (i > 0) acc += (i > 10 && i <= 15) ? 2.0 : 0.1;
        c[i] = acc;
    }
    CU_ASSERT_DOUBLE_EQUAL(sr_cpu_peak(t, c, 21, 5), 2.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(sr_cpu_peak(t, c, 21, 10), 1.05, 1e-9);

    /* A counter reset (operator restarted) is not a negative rate and does
     * not hide the rest. */
    const double tr[] = {0, 5, 10, 15, 20};
    const double cr[] = {0, 1, 0.1, 1.1, 2.1}; /* 0.2 cores, restart, 0.2 cores */
    CU_ASSERT_DOUBLE_EQUAL(sr_cpu_peak(tr, cr, 5, 5), 0.2, 1e-9);

    /* Less than a window of history: the whole span. */
    const double ts[] = {0, 1, 2};
    const double cs[] = {0, 0.3, 0.6};
    CU_ASSERT_DOUBLE_EQUAL(sr_cpu_peak(ts, cs, 3, 5), 0.3, 1e-9);

    CU_ASSERT(sr_cpu_peak(ts, cs, 1, 5) < 0); /* not measurable */
    CU_ASSERT(sr_cpu_peak(NULL, NULL, 0, 5) < 0);
}

/* ------------------------------------------------------------- verdicts */

static sr_slos no_slos(void)
{
    sr_slos s;
    s.ctr_avg_s = s.ctr_p50_s = s.ctr_p95_s = s.ctr_p99_s = -1;
    s.reconcile_error_rate = -1;
    s.recovery_s = -1;
    s.cpu_limit_cores = s.cpu_max_percent = -1;
    s.mem_limit_bytes = s.mem_max_percent = -1;
    s.cloud_calls_per_object = s.kube_writes_per_object = -1;
    return s;
}

static const sr_check_result *check(const sr_scenario_result *s, const char *name)
{
    for (size_t i = 0; i < s->n_checks; i++)
        if (strcmp(s->checks[i].name, name) == 0) return &s->checks[i];
    return NULL;
}

static void test_slo_none_set(void)
{
    sr_run *r = sr_run_new("x", "local");
    sr_scenario_result *s = sr_run_add_scenario(r, "s", "f");
    sr_result_add_ctr(s, 100);
    sr_slos slos = no_slos();
    sr_slo_evaluate(&slos, s);
    CU_ASSERT_EQUAL(s->n_checks, 0);
    CU_ASSERT_EQUAL(s->status, SR_PASS);
    sr_run_free(r);
}

static void test_slo_create_to_ready(void)
{
    sr_run *r = sr_run_new("x", "local");
    sr_scenario_result *s = sr_run_add_scenario(r, "s", "f");
    for (int i = 1; i <= 20; i++) sr_result_add_ctr(s, i); /* 1..20 s */
    sr_slos slos = no_slos();
    slos.ctr_avg_s = 11; /* avg 10.5: pass */
    slos.ctr_p50_s = 10; /* p50 10: pass (≤) */
    slos.ctr_p95_s = 18; /* p95 19: fail */
    slos.ctr_p99_s = 25; /* p99 20: pass */
    sr_slo_evaluate(&slos, s);
    CU_ASSERT_EQUAL(s->n_checks, 4);
    const sr_check_result *c = check(s, "createToReady.avg");
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(c->kind, SR_CHECK_SLO);
    CU_ASSERT_EQUAL(c->status, SR_PASS);
    CU_ASSERT_DOUBLE_EQUAL(c->value, 10.5, 1e-12);
    CU_ASSERT_STRING_EQUAL(c->unit, "s");
    CU_ASSERT_EQUAL(check(s, "createToReady.p50")->status, SR_PASS);
    c = check(s, "createToReady.p95");
    CU_ASSERT_EQUAL(c->status, SR_FAIL);
    CU_ASSERT_EQUAL(c->value, 19);
    CU_ASSERT_EQUAL(c->threshold, 18);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c->message);
    CU_ASSERT_PTR_NOT_NULL(strstr(c->message, "19s"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->message, "18s"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->message, "p95"));
    CU_ASSERT_EQUAL(check(s, "createToReady.p99")->status, SR_PASS);
    /* Judging only: the scenario's verdict is the engine's to settle. */
    CU_ASSERT_EQUAL(s->status, SR_PASS);
    CU_ASSERT_PTR_NULL(s->message);
    sr_run_free(r);
}

static void test_slo_skips_when_unmeasured(void)
{
    sr_run *r = sr_run_new("x", "local");
    sr_scenario_result *s = sr_run_add_scenario(r, "s", "f");
    sr_slos slos = no_slos();
    slos.ctr_p95_s = 10;
    slos.reconcile_error_rate = 0.05;
    slos.recovery_s = 60;
    slos.cpu_limit_cores = 0.5;
    slos.cpu_max_percent = 60;
    slos.mem_limit_bytes = 128.0 * 1024 * 1024;
    slos.mem_max_percent = 60;
    slos.cloud_calls_per_object = 12;
    slos.kube_writes_per_object = 4;
    sr_slo_evaluate(&slos, s);
    CU_ASSERT_EQUAL(s->n_checks, 7);
    for (size_t i = 0; i < s->n_checks; i++) {
        CU_ASSERT_EQUAL(s->checks[i].status, SR_SKIP);
        CU_ASSERT_PTR_NOT_NULL(s->checks[i].message); /* says why */
        CU_ASSERT(isnan(s->checks[i].value));
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(check(s, "recoveryTime")->message, "no fault"));

    /* Counted but zero: still nothing to divide by. */
    sr_scenario_result *z = sr_run_add_scenario(r, "z", "f");
    z->reconciles = 0;
    z->reconcile_errors = 0;
    z->cloud_calls = 10;
    z->objects_created = 0;
    sr_slo_evaluate(&slos, z);
    CU_ASSERT_EQUAL(check(z, "reconcileErrorRate")->status, SR_SKIP);
    CU_ASSERT_EQUAL(check(z, "apiCallsPerObject.cloud")->status, SR_SKIP);
    sr_run_free(r);
}

static void test_slo_rates_and_resources(void)
{
    sr_run *r = sr_run_new("x", "local");
    sr_scenario_result *s = sr_run_add_scenario(r, "s", "f");
    s->reconciles = 200;
    s->reconcile_errors = 12; /* 6% */
    sr_result_add_recovery(s, 20);
    sr_result_add_recovery(s, 45.5);
    s->cpu_peak_cores = 0.35;               /* 70% of 500m */
    s->rss_peak_bytes = 64.0 * 1024 * 1024; /* 50% of 128Mi */
    s->objects_created = 10;
    s->cloud_calls = 100; /* 10 per object */
    s->kube_writes = 50;  /* 5 per object */
    sr_slos slos = no_slos();
    slos.reconcile_error_rate = 0.05;
    slos.recovery_s = 60;
    slos.cpu_limit_cores = 0.5;
    slos.cpu_max_percent = 60;
    slos.mem_limit_bytes = 128.0 * 1024 * 1024;
    slos.mem_max_percent = 60;
    slos.cloud_calls_per_object = 12;
    slos.kube_writes_per_object = 4;
    sr_slo_evaluate(&slos, s);

    const sr_check_result *c = check(s, "reconcileErrorRate");
    CU_ASSERT_EQUAL(c->status, SR_FAIL);
    CU_ASSERT_DOUBLE_EQUAL(c->value, 0.06, 1e-12);
    CU_ASSERT_STRING_EQUAL(c->unit, "ratio");
    CU_ASSERT_PTR_NOT_NULL(strstr(c->message, "12 errors in 200 reconciles"));

    c = check(s, "recoveryTime");
    CU_ASSERT_EQUAL(c->status, SR_PASS);
    CU_ASSERT_EQUAL(c->value, 45.5); /* the longest */

    c = check(s, "operatorCPU");
    CU_ASSERT_EQUAL(c->status, SR_FAIL);
    CU_ASSERT_DOUBLE_EQUAL(c->value, 70, 1e-9);
    CU_ASSERT_EQUAL(c->threshold, 60);
    CU_ASSERT_STRING_EQUAL(c->unit, "%");
    CU_ASSERT_PTR_NOT_NULL(strstr(c->message, "70.0%"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c->message, "60.0%"));

    c = check(s, "operatorMemory");
    CU_ASSERT_EQUAL(c->status, SR_PASS);
    CU_ASSERT_DOUBLE_EQUAL(c->value, 50, 1e-9);

    c = check(s, "apiCallsPerObject.cloud");
    CU_ASSERT_EQUAL(c->status, SR_PASS);
    CU_ASSERT_DOUBLE_EQUAL(c->value, 10, 1e-12);
    c = check(s, "apiCallsPerObject.kubeWrites");
    CU_ASSERT_EQUAL(c->status, SR_FAIL);
    CU_ASSERT_DOUBLE_EQUAL(c->value, 5, 1e-12);

    sr_run_free(r);
}

/* Without a monitor-filled peak, CPU and RSS come from the samples. */
static void test_slo_resources_from_samples(void)
{
    sr_run *r = sr_run_new("x", "local");
    sr_scenario_result *s = sr_run_add_scenario(r, "s", "f");
    for (int i = 0; i <= 30; i++) {
        sr_sample smp = {.t_s = i,
                         .objects = 1,
                         .ready = 1,
                         .cpu_cores = (i > 10 && i <= 15) ? 0.4 : 0.05,
                         .rss_bytes = i == 20 ? 100e6 : 50e6};
        sr_result_add_sample(s, &smp);
    }
    sr_slos slos = no_slos();
    slos.cpu_limit_cores = 1;
    slos.cpu_max_percent = 60;
    slos.mem_limit_bytes = 200e6;
    slos.mem_max_percent = 60;
    sr_slo_evaluate(&slos, s);
    CU_ASSERT_DOUBLE_EQUAL(check(s, "operatorCPU")->value, 40, 1e-6);
    CU_ASSERT_EQUAL(check(s, "operatorCPU")->status, SR_PASS);
    CU_ASSERT_DOUBLE_EQUAL(check(s, "operatorMemory")->value, 50, 1e-9);
    sr_run_free(r);
}

static CU_TestInfo model_tests[] = {
    {"run model", test_run_model},
    {"append to a foreign array", test_append_to_foreign_array},
    {"add scenarios from threads", test_add_scenario_threads},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo maths_tests[] = {
    {"percentile nearest rank", test_percentile_nearest_rank},
    {"stats", test_stats},
    {"cpu peak", test_cpu_peak},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo verdict_tests[] = {
    {"no threshold, no check", test_slo_none_set},
    {"create to ready", test_slo_create_to_ready},
    {"skip when unmeasured", test_slo_skips_when_unmeasured},
    {"rates and resources", test_slo_rates_and_resources},
    {"resources from samples", test_slo_resources_from_samples},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"result model", NULL, NULL, NULL, NULL, model_tests},
    {"slo maths", NULL, NULL, NULL, NULL, maths_tests},
    {"slo verdicts", NULL, NULL, NULL, NULL, verdict_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
