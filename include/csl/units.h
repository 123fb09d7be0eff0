/* units.h — durations ("30s", "5m", "1h30m", "250ms") and Kubernetes
 * quantities ("4Gi", "512Mi", "1.5G", "100m").
 *
 * Parsers take the whole string: trailing garbage, empty input, overflow and
 * negative values are errors. On error they return -1, leave *out untouched
 * and, when err is not NULL, write a one-line reason that names what was
 * expected ("unknown unit \"x\" in \"5x\": use ns, us, ms, s, m or h"). */
#ifndef CSL_UNITS_H
#define CSL_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define CSL_UNITS_ERR_LEN 160

/* API */

/* Go-style duration: a sequence of <number><unit> with units ns, us (µs), ms,
 * s, m, h; decimals allowed ("1.5s"); "0" alone is zero. Result in ns. */
int csl_duration_parse(const char *s, int64_t *out_ns, char err[CSL_UNITS_ERR_LEN]);
/* Formats ns the way csl_duration_parse reads it back, shortest form:
 * "1h30m", "250ms", "1.5s", "0s". */
void csl_duration_format(int64_t ns, char *out, size_t outsz);

/* Kubernetes quantity: decimal number with an optional suffix: binary Ki Mi
 * Gi Ti Pi Ei, decimal k M G T P E, milli m, or an exponent (e3, E6).
 * Result in milli-units (so "100m" CPU is 100 and "1" is 1000) — exact for
 * every quantity we accept up to 2^63/1000. */
int csl_quantity_parse_milli(const char *s, int64_t *out_milli, char err[CSL_UNITS_ERR_LEN]);
/* Convenience: the quantity as whole bytes (rounded up), e.g. "4Gi" → 4294967296. */
int csl_quantity_parse_bytes(const char *s, int64_t *out_bytes, char err[CSL_UNITS_ERR_LEN]);

#endif
