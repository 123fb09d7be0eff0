/* rng.h — a small, seeded, reproducible random number generator.
 *
 * xoshiro256** seeded through splitmix64. A csl_rng is a value, not a global:
 * each consumer owns its own stream, and csl_rng_derive() makes independent
 * streams from (seed, label, index) so that, for example, instance 17's boot
 * time does not depend on how many requests came before it. Not thread-safe:
 * guard a shared stream with the owner's lock. */
#ifndef CSL_RNG_H
#define CSL_RNG_H

#include <stdint.h>

typedef struct csl_rng {
    uint64_t s[4];
} csl_rng;

/* API */
void csl_rng_seed(csl_rng *r, uint64_t seed);
/* A stream determined only by (seed, label, index). */
void csl_rng_derive(csl_rng *r, uint64_t seed, const char *label, uint64_t index);
uint64_t csl_rng_next(csl_rng *r);
/* Uniform double in [0, 1). */
double csl_rng_double(csl_rng *r);
/* Uniform integer in [0, bound); bound 0 returns 0. Unbiased. */
uint64_t csl_rng_below(csl_rng *r, uint64_t bound);
/* Standard normal deviate (Box–Muller). */
double csl_rng_normal(csl_rng *r);
/* 64-bit FNV-1a of a string, for deriving seeds and ids. */
uint64_t csl_hash64(const char *s);

#endif
