/* compare.c — two runs side by side: the gray-release gate.
 *
 * Every figure compared is lower-is-better (latencies, error rate,
 * recovery, CPU, memory, calls per object), so one rule fits all: B
 * regresses when it is worse than A by more than threshold percent AND by
 * more than the figure's absolute floor. The floor keeps noise at tiny
 * values (a 20 ms latency becoming 30 ms is +50% and means nothing) from
 * failing a release. A scenario that passed in A and fails in B is a
 * regression whatever its figures. The rules are documented in
 * docs/report.md; change both together. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_util.h"
#include "slo.h"

typedef enum fig_id {
    F_CTR_AVG,
    F_CTR_P50,
    F_CTR_P95,
    F_CTR_P99,
    F_ERROR_RATE,
    F_RECOVERY,
    F_CPU,
    F_RSS,
    F_CLOUD_CALLS,
    F_KUBE_WRITES,
    F_COUNT
} fig_id;

static const struct {
    const char *name;
    const char *unit; /* for sr_rpt_figure; "MiB" handled here */
    double floor;     /* absolute change below which nothing gates */
} FIGS[F_COUNT] = {
    [F_CTR_AVG] = {"createToReady.avg", "s", 0.050},
    [F_CTR_P50] = {"createToReady.p50", "s", 0.050},
    [F_CTR_P95] = {"createToReady.p95", "s", 0.050},
    [F_CTR_P99] = {"createToReady.p99", "s", 0.050},
    [F_ERROR_RATE] = {"reconcileErrorRate", "ratio", 0.01},
    [F_RECOVERY] = {"recoveryTime", "s", 1.0},
    [F_CPU] = {"operatorCPU", "cores", 0.05},
    [F_RSS] = {"operatorMemory", "MiB", 8.0},
    [F_CLOUD_CALLS] = {"apiCallsPerObject.cloud", "calls", 0.5},
    [F_KUBE_WRITES] = {"apiCallsPerObject.kubeWrites", "calls", 0.5},
};

/* Every figure of one scenario; NAN = not measured. */
static void figures(const sr_scenario_result *s, double out[F_COUNT])
{
    sr_stats st, rec;
    sr_stats_compute(s->ctr_s, s->n_ctr, &st);
    sr_stats_compute(s->recovery_s, s->n_recovery, &rec);
    out[F_CTR_AVG] = st.avg;
    out[F_CTR_P50] = st.p50;
    out[F_CTR_P95] = st.p95;
    out[F_CTR_P99] = st.p99;
    out[F_ERROR_RATE] =
        (s->reconciles > 0 && s->reconcile_errors >= 0) ? s->reconcile_errors / s->reconciles : NAN;
    out[F_RECOVERY] = rec.max;
    out[F_CPU] = s->cpu_peak_cores >= 0 ? s->cpu_peak_cores : NAN;
    out[F_RSS] = s->rss_peak_bytes >= 0 ? s->rss_peak_bytes / (1024.0 * 1024.0) : NAN;
    bool objs = s->objects_created > 0;
    out[F_CLOUD_CALLS] =
        objs && s->cloud_calls >= 0 ? s->cloud_calls / (double)s->objects_created : NAN;
    out[F_KUBE_WRITES] =
        objs && s->kube_writes >= 0 ? s->kube_writes / (double)s->objects_created : NAN;
}

/* ------------------------------------------------------------------ rows */

enum { C_SCENARIO, C_FIGURE, C_A, C_B, C_CHANGE, C_VERDICT, C_COLS };

typedef struct row {
    char *col[C_COLS];
    bool regression;
} row;

typedef struct table {
    row *rows;
    size_t n, cap;
    bool oom;
} table;

static void add_row(table *t, const char *scenario, const char *figure, const char *a,
                    const char *b, const char *change, const char *verdict, bool regression)
{
    if (t->oom) return;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        row *p = realloc(t->rows, cap * sizeof *p);
        if (!p) {
            t->oom = true;
            return;
        }
        t->rows = p;
        t->cap = cap;
    }
    const char *v[C_COLS] = {scenario, figure, a, b, change, verdict};
    row *r = &t->rows[t->n];
    r->regression = regression;
    for (int i = 0; i < C_COLS; i++) {
        r->col[i] = strdup(v[i] ? v[i] : "");
        if (!r->col[i]) {
            for (int k = 0; k < i; k++) free(r->col[k]);
            t->oom = true;
            return;
        }
    }
    t->n++;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++)
        for (int c = 0; c < C_COLS; c++) free(t->rows[i].col[c]);
    free(t->rows);
}

/* Display width of UTF-8 text: code points, which is right for the names
 * and figures printed here (no wide or combining characters expected). */
static size_t width(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void fmt_fig(char *out, size_t sz, double v, fig_id f)
{
    if (isnan(v))
        snprintf(out, sz, "n/a");
    else if (f == F_RSS)
        snprintf(out, sz, "%.1f MiB", v);
    else if (f == F_CPU)
        snprintf(out, sz, "%.3f cores", v);
    else
        sr_rpt_figure(out, sz, v, FIGS[f].unit);
}

/* One figure of one scenario in both runs: a row, and whether it regressed. */
static bool compare_figure(table *t, const char *scenario, fig_id f, double a, double b,
                           double threshold_pct)
{
    if (isnan(a) && isnan(b)) return false; /* measured in neither: no row */
    char sa[48], sb[48], change[48] = "";
    fmt_fig(sa, sizeof sa, a, f);
    fmt_fig(sb, sizeof sb, b, f);
    if (isnan(a) || isnan(b)) {
        add_row(t, scenario, FIGS[f].name, sa, sb, "", isnan(a) ? "new in B" : "not measured in B",
                false);
        return false;
    }
    double d = b - a;
    double rel = a > 0 ? d / a * 100 : (d > 0 ? INFINITY : d < 0 ? -INFINITY : 0);
    if (isinf(rel))
        snprintf(change, sizeof change, "%s from 0", d > 0 ? "up" : "down");
    else
        snprintf(change, sizeof change, "%+.1f%%", rel);
    const char *verdict = "ok";
    bool regression = false;
    if (d > FIGS[f].floor && rel > threshold_pct) {
        verdict = "REGRESSION";
        regression = true;
    } else if (-d > FIGS[f].floor && -rel > threshold_pct) {
        verdict = "improved";
    } else if (rel > threshold_pct) {
        verdict = "ok (under floor)";
    }
    add_row(t, scenario, FIGS[f].name, sa, sb, change, verdict, regression);
    return regression;
}

static const sr_scenario_result *find(const sr_run *r, const char *name)
{
    for (size_t i = 0; i < r->n_scenarios; i++)
        if (r->scenarios[i]->name && name && strcmp(r->scenarios[i]->name, name) == 0)
            return r->scenarios[i];
    return NULL;
}

static bool failed(sr_status st)
{
    return st == SR_FAIL || st == SR_ERROR;
}

/* --------------------------------------------------------------- output */

static void print_text(FILE *out, const table *t)
{
    static const char *heads[C_COLS] = {"scenario", "figure", "A", "B", "change", "verdict"};
    size_t w[C_COLS];
    for (int c = 0; c < C_COLS; c++) {
        w[c] = width(heads[c]);
        for (size_t i = 0; i < t->n; i++)
            if (width(t->rows[i].col[c]) > w[c]) w[c] = width(t->rows[i].col[c]);
    }
    /* Figures read best right-aligned; names and verdicts left. */
    static const bool right[C_COLS] = {false, false, true, true, true, false};
    for (size_t i = 0; i <= t->n + 1; i++) {
        for (int c = 0; c < C_COLS; c++) {
            const char *cell;
            char dash[128];
            if (i == 0)
                cell = heads[c];
            else if (i == 1) {
                size_t n = w[c] < sizeof dash - 1 ? w[c] : sizeof dash - 1;
                memset(dash, '-', n);
                dash[n] = '\0';
                cell = dash;
            } else
                cell = t->rows[i - 2].col[c];
            size_t pad = w[c] - width(cell);
            if (right[c]) fprintf(out, "%*s", (int)pad, "");
            fputs(cell, out);
            if (c + 1 < C_COLS) {
                if (!right[c]) fprintf(out, "%*s", (int)pad, "");
                fputs("  ", out);
            }
        }
        fputc('\n', out);
    }
}

static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if ((unsigned char)*s >= 0x20)
            fputc(*s, out);
    }
}

static void print_md(FILE *out, const table *t, const sr_run *a, const sr_run *b,
                     double threshold_pct, int regressions)
{
    fprintf(out, "## %s compare: ", regressions ? "❌" : "✅");
    md_cell(out, a->run_id ? a->run_id : "A");
    fputs(" → ", out);
    md_cell(out, b->run_id ? b->run_id : "B");
    fprintf(out, "\n\n%d regression%s (threshold %g%%, with absolute floors; docs/report.md)\n\n",
            regressions, regressions == 1 ? "" : "s", threshold_pct);
    fputs("| scenario | figure | A | B | change | verdict |\n|---|---|--:|--:|--:|---|\n", out);
    for (size_t i = 0; i < t->n; i++) {
        fputs("|", out);
        for (int c = 0; c < C_COLS; c++) {
            fputc(' ', out);
            bool bold = c == C_VERDICT && t->rows[i].regression;
            if (bold) fputs("**", out);
            md_cell(out, t->rows[i].col[c]);
            if (bold) fputs("**", out);
            fputs(" |", out);
        }
        fputc('\n', out);
    }
}

int sr_compare(const sr_run *a, const sr_run *b, double threshold_pct, FILE *out, FILE *md_out)
{
    if (!a || !b || !out || !(threshold_pct >= 0)) return -1;
    table t = {NULL, 0, 0, false};
    int regressions = 0;

    for (size_t i = 0; i < a->n_scenarios; i++) {
        const sr_scenario_result *sa = a->scenarios[i];
        const sr_scenario_result *sb = find(b, sa->name);
        if (!sb) {
            add_row(&t, sa->name, "scenario", sr_status_name(sa->status), "-", "", "only in A",
                    false);
            continue;
        }
        bool reg = !failed(sa->status) && sa->status != SR_SKIP && failed(sb->status);
        const char *verdict = reg                                         ? "REGRESSION"
                              : failed(sa->status) && !failed(sb->status) ? "fixed"
                              : failed(sb->status)                        ? "still failing"
                                                                          : "ok";
        add_row(&t, sa->name, "status", sr_status_name(sa->status), sr_status_name(sb->status), "",
                verdict, reg);
        regressions += reg;
        double fa[F_COUNT], fb[F_COUNT];
        figures(sa, fa);
        figures(sb, fb);
        for (int f = 0; f < F_COUNT; f++)
            regressions += compare_figure(&t, sa->name, (fig_id)f, fa[f], fb[f], threshold_pct);
    }
    for (size_t i = 0; i < b->n_scenarios; i++)
        if (!find(a, b->scenarios[i]->name))
            add_row(&t, b->scenarios[i]->name, "scenario", "-",
                    sr_status_name(b->scenarios[i]->status), "", "only in B", false);
    if (t.oom) {
        table_free(&t);
        return -1;
    }

    fputs("compare: A = ", out);
    fputs(a->run_id ? a->run_id : "?", out);
    fputs(" (baseline), B = ", out);
    fputs(b->run_id ? b->run_id : "?", out);
    fprintf(out,
            " (candidate)\nregression: B worse than A by more than %g%% and by more than the "
            "figure's floor (docs/report.md), or a scenario passing in A failing in B\n",
            threshold_pct);
    if (a->time_scale != b->time_scale)
        fprintf(out,
                "warning: the runs used different time scales (A %g, B %g); figures are "
                "scenario time\n",
                a->time_scale, b->time_scale);
    fputc('\n', out);
    print_text(out, &t);
    fputc('\n', out);
    if (regressions == 0) {
        fputs("result: no regression\n", out);
    } else {
        fprintf(out, "result: %d regression%s:", regressions, regressions == 1 ? "" : "s");
        for (size_t i = 0; i < t.n; i++)
            if (t.rows[i].regression)
                fprintf(out, " %s/%s", t.rows[i].col[C_SCENARIO], t.rows[i].col[C_FIGURE]);
        fputc('\n', out);
    }
    if (md_out) print_md(md_out, &t, a, b, threshold_pct, regressions);
    table_free(&t);
    return regressions;
}
