/* metrics.h — Prometheus metrics and their text exposition (format 0.0.4).
 *
 * A registry holds metric families (counter, gauge, histogram), each with a
 * fixed list of label names; a family's children are created on first use of
 * a label-value combination. Updates are thread-safe and cheap (a hash lookup
 * under the family's lock); rendering takes each family's lock in turn. A
 * collect hook runs before each render, for values read at scrape time
 * (instances by state, process memory).
 *
 * Label values are passed as a NULL-terminated array, for which CSL_LABELS
 * makes a compound literal: csl_metric_inc(requests, CSL_LABELS("GET", "200")).
 * A family without labels takes NULL. */
#ifndef CSL_METRICS_H
#define CSL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include "csl/buf.h"

typedef struct csl_metrics csl_metrics;
typedef struct csl_metric csl_metric;
typedef void (*csl_metrics_collect_fn)(csl_metrics *reg, void *ctx);

#define CSL_LABELS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* Prometheus' default buckets: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 */
extern const double csl_metrics_default_buckets[];
extern const size_t csl_metrics_default_buckets_len;

/* API */
csl_metrics *csl_metrics_new(void);
void csl_metrics_free(csl_metrics *reg);

/* Register a family. labels is NULL-terminated (or NULL for none). Names are
 * checked against Prometheus' rules (metric [a-zA-Z_:][a-zA-Z0-9_:]*, label
 * [a-zA-Z_][a-zA-Z0-9_]* not starting with "__", no "le" on a histogram, no
 * repeats); registering a name twice returns the existing family when kind,
 * labels (and buckets) agree, NULL otherwise; a refusal is logged with the
 * reason. A family without labels always shows its one series (0 until
 * updated); other children appear in the order they were first used.
 * Families live until csl_metrics_free. */
csl_metric *csl_metrics_counter(csl_metrics *reg, const char *name, const char *help,
                                const char *const *labels);
csl_metric *csl_metrics_gauge(csl_metrics *reg, const char *name, const char *help,
                              const char *const *labels);
/* buckets: finite, strictly increasing upper bounds, +Inf implied (a final
 * +Inf is accepted and dropped); NULL → default. */
csl_metric *csl_metrics_histogram(csl_metrics *reg, const char *name, const char *help,
                                  const char *const *labels, const double *buckets,
                                  size_t nbuckets);

/* values: one per label name, NULL-terminated (NULL for no labels). A wrong
 * count, or an update the kind does not take (observe on a counter, a
 * negative add to a counter), is ignored and logged once per family, never
 * a crash. m may be NULL (a family whose registration failed): a no-op.
 * add: a counter takes v >= 0, a gauge any v. */
void csl_metric_add(csl_metric *m, double v, const char *const *values);
void csl_metric_inc(csl_metric *m, const char *const *values);
/* Gauge; also a counter mirrored from elsewhere at collect time
 * (process_cpu_seconds_total). */
void csl_metric_set(csl_metric *m, double v, const char *const *values);
void csl_metric_observe(csl_metric *m, double v, const char *const *values); /* histogram */
/* Drops every child (for gauges recomputed from scratch at collect time). */
void csl_metric_clear(csl_metric *m);
/* Current value of a counter/gauge child, or a histogram child's count;
 * 0 when the child does not exist. For tests and self-checks. */
double csl_metric_value(csl_metric *m, const char *const *values);

void csl_metrics_on_collect(csl_metrics *reg, csl_metrics_collect_fn fn, void *ctx);
/* Runs the collect hooks (no lock held; one render at a time), then appends
 * the text exposition of every family, in registration order, with HELP and
 * TYPE lines; label values escaped; numbers as Prometheus parses them
 * (integers without exponent, +Inf, -Inf, NaN). False on allocation
 * failure. */
bool csl_metrics_render(csl_metrics *reg, csl_buf *out);

/* Registers and keeps up to date process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds and process_start_time_seconds (read
 * from /proc/self/stat, /proc/self/statm and /proc/self/fd at collect
 * time). Calling it twice is harmless. */
void csl_metrics_register_process(csl_metrics *reg);

#endif
