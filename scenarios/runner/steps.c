/* steps.c — what every operation shares: the table of operation kinds,
 * outcomes with messages that name the step's file:line, the context
 * (recorded objects, interruption, time scale), template expansion of op
 * specs and the end-of-scenario deletion of what the scenario created.
 *
 * One idea: operations never sleep-poll on their own; time flows through
 * sr_ctx_sleep_until, which wakes at most four times a second to notice an
 * interrupt, so a waiting runner costs next to nothing. */
#include "steps.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "csl/clock.h"
#include "csl/units.h"
#include "template.h"

const sr_op_fn sr_steps_table[SR_OP_KIND_COUNT] = {
    [SR_OP_APPLY] = sr_op_apply,         [SR_OP_PATCH] = sr_op_patch,
    [SR_OP_DELETE] = sr_op_delete,       [SR_OP_WAIT] = sr_op_wait,
    [SR_OP_ASSERT] = sr_op_assert,       [SR_OP_ERROR] = sr_op_error,
    [SR_OP_FAULT] = sr_op_fault,         [SR_OP_CRASH] = sr_op_crash,
    [SR_OP_OPERATOR] = sr_op_operator,   [SR_OP_APISERVER] = sr_op_apiserver,
    [SR_OP_SLEEP] = sr_op_sleep,         [SR_OP_EXEC] = sr_op_exec,
};

/* ---------------------------------------------------------------- outcomes */

void sr_outcome_init(sr_outcome *o)
{
    o->status = SR_PASS;
    csl_buf_init(&o->msg);
    csl_buf_init(&o->diff);
    csl_buf_init(&o->output);
}

void sr_outcome_free(sr_outcome *o)
{
    csl_buf_free(&o->msg);
    csl_buf_free(&o->diff);
    csl_buf_free(&o->output);
}

void sr_outcome_fail(sr_outcome *o, const sr_ctx *c, const sr_op *op, sr_status st,
                     const char *fmt, ...)
{
    /* ERROR outranks FAIL: a step that could not even run says so. */
    if (o->status == SR_PASS || st == SR_ERROR) o->status = st;
    if (o->msg.len) csl_buf_putc(&o->msg, '\n');
    if (c && c->sc && op)
        csl_buf_printf(&o->msg, "%s:%d: %s: ", c->sc->file, op->pos.line, sr_op_kind_name(op->kind));
    va_list ap;
    va_start(ap, fmt);
    csl_buf_vprintf(&o->msg, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------------- context */

void sr_ctx_init(sr_ctx *c)
{
    pthread_mutex_init(&c->mu, NULL);
    c->objs = NULL;
    c->n_objs = c->cap_objs = 0;
    if (c->time_scale < 1) c->time_scale = 1;
    c->faults = NULL;
    c->n_faults = c->cap_faults = 0;
    c->timer_running = c->timer_stop = false;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->timer_cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void recorded_free(sr_recorded *r)
{
    free(r->api_version);
    free(r->kind);
    free(r->ns);
    free(r->name);
    free(r->uid);
}

void sr_ctx_free(sr_ctx *c)
{
    for (size_t i = 0; i < c->n_objs; i++) recorded_free(&c->objs[i]);
    free(c->objs);
    c->objs = NULL;
    c->n_objs = c->cap_objs = 0;
    sr_ctx_faults_end(c);
    for (size_t i = 0; i < c->n_faults; i++) {
        free(c->faults[i].kind);
        free(c->faults[i].what);
        free(c->faults[i].id);
    }
    free(c->faults);
    c->faults = NULL;
    c->n_faults = 0;
    pthread_cond_destroy(&c->timer_cv);
    pthread_mutex_destroy(&c->mu);
}

static char *dup_s(const char *s)
{
    return s ? strdup(s) : NULL;
}

void sr_ctx_record(sr_ctx *c, const char *api_version, const char *kind, const char *ns,
                   const char *name, const char *uid)
{
    pthread_mutex_lock(&c->mu);
    if (c->n_objs == c->cap_objs) {
        size_t cap = c->cap_objs ? c->cap_objs * 2 : 16;
        sr_recorded *v = realloc(c->objs, cap * sizeof *v);
        if (!v) goto out;
        c->objs = v;
        c->cap_objs = cap;
    }
    sr_recorded *r = &c->objs[c->n_objs];
    r->api_version = dup_s(api_version);
    r->kind = dup_s(kind);
    r->ns = dup_s(ns);
    r->name = dup_s(name);
    r->uid = dup_s(uid);
    if (!r->kind || !r->name) {
        recorded_free(r);
        goto out;
    }
    c->n_objs++;
out:
    pthread_mutex_unlock(&c->mu);
}

bool sr_ctx_interrupted(const sr_ctx *c)
{
    return c->interrupted && __atomic_load_n(c->interrupted, __ATOMIC_RELAXED);
}

int64_t sr_ctx_real_ns(const sr_ctx *c, int64_t scenario_ns)
{
    double ts = c->time_scale >= 1 ? c->time_scale : 1;
    return (int64_t)((double)scenario_ns / ts);
}

double sr_ctx_scen_s(const sr_ctx *c, int64_t real_ns)
{
    double ts = c->time_scale >= 1 ? c->time_scale : 1;
    return (double)real_ns / 1e9 * ts;
}

bool sr_ctx_sleep_until(const sr_ctx *c, int64_t deadline_ns)
{
    for (;;) {
        if (sr_ctx_interrupted(c)) return false;
        int64_t left = deadline_ns - csl_mono_ns();
        if (left <= 0) return true;
        /* Wake at least every 250 ms to notice an interrupt. */
        csl_sleep_ns(left < 250000000 ? left : 250000000);
    }
}

/* ---------------------------------------------------------------- helpers */

static bool skipped(const char *key, const char *const *skip)
{
    for (size_t i = 0; skip && skip[i]; i++)
        if (key && !strcmp(key, skip[i])) return true;
    return false;
}

cJSON *sr_steps_expand(sr_ctx *c, const sr_op *op, const cJSON *tree, const char *const *skip,
                       sr_outcome *out)
{
    cJSON *copy = NULL;
    if (skip && cJSON_IsObject(tree)) {
        copy = cJSON_CreateObject();
        for (const cJSON *it = tree->child; copy && it; it = it->next) {
            if (skipped(it->string, skip)) continue;
            cJSON_AddItemToObject(copy, it->string, cJSON_Duplicate(it, true));
        }
        tree = copy;
    }
    sr_tvars tv = {.index = -1, .ns = c->ns, .scenario = c->sc ? c->sc->name : "",
                   .run = c->run_id, .seed = c->seed, .vars = c->sc ? c->sc->setup.vars : NULL};
    char err[256] = "";
    cJSON *x = tree ? sr_template_expand(tree, &tv, err, sizeof err) : cJSON_CreateObject();
    cJSON_Delete(copy);
    if (!x) sr_outcome_fail(out, c, op, SR_ERROR, "template: %s", err[0] ? err : "out of memory");
    return x;
}

int64_t sr_steps_duration(const cJSON *spec, const char *key, int64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(spec, key);
    int64_t ns;
    char err[CSL_UNITS_ERR_LEN];
    if (cJSON_IsString(v) && csl_duration_parse(v->valuestring, &ns, err) == 0) return ns;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0) return (int64_t)(v->valuedouble * 1e9);
    return dflt;
}

/* ---------------------------------------------------------------- kinds */

static const struct {
    const char *kind, *group, *version, *plural;
    bool namespaced;
} KINDS[] = {
    {"CloudServer", "cloudserver.dev", "v1", "cloudservers", true},
    {"CloudServerSet", "cloudserver.dev", "v1", "cloudserversets", true},
    {"Secret", "", "v1", "secrets", true},
    {"ConfigMap", "", "v1", "configmaps", true},
    {"Lease", "coordination.k8s.io", "v1", "leases", true},
    {"Event", "events.k8s.io", "v1", "events", true},
    {"Namespace", "", "v1", "namespaces", false},
    {"Pod", "", "v1", "pods", true},
    {"Service", "", "v1", "services", true},
    {"ServiceAccount", "", "v1", "serviceaccounts", true},
    {"Deployment", "apps", "v1", "deployments", true},
};

int sr_kind_resource(const char *kind, const char *api_version, sr_kres *out)
{
    memset(out, 0, sizeof *out);
    if (!kind || !*kind) kind = "CloudServer";
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++) {
        if (strcmp(KINDS[i].kind, kind)) continue;
        snprintf(out->group, sizeof out->group, "%s", KINDS[i].group);
        snprintf(out->version, sizeof out->version, "%s", KINDS[i].version);
        /* An object that names its version (v1alpha1 CloudServers, core
         * v1 Events) is served at that version. */
        if (api_version && *api_version) {
            const char *slash = strchr(api_version, '/');
            const char *ver = slash ? slash + 1 : api_version;
            size_t glen = slash ? (size_t)(slash - api_version) : 0;
            if (glen == strlen(KINDS[i].group) && !strncmp(api_version, KINDS[i].group, glen))
                snprintf(out->version, sizeof out->version, "%s", ver);
            else if (!strcmp(kind, "Event") && !slash) {
                snprintf(out->group, sizeof out->group, "%s", "");
                snprintf(out->version, sizeof out->version, "%s", ver);
            }
        }
        snprintf(out->plural, sizeof out->plural, "%s", KINDS[i].plural);
        out->res = (csl_kube_resource){out->group, out->version, out->plural, KINDS[i].namespaced};
        return 0;
    }
    if (!api_version || !*api_version) return -1;
    const char *slash = strchr(api_version, '/');
    if (slash) {
        snprintf(out->group, sizeof out->group, "%.*s", (int)(slash - api_version), api_version);
        snprintf(out->version, sizeof out->version, "%s", slash + 1);
    } else {
        snprintf(out->version, sizeof out->version, "%s", api_version);
    }
    size_t n = 0;
    for (const char *p = kind; *p && n + 3 < sizeof out->plural; p++)
        out->plural[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
    out->plural[n++] = 's';
    out->plural[n] = 0;
    out->res = (csl_kube_resource){out->group, out->version, out->plural, true};
    return 0;
}

/* ---------------------------------------------------------------- end deletion */

int sr_steps_delete_recorded(sr_ctx *c, int64_t deadline_ns, csl_buf *msg)
{
    if (!c->kube) return 0;
    int bad = 0;
    pthread_mutex_lock(&c->mu);
    size_t n = c->n_objs;
    pthread_mutex_unlock(&c->mu);
    bool *pending = calloc(n ? n : 1, sizeof *pending);
    if (!pending) return -1;
    /* Newest first: a set before its members, dependants before what they
     * depend on. */
    for (size_t k = n; k-- > 0;) {
        sr_recorded *r = &c->objs[k];
        sr_kres kr;
        if (sr_kind_resource(r->kind, r->api_version, &kr) < 0) continue;
        csl_kube_error ke;
        csl_kube_delete_opts dopt = {.propagation_policy = "Background",
                                     .precondition_uid = r->uid};
        if (csl_kube_delete(c->kube, &kr.res, r->ns, r->name, &dopt, &ke) == 0) {
            pending[k] = true;
        } else if (ke.code != CSL_KUBE_NOT_FOUND && ke.code != CSL_KUBE_CONFLICT) {
            csl_buf_printf(msg, "deleting %s %s/%s: %s\n", r->kind, r->ns ? r->ns : "", r->name,
                           ke.message);
            bad++;
        }
    }
    /* Wait for them to go: each check is one GET per object still there,
     * spaced by a back-off so a slow finalizer costs little. */
    int64_t pause = 100000000;
    for (;;) {
        size_t left = 0;
        for (size_t k = 0; k < n; k++) {
            if (!pending[k]) continue;
            sr_recorded *r = &c->objs[k];
            sr_kres kr;
            sr_kind_resource(r->kind, r->api_version, &kr);
            csl_kube_error ke;
            cJSON *o = csl_kube_get(c->kube, &kr.res, r->ns, r->name, NULL, &ke);
            const char *uid = o ? csl_kube_obj_uid(o) : NULL;
            if ((!o && ke.code == CSL_KUBE_NOT_FOUND) || (o && r->uid && uid && strcmp(uid, r->uid)))
                pending[k] = false;
            else
                left++;
            cJSON_Delete(o);
        }
        if (!left) break;
        int64_t now = csl_mono_ns();
        if (now >= deadline_ns || sr_ctx_interrupted(c)) {
            for (size_t k = 0; k < n; k++)
                if (pending[k]) {
                    csl_buf_printf(msg, "%s %s/%s still present after the scenario's cleanup "
                                        "(finalizer not released?)\n",
                                   c->objs[k].kind, c->objs[k].ns ? c->objs[k].ns : "",
                                   c->objs[k].name);
                    bad++;
                }
            break;
        }
        int64_t until = now + pause;
        if (until > deadline_ns) until = deadline_ns;
        sr_ctx_sleep_until(c, until);
        if (pause < 2000000000) pause *= 2;
    }
    free(pending);
    return bad ? -1 : 0;
}
