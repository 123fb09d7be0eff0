/* cloudserverset.c — the CloudServerSet executor: gather the members (the
 * CloudServers whose ownerReferences name the set's uid), op_set_decide,
 * then create, update and delete members and write the set's status.
 *
 * One idea: members are found through the CloudServer cache's owner index,
 * never by listing, and the set holds a finalizer so that deleting it
 * deletes its members even where no garbage collector runs (the local
 * plane). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csl/clock.h"
#include "csl/log.h"
#include "manager.h"

const csl_kube_resource op_res_cloudserversets = {"cloudserver.dev", "v1", "cloudserversets", true};

static const cJSON *jget(const cJSON *o, const char *k)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static bool is_ready(const cJSON *cs)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, jget(jget(cs, "status"), "conditions"))
    {
        const cJSON *t = jget(c, "type"), *s = jget(c, "status");
        if (cJSON_IsString(t) && strcmp(t->valuestring, "Ready") == 0)
            return cJSON_IsString(s) && strcmp(s->valuestring, "True") == 0;
    }
    return false;
}

/* Every field the template sets has the same value in the member (the API
 * server adds defaults to the member, which do not count). */
static bool subset(const cJSON *want, const cJSON *have)
{
    if (cJSON_IsObject(want)) {
        if (!cJSON_IsObject(have)) return false;
        const cJSON *x;
        cJSON_ArrayForEach(x, want)
        {
            if (!subset(x, jget(have, x->string))) return false;
        }
        return true;
    }
    return have && cJSON_Compare(want, have, true);
}

static void set_meta(cJSON *obj)
{
    if (!jget(obj, "apiVersion")) cJSON_AddStringToObject(obj, "apiVersion", "cloudserver.dev/v1");
    if (!jget(obj, "kind")) cJSON_AddStringToObject(obj, "kind", "CloudServerSet");
}

static cJSON *member_body(const cJSON *set, const char *child)
{
    const cJSON *tmpl = jget(jget(set, "spec"), "template");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "apiVersion", "cloudserver.dev/v1");
    cJSON_AddStringToObject(o, "kind", "CloudServer");
    cJSON *md = cJSON_AddObjectToObject(o, "metadata");
    cJSON_AddStringToObject(md, "name", child);
    cJSON_AddStringToObject(md, "namespace", csl_kube_obj_namespace(set));
    const cJSON *labels = jget(jget(tmpl, "metadata"), "labels");
    const cJSON *ann = jget(jget(tmpl, "metadata"), "annotations");
    if (labels) cJSON_AddItemToObject(md, "labels", cJSON_Duplicate(labels, true));
    if (ann) cJSON_AddItemToObject(md, "annotations", cJSON_Duplicate(ann, true));
    cJSON *refs = cJSON_AddArrayToObject(md, "ownerReferences");
    cJSON *ref = cJSON_CreateObject();
    cJSON_AddStringToObject(ref, "apiVersion", "cloudserver.dev/v1");
    cJSON_AddStringToObject(ref, "kind", "CloudServerSet");
    cJSON_AddStringToObject(ref, "name", csl_kube_obj_name(set));
    cJSON_AddStringToObject(ref, "uid", csl_kube_obj_uid(set));
    cJSON_AddBoolToObject(ref, "controller", true);
    cJSON_AddBoolToObject(ref, "blockOwnerDeletion", true);
    cJSON_AddItemToArray(refs, ref);
    cJSON_AddItemToObject(o, "spec", cJSON_Duplicate(jget(tmpl, "spec"), true));
    return o;
}

static int set_finalizer(op_mgr *m, const cJSON *set, bool add, csl_kube_error *e)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(body, "metadata");
    cJSON *list = cJSON_AddArrayToObject(md, "finalizers");
    cJSON_AddStringToObject(md, "resourceVersion", csl_kube_obj_rv(set));
    const cJSON *x;
    cJSON_ArrayForEach(x, jget(jget(set, "metadata"), "finalizers"))
    {
        if (cJSON_IsString(x) && strcmp(x->valuestring, OP_FINALIZER) != 0)
            cJSON_AddItemToArray(list, cJSON_CreateString(x->valuestring));
    }
    if (add) cJSON_AddItemToArray(list, cJSON_CreateString(OP_FINALIZER));
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!s) return -1;
    cJSON *r = csl_kube_patch(m->kube, &op_res_cloudserversets, csl_kube_obj_namespace(set),
                              csl_kube_obj_name(set), NULL, CSL_PATCH_MERGE, s, NULL, e);
    free(s);
    if (!r) return e->code == CSL_KUBE_NOT_FOUND && !add ? 0 : -1;
    cJSON_Delete(r);
    return 0;
}

/* One child write; returns 0 or -1 with e. */
static int child_action(op_mgr *m, const cJSON *set, const op_set_action *a, csl_kube_error *e)
{
    const char *ns = csl_kube_obj_namespace(set);
    if (a->kind == OP_SET_CREATE_CHILD) {
        cJSON *o = member_body(set, a->child);
        cJSON *r = csl_kube_create(m->kube, &op_res_cloudservers, ns, o, e);
        cJSON_Delete(o);
        if (!r && e->code != CSL_KUBE_ALREADY_EXISTS) return -1;
        cJSON_Delete(r);
        return 0;
    }
    if (a->kind == OP_SET_DELETE_CHILD) {
        if (csl_kube_delete(m->kube, &op_res_cloudservers, ns, a->child, NULL, e) < 0 &&
            e->code != CSL_KUBE_NOT_FOUND)
            return -1;
        return 0;
    }
    /* UPDATE: the template's spec and labels, merged in. */
    const cJSON *tmpl = jget(jget(set, "spec"), "template");
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "spec", cJSON_Duplicate(jget(tmpl, "spec"), true));
    const cJSON *labels = jget(jget(tmpl, "metadata"), "labels");
    if (labels)
        cJSON_AddItemToObject(cJSON_AddObjectToObject(body, "metadata"), "labels",
                              cJSON_Duplicate(labels, true));
    char *s = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!s) return -1;
    cJSON *r = csl_kube_patch(m->kube, &op_res_cloudservers, ns, a->child, NULL, CSL_PATCH_MERGE, s,
                              NULL, e);
    free(s);
    if (!r) return -1;
    cJSON_Delete(r);
    return 0;
}

void op_cloudserverset_reconcile(op_mgr *m, const char *key)
{
    int64_t t0 = csl_mono_ns();
    bool error = false;
    cJSON *set = csl_informer_get(m->set_inf, key);
    op_set_child *kids = NULL;
    op_set_plan *plan = NULL;
    char **keys = NULL;
    size_t nkeys = 0;
    if (!set) {
        op_keymap_set(m->set_fail, key, 0);
        csl_workqueue_forget(m->set_q, key);
        goto out;
    }
    set_meta(set);
    const cJSON *md = jget(set, "metadata"), *spec = jget(set, "spec");
    char selector[OP_SELECTOR_LEN], err[256];
    if (op_selector_string(jget(spec, "selector"), selector, sizeof selector, err, sizeof err) <
        0) {
        csl_event_record(m->events, set, "Warning", "InvalidSelector", "%s", err);
        goto out;
    }
    op_set_status st;
    memset(&st, 0, sizeof st);
    op_set_status_parse(jget(set, "status"), &st);

    const char *uid = csl_kube_obj_uid(set);
    keys = csl_informer_by_index(m->cs_inf, "owner", uid ? uid : "", &nkeys);
    kids = calloc(nkeys ? nkeys : 1, sizeof *kids);
    plan = calloc(1, sizeof *plan);
    if (!kids || !plan) {
        error = true;
        goto out;
    }
    size_t nk = 0;
    const cJSON *tspec = jget(jget(spec, "template"), "spec");
    for (size_t i = 0; i < nkeys; i++) {
        cJSON *cs = csl_informer_get(m->cs_inf, keys[i]);
        if (!cs) continue;
        op_set_child *k = &kids[nk++];
        snprintf(k->name, sizeof k->name, "%s", csl_kube_obj_name(cs));
        k->ready = is_ready(cs);
        const cJSON *cmd = jget(cs, "metadata");
        k->deleting = jget(cmd, "deletionTimestamp") != NULL;
        k->spec_matches = subset(tspec, jget(cs, "spec"));
        const cJSON *ct = jget(cmd, "creationTimestamp");
        if (cJSON_IsString(ct)) csl_rfc3339_parse(ct->valuestring, &k->created_ms);
        cJSON_Delete(cs);
    }
    const cJSON *rep = jget(spec, "replicas"), *gen = jget(md, "generation"), *x;
    bool has_fin = false;
    cJSON_ArrayForEach(x, jget(md, "finalizers"))
    {
        if (cJSON_IsString(x) && strcmp(x->valuestring, OP_FINALIZER) == 0) has_fin = true;
    }
    op_set_input in = {
        .name = csl_kube_obj_name(set),
        .generation = cJSON_IsNumber(gen) ? (int64_t)gen->valuedouble : 0,
        .deleting = jget(md, "deletionTimestamp") != NULL,
        .has_finalizer = has_fin,
        .replicas = cJSON_IsNumber(rep) ? rep->valueint : 1,
        .selector = selector,
        .status = &st,
        .children = kids,
        .n_children = nk,
        .now_ms = csl_wall_ms(),
    };
    if (in.deleting && !has_fin) goto out;
    op_set_decide(&in, plan);

    const char *failed = NULL;
    char ferr[600];
    for (size_t i = 0; i < plan->n && !failed; i++) {
        const op_set_action *a = &plan->actions[i];
        csl_kube_error e;
        memset(&e, 0, sizeof e);
        switch (a->kind) {
        case OP_SET_ADD_FINALIZER:
        case OP_SET_REMOVE_FINALIZER:
            if (set_finalizer(m, set, a->kind == OP_SET_ADD_FINALIZER, &e) < 0) {
                snprintf(ferr, sizeof ferr, "%s the finalizer: %s",
                         a->kind == OP_SET_ADD_FINALIZER ? "adding" : "removing", e.message);
                failed = ferr;
            }
            break;
        case OP_SET_CREATE_CHILD:
        case OP_SET_UPDATE_CHILD:
        case OP_SET_DELETE_CHILD:
            if (child_action(m, set, a, &e) < 0) {
                snprintf(ferr, sizeof ferr, "member %s: %s", a->child, e.message);
                failed = ferr;
            }
            break;
        case OP_SET_EVENT:
            csl_event_record(m->events, set, a->ev_type == OP_EV_WARNING ? "Warning" : "Normal",
                             a->reason, "%s", a->message);
            csl_log(CSL_LOG_INFO, a->message, "set", key, "reason", a->reason, NULL);
            break;
        }
    }
    if (failed) {
        error = true;
        csl_log(CSL_LOG_WARN, "set reconcile failed", "set", key, "error", failed, NULL);
        in.error = failed;
        op_set_plan *p2 = calloc(1, sizeof *p2);
        if (p2) {
            op_set_decide(&in, p2);
            plan->status = p2->status;
            plan->write_status = p2->write_status;
            free(p2);
        }
    }
    bool removed = false;
    for (size_t i = 0; i < plan->n; i++)
        if (plan->actions[i].kind == OP_SET_REMOVE_FINALIZER) removed = true;
    if (!removed && (plan->write_status || op_set_status_differs(&plan->status, &st))) {
        cJSON *body = cJSON_CreateObject();
        cJSON_AddItemToObject(body, "status", op_set_status_to_json(&plan->status));
        char *s = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
        csl_kube_error e;
        cJSON *r =
            s ? csl_kube_patch(m->kube, &op_res_cloudserversets, csl_kube_obj_namespace(set),
                               csl_kube_obj_name(set), "status", CSL_PATCH_MERGE, s, NULL, &e)
              : NULL;
        if (!r && s && e.code != CSL_KUBE_NOT_FOUND) {
            error = true;
            csl_log(CSL_LOG_WARN, "set status write failed", "set", key, "error", e.message, NULL);
        }
        cJSON_Delete(r);
        free(s);
    }
    if (error) {
        csl_workqueue_add_rate_limited(m->set_q, key);
    } else {
        csl_workqueue_forget(m->set_q, key);
        /* Members still on their way: look again while they settle (their
         * own changes also wake the set through the owner handler). */
        if (plan->requeue_ms > 0)
            csl_workqueue_add_after(m->set_q, key, plan->requeue_ms * 1000000);
    }
out:
    csl_metric_inc(m->m_reconcile_total, CSL_LABELS("cloudserverset", error ? "error" : "success"));
    if (error) csl_metric_inc(m->m_reconcile_errors, CSL_LABELS("cloudserverset"));
    csl_metric_observe(m->m_reconcile_time, (double)(csl_mono_ns() - t0) / 1e9,
                       CSL_LABELS("cloudserverset"));
    csl_informer_keys_free(keys, nkeys);
    free(kids);
    free(plan);
    cJSON_Delete(set);
}
