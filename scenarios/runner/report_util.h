/* report_util.h — helpers the report writers share (private to
 * report_*.c and compare.c; defined in report_json.c): text made safe for
 * XML and HTML, figures formatted for people, per-scenario tallies. */
#ifndef SR_REPORT_UTIL_H
#define SR_REPORT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "result.h"

/* What a scenario came to, counted the way JUnit counts. */
typedef struct sr_rpt_tally {
    size_t tests, failures, errors, skipped;
} sr_rpt_tally;

/* API */

/* Writes s (NULL = "") escaped for XML/HTML text, or for a double-quoted
 * attribute when attr: & < > " ' become entities; invalid UTF-8 becomes
 * U+FFFD; control characters other than tab, LF and CR are dropped (XML
 * 1.0 cannot carry them); in attributes tab, LF and CR become character
 * references so they survive attribute normalisation. */
void sr_rpt_escape(FILE *out, const char *s, bool attr);

/* A duration for people: "850ms", "12.4s", "3m05s"; "—" when s < 0 or
 * NaN (not measured). */
void sr_rpt_seconds(char *out, size_t sz, double s);

/* A check's figure with its unit for people ("1.2s", "4.1%", "3.5 calls");
 * "—" when NaN. */
void sr_rpt_figure(char *out, size_t sz, double v, const char *unit);

/* The first line of s, at most max bytes (cut at a UTF-8 boundary, "…"
 * appended when cut), into out. s NULL gives "". */
void sr_rpt_first_line(char *out, size_t sz, const char *s, size_t max);

/* Testcases and their outcomes as junit.xml lists them for scenario s:
 * one per step, one per check, plus one for a scenario-level failure no
 * step or check carries. */
sr_rpt_tally sr_rpt_tally_of(const sr_scenario_result *s);
/* Whether s failed without a failing step or check to show for it (setup
 * errors, timeouts of the whole scenario). */
bool sr_rpt_needs_scenario_case(const sr_scenario_result *s);

#endif
