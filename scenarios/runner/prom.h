/* prom.h — reads Prometheus text exposition (what the operator's /metrics
 * serves) into samples, and sums the ones a check needs. Pure. */
#ifndef SR_PROM_H
#define SR_PROM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sr_prom sr_prom;

/* API */

/* Parses text (len bytes). Comment and TYPE/HELP lines are skipped; a
 * malformed line is skipped too and counted (sr_prom_bad_lines). NULL only
 * on no memory. */
sr_prom *sr_prom_parse(const char *text, size_t len);
void sr_prom_free(sr_prom *p);
size_t sr_prom_bad_lines(const sr_prom *p);

/* The sum of every sample of metric name whose labels include all of
 * labels ("k=v,k2=v2"; NULL or "" = any; a value "a|b" matches either).
 * *found is false when no sample matched (the sum is then 0). */
double sr_prom_sum(const sr_prom *p, const char *name, const char *labels, bool *found);

#endif
