/* test_operator_reconcile.c — the CloudServer and CloudServerSet decisions.
 *
 * A table of scenarios (object + cloud view + time → actions, Events,
 * status, requeue), one row per path of docs/operator-reconcile.md; focused
 * tests of keys, zones, backups, conditions and JSON; and a simulation that
 * kills the operator after every action of a create, a failover, a stuck
 * create and a deletion, restarts it, and checks that one object never gets
 * two instances and never creates without a fresh lookup by tag. */
#include "../testutil.h"

#include <stdlib.h>
#include <string.h>

#include "../../operator/cron.h"
#include "../../operator/reconcile.h"

#define UID "6f1c2d3e-0000-4000-8000-000000000001"
#define T0 1800000000000LL /* 2027-01-15T08:00:00Z */
#define SEC 1000LL
#define MIN (60 * SEC)

static op_object O;
static op_cloud_view V;
static op_input I;
static op_plan P;
static op_config CFG;
static const char *const ZONES[] = {"hk-1a", "hk-1b", "hk-2a", "sg-1a", "hk-1c"};

/* ---------------------------------------------------------------- fixture */

static void base_spec(op_spec *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->cpu = 2;
    sp->memory_mib = 4096;
    sp->disk_gib = 40;
    strcpy(sp->image, "debian-12");
    strcpy(sp->zone, "hk-1a");
    strcpy(sp->network_type, "standard");
    sp->ip_count = 1;
    sp->failover_enabled = true;
    sp->failover_max_attempts = 3;
    sp->timeout_create_ms = sp->timeout_resize_ms = sp->timeout_delete_ms = 5 * MIN;
}

/* A created object with the finalizer, read fresh, cloud searched by tag. */
static void reset(void)
{
    memset(&O, 0, sizeof O);
    strcpy(O.ns, "default");
    strcpy(O.name, "web-1");
    strcpy(O.uid, UID);
    O.generation = 1;
    O.creation_ms = T0 - 3600 * SEC;
    O.has_finalizer = true;
    O.fresh = true;
    base_spec(&O.spec);
    memset(&V, 0, sizeof V);
    V.searched_by_tag = true;
    CFG = op_config_default();
    CFG.zones = ZONES;
    CFG.n_zones = 5;
    memset(&I, 0, sizeof I);
    I.obj = &O;
    I.view = &V;
    I.now_ms = T0;
    I.cfg = &CFG;
}

static op_instance *inst(const char *id, op_inst_state st, int attempt)
{
    op_instance *x = &V.inst[V.n++];
    memset(x, 0, sizeof *x);
    strcpy(x->id, id);
    x->state = st;
    x->cpu = O.spec.cpu;
    x->memory_mib = O.spec.memory_mib;
    x->disk_gib = O.spec.disk_gib;
    strcpy(x->zone, "hk-1a");
    strcpy(x->image, "debian-12");
    x->tagged = true;
    x->attempt = attempt;
    x->created_ms = x->updated_ms = T0 - MIN;
    if (st != OP_INST_PENDING) {
        x->n_ips = 1;
        strcpy(x->ips[0], "10.0.0.7");
    }
    return x;
}

static void set_cond_prev(op_cond_type t, op_cond_status s, const char *reason, int64_t gen)
{
    op_condition *k = &O.status.cond[t];
    k->present = true;
    k->status = s;
    strcpy(k->reason, reason);
    k->observed_generation = gen;
    k->last_transition_ms = T0 - 3600 * SEC;
}

/* Status as a steady, Ready object naming instance id. */
static void recorded(const char *id)
{
    O.status.phase = OP_PHASE_RUNNING;
    strcpy(O.status.instance_id, id);
    strcpy(O.status.zone, "hk-1a");
    O.status.n_ips = 1;
    strcpy(O.status.ips[0], "10.0.0.7");
    O.status.observed_generation = O.generation;
    set_cond_prev(OP_COND_READY, OP_CS_TRUE, "InstanceRunning", O.generation);
    snprintf(O.status.cond[OP_COND_READY].message, OP_MSG_LEN,
             "instance %s is running in zone hk-1a", id);
    set_cond_prev(OP_COND_SYNCED, OP_CS_TRUE, "ReconcileSucceeded", O.generation);
    set_cond_prev(OP_COND_CLOUD_REACHABLE, OP_CS_TRUE, "CloudReachable", O.generation);
    strcpy(O.status.cond[OP_COND_CLOUD_REACHABLE].message, "the cloud API answered");
    set_cond_prev(OP_COND_CLOUD_AUTHORIZED, OP_CS_TRUE, "CredentialsAccepted", O.generation);
    strcpy(O.status.cond[OP_COND_CLOUD_AUTHORIZED].message, "the cloud accepted the credentials");
}

static void marker(int attempt, const char *zone, int64_t at)
{
    char key[OP_KEY_LEN], val[256];
    op_idempotency_key(UID, attempt, key);
    op_marker m = {true, true, "", attempt, "", at};
    strcpy(m.key, key);
    strcpy(m.zone, zone);
    op_marker_format(&m, val, sizeof val);
    op_marker_parse(val, UID, &O.marker);
}

static void run(void)
{
    op_decide(&I, &P);
}

/* Action kinds in order, events left out: "DELETE,SET_CREATE_PENDING,CREATE". */
static const char *kinds(void)
{
    static char s[1024];
    s[0] = '\0';
    for (size_t i = 0; i < P.n; i++) {
        if (P.actions[i].kind == OP_ACT_EVENT) continue;
        if (s[0]) strcat(s, ",");
        strcat(s, op_action_name(P.actions[i].kind));
    }
    return s;
}

static const char *events(void)
{
    static char s[1024];
    s[0] = '\0';
    for (size_t i = 0; i < P.n; i++) {
        if (P.actions[i].kind != OP_ACT_EVENT) continue;
        if (s[0]) strcat(s, ",");
        strcat(s, P.actions[i].reason);
    }
    return s;
}

static const op_action *find(op_action_kind k, int nth)
{
    for (size_t i = 0; i < P.n; i++)
        if (P.actions[i].kind == k && nth-- == 0) return &P.actions[i];
    return NULL;
}

static const op_action *find_event(const char *reason)
{
    for (size_t i = 0; i < P.n; i++)
        if (P.actions[i].kind == OP_ACT_EVENT && strcmp(P.actions[i].reason, reason) == 0)
            return &P.actions[i];
    return NULL;
}

static const op_condition *cnd(op_cond_type t)
{
    return &P.status.cond[t];
}

/* The plan's status becomes the object's, as after a successful write. */
static void persist(void)
{
    O.status = P.status;
}

/* ---------------------------------------------------------------- the table */

/* Setups: each starts from reset() and changes what the row needs. */
static void s_new_cached(void)
{
    O.has_finalizer = false;
    O.fresh = false;
    V.searched_by_tag = false;
}
static void s_new_fresh(void) {}
static void s_new_no_finalizer(void)
{
    O.has_finalizer = false;
}
static void s_marker_no_instance(void)
{
    marker(0, "hk-1a", T0 - 10 * SEC);
}
static void s_marker_not_searched(void)
{
    marker(0, "hk-1a", T0 - 10 * SEC);
    V.searched_by_tag = false;
}
static void s_marker_not_fresh(void)
{
    marker(0, "hk-1a", T0 - 10 * SEC);
    O.fresh = false;
}
static void s_marker_pending_found(void)
{
    marker(0, "hk-1a", T0 - 10 * SEC);
    inst("i-1", OP_INST_PENDING, 0);
}
static void s_adopt_running(void)
{
    inst("i-1", OP_INST_RUNNING, 0);
}
static void s_clear_marker(void)
{
    marker(0, "hk-1a", T0 - 10 * SEC);
    recorded("i-1");
    inst("i-1", OP_INST_RUNNING, 0);
}
static void s_marker_kept_until_recorded(void)
{
    marker(0, "hk-1a", T0 - 10 * SEC);
    inst("i-1", OP_INST_RUNNING, 0);
}
static void s_steady(void)
{
    recorded("i-1");
    inst("i-1", OP_INST_RUNNING, 0);
    V.searched_by_tag = false; /* a resync GETs by id only */
    O.fresh = false;
}
static void s_pending_2m(void)
{
    marker(0, "hk-1a", T0 - 2 * MIN);
    inst("i-1", OP_INST_PENDING, 0)->created_ms = T0 - 2 * MIN;
}
static void s_pending_timeout(void)
{
    marker(0, "hk-1a", T0 - 6 * MIN);
    inst("i-1", OP_INST_PENDING, 0)->created_ms = T0 - 6 * MIN;
}
static void s_pending_timeout_no_failover(void)
{
    s_pending_timeout();
    O.spec.failover_enabled = false;
}
static void s_pending_timeout_exhausted(void)
{
    s_pending_timeout();
    O.status.failover_count = 3;
}
static void s_pending_timeout_cached(void)
{
    s_pending_timeout();
    O.fresh = false;
}
static void s_resize_spec(void)
{
    recorded("i-1");
    inst("i-1", OP_INST_RUNNING, 0);
    O.generation = 2;
    O.spec.cpu = 4;
}
static void s_resizing(void)
{
    recorded("i-1");
    O.generation = 2;
    O.spec.cpu = 4;
    inst("i-1", OP_INST_RESIZING, 0)->updated_ms = T0 - 10 * SEC;
}
static void s_resizing_timeout(void)
{
    s_resizing();
    V.inst[0].updated_ms = T0 - 6 * MIN;
}
static void s_resized(void)
{
    recorded("i-1");
    O.generation = 2;
    O.spec.cpu = 4;
    inst("i-1", OP_INST_RUNNING, 0);
}
static void s_drift_cpu(void)
{
    recorded("i-1");
    inst("i-1", OP_INST_RUNNING, 0)->cpu = 1;
}
static void s_disk_bigger(void)
{
    recorded("i-1");
    inst("i-1", OP_INST_RUNNING, 0)->disk_gib = 80;
}
static void s_stopped(void)
{
    recorded("i-1");
    inst("i-1", OP_INST_STOPPED, 0);
}
static void s_stopping(void)
{
    recorded("i-1");
    inst("i-1", OP_INST_STOPPING, 0)->updated_ms = T0 - 2 * SEC;
}
static void s_resize_refused(void)
{
    s_resize_spec();
    set_cond_prev(OP_COND_READY, OP_CS_FALSE, "ResizeRejected", 2);
}
static void s_crashed(void)
{
    recorded("i-1");
    inst("i-1", OP_INST_CRASHED, 0);
}
static void s_crashed_no_failover(void)
{
    s_crashed();
    O.spec.failover_enabled = false;
}
static void s_crashed_exhausted(void)
{
    s_crashed();
    O.status.failover_count = 3;
    V.inst[0].attempt = 3;
}
static void s_crashed_cached(void)
{
    s_crashed();
    O.fresh = false;
}
static void s_vanished(void)
{
    recorded("i-1");
}
static void s_vanished_not_searched(void)
{
    recorded("i-1");
    V.searched_by_tag = false;
}
static void s_vanished_no_failover(void)
{
    recorded("i-1");
    O.spec.failover_enabled = false;
}
static void s_resume_failover(void)
{
    /* failover decided (marker attempt 2 written), killed before the status */
    recorded("i-1");
    O.status.failover_count = 1;
    marker(2, "hk-1a", T0 - 5 * SEC);
    inst("i-1", OP_INST_DELETING, 1);
}
static void s_replacement_pending(void)
{
    recorded("i-1");
    O.status.failover_count = 1;
    marker(1, "hk-1a", T0 - 5 * SEC);
    inst("i-1", OP_INST_DELETING, 0);
    inst("i-2", OP_INST_PENDING, 1)->created_ms = T0 - 4 * SEC;
}
static void s_marker_spent(void)
{
    /* a stuck instance was deleted, the operator stopped before the next marker */
    marker(0, "hk-1a", T0 - 6 * MIN);
    inst("i-1", OP_INST_DELETING, 0);
}
static void s_duplicates(void)
{
    recorded("i-2");
    O.status.failover_count = 1;
    inst("i-1", OP_INST_RUNNING, 0);
    inst("i-2", OP_INST_RUNNING, 1);
}
static void s_superseded(void)
{
    recorded("i-1");
    marker(1, "hk-1a", T0 - 5 * SEC);
    inst("i-1", OP_INST_RUNNING, 0);
}
static void s_untagged_stranger_ignored(void)
{
    recorded("i-1");
    inst("i-1", OP_INST_RUNNING, 0);
    inst("i-9", OP_INST_RUNNING, 0)->tagged = false;
}
static void s_del_running(void)
{
    recorded("i-1");
    O.deleting = true;
    O.deletion_ms = T0 - SEC;
    inst("i-1", OP_INST_RUNNING, 0);
}
static void s_del_deleting(void)
{
    s_del_running();
    V.inst[0].state = OP_INST_DELETING;
    V.inst[0].updated_ms = T0 - SEC;
}
static void s_del_gone(void)
{
    recorded("i-1");
    O.deleting = true;
}
static void s_del_not_searched(void)
{
    s_del_gone();
    V.searched_by_tag = false;
}
static void s_del_timeout(void)
{
    s_del_deleting();
    V.inst[0].updated_ms = T0 - 6 * MIN;
}
static void s_del_orphan_by_tag(void)
{
    /* created, killed before status: only the tag search knows it */
    O.deleting = true;
    marker(0, "hk-1a", T0 - 10 * SEC);
    inst("i-1", OP_INST_PENDING, 0);
}
static void s_del_outage(void)
{
    s_del_running();
    V.err = (op_cloud_error){OP_ERR_RETRYABLE, 0, "", "connection reset by peer", 0};
}
static void s_retain(void)
{
    s_del_running();
    O.spec.retain = true;
}
static void s_retain_untagged(void)
{
    s_retain();
    V.inst[0].tagged = false;
}
static void s_del_no_finalizer(void)
{
    s_del_running();
    O.has_finalizer = false;
}
static void s_paused(void)
{
    s_crashed();
    O.paused = true;
}
static void s_paused_deleting(void)
{
    s_del_running();
    O.paused = true;
}
static void s_err_retryable(void)
{
    recorded("i-1");
    V.err = (op_cloud_error){OP_ERR_RETRYABLE, 503, "ServiceUnavailable", "outage", 0};
    I.failures = 3;
}
static void s_err_throttled(void)
{
    recorded("i-1");
    V.err = (op_cloud_error){OP_ERR_THROTTLED, 429, "TooManyRequests", "slow down", 7000};
}
static void s_err_throttled_no_header(void)
{
    recorded("i-1");
    V.err = (op_cloud_error){OP_ERR_THROTTLED, 429, "TooManyRequests", "slow down", 0};
}
static void s_err_401(void)
{
    recorded("i-1");
    V.err = (op_cloud_error){OP_ERR_AUTH, 401, "Unauthorized", "bad token", 0};
}
static void s_err_403(void)
{
    recorded("i-1");
    V.err = (op_cloud_error){OP_ERR_AUTH, 403, "Forbidden", "read-only token", 0};
}
static void s_creds_missing(void)
{
    recorded("i-1");
    I.creds = OP_CREDS_MISSING;
    I.creds_detail = "Secret cloudserver-system/cloud-credentials not found";
}
static void s_recovered(void)
{
    s_steady();
    set_cond_prev(OP_COND_CLOUD_REACHABLE, OP_CS_FALSE, "CloudUnavailable", 1);
    set_cond_prev(OP_COND_CLOUD_AUTHORIZED, OP_CS_FALSE, "Unauthorized", 1);
    set_cond_prev(OP_COND_SYNCED, OP_CS_FALSE, "CloudError", 1);
}
static void fail_action(op_action_kind k, op_err_class cls, int status, const char *code)
{
    I.attempt.failed = true;
    I.attempt.kind = k;
    I.attempt.action.kind = k;
    I.attempt.err = (op_cloud_error){cls, status, "", "refused", 0};
    strcpy(I.attempt.err.code, code);
}
static void s_create_invalid_zone(void)
{
    marker(0, "hk-1a", T0);
    fail_action(OP_ACT_CREATE, OP_ERR_INVALID, 400, "InvalidZone");
    strcpy(I.attempt.action.key, UID);
    strcpy(I.attempt.action.zone, "hk-1a");
}
static void s_create_invalid_image(void)
{
    s_create_invalid_zone();
    strcpy(I.attempt.err.code, "InvalidImage");
}
static void s_create_invalid_request(void)
{
    s_create_invalid_zone();
    strcpy(I.attempt.err.code, "InvalidRequest");
}
static void s_create_refused_held(void)
{
    marker(0, "hk-1a", T0 - MIN);
    O.status.phase = OP_PHASE_FAILED;
    set_cond_prev(OP_COND_READY, OP_CS_FALSE, "InvalidZone", 1);
}
static void s_create_refused_new_generation(void)
{
    s_create_refused_held();
    O.generation = 2;
}
static void s_create_capacity_first(void)
{
    marker(0, "hk-1a", T0);
    fail_action(OP_ACT_CREATE, OP_ERR_CAPACITY, 409, "InsufficientCapacity");
    strcpy(I.attempt.action.key, UID);
    strcpy(I.attempt.action.zone, "hk-1a");
}
static void s_create_capacity_failover(void)
{
    O.status.failover_count = 1;
    marker(1, "hk-1a", T0);
    fail_action(OP_ACT_CREATE, OP_ERR_CAPACITY, 409, "InsufficientCapacity");
    op_idempotency_key(UID, 1, I.attempt.action.key);
    strcpy(I.attempt.action.zone, "hk-1a");
    I.attempt.action.attempt = 1;
}
static void s_create_capacity_last_zone(void)
{
    s_create_capacity_failover();
    strcpy(I.attempt.action.zone, "hk-1c");
}
static void s_create_fallback_zone_invalid(void)
{
    s_create_capacity_failover();
    I.attempt.err = (op_cloud_error){OP_ERR_INVALID, 400, "InvalidZone", "no such zone", 0};
    strcpy(I.attempt.action.zone, "hk-1b");
}
static void s_create_key_spent(void)
{
    marker(0, "hk-1a", T0);
    fail_action(OP_ACT_CREATE, OP_ERR_NOT_FOUND, 200, "InstanceDeleted");
    strcpy(I.attempt.action.key, UID);
    strcpy(I.attempt.action.zone, "hk-1a");
}
static void s_create_503(void)
{
    O.status.failover_count = 0;
    marker(1, "hk-1a", T0);
    fail_action(OP_ACT_CREATE, OP_ERR_RETRYABLE, 503, "ServiceUnavailable");
    I.attempt.action.attempt = 1;
}
static void s_resize_shrink(void)
{
    s_resize_spec();
    fail_action(OP_ACT_RESIZE, OP_ERR_INVALID, 400, "DiskShrinkNotAllowed");
}
static void s_delete_404(void)
{
    s_del_running();
    fail_action(OP_ACT_DELETE, OP_ERR_NOT_FOUND, 404, "NotFound");
}
static void s_delete_refused(void)
{
    s_del_running();
    fail_action(OP_ACT_DELETE, OP_ERR_RETRYABLE, 405, "MethodNotAllowed");
    strcpy(I.attempt.action.instance_id, "i-1");
}
static void s_delete_refused_again(void)
{
    s_delete_refused();
    O.status.phase = OP_PHASE_DELETING;
    set_cond_prev(OP_COND_READY, OP_CS_FALSE, "DeleteRefused", 1);
    set_cond_prev(OP_COND_SYNCED, OP_CS_FALSE, "DeleteRefused", 1);
}
static void s_untag_refused(void)
{
    s_retain();
    fail_action(OP_ACT_UNTAG, OP_ERR_INVALID, 400, "InvalidRequest");
    strcpy(I.attempt.action.instance_id, "i-1");
}
static void s_delete_409_transient(void)
{
    s_del_running();
    fail_action(OP_ACT_DELETE, OP_ERR_CONFLICT, 409, "InvalidState");
}
static void s_resize_409(void)
{
    s_resize_spec();
    fail_action(OP_ACT_RESIZE, OP_ERR_CONFLICT, 409, "InvalidState");
}
static void s_idem_mismatch(void)
{
    marker(0, "hk-1a", T0);
    fail_action(OP_ACT_CREATE, OP_ERR_CONFLICT, 409, "IdempotencyMismatch");
}

#define RQ_ANY (-1)
#define RQ_NONE 0

typedef struct row {
    const char *name;
    void (*setup)(void);
    const char *actions; /* kinds without events */
    const char *events;  /* event reasons in order */
    op_phase phase;
    op_cond_status ready;
    const char *ready_reason; /* NULL: not checked */
    int64_t requeue;          /* RQ_NONE, RQ_ANY (> 0) or exact ms */
    bool failed;
    int write; /* 1 must write, 0 must not, -1 either */
} row;

#define U OP_CS_UNKNOWN
#define TR OP_CS_TRUE
#define FA OP_CS_FALSE
static const row rows[] = {
    /* create */
    {"new object, cached", s_new_cached, "REFRESH", "", OP_PHASE_NONE, U, NULL, RQ_NONE, false, 0},
    {"new object, fresh, searched", s_new_fresh, "SET_CREATE_PENDING,CREATE", "Creating",
     OP_PHASE_PROVISIONING, FA, "Provisioning", 250, false, 1},
    {"new object without finalizer", s_new_no_finalizer, "ADD_FINALIZER,SET_CREATE_PENDING,CREATE",
     "Creating", OP_PHASE_PROVISIONING, FA, "Provisioning", 250, false, 1},
    {"marker, nothing found: same create again", s_marker_no_instance, "CREATE", "Creating",
     OP_PHASE_PROVISIONING, FA, "Provisioning", 250, false, 1},
    {"marker, no tag search yet", s_marker_not_searched, "REFRESH", "", OP_PHASE_NONE, U, NULL,
     RQ_NONE, false, 0},
    {"marker, cached object", s_marker_not_fresh, "REFRESH", "", OP_PHASE_NONE, U, NULL, RQ_NONE,
     false, 0},
    {"marker, pending instance found by tag", s_marker_pending_found, "ADOPT", "",
     OP_PHASE_PROVISIONING, FA, "Provisioning", RQ_ANY, false, 1},
    {"unknown running instance adopted", s_adopt_running, "ADOPT", "Adopted", OP_PHASE_RUNNING, TR,
     "InstanceRunning", RQ_NONE, false, 1},
    {"running and recorded: the marker stays, a record", s_clear_marker, "", "", OP_PHASE_RUNNING,
     TR, "InstanceRunning", RQ_NONE, false, 0},
    {"running, not yet recorded: marker kept", s_marker_kept_until_recorded, "ADOPT", "",
     OP_PHASE_RUNNING, TR, "InstanceRunning", RQ_NONE, false, 1},
    {"steady state: nothing", s_steady, "", "", OP_PHASE_RUNNING, TR, "InstanceRunning", RQ_NONE,
     false, 0},
    /* provisioning */
    {"pending 2m: poll", s_pending_2m, "ADOPT", "", OP_PHASE_PROVISIONING, FA, "Provisioning",
     15000, false, 1},
    {"pending past timeouts.create: replace", s_pending_timeout, "DELETE,SET_CREATE_PENDING,CREATE",
     "ProvisioningTimeout,Creating", OP_PHASE_FAILING_OVER, FA, "ProvisioningTimeout", 250, false,
     1},
    {"pending past timeout, failover off", s_pending_timeout_no_failover, "ADOPT",
     "ProvisioningTimeout", OP_PHASE_FAILED, FA, "ProvisioningTimeout", 15000, false, 1},
    {"pending past timeout, attempts used", s_pending_timeout_exhausted, "ADOPT",
     "ProvisioningTimeout", OP_PHASE_FAILED, FA, "ProvisioningTimeout", 15000, false, 1},
    {"pending past timeout, cached object", s_pending_timeout_cached, "REFRESH", "", OP_PHASE_NONE,
     U, NULL, RQ_NONE, false, 0},
    /* resize and drift */
    {"spec changed: resize", s_resize_spec, "RESIZE", "Resizing", OP_PHASE_RESIZING, FA, "Resizing",
     250, false, 1},
    {"resizing: wait", s_resizing, "", "", OP_PHASE_RESIZING, FA, "Resizing", 5000, false, 1},
    {"resizing past timeouts.resize", s_resizing_timeout, "", "ResizeTimeout", OP_PHASE_RESIZING,
     FA, "ResizeTimeout", 15000, false, 1},
    {"resized: matches generation 2", s_resized, "", "", OP_PHASE_RUNNING, TR, "InstanceRunning",
     RQ_NONE, false, 1},
    {"drift: resized behind our back", s_drift_cpu, "RESIZE", "DriftDetected", OP_PHASE_RESIZING,
     FA, "Resizing", 250, false, 1},
    {"disk larger than spec", s_disk_bigger, "", "DiskLargerThanSpec", OP_PHASE_RUNNING, FA,
     "DiskLargerThanSpec", RQ_NONE, false, 1},
    {"drift: stopped behind our back", s_stopped, "START", "DriftDetected", OP_PHASE_RUNNING, FA,
     "InstanceStopped", 250, false, 1},
    {"stopping: wait, then start", s_stopping, "", "", OP_PHASE_RUNNING, FA, "InstanceStopping",
     1000, false, 1},
    {"resize refused this generation: held", s_resize_refused, "", "", OP_PHASE_RUNNING, FA,
     "ResizeRejected", RQ_NONE, false, 1},
    /* failover */
    {"crashed: replace", s_crashed, "DELETE,SET_CREATE_PENDING,CREATE", "FailedOver,Creating",
     OP_PHASE_FAILING_OVER, FA, "FailingOver", 250, false, 1},
    {"crashed, failover off", s_crashed_no_failover, "", "InstanceCrashed", OP_PHASE_FAILED, FA,
     "InstanceCrashed", RQ_NONE, false, 1},
    {"crashed, attempts used", s_crashed_exhausted, "", "FailoverExhausted", OP_PHASE_FAILED, FA,
     "FailoverExhausted", RQ_NONE, false, 1},
    {"crashed, cached object", s_crashed_cached, "REFRESH", "", OP_PHASE_NONE, U, NULL, RQ_NONE,
     false, 0},
    {"vanished: replace", s_vanished, "SET_CREATE_PENDING,CREATE", "FailedOver,Creating",
     OP_PHASE_FAILING_OVER, FA, "FailingOver", 250, false, 1},
    {"vanished, not searched by tag", s_vanished_not_searched, "REFRESH", "", OP_PHASE_NONE, U,
     NULL, RQ_NONE, false, 0},
    {"vanished, failover off", s_vanished_no_failover, "", "InstanceVanished", OP_PHASE_FAILED, FA,
     "InstanceVanished", RQ_NONE, false, 1},
    {"failover resumed after a kill", s_resume_failover, "CREATE", "Creating",
     OP_PHASE_FAILING_OVER, FA, "FailingOver", 250, false, 1},
    {"replacement pending", s_replacement_pending, "ADOPT", "", OP_PHASE_FAILING_OVER, FA,
     "FailingOver", RQ_ANY, false, 1},
    {"marker spent (its instance deleting): new key", s_marker_spent, "SET_CREATE_PENDING,CREATE",
     "Creating", OP_PHASE_FAILING_OVER, FA, "FailingOver", 250, false, 1},
    {"two tagged instances: older deleted", s_duplicates, "DELETE", "DuplicateInstance",
     OP_PHASE_RUNNING, TR, "InstanceRunning", RQ_NONE, false, -1},
    {"instance superseded by a newer create", s_superseded, "DELETE,CREATE",
     "DuplicateInstance,Creating", OP_PHASE_FAILING_OVER, FA, "FailingOver", 250, false, 1},
    {"untagged stranger left alone", s_untagged_stranger_ignored, "", "", OP_PHASE_RUNNING, TR,
     "InstanceRunning", RQ_NONE, false, 0},
    /* deletion */
    {"delete: instance running", s_del_running, "DELETE", "Deleting", OP_PHASE_DELETING, FA,
     "Deleting", 250, false, 1},
    {"delete: instance deleting", s_del_deleting, "", "", OP_PHASE_DELETING, FA, "Deleting", 500,
     false, 1},
    {"delete: gone", s_del_gone, "REMOVE_FINALIZER", "Deleted", OP_PHASE_DELETING, FA, "Deleting",
     RQ_NONE, false, 0},
    {"delete: tag search first", s_del_not_searched, "REFRESH", "", OP_PHASE_RUNNING, TR, NULL,
     RQ_NONE, false, 0},
    {"delete: past timeouts.delete", s_del_timeout, "DELETE", "DeleteTimeout", OP_PHASE_DELETING,
     FA, "DeleteTimeout", 15000, false, 1},
    {"delete: orphan found by tag", s_del_orphan_by_tag, "DELETE", "Deleting", OP_PHASE_DELETING,
     FA, "Deleting", 250, false, 1},
    {"delete: cloud down, finalizer stays", s_del_outage, "", "CloudUnreachable", OP_PHASE_DELETING,
     TR, NULL, 1000, true, 1},
    {"retain: untag, release", s_retain, "UNTAG,REMOVE_FINALIZER", "Retained", OP_PHASE_DELETING,
     FA, "Deleting", RQ_NONE, false, 0},
    {"retain: already untagged", s_retain_untagged, "REMOVE_FINALIZER", "", OP_PHASE_DELETING, FA,
     "Deleting", RQ_NONE, false, 0},
    {"deleting without our finalizer", s_del_no_finalizer, "", "", OP_PHASE_RUNNING, TR, NULL,
     RQ_NONE, false, 0},
    /* paused */
    {"paused: hands off", s_paused, "", "", OP_PHASE_RUNNING, TR, NULL, RQ_NONE, false, 0},
    {"paused while deleting", s_paused_deleting, "", "", OP_PHASE_RUNNING, TR, NULL, RQ_NONE, false,
     0},
    /* cloud errors */
    {"lookup 503: back-off", s_err_retryable, "", "CloudUnreachable", OP_PHASE_RUNNING, TR, NULL,
     8000, true, 1},
    {"lookup 429: Retry-After", s_err_throttled, "", "", OP_PHASE_RUNNING, TR, NULL, 7000, true, 1},
    {"lookup 429 without Retry-After", s_err_throttled_no_header, "", "", OP_PHASE_RUNNING, TR,
     NULL, 1000, true, 1},
    {"lookup 401: slow retry", s_err_401, "", "Unauthorized", OP_PHASE_RUNNING, TR, NULL, 60000,
     true, 1},
    {"lookup 403", s_err_403, "", "Forbidden", OP_PHASE_RUNNING, TR, NULL, 60000, true, 1},
    {"credentials missing", s_creds_missing, "", "CredentialsMissing", OP_PHASE_RUNNING, TR, NULL,
     60000, true, 1},
    {"cloud back: recovery events", s_recovered, "", "CloudReachable,CloudAuthorized",
     OP_PHASE_RUNNING, TR, "InstanceRunning", RQ_NONE, false, 1},
    {"create 400 InvalidZone", s_create_invalid_zone, "", "InvalidZone", OP_PHASE_FAILED, FA,
     "InvalidZone", RQ_NONE, true, 1},
    {"create 400 InvalidImage", s_create_invalid_image, "", "InvalidImage", OP_PHASE_FAILED, FA,
     "InvalidImage", RQ_NONE, true, 1},
    {"create 400 InvalidRequest", s_create_invalid_request, "", "InvalidSpec", OP_PHASE_FAILED, FA,
     "InvalidSpec", RQ_NONE, true, 1},
    {"refused create held this generation", s_create_refused_held, "", "", OP_PHASE_FAILED, FA,
     "InvalidZone", RQ_NONE, false, 1},
    {"refused create retried on a new generation", s_create_refused_new_generation, "CREATE",
     "Creating", OP_PHASE_PROVISIONING, FA, "Provisioning", 250, false, 1},
    {"create 409 capacity, first create", s_create_capacity_first, "", "InsufficientCapacity",
     OP_PHASE_PENDING, FA, "InsufficientCapacity", 1000, true, 1},
    {"create 409 capacity, failover: next zone", s_create_capacity_failover, "SET_CREATE_PENDING",
     "ZoneFallback", OP_PHASE_PENDING, FA, "InsufficientCapacity", 250, false, 1},
    {"create 409 capacity in the last zone", s_create_capacity_last_zone, "SET_CREATE_PENDING",
     "InsufficientCapacity", OP_PHASE_PENDING, FA, "InsufficientCapacity", 1000, true, 1},
    {"fallback zone refused: next zone", s_create_fallback_zone_invalid, "SET_CREATE_PENDING",
     "ZoneFallback", OP_PHASE_PENDING, FA, "InsufficientCapacity", 250, false, 1},
    {"create key spent: new attempt", s_create_key_spent, "SET_CREATE_PENDING", "FailedOver",
     OP_PHASE_PENDING, U, NULL, 250, false, 1},
    {"create 503: back-off", s_create_503, "", "CloudUnreachable", OP_PHASE_PENDING, U, NULL, 1000,
     true, 1},
    {"resize 400: refused until spec changes", s_resize_shrink, "", "ResizeRejected",
     OP_PHASE_RUNNING, FA, "ResizeRejected", RQ_NONE, true, 1},
    {"delete 404 is success", s_delete_404, "", "", OP_PHASE_DELETING, TR, NULL, 250, false, -1},
    {"delete refused for good (405): slow retry", s_delete_refused, "", "DeleteRefused",
     OP_PHASE_DELETING, FA, "DeleteRefused", 300000, true, 1},
    {"delete refused again: no new Event", s_delete_refused_again, "", "", OP_PHASE_DELETING, FA,
     "DeleteRefused", 300000, true, -1},
    {"untag refused for good (400): slow retry", s_untag_refused, "", "UntagRefused",
     OP_PHASE_DELETING, FA, "UntagRefused", 300000, true, 1},
    {"delete 409 InvalidState: back-off", s_delete_409_transient, "", "", OP_PHASE_DELETING, TR,
     NULL, 1000, true, 1},
    {"resize 409 InvalidState: back-off", s_resize_409, "", "", OP_PHASE_RUNNING, TR, NULL, 1000,
     true, 1},
    {"create 409 IdempotencyMismatch", s_idem_mismatch, "", "IdempotencyMismatch", OP_PHASE_PENDING,
     U, NULL, 1000, true, 1},
};

static void test_table(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        reset();
        r->setup();
        run();
        bool ok = true;
        if (strcmp(kinds(), r->actions) != 0) ok = false;
        if (strcmp(events(), r->events) != 0) ok = false;
        op_phase want_phase = r->phase;
        if (want_phase == OP_PHASE_NONE) want_phase = O.status.phase; /* unchanged */
        if (P.status.phase != want_phase) ok = false;
        if (r->ready_reason && (cnd(OP_COND_READY)->status != r->ready ||
                                strcmp(cnd(OP_COND_READY)->reason, r->ready_reason) != 0))
            ok = false;
        if (r->requeue == RQ_ANY ? P.requeue_ms <= 0 : P.requeue_ms != r->requeue) ok = false;
        if (P.failed != r->failed) ok = false;
        if (r->write >= 0 && P.write_status != (r->write == 1)) ok = false;
        CU_ASSERT(ok);
        if (!ok)
            fprintf(stderr,
                    "\n  [%s]\n    actions %s (want %s)\n    events  %s (want %s)\n    phase %s "
                    "(want %s) ready %d %s requeue %lld (want %lld) failed %d write %d\n",
                    r->name, kinds(), r->actions, events(), r->events,
                    op_phase_name(P.status.phase), op_phase_name(want_phase),
                    cnd(OP_COND_READY)->status, cnd(OP_COND_READY)->reason, (long long)P.requeue_ms,
                    (long long)r->requeue, P.failed, P.write_status);
        /* whatever the path: every written condition is complete */
        for (int t = 0; P.write_status && t < OP_COND_COUNT; t++)
            CU_ASSERT(P.status.cond[t].present && P.status.cond[t].reason[0] &&
                      P.status.cond[t].observed_generation > 0 &&
                      P.status.cond[t].observed_generation <= O.generation);
        /* and a create never comes without a fresh tag search */
        if (find(OP_ACT_CREATE, 0)) CU_ASSERT(O.fresh && V.searched_by_tag);
    }
}

/* ---------------------------------------------------------------- details */

static void test_create_details(void)
{
    reset();
    run();
    const op_action *m = find(OP_ACT_SET_CREATE_PENDING, 0), *c = find(OP_ACT_CREATE, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(m < c); /* the marker goes first */
    CU_ASSERT_STRING_EQUAL(c->key, UID);
    CU_ASSERT_STRING_EQUAL(m->key, UID);
    CU_ASSERT_STRING_EQUAL(c->zone, "hk-1a");
    CU_ASSERT_EQUAL(c->attempt, 0);
    CU_ASSERT_EQUAL(m->at_ms, T0);
    CU_ASSERT_EQUAL(P.status.failover_count, 0);

    /* finalizer first of all */
    reset();
    O.has_finalizer = false;
    run();
    CU_ASSERT_EQUAL(P.actions[0].kind, OP_ACT_ADD_FINALIZER);

    /* the body: a function of object and action, carrying the tags */
    reset();
    run();
    c = find(OP_ACT_CREATE, 0);
    cJSON *b1 = op_create_body(&O, c), *b2 = op_create_body(&O, c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b1);
    CU_ASSERT(cJSON_Compare(b1, b2, true));
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(b1, "name")->valuestring, "web-1");
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(b1, "cpu")->valueint, 2);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(b1, "memoryMiB")->valueint, 4096);
    CU_ASSERT_EQUAL(cJSON_GetObjectItem(b1, "diskGiB")->valueint, 40);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(b1, "zone")->valuestring, "hk-1a");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(b1, "networkType")->valuestring, "standard");
    cJSON *tags = cJSON_GetObjectItem(b1, "tags");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(tags, OP_TAG_UID)->valuestring, UID);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(tags, OP_TAG_NAME)->valuestring, "default/web-1");
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(tags, OP_TAG_ATTEMPT)->valuestring, "0");
    cJSON_Delete(b1);
    cJSON_Delete(b2);

    /* a failover create: key with the attempt, tags with it too */
    reset();
    s_crashed();
    run();
    c = find(OP_ACT_CREATE, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(c->key, UID "-attempt-1");
    CU_ASSERT_EQUAL(P.status.failover_count, 1);
    CU_ASSERT_STRING_EQUAL(P.status.instance_id, "");
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_DELETE, 0)->instance_id, "i-1");
    CU_ASSERT(find(OP_ACT_DELETE, 0) < find(OP_ACT_CREATE, 0)); /* free the capacity first */
    CU_ASSERT(strstr(find_event("FailedOver")->message, "attempt 1 of 3") != NULL);
    CU_ASSERT_EQUAL(find_event("FailedOver")->ev_type, OP_EV_WARNING);
    b1 = op_create_body(&O, c);
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(b1, "tags"), OP_TAG_ATTEMPT)->valuestring, "1");
    cJSON_Delete(b1);

    /* resuming a failover keeps its key and raises failoverCount to it */
    reset();
    s_resume_failover();
    run();
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_CREATE, 0)->key, UID "-attempt-2");
    CU_ASSERT_EQUAL(P.status.failover_count, 2);
    CU_ASSERT_PTR_NULL(find(OP_ACT_SET_CREATE_PENDING, 0)); /* the marker already says so */

    /* a stale lower marker is not reused: one past every attempt seen */
    reset();
    O.status.failover_count = 2;
    marker(0, "hk-1a", T0 - MIN);
    run();
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_CREATE, 0)->key, UID "-attempt-3");
    /* an unreadable marker forces a new key too */
    reset();
    op_marker_parse("garbage", UID, &O.marker);
    CU_ASSERT(O.marker.present && !O.marker.valid);
    run();
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_CREATE, 0)->key, UID "-attempt-1");
    CU_ASSERT_PTR_NOT_NULL(find(OP_ACT_SET_CREATE_PENDING, 0));

    /* the zone from the marker (a fallback) is the one created in */
    reset();
    O.status.failover_count = 1;
    marker(1, "hk-1b", T0 - SEC);
    run();
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_CREATE, 0)->zone, "hk-1b");
}

static void test_provisioning_details(void)
{
    /* the poll never oversleeps the deadline */
    reset();
    marker(0, "hk-1a", T0 - 5 * MIN + 2 * SEC); /* markers hold whole seconds */
    inst("i-1", OP_INST_PENDING, 0);
    I.now_ms = T0 + 300;
    run();
    CU_ASSERT_EQUAL(P.requeue_ms, 1700);
    /* polls thin out: 250 ms at first, 2 s after 4 s */
    reset();
    marker(0, "hk-1a", T0);
    inst("i-1", OP_INST_PENDING, 0);
    run();
    CU_ASSERT_EQUAL(P.requeue_ms, 250);
    reset();
    marker(0, "hk-1a", T0 - 4 * SEC);
    inst("i-1", OP_INST_PENDING, 0);
    run();
    CU_ASSERT_EQUAL(P.requeue_ms, 2000);
    /* no marker: the instance's createdAt is the start */
    reset();
    recorded("i-1");
    O.status.phase = OP_PHASE_PROVISIONING;
    inst("i-1", OP_INST_PENDING, 0)->created_ms = T0 - 6 * MIN;
    run();
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_READY)->reason, "ProvisioningTimeout");
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_DELETE, 0)->instance_id, "i-1");

    /* a timeout replacement counts as a failover */
    reset();
    s_pending_timeout();
    run();
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_CREATE, 0)->key, UID "-attempt-1");
    CU_ASSERT_EQUAL(P.status.failover_count, 1);
    CU_ASSERT(strstr(cnd(OP_COND_READY)->message, "attempt 1 of 3") != NULL);

    /* giving up reports once, then stays quiet */
    reset();
    s_pending_timeout_no_failover();
    run();
    CU_ASSERT_PTR_NOT_NULL(find_event("ProvisioningTimeout"));
    persist();
    run();
    CU_ASSERT_STRING_EQUAL(events(), "");
    CU_ASSERT_FALSE(P.write_status);
    /* and if it ever starts, it is adopted as Running */
    V.inst[0].state = OP_INST_RUNNING;
    V.inst[0].n_ips = 1;
    run();
    CU_ASSERT_EQUAL(P.status.phase, OP_PHASE_RUNNING);
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->status, OP_CS_TRUE);
}

static void test_resize_details(void)
{
    reset();
    s_resize_spec();
    O.spec.memory_mib = 8192;
    O.spec.disk_gib = 60;
    run();
    const op_action *r = find(OP_ACT_RESIZE, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r);
    CU_ASSERT(r->cpu == 4 && r->memory_mib == 8192 && r->disk_gib == 60);
    cJSON *b = op_resize_body(r);
    char *s = cJSON_PrintUnformatted(b);
    CU_ASSERT_STRING_EQUAL(s, "{\"cpu\":4,\"memoryMiB\":8192,\"diskGiB\":60}");
    free(s);
    cJSON_Delete(b);
    CU_ASSERT_EQUAL(P.status.observed_generation, 1); /* not yet 2 */

    /* only what differs is sent; a bigger disk is never shrunk */
    reset();
    recorded("i-1");
    inst("i-1", OP_INST_RUNNING, 0)->disk_gib = 80;
    O.generation = 2;
    O.spec.cpu = 3;
    run();
    r = find(OP_ACT_RESIZE, 0);
    CU_ASSERT(r && r->cpu == 3 && r->memory_mib == 0 && r->disk_gib == 0);
    b = op_resize_body(r);
    s = cJSON_PrintUnformatted(b);
    CU_ASSERT_STRING_EQUAL(s, "{\"cpu\":3}");
    free(s);
    cJSON_Delete(b);

    /* observedGeneration reaches the generation only when it matches */
    reset();
    s_resizing();
    run();
    CU_ASSERT_EQUAL(P.status.observed_generation, 1);
    reset();
    s_resized();
    run();
    CU_ASSERT_EQUAL(P.status.observed_generation, 2);
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->observed_generation, 2);

    /* a refused resize is retried once the spec changes again */
    reset();
    s_resize_refused();
    O.generation = 3;
    run();
    CU_ASSERT_STRING_EQUAL(kinds(), "RESIZE");

    /* the timeout Event once, not on every poll */
    reset();
    s_resizing_timeout();
    run();
    persist();
    run();
    CU_ASSERT_STRING_EQUAL(events(), "");
}

static void test_failover_zones(void)
{
    op_config c = op_config_default();
    CU_ASSERT_PTR_NULL(op_next_zone(&c, "hk-1a", "hk-1a")); /* no zones configured */
    c.zones = ZONES;
    c.n_zones = 5;
    CU_ASSERT_STRING_EQUAL(op_next_zone(&c, "hk-1a", "hk-1a"), "hk-1b");
    CU_ASSERT_STRING_EQUAL(op_next_zone(&c, "hk-1a", "hk-1b"), "hk-1c"); /* hk-2a: other region */
    CU_ASSERT_PTR_NULL(op_next_zone(&c, "hk-1a", "hk-1c"));
    CU_ASSERT_STRING_EQUAL(op_next_zone(&c, "hk-1b", "hk-1b"), "hk-1a"); /* spec zone first */
    CU_ASSERT_STRING_EQUAL(op_next_zone(&c, "hk-1b", "hk-1a"), "hk-1c");
    CU_ASSERT_PTR_NULL(op_next_zone(&c, "sg-1a", "sg-1a"));
    CU_ASSERT_PTR_NULL(op_next_zone(&c, "hk-1a", "eu-west-1a")); /* not a candidate */
    static const char *const dup[] = {"us-east-1a", "us-east-1b", "us-east-1a", "us-east-1c"};
    c.zones = dup;
    c.n_zones = 4;
    CU_ASSERT_STRING_EQUAL(op_next_zone(&c, "us-east-1a", "us-east-1b"), "us-east-1c");
    static const char *const plain[] = {"zone", "zone2"};
    c.zones = plain;
    c.n_zones = 2;
    CU_ASSERT_PTR_NULL(op_next_zone(&c, "zone", "zone")); /* no region: no siblings */

    /* the fallback rewrites the marker with the same key, in the next zone */
    reset();
    s_create_capacity_failover();
    run();
    const op_action *m = find(OP_ACT_SET_CREATE_PENDING, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_STRING_EQUAL(m->key, UID "-attempt-1");
    CU_ASSERT_STRING_EQUAL(m->zone, "hk-1b");
    CU_ASSERT_EQUAL(m->attempt, 1);
    /* every zone tried: back to the spec zone, with back-off */
    reset();
    s_create_capacity_last_zone();
    I.failures = 2;
    run();
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_SET_CREATE_PENDING, 0)->zone, "hk-1a");
    CU_ASSERT_EQUAL(P.requeue_ms, 4000);
}

static void test_error_details(void)
{
    /* back-off grows with failures; jitter from the seeded rng stays in range */
    for (unsigned f = 0; f < 12; f++) {
        reset();
        s_err_retryable();
        I.failures = f;
        run();
        int64_t want = 1000LL << f;
        if (want > 300000) want = 300000;
        CU_ASSERT_EQUAL(P.requeue_ms, want);
    }
    csl_rng rng;
    csl_rng_seed(&rng, 99);
    reset();
    s_err_retryable();
    I.rng = &rng;
    run();
    CU_ASSERT(P.requeue_ms <= 8000 && P.requeue_ms >= 6400);

    /* CloudReachable=False once; no new Event while it stays down */
    reset();
    s_err_retryable();
    run();
    CU_ASSERT_EQUAL(cnd(OP_COND_CLOUD_REACHABLE)->status, OP_CS_FALSE);
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_CLOUD_REACHABLE)->reason, "CloudUnavailable");
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_SYNCED)->reason, "CloudError");
    CU_ASSERT(strstr(cnd(OP_COND_SYNCED)->message, "HTTP 503 ServiceUnavailable") != NULL);
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->status, OP_CS_TRUE); /* the server is not judged */
    CU_ASSERT_EQUAL(cnd(OP_COND_CLOUD_REACHABLE)->last_transition_ms, T0);
    persist();
    I.now_ms = T0 + 10 * SEC;
    run();
    CU_ASSERT_STRING_EQUAL(events(), "");
    CU_ASSERT_FALSE(P.write_status);
    CU_ASSERT_EQUAL(cnd(OP_COND_CLOUD_REACHABLE)->last_transition_ms, T0);

    /* 401 then 403: a new reason is a new Event */
    reset();
    s_err_401();
    run();
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_CLOUD_AUTHORIZED)->reason, "Unauthorized");
    CU_ASSERT_EQUAL(cnd(OP_COND_CLOUD_REACHABLE)->status, OP_CS_TRUE);
    persist();
    V.err.http_status = 403;
    run();
    CU_ASSERT_STRING_EQUAL(events(), "Forbidden");
    persist();
    run();
    CU_ASSERT_STRING_EQUAL(events(), "");

    /* a refused create is not retried this generation: the next reconcile
     * (no attempt error) creates nothing */
    reset();
    s_create_invalid_zone();
    run();
    CU_ASSERT(strstr(cnd(OP_COND_READY)->message, "refused") != NULL);
    persist();
    I.attempt.failed = false;
    run();
    CU_ASSERT_STRING_EQUAL(kinds(), "");
    CU_ASSERT_EQUAL(P.requeue_ms, 0);
    O.generation++;
    run();
    CU_ASSERT_STRING_EQUAL(kinds(), "CREATE");

    /* a spent key: the new marker names the next attempt */
    reset();
    s_create_key_spent();
    run();
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_SET_CREATE_PENDING, 0)->key, UID "-attempt-1");
    reset();
    s_create_key_spent();
    O.spec.failover_enabled = false;
    run();
    CU_ASSERT_STRING_EQUAL(kinds(), "");
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_READY)->reason, "InstanceVanished");

    /* a failed create of attempt N: failoverCount says N (the marker did) */
    reset();
    s_create_503();
    run();
    CU_ASSERT_EQUAL(P.status.failover_count, 1);

    /* a failed snapshot keeps lastScheduleTime, so it is tried again */
    reset();
    recorded("i-1");
    O.status.backups.present = true;
    O.status.backups.last_schedule_ms = T0 - 6 * 3600 * SEC;
    fail_action(OP_ACT_SNAPSHOT, OP_ERR_CONFLICT, 409, "InvalidState");
    run();
    CU_ASSERT_EQUAL(P.status.backups.last_schedule_ms, T0 - 6 * 3600 * SEC);
    fail_action(OP_ACT_SNAPSHOT, OP_ERR_INVALID, 400, "InvalidRequest");
    run();
    CU_ASSERT_STRING_EQUAL(events(), "SnapshotFailed");
    CU_ASSERT_EQUAL(P.requeue_ms, 1000);

    /* credentials come back */
    reset();
    s_creds_missing();
    run();
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_CLOUD_AUTHORIZED)->reason, "CredentialsMissing");
    CU_ASSERT(strstr(cnd(OP_COND_CLOUD_AUTHORIZED)->message, "cloud-credentials not found") !=
              NULL);
    persist();
    I.creds = OP_CREDS_OK;
    inst("i-1", OP_INST_RUNNING, 0);
    run();
    CU_ASSERT_STRING_EQUAL(events(), "CloudAuthorized");
    CU_ASSERT_EQUAL(cnd(OP_COND_CLOUD_AUTHORIZED)->status, OP_CS_TRUE);
    CU_ASSERT_EQUAL(cnd(OP_COND_SYNCED)->status, OP_CS_TRUE);
    reset();
    I.creds = OP_CREDS_MALFORMED;
    run();
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_CLOUD_AUTHORIZED)->reason, "CredentialsInvalid");
    CU_ASSERT_STRING_EQUAL(kinds(), "");
}

static void test_events_once(void)
{
    /* crash with failover off: one Event, then silence */
    reset();
    s_crashed_no_failover();
    run();
    CU_ASSERT_STRING_EQUAL(events(), "InstanceCrashed");
    CU_ASSERT_STRING_EQUAL(P.status.instance_id, "i-1"); /* which one crashed */
    persist();
    run();
    CU_ASSERT_STRING_EQUAL(events(), "");
    CU_ASSERT_FALSE(P.write_status);
    /* enabling failover (a spec change) replaces it */
    O.spec.failover_enabled = true;
    O.generation = 2;
    run();
    CU_ASSERT_STRING_EQUAL(kinds(), "DELETE,SET_CREATE_PENDING,CREATE");

    /* Ready=True after a wait is announced once; a first Ready without a
     * wait (the quick poll after a create) is not: Creating said it */
    reset();
    s_adopt_running();
    run();
    CU_ASSERT_PTR_NULL(find_event("InstanceReady"));
    reset();
    s_pending_2m();
    run();
    persist();
    V.inst[0].state = OP_INST_RUNNING;
    V.inst[0].n_ips = 1;
    strcpy(V.inst[0].ips[0], "10.0.0.7");
    run();
    CU_ASSERT_PTR_NOT_NULL(find_event("InstanceReady"));
    CU_ASSERT(strstr(find_event("InstanceReady")->message, "2 CPU, 4096 MiB memory, 40 GiB disk") !=
              NULL);
    persist();
    run();
    CU_ASSERT_STRING_EQUAL(events(), "");
    CU_ASSERT_FALSE(P.write_status);
}

/* ---------------------------------------------------------------- backups */

static void backup_fixture(const char *schedule)
{
    reset();
    recorded("i-1");
    inst("i-1", OP_INST_RUNNING, 0);
    O.spec.has_backup = true;
    strcpy(O.spec.backup_schedule, schedule);
    O.spec.backup_retain = 7;
    O.status.backups.present = true;
}

static void test_backups(void)
{
    /* T0 is 2027-01-15T08:00:00Z; every 6 hours: ran at 06:00, next due 12:00 */
    backup_fixture("0 */6 * * *");
    O.status.backups.last_schedule_ms = T0 - 2 * 3600 * SEC;
    run();
    CU_ASSERT_STRING_EQUAL(kinds(), "");
    CU_ASSERT_EQUAL(P.requeue_ms, 4 * 3600 * SEC);
    /* at 12:00:30 the 12:00 run is due */
    I.now_ms = T0 + 4 * 3600 * SEC + 30 * SEC;
    run();
    const op_action *s = find(OP_ACT_SNAPSHOT, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s->instance_id, "i-1");
    char key[OP_KEY_LEN];
    snprintf(key, sizeof key, "%s-snap-%lld", UID, (T0 + 4 * 3600 * SEC) / 1000);
    CU_ASSERT_STRING_EQUAL(s->key, key);
    CU_ASSERT_EQUAL(P.status.backups.last_schedule_ms, T0 + 4 * 3600 * SEC);
    CU_ASSERT_PTR_NOT_NULL(find_event("SnapshotStarted"));
    cJSON *b = op_snapshot_body(&O, s);
    CU_ASSERT_STRING_EQUAL(cJSON_GetObjectItem(b, "name")->valuestring, "web-1-20270115-1200");
    CU_ASSERT_STRING_EQUAL(
        cJSON_GetObjectItem(cJSON_GetObjectItem(b, "tags"), OP_TAG_UID)->valuestring, UID);
    cJSON_Delete(b);
    /* the same reconcile again (crash before the status write) gives the same key */
    run();
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_SNAPSHOT, 0)->key, key);
    persist();
    run();
    CU_ASSERT_PTR_NULL(find(OP_ACT_SNAPSHOT, 0));

    /* missed for 3 runs: only the latest is taken; beyond the deadline none */
    backup_fixture("0 * * * *");
    O.status.backups.last_schedule_ms = T0 - 3 * 3600 * SEC;
    I.now_ms = T0 + 10 * SEC;
    CFG.backup_deadline_s = -1;
    run();
    CU_ASSERT_EQUAL(find(OP_ACT_SNAPSHOT, 0)->at_ms, T0);
    CU_ASSERT(strstr(find_event("SnapshotStarted")->message, "several missed") != NULL);
    CFG.backup_deadline_s = 5;
    run();
    CU_ASSERT_PTR_NULL(find(OP_ACT_SNAPSHOT, 0));
    /* no deadline and more than 100 missed: refused, said once */
    backup_fixture("* * * * *");
    CFG.backup_deadline_s = -1;
    O.status.backups.last_schedule_ms = T0 - 200 * MIN;
    run();
    CU_ASSERT_PTR_NULL(find(OP_ACT_SNAPSHOT, 0));
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_SYNCED)->reason, "TooManyMissedSchedules");
    CU_ASSERT_STRING_EQUAL(events(), "TooManyMissedSchedules");
    persist();
    run();
    CU_ASSERT_STRING_EQUAL(events(), "");
    /* never scheduled: counted from the object's creation */
    backup_fixture("30 7 * * *");
    O.status.backups.last_schedule_ms = 0;
    run();
    CU_ASSERT_EQUAL(find(OP_ACT_SNAPSHOT, 0)->at_ms, T0 - 30 * MIN);

    /* an invalid schedule (the CRD lets "5-1" through) */
    backup_fixture("5-1 * * * *");
    run();
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_SYNCED)->reason, "InvalidSchedule");
    CU_ASSERT(strstr(cnd(OP_COND_SYNCED)->message, "minute (field 1, column 1)") != NULL);
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->status, OP_CS_TRUE); /* the server itself is fine */
    CU_ASSERT_STRING_EQUAL(events(), "InvalidSchedule");
    persist();
    run();
    CU_ASSERT_STRING_EQUAL(events(), "");

    /* no snapshots while the server is not Ready */
    backup_fixture("* * * * *");
    V.inst[0].state = OP_INST_RESIZING;
    run();
    CU_ASSERT_PTR_NULL(find(OP_ACT_SNAPSHOT, 0));
    /* backup removed from the spec: status.backups is left as it was */
    backup_fixture("* * * * *");
    O.spec.has_backup = false;
    O.status.backups.last_schedule_ms = T0 - 5 * MIN;
    run();
    CU_ASSERT_PTR_NULL(find(OP_ACT_SNAPSHOT, 0));
    CU_ASSERT_EQUAL(P.status.backups.last_schedule_ms, T0 - 5 * MIN);
}

static void test_retention(void)
{
    backup_fixture("0 0 * * *");
    O.status.backups.last_schedule_ms = T0 - 8 * 3600 * SEC;
    O.status.backups.last_successful_ms = T0 - 2 * 86400 * SEC;
    V.snapshots_listed = true;
    /* 9 available, one a day, listed newest first; one more creating */
    for (int d = 0; d < 9; d++) {
        op_snapshot *s = &V.snaps[V.n_snaps++];
        snprintf(s->id, sizeof s->id, "snap-%d", 8 - d);
        s->state = OP_SNAP_AVAILABLE;
        s->created_ms = T0 - 8 * 3600 * SEC - (int64_t)d * 86400 * SEC + 123;
    }
    op_snapshot *cr = &V.snaps[V.n_snaps++];
    strcpy(cr->id, "snap-new");
    cr->state = OP_SNAP_CREATING;
    cr->created_ms = T0 - 2 * SEC;
    run();
    /* the two oldest go; the creating one neither counts nor goes */
    CU_ASSERT_STRING_EQUAL(kinds(), "DELETE_SNAPSHOT,DELETE_SNAPSHOT");
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_DELETE_SNAPSHOT, 0)->snapshot_id, "snap-0");
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_DELETE_SNAPSHOT, 1)->snapshot_id, "snap-1");
    const op_backups *b = &P.status.backups;
    CU_ASSERT_EQUAL(b->n, 8);
    CU_ASSERT_STRING_EQUAL(b->snaps[0].id, "snap-2"); /* oldest first */
    CU_ASSERT_STRING_EQUAL(b->snaps[6].id, "snap-8");
    CU_ASSERT_STRING_EQUAL(b->snaps[7].id, "snap-new");
    CU_ASSERT_EQUAL(b->snaps[0].created_ms % 1000, 0); /* whole seconds */
    CU_ASSERT_EQUAL(b->last_successful_ms, T0);        /* a new one completed */
    CU_ASSERT_PTR_NOT_NULL(find_event("SnapshotCompleted"));
    CU_ASSERT_EQUAL(P.requeue_ms, 1000); /* poll the creating one */
    persist();
    run();
    CU_ASSERT_PTR_NULL(find_event("SnapshotCompleted"));

    /* a big backlog is pruned OP_PRUNE_MAX at a time */
    backup_fixture("0 0 * * *");
    O.status.backups.last_schedule_ms = T0 - 8 * 3600 * SEC;
    O.spec.backup_retain = 1;
    V.snapshots_listed = true;
    for (int d = 0; d < 40; d++) {
        op_snapshot *s = &V.snaps[V.n_snaps++];
        snprintf(s->id, sizeof s->id, "snap-%02d", d);
        s->state = OP_SNAP_AVAILABLE;
        s->created_ms = T0 - (int64_t)(40 - d) * 3600 * SEC;
    }
    run();
    size_t n = 0;
    for (size_t i = 0; i < P.n; i++) n += P.actions[i].kind == OP_ACT_DELETE_SNAPSHOT;
    CU_ASSERT_EQUAL(n, OP_PRUNE_MAX);
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_DELETE_SNAPSHOT, 0)->snapshot_id, "snap-00");
    CU_ASSERT_EQUAL(P.requeue_ms, 250);
    CU_ASSERT(P.n <= OP_ACTIONS_MAX);
}

/* ---------------------------------------------------------------- status */

static void test_status_diff(void)
{
    reset();
    recorded("i-1");
    op_status a = O.status, b = O.status;
    CU_ASSERT_FALSE(op_status_differs(&a, &b));
    b.cond[OP_COND_READY].last_transition_ms += 5000; /* churn only */
    CU_ASSERT_FALSE(op_status_differs(&a, &b));
    b = a;
    strcpy(b.cond[OP_COND_SYNCED].message, "other");
    CU_ASSERT(op_status_differs(&a, &b));
    b = a;
    b.cond[OP_COND_SYNCED].observed_generation++;
    CU_ASSERT(op_status_differs(&a, &b));
    b = a;
    b.cond[OP_COND_CLOUD_AUTHORIZED].present = false;
    CU_ASSERT(op_status_differs(&a, &b));
    b = a;
    strcpy(b.ips[0], "10.0.0.8");
    CU_ASSERT(op_status_differs(&a, &b));
    b = a;
    b.n_ips = 2;
    CU_ASSERT(op_status_differs(&a, &b));
    b = a;
    b.failover_count = 1;
    CU_ASSERT(op_status_differs(&a, &b));
    b = a;
    b.backups.present = true;
    CU_ASSERT(op_status_differs(&a, &b));
    a.backups.present = true;
    CU_ASSERT_FALSE(op_status_differs(&a, &b));
    b.backups.n = 1;
    strcpy(b.backups.snaps[0].id, "snap-1");
    CU_ASSERT(op_status_differs(&a, &b));
    a = b;
    b.backups.snaps[0].created_ms = 1000;
    CU_ASSERT(op_status_differs(&a, &b));

    /* lastTransitionTime: kept while the status stays, new when it changes */
    reset();
    s_steady();
    I.now_ms = T0 + 42 * SEC;
    run();
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->last_transition_ms, T0 - 3600 * SEC);
    V.inst[0].state = OP_INST_STOPPING;
    run();
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->last_transition_ms, T0 + 42 * SEC);
    CU_ASSERT_EQUAL(cnd(OP_COND_CLOUD_REACHABLE)->last_transition_ms, T0 - 3600 * SEC);
    /* times written are whole seconds */
    I.now_ms = T0 + 42 * SEC + 999;
    run();
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->last_transition_ms, T0 + 42 * SEC);
    /* conditions never seen start Unknown, each with a reason */
    reset();
    s_create_503();
    run();
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->status, OP_CS_UNKNOWN);
    CU_ASSERT_STRING_EQUAL(cnd(OP_COND_READY)->reason, "Reconciling");
    CU_ASSERT_EQUAL(cnd(OP_COND_CLOUD_AUTHORIZED)->status, OP_CS_UNKNOWN);
}

/* ---------------------------------------------------------------- JSON */

static const char *const OBJ_JSON =
    "{\"apiVersion\":\"cloudserver.dev/v1\",\"kind\":\"CloudServer\","
    "\"metadata\":{\"name\":\"web-1\",\"namespace\":\"prod\",\"uid\":\"" UID "\","
    "\"generation\":3,\"creationTimestamp\":\"2027-01-15T07:00:00Z\","
    "\"finalizers\":[\"other/x\",\"cloudserver.dev/finalizer\"],"
    "\"annotations\":{\"cloudserver.dev/paused\":\"false\","
    "\"cloudserver.dev/create-pending\":\"" UID "-attempt-2 hk-1b 2027-01-15T07:59:00Z\"}},"
    "\"spec\":{\"cpu\":4,\"memory\":\"1536Mi\",\"disk\":\"1Ti\",\"image\":\"debian-12\","
    "\"zone\":\"hk-1a\",\"deletionPolicy\":\"Retain\",\"failover\":{\"maxAttempts\":5},"
    "\"backup\":{\"schedule\":\"0 */6 * * *\"},\"timeouts\":{\"create\":\"90s\"},"
    "\"credentialsSecretRef\":{\"name\":\"team-a\"}},"
    "\"status\":{\"phase\":\"Running\",\"instanceID\":\"i-0123\",\"zone\":\"hk-1b\","
    "\"ipAddresses\":[\"10.0.0.1\",\"10.0.0.2\"],\"observedGeneration\":2,\"failoverCount\":2,"
    "\"backups\":{\"lastScheduleTime\":\"2027-01-15T06:00:00Z\",\"snapshots\":[{\"id\":"
    "\"snap-1\",\"createdAt\":\"2027-01-15T06:00:01Z\"}]},"
    "\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"InstanceRunning\","
    "\"message\":\"ok\",\"lastTransitionTime\":\"2027-01-15T07:10:00Z\",\"observedGeneration\":2},"
    "{\"type\":\"SomethingElse\",\"status\":\"True\",\"reason\":\"X\",\"message\":\"\","
    "\"lastTransitionTime\":\"2027-01-15T07:10:00Z\"}]}}";

static void test_parse_object(void)
{
    cJSON *j = cJSON_Parse(OBJ_JSON);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    op_object o;
    char err[OP_ERR_LEN] = "";
    int rc = op_object_parse(j, &o, err, sizeof err);
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    CU_ASSERT_STRING_EQUAL(o.ns, "prod");
    CU_ASSERT_STRING_EQUAL(o.uid, UID);
    CU_ASSERT_EQUAL(o.generation, 3);
    CU_ASSERT_EQUAL(o.creation_ms, T0 - 3600 * SEC);
    CU_ASSERT(o.has_finalizer && !o.deleting && !o.paused && !o.fresh);
    CU_ASSERT(o.marker.present && o.marker.valid && o.marker.attempt == 2);
    CU_ASSERT_STRING_EQUAL(o.marker.zone, "hk-1b");
    CU_ASSERT_EQUAL(o.marker.at_ms, T0 - MIN);
    CU_ASSERT_EQUAL(o.spec.cpu, 4);
    CU_ASSERT_EQUAL(o.spec.memory_mib, 1536);
    CU_ASSERT_EQUAL(o.spec.disk_gib, 1024);
    CU_ASSERT_STRING_EQUAL(o.spec.network_type, "standard"); /* defaults */
    CU_ASSERT_EQUAL(o.spec.ip_count, 1);
    CU_ASSERT(o.spec.retain);
    CU_ASSERT(o.spec.failover_enabled);
    CU_ASSERT_EQUAL(o.spec.failover_max_attempts, 5);
    CU_ASSERT(o.spec.has_backup);
    CU_ASSERT_EQUAL(o.spec.backup_retain, 7);
    CU_ASSERT_EQUAL(o.spec.timeout_create_ms, 90 * SEC);
    CU_ASSERT_EQUAL(o.spec.timeout_resize_ms, 5 * MIN);
    CU_ASSERT_STRING_EQUAL(o.spec.credentials_secret, "team-a");
    CU_ASSERT_EQUAL(o.status.phase, OP_PHASE_RUNNING);
    CU_ASSERT_EQUAL(o.status.n_ips, 2);
    CU_ASSERT_EQUAL(o.status.failover_count, 2);
    CU_ASSERT_EQUAL(o.status.backups.n, 1);
    CU_ASSERT(o.status.cond[OP_COND_READY].present &&
              o.status.cond[OP_COND_READY].status == OP_CS_TRUE);
    CU_ASSERT_FALSE(o.status.cond[OP_COND_SYNCED].present);

    /* status round trip: what we write reads back equal */
    cJSON *s = op_status_to_json(&o.status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    cJSON_ReplaceItemInObject(j, "status", s);
    op_object o2;
    CU_ASSERT_EQUAL(op_object_parse(j, &o2, err, sizeof err), 0);
    CU_ASSERT_FALSE(op_status_differs(&o.status, &o2.status));
    CU_ASSERT_EQUAL(o2.status.cond[OP_COND_READY].last_transition_ms,
                    o.status.cond[OP_COND_READY].last_transition_ms);

    /* a decided status round-trips too, then decides the same */
    reset();
    s_crashed();
    run();
    s = op_status_to_json(&P.status);
    cJSON_ReplaceItemInObject(j, "status", s);
    CU_ASSERT_EQUAL(op_object_parse(j, &o2, err, sizeof err), 0);
    CU_ASSERT_FALSE(op_status_differs(&P.status, &o2.status));
    char *text = cJSON_PrintUnformatted(s);
    CU_ASSERT(strstr(text, "\"phase\":\"FailingOver\"") && strstr(text, "\"failoverCount\":1"));
    CU_ASSERT(strstr(text, "\"type\":\"Ready\",\"status\":\"False\",\"reason\":\"FailingOver\"") !=
              NULL);
    CU_ASSERT(strstr(text, "\"lastTransitionTime\":\"2027-01-15T08:00:00Z\"") != NULL);
    free(text);

    /* deletion, paused */
    cJSON *md = cJSON_GetObjectItem(j, "metadata");
    cJSON_AddStringToObject(md, "deletionTimestamp", "2027-01-15T08:00:00Z");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(md, "annotations"), OP_ANN_PAUSED,
                              cJSON_CreateString("true"));
    CU_ASSERT_EQUAL(op_object_parse(j, &o2, err, sizeof err), 0);
    CU_ASSERT(o2.deleting && o2.deletion_ms == T0 && o2.paused);
    cJSON_Delete(j);

    /* a damaged status is read as absent, never an error */
    j = cJSON_Parse("{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":"
                    "\"1Gi\",\"disk\":\"10Gi\",\"image\":\"x\",\"zone\":\"z\"},\"status\":{"
                    "\"phase\":\"Dancing\",\"ipAddresses\":\"nope\",\"failoverCount\":-3,"
                    "\"conditions\":[1,{\"type\":\"Ready\"},{\"type\":\"Ready\",\"status\":"
                    "\"Maybe\"}],\"backups\":{\"snapshots\":[{\"createdAt\":\"x\"}]}}}");
    CU_ASSERT_EQUAL(op_object_parse(j, &o2, err, sizeof err), 0);
    CU_ASSERT_EQUAL(o2.status.phase, OP_PHASE_NONE);
    CU_ASSERT_EQUAL(o2.status.n_ips, 0);
    CU_ASSERT_EQUAL(o2.status.failover_count, 0);
    CU_ASSERT_EQUAL(o2.status.cond[OP_COND_READY].status, OP_CS_UNKNOWN);
    CU_ASSERT_EQUAL(o2.status.backups.n, 0);
    CU_ASSERT(o2.spec.failover_enabled && o2.spec.failover_max_attempts == 3);
    CU_ASSERT_EQUAL(o2.spec.timeout_delete_ms, 5 * MIN);
    CU_ASSERT_FALSE(o2.marker.present);
    cJSON_Delete(j);
}

static void test_parse_object_errors(void)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"[]", "metadata: missing"},
        {"{\"metadata\":{\"uid\":\"u\"},\"spec\":{}}", "metadata.name: missing"},
        {"{\"metadata\":{\"name\":\"a\"},\"spec\":{}}", "metadata.uid: missing"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"}}", "spec: missing"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\",\"generation\":\"1\"},\"spec\":{}}",
         "metadata.generation: must be an integer"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{}}", "spec.cpu: missing"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":129}}",
         "spec.cpu: must be an integer 1 to 128"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1.5}}",
         "spec.cpu: must be an integer"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":4}}",
         "spec.memory: must be a quantity string"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1.3Gi\","
         "\"disk\":\"10Gi\"}}",
         "spec.memory: \"1.3Gi\" is not a whole number of MiB"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"4Gx\"}}",
         "spec.memory: "},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1Gi\","
         "\"disk\":\"40G\"}}",
         "spec.disk: \"40G\" is not a whole number of GiB"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1Gi\","
         "\"disk\":\"40Gi\",\"image\":\"\"}}",
         "spec.image: must not be empty"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1Gi\","
         "\"disk\":\"40Gi\",\"image\":\"x\"}}",
         "spec.zone: missing"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1Gi\","
         "\"disk\":\"40Gi\",\"image\":\"x\",\"zone\":\"z\",\"deletionPolicy\":\"Keep\"}}",
         "spec.deletionPolicy: \"Keep\" is not Delete or Retain"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1Gi\","
         "\"disk\":\"40Gi\",\"image\":\"x\",\"zone\":\"z\",\"failover\":{\"enabled\":\"yes\"}}}",
         "spec.failover.enabled: must be true or false"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1Gi\","
         "\"disk\":\"40Gi\",\"image\":\"x\",\"zone\":\"z\",\"backup\":{\"retain\":3}}}",
         "spec.backup.schedule: missing"},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1Gi\","
         "\"disk\":\"40Gi\",\"image\":\"x\",\"zone\":\"z\",\"timeouts\":{\"create\":\"5x\"}}}",
         "spec.timeouts.create: "},
        {"{\"metadata\":{\"name\":\"a\",\"uid\":\"u\"},\"spec\":{\"cpu\":1,\"memory\":\"1Gi\","
         "\"disk\":\"40Gi\",\"image\":\"x\",\"zone\":\"z\",\"ipCount\":0}}",
         "spec.ipCount: must be an integer 1 to 256"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        CU_ASSERT_PTR_NOT_NULL(j);
        op_object o;
        memset(&o, 0x5a, sizeof o);
        unsigned char before = ((unsigned char *)&o)[100];
        char err[OP_ERR_LEN] = "";
        int rc = op_object_parse(j, &o, err, sizeof err);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT(strstr(err, cases[i].want) != NULL);
        CU_ASSERT_EQUAL(((unsigned char *)&o)[100], before); /* untouched */
        if (rc != -1 || !strstr(err, cases[i].want))
            fprintf(stderr, "\n  case %zu: rc=%d err=%s (want %s)\n", i, rc, err, cases[i].want);
        cJSON_Delete(j);
    }
    op_object o;
    CU_ASSERT_EQUAL(op_object_parse(NULL, &o, NULL, 0), -1);
}

static void test_marker(void)
{
    op_marker m = {true, true, UID "-attempt-12", 12, "hk-1b", T0};
    char v[256];
    op_marker_format(&m, v, sizeof v);
    CU_ASSERT_STRING_EQUAL(v, UID "-attempt-12 hk-1b 2027-01-15T08:00:00Z");
    op_marker back;
    op_marker_parse(v, UID, &back);
    CU_ASSERT(back.present && back.valid && back.attempt == 12 && back.at_ms == T0);
    CU_ASSERT_STRING_EQUAL(back.key, m.key);
    CU_ASSERT_STRING_EQUAL(back.zone, "hk-1b");
    op_marker_parse(UID " hk-1a 2027-01-15T08:00:00Z", UID, &back);
    CU_ASSERT(back.valid && back.attempt == 0);
    static const char *const bad[] = {
        "",
        UID,
        UID " hk-1a",
        UID " hk-1a 2027-01-15T08:00:00Z extra",
        "other-uid hk-1a 2027-01-15T08:00:00Z",
        UID "-attempt-0 hk-1a 2027-01-15T08:00:00Z",
        UID "-attempt-01 hk-1a 2027-01-15T08:00:00Z",
        UID "-attempt- hk-1a 2027-01-15T08:00:00Z",
        UID "-attempt-x hk-1a 2027-01-15T08:00:00Z",
        UID "-retry-1 hk-1a 2027-01-15T08:00:00Z",
        UID "  2027-01-15T08:00:00Z",
        UID " hk-1a yesterday",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        op_marker_parse(bad[i], UID, &back);
        CU_ASSERT(back.present && !back.valid);
        if (back.valid) fprintf(stderr, "\n  marker \"%s\" read as valid\n", bad[i]);
    }
    char key[OP_KEY_LEN];
    op_idempotency_key("u", 0, key);
    CU_ASSERT_STRING_EQUAL(key, "u");
    op_idempotency_key("u", 7, key);
    CU_ASSERT_STRING_EQUAL(key, "u-attempt-7");
}

static void test_parse_cloud(void)
{
    cJSON *j = cJSON_Parse(
        "{\"id\":\"i-00aa\",\"name\":\"web-1\",\"state\":\"running\",\"cpu\":2,\"memoryMiB\":4096,"
        "\"diskGiB\":40,\"image\":\"debian-12\",\"zone\":\"hk-1a\",\"networkType\":\"standard\","
        "\"ipCount\":2,\"ipAddresses\":[\"10.0.0.1\",\"10.0.0.2\"],\"tags\":{\"cloudserver.dev/"
        "uid\":\"" UID "\",\"cloudserver.dev/attempt\":\"3\"},\"createdAt\":"
        "\"2027-01-15T07:59:00.500Z\",\"updatedAt\":\"2027-01-15T08:00:00Z\"}");
    op_instance i;
    char err[OP_ERR_LEN] = "";
    CU_ASSERT_EQUAL_FATAL(op_instance_parse(j, UID, &i, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(i.id, "i-00aa");
    CU_ASSERT(i.state == OP_INST_RUNNING && i.cpu == 2 && i.memory_mib == 4096 &&
              i.disk_gib == 40 && i.n_ips == 2 && i.tagged && i.attempt == 3);
    CU_ASSERT_EQUAL(i.created_ms, T0 - MIN + 500);
    CU_ASSERT_EQUAL(i.updated_ms, T0);
    CU_ASSERT_EQUAL(op_instance_parse(j, "another-uid", &i, err, sizeof err), 0);
    CU_ASSERT_FALSE(i.tagged);
    cJSON_Delete(j);

    static const struct {
        const char *json, *want;
    } bad[] = {
        {"[1]", "not a JSON object"},
        {"{\"state\":\"running\"}", "instance.id: missing"},
        {"{\"id\":\"i-1\"}", "instance i-1: state: missing"},
        {"{\"id\":\"i-1\",\"state\":\"exploded\"}", "unknown state \"exploded\""},
        {"{\"id\":\"i-1\",\"state\":\"running\",\"cpu\":\"2\"}", "instance.cpu"},
        {"{\"id\":\"i-1\",\"state\":\"running\",\"ipAddresses\":{}}", "ipAddresses: must be"},
        {"{\"id\":\"i-1\",\"state\":\"running\",\"ipAddresses\":[7]}", "ipAddresses[0]"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        j = cJSON_Parse(bad[k].json);
        CU_ASSERT_EQUAL(op_instance_parse(j, UID, &i, err, sizeof err), -1);
        CU_ASSERT(strstr(err, bad[k].want) != NULL);
        if (!strstr(err, bad[k].want)) fprintf(stderr, "\n  %s: %s\n", bad[k].json, err);
        cJSON_Delete(j);
    }
    /* every state the cloud names, "deleted" (an idempotent replay) too */
    static const char *const states[] = {"pending", "running",  "resizing",  "stopping",
                                         "stopped", "starting", "rebooting", "deleting",
                                         "crashed", "deleted"};
    for (int k = 0; k < 10; k++) {
        char buf[128];
        snprintf(buf, sizeof buf, "{\"id\":\"i-1\",\"state\":\"%s\"}", states[k]);
        j = cJSON_Parse(buf);
        CU_ASSERT_EQUAL(op_instance_parse(j, UID, &i, err, sizeof err), 0);
        CU_ASSERT_EQUAL((int)i.state, k);
        CU_ASSERT_STRING_EQUAL(op_inst_state_name(i.state), states[k]);
        cJSON_Delete(j);
    }

    op_snapshot s;
    j = cJSON_Parse("{\"id\":\"snap-1\",\"instanceId\":\"i-1\",\"state\":\"available\","
                    "\"createdAt\":\"2027-01-15T08:00:00Z\"}");
    CU_ASSERT_EQUAL(op_snapshot_parse(j, &s, err, sizeof err), 0);
    CU_ASSERT(s.state == OP_SNAP_AVAILABLE && s.created_ms == T0);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"id\":\"snap-1\",\"state\":\"melting\"}");
    CU_ASSERT_EQUAL(op_snapshot_parse(j, &s, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "snapshot snap-1: state") != NULL);
    cJSON_Delete(j);
}

/* ================================================================ crash safety */

/* A small world: the object as the API server stores it (with a
 * resourceVersion, so writes decided on a stale copy are refused as the
 * API server refuses them), the informer's possibly stale copy, a cloud
 * with idempotency keys, and an operator that carries out plans — and can
 * be killed after any write. */
typedef struct kube_state {
    bool finalizer, has_marker;
    char marker[256];
    op_status status;
    int64_t rv;
} kube_state;

typedef struct sim_inst {
    op_instance v;
    bool gone;
    int ticks; /* reconcile steps spent in this state */
} sim_inst;

typedef struct sim {
    kube_state kube; /* the API server */
    kube_state snap; /* the API server when the last reconcile began */
    bool deleting, removed;
    int64_t generation;
    sim_inst inst[16];
    int n;
    char keys[16][OP_KEY_LEN];
    int key_inst[16];
    int nkeys;
    bool stuck_first; /* attempt 0 stays pending forever */
    bool fast;        /* creates are running at once (the quick poll sees it) */
    /* As operator/cloudserver.c does: search by tag only when deleting or
     * asked (REFRESH), and on the first REFRESH decide on the cached copy
     * as if fresh, taking that plan when it begins with a metadata patch
     * (guarded by the cached resourceVersion). Else the contract's wider
     * search rule and an uncached read on every REFRESH. */
    bool lazy_search;
    int64_t now;
    unsigned failures;
    int64_t obj_rv; /* the resourceVersion the operator's copy has */
    int budget;     /* writes left before the kill; < 0: never */
    bool killed;
    int bad_creates; /* creates decided without a fresh object and tag search */
    int max_live;
} sim;

static sim S;
static op_object SO;
static op_cloud_view SV;

static void sim_object(const kube_state *k, bool fresh)
{
    memset(&SO, 0, sizeof SO);
    strcpy(SO.ns, "default");
    strcpy(SO.name, "web-1");
    strcpy(SO.uid, UID);
    SO.generation = S.generation;
    SO.creation_ms = T0;
    SO.deleting = S.deleting;
    SO.deletion_ms = S.deleting ? T0 : 0;
    SO.has_finalizer = k->finalizer;
    if (k->has_marker) op_marker_parse(k->marker, UID, &SO.marker);
    SO.fresh = fresh;
    base_spec(&SO.spec);
    SO.spec.timeout_create_ms = 20 * SEC;
    SO.status = k->status;
    S.obj_rv = k->rv;
}

static sim_inst *sim_find(const char *id)
{
    for (int i = 0; i < S.n; i++)
        if (!S.inst[i].gone && strcmp(S.inst[i].v.id, id) == 0) return &S.inst[i];
    return NULL;
}

/* The executor's lookup: GET by status.instanceID; list by tag when the
 * marker is not settled, status names nothing, the GET found nothing, the
 * object is being deleted — or on a refresh (lazy: only the last two). */
static void sim_view(bool by_tag)
{
    memset(&SV, 0, sizeof SV);
    sim_inst *cur = SO.status.instance_id[0] ? sim_find(SO.status.instance_id) : NULL;
    if (cur) SV.inst[SV.n++] = cur->v;
    bool wide = !S.lazy_search && ((SO.marker.present && !op_marker_settled(&SO)) ||
                                   !SO.status.instance_id[0] || !cur);
    if (by_tag || wide || SO.deleting) {
        SV.searched_by_tag = true;
        for (int i = 0; i < S.n && SV.n < OP_VIEW_MAX; i++)
            if (!S.inst[i].gone && S.inst[i].v.tagged && &S.inst[i] != cur)
                SV.inst[SV.n++] = S.inst[i].v;
    }
}

static int sim_live(void)
{
    int n = 0;
    for (int i = 0; i < S.n; i++)
        if (!S.inst[i].gone && S.inst[i].v.state != OP_INST_DELETING) n++;
    return n;
}

/* One write (cloud or API server); false when the operator died instead. */
static bool sim_step(void)
{
    if (S.budget == 0) {
        S.killed = true;
        return false;
    }
    if (S.budget > 0) S.budget--;
    return true;
}

/* An API-server write with the copy's resourceVersion: false on conflict. */
static bool sim_kube_write(void)
{
    if (S.obj_rv != S.kube.rv) return false;
    S.obj_rv = ++S.kube.rv;
    return true;
}

static void sim_create(const op_action *a, op_cloud_error *err)
{
    for (int k = 0; k < S.nkeys; k++)
        if (strcmp(S.keys[k], a->key) == 0) { /* an idempotent replay */
            if (S.inst[S.key_inst[k]].gone)
                *err = (op_cloud_error){OP_ERR_NOT_FOUND, 200, "InstanceDeleted", "", 0};
            return;
        }
    sim_inst *x = &S.inst[S.n];
    memset(x, 0, sizeof *x);
    snprintf(x->v.id, sizeof x->v.id, "i-%02d", S.n);
    x->v.state = S.fast && !(S.stuck_first && a->attempt == 0) ? OP_INST_RUNNING : OP_INST_PENDING;
    if (x->v.state == OP_INST_RUNNING) {
        x->v.n_ips = 1;
        snprintf(x->v.ips[0], OP_IP_LEN, "10.0.0.%d", S.n + 1);
    }
    x->v.cpu = SO.spec.cpu;
    x->v.memory_mib = SO.spec.memory_mib;
    x->v.disk_gib = SO.spec.disk_gib;
    strcpy(x->v.zone, a->zone);
    x->v.tagged = true;
    x->v.attempt = a->attempt;
    x->v.created_ms = x->v.updated_ms = S.now;
    strcpy(S.keys[S.nkeys], a->key);
    S.key_inst[S.nkeys++] = S.n;
    S.n++;
}

typedef enum { EX_DONE, EX_REFRESH, EX_FAILED, EX_CONFLICT, EX_KILLED } ex_result;

static bool sim_is_meta(op_action_kind k)
{
    return k == OP_ACT_ADD_FINALIZER || k == OP_ACT_REMOVE_FINALIZER ||
           k == OP_ACT_SET_CREATE_PENDING;
}

static int sim_writes;              /* writes made, for the per-flow counts */
static char sim_created[OP_ID_LEN]; /* the instance the last plan created */

static ex_result sim_execute(op_input *in, const op_plan *p)
{
    sim_created[0] = '\0';
    for (size_t i = 0; i < p->n; i++) {
        const op_action *a = &p->actions[i];
        if (a->kind == OP_ACT_EVENT || a->kind == OP_ACT_ADOPT) continue;
        if (a->kind == OP_ACT_REFRESH) return EX_REFRESH;
        /* consecutive metadata actions are one patch, as the executor sends them */
        bool kube = sim_is_meta(a->kind);
        bool joined = kube && i > 0 && sim_is_meta(p->actions[i - 1].kind);
        if (!joined) {
            if (!sim_step()) return EX_KILLED;
            if (kube && !sim_kube_write()) return EX_CONFLICT;
            sim_writes++;
        }
        op_cloud_error err = {OP_ERR_NONE, 0, "", "", 0};
        sim_inst *x = a->instance_id[0] ? sim_find(a->instance_id) : NULL;
        switch (a->kind) {
        case OP_ACT_ADD_FINALIZER:
            S.kube.finalizer = true;
            SO.has_finalizer = true;
            break;
        case OP_ACT_REMOVE_FINALIZER:
            S.kube.finalizer = false;
            if (S.deleting) S.removed = true;
            break;
        case OP_ACT_SET_CREATE_PENDING: {
            op_marker m = {true, true, "", a->attempt, "", a->at_ms};
            strcpy(m.key, a->key);
            strcpy(m.zone, a->zone);
            op_marker_format(&m, S.kube.marker, sizeof S.kube.marker);
            S.kube.has_marker = true;
            op_marker_parse(S.kube.marker, UID, &SO.marker);
            break;
        }
        case OP_ACT_CREATE:
            if (!in->obj->fresh || !in->view->searched_by_tag) S.bad_creates++;
            sim_create(a, &err);
            for (int k = 0; err.cls == OP_ERR_NONE && k < S.nkeys; k++)
                if (strcmp(S.keys[k], a->key) == 0) strcpy(sim_created, S.inst[S.key_inst[k]].v.id);
            break;
        case OP_ACT_DELETE:
            if (!x) {
                err = (op_cloud_error){OP_ERR_NOT_FOUND, 404, "NotFound", "", 0};
            } else if (x->v.state != OP_INST_DELETING) {
                x->v.state = OP_INST_DELETING;
                x->ticks = 0;
            }
            break;
        case OP_ACT_UNTAG:
            if (x) x->v.tagged = false;
            break;
        default:
            break;
        }
        if (sim_live() > S.max_live) S.max_live = sim_live();
        if (err.cls != OP_ERR_NONE) {
            in->attempt.failed = true;
            in->attempt.kind = a->kind;
            in->attempt.action = *a;
            in->attempt.err = err;
            return EX_FAILED;
        }
    }
    return EX_DONE;
}

/* One reconcile, as the executor runs it; `stale`: the informer's copy is
 * the one from when the previous reconcile began. */
static void sim_reconcile(bool stale)
{
    static op_plan plan;
    op_config cfg = op_config_default();
    kube_state cache = stale ? S.snap : S.kube;
    S.snap = S.kube;
    sim_object(&cache, false);
    sim_view(false);
    op_input in = {&SO, &SV, OP_CREDS_OK, NULL, S.now, S.failures, {0}, &cfg, NULL};
    ex_result r = EX_DONE;
    bool decided = false;
    for (int round = 0; round < 4; round++) {
        if (!decided) op_decide(&in, &plan);
        decided = false;
        r = sim_execute(&in, &plan);
        if (r == EX_REFRESH) {
            if (round == 0 && S.lazy_search) { /* optimistic: the cached copy */
                sim_object(&cache, true);
                sim_view(true);
                op_decide(&in, &plan);
                decided = plan.n > 0 && sim_is_meta(plan.actions[0].kind);
                if (decided) continue;
            }
            sim_object(&S.kube, true);
            sim_view(true);
            continue;
        }
        if (r == EX_FAILED) { /* decide once more with the error; carry that out */
            op_decide(&in, &plan);
            r = sim_execute(&in, &plan);
        } else if (r == EX_DONE && sim_created[0]) {
            /* the executor's quick poll: the new instance by id, decided on
             * again; taken when it holds only Events and the adoption */
            sim_inst *x = sim_find(sim_created);
            if (x) {
                static op_plan quick;
                op_cloud_view saved = SV;
                memset(&SV, 0, sizeof SV);
                SV.inst[SV.n++] = x->v;
                op_decide(&in, &quick);
                bool only_adopt = true;
                for (size_t i = 0; i < quick.n; i++)
                    if (quick.actions[i].kind != OP_ACT_EVENT &&
                        quick.actions[i].kind != OP_ACT_ADOPT)
                        only_adopt = false;
                if (only_adopt)
                    plan = quick;
                else
                    SV = saved;
            }
        }
        break;
    }
    if (r == EX_KILLED) return;
    if (r == EX_CONFLICT) { /* re-read next time */
        S.failures++;
        return;
    }
    if (plan.write_status && !S.removed) {
        if (!sim_step()) return;
        if (!sim_kube_write()) {
            S.failures++;
            return;
        }
        sim_writes++;
        S.kube.status = plan.status;
    }
    S.failures = plan.failed ? S.failures + 1 : 0;
}

/* Time passes in the cloud between reconciles. */
static void sim_tick(void)
{
    S.now += 2 * SEC;
    for (int i = 0; i < S.n; i++) {
        sim_inst *x = &S.inst[i];
        if (x->gone) continue;
        x->ticks++;
        if (x->v.state == OP_INST_PENDING && x->ticks >= 2 &&
            !(S.stuck_first && x->v.attempt == 0)) {
            x->v.state = OP_INST_RUNNING;
            x->v.n_ips = 1;
            snprintf(x->v.ips[0], OP_IP_LEN, "10.0.0.%d", i + 1);
            x->v.updated_ms = S.now;
        } else if (x->v.state == OP_INST_DELETING && x->ticks >= 1) {
            x->gone = true;
        }
    }
}

static void sim_reset(void)
{
    sim_writes = 0;
    memset(&S, 0, sizeof S);
    S.generation = 1;
    S.now = T0;
    S.budget = -1;
    S.kube.rv = S.snap.rv = 1;
}

/* Reconciles until the object is gone, the operator is killed or steps run out. */
static void sim_settle(int steps)
{
    for (int i = 0; i < steps && !S.removed && !S.killed; i++) {
        sim_reconcile(false);
        sim_tick();
    }
}

typedef enum {
    FLOW_CREATE,
    FLOW_FAILOVER,
    FLOW_STUCK,
    FLOW_DELETE,
    FLOW_FAST_CREATE,
    FLOW_FAST_FAILOVER,
    FLOW_COUNT
} flow;

static void flow_setup(flow f, bool lazy)
{
    sim_reset();
    S.lazy_search = lazy;
    if (f == FLOW_STUCK) S.stuck_first = true;
    if (f == FLOW_FAST_CREATE || f == FLOW_FAST_FAILOVER) S.fast = true;
    if (f == FLOW_FAST_FAILOVER) f = FLOW_FAILOVER;
    if (f == FLOW_FAILOVER || f == FLOW_DELETE) {
        sim_settle(12); /* a Ready object first */
        S.max_live = 0;
        if (f == FLOW_FAILOVER) {
            sim_inst *x = sim_find(S.kube.status.instance_id);
            if (x) x->v.state = OP_INST_CRASHED;
        } else {
            S.deleting = true;
        }
    }
}

/* The end state a flow must reach. */
static bool flow_done(flow f, char *why, size_t n)
{
    int live = 0, tagged_live = 0;
    const sim_inst *one = NULL;
    for (int i = 0; i < S.n; i++)
        if (!S.inst[i].gone && S.inst[i].v.state != OP_INST_DELETING) {
            live++;
            if (S.inst[i].v.tagged) tagged_live++;
            one = &S.inst[i];
        }
    if (f == FLOW_DELETE) {
        snprintf(why, n, "deletion: removed=%d live=%d", S.removed, live);
        return S.removed && live == 0;
    }
    if (live != 1 || tagged_live != 1 || one->v.state != OP_INST_RUNNING) {
        snprintf(why, n, "want one running instance, have %d live", live);
        return false;
    }
    const op_status *st = &S.kube.status;
    /* the marker may stay, as the record of the create that made the instance */
    sim_object(&S.kube, true);
    bool marker_ok = !S.kube.has_marker || op_marker_settled(&SO);
    bool first = f == FLOW_CREATE || f == FLOW_FAST_CREATE;
    snprintf(why, n, "status %s ready %d marker %d (settled %d) finalizer %d failoverCount %d",
             st->instance_id, st->cond[OP_COND_READY].status, S.kube.has_marker, marker_ok,
             S.kube.finalizer, st->failover_count);
    return strcmp(st->instance_id, one->v.id) == 0 &&
           st->cond[OP_COND_READY].status == OP_CS_TRUE && marker_ok && S.kube.finalizer &&
           st->failover_count == (first ? 0 : 1);
}

/* Instances the flow creates after its setup: one for a create or a
 * failover (the replacement), two for a stuck create (the first and one
 * replacement), none for a deletion. */
static int flow_created_want(flow f)
{
    return f == FLOW_STUCK ? 2 : f == FLOW_DELETE ? 0 : 1;
}

/* Writes (API server and cloud) of a create, uninterrupted: the finalizer
 * and the marker in one patch, the create, and the status — once when the
 * quick poll sees the instance running, else "waiting" then Running. */
static void test_create_writes(void)
{
    for (int lazy = 0; lazy < 2; lazy++) {
        flow_setup(FLOW_FAST_CREATE, lazy);
        S.budget = 1000000;
        sim_settle(40);
        CU_ASSERT_EQUAL(1000000 - S.budget, 3);
        CU_ASSERT_EQUAL(sim_writes, 3);
        flow_setup(FLOW_CREATE, lazy);
        S.budget = 1000000;
        sim_settle(40);
        CU_ASSERT_EQUAL(sim_writes, 4);
    }
}

static void test_crash_safety(void)
{
    static const char *const names[] = {"create", "failover",    "stuck create",
                                        "delete", "fast create", "fast failover"};
    int runs = 0;
    for (int run_i = 0; run_i < 2 * FLOW_COUNT; run_i++) {
        int f = run_i % FLOW_COUNT;
        bool lazy = run_i >= FLOW_COUNT;
        /* how many writes does the flow make, uninterrupted? */
        flow_setup((flow)f, lazy);
        int before = S.n;
        S.budget = 1000000;
        sim_settle(40);
        int total = 1000000 - S.budget;
        char why[200] = "";
        bool ok = flow_done((flow)f, why, sizeof why);
        CU_ASSERT(ok);
        if (!ok) fprintf(stderr, "\n  %s (lazy %d) uninterrupted: %s\n", names[f], lazy, why);
        CU_ASSERT_EQUAL(S.n - before, flow_created_want((flow)f));
        CU_ASSERT(total >= 2);
        if (getenv("SIM_VERBOSE"))
            fprintf(stderr, "\n  %s (lazy %d): %d writes\n", names[f], lazy, total);

        /* killed after each prefix of those writes, then restarted with an
         * up-to-date or a stale informer copy */
        for (int k = 0; k <= total; k++) {
            for (int stale = 0; stale < 2; stale++) {
                flow_setup((flow)f, lazy);
                before = S.n;
                S.budget = k;
                sim_settle(40);
                S.killed = false;
                S.budget = -1;
                S.failures = 0;
                if (!S.removed) {
                    sim_reconcile(stale);
                    sim_tick();
                }
                sim_settle(40);
                runs++;
                ok = flow_done((flow)f, why, sizeof why);
                CU_ASSERT(ok);
                CU_ASSERT_EQUAL(S.bad_creates, 0);
                CU_ASSERT(S.max_live <= 1);
                CU_ASSERT_EQUAL(S.n - before, flow_created_want((flow)f));
                if (!ok || S.bad_creates || S.max_live > 1 ||
                    S.n - before != flow_created_want((flow)f))
                    fprintf(stderr,
                            "\n  %s (lazy %d) killed after %d of %d writes (stale %d): %s; bad "
                            "creates %d, max live %d, created %d\n",
                            names[f], lazy, k, total, stale, why, S.bad_creates, S.max_live,
                            S.n - before);
            }
        }
    }
    CU_ASSERT(runs > 40);
}

/* The marker as a record: settled once status names the instance of its
 * attempt; a failover create that failed leaves it unsettled (status stops
 * naming the replaced instance), so the same key is sent again. */
static void test_marker_record(void)
{
    reset();
    CU_ASSERT_FALSE(op_marker_settled(&O)); /* no marker */
    marker(0, "hk-1a", T0 - MIN);
    CU_ASSERT_FALSE(op_marker_settled(&O)); /* status names nothing yet */
    recorded("i-1");
    CU_ASSERT(op_marker_settled(&O));
    marker(1, "hk-1a", T0 - MIN);
    CU_ASSERT_FALSE(op_marker_settled(&O)); /* attempt 1 not recorded */
    O.status.failover_count = 1;
    CU_ASSERT(op_marker_settled(&O));
    op_marker_parse("garbage", UID, &O.marker);
    CU_ASSERT_FALSE(op_marker_settled(&O));

    /* crashed, replaced, the create answered 503 */
    reset();
    s_crashed();
    run();
    const op_action *c = find(OP_ACT_CREATE, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    marker(1, "hk-1a", T0);
    I.attempt.failed = true;
    I.attempt.kind = OP_ACT_CREATE;
    I.attempt.action = *c;
    I.attempt.err = (op_cloud_error){OP_ERR_RETRYABLE, 503, "ServiceUnavailable", "outage", 0};
    run();
    CU_ASSERT_STRING_EQUAL(P.status.instance_id, "");
    CU_ASSERT_EQUAL(P.status.phase, OP_PHASE_FAILING_OVER);
    CU_ASSERT_EQUAL(cnd(OP_COND_READY)->status, OP_CS_FALSE);
    CU_ASSERT_EQUAL(P.status.failover_count, 1);
    persist();
    CU_ASSERT_FALSE(op_marker_settled(&O));
    /* next pass: the old one is deleting, the same key again */
    memset(&I.attempt, 0, sizeof I.attempt);
    V.inst[0].state = OP_INST_DELETING;
    run();
    CU_ASSERT_STRING_EQUAL(kinds(), "CREATE");
    CU_ASSERT_STRING_EQUAL(find(OP_ACT_CREATE, 0)->key, UID "-attempt-1");
}

/* Every decision on a world with two live instances deletes one, whatever
 * the status says — the guard behind "never two live instances". */
static void test_never_two(void)
{
    for (int cur = 0; cur < 3; cur++)
        for (int a0 = 0; a0 < 3; a0++)
            for (int a1 = 0; a1 < 3; a1++) {
                reset();
                if (cur) recorded(cur == 1 ? "i-1" : "i-2");
                O.status.failover_count = a0 > a1 ? a0 : a1;
                inst("i-1", OP_INST_RUNNING, a0);
                inst("i-2", OP_INST_RUNNING, a1)->created_ms = T0 - 30 * SEC;
                run();
                int deletes = 0;
                for (size_t i = 0; i < P.n; i++) deletes += P.actions[i].kind == OP_ACT_DELETE;
                CU_ASSERT_EQUAL(deletes, 1);
                CU_ASSERT_PTR_NULL(find(OP_ACT_CREATE, 0));
                const char *kept = P.status.instance_id;
                CU_ASSERT_STRING_NOT_EQUAL(kept, find(OP_ACT_DELETE, 0)->instance_id);
            }
}

/* ================================================================ sets */

static op_set_child CH[200];
static size_t NCH;
static op_set_plan SP;
static op_set_status SST;

static void child(const char *name, bool ready, int64_t created)
{
    op_set_child *c = &CH[NCH++];
    memset(c, 0, sizeof *c);
    strcpy(c->name, name);
    c->ready = ready;
    c->created_ms = created;
    c->spec_matches = true;
}

static void set_run(int replicas)
{
    op_set_input in = {"web", 4, false, true, replicas, "app=web", &SST, CH, NCH, NULL, T0};
    op_set_decide(&in, &SP);
}

static const char *set_actions(op_set_action_kind k)
{
    static char s[4096];
    s[0] = '\0';
    for (size_t i = 0; i < SP.n; i++) {
        if (SP.actions[i].kind != k) continue;
        if (s[0]) strcat(s, ",");
        strcat(s, SP.actions[i].child);
    }
    return s;
}

static void test_set_scale(void)
{
    NCH = 0;
    memset(&SST, 0, sizeof SST);
    set_run(3);
    CU_ASSERT_STRING_EQUAL(set_actions(OP_SET_CREATE_CHILD), "web-0,web-1,web-2");
    CU_ASSERT_EQUAL(SP.status.replicas, 0);
    CU_ASSERT_STRING_EQUAL(SP.status.selector, "app=web");
    CU_ASSERT_STRING_EQUAL(SP.status.cond[OP_SET_COND_READY].reason, "ScalingUp");
    CU_ASSERT(SP.write_status);

    /* 3 → 6: the next free indices */
    child("web-0", true, T0 - 300 * SEC);
    child("web-1", true, T0 - 200 * SEC);
    child("web-2", true, T0 - 100 * SEC);
    set_run(6);
    CU_ASSERT_STRING_EQUAL(set_actions(OP_SET_CREATE_CHILD), "web-3,web-4,web-5");
    CU_ASSERT_EQUAL(SP.status.replicas, 3);
    CU_ASSERT_EQUAL(SP.status.ready_replicas, 3);
    const op_set_action *ev = &SP.actions[SP.n - 1];
    CU_ASSERT(ev->kind == OP_SET_EVENT && strcmp(ev->reason, "ScalingUp") == 0);
    CU_ASSERT(strstr(ev->message, "from 3 to 6") != NULL);

    /* gaps are filled first; a name still held by a deleting member is not reused */
    NCH = 0;
    child("web-0", true, T0);
    child("web-2", true, T0);
    child("web-1", false, T0);
    CH[2].deleting = true;
    set_run(4);
    CU_ASSERT_STRING_EQUAL(set_actions(OP_SET_CREATE_CHILD), "web-3,web-4");
    CU_ASSERT_EQUAL(SP.status.replicas, 2);

    /* 6 → 2: not-Ready first, then the newest */
    NCH = 0;
    child("web-0", true, T0 - 600 * SEC);
    child("web-1", true, T0 - 500 * SEC);
    child("web-2", false, T0 - 400 * SEC);
    child("web-3", true, T0 - 300 * SEC);
    child("web-4", true, T0 - 200 * SEC);
    child("web-5", false, T0 - 700 * SEC);
    set_run(2);
    CU_ASSERT_STRING_EQUAL(set_actions(OP_SET_DELETE_CHILD), "web-2,web-5,web-4,web-3");
    CU_ASSERT_STRING_EQUAL(SP.status.cond[OP_SET_COND_READY].reason, "ScalingDown");
    CU_ASSERT_EQUAL(SP.status.replicas, 6);
    CU_ASSERT_EQUAL(SP.status.ready_replicas, 4);
    /* same age: the higher index goes first; names without an index last */
    NCH = 0;
    child("web-0", true, T0);
    child("web-10", true, T0);
    child("web-9", true, T0);
    child("web-x7q2k", true, T0);
    set_run(1);
    CU_ASSERT_STRING_EQUAL(set_actions(OP_SET_DELETE_CHILD), "web-10,web-9,web-0");

    /* steady: all Ready → Ready=True, no actions; written once */
    NCH = 0;
    child("web-0", true, T0);
    child("web-1", true, T0);
    set_run(2);
    CU_ASSERT_EQUAL(SP.n, 0);
    CU_ASSERT_EQUAL(SP.status.cond[OP_SET_COND_READY].status, OP_CS_TRUE);
    CU_ASSERT_EQUAL(SP.status.observed_generation, 4);
    SST = SP.status;
    set_run(2);
    CU_ASSERT_FALSE(SP.write_status);
    CU_ASSERT_EQUAL(SP.n, 0);
    /* a member not Ready: MembersNotReady */
    CH[1].ready = false;
    set_run(2);
    CU_ASSERT_STRING_EQUAL(SP.status.cond[OP_SET_COND_READY].reason, "MembersNotReady");
    CU_ASSERT_EQUAL(SP.status.cond[OP_SET_COND_READY].last_transition_ms, T0);

    /* template changes reach members that differ */
    CH[0].spec_matches = false;
    set_run(2);
    CU_ASSERT_STRING_EQUAL(set_actions(OP_SET_UPDATE_CHILD), "web-0");
    /* the set without its finalizer gets it first */
    op_set_input in = {"web", 1, false, false, 2, "app=web", &SST, CH, NCH, NULL, T0};
    op_set_decide(&in, &SP);
    CU_ASSERT_EQUAL(SP.actions[0].kind, OP_SET_ADD_FINALIZER);
    /* a failed member write shows in Synced */
    in.has_finalizer = true;
    in.error = "creating web-2: 409 AlreadyExists";
    op_set_decide(&in, &SP);
    CU_ASSERT_STRING_EQUAL(SP.status.cond[OP_SET_COND_SYNCED].reason, "MemberWriteFailed");
    CU_ASSERT(strstr(SP.status.cond[OP_SET_COND_SYNCED].message, "AlreadyExists") != NULL);
}

static void test_set_batches_and_delete(void)
{
    NCH = 0;
    memset(&SST, 0, sizeof SST);
    set_run(1000);
    size_t n = 0;
    for (size_t i = 0; i < SP.n; i++) n += SP.actions[i].kind == OP_SET_CREATE_CHILD;
    CU_ASSERT_EQUAL(n, OP_SET_BATCH_MAX);
    CU_ASSERT_EQUAL(SP.requeue_ms, 1);
    /* the batch is the lowest indices, and the next pass goes on */
    for (size_t i = 0; i < SP.n; i++)
        if (SP.actions[i].kind == OP_SET_CREATE_CHILD) child(SP.actions[i].child, false, T0);
    set_run(1000);
    CU_ASSERT_STRING_EQUAL(SP.actions[0].child, "web-64");

    /* deleting the set: every member goes, then the finalizer */
    NCH = 0;
    child("web-0", true, T0);
    child("web-1", true, T0);
    child("web-2", true, T0);
    CH[2].deleting = true;
    op_set_input in = {"web", 4, true, true, 3, "app=web", &SST, CH, NCH, NULL, T0};
    op_set_decide(&in, &SP);
    CU_ASSERT_STRING_EQUAL(set_actions(OP_SET_DELETE_CHILD), "web-0,web-1");
    CU_ASSERT_STRING_EQUAL(set_actions(OP_SET_REMOVE_FINALIZER), "");
    CU_ASSERT_FALSE(SP.write_status);
    in.n_children = 0;
    op_set_decide(&in, &SP);
    CU_ASSERT_EQUAL(SP.n, 1);
    CU_ASSERT_EQUAL(SP.actions[0].kind, OP_SET_REMOVE_FINALIZER);
    in.has_finalizer = false;
    op_set_decide(&in, &SP);
    CU_ASSERT_EQUAL(SP.n, 0);

    /* a set name too long for member names */
    char longname[260];
    memset(longname, 'a', 252);
    longname[252] = '\0';
    in = (op_set_input){longname, 1, false, true, 1, "app=web", &SST, CH, 0, NULL, T0};
    op_set_decide(&in, &SP);
    CU_ASSERT_STRING_EQUAL(SP.status.cond[OP_SET_COND_SYNCED].reason, "NameTooLong");

    /* status JSON round trip */
    NCH = 0;
    child("web-0", true, T0);
    set_run(1);
    cJSON *j = op_set_status_to_json(&SP.status);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    op_set_status back;
    op_set_status_parse(j, &back);
    CU_ASSERT_FALSE(op_set_status_differs(&SP.status, &back));
    char *s = cJSON_PrintUnformatted(j);
    CU_ASSERT(strstr(s, "\"replicas\":1,\"readyReplicas\":1,\"selector\":\"app=web\"") != NULL);
    free(s);
    cJSON_Delete(j);
}

static void test_selector(void)
{
    static const struct {
        const char *json, *want; /* want NULL: error, err contains `err` */
        const char *err;
    } cases[] = {
        {"{\"matchLabels\":{\"tier\":\"edge\",\"app\":\"web\"}}", "app=web,tier=edge", NULL},
        {"{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"In\",\"values\":[\"b\",\"a\"]}]}",
         "tier in (a,b)", NULL},
        {"{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"legacy\","
         "\"operator\":\"DoesNotExist\"},{\"key\":\"env\",\"operator\":\"NotIn\",\"values\":["
         "\"dev\"]},{\"key\":\"zone\",\"operator\":\"Exists\"}]}",
         "app=web,env notin (dev),!legacy,zone", NULL},
        {"{\"matchLabels\":{\"app\":\"web\"},\"matchExpressions\":[{\"key\":\"app\",\"operator\":"
         "\"Exists\"}]}",
         "app=web,app", NULL},
        {"{}", "", NULL},
        {"[]", NULL, "spec.selector: missing or not an object"},
        {"{\"matchLabels\":[]}", NULL, "matchLabels: must be an object"},
        {"{\"matchLabels\":{\"a\":1}}", NULL, "matchLabels.a: must be a string"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Near\"}]}", NULL,
         "matchExpressions[0].operator"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}", NULL,
         "matchExpressions[0].values: must be non-empty"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}",
         NULL, "must be empty for Exists"},
        {"{\"matchExpressions\":[{\"operator\":\"Exists\"}]}", NULL, "key: missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *j = cJSON_Parse(cases[i].json);
        char out[OP_SELECTOR_LEN] = "", err[OP_ERR_LEN] = "";
        int rc = op_selector_string(j, out, sizeof out, err, sizeof err);
        if (cases[i].want) {
            CU_ASSERT_EQUAL(rc, 0);
            CU_ASSERT_STRING_EQUAL(out, cases[i].want);
        } else {
            CU_ASSERT_EQUAL(rc, -1);
            CU_ASSERT(strstr(err, cases[i].err) != NULL);
        }
        cJSON_Delete(j);
    }
    cJSON *j = cJSON_Parse("{\"matchLabels\":{\"app\":\"web\"}}");
    char tiny[5], err[OP_ERR_LEN];
    CU_ASSERT_EQUAL(op_selector_string(j, tiny, sizeof tiny, err, sizeof err), -1);
    CU_ASSERT(strstr(err, "longer than 4") != NULL);
    cJSON_Delete(j);
}

static CU_TestInfo decide_tests[] = {
    {"scenario table: every path", test_table},
    {"create: marker, key, body, attempts", test_create_details},
    {"provisioning: polls and timeouts", test_provisioning_details},
    {"resize and drift", test_resize_details},
    {"failover zones", test_failover_zones},
    {"cloud errors and credentials", test_error_details},
    {"events once per change", test_events_once},
    {"backups: schedule, missed, invalid", test_backups},
    {"backups: retention", test_retention},
    {"status diff and transition times", test_status_diff},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo json_tests[] = {
    {"object parse and status round trip", test_parse_object},
    {"object parse errors", test_parse_object_errors},
    {"create-pending marker", test_marker},
    {"cloud instance and snapshot JSON", test_parse_cloud},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo safety_tests[] = {
    {"killed after every action: one instance", test_crash_safety},
    {"a create's writes: 3 with the quick poll, 4 without", test_create_writes},
    {"the marker as a record: settled, or a create to resume", test_marker_record},
    {"two live instances: one is deleted", test_never_two},
    CU_TEST_INFO_NULL,
};

static CU_TestInfo set_tests[] = {
    {"scale up, down, order, status", test_set_scale},
    {"batches, deletion, names, JSON", test_set_batches_and_delete},
    {"selector string", test_selector},
    CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
    {"decide", NULL, NULL, NULL, NULL, decide_tests},
    {"json", NULL, NULL, NULL, NULL, json_tests},
    {"crash-safety", NULL, NULL, NULL, NULL, safety_tests},
    {"set", NULL, NULL, NULL, NULL, set_tests},
    CU_SUITE_INFO_NULL,
};

CSL_TEST_MAIN(suites)
