/* slo.h — SLO maths: percentiles, averages, and the verdict of each
 * threshold a scenario states. Pure: numbers in, numbers and verdicts out. */
#ifndef SR_SLO_H
#define SR_SLO_H

#include <stddef.h>
#include "result.h"
#include "scenario.h"

typedef struct sr_stats {
    size_t n;
    double min, max, avg, p50, p95, p99;
} sr_stats;

/* API */

/* Percentile q (0..100) of v[0..n) by the nearest-rank method (sorts a
 * copy; v is unchanged). n == 0 gives NAN. */
double sr_percentile(const double *v, size_t n, double q);
/* Every figure of sr_stats (all NAN when n == 0, n = 0). */
void sr_stats_compute(const double *v, size_t n, sr_stats *out);

/* Peak CPU in cores over windows of window_s seconds from cumulative CPU
 * seconds counters sampled at times t (same length; both ascending). */
double sr_cpu_peak(const double *t, const double *cpu_seconds, size_t n, double window_s);

/* Evaluates every threshold set in slos against the measurements already
 * in res (ctr_s, recovery_s, totals, samples), appending one SR_CHECK_SLO
 * check per threshold (SKIP with a reason when nothing was measured). */
void sr_slo_evaluate(const sr_slos *slos, sr_scenario_result *res);

#endif
