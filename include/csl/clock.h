/* clock.h — the clocks the project reads, in one place.
 *
 * Monotonic time measures durations and schedules deadlines; wall time is for
 * timestamps people read. Both go through clock_gettime so libfaketime's
 * speed factor applies to them alike (time-compressed scenarios rely on it). */
#ifndef CSL_CLOCK_H
#define CSL_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* API */
/* Monotonic nanoseconds since an arbitrary point. */
int64_t csl_mono_ns(void);
/* Wall-clock milliseconds since the Unix epoch. */
int64_t csl_wall_ms(void);
/* Formats epoch milliseconds as RFC 3339 UTC with milliseconds,
 * "2026-11-26T14:21:26.123Z". out must hold CSL_RFC3339_LEN bytes. */
#define CSL_RFC3339_LEN 32
void csl_rfc3339_ms(int64_t epoch_ms, char out[CSL_RFC3339_LEN]);
/* Same, to whole seconds: "2026-11-26T14:21:26Z" (Kubernetes' metav1.Time). */
void csl_rfc3339_s(int64_t epoch_ms, char out[CSL_RFC3339_LEN]);
/* Parses RFC 3339 ("...Z" or "+hh:mm", optional fraction) into epoch
 * milliseconds. Returns 0 on success, -1 on a malformed string. */
int csl_rfc3339_parse(const char *s, int64_t *epoch_ms);
/* Sleeps for ns nanoseconds, resuming after signals. */
void csl_sleep_ns(int64_t ns);

#endif
