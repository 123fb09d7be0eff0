/* slo.c — SLO maths: nearest-rank percentiles, summary statistics, CPU
 * peaks from cumulative counters, and one verdict per threshold.
 *
 * The idea: a figure that was not measured is never judged. Totals below
 * zero and empty sample lists turn into SKIP checks that say why, so a
 * scenario that could not scrape the operator does not pass or fail its CPU
 * SLO by accident. Everything here is pure and runs on plain numbers. */
#include "slo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The window of the operatorCPU SLO (docs/scenarios.md: "peak of 5 s
 * windows of process_cpu_seconds_total"). */
#define CPU_WINDOW_S 5.0

/* ----------------------------------------------------------- percentiles */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A sorted copy of the finite-or-infinite (not NaN) values; *m its length.
 * NaN has no rank, so it is left out rather than poisoning the sort. */
static double *sorted_copy(const double *v, size_t n, size_t *m)
{
    *m = 0;
    double *c = malloc((n ? n : 1) * sizeof *c);
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i])) c[(*m)++] = v[i];
    qsort(c, *m, sizeof *c, cmp_double);
    return c;
}

/* Nearest rank on sorted s[0..m): the smallest value with at least q% of
 * the values ≤ it, i.e. s[ceil(q/100 × m) − 1], and s[0] for q = 0. */
static double rank_of(const double *s, size_t m, double q)
{
    if (q < 0) q = 0;
    if (q > 100) q = 100;
    double r = ceil(q / 100.0 * (double)m - 1e-9); /* 1e-9: 0.95 × 100 is 95.00000000000001 */
    size_t k = r < 1 ? 1 : (size_t)r;
    if (k > m) k = m;
    return s[k - 1];
}

double sr_percentile(const double *v, size_t n, double q)
{
    size_t m;
    double *s = sorted_copy(v, n, &m);
    double out = (s && m) ? rank_of(s, m, q) : NAN;
    free(s);
    return out;
}

void sr_stats_compute(const double *v, size_t n, sr_stats *out)
{
    size_t m = 0;
    double *s = sorted_copy(v, n, &m);
    out->n = s ? m : 0;
    if (!s || m == 0) {
        out->min = out->max = out->avg = out->p50 = out->p95 = out->p99 = NAN;
        free(s);
        return;
    }
    double sum = 0;
    for (size_t i = 0; i < m; i++) sum += s[i];
    out->min = s[0];
    out->max = s[m - 1];
    out->avg = sum / (double)m;
    out->p50 = rank_of(s, m, 50);
    out->p95 = rank_of(s, m, 95);
    out->p99 = rank_of(s, m, 99);
    free(s);
}

/* ------------------------------------------------------------------- CPU */

double sr_cpu_peak(const double *t, const double *cpu_seconds, size_t n, double window_s)
{
    if (n < 2) return -1;
    double peak = -1;
    size_t j = 0;
    for (size_t i = 1; i < n; i++) {
        /* The window ending at sample i starts at the latest sample at
         * least window_s before it; with less history than one window,
         * the first sample (a short run still gets a figure). */
        while (j + 1 < i && t[i] - t[j + 1] >= window_s) j++;
        double dt = t[i] - t[j];
        double dc = cpu_seconds[i] - cpu_seconds[j];
        /* A counter that went down was reset (the operator restarted):
         * that window says nothing. */
        if (dt <= 0 || dc < 0 || isnan(dc)) continue;
        double rate = dc / dt;
        if (rate > peak) peak = rate;
    }
    return peak;
}

/* The CPU peak from the samples' per-interval figures, for a monitor that
 * did not fill cpu_peak_cores: the per-interval rates are integrated back
 * into a cumulative counter and windowed like a scraped one. */
static double cpu_peak_from_samples(const sr_scenario_result *res)
{
    double *t = malloc((res->n_samples + 1) * sizeof *t);
    double *c = malloc((res->n_samples + 1) * sizeof *c);
    size_t m = 0;
    double peak = -1;
    if (!t || !c) goto out;
    for (size_t i = 0; i < res->n_samples; i++) {
        const sr_sample *s = &res->samples[i];
        if (!(s->cpu_cores >= 0)) continue;
        if (m == 0) {
            /* The first figure covers the interval before it, of unknown
             * length: it starts the counter but is not integrated. */
            t[0] = s->t_s;
            c[0] = 0;
            m = 1;
            continue;
        }
        double dt = s->t_s - t[m - 1];
        if (dt <= 0) continue;
        t[m] = s->t_s;
        c[m] = c[m - 1] + s->cpu_cores * dt;
        m++;
    }
    peak = sr_cpu_peak(t, c, m, CPU_WINDOW_S);
out:
    free(t);
    free(c);
    return peak;
}

static double rss_peak_from_samples(const sr_scenario_result *res)
{
    double peak = -1;
    for (size_t i = 0; i < res->n_samples; i++)
        if (res->samples[i].rss_bytes > peak) peak = res->samples[i].rss_bytes;
    return peak;
}

/* ---------------------------------------------------------------- verdicts */

/* Prints a figure of unit u for people: seconds as "1.23s", ratios as a
 * percentage, bytes in MiB. */
static void fmt_value(char *out, size_t sz, double v, const char *u)
{
    if (strcmp(u, "s") == 0) {
        if (v < 1)
            snprintf(out, sz, "%.0fms", v * 1000);
        else
            snprintf(out, sz, "%.3gs", v);
    } else if (strcmp(u, "ratio") == 0)
        snprintf(out, sz, "%.4g (%.2f%%)", v, v * 100);
    else if (strcmp(u, "%") == 0)
        snprintf(out, sz, "%.1f%%", v);
    else
        snprintf(out, sz, "%.3g %s", v, u);
}

/* Appends one check: pass when value ≤ threshold. what describes the
 * measurement for the failure message ("p95 of 12 create-to-Ready
 * latencies"). */
static void judge(sr_scenario_result *res, const char *name, double value, double threshold,
                  const char *unit, const char *what)
{
    sr_status st = value <= threshold ? SR_PASS : SR_FAIL;
    char msg[512] = "";
    if (st == SR_FAIL) {
        char v[64], th[64];
        fmt_value(v, sizeof v, value, unit);
        fmt_value(th, sizeof th, threshold, unit);
        snprintf(msg, sizeof msg, "%s: measured %s, threshold %s", what, v, th);
    }
    sr_result_add_check(res, SR_CHECK_SLO, name, st, value, threshold, unit,
                        st == SR_FAIL ? msg : NULL);
    /* The scenario's verdict is the engine's to settle (it prefers the
     * first failed step for the one-line message); this only judges. */
}

static void skip(sr_scenario_result *res, const char *name, double threshold, const char *unit,
                 const char *why)
{
    sr_result_add_check(res, SR_CHECK_SLO, name, SR_SKIP, NAN, threshold, unit, why);
}

static void eval_ctr(const sr_slos *slos, sr_scenario_result *res)
{
    const struct {
        const char *name, *label;
        double threshold;
    } figs[] = {
        {"createToReady.avg", "average", slos->ctr_avg_s},
        {"createToReady.p50", "p50", slos->ctr_p50_s},
        {"createToReady.p95", "p95", slos->ctr_p95_s},
        {"createToReady.p99", "p99", slos->ctr_p99_s},
    };
    sr_stats st;
    sr_stats_compute(res->ctr_s, res->n_ctr, &st);
    const double values[] = {st.avg, st.p50, st.p95, st.p99};
    for (size_t i = 0; i < sizeof figs / sizeof figs[0]; i++) {
        if (figs[i].threshold < 0) continue;
        if (st.n == 0) {
            skip(res, figs[i].name, figs[i].threshold, "s",
                 "no create-to-Ready latency was measured (no object created here became Ready)");
            continue;
        }
        char what[128];
        snprintf(what, sizeof what, "%s of %zu create-to-Ready latencies", figs[i].label, st.n);
        judge(res, figs[i].name, values[i], figs[i].threshold, "s", what);
    }
}

static void eval_error_rate(const sr_slos *slos, sr_scenario_result *res)
{
    const char *name = "reconcileErrorRate";
    if (slos->reconcile_error_rate < 0) return;
    if (res->reconciles < 0 || res->reconcile_errors < 0) {
        skip(res, name, slos->reconcile_error_rate, "ratio",
             "the operator's reconcile counters were not scraped");
        return;
    }
    if (res->reconciles == 0) {
        skip(res, name, slos->reconcile_error_rate, "ratio", "the operator ran no reconcile");
        return;
    }
    char what[128];
    snprintf(what, sizeof what, "%.0f errors in %.0f reconciles", res->reconcile_errors,
             res->reconciles);
    judge(res, name, res->reconcile_errors / res->reconciles, slos->reconcile_error_rate, "ratio",
          what);
}

static void eval_recovery(const sr_slos *slos, sr_scenario_result *res)
{
    if (slos->recovery_s < 0) return;
    sr_stats st;
    sr_stats_compute(res->recovery_s, res->n_recovery, &st);
    if (st.n == 0) {
        skip(res, "recoveryTime", slos->recovery_s, "s",
             "no recovery was measured (no fault was cleared)");
        return;
    }
    char what[128];
    snprintf(what, sizeof what, "longest of %zu recoveries", st.n);
    judge(res, "recoveryTime", st.max, slos->recovery_s, "s", what);
}

/* Resource SLOs: peak as a percentage of the stated limit. */
static void eval_resource(sr_scenario_result *res, const char *name, double peak, double limit,
                          double max_percent, const char *peak_unit, double unit_div)
{
    if (max_percent < 0) return;
    if (!(limit > 0)) {
        skip(res, name, max_percent, "%", "no limit was stated to take a percentage of");
        return;
    }
    if (!(peak >= 0)) {
        skip(res, name, max_percent, "%", "the operator's process metrics were not scraped");
        return;
    }
    char what[160];
    snprintf(what, sizeof what, "peak %.3g %s of a %.3g %s limit", peak / unit_div, peak_unit,
             limit / unit_div, peak_unit);
    judge(res, name, peak / limit * 100, max_percent, "%", what);
}

static void eval_calls(sr_scenario_result *res, const char *name, double calls, double threshold,
                       const char *what_calls)
{
    if (threshold < 0) return;
    if (calls < 0) {
        char why[128];
        snprintf(why, sizeof why, "%s were not counted", what_calls);
        skip(res, name, threshold, "calls", why);
        return;
    }
    if (res->objects_created <= 0) {
        skip(res, name, threshold, "calls", "no object was created to divide by");
        return;
    }
    char what[160];
    snprintf(what, sizeof what, "%.0f %s for %ld objects created", calls, what_calls,
             res->objects_created);
    judge(res, name, calls / (double)res->objects_created, threshold, "calls", what);
}

void sr_slo_evaluate(const sr_slos *slos, sr_scenario_result *res)
{
    if (!slos || !res) return;
    eval_ctr(slos, res);
    eval_error_rate(slos, res);
    eval_recovery(slos, res);

    double cpu = res->cpu_peak_cores >= 0 ? res->cpu_peak_cores : cpu_peak_from_samples(res);
    double rss = res->rss_peak_bytes >= 0 ? res->rss_peak_bytes : rss_peak_from_samples(res);
    eval_resource(res, "operatorCPU", cpu, slos->cpu_limit_cores, slos->cpu_max_percent, "cores",
                  1);
    eval_resource(res, "operatorMemory", rss, slos->mem_limit_bytes, slos->mem_max_percent, "MiB",
                  1024.0 * 1024.0);

    eval_calls(res, "apiCallsPerObject.cloud", res->cloud_calls, slos->cloud_calls_per_object,
               "cloud API calls");
    eval_calls(res, "apiCallsPerObject.kubeWrites", res->kube_writes, slos->kube_writes_per_object,
               "Kubernetes writes");
}
