/* report.h — the files a run leaves in reports/<run-id>/: junit.xml,
 * report.json (schema: docs/report.schema.json), report.html
 * (self-contained, no network), summary.md; and compare of two runs. */
#ifndef SR_REPORT_H
#define SR_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include "result.h"

/* API */

/* Writes all four files into dir (created if needed), each atomically
 * (temp file + rename), so a soak run can rewrite them while someone reads.
 * Returns 0, or -1 with err naming the file. */
int sr_report_write_all(const sr_run *r, const char *dir, char *err, size_t errsz);

/* The single writers, into a buffer-less FILE. 0 or -1 (errno). */
cJSON *sr_report_json(const sr_run *r); /* the report.json tree (caller owns) */
int sr_report_junit(const sr_run *r, FILE *out);
int sr_report_html(const sr_run *r, FILE *out);
int sr_report_summary_md(const sr_run *r, FILE *out);

/* Reads a report.json back into a run (for compare). path: a file or a run
 * dir. NULL with err. */
sr_run *sr_report_load(const char *path, char *err, size_t errsz);

/* compare: A (baseline) against B (candidate). For each scenario in both
 * and each SLO figure (ctr avg/p50/p95/p99, error rate, recovery, cpu, rss,
 * calls per object), the delta; a regression is B worse than A by more than
 * threshold_pct percent (and by more than a small absolute floor, documented).
 * Writes a table to out (and, when md_out is not NULL, markdown to it).
 * Returns the number of regressions (0 = gate passes), -1 on error. */
int sr_compare(const sr_run *a, const sr_run *b, double threshold_pct, FILE *out, FILE *md_out);

#endif
