/* rng.c — xoshiro256** seeded through splitmix64 (see csl/rng.h).
 *
 * Design idea: a stream is a plain value derived from what it is for, never
 * from what ran before it. csl_rng_derive() hashes (seed, label, index)
 * through splitmix64's finaliser, so streams for different labels or indices
 * are unrelated and a run is reproducible from its seed alone. */
#include "csl/rng.h"

#include <math.h>

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* splitmix64's output function: a bijective 64-bit mixer. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ULL;
    return mix64(*state);
}

void csl_rng_seed(csl_rng *r, uint64_t seed)
{
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&sm);
    /* All-zero is xoshiro's one fixed point; splitmix64 cannot produce four
     * zeros in a row, but a cheap guard keeps the invariant obvious. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}

void csl_rng_derive(csl_rng *r, uint64_t seed, const char *label, uint64_t index)
{
    uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
    h = mix64(h ^ csl_hash64(label));
    h = mix64(h ^ (index + 0x632be59bd9b4e019ULL));
    csl_rng_seed(r, h);
}

uint64_t csl_rng_next(csl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double csl_rng_double(csl_rng *r)
{
    return (double)(csl_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Lemire's multiply-and-reject: unbiased, and nearly always one draw. */
uint64_t csl_rng_below(csl_rng *r, uint64_t bound)
{
    if (bound == 0) return 0;
    unsigned __int128 m = (unsigned __int128)csl_rng_next(r) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = (0 - bound) % bound;
        while (low < threshold) {
            m = (unsigned __int128)csl_rng_next(r) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double csl_rng_normal(csl_rng *r)
{
    /* u1 in (0, 1] so log() stays finite. */
    double u1 = 1.0 - csl_rng_double(r);
    double u2 = csl_rng_double(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t csl_hash64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    if (!s) return h;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}
