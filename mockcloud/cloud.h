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
 * (mc_cloud_advance), so a transition never waits for a thread; each is
 * stamped with its own deadline (updatedAt, doneAt), not with the time of
 * the call that noticed it. A `now` earlier than one already seen counts as
 * the latest seen, so the world's clock never runs backwards. Durations are
 * drawn from streams derived from (seed, transition, instance, transition
 * number): the same seed and the same requests give the same timeline,
 * whatever the threads' interleaving. Thread-safe: one mutex inside.
 *
 * Semantics (docs/mockcloud.md repeats them for users):
 *
 * Ids: "i-", "snap-", "op-" + 12 hex digits derived from (seed, creation
 *   counter). Counters only rise — across deletion, reset and restart from a
 *   state file — so an id never names two things.
 * Create: 202, the instance in "pending", Location /v1/operations/op-….
 *   Validation in this order: malformed JSON ("malformed JSON at byte N",
 *   N counted from 0), not an object, unknown/repeated field, wrong type,
 *   out of range, missing required field (each 400 InvalidRequest naming the
 *   field), then 400 InvalidZone / InvalidImage (listing the valid values),
 *   bad networkType (400 InvalidRequest), then capacity. Ranges: name 1..256
 *   chars, cpu 1..128, memoryMiB 256..16777216, diskGiB 10..65536, ipCount
 *   1..256, tags ≤ 64 entries, keys 1..256 and values 0..256 chars.
 * Idempotency-Key (create instance, create snapshot): 1..255 printable
 *   ASCII characters, else 400. A key belongs to one route and one body
 *   (compared as JSON values: key order and spacing do not matter, omitted
 *   defaults do). Same key, same route and body → 200 with the target's
 *   current view and the original operation's Location (202 is only for the
 *   call that created it). Same key, other route or body → 409
 *   IdempotencyMismatch. After the target is gone a replay still answers
 *   200 with the target's last view, its state "deleted" — the way a real
 *   cloud reports a terminated instance; "deleted" appears nowhere else.
 *   Keys are kept MC_IDEMPOTENCY_TTL_MS after their first use, whether or
 *   not the target still exists. A request that fails (400, 404, 409
 *   capacity) records nothing, so it may be retried with the same key.
 * Capacity: a per-zone limit on instances that exist (deleting ones count
 *   until gone, crashed ones count); over it → 409 InsufficientCapacity
 *   naming the zone. Default unlimited.
 * Lifecycle (default timings, each uniform): create 300ms..1s, resize
 *   200..600ms, stop/start/reboot 100..300ms, delete 100..400ms, snapshot
 *   200..800ms. Changed timings apply to transitions that start later.
 *   stop: running → stopping → stopped. start: stopped → starting → running.
 *   reboot: running or crashed → rebooting → running. Anything else is 409
 *   InvalidState. Repeating an action while its own transition runs (stop
 *   while stopping, delete while deleting, the same resize while resizing)
 *   answers 202 with the same operation.
 *   resize (cpu, memoryMiB, diskGiB; at least one): a smaller diskGiB is 400
 *   DiskShrinkNotAllowed; values equal to the current ones → 200 with the
 *   instance unchanged (in any state); otherwise only from running or
 *   stopped (409 InvalidState) → resizing → running. The instance shows its
 *   old size until the resize completes; a crash or delete meanwhile drops
 *   it.
 *   delete: any state but deleting → deleting → gone; then GET is 404
 *   NotFound and lists omit it. Deleting interrupts a running transition:
 *   its operation fails with code InstanceDeleted.
 *   crashed (chaos only): a running transition's operation fails with
 *   InstanceCrashed; reboot and delete are allowed, resize/stop/start 409.
 *   ipAddresses: ipCount addresses "10.x.y.z" given the first time the
 *   instance runs (data only; nothing connects to them).
 * Operations: {"id","type","target","state","createdAt","doneAt"?,
 *   "error"?:{"code","message"}}, type one of the transition names, state
 *   running|done|failed. Kept MC_OPERATION_TTL_MS after they finish.
 * Snapshots: only of a running or stopped instance (else 409 InvalidState);
 *   body {"name"?, "tags"?}, name defaults to the snapshot's id; sizeGiB is
 *   the instance's diskGiB. 202 {"id","instanceId","name","state":
 *   "creating|available","sizeGiB","tags","createdAt"} + Location. They
 *   outlive their instance. DELETE is immediate: 204, no body (deleting a
 *   creating snapshot fails its operation with SnapshotDeleted).
 * Lists: creation order; {"items":[…], "nextPageToken":"…"} with
 *   nextPageToken present only when another page exists. pageToken is
 *   opaque; one not issued by us → 400 InvalidPageToken. limit 1..500,
 *   default 100. Repeated or unknown arguments → 400 naming them. Filters
 *   (instances): tag=k=v (repeatable, all must match), zone (400
 *   InvalidZone when unknown), state (400 when not a state name).
 * Every error body is {"error":{"code","message"}}; the calls change no
 *   state when they answer an error. */
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

/* How long idempotency keys and finished operations are remembered. */
#define MC_IDEMPOTENCY_TTL_MS (24LL * 3600 * 1000)
#define MC_OPERATION_TTL_MS (24LL * 3600 * 1000)

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

/* API: the cloud API. Bodies are raw request text (may be NULL/empty; need
 * not be NUL-terminated); idem_key may be NULL. Errors: 400 InvalidRequest
 * (malformed JSON, wrong type, unknown field — naming it), 400 InvalidZone /
 * InvalidImage, 400 DiskShrinkNotAllowed, 400 InvalidPageToken, 404
 * NotFound, 409 IdempotencyMismatch, 409 InvalidState (e.g. resize while
 * pending), 409 InsufficientCapacity, 500 InternalError (out of memory).
 * Replies that start an operation carry its Location. */
mc_reply mc_api_create_instance(mc_cloud *c, const char *body, size_t len, const char *idem_key,
                                int64_t now_ms);
/* Query: tag=k=v (repeatable, all must match), zone, state, limit (1..500,
 * default 100), pageToken. Unknown arguments are a 400 naming them. */
mc_reply mc_api_list_instances(mc_cloud *c, const mc_kv *query, size_t nquery, int64_t now_ms);
mc_reply mc_api_get_instance(mc_cloud *c, const char *id, int64_t now_ms);
/* Body: any of cpu, memoryMiB, diskGiB (at least one). */
mc_reply mc_api_resize_instance(mc_cloud *c, const char *id, const char *body, size_t len,
                                int64_t now_ms);
/* action: start | stop | reboot; another action is 404 NotFound. */
mc_reply mc_api_instance_action(mc_cloud *c, const char *id, const char *action, int64_t now_ms);
mc_reply mc_api_delete_instance(mc_cloud *c, const char *id, int64_t now_ms);
mc_reply mc_api_create_snapshot(mc_cloud *c, const char *instance_id, const char *body, size_t len,
                                const char *idem_key, int64_t now_ms);
/* Query: instance (any id, also of a gone instance), limit, pageToken. */
mc_reply mc_api_list_snapshots(mc_cloud *c, const mc_kv *query, size_t nquery, int64_t now_ms);
mc_reply mc_api_get_snapshot(mc_cloud *c, const char *id, int64_t now_ms);
mc_reply mc_api_delete_snapshot(mc_cloud *c, const char *id, int64_t now_ms);
mc_reply mc_api_get_operation(mc_cloud *c, const char *id, int64_t now_ms);

/* API: control (the /_mock routes that touch the world) */
/* Body: {"ids":[…]} | {"count":N} | {"fraction":F} | {"zone":"…"}, one
 * selector, plus optional "state" (default: running; not deleting or
 * crashed). "zone" may also narrow count or fraction. ids: every id must
 * exist (else 404 and nothing crashes); listed instances already crashed or
 * deleting, or not in "state" when it is given, are skipped. Otherwise the
 * candidates are the instances in "state" (and zone), in creation order;
 * count picks min(N, candidates), fraction round(F × candidates), zone alone
 * all of them, drawn from a stream derived from (seed, crash call number).
 * Answers 200 {"crashed":[ids in creation order]}. */
mc_reply mc_ctl_crash(mc_cloud *c, const char *body, size_t len, int64_t now_ms);
/* {"create": <dist>, "resize": <dist>, …} (keys: mc_transition_name; dist:
 * csl/dist.h's JSON form); set is a partial update, validated whole before
 * any change: 400 InvalidRequest "create: uniform: …" names the transition
 * and the field. Both answer the full timings. */
mc_reply mc_ctl_get_timings(mc_cloud *c);
mc_reply mc_ctl_set_timings(mc_cloud *c, const char *body, size_t len);
/* {"zones": {"hk-1a": 10, "hk-1b": null}} — null is unlimited; a zone not
 * listed keeps its limit; a zone outside the catalogue is 400 InvalidZone.
 * Lowering a limit below current use keeps the instances and refuses new
 * ones. Both answer {"zones": {"hk-1a": {"limit": 10|null, "used": N}, …}}. */
mc_reply mc_ctl_get_capacity(mc_cloud *c, int64_t now_ms);
mc_reply mc_ctl_set_capacity(mc_cloud *c, const char *body, size_t len);
/* Everything: {"instances": [view + "pending"?: {"transition","dueAt",
 * "operation","target"?}], "snapshots", "operations", "idempotencyKeys":
 * [{"key","request","target","operation","createdAt","expiresAt",
 * "targetGone"}], "timings", "capacity" (as in get_capacity's "zones"),
 * "zones", "images", "counters"}. */
mc_reply mc_ctl_dump(mc_cloud *c, int64_t now_ms);
/* Forgets all instances, snapshots, operations and keys; timings, capacity
 * and catalogue go back to what the start-up configuration set. Id counters
 * keep rising, so no id of before the reset comes back. */
void mc_cloud_reset(mc_cloud *c);
/* Instances per state, for metrics. */
void mc_cloud_counts(mc_cloud *c, size_t counts[MC_STATE_COUNT]);

/* Applies the start-up configuration's "cloud" section: {timings (as
 * set_timings), capacity (as set_capacity: {zones: {…}}), zones: [..],
 * images: [..]} — all optional; names are 1..64 of [A-Za-z0-9._-]. A zone
 * that stays keeps its limit. Returns 0, or -1 with err naming the field
 * ("timings: create: …", "zones[2]: …") and *bad the offending node (for
 * file:line:col; may stay NULL), the cloud unchanged. Becomes the reset
 * baseline. */
int mc_cloud_configure(mc_cloud *c, const cJSON *cfg, char *err, size_t errsz, const cJSON **bad);

/* API: persistence. save writes path atomically ("<path>.tmp.<pid>" in the
 * same folder, fsync, rename, fsync of the folder); it holds the world lock
 * only to copy the state, not while printing or writing, and saves are
 * serialised among themselves. The file (JSON, "format": 1) holds
 * instances, snapshots, operations, idempotency records, id counters and
 * pending deadlines (wall ms: transitions due during a downtime apply on
 * the next call). Timings, capacity and catalogue are configuration and are
 * not saved. load of a missing file is success with nothing loaded; of an
 * empty, truncated, malformed or inconsistent one, -1 and err (naming the
 * file and the entry), and the cloud is unchanged. On success the loaded
 * world replaces the current one. */
int mc_cloud_save(mc_cloud *c, const char *path, char *err, size_t errsz);
int mc_cloud_load(mc_cloud *c, const char *path, char *err, size_t errsz);

#endif
