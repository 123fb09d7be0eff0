/* cloudserver.c — the CloudServer executor: parse → look in the cloud →
 * op_decide → carry the plan out → write status → requeue, as
 * docs/operator-reconcile.md says.
 *
 * One idea: this file decides nothing. Every choice is op_decide's; here a
 * plan's actions become API calls in order, and the first failure is handed
 * back to op_decide (in.attempt) for a plan of what to report, which is
 * carried out and ends the pass. A pass holds no lock and keeps nothing
 * after it returns but the key's failure count. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/buf.h"
#include "csl/clock.h"
#include "csl/log.h"
#include "manager.h"

const csl_kube_resource op_res_cloudservers = {"cloudserver.dev", "v1", "cloudservers", true};

#define MAX_REFRESH 2

typedef struct pass {
    op_mgr *m;
    const char *key;
    cJSON *json; /* the object as last read or written (owned) */
    op_object obj;
    op_cloud_view view;
    op_plan plan, plan2;
    op_input in;
    csl_rng rng;
    bool kube_failed;        /* a Kubernetes write failed: retry with the queue's back-off */
    bool gone;               /* the object no longer exists */
    bool error;              /* for controller_runtime_reconcile_total{result="error"} */
    char created[OP_ID_LEN]; /* the instance this pass created, for the quick poll */
    csl_cloud *cloud;        /* the client with the object's credentials */
    op_creds creds;
    char creds_detail[256];
} pass;

/* ---------------------------------------------------------------- cloud */

static void cloud_err(const csl_cloud_error *e, op_cloud_error *out)
{
    memset(out, 0, sizeof *out);
    switch (e->code) {
    case CSL_CLOUD_OK:
        out->cls = OP_ERR_NONE;
        break;
    case CSL_CLOUD_NOT_FOUND:
        out->cls = OP_ERR_NOT_FOUND;
        break;
    case CSL_CLOUD_THROTTLED:
        out->cls = OP_ERR_THROTTLED;
        break;
    case CSL_CLOUD_AUTH:
        out->cls = OP_ERR_AUTH;
        break;
    case CSL_CLOUD_CONFLICT:
        out->cls = OP_ERR_CONFLICT;
        break;
    case CSL_CLOUD_INVALID:
        out->cls = OP_ERR_INVALID;
        break;
    case CSL_CLOUD_CAPACITY:
        out->cls = OP_ERR_CAPACITY;
        break;
    case CSL_CLOUD_RETRYABLE:
    case CSL_CLOUD_PERMANENT: /* nothing better to do than try again, slowly */
    default:
        out->cls = OP_ERR_RETRYABLE;
        break;
    }
    out->http_status = e->status;
    snprintf(out->code, sizeof out->code, "%s", e->cloud_code);
    if (e->message[0])
        snprintf(out->message, sizeof out->message, "%s", e->message);
    else
        csl_cloud_error_str(e, out->message, sizeof out->message);
    out->retry_after_ms = (int64_t)e->retry_after_s * 1000;
}

static const op_inst_state state_map[] = {
    [CSL_INSTANCE_PENDING] = OP_INST_PENDING,     [CSL_INSTANCE_RUNNING] = OP_INST_RUNNING,
    [CSL_INSTANCE_RESIZING] = OP_INST_RESIZING,   [CSL_INSTANCE_STOPPING] = OP_INST_STOPPING,
    [CSL_INSTANCE_STOPPED] = OP_INST_STOPPED,     [CSL_INSTANCE_STARTING] = OP_INST_STARTING,
    [CSL_INSTANCE_REBOOTING] = OP_INST_REBOOTING, [CSL_INSTANCE_DELETING] = OP_INST_DELETING,
    [CSL_INSTANCE_CRASHED] = OP_INST_CRASHED,     [CSL_INSTANCE_DELETED] = OP_INST_DELETED,
};

/* The cloud's instance as the decision sees it; -1 with err for one it
 * cannot use (an unknown state, oversized fields). */
static int to_op_instance(const csl_cloud_instance *ci, const char *uid, op_instance *out,
                          op_cloud_error *err)
{
    memset(out, 0, sizeof *out);
    if (ci->state == CSL_INSTANCE_UNKNOWN || !ci->id || strlen(ci->id) >= OP_ID_LEN ||
        (ci->zone && strlen(ci->zone) >= OP_ZONE_LEN)) {
        memset(err, 0, sizeof *err);
        err->cls = OP_ERR_RETRYABLE;
        snprintf(err->message, sizeof err->message,
                 "the cloud returned an instance this operator cannot read (id %.64s, state "
                 "%.32s)",
                 ci->id ? ci->id : "?", ci->state_raw ? ci->state_raw : "?");
        return -1;
    }
    snprintf(out->id, sizeof out->id, "%s", ci->id);
    out->state = state_map[ci->state];
    out->cpu = ci->cpu;
    out->memory_mib = ci->memory_mib;
    out->disk_gib = ci->disk_gib;
    snprintf(out->zone, sizeof out->zone, "%s", ci->zone ? ci->zone : "");
    snprintf(out->image, sizeof out->image, "%s", ci->image ? ci->image : "");
    for (size_t i = 0; i < ci->n_ip_addresses && out->n_ips < OP_IPS_MAX; i++)
        if (strlen(ci->ip_addresses[i]) < OP_IP_LEN)
            snprintf(out->ips[out->n_ips++], OP_IP_LEN, "%s", ci->ip_addresses[i]);
    const char *tu = csl_cloud_instance_tag(ci, OP_TAG_UID);
    out->tagged = tu && uid[0] && strcmp(tu, uid) == 0;
    const char *ta = csl_cloud_instance_tag(ci, OP_TAG_ATTEMPT);
    if (ta) {
        char *end;
        long n = strtol(ta, &end, 10);
        if (end != ta && !*end && n >= 0 && n <= 1000000) out->attempt = (int)n;
    }
    out->created_ms = ci->created_ms;
    out->updated_ms = ci->updated_ms;
    return 0;
}

static bool view_has(const op_cloud_view *v, const char *id)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->inst[i].id, id) == 0) return true;
    return false;
}

static void view_add(pass *p, const csl_cloud_instance *ci)
{
    op_cloud_view *v = &p->view;
    if (!ci->id || view_has(v, ci->id)) return;
    if (v->n >= OP_VIEW_MAX) {
        csl_log(CSL_LOG_WARN, "more instances carry the object's uid tag than the view holds",
                "object", p->key, "ignored", ci->id, NULL);
        return;
    }
    if (to_op_instance(ci, p->obj.uid, &v->inst[v->n], &v->err) == 0) v->n++;
}

static bool snap_tagged(const csl_cloud_snapshot *s, const char *uid)
{
    for (size_t i = 0; i < s->n_tags; i++)
        if (strcmp(s->tags[i].key, OP_TAG_UID) == 0 && strcmp(s->tags[i].value, uid) == 0)
            return true;
    return false;
}

static void snap_add(op_cloud_view *v, const csl_cloud_snapshot *s)
{
    if (!s->id || strlen(s->id) >= OP_ID_LEN || v->n_snaps >= OP_VIEW_SNAPS_MAX) return;
    if (s->state != CSL_SNAPSHOT_CREATING && s->state != CSL_SNAPSHOT_AVAILABLE) return;
    for (size_t i = 0; i < v->n_snaps; i++)
        if (strcmp(v->snaps[i].id, s->id) == 0) return;
    op_snapshot *o = &v->snaps[v->n_snaps++];
    snprintf(o->id, sizeof o->id, "%s", s->id);
    o->state = s->state == CSL_SNAPSHOT_CREATING ? OP_SNAP_CREATING : OP_SNAP_AVAILABLE;
    o->created_ms = s->created_ms;
}

static void look_snapshots(pass *p)
{
    op_cloud_view *v = &p->view;
    const op_object *o = &p->obj;
    const char *inst = o->status.instance_id;
    for (size_t i = 0; !inst[0] && i < v->n; i++)
        if (v->inst[i].state != OP_INST_DELETING) inst = v->inst[i].id;
    csl_cloud_error e;
    if (inst[0]) {
        csl_cloud_snapshot_list l = {0};
        if (csl_cloud_list_snapshots(p->cloud, inst, &l, &e) != CSL_CLOUD_OK) {
            cloud_err(&e, &v->err);
            return;
        }
        for (size_t i = 0; i < l.n; i++)
            if (snap_tagged(&l.items[i], o->uid)) snap_add(v, &l.items[i]);
        csl_cloud_snapshot_list_free(&l);
    }
    for (size_t i = 0; i < o->status.backups.n; i++) {
        bool have = false;
        for (size_t j = 0; j < v->n_snaps; j++)
            if (strcmp(v->snaps[j].id, o->status.backups.snaps[i].id) == 0) have = true;
        if (have) continue;
        csl_cloud_snapshot s = {0};
        csl_cloud_code c = csl_cloud_get_snapshot(p->cloud, o->status.backups.snaps[i].id, &s, &e);
        if (c == CSL_CLOUD_OK)
            snap_add(v, &s);
        else if (c != CSL_CLOUD_NOT_FOUND) {
            cloud_err(&e, &v->err);
            return;
        }
        csl_cloud_snapshot_free(&s);
    }
    v->snapshots_listed = true;
}

/* What the cloud says about the object: its instance by id, and with
 * search, every instance tagged with its uid. */
static void look(pass *p, bool search)
{
    op_cloud_view *v = &p->view;
    memset(v, 0, sizeof *v);
    csl_cloud_error e;
    const op_object *o = &p->obj;
    if (p->creds != OP_CREDS_OK) return; /* the decision reports it; no call without a token */
    if (o->status.instance_id[0]) {
        csl_cloud_instance ci = {0};
        csl_cloud_code c = csl_cloud_get_instance(p->cloud, o->status.instance_id, &ci, &e);
        if (c == CSL_CLOUD_OK)
            view_add(p, &ci);
        else if (c != CSL_CLOUD_NOT_FOUND)
            cloud_err(&e, &v->err);
        csl_cloud_instance_free(&ci);
        if (v->err.cls != OP_ERR_NONE) return;
    }
    if (search) {
        csl_cloud_instance_list l = {0};
        if (csl_cloud_find_instances(p->cloud, OP_TAG_UID, o->uid, &l, &e) != CSL_CLOUD_OK) {
            cloud_err(&e, &v->err);
            return;
        }
        for (size_t i = 0; i < l.n; i++) view_add(p, &l.items[i]);
        csl_cloud_instance_list_free(&l);
        if (v->err.cls != OP_ERR_NONE) return;
        v->searched_by_tag = true;
    }
    if (o->spec.has_backup && !o->deleting) look_snapshots(p);
}

/* ---------------------------------------------------------------- kube */

/* Replaces p->json with a newer version of the object (taken). */
static void set_json(pass *p, cJSON *obj)
{
    if (!obj) return;
    if (!cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"))
        cJSON_AddStringToObject(obj, "apiVersion", "cloudserver.dev/v1");
    if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
        cJSON_AddStringToObject(obj, "kind", "CloudServer");
    cJSON_Delete(p->json);
    p->json = obj;
}

static void kube_failed(pass *p, const char *what, const csl_kube_error *e)
{
    if (e->code == CSL_KUBE_NOT_FOUND) {
        p->gone = true;
        return;
    }
    p->kube_failed = true;
    p->error = true;
    csl_log(e->code == CSL_KUBE_CONFLICT ? CSL_LOG_DEBUG : CSL_LOG_WARN, "Kubernetes write failed",
            "object", p->key, "what", what, "error", e->message, NULL);
}

static int patch(pass *p, const char *subresource, const char *body, const char *what)
{
    csl_kube_error e;
    op_echo_write_begin(p->m->echo, p->key);
    cJSON *r = csl_kube_patch(p->m->kube, &op_res_cloudservers, p->obj.ns, p->obj.name, subresource,
                              CSL_PATCH_MERGE, body, NULL, &e);
    if (op_echo_write_end(p->m->echo, p->key, r ? csl_kube_obj_rv(r) : NULL))
        csl_workqueue_add(p->m->cs_q, p->key); /* someone else's change came meanwhile */
    if (!r) {
        kube_failed(p, what, &e);
        return -1;
    }
    set_json(p, r);
    return 0;
}

static bool is_metadata(op_action_kind k)
{
    return k == OP_ACT_ADD_FINALIZER || k == OP_ACT_REMOVE_FINALIZER ||
           k == OP_ACT_SET_CREATE_PENDING;
}

/* Carries out n consecutive metadata actions as one merge patch, guarded by
 * the object's resourceVersion (a conflict ends the pass: re-read, decide
 * again), so the finalizer and the create-pending marker land together, in
 * one write, before the create. metadata.finalizers is sent whole (ours
 * added or removed, every other kept); the marker goes into annotations.
 * Returns 0, or -1 when the write failed (p->gone when the object is gone:
 * success for a finalizer removal). */
static int metadata(pass *p, const op_action *acts, size_t n)
{
    int fin = 0; /* +1 add ours, -1 remove ours */
    const op_action *marker = NULL;
    for (size_t i = 0; i < n; i++) {
        if (acts[i].kind == OP_ACT_ADD_FINALIZER && !p->m->opt->break_no_finalizer) fin = 1;
        if (acts[i].kind == OP_ACT_REMOVE_FINALIZER) fin = -1;
        if (acts[i].kind == OP_ACT_SET_CREATE_PENDING) marker = &acts[i];
    }
    if (!fin && !marker) return 0;
    cJSON *body = cJSON_CreateObject();
    cJSON *bmd = cJSON_AddObjectToObject(body, "metadata");
    cJSON_AddStringToObject(bmd, "resourceVersion", csl_kube_obj_rv(p->json));
    if (fin) {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(p->json, "metadata");
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(md, "finalizers"), *x;
        cJSON *list = cJSON_AddArrayToObject(bmd, "finalizers");
        cJSON_ArrayForEach(x, old)
        {
            if (cJSON_IsString(x) && strcmp(x->valuestring, OP_FINALIZER) != 0)
                cJSON_AddItemToArray(list, cJSON_CreateString(x->valuestring));
        }
        if (fin > 0) cJSON_AddItemToArray(list, cJSON_CreateString(OP_FINALIZER));
    }
    op_marker mk = {0};
    if (marker) {
        mk = (op_marker){
            .present = true, .valid = true, .attempt = marker->attempt, .at_ms = marker->at_ms};
        snprintf(mk.key, sizeof mk.key, "%s", marker->key);
        snprintf(mk.zone, sizeof mk.zone, "%s", marker->zone);
        char v[OP_KEY_LEN + OP_ZONE_LEN + 40];
        op_marker_format(&mk, v, sizeof v);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(bmd, "annotations"), OP_ANN_CREATE_PENDING,
                                v);
    }
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!s) return -1;
    int rc = patch(p, NULL, s,
                   fin > 0 && marker ? "adding the finalizer and the create-pending marker"
                   : marker          ? "writing the create-pending marker"
                   : fin > 0         ? "adding the finalizer"
                                     : "removing the finalizer");
    free(s);
    if (rc < 0) return fin < 0 && p->gone ? 0 : -1;
    if (fin < 0) p->gone = false;
    if (fin > 0) p->obj.has_finalizer = true;
    if (marker) p->obj.marker = mk;
    return 0;
}

/* The status subresource, merge-patched: fields of the old status that the
 * new one lacks are nulled so they go. */
static void write_status(pass *p, const op_status *st)
{
    cJSON *nw = op_status_to_json(st);
    if (!nw) return;
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(p->json, "status"), *x;
    cJSON_ArrayForEach(x, old)
    {
        if (x->string && !cJSON_GetObjectItemCaseSensitive(nw, x->string))
            cJSON_AddNullToObject(nw, x->string);
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "status", nw);
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!s) return;
    patch(p, "status", s, "writing status");
    free(s);
}

/* ---------------------------------------------------------------- actions */

static void record_event(pass *p, const op_action *a)
{
    csl_event_record(p->m->events, p->json, a->ev_type == OP_EV_WARNING ? "Warning" : "Normal",
                     a->reason, "%s", a->message);
    csl_log(a->ev_type == OP_EV_WARNING ? CSL_LOG_WARN : CSL_LOG_INFO, a->message, "object", p->key,
            "reason", a->reason, NULL);
}

static csl_cloud_code do_create(pass *p, const op_action *a, csl_cloud_error *e)
{
    const op_object *o = &p->obj;
    const op_spec *sp = &o->spec;
    char name[OP_NS_LEN + OP_NAME_LEN + 1], attempt[16], key[OP_KEY_LEN];
    snprintf(name, sizeof name, "%s/%s", o->ns, o->name);
    snprintf(attempt, sizeof attempt, "%d", a->attempt);
    csl_cloud_kv tags[] = {{OP_TAG_UID, o->uid}, {OP_TAG_NAME, name}, {OP_TAG_ATTEMPT, attempt}};
    csl_cloud_instance_spec spec = {
        .name = o->name,
        .cpu = sp->cpu,
        .memory_mib = sp->memory_mib,
        .disk_gib = sp->disk_gib,
        .image = sp->image,
        .zone = a->zone[0] ? a->zone : sp->zone,
        .network_type = sp->network_type,
        .ip_count = sp->ip_count,
        .tags = tags,
        .n_tags = 3,
    };
    snprintf(key, sizeof key, "%s", a->key);
    if (p->m->opt->break_no_idempotency_key) /* test-only mutation: a key never seen again */
        snprintf(key, sizeof key, "%.150s-%016" PRIx64, a->key, csl_rng_next(&p->rng));
    csl_cloud_instance ci = {0};
    csl_cloud_code c = csl_cloud_create_instance(p->cloud, &spec, key, &ci, e);
    if (c == CSL_CLOUD_OK && ci.id && strlen(ci.id) < OP_ID_LEN) {
        /* Status names the instance at once, so the next pass finds it by id
         * without a tag search. */
        snprintf(p->plan.status.instance_id, OP_ID_LEN, "%s", ci.id);
        snprintf(p->created, sizeof p->created, "%s", ci.id);
        snprintf(p->plan.status.zone, OP_ZONE_LEN, "%s", ci.zone ? ci.zone : spec.zone);
        p->plan.write_status = true;
        csl_log(CSL_LOG_INFO, "instance created", "object", p->key, "instance", ci.id, "key", key,
                NULL);
    }
    csl_cloud_instance_free(&ci);
    return c;
}

static csl_cloud_code do_snapshot(pass *p, const op_action *a, csl_cloud_error *e)
{
    const op_object *o = &p->obj;
    cJSON *body = op_snapshot_body(o, a);
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(body, "name");
    char name[OP_NS_LEN + OP_NAME_LEN + 1];
    snprintf(name, sizeof name, "%s/%s", o->ns, o->name);
    csl_cloud_kv tags[] = {{OP_TAG_UID, o->uid}, {OP_TAG_NAME, name}};
    csl_cloud_code c = csl_cloud_create_snapshot(p->cloud, a->instance_id,
                                                 cJSON_IsString(jn) ? jn->valuestring : NULL, tags,
                                                 2, a->key, NULL, e);
    cJSON_Delete(body);
    csl_metric_inc(p->m->m_backups, CSL_LABELS(c == CSL_CLOUD_OK ? "started" : "failed"));
    return c;
}

/* Carries out one action. Returns 0; 1 when a cloud call failed (*err
 * set); -1 when a Kubernetes write failed or the object is gone (stop). */
static int do_action(pass *p, const op_action *a, op_cloud_error *err)
{
    csl_cloud_error e;
    memset(&e, 0, sizeof e);
    csl_cloud_code c = CSL_CLOUD_OK;
    op_mgr *m = p->m;
    switch (a->kind) {
    case OP_ACT_ADD_FINALIZER:
    case OP_ACT_REMOVE_FINALIZER:
    case OP_ACT_SET_CREATE_PENDING:
        return metadata(p, a, 1);
    case OP_ACT_REFRESH:
    case OP_ACT_ADOPT:
    case OP_ACT_COUNT:
        return 0;
    case OP_ACT_EVENT:
        record_event(p, a);
        return 0;
    case OP_ACT_CREATE:
        c = do_create(p, a, &e);
        break;
    case OP_ACT_RESIZE: {
        csl_cloud_resize r = {a->cpu, a->memory_mib, a->disk_gib};
        c = csl_cloud_resize_instance(p->cloud, a->instance_id, &r, NULL, &e);
        break;
    }
    case OP_ACT_START:
        c = csl_cloud_instance_action(p->cloud, a->instance_id, CSL_CLOUD_START, NULL, &e);
        break;
    case OP_ACT_DELETE:
        c = csl_cloud_delete_instance(p->cloud, a->instance_id, &e);
        if (c == CSL_CLOUD_NOT_FOUND) c = CSL_CLOUD_OK; /* gone is what we wanted */
        break;
    case OP_ACT_UNTAG: {
        /* Retain: the instance outlives the object, so it must stop saying
         * the object owns it — else a new object with the same name, or an
         * orphan check, would take it for ours. */
        const csl_cloud_kv ours[] = {
            {OP_TAG_UID, NULL}, {OP_TAG_NAME, NULL}, {OP_TAG_ATTEMPT, NULL}};
        c = csl_cloud_update_tags(p->cloud, a->instance_id, ours, 3, NULL, &e);
        if (c == CSL_CLOUD_NOT_FOUND) c = CSL_CLOUD_OK; /* nothing left to untag */
        break;
    }
    case OP_ACT_SNAPSHOT:
        c = do_snapshot(p, a, &e);
        break;
    case OP_ACT_DELETE_SNAPSHOT:
        c = csl_cloud_delete_snapshot(p->cloud, a->snapshot_id, &e);
        if (c == CSL_CLOUD_NOT_FOUND) c = CSL_CLOUD_OK;
        if (c == CSL_CLOUD_OK) csl_metric_inc(m->m_backups, CSL_LABELS("pruned"));
        break;
    }
    if (c == CSL_CLOUD_OK) return 0;
    cloud_err(&e, err);
    char buf[512];
    csl_log(CSL_LOG_INFO, "cloud call failed", "object", p->key, "action", op_action_name(a->kind),
            "error", csl_cloud_error_str(&e, buf, sizeof buf), NULL);
    return 1;
}

/* ---------------------------------------------------------------- a pass */

/* Reads the object, and picks the cloud client its credentials say. */
static int parse(pass *p, const cJSON *obj, bool fresh, char *err, size_t errsz)
{
    memset(&p->obj, 0, sizeof p->obj);
    if (op_object_parse(obj, &p->obj, err, errsz) < 0) return -1;
    p->obj.fresh = fresh;
    if (p->m->opt->break_no_failover) p->obj.spec.failover_enabled = false;
    p->cloud =
        op_credentials_for(p->m, &p->obj, &p->creds, p->creds_detail, sizeof p->creds_detail);
    return 0;
}

/* An object that passed the API server but not op_object_parse: report it
 * (Ready=False InvalidSpec and an Event, once) and wait for a change. */
static void invalid_object(pass *p, const char *why)
{
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(p->json, "status");
    const cJSON *cond = cJSON_GetObjectItemCaseSensitive(status, "conditions"), *x;
    bool already = false;
    cJSON_ArrayForEach(x, cond)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(x, "type");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "reason");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(x, "message");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "Ready") == 0 && cJSON_IsString(r) &&
            strcmp(r->valuestring, "InvalidSpec") == 0 && cJSON_IsString(msg) &&
            strcmp(msg->valuestring, why) == 0)
            already = true;
    }
    if (already) return;
    csl_log(CSL_LOG_WARN, "object cannot be served", "object", p->key, "error", why, NULL);
    csl_event_record(p->m->events, p->json, "Warning", "InvalidSpec", "%s; fix the spec", why);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(p->json, "metadata");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(md, "generation");
    int64_t g = cJSON_IsNumber(gen) ? (int64_t)gen->valuedouble : 0;
    char now[CSL_RFC3339_LEN];
    csl_rfc3339_s(csl_wall_ms(), now);
    cJSON *body = cJSON_CreateObject();
    cJSON *s = cJSON_AddObjectToObject(body, "status");
    cJSON_AddStringToObject(s, "phase", "Failed");
    cJSON *conds = cJSON_AddArrayToObject(s, "conditions");
    const char *types[] = {"Ready", "Synced"};
    for (int i = 0; i < 2; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "type", types[i]);
        cJSON_AddStringToObject(c, "status", "False");
        cJSON_AddStringToObject(c, "reason", "InvalidSpec");
        cJSON_AddStringToObject(c, "message", why);
        cJSON_AddStringToObject(c, "lastTransitionTime", now);
        cJSON_AddNumberToObject(c, "observedGeneration", (double)g);
        cJSON_AddItemToArray(conds, c);
    }
    char *txt = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (txt) patch(p, "status", txt, "writing status");
    free(txt);
}

static void decide(pass *p, op_plan *out)
{
    p->in.obj = &p->obj;
    p->in.view = &p->view;
    p->in.creds = p->creds;
    p->in.creds_detail = p->creds_detail;
    p->in.now_ms = csl_wall_ms();
    p->in.cfg = &p->m->cfg;
    p->in.rng = &p->rng;
    op_decide(&p->in, out);
    p->in.creds_detail = NULL;
}

static bool ready_true(const op_status *s)
{
    return s->cond[OP_COND_READY].present && s->cond[OP_COND_READY].status == OP_CS_TRUE;
}

/* Carries out pl->actions[i] — with the metadata actions that follow it
 * when it is one, as a single patch; *used says how many actions that was.
 * do_action's results. */
static int do_step(pass *p, const op_plan *pl, size_t i, size_t *used, op_cloud_error *err)
{
    size_t n = 1;
    if (is_metadata(pl->actions[i].kind)) {
        while (i + n < pl->n && is_metadata(pl->actions[i + n].kind)) n++;
        *used = n;
        return metadata(p, &pl->actions[i], n);
    }
    *used = 1;
    return do_action(p, &pl->actions[i], err);
}

/* The quick first poll: right after a create, one GET of the new instance,
 * and the pass decides again with it. A fast cloud has it running already:
 * the status is written once (Running), not Provisioning now and Running a
 * poll later; a slow one gets the status its polls will keep ("waiting for
 * instance X to start"), not one they rewrite. The second plan is taken
 * only when it holds nothing to do but Events and the adoption; else the
 * first one stands. */
static void quick_poll(pass *p)
{
    csl_cloud_instance ci = {0};
    csl_cloud_error e;
    csl_cloud_code c = csl_cloud_get_instance(p->cloud, p->created, &ci, &e);
    bool moved = c == CSL_CLOUD_OK;
    op_cloud_view saved = p->view;
    if (moved) {
        memset(&p->view, 0, sizeof p->view);
        view_add(p, &ci);
    }
    csl_cloud_instance_free(&ci);
    if (!moved || p->view.err.cls != OP_ERR_NONE || p->view.n != 1) {
        p->view = saved;
        return;
    }
    decide(p, &p->plan2);
    for (size_t i = 0; i < p->plan2.n; i++) {
        op_action_kind k = p->plan2.actions[i].kind;
        if (k != OP_ACT_EVENT && k != OP_ACT_ADOPT) {
            p->view = saved;
            return;
        }
    }
    p->plan = p->plan2;
    op_cloud_error ignored;
    for (size_t i = 0; i < p->plan.n; i++) do_action(p, &p->plan.actions[i], &ignored);
}

/* Carries out plan; returns true when it ended in REFRESH. */
static bool execute(pass *p)
{
    op_plan *pl = &p->plan;
    p->created[0] = '\0';
    for (size_t i = 0, used = 1; i < pl->n; i += used) {
        const op_action *a = &pl->actions[i];
        if (a->kind == OP_ACT_REFRESH) return true;
        op_cloud_error err;
        int rc = do_step(p, pl, i, &used, &err);
        if (rc < 0) return false;
        if (rc == 0) continue;
        /* The first failure: decide what to report, carry out its metadata
         * and Events (no more cloud calls), and end the pass. */
        p->in.attempt.failed = true;
        p->in.attempt.kind = a->kind;
        p->in.attempt.action = *a;
        p->in.attempt.err = err;
        /* What this pass already wrote is in p->obj (the marker). */
        decide(p, &p->plan2);
        *pl = p->plan2;
        for (size_t j = 0, u = 1; j < pl->n; j += u) {
            op_action_kind k = pl->actions[j].kind;
            u = 1;
            if (k == OP_ACT_EVENT || is_metadata(k)) {
                op_cloud_error ignored;
                if (do_step(p, pl, j, &u, &ignored) < 0) return false;
            }
        }
        return false;
    }
    if (p->created[0]) quick_poll(p);
    return false;
}

static void observe_metrics(pass *p, const op_status *prev, const op_status *now)
{
    op_mgr *m = p->m;
    if (now->failover_count > prev->failover_count)
        csl_metric_add(m->m_failovers, now->failover_count - prev->failover_count, NULL);
    if (ready_true(now) && !ready_true(prev) && prev->observed_generation == 0 &&
        p->obj.creation_ms > 0) {
        double s = (double)(csl_wall_ms() - p->obj.creation_ms) / 1000.0;
        if (s >= 0) csl_metric_observe(m->m_create_to_ready, s, NULL);
    }
    op_keymap_set(m->cs_phase, p->key, (unsigned)now->phase + 1);
}

void op_cloudserver_reconcile(op_mgr *m, const char *key)
{
    pass *p = calloc(1, sizeof *p);
    if (!p) {
        csl_workqueue_add_rate_limited(m->cs_q, key);
        return;
    }
    p->m = m;
    p->key = key;
    csl_rng_derive(&p->rng, (uint64_t)csl_mono_ns(), key, 0);
    int64_t t0 = csl_mono_ns();
    char err[OP_ERR_LEN];

    cJSON *obj = csl_informer_get(m->cs_inf, key);
    if (!obj) { /* gone: nothing to do, nothing to remember */
        op_keymap_set(m->cs_fail, key, 0);
        op_keymap_set(m->cs_phase, key, 0);
        op_echo_forget(m->echo, key);
        csl_workqueue_forget(m->cs_q, key);
        goto out;
    }
    set_json(p, obj);
    p->in.failures = op_keymap_get(m->cs_fail, key);
    if (parse(p, p->json, false, err, sizeof err) < 0) {
        invalid_object(p, err);
        goto out;
    }
    op_status prev = p->obj.status;
    look(p, p->obj.deleting);
    decide(p, &p->plan);
    for (int r = 0; r <= MAX_REFRESH; r++) {
        if (!execute(p)) break;
        if (r == MAX_REFRESH) { /* the decision keeps asking: look again later */
            p->plan.requeue_ms = m->cfg.poll_min_ms;
            p->plan.write_status = false;
            break;
        }
        memset(&p->in.attempt, 0, sizeof p->in.attempt);
        if (r == 0 && !p->obj.fresh && !m->opt->break_no_finalizer) {
            /* Optimistic: search by tag and decide on the cached copy as if
             * it were fresh, and take that plan only when it begins with a
             * metadata patch. The patch is guarded by the cached
             * resourceVersion, so it succeeds only if the cache held the
             * stored object — what an uncached read would have returned —
             * and otherwise fails (a conflict: re-read, decide again)
             * before anything else is done. A new object's create saves
             * its GET this way. */
            p->obj.fresh = true;
            look(p, true);
            decide(p, &p->plan);
            if (p->plan.n && is_metadata(p->plan.actions[0].kind)) continue;
        }
        csl_kube_error ke;
        cJSON *fresh =
            csl_kube_get(m->kube, &op_res_cloudservers, p->obj.ns, p->obj.name, NULL, &ke);
        if (!fresh) {
            kube_failed(p, "reading the object", &ke);
            break;
        }
        set_json(p, fresh);
        if (parse(p, p->json, true, err, sizeof err) < 0) {
            invalid_object(p, err);
            goto out;
        }
        prev = p->obj.status;
        memset(&p->in.attempt, 0, sizeof p->in.attempt);
        look(p, true);
        decide(p, &p->plan);
    }
    if (p->gone || p->kube_failed) goto out;
    if (p->plan.write_status || op_status_differs(&p->plan.status, &p->obj.status)) {
        bool finalizer_gone = false;
        for (size_t i = 0; i < p->plan.n; i++)
            if (p->plan.actions[i].kind == OP_ACT_REMOVE_FINALIZER) finalizer_gone = true;
        if (!finalizer_gone) write_status(p, &p->plan.status);
    }
    observe_metrics(p, &prev, &p->plan.status);
    if (p->plan.failed) p->error = true;

out:
    if (p->kube_failed) {
        csl_workqueue_add_rate_limited(m->cs_q, key);
    } else if (!p->gone && obj) {
        op_keymap_set(m->cs_fail, key, p->plan.failed ? p->in.failures + 1 : 0);
        csl_workqueue_forget(m->cs_q, key);
        if (p->plan.requeue_ms > 0)
            csl_workqueue_add_after(m->cs_q, key, p->plan.requeue_ms * 1000000);
    }
    csl_metric_inc(
        m->m_reconcile_total,
        CSL_LABELS("cloudserver",
                   p->error ? "error" : (p->plan.requeue_ms ? "requeue_after" : "success")));
    if (p->error) csl_metric_inc(m->m_reconcile_errors, CSL_LABELS("cloudserver"));
    csl_metric_observe(m->m_reconcile_time, (double)(csl_mono_ns() - t0) / 1e9,
                       CSL_LABELS("cloudserver"));
    cJSON_Delete(p->json);
    free(p);
}
