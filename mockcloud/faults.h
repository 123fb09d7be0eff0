/* faults.h — the fault engine: rules that make the cloud API misbehave.
 *
 * A rule has a match (method, path glob, operation name, headers), one
 * effect, and a schedule (probability, count, start delay, duration). For
 * each request the engine walks the rules in the order they were added:
 * every active rule that matches and wins its probability draw "fires";
 * latency effects add up, and the first non-latency effect that fires is
 * the outcome and ends the walk (rules after it neither fire nor use up
 * their count). Probability draws come from a per-rule stream derived from
 * (seed, rule number), so a given seed and request order repeat exactly.
 *
 * Rule JSON (also the YAML of --config):
 *   {"id": "slow-creates",                    optional, unique; else r1, r2…
 *    "match": {"method": "POST" | ["GET","POST"],   default any
 *              "path": <glob, see below>,           default any
 *              "op": "CreateInstance" | [...],      default any
 *              "headers": {"Idempotency-Key": "*"}},  glob per header
 *    "effect": {"type": "latency", "latency": <dist>}
 *            | {"type": "error", "status": 500, "code": "InternalError", "message": "…"}
 *            | {"type": "reset"} | {"type": "hang"} | {"type": "empty"}
 *            | {"type": "malformed"}
 *            | {"type": "unauthorized"} | {"type": "forbidden"}
 *            | {"type": "rateLimit", "retryAfter": "5s"},
 *    "phase": "request" | "response",  request (default): instead of the
 *            operation; response: the operation runs, then its reply is
 *            replaced (reset/empty/hang/malformed/error after the fact)
 *    "probability": 0.25, "count": 3, "startAfter": "10s", "duration": "30s"}
 * Unknown fields, wrong types and impossible values are refused with a
 * message naming the field's JSON path ("match.method[1]: unknown HTTP
 * method \"GTE\": …"); a field given twice is refused too.
 *
 * Details a client can rely on:
 *   id       [A-Za-z0-9._-]{1,63}; unique (a clash is an error, never a
 *            replace). Auto ids are r<N>, N the rule's number (the next
 *            free r<k> when a user already took r<N>).
 *   method   GET HEAD POST PUT PATCH DELETE OPTIONS TRACE CONNECT, exact
 *            case. A request with another method matches only rules
 *            without a method list.
 *   path     mc_glob_match glob ('*' within a segment, '**' across).
 *   op       exact name or an mc_glob_match glob ("*Instance"); a request
 *            without an op matches only rules without an op list.
 *   headers  name → value glob where '*' is any run of characters ('/'
 *            too) and '?' one character; "*" means "present"; null means
 *            "absent". Names ignore case (the header callback's job).
 *   effect   error: status 100..599 (default 500), code (default from the
 *            status: 500 InternalError, 503 ServiceUnavailable, 502
 *            BadGateway, 504 GatewayTimeout, 404 NotFound …; other 5xx
 *            ServerError, 4xx ClientError), message (default "injected by
 *            fault rule <id>"). unauthorized: 401 "Unauthorized";
 *            forbidden: 403 "Forbidden"; rateLimit: 429 "TooManyRequests"
 *            with Retry-After = ceil(retryAfter) seconds (default 1s, at
 *            most 24h); these three accept "code" and "message" too.
 *            latency: "latency" is a csl_dist (see csl/dist.h).
 *   phase    only for terminal effects; a latency rule refuses "response".
 *   schedule probability in (0, 1] (default 1); count ≥ 1 counts firings
 *            (requests that matched AND won the draw); startAfter ≥ 0 and
 *            duration > 0 are duration strings, at most 87600h. Windows
 *            are whole milliseconds: active while added+startAfter ≤ now
 *            < added+startAfter+duration and fired < count.
 * Random streams: rule number N (1 + rules added since mc_faults_new or
 * the last mc_faults_clear) draws latency from csl_rng_derive(seed,
 * "fault", N) and probability from (seed, "fault-probability", N); the draw
 * is made only for active, matching rules with probability < 1.
 * Listing adds to each rule: "state" (scheduled | active | exhausted |
 * expired, in that order of precedence: exhausted, expired, scheduled),
 * "fired", "addedAt", and "startsAt" / "expiresAt" when it has a start
 * delay / a duration (RFC 3339 ms). Defaults are filled in (effect.code,
 * effect.message, probability, phase; match.method and match.op are always
 * lists), so a listing says exactly what the engine will do.
 * Thread-safe: one mutex, held for a walk of the rule array. */
#ifndef MC_FAULTS_H
#define MC_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct mc_faults mc_faults;

#define MC_FAULT_ID_MAX 63 /* longest rule id */

typedef enum {
    MC_FX_NONE = 0, /* no terminal effect (latency may still apply) */
    MC_FX_ERROR,    /* reply status/code/message (incl. 401, 403, 429) */
    MC_FX_RESET,
    MC_FX_HANG,
    MC_FX_EMPTY,
    MC_FX_MALFORMED,
} mc_fx;

typedef enum {
    MC_PHASE_REQUEST = 0,
    MC_PHASE_RESPONSE,
} mc_phase;

/* What the engine needs to know of a request. header may be NULL. */
typedef struct mc_fault_request {
    const char *method;
    const char *path;
    const char *op; /* operation name, NULL when unknown */
    const char *(*header)(void *ctx, const char *name);
    void *header_ctx;
} mc_fault_request;

/* For MC_FX_RESET/HANG/EMPTY/MALFORMED, status is 0 and code/message are
 * "": the server picks what it sends (e.g. 200 for a request-phase
 * malformed body, the operation's own status in the response phase). */
typedef struct mc_fault_decision {
    int64_t latency_ns; /* sum of fired latency rules */
    mc_fx action;       /* terminal effect */
    mc_phase phase;     /* when the terminal effect applies */
    int status;         /* MC_FX_ERROR: HTTP status */
    char code[64];      /* MC_FX_ERROR: error code */
    char message[256];  /* MC_FX_ERROR: error message */
    int retry_after_s;  /* > 0: send Retry-After */
    const char *type;   /* terminal effect's rule type name ("error",
                           "rateLimit", "reset", …), or "latency" when only
                           latency fired, or NULL when nothing fired */
    char rules[128];    /* ids of fired rules, comma-separated, in rule
                           order; ends with ",..." when cut short */
} mc_fault_decision;

/* API */
mc_faults *mc_faults_new(uint64_t seed);
void mc_faults_free(mc_faults *f);
/* Validates rule and adds it at the end. On success returns 0 and, when
 * created is not NULL, the stored rule as mc_faults_get shows it (caller
 * owns; NULL if that allocation failed). On error
 * returns -1, adds nothing, writes a reason naming the field into err
 * ("effect.status: must be an integer 100..599") and points *bad (when not
 * NULL) at the offending node. now_ms anchors startAfter/duration. */
int mc_faults_add(mc_faults *f, const cJSON *rule, int64_t now_ms, cJSON **created, char *err,
                  size_t errsz, const cJSON **bad);
/* Adds every rule of the JSON array rules, all or none: each is validated,
 * and ids are checked against the engine and each other, before the first
 * is added, so a refused batch leaves the engine exactly as it was (rule
 * numbering included, which keeps later random streams reproducible). On
 * success returns 0 and, when created is not NULL, a JSON array of the
 * stored rules (caller owns). On error returns -1, sets *index (when not
 * NULL) to the refused rule's position, and err/bad as mc_faults_add does
 * (err does not carry the index: prefix it yourself, "rules[2].count: …").
 * An empty array adds nothing and succeeds. */
int mc_faults_add_batch(mc_faults *f, const cJSON *rules, int64_t now_ms, cJSON **created,
                        char *err, size_t errsz, const cJSON **bad, size_t *index);
/* {"items":[rule…]} with each rule's state: "scheduled" | "active" |
 * "exhausted" | "expired", and "fired" (how many times). Caller owns. */
cJSON *mc_faults_list(mc_faults *f, int64_t now_ms);
/* One rule as JSON, or NULL when no rule has that id. Caller owns. */
cJSON *mc_faults_get(mc_faults *f, const char *id, int64_t now_ms);
/* 0, or -1 when no rule has that id. */
int mc_faults_delete(mc_faults *f, const char *id);
/* Deletes every rule and restarts rule numbering (so auto ids and random
 * streams after a clear repeat those of a fresh engine). */
void mc_faults_clear(mc_faults *f);
size_t mc_faults_count(mc_faults *f);
/* Decides what happens to a request; fills *out (always). Counts the
 * firings of the rules that fired. Allocates nothing; req->header is
 * called under the engine's lock, so it must not call back into f. */
void mc_faults_evaluate(mc_faults *f, const mc_fault_request *req, int64_t now_ms,
                        mc_fault_decision *out);

#endif
