/* backoff.c — error back-off and transition polling (see backoff.h).
 *
 * Design idea: compute in doubles only for the jitter draw; the exponential
 * itself is a shift that stops as soon as it reaches the cap, so no failure
 * count can overflow it. */
#include "backoff.h"

int64_t op_backoff_delay_ms(const op_backoff *b, unsigned failures, csl_rng *rng)
{
    int64_t base = b->base_ms < 1 ? 1 : b->base_ms;
    int64_t cap = b->cap_ms < base ? base : b->cap_ms;
    int64_t d = base;
    for (unsigned i = 0; i < failures && d < cap; i++) d = d > cap / 2 ? cap : d * 2;
    if (d > cap) d = cap;
    double j = b->jitter;
    if (!(j > 0)) j = 0; /* also NaN */
    if (j > 1) j = 1;
    if (rng && j > 0) {
        int64_t cut = (int64_t)((double)d * j * csl_rng_double(rng));
        d -= cut;
    }
    return d < 1 ? 1 : d;
}

int64_t op_poll_delay_ms(int64_t elapsed_ms, int64_t min_ms, int64_t max_ms)
{
    if (min_ms < 1) min_ms = 1;
    if (max_ms < min_ms) max_ms = min_ms;
    if (elapsed_ms < 0) elapsed_ms = 0;
    int64_t d = elapsed_ms / 2;
    if (d < min_ms) d = min_ms;
    if (d > max_ms) d = max_ms;
    return d;
}
