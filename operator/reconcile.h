/* reconcile.h — the operator's decisions, as pure functions.
 *
 * One idea: a reconcile is "decide, then act". op_decide() takes what the
 * operator knows — the CloudServer as parsed, what the cloud said, the time,
 * the error of the previous step — and returns a plan: an ordered list of
 * actions, the status the object should have, and when to look again. It
 * does no I/O and keeps no state, so every path is unit-tested; the
 * executor (operator/controller code) only carries plans out. The same for
 * CloudServerSets (op_set_decide). docs/operator-reconcile.md is the
 * decision table and the executor's contract; read it before changing
 * either side.
 *
 * The executor's loop, per object (see the doc for the details):
 *
 *     parse the object (op_object_parse); look in the cloud (op_cloud_view)
 *     plan = op_decide(in)
 *     for each action: do it; on error set in.attempt = {kind, action, error}
 *                      and plan = op_decide(in) again (a plan of events and a
 *                      status only, or a corrected create-pending marker),
 *                      carry that out and stop
 *     if the last action is OP_ACT_REFRESH: re-read the object uncached, list
 *                      instances by uid tag, decide again (bounded)
 *     write plan.status when — only when — plan.write_status (the status
 *                      subresource; never after OP_ACT_REMOVE_FINALIZER)
 *     requeue after plan.requeue_ms (0: none); count plan.failed for
 *                      in.failures (reset it when a plan ends without)
 *
 * All times are epoch milliseconds (UTC); status times are whole seconds. */
#ifndef OP_RECONCILE_H
#define OP_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "backoff.h"
#include "csl/rng.h"

/* ------------------------------------------------------------ names */

#define OP_FINALIZER "cloudserver.dev/finalizer"
#define OP_ANN_PAUSED "cloudserver.dev/paused"                 /* "true" stops reconciling */
#define OP_ANN_CREATE_PENDING "cloudserver.dev/create-pending" /* "<key> <zone> <RFC 3339>" */
#define OP_TAG_UID "cloudserver.dev/uid"
#define OP_TAG_NAME "cloudserver.dev/name" /* "<namespace>/<name>" */
#define OP_TAG_ATTEMPT "cloudserver.dev/attempt"

/* ------------------------------------------------------------ sizes */

#define OP_UID_LEN 64
#define OP_NS_LEN 64
#define OP_NAME_LEN 254
#define OP_ID_LEN 129
#define OP_ZONE_LEN 64
#define OP_IMAGE_LEN 129
#define OP_NET_LEN 16
#define OP_IP_LEN 46
#define OP_IPS_MAX 256
#define OP_SNAPS_MAX 100 /* status.backups.snapshots maxItems */
#define OP_REASON_LEN 64
#define OP_MSG_LEN 512 /* longer messages are cut, ending in "..." */
#define OP_KEY_LEN 192
#define OP_SCHEDULE_LEN 101
#define OP_SECRET_LEN 254
#define OP_VIEW_MAX 4         /* instances an op_cloud_view holds */
#define OP_VIEW_SNAPS_MAX 128 /* snapshots an op_cloud_view holds */
#define OP_ACTIONS_MAX 64     /* actions in one plan (events included) */
#define OP_PRUNE_MAX 16       /* snapshot deletions in one plan; the rest next time */
#define OP_ERR_LEN 256

/* ------------------------------------------------------------ the object */

typedef enum {
    OP_PHASE_NONE = 0, /* no status yet */
    OP_PHASE_PENDING,
    OP_PHASE_PROVISIONING,
    OP_PHASE_RUNNING,
    OP_PHASE_RESIZING,
    OP_PHASE_FAILING_OVER,
    OP_PHASE_DELETING,
    OP_PHASE_FAILED,
} op_phase;

typedef enum {
    OP_COND_READY = 0,
    OP_COND_SYNCED,
    OP_COND_CLOUD_REACHABLE,
    OP_COND_CLOUD_AUTHORIZED,
    OP_COND_COUNT
} op_cond_type;

typedef enum { OP_CS_UNKNOWN = 0, OP_CS_TRUE, OP_CS_FALSE } op_cond_status;

/* metav1.Condition. */
typedef struct op_condition {
    bool present;
    op_cond_status status;
    char reason[OP_REASON_LEN]; /* CamelCase */
    char message[OP_MSG_LEN];
    int64_t last_transition_ms; /* kept while status stays the same */
    int64_t observed_generation;
} op_condition;

typedef struct op_snapshot_ref {
    char id[OP_ID_LEN];
    int64_t created_ms; /* 0: unknown */
} op_snapshot_ref;

typedef struct op_backups {
    bool present;
    int64_t last_schedule_ms;   /* 0: never */
    int64_t last_successful_ms; /* 0: never */
    size_t n;
    op_snapshot_ref snaps[OP_SNAPS_MAX]; /* oldest first */
} op_backups;

typedef struct op_status {
    op_phase phase;
    char instance_id[OP_ID_LEN];
    char zone[OP_ZONE_LEN];
    size_t n_ips;
    char ips[OP_IPS_MAX][OP_IP_LEN];
    int64_t observed_generation; /* 0: absent */
    int failover_count;
    op_backups backups;
    op_condition cond[OP_COND_COUNT];
} op_status;

typedef struct op_spec {
    int cpu;
    int64_t memory_mib;
    int64_t disk_gib;
    char image[OP_IMAGE_LEN];
    char zone[OP_ZONE_LEN];
    char network_type[OP_NET_LEN];
    int ip_count;
    bool retain; /* deletionPolicy: Retain */
    bool failover_enabled;
    int failover_max_attempts;
    bool has_backup;
    char backup_schedule[OP_SCHEDULE_LEN];
    int backup_retain;
    int64_t timeout_create_ms, timeout_resize_ms, timeout_delete_ms;
    char credentials_secret[OP_SECRET_LEN]; /* "": the operator's default */
} op_spec;

/* The create-pending annotation: the latest create decided. It is written
 * before the create and never removed on its own (a write saved): once
 * status names the instance it made it is "settled" (op_marker_settled), a
 * record rather than a create in flight, until the next create rewrites it. */
typedef struct op_marker {
    bool present;
    bool valid; /* parsed; an unreadable marker still forces a tag search */
    char key[OP_KEY_LEN];
    int attempt; /* 0 for key "<uid>", N for "<uid>-attempt-N" */
    char zone[OP_ZONE_LEN];
    int64_t at_ms; /* when the create was decided */
} op_marker;

typedef struct op_object {
    char ns[OP_NS_LEN];
    char name[OP_NAME_LEN];
    char uid[OP_UID_LEN];
    int64_t generation;
    int64_t creation_ms;
    bool deleting; /* metadata.deletionTimestamp is set */
    int64_t deletion_ms;
    bool has_finalizer;
    bool paused;
    op_marker marker;
    bool fresh; /* read from the API server just now, not from the informer cache */
    op_spec spec;
    op_status status; /* as last written */
} op_object;

/* ------------------------------------------------------------ the cloud */

typedef enum {
    OP_ERR_NONE = 0,
    OP_ERR_RETRYABLE, /* 5xx, timeout, reset, empty or malformed reply */
    OP_ERR_THROTTLED, /* 429; retry_after_ms from Retry-After */
    OP_ERR_AUTH,      /* 401, 403 */
    OP_ERR_INVALID, /* 400: code InvalidZone, InvalidImage, InvalidRequest, DiskShrinkNotAllowed… */
    OP_ERR_CAPACITY,  /* 409 InsufficientCapacity */
    OP_ERR_CONFLICT,  /* 409 InvalidState, IdempotencyMismatch */
    OP_ERR_NOT_FOUND, /* 404; for a create: the key's instance is gone ("deleted") */
} op_err_class;

typedef struct op_cloud_error {
    op_err_class cls;
    int http_status; /* 0 when there was no reply */
    char code[64];   /* the cloud's error code, "" when none */
    char message[OP_MSG_LEN];
    int64_t retry_after_ms; /* OP_ERR_THROTTLED: 0 when the header was missing */
} op_cloud_error;

typedef enum {
    OP_INST_PENDING = 0,
    OP_INST_RUNNING,
    OP_INST_RESIZING,
    OP_INST_STOPPING,
    OP_INST_STOPPED,
    OP_INST_STARTING,
    OP_INST_REBOOTING,
    OP_INST_DELETING,
    OP_INST_CRASHED,
    OP_INST_DELETED, /* an idempotent replay's view of a gone instance */
} op_inst_state;

typedef struct op_instance {
    char id[OP_ID_LEN];
    op_inst_state state;
    int cpu;
    int64_t memory_mib, disk_gib;
    char zone[OP_ZONE_LEN];
    char image[OP_IMAGE_LEN];
    size_t n_ips;
    char ips[OP_IPS_MAX][OP_IP_LEN];
    bool tagged;                    /* tags name this object's uid */
    int attempt;                    /* from the attempt tag; 0 when absent */
    int64_t created_ms, updated_ms; /* 0: unknown */
} op_instance;

typedef enum { OP_SNAP_CREATING = 0, OP_SNAP_AVAILABLE } op_snap_state;

typedef struct op_snapshot {
    char id[OP_ID_LEN];
    op_snap_state state;
    int64_t created_ms;
} op_snapshot;

/* What the executor found in the cloud before deciding. */
typedef struct op_cloud_view {
    op_cloud_error err; /* a lookup failed: nothing below is valid */
    /* Instances were listed by the uid tag (with an uncached object): only
     * then may a plan create. */
    bool searched_by_tag;
    /* Every instance found by status.instanceID (GET) and by the uid tag,
     * deleting ones included, each once. */
    size_t n;
    op_instance inst[OP_VIEW_MAX];
    /* The object's snapshots (tagged with its uid): listed for the current
     * instance and fetched for each id in status.backups. */
    bool snapshots_listed;
    size_t n_snaps;
    op_snapshot snaps[OP_VIEW_SNAPS_MAX];
} op_cloud_view;

/* ------------------------------------------------------------ the plan */

typedef enum {
    OP_ACT_ADD_FINALIZER = 0,  /* metadata: add OP_FINALIZER */
    OP_ACT_SET_CREATE_PENDING, /* metadata: annotation = key, zone, at */
    OP_ACT_REFRESH,            /* last action only: re-read uncached, list by tag, decide again */
    OP_ACT_CREATE,             /* POST /v1/instances, body op_create_body, Idempotency-Key key */
    OP_ACT_ADOPT,              /* no call: the instance found by tag becomes status.instanceID */
    OP_ACT_RESIZE,             /* PATCH instance, body op_resize_body */
    OP_ACT_START,              /* POST …/actions/start */
    OP_ACT_DELETE,             /* DELETE instance */
    OP_ACT_UNTAG,              /* remove OP_TAG_* from the instance (Retain) */
    OP_ACT_SNAPSHOT,           /* POST …/snapshots, body op_snapshot_body, Idempotency-Key key */
    OP_ACT_DELETE_SNAPSHOT,    /* DELETE /v1/snapshots/{snapshot_id} */
    OP_ACT_REMOVE_FINALIZER,   /* metadata: remove OP_FINALIZER */
    OP_ACT_EVENT,              /* record an Event on the object */
    OP_ACT_COUNT
} op_action_kind;

typedef enum { OP_EV_NORMAL = 0, OP_EV_WARNING } op_event_type;

typedef struct op_action {
    op_action_kind kind;
    char instance_id[OP_ID_LEN];  /* RESIZE START DELETE UNTAG SNAPSHOT ADOPT */
    char key[OP_KEY_LEN];         /* idempotency key: SET_CREATE_PENDING CREATE SNAPSHOT */
    char zone[OP_ZONE_LEN];       /* SET_CREATE_PENDING CREATE */
    int attempt;                  /* SET_CREATE_PENDING CREATE */
    int64_t at_ms;                /* SET_CREATE_PENDING; SNAPSHOT: the schedule time */
    int cpu;                      /* RESIZE: 0 = unchanged */
    int64_t memory_mib, disk_gib; /* RESIZE: 0 = unchanged */
    char snapshot_id[OP_ID_LEN];  /* DELETE_SNAPSHOT */
    op_event_type ev_type;        /* EVENT */
    char reason[OP_REASON_LEN];   /* EVENT */
    char message[OP_MSG_LEN];     /* EVENT */
} op_action;

typedef struct op_plan {
    size_t n;
    op_action actions[OP_ACTIONS_MAX];
    op_status status;   /* the status the object should have */
    bool write_status;  /* status differs from the input's (op_status_differs) */
    int64_t requeue_ms; /* look again after this long; 0: only on a watch event or resync */
    bool failed;        /* the reconcile ended in an error: count it for back-off */
} op_plan;

/* ------------------------------------------------------------ the input */

typedef enum {
    OP_CREDS_OK = 0,
    OP_CREDS_MISSING,   /* the Secret or its "token" key does not exist */
    OP_CREDS_MALFORMED, /* the token is empty or not usable as a bearer token */
} op_creds;

/* The cloud call of this pass that failed, for the second op_decide call
 * (a failed Kubernetes write is the executor's: re-read, retry). */
typedef struct op_attempt {
    bool failed;
    op_action_kind kind; /* the failed action, or OP_ACT_REFRESH for a lookup */
    op_action action;    /* a copy of it */
    op_cloud_error err;
} op_attempt;

/* The operator's settings that shape decisions. */
typedef struct op_config {
    op_backoff error_backoff;         /* cloud errors */
    int64_t poll_min_ms, poll_max_ms; /* transitions: op_poll_delay_ms */
    int64_t auth_retry_ms;            /* after 401/403 or bad credentials */
    int64_t throttle_min_ms;          /* after a 429 without (or with a shorter) Retry-After */
    int64_t refused_retry_ms;         /* after a DELETE or UNTAG the cloud refuses for good */
    int64_t backup_deadline_s; /* a missed snapshot is taken this late at most; < 0: no limit */
    /* Zones a replacement may move to when its zone is out of capacity; only
     * those in the spec zone's region are used (see op_next_zone). */
    const char *const *zones;
    size_t n_zones;
} op_config;

/* 1 s doubling to 5 min with 20% jitter; polls 250 ms..15 s; auth 60 s;
 * throttle at least 1 s; refused deletes and untags 5 min; snapshots at
 * most 1 h late; no failover zones. */
op_config op_config_default(void);

typedef struct op_input {
    const op_object *obj;
    const op_cloud_view *view;
    op_creds creds;
    const char *creds_detail; /* why creds is not OK, for messages; may be NULL */
    int64_t now_ms;
    unsigned failures; /* consecutive failed reconciles of this object */
    op_attempt attempt;
    const op_config *cfg; /* NULL: op_config_default() */
    csl_rng *rng;         /* jitter; NULL: none */
} op_input;

/* ------------------------------------------------------------ API: decisions */

/* Decides one reconcile of one CloudServer; see docs/operator-reconcile.md
 * for the table. Never fails: any input, however odd, gives a plan. */
void op_decide(const op_input *in, op_plan *out);

/* Whether a and b differ in anything but conditions' lastTransitionTime:
 * the status must be written only when this is true. */
bool op_status_differs(const op_status *a, const op_status *b);

/* The idempotency key of create attempt N: "<uid>" for 0, else
 * "<uid>-attempt-N". */
void op_idempotency_key(const char *uid, int attempt, char out[OP_KEY_LEN]);

/* The zone to try after `failed` ran out of capacity: the next of the
 * candidates after `failed`, where the candidates are spec_zone followed by
 * cfg->zones in their order, keeping only zones of spec_zone's region (the
 * name less a final letter: "hk-1a" → "hk-1") and each zone once. NULL when
 * `failed` is the last candidate (every zone was tried) or not one of them. */
const char *op_next_zone(const op_config *cfg, const char *spec_zone, const char *failed);

/* Names for logs, JSON and tests. */
const char *op_phase_name(op_phase p);           /* "" for OP_PHASE_NONE */
const char *op_action_name(op_action_kind k);    /* "CREATE"… */
const char *op_inst_state_name(op_inst_state s); /* the cloud's names: "pending"… */
const char *op_cond_type_name(op_cond_type t);

/* ------------------------------------------------------------ API: JSON */

/* Reads a CloudServer (as the API server returns it) into *out with the
 * CRD's defaults applied; fresh is left false. Returns 0, or -1 with err
 * naming the field ("spec.memory: \"1.3Gi\" is not a whole number of MiB").
 * The status is read leniently: a field that is not what we write is
 * treated as absent, so a damaged status is rewritten, not fatal. */
int op_object_parse(const cJSON *obj, op_object *out, char *err, size_t errsz);

/* The status as the status subresource takes it. Caller owns the result;
 * NULL when out of memory. op_object_parse reads it back equal. */
cJSON *op_status_to_json(const op_status *s);

/* Reads the cloud's instance JSON; uid decides `tagged`. Returns 0, or -1
 * with err naming the field (a malformed reply is an error for the object,
 * to be reported as OP_ERR_RETRYABLE). */
int op_instance_parse(const cJSON *j, const char *uid, op_instance *out, char *err, size_t errsz);
/* Reads the cloud's snapshot JSON. Returns 0 or -1 with err. */
int op_snapshot_parse(const cJSON *j, op_snapshot *out, char *err, size_t errsz);

/* Request bodies for the cloud; caller owns the result, NULL on OOM. The
 * create body is a function of the object and the action alone, so a
 * retried create with the same key sends the same body. */
cJSON *op_create_body(const op_object *o, const op_action *create);
cJSON *op_resize_body(const op_action *resize);
cJSON *op_snapshot_body(const op_object *o, const op_action *snapshot);

/* Whether the object's marker is a record of a create already done: it is
 * valid, status names an instance, and status.failoverCount has reached
 * the marker's attempt (the status written after a create names the
 * instance it made; one written after a failed create names none). False
 * when there is no marker. An unsettled marker means a create may be in
 * flight: the instance must be looked for by tag before anything else. */
bool op_marker_settled(const op_object *o);

/* The create-pending annotation value, "<key> <zone> <RFC 3339>". */
void op_marker_format(const op_marker *m, char *out, size_t outsz);
/* Parses a value for the object with this uid; sets present, and valid
 * when the value is well formed. */
void op_marker_parse(const char *value, const char *uid, op_marker *out);

/* ------------------------------------------------------------ CloudServerSet */

#define OP_SET_BATCH_MAX 64 /* child creates/updates/deletes in one plan */
#define OP_SET_ACTIONS_MAX (OP_SET_BATCH_MAX + 8)
#define OP_SELECTOR_LEN 4097

typedef enum { OP_SET_COND_READY = 0, OP_SET_COND_SYNCED, OP_SET_COND_COUNT } op_set_cond_type;

typedef struct op_set_status {
    int replicas;       /* members that exist and are not being deleted */
    int ready_replicas; /* of those, Ready=True */
    char selector[OP_SELECTOR_LEN];
    int64_t observed_generation;
    op_condition cond[OP_SET_COND_COUNT];
} op_set_status;

typedef struct op_set_child {
    char name[OP_NAME_LEN];
    bool ready;
    bool deleting;
    bool spec_matches; /* its spec equals the template's */
    int64_t created_ms;
} op_set_child;

typedef struct op_set_input {
    const char *name;
    int64_t generation;
    bool deleting;
    bool has_finalizer;
    int replicas;
    const char *selector;         /* op_selector_string of spec.selector */
    const op_set_status *status;  /* as last written */
    const op_set_child *children; /* every CloudServer owned by the set */
    size_t n_children;
    const char *error; /* the last child write that failed, for Synced; NULL */
    int64_t now_ms;
} op_set_input;

typedef enum {
    OP_SET_ADD_FINALIZER = 0,
    OP_SET_CREATE_CHILD, /* create CloudServer `child` from the template, owned by the set */
    OP_SET_UPDATE_CHILD, /* set child's spec and template metadata to the template's */
    OP_SET_DELETE_CHILD,
    OP_SET_REMOVE_FINALIZER,
    OP_SET_EVENT,
} op_set_action_kind;

typedef struct op_set_action {
    op_set_action_kind kind;
    char child[OP_NAME_LEN];
    op_event_type ev_type;
    char reason[OP_REASON_LEN];
    char message[OP_MSG_LEN];
} op_set_action;

typedef struct op_set_plan {
    size_t n;
    op_set_action actions[OP_SET_ACTIONS_MAX];
    op_set_status status;
    bool write_status;
    int64_t requeue_ms; /* a batch was cut short: look again soon */
} op_set_plan;

/* Decides one reconcile of a CloudServerSet: which members to create
 * (named "<set>-<i>" with the lowest free i), update or delete (not-Ready
 * first, then the newest, then the highest name), and its status. Never
 * fails. */
void op_set_decide(const op_set_input *in, op_set_plan *out);
bool op_set_status_differs(const op_set_status *a, const op_set_status *b);
cJSON *op_set_status_to_json(const op_set_status *s);
/* Reads a set's status leniently (what is not as we write it is absent). */
void op_set_status_parse(const cJSON *status, op_set_status *out);

/* spec.selector (metav1.LabelSelector JSON) in Kubernetes' string form,
 * requirements sorted by key: "app=web,tier in (a,b),!legacy". Returns 0,
 * or -1 with err naming the field. */
int op_selector_string(const cJSON *selector, char *out, size_t outsz, char *err, size_t errsz);

#endif
