/* report_junit.c — junit.xml: what CI systems show as test results.
 *
 * One testsuite per scenario, one testcase per step and per check
 * (invariants and SLOs), so a CI page lists exactly what the scenario did
 * and which part broke. A failure carries its message as the attribute
 * and message plus expected-against-actual diff as text. Everything
 * printed goes through sr_rpt_escape, the single place that keeps the file
 * well-formed whatever bytes a step's output held. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "csl/clock.h"
#include "report_util.h"

/* JUnit's XSD wants timestamps without a zone; ours are UTC. */
static void junit_time(int64_t ms, char out[CSL_RFC3339_LEN])
{
    csl_rfc3339_s(ms, out);
    size_t n = strlen(out);
    if (n && out[n - 1] == 'Z') out[n - 1] = '\0';
}

static double secs(double s)
{
    return (s >= 0 && isfinite(s)) ? s : 0;
}

static void attr(FILE *out, const char *name, const char *value)
{
    fprintf(out, " %s=\"", name);
    sr_rpt_escape(out, value, true);
    fputc('"', out);
}

/* The outcome element of a testcase: <failure>, <error> or <skipped>;
 * nothing for a pass. text may be NULL. */
static void outcome(FILE *out, sr_status st, const char *message, const char *text,
                    const char *type)
{
    switch (st) {
    case SR_PASS:
        return;
    case SR_SKIP:
        fputs("      <skipped", out);
        if (message) attr(out, "message", message);
        fputs("/>\n", out);
        return;
    case SR_FAIL:
    case SR_ERROR:
        fprintf(out, "      <%s", st == SR_FAIL ? "failure" : "error");
        attr(out, "message", message ? message : "failed");
        attr(out, "type", type);
        fputc('>', out);
        sr_rpt_escape(out, message ? message : "failed", false);
        if (text && *text) {
            fputs("\n\n", out);
            sr_rpt_escape(out, text, false);
        }
        fprintf(out, "</%s>\n", st == SR_FAIL ? "failure" : "error");
        return;
    }
}

static void step_case(FILE *out, const sr_scenario_result *s, const sr_step_result *st)
{
    fputs("    <testcase", out);
    attr(out, "name", st->name);
    attr(out, "classname", s->name);
    fprintf(out, " time=\"%.3f\"", secs(st->duration_s));
    if (st->file && *st->file) {
        attr(out, "file", st->file);
        fprintf(out, " line=\"%d\"", st->line);
    }
    bool empty = st->status == SR_PASS && !st->output;
    if (empty) {
        fputs("/>\n", out);
        return;
    }
    fputs(">\n", out);
    char where[4200] = "";
    if (st->file && *st->file) snprintf(where, sizeof where, "%s:%d", st->file, st->line);
    /* The text names the step's place first, so a CI log line leads the
     * reader to the YAML. */
    if (st->status == SR_FAIL || st->status == SR_ERROR) {
        size_t n = strlen(where) + (st->diff ? strlen(st->diff) : 0) + 16;
        char *text = malloc(n);
        if (text)
            snprintf(text, n, "%s%s%s", where, *where && st->diff ? "\n" : "",
                     st->diff ? st->diff : "");
        outcome(out, st->status, st->message, text ? text : st->diff, "StepFailed");
        free(text);
    } else {
        outcome(out, st->status, st->message, NULL, "StepFailed");
    }
    if (st->output) {
        fputs("      <system-out>", out);
        sr_rpt_escape(out, st->output, false);
        fputs("</system-out>\n", out);
    }
    fputs("    </testcase>\n", out);
}

static void check_case(FILE *out, const sr_scenario_result *s, const sr_check_result *c)
{
    char name[512];
    bool slo = c->kind == SR_CHECK_SLO;
    snprintf(name, sizeof name, "%s: %s", slo ? "slo" : "invariant", c->name ? c->name : "");
    fputs("    <testcase", out);
    attr(out, "name", name);
    attr(out, "classname", s->name);
    fputs(" time=\"0\"", out);
    if (c->status == SR_PASS) {
        fputs("/>\n", out);
        return;
    }
    fputs(">\n", out);
    char detail[256] = "";
    if (slo) {
        char v[64], th[64];
        sr_rpt_figure(v, sizeof v, c->value, c->unit);
        sr_rpt_figure(th, sizeof th, c->threshold, c->unit);
        snprintf(detail, sizeof detail, "measured %s, threshold %s", v, th);
    } else if (c->status == SR_FAIL) {
        snprintf(detail, sizeof detail, "%.0f violation%s", c->value, c->value == 1 ? "" : "s");
    }
    outcome(out, c->status, c->message, detail, slo ? "SLOViolated" : "InvariantViolated");
    fputs("    </testcase>\n", out);
}

static void suite(FILE *out, const sr_scenario_result *s)
{
    sr_rpt_tally t = sr_rpt_tally_of(s);
    char ts[CSL_RFC3339_LEN];
    junit_time(s->start_ms, ts);
    fputs("  <testsuite", out);
    attr(out, "name", s->name);
    fprintf(out, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\"",
            t.tests, t.failures, t.errors, t.skipped, secs(s->duration_s));
    attr(out, "timestamp", ts);
    if (s->file && *s->file) attr(out, "file", s->file);
    fputs(">\n    <properties>\n", out);
    char tmp[64];
    if (s->ns) {
        fputs("      <property name=\"namespace\"", out);
        attr(out, "value", s->ns);
        fputs("/>\n", out);
    }
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)s->seed);
    fprintf(out, "      <property name=\"seed\" value=\"%s\"/>\n", tmp);
    fprintf(out, "      <property name=\"timeScale\" value=\"%g\"/>\n", s->time_scale);
    fprintf(out, "      <property name=\"status\" value=\"%s\"/>\n", sr_status_name(s->status));
    fputs("    </properties>\n", out);

    for (size_t i = 0; i < s->n_steps; i++) step_case(out, s, &s->steps[i]);
    for (size_t i = 0; i < s->n_checks; i++) check_case(out, s, &s->checks[i]);
    /* A scenario that broke outside any step (setup, its overall timeout)
     * still shows as a failure in CI. */
    if (sr_rpt_needs_scenario_case(s) || (t.tests == 1 && s->n_steps + s->n_checks == 0)) {
        fputs("    <testcase name=\"(scenario)\"", out);
        attr(out, "classname", s->name);
        fprintf(out, " time=\"%.3f\">\n", secs(s->duration_s));
        outcome(out, s->status, s->message ? s->message : "the scenario did not complete", NULL,
                "ScenarioFailed");
        fputs("    </testcase>\n", out);
    }
    fputs("  </testsuite>\n", out);
}

int sr_report_junit(const sr_run *r, FILE *out)
{
    sr_rpt_tally all = {0, 0, 0, 0};
    for (size_t i = 0; i < r->n_scenarios; i++) {
        sr_rpt_tally t = sr_rpt_tally_of(r->scenarios[i]);
        all.tests += t.tests;
        all.failures += t.failures;
        all.errors += t.errors;
        all.skipped += t.skipped;
    }
    char ts[CSL_RFC3339_LEN];
    junit_time(r->start_ms, ts);
    char name[512];
    snprintf(name, sizeof name, "scenario-runner %s", r->run_id ? r->run_id : "");
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites", out);
    attr(out, "name", name);
    fprintf(out, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" time=\"%.3f\"",
            all.tests, all.failures, all.errors, all.skipped, secs(r->duration_s));
    attr(out, "timestamp", ts);
    fputs(">\n", out);
    for (size_t i = 0; i < r->n_scenarios; i++) suite(out, r->scenarios[i]);
    fputs("</testsuites>\n", out);
    return ferror(out) ? -1 : 0;
}
