/* dist.h — random durations from a distribution: fixed, uniform, or
 * lognormal with a cap. Used for mockcloud's lifecycle timings and for
 * injected latency.
 *
 * JSON/YAML form (durations as strings csl_duration_parse reads):
 *   "1s"                                         fixed, shorthand
 *   {"distribution":"fixed","value":"1s"}
 *   {"distribution":"uniform","min":"200ms","max":"2s"}
 *   {"distribution":"lognormal","median":"1s","sigma":0.5,"cap":"10s"}
 * A lognormal sample is median * exp(sigma * N(0,1)), clipped to cap (cap
 * defaults to 10 × median). */
#ifndef CSL_DIST_H
#define CSL_DIST_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "csl/rng.h"

typedef enum {
    CSL_DIST_FIXED = 0,
    CSL_DIST_UNIFORM,
    CSL_DIST_LOGNORMAL,
} csl_dist_kind;

typedef struct csl_dist {
    csl_dist_kind kind;
    int64_t a_ns;   /* fixed: value; uniform: min; lognormal: median */
    int64_t b_ns;   /* uniform: max; lognormal: cap */
    double sigma;   /* lognormal only */
} csl_dist;

#define CSL_DIST_FIXED_NS(ns) ((csl_dist){CSL_DIST_FIXED, (ns), 0, 0.0})

/* API */
/* Draws one duration in ns (never negative). */
int64_t csl_dist_sample(const csl_dist *d, csl_rng *r);
/* Parses the JSON form. On error returns -1, leaves *out untouched and writes
 * into err a reason that names the field ("uniform: \"max\" (100ms) is below
 * \"min\" (2s)"); *bad, when not NULL, is set to the offending node. */
int csl_dist_from_json(const cJSON *j, csl_dist *out, char *err, size_t errsz, const cJSON **bad);
/* The JSON form (always the object form). Caller owns the result. */
cJSON *csl_dist_to_json(const csl_dist *d);

#endif
