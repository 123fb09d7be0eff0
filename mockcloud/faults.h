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
 *              "path": "/v1/instances/**",          glob, default any
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
 * message naming the field. Thread-safe. */
#ifndef MC_FAULTS_H
#define MC_FAULTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct mc_faults mc_faults;

typedef enum {
    MC_FX_NONE = 0,      /* no terminal effect (latency may still apply) */
    MC_FX_ERROR,         /* reply status/code/message (incl. 401, 403, 429) */
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

typedef struct mc_fault_decision {
    int64_t latency_ns;   /* sum of fired latency rules */
    mc_fx action;         /* terminal effect */
    mc_phase phase;       /* when the terminal effect applies */
    int status;           /* MC_FX_ERROR: HTTP status */
    char code[64];        /* MC_FX_ERROR: error code */
    char message[256];    /* MC_FX_ERROR: error message */
    int retry_after_s;    /* > 0: send Retry-After */
    const char *type;     /* terminal effect's rule type name ("error",
                             "rateLimit", "reset", …), or "latency" when only
                             latency fired, or NULL when nothing fired */
    char rules[128];      /* ids of fired rules, comma-separated */
} mc_fault_decision;

/* API */
mc_faults *mc_faults_new(uint64_t seed);
void mc_faults_free(mc_faults *f);
/* Validates rule and adds it at the end. On success returns 0 and, when
 * created is not NULL, the stored rule as JSON (caller owns). On error
 * returns -1, adds nothing, writes a reason naming the field into err
 * ("effect.status: must be an integer 100..599") and points *bad (when not
 * NULL) at the offending node. now_ms anchors startAfter/duration. */
int mc_faults_add(mc_faults *f, const cJSON *rule, int64_t now_ms, cJSON **created, char *err,
                  size_t errsz, const cJSON **bad);
/* {"items":[rule…]} with each rule's state: "scheduled" | "active" |
 * "exhausted" | "expired", and "fired" (how many times). Caller owns. */
cJSON *mc_faults_list(mc_faults *f, int64_t now_ms);
/* One rule as JSON, or NULL when no rule has that id. Caller owns. */
cJSON *mc_faults_get(mc_faults *f, const char *id, int64_t now_ms);
/* 0, or -1 when no rule has that id. */
int mc_faults_delete(mc_faults *f, const char *id);
void mc_faults_clear(mc_faults *f);
size_t mc_faults_count(mc_faults *f);
/* Decides what happens to a request; fills *out (always). */
void mc_faults_evaluate(mc_faults *f, const mc_fault_request *req, int64_t now_ms,
                        mc_fault_decision *out);

#endif
