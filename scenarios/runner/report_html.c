/* report_html.c — report.html: the run for a person, in one file.
 *
 * Self-contained on purpose: inline CSS and inline SVG charts, no script,
 * no font, no network, so the file can be attached to a ticket or opened
 * from a CI artifact years later and look the same. The markup is also
 * well-formed XML (void elements self-closed), which lets the tests check
 * its structure with the same small checker as junit.xml. Every string
 * from the run goes through sr_rpt_escape. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "csl/clock.h"
#include "report_util.h"
#include "slo.h"

#define MAX_TIMELINE_ROWS 24
#define MAX_REASONS 10

static const char CSS[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
    "color:#1d2330;background:#f4f5f7}"
    "header{padding:18px 28px;color:#fff}"
    "header h1{margin:0;font-size:22px}header p{margin:4px 0 0}"
    ".v-pass{background:#1f7a3f}.v-fail{background:#b42318}.v-error{background:#b54708}"
    ".v-skip{background:#667085}"
    "main{padding:8px 28px 40px;max-width:1280px}"
    "h2{font-size:18px;margin:22px 0 6px}h3{font-size:15px;margin:16px 0 4px}"
    "table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 14px}"
    "th,td{border-bottom:1px solid #e3e6ea;padding:5px 8px;text-align:left;vertical-align:top}"
    "th{background:#eef0f3;font-weight:600}td a{white-space:nowrap}"
    "table.facts{width:auto}table.facts th{background:none;font-weight:600;padding-right:18px}"
    ".num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".badge{display:inline-block;min-width:38px;text-align:center;padding:1px 8px;"
    "border-radius:10px;font-size:12px;font-weight:600;color:#fff}"
    ".b-pass{background:#1f7a3f}.b-fail{background:#b42318}.b-error{background:#b54708}"
    ".b-skip{background:#667085}"
    "pre{background:#101828;color:#e4e7ec;padding:8px 10px;margin:4px 0;overflow:auto;"
    "max-height:380px;white-space:pre-wrap;word-break:break-word;font-size:12.5px}"
    "section.scenario{background:#fff;border:1px solid #dfe2e6;border-radius:6px;"
    "padding:6px 18px 12px;margin:18px 0}"
    ".note{color:#475467}.muted{color:#98a2b3}"
    ".bar{display:inline-block;height:10px;background:#b42318;border-radius:2px}"
    "svg{background:#fff;max-width:100%;height:auto}svg text{font:11px sans-serif;fill:#344054}"
    "details summary{cursor:pointer;color:#475467}";

/* ------------------------------------------------------------- helpers */

static void esc(FILE *out, const char *s)
{
    sr_rpt_escape(out, s, false);
}

static void badge(FILE *out, sr_status st)
{
    fprintf(out, "<span class=\"badge b-%s\">%s</span>", sr_status_name(st), sr_status_name(st));
}

static void td_seconds(FILE *out, double s)
{
    char tmp[64];
    sr_rpt_seconds(tmp, sizeof tmp, s);
    fprintf(out, "<td class=\"num\">%s</td>", tmp);
}

/* A sentence on time acceleration, or nothing at scale 1. */
static void time_scale_note(FILE *out, double scale, const char *who)
{
    if (!(scale > 0) || scale == 1) return;
    fprintf(out,
            "<p class=\"note\">%s ran under libfaketime at %g&#215; speed. Durations, latencies "
            "and times in this report are scenario time: real time &#215; %g.</p>\n",
            who, scale, scale);
}

/* ------------------------------------------------------------ run facts */

static void header(FILE *out, const sr_run *r)
{
    sr_status st = sr_run_status(r);
    size_t counts[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < r->n_scenarios; i++) counts[r->scenarios[i]->status]++;
    const char *verdict = st == SR_PASS ? "PASS" : st == SR_FAIL ? "FAIL" : "ERROR";
    fprintf(out, "<header class=\"v-%s\"><h1>%s &#8212; scenario-runner run ", sr_status_name(st),
            verdict);
    esc(out, r->run_id);
    fprintf(out,
            "</h1><p>%zu scenario%s: %zu passed, %zu failed, %zu errors, %zu skipped</p>"
            "</header>\n",
            r->n_scenarios, r->n_scenarios == 1 ? "" : "s", counts[SR_PASS], counts[SR_FAIL],
            counts[SR_ERROR], counts[SR_SKIP]);
}

static void facts(FILE *out, const sr_run *r)
{
    char when[CSL_RFC3339_LEN], dur[64];
    csl_rfc3339_s(r->start_ms, when);
    sr_rpt_seconds(dur, sizeof dur, r->duration_s);
    fputs("<h2>Run</h2>\n<table class=\"facts\">\n<tr><th>run id</th><td>", out);
    esc(out, r->run_id);
    fputs("</td></tr>\n<tr><th>target</th><td>", out);
    esc(out, r->target);
    fprintf(out, "</td></tr>\n<tr><th>seed</th><td>%llu</td></tr>\n", (unsigned long long)r->seed);
    fprintf(out, "<tr><th>time scale</th><td>%g</td></tr>\n", r->time_scale);
    fprintf(out, "<tr><th>started</th><td>%s</td></tr>\n", when);
    fprintf(out, "<tr><th>duration (real)</th><td>%s</td></tr>\n", dur);
    fprintf(out, "<tr><th>parallel</th><td>%d</td></tr>\n", r->parallel);
    if (r->runner_cpu_s >= 0)
        fprintf(out, "<tr><th>runner CPU</th><td>%.2fs</td></tr>\n", r->runner_cpu_s);
    if (r->break_mode) {
        fputs("<tr><th>operator break mode</th><td>", out);
        esc(out, r->break_mode);
        fputs(" (a deliberately broken operator: failures are expected)</td></tr>\n", out);
    }
    if (r->runner_version) {
        fputs("<tr><th>runner version</th><td>", out);
        esc(out, r->runner_version);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
    time_scale_note(out, r->time_scale, "The operator");
}

static size_t failing_checks(const sr_scenario_result *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_checks; i++)
        if (s->checks[i].status == SR_FAIL || s->checks[i].status == SR_ERROR) n++;
    return n;
}

static void overview(FILE *out, const sr_run *r)
{
    fputs("<h2>Scenarios</h2>\n", out);
    if (r->n_scenarios == 0) {
        fputs("<p class=\"note\">No scenario ran.</p>\n", out);
        return;
    }
    fputs("<table>\n<tr><th>scenario</th><th>status</th><th class=\"num\">duration</th>"
          "<th class=\"num\">steps passed</th><th class=\"num\">checks failed</th>"
          "<th class=\"num\">create-to-Ready p95</th><th>first failure</th></tr>\n",
          out);
    for (size_t i = 0; i < r->n_scenarios; i++) {
        const sr_scenario_result *s = r->scenarios[i];
        size_t passed = 0;
        for (size_t k = 0; k < s->n_steps; k++) passed += s->steps[k].status == SR_PASS;
        fprintf(out, "<tr><td><a href=\"#sc-%zu\">", i);
        esc(out, s->name);
        fputs("</a></td><td>", out);
        badge(out, s->status);
        fputs("</td>", out);
        td_seconds(out, s->duration_s);
        fprintf(out, "<td class=\"num\">%zu / %zu</td><td class=\"num\">%zu</td>", passed,
                s->n_steps, failing_checks(s));
        td_seconds(out, s->n_ctr ? sr_percentile(s->ctr_s, s->n_ctr, 95) : NAN);
        char line[400];
        sr_rpt_first_line(line, sizeof line, s->message, 200);
        fputs("<td>", out);
        esc(out, line);
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* ---------------------------------------------------- scenario sections */

static void steps_table(FILE *out, const sr_scenario_result *s)
{
    fputs("<h3>Steps</h3>\n", out);
    if (s->n_steps == 0) {
        fputs("<p class=\"muted\">No step ran.</p>\n", out);
        return;
    }
    fputs("<table>\n<tr><th class=\"num\">#</th><th>step</th><th>status</th>"
          "<th class=\"num\">start</th><th class=\"num\">duration</th><th>where</th>"
          "<th>message</th></tr>\n",
          out);
    for (size_t i = 0; i < s->n_steps; i++) {
        const sr_step_result *st = &s->steps[i];
        fprintf(out, "<tr><td class=\"num\">%zu</td><td>", i + 1);
        esc(out, st->name);
        fputs("</td><td>", out);
        badge(out, st->status);
        fputs("</td>", out);
        td_seconds(out, st->status == SR_SKIP ? NAN : st->start_s);
        td_seconds(out, st->status == SR_SKIP ? NAN : st->duration_s);
        fputs("<td>", out);
        if (st->file && *st->file) {
            esc(out, st->file);
            fprintf(out, ":%d", st->line);
        }
        fputs("</td><td>", out);
        esc(out, st->message);
        if (st->diff && *st->diff) {
            fputs("<pre>", out);
            esc(out, st->diff);
            fputs("</pre>", out);
        }
        if (st->output && *st->output) {
            fputs("<details><summary>output</summary><pre>", out);
            esc(out, st->output);
            fputs("</pre></details>", out);
        }
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
}

static void checks_table(FILE *out, const sr_scenario_result *s, sr_check_kind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_checks; i++) n += s->checks[i].kind == kind;
    bool slo = kind == SR_CHECK_SLO;
    fprintf(out, "<h3>%s</h3>\n", slo ? "SLOs" : "Invariants");
    if (n == 0) {
        fprintf(out, "<p class=\"muted\">%s</p>\n",
                slo ? "The scenario states no SLO." : "No invariant was checked.");
        return;
    }
    if (slo)
        fputs("<table>\n<tr><th>SLO</th><th>status</th><th class=\"num\">measured</th>"
              "<th class=\"num\">threshold</th><th>message</th></tr>\n",
              out);
    else
        fputs("<table>\n<tr><th>invariant</th><th>status</th><th class=\"num\">violations</th>"
              "<th>message</th></tr>\n",
              out);
    for (size_t i = 0; i < s->n_checks; i++) {
        const sr_check_result *c = &s->checks[i];
        if (c->kind != kind) continue;
        fputs("<tr><td>", out);
        esc(out, c->name);
        fputs("</td><td>", out);
        badge(out, c->status);
        fputs("</td>", out);
        char v[64], th[64];
        if (slo) {
            sr_rpt_figure(v, sizeof v, c->value, c->unit);
            sr_rpt_figure(th, sizeof th, c->threshold, c->unit);
            fputs("<td class=\"num\">", out);
            esc(out, v);
            fputs("</td><td class=\"num\">", out);
            esc(out, th);
            fputs("</td>", out);
        } else {
            if (c->status == SR_SKIP || isnan(c->value))
                fputs("<td class=\"num\">&#8212;</td>", out);
            else
                fprintf(out, "<td class=\"num\">%.0f</td>", c->value);
        }
        fputs("<td>", out);
        if (c->message && strchr(c->message, '\n')) {
            fputs("<pre>", out);
            esc(out, c->message);
            fputs("</pre>", out);
        } else {
            esc(out, c->message);
        }
        fputs("</td></tr>\n", out);
    }
    fputs("</table>\n", out);
}

/* Latency histogram with the summary figures and percentile markers. */
static void histogram(FILE *out, const sr_scenario_result *s)
{
    fputs("<h3>Create-to-Ready latency</h3>\n", out);
    sr_stats st;
    sr_stats_compute(s->ctr_s, s->n_ctr, &st);
    if (st.n == 0) {
        fputs("<p class=\"muted\">No object created here became Ready: nothing to show.</p>\n",
              out);
        return;
    }
    char a[32], p50[32], p95[32], p99[32], mn[32], mx[32];
    sr_rpt_seconds(a, sizeof a, st.avg);
    sr_rpt_seconds(p50, sizeof p50, st.p50);
    sr_rpt_seconds(p95, sizeof p95, st.p95);
    sr_rpt_seconds(p99, sizeof p99, st.p99);
    sr_rpt_seconds(mn, sizeof mn, st.min);
    sr_rpt_seconds(mx, sizeof mx, st.max);
    fprintf(out,
            "<p>%zu objects &#183; avg <b>%s</b> &#183; p50 <b>%s</b> &#183; p95 <b>%s</b> "
            "&#183; p99 <b>%s</b> &#183; min %s &#183; max %s</p>\n",
            st.n, a, p50, p95, p99, mn, mx);

    const double W = 640, H = 220, L = 44, R = 12, T = 34, B = 30;
    const double pw = W - L - R, ph = H - T - B;
    size_t k = (size_t)ceil(sqrt((double)st.n));
    if (k < 1) k = 1;
    if (k > 30) k = 30;
    double lo = st.min, hi = st.max;
    if (!(hi > lo)) {
        /* All equal: one bar centred in a small range around the value. */
        lo = lo > 0.5 ? lo - 0.5 : 0;
        hi = lo + 1;
        k = 1;
    }
    size_t *bins = calloc(k, sizeof *bins);
    if (!bins) return;
    double width = (hi - lo) / (double)k;
    for (size_t i = 0; i < s->n_ctr; i++) {
        double v = s->ctr_s[i];
        if (isnan(v)) continue;
        size_t b = (size_t)((v - lo) / width);
        if (v <= lo) b = 0;
        if (b >= k) b = k - 1;
        bins[b]++;
    }
    size_t top = 1;
    for (size_t b = 0; b < k; b++)
        if (bins[b] > top) top = bins[b];

    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"histogram of create-to-Ready "
            "latencies\">\n",
            W, H, W, H);
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#98a2b3\"/>\n", L,
            T + ph, L + pw, T + ph);
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#98a2b3\"/>\n", L,
            T, L, T + ph);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%zu</text>\n", L - 4, T + 8, top);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">0</text>\n", L - 4, T + ph);
    for (size_t b = 0; b < k; b++) {
        double x = L + pw * (double)b / (double)k;
        double h = ph * (double)bins[b] / (double)top;
        char from[32], to[32];
        sr_rpt_seconds(from, sizeof from, lo + width * (double)b);
        sr_rpt_seconds(to, sizeof to, lo + width * (double)(b + 1));
        fprintf(out,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#2e90fa\">"
                "<title>%s to %s: %zu</title></rect>\n",
                x + 1, T + ph - h, pw / (double)k - 2 > 1 ? pw / (double)k - 2 : 1, h, from, to,
                bins[b]);
    }
    /* x axis: the ends and the middle of the range. */
    for (int i = 0; i <= 2; i++) {
        char lab[32];
        sr_rpt_seconds(lab, sizeof lab, lo + (hi - lo) * i / 2.0);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>\n", L + pw * i / 2.0,
                H - 12,
                i == 0   ? "start"
                : i == 2 ? "end"
                         : "middle",
                lab);
    }
    const struct {
        const char *name;
        double v;
        const char *color;
    } marks[] = {
        {"p50", st.p50, "#12b76a"}, {"p95", st.p95, "#f79009"}, {"p99", st.p99, "#d92d20"}};
    for (size_t i = 0; i < 3; i++) {
        double x = L + pw * (marks[i].v - lo) / (hi - lo);
        fprintf(out,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-dasharray=\"4 3\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                "style=\"fill:%s\">%s</text>\n",
                x, T, x, T + ph, marks[i].color, x, T - 4 - 10.0 * (double)i, marks[i].color,
                marks[i].name);
    }
    fprintf(out,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">seconds to Ready "
            "(scenario time)</text>\n",
            L + pw / 2, H - 1);
    fputs("</svg>\n", out);
    free(bins);
}

/* Injected faults (one row each) above the count of Ready objects. */
static void timeline(FILE *out, const sr_scenario_result *s)
{
    fputs("<h3>Timeline: faults against Ready objects</h3>\n", out);
    if (s->n_timeline == 0 && s->n_samples == 0) {
        fputs("<p class=\"muted\">No fault was injected and no sample was taken.</p>\n", out);
        return;
    }
    double end = s->duration_s > 0 ? s->duration_s : 0;
    int ymax = 1;
    for (size_t i = 0; i < s->n_samples; i++) {
        if (s->samples[i].t_s > end) end = s->samples[i].t_s;
        if (s->samples[i].objects > ymax) ymax = s->samples[i].objects;
        if (s->samples[i].ready > ymax) ymax = s->samples[i].ready;
    }
    for (size_t i = 0; i < s->n_timeline; i++) {
        if (s->timeline[i].start_s > end) end = s->timeline[i].start_s;
        if (s->timeline[i].end_s > end) end = s->timeline[i].end_s;
    }
    if (!(end > 0)) end = 1;
    size_t rows = s->n_timeline < MAX_TIMELINE_ROWS ? s->n_timeline : MAX_TIMELINE_ROWS;
    const double W = 920, L = 210, R = 16, T = 8, ROW = 16, CH = 150, B = 34;
    const double pw = W - L - R;
    const double chart_top = T + (double)rows * ROW + (rows ? 10 : 0);
    const double H = chart_top + CH + B;
#define X(t) (L + pw * ((t) < 0 ? 0 : (t) > end ? 1 : (t) / end))
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
            "viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"timeline of faults and Ready "
            "objects\">\n",
            W, H, W, H);
    /* Fault bands behind the chart, so a dip in Ready lines up with its cause. */
    for (size_t i = 0; i < s->n_timeline; i++) {
        const sr_timeline_event *e = &s->timeline[i];
        if (e->end_s >= 0)
            fprintf(out,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fda29b\" "
                    "fill-opacity=\"0.25\"/>\n",
                    X(e->start_s), chart_top, fmax(X(e->end_s) - X(e->start_s), 1), CH);
        else
            fprintf(out,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#7a2e0e\" "
                    "stroke-dasharray=\"2 2\"/>\n",
                    X(e->start_s), chart_top, X(e->start_s), chart_top + CH);
    }
    for (size_t i = 0; i < rows; i++) {
        const sr_timeline_event *e = &s->timeline[i];
        double y = T + (double)i * ROW;
        char label[120], from[32], to[32];
        snprintf(label, sizeof label, "%s: %s", e->kind ? e->kind : "", e->what ? e->what : "");
        char shown[64];
        sr_rpt_first_line(shown, sizeof shown, label, 28);
        sr_rpt_seconds(from, sizeof from, e->start_s);
        sr_rpt_seconds(to, sizeof to, e->end_s);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 6, y + 11);
        esc(out, shown);
        fputs("<title>", out);
        esc(out, label);
        fputs("</title></text>\n", out);
        if (e->end_s >= 0) {
            fprintf(out,
                    "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" rx=\"2\" "
                    "fill=\"#d92d20\"><title>",
                    X(e->start_s), y + 2, fmax(X(e->end_s) - X(e->start_s), 2), ROW - 4);
            esc(out, label);
            fprintf(out, " (%s to %s)</title></rect>\n", from, to);
        } else {
            double x = X(e->start_s);
            fprintf(out, "<path d=\"M%.1f %.1fl5 6l-5 6l-5 -6z\" fill=\"#7a2e0e\"><title>", x,
                    y + 2);
            esc(out, label);
            fprintf(out, " (at %s)</title></path>\n", from);
        }
    }
    if (s->n_timeline > rows)
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\">&#8230; %zu more in report.json</text>\n", L,
                chart_top - 2, s->n_timeline - rows);

    /* The chart: axes, then objects (grey) and Ready (green) as steps. */
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#98a2b3\"/>\n", L,
            chart_top + CH, L + pw, chart_top + CH);
    fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#98a2b3\"/>\n", L,
            chart_top, L, chart_top + CH);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n", L - 4,
            chart_top + 9, ymax);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">0</text>\n", L - 4,
            chart_top + CH);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">CloudServers</text>\n", L - 24,
            chart_top + CH / 2);
    for (int i = 0; i <= 4; i++) {
        char lab[32];
        sr_rpt_seconds(lab, sizeof lab, end * i / 4.0);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">%s</text>\n", L + pw * i / 4.0,
                chart_top + CH + 14,
                i == 0   ? "start"
                : i == 4 ? "end"
                         : "middle",
                lab);
    }
    if (s->n_samples == 0) {
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no samples</text>\n",
                L + pw / 2, chart_top + CH / 2);
    } else {
        for (int which = 0; which < 2; which++) {
            fputs("<path fill=\"none\" stroke-width=\"2\" ", out);
            fprintf(out, "stroke=\"%s\" d=\"", which ? "#12b76a" : "#98a2b3");
            for (size_t i = 0; i < s->n_samples; i++) {
                const sr_sample *p = &s->samples[i];
                double y = chart_top + CH - CH * (which ? p->ready : p->objects) / (double)ymax;
                if (i == 0)
                    fprintf(out, "M%.1f %.1f", X(p->t_s), y);
                else
                    fprintf(out, "H%.1fV%.1f", X(p->t_s), y);
            }
            fprintf(out, "\"><title>%s</title></path>\n", which ? "Ready" : "objects");
        }
    }
    double ly = chart_top + CH + 30;
    fprintf(out,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"4\" fill=\"#12b76a\"/>"
            "<text x=\"%.1f\" y=\"%.1f\">Ready</text>"
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"4\" fill=\"#98a2b3\"/>"
            "<text x=\"%.1f\" y=\"%.1f\">objects</text>"
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"8\" fill=\"#d92d20\"/>"
            "<text x=\"%.1f\" y=\"%.1f\">fault (interval)</text>"
            "<path d=\"M%.1f %.1fl5 5l-5 5l-5 -5z\" fill=\"#7a2e0e\"/>"
            "<text x=\"%.1f\" y=\"%.1f\">instant (crash, kill)</text>"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">scenario time</text>\n",
            L, ly - 4, L + 16, ly, L + 80, ly - 4, L + 96, ly, L + 160, ly - 8, L + 176, ly,
            L + 290, ly - 9, L + 300, ly, L + pw, ly);
#undef X
    fputs("</svg>\n", out);
}

static int by_count_desc(const void *a, const void *b)
{
    const sr_count *x = *(const sr_count *const *)a, *y = *(const sr_count *const *)b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return strcmp(x->key, y->key);
}

static void reasons(FILE *out, const sr_scenario_result *s)
{
    fputs("<h3>Top Warning Event reasons</h3>\n", out);
    if (s->n_event_reasons == 0) {
        fputs("<p class=\"muted\">No Warning Event was recorded.</p>\n", out);
        return;
    }
    const sr_count **v = malloc(s->n_event_reasons * sizeof *v);
    if (!v) return;
    for (size_t i = 0; i < s->n_event_reasons; i++) v[i] = &s->event_reasons[i];
    qsort(v, s->n_event_reasons, sizeof *v, by_count_desc);
    size_t n = s->n_event_reasons < MAX_REASONS ? s->n_event_reasons : MAX_REASONS;
    long top = v[0]->n > 0 ? v[0]->n : 1;
    fputs("<table>\n<tr><th>reason</th><th class=\"num\">events</th><th></th></tr>\n", out);
    for (size_t i = 0; i < n; i++) {
        fputs("<tr><td>", out);
        esc(out, v[i]->key);
        fprintf(out,
                "</td><td class=\"num\">%ld</td><td style=\"width:40%%\"><span class=\"bar\" "
                "style=\"width:%.0f%%\"></span></td></tr>\n",
                v[i]->n, v[i]->n > 0 ? 100.0 * (double)v[i]->n / (double)top : 0);
    }
    fputs("</table>\n", out);
    if (s->n_event_reasons > n)
        fprintf(out, "<p class=\"muted\">%zu more reasons in report.json.</p>\n",
                s->n_event_reasons - n);
    free(v);
}

static void totals(FILE *out, const sr_scenario_result *s)
{
    char cpu[32] = "&#8212;", rss[32] = "&#8212;";
    if (s->cpu_peak_cores >= 0) snprintf(cpu, sizeof cpu, "%.3f cores", s->cpu_peak_cores);
    if (s->rss_peak_bytes >= 0)
        snprintf(rss, sizeof rss, "%.1f MiB", s->rss_peak_bytes / (1024.0 * 1024.0));
    fputs("<p class=\"note\">", out);
    if (s->objects_created >= 0) fprintf(out, "objects created %ld &#183; ", s->objects_created);
    if (s->cloud_calls >= 0) fprintf(out, "cloud calls %.0f &#183; ", s->cloud_calls);
    if (s->kube_writes >= 0) fprintf(out, "Kubernetes writes %.0f &#183; ", s->kube_writes);
    if (s->reconciles >= 0)
        fprintf(out, "reconciles %.0f (errors %.0f) &#183; ", s->reconciles,
                s->reconcile_errors >= 0 ? s->reconcile_errors : 0);
    fprintf(out, "operator CPU peak %s &#183; RSS peak %s</p>\n", cpu, rss);
}

static void scenario(FILE *out, const sr_run *r, size_t idx)
{
    const sr_scenario_result *s = r->scenarios[idx];
    fprintf(out, "<section class=\"scenario\" id=\"sc-%zu\">\n<h2>", idx);
    esc(out, s->name);
    fputs(" ", out);
    badge(out, s->status);
    fputs("</h2>\n<p class=\"note\">", out);
    esc(out, s->file);
    if (s->ns) {
        fputs(" &#183; namespace ", out);
        esc(out, s->ns);
    }
    char d[32], rd[32];
    sr_rpt_seconds(d, sizeof d, s->duration_s);
    sr_rpt_seconds(rd, sizeof rd, s->real_duration_s);
    fprintf(out, " &#183; seed %llu &#183; duration %s (real %s)", (unsigned long long)s->seed, d,
            rd);
    for (size_t i = 0; i < s->n_tags; i++) {
        fputs(i ? ", " : " &#183; tags ", out);
        esc(out, s->tags[i]);
    }
    fputs("</p>\n", out);
    if (s->time_scale != r->time_scale)
        time_scale_note(out, s->time_scale, "This scenario's operator");
    if (s->message) {
        fputs("<pre>", out);
        esc(out, s->message);
        fputs("</pre>\n", out);
    }
    steps_table(out, s);
    checks_table(out, s, SR_CHECK_INVARIANT);
    checks_table(out, s, SR_CHECK_SLO);
    histogram(out, s);
    timeline(out, s);
    reasons(out, s);
    totals(out, s);
    fputs("</section>\n", out);
}

int sr_report_html(const sr_run *r, FILE *out)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>",
          out);
    esc(out, sr_run_status(r) == SR_PASS ? "PASS" : "FAIL");
    fputs(" &#8212; scenario-runner ", out);
    esc(out, r->run_id);
    fprintf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n", CSS);
    header(out, r);
    fputs("<main>\n", out);
    facts(out, r);
    overview(out, r);
    for (size_t i = 0; i < r->n_scenarios; i++) scenario(out, r, i);
    fputs("<p class=\"muted\">Written by scenario-runner", out);
    if (r->runner_version) {
        fputs(" ", out);
        esc(out, r->runner_version);
    }
    fputs(". Every figure is in report.json (docs/report.md).</p>\n</main>\n</body>\n</html>\n",
          out);
    return ferror(out) ? -1 : 0;
}
