/* cloud.h — mockcloud's world: instances, snapshots, operations,
 * idempotency records, zone capacity and lifecycle timings, behind one lock.
 *
 * Each call of the cloud API (the /v1 routes) is one function here that takes
 * the decoded request (raw JSON body text, query arguments, path ids) and
 * returns the status and JSON to send; all validation and every error code
 * live here, so the API's semantics are unit-tested without sockets.
 *
 * Time is a parameter, wall-clock milliseconds: the module never reads a
 * clock. Every call first applies the lifecycle transitions due by `now`
 * (mc_cloud_advance), so a transition never waits for a thread. Durations
 * are drawn from streams derived from (seed, instance id, transition
 * number): the same seed and the same requests give the same timeline,
 * whatever the threads' interleaving. Thread-safe: one mutex inside. */
#ifndef MC_CLOUD_H
#define MC_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "csl/dist.h"
#include "mc.h"

typedef enum {
    MC_PENDING = 0,
    MC_RUNNING,
    MC_RESIZING,
    MC_STOPPING,
    MC_STOPPED,
    MC_STARTING,
    MC_REBOOTING,
    MC_DELETING,
    MC_CRASHED,
    MC_STATE_COUNT
} mc_state;

/* Each timed transition has its own distribution. */
typedef enum {
    MC_T_CREATE = 0, /* pending → running */
    MC_T_RESIZE,     /* resizing → running */
    MC_T_STOP,       /* stopping → stopped */
    MC_T_START,      /* starting → running */
    MC_T_REBOOT,     /* rebooting → running */
    MC_T_DELETE,     /* deleting → gone */
    MC_T_SNAPSHOT,   /* snapshot creating → available */
    MC_TRANSITION_COUNT
} mc_transition;

typedef struct mc_cloud mc_cloud;

/* API: lifetime and time */
mc_cloud *mc_cloud_new(uint64_t seed);
void mc_cloud_free(mc_cloud *c);
/* Applies every transition due at or before now_ms. */
void mc_cloud_advance(mc_cloud *c, int64_t now_ms);
/* Wall-clock ms of the next pending transition, INT64_MAX when none. */
int64_t mc_cloud_next_deadline(mc_cloud *c);
/* Rises on every change of persistent state (for the state-file writer). */
uint64_t mc_cloud_generation(mc_cloud *c);

const char *mc_state_name(mc_state s);
int mc_state_parse(const char *name, mc_state *out); /* 0 or -1 */
const char *mc_transition_name(mc_transition t);     /* "create", "resize", … */

/* API: the cloud API. Bodies are raw request text (may be NULL/empty);
 * idem_key may be NULL. Errors: 400 InvalidRequest (malformed JSON, wrong
 * type, unknown field — naming it), 400 InvalidZone / InvalidImage,
 * 400 DiskShrinkNotAllowed, 404 NotFound, 409 IdempotencyMismatch,
 * 409 InvalidState (e.g. resize while pending), 422/409 as documented,
 * 507 or 409 InsufficientCapacity (see docs/mockcloud.md). */
mc_reply mc_api_create_instance(mc_cloud *c, const char *body, size_t len, const char *idem_key,
                                int64_t now_ms);
/* Query: tag=k=v (repeatable, all must match), zone, state, limit (1..500,
 * default 100), pageToken. Unknown arguments are a 400 naming them. */
mc_reply mc_api_list_instances(mc_cloud *c, const mc_kv *query, size_t nquery, int64_t now_ms);
mc_reply mc_api_get_instance(mc_cloud *c, const char *id, int64_t now_ms);
/* Body: any of cpu, memoryMiB, diskGiB. */
mc_reply mc_api_resize_instance(mc_cloud *c, const char *id, const char *body, size_t len,
                                int64_t now_ms);
/* action: start | stop | reboot */
mc_reply mc_api_instance_action(mc_cloud *c, const char *id, const char *action, int64_t now_ms);
mc_reply mc_api_delete_instance(mc_cloud *c, const char *id, int64_t now_ms);
mc_reply mc_api_create_snapshot(mc_cloud *c, const char *instance_id, const char *body, size_t len,
                                const char *idem_key, int64_t now_ms);
/* Query: instance, limit, pageToken. */
mc_reply mc_api_list_snapshots(mc_cloud *c, const mc_kv *query, size_t nquery, int64_t now_ms);
mc_reply mc_api_get_snapshot(mc_cloud *c, const char *id, int64_t now_ms);
mc_reply mc_api_delete_snapshot(mc_cloud *c, const char *id, int64_t now_ms);
mc_reply mc_api_get_operation(mc_cloud *c, const char *id, int64_t now_ms);

/* API: control (the /_mock routes that touch the world) */
/* Body: {"ids":[…]} | {"count":N} | {"fraction":F} | {"zone":"…"}, one
 * selector, plus optional "state" (default: running). Picks by the seeded
 * RNG. Answers {"crashed":[ids…]}. */
mc_reply mc_ctl_crash(mc_cloud *c, const char *body, size_t len, int64_t now_ms);
/* {"create": <dist>, "resize": <dist>, …}; set is a partial update. */
mc_reply mc_ctl_get_timings(mc_cloud *c);
mc_reply mc_ctl_set_timings(mc_cloud *c, const char *body, size_t len);
/* {"zones": {"hk-1a": 10, "hk-1b": null}} — null is unlimited; a zone not
 * listed keeps its limit. Answers limits and current use per zone. */
mc_reply mc_ctl_get_capacity(mc_cloud *c, int64_t now_ms);
mc_reply mc_ctl_set_capacity(mc_cloud *c, const char *body, size_t len);
/* Everything: instances, snapshots, operations, idempotency keys, timings,
 * capacity, zones, images. */
mc_reply mc_ctl_dump(mc_cloud *c, int64_t now_ms);
/* Forgets all instances, snapshots, operations and keys; timings, capacity
 * and catalogue go back to what the start-up configuration set. */
void mc_cloud_reset(mc_cloud *c);
/* Instances per state, for metrics. */
void mc_cloud_counts(mc_cloud *c, size_t counts[MC_STATE_COUNT]);

/* Applies the start-up configuration's "cloud" section: {timings, capacity,
 * zones: [..], images: [..]}. Returns 0, or -1 with err naming the field and
 * *bad the offending node (for file:line:col). Becomes the reset baseline. */
int mc_cloud_configure(mc_cloud *c, const cJSON *cfg, char *err, size_t errsz, const cJSON **bad);

/* API: persistence. save writes path atomically (temp file in the same
 * folder, fsync, rename, fsync of the folder). load of a missing file is
 * success with nothing loaded; of a malformed one, -1 and err, and the cloud
 * is unchanged. */
int mc_cloud_save(mc_cloud *c, const char *path, char *err, size_t errsz);
int mc_cloud_load(mc_cloud *c, const char *path, char *err, size_t errsz);

#endif
