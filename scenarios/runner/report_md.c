/* report_md.c — summary.md: the run in a few lines of GitHub-flavoured
 * markdown, for a CI job summary ($GITHUB_STEP_SUMMARY) or a PR comment.
 *
 * One idea: a reader should see the verdict, which scenario failed and the
 * first line of why, without opening anything else; details stay in
 * report.html. Table cells cannot hold newlines or bare pipes, so every
 * cell goes through md_cell. */
#include "report.h"

#include <math.h>
#include <string.h>

#include "report_util.h"
#include "slo.h"

/* Failing checks listed per scenario before "and N more". */
#define MAX_LISTED 10

/* Text for a table cell or list item: one line, pipes and markup escaped,
 * control characters dropped. */
static void md_text(FILE *out, const char *s)
{
    if (!s) return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            fputc(' ', out);
        else if (*p < 0x20 || *p == 0x7F)
            continue;
        else if (strchr("|\\`*_[]<>#", *p)) {
            /* < and > as entities: job summaries render inline HTML. */
            if (*p == '<')
                fputs("&lt;", out);
            else if (*p == '>')
                fputs("&gt;", out);
            else {
                fputc('\\', out);
                fputc(*p, out);
            }
        } else
            fputc(*p, out);
    }
}

static void md_cell(FILE *out, const char *s, size_t max)
{
    char line[600];
    sr_rpt_first_line(line, sizeof line, s, max);
    md_text(out, line);
}

static const char *icon(sr_status st)
{
    switch (st) {
    case SR_PASS:
        return "✅ pass";
    case SR_FAIL:
        return "❌ fail";
    case SR_ERROR:
        return "⚠️ error";
    case SR_SKIP:
        return "⏭️ skip";
    }
    return "?";
}

static size_t failures_of(const sr_scenario_result *s)
{
    sr_rpt_tally t = sr_rpt_tally_of(s);
    return t.failures + t.errors;
}

int sr_report_summary_md(const sr_run *r, FILE *out)
{
    sr_status st = sr_run_status(r);
    size_t counts[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < r->n_scenarios; i++) counts[r->scenarios[i]->status]++;
    char dur[32];
    sr_rpt_seconds(dur, sizeof dur, r->duration_s);

    fprintf(out, "## %s scenario-runner: %s\n\n",
            st == SR_PASS   ? "✅"
            : st == SR_FAIL ? "❌"
                            : "⚠️",
            st == SR_PASS   ? "PASS"
            : st == SR_FAIL ? "FAIL"
                            : "ERROR");
    fputs("Run `", out);
    /* Inside a code span only a backtick needs avoiding. */
    for (const char *p = r->run_id ? r->run_id : ""; *p; p++)
        if (*p != '`' && (unsigned char)*p >= 0x20) fputc(*p, out);
    fputs("` on ", out);
    md_text(out, r->target);
    fprintf(out,
            " · %zu scenarios: %zu passed, %zu failed, %zu errors, %zu skipped · %s · seed "
            "%llu",
            r->n_scenarios, counts[SR_PASS], counts[SR_FAIL], counts[SR_ERROR], counts[SR_SKIP],
            dur, (unsigned long long)r->seed);
    if (r->runner_cpu_s >= 0 && r->duration_s > 0)
        fprintf(out, " · runner CPU %.1fs (%.1f%% of a core)", r->runner_cpu_s,
                100.0 * r->runner_cpu_s / r->duration_s);
    if (r->time_scale != 1)
        fprintf(out, " · time scale %g (figures are scenario time = real × %g)", r->time_scale,
                r->time_scale);
    fputs("\n\n", out);
    if (r->break_mode) {
        fputs("> Operator break mode `", out);
        for (const char *p = r->break_mode; *p; p++)
            if (*p != '`' && (unsigned char)*p >= 0x20) fputc(*p, out);
        fputs("`: a deliberately broken operator; failures are expected.\n\n", out);
    }
    if (r->n_scenarios == 0) {
        fputs("No scenario ran.\n", out);
        return ferror(out) ? -1 : 0;
    }

    fputs("| scenario | status | duration | create-to-Ready p95 | failures |\n"
          "|---|---|--:|--:|--:|\n",
          out);
    for (size_t i = 0; i < r->n_scenarios; i++) {
        const sr_scenario_result *s = r->scenarios[i];
        char d[32], p95[32];
        sr_rpt_seconds(d, sizeof d, s->duration_s);
        sr_rpt_seconds(p95, sizeof p95, s->n_ctr ? sr_percentile(s->ctr_s, s->n_ctr, 95) : NAN);
        fputs("| ", out);
        md_cell(out, s->name, 80);
        fprintf(out, " | %s | %s | %s | %zu |\n", icon(s->status), d, p95, failures_of(s));
    }

    bool any = false;
    for (size_t i = 0; i < r->n_scenarios; i++) {
        const sr_scenario_result *s = r->scenarios[i];
        if (s->status != SR_FAIL && s->status != SR_ERROR) continue;
        if (!any) fputs("\n### Failures\n\n", out);
        any = true;
        fputs("- **", out);
        md_text(out, s->name);
        fputs("**", out);
        if (s->message) {
            fputs(": ", out);
            md_cell(out, s->message, 300);
        }
        fputc('\n', out);
        size_t listed = 0, more = 0;
        for (size_t k = 0; k < s->n_steps; k++) {
            const sr_step_result *p = &s->steps[k];
            if (p->status != SR_FAIL && p->status != SR_ERROR) continue;
            if (listed++ >= MAX_LISTED) {
                more++;
                continue;
            }
            fputs("  - step *", out);
            md_text(out, p->name);
            fputs("*", out);
            if (p->file && *p->file) {
                fputs(" (", out);
                md_text(out, p->file);
                fprintf(out, ":%d)", p->line);
            }
            fputs(": ", out);
            md_cell(out, p->message ? p->message : "failed", 300);
            fputc('\n', out);
        }
        for (size_t k = 0; k < s->n_checks; k++) {
            const sr_check_result *c = &s->checks[k];
            if (c->status != SR_FAIL && c->status != SR_ERROR) continue;
            if (listed++ >= MAX_LISTED) {
                more++;
                continue;
            }
            fprintf(out, "  - %s *", c->kind == SR_CHECK_SLO ? "SLO" : "invariant");
            md_text(out, c->name);
            fputs("*: ", out);
            md_cell(out, c->message ? c->message : "failed", 300);
            fputc('\n', out);
        }
        if (more) fprintf(out, "  - and %zu more (see report.html)\n", more);
    }
    fputs("\nDetails: `report.html` (charts, diffs), `junit.xml`, `report.json`.\n", out);
    return ferror(out) ? -1 : 0;
}
